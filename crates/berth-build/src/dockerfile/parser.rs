//! Logical lines → [`Dockerfile`]: instruction names, flags, shell/exec
//! form, ENV/LABEL/ARG pairs, heredocs, stages.
//!
//! The parser keeps every argument as written (no variable expansion, no
//! quote removal except inside `--flag` words, as Docker does) and never
//! looks at anything but the text it is given.

use std::collections::BTreeMap;
use std::time::Duration;

use super::ast::*;
use super::lexer::{self, JsonForm, LogicalLine, RawFlag, Reader, Word};
use super::{suggest, Diagnostic, ParseError};

/// Every instruction keyword Docker knows (FROM included).
pub const INSTRUCTIONS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Parses a Dockerfile. `file_name` is only used in messages.
pub fn parse(source: &str, file_name: &str) -> Result<Dockerfile, ParseError> {
    let mut reader = Reader::new(source);
    let directives = reader.directives(file_name)?;
    let mut p = Parser {
        file: file_name.to_string(),
        escape: directives.escape,
        warnings: Vec::new(),
    };
    let mut global_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    while let Some(ll) = reader.next_logical() {
        if let Some(line) = ll.empty_continuation {
            p.warnings.push(Diagnostic::warn(
                "NoEmptyContinuation",
                line,
                1,
                "Empty continuation line found; empty continuation lines will become errors in a future release".into(),
            ));
        }
        let (kw, _) = keyword(&ll.text, 0);
        if kw.eq_ignore_ascii_case("FROM") {
            let stage = p.from(&ll, stages.len())?;
            stages.push(stage);
            continue;
        }
        let ins = p.instruction(&ll, 0, Some(&mut reader))?;
        match stages.last_mut() {
            Some(stage) => stage.instructions.push(ins),
            None => match ins.kind {
                InstructionKind::Arg(decls) => global_args.extend(decls),
                _ => {
                    return Err(ParseError::new(
                        file_name,
                        ins.line,
                        ins.column,
                        format!("{} instruction before the first FROM", ins.name()),
                    )
                    .with_hint("a Dockerfile must start with FROM; only ARG may come before it"))
                }
            },
        }
    }
    if stages.is_empty() {
        if global_args.is_empty() {
            return Err(ParseError::new(file_name, 1, 1, "the Dockerfile has no instructions")
                .with_hint("add a FROM instruction, e.g. `FROM alpine`"));
        }
        return Err(ParseError::new(
            file_name,
            1,
            1,
            "the Dockerfile has no FROM instruction",
        ));
    }
    Ok(Dockerfile {
        file: file_name.to_string(),
        directives,
        global_args,
        predefined_args: Default::default(),
        stages,
        warnings: p.warnings,
    })
}

/// The keyword at `start` and the offset where its arguments begin.
fn keyword(text: &str, start: usize) -> (&str, usize) {
    let rest = &text[start..];
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let after = &rest[end..];
    let args = start + end + (after.len() - after.trim_start().len());
    (&rest[..end], args)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum FlagKind {
    Str,
    Bool,
    List,
}

fn allowed_flags(name: &str) -> &'static [(&'static str, FlagKind)] {
    use FlagKind::*;
    match name {
        "FROM" => &[("platform", Str)],
        "RUN" => &[("mount", List), ("network", Str), ("security", Str)],
        "COPY" => &[
            ("from", Str),
            ("chown", Str),
            ("chmod", Str),
            ("link", Bool),
            ("exclude", List),
            ("parents", Bool),
        ],
        "ADD" => &[
            ("chown", Str),
            ("chmod", Str),
            ("link", Bool),
            ("exclude", List),
            ("keep-git-dir", Bool),
            ("checksum", Str),
        ],
        "HEALTHCHECK" => &[
            ("interval", Str),
            ("timeout", Str),
            ("start-period", Str),
            ("start-interval", Str),
            ("retries", Str),
        ],
        _ => &[],
    }
}

