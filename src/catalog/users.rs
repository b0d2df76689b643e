//! Users and their feedback: a like is weight +1, a dislike weight -1, one row per pair.

use serde::Serialize;

use super::Catalog;
use super::sql::{Db, Row, params};
use crate::{Error, Result, now_ms};

/// A person using the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// Internal id.
    pub id: i64,
    /// Unique name, as typed on the command line.
    pub name: String,
    /// Number of likes.
    pub likes: usize,
    /// Number of dislikes.
    pub dislikes: usize,
}

/// One like or dislike.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Feedback {
    /// The product.
    pub product_id: i64,
    /// +1 for a like, -1 for a dislike.
    pub weight: f32,
    /// When, in milliseconds since the epoch.
    pub at: i64,
}

impl Feedback {
    /// True for a like.
    pub fn is_like(&self) -> bool {
        self.weight > 0.0
    }
}

/// Longest user name, in characters.
pub const MAX_USER_NAME: usize = 64;

/// The name trimmed, or an error when it is empty, longer than [`MAX_USER_NAME`] characters or
/// holds a control or bidi character. Every way a user comes to be (CLI, app, SSH login) asks this.
pub fn check_user_name(name: &str) -> Result<&str> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_USER_NAME || name.chars().any(crate::text::is_unsafe) {
        return Err(Error::Invalid(format!(
            "user name {:?} must be 1 to {MAX_USER_NAME} printable characters",
            crate::text::clip(name, MAX_USER_NAME + 1)
        )));
    }
    Ok(name)
}

/// A user with feedback counts, from [`USERS`].
fn user(r: &Row) -> Result<User> {
    Ok(User {
        id: r.get(0)?,
        name: r.get(1)?,
        likes: r.get(2)?,
        dislikes: r.get(3)?,
    })
}

const USERS: &str = "SELECT u.id, u.name,
        (SELECT COUNT(*) FROM feedback f WHERE f.user_id = u.id AND f.weight > 0),
        (SELECT COUNT(*) FROM feedback f WHERE f.user_id = u.id AND f.weight < 0)
     FROM users u ORDER BY u.name";

/// Adds a user unless the name exists (one statement, so two processes adding the same name
/// cannot both pass a check); the new id, or `None`.
pub(crate) fn insert_user(db: &mut impl Db, name: &str) -> Result<Option<i64>> {
    db.row(
        "INSERT INTO users(name, created_at) VALUES (?1, ?2) ON CONFLICT(name) DO NOTHING RETURNING id",
        params![name, now_ms()],
    )?
    .map(|r| r.get(0))
    .transpose()
}

/// A user's id by name, in the caller's connection or transaction.
pub(crate) fn user_id_in(db: &mut impl Db, name: &str) -> Result<Option<i64>> {
    db.row("SELECT id FROM users WHERE name = ?1", params![name.trim()])?
        .map(|r| r.get(0))
        .transpose()
}

/// Sets a like (`weight` > 0) or dislike in the caller's transaction; of two times for one
/// product, the later is kept (a history file may list an old like after a new one).
pub(crate) fn upsert_feedback(db: &mut impl Db, user: i64, product: i64, weight: f64, at: i64) -> Result<()> {
    db.execute(
        "INSERT INTO feedback(user_id, product_id, weight, at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(user_id, product_id) DO UPDATE SET weight = excluded.weight,
            at = CASE WHEN excluded.at > feedback.at THEN excluded.at ELSE feedback.at END",
        params![user, product, weight, at],
    )?;
    Ok(())
}

impl Catalog {
    /// Every user with feedback counts, by name.
    pub fn users(&self) -> Result<Vec<User>> {
        self.db()?.rows(USERS, &[])?.iter().map(user).collect()
    }

    /// Creates a user; an existing name is an error.
    pub fn add_user(&self, name: &str) -> Result<i64> {
        let name = check_user_name(name)?;
        insert_user(&mut self.db()?, name)?.ok_or_else(|| Error::Invalid(format!("user {name:?} already exists")))
    }

