//! The audit trail and the webhook outbox, written once for both databases against
//! `Tx` (like `transactions.rs`), and the SQL of their lists.
//!
//! Role: `record` is called by every write transaction of `transactions.rs` (and by
//! the SQLite batch writer) before it returns, so a change and its event commit together
//! or not at all. It also queues the event for every enabled webhook subscribed to its
//! type: the outbox row is part of the same transaction. Delivery (`service/webhooks.rs`)
//! then works through the outbox with the functions below: claim an endpoint with a lease
//! (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so nodes never take the same one), deliver its
//! oldest pending event, settle it, release the lease.

use serde_json::{Map, Value};

use super::filter_sql::{self, Columns, SqlValue};
use super::sql::{ListSql, RowColumns, push, push_texts};
use super::tx::{Lock, RowLock, Tx, opt_int, opt_text, text};
use super::{ListQuery, StoreError, StoreResult};
use crate::clock::Millis;
use crate::domain::audit::{Delivery, Event, Record, Webhook};
use crate::domain::ids::GroupId;

/// The columns an event is inserted into: in this order, [`EventRow`].
macro_rules! event_columns {
    () => {
        "INSERT INTO audit_events (at, event_type, actor_type, actor_id, actor_name, \
        target_user_id, target_user_name, target_group_id, target_group_name, \
        target_key_id, target_key_name, summary, request_id, client_addr) VALUES "
    };
}

/// The insert of one event, its parameters in the order of [`values`].
macro_rules! event_insert {
    ($user_name:literal, $group_name:literal) => {
        concat!(
            event_columns!(),
            "($1, $2, $3, $4, $5, $6, ",
            $user_name,
            ", $8, ",
            $group_name,
            ", $9, $10, $11, $12, $13) RETURNING seq"
        )
    };
}

/// Inserts an event, names of its targets read from their rows as they are now (`$7`:
/// the user's name if no row has it).
const INSERT_EVENT: &str = event_insert!(
    "COALESCE((SELECT username FROM users WHERE id = $6), $7)",
    "(SELECT name FROM groups WHERE id = $8)"
);

/// Inserts an event whose targets' names the transaction has just read (`$7`, `$14`).
const INSERT_EVENT_NAMED: &str = event_insert!("$7", "$14");

/// Queues an event for every enabled endpoint subscribed to its type (or to `*`).
const QUEUE_DELIVERIES: &str = "INSERT INTO webhook_outbox (webhook_id, event_seq, created, \
    next_attempt) SELECT s.webhook_id, $1, $2, $2 FROM webhook_subscriptions s \
    JOIN webhooks w ON w.id = s.webhook_id WHERE s.event_type IN ($3, '*') AND w.enabled";

/// The columns of an event row.
pub(crate) const EVENT_COLUMNS: &str = "a.seq, a.at, a.event_type, a.actor_type, a.actor_id, \
    a.actor_name, a.target_user_id, a.target_user_name, a.target_group_id, \
    a.target_group_name, a.target_key_id, a.target_key_name, a.summary, a.request_id, \
    a.client_addr";

const WEBHOOK_COLUMNS: &str = "w.id, w.url, w.secret, w.description, w.enabled, w.created, \
    w.created_by, w.modified";

/// Records `event` in the transaction `tx` and queues its deliveries.
pub(crate) async fn record(tx: &mut impl Tx, event: &Event) -> StoreResult<()> {
    insert(tx, event, None).await
}

/// Records `event`, about a user and a group whose current names the transaction has
/// read (`user_name`, `group_name`): the same record as [`record`], two lookups fewer
/// (the SQLite batch writer's add, which resolves both in one statement, in a batch with
/// webhooks; without, it defers the event: `insert_events_sql`).
pub(crate) async fn record_named(
    tx: &mut impl Tx,
    event: &Event,
    (user_name, group_name): (&str, &str),
) -> StoreResult<()> {
    insert(tx, event, Some((user_name, group_name))).await
}

