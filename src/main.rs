//! The `lookbook` binary: the terminal app (no subcommand) and the scriptable commands.
//! All work happens in the `lookbook` library. This file parses the command line and sends each
//! command to its front end: `cli` (one file per command, its flags beside it), `tui` (the
//! app), `serve` (the app over SSH) or `http` (the recommendations for web pages); the front
//! ends share library code, never each other's.

mod benchmarks;
mod cli;
mod http;
mod serve;
mod tui;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// A fashion recommender in the terminal: visual look-alikes and a personal "for you" feed.
#[derive(Parser, Debug)]
#[command(name = "lookbook", version, about, long_about = None)]
pub struct Cli {
    /// The catalogue database.
    #[arg(long, global = true, env = "LOOKBOOK_DB", default_value = "catalog.db")]
    pub db: PathBuf,
    /// Image protocol for the app and `show` (give it before the subcommand): auto, kitty, sixel, iterm2, halfblocks or none.
    #[arg(long, default_value = "auto")]
    pub images: String,
    /// User the app starts as.
    #[arg(long, default_value = "me")]
    pub user: String,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Every subcommand; each one's flags live beside its handler.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Import a catalogue: a Kaggle styles.csv, a Shopify, WooCommerce or H&M CSV, a Google
    /// Merchant feed (TSV or XML), or any CSV with --map; see docs/catalogues.md.
    Import(cli::import::Args),
    /// Compute missing image embeddings with the ResNet50.
    Embed(cli::embed::Args),
    /// The products that look most like a product or a photo.
    Similar(cli::similar::Args),
    /// A personal feed from the shop's whole history (what the user bought and liked, what
    /// others bought with it, what sells now); with --item, blended with its look-alikes.
    Recommend(cli::recommend::Args),
    /// List, add or remove users.
    Users(cli::users::Args),
    /// Like products.
    Like(cli::feedback::FeedbackArgs),
    /// Forget likes or dislikes of products.
    Unlike(cli::feedback::FeedbackArgs),
    /// Dislike products.
    Dislike(cli::feedback::FeedbackArgs),
    /// A user's likes and dislikes.
    Likes(cli::feedback::LikesArgs),
    /// What shoppers bought with a product (from the shop's history).
    Together(cli::together::Args),
    /// Print a product's photo and metadata in the terminal.
    Show(cli::show::Args),
    /// The active model, or fetch the ImageNet weights.
    Model(cli::model::Args),
    /// Measure look-alike (and with --personal, feed) quality against baselines.
    Eval(cli::eval::Args),
    /// Train a projection head on the backbone vectors of this catalogue; with --feed, the
    /// feed's blend and model on the shop's history.
    Train(cli::train::Args),
    /// Benchmarks: query and feed latency, embedding speed, app start-up, memory; modes as
    /// subcommands (one-shot, feed, serve, http, postgres).
    Bench(cli::bench::Args),
    /// Install the bundled demo and model into the data folder, then create the database from
    /// the demo (import + embed) if it does not exist.
    Demo(cli::demo::Args),
    /// Print the app's key bindings (the same table the app's help shows).
    Keys,
    /// Serve the app over SSH to many people at once from this process (see the README).
    Serve(serve::Options),
    /// Serve look-alikes, feeds and events to a shop's web pages over HTTP with JSON (see
    /// docs/http.md).
    Http(http::Options),
    /// Copy a whole catalogue between a SQLite file and a PostgreSQL database, either way
    /// (see docs/postgres.md).
    Migrate(cli::migrate::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let db = cli.db.clone();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            cli::out::stderr(&format!("error: {}\n", cli::error_message(&e, &db)));
            ExitCode::FAILURE
        }
    }
}

/// Runs one parsed command line: the app without a subcommand, else the command's handler.
fn run(cli: Cli) -> Result<ExitCode> {
    let db = cli.db;
    let Some(command) = cli.command else {
        // A new demo (or a catalogue without vectors) opens at once and embeds its photos in
        // the app, off the UI thread.
        let embed = cli::demo::ensure_demo(&db, false)?;
        tui::run(&db, &cli.images, &cli.user, embed)?;
        return Ok(ExitCode::SUCCESS);
    };
    match command {
        Command::Import(a) => cli::import::run(&db, a),
        Command::Embed(a) => cli::embed::run(&db, a),
        Command::Similar(a) => cli::similar::run(&db, a),
        Command::Recommend(a) => cli::recommend::run(&db, a),
        Command::Users(a) => cli::users::run(&db, a),
        Command::Like(a) => cli::feedback::run(&db, a, Some(1.0)),
        Command::Dislike(a) => cli::feedback::run(&db, a, Some(-1.0)),
        Command::Unlike(a) => cli::feedback::run(&db, a, None),
        Command::Likes(a) => cli::feedback::likes(&db, a),
        Command::Together(a) => cli::together::run(&db, a),
        Command::Show(a) => cli::show::run(&db, a, &cli.images),
        Command::Model(a) => cli::model::run(&db, a),
        Command::Eval(a) => cli::eval::run(&db, a),
        Command::Train(a) => cli::train::run(&db, a),
        Command::Bench(a) => cli::bench::run(&db, a),
        Command::Demo(a) => cli::demo::run(&db, a),
        Command::Keys => {
            cli::out::out!("{}", tui::keys::markdown_tables());
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(opts) => serve::run(&db, opts).map(|()| ExitCode::SUCCESS),
        Command::Http(opts) => http::run(&db, opts).map(|()| ExitCode::SUCCESS),
        Command::Migrate(a) => cli::migrate::run(&db, a),
    }
}
