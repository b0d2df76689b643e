//! A user's taste as one vector: recency-weighted mean of liked vectors, pushed away from
//! disliked ones. Cheap to rebuild after every like (one pass over the user's feedback).

use serde::Serialize;

use super::index::{VectorIndex, normalize};
use crate::catalog::Feedback;

/// Knobs of the profile.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ProfileSettings {
    /// A like this many days older than the newest one counts half as much.
    pub half_life_days: f32,
    /// How hard dislikes push the profile away (0 ignores them).
    pub dislike_push: f32,
}

/// How many days it takes a like to count half as much as a new one.
pub const DEFAULT_HALF_LIFE_DAYS: f32 = 30.0;

impl Default for ProfileSettings {
    fn default() -> Self {
        ProfileSettings {
            half_life_days: DEFAULT_HALF_LIFE_DAYS,
            dislike_push: 0.5,
        }
    }
}

/// A user's taste, ready for ranking.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    /// Unit taste vector; `None` when the user has no usable likes (cold start).
    pub vector: Option<Vec<f32>>,
    /// Liked rows with their recency weights (for explanations).
    pub likes: Vec<(usize, f32)>,
    /// Unit mean of disliked rows, if any.
    pub dislike: Option<Vec<f32>>,
    /// Every product the user gave feedback on: never recommended back.
    pub seen: std::collections::HashSet<i64>,
}

/// Milliseconds in a day.
const DAY_MS: f32 = 86_400_000.0;

fn weighted_mean(index: &dyn VectorIndex, rows: &[(usize, f32)]) -> Option<Vec<f32>> {
    if rows.is_empty() {
        return None;
    }
    let mut v = vec![0.0f32; index.dim()];
    for &(r, w) in rows {
        for (a, b) in v.iter_mut().zip(index.vector(r).iter()) {
            *a += w * b;
        }
    }
    normalize(&mut v).then_some(v)
}

impl Profile {
    /// Builds the profile from feedback (any order); items without a vector are ignored for the
    /// taste but still never recommended back.
    pub fn build(feedback: &[Feedback], index: &dyn VectorIndex, s: ProfileSettings) -> Self {
        let newest = feedback.iter().map(|f| f.at).max().unwrap_or(0);
        let half_life = s.half_life_days.max(1e-3) * DAY_MS;
        let mut likes = Vec::new();
        let mut dislikes = Vec::new();
        for f in feedback {
            let Some(row) = index.row(f.product_id) else { continue };
            let age = (newest - f.at).max(0) as f32;
            let w = 0.5f32.powf(age / half_life);
            if f.is_like() {
                likes.push((row, w))
            } else {
                dislikes.push((row, w))
            }
        }
        let like_mean = weighted_mean(index, &likes);
        let dislike = weighted_mean(index, &dislikes);
        let vector = like_mean.map(|mut v| {
            if let Some(d) = &dislike {
                for (a, b) in v.iter_mut().zip(d) {
                    *a -= s.dislike_push * b;
                }
            }
            normalize(&mut v);
            v
        });
        Profile {
            vector,
            likes,
            dislike,
            seen: feedback.iter().map(|f| f.product_id).collect(),
        }
    }

    /// True when there is no taste to rank by.
    pub fn is_cold(&self) -> bool {
        self.vector.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::EmbeddingMatrix;
    use crate::recommend::FlatIndex;

    fn idx() -> FlatIndex {
        FlatIndex::new(EmbeddingMatrix {
            model_id: 1,
            dim: 2,
            ids: vec![1, 2, 3],
            data: vec![1.0, 0.0, 0.0, 1.0, -1.0, 0.0],
        })
    }

    fn fb(id: i64, w: f32, at_days: f32) -> Feedback {
        Feedback {
            product_id: id,
            weight: w,
            at: (at_days * DAY_MS) as i64,
        }
    }

    #[test]
    fn equal_recent_likes_average() {
        let p = Profile::build(
            &[fb(1, 1.0, 10.0), fb(2, 1.0, 10.0)],
            &idx(),
            ProfileSettings::default(),
        );
        let v = p.vector.unwrap();
        assert!((v[0] - v[1]).abs() < 1e-6 && (v[0] - 0.70710677).abs() < 1e-5);
    }

    #[test]
    fn older_likes_count_less_by_half_life() {
        let s = ProfileSettings {
            half_life_days: 10.0,
            dislike_push: 0.0,
        };
        let p = Profile::build(&[fb(1, 1.0, 0.0), fb(2, 1.0, 10.0)], &idx(), s);
        let v = p.vector.unwrap();
        // weights 0.5 and 1.0 -> direction (0.5, 1) normalised
        assert!((v[1] / v[0] - 2.0).abs() < 1e-4, "{v:?}");
    }

    #[test]
    fn dislikes_push_away_and_are_remembered() {
        let s = ProfileSettings {
            half_life_days: 30.0,
            dislike_push: 0.5,
        };
        let p = Profile::build(&[fb(2, 1.0, 0.0), fb(3, -1.0, 0.0)], &idx(), s);
        let v = p.vector.unwrap();
        assert!(v[0] > 0.0, "pushed away from (-1, 0): {v:?}");
        assert!(p.seen.contains(&3));
    }

    #[test]
    fn no_likes_is_cold() {
        let p = Profile::build(&[fb(3, -1.0, 0.0)], &idx(), ProfileSettings::default());
        assert!(p.is_cold() && p.dislike.is_some());
        assert!(Profile::build(&[], &idx(), ProfileSettings::default()).is_cold());
    }
}
