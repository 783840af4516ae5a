//! What metadata instructions (CMD, ENTRYPOINT, ENV, LABEL, EXPOSE, VOLUME,
//! USER, WORKDIR, STOPSIGNAL, HEALTHCHECK, SHELL, ONBUILD, MAINTAINER) do to
//! an image config, with Docker's rules. Shared by the builder and by
//! `import --change`/`commit --change`. It never touches files or runs
//! anything; instructions arrive already expanded.

use std::collections::BTreeMap;

use berth_store::{HealthConfig, ImageConfig};

use crate::dockerfile::{Healthcheck, InstructionKind, ShellOrExec};

/// Per-stage state Docker's rules need.
#[derive(Default, Debug, Clone)]
pub struct MetaState {
    /// CMD was set in this stage (then ENTRYPOINT keeps it).
    pub cmd_set: bool,
}

/// Docker's default shell.
pub fn default_shell() -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into()]
}

/// Shell form → the image's SHELL (or `/bin/sh -c`) + the command text.
pub fn to_argv(cmd: &ShellOrExec, shell: Option<&Vec<String>>) -> Vec<String> {
    match cmd {
        ShellOrExec::Exec(v) => v.clone(),
        ShellOrExec::Shell(s) => {
            let mut v = shell.cloned().unwrap_or_else(default_shell);
            v.push(s.clone());
            v
        }
    }
}

fn set_env(env: &mut Vec<String>, key: &str, value: &str) {
    let prefix = format!("{key}=");
    let entry = format!("{key}={value}");
    match env.iter_mut().find(|e| e.starts_with(&prefix) || e.as_str() == key) {
        Some(e) => *e = entry,
        None => env.push(entry),
    }
}

/// Look up a variable in a Docker env list.
pub fn env_get<'a>(env: &'a [String], key: &str) -> Option<&'a str> {
    env.iter()
        .rev()
        .find_map(|e| e.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

/// `WORKDIR rel` resolves against the current one, `..` cleaned.
pub fn join_workdir(current: &str, dir: &str) -> String {
    let joined = if dir.starts_with('/') {
        dir.to_string()
    } else {
        format!("{}/{dir}", if current.is_empty() { "/" } else { current })
    };
    let mut parts: Vec<&str> = Vec::new();
    for p in joined.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            x => parts.push(x),
        }
    }
    format!("/{}", parts.join("/"))
}

fn nanos(d: Option<std::time::Duration>) -> i64 {
    d.map(|d| d.as_nanos() as i64).unwrap_or(0)
}