/// Validated flags of one instruction.
#[derive(Default)]
struct Flags {
    strs: BTreeMap<String, (String, usize)>,
    bools: BTreeMap<String, bool>,
    lists: BTreeMap<String, Vec<(String, usize)>>,
}

impl Flags {
    fn str(&self, name: &str) -> Option<String> {
        self.strs.get(name).map(|(v, _)| v.clone())
    }
    fn offset(&self, name: &str) -> Option<usize> {
        self.strs.get(name).map(|(_, o)| *o)
    }
    fn bool(&self, name: &str) -> bool {
        self.bools.get(name).copied().unwrap_or(false)
    }
    fn list(&self, name: &str) -> Vec<(String, usize)> {
        self.lists.get(name).cloned().unwrap_or_default()
    }
}

struct Parser {
    file: String,
    escape: char,
    warnings: Vec<Diagnostic>,
}

impl Parser {
    fn err(&self, ll: &LogicalLine, offset: usize, msg: impl Into<String>) -> ParseError {
        let (line, col) = ll.pos(offset);
        ParseError::new(&self.file, line, col, msg)
    }

    /// Checks the raw flags against what `name` accepts.
    fn flags(&self, ll: &LogicalLine, name: &str, raw: Vec<RawFlag>, base: usize) -> Result<Flags, ParseError> {
        let allowed = allowed_flags(name);
        let mut flags = Flags::default();
        for f in raw {
            let off = base + f.offset;
            let Some(&(_, kind)) = allowed.iter().find(|(n, _)| *n == f.name) else {
                let hint = if allowed.is_empty() {
                    format!("{name} takes no flags")
                } else {
                    let names: Vec<String> = allowed.iter().map(|(n, _)| format!("--{n}")).collect();
                    match suggest(&f.name, allowed.iter().map(|(n, _)| *n)) {
                        Some(s) => {
                            format!("did you mean --{s}? {name} accepts {}", names.join(", "))
                        }
                        None => format!("{name} accepts {}", names.join(", ")),
                    }
                };
                return Err(self.err(ll, off, format!("unknown flag: --{}", f.name)).with_hint(hint));
            };
            match kind {
                FlagKind::Str => {
                    let Some(v) = f.value else {
                        return Err(self.err(ll, off, format!("missing a value on flag: --{}", f.name)));
                    };
                    if flags.strs.insert(f.name.clone(), (v, off)).is_some() {
                        return Err(self.err(ll, off, format!("duplicate flag specified: --{}", f.name)));
                    }
                }
                FlagKind::List => {
                    let Some(v) = f.value else {
                        return Err(self.err(ll, off, format!("missing a value on flag: --{}", f.name)));
                    };
                    flags.lists.entry(f.name).or_default().push((v, off));
                }
                FlagKind::Bool => {
                    let b = match f.value.as_deref() {
                        None => true,
                        Some(v) if v.eq_ignore_ascii_case("true") => true,
                        Some(v) if v.eq_ignore_ascii_case("false") => false,
                        Some(v) => {
                            return Err(self.err(
                                ll,
                                off,
                                format!("expecting boolean value for flag --{}, not: {v}", f.name),
                            ))
                        }
                    };
                    flags.bools.insert(f.name, b);
                }
            }
        }
        Ok(flags)
    }

