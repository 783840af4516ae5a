//! Container logs in Docker's json-file format (`ctr.log`): one JSON object
//! per line, `{"log":"hello\n","stream":"stdout","time":"…Z"}`; writing (for
//! the monitor) and reading (`berth logs`).
//!
//! The writer only appends to the log file, and with a size limit
//! (`--log-opt max-size`, `max-file`) rotates it as Docker's json-file
//! driver does: `ctr.log` becomes `ctr.log.1`, `.1` becomes `.2`, …, the
//! oldest beyond `max-file` is dropped. The reader reads the rotated files
//! oldest first, and never modifies any.

use crate::error::{IoContext, Result};
use crate::state;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Seek, Write};
use std::path::{Path, PathBuf};

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

/// `--log-opt max-size=…,max-file=…` of the json-file (and local) driver.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(default)]
pub struct LogLimits {
    /// Rotate once the file would pass this many bytes (`None`: never).
    pub max_size: Option<u64>,
    /// Files kept, the live one included (0 is taken as 1).
    pub max_file: u32,
}

/// The name of rotated file `n` (0: the live log).
fn rotated(path: &Path, n: u32) -> PathBuf {
    if n == 0 {
        return path.to_path_buf();
    }
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// The log files of a container, oldest first (the rotated ones that
/// exist, then the live one).
fn log_files(container_dir: &Path) -> Vec<PathBuf> {
    let live = container_dir.join(LOG_FILE);
    let mut out: Vec<PathBuf> = (1..).map(|n| rotated(&live, n)).take_while(|p| p.exists()).collect();
    out.reverse();
    out.push(live);
    out
}

/// Appends output to a json-file log, one entry per line of output.
pub struct LogWriter {
    /// `None`: `--log-driver none`, nothing is kept.
    file: Option<std::fs::File>,
    path: PathBuf,
    limits: LogLimits,
    /// Bytes in the live file.
    size: u64,
    partial: [Vec<u8>; 2],
}

impl LogWriter {
    /// Opens (creating or appending to) the log file, with no limit.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_limited(path, LogLimits::default())
    }

    /// Opens (creating or appending to) the log file, rotated per `limits`.
    pub fn open_limited(path: &Path, limits: LogLimits) -> Result<Self> {
        // What the container printed: private to the store's owner.
        let file = berth_archive::perms::open_append(path, berth_archive::perms::PRIVATE_FILE)
            .ctx(|| format!("opening log file {}", path.display()))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(LogWriter {
            file: Some(file),
            path: path.to_path_buf(),
            limits,
            size,
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// A writer that keeps nothing (`--log-driver none`).
    pub fn discard() -> Self {
        LogWriter {
            file: None,
            path: PathBuf::new(),
            limits: LogLimits::default(),
            size: 0,
            partial: [Vec::new(), Vec::new()],
        }
    }

    /// Shifts the files by one (the oldest beyond `max-file` goes) and
    /// starts an empty live file; with `max-file` 1 the live file is
    /// emptied. A reader following the log sees the live file shrink or
    /// change and starts it again from the top.
    fn rotate(&mut self) -> Result<()> {
        let keep = self.limits.max_file.max(1);
        if keep == 1 {
            if let Some(f) = &self.file {
                f.set_len(0).ctx(|| format!("truncating {}", self.path.display()))?;
            }
        } else {
            for n in (1..keep).rev() {
                let from = rotated(&self.path, n - 1);
                if from.exists() {
                    std::fs::rename(&from, rotated(&self.path, n)).ctx(|| format!("rotating {}", from.display()))?;
                }
            }
            self.file = Some(
                berth_archive::perms::open_append(&self.path, berth_archive::perms::PRIVATE_FILE)
                    .ctx(|| format!("opening log file {}", self.path.display()))?,
            );
        }
        self.size = 0;
        Ok(())
    }

    fn emit(&mut self, stream: Stream, bytes: &[u8]) -> Result<()> {
        if self.file.is_none() {
            return Ok(());
        }
        let entry = LogEntry {
            log: String::from_utf8_lossy(bytes).into_owned(),
            stream: stream.name().into(),
            time: state::now_rfc3339(),
        };
        let mut line = serde_json::to_vec(&entry).expect("log entries serialize");
        line.push(b'\n');
        if self
            .limits
            .max_size
            .is_some_and(|max| self.size > 0 && self.size + line.len() as u64 > max)
        {
            self.rotate()?;
        }
        let file = self.file.as_mut().expect("a kept log has a file");
        file.write_all(&line).ctx(|| "writing the container log".to_string())?;
        self.size += line.len() as u64;
        Ok(())
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
    /// `--details`: each line after its attributes (none are kept: the
    /// json-file driver's `labels`/`env` options are not taken) and a space,
    /// as Docker prints them.
    pub details: bool,
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
    if opts.details {
        w.write_all(b" ").ctx(|| "writing logs".to_string())?;
    }
    w.write_all(e.log.as_bytes()).ctx(|| "writing logs".to_string())
}

fn wanted(t: Option<DateTime<Utc>>, opts: &LogOptions) -> bool {
    match t {
        Some(t) => opts.since.is_none_or(|s| t >= s) && opts.until.is_none_or(|u| t <= u),
        None => true,
    }
}

/// Reads the complete entries of `reader` from where it stands; returns
/// the bytes consumed (a partly written last line is left for later).
fn read_entries(
    reader: &mut impl BufRead,
    path: &Path,
    mut each: impl FnMut(LogEntry, Option<DateTime<Utc>>) -> Result<bool>,
) -> Result<u64> {
    let mut line = String::new();
    let mut consumed = 0;
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .ctx(|| format!("reading {}", path.display()))?;
        if n == 0 || !line.ends_with('\n') {
            return Ok(consumed);
        }
        consumed += n as u64;
        if let Some((e, t)) = parse_entry(&line) {
            if !each(e, t)? {
                return Ok(consumed);
            }
        }
    }
}

/// Copies what `file` holds from where it stands, as `logs -f` does;
/// returns the bytes read and whether `until` was passed.
fn follow_part(
    file: &mut std::fs::File,
    path: &Path,
    opts: &LogOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(u64, bool)> {
    let mut ended = false;
    let n = read_entries(&mut BufReader::new(file), path, |e, t| {
        if opts.until.is_some_and(|u| t.is_some_and(|t| t > u)) {
            ended = true;
            return Ok(false);
        }
        if wanted(t, opts) {
            emit(&e, opts, out, err)?;
        }
        Ok(true)
    })?;
    Ok((n, ended))
}

/// Copies the container's log to `out`/`err` per `opts`; with `follow`,
/// keeps copying until the container is no longer running.
pub fn read_logs(container_dir: &Path, opts: &LogOptions, out: &mut dyn Write, err: &mut dyn Write) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let path = container_dir.join(LOG_FILE);
    let mut entries = Vec::new();
    for older in log_files(container_dir).iter().filter(|p| **p != path) {
        // A file rotated away meanwhile is skipped: its entries moved on.
        let Ok(f) = std::fs::File::open(older) else { continue };
        read_entries(&mut BufReader::new(f), older, |e, t| {
            if wanted(t, opts) {
                entries.push(e);
            }
            Ok(true)
        })?;
    }
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !opts.follow => {
            let skip = opts.tail.map(|t| entries.len().saturating_sub(t)).unwrap_or(0);
            for e in &entries[skip..] {
                emit(e, opts, out, err)?;
            }
            return Ok(());
        }
        Err(e) => return Err(crate::RuntimeError::io(format!("opening {}", path.display()), e)),
    };
    let mut reader = BufReader::new(file);
    let mut pos = read_entries(&mut reader, &path, |e, t| {
        if wanted(t, opts) {
            entries.push(e);
        }
        Ok(true)
    })?;
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
    let mut inode = file.metadata().map(|m| m.ino()).unwrap_or(0);
    // Woken by the monitor's writes to the log and its state changes.
    let watch = crate::watch::DirWatch::new(container_dir);
    loop {
        let running = state::read_state(container_dir)
            .map(|s| s.is_running())
            .unwrap_or(false);
        // Rotated: a new live file (max-file > 1), or the same one emptied.
        match std::fs::metadata(&path) {
            Ok(m) if m.ino() != inode => {
                // What the old file got after our last read first, then
                // every file rotated since (several when the writer was
                // quicker than us), then the new live file from the top.
                file.seek(std::io::SeekFrom::Start(pos))
                    .ctx(|| "seeking the log".to_string())?;
                if follow_part(&mut file, &path, opts, out, err)?.1 {
                    return Ok(());
                }
                let files = log_files(container_dir);
                let ours = files
                    .iter()
                    .position(|p| std::fs::metadata(p).is_ok_and(|m| m.ino() == inode));
                let newer = ours.map_or(&files[..], |i| &files[i + 1..]);
                for p in newer.iter().filter(|p| **p != path) {
                    let Ok(mut f) = std::fs::File::open(p) else { continue };
                    if follow_part(&mut f, p, opts, out, err)?.1 {
                        return Ok(());
                    }
                }
                if let Ok(f) = std::fs::File::open(&path) {
                    inode = f.metadata().map(|m| m.ino()).unwrap_or(0);
                    file = f;
                    pos = 0;
                }
            }
            Ok(m) if m.len() < pos => pos = 0,
            _ => {}
        }
        file.seek(std::io::SeekFrom::Start(pos))
            .ctx(|| "seeking the log".to_string())?;
        let (n, ended) = follow_part(&mut file, &path, opts, out, err)?;
        pos += n;
        out.flush().ok();
        err.flush().ok();
        if ended || !running {
            return Ok(());
        }
        watch.wait(crate::watch::FALLBACK);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limited_log_rotates_keeps_max_file_files_and_reads_in_order() {
        let d = tempfile::tempdir().unwrap();
        let limits = LogLimits {
            max_size: Some(200),
            max_file: 3,
        };
        let mut w = LogWriter::open_limited(&d.path().join(LOG_FILE), limits).unwrap();
        for i in 0..40 {
            w.write(Stream::Stdout, format!("line {i:02}\n").as_bytes()).unwrap();
        }
        let files = log_files(d.path());
        assert_eq!(files.len(), 3, "{files:?}");
        for f in &files {
            assert!(std::fs::metadata(f).unwrap().len() <= 200, "{f:?}");
        }
        let (mut o, mut e) = (Vec::new(), Vec::new());
        read_logs(d.path(), &LogOptions::default(), &mut o, &mut e).unwrap();
        let o = String::from_utf8(o).unwrap();
        let got: Vec<&str> = o.lines().collect();
        // The newest lines, in order, the oldest ones dropped.
        assert_eq!(got.last(), Some(&"line 39"));
        assert!(got.len() < 40 && got.len() >= 6, "{got:?}");
        let first: usize = got[0][5..].parse().unwrap();
        let want: Vec<String> = (first..40).map(|i| format!("line {i:02}")).collect();
        assert_eq!(got, want);

        // max-file 1: the one file is emptied and starts again.
        let d = tempfile::tempdir().unwrap();
        let limits = LogLimits {
            max_size: Some(100),
            max_file: 1,
        };
        let mut w = LogWriter::open_limited(&d.path().join(LOG_FILE), limits).unwrap();
        for i in 0..20 {
            w.write(Stream::Stdout, format!("line {i:02}\n").as_bytes()).unwrap();
        }
        assert_eq!(log_files(d.path()).len(), 1);
        assert!(std::fs::metadata(d.path().join(LOG_FILE)).unwrap().len() <= 100);
    }

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
