//! Token buckets: how the core keeps to a broker's rates and paces each push.

use std::time::{Duration, Instant};

/// A token bucket: `rate` tokens per second, at most `cap` stored; starts full.
#[derive(Clone, Debug)]
pub(super) struct Bucket {
    tokens: f64,
    cap: f64,
    rate: f64,
    at: Instant,
}

impl Bucket {
    pub fn new(rate: f64, cap: f64, now: Instant) -> Self {
        Self {
            tokens: cap,
            cap,
            rate: rate.max(f64::MIN_POSITIVE),
            at: now,
        }
    }

    /// A bucket that allows at most `per_sec` in any sliding second (what a broker that
    /// counts per second checks): a tenth of it at once, nine tenths refilled per second.
    pub fn per_second(per_sec: u32, now: Instant) -> Self {
        let r = f64::from(per_sec.max(1));
        Self::new(r * 0.9, (r * 0.1).max(1.0), now)
    }

    fn refill(&mut self, now: Instant) {
        if now > self.at {
            let dt = now.duration_since(self.at).as_secs_f64();
            self.tokens = (self.tokens + dt * self.rate).min(self.cap);
            self.at = now;
        }
    }

    /// Whether `cost` can be spent now (a cost above the capacity needs a full bucket).
    pub fn ready(&mut self, now: Instant, cost: f64) -> bool {
        self.refill(now);
        self.tokens >= cost.min(self.cap)
    }

    /// Spends `cost` (the balance may go negative for a cost above the capacity).
    pub fn take(&mut self, cost: f64) {
        self.tokens -= cost;
    }

    /// When `cost` can be spent.
    pub fn when(&self, cost: f64) -> Instant {
        let need = cost.min(self.cap) - self.tokens;
        if need <= 0.0 {
            self.at
        } else {
            self.at + Duration::from_secs_f64(need / self.rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_second_never_exceeds_its_rate_in_any_window() {
        let t0 = Instant::now();
        let mut b = Bucket::per_second(100, t0);
        let mut sent = Vec::new();
        let mut now = t0;
        while now < t0 + Duration::from_secs(5) {
            while b.ready(now, 1.0) {
                b.take(1.0);
                sent.push(now);
            }
            now = b.when(1.0).max(now + Duration::from_micros(100));
        }
        let max = sent
            .iter()
            .map(|s| {
                sent.iter()
                    .filter(|t| **t >= *s && **t < *s + Duration::from_secs(1))
                    .count()
            })
            .max()
            .unwrap();
        assert!(max <= 100, "{max} in one second");
        assert!(sent.len() >= 440, "{} in 5 s", sent.len());
    }
}
