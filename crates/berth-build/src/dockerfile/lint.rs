//! `docker build --check`: style and correctness rules over a parsed
//! Dockerfile, named after BuildKit's rules where one exists.
//!
//! Lint only reads the AST and returns diagnostics; it must never fail a
//! parse, change the AST, or look at the build context or images (callers
//! that know a base image's ENV pass it through [`check_with_base_env`]).
//!
//! Rules: `JSONArgsRecommended`, `NoEmptyContinuation`,
//! `LegacyKeyValueFormat` (found by the parser), `UndefinedArgInFrom`,
//! `UndefinedVar`, `DuplicateStageName`, `StageNameCasing`,
//! `ReservedStageName`, `FromAsCasing`, `MaintainerDeprecated`,
//! `ConsistentInstructionCasing`, `MultipleInstructionsDisallowed`,
//! `WorkdirRelativePath`, `RedundantTargetPlatform`, and berth's own
//! `CopyFromInvalidStage` (an error: `--from=<n>` that is not an earlier
//! stage). `# check=skip=…;error=true` is honoured.

use std::collections::{BTreeMap, BTreeSet};

use super::ast::{Dockerfile, Instruction, InstructionKind};
use super::expand::{expand, undefined_vars};
use super::lexer;
use super::{suggest, Diagnostic, Severity};

/// Build args every build defines without an `ARG` in the Dockerfile
/// (platform args, proxies, BuildKit knobs): never "undefined".
pub const PREDEFINED_ARGS: &[&str] = &[
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
    "TARGETSTAGE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "FTP_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "ftp_proxy",
    "no_proxy",
    "all_proxy",
    "SOURCE_DATE_EPOCH",
    "BUILDKIT_SYNTAX",
    "BUILDKIT_CONTEXT_KEEP_GIT_DIR",
    "BUILDKIT_INLINE_CACHE",
    "BUILDKIT_MULTI_PLATFORM",
    "BUILDKIT_SANDBOX_HOSTNAME",
];

/// Runs every rule. Base images are assumed to define only `PATH`.
pub fn check(df: &Dockerfile) -> Vec<Diagnostic> {
    check_with_base_env(df, &|_| None)
}

