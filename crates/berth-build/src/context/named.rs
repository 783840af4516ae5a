//! Named build contexts: `build --build-context NAME=VALUE` and compose's
//! `build.additional_contexts`, one reading for both fronts.

use std::path::{Path, PathBuf};

/// What a named context stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedContext {
    /// `docker-image://REF`: the image REF (`FROM NAME`, `COPY --from=NAME`).
    Image(String),
    /// A local directory (absolute).
    Dir(PathBuf),
}

/// Why a named context cannot be used (the front names the context).
#[derive(Debug, thiserror::Error)]
pub enum NamedContextError {
    /// The name or the value is empty.
    #[error("invalid build context: use NAME=DIR or NAME=docker-image://REF")]
    Syntax,
    /// A URL or git remote: berth's builder reads directories and images.
    #[error("berth takes a directory or docker-image://REF (not {value})")]
    Unsupported {
        /// Its value as written.
        value: String,
    },
    /// The directory does not exist.
    #[error("unable to prepare context: path {value:?} not found")]
    Missing {
        /// Its value as written.
        value: String,
    },
}

/// Reads `NAME=VALUE`'s value; a relative directory is taken from `base`
/// (the working directory for the CLI, the project directory for compose).
pub fn parse_named(name: &str, value: &str, base: &Path) -> Result<NamedContext, NamedContextError> {
    if name.is_empty() || value.is_empty() {
        return Err(NamedContextError::Syntax);
    }
    if let Some(image) = value.strip_prefix("docker-image://") {
        return Ok(NamedContext::Image(image.to_string()));
    }
    if value.contains("://") || value.starts_with("git@") {
        return Err(NamedContextError::Unsupported { value: value.into() });
    }
    let dir = base.join(value);
    if !dir.is_dir() {
        return Err(NamedContextError::Missing { value: value.into() });
    }
    Ok(NamedContext::Dir(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_directories_and_refusals() {
        let base = std::env::temp_dir();
        assert_eq!(
            parse_named("b", "docker-image://bb:1", &base).unwrap(),
            NamedContext::Image("bb:1".into())
        );
        assert_eq!(parse_named("d", ".", &base).unwrap(), NamedContext::Dir(base.join(".")));
        assert!(matches!(
            parse_named("u", "https://x/y.tar", &base),
            Err(NamedContextError::Unsupported { .. })
        ));
        assert!(matches!(
            parse_named("m", "no-such-dir-here", &base),
            Err(NamedContextError::Missing { .. })
        ));
        assert!(matches!(parse_named("", "x", &base), Err(NamedContextError::Syntax)));
    }
}
