//! Word expansion: `$VAR`, `${VAR}`, `${VAR:-word}` and friends, quotes and
//! escapes, the way Docker processes words in ADD, COPY, ENV, EXPOSE, FROM,
//! LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR and ARG.
//!
//! Pure string work: the caller passes the variables (the stage's current
//! ENV and ARG values). It must never read the process environment or run a
//! shell; RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK and MAINTAINER are not
//! expanded here (the container's shell does that, or nobody does).
//!
//! Supported forms: `$V`, `${V}`, `${V:-w}`, `${V-w}`, `${V:+w}`, `${V+w}`,
//! `${V:?msg}`, `${V?msg}`, `${V#pat}`, `${V##pat}`, `${V%pat}`, `${V%%pat}`,
//! `${V/pat/repl}`, `${V//pat/repl}` (patterns are globs: `*`, `?`, `[…]`).
//! The escape character (`\` or the `# escape=` one) makes the next
//! character literal; single quotes disable expansion; double quotes keep
//! whitespace and allow expansion.
//!
//! The text is untrusted (a Dockerfile, an image's ONBUILD triggers), so
//! every expansion is bounded: `${…}` nests at most [`MAX_NESTING`] deep
//! (no stack overflow), an expanded word is at most [`MAX_WORD_LEN`] bytes
//! (no exponential `ARG A2=$A1$A1` chains), and glob patterns do at most
//! [`MAX_MATCH_STEPS`] steps of matching per word. Past a limit the error
//! names it; none of them stops a real Dockerfile.

use std::collections::BTreeMap;

use super::ast::{Instruction, InstructionKind, Stage};
use super::ExpandError;

/// How deep `${…}` may nest inside another `${…}` (Docker's expander has
/// no limit; real Dockerfiles nest two or three deep).
pub const MAX_NESTING: usize = 64;

/// The longest a word may become once expanded: 1 MiB. The kernel refuses
/// longer environment strings or arguments (`MAX_ARG_STRLEN`, 128 KiB), so
/// a longer word could not reach a process anyway.
pub const MAX_WORD_LEN: usize = 1 << 20;

/// The most the values of one scope's variables (the global ARGs, or a
/// stage's ARGs and ENV together) may hold: 8 MiB, four times what the
/// kernel lets a process's whole environment be.
pub const MAX_VARS_LEN: usize = 8 << 20;

/// The error for variables past [`MAX_VARS_LEN`].
pub fn vars_too_long() -> String {
    format!(
        "ARG and ENV values here hold more than {} MiB in all; this limit cannot be raised: no process \
         could be given an environment this large",
        MAX_VARS_LEN >> 20
    )
}

/// Steps of glob matching (`${V#pat}`, `${V/pat/r}`) one word may spend.
pub const MAX_MATCH_STEPS: u64 = 10_000_000;

/// The variable lookup the caller provides.
pub type Vars<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Expands one word (quotes removed, whitespace kept).
pub fn expand(word: &str, vars: Vars<'_>, escape: char) -> Result<String, ExpandError> {
    let mut lx = Lexer::new(word, vars, escape, false);
    let mut out = Out::new(false);
    lx.process(None, &mut out).and_then(|()| out.check()).map_err(err)?;
    Ok(out.finish_one())
}

/// Expands and splits on unquoted whitespace (also whitespace that comes
/// from an unquoted variable's value), as for EXPOSE.
pub fn expand_words(text: &str, vars: Vars<'_>, escape: char) -> Result<Vec<String>, ExpandError> {
    let mut lx = Lexer::new(text, vars, escape, false);
    let mut out = Out::new(true);
    lx.process(None, &mut out).and_then(|()| out.check()).map_err(err)?;
    Ok(out.finish_words())
}

/// Expands variables in a heredoc body (or a JSON-form argument): quotes
/// and escape characters stay as they are, only `$…` is replaced, and an
/// escaped `$` is kept with its escape.
pub fn expand_raw(text: &str, vars: Vars<'_>, escape: char) -> Result<String, ExpandError> {
    let mut lx = Lexer::new(text, vars, escape, true);
    let mut out = Out::new(false);
    lx.process(None, &mut out).and_then(|()| out.check()).map_err(err)?;
    Ok(out.finish_one())
}

