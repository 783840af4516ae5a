//! `--pid`, `--ipc`, `--uts` and `--cgroupns`: a container's own namespace
//! of a kind, the host's, or (PID, IPC, network) another container's.
//!
//! Another container's namespace is named by its process
//! (`/proc/<pid>/ns/<kind>`), which changes each time that container
//! starts: create records the container's ID, and every start points the
//! OCI spec at the namespaces of its current process, refusing to start
//! when it is not running (as Docker does).

use serde_json::{json, Value};

use super::Container;
use crate::error::{EngineError, Result};
use crate::spec::{NamespaceKind, NamespaceMode};
use crate::Engine;

/// A namespace mode resolved at create: the runtime's form (`""`, `none`,
/// `host`, `ns:<path>`) and what inspect shows (`container:<ID>`).
pub(crate) struct Resolved {
    pub runtime: String,
    pub shown: String,
}

/// The namespace's name under `/proc/<pid>/ns/`.
fn proc_name(kind: NamespaceKind) -> &'static str {
    match kind {
        NamespaceKind::Pid => "pid",
        NamespaceKind::Ipc => "ipc",
        NamespaceKind::Uts => "uts",
        NamespaceKind::Cgroup => "cgroup",
    }
}

impl Engine {
    /// Resolves `m` for a container being created: another container is
    /// looked up now (its ID is kept); its namespace is joined at start.
    pub(crate) fn resolve_namespace(&self, kind: NamespaceKind, m: &NamespaceMode) -> Result<Resolved> {
        Ok(match m {
            NamespaceMode::Private => Resolved {
                runtime: String::new(),
                shown: m.shown(kind),
            },
            NamespaceMode::None | NamespaceMode::Shareable => Resolved {
                runtime: m.shown(kind),
                shown: m.shown(kind),
            },
            NamespaceMode::Host => Resolved {
                runtime: "host".into(),
                shown: m.shown(kind),
            },
            NamespaceMode::Container(word) => {
                let other = self.container(word)?;
                // Each start sets the path of its process then (see
                // prepare_namespaces); until that, one that does not exist.
                Resolved {
                    runtime: format!("ns:/proc/0/ns/{}", proc_name(kind)),
                    shown: format!("container:{}", other.rec.id),
                }
            }
        })
    }

    /// Before a start: makes a shareable IPC namespace's `/dev/shm`, and
    /// points the container's OCI spec at the current processes of the
    /// containers whose PID, IPC or network namespace it shares; refuses
    /// when one is not running. Nothing to do (no file written) for a
    /// container that shares none.
    pub(crate) fn prepare_namespaces(&self, c: &Container) -> Result<()> {
        let hc = c.doc().host_config;
        let mode = |k: &str| {
            hc.rest
                .get(k)
                .and_then(serde_json::Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let (pid_mode, ipc_mode) = (mode("PidMode"), mode("IpcMode"));
        if ipc_mode == "shareable" {
            berth_runtime::mount::mount_shm(
                &c.dir.join(berth_runtime::mount::SHM_DIR),
                c.cfg.shm_size.unwrap_or(64 << 20),
            )?;
        }
        // The OCI spec's kind, its name under /proc/<pid>/ns/, Docker's word
        // for it, and whose it is.
        let joins: Vec<(&str, &str, &str, &str)> = [
            ("pid", "pid", "PID", pid_mode.as_str()),
            ("ipc", "ipc", "IPC", ipc_mode.as_str()),
            ("network", "net", "network", hc.network_mode.as_str()),
        ]
        .into_iter()
        .filter_map(|(kind, ns, word, mode)| mode.strip_prefix("container:").map(|id| (kind, ns, word, id)))
        .collect();
        if joins.is_empty() {
            return Ok(());
        }
        let mut spec = berth_runtime::exec::load_spec_json(&c.dir)?;
        for (kind, ns, word, id) in joins {
            let other = self.container(id).map_err(|_| {
                EngineError::not_found(format!(
                    "cannot join {word} of container {}: No such container: {id}",
                    c.rec.name
                ))
            })?;
            if !other.status().is_up() || other.state.pid <= 0 {
                // Docker's words.
                return Err(EngineError::conflict(format!(
                    "container {} is not running",
                    other.rec.id
                )));
            }
            let path = format!("/proc/{}/ns/{ns}", other.state.pid);
            set_namespace(&mut spec, kind, json!(path))?;
            if crate::is_rootless() || c.cfg.id_mappings.is_some() {
                // Its namespaces belong to its user namespace, which only a
                // process of that one may join: this container joins it
                // too, as a rootless Podman's containers share one.
                set_namespace(&mut spec, "user", json!(format!("/proc/{}/ns/user", other.state.pid)))?;
            }
            if kind == "ipc" {
                // Its /dev/shm goes with its IPC namespace: made where this
                // one can bind it only by a shareable one (Docker's rule).
                let donor = other.doc().host_config;
                if donor.rest.get("IpcMode").and_then(serde_json::Value::as_str) != Some("shareable") {
                    return Err(EngineError::conflict(format!(
                        "can't join IPC of container {}: non-shareable IPC (hint: use IpcMode:shareable for the donor container)",
                        other.rec.id
                    )));
                }
                let shm = other.dir.join(berth_runtime::mount::SHM_DIR);
                if let Some(m) = spec["mounts"]
                    .as_array_mut()
                    .and_then(|ms| ms.iter_mut().find(|m| m["destination"] == "/dev/shm"))
                {
                    m["source"] = json!(shm);
                }
            }
        }
        berth_runtime::exec::save_spec_json(&c.dir, &spec)?;
        Ok(())
    }
}

/// Points the OCI spec's namespace of `kind` at `path` (a namespace to
/// join), adding the entry if it is missing.
pub(super) fn set_namespace(spec: &mut Value, kind: &str, path: Value) -> Result<()> {
    let Some(nss) = spec["linux"]["namespaces"].as_array_mut() else {
        return Err(EngineError::from(anyhow::anyhow!(
            "the container's OCI spec lists no namespaces"
        )));
    };
    nss.retain(|n| n["type"] != kind);
    nss.push(json!({"type": kind, "path": path}));
    Ok(())
}
