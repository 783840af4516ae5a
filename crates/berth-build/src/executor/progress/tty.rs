//! The live terminal view (`--progress=tty`): one row per step (stage,
//! step number, instruction, state, elapsed time, image ID) and under each
//! running step the last lines of its output, redrawn in place.
//!
//! This is pure state and text: events go in with the time they happened,
//! [`TtyView::render`] returns the bytes that bring the terminal from the
//! last frame to the next. Rows are kept in the order steps started; as soon
//! as every row above a finished row is finished too it is printed for good
//! (the scrolling summary) and leaves the redrawn region, so the region
//! stays small and parallel stages never overwrite each other's lines.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Lines of output shown under a running step.
pub const TAIL_LINES: usize = 5;
/// Output kept per step for the failure report (its tail).
const KEEP_BYTES: usize = 1 << 20;

/// Where a step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Running,
    Cached,
    Done,
    Error,
    /// Stopped because another stage failed.
    Canceled,
}

impl State {
    fn word(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Cached => "cached",
            State::Done => "done",
            State::Error => "error",
            State::Canceled => "canceled",
        }
    }

    fn finished(self) -> bool {
        self != State::Running
    }
}

#[derive(Debug)]
struct Row {
    stage: String,
    n: usize,
    total: usize,
    text: String,
    state: State,
    started: Instant,
    ended: Option<Instant>,
    /// Short image ID once the step has one.
    id: Option<String>,
    tail: VecDeque<String>,
    /// An output line not ended yet.
    partial: String,
    /// Everything the step printed (its last [`KEEP_BYTES`]).
    full: Vec<u8>,
}

impl Row {
    fn title(&self) -> String {
        format!("[{} {}/{}] {}", self.stage, self.n, self.total, self.text)
    }

    fn push_output(&mut self, text: &str) {
        self.full.extend_from_slice(text.as_bytes());
        if self.full.len() > KEEP_BYTES {
            let cut = self.full.len() - KEEP_BYTES / 2;
            self.full.drain(..cut);
        }
        self.partial.push_str(text);
        while let Some(pos) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=pos).collect();
            self.push_line(line.trim_end_matches(['\n', '\r']).to_string());
        }
    }

    fn push_line(&mut self, line: String) {
        // A progress bar redraws with \r: only its last state matters.
        let line = line.rsplit('\r').next().unwrap_or_default().to_string();
        self.tail.push_back(line);
        while self.tail.len() > TAIL_LINES {
            self.tail.pop_front();
        }
    }

    fn elapsed(&self, now: Instant) -> Duration {
        self.ended.unwrap_or(now).saturating_duration_since(self.started)
    }
}

/// The view's state. Not thread-safe by itself: the progress facade holds
/// it under a lock.
#[derive(Debug)]
pub struct TtyView {
    rows: Vec<Row>,
    /// The running (or last) row of each stage.
    current: HashMap<String, usize>,
    /// Rows before this index are printed for good.
    flushed: usize,
    /// Lines that are not steps' (warnings before any step), printed next.
    loose: Vec<String>,
    /// Lines of the redrawn region on screen now.
    drawn: usize,
    width: usize,
}

impl TtyView {
    /// A view for a terminal `width` columns wide.
    pub fn new(width: usize) -> Self {
        TtyView {
            rows: Vec::new(),
            current: HashMap::new(),
            flushed: 0,
            loose: Vec::new(),
            drawn: 0,
            width: width.max(20),
        }
    }

    /// A step of `stage` starts (the previous step of the stage is over).
    pub fn step(&mut self, stage: &str, n: usize, total: usize, text: &str, now: Instant) {
        if let Some(&i) = self.current.get(stage) {
            let r = &mut self.rows[i];
            if r.state == State::Running {
                r.state = State::Done;
                r.ended = Some(now);
            }
        }
        self.rows.push(Row {
            stage: stage.to_string(),
            n,
            total,
            text: text.to_string(),
            state: State::Running,
            started: now,
            ended: None,
            id: None,
            tail: VecDeque::new(),
            partial: String::new(),
            full: Vec::new(),
        });
        self.current.insert(stage.to_string(), self.rows.len() - 1);
    }

    fn row(&mut self, stage: &str) -> Option<&mut Row> {
        let i = *self.current.get(stage)?;
        self.rows.get_mut(i)
    }

    /// Output of the stage's running step (any chunking).
    pub fn output(&mut self, stage: &str, text: &str) {
        match self.row(stage) {
            Some(r) => r.push_output(text),
            None => self.loose.extend(text.lines().map(String::from)),
        }
    }

    /// A line the builder says about the stage's step (pull progress,
    /// warnings, `Running in …`): shown like output.
    pub fn note(&mut self, stage: &str, text: &str) {
        let mut t = text.to_string();
        t.push('\n');
        self.output(stage, &t);
    }