/// The names a word refers to that `vars` does not define (for the
/// `UndefinedVar` lint). Errors are ignored.
pub fn undefined_vars(word: &str, vars: Vars<'_>, escape: char) -> Vec<String> {
    let mut lx = Lexer::new(word, vars, escape, false);
    let mut out = Out::new(false);
    let _ = lx.process(None, &mut out);
    lx.unmatched
}

/// Whether Docker expands variables in this instruction's arguments
/// (ADD COPY ENV EXPOSE LABEL STOPSIGNAL USER VOLUME WORKDIR ARG, and FROM
/// which is handled by [`expand_from`]); RUN's `--mount` options are
/// expanded too, its command is not.
pub fn expands_in(kind: &InstructionKind) -> bool {
    matches!(
        kind,
        InstructionKind::Add(_)
            | InstructionKind::Copy(_)
            | InstructionKind::Env(_)
            | InstructionKind::Expose(_)
            | InstructionKind::Label(_)
            | InstructionKind::Stopsignal(_)
            | InstructionKind::User(_)
            | InstructionKind::Volume(_)
            | InstructionKind::Workdir(_)
            | InstructionKind::Arg(_)
    )
}

/// A lookup over a map, for convenience.
pub fn map_lookup(map: &BTreeMap<String, String>) -> impl Fn(&str) -> Option<String> + '_ {
    move |k| map.get(k).cloned()
}

/// Returns the instruction with its expandable fields expanded with `vars`
/// (ENV/LABEL keys and values, ARG defaults, COPY/ADD paths, flags and
/// unquoted-delimiter heredocs, EXPOSE, VOLUME, USER, WORKDIR, STOPSIGNAL,
/// RUN `--mount` options). Other fields are returned unchanged. Errors carry
/// the instruction's line.
pub fn expand_instruction(ins: &Instruction, vars: Vars<'_>, escape: char) -> Result<Instruction, ExpandError> {
    let at = |e: ExpandError| e.at(ins.line, ins.column);
    // All the words of one instruction together stay within MAX_VARS_LEN.
    let total = std::cell::Cell::new(0usize);
    let count = |w: String| {
        total.set(total.get() + w.len());
        if total.get() > MAX_VARS_LEN {
            Err(err(vars_too_long()).at(ins.line, ins.column))
        } else {
            Ok(w)
        }
    };
    let one = |s: &str| expand(s, vars, escape).map_err(at).and_then(count);
    let raw = |s: &str| expand_raw(s, vars, escape).map_err(at).and_then(count);
    let opt = |s: &Option<String>| s.as_deref().map(one).transpose();
    let mut out = ins.clone();
    match &mut out.kind {
        InstructionKind::Env(pairs) | InstructionKind::Label(pairs) => {
            for (k, v) in pairs.iter_mut() {
                *k = one(k)?;
                *v = one(v)?;
            }
        }
        InstructionKind::Arg(decls) => {
            for d in decls.iter_mut() {
                d.default = opt(&d.default)?;
            }
        }
        InstructionKind::Copy(c) | InstructionKind::Add(c) => {
            let path = |s: &str| if c.json { raw(s) } else { one(s) };
            let sources = c.sources.iter().map(|s| path(s)).collect::<Result<Vec<_>, _>>()?;
            let dest = path(&c.dest)?;
            c.sources = sources;
            c.dest = dest;
            c.from = opt(&c.from)?;
            c.chown = opt(&c.chown)?;
            c.chmod = opt(&c.chmod)?;
            c.checksum = opt(&c.checksum)?;
            for e in c.exclude.iter_mut() {
                *e = one(e)?;
            }
            for h in c.heredocs.iter_mut().filter(|h| h.expand) {
                h.content = raw(&h.content)?;
            }
        }
        InstructionKind::Expose(ports) => {
            let mut all = Vec::new();
            for p in ports.iter() {
                for w in expand_words(p, vars, escape).map_err(at)? {
                    all.push(count(w)?);
                }
            }
            *ports = all;
        }
        InstructionKind::Volume(vols) => {
            for v in vols.iter_mut() {
                *v = one(v)?;
            }
        }
        InstructionKind::User(s) | InstructionKind::Workdir(s) | InstructionKind::Stopsignal(s) => {
            *s = one(s)?;
        }
        InstructionKind::Run { mounts, .. } => {
            for m in mounts.iter_mut() {
                m.target = opt(&m.target)?;
                for v in m.options.values_mut() {
                    *v = one(v)?;
                }
            }
        }
        InstructionKind::Cmd(_)
        | InstructionKind::Entrypoint(_)
        | InstructionKind::Shell(_)
        | InstructionKind::Maintainer(_)
        | InstructionKind::Onbuild(_)
        | InstructionKind::Healthcheck(_) => {}
    }
    Ok(out)
}

