//! Docker's data as its CLI hands it to templates: the formatter contexts
//! of list commands (`*formatter.ContainerContext`: every column a method,
//! `.Label "k"`, `json` of the sorted columns) and inspect documents (Go
//! structs in field order, maps where Docker's types have maps, nil slices
//! and maps where the JSON has null). It only builds values.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::OnceLock;

use crate::schema::Schema;

use crate::value::{Field, Func, List, Map, Param, Struct, Value, IFACE};

/// A list command's row as Docker's formatter context: each key of `row` is
/// a method without arguments (so `{{.ID 1}}` fails as in Docker), a
/// `Labels` string (`k=v,k2=v2`) adds `Label "k"`, and `json` marshals the
/// columns with sorted keys as Docker's contexts do.
pub fn context_row(type_name: &str, row: &serde_json::Value) -> Value {
    let obj = row.as_object().cloned().unwrap_or_default();
    let mut s = Struct::new(
        type_name.trim_start_matches('*'),
        type_name.starts_with('*'),
        Vec::new(),
    );
    let mut sorted = serde_json::Map::new();
    let mut keys: Vec<&String> = obj.keys().collect();
    keys.sort();
    for k in keys {
        sorted.insert(k.clone(), obj[k].clone());
    }
    for (k, v) in &obj {
        let val = Value::from_json(v).unwrap_iface();
        let val = match val {
            // Columns are strings or numbers in Docker's contexts, never json.Number.
            Value::Str(t, Some(n)) if &*n == "json.Number" => match t.parse::<i64>() {
                Ok(i) => Value::int(i),
                Err(_) => Value::str(t),
            },
            other => other,
        };
        s.methods.push(Func::new(k, vec![], None, move |_| Ok(val.clone())));
    }
    if let Some(labels) = obj.get("Labels").and_then(|l| l.as_str()) {
        let pairs: Vec<(String, String)> = labels
            .split(',')
            .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
            .collect();
        s.methods.push(Func::new("Label", vec![Param::String], None, move |a| {
            let Value::Str(name, _) = &a[0] else {
                return Ok(Value::str(""));
            };
            Ok(Value::str(
                pairs
                    .iter()
                    .find(|(k, _)| k == &**name)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default(),
            ))
        }));
    }
    s.json = Some(serde_json::Value::Object(sorted));
    Value::Struct(Rc::new(s))
}

/// Keys whose values are Go maps in Docker's inspect types, with the Go
/// key and element types (`Labels` is `map[string]string`).
fn map_type(parent: &str, key: &str) -> Option<(&'static str, &'static str)> {
    Some(match (parent, key) {
        (_, "Labels" | "Options" | "DriverOpts" | "Sysctls" | "Tmpfs" | "StorageOpt" | "Annotations" | "Data") => {
            ("string", "string")
        }
        ("LogConfig", "Config") => ("string", "string"),
        (_, "ExposedPorts") => ("nat.Port", "struct {}"),
        (_, "Volumes") => ("string", "struct {}"),
        (_, "Ports" | "PortBindings") => ("nat.Port", "[]nat.PortBinding"),
        (_, "Networks") => ("string", "*network.EndpointSettings"),
        _ => return None,
    })
}

/// Keys whose values are Go slices (a null prints `[]`, not `<nil>`).
fn is_slice_key(key: &str) -> bool {
    matches!(
        key,
        "Args"
            | "Cmd"
            | "Entrypoint"
            | "Env"
            | "Mounts"
            | "ExecIDs"
            | "Binds"
            | "CapAdd"
            | "CapDrop"
            | "Dns"
            | "DnsOptions"
            | "DnsSearch"
            | "ExtraHosts"
            | "GroupAdd"
            | "Links"
            | "SecurityOpt"
            | "RepoTags"
            | "RepoDigests"
            | "Layers"
            | "OnBuild"
            | "Aliases"
            | "DNSNames"
            | "Shell"
            | "Test"
            | "Devices"
            | "Ulimits"
            | "DeviceRequests"
            | "ConsoleSize"
            | "MaskedPaths"
            | "ReadonlyPaths"
            | "VolumesFrom"
            | "BlkioWeightDevice"
            | "Secrets"
            | "Configs"
            | "Links6"
    )
}

/// An inspect document as Docker's typed value: JSON objects are structs
/// (fields in document order) except where Docker's types have maps; a
/// null list is a nil slice, a null map a nil map, another null a nil pointer.
pub fn inspect_value(type_name: &str, json: &serde_json::Value) -> Value {
    typed(type_name, "", json, true)
}

