//! Output the way Docker's CLI prints it: `--format` Go templates (run by
//! berth-template, with Docker's functions), the `table` prefix with a
//! header row rendered as Docker renders it (the same template over the
//! command's header map, with Docker's header functions), columns aligned by
//! Go's tabwriter rules, human sizes and "2 hours ago" durations. Printing
//! only: no engine calls here.

use std::collections::HashMap;

use anyhow::{anyhow, Result};
use berth_template::{docker, tabwriter, MissingKey, Template, Value};

pub use berth_engine::human::{human_duration, human_size, human_size_4, since};

/// An RFC 3339 time as Go's `time.Time.String()` prints it in UTC
/// (`2026-12-03 08:25:10 +0000 UTC`: `images`' `{{.CreatedAt}}`); the
/// text as it is when it is not a time.
pub fn go_time(rfc3339: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(rfc3339) {
        Ok(t) => t
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%d %H:%M:%S +0000 UTC")
            .to_string(),
        Err(_) => rfc3339.to_string(),
    }
}

/// An RFC 3339 time to the second, in UTC (`2026-12-03T08:25:10Z`, Go's
/// `time.RFC3339`: `history`'s times without `-H`).
pub fn rfc3339_seconds(rfc3339: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(rfc3339) {
        Ok(t) => t
            .with_timezone(&chrono::Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        Err(_) => rfc3339.to_string(),
    }
}

/// A parsed `--format` value.
pub struct Format {
    template: Option<Template>,
    table: bool,
    raw: String,
}

/// Docker's `template parsing error: …` wording for parse and execution errors.
fn template_error(e: berth_template::Error) -> anyhow::Error {
    anyhow!("template parsing error: {e}")
}

/// The Go type Docker's formatter gives a list command's rows, told apart
/// by the command's columns.
fn context_type(headers: &HashMap<&str, &str>) -> &'static str {
    if headers.contains_key("RunningFor") {
        "*formatter.ContainerContext"
    } else if headers.contains_key("CreatedBy") {
        "*image.historyContext"
    } else if headers.contains_key("Repository") {
        "*formatter.ImageContext"
    } else if headers.contains_key("CPUPerc") {
        "*container.statsContext"
    } else if headers.contains_key("Reclaimable") {
        "*formatter.diskUsageImagesContext"
    } else {
        "*formatter.Context"
    }
}

impl Format {
    /// `None`/"" → the command's default table; "table …" → a table with
    /// headers; "json" → one JSON object per line; anything else a template.
    /// As Docker does: "table" is cut off, spaces trimmed, `\t`/`\n` written
    /// as two characters become a tab/newline.
    pub fn parse(spec: Option<&str>) -> Result<Format> {
        let raw = spec.unwrap_or("").to_string();
        let table = raw.starts_with("table");
        let body = if table {
            raw["table".len()..].to_string()
        } else if raw == "json" {
            "{{json .}}".to_string()
        } else {
            raw.clone()
        };
        let body = body.trim_matches(' ').replace("\\t", "\t").replace("\\n", "\n");
        let template = if body.is_empty() {
            None
        } else {
            Some(Template::parse(&body).map_err(template_error)?)
        };
        Ok(Format { template, table, raw })
    }

    /// As [`Format::parse`], for the commands whose bad template the docker
    /// CLI ends with exit code 64 (`inspect`, `version`, `info`).
    pub fn parse_inspect(spec: Option<&str>) -> Result<Format> {
        Format::parse(spec).map_err(|e| {
            eprintln!("{e}");
            berth_engine::EngineError::exit(64, "").into()
        })
    }

    /// As [`Format::parse`] with `ps`'s words (`failed to parse template: …`).
    pub fn parse_ps(spec: Option<&str>) -> Result<Format> {
        Format::parse(spec).map_err(|e| {
            let text = e.to_string();
            anyhow!(
                "failed to parse template: {}",
                text.strip_prefix("template parsing error: ").unwrap_or(&text)
            )
        })
    }

    /// No template given: the command prints its default.
    pub fn is_default(&self) -> bool {
        self.template.is_none()
    }

    /// The format started with `table`.
    pub fn is_table(&self) -> bool {
        self.table
    }

