//! Latent factors learned from everyone's history: implicit-feedback alternating least squares
//! (Hu, Koren and Volinsky 2008, as `implicit` and Spark do). Each shopper and product gets a
//! vector of [`FACTORS`] numbers so that a shopper's vector dotted with a product's predicts
//! whether they bought it, weighing each purchase by a confidence `1 + ALPHA * strength`.
//!
//! Only the products' vectors are kept: a shopper's is folded in at query time from their own
//! products (one small solve), so a shopper who bought or liked something a minute ago is
//! scored on it, and nothing per shopper is stored.

use rayon::prelude::*;
use std::collections::HashMap;

use super::history::History;
use super::model::decay;
use crate::sample::Rng;

/// Numbers per vector.
pub const FACTORS: usize = 32;
/// How much more a purchase weighs than a product the shopper did not buy.
const ALPHA: f32 = 20.0;
/// Ridge strength.
const LAMBDA: f32 = 0.1;
/// Rounds of alternation.
const ITERATIONS: usize = 6;
/// A purchase this many days older than the newest event counts half.
const HALF_LIFE_DAYS: f32 = 120.0;

/// The products' factors.
#[derive(Debug, Clone, Default)]
pub struct Factors {
    /// Product ids, in row order.
    pub(super) ids: Vec<i64>,
    /// Row of each product.
    pub(super) rows: HashMap<i64, usize>,
    /// `ids.len() x FACTORS` numbers.
    pub(super) y: Vec<f32>,
    /// `Y^T Y`, `FACTORS x FACTORS`, for folding shoppers in.
    pub(super) gram: Vec<f32>,
}

/// Each shopper's (product row, strength) pairs, strengths summed and decayed by age, and the
/// products' ids by row.
fn interactions(history: &History, reference: i64) -> (Vec<Vec<(usize, f32)>>, Vec<i64>) {
    let mut items: HashMap<i64, usize> = HashMap::new();
    let mut by_user: HashMap<i64, HashMap<usize, f32>> = HashMap::new();
    let mut add = |user: i64, product: i64, w: f32, items: &mut HashMap<i64, usize>| {
        let n = items.len();
        let row = *items.entry(product).or_insert(n);
        *by_user.entry(user).or_default().entry(row).or_default() += w;
    };
    for e in &history.events {
        add(
            e.user,
            e.product,
            e.kind.strength() * e.count as f32 * decay(reference - e.at, HALF_LIFE_DAYS),
            &mut items,
        );
    }
    for (u, f) in history.feedback.iter().filter(|(_, f)| f.is_like()) {
        add(*u, f.product_id, decay(reference - f.at, HALF_LIFE_DAYS), &mut items);
    }
    let mut users: Vec<(i64, HashMap<usize, f32>)> = by_user.into_iter().collect();
    users.sort_by_key(|u| u.0);
    let mut out: Vec<Vec<(usize, f32)>> = users
        .into_iter()
        .map(|(_, m)| {
            let mut v: Vec<(usize, f32)> = m.into_iter().collect();
            v.sort_by_key(|x| x.0);
            v
        })
        .collect();
    // Product rows in id order, so the same history gives the same factors.
    let mut ids: Vec<(i64, usize)> = items.into_iter().collect();
    ids.sort_by_key(|x| x.0);
    let mut remap = vec![0usize; ids.len()];
    for (new, (_, old)) in ids.iter().enumerate() {
        remap[*old] = new;
    }
    for v in &mut out {
        for x in v.iter_mut() {
            x.0 = remap[x.0];
        }
        v.sort_by_key(|x| x.0);
    }
    (out, ids.into_iter().map(|(id, _)| id).collect())
}

/// `a^T a` of an `n x FACTORS` matrix.
fn gram(a: &[f32]) -> Vec<f32> {
    let mut g = vec![0.0f32; FACTORS * FACTORS];
    for row in a.chunks_exact(FACTORS) {
        for i in 0..FACTORS {
            let ri = row[i];
            for j in 0..FACTORS {
                g[i * FACTORS + j] += ri * row[j];
            }
        }
    }
    g
}