async fn insert(tx: &mut impl Tx, event: &Event, names: Option<(&str, &str)>) -> StoreResult<()> {
    let mut args = values(event);
    let sql = match names {
        None => INSERT_EVENT,
        Some((user_name, group_name)) => {
            args[6] = text(user_name);
            args.push(text(group_name));
            INSERT_EVENT_NAMED
        }
    };
    let row = tx
        .fetch_optional(sql, &args)
        .await?
        .ok_or(StoreError::NotFound)?;
    let seq = row.int("seq")?;
    tx.execute(
        QUEUE_DELIVERIES,
        &[
            SqlValue::Int(seq),
            SqlValue::Int(event.at),
            text(event.kind.as_str()),
        ],
    )
    .await?;
    Ok(())
}

/// An event's values for [`INSERT_EVENT`], `$1` to `$13`.
fn values(event: &Event) -> Vec<SqlValue> {
    let summary = Value::Object(event.summary.clone()).to_string();
    let t = &event.target;
    vec![
        SqlValue::Int(event.at),
        text(event.kind.as_str()),
        text(event.actor.kind.as_str()),
        opt_text(event.actor.id.map(|u| u.to_string())),
        opt_text(event.actor.name.clone()),
        opt_text(t.user.map(|u| u.to_string())),
        opt_text(t.user_name.clone()),
        opt_text(t.group.map(|g| g.to_string())),
        opt_text(t.key.clone()),
        opt_text(t.key_name.clone()),
        text(summary),
        opt_text(event.origin.request_id.clone()),
        opt_text(event.origin.client_addr.clone()),
    ]
}

/// How many values an event row takes in [`insert_events_sql`].
pub(crate) const EVENT_VALUES: usize = 14;

/// An event's values for [`insert_events_sql`], in the order of the columns, made ready
/// before its change is queued: the transaction that resolves the change's user and
/// group only fills in their ids and names ([`EventRow::about`]).
#[derive(Debug)]
pub(crate) struct EventRow(Vec<SqlValue>);

impl EventRow {
    pub(crate) fn new(event: &Event) -> Self {
        let mut row = values(event);
        row.insert(8, SqlValue::NullText); // the group's name
        Self(row)
    }

    /// The row, about the user and the group (id and current name of each).
    pub(crate) fn about(
        mut self,
        (user_id, user_name): (String, String),
        (group_id, group_name): (String, String),
    ) -> Vec<SqlValue> {
        self.0[5] = SqlValue::Text(user_id);
        self.0[6] = SqlValue::Text(user_name);
        self.0[7] = SqlValue::Text(group_id);
        self.0[8] = SqlValue::Text(group_name);
        self.0
    }
}

/// One statement inserting `rows` events, each [`EVENT_VALUES`] anonymous parameters
/// ([`EventRow`]). Nothing is queued for webhooks: for a transaction that has
/// seen no enabled endpoint (the SQLite batch writer's adds).
pub(crate) fn insert_events_sql(rows: usize) -> String {
    let row = format!("({})", vec!["?"; EVENT_VALUES].join(", "));
    let mut sql = String::from(event_columns!());
    sql.push_str(&vec![row; rows].join(", "));
    sql
}

/// Records a copy of `template` about a parent group, naming the child in the summary.
pub(crate) async fn record_child(
    tx: &mut impl Tx,
    template: &Event,
    child: GroupId,
) -> StoreResult<()> {
    let name = tx
        .fetch_texts(
            "SELECT name FROM groups WHERE id = $1",
            &[text(child.to_string())],
        )
        .await?
        .pop();
    let mut event = template.clone().with("childId", child.to_string());
    if let Some(name) = name {
        event = event.with("childName", name);
    }
    record(tx, &event).await
}

/// Reads an event row (columns [`EVENT_COLUMNS`]).
pub(crate) fn record_from(r: &impl RowColumns) -> StoreResult<Record> {
    let summary = r.text("summary")?;
    let summary: Map<String, Value> = serde_json::from_str(&summary).unwrap_or_default();
    Ok(Record {
        seq: r.int("seq")?,
        at: r.int("at")?,
        kind: r.text("event_type")?,
        actor_type: r.text("actor_type")?,
        actor_id: r.opt_text("actor_id")?,
        actor_name: r.opt_text("actor_name")?,
        user_id: r.opt_text("target_user_id")?,
        user_name: r.opt_text("target_user_name")?,
        group_id: r.opt_text("target_group_id")?,
        group_name: r.opt_text("target_group_name")?,
        key_id: r.opt_text("target_key_id")?,
        key_name: r.opt_text("target_key_name")?,
        summary,
        request_id: r.opt_text("request_id")?,
        client_addr: r.opt_text("client_addr")?,
    })
}

