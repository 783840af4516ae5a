//! Output the way Docker's CLI prints it: `--format` Go templates (with
//! `json`, `join`, `lower`, `upper`, `split`, `truncate`, `title`), the
//! `table` prefix with Docker's column headers, aligned columns, human sizes
//! and "2 hours ago" durations. Printing only: no engine calls here.

use std::collections::HashMap;

use anyhow::{anyhow, Result};
use gtmpl::{Context, FuncError, Template, Value};

/// serde_json → gtmpl value (objects become maps, so `{{.Field}}` and `index` work).
pub fn to_gtmpl(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::from(n.as_f64().unwrap_or(0.0))
            }
        }
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(a) => Value::Array(a.iter().map(to_gtmpl).collect()),
        serde_json::Value::Object(o) => Value::Map(o.iter().map(|(k, v)| (k.clone(), to_gtmpl(v))).collect()),
    }
}

fn from_gtmpl(v: &Value) -> serde_json::Value {
    match v {
        Value::NoValue | Value::Nil | Value::Function(_) => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                serde_json::json!(i)
            } else if let Some(u) = n.as_u64() {
                serde_json::json!(u)
            } else {
                serde_json::json!(n.as_f64())
            }
        }
        Value::Array(a) => serde_json::Value::Array(a.iter().map(from_gtmpl).collect()),
        Value::Object(m) | Value::Map(m) => {
            serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), from_gtmpl(v))).collect())
        }
    }
}

fn arg_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn f_json(args: &[Value]) -> Result<Value, FuncError> {
    let v = args.first().ok_or(FuncError::AtLeastXArgs("json".into(), 1))?;
    Ok(Value::String(serde_json::to_string(&from_gtmpl(v)).unwrap_or_default()))
}

fn f_join(args: &[Value]) -> Result<Value, FuncError> {
    if args.len() != 2 {
        return Err(FuncError::ExactlyXArgs("join".into(), 2));
    }
    let sep = arg_str(&args[1]);
    let items: Vec<String> = match &args[0] {
        Value::Array(a) => a.iter().map(arg_str).collect(),
        Value::Nil | Value::NoValue => Vec::new(),
        other => vec![arg_str(other)],
    };
    Ok(Value::String(items.join(&sep)))
}

/// Go's `%v`: `[a b]`, `map[k:v]`, `<nil>`.
pub fn go_display(v: &Value) -> String {
    match v {
        Value::NoValue => "<no value>".into(),
        Value::Nil => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Function(_) => "<func>".into(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_display).collect::<Vec<_>>().join(" ")),
        Value::Object(m) | Value::Map(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let inner: Vec<String> = keys.iter().map(|k| format!("{k}:{}", go_display(&m[*k]))).collect();
            format!("map[{}]", inner.join(" "))
        }
    }
}

fn f_gofmt(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(args.first().map(go_display).unwrap_or_default()))
}

/// gtmpl prints arrays and maps with Rust's Debug; route every plain value
/// action through `gofmt` so output matches Go's `text/template`.
fn route_through_gofmt(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let inner = &rest[start + 2..start + len];
        let (lt, core) = match inner.strip_prefix('-') {
            Some(c) => ("-", c),
            None => ("", inner),
        };
        let (core, rt) = match core.strip_suffix('-') {
            Some(c) => (c, "-"),
            None => (core, ""),
        };
        let t = core.trim();
        let plain = (t.starts_with('.') || t.starts_with('$') || t.starts_with("index "))
            && !t.contains(":=")
            && !t.contains(" = ");
        if plain {
            out.push_str(&format!("{{{{{lt} {t} | gofmt {rt}}}}}"));
        } else {
            out.push_str(&rest[start..start + len + 2]);
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    out
}

fn f_lower(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(
        args.first().map(arg_str).unwrap_or_default().to_lowercase(),
    ))
}

fn f_upper(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(
        args.first().map(arg_str).unwrap_or_default().to_uppercase(),
    ))
}

