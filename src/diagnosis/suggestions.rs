//! "Did you mean ...?": addresses a mistyped one probably meant.
//!
//! Candidates come only from index ranges, never from the whole table: members with the same local
//! part (a near domain), and members at the same domain whose local part shares a prefix or a suffix
//! with the typed one. A single edit at position `i` leaves either the first `n/3` characters or the
//! last `n/3` characters intact, so one of the two ranges always holds the intended member.
//! Each range is read only around the typed address (a window each way, all ranges in one round
//! trip): at gmail.com a range like "john." holds thousands of members, but the intended one sorts
//! next to the typo, since only keys that share the longer intact part can lie between them.
//! A suggestion is only ever a hint: nothing here changes which member a check is about.

use std::collections::HashMap;

use crate::domain::email::EmailAddress;
use crate::domain::member::{MemberCandidate, NearQuery};

/// How far apart (in edits) a part may be and still be suggested.
pub const MAX_PART_DISTANCE: usize = 2;
/// Rows read per candidate range; ranges are narrow, this only caps pathological prefixes.
const CANDIDATES_PER_RANGE: i64 = 400;
/// Rows read each way around the typed address in the domain's prefix and suffix ranges. The
/// intended member sits within a few rows of it (only keys sharing the longer intact part lie
/// between them), so a small window finds it even in a range of thousands at gmail.com.
const CANDIDATES_WINDOW: i64 = 64;

/// Webmail providers: their domains are shared by unrelated people, so a domain-wide delivery problem
/// there says nothing about one company's mail server, and a near-miss of one is almost always a typo.
pub const MAILBOX_PROVIDERS: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "yahoo.co.uk",
    "yahoo.fr",
    "ymail.com",
    "hotmail.com",
    "hotmail.co.uk",
    "hotmail.fr",
    "outlook.com",
    "live.com",
    "msn.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "aol.com",
    "gmx.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "mail.com",
    "proton.me",
    "protonmail.com",
    "zoho.com",
    "yandex.com",
    "yandex.ru",
    "mail.ru",
    "orange.fr",
    "free.fr",
    "t-online.de",
    "comcast.net",
    "qq.com",
    "163.com",
];

/// Typos seen often enough to be worth naming even where edit distance alone would hesitate.
const PROVIDER_TYPOS: &[(&str, &str)] = &[
    ("gmial.com", "gmail.com"),
    ("gmai.com", "gmail.com"),
    ("gmal.com", "gmail.com"),
    ("gnail.com", "gmail.com"),
    ("gmaill.com", "gmail.com"),
    ("gmail.con", "gmail.com"),
    ("gmail.cmo", "gmail.com"),
    ("gmail.co", "gmail.com"),
    ("gmail.om", "gmail.com"),
    ("gamil.com", "gmail.com"),
    ("hotmial.com", "hotmail.com"),
    ("hotmal.com", "hotmail.com"),
    ("hotmai.com", "hotmail.com"),
    ("hotmail.con", "hotmail.com"),
    ("hotmil.com", "hotmail.com"),
    ("outlok.com", "outlook.com"),
    ("outloo.com", "outlook.com"),
    ("outlook.con", "outlook.com"),
    ("yaho.com", "yahoo.com"),
    ("yahooo.com", "yahoo.com"),
    ("yahoo.con", "yahoo.com"),
    ("iclod.com", "icloud.com"),
    ("icloud.con", "icloud.com"),
];

pub fn is_mailbox_provider(domain: &str) -> bool {
    MAILBOX_PROVIDERS.contains(&domain)
}

/// The provider domain a mistyped domain most likely meant, if any.
pub fn provider_domain_fix(domain: &str) -> Option<&'static str> {
    if is_mailbox_provider(domain) {
        return None;
    }
    if let Some((_, fix)) = PROVIDER_TYPOS.iter().find(|(typo, _)| *typo == domain) {
        return Some(fix);
    }
    MAILBOX_PROVIDERS
        .iter()
        .filter(|provider| provider.len() >= 7)
        .map(|provider| (edit_distance(domain, provider, 1), *provider))
        .filter_map(|(d, p)| d.map(|d| (d, p)))
        .min()
        .map(|(_, provider)| provider)
}

