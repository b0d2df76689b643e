//! An IVF index kept on disk beside a SQLite catalogue (`catalog.db` keeps `catalog.ivf`), so a
//! one-shot `similar` or `recommend` maps it instead of reading every vector and running
//! k-means first (issue 22). It is used only while the catalogue's
//! [`vectors_fingerprint`](crate::catalog::Catalog::vectors_fingerprint) is the one it was
//! built from; any vector, product or listing written since makes it stale, and the next load
//! builds and saves a fresh one. It also keeps the rows' [`RowFacts`], so a query without a
//! metadata filter reads no product it does not show.
//!
//! Layout, little-endian: the magic `LBIVF` with a format byte, a `u64` header length, a JSON
//! header (the fingerprint, the sizes, the article types' names), then at 64-byte boundaries
//! the row ids (`i64`), the list starts (`u64`), the centroids (`f32`), either the int8 rows
//! (list of each row `u32`, scale `f32`, codes `i8`) or the f32 rows, the ids sorted (`i64`)
//! with their rows (`u32`), and the facts (state `u8`, group `u32`, article type `u32`), then
//! the SHA-256 of everything before it. Every size is checked against the file's length, every
//! list boundary against the rows and the sorted ids against the rows before anything is used:
//! a damaged file is stale, never a crash. The checksum catches what those checks cannot (damaged
//! vectors gave wrong answers, issue 37): it is verified once per file (its length, time and
//! inode are then noted beside it in `catalog.ivf-verified`), so a one-shot query does not hash
//! hundreds of megabytes each time, and a file changed since is verified again.

use crate::kept::CHECKSUM;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

use super::facts::RowFacts;
use super::index::{FlatIndex, VectorIndex};
use super::ivf::{Codes, IvfIndex, MappedRows, Residuals};
use crate::catalog::EmbeddingMatrix;
use crate::{Error, Result};

/// File magic and format version.
const MAGIC: &[u8; 8] = b"LBIVF\0\0\x03";
/// Sections start at multiples of this.
const ALIGN: usize = 64;

#[derive(Serialize, Deserialize, PartialEq)]
struct Header {
    fingerprint: String,
    rows: usize,
    dim: usize,
    lists: usize,
    nprobe: usize,
    recall: f32,
    int8: bool,
    /// The article types' names, which the facts' `kind` points into.
    kinds: Vec<String>,
}

/// Byte ranges of the sections, derived from the header alone.
struct Layout {
    ids: std::ops::Range<usize>,
    starts: std::ops::Range<usize>,
    centroids: std::ops::Range<usize>,
    list_of: std::ops::Range<usize>,
    scales: std::ops::Range<usize>,
    rows: std::ops::Range<usize>,
    sorted_ids: std::ops::Range<usize>,
    sorted_rows: std::ops::Range<usize>,
    state: std::ops::Range<usize>,
    group: std::ops::Range<usize>,
    kind: std::ops::Range<usize>,
    end: usize,
}

fn align(x: usize) -> usize {
    x.div_ceil(ALIGN) * ALIGN
}

impl Header {
    fn layout(&self, body: usize) -> Option<Layout> {
        let mut at = align(body);
        let mut take = |bytes: usize| {
            let r = at..at.checked_add(bytes)?;
            at = align(r.end);
            Some(r)
        };
        let n = self.rows;
        let ids = take(n.checked_mul(8)?)?;
        let starts = take(self.lists.checked_add(1)?.checked_mul(8)?)?;
        let centroids = take(self.lists.checked_mul(self.dim)?.checked_mul(4)?)?;
        let (list_of, scales, rows) = if self.int8 {
            (take(n * 4)?, take(n * 4)?, take(n.checked_mul(self.dim)?)?)
        } else {
            (0..0, 0..0, take(n.checked_mul(self.dim)?.checked_mul(4)?)?)
        };
        let sorted_ids = take(n * 8)?;
        let sorted_rows = take(n * 4)?;
        let state = take(n)?;
        let group = take(n * 4)?;
        let kind = take(n * 4)?;
        Some(Layout {
            ids,
            starts,
            centroids,
            list_of,
            scales,
            rows,
            sorted_ids,
            sorted_rows,
            state,
            group,
            end: kind.end,
            kind,
        })
    }
}

