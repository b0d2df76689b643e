//! What ranking needs to know of each index row's product besides its vector: whether it is
//! listed, its colourway group and its article type. The engine ranks from these alone, so a
//! one-shot query can take them from the index file (see `ivf_file`) instead of reading every
//! product; only a metadata filter needs the products themselves.

use std::collections::HashMap;

use super::index::VectorIndex;
use crate::catalog::Product;

/// No group, or no product.
pub const NONE: u32 = u32::MAX;

/// A row's product, as ranking sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum RowState {
    /// A vector whose product is gone (ranked as before: only a filter drops it).
    NoProduct = 0,
    /// Listed.
    Listed = 1,
    /// No longer in the shop's feed, or hidden by the shop: never ranked.
    Unlisted = 2,
}

/// Per-row facts, in the index's row order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RowFacts {
    /// Each row's [`RowState`] as its byte.
    pub(super) state: Vec<u8>,
    /// Each row's group among groups of several products (colourways), or [`NONE`].
    pub(super) group: Vec<u32>,
    /// Each row's article type, a position in `kinds`, or [`NONE`] without a product.
    pub(super) kind: Vec<u32>,
    /// The article types' names.
    pub(super) kinds: Vec<String>,
}

impl RowFacts {
    /// The facts of `index`'s rows, from the catalogue's products (every product counts towards
    /// a group's size, embedded or not, as the shop's feed groups them).
    pub fn of(products: &[Product], index: &dyn VectorIndex) -> Self {
        let by_id: HashMap<i64, &Product> = products.iter().map(|p| (p.id, p)).collect();
        let mut size: HashMap<&str, usize> = HashMap::new();
        for g in products.iter().filter_map(|p| p.group.as_deref()) {
            *size.entry(g).or_default() += 1;
        }
        let mut groups: HashMap<&str, u32> = HashMap::new();
        let mut kinds: HashMap<&str, u32> = HashMap::new();
        let mut facts = RowFacts::default();
        for r in 0..index.len() {
            let Some(p) = by_id.get(&index.id(r)) else {
                facts.push(RowState::NoProduct, NONE, NONE);
                continue;
            };
            let group = match p.group.as_deref() {
                Some(g) if size.get(g).is_some_and(|&n| n > 1) => {
                    let next = groups.len() as u32;
                    *groups.entry(g).or_insert(next)
                }
                _ => NONE,
            };
            let next = kinds.len() as u32;
            let kind = *kinds.entry(p.article_type.as_str()).or_insert_with(|| {
                facts.kinds.push(p.article_type.clone());
                next
            });
            let state = if p.listed { RowState::Listed } else { RowState::Unlisted };
            facts.push(state, group, kind);
        }
        facts
    }

    fn push(&mut self, state: RowState, group: u32, kind: u32) {
        self.state.push(state as u8);
        self.group.push(group);
        self.kind.push(kind);
    }

    /// Rows described.
    pub fn len(&self) -> usize {
        self.state.len()
    }

    /// True when no row is described.
    pub fn is_empty(&self) -> bool {
        self.state.is_empty()
    }

    /// Whether the facts are whole and consistent: one entry per row of `rows`, known states,
    /// kinds that exist. A damaged index file fails this and is rebuilt.
    pub fn is_valid_for(&self, rows: usize) -> bool {
        let kinds = self.kinds.len();
        self.state.len() == rows
            && self.group.len() == rows
            && self.kind.len() == rows
            && self.state.iter().all(|&s| s <= RowState::Unlisted as u8)
            && self.kind.iter().all(|&k| k == NONE || (k as usize) < kinds)
    }

    /// True when a row's product may be ranked (listed, or a vector without a product).
    pub fn ranked(&self, row: usize) -> bool {
        self.state.get(row).is_some_and(|&s| s != RowState::Unlisted as u8)
    }

    /// True when the row has a product.
    pub fn has_product(&self, row: usize) -> bool {
        self.state.get(row).is_some_and(|&s| s != RowState::NoProduct as u8)
    }

    /// Rows whose products are unlisted.
    pub fn unlisted_rows(&self) -> impl Iterator<Item = usize> + '_ {
        self.state
            .iter()
            .enumerate()
            .filter(|(_, s)| **s == RowState::Unlisted as u8)
            .map(|(r, _)| r)
    }

    /// The row's group of colourways, if it is in one of several.
    pub fn group(&self, row: usize) -> Option<u32> {
        self.group.get(row).copied().filter(|&g| g != NONE)
    }

    /// True when some rows share a group (only then does one-per-group change a ranking).
    pub fn has_groups(&self) -> bool {
        self.group.iter().any(|&g| g != NONE)
    }

    /// Rows of a group.
    pub fn rows_in_group(&self, group: u32) -> impl Iterator<Item = usize> + '_ {
        self.group
            .iter()
            .enumerate()
            .filter(move |(_, g)| **g == group)
            .map(|(r, _)| r)
    }

    /// The row's article type, as a position in [`RowFacts::kind_name`]'s list.
    pub fn kind(&self, row: usize) -> Option<u32> {
        self.kind.get(row).copied().filter(|&k| k != NONE)
    }

    /// The name of an article type.
    pub fn kind_name(&self, kind: u32) -> &str {
        self.kinds.get(kind as usize).map_or("", String::as_str)
    }
}
