//! `EmailAddress`: the only way an address enters the engine is by parsing what a person pasted.

use std::fmt;

/// RFC 5321 limits, which every mail server enforces.
const MAX_ADDRESS_LEN: usize = 254;
const MAX_LOCAL_LEN: usize = 64;
const MAX_LABEL_LEN: usize = 63;
/// Raw input longer than this is refused before any clean-up, so no step after it can be made to
/// take long: an address with everything people paste around it (`Name <mailto:...>,`) fits.
const MAX_INPUT_BYTES: usize = 1024;

/// What is wrong with an address. The `Display` text is for logs and the command line; a person in
/// the chat is told in the words of `prompts/errors.j2`, from [`EmailError::facts`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("the address is empty")]
    Empty,
    #[error("the address has no `@`: it should look like name@example.com")]
    MissingAt,
    #[error("the address has more than one `@`")]
    MultipleAt,
    #[error("the address contains a space; remove it")]
    ContainsSpace,
    #[error("the address contains an invisible control character; retype it")]
    ControlCharacter,
    #[error(
        "the address contains an invisible formatting character (U+{:04X}); retype it",
        u32::from(*.0)
    )]
    InvisibleCharacter(char),
    #[error("the text is {0} bytes long, far more than one address; paste only the address")]
    InputTooLong(usize),
    #[error("nothing comes before the `@`")]
    EmptyLocalPart,
    #[error("nothing comes after the `@`")]
    EmptyDomain,
    #[error("the domain `{0}` has no dot: it should look like example.com")]
    DomainWithoutDot(String),
    #[error("the address is {0} characters long; the limit is 254")]
    TooLong(usize),
    #[error("the part before the `@` is {0} characters long; the limit is 64")]
    LocalPartTooLong(usize),
    #[error("the character `{0}` is not allowed in an address")]
    ForbiddenCharacter(char),
    #[error("the part before the `@` cannot start or end with a dot or contain two dots in a row")]
    MisplacedDot,
    #[error("the domain `{0}` is not a valid domain name")]
    InvalidDomain(String),
}

impl EmailError {
    /// The problem as data, for the words of `prompts/errors.j2` (`email_problem`): `problem`
    /// names it, and the numbers or the text it is about go with it.
    pub fn facts(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            EmailError::Empty => json!({ "problem": "empty" }),
            EmailError::MissingAt => json!({ "problem": "missing_at" }),
            EmailError::MultipleAt => json!({ "problem": "multiple_at" }),
            EmailError::ContainsSpace => json!({ "problem": "contains_space" }),
            EmailError::ControlCharacter => json!({ "problem": "control_character" }),
            EmailError::InvisibleCharacter(c) => json!({
                "problem": "invisible_character",
                "code_point": format!("U+{:04X}", u32::from(*c)),
            }),
            EmailError::InputTooLong(bytes) => {
                json!({ "problem": "input_too_long", "bytes": bytes })
            }
            EmailError::EmptyLocalPart => json!({ "problem": "empty_local_part" }),
            EmailError::EmptyDomain => json!({ "problem": "empty_domain" }),
            EmailError::DomainWithoutDot(domain) => {
                json!({ "problem": "domain_without_dot", "domain": domain })
            }
            EmailError::TooLong(characters) => json!({
                "problem": "too_long", "characters": characters, "limit": MAX_ADDRESS_LEN,
            }),
            EmailError::LocalPartTooLong(characters) => json!({
                "problem": "local_part_too_long", "characters": characters, "limit": MAX_LOCAL_LEN,
            }),
            EmailError::ForbiddenCharacter(character) => {
                json!({ "problem": "forbidden_character", "character": character })
            }
            EmailError::MisplacedDot => json!({ "problem": "misplaced_dot" }),
            EmailError::InvalidDomain(domain) => {
                json!({ "problem": "invalid_domain", "domain": domain })
            }
        }
    }
}

