//! Compose's identity on engine objects: container names
//! (`PROJECT-SERVICE-N`), the `com.docker.compose.*` labels, the config hash
//! that decides whether a container is up to date, and the names of the
//! project's networks and volumes. Pure functions: nothing here talks to
//! the engine.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::loader::Loaded;
use crate::model::Service;

/// Label keys compose sets.
pub mod labels {
    /// The project name.
    pub const PROJECT: &str = "com.docker.compose.project";
    /// The service name.
    pub const SERVICE: &str = "com.docker.compose.service";
    /// The replica number, from 1.
    pub const CONTAINER_NUMBER: &str = "com.docker.compose.container-number";
    /// "True" for `compose run` containers, "False" otherwise.
    pub const ONEOFF: &str = "com.docker.compose.oneoff";
    /// The service's config hash.
    pub const CONFIG_HASH: &str = "com.docker.compose.config-hash";
    /// The project directory.
    pub const WORKING_DIR: &str = "com.docker.compose.project.working_dir";
    /// The compose files, comma-separated.
    pub const CONFIG_FILES: &str = "com.docker.compose.project.config_files";
    /// The env files, comma-separated.
    pub const ENVIRONMENT_FILE: &str = "com.docker.compose.project.environment_file";
    /// `service:condition:restart` per dependency, comma-separated.
    pub const DEPENDS_ON: &str = "com.docker.compose.depends_on";
    /// The image ID the container was created from.
    pub const IMAGE: &str = "com.docker.compose.image";
    /// The compose version that made it.
    pub const VERSION: &str = "com.docker.compose.version";
    /// A network's key in the project.
    pub const NETWORK: &str = "com.docker.compose.network";
    /// A volume's key in the project.
    pub const VOLUME: &str = "com.docker.compose.volume";
}

/// The version written into `com.docker.compose.version`.
pub const COMPOSE_VERSION: &str = concat!("berth-", env!("CARGO_PKG_VERSION"));

/// `PROJECT-SERVICE-N`, or the service's `container_name`.
pub fn container_name(project: &str, service_name: &str, service: &Service, number: u32) -> String {
    match &service.container_name {
        Some(n) => n.clone(),
        None => format!("{project}-{service_name}-{number}"),
    }
}

/// A `compose run` container's name: `PROJECT-SERVICE-run-ID` (12 hex digits).
pub fn oneoff_container_name(project: &str, service_name: &str, id: &str) -> String {
    let short: String = id.chars().take(12).collect();
    format!("{project}-{service_name}-run-{short}")
}

/// The hash compose stores in `com.docker.compose.config-hash`: SHA-256 of
/// the service's canonical JSON without the fields that do not change a
/// running container (build, pull_policy, scale, deploy.replicas,
/// depends_on, profiles), as Docker Compose computes it.
pub fn config_hash(service: &Service) -> String {
    let mut s = service.clone();
    s.build = None;
    s.pull_policy = None;
    s.scale = None;
    if let Some(d) = &mut s.deploy {
        d.replicas = None;
    }
    s.depends_on.clear();
    s.profiles.clear();
    let json = serde_json::to_vec(&s).expect("a service serialises");
    hex::encode(Sha256::digest(json))
}

/// `db:service_healthy:false,cache:service_started:true`, as compose writes it.
pub fn depends_on_label(service: &Service) -> String {
    service
        .depends_on
        .iter()
        .map(|(name, d)| {
            let condition = serde_json::to_value(d.condition)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            format!("{name}:{condition}:{}", d.restart)
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The labels of container `number` of `service_name` (`image_id` once known).
pub fn container_labels(
    loaded: &Loaded,
    service_name: &str,
    number: u32,
    oneoff: bool,
    image_id: Option<&str>,
) -> BTreeMap<String, String> {
    let service = &loaded.project.services[service_name];
    let mut l: BTreeMap<String, String> = service.labels.clone();
    l.insert(labels::PROJECT.into(), loaded.project.name.clone());
    l.insert(labels::SERVICE.into(), service_name.into());
    l.insert(labels::CONTAINER_NUMBER.into(), number.to_string());
    l.insert(labels::ONEOFF.into(), if oneoff { "True" } else { "False" }.into());
    l.insert(labels::CONFIG_HASH.into(), config_hash(service));
    l.insert(labels::WORKING_DIR.into(), loaded.working_dir.display().to_string());
    l.insert(
        labels::CONFIG_FILES.into(),
        loaded
            .config_files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(","),
    );
    l.insert(labels::DEPENDS_ON.into(), depends_on_label(service));
    if let Some(id) = image_id {
        l.insert(labels::IMAGE.into(), id.into());
    }
    l.insert(labels::VERSION.into(), COMPOSE_VERSION.into());
    l
}

/// The labels compose puts on a network or volume it creates (`kind` is
/// [`labels::NETWORK`] or [`labels::VOLUME`]).
pub fn resource_labels(project: &str, kind: &str, key: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::PROJECT.to_string(), project.to_string()),
        (kind.to_string(), key.to_string()),
        (labels::VERSION.to_string(), COMPOSE_VERSION.to_string()),
    ])
}

/// The image a service runs: its `image`, else `PROJECT-SERVICE` (what `build` tags).
pub fn image_name(project: &str, service_name: &str, service: &Service) -> String {
    match &service.image {
        Some(i) => i.clone(),
        None => format!("{project}-{service_name}"),
    }
}