/// A `FACTORS x FACTORS` matrix on the stack: fixed-size rows, so the loops below compile to
/// vector instructions without bounds checks (solving was most of learning the factors).
type Square = [[f32; FACTORS]; FACTORS];

/// Solves `(gram + sum (c - 1) y y^T + LAMBDA I) x = sum c y` for one row's pairs (row of
/// `other`, strength); `None` when there is nothing to solve for.
fn solve(gram: &[f32], other: &[f32], pairs: &[(usize, f32)]) -> Option<Vec<f32>> {
    if pairs.is_empty() || gram.len() != FACTORS * FACTORS {
        return None;
    }
    let mut a: Square = [[0.0; FACTORS]; FACTORS];
    for (row, g) in a.iter_mut().zip(gram.chunks_exact(FACTORS)) {
        row.copy_from_slice(g);
    }
    let mut b = [0.0f32; FACTORS];
    for &(r, s) in pairs {
        let c = 1.0 + ALPHA * s;
        let y: &[f32; FACTORS] = other.get(r * FACTORS..(r + 1) * FACTORS)?.try_into().ok()?;
        for i in 0..FACTORS {
            b[i] += c * y[i];
            let w = (c - 1.0) * y[i];
            for (aij, yj) in a[i].iter_mut().zip(y) {
                *aij += w * yj;
            }
        }
    }
    for (i, row) in a.iter_mut().enumerate() {
        row[i] += LAMBDA;
    }
    cholesky_solve(&mut a, &mut b).then(|| b.to_vec())
}

/// Solves `a x = b` in place for a symmetric positive definite `a` (`b` becomes `x`; `a` its
/// Cholesky factor below the diagonal); false when `a` is not positive definite.
fn cholesky_solve(a: &mut Square, b: &mut [f32; FACTORS]) -> bool {
    for j in 0..FACTORS {
        let d = a[j][j] - a[j][..j].iter().map(|x| x * x).sum::<f32>();
        if d <= 0.0 || !d.is_finite() {
            return false;
        }
        let d = d.sqrt();
        a[j][j] = d;
        // Row j is done: a copy of it (128 bytes) updates the rows below.
        let rj = a[j];
        for ri in a[j + 1..].iter_mut() {
            let dot: f32 = ri[..j].iter().zip(&rj[..j]).map(|(x, y)| x * y).sum();
            ri[j] = (ri[j] - dot) / d;
        }
    }
    for i in 0..FACTORS {
        let dot: f32 = a[i][..i].iter().zip(&b[..i]).map(|(x, y)| x * y).sum();
        b[i] = (b[i] - dot) / a[i][i];
    }
    for i in (0..FACTORS).rev() {
        let mut s = b[i];
        for k in i + 1..FACTORS {
            s -= a[k][i] * b[k];
        }
        b[i] = s / a[i][i];
    }
    true
}

/// One side's rows solved against the other side's factors (a row with nothing keeps zeros).
fn half_step(rows: &[Vec<(usize, f32)>], other: &[f32]) -> Vec<f32> {
    let g = gram(other);
    let solved: Vec<Option<Vec<f32>>> = rows.par_iter().map(|p| solve(&g, other, p)).collect();
    let mut out = vec![0.0f32; rows.len() * FACTORS];
    for (r, x) in solved.into_iter().enumerate() {
        if let Some(x) = x {
            out[r * FACTORS..(r + 1) * FACTORS].copy_from_slice(&x);
        }
    }
    out
}

impl Factors {
    /// Learns the products' factors from everyone's events and likes.
    pub fn train(history: &History, reference: i64) -> Self {
        let (users, ids) = interactions(history, reference);
        if ids.is_empty() || users.is_empty() {
            return Factors::default();
        }
        // The same pairs seen from the products' side.
        let mut by_item: Vec<Vec<(usize, f32)>> = vec![Vec::new(); ids.len()];
        for (u, pairs) in users.iter().enumerate() {
            for &(i, s) in pairs {
                by_item[i].push((u, s));
            }
        }
        let mut rng = Rng::new(17);
        let mut y: Vec<f32> = (0..ids.len() * FACTORS).map(|_| (rng.unit() - 0.5) * 0.1).collect();
        for _ in 0..ITERATIONS {
            let x = half_step(&users, &y);
            y = half_step(&by_item, &x);
        }
        let gram = gram(&y);
        Factors {
            rows: ids.iter().enumerate().map(|(r, id)| (*id, r)).collect(),
            ids,
            y,
            gram,
        }
    }

