//! API keys: a client id and secret for scripts, acting as the key's own user.

use super::ids::{ApiKeyId, UserId};
use crate::clock::Millis;

/// An API key as stored. The secret itself is never kept, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// The key's id.
    pub id: ApiKeyId,
    /// Unique case-insensitively.
    pub name: String,
    /// Optional description.
    pub description: Option<String>,
    /// A disabled key cannot get tokens, and its tokens stop working.
    pub enabled: bool,
    /// The public half of the credentials (`client_id`).
    pub client_id: String,
    /// Lower-case hex SHA-256 of the secret.
    pub secret_hash: String,
    /// The user the key acts as.
    pub user_id: UserId,
    /// Creation time.
    pub created: Millis,
    /// Who created it (an administrator, or none for the CLI).
    pub created_by: Option<UserId>,
    /// Last change.
    pub modified: Millis,
    /// Who changed it last.
    pub modified_by: Option<UserId>,
}
