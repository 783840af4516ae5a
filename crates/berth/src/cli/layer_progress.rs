//! How `pull`, `push` and `run`'s pull show their progress: on a
//! terminal, one live line per layer (its short ID, a bar, bytes, its
//! status); otherwise Docker's plain lines (`abc123def456: Pull complete`),
//! which logs and scripts read.
//!
//! The engine tells events (a layer's status, bytes moved, a line about
//! the whole pull); [`Display`] turns them into either form.

use std::collections::HashMap;
use std::io::{self, IsTerminal, Write};
use std::sync::{Arc, Mutex};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use berth_engine::progress::{Event, Progress};

/// Writes an event's plain line to `w`, flushed at once.
fn put_line(w: &mut dyn Write, e: &Event) {
    if let Some(l) = e.plain_line() {
        let _ = writeln!(w, "{l}");
        let _ = w.flush();
    }
}

/// Docker's plain lines on stderr (what `run` and `create` show of a
/// pull: after `Unable to find image 'x:latest' locally` no `Using default
/// tag: latest`, as Docker's).
pub fn plain_to_stderr() -> Progress {
    Progress::new(|e| {
        if !matches!(&e, berth_engine::progress::Event::Status(s) if s == "Using default tag: latest") {
            put_line(&mut io::stderr().lock(), &e)
        }
    })
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

    /// The sink the engine's events go to.
    pub fn progress(&self) -> Progress {
        match self {
            Display::Quiet => Progress::none(),
            Display::Plain => Progress::new(|e| put_line(&mut io::stdout().lock(), &e)),
            Display::Bars(b) => {
                let bars = b.clone();
                Progress::new(move |e| match &e {
                    Event::Layer { id, status } => bars.status(id, status),
                    Event::Bytes { id, current, total } => bars.bytes(id, *current, *total),
                    e => {
                        if let Some(l) = e.plain_line() {
                            bars.println(&l)
                        }
                    }
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_terminal_the_lines_are_dockers() {
        // Under `cargo test` stderr is a pipe or a file, never drawn on.
        if io::stderr().is_terminal() {
            return;
        }
        assert!(matches!(Display::choose(false), Display::Plain));
        assert!(matches!(Display::choose(true), Display::Quiet));
        assert!(!Display::Quiet.progress().is_on());
        let mut out = Vec::new();
        put_line(
            &mut out,
            &Event::Layer {
                id: "0123456789ab".into(),
                status: "Pull complete".into(),
            },
        );
        put_line(
            &mut out,
            &Event::Bytes {
                id: "0123456789ab".into(),
                current: 1,
                total: 2,
            },
        );
        put_line(&mut out, &Event::Status("Digest: sha256:ab".into()));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "0123456789ab: Pull complete\nDigest: sha256:ab\n"
        );
    }

    #[test]
    fn bars_follow_layer_events_and_bytes() {
        let bars = Bars::new(ProgressDrawTarget::hidden());
        let p = Display::Bars(bars.clone()).progress();
        p.layer("0123456789ab", "Pulling fs layer");
        p.status("Digest: sha256:x");
        p.bytes("0123456789ab", 10, 100);
        let b = bars.bar("0123456789ab");
        assert_eq!((b.position(), b.length()), (10, Some(100)));
        assert_eq!(b.message(), "Pulling fs layer");
        p.layer("0123456789ab", "Pull complete");
        assert!(b.is_finished());
        assert_eq!(b.position(), 100);
        assert_eq!(bars.layers.lock().unwrap().len(), 1, "non-layer lines make no bars");
    }
}
