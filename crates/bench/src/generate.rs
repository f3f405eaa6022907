//! Synthetic but realistic workspace data: who the members are, and the addresses people mistype.
//!
//! Real workspaces are dominated by a handful of webmail providers (gmail.com alone holds about a
//! third of the addresses) with the rest spread over thousands of company domains of very uneven
//! size. Local parts follow the few patterns people and IT departments use: `first.last`, `flast42`,
//! `first_last`, ... That shape matters to the benchmark: it decides how wide the suggestion ranges
//! are and how many near neighbours a typo has.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::Rng;

use invite_bot::domain::email::EmailAddress;
use invite_bot::domain::member::{MemberStatus, Role};

#[rustfmt::skip]
const FIRST_NAMES: &[&str] = &[
    "james", "mary", "john", "patricia", "robert", "jennifer", "michael", "linda", "william",
    "elizabeth", "david", "barbara", "richard", "susan", "joseph", "jessica", "thomas", "sarah",
    "charles", "karen", "christopher", "nancy", "daniel", "lisa", "matthew", "betty", "anthony",
    "margaret", "mark", "sandra", "donald", "ashley", "steven", "kimberly", "paul", "emily",
    "andrew", "donna", "joshua", "michelle", "kenneth", "dorothy", "kevin", "carol", "brian",
    "amanda", "george", "melissa", "edward", "deborah", "ronald", "stephanie", "timothy", "rebecca",
    "jason", "sharon", "jeffrey", "laura", "ryan", "cynthia", "jacob", "kathleen", "gary", "amy",
    "nicholas", "shirley", "eric", "angela", "jonathan", "helen", "stephen", "anna", "larry",
    "brenda", "justin", "pamela", "scott", "nicole", "brandon", "emma", "benjamin", "samantha",
    "samuel", "katherine", "gregory", "christine", "frank", "debra", "alexander", "rachel",
    "raymond", "catherine", "patrick", "carolyn", "jack", "janet", "dennis", "ruth", "jerry",
    "maria", "tyler", "heather", "aaron", "diane", "jose", "virginia", "adam", "julie", "henry",
    "joyce", "nathan", "victoria", "douglas", "olivia", "zachary", "kelly", "peter", "christina",
    "kyle", "lauren", "walter", "joan", "ethan", "evelyn", "jeremy", "judith", "harold", "megan",
    "keith", "cheryl", "christian", "andrea", "roger", "hannah", "noah", "martha", "gerald",
    "jacqueline", "carl", "frances", "terry", "gloria", "sean", "ann", "austin", "teresa", "arthur",
    "kathryn", "lawrence", "sara", "jesse", "janice", "dylan", "jean", "bryan", "alice", "joe",
    "madison", "jordan", "doris", "billy", "abigail", "bruce", "julia", "albert", "judy", "willie",
    "grace", "gabriel", "denise", "logan", "amber", "alan", "marilyn", "juan", "beverly", "wayne",
    "danielle", "roy", "theresa", "ralph", "sophia", "randy", "marie", "eugene", "diana", "vincent",
    "brittany", "russell", "natalie", "elijah", "isabella", "louis", "charlotte", "bobby", "rose",
    "philip", "alexis", "johnny", "kayla", "priya", "omar", "wei", "yuki", "fatima", "lukas",
    "sofia", "mateo", "chloe", "kofi", "ana", "ivan", "lea", "ahmed", "mei", "hugo", "ines", "raj",
    "elena", "tomas", "nina", "leon",
];