/// How the audit log's fields (`query::ast::AUDIT`) map to columns (table alias `a`).
#[derive(Debug, Clone, Copy)]
pub struct AuditColumns;

impl Columns for AuditColumns {
    fn column(&self, field: &str) -> &'static str {
        match field {
            "id" => "a.seq",
            "at" => "a.at",
            "actorType" => "a.actor_type",
            "actorId" => "a.actor_id",
            "actorName" => "a.actor_name",
            "userId" => "a.target_user_id",
            "userName" => "a.target_user_name",
            "groupId" => "a.target_group_id",
            "groupName" => "a.target_group_name",
            "keyId" => "a.target_key_id",
            "keyName" => "a.target_key_name",
            "requestId" => "a.request_id",
            "clientAddress" => "a.client_addr",
            _ => "a.event_type",
        }
    }

    fn custom_column(&self) -> &'static str {
        "a.summary"
    }

    fn free_text_columns(&self) -> &'static [&'static str] {
        &["a.actor_name", "a.target_user_name", "a.target_group_name"]
    }

    fn is_folded(&self, column: &str) -> bool {
        matches!(
            column,
            "a.actor_id" | "a.target_user_id" | "a.target_group_id"
        )
    }
}

/// The structured filters of the audit list (beside ZenQL in [`ListQuery`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditFilter {
    /// Only these types (empty: all).
    pub types: Vec<String>,
    /// Only events by this user (id).
    pub actor: Option<String>,
    /// Only events by a user of this name then (lower case), for deleted users.
    pub actor_name: Option<String>,
    /// Only events about these users or groups (ids), or naming one of them then
    /// (`names`, folded to lower case).
    pub target_ids: Vec<String>,
    /// Names the target had (lower case), matched against the recorded names.
    pub target_names: Vec<String>,
    /// From this instant on.
    pub since: Option<Millis>,
    /// Before this instant.
    pub until: Option<Millis>,
}

/// The list of events a filter and query select, newest first unless ordered.
pub(crate) fn list_sql(
    filter: &AuditFilter,
    query: &ListQuery,
    dialect: filter_sql::Dialect,
) -> ListSql {
    let mut params = Vec::new();
    let mut wheres = Vec::new();
    let sqlite = dialect == filter_sql::Dialect::Sqlite;
    if !filter.types.is_empty() {
        let list = push_texts(&mut params, &filter.types);
        let is_type = |t: &str| format!("{t}.event_type IN ({list})");
        wheres.push(if sqlite {
            let indexed = fts_any(&mut params, filter.types.iter().map(|t| type_term(t)));
            deferred(&indexed, &is_type("e"), &is_type("a"))
        } else {
            is_type("a")
        });
    }
    if let Some(actor) = &filter.actor {
        let p = push(&mut params, text(actor.clone()));
        let by = |t: &str| format!("{t}.actor_id = {p}");
        wheres.push(if sqlite {
            let indexed = fts_any(&mut params, [actor_term(actor)].into_iter());
            deferred(&indexed, &by("e"), &by("a"))
        } else {
            by("a")
        });
    }
    if let Some(name) = &filter.actor_name {
        let p = push(&mut params, text(name.clone()));
        wheres.push(format!("lower(a.actor_name) = {p}"));
    }
    if !filter.target_ids.is_empty() || !filter.target_names.is_empty() {
        let mut any = Vec::new();
        if !filter.target_ids.is_empty() {
            let ids = push_texts(&mut params, &filter.target_ids);
            let about = |t: &str| {
                format!("{t}.target_user_id IN ({ids}) OR {t}.target_group_id IN ({ids})")
            };
            let indexed = if sqlite {
                fts_any(&mut params, filter.target_ids.iter().cloned())
            } else {
                // PostgreSQL's passes index the ids as they are (`postgres/audit_index.rs`).
                format!("SELECT t.seq FROM audit_targets t WHERE t.target IN ({ids})")
            };
            any.push(deferred(&indexed, &about("e"), &about("a")));
        }
        for name in &filter.target_names {
            let p = push(&mut params, text(name.clone()));
            any.push(format!(
                "lower(a.target_user_name) = {p} OR lower(a.target_group_name) = {p}"
            ));
        }
        wheres.push(format!("({})", any.join(" OR ")));
    }
    let mut spans = Vec::new();
    if let Some(since) = filter.since {
        let p = push(&mut params, SqlValue::Int(since));
        wheres.push(format!("a.at >= {p}"));
        spans.push(format!("s.max_at >= {p}"));
    }
    if let Some(until) = filter.until {
        let p = push(&mut params, SqlValue::Int(until));
        wheres.push(format!("a.at < {p}"));
        spans.push(format!("s.min_at < {p}"));
    }
    if sqlite && !spans.is_empty() {
        // The seqs of the passes' spans that reach into the range, and the events after
        // the last pass (`sqlite/audit_index.rs`); `a.at` above decides.
        let reach = spans.join(" AND ");
        wheres.push(format!(
            "(a.seq BETWEEN (SELECT MIN(s.first_seq) FROM audit_spans s WHERE {reach}) \
             AND (SELECT MAX(s.last_seq) FROM audit_spans s WHERE {reach}) \
             OR a.seq > {INDEXED})"
        ));
    }
    if let Some(expr) = &query.filter {
        wheres.push(filter_sql::translate(
            expr,
            &AuditColumns,
            dialect,
            &query.ctx,
            &mut params,
        ));
    }
    let where_params = params.len();
    let order = filter_sql::order_by_sql(&query.order, &AuditColumns, dialect, &mut params);
    let order = if order.is_empty() {
        "a.seq DESC".to_owned()
    } else {
        format!("{order}, a.seq DESC")
    };
    ListSql::new(
        EVENT_COLUMNS,
        "audit_events a",
        wheres,
        order,
        params,
        where_params,
    )
}

