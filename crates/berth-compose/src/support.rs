//! What of a loaded project berth cannot honour. The model keeps every key
//! of the Compose Specification (so `config` prints the file back and a
//! typo is still an error), but a few ask for what berth's engine or
//! builder does not do yet. Each of those is named here, so `up`,
//! `create` and `run` warn about it in compose's `WARN[0000]` words
//! instead of quietly starting a container that lacks it.
//!
//! Keys that only matter to a swarm (`deploy.placement`, `update_config`,
//! …) or to other commands (`develop` is `watch`'s) are not listed:
//! Docker Compose ignores them too.

use crate::model::{Project, Service};

/// One warning per setting of `project` that berth does not honour, as
/// `services.web.sysctls: …`; in service, then key order.
pub fn unsupported(project: &Project) -> Vec<String> {
    let mut out = Vec::new();
    for (name, s) in &project.services {
        service(name, s, &mut out);
    }
    for (key, n) in &project.networks {
        if n.external {
            continue;
        }
        if n.ipam.as_ref().is_some_and(|i| i.config.len() > 1) {
            out.push(format!(
                "networks.{key}.ipam.config: berth uses the first pool only; the others are ignored"
            ));
        }
    }
    out
}

fn ignored(out: &mut Vec<String>, name: &str, key: &str) {
    out.push(format!(
        "services.{name}.{key}: not supported by berth yet, ignored (the container runs without it)"
    ))
}

fn service(name: &str, s: &Service, out: &mut Vec<String>) {
    let lists: [(&str, bool); 1] = [("post_start", !s.post_start.is_empty())];
    for (key, set) in lists {
        if set {
            ignored(out, name, key);
        }
    }
    if !s.pre_stop.is_empty() {
        ignored(out, name, "pre_stop");
    }
    let values: [(&str, bool); 4] = [
        ("cpu_count", s.cpu_count.is_some()),
        ("cpu_percent", s.cpu_percent.is_some()),
        ("gpus", s.gpus.is_some()),
        ("credential_spec", s.credential_spec.is_some()),
    ];
    for (key, set) in values {
        if set {
            ignored(out, name, key);
        }
    }
    if s.volume_driver.as_deref().is_some_and(|d| d != "local") {
        ignored(out, name, "volume_driver");
    }
    if s.isolation.as_deref().is_some_and(|i| i != "default") {
        ignored(out, name, "isolation");
    }
    if let Some(p) = s
        .pull_policy
        .as_deref()
        .filter(|p| matches!(*p, "daily" | "weekly") || p.starts_with("every_"))
    {
        out.push(format!(
            "services.{name}.pull_policy: {p}: berth keeps no pull times, so it pulls only a missing image"
        ));
    }
    if let Some(r) = s.deploy.as_ref().and_then(|d| d.resources.as_ref()) {
        if let Some(res) = &r.reservations {
            // memory is the container's soft limit (convert.rs).
            if res.cpus.is_some() || res.devices.is_some() || res.generic_resources.is_some() {
                ignored(out, name, "deploy.resources.reservations");
            }
        }
        if let Some(l) = &r.limits {
            if l.devices.is_some() || l.generic_resources.is_some() {
                ignored(out, name, "deploy.resources.limits.devices");
            }
        }
    }
    for (i, v) in s.volumes.iter().enumerate() {
        if v.volume.as_ref().is_some_and(|o| o.subpath.is_some()) {
            ignored(out, name, &format!("volumes[{i}].volume.subpath"));
        }
    }
    for (key, n) in &s.networks {
        let Some(n) = n else { continue };
        if !n.driver_opts.is_empty() {
            ignored(out, name, &format!("networks.{key}.driver_opts"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_each_ignored_setting_and_nothing_else() {
        let mut s = Service {
            image: Some("bb".into()),
            ..Default::default()
        };
        let mut p = Project::default();
        p.services.insert("web".into(), s.clone());
        assert!(unsupported(&p).is_empty());
        s.sysctls.insert("net.core.somaxconn".into(), "1024".into());
        s.ipc = Some("shareable".into());
        s.oom_score_adj = Some(100);
        s.cpu_count = Some(2);
        s.gpus = Some(Default::default());
        p.services.insert("web".into(), s);
        let w = unsupported(&p);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].starts_with("services.web.cpu_count: not supported by berth yet"),
            "{w:?}"
        );
        assert!(w[1].starts_with("services.web.gpus: "), "{w:?}");
    }
}
