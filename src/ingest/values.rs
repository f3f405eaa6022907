//! The product's words for roles and statuses, and its timestamps, in the bot's terms.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, SubsecRound, TimeZone, Utc};

use crate::domain::member::{MemberStatus, Role};

/// Longest value echoed back in an error about it.
const MAX_ECHO_CHARS: usize = 40;

/// The product's values for one column mapped to the bot's words (`"0" = "invited"`). Empty:
/// the product already uses the bot's words.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValueMap(BTreeMap<String, String>);

impl ValueMap {
    pub fn new(map: BTreeMap<String, String>) -> Self {
        Self(map)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The bot's word for `value`: mapped when a map is set (an unmapped value is an error, never
    /// a guess), taken as it is otherwise.
    fn translate<'a>(&'a self, value: &'a str) -> Result<&'a str, String> {
        let value = value.trim();
        if self.0.is_empty() {
            return Ok(value);
        }
        self.0.get(value).map(String::as_str).ok_or_else(|| {
            let known: Vec<&str> = self.0.keys().map(String::as_str).collect();
            format!(
                "the value {} is not in the map (known: {})",
                echo(value),
                known.join(", ")
            )
        })
    }

    /// Every target of the map, for checking a config at start-up.
    pub fn targets(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// The role and status maps of a source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValueMaps {
    pub role: ValueMap,
    pub status: ValueMap,
}

impl ValueMaps {
    /// The bot's own words, as the push API takes them.
    pub fn identity() -> Self {
        Self::default()
    }

    pub fn role(&self, value: &str) -> Result<Role, String> {
        let word = self.role.translate(value)?;
        Role::parse(word).ok_or_else(|| {
            format!(
                "{} is not a role (learner or trainer{})",
                echo(value),
                map_hint(&self.role)
            )
        })
    }

    pub fn status(&self, value: &str) -> Result<MemberStatus, String> {
        let word = self.status.translate(value)?;
        MemberStatus::parse(word).ok_or_else(|| {
            format!(
                "{} is not a status (invited, active or deactivated{})",
                echo(value),
                map_hint(&self.status)
            )
        })
    }

    /// A map whose targets are not the bot's words is a config error, found before any row.
    pub fn check(&self) -> Result<(), String> {
        for (from, to) in self.role.targets() {
            if Role::parse(to).is_none() {
                return Err(format!(
                    "role_map: {from:?} maps to {to:?}, which is not learner or trainer"
                ));
            }
        }
        for (from, to) in self.status.targets() {
            if MemberStatus::parse(to).is_none() {
                return Err(format!(
                    "status_map: {from:?} maps to {to:?}, which is not invited, active or deactivated"
                ));
            }
        }
        Ok(())
    }
}

fn map_hint(map: &ValueMap) -> &'static str {
    if map.is_empty() {
        "; map the product's values in [source.role_map] / [source.status_map]"
    } else {
        ""
    }
}

fn echo(value: &str) -> String {
    let shown: String = value.chars().take(MAX_ECHO_CHARS).collect();
    if shown.len() < value.len() {
        format!("{shown:?}…")
    } else {
        format!("{shown:?}")
    }
}

/// A fixed offset as config and flags write it: `UTC` (or `Z`), `+02:00`, `-0530`, `+2`.
pub fn parse_offset(text: &str) -> Result<FixedOffset, String> {
    let text = text.trim();
    let bad = || {
        format!(
            "{} is not an offset: write UTC, +02:00 or -05:00",
            echo(text)
        )
    };
    if text.eq_ignore_ascii_case("utc") || text.eq_ignore_ascii_case("z") {
        return Ok(FixedOffset::east_opt(0).expect("zero is in range"));
    }
    let (sign, rest) = match text.as_bytes().first() {
        Some(b'+') => (1, &text[1..]),
        Some(b'-') => (-1, &text[1..]),
        _ => return Err(bad()),
    };
    let (hours, minutes) = match rest.split_once(':') {
        Some(parts) => parts,
        None if rest.len() == 4 => rest.split_at(2),
        None => (rest, "0"),
    };
    if hours.is_empty() || hours.len() > 2 || minutes.len() > 2 {
        return Err(bad());
    }
    let hours: i32 = hours.parse().map_err(|_| bad())?;
    let minutes: i32 = minutes.parse().map_err(|_| bad())?;
    if hours > 14 || minutes > 59 {
        return Err(bad());
    }
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60)).ok_or_else(bad)
}