/// The newest event the index passes have reached (`sqlite/audit_index.rs`,
/// `postgres/audit_index.rs`).
const INDEXED: &str = "(SELECT x.seq FROM audit_indexed x WHERE x.only = 1)";

/// The events that `indexed` (the seqs a deferred index holds, which the passes have
/// filled up to [`INDEXED`]) selects, and the newer ones `tail` (on alias `e`) selects.
/// The index only narrows: `exact` (on alias `a`) decides.
fn deferred(indexed: &str, tail: &str, exact: &str) -> String {
    format!(
        "a.seq IN ({indexed} \
         UNION ALL SELECT e.seq FROM audit_events e WHERE e.seq > {INDEXED} AND ({tail})) \
         AND ({exact})"
    )
}

/// The term an event of type `t` is indexed under (migration 0010; the index pass
/// makes the same with SQL).
fn type_term(t: &str) -> String {
    format!("type-{}", t.replace('.', "-"))
}

/// The term an event by the user `id` is indexed under.
fn actor_term(id: &str) -> String {
    format!("actor-{id}")
}

/// SQLite: binds an FTS5 query for `audit_terms` matching any of `terms`, each a token
/// of its own (the index's tokenizer keeps letters, digits and `-`, as in a UUID), and
/// returns the seqs of the events it matches (for [`deferred`]). A term with other
/// characters cannot be an event's and is left out; with none left, the query asks for
/// a token no row has.
fn fts_any(params: &mut Vec<SqlValue>, terms: impl Iterator<Item = String>) -> String {
    let tokens: Vec<String> = terms
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .map(|t| format!("\"{t}\""))
        .collect();
    let query = if tokens.is_empty() {
        "\"-\"".to_owned()
    } else {
        tokens.join(" OR ")
    };
    let terms = push(params, text(query));
    format!("SELECT rowid FROM audit_terms WHERE audit_terms MATCH {terms}")
}

/// Events after `after_seq` recorded at or after `since`, oldest first (the export).
pub(crate) const EVENTS_AFTER: &str = "SELECT a.seq, a.at, a.event_type, a.actor_type, \
    a.actor_id, a.actor_name, a.target_user_id, a.target_user_name, a.target_group_id, \
    a.target_group_name, a.target_key_id, a.target_key_name, a.summary, a.request_id, \
    a.client_addr FROM audit_events a WHERE a.seq > $1 AND a.at >= $2 ORDER BY a.seq LIMIT $3";

