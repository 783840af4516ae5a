//! `examples/composed-images` end to end: a Python part and a tools part
//! built separately, composed with `image compose` for one application
//! and with `COPY --link --from` for another; both run, and `system df -v`
//! counts the parts' layers once.

#[path = "build_support.rs"]
mod support;

use std::process::Command;

use support::*;

/// The SIZE, SHARED SIZE and UNIQUE SIZE of `repo` in `system df -v`.
fn df_row(df: &str, repo: &str) -> (String, String, String) {
    let row = df
        .lines()
        .find(|l| l.split_whitespace().next() == Some(repo))
        .unwrap_or_else(|| panic!("{repo} not in:\n{df}"));
    let f: Vec<&str> = row.split_whitespace().collect();
    let n = f.len();
    (f[n - 4].to_string(), f[n - 3].to_string(), f[n - 2].to_string())
}

#[test]
#[ignore = "needs root"]
fn two_applications_share_the_parts_layers() {
    let root = Root::new();
    let script = examples().join("composed-images/make-parts");
    let o = Command::new(&script)
        .env("BERTH", env!("CARGO_BIN_EXE_berth"))
        .env("BERTH_ALLOWED_REGISTRIES", "loopback")
        .arg("--root")
        .arg(root.path().join("store"))
        .output()
        .unwrap();
    assert!(o.status.success(), "make-parts:\n{}\n{}", stdout(&o), stderr(&o));
    assert_eq!(stdout(&o).matches("nothing copied").count(), 2, "{}", stdout(&o));

    let report: serde_json::Value = serde_json::from_str(&root.ok(&["run", "--rm", "composed-images/report"])).unwrap();
    assert_eq!(report["app"], "report");
    assert!(report["tools"].as_u64().unwrap() > 100, "busybox's applets: {report}");
    let inventory: serde_json::Value =
        serde_json::from_str(&root.ok(&["run", "--rm", "composed-images/inventory"])).unwrap();
    assert!(inventory["stdlib_files"].as_u64().unwrap() > 50, "{inventory}");

    // Both applications stand on the same three layers.
    let runtime = diff_ids(&root, "composed-images/runtime");
    assert_eq!(runtime.len(), 3);
    assert_eq!(diff_ids(&root, "composed-images/report")[..3], runtime[..]);
    let inv = diff_ids(&root, "composed-images/inventory");
    assert_eq!(inv[0], runtime[0], "base");
    assert_eq!(inv[1], runtime[2], "tools (stacked before python here)");
    assert_eq!(inv[2], runtime[1], "python");

    let df = root.ok(&["system", "df", "-v"]);
    let (_, size, unique) = df_row(&df, "composed-images/runtime");
    assert_eq!(unique, "0B", "every layer of the runtime is shared:\n{df}");
    let (_, report_shared, report_unique) = df_row(&df, "composed-images/report");
    assert_eq!(report_shared, size, "{df}");
    // Docker counts a layer's file bytes: report.py's few hundred.
    let own = report_unique.strip_suffix('B').and_then(|n| n.parse::<u64>().ok());
    assert!(
        own.is_some_and(|n| n > 0 && n < 1000),
        "only report.py is its own: {df}"
    );
    // The summary (`system df` without -v, as Docker prints it).
    let summary = root.ok(&["system", "df"]);
    let images = summary.lines().find(|l| l.starts_with("Images")).unwrap();
    assert!(
        images.split_whitespace().nth(3) == Some(size.as_str()),
        "the store counts the parts once (the apps add a few kB):\n{summary}"
    );
}
