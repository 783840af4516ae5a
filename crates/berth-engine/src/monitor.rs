//! The detached monitor's whole life, as the `berth-monitor` program (and
//! the CLI's `__monitor` fallback) runs it: load the options the engine
//! left in the container directory, supervise the container until it is
//! done (berth-runtime's monitor), and, for a `--rm` container, remove it
//! through this library — never by running the CLI again.
//!
//! Nothing of the engine is touched until the container is done: the
//! store is opened only for the removal, so an idle monitor's resident
//! memory stays that of the runtime's wait loop.

use std::path::{Path, PathBuf};

use crate::Engine;

/// The store root and container ID a container directory
/// (`$ROOT/containers/<id>`) belongs to.
fn root_and_id(container_dir: &Path) -> Option<(PathBuf, String)> {
    let id = container_dir.file_name()?.to_str()?.to_string();
    let root = container_dir.parent()?.parent()?.to_path_buf();
    Some((root, id))
}

/// Runs the detached monitor of the container in `container_dir`; returns
/// the process's exit code. A spare monitor
/// ([`berth_runtime::spare::SPARE_DIR`]) first waits to be told its
/// container, and ends with 0 if none comes.
pub fn detached_monitor_main(container_dir: &Path) -> i32 {
    if container_dir.as_os_str() == berth_runtime::spare::SPARE_DIR {
        return match berth_runtime::spare::await_container_dir() {
            Some(dir) => container_monitor_main(&dir),
            None => 0,
        };
    }
    container_monitor_main(container_dir)
}

/// [`detached_monitor_main`] once the container is known.
fn container_monitor_main(container_dir: &Path) -> i32 {
    let dir = container_dir.to_path_buf();
    let died = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d = died.clone();
    let hook: berth_runtime::monitor::DoneHook = Box::new(move || {
        // The container is done and will not restart: remove it, its
        // directory, its record and its anonymous volumes, as `rm -f -v`.
        let Some((root, id)) = root_and_id(&dir) else { return };
        match Engine::open(&root, None) {
            Ok(engine) => {
                record_die(&engine, &dir, &id);
                d.store(true, std::sync::atomic::Ordering::SeqCst);
                if let Err(e) = engine.remove_container(&id, true, true) {
                    log::warn!("removing container {id} (--rm): {e}");
                }
            }
            Err(e) => log::warn!("removing container {id} (--rm): {e}"),
        }
    });
    let code = berth_runtime::monitor::detached_monitor_main(container_dir, Some(hook));
    let net = container_dir.join(crate::containers::network::NET_FILE).exists();
    let died = died.load(std::sync::atomic::Ordering::SeqCst);
    if net || !died {
        if let Some((root, id)) = root_and_id(container_dir) {
            match Engine::open(&root, None) {
                Ok(engine) => {
                    if !died {
                        record_die(&engine, container_dir, &id);
                    }
                    // Done for good: a container on bridge networks leaves
                    // them now (a `--rm` one did, with its removal).
                    if net {
                        if let Err(e) = engine.net_down(&id) {
                            log::warn!("container {id}: leaving its networks: {e}");
                        }
                    }
                }
                Err(e) => log::warn!("container {id}: leaving its networks: {e}"),
            }
        }
    }
    code
}

/// The journal's `die` event of a container that ended, with its exit code.
fn record_die(engine: &Engine, dir: &Path, id: &str) {
    let code = berth_runtime::read_state(dir).map(|s| s.exit_code).unwrap_or(-1);
    engine.container_event(id, "die", &[("exitCode", code.to_string())]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_container_dir_names_its_store_and_id() {
        assert_eq!(
            root_and_id(Path::new("/var/lib/berth/containers/abc")),
            Some((PathBuf::from("/var/lib/berth"), "abc".to_string()))
        );
        assert_eq!(root_and_id(Path::new("/")), None);
    }
}
