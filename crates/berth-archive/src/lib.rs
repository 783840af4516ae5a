//! berth-archive: layer tars. Apply a layer into a directory (confined to
//! it, with overlay whiteouts), write a directory as a deterministic layer,
//! and detect/undo layer compression.
//!
//! It must never create, change or remove anything outside the directory a
//! layer is applied to, whatever the layer contains (`..`, absolute names,
//! symlinks pointing out, hardlinks to outside): see [`apply_layer`].
//!
//! Both directions stream (no whole file is buffered) and hash on a second
//! thread, so applying costs about max(extraction, sha256) and not their
//! sum. Nothing is fsynced per file; call [`sync_tree`] once at the end.

mod apply;
mod compress;
mod diff;
mod error;
mod io;
mod path;

pub use apply::{apply_layer, dir_entries, remove_all_at, start_writeback, sync_tree, Applied, ApplyOptions};
pub use compress::{decompressed, sniff, Compression};
pub use diff::{write_layer, DiffOptions, Diffed};
pub use error::ArchiveError;
pub use io::{HashingWriter, TeeReader};