/// Like [`check`], with the ENV names of external base images when known
/// (`base_env(expanded_image_ref)`), so `UndefinedVar` does not flag e.g.
/// `$GOPATH` on `FROM golang`.
pub fn check_with_base_env(df: &Dockerfile, base_env: &dyn Fn(&str) -> Option<Vec<String>>) -> Vec<Diagnostic> {
    let mut out = df.warnings.clone();
    let esc = df.directives.escape;
    let global_names: BTreeSet<String> = df.global_args.iter().map(|a| a.name.clone()).collect();
    let globals = df.global_arg_values(&BTreeMap::new());

    // Keyword casing across the whole file.
    let mut keywords: Vec<(String, usize, usize)> = Vec::new();
    for st in &df.stages {
        let (kw, _) = split_kw(&st.from_original);
        keywords.push((kw.to_string(), st.from_line, st.from_column));
        for ins in &st.instructions {
            keywords.push((ins.keyword.clone(), ins.line, ins.column));
        }
    }
    let upper = keywords.iter().filter(|(k, _, _)| is_upper(k)).count();
    let lower = keywords.iter().filter(|(k, _, _)| is_lower(k)).count();
    let majority_upper = upper >= lower;
    for (k, line, col) in &keywords {
        let ok = if majority_upper { is_upper(k) } else { is_lower(k) };
        if !ok {
            let case = if majority_upper { "uppercase" } else { "lowercase" };
            out.push(Diagnostic::warn(
                "ConsistentInstructionCasing",
                *line,
                *col,
                format!("Command '{k}' should match the case of the command majority ({case})"),
            ));
        }
    }

    let mut seen_names: BTreeMap<String, usize> = BTreeMap::new();
    // Per stage: ENV names at its end, and whether an absolute WORKDIR is set.
    let mut stage_env: Vec<BTreeSet<String>> = Vec::new();
    let mut stage_abs_workdir: Vec<bool> = Vec::new();

    for st in &df.stages {
        let (l, c) = (st.from_line, st.from_column);
        // FROM words: keyword, flags, image [AS name].
        let (kw, args) = split_kw(&st.from_original);
        let (_, rest) = lexer::extract_flags(args, esc);
        let words = lexer::split_whitespace_offsets(&args[rest..]);
        if words.len() == 3 {
            let as_kw = &words[1].text;
            if (is_upper(kw) && !is_upper(as_kw)) || (is_lower(kw) && !is_lower(as_kw)) {
                out.push(Diagnostic::warn(
                    "FromAsCasing",
                    l,
                    c,
                    format!("'{as_kw}' and '{kw}' keywords' casing do not match"),
                ));
            }
            let written = &words[2].text;
            if written.to_ascii_lowercase() != *written {
                out.push(Diagnostic::warn(
                    "StageNameCasing",
                    l,
                    c,
                    format!("Stage name '{written}' should be lowercase"),
                ));
            }
        }
        if let Some(name) = &st.name {
            if name == "scratch" || name == "context" {
                out.push(Diagnostic::warn(
                    "ReservedStageName",
                    l,
                    c,
                    format!("'{name}' is reserved and should not be used as a stage name"),
                ));
            }
            if seen_names.insert(name.clone(), st.index).is_some() {
                out.push(Diagnostic::warn(
                    "DuplicateStageName",
                    l,
                    c,
                    format!("Duplicate stage name '{name}', stage names should be unique"),
                ));
            }
        }
        let in_from = |k: &str| (global_names.contains(k) || PREDEFINED_ARGS.contains(&k)).then(String::new);
        let mut from_words = vec![st.base.clone()];
        from_words.extend(st.platform.clone());
        for w in &from_words {
            for v in undefined_vars(w, &in_from, esc) {
                let mut msg = format!("FROM argument '{v}' is not declared");
                if let Some(s) = suggest(&v, global_names.iter().map(String::as_str)) {
                    msg.push_str(&format!(" (did you mean {s}?)"));
                }
                out.push(Diagnostic::warn("UndefinedArgInFrom", l, c, msg));
            }
        }
        if let Some(p) = &st.platform {
            if p == "$TARGETPLATFORM" || p == "${TARGETPLATFORM}" {
                out.push(Diagnostic::warn(
                    "RedundantTargetPlatform",
                    l,
                    c,
                    "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior".into(),
                ));
            }
        }

        // What the stage starts with.
        let look_global = |k: &str| globals.get(k).cloned();
        let base_ref = expand(&st.base, &look_global, esc).unwrap_or_else(|_| st.base.clone());
        let base_stage = df.base_stage(st.index, &BTreeMap::new());
        let mut env: BTreeSet<String> = match base_stage {
            Some(b) => stage_env[b].clone(),
            None => base_env(&base_ref)
                .map(|v| v.into_iter().collect())
                .unwrap_or_else(|| BTreeSet::from(["PATH".to_string()])),
        };
        let mut abs_workdir = base_stage.map(|b| stage_abs_workdir[b]).unwrap_or(false);
        let mut args: BTreeSet<String> = BTreeSet::new();
        let mut counts: BTreeMap<&'static str, Vec<&Instruction>> = BTreeMap::new();

        for ins in &st.instructions {
            let name = ins.name();
            if matches!(name, "CMD" | "ENTRYPOINT" | "HEALTHCHECK") {
                counts.entry(name).or_default().push(ins);
            }
            // UndefinedVar: check the words with what is defined before.
            let known =
                |k: &str| (env.contains(k) || args.contains(k) || PREDEFINED_ARGS.contains(&k)).then(String::new);
            for w in expandable_words(&ins.kind) {
                for v in undefined_vars(&w, &known, esc) {
                    let mut msg = format!("Usage of undefined variable '${v}'");
                    let cands: Vec<&str> = env.iter().chain(args.iter()).map(String::as_str).collect();
                    if let Some(s) = suggest(&v, cands) {
                        msg.push_str(&format!(" (did you mean ${s}?)"));
                    }
                    let col = var_column(ins, &v);
                    out.push(Diagnostic::warn("UndefinedVar", ins.line, col, msg));
                }
            }
            match &ins.kind {
                InstructionKind::Env(pairs) => env.extend(pairs.iter().map(|(k, _)| k.clone())),
                InstructionKind::Arg(decls) => args.extend(decls.iter().map(|d| d.name.clone())),
                InstructionKind::Maintainer(_) => out.push(Diagnostic::warn(
                    "MaintainerDeprecated",
                    ins.line,
                    ins.column,
                    "Maintainer instruction is deprecated in favor of using label".into(),
                )),
                InstructionKind::Workdir(w) => {
                    let w = w.trim_matches(|c| c == '"' || c == '\'');
                    if w.starts_with('/') || w.starts_with('$') {
                        abs_workdir = true;
                    } else if !abs_workdir {
                        out.push(Diagnostic::warn(
                            "WorkdirRelativePath",
                            ins.line,
                            ins.column,
                            format!("Relative workdir '{w}' can have unexpected results if the base image changes"),
                        ));
                    }
                }
                InstructionKind::Copy(c) => {
                    if let Some(f) = &c.from {
                        out.extend(bad_index(f, st.index, ins, "COPY --from"));
                    }
                }
                InstructionKind::Run { mounts, .. } => {
                    for m in mounts {
                        if let Some(f) = m.options.get("from") {
                            out.extend(bad_index(f, st.index, ins, "RUN --mount from"));
                        }
                    }
                }
                _ => {}
            }
        }
        for (name, list) in counts {
            if list.len() > 1 {
                for ins in &list[..list.len() - 1] {
                    out.push(Diagnostic::warn(
                        "MultipleInstructionsDisallowed",
                        ins.line,
                        ins.column,
                        format!(
                            "Multiple {name} instructions should not be used in the same stage because only the last one will be used"
                        ),
                    ));
                }
            }
        }
        stage_env.push(env);
        stage_abs_workdir.push(abs_workdir);
    }

    let skips = df.directives.check_skips();
    let all = skips.iter().any(|s| s.eq_ignore_ascii_case("all"));
    out.retain(|d| !all && !skips.iter().any(|s| s == d.rule));
    if df.directives.check_is_error() {
        for d in &mut out {
            d.severity = Severity::Error;
        }
    }
    out.sort_by_key(|d| (d.line, d.column));
    out
}

