//! The engine's one error type: [`EngineError`], a message (with the
//! context it gathered on its way up) and an [`ErrorKind`] a front maps to
//! what it speaks — the CLI to Docker's exit codes, the API server to HTTP
//! statuses — without ever reading the message.
//!
//! Kinds are given where the engine decides (a missing container, a name in
//! use, a bad value in a request) and recognised in the errors of the
//! crates below (`No such image` from the store, `unauthorized` from a
//! registry). Everything else is [`ErrorKind::Other`].
//!
//! This module must never print: fronts decide how errors reach the user.

use std::fmt;

/// What kind of failure an [`EngineError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The container, image, volume, or object named does not exist (HTTP 404).
    NotFound,
    /// The request conflicts with the current state: a name in use, a
    /// running container in the way, an image in use (HTTP 409).
    Conflict,
    /// A value in the request is wrong: a bad size, signal, user, mount (HTTP 400).
    InvalidArgument,
    /// The container must be running for this and is not (HTTP 409).
    NotRunning,
    /// The container must be paused for this and is not (HTTP 409).
    NotPaused,
    /// A registry refused the credentials, or has none for the request (HTTP 401).
    Unauthorized,
    /// The operation is never allowed on this object: removing a
    /// predefined network, or one with containers attached (HTTP 403).
    Forbidden,
    /// The operation ran and ended with this exit code (a container's own,
    /// 126/127 for a command that could not start, 1 for a failed build):
    /// the CLI ends with it.
    Exit(i32),
    /// Anything else: the engine or the host failed (HTTP 500, exit 125).
    Other,
}

/// An engine failure: its kind, and the message with every context added
/// on the way up.
pub struct EngineError {
    kind: ErrorKind,
    error: anyhow::Error,
    /// Found in a value Docker's CLI checks itself before it asks its
    /// daemon (see [`EngineError::invalid_value`]).
    client_side: bool,
    /// An [`ErrorKind::Exit`] that Docker's daemon answers with (see
    /// [`EngineError::from_daemon`]).
    daemon: bool,
}

/// The engine's result type.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// Exit code Docker's CLI ends with when the engine itself failed.
pub const EXIT_ENGINE_FAILURE: i32 = 125;

impl EngineError {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl fmt::Display) -> Self {
        EngineError {
            kind,
            error: anyhow::Error::msg(message.to_string()),
            client_side: false,
            daemon: false,
        }
    }

    /// [`ErrorKind::NotFound`].
    pub fn not_found(message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// [`ErrorKind::Conflict`].
    pub fn conflict(message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }

    /// [`ErrorKind::InvalidArgument`]: a value the engine refuses (Docker's
    /// daemon refuses it: its CLI shows `Error response from daemon: …`).
    pub fn invalid(message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }

    /// [`ErrorKind::InvalidArgument`] in a value Docker's CLI checks itself
    /// before it sends anything (a flag's size, duration, port, label or
    /// environment syntax, a reference or platform it parses): a CLI shows
    /// it as its own error, not as the daemon's answer. The one mark every
    /// front reads ([`EngineError::is_client_side`]).
    pub fn invalid_value(message: impl fmt::Display) -> Self {
        EngineError {
            client_side: true,
            ..Self::new(ErrorKind::InvalidArgument, message)
        }
    }

    /// Marks an [`ErrorKind::Exit`] as Docker's daemon's answer (a container
    /// the runtime could not create): a front shows it as the daemon's and
    /// still ends with its code.
    pub fn from_daemon(mut self) -> Self {
        self.daemon = true;
        self
    }

    /// Whether this is the daemon's answer in Docker: every kind but
    /// [`ErrorKind::Exit`] (unless marked [`EngineError::from_daemon`]) and
    /// what Docker's CLI finds itself ([`EngineError::is_client_side`]).
    pub fn is_daemon_answer(&self) -> bool {
        match self.kind {
            ErrorKind::Exit(_) => self.daemon,
            _ => !self.is_client_side(),
        }
    }

    /// Whether Docker's CLI finds this error itself (see
    /// [`EngineError::invalid_value`]); a reference or a platform that does
    /// not parse is one too.
    pub fn is_client_side(&self) -> bool {
        self.client_side
            || self.error.chain().any(|c| {
                c.is::<berth_store::platform::PlatformError>()
                    || matches!(
                        c.downcast_ref::<berth_store::StoreError>(),
                        Some(berth_store::StoreError::InvalidReference { .. })
                    )
            })
    }

    /// [`ErrorKind::NotRunning`].
    pub fn not_running(message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::NotRunning, message)
    }

    /// [`ErrorKind::NotPaused`].
    pub fn not_paused(message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::NotPaused, message)
    }

    /// [`ErrorKind::Unauthorized`].
    pub fn unauthorized(message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Unauthorized, message)
    }

    /// [`ErrorKind::Forbidden`].
    pub fn forbidden(message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Forbidden, message)
    }

    /// [`ErrorKind::Exit`]: the front ends with `code` and shows `message`
    /// (nothing when it is empty: whoever failed already said why).
    pub fn exit(code: i32, message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Exit(code), message)
    }

    /// The same failure, told as another kind (a front answers it so).
    pub fn with_kind(self, kind: ErrorKind) -> Self {
        EngineError { kind, ..self }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The exit code Docker's CLI ends with for this error: the carried
    /// code for [`ErrorKind::Exit`], else 125.
    pub fn exit_code(&self) -> i32 {
        match self.kind {
            ErrorKind::Exit(c) => c,
            _ => EXIT_ENGINE_FAILURE,
        }
    }

    /// The message: every context and cause, joined with `: `, a cause
    /// whose text an outer message already carries said once.
    pub fn message(&self) -> String {
        chain_text(self.error.chain().map(|c| c.to_string()))
    }

    /// The first error of type `T` in the chain (for a front that wants
    /// the details of a typed error, e.g. a build's failing step).
    pub fn downcast_ref<T: std::error::Error + Send + Sync + 'static>(&self) -> Option<&T> {
        self.error.chain().find_map(|c| c.downcast_ref::<T>())
    }

    /// Adds context (what was being done) in front of the message; the
    /// kind stays.
    pub fn context(self, context: impl fmt::Display + Send + Sync + 'static) -> Self {
        EngineError {
            kind: self.kind,
            error: self.error.context(context),
            client_side: self.client_side,
            daemon: self.daemon,
        }
    }

    /// The kind of any error: an [`EngineError`] found in its chain gives
    /// its own, the errors of the crates below are recognised, anything
    /// else is [`ErrorKind::Other`].
    pub fn classify(e: &anyhow::Error) -> ErrorKind {
        for cause in e.chain() {
            if let Some(k) = kind_of(cause) {
                return k;
            }
        }
        ErrorKind::Other
    }
}