/// Removes up to `limit` events older than `cutoff` that no endpoint still waits for,
/// and failed deliveries older than it. Returns how many events went.
pub(crate) async fn prune(tx: &mut impl Tx, cutoff: Millis, limit: i64) -> StoreResult<u64> {
    const UNPINNED: &str = "NOT EXISTS (SELECT 1 FROM webhook_outbox o \
        WHERE o.event_seq = a.seq AND o.state = 'pending')";
    let args = [SqlValue::Int(cutoff), SqlValue::Int(limit)];
    let removed = if tx.dialect() == filter_sql::Dialect::Sqlite {
        // The passes' spans bound where old events are (`a.at` has no index), and the
        // newest event stays: `seq` is not AUTOINCREMENT, and SQLite gives the next
        // event MAX(seq) + 1 (migration 0010).
        let pruned = format!(
            "SELECT a.seq FROM audit_events a WHERE (a.seq <= \
             (SELECT MAX(s.last_seq) FROM audit_spans s WHERE s.min_at < $1) \
             OR a.seq > {INDEXED}) AND a.at < $1 \
             AND a.seq < (SELECT MAX(seq) FROM audit_events) AND {UNPINNED} \
             ORDER BY a.seq LIMIT $2"
        );
        // The same events' rows in the deferred index, first.
        tx.execute(
            &format!("DELETE FROM audit_terms WHERE rowid IN ({pruned})"),
            &args,
        )
        .await?;
        let removed = tx
            .execute(
                &format!("DELETE FROM audit_events WHERE seq IN ({pruned})"),
                &args,
            )
            .await?;
        tx.execute(
            "DELETE FROM audit_spans WHERE last_seq < (SELECT MIN(seq) FROM audit_events)",
            &[],
        )
        .await?;
        removed
    } else {
        // Not while an index pass is between reading events and committing their rows
        // (`postgres/audit_index.rs`). The removed events' rows in `audit_targets` go in
        // the same statement (a second one could pick other events: a delivery may have
        // settled in between), each found by its key from the ids the event holds (an
        // event no pass has reached has none).
        tx.lock(Lock::AuditIndex).await?;
        let pruned = format!(
            "SELECT a.seq FROM audit_events a WHERE a.at < $1 AND {UNPINNED} \
             ORDER BY a.seq LIMIT $2"
        );
        let removed = tx
            .fetch_optional(
                &format!(
                    "WITH gone AS (DELETE FROM audit_events WHERE seq IN ({pruned}) \
                     RETURNING seq, target_user_id, target_group_id), \
                     unindexed AS (DELETE FROM audit_targets t USING gone g \
                     CROSS JOIN LATERAL (VALUES (g.target_user_id), (g.target_group_id)) \
                     AS x (target) WHERE t.target = x.target AND t.seq = g.seq) \
                     SELECT COUNT(*) AS n FROM gone"
                ),
                &args,
            )
            .await?
            .ok_or(StoreError::NotFound)?
            .int("n")?;
        u64::try_from(removed).unwrap_or(0)
    };
    tx.execute(
        "DELETE FROM webhook_outbox WHERE state = 'failed' AND created < $1",
        &[SqlValue::Int(cutoff)],
    )
    .await?;
    Ok(removed)
}

// ---- webhooks ----

/// Reads a webhook row (columns `WEBHOOK_COLUMNS`) and its subscriptions.
async fn webhook_from(tx: &mut impl Tx, r: &impl RowColumns) -> StoreResult<Webhook> {
    let id = r.text("id")?;
    let mut event_types = tx
        .fetch_texts(
            "SELECT event_type FROM webhook_subscriptions WHERE webhook_id = $1",
            &[text(id.clone())],
        )
        .await?;
    event_types.sort();
    Ok(Webhook {
        id,
        url: r.text("url")?,
        secret: r.text("secret")?,
        description: r.opt_text("description")?,
        enabled: r.flag("enabled")?,
        event_types,
        created: r.int("created")?,
        created_by: r.opt_text("created_by")?,
        modified: r.int("modified")?,
    })
}