/// A syntactically valid email address.
///
/// Stored as the person entered it (minus the wrapping people paste around it) and compared by its
/// [`key`](Self::key): lower-case local part, lower-case punycode domain. Two addresses are equal when
/// their keys are.
#[derive(Clone)]
pub struct EmailAddress {
    as_entered: String,
    key: String,
    at: usize,
}

impl EmailAddress {
    /// Parses what a person pasted: surrounding spaces, `<...>`, `mailto:`, `Name <addr>`, a trailing
    /// `.` `,` or `;`, and any letter case are accepted.
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        if input.len() > MAX_INPUT_BYTES {
            return Err(EmailError::InputTooLong(input.len()));
        }
        let candidate = unwrap_pasted(input);
        if candidate.is_empty() {
            return Err(EmailError::Empty);
        }
        if candidate.chars().any(char::is_control) {
            return Err(EmailError::ControlCharacter);
        }
        // A right-to-left override or a zero-width space makes an address read as another one,
        // and it would be echoed back that way; no mail system needs one.
        if let Some(invisible) = candidate.chars().find(|c| is_invisible(*c)) {
            return Err(EmailError::InvisibleCharacter(invisible));
        }
        if candidate.chars().any(char::is_whitespace) {
            return Err(EmailError::ContainsSpace);
        }
        let (local, domain) = match candidate.split_once('@') {
            None => return Err(EmailError::MissingAt),
            Some((_, rest)) if rest.contains('@') => return Err(EmailError::MultipleAt),
            Some(parts) => parts,
        };
        if local.is_empty() {
            return Err(EmailError::EmptyLocalPart);
        }
        if domain.is_empty() {
            return Err(EmailError::EmptyDomain);
        }
        let char_count = candidate.chars().count();
        if char_count > MAX_ADDRESS_LEN {
            return Err(EmailError::TooLong(char_count));
        }
        // Measured on the lower case too: the key is what is stored and parsed again, and a few
        // letters grow when lowered (U+0130 `İ` becomes `i` and a combining dot).
        let local_key = local.to_lowercase();
        let local_len = local.chars().count().max(local_key.chars().count());
        if local_len > MAX_LOCAL_LEN {
            return Err(EmailError::LocalPartTooLong(local_len));
        }
        if let Some(bad) = local.chars().find(|c| "()<>[]\\,;:\"".contains(*c)) {
            return Err(EmailError::ForbiddenCharacter(bad));
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err(EmailError::MisplacedDot);
        }
        let ascii_domain = normalize_domain(domain)?;
        let key = format!("{local_key}@{ascii_domain}");
        if key.len() > MAX_ADDRESS_LEN {
            return Err(EmailError::TooLong(key.len()));
        }
        Ok(Self {
            as_entered: candidate.to_owned(),
            at: local_key.len(),
            key,
        })
    }

    /// The comparison key: lower-case local part `@` lower-case ASCII (punycode) domain.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The address as the person typed it, without the wrapping around it.
    pub fn as_entered(&self) -> &str {
        &self.as_entered
    }

    /// The normalized local part (before the `@`).
    pub fn local_part(&self) -> &str {
        &self.key[..self.at]
    }

    /// The normalized ASCII domain (after the `@`).
    pub fn domain(&self) -> &str {
        &self.key[self.at + 1..]
    }

    /// A form safe for operator logs: `j***@acme.com`. Logs must never hold a whole address.
    pub fn masked(&self) -> String {
        mask(self.local_part(), self.domain())
    }
}

/// Masks an address key that came from storage rather than from parsing.
pub fn mask_key(key: &str) -> String {
    match key.split_once('@') {
        Some((local, domain)) => mask(local, domain),
        None => "***".to_owned(),
    }
}

fn mask(local: &str, domain: &str) -> String {
    let first: String = local.chars().take(1).collect();
    format!("{first}***@{domain}")
}

