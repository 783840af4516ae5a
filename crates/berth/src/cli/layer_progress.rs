//! How `pull` and `push` show their progress: on a terminal, one live
//! line per layer (its short ID, a bar, bytes, its status); otherwise the
//! engine's plain lines, unchanged (`abc123def456: Pull complete`), which
//! logs and scripts read.
//!
//! The engine speaks in lines and byte counts; [`Display`] turns them into
//! either form. Layer lines are the ones that start with a 12-hex-digit ID.

use std::collections::HashMap;
use std::io::{self, IsTerminal, Write};
use std::sync::{Arc, Mutex};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::engine::registry::LayerBytes;

/// `0123456789ab: Pull complete` → (`0123456789ab`, `Pull complete`).
pub fn layer_line(line: &str) -> Option<(&str, &str)> {
    let (id, status) = line.split_once(": ")?;
    (id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some((id, status))
}

/// Statuses after which a layer has nothing more to show.
fn is_final(status: &str) -> bool {
    [
        "Pull complete",
        "Already exists",
        "Pushed",
        "Layer already exists",
        "Mounted from",
    ]
    .iter()
    .any(|s| status.starts_with(s))
}

/// One bar per layer, drawn on stderr.
pub struct Bars {
    multi: MultiProgress,
    layers: Mutex<HashMap<String, ProgressBar>>,
}

impl Bars {
    fn new(target: ProgressDrawTarget) -> Arc<Bars> {
        Arc::new(Bars {
            multi: MultiProgress::with_draw_target(target),
            layers: Mutex::new(HashMap::new()),
        })
    }

    fn bar(&self, id: &str) -> ProgressBar {
        let mut layers = self.layers.lock().unwrap_or_else(|p| p.into_inner());
        layers
            .entry(id.to_string())
            .or_insert_with(|| {
                let b = self.multi.add(ProgressBar::new(0));
                b.set_style(
                    ProgressStyle::with_template("{prefix}: {msg:<16} [{bar:30}] {bytes:>10}/{total_bytes:<10}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                );
                b.set_prefix(id.to_string());
                b.set_message("Waiting");
                b
            })
            .clone()
    }

    fn bytes(&self, id: &str, done: u64, total: u64) {
        let b = self.bar(id);
        if total > 0 && b.length() != Some(total) {
            b.set_length(total);
        }
        if b.message() == "Waiting" {
            b.set_message("Transferring");
        }
        b.set_position(done);
    }

    fn status(&self, id: &str, status: &str) {
        let b = self.bar(id);
        if is_final(status) {
            if let Some(len) = b.length().filter(|l| *l > 0) {
                b.set_position(len);
            }
            b.finish_with_message(status.to_string());
        } else {
            b.set_message(status.to_string());
        }
    }

    /// Print a line above the bars.
    fn println(&self, line: &str) {
        self.multi.suspend(|| println!("{line}"));
    }
}

/// Where a pull's or push's progress goes.
pub enum Display {
    /// `-q`: nothing.
    Quiet,
    /// The engine's lines on stdout.
    Plain,
    /// Live bars on stderr (a terminal), other lines on stdout.
    Bars(Arc<Bars>),
}

impl Display {
    /// Bars when stderr is a terminal, plain lines otherwise.
    pub fn choose(quiet: bool) -> Display {
        if quiet {
            Display::Quiet
        } else if io::stderr().is_terminal() {
            Display::Bars(Bars::new(ProgressDrawTarget::stderr()))
        } else {
            Display::Plain
        }
    }

    /// For the engine's options.
    pub fn layer_bytes(&self) -> Option<LayerBytes> {
        match self {
            Display::Bars(b) => {
                let b = b.clone();
                Some(LayerBytes(Arc::new(move |id, done, total| b.bytes(id, done, total))))
            }
            _ => None,
        }
    }

    /// For the engine's progress writer.
    pub fn writer(&self) -> Option<Box<dyn Write>> {
        match self {
            Display::Quiet => None,
            Display::Plain => Some(Box::new(io::stdout())),
            Display::Bars(b) => Some(Box::new(LineSplitter {
                bars: b.clone(),
                buf: Vec::new(),
            })),
        }
    }
}

/// Takes the engine's lines: layer lines move the bars, others are
/// printed above them.
struct LineSplitter {
    bars: Arc<Bars>,
    buf: Vec<u8>,
}

impl Write for LineSplitter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        while let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=i).collect();
            let line = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            match layer_line(&line) {
                Some((id, status)) => self.bars.status(id, status),
                None => self.bars.println(&line),
            }
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_lines_are_told_from_the_others() {
        assert_eq!(
            layer_line("0123456789ab: Pull complete"),
            Some(("0123456789ab", "Pull complete"))
        );
        assert_eq!(
            layer_line("abcdefabcdef: Mounted from x/y"),
            Some(("abcdefabcdef", "Mounted from x/y"))
        );
        for l in [
            "1: Pulling from private/app",
            "latest: digest: sha256:ab size: 3",
            "Digest: sha256:0123456789abcdef",
            "Status: Downloaded newer image for x",
            "0123456789ag: x",
        ] {
            assert_eq!(layer_line(l), None, "{l}");
        }
    }

    #[test]
    fn without_a_terminal_the_lines_are_the_engines() {
        // Under `cargo test` stderr is a pipe or a file, never drawn on.
        if io::stderr().is_terminal() {
            return;
        }
        let d = Display::choose(false);
        assert!(matches!(d, Display::Plain));
        assert!(d.layer_bytes().is_none(), "no byte counts without bars");
        assert!(matches!(Display::choose(true), Display::Quiet));
        assert!(Display::Quiet.writer().is_none());
    }

    #[test]
    fn bars_follow_lines_and_bytes() {
        let bars = Bars::new(ProgressDrawTarget::hidden());
        let d = Display::Bars(bars.clone());
        let bytes = d.layer_bytes().unwrap();
        let mut w = d.writer().unwrap();
        write!(w, "0123456789ab: Pulling fs layer\nDigest: sha256:").unwrap();
        (bytes.0)("0123456789ab", 10, 100);
        let b = bars.bar("0123456789ab");
        assert_eq!((b.position(), b.length()), (10, Some(100)));
        assert_eq!(b.message(), "Pulling fs layer");
        writeln!(w, "x\n0123456789ab: Pull complete").unwrap();
        assert!(b.is_finished());
        assert_eq!(b.position(), 100);
        assert_eq!(bars.layers.lock().unwrap().len(), 1, "non-layer lines make no bars");
    }
}
