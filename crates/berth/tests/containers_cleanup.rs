//! Twenty detached containers started, listed, stopped and removed leave
//! nothing behind: no mounts, cgroups, processes or files.

mod common;

use common::{need_root, Root};

#[test]
#[ignore = "needs root"]
fn twenty_containers_leave_nothing_behind() {
    need_root();
    let r = Root::new();
    r.busybox("bb");
    let mut ids = Vec::new();
    for i in 0..20 {
        let id = r
            .ok(&["run", "-d", "--name", &format!("c{i}"), "bb", "sleep", "1000"])
            .trim()
            .to_string();
        ids.push(id);
    }
    let listed = r.ok(&["ps", "-q", "--no-trunc"]);
    for id in &ids {
        assert!(listed.contains(id.as_str()), "{id} not listed");
    }
    assert_eq!(listed.lines().count(), 20);
    let pids: Vec<String> = ids
        .iter()
        .map(|id| r.ok(&["inspect", "-f", "{{.State.Pid}}", id]).trim().to_string())
        .collect();
    let mut args = vec!["stop", "-t", "1"];
    args.extend(ids.iter().map(String::as_str));
    r.ok(&args);
    assert_eq!(r.ok(&["ps", "-q"]), "");
    let mut args = vec!["rm"];
    args.extend(ids.iter().map(String::as_str));
    r.ok(&args);
    assert_eq!(r.ok(&["ps", "-aq"]), "");

    let store = r.path().join("store");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(store.to_str().unwrap()), "mounts left:\n{mounts}");
    for id in &ids {
        for ctrl in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
            let p = ctrl.path().join("berth").join(id);
            assert!(!p.exists(), "cgroup left: {}", p.display());
        }
        assert!(!std::path::Path::new(&format!("/sys/fs/cgroup/berth/{id}")).exists());
    }
    for pid in &pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists() || {
                // A recycled pid is fine as long as it is not our sleep.
                let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                !String::from_utf8_lossy(&cmd).contains("sleep")
            }
        );
    }
    let left: Vec<_> = std::fs::read_dir(store.join("containers"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let runtime_left: Vec<_> = std::fs::read_dir(store.join("runtime"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(runtime_left.is_empty(), "{runtime_left:?}");
    // No monitor of ours remains.
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmd = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd);
        assert!(
            !(cmd.contains("__monitor") && cmd.contains(store.to_str().unwrap())),
            "monitor left: {cmd}"
        );
    }
}
