//! Webhook endpoints (`/webhooks`) and their delivery from the outbox.
//!
//! Every event is queued for each subscribed endpoint by the transaction that records it
//! (`store/audit.rs`), so nothing is delivered that did not commit and nothing that
//! committed is lost. [`spawn_delivery`] runs on every node: it claims one endpoint at a
//! time with a lease (on PostgreSQL `FOR UPDATE SKIP LOCKED`, so two nodes never work
//! on the same endpoint), POSTs its oldest pending event, and settles it: delivered rows
//! go, failed ones are retried with exponential backoff and jitter until
//! [`RETRY_WINDOW_MS`] after they were queued, then kept as `failed` with the last error.
//! An endpoint's events go out one at a time, oldest first. A node that dies mid-delivery
//! loses nothing: its lease runs out and another node sends the event again (at least
//! once; receivers deduplicate by the event id).
//!
//! Signature (docs/audit.md): `X-Gatehouse-Signature: t=<unix seconds>,v1=<hex>` where
//! `<hex>` is HMAC-SHA256 with the endpoint's secret over `<t>.<body>`.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac as _};
use rand::Rng as _;
use serde_json::{Value, json};
use sha2::Sha256;

use super::{Caller, Error, Patch, Result, Services};
use crate::clock::Millis;
use crate::domain::audit::{Delivery, EventType, Record, Webhook};
use crate::domain::names::{self, FieldError, MAX_DESCRIPTION};
use crate::store::Attempt;

/// How long failed deliveries are retried before they are marked failed: 24 hours.
pub const RETRY_WINDOW_MS: Millis = 24 * 3_600_000;
/// The first retry's delay; each failure doubles it, up to [`MAX_BACKOFF_MS`].
const FIRST_BACKOFF_MS: Millis = 1_000;
/// The longest wait between two attempts.
const MAX_BACKOFF_MS: Millis = 15 * 60_000;
/// How long one delivery may take before it counts as failed.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a claim on an endpoint lasts without renewal: several delivery timeouts, so a
/// live node never loses it in normal operation.
const LEASE_MS: Millis = 60_000;
/// The longest URL accepted.
const MAX_URL: usize = 2_048;
/// The most event types one endpoint lists.
const MAX_TYPES: usize = 64;
/// The most endpoints one server keeps.
const MAX_WEBHOOKS: usize = 100;

/// A webhook create or update, as a front door read it.
#[derive(Debug, Default, Clone)]
pub struct WebhookInput {
    /// Where to POST (`http` or `https`). Required on create.
    pub url: Patch<String>,
    /// Event types (`*` for all). Required on create.
    pub event_types: Patch<Vec<String>>,
    /// Optional.
    pub description: Patch<String>,
    /// Defaults to true.
    pub enabled: Patch<bool>,
}

/// A new endpoint with its secret, shown this once.
#[derive(Debug, Clone)]
pub struct CreatedWebhook {
    /// The endpoint.
    pub webhook: Webhook,
    /// The signing secret.
    pub secret: String,
}

fn not_found(id: &str) -> Error {
    Error::NotFound {
        message: format!("No webhook has the id {id:?}."),
        data: json!({ "webhook": id }),
    }
}

