//! serde over the located YAML tree: the typed model is filled by
//! `#[derive(Deserialize)]`, and every error comes back with the file, line
//! and dotted path of the value that caused it, worded "expected …, got …".
//!
//! Scalars are read leniently where compose is (a `"true"` string for a
//! boolean, `8080` for a string) because interpolation makes strings of
//! everything. `x-` keys are skipped in structs: they are extensions.

use std::fmt;

use serde::de::{self, DeserializeOwned, IntoDeserializer, Unexpected, Visitor};
use serde::forward_to_deserialize_any;

use crate::error::{ComposeError, Loc};
use crate::yaml::{resolve_plain, Key, Node, Resolved, Value};

/// A deserialization error, located by the node that raised it.
#[derive(Debug)]
pub struct DeError {
    message: String,
    loc: Option<Loc>,
    path: Option<String>,
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

fn unexpected(u: &Unexpected) -> String {
    match u {
        Unexpected::Map => "a mapping".into(),
        Unexpected::Seq => "a list".into(),
        Unexpected::Str(s) => format!("string {s:?}"),
        Unexpected::Signed(i) => format!("number {i}"),
        Unexpected::Unsigned(i) => format!("number {i}"),
        Unexpected::Float(f) => format!("number {f}"),
        Unexpected::Bool(b) => format!("boolean {b}"),
        Unexpected::Unit | Unexpected::Option => "null".into(),
        other => other.to_string(),
    }
}

/// What was expected, in a user's words: serde names primitive types as
/// Rust spells them (`u64`, `f64`).
fn expected(exp: &dyn de::Expected) -> String {
    match exp.to_string().as_str() {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number (0 or more)".into(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        other => other.to_string(),
    }
}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            message: msg.to_string(),
            loc: None,
            path: None,
        }
    }

    fn invalid_type(unexp: Unexpected, exp: &dyn de::Expected) -> Self {
        Self::custom(format!("expected {}, got {}", expected(exp), unexpected(&unexp)))
    }

    fn invalid_value(unexp: Unexpected, exp: &dyn de::Expected) -> Self {
        Self::custom(format!("expected {}, got {}", expected(exp), unexpected(&unexp)))
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        let hint = closest(field, expected)
            .map(|s| format!(" (did you mean {s:?}?)"))
            .unwrap_or_default();
        Self::custom(format!("unknown key {field:?}{hint}"))
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        Self::custom(format!("expected one of {}, got {variant:?}", expected.join(", ")))
    }

    fn missing_field(field: &'static str) -> Self {
        Self::custom(format!("missing required key {field:?}"))
    }
}

/// The known key nearest to a misspelt one (edit distance ≤ 2).
fn closest<'a>(field: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (distance(field, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| k)
}

fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

fn locate(mut e: DeError, loc: &Loc, path: &str) -> DeError {
    if e.loc.is_none() {
        e.loc = Some(loc.clone());
        e.path = Some(path.to_string());
    }
    e
}

/// Deserialize `T` from `node` (at `path`), with located errors.
pub fn from_node<T: DeserializeOwned>(node: &Node, path: &str) -> Result<T, ComposeError> {
    T::deserialize(NodeDe {
        node,
        path: path.to_string(),
    })
    .map_err(|e| ComposeError::Invalid {
        loc: e.loc,
        path: e.path.unwrap_or_else(|| path.to_string()),
        message: e.message,
    })
}

struct NodeDe<'a> {
    node: &'a Node,
    path: String,
}

impl<'a> NodeDe<'a> {
    fn text(&self) -> Option<&'a str> {
        match &self.node.value {
            Value::Scalar { text, .. } if !self.node.is_null() => Some(text),
            _ => None,
        }
    }

    fn any<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let loc = &self.node.loc;
        let r = match &self.node.value {
            Value::Null => visitor.visit_unit(),
            Value::Scalar { text, quoted: true } => visitor.visit_str(text),
            Value::Scalar { text, quoted: false } => match resolve_plain(text) {
                Resolved::Null => visitor.visit_unit(),
                Resolved::Bool(b) => visitor.visit_bool(b),
                Resolved::Int(i) => visitor.visit_i64(i),
                Resolved::Float(f) => visitor.visit_f64(f),
                Resolved::Str(s) => visitor.visit_str(s),
            },
            Value::Seq(items) => visitor.visit_seq(SeqDe {
                items: items.iter(),
                index: 0,
                path: &self.path,
            }),
            Value::Map(entries) => visitor.visit_map(MapDe::new(entries, &self.path, false)),
        };
        r.map_err(|e| locate(e, loc, &self.path))
    }
}

