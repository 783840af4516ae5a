//! A service → the engine's requests: what `up` asks the engine for, checked
//! without an engine (networks by compose's names with the service name as
//! an alias, links to container names, mounts, ports, environment,
//! healthcheck, resources, the build).

use std::collections::BTreeMap;
use std::time::Duration;

use berth_compose::convert::{build_request, container_spec, Instance};
use berth_compose::{load, Loaded, Options};
use berth_engine::build::ContextSource;
use berth_engine::spec::{MountSource, NetworkMode, PullPolicy};

fn load_text(text: &str, env: &[(&str, &str)]) -> (tempfile::TempDir, Loaded) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("shop");
    std::fs::create_dir(&p).unwrap();
    std::fs::write(p.join("compose.yaml"), text).unwrap();
    std::fs::write(p.join("Dockerfile.web"), "FROM bb\n").unwrap();
    let os_env: BTreeMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let loaded = load(&Options {
        working_dir: p,
        os_env,
        ..Options::default()
    })
    .unwrap();
    (dir, loaded)
}

const FILE: &str = "services:
  db:
    image: mariadb
    volumes: [data:/var/lib/mysql, /anon]
    networks:
      back:
        aliases: [database]
        ipv4_address: 172.30.0.5
    healthcheck:
      test: [CMD-SHELL, mysqladmin ping]
      interval: 2s
      retries: 7
  web:
    build:
      context: .
      dockerfile: Dockerfile.web
      args: {A: '1', FROM_ENV: null}
      target: prod
    links: ['db:store']
    ports: ['127.0.0.1:8080:80', '9000-9001:90/udp']
    environment: {GREETING: hi, FROM_SHELL: null, MISSING: null}
    extra_hosts: ['gw=10.0.0.1']
    dns: [10.0.0.2]
    dns_search: [example.org]
    volumes: ['./html:/usr/share/html:ro', {type: tmpfs, target: /scratch, tmpfs: {size: 1000}}]
    user: '1000:1000'
    working_dir: /srv
    command: [serve, --port, '80']
    entrypoint: [/init]
    restart: unless-stopped
    stop_grace_period: 1m30s
    mem_limit: 64m
    cpus: 0.5
    tty: true
    stdin_open: true
    networks: [default, back]
  tool:
    image: bb
    network_mode: service:db
networks:
  back:
    ipam:
      config: [{subnet: 172.30.0.0/16}]
volumes:
  data:
";