/// Optimal-string-alignment distance (insertions, deletions, substitutions and adjacent
/// transpositions), or `None` when it exceeds `max`. Bounded so that ranking hundreds of candidates
/// stays cheap.
pub fn edit_distance(a: &str, b: &str, max: usize) -> Option<usize> {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > max {
        return None;
    }
    let width = b.len() + 1;
    let mut two_back = vec![0usize; width];
    let mut previous: Vec<usize> = (0..width).collect();
    let mut current = vec![0usize; width];
    for i in 1..=a.len() {
        current[0] = i;
        let mut row_min = current[0];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(two_back[j - 2] + 1);
            }
            current[j] = best;
            row_min = row_min.min(best);
        }
        if row_min > max {
            return None;
        }
        std::mem::swap(&mut two_back, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    let distance = previous[b.len()];
    (distance <= max).then_some(distance)
}

/// One ranked suggestion.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ranked {
    distance: usize,
    /// Members outrank addresses that merely fix a provider typo.
    is_member: bool,
    key: String,
    display: String,
}

/// The ranges a suggestion for `email` is picked from: what the engine asks the store for.
///
/// The ranges only bound the windows: a third each way is still one edit's intact part on at
/// least one side (for n >= 3), and short bounds let the window on the side with the longer
/// intact part reach the intended member (`michelle.iecker`: the suffix side, `?ecker`).
pub fn near_query(email: &EmailAddress) -> NearRanges {
    let local_chars: Vec<char> = email.local_part().chars().collect();
    let third = local_chars.len() / 3;
    NearRanges {
        local_prefix: local_chars[..third].iter().collect(),
        reversed_suffix: local_chars.iter().rev().take(third).collect(),
        local_rev: local_chars.iter().rev().collect(),
    }
}

/// The owned parts of a [`NearQuery`]; [`NearRanges::query`] borrows them with the address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NearRanges {
    local_prefix: String,
    reversed_suffix: String,
    local_rev: String,
}

impl NearRanges {
    pub fn query<'a>(&'a self, email: &'a EmailAddress) -> NearQuery<'a> {
        NearQuery {
            local: email.local_part(),
            domain: email.domain(),
            local_prefix: &self.local_prefix,
            local_rev: &self.local_rev,
            reversed_suffix: &self.reversed_suffix,
            same_local_limit: CANDIDATES_PER_RANGE,
            window: CANDIDATES_WINDOW,
        }
    }
}