    /// The user's id, creating the user if needed (the TUI's "switch or create"); safe when
    /// several processes create the same user at once.
    pub fn ensure_user(&self, name: &str) -> Result<i64> {
        let name = check_user_name(name)?;
        insert_user(&mut self.db()?, name)?;
        self.user_id(name)?
            .ok_or_else(|| Error::NotFound(format!("user {name:?} vanished while being created")))
    }

    /// Looks a user up by name.
    pub fn user_id(&self, name: &str) -> Result<Option<i64>> {
        user_id_in(&mut self.db()?, name)
    }

    /// The user's id, or an error that lists how to create one.
    pub fn require_user(&self, name: &str) -> Result<i64> {
        self.user_id(name)?.ok_or_else(|| {
            let name = crate::text::clip(name.trim(), MAX_USER_NAME + 1);
            Error::NotFound(format!(
                "user {name:?} does not exist; create it with `lookbook users add {name:?}`"
            ))
        })
    }

    /// Removes a user and all their feedback in one transaction; returns how many feedback rows went.
    pub fn remove_user(&mut self, name: &str) -> Result<usize> {
        let id = self.require_user(name)?;
        let mut tx = self.tx()?;
        let n = tx.execute("DELETE FROM feedback WHERE user_id = ?1", params![id])?;
        tx.execute("DELETE FROM users WHERE id = ?1", params![id])?;
        tx.commit()?;
        Ok(n)
    }

    /// Records likes (`weight` > 0) or dislikes (< 0) for several products at once.
    /// Unknown products are an error and nothing is written.
    pub fn set_feedback(&mut self, user: i64, products: &[i64], weight: f32) -> Result<()> {
        let now = now_ms();
        let mut tx = self.tx()?;
        for &pid in products {
            if tx.row("SELECT 1 FROM products WHERE id = ?1", params![pid])?.is_none() {
                return Err(Error::NotFound(format!("product {pid} is not in the catalogue")));
            }
            upsert_feedback(&mut tx, user, pid, f64::from(weight), now)?;
        }
        tx.commit()
    }

    /// Forgets feedback on these products; returns how many rows went.
    pub fn clear_feedback(&mut self, user: i64, products: &[i64]) -> Result<usize> {
        let mut tx = self.tx()?;
        let mut n = 0;
        for &pid in products {
            n += tx.execute(
                "DELETE FROM feedback WHERE user_id = ?1 AND product_id = ?2",
                params![user, pid],
            )?;
        }
        tx.commit()?;
        Ok(n)
    }

    /// A user's feedback, newest first.
    pub fn feedback(&self, user: i64) -> Result<Vec<Feedback>> {
        self.db()?
            .rows(
                "SELECT product_id, weight, at FROM feedback WHERE user_id = ?1 ORDER BY at DESC, product_id",
                params![user],
            )?
            .iter()
            .map(|r| {
                Ok(Feedback {
                    product_id: r.get(0)?,
                    weight: r.get(1)?,
                    at: r.get(2)?,
                })
            })
            .collect()
    }

    /// The users with at least `min` likes, by id (whose histories `eval --personal
    /// --histories` can hold a like out of).
    pub fn users_with_likes(&self, min: usize) -> Result<Vec<i64>> {
        self.db()?
            .rows(
                "SELECT user_id FROM feedback WHERE weight > 0 GROUP BY user_id HAVING COUNT(*) >= ?1 ORDER BY user_id",
                params![min as i64],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    /// How many users liked each product (the cold-start popularity signal).
    pub fn like_counts(&self) -> Result<Vec<(i64, usize)>> {
        self.db()?
            .rows(
                "SELECT product_id, COUNT(*) FROM feedback WHERE weight > 0 GROUP BY product_id",
                &[],
            )?
            .iter()
            .map(|r| Ok((r.get(0)?, r.get(1)?)))
            .collect()
    }
}
