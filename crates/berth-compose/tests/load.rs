//! Loading compose projects as a user's files and environment would: each
//! test reads fixtures under tests/fixtures and checks what `berth compose
//! config` would show, or the error a user would read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_compose::graph::{start_levels, stop_levels, with_dependencies};
use berth_compose::identity::{config_hash, container_labels, container_name, labels};
use berth_compose::model::Condition;
use berth_compose::render::{to_json_text, to_yaml_text};
use berth_compose::{load, Loaded, Options};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Options as if run in `dir` with a small, known environment.
fn opts_in(dir: &str, env: &[(&str, &str)]) -> Options {
    let mut os_env: BTreeMap<String, String> = BTreeMap::new();
    os_env.insert("HOME".into(), "/home/user".into());
    for (k, v) in env {
        os_env.insert(k.to_string(), v.to_string());
    }
    Options {
        working_dir: fixtures().join(dir),
        os_env,
        ..Options::default()
    }
}

fn load_in(dir: &str) -> Loaded {
    load(&opts_in(dir, &[])).unwrap_or_else(|e| panic!("{dir}: {e}"))
}

/// The message and exit code a user gets for a bad file.
fn bad(file: &str) -> (String, i32) {
    let mut o = opts_in("bad", &[]);
    o.working_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    o.files = vec![fixtures().join("bad").join(file)];
    let e = load(&o).expect_err(file);
    (e.to_string(), e.exit_code())
}

#[test]
fn the_course_file_renders_as_compose_v2_prints_it() {
    let loaded = load_in("course");
    let dir = fixtures().join("course");
    let expected = format!(
        "name: course
services:
  mysql:
    environment:
      MYSQL_DATABASE: test
      MYSQL_PASSWORD: test
      MYSQL_ROOT_PASSWORD: root
      MYSQL_USER: test
    image: berth-examples/mariadb
    networks:
      default: null
  python:
    build:
      context: {dir}
      dockerfile: python-mysql.Dockerfile
    command:
      - /bin/sh
    depends_on:
      mysql:
        condition: service_started
        restart: true
        required: true
    links:
      - mysql
    networks:
      default: null
networks:
  default:
    name: course_default
",
        dir = dir.display()
    );
    assert_eq!(to_yaml_text(&loaded.project), expected);
    assert_eq!(loaded.config_files, vec![dir.join("docker-compose.yml")]);
    let json: serde_json::Value = serde_json::from_str(&to_json_text(&loaded.project)).unwrap();
    assert_eq!(json["services"]["mysql"]["command"], serde_json::Value::Null);
    assert_eq!(json["services"]["python"]["command"][0], "/bin/sh");
}

#[test]
fn interpolation_uses_dotenv_and_every_operator() {
    let loaded = load(&opts_in("interpolation", &[])).unwrap();
    let web = &loaded.project.services["web"];
    assert_eq!(web.image.as_deref(), Some("busybox:1.2"));
    let env = |k: &str| web.environment[k].clone().unwrap();
    assert_eq!(env("SET"), "from-dotenv");
    assert_eq!(env("BRACELESS"), "from-dotenv-x");
    assert_eq!(env("DEFAULT_EMPTY"), "fallback");
    assert_eq!(env("DEFAULT_UNSET_ONLY"), "");
    assert_eq!(env("ALT"), "alt-when-set");
    assert_eq!(env("ALT_EMPTY"), "alt-even-empty");
    assert_eq!(env("REQUIRED"), "from-dotenv");
    assert_eq!(env("NESTED"), "from-dotenv");
    assert_eq!(env("LITERAL"), "$HOME and ${SET}");
    assert_eq!(env("UNSET"), "");
    assert_eq!(web.ports[0].published.as_deref(), Some("8080"));
    assert!(!web.privileged);
    assert_eq!(
        loaded.warnings,
        vec!["WARN[0000] The \"NOT_SET_ANYWHERE\" variable is not set. Defaulting to a blank string."]
    );
}

