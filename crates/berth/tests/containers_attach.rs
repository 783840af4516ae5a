//! Interactive containers: `run -it`, the Ctrl-P Ctrl-Q detach and
//! `--detach-keys`, `attach` with stdin, `start -ai`, and the terminal size
//! a `-t` container starts with. Input is written to berth's stdin in
//! pieces, as a person types; the detach sequence is plain bytes, so no
//! terminal is needed except for the window-size test (`script`).

mod common;

use common::{have, stderr, stdout, Env, Root};
use std::io::{Read, Write};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A berth process we type into and read from.
struct Session {
    child: Child,
    out: Arc<Mutex<Vec<u8>>>,
    err: Arc<Mutex<Vec<u8>>>,
}

impl Session {
    fn start(root: &Root, args: &[&str]) -> Session {
        let mut child = root
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = Arc::new(Mutex::new(Vec::new()));
        let err = Arc::new(Mutex::new(Vec::new()));
        for (mut pipe, buf) in [
            (
                Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
                out.clone(),
            ),
            (
                Box::new(child.stderr.take().unwrap()) as Box<dyn Read + Send>,
                err.clone(),
            ),
        ] {
            std::thread::spawn(move || {
                let mut b = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut b) {
                    if n == 0 {
                        break;
                    }
                    buf.lock().unwrap().extend_from_slice(&b[..n]);
                }
            });
        }
        Session { child, out, err }
    }

    fn type_(&mut self, bytes: &[u8]) {
        let i = self.child.stdin.as_mut().unwrap();
        i.write_all(bytes).unwrap();
        i.flush().unwrap();
    }

    fn output(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }

    /// Waits until stdout contains `what`.
    fn expect(&self, what: &str) {
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end {
            if self.output().contains(what) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "timed out waiting for {what:?} in the output:\n{}\nstderr:\n{}",
            self.output(),
            String::from_utf8_lossy(&self.err.lock().unwrap())
        );
    }

    /// Waits (at most 20 s, a hang guard) for the process to end.
    fn wait(&mut self) -> std::process::ExitStatus {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                panic!("berth did not end; output so far:\n{}", self.output());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the process to end; returns its exit code and stderr.
    fn finish(mut self) -> (i32, String) {
        let st = self.wait();
        std::thread::sleep(Duration::from_millis(100));
        let err = String::from_utf8_lossy(&self.err.lock().unwrap()).into_owned();
        (st.code().unwrap_or(-1), err)
    }
}

#[test]
#[ignore = "needs root"]
fn ctrl_p_ctrl_q_detaches_and_attach_comes_back() {
    let env = Env::new();
    let mut s = Session::start(&env.root, &["run", "-it", "--name", "shell", "bb", "sh"]);
    s.type_(b"echo one-$((40+2))\n");
    s.expect("one-42");
    s.type_(b"\x10\x11");
    let (code, err) = s.finish();
    assert_eq!(code, 0, "a detached `run -it` exits 0; stderr: {err}");
    assert_eq!(env.status("shell"), "running", "the container goes on after the detach");

    // Re-attach: same shell (its variable is still set), then exit with a code.
    let mut s = Session::start(&env.root, &["attach", "shell"]);
    s.type_(b"X=kept; echo two-$X\n");
    s.expect("two-kept");
    // Detach from `attach`: Docker prints "read escape sequence" and exits 1.
    s.type_(b"\x10\x11");
    let (code, err) = s.finish();
    assert_eq!(code, 1);
    assert!(err.contains("read escape sequence"), "{err}");

    let mut s = Session::start(&env.root, &["attach", "shell"]);
    s.type_(b"echo three-$X; exit 7\n");
    s.expect("three-kept");
    let (code, _) = s.finish();
    assert_eq!(code, 7, "attach returns the container's exit code");
    assert_eq!(env.status("shell"), "exited");
}