#[rustfmt::skip]
const LAST_NAMES: &[&str] = &[
    "smith", "johnson", "williams", "brown", "jones", "garcia", "miller", "davis", "rodriguez",
    "martinez", "hernandez", "lopez", "gonzalez", "wilson", "anderson", "thomas", "taylor", "moore",
    "jackson", "martin", "lee", "perez", "thompson", "white", "harris", "sanchez", "clark",
    "ramirez", "lewis", "robinson", "walker", "young", "allen", "king", "wright", "scott", "torres",
    "nguyen", "hill", "flores", "green", "adams", "nelson", "baker", "hall", "rivera", "campbell",
    "mitchell", "carter", "roberts", "gomez", "phillips", "evans", "turner", "diaz", "parker",
    "cruz", "edwards", "collins", "reyes", "stewart", "morris", "morales", "murphy", "cook",
    "rogers", "gutierrez", "ortiz", "morgan", "cooper", "peterson", "bailey", "reed", "kelly",
    "howard", "ramos", "kim", "cox", "ward", "richardson", "watson", "brooks", "chavez", "wood",
    "james", "bennett", "gray", "mendoza", "ruiz", "hughes", "price", "alvarez", "castillo",
    "sanders", "patel", "myers", "long", "ross", "foster", "jimenez", "powell", "jenkins", "perry",
    "russell", "sullivan", "bell", "coleman", "butler", "henderson", "barnes", "gonzales", "fisher",
    "vasquez", "simmons", "romero", "jordan", "patterson", "alexander", "hamilton", "graham",
    "reynolds", "griffin", "wallace", "moreno", "west", "cole", "hayes", "bryant", "herrera",
    "gibson", "ellis", "tran", "medina", "aguilar", "stevens", "murray", "ford", "castro",
    "marshall", "owens", "harrison", "fernandez", "mcdonald", "woods", "washington", "kennedy",
    "wells", "vargas", "henry", "chen", "freeman", "webb", "tucker", "guzman", "burns", "crawford",
    "olson", "simpson", "porter", "hunter", "gordon", "mendez", "silva", "shaw", "snyder", "mason",
    "dixon", "munoz", "hunt", "hicks", "holmes", "palmer", "wagner", "black", "robertson", "boyd",
    "rose", "stone", "salazar", "fox", "warren", "mills", "meyer", "rice", "schmidt", "garza",
    "daniels", "ferguson", "nichols", "stephens", "soto", "weaver", "ryan", "gardner", "payne",
    "grant", "dunn", "kelley", "spencer", "hawkins", "arnold", "pierce", "vazquez", "hansen",
    "peters", "santos", "hart", "bradley", "knight", "elliott", "cunningham", "duncan", "armstrong",
    "hudson", "carroll", "lane", "riley", "andrews", "alvarado", "ray", "delgado", "berry",
    "perkins", "hoffman", "johnston", "matthews", "pena", "richards", "contreras", "willis",
    "carpenter", "lawrence", "sandoval", "haddad", "mensah", "novak", "souza", "becker", "wong",
    "tanaka", "kowalski", "muller", "rossi", "dubois", "jansen", "nielsen", "ivanov", "singh",
    "kumar", "yamamoto", "okafor", "larsen",
];

/// Webmail providers and their share of all addresses, in per mille (the rest are company domains).
const WEBMAIL_SHARES: &[(&str, u32)] = &[
    ("gmail.com", 330),
    ("yahoo.com", 60),
    ("hotmail.com", 50),
    ("outlook.com", 50),
    ("icloud.com", 25),
    ("aol.com", 10),
    ("gmx.de", 10),
    ("hotmail.co.uk", 10),
    ("live.com", 10),
    ("proton.me", 5),
];

#[rustfmt::skip]
const COMPANY_WORDS: &[&str] = &[
    "acme", "globex", "initech", "umbrella", "stark", "wayne", "hooli", "vandelay", "wonka",
    "cyberdyne", "tyrell", "soylent", "massive", "dynamic", "north", "south", "blue", "red",
    "green", "silver", "golden", "bright", "rapid", "prime", "nova", "apex", "summit", "river",
    "ocean", "mountain", "cloud", "data", "logic", "micro", "mega", "smart", "true", "clear",
    "first", "united", "global", "alpha", "beta", "delta", "omega", "zen", "peak", "core", "fusion",
    "quantum", "vertex", "pixel", "spark", "stone", "iron", "cedar", "maple", "oak", "pine",
];

#[rustfmt::skip]
const COMPANY_SUFFIXES: &[&str] = &[
    "corp", "labs", "tech", "systems", "group", "works", "soft", "media", "health", "bank",
    "energy", "logistics", "consulting", "partners", "academy", "foods", "motors", "retail",
    "insurance", "solutions",
];

/// The first 1,200 domains (the biggest companies) are all `.com`; later rounds use the others.
const COMPANY_TLDS: &[&str] = &["com", "io", "co.uk", "de", "org", "net", "fr", "nl"];

/// How many company domains a workspace of `members` members spreads over: thousands at a million.
pub fn company_domain_count(members: u64) -> usize {
    (members / 300).clamp(20, 5_000) as usize
}

