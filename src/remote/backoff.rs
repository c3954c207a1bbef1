//! When to try a lost host again: at once after the first failure, then after 1, 2, 4 …
//! seconds, at most 30, so a host that is down costs one ssh process now and then rather
//! than one a second; a success starts over. The clock is passed in, so it is tested
//! without waiting.

use std::time::{Duration, Instant};

/// The longest wait between two tries.
pub const MAX_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
pub struct Backoff {
    failures: u32,
    next_try: Option<Instant>,
    /// Why the last try failed, said again while waiting.
    last_error: String,
}

impl Backoff {
    /// None when a try may be made at `now`; else how long until then, and why the last
    /// one failed.
    pub fn wait(&self, now: Instant) -> Option<(Duration, &str)> {
        let next = self.next_try?;
        (now < next).then(|| (next - now, self.last_error.as_str()))
    }

    pub fn failed(&mut self, now: Instant, error: String) {
        let wait = Duration::from_secs(1u64 << self.failures.min(5)).min(MAX_WAIT);
        self.failures += 1;
        self.next_try = Some(now + wait);
        self.last_error = error;
    }

    pub fn succeeded(&mut self) {
        *self = Backoff::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_up_to_its_limit_and_a_success_starts_over() {
        let t0 = Instant::now();
        let mut backoff = Backoff::default();
        assert!(backoff.wait(t0).is_none(), "the first try is at once");
        let mut waits = Vec::new();
        let mut now = t0;
        for _ in 0..8 {
            backoff.failed(now, "refused".into());
            let (wait, why) = backoff.wait(now).expect("a wait");
            assert_eq!(why, "refused");
            waits.push(wait.as_secs());
            now += wait;
            assert!(backoff.wait(now).is_none(), "due after the wait");
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30]);
        backoff.succeeded();
        assert!(backoff.wait(now).is_none());
        backoff.failed(now, "again".into());
        assert_eq!(backoff.wait(now).unwrap().0.as_secs(), 1);
    }
}
