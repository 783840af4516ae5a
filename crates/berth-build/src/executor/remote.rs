//! `ADD <url>`: http(s) sources, fetched through the downloader the engine
//! injects ([`super::BuildOptions::download`]; this crate has no HTTP).
//!
//! As BuildKit does: the file is named after the last segment of the URL's
//! path (the destination names it when it does not end in `/`), has mode
//! 0600 and, when the server sends `Last-Modified`, that mtime; archives
//! are not extracted; `--checksum=sha256:…` is verified before anything is
//! copied.
//!
//! Caching: like the classic builder, every build downloads the URL again
//! and the step's key holds the content's digest (and `Last-Modified`, which
//! becomes the file's mtime), so an unchanged file is a cache hit and a
//! changed one is not. No ETag revalidation.

use berth_archive::perms;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use super::{BuildError, Builder};

/// A downloaded source, staged as `dir/name`.
pub(crate) struct Fetched {
    pub dir: PathBuf,
    pub name: String,
    /// `sha256:…` of the content.
    pub digest: String,
    pub last_modified: Option<String>,
}

/// Is this source a git repository (`git@…`, `git://…`, `https://…/x.git`)?
pub(crate) fn is_git(src: &str) -> bool {
    let no_frag = src.split('#').next().unwrap_or(src);
    src.starts_with("git@") || src.starts_with("git://") || no_frag.ends_with(".git")
}

/// The file name a URL gives: the last segment of its path, percent-decoded
/// (None when the path ends in `/` or is empty).
pub(crate) fn url_file_name(url: &str) -> Option<String> {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let path = rest.split_once('/').map(|(_, p)| p).unwrap_or_default();
    let last = path.rsplit('/').next().unwrap_or_default();
    let name = percent_decode(last);
    (!name.is_empty() && name != "." && name != ".." && !name.contains('/')).then_some(name)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit() {
            let hexval = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
            out.push(hexval(b[i + 1]) * 16 + hexval(b[i + 2]));
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `--checksum`: only `sha256:<64 hex>`.
pub(crate) fn parse_checksum(c: &str) -> Result<String, BuildError> {
    let hex = c.strip_prefix("sha256:").ok_or_else(|| {
        BuildError::other(format!(
            "--checksum={c}: unsupported checksum: use sha256:<64 hex digits> (sha256sum FILE prints it)"
        ))
    })?;
    if hex.len() != 64 || !hex.bytes().all(|x| x.is_ascii_hexdigit()) {
        return Err(BuildError::other(format!(
            "--checksum={c}: a sha256 checksum is 64 hex digits"
        )));
    }
    Ok(format!("sha256:{}", hex.to_ascii_lowercase()))
}

/// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`) as seconds since the epoch.
pub(crate) fn http_date(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc2822(s.trim())
        .ok()
        .map(|t| t.timestamp())
}

/// Download `url` into `dir/<name>` (mode 0600, mtime from Last-Modified)
/// and check `checksum` when given.
pub(crate) fn fetch(
    b: &Builder<'_>,
    url: &str,
    dir: &Path,
    name: &str,
    checksum: Option<&str>,
) -> Result<Fetched, BuildError> {
    let Some(download) = &b.opts.download else {
        return Err(BuildError::other(format!(
            "ADD {url}: this build has no downloader for remote sources; download the file into the context"
        )));
    };
    perms::create_dir_all(dir, perms::PRIVATE_DIR)
        .map_err(|e| BuildError::other(format!("ADD {url}: creating {}: {e}", dir.display())))?;
    let path = dir.join(name);
    let io = |e: std::io::Error| BuildError::other(format!("ADD {url}: writing {}: {e}", path.display()));
    let file = perms::create_new(&path, perms::PRIVATE_FILE).map_err(io)?;
    let mut hashing = berth_archive::HashingWriter::new(BufWriter::new(file));
    let meta = (download.0)(url, &mut hashing).map_err(|e| BuildError::other(format!("ADD {url}: {e}")))?;
    let (w, digest, _) = hashing.finish();
    let file = w.into_inner().map_err(|e| io(e.into_error()))?;
    if let Some(want) = checksum {
        if want != digest {
            return Err(BuildError::other(format!(
                "ADD {url}: checksum mismatch: --checksum={want} but the download is {digest}"
            )));
        }
    }
    if let Some(t) = meta.last_modified.as_deref().and_then(http_date) {
        let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64);
        file.set_modified(when).map_err(io)?;
    }
    Ok(Fetched {
        dir: dir.to_path_buf(),
        name: name.to_string(),
        digest,
        last_modified: meta.last_modified,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_url_path() {
        assert_eq!(
            url_file_name("https://h/a/b/file.tar.gz?x=1#f").as_deref(),
            Some("file.tar.gz")
        );
        assert_eq!(
            url_file_name("http://127.0.0.1:8000/my%20file").as_deref(),
            Some("my file")
        );
        assert_eq!(url_file_name("http://h/dir/"), None);
        assert_eq!(url_file_name("http://h"), None);
        assert_eq!(url_file_name("http://h/a%2Fb"), None);
    }

    #[test]
    fn git_sources_and_checksums() {
        assert!(is_git("https://github.com/x/y.git"));
        assert!(is_git("https://github.com/x/y.git#main"));
        assert!(is_git("git@github.com:x/y"));
        assert!(!is_git("https://h/y.tar.gz"));
        let h = "A".repeat(64);
        assert_eq!(
            parse_checksum(&format!("sha256:{h}")).unwrap(),
            format!("sha256:{}", "a".repeat(64))
        );
        assert!(parse_checksum("md5:abc")
            .unwrap_err()
            .to_string()
            .contains("use sha256:"));
        assert!(parse_checksum("sha256:abc").is_err());
    }

    #[test]
    fn http_dates() {
        assert_eq!(http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784111777));
        assert_eq!(http_date("yesterday"), None);
    }
}
