//! berth-compose: compose files → a typed, validated project in compose's
//! canonical form, and compose's identity for the objects a project makes
//! (names, labels, config hash, start order, where secrets and configs go).
//!
//! It is a front: it reads files and the environment and hands typed
//! values on ([`convert`]: the engine's requests), and drives the engine's
//! API for a project ([`ops`]: up, down, start, stop…); it never touches
//! the store, the runtime or the network itself, and never prints
//! (warnings are returned, progress is reported as events). Pipeline, per file:
//! [`yaml`] (located tree, anchors, `<<`) → [`interpolate`] → [`canonical`]
//! (short syntax → long) → `extends`/`include` → [`merge`] across files →
//! reference checks → [`de`] into [`model`] → normalisation ([`loader`]).

#![deny(missing_docs)]

pub mod canonical;
pub mod convert;
pub mod de;
pub mod env;
pub mod error;
pub mod files;
pub mod graph;
pub mod identity;
pub mod interpolate;
pub mod loader;
pub mod merge;
pub mod model;
pub mod ops;
pub mod render;
pub mod support;
pub mod units;
pub mod yaml;

pub use error::ComposeError;
pub use loader::{load, Loaded, Options};
pub use model::Project;
