//! What shoppers did, beside what they liked: purchases, carts and views with their time, count
//! and price (`events`), the shoppers' age and gender (`users`), and the feed's trained blends
//! (`feed_models`). Every statement here runs on both stores.

use serde::Serialize;

use super::Catalog;
use super::sql::{Db, Row, params};
use crate::{Error, Result, now_ms};

/// What a shopper did with a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Bought it.
    Purchase,
    /// Put it in the cart.
    Cart,
    /// Looked at it.
    View,
}

impl EventKind {
    /// The word stored and read in files.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Purchase => "purchase",
            EventKind::Cart => "cart",
            EventKind::View => "view",
        }
    }

    /// Reads a kind as a history file or the store names it (`purchase`, `buy`, `cart`,
    /// `add_to_cart`, `view`, ...).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "purchase" | "buy" | "bought" | "order" | "transaction" => Some(EventKind::Purchase),
            "cart" | "add_to_cart" | "addtocart" | "add-to-cart" | "basket" => Some(EventKind::Cart),
            "view" | "click" | "detail" | "page_view" | "pageview" => Some(EventKind::View),
            _ => None,
        }
    }

    /// How much one event of this kind says about a taste, against a purchase's 1.
    pub fn strength(self) -> f32 {
        match self {
            EventKind::Purchase => 1.0,
            EventKind::Cart => 0.5,
            EventKind::View => 0.15,
        }
    }
}

/// One event.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Event {
    /// The shopper.
    pub user: i64,
    /// The product.
    pub product: i64,
    /// What they did.
    pub kind: EventKind,
    /// When, in milliseconds since the epoch.
    pub at: i64,
    /// How many (a row with a quantity).
    pub count: u32,
    /// The price paid, where the history has it.
    pub price: Option<f64>,
}

/// A shopper's attributes, where the history has them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Shopper {
    /// Age in years.
    pub age: Option<u32>,
    /// Gender as the shop wrote it (`Men`, `Women`, ...), or empty.
    pub gender: String,
}

/// The columns every event read selects, in [`event`]'s order.
const EVENT_COLUMNS: &str = "user_id, product_id, kind, at, count, price";

fn event(r: &Row) -> Result<Event> {
    let kind: String = r.get(2)?;
    Ok(Event {
        user: r.get(0)?,
        product: r.get(1)?,
        kind: EventKind::parse(&kind)
            .ok_or_else(|| Error::Invalid(format!("events: unknown kind {kind:?}; the catalogue is damaged")))?,
        at: r.get(3)?,
        count: r.get::<i64>(4)?.clamp(1, u32::MAX as i64) as u32,
        price: r.get(5)?,
    })
}

/// Stores one event in the caller's transaction. `seq` tells apart identical rows of one file
/// (the second of two identical purchases is seq 1), so importing a file again adds nothing.
/// True when it was new.
pub(crate) fn insert_event(db: &mut impl Db, e: &Event, seq: u32) -> Result<bool> {
    Ok(db.execute(
        "INSERT INTO events(user_id, product_id, kind, at, seq, count, price) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT DO NOTHING",
        params![e.user, e.product, e.kind.as_str(), e.at, seq, e.count, e.price],
    )? > 0)
}

/// Sets a shopper's age and gender in the caller's transaction (empty values keep the old ones).
pub(crate) fn set_shopper(db: &mut impl Db, user: i64, s: &Shopper) -> Result<()> {
    db.execute(
        "UPDATE users SET age = COALESCE(?2, age), gender = CASE WHEN ?3 = '' THEN gender ELSE ?3 END WHERE id = ?1",
        params![user, s.age.map(i64::from), &s.gender],
    )?;
    Ok(())
}

/// One thing a shopper did, as a website reports it: the shopper's name, the product's
/// reference (shop id, SKU or number) and the kind's word; no time means now.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportedEvent {
    /// The shopper's name (made a user on first sight).
    pub user: String,
    /// The product: shop id, SKU or the catalogue's number.
    pub product: String,
    /// `purchase`, `cart`, `view` (and their synonyms), `like` or `dislike`.
    pub kind: String,
    /// When, in milliseconds since the epoch.
    pub at: Option<i64>,
}

/// What became of a batch of [`ReportedEvent`]s: how many were stored and, for each one that was
/// not, its place in the batch and why.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Recorded {
    /// Events stored (likes and dislikes included).
    pub accepted: usize,
    /// `(place in the batch from 0, why)` for each event refused.
    pub rejected: Vec<(usize, String)>,
}

/// How far in the future a reported time may be (clocks differ); later is refused.
const FUTURE_SLACK_MS: i64 = 60 * 60 * 1000;
/// The earliest time a website may report (2000-01-01): an older one is a bug (`0`, `-1`).
const EARLIEST_REPORTED_MS: i64 = 946_684_800_000;