    fn from(&mut self, ll: &LogicalLine, index: usize) -> Result<Stage, ParseError> {
        let (_, args) = keyword(&ll.text, 0);
        let (raw, rest_rel) = lexer::extract_flags(&ll.text[args..], self.escape);
        let flags = self.flags(ll, "FROM", raw, args)?;
        let rest_off = args + rest_rel;
        let words = lexer::split_whitespace_offsets(&ll.text[rest_off..]);
        let (line, column) = ll.pos(0);
        let name = match words.len() {
            0 => return Err(self.err(ll, rest_off, "FROM requires at least one argument")),
            1 => None,
            3 if words[1].text.eq_ignore_ascii_case("as") => {
                let n = words[2].text.to_ascii_lowercase();
                let ok = n.starts_with(|c: char| c.is_ascii_lowercase())
                    && n.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
                if !ok {
                    return Err(self.err(
                        ll,
                        rest_off + words[2].offset,
                        format!(
                            "invalid name for build stage: \"{}\", name can't start with a number or contain symbols",
                            words[2].text
                        ),
                    ));
                }
                Some(n)
            }
            _ => {
                return Err(self
                    .err(ll, rest_off, "FROM requires either one or three arguments")
                    .with_hint("FROM [--platform=<platform>] <image> [AS <name>]"))
            }
        };
        Ok(Stage {
            index,
            name,
            base: words[0].text.clone(),
            platform: flags.str("platform"),
            from_line: line,
            from_column: column,
            from_original: ll.text.clone(),
            instructions: Vec::new(),
        })
    }

