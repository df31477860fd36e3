//! Logging in (the token endpoint's grants) and authenticating bearer tokens.

use std::sync::Arc;

use serde::Serialize;

use super::{Caller, Error, Result, Services, caller_cache};
use crate::auth::token::{Claims, TokenError};
use crate::domain::audit::EventType;
use crate::domain::ids::UserId;
use crate::domain::names::name_key;
use crate::domain::password_policy;
use crate::domain::user::{PasswordHash, Provider, User};
use crate::service::api_keys::{hash_secret, secret_matches};
use crate::service::rate_limit::Refused;
use crate::store::{OnAccept, PasswordAttempt, RefreshToken, RefreshUse, Settled, StoreError};

/// A token request, as a front door read it. Its `Debug` leaves the secrets out.
#[derive(Default, Clone)]
pub struct TokenRequest {
    /// `contensis_classic`, `contensis_classic_refresh_token` or `client_credentials`.
    pub grant_type: Option<String>,
    /// Username or email (password grant).
    pub username: Option<String>,
    /// Password (password grant). Never logged.
    pub password: Option<String>,
    /// Refresh token (refresh grant).
    pub refresh_token: Option<String>,
    /// API key client id (client-credentials grant).
    pub client_id: Option<String>,
    /// API key secret (client-credentials grant).
    pub client_secret: Option<String>,
    /// Echoed back; does not widen what the caller may do.
    pub scope: Option<String>,
    /// The client's address, for the per-address rate limit (none: not limited by
    /// address).
    pub client_addr: Option<std::net::IpAddr>,
}

impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRequest")
            .field("grant_type", &self.grant_type)
            .field("username", &self.username)
            .field("client_id", &self.client_id)
            .field("scope", &self.scope)
            .field("client_addr", &self.client_addr)
            .finish_non_exhaustive()
    }
}

/// The token endpoint's success body (RFC 6749 §5.1).
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    /// The signed access token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// A refresh token, for grants that issue one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The scope asked for, echoed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// The token endpoint's failures (RFC 6749 §5.2). They never say whether a user exists.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// Wrong credentials, or an account that may not log in.
    #[error("invalid_grant")]
    InvalidGrant,
    /// Unknown or wrong API key.
    #[error("invalid_client")]
    InvalidClient,
    /// A grant type this server does not issue.
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    /// A required parameter is missing.
    #[error("invalid_request: {0}")]
    InvalidRequest(&'static str),
    /// Too many token requests from this address or for this username.
    #[error("rate limited ({limit}); retry after {retry_after_secs} s")]
    RateLimited {
        /// Which limit: `ip` or `user`.
        limit: &'static str,
        /// Whole seconds until a retry can succeed.
        retry_after_secs: u64,
    },
    /// A real fault.
    #[error("internal error")]
    Internal(#[from] Error),
}

impl From<Refused> for GrantError {
    fn from(r: Refused) -> Self {
        Self::RateLimited {
            limit: r.limit,
            retry_after_secs: r.retry_after_secs,
        }
    }
}

impl From<Refused> for Error {
    fn from(r: Refused) -> Self {
        Self::RateLimited {
            retry_after_secs: r.retry_after_secs,
        }
    }
}

impl GrantError {
    /// The outcome label of the `gatehouse_logins_total` metric.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::InvalidGrant => "invalid_grant",
            Self::InvalidClient => "invalid_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidRequest(_) => "invalid_request",
            Self::RateLimited { .. } => "rate_limited",
            Self::Internal(_) => "error",
        }
    }
}

/// The longest token the revocation endpoint looks up. Refresh tokens are 43
/// characters; anything longer is unknown without hashing it.
pub const MAX_REVOKED_TOKEN_LEN: usize = 512;

impl Services {
    /// Revokes a refresh token and the rest of its family (RFC 7009): sign-out. Holding
    /// the token is the proof, as it is for the refresh grant, so no access token is
    /// needed. `Ok(true)` when the family had a token not yet revoked (expired ones
    /// included); an unknown, over-long or already-revoked token is `Ok(false)`, which
    /// RFC 7009 answers like a success.
    /// Access tokens are not touched: they live out their `expires_in`.
    pub async fn revoke_refresh_token(&self, token: &str) -> Result<bool> {
        if token.is_empty() || token.len() > MAX_REVOKED_TOKEN_LEN {
            return Ok(false);
        }
        let event = self.anonymous_event(EventType::RefreshTokenRevoked);
        Ok(self
            .store()
            .revoke_refresh_family(&hash_secret(token), &event)
            .await?)
    }

