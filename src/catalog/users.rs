//! Users and their feedback: a like is weight +1, a dislike weight -1, one row per pair.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::Catalog;
use super::postgres::sql;
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

impl Catalog {
    /// Every user with feedback counts, by name.
    pub fn users(&self) -> Result<Vec<User>> {
        if let Some(mut c) = self.pg() {
            return sql::users(&mut c);
        }
        let mut st = self.conn()?.prepare(
            "SELECT u.id, u.name,
                (SELECT COUNT(*) FROM feedback f WHERE f.user_id = u.id AND f.weight > 0),
                (SELECT COUNT(*) FROM feedback f WHERE f.user_id = u.id AND f.weight < 0)
             FROM users u ORDER BY u.name",
        )?;
        let rows = st.query_map([], |r| {
            Ok(User {
                id: r.get(0)?,
                name: r.get(1)?,
                likes: r.get::<_, i64>(2)? as usize,
                dislikes: r.get::<_, i64>(3)? as usize,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Creates a user; an existing name is an error.
    pub fn add_user(&self, name: &str) -> Result<i64> {
        let name = check_user_name(name)?;
        if let Some(mut c) = self.pg() {
            return sql::insert_user(&mut c, name, now_ms())?
                .ok_or_else(|| Error::Invalid(format!("user {name:?} already exists")));
        }
        // One statement, so two processes adding the same name cannot both pass a check.
        let added = self.conn()?.execute(
            "INSERT INTO users(name, created_at) VALUES (?1, ?2) ON CONFLICT(name) DO NOTHING",
            params![name, now_ms()],
        )?;
        if added == 0 {
            return Err(Error::Invalid(format!("user {name:?} already exists")));
        }
        Ok(self.conn()?.last_insert_rowid())
    }

    /// The user's id, creating the user if needed (the TUI's "switch or create"); safe when
    /// several processes create the same user at once.
    pub fn ensure_user(&self, name: &str) -> Result<i64> {
        let name = check_user_name(name)?;
        if let Some(mut c) = self.pg() {
            sql::insert_user(&mut c, name, now_ms())?;
        } else {
            self.conn()?.execute(
                "INSERT INTO users(name, created_at) VALUES (?1, ?2) ON CONFLICT(name) DO NOTHING",
                params![name, now_ms()],
            )?;
        }
        self.user_id(name)?
            .ok_or_else(|| Error::NotFound(format!("user {name:?} vanished while being created")))
    }

    /// Looks a user up by name.
    pub fn user_id(&self, name: &str) -> Result<Option<i64>> {
        if let Some(mut c) = self.pg() {
            return sql::user_id(&mut c, name.trim());
        }
        Ok(self
            .conn()?
            .query_row("SELECT id FROM users WHERE name = ?1", [name.trim()], |r| r.get(0))
            .optional()?)
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
        if let Some(mut c) = self.pg() {
            return sql::remove_user(&mut c, id);
        }
        let tx = self.conn_mut()?.transaction()?;
        let n = tx.execute("DELETE FROM feedback WHERE user_id = ?1", [id])?;
        tx.execute("DELETE FROM users WHERE id = ?1", [id])?;
        tx.commit()?;
        Ok(n)
    }

    /// Records likes (`weight` > 0) or dislikes (< 0) for several products at once.
    /// Unknown products are an error and nothing is written.
    pub fn set_feedback(&mut self, user: i64, products: &[i64], weight: f32) -> Result<()> {
        let now = now_ms();
        if let Some(mut c) = self.pg() {
            return sql::set_feedback(&mut c, user, products, weight, now);
        }
        let tx = self.conn_mut()?.transaction()?;
        for &pid in products {
            let exists: bool = tx.query_row("SELECT EXISTS(SELECT 1 FROM products WHERE id = ?1)", [pid], |r| {
                r.get(0)
            })?;
            if !exists {
                return Err(Error::NotFound(format!("product {pid} is not in the catalogue")));
            }
            tx.execute(
                "INSERT INTO feedback(user_id, product_id, weight, at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(user_id, product_id) DO UPDATE SET weight = excluded.weight, at = excluded.at",
                params![user, pid, weight, now],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Forgets feedback on these products; returns how many rows went.
    pub fn clear_feedback(&mut self, user: i64, products: &[i64]) -> Result<usize> {
        if let Some(mut c) = self.pg() {
            return sql::clear_feedback(&mut c, user, products);
        }
        let tx = self.conn_mut()?.transaction()?;
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
        if let Some(mut c) = self.pg() {
            return sql::feedback(&mut c, user);
        }
        let mut st = self.conn()?.prepare_cached(
            "SELECT product_id, weight, at FROM feedback WHERE user_id = ?1 ORDER BY at DESC, product_id",
        )?;
        let rows = st.query_map([user], |r| {
            Ok(Feedback {
                product_id: r.get(0)?,
                weight: r.get::<_, f64>(1)? as f32,
                at: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// How many users liked each product (the cold-start popularity signal).
    pub fn like_counts(&self) -> Result<Vec<(i64, usize)>> {
        if let Some(mut c) = self.pg() {
            return sql::like_counts(&mut c);
        }
        let mut st = self
            .conn()?
            .prepare("SELECT product_id, COUNT(*) FROM feedback WHERE weight > 0 GROUP BY product_id")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as usize)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