/// The `i`-th company domain; distinct for every `i` below [`company_domain_count`]'s maximum.
pub fn company_domain(i: usize) -> String {
    let words = COMPANY_WORDS.len();
    let suffixes = COMPANY_SUFFIXES.len();
    let word = COMPANY_WORDS[i % words];
    let suffix = COMPANY_SUFFIXES[(i / words) % suffixes];
    let tld = COMPANY_TLDS[(i / (words * suffixes)) % COMPANY_TLDS.len()];
    let tld_round = i / (words * suffixes * COMPANY_TLDS.len());
    if tld_round == 0 {
        format!("{word}-{suffix}.{tld}")
    } else {
        format!("{word}{suffix}{tld_round}.{tld}")
    }
}

/// One member to insert, already normalized.
#[derive(Debug, Clone)]
pub struct SyntheticMember {
    /// 0-based index of the workspace among the bench's workspaces.
    pub workspace: usize,
    pub email: String,
    pub email_key: String,
    pub local_key: String,
    pub domain_key: String,
    pub local_rev: String,
    pub role: Role,
    pub status: MemberStatus,
    pub invited_at: DateTime<Utc>,
    pub activated_at: Option<DateTime<Utc>>,
}

/// Produces distinct members, one at a time, so a million of them never sit in memory at once.
pub struct MemberGenerator {
    rng: StdRng,
    workspaces: usize,
    company_domains: usize,
    now: DateTime<Utc>,
    /// Hashes of (workspace, key) already produced: 8 bytes a member instead of the whole address.
    seen: HashSet<u64>,
}

impl MemberGenerator {
    pub fn new(rng: StdRng, members: u64, workspaces: usize, now: DateTime<Utc>) -> Self {
        Self {
            rng,
            workspaces: workspaces.max(1),
            company_domains: company_domain_count(members),
            now,
            seen: HashSet::with_capacity(members.min(2_000_000) as usize),
        }
    }

    fn domain(&mut self) -> String {
        let roll = self.rng.gen_range(0..1000u32);
        let mut acc = 0;
        for (domain, share) in WEBMAIL_SHARES {
            acc += share;
            if roll < acc {
                return (*domain).to_owned();
            }
        }
        // Company sizes are very uneven: squaring a uniform draw favours the low indexes.
        let u: f64 = self.rng.gen();
        let i = ((u * u) * self.company_domains as f64) as usize;
        company_domain(i.min(self.company_domains - 1))
    }

    fn local_part(&mut self) -> String {
        let first = FIRST_NAMES[self.rng.gen_range(0..FIRST_NAMES.len())];
        let last = LAST_NAMES[self.rng.gen_range(0..LAST_NAMES.len())];
        let initial = &first[..1];
        match self.rng.gen_range(0..100u32) {
            0..=34 => format!("{first}.{last}"),
            35..=49 => format!("{initial}{last}{}", self.rng.gen_range(1..100u32)),
            50..=59 => format!("{first}_{last}"),
            60..=69 => format!("{first}{last}"),
            70..=84 => format!("{first}.{last}{}", self.rng.gen_range(1..1000u32)),
            85..=89 => format!("{initial}.{last}"),
            _ => format!("{first}{}", self.rng.gen_range(10..10_000u32)),
        }
    }

