//! Go type declarations, written in Go's own syntax, and decoding JSON into
//! typed [`Value`]s the way `json.Unmarshal` fills those types: struct
//! fields in declaration order (with `json:"name,omitempty"` tags and
//! embedded structs), zero values for absent fields, unknown keys dropped,
//! nil slices/maps/pointers kept nil, `interface {}` numbers as `float64`.
//! It only reads declarations and data; it never runs code.
//!
//! Accepted syntax: `package p`, `type Name struct { Field Type `tag` … }`,
//! `type Name Underlying`, `type Name = Underlying`, comments; types are
//! `string bool int int8..int64 uint..uint64 float64 any interface{}
//! struct{}`, `*T`, `[]T`, `map[K]V` and declared names (`pkg.Name` may be
//! written directly to place a type in another package).

use std::collections::HashMap;
use std::rc::Rc;

use crate::value::{Field, List, Map, Struct, Value, IFACE};

/// A Go type expression.
#[derive(Clone, Debug)]
pub enum Type {
    /// A predeclared basic type (`string`, `int64`, …).
    Basic(&'static str),
    /// `interface {}` / `any`.
    Any,
    /// `*T`.
    Ptr(Box<Type>),
    /// `[]T`.
    Slice(Box<Type>),
    /// `map[K]V`.
    Map(Box<Type>, Box<Type>),
    /// `struct{}` written inline.
    EmptyStruct,
    /// A declared type, by full name (`types.ContainerState`).
    Named(String),
}

#[derive(Clone, Debug)]
struct FieldDecl {
    name: String,
    typ: Type,
    json: Option<String>,
    omitempty: bool,
    embedded: bool,
}

#[derive(Clone, Debug)]
enum Decl {
    Struct(Vec<FieldDecl>),
    Alias(Type),
}

/// A set of Go type declarations.
#[derive(Clone, Debug, Default)]
pub struct Schema {
    decls: HashMap<String, Decl>,
}

/// A declaration that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("schema line {line}: {msg}")]
pub struct SchemaError {
    line: usize,
    msg: String,
}

const BASIC: &[&str] = &[
    "string",
    "bool",
    "int",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float64",
    "float32",
    "byte",
    "rune",
    "time.Duration",
];

struct Toks {
    toks: Vec<(String, usize)>,
    i: usize,
}

impl Toks {
    fn new(src: &str) -> Toks {
        let mut toks = Vec::new();
        for (ln, line) in src.lines().enumerate() {
            let line = match line.find("//") {
                Some(i) if !line[..i].contains('`') => &line[..i],
                _ => line,
            };
            let mut chars = line.char_indices().peekable();
            while let Some((i, c)) = chars.next() {
                if c.is_whitespace() {
                    continue;
                }
                if c == '`' {
                    let rest = &line[i + 1..];
                    let end = rest.find('`').unwrap_or(rest.len());
                    toks.push((format!("`{}`", &rest[..end]), ln + 1));
                    for _ in 0..=end {
                        chars.next();
                    }
                    continue;
                }
                if c.is_alphanumeric() || c == '_' || c == '.' {
                    let mut j = i + c.len_utf8();
                    while let Some(&(k, d)) = chars.peek() {
                        if d.is_alphanumeric() || d == '_' || d == '.' {
                            j = k + d.len_utf8();
                            chars.next();
                        } else {
                            break;
                        }
                    }
                    toks.push((line[i..j].to_string(), ln + 1));
                    continue;
                }
                toks.push((c.to_string(), ln + 1));
            }
            toks.push((";".into(), ln + 1));
        }
        Toks { toks, i: 0 }
    }

    fn peek(&self) -> &str {
        self.toks.get(self.i).map(|t| t.0.as_str()).unwrap_or("")
    }

    fn next(&mut self) -> String {
        let t = self.peek().to_string();
        self.i += 1;
        t
    }

    fn line(&self) -> usize {
        self.toks.get(self.i).map(|t| t.1).unwrap_or(0)
    }

