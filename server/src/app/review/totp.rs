//! TOTP second factor (RFC 6238 over RFC 4226: HMAC-SHA1, 30-second steps, 6 digits), with
//! one step of clock drift accepted either way. Secrets are base32 (RFC 4648, no padding), as
//! authenticator apps expect.

use aws_lc_rs::hmac;

const STEP_S: i64 = 30;
const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A fresh 160-bit secret, base32.
pub fn new_secret() -> String {
    use rand::RngCore;
    let mut b = [0u8; 20];
    rand::rng().fill_bytes(&mut b);
    base32(&b)
}

pub fn base32(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut buf: u32 = 0;
    let mut bits = 0;
    for &b in bytes {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buf >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buf << (5 - bits)) & 31) as usize]));
    }
    out
}

pub fn unbase32(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf: u32 = 0;
    let mut bits = 0;
    for c in s.bytes().filter(|c| *c != b'=' && *c != b' ') {
        let v = ALPHABET.iter().position(|a| *a == c.to_ascii_uppercase())?;
        buf = (buf << 5) | u32::try_from(v).ok()?;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((buf >> bits) & 0xff).ok()?);
        }
    }
    Some(out)
}

/// The HOTP value for `counter` with `digits` digits.
pub fn hotp(key: &[u8], counter: u64, digits: u32) -> u32 {
    let k = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key);
    let tag = hmac::sign(&k, &counter.to_be_bytes());
    let d = tag.as_ref();
    let off = usize::from(d[d.len() - 1] & 0x0f);
    let bin = (u32::from(d[off]) & 0x7f) << 24
        | u32::from(d[off + 1]) << 16
        | u32::from(d[off + 2]) << 8
        | u32::from(d[off + 3]);
    bin % 10u32.pow(digits)
}

/// The 6-digit code for a base32 secret at Unix time `t` (seconds).
pub fn code(secret: &str, t: i64) -> Option<String> {
    let key = unbase32(secret)?;
    let counter = u64::try_from(t.div_euclid(STEP_S)).ok()?;
    Some(format!("{:06}", hotp(&key, counter, 6)))
}

/// Accepts the code of the current step or one step either side.
pub fn verify(secret: &str, given: &str, t: i64) -> bool {
    let given = given.trim();
    given.len() == 6
        && [-STEP_S, 0, STEP_S]
            .iter()
            .any(|d| code(secret, t + d).is_some_and(|c| c == given))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_sha1_vectors() {
        // RFC 6238 appendix B, SHA1, key "12345678901234567890", 8 digits.
        let key = b"12345678901234567890";
        for (t, want) in [
            (59u64, 94_287_082u32),
            (1_111_111_109, 7_081_804),
            (1_234_567_890, 89_005_924),
            (20_000_000_000, 65_353_130),
        ] {
            assert_eq!(hotp(key, t / 30, 8), want, "t = {t}");
        }
    }

    #[test]
    fn base32_round_trips_and_codes_verify_within_one_step() {
        let s = new_secret();
        assert_eq!(s.len(), 32);
        assert_eq!(base32(&unbase32(&s).expect("decodes")), s);
        assert_eq!(
            base32(b"12345678901234567890"),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
        let c = code(&s, 1_000_000).expect("code");
        assert!(verify(&s, &c, 1_000_000 + 29));
        assert!(verify(&s, &c, 1_000_000 - 30));
        assert!(!verify(&s, &c, 1_000_000 + 90));
        assert!(!verify(&s, "12345", 1_000_000));
    }
}
