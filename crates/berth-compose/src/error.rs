//! Errors of loading a compose project: each says where (file:line:column), which
//! value (the dotted path, `services.web.ports[1]`) and what was expected.
//! Exit codes are Docker Compose v2's: 14 when no file is found, 15 when a
//! file is bad.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a value was written: file, line (1-based) and column (1-based).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loc {
    /// The compose file.
    pub file: Arc<Path>,
    /// Line, from 1 (0 when unknown).
    pub line: usize,
    /// Column, from 1.
    pub col: usize,
}

impl Loc {
    /// A location in `file`.
    pub fn new(file: &Arc<Path>, line: usize, col: usize) -> Loc {
        Loc {
            file: file.clone(),
            line,
            col,
        }
    }
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Relative to the working directory when below it, as users wrote it.
        let shown = std::env::current_dir()
            .ok()
            .and_then(|cwd| self.file.strip_prefix(cwd).ok().map(Path::to_path_buf))
            .unwrap_or_else(|| self.file.to_path_buf());
        match (self.line, self.col) {
            (0, _) => write!(f, "{}", shown.display()),
            (line, 0) => write!(f, "{}:{line}", shown.display()),
            (line, col) => write!(f, "{}:{line}:{col}", shown.display()),
        }
    }
}

/// Why a compose project could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// No compose file in the directory or any parent.
    #[error("no configuration file provided: not found")]
    NoConfigFile,
    /// A file named on the command line or by `COMPOSE_FILE`/`include`/`extends` is missing.
    #[error("open {}: no such file or directory", .0.display())]
    FileNotFound(PathBuf),
    /// Reading a file failed.
    #[error("reading {}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid YAML.
    #[error("{loc}: {message}")]
    Yaml {
        /// Where.
        loc: Loc,
        /// The parser's complaint.
        message: String,
    },
    /// A value is not what the Compose Specification allows there.
    #[error("{}{}{message}", loc_prefix(.loc), path_prefix(.path))]
    Invalid {
        /// Where, when known.
        loc: Option<Loc>,
        /// The dotted path of the value (`services.web.ports[1]`).
        path: String,
        /// What was expected and what was found.
        message: String,
    },
    /// A project-level problem that has no single location (name, cycles across files…).
    #[error("{0}")]
    Project(String),
}

fn path_prefix(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    }
}

fn loc_prefix(loc: &Option<Loc>) -> String {
    match loc {
        Some(l) => format!("{l}: "),
        None => String::new(),
    }
}

impl ComposeError {
    /// The exit code Docker Compose v2 uses for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            ComposeError::NoConfigFile | ComposeError::FileNotFound(_) => 14,
            ComposeError::Io { .. } => 1,
            _ => 15,
        }
    }

    /// An invalid value at `path`, written at `loc`.
    pub fn invalid(loc: &Loc, path: &str, message: impl Into<String>) -> ComposeError {
        ComposeError::Invalid {
            loc: Some(loc.clone()),
            path: path.to_string(),
            message: message.into(),
        }
    }
}