/// One webhook.
pub(crate) async fn get_webhook(tx: &mut impl Tx, id: &str) -> StoreResult<Option<Webhook>> {
    let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks w WHERE w.id = $1");
    match tx.fetch_optional(&sql, &[text(id)]).await? {
        Some(row) => Ok(Some(webhook_from(tx, &row).await?)),
        None => Ok(None),
    }
}

/// Every webhook, oldest first (there are few).
pub(crate) async fn list_webhooks(tx: &mut impl Tx) -> StoreResult<Vec<Webhook>> {
    let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks w ORDER BY w.created, w.id");
    let rows = tx.fetch_all(&sql, &[]).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        out.push(webhook_from(tx, row).await?);
    }
    Ok(out)
}

async fn subscribe(tx: &mut impl Tx, hook: &Webhook) -> StoreResult<()> {
    tx.execute(
        "DELETE FROM webhook_subscriptions WHERE webhook_id = $1",
        &[text(hook.id.clone())],
    )
    .await?;
    for t in &hook.event_types {
        tx.execute(
            "INSERT INTO webhook_subscriptions (event_type, webhook_id) VALUES ($1, $2)",
            &[text(t.clone()), text(hook.id.clone())],
        )
        .await?;
    }
    Ok(())
}

/// Registers an endpoint.
pub(crate) async fn create_webhook(
    tx: &mut impl Tx,
    hook: &Webhook,
    event: &Event,
) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO webhooks (id, url, secret, description, enabled, created, created_by, \
         modified) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            text(hook.id.clone()),
            text(hook.url.clone()),
            text(hook.secret.clone()),
            opt_text(hook.description.clone()),
            SqlValue::Bool(hook.enabled),
            SqlValue::Int(hook.created),
            opt_text(hook.created_by.clone()),
            SqlValue::Int(hook.modified),
        ],
    )
    .await?;
    subscribe(tx, hook).await?;
    record(tx, event).await
}

/// Changes an endpoint's URL, description, enabled flag and subscriptions (never its
/// secret). Disabling it drops what was queued for it.
pub(crate) async fn update_webhook(
    tx: &mut impl Tx,
    hook: &Webhook,
    event: &Event,
) -> StoreResult<bool> {
    let n = tx
        .execute(
            "UPDATE webhooks SET url = $2, description = $3, enabled = $4, modified = $5 \
             WHERE id = $1",
            &[
                text(hook.id.clone()),
                text(hook.url.clone()),
                opt_text(hook.description.clone()),
                SqlValue::Bool(hook.enabled),
                SqlValue::Int(hook.modified),
            ],
        )
        .await?;
    if n == 0 {
        return Ok(false);
    }
    subscribe(tx, hook).await?;
    if !hook.enabled {
        tx.execute(
            "DELETE FROM webhook_outbox WHERE webhook_id = $1 AND state = 'pending'",
            &[text(hook.id.clone())],
        )
        .await?;
    }
    record(tx, event).await?;
    Ok(true)
}

/// Removes an endpoint and its queue.
pub(crate) async fn delete_webhook(tx: &mut impl Tx, id: &str, event: &Event) -> StoreResult<bool> {
    tx.execute(
        "DELETE FROM webhook_outbox WHERE webhook_id = $1",
        &[text(id)],
    )
    .await?;
    tx.execute(
        "DELETE FROM webhook_subscriptions WHERE webhook_id = $1",
        &[text(id)],
    )
    .await?;
    let n = tx
        .execute("DELETE FROM webhooks WHERE id = $1", &[text(id)])
        .await?;
    if n == 0 {
        return Ok(false);
    }
    record(tx, event).await?;
    Ok(true)
}

const DELIVERY_COLUMNS: &str = "o.seq, o.event_seq, o.state, o.attempts, o.created, o.next_attempt, o.last_error, o.last_status";

fn delivery_from(r: &impl RowColumns) -> StoreResult<Delivery> {
    Ok(Delivery {
        seq: r.int("seq")?,
        event_seq: r.int("event_seq")?,
        state: r.text("state")?,
        attempts: r.int("attempts")?,
        created: r.int("created")?,
        next_attempt: r.int("next_attempt")?,
        last_error: r.opt_text("last_error")?,
        last_status: r.opt_int("last_status")?,
    })
}

