//! The folded, packed network kept in the data folder (`networks/`), so a one-shot command maps
//! it instead of converting, folding and packing 25 million weights again: that was most of a
//! `similar --image` (issue 22). One file per weights file (by SHA-256) and weight layout,
//! written to a temporary file, synced and renamed, and used only when every size in it checks
//! out; anything else is rebuilt from the weights, never an error.
//!
//! Layout: `MAGIC`, the header's length (u64, little-endian), the header (JSON), then each
//! convolution's packed weights and bias (and, on Winograd on dot products, its 16 transformed
//! bf16 matrices) at the 64-byte-aligned offsets the header names, the SHA-256 of all that, and
//! `END` as the last bytes. The checksum is verified once per file
//! ([`crate::kept`]; the note sits beside it as `*.net.ok`): damaged weights are rebuilt, never
//! used (they spread wrong vectors into the catalogue before, issue 37).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Precision;
use super::bf16::PackedBf16;
use super::cpu::Kernels;
use super::kernel::Packed;
use super::nhwc::{Conv, Net, Weights};
use super::slab::Slab;
use super::winograd::{Tiling, Winograd};
use crate::error::Result;
use crate::kept::CHECKSUM;

/// First bytes of a kept network; the last byte is the format version.
const MAGIC: &[u8; 8] = b"LBNET\0\0\x04";
/// Last bytes: a file cut short never ends with them.
const END: &[u8; 8] = b"LBNETEND";
/// Every array starts at a multiple of this (a cache line; more than any value's alignment).
const ALIGN: usize = 64;
/// Kept networks in the folder at most (each is 50-100 MB); the oldest go first.
const KEEP: usize = 4;

/// What the header says of the whole network.
#[derive(Serialize, Deserialize)]
struct Header {
    /// The weights file it was made from.
    weights_sha256: String,
    /// [`layout`]'s name.
    layout: String,
    /// The stem, then each block's `c1`, `c2`, `c3` and its downsample if any.
    convs: Vec<Entry>,
    /// Per block: whether it has a downsample.
    downs: Vec<bool>,
    /// For a network whose products were measured ([`super::tune`]): the CPU they were
    /// measured on (its CPUID brand string); another CPU measures again.
    #[serde(default)]
    measured_on: String,
}

/// One convolution's shape and where its arrays are.
#[derive(Serialize, Deserialize, Clone)]
struct Entry {
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    pad: usize,
    bf16: bool,
    /// Rows of the packed weights: `k*k*cin` for f32 panels, that padded to 32 for bf16 ones.
    rows: usize,
    /// Whether the weights are bf16 panels (else f32).
    bf16_panels: bool,
    /// Byte offset and length (in values) of the weights.
    at: usize,
    len: usize,
    /// Byte offset of the `cout` f32 biases.
    bias_at: usize,
    /// Whether a batch runs it through Winograd on dot products ([`Conv::dot_winograd`]).
    #[serde(default)]
    dot_winograd: bool,
    /// With `dot_winograd`: byte offset of its 16 transformed bf16 matrices (`cin x cout`
    /// each, one after another), mapped so a process does not build them on its first batch
    /// (29 MB of fresh pages at the measured 112x84 network, 4-6% of embedding 200 photos on a
    /// Zen 4).
    #[serde(default)]
    winograd_at: Option<usize>,
}

/// How the weights are laid out for `precision` on `kernels`: what [`Conv::into_bf16`] makes,
/// or, for a network whose products were measured at an input size, each convolution's
/// faster one (named with the size: another size measures again).
fn layout(precision: Precision, kernels: Kernels, measured_at: Option<(usize, usize)>) -> String {
    match (precision, measured_at) {
        (Precision::F32, _) => "f32".into(),
        (Precision::Bf16, Some((h, w))) if kernels >= Kernels::Avx512Bf16 => format!("bf16-measured-{h}x{w}"),
        (Precision::Bf16, _) if kernels >= Kernels::Avx512Bf16 => "bf16".into(),
        (Precision::Bf16, _) => "bf16-in-f32".into(),
    }
}

/// The `measured_on` a header needs: the CPU's brand for a measured network, else empty.
fn measured_on(measured_at: Option<(usize, usize)>) -> String {
    measured_at.map(|_| super::cpu::brand()).unwrap_or_default()
}

