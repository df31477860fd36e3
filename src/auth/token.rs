//! Signed access tokens: Ed25519 (EdDSA) JWTs with a key id, verifiable by any node that
//! shares the database, where the keys live.
//!
//! Expiry is checked against the [`Clock`](crate::clock::Clock) by the caller of
//! [`KeyRing::verify`], not by the JWT library (which would read the system clock).

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::clock::Millis;
use crate::domain::signing_key::StoredKey;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// The user id.
    pub sub: String,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
    /// A unique token id.
    pub jti: String,
    /// The granted scope, echoed from the request.
    #[serde(default)]
    pub scope: String,
    /// The user's token version when issued; a different current version revokes it.
    pub ver: i64,
}

/// Why a token was refused. Deliberately coarse: clients only ever see a 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT, bad signature, wrong issuer or algorithm.
    #[error("the token is malformed or its signature is invalid")]
    Invalid,
    /// Signed with a key id this ring does not know (yet: another node may have rotated).
    #[error("the token was signed with an unknown key")]
    UnknownKey,
    /// Past its expiry.
    #[error("the token has expired")]
    Expired,
}

/// Makes a new Ed25519 signing key.
pub fn generate_key(now: Millis) -> StoredKey {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("the system RNG works");
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("a fresh key parses");
    StoredKey {
        kid: uuid::Uuid::new_v4().simple().to_string(),
        algorithm: "EdDSA".to_owned(),
        private_key: pkcs8.as_ref().to_vec(),
        public_key: pair.public_key().as_ref().to_vec(),
        created: now,
    }
}

/// The keys a node signs and verifies with.
pub struct KeyRing {
    issuer: String,
    signing_kid: String,
    signing: EncodingKey,
    verifying: HashMap<String, DecodingKey>,
    jwks: Value,
    validation: Validation,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("issuer", &self.issuer)
            .field("signing_kid", &self.signing_kid)
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// Builds a ring from stored keys (newest first); the newest signs, all verify.
    /// Returns `None` when there is no usable key.
    pub fn new(issuer: &str, keys: &[StoredKey]) -> Option<Self> {
        let usable: Vec<&StoredKey> = keys.iter().filter(|k| k.algorithm == "EdDSA").collect();
        let newest = usable.first()?;
        let mut verifying = HashMap::new();
        let mut jwks = Vec::new();
        for k in &usable {
            let x = URL_SAFE_NO_PAD.encode(&k.public_key);
            verifying.insert(k.kid.clone(), DecodingKey::from_ed_der(&k.public_key));
            jwks.push(json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": k.kid, "x": x}));
        }
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.required_spec_claims.clear();
        validation.set_issuer(&[issuer]);
        Some(Self {
            issuer: issuer.to_owned(),
            signing_kid: newest.kid.clone(),
            signing: EncodingKey::from_ed_der(&newest.private_key),
            verifying,
            jwks: json!({ "keys": jwks }),
            validation,
        })
    }

    /// The issuer written into and required of every token.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The public keys as a JWKS document.
    pub fn jwks(&self) -> &Value {
        &self.jwks
    }

    /// Signs claims with the newest key.
    pub fn sign(&self, claims: &Claims) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.signing_kid.clone());
        jsonwebtoken::encode(&header, claims, &self.signing)
            .expect("signing serialisable claims with a valid key cannot fail")
    }

    /// Whether the ring holds a key with this id.
    pub fn knows(&self, kid: &str) -> bool {
        self.verifying.contains_key(kid)
    }

    /// Checks the signature, issuer and expiry (against `now`) and returns the claims.
    pub fn verify(&self, token: &str, now: Millis) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        let kid = header.kid.as_deref().ok_or(TokenError::Invalid)?;
        let key = self.verifying.get(kid).ok_or(TokenError::UnknownKey)?;
        let data = jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map_err(|_| TokenError::Invalid)?;
        if data.claims.exp.saturating_mul(1000) <= now {
            return Err(TokenError::Expired);
        }
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            iss: "gatehouse".into(),
            sub: "u".into(),
            iat: 0,
            exp,
            jti: "j".into(),
            scope: String::new(),
            ver: 0,
        }
    }

    #[test]
    fn signs_and_verifies_until_expiry() {
        let ring = KeyRing::new("gatehouse", &[generate_key(0)]).unwrap();
        let t = ring.sign(&claims(100));
        assert_eq!(ring.verify(&t, 99_999).unwrap().sub, "u");
        assert_eq!(ring.verify(&t, 100_000), Err(TokenError::Expired));
    }

    #[test]
    fn older_keys_still_verify_after_rotation() {
        let old = generate_key(0);
        let ring_old = KeyRing::new("gatehouse", std::slice::from_ref(&old)).unwrap();
        let t = ring_old.sign(&claims(100));
        let ring_new = KeyRing::new("gatehouse", &[generate_key(1), old]).unwrap();
        assert!(ring_new.verify(&t, 0).is_ok());
        assert_eq!(ring_new.jwks()["keys"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn tampering_and_foreign_keys_are_refused() {
        let ring = KeyRing::new("gatehouse", &[generate_key(0)]).unwrap();
        let other = KeyRing::new("gatehouse", &[generate_key(0)]).unwrap();
        let t = other.sign(&claims(100));
        assert_eq!(ring.verify(&t, 0), Err(TokenError::UnknownKey));
        let mut t = ring.sign(&claims(100));
        t.push('x');
        assert_eq!(ring.verify(&t, 0), Err(TokenError::Invalid));
        assert_eq!(ring.verify("garbage", 0), Err(TokenError::Invalid));
        let key = generate_key(0);
        let ours = KeyRing::new("gatehouse", std::slice::from_ref(&key)).unwrap();
        let theirs = KeyRing::new("someone-else", &[key]).unwrap();
        let mut foreign = claims(100);
        foreign.iss = theirs.issuer().to_owned();
        assert_eq!(
            ours.verify(&theirs.sign(&foreign), 0),
            Err(TokenError::Invalid)
        );
    }
}
