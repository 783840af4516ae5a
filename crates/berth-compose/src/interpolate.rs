//! Variable substitution in compose files, as Docker Compose does it:
//! `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`,
//! `${VAR?error}`, `${VAR:+alt}`, `${VAR+alt}`, `$$` for a literal `$`, and
//! defaults that hold further substitutions (`${A:-${B:-c}}`).
//!
//! Values are substituted, keys are not. An unset variable without a
//! default becomes "" and is reported once, in compose's words; this module
//! never prints: warnings are returned to the caller.

use std::collections::BTreeMap;

use crate::error::ComposeError;
use crate::yaml::{Node, Value};

/// The variables substitution reads, and the warnings it collected.
pub struct Interpolator<'a> {
    vars: &'a BTreeMap<String, String>,
    /// Names of unset variables already warned about, in order.
    pub unset: Vec<String>,
}

/// Why a template could not be substituted (without location; the caller adds it).
#[derive(Debug, PartialEq)]
pub enum TemplateError {
    /// `${VAR:?msg}` / `${VAR?msg}` on a missing value.
    Required(String, String),
    /// A `$` that starts nothing valid, or an unclosed `${`.
    Invalid,
}

impl<'a> Interpolator<'a> {
    /// Substitution from `vars` (the project's environment).
    pub fn new(vars: &'a BTreeMap<String, String>) -> Self {
        Interpolator {
            vars,
            unset: Vec::new(),
        }
    }