    /// Runs a grant and issues tokens, after the rate limits; counts the outcome in
    /// `gatehouse_logins_total`.
    #[tracing::instrument(skip_all, fields(grant_type = req.grant_type.as_deref()))]
    pub async fn token(&self, req: TokenRequest) -> Result<TokenResponse, GrantError> {
        let grant_type = req.grant_type.clone();
        let result = self.limited_token(req).await;
        let outcome = match &result {
            Ok(_) => "success",
            Err(e) => e.outcome(),
        };
        self.metrics().login(grant_type.as_deref(), outcome);
        result
    }

    async fn limited_token(&self, req: TokenRequest) -> Result<TokenResponse, GrantError> {
        self.limit_attempt(req.client_addr, None)?;
        match req.grant_type.as_deref() {
            Some("contensis_classic") | Some("password") => self.password_grant(req).await,
            Some("contensis_classic_refresh_token") | Some("refresh_token") => {
                self.refresh_grant(req).await
            }
            Some("client_credentials") => self.client_credentials_grant(req).await,
            Some(_) => Err(GrantError::UnsupportedGrantType),
            None => Err(GrantError::InvalidRequest("grant_type is required")),
        }
    }

    async fn password_grant(&self, req: TokenRequest) -> Result<TokenResponse, GrantError> {
        let username = req
            .username
            .filter(|u| !u.is_empty())
            .ok_or(GrantError::InvalidRequest("username is required"))?;
        let password = req
            .password
            .ok_or(GrantError::InvalidRequest("password is required"))?;
        let user = self.verify_login(&username, password).await?;
        let refresh = self
            .new_refresh_token(&user, req.scope.as_deref(), None)
            .await?;
        let mut response = self.issue(&user, req.scope);
        response.refresh_token = Some(refresh);
        Ok(response)
    }

    /// The core of every login by password (the password grant, an LDAP bind): the
    /// argon2 bound, the user by username or email, the per-account rate limit, the
    /// claim checked ([`Services::check_claim`]) and settled
    /// ([`Services::settle_attempt`]: lockout, suspension, expiry, must-reset). The user
    /// as stored afterwards, or [`GrantError::InvalidGrant`] whatever the reason.
    pub(crate) async fn verify_login(
        &self,
        username: &str,
        password: String,
    ) -> Result<User, GrantError> {
        // No stored password is this long: refuse before any hashing, so one request
        // cannot ask argon2 for unbounded work.
        if !password_policy::within_bound(&password) {
            return Err(GrantError::InvalidGrant);
        }
        let store = self.store();
        let user = match store
            .find_user_by_key(&name_key(username))
            .await
            .map_err(Error::from)?
        {
            Some(id) => store.get_user(id).await.map_err(Error::from)?,
            None => None,
        };
        // One bucket per account, however it is spelled (username, email).
        let account = user
            .as_ref()
            .map_or_else(|| name_key(username), |u| u.id.to_string());
        self.limit_attempt(None, Some(&account))?;
        let matched = self.check_claim(user.as_ref(), password).await?;
        match user {
            Some(user) => {
                let event = self
                    .anonymous_event(EventType::LoginSucceeded)
                    .user(user.id);
                self.settle_attempt(&user, matched, OnAccept::Login, &event)
                    .await?
            }
            None => {
                self.record_unknown_login(username).await?;
                None
            }
        }
        .ok_or(GrantError::InvalidGrant)
    }

    /// Records a refused login for a name that is no account's (no transaction changes
    /// anything, so the event is recorded on its own). The name is kept as typed, cut to
    /// a bound.
    pub(crate) async fn record_unknown_login(&self, name: &str) -> Result<()> {
        let mut event = self.anonymous_event(EventType::LoginFailed);
        event.target.user_name = Some(name.chars().take(256).collect());
        event = event.with("reason", "unknown name");
        Ok(self.store().record_event(&event).await?)
    }

    /// Takes one password attempt from the per-address bucket (with `addr`) and the
    /// per-account bucket (with `account`: a user id, or the folded name of an unknown
    /// user). Counts and logs a refusal.
    pub(crate) fn limit_attempt(
        &self,
        addr: Option<std::net::IpAddr>,
        account: Option<&str>,
    ) -> Result<(), Refused> {
        self.login_limiter
            .check(addr, account)
            .inspect_err(|refused| {
                self.metrics().rate_limited(refused.limit);
                tracing::warn!(
                    limit = refused.limit,
                    client = ?addr,
                    retry_after_secs = refused.retry_after_secs,
                    "password attempt rate-limited"
                );
            })
    }