macro_rules! lenient_number {
    ($($method:ident => $visit:ident: $ty:ty),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            if let Some(v) = self.text().and_then(|t| t.trim().parse::<$ty>().ok()) {
                let (loc, path) = (self.node.loc.clone(), self.path.clone());
                return visitor.$visit(v).map_err(|e| locate(e, &loc, &path));
            }
            self.any(visitor)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for NodeDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.any(visitor)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let b = match self.text().map(str::trim) {
            Some("true" | "True" | "TRUE") => Some(true),
            Some("false" | "False" | "FALSE") => Some(false),
            _ => None,
        };
        match b {
            Some(b) => {
                let (loc, path) = (self.node.loc.clone(), self.path.clone());
                visitor.visit_bool(b).map_err(|e| locate(e, &loc, &path))
            }
            None => self.any(visitor),
        }
    }

    lenient_number! {
        deserialize_i8 => visit_i64: i64,
        deserialize_i16 => visit_i64: i64,
        deserialize_i32 => visit_i64: i64,
        deserialize_i64 => visit_i64: i64,
        deserialize_u8 => visit_u64: u64,
        deserialize_u16 => visit_u64: u64,
        deserialize_u32 => visit_u64: u64,
        deserialize_u64 => visit_u64: u64,
        deserialize_f32 => visit_f64: f64,
        deserialize_f64 => visit_f64: f64,
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.text() {
            Some(t) => {
                let (loc, path) = (self.node.loc.clone(), self.path.clone());
                visitor.visit_str(t).map_err(|e| locate(e, &loc, &path))
            }
            None => self.any(visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            let (loc, path) = (self.node.loc.clone(), self.path.clone());
            return visitor
                .visit_seq(SeqDe {
                    items: [].iter(),
                    index: 0,
                    path: &path,
                })
                .map_err(|e| locate(e, &loc, &path));
        }
        self.any(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            let (loc, path) = (self.node.loc.clone(), self.path.clone());
            return visitor
                .visit_map(MapDe::new(&[], &path, false))
                .map_err(|e| locate(e, &loc, &path));
        }
        self.any(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let loc = self.node.loc.clone();
        let r = match &self.node.value {
            Value::Map(entries) => visitor.visit_map(MapDe::new(entries, &self.path, true)),
            _ if self.node.is_null() => visitor.visit_map(MapDe::new(&[], &self.path, true)),
            _ => return self.any(visitor),
        };
        r.map_err(|e| locate(e, &loc, &self.path))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self.text() {
            Some(t) => {
                let (loc, path) = (self.node.loc.clone(), self.path.clone());
                let d: de::value::StrDeserializer<'_, DeError> = t.into_deserializer();
                visitor.visit_enum(d).map_err(|e| locate(e, &loc, &path))
            }
            None => self.any(visitor),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    forward_to_deserialize_any! {
        char bytes byte_buf unit unit_struct tuple tuple_struct i128 u128
    }
}

struct SeqDe<'a, 'p> {
    items: std::slice::Iter<'a, Node>,
    index: usize,
    path: &'p str,
}

impl<'de> de::SeqAccess<'de> for SeqDe<'_, '_> {
    type Error = DeError;

    fn next_element_seed<T: de::DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, DeError> {
        let Some(node) = self.items.next() else {
            return Ok(None);
        };
        let path = format!("{}[{}]", self.path, self.index);
        self.index += 1;
        seed.deserialize(NodeDe { node, path }).map(Some)
    }
}

struct MapDe<'a, 'p> {
    entries: std::slice::Iter<'a, (Key, Node)>,
    value: Option<&'a Node>,
    key: Option<&'a Key>,
    path: &'p str,
    skip_extensions: bool,
}

impl<'a, 'p> MapDe<'a, 'p> {
    fn new(entries: &'a [(Key, Node)], path: &'p str, skip_extensions: bool) -> Self {
        MapDe {
            entries: entries.iter(),
            value: None,
            key: None,
            path,
            skip_extensions,
        }
    }
}

impl<'de> de::MapAccess<'de> for MapDe<'_, '_> {
    type Error = DeError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, DeError> {
        for (key, value) in self.entries.by_ref() {
            if self.skip_extensions && key.name.starts_with("x-") {
                continue;
            }
            self.value = Some(value);
            self.key = Some(key);
            let d: de::value::StrDeserializer<'_, DeError> = key.name.as_str().into_deserializer();
            return seed
                .deserialize(d)
                .map(Some)
                .map_err(|e| locate(e, &key.loc, self.path_or_root()));
        }
        Ok(None)
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let node = self.value.take().expect("value after key");
        let key = self.key.take().expect("key before value");
        let path = if self.path.is_empty() {
            key.name.clone()
        } else {
            format!("{}.{}", self.path, key.name)
        };
        seed.deserialize(NodeDe { node, path })
    }
}

impl MapDe<'_, '_> {
    fn path_or_root(&self) -> &str {
        if self.path.is_empty() {
            "(root)"
        } else {
            self.path
        }
    }
}
