-- The audit trail and the webhook outbox: the same tables as
-- migrations/sqlite/0007_audit.sql (read its comments). `seq` comes from an identity
-- column; ids are never reused.
CREATE TABLE audit_events (
    seq               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at                BIGINT NOT NULL,
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

CREATE TABLE webhooks (
    id          TEXT PRIMARY KEY NOT NULL,
    url         TEXT NOT NULL,
    secret      TEXT NOT NULL,
    description TEXT,
    enabled     BOOLEAN NOT NULL DEFAULT TRUE,
    created     BIGINT NOT NULL,
    created_by  TEXT,
    modified    BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT
);

CREATE TABLE webhook_subscriptions (
    event_type TEXT NOT NULL,
    webhook_id TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    PRIMARY KEY (event_type, webhook_id)
);

CREATE TABLE webhook_outbox (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id   TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_seq    BIGINT NOT NULL,
    state        TEXT NOT NULL DEFAULT 'pending',
    created      BIGINT NOT NULL,
    attempts     BIGINT NOT NULL DEFAULT 0,
    next_attempt BIGINT NOT NULL,
    last_error   TEXT,
    last_status  BIGINT
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (webhook_id, state, event_seq);
CREATE INDEX webhook_outbox_event ON webhook_outbox (event_seq);
