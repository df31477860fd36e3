-- The audit trail and the webhook outbox (docs/audit.md).
--
-- `audit_events` is append-only: every write transaction inserts its event here before
-- it commits, so a change and its record commit together or not at all. Rows leave only
-- through retention (`--audit-retention-days`), and never while a webhook still has to
-- deliver them. `seq` is the event's id: AUTOINCREMENT, so an id is never reused even
-- after retention removed the newest rows.
--
-- Names of the actor and targets are copied as they were at that moment: a record keeps
-- meaning after its user or group is renamed or deleted.
CREATE TABLE audit_events (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    at                INTEGER NOT NULL,
    event_type        TEXT NOT NULL,
    actor_type        TEXT NOT NULL,
    actor_id          TEXT,
    actor_name        TEXT,
    target_user_id    TEXT,
    target_user_name  TEXT,
    target_group_id   TEXT,
    target_group_name TEXT,
    target_key_id     TEXT,
    target_key_name   TEXT,
    summary           TEXT NOT NULL DEFAULT '{}',
    request_id        TEXT,
    client_addr       TEXT
);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_type ON audit_events (event_type, seq);
CREATE INDEX audit_events_actor ON audit_events (actor_id, seq) WHERE actor_id IS NOT NULL;
CREATE INDEX audit_events_user ON audit_events (target_user_id, seq) WHERE target_user_id IS NOT NULL;
CREATE INDEX audit_events_group ON audit_events (target_group_id, seq) WHERE target_group_id IS NOT NULL;

-- Endpoints that receive events. The secret signs each delivery (HMAC-SHA256), so it is
-- kept as given, like the signing keys; the API shows it once, at creation.
-- `lease_owner`/`lease_until`: the node delivering to this endpoint now, until when.
CREATE TABLE webhooks (
    id          TEXT PRIMARY KEY NOT NULL,
    url         TEXT NOT NULL,
    secret      TEXT NOT NULL,
    description TEXT,
    enabled     INTEGER NOT NULL DEFAULT 1,
    created     INTEGER NOT NULL,
    created_by  TEXT,
    modified    INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until INTEGER
);

-- Which event types each endpoint receives ('*': every type). Read by every write
-- transaction to queue its event, hence keyed by type.
CREATE TABLE webhook_subscriptions (
    event_type TEXT NOT NULL,
    webhook_id TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    PRIMARY KEY (event_type, webhook_id)
) WITHOUT ROWID;

-- The transactional outbox: one row per (endpoint, event) still to deliver, inserted by
-- the transaction that records the event. Delivered rows are deleted; a row that kept
-- failing for the retry window stays as `failed`, with its last error.
CREATE TABLE webhook_outbox (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id   TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_seq    INTEGER NOT NULL,
    state        TEXT NOT NULL DEFAULT 'pending',
    created      INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER NOT NULL,
    last_error   TEXT,
    last_status  INTEGER
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (webhook_id, state, event_seq);
CREATE INDEX webhook_outbox_event ON webhook_outbox (event_seq);
