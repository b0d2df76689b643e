//! Finding, hashing and reading weights files (safetensors with torchvision tensor names).

use candle_core::{Device, Tensor};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// File names looked for in each models folder, best first.
pub const FILE_NAMES: [&str; 2] = ["lookbook-fashion-resnet50.safetensors", "resnet50.safetensors"];

/// Environment variable naming a weights file.
pub const ENV_VAR: &str = "LOOKBOOK_WEIGHTS";

/// The folders searched for weights, in order, after `--weights` and `LOOKBOOK_WEIGHTS`.
pub fn search_dirs(db_dir: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![db_dir.join("models")];
    if let Some(d) = crate::paths::data_dir() {
        dirs.push(d.join("models"));
    }
    // The repository this binary was built from ships the trained model (while it is there).
    if let Some(src) = crate::paths::source_dir() {
        dirs.push(src.join("models"));
    }
    dirs
}

/// Finds the weights file: `explicit`, then `LOOKBOOK_WEIGHTS`, then [`search_dirs`].
pub fn locate(explicit: Option<&Path>, db_dir: &Path) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(Error::Weights {
                path: p.to_path_buf(),
                message: "--weights: no such file".into(),
            })
        };
    }
    if let Some(p) = std::env::var_os(ENV_VAR).filter(|v| !v.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(Error::Weights {
                path: p,
                message: format!("{ENV_VAR} names a file that does not exist"),
            })
        };
    }
    let mut searched = Vec::new();
    for dir in search_dirs(db_dir) {
        for name in FILE_NAMES {
            let p = dir.join(name);
            if p.is_file() {
                return Ok(p);
            }
            searched.push(p);
        }
    }
    Err(Error::WeightsNotFound { searched })
}

/// SHA-256 of a weights file, hex, remembered by the file's identity (path, size, inode and
/// modification time) in `sha256.cache` in the data folder: hashing 100 MB cost a one-shot
/// `similar --image` more than its search. A file changed in any of those is hashed again;
/// without a data folder, or if the cache cannot be written, every call hashes.
pub fn sha256_weights(path: &Path) -> Result<String> {
    sha256_remembered(path, crate::paths::data_dir().map(|d| d.join("sha256.cache")))
}

/// [`sha256_weights`] with the cache file named.
fn sha256_remembered(path: &Path, cache: Option<PathBuf>) -> Result<String> {
    let Some(key) = identity(path) else {
        return sha256_file(path);
    };
    let known = cache
        .as_deref()
        .and_then(|c| std::fs::read_to_string(c).ok())
        .unwrap_or_default();
    if let Some(hash) = known
        .lines()
        .find_map(|l| l.strip_prefix(&key).and_then(|r| r.strip_prefix('\t')))
        && hash.len() == 64
        && hash.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Ok(hash.to_string());
    }
    let hash = sha256_file(path)?;
    if let Some(cache) = cache {
        // Keep the other files' lines (at most a few dozen), this one's replaced.
        let mut lines: Vec<&str> = known
            .lines()
            .filter(|l| !l.starts_with(&key) && !l.is_empty())
            .rev()
            .take(63)
            .collect();
        lines.reverse();
        let line = format!("{key}\t{hash}");
        lines.push(&line);
        let tmp = cache.with_extension(format!("part{}", std::process::id()));
        let written = cache.parent().map(std::fs::create_dir_all).transpose().is_ok()
            && std::fs::write(&tmp, lines.join("\n") + "\n").is_ok()
            && std::fs::rename(&tmp, &cache).is_ok();
        if !written {
            let _ = std::fs::remove_file(&tmp);
        }
    }
    Ok(hash)
}

/// What says a file is the same file: its absolute path, size, inode and modification time
/// (to the nanosecond), tab-separated; `None` when any cannot be read.
fn identity(path: &Path) -> Option<String> {
    let abs = path.canonicalize().ok()?;
    let meta = std::fs::metadata(&abs).ok()?;
    let modified = meta.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0u64;
    let path = abs.to_str().filter(|p| !p.contains(['\t', '\n']))?;
    Some(format!("{path}\t{}\t{inode}\t{}", meta.len(), modified.as_nanos()))
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    crate::files::check_regular(path, crate::files::MAX_WEIGHTS_BYTES, "weights")?;
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("{:x}", h.finalize()))
}

