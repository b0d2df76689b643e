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
    unnamed: UnnamedKeys,
}

/// What a key without a name may log in as (`serve --unnamed-keys`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum UnnamedKeys {
    /// Any name but one a pinned key owns (that name logs in as a guest instead).
    #[default]
    Guest,
    /// Any name at all, a pinned key's user too (lookbook before issue 37).
    Any,
}

/// Why a key may not log in under the name it gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The key is not in the file.
    Unknown,
    /// The key is pinned to another user.
    PinnedTo(String),
    /// An unnamed key asked for a name a pinned key owns.
    NameOwned(String),
}

impl Authorized {
    /// Reads an authorized_keys file. Each line is `[NAME] [OPTIONS] KEYTYPE BASE64 [COMMENT]`:
    /// without NAME the SSH login name is the lookbook user; with it the key logs in only as
    /// NAME. OPTIONS are OpenSSH's (`from="..."`, `no-pty`, ...), accepted and not enforced.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut keys = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let entry = parse_line(line).map_err(|why| anyhow::anyhow!("{}:{}: {why}", path.display(), i + 1))?;
            keys.push(entry);
        }
        if keys.is_empty() {
            bail!("{}: no public keys in it", path.display());
        }
        Ok(Authorized {
            keys,
            unnamed: UnnamedKeys::default(),
        })
    }

    /// The same keys, with unnamed keys allowed `unnamed`.
    pub fn with_unnamed(self, unnamed: UnnamedKeys) -> Self {
        Authorized { unnamed, ..self }
    }

    /// The lookbook user a key logs in as: the SSH login name for a key that is not pinned, the
    /// pinned name when the login name is that name, and a refusal otherwise.
    pub fn user_for(&self, key: &PublicKey, ssh_user: &str) -> std::result::Result<String, Refusal> {
        let mut pinned = None;
        for (k, name) in &self.keys {
            if k.key_data() != key.key_data() {
                continue;
            }
            match name {
                None if self.unnamed == UnnamedKeys::Guest
                    && self.keys.iter().any(|(_, n)| n.as_deref() == Some(ssh_user)) =>
                {
                    return Err(Refusal::NameOwned(ssh_user.to_string()));
                }
                None => return Ok(ssh_user.to_string()),
                Some(n) if n == ssh_user => return Ok(n.clone()),
                Some(n) => pinned = pinned.or(Some(n.clone())),
            }
        }
        Err(pinned.map_or(Refusal::Unknown, Refusal::PinnedTo))
    }
}

/// Key types OpenSSH writes in authorized_keys, certificates included.
fn is_key_type(word: &str) -> bool {
    matches!(
        word.strip_suffix("-cert-v01@openssh.com").unwrap_or(word),
        "ssh-ed25519"
            | "ssh-rsa"
            | "ssh-dss"
            | "ecdsa-sha2-nistp256"
            | "ecdsa-sha2-nistp384"
            | "ecdsa-sha2-nistp521"
            | "sk-ssh-ed25519@openssh.com"
            | "sk-ecdsa-sha2-nistp256@openssh.com"
    )
}

/// The option keywords of OpenSSH's authorized_keys format (sshd(8), AUTHORIZED_KEYS FILE FORMAT).
const OPTIONS: [&str; 23] = [
    "agent-forwarding",
    "cert-authority",
    "command",
    "environment",
    "expiry-time",
    "from",
    "no-agent-forwarding",
    "no-port-forwarding",
    "no-pty",
    "no-user-rc",
    "no-x11-forwarding",
    "no-touch-required",
    "permitlisten",
    "permitopen",
    "port-forwarding",
    "principals",
    "pty",
    "restrict",
    "tunnel",
    "user-rc",
    "verify-required",
    "x11-forwarding",
    "touch-required",
];

/// True when `word` is an OpenSSH option list: comma-separated known keywords, some `="..."`.
fn is_option_list(word: &str) -> bool {
    split_outside_quotes(word, |c| c == ',').iter().all(|opt| {
        let keyword = opt.split('=').next().unwrap_or("").to_ascii_lowercase();
        OPTIONS.contains(&keyword.as_str())
    })
}

/// Splits at `sep` characters that are not inside double quotes (`\"` escapes a quote).
fn split_outside_quotes(s: &str, sep: impl Fn(char) -> bool) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut quoted, mut escaped, mut start) = (false, false, 0);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if !quoted && sep(c) => {
                if i > start {
                    parts.push(&s[start..i]);
                }
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    if start < s.len() {
        parts.push(&s[start..]);
    }
    parts
}

