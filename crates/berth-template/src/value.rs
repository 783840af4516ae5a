//! The data a template runs on: a small model of Go values, enough to give
//! Go's answers for printing, truth, comparison, field lookup and errors.
//! It never guesses a Go type it was not told: a JSON object becomes a
//! `map[string]interface {}` unless a [`crate::schema`] says it is a struct.

use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;

/// Go's `interface {}` type name, the element type of decoded JSON.
pub const IFACE: &str = "interface {}";

/// A Go value as the template engine sees it.
#[derive(Clone)]
pub enum Value {
    /// The invalid `reflect.Value`: a missing map key, an untyped nil
    /// (prints `<no value>`).
    NoValue,
    /// A nil pointer or nil interface of the named type (`*types.Health`,
    /// `interface {}`); prints `<nil>`.
    Nil(Rc<str>),
    /// Go `bool`.
    Bool(bool),
    /// A signed integer; the name is its Go type (`int`, `int64`, `int32` for runes).
    Int(i64, &'static str),
    /// An unsigned integer (`uint64`, `uint16`, …).
    Uint(u64, &'static str),
    /// Go `float64`.
    Float(f64),
    /// A string; `None` type means plain `string`, else a named string type
    /// (`nat.Port`, `json.Number`).
    Str(Rc<str>, Option<Rc<str>>),
    /// A slice.
    List(Rc<List>),
    /// A map with string keys.
    Map(Rc<Map>),
    /// A struct (or a pointer to one).
    Struct(Rc<Struct>),
    /// A function value (for `call`).
    Func(Rc<Func>),
}

/// A Go slice.
pub struct List {
    /// Go type of the elements (`string`, `interface {}`).
    pub elem: Rc<str>,
    /// The elements.
    pub items: Vec<Value>,
    /// A nil slice (prints `[]`, marshals as `null`).
    pub nil: bool,
}

/// A Go map with string keys (Go prints and ranges over them sorted).
pub struct Map {
    /// Go type of the keys (`string`, `nat.Port`).
    pub key: Rc<str>,
    /// Go type of the values.
    pub elem: Rc<str>,
    /// The entries, sorted as Go's fmt and range sort them.
    pub entries: BTreeMap<String, Value>,
    /// A nil map (prints `map[]`, marshals as `null`).
    pub nil: bool,
}

/// One field of a struct.
#[derive(Clone)]
pub struct Field {
    /// The Go field name templates use (`ID`).
    pub name: Rc<str>,
    /// Its JSON name (`Id`); `None` when `json:"-"`.
    pub json: Option<Rc<str>>,
    /// `omitempty`.
    pub omitempty: bool,
    /// An embedded struct: its fields are promoted for lookup and JSON.
    pub embedded: bool,
    /// The value.
    pub value: Value,
}

/// A Go struct value, or a pointer to one.
pub struct Struct {
    /// Go type name without the pointer star (`types.ContainerState`).
    pub type_name: Rc<str>,
    /// Reached through a pointer: errors say `*T`, `print` says `&{…}`.
    pub ptr: bool,
    /// Fields in declaration order.
    pub fields: Vec<Field>,
    /// Methods (Docker's `.Label "k"`, the formatter contexts' getters).
    pub methods: Vec<Rc<Func>>,
    /// A `MarshalJSON` result, when the type has its own.
    pub json: Option<serde_json::Value>,
}

/// What a function or method parameter accepts (Go's static type).
#[derive(Clone, Debug, PartialEq)]
pub enum Param {
    /// `interface {}`: anything.
    Any,
    /// `reflect.Value`: anything, even no value (the builtins).
    Reflect,
    /// `string`.
    String,
    /// `int`.
    Int,
    /// `bool`.
    Bool,
    /// `float64`.
    Float,
    /// `[]string`.
    StringSlice,
}

impl Param {
    /// Go's spelling of the type.
    pub fn go_type(&self) -> &'static str {
        match self {
            Param::Any => IFACE,
            Param::Reflect => "reflect.Value",
            Param::String => "string",
            Param::Int => "int",
            Param::Bool => "bool",
            Param::Float => "float64",
            Param::StringSlice => "[]string",
        }
    }
}

/// The body of a function: arguments already checked against the signature.
pub type FuncBody = dyn Fn(&[Value]) -> Result<Value, String>;

/// A function or method: a name, Go's signature, and a body.
pub struct Func {
    /// Name used in error messages.
    pub name: Rc<str>,
    /// Fixed parameters.
    pub params: Vec<Param>,
    /// The `...T` parameter, if any.
    pub variadic: Option<Param>,
    /// The body.
    pub body: Box<FuncBody>,
}

impl Func {
    /// A function named `name` with signature `params` (+ `variadic`).
    pub fn new(
        name: &str,
        params: Vec<Param>,
        variadic: Option<Param>,
        body: impl Fn(&[Value]) -> Result<Value, String> + 'static,
    ) -> Rc<Func> {
        Rc::new(Func {
            name: name.into(),
            params,
            variadic,
            body: Box::new(body),
        })
    }

