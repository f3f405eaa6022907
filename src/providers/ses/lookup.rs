//! Amazon SES: the account-level suppression list, `GetSuppressedDestination`
//! (`GET /v2/email/suppression/addresses/{email}`; 404 means not listed), signed with AWS
//! Signature Version 4.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::app::config::SesConfig;
use crate::domain::email::EmailAddress;
use crate::domain::invitation::SuppressionReason;
use crate::providers::lookup::{json_body, send, status_error, Lookup, Unanswered};

#[derive(Debug)]
pub struct Ses {
    region: String,
    access_key_id: String,
    secret_access_key: SecretString,
    base: String,
}

/// SigV4's URI encoding: everything but the unreserved characters, `@` included.
fn uri_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

impl Ses {
    pub fn new(config: &SesConfig) -> Option<Self> {
        let region = config.region.clone()?;
        Some(Ses {
            base: config
                .api_base
                .clone()
                .unwrap_or_else(|| format!("https://email.{region}.amazonaws.com"))
                .trim_end_matches('/')
                .to_owned(),
            access_key_id: config.access_key_id.clone()?,
            secret_access_key: config.secret_access_key.clone()?,
            region,
        })
    }

    /// The SigV4 `Authorization` header for a body-less GET of `path` on `host`.
    fn authorization(&self, host: &str, path: &str, now: DateTime<Utc>) -> (String, String) {
        self.authorization_for("ses", host, path, now)
    }

    fn authorization_for(
        &self,
        service: &str,
        host: &str,
        path: &str,
        now: DateTime<Utc>,
    ) -> (String, String) {
        let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
        let date = now.format("%Y%m%d").to_string();
        let payload_hash = hex::encode(Sha256::digest(b""));
        let canonical_request = format!(
            "GET\n{path}\n\nhost:{host}\nx-amz-date:{amz_date}\n\nhost;x-amz-date\n{payload_hash}"
        );
        let scope = format!("{date}/{}/{service}/aws4_request", self.region);
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            hex::encode(Sha256::digest(canonical_request.as_bytes()))
        );
        let secret = format!("AWS4{}", self.secret_access_key.expose_secret());
        let key = hmac(secret.as_bytes(), &date);
        let key = hmac(&key, &self.region);
        let key = hmac(&key, service);
        let key = hmac(&key, "aws4_request");
        let signature = hex::encode(hmac(&key, &string_to_sign));
        (
            format!(
                "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders=host;x-amz-date, Signature={signature}",
                self.access_key_id
            ),
            amz_date,
        )
    }

    pub async fn lookup(
        &self,
        client: &reqwest::Client,
        email: &EmailAddress,
        now: DateTime<Utc>,
    ) -> Lookup {
        let path = format!(
            "/v2/email/suppression/addresses/{}",
            uri_encode(email.key())
        );
        let url = reqwest::Url::parse(&format!("{}{path}", self.base))
            .map_err(|_| Unanswered::UnusableApiBase)?;
        let host = match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            _ => return Err(Unanswered::UnusableApiBase),
        };
        // SigV4 signs the path as sent: URI-encode it once more, as AWS does for non-S3 services.
        let signed_path = path.replace('%', "%25");
        let (authorization, amz_date) = self.authorization(&host, &signed_path, now);
        let request = client
            .get(url)
            .header("x-amz-date", amz_date)
            .header("authorization", authorization);
        let response = send(request).await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(status_error(&response));
        }
        let body = json_body(response).await?;
        let destination = &body["SuppressedDestination"];
        let reason = match destination["Reason"].as_str() {
            Some("COMPLAINT") => SuppressionReason::SpamComplaint,
            Some("BOUNCE") => SuppressionReason::HardBounce,
            _ => return Err(Unanswered::NoSuppressionReason),
        };
        // LastUpdateTime is epoch seconds in the JSON protocol.
        let since = destination["LastUpdateTime"]
            .as_f64()
            .and_then(|t| DateTime::from_timestamp(t as i64, 0))
            .or_else(|| {
                destination["LastUpdateTime"]
                    .as_str()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&Utc))
            });
        Ok(Some((reason, since)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `get-vanilla` from AWS's Signature Version 4 test suite.
    #[test]
    fn signs_like_the_aws_test_suite() {
        let ses = Ses {
            region: "us-east-1".into(),
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            base: String::new(),
        };
        let now = DateTime::parse_from_rfc3339("2015-08-30T12:36:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let (authorization, date) =
            ses.authorization_for("service", "example.amazonaws.com", "/", now);
        assert_eq!(date, "20150830T123600Z");
        assert_eq!(
            authorization,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn addresses_are_uri_encoded_for_signing() {
        assert_eq!(uri_encode("a.b+c@d.example"), "a.b%2Bc%40d.example");
    }
}