    /// The next member, distinct (by workspace and address key) from every one before it.
    pub fn next_member(&mut self) -> SyntheticMember {
        let workspace = self.rng.gen_range(0..self.workspaces);
        let domain = self.domain();
        let mut local = self.local_part();
        loop {
            let key = format!("{local}@{domain}");
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            (workspace, &key).hash(&mut hasher);
            if self.seen.insert(hasher.finish()) {
                break;
            }
            // Taken: people then add digits, as webmail sign-up forms suggest.
            local = format!("{local}{}", self.rng.gen_range(1..10u32));
        }
        // Some admins type addresses with capitals; the key is what compares.
        let as_entered = if self.rng.gen_ratio(1, 10) {
            capitalize_words(&format!("{local}@{domain}"))
        } else {
            format!("{local}@{domain}")
        };
        let parsed = EmailAddress::parse(&as_entered).expect("generated addresses are valid");
        let role = if self.rng.gen_ratio(1, 25) {
            Role::Trainer
        } else {
            Role::Learner
        };
        let status = match self.rng.gen_range(0..100u32) {
            0..=77 => MemberStatus::Active,
            78..=96 => MemberStatus::Invited,
            _ => MemberStatus::Deactivated,
        };
        let invited_at =
            self.now - Duration::minutes(self.rng.gen_range(10..(400 * 24 * 60)) as i64);
        let activated_at = (status != MemberStatus::Invited)
            .then(|| invited_at + Duration::minutes(self.rng.gen_range(5..(3 * 24 * 60)) as i64));
        SyntheticMember {
            workspace,
            email: parsed.as_entered().to_owned(),
            email_key: parsed.key().to_owned(),
            local_key: parsed.local_part().to_owned(),
            domain_key: parsed.domain().to_owned(),
            local_rev: parsed.local_part().chars().rev().collect(),
            role,
            status,
            invited_at,
            activated_at,
        }
    }
}

fn capitalize_words(address: &str) -> String {
    let mut out = String::with_capacity(address.len());
    let mut start = true;
    for c in address.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = matches!(c, '.' | '_' | '@');
    }
    out
}

/// Which single edit a typo applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypoKind {
    Insertion,
    Deletion,
    Substitution,
    Transposition,
}

impl TypoKind {
    pub const ALL: [TypoKind; 4] = [
        TypoKind::Insertion,
        TypoKind::Deletion,
        TypoKind::Substitution,
        TypoKind::Transposition,
    ];
}

const TYPO_LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyz";

/// Applies one edit of `kind` to `part` at a random position; `None` when the part is too short
/// for it or the edit would change nothing.
pub fn apply_typo(rng: &mut StdRng, part: &str, kind: TypoKind) -> Option<String> {
    let mut chars: Vec<char> = part.chars().collect();
    let n = chars.len();
    match kind {
        TypoKind::Insertion => {
            let at = rng.gen_range(0..=n);
            let c = char::from(TYPO_LETTERS[rng.gen_range(0..TYPO_LETTERS.len())]);
            chars.insert(at, c);
        }
        TypoKind::Deletion => {
            if n < 2 {
                return None;
            }
            chars.remove(rng.gen_range(0..n));
        }
        TypoKind::Substitution => {
            if n == 0 {
                return None;
            }
            let at = rng.gen_range(0..n);
            let c = char::from(TYPO_LETTERS[rng.gen_range(0..TYPO_LETTERS.len())]);
            if chars[at] == c {
                return None;
            }
            chars[at] = c;
        }
        TypoKind::Transposition => {
            if n < 2 {
                return None;
            }
            let at = rng.gen_range(0..n - 1);
            if chars[at] == chars[at + 1] {
                return None;
            }
            chars.swap(at, at + 1);
        }
    }
    Some(chars.into_iter().collect())
}

/// An address one edit (in the local part or the domain) away from `key`, still a valid address.
/// The caller makes sure it is not itself somebody's address.
pub fn typo_of(rng: &mut StdRng, key: &str) -> Option<(EmailAddress, TypoKind)> {
    let (local, domain) = key.split_once('@')?;
    for _ in 0..20 {
        let kind = TypoKind::ALL[rng.gen_range(0..TypoKind::ALL.len())];
        // Most typos land in the local part: it is longer and less familiar than the domain.
        let typo = if rng.gen_ratio(7, 10) {
            apply_typo(rng, local, kind).map(|l| format!("{l}@{domain}"))
        } else {
            apply_typo(rng, domain, kind).map(|d| format!("{local}@{d}"))
        };
        let Some(typo) = typo else { continue };
        // A typo that breaks the domain's shape (no dot, dot at an end) is refused at parse; skip it.
        if let Ok(address) = EmailAddress::parse(&typo) {
            let domain_ok = address.domain().contains('.')
                && !address.domain().starts_with('.')
                && !address.domain().ends_with('.')
                && !address.domain().contains("..");
            if address.key() != key && domain_ok {
                return Some((address, kind));
            }
        }
    }
    None
}

