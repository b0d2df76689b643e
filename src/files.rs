//! Bounded reads of files named by users or CSV rows. A path can be `/dev/zero`, a FIFO that
//! never ends, or a sparse file of terabytes; each read here checks that it is a regular file
//! (before opening it, so a FIFO cannot block) and caps how much is read.

use std::io::Read;
use std::path::Path;

use crate::{Error, Result};

/// Largest photo accepted, in bytes; bigger files are not product photos.
pub const MAX_PHOTO_BYTES: u64 = 64 << 20;
/// Largest metadata CSV accepted (about three million rows of the Kaggle layout).
pub const MAX_METADATA_BYTES: u64 = 512 << 20;
/// Largest weights file accepted (a ResNet50 in f32 is about 100 MB).
pub const MAX_WEIGHTS_BYTES: u64 = 2 << 30;

/// Checks that `path` is a regular file of at most `max` bytes; returns its length.
pub fn check_regular(path: &Path, max: u64, what: &str) -> Result<u64> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        let kind = if meta.is_dir() {
            "a folder"
        } else {
            "not a regular file (a device, FIFO or socket)"
        };
        return Err(Error::Invalid(format!(
            "{}: {kind}; give a {what} file",
            path.display()
        )));
    }
    if meta.len() > max {
        return Err(Error::Invalid(format!(
            "{}: {} MB, over the {} MB limit for a {what} file",
            path.display(),
            meta.len() >> 20,
            max >> 20
        )));
    }
    Ok(meta.len())
}

/// Reads a whole regular file of at most `max` bytes (also when it grows while being read).
pub fn read_capped(path: &Path, max: u64, what: &str) -> Result<Vec<u8>> {
    let len = check_regular(path, max, what)?;
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut bytes = Vec::with_capacity(len as usize);
    f.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > max {
        return Err(Error::Invalid(format!(
            "{}: grew past the {} MB limit for a {what} file while being read",
            path.display(),
            max >> 20
        )));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_devices_folders_and_big_files() {
        let e = read_capped(Path::new("/dev/zero"), 10, "photo")
            .unwrap_err()
            .to_string();
        assert!(e.contains("/dev/zero") && e.contains("not a regular file"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        assert!(
            read_capped(dir.path(), 10, "photo")
                .unwrap_err()
                .to_string()
                .contains("a folder")
        );
        let big = dir.path().join("big");
        std::fs::File::create(&big).unwrap().set_len(11).unwrap();
        assert!(
            read_capped(&big, 10, "photo")
                .unwrap_err()
                .to_string()
                .contains("over the")
        );
        assert_eq!(read_capped(&big, 11, "photo").unwrap().len(), 11);
    }
}