    /// The stage's step ends: served from the cache or committed as `id`
    /// (empty: a step with no image, `FROM scratch`).
    pub fn finish_step(&mut self, stage: &str, id: &str, cached: bool, now: Instant) {
        if let Some(r) = self.row(stage) {
            // A cached step that ran ONBUILD triggers before stays done.
            if r.state == State::Running || r.state == State::Cached {
                r.state = if cached { State::Cached } else { State::Done };
            }
            r.ended = Some(now);
            r.id = Some(id.to_string()).filter(|i| !i.is_empty());
        }
    }

    /// The stage's running step failed (`canceled`: stopped for another's
    /// failure); a finished step stays as it is.
    pub fn fail_step(&mut self, stage: &str, canceled: bool, now: Instant) {
        if let Some(r) = self.row(stage).filter(|r| r.state == State::Running) {
            r.state = if canceled { State::Canceled } else { State::Error };
            r.ended = Some(now);
        }
    }

    fn fit(&self, s: &str) -> String {
        // One column spare: a line that fills the last column wraps on
        // some terminals and the cursor arithmetic goes wrong.
        let max = self.width - 1;
        let clean: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        if clean.chars().count() <= max {
            clean
        } else {
            let mut t: String = clean.chars().take(max - 1).collect();
            t.push('…');
            t
        }
    }

    /// A step's row: title on the left; state, time and ID in fixed
    /// columns on the right.
    fn row_line(&self, r: &Row, now: Instant) -> String {
        let right = format!(
            "{:>8} {:>6.1}s  {:<12}",
            r.state.word(),
            r.elapsed(now).as_secs_f64(),
            r.id.as_deref().unwrap_or("")
        );
        let title = r.title();
        let room = (self.width - 1).saturating_sub(right.chars().count() + 1);
        let title = if title.chars().count() > room {
            let mut t: String = title.chars().take(room.saturating_sub(1)).collect();
            t.push('…');
            t
        } else {
            title
        };
        let pad = room.saturating_sub(title.chars().count());
        self.fit(format!("{title}{} {right}", " ".repeat(pad)).trim_end())
    }

    /// The lines of the redrawn region at `now`.
    pub fn live_lines(&self, now: Instant) -> Vec<String> {
        let mut out = Vec::new();
        for r in &self.rows[self.flushed..] {
            out.push(self.row_line(r, now));
            if r.state == State::Running {
                let mut tail: Vec<&str> = r.tail.iter().map(String::as_str).collect();
                if !r.partial.is_empty() {
                    tail.push(r.partial.rsplit('\r').next().unwrap_or_default());
                }
                let skip = tail.len().saturating_sub(TAIL_LINES);
                for l in &tail[skip..] {
                    out.push(self.fit(&format!("  | {l}")));
                }
            }
        }
        out
    }

    /// The bytes that replace the last frame with the one at `now`:
    /// cursor up over the old region, clear to the end of the screen,
    /// the lines that are final now, then the new region.
    pub fn render(&mut self, now: Instant) -> String {
        let mut s = String::new();
        if self.drawn > 0 {
            s.push_str(&format!("\x1b[{}A", self.drawn));
        }
        s.push_str("\r\x1b[J");
        for l in std::mem::take(&mut self.loose) {
            s.push_str(&self.fit(&l));
            s.push('\n');
        }
        while self.flushed < self.rows.len() && self.rows[self.flushed].state.finished() {
            s.push_str(&self.row_line(&self.rows[self.flushed], now));
            s.push('\n');
            self.flushed += 1;
        }
        let live = self.live_lines(now);
        for l in &live {
            s.push_str(l);
            s.push('\n');
        }
        self.drawn = live.len();
        s
    }