/// An endpoint's queue (pending, oldest first) or its failed deliveries (newest first).
pub(crate) async fn deliveries(
    tx: &mut impl Tx,
    webhook: &str,
    state: &str,
    limit: i64,
) -> StoreResult<Vec<Delivery>> {
    let order = if state == "pending" { "ASC" } else { "DESC" };
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_outbox o WHERE o.webhook_id = $1 \
         AND o.state = $2 ORDER BY o.event_seq {order} LIMIT $3"
    );
    let rows = tx
        .fetch_all(&sql, &[text(webhook), text(state), SqlValue::Int(limit)])
        .await?;
    rows.iter().map(delivery_from).collect()
}

/// An endpoint [`claim_webhook`] may take at `$1`: enabled, not leased, with a delivery due.
const CLAIMABLE_WHERE: &str = "w.enabled AND (w.lease_until IS NULL OR w.lease_until < $1) \
    AND EXISTS (SELECT 1 FROM webhook_outbox o WHERE o.webhook_id = w.id \
    AND o.state = 'pending' AND o.next_attempt <= $1)";

/// Whether [`claim_webhook`] would find an endpoint at `$1`: asked outside a write
/// transaction (SQLite), so a delivery poll with nothing to do takes no write lock.
pub(crate) fn any_claimable_sql() -> String {
    format!("SELECT EXISTS (SELECT 1 FROM webhooks w WHERE {CLAIMABLE_WHERE})")
}

/// Claims an enabled endpoint with a due delivery that no node holds (or whose holder's
/// lease ran out), for `owner` until `lease_until`. PostgreSQL skips rows another node
/// is claiming at this moment.
pub(crate) async fn claim_webhook(
    tx: &mut impl Tx,
    owner: &str,
    now: Millis,
    lease_until: Millis,
) -> StoreResult<Option<Webhook>> {
    let skip_locked = tx.row_lock(RowLock::Claim);
    let sql = format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks w WHERE {CLAIMABLE_WHERE} \
         ORDER BY w.id LIMIT 1{skip_locked}"
    );
    let Some(row) = tx.fetch_optional(&sql, &[SqlValue::Int(now)]).await? else {
        return Ok(None);
    };
    let hook = webhook_from(tx, &row).await?;
    tx.execute(
        "UPDATE webhooks SET lease_owner = $2, lease_until = $3 WHERE id = $1",
        &[
            text(hook.id.clone()),
            text(owner),
            SqlValue::Int(lease_until),
        ],
    )
    .await?;
    Ok(Some(hook))
}

/// The oldest pending delivery of an endpoint and its event, if any.
pub(crate) async fn next_delivery(
    tx: &mut impl Tx,
    webhook: &str,
) -> StoreResult<Option<(Delivery, Record)>> {
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS}, a.at, a.event_type, a.actor_type, a.actor_id, a.actor_name, \
         a.target_user_id, a.target_user_name, a.target_group_id, a.target_group_name, \
         a.target_key_id, a.target_key_name, a.summary, a.request_id, a.client_addr \
         FROM webhook_outbox o JOIN audit_events a ON a.seq = o.event_seq \
         WHERE o.webhook_id = $1 AND o.state = 'pending' ORDER BY o.event_seq LIMIT 1"
    );
    let Some(row) = tx.fetch_optional(&sql, &[text(webhook)]).await? else {
        return Ok(None);
    };
    let delivery = delivery_from(&row)?;
    let mut record = record_from(&Renamed(&row))?;
    record.seq = delivery.event_seq;
    Ok(Some((delivery, record)))
}

/// Reads an event from a delivery row, whose `seq` column is the outbox's.
struct Renamed<'r, R>(&'r R);

impl<R: RowColumns> RowColumns for Renamed<'_, R> {
    fn text(&self, column: &str) -> StoreResult<String> {
        self.0.text(column)
    }
    fn opt_text(&self, column: &str) -> StoreResult<Option<String>> {
        self.0.opt_text(column)
    }
    fn int(&self, column: &str) -> StoreResult<i64> {
        self.0
            .int(if column == "seq" { "event_seq" } else { column })
    }
    fn opt_int(&self, column: &str) -> StoreResult<Option<i64>> {
        self.0.opt_int(column)
    }
    fn flag(&self, column: &str) -> StoreResult<bool> {
        self.0.flag(column)
    }
}

