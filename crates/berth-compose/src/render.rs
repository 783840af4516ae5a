//! `docker compose config`'s output: the project in canonical YAML (Go
//! yaml.v3's layout) or JSON, with `x-` extensions put back where they were
//! written. Rendering only: nothing is loaded or checked here.

use serde::Serialize;

use crate::model::{Extensions, Project};
use crate::yaml::{from_json, to_yaml, Key, Node};

/// The project as `docker compose config` prints it (YAML).
pub fn to_yaml_text(project: &Project) -> String {
    to_yaml(&to_tree(project))
}

/// The project as `docker compose config --format json` prints it.
pub fn to_json_text(project: &Project) -> String {
    let tree = to_tree(project);
    let mut value = tree.to_json();
    // compose's JSON always carries command and entrypoint (null when unset).
    if let Some(services) = value.get_mut("services").and_then(|s| s.as_object_mut()) {
        for svc in services.values_mut() {
            if let Some(obj) = svc.as_object_mut() {
                for key in ["command", "entrypoint"] {
                    obj.entry(key).or_insert(serde_json::Value::Null);
                }
            }
        }
    }
    serde_json::to_string_pretty(&value).expect("JSON serialises")
}

/// The project as an ordered tree, extensions included.
pub fn to_tree(project: &Project) -> Node {
    let mut root = tree_of(project);
    if let Some(services) = root.get_mut("services") {
        for (name, svc) in &project.services {
            add_extensions(services.get_mut(name), &svc.extensions);
        }
    }
    macro_rules! section {
        ($key:literal, $field:ident) => {
            if let Some(n) = root.get_mut($key) {
                for (name, v) in &project.$field {
                    add_extensions(n.get_mut(name), &v.extensions);
                }
            }
        };
    }
    section!("networks", networks);
    section!("volumes", volumes);
    section!("secrets", secrets);
    section!("configs", configs);
    add_extensions(Some(&mut root), &project.extensions);
    root
}

fn tree_of<T: Serialize>(value: &T) -> Node {
    from_json(&serde_json::to_string(value).expect("the model serialises"))
}

fn add_extensions(node: Option<&mut Node>, ext: &Extensions) {
    let Some(node) = node else { return };
    let loc = node.loc.clone();
    if let Some(map) = node.as_map_mut() {
        for (k, v) in ext {
            map.push((
                Key {
                    name: k.clone(),
                    loc: loc.clone(),
                },
                from_json(&sorted_keys(v).to_string()),
            ));
        }
    }
}

/// An extension's value with every mapping's keys sorted, as Go's yaml.v3
/// prints a `map[string]any` (serde_json keeps insertion order here).
fn sorted_keys(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k.clone(), sorted_keys(v))).collect())
        }
        serde_json::Value::Array(items) => serde_json::Value::Array(items.iter().map(sorted_keys).collect()),
        other => other.clone(),
    }
}
