//! The `lookbook` binary: the terminal app (no subcommand) and the scriptable commands.
//! All work happens in the `lookbook` library. This file parses arguments and sends each command
//! to its front end: `cli` (text and JSON commands), `tui` (the app), `serve` (the app over
//! SSH) or `http` (the recommendations for web pages); the front ends share library code, never
//! each other's.

mod benchmarks;
mod cli;
mod http;
mod serve;
mod tui;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
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

/// Filters shared by ranking commands.
#[derive(Args, Debug, Clone, Default)]
pub struct FilterArgs {
    /// Only this category (any level: Footwear, Shoes, Casual Shoes, ...).
    #[arg(long)]
    pub category: Option<String>,
    /// Only this gender.
    #[arg(long)]
    pub gender: Option<String>,
    /// Only this colour.
    #[arg(long, alias = "color")]
    pub colour: Option<String>,
    /// Only this brand.
    #[arg(long)]
    pub brand: Option<String>,
    /// Only products priced at least this (in the catalogue's currency).
    #[arg(long)]
    pub min_price: Option<f64>,
    /// Only products priced at most this.
    #[arg(long)]
    pub max_price: Option<f64>,
    /// Only products in stock.
    #[arg(long)]
    pub in_stock: bool,
}

/// Every subcommand.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Import a catalogue: a Kaggle styles.csv, a Shopify, WooCommerce or H&M CSV, a Google
    /// Merchant feed (TSV or XML), or any CSV with --map; see docs/catalogues.md.
    Import {
        /// Folder of photos: local ones by their path, photo URLs by the path of the URL (an
        /// offline copy of the shop's CDN).
        #[arg(long)]
        images: Option<PathBuf>,
        /// The catalogue file (its format is told from its header or XML root).
        #[arg(long, required_unless_present_any = ["interactions", "customers"])]
        metadata: Option<PathBuf>,
        /// A shop's history: `user,product,time[,kind][,count][,price]` or H&M's
        /// transactions_train.csv, each row an event of its user (made if new); rows with a
        /// `weight` (or kind like/dislike) are likes and dislikes. Importing it again adds nothing.
        #[arg(long)]
        interactions: Option<PathBuf>,
        /// Shoppers' age and gender: `customer_id,age,gender` (H&M's customers.csv), for best
        /// sellers per group.
        #[arg(long)]
        customers: Option<PathBuf>,
        /// The format, when detection guesses wrong: kaggle, shopify, merchant-tsv,
        /// merchant-xml, woocommerce, hm, mapped.
        #[arg(long)]
        format: Option<String>,
        /// For any CSV or TSV: which column holds a field (`--map id=Code --map image=Photo`);
        /// repeat it for each field.
        #[arg(long = "map", value_name = "FIELD=COLUMN")]
        map: Vec<String>,
        /// The feed is the whole catalogue: shop products it no longer has are unlisted
        /// (hidden from look-alikes and feeds, likes kept) until a feed has them again.
        #[arg(long)]
        prune: bool,
        /// With --prune: unlist what the feed lacks even when that is most of the shop (without
        /// it, --prune refuses to unlist more than a fifth, or anything after a read error).
        #[arg(long)]
        prune_force: bool,
        /// Photo URLs may reach these hosts though they are loopback or private (the shop's
        /// own CDN): `host` or `host:port`, comma-separated. Kept for later imports and the app.
        #[arg(long, value_delimiter = ',')]
        allow_hosts: Vec<String>,
        /// Seconds after which no photo download starts (those running finish, within 30 s
        /// each); the photos left are reported as skipped. Default: no limit.
        #[arg(long)]
        timeout: Option<u64>,
        /// Write every skipped row and photo to this file (the terminal shows the first few).
        #[arg(long)]
        skipped: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Compute missing image embeddings with the ResNet50.
    Embed {
        /// Weights file (.safetensors); default: LOOKBOOK_WEIGHTS, models/ beside the db, the data dir, the repo's models/.
        #[arg(long)]
        weights: Option<PathBuf>,
        /// Images per forward pass.
        #[arg(long, default_value_t = lookbook::embedding::DEFAULT_BATCH)]
        batch: usize,
        /// Feature pooling: avg, max, or gem (generalised mean; gem2 to gem8 name its power, gem is gem3).
        #[arg(long, default_value = "avg")]
        pooling: String,
        /// Arithmetic: bf16 (AMX tiles where the CPU has them; no loss in `eval`) or f32. Each
        /// is its own model: switching embeds the catalogue again. Default: what the catalogue's
        /// active model uses, bf16 for a new one.
        #[arg(long)]
        precision: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The products that look most like a product or a photo.
    Similar {
        /// The query product: the shop's id or a SKU, or the catalogue's number.
        id: Option<String>,
        /// Or a photo file (embedded on the fly with the active model).
        #[arg(long, conflicts_with = "id")]
        image: Option<PathBuf>,
        /// Number of results.
        #[arg(short, long, default_value_t = 10)]
        k: usize,
        #[command(flatten)]
        filter: FilterArgs,
        /// Weights for a photo query (default: the usual search).
        #[arg(long)]
        weights: Option<PathBuf>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// A personal feed from the shop's whole history (what the user bought and liked, what
    /// others bought with it, what sells now); with --item, blended with its look-alikes.
    Recommend {
        /// The user (one the catalogue does not know gets what sells now).
        #[arg(long)]
        user: String,
        /// Blend with look-alikes of this product (shop id, SKU or number).
        #[arg(long)]
        item: Option<String>,
        /// Number of results.
        #[arg(short, long, default_value_t = 10)]
        k: usize,
        /// Weight of the item against the taste profile (0..1).
        #[arg(long, default_value_t = lookbook::recommend::DEFAULT_ALPHA)]
        alpha: f32,
        /// Diversity (0 = off .. 1): the feed discounts each further product of a kind already
        /// shown (default: the trained blend's); with --item, MMR (default 0.3).
        #[arg(long)]
        diversity: Option<f32>,
        /// Days after which a like counts half.
        #[arg(long, default_value_t = lookbook::recommend::DEFAULT_HALF_LIFE_DAYS)]
        half_life: f32,
        #[command(flatten)]
        filter: FilterArgs,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// List, add or remove users.
    Users {
        #[command(subcommand)]
        action: Option<UsersAction>,
        /// JSON output.
        #[arg(long, global = true)]
        json: bool,
    },
    /// Like products.
    Like(FeedbackArgs),
    /// Forget likes or dislikes of products.
    Unlike(FeedbackArgs),
    /// Dislike products.
    Dislike(FeedbackArgs),
    /// A user's likes and dislikes.
    Likes {
        /// The user.
        #[arg(long)]
        user: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// What shoppers bought with a product (from the shop's history).
    Together(cli::feed::TogetherArgs),
    /// Print a product's photo and metadata in the terminal.
    Show {
        /// The product: the shop's id or a SKU, or the catalogue's number.
        id: String,
        /// Width of the picture in terminal cells.
        #[arg(long, default_value_t = 40)]
        width: u32,
    },
    /// The active model, or fetch the ImageNet weights.
    Model {
        #[command(subcommand)]
        action: ModelAction,
    },
    /// Measure look-alike (and with --personal, feed) quality against baselines.
    Eval(EvalArgs),
    /// Train a projection head on the backbone vectors of this catalogue; with --feed, the
    /// feed's blend and model on the shop's history.
    Train {
        /// Instead: learn the feed from the shop's history (the last --days held out to fit
        /// the blend) and store it; `recommend` and the app use it.
        #[arg(long)]
        feed: bool,
        /// With --feed: days held out to fit the blend.
        #[arg(long, default_value_t = 7, requires = "feed")]
        days: i64,
        /// Output dimension.
        #[arg(long, default_value_t = 256)]
        dim: usize,
        /// Maximum epochs.
        #[arg(long, default_value_t = 80)]
        epochs: usize,
        /// Learning rate.
        #[arg(long, default_value_t = 2e-3)]
        lr: f64,
        /// Early-stopping patience in epochs.
        #[arg(long, default_value_t = 10)]
        patience: usize,
        /// Seed.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Activate the head even if it does not beat the backbone.
        #[arg(long)]
        force: bool,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Benchmarks: query and feed latency, embedding speed, app start-up, memory.
    Bench {
        /// Smaller sizes, for a quick look.
        #[arg(long)]
        quick: bool,
        /// Internal: measure the app on --db in this process and print JSON (the parent
        /// `bench` runs it in a fresh process so memory figures are the app's own).
        #[arg(long, hide = true)]
        app_child: bool,
        /// Also time embedding on this catalogue's photos (needs weights).
        #[arg(long)]
        embed: bool,
        /// Instead: time `similar` and `recommend` as one-shot processes on catalogues of
        /// 5 x 10^4 x 2048 and 10^6 x 256 that it writes (with --quick, 10^4 x 2048), then
        /// `similar ID` and `similar --image PHOTO` on --db if it is embedded.
        #[arg(long)]
        one_shot: bool,
        /// Instead: the feed from a shop's history at 10^6 purchases, 10^5 shoppers and 5 x
        /// 10^4 products (with --quick, a tenth): import, `train --feed` (time, peak memory),
        /// one-shot `recommend` and a like's re-rank, each beside the one-vector feed of before.
        #[arg(long)]
        feed: bool,
        /// Internal: write a synthetic catalogue of `PRODUCTS,DIM` at --db (the one-shot
        /// benchmark writes its catalogues in a child, so its own memory stays small).
        #[arg(long, hide = true)]
        write_synthetic: Option<String>,
        /// Internal, with --write-synthetic: store the vectors under this catalogue's active
        /// model, so a photo query on it loads real weights.
        #[arg(long, hide = true)]
        synthetic_model_of: Option<PathBuf>,
        /// Instead: load `lookbook serve` with SSH clients (memory, key-to-frame latency, likes),
        /// on a copy of --db, or on --products synthetic products.
        #[arg(long)]
        serve: bool,
        /// Instead: load `lookbook http` with the load generator wrk on loopback (5 x 10^4
        /// products x 2048, a synthetic history): p50/p99 and requests a second for similar,
        /// feed and events, events stored a second, memory over a longer mixed run.
        #[arg(long)]
        http: bool,
        /// With --serve or --http: connections at once.
        #[arg(long, default_value_t = 50)]
        connections: usize,
        /// With --serve: serve this many synthetic products instead of a copy of --db.
        #[arg(long)]
        products: Option<usize>,
        /// With --serve: seconds of key presses; with --http: seconds of load per route.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Instead: copy --db (or --products synthetic products of --dim) into this empty
        /// PostgreSQL database (`postgres://...`) and compare search there (exact, and
        /// pgvector's HNSW) with the in-memory exact scan.
        #[arg(long)]
        postgres: Option<String>,
        /// With --postgres and --products: vector length of the synthetic products.
        #[arg(long, default_value_t = 256)]
        dim: usize,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Install the bundled demo and model into the data folder, then create the database from
    /// the demo (import + embed) if it does not exist.
    Demo {
        /// A lookbook checkout to install from (default: the source tree this binary was built from).
        #[arg(long)]
        from: Option<PathBuf>,
    },
    /// Print the app's key bindings (the same table the app's help shows).
    Keys,
    /// Serve the app over SSH to many people at once from this process (see the README).
    Serve(serve::Options),
    /// Serve look-alikes, feeds and events to a shop's web pages over HTTP with JSON (see
    /// docs/http.md).
    Http(http::Options),
    /// Copy a whole catalogue between a SQLite file and a PostgreSQL database, either way
    /// (see docs/postgres.md).
    Migrate {
        /// Where to copy to: `postgres://...` (an empty database) or a new SQLite file.
        #[arg(long)]
        to: String,
        /// Where to copy from (default: --db).
        #[arg(long)]
        from: Option<String>,
        /// The vector index built in PostgreSQL after the copy: `auto` (HNSW below 100,000
        /// vectors per model, IVFFlat from there, which builds in about a minute at 10^6),
        /// `hnsw` or `ivfflat`.
        #[arg(long, value_enum, default_value_t = IndexArg::Auto)]
        index: IndexArg,
        /// Print the rows copied as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `migrate --index`: which pgvector index each model gets.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum IndexArg {
    /// HNSW below 100,000 vectors per model, IVFFlat from there.
    Auto,
    /// HNSW (pgvector's graph index).
    Hnsw,
    /// IVFFlat (pgvector's inverted lists).
    Ivfflat,
}

impl From<IndexArg> for lookbook::catalog::postgres::IndexChoice {
    fn from(a: IndexArg) -> Self {
        match a {
            IndexArg::Auto => Self::Auto,
            IndexArg::Hnsw => Self::Hnsw,
            IndexArg::Ivfflat => Self::IvfFlat,
        }
    }
}

/// Arguments of `eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Cut-off (default 10; 12 with --histories on a shop's events, as the H&M competition).
    #[arg(short, long)]
    pub k: Option<usize>,
    /// Relevance label: articleType, subCategory, masterCategory, colour, gender.
    #[arg(long, default_value = "articleType")]
    pub level: String,
    /// File of query ids (one per line); default: the held-out split.
    #[arg(long)]
    pub queries: Option<PathBuf>,
    /// Skip the photo baselines (faster).
    #[arg(long)]
    pub no_baselines: bool,
    /// Also score neighbourhood re-rankings of the model's vectors beside the plain ones,
    /// comma-separated: dbaN (each product mixed with its N nearest), qeN (each query with
    /// its N best), dbaN+qeM; @ALPHA sets the weighting power (default 3), as in qe3@1.
    #[arg(long, value_delimiter = ',')]
    pub levers: Vec<String>,
    /// Write an SVG plot of precision@k for every method.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Evaluate the personal feed with simulated users instead.
    #[arg(long)]
    pub personal: bool,
    /// With --personal: measure on the catalogue's own history instead of simulated users. With
    /// events (`import --interactions`): the feed learns from everything before --split and
    /// ranks for each shopper who bought in the --days after it (MAP@12, beside baselines);
    /// with likes alone, each user's newest like is held out.
    #[arg(long, requires = "personal")]
    pub histories: bool,
    /// With --histories: the first held-out day, YYYY-MM-DD (default: --days before the end).
    #[arg(long, requires = "histories")]
    pub split: Option<String>,
    /// With --histories: days held out after the split.
    #[arg(long, default_value_t = 7, requires = "histories")]
    pub days: i64,
    /// With --histories: use the default blend instead of fitting one on the past.
    #[arg(long, requires = "histories")]
    pub no_fit: bool,
    /// Users for --personal: simulated (default 300), or at most this many stored ones (a
    /// seeded sample; default all).
    #[arg(long)]
    pub users: Option<usize>,
    /// Seed for --personal.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// MMR diversity levels to compare with the plain feed in --personal (comma-separated, 0..1).
    #[arg(long, value_delimiter = ',', default_value = "0.3")]
    pub mmr: Vec<f32>,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

/// `like`, `unlike`, `dislike`.
#[derive(Args, Debug)]
pub struct FeedbackArgs {
    /// The user (created if new).
    #[arg(long)]
    pub user: String,
    /// Products: the shop's ids or SKUs, or the catalogue's numbers.
    #[arg(required = true)]
    pub ids: Vec<String>,
}

/// `users` actions.
#[derive(Subcommand, Debug)]
pub enum UsersAction {
    /// List users (the default).
    List,
    /// Add a user.
    Add {
        /// Name.
        name: String,
    },
    /// Remove a user and all their likes.
    Remove {
        /// Name.
        name: String,
    },
}

/// `model` actions.
#[derive(Subcommand, Debug)]
pub enum ModelAction {
    /// The active model, its weights and how many products it has embedded.
    Info {
        /// Weights file to check (default: the usual search).
        #[arg(long)]
        weights: Option<PathBuf>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Download the ImageNet ResNet50 (torchvision weights, safetensors) into the data dir.
    Fetch,
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

/// Runs one parsed command line: the commands (`cli`), the app (`tui`) or the server (`serve`).
fn run(cli: Cli) -> Result<ExitCode> {
    let db = cli.db.clone();
    let Some(command) = cli.command else {
        // A new demo (or a catalogue without vectors) opens at once and embeds its photos in
        // the app, off the UI thread.
        let embed = cli::ensure_demo(&db, false)?;
        tui::run(&db, &cli.images, &cli.user, embed)?;
        return Ok(ExitCode::SUCCESS);
    };
    match command {
        Command::Import {
            images,
            metadata,
            format,
            map,
            prune,
            prune_force,
            allow_hosts,
            timeout,
            interactions,
            customers,
            skipped,
            json,
        } => {
            let mut code = ExitCode::SUCCESS;
            if let Some(metadata) = metadata {
                code = cli::import(
                    &db,
                    images.as_deref(),
                    &metadata,
                    format.as_deref(),
                    &map,
                    match (prune, prune_force) {
                        (_, true) => lookbook::ingest::Prune::Force,
                        (true, false) => lookbook::ingest::Prune::Safe,
                        (false, false) => lookbook::ingest::Prune::Off,
                    },
                    &allow_hosts,
                    timeout.map(std::time::Duration::from_secs),
                    skipped.as_deref(),
                    json,
                )?;
            }
            // Shoppers first: an interactions file then finds them made.
            if let Some(file) = customers {
                let c = cli::feed::import_customers(&db, &file, json)?;
                if c != ExitCode::SUCCESS {
                    code = c;
                }
            }
            match interactions {
                Some(file) => {
                    cli::import_interactions(&db, &file, json).map(|c| if c == ExitCode::SUCCESS { code } else { c })
                }
                None => Ok(code),
            }
        }
        Command::Embed {
            weights,
            batch,
            pooling,
            precision,
            json,
        } => cli::embed(&db, weights.as_deref(), batch, &pooling, precision.as_deref(), json),
        Command::Similar {
            id,
            image,
            k,
            filter,
            weights,
            json,
        } => cli::similar(&db, id, image.as_deref(), k, &filter, weights.as_deref(), json),
        Command::Recommend {
            user,
            item,
            k,
            alpha,
            diversity,
            half_life,
            filter,
            json,
        } => cli::recommend(&db, &user, item, k, alpha, diversity, half_life, &filter, json),
        Command::Users { action, json } => cli::users(&db, action, json),
        Command::Like(a) => cli::feedback(&db, a, Some(1.0)),
        Command::Dislike(a) => cli::feedback(&db, a, Some(-1.0)),
        Command::Unlike(a) => cli::feedback(&db, a, None),
        Command::Likes { user, json } => cli::likes(&db, &user, json),
        Command::Show { id, width } => cli::show(&db, &id, width, &cli.images),
        Command::Model {
            action: ModelAction::Info { weights, json },
        } => cli::model_info(&db, weights.as_deref(), json),
        Command::Model {
            action: ModelAction::Fetch,
        } => cli::model_fetch(),
        Command::Eval(args) => cli::evaluate(&db, args),
        Command::Train {
            feed: true,
            days,
            seed,
            json,
            ..
        } => cli::feed::train(&db, days, seed, json),
        Command::Together(a) => cli::feed::together(&db, a),
        Command::Train {
            dim,
            epochs,
            lr,
            patience,
            seed,
            force,
            json,
            ..
        } => {
            let s = lookbook::train::Settings {
                dim,
                epochs,
                lr,
                patience,
                seed,
                ..Default::default()
            };
            cli::train_head(&db, &s, force, json)
        }
        Command::Bench {
            postgres: Some(url),
            products,
            dim,
            json,
            ..
        } => cli::bench::print_postgres(&benchmarks::postgres::run(&db, &url, products.map(|n| (n, dim)))?, json),
        Command::Bench {
            serve: true,
            connections,
            products,
            seconds,
            json,
            ..
        } => cli::bench::print_serve(&benchmarks::serve::run(&db, products, connections, seconds)?, json),
        Command::Bench {
            http: true,
            quick,
            connections,
            seconds,
            json,
            ..
        } => cli::bench::print_http(&benchmarks::http::run(quick, seconds, connections)?, json),
        Command::Bench {
            write_synthetic: Some(size),
            synthetic_model_of,
            ..
        } => {
            benchmarks::oneshot::write_child(&db, &size, synthetic_model_of.as_deref())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            feed: true,
            quick,
            json,
            ..
        } => cli::bench::print_feed(&benchmarks::feed::run(quick)?, json),
        Command::Bench {
            one_shot: true,
            quick,
            json,
            ..
        } => cli::bench::print_one_shot(&benchmarks::oneshot::run(quick, &db)?, json),
        Command::Bench { app_child: true, .. } => {
            benchmarks::app::app_child(&db)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench { quick, embed, json, .. } => cli::bench::print(&benchmarks::run(&db, quick, embed)?, json),
        Command::Demo { from } => {
            match (
                from.as_deref(),
                lookbook::bundled::source_dir(),
                lookbook::bundled::installed_demo(),
            ) {
                (None, None, Some(demo)) => cli::out::errln!("using the installed demo ({})", demo.display()),
                (from, _, _) => {
                    let installed = lookbook::bundled::install(from)?;
                    cli::out::errln!(
                        "{} the demo ({}) and the model ({})",
                        if installed.copied {
                            "installed"
                        } else {
                            "already installed:"
                        },
                        installed.demo.display(),
                        installed.model.display()
                    );
                }
            }
            cli::ensure_demo(&db, true)?;
            cli::out::outln!(
                "{} is ready; open it with `lookbook --db {}`",
                lookbook::catalog::postgres::display_db(&db),
                lookbook::catalog::postgres::display_db(&db)
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(opts) => {
            serve::run(&db, opts)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Http(opts) => {
            http::run(&db, opts)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Keys => {
            cli::out::out!("{}", tui::keys::markdown_tables());
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate { to, from, index, json } => {
            let from = from.unwrap_or_else(|| db.to_string_lossy().into_owned());
            cli::migrate(&from, &to, index.into(), json)
        }
    }
}
