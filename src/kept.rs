//! Checksums of the files lookbook keeps to answer fast (`catalog.ivf` beside a catalogue, the
//! packed networks in the data folder): each file ends with the SHA-256 of the rest, verified
//! once per file and then noted beside it with the file's length, modification time and inode,
//! so a one-shot command does not hash hundreds of megabytes each time, and a file changed
//! since is verified again. A file that fails is rebuilt by its owner, never used (damaged
//! vectors or weights gave wrong answers with exit 0, issue 37).

use sha2::{Digest, Sha256};
use std::path::Path;

/// Bytes of the checksum.
pub const CHECKSUM: usize = 32;

/// A running checksum of what is being written.
#[derive(Default)]
pub struct Hasher(Sha256);

impl Hasher {
    /// Adds bytes, in the order they are written.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The checksum of everything added.
    pub fn finish(self) -> [u8; CHECKSUM] {
        self.0.finalize().into()
    }
}

/// The file as it is now (length, modification time, inode) with its checksum: what the note
/// says once the file was verified.
fn identity(path: &Path, checksum: &[u8]) -> Option<String> {
    let m = std::fs::metadata(path).ok()?;
    let time = m
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_nanos();
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let inode = 0u64;
    let hex: String = checksum.iter().map(|b| format!("{b:02x}")).collect();
    Some(format!("{} {time} {inode} {hex}\n", m.len()))
}

/// Notes that `path`, as it is now, has `checksum` (best effort: a read-only folder only means
/// the next process verifies again).
pub fn note_verified(path: &Path, note: &Path, checksum: &[u8]) {
    if let Some(id) = identity(path, checksum) {
        let _ = std::fs::write(note, id);
    }
}

/// Whether `checksum` is that of `body`, the file at `path` without it: from the note at `note`
/// when it describes the file as it is now, else by hashing (and noting it when it matches).
pub fn verified(path: &Path, note: &Path, body: &[u8], checksum: &[u8]) -> bool {
    let now = identity(path, checksum);
    if now.is_some() && std::fs::read_to_string(note).ok() == now {
        return true;
    }
    if Sha256::digest(body).as_slice() != checksum {
        return false;
    }
    note_verified(path, note, checksum);
    true
}
