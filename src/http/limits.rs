//! Request rates: a token bucket per key (and per address for the routes that need no key, the
//! photos), so one busy client slows down alone.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Instant;

/// Buckets kept before the oldest are forgotten (addresses are many; keys are few).
const MAX_BUCKETS: usize = 10_000;

/// Token buckets of `rate` requests a second with bursts of as many.
pub struct RateLimiter<K> {
    rate: f64,
    buckets: Mutex<HashMap<K, (f64, Instant)>>,
}

impl<K: Eq + Hash + Copy> RateLimiter<K> {
    /// `rate` requests a second for each `K`; 0 means no limit.
    pub fn new(rate: u32) -> Self {
        RateLimiter {
            rate: f64::from(rate),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `who` at `now`; `Err(seconds)` says how long until one is free.
    pub fn take(&self, who: K, now: Instant) -> Result<(), f64> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if b.len() >= MAX_BUCKETS && !b.contains_key(&who) {
            // Full buckets forget nothing worth keeping: one refilled to its burst is the same
            // as none, so drop those first, and everything when that frees too little.
            let rate = self.rate;
            b.retain(|_, (tokens, at)| *tokens + now.duration_since(*at).as_secs_f64() * rate < rate);
            if b.len() >= MAX_BUCKETS {
                b.clear();
            }
        }
        let (tokens, at) = b.entry(who).or_insert((self.rate, now));
        *tokens = (*tokens + now.saturating_duration_since(*at).as_secs_f64() * self.rate).min(self.rate);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err((1.0 - *tokens) / self.rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_of_rate_then_one_per_interval() {
        let l = RateLimiter::new(4);
        let t0 = Instant::now();
        for _ in 0..4 {
            assert!(l.take(1u8, t0).is_ok());
        }
        let wait = l.take(1u8, t0).unwrap_err();
        assert!((wait - 0.25).abs() < 1e-9, "{wait}");
        assert!(l.take(2u8, t0).is_ok(), "another client has its own bucket");
        assert!(l.take(1u8, t0 + Duration::from_millis(260)).is_ok());
        assert!(l.take(1u8, t0 + Duration::from_millis(261)).is_err());
    }

    #[test]
    fn zero_is_no_limit() {
        let l = RateLimiter::new(0);
        let t0 = Instant::now();
        assert!((0..10_000).all(|_| l.take(1u8, t0).is_ok()));
    }

    #[test]
    fn many_clients_stay_bounded() {
        let l = RateLimiter::new(1);
        let t0 = Instant::now();
        for i in 0..(MAX_BUCKETS as u32 + 50) {
            let _ = l.take(i, t0);
        }
        assert!(l.buckets.lock().unwrap().len() <= MAX_BUCKETS);
    }
}
