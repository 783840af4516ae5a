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

use std::collections::BTreeMap;

use super::ast::{Instruction, InstructionKind, Stage};
use super::ExpandError;

/// The variable lookup the caller provides.
pub type Vars<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Expands one word (quotes removed, whitespace kept).
pub fn expand(word: &str, vars: Vars<'_>, escape: char) -> Result<String, ExpandError> {
    let mut lx = Lexer::new(word, vars, escape, false);
    let mut out = Out::new(false);
    lx.process(None, &mut out).map_err(err)?;
    Ok(out.finish_one())
}

/// Expands and splits on unquoted whitespace (also whitespace that comes
/// from an unquoted variable's value), as for EXPOSE.
pub fn expand_words(text: &str, vars: Vars<'_>, escape: char) -> Result<Vec<String>, ExpandError> {
    let mut lx = Lexer::new(text, vars, escape, false);
    let mut out = Out::new(true);
    lx.process(None, &mut out).map_err(err)?;
    Ok(out.finish_words())
}

/// Expands variables in a heredoc body (or a JSON-form argument): quotes
/// and escape characters stay as they are, only `$…` is replaced, and an
/// escaped `$` is kept with its escape.
pub fn expand_raw(text: &str, vars: Vars<'_>, escape: char) -> Result<String, ExpandError> {
    let mut lx = Lexer::new(text, vars, escape, true);
    let mut out = Out::new(false);
    lx.process(None, &mut out).map_err(err)?;
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
    let one = |s: &str| expand(s, vars, escape).map_err(at);
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
            let path = |s: &str| {
                if c.json {
                    expand_raw(s, vars, escape).map_err(at)
                } else {
                    one(s)
                }
            };
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
                h.content = expand_raw(&h.content, vars, escape).map_err(at)?;
            }
        }
        InstructionKind::Expose(ports) => {
            let mut all = Vec::new();
            for p in ports.iter() {
                all.extend(expand_words(p, vars, escape).map_err(at)?);
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

/// Collects output characters, optionally splitting into words.
struct Out {
    split: bool,
    words: Vec<String>,
    cur: String,
    started: bool,
}

impl Out {
    fn new(split: bool) -> Self {
        Out {
            split,
            words: Vec::new(),
            cur: String::new(),
            started: false,
        }
    }

    /// A character that never splits (quoted or escaped).
    fn lit(&mut self, c: char) {
        self.cur.push(c);
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

    fn braced(&mut self, out: &mut Out, quoted: bool) -> Result<(), String> {
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
                self.lookup(&name).map(|v| {
                    let s: Vec<char> = v.chars().collect();
                    trim_pattern(&s, &pat, op == '#', longest)
                })
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
                self.lookup(&name)
                    .map(|v| replace_pattern(&v.chars().collect::<Vec<_>>(), &pat, &repl, all))
            }
            other => return Err(format!("unsupported modifier ({other}) in substitution")),
        };
        if let Some(v) = value {
            out.text(&v, quoted);
        }
        Ok(())
    }
}

/// Glob match of the whole of `s` against `pat` (`*`, `?`, `[…]`, `\x`).
fn glob(pat: &[char], s: &[char]) -> bool {
    match pat.first() {
        None => s.is_empty(),
        Some('*') => (0..=s.len()).any(|i| glob(&pat[1..], &s[i..])),
        Some('?') => !s.is_empty() && glob(&pat[1..], &s[1..]),
        Some('[') => {
            let Some(close) = pat.iter().skip(2).position(|&c| c == ']').map(|p| p + 2) else {
                return s.first() == Some(&'[') && glob(&pat[1..], &s[1..]);
            };
            let Some(&c) = s.first() else { return false };
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
            hit != negate && glob(&pat[close + 1..], &s[1..])
        }
        Some('\\') if pat.len() > 1 => s.first() == Some(&pat[1]) && glob(&pat[2..], &s[1..]),
        Some(&p) => s.first() == Some(&p) && glob(&pat[1..], &s[1..]),
    }
}

fn trim_pattern(s: &[char], pat: &[char], prefix: bool, longest: bool) -> String {
    let n = s.len();
    let mut lens: Vec<usize> = (0..=n).collect();
    if longest {
        lens.reverse();
    }
    for l in lens {
        if prefix && glob(pat, &s[..l]) {
            return s[l..].iter().collect();
        }
        if !prefix && glob(pat, &s[n - l..]) {
            return s[..n - l].iter().collect();
        }
    }
    s.iter().collect()
}

fn replace_pattern(s: &[char], pat: &[char], repl: &str, all: bool) -> String {
    let mut out = String::new();
    let mut i = 0;
    let mut done = false;
    while i < s.len() {
        if !done && !pat.is_empty() {
            // Longest match starting at i.
            if let Some(l) = (1..=s.len() - i).rev().find(|&l| glob(pat, &s[i..i + l])) {
                out.push_str(repl);
                i += l;
                done = !all;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}
