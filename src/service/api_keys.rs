//! API keys (spec §6): administrators create them, the secret is shown once, and each
//! key acts as its own user that can be put in groups.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::{Caller, Error, Patch, Result, Services};
use crate::domain::api_key::ApiKey;
use crate::domain::audit::EventType;
use crate::domain::ids::{ApiKeyId, GroupId};
use crate::domain::names::{self, FieldError, MAX_DESCRIPTION};
use crate::domain::user::{Provider, User};
use crate::store::{Page, PageRequest};

/// The body of an API key create or update.
#[derive(Debug, Default, Clone)]
pub struct ApiKeyInput {
    /// Required on create; unique case-insensitively.
    pub name: Patch<String>,
    /// Optional.
    pub description: Patch<String>,
    /// Defaults to true on create.
    pub enabled: Patch<bool>,
}

/// A freshly created key with its secret, which is never available again.
#[derive(Debug, Clone)]
pub struct CreatedKey {
    /// The stored key.
    pub key: ApiKey,
    /// The secret, shown once.
    pub secret: String,
}

/// Hex SHA-256 of a secret.
pub fn hash_secret(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `secret` matches the stored hash, compared in constant time.
pub fn secret_matches(secret: &str, stored_hash: &str) -> bool {
    hash_secret(secret)
        .as_bytes()
        .ct_eq(stored_hash.as_bytes())
        .into()
}

fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn not_found(id: &str) -> Error {
    Error::NotFound {
        message: format!("API key '{id}' was not found."),
        data: serde_json::json!({ "apiKey": id }),
    }
}

/// Parses an API key id from a path segment, or 404.
fn parse_id(s: &str) -> Result<ApiKeyId> {
    ApiKeyId::parse(s).ok_or_else(|| not_found(s))
}

impl Services {
    /// Creates a key and its user; `groups` are joined directly (the CLI's `--admin`).
    /// `creator` is [`Caller::operator`] when made from the command line.
    pub async fn create_api_key_unchecked(
        &self,
        creator: &Caller,
        input: ApiKeyInput,
        groups: &[GroupId],
    ) -> Result<CreatedKey> {
        let name = match input.name {
            Patch::Value(n) => n,
            _ => return Err(FieldError::new("name", "name is required").into()),
        };
        names::check_name("name", &name)?;
        if let Patch::Value(d) = &input.description {
            names::check_optional("description", d, MAX_DESCRIPTION)?;
        }
        let now = self.now();
        let created_by = (!creator.is_operator()).then_some(creator.user.id);
        let client_id = uuid::Uuid::new_v4().to_string();
        let secret = new_secret();
        let user = User {
            first_name: Some(name.clone()),
            provider: Provider::ApiKey,
            opt_out_of_notifications: true,
            // Username: the client id. Email: under `.invalid`, reserved by RFC 2606, so
            // it can never receive mail.
            ..User::new(
                client_id.clone(),
                format!("{client_id}@apikey.invalid"),
                now,
            )
        };
        let key = ApiKey {
            id: ApiKeyId::new(),
            name,
            description: input.description.value().cloned(),
            enabled: input.enabled.value().copied().unwrap_or(true),
            client_id,
            secret_hash: hash_secret(&secret),
            user_id: user.id,
            created: now,
            created_by,
            modified: now,
            modified_by: created_by,
        };
        let mut event = self
            .event(creator, EventType::ApiKeyCreated)
            .key(key.id, Some(key.name.clone()))
            .with("enabled", key.enabled)
            .with("clientId", key.client_id.clone());
        if let Some(d) = &key.description {
            event = event.with("description", d.clone());
        }
        if !groups.is_empty() {
            event = event.with(
                "groups",
                groups.iter().map(ToString::to_string).collect::<Vec<_>>(),
            );
        }
        self.store()
            .create_api_key(&key, &user, groups, &event)
            .await?;
        tracing::info!(api_key_id = %key.id, name = %key.name, "API key created");
        Ok(CreatedKey { key, secret })
    }

    /// `POST /apiKeys`.
    pub async fn create_api_key(&self, caller: &Caller, input: ApiKeyInput) -> Result<CreatedKey> {
        caller.require_admin()?;
        self.create_api_key_unchecked(caller, input, &[]).await
    }

    /// `GET /apiKeys/{id}`.
    pub async fn get_api_key(&self, caller: &Caller, id: &str) -> Result<ApiKey> {
        caller.require_admin()?;
        self.store()
            .get_api_key(parse_id(id)?)
            .await?
            .ok_or_else(|| not_found(id))
    }

    /// `GET /apiKeys`.
    pub async fn list_api_keys(&self, caller: &Caller, page: PageRequest) -> Result<Page<ApiKey>> {
        caller.require_admin()?;
        Ok(self.store().list_api_keys(page).await?)
    }

    /// `PUT /apiKeys/{id}`: name, description, enabled.
    pub async fn update_api_key(
        &self,
        caller: &Caller,
        id: &str,
        input: ApiKeyInput,
    ) -> Result<ApiKey> {
        caller.require_admin()?;
        let mut key = self
            .store()
            .get_api_key(parse_id(id)?)
            .await?
            .ok_or_else(|| not_found(id))?;
        let before = key.clone();
        match input.name {
            Patch::Value(n) => {
                names::check_name("name", &n)?;
                key.name = n;
            }
            Patch::Null => return Err(FieldError::new("name", "name must not be empty").into()),
            Patch::Absent => {}
        }
        if let Patch::Value(d) = &input.description {
            names::check_optional("description", d, MAX_DESCRIPTION)?;
        }
        input.description.apply_to(&mut key.description);
        if let Patch::Value(e) = input.enabled {
            key.enabled = e;
        }
        key.modified = self.now();
        key.modified_by = Some(caller.user.id);
        let kind = if before.enabled && !key.enabled {
            EventType::ApiKeyDisabled
        } else {
            EventType::ApiKeyUpdated
        };
        let mut event = self.event(caller, kind).key(key.id, Some(key.name.clone()));
        if before.name != key.name {
            event = event.with("name", key.name.clone());
        }
        if before.description != key.description {
            event = event.with("description", key.description.clone());
        }
        if before.enabled != key.enabled {
            event = event.with("enabled", key.enabled);
        }
        self.store().update_api_key(&key, &event).await?;
        self.callers_changed_all();
        Ok(key)
    }

    /// `DELETE /apiKeys/{id}`: the key's user and memberships go with it.
    pub async fn delete_api_key(&self, caller: &Caller, id: &str) -> Result<()> {
        caller.require_admin()?;
        let key_id = parse_id(id)?;
        let name = self.store().get_api_key(key_id).await?.map(|k| k.name);
        let event = self
            .event(caller, EventType::ApiKeyDeleted)
            .key(key_id, name);
        if !self
            .store()
            .delete_api_key(key_id, self.now(), &event)
            .await?
        {
            return Err(not_found(id));
        }
        self.callers_changed_all();
        tracing::info!(api_key_id = %id, "API key deleted");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_match_only_themselves() {
        let s = new_secret();
        assert_eq!(s.len(), 43);
        let h = hash_secret(&s);
        assert!(secret_matches(&s, &h));
        assert!(!secret_matches(&new_secret(), &h));
        assert!(!secret_matches(&s, "short"));
    }
}
