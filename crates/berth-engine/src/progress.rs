//! Progress as events: what pull, push, load, build and `run`'s pull tell
//! while they work — a layer's status, bytes moved, a build step, a line of
//! a step's output, the image made — as data, never as pre-rendered text.
//! Each front renders them its own way: the CLI as Docker's plain lines
//! ([`Event::plain_line`]) or its live terminal view, the API server as
//! Docker's JSON progress messages, compose as its own view.
//!
//! A [`Progress`] is a cheap, cloneable, thread-safe sink; the engine calls
//! it from whatever thread does the work. It must never block for long: a
//! slow sink slows the operation down.

use std::sync::Arc;

pub use berth_build::executor::BuildEvent;

/// One thing an operation says while it works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A line about the operation as a whole, shown as it is: `Using
    /// default tag: latest`, `latest: Pulling from app`, `Digest: sha256:…`,
    /// `Status: Downloaded newer image for app:latest`, `The push refers to
    /// repository [127.0.0.1:5000/app]`, `latest: digest: sha256:… size: 528`.
    Status(String),
    /// A layer moved on: its short ID (12 hex digits) and Docker's status
    /// for it (`Pull complete`, `Already exists`, `Pushed`, `Layer already
    /// exists`, `Mounted from other/repo`, `Resuming download at 3.1MB`).
    Layer {
        /// The layer's short ID.
        id: String,
        /// What happened to it.
        status: String,
    },
    /// Bytes of a layer moved: `current` of `total` (0 while unknown, e.g.
    /// while a layer is compressed for a push).
    Bytes {
        /// The layer's short ID.
        id: String,
        /// Bytes done.
        current: u64,
        /// Bytes in all, 0 when not known.
        total: u64,
    },
    /// `run`/`create` looked for its image and it is not in the store (the
    /// pull, if the policy allows one, follows).
    ImageMissing {
        /// The image as Docker shows it (`app:latest`).
        name: String,
    },
    /// An image is in the store now (pulled, loaded, built).
    Image {
        /// Its ID (`sha256:…`).
        id: String,
        /// The name it was given, if any.
        name: Option<String>,
    },
    /// A build step started, was cached, finished or failed; a line of a
    /// step's output.
    Build(BuildEvent),
}

impl Event {
    /// The line Docker's CLI prints for this event when its output is not
    /// a terminal (no newline), or `None` for events that have no line of
    /// their own (byte counts, build events, which the build renders).
    pub fn plain_line(&self) -> Option<String> {
        match self {
            Event::Status(s) => Some(s.clone()),
            Event::Layer { id, status } => Some(format!("{id}: {status}")),
            Event::ImageMissing { name } => Some(format!("Unable to find image '{name}' locally")),
            Event::Bytes { .. } | Event::Image { .. } | Event::Build(_) => None,
        }
    }
}

/// Where an operation's events go.
#[derive(Clone, Default)]
pub struct Progress(Option<Arc<dyn Fn(Event) + Send + Sync>>);

impl Progress {
    /// Events go to `f` (called from the threads doing the work).
    pub fn new(f: impl Fn(Event) + Send + Sync + 'static) -> Self {
        Progress(Some(Arc::new(f)))
    }

    /// Events go nowhere (a quiet pull, `--pull=missing` inside a build).
    pub fn none() -> Self {
        Progress(None)
    }

    /// Whether anyone listens (so costly details can be skipped).
    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// Tells the sink.
    pub fn emit(&self, e: Event) {
        if let Some(f) = &self.0 {
            f(e)
        }
    }

    /// A line about the whole operation.
    pub fn status(&self, s: impl Into<String>) {
        if self.is_on() {
            self.emit(Event::Status(s.into()))
        }
    }

    /// A layer's new status.
    pub fn layer(&self, id: &str, status: impl Into<String>) {
        if self.is_on() {
            self.emit(Event::Layer {
                id: id.to_string(),
                status: status.into(),
            })
        }
    }

    /// Bytes moved for a layer.
    pub fn bytes(&self, id: &str, current: u64, total: u64) {
        if self.is_on() {
            self.emit(Event::Bytes {
                id: id.to_string(),
                current,
                total,
            })
        }
    }

    /// A sink that keeps the plain lines of the events, for a caller that
    /// wants them as text (a build shows its base image's pull so).
    pub fn collect_lines() -> (Progress, Arc<std::sync::Mutex<String>>) {
        let text = Arc::new(std::sync::Mutex::new(String::new()));
        let t = text.clone();
        let p = Progress::new(move |e| {
            if let Some(l) = e.plain_line() {
                let mut g = t.lock().unwrap_or_else(|p| p.into_inner());
                g.push_str(&l);
                g.push('\n');
            }
        });
        (p, text)
    }
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_on() { "Progress(on)" } else { "Progress(none)" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_are_dockers() {
        let (p, text) = Progress::collect_lines();
        p.status("Using default tag: latest");
        p.layer("0123456789ab", "Pull complete");
        p.bytes("0123456789ab", 10, 100);
        p.emit(Event::ImageMissing {
            name: "app:latest".into(),
        });
        assert_eq!(
            *text.lock().unwrap(),
            "Using default tag: latest\n0123456789ab: Pull complete\nUnable to find image 'app:latest' locally\n"
        );
        // Nobody listening: nothing is built.
        Progress::none().layer("x", "y");
    }
}