    /// Parses the instruction whose keyword starts at `start` in `ll.text`.
    /// `reader` is given when heredoc bodies may follow (not for ONBUILD).
    fn instruction(
        &mut self,
        ll: &LogicalLine,
        start: usize,
        reader: Option<&mut Reader<'_>>,
    ) -> Result<Instruction, ParseError> {
        let (kw, args_off) = keyword(&ll.text, start);
        let name = kw.to_ascii_uppercase();
        let (line, column) = ll.pos(start);
        if !INSTRUCTIONS.contains(&name.as_str()) {
            let mut e = self.err(ll, start, format!("unknown instruction \"{kw}\""));
            if let Some(s) = suggest(&name, INSTRUCTIONS.iter().copied()) {
                e = e.with_hint(format!("did you mean {s}?"));
            }
            return Err(e);
        }
        let mut ins = Instruction {
            line,
            end_line: ll.end_line,
            column,
            keyword: kw.to_string(),
            original: ll.text[start..].to_string(),
            kind: InstructionKind::Maintainer(String::new()),
        };
        let args = &ll.text[args_off..];
        if name == "ONBUILD" {
            if args.is_empty() {
                return Err(self.err(ll, args_off, "ONBUILD requires at least one argument"));
            }
            let (inner_kw, _) = keyword(&ll.text, args_off);
            let inner_name = inner_kw.to_ascii_uppercase();
            match inner_name.as_str() {
                "ONBUILD" => {
                    return Err(self.err(ll, args_off, "chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"))
                }
                "FROM" | "MAINTAINER" => {
                    return Err(self.err(
                        ll,
                        args_off,
                        format!("{inner_name} isn't allowed as an ONBUILD trigger"),
                    ))
                }
                _ => {}
            }
            let inner = self.instruction(ll, args_off, None)?;
            ins.kind = InstructionKind::Onbuild(Box::new(inner));
            return Ok(ins);
        }
        let (raw_flags, rest_rel) = lexer::extract_flags(args, self.escape);
        let flags = self.flags(ll, &name, raw_flags, args_off)?;
        let rest_off = args_off + rest_rel;
        let rest = &ll.text[rest_off..];
        let need = |p: &Self, what: &str| -> Result<(), ParseError> {
            if rest.trim().is_empty() {
                Err(p.err(ll, rest_off, format!("{name} requires {what}")))
            } else {
                Ok(())
            }
        };
        let esc = self.escape;
        ins.kind = match name.as_str() {
            "RUN" => {
                need(self, "at least one argument")?;
                let cmd = self.shell_or_exec(ll, rest_off)?;
                let mut mounts = Vec::new();
                for (v, off) in flags.list("mount") {
                    mounts.push(parse_mount(&v).map_err(|m| self.err(ll, off, m))?);
                }
                let network = flags.str("network");
                if let Some(n) = &network {
                    if !matches!(n.as_str(), "default" | "none" | "host") {
                        let off = flags.offset("network").unwrap_or(args_off);
                        return Err(self
                            .err(ll, off, format!("unsupported network mode \"{n}\""))
                            .with_hint("use default, none or host"));
                    }
                }
                let security = flags.str("security");
                if let Some(s) = &security {
                    if !matches!(s.as_str(), "sandbox" | "insecure") {
                        let off = flags.offset("security").unwrap_or(args_off);
                        return Err(self
                            .err(ll, off, format!("unsupported security mode \"{s}\""))
                            .with_hint("use sandbox or insecure"));
                    }
                }
                let mut heredocs = Vec::new();
                if let (ShellOrExec::Shell(text), Some(reader)) = (&cmd, reader) {
                    let words = lexer::split_words_raw(text, esc);
                    for w in &words {
                        if let Some((hname, expand, chomp)) = lexer::heredoc_marker(&w.text) {
                            let h = self.heredoc(ll, rest_off + w.offset, reader, hname, expand, chomp)?;
                            ins.end_line = reader_line(reader);
                            heredocs.push(h);
                        }
                    }
                }
                InstructionKind::Run {
                    cmd,
                    mounts,
                    network,
                    security,
                    heredocs,
                }
            }
            "CMD" | "ENTRYPOINT" => {
                need(self, "at least one argument")?;
                let cmd = self.shell_or_exec(ll, rest_off)?;
                if matches!(cmd, ShellOrExec::Shell(_)) && start == 0 {
                    self.warnings.push(Diagnostic::warn(
                        "JSONArgsRecommended",
                        line,
                        column,
                        format!(
                            "JSON arguments recommended for {name} to prevent unintended behavior related to OS signals"
                        ),
                    ));
                }
                if name == "CMD" {
                    InstructionKind::Cmd(cmd)
                } else {
                    InstructionKind::Entrypoint(cmd)
                }
            }
            "SHELL" => match lexer::json_array(rest) {
                JsonForm::Strings(v) if !v.is_empty() => InstructionKind::Shell(v),
                _ => {
                    return Err(self
                        .err(ll, rest_off, "SHELL requires the arguments to be in JSON form")
                        .with_hint("SHELL [\"/bin/bash\", \"-c\"]"))
                }
            },
            "ENV" | "LABEL" => {
                need(self, "at least one argument")?;
                let pairs = self.name_values(ll, &name, rest_off, line, column)?;
                if name == "ENV" {
                    InstructionKind::Env(pairs)
                } else {
                    InstructionKind::Label(pairs)
                }
            }
            "MAINTAINER" => {
                need(self, "exactly one argument")?;
                InstructionKind::Maintainer(rest.to_string())
            }
            "EXPOSE" => {
                need(self, "at least one argument")?;
                InstructionKind::Expose(words_text(lexer::split_whitespace_offsets(rest)))
            }
            "VOLUME" => {
                need(self, "at least one argument")?;
                match lexer::json_array(rest) {
                    JsonForm::Strings(v) => InstructionKind::Volume(v),
                    JsonForm::NonString => return Err(self.non_string(ll, rest_off)),
                    JsonForm::NotJson => InstructionKind::Volume(words_text(lexer::split_whitespace_offsets(rest))),
                }
            }
            "USER" => {
                need(self, "exactly one argument")?;
                InstructionKind::User(rest.to_string())
            }
            "WORKDIR" => {
                need(self, "exactly one argument")?;
                InstructionKind::Workdir(rest.to_string())
            }
            "STOPSIGNAL" => {
                need(self, "exactly one argument")?;
                InstructionKind::Stopsignal(rest.to_string())
            }
            "ARG" => {
                need(self, "at least one argument")?;
                let mut decls = Vec::new();
                for w in lexer::split_words_raw(rest, esc) {
                    let (n, d) = match w.text.split_once('=') {
                        Some((n, d)) => (n.to_string(), Some(d.to_string())),
                        None => (w.text.clone(), None),
                    };
                    if n.is_empty() {
                        return Err(self.err(ll, rest_off + w.offset, "ARG names can not be blank"));
                    }
                    let (line, column) = ll.pos(rest_off + w.offset);
                    decls.push(ArgDecl {
                        name: n,
                        default: d,
                        line,
                        column,
                    });
                }
                InstructionKind::Arg(decls)
            }
            "HEALTHCHECK" => self.healthcheck(ll, &flags, rest_off)?,
            "COPY" | "ADD" => {
                let mut c = CopyArgs {
                    from: flags.str("from"),
                    chown: flags.str("chown"),
                    chmod: flags.str("chmod"),
                    link: flags.bool("link"),
                    exclude: flags.list("exclude").into_iter().map(|(v, _)| v).collect(),
                    parents: flags.bool("parents"),
                    keep_git_dir: flags.bool("keep-git-dir"),
                    checksum: flags.str("checksum"),
                    ..CopyArgs::default()
                };
                let words: Vec<Word> = match lexer::json_array(rest) {
                    JsonForm::Strings(v) => {
                        c.json = true;
                        v.into_iter().map(|text| Word { text, offset: 0 }).collect()
                    }
                    JsonForm::NonString => return Err(self.non_string(ll, rest_off)),
                    JsonForm::NotJson => lexer::split_whitespace_offsets(rest),
                };
                if words.len() < 2 {
                    let msg = if words.is_empty() {
                        format!("{name} requires at least two arguments")
                    } else {
                        format!(
                            "{name} requires at least two arguments, but only one was provided. Destination could not be determined"
                        )
                    };
                    return Err(self.err(ll, rest_off, msg).with_hint(format!("{name} <src>... <dest>")));
                }
                let (last, srcs) = words.split_last().unwrap_or_else(|| unreachable!());
                let mut reader = reader;
                for w in srcs {
                    let marker = if c.json { None } else { lexer::heredoc_marker(&w.text) };
                    match (marker, reader.as_deref_mut()) {
                        (Some((hname, expand, chomp)), Some(r)) => {
                            let h = self.heredoc(ll, rest_off + w.offset, r, hname, expand, chomp)?;
                            ins.end_line = reader_line(r);
                            c.heredocs.push(h);
                        }
                        _ => c.sources.push(w.text.clone()),
                    }
                }
                if !c.json && lexer::heredoc_marker(&last.text).is_some() {
                    return Err(self.err(
                        ll,
                        rest_off + last.offset,
                        format!("the destination of {name} can not be a heredoc"),
                    ));
                }
                c.dest = last.text.clone();
                if name == "COPY" {
                    InstructionKind::Copy(c)
                } else {
                    InstructionKind::Add(c)
                }
            }
            other => unreachable!("instruction {other} is in INSTRUCTIONS but not handled"),
        };
        Ok(ins)
    }