/// What `email` probably meant, best first, at most `limit`, from the `candidates` the store
/// found in [`near_query`]'s ranges, plus common webmail typos.
///
/// `workspaces` limits member candidates to those workspace ids; `None` takes all of them.
/// The address itself is never suggested.
pub fn rank(
    email: &EmailAddress,
    candidates: Vec<MemberCandidate>,
    workspaces: Option<&[i64]>,
    limit: usize,
) -> Vec<String> {
    let local = email.local_part();
    let domain = email.domain();
    let mut ranked: HashMap<String, Ranked> = HashMap::new();
    for candidate in candidates {
        if candidate.email_key == email.key()
            || workspaces.is_some_and(|ids| !ids.contains(&candidate.workspace_id))
        {
            continue;
        }
        let distance = if candidate.local_key == local {
            edit_distance(domain, &candidate.domain_key, MAX_PART_DISTANCE)
        } else if candidate.domain_key == domain {
            edit_distance(local, &candidate.local_key, MAX_PART_DISTANCE)
        } else {
            None
        };
        if let Some(distance) = distance {
            ranked.entry(candidate.email_key.clone()).or_insert(Ranked {
                distance,
                is_member: true,
                key: candidate.email_key,
                display: candidate.email,
            });
        }
    }
    if let Some(fix) = provider_domain_fix(domain) {
        let key = format!("{local}@{fix}");
        ranked.entry(key.clone()).or_insert(Ranked {
            distance: edit_distance(domain, fix, usize::MAX).unwrap_or(usize::MAX),
            is_member: false,
            display: key.clone(),
            key,
        });
    }

    let mut ranked: Vec<Ranked> = ranked.into_values().collect();
    ranked.sort_by(|a, b| {
        (a.distance, !a.is_member, &a.key).cmp(&(b.distance, !b.is_member, &b.key))
    });
    ranked.into_iter().take(limit).map(|r| r.display).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn distance_counts_each_kind_of_typo_once() {
        assert_eq!(edit_distance("jane", "jane", 2), Some(0));
        assert_eq!(edit_distance("jane", "jnae", 2), Some(1)); // transposition
        assert_eq!(edit_distance("jane", "jan", 2), Some(1)); // deletion
        assert_eq!(edit_distance("jane", "janne", 2), Some(1)); // insertion
        assert_eq!(edit_distance("jane", "jone", 2), Some(1)); // substitution
        assert_eq!(edit_distance("jane", "joan", 2), Some(2));
        assert_eq!(edit_distance("jane", "bob", 2), None);
        assert_eq!(edit_distance("jane", "janette", 2), None);
    }

    #[test]
    fn fixes_provider_typos() {
        assert_eq!(provider_domain_fix("gmial.com"), Some("gmail.com"));
        assert_eq!(provider_domain_fix("gmail.con"), Some("gmail.com"));
        assert_eq!(provider_domain_fix("hotmial.com"), Some("hotmail.com"));
        assert_eq!(provider_domain_fix("outlok.com"), Some("outlook.com"));
        assert_eq!(provider_domain_fix("yaho.com"), Some("yahoo.com"));
        assert_eq!(provider_domain_fix("gmail.com"), None);
        assert_eq!(provider_domain_fix("acme.com"), None);
    }

    proptest! {
        #[test]
        fn distance_is_symmetric_and_zero_only_for_equal(a in "[a-d]{0,8}", b in "[a-d]{0,8}") {
            let ab = edit_distance(&a, &b, 16);
            prop_assert_eq!(ab, edit_distance(&b, &a, 16));
            prop_assert_eq!(ab == Some(0), a == b);
        }
    }

    fn candidate(workspace_id: i64, email: &str) -> MemberCandidate {
        let (local, domain) = email.split_once('@').unwrap();
        MemberCandidate {
            workspace_id,
            email: email.to_owned(),
            email_key: email.to_lowercase(),
            local_key: local.to_lowercase(),
            domain_key: domain.to_lowercase(),
        }
    }

    #[test]
    fn ranks_members_by_distance_within_the_workspace_and_never_the_address_itself() {
        let typed = EmailAddress::parse("jane.deo@acme.com").unwrap();
        let candidates = vec![
            candidate(1, "Jane.Doe@acme.com"),
            candidate(1, "jane.deo@acme.com"),
            candidate(1, "jane.deo@acme.co"),
            candidate(2, "jane.dee@acme.com"),
            candidate(1, "bob@acme.com"),
        ];
        assert_eq!(
            rank(&typed, candidates.clone(), Some(&[1]), 5),
            ["jane.deo@acme.co", "Jane.Doe@acme.com"]
        );
        assert_eq!(rank(&typed, candidates, None, 1), ["jane.dee@acme.com"]);
    }

    #[test]
    fn webmail_typos_are_suggested_without_any_member() {
        let typed = EmailAddress::parse("sam@gmial.com").unwrap();
        assert_eq!(rank(&typed, Vec::new(), None, 5), ["sam@gmail.com"]);
    }

    #[test]
    fn the_ranges_keep_a_third_of_the_local_part_on_each_side() {
        let typed = EmailAddress::parse("michelle.iecker@acme.com").unwrap();
        let ranges = near_query(&typed);
        let query = ranges.query(&typed);
        assert_eq!(query.local_prefix, "miche");
        assert_eq!(query.reversed_suffix, "rekce");
        assert_eq!(query.local_rev, "rekcei.ellehcim");
    }
}