    /// Substitute every string value of `node` in place; `path` names the node.
    pub fn tree(&mut self, node: &mut Node, path: &str) -> Result<(), ComposeError> {
        match &mut node.value {
            // A substituted value is a string, as in compose (typed fields
            // still read "8080" or "true" from it).
            Value::Scalar { text, quoted } if text.contains('$') => {
                *quoted = true;
                let out = self.template(text).map_err(|e| {
                    let message = match e {
                        TemplateError::Required(var, msg) if msg.is_empty() => {
                            format!("required variable {var} is missing a value")
                        }
                        TemplateError::Required(var, msg) => {
                            format!("required variable {var} is missing a value: {msg}")
                        }
                        TemplateError::Invalid => {
                            format!("invalid interpolation format in {text:?}: write $$ for a literal $")
                        }
                    };
                    ComposeError::invalid(&node.loc, path, message)
                })?;
                *text = out;
            }
            Value::Seq(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.tree(item, &format!("{path}[{i}]"))?;
                }
            }
            Value::Map(entries) => {
                for (k, v) in entries.iter_mut() {
                    let child = if path.is_empty() {
                        k.name.clone()
                    } else {
                        format!("{path}.{}", k.name)
                    };
                    self.tree(v, &child)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Substitute one string.
    pub fn template(&mut self, s: &str) -> Result<String, TemplateError> {
        let mut out = String::with_capacity(s.len());
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] != b'$' {
                let next = s[i..].find('$').map_or(s.len(), |n| i + n);
                out.push_str(&s[i..next]);
                i = next;
                continue;
            }
            match b.get(i + 1) {
                Some(b'$') => {
                    out.push('$');
                    i += 2;
                }
                Some(b'{') => {
                    let close = matching_brace(s, i + 1).ok_or(TemplateError::Invalid)?;
                    out.push_str(&self.braced(&s[i + 2..close])?);
                    i = close + 1;
                }
                Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {
                    let end = s[i + 1..]
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .map_or(s.len(), |n| i + 1 + n);
                    out.push_str(&self.lookup_or_warn(&s[i + 1..end]));
                    i = end;
                }
                _ => return Err(TemplateError::Invalid),
            }
        }
        Ok(out)
    }

    /// The inside of `${…}`.
    fn braced(&mut self, inner: &str) -> Result<String, TemplateError> {
        let name_end = inner
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(inner.len());
        let name = &inner[..name_end];
        if name.is_empty() || name.as_bytes()[0].is_ascii_digit() {
            return Err(TemplateError::Invalid);
        }
        let rest = &inner[name_end..];
        if rest.is_empty() {
            return Ok(self.lookup_or_warn(name));
        }
        let (colon, op, arg) = match rest.strip_prefix(':') {
            Some(r) => (true, r.chars().next(), r.get(1..).unwrap_or("")),
            None => (false, rest.chars().next(), &rest[1..]),
        };
        let value = self.vars.get(name);
        // ":" treats an empty value as unset.
        let present = match value {
            Some(v) => !(colon && v.is_empty()),
            None => false,
        };
        match op {
            Some('-') => {
                if present {
                    Ok(value.cloned().unwrap_or_default())
                } else {
                    self.template(arg)
                }
            }
            Some('+') => {
                if present {
                    self.template(arg)
                } else {
                    Ok(String::new())
                }
            }
            Some('?') => {
                if present {
                    Ok(value.cloned().unwrap_or_default())
                } else {
                    let msg = self.template(arg)?;
                    Err(TemplateError::Required(name.to_string(), msg))
                }
            }
            _ => Err(TemplateError::Invalid),
        }
    }

    fn lookup_or_warn(&mut self, name: &str) -> String {
        match self.vars.get(name) {
            Some(v) => v.clone(),
            None => {
                if !self.unset.iter().any(|n| n == name) {
                    self.unset.push(name.to_string());
                }
                String::new()
            }
        }
    }
}

/// Compose's warning for an unset variable, word for word.
pub fn unset_warning(name: &str) -> String {
    format!("WARN[0000] The \"{name}\" variable is not set. Defaulting to a blank string.")
}

/// The index of the `}` closing the `{` at `open`, counting nested `${`.
fn matching_brace(s: &str, open: usize) -> Option<usize> {
    let b = s.as_bytes();
    let mut depth = 0usize;
    let mut i = open;
    while i < b.len() {
        match b[i] {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(vars: &[(&str, &str)], s: &str) -> Result<String, TemplateError> {
        let vars: BTreeMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Interpolator::new(&vars).template(s)
    }

    #[test]
    fn every_operator_behaves_as_compose() {
        let v = [("SET", "x"), ("EMPTY", "")];
        assert_eq!(run(&v, "a${SET}b$SET.c").unwrap(), "axbx.c");
        assert_eq!(run(&v, "${UNSET:-d}|${EMPTY:-d}|${SET:-d}").unwrap(), "d|d|x");
        assert_eq!(run(&v, "${UNSET-d}|${EMPTY-d}|${SET-d}").unwrap(), "d||x");
        assert_eq!(run(&v, "${UNSET:+a}|${EMPTY:+a}|${SET:+a}").unwrap(), "||a");
        assert_eq!(run(&v, "${UNSET+a}|${EMPTY+a}|${SET+a}").unwrap(), "|a|a");
        assert_eq!(run(&v, "${EMPTY?e}|${SET:?e}").unwrap(), "|x");
        assert_eq!(
            run(&v, "${EMPTY:?need it}"),
            Err(TemplateError::Required("EMPTY".into(), "need it".into()))
        );
        assert_eq!(
            run(&v, "${UNSET?gone}"),
            Err(TemplateError::Required("UNSET".into(), "gone".into()))
        );
        assert_eq!(run(&v, "$$SET $${SET}").unwrap(), "$SET ${SET}");
        assert_eq!(run(&v, "${UNSET:-${SET:-y}-z}").unwrap(), "x-z");
        assert_eq!(run(&v, "${UNSET:-${ALSO:-deep}}").unwrap(), "deep");
        assert_eq!(run(&v, "${SET"), Err(TemplateError::Invalid));
        assert_eq!(run(&v, "cost $5"), Err(TemplateError::Invalid));
    }

    #[test]
    fn unset_variables_are_blank_and_reported_once() {
        let vars = BTreeMap::new();
        let mut i = Interpolator::new(&vars);
        assert_eq!(i.template("${NOPE}/$NOPE").unwrap(), "/");
        assert_eq!(i.unset, vec!["NOPE".to_string()]);
        assert_eq!(
            unset_warning("NOPE"),
            "WARN[0000] The \"NOPE\" variable is not set. Defaulting to a blank string."
        );
    }
}