/// Stores one live event, choosing the next free `seq` when the same shopper did the same to the
/// same product in the same millisecond (a second view is a second view).
fn insert_live_event(db: &mut impl Db, e: &Event) -> Result<()> {
    if insert_event(db, e, 0)? {
        return Ok(());
    }
    let next: i64 = db.scalar(
        "SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE user_id = ?1 AND product_id = ?2 AND kind = ?3 AND at = ?4",
        params![e.user, e.product, e.kind.as_str(), e.at],
    )?;
    insert_event(db, e, next.clamp(0, u32::MAX as i64) as u32)?;
    Ok(())
}

/// A trained blend of the feed as stored: its parameters and metrics (JSON), the item side of
/// the model (bytes) and the newest event it learned from.
#[derive(Debug, Clone)]
pub struct StoredFeedModel {
    /// Row id.
    pub id: i64,
    /// The blend's weights and settings, JSON.
    pub params: String,
    /// How it scored when trained, JSON.
    pub metrics: String,
    /// The item side (co-purchases, best sellers, ...), `recommend::shop`'s format.
    pub data: Vec<u8>,
    /// The newest event it learned from, milliseconds since the epoch.
    pub trained_through: i64,
    /// When it was trained.
    pub created_at: i64,
}

impl Catalog {
    /// Stores what a website reported, in one transaction: unknown shoppers become users, likes
    /// and dislikes set feedback, the rest become events. An event naming no product, an
    /// unreadable shopper name or kind, or a time more than an hour ahead is refused with its
    /// reason; the others are stored.
    pub fn record_events(&mut self, events: &[ReportedEvent]) -> Result<Recorded> {
        let now = now_ms();
        let mut out = Recorded::default();
        let mut tx = self.tx()?;
        for (i, r) in events.iter().enumerate() {
            let user = match super::check_user_name(&r.user) {
                Ok(u) => u,
                Err(e) => {
                    out.rejected.push((i, e.to_string()));
                    continue;
                }
            };
            let kind = r.kind.trim().to_ascii_lowercase();
            let weight = match kind.as_str() {
                "like" => Some(1.0),
                "dislike" => Some(-1.0),
                _ => None,
            };
            let event_kind = EventKind::parse(&kind);
            if weight.is_none() && event_kind.is_none() {
                out.rejected.push((
                    i,
                    format!(
                        "unknown kind {:?}; use like, dislike, view, cart or purchase",
                        crate::text::clip(&r.kind, 40)
                    ),
                ));
                continue;
            }
            let at = r.at.unwrap_or(now);
            if at > now + FUTURE_SLACK_MS {
                out.rejected
                    .push((i, format!("time {} is in the future", crate::dates::date_of(at))));
                continue;
            }
            if at < EARLIEST_REPORTED_MS {
                out.rejected
                    .push((i, format!("time {} is before 2000", crate::dates::date_of(at))));
                continue;
            }
            let Some(product) = super::products::product_id_of(&mut tx, &r.product)? else {
                out.rejected.push((
                    i,
                    format!(
                        "no product {:?} (looked for it as a shop id, a SKU and a number)",
                        crate::text::clip(r.product.trim(), 80)
                    ),
                ));
                continue;
            };
            super::insert_user(&mut tx, user)?;
            let Some(uid) = super::user_id_in(&mut tx, user)? else {
                return Err(Error::NotFound(format!("user {user:?} vanished while being created")));
            };
            match (weight, event_kind) {
                (Some(w), _) => super::upsert_feedback(&mut tx, uid, product, w, at)?,
                (None, Some(kind)) => insert_live_event(
                    &mut tx,
                    &Event {
                        user: uid,
                        product,
                        kind,
                        at,
                        count: 1,
                        price: None,
                    },
                )?,
                (None, None) => continue,
            }
            out.accepted += 1;
        }
        tx.commit()?;
        Ok(out)
    }

    /// Calls `each` for every event, oldest first (streamed: a shop's history may be large).
    pub fn each_event(&self, each: &mut dyn FnMut(Event) -> Result<()>) -> Result<()> {
        self.db()?.each(
            &format!("SELECT {EVENT_COLUMNS} FROM events ORDER BY at, user_id, product_id, seq"),
            &[],
            &mut |r| each(event(&r)?),
        )
    }

    /// A shopper's events, oldest first.
    pub fn user_events(&self, user: i64) -> Result<Vec<Event>> {
        self.db()?
            .rows(
                &format!("SELECT {EVENT_COLUMNS} FROM events WHERE user_id = ?1 ORDER BY at, product_id, seq"),
                params![user],
            )?
            .iter()
            .map(event)
            .collect()
    }

