//! The crate's single error type.
//!
//! Every message says what failed, why, and (where there is one) what the
//! user can do about it. This module must never print or log: callers decide
//! how errors reach the user.

use std::path::PathBuf;

/// Exit code Docker uses when the engine itself failed.
pub const EXIT_ENGINE_FAILURE: i32 = 125;
/// Exit code Docker uses when the command exists but cannot be executed.
pub const EXIT_NOT_EXECUTABLE: i32 = 126;
/// Exit code Docker uses when the command was not found.
pub const EXIT_NOT_FOUND: i32 = 127;

/// Everything that can go wrong while preparing, running or supervising a container.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A file-system or system call failed; `what` names the operation and the object.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },

    /// The container configuration is invalid (bad option value, unknown capability, ...).
    #[error("invalid container configuration: {0}")]
    InvalidConfig(String),

    /// A user or group named in `--user` does not exist in the image.
    #[error(
        "unable to find user {user}: {reason} (add the user to the image's /etc/passwd or use a numeric uid[:gid])"
    )]
    UserNotFound { user: String, reason: String },

    /// A group named in `--group-add` does not exist in the image.
    #[error("unable to find group {0}: no matching entries in group file")]
    GroupNotFound(String),

    /// Mounting or unmounting failed.
    #[error("mount of {target} failed: {reason}")]
    Mount { target: PathBuf, reason: String },

    /// No usable OCI runtime was found.
    #[error("no OCI runtime found: {0} (install runc or crun, or pass the runtime's path explicitly)")]
    NoRuntime(String),

    /// The OCI runtime ran but reported failure.
    #[error("{runtime} {command} failed ({status}): {message}")]
    RuntimeFailed {
        runtime: String,
        command: String,
        status: String,
        message: String,
    },

    /// The container could not be started; `code` is the exit code Docker would report (125/126/127).
    #[error("{message}")]
    StartFailed { code: i32, message: String },

    /// Like `StartFailed`, but the runtime itself already wrote why on the
    /// stderr it shares with the user (crun and runc do for `exec`), so
    /// printing it again would say it twice.
    #[error("the OCI runtime failed to start the process (exit code {code}; it printed why)")]
    Reported { code: i32 },

    /// A monitor holding a created container for its start (see
    /// [`crate::warm`]) was told to let it go, or waited in vain: the
    /// container stays created, as it was, and nothing is recorded.
    #[error("the container's early create was let go before its start")]
    WarmAbandoned,

    /// A state, config or log file could not be parsed.
    #[error("cannot parse {path}: {reason} (the file may be corrupt; remove the container and recreate it)")]
    Corrupt { path: PathBuf, reason: String },

    /// The container is not in a state that allows the requested operation.
    #[error("container {id} is {status}: {what}")]
    WrongState { id: String, status: String, what: String },

    /// The feature requested is not available on this host.
    #[error("{0}")]
    Unsupported(String),

    /// An image of another platform that this host cannot run as it is set
    /// up: `gap` says why and what to do (`has no binfmt handler for it:
    /// run berth system binfmt --install arm64`). Docker's exit code 125.
    #[error("image is {image}, this host is {host} and {gap}")]
    ForeignPlatform { image: String, host: String, gap: String },
}

impl RuntimeError {
    /// Wraps an I/O error with a description of the operation that failed.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        RuntimeError::Io {
            what: what.into(),
            source,
        }
    }

    /// The exit code Docker's CLI would use for this error: 126/127 for
    /// commands that cannot be run, 125 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            RuntimeError::StartFailed { code, .. } | RuntimeError::Reported { code } => *code,
            _ => EXIT_ENGINE_FAILURE,
        }
    }
}

impl From<rustix::io::Errno> for RuntimeError {
    fn from(e: rustix::io::Errno) -> Self {
        RuntimeError::io("system call failed", e.into())
    }
}

/// Shorthand for `Result<T, RuntimeError>`.
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

/// Adds context to `std::io::Result`s.
pub(crate) trait IoContext<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| RuntimeError::io(what(), e))
    }
}

impl<T> IoContext<T> for std::result::Result<T, rustix::io::Errno> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| RuntimeError::io(what(), e.into()))
    }
}
