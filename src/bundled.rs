//! The demo catalogue and the trained model that ship with lookbook, and where a binary finds
//! them. The repository's `demo/` and `models/` are the source; the first run (or `lookbook
//! demo`) copies them into the user's data folder, so a binary from `cargo install` keeps working
//! from any directory after the source tree moves or goes away.

use std::path::{Path, PathBuf};

use crate::paths::data_dir;
pub use crate::paths::{SOURCE_ENV, source_dir};
use crate::vision::weights;
use crate::{Error, Result};

/// Written last into an installed demo folder, so a copy cut short is never taken for a demo.
const COMPLETE: &str = ".complete";

/// The installed demo folder (`<data dir>/demo`), when it is complete.
pub fn installed_demo() -> Option<PathBuf> {
    let d = data_dir()?.join("demo");
    d.join(COMPLETE).is_file().then_some(d)
}

/// What [`install`] did.
#[derive(Debug, Clone)]
pub struct Installed {
    /// The demo catalogue folder (styles.csv and images/).
    pub demo: PathBuf,
    /// The shipped model file.
    pub model: PathBuf,
    /// Whether anything was copied (false: it was all there already).
    pub copied: bool,
}

/// Copies the demo and the shipped model from `source` (default [`source_dir`]) into the data
/// folder, unless an identical copy is there. Each copy lands under a temporary name first.
pub fn install(source: Option<&Path>) -> Result<Installed> {
    let source = match source {
        Some(s) => s.to_path_buf(),
        None => source_dir().ok_or_else(|| {
            Error::NotFound(format!(
                "the bundled demo is not installed and the source tree this lookbook was built from ({}) is gone; \
                 run `lookbook demo --from PATH-TO-A-LOOKBOOK-CHECKOUT`",
                env!("CARGO_MANIFEST_DIR")
            ))
        })?,
    };
    let data = data_dir()
        .ok_or_else(|| Error::Invalid("no home directory (HOME or XDG_DATA_HOME) to install the demo into".into()))?;
    let mut copied = false;

    let model_src = source.join("models").join(weights::FILE_NAMES[0]);
    let model = data.join("models").join(weights::FILE_NAMES[0]);
    let same_model = model.is_file()
        && std::fs::metadata(&model).map(|m| m.len()).ok() == std::fs::metadata(&model_src).map(|m| m.len()).ok()
        && weights::sha256_file(&model)? == weights::sha256_file(&model_src)?;
    if !same_model {
        copy_file(&model_src, &model)?;
        copied = true;
    }

    let demo = data.join("demo");
    let demo_src = source.join("demo");
    let stamp = std::fs::read_to_string(demo.join(COMPLETE)).unwrap_or_default();
    let wanted = demo_stamp(&demo_src)?;
    if stamp != wanted {
        let tmp = data.join(".demo.partial");
        let _ = std::fs::remove_dir_all(&tmp);
        copy_dir(&demo_src, &tmp)?;
        std::fs::write(tmp.join(COMPLETE), &wanted).map_err(|e| Error::io(&tmp, e))?;
        let _ = std::fs::remove_dir_all(&demo);
        std::fs::rename(&tmp, &demo).map_err(|e| Error::io(&demo, e))?;
        copied = true;
    }
    Ok(Installed { demo, model, copied })
}

/// The demo folder to import from: the installed copy, installing it first when needed.
pub fn demo_dir() -> Result<PathBuf> {
    match (installed_demo(), source_dir()) {
        (Some(d), None) => Ok(d),
        _ => Ok(install(None)?.demo),
    }
}

/// The demo shop's history of purchases (H&M's shape), beside it its shoppers.
pub const HISTORY: &str = "shoppers/transactions.csv";
/// The demo shoppers' age and gender.
pub const SHOPPERS: &str = "shoppers/customers.csv";

/// A cheap fingerprint of a demo folder: its CSV's size and number of photos.
fn demo_stamp(src: &Path) -> Result<String> {
    let csv = std::fs::metadata(src.join("styles.csv"))
        .map_err(|e| Error::io(src.join("styles.csv"), e))?
        .len();
    let photos = std::fs::read_dir(src.join("images"))
        .map_err(|e| Error::io(src.join("images"), e))?
        .count();
    // The shop history came later (issue 35): an older installed copy without it is replaced.
    let history = std::fs::metadata(src.join(HISTORY)).map_or(0, |m| m.len());
    Ok(format!(
        "styles.csv {csv} bytes, {photos} photos, history {history} bytes\n"
    ))
}

fn copy_file(from: &Path, to: &Path) -> Result<()> {
    let dir = to.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let tmp = to.with_extension("partial");
    std::fs::copy(from, &tmp).map_err(|e| Error::io(from, e))?;
    std::fs::rename(&tmp, to).map_err(|e| Error::io(to, e))
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).map_err(|e| Error::io(to, e))?;
    for entry in std::fs::read_dir(from).map_err(|e| Error::io(from, e))? {
        let entry = entry.map_err(|e| Error::io(from, e))?;
        let kind = entry.file_type().map_err(|e| Error::io(entry.path(), e))?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target).map_err(|e| Error::io(entry.path(), e))?;
        }
    }
    Ok(())
}