/// Expands a stage's `FROM` image and `--platform` with the global ARG
/// values (build args overriding the defaults).
pub fn expand_from(stage: &Stage, vars: Vars<'_>, escape: char) -> Result<(String, Option<String>), ExpandError> {
    let at = |e: ExpandError| e.at(stage.from_line, stage.from_column);
    let base = expand(&stage.base, vars, escape).map_err(at)?;
    let platform = stage
        .platform
        .as_deref()
        .map(|p| expand(p, vars, escape).map_err(at))
        .transpose()?;
    Ok((base, platform))
}

fn err(message: String) -> ExpandError {
    ExpandError::new("", 0, 0, message)
}

/// Collects output characters, optionally splitting into words. Stops
/// collecting past [`MAX_WORD_LEN`] bytes in all and remembers it
/// ([`Out::check`]).
struct Out {
    split: bool,
    words: Vec<String>,
    cur: String,
    started: bool,
    /// Bytes collected, over all words.
    len: usize,
    too_long: bool,
}

impl Out {
    fn new(split: bool) -> Self {
        Out {
            split,
            words: Vec::new(),
            cur: String::new(),
            started: false,
            len: 0,
            too_long: false,
        }
    }

    /// An error once the output grew past [`MAX_WORD_LEN`].
    fn check(&self) -> Result<(), String> {
        if self.too_long {
            Err(too_long())
        } else {
            Ok(())
        }
    }

    /// Whether `n` more bytes still fit (and remembers when not).
    fn room(&mut self, n: usize) -> bool {
        if self.too_long || self.len + n > MAX_WORD_LEN {
            self.too_long = true;
            return false;
        }
        self.len += n;
        true
    }

    /// A character that never splits (quoted or escaped).
    fn lit(&mut self, c: char) {
        if self.room(c.len_utf8()) {
            self.cur.push(c);
        }
        self.started = true;
    }

    /// An unquoted character: whitespace ends the word when splitting.
    fn bare(&mut self, c: char) {
        if self.split && c.is_whitespace() {
            if self.started {
                self.words.push(std::mem::take(&mut self.cur));
                self.started = false;
            }
        } else {
            self.lit(c);
        }
    }

    /// `""` still makes a (possibly empty) word.
    fn mark(&mut self) {
        self.started = true;
    }

    fn text(&mut self, s: &str, quoted: bool) {
        if self.too_long || self.len + s.len() > MAX_WORD_LEN {
            self.too_long = true;
            return;
        }
        if quoted || !self.split {
            // No word splitting: the whole value at once.
            if !s.is_empty() {
                self.len += s.len();
                self.cur.push_str(s);
                self.started = true;
            }
            return;
        }
        for c in s.chars() {
            if quoted {
                self.lit(c);
            } else {
                self.bare(c);
            }
        }
    }

    fn finish_one(self) -> String {
        self.cur
    }

    fn finish_words(mut self) -> Vec<String> {
        if self.started {
            self.words.push(self.cur);
        }
        self.words
    }
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    vars: Vars<'a>,
    raw: bool,
    unmatched: Vec<String>,
    /// `${` entered and not yet left.
    depth: usize,
    /// Glob matching steps spent so far.
    steps: u64,
}

