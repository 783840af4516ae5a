//! Wildcard matching of one path segment with Go's `filepath.Match` syntax,
//! and whole-path patterns built from segments (with `**` for
//! `.dockerignore`).
//!
//! Pure string logic: it must never touch the filesystem. A segment never
//! contains `/`; callers split paths on `/` first, which is exactly how Go's
//! `*` and `?` behave (they never match the separator).

/// A malformed pattern (unclosed `[`, trailing `\`, empty class, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadPattern(pub(crate) &'static str);

/// Does `s` contain an unescaped wildcard (`*`, `?`, `[`)?
pub(crate) fn has_wildcard(s: &str) -> bool {
    let mut it = s.chars();
    while let Some(c) = it.next() {
        match c {
            '\\' => {
                it.next();
            }
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

/// One compiled segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    /// `**` in a `.dockerignore` pattern: any number of segments.
    AnyDirs,
    /// No wildcard and no escape: compared as is.
    Literal(String),
    /// A `filepath.Match` pattern, already validated.
    Glob(Vec<char>),
}

impl Seg {
    /// Compile one segment; `double_star` makes a lone `**` mean "any
    /// number of segments".
    pub(crate) fn compile(s: &str, double_star: bool) -> Result<Seg, BadPattern> {
        if double_star && s == "**" {
            return Ok(Seg::AnyDirs);
        }
        if !s.contains(['*', '?', '[', '\\']) {
            return Ok(Seg::Literal(s.to_owned()));
        }
        let p: Vec<char> = s.chars().collect();
        validate(&p)?;
        Ok(Seg::Glob(p))
    }

    /// Does this segment match one name (never containing `/`)?
    pub(crate) fn matches(&self, name: &str) -> bool {
        match self {
            Seg::AnyDirs => true,
            Seg::Literal(l) => l == name,
            Seg::Glob(p) => {
                let s: Vec<char> = name.chars().collect();
                glob(p, &s)
            }
        }
    }
}

/// Check the whole pattern once, so a malformed class is reported even
/// when matching would stop before reaching it (Go reports it lazily).
fn validate(p: &[char]) -> Result<(), BadPattern> {
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' => {
                if i + 1 >= p.len() {
                    return Err(BadPattern("trailing backslash"));
                }
                i += 2;
            }
            '[' => i = parse_class(p, i + 1, None)?.0,
            _ => i += 1,
        }
    }
    Ok(())
}

/// Parse a character class starting just after `[`. Returns the index after
/// `]` and, when `c` is given, whether `c` is in the class.
fn parse_class(p: &[char], mut i: usize, c: Option<char>) -> Result<(usize, bool), BadPattern> {
    let negate = p.get(i) == Some(&'^');
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut n = 0;
    loop {
        match p.get(i) {
            None => return Err(BadPattern("unclosed character class")),
            Some(']') if n > 0 => {
                i += 1;
                break;
            }
            _ => {}
        }
        let (lo, next) = class_char(p, i)?;
        i = next;
        let mut hi = lo;
        if p.get(i) == Some(&'-') {
            let (h, next) = class_char(p, i + 1)?;
            hi = h;
            i = next;
        }
        if let Some(c) = c {
            if lo <= c && c <= hi {
                hit = true;
            }
        }
        n += 1;
    }
    Ok((i, hit != negate))
}

/// One (possibly escaped) character inside a class; `-` and `]` must be
/// escaped there, as in Go.
fn class_char(p: &[char], i: usize) -> Result<(char, usize), BadPattern> {
    match p.get(i) {
        None => Err(BadPattern("unclosed character class")),
        Some('-') | Some(']') => Err(BadPattern("bad character range")),
        Some('\\') => match p.get(i + 1) {
            None => Err(BadPattern("trailing backslash")),
            Some(&c) => Ok((c, i + 2)),
        },
        Some(&c) => Ok((c, i + 1)),
    }
}

/// Match a validated pattern against a whole name, backtracking only to the
/// last `*` (linear in practice).
fn glob(p: &[char], s: &[char]) -> bool {
    crate::wildcard::matches(p, s, |pi, c| one(p, pi, c), || Ok::<(), std::convert::Infallible>(())).unwrap_or(false)
}

/// Match one non-star term at `p[pi]` against `c`; the index after it.
fn one(p: &[char], pi: usize, c: char) -> Option<usize> {
    match p[pi] {
        '?' => Some(pi + 1),
        '[' => match parse_class(p, pi + 1, Some(c)) {
            Ok((next, true)) => Some(next),
            _ => None,
        },
        '\\' => (p.get(pi + 1) == Some(&c)).then_some(pi + 2),
        l => (l == c).then_some(pi + 1),
    }
}

/// Match compiled segments against path segments (exact length, `**`
/// consuming any number; a trailing `**` needs at least one).
pub(crate) fn match_segs(p: &[Seg], s: &[&str]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((Seg::AnyDirs, rest)) => {
            let min = usize::from(rest.is_empty());
            (min..=s.len()).any(|k| match_segs(rest, &s[k..]))
        }
        Some((seg, rest)) => !s.is_empty() && seg.matches(s[0]) && match_segs(rest, &s[1..]),
    }
}

/// Could the pattern match `s` itself, one of its ancestors, or something
/// below it? Used to decide whether an excluded directory must still be
/// walked because an exception may re-include part of it.
pub(crate) fn may_match_below(p: &[Seg], s: &[&str]) -> bool {
    if s.is_empty() {
        return true;
    }
    match p.split_first() {
        None => true,
        Some((Seg::AnyDirs, _)) => true,
        Some((seg, rest)) => seg.matches(s[0]) && may_match_below(rest, &s[1..]),
    }
}

/// Go's `filepath.Match` on a whole relative path (`*` never crosses `/`).
#[cfg(test)]
pub(crate) fn go_match(pattern: &str, name: &str) -> Result<bool, BadPattern> {
    let segs = pattern
        .split('/')
        .map(|s| Seg::compile(s, false))
        .collect::<Result<Vec<_>, _>>()?;
    let names: Vec<&str> = name.split('/').collect();
    Ok(match_segs(&segs, &names))
}