    /// Checks a claimed password, the first half of every password attempt (password
    /// grant, password endpoint): the stored hash it matched, if it did.
    ///
    /// Only an account that may prove its password now is checked against its own hash;
    /// every other one (unknown, suspended, locked, expired, without a password, not
    /// managed here) against the dummy hash, so the answer and the work are those of a
    /// wrong password. Whether a match is accepted is decided later, by
    /// [`Services::settle_attempt`], against the account as it is then.
    pub(crate) async fn check_claim(
        &self,
        user: Option<&User>,
        password: String,
    ) -> Result<Option<PasswordHash>> {
        let now = self.now();
        let hash = user
            .filter(|u| u.may_prove_password(now))
            .and_then(|u| u.password_hash.clone());
        let verified = self.verify_password(password, hash.clone()).await?;
        Ok(hash.filter(|_| verified))
    }

    /// The second half of a password attempt: settles it in the transaction that records
    /// it ([`crate::store::Store::settle_password_attempt`]), against the account as it
    /// is then, so a lock, suspension or password change committed while argon2 ran is
    /// seen. `Some(user)` (as stored afterwards) when accepted; a refusal of an account
    /// with a password counts as a failed login. `event` is recorded when accepted; a
    /// refusal records it as `login.failed` (and `login.lockedOut` when it locked the
    /// account).
    pub(crate) async fn settle_attempt(
        &self,
        user: &User,
        matched: Option<PasswordHash>,
        on_accept: OnAccept<'_>,
        event: &crate::domain::audit::Event,
    ) -> Result<Option<User>> {
        let attempt = PasswordAttempt {
            matched: matched.as_ref(),
            lock_after: self.settings().lockout_threshold,
            on_accept,
        };
        let settled = match self
            .store()
            .settle_password_attempt(user.id, attempt, self.now(), event)
            .await
        {
            Ok(settled) => settled,
            // Deleted meanwhile: like an unknown user.
            Err(StoreError::NotFound) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        self.callers_changed(&[user.id]);
        match settled {
            Settled::Accepted(user) => Ok(Some(user)),
            Settled::Refused { newly_locked, .. } => {
                if newly_locked {
                    self.metrics().lockout();
                    tracing::warn!(user_id = %user.id, "account locked after repeated failed logins");
                }
                Ok(None)
            }
        }
    }

    /// Rotates a refresh token: the presented one is spent and a new one in the same
    /// family is returned. Presenting a spent token revokes the family.
    async fn refresh_grant(&self, req: TokenRequest) -> Result<TokenResponse, GrantError> {
        let presented = req
            .refresh_token
            .filter(|t| !t.is_empty())
            .ok_or(GrantError::InvalidRequest("refresh_token is required"))?;
        let now = self.now();
        let store = self.store();
        let reuse = self.anonymous_event(EventType::RefreshTokenReused);
        let spent = match store
            .use_refresh_token(&hash_secret(&presented), now, &reuse)
            .await
            .map_err(Error::from)?
        {
            RefreshUse::Valid(t) => t,
            RefreshUse::Reused => {
                tracing::warn!("a spent refresh token was presented again; its family is revoked");
                return Err(GrantError::InvalidGrant);
            }
            RefreshUse::Invalid => return Err(GrantError::InvalidGrant),
        };
        let user = store
            .get_user(spent.user_id)
            .await
            .map_err(Error::from)?
            .ok_or(GrantError::InvalidGrant)?;
        if !user.may_log_in(now) {
            // Suspended, locked, expired or due a reset: none of the user's refresh
            // tokens may be used again, whatever happens to the account later.
            store
                .revoke_refresh_tokens(user.id)
                .await
                .map_err(Error::from)?;
            return Err(GrantError::InvalidGrant);
        }
        let scope = req
            .scope
            .or(Some(spent.scope.clone()))
            .filter(|s| !s.is_empty());
        let refresh = self
            .new_refresh_token(&user, scope.as_deref(), Some(spent.family))
            .await?;
        let mut response = self.issue(&user, scope);
        response.refresh_token = Some(refresh);
        Ok(response)
    }

    /// Logs an API key in as its user.
    async fn client_credentials_grant(
        &self,
        req: TokenRequest,
    ) -> Result<TokenResponse, GrantError> {
        let client_id = req
            .client_id
            .filter(|c| !c.is_empty())
            .ok_or(GrantError::InvalidRequest("client_id is required"))?;
        let secret = req
            .client_secret
            .ok_or(GrantError::InvalidRequest("client_secret is required"))?;
        let user = self.verify_api_key(&client_id, &secret).await?;
        Ok(self.issue(&user, req.scope))
    }

    /// The core of every login by API key (the client-credentials grant, an LDAP bind as
    /// the key's service account): the key by client id, its secret compared in constant
    /// time (hashed even for an unknown key), enabled, its user usable now; the login
    /// recorded. The key's user as stored afterwards.
    pub(crate) async fn verify_api_key(
        &self,
        client_id: &str,
        secret: &str,
    ) -> Result<User, GrantError> {
        let store = self.store();
        let key = store
            .find_api_key_by_client_id(client_id)
            .await
            .map_err(Error::from)?;
        // Hash even when the key is unknown, so both cases take the same time.
        let matches = match &key {
            Some(k) => secret_matches(secret, &k.secret_hash),
            None => {
                let _ = secret_matches(secret, &hash_secret("no such key"));
                false
            }
        };
        let key = key
            .filter(|k| matches && k.enabled)
            .ok_or(GrantError::InvalidClient)?;
        let now = self.now();
        let user = store
            .get_user(key.user_id)
            .await
            .map_err(Error::from)?
            .ok_or(GrantError::InvalidClient)?;
        if user.suspended || user.locked || user.is_expired(now) {
            return Err(GrantError::InvalidGrant);
        }
        let event = self
            .anonymous_event(EventType::LoginSucceeded)
            .user(user.id)
            .key(key.id, Some(key.name.clone()))
            .with("grant", "client_credentials");
        let user = store
            .record_login(user.id, now, &event)
            .await
            .map_err(Error::from)?;
        self.callers_changed(&[user.id]);
        Ok(user)
    }

    async fn new_refresh_token(
        &self,
        user: &User,
        scope: Option<&str>,
        family: Option<String>,
    ) -> Result<String, GrantError> {
        use base64::Engine as _;
        use rand::RngCore as _;
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let now = self.now();
        let record = RefreshToken {
            token_hash: hash_secret(&token),
            family: family.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()),
            user_id: user.id,
            scope: scope.unwrap_or_default().to_owned(),
            created: now,
            expires: now + self.settings().refresh_ttl_secs * 1000,
        };
        self.store()
            .insert_refresh_token(&record)
            .await
            .map_err(Error::from)?;
        Ok(token)
    }

