//! berth beside a real dockerd: `scripts/api-compare` runs the same docker
//! CLI sequences (#16's must-show, then a container's whole life) and the
//! same API requests against a dockerd it starts itself (`--bridge none
//! --iptables=false`, its own data and exec roots) and against berth's
//! socket, and fails on any difference in output or JSON shape that is not
//! one of the known ones it lists with its reason.

use std::path::Path;
use std::process::Command;

#[test]
#[ignore = "needs root"]
fn the_docker_cli_sees_the_same_outputs_from_berth_as_from_dockerd() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let o = Command::new(repo.join("scripts/api-compare"))
        .env("BERTH", env!("CARGO_BIN_EXE_berth"))
        .current_dir(&repo)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "api-compare failed:\n{out}\n{err}");
    for section in ["## the lifecycle sequence", "## JSON shapes"] {
        assert!(out.contains(section), "no {section:?} in:\n{out}");
    }
    assert!(!out.contains("UNEXPLAINED"), "{out}");
}