/// One line: the key and the user it is pinned to, if any.
fn parse_line(line: &str) -> std::result::Result<(PublicKey, Option<String>), String> {
    let words = split_outside_quotes(line, char::is_whitespace);
    let Some(at) = words.iter().position(|w| is_key_type(w)) else {
        return Err("not a public key (expected `ssh-ed25519 AAAA...`, optionally after a user name)".into());
    };
    let Some(data) = words.get(at + 1) else {
        return Err(format!("the {} key has no key data after its type", words[at]));
    };
    let key = PublicKey::from_openssh(&format!("{} {data}", words[at]))
        .map_err(|e| format!("the {} key does not parse ({e})", words[at]))?;
    let name = match &words[..at] {
        [] => None,
        [options] if is_option_list(options) => None,
        [name] => Some(*name),
        [name, options] if is_option_list(options) => Some(*name),
        _ => {
            return Err(
                "expected `[NAME] [OPTIONS] KEYTYPE KEY [COMMENT]`; the words before the key are neither a user name nor OpenSSH options"
                    .into(),
            );
        }
    };
    let name = name
        .map(|n| lookbook::catalog::check_user_name(n).map(str::to_string))
        .transpose()
        .map_err(|e| e.to_string())?;
    Ok((key, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pubkey(seed: u8) -> PublicKey {
        PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]))
            .public_key()
            .clone()
    }

    fn file(text: &str) -> Authorized {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ak");
        std::fs::write(&p, text).unwrap();
        Authorized::read(&p).unwrap()
    }

    #[test]
    fn a_pinned_key_logs_in_only_as_its_name() {
        let k = pubkey(3).to_openssh().unwrap();
        for line in [
            format!("carol {k}"),
            format!("carol {k} carol@laptop"),
            format!("carol no-pty,from=\"10.0.0.1\" {k}"),
            format!("carol command=\"echo hi there\",restrict {k}"),
        ] {
            let ak = file(&format!("{line}\n"));
            assert_eq!(ak.user_for(&pubkey(3), "carol"), Ok("carol".into()), "{line}");
            assert_eq!(
                ak.user_for(&pubkey(3), "mallory"),
                Err(Refusal::PinnedTo("carol".into())),
                "{line}"
            );
            assert_eq!(ak.user_for(&pubkey(4), "carol"), Err(Refusal::Unknown), "{line}");
        }
    }

    #[test]
    fn an_unpinned_key_logs_in_as_its_login_name_with_or_without_options() {
        let k = pubkey(5).to_openssh().unwrap();
        for line in [
            k.clone(),
            format!("{k} me@laptop"),
            format!("no-pty {k}"),
            format!("from=\"127.0.0.1,::1\",no-agent-forwarding {k} comment with spaces"),
        ] {
            let ak = file(&format!("# keys\n\n{line}\n"));
            assert_eq!(ak.user_for(&pubkey(5), "ana"), Ok("ana".into()), "{line}");
            assert_eq!(ak.user_for(&pubkey(5), "bob"), Ok("bob".into()), "{line}");
        }
    }

    #[test]
    fn an_unnamed_key_never_logs_in_as_a_pinned_keys_user() {
        // Issue 37, case 8: an unnamed key could log in as any user, a pinned key's too.
        let (carol, any) = (pubkey(3).to_openssh().unwrap(), pubkey(5).to_openssh().unwrap());
        let ak = file(&format!("carol {carol}\n{any}\n"));
        assert_eq!(
            ak.user_for(&pubkey(5), "carol"),
            Err(Refusal::NameOwned("carol".into()))
        );
        assert_eq!(
            ak.user_for(&pubkey(5), "ana"),
            Ok("ana".into()),
            "a name no pinned key owns"
        );
        assert_eq!(ak.user_for(&pubkey(3), "carol"), Ok("carol".into()));
        let any_name = file(&format!("carol {carol}\n{any}\n")).with_unnamed(UnnamedKeys::Any);
        assert_eq!(any_name.user_for(&pubkey(5), "carol"), Ok("carol".into()));
    }

    #[test]
    fn bad_lines_name_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ak");
        let k = pubkey(6).to_openssh().unwrap();
        for (text, want) in [
            (format!("{k}\nnot a key\n"), ":2: not a public key"),
            (format!("a b {k}\n"), ":1: expected `[NAME] [OPTIONS]"),
            (format!("bad\u{1b}name {k}\n"), ":1: user name"),
            (
                "ssh-ed25519 AAAAnope\n".to_string(),
                ":1: the ssh-ed25519 key does not parse",
            ),
        ] {
            std::fs::write(&p, text).unwrap();
            let e = Authorized::read(&p).err().unwrap().to_string();
            assert!(e.contains(want), "{e}");
        }
    }
}
