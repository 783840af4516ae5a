//! Lexical normalisation of tar entry names and hardlink targets.
//!
//! This is the first line of confinement: it turns a name into a clean
//! relative path and refuses any `..` that climbs above the root. It must
//! never touch the filesystem; symlinks are confined by the kernel
//! (`openat2` with `RESOLVE_IN_ROOT`) in `apply`.

/// The name climbs above the layer root.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Escapes;

/// Normalise `raw` into `out`: leading `/` are dropped (Docker strips them),
/// empty and `.` components vanish, `..` removes the previous component and
/// is refused when there is none. The result has no leading or trailing `/`
/// and is empty for the root itself.
pub(crate) fn clean_into(raw: &[u8], out: &mut Vec<u8>) -> Result<(), Escapes> {
    out.clear();
    for comp in raw.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                if out.is_empty() {
                    return Err(Escapes);
                }
                let cut = out.iter().rposition(|&b| b == b'/').unwrap_or(0);
                out.truncate(cut);
            }
            c => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(c);
            }
        }
    }
    Ok(())
}

/// Split a clean path into (parent, final component); parent is empty for
/// top-level names.
pub(crate) fn split(clean: &[u8]) -> (&[u8], &[u8]) {
    match clean.iter().rposition(|&b| b == b'/') {
        Some(i) => (&clean[..i], &clean[i + 1..]),
        None => (&[], clean),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(s: &str) -> Result<String, Escapes> {
        let mut out = Vec::new();
        clean_into(s.as_bytes(), &mut out).map(|()| String::from_utf8(out).unwrap())
    }

    #[test]
    fn normalises() {
        assert_eq!(clean("./a/b/").unwrap(), "a/b");
        assert_eq!(clean("/etc/x").unwrap(), "etc/x");
        assert_eq!(clean("//a//./b").unwrap(), "a/b");
        assert_eq!(clean("a/../b").unwrap(), "b");
        assert_eq!(clean("a/b/../../c").unwrap(), "c");
        assert_eq!(clean("./").unwrap(), "");
        assert_eq!(clean("a/..").unwrap(), "");
    }

    #[test]
    fn refuses_climbing() {
        assert_eq!(clean("../../x"), Err(Escapes));
        assert_eq!(clean("a/../../x"), Err(Escapes));
        assert_eq!(clean("/../x"), Err(Escapes));
        assert_eq!(clean(".."), Err(Escapes));
    }

    #[test]
    fn splits() {
        assert_eq!(split(b"a/b/c"), (&b"a/b"[..], &b"c"[..]));
        assert_eq!(split(b"c"), (&b""[..], &b"c"[..]));
    }
}
