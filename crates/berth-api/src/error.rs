//! Errors as Docker's API answers them: a status code and `{"message": …}`.
//!
//! Every engine failure goes through one mapping, [`status_of`], from the
//! engine's error kinds to a status. Handlers never pick a status for an
//! engine error themselves; they only add statuses for what they check
//! (a bad query parameter, an unknown route).

use hyper::StatusCode;

use berth_engine::{EngineError, ErrorKind};

/// A failed request: the status and the message Docker's clients print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// 400: the request itself is wrong.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404 for a path no route knows, in Docker's words.
    pub fn page_not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "page not found")
    }

    /// 404 for a named thing.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    /// 500 for what went wrong on this side.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// The JSON body: `{"message":"…"}`.
    pub fn body(&self) -> String {
        serde_json::json!({ "message": self.message }).to_string()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl std::error::Error for ApiError {}

/// The one mapping from an engine error kind to an HTTP status.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict | ErrorKind::NotRunning | ErrorKind::NotPaused => StatusCode::CONFLICT,
        ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::Exit(_) | ErrorKind::Other => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        if let Some(api) = e.downcast_ref::<ApiError>() {
            return api.clone();
        }
        ApiError::new(status_of(e.kind()), e.message())
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> ApiError {
        if let Some(api) = e.downcast_ref::<ApiError>() {
            return api.clone();
        }
        ApiError::from(EngineError::from(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_kinds_become_dockers_statuses() {
        let e: ApiError = EngineError::not_running("container abc is not running").into();
        assert_eq!(e.status, StatusCode::CONFLICT);
        let e: ApiError = EngineError::not_found("No such container: abc").into();
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        let e: ApiError = anyhow::anyhow!("something broke").context("starting abc").into();
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(e.message, "starting abc: something broke");
        assert_eq!(ApiError::page_not_found().body(), r#"{"message":"page not found"}"#);
        let inner = anyhow::Error::new(ApiError::bad_request("bad"));
        assert_eq!(ApiError::from(inner).status, StatusCode::BAD_REQUEST);
    }
}