    /// True when nothing was learned.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// A shopper's vector from their (product, strength) pairs: one solve against the
    /// products' factors. `None` when none of their products has factors.
    pub fn fold_in(&self, items: &[(i64, f32)]) -> Option<Vec<f32>> {
        let pairs: Vec<(usize, f32)> = items
            .iter()
            .filter_map(|(id, s)| self.rows.get(id).map(|&r| (r, *s)))
            .collect();
        solve(&self.gram, &self.y, &pairs)
    }

    /// A product's predicted preference for a shopper's vector (0 without factors).
    pub fn score(&self, user: &[f32], id: i64) -> f32 {
        self.rows.get(&id).map_or(0.0, |&r| {
            self.y[r * FACTORS..(r + 1) * FACTORS]
                .iter()
                .zip(user)
                .map(|(a, b)| a * b)
                .sum()
        })
    }

    /// The `n` products with the highest predicted preference, best first.
    pub fn top(&self, user: &[f32], n: usize) -> Vec<(i64, f32)> {
        let mut all: Vec<(i64, f32)> = self
            .ids
            .iter()
            .enumerate()
            .map(|(r, id)| {
                let s = self.y[r * FACTORS..(r + 1) * FACTORS]
                    .iter()
                    .zip(user)
                    .map(|(a, b)| a * b)
                    .sum();
                (*id, s)
            })
            .collect();
        let n = n.min(all.len());
        if n == 0 {
            return Vec::new();
        }
        all.select_nth_unstable_by(n - 1, |a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        all.truncate(n);
        all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Event, EventKind};

    #[test]
    fn cholesky_solves_a_positive_definite_system() {
        let mut a: Square = [[0.0; FACTORS]; FACTORS];
        for i in 0..FACTORS {
            a[i][i] = 2.0;
            if i + 1 < FACTORS {
                a[i][i + 1] = 0.5;
                a[i + 1][i] = 0.5;
            }
        }
        let x: Vec<f32> = (0..FACTORS).map(|i| i as f32 * 0.1 - 1.0).collect();
        let mut b = [0.0f32; FACTORS];
        for i in 0..FACTORS {
            b[i] = (0..FACTORS).map(|j| a[i][j] * x[j]).sum();
        }
        let mut l = a;
        assert!(cholesky_solve(&mut l, &mut b));
        for (got, want) in b.iter().zip(&x) {
            assert!((got - want).abs() < 1e-4, "{got} {want}");
        }
        let mut bad: Square = [[0.0; FACTORS]; FACTORS];
        assert!(!cholesky_solve(&mut bad, &mut [1.0; FACTORS]));
    }

    #[test]
    fn shoppers_who_buy_alike_are_predicted_each_others_products() {
        // Two crowds: shoppers 0-99 buy among products 1-40, shoppers 100-199 among 41-80;
        // each shopper buys five of their crowd's forty.
        let mut h = History::default();
        for u in 0..200i64 {
            let base = if u < 100 { 1 } else { 41 };
            for k in 0..5 {
                h.events.push(Event {
                    user: u,
                    product: base + (u * 7 + k * 13) % 40,
                    kind: EventKind::Purchase,
                    at: 0,
                    count: 1,
                    price: None,
                });
            }
        }
        let f = Factors::train(&h, 0);
        let me = f.fold_in(&[(1, 1.0), (2, 1.0), (3, 1.0)]).unwrap();
        let top: Vec<i64> = f.top(&me, 10).into_iter().map(|x| x.0).collect();
        assert!(top.iter().all(|id| (1..=40).contains(id)), "{top:?}");
        let mine: f32 = (4..=40).map(|id| f.score(&me, id)).sum::<f32>() / 37.0;
        let theirs: f32 = (41..=80).map(|id| f.score(&me, id)).sum::<f32>() / 40.0;
        assert!(mine > 0.05 && theirs.abs() < mine / 10.0, "{mine} {theirs}");
        assert!(f.fold_in(&[(99, 1.0)]).is_none());
    }
}