#[test]
fn a_service_becomes_the_engines_container_spec() {
    let (_d, loaded) = load_text(FILE, &[("FROM_SHELL", "shell"), ("FROM_ENV", "e")]);
    let one = Instance {
        number: 1,
        ..Default::default()
    };

    let db = container_spec(&loaded, "db", &one).unwrap();
    assert_eq!(db.name.as_deref(), Some("shop-db-1"));
    assert_eq!(db.image, "mariadb");
    assert_eq!(db.network, NetworkMode::Network("shop_back".into()));
    assert_eq!(db.endpoints.len(), 1);
    assert_eq!(db.endpoints[0].network, "shop_back");
    assert_eq!(db.endpoints[0].aliases, ["shop-db-1", "db", "database"]);
    assert_eq!(db.endpoints[0].ipv4, Some("172.30.0.5".parse().unwrap()));
    assert_eq!(db.mounts.len(), 2);
    assert_eq!(
        db.mounts[0].source,
        MountSource::Volume {
            name: Some("shop_data".into()),
            options: Default::default(),
            nocopy: false,
        }
    );
    assert_eq!(
        db.mounts[1].source,
        MountSource::Volume {
            name: None,
            options: Default::default(),
            nocopy: false,
        }
    );
    assert_eq!(
        db.health.test.as_deref(),
        Some(&["CMD-SHELL".to_string(), "mysqladmin ping".to_string()][..])
    );
    assert_eq!(db.health.interval, Some(Duration::from_secs(2)));
    assert_eq!(db.health.retries, Some(7));
    assert_eq!(db.labels["com.docker.compose.service"], "db");
    assert_eq!(db.labels["com.docker.compose.container-number"], "1");
    assert_eq!(db.pull, PullPolicy::Missing);

    let web = container_spec(&loaded, "web", &one).unwrap();
    assert_eq!(web.image, "shop-web");
    assert_eq!(web.pull, PullPolicy::Never, "a built image is never pulled");
    // Networks by priority then name: back before default; the service name
    // is an alias on each.
    assert_eq!(web.network, NetworkMode::Network("shop_back".into()));
    let nets: Vec<(&str, &[String])> = web
        .endpoints
        .iter()
        .map(|e| (e.network.as_str(), e.aliases.as_slice()))
        .collect();
    assert_eq!(
        nets,
        [
            ("shop_back", &["shop-web-1".to_string(), "web".to_string()][..]),
            ("shop_default", &["shop-web-1".to_string(), "web".to_string()][..])
        ]
    );
    assert_eq!(web.links, [("shop-db-1".to_string(), "store".to_string())]);
    assert_eq!(web.extra_hosts, [("gw".to_string(), "10.0.0.1".to_string())]);
    assert_eq!(web.dns.servers, ["10.0.0.2".parse::<std::net::IpAddr>().unwrap()]);
    assert_eq!(web.dns.search, ["example.org"]);
    assert_eq!(web.ports.len(), 2);
    assert_eq!(web.ports[0].host_ip, Some("127.0.0.1".parse().unwrap()));
    assert_eq!((web.ports[0].host_port, web.ports[0].container_port), (8080, 80));
    assert_eq!((web.ports[1].host_port, web.ports[1].host_port_end), (9000, Some(9001)));
    assert_eq!(web.ports[1].proto, berth_engine::spec::Proto::Udp);
    let mut env = web.env.clone();
    env.sort();
    assert_eq!(env, ["FROM_SHELL=shell", "GREETING=hi"], "unset variables are left out");
    let MountSource::Bind { path, .. } = &web.mounts[0].source else {
        panic!("{:?}", web.mounts[0]);
    };
    assert!(path.ends_with("shop/html") && web.mounts[0].readonly);
    assert_eq!(
        web.mounts[1].source,
        MountSource::Tmpfs {
            options: vec!["size=1000".into()]
        }
    );
    assert_eq!(web.user.as_ref().unwrap().to_string(), "1000:1000");
    assert_eq!(web.working_dir.as_deref(), Some("/srv"));
    assert_eq!(web.command, ["serve", "--port", "80"]);
    assert_eq!(web.entrypoint, Some(vec!["/init".to_string()]));
    assert_eq!(web.restart, berth_engine::spec::RestartPolicy::UnlessStopped);
    assert_eq!(web.stop_timeout, Some(Duration::from_secs(90)));
    assert_eq!(web.resources.memory, Some(64 * 1024 * 1024));
    assert_eq!(web.resources.nano_cpus, Some(500_000_000));
    assert!(web.tty && web.open_stdin);

    let tool = container_spec(&loaded, "tool", &one).unwrap();
    assert_eq!(tool.network, NetworkMode::Container("shop-db-1".into()));
    assert!(tool.endpoints.is_empty());

    // A one-off container: its own name, no published ports.
    let run = container_spec(
        &loaded,
        "web",
        &Instance {
            number: 1,
            oneoff: Some("shop-web-run-0123456789ab".into()),
            image_id: None,
        },
    )
    .unwrap();
    assert_eq!(run.name.as_deref(), Some("shop-web-run-0123456789ab"));
    assert!(run.ports.is_empty());
    assert_eq!(run.labels["com.docker.compose.oneoff"], "True");
    assert_eq!(
        run.endpoints[0].aliases,
        ["shop-web-run-0123456789ab"],
        "a one-off is not the service"
    );
}

#[test]
fn a_build_section_becomes_the_engines_build_request() {
    let (_d, loaded) = load_text(FILE, &[("FROM_ENV", "e")]);
    let extra = BTreeMap::from([("A".to_string(), "2".to_string())]);
    let req = build_request(&loaded, "web", &extra, true, false).unwrap().unwrap();
    let ContextSource::Dir(dir) = &req.context else {
        panic!("a directory context")
    };
    assert!(dir.ends_with("shop"));
    assert!(req.file.as_ref().unwrap().ends_with("shop/Dockerfile.web"));
    assert_eq!(req.tags, ["shop-web"]);
    assert_eq!(req.options.target.as_deref(), Some("prod"));
    assert_eq!(
        req.options.build_args,
        BTreeMap::from([
            ("A".to_string(), "2".to_string()),
            ("FROM_ENV".to_string(), "e".to_string())
        ])
    );
    assert!(req.options.no_cache);
    assert!(build_request(&loaded, "db", &BTreeMap::new(), false, false)
        .unwrap()
        .is_none());
}

