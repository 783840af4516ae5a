//! `.dockerignore` files and `--exclude` patterns: parsing and matching
//! with Docker's rules.
//!
//! It decides visibility only; it must never read or walk the context
//! itself. Rules: one pattern per line, lines starting with `#` are
//! comments, blank lines are skipped, each pattern is trimmed and cleaned
//! like Go's `filepath.Clean` with a leading `/` dropped; `**` matches any
//! number of directories; `!pattern` re-includes; the last matching rule
//! wins; a pattern that matches a directory matches everything below it.

use super::pattern::{match_segs, may_match_below, Seg};
use super::ContextError;

/// One compiled rule.
#[derive(Debug, Clone)]
struct Rule {
    segs: Vec<Seg>,
    /// `!pattern`: re-include.
    exception: bool,
}

impl Rule {
    /// The rule matches `path` or one of its ancestors.
    fn matches(&self, path: &[&str]) -> bool {
        (1..=path.len()).any(|n| match_segs(&self.segs, &path[..n]))
    }
}

/// A compiled list of ignore rules.
#[derive(Debug, Clone, Default)]
pub struct IgnoreMatcher {
    rules: Vec<Rule>,
    has_exceptions: bool,
}

impl IgnoreMatcher {
    /// Parse the text of a `.dockerignore` file.
    pub fn parse(text: &str) -> Result<Self, ContextError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        Self::new(&lines)
    }

    /// Compile a list of patterns (as in `.dockerignore`, without comments),
    /// e.g. `COPY --exclude` values.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, ContextError> {
        let mut m = IgnoreMatcher::default();
        for raw in patterns {
            let mut p = raw.as_ref().trim();
            if p.is_empty() {
                continue;
            }
            let exception = p.starts_with('!');
            if exception {
                p = p[1..].trim();
            }
            let cleaned = clean(p);
            if cleaned.is_empty() {
                // `.` or `/`: Docker never matches the context root itself.
                continue;
            }
            let segs = cleaned
                .split('/')
                .map(|s| Seg::compile(s, true))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ContextError::BadPattern {
                    pattern: raw.as_ref().trim().to_owned(),
                    reason: e.0,
                })?;
            m.has_exceptions |= exception;
            m.rules.push(Rule { segs, exception });
        }
        Ok(m)
    }

    /// No rules at all.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Is the context-relative path `rel` (`a/b/c`, no leading `/`)
    /// excluded?
    pub fn is_ignored(&self, rel: &str) -> bool {
        let segs = split(rel);
        self.ignored_segs(&segs)
    }

    pub(crate) fn ignored_segs(&self, path: &[&str]) -> bool {
        if path.is_empty() {
            return false;
        }
        let mut ignored = false;
        for r in &self.rules {
            // A rule can only change the verdict in one direction.
            if r.exception != ignored {
                continue;
            }
            if r.matches(path) {
                ignored = !r.exception;
            }
        }
        ignored
    }

    /// For an ignored directory: may an exception re-include something
    /// below it (so the directory must still be walked)?
    pub fn may_include_below(&self, dir_rel: &str) -> bool {
        self.may_include_below_segs(&split(dir_rel))
    }

    pub(crate) fn may_include_below_segs(&self, dir: &[&str]) -> bool {
        self.has_exceptions && self.rules.iter().any(|r| r.exception && may_match_below(&r.segs, dir))
    }
}

/// Split a relative path into its non-empty, non-`.` segments.
pub(crate) fn split(rel: &str) -> Vec<&str> {
    rel.split('/').filter(|s| !s.is_empty() && *s != ".").collect()
}

/// Go's `filepath.Clean` for a pattern, then the leading `/` dropped.
/// A leading `..` that cannot be resolved is kept (and then never matches
/// anything, as in Docker).
fn clean(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            c => out.push(c),
        }
    }
    out.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(text: &str) -> IgnoreMatcher {
        IgnoreMatcher::parse(text).unwrap()
    }

    #[test]
    fn cleaning() {
        assert_eq!(clean("/abs/./x//y/"), "abs/x/y");
        assert_eq!(clean("a/../b"), "b");
        assert_eq!(clean("../a"), "../a");
        assert_eq!(clean("/../a"), "a");
        assert_eq!(clean("dir/"), "dir");
    }

    #[test]
    fn markdown_with_exception() {
        let i = m("*.md\n!README.md\n");
        assert!(i.is_ignored("CHANGES.md"));
        assert!(!i.is_ignored("README.md"));
        // `*.md` is anchored at the root: one segment only.
        assert!(!i.is_ignored("docs/guide.md"));
        assert!(!i.is_ignored("main.rs"));
    }

    #[test]
    fn exception_order_last_wins() {
        let i = m("!README.md\n*.md\n");
        assert!(i.is_ignored("README.md"));
    }

    #[test]
    fn double_star_any_depth() {
        let i = m("**/*.go");
        assert!(i.is_ignored("main.go"));
        assert!(i.is_ignored("a/b/c/x.go"));
        assert!(!i.is_ignored("a/b/x.rs"));
        let j = m("a/**/z");
        assert!(j.is_ignored("a/z"));
        assert!(j.is_ignored("a/b/c/z"));
        assert!(j.is_ignored("a/b/z/inner"));
        assert!(!j.is_ignored("b/z"));
    }

    #[test]
    fn question_mark_and_class() {
        let i = m("temp?\n[a-c]x.txt\n");
        assert!(i.is_ignored("temp1"));
        assert!(i.is_ignored("tempA/file"));
        assert!(!i.is_ignored("temp"));
        assert!(!i.is_ignored("temp12"));
        assert!(i.is_ignored("bx.txt"));
        assert!(!i.is_ignored("dx.txt"));
    }

    #[test]
    fn dir_with_kept_child() {
        let i = m("dir/\n!dir/keep\n");
        assert!(i.is_ignored("dir"));
        assert!(i.is_ignored("dir/other.txt"));
        assert!(!i.is_ignored("dir/keep"));
        assert!(!i.is_ignored("dir/keep/deep/file"));
        assert!(i.may_include_below("dir"));
        assert!(!i.may_include_below("other"));
        let k = m("dir\n");
        assert!(!k.may_include_below("dir"));
    }

    #[test]
    fn absolute_comments_blank_and_spaces() {
        let i = m("# a comment\n\n   \n/abs\n  spaced.txt  \n #notcomment\n");
        assert!(i.is_ignored("abs"));
        assert!(i.is_ignored("abs/x"));
        assert!(!i.is_ignored("sub/abs"));
        assert!(i.is_ignored("spaced.txt"));
        assert!(!i.is_ignored("# a comment"));
        // Only a `#` in the first column starts a comment.
        assert!(i.is_ignored("#notcomment"));
    }

    #[test]
    fn escapes_and_bad_patterns() {
        let i = m("\\*literal\n");
        assert!(i.is_ignored("*literal"));
        assert!(!i.is_ignored("xliteral"));
        let e = IgnoreMatcher::parse("[abc\n").unwrap_err();
        assert!(e.to_string().contains("[abc"), "{e}");
    }

    #[test]
    fn ignore_everything_but() {
        let i = m("*\n!src\n!Cargo.toml\n");
        assert!(i.is_ignored("target"));
        assert!(i.is_ignored(".git/config"));
        assert!(!i.is_ignored("src/main.rs"));
        assert!(!i.is_ignored("Cargo.toml"));
    }
}