    /// The last frame: steps still running are marked canceled (the build
    /// is over), every row printed for good; with `failed`, the output of
    /// the failed steps follows in full.
    pub fn finish(&mut self, now: Instant) -> String {
        let mut failed = Vec::new();
        for (i, r) in self.rows.iter_mut().enumerate() {
            if r.state == State::Running {
                r.state = State::Canceled;
                r.ended = Some(now);
            }
            if r.state == State::Error && !r.full.is_empty() {
                failed.push(i);
            }
        }
        let mut s = self.render(now);
        for i in failed {
            let r = &self.rows[i];
            s.push_str("------\n");
            s.push_str(&format!(" > {}:\n", r.title()));
            let text = String::from_utf8_lossy(&r.full);
            s.push_str(&text);
            if !text.is_empty() && !text.ends_with('\n') {
                s.push('\n');
            }
            s.push_str("------\n");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip(s: &str) -> String {
        s.replace("\x1b[J", "").replace('\r', "")
    }

    #[test]
    fn running_step_shows_its_output_tail_then_flushes_with_its_id() {
        let t0 = Instant::now();
        let mut v = TtyView::new(60);
        v.step("stage-0", 1, 2, "FROM bb", t0);
        v.finish_step("stage-0", "0123456789ab", false, t0);
        v.step("stage-0", 2, 2, "RUN make", t0);
        v.output("stage-0", "line1\nline2\npart");
        let f = v.render(t0 + Duration::from_millis(1500));
        let lines: Vec<&str> = f.lines().collect();
        // The FROM row is final: printed once, above the region.
        assert!(lines[0].starts_with("\r\x1b[J[stage-0 1/2] FROM bb"), "{f:?}");
        assert!(lines[0].ends_with("done    0.0s  0123456789ab"), "{f:?}");
        assert!(lines[1].starts_with("[stage-0 2/2] RUN make"), "{f:?}");
        assert!(lines[1].ends_with("running    1.5s"), "{f:?}");
        assert_eq!(&lines[2..], ["  | line1", "  | line2", "  | part"]);
        assert!(lines.iter().all(|l| l.chars().count() < 60 + 4), "{f:?}");
        // The next frame moves up over the 4-line region only.
        v.output("stage-0", "ial\n");
        let f = v.render(t0 + Duration::from_secs(2));
        assert!(f.starts_with("\x1b[4A\r\x1b[J[stage-0 2/2] RUN make"), "{f:?}");
        assert!(f.contains("  | partial\n"), "{f:?}");
        v.finish_step("stage-0", "fedcba987654", false, t0 + Duration::from_secs(3));
        let f = v.finish(t0 + Duration::from_secs(4));
        assert!(f.starts_with("\x1b[4A"), "{f:?}");
        let s = strip(&f);
        assert!(s.contains("RUN make"), "{s}");
        assert!(s.trim_end().ends_with("done    3.0s  fedcba987654"), "{s}");
        assert!(!s.contains("line1"), "output of good steps is not repeated: {s}");
    }

    #[test]
    fn tail_is_bounded_and_carriage_returns_keep_the_last_state() {
        let t0 = Instant::now();
        let mut v = TtyView::new(80);
        v.step("a", 1, 1, "RUN x", t0);
        for i in 0..20 {
            v.output("a", &format!("out {i}\n"));
        }
        v.output("a", "10%\r50%\r100%\n");
        let live = v.live_lines(t0);
        assert_eq!(live.len(), 1 + TAIL_LINES);
        assert_eq!(live.last().unwrap(), "  | 100%");
        assert_eq!(live[1], "  | out 16");
    }

    #[test]
    fn parallel_stages_keep_their_own_rows() {
        let t0 = Instant::now();
        let mut v = TtyView::new(80);
        v.step("a", 1, 4, "RUN sleep 1", t0);
        v.step("b", 3, 4, "RUN echo b", t0);
        v.output("b", "from b\n");
        v.output("a", "from a\n");
        v.finish_step("b", "bbbbbbbbbbbb", false, t0);
        let f = v.render(t0);
        // b is done but a (above it) runs: both stay in the region, each
        // with its own output.
        let lines: Vec<&str> = f.lines().collect();
        assert!(lines[0].contains("[a 1/4] RUN sleep 1") && lines[0].contains("running"));
        assert_eq!(lines[1], "  | from a");
        assert!(lines[2].contains("[b 3/4] RUN echo b") && lines[2].contains("bbbbbbbbbbbb"));
        assert_eq!(lines.len(), 3, "a finished step shows no output: {f:?}");
        v.fail_step("a", false, t0);
        let f = v.finish(t0);
        let s = strip(&f);
        assert!(s.starts_with("\x1b[3A"), "{s:?}");
        assert!(s.contains("error"), "{s}");
        assert!(s.contains("------\n > [a 1/4] RUN sleep 1:\nfrom a\n------\n"), "{s}");
    }

    #[test]
    fn long_titles_and_control_characters_never_wrap() {
        let t0 = Instant::now();
        let mut v = TtyView::new(30);
        v.step("stage-0", 1, 1, &"RUN echo ".repeat(20), t0);
        v.output("stage-0", &format!("{}\x1b[31mred\n", "x".repeat(100)));
        for l in v.live_lines(t0) {
            assert!(l.chars().count() <= 29, "{l:?}");
            assert!(!l.contains('\x1b'), "{l:?}");
        }
        assert!(v.live_lines(t0)[0].ends_with("running    0.0s"));
    }

    #[test]
    fn loose_lines_and_cancelled_steps() {
        let t0 = Instant::now();
        let mut v = TtyView::new(80);
        v.note("", "[Warning] --cache-from x: gone");
        v.step("a", 1, 2, "RUN true", t0);
        v.finish_step("a", "aaaaaaaaaaaa", true, t0);
        v.step("a", 2, 2, "RUN sleep 9", t0);
        let f = v.finish(t0 + Duration::from_secs(1));
        let s = strip(&f);
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], "[Warning] --cache-from x: gone");
        assert!(lines[1].ends_with("cached    0.0s  aaaaaaaaaaaa"), "{s}");
        assert!(lines[2].ends_with("canceled    1.0s"), "{s}");
        assert_eq!(lines.len(), 3);
    }
}