/// An address that no member resembles: random letters at a domain no member uses.
pub fn unknown_address(rng: &mut StdRng) -> EmailAddress {
    let word = |rng: &mut StdRng, len: usize| -> String {
        (0..len)
            .map(|_| char::from(b"qxzjkvwy"[rng.gen_range(0..8)]))
            .collect()
    };
    let local = word(rng, 9);
    let domain = format!("{}.invalid-bench.example", word(rng, 7));
    EmailAddress::parse(&format!("{local}@{domain}")).expect("a valid address")
}

#[cfg(test)]
mod tests {
    use super::*;
    use invite_bot::diagnosis::suggestions::edit_distance;
    use rand::SeedableRng;

    fn members(n: u64) -> Vec<SyntheticMember> {
        let mut generator = MemberGenerator::new(StdRng::seed_from_u64(7), n, 3, Utc::now());
        (0..n).map(|_| generator.next_member()).collect()
    }

    #[test]
    fn addresses_are_valid_normalized_and_distinct() {
        let members = members(20_000);
        let mut keys = HashSet::new();
        for m in &members {
            let parsed = EmailAddress::parse(&m.email).unwrap();
            assert_eq!(parsed.key(), m.email_key);
            assert_eq!(format!("{}@{}", m.local_key, m.domain_key), m.email_key);
            assert_eq!(m.local_rev.chars().rev().collect::<String>(), m.local_key);
            assert!(
                keys.insert((m.workspace, m.email_key.clone())),
                "{} twice",
                m.email_key
            );
            assert!(m.workspace < 3);
            assert_eq!(m.activated_at.is_some(), m.status != MemberStatus::Invited);
        }
    }

    #[test]
    fn most_addresses_are_webmail_and_the_rest_spread_over_many_companies() {
        let members = members(30_000);
        let share = |domain: &str| {
            members.iter().filter(|m| m.domain_key == domain).count() as f64 / members.len() as f64
        };
        let gmail = share("gmail.com");
        assert!((0.28..0.38).contains(&gmail), "gmail share {gmail}");
        let webmail: f64 = WEBMAIL_SHARES.iter().map(|(d, _)| share(d)).sum();
        assert!((0.50..0.65).contains(&webmail), "webmail share {webmail}");
        let companies: HashSet<&str> = members
            .iter()
            .map(|m| m.domain_key.as_str())
            .filter(|d| !WEBMAIL_SHARES.iter().any(|(w, _)| w == d))
            .collect();
        assert!(companies.len() >= 90, "{} company domains", companies.len());
        // Realistic local parts: first.last and flast42 shapes are both common.
        let dotted = members.iter().filter(|m| m.local_key.contains('.')).count();
        let with_digits = members
            .iter()
            .filter(|m| m.local_key.ends_with(|c: char| c.is_ascii_digit()))
            .count();
        assert!(dotted > members.len() / 3, "{dotted} dotted");
        assert!(with_digits > members.len() / 5, "{with_digits} with digits");
    }

    #[test]
    fn company_domains_are_distinct_in_their_thousands() {
        let count = company_domain_count(1_000_000);
        assert!(count >= 3_000);
        let domains: HashSet<String> = (0..count).map(company_domain).collect();
        assert_eq!(domains.len(), count);
        for d in &domains {
            assert!(EmailAddress::parse(&format!("x@{d}")).is_ok(), "{d}");
        }
    }

    #[test]
    fn typos_are_exactly_one_edit_away() {
        let mut rng = StdRng::seed_from_u64(11);
        let mut kinds = HashSet::new();
        for m in members(2_000) {
            let (typo, kind) = typo_of(&mut rng, &m.email_key).expect("a typo");
            kinds.insert(format!("{kind:?}"));
            assert_ne!(typo.key(), m.email_key);
            let local = edit_distance(typo.local_part(), &m.local_key, 3).unwrap();
            let domain = edit_distance(typo.domain(), &m.domain_key, 3).unwrap();
            assert_eq!(local + domain, 1, "{} -> {}", m.email_key, typo.key());
        }
        assert_eq!(kinds.len(), 4);
    }

    #[test]
    fn unknown_addresses_resemble_no_generated_member() {
        let mut rng = StdRng::seed_from_u64(5);
        let members = members(5_000);
        for _ in 0..50 {
            let unknown = unknown_address(&mut rng);
            assert!(members.iter().all(|m| m.domain_key != unknown.domain()
                && edit_distance(&m.local_key, unknown.local_part(), 2).is_none()));
        }
    }
}
