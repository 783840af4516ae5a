//! Container logs in Docker's json-file format (`ctr.log`): one JSON object
//! per line, `{"log":"hello\n","stream":"stdout","time":"…Z"}`; writing (for
//! the monitor) and reading (`berth logs`).
//!
//! The writer only appends to the log file; the reader never modifies it.

use crate::error::{IoContext, Result};
use crate::state;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Seek, Write};
use std::path::Path;

/// The log file's name in the container directory.
pub const LOG_FILE: &str = "ctr.log";
/// Longest line kept in one entry before it is split (Docker's 16 KiB).
const MAX_LINE: usize = 16 * 1024;

/// One entry of the log file.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

/// Which stream a chunk of output came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Appends output to a json-file log, one entry per line of output.
pub struct LogWriter {
    /// `None`: `--log-driver none`, nothing is kept.
    file: Option<std::fs::File>,
    partial: [Vec<u8>; 2],
}

impl LogWriter {
    /// Opens (creating or appending to) the log file.
    pub fn open(path: &Path) -> Result<Self> {
        // What the container printed: private to the store's owner.
        let file = berth_archive::perms::open_append(path, berth_archive::perms::PRIVATE_FILE)
            .ctx(|| format!("opening log file {}", path.display()))?;
        Ok(LogWriter {
            file: Some(file),
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// A writer that keeps nothing (`--log-driver none`).
    pub fn discard() -> Self {
        LogWriter {
            file: None,
            partial: [Vec::new(), Vec::new()],
        }
    }

    fn emit(&mut self, stream: Stream, bytes: &[u8]) -> Result<()> {
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        let entry = LogEntry {
            log: String::from_utf8_lossy(bytes).into_owned(),
            stream: stream.name().into(),
            time: state::now_rfc3339(),
        };
        let mut line = serde_json::to_vec(&entry).expect("log entries serialize");
        line.push(b'\n');
        file.write_all(&line).ctx(|| "writing the container log".to_string())
    }

    /// Records a chunk of output; complete lines become entries at once.
    pub fn write(&mut self, stream: Stream, data: &[u8]) -> Result<()> {
        let idx = stream as usize;
        let mut buf = std::mem::take(&mut self.partial[idx]);
        buf.extend_from_slice(data);
        let mut start = 0;
        while let Some(pos) = buf[start..].iter().position(|b| *b == b'\n') {
            let end = start + pos + 1;
            self.emit(stream, &buf[start..end])?;
            start = end;
        }
        while buf.len() - start >= MAX_LINE {
            self.emit(stream, &buf[start..start + MAX_LINE])?;
            start += MAX_LINE;
        }
        self.partial[idx] = buf[start..].to_vec();
        Ok(())
    }

    /// Writes out unterminated output (at the end of the stream).
    pub fn flush(&mut self) -> Result<()> {
        for (i, s) in [Stream::Stdout, Stream::Stderr].into_iter().enumerate() {
            let rest = std::mem::take(&mut self.partial[i]);
            if !rest.is_empty() {
                self.emit(s, &rest)?;
            }
        }
        Ok(())
    }
}

/// `berth logs` options.
#[derive(Clone, Debug, Default)]
pub struct LogOptions {
    pub follow: bool,
    /// Only the last N entries.
    pub tail: Option<usize>,
    pub timestamps: bool,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

fn parse_entry(line: &str) -> Option<(LogEntry, Option<DateTime<Utc>>)> {
    let e: LogEntry = serde_json::from_str(line).ok()?;
    let t = DateTime::parse_from_rfc3339(&e.time)
        .ok()
        .map(|t| t.with_timezone(&Utc));
    Some((e, t))
}

fn emit(e: &LogEntry, opts: &LogOptions, out: &mut dyn Write, err: &mut dyn Write) -> Result<()> {
    let w: &mut dyn Write = if e.stream == "stderr" { err } else { out };
    if opts.timestamps {
        write!(w, "{} ", e.time).ctx(|| "writing logs".to_string())?;
    }
    w.write_all(e.log.as_bytes()).ctx(|| "writing logs".to_string())
}

fn wanted(t: Option<DateTime<Utc>>, opts: &LogOptions) -> bool {
    match t {
        Some(t) => opts.since.is_none_or(|s| t >= s) && opts.until.is_none_or(|u| t <= u),
        None => true,
    }
}

/// Copies the container's log to `out`/`err` per `opts`; with `follow`,
/// keeps copying until the container is no longer running.
pub fn read_logs(container_dir: &Path, opts: &LogOptions, out: &mut dyn Write, err: &mut dyn Write) -> Result<()> {
    let path = container_dir.join(LOG_FILE);
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !opts.follow => return Ok(()),
        Err(e) => return Err(crate::RuntimeError::io(format!("opening {}", path.display()), e)),
    };
    let mut reader = BufReader::new(file);
    let mut entries = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .ctx(|| format!("reading {}", path.display()))?;
        if n == 0 || !line.ends_with('\n') {
            break;
        }
        if let Some((e, t)) = parse_entry(&line) {
            if wanted(t, opts) {
                entries.push(e);
            }
        }
    }
    // A partially written last line is re-read when following.
    let mut pos = reader.stream_position().ctx(|| "log position".to_string())? - line.len() as u64;
    let skip = opts.tail.map(|t| entries.len().saturating_sub(t)).unwrap_or(0);
    for e in &entries[skip..] {
        emit(e, opts, out, err)?;
    }
    out.flush().ok();
    err.flush().ok();
    if !opts.follow {
        return Ok(());
    }
    let mut file = reader.into_inner();
    // Woken by the monitor's writes to the log and its state changes.
    let watch = crate::watch::DirWatch::new(container_dir);
    loop {
        let running = state::read_state(container_dir)
            .map(|s| s.is_running())
            .unwrap_or(false);
        file.seek(std::io::SeekFrom::Start(pos))
            .ctx(|| "seeking the log".to_string())?;
        let mut r = BufReader::new(&mut file);
        loop {
            line.clear();
            let n = r.read_line(&mut line).ctx(|| "reading the log".to_string())?;
            if n == 0 || !line.ends_with('\n') {
                break;
            }
            pos += n as u64;
            if let Some((e, t)) = parse_entry(&line) {
                if opts.until.is_some_and(|u| t.is_some_and(|t| t > u)) {
                    return Ok(());
                }
                if wanted(t, opts) {
                    emit(&e, opts, out, err)?;
                }
            }
        }
        out.flush().ok();
        err.flush().ok();
        if !running {
            return Ok(());
        }
        watch.wait(crate::watch::FALLBACK);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_splits_lines_and_reader_filters() {
        let d = tempfile::tempdir().unwrap();
        let mut w = LogWriter::open(&d.path().join(LOG_FILE)).unwrap();
        w.write(Stream::Stdout, b"hel").unwrap();
        w.write(Stream::Stdout, b"lo\nwor").unwrap();
        w.write(Stream::Stderr, b"oops\n").unwrap();
        w.write(Stream::Stdout, b"ld\nlast").unwrap();
        w.flush().unwrap();
        let text = std::fs::read_to_string(d.path().join(LOG_FILE)).unwrap();
        let lines: Vec<LogEntry> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0].log, "hello\n");
        assert_eq!(lines[1].stream, "stderr");
        assert_eq!(lines[2].log, "world\n");
        assert_eq!(lines[3].log, "last");
        assert!(lines[0].time.ends_with('Z'));

        let (mut o, mut e) = (Vec::new(), Vec::new());
        read_logs(d.path(), &LogOptions::default(), &mut o, &mut e).unwrap();
        assert_eq!(String::from_utf8(o).unwrap(), "hello\nworld\nlast");
        assert_eq!(String::from_utf8(e).unwrap(), "oops\n");
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let opts = LogOptions {
            tail: Some(2),
            timestamps: true,
            ..Default::default()
        };
        read_logs(d.path(), &opts, &mut o, &mut e).unwrap();
        let o = String::from_utf8(o).unwrap();
        assert!(o.contains("Z world\n") && o.ends_with("Z last"), "{o}");
        assert!(!o.contains("hello"));
        assert!(e.is_empty());
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let opts = LogOptions {
            since: Some(Utc::now() + chrono::Duration::hours(1)),
            ..Default::default()
        };
        read_logs(d.path(), &opts, &mut o, &mut e).unwrap();
        assert!(o.is_empty() && e.is_empty());
    }
}
