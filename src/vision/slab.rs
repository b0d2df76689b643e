//! A weight array held in memory or mapped from a file, read the same way: the packed
//! network's panels come from a fresh pack or straight from the kept copy in the data folder
//! ([`super::network_file`]).

use std::sync::Arc;

/// `len` values of `T` (`f32` or bf16 bits), owned or in a shared read-only map.
pub enum Slab<T> {
    /// Packed in this process.
    Owned(Vec<T>),
    /// Mapped: `len` values from byte `at` of `map` (checked to fit and to be aligned when
    /// made, so reading it cannot fail).
    Mapped {
        /// The whole file.
        map: Arc<memmap2::Mmap>,
        /// Byte offset of the first value.
        at: usize,
        /// Number of values.
        len: usize,
    },
}

impl<T: bytemuck::Pod> Slab<T> {
    /// `len` values from byte `at` of `map`, or `None` when they do not fit the file or are
    /// not aligned for `T`.
    pub fn mapped(map: &Arc<memmap2::Mmap>, at: usize, len: usize) -> Option<Self> {
        let end = len.checked_mul(size_of::<T>())?.checked_add(at)?;
        let bytes = map.get(at..end)?;
        bytemuck::try_cast_slice::<u8, T>(bytes).ok()?;
        Some(Slab::Mapped {
            map: Arc::clone(map),
            at,
            len,
        })
    }

    /// The values, mutable: a mapped slab is copied into memory first.
    pub fn make_mut(&mut self) -> &mut [T] {
        if let Slab::Mapped { .. } = self {
            *self = Slab::Owned(self.to_vec());
        }
        match self {
            Slab::Owned(v) => v,
            Slab::Mapped { .. } => unreachable!("copied into memory above"),
        }
    }
}

impl<T: bytemuck::Pod> std::ops::Deref for Slab<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        match self {
            Slab::Owned(v) => v,
            // Checked in `mapped`, so the cast cannot fail; empty rather than a panic if it did.
            Slab::Mapped { map, at, len } => {
                bytemuck::try_cast_slice(&map[*at..*at + len * size_of::<T>()]).unwrap_or(&[])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapped_slab_reads_its_values_and_refuses_what_does_not_fit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("slab");
        let values = [1.5f32, -2.0, 3.25];
        let mut bytes = vec![0u8; 8];
        bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        std::fs::write(&path, &bytes).unwrap();
        let map = Arc::new(unsafe { memmap2::Mmap::map(&std::fs::File::open(&path).unwrap()) }.unwrap());
        let mut s = Slab::<f32>::mapped(&map, 8, 3).unwrap();
        assert_eq!(&s[..], &values);
        assert!(Slab::<f32>::mapped(&map, 8, 4).is_none(), "past the end");
        assert!(Slab::<f32>::mapped(&map, 6, 1).is_none(), "misaligned");
        assert!(Slab::<f32>::mapped(&map, usize::MAX - 2, 1).is_none(), "overflow");
        s.make_mut()[0] = 9.0;
        assert_eq!(&s[..], &[9.0, -2.0, 3.25]);
        assert!(matches!(s, Slab::Owned(_)));
    }
}