/// Where a catalogue's index file is: beside it, named after it (`catalog.db` keeps
/// `catalog.ivf`); never the catalogue itself, whatever it is called.
pub fn path_for(catalog: &Path) -> std::path::PathBuf {
    let beside = catalog.with_extension("ivf");
    if beside != catalog {
        return beside;
    }
    let mut name = catalog.as_os_str().to_owned();
    name.push(".ivf");
    name.into()
}

/// Writes `index` and its rows' `facts` to `path` under `fingerprint`: to a temporary file,
/// then renamed over the old one, so a process that has the old one mapped keeps reading the
/// file it mapped.
pub fn save(index: &IvfIndex, facts: &RowFacts, path: &Path, fingerprint: &str) -> Result<()> {
    if facts.len() != index.flat.len() {
        return Err(Error::Invalid(format!(
            "index facts: {} rows for an index of {}",
            facts.len(),
            index.flat.len()
        )));
    }
    let header = Header {
        fingerprint: fingerprint.to_string(),
        rows: index.flat.len(),
        dim: index.dim,
        lists: index.starts.len() - 1,
        nprobe: index.nprobe,
        recall: index.recall,
        int8: index.residuals.is_some(),
        kinds: facts.kinds.clone(),
    };
    let json = serde_json::to_vec(&header).map_err(|e| Error::Invalid(format!("index header: {e}")))?;
    let body = MAGIC.len() + 8 + json.len();
    let layout = header
        .layout(body)
        .ok_or_else(|| Error::Invalid("the index is too large to save".into()))?;
    let tmp = path.with_extension(format!("ivf.part{}", std::process::id()));
    let mut hash = crate::kept::Hasher::default();
    let mut write = || -> std::io::Result<Vec<u8>> {
        let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
        let mut at = 0usize;
        let mut put = |out: &mut std::io::BufWriter<std::fs::File>, start: usize, bytes: &[u8]| {
            let pad = vec![0u8; start - at];
            out.write_all(&pad)?;
            out.write_all(bytes)?;
            hash.update(&pad);
            hash.update(bytes);
            at = start + bytes.len();
            Ok::<(), std::io::Error>(())
        };
        let mut head = MAGIC.to_vec();
        head.extend_from_slice(&(json.len() as u64).to_le_bytes());
        head.extend_from_slice(&json);
        put(&mut out, 0, &head)?;
        let matrix = index.flat.matrix();
        put(&mut out, layout.ids.start, &le(&matrix.ids, |x| x.to_le_bytes()))?;
        let starts: Vec<u64> = index.starts.iter().map(|&s| s as u64).collect();
        put(&mut out, layout.starts.start, &le(&starts, |x| x.to_le_bytes()))?;
        put(
            &mut out,
            layout.centroids.start,
            &le(&index.centroids, |x| x.to_le_bytes()),
        )?;
        match &index.residuals {
            Some(r) => {
                put(&mut out, layout.list_of.start, &le(&r.list_of, |x| x.to_le_bytes()))?;
                put(&mut out, layout.scales.start, &le(&r.scales, |x| x.to_le_bytes()))?;
                put(&mut out, layout.rows.start, bytemuck::cast_slice(&r.codes))?;
            }
            None => put(&mut out, layout.rows.start, &le(index.f32_rows(), |x| x.to_le_bytes()))?,
        }
        let lookup = index.flat.lookup();
        put(&mut out, layout.sorted_ids.start, &le(&lookup, |x| x.0.to_le_bytes()))?;
        put(&mut out, layout.sorted_rows.start, &le(&lookup, |x| x.1.to_le_bytes()))?;
        put(&mut out, layout.state.start, &facts.state)?;
        put(&mut out, layout.group.start, &le(&facts.group, |x| x.to_le_bytes()))?;
        put(&mut out, layout.kind.start, &le(&facts.kind, |x| x.to_le_bytes()))?;
        let sum = std::mem::take(&mut hash).finish();
        out.write_all(&sum)?;
        out.flush()?;
        out.get_ref().sync_all()?;
        Ok(sum.to_vec())
    };
    let done = write().and_then(|sum| std::fs::rename(&tmp, path).map(|_| sum));
    match done {
        // Written whole just now: noted as verified, so the next process need not hash it.
        Ok(sum) => crate::kept::note_verified(path, &verified_path(path), &sum),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::io(path, e));
        }
    }
    Ok(())
}