/// Checks a receiver URL: absolute `http`/`https` with a host, bounded.
fn check_url(url: &str) -> Result<()> {
    if url.len() > MAX_URL {
        return Err(FieldError::new("url", "url must be at most 2048 characters long").into());
    }
    let parsed = reqwest::Url::parse(url)
        .map_err(|_| FieldError::new("url", "url must be an absolute http or https URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(FieldError::new("url", "url must be an absolute http or https URL").into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(FieldError::new("url", "url must not carry credentials").into());
    }
    Ok(())
}

fn check_types(types: &[String]) -> Result<Vec<String>> {
    if types.is_empty() {
        return Err(FieldError::new("eventTypes", "eventTypes must list at least one type").into());
    }
    if types.len() > MAX_TYPES {
        return Err(FieldError::new("eventTypes", "eventTypes lists at most 64 types").into());
    }
    let mut types = super::audit::parse_types(types, true).map_err(|e| match e {
        Error::BadRequest(m) => Error::Invalid(FieldError::new("eventTypes", &m)),
        e => e,
    })?;
    types.sort();
    types.dedup();
    Ok(types)
}

/// A random 256-bit secret, URL-safe base64.
fn new_secret() -> String {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill(&mut bytes);
    format!(
        "whsec_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// The `X-Gatehouse-Signature` value for `body` sent at `unix_secs`.
pub fn signature(secret: &str, unix_secs: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(unix_secs.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={unix_secs},v1={hex}")
}

/// The JSON body of one delivery: the event as `GET /audit` shows it.
pub fn payload(record: &Record) -> Value {
    json!({
        "id": record.seq,
        "type": record.kind,
        "at": crate::clock::format_rfc3339(record.at),
        "actor": {"type": record.actor_type, "id": record.actor_id, "name": record.actor_name},
        "target": {
            "userId": record.user_id, "userName": record.user_name,
            "groupId": record.group_id, "groupName": record.group_name,
            "keyId": record.key_id, "keyName": record.key_name,
        },
        "summary": record.summary,
        "requestId": record.request_id,
        "clientAddress": record.client_addr,
    })
}

/// The wait before retry number `attempts` (1 = the first retry), with jitter: a random
/// point in the upper half of the doubled delay, so receivers coming back are not hit by
/// every node at once.
fn backoff(attempts: i64) -> Millis {
    let exp = FIRST_BACKOFF_MS.saturating_mul(1 << attempts.clamp(0, 20));
    let cap = exp.min(MAX_BACKOFF_MS);
    rand::thread_rng().gen_range(cap / 2..=cap)
}

impl Services {
    /// `POST /webhooks`.
    pub async fn create_webhook(
        &self,
        caller: &Caller,
        input: WebhookInput,
    ) -> Result<CreatedWebhook> {
        caller.require_admin()?;
        let Patch::Value(url) = input.url else {
            return Err(FieldError::new("url", "url is required").into());
        };
        check_url(&url)?;
        let Patch::Value(types) = input.event_types else {
            return Err(FieldError::new("eventTypes", "eventTypes is required").into());
        };
        let event_types = check_types(&types)?;
        if let Patch::Value(d) = &input.description {
            names::check_optional("description", d, MAX_DESCRIPTION)?;
        }
        if self.store().list_webhooks().await?.len() >= MAX_WEBHOOKS {
            return Err(Error::Conflict(format!(
                "At most {MAX_WEBHOOKS} webhooks can be registered."
            )));
        }
        let now = self.now();
        let secret = new_secret();
        let webhook = Webhook {
            id: uuid::Uuid::new_v4().to_string(),
            url,
            secret: secret.clone(),
            description: input.description.value().cloned(),
            enabled: input.enabled.value().copied().unwrap_or(true),
            event_types,
            created: now,
            created_by: (!caller.is_operator()).then(|| caller.user.id.to_string()),
            modified: now,
        };
        let event = self
            .event(caller, EventType::WebhookCreated)
            .key(&webhook.id, Some(webhook.url.clone()))
            .with("url", webhook.url.clone())
            .with("eventTypes", webhook.event_types.clone())
            .with("enabled", webhook.enabled);
        self.store().create_webhook(&webhook, &event).await?;
        Ok(CreatedWebhook { webhook, secret })
    }

    /// `GET /webhooks`.
    pub async fn list_webhooks(&self, caller: &Caller) -> Result<Vec<Webhook>> {
        caller.require_admin()?;
        Ok(self.store().list_webhooks().await?)
    }

    /// `GET /webhooks/{id}`.
    pub async fn get_webhook(&self, caller: &Caller, id: &str) -> Result<Webhook> {
        caller.require_admin()?;
        self.store()
            .get_webhook(id)
            .await?
            .ok_or_else(|| not_found(id))
    }

    /// `PUT /webhooks/{id}`: url, eventTypes, description, enabled (the secret never
    /// changes; delete and register again to rotate it).
    pub async fn update_webhook(
        &self,
        caller: &Caller,
        id: &str,
        input: WebhookInput,
    ) -> Result<Webhook> {
        let mut hook = self.get_webhook(caller, id).await?;
        let before = hook.clone();
        match input.url {
            Patch::Value(u) => {
                check_url(&u)?;
                hook.url = u;
            }
            Patch::Null => return Err(FieldError::new("url", "url must not be empty").into()),
            Patch::Absent => {}
        }
        match input.event_types {
            Patch::Value(t) => hook.event_types = check_types(&t)?,
            Patch::Null => {
                return Err(FieldError::new(
                    "eventTypes",
                    "eventTypes must list at least one type",
                )
                .into());
            }
            Patch::Absent => {}
        }
        if let Patch::Value(d) = &input.description {
            names::check_optional("description", d, MAX_DESCRIPTION)?;
        }
        input.description.apply_to(&mut hook.description);
        if let Patch::Value(e) = input.enabled {
            hook.enabled = e;
        }
        hook.modified = self.now();
        let mut event = self
            .event(caller, EventType::WebhookUpdated)
            .key(&hook.id, Some(hook.url.clone()));
        if before.url != hook.url {
            event = event.with("url", hook.url.clone());
        }
        if before.event_types != hook.event_types {
            event = event.with("eventTypes", hook.event_types.clone());
        }
        if before.enabled != hook.enabled {
            event = event.with("enabled", hook.enabled);
        }
        if before.description != hook.description {
            event = event.with("description", hook.description.clone());
        }
        if !self.store().update_webhook(&hook, &event).await? {
            return Err(not_found(id));
        }
        Ok(hook)
    }

    /// `DELETE /webhooks/{id}`: the endpoint and everything queued for it.
    pub async fn delete_webhook(&self, caller: &Caller, id: &str) -> Result<()> {
        let hook = self.get_webhook(caller, id).await?;
        let event = self
            .event(caller, EventType::WebhookDeleted)
            .key(&hook.id, Some(hook.url.clone()));
        if !self.store().delete_webhook(id, &event).await? {
            return Err(not_found(id));
        }
        Ok(())
    }

    /// `GET /webhooks/{id}/deliveries?state=pending|failed`.
    pub async fn webhook_deliveries(
        &self,
        caller: &Caller,
        id: &str,
        state: &str,
        limit: i64,
    ) -> Result<Vec<Delivery>> {
        self.get_webhook(caller, id).await?;
        if !matches!(state, "pending" | "failed") {
            return Err(Error::BadRequest(
                "Query parameter 'state' must be 'pending' or 'failed'.".into(),
            ));
        }
        Ok(self
            .store()
            .webhook_deliveries(id, state, limit.clamp(1, 1_000))
            .await?)
    }

    /// Claims one endpoint with due deliveries and delivers them in order until none is
    /// due or one fails. Returns whether an endpoint was worked on.
    pub async fn deliver_once(&self, node: &str, client: &reqwest::Client) -> Result<bool> {
        let now = self.now();
        let Some(hook) = self
            .store()
            .claim_webhook(node, now, now + LEASE_MS)
            .await?
        else {
            return Ok(false);
        };
        let outcome = self.deliver_queue(node, client, &hook).await;
        self.store().release_webhook(&hook.id, node).await?;
        outcome.map(|()| true)
    }

    async fn deliver_queue(
        &self,
        node: &str,
        client: &reqwest::Client,
        hook: &Webhook,
    ) -> Result<()> {
        while let Some((delivery, record)) = self.store().next_delivery(&hook.id).await? {
            if delivery.next_attempt > self.now() {
                return Ok(());
            }
            let attempt = self.post(client, hook, &delivery, &record).await;
            let delivered = attempt == Attempt::Delivered;
            self.metrics().webhook_delivery(match &attempt {
                Attempt::Delivered => "delivered",
                Attempt::Failed { give_up: true, .. } => "failed",
                Attempt::Failed { .. } => "retry",
            });
            let lease = self.now() + LEASE_MS;
            let held = self
                .store()
                .settle_delivery(&hook.id, node, delivery.seq, &attempt, lease)
                .await?;
            if !held || !delivered {
                return Ok(());
            }
        }
        Ok(())
    }

    async fn post(
        &self,
        client: &reqwest::Client,
        hook: &Webhook,
        delivery: &Delivery,
        record: &Record,
    ) -> Attempt {
        let body = payload(record).to_string();
        let unix = self.now() / 1000;
        let sent = client
            .post(&hook.url)
            .header("content-type", "application/json")
            .header("user-agent", "gatehouse-webhooks")
            .header("x-gatehouse-event", &record.kind)
            .header("x-gatehouse-delivery", record.seq.to_string())
            .header(
                "x-gatehouse-signature",
                signature(&hook.secret, unix, body.as_bytes()),
            )
            .timeout(DELIVERY_TIMEOUT)
            .body(body)
            .send()
            .await;
        let (error, status) = match sent {
            Ok(r) if r.status().is_success() => return Attempt::Delivered,
            Ok(r) => (
                format!("HTTP {}", r.status().as_u16()),
                Some(i64::from(r.status().as_u16())),
            ),
            Err(e) if e.is_timeout() => ("timed out".to_owned(), None),
            Err(e) if e.is_connect() => ("could not connect".to_owned(), None),
            Err(_) => ("the request failed".to_owned(), None),
        };
        let now = self.now();
        let give_up = now - delivery.created >= RETRY_WINDOW_MS;
        tracing::warn!(webhook = %hook.id, event = record.seq, %error, give_up, "webhook delivery failed");
        Attempt::Failed {
            error,
            status,
            next_attempt: now + backoff(delivery.attempts + 1),
            give_up,
        }
    }

    /// Reads the outbox's depth and age into the metrics.
    pub async fn observe_outbox(&self) -> Result<()> {
        let (depth, oldest, events) = self.store().outbox_depth().await?;
        let age = oldest.map_or(0, |o| (self.now() - o).max(0));
        self.metrics().outbox(depth, age, events);
        Ok(())
    }
}

/// Runs delivery on this node until the process ends: every `poll` it works through
/// every endpoint with due deliveries.
pub fn spawn_delivery(services: Arc<Services>, poll: Duration) {
    let node = uuid::Uuid::new_v4().to_string();
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(DELIVERY_TIMEOUT)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhook delivery is off: no HTTP client");
            return;
        }
    };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            loop {
                match services.deliver_once(&node, &client).await {
                    Ok(true) => continue,
                    Ok(false) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "webhook delivery round failed");
                        break;
                    }
                }
            }
            if let Err(e) = services.observe_outbox().await {
                tracing::debug!(error = %e, "could not read the outbox depth");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_over_time_dot_body() {
        // HMAC-SHA256(key="Jefe", "1.what do ya want for nothing?"), computed with
        // Python's hmac module.
        let sig = signature("Jefe", 1, b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "t=1,v1=a9049465ce89cfb8e9aac62333abda66f80e3403f51f57f6bae3c3a4485eca38"
        );
        let other = signature("Jefe", 2, b"what do ya want for nothing?");
        assert_ne!(sig, other, "the timestamp is signed");
        assert_ne!(sig, signature("jefe", 1, b"what do ya want for nothing?"));
    }

    #[test]
    fn backoff_doubles_within_its_bounds() {
        for attempts in 1..30 {
            let b = backoff(attempts);
            let cap = (FIRST_BACKOFF_MS << attempts.min(20)).min(MAX_BACKOFF_MS);
            assert!(b >= cap / 2 && b <= cap, "{attempts}: {b}");
        }
        assert!(backoff(40) <= MAX_BACKOFF_MS);
    }

    #[test]
    fn only_absolute_http_urls_without_credentials_are_accepted() {
        for ok in ["http://127.0.0.1:9/hook", "https://hooks.example.com/x?y=1"] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "/relative",
            "http://user:pw@example.com/",
            "not a url",
            &format!("http://example.com/{}", "a".repeat(2100)),
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }
}
