//! `lookbook like`, `unlike`, `dislike` and `likes`: a user's feedback on products.

use anyhow::Result;
use serde::Serialize;
use serde_json::json;
use std::path::Path;
use std::process::ExitCode;

use super::out::{out, outln};
use super::print_json;
use super::table::render;
use lookbook::catalog::{Catalog, Product};
use lookbook::text::truncate;

/// `like`, `unlike`, `dislike`.
#[derive(clap::Args, Debug)]
pub struct FeedbackArgs {
    /// The user (created if new).
    #[arg(long)]
    pub user: String,
    /// Products: the shop's ids or SKUs, or the catalogue's numbers.
    #[arg(required = true)]
    pub ids: Vec<String>,
}

/// A user's likes and dislikes.
#[derive(clap::Args, Debug)]
pub struct LikesArgs {
    /// The user.
    #[arg(long)]
    pub user: String,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

/// Runs `like` (weight 1), `dislike` (-1) or `unlike` (none: forget).
pub fn run(db: &Path, a: FeedbackArgs, weight: Option<f32>) -> Result<ExitCode> {
    let mut cat = Catalog::open_existing(db)?;
    match weight {
        Some(w) => {
            let uid = cat.ensure_user(&a.user)?;
            let ids = cat.product_ids(&a.ids)?;
            cat.set_feedback(uid, &ids, w)?;
            let what = if w > 0.0 { "liked" } else { "disliked" };
            outln!("{} {what} {}", a.user, a.ids.join(", "));
        }
        None => {
            let uid = cat.require_user(&a.user)?;
            let ids = cat.product_ids(&a.ids)?;
            let n = cat.clear_feedback(uid, &ids)?;
            outln!("{} forgot {n} of {} products", a.user, a.ids.len());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `likes`.
pub fn likes(db: &Path, a: LikesArgs) -> Result<ExitCode> {
    let LikesArgs { user, json } = a;
    let cat = Catalog::open_existing(db)?;
    let uid = cat.require_user(&user)?;
    let fb = cat.feedback(uid)?;
    #[derive(Serialize)]
    struct Row {
        id: i64,
        feedback: &'static str,
        at_ms: i64,
        product: Option<Product>,
    }
    let rows: Vec<Row> = fb
        .iter()
        .map(|f| Row {
            id: f.product_id,
            feedback: if f.is_like() { "like" } else { "dislike" },
            at_ms: f.at,
            product: cat.product(f.product_id).ok().flatten(),
        })
        .collect();
    if json {
        print_json(&json!({ "user": user, "feedback": rows }))?;
    } else {
        let body: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                let (t, n) = r
                    .product
                    .as_ref()
                    .map(|p| (p.article_type.clone(), truncate(&p.name, 48)))
                    .unwrap_or_default();
                vec![r.feedback.to_string(), r.id.to_string(), t, n]
            })
            .collect();
        out!("{}", render(&["feedback", "id", "articleType", "name"], &body));
    }
    Ok(ExitCode::SUCCESS)
}