/// The folder of kept networks (`networks/` in the data folder), if there is a data folder.
pub fn dir() -> Option<PathBuf> {
    crate::paths::data_dir().map(|d| d.join("networks"))
}

/// The kept network for these weights, precision and kernels (and, for a network whose
/// products `build` measures, the input size it measured at, on this CPU) if `dir` has a sound
/// one, else `build`'s, which is then kept there (best effort: a read-only folder costs speed,
/// not answers).
pub fn load_or_build(
    dir: Option<&Path>,
    sha256: &str,
    precision: Precision,
    kernels: Kernels,
    measured_at: Option<(usize, usize)>,
    build: impl FnOnce() -> Result<Net>,
) -> Result<Net> {
    let Some(dir) = dir else { return build() };
    let kernels = kernels.min(Kernels::detected());
    let kind = Kind {
        sha256,
        layout: layout(precision, kernels, measured_at),
        measured_on: measured_on(measured_at),
    };
    let path = dir.join(format!("{sha256}-{}.net", kind.layout));
    if let Some(net) = open(&path, &kind, kernels) {
        return Ok(net);
    }
    let net = build()?;
    if save(&path, &kind, &net).is_ok() {
        prune(dir, &path);
    }
    Ok(net)
}

/// What a kept network must have been made from and for.
struct Kind<'a> {
    sha256: &'a str,
    layout: String,
    measured_on: String,
}

/// The network in `path`, or `None` when it is missing, cut short, for other weights or
/// another layout, or its shapes are not a ResNet50's.
fn open(path: &Path, kind: &Kind, kernels: Kernels) -> Option<Net> {
    let file = std::fs::File::open(path).ok()?;
    // SAFETY: read-only. lookbook replaces these files by rename, never in place, so a map
    // keeps its own copy; another program truncating one while mapped could raise SIGBUS, the
    // accepted risk of mapping, as for the weights themselves.
    let map = Arc::new(unsafe { memmap2::Mmap::map(&file) }.ok()?);
    if map.len() < 24 + CHECKSUM || !map.starts_with(MAGIC) || !map.ends_with(END) {
        return None;
    }
    let len = usize::try_from(u64::from_le_bytes(map[8..16].try_into().ok()?)).ok()?;
    let header: Header = serde_json::from_slice(map.get(16..16usize.checked_add(len)?)?).ok()?;
    if header.weights_sha256 != kind.sha256 || header.layout != kind.layout || header.measured_on != kind.measured_on {
        return None;
    }
    let (body, sum) = map[..map.len() - END.len()].split_at(map.len() - END.len() - CHECKSUM);
    if !crate::kept::verified(path, &note_path(path), body, sum) {
        return None;
    }
    let convs = header
        .convs
        .iter()
        .map(|e| conv(&map, e, kernels))
        .collect::<Option<Vec<_>>>()?;
    let net = Net::from_convs(convs, &header.downs)?;
    shapes_chain(&net).then_some(net)
}

/// One convolution from its entry, or `None` when its arrays do not fit.
fn conv(map: &Arc<memmap2::Mmap>, e: &Entry, kernels: Kernels) -> Option<Conv> {
    let taps = e.k.checked_mul(e.k)?.checked_mul(e.cin)?;
    if e.cin == 0 || e.cout == 0 || e.k == 0 || e.stride == 0 || e.pad >= e.k {
        return None;
    }
    let w = if e.bf16_panels {
        if e.rows != taps.next_multiple_of(32) || kernels < Kernels::Avx512Bf16 {
            return None;
        }
        Weights::Bf16(PackedBf16::from_slab(Slab::mapped(map, e.at, e.len)?, e.rows, e.cout)?)
    } else {
        if e.rows != taps {
            return None;
        }
        Weights::F32(Packed::from_slab(Slab::mapped(map, e.at, e.len)?, e.rows, e.cout)?)
    };
    let bias = Slab::<f32>::mapped(map, e.bias_at, e.cout)?.to_vec();
    Some(Conv {
        w,
        bf16: e.bf16,
        kernels,
        bias,
        cin: e.cin,
        cout: e.cout,
        k: e.k,
        stride: e.stride,
        pad: e.pad,
        wino: Default::default(),
        dot_winograd: false,
    })
    // A convolution the file puts on Winograd must be one that runs there.
    .and_then(|c| match (e.dot_winograd, e.winograd_at) {
        (true, Some(at)) => {
            let c = c.into_dot_winograd();
            let each = e
                .cout
                .div_ceil(super::bf16::NR)
                .checked_mul(e.cin)?
                .checked_mul(super::bf16::NR)?;
            let u = (0..Tiling::F2.xi())
                .map(|i| {
                    let start = each.checked_mul(2 * i)?.checked_add(at)?;
                    PackedBf16::from_slab(Slab::mapped(map, start, each)?, e.cin, e.cout)
                })
                .collect::<Option<Vec<_>>>()?;
            let wg = Winograd::from_bf16_matrices(u, e.cin, e.cout)?;
            c.dot_winograd.then(|| c.with_dot_winograd_weights(wg))
        }
        // Every file of this version keeps them.
        (true, None) => None,
        (false, _) => Some(c),
    })
}

