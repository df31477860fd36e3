//! Reading the audit trail (`GET /audit`, `gatehouse audit export`) and keeping it
//! within its retention. Events are written by the store in the transaction of the change
//! they describe; see `store/audit.rs`.

use std::sync::Arc;
use std::time::Duration;

use super::{Caller, Error, ListRequest, Result, Services};
use crate::clock::Millis;
use crate::domain::audit::{EventType, Record};
use crate::domain::ids::{GroupRef, UserRef};
use crate::domain::names::name_key;
use crate::store::{AuditFilter, Page};

/// Events removed per retention statement: short transactions, so writes never wait long.
const PRUNE_CHUNK: i64 = 1_000;

/// The most rows one export read returns.
pub const EXPORT_CHUNK: i64 = 1_000;

/// An audit list as a front door read it.
#[derive(Debug, Clone)]
pub struct AuditRequest {
    /// Only these event types (wire names); unknown ones are a 400.
    pub types: Vec<String>,
    /// Only events by this user (id, username or email; a deleted user by id or name).
    pub actor: Option<String>,
    /// Only events about this user or group (any identifier; also as named then).
    pub target: Option<String>,
    /// From this instant on.
    pub since: Option<Millis>,
    /// Before this instant.
    pub until: Option<Millis>,
    /// ZenQL, order and page.
    pub list: ListRequest,
}

/// Parses event type names, refusing unknown ones (`*` allowed when `wildcard`).
pub fn parse_types(types: &[String], wildcard: bool) -> Result<Vec<String>> {
    types
        .iter()
        .map(|t| {
            let t = t.trim();
            if (wildcard && t == "*") || EventType::parse(t).is_some() {
                Ok(t.to_owned())
            } else {
                Err(Error::BadRequest(format!(
                    "Unknown event type '{}'; see docs/audit.md for the list.",
                    t.chars().take(64).collect::<String>()
                )))
            }
        })
        .collect()
}

impl Services {
    /// `GET /audit`: System Administrators only, newest first.
    pub async fn list_audit(&self, caller: &Caller, req: &AuditRequest) -> Result<Page<Record>> {
        caller.require_admin()?;
        let mut filter = AuditFilter {
            types: parse_types(&req.types, false)?,
            since: req.since,
            until: req.until,
            ..AuditFilter::default()
        };
        if let (Some(since), Some(until)) = (req.since, req.until)
            && since >= until
        {
            return Err(Error::BadRequest(
                "The time range is empty: 'since' must be before 'until'.".into(),
            ));
        }
        if let Some(actor) = req.actor.as_deref() {
            match self
                .resolve_user_id(Some(caller), &UserRef::parse(actor))
                .await
            {
                Ok(id) => filter.actor = Some(id.to_string()),
                Err(Error::NotFound { .. }) => filter.actor_name = Some(name_key(actor)),
                Err(e) => return Err(e),
            }
        }
        if let Some(target) = req.target.as_deref() {
            if let Ok(id) = self
                .resolve_user_id(Some(caller), &UserRef::parse(target))
                .await
            {
                filter.target_ids.push(id.to_string());
            }
            if let Some(id) = self.try_resolve_group_id(&GroupRef::group(target)).await? {
                filter.target_ids.push(id.to_string());
            }
            if uuid::Uuid::parse_str(target).is_ok() {
                filter.target_ids.push(target.to_ascii_lowercase());
            }
            filter.target_names.push(name_key(target));
        }
        let query = self.list_query(caller, &req.list);
        Ok(self.store().list_audit(&filter, &query).await?)
    }

    /// Up to [`EXPORT_CHUNK`] events after `after_seq` recorded at or after `since`,
    /// oldest first: `gatehouse audit export` pages with the last `seq` it wrote.
    pub async fn export_audit(
        &self,
        caller: &Caller,
        after_seq: i64,
        since: Millis,
    ) -> Result<Vec<Record>> {
        caller.require_admin()?;
        Ok(self
            .store()
            .audit_after(after_seq, since, EXPORT_CHUNK)
            .await?)
    }

    /// Removes events older than the retention, a chunk at a time; returns how many.
    pub async fn prune_audit(&self, retention_days: u32) -> Result<u64> {
        if retention_days == 0 {
            return Ok(0);
        }
        let cutoff = self.now() - i64::from(retention_days) * 86_400_000;
        let mut total = 0;
        loop {
            let n = self.store().prune_audit(cutoff, PRUNE_CHUNK).await?;
            total += n;
            if n < PRUNE_CHUNK as u64 {
                return Ok(total);
            }
            tokio::task::yield_now().await;
        }
    }
}

/// Prunes the audit log every hour (and once at start), in the background.
pub fn spawn_retention(services: Arc<Services>, retention_days: u32) {
    if retention_days == 0 {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tick.tick().await;
            match services.prune_audit(retention_days).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "audit events past retention removed"),
                Err(e) => tracing::warn!(error = %e, "audit retention failed; retrying in an hour"),
            }
        }
    });
}