/// Where the note of a verified index file is kept.
fn verified_path(path: &Path) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-verified");
    name.into()
}

/// Whether the file's checksum (its last bytes) matches the rest.
fn verified(path: &Path, bytes: &[u8]) -> bool {
    let (body, sum) = bytes.split_at(bytes.len() - CHECKSUM);
    crate::kept::verified(path, &verified_path(path), body, sum)
}

fn le<T: Copy, const N: usize>(xs: &[T], f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
    let mut out = Vec::with_capacity(xs.len() * N);
    xs.iter().for_each(|&x| out.extend_from_slice(&f(x)));
    out
}

fn read<T, const N: usize>(bytes: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
    bytes
        .chunks_exact(N)
        .map(|c| f(c.try_into().unwrap_or([0; N])))
        .collect()
}

/// `range` of `file` as f32s, read once into their vector.
fn read_f32s(file: &std::fs::File, range: std::ops::Range<usize>) -> Option<Vec<f32>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut data = vec![0.0f32; range.len() / 4];
    let mut f = file;
    f.seek(SeekFrom::Start(range.start as u64)).ok()?;
    f.read_exact(bytemuck::cast_slice_mut(&mut data)).ok()?;
    if cfg!(target_endian = "big") {
        data.iter_mut()
            .for_each(|x| *x = f32::from_bits(x.to_bits().swap_bytes()));
    }
    Some(data)
}

