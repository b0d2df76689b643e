//! The catalogue: products, the category tree, users and their feedback, models and the
//! embeddings each model produced, in one SQLite file (the default) or in PostgreSQL with
//! pgvector ([`postgres`]). [`Catalog::open`] decides once, from the `--db` it is given; every
//! method works on both, so nothing above this module knows which it has.
//!
//! For SQLite, WAL mode and a busy timeout let a TUI and a CLI work on the same file at once.

mod embeddings;
mod events;
pub mod postgres;
mod products;
mod schema;
pub mod sql;
pub mod tables;
mod users;

pub use embeddings::{EmbeddingMatrix, ModelRecord, ModelSpec, StoredHead};
pub(crate) use embeddings::{from_blob, put_embeddings_in, to_blob};
pub use events::{Event, EventKind, Recorded, ReportedEvent, Shopper, StoredFeedModel};
pub(crate) use events::{insert_event, set_shopper};
pub use products::{Product, ProductFilter, ProductUpsert, ShopFields, Upserted, VariantRow};
pub(crate) use products::{id_for_shop_id, unlist, upsert as products_upsert};
pub use schema::APPLICATION_ID;
pub use tables::SCHEMA_VERSION;
pub use users::{Feedback, MAX_USER_NAME, User, check_user_name};
pub(crate) use users::{insert_user, upsert_feedback, user_id_in};

use rusqlite::{Connection, ErrorCode, TransactionBehavior};
use sql::{Db, Handle, Tx, params};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// How long a writer waits for another one before it reports the database as busy.
pub const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// One message per way opening a database can fail, each naming the file and what to do.
pub(crate) fn open_error(path: &Path, e: rusqlite::Error) -> Error {
    let code = e.sqlite_error_code();
    let p = path.display();
    let msg = match code {
        Some(ErrorCode::NotADatabase) => {
            format!("{p}: not a SQLite database; point --db at a lookbook catalogue or a new file")
        }
        Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => format!(
            "{p}: locked by another program for more than {}s; close it (or wait) and try again",
            BUSY_TIMEOUT.as_secs()
        ),
        Some(ErrorCode::ReadOnly) => format!(
            "{p}: cannot write to the database or its folder (read-only); lookbook needs write access to the file and the folder that holds it"
        ),
        Some(ErrorCode::CannotOpen) => {
            format!("{p}: cannot open the database file; check that its folder exists and is writable")
        }
        Some(ErrorCode::DatabaseCorrupt) => format!("{p}: the database file is damaged; restore it from a backup"),
        Some(ErrorCode::DiskFull) => format!("{p}: the disk is full"),
        _ => return Error::Sqlite(e),
    };
    Error::Invalid(msg)
}

/// An open catalogue database.
pub struct Catalog {
    /// The connection (one per `Catalog`; open another for another thread).
    conn: Conn,
    /// Where the database lives, for messages and relative image paths (for PostgreSQL, the URL
    /// with any password hidden).
    path: PathBuf,
}

/// The two places a catalogue can live. The choice is made once, in [`Catalog::open`]; each
/// method that works on both picks its SQL there, so nothing above this module knows which.
enum Conn {
    Sqlite(Connection),
    /// The client needs `&mut` for every query while catalogue reads take `&self`.
    Postgres(Box<std::cell::RefCell<postgres::Link>>),
}

