//! Every case in `cases.json`, rendered by berth-template, must give what Go's
//! own text/template gave (output and error text): `golden.json` was written
//! by the Go program in `go-oracle/` (run `go-oracle/regen.sh` after editing
//! the cases). The data sets are in `datasets.json`; typed ones are decoded
//! with the Go declarations of `go-oracle/types.go`, read here as a schema.

use std::rc::Rc;

use berth_template::schema::Schema;
use berth_template::{Func, MissingKey, Param, Struct, Template, Value};
use serde_json::Value as J;

fn strings_of(v: &Value) -> Vec<(String, String)> {
    match v {
        Value::Map(m) => m
            .entries
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    match v {
                        Value::Str(s, _) => s.to_string(),
                        _ => String::new(),
                    },
                )
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Attach the methods `types.go` declares on T (`Label`, `Upper`).
fn with_t_methods(v: Value) -> Value {
    let Value::Struct(s) = v else { return v };
    let labels = strings_of(&s.field("MSS").map(|f| f.value.clone()).unwrap_or(Value::NoValue));
    let upper = match s.field("S").map(|f| &f.value) {
        Some(Value::Str(x, _)) => x.to_uppercase(),
        _ => String::new(),
    };
    let mut t = Struct::new(&s.type_name, s.ptr, s.fields.clone());
    t.methods.push(Func::new("Label", vec![Param::String], None, move |a| {
        let Value::Str(k, _) = &a[0] else {
            return Ok(Value::str(""));
        };
        Ok(Value::str(
            labels
                .iter()
                .find(|(n, _)| n == &**k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default(),
        ))
    }));
    t.methods
        .push(Func::new("Upper", vec![], None, move |_| Ok(Value::str(upper.clone()))));
    Value::Struct(Rc::new(t))
}

/// `*main.Row`: a struct whose only field is the map V, with getter methods.
fn row(json: &J) -> Value {
    let map: Vec<(String, String)> = json
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
        .collect();
    let get = |k: &str| {
        map.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let v = Value::string_map(map.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let mut s = Struct::new("main.Row", true, vec![berth_template::Field::new("V", v)]);
    for name in ["ID", "Names", "Labels"] {
        let val = get(name);
        s.methods
            .push(Func::new(name, vec![], None, move |_| Ok(Value::str(val.clone()))));
    }
    let labels = get("Labels");
    s.methods.push(Func::new("Label", vec![Param::String], None, move |a| {
        let Value::Str(k, _) = &a[0] else {
            return Ok(Value::str(""));
        };
        for kv in labels.split(',') {
            if let Some((n, v)) = kv.split_once('=') {
                if n == &**k {
                    return Ok(Value::str(v));
                }
            }
        }
        Ok(Value::str(""))
    }));
    Value::Struct(Rc::new(s))
}

fn dataset(schema: &Schema, ds: &J) -> Value {
    let json = &ds["json"];
    match ds["type"].as_str().unwrap() {
        "raw" => Value::from_json(json),
        "T" => with_t_methods(schema.decode("main.T", false, json)),
        "*T" => with_t_methods(schema.decode("main.T", true, json)),
        "*State" => schema.decode("main.State", true, json),
        "*Row" => row(json),
        other => panic!("unknown dataset type {other}"),
    }
}

/// Cases where berth-template knowingly differs from Go, and why.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[
    ("{{0x1p4}}", "hexadecimal floating-point literals are not parsed"),
    ("{{1i}}", "complex numbers are not supported"),
    (
        "{{.NilP.Nope}}",
        "a nil pointer does not know its struct's fields, so a missing field reads as a nil dereference",
    ),
];

fn missing_key(opt: Option<&str>) -> MissingKey {
    match opt {
        Some("missingkey=error") => MissingKey::Error,
        Some("missingkey=zero") => MissingKey::Zero,
        _ => MissingKey::Default,
    }
}

#[test]
fn every_case_renders_as_go_renders_it() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let golden: Vec<J> = serde_json::from_str(&std::fs::read_to_string(dir.join("golden.json")).unwrap()).unwrap();
    let sets: J = serde_json::from_str(&std::fs::read_to_string(dir.join("datasets.json")).unwrap()).unwrap();
    let schema = Schema::parse(&std::fs::read_to_string(dir.join("go-oracle/types.go")).unwrap()).unwrap();
    let mut failures = Vec::new();
    for case in &golden {
        let text = case["t"].as_str().unwrap();
        let want_out = case["out"].as_str().unwrap_or("");
        let want_err = case["err"].as_str().unwrap_or("");
        let data = dataset(&schema, &sets[case["d"].as_str().unwrap()]);
        let (out, err) = match Template::parse(text) {
            Err(e) => (String::new(), e.to_string()),
            Ok(t) => {
                let t = t.with_missing_key(missing_key(case["opt"].as_str()));
                let (out, err) = t.execute_partial(&data);
                (out, err.map(|e| e.to_string()).unwrap_or_default())
            }
        };
        let known = KNOWN_DIFFERENCES.iter().any(|(t, _)| *t == text);
        if known {
            assert!(
                out != want_out || err != want_err,
                "{text:?} now matches Go: drop it from KNOWN_DIFFERENCES"
            );
            continue;
        }
        if out != want_out || err != want_err {
            failures.push(format!(
                "[{}] {:?}\n   want out={:?} err={:?}\n   got  out={:?} err={:?}",
                case["d"], text, want_out, want_err, out, err
            ));
        }
    }
    if !failures.is_empty() {
        panic!(
            "{} of {} cases differ from Go:\n{}",
            failures.len(),
            golden.len(),
            failures.join("\n")
        );
    }
}

#[test]
fn golden_file_covers_every_case() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let cases: Vec<Vec<String>> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json")).unwrap()).unwrap();
    let golden: Vec<J> = serde_json::from_str(&std::fs::read_to_string(dir.join("golden.json")).unwrap()).unwrap();
    assert_eq!(
        cases.len(),
        golden.len(),
        "golden.json is stale: run tests/go-oracle/regen.sh"
    );
    for (c, g) in cases.iter().zip(&golden) {
        assert_eq!(
            c[0],
            g["d"].as_str().unwrap(),
            "golden.json is stale: run tests/go-oracle/regen.sh"
        );
        assert_eq!(
            c[1],
            g["t"].as_str().unwrap(),
            "golden.json is stale: run tests/go-oracle/regen.sh"
        );
    }
}