impl<'a> Lexer<'a> {
    fn new(text: &str, vars: Vars<'a>, escape: char, raw: bool) -> Self {
        Lexer {
            chars: text.chars().collect(),
            pos: 0,
            escape,
            vars,
            raw,
            unmatched: Vec::new(),
            depth: 0,
            steps: 0,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn lookup(&mut self, name: &str) -> Option<String> {
        let v = (self.vars)(name);
        if v.is_none() && !self.unmatched.iter().any(|u| u == name) {
            self.unmatched.push(name.to_string());
        }
        v
    }

    /// Processes until `stop` (consumed) or the end of the text.
    fn process(&mut self, stop: Option<char>, out: &mut Out) -> Result<(), String> {
        loop {
            out.check()?;
            let Some(c) = self.peek() else {
                return match stop {
                    Some(s) => Err(format!("missing '{s}' in substitution")),
                    None => Ok(()),
                };
            };
            if Some(c) == stop {
                self.pos += 1;
                return Ok(());
            }
            if c == '\'' && !self.raw {
                self.pos += 1;
                out.mark();
                loop {
                    match self.bump() {
                        None => {
                            return Err("unexpected end of statement while looking for matching single-quote".into())
                        }
                        Some('\'') => break,
                        Some(ch) => out.lit(ch),
                    }
                }
            } else if c == '"' && !self.raw {
                self.pos += 1;
                out.mark();
                self.double_quoted(out)?;
            } else if c == '$' {
                self.pos += 1;
                self.dollar(out, false)?;
            } else if c == self.escape {
                self.pos += 1;
                match self.bump() {
                    None => {
                        if self.raw {
                            out.lit(c);
                        }
                    }
                    Some(n) => {
                        if self.raw {
                            out.lit(c);
                        }
                        out.lit(n);
                    }
                }
            } else {
                self.pos += 1;
                out.bare(c);
            }
        }
    }

    fn double_quoted(&mut self, out: &mut Out) -> Result<(), String> {
        loop {
            out.check()?;
            match self.bump() {
                None => return Err("unexpected end of statement while looking for matching double-quote".into()),
                Some('"') => return Ok(()),
                Some('$') => self.dollar(out, true)?,
                Some(c) if c == self.escape => match self.bump() {
                    None => out.lit(c),
                    Some(n) if n == '"' || n == '$' || n == self.escape => out.lit(n),
                    Some(n) => {
                        out.lit(c);
                        out.lit(n);
                    }
                },
                Some(c) => out.lit(c),
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                name.push(c);
                self.pos += 1;
            } else {
                break;
            }
        }
        name
    }

    /// A nested word up to `stop`, expanded, quotes removed.
    fn sub_word(&mut self, stop: char) -> Result<String, String> {
        let mut o = Out::new(false);
        self.process(Some(stop), &mut o)?;
        o.check()?;
        Ok(o.finish_one())
    }

    /// After a `$`.
    fn dollar(&mut self, out: &mut Out, quoted: bool) -> Result<(), String> {
        match self.peek() {
            Some('{') => {
                self.pos += 1;
                self.braced(out, quoted)
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                let name = self.name();
                if let Some(v) = self.lookup(&name) {
                    out.text(&v, quoted);
                }
                Ok(())
            }
            Some(c) if c.is_ascii_digit() => {
                self.pos += 1;
                if let Some(v) = self.lookup(&c.to_string()) {
                    out.text(&v, quoted);
                }
                Ok(())
            }
            _ => {
                out.lit('$');
                Ok(())
            }
        }
    }

    /// After `${`: one level deeper, within [`MAX_NESTING`].
    fn braced(&mut self, out: &mut Out, quoted: bool) -> Result<(), String> {
        if self.depth >= MAX_NESTING {
            return Err(format!(
                "substitutions nest more than {MAX_NESTING} deep (`${{…${{…}}…}}`); this limit cannot be raised: \
                 split the value over several ARG or ENV instructions"
            ));
        }
        self.depth += 1;
        let r = self.braced_inner(out, quoted);
        self.depth -= 1;
        r
    }

    fn braced_inner(&mut self, out: &mut Out, quoted: bool) -> Result<(), String> {
        let name = self.name();
        if name.is_empty() {
            return Err("bad substitution: expected a variable name after '${'".into());
        }
        let Some(op) = self.bump() else {
            return Err(format!("missing '}}' in substitution of {name}"));
        };
        let value = match op {
            '}' => self.lookup(&name),
            ':' | '-' | '+' | '?' => {
                let colon = op == ':';
                let op = if colon {
                    match self.bump() {
                        Some(o @ ('-' | '+' | '?')) => o,
                        Some(o) => return Err(format!("unsupported modifier ({o}) in substitution")),
                        None => return Err(format!("missing '}}' in substitution of {name}")),
                    }
                } else {
                    op
                };
                let before = self.unmatched.len();
                let word = self.sub_word('}')?;
                let after_word = self.unmatched.split_off(before);
                let v = (self.vars)(&name);
                let is_set = match &v {
                    Some(s) => !(colon && s.is_empty()),
                    None => false,
                };
                match op {
                    '-' => {
                        if is_set {
                            v
                        } else {
                            self.unmatched.extend(after_word);
                            Some(word)
                        }
                    }
                    '+' => {
                        if is_set {
                            self.unmatched.extend(after_word);
                            Some(word)
                        } else {
                            None
                        }
                    }
                    _ => {
                        if is_set {
                            v
                        } else if word.is_empty() {
                            return Err(format!("{name}: parameter null or not set"));
                        } else {
                            return Err(format!("{name}: {word}"));
                        }
                    }
                }
            }
            '#' | '%' => {
                let longest = self.peek() == Some(op);
                if longest {
                    self.pos += 1;
                }
                let pat: Vec<char> = self.sub_word('}')?.chars().collect();
                match self.lookup(&name) {
                    Some(v) => {
                        let s: Vec<char> = v.chars().collect();
                        Some(trim_pattern(&s, &pat, op == '#', longest, &mut self.steps)?)
                    }
                    None => None,
                }
            }
            '/' => {
                let all = self.peek() == Some('/');
                if all {
                    self.pos += 1;
                }
                let mut o = Out::new(false);
                let mut found_slash = false;
                // The pattern ends at an unescaped '/' or at '}'.
                loop {
                    match self.peek() {
                        None => return Err(format!("missing '}}' in substitution of {name}")),
                        Some('/') => {
                            self.pos += 1;
                            found_slash = true;
                            break;
                        }
                        Some('}') => break,
                        Some(_) => {
                            // Process one character (or quoted run) at a time.
                            let start = self.pos;
                            let c = self.bump().unwrap_or('}');
                            if c == self.escape {
                                if let Some(n) = self.bump() {
                                    o.lit(n);
                                }
                            } else if c == '$' {
                                self.dollar(&mut o, true)?;
                            } else {
                                o.lit(c);
                            }
                            o.check()?;
                            debug_assert!(self.pos > start);
                        }
                    }
                }
                let pat: Vec<char> = o.finish_one().chars().collect();
                let repl = if found_slash {
                    self.sub_word('}')?
                } else {
                    self.pos += 1; // the '}'
                    String::new()
                };
                match self.lookup(&name) {
                    Some(v) => Some(replace_pattern(
                        &v.chars().collect::<Vec<_>>(),
                        &pat,
                        &repl,
                        all,
                        &mut self.steps,
                    )?),
                    None => None,
                }
            }
            other => return Err(format!("unsupported modifier ({other}) in substitution")),
        };
        if let Some(v) = value {
            out.text(&v, quoted);
        }
        Ok(())
    }
}

fn too_long() -> String {
    format!(
        "the expanded word is longer than {} MiB; this limit cannot be raised: no process could be given \
         a value this long (are ARG or ENV values doubling each other?)",
        MAX_WORD_LEN >> 20
    )
}

fn too_costly() -> String {
    format!(
        "matching a pattern in a substitution took more than {MAX_MATCH_STEPS} steps; this limit cannot be raised: \
         use a simpler pattern or a shorter value"
    )
}

/// Spends one step of the glob budget.
fn spend(steps: &mut u64, n: u64) -> Result<(), String> {
    *steps += n;
    if *steps > MAX_MATCH_STEPS {
        Err(too_costly())
    } else {
        Ok(())
    }
}

/// Whether the pattern element at the start of `pat` (not `*`) matches
/// `c`; if so, how many pattern characters it spans.
fn match_one(pat: &[char], c: char) -> Option<usize> {
    match pat[0] {
        '?' => Some(1),
        '[' => {
            let Some(close) = pat.iter().skip(2).position(|&c| c == ']').map(|p| p + 2) else {
                return (c == '[').then_some(1);
            };
            let mut set = &pat[1..close];
            let negate = matches!(set.first(), Some('!' | '^'));
            if negate {
                set = &set[1..];
            }
            let mut hit = false;
            let mut i = 0;
            while i < set.len() {
                if i + 2 < set.len() && set[i + 1] == '-' {
                    hit |= set[i] <= c && c <= set[i + 2];
                    i += 3;
                } else {
                    hit |= set[i] == c;
                    i += 1;
                }
            }
            (hit != negate).then_some(close + 1)
        }
        '\\' if pat.len() > 1 => (pat[1] == c).then_some(2),
        p => (p == c).then_some(1),
    }
}

/// Glob match of the whole of `s` against `pat` (`*`, `?`, `[…]`, `\x`);
/// each step is paid from `steps`.
fn glob(pat: &[char], s: &[char], steps: &mut u64) -> Result<bool, String> {
    crate::wildcard::matches(
        pat,
        s,
        |p, c| match_one(&pat[p..], c).map(|n| p + n),
        || spend(steps, 1),
    )
}

/// The lengths of text `pat` can match: (the least, whether any more).
fn match_lengths(pat: &[char]) -> (usize, bool) {
    let (mut p, mut min, mut star) = (0, 0, false);
    while p < pat.len() {
        if pat[p] == '*' {
            star = true;
            p += 1;
            continue;
        }
        p += match pat[p] {
            '[' => pat.iter().skip(p + 2).position(|&c| c == ']').map_or(1, |q| q + 3),
            '\\' if p + 1 < pat.len() => 2,
            _ => 1,
        };
        min += 1;
    }
    (min, star)
}

/// Whether a text of `len` characters could match (see [`match_lengths`]).
fn could_match(len: usize, (min, star): (usize, bool)) -> bool {
    len == min || (star && len > min)
}

fn trim_pattern(s: &[char], pat: &[char], prefix: bool, longest: bool, steps: &mut u64) -> Result<String, String> {
    let n = s.len();
    let lengths = match_lengths(pat);
    let mut lens: Vec<usize> = (0..=n).filter(|&l| could_match(l, lengths)).collect();
    if longest {
        lens.reverse();
    }
    for l in lens {
        if prefix && glob(pat, &s[..l], steps)? {
            return Ok(s[l..].iter().collect());
        }
        if !prefix && glob(pat, &s[n - l..], steps)? {
            return Ok(s[..n - l].iter().collect());
        }
    }
    Ok(s.iter().collect())
}

fn replace_pattern(s: &[char], pat: &[char], repl: &str, all: bool, steps: &mut u64) -> Result<String, String> {
    let mut out = String::new();
    let mut i = 0;
    let mut done = false;
    let lengths = match_lengths(pat);
    while i < s.len() {
        if !done && !pat.is_empty() {
            // Longest match starting at i.
            let mut found = None;
            for l in (1..=s.len() - i).rev().filter(|&l| could_match(l, lengths)) {
                if glob(pat, &s[i..i + l], steps)? {
                    found = Some(l);
                    break;
                }
            }
            if let Some(l) = found {
                if out.len() + repl.len() > MAX_WORD_LEN {
                    return Err(too_long());
                }
                out.push_str(repl);
                i += l;
                done = !all;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    Ok(out)
}