impl PartialEq for EmailAddress {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for EmailAddress {}

impl std::hash::Hash for EmailAddress {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key)
    }
}

impl fmt::Debug for EmailAddress {
    // Debug output ends up in logs; keep it masked.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailAddress({})", self.masked())
    }
}

impl std::str::FromStr for EmailAddress {
    type Err = EmailError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Strips what people paste around an address: spaces, `mailto:`, `Name <...>`, trailing punctuation.
///
/// One pass, each step once, so the work is linear in the input whatever it holds: after the last
/// `<...>` is unwrapped no `<` is left, so a second unwrap could never apply.
fn unwrap_pasted(input: &str) -> &str {
    let trailing = |c: char| matches!(c, '.' | ',' | ';') || c.is_whitespace();
    let mut s = input.trim().trim_end_matches(trailing);
    if s.ends_with('>') {
        if let Some(open) = s.rfind('<') {
            s = s[open + 1..s.len() - 1].trim().trim_end_matches(trailing);
        }
    }
    // Each round removes seven bytes: linear however many times it is repeated.
    while s.len() >= 7 && s.is_char_boundary(7) && s[..7].eq_ignore_ascii_case("mailto:") {
        s = s[7..].trim();
    }
    s
}

/// Invisible and formatting characters (Unicode's default-ignorable code points and format
/// characters): bidirectional overrides, zero-width spaces and joiners, soft hyphens, variation
/// selectors, tags. Listed here because the standard library does not expose the categories.
fn is_invisible(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00AD
            | 0x034F
            | 0x0600..=0x0605
            | 0x061C
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x115F..=0x1160
            | 0x17B4..=0x17B5
            | 0x180B..=0x180F
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x206F
            | 0x3164
            | 0xFE00..=0xFE0F
            | 0xFEFF
            | 0xFFA0
            | 0xFFF0..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0000..=0xE0FFF
    )
}