fn f_title(args: &[Value]) -> Result<Value, FuncError> {
    let s = args.first().map(arg_str).unwrap_or_default();
    let mut c = s.chars();
    Ok(Value::String(match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }))
}

fn f_split(args: &[Value]) -> Result<Value, FuncError> {
    if args.len() != 2 {
        return Err(FuncError::ExactlyXArgs("split".into(), 2));
    }
    let s = arg_str(&args[0]);
    let sep = arg_str(&args[1]);
    Ok(Value::Array(
        s.split(sep.as_str()).map(|p| Value::String(p.to_string())).collect(),
    ))
}

fn f_truncate(args: &[Value]) -> Result<Value, FuncError> {
    if args.len() != 2 {
        return Err(FuncError::ExactlyXArgs("truncate".into(), 2));
    }
    let s = arg_str(&args[0]);
    let n: usize = arg_str(&args[1]).parse().unwrap_or(usize::MAX);
    Ok(Value::String(s.chars().take(n).collect()))
}

/// A parsed `--format` value.
pub struct Format {
    template: Option<Template>,
    table: bool,
    raw: String,
}

impl Format {
    /// `None`/"" → the command's default table; "table …" → a table with
    /// headers; "json" → one JSON object per line; anything else a template.
    pub fn parse(spec: Option<&str>) -> Result<Format> {
        let raw = spec.unwrap_or("").to_string();
        let (table, body) = match raw.strip_prefix("table") {
            Some(rest) => (true, rest.trim_start().to_string()),
            None => (false, raw.clone()),
        };
        let body = if body == "json" { "{{json .}}".to_string() } else { body };
        let template = if body.is_empty() {
            None
        } else {
            let body = route_through_gofmt(&body.replace("\\t", "\t").replace("\\n", "\n"));
            let mut t = Template::default();
            t.add_funcs(&[
                ("json", f_json as gtmpl::Func),
                ("gofmt", f_gofmt),
                ("join", f_join),
                ("lower", f_lower),
                ("upper", f_upper),
                ("title", f_title),
                ("split", f_split),
                ("truncate", f_truncate),
            ]);
            t.parse(body).map_err(|e| anyhow!("template parsing error: {e}"))?;
            Some(t)
        };
        Ok(Format { template, table, raw })
    }

    pub fn is_default(&self) -> bool {
        self.template.is_none()
    }

    pub fn is_table(&self) -> bool {
        self.table
    }

    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// Render one item with the template.
    pub fn render(&self, item: &serde_json::Value) -> Result<String> {
        let t = self.template.as_ref().ok_or_else(|| anyhow!("no template"))?;
        t.render(&Context::from(to_gtmpl(item)))
            .map_err(|e| anyhow!("template: {e}"))
    }

    /// Print items: with `table`, a header made from the fields the template
    /// names (`headers` maps field → Docker's header), columns aligned.
    pub fn print_items(&self, items: &[serde_json::Value], headers: &HashMap<&str, &str>) -> Result<()> {
        let mut out = String::new();
        if self.table {
            let mut rows: Vec<String> = Vec::new();
            let body = self
                .raw
                .strip_prefix("table")
                .unwrap_or("")
                .trim_start()
                .replace("\\t", "\t");
            rows.push(header_row(&body, headers));
            for it in items {
                rows.push(self.render(it)?);
            }
            out.push_str(&align(&rows));
        } else {
            for it in items {
                out.push_str(&self.render(it)?);
                out.push('\n');
            }
        }
        print!("{out}");
        Ok(())
    }
}

/// Replace each `{{.Field}}` (or `{{json .Field}}`) by its header.
fn header_row(body: &str, headers: &HashMap<&str, &str>) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else { break };
        let action = rest[start + 2..start + end].trim();
        let field = action
            .split_whitespace()
            .find(|w| w.starts_with('.'))
            .map(|w| w.trim_start_matches('.'))
            .unwrap_or(action);
        let h = headers
            .get(field)
            .map(|h| h.to_string())
            .unwrap_or_else(|| field.to_uppercase());
        out.push_str(&h);
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out
}