#[test]
fn the_process_environment_wins_over_dotenv() {
    let loaded = load(&opts_in("interpolation", &[("SET", "from-shell"), ("PRIV", "true")])).unwrap();
    let web = &loaded.project.services["web"];
    assert_eq!(web.environment["SET"].as_deref(), Some("from-shell"));
    assert!(web.privileged);
}

#[test]
fn an_env_file_flag_replaces_dotenv() {
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("prod.env");
    std::fs::write(&env_file, "SET=from-env-file\nPORT=9090\n").unwrap();
    let mut o = opts_in("interpolation", &[]);
    o.env_files = vec![env_file];
    let loaded = load(&o).unwrap();
    let web = &loaded.project.services["web"];
    assert_eq!(web.environment["SET"].as_deref(), Some("from-env-file"));
    assert_eq!(web.ports[0].published.as_deref(), Some("9090"));
    // TAG came from .env, which --env-file replaced.
    assert_eq!(web.image.as_deref(), Some("busybox:latest"));
}

#[test]
fn anchors_aliases_and_merge_keys() {
    let p = load_in("anchors").project;
    let api = &p.services["api"];
    assert_eq!(api.restart.as_deref(), Some("unless-stopped"));
    assert_eq!(api.environment["LOG_LEVEL"].as_deref(), Some("info"));
    assert_eq!(api.environment["PORT"].as_deref(), Some("8000"));
    assert_eq!(api.labels["tier"], "backend");
    assert_eq!(p.services["worker"].restart.as_deref(), Some("no"));
    // The x- key that held the anchor is an extension, printed as such.
    assert!(p.extensions.contains_key("x-common"));
    assert!(to_yaml_text(&p).contains("x-common:\n  environment:\n    LOG_LEVEL: info\n"));
}

#[test]
fn extends_from_the_same_file_and_another_file() {
    let p = load_in("extends").project;
    let tool = &p.services["tool"];
    assert_eq!(tool.image.as_deref(), Some("busybox"));
    assert_eq!(tool.environment["FROM_BASE"].as_deref(), Some("1"));
    assert_eq!(tool.environment["OWN"].as_deref(), Some("2"));
    // Relative paths in the other file are relative to that file.
    let data = fixtures().join("extends/common/data");
    assert_eq!(tool.volumes[0].source.as_deref(), Some(data.to_str().unwrap()));
    let child = &p.services["child"];
    assert_eq!(child.image.as_deref(), Some("alpine"));
    assert_eq!(child.cap_add, vec!["NET_ADMIN", "SYS_TIME"]);
    assert_eq!(child.ports.len(), 2, "80:80 is not repeated");
    let grandchild = &p.services["grandchild"];
    assert_eq!(grandchild.cap_add, vec!["NET_ADMIN", "SYS_TIME"]);
    assert_eq!(
        grandchild.command.as_deref(),
        Some(&["echo".to_string(), "hi".to_string()][..])
    );
}

#[test]
fn several_files_merge_by_the_spec_rules() {
    let mut o = opts_in("multi", &[]);
    o.files = vec!["compose.yaml".into(), "compose.prod.yaml".into()];
    let loaded = load(&o).unwrap();
    let web = &loaded.project.services["web"];
    assert_eq!(web.image.as_deref(), Some("web:2"));
    assert_eq!(web.command.clone().unwrap(), vec!["serve", "--prod"]);
    let published: Vec<_> = web.ports.iter().map(|p| p.published.clone().unwrap()).collect();
    assert_eq!(published, vec!["8080", "443"]);
    assert_eq!(web.expose, vec!["9000", "9001"]);
    assert_eq!(web.dns, vec!["1.1.1.1", "8.8.8.8"]);
    let env: Vec<_> = web
        .environment
        .iter()
        .map(|(k, v)| format!("{k}={}", v.clone().unwrap()))
        .collect();
    assert_eq!(env, vec!["A=1", "B=20", "C=30"]);
    // Same target: the later mount replaces the earlier; paths relative to the project directory.
    assert_eq!(web.volumes.len(), 1);
    let release = fixtures().join("multi/release");
    assert_eq!(web.volumes[0].source.as_deref(), Some(release.to_str().unwrap()));
    let logging = web.logging.as_ref().unwrap();
    assert_eq!(logging.options.len(), 2);
    assert!(loaded.project.services.contains_key("cache"));
    assert_eq!(loaded.config_files.len(), 2);
}

