//! URLs that come from config (a database's, a webhook's): which may be used, and how they are
//! shown without their secrets in a message, a log line or an error.

/// The URL without its secrets, fit for messages and logs: the password of the user info and the
/// value of every query parameter that names one (`?password=`, `sslpassword=`, `token=`...).
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(end) => url.split_at(end + 3),
        None => ("", url),
    };
    // No host holds `?`, `#` or `@`: the user info ends at the last `@` before the query, so a
    // password with an `@` or a `/` in it is still all redacted, and an `@` in a query value
    // (`?user=bot@server`) is not taken for one.
    let (authority_and_path, query) = rest.split_at(rest.find(['?', '#']).unwrap_or(rest.len()));
    let mut redacted = scheme.to_owned();
    match authority_and_path.rfind('@') {
        Some(at) if !scheme.is_empty() => {
            let user_info = &authority_and_path[..at];
            match user_info.split_once(':') {
                Some((user, _)) => {
                    redacted.push_str(user);
                    redacted.push_str(":***");
                }
                None => redacted.push_str(user_info),
            }
            redacted.push_str(&authority_and_path[at..]);
        }
        _ => redacted.push_str(authority_and_path),
    }
    let Some(parameters) = query.strip_prefix('?') else {
        redacted.push_str(query);
        return redacted;
    };
    let (parameters, fragment) =
        parameters.split_at(parameters.find('#').unwrap_or(parameters.len()));
    let parameters: Vec<String> = parameters
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if names_a_secret(name) => format!("{name}=***"),
            _ => pair.to_owned(),
        })
        .collect();
    redacted.push('?');
    redacted.push_str(&parameters.join("&"));
    redacted.push_str(fragment);
    redacted
}

/// `password`, `sslpassword`, `PassWord`, `pass%77ord`, `api_token`, `secret`, `sslkey`...: read as
/// the database driver reads the name (percent-decoded), in any case.
fn names_a_secret(name: &str) -> bool {
    let bytes = name.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(high), Some(low)) => {
                decoded.push((high * 16 + low) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                decoded.push(b' ');
                i += 1;
            }
            (byte, _, _) => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    let name = String::from_utf8_lossy(&decoded).to_ascii_lowercase();
    ["pass", "pwd", "secret", "token", "key"]
        .iter()
        .any(|word| name.contains(word))
}

/// What keeps a URL from receiving escalations. The `Display` text completes "the webhook URL ..."
/// for the operator (a config error, a log line); a person is told in the words of `actions.j2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UrlProblem {
    #[error("is not a URL")]
    NotAUrl,
    #[error("has no host")]
    NoHost,
    #[error("must be an https:// URL (http:// only for 127.0.0.1 or localhost)")]
    NotHttps,
}

impl UrlProblem {
    pub fn as_str(self) -> &'static str {
        match self {
            UrlProblem::NotAUrl => "not_a_url",
            UrlProblem::NoHost => "no_host",
            UrlProblem::NotHttps => "not_https",
        }
    }
}

/// Why `url` may not receive escalations, if it may not: it must be https (the body holds an
/// address and a diagnosis, the URL often a token), except on this machine, for tests.
pub fn https_problem(url: &str) -> Option<UrlProblem> {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return Some(UrlProblem::NotAUrl);
    };
    let Some(host) = parsed.host_str() else {
        return Some(UrlProblem::NoHost);
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => None,
        "http" if loopback => None,
        _ => Some(UrlProblem::NotHttps),
    }
}

/// Scheme and host only: enough to tell which endpoint, nothing of a token in the path, the
/// query or the user info.
pub fn redacted_endpoint(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(parsed) => format!(
            "{}://{}/***",
            parsed.scheme(),
            parsed.host_str().unwrap_or("?")
        ),
        Err(_) => "***".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact_url("postgres://bot:s3cret@db:5432/x"),
            "postgres://bot:***@db:5432/x"
        );
        assert_eq!(redact_url("postgres://bot@db/x"), "postgres://bot@db/x");
        assert_eq!(
            redact_url("sqlite://invite-bot.db"),
            "sqlite://invite-bot.db"
        );
    }

    #[test]
    fn passwords_in_the_query_or_oddly_placed_are_redacted_too() {
        for (url, redacted) in [
            (
                "postgres://db:5432/x?password=s3cret",
                "postgres://db:5432/x?password=***",
            ),
            (
                "postgres://bot@db/x?sslmode=require&PassWord=s3cret&application_name=bot",
                "postgres://bot@db/x?sslmode=require&PassWord=***&application_name=bot",
            ),
            (
                "postgres://db/x?sslpassword=s3cret#frag",
                "postgres://db/x?sslpassword=***#frag",
            ),
            (
                "postgres://db/x?pass%77ord=s3cret",
                "postgres://db/x?pass%77ord=***",
            ),
            ("postgres://bot:s3@cr/et@db/x", "postgres://bot:***@db/x"),
            (
                "postgres://db/x?user=bot@server&password=s3cret",
                "postgres://db/x?user=bot@server&password=***",
            ),
            (
                "postgresql://bot:s3cret@db/x?password=s3cret",
                "postgresql://bot:***@db/x?password=***",
            ),
            ("sqlite::memory:", "sqlite::memory:"),
            (
                "sqlite://data/bot.db?mode=rwc",
                "sqlite://data/bot.db?mode=rwc",
            ),
        ] {
            assert_eq!(redact_url(url), redacted, "{url}");
            assert!(!redact_url(url).contains("s3"), "{url}");
        }
    }
}