/// Keys that once reached no request: `volumes_from` (by service and by
/// container), `shm_size` (a sized /dev/shm), `logging.driver`,
/// `deploy.restart_policy`, `device_cgroup_rules`; the build's secrets,
/// extra hosts, shm size and platforms; and what the builder cannot do is
/// refused by name.
#[test]
fn settings_reach_the_engine_or_are_refused() {
    let text = "services:
  data:
    image: bb
  app:
    image: bb
    volumes_from: ['data:ro', 'container:other']
    shm_size: 128m
    logging: {driver: none}
    device_cgroup_rules: ['c 1:3 mr']
    deploy:
      restart_policy: {condition: on-failure, max_attempts: 4}
    build:
      context: .
      secrets: [tok]
      extra_hosts: ['gw=10.0.0.1']
      shm_size: 1g
      platforms: [linux/amd64, linux/arm64]
  any:
    image: bb
    deploy: {restart_policy: {condition: any}}
  ctx:
    build:
      context: .
      additional_contexts: {base: 'docker-image://bb:1', files: ./}
      ulimits: {nofile: {soft: 100, hard: 200}, nproc: 50}
  gone:
    build:
      context: .
      additional_contexts: [extra=./no-such-dir]
secrets:
  tok:
    environment: TOKEN
";
    let (_d, loaded) = load_text(text, &[("TOKEN", "t0k")]);
    let spec = container_spec(
        &loaded,
        "app",
        &Instance {
            number: 1,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(spec.volumes_from, ["shop-data-1:ro", "other"]);
    let shm = spec
        .mounts
        .iter()
        .find(|m| m.target == "/dev/shm")
        .expect("a /dev/shm mount");
    let MountSource::Tmpfs { options } = &shm.source else {
        panic!("a tmpfs: {shm:?}")
    };
    assert!(options.contains(&format!("size={}", 128 << 20)), "{options:?}");
    assert_eq!(spec.log_driver.as_deref(), Some("none"));
    assert_eq!(spec.resources.device_cgroup_rules, ["c 1:3 mr"]);
    assert_eq!(spec.restart, berth_engine::spec::parse_restart("on-failure:4").unwrap());
    let any = container_spec(
        &loaded,
        "any",
        &Instance {
            number: 1,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(any.restart, berth_engine::spec::parse_restart("always").unwrap());

    let req = build_request(&loaded, "app", &BTreeMap::new(), false, false)
        .unwrap()
        .unwrap();
    assert!(req.options.secrets.contains_key("tok"));
    assert_eq!(req.options.extra_hosts, [("gw".to_string(), "10.0.0.1".to_string())]);
    assert_eq!(req.options.shm_size, Some(1 << 30));
    assert_eq!(req.options.platform.as_deref(), Some("linux/amd64,linux/arm64"));
    let ctx = build_request(&loaded, "ctx", &BTreeMap::new(), false, false)
        .unwrap()
        .unwrap();
    assert_eq!(ctx.options.context_images["base"], "bb:1");
    assert_eq!(ctx.options.context_dirs["files"], _d.path().join("shop"));
    assert!(ctx.options.ulimits.contains(&("nofile".to_string(), 100, 200)));
    assert!(ctx.options.ulimits.contains(&("nproc".to_string(), 50, 50)));
    let err = build_request(&loaded, "gone", &BTreeMap::new(), false, false)
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("build.additional_contexts.extra")
            && err.to_string().contains("unable to prepare context: path"),
        "{err}"
    );
}

#[test]
fn volume_nocopy_reaches_the_mount() {
    let text = "services:
  db:
    image: bb
    volumes:
      - {type: volume, source: data, target: /var/lib/db, volume: {nocopy: true}}
      - {type: volume, source: logs, target: /var/log}
volumes:
  data:
  logs:
";
    let (_d, loaded) = load_text(text, &[]);
    let spec = container_spec(
        &loaded,
        "db",
        &Instance {
            number: 1,
            ..Default::default()
        },
    )
    .unwrap();
    let nocopy = |t: &str| match &spec.mounts.iter().find(|m| m.target == t).unwrap().source {
        MountSource::Volume { nocopy, .. } => *nocopy,
        s => panic!("{s:?}"),
    };
    assert!(nocopy("/var/lib/db"));
    assert!(!nocopy("/var/log"));
}

#[test]
fn blkio_config_reaches_the_resources() {
    let text = "services:
  db:
    image: bb
    blkio_config:
      weight: 300
      weight_device: [{path: /dev/vda, weight: 400}]
      device_read_bps: [{path: /dev/vda, rate: 1mb}]
      device_write_iops: [{path: /dev/vda, rate: 120}]
  bad:
    image: bb
    blkio_config: {weight: 5}
";
    let (_d, loaded) = load_text(text, &[]);
    let one = Instance {
        number: 1,
        ..Default::default()
    };
    let r = container_spec(&loaded, "db", &one).unwrap().resources;
    assert_eq!(r.blkio_weight, Some(300));
    assert_eq!(r.blkio_weight_device[0].weight, 400);
    assert_eq!(r.device_read_bps[0].rate, 1 << 20);
    assert_eq!(r.device_write_iops[0].rate, 120);
    let e = container_spec(&loaded, "bad", &one).unwrap_err();
    assert!(e.to_string().contains("blkio_config.weight"), "{e}");
}
