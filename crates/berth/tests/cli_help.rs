//! What `--help` says: each command's own one-line summary, as Docker's.

mod common;

use common::*;

#[test]
fn each_command_says_what_it_does_once() {
    let r = Root::new();
    let help = r.ok(&["logs", "--help"]);
    assert_eq!(help.lines().next(), Some("Fetch the logs of a container"), "{help}");
    // The command list: no summary runs two commands' summaries together.
    let all = r.ok(&["--help"]);
    let logs = all.lines().find(|l| l.trim_start().starts_with("logs ")).unwrap();
    assert!(logs.ends_with("Fetch the logs of a container"), "{logs}");
    for line in all.lines().filter(|l| l.starts_with("  ")) {
        assert!(
            !line.contains("containers Fetch") && !line.contains("containers List"),
            "{line}"
        );
    }
}