fn split_kw(text: &str) -> (&str, &str) {
    let end = text.find(char::is_whitespace).unwrap_or(text.len());
    (&text[..end], text[end..].trim_start())
}

fn is_upper(s: &str) -> bool {
    s.chars().all(|c| !c.is_ascii_lowercase())
}

fn is_lower(s: &str) -> bool {
    s.chars().all(|c| !c.is_ascii_uppercase())
}

/// The words of an instruction that Docker expands.
fn expandable_words(kind: &InstructionKind) -> Vec<String> {
    match kind {
        InstructionKind::Env(p) | InstructionKind::Label(p) => {
            p.iter().flat_map(|(k, v)| [k.clone(), v.clone()]).collect()
        }
        InstructionKind::Arg(d) => d.iter().filter_map(|d| d.default.clone()).collect(),
        InstructionKind::Copy(c) | InstructionKind::Add(c) => {
            let mut w = c.sources.clone();
            w.push(c.dest.clone());
            w.extend(c.from.clone());
            w.extend(c.chown.clone());
            w.extend(c.chmod.clone());
            w.extend(c.exclude.clone());
            w
        }
        InstructionKind::Expose(v) | InstructionKind::Volume(v) => v.clone(),
        InstructionKind::User(s) | InstructionKind::Workdir(s) | InstructionKind::Stopsignal(s) => {
            vec![s.clone()]
        }
        _ => Vec::new(),
    }
}

/// Column of `$name`/`${name}` in the instruction's first line, or the
/// instruction's column.
fn var_column(ins: &Instruction, name: &str) -> usize {
    let first = ins.original.lines().next().unwrap_or("");
    for pat in [format!("${{{name}"), format!("${name}")] {
        if let Some(i) = first.find(&pat) {
            return ins.column + first[..i].chars().count();
        }
    }
    ins.column
}

fn bad_index(from: &str, current: usize, ins: &Instruction, what: &str) -> Option<Diagnostic> {
    let n: usize = from.parse().ok()?;
    let message = if n == current {
        format!("{what}={n} refers to the current stage")
    } else if n > current {
        format!("{what}={n} refers to a stage that does not come before this one (stage {current})")
    } else {
        return None;
    };
    Some(Diagnostic {
        rule: "CopyFromInvalidStage",
        line: ins.line,
        column: ins.column,
        message,
        severity: Severity::Error,
    })
}
