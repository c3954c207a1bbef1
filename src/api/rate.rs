//! The per-connection rate limit: a token bucket. A client may burst, then gets a steady
//! rate; one that keeps going past an empty bucket is closed (1008).

use std::time::Instant;

pub struct TokenBucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(per_second: f64, burst: f64) -> TokenBucket {
        TokenBucket {
            capacity: burst,
            per_second,
            tokens: burst,
            last: Instant::now(),
        }
    }

    /// Takes one token if there is one.
    pub fn take(&mut self) -> bool {
        self.take_at(Instant::now())
    }

    fn take_at(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_passes_then_the_rate_holds() {
        let mut bucket = TokenBucket::new(20.0, 50.0);
        let start = Instant::now();
        let passed = (0..100).filter(|_| bucket.take_at(start)).count();
        assert_eq!(passed, 50);
        assert!(!bucket.take_at(start));
        // A second later, 20 more.
        let later = start + Duration::from_secs(1);
        let passed = (0..100).filter(|_| bucket.take_at(later)).count();
        assert_eq!(passed, 20);
    }
}
