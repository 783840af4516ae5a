//! A YAML tree that remembers where every value came from (file, line,
//! column), built from `saphyr-parser`'s event stream: anchors and aliases
//! are resolved, `<<` merge keys applied, `!reset`/`!override` tags kept.
//! Also the writer of compose's canonical YAML (the layout of Go's yaml.v3,
//! which `docker compose config` prints).
//!
//! serde alone cannot report `file:line` for a value, which is why compose
//! files are read through this tree and not straight into structs. This
//! module never interprets compose keys: it only knows YAML.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::error::{ComposeError, Loc};

/// Most nodes a document may expand to through aliases: a guard against
/// "billion laughs" files, far above any real compose file.
const MAX_NODES: usize = 1_000_000;

/// One YAML value and where it was written.
#[derive(Clone, Debug)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Where the value starts.
    pub loc: Loc,
    /// A local tag such as `!reset` or `!override` (without the `!`).
    pub tag: Option<String>,
}

/// The shapes a YAML value takes.
#[derive(Clone, Debug)]
pub enum Value {
    /// `null`, `~` or nothing.
    Null,
    /// A scalar.
    Scalar {
        /// The text as written (escapes resolved).
        text: String,
        /// Written in quotes or as a block: always a string.
        quoted: bool,
    },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in the order written; keys are strings.
    Map(Vec<(Key, Node)>),
}

/// A mapping key and where it was written.
#[derive(Clone, Debug)]
pub struct Key {
    /// The key's text.
    pub name: String,
    /// Where the key is.
    pub loc: Loc,
}

/// What a plain scalar means under YAML 1.2's core schema.
#[derive(Clone, Debug, PartialEq)]
pub enum Resolved<'a> {
    /// `null`, `~`, empty.
    Null,
    /// `true`/`false` in their three spellings.
    Bool(bool),
    /// An integer (decimal, `0x`, `0o`).
    Int(i64),
    /// A float, `.inf`, `.nan`.
    Float(f64),
    /// Anything else.
    Str(&'a str),
}

/// Resolve plain scalar text the way YAML 1.2's core schema does.
pub fn resolve_plain(text: &str) -> Resolved<'_> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Resolved::Null,
        "true" | "True" | "TRUE" => return Resolved::Bool(true),
        "false" | "False" | "FALSE" => return Resolved::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Resolved::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Resolved::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Resolved::Float(f64::NAN),
        _ => {}
    }
    if let Some(hex) = text.strip_prefix("0x") {
        if let Ok(v) = i64::from_str_radix(hex, 16) {
            return Resolved::Int(v);
        }
    }
    if let Some(oct) = text.strip_prefix("0o") {
        if let Ok(v) = i64::from_str_radix(oct, 8) {
            return Resolved::Int(v);
        }
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(v) = text.parse::<i64>() {
            return Resolved::Int(v);
        }
    }
    if looks_like_float(digits) {
        if let Ok(v) = text.parse::<f64>() {
            return Resolved::Float(v);
        }
    }
    Resolved::Str(text)
}

/// `[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?` or with digits before the dot.
fn looks_like_float(s: &str) -> bool {
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let ok_mantissa = {
        let mut parts = mantissa.splitn(2, '.');
        let a = parts.next().unwrap_or("");
        let b = parts.next();
        let digits = |x: &str| x.bytes().all(|c| c.is_ascii_digit());
        match b {
            Some(b) => digits(a) && digits(b) && !(a.is_empty() && b.is_empty()),
            None => !a.is_empty() && digits(a) && exp.is_some(),
        }
    };
    let ok_exp = match exp {
        None => true,
        Some(e) => {
            let e = e.strip_prefix(['-', '+']).unwrap_or(e);
            !e.is_empty() && e.bytes().all(|c| c.is_ascii_digit())
        }
    };
    ok_mantissa && ok_exp
}

impl Node {
    /// A node made by berth (defaults, canonical forms) at `loc`.
    pub fn new(value: Value, loc: &Loc) -> Node {
        Node {
            value,
            loc: loc.clone(),
            tag: None,
        }
    }

    /// A string scalar (always a string, whatever its text).
    pub fn string(text: impl Into<String>, loc: &Loc) -> Node {
        Node::new(
            Value::Scalar {
                text: text.into(),
                quoted: true,
            },
            loc,
        )
    }

    /// A plain scalar (resolved as YAML would: number, bool, …).
    pub fn plain(text: impl Into<String>, loc: &Loc) -> Node {
        Node::new(
            Value::Scalar {
                text: text.into(),
                quoted: false,
            },
            loc,
        )
    }

