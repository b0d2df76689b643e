//! Where lookbook keeps things outside a catalogue: the user's data folder (the installed demo
//! and model, packed networks, the weights' checksum cache) and the source tree the binary was
//! built from (the repository's `demo/` and `models/`, while it is there). Everything that needs
//! one of these folders asks here, so no two modules each know the other's paths.

use std::path::PathBuf;

/// Overrides where the bundled copies are read from (default: the source tree the binary was
/// built from).
pub const SOURCE_ENV: &str = "LOOKBOOK_BUNDLED_DIR";

/// The user's data folder for lookbook (`$XDG_DATA_HOME/lookbook` or `~/.local/share/lookbook`).
pub fn data_dir() -> Option<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(x).join("lookbook"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share/lookbook"))
}

/// The folder holding the repository's `demo/` and `models/`, if it is still there.
pub fn source_dir() -> Option<PathBuf> {
    let dir = std::env::var_os(SOURCE_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    dir.join("demo").join("styles.csv").is_file().then_some(dir)
}
