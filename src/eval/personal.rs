//! Personal-feed quality by leave-last-out: each user's newest like is held out, a method sees
//! the rest and must rank it in its top k.
//!
//! The users are simulated ([`simulate`]: one or two tastes, an articleType and a colour, a few
//! likes of each) or real ([`stored_users`]: the catalogue's own likes and purchases, such as a
//! shop's history from `import --interactions`, with their real times and weights). Baselines:
//! popularity among the users, look-alikes of the last remaining like, and item-kNN (each
//! product scored by its summed similarity to every liked product).

use serde::Serialize;
use std::collections::{HashMap, HashSet};

use super::Rng;
use super::metrics::intra_list_diversity;
use crate::catalog::{Catalog, Feedback};
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
    /// `simulated`, or `stored` for the catalogue's own histories.
    pub source: String,
    /// Users measured.
    pub users: usize,
    /// Stored users left out: fewer than two likes of products with vectors.
    pub too_short: usize,
    /// Cut-off.
    pub k: usize,
    /// Methods side by side.
    pub methods: Vec<MethodResult>,
}

/// One user as measured: what a method may see, and the like it must find.
#[derive(Debug, Clone)]
pub struct EvalUser {
    /// Feedback before the held-out like (likes and dislikes, with their times and weights).
    pub feedback: Vec<Feedback>,
    /// The newest like.
    pub held_out: i64,
    /// The (articleType, colour) of each like seen, for taste precision.
    pub tastes: Vec<(String, String)>,
}

impl EvalUser {
    /// The products the user liked before the held-out one, oldest first.
    fn likes(&self) -> Vec<i64> {
        let mut likes: Vec<&Feedback> = self.feedback.iter().filter(|f| f.is_like()).collect();
        likes.sort_by_key(|f| (f.at, f.product_id));
        likes.into_iter().map(|f| f.product_id).collect()
    }
}

/// The stored users to measure on: up to `max` of those with two likes or more (a seeded
/// sample, taken before any history is read: a shop's history has millions of users), then as
/// [`stored_users`]. Also returns how many users had too few likes (counted only when every
/// user was read) and how many users the catalogue has.
pub fn sample_stored(cat: &Catalog, engine: &Engine, max: usize, seed: u64) -> Result<(Vec<EvalUser>, usize, usize)> {
    let all = cat.users()?.len();
    let (ids, uncounted) = sample_ids(cat.users_with_likes(2)?, all, max, seed);
    let histories = ids.iter().map(|&u| cat.feedback(u)).collect::<Result<Vec<_>>>()?;
    let (users, short) = stored_users(engine, histories, max, seed);
    Ok((users, short + uncounted, all))
}

/// At most `max` of `ids` (the same ones for a seed), and how many of the catalogue's `all`
/// users were left out for having under two likes: all of them when nothing was sampled, none
/// when the sample means the rest was never read.
fn sample_ids(mut ids: Vec<i64>, all: usize, max: usize, seed: u64) -> (Vec<i64>, usize) {
    let fewer = all.saturating_sub(ids.len());
    if ids.len() <= max {
        return (ids, fewer);
    }
    Rng::new(seed).shuffle(&mut ids);
    ids.truncate(max);
    (ids, 0)
}

/// Users from stored histories: every user (or `max` of them, the same ones for a seed) with
/// at least two likes of listed products that have vectors. Returns them and how many users
/// had too few.
pub fn stored_users(engine: &Engine, histories: Vec<Vec<Feedback>>, max: usize, seed: u64) -> (Vec<EvalUser>, usize) {
    let usable = |id: i64| engine.vector(id).is_some() && engine.product(id).is_some_and(|p| p.listed);
    let mut users = Vec::new();
    let mut too_short = 0;
    for mut history in histories {
        history.retain(|f| usable(f.product_id));
        // Newest last; ties (one basket) broken by product id, so the cut is repeatable.
        history.sort_by_key(|f| (f.at, f.product_id));
        let Some(pos) = history.iter().rposition(|f| f.is_like()) else {
            too_short += 1;
            continue;
        };
        let held_out = history.remove(pos).product_id;
        if !history.iter().any(|f| f.is_like()) {
            too_short += 1;
            continue;
        }
        let tastes = taste_keys(engine, history.iter().filter(|f| f.is_like()).map(|f| f.product_id));
        users.push(EvalUser {
            feedback: history,
            held_out,
            tastes,
        });
    }
    if users.len() > max {
        Rng::new(seed).shuffle(&mut users);
        users.truncate(max);
    }
    (users, too_short)
}

/// The distinct (articleType, colour) pairs of some products.
fn taste_keys(engine: &Engine, ids: impl Iterator<Item = i64>) -> Vec<(String, String)> {
    let mut keys: Vec<(String, String)> = ids
        .filter_map(|id| engine.product(id))
        .map(|p| (p.article_type.clone(), p.colour.clone()))
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Simulated users: one or two tastes each, a few likes of each taste one minute apart.
pub fn simulate(engine: &Engine, opts: &Options) -> Vec<EvalUser> {
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
        // Likes one minute apart, oldest first: the last element is the newest.
        let feedback = likes
            .iter()
            .enumerate()
            .map(|(i, &id)| Feedback {
                product_id: id,
                weight: 1.0,
                at: i as i64 * 60_000,
            })
            .collect();
        users.push(EvalUser {
            feedback,
            held_out,
            tastes,
        });
    }
    users
}