    fn skip_semis(&mut self) {
        while self.peek() == ";" {
            self.i += 1;
        }
    }

    fn err(&self, msg: impl Into<String>) -> SchemaError {
        SchemaError {
            line: self.line(),
            msg: msg.into(),
        }
    }
}

impl Schema {
    /// Parse declarations (see the module docs for the syntax).
    pub fn parse(src: &str) -> Result<Schema, SchemaError> {
        let mut s = Schema::default();
        s.add(src)?;
        Ok(s)
    }

    /// Add more declarations.
    pub fn add(&mut self, src: &str) -> Result<(), SchemaError> {
        let mut t = Toks::new(src);
        let mut pkg = String::new();
        loop {
            t.skip_semis();
            match t.next().as_str() {
                "" => return Ok(()),
                "package" => pkg = t.next(),
                "import" => {
                    if t.peek() == "(" {
                        while !matches!(t.next().as_str(), ")" | "") {}
                    } else {
                        while !matches!(t.next().as_str(), ";" | "") {}
                    }
                }
                "func" => {
                    // Methods live in the oracle's Go code only: skip to the closing brace.
                    let mut depth = 0;
                    loop {
                        match t.next().as_str() {
                            "{" => depth += 1,
                            "}" => {
                                depth -= 1;
                                if depth == 0 {
                                    break;
                                }
                            }
                            "" => return Err(t.err("unterminated func")),
                            _ => {}
                        }
                    }
                }
                "type" => {
                    let name = t.next();
                    let full = if name.contains('.') || pkg.is_empty() {
                        name
                    } else {
                        format!("{pkg}.{name}")
                    };
                    if t.peek() == "=" {
                        t.next();
                    }
                    if t.peek() == "struct" {
                        t.next();
                        if t.next() != "{" {
                            return Err(t.err("expected {"));
                        }
                        let fields = parse_fields(&mut t, &pkg)?;
                        self.decls.insert(full, Decl::Struct(fields));
                    } else {
                        let ty = parse_type(&mut t, &pkg)?;
                        self.decls.insert(full, Decl::Alias(ty));
                    }
                }
                other => return Err(t.err(format!("unexpected {other:?}"))),
            }
        }
    }

    /// Decode `json` as a value of the declared type `name` (a pointer to
    /// it if `ptr`), as `json.Unmarshal` would.
    pub fn decode(&self, name: &str, ptr: bool, json: &serde_json::Value) -> Value {
        let t = Type::Named(name.to_string());
        if ptr {
            self.value(&Type::Ptr(Box::new(t)), Some(json))
        } else {
            self.value(&t, Some(json))
        }
    }

    fn type_name(&self, t: &Type) -> String {
        match t {
            Type::Basic(b) => b.to_string(),
            Type::Any => IFACE.into(),
            Type::Ptr(t) => format!("*{}", self.type_name(t)),
            Type::Slice(t) => format!("[]{}", self.type_name(t)),
            Type::Map(k, v) => format!("map[{}]{}", self.type_name(k), self.type_name(v)),
            Type::EmptyStruct => "struct {}".into(),
            Type::Named(n) => n.clone(),
        }
    }