#[test]
fn compose_file_variable_with_its_separator() {
    let o = opts_in("multi", &[("COMPOSE_FILE", "compose.yaml:compose.prod.yaml")]);
    let loaded = load(&o).unwrap();
    assert_eq!(loaded.project.services["web"].image.as_deref(), Some("web:2"));
    let o = opts_in(
        "multi",
        &[
            ("COMPOSE_FILE", "compose.yaml;compose.prod.yaml"),
            ("COMPOSE_PATH_SEPARATOR", ";"),
        ],
    );
    assert_eq!(load(&o).unwrap().config_files.len(), 2);
}

#[test]
fn the_override_file_is_read_beside_the_discovered_one() {
    let loaded = load_in("override");
    let app = &loaded.project.services["app"];
    assert_eq!(app.environment["MODE"].as_deref(), Some("dev"));
    assert_eq!(app.ports[0].target, 3000);
    assert_eq!(loaded.config_files.len(), 2);
}

#[test]
fn include_brings_in_another_project_with_its_own_paths() {
    let p = load_in("include").project;
    let db = &p.services["db"];
    let initdb = fixtures().join("include/sub/initdb");
    assert_eq!(db.volumes[0].source.as_deref(), Some(initdb.to_str().unwrap()));
    assert_eq!(p.volumes["dbdata"].name.as_deref(), Some("include_dbdata"));
    assert!(p.services["web"].depends_on.contains_key("db"));
}

#[test]
fn profiles_enable_services() {
    let names = |o: Options| -> Vec<String> { load(&o).unwrap().project.services.keys().cloned().collect() };
    assert_eq!(names(opts_in("profiles", &[])), vec!["web"]);
    let mut o = opts_in("profiles", &[]);
    o.profiles = vec!["debug".into()];
    assert_eq!(names(o), vec!["debugger", "web"]);
    // An optional dependency on a disabled service is dropped.
    assert_eq!(
        names(opts_in("profiles", &[("COMPOSE_PROFILES", "ci")])),
        vec!["tests", "web"]
    );
    assert_eq!(
        names(opts_in("profiles", &[("COMPOSE_PROFILES", "*")])),
        vec!["debugger", "migrate", "tests", "web"]
    );
    let e = load(&opts_in("profiles", &[("COMPOSE_PROFILES", "ops")])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "service \"debugger\" is required by \"migrate\" but is disabled; enable it with --profile debug"
    );
    let all = load_in("profiles").all_profiles;
    assert_eq!(all.into_iter().collect::<Vec<_>>(), vec!["ci", "debug", "ops", "test"]);
}

#[test]
fn files_are_found_upwards_and_the_project_is_named_after_their_directory() {
    let loaded = load_in("discovery/app/deep/er");
    assert!(loaded.project.services.contains_key("found"));
    assert_eq!(loaded.project.name, "app");
    assert_eq!(loaded.working_dir, fixtures().join("discovery/app"));
}

#[test]
fn compose_yaml_is_preferred_and_the_choice_reported() {
    let loaded = load_in("both-names");
    assert!(loaded.project.services.contains_key("new"));
    assert_eq!(loaded.warnings.len(), 2);
    assert!(loaded.warnings[0].starts_with("WARN[0000] Found multiple config files with supported names: "));
}