/// Item-kNN look-alikes a product contributes to: its nearest neighbours, enough that the sum
/// over a user's likes reaches well past k.
const KNN_NEIGHBOURS: usize = 100;

/// Simulated users through [`evaluate_users`].
pub fn evaluate(engine: &Engine, opts: &Options, progress: &dyn Progress) -> Result<Report> {
    evaluate_users(engine, simulate(engine, opts), 0, "simulated", opts, progress)
}

/// Measures the feed (plain and at each MMR level) and the three baselines on these users.
pub fn evaluate_users(
    engine: &Engine,
    users: Vec<EvalUser>,
    too_short: usize,
    source: &str,
    opts: &Options,
    progress: &dyn Progress,
) -> Result<Report> {
    let mut popularity: HashMap<i64, usize> = HashMap::new();
    for u in &users {
        for id in u.likes() {
            *popularity.entry(id).or_default() += 1;
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
    methods.push(("item-knn".into(), None));
    methods.push(("popularity".into(), None));
    let mut out = Vec::new();
    for (method, feed_diversity) in methods {
        progress.start(&format!("{source} users ({method})"), users.len());
        let (mut hits, mut ndcg, mut taste, mut div) = (0.0, 0.0, 0.0, 0.0);
        let mut shown: HashSet<i64> = HashSet::new();
        for u in &users {
            let likes = u.likes();
            let profile = Profile::build(&u.feedback, index, ProfileSettings::default());
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
                    let last = *likes.last().unwrap_or(&u.held_out);
                    let req = Request {
                        item: Some(last),
                        k: opts.k,
                        alpha: 1.0,
                        ..Default::default()
                    };
                    engine.recommend(&profile, &req)?.into_iter().map(|r| r.id).collect()
                }
                (None, "item-knn") => {
                    let mut score: HashMap<i64, f32> = HashMap::new();
                    for id in &likes {
                        for r in engine.similar(*id, &Default::default(), KNN_NEIGHBOURS)? {
                            *score.entry(r.id).or_default() += r.score;
                        }
                    }
                    let mut ranked: Vec<(i64, f32)> =
                        score.into_iter().filter(|(id, _)| !profile.seen.contains(id)).collect();
                    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                    ranked.into_iter().take(opts.k).map(|(id, _)| id).collect()
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
        source: source.to_string(),
        users: users.len(),
        too_short,
        k: opts.k,
        methods: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recommend::FlatIndex;
    use crate::synthetic::{synthetic_matrix, synthetic_products};

    fn fb(product_id: i64, weight: f32, at: i64) -> Feedback {
        Feedback { product_id, weight, at }
    }

    #[test]
    fn stored_users_are_sampled_before_reading_and_short_ones_counted_only_unsampled() {
        // Everyone fits: the users without two likes count as too short.
        let (ids, fewer) = sample_ids(vec![1, 2, 3], 10, 5, 7);
        assert_eq!((ids, fewer), (vec![1, 2, 3], 7));
        // Sampled: the same users for the same seed, and the unread rest is not counted.
        let (a, fewer) = sample_ids((1..=100).collect(), 150, 10, 7);
        assert_eq!((a.len(), fewer), (10, 0));
        assert_eq!(sample_ids((1..=100).collect(), 150, 10, 7).0, a);
        assert_ne!(sample_ids((1..=100).collect(), 150, 10, 8).0, a);
        assert!(a.iter().all(|id| (1..=100).contains(id)));
    }

    #[test]
    fn stored_histories_hold_out_the_newest_like_and_skip_short_ones() {
        let engine = Engine::new(synthetic_products(40), FlatIndex::new(synthetic_matrix(40, 8, 3)));
        let ids: Vec<i64> = engine.products().iter().map(|p| p.id).collect();
        let histories = vec![
            // Newest first, as the catalogue returns them; the newest like is held out even
            // with a dislike after it.
            vec![
                fb(ids[9], -1.0, 40),
                fb(ids[2], 1.0, 30),
                fb(ids[3], 1.0, 20),
                fb(ids[1], 1.0, 10),
            ],
            vec![fb(ids[4], 1.0, 5)],
            vec![fb(ids[5], -1.0, 6), fb(ids[4], 1.0, 5)],
            // One basket: the tie is broken by product id.
            vec![fb(ids[6], 1.0, 1), fb(ids[7], 1.0, 1)],
            // A product the engine does not know is not a like to hold out.
            vec![fb(999_999, 1.0, 50), fb(ids[8], 1.0, 2)],
        ];
        let (users, short) = stored_users(&engine, histories, 10, 1);
        assert_eq!(short, 3);
        assert_eq!(users.len(), 2);
        assert_eq!(users[0].held_out, ids[2]);
        assert_eq!(users[0].likes(), vec![ids[1], ids[3]]);
        assert!(users[0].feedback.iter().any(|f| f.product_id == ids[9] && !f.is_like()));
        assert_eq!(users[1].held_out, ids[6].max(ids[7]));
        let (few, _) = stored_users(&engine, vec![users[0].feedback.clone(); 5], 2, 1);
        assert_eq!(few.len(), 2, "at most `max` users");
    }
}