/// Lower-cases the domain and converts an international domain to its punycode form, so that
/// `bücher.de` and `xn--bcher-kva.de` are the same domain.
fn normalize_domain(domain: &str) -> Result<String, EmailError> {
    let invalid = || EmailError::InvalidDomain(domain.to_owned());
    if domain.starts_with('[') {
        // Address literals (user@[10.0.0.1]) never belong to a workspace member.
        return Err(invalid());
    }
    let ascii = idna::domain_to_ascii(domain).map_err(|_| invalid())?;
    if ascii.is_empty() {
        return Err(invalid());
    }
    if !ascii.contains('.') {
        return Err(EmailError::DomainWithoutDot(domain.to_owned()));
    }
    let labels_ok = ascii.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= MAX_LABEL_LEN
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    if !labels_ok {
        return Err(invalid());
    }
    Ok(ascii)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_what_people_paste() {
        for pasted in [
            "  Jane.Doe@Acme.COM ",
            "<jane.doe@acme.com>",
            "mailto:jane.doe@acme.com",
            "MAILTO:<jane.doe@acme.com>",
            "Jane Doe <jane.doe@acme.com>",
            "jane.doe@acme.com.",
            "jane.doe@acme.com,",
            "jane.doe@acme.com;",
        ] {
            let email = EmailAddress::parse(pasted).unwrap_or_else(|e| panic!("{pasted:?}: {e}"));
            assert_eq!(email.key(), "jane.doe@acme.com", "{pasted:?}");
        }
    }

    #[test]
    fn keeps_what_was_entered_but_compares_by_key() {
        let a = EmailAddress::parse("Jane.Doe@Acme.com").unwrap();
        let b = EmailAddress::parse("jane.doe@ACME.COM").unwrap();
        assert_eq!(a.as_entered(), "Jane.Doe@Acme.com");
        assert_eq!(a, b);
        assert_eq!(a.local_part(), "jane.doe");
        assert_eq!(a.domain(), "acme.com");
    }

    #[test]
    fn international_domains_match_their_punycode() {
        let unicode = EmailAddress::parse("anna@Bücher.de").unwrap();
        let puny = EmailAddress::parse("anna@xn--bcher-kva.de").unwrap();
        assert_eq!(unicode, puny);
        assert_eq!(unicode.domain(), "xn--bcher-kva.de");
    }

    #[test]
    fn rejects_with_a_reason() {
        let cases: &[(&str, EmailError)] = &[
            ("", EmailError::Empty),
            ("   ", EmailError::Empty),
            ("jane.acme.com", EmailError::MissingAt),
            ("jane@@acme.com", EmailError::MultipleAt),
            ("jane@acme@com.org", EmailError::MultipleAt),
            ("jane doe@acme.com", EmailError::ContainsSpace),
            ("@acme.com", EmailError::EmptyLocalPart),
            ("jane@", EmailError::EmptyDomain),
            (
                "jane@localhost",
                EmailError::DomainWithoutDot("localhost".into()),
            ),
            ("ja\u{7}ne@acme.com", EmailError::ControlCharacter),
            ("jane\u{0}@acme.com", EmailError::ControlCharacter),
            ("ja(ne@acme.com", EmailError::ForbiddenCharacter('(')),
            (".jane@acme.com", EmailError::MisplacedDot),
            ("ja..ne@acme.com", EmailError::MisplacedDot),
            (
                "jane@acme..com",
                EmailError::InvalidDomain("acme..com".into()),
            ),
            (
                "jane@-acme.com",
                EmailError::InvalidDomain("-acme.com".into()),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                EmailAddress::parse(input).err().as_ref(),
                Some(expected),
                "{input:?}"
            );
        }
        let long = format!("{}@{}.com", "a".repeat(64), "b".repeat(200));
        assert!(matches!(
            EmailAddress::parse(&long),
            Err(EmailError::TooLong(_))
        ));
        let long_local = format!("{}@acme.com", "a".repeat(65));
        assert_eq!(
            EmailAddress::parse(&long_local).err(),
            Some(EmailError::LocalPartTooLong(65))
        );
    }

    #[test]
    fn refuses_huge_input_before_cleaning_it_up() {
        // Every trailing " ." used to cost a scan of the whole input: 1 MB of them took seconds.
        let pathological = format!("jane@acme.com{}", " .".repeat(512 * 1024));
        assert_eq!(
            EmailAddress::parse(&pathological).err(),
            Some(EmailError::InputTooLong(pathological.len()))
        );
        let nested = format!(
            "{}jane@acme.com{}",
            "<mailto:".repeat(1 << 17),
            ">".repeat(1 << 17)
        );
        assert!(matches!(
            EmailAddress::parse(&nested),
            Err(EmailError::InputTooLong(_))
        ));
        let message = EmailAddress::parse(&pathological).unwrap_err().to_string();
        assert!(message.contains("bytes long"), "{message}");
        // Within the bound, the same wrapping is still cleaned up.
        let padded = format!("mailto:<jane@acme.com>{}", " .".repeat(400));
        assert_eq!(EmailAddress::parse(&padded).unwrap().key(), "jane@acme.com");
        let prefixed = format!("{}jane@acme.com", "MailTo:".repeat(140));
        assert_eq!(
            EmailAddress::parse(&prefixed).unwrap().key(),
            "jane@acme.com"
        );
    }

    #[test]
    fn refuses_invisible_formatting_characters_without_echoing_them() {
        for invisible in [
            '\u{00AD}',
            '\u{061C}',
            '\u{180E}',
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{200E}',
            '\u{200F}',
            '\u{202A}',
            '\u{202E}',
            '\u{2060}',
            '\u{2064}',
            '\u{2066}',
            '\u{2069}',
            '\u{FE0F}',
            '\u{FEFF}',
            '\u{E0041}',
        ] {
            for input in [
                format!("ja{invisible}ne@acme.com"),
                format!("jane@ac{invisible}me.com"),
                format!("{invisible}jane@acme.com"),
                format!("jane@acme.com{invisible}"),
            ] {
                let error = EmailAddress::parse(&input).unwrap_err();
                assert_eq!(
                    error,
                    EmailError::InvisibleCharacter(invisible),
                    "{input:?}"
                );
                let message = error.to_string();
                assert!(!message.contains(invisible), "{message:?}");
                assert!(
                    message.contains(&format!("U+{:04X}", u32::from(invisible))),
                    "{message}"
                );
            }
        }
        // What looks like an invisible character but is not one stays accepted.
        assert!(EmailAddress::parse("jane-doe@acme.com").is_ok());
        assert!(EmailAddress::parse("anna@bücher.de").is_ok());
    }

    /// A local part of 64 characters whose lower case is longer was accepted, and its key then
    /// refused as too long: the stored form of an address must parse back to the same address.
    #[test]
    fn a_key_that_grows_when_lowered_still_parses_back() {
        let growing = format!("{}@acme.com", "\u{130}".repeat(40));
        assert_eq!(
            EmailAddress::parse(&growing).err(),
            Some(EmailError::LocalPartTooLong(80))
        );
        let fits = format!("{}@acme.com", "\u{130}".repeat(32));
        let address = EmailAddress::parse(&fits).unwrap();
        assert_eq!(EmailAddress::parse(address.key()).unwrap(), address);
    }

    #[test]
    fn masks_for_logs() {
        let email = EmailAddress::parse("jane@acme.com").unwrap();
        assert_eq!(email.masked(), "j***@acme.com");
        assert_eq!(format!("{email:?}"), "EmailAddress(j***@acme.com)");
        assert_eq!(mask_key("bob@x.org"), "b***@x.org");
    }

    /// The clean-up as it was (quadratic: each round rescans), kept as the reference for what the
    /// one-pass version must give.
    fn unwrap_until_unchanged(input: &str) -> &str {
        let mut s = input.trim();
        loop {
            let before = s;
            s = s.trim_end_matches(['.', ',', ';']).trim();
            if let (Some(open), true) = (s.rfind('<'), s.ends_with('>')) {
                s = s[open + 1..s.len() - 1].trim();
            }
            if s.len() >= 7 && s.is_char_boundary(7) && s[..7].eq_ignore_ascii_case("mailto:") {
                s = s[7..].trim();
            }
            if s == before {
                return s;
            }
        }
    }

    proptest! {
        #[test]
        fn never_panics(input in any::<String>()) {
            let _ = EmailAddress::parse(&input);
        }

        #[test]
        fn never_panics_on_address_like_input(input in "[ <>a-zA-Z0-9.@,;:\u{e9}\u{fc}\t-]{0,80}") {
            let _ = EmailAddress::parse(&input);
        }

        #[test]
        fn one_pass_cleanup_matches_the_repeated_one(input in "( |<|>|mailto:|MAILTO:|\\.|,|;|a|@|b\\.co){0,24}") {
            prop_assert_eq!(unwrap_pasted(&input), unwrap_until_unchanged(&input));
        }

        #[test]
        fn key_round_trips(local in "[a-zA-Z0-9_+-]{1,20}(\\.[a-zA-Z0-9_+-]{1,10})?",
                           domain in "[a-zA-Z0-9]{1,20}(-[a-z0-9]{1,5})?\\.[a-zA-Z]{2,6}") {
            let raw = format!("{local}@{domain}");
            let parsed = EmailAddress::parse(&raw).unwrap();
            prop_assert_eq!(parsed.as_entered(), raw.as_str());
            let again = EmailAddress::parse(parsed.key()).unwrap();
            prop_assert_eq!(again.key(), parsed.key());
            let wrapped = EmailAddress::parse(&format!(" mailto:<{raw}>, ")).unwrap();
            prop_assert_eq!(wrapped, parsed);
        }
    }
}
