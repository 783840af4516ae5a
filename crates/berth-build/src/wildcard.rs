//! The one wildcard matcher under berth's two pattern languages (shell
//! patterns in `${V#pat}`, Go's `filepath.Match` in `.dockerignore`): `*`
//! matches any run of characters, every other term is the caller's
//! (`?`, classes, escapes differ between them). Iterative, backtracking
//! only to the last `*`, so a pattern never recurses and costs at most
//! pattern × text steps, each of which `tick` may refuse.

/// Whether all of `s` matches `p`. `one(pi, c)`: does the term at `p[pi]`
/// (never a `*`) match `c`, and if so the index after the term. `tick`
/// runs once per step; its error stops the match.
pub(crate) fn matches<E>(
    p: &[char],
    s: &[char],
    mut one: impl FnMut(usize, char) -> Option<usize>,
    mut tick: impl FnMut() -> Result<(), E>,
) -> Result<bool, E> {
    let (mut pi, mut si) = (0, 0);
    // After the last `*`: (pattern index past it, where in `s` it resumes).
    let mut star: Option<(usize, usize)> = None;
    loop {
        tick()?;
        if pi < p.len() {
            if p[pi] == '*' {
                star = Some((pi + 1, si));
                pi += 1;
                continue;
            }
            if si < s.len() {
                if let Some(next) = one(pi, s[si]) {
                    pi = next;
                    si += 1;
                    continue;
                }
            }
        } else if si == s.len() {
            return Ok(true);
        }
        // Mismatch: let the last star eat one more character.
        match star {
            Some((sp, ss)) if ss < s.len() => {
                star = Some((sp, ss + 1));
                pi = sp;
                si = ss + 1;
            }
            _ => return Ok(false),
        }
    }
}
