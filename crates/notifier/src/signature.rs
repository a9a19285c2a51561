//! Standard Webhooks signatures (<https://www.standardwebhooks.com>): what the
//! notifier puts on every webhook, and the check a receiver runs.
//!
//! The signed content is `{webhook-id}.{webhook-timestamp}.{body}`; the
//! signature is HMAC-SHA256 under the secret (base64 after `whsec_`), sent as
//! `v1,<base64>`. A receiver refuses a stale timestamp (replays) and compares
//! signatures in constant time.

use base64::Engine;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// How far a timestamp may be from the receiver's clock.
pub const TOLERANCE_SECONDS: i64 = 5 * 60;

/// The key lengths Standard Webhooks allows, in bytes.
pub const KEY_BYTES: std::ops::RangeInclusive<usize> = 24..=64;

/// Secrets are written with or without base64's `=` padding.
const SECRET_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A signing secret, `whsec_` followed by base64 of the key bytes.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Why a secret or a webhook was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Not `whsec_<base64>` of a key of an allowed length; says which.
    #[error("the webhook secret {0}")]
    InvalidSecret(String),
    /// The timestamp is not a number of seconds.
    #[error("webhook-timestamp is not a Unix time in seconds")]
    InvalidTimestamp,
    /// Too old or too far in the future.
    #[error("webhook-timestamp is {0} s away from now (at most {TOLERANCE_SECONDS} s allowed)")]
    Stale(i64),
    /// No `v1` signature matches.
    #[error("no webhook-signature matches the body")]
    Mismatch,
}

impl Secret {
    /// Parses `whsec_<base64>` (padded or not) of a 24 to 64 byte key.
    pub fn parse(text: &str) -> Result<Self, SignatureError> {
        let invalid = |why: String| SignatureError::InvalidSecret(why);
        let b64 = text
            .strip_prefix("whsec_")
            .ok_or_else(|| invalid("must start with `whsec_`".into()))?;
        let key = SECRET_BASE64
            .decode(b64)
            .map_err(|e| invalid(format!("is not base64 after `whsec_`: {e}")))?;
        if !KEY_BYTES.contains(&key.len()) {
            return Err(invalid(format!(
                "holds a {} byte key; Standard Webhooks keys are {} to {} bytes",
                key.len(),
                KEY_BYTES.start(),
                KEY_BYTES.end()
            )));
        }
        Ok(Self(key))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
        // Any key length is valid for HMAC.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any size");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The `webhook-signature` header value for this message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let tag = self.mac(id, timestamp, body).finalize().into_bytes();
        format!("v1,{}", STANDARD.encode(tag))
    }

    /// Checks a received webhook: the timestamp is within
    /// [`TOLERANCE_SECONDS`] of `now` and one of the space-separated `v1`
    /// signatures matches. Receivers call this before trusting a body.
    pub fn verify(
        &self,
        id: &str,
        timestamp: &str,
        signatures: &str,
        body: &[u8],
        now: i64,
    ) -> Result<(), SignatureError> {
        let timestamp: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| SignatureError::InvalidTimestamp)?;
        let skew = now - timestamp;
        if skew.abs() > TOLERANCE_SECONDS {
            return Err(SignatureError::Stale(skew));
        }
        let matches = signatures
            .split_whitespace()
            .filter_map(|s| s.strip_prefix("v1,"))
            .filter_map(|b64| STANDARD.decode(b64).ok())
            // `verify_slice` compares in constant time.
            .any(|tag| self.mac(id, timestamp, body).verify_slice(&tag).is_ok());
        if matches {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn a_signed_webhook_verifies() {
        let secret = Secret::parse(SECRET).expect("valid");
        let signature = secret.sign("msg_1", 1_700_000_000, b"{\"a\":1}");
        assert!(signature.starts_with("v1,"));
        assert_eq!(
            secret.verify(
                "msg_1",
                "1700000000",
                &signature,
                b"{\"a\":1}",
                1_700_000_010
            ),
            Ok(())
        );
    }

    #[test]
    fn the_reference_vector_of_the_specification_verifies() {
        // From the Standard Webhooks specification's test suite.
        let secret = Secret::parse(SECRET).expect("valid");
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn a_tampered_body_a_wrong_id_or_another_secret_fails() {
        let secret = Secret::parse(SECRET).expect("valid");
        let signature = secret.sign("msg_1", 1_700_000_000, b"{\"a\":1}");
        let now = 1_700_000_000;
        assert_eq!(
            secret.verify("msg_1", "1700000000", &signature, b"{\"a\":2}", now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            secret.verify("msg_2", "1700000000", &signature, b"{\"a\":1}", now),
            Err(SignatureError::Mismatch)
        );
        // "another-secret-of-26-bytes", written without base64 padding.
        let other = Secret::parse("whsec_YW5vdGhlci1zZWNyZXQtb2YtMjYtYnl0ZXM").expect("valid");
        assert_eq!(
            other.verify("msg_1", "1700000000", &signature, b"{\"a\":1}", now),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_stale_or_future_timestamp_fails_even_when_signed() {
        let secret = Secret::parse(SECRET).expect("valid");
        let signature = secret.sign("msg_1", 1_700_000_000, b"{}");
        assert_eq!(
            secret.verify(
                "msg_1",
                "1700000000",
                &signature,
                b"{}",
                1_700_000_000 + 301
            ),
            Err(SignatureError::Stale(301))
        );
        assert_eq!(
            secret.verify(
                "msg_1",
                "1700000000",
                &signature,
                b"{}",
                1_700_000_000 - 301
            ),
            Err(SignatureError::Stale(-301))
        );
        assert_eq!(
            secret.verify("msg_1", "soon", &signature, b"{}", 1_700_000_000),
            Err(SignatureError::InvalidTimestamp)
        );
    }

    #[test]
    fn several_signatures_pass_if_one_matches_and_bad_secrets_are_refused() {
        let secret = Secret::parse(SECRET).expect("valid");
        let good = secret.sign("msg_1", 1_700_000_000, b"{}");
        let header = format!("v1,AAAA {good} v2,zzz");
        assert_eq!(
            secret.verify("msg_1", "1700000000", &header, b"{}", 1_700_000_000),
            Ok(())
        );
        for (bad, why) in [
            ("", "must start with `whsec_`"),
            (
                "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "must start with `whsec_`",
            ),
            ("whsec_!!", "is not base64"),
            ("whsec_", "holds a 0 byte key"),
            ("whsec_c2hvcnQ=", "holds a 5 byte key"),
            // "twenty-three-bytes-long": one byte short of the minimum.
            (
                "whsec_dHdlbnR5LXRocmVlLWJ5dGVzLWxvbmc=",
                "holds a 23 byte key",
            ),
        ] {
            let error = Secret::parse(bad).map(|_| ()).expect_err(bad).to_string();
            assert!(error.contains(why), "{bad}: {error}");
        }
    }
}
