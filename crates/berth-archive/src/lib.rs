//! berth-archive: layer tars. Apply a layer into a directory (confined to
//! it, with overlay whiteouts), write a directory as a deterministic layer,
//! and detect/undo layer compression.
//!
//! It must never create, change or remove anything outside the directory a
//! layer is applied to, whatever the layer contains (`..`, absolute names,
//! symlinks pointing out, hardlinks to outside): see [`apply_layer`].
//!
//! Whatever a layer holds, applying it is bounded: at most
//! [`Limits::max_size`] uncompressed bytes and [`Limits::max_entries`]
//! entries, and sparse files are written as holes, never as zeros.
//!
//! Both directions stream (no whole file is buffered) and hash on a second
//! thread, so applying costs about max(extraction, sha256) and not their
//! sum. Nothing is fsynced per file; call [`sync_tree`] once at the end.

mod apply;
mod compress;
mod diff;
mod error;
mod guard;
mod io;
mod limits;
mod path;
pub mod perms;
mod scan;
mod usage;

pub use apply::{apply_layer, dir_entries, remove_all_at, start_writeback, sync_tree, Applied, ApplyOptions};
pub use compress::{decompressed, decompressed_within, sniff, Compression};
pub use diff::{write_layer, DiffOptions, Diffed};
pub use error::ArchiveError;
pub use io::{HashingWriter, TeeReader};
pub use limits::{parse_size, LimitKind, Limits, DEFAULT_MAX_ENTRIES, DEFAULT_MAX_SIZE, MAX_ENTRIES_ENV, MAX_SIZE_ENV};
pub use scan::{scan_layer_dir, EntryKind, LayerEntry};
pub use usage::tree_size;