    /// An empty mapping.
    pub fn map(loc: &Loc) -> Node {
        Node::new(Value::Map(Vec::new()), loc)
    }

    /// Whether this is `null`.
    pub fn is_null(&self) -> bool {
        match &self.value {
            Value::Null => true,
            Value::Scalar { text, quoted } => !quoted && resolve_plain(text) == Resolved::Null,
            _ => false,
        }
    }

    /// The text of a scalar that is not null (numbers and bools as written).
    pub fn as_scalar(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } if !self.is_null() => Some(text),
            _ => None,
        }
    }

    /// The entries of a mapping.
    pub fn as_map(&self) -> Option<&Vec<(Key, Node)>> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The entries of a mapping, to change.
    pub fn as_map_mut(&mut self) -> Option<&mut Vec<(Key, Node)>> {
        match &mut self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The items of a sequence.
    pub fn as_seq(&self) -> Option<&Vec<Node>> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// The value at `key` of a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?.iter().find(|(k, _)| k.name == key).map(|(_, v)| v)
    }

    /// The value at `key` of a mapping, to change.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        self.as_map_mut()?
            .iter_mut()
            .find(|(k, _)| k.name == key)
            .map(|(_, v)| v)
    }

    /// Set `key` in a mapping (replacing it in place, or appending it).
    pub fn insert(&mut self, key: &str, value: Node) {
        let loc = value.loc.clone();
        if let Some(m) = self.as_map_mut() {
            if let Some(slot) = m.iter_mut().find(|(k, _)| k.name == key) {
                slot.1 = value;
            } else {
                m.push((
                    Key {
                        name: key.to_string(),
                        loc,
                    },
                    value,
                ));
            }
        }
    }

    /// Remove `key` from a mapping, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Node> {
        let m = self.as_map_mut()?;
        let i = m.iter().position(|(k, _)| k.name == key)?;
        Some(m.remove(i).1)
    }

    /// What kind of value this is, for messages ("a string", "a mapping").
    pub fn kind(&self) -> String {
        match &self.value {
            Value::Null => "null".into(),
            Value::Seq(_) => "a sequence".into(),
            Value::Map(_) => "a mapping".into(),
            Value::Scalar { text, quoted: true } => format!("string {text:?}"),
            Value::Scalar { text, quoted: false } => match resolve_plain(text) {
                Resolved::Null => "null".into(),
                Resolved::Bool(b) => format!("boolean {b}"),
                Resolved::Int(_) | Resolved::Float(_) => format!("number {text}"),
                Resolved::Str(s) => format!("string {s:?}"),
            },
        }
    }

    /// The node as JSON (scalars resolved), for extensions and passthrough values.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Scalar { text, quoted: true } => J::String(text.clone()),
            Value::Scalar { text, quoted: false } => match resolve_plain(text) {
                Resolved::Null => J::Null,
                Resolved::Bool(b) => J::Bool(b),
                Resolved::Int(i) => J::from(i),
                Resolved::Float(f) => serde_json::Number::from_f64(f)
                    .map(J::Number)
                    .unwrap_or_else(|| J::String(text.clone())),
                Resolved::Str(s) => J::String(s.to_string()),
            },
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(entries.iter().map(|(k, v)| (k.name.clone(), v.to_json())).collect()),
        }
    }
}

/// Parse every document of `text` (read from `file`) into trees.
pub fn parse_documents(text: &str, file: &Arc<Path>) -> Result<Vec<Node>, ComposeError> {
    let mut builder = TreeBuilder {
        file: file.clone(),
        stack: Vec::new(),
        anchors: Vec::new(),
        docs: Vec::new(),
        nodes: 0,
    };
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| {
            let m = e.marker();
            ComposeError::Yaml {
                loc: Loc::new(file, m.line(), m.col() + 1),
                message: e.info().to_string(),
            }
        })?;
        builder.event(event, span)?;
    }
    Ok(builder.docs)
}

enum Frame {
    Seq {
        node: Node,
        anchor: usize,
    },
    Map {
        node: Node,
        anchor: usize,
        pending_key: Option<Node>,
        merges: Vec<Node>,
    },
}

struct TreeBuilder {
    file: Arc<Path>,
    stack: Vec<Frame>,
    anchors: Vec<(usize, Node)>,
    docs: Vec<Node>,
    nodes: usize,
}