/// How a delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The receiver answered 2xx: the delivery is done.
    Delivered,
    /// It did not; retry at `next_attempt`, or give up (`failed`) when the window closed.
    Failed {
        /// What went wrong, e.g. `HTTP 500` or `timed out`.
        error: String,
        /// The status the receiver answered, if any.
        status: Option<i64>,
        /// When to try again.
        next_attempt: Millis,
        /// Whether to stop trying.
        give_up: bool,
    },
}

/// Settles an attempt, if `owner` still holds the endpoint's lease (otherwise another
/// node took over and will deliver again: at least once). Extends the lease.
pub(crate) async fn settle_delivery(
    tx: &mut impl Tx,
    webhook: &str,
    owner: &str,
    delivery: i64,
    attempt: &Attempt,
    lease_until: Millis,
) -> StoreResult<bool> {
    let held = tx
        .execute(
            "UPDATE webhooks SET lease_until = $3 WHERE id = $1 AND lease_owner = $2",
            &[text(webhook), text(owner), SqlValue::Int(lease_until)],
        )
        .await?;
    if held == 0 {
        return Ok(false);
    }
    match attempt {
        Attempt::Delivered => {
            tx.execute(
                "DELETE FROM webhook_outbox WHERE seq = $1",
                &[SqlValue::Int(delivery)],
            )
            .await?;
        }
        Attempt::Failed {
            error,
            status,
            next_attempt,
            give_up,
        } => {
            tx.execute(
                "UPDATE webhook_outbox SET attempts = attempts + 1, last_error = $2, \
                 last_status = $3, next_attempt = $4, state = $5 WHERE seq = $1",
                &[
                    SqlValue::Int(delivery),
                    text(error.clone()),
                    opt_int(*status),
                    SqlValue::Int(*next_attempt),
                    text(if *give_up { "failed" } else { "pending" }),
                ],
            )
            .await?;
        }
    }
    Ok(true)
}

/// Gives up an endpoint's lease.
pub(crate) async fn release_webhook(
    tx: &mut impl Tx,
    webhook: &str,
    owner: &str,
) -> StoreResult<()> {
    tx.execute(
        "UPDATE webhooks SET lease_owner = NULL, lease_until = NULL \
         WHERE id = $1 AND lease_owner = $2",
        &[text(webhook), text(owner)],
    )
    .await?;
    Ok(())
}

/// Pending deliveries, the creation time of the oldest, and the newest event's id.
pub(crate) async fn outbox_depth(tx: &mut impl Tx) -> StoreResult<(i64, Option<Millis>, i64)> {
    let row = tx
        .fetch_optional(
            "SELECT (SELECT COUNT(*) FROM webhook_outbox WHERE state = 'pending') AS n, \
             (SELECT MIN(created) FROM webhook_outbox WHERE state = 'pending') AS oldest, \
             (SELECT COALESCE(MAX(seq), 0) FROM audit_events) AS events",
            &[],
        )
        .await?
        .ok_or(StoreError::NotFound)?;
    Ok((row.int("n")?, row.opt_int("oldest")?, row.int("events")?))
}

/// The audit list as the stores' tests ask it.
#[cfg(test)]
pub(crate) mod testing {
    use super::AuditFilter;
    use crate::store::{ListQuery, Store};

    /// The seqs of the events about `target`, as the audit list finds them.
    pub(crate) async fn events_about(store: &dyn Store, target: &str) -> Vec<i64> {
        events_where(
            store,
            AuditFilter {
                target_ids: vec![target.to_owned()],
                ..AuditFilter::default()
            },
        )
        .await
    }

    /// The events a filter selects, newest first (their `seq`).
    pub(crate) async fn events_where(store: &dyn Store, filter: AuditFilter) -> Vec<i64> {
        let ctx = crate::store::filter_sql::Ctx {
            now_ms: 0,
            current_user_id: String::new(),
        };
        let query = ListQuery::page(
            crate::domain::page::PageRequest {
                index: 0,
                size: 500,
            },
            ctx,
        );
        let page = store.list_audit(&filter, &query).await.unwrap();
        page.items.iter().map(|r| r.seq).collect()
    }
}
