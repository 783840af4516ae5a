//! The Dockerfile syntax tree, with source positions.
//!
//! These are plain data types: no parsing, no expansion, no I/O here. Text
//! is kept as written (unexpanded; quotes in ENV/LABEL/ARG values and in
//! shell-form paths are still present) — [`super::expand`] turns it into
//! what the executor uses.

use std::collections::BTreeMap;
use std::time::Duration;

use super::Diagnostic;

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The file name given to [`super::parse`], for messages.
    pub file: String,
    pub directives: Directives,
    /// `ARG`s before the first `FROM` (visible to `FROM` lines only, unless
    /// a stage declares them again).
    pub global_args: Vec<ArgDecl>,
    /// The predefined platform ARGs of the build this file is for
    /// (`TARGETARCH`, `BUILDPLATFORM`, …): in the global scope with the
    /// global ARGs, as BuildKit has them. Empty after parsing; the executor
    /// sets them from the build's target platform.
    pub predefined_args: BTreeMap<String, String>,
    pub stages: Vec<Stage>,
    /// Warnings found while parsing (`JSONArgsRecommended`,
    /// `NoEmptyContinuation`, `LegacyKeyValueFormat`).
    pub warnings: Vec<Diagnostic>,
}

/// Parser directives from the top of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    /// `# syntax=docker/dockerfile:1`
    pub syntax: Option<String>,
    /// `# escape=\` (default) or `` # escape=` ``.
    pub escape: char,
    /// `# check=skip=RuleA,RuleB;error=true`, raw.
    pub check: Option<String>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            syntax: None,
            escape: '\\',
            check: None,
        }
    }
}

impl Directives {
    /// Rules skipped by `# check=skip=…` (`["all"]` skips every rule).
    pub fn check_skips(&self) -> Vec<String> {
        self.check_field("skip")
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `# check=error=true`: warnings fail the build.
    pub fn check_is_error(&self) -> bool {
        self.check_field("error")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    }

    fn check_field(&self, key: &str) -> Option<String> {
        let check = self.check.as_deref()?;
        check.split(';').find_map(|part| {
            let (k, v) = part.split_once('=')?;
            k.trim().eq_ignore_ascii_case(key).then(|| v.to_string())
        })
    }
}

/// `ARG name[=default]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    pub name: String,
    /// Unexpanded, quotes still present.
    pub default: Option<String>,
    /// Where the declaration is (1-based line and column), for errors.
    pub line: usize,
    pub column: usize,
}

/// One `FROM` and what follows it up to the next `FROM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub index: usize,
    /// `AS name`, lowercased as Docker does.
    pub name: Option<String>,
    /// The image (or stage) reference, unexpanded (`${BASE}` stays).
    pub base: String,
    /// `--platform=…`, unexpanded.
    pub platform: Option<String>,
    pub from_line: usize,
    /// Column of the `FROM` keyword.
    pub from_column: usize,
    /// The `FROM` line as written, for display and lint.
    pub from_original: String,
    pub instructions: Vec<Instruction>,
}

/// One instruction inside a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// 1-based line of the instruction's first line.
    pub line: usize,
    /// Last line, including continuations and heredoc bodies.
    pub end_line: usize,
    /// 1-based column of the keyword.
    pub column: usize,
    /// The keyword as written (`run`, `Run`, `RUN`).
    pub keyword: String,
    /// Source text with continuations joined (heredoc bodies not included),
    /// for "Step 3/9 : RUN make".
    pub original: String,
    pub kind: InstructionKind,
}

impl Instruction {
    /// The upper-case instruction name (`RUN`, `COPY`, …).
    pub fn name(&self) -> &'static str {
        self.kind.name()
    }
}

/// Shell form (a string the shell runs) or exec form (a JSON array).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShellOrExec {
    Shell(String),
    Exec(Vec<String>),
}

/// The instructions that may follow `FROM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstructionKind {
    Run {
        /// For heredocs the command text keeps its `<<EOF` markers; see
        /// [`run_heredoc_plan`].
        cmd: ShellOrExec,
        mounts: Vec<RunMount>,
        network: Option<String>,
        security: Option<String>,
        heredocs: Vec<Heredoc>,
    },
    Cmd(ShellOrExec),
    Entrypoint(ShellOrExec),
    Shell(Vec<String>),
    Label(Vec<(String, String)>),
    Maintainer(String),
    Expose(Vec<String>),
    Env(Vec<(String, String)>),
    Copy(CopyArgs),
    Add(CopyArgs),
    Volume(Vec<String>),
    User(String),
    Workdir(String),
    Arg(Vec<ArgDecl>),
    Onbuild(Box<Instruction>),
    Stopsignal(String),
    Healthcheck(Healthcheck),
}