    fn issue(&self, user: &User, scope: Option<String>) -> TokenResponse {
        let now_s = self.now() / 1000;
        let ttl = self.settings().token_ttl_secs;
        let keys = self.keys();
        let claims = Claims {
            iss: keys.issuer().to_owned(),
            sub: user.id.to_string(),
            iat: now_s,
            exp: now_s + ttl,
            jti: uuid::Uuid::new_v4().simple().to_string(),
            scope: scope.clone().unwrap_or_default(),
            ver: user.token_version,
        };
        TokenResponse {
            access_token: keys.sign(&claims),
            token_type: "Bearer",
            expires_in: ttl,
            refresh_token: None,
            scope,
        }
    }

    /// Turns a bearer token into a caller, or 401. A token stops working as soon as its
    /// user is deleted, suspended, locked or expired, or changed password after it was
    /// issued: all of that is read from the user's row.
    ///
    /// The answer is cached for a moment ([`caller_cache`]): this node's own changes
    /// invalidate it at once, other nodes' show within the cache's TTL.
    pub async fn authenticate(&self, token: &str) -> Result<Arc<Caller>> {
        let now = self.now();
        let key = caller_cache::digest(token);
        if let Some(caller) = self.callers.get(&key, now) {
            return Ok(caller);
        }
        let tick = self.callers.begin();
        let claims = match self.keys().verify(token, now) {
            Ok(c) => c,
            Err(TokenError::UnknownKey) => {
                // Another node may have rotated: look once more at the database, at
                // most once per KEY_RELOAD_GAP, so tokens with made-up key ids cannot
                // make every unauthenticated request a database read.
                if !self.may_reload_keys(now) {
                    return Err(Error::Unauthenticated);
                }
                self.reload_keys().await?;
                self.keys()
                    .verify(token, now)
                    .map_err(|_| Error::Unauthenticated)?
            }
            Err(_) => return Err(Error::Unauthenticated),
        };
        let id = UserId::parse(&claims.sub).ok_or(Error::Unauthenticated)?;
        let user = self
            .store()
            .get_user(id)
            .await?
            .ok_or(Error::Unauthenticated)?;
        if user.token_version != claims.ver || user.suspended || user.locked || user.is_expired(now)
        {
            return Err(Error::Unauthenticated);
        }
        // An API key's tokens die with the key: a disabled key is refused here too.
        if user.provider == Provider::ApiKey {
            let enabled = self
                .store()
                .api_key_of_user(id)
                .await?
                .is_some_and(|k| k.enabled);
            if !enabled {
                return Err(Error::Unauthenticated);
            }
        }
        let is_admin = self.is_admin(id).await?;
        let caller = Arc::new(Caller { user, is_admin });
        self.callers
            .put(key, &caller, tick, claims.exp.saturating_mul(1000));
        Ok(caller)
    }
}
