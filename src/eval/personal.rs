//! Personal-feed quality with simulated users and leave-one-out.
//!
//! Each simulated user has one or two tastes (an articleType and a colour) and likes a few items
//! of each, one at a time. The newest like is held out; a method sees the others and must rank
//! the held-out item in its top k. Baselines: global popularity among the simulated users, and
//! look-alikes of the user's last remaining like.

use serde::Serialize;
use std::collections::{HashMap, HashSet};

use super::Rng;
use super::metrics::intra_list_diversity;
use crate::catalog::Feedback;
use crate::recommend::{Engine, Profile, ProfileSettings, Request};
use crate::{Progress, Result};

/// Simulation settings.
#[derive(Debug, Clone, Serialize)]
pub struct Options {
    /// Simulated users.
    pub users: usize,
    /// Cut-off.
    pub k: usize,
    /// Seed; the same seed gives the same users.
    pub seed: u64,
    /// MMR diversity levels compared with the plain feed, each as a method `feed+mmr<level>`.
    pub mmr: Vec<f32>,
}

/// One method's personalisation scores.
#[derive(Debug, Clone, Serialize)]
pub struct MethodResult {
    /// Method name.
    pub method: String,
    /// Share of users whose held-out like is in the top k.
    pub hit_rate: f64,
    /// Mean nDCG@k of the held-out like.
    pub ndcg: f64,
    /// Share of the top k that matches one of the user's tastes (articleType and colour).
    pub taste_precision: f64,
    /// Mean pairwise cosine distance within a feed.
    pub diversity: f64,
    /// Share of the catalogue shown to at least one user.
    pub coverage: f64,
}

/// The whole personalisation report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Users simulated.
    pub users: usize,
    /// Cut-off.
    pub k: usize,
    /// Methods side by side.
    pub methods: Vec<MethodResult>,
}

struct SimUser {
    likes: Vec<i64>,
    held_out: i64,
    tastes: Vec<(String, String)>,
}

fn simulate(engine: &Engine, opts: &Options) -> Vec<SimUser> {
    let mut groups: HashMap<(String, String), Vec<i64>> = HashMap::new();
    for p in engine.products() {
        if engine.vector(p.id).is_some() {
            groups
                .entry((p.article_type.clone(), p.colour.clone()))
                .or_default()
                .push(p.id);
        }
    }
    let mut keys: Vec<(String, String)> = groups
        .iter()
        .filter(|(_, v)| v.len() >= 4)
        .map(|(k, _)| k.clone())
        .collect();
    keys.sort();
    let mut rng = Rng::new(opts.seed);
    let mut users = Vec::new();
    if keys.is_empty() {
        return users;
    }
    for _ in 0..opts.users {
        let n_tastes = 1 + rng.below(2);
        let mut tastes = Vec::new();
        for _ in 0..n_tastes {
            let t = keys[rng.below(keys.len())].clone();
            if !tastes.contains(&t) {
                tastes.push(t);
            }
        }
        let mut likes = Vec::new();
        for t in &tastes {
            let mut items = groups[t].clone();
            rng.shuffle(&mut items);
            let n = (3 + rng.below(4)).min(items.len() - 1);
            likes.extend(items.into_iter().take(n));
        }
        rng.shuffle(&mut likes);
        let Some(held_out) = likes.pop() else { continue };
        users.push(SimUser {
            likes,
            held_out,
            tastes,
        });
    }
    users
}

/// Runs the simulation for the feed (plain and at each MMR level) and the two baselines.
pub fn evaluate(engine: &Engine, opts: &Options, progress: &dyn Progress) -> Result<Report> {
    let users = simulate(engine, opts);
    let mut popularity: HashMap<i64, usize> = HashMap::new();
    for u in &users {
        for id in &u.likes {
            *popularity.entry(*id).or_default() += 1;
        }
    }
    let mut popular: Vec<(i64, usize)> = popularity.iter().map(|(k, v)| (*k, *v)).collect();
    popular.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let index = engine.index();
    // (name, Some(diversity) for a feed, None for a baseline)
    let mut methods: Vec<(String, Option<f32>)> = vec![("feed".into(), Some(0.0))];
    methods.extend(
        opts.mmr
            .iter()
            .filter(|d| **d > 0.0)
            .map(|d| (format!("feed+mmr{d}"), Some(*d))),
    );
    methods.push(("last-like".into(), None));
    methods.push(("popularity".into(), None));
    let mut out = Vec::new();
    for (method, feed_diversity) in methods {
        progress.start(&format!("simulated users ({method})"), users.len());
        let (mut hits, mut ndcg, mut taste, mut div) = (0.0, 0.0, 0.0, 0.0);
        let mut shown: HashSet<i64> = HashSet::new();
        for u in &users {
            // Likes one minute apart, oldest first: the last element is the newest.
            let feedback: Vec<Feedback> = u
                .likes
                .iter()
                .enumerate()
                .map(|(i, &id)| Feedback {
                    product_id: id,
                    weight: 1.0,
                    at: i as i64 * 60_000,
                })
                .collect();
            let profile = Profile::build(&feedback, index, ProfileSettings::default());
            let ids: Vec<i64> = match (feed_diversity, method.as_str()) {
                (Some(diversity), _) => {
                    let req = Request {
                        k: opts.k,
                        diversity,
                        ..Default::default()
                    };
                    engine.recommend(&profile, &req)?.into_iter().map(|r| r.id).collect()
                }
                (None, "last-like") => {
                    let last = *u.likes.last().unwrap_or(&u.held_out);
                    let req = Request {
                        item: Some(last),
                        k: opts.k,
                        alpha: 1.0,
                        ..Default::default()
                    };
                    engine.recommend(&profile, &req)?.into_iter().map(|r| r.id).collect()
                }
                _ => popular
                    .iter()
                    .map(|(id, _)| *id)
                    .filter(|id| !profile.seen.contains(id))
                    .take(opts.k)
                    .collect(),
            };
            if let Some(pos) = ids.iter().position(|&id| id == u.held_out) {
                hits += 1.0;
                ndcg += 1.0 / ((pos + 2) as f64).log2();
            }
            let matches = ids
                .iter()
                .filter_map(|id| engine.product(*id))
                .filter(|p| u.tastes.iter().any(|(t, c)| *t == p.article_type && *c == p.colour))
                .count();
            taste += matches as f64 / opts.k.max(1) as f64;
            let vecs: Vec<_> = ids.iter().filter_map(|id| engine.vector(*id)).collect();
            div += intra_list_diversity(&vecs.iter().map(|v| v.as_ref()).collect::<Vec<&[f32]>>());
            shown.extend(ids);
            progress.advance(1);
        }
        progress.finish();
        let n = users.len().max(1) as f64;
        out.push(MethodResult {
            method,
            hit_rate: hits / n,
            ndcg: ndcg / n,
            taste_precision: taste / n,
            diversity: div / n,
            coverage: shown.len() as f64 / index.len().max(1) as f64,
        });
    }
    Ok(Report {
        users: users.len(),
        k: opts.k,
        methods: out,
    })
}
