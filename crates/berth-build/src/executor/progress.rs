//! Build output in the classic builder's plain format (`Step 3/9 : RUN
//! make`, ` ---> Using cache`, ` ---> 4f2a9c1e0b7d`), shared by the stage
//! threads. Lines of stages that run beside another stage carry the stage
//! name (`[build] `) so interleaved output stays readable.
//!
//! Quiet mode (`-q`) prints nothing but keeps what it would have printed, so
//! a failure can still show the failing step's output.

use std::io::Write;
use std::sync::Mutex;

/// Where build output goes.
pub struct Progress {
    out: Mutex<Box<dyn Write + Send>>,
    quiet: bool,
    /// Prefix lines with the stage name.
    prefix: bool,
    /// Quiet mode: everything, for the failure report.
    kept: Mutex<Vec<u8>>,
}

impl Progress {
    pub fn new(out: Box<dyn Write + Send>, quiet: bool) -> Self {
        Progress {
            out: Mutex::new(out),
            quiet,
            prefix: false,
            kept: Mutex::new(Vec::new()),
        }
    }

    /// Turn stage prefixes on (set before the stage threads start).
    pub fn set_prefix(&mut self, on: bool) {
        self.prefix = on;
    }

    pub fn is_quiet(&self) -> bool {
        self.quiet
    }

    fn emit(&self, bytes: &[u8]) {
        if self.quiet {
            let mut k = self.kept.lock().unwrap_or_else(|p| p.into_inner());
            // Keep the tail only: enough for the failing step.
            if k.len() > (1 << 20) {
                let cut = k.len() - (1 << 19);
                k.drain(..cut);
            }
            k.extend_from_slice(bytes);
            return;
        }
        let mut o = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let _ = o.write_all(bytes);
        let _ = o.flush();
    }

    /// One line of builder output for `stage` (no trailing newline needed).
    pub fn line(&self, stage: &str, text: &str) {
        let mut s = String::with_capacity(text.len() + stage.len() + 4);
        if self.prefix && !stage.is_empty() {
            s.push('[');
            s.push_str(stage);
            s.push_str("] ");
        }
        s.push_str(text);
        s.push('\n');
        self.emit(s.as_bytes());
    }

    /// Output of a step's container: passed through as it comes, each line
    /// prefixed when stages run in parallel.
    pub fn output(&self, stage: &str, text: &str) {
        if !self.prefix || stage.is_empty() {
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

    /// Text that goes out even in quiet mode (the final ID of `-q`).
    pub fn always(&self, text: &str) {
        let mut o = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let _ = o.write_all(text.as_bytes());
        let _ = o.flush();
    }

    /// What quiet mode held back (empty otherwise).
    pub fn kept(&self) -> String {
        String::from_utf8_lossy(&self.kept.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

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

    #[test]
    fn prefixes_each_output_line_when_parallel() {
        let b = Buf::default();
        let mut p = Progress::new(Box::new(b.clone()), false);
        p.set_prefix(true);
        p.line("a", "Step 1/2 : FROM bb");
        p.output("a", "x\ny\n");
        let s = String::from_utf8(b.0.lock().unwrap().clone()).unwrap();
        assert_eq!(s, "[a] Step 1/2 : FROM bb\n[a] x\n[a] y\n");
    }

    #[test]
    fn quiet_keeps_output_for_failures() {
        let b = Buf::default();
        let p = Progress::new(Box::new(b.clone()), true);
        p.line("", "Step 1/1 : RUN false");
        p.always("sha256:x\n");
        assert_eq!(String::from_utf8(b.0.lock().unwrap().clone()).unwrap(), "sha256:x\n");
        assert!(p.kept().contains("Step 1/1"));
    }
}
