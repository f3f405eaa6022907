//! Durations in the words a person reads ("3 days", "5 minutes ago"), for replies only.

use chrono::{DateTime, Duration, Utc};

/// The largest whole unit of `duration`: "45 seconds", "1 minute", "3 hours", "2 days".
pub fn duration_words(duration: Duration) -> String {
    let seconds = duration.num_seconds().max(0);
    let (amount, unit) = match seconds {
        0..=59 => (seconds, "second"),
        60..=3_599 => (seconds / 60, "minute"),
        3_600..=86_399 => (seconds / 3_600, "hour"),
        _ => (seconds / 86_400, "day"),
    };
    let plural = if amount == 1 { "" } else { "s" };
    format!("{amount} {unit}{plural}")
}

/// A wait, rounded up so that waiting that long is always enough: 9 min 10 s is "10 minutes".
pub fn wait_words(duration: Duration) -> String {
    let seconds = duration.num_seconds().max(0).unsigned_abs();
    let rounded = match seconds {
        0..=59 => seconds,
        60..=3_599 => seconds.div_ceil(60) * 60,
        3_600..=86_399 => seconds.div_ceil(3_600) * 3_600,
        _ => seconds.div_ceil(86_400) * 86_400,
    };
    duration_words(Duration::seconds(
        i64::try_from(rounded).unwrap_or(i64::MAX),
    ))
}

/// "5 minutes ago", or "in 5 minutes" for a time still ahead.
pub fn ago(now: DateTime<Utc>, then: DateTime<Utc>) -> String {
    if then <= now {
        format!("{} ago", duration_words(now - then))
    } else {
        format!("in {}", duration_words(then - now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_for_durations() {
        assert_eq!(duration_words(Duration::seconds(1)), "1 second");
        assert_eq!(duration_words(Duration::minutes(15)), "15 minutes");
        assert_eq!(duration_words(Duration::hours(25)), "1 day");
        assert_eq!(wait_words(Duration::seconds(9 * 60 + 10)), "10 minutes");
        assert_eq!(wait_words(Duration::minutes(15)), "15 minutes");
        let now = Utc::now();
        assert_eq!(ago(now, now - Duration::hours(2)), "2 hours ago");
        assert_eq!(ago(now, now + Duration::days(3)), "in 3 days");
    }
}
