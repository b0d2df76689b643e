//! Seeded randomness and the fixed held-out split, shared by `eval`, `train` and `bench` (and with
//! `training/train.py`): an item is held out when its hashed id falls in the first fifth.
//! Hashing the id (not the row order) keeps the split stable as catalogues grow.

/// SplitMix64 finaliser, identical to the Python recipe's.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// True for items never trained on (by the backbone recipe or by `lookbook train`).
pub fn is_held_out(id: i64) -> bool {
    splitmix64(id as u64).is_multiple_of(5)
}

/// A tiny deterministic generator (SplitMix64) so simulations repeat exactly.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeds the generator.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        splitmix64(self.0)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    /// Shuffles in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_python_recipe() {
        // Values printed by training/train.py's splitmix64.
        assert_eq!(splitmix64(0), 0xE220A8397B1DCDAF);
        let held: Vec<i64> = [1580, 1584, 1614, 1635, 1636, 1637, 1638, 1639]
            .into_iter()
            .filter(|i| is_held_out(*i))
            .collect();
        assert_eq!(held, vec![1580, 1638, 1639]);
        let held = (0..10_000).filter(|i| is_held_out(*i)).count();
        assert!((1800..2200).contains(&held), "{held}");
    }
}
