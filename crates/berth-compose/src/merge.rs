//! Merging compose trees (several `-f` files, an override file, `extends`)
//! by the Compose Specification's rules: mappings merge key by key, scalars
//! are replaced, sequences are appended; `command`, `entrypoint` and
//! `healthcheck.test` are replaced; `ports`, `volumes`, `secrets` and
//! `configs` are unique by their key (a later mount on the same target
//! replaces the earlier one); lists such as `dns`, `expose`, `cap_add` drop
//! repeats; `logging` merges only for the same driver; `!reset` removes a
//! value and `!override` replaces it whole.
//!
//! Both trees must already be canonical (see `canonical`), so each key has
//! one shape.

use crate::yaml::{Node, Value};

/// Merge `over` into `base`; `path` is where `base` sits (`services.web`).
pub fn merge(base: &mut Node, over: Node, path: &str) {
    if over.tag.as_deref() == Some("override") {
        *base = Node { tag: None, ..over };
        return;
    }
    let rule = rule_for(path);
    match (&mut base.value, over.value) {
        (_, value) if matches!(rule, Rule::Replace) => {
            base.value = value;
            base.loc = over.loc;
        }
        (Value::Map(_), Value::Null) => {}
        (Value::Map(entries), Value::Map(other)) => {
            if matches!(rule, Rule::Logging) {
                let driver = |m: &Vec<(crate::yaml::Key, Node)>| {
                    m.iter()
                        .find(|(k, _)| k.name == "driver")
                        .and_then(|(_, v)| v.as_scalar().map(str::to_string))
                };
                let (a, b) = (driver(entries), driver(&other));
                if a.is_some() && b.is_some() && a != b {
                    *entries = other;
                    return;
                }
            }
            for (k, v) in other {
                let child = if path.is_empty() {
                    k.name.clone()
                } else {
                    format!("{path}.{}", k.name)
                };
                if v.tag.as_deref() == Some("reset") {
                    entries.retain(|(e, _)| e.name != k.name);
                    continue;
                }
                match entries.iter_mut().find(|(e, _)| e.name == k.name) {
                    Some((_, existing)) if !k.name.starts_with("x-") => merge(existing, v, &child),
                    Some((_, existing)) => *existing = v,
                    None => entries.push((k, Node { tag: None, ..v })),
                }
            }
        }
        (Value::Seq(items), Value::Seq(other)) => match rule {
            Rule::UniqueBy(key) => {
                for item in other {
                    let id = key(&item, path);
                    match items.iter_mut().find(|i| key(i, path) == id) {
                        Some(slot) => *slot = item,
                        None => items.push(item),
                    }
                }
            }
            Rule::Dedup => {
                for item in other {
                    if !items.iter().any(|i| i.to_json() == item.to_json()) {
                        items.push(item);
                    }
                }
            }
            _ => items.extend(other),
        },
        (_, value) => {
            base.value = value;
            base.loc = over.loc;
        }
    }
}

#[derive(Clone, Copy)]
enum Rule {
    Default,
    Replace,
    Dedup,
    Logging,
    UniqueBy(fn(&Node, &str) -> String),
}

/// `services.<name>.<rest>` → `<rest>` (also inside `extends` bases, whose
/// path is the service's).
fn service_key(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("services.")?;
    rest.split_once('.').map(|(_, k)| k)
}

fn rule_for(path: &str) -> Rule {
    let Some(key) = service_key(path) else {
        return Rule::Default;
    };
    match key {
        "command" | "entrypoint" | "healthcheck.test" => Rule::Replace,
        "logging" => Rule::Logging,
        "ports" => Rule::UniqueBy(port_key),
        "volumes" => Rule::UniqueBy(target_key),
        "secrets" | "configs" => Rule::UniqueBy(file_ref_key),
        "env_file" => Rule::UniqueBy(env_file_key),
        "expose"
        | "dns"
        | "dns_search"
        | "dns_opt"
        | "tmpfs"
        | "cap_add"
        | "cap_drop"
        | "security_opt"
        | "external_links"
        | "links"
        | "volumes_from"
        | "profiles"
        | "extra_hosts"
        | "devices"
        | "group_add"
        | "device_cgroup_rules"
        | "build.tags"
        | "build.cache_from"
        | "build.cache_to"
        | "build.platforms"
        | "build.ssh" => Rule::Dedup,
        k if k.starts_with("ulimits.") => Rule::Replace,
        _ => Rule::Default,
    }
}

fn scalar_at(n: &Node, key: &str) -> String {
    n.get(key).and_then(Node::as_scalar).unwrap_or_default().to_string()
}

fn port_key(n: &Node, _: &str) -> String {
    ["host_ip", "target", "published", "protocol", "mode"]
        .iter()
        .map(|k| scalar_at(n, k))
        .collect::<Vec<_>>()
        .join("|")
}

fn target_key(n: &Node, _: &str) -> String {
    scalar_at(n, "target")
}

fn env_file_key(n: &Node, _: &str) -> String {
    scalar_at(n, "path")
}

fn file_ref_key(n: &Node, path: &str) -> String {
    let target = scalar_at(n, "target");
    if !target.is_empty() {
        return target;
    }
    let source = scalar_at(n, "source");
    if path.ends_with(".secrets") {
        format!("/run/secrets/{source}")
    } else {
        format!("/{source}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::sync::Arc;

    fn tree(text: &str) -> Node {
        let file: Arc<Path> = Arc::from(Path::new("t.yaml"));
        let mut n = crate::yaml::parse_documents(text, &file).unwrap().remove(0);
        let base = crate::canonical::PathBase {
            dir: Path::new("/p"),
            home: None,
        };
        crate::canonical::file(&mut n, &base).unwrap();
        n
    }

    #[test]
    fn spec_merge_rules() {
        let mut a = tree(
            "services:\n  web:\n    image: a\n    command: [echo, foo]\n    dns: [1.1.1.1]\n    ports: ['80:80']\n    volumes: ['./a:/data']\n    environment: {A: '1', B: '2'}\n",
        );
        let b = tree(
            "services:\n  web:\n    image: b\n    command: [echo, bar]\n    dns: [8.8.8.8, 1.1.1.1]\n    ports: ['80:80', '443:443']\n    volumes: ['./b:/data']\n    environment: [B=3, C=4]\n",
        );
        merge(&mut a, b, "");
        let web = a.get("services").unwrap().get("web").unwrap().to_json();
        assert_eq!(web["image"], "b");
        assert_eq!(web["command"], serde_json::json!(["echo", "bar"]));
        assert_eq!(web["dns"], serde_json::json!(["1.1.1.1", "8.8.8.8"]));
        assert_eq!(web["ports"].as_array().unwrap().len(), 2);
        assert_eq!(web["volumes"].as_array().unwrap().len(), 1);
        assert_eq!(web["volumes"][0]["source"], "/p/b");
        assert_eq!(web["environment"], serde_json::json!({"A": "1", "B": "3", "C": "4"}));
    }

    #[test]
    fn reset_and_override_tags() {
        let mut a = tree("services:\n  web:\n    image: a\n    ports: ['80:80']\n    labels: {a: '1'}\n");
        let b = tree("services:\n  web:\n    ports: !reset []\n    labels: !override {b: '2'}\n");
        merge(&mut a, b, "");
        let web = a.get("services").unwrap().get("web").unwrap().to_json();
        assert!(web.get("ports").is_none());
        assert_eq!(web["labels"], serde_json::json!({"b": "2"}));
    }
}