#[test]
fn the_obsolete_version_key_is_ignored_with_compose_s_warning() {
    let mut o = opts_in("both-names", &[]);
    o.files = vec!["docker-compose.yml".into()];
    let loaded = load(&o).unwrap();
    assert!(loaded.project.services.contains_key("old"));
    assert!(loaded.warnings[0].ends_with(
        "docker-compose.yml: the attribute `version` is obsolete, it will be ignored, please remove it to avoid potential confusion"
    ));
}

#[test]
fn project_names_from_flag_variable_file_and_directory() {
    assert_eq!(load_in("My_App.Dir").project.name, "my_appdir");
    let o = opts_in("My_App.Dir", &[("COMPOSE_PROJECT_NAME", "from-env")]);
    assert_eq!(load(&o).unwrap().project.name, "from-env");
    let mut o = opts_in("My_App.Dir", &[("COMPOSE_PROJECT_NAME", "from-env")]);
    o.project_name = Some("from-flag".into());
    assert_eq!(load(&o).unwrap().project.name, "from-flag");
    let mut o = opts_in("My_App.Dir", &[]);
    o.project_name = Some("Not Valid".into());
    assert!(load(&o)
        .unwrap_err()
        .to_string()
        .starts_with("invalid project name \"Not Valid\""));
}

#[test]
fn project_directory_sets_where_paths_and_dotenv_are_read() {
    let mut o = opts_in("My_App.Dir", &[]);
    o.files = vec![fixtures().join("course/docker-compose.yml")];
    o.project_directory = Some(fixtures().join("multi"));
    let loaded = load(&o).unwrap();
    assert_eq!(loaded.project.name, "multi");
    let build = loaded.project.services["python"].build.clone().unwrap();
    assert_eq!(build.context, fixtures().join("multi").display().to_string());
}

#[test]
fn secrets_and_configs_from_files_environment_and_content() {
    let p = load(&opts_in("secrets", &[("API_KEY", "k")])).unwrap().project;
    let file = fixtures().join("secrets/db_password.txt");
    assert_eq!(p.secrets["db_password"].file.as_deref(), Some(file.to_str().unwrap()));
    assert_eq!(p.secrets["api_key"].environment.as_deref(), Some("API_KEY"));
    assert_eq!(p.configs["app_config"].content.as_deref(), Some("debug = true\n"));
    let db = &p.services["db"];
    assert_eq!(db.secrets[1].mode, Some(0o440));
    assert_eq!(db.secrets[1].gid.as_deref(), Some("1000"));
    assert!(to_yaml_text(&p).contains("    content: |\n      debug = true\n"));
}

#[test]
fn the_spec_example_loads_with_names_and_networks() {
    let p = load_in("spec-example").project;
    assert_eq!(
        p.networks["front-tier"].name.as_deref(),
        Some("spec-example_front-tier")
    );
    assert!(!p.networks.contains_key("default"), "every service names its networks");
    assert_eq!(p.volumes["db-data"].name.as_deref(), Some("spec-example_db-data"));
    assert_eq!(p.configs["httpd-config"].name.as_deref(), Some("httpd-config"));
    let port = &p.services["frontend"].ports[0];
    assert_eq!((port.target, port.published.as_deref()), (8043, Some("443")));
    let yaml = to_yaml_text(&p);
    assert!(yaml.contains(
        "    ports:\n      - mode: ingress\n        target: 8043\n        published: \"443\"\n        protocol: tcp\n"
    ));
}

