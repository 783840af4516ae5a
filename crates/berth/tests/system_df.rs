//! `system df` counts what takes space as Docker does: containers' writable
//! layers, volumes' data, and build steps whose layers only the cache holds.

mod common;

use common::*;

/// `system df` rows as "TYPE TOTAL ACTIVE SIZE RECLAIMABLE" (sizes with
/// four significant digits, as the docker CLI prints them there).
fn df_rows(r: &Root) -> Vec<String> {
    r.ok(&[
        "system",
        "df",
        "--format",
        "{{.Type}}|{{.TotalCount}}|{{.Active}}|{{.Size}}|{{.Reclaimable}}",
    ])
    .lines()
    .map(str::to_string)
    .collect()
}

#[test]
#[ignore = "needs root"]
fn disk_usage_counts_containers_volumes_and_build_cache() {
    let env = Env::new();
    let r = &env.root;
    // A stopped container that wrote 3 MiB into its own file system and
    // 2 MiB into a volume it keeps; a running one that wrote nothing.
    r.ok(&[
        "run",
        "--name",
        "writer",
        "-v",
        "data:/data",
        "bb",
        "sh",
        "-c",
        "head -c 3145728 /dev/zero > /big; head -c 2097152 /dev/zero > /data/f",
    ]);
    r.ok(&["run", "-d", "--name", "up", "bb", "sleep", "1000"]);
    // A volume no container uses any more: 1 MiB, all reclaimable.
    r.ok(&[
        "run",
        "--rm",
        "-v",
        "spare:/s",
        "bb",
        "sh",
        "-c",
        "head -c 1048576 /dev/zero > /s/f",
    ]);
    // A build whose first stage's layer (1 MiB) only the cache holds.
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM bb AS gen\nRUN head -c 1048576 /dev/zero > /blob && echo x > /small\n\
         FROM bb\nCOPY --from=gen /small /small\n",
    )
    .unwrap();
    r.ok(&["build", "-q", "-t", "built", ctx.path().to_str().unwrap()]);

    let rows = df_rows(r);
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert!(rows[0].starts_with("Images|"), "{rows:?}");
    assert_eq!(rows[1], "Containers|2|1|3.146MB|3.146MB (100%)", "{rows:?}");
    assert_eq!(rows[2], "Local Volumes|2|1|3.146MB|1.049MB (33%)", "{rows:?}");
    let cache: Vec<&str> = rows[3].split('|').collect();
    assert_eq!(cache[0], "Build Cache");
    assert!(cache[1].parse::<u32>().unwrap() >= 2, "{rows:?}");
    assert_eq!(&cache[3..], ["1.049MB", "1.049MB (100%)"], "{rows:?}");

    // Removing the stopped container gives its space back.
    r.ok(&["rm", "writer"]);
    let rows = df_rows(r);
    assert_eq!(rows[1], "Containers|1|1|0B|0B", "{rows:?}");
    assert_eq!(rows[2], "Local Volumes|2|0|3.146MB|3.146MB (100%)", "{rows:?}");
}
