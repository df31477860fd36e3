//! A token-signing key as it is kept: the store persists it, `auth::token` signs and
//! verifies with it.

use crate::clock::Millis;

/// A token-signing key as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// Key id (`kid` in token headers and the JWKS).
    pub kid: String,
    /// Algorithm name, e.g. `EdDSA`.
    pub algorithm: String,
    /// PKCS#8 private key.
    pub private_key: Vec<u8>,
    /// Raw public key.
    pub public_key: Vec<u8>,
    /// When it was made; the newest key signs.
    pub created: Millis,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}
