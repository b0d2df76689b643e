//! API keys: a file of `read KEY` and `write KEY` lines (a write key may also read), checked
//! against a request's `Authorization: Bearer KEY` in constant time.

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::path::Path;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// Look-alikes, feeds, best sellers, metrics.
    Read,
    /// Everything a read key may, and events in.
    Write,
}

/// Keys shorter than this are refused when the file is read: a guessable key is no key.
const MIN_KEY_LEN: usize = 16;

/// The keys of one server, kept as SHA-256 digests (a key never sits in memory as typed, and
/// every comparison is between fixed-size digests).
#[derive(Debug, Default)]
pub struct Keys {
    keys: Vec<([u8; 32], Access, usize)>,
}

/// Which key a request used: its line in the file (for rate limits and metrics; never the key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub usize);

impl Keys {
    /// Reads `path`: one `read KEY` or `write KEY` per line; blank lines and `#` comments skipped.
    pub fn read(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read the keys file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("{}", path.display()))
    }

    /// Parses the keys file's text.
    pub fn parse(text: &str) -> Result<Self> {
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.split_whitespace();
            let (Some(kind), Some(key), None) = (parts.next(), parts.next(), parts.next()) else {
                bail!("line {}: expected `read KEY` or `write KEY`", n + 1);
            };
            let access = match kind {
                "read" => Access::Read,
                "write" => Access::Write,
                other => bail!(
                    "line {}: {:?} is not an access; use `read` or `write`",
                    n + 1,
                    lookbook::text::clip(other, 20)
                ),
            };
            if key.len() < MIN_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
                bail!(
                    "line {}: a key must be at least {MIN_KEY_LEN} printable characters (make one with `openssl rand -hex 24`)",
                    n + 1
                );
            }
            let d = digest(key);
            if let Some((_, _, first)) = keys.iter().find(|(k, _, _)| *k == d) {
                bail!(
                    "line {}: the same key as line {first}; each key has one line and one access",
                    n + 1
                );
            }
            keys.push((d, access, n + 1));
        }
        if keys.is_empty() {
            bail!("no keys: add a line `read KEY` (for pages) or `write KEY` (for events)");
        }
        Ok(Keys { keys })
    }

    /// The key a request's `Authorization` header carries and what it may do; `None` when it
    /// carries none that is known.
    pub fn check(&self, header: Option<&str>) -> Option<(KeyId, Access)> {
        let token = header?
            .strip_prefix("Bearer ")
            .or_else(|| header?.strip_prefix("bearer "))?
            .trim();
        let d = digest(token);
        // Every key is compared, in constant time, so the time taken says nothing of which
        // (or whether one) matched.
        let mut found = None;
        for (k, access, line) in &self.keys {
            if constant_eq(k, &d) {
                found = Some((KeyId(*line), *access));
            }
        }
        found
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

fn constant_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_keys_and_tells_read_from_write() {
        let k = Keys::parse("# shop\nread  0123456789abcdef0123\n\nwrite fedcba9876543210fedc\n").unwrap();
        assert_eq!(
            k.check(Some("Bearer 0123456789abcdef0123")),
            Some((KeyId(2), Access::Read))
        );
        assert_eq!(
            k.check(Some("Bearer fedcba9876543210fedc")),
            Some((KeyId(4), Access::Write))
        );
        assert_eq!(k.check(Some("Bearer fedcba9876543210fedX")), None);
        assert_eq!(k.check(Some("fedcba9876543210fedc")), None);
        assert_eq!(k.check(None), None);
    }

    #[test]
    fn refuses_short_keys_unknown_access_and_empty_files() {
        assert!(
            Keys::parse("read short")
                .unwrap_err()
                .to_string()
                .contains("at least 16")
        );
        assert!(
            Keys::parse("admin 0123456789abcdef0123")
                .unwrap_err()
                .to_string()
                .contains("not an access")
        );
        assert!(Keys::parse("# nothing\n").unwrap_err().to_string().contains("no keys"));
        assert!(Keys::parse("read a b c").unwrap_err().to_string().contains("line 1"));
        let twice = Keys::parse("read 0123456789abcdef0123\nwrite 0123456789abcdef0123").unwrap_err();
        assert!(twice.to_string().contains("line 2: the same key as line 1"), "{twice}");
    }
}
