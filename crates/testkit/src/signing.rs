//! Signing interactions as Discord does for an interactions endpoint: Ed25519 over
//! `X-Signature-Timestamp` + the raw body, with a key generated for the test.

use ed25519_dalek::{Signer, SigningKey};
use rand::RngCore;

/// An application's key pair, made up for a test or a benchmark.
#[derive(Clone)]
pub struct InteractionSigner {
    key: SigningKey,
}

impl Default for InteractionSigner {
    fn default() -> Self {
        Self::generate()
    }
}

impl InteractionSigner {
    pub fn generate() -> Self {
        let mut seed = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut seed);
        InteractionSigner {
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// The public key as `[discord] public_key` takes it: 64 hex digits.
    pub fn public_key_hex(&self) -> String {
        hex_encode(self.key.verifying_key().as_bytes())
    }

    /// The `X-Signature-Ed25519` value for `body` sent at `timestamp` (unix seconds, as text).
    pub fn signature_hex(&self, timestamp: &str, body: &[u8]) -> String {
        let mut message = Vec::with_capacity(timestamp.len() + body.len());
        message.extend_from_slice(timestamp.as_bytes());
        message.extend_from_slice(body);
        hex_encode(&self.key.sign(&message).to_bytes())
    }

    /// The two headers for `body`, signed now.
    pub fn headers(&self, body: &[u8]) -> [(&'static str, String); 2] {
        self.headers_at(&now_seconds().to_string(), body)
    }

    /// The two headers for `body`, signed with `timestamp`.
    pub fn headers_at(&self, timestamp: &str, body: &[u8]) -> [(&'static str, String); 2] {
        [
            ("x-signature-ed25519", self.signature_hex(timestamp, body)),
            ("x-signature-timestamp", timestamp.to_owned()),
        ]
    }
}

/// Seconds since the Unix epoch.
pub fn now_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