/// The kind a single error in a chain stands for, if it stands for one.
fn kind_of(cause: &(dyn std::error::Error + 'static)) -> Option<ErrorKind> {
    use berth_registry::RegistryError as R;
    use berth_runtime::RuntimeError as Rt;
    use berth_store::StoreError as S;
    if let Some(e) = cause.downcast_ref::<EngineError>() {
        return Some(e.kind);
    }
    if cause.is::<crate::containers::create::ImageMissing>() {
        return Some(ErrorKind::NotFound);
    }
    if cause.is::<berth_store::platform::PlatformError>() {
        return Some(ErrorKind::InvalidArgument);
    }
    if let Some(e) = cause.downcast_ref::<S>() {
        return match e {
            S::ImageNotFound(_) | S::ContainerNotFound(_) | S::BlobNotFound(_) | S::NetworkNotFound(_) => {
                Some(ErrorKind::NotFound)
            }
            S::NameInUse(..) | S::Conflict(_) | S::NetworkExists(_) => Some(ErrorKind::Conflict),
            S::InvalidDigest(_)
            | S::InvalidReference { .. }
            | S::AmbiguousImage { .. }
            | S::AmbiguousContainer { .. } => Some(ErrorKind::InvalidArgument),
            _ => None,
        };
    }
    if let Some(e) = cause.downcast_ref::<R>() {
        return match e {
            R::AuthRequired { .. } | R::BadCredentials { .. } | R::Denied { .. } => Some(ErrorKind::Unauthorized),
            R::NotFound { .. } => Some(ErrorKind::NotFound),
            R::Config(_) => Some(ErrorKind::InvalidArgument),
            _ => None,
        };
    }
    if let Some(e) = cause.downcast_ref::<Rt>() {
        return match e {
            Rt::InvalidConfig(_) | Rt::UserNotFound { .. } | Rt::GroupNotFound(_) => Some(ErrorKind::InvalidArgument),
            _ => None,
        };
    }
    None
}

/// Joins messages with `: `, skipping one whose text is already there
/// (library errors often repeat their source's text in their own).
pub fn chain_text(parts: impl IntoIterator<Item = String>) -> String {
    let mut out = String::new();
    for text in parts {
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl fmt::Debug for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EngineError({:?}, {:?})", self.kind, self.message())
    }
}

impl std::error::Error for EngineError {}

impl From<anyhow::Error> for EngineError {
    fn from(error: anyhow::Error) -> Self {
        // An EngineError that only travelled through anyhow comes back as it was.
        let error = match error.downcast::<EngineError>() {
            Ok(e) => return e,
            Err(error) => error,
        };
        // One carried inside context: its marks stay with its kind.
        let inner = error.chain().find_map(|c| c.downcast_ref::<EngineError>());
        let (client_side, daemon) = inner.map_or((false, false), |e| (e.client_side, e.daemon));
        EngineError {
            kind: EngineError::classify(&error),
            error,
            client_side,
            daemon,
        }
    }
}

/// `From` for the error types of the crates below and of std, through
/// [`anyhow::Error`] (which keeps them for [`EngineError::classify`]).
macro_rules! from_errors {
    ($($t:ty),* $(,)?) => {
        $(impl From<$t> for EngineError {
            fn from(e: $t) -> Self {
                EngineError::from(anyhow::Error::new(e))
            }
        })*
    };
}

from_errors!(
    berth_store::StoreError,
    berth_runtime::RuntimeError,
    berth_registry::RegistryError,
    berth_archive::ArchiveError,
    berth_net::NetError,
    std::io::Error,
    serde_json::Error,
    rustix::io::Errno,
);

/// `bail!` for the engine: returns an [`anyhow::Error`] made from the
/// arguments, converted to whatever error type the function returns
/// ([`EngineError`] or `anyhow::Error`). The kind is recognised from the
/// message's origin only when it is an error value; plain text is
/// [`ErrorKind::Other`] — use [`EngineError`]'s constructors for a kind.
macro_rules! bail {
    ($($t:tt)*) => {
        return ::core::result::Result::Err(::anyhow::anyhow!($($t)*).into())
    };
}
pub(crate) use bail;

/// Shows user input inside an error message safely: quoted, with control,
/// bidirectional and other invisible characters escaped, and cut after
/// 120 characters (with the total length said), so a message never
/// carries raw terminal escapes, reordering marks or megabytes of input.
pub fn shown(input: &str) -> String {
    const MAX: usize = 120;
    let count = input.chars().count();
    let cut: String = input.chars().take(MAX).collect();
    let mut q = format!("{cut:?}");
    if count > MAX {
        q.pop(); // the closing quote
        q.push_str(&format!("…\" ({count} characters)"));
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_survive_context_and_anyhow() {
        let e = EngineError::conflict("name in use").context("creating web");
        assert_eq!(e.kind(), ErrorKind::Conflict);
        assert_eq!(e.to_string(), "creating web: name in use");
        let a = anyhow::Error::new(e).context("compose up");
        assert_eq!(EngineError::classify(&a), ErrorKind::Conflict);
        let back = EngineError::from(a);
        assert_eq!(back.kind(), ErrorKind::Conflict);
        assert_eq!(back.exit_code(), 125);
        assert_eq!(EngineError::exit(3, "").exit_code(), 3);
    }

    #[test]
    fn who_answers_survives_context_and_anyhow() {
        // A value Docker's CLI checks: its own error, through any wrapping.
        let e = EngineError::invalid_value("invalid --ulimit x").context("parsing");
        assert!(e.is_client_side() && !e.is_daemon_answer());
        let back = EngineError::from(anyhow::Error::new(e).context("run"));
        assert!(back.is_client_side());
        // A value Docker's daemon refuses (a kill signal): the daemon's answer.
        assert!(EngineError::invalid("Invalid signal: BOGUS").is_daemon_answer());
        assert!(EngineError::not_found("No such container: x").is_daemon_answer());
        // A code to end with: the front's own words, unless the daemon's.
        assert!(!EngineError::exit(1, "build failed").is_daemon_answer());
        let start = EngineError::exit(127, "failed to create shim task").from_daemon();
        assert!(start.is_daemon_answer() && start.exit_code() == 127);
        let back = EngineError::from(anyhow::Error::new(start).context("run"));
        assert!(back.is_daemon_answer());
        // A reference that does not parse: Docker's CLI parses it.
        let e = EngineError::from(berth_store::Reference::parse("UPPER").unwrap_err());
        assert!(e.is_client_side());
    }

    #[test]
    fn lower_errors_are_recognised() {
        let e = EngineError::from(berth_store::StoreError::ContainerNotFound("x".into()));
        assert_eq!(
            (e.kind(), e.to_string().as_str()),
            (ErrorKind::NotFound, "No such container: x")
        );
        let e = EngineError::from(berth_store::StoreError::NameInUse("web".into(), "abc".into()));
        assert_eq!(e.kind(), ErrorKind::Conflict);
        let e = EngineError::from(std::io::Error::other("disk on fire"));
        assert_eq!(e.kind(), ErrorKind::Other);
    }

    #[test]
    fn repeated_causes_are_said_once() {
        assert_eq!(
            chain_text(["a: b".to_string(), "b".to_string(), "c".to_string()]),
            "a: b: c"
        );
    }

    #[test]
    fn input_in_messages_is_escaped_and_cut() {
        assert_eq!(shown("web"), "\"web\"");
        assert_eq!(shown("a\u{202e}b\u{1b}[2J\0"), "\"a\\u{202e}b\\u{1b}[2J\\0\"");
        let huge = "\0".repeat(100_000);
        let s = shown(&huge);
        assert!(s.len() < 400, "{}", s.len());
        assert!(s.ends_with("…\" (100000 characters)"), "{s}");
    }
}
