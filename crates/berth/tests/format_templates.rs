//! `--format` as a Docker user writes it: Go template semantics, Docker's
//! functions, method-style fields, table headers and inspect's fallback.
//! Expected texts are what docker 28 prints for the same templates (checked
//! with the docker CLI; template semantics are checked against Go itself in
//! berth-template's tests).

mod common;

use common::{stderr, stdout, Root};

fn web(root: &Root) {
    root.busybox("bb:1");
    root.ok(&[
        "create",
        "--name",
        "web",
        "--label",
        "com.x=1",
        "--label",
        "com.y=two",
        "bb:1",
        "sh",
        "-c",
        "sleep 1",
    ]);
}

#[test]
fn ps_rows_have_docker_methods_and_unknown_fields_fail() {
    let root = Root::new();
    web(&root);
    assert_eq!(
        root.ok(&["ps", "-a", "--format", "{{.Names}} {{.Label \"com.y\"}} {{.Labels}}"]),
        "web two com.x=1,com.y=two\n"
    );
    assert_eq!(
        root.ok(&[
            "ps",
            "-a",
            "--format",
            "{{pad .Names 1 2}}|{{upper .Names}}|{{truncate .Names 2}}|{{title .State}}"
        ]),
        " web  |WEB|we|Created\n"
    );
    let o = root.run(&["ps", "-a", "--format", "{{.Nope}}"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("failed to execute template: template: :1:2: executing \"\" at <.Nope>: can't evaluate field Nope in type *formatter.ContainerContext"),
        "{}",
        stderr(&o)
    );
    let o = root.run(&["ps", "-a", "--format", "{{.ID}}\n{{.Names"]);
    assert!(
        stderr(&o).contains("failed to parse template: template: :2: unclosed action"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn split_prints_as_go_prints_a_slice() {
    let root = Root::new();
    web(&root);
    assert_eq!(
        root.ok(&[
            "ps",
            "-a",
            "--format",
            "{{split .Labels \",\"}} {{len (split .Labels \",\")}}"
        ]),
        "[com.x=1 com.y=two] 2\n"
    );
}

#[test]
fn table_headers_use_dockers_column_names() {
    let root = Root::new();
    root.busybox("bb:1");
    let out = root.ok(&[
        "images",
        "--format",
        "table {{.Repository}}\\t{{.SharedSize}}\\t{{.UniqueSize}}\\t{{.Containers}}",
    ]);
    assert_eq!(
        out.lines().next().unwrap(),
        "REPOSITORY   SHARED SIZE   UNIQUE SIZE   CONTAINERS"
    );
}

#[test]
fn inspect_prints_structs_in_dockers_order_and_falls_back_to_raw_json() {
    let root = Root::new();
    web(&root);
    let state = root.ok(&["inspect", "--format", "{{.State}}", "web"]);
    assert!(
        state.starts_with("{created false false false false false 0 0 "),
        "{state}"
    );
    assert_eq!(
        root.ok(&[
            "inspect",
            "--format",
            "{{.Config.Labels}} {{json .Config.Labels}} {{.Config.Cmd}} {{.Name}}",
            "web"
        ]),
        "map[com.x:1 com.y:two] {\"com.x\":\"1\",\"com.y\":\"two\"} [sh -c sleep 1] /web\n"
    );
    let o = root.run(&["inspect", "--format", "{{.Nope}}", "web"]);
    assert!(
        stderr(&o).contains(
            "template parsing error: template: :1:2: executing \"\" at <.Nope>: map has no entry for key \"Nope\""
        ),
        "{}",
        stderr(&o)
    );
    // Without --format: Docker's four-space indentation and field order.
    let full = stdout(&root.run(&["inspect", "web"]));
    assert!(full.starts_with("[\n    {\n        \"Id\": "), "{full}");
    let keys: Vec<&str> = full
        .lines()
        .filter(|l| l.starts_with("        \""))
        .map(|l| l.trim().split('"').nth(1).unwrap())
        .collect();
    assert_eq!(&keys[..4], ["Id", "Created", "Path", "Args"]);
}
