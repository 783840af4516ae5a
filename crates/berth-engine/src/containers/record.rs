//! A container's record in the database: what `create` decided, in the
//! shape Docker's `inspect` shows, as a serde struct. The fields the engine
//! reads are typed; the rest of Docker's `Config` and `HostConfig`
//! documents (display data the engine only passes through) stay as they
//! were written.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The record (`ContainerRecord::config` in the store).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerDoc {
    /// The process's program.
    pub path: Option<String>,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Docker's `Config`.
    #[serde(default)]
    pub config: ConfigDoc,
    /// Docker's `HostConfig`.
    #[serde(default)]
    pub host_config: HostConfigDoc,
    /// What is mounted where.
    #[serde(default)]
    pub mounts: Vec<MountPoint>,
    /// The anonymous volumes made for it (`rm -v` removes them).
    #[serde(default)]
    pub anonymous_volumes: Vec<String>,
    /// The image's OS.
    #[serde(default)]
    pub platform: String,
    /// The image's first name, if it had one.
    #[serde(default)]
    pub image_ref: String,
}

/// Docker's `Config`: what the engine reads, and the rest as written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConfigDoc {
    /// The image as the user named it.
    #[serde(default)]
    pub image: String,
    /// The process's environment.
    #[serde(default)]
    pub env: Option<Vec<String>>,
    /// The effective CMD.
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    /// The effective ENTRYPOINT.
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// The working directory.
    #[serde(default)]
    pub working_dir: String,
    /// The user.
    #[serde(default)]
    pub user: String,
    /// `80/tcp` → `{}`: the image's EXPOSEd ports and the published ones
    /// (left out when there are none, as Docker's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    /// Everything else Docker's `Config` shows.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// Docker's `HostConfig`: what the engine reads, and the rest as written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostConfigDoc {
    /// `bridge`, `none`, `host`, `container:ID` …
    #[serde(default)]
    pub network_mode: String,
    /// Everything else Docker's `HostConfig` shows.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// One of `inspect`'s `Mounts`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MountPoint {
    /// `bind`, `volume` or `tmpfs`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// A volume's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The host path (a volume's data directory; empty for a tmpfs).
    #[serde(default)]
    pub source: String,
    /// The path in the container.
    #[serde(default)]
    pub destination: String,
    /// A volume's driver (`local`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// The options text (`ro`, `z` …).
    #[serde(default)]
    pub mode: String,
    /// Writable.
    #[serde(rename = "RW", default)]
    pub rw: bool,
    /// Bind propagation.
    #[serde(default)]
    pub propagation: String,
}

impl ContainerDoc {
    /// Reads a record as the store keeps it (a record of an older berth
    /// reads with what it has).
    pub fn from_value(v: &Value) -> ContainerDoc {
        serde_json::from_value(v.clone()).unwrap_or_default()
    }

    /// As the store keeps it.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The names of the volumes it mounts.
    pub fn volume_names(&self) -> impl Iterator<Item = &str> {
        self.mounts.iter().filter_map(|m| m.name.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_record_reads_back_as_written() {
        let v = json!({
            "Path": "sh", "Args": ["-c", "true"],
            "Config": {"Image": "bb", "Env": ["A=1"], "Cmd": null, "Entrypoint": null, "WorkingDir": "",
                       "User": "", "ExposedPorts": {"80/tcp": {}}, "Tty": false, "Labels": {}},
            "HostConfig": {"NetworkMode": "bridge", "Memory": 0, "Binds": null},
            "Mounts": [{"Type": "volume", "Name": "v", "Source": "/s", "Destination": "/d", "Driver": "local",
                        "Mode": "z", "RW": true, "Propagation": ""},
                       {"Type": "bind", "Source": "/h", "Destination": "/b", "Mode": "", "RW": false,
                        "Propagation": "rprivate"}],
            "AnonymousVolumes": ["v"], "Platform": "linux", "ImageRef": "bb:latest",
        });
        let d = ContainerDoc::from_value(&v);
        assert_eq!(d.config.image, "bb");
        assert_eq!(d.host_config.network_mode, "bridge");
        assert_eq!(d.volume_names().collect::<Vec<_>>(), ["v"]);
        assert_eq!(d.config.exposed_ports.as_ref().map(|p| p.len()), Some(1));
        assert_eq!(d.to_value(), v, "nothing lost or added");
        assert_eq!(ContainerDoc::from_value(&json!({})), ContainerDoc::default());
    }
}
