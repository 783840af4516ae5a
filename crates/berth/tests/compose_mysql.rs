//! The course's "Multi Container Systems" chapter, end to end, on a real
//! MariaDB server: `examples/compose-mysql/make-images` makes the images
//! from Debian's packages (its root tars are cached under the target
//! directory, so only the first run pays for mmdebstrap), then, as the
//! course writes it: `compose build`, `compose run --rm -i python` with
//! `mysql --host=mysql …` and `python database.py` inside. Then the
//! course's commented-out `mysql_data` volume is enabled: data written
//! survives `down` and `up`, and is gone after `down -v`.
//!
//! The python container reaches the server by its service name (`links`),
//! so this needs containers joined to the project's bridge network.

mod common;
#[path = "common/compose.rs"]
mod compose_helpers;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{have, need_root, stderr, stdout, Root};
use compose_helpers::{compose, ok, Down};

/// `mysql` inside a one-off python container, as the course runs it;
/// retried while the server is still starting (its first start
/// initialises the database).
fn mysql(root: &Root, dir: &Path, sql: &str) -> Output {
    let script = "for i in $(seq 120); do \
        mysql --host=mysql --user=test --database=test --password=test -N -e \"$SQL\" && exit 0; \
        sleep 0.5; done; exit 1";
    let full = [
        "compose", "-p", "course", "run", "--rm", "-T", "-e", "SQL", "python", "sh", "-c", script,
    ];
    let mut c = root.cmd(&full);
    c.current_dir(dir).env("SQL", sql).env_remove("COMPOSE_FILE");
    c.output().unwrap()
}

#[test]
#[ignore = "needs root"]
fn course_app_and_mysql() {
    need_root();
    assert!(
        have("mmdebstrap"),
        "mmdebstrap is not installed (scripts/setup --tests installs it)"
    );
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/compose-mysql");
    let root = Root::new();
    let store = root.path().join("store");
    let make = Command::new(example.join("make-images"))
        .arg("--root")
        .arg(&store)
        .env("BERTH", env!("CARGO_BIN_EXE_berth"))
        .env(
            "CACHE",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("compose-mysql-cache"),
        )
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        make.status.success(),
        "make-images failed:\n{}{}",
        stdout(&make),
        stderr(&make)
    );

    // The project: the example's files, in a directory of the test's own.
    // The directory names the project (`course`), as `-p course` would.
    let dir = root.path().join("course");
    std::fs::create_dir(&dir).unwrap();
    for f in ["docker-compose.yml", "python-mysql.Dockerfile", "database.py"] {
        std::fs::copy(example.join(f), dir.join(f)).unwrap();
    }
    std::fs::create_dir(dir.join("wheels")).unwrap();
    for w in std::fs::read_dir(example.join("wheels")).unwrap() {
        let w = w.unwrap();
        std::fs::copy(w.path(), dir.join("wheels").join(w.file_name())).unwrap();
    }
    let _down = Down(&root, dir.clone());

    // The course's steps.
    ok(&root, &dir, &["build"]);
    let images = root.ok(&["images", "--format", "{{.Repository}}"]);
    assert!(images.lines().any(|l| l == "course-python"), "{images}");
    let o = mysql(&root, &dir, "select 1");
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(stdout(&o).trim(), "1");
    let o = compose(&root, &dir, &["run", "--rm", "-T", "python", "python", "database.py"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("MySQLConnection"), "{}", stdout(&o));
    // Without a named volume the data goes with the container.
    ok(&root, &dir, &["down"]);

    // The course's hint: the database's data in a named volume.
    let file = std::fs::read_to_string(dir.join("docker-compose.yml")).unwrap();
    let with_volume = file.replace(
        "        command: /bin/sh\n",
        "        command: /bin/sh\n\nvolumes:\n    mysql_data:\n",
    );
    let with_volume = with_volume.replace(
        "            MYSQL_PASSWORD: test\n",
        "            MYSQL_PASSWORD: test\n        volumes:\n            - mysql_data:/var/lib/mysql\n",
    );
    assert_ne!(with_volume, file);
    std::fs::write(dir.join("docker-compose.yml"), &with_volume).unwrap();
    let o = mysql(
        &root,
        &dir,
        "create table notes (t varchar(20)); insert into notes values ('kept'); select t from notes",
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(stdout(&o).trim(), "kept");
    assert!(root
        .ok(&["volume", "ls", "-q"])
        .lines()
        .any(|v| v == "course_mysql_data"));

    ok(&root, &dir, &["down"]);
    assert_eq!(root.ok(&["ps", "-aq"]), "");
    ok(&root, &dir, &["up", "-d", "mysql"]);
    let o = mysql(&root, &dir, "select t from notes");
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(stdout(&o).trim(), "kept", "the data survives down and up");

    ok(&root, &dir, &["down", "-v"]);
    assert!(!root.ok(&["volume", "ls", "-q"]).contains("course_mysql_data"));
    let o = mysql(
        &root,
        &dir,
        "select count(*) from information_schema.tables where table_name = 'notes'",
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(stdout(&o).trim(), "0", "down -v took the data");
}
