//! Counting attempts per key (a client address, a workspace and address) in fixed windows, in memory
//! and bounded: a flood of distinct keys cannot grow it past its capacity.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Throttle {
    per_window: u32,
    window: Duration,
    capacity: usize,
    counts: Mutex<HashMap<String, (Instant, u32)>>,
}

impl Throttle {
    pub fn new(per_window: u32, window: Duration, capacity: usize) -> Self {
        Throttle {
            per_window,
            window,
            capacity,
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one attempt for `key`; `Err(wait)` when the key has used its window, or when the
    /// table is full of live keys (then everyone new waits: failing closed is what keeps a flood
    /// of fresh keys from buying unlimited attempts).
    pub fn attempt(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if !counts.contains_key(key) && counts.len() >= self.capacity {
            counts.retain(|_, (start, _)| now.duration_since(*start) < self.window);
            if counts.len() >= self.capacity {
                return Err(self.window);
            }
        }
        let (start, used) = counts.entry(key.to_owned()).or_insert((now, 0));
        if now.duration_since(*start) >= self.window {
            *start = now;
            *used = 0;
        }
        if *used >= self.per_window {
            return Err(self.window.saturating_sub(now.duration_since(*start)));
        }
        *used += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_attempts_per_window_then_waits_for_the_rest_of_it() {
        let throttle = Throttle::new(2, Duration::from_secs(60), 10);
        let t0 = Instant::now();
        assert!(throttle.attempt("a", t0).is_ok());
        assert!(throttle.attempt("a", t0).is_ok());
        let wait = throttle
            .attempt("a", t0 + Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        assert!(throttle.attempt("b", t0).is_ok(), "keys are counted apart");
        assert!(throttle.attempt("a", t0 + Duration::from_secs(61)).is_ok());
    }

    #[test]
    fn the_table_never_grows_past_its_capacity() {
        let throttle = Throttle::new(1, Duration::from_secs(60), 3);
        let t0 = Instant::now();
        for key in ["a", "b", "c"] {
            assert!(throttle.attempt(key, t0).is_ok());
        }
        assert!(throttle.attempt("d", t0).is_err(), "full of live keys");
        assert!(throttle.attempt("d", t0 + Duration::from_secs(61)).is_ok());
        assert!(throttle.counts.lock().unwrap().len() <= 3);
    }
}
