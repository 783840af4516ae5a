//! Docker's streamed JSON messages (pull, push, build, load): one JSON
//! object per line, each ended by `\r\n` as dockerd ends them:
//!
//! * `{"stream":"Step 1/3 : FROM bb\n"}` — build output, load results;
//! * `{"status":"Downloading","progressDetail":{"current":1,"total":9},
//!   "progress":"[=====>   ] 1B/9B","id":"a1b2c3"}` — per-layer progress;
//! * `{"aux":{"ID":"sha256:…"}}` — a result for the client to keep;
//! * `{"errorDetail":{"message":"…"},"error":"…"}` — a failure after the
//!   200 was sent (the client prints it and fails).
//!
//! The writer only formats; what to say is the caller's.

use std::io::{self, Write};

use serde_json::{json, Value};

/// The `Content-Type` of such a stream.
pub const CONTENT_TYPE: &str = "application/json";

/// Writes Docker's JSON messages to a sink.
pub struct JsonMessages<W: Write> {
    out: W,
}

/// Docker's progress bar text: `[=====>      ] 1.2MB/3.4MB`.
pub fn progress_bar(current: u64, total: u64) -> String {
    use berth_engine::human::human_size;
    const WIDTH: u64 = 50;
    if total == 0 {
        return format!("{:>8}", human_size(current));
    }
    let filled = (WIDTH * current.min(total) / total) as usize;
    let bar = if filled as u64 >= WIDTH {
        "=".repeat(WIDTH as usize) + ">"
    } else {
        format!("{}>{}", "=".repeat(filled), " ".repeat(WIDTH as usize - filled - 1))
    };
    format!("[{bar}] {:>8}/{}", human_size(current), human_size(total))
}

impl<W: Write> JsonMessages<W> {
    pub fn new(out: W) -> JsonMessages<W> {
        JsonMessages { out }
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    /// One message, as is.
    pub fn message(&mut self, v: &Value) -> io::Result<()> {
        let mut line = serde_json::to_vec(v).map_err(io::Error::other)?;
        line.extend_from_slice(b"\r\n");
        self.out.write_all(&line)?;
        self.out.flush()
    }

    /// Output text (`{"stream": …}`), as build steps and `load` print it.
    pub fn stream(&mut self, text: &str) -> io::Result<()> {
        self.message(&json!({ "stream": text }))
    }

    /// A status line, per layer (`id`) or for the whole operation.
    pub fn status(&mut self, id: Option<&str>, status: &str) -> io::Result<()> {
        let mut v = json!({ "status": status });
        if let Some(id) = id {
            v["id"] = json!(id);
        }
        self.message(&v)
    }

    /// A progress line for one layer.
    pub fn progress(&mut self, id: &str, status: &str, current: u64, total: u64) -> io::Result<()> {
        self.message(&json!({
            "status": status,
            "progressDetail": { "current": current, "total": total },
            "progress": progress_bar(current, total),
            "id": id,
        }))
    }

    /// A result the client keeps (`{"aux":{"ID":"sha256:…"}}`).
    pub fn aux(&mut self, value: Value) -> io::Result<()> {
        self.message(&json!({ "aux": value }))
    }

    /// A failure after the response began.
    pub fn error(&mut self, message: &str) -> io::Result<()> {
        self.message(&json!({ "errorDetail": { "message": message }, "error": message }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_dockers_messages() {
        let mut m = JsonMessages::new(Vec::new());
        m.stream("Loaded image: bb:latest\n").unwrap();
        m.status(Some("abc"), "Pull complete").unwrap();
        m.progress("abc", "Downloading", 500, 1000).unwrap();
        m.aux(json!({"ID": "sha256:00"})).unwrap();
        m.error("no space left").unwrap();
        let text = String::from_utf8(m.into_inner()).unwrap();
        let lines: Vec<Value> = text
            .split_terminator("\r\n")
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 5);
        assert_eq!(lines[0]["stream"], "Loaded image: bb:latest\n");
        assert_eq!(lines[1]["id"], "abc");
        assert_eq!(lines[2]["progressDetail"]["total"], 1000);
        assert!(lines[2]["progress"]
            .as_str()
            .unwrap()
            .starts_with("[=========================>"));
        assert_eq!(lines[3]["aux"]["ID"], "sha256:00");
        assert_eq!(lines[4]["errorDetail"]["message"], lines[4]["error"]);
    }

    #[test]
    fn the_bar_is_full_at_the_end() {
        assert!(progress_bar(10, 10).starts_with(&format!("[{}>]", "=".repeat(50))));
        assert!(progress_bar(0, 10).starts_with(&format!("[>{}]", " ".repeat(49))));
    }
}
