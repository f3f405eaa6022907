//! Latency statistics of one scenario.

use std::time::Duration;

/// What one scenario measured.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyStats {
    pub count: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub throughput_per_s: f64,
}

impl LatencyStats {
    /// Summarizes `samples` (one per operation) taken over `wall` time. `None` without samples.
    pub fn from_samples(mut samples: Vec<Duration>, wall: Duration) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let wall_s = wall.as_secs_f64();
        Some(Self {
            count: samples.len(),
            p50_ms: ms(percentile(&samples, 50.0)),
            p95_ms: ms(percentile(&samples, 95.0)),
            p99_ms: ms(percentile(&samples, 99.0)),
            max_ms: ms(*samples.last().expect("not empty")),
            throughput_per_s: if wall_s > 0.0 {
                samples.len() as f64 / wall_s
            } else {
                0.0
            },
        })
    }
}

/// The nearest-rank percentile of sorted samples: the smallest sample at or above `p` percent of
/// them. (Interpolating would report latencies no operation had.)
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    assert!(!sorted.is_empty(), "percentile of no samples");
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=100).map(ms).collect();
        assert_eq!(percentile(&samples, 50.0), ms(50));
        assert_eq!(percentile(&samples, 95.0), ms(95));
        assert_eq!(percentile(&samples, 99.0), ms(99));
        assert_eq!(percentile(&samples, 100.0), ms(100));
        assert_eq!(percentile(&samples, 0.0), ms(1));
        assert_eq!(percentile(&[ms(7)], 99.0), ms(7));
        // With 10 samples, p99 is the largest one, not an average of the two largest.
        let ten: Vec<Duration> = (1..=10).map(ms).collect();
        assert_eq!(percentile(&ten, 99.0), ms(10));
        assert_eq!(percentile(&ten, 50.0), ms(5));
    }

    #[test]
    fn stats_sort_their_samples_and_count_throughput() {
        let samples = vec![ms(30), ms(10), ms(20), ms(40)];
        let stats = LatencyStats::from_samples(samples, Duration::from_secs(2)).unwrap();
        assert_eq!(stats.count, 4);
        assert_eq!(stats.p50_ms, 20.0);
        assert_eq!(stats.p95_ms, 40.0);
        assert_eq!(stats.max_ms, 40.0);
        assert_eq!(stats.throughput_per_s, 2.0);
        assert!(LatencyStats::from_samples(Vec::new(), Duration::from_secs(1)).is_none());
    }
}