/// Whether each layer's input is the last one's output, from 3 channels to 2048: a file that
/// says otherwise would fail in the middle of a forward pass, not here.
fn shapes_chain(net: &Net) -> bool {
    let mut c = net.stem.cout;
    let mut ok = net.stem.cin == 3;
    for b in &net.blocks {
        ok &= b.c1.cin == c && b.c2.cin == b.c1.cout && b.c3.cin == b.c2.cout;
        ok &= b.c1.stride == 1 && b.c3.stride == 1;
        ok &= match &b.down {
            Some(d) => d.cin == c && d.cout == b.c3.cout && d.stride == b.c2.stride && d.k == 1,
            None => b.c3.cout == c && b.c2.stride == 1,
        };
        c = b.c3.cout;
    }
    ok && c == super::FEATURE_DIM
}

/// The transformed weights a kept network stores for `c`, if it runs Winograd on dot products.
fn winograd(c: &Conv) -> Option<&[PackedBf16]> {
    c.dot_winograd_weights().and_then(Winograd::bf16_matrices)
}

/// Writes `net` to `path` (temporary file, sync, rename).
fn save(path: &Path, kind: &Kind, net: &Net) -> std::io::Result<()> {
    let all = net.convs();
    // Offsets are relative to the first array until the header's length is known.
    let mut at = 0usize;
    let mut place = |bytes: usize| {
        let start = at;
        at = (at + bytes).next_multiple_of(ALIGN);
        start
    };
    let mut convs: Vec<Entry> = all
        .iter()
        .map(|c| {
            let (rows, bf16_panels, len, bytes) = match &c.w {
                Weights::F32(w) => (w.k, false, w.values().len(), w.values().len() * 4),
                Weights::Bf16(w) => (w.kp, true, w.values().len(), w.values().len() * 2),
            };
            Entry {
                cin: c.cin,
                cout: c.cout,
                k: c.k,
                stride: c.stride,
                pad: c.pad,
                bf16: c.bf16,
                rows,
                bf16_panels,
                at: place(bytes),
                len,
                bias_at: place(c.bias.len() * 4),
                dot_winograd: c.dot_winograd,
                winograd_at: winograd(c).map(|u| place(u.iter().map(|m| m.values().len() * 2).sum())),
            }
        })
        .collect();
    // `open` refuses a convolution on Winograd on dot products without its matrices: a file
    // with one would be rebuilt, and measured again, by every process.
    if convs.iter().any(|e| e.dot_winograd && e.winograd_at.is_none()) {
        return Err(std::io::Error::other(
            "a Winograd convolution without its transformed weights",
        ));
    }
    let header = |convs: &[Entry]| {
        serde_json::to_vec(&Header {
            weights_sha256: kind.sha256.into(),
            layout: kind.layout.clone(),
            convs: convs.to_vec(),
            downs: net.downs(),
            measured_on: kind.measured_on.clone(),
        })
    };
    // The offsets' digits change the header's length: leave room for them to grow.
    let start = (16 + header(&convs)?.len() + 24 * convs.len()).next_multiple_of(ALIGN);
    for e in &mut convs {
        e.at += start;
        e.bias_at += start;
        e.winograd_at = e.winograd_at.map(|at| at + start);
    }
    let head = header(&convs)?;
    if 16 + head.len() > start {
        return Err(std::io::Error::other("network header outgrew its room"));
    }
    let dir = path.parent().ok_or_else(|| std::io::Error::other("no folder"))?;
    std::fs::create_dir_all(dir)?;
    // Unique per call, not only per process: two threads of one `serve` may pack the same
    // weights at once, and one must never truncate the file the other is writing.
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("part{}-{call}", std::process::id()));
    let mut hash = crate::kept::Hasher::default();
    let written = (|| {
        use std::io::Write;
        let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        let mut pos = 0usize;
        let mut put = |out: &mut std::io::BufWriter<std::fs::File>, at: usize, bytes: &[u8]| {
            let pad = vec![0u8; at - pos];
            out.write_all(&pad)?;
            out.write_all(bytes)?;
            hash.update(&pad);
            hash.update(bytes);
            pos = at + bytes.len();
            std::io::Result::Ok(())
        };
        let mut first = MAGIC.to_vec();
        first.extend((head.len() as u64).to_le_bytes());
        first.extend(&head);
        put(&mut out, 0, &first)?;
        for (c, e) in all.iter().zip(&convs) {
            match &c.w {
                Weights::F32(w) => put(&mut out, e.at, bytemuck::cast_slice(w.values()))?,
                Weights::Bf16(w) => put(&mut out, e.at, bytemuck::cast_slice(w.values()))?,
            }
            put(&mut out, e.bias_at, bytemuck::cast_slice(&c.bias))?;
            if let (Some(u), Some(mut at)) = (winograd(c), e.winograd_at) {
                for m in u {
                    put(&mut out, at, bytemuck::cast_slice(m.values()))?;
                    at += m.values().len() * 2;
                }
            }
        }
        let sum = std::mem::take(&mut hash).finish();
        out.write_all(&sum)?;
        out.write_all(END)?;
        // Synced before the rename, so a crash never leaves a full-length file of zeros.
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        Ok(sum)
    })();
    match written.and_then(|sum| std::fs::rename(&tmp, path).map(|()| sum)) {
        Ok(sum) => {
            crate::kept::note_verified(path, &note_path(path), &sum);
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Where the note that a kept network was verified sits.
fn note_path(path: &Path) -> PathBuf {
    path.with_extension("net.ok")
}

/// Removes all but the [`KEEP`] newest kept networks in `dir` (never `keep`) with their notes,
/// and what a process that died while writing left there over an hour ago.
fn prune(dir: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let dated: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p != keep)
        .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
        .collect();
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let kind = |p: &Path, k: &str| p.extension().is_some_and(|x| x.to_string_lossy().starts_with(k));
    for (t, p) in &dated {
        if kind(p, "part") && *t < hour_ago {
            let _ = std::fs::remove_file(p);
        }
    }
    let mut nets: Vec<_> = dated.into_iter().filter(|(_, p)| kind(p, "net")).collect();
    nets.sort();
    let extra = (nets.len() + 1).saturating_sub(KEEP);
    for (_, p) in nets.into_iter().take(extra) {
        let _ = std::fs::remove_file(note_path(&p));
        let _ = std::fs::remove_file(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::nhwc::Maps;
    use crate::vision::{Pooling, ResNet50};

    /// Random weights in `dir`, and their hash.
    fn weights(dir: &Path) -> (PathBuf, String) {
        let path = dir.join("w.safetensors");
        crate::vision::write_random_weights(&path, 5, 10, Default::default()).unwrap();
        let sha = crate::vision::weights::sha256_file(&path).unwrap();
        (path, sha)
    }

    /// What a kept network for these must have been made from and for.
    fn kind<'a>(sha: &'a str, precision: Precision, kernels: Kernels, measured_at: Option<(usize, usize)>) -> Kind<'a> {
        Kind {
            sha256: sha,
            layout: layout(precision, kernels, measured_at),
            measured_on: measured_on(measured_at),
        }
    }

    fn photo() -> Maps {
        let (h, w) = (40, 32);
        let img: Vec<f32> = (0..3 * h * w).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect();
        Maps::from_chw(&[img], h, w).unwrap()
    }

    /// Two photos: a batch, which runs the 3x3 convolutions through Winograd where chosen.
    fn photos() -> Maps {
        let (h, w) = (40, 32);
        let img = |k: usize| -> Vec<f32> {
            (0..3 * h * w)
                .map(|i| ((i * 37 % (101 + k)) as f32 / 50.0) - 1.0)
                .collect()
        };
        Maps::from_chw(&[img(0), img(6)], h, w).unwrap()
    }

    #[test]
    fn a_kept_network_answers_bit_for_bit_as_the_built_one_on_every_level() {
        let dir = tempfile::tempdir().unwrap();
        let (path, sha) = weights(dir.path());
        let nets = dir.path().join("networks");
        let reference = ResNet50::load(&path).unwrap();
        let mut seen = std::collections::HashSet::new();
        for kernels in Kernels::here() {
            for precision in [Precision::F32, Precision::Bf16] {
                let built = reference.to_nhwc(precision, kernels).unwrap();
                let first = load_or_build(Some(&nets), &sha, precision, kernels, None, || {
                    reference.to_nhwc(precision, kernels)
                })
                .unwrap();
                let kept = load_or_build(Some(&nets), &sha, precision, kernels, None, || {
                    panic!("{kernels:?} {precision:?}: the kept network was not used")
                })
                .unwrap();
                let want = built.features(&photo(), Pooling::Avg);
                assert_eq!(
                    first.features(&photo(), Pooling::Avg),
                    want,
                    "{kernels:?} {precision:?}"
                );
                assert_eq!(kept.features(&photo(), Pooling::Avg), want, "{kernels:?} {precision:?}");
                let mapped = |c: &Conv| match &c.w {
                    Weights::F32(w) => w.is_mapped(),
                    Weights::Bf16(w) => w.is_mapped(),
                };
                assert!(mapped(&kept.stem) && kept.blocks.iter().all(|b| mapped(&b.c2)));
                if seen.insert(layout(precision, kernels, None)) {
                    assert!(!mapped(&first.stem), "the first load of a layout packs");
                }
            }
        }
        // Every layout this machine makes is one file, and none is left half-written.
        // (Each with the note that it was verified beside it.)
        let all: Vec<String> = std::fs::read_dir(&nets)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let names: Vec<&String> = all.iter().filter(|n| !n.ends_with(".net.ok")).collect();
        assert!(
            names.iter().all(|n| n.ends_with(".net") && n.starts_with(&sha)),
            "{names:?}"
        );
        assert!(names.len() <= 3, "{names:?}");
        assert!(names.iter().all(|n| all.contains(&format!("{n}.ok"))), "{all:?}");
    }

    /// Random weights in a fresh folder, their hash, their network and its features of
    /// [`photo`] in f32 on the portable kernels.
    fn f32_on_portable() -> (tempfile::TempDir, String, ResNet50, Vec<Vec<f32>>) {
        let dir = tempfile::tempdir().unwrap();
        let (path, sha) = weights(dir.path());
        let reference = ResNet50::load(&path).unwrap();
        let want = reference
            .to_nhwc(Precision::F32, Kernels::Portable)
            .unwrap()
            .features(&photo(), Pooling::Avg);
        (dir, sha, reference, want)
    }

    #[test]
    fn a_damaged_or_foreign_kept_network_is_rebuilt_not_used() {
        let (dir, sha, reference, want) = f32_on_portable();
        let nets = dir.path().join("networks");
        let (precision, kernels) = (Precision::F32, Kernels::Portable);
        load_or_build(Some(&nets), &sha, precision, kernels, None, || {
            reference.to_nhwc(precision, kernels)
        })
        .unwrap();
        let file = nets.join(format!("{sha}-f32.net"));
        let good = std::fs::read(&file).unwrap();
        let header_end = 16 + u64::from_le_bytes(good[8..16].try_into().unwrap()) as usize;
        let header: serde_json::Value = serde_json::from_slice(&good[16..header_end]).unwrap();
        // The same file with its header edited (the arrays keep their places).
        let edited = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut h = header.clone();
            edit(&mut h);
            let h = serde_json::to_vec(&h).unwrap();
            let mut b = good.clone();
            b[8..16].copy_from_slice(&(h.len() as u64).to_le_bytes());
            b[16..16 + h.len()].copy_from_slice(&h);
            b
        };
        let len = good.len() as u64;
        let damaged: Vec<(&str, Vec<u8>)> = vec![
            ("cut short", good[..good.len() / 2].to_vec()),
            ("no end mark", good[..good.len() - 1].to_vec()),
            ("other magic", [b"LBNET\0\0\x09", &good[8..]].concat()),
            (
                "weights overwritten, every size intact",
                [
                    &good[..good.len() / 2],
                    &vec![0xFF; 4096][..],
                    &good[good.len() / 2 + 4096..],
                ]
                .concat(),
            ),
            (
                "huge header length",
                [&good[..8], &u64::MAX.to_le_bytes()[..], &good[16..]].concat(),
            ),
            ("not JSON", edited(&|h| *h = serde_json::json!("{"))),
            (
                "other weights",
                edited(&|h| h["weights_sha256"] = "0".repeat(64).into()),
            ),
            (
                "a block without its downsample",
                edited(&|h| h["downs"][0] = false.into()),
            ),
            ("a kernel of the wrong size", edited(&|h| h["convs"][0]["k"] = 5.into())),
            (
                "a misaligned array",
                edited(&|h| h["convs"][0]["at"] = (h["convs"][0]["at"].as_u64().unwrap() + 2).into()),
            ),
            (
                "an array past the end",
                edited(&|h| h["convs"][52]["bias_at"] = (len - 64).into()),
            ),
            ("too few values", edited(&|h| h["convs"][3]["len"] = 100.into())),
        ];
        for (what, bytes) in damaged {
            std::fs::write(&file, &bytes).unwrap();
            assert!(
                open(&file, &kind(&sha, precision, kernels, None), kernels).is_none(),
                "{what}: used"
            );
            let net = load_or_build(Some(&nets), &sha, precision, kernels, None, || {
                reference.to_nhwc(precision, kernels)
            })
            .unwrap();
            assert_eq!(net.features(&photo(), Pooling::Avg), want, "{what}");
            assert_eq!(std::fs::read(&file).unwrap(), good, "{what}: not rewritten");
        }
        // Another precision or layout is another file, never this one read wrongly.
        assert!(open(&file, &kind(&sha, Precision::Bf16, kernels, None), kernels).is_none());
    }

    #[test]
    fn a_measured_network_is_kept_with_its_choices_for_its_size_and_cpu_only() {
        let kernels = Kernels::Avx512Bf16;
        if !kernels.here_or_skip("a_measured_network_is_kept_with_its_choices_for_its_size_and_cpu_only") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let (path, sha) = weights(dir.path());
        let nets = dir.path().join("networks");
        let reference = ResNet50::load(&path).unwrap();
        // A fixed choice (every third convolution on the f32 kernel, every 3x3 stride-1 one
        // otherwise through Winograd on dot products), so the kept network can be compared bit
        // for bit with a fresh one.
        let mixed = || {
            use crate::vision::tune::{Candidates, Timing, choose};
            let ms = std::time::Duration::from_millis;
            let all = Candidates {
                dot: reference.to_nhwc(Precision::Bf16, kernels)?,
                winograd: reference.to_nhwc(Precision::Bf16, kernels)?.on_dot_winograd()?,
                emulated: reference.to_nhwc_emulated(kernels)?,
            };
            let timings: Vec<_> = (all.winograd.convs().iter().enumerate())
                .map(|(i, c)| Timing {
                    shape: String::new(),
                    macs: 1,
                    dot: ms(if i % 3 == 0 { 2 } else { 1 }),
                    dot_winograd: c.dot_winograd.then_some(ms(if i % 3 == 0 { 3 } else { 0 })),
                    emulated: ms(if i % 3 == 0 { 1 } else { 2 }),
                })
                .collect();
            choose(all, &timings)
        };
        let plan = |net: &Net| {
            net.convs()
                .iter()
                .map(|c| (c.bf16_products(), c.dot_winograd))
                .collect::<Vec<_>>()
        };
        let at = Some((40, 32));
        let first = load_or_build(Some(&nets), &sha, Precision::Bf16, kernels, at, mixed).unwrap();
        let kept = load_or_build(Some(&nets), &sha, Precision::Bf16, kernels, at, || {
            panic!("the kept measured network was not used")
        })
        .unwrap();
        let want = mixed().unwrap();
        assert_eq!(plan(&kept), plan(&want));
        for kind in [(false, false), (true, false), (true, true)] {
            assert!(plan(&want).contains(&kind), "{kind:?} in the plan");
        }
        // Winograd's transformed weights are kept too: the kept network maps them, and a batch
        // through them gives the built network's values bit for bit.
        let on_winograd = |net: &Net| net.convs().iter().filter(|c| c.dot_winograd).count();
        assert!(on_winograd(&kept) > 0);
        for c in kept.convs().iter().filter(|c| c.dot_winograd) {
            assert!(
                c.wino
                    .get()
                    .is_some_and(|w| w.as_ref().is_some_and(Winograd::is_mapped))
            );
        }
        for x in [photo(), photos()] {
            let want = want.features(&x, Pooling::Avg);
            assert_eq!(kept.features(&x, Pooling::Avg), want);
            assert_eq!(first.features(&x, Pooling::Avg), want);
        }
        // Another input size, or the unmeasured layout, is another file.
        let file = nets.join(format!("{sha}-bf16-measured-40x32.net"));
        assert!(file.exists());
        assert!(open(&file, &kind(&sha, Precision::Bf16, kernels, Some((48, 40))), kernels).is_none());
        assert!(open(&file, &kind(&sha, Precision::Bf16, kernels, None), kernels).is_none());
        // Measured on another CPU: measured again here, not used.
        let good = std::fs::read(&file).unwrap();
        let len = u64::from_le_bytes(good[8..16].try_into().unwrap()) as usize;
        let head: serde_json::Value = serde_json::from_slice(&good[16..16 + len]).unwrap();
        assert_eq!(head["measured_on"], crate::vision::cpu::brand().as_str());
        let elsewhere = Kind {
            measured_on: "Another CPU".into(),
            ..kind(&sha, Precision::Bf16, kernels, at)
        };
        assert!(open(&file, &elsewhere, kernels).is_none());
        assert!(open(&file, &kind(&sha, Precision::Bf16, kernels, at), kernels).is_some());
        // A sound file (checksum and all) whose Winograd convolution lacks its matrices is
        // refused, not run by building them: the same file re-sealed with them opens.
        let resealed = |drop_matrices: bool| {
            let mut h = head.clone();
            let convs = h["convs"].as_array_mut().unwrap();
            let e = convs.iter_mut().find(|e| e["dot_winograd"] == true).unwrap();
            if drop_matrices {
                e.as_object_mut().unwrap().remove("winograd_at");
            }
            let h = serde_json::to_vec(&h).unwrap();
            assert!(h.len() <= len);
            let mut b = good.clone();
            b[8..16].copy_from_slice(&(h.len() as u64).to_le_bytes());
            b[16..16 + h.len()].copy_from_slice(&h);
            let body = b.len() - END.len() - CHECKSUM;
            let mut sum = crate::kept::Hasher::default();
            sum.update(&b[..body]);
            b[body..body + CHECKSUM].copy_from_slice(&sum.finish());
            let _ = std::fs::remove_file(note_path(&file));
            std::fs::write(&file, b).unwrap();
            open(&file, &kind(&sha, Precision::Bf16, kernels, at), kernels).is_some()
        };
        assert!(resealed(false));
        assert!(!resealed(true));
    }

    #[test]
    fn threads_packing_the_same_weights_at_once_leave_one_sound_file() {
        let (dir, sha, reference, want) = f32_on_portable();
        let nets = dir.path().join("networks");
        let (precision, kernels) = (Precision::F32, Kernels::Portable);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    let net = load_or_build(Some(&nets), &sha, precision, kernels, None, || {
                        reference.to_nhwc(precision, kernels)
                    })
                    .unwrap();
                    assert_eq!(net.features(&photo(), Pooling::Avg), want);
                });
            }
        });
        let file = nets.join(format!("{sha}-f32.net"));
        let kept = open(&file, &kind(&sha, precision, kernels, None), kernels).expect("a sound file");
        assert_eq!(kept.features(&photo(), Pooling::Avg), want);
        let names: Vec<_> = std::fs::read_dir(&nets)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.ends_with(".net.ok"))
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn only_the_newest_kept_networks_stay() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..6 {
            let p = dir.path().join(format!("{i}-f32.net"));
            std::fs::write(&p, b"x").unwrap();
            let t = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000 + i);
            std::fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(t)
                .unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), b"mine").unwrap();
        // Left by a process that died while writing: old ones go, a fresh one may be in use.
        let (old, fresh) = (dir.path().join("a-f32.part1-0"), dir.path().join("a-f32.part2-0"));
        std::fs::write(&old, b"x").unwrap();
        std::fs::write(&fresh, b"x").unwrap();
        let t = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
        std::fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(t)
            .unwrap();
        let keep = dir.path().join("new-f32.net");
        std::fs::write(&keep, b"x").unwrap();
        prune(dir.path(), &keep);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "3-f32.net",
                "4-f32.net",
                "5-f32.net",
                "a-f32.part2-0",
                "new-f32.net",
                "notes.txt"
            ]
        );
    }
}
