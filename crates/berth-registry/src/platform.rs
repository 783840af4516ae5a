//! Media types and platforms: telling manifests from indexes and picking
//! the entry of an index that fits `os/arch[/variant]`.

use serde_json::Value;

use crate::error::{RegistryError, Result};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// What an `Accept` header offers for manifests.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

pub fn is_image_manifest(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

/// The media type of a manifest document: the transport's, else its own
/// `mediaType`, else guessed from its shape.
pub fn manifest_media_type(content_type: Option<&str>, doc: &Value) -> String {
    let ct = content_type
        .map(|c| c.split(';').next().unwrap_or(c).trim().to_string())
        .filter(|c| is_index(c) || is_image_manifest(c) || c == DOCKER_SCHEMA1 || c == DOCKER_SCHEMA1_SIGNED);
    if let Some(c) = ct {
        return c;
    }
    if let Some(m) = doc["mediaType"].as_str() {
        return m.to_string();
    }
    if doc["manifests"].is_array() {
        OCI_INDEX.to_string()
    } else if doc["schemaVersion"].as_i64() == Some(1) {
        DOCKER_SCHEMA1.to_string()
    } else {
        OCI_MANIFEST.to_string()
    }
}

pub use berth_store::platform::Platform;

/// Parses `--platform` for a registry operation (see [`Platform::parse`]).
pub fn parse(s: &str) -> Result<Platform> {
    Platform::parse(s).map_err(|e| RegistryError::Config(e.to_string()))
}

/// The index entry (descriptor) for `want`: exact match first; for a
/// request without variant, an entry without one (arm64 v8 implied).
pub fn select<'a>(index: &'a Value, want: &Platform) -> Option<&'a Value> {
    let entries: Vec<&Value> = index["manifests"].as_array().into_iter().flatten().collect();
    entries
        .iter()
        .copied()
        .filter(|e| {
            e["mediaType"]
                .as_str()
                .map(|m| !m.contains("attestation"))
                .unwrap_or(true)
        })
        .find(|e| Platform::from_json(&e["platform"]).is_some_and(|p| p.matches(want)))
        .or_else(|| {
            // A variant the index does not spell out: match os/arch alone.
            entries.iter().copied().find(|e| {
                Platform::from_json(&e["platform"])
                    .is_some_and(|p| p.same_os_arch(want) && (p.variant.is_none() || want.variant.is_none()))
            })
        })
}

/// The platforms an index offers, for a "no matching manifest" message.
pub fn offered(index: &Value) -> Vec<String> {
    index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| Platform::from_json(&e["platform"]))
        .filter(|p| p.os != "unknown")
        .map(|p| p.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_and_print() {
        assert_eq!(Platform::parse("linux/arm64").unwrap().to_string(), "linux/arm64");
        assert_eq!(
            Platform::parse("linux/arm64/v8").unwrap(),
            Platform::parse("linux/arm64").unwrap()
        );
        assert_eq!(Platform::parse("linux/arm/v6").unwrap().to_string(), "linux/arm/v6");
        assert_eq!(Platform::parse("linux/x86_64").unwrap().to_string(), "linux/amd64");
        assert!(Platform::parse("a/b/c/d").is_err());
    }

    #[test]
    fn selects_the_right_entry() {
        let idx = json!({"manifests": [
            {"digest": "a", "platform": {"os": "linux", "architecture": "amd64"}},
            {"digest": "b", "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {"digest": "c", "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
            {"digest": "d", "platform": {"os": "unknown", "architecture": "unknown"}},
        ]});
        let pick = |p: &str| select(&idx, &Platform::parse(p).unwrap()).map(|e| e["digest"].as_str().unwrap());
        assert_eq!(pick("linux/amd64"), Some("a"));
        assert_eq!(pick("linux/arm64"), Some("b"));
        assert_eq!(pick("linux/arm/v7"), Some("c"));
        assert_eq!(pick("linux/arm/v6"), None);
        assert_eq!(pick("linux/s390x"), None);
        assert_eq!(offered(&idx), ["linux/amd64", "linux/arm64", "linux/arm/v7"]);
    }
}
