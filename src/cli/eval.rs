//! `lookbook eval`: look-alike quality on the held-out split, and the feed's on simulated users
//! or the shop's own history, each beside baselines.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::out::{errln, out, outln};
use super::table::render;
use super::{KdamProgress, print_json};
use lookbook::catalog::Catalog;
use lookbook::eval;
use lookbook::eval::shop::{self as shop_eval, Report};
use lookbook::recommend::Engine;
use lookbook::recommend::shop::History;

/// Flags of `eval`.
#[derive(clap::Args, Debug)]
pub struct Args {
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

/// Runs `eval`.
pub fn run(db: &Path, a: Args) -> Result<ExitCode> {
    let cat = Catalog::open_existing(db)?;
    let progress = KdamProgress::new();
    if a.k == Some(0) {
        bail!("-k must be at least 1");
    }
    if a.histories && cat.event_count()? > 0 {
        if a.days < 1 {
            bail!("--days must be at least 1");
        }
        let split = match &a.split {
            Some(s) => Some(
                lookbook::dates::parse_time(s).with_context(|| format!("--split {s:?} is not a date (YYYY-MM-DD)"))?,
            ),
            None => None,
        };
        let opts = eval::shop::Options {
            k: a.k.unwrap_or(12),
            days: a.days,
            split,
            users: a.users.unwrap_or(usize::MAX).max(1),
            seed: a.seed,
            fit: !a.no_fit,
        };
        return shop(&cat, &opts, a.json);
    }
    let k = a.k.unwrap_or(10);
    let users = a.users.unwrap_or(300);
    if a.personal {
        let engine = Engine::load(&cat)?;
        if let Some(d) = a.mmr.iter().find(|d| !(0.0..=1.0).contains(*d)) {
            bail!("--mmr levels must be between 0 and 1, got {d}");
        }
        let opts = eval::personal::Options {
            users,
            k,
            seed: a.seed,
            mmr: a.mmr.clone(),
        };
        let r = if a.histories {
            let (users, too_short, all) = eval::personal::sample_stored(&cat, &engine, opts.users, opts.seed)?;
            if users.is_empty() {
                bail!(
                    "{}: no user has two likes of embedded products to measure on ({all} users); import a history with `lookbook import --interactions FILE`, or drop --histories to simulate users",
                    db.display()
                );
            }
            eval::personal::evaluate_users(&engine, users, too_short, "stored", &opts, &progress)?
        } else {
            eval::personal::evaluate(&engine, &opts, &progress)?
        };
        if a.json {
            print_json(&r)?;
        } else {
            let whose = match r.source.as_str() {
                "stored" => format!(
                    "{} users' stored histories ({} with too few likes left out)",
                    r.users, r.too_short
                ),
                _ => format!("{} simulated users", r.users),
            };
            outln!("personal feed, {whose}, newest like held out, k = {}", r.k);
            let body: Vec<Vec<String>> = r
                .methods
                .iter()
                .map(|m| {
                    vec![
                        m.method.clone(),
                        format!("{:.3}", m.hit_rate),
                        format!("{:.3}", m.ndcg),
                        format!("{:.3}", m.taste_precision),
                        format!("{:.3}", m.diversity),
                        format!("{:.3}", m.coverage),
                    ]
                })
                .collect();
            out!(
                "{}",
                render(
                    &["method", "hit@k", "nDCG@k", "taste P@k", "diversity", "coverage"],
                    &body
                )
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let queries = match &a.queries {
        Some(f) => {
            let text = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
            let mut ids = Vec::new();
            for (i, line) in text.lines().enumerate() {
                let t = line.trim();
                if t.is_empty() || t.starts_with('#') {
                    continue;
                }
                ids.push(
                    t.parse::<i64>()
                        .with_context(|| format!("{}:{}: {t:?} is not a product id", f.display(), i + 1))?,
                );
            }
            Some(ids)
        }
        None => None,
    };
    let opts = eval::retrieval::Options {
        k,
        level: a.level.parse()?,
        queries,
        baselines: !a.no_baselines,
        curve_k: k.max(20),
        levers: a.levers.iter().map(|l| l.parse()).collect::<lookbook::Result<_>>()?,
    };
    let r = eval::retrieval::evaluate(&cat, &opts, &progress)?;
    if let Some(p) = &a.plot {
        eval::plot::precision_curve(&r, p)?;
        errln!("wrote {}", p.display());
    }
    if a.json {
        print_json(&r)?;
    } else {
        outln!(
            "look-alikes by {:?}: {} held-out queries against a gallery of {}, k = {}",
            r.level,
            r.queries,
            r.gallery,
            r.k
        );
        let body: Vec<Vec<String>> = r
            .methods
            .iter()
            .map(|m| {
                let x = &m.metrics;
                vec![
                    m.method.clone(),
                    format!("{:.3}", x.precision),
                    format!("{:.3}", x.recall),
                    format!("{:.3}", x.map),
                    format!("{:.3}", x.ndcg),
                    format!("{:.3}", x.hit_rate),
                    format!("{:.3}", x.diversity),
                    format!("{:.3}", x.coverage),
                ]
            })
            .collect();
        out!(
            "{}",
            render(
                &[
                    "method",
                    "P@k",
                    "R@k",
                    "mAP@k",
                    "nDCG@k",
                    "hit@k",
                    "diversity",
                    "coverage"
                ],
                &body
            )
        );
        for m in &r.methods {
            outln!("  {:<16} {}", m.method, m.description);
        }
        outln!(
            "\nby label: macro P@k (each type once), and rare types (under {} training-side products; {} of the queries) against the rest",
            r.rare_under,
            r.rare_queries
        );
        let body: Vec<Vec<String>> = r
            .methods
            .iter()
            .map(|m| {
                let c = m.prototypes.classifier.as_ref();
                let cell = |x: Option<f64>| x.map_or("-".into(), |x| format!("{x:.3}"));
                vec![
                    m.method.clone(),
                    format!("{:.3}", m.macro_precision),
                    format!("{:.3}", m.rare_precision),
                    format!("{:.3}", m.common_precision),
                    format!("{:.3}", m.prototypes.retrieval.p_at_1),
                    format!("{:.3}", m.prototypes.retrieval.p_at_10),
                    format!("{:.3}", m.prototypes.retrieval.mrr),
                    cell(c.map(|c| c.common_top1)),
                    cell(c.map(|c| c.rare_top1)),
                ]
            })
            .collect();
        out!(
            "{}",
            render(
                &[
                    "method",
                    "macro P@k",
                    "rare P@k",
                    "common P@k",
                    "proto P@1",
                    "proto P@10",
                    "proto MRR",
                    "top-1 common",
                    "top-1 rare"
                ],
                &body
            )
        );
        outln!(
            "proto: each type's mean training-side vector ranks the held-out products (macro over types; supervised, unlike zero-shot text queries). top-1: nearest prototype of even-year products classifies odd-year ones, the 20 commonest types and the rest."
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `eval --personal --histories` on a catalogue with events: the date split.
fn shop(cat: &Catalog, opts: &shop_eval::Options, json: bool) -> Result<ExitCode> {
    let engine = Engine::load(cat)?;
    let history = History::load(cat)?;
    let r = shop_eval::evaluate(&engine, &history, opts, &KdamProgress::new())?;
    if json {
        print_json(&r)?;
    } else {
        print_report(&r);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_report(r: &Report) {
    outln!(
        "the feed on the shop's history: {} events before {}, then {} days; {} shoppers who bought in them, k = {}",
        r.past_events,
        r.split_date,
        r.days,
        r.users,
        r.k
    );
    if let Some(f) = &r.fit {
        outln!(
            "blend fitted on the past alone ({} shoppers from {}): MAP {:.4} against the defaults' {:.4}",
            f.users,
            shop_eval::date_of(f.held_out_from),
            f.fitted_map,
            f.default_map
        );
    }
    let segments: Vec<String> = r
        .methods
        .first()
        .map(|m| m.segments.iter().map(|(s, v)| format!("{s} ({})", v.users)).collect())
        .unwrap_or_default();
    let mut header: Vec<String> = ["method", "MAP@k", "recall@k", "hit@k", "nDCG@k", "coverage"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    header.extend(segments.iter().map(|s| format!("MAP {s}")));
    let body: Vec<Vec<String>> = r
        .methods
        .iter()
        .map(|m| {
            let mut v = vec![
                m.method.clone(),
                format!("{:.4}", m.all.map),
                format!("{:.4}", m.all.recall),
                format!("{:.3}", m.all.hit),
                format!("{:.4}", m.all.ndcg),
                format!("{:.3}", m.coverage),
            ];
            v.extend(m.segments.iter().map(|(_, s)| format!("{:.4}", s.map)));
            v
        })
        .collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    out!("{}", render(&header, &body));
}
