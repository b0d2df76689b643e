//! The scriptable commands: one file per command, its flags (`clap::Args`) beside its handler,
//! each calling the library and printing its answer as a text table or JSON. `main.rs` only
//! dispatches; nothing here imports from it.
//!
//! | file | command |
//! | --- | --- |
//! | `import.rs` | `import` (catalogue files, `--customers`, `--interactions`) |
//! | `embed.rs` | `embed` |
//! | `similar.rs`, `recommend.rs`, `together.rs` | the rankings (`filters.rs`: their shared filters) |
//! | `users.rs`, `feedback.rs` | `users`; `like`, `unlike`, `dislike`, `likes` |
//! | `show.rs` | `show` (a photo printed with viuer) |
//! | `model.rs`, `train.rs`, `eval.rs` | the model, training a head or the feed, measuring both |
//! | `bench.rs` | `bench` and its modes (the measuring itself lives in `benchmarks/`) |
//! | `demo.rs`, `migrate.rs` | the demo; copying to PostgreSQL and back |
//! | `out.rs`, `table.rs`, `progress.rs` | printing: sanitised output, tables, progress bars |

pub mod bench;
pub mod demo;
pub mod embed;
pub mod eval;
pub mod feedback;
pub mod filters;
pub mod import;
pub mod migrate;
pub mod model;
pub mod out;
mod progress;
pub mod recommend;
pub mod show;
pub mod similar;
pub mod table;
pub mod together;
pub mod train;
pub mod users;

use anyhow::Result;
use lookbook::catalog::postgres::display_db;
use serde::Serialize;
use std::path::Path;

use lookbook::catalog::{Catalog, Product, ProductFilter};
use lookbook::recommend::Engine;
use lookbook::recommend::shown::ShownRow;
use lookbook::text::truncate;
use out::out;
pub use progress::KdamProgress;
use table::render;

/// Exit status when `import` or `embed` finished but skipped rows or photos (listed on stderr,
/// or in the JSON report).
const EXIT_SKIPPED: u8 = 3;

/// Prints `v` as pretty JSON on stdout.
pub fn print_json<T: Serialize>(v: &T) -> Result<()> {
    out::raw(&format!("{}\n", serde_json::to_string_pretty(v)?));
    Ok(())
}

/// The engine for one query: without a metadata filter, one that reads only the products it
/// shows (see [`Engine::load_for_query`]).
fn engine_for(cat: &Catalog, filter: &ProductFilter) -> Result<Engine> {
    Ok(if filter.is_empty() {
        Engine::load_for_query(cat)?
    } else {
        Engine::load(cat)?
    })
}

/// Prints ranked rows as a table; `with_reason` adds the "why" column.
fn print_results(rows: &[ShownRow], with_reason: bool) {
    let mut header = vec!["#", "id", "score", "articleType", "colour", "name"];
    if with_reason {
        header.push("why");
    }
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut v = vec![
                r.rank.to_string(),
                r.id.to_string(),
                format!("{:.3}", r.score),
                r.article_type.to_string(),
                r.colour.to_string(),
                truncate(r.name, 48),
            ];
            if with_reason {
                v.push(r.because.clone());
            }
            v
        })
        .collect();
    out!("{}", render(&header, &body));
}

/// A product in one line: id, name, type, colour and gender.
fn describe(p: &Product) -> String {
    format!("{} {} ({}, {}, {})", p.id, p.name, p.article_type, p.colour, p.gender)
}

/// The error and its causes on one line, each cause once: library errors already carry their
/// source's text, and anyhow's `{:#}` would repeat it ("database is locked: database is locked").
/// SQLite errors name the database file instead of SQLite's generic code.
pub fn error_message(e: &anyhow::Error, db: &Path) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        if cause.downcast_ref::<rusqlite::ffi::Error>().is_some() {
            continue; // "Error code 1: SQL logic error" adds nothing to SQLite's own message
        }
        let text = match cause.downcast_ref::<lookbook::Error>() {
            Some(lookbook::Error::Sqlite(inner)) => format!("{}: {inner}", display_db(db)),
            _ => cause.to_string(),
        };
        if msg.contains(&text) {
            continue;
        }
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&text);
    }
    // Whatever put the URL into a message, its password never reaches the terminal.
    lookbook::catalog::postgres::scrub(&msg.replace('\n', " "), &db.to_string_lossy())
}
