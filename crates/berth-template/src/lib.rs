//! Go's `text/template`, with Docker's functions, for `--format`.
//!
//! Docker's `--format` flags hand the user's text to Go's `text/template`
//! with a few extra functions (`json`, `join`, `split`, `title`, `lower`,
//! `upper`, `pad`, `truncate`), and scripts depend on Go's exact behaviour:
//! its printing of values, its truth rules, and its error messages. This
//! crate is a lexer, parser and executor that follow Go's semantics (checked
//! against Go itself, see `tests/go-oracle/`), not a look-alike.
//!
//! # The data model
//!
//! Go templates run over typed Go values, and the same JSON prints
//! differently depending on the Go type behind it: a struct prints
//! `{running true …}` in field order and an unknown field is an error; a
//! map prints `map[a:1 b:2]` with sorted keys and a missing key is
//! `<no value>`; a nil `[]string` prints `[]` but a nil `interface {}`
//! prints `<nil>`. So a [`Value`] carries its Go type:
//!
//! - [`Value::from_json`] reads JSON as Go's `json.Decoder` with `UseNumber`
//!   fills an `interface {}` (maps, `[]interface {}`, `json.Number`): the
//!   "raw" form Docker's `inspect` falls back to.
//! - [`schema::Schema`] holds Go type declarations (written in Go's own
//!   syntax, e.g. Docker's `types.ContainerState`) and decodes JSON into
//!   typed values the way `json.Unmarshal` into that struct would: fields
//!   in declaration order, zero values for absent fields, unknown keys
//!   dropped, nil slices and maps kept nil.
//! - Front ends build [`value::Struct`]s with methods for Docker's
//!   formatter contexts (`.Label "k"` on a container row).
//!
//! serde_json values alone cannot say which objects are structs and which
//! are maps, nor keep the difference between nil and empty; a typed model
//! is the only way to print what Docker prints.
//!
//! # Why not `gtmpl`
//!
//! The `gtmpl` crate (used before) has no typed values, so it cannot fail
//! on an unknown struct field, print a struct, or tell nil slices from nil
//! interfaces; it rejects method calls with arguments; its arrays print in
//! Rust's debug syntax; and its parse errors report the wrong line.

pub mod docker;
mod exec;
mod funcs;
pub mod gofmt;
mod lex;
mod parse;
pub mod schema;
pub mod tabwriter;
pub mod value;

use std::collections::HashMap;
use std::rc::Rc;

pub use exec::FuncMap;
pub use funcs::go_json;
pub use value::{Field, Func, List, Map, Param, Struct, Value};

pub(crate) use exec::zero_of as exec_zero;

/// What a missing map key yields (Go's `missingkey=` option).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MissingKey {
    /// `<no value>` (Go's default).
    #[default]
    Default,
    /// The zero value of the map's element type.
    Zero,
    /// An execution error: `map has no entry for key "K"`.
    Error,
}

/// A template error, worded as Go words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The text does not parse: `template: NAME:LINE: …`.
    #[error("{0}")]
    Parse(String),
    /// Execution failed: `template: NAME:LINE:COL: executing "NAME" at <…>: …`.
    #[error("{0}")]
    Exec(String),
}

/// A parsed template with its functions.
pub struct Template {
    tree: parse::Tree,
    funcs: Rc<FuncMap>,
    missing: MissingKey,
}

/// Which function set a template gets.
fn func_map(extra: &[(String, Rc<Func>)], docker: bool) -> FuncMap {
    let mut funcs = HashMap::new();
    for (n, f) in funcs::builtins() {
        funcs.insert(n, (f, true));
    }
    if docker {
        for (n, f) in funcs::docker() {
            funcs.insert(n, (f, false));
        }
    }
    for (n, f) in extra {
        funcs.insert(n.clone(), (f.clone(), false));
    }
    FuncMap { funcs }
}

impl Template {
    /// Parse `text` as Docker's CLI does (`templates.Parse`): an unnamed
    /// template with Go's builtins and Docker's functions.
    pub fn parse(text: &str) -> Result<Template, Error> {
        Self::parse_with("", text, &[], true)
    }

    /// Parse `text` as template `name` with Go's builtins, Docker's
    /// functions if `docker`, and `extra` functions.
    pub fn parse_with(name: &str, text: &str, extra: &[(String, Rc<Func>)], docker: bool) -> Result<Template, Error> {
        let funcs = func_map(extra, docker);
        let has = |n: &str| funcs.funcs.contains_key(n);
        let tree = parse::parse(name, text, &has).map_err(Error::Parse)?;
        Ok(Template {
            tree,
            funcs: Rc::new(funcs),
            missing: MissingKey::Default,
        })
    }

    /// The same template with `missingkey` set (Go's `Option("missingkey=…")`).
    pub fn with_missing_key(&self, missing: MissingKey) -> Template {
        Template {
            tree: self.tree.clone(),
            funcs: self.funcs.clone(),
            missing,
        }
    }

    /// The same template with some functions replaced (Go's `Funcs`), e.g.
    /// Docker's header functions for a table's header row.
    pub fn with_funcs(&self, replace: &[(String, Rc<Func>)]) -> Template {
        let mut funcs = FuncMap {
            funcs: self.funcs.funcs.clone(),
        };
        for (n, f) in replace {
            // A replacement is never a builtin (no `and`/`or` short-circuit).
            funcs.funcs.insert(n.clone(), (f.clone(), false));
        }
        Template {
            tree: self.tree.clone(),
            funcs: Rc::new(funcs),
            missing: self.missing,
        }
    }

    /// Docker's header variant of this template (`templates.HeaderFunctions`).
    pub fn for_header(&self) -> Template {
        self.with_funcs(&funcs::header())
    }

    /// Run the template on `data`.
    pub fn execute(&self, data: &Value) -> Result<String, Error> {
        exec::execute(&self.tree, &self.tree.name, &self.funcs, self.missing, data).map_err(Error::Exec)
    }

    /// Run the template on `data`; on error, also return what was written
    /// before it (Go's writer keeps it; Docker prints a table header that way).
    pub fn execute_partial(&self, data: &Value) -> (String, Option<Error>) {
        match exec::execute_partial(&self.tree, &self.tree.name, &self.funcs, self.missing, data) {
            (out, None) => (out, None),
            (out, Some(e)) => (out, Some(Error::Exec(e))),
        }
    }
}
