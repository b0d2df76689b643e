//! The library's error type: every variant names the file, row, tensor or id it is about.

use std::path::PathBuf;

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the lookbook library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// SQLite failed.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A PostgreSQL error.
    #[error("PostgreSQL: {}", postgres_detail(.0))]
    Postgres(#[from] postgres::Error),
    /// The catalogue was written by a newer lookbook.
    #[error(
        "{}: schema version {found} is newer than this lookbook understands ({supported}); upgrade lookbook",
        path.display()
    )]
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// Version found in the file.
        found: i64,
        /// Newest version this binary knows.
        supported: i64,
    },
    /// No catalogue exists at the given path.
    #[error("{}: no catalogue here; create one with `lookbook import --images DIR --metadata styles.csv`", .0.display())]
    NoCatalogue(PathBuf),
    /// The metadata file cannot be used at all (not a row-level problem).
    #[error("{}: {message}", path.display())]
    Metadata {
        /// The CSV file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// An image could not be decoded.
    #[error("{}: {reason}", path.display())]
    Image {
        /// The image file.
        path: PathBuf,
        /// Why it could not be used.
        reason: String,
    },
    /// A weights file is unusable (missing tensor, wrong shape, bad format).
    #[error("{}: {message}", path.display())]
    Weights {
        /// The weights file.
        path: PathBuf,
        /// What is wrong, naming the tensor where there is one.
        message: String,
    },
    /// No weights were found in any of the searched places.
    #[error("no model weights found; looked in:\n{}\nThe shipped fashion model lives in the repository's models/ folder; or pass --weights FILE, set LOOKBOOK_WEIGHTS, or run `lookbook model fetch` for the ImageNet ResNet50", searched.iter().map(|p| format!("  {}", p.display())).collect::<Vec<_>>().join("\n"))]
    WeightsNotFound {
        /// Every place that was tried, in order.
        searched: Vec<PathBuf>,
    },
    /// A tensor computation failed.
    #[error("tensor: {0}")]
    Candle(#[from] candle_core::Error),
    /// A product, user or model that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// An argument or stored value that makes no sense.
    #[error("{0}")]
    Invalid(String),
    /// The catalogue has no embeddings (for the active model) yet.
    #[error("no embeddings{} yet; run `lookbook embed` first", model.as_ref().map(|m| format!(" for model {m}")).unwrap_or_default())]
    NoEmbeddings {
        /// The active model's display name, when there is one.
        model: Option<String>,
    },
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// A PostgreSQL error as its server or cause says it: the client's own `Display` stops at "db
/// error", which cannot tell a wrong password from a missing database.
pub fn postgres_detail(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = db.message().to_string();
        if let Some(hint) = db.hint() {
            s.push_str(&format!(" ({hint})"));
        }
        return s;
    }
    if e.is_closed() {
        return "the connection to the database is closed (is the server running? lookbook reconnects by itself)"
            .into();
    }
    let mut s = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        s.push_str(&format!(": {c}"));
        cause = c.source();
    }
    s
}
