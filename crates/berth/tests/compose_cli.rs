//! `berth compose` from the command line, as a user runs it (no root, no
//! containers: config, version and the docker-compose entry; compose_up.rs runs them).

use std::path::Path;
use std::process::Command;

fn berth(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
    c.current_dir(dir)
        .env_remove("COMPOSE_FILE")
        .env_remove("COMPOSE_PROJECT_NAME");
    c
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn config_prints_the_canonical_project() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("shop");
    std::fs::create_dir(&project).unwrap();
    write(
        &project,
        "compose.yaml",
        "services:\n  web:\n    image: nginx\n    ports: [\"8080:80\"]\n    volumes: [data:/data]\nvolumes:\n  data:\n",
    );
    let out = berth(&project).args(["compose", "config"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "name: shop
services:
  web:
    image: nginx
    networks:
      default: null
    ports:
      - mode: ingress
        target: 80
        published: \"8080\"
        protocol: tcp
    volumes:
      - type: volume
        source: data
        target: /data
        volume: {}
networks:
  default:
    name: shop_default
volumes:
  data:
    name: shop_data
"
    );
    let services = berth(&project)
        .args(["compose", "config", "--services"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&services.stdout), "web\n");
    let json = berth(&project)
        .args(["compose", "config", "--format", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["volumes"]["data"]["name"], "shop_data");
}

#[test]
fn a_bad_file_exits_15_with_its_location_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "compose.yaml",
        "services:\n  web:\n    image: nginx\n    depends_on: [db]\n",
    );
    let root = dir.path().join("store");
    let out = berth(dir.path())
        .args(["--root", root.to_str().unwrap(), "compose", "config", "-q"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(15));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "compose.yaml:4:18: services.web.depends_on: service \"web\" depends on undefined service \"db\"\n"
    );
    assert!(!root.exists(), "a config error must not create a store");
    let none = tempfile::tempdir().unwrap();
    let out = berth(none.path()).args(["compose", "config"]).output().unwrap();
    assert_eq!(out.status.code(), Some(14));
}

#[test]
fn invoked_as_docker_compose_it_is_berth_compose() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("docker-compose");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_berth"), &link).unwrap();
    write(dir.path(), "docker-compose.yml", "services:\n  app:\n    build: .\n");
    let out = Command::new(&link)
        .current_dir(dir.path())
        .args(["config", "--images"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let name = berth_compose::loader::normalize_project_name(&dir.path().file_name().unwrap().to_string_lossy());
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{name}-app\n"));
    let version = Command::new(&link).args(["version", "--short"]).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout),
        format!("{}\n", env!("CARGO_PKG_VERSION"))
    );
}