    fn non_string(&self, ll: &LogicalLine, off: usize) -> ParseError {
        self.err(
            ll,
            off,
            "when using JSON array syntax, arrays must be comprised of strings only",
        )
    }

    fn shell_or_exec(&self, ll: &LogicalLine, off: usize) -> Result<ShellOrExec, ParseError> {
        let rest = &ll.text[off..];
        match lexer::json_array(rest) {
            JsonForm::Strings(v) => Ok(ShellOrExec::Exec(v)),
            JsonForm::NonString => Err(self.non_string(ll, off)),
            JsonForm::NotJson => Ok(ShellOrExec::Shell(rest.to_string())),
        }
    }

    fn heredoc(
        &self,
        ll: &LogicalLine,
        off: usize,
        reader: &mut Reader<'_>,
        name: String,
        expand: bool,
        chomp: bool,
    ) -> Result<Heredoc, ParseError> {
        match reader.heredoc_body(&name, chomp) {
            Some((content, _)) => Ok(Heredoc {
                name,
                content,
                expand,
                chomp_tabs: chomp,
            }),
            None => Err(self
                .err(ll, off, format!("unterminated heredoc \"{name}\""))
                .with_hint(format!("end the heredoc with a line containing only {name}"))),
        }
    }

    /// ENV/LABEL: `key=value …` or the legacy `key value`.
    fn name_values(
        &mut self,
        ll: &LogicalLine,
        name: &str,
        off: usize,
        line: usize,
        column: usize,
    ) -> Result<Vec<(String, String)>, ParseError> {
        let rest = &ll.text[off..];
        let words = lexer::split_words_raw(rest, self.escape);
        let first = &words[0];
        if !first.text.contains('=') {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let value = rest[end..].trim_start();
            if value.is_empty() {
                return Err(self
                    .err(ll, off, format!("{name} must have two arguments"))
                    .with_hint(format!("{name} key=value")));
            }
            self.warnings.push(Diagnostic::warn(
                "LegacyKeyValueFormat",
                line,
                column,
                format!("\"{name} key=value\" should be used instead of legacy \"{name} key value\" format"),
            ));
            return Ok(vec![(rest[..end].to_string(), value.to_string())]);
        }
        let mut out = Vec::new();
        for w in words {
            match w.text.split_once('=') {
                Some((k, v)) if !k.is_empty() => out.push((k.to_string(), v.to_string())),
                _ => {
                    return Err(self
                        .err(
                            ll,
                            off + w.offset,
                            format!(
                                "syntax error - can't find = in \"{}\". Must be of the form: name=value",
                                w.text
                            ),
                        )
                        .with_hint("quote values that contain spaces: key=\"a b\""))
                }
            }
        }
        Ok(out)
    }

