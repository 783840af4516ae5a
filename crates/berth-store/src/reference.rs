//! Image references normalised as Docker does: `busybox` is
//! `docker.io/library/busybox:latest`, `host:port/repo:tag` keeps its
//! registry, `repo@sha256:…` pins a digest. Only parsing and printing: this
//! module never looks anything up.

use crate::digest::Digest;
use crate::error::{Result, StoreError};

pub const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DOMAIN: &str = "index.docker.io";
const OFFICIAL_PREFIX: &str = "library/";

/// A fully qualified reference: domain, path, and a tag and/or a digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    pub domain: String,
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

fn invalid(reference: &str, reason: impl Into<String>) -> StoreError {
    StoreError::InvalidReference {
        reference: reference.to_string(),
        reason: reason.into(),
    }
}

fn valid_path_component(c: &str) -> bool {
    // [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)*
    if c.is_empty() {
        return false;
    }
    let b = c.as_bytes();
    if !b[0].is_ascii_lowercase() && !b[0].is_ascii_digit() {
        return false;
    }
    let last = b[b.len() - 1];
    if !last.is_ascii_lowercase() && !last.is_ascii_digit() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let ch = b[i];
        if ch.is_ascii_lowercase() || ch.is_ascii_digit() {
            i += 1;
            continue;
        }
        // a separator run
        let start = i;
        while i < b.len() && !(b[i].is_ascii_lowercase() || b[i].is_ascii_digit()) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) if !h.contains(']') || h.ends_with(']') => (h, Some(p)),
        _ => (d, None),
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()) {
            return false;
        }
    }
    if host.starts_with('[') {
        return host.ends_with(']');
    }
    !host.is_empty()
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

impl Reference {
    /// Parse and normalise like `docker pull` does. A missing tag becomes
    /// `latest` unless a digest is given.
    pub fn parse(s: &str) -> Result<Self> {
        if s.is_empty() {
            return Err(invalid(s, "repository name must have at least one component"));
        }
        if s.len() > 255 + 64 + 128 {
            return Err(invalid(s, "reference is too long"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (
                r,
                Some(Digest::parse(d).map_err(|_| invalid(s, format!("invalid digest {d:?}")))?),
            ),
            None => (s, None),
        };
        // The tag is after the last ':' that comes after the last '/'.
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(invalid(s, format!("invalid tag {t:?}: a tag is up to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'")));
            }
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, remainder))
                if first.contains('.')
                    || first.contains(':')
                    || first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                (first.to_string(), remainder.to_string())
            }
            _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
        };
        if !valid_domain(&domain) {
            return Err(invalid(s, format!("invalid registry host {domain:?}")));
        }
        let domain = if domain == LEGACY_DOMAIN {
            DEFAULT_DOMAIN.to_string()
        } else {
            domain
        };
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            let shown = if domain == DEFAULT_DOMAIN && !path.contains('/') {
                format!("{OFFICIAL_PREFIX}{path}")
            } else {
                path.clone()
            };
            return Err(invalid(s, format!("repository name ({shown}) must be lowercase")));
        }
        for comp in path.split('/') {
            if !valid_path_component(comp) {
                return Err(invalid(
                    s,
                    format!("invalid repository name component {comp:?}: use lowercase letters, digits and single separators (. _ __ -)"),
                ));
            }
        }
        let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
            format!("{OFFICIAL_PREFIX}{path}")
        } else {
            path
        };
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_string()),
        };
        Ok(Reference {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// `docker.io/library/busybox` — the repository, fully qualified.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// `busybox` for Docker Hub's library images, `user/x`, `host:5000/x` otherwise.
    pub fn familiar_repository(&self) -> String {
        familiar_repository(&self.repository())
    }

    /// Fully qualified name with tag (or digest): the key the store records.
    pub fn full(&self) -> String {
        let mut s = self.repository();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d.as_str());
        }
        s
    }

    /// How Docker prints it: `busybox:latest`, `localhost:5000/x:1`.
    pub fn familiar(&self) -> String {
        familiar_name(&self.full())
    }

    /// What to ask a registry's manifest endpoint for: the digest if there
    /// is one, else the tag (`latest` if there is neither).
    pub fn tag_or_digest(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }
}

/// `docker.io/library/x` → `x`, `docker.io/u/x` → `u/x`, others unchanged.
pub fn familiar_repository(repo: &str) -> String {
    if let Some(rest) = repo.strip_prefix("docker.io/") {
        rest.strip_prefix(OFFICIAL_PREFIX).unwrap_or(rest).to_string()
    } else {
        repo.to_string()
    }
}

/// Familiar form of a full `repo:tag` or `repo@digest`.
pub fn familiar_name(full: &str) -> String {
    let (repo, suffix) = split_repo(full);
    format!("{}{}", familiar_repository(repo), suffix)
}

/// Split a stored full name into repository and its `:tag` / `@digest` suffix.
pub fn split_repo(full: &str) -> (&str, &str) {
    if let Some(i) = full.find('@') {
        return (&full[..i], &full[i..]);
    }
    let last_slash = full.rfind('/').map(|i| i + 1).unwrap_or(0);
    match full[last_slash..].rfind(':') {
        Some(i) => (&full[..last_slash + i], &full[last_slash + i..]),
        None => (full, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_like_docker() {
        let cases = [
            ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
            ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
            ("user/app", "docker.io/user/app:latest", "user/app:latest"),
            (
                "localhost:5000/app:v1",
                "localhost:5000/app:v1",
                "localhost:5000/app:v1",
            ),
            ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
            ("quay.io/a/b/c:t", "quay.io/a/b/c:t", "quay.io/a/b/c:t"),
            ("index.docker.io/library/bb", "docker.io/library/bb:latest", "bb:latest"),
            ("127.0.0.1:5000/x", "127.0.0.1:5000/x:latest", "127.0.0.1:5000/x:latest"),
        ];
        for (input, full, familiar) in cases {
            let r = Reference::parse(input).unwrap();
            assert_eq!(r.full(), full, "{input}");
            assert_eq!(r.familiar(), familiar, "{input}");
        }
        let d = format!("sha256:{}", "b".repeat(64));
        let r = Reference::parse(&format!("bb@{d}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.full(), format!("docker.io/library/bb@{d}"));
    }

    #[test]
    fn rejects_bad_references() {
        for bad in [
            "",
            "UPPER",
            "a//b",
            "a:",
            "-a",
            "a:-tag",
            "a@sha256:xyz",
            "bad host:1/x",
            "x__-y",
        ] {
            let e = Reference::parse(bad);
            assert!(e.is_err(), "{bad:?} should be rejected");
        }
        let msg = Reference::parse("Foo").unwrap_err().to_string();
        assert!(msg.contains("lowercase"), "{msg}");
    }
}