/// The index in `path` with its rows' facts, when it exists, is whole and was built from
/// `fingerprint`; `None` otherwise (missing, stale, another format, damaged), and the caller
/// builds a fresh one.
pub fn open(path: &Path, fingerprint: &str, model_id: i64) -> Option<(IvfIndex, RowFacts)> {
    let file = std::fs::File::open(path).ok()?;
    // SAFETY: lookbook never writes an index file in place: `save` writes a new file and
    // renames it over the old, so the inode mapped here is not changed while it is mapped.
    // Another program truncating it would be outside what lookbook supports.
    let map = unsafe { memmap2::Mmap::map(&file) }.ok()?;
    let bytes: &[u8] = &map;
    if bytes.len() < 16 || &bytes[..8] != MAGIC {
        return None;
    }
    let json_len = usize::try_from(u64::from_le_bytes(bytes[8..16].try_into().ok()?)).ok()?;
    let body = 16usize.checked_add(json_len)?;
    let header: Header = serde_json::from_slice(bytes.get(16..body)?).ok()?;
    if header.fingerprint != fingerprint || header.rows == 0 || header.dim == 0 || header.lists == 0 {
        return None;
    }
    let l = header.layout(body)?;
    if l.end.checked_add(CHECKSUM) != Some(bytes.len()) || !verified(path, bytes) {
        return None;
    }
    let (n, dim, lists) = (header.rows, header.dim, header.lists);
    let ids: Vec<i64> = read(&bytes[l.ids.clone()], i64::from_le_bytes);
    let starts: Vec<usize> = read(&bytes[l.starts.clone()], u64::from_le_bytes)
        .into_iter()
        .map(|s| s as usize)
        .collect();
    let whole = starts.first() == Some(&0) && starts.last() == Some(&n) && starts.windows(2).all(|w| w[0] <= w[1]);
    if !whole || !(1..=lists).contains(&header.nprobe) {
        return None;
    }
    let sorted_ids: Vec<i64> = read(&bytes[l.sorted_ids.clone()], i64::from_le_bytes);
    let sorted_rows: Vec<u32> = read(&bytes[l.sorted_rows.clone()], u32::from_le_bytes);
    let lookup: Vec<(i64, u32)> = sorted_ids.into_iter().zip(sorted_rows).collect();
    // Strictly increasing ids, each naming its own row: then it is the rows' permutation.
    let consistent =
        lookup.windows(2).all(|w| w[0].0 < w[1].0) && lookup.iter().all(|&(id, r)| ids.get(r as usize) == Some(&id));
    if !consistent {
        return None;
    }
    let facts = RowFacts {
        state: bytes[l.state.clone()].to_vec(),
        group: read(&bytes[l.group.clone()], u32::from_le_bytes),
        kind: read(&bytes[l.kind.clone()], u32::from_le_bytes),
        kinds: header.kinds.clone(),
    };
    if !facts.is_valid_for(n) {
        return None;
    }
    let centroids: Vec<f32> = read(&bytes[l.centroids.clone()], f32::from_le_bytes);
    let ids_only = |ids| EmbeddingMatrix {
        model_id,
        dim: 0,
        ids,
        data: Vec::new(),
    };
    let (matrix, residuals, mapped) = if header.int8 {
        let list_of: Vec<u32> = read(&bytes[l.list_of.clone()], u32::from_le_bytes);
        if list_of.iter().any(|&c| c as usize >= lists) {
            return None;
        }
        let scales: Vec<f32> = read(&bytes[l.scales.clone()], f32::from_le_bytes);
        let rows = l.rows.clone();
        let codes = Codes::Mapped {
            map,
            offset: rows.start,
            len: rows.len(),
        };
        (ids_only(ids), Some(Residuals { codes, scales, list_of }), None)
    } else if cfg!(target_endian = "little") {
        // Mapped, not read: a query touches the pages of the lists it probes.
        let rows = MappedRows::new(map, l.rows.start, l.rows.len() / 4)?;
        (ids_only(ids), None, Some(rows))
    } else {
        let data = read_f32s(&file, l.rows.clone())?;
        (
            EmbeddingMatrix {
                model_id,
                dim,
                ids,
                data,
            },
            None,
            None,
        )
    };
    let index = IvfIndex {
        flat: FlatIndex::with_lookup(matrix, lookup),
        dim,
        residuals,
        mapped,
        centroids,
        starts,
        nprobe: header.nprobe,
        recall: header.recall,
    };
    Some((index, facts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::synthetic_matrix;

    fn same(a: &IvfIndex, b: &IvfIndex) {
        assert_eq!(a.len(), b.len());
        assert_eq!(a.nprobe(), b.nprobe());
        assert_eq!(a.is_int8(), b.is_int8());
        let m = synthetic_matrix(64, a.dim(), 77);
        for q in 0..m.len() {
            let ids = |v: &[(usize, f32)], i: &IvfIndex| v.iter().map(|r| (i.id(r.0), r.1)).collect::<Vec<_>>();
            let (x, y) = (a.search(m.row(q), 10, &|_| true), b.search(m.row(q), 10, &|_| true));
            assert_eq!(ids(&x, a), ids(&y, b), "query {q}");
            // A narrow filter takes the exact scan over every row.
            let (x, y) = (
                a.search(m.row(q), 10, &|r| a.id(r) % 10 == 0),
                b.search(m.row(q), 10, &|r| b.id(r) % 10 == 0),
            );
            assert_eq!(ids(&x, a), ids(&y, b), "filtered query {q}");
        }
        for r in [0, a.len() / 2, a.len() - 1] {
            assert_eq!(a.vector(r), b.vector(a.row(b.id(r)).unwrap()));
        }
    }

    /// Facts of every kind for an index's rows: grouped pairs, unlisted rows, rows without a
    /// product, three article types.
    fn facts_for(index: &IvfIndex) -> RowFacts {
        let mut products = crate::synthetic::synthetic_products(index.len());
        products.retain(|p| p.id % 11 != 0);
        for p in &mut products {
            p.article_type = ["Shirts", "Watches", "Heels"][p.id as usize % 3].to_string();
            p.listed = p.id % 7 != 0;
            p.group = (p.id % 5 == 0).then(|| format!("g{}", p.id / 10));
        }
        let facts = RowFacts::of(&products, index);
        assert!(facts.has_groups() && facts.unlisted_rows().count() > 0);
        assert!((0..facts.len()).any(|r| !facts.has_product(r)));
        facts
    }

    #[test]
    fn a_saved_index_answers_as_the_built_one_and_only_under_its_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        for int8 in [false, true] {
            let built = IvfIndex::with_lists(synthetic_matrix(3000, 32, 5), 40, int8).unwrap();
            let path = dir.path().join(format!("c{int8}.ivf"));
            let facts = facts_for(&built);
            save(&built, &facts, &path, "fp-1").unwrap();
            let (opened, kept) = open(&path, "fp-1", 7).expect("a current file opens");
            same(&built, &opened);
            assert_eq!(kept, facts, "the facts come back as saved");
            assert!(open(&path, "fp-2", 7).is_none(), "a stale fingerprint is refused");
        }
    }

    #[test]
    fn the_index_file_is_never_the_catalogue() {
        assert_eq!(path_for(Path::new("/x/catalog.db")), Path::new("/x/catalog.ivf"));
        assert_eq!(path_for(Path::new("shop")), Path::new("shop.ivf"));
        assert_eq!(path_for(Path::new("odd.ivf")), Path::new("odd.ivf.ivf"));
    }

    #[test]
    fn a_damaged_index_file_is_stale_not_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let built = IvfIndex::with_lists(synthetic_matrix(2000, 16, 5), 30, true).unwrap();
        let path = dir.path().join("c.ivf");
        save(&built, &facts_for(&built), &path, "fp").unwrap();
        let good = std::fs::read(&path).unwrap();
        let json_end = 16 + u64::from_le_bytes(good[8..16].try_into().unwrap()) as usize;
        let mut cases: Vec<Vec<u8>> = vec![
            good[..good.len() - 1].to_vec(),
            good[..json_end].to_vec(),
            Vec::new(),
            b"LBIVF\0\0\x09".to_vec(),
        ];
        // A list boundary past the rows.
        let mut bad_starts = good.clone();
        let starts_at = align(json_end) + align(2000 * 8);
        bad_starts[starts_at + 8..starts_at + 16].copy_from_slice(&u64::MAX.to_le_bytes());
        cases.push(bad_starts);
        // A row in a list that does not exist.
        let mut bad_list = good.clone();
        let list_at = starts_at + align(31 * 8) + align(30 * 16 * 4);
        bad_list[list_at..list_at + 4].copy_from_slice(&999u32.to_le_bytes());
        cases.push(bad_list);
        // A sorted id naming another row, a state that does not exist, an article type past
        // the names: each found by its own section's check.
        let end = good.len() - CHECKSUM;
        let kind_at = end - 2000 * 4;
        let state_at = kind_at - align(2000 * 4) - align(2000);
        let rows_at = state_at - align(2000 * 4);
        let mut bad_lookup = good.clone();
        bad_lookup[rows_at..rows_at + 4].copy_from_slice(&1999u32.to_le_bytes());
        cases.push(bad_lookup);
        let mut bad_state = good.clone();
        bad_state[state_at] = 9;
        cases.push(bad_state);
        let mut bad_kind = good.clone();
        bad_kind[kind_at..kind_at + 4].copy_from_slice(&77u32.to_le_bytes());
        cases.push(bad_kind);
        // Vectors overwritten with other numbers: every structural check passes, the checksum
        // does not (it gave unrelated look-alikes scored up to 8.34 before, issue 37).
        let mut bad_vectors = good.clone();
        let codes_at = list_at + align(2000 * 4) + align(2000 * 4);
        for (i, b) in bad_vectors[codes_at..codes_at + 4096].iter_mut().enumerate() {
            *b = (i * 37 % 251) as u8;
        }
        cases.push(bad_vectors);
        for (i, bytes) in cases.iter().enumerate() {
            std::fs::write(&path, bytes).unwrap();
            assert!(open(&path, "fp", 1).is_none(), "case {i} opened");
        }
        std::fs::write(&path, &good).unwrap();
        assert!(open(&path, "fp", 1).is_some());
        assert!(verified_path(&path).exists(), "verified once, noted");
        assert!(open(&path, "fp", 1).is_some(), "and opened from the note");
    }
}