impl Catalog {
    /// Opens the catalogue at `path`, creating it in a new or empty file and migrating it as
    /// needed. Any other SQLite file (one without lookbook's `application_id` and tables) is
    /// refused before a byte of it is written.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path.as_ref(), true)
    }

    fn open_with(path: &Path, create: bool) -> Result<Self> {
        let path = path.to_path_buf();
        if let Some(url) = path.to_str().filter(|p| postgres::is_url(p)) {
            // Never a file name: SQLite would create a file called "postgres:". An empty
            // database gets the schema only where a new file would get it (`import`).
            let link = postgres::Link::open(url, create)?;
            return Ok(Catalog {
                conn: Conn::Postgres(Box::new(std::cell::RefCell::new(link))),
                path: PathBuf::from(postgres::redact(url)),
            });
        }
        let mut conn = Connection::open(&path).map_err(|e| open_error(&path, e))?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // On a full disk the first read of a WAL database fails: SQLite cannot make the shared
        // index (-shm) beside it. A connection in exclusive locking mode needs none, so reads
        // still work (other processes wait while it is open, and writes say the disk is full).
        let first_read = conn.query_row("PRAGMA schema_version", [], |r| r.get::<_, i64>(0));
        if let Err(e) = first_read
            && matches!(
                e.sqlite_error_code(),
                Some(ErrorCode::DiskFull | ErrorCode::SystemIoFailure)
            )
        {
            drop(conn);
            conn = Connection::open(&path).map_err(|e| open_error(&path, e))?;
            conn.busy_timeout(BUSY_TIMEOUT)?;
            conn.pragma_update(None, "locking_mode", "EXCLUSIVE")
                .map_err(|e| open_error(&path, e))?;
        }
        // Every transaction takes the write lock when it starts: a deferred one that reads and
        // then writes gets SQLITE_BUSY at once, without waiting, when another writer got there
        // first, which is how concurrent likes were lost.
        conn.set_transaction_behavior(TransactionBehavior::Immediate);
        schema::check_ownership(&conn, &path)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(|e| open_error(&path, e))?;
        if mode != "wal" && mode != "memory" {
            return Err(Error::Invalid(format!(
                "{}: could not switch the database to WAL mode (it stays in {mode} mode); is it on a network file system?",
                path.display()
            )));
        }
        conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")
            .map_err(|e| open_error(&path, e))?;
        schema::migrate(&mut conn, &path)?;
        Ok(Catalog {
            conn: Conn::Sqlite(conn),
            path,
        })
    }

    /// Opens an existing catalogue; a missing file is an error that says how to make one.
    pub fn open_existing(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if !path.exists() && !postgres::is_url(&path.to_string_lossy()) {
            return Err(Error::NoCatalogue(path.to_path_buf()));
        }
        Self::open_with(path, false)
    }

    /// Caps this connection's SQLite page cache (KiB): a server holds one connection per
    /// session, and each would otherwise keep up to 2 MiB of pages it rarely needs.
    pub fn limit_cache(&self, kib: u32) -> Result<()> {
        if let Conn::Sqlite(c) = &self.conn {
            c.pragma_update(None, "cache_size", -i64::from(kib))?;
        }
        Ok(())
    }

    /// True for a catalogue in PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self.conn, Conn::Postgres(_))
    }

    /// The PostgreSQL client, for the work only PostgreSQL does (vector search, HNSW indexes,
    /// the embed workers' claims).
    pub(crate) fn pg(&self) -> Option<std::cell::RefMut<'_, ::postgres::Client>> {
        match &self.conn {
            Conn::Postgres(c) => Some(std::cell::RefMut::map(c.borrow_mut(), postgres::Link::client)),
            Conn::Sqlite(_) => None,
        }
    }

    /// The store, for statements written once for both dialects.
    pub(crate) fn db(&self) -> Result<Handle<'_>> {
        Ok(match &self.conn {
            Conn::Sqlite(c) => Handle::Sqlite(c),
            Conn::Postgres(c) => Handle::Postgres(
                c.try_borrow_mut()
                    .map(|l| std::cell::RefMut::map(l, postgres::Link::client))
                    .map_err(|_| Error::Invalid("the catalogue's connection is already in use".into()))?,
            ),
        })
    }

    /// A transaction on the store; nothing it writes is seen until [`Tx::commit`].
    pub(crate) fn tx(&mut self) -> Result<Tx<'_>> {
        Ok(match &mut self.conn {
            Conn::Sqlite(c) => Tx::Sqlite(c.transaction()?),
            Conn::Postgres(c) => Tx::Postgres(c.get_mut().client().transaction()?),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The folder holding the database (relative image roots are resolved against it).
    pub fn dir(&self) -> PathBuf {
        if self.is_postgres() {
            // A URL has no folder; `migrate` stores the image root absolute.
            return PathBuf::from(".");
        }
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// The SQLite connection, for modules of this crate that need their own queries; for a
    /// PostgreSQL catalogue, an error saying the operation needs a SQLite file.
    pub(crate) fn conn(&self) -> Result<&Connection> {
        match &self.conn {
            Conn::Sqlite(c) => Ok(c),
            Conn::Postgres(_) => Err(self.sqlite_only()),
        }
    }

    fn sqlite_only(&self) -> Error {
        Error::Invalid(format!(
            "{}: this works on a SQLite catalogue only (a file copy, a synthetic benchmark catalogue); `lookbook migrate --from URL --to file.db` makes one",
            self.path.display()
        ))
    }

    /// Reads a setting.
    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        setting(&mut self.db()?, key)
    }

    /// Writes a setting.
    pub fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        set_setting(&mut self.db()?, key, value)
    }

    /// Folder the product image paths are relative to.
    pub fn image_root(&self) -> Result<PathBuf> {
        let root = self
            .setting("image_root")?
            .ok_or_else(|| Error::Invalid(format!("{}: no images imported yet", self.path.display())))?;
        let root = PathBuf::from(root);
        Ok(if root.is_absolute() {
            root
        } else {
            self.dir().join(root)
        })
    }

    /// Writes a consistent copy of the whole catalogue to `dest` (which must not exist), with
    /// the image root made absolute so the copy still finds the photos.
    pub fn copy_to(&self, dest: &Path) -> Result<()> {
        let root = self.image_root().ok();
        self.conn()?.execute("VACUUM INTO ?1", [dest.to_string_lossy()])?;
        let copy = Catalog::open(dest)?;
        if let Some(root) = root {
            let abs = root.canonicalize().unwrap_or(root);
            copy.set_setting("image_root", &abs.to_string_lossy())?;
        }
        Ok(())
    }

    /// Absolute path of a product's photo.
    pub fn image_path(&self, product: &Product) -> Result<PathBuf> {
        Ok(self.image_root()?.join(&product.image_path))
    }
}

