//! Host and client keys for `lookbook serve`: the ed25519 host key made on first start and kept
//! with mode 0600, and the authorized_keys file that says who may log in.

use anyhow::{Context, Result, bail};
use russh::keys::ssh_key::{LineEnding, PrivateKey, PublicKey, private::Ed25519Keypair};
use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Reads the host key, or makes a new ed25519 one (mode 0600) when the file does not exist.
pub fn load_or_create_host_key(path: &Path) -> Result<PrivateKey> {
    if path.exists() {
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            bail!(
                "{}: the host key is readable by others (mode {:o}); run `chmod 600 {}`",
                path.display(),
                mode & 0o777,
                path.display()
            );
        }
        let text = std::fs::read_to_string(path).with_context(|| format!("reading the host key {}", path.display()))?;
        return PrivateKey::from_openssh(text.as_bytes())
            .with_context(|| format!("{}: not an OpenSSH private key", path.display()));
    }
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .context("reading /dev/urandom for a new host key")?;
    let key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    let text = key.to_openssh(LineEnding::LF).context("encoding the new host key")?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating the host key {}", path.display()))?;
    std::io::Write::write_all(&mut f, text.as_bytes())?;
    crate::serve::log(format_args!("made a new host key {}", path.display()));
    Ok(key)
}

/// Who may log in: keys, each optionally pinned to a lookbook user.
#[derive(Default)]
pub struct Authorized {
    keys: Vec<(PublicKey, Option<String>)>,
}

impl Authorized {
    /// Reads an authorized_keys file: OpenSSH lines (`ssh-ed25519 AAAA... comment`, options
    /// allowed), where the SSH user name becomes the lookbook user, or `NAME ssh-ed25519 AAAA...`
    /// lines, where that key always logs in as NAME.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut keys = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(k) = parse_key(line) {
                keys.push((k, None));
                continue;
            }
            let (name, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            match parse_key(rest.trim()) {
                Some(k) => keys.push((k, Some(name.to_string()))),
                None => bail!(
                    "{}:{}: not a public key (expected `ssh-ed25519 AAAA...`, optionally after a user name)",
                    path.display(),
                    i + 1
                ),
            }
        }
        if keys.is_empty() {
            bail!("{}: no public keys in it", path.display());
        }
        Ok(Authorized { keys })
    }

    /// The lookbook user a key logs in as (the SSH user name unless the key is pinned), or
    /// `None` for a key that is not allowed.
    pub fn user_for(&self, key: &PublicKey, ssh_user: &str) -> Option<String> {
        self.keys
            .iter()
            .find(|(k, _)| k.key_data() == key.key_data())
            .map(|(_, pinned)| pinned.clone().unwrap_or_else(|| ssh_user.to_string()))
    }
}

/// A public key from an authorized_keys line, skipping any leading options.
fn parse_key(line: &str) -> Option<PublicKey> {
    if let Ok(k) = PublicKey::from_openssh(line) {
        return Some(k);
    }
    // `from="...",no-pty ssh-ed25519 AAAA...`: try from each key-type-looking word on.
    line.match_indices(|c: char| c.is_whitespace())
        .find_map(|(i, _)| PublicKey::from_openssh(line[i..].trim()).ok())
}
