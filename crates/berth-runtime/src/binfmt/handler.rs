//! One binfmt_misc handler: parsed from what the kernel shows of it
//! (`/proc/sys/fs/binfmt_misc/NAME`) or from a registration line
//! (`:name:M:offset:magic:mask:interpreter:flags`, systemd's binfmt.d
//! format, which Debian's qemu-user-static ships), and written back as a
//! registration line. Pure data: nothing here touches the kernel.

use std::path::PathBuf;

use crate::error::{Result, RuntimeError};

/// What a handler recognises files by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Bytes at `offset`, compared under `mask` (all ones when absent).
    Magic {
        offset: u64,
        magic: Vec<u8>,
        mask: Option<Vec<u8>>,
    },
    /// The file name's extension (without the dot).
    Extension(String),
}

/// A binfmt_misc handler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handler {
    /// Its name: the file under the binfmt_misc directory.
    pub name: String,
    /// Whether the kernel uses it (`echo 0 > NAME` disables it).
    pub enabled: bool,
    /// The program the kernel runs with the file as argument.
    pub interpreter: PathBuf,
    /// The flag letters: `P` preserve argv[0], `O` open the binary, `C`
    /// credentials, `F` fix binary (the interpreter is opened when the
    /// handler is registered, so it works in any mount namespace).
    pub flags: String,
    /// What files it takes.
    pub rule: Rule,
}

impl Handler {
    /// Whether the kernel opened the interpreter at registration (`F`), so
    /// that containers and other mount namespaces can use the handler.
    pub fn fixes_binary(&self) -> bool {
        self.flags.contains('F')
    }

    /// Whether the kernel would hand a file starting with `header` to this
    /// handler. Bytes of the magic beyond `header` are not held against it.
    pub fn matches_header(&self, header: &[u8]) -> bool {
        let Rule::Magic { offset, magic, mask } = &self.rule else {
            return false;
        };
        let Ok(offset) = usize::try_from(*offset) else {
            return false;
        };
        if offset >= header.len() {
            return false;
        }
        magic.iter().enumerate().all(|(i, m)| {
            let Some(h) = header.get(offset + i) else {
                return true;
            };
            let k = mask.as_ref().and_then(|k| k.get(i)).copied().unwrap_or(0xff);
            h & k == m & k
        })
    }

    /// Parses what the kernel shows in the handler's file.
    pub fn from_kernel(name: &str, text: &str) -> Result<Handler> {
        let bad = |why: &str| RuntimeError::Unsupported(format!("binfmt_misc handler {name}: {why}"));
        let mut enabled = None;
        let mut interpreter = None;
        let mut flags = String::new();
        let mut offset = 0u64;
        let mut magic = None;
        let mut mask = None;
        let mut extension = None;
        for line in text.lines() {
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            match key {
                "enabled" => enabled = Some(true),
                "disabled" => enabled = Some(false),
                "interpreter" => interpreter = Some(PathBuf::from(value)),
                "flags:" => flags = value.trim().to_string(),
                "offset" => offset = value.trim().parse().map_err(|_| bad("unreadable offset"))?,
                "magic" => magic = Some(hex::decode(value.trim()).map_err(|_| bad("unreadable magic"))?),
                "mask" => mask = Some(hex::decode(value.trim()).map_err(|_| bad("unreadable mask"))?),
                "extension" => extension = Some(value.trim().trim_start_matches('.').to_string()),
                _ => {}
            }
        }
        let rule = match (magic, extension) {
            (Some(magic), _) => Rule::Magic { offset, magic, mask },
            (None, Some(ext)) => Rule::Extension(ext),
            (None, None) => return Err(bad("neither magic nor extension")),
        };
        Ok(Handler {
            name: name.to_string(),
            enabled: enabled.ok_or_else(|| bad("no enabled/disabled line"))?,
            interpreter: interpreter.ok_or_else(|| bad("no interpreter"))?,
            flags,
            rule,
        })
    }