    /// The format as the user wrote it.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    fn template(&self) -> Result<&Template> {
        self.template.as_ref().ok_or_else(|| anyhow!("no template"))
    }

    /// Render one document (`version`, `info`): a Go struct, so an unknown
    /// field is an error as in Docker.
    pub fn render(&self, item: &serde_json::Value) -> Result<String> {
        let type_name = if item.get("ServerVersion").is_some() {
            "system.Info"
        } else {
            "types.Version"
        };
        self.template()?
            .execute(&docker::inspect_value(type_name, item))
            .map_err(template_error)
    }

    /// Render one `inspect` document as Docker does: as its Go type first;
    /// if that fails, as raw JSON with `missingkey=error`.
    pub fn render_inspect(&self, item: &serde_json::Value) -> Result<String> {
        let t = self.template()?;
        let type_name = if item.get("RepoTags").is_some() {
            "image.InspectResponse"
        } else {
            "types.ContainerJSON"
        };
        match t.execute(&docker::inspect_value(type_name, item)) {
            Ok(s) => Ok(s),
            Err(_) => t
                .with_missing_key(MissingKey::Error)
                .execute(&Value::from_json(item))
                .map_err(template_error),
        }
    }

    /// Print items: one rendered line each; with `table`, first a header
    /// made by running the template over `headers` (field → Docker's column
    /// name) with Docker's header functions, all aligned as Docker's
    /// tabwriter does (min width 10, padding 3).
    pub fn print_items(&self, items: &[serde_json::Value], headers: &HashMap<&str, &str>) -> Result<()> {
        print!("{}", self.render_items(items, headers)?);
        Ok(())
    }

    fn render_items(&self, items: &[serde_json::Value], headers: &HashMap<&str, &str>) -> Result<String> {
        let t = self.template()?;
        let type_name = context_type(headers);
        let mut rows = String::new();
        for it in items {
            rows.push_str(&t.execute(&docker::context_row(type_name, it)).map_err(template_error)?);
            rows.push('\n');
        }
        if !self.table {
            return Ok(rows);
        }
        let header_map = Value::string_map(headers.iter().map(|(k, v)| (*k, *v)));
        // Docker ignores a failing header; what was written before stays.
        let (mut text, _) = t.for_header().execute_partial(&header_map);
        text.push('\n');
        text.push_str(&rows);
        Ok(tabwriter::align(&text, 10, 3))
    }
}

/// Align tab-separated rows like Docker's tabwriter (min width 10, padding 3).
pub fn align(rows: &[String]) -> String {
    let mut text = rows.join("\n");
    text.push('\n');
    tabwriter::align(&text, 10, 3)
}

/// Docker's `inspect` JSON: an array indented with four spaces.
pub fn inspect_json(values: &[serde_json::Value]) -> Result<String> {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    serde::Serialize::serialize(values, &mut ser)?;
    let mut out = String::from_utf8(buf)?;
    if values.is_empty() {
        out = "[]".into();
    }
    out.push('\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn headers() -> HashMap<&'static str, &'static str> {
        [
            ("ID", "CONTAINER ID"),
            ("Names", "NAMES"),
            ("Labels", "LABELS"),
            ("RunningFor", "CREATED"),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn rows_are_docker_contexts_with_label_methods() {
        let row =
            json!({"ID": "0123456789ab", "Names": "web", "Labels": "com.x=1,com.y=two", "RunningFor": "2 hours ago"});
        let f = Format::parse(Some("{{.Names}} {{.Label \"com.y\"}} {{upper .Names}}")).unwrap();
        assert_eq!(
            f.render_items(std::slice::from_ref(&row), &headers()).unwrap(),
            "web two WEB\n"
        );
        let err = Format::parse(Some("{{.Nope}}"))
            .unwrap()
            .render_items(std::slice::from_ref(&row), &headers())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "template parsing error: template: :1:2: executing \"\" at <.Nope>: can't evaluate field Nope in type *formatter.ContainerContext"
        );
        let f = Format::parse(Some("{{json .}}")).unwrap();
        assert_eq!(
            f.render_items(&[row], &headers()).unwrap(),
            "{\"ID\":\"0123456789ab\",\"Labels\":\"com.x=1,com.y=two\",\"Names\":\"web\",\"RunningFor\":\"2 hours ago\"}\n"
        );
    }

    #[test]
    fn table_header_comes_from_the_header_map_and_header_functions() {
        let row = json!({"ID": "0123456789ab", "Names": "web", "Labels": "", "RunningFor": "x"});
        let f = Format::parse(Some("table {{.ID}}\\t{{upper .Names}}\\t{{pad .Names 1 1}}")).unwrap();
        assert_eq!(
            f.render_items(&[row], &headers()).unwrap(),
            "CONTAINER ID   NAMES      NAMES \n0123456789ab   WEB        web \n"
        );
    }

    #[test]
    fn inspect_falls_back_to_raw_json_with_missing_keys_as_errors() {
        let doc = json!({"Id": "abc", "State": {"Status": "running", "Running": true, "Pid": 7}, "Config": {"Labels": {"b": "2", "a": "1"}, "Cmd": null}});
        let f = Format::parse(Some("{{.State}} {{.Config.Labels}} {{.Config.Cmd}} {{json .State}}")).unwrap();
        assert_eq!(
            f.render_inspect(&doc).unwrap(),
            // State is Docker's typed struct: absent fields are zero values.
            "{running true false false false false 7 0    <nil>} map[a:1 b:2] [] {\"Status\":\"running\",\"Running\":true,\"Paused\":false,\"Restarting\":false,\"OOMKilled\":false,\"Dead\":false,\"Pid\":7,\"ExitCode\":0,\"Error\":\"\",\"StartedAt\":\"\",\"FinishedAt\":\"\"}"
        );
        let err = Format::parse(Some("{{.Nope}}"))
            .unwrap()
            .render_inspect(&doc)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "template parsing error: template: :1:2: executing \"\" at <.Nope>: map has no entry for key \"Nope\""
        );
    }

    #[test]
    fn parse_errors_name_the_line() {
        let err = Format::parse(Some("{{.ID}}\\n{{.Names")).err().unwrap();
        assert_eq!(err.to_string(), "template parsing error: template: :2: unclosed action");
    }

    #[test]
    fn alignment_follows_go_tabwriter() {
        let out = align(&["A\tB".into(), "long-value-here\tC".into()]);
        assert_eq!(out, format!("A{}B\nlong-value-here   C\n", " ".repeat(17)));
    }
}
