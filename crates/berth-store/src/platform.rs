//! One platform type for every crate: `os/arch[/variant]` as `--platform`
//! takes it, normalised as containerd does (`x86_64` → `amd64`, `aarch64`
//! → `arm64` with its implied `v8` dropped, `armhf` → `arm/v7`), so a
//! pull, an import, a build and a run mean the same platform by the same
//! words. Pure: it reads only this machine's architecture.

use std::fmt;

/// `os/arch[/variant]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Platform {
    /// `linux`, `windows` …
    pub os: String,
    /// As images name it: `amd64`, `arm64`, `arm`, `386`, `s390x` …
    pub architecture: String,
    /// `v7` for arm, `v8.2` for arm64 …; `None` when there is none or it
    /// is the architecture's default (arm64's `v8`).
    pub variant: Option<String>,
}

/// A `--platform` value that is not `os/arch[/variant]`.
#[derive(Debug, thiserror::Error)]
#[error("invalid platform {0:?}: expected os/arch[/variant], e.g. linux/arm64")]
pub struct PlatformError(pub String);

/// Operating systems a bare word may name (else it is an architecture).
const KNOWN_OS: &[&str] = &["linux", "windows", "darwin", "freebsd", "netbsd", "openbsd", "solaris"];

impl Platform {
    /// This machine (`linux/amd64`, `linux/arm64` …).
    pub fn host() -> Platform {
        Platform::normalised("linux", crate::ImageConfig::host_architecture(), None)
    }

    /// Parses `os/arch[/variant]`; a bare OS (`linux`) means this
    /// machine's architecture, a bare architecture (`arm64`) means Linux.
    pub fn parse(s: &str) -> Result<Platform, PlatformError> {
        let bad = || PlatformError(s.to_string());
        let parts: Vec<&str> = s.trim().split('/').collect();
        if parts
            .iter()
            .any(|p| p.is_empty() || p.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            return Err(bad());
        }
        match parts.as_slice() {
            [one] if KNOWN_OS.contains(&one.to_ascii_lowercase().as_str()) => {
                Ok(Platform::normalised(one, crate::ImageConfig::host_architecture(), None))
            }
            [arch] => Ok(Platform::normalised("linux", arch, None)),
            [os, arch] => Ok(Platform::normalised(os, arch, None)),
            [os, arch, v] => Ok(Platform::normalised(os, arch, Some(v))),
            _ => Err(bad()),
        }
    }

    /// containerd's spellings: `x86_64`→`amd64`, `aarch64`→`arm64` (whose
    /// `v8` is implied and dropped), arm's default variant `v7`.
    pub fn normalised(os: &str, arch: &str, variant: Option<&str>) -> Platform {
        let os = os.to_ascii_lowercase();
        let (arch, variant) = match (arch.to_ascii_lowercase().as_str(), variant) {
            ("x86_64" | "x86-64" | "amd64", Some("v1")) => ("amd64".to_string(), None),
            ("x86_64" | "x86-64" | "amd64", v) => ("amd64".to_string(), v.map(str::to_string)),
            ("aarch64" | "arm64", Some("8" | "v8" | "v8.0")) | ("aarch64" | "arm64", None) => {
                ("arm64".to_string(), None)
            }
            ("aarch64" | "arm64", Some(v)) => ("arm64".to_string(), Some(v.to_string())),
            ("armhf", _) => ("arm".to_string(), Some("v7".to_string())),
            ("armel", _) => ("arm".to_string(), Some("v6".to_string())),
            ("arm", Some(v @ ("5" | "6" | "7" | "8"))) => ("arm".to_string(), Some(format!("v{v}"))),
            ("arm", v) => ("arm".to_string(), Some(v.unwrap_or("v7").to_string())),
            ("i386" | "386", v) => ("386".to_string(), v.map(str::to_string)),
            (a, v) => (a.to_string(), v.map(str::to_string)),
        };
        Platform {
            os,
            architecture: arch,
            variant,
        }
    }

    /// From an index entry's `platform` object or an image config's
    /// `os`/`architecture`/`variant`.
    pub fn from_json(v: &serde_json::Value) -> Option<Platform> {
        let os = v["os"].as_str()?;
        let arch = v["architecture"].as_str()?;
        Some(Platform::normalised(os, arch, v["variant"].as_str()))
    }

    /// The same OS, architecture and variant.
    pub fn matches(&self, other: &Platform) -> bool {
        self == other
    }

    /// The same OS and architecture (variants aside).
    pub fn same_os_arch(&self, other: &Platform) -> bool {
        self.os == other.os && self.architecture == other.architecture
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_spelling_per_platform() {
        let p = |s: &str| Platform::parse(s).unwrap().to_string();
        assert_eq!(p("linux/arm64"), "linux/arm64");
        assert_eq!(p("linux/aarch64"), "linux/arm64");
        assert_eq!(p("linux/arm64/v8"), "linux/arm64");
        assert_eq!(p("linux/arm64/v8.2"), "linux/arm64/v8.2");
        assert_eq!(p("aarch64"), "linux/arm64");
        assert_eq!(p("arm"), "linux/arm/v7");
        assert_eq!(p("linux/arm/v6"), "linux/arm/v6");
        assert_eq!(p("linux/x86_64"), "linux/amd64");
        assert_eq!(p("linux/amd64/v1"), "linux/amd64");
        assert_eq!(p("linux/arm/6"), "linux/arm/v6");
        assert_eq!(p("linux/i386"), "linux/386");
        assert_eq!(p("s390x"), "linux/s390x");
        assert_eq!(Platform::parse("linux").unwrap(), Platform::host());
        for bad in ["", "a/b/c/d", "linux/", "/amd64", "linux/am d64"] {
            assert!(Platform::parse(bad).is_err(), "{bad:?}");
        }
        let j = serde_json::json!({"os": "linux", "architecture": "arm64", "variant": "v8"});
        assert_eq!(Platform::from_json(&j), Some(Platform::parse("linux/arm64").unwrap()));
    }
}