/// A weights file mapped read-only, after checking it is a regular file of a sane size.
fn map_weights(path: &Path) -> Result<memmap2::Mmap> {
    crate::files::check_regular(path, crate::files::MAX_WEIGHTS_BYTES, "weights")?;
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    // SAFETY: the map is read-only and its users copy what they keep out of it before it is
    // dropped. A file truncated by another process while mapped can raise SIGBUS, which is the
    // accepted risk of mmap for multi-hundred-megabyte weights.
    unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))
}

/// Tensors (as f32 on the CPU) and the free-form metadata of a safetensors file.
pub struct WeightFile {
    /// Where it came from, for error messages.
    pub path: PathBuf,
    /// Tensors by name.
    pub tensors: HashMap<String, Tensor>,
    /// The `__metadata__` table.
    pub metadata: HashMap<String, String>,
}

impl WeightFile {
    /// Reads every tensor of a safetensors file, converting f16/bf16 to f32.
    pub fn read(path: &Path) -> Result<Self> {
        let mmap = map_weights(path)?;
        let bad = |message: String| Error::Weights {
            path: path.to_path_buf(),
            message,
        };
        let st =
            safetensors::SafeTensors::deserialize(&mmap).map_err(|e| bad(format!("not a safetensors file: {e}")))?;
        let metadata = Self::metadata_in(path, &mmap)?;
        let mut tensors = HashMap::new();
        for (name, view) in st.tensors() {
            // Straight into f32 (one pass, vectorised for f16 where the CPU has F16C): going
            // through candle's `to_dtype` and back out to check the values copied every
            // tensor three times, most of a one-shot `similar --image`'s model load.
            let data = view.data();
            let values: Vec<f32> = match view.dtype() {
                safetensors::Dtype::F32 => data
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
                safetensors::Dtype::F16 => {
                    use half::slice::HalfFloatSliceExt;
                    let halves: Vec<half::f16> = data
                        .chunks_exact(2)
                        .map(|b| half::f16::from_le_bytes([b[0], b[1]]))
                        .collect();
                    let mut out = vec![0.0f32; halves.len()];
                    halves.convert_to_f32_slice(&mut out);
                    out
                }
                safetensors::Dtype::BF16 => data
                    .chunks_exact(2)
                    .map(|b| f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16))
                    .collect(),
                safetensors::Dtype::I64 if name.ends_with("num_batches_tracked") => continue,
                other => {
                    return Err(bad(format!(
                        "tensor {name} has dtype {other:?}; expected f32, f16 or bf16"
                    )));
                }
            };
            // A NaN or infinity poisons every vector it touches and turns rankings empty.
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                return Err(bad(format!(
                    "tensor {name} holds {} at index {i}; the file is damaged",
                    values[i]
                )));
            }
            let t =
                Tensor::from_vec(values, view.shape(), &Device::Cpu).map_err(|e| bad(format!("tensor {name}: {e}")))?;
            tensors.insert(name, t);
        }
        Ok(WeightFile {
            path: path.to_path_buf(),
            tensors,
            metadata,
        })
    }

    /// The `__metadata__` table alone, read from the header without touching a tensor.
    pub fn metadata_of(path: &Path) -> Result<HashMap<String, String>> {
        Self::metadata_in(path, &map_weights(path)?)
    }

    fn metadata_in(path: &Path, bytes: &[u8]) -> Result<HashMap<String, String>> {
        let (_, meta) = safetensors::SafeTensors::read_metadata(bytes).map_err(|e| Error::Weights {
            path: path.to_path_buf(),
            message: format!("not a safetensors file: {e}"),
        })?;
        Ok(meta.metadata().clone().unwrap_or_default())
    }

    /// A tensor with the expected shape, or an error naming it and both shapes.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let t = self.tensors.get(name).ok_or_else(|| Error::Weights {
            path: self.path.clone(),
            message: format!("missing tensor {name} (expected shape {shape:?})"),
        })?;
        if t.dims() != shape {
            return Err(Error::Weights {
                path: self.path.clone(),
                message: format!("tensor {name} has shape {:?}, expected {shape:?}", t.dims()),
            });
        }
        Ok(t.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_and_env_paths_must_exist() {
        let err = locate(Some(Path::new("/no/such.safetensors")), Path::new("."))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("/no/such.safetensors"), "{err}");
    }

    #[test]
    fn a_weights_hash_is_remembered_until_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("data/lookbook/sha256.cache");
        let sha256_weights = |p: &Path| sha256_remembered(p, Some(cache.clone()));
        let p = dir.path().join("w.safetensors");
        std::fs::write(&p, b"abc").unwrap();
        let first = sha256_weights(&p).unwrap();
        assert_eq!(first, sha256_file(&p).unwrap());
        let text = std::fs::read_to_string(&cache).unwrap();
        assert!(text.contains(&first), "{text}");
        // A remembered hash is what comes back, without reading the file.
        let key = identity(&p).unwrap();
        std::fs::write(&cache, format!("{key}\t{}\n", "0".repeat(64))).unwrap();
        assert_eq!(sha256_weights(&p).unwrap(), "0".repeat(64));
        // A changed file (size and time) is hashed again.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&p, b"abcd").unwrap();
        assert_eq!(sha256_weights(&p).unwrap(), sha256_file(&p).unwrap());
        // A damaged cache line is not believed.
        std::fs::write(&cache, format!("{}\tnot-a-hash\n", identity(&p).unwrap())).unwrap();
        assert_eq!(sha256_weights(&p).unwrap(), sha256_file(&p).unwrap());
    }

    /// Writes one tensor of `dtype` from its little-endian bytes.
    fn one_tensor(path: &Path, name: &str, dtype: safetensors::Dtype, bytes: &[u8], len: usize) {
        let view = safetensors::tensor::TensorView::new(dtype, vec![len], bytes).unwrap();
        safetensors::serialize_to_file(vec![(name.to_string(), view)], None, path).unwrap();
    }

    #[test]
    fn f32_f16_and_bf16_tensors_read_exactly_and_a_nan_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.safetensors");
        // Values every format holds exactly, signs and a tiny one included.
        let want = [1.0f32, -2.5, 0.0, 65504.0, -0.125, 6.103_515_6e-5, 3.0, -1024.0, 0.5];
        let f32_bytes: Vec<u8> = want.iter().flat_map(|v| v.to_le_bytes()).collect();
        let f16_bytes: Vec<u8> = want
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect();
        let bf16_bytes: Vec<u8> = want
            .iter()
            .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
            .collect();
        for (dtype, bytes) in [
            (safetensors::Dtype::F32, &f32_bytes),
            (safetensors::Dtype::F16, &f16_bytes),
            (safetensors::Dtype::BF16, &bf16_bytes),
        ] {
            one_tensor(&p, "conv.weight", dtype, bytes, want.len());
            let w = WeightFile::read(&p).unwrap();
            let got = w.get("conv.weight", &[want.len()]).unwrap().to_vec1::<f32>().unwrap();
            let bf16_want: Vec<f32> = want.iter().map(|v| half::bf16::from_f32(*v).to_f32()).collect();
            let expect = if dtype == safetensors::Dtype::BF16 {
                &bf16_want[..]
            } else {
                &want[..]
            };
            assert_eq!(got, expect, "{dtype:?}");
        }
        let mut bad = f16_bytes.clone();
        bad[8..10].copy_from_slice(&half::f16::NAN.to_le_bytes());
        one_tensor(&p, "layer1.0.conv2.weight", safetensors::Dtype::F16, &bad, want.len());
        let err = WeightFile::read(&p).err().unwrap().to_string();
        assert!(
            err.contains("layer1.0.conv2.weight") && err.contains("index 4"),
            "{err}"
        );
    }

    #[test]
    fn sha256_of_known_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(
            sha256_file(&p).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
