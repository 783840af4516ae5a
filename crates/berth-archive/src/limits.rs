//! Limits on what one layer may unpack to, so a small hostile archive (a
//! gzip of zeros, millions of empty entries) cannot fill the disk or run
//! for hours. The defaults are far above any real image's layer; each can
//! be raised (or lowered) through the environment:
//!
//! - `BERTH_MAX_LAYER_SIZE`: uncompressed bytes of one layer's tar stream
//!   (default 64 GiB). A number of bytes, or with a binary unit:
//!   `512M`, `100G`, `1T` (`K`, `M`, `G`, `T`, optionally followed by
//!   `i`, `B` or `iB`).
//! - `BERTH_MAX_LAYER_ENTRIES`: entries in one layer (default 10,000,000).
//!
//! This module only holds and parses the numbers; [`apply_layer`] enforces
//! them. It never reads anything but those two variables.
//!
//! [`apply_layer`]: crate::apply_layer

use std::fmt;

/// The environment variable that sets [`Limits::max_size`].
pub const MAX_SIZE_ENV: &str = "BERTH_MAX_LAYER_SIZE";
/// The environment variable that sets [`Limits::max_entries`].
pub const MAX_ENTRIES_ENV: &str = "BERTH_MAX_LAYER_ENTRIES";

/// Default [`Limits::max_size`]: 64 GiB.
pub const DEFAULT_MAX_SIZE: u64 = 64 << 30;
/// Default [`Limits::max_entries`]: ten million.
pub const DEFAULT_MAX_ENTRIES: u64 = 10_000_000;

/// What one layer may unpack to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Uncompressed bytes of the tar stream (headers, data and padding).
    pub max_size: u64,
    /// Tar entries (files, directories, links, whiteouts…).
    pub max_entries: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_size: DEFAULT_MAX_SIZE,
            max_entries: DEFAULT_MAX_ENTRIES,
        }
    }
}

impl Limits {
    /// The defaults, with whatever `BERTH_MAX_LAYER_SIZE` and
    /// `BERTH_MAX_LAYER_ENTRIES` set. A value that does not parse is
    /// reported (log warning) and the default kept.
    pub fn from_env() -> Self {
        let mut l = Limits::default();
        if let Some(v) = std::env::var_os(MAX_SIZE_ENV) {
            match v.to_str().and_then(parse_size) {
                Some(n) => l.max_size = n,
                None => log::warn!(
                    "{MAX_SIZE_ENV}={v:?} is not a size (e.g. 100G); keeping {}",
                    human(l.max_size)
                ),
            }
        }
        if let Some(v) = std::env::var_os(MAX_ENTRIES_ENV) {
            match v.to_str().and_then(|s| s.trim().replace('_', "").parse().ok()) {
                Some(n) => l.max_entries = n,
                None => log::warn!("{MAX_ENTRIES_ENV}={v:?} is not a number; keeping {}", l.max_entries),
            }
        }
        l
    }
}

/// Which limit a layer went past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// [`Limits::max_size`].
    Size,
    /// [`Limits::max_entries`].
    Entries,
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LimitKind::Size => "size",
            LimitKind::Entries => "entries",
        })
    }
}

/// The message for a layer past `kind`'s `limit`: what, how much, how to raise it.
pub(crate) fn exceeded(kind: LimitKind, limit: u64) -> String {
    match kind {
        LimitKind::Size => format!(
            "the layer unpacks to more than {} (the limit for one layer); if the image is genuine, \
             raise the limit with {MAX_SIZE_ENV}=<size> (e.g. {MAX_SIZE_ENV}={})",
            human(limit),
            suggest_size(limit)
        ),
        LimitKind::Entries => format!(
            "the layer has more than {limit} entries (the limit for one layer); if the image is genuine, \
             raise the limit with {MAX_ENTRIES_ENV}=<count> (e.g. {MAX_ENTRIES_ENV}={})",
            limit.saturating_mul(2)
        ),
    }
}

/// `1234`, `512M`, `100G`, `1TiB`, `2kb` → bytes (binary units).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let n: u64 = s[..digits].parse().ok()?;
    let unit = s[digits..].trim().to_ascii_lowercase();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .or_else(|| unit.strip_suffix('i'))
        .unwrap_or(&unit);
    let shift = match unit {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => return None,
    };
    n.checked_mul(1u64 << shift)
}

/// Bytes in the largest binary unit that keeps a whole number when it can.
fn human(n: u64) -> String {
    for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if n >= 1 << shift && n.is_multiple_of(1 << shift) {
            return format!("{} {unit}", n >> shift);
        }
    }
    format!("{n} bytes")
}

/// Twice `limit`, written as the variable accepts it.
fn suggest_size(limit: u64) -> String {
    let twice = limit.saturating_mul(2);
    for (shift, unit) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] {
        if twice >= 1 << shift && twice.is_multiple_of(1 << shift) {
            return format!("{}{unit}", twice >> shift);
        }
    }
    twice.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("1234"), Some(1234));
        assert_eq!(parse_size("512M"), Some(512 << 20));
        assert_eq!(parse_size("100G"), Some(100 << 30));
        assert_eq!(parse_size(" 1TiB "), Some(1 << 40));
        assert_eq!(parse_size("2kb"), Some(2048));
        assert_eq!(parse_size("3 gi"), Some(3 << 30));
        assert_eq!(parse_size("G"), None);
        assert_eq!(parse_size("10X"), None);
        assert_eq!(parse_size("99999999999T"), None);
    }

    #[test]
    fn the_message_names_the_limit_and_how_to_raise_it() {
        let m = exceeded(LimitKind::Size, 64 << 30);
        assert!(m.contains("more than 64 GiB"), "{m}");
        assert!(m.contains("BERTH_MAX_LAYER_SIZE=128G"), "{m}");
        let m = exceeded(LimitKind::Entries, 10);
        assert!(
            m.contains("more than 10 entries") && m.contains("BERTH_MAX_LAYER_ENTRIES=20"),
            "{m}"
        );
    }
}