#[test]
fn bad_files_say_where_and_what() {
    let cases = [
        ("unknown-key.yaml", "tests/fixtures/bad/unknown-key.yaml:4:5: services.web: unknown key \"portz\" (did you mean \"ports\"?)"),
        ("wrong-type.yaml", "tests/fixtures/bad/wrong-type.yaml:4:17: services.web.privileged: expected a boolean, got string \"sometimes\""),
        ("undefined-dependency.yaml", "tests/fixtures/bad/undefined-dependency.yaml:5:9: services.web.depends_on: service \"web\" depends on undefined service \"db\""),
        ("undefined-link.yaml", "tests/fixtures/bad/undefined-link.yaml:5:9: services.web.depends_on: service \"web\" depends on undefined service \"cache\""),
        ("undefined-volumes-from.yaml", "tests/fixtures/bad/undefined-volumes-from.yaml:4:20: services.web.depends_on: service \"web\" depends on undefined service \"ghost\""),
        ("cycle.yaml", "tests/fixtures/bad/cycle.yaml:10:18: services.c.depends_on: dependency cycle detected: a -> b -> c -> a"),
        ("required-variable.yaml", "tests/fixtures/bad/required-variable.yaml:3:12: services.web.image: required variable TAG is missing a value: set TAG to the release"),
        ("bad-port.yaml", "tests/fixtures/bad/bad-port.yaml:6:9: services.web.ports[1]: expected a port like [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL], got \"80:http\""),
        ("bad-volume.yaml", "tests/fixtures/bad/bad-volume.yaml:5:9: services.web.volumes[0]: expected a volume like [SOURCE:]TARGET[:MODE], got \"data:relative/path\""),
        ("undefined-volume.yaml", "tests/fixtures/bad/undefined-volume.yaml:5:9: services.web.volumes[0]: service \"web\" refers to undefined volume \"data\": declare it under the top-level `volumes:`"),
        ("ports-not-a-list.yaml", "tests/fixtures/bad/ports-not-a-list.yaml:4:12: services.web.ports: expected a list of ports, got number 80"),
        ("undefined-extends.yaml", "tests/fixtures/bad/undefined-extends.yaml:4:14: services.web.extends: cannot extend service \"nothere\": no such service in this file"),
        ("unknown-top-level.yaml", "tests/fixtures/bad/unknown-top-level.yaml:1:1: (root): unknown key \"servicez\" (did you mean \"services\"?)"),
        ("bad-condition.yaml", "tests/fixtures/bad/bad-condition.yaml:6:20: services.web.depends_on.db.condition: expected one of service_started, service_healthy, service_completed_successfully, got \"service_ready\""),
        ("no-image.yaml", "tests/fixtures/bad/no-image.yaml:2:3: services.web: service \"web\" has neither an image nor a build context specified"),
        ("network-mode-and-networks.yaml", "tests/fixtures/bad/network-mode-and-networks.yaml:4:19: services.web: service \"web\" declares mutually exclusive `network_mode` and `networks`"),
        ("bad-restart.yaml", "tests/fixtures/bad/bad-restart.yaml:4:14: services.web.restart: expected one of no, always, on-failure[:MAX_RETRIES], unless-stopped, got string \"sometimes\""),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(|(file, message)| {
            let got = bad(file);
            (got != (message.to_string(), 15)).then(|| format!("{file}: got {got:?}"))
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    let (yaml_error, code) = bad("not-yaml.yaml");
    assert!(
        yaml_error == "tests/fixtures/bad/not-yaml.yaml:4:13: mapping values are not allowed in this context",
        "{yaml_error}"
    );
    assert_eq!(code, 15);
}

#[test]
fn no_file_is_exit_14_as_compose() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts_in("course", &[]);
    o.working_dir = dir.path().to_path_buf();
    let e = load(&o).unwrap_err();
    assert_eq!(
        (e.to_string().as_str(), e.exit_code()),
        ("no configuration file provided: not found", 14)
    );
    o.files = vec!["missing.yaml".into()];
    assert_eq!(load(&o).unwrap_err().exit_code(), 14);
}

#[test]
fn identity_names_labels_and_hash() {
    let loaded = load_in("course");
    let python = &loaded.project.services["python"];
    assert_eq!(container_name("course", "python", python, 1), "course-python-1");
    let l = container_labels(&loaded, "python", 1, false, Some("sha256:abc"));
    assert_eq!(l[labels::PROJECT], "course");
    assert_eq!(l[labels::SERVICE], "python");
    assert_eq!(l[labels::CONTAINER_NUMBER], "1");
    assert_eq!(l[labels::ONEOFF], "False");
    assert_eq!(l[labels::DEPENDS_ON], "mysql:service_started:true");
    assert_eq!(l[labels::IMAGE], "sha256:abc");
    assert_eq!(l[labels::WORKING_DIR], fixtures().join("course").display().to_string());
    assert_eq!(l[labels::CONFIG_HASH], config_hash(python));
    assert_eq!(config_hash(python).len(), 64);

    // The hash ignores what does not change a running container…
    let mut same = python.clone();
    same.depends_on.clear();
    same.build = None;
    same.scale = Some(3);
    assert_eq!(config_hash(&same), config_hash(python));
    // …and follows what does.
    let mut changed = python.clone();
    changed.environment.insert("NEW".into(), Some("1".into()));
    assert_ne!(config_hash(&changed), config_hash(python));
}

#[test]
fn start_order_in_parallel_levels_and_stop_in_reverse() {
    let p = load_in("course").project;
    assert_eq!(
        start_levels(&p),
        vec![vec!["mysql".to_string()], vec!["python".to_string()]]
    );
    assert_eq!(stop_levels(&p)[0], vec!["python".to_string()]);
    let deps = with_dependencies(&p, &["python".to_string()]);
    assert_eq!(deps.into_iter().collect::<Vec<_>>(), vec!["mysql", "python"]);
    assert_eq!(
        p.services["python"].depends_on["mysql"].condition,
        Condition::ServiceStarted
    );
}

#[test]
fn env_files_label_files_and_their_precedence() {
    let p = load_in("env-files").project;
    let app = &p.services["app"];
    let env = |k: &str| app.environment[k].clone().unwrap();
    assert_eq!(env("GREETING"), "hello world");
    assert_eq!(env("OVERRIDDEN"), "by-environment");
    assert_eq!(env("FROM_ENVIRONMENT"), "wins");
    assert_eq!(env("TEMPLATE"), "${NOT_EXPANDED} \"quotes kept\"");
    assert_eq!(app.labels["team"], "written-in-file");
    assert_eq!(app.labels["owner"], "ops");
    // A required env file that is missing stops the load.
    let mut o = opts_in("env-files", &[]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  a:\n    image: a\n    env_file: nope.env\n",
    )
    .unwrap();
    o.working_dir = dir.path().to_path_buf();
    let e = load(&o).unwrap_err().to_string();
    assert!(
        e.starts_with("env file ") && e.ends_with("nope.env: no such file or directory"),
        "{e}"
    );
}

#[test]
fn secrets_and_configs_land_where_compose_puts_them() {
    use berth_compose::files::{file_mounts, FileSource};
    let loaded = load(&opts_in("secrets", &[("API_KEY", "k-123")])).unwrap();
    let secrets = file_mounts(&loaded.project, &loaded.environment, "db", true).unwrap();
    assert_eq!(secrets[0].target, "/run/secrets/db_password");
    assert_eq!(secrets[0].mode, 0o444);
    assert_eq!(
        secrets[0].from,
        FileSource::File(fixtures().join("secrets/db_password.txt"))
    );
    assert_eq!(secrets[1].target, "/etc/api.key");
    assert_eq!(secrets[1].from, FileSource::Value("k-123".into()));
    assert_eq!((secrets[1].uid.as_deref(), secrets[1].mode), (Some("1000"), 0o440));
    let configs = file_mounts(&loaded.project, &loaded.environment, "db", false).unwrap();
    assert_eq!(configs[0].target, "/app_config");
    assert_eq!(configs[0].from, FileSource::Content("debug = true\n".into()));
    // A secret from an unset variable is an error before anything starts.
    let unset = load(&opts_in("secrets", &[])).unwrap();
    let e = file_mounts(&unset.project, &unset.environment, "db", true).unwrap_err();
    assert_eq!(
        e.to_string(),
        "environment variable \"API_KEY\" required by secret \"api_key\" is not set"
    );
}