impl TreeBuilder {
    fn loc(&self, span: &Span) -> Loc {
        Loc::new(&self.file, span.start.line(), span.start.col() + 1)
    }

    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), ComposeError> {
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let quoted = !matches!(style, ScalarStyle::Plain);
                let mut node = Node::new(
                    Value::Scalar {
                        text: text.into_owned(),
                        quoted,
                    },
                    &self.loc(&span),
                );
                node.tag = tag.as_ref().and_then(|t| local_tag(&t.handle, &t.suffix));
                if let Some(t) = &tag {
                    // `!!str 123` is a string.
                    if t.handle == "tag:yaml.org,2002:" && t.suffix == "str" {
                        if let Value::Scalar { quoted, .. } = &mut node.value {
                            *quoted = true;
                        }
                    }
                }
                self.finish(node, anchor)?;
            }
            Event::Alias(id) => {
                let found = self.anchors.iter().rev().find(|(a, _)| *a == id);
                let Some((_, node)) = found else {
                    return Err(self.yaml_error(&span, "unknown alias"));
                };
                let mut node = node.clone();
                self.nodes += count_nodes(&node);
                if self.nodes > MAX_NODES {
                    return Err(self.yaml_error(&span, "too many nodes through aliases"));
                }
                // An alias reports where it is used.
                node.loc = self.loc(&span);
                self.finish(node, 0)?;
            }
            Event::SequenceStart(anchor, tag) => {
                let mut node = Node::new(Value::Seq(Vec::new()), &self.loc(&span));
                node.tag = tag.as_ref().and_then(|t| local_tag(&t.handle, &t.suffix));
                self.stack.push(Frame::Seq { node, anchor });
            }
            Event::MappingStart(anchor, tag) => {
                let mut node = Node::map(&self.loc(&span));
                node.tag = tag.as_ref().and_then(|t| local_tag(&t.handle, &t.suffix));
                self.stack.push(Frame::Map {
                    node,
                    anchor,
                    pending_key: None,
                    merges: Vec::new(),
                });
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq { node, anchor }) = self.stack.pop() {
                    self.finish(node, anchor)?;
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map {
                    mut node,
                    anchor,
                    merges,
                    ..
                }) = self.stack.pop()
                {
                    apply_merge_keys(&mut node, merges)?;
                    self.finish(node, anchor)?;
                }
            }
            Event::DocumentEnd | Event::DocumentStart(_) | Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
        }
        Ok(())
    }

    fn yaml_error(&self, span: &Span, message: &str) -> ComposeError {
        ComposeError::Yaml {
            loc: self.loc(span),
            message: message.to_string(),
        }
    }

    /// A complete node: remember its anchor and hand it to its parent.
    fn finish(&mut self, node: Node, anchor: usize) -> Result<(), ComposeError> {
        self.nodes += 1;
        if anchor != 0 {
            self.anchors.push((anchor, node.clone()));
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame::Seq { node: seq, .. }) => {
                if let Value::Seq(items) = &mut seq.value {
                    items.push(node);
                }
            }
            Some(Frame::Map {
                node: map,
                pending_key,
                merges,
                ..
            }) => match pending_key.take() {
                None => *pending_key = Some(node),
                Some(key) => {
                    let name = match &key.value {
                        Value::Scalar { text, .. } => text.clone(),
                        Value::Null => String::new(),
                        _ => {
                            return Err(ComposeError::Yaml {
                                loc: key.loc,
                                message: "mapping keys must be strings".into(),
                            })
                        }
                    };
                    let plain_merge = matches!(&key.value, Value::Scalar { quoted: false, .. });
                    if name == "<<" && plain_merge {
                        merges.push(node);
                        return Ok(());
                    }
                    let entries = map.as_map_mut().expect("a mapping frame holds a mapping");
                    if entries.iter().any(|(k, _)| k.name == name) {
                        return Err(ComposeError::Yaml {
                            loc: key.loc,
                            message: format!("mapping key {name:?} already defined"),
                        });
                    }
                    entries.push((Key { name, loc: key.loc }, node));
                }
            },
        }
        Ok(())
    }
}

fn local_tag(handle: &str, suffix: &str) -> Option<String> {
    (handle == "!").then(|| suffix.to_string())
}

fn count_nodes(node: &Node) -> usize {
    1 + match &node.value {
        Value::Seq(items) => items.iter().map(count_nodes).sum(),
        Value::Map(entries) => entries.iter().map(|(_, v)| count_nodes(v)).sum(),
        _ => 0,
    }
}