    fn healthcheck(&self, ll: &LogicalLine, flags: &Flags, off: usize) -> Result<InstructionKind, ParseError> {
        let rest = &ll.text[off..];
        let (ty, cmd_off) = keyword(&ll.text, off);
        if rest.is_empty() {
            return Err(self.err(ll, off, "HEALTHCHECK requires at least one argument"));
        }
        if ty.eq_ignore_ascii_case("NONE") {
            if cmd_off < ll.text.len() || !flags.strs.is_empty() {
                return Err(self.err(ll, off, "HEALTHCHECK NONE takes no arguments"));
            }
            return Ok(InstructionKind::Healthcheck(Healthcheck::None));
        }
        if !ty.eq_ignore_ascii_case("CMD") {
            return Err(self
                .err(ll, off, format!("unknown type \"{ty}\" in HEALTHCHECK (try CMD)"))
                .with_hint("HEALTHCHECK [options] CMD <command>, or HEALTHCHECK NONE"));
        }
        if cmd_off >= ll.text.len() {
            return Err(self.err(ll, off, "missing command after HEALTHCHECK CMD"));
        }
        let cmd = self.shell_or_exec(ll, cmd_off)?;
        let dur = |n: &str| -> Result<Option<Duration>, ParseError> {
            let Some(v) = flags.str(n) else {
                return Ok(None);
            };
            let at = flags.offset(n).unwrap_or(off);
            let d = parse_go_duration(&v).map_err(|m| {
                self.err(ll, at, format!("invalid duration for --{n}: {m}"))
                    .with_hint("use e.g. 30s, 1m30s, 500ms")
            })?;
            if d.is_zero() {
                return Ok(None);
            }
            if d < Duration::from_millis(1) {
                return Err(self.err(ll, at, format!("--{n} cannot be less than 1ms")));
            }
            Ok(Some(d))
        };
        let retries = match flags.str("retries") {
            None => None,
            Some(v) => {
                let at = flags.offset("retries").unwrap_or(off);
                match v.trim().parse::<i64>() {
                    Ok(n) if n < 0 => return Err(self.err(ll, at, "--retries cannot be negative")),
                    Ok(0) => None,
                    Ok(n) => Some(u32::try_from(n).map_err(|_| self.err(ll, at, "--retries is too large"))?),
                    Err(_) => return Err(self.err(ll, at, format!("invalid value for --retries: \"{v}\""))),
                }
            }
        };
        Ok(InstructionKind::Healthcheck(Healthcheck::Cmd {
            cmd,
            interval: dur("interval")?,
            timeout: dur("timeout")?,
            start_period: dur("start-period")?,
            start_interval: dur("start-interval")?,
            retries,
        }))
    }
}

