//! A shop's history in memory: every event and like, and each shopper's own part of it. The
//! model learns from a [`History`]; the feed ranks from one [`ShopperHistory`].

use std::collections::HashMap;

use crate::Result;
use crate::catalog::{Catalog, Event, EventKind, Feedback, Shopper};

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// One shopper's part of the history: what a feed for them goes on.
#[derive(Debug, Clone, Default)]
pub struct ShopperHistory {
    /// Purchases, carts and views, oldest first.
    pub events: Vec<Event>,
    /// Likes and dislikes (any order).
    pub feedback: Vec<Feedback>,
    /// Age and gender, where known.
    pub shopper: Shopper,
}

impl ShopperHistory {
    /// A stored user's history (a user the catalogue does not know has an empty one).
    pub fn load(catalog: &Catalog, user: Option<i64>) -> Result<Self> {
        let Some(user) = user else {
            return Ok(Self::default());
        };
        Ok(ShopperHistory {
            events: catalog.user_events(user)?,
            feedback: catalog.feedback(user)?,
            shopper: catalog.shopper(user)?,
        })
    }

    /// The newest thing the shopper did, if anything.
    pub fn newest(&self) -> Option<i64> {
        let e = self.events.iter().map(|e| e.at).max();
        let f = self.feedback.iter().map(|f| f.at).max();
        e.max(f)
    }

    /// True when the shopper has done nothing yet (cold start).
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.feedback.iter().all(|f| !f.is_like())
    }

    /// How many purchases (counting quantities).
    pub fn purchases(&self) -> usize {
        self.events
            .iter()
            .filter(|e| e.kind == EventKind::Purchase)
            .map(|e| e.count as usize)
            .sum()
    }
}

/// A whole shop's history: every event (oldest first), every like and dislike, and shoppers'
/// attributes.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Events, oldest first.
    pub events: Vec<Event>,
    /// (user, like or dislike), oldest first.
    pub feedback: Vec<(i64, Feedback)>,
    /// Age and gender by user.
    pub shoppers: HashMap<i64, Shopper>,
}

impl History {
    /// Reads a catalogue's whole history.
    pub fn load(catalog: &Catalog) -> Result<Self> {
        let mut events = Vec::new();
        catalog.each_event(&mut |e| {
            events.push(e);
            Ok(())
        })?;
        Ok(History {
            events,
            feedback: catalog.all_feedback()?,
            shoppers: catalog.shoppers()?.into_iter().collect(),
        })
    }

    /// The shop's "now": its newest event, or its newest like when it has no events. Likes
    /// alone do not move it: a catalogue whose history was imported gets likes stamped today,
    /// and "this week's best sellers" must stay the history's last week.
    pub fn newest(&self) -> Option<i64> {
        match self.events.last() {
            Some(e) => Some(e.at),
            None => self.feedback.iter().map(|(_, f)| f.at).max(),
        }
    }

    /// What happened before `t` (the shoppers' attributes kept whole).
    pub fn before(&self, t: i64) -> History {
        History {
            events: self.events.iter().filter(|e| e.at < t).copied().collect(),
            feedback: self.feedback.iter().filter(|(_, f)| f.at < t).copied().collect(),
            shoppers: self.shoppers.clone(),
        }
    }

    /// Each shopper's products bought in `[from, to)`, by user: what a feed made at `from`
    /// should have found.
    pub fn purchases_between(&self, from: i64, to: i64) -> HashMap<i64, Vec<i64>> {
        let mut out: HashMap<i64, Vec<i64>> = HashMap::new();
        for e in self
            .events
            .iter()
            .filter(|e| e.kind == EventKind::Purchase && e.at >= from && e.at < to)
        {
            let v = out.entry(e.user).or_default();
            if !v.contains(&e.product) {
                v.push(e.product);
            }
        }
        out
    }

    /// Every shopper's own history, by user.
    pub fn by_shopper(&self) -> HashMap<i64, ShopperHistory> {
        let mut out: HashMap<i64, ShopperHistory> = HashMap::new();
        for e in &self.events {
            out.entry(e.user).or_default().events.push(*e);
        }
        for (u, f) in &self.feedback {
            out.entry(*u).or_default().feedback.push(*f);
        }
        for (u, h) in out.iter_mut() {
            h.shopper = self.shoppers.get(u).cloned().unwrap_or_default();
        }
        out
    }

    /// The start of the day `days` days before the day of the newest event: the default split
    /// that holds out the last `days` days.
    pub fn split_days_before_end(&self, days: i64) -> Option<i64> {
        self.newest()
            .map(|t| t.div_euclid(DAY_MS) * DAY_MS - (days - 1).max(0) * DAY_MS)
    }
}