/// `<<: *base` or `<<: [*a, *b]`: keys of the sources that the mapping does
/// not set itself are added; with several sources the first one wins.
fn apply_merge_keys(node: &mut Node, merges: Vec<Node>) -> Result<(), ComposeError> {
    let entries = node.as_map_mut().expect("a mapping");
    for merge in merges {
        let sources: Vec<Node> = match merge.value {
            Value::Map(_) => vec![merge],
            Value::Seq(items) => items,
            _ => {
                return Err(ComposeError::Yaml {
                    loc: merge.loc,
                    message: "a merge key (<<) takes a mapping or a list of mappings".into(),
                })
            }
        };
        for source in sources {
            let loc = source.loc.clone();
            let Value::Map(source_entries) = source.value else {
                return Err(ComposeError::Yaml {
                    loc,
                    message: "a merge key (<<) takes a mapping or a list of mappings".into(),
                });
            };
            for (k, v) in source_entries {
                if !entries.iter().any(|(e, _)| e.name == k.name) {
                    entries.push((k, v));
                }
            }
        }
    }
    Ok(())
}

/// Parse JSON text (which is YAML) into a tree: how typed values come back
/// as ordered trees for the YAML writer.
pub fn from_json(text: &str) -> Node {
    let file: Arc<Path> = Arc::from(Path::new("<json>"));
    parse_documents(text, &file)
        .ok()
        .and_then(|mut d| d.pop())
        .unwrap_or_else(|| Node::new(Value::Null, &Loc::new(&file, 0, 0)))
}

/// Write a tree as YAML the way `docker compose config` does (Go yaml.v3,
/// indent 2, sequences indented under their key, maps in the given order).
pub fn to_yaml(node: &Node) -> String {
    let mut out = String::new();
    write_block(node, 0, &mut out);
    out
}

fn write_block(node: &Node, indent: usize, out: &mut String) {
    match &node.value {
        Value::Map(entries) if !entries.is_empty() => {
            for (k, v) in entries {
                pad(indent, out);
                out.push_str(&scalar_text(&k.name, true));
                out.push(':');
                write_after_key(v, indent, out);
            }
        }
        Value::Seq(items) if !items.is_empty() => {
            for item in items {
                pad(indent, out);
                out.push('-');
                write_seq_item(item, indent, out);
            }
        }
        _ => {
            out.push_str(&inline(node, indent));
            out.push('\n');
        }
    }
}

fn write_after_key(v: &Node, indent: usize, out: &mut String) {
    match &v.value {
        Value::Map(m) if !m.is_empty() => {
            out.push('\n');
            write_block(v, indent + 2, out);
        }
        Value::Seq(s) if !s.is_empty() => {
            out.push('\n');
            write_block(v, indent + 2, out);
        }
        _ => {
            out.push(' ');
            out.push_str(&inline(v, indent + 2));
            out.push('\n');
        }
    }
}

fn write_seq_item(item: &Node, indent: usize, out: &mut String) {
    match &item.value {
        Value::Map(m) if !m.is_empty() => {
            // "- key: value" then the other keys aligned under the first.
            let mut first = true;
            for (k, v) in m {
                if first {
                    out.push(' ');
                    first = false;
                } else {
                    pad(indent + 2, out);
                }
                out.push_str(&scalar_text(&k.name, true));
                out.push(':');
                write_after_key(v, indent + 2, out);
            }
        }
        Value::Seq(s) if !s.is_empty() => {
            out.push('\n');
            write_block(item, indent + 2, out);
        }
        _ => {
            out.push(' ');
            out.push_str(&inline(item, indent + 2));
            out.push('\n');
        }
    }
}

fn pad(n: usize, out: &mut String) {
    out.extend(std::iter::repeat_n(' ', n));
}

/// A scalar, or an empty collection, on one line (or a literal block).
fn inline(node: &Node, indent: usize) -> String {
    match &node.value {
        Value::Null => "null".into(),
        Value::Map(_) => "{}".into(),
        Value::Seq(_) => "[]".into(),
        Value::Scalar { text, quoted: false } => match resolve_plain(text) {
            Resolved::Str(s) => scalar_text(s, false),
            _ => text.clone(),
        },
        Value::Scalar { text, quoted: true } => {
            if text.contains('\n') && !text.contains(['\t', '\r']) && !text.starts_with(' ') {
                literal_block(text, indent)
            } else {
                scalar_text(text, false)
            }
        }
    }
}