fn reader_line(r: &Reader<'_>) -> usize {
    r.lines_read()
}

fn words_text(words: Vec<Word>) -> Vec<String> {
    words.into_iter().map(|w| w.text).collect()
}

/// Parses a Go duration (`300ms`, `1.5h`, `1m30s`, `0`).
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let orig = s;
    let s = s.trim();
    let s = s.strip_prefix('+').unwrap_or(s);
    if s.starts_with('-') {
        return Err(format!("\"{orig}\" is negative"));
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let mut total: f64 = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." {
            return Err(format!("\"{orig}\" is not a duration"));
        }
        let value: f64 = num.parse().map_err(|_| format!("\"{orig}\" is not a duration"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let nanos = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("missing unit in duration \"{orig}\"")),
            u => return Err(format!("unknown unit \"{u}\" in duration \"{orig}\"")),
        };
        total += value * nanos;
        rest = &rest[unit_len..];
    }
    if total > u64::MAX as f64 {
        return Err(format!("\"{orig}\" is too large"));
    }
    Ok(Duration::from_nanos(total.round() as u64))
}

/// `type=cache,target=/root/.cache,sharing=locked` → [`RunMount`].
pub fn parse_mount(spec: &str) -> Result<RunMount, String> {
    let mut kind = MountKind::Bind;
    let mut target = None;
    let mut options = BTreeMap::new();
    for field in split_csv(spec) {
        let field = field.trim();
        if field.is_empty() {
            continue;
        }
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim().to_string())),
            None => (field.to_ascii_lowercase(), None),
        };
        let bool_val = |v: &Option<String>| -> Result<bool, String> {
            match v.as_deref() {
                None => Ok(true),
                Some(s) if s.eq_ignore_ascii_case("true") => Ok(true),
                Some(s) if s.eq_ignore_ascii_case("false") => Ok(false),
                Some(s) => Err(format!("invalid value for {k}: \"{s}\"")),
            }
        };
        let need = |v: Option<String>| v.ok_or_else(|| format!("--mount: {k} requires a value"));
        match k.as_str() {
            "type" => {
                kind = match need(v)?.as_str() {
                    "bind" => MountKind::Bind,
                    "cache" => MountKind::Cache,
                    "tmpfs" => MountKind::Tmpfs,
                    "secret" => MountKind::Secret,
                    "ssh" => MountKind::Ssh,
                    other => return Err(format!("unsupported mount type \"{other}\"")),
                }
            }
            "target" | "dst" | "destination" => target = Some(need(v)?),
            "source" | "src" => {
                options.insert("source".to_string(), need(v)?);
            }
            "readonly" | "ro" => {
                options.insert("readonly".to_string(), bool_val(&v)?.to_string());
            }
            "rw" | "readwrite" => {
                options.insert("readonly".to_string(), (!bool_val(&v)?).to_string());
            }
            "required" => {
                options.insert("required".to_string(), bool_val(&v)?.to_string());
            }
            "sharing" => {
                let s = need(v)?;
                if !matches!(s.as_str(), "shared" | "private" | "locked") {
                    return Err(format!(
                        "unsupported sharing value \"{s}\" (use shared, private or locked)"
                    ));
                }
                options.insert(k, s);
            }
            "from" | "id" | "mode" | "uid" | "gid" | "size" | "env" => {
                options.insert(k.clone(), need(v)?);
            }
            _ => return Err(format!("unexpected key '{k}' in '{field}'")),
        }
    }
    if target.is_none() && matches!(kind, MountKind::Bind | MountKind::Cache | MountKind::Tmpfs) {
        return Err("--mount: target is required for this mount type".into());
    }
    Ok(RunMount { kind, target, options })
}

/// Splits on commas outside double quotes, removing the quotes.
fn split_csv(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}
