//! Where a service's secrets and configs appear in its containers, and
//! where their bytes come from, as compose decides it: secrets at
//! `/run/secrets/SOURCE` (a relative `target` is under `/run/secrets`),
//! configs at `/SOURCE`; mode 0444 unless set; owner from `uid`/`gid`.
//! Pure resolution: reading the bytes and mounting them is the engine's
//! job, and a secret's bytes must never be written to a shared place.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::error::ComposeError;
use crate::model::{FileObject, FileRef, Project};

/// Where a secret's or config's content comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileSource {
    /// A file on the host (absolute).
    File(PathBuf),
    /// The value of a project environment variable.
    Value(String),
    /// Inline content (`content:`).
    Content(String),
    /// Managed outside the project (`external: true`); named here.
    External(String),
}

/// One secret or config as mounted into a service's containers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileMount {
    /// The top-level key.
    pub source: String,
    /// Where the content comes from.
    pub from: FileSource,
    /// Absolute path in the container.
    pub target: String,
    /// Owner uid (`None`: the container's default).
    pub uid: Option<String>,
    /// Owner gid.
    pub gid: Option<String>,
    /// File mode.
    pub mode: u32,
}

/// The secrets (`secrets: true`) or configs of `service`, resolved.
pub fn file_mounts(
    project: &Project,
    env: &BTreeMap<String, String>,
    service: &str,
    secrets: bool,
) -> Result<Vec<FileMount>, ComposeError> {
    let svc = &project.services[service];
    let (refs, objects, kind): (&[FileRef], &BTreeMap<String, FileObject>, &str) = if secrets {
        (&svc.secrets, &project.secrets, "secret")
    } else {
        (&svc.configs, &project.configs, "config")
    };
    refs.iter()
        .map(|r| {
            let obj = objects.get(&r.source).ok_or_else(|| {
                ComposeError::Project(format!("service {service:?} refers to undefined {kind} {:?}", r.source))
            })?;
            let from = if obj.external {
                FileSource::External(obj.name.clone().unwrap_or_else(|| r.source.clone()))
            } else if let Some(f) = &obj.file {
                FileSource::File(PathBuf::from(f))
            } else if let Some(var) = &obj.environment {
                let value = env.get(var).ok_or_else(|| {
                    ComposeError::Project(format!(
                        "environment variable {var:?} required by {kind} {:?} is not set",
                        r.source
                    ))
                })?;
                FileSource::Value(value.clone())
            } else if let Some(c) = &obj.content {
                FileSource::Content(c.clone())
            } else {
                return Err(ComposeError::Project(format!(
                    "{kind} {:?} has no file, environment or content",
                    r.source
                )));
            };
            let target = match (&r.target, secrets) {
                (Some(t), _) if t.starts_with('/') => t.clone(),
                (Some(t), true) => format!("/run/secrets/{t}"),
                (Some(t), false) => format!("/{t}"),
                (None, true) => format!("/run/secrets/{}", r.source),
                (None, false) => format!("/{}", r.source),
            };
            Ok(FileMount {
                source: r.source.clone(),
                from,
                target,
                uid: r.uid.clone(),
                gid: r.gid.clone(),
                mode: r.mode.unwrap_or(0o444),
            })
        })
        .collect()
}