#[test]
#[ignore = "needs root"]
fn a_lone_ctrl_p_is_passed_on_and_detach_keys_can_be_changed() {
    let env = Env::new();
    let mut s = Session::start(
        &env.root,
        &["run", "-it", "--detach-keys", "ctrl-a,d", "--name", "dk", "bb", "sh"],
    );
    // Ctrl-P Ctrl-Q is just input now.
    s.type_(b"echo start\n");
    s.expect("start");
    s.type_(b"\x10\x11");
    s.type_(b"echo still-here\n");
    s.expect("still-here");
    assert!(s.child.try_wait().unwrap().is_none(), "ctrl-p ctrl-q must not detach");
    // The new sequence, split across two writes.
    s.type_(b"\x01");
    std::thread::sleep(Duration::from_millis(200));
    s.type_(b"d");
    let (code, err) = s.finish();
    assert_eq!(code, 0, "{err}");
    assert_eq!(env.status("dk"), "running");

    // The bytes themselves reach the container (read raw, not through a
    // shell's echo): a lone Ctrl-P with the default keys, and Ctrl-P
    // Ctrl-Q once the keys were changed.
    for (keys, typed, want) in [
        (None, &b"\x10x"[..], "10 78"),
        (Some("ctrl-a,d"), &b"\x10\x11x"[..], "10 11 78"),
    ] {
        let n = typed.len().to_string();
        let script = format!("stty raw -echo; echo ready; head -c {n} | od -An -tx1");
        let mut args = vec!["run", "-it", "--rm"];
        if let Some(k) = keys {
            args.extend(["--detach-keys", k]);
        }
        args.extend(["bb", "sh", "-c", &script]);
        let mut s = Session::start(&env.root, &args);
        s.expect("ready");
        s.type_(typed);
        s.expect(want);
        let (code, err) = s.finish();
        assert_eq!(code, 0, "{err}");
    }

    // A bad sequence is refused before anything is created.
    let before = stdout(&env.root.run(&["ps", "-aq"])).lines().count();
    let o = env.root.run(&["run", "-it", "--detach-keys", "ctrl-", "bb", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("invalid detach keys \"ctrl-\""), "{}", stderr(&o));
    assert_eq!(stdout(&env.root.run(&["ps", "-aq"])).lines().count(), before);
}

#[test]
#[ignore = "needs root"]
fn run_it_returns_the_exit_code_and_rm_removes_the_container() {
    let env = Env::new();
    let s = Session::start(
        &env.root,
        &[
            "run",
            "--rm",
            "-it",
            "--name",
            "gone",
            "bb",
            "sh",
            "-c",
            "echo bye; exit 5",
        ],
    );
    s.expect("bye");
    let (code, _) = s.finish();
    assert_eq!(code, 5);
    // `--rm` has removed it by the time run returns, as with Docker.
    let o = env.root.run(&["inspect", "gone"]);
    assert!(!o.status.success(), "container still there: {}", stdout(&o));
}

#[test]
#[ignore = "needs root"]
fn attach_feeds_stdin_of_a_detached_interactive_container() {
    let env = Env::new();
    env.root.ok(&["run", "-d", "-i", "--name", "cat", "bb", "cat"]);
    let mut s = Session::start(&env.root, &["attach", "cat"]);
    s.type_(b"ping-1\n");
    s.expect("ping-1");
    // A second client sees the same output.
    let s2 = Session::start(&env.root, &["attach", "--no-stdin", "cat"]);
    std::thread::sleep(Duration::from_millis(500));
    s.type_(b"ping-2\n");
    s.expect("ping-2");
    s2.expect("ping-2");
    assert!(!s2.output().contains("ping-1"), "attach shows no history");
    // The log has everything.
    let logs = stdout(&env.root.run(&["logs", "cat"]));
    assert_eq!(logs, "ping-1\nping-2\n");
    // Killing the container ends both sessions with its code.
    env.root.ok(&["kill", "cat"]);
    assert_eq!(s.finish().0, 137);
    assert_eq!(s2.finish().0, 137);
}

#[test]
#[ignore = "needs root"]
fn start_ai_feeds_stdin_and_closes_it_at_eof() {
    let env = Env::new();
    env.root.ok(&[
        "create",
        "-i",
        "--name",
        "reader",
        "bb",
        "sh",
        "-c",
        "while read l; do echo got:$l; done; echo eof; exit 4",
    ]);
    let mut s = Session::start(&env.root, &["start", "-ai", "reader"]);
    s.type_(b"a\nb\n");
    s.expect("got:b");
    drop(s.child.stdin.take());
    s.expect("eof");
    let (code, _) = s.finish();
    assert_eq!(code, 4);
    // `start -a` without -i: output only, from the very first line.
    env.root.ok(&["create", "--name", "quick", "bb", "echo", "first-line"]);
    let o = env.root.run(&["start", "-a", "quick"]);
    assert_eq!(stdout(&o), "first-line\n");
    assert_eq!(o.status.code(), Some(0));
}

#[test]
#[ignore = "needs root"]
fn a_tty_container_starts_with_the_terminal_size() {
    let env = Env::new();
    assert!(
        have("script"),
        "script (bsdutils) is not installed (scripts/setup --tests installs it)"
    );
    let exe = env!("CARGO_BIN_EXE_berth");
    let store = env.root.path().join("store");
    for flags in ["-it", "-t"] {
        let line = format!(
            "stty rows 41 cols 97; {exe} --root {} run --rm {flags} bb stty size",
            store.display()
        );
        let o = std::process::Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains("41 97"), "{flags}: {out}");
    }
}

#[test]
#[ignore = "needs root"]
fn rootless_run_it_detaches_and_reattaches() {
    let rl = common::Rootless::new("berth-attach-");
    let o = rl.run("import bb.tar bb");
    assert!(o.status.success(), "{}", stderr(&o));
    // Typed input, then Ctrl-P Ctrl-Q (octal: the user's shell is dash).
    let o = rl.sh(
        "(printf 'id -u; echo in-$((6*7))\\n'; sleep 1; printf '\\020\\021') | BERTH_TTY_OVER_PIPE=1 ./berth --root store run -it --name rl bb sh",
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("in-42") && out.contains("\n0\r\n"), "{out:?}");
    let o = rl.run("inspect --format '{{.State.Status}}' rl");
    assert_eq!(stdout(&o).trim(), "running", "{}", stderr(&o));
    // Back in the same shell.
    let o = rl.sh("printf 'exit 9\\n' | ./berth --root store attach rl");
    assert_eq!(o.status.code(), Some(9), "{}", stderr(&o));
    let _ = rl.run("rm -f rl");
}

/// `attach --sig-proxy=false`: SIGINT is the client's own, as with
/// docker: the client ends by it and the container goes on.
#[test]
#[ignore = "needs root"]
fn attach_without_sig_proxy_ends_on_sigint_and_leaves_the_container() {
    let env = Env::new();
    env.root.ok(&["run", "-d", "-i", "--name", "sp", "bb", "sh"]);
    let mut s = Session::start(&env.root, &["attach", "--sig-proxy=false", "sp"]);
    // Attached once the container's output reaches this client.
    s.type_(b"echo attached-$((2+3))\n");
    s.expect("attached-5");
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(s.child.id() as i32, libc::SIGINT) };
    let st = s.wait();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(st.signal(), Some(libc::SIGINT), "{st:?}");
    assert_eq!(env.status("sp"), "running");
}
