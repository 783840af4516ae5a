//! A bad compose file, as a user meets it: `berth compose up -d` exits 15
//! (compose's code for a bad file) with `file:line:column: path: message`
//! and creates nothing, not even the store. No containers are needed.

mod common;

use common::{stderr, Root};

/// `compose up -d` in a directory holding `compose.yaml` = `text` (and
/// the variables of `env`); returns (exit code, stderr).
fn up(root: &Root, text: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("compose.yaml"), text).unwrap();
    let mut c = root.cmd(&["compose", "up", "-d"]);
    c.current_dir(dir.path())
        .env_remove("COMPOSE_FILE")
        .env_remove("COMPOSE_PROJECT_NAME")
        .env_remove("COMPOSE_PROFILES")
        .env_remove("IMAGE_TAG");
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    (o.status.code(), stderr(&o))
}

#[test]
fn each_bad_file_says_where_exits_15_and_creates_nothing() {
    let root = Root::new();
    let cases = [
        (
            "unknown key",
            "services:\n  web:\n    image: bb\n    restart_policy: always\n",
            "compose.yaml:4:5: services.web: unknown key \"restart_policy\"\n",
        ),
        (
            "unknown key, with a suggestion",
            "services:\n  web:\n    image: bb\n    portz: [\"80\"]\n",
            "compose.yaml:4:5: services.web: unknown key \"portz\" (did you mean \"ports\"?)\n",
        ),
        (
            "wrong type in a list",
            "services:\n  web:\n    image: bb\n    ports:\n      - \"80\"\n      - \"8080:http\"\n",
            "compose.yaml:6:9: services.web.ports[1]: expected a port like \
             [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL], got \"8080:http\"\n",
        ),
        (
            "wrong type in a long-syntax entry",
            "services:\n  web:\n    image: bb\n    ports: [\"80\", {target: x}]\n",
            "compose.yaml:4:28: services.web.ports[1].target: expected a port number, got string \"x\"\n",
        ),
        (
            "wrong type",
            "services:\n  web:\n    image: bb\n    environment: 5\n",
            "compose.yaml:4:18: services.web.environment: expected a mapping or a list of KEY=VALUE, got number 5\n",
        ),
        (
            "undefined service in depends_on",
            "services:\n  web:\n    image: bb\n    depends_on:\n      - db\n",
            "compose.yaml:5:9: services.web.depends_on: service \"web\" depends on undefined service \"db\"\n",
        ),
        (
            "unknown pull_policy",
            "services:\n  web:\n    image: bb\n    pull_policy: sometimes\n",
            "compose.yaml:4:18: services.web.pull_policy: expected one of always, never, missing, if_not_present, \
             build, refresh, daily, weekly or every_<duration>, got string \"sometimes\"\n",
        ),
        (
            "dependency cycle",
            "services:\n  a:\n    image: bb\n    depends_on: [b]\n  b:\n    image: bb\n    depends_on:\n      a:\n        condition: service_started\n",
            "compose.yaml:8:7: services.b.depends_on: dependency cycle detected: a -> b -> a\n",
        ),
        (
            "missing required variable",
            "services:\n  web:\n    image: \"bb:${IMAGE_TAG:?set IMAGE_TAG to the release}\"\n",
            "compose.yaml:3:12: services.web.image: required variable IMAGE_TAG is missing a value: \
             set IMAGE_TAG to the release\n",
        ),
        (
            "YAML syntax",
            "services:\n  web:\n    image: bb\n     command: oops\n",
            "compose.yaml:4:13: mapping values are not allowed in this context\n",
        ),
    ];
    let mut wrong = Vec::new();
    for (what, text, want) in cases {
        let (code, err) = up(&root, text, &[]);
        if code != Some(15) || err != want {
            wrong.push(format!("{what}: exit {code:?}, stderr {err:?}\n  wanted {want:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(
        !root.path().join("store").exists(),
        "a bad file must create nothing, not even the store"
    );

    // `${VAR?err}` fails only when unset; set empty, it passes that check
    // (and the bad file behind it still says where).
    let text = "services:\n  web:\n    image: \"bb${IMAGE_TAG?unset}\"\n    privileged: sometimes\n";
    let (code, err) = up(&root, text, &[]);
    assert_eq!(
        (code, err.as_str()),
        (
            Some(15),
            "compose.yaml:3:12: services.web.image: required variable IMAGE_TAG is missing a value: unset\n"
        )
    );
    let (code, err) = up(&root, text, &[("IMAGE_TAG", "")]);
    assert_eq!(
        (code, err.as_str()),
        (
            Some(15),
            "compose.yaml:4:17: services.web.privileged: expected a boolean, got string \"sometimes\"\n"
        )
    );
    assert!(!root.path().join("store").exists());
}

/// A bad value inside an `extends`'d service is reported where it was
/// written: the base's file, line and column and the base's own path
/// (`services.base…`), not the extending service's, as compose checks
/// each file before applying `extends`; nothing is created.
#[test]
fn errors_inside_an_extended_service_name_the_base() {
    let root = Root::new();
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "wrong type, another file",
            "services:\n  base:\n    image: bb\n    privileged: maybe\n",
            "services:\n  web:\n    extends:\n      file: base.yaml\n      service: base\n    environment: [A=1]\n",
            "base.yaml:4:17: services.base.privileged: expected a boolean, got string \"maybe\"\n",
        ),
        (
            "a number, another file",
            "services:\n  base:\n    image: bb\n    deploy:\n      replicas: lots\n",
            "services:\n  web:\n    extends: {file: base.yaml, service: base}\n",
            "base.yaml:5:17: services.base.deploy.replicas: expected a whole number (0 or more), got string \"lots\"\n",
        ),
        (
            "unknown key, another file",
            "services:\n  base:\n    image: bb\n    build: {context: ., bogus: 1}\n",
            "services:\n  web:\n    extends: {file: base.yaml, service: base}\n",
            "base.yaml:4:25: services.base.build: unknown key \"bogus\"\n",
        ),
        (
            "wrong type, same file, base sorted after",
            "services: {}\n",
            "services:\n  a:\n    extends: z\n  z:\n    image: bb\n    cpus: many\n",
            "compose.yaml:6:11: services.z.cpus: expected a number, got string \"many\"\n",
        ),
    ];
    let mut wrong = Vec::new();
    for (what, base, text, want) in cases {
        std::fs::write(dir.path().join("base.yaml"), base).unwrap();
        std::fs::write(dir.path().join("compose.yaml"), text).unwrap();
        let mut c = root.cmd(&["compose", "up", "-d"]);
        c.current_dir(dir.path())
            .env_remove("COMPOSE_FILE")
            .env_remove("COMPOSE_PROJECT_NAME")
            .env_remove("COMPOSE_PROFILES");
        let o = c.output().unwrap();
        let err = stderr(&o);
        if o.status.code() != Some(15) || err != want {
            wrong.push(format!(
                "{what}: exit {:?}, stderr {err:?}\n  wanted {want:?}",
                o.status.code()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(!root.path().join("store").exists());
}