    /// The value of type `t` decoded from `json` (absent or null → zero).
    fn value(&self, t: &Type, json: Option<&serde_json::Value>) -> Value {
        use serde_json::Value as J;
        let json = json.filter(|j| !j.is_null());
        match t {
            Type::Any => match json {
                None => Value::Nil(IFACE.into()),
                Some(j) => any_value(j),
            },
            Type::Basic(b) => basic(b, json),
            Type::Ptr(inner) => match json {
                None => Value::Nil(self.type_name(t).into()),
                Some(j) => match self.value(inner, Some(j)) {
                    Value::Struct(s) => {
                        let mut s = Rc::try_unwrap(s).unwrap_or_else(|s| clone_struct(&s));
                        s.ptr = true;
                        Value::Struct(Rc::new(s))
                    }
                    // Pointers to non-structs print their target here.
                    other => other,
                },
            },
            Type::Slice(elem) => {
                let items = match json {
                    Some(J::Array(a)) => Some(a.iter().map(|j| self.value(elem, Some(j))).collect()),
                    _ => None,
                };
                Value::List(Rc::new(List {
                    elem: self.type_name(elem).into(),
                    nil: items.is_none(),
                    items: items.unwrap_or_default(),
                }))
            }
            Type::Map(k, v) => {
                let entries = match json {
                    Some(J::Object(o)) => {
                        Some(o.iter().map(|(key, j)| (key.clone(), self.value(v, Some(j)))).collect())
                    }
                    _ => None,
                };
                Value::Map(Rc::new(Map {
                    key: self.type_name(k).into(),
                    elem: self.type_name(v).into(),
                    nil: entries.is_none(),
                    entries: entries.unwrap_or_default(),
                }))
            }
            Type::EmptyStruct => Value::Struct(Rc::new(Struct::new("struct {}", false, Vec::new()))),
            Type::Named(n) => match self.decls.get(n) {
                None => basic(
                    if BASIC.contains(&n.as_str()) {
                        leak_basic(n)
                    } else {
                        "string"
                    },
                    json,
                ),
                Some(Decl::Alias(under)) => match self.value(under, json) {
                    Value::Str(s, _) => Value::Str(s, Some(n.as_str().into())),
                    other => other,
                },
                Some(Decl::Struct(fields)) => {
                    let obj = match json {
                        Some(J::Object(o)) => Some(o),
                        _ => None,
                    };
                    Value::Struct(Rc::new(Struct::new(n, false, self.fields(fields, obj))))
                }
            },
        }
    }

