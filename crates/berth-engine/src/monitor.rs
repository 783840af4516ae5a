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
    let hook = || -> berth_runtime::monitor::DoneHook {
        let early = opened_early(&dir);
        Box::new(move || {
            // The container is done and will not restart: remove it, its
            // directory, its record and its anonymous volumes, as `rm -f -v`.
            let Some((root, id)) = root_and_id(&dir) else { return };
            let ready = early.lock().ok().and_then(|mut e| e.take());
            match ready.map(Ok).unwrap_or_else(|| Engine::open(&root, None)) {
                Ok(engine) => {
                    record_die(&engine, &dir, &id);
                    d.store(true, std::sync::atomic::Ordering::SeqCst);
                    if let Err(e) = engine.remove_container(&id, true, true) {
                        log::warn!("removing container {id} (--rm): {e}");
                    }
                }
                Err(e) => log::warn!("removing container {id} (--rm): {e}"),
            }
        })
    };
    let ended = berth_runtime::monitor::detached_monitor_main(container_dir, hook);
    let net = crate::containers::network::on_bridge(container_dir);
    // A container held created and let go never ran: no `die`.
    let died = died.load(std::sync::atomic::Ordering::SeqCst) || ended.abandoned;
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
    ended.code
}

/// For a `--rm` container, the store opened on a thread beside, so that
/// its removal, which a client may be waiting for, does not wait for the
/// opening (0.5 ms). Kept only while the container is young: a monitor
/// whose container runs on stays small, and its removal opens the store
/// itself then.
fn opened_early(container_dir: &Path) -> std::sync::Arc<std::sync::Mutex<Option<Engine>>> {
    let slot = std::sync::Arc::new(std::sync::Mutex::new(None));
    if let Some((root, _)) = root_and_id(container_dir) {
        let s = slot.clone();
        let _ = std::thread::Builder::new().name("open-early".into()).spawn(move || {
            let Ok(engine) = Engine::open(&root, None) else { return };
            if let Ok(mut s) = s.lock() {
                *s = Some(engine);
            }
            std::thread::sleep(KEEP_EARLY);
            let old = s.lock().ok().and_then(|mut s| s.take());
            if old.is_some() {
                drop(old);
                // What the store's opening took goes back to the system.
                // SAFETY: malloc_trim only releases free heap memory; no
                // pointer held anywhere is affected.
                unsafe { libc::malloc_trim(0) };
            }
        });
    }
    slot
}

/// How long a store opened early is kept for the removal: less than the
/// monitor waits before it lets go of its start-up code
/// (berth_runtime's TRIM_AFTER, 500 ms), so that what the closing touches
/// goes too.
const KEEP_EARLY: std::time::Duration = std::time::Duration::from_millis(250);

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