/// Align tab-separated rows like Go's tabwriter (min width 10, padding 3).
pub fn align(rows: &[String]) -> String {
    let cells: Vec<Vec<&str>> = rows.iter().map(|r| r.split('\t').collect()).collect();
    let ncols = cells.iter().map(|c| c.len()).max().unwrap_or(0);
    let mut widths = vec![0usize; ncols];
    for r in &cells {
        for (i, c) in r.iter().enumerate() {
            if i + 1 < r.len() {
                widths[i] = widths[i].max(c.chars().count() + 3).max(10);
            }
        }
    }
    let mut out = String::new();
    for r in &cells {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 < r.len() {
                line.push_str(c);
                for _ in c.chars().count()..widths[i] {
                    line.push(' ');
                }
            } else {
                line.push_str(c);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Docker's human sizes: decimal units, 3 significant digits ("4.26MB").
pub fn human_size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut size = bytes as f64;
    let mut i = 0;
    while size >= 1000.0 && i < units.len() - 1 {
        size /= 1000.0;
        i += 1;
    }
    format!("{}{}", sig3(size), units[i])
}

/// Go's `%.3g` for values below 1000.
fn sig3(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Docker's "About an hour", "3 days" (go-units HumanDuration).
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let minutes = s / 60;
    let hours = (s as f64 / 3600.0).round() as i64;
    if s < 1 {
        "Less than a second".into()
    } else if s == 1 {
        "1 second".into()
    } else if s < 60 {
        format!("{s} seconds")
    } else if minutes == 1 {
        "About a minute".into()
    } else if minutes < 60 {
        format!("{minutes} minutes")
    } else if hours == 1 {
        "About an hour".into()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", hours / 24 / 365)
    }
}

/// "5 minutes ago" from an RFC 3339 time.
pub fn since(rfc3339: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(rfc3339) {
        Ok(t) => format!(
            "{} ago",
            human_duration((chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds())
        ),
        Err(_) => "N/A".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(4_261_000), "4.26MB");
        assert_eq!(human_size(1_500), "1.5kB");
        assert_eq!(human_size(123_400_000), "123MB");
    }

    #[test]
    fn durations_like_docker() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(30), "30 seconds");
        assert_eq!(human_duration(61), "About a minute");
        assert_eq!(human_duration(3600), "About an hour");
        assert_eq!(human_duration(3 * 86400), "3 days");
    }

    #[test]
    fn templates_render_fields_and_json() {
        let f = Format::parse(Some("{{.Repository}}:{{.Tag}} {{json .Labels}}")).unwrap();
        let v = serde_json::json!({"Repository": "bb", "Tag": "latest", "Labels": {"a": "b"}});
        assert_eq!(f.render(&v).unwrap(), "bb:latest {\"a\":\"b\"}");
        assert!(Format::parse(Some("{{.Foo")).is_err());
        let f = Format::parse(Some("{{.Cmd}} {{.Labels}} {{.None}} {{range .Cmd}}<{{.}}>{{end}}")).unwrap();
        let v = serde_json::json!({"Cmd": ["sh", "-c"], "Labels": {"b": "2", "a": "1"}, "None": null});
        assert_eq!(f.render(&v).unwrap(), "[sh -c] map[a:1 b:2] <nil> <sh><-c>");
    }

    #[test]
    fn table_headers_and_alignment() {
        let mut h = HashMap::new();
        h.insert("ID", "IMAGE ID");
        assert_eq!(header_row("{{.ID}}\t{{.Repository}}", &h), "IMAGE ID\tREPOSITORY");
        let out = align(&["A\tB".into(), "long-value-here\tC".into()]);
        assert_eq!(
            out,
            format!(
                "A{}B
long-value-here   C
",
                " ".repeat(17)
            )
        );
    }
}
