//! Tokens: OAuth2 client-credentials access tokens for platforms and short-lived learner
//! tokens for one session, both JWTs signed with an Ed25519 key kept in the data directory
//! and published at `/.well-known/jwks.json`. Token lifetimes use real time, never the
//! (possibly scaled) server clock: they are a security control, not evidence.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

pub const PLATFORM_AUDIENCE: &str = "proctor-platform";
pub const LEARNER_AUDIENCE: &str = "proctor-learner";
pub const ISSUER: &str = "proctor";
/// Platform access tokens live one hour.
pub const PLATFORM_TOKEN_TTL_S: u64 = 3600;
/// Learner tokens live 15 minutes; an open socket receives fresh ones before expiry.
pub const LEARNER_TOKEN_TTL_S: u64 = 900;

/// Claims of a platform access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlatformClaims {
    pub iss: String,
    pub aud: String,
    /// The platform id.
    pub sub: String,
    pub province: String,
    pub iat: u64,
    pub exp: u64,
    pub jti: String,
}

/// Claims of a learner token: one learner, one session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LearnerClaims {
    pub iss: String,
    pub aud: String,
    /// The learner id.
    pub sub: String,
    /// The session this token is for, and only it.
    pub sid: String,
    pub iat: u64,
    pub exp: u64,
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid: {0}")]
    Invalid(String),
}

/// The signing key and its public half.
pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    kid: String,
    x: String,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

pub fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Keys {
    /// Loads `dir/jwt-ed25519.pk8`, creating it (mode 0600) on first start.
    pub fn load_or_create(dir: &Path) -> anyhow::Result<Keys> {
        use anyhow::Context;
        let path = dir.join("jwt-ed25519.pk8");
        let der = match std::fs::read(&path) {
            Ok(der) => der,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir).context("Failed to create the key directory")?;
                let doc = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new())
                    .map_err(|_| anyhow::anyhow!("Failed to generate an Ed25519 key"))?;
                write_private(&path, doc.as_ref()).context("Failed to write the signing key")?;
                doc.as_ref().to_vec()
            }
            Err(e) => return Err(e).context("Failed to read the signing key"),
        };
        Keys::from_pkcs8(&der)
    }

    pub fn from_pkcs8(der: &[u8]) -> anyhow::Result<Keys> {
        let pair = Ed25519KeyPair::from_pkcs8(der)
            .map_err(|_| anyhow::anyhow!("the signing key is not Ed25519 PKCS#8"))?;
        let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
        let kid = hex::encode(&sha2_256(pair.public_key().as_ref())[..8]);
        Ok(Keys {
            encoding: EncodingKey::from_ed_der(der),
            decoding: DecodingKey::from_ed_components(&x)?,
            kid,
            x,
        })
    }

    /// The JWK Set with the public key.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({
            "keys": [{"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": self.kid, "x": self.x}]
        })
    }

    /// Signs arbitrary claims with the server key (tests use it for expired tokens).
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, TokenError> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .map_err(|e| TokenError::Invalid(e.to_string()))
    }

    fn verify<T: for<'de> Deserialize<'de>>(
        &self,
        token: &str,
        audience: &str,
    ) -> Result<T, TokenError> {
        let mut v = Validation::new(Algorithm::EdDSA);
        v.set_audience(&[audience]);
        v.set_issuer(&[ISSUER]);
        v.leeway = 5;
        jsonwebtoken::decode::<T>(token, &self.decoding, &v)
            .map(|d| d.claims)
            .map_err(|e| {
                if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature) {
                    TokenError::Expired
                } else {
                    TokenError::Invalid(e.to_string())
                }
            })
    }

    pub fn issue_platform(
        &self,
        platform_id: &str,
        province: &str,
    ) -> Result<(String, u64), TokenError> {
        let iat = unix_now();
        let claims = PlatformClaims {
            iss: ISSUER.into(),
            aud: PLATFORM_AUDIENCE.into(),
            sub: platform_id.into(),
            province: province.into(),
            iat,
            exp: iat + PLATFORM_TOKEN_TTL_S,
            jti: uuid::Uuid::new_v4().to_string(),
        };
        Ok((self.sign(&claims)?, PLATFORM_TOKEN_TTL_S))
    }

    pub fn issue_learner(
        &self,
        learner_id: &str,
        session_id: &str,
    ) -> Result<(String, u64), TokenError> {
        let iat = unix_now();
        let claims = LearnerClaims {
            iss: ISSUER.into(),
            aud: LEARNER_AUDIENCE.into(),
            sub: learner_id.into(),
            sid: session_id.into(),
            iat,
            exp: iat + LEARNER_TOKEN_TTL_S,
        };
        Ok((self.sign(&claims)?, iat + LEARNER_TOKEN_TTL_S))
    }

    pub fn verify_platform(&self, token: &str) -> Result<PlatformClaims, TokenError> {
        self.verify(token, PLATFORM_AUDIENCE)
    }

    pub fn verify_learner(&self, token: &str) -> Result<LearnerClaims, TokenError> {
        self.verify(token, LEARNER_AUDIENCE)
    }
}

pub fn sha2_256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2_256(bytes))
}

/// A fresh random secret, URL-safe base64 of 32 bytes.
pub fn random_secret() -> String {
    let mut buf = [0u8; 32];
    // aws-lc's RNG fails only if the OS RNG is unusable; then a weak secret must not be issued.
    #[allow(clippy::expect_used)]
    aws_lc_rs::rand::fill(&mut buf).expect("the OS random number generator is unavailable");
    URL_SAFE_NO_PAD.encode(buf)
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_audiences_do_not_mix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = Keys::load_or_create(dir.path()).expect("keys");
        let again = Keys::load_or_create(dir.path()).expect("reload");
        assert_eq!(keys.kid, again.kid, "the key persists across restarts");

        let (pt, _) = keys.issue_platform("p1", "41").expect("platform token");
        assert_eq!(again.verify_platform(&pt).expect("verifies").sub, "p1");
        assert!(
            keys.verify_learner(&pt).is_err(),
            "a platform token is not a learner token"
        );

        let (lt, _) = keys.issue_learner("l1", "s1").expect("learner token");
        assert_eq!(keys.verify_learner(&lt).expect("verifies").sid, "s1");
        assert!(keys.verify_platform(&lt).is_err());

        let other = tempfile::tempdir().expect("tempdir");
        let foreign = Keys::load_or_create(other.path()).expect("foreign keys");
        assert!(
            foreign.verify_platform(&pt).is_err(),
            "another server's key does not verify"
        );
        assert!(keys.verify_platform("not.a.jwt").is_err());
    }
}
