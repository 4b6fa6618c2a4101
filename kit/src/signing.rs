//! Webhook signatures as the Standard Webhooks specification defines them: `v1,` and the base64
//! HMAC-SHA256 of `<webhook-id>.<webhook-timestamp>.<body>` under the key that follows `whsec_`
//! (base64) in the secret. order-service signs with it; `orderctl webhooks listen` verifies.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far a delivery's timestamp may be from the receiver's clock (the specification's
/// replay window).
pub const TOLERANCE_SECONDS: i64 = 300;

/// The `webhook-signature` header's value; `None` for a secret that is not `whsec_<base64>`.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> Option<String> {
    let key = BASE64.decode(secret.strip_prefix("whsec_")?).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    Some(format!("v1,{}", BASE64.encode(mac.finalize().into_bytes())))
}

/// Checks a delivery's headers against its body at `now` (Unix seconds): one of the
/// space-separated signatures must match, and the timestamp must be within the tolerance.
pub fn verify(secret: &str, id: &str, timestamp: &str, signatures: &str, body: &str, now: i64) -> Result<(), String> {
    let at: i64 = timestamp.trim().parse().map_err(|_| format!("webhook-timestamp {timestamp:?} is not a number"))?;
    if (now - at).abs() > TOLERANCE_SECONDS {
        return Err(format!("webhook-timestamp {at} is more than {TOLERANCE_SECONDS} s from now ({now})"));
    }
    let expected = sign(secret, id, at, body).ok_or("the secret is not whsec_<base64>")?;
    // Constant time per candidate: the comparison does not stop at the first differing byte.
    let same = |a: &[u8], b: &[u8]| a.len() == b.len() && a.iter().zip(b).fold(0, |acc, (x, y)| acc | (x ^ y)) == 0;
    if signatures.split(' ').any(|candidate| same(candidate.as_bytes(), expected.as_bytes())) {
        Ok(())
    } else {
        Err("no signature matches".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const BODY: &str = r#"{"test": 2432232314}"#;

    #[test]
    fn the_specification_s_example_signs_and_verifies() {
        let signature = sign(SECRET, ID, 1_614_265_330, BODY).unwrap();
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert_eq!(verify(SECRET, ID, "1614265330", &format!("v1,other {signature}"), BODY, 1_614_265_400), Ok(()));
        assert_eq!(sign("not-a-secret", ID, 1, BODY), None);
    }

    #[test]
    fn a_changed_body_an_old_timestamp_or_another_secret_is_refused() {
        let signature = sign(SECRET, ID, 1_614_265_330, BODY).unwrap();
        assert!(verify(SECRET, ID, "1614265330", &signature, "{}", 1_614_265_330).is_err());
        assert!(verify(SECRET, ID, "1614265330", &signature, BODY, 1_614_266_000).unwrap_err().contains("more than"));
        assert!(verify("whsec_AAAA", ID, "1614265330", &signature, BODY, 1_614_265_330).is_err());
        assert!(verify(SECRET, ID, "soon", &signature, BODY, 1_614_265_330).is_err());
    }
}