    /// Go's type string, e.g. `func(string, int) string`.
    pub fn go_type(&self) -> String {
        let mut p: Vec<String> = self.params.iter().map(|p| p.go_type().to_string()).collect();
        if let Some(v) = &self.variadic {
            p.push(format!("...{}", v.go_type()));
        }
        format!("func({})", p.join(", "))
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}({})",
            self.type_name(),
            crate::gofmt::sprint(std::slice::from_ref(self))
        )
    }
}

impl Value {
    /// A plain Go `string`.
    pub fn str(s: impl Into<Rc<str>>) -> Value {
        Value::Str(s.into(), None)
    }

    /// A Go `int`.
    pub fn int(i: i64) -> Value {
        Value::Int(i, "int")
    }

    /// A `[]string`.
    pub fn strings<S: AsRef<str>>(items: &[S]) -> Value {
        Value::List(Rc::new(List {
            elem: "string".into(),
            items: items.iter().map(|s| Value::str(s.as_ref())).collect(),
            nil: false,
        }))
    }

    /// A `map[string]string`.
    pub fn string_map<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> Value {
        Value::Map(Rc::new(Map {
            key: "string".into(),
            elem: "string".into(),
            entries: entries
                .into_iter()
                .map(|(k, v)| (k.to_string(), Value::str(v)))
                .collect(),
            nil: false,
        }))
    }

    /// Go's `%T` of the value.
    pub fn type_name(&self) -> String {
        match self {
            Value::NoValue => "<nil>".into(),
            Value::Nil(t) => t.to_string(),
            Value::Bool(_) => "bool".into(),
            Value::Int(_, t) | Value::Uint(_, t) => t.to_string(),
            Value::Float(_) => "float64".into(),
            Value::Str(_, t) => t.as_deref().unwrap_or("string").to_string(),
            Value::List(l) => format!("[]{}", l.elem),
            Value::Map(m) => format!("map[{}]{}", m.key, m.elem),
            Value::Struct(s) => {
                if s.ptr {
                    format!("*{}", s.type_name)
                } else {
                    s.type_name.to_string()
                }
            }
            Value::Func(f) => f.go_type(),
        }
    }