fn literal_block(text: &str, indent: usize) -> String {
    let chomp = if text.ends_with("\n\n") {
        "+"
    } else if text.ends_with('\n') {
        ""
    } else {
        "-"
    };
    let mut s = format!("|{chomp}");
    for line in text.trim_end_matches('\n').split('\n') {
        s.push('\n');
        if !line.is_empty() {
            pad(indent, &mut s);
            s.push_str(line);
        }
    }
    s
}

/// A string, plain when YAML would read it back as the same string,
/// double-quoted otherwise.
fn scalar_text(s: &str, is_key: bool) -> String {
    if needs_quotes(s, is_key) {
        let mut q = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => q.push_str("\\\""),
                '\\' => q.push_str("\\\\"),
                '\n' => q.push_str("\\n"),
                '\t' => q.push_str("\\t"),
                '\r' => q.push_str("\\r"),
                c if (c as u32) < 0x20 || c == '\u{7f}' => {
                    let _ = write!(q, "\\x{:02x}", c as u32);
                }
                c => q.push(c),
            }
        }
        q.push('"');
        q
    } else {
        s.to_string()
    }
}

fn needs_quotes(s: &str, is_key: bool) -> bool {
    if s.is_empty() || s.trim() != s {
        return true;
    }
    if !matches!(resolve_plain(s), Resolved::Str(_)) {
        return true;
    }
    // YAML 1.1 booleans: Go's writer quotes them so old readers agree.
    let lower = s.to_ascii_lowercase();
    if matches!(lower.as_str(), "y" | "n" | "yes" | "no" | "on" | "off") && !is_key {
        return true;
    }
    let first = s.chars().next().unwrap_or(' ');
    let indicator = matches!(
        first,
        '?' | ':' | ',' | '[' | ']' | '{' | '}' | '#' | '&' | '*' | '!' | '|' | '>' | '\'' | '"' | '%' | '@' | '`'
    );
    let dash = first == '-' && (s.len() == 1 || s[1..].starts_with(' ') || s == "---");
    indicator || dash || s.contains(": ") || s.contains(" #") || s.ends_with(':') || s.chars().any(|c| c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Node {
        let file: Arc<Path> = Arc::from(Path::new("t.yaml"));
        parse_documents(text, &file).unwrap().remove(0)
    }

    #[test]
    fn plain_scalars_resolve_as_yaml_1_2() {
        assert_eq!(resolve_plain("42"), Resolved::Int(42));
        assert_eq!(resolve_plain("0x1F"), Resolved::Int(31));
        assert_eq!(resolve_plain("1.5"), Resolved::Float(1.5));
        assert_eq!(resolve_plain("true"), Resolved::Bool(true));
        assert_eq!(resolve_plain("yes"), Resolved::Str("yes"));
        assert_eq!(resolve_plain("~"), Resolved::Null);
        assert_eq!(resolve_plain("8080:80"), Resolved::Str("8080:80"));
        assert_eq!(resolve_plain("1.2.3"), Resolved::Str("1.2.3"));
    }

    #[test]
    fn merge_keys_add_what_the_mapping_does_not_set() {
        let n = parse("base: &b {image: a, restart: always}\nweb:\n  <<: *b\n  image: mine\n");
        let web = n.get("web").unwrap();
        assert_eq!(web.get("image").unwrap().as_scalar(), Some("mine"));
        assert_eq!(web.get("restart").unwrap().as_scalar(), Some("always"));
        assert_eq!(web.get("image").unwrap().loc.line, 4);
    }

    #[test]
    fn duplicate_keys_are_errors_with_their_line() {
        let file: Arc<Path> = Arc::from(Path::new("t.yaml"));
        let e = parse_documents("a: 1\nb: 2\na: 3\n", &file).unwrap_err();
        assert_eq!(e.to_string(), "t.yaml:3:1: mapping key \"a\" already defined");
    }

    #[test]
    fn writer_quotes_what_would_change_meaning() {
        let loc = Loc::new(&Arc::from(Path::new("x")), 1, 1);
        let mut m = Node::map(&loc);
        m.insert("published", Node::string("8080", &loc));
        m.insert("target", Node::plain("80", &loc));
        m.insert("cmd", Node::string("-p", &loc));
        m.insert("empty", Node::string("", &loc));
        m.insert("text", Node::string("a: b", &loc));
        assert_eq!(
            to_yaml(&m),
            "published: \"8080\"\ntarget: 80\ncmd: -p\nempty: \"\"\ntext: \"a: b\"\n"
        );
    }
}
