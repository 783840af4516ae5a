//! `alias docker=berth`: the same command lines given to the real docker
//! CLI (Debian's docker.io, against a dockerd this test starts with
//! `--bridge none --iptables=false` on its own socket and data root) and to
//! berth end with the same exit code and, where the words are berth's to
//! match, the same stderr (`docker` read as `berth`).

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

use common::*;

/// A dockerd of the test's own, stopped and removed on drop.
struct Dockerd {
    child: Child,
    dir: tempfile::TempDir,
}

impl Dockerd {
    fn start() -> Dockerd {
        assert!(have("dockerd"), "dockerd is not installed (apt-get install docker.io)");
        let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let dir = tempfile::Builder::new().prefix("dref-").tempdir_in(base).unwrap();
        let d = dir.path();
        let log = std::fs::File::create(d.join("dockerd.log")).unwrap();
        let child = Command::new("dockerd")
            .args([
                "--bridge",
                "none",
                "--iptables=false",
                "--ip6tables=false",
                "--storage-driver",
                "vfs",
            ])
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--pidfile")
            .arg(d.join("docker.pid"))
            .arg("-H")
            .arg(format!("unix://{}", d.join("docker.sock").display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let dd = Dockerd { child, dir };
        // Bounded wait for the socket to answer (not a timing assertion).
        for _ in 0..300 {
            if dd
                .docker(&["version", "--format", "{{.Server.Version}}"])
                .status
                .success()
            {
                return dd;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!(
            "dockerd did not come up: {}",
            std::fs::read_to_string(dd.dir.path().join("dockerd.log")).unwrap_or_default()
        );
    }

    fn docker(&self, args: &[&str]) -> Output {
        let d = self.dir.path();
        Command::new("docker")
            .arg("-H")
            .arg(format!("unix://{}", d.join("docker.sock").display()))
            .args(args)
            .env("DOCKER_CONFIG", d.join("config"))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let ids = stdout(&self.docker(&["ps", "-aq"]));
        for id in ids.lines() {
            let _ = self.docker(&["rm", "-f", id]);
        }
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_raw(self.child.id() as i32).unwrap(),
            rustix::process::Signal::TERM,
        );
        let _ = self.child.wait();
    }
}

/// berth as a script would run it: no pipe-session allowance.
fn berth(r: &Root, args: &[&str]) -> Output {
    r.cmd(args)
        .env_remove("BERTH_TTY_OVER_PIPE")
        .env("DOCKER_CONFIG", r.path().join("config"))
        .output()
        .unwrap()
}

/// The same command line for either CLI.
enum Cli<'a> {
    Docker(&'a Dockerd),
    Berth(&'a Root),
}

impl Cli<'_> {
    fn ok(&self, args: &[&str]) -> String {
        let o = match self {
            Cli::Docker(d) => d.docker(args),
            Cli::Berth(r) => berth(r, args),
        };
        assert!(
            o.status.success(),
            "{} {args:?}: {}",
            if matches!(self, Cli::Docker(_)) {
                "docker"
            } else {
                "berth"
            },
            stderr(&o)
        );
        stdout(&o)
    }
}

/// How much of stderr must match.
#[derive(Clone, Copy, Debug)]
enum Words {
    /// All of it.
    All,
    /// The first line (the usage line after it names flags as each CLI spells them).
    First,
    /// The last line (docker build's legacy-builder notice comes first).
    Last,
}

fn compare(dd: &Dockerd, r: &Root, args: &[&str], words: Words) {
    let d = dd.docker(args);
    let b = berth(r, args);
    let (de, be) = (stderr(&d).replace("docker", "berth"), stderr(&b));
    assert_eq!(
        b.status.code(),
        d.status.code(),
        "{args:?}: exit code\ndocker: {de}\nberth: {be}"
    );
    let pick = |s: &str| -> String {
        let s = s.trim_end();
        match words {
            Words::All => s.to_string(),
            Words::First => s.lines().next().unwrap_or("").to_string(),
            Words::Last => s.lines().last().unwrap_or("").to_string(),
        }
    };
    assert_eq!(pick(&be), pick(&de), "{args:?}: stderr");
}

/// Exit codes and words of failures, compared with Docker's: not-found
/// errors exit 1 (`run` 125), flag errors 125 in pflag's words, argument
/// counts and unknown commands 1 in cobra's, Docker's boolean syntax
/// accepted everywhere, and the messages the issue names.
#[test]
#[ignore = "needs root"]
fn failures_end_as_dockers_do() {
    need_root();
    let dd = Dockerd::start();
    let r = Root::new();
    r.busybox("busybox");
    let tar = r.path().join("bb-image.tar");
    r.ok(&["save", "-o", tar.to_str().unwrap(), "busybox"]);
    let o = dd.docker(&["load", "-i", tar.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));

    use Words::*;
    let cases: &[(&[&str], Words)] = &[
        // Not found: `Error response from daemon: No such container: X`, exit 1.
        (&["logs", "nosuch"], All),
        (&["exec", "nosuch", "true"], All),
        (&["top", "nosuch"], All),
        (&["port", "nosuch"], All),
        (&["stats", "--no-stream", "nosuch"], All),
        (&["cp", "nosuch:/a", "/tmp/x"], All),
        (&["save", "nosuch"], All),
        (&["rm", "nosuch"], All),
        (&["stop", "nosuch"], All),
        (&["wait", "nosuch"], All),
        (&["container", "inspect", "nosuch"], All),
        (&["inspect", "nosuch"], All),
        (&["history", "nosuch"], All),
        (&["tag", "nosuch", "x"], All),
        (&["rename", "nosuch", "b"], All),
        (&["start", "nosuch", "other"], All),
        (&["rmi", "nosuch"], All),
        (&["pause", "nosuch"], All),
        (&["kill", "nosuch"], All),
        (&["network", "inspect", "nosuch"], All),
        (&["network", "rm", "nosuch"], First),
        (&["network", "connect", "none", "nosuch"], All),
        (&["volume", "inspect", "nosuch", "nosuch2"], All),
        (&["volume", "rm", "nosuch"], All),
        (&["volume", "create", "--driver", "nosuch", "vx"], All),
        (&["container", "prune", "-f", "--filter", "bogus=1"], All),
        // -f: said, but no failure.
        (&["rm", "-f", "nosuch"], All),
        (&["rmi", "-f", "nosuch"], All),
        // Bad names, templates, contexts, terminals.
        (&["tag", "busybox", "UPPER"], All),
        (&["run", "UPPER"], All),
        (&["ps", "--format", "{{.Nope"], All),
        (&["inspect", "-f", "{{.Nope", "busybox"], All),
        (&["build", "/nonexistent"], Last),
        (&["load", "-i", "/nonexistent"], All),
        (&["import", "/nonexistent"], All),
        (&["login", "127.0.0.1:1"], All),
        (&["login", "-u", "x", "127.0.0.1:1"], All),
        (&["run", "-it", "busybox", "true"], All),
        // Flags: pflag's words, exit 125.
        (&["ps", "--bogus"], All),
        (&["ps", "-z"], All),
        (&["ps", "--all=maybe"], All),
        (&["stop", "-t", "x", "nosuch"], First),
        (&["ps", "--last=abc"], All),
        (&["run", "--cpu-shares", "abc", "busybox"], All),
        (&["ps", "--filter", "bogus=1"], All),
        (&["run", "--bogus", "busybox"], All),
        (&["create", "--bogus", "busybox"], All),
        (&["create", "-a", "bogus", "busybox"], All),
        (&["create", "--log-driver", "bogus", "busybox", "true"], All),
        (
            &[
                "create",
                "--log-driver",
                "none",
                "--log-opt",
                "max-size=1m",
                "busybox",
                "true",
            ],
            All,
        ),
        (
            &[
                "run",
                "--log-driver",
                "none",
                "--log-opt",
                "max-size=1m",
                "busybox",
                "true",
            ],
            All,
        ),
        (&["create", "--blkio-weight", "x", "busybox"], All),
        (&["create", "--blkio-weight-device", "/dev/sda:5", "busybox"], All),
        (&["create", "--blkio-weight-device", "sda:50", "busybox"], All),
        (&["create", "--device-read-bps", "/dev/sda:1zb", "busybox"], All),
        (&["create", "--device-write-iops", "/dev/sda:1mb", "busybox"], All),
        (&["create", "--device-cgroup-rule", "x 1:2 rwm", "busybox"], All),
        // Values Docker's daemon refuses (not its CLI): its answer, as such.
        (&["kill", "--signal", "BOGUS", "nosuch"], All),
        (&["run", "--stop-signal", "BOGUS", "busybox", "true"], All),
        (&["run", "-m", "1k", "busybox", "true"], All),
        (&["run", "--rm", "busybox"], All),
        (&["create", "busybox"], All),
        (&["create", "-m", "1k", "busybox", "true"], All),
        (
            &[
                "run",
                "--cpu-rt-period",
                "1000000",
                "--cpu-rt-runtime",
                "2000000",
                "busybox",
                "true",
            ],
            All,
        ),
        (&["create", "--cpu-rt-period", "abc", "busybox"], All),
        // Namespaces: the CLI's checks, then the daemon's.
        (&["run", "--rm", "--uts", "host", "-h", "x", "busybox", "true"], All),
        (&["run", "--rm", "--pid", "bogus", "busybox", "true"], All),
        (&["run", "--rm", "--uts", "bogus", "busybox", "true"], All),
        (&["run", "--rm", "--ipc", "bogus", "busybox", "true"], All),
        (&["run", "--rm", "--cgroupns", "bogus", "busybox", "true"], All),
        (&["run", "--rm", "--pid", "container:nosuch", "busybox", "true"], All),
        (&["run", "--rm", "--ipc", "container:nosuch", "busybox", "true"], All),
        // Windows' CPU flags; GPUs with no GPU driver.
        (&["run", "--rm", "--cpu-count", "2", "busybox", "true"], All),
        (&["create", "--cpu-percent", "50", "busybox", "true"], All),
        (&["run", "--rm", "--gpus", "all", "busybox", "true"], All),
        (&["exec", "--bogus", "x", "true"], All),
        (&["image", "ls", "--bogus"], First),
        (&["system", "df", "--bogus"], First),
        (&["container", "ls", "--bogus"], First),
        (&["version", "--bogus"], First),
        // Operands and commands: cobra's words, exit 1.
        (&["bogus"], All),
        (&["rm"], First),
        (&["run"], First),
        (&["logs"], First),
        (&["rename"], First),
        (&["port"], First),
        (&["ps", "x"], First),
        // Docker's boolean syntax.
        (&["ps", "--all=true"], All),
        (&["ps", "--all=false", "-q"], All),
        (&["ps", "-a=1", "--no-trunc=false"], All),
        (&["images", "-a=true", "-q"], All),
        (&["run", "--rm=true", "-d=false", "--tty=false", "busybox", "true"], All),
    ];
    for (args, words) in cases {
        compare(&dd, &r, args, *words);
    }

    // build's flag values, checked as the docker CLI checks them (its
    // legacy-builder notice aside): the flag's error, exit 125.
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("Dockerfile"), "FROM busybox\n").unwrap();
    let c = ctx.path().to_str().unwrap();
    for flag in [
        &["--add-host", "nocolon"][..],
        &["--add-host", "h:notanip"],
        &["--shm-size", "x"],
        &["--ulimit", "foo"],
        &["--ulimit", "nofile=a"],
        &["--ulimit", "nofile=2:1"],
    ] {
        let args = [&["build"][..], flag, &[c]].concat();
        let (d, b) = (dd.docker(&args), berth(&r, &args));
        assert_eq!(b.status.code(), d.status.code(), "{args:?}");
        let error = |e: &str| -> String {
            e.lines()
                .find(|l| l.starts_with("invalid argument"))
                .unwrap_or_default()
                .to_string()
        };
        assert!(!error(&stderr(&d)).is_empty(), "{args:?}: {}", stderr(&d));
        assert_eq!(error(&stderr(&b)), error(&stderr(&d)), "{args:?}");
    }

    // A container the runtime cannot start: its ID on stdout all the same
    // (run -d), the daemon's words, the exit code of a missing command.
    let d = dd.docker(&["run", "-d", "busybox", "nosuch"]);
    let b = berth(&r, &["run", "-d", "busybox", "nosuch"]);
    assert_eq!(b.status.code(), d.status.code(), "{}", stderr(&b));
    let prefix = |e: &str| -> String {
        e.replace("docker", "berth")
            .lines()
            .next()
            .unwrap_or_default()
            .split(": OCI runtime create failed: ")
            .next()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(prefix(&stderr(&b)), prefix(&stderr(&d)), "{}", stderr(&b));
    for (o, cli) in [(&d, Cli::Docker(&dd)), (&b, Cli::Berth(&r))] {
        let id = stdout(o).trim().to_string();
        assert_eq!(id.len(), 64, "{id:?}");
        cli.ok(&["rm", "-f", &id]);
    }

    // Pausing twice, unpausing twice: Docker's words (the ID read as ID).
    let did = stdout(&dd.docker(&["run", "-d", "busybox", "sleep", "60"]))
        .trim()
        .to_string();
    let bid = r.ok(&["run", "-d", "busybox", "sleep", "60"]).trim().to_string();
    // top: the host's `ps -ef` lines of the container, in Docker's table.
    for args in [&[][..], &["-o", "pid,args"]] {
        let dt = Cli::Docker(&dd).ok(&[&["top", &did][..], args].concat());
        let bt = Cli::Berth(&r).ok(&[&["top", &bid][..], args].concat());
        assert_eq!(bt.lines().next(), dt.lines().next(), "top {args:?}\n{dt}\n{bt}");
        assert!(bt.lines().nth(1).is_some_and(|l| l.ends_with("sleep 60")), "{bt}");
    }
    for step in [
        &["pause"][..],
        &["pause"],
        &["unpause"],
        &["unpause"],
        &["kill", "--signal", "BOGUS"],
        &["kill", "-s", "0"],
    ] {
        let d = dd.docker(&[step, &[did.as_str()][..]].concat());
        let b = berth(&r, &[step, &[bid.as_str()][..]].concat());
        assert_eq!(b.status.code(), d.status.code(), "{step:?}");
        assert_eq!(
            stderr(&b).replace(&bid, "ID"),
            stderr(&d).replace(&did, "ID"),
            "{step:?}"
        );
    }
    // A container that is not running: Docker's words (the ID read as ID).
    let dc = stdout(&dd.docker(&["create", "--name", "pc", "busybox", "sh"]))
        .trim()
        .to_string();
    let bc = r.ok(&["create", "--name", "pc", "busybox", "sh"]).trim().to_string();
    for cli in [Cli::Docker(&dd), Cli::Berth(&r)] {
        cli.ok(&["create", "--name", "pc2", "busybox", "sh"]);
    }
    for args in [
        &["exec", "pc", "true"][..],
        &["top", "pc"],
        &["port", "pc", "80"],
        &["port", "pc", "80/udp"],
        &["kill", "pc"],
        &["kill", "-s", "BOGUS", "pc"],
        // A name in use: Docker's conflict, naming the owner.
        &["create", "--name", "pc", "busybox", "true"],
        &["rename", "pc2", "pc"],
    ] {
        let d = dd.docker(args);
        let b = berth(&r, args);
        assert_eq!(b.status.code(), d.status.code(), "{args:?}");
        assert_eq!(stderr(&b).replace(&bc, "ID"), stderr(&d).replace(&dc, "ID"), "{args:?}");
    }
    // --log-driver none: the output is shown, nothing is kept for `logs`.
    for cli in [Cli::Docker(&dd), Cli::Berth(&r)] {
        assert_eq!(
            cli.ok(&["run", "--log-driver", "none", "--name", "ln", "busybox", "echo", "hi"]),
            "hi\n"
        );
        assert_eq!(
            cli.ok(&["inspect", "-f", "{{.HostConfig.LogConfig}}", "ln"]),
            "{none map[]}\n"
        );
    }
    compare(&dd, &r, &["logs", "ln"], All);
    let bid_ln = r.ok(&["inspect", "-f", "{{.Id}}", "ln"]).trim().to_string();
    assert!(!r.path().join("containers").join(&bid_ln).join("ctr.log").exists());
    for cli in [Cli::Docker(&dd), Cli::Berth(&r)] {
        cli.ok(&["rm", "ln"]);
    }
    Cli::Docker(&dd).ok(&["rm", "pc", "pc2"]);
    Cli::Berth(&r).ok(&["rm", "pc", "pc2"]);
    // `rm -f=true`, `run --rm=true`: values taken, output as Docker's.
    let b = berth(&r, &["rm", "-f=true", &bid]);
    assert!(b.status.success(), "{}", stderr(&b));
    let d = dd.docker(&["run", "--rm=true", "busybox", "echo", "hi"]);
    let b = berth(&r, &["run", "--rm=true", "busybox", "echo", "hi"]);
    assert_eq!((stdout(&b), b.status.code()), (stdout(&d), d.status.code()));
    assert_eq!(r.ok(&["ps", "-aq"]), "");
    Cli::Docker(&dd).ok(&["rm", "-f", &did]);

    // Filters: ps before/since/volume/network/label, images until,
    // container prune until/label — the same names listed by both.
    for cli in [Cli::Docker(&dd), Cli::Berth(&r)] {
        cli.ok(&["volume", "create", "fv"]);
        cli.ok(&["create", "--name", "f1", "-l", "keep=1", "busybox", "sh"]);
        cli.ok(&["create", "--name", "f2", "busybox", "sh"]);
        cli.ok(&[
            "create",
            "--name",
            "f3",
            "-v",
            "fv:/data",
            "--network",
            "none",
            "busybox",
            "sh",
        ]);
    }
    let names = |cli: &Cli, args: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = cli.ok(args).lines().map(str::to_string).collect();
        v.sort();
        v
    };
    for f in [
        "before=f3",
        "since=f1",
        "volume=fv",
        "volume=/data",
        "network=none",
        "label=keep",
        "label=keep=1",
        "name=f2",
        "status=created",
    ] {
        let args = ["ps", "-a", "--filter", f, "--format", "{{.Names}}"];
        let (d, b) = (names(&Cli::Docker(&dd), &args), names(&Cli::Berth(&r), &args));
        assert_eq!(b, d, "ps --filter {f}");
    }
    // (Debian's dockerd is 20.10, older than `images --filter until`: Docker
    // documents it as "created before the given timestamp or duration ago".)
    let args = ["images", "--filter", "until=2000-01-01", "--format", "{{.Repository}}"];
    assert!(names(&Cli::Berth(&r), &args).is_empty());
    let args = ["images", "--filter", "until=1s", "--format", "{{.Repository}}"];
    assert_eq!(names(&Cli::Berth(&r), &args), ["busybox"]);
    for cli in [Cli::Docker(&dd), Cli::Berth(&r)] {
        cli.ok(&["container", "prune", "-f", "--filter", "until=1h"]);
        cli.ok(&["container", "prune", "-f", "--filter", "label!=keep"]);
    }
    let args = ["ps", "-a", "--format", "{{.Names}}"];
    assert_eq!(names(&Cli::Berth(&r), &args), names(&Cli::Docker(&dd), &args));
    for cli in [Cli::Docker(&dd), Cli::Berth(&r)] {
        cli.ok(&["rm", "-f", "f1"]);
        cli.ok(&["volume", "rm", "fv"]);
    }
}

/// `--format` templates print what the docker CLI prints for the same
/// containers: method calls with arguments, `pad`, `split`, unknown fields
/// failing, nil slices and maps, pointers, and whole structs (`{{.State}}`,
/// fields the engine's JSON leaves out shown as Docker's zero values).
#[test]
#[ignore = "needs root"]
fn templates_render_as_dockers() {
    need_root();
    let dd = Dockerd::start();
    let r = Root::new();
    r.busybox("busybox");
    let tar = r.path().join("bb-image.tar");
    r.ok(&["save", "-o", tar.to_str().unwrap(), "busybox"]);
    let o = dd.docker(&["load", "-i", tar.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    for cli in [Cli::Docker(&dd), Cli::Berth(&r)] {
        cli.ok(&[
            "create",
            "--name",
            "tpl",
            "-l",
            "com.x=1",
            "-l",
            "com.y=two",
            "--restart",
            "on-failure:3",
            "-e",
            "A=1",
            "--entrypoint",
            "sh",
            "busybox",
            "-c",
            "sleep 1",
        ]);
    }
    let same = |args: &[&str]| {
        let d = dd.docker(args);
        let b = berth(&r, args);
        assert_eq!(
            (stdout(&b), stderr(&b), b.status.code()),
            (stdout(&d), stderr(&d), d.status.code()),
            "{args:?}"
        );
    };
    for t in [
        "{{.Names}} {{.Label \"com.y\"}} {{.Label \"nope\"}}|",
        "{{pad .Names 1 2}}|{{upper .Names}}|{{truncate .Names 2}}|{{title .State}}",
        "{{split .Labels \",\"}} {{len (split .Labels \",\")}} {{join (split .Labels \",\") \";\"}}",
        "{{.State}} {{.Status}} {{.Networks}} {{.Mounts}}| {{.Ports}}|",
        "{{json .Labels}} {{.Command}}",
        "{{.Nope}}",
        "{{.Label}}",
        "{{.Names \"x\"}}",
    ] {
        same(&["ps", "-a", "--format", t]);
    }
    for t in [
        "{{.State}}",
        "{{.State.Health}}",
        "{{json .State}}",
        "{{.Config.Cmd}} {{.Config.Entrypoint}} {{.Config.Shell}} {{.Config.OnBuild}}",
        "{{.Config.Labels}} {{.Config.Volumes}} {{.Config.ExposedPorts}} {{.Config.Healthcheck}}",
        "{{.Config.StopSignal}}|{{.SizeRw}}|{{.Args}}|{{.Mounts}}",
        "{{.HostConfig.RestartPolicy}} {{.HostConfig.LogConfig}} {{.HostConfig.ConsoleSize}}",
        "{{.HostConfig.Binds}} {{.HostConfig.Dns}} {{.HostConfig.CapAdd}} {{.HostConfig.Links}}",
        "{{.HostConfig.Sysctls}} {{.HostConfig.StorageOpt}} {{.HostConfig.DeviceCgroupRules}}",
        "{{.HostConfig.CgroupParent}}|{{.HostConfig.BlkioWeight}} {{.HostConfig.BlkioDeviceReadBps}}",
        "{{.HostConfig.CpuRealtimePeriod}} {{.HostConfig.MemorySwappiness}} {{.HostConfig.PidsLimit}}",
        "{{index .Config.Labels \"com.x\"}} {{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}",
        "{{.Nope}}",
        "{{.State.Nope}}",
        "{{.Config.Labels.nope}}|",
    ] {
        same(&["inspect", "--format", t, "tpl"]);
    }
    for cli in [Cli::Docker(&dd), Cli::Berth(&r)] {
        cli.ok(&["rm", "tpl"]);
    }

    // Healthcheck durations as Go prints them, Mounts without `--tmpfs`
    // (HostConfig.Tmpfs has them), bind propagation and `--mount` options.
    let src = tempfile::tempdir().unwrap();
    let src = src.path().to_str().unwrap();
    for cli in [Cli::Docker(&dd), Cli::Berth(&r)] {
        cli.ok(&[
            "create",
            "--name",
            "mnt",
            "--health-cmd",
            "true",
            "--health-interval",
            "90s",
            "--health-timeout",
            "1500ms",
            "--health-start-period",
            "1m",
            "--tmpfs",
            "/run:size=64k,mode=1770",
            "--tmpfs",
            "/t2",
            "-v",
            &format!("{src}:/b1:ro,rslave"),
            "-v",
            &format!("{src}:/b3"),
            "--mount",
            &format!("type=bind,src={src},dst=/b2,bind-propagation=shared,ro"),
            "--mount",
            "type=tmpfs,dst=/t3,tmpfs-size=1m,tmpfs-mode=1770",
            "busybox",
            "true",
        ]);
    }
    for t in [
        "{{.Config.Healthcheck}}",
        "{{.Config.Healthcheck.Interval}} {{.Config.Healthcheck.Timeout}} {{json .Config.Healthcheck}}",
        "{{printf \"%d %v %s\" .Config.Healthcheck.StartPeriod .Config.Healthcheck.StartPeriod .Config.Healthcheck.StartPeriod}}",
        "{{len .Mounts}} {{json .HostConfig.Tmpfs}} {{json .HostConfig.Mounts}}",
        "{{range .Mounts}}{{if eq .Destination \"/b1\"}}{{.Mode}} {{.Propagation}} {{.RW}}{{end}}{{end}}",
        "{{range .Mounts}}{{if eq .Destination \"/b2\"}}{{.Mode}} {{.Propagation}} {{.RW}}{{end}}{{end}}",
        "{{range .Mounts}}{{if eq .Destination \"/b3\"}}{{.Mode}} {{.Propagation}} {{.RW}}{{end}}{{end}}",
        "{{range .Mounts}}{{if eq .Type \"tmpfs\"}}{{.Destination}} {{.Mode}} {{.RW}}{{end}}{{end}}",
        // Unset pointers are nil, as Docker leaves them out.
        "{{.HostConfig.Init}} {{.Config.StopTimeout}} {{.Config.StopSignal}}| {{.Config.ExposedPorts}}",
        "{{.Config.AttachStdin}} {{.Config.AttachStdout}} {{.Config.AttachStderr}}",
    ] {
        same(&["inspect", "--format", t, "mnt"]);
    }
    // run -d attaches no stream.
    for cli in [Cli::Docker(&dd), Cli::Berth(&r)] {
        cli.ok(&["run", "-d", "-i", "--name", "det", "busybox", "true"]);
    }
    same(&[
        "inspect",
        "--format",
        "{{.Config.AttachStdin}} {{.Config.AttachStdout}} {{.Config.AttachStderr}} {{.Config.OpenStdin}}",
        "det",
    ]);
    for cli in [Cli::Docker(&dd), Cli::Berth(&r)] {
        cli.ok(&["rm", "-f", "mnt", "det"]);
    }
}

/// The docker CLI's global flags: `-v`, `-D`, `-l`, `--config`, and `-H`
/// and `-c` where they mean this machine; refused, saying why, otherwise.
#[test]
fn global_flags_are_taken() {
    let r = Root::new();
    let o = berth(&r, &["-v"]);
    assert!(o.status.success());
    assert!(stdout(&o).starts_with("berth version "), "{}", stdout(&o));
    assert!(stdout(&o).contains(", build "), "{}", stdout(&o));
    for args in [
        &["-D", "ps"][..],
        &["-l", "error", "ps"],
        &["--log-level=info", "ps"],
        &["-H", "unix:///var/run/docker.sock", "ps"],
        &["--host=unix:///run/berth.sock", "ps"],
        &["-c", "default", "ps"],
        &["--context", "default", "ps"],
        &["--config", "/nonexistent-dir", "ps"],
    ] {
        let o = berth(&r, args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert!(stdout(&o).starts_with("CONTAINER ID"), "{args:?}");
    }
    let o = berth(&r, &["-H", "tcp://127.0.0.1:2375", "ps"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("berth has no daemon"), "{}", stderr(&o));
    let o = berth(&r, &["-c", "remote", "ps"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("context \"remote\": context not found"),
        "{}",
        stderr(&o)
    );
    // Help and version are not errors.
    assert!(berth(&r, &["ps", "--help"]).status.success());
    assert_eq!(berth(&r, &[]).status.code(), Some(0));
}

/// The long flags a `--help` lists.
fn flags_in_help(help: &str) -> std::collections::BTreeSet<String> {
    help.lines()
        .filter_map(|l| {
            let t = l.trim_start();
            let t = t
                .strip_prefix('-')
                .filter(|_| t.len() > 3 && &t[2..4] == ", ")
                .map_or(t, |_| &t[4..]);
            let name = t.strip_prefix("--")?;
            let end = name
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .unwrap_or(name.len());
            Some(name[..end].to_string())
        })
        .collect()
}

/// Every flag `docker CMD --help` lists for run, create, build, ps, images
/// and exec is in `berth CMD --help` (and parsed), but for the ones listed
/// here, each with why.
#[test]
fn help_lists_dockers_flags() {
    assert!(
        have("docker"),
        "the docker client is not installed (apt-get install docker.io)"
    );
    // Deliberately not (yet) taken, per command.
    let not_taken: &[(&str, &[&str])] = &[
        // `--runtime` is berth's global flag (before or after the command).
        ("run", &["runtime"]),
        ("create", &["runtime"]),
        ("build", &[]),
        ("ps", &[]),
        // `images --tree` is an experimental view of Docker 28.
        ("images", &["tree"]),
        ("exec", &[]),
        // Checkpoints (CRIU) are not berth's.
        ("start", &["checkpoint", "checkpoint-dir"]),
        ("rmi", &[]),
        ("save", &[]),
        ("load", &[]),
        ("history", &[]),
        ("push", &[]),
        ("pull", &[]),
        ("logs", &[]),
        ("stop", &[]),
        ("rm", &[]),
        ("kill", &[]),
        ("cp", &[]),
        ("commit", &[]),
        ("stats", &[]),
        ("update", &[]),
        ("attach", &[]),
        ("inspect", &[]),
        ("login", &[]),
        ("system df", &[]),
        ("system prune", &[]),
        ("container prune", &[]),
        ("image prune", &[]),
        ("builder prune", &[]),
        // Swarm and CSI cluster volumes are not berth's.
        ("volume ls", &["cluster"]),
        (
            "volume create",
            &[
                "availability",
                "group",
                "limit-bytes",
                "required-bytes",
                "scope",
                "secret",
                "sharing",
                "topology-preferred",
                "topology-required",
                "type",
            ],
        ),
    ];
    // Usage lines as the docker CLI writes them, but where berth takes more
    // (push's DESTINATION, logout's and network rm's flags) or Docker's line
    // leaves its flags out (builder prune).
    let own_usage = ["push", "logout", "network rm", "builder prune", "build"];
    let usage = |out: &str| -> String {
        out.lines()
            .find_map(|l| l.strip_prefix("Usage:"))
            .unwrap_or("")
            .trim()
            .replacen("berth ", "docker ", 1)
    };
    let r = Root::new();
    for (cmd, skip) in not_taken {
        let words: Vec<&str> = cmd.split(' ').collect();
        let d = Command::new("docker").args(&words).arg("--help").output().unwrap();
        if !own_usage.contains(cmd) {
            let b = berth(&r, &[&words[..], &["--help"]].concat());
            assert_eq!(usage(&stdout(&b)), usage(&stdout(&d)), "{cmd}: usage line");
        }
        let mut docker = flags_in_help(&stdout(&d));
        assert!(!docker.is_empty(), "{cmd}: no flags read from docker's help");
        if *cmd == "build" {
            // Debian's docker.io has no buildx: BuildKit's `docker build`
            // flags (docker buildx build --help of 0.2x), as the issue lists them.
            for f in [
                "output",
                "load",
                "build-context",
                "metadata-file",
                "no-cache-filter",
                "allow",
                "call",
                "annotation",
                "add-host",
                "shm-size",
                "ulimit",
                "rm",
                "force-rm",
                "progress",
                "secret",
                "ssh",
                "platform",
                "cache-from",
                "cache-to",
                "push",
                "iidfile",
            ] {
                docker.insert(f.to_string());
            }
        }
        let berth_help = stdout(&berth(&r, &[&words[..], &["--help"]].concat()));
        let ours = flags_in_help(&berth_help);
        let missing: Vec<_> = docker
            .iter()
            .filter(|f| !ours.contains(*f) && !skip.contains(&f.as_str()))
            .collect();
        assert!(missing.is_empty(), "berth {cmd} lacks {missing:?}");
    }
    // Taken by the parser, too: a flag berth cannot honour is refused, in
    // Docker's words where Docker refuses it too (a GPU with no GPU
    // driver), never dropped; one that asks for berth's own behaviour is fine.
    let o = berth(&r, &["run", "--gpus", "all", "nosuch"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("could not select device driver"), "{}", stderr(&o));
    let ctx = r.path().to_str().unwrap();
    let o = berth(&r, &["build", "--memory", "1g", ctx]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--memory is not supported"), "{}", stderr(&o));
    let o = berth(&r, &["build", "--rm", "--force-rm", "--load", "/nonexistent"]);
    assert!(stderr(&o).contains("unable to prepare context"), "{}", stderr(&o));
}

/// A block device of this machine (`/dev/vda`, `/dev/loop0`, …) and its
/// `MAJOR:MINOR`.
fn block_device() -> (String, String) {
    let mut names: Vec<String> = std::fs::read_dir("/sys/block")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for n in names {
        let dev = format!("/dev/{n}");
        let number = std::fs::read_to_string(format!("/sys/block/{n}/dev")).unwrap_or_default();
        if std::path::Path::new(&dev).exists() && !number.trim().is_empty() {
            return (dev, number.trim().to_string());
        }
    }
    panic!("this machine has no block device under /sys/block");
}

/// `--device-read-bps`, `--device-write-iops`, `--blkio-weight-device` and
/// `--device-cgroup-rule` reach the container's cgroup (the host's cgroup
/// files, and a device node the rule lets the container open), and
/// `inspect` shows them as Docker's HostConfig does.
#[test]
#[ignore = "needs root"]
fn block_io_and_device_rules_reach_the_cgroup() {
    let env = Env::new();
    let r = &env.root;
    let (dev, number) = block_device();
    let id = r
        .ok(&[
            "run",
            "-d",
            "--device-read-bps",
            &format!("{dev}:1mb"),
            "--device-write-iops",
            &format!("{dev}:77"),
            "--device-cgroup-rule",
            "c 42:* rmw",
            "bb",
            "sleep",
            "60",
        ])
        .trim()
        .to_string();
    let cg = |v1: &str, v2: &str| -> String {
        let p = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            format!("/sys/fs/cgroup/berth/{id}/{v2}")
        } else {
            format!("/sys/fs/cgroup/blkio/berth/{id}/{v1}")
        };
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
    };
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        let io = cg("", "io.max");
        assert!(io.contains(&format!("{number} rbps=1048576")), "{io}");
        assert!(io.contains("wiops=77"), "{io}");
    } else {
        assert_eq!(cg("blkio.throttle.read_bps_device", ""), format!("{number} 1048576\n"));
        assert_eq!(cg("blkio.throttle.write_iops_device", ""), format!("{number} 77\n"));
    }
    // The rule lets the container open a char device 42:x (no driver: ENXIO);
    // without it the cgroup refuses (EPERM).
    let open = "mknod /tmp/d c 42 0 && cat /tmp/d";
    let o = r.run(&["exec", &id, "sh", "-c", open]);
    assert!(stderr(&o).contains("No such device or address"), "{}", stderr(&o));
    let o = r.run(&["run", "--rm", "bb", "sh", "-c", open]);
    assert!(stderr(&o).contains("Operation not permitted"), "{}", stderr(&o));
    assert_eq!(
        r.ok(&[
            "inspect",
            "-f",
            "{{json .HostConfig.BlkioDeviceReadBps}} {{range .HostConfig.BlkioDeviceWriteIOps}}{{.Path}}={{.Rate}}{{end}} {{.HostConfig.DeviceCgroupRules}}",
            &id
        ]),
        format!("[{{\"Path\":\"{dev}\",\"Rate\":1048576}}] {dev}=77 [c 42:* rmw]\n")
    );
    // A device weight: applied where the host's blkio controller has
    // weights, discarded with Docker's warning where it has none.
    let weights = std::path::Path::new("/sys/fs/cgroup/blkio/blkio.weight").exists()
        || std::path::Path::new("/sys/fs/cgroup/blkio/blkio.bfq.weight").exists()
        || std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers").is_ok_and(|c| c.contains("io"));
    let o = berth(r, &["create", "--blkio-weight", "300", "bb", "true"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let wid = stdout(&o).trim().to_string();
    let shown = r.ok(&["inspect", "-f", "{{.HostConfig.BlkioWeight}}", &wid]);
    if weights {
        assert_eq!(shown, "300\n");
    } else {
        assert_eq!(
            stderr(&o),
            "WARNING: Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.\n"
        );
        assert_eq!(shown, "0\n");
    }
    // --storage-opt: berth's overlay store has no quotas: Docker's overlay2
    // words without xfs project quotas.
    let o = berth(r, &["create", "--storage-opt", "size=1G", "bb", "true"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "Error response from daemon: --storage-opt is supported only for overlay over xfs with 'pquota' mount option\n"
    );
    // A path that is not a block device is refused by the engine.
    let o = berth(r, &["create", "--device-read-bps", "/dev/null:1mb", "bb", "true"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("/dev/null is not a block device"), "{}", stderr(&o));
}

/// The cgroups of a container's process, from `/proc/PID/cgroup`: (controllers, path).
fn proc_cgroups(r: &Root, id: &str) -> Vec<(String, String)> {
    let pid = r.ok(&["inspect", "-f", "{{.State.Pid}}", id]).trim().to_string();
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let mut p = l.splitn(3, ':');
            let (_, ctrls, path) = (p.next()?, p.next()?, p.next()?);
            Some((ctrls.to_string(), path.to_string()))
        })
        .collect()
}

/// A cgroup parent a test uses, removed from every hierarchy on drop
/// (once its containers are gone), whatever the test's end.
struct CgroupParent(String);

impl Drop for CgroupParent {
    fn drop(&mut self) {
        for e in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
            let _ = std::fs::remove_dir(e.path().join(&self.0));
        }
        let _ = std::fs::remove_dir(std::path::Path::new("/sys/fs/cgroup").join(&self.0));
    }
}

/// `docker run --cgroup-parent /P` puts the container's cgroup at
/// `/P/<id>` in every v1 controller (and the cgroup2 tree when the runtime
/// uses it: runc on this hybrid host, as Docker's), a relative parent
/// under the root; `inspect` shows it and `stats` still reads the
/// container's counters. `--cpu-rt-period` reaches `cpu.rt_period_us`;
/// `--cpu-rt-runtime` the kernel refuses under a parent with no real-time
/// budget, as it refuses Docker's (exit 125, the file named).
#[test]
#[ignore = "needs root"]
fn cgroup_parent_and_realtime_reach_the_cgroup() {
    let parent = format!("berth-cgp-{}", std::process::id());
    let rel = format!("{parent}-rel");
    // Dropped after `env` (which removes the containers first).
    let _parents = (CgroupParent(parent.clone()), CgroupParent(rel.clone()));
    let env = Env::new();
    let r = &env.root;
    let id = r
        .ok(&[
            "run",
            "-d",
            "--cgroup-parent",
            &format!("/{parent}"),
            "bb",
            "sleep",
            "60",
        ])
        .trim()
        .to_string();
    let want = format!("/{parent}/{id}");
    let cgroups = proc_cgroups(r, &id);
    let v1: Vec<_> = cgroups.iter().filter(|(c, _)| !c.is_empty()).collect();
    for (ctrl, path) in &v1 {
        assert_eq!(path, &want, "{ctrl}");
    }
    if v1.is_empty() {
        assert_eq!(cgroups[0].1, want);
    }
    assert_eq!(
        r.ok(&["inspect", "-f", "{{.HostConfig.CgroupParent}}", &id]),
        format!("/{parent}\n")
    );
    let o = berth(r, &["stats", "--no-stream", "--format", "{{.PIDs}}", &id]);
    assert_eq!(
        (o.status.code(), stdout(&o)),
        (Some(0), "1\n".to_string()),
        "{}",
        stderr(&o)
    );
    r.ok(&["rm", "-f", &id]);

    // runc, a relative parent: the cgroup2 tree of a hybrid host too.
    let id = r
        .ok(&[
            "--runtime",
            "runc",
            "run",
            "-d",
            "--cgroup-parent",
            &rel,
            "bb",
            "sleep",
            "60",
        ])
        .trim()
        .to_string();
    let want = format!("/{rel}/{id}");
    for (ctrl, path) in proc_cgroups(r, &id) {
        if ctrl.starts_with("name=") {
            continue;
        }
        assert_eq!(path, want, "{ctrl:?}");
    }
    r.ok(&["rm", "-f", &id]);

    if std::path::Path::new("/sys/fs/cgroup/cpu/cpu.rt_runtime_us").exists() {
        let id = r
            .ok(&["run", "-d", "--cpu-rt-period", "500000", "bb", "sleep", "60"])
            .trim()
            .to_string();
        assert_eq!(
            std::fs::read_to_string(format!("/sys/fs/cgroup/cpu/berth/{id}/cpu.rt_period_us")).unwrap(),
            "500000\n"
        );
        assert_eq!(
            r.ok(&[
                "inspect",
                "-f",
                "{{.HostConfig.CpuRealtimePeriod}} {{.HostConfig.CpuRealtimeRuntime}}",
                &id
            ]),
            "500000 0\n"
        );
        // update: the running container's cgroup and inspect follow.
        assert_eq!(r.ok(&["update", "--cpu-rt-period", "400000", &id]), format!("{id}\n"));
        assert_eq!(
            std::fs::read_to_string(format!("/sys/fs/cgroup/cpu/berth/{id}/cpu.rt_period_us")).unwrap(),
            "400000\n"
        );
        assert_eq!(
            r.ok(&["inspect", "-f", "{{.HostConfig.CpuRealtimePeriod}}", &id]),
            "400000\n"
        );
        r.ok(&["rm", "-f", &id]);
        // Docker here: `docker: Error response from daemon: failed to create
        // shim task: OCI runtime create failed: runc create failed: … failed
        // to write "1000": write …/cpu.rt_runtime_us: invalid argument:
        // unknown`, a blank line, the help line, exit 125 (the runtime's
        // own words in the middle).
        let o = berth(r, &["run", "--rm", "--cpu-rt-runtime", "1000", "bb", "true"]);
        assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
        let e = stderr(&o);
        let first = e.lines().next().unwrap_or_default();
        assert!(
            first.starts_with(
                "berth: Error response from daemon: failed to create shim task: OCI runtime create failed: "
            ) && first.contains("cpu.rt_runtime_us")
                && first.ends_with(": unknown"),
            "{e}"
        );
        assert!(e.ends_with("\n\nRun 'berth run --help' for more information\n"), "{e}");
    }
}

/// `update`: new limits reach a running container at once, and `inspect`
/// and the restart policy follow; what berth cannot change is refused by name.
#[test]
#[ignore = "needs root"]
fn update_changes_a_running_container() {
    let env = Env::new();
    let r = &env.root;
    r.ok(&["run", "-d", "--name", "up", "-m", "64m", "bb", "sleep", "60"]);
    assert_eq!(
        r.ok(&[
            "update",
            "-m",
            "96m",
            "--cpus",
            "1",
            "--pids-limit",
            "50",
            "--restart",
            "on-failure:3",
            "up"
        ]),
        "up\n"
    );
    let limit = r.ok(&[
        "exec",
        "up",
        "sh",
        "-c",
        "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null; true",
    ]);
    assert_eq!(limit.trim(), "100663296");
    assert_eq!(
        r.ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}",
            "up"
        ])
        .trim(),
        "100663296 1000000000 50 on-failure:3"
    );
    // Docker's words for no flags, a missing container, and what is not taken.
    let o = berth(r, &["update", "up"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o).trim(),
        "you must provide one or more flags when using this command"
    );
    let o = berth(r, &["update", "-m", "96m", "nosuch"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o).trim(),
        "Error response from daemon: No such container: nosuch"
    );
    // --blkio-weight: set where the host's blkio controller has weights,
    // else discarded with Docker's warning after the name, both on stdout.
    let weights = std::path::Path::new("/sys/fs/cgroup/blkio/blkio.weight").exists()
        || std::path::Path::new("/sys/fs/cgroup/blkio/blkio.bfq.weight").exists()
        || std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers").is_ok_and(|c| c.contains("io"));
    let o = berth(r, &["update", "--blkio-weight", "300", "up"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let shown = r.ok(&["inspect", "-f", "{{.HostConfig.BlkioWeight}}", "up"]);
    if weights {
        assert_eq!(stdout(&o), "up\n");
        assert_eq!(shown, "300\n");
    } else {
        assert_eq!(
            stdout(&o),
            "up\nYour kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.\n"
        );
        assert_eq!(shown, "0\n");
    }
}

/// `--volumes-from`: the other container's volumes and binds at the same
/// paths (tmpfs not), its modes or `:ro`, the container's own mounts
/// first; `inspect` and a missing container as Docker's.
#[test]
#[ignore = "needs root"]
fn volumes_from_mounts_as_dockers() {
    need_root();
    let dd = Dockerd::start();
    let r = Root::new();
    r.busybox("busybox");
    let tar = r.path().join("bb-image.tar");
    r.ok(&["save", "-o", tar.to_str().unwrap(), "busybox"]);
    let o = dd.docker(&["load", "-i", tar.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let host = tempfile::tempdir().unwrap();
    let bind = format!("{}:/h:ro", host.path().display());
    let script = "touch /data/x && echo vol-rw; touch /h/y 2>/dev/null || echo bind-ro; ls -d /t 2>&1";
    for cli in [Cli::Docker(&dd), Cli::Berth(&r)] {
        cli.ok(&[
            "create",
            "--name",
            "vsrc",
            "-v",
            "vfv:/data",
            "-v",
            &bind,
            "--tmpfs",
            "/t",
            "busybox",
            "true",
        ]);
        cli.ok(&["create", "--name", "vdst", "--volumes-from", "vsrc", "busybox", "true"]);
    }
    let same = |args: &[&str]| {
        let (d, b) = (dd.docker(args), berth(&r, args));
        assert_eq!(
            (stdout(&b), b.status.code()),
            (stdout(&d), d.status.code()),
            "{args:?}\n{}",
            stderr(&b)
        );
    };
    same(&["run", "--rm", "--volumes-from", "vsrc", "busybox", "sh", "-c", script]);
    same(&[
        "run",
        "--rm",
        "--volumes-from",
        "vsrc:ro",
        "busybox",
        "sh",
        "-c",
        "touch /data/z 2>/dev/null || echo vol-ro",
    ]);
    same(&[
        "run",
        "--rm",
        "-v",
        "/tmp:/data",
        "--volumes-from",
        "vsrc",
        "busybox",
        "sh",
        "-c",
        "ls /data/x 2>&1",
    ]);
    same(&["inspect", "-f", "{{.HostConfig.VolumesFrom}} {{len .Mounts}}", "vdst"]);
    // (Docker lists Mounts in no fixed order.)
    let mounts = |o: Output| -> Vec<String> {
        let mut v: Vec<String> = stdout(&o).split_whitespace().map(str::to_string).collect();
        v.sort();
        v
    };
    let f = [
        "inspect",
        "-f",
        "{{range .Mounts}}{{.Destination}}:{{.RW}} {{end}}",
        "vdst",
    ];
    assert_eq!(mounts(berth(&r, &f)), mounts(dd.docker(&f)));
    compare(
        &dd,
        &r,
        &["run", "--rm", "--volumes-from", "nosuch", "busybox", "true"],
        Words::All,
    );
    for cli in [Cli::Docker(&dd), Cli::Berth(&r)] {
        cli.ok(&["rm", "-v", "vdst", "vsrc"]);
        cli.ok(&["volume", "rm", "vfv"]);
    }
}

/// ps `--filter publish=` and `expose=` match ports as Docker's daemon
/// does (moby's list filter, and dockerd 20.10 on a user network, checked
/// by hand): `publish=` the host side of a published port, `expose=` the
/// container's side of a published or exposed one, each with an optional
/// protocol or range. (The test's dockerd has no bridge, so this one is
/// berth's alone.)
#[test]
#[ignore = "needs root"]
fn ps_filters_published_and_exposed_ports() {
    let env = Env::new();
    let r = &env.root;
    r.ok(&[
        "run",
        "-d",
        "--name",
        "pub",
        "-p",
        "127.0.0.1:18093:80",
        "bb",
        "sleep",
        "60",
    ]);
    r.ok(&["run", "-d", "--name", "plain", "bb", "sleep", "60"]);
    for (f, want) in [
        ("publish=18093", "pub\n"),
        ("publish=18093/tcp", "pub\n"),
        ("publish=18090-18095", "pub\n"),
        ("publish=18093/udp", ""),
        ("publish=80", ""),
        ("expose=80", "pub\n"),
        ("expose=80/tcp", "pub\n"),
        ("expose=81/tcp", ""),
    ] {
        assert_eq!(r.ok(&["ps", "--filter", f, "--format", "{{.Names}}"]), want, "{f}");
    }
}

/// `build -o type=local,dest=DIR`, `-o type=tar,dest=FILE` and `-o -`:
/// the built image's files, as BuildKit's exporters write them; the build
/// lines go to stderr when the tar is on stdout; no container is left.
#[test]
#[ignore = "needs root"]
fn build_outputs_files_and_tars() {
    let env = Env::new();
    let r = &env.root;
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("Dockerfile"), "FROM bb\nRUN echo built > /f\n").unwrap();
    let c = ctx.path().to_str().unwrap();
    let dir = ctx.path().join("out");
    r.ok(&["build", "-q", "-o", &format!("type=local,dest={}", dir.display()), c]);
    assert_eq!(std::fs::read_to_string(dir.join("f")).unwrap(), "built\n");
    assert!(dir.join("bin/busybox").exists());
    let tar = ctx.path().join("o.tar");
    r.ok(&[
        "build",
        "-q",
        "--output",
        &format!("type=tar,dest={}", tar.display()),
        c,
    ]);
    let names = |bytes: &[u8]| -> Vec<String> {
        tar::Archive::new(bytes)
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect()
    };
    assert!(names(&std::fs::read(&tar).unwrap()).contains(&"f".to_string()));
    let o = berth(r, &["build", "-o", "-", c]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(names(&o.stdout).contains(&"f".to_string()));
    assert!(stderr(&o).contains("Successfully built"), "{}", stderr(&o));
    assert_eq!(r.ok(&["ps", "-aq"]), "");
}

/// `build -` reads a Dockerfile (or a context archive) from stdin, and
/// `build -f - DIR` the Dockerfile alone, as Docker's.
#[test]
#[ignore = "needs root"]
fn build_reads_the_dockerfile_from_stdin() {
    use std::io::Write;
    let env = Env::new();
    let r = &env.root;
    let build = |args: &[&str], input: &[u8]| -> Output {
        let mut c = r
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(input).unwrap();
        c.wait_with_output().unwrap()
    };
    let o = build(&["build", "-q", "-t", "one", "-"], b"FROM bb\nLABEL from=stdin\n");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        r.ok(&["inspect", "-f", "{{.Config.Labels.from}}", "one"]).trim(),
        "stdin"
    );
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("f"), "data\n").unwrap();
    let dir = ctx.path().to_str().unwrap();
    let o = build(&["build", "-q", "-t", "two", "-f", "-", dir], b"FROM bb\nCOPY f /f\n");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(r.ok(&["run", "--rm", "two", "cat", "/f"]), "data\n");
    // Its errors name it `Dockerfile`, as BuildKit does.
    let o = build(&["build", "-q", "-f", "-", dir], b"FROM bb\nBOGUS x\n");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("Dockerfile:2:1: unknown instruction \"BOGUS\""),
        "{}",
        stderr(&o)
    );
    let o = build(&["build", "-f", "-", "-"], b"");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("can't use stdin for both build context and dockerfile"),
        "{}",
        stderr(&o)
    );
}

/// `docker build` flags for RUN steps and contexts, as a Docker user
/// writes them: `--add-host`, `--shm-size` and `--ulimit` reach every RUN
/// (`/etc/hosts`, the size of `/dev/shm`, `ulimit -n`);
/// `--build-context NAME=DIR` is what `COPY --from=NAME` copies from (and
/// `FROM NAME` the whole root of) and `NAME=docker-image://REF` what `FROM
/// NAME` builds on;
/// `--no-cache-filter a` rebuilds stage a while stage b hits the cache;
/// `--annotation` lands in the image's manifest (`save` writes it);
/// `build -q` prints the ID and a newline; `--metadata-file` names the
/// image's config digest.
#[test]
#[ignore = "needs root"]
fn build_flags_reach_the_steps_and_the_image() {
    let env = Env::new();
    let r = &env.root;
    let ctx = tempfile::tempdir().unwrap();
    let c = ctx.path().to_str().unwrap();
    let other = ctx.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("f"), "from the named context\n").unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM base\nCOPY --from=files /f /f\nRUN cat /f; grep myhost /etc/hosts; \
         df -k /dev/shm | tail -1 | awk '{print $2}'; ulimit -Sn; ulimit -Hn\n",
    )
    .unwrap();
    // docker build --progress=plain --build-context base=docker-image://bb \
    //   --build-context files=./other --add-host myhost:10.1.2.3 \
    //   --shm-size 32m --ulimit nofile=512:1024 .
    let out = r.ok(&[
        "build",
        "--progress=plain",
        "--build-context",
        "base=docker-image://bb",
        "--build-context",
        &format!("files={}", other.display()),
        "--add-host",
        "myhost:10.1.2.3",
        "--shm-size",
        "32m",
        "--ulimit",
        "nofile=512:1024",
        c,
    ]);
    let run_output: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.contains("Running in"))
        .skip(1)
        .take(5)
        .collect();
    assert_eq!(
        run_output,
        ["from the named context", "10.1.2.3\tmyhost", "32768", "512", "1024"],
        "{out}"
    );

    // FROM a directory context: its files are the whole root.
    let rootfs = ctx.path().join("rootfs");
    std::fs::create_dir(&rootfs).unwrap();
    let st = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-xf")
        .arg(busybox_tar())
        .status()
        .unwrap();
    assert!(st.success());
    let ctx3 = tempfile::tempdir().unwrap();
    std::fs::write(ctx3.path().join("Dockerfile"), "FROM root\nRUN echo made > /made\n").unwrap();
    r.ok(&[
        "build",
        "-q",
        "-t",
        "fromdir",
        "--build-context",
        &format!("root={}", rootfs.display()),
        ctx3.path().to_str().unwrap(),
    ]);
    assert_eq!(r.ok(&["run", "--rm", "fromdir", "cat", "/made"]), "made\n");

    // --no-cache-filter: stage a runs again, stage b is a cache hit.
    let ctx2 = tempfile::tempdir().unwrap();
    let c2 = ctx2.path().to_str().unwrap();
    std::fs::write(
        ctx2.path().join("Dockerfile"),
        "FROM bb AS a\nRUN echo a > /a\nFROM bb AS b\nRUN echo b > /b\nFROM bb\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n",
    )
    .unwrap();
    r.ok(&["build", "-q", c2]);
    let out = r.ok(&["build", "--progress=plain", "--no-cache-filter", "a", c2]);
    // The stages build side by side: the line after a step in its own stage's lines.
    let after = |stage: &str, step: &str| -> String {
        let mut it = out
            .lines()
            .filter(|l| l.starts_with(&format!("[{stage}] ")))
            .skip_while(|l| !l.ends_with(step));
        it.next();
        it.next().unwrap_or_default().to_string()
    };
    assert!(after("a", "RUN echo a > /a").contains("Running in"), "{out}");
    assert!(after("b", "RUN echo b > /b").contains("Using cache"), "{out}");

    // -q: the image ID and a newline, nothing else (as `docker build -q`).
    let meta = ctx.path().join("meta.json");
    let o = berth(
        r,
        &[
            "build",
            "-q",
            "-t",
            "annotated",
            "--annotation",
            "org.example.key=v1",
            "--metadata-file",
            meta.to_str().unwrap(),
            c2,
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let id = stdout(&o);
    assert!(
        id.starts_with("sha256:") && id.len() == 72 && id.ends_with('\n'),
        "{id:?}"
    );
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    assert_eq!(m["containerimage.config.digest"], id.trim());
    // docker save annotated | tar -xO index.json → the manifest → its annotations.
    let saved = r.path().join("annotated.tar");
    r.ok(&["save", "-o", saved.to_str().unwrap(), "annotated"]);
    let mut files = std::collections::HashMap::new();
    for e in tar::Archive::new(std::fs::File::open(&saved).unwrap())
        .entries()
        .unwrap()
    {
        let mut e = e.unwrap();
        let name = e.path().unwrap().display().to_string();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        files.insert(name, data);
    }
    let index: serde_json::Value = serde_json::from_slice(&files["index.json"]).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&files[&format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"))]).unwrap();
    assert_eq!(manifest["annotations"]["org.example.key"], "v1", "{manifest}");
    // docker build --push --annotation …: the registry's manifest has it.
    let reg_dir = tempfile::tempdir().unwrap();
    let (mut reg, port) = serve_registry(reg_dir.path(), "", "", Stdio::null());
    let name = format!("127.0.0.1:{port}/annotated:1");
    let o = berth(
        r,
        &[
            "build",
            "-q",
            "--push",
            "-t",
            &name,
            "--annotation",
            "org.example.key=v2",
            c2,
        ],
    );
    let pulled = Command::new("curl")
        .args(["-sf", "-H", "Accept: application/vnd.oci.image.manifest.v1+json"])
        .arg(format!("http://127.0.0.1:{port}/v2/annotated/manifests/1"))
        .output()
        .unwrap();
    let _ = reg.kill();
    let _ = reg.wait();
    assert!(o.status.success(), "{}", stderr(&o));
    let manifest: serde_json::Value = serde_json::from_slice(&pulled.stdout).unwrap();
    assert_eq!(manifest["annotations"]["org.example.key"], "v2", "{manifest}");

    // Refused in Docker's words.
    let o = berth(r, &["build", "--add-host", "nocolon", c2]);
    assert_eq!(o.status.code(), Some(125));
    assert_eq!(
        stderr(&o).lines().next().unwrap_or_default(),
        "invalid argument \"nocolon\" for \"--add-host\" flag: bad format for add-host: \"nocolon\""
    );
}

/// `berth info | head -1`: a write to a stdout nobody reads any more ends
/// berth as it ends the docker CLI (a Go program): killed by SIGPIPE, with
/// nothing on stderr (no panic, no "Broken pipe" error).
#[test]
fn a_closed_stdout_ends_quietly_by_sigpipe() {
    use std::os::unix::process::ExitStatusExt;
    let r = Root::new();
    let closed = || -> Stdio {
        let (read, write) = rustix::pipe::pipe().unwrap();
        drop(read);
        Stdio::from(write)
    };
    // Docker itself, on a command that needs no daemon.
    assert!(
        have("docker"),
        "the docker client is not installed (apt-get install docker.io)"
    );
    let o = Command::new("docker")
        .arg("--help")
        .stdout(closed())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(o.status.signal(), Some(libc_sigpipe()), "docker --help: {:?}", o.status);
    for args in [
        &["info"][..],
        &["version"],
        &["ps", "-a"],
        &["images"],
        &["network", "ls"],
        &["volume", "ls"],
        &["system", "df"],
        &["--help"],
        &["run", "--help"],
    ] {
        let o = r.cmd(args).stdout(closed()).stderr(Stdio::piped()).output().unwrap();
        assert_eq!(o.status.signal(), Some(libc_sigpipe()), "{args:?}: {:?}", o.status);
        assert_eq!(stderr(&o), "", "{args:?}");
    }
}

fn libc_sigpipe() -> i32 {
    rustix::process::Signal::PIPE.as_raw()
}