    /// Go's truth for `if`, `with`, `and`, `or`, `not`.
    pub fn truth(&self) -> bool {
        match self {
            Value::NoValue | Value::Nil(_) => false,
            Value::Bool(b) => *b,
            Value::Int(i, _) => *i != 0,
            Value::Uint(u, _) => *u != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s, _) => !s.is_empty(),
            Value::List(l) => !l.items.is_empty(),
            Value::Map(m) => !m.entries.is_empty(),
            Value::Struct(_) | Value::Func(_) => true,
        }
    }

    /// A nil interface read from a slot (`map[string]interface {}` value,
    /// `interface {}` field): Go's pipeline turns it into no value.
    pub fn unwrap_iface(self) -> Value {
        match &self {
            Value::Nil(t) if &**t == IFACE => Value::NoValue,
            _ => self,
        }
    }

    /// Decode JSON the way `json.Decoder` with `UseNumber` fills an
    /// `interface {}`: objects become `map[string]interface {}`, arrays
    /// `[]interface {}`, numbers `json.Number` (Docker's raw inspect data).
    pub fn from_json(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Nil(IFACE.into()),
            serde_json::Value::Bool(b) => Value::Bool(*b),
            // The text a Go encoder (Docker's daemon) would have sent.
            serde_json::Value::Number(n) => {
                let text = match (n.as_i64(), n.as_u64(), n.as_f64()) {
                    (Some(i), _, _) => i.to_string(),
                    (_, Some(u), _) => u.to_string(),
                    (_, _, Some(f)) => crate::funcs::json_float(f),
                    _ => n.to_string(),
                };
                Value::Str(text.into(), Some("json.Number".into()))
            }
            serde_json::Value::String(s) => Value::str(s.as_str()),
            serde_json::Value::Array(a) => Value::List(Rc::new(List {
                elem: IFACE.into(),
                items: a.iter().map(Value::from_json).collect(),
                nil: false,
            })),
            serde_json::Value::Object(o) => Value::Map(Rc::new(Map {
                key: "string".into(),
                elem: IFACE.into(),
                entries: o.iter().map(|(k, v)| (k.clone(), Value::from_json(v))).collect(),
                nil: false,
            })),
        }
    }

    /// The value as JSON, the way Go's `encoding/json` marshals it (struct
    /// fields in declaration order with their JSON names, maps sorted).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::NoValue | Value::Nil(_) | Value::Func(_) => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i, _) => J::from(*i),
            Value::Uint(u, _) => J::from(*u),
            Value::Float(f) => serde_json::Number::from_f64(*f).map(J::Number).unwrap_or(J::Null),
            Value::Str(s, t) if t.as_deref() == Some("json.Number") => {
                serde_json::from_str(s).unwrap_or_else(|_| J::String(s.to_string()))
            }
            Value::Str(s, _) => J::String(s.to_string()),
            Value::List(l) if l.nil => J::Null,
            Value::List(l) => J::Array(l.items.iter().map(Value::to_json).collect()),
            Value::Map(m) if m.nil => J::Null,
            Value::Map(m) => {
                // Go sorts map keys; build the object in that order.
                let mut o = serde_json::Map::new();
                for (k, v) in &m.entries {
                    o.insert(k.clone(), v.to_json());
                }
                J::Object(o)
            }
            Value::Struct(s) => {
                if let Some(j) = &s.json {
                    return j.clone();
                }
                let mut o = serde_json::Map::new();
                for f in &s.fields {
                    if f.embedded {
                        if let J::Object(inner) = f.value.to_json() {
                            o.extend(inner);
                        }
                        continue;
                    }
                    let Some(name) = &f.json else { continue };
                    if f.omitempty && f.value.is_empty_for_json() {
                        continue;
                    }
                    o.insert(name.to_string(), f.value.to_json());
                }
                J::Object(o)
            }
        }
    }

    /// `omitempty`'s test: false, 0, nil, empty string/slice/map.
    fn is_empty_for_json(&self) -> bool {
        match self {
            Value::Struct(_) => false,
            other => !other.truth(),
        }
    }

    /// Length for `len` and slicing, if the kind has one (strings in bytes).
    pub fn len(&self) -> Option<usize> {
        match self {
            Value::Str(s, _) => Some(s.len()),
            Value::List(l) => Some(l.items.len()),
            Value::Map(m) => Some(m.entries.len()),
            _ => None,
        }
    }

    /// Whether `len` is zero (or the value has no length).
    pub fn is_empty(&self) -> bool {
        self.len().unwrap_or(0) == 0
    }
}

impl Struct {
    /// A struct value named `type_name` (pointer if `ptr`) with `fields`.
    pub fn new(type_name: &str, ptr: bool, fields: Vec<Field>) -> Struct {
        Struct {
            type_name: type_name.into(),
            ptr,
            fields,
            methods: Vec::new(),
            json: None,
        }
    }

    /// The field called `name`, directly or promoted from an embedded struct.
    pub fn field(&self, name: &str) -> Option<&Field> {
        if let Some(f) = self.fields.iter().find(|f| &*f.name == name) {
            return Some(f);
        }
        self.fields.iter().filter(|f| f.embedded).find_map(|f| match &f.value {
            Value::Struct(s) => s.field(name),
            _ => None,
        })
    }

    /// The method called `name`.
    pub fn method(&self, name: &str) -> Option<&Rc<Func>> {
        self.methods.iter().find(|m| &*m.name == name)
    }
}

impl Field {
    /// A field whose JSON name is its Go name.
    pub fn new(name: &str, value: Value) -> Field {
        Field {
            name: name.into(),
            json: Some(name.into()),
            omitempty: false,
            embedded: false,
            value,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::str(s)
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::str(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::int(i)
    }
}