/// A setting, on a connection or inside a transaction.
pub(crate) fn setting(db: &mut impl Db, key: &str) -> Result<Option<String>> {
    db.row("SELECT value FROM settings WHERE key = ?1", params![key])?
        .map(|r| r.get(0))
        .transpose()
}

/// Writes a setting, on a connection or inside a transaction.
pub(crate) fn set_setting(db: &mut impl Db, key: &str, value: &str) -> Result<()> {
    db.execute(
        "INSERT INTO settings(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_migrates_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let cat = Catalog::open(&path).unwrap();
        cat.set_setting("a", "1").unwrap();
        drop(cat);
        let cat = Catalog::open_existing(&path).unwrap();
        assert_eq!(cat.setting("a").unwrap().as_deref(), Some("1"));
        let v: i64 = cat
            .conn()
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
    }

    #[test]
    fn newer_schema_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let cat = Catalog::open(&path).unwrap();
        cat.conn().unwrap().pragma_update(None, "user_version", 99).unwrap();
        drop(cat);
        let err = Catalog::open(&path).err().unwrap().to_string();
        assert!(err.contains("schema version 99"), "{err}");
    }

    #[test]
    fn missing_file_says_how_to_create_it() {
        let err = Catalog::open_existing("/nonexistent/x.db").err().unwrap().to_string();
        assert!(err.contains("lookbook import"), "{err}");
    }

    #[test]
    fn garbage_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junk.db");
        std::fs::write(&path, vec![7u8; 4096]).unwrap();
        let err = Catalog::open(&path).err().unwrap().to_string();
        assert!(err.contains("junk.db"), "{err}");
    }
}