    /// Parses a registration line, `:name:type:offset:magic:mask:interpreter:flags`
    /// (the first character is the separator; magic and mask take `\xHH`
    /// escapes, as the kernel reads them).
    pub fn from_registration(line: &str) -> Result<Handler> {
        let bad = |why: &str| RuntimeError::InvalidConfig(format!("binfmt registration {line:?}: {why}"));
        let line = line.trim_end_matches(['\n', '\r']);
        let sep = line.chars().next().ok_or_else(|| bad("empty"))?;
        let fields: Vec<&str> = line[sep.len_utf8()..].split(sep).collect();
        if fields.len() < 6 {
            return Err(bad("expected :name:type:offset:magic:mask:interpreter:flags"));
        }
        let (name, kind, offset, magic, mask, interpreter) =
            (fields[0], fields[1], fields[2], fields[3], fields[4], fields[5]);
        let flags = fields.get(6).copied().unwrap_or("").to_string();
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(bad("invalid name"));
        }
        let rule = match kind {
            "M" => {
                let magic = unescape(magic).map_err(|e| bad(&e))?;
                let mask = if mask.is_empty() {
                    None
                } else {
                    Some(unescape(mask).map_err(|e| bad(&e))?)
                };
                if magic.is_empty() || mask.as_ref().is_some_and(|m| m.len() != magic.len()) {
                    return Err(bad("magic empty, or mask of another length"));
                }
                let offset = if offset.is_empty() {
                    0
                } else {
                    offset.parse().map_err(|_| bad("offset is not a number"))?
                };
                Rule::Magic { offset, magic, mask }
            }
            "E" => Rule::Extension(magic.to_string()),
            _ => return Err(bad("type must be M (magic) or E (extension)")),
        };
        if !flags.chars().all(|c| "POCF".contains(c)) {
            return Err(bad("flags are P, O, C and F"));
        }
        Ok(Handler {
            name: name.to_string(),
            enabled: true,
            interpreter: PathBuf::from(interpreter),
            flags,
            rule,
        })
    }

    /// The line that registers this handler (written to `register`).
    pub fn registration(&self) -> String {
        let esc = |b: &[u8]| b.iter().map(|b| format!("\\x{b:02x}")).collect::<String>();
        let (kind, offset, magic, mask) = match &self.rule {
            Rule::Magic { offset, magic, mask } => (
                "M",
                offset.to_string(),
                esc(magic),
                mask.as_deref().map(esc).unwrap_or_default(),
            ),
            Rule::Extension(ext) => ("E", String::new(), ext.clone(), String::new()),
        };
        format!(
            ":{}:{kind}:{offset}:{magic}:{mask}:{}:{}",
            self.name,
            self.interpreter.display(),
            self.flags
        )
    }

    /// The same handler as the kernel stores it: magic bytes already
    /// masked, flags in the kernel's order. Two handlers that register the
    /// same way compare equal in this form.
    pub fn canonical(&self) -> Handler {
        let mut h = self.clone();
        if let Rule::Magic {
            magic,
            mask: Some(mask),
            ..
        } = &mut h.rule
        {
            for (m, k) in magic.iter_mut().zip(mask.iter()) {
                *m &= k;
            }
        }
        let mut flags: String = "PCOF".chars().filter(|c| self.flags.contains(*c)).collect();
        // C implies O, as the kernel records it.
        if flags.contains('C') && !flags.contains('O') {
            flags = "PCOF".chars().filter(|c| flags.contains(*c) || *c == 'O').collect();
        }
        h.flags = flags;
        h
    }
}

/// `\xHH` escapes to bytes; every other character stands for itself.
fn unescape(s: &str) -> std::result::Result<Vec<u8>, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') {
            let hex = s.get(i + 2..i + 4).ok_or("truncated \\x escape")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| format!("bad \\x escape {hex:?}"))?);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}
