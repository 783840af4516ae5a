//! Build output, shared by the stage threads. Three styles:
//!
//! - plain: the classic builder's lines (`Step 3/9 : RUN make`, ` --->
//!   Using cache`, ` ---> 4f2a9c1e0b7d`); lines of stages that run beside
//!   another stage carry the stage name (`[build] `) so interleaved output
//!   stays readable;
//! - tty: a live view redrawn in place ([`tty::TtyView`]), ten times a
//!   second and on every step event;
//! - quiet (`-q`): nothing, but what plain would have printed is kept, so
//!   a failure can still show the failing step's output.
//!
//! The executor reports events (a step starts, is cached, is committed,
//! fails; a container prints); each style renders them. A progress made
//! with [`Progress::to_events`] renders nothing and hands each event on as
//! a [`BuildEvent`] instead, for a front that renders (or serialises) them
//! itself; [`Progress::apply`] renders such an event, so a front can feed
//! them to a plain or tty [`Progress`] of its own and print exactly what
//! the builder would have printed.

pub mod tty;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tty::TtyView;

/// How build output looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    Plain,
    /// The live view, for a terminal this many columns wide.
    Tty {
        width: usize,
    },
    Quiet,
}

/// One thing a build says, as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildEvent {
    /// Stages run side by side (plain lines then carry the stage name).
    Parallel(bool),
    /// Step `n` of `total` of `stage` starts: `text` is the instruction.
    Step {
        /// The stage's name (`stage-0`, or its `AS` name).
        stage: String,
        /// The step's number, from 1.
        n: usize,
        /// The stage's steps.
        total: usize,
        /// The instruction as written.
        text: String,
    },
    /// The step was served from the cache: it is image `id` (short).
    Cached {
        /// The stage.
        stage: String,
        /// The step's image ID, short.
        id: String,
    },
    /// The step is done: image `id` (short).
    Done {
        /// The stage.
        stage: String,
        /// The step's image ID, short.
        id: String,
    },
    /// The step is over without an image (`FROM scratch`).
    Settled {
        /// The stage.
        stage: String,
    },
    /// The step failed (`canceled`: because another stage did).
    Failed {
        /// The stage.
        stage: String,
        /// Stopped because another stage failed.
        canceled: bool,
    },
    /// A line the builder says about the stage (a warning, a base image's pull).
    Line {
        /// The stage.
        stage: String,
        /// The line, no newline.
        text: String,
    },
    /// Output of the step's container, as it came (newlines included).
    Output {
        /// The stage.
        stage: String,
        /// The bytes, as text.
        text: String,
    },
}

/// Where [`Progress::to_events`] sends events.
pub type EventSink = Arc<dyn Fn(BuildEvent) + Send + Sync>;

/// How often the live view redraws when nothing happens (elapsed times).
const TICK: Duration = Duration::from_millis(100);

/// The writer and, in tty mode, the view (one lock: frames never interleave).
struct Out {
    w: Box<dyn Write + Send>,
    view: Option<TtyView>,
}

impl Out {
    /// Writes and flushes (a terminal must show it now); output errors
    /// never stop a build.
    fn put(&mut self, bytes: &[u8]) {
        let _ = self.w.write_all(bytes);
        let _ = self.w.flush();
    }

    /// Redraws the live view, if there is one.
    fn redraw(&mut self) {
        if let Some(v) = &mut self.view {
            let frame = v.render(Instant::now());
            self.put(frame.as_bytes());
        }
    }
}