    /// What the shop's history and everyone's likes are, cheaply: counts and the newest times,
    /// which change when anything is added or taken back (for `serve`'s retraining).
    pub fn history_signature(&self) -> Result<String> {
        let r = self.db()?.row(
            "SELECT (SELECT COUNT(*) FROM events), (SELECT COALESCE(MAX(at), 0) FROM events),
                    (SELECT COUNT(*) FROM feedback), (SELECT COALESCE(MAX(at), 0) FROM feedback)",
            &[],
        )?;
        let r = r.ok_or_else(|| Error::Invalid("the history signature query returned no row".into()))?;
        let (e, et, f, ft): (i64, i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
        Ok(format!("events={e},{et}|feedback={f},{ft}"))
    }

    /// How many events are stored.
    pub fn event_count(&self) -> Result<usize> {
        self.db()?.scalar("SELECT COUNT(*) FROM events", &[])
    }

    /// Every user's likes and dislikes as (user, product, weight, at), oldest first: what the
    /// app and `serve` add to a shop's history.
    pub fn all_feedback(&self) -> Result<Vec<(i64, super::Feedback)>> {
        self.db()?
            .rows(
                "SELECT user_id, product_id, weight, at FROM feedback ORDER BY at, user_id, product_id",
                &[],
            )?
            .iter()
            .map(|r| {
                Ok((
                    r.get(0)?,
                    super::Feedback {
                        product_id: r.get(1)?,
                        weight: r.get(2)?,
                        at: r.get(3)?,
                    },
                ))
            })
            .collect()
    }

    /// Every shopper with an age or gender, by user id.
    pub fn shoppers(&self) -> Result<Vec<(i64, Shopper)>> {
        self.db()?
            .rows(
                "SELECT id, age, gender FROM users WHERE age IS NOT NULL OR gender <> '' ORDER BY id",
                &[],
            )?
            .iter()
            .map(|r| Ok((r.get(0)?, shopper(r)?)))
            .collect()
    }

    /// One shopper's age and gender (empty when unknown).
    pub fn shopper(&self, user: i64) -> Result<Shopper> {
        match self
            .db()?
            .row("SELECT id, age, gender FROM users WHERE id = ?1", params![user])?
        {
            Some(r) => shopper(&r),
            None => Ok(Shopper::default()),
        }
    }

    /// Stores a trained feed model and its bought-together lists (product, bytes) in one
    /// transaction; the newest model is the one in use.
    pub fn store_feed_model(
        &mut self,
        params_json: &str,
        metrics_json: &str,
        data: &[u8],
        trained_through: i64,
        neighbours: &[(i64, Vec<u8>)],
    ) -> Result<i64> {
        let mut tx = self.tx()?;
        let id: i64 = tx.scalar(
            "INSERT INTO feed_models(params, metrics, data, trained_through, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
            params![params_json, metrics_json, data.to_vec(), trained_through, now_ms()],
        )?;
        for (product, bytes) in neighbours {
            tx.execute(
                "INSERT INTO feed_neighbours(model_id, product_id, data) VALUES (?1, ?2, ?3)",
                params![id, *product, bytes.clone()],
            )?;
        }
        tx.commit()?;
        Ok(id)
    }

    /// A stored feed model's bought-together lists as (product, bytes): of `products` only, or
    /// of every product.
    pub fn feed_neighbours(&self, model: i64, products: Option<&[i64]>) -> Result<Vec<(i64, Vec<u8>)>> {
        let mut db = self.db()?;
        let row = |r: &Row| -> Result<(i64, Vec<u8>)> { Ok((r.get(0)?, r.get(1)?)) };
        match products {
            None => db
                .rows(
                    "SELECT product_id, data FROM feed_neighbours WHERE model_id = ?1 ORDER BY product_id",
                    params![model],
                )?
                .iter()
                .map(row)
                .collect(),
            Some(ids) => {
                let mut ids = ids.to_vec();
                ids.sort_unstable();
                ids.dedup();
                let mut out = Vec::new();
                for p in ids {
                    if let Some(r) = db.row(
                        "SELECT product_id, data FROM feed_neighbours WHERE model_id = ?1 AND product_id = ?2",
                        params![model, p],
                    )? {
                        out.push(row(&r)?);
                    }
                }
                Ok(out)
            }
        }
    }

    /// The newest trained feed model, if any.
    pub fn feed_model(&self) -> Result<Option<StoredFeedModel>> {
        self.db()?
            .row(
                "SELECT id, params, metrics, data, trained_through, created_at FROM feed_models ORDER BY id DESC LIMIT 1",
                &[],
            )?
            .map(|r| {
                Ok(StoredFeedModel {
                    id: r.get(0)?,
                    params: r.get(1)?,
                    metrics: r.get(2)?,
                    data: r.get(3)?,
                    trained_through: r.get(4)?,
                    created_at: r.get(5)?,
                })
            })
            .transpose()
    }
}

fn shopper(r: &Row) -> Result<Shopper> {
    let age: Option<i64> = r.get(1)?;
    Ok(Shopper {
        age: age.and_then(|a| u32::try_from(a).ok()),
        gender: r.get(2)?,
    })
}