/// A timestamp as products write them: RFC 3339 with an offset, or without one (MySQL's
/// `DATETIME`, an export's `2026-11-02 10:00:00`), which is read in `zone`. A date alone is its
/// midnight in `zone`.
/// Kept to the microsecond, the precision both stores hold, so "no newer than the bot's copy"
/// compares like with like.
pub fn parse_time(text: &str, zone: FixedOffset) -> Result<DateTime<Utc>, String> {
    parse_any(text.trim(), zone).map(|at| at.trunc_subsecs(6))
}

fn parse_any(text: &str, zone: FixedOffset) -> Result<DateTime<Utc>, String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    if let Ok(at) = DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%:z") {
        return Ok(at.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
            return local(naive, zone);
        }
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return local(date.and_hms_opt(0, 0, 0).expect("midnight exists"), zone);
    }
    Err(format!(
        "{} is not a timestamp (use RFC 3339, e.g. 2026-11-02T10:00:00Z, or 2026-11-02 10:00:00)",
        echo(text)
    ))
}

fn local(naive: NaiveDateTime, zone: FixedOffset) -> Result<DateTime<Utc>, String> {
    zone.from_local_datetime(&naive)
        .single()
        .map(|at| at.with_timezone(&Utc))
        .ok_or_else(|| format!("{naive} does not exist in the offset {zone}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn maps() -> ValueMaps {
        ValueMaps {
            role: ValueMap::new(BTreeMap::from([
                ("1".into(), "learner".into()),
                ("2".into(), "trainer".into()),
            ])),
            status: ValueMap::new(BTreeMap::from([
                ("0".into(), "invited".into()),
                ("1".into(), "active".into()),
                ("2".into(), "deactivated".into()),
            ])),
        }
    }

    #[test]
    fn mapped_values_translate_and_unmapped_ones_are_errors_naming_the_value() {
        let maps = maps();
        assert_eq!(maps.role("2"), Ok(Role::Trainer));
        assert_eq!(maps.status(" 0 "), Ok(MemberStatus::Invited));
        let error = maps.status("9").unwrap_err();
        assert!(
            error.contains("\"9\"") && error.contains("0, 1, 2"),
            "{error}"
        );
        // With a map set, the bot's own word is not silently accepted either.
        assert!(maps.role("learner").is_err());
    }

    #[test]
    fn without_a_map_the_bots_words_are_taken_and_others_refused_with_a_hint() {
        let maps = ValueMaps::identity();
        assert_eq!(maps.role("trainer"), Ok(Role::Trainer));
        let error = maps.status("1").unwrap_err();
        assert!(error.contains("status_map"), "{error}");
    }

    #[test]
    fn a_map_to_a_word_the_bot_does_not_know_is_a_config_error() {
        let mut maps = maps();
        assert_eq!(maps.check(), Ok(()));
        maps.status = ValueMap::new(BTreeMap::from([("3".into(), "banned".into())]));
        assert!(maps.check().unwrap_err().contains("banned"));
    }

    #[test]
    fn offsets_are_utc_or_signed_hours_and_minutes() {
        for (text, seconds) in [
            ("UTC", 0),
            ("Z", 0),
            ("+02:00", 7200),
            ("-05:30", -19800),
            ("-0530", -19800),
            ("+2", 7200),
        ] {
            assert_eq!(
                parse_offset(text).map(|o| o.local_minus_utc()),
                Ok(seconds),
                "{text}"
            );
        }
        for bad in ["", "CET", "2:00", "+02:60"] {
            assert!(parse_offset(bad).is_err(), "{bad}");
        }
        assert!(parse_offset("Europe/Paris")
            .unwrap_err()
            .contains("Europe/Paris"));
        assert!(parse_offset("+25:00").is_err());
    }

    #[test]
    fn timestamps_without_a_zone_are_read_in_the_configured_offset() {
        let utc = FixedOffset::east_opt(0).unwrap();
        let paris = FixedOffset::east_opt(3600).unwrap();
        assert_eq!(
            parse_time("2026-11-02 10:00:00", paris)
                .unwrap()
                .to_rfc3339(),
            "2026-11-02T09:00:00+00:00"
        );
        assert_eq!(
            parse_time("2026-11-02T10:00:00+02:00", utc)
                .unwrap()
                .to_rfc3339(),
            "2026-11-02T08:00:00+00:00"
        );
        assert_eq!(
            parse_time("2026-11-02 10:00:00.250", utc)
                .unwrap()
                .to_rfc3339(),
            "2026-11-02T10:00:00.250+00:00"
        );
        assert_eq!(
            parse_time("2026-11-02", utc).unwrap().to_rfc3339(),
            "2026-11-02T00:00:00+00:00"
        );
        assert!(parse_time("yesterday", utc)
            .unwrap_err()
            .contains("yesterday"));
        assert!(parse_time(&"9".repeat(10_000), utc).unwrap_err().len() < 200);
    }
}