/// Where build output goes.
pub struct Progress {
    out: Arc<Mutex<Out>>,
    mode: ProgressMode,
    /// Prefix lines with the stage name (plain).
    prefix: AtomicBool,
    /// Quiet mode: everything, for the failure report.
    kept: Mutex<Vec<u8>>,
    /// The tty ticker: its stop flag and thread.
    ticker: Mutex<Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)>>,
    /// Events go here instead of being rendered.
    events: Option<EventSink>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Progress {
    pub fn new(out: Box<dyn Write + Send>, mode: ProgressMode) -> Self {
        let view = match mode {
            ProgressMode::Tty { width } => Some(TtyView::new(width)),
            _ => None,
        };
        let out = Arc::new(Mutex::new(Out { w: out, view }));
        let ticker = matches!(mode, ProgressMode::Tty { .. }).then(|| {
            let stop = Arc::new(AtomicBool::new(false));
            let (o, s) = (out.clone(), stop.clone());
            let t = std::thread::spawn(move || {
                while !s.load(Ordering::SeqCst) {
                    std::thread::park_timeout(TICK);
                    if s.load(Ordering::SeqCst) {
                        break;
                    }
                    lock(&o).redraw();
                }
            });
            (stop, t)
        });
        Progress {
            out,
            mode,
            prefix: AtomicBool::new(false),
            kept: Mutex::new(Vec::new()),
            ticker: Mutex::new(ticker),
            events: None,
        }
    }

    /// A progress that renders nothing and hands every event to `sink`.
    pub fn to_events(sink: EventSink) -> Self {
        let mut p = Progress::new(Box::new(std::io::sink()), ProgressMode::Quiet);
        p.events = Some(sink);
        p
    }

    /// Hands `e` to the event sink, if this progress has one.
    fn sent(&self, e: impl FnOnce() -> BuildEvent) -> bool {
        match &self.events {
            Some(s) => {
                s(e());
                true
            }
            None => false,
        }
    }

    /// Renders an event as if the builder had reported it here.
    pub fn apply(&self, e: BuildEvent) {
        match e {
            BuildEvent::Parallel(on) => self.set_prefix(on),
            BuildEvent::Step { stage, n, total, text } => self.step(&stage, n, total, &text),
            BuildEvent::Cached { stage, id } => self.cached(&stage, &id),
            BuildEvent::Done { stage, id } => self.done(&stage, &id),
            BuildEvent::Settled { stage } => self.settled(&stage),
            BuildEvent::Failed { stage, canceled } => self.failed(&stage, canceled),
            BuildEvent::Line { stage, text } => self.line(&stage, &text),
            BuildEvent::Output { stage, text } => self.output(&stage, &text),
        }
    }

    /// Turn stage prefixes on (set before the stage threads start).
    pub fn set_prefix(&self, on: bool) {
        if self.sent(|| BuildEvent::Parallel(on)) {
            return;
        }
        self.prefix.store(on, Ordering::SeqCst);
    }

    fn prefixed(&self) -> bool {
        self.prefix.load(Ordering::SeqCst)
    }

    pub fn is_quiet(&self) -> bool {
        self.mode == ProgressMode::Quiet
    }

    fn emit(&self, bytes: &[u8]) {
        if self.is_quiet() {
            let mut k = lock(&self.kept);
            // Keep the tail only: enough for the failing step.
            if k.len() > (1 << 20) {
                let cut = k.len() - (1 << 19);
                k.drain(..cut);
            }
            k.extend_from_slice(bytes);
            return;
        }
        lock(&self.out).put(bytes);
    }

    /// Tty mode: change the view, and redraw when `redraw`. Returns false
    /// in the other modes (the caller prints plain lines).
    fn view(&self, redraw: bool, f: impl FnOnce(&mut TtyView)) -> bool {
        if !matches!(self.mode, ProgressMode::Tty { .. }) {
            return false;
        }
        let mut g = lock(&self.out);
        let Some(v) = g.view.as_mut() else { return false };
        f(v);
        if redraw {
            g.redraw();
        }
        true
    }

    fn plain_line(&self, stage: &str, text: &str) {
        let mut s = String::with_capacity(text.len() + stage.len() + 4);
        if self.prefixed() && !stage.is_empty() {
            s.push('[');
            s.push_str(stage);
            s.push_str("] ");
        }
        s.push_str(text);
        s.push('\n');
        self.emit(s.as_bytes());
    }

    /// A step of `stage` starts: `Step n/total : text`.
    pub fn step(&self, stage: &str, n: usize, total: usize, text: &str) {
        if self.sent(|| BuildEvent::Step {
            stage: stage.into(),
            n,
            total,
            text: text.into(),
        }) {
            return;
        }
        if !self.view(true, |v| v.step(stage, n, total, text, Instant::now())) {
            self.plain_line(stage, &format!("Step {n}/{total} : {text}"));
        }
    }

    /// The stage's step was served from the cache: it is image `id`.
    pub fn cached(&self, stage: &str, id: &str) {
        if self.sent(|| BuildEvent::Cached {
            stage: stage.into(),
            id: id.into(),
        }) {
            return;
        }
        if !self.view(true, |v| v.finish_step(stage, id, true, Instant::now())) {
            self.plain_line(stage, " ---> Using cache");
            self.plain_line(stage, &format!(" ---> {id}"));
        }
    }

    /// The stage's step is done: image `id`.
    pub fn done(&self, stage: &str, id: &str) {
        if self.sent(|| BuildEvent::Done {
            stage: stage.into(),
            id: id.into(),
        }) {
            return;
        }
        if !self.view(true, |v| v.finish_step(stage, id, false, Instant::now())) {
            self.plain_line(stage, &format!(" ---> {id}"));
        }
    }

    /// The stage's step is over without an image (`FROM scratch`).
    pub fn settled(&self, stage: &str) {
        if self.sent(|| BuildEvent::Settled { stage: stage.into() }) {
            return;
        }
        self.view(true, |v| v.finish_step(stage, "", false, Instant::now()));
    }

    /// The stage's step failed (`canceled`: because another stage did).
    pub fn failed(&self, stage: &str, canceled: bool) {
        if self.sent(|| BuildEvent::Failed {
            stage: stage.into(),
            canceled,
        }) {
            return;
        }
        self.view(true, |v| v.fail_step(stage, canceled, Instant::now()));
    }

    /// One line the builder says about `stage` (no trailing newline needed).
    pub fn line(&self, stage: &str, text: &str) {
        if self.sent(|| BuildEvent::Line {
            stage: stage.into(),
            text: text.into(),
        }) {
            return;
        }
        if !self.view(true, |v| v.note(stage, text)) {
            self.plain_line(stage, text);
        }
    }

    /// Output of a step's container: passed through as it comes, each line
    /// prefixed when stages run in parallel (plain); the view shows its tail.
    pub fn output(&self, stage: &str, text: &str) {
        if self.sent(|| BuildEvent::Output {
            stage: stage.into(),
            text: text.into(),
        }) {
            return;
        }
        if self.view(false, |v| v.output(stage, text)) {
            return;
        }
        if !self.prefixed() || stage.is_empty() {
            self.emit(text.as_bytes());
            return;
        }
        let mut s = String::with_capacity(text.len() + 16);
        for l in text.split_inclusive('\n') {
            s.push('[');
            s.push_str(stage);
            s.push_str("] ");
            s.push_str(l);
        }
        self.emit(s.as_bytes());
    }

    /// The build is over: the live view stops and leaves its summary (and
    /// the failed steps' output). Nothing to do in the other modes.
    pub fn finish(&self) {
        let ticker = lock(&self.ticker).take();
        if let Some((stop, t)) = ticker {
            stop.store(true, Ordering::SeqCst);
            t.thread().unpark();
            let _ = t.join();
        }
        let mut g = lock(&self.out);
        if let Some(v) = &mut g.view {
            let frame = v.finish(Instant::now());
            g.put(frame.as_bytes());
        }
    }

    /// Text that goes out even in quiet mode (the final ID of `-q`).
    pub fn always(&self, text: &str) {
        lock(&self.out).put(text.as_bytes());
    }

    /// What quiet mode held back (empty otherwise).
    pub fn kept(&self) -> String {
        String::from_utf8_lossy(&lock(&self.kept)).into_owned()
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if lock(&self.ticker).is_some() {
            self.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Buf {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[test]
    fn plain_prints_the_classic_lines_prefixed_when_parallel() {
        let b = Buf::default();
        let p = Progress::new(Box::new(b.clone()), ProgressMode::Plain);
        p.set_prefix(true);
        p.step("a", 1, 2, "FROM bb");
        p.done("a", "0123456789ab");
        p.step("a", 2, 2, "RUN x");
        p.output("a", "x\ny\n");
        p.cached("a", "ba9876543210");
        p.finish();
        assert_eq!(
            b.text(),
            "[a] Step 1/2 : FROM bb\n[a]  ---> 0123456789ab\n[a] Step 2/2 : RUN x\n[a] x\n[a] y\n\
             [a]  ---> Using cache\n[a]  ---> ba9876543210\n"
        );
    }

    #[test]
    fn events_rendered_elsewhere_print_the_same_bytes() {
        let direct = Buf::default();
        let relayed = Buf::default();
        let renderer = Arc::new(Progress::new(Box::new(relayed.clone()), ProgressMode::Plain));
        let r = renderer.clone();
        let sink: EventSink = Arc::new(move |e| r.apply(e));
        for p in [
            Progress::new(Box::new(direct.clone()), ProgressMode::Plain),
            Progress::to_events(sink),
        ] {
            p.set_prefix(true);
            p.step("a", 1, 2, "FROM bb");
            p.done("a", "0123456789ab");
            p.step("a", 2, 2, "RUN x");
            p.output("a", "x\ny\n");
            p.line("a", "note");
            p.cached("a", "ba9876543210");
            p.failed("a", false);
            p.finish();
        }
        renderer.finish();
        assert!(!direct.text().is_empty());
        assert_eq!(relayed.text(), direct.text());
    }

    #[test]
    fn quiet_keeps_output_for_failures() {
        let b = Buf::default();
        let p = Progress::new(Box::new(b.clone()), ProgressMode::Quiet);
        p.step("", 1, 1, "RUN false");
        p.always("sha256:x\n");
        assert_eq!(b.text(), "sha256:x\n");
        assert!(p.kept().contains("Step 1/1"));
    }

    #[test]
    fn tty_redraws_in_place_and_ends_with_a_summary() {
        let b = Buf::default();
        let p = Progress::new(Box::new(b.clone()), ProgressMode::Tty { width: 80 });
        p.step("stage-0", 1, 2, "FROM bb");
        p.done("stage-0", "0123456789ab");
        p.step("stage-0", 2, 2, "RUN false");
        p.output("stage-0", "boom\n");
        p.failed("stage-0", false);
        p.finish();
        let s = b.text();
        assert!(s.contains("\x1b[J"), "{s:?}");
        assert!(s.contains("A\r\x1b[J"), "the running row was redrawn: {s:?}");
        assert!(s.contains("[stage-0 1/2] FROM bb"), "{s:?}");
        assert!(s.contains("0123456789ab"), "{s:?}");
        assert!(s.ends_with(" > [stage-0 2/2] RUN false:\nboom\n------\n"), "{s:?}");
    }
}