/// Apply one metadata instruction. Returns false for instructions that are
/// not metadata (RUN, COPY, ADD, ARG): those are the executor's.
pub fn apply_metadata(kind: &InstructionKind, original: &str, img: &mut ImageConfig, state: &mut MetaState) -> bool {
    let c = &mut img.config;
    match kind {
        InstructionKind::Cmd(cmd) => {
            c.cmd = Some(to_argv(cmd, c.shell.as_ref()));
            state.cmd_set = true;
        }
        InstructionKind::Entrypoint(ep) => {
            c.entrypoint = Some(to_argv(ep, c.shell.as_ref()));
            if !state.cmd_set {
                c.cmd = None;
            }
        }
        InstructionKind::Shell(sh) => c.shell = Some(sh.clone()),
        InstructionKind::Env(pairs) => {
            let env = c.env.get_or_insert_with(Vec::new);
            for (k, v) in pairs {
                set_env(env, k, v);
            }
        }
        InstructionKind::Label(pairs) => {
            let labels = c.labels.get_or_insert_with(BTreeMap::new);
            for (k, v) in pairs {
                labels.insert(k.clone(), v.clone());
            }
        }
        InstructionKind::Maintainer(m) => img.author = Some(m.clone()),
        InstructionKind::Expose(ports) => {
            let map = c.exposed_ports.get_or_insert_with(BTreeMap::new);
            for p in ports {
                let key = if p.contains('/') {
                    p.to_lowercase()
                } else {
                    format!("{p}/tcp")
                };
                map.insert(key, serde_json::json!({}));
            }
        }
        InstructionKind::Volume(vols) => {
            let map = c.volumes.get_or_insert_with(BTreeMap::new);
            for v in vols {
                map.insert(v.clone(), serde_json::json!({}));
            }
        }
        InstructionKind::User(u) => c.user = u.clone(),
        InstructionKind::Workdir(w) => c.working_dir = join_workdir(&c.working_dir, w),
        InstructionKind::Stopsignal(s) => c.stop_signal = s.clone(),
        InstructionKind::Healthcheck(h) => {
            c.healthcheck = Some(match h {
                Healthcheck::None => HealthConfig {
                    test: vec!["NONE".into()],
                    ..Default::default()
                },
                Healthcheck::Cmd {
                    cmd,
                    interval,
                    timeout,
                    start_period,
                    start_interval,
                    retries,
                } => HealthConfig {
                    test: match cmd {
                        ShellOrExec::Shell(s) => vec!["CMD-SHELL".into(), s.clone()],
                        ShellOrExec::Exec(v) => std::iter::once("CMD".to_string()).chain(v.iter().cloned()).collect(),
                    },
                    interval: nanos(*interval),
                    timeout: nanos(*timeout),
                    start_period: nanos(*start_period),
                    start_interval: nanos(*start_interval),
                    retries: retries.map(i64::from).unwrap_or(0),
                },
            })
        }
        InstructionKind::Onbuild(_) => {
            let trigger = original
                .trim_start()
                .split_once(char::is_whitespace)
                .map(|(_, rest)| rest.trim().to_string())
                .unwrap_or_default();
            c.on_build.get_or_insert_with(Vec::new).push(trigger);
        }
        InstructionKind::Run { .. } | InstructionKind::Copy(_) | InstructionKind::Add(_) | InstructionKind::Arg(_) => {
            return false
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::parse;

    fn apply_all(src: &str) -> ImageConfig {
        let df = parse(&format!("FROM scratch\n{src}"), "Dockerfile").unwrap();
        let mut img = ImageConfig::default();
        let mut st = MetaState::default();
        for ins in &df.stages[0].instructions {
            let vars = |_: &str| None;
            let ins = crate::dockerfile::expand_instruction(ins, &vars, '\\').unwrap();
            apply_metadata(&ins.kind, &ins.original, &mut img, &mut st);
        }
        img
    }

    #[test]
    fn shell_form_uses_sh_c_or_shell() {
        let img = apply_all("CMD echo hi");
        assert_eq!(img.config.cmd.unwrap(), ["/bin/sh", "-c", "echo hi"]);
        let img = apply_all("SHELL [\"/bin/bash\", \"-eu\", \"-c\"]\nCMD echo hi");
        assert_eq!(img.config.cmd.unwrap(), ["/bin/bash", "-eu", "-c", "echo hi"]);
    }

    #[test]
    fn entrypoint_resets_inherited_cmd_only() {
        let mut img = ImageConfig::default();
        img.config.cmd = Some(vec!["inherited".into()]);
        let df = parse("FROM x\nENTRYPOINT [\"ls\"]\n", "D").unwrap();
        let mut st = MetaState::default();
        apply_metadata(&df.stages[0].instructions[0].kind, "", &mut img, &mut st);
        assert_eq!(img.config.cmd, None);
        let img = apply_all("CMD [\"--help\"]\nENTRYPOINT [\"ls\"]");
        assert_eq!(img.config.cmd.unwrap(), ["--help"]);
    }

    #[test]
    fn env_label_expose_volume_workdir_healthcheck() {
        let img = apply_all(
            "ENV A=1 B=\"x y\"\nENV A=2\nLABEL k=v\nEXPOSE 80 53/udp\nVOLUME /data\nWORKDIR /app\nWORKDIR sub/../src\nUSER 1000:1000\nSTOPSIGNAL SIGTERM\nHEALTHCHECK --interval=5s --timeout=3s CMD wget -q -O- http://localhost/ || exit 1",
        );
        let c = img.config;
        assert_eq!(c.env.unwrap(), ["A=2", "B=x y"]);
        assert_eq!(c.labels.unwrap()["k"], "v");
        let ports: Vec<_> = c.exposed_ports.unwrap().into_keys().collect();
        assert_eq!(ports, ["53/udp", "80/tcp"]);
        assert!(c.volumes.unwrap().contains_key("/data"));
        assert_eq!(c.working_dir, "/app/src");
        assert_eq!(c.user, "1000:1000");
        let h = c.healthcheck.unwrap();
        assert_eq!(h.test[0], "CMD-SHELL");
        assert_eq!(h.interval, 5_000_000_000);
        assert_eq!(h.timeout, 3_000_000_000);
    }
}