    fn fields(&self, decls: &[FieldDecl], obj: Option<&serde_json::Map<String, serde_json::Value>>) -> Vec<Field> {
        let mut out = Vec::new();
        for d in decls {
            let j = d.json.as_deref().and_then(|name| {
                let o = obj?;
                o.get(name)
                    .or_else(|| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
            });
            let value = if d.embedded {
                // An embedded struct reads the same object.
                let inner = match &d.typ {
                    Type::Ptr(t) => t,
                    t => t,
                };
                let v = self.value(inner, obj.map(|o| serde_json::Value::Object(o.clone())).as_ref());
                match (&d.typ, v) {
                    (Type::Ptr(_), Value::Struct(s)) => {
                        let mut s = clone_struct(&s);
                        s.ptr = true;
                        Value::Struct(Rc::new(s))
                    }
                    (_, v) => v,
                }
            } else {
                self.value(&d.typ, j)
            };
            out.push(Field {
                name: d.name.as_str().into(),
                json: if d.embedded {
                    None
                } else {
                    d.json.as_deref().map(Into::into)
                },
                omitempty: d.omitempty,
                embedded: d.embedded,
                value,
            });
        }
        out
    }
}

fn clone_struct(s: &Struct) -> Struct {
    Struct {
        type_name: s.type_name.clone(),
        ptr: s.ptr,
        fields: s.fields.clone(),
        methods: s.methods.clone(),
        json: s.json.clone(),
    }
}

fn leak_basic(n: &str) -> &'static str {
    BASIC.iter().find(|b| **b == n).copied().unwrap_or("string")
}

fn basic(b: &'static str, json: Option<&serde_json::Value>) -> Value {
    use serde_json::Value as J;
    match b {
        "string" => Value::str(json.and_then(J::as_str).unwrap_or("")),
        "bool" => Value::Bool(json.and_then(J::as_bool).unwrap_or(false)),
        "float64" | "float32" => Value::Float(json.and_then(J::as_f64).unwrap_or(0.0)),
        t if t.starts_with("uint") || t == "byte" => Value::Uint(json.and_then(J::as_u64).unwrap_or(0), b),
        _ => Value::Int(
            json.and_then(|j| j.as_i64().or_else(|| j.as_f64().map(|f| f as i64)))
                .unwrap_or(0),
            b,
        ),
    }
}

/// JSON into `interface {}` as `json.Unmarshal` does (numbers are float64).
fn any_value(j: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match j {
        J::Null => Value::Nil(IFACE.into()),
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => Value::Float(n.as_f64().unwrap_or(0.0)),
        J::String(s) => Value::str(s.as_str()),
        J::Array(a) => Value::List(Rc::new(List {
            elem: IFACE.into(),
            items: a.iter().map(any_value).collect(),
            nil: false,
        })),
        J::Object(o) => Value::Map(Rc::new(Map {
            key: "string".into(),
            elem: IFACE.into(),
            entries: o.iter().map(|(k, v)| (k.clone(), any_value(v))).collect(),
            nil: false,
        })),
    }
}

fn qualify(name: &str, pkg: &str) -> String {
    if BASIC.contains(&name) || name.contains('.') || pkg.is_empty() {
        name.to_string()
    } else {
        format!("{pkg}.{name}")
    }
}

fn parse_type(t: &mut Toks, pkg: &str) -> Result<Type, SchemaError> {
    let tok = t.next();
    Ok(match tok.as_str() {
        "*" => Type::Ptr(Box::new(parse_type(t, pkg)?)),
        "[" => {
            if t.next() != "]" {
                return Err(t.err("arrays are not supported"));
            }
            Type::Slice(Box::new(parse_type(t, pkg)?))
        }
        "map" => {
            if t.next() != "[" {
                return Err(t.err("expected ["));
            }
            let k = parse_type(t, pkg)?;
            if t.next() != "]" {
                return Err(t.err("expected ]"));
            }
            Type::Map(Box::new(k), Box::new(parse_type(t, pkg)?))
        }
        "any" => Type::Any,
        "interface" => {
            if t.next() != "{" || t.next() != "}" {
                return Err(t.err("only interface{} is supported"));
            }
            Type::Any
        }
        "struct" => {
            if t.next() != "{" || t.next() != "}" {
                return Err(t.err("only struct{} is supported inline"));
            }
            Type::EmptyStruct
        }
        b if BASIC.contains(&b) => Type::Basic(leak_basic(b)),
        "" => return Err(t.err("expected a type")),
        name => Type::Named(qualify(name, pkg)),
    })
}

fn parse_fields(t: &mut Toks, pkg: &str) -> Result<Vec<FieldDecl>, SchemaError> {
    let mut fields = Vec::new();
    loop {
        t.skip_semis();
        if t.peek() == "}" {
            t.next();
            return Ok(fields);
        }
        if t.peek().is_empty() {
            return Err(t.err("unterminated struct"));
        }
        // Embedded: `*Name` or `Name` alone on the line.
        let start = t.i;
        let first = t.next();
        let embedded = first == "*" || matches!(t.peek(), ";" | "`" | "}") || t.peek().starts_with('`');
        let (name, typ) = if embedded {
            t.i = start;
            let typ = parse_type(t, pkg)?;
            let n = match &typ {
                Type::Ptr(inner) => match &**inner {
                    Type::Named(n) => n.clone(),
                    _ => return Err(t.err("bad embedded field")),
                },
                Type::Named(n) => n.clone(),
                _ => return Err(t.err("bad embedded field")),
            };
            (n.rsplit('.').next().unwrap_or(&n).to_string(), typ)
        } else {
            (first, parse_type(t, pkg)?)
        };
        let mut json = Some(name.clone());
        let mut omitempty = false;
        if t.peek().starts_with('`') {
            let tag = t.next();
            if let Some(i) = tag.find("json:\"") {
                let rest = &tag[i + 6..];
                let val = &rest[..rest.find('"').unwrap_or(rest.len())];
                let mut parts = val.split(',');
                match parts.next() {
                    Some("-") => json = None,
                    Some("") | None => {}
                    Some(n) => json = Some(n.to_string()),
                }
                omitempty = parts.any(|p| p == "omitempty");
            }
        }
        let exported = name.chars().next().is_some_and(|c| c.is_uppercase());
        if !exported {
            json = None;
        }
        fields.push(FieldDecl {
            name,
            typ,
            json,
            omitempty,
            embedded,
        });
    }
}
