//! `.env` and `env_file` files in compose's dotenv format: `KEY=value`,
//! `export KEY=value`, `# comments`, single quotes (literal), double quotes
//! (escapes, may span lines), unquoted values with a ` #comment` cut off,
//! `${VAR}` substituted in unquoted and double-quoted values, and a bare
//! `KEY` taking its value from the environment (or left out when unset).
//!
//! Reading only: nothing here writes files or changes the process environment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{ComposeError, Loc};
use crate::interpolate::Interpolator;

/// The variables of one dotenv file, in file order (later lines win).
pub type EnvVars = Vec<(String, String)>;

/// Read a dotenv file; `lookup` supplies variables a value refers to and a
/// bare `KEY` takes.
pub fn read_env_file(path: &Path, lookup: &BTreeMap<String, String>) -> Result<EnvVars, ComposeError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            ComposeError::FileNotFound(path.to_path_buf())
        } else {
            ComposeError::Io {
                path: path.to_path_buf(),
                source: e,
            }
        }
    })?;
    parse_env(&text, &Arc::from(path), lookup)
}

/// Parse dotenv text (see the module's first lines for the format).
pub fn parse_env(text: &str, file: &Arc<Path>, lookup: &BTreeMap<String, String>) -> Result<EnvVars, ComposeError> {
    let mut out: EnvVars = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((n, raw)) = lines.next() {
        let line_no = n + 1;
        let loc = Loc::new(file, line_no, 1);
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let (key, rest) = match line.find('=') {
            Some(i) => (line[..i].trim_end(), Some(&line[i + 1..])),
            None => (line.trim_end(), None),
        };
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '[' | ']'))
        {
            return Err(ComposeError::invalid(
                &loc,
                "",
                format!("expected KEY=VALUE with a variable name, got {raw:?}"),
            ));
        }
        let Some(rest) = rest else {
            // A bare KEY: its value from the environment, if it has one.
            if let Some(v) = lookup.get(key) {
                out.push((key.to_string(), v.clone()));
            }
            continue;
        };
        let rest = rest.trim_start();
        let value = if let Some(body) = rest.strip_prefix('\'') {
            let mut text = body.to_string();
            while !text.contains('\'') {
                let Some((_, next)) = lines.next() else {
                    return Err(unterminated(&loc, key));
                };
                text.push('\n');
                text.push_str(next);
            }
            let end = text.find('\'').unwrap_or(text.len());
            text[..end].to_string()
        } else if let Some(body) = rest.strip_prefix('"') {
            let mut text = body.to_string();
            let end = loop {
                if let Some(end) = closing_double_quote(&text) {
                    break end;
                }
                let Some((_, next)) = lines.next() else {
                    return Err(unterminated(&loc, key));
                };
                text.push('\n');
                text.push_str(next);
            };
            let unescaped = unescape_double(&text[..end]);
            substitute(&unescaped, &out, lookup, &loc)?
        } else {
            let value = match rest.find(" #") {
                Some(i) => &rest[..i],
                None => rest,
            };
            substitute(value.trim_end(), &out, lookup, &loc)?
        };
        out.retain(|(k, _)| k != key);
        out.push((key.to_string(), value));
    }
    Ok(out)
}

fn unterminated(loc: &Loc, key: &str) -> ComposeError {
    ComposeError::invalid(loc, key, "unterminated quoted value")
}

fn closing_double_quote(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return Some(i),
            _ => escaped = false,
        }
    }
    None
}

fn unescape_double(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// `${VAR}` in a value: earlier lines of the file first, then `lookup`.
fn substitute(
    value: &str,
    so_far: &EnvVars,
    lookup: &BTreeMap<String, String>,
    loc: &Loc,
) -> Result<String, ComposeError> {
    if !value.contains('$') {
        return Ok(value.to_string());
    }
    let mut vars = lookup.clone();
    for (k, v) in so_far {
        vars.entry(k.clone()).or_insert_with(|| v.clone());
    }
    Interpolator::new(&vars)
        .template(value)
        .map_err(|_| ComposeError::invalid(loc, "", format!("invalid value {value:?}")))
}

/// The project's environment: the process environment over the env files
/// (`--env-file`, or `.env` in the project directory when it exists).
pub fn project_environment(
    os_env: &BTreeMap<String, String>,
    env_files: &[PathBuf],
) -> Result<BTreeMap<String, String>, ComposeError> {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for file in env_files {
        let mut lookup = os_env.clone();
        for (k, v) in &env {
            lookup.entry(k.clone()).or_insert_with(|| v.clone());
        }
        for (k, v) in read_env_file(file, &lookup)? {
            env.insert(k, v);
        }
    }
    for (k, v) in os_env {
        env.insert(k.clone(), v.clone());
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_values_as_compose_reads_them() {
        let text = "# comment\nA=1\nexport B = two words # note\nC='lit ${A}'\nD=\"x\\ny ${A}\"\nE=${A}-${NOPE:-d}\nF\nG=\"multi\nline\"\n";
        let mut lookup = BTreeMap::new();
        lookup.insert("F".to_string(), "from-env".to_string());
        let vars = parse_env(text, &Arc::from(Path::new(".env")), &lookup).unwrap();
        let get = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("A"), Some("1"));
        assert_eq!(get("B"), Some("two words"));
        assert_eq!(get("C"), Some("lit ${A}"));
        assert_eq!(get("D"), Some("x\ny 1"));
        assert_eq!(get("E"), Some("1-d"));
        assert_eq!(get("F"), Some("from-env"));
        assert_eq!(get("G"), Some("multi\nline"));
    }

    #[test]
    fn a_bad_line_names_its_file_and_line() {
        let e = parse_env("A=1\nnot valid\n", &Arc::from(Path::new("/p/.env")), &BTreeMap::new()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/p/.env:2:1: expected KEY=VALUE with a variable name, got \"not valid\""
        );
    }
}