impl InstructionKind {
    /// The upper-case instruction name.
    pub fn name(&self) -> &'static str {
        match self {
            InstructionKind::Run { .. } => "RUN",
            InstructionKind::Cmd(_) => "CMD",
            InstructionKind::Entrypoint(_) => "ENTRYPOINT",
            InstructionKind::Shell(_) => "SHELL",
            InstructionKind::Label(_) => "LABEL",
            InstructionKind::Maintainer(_) => "MAINTAINER",
            InstructionKind::Expose(_) => "EXPOSE",
            InstructionKind::Env(_) => "ENV",
            InstructionKind::Copy(_) => "COPY",
            InstructionKind::Add(_) => "ADD",
            InstructionKind::Volume(_) => "VOLUME",
            InstructionKind::User(_) => "USER",
            InstructionKind::Workdir(_) => "WORKDIR",
            InstructionKind::Arg(_) => "ARG",
            InstructionKind::Onbuild(_) => "ONBUILD",
            InstructionKind::Stopsignal(_) => "STOPSIGNAL",
            InstructionKind::Healthcheck(_) => "HEALTHCHECK",
        }
    }
}

/// Arguments of `COPY` and `ADD`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CopyArgs {
    /// Sources as written, heredoc sources excluded (they are in `heredocs`).
    pub sources: Vec<String>,
    pub dest: String,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub exclude: Vec<String>,
    pub parents: bool,
    pub keep_git_dir: bool,
    pub checksum: Option<String>,
    /// `COPY <<EOF /file`: each heredoc is a source file named after its
    /// delimiter.
    pub heredocs: Vec<Heredoc>,
    /// True for the JSON form (`COPY ["a b", "/d/"]`): no quote processing.
    pub json: bool,
}

/// A here-document body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter with quotes removed (`EOF`).
    pub name: String,
    /// The body, each line ending in `\n`; for `<<-` leading tabs are
    /// already stripped.
    pub content: String,
    /// False if the delimiter was quoted (`<<"EOF"`, `<<'EOF'`).
    pub expand: bool,
    /// `<<-EOF`.
    pub chomp_tabs: bool,
}

/// How to run a `RUN` whose command contains heredocs, as Docker does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunHeredocPlan {
    /// `RUN <<EOF` alone: the body is the script. If it starts with `#!`
    /// Docker writes it to a file and executes it; otherwise it runs it
    /// with the shell (`/bin/sh -c <body>`).
    Script(String),
    /// `RUN cmd <<EOF …`: the shell gets the command line followed by each
    /// body and delimiter, and processes the here-documents itself.
    Shell(String),
}

/// For a `RUN` with heredocs, what to hand to the shell; `None` when there
/// are no heredocs or the command is in exec form.
pub fn run_heredoc_plan(cmd: &ShellOrExec, heredocs: &[Heredoc]) -> Option<RunHeredocPlan> {
    let ShellOrExec::Shell(text) = cmd else {
        return None;
    };
    let first = heredocs.first()?;
    let words: Vec<&str> = text.split_whitespace().collect();
    if heredocs.len() == 1 && words.len() == 1 && super::lexer::heredoc_marker(words[0]).is_some() {
        return Some(RunHeredocPlan::Script(first.content.clone()));
    }
    let mut full = text.clone();
    for h in heredocs {
        full.push('\n');
        full.push_str(&h.content);
        full.push_str(&h.name);
    }
    Some(RunHeredocPlan::Shell(full))
}

/// `RUN --mount=type=…`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunMount {
    pub kind: MountKind,
    /// `target=`/`dst=`/`destination=`; required for bind, cache, tmpfs.
    pub target: Option<String>,
    /// Other options with canonical keys: `source` (also from `src`),
    /// `from`, `id`, `sharing`, `mode`, `uid`, `gid`, `readonly`
    /// (`"true"`/`"false"`, from `ro`/`readonly`/`rw`/`readwrite`),
    /// `required`, `size`, `env`. Values unexpanded.
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MountKind {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

/// `HEALTHCHECK NONE` or `HEALTHCHECK [options] CMD …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    None,
    Cmd {
        cmd: ShellOrExec,
        /// `None` when not given or given as 0 (Docker's default applies).
        interval: Option<Duration>,
        timeout: Option<Duration>,
        start_period: Option<Duration>,
        start_interval: Option<Duration>,
        retries: Option<u32>,
    },
}
