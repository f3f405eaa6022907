//! Alerts: the problems that mean an invitation will not reach its person, and the quiet hours
//! during which alerts are held for a morning digest.

use chrono::{DateTime, FixedOffset, NaiveTime, Timelike, Utc};
use serde::Serialize;

/// A problem the bot alerts about, once per member, invitation and problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertProblem {
    /// The invitation hard-bounced (or the address was suppressed for a hard bounce).
    HardBounce,
    /// The recipient marked the invitation as spam (or was suppressed for a complaint).
    SpamComplaint,
    /// The address is on the suppression list for another reason (unsubscribe, manual).
    Suppressed,
    /// The latest invitation expired and the member never accepted it.
    Expired,
    /// The latest invitation has been deferred for longer than `deferred_alert_hours`.
    Deferred,
}

impl AlertProblem {
    pub const ALL: [AlertProblem; 5] = [
        AlertProblem::HardBounce,
        AlertProblem::SpamComplaint,
        AlertProblem::Suppressed,
        AlertProblem::Expired,
        AlertProblem::Deferred,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertProblem::HardBounce => "hard_bounce",
            AlertProblem::SpamComplaint => "spam_complaint",
            AlertProblem::Suppressed => "suppressed",
            AlertProblem::Expired => "expired",
            AlertProblem::Deferred => "deferred",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// A suppression's reason as a problem: a suppression for a hard bounce or a complaint is the
    /// same problem as the event that caused it (one alert, not two).
    pub fn of_suppression(reason: &str) -> Self {
        match reason {
            "hard_bounce" => AlertProblem::HardBounce,
            "spam_complaint" => AlertProblem::SpamComplaint,
            _ => AlertProblem::Suppressed,
        }
    }
}

/// A daily window of local time (`22:00-07:00`, at a fixed offset from UTC) during which alerts
/// are held; it may cross midnight. Start and end equal is refused: it would hold everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    start: NaiveTime,
    end: NaiveTime,
    offset: FixedOffset,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuietHoursError {
    #[error("write quiet hours as HH:MM-HH:MM, e.g. 22:00-07:00")]
    Format,
    #[error("quiet hours that start when they end would hold every alert")]
    Empty,
}

impl QuietHours {
    /// `HH:MM-HH:MM` in local time at `offset`.
    pub fn parse(text: &str, offset: FixedOffset) -> Result<Self, QuietHoursError> {
        let (start, end) = text.trim().split_once('-').ok_or(QuietHoursError::Format)?;
        let time = |t: &str| {
            NaiveTime::parse_from_str(t.trim(), "%H:%M").map_err(|_| QuietHoursError::Format)
        };
        let (start, end) = (time(start)?, time(end)?);
        if start == end {
            return Err(QuietHoursError::Empty);
        }
        Ok(QuietHours { start, end, offset })
    }

    /// Whether `at` falls within the quiet hours.
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        let local = at.with_timezone(&self.offset).time();
        let local =
            NaiveTime::from_hms_opt(local.hour(), local.minute(), local.second()).unwrap_or(local);
        if self.start < self.end {
            self.start <= local && local < self.end
        } else {
            local >= self.start || local < self.end
        }
    }

    /// As written in the config, for the words of a digest.
    pub fn describe(&self) -> String {
        format!(
            "{}-{} {}",
            self.start.format("%H:%M"),
            self.end.format("%H:%M"),
            self.offset
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, hour, minute, 0).unwrap()
    }

    #[test]
    fn quiet_hours_cross_midnight_at_an_offset() {
        let plus_two = FixedOffset::east_opt(2 * 3600).unwrap();
        let quiet = QuietHours::parse("22:00-07:00", plus_two).unwrap();
        // 20:00 UTC is 22:00 at +02:00: quiet; 05:00 UTC is 07:00: not any more.
        assert!(quiet.contains(at(20, 0)));
        assert!(quiet.contains(at(1, 0)));
        assert!(quiet.contains(at(4, 59)));
        assert!(!quiet.contains(at(5, 0)));
        assert!(!quiet.contains(at(19, 59)));
        let day = QuietHours::parse("12:00-13:30", FixedOffset::east_opt(0).unwrap()).unwrap();
        assert!(day.contains(at(12, 0)) && day.contains(at(13, 29)));
        assert!(!day.contains(at(13, 30)) && !day.contains(at(11, 59)));
    }

    #[test]
    fn bad_quiet_hours_are_refused() {
        let utc = FixedOffset::east_opt(0).unwrap();
        for text in ["22-07", "22:00", "25:00-07:00", "", "ab:cd-07:00"] {
            assert_eq!(
                QuietHours::parse(text, utc),
                Err(QuietHoursError::Format),
                "{text}"
            );
        }
        assert_eq!(
            QuietHours::parse("07:00-07:00", utc),
            Err(QuietHoursError::Empty)
        );
    }

    #[test]
    fn problems_round_trip_and_suppressions_fold_into_their_cause() {
        for problem in AlertProblem::ALL {
            assert_eq!(AlertProblem::parse(problem.as_str()), Some(problem));
        }
        assert_eq!(
            AlertProblem::of_suppression("hard_bounce"),
            AlertProblem::HardBounce
        );
        assert_eq!(
            AlertProblem::of_suppression("manual"),
            AlertProblem::Suppressed
        );
    }
}
