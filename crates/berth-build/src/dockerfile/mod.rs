//! The Dockerfile front end: source text → positioned AST, word expansion,
//! the stage graph, and the `--check` linter.
//!
//! This module only reads text and answers questions about it. It must never
//! touch the filesystem, the store, the network or a container: the executor
//! owns every side effect and calls in here for parsing and expansion.
//!
//! Layout:
//! - [`lexer`]: physical lines → logical lines (directives, continuations,
//!   comments, heredoc bodies) and the small word-level scanners.
//! - [`parser`]: logical lines → [`Dockerfile`] ([`parse`]).
//! - [`ast`]: the types, with positions.
//! - [`expand`]: `$VAR` expansion as Docker does it ([`expand::expand`]).
//! - [`graph`]: which stages a target needs, in order.
//! - [`lint`]: `docker build --check` rules ([`lint::check`]).

pub mod ast;
pub mod expand;
pub mod graph;
pub mod lexer;
pub mod lint;
pub mod parser;

#[cfg(test)]
mod limit_tests;
#[cfg(test)]
mod tests;

pub use ast::*;
pub use expand::{expand, expand_instruction, expand_words, expands_in};
pub use lint::check;
pub use parser::parse;

use std::fmt;

/// The one error type of the Dockerfile front end: a parse error, or an
/// expansion error (`ExpandError` is the same type).
///
/// `line`/`column` are 1-based; `0` means "unknown" (e.g. expanding a bare
/// word that is not tied to a file position).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub hint: Option<String>,
}

/// Errors of [`expand::expand`] and friends; the same type as [`ParseError`].
pub type ExpandError = ParseError;

impl ParseError {
    pub(crate) fn new(file: &str, line: usize, column: usize, message: impl Into<String>) -> Self {
        ParseError {
            file: file.to_string(),
            line,
            column,
            message: message.into(),
            hint: None,
        }
    }

    pub(crate) fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Sets the file name (the expander does not know it).
    pub fn with_file(mut self, file: &str) -> Self {
        self.file = file.to_string();
        self
    }

    /// Sets the position if it is still unknown.
    pub fn at(mut self, line: usize, column: usize) -> Self {
        if self.line == 0 {
            self.line = line;
            self.column = column;
        }
        self
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            if self.file.is_empty() {
                write!(f, "{}", self.message)?;
            } else {
                write!(f, "{}: {}", self.file, self.message)?;
            }
        } else {
            write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)?;
        }
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

/// How serious a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Severity {
    Warning,
    Error,
}

/// A lint or parser warning, named after `docker build --check` rules where
/// one exists (`JSONArgsRecommended`, `UndefinedVar`, …).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub rule: &'static str,
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub severity: Severity,
}

impl Diagnostic {
    pub(crate) fn warn(rule: &'static str, line: usize, column: usize, message: String) -> Self {
        Diagnostic {
            rule,
            line,
            column,
            message,
            severity: Severity::Warning,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(
            f,
            "{}:{}: {level}: {}: {}",
            self.line, self.column, self.rule, self.message
        )
    }
}

/// Levenshtein distance, for "did you mean" hints.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest candidate within distance 2 (case-insensitive), if any.
pub(crate) fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let w = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (edit_distance(&w, &c.to_ascii_lowercase()), c))
        .filter(|(d, _)| *d <= 2 && *d < w.len().max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}