/// The docker CLI's container state, config and host config types, as Go
/// declarations (`docker_types.go`).
fn docker_types() -> &'static Schema {
    static TYPES: OnceLock<Schema> = OnceLock::new();
    TYPES.get_or_init(|| Schema::parse(include_str!("docker_types.go")).expect("docker_types.go parses"))
}

/// A part of a container inspect document decoded as the docker CLI's Go
/// type, when berth declares it: absent fields are zero values.
fn declared(parent_type: &str, key: &str, v: &serde_json::Value) -> Option<Value> {
    if parent_type != "types.ContainerJSON" {
        return None;
    }
    let (name, ptr) = match key {
        "Mounts" => ("types.MountPoints", false),
        "State" => ("types.ContainerState", true),
        "Config" => ("container.Config", true),
        "HostConfig" => ("container.HostConfig", true),
        _ => return None,
    };
    let mut v = v.clone();
    // `ConsoleSize` is a Go array (`[2]uint`): never nil, `[0 0]` when unset.
    if let Some(o) = v.as_object_mut().filter(|_| key == "HostConfig") {
        o.entry("ConsoleSize").or_insert_with(|| serde_json::json!([0, 0]));
    }
    Some(docker_types().decode(name, ptr, &v))
}

fn typed(type_name: &str, parent: &str, json: &serde_json::Value, ptr: bool) -> Value {
    use serde_json::Value as J;
    match json {
        J::Object(o) => {
            let mut fields: Vec<Field> = o
                .iter()
                .map(|(k, v)| Field::new(k, field_value(type_name, k, v)))
                .collect();
            if type_name == "types.ContainerJSON" {
                // `*int64` fields Docker fills only for `inspect --size`.
                for k in ["SizeRw", "SizeRootFs"] {
                    if !o.contains_key(k) {
                        fields.push(Field::new(k, Value::Nil("*int64".into())));
                    }
                }
            }
            let _ = parent;
            Value::Struct(Rc::new(Struct::new(type_name, ptr, fields)))
        }
        J::Null => Value::Nil(IFACE.into()),
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::int(i),
            (_, Some(u)) => Value::Uint(u, "uint64"),
            _ => Value::Float(n.as_f64().unwrap_or(0.0)),
        },
        J::String(s) => Value::str(s.as_str()),
        J::Array(a) => Value::List(Rc::new(List {
            elem: "string".into(),
            items: a.iter().map(|v| typed("struct", parent, v, false)).collect(),
            nil: false,
        })),
    }
}

fn field_value(parent_type: &str, key: &str, v: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    if let Some(value) = declared(parent_type, key, v) {
        return value;
    }
    let parent = parent_type.rsplit('.').next().unwrap_or(parent_type);
    if let Some((kt, et)) = map_type(parent, key) {
        return match v {
            J::Object(o) => Value::Map(Rc::new(Map {
                key: kt.into(),
                elem: et.into(),
                entries: o
                    .iter()
                    .map(|(k, v)| (k.clone(), map_elem(et, v)))
                    .collect::<BTreeMap<_, _>>(),
                nil: false,
            })),
            _ => Value::Map(Rc::new(Map {
                key: kt.into(),
                elem: et.into(),
                entries: BTreeMap::new(),
                nil: true,
            })),
        };
    }
    match v {
        J::Null if is_slice_key(key) => Value::List(Rc::new(List {
            elem: "string".into(),
            items: Vec::new(),
            nil: true,
        })),
        J::Null => Value::Nil(format!("*{key}").into()),
        J::Array(a) => {
            let elem = if a.iter().all(|x| x.is_string()) { "string" } else { key };
            Value::List(Rc::new(List {
                elem: elem.into(),
                items: a.iter().map(|x| typed(key, key, x, false)).collect(),
                nil: false,
            }))
        }
        J::Object(_) => typed(key, key, v, false),
        other => typed(key, parent, other, false),
    }
}

fn map_elem(elem: &str, v: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match (elem, v) {
        ("string", J::String(s)) => Value::str(s.as_str()),
        ("struct {}", _) => Value::Struct(Rc::new(Struct::new("struct {}", false, Vec::new()))),
        ("[]nat.PortBinding", J::Null) => Value::List(Rc::new(List {
            elem: "nat.PortBinding".into(),
            items: Vec::new(),
            nil: true,
        })),
        ("[]nat.PortBinding", J::Array(a)) => Value::List(Rc::new(List {
            elem: "nat.PortBinding".into(),
            items: a.iter().map(|b| typed("nat.PortBinding", "", b, false)).collect(),
            nil: false,
        })),
        ("*network.EndpointSettings", J::Object(_)) => typed("network.EndpointSettings", "", v, true),
        (_, other) => typed("struct", "", other, false),
    }
}
