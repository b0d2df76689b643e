//! Checks that a catalogue photo is safe to use: inside the images folder, a real image, complete.

use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::files::MAX_PHOTO_BYTES as MAX_BYTES;

/// Resolves a CSV-supplied relative path inside `root`, refusing absolute paths and escapes.
/// Returns the path relative to `root` as stored in the catalogue.
pub fn safe_relative(root: &Path, canonical_root: &Path, rel: &str) -> Result<(String, PathBuf), String> {
    let p = Path::new(rel);
    if rel.is_empty() {
        return Err("empty image path".into());
    }
    if p.is_absolute() || rel.starts_with('/') || rel.starts_with('\\') {
        return Err(format!(
            "image path {rel:?} is absolute; it must be relative to the images folder"
        ));
    }
    for c in p.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            _ => return Err(format!("image path {rel:?} leaves the images folder")),
        }
    }
    let full = root.join(p);
    // A symlink inside the folder may still point outside it.
    match full.canonicalize() {
        Ok(c) if !c.starts_with(canonical_root) => {
            Err(format!("image path {rel:?} resolves outside the images folder"))
        }
        Ok(_) => Ok((rel.to_string(), full)),
        Err(_) => Err(format!("image missing: {}", full.display())),
    }
}

/// Reads, hashes and fully decodes a photo; returns its SHA-256 or why it is unusable.
pub fn check(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("image missing: {} ({e})", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a file", path.display()));
    }
    if meta.len() > MAX_BYTES {
        return Err(format!(
            "{} is {} MB, over the {} MB limit",
            path.display(),
            meta.len() >> 20,
            MAX_BYTES >> 20
        ));
    }
    let bytes = crate::files::read_capped(path, MAX_BYTES, "photo").map_err(|e| e.to_string())?;
    crate::vision::decode_with(&bytes, drop).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(format!("{:x}", Sha256::digest(&bytes)))
}
