//! `--use-api-socket` (run/create, compose's `use_api_socket`), as the
//! docker CLI 28 does it: the Docker API socket bound at
//! `/var/run/docker.sock`, and the logins berth would use written to a
//! 0600 `/run/secrets/docker/config.json` (a file of the container's own,
//! made in its directory) with `DOCKER_CONFIG` naming its directory.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use crate::error::{EngineError, Result};
use crate::spec::{ContainerFile, ContainerSpec};

/// Where the container's clients will find the API: `DOCKER_HOST` when it
/// names a unix socket (the user's docker clients talk to berth there),
/// else berth's service's default socket.
fn socket() -> Result<PathBuf> {
    match std::env::var("DOCKER_HOST")
        .ok()
        .as_deref()
        .and_then(|h| h.strip_prefix("unix://"))
    {
        Some(p) => Ok(PathBuf::from(p)),
        None => crate::default_api_socket(),
    }
}

/// `o` with the socket's mount, the logins' file and `DOCKER_CONFIG` when
/// it asks for the API socket; `o` itself otherwise.
pub(crate) fn with_api_socket(o: &ContainerSpec) -> Result<Cow<'_, ContainerSpec>> {
    if !o.use_api_socket {
        return Ok(Cow::Borrowed(o));
    }
    let sock = socket()?;
    use std::os::unix::fs::FileTypeExt;
    if !std::fs::metadata(&sock).is_ok_and(|m| m.file_type().is_socket()) {
        return Err(EngineError::invalid(format!(
            "--use-api-socket: no Docker API socket at {}: serve one there with `berth system service -t 0` (or point DOCKER_HOST=unix:///PATH at one)",
            sock.display()
        )));
    }
    let mut o = o.clone();
    let bind = format!("type=bind,source={},target=/var/run/docker.sock", sock.display());
    o.mounts.push(crate::spec::parse_mount(&bind, Path::new("/"))?);
    let logins = berth_registry::auth::all_credentials(None).map_err(|e| EngineError::from(anyhow::Error::from(e)))?;
    if !logins.is_empty() {
        let content = serde_json::to_vec_pretty(&berth_registry::auth::docker_config_of(&logins))
            .map_err(|e| EngineError::from(anyhow::Error::from(e)))?;
        o.files.push(ContainerFile {
            target: "/run/secrets/docker/config.json".into(),
            content,
            uid: 0,
            gid: 0,
            mode: 0o600,
        });
        o.env.push("DOCKER_CONFIG=/run/secrets/docker".into());
    }
    Ok(Cow::Owned(o))
}
