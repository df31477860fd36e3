-- gatehouse schema, PostgreSQL dialect: the same tables, columns and meaning as
-- migrations/sqlite/0001_init.sql. Times are BIGINT milliseconds since the Unix epoch
-- (UTC), ids are TEXT UUIDs (so binding code is the same on both backends), booleans
-- BOOLEAN, `custom` a JSON object as TEXT (queries cast it with `::jsonb`), keys BYTEA.
--
-- Not mirrored: SQLite's `users.seq` and `users_fts` exist only to serve `q` from its
-- FTS5 trigram index; here `q` is a `LIKE` over the `*_lc` columns, served by pg_trgm
-- GIN indexes (below).
--
-- Names that must be unique case-insensitively are stored beside a key folded in Rust
-- (`name_key`, `user_identifiers.key`), so uniqueness does not depend on the database's
-- collation and is enforced by unique indexes whichever node writes.

CREATE TABLE users (
    id                        TEXT PRIMARY KEY NOT NULL,
    username                  TEXT NOT NULL,
    email                     TEXT NOT NULL,
    first_name                TEXT,
    last_name                 TEXT,
    -- The same four, lower-cased in Rust (Unicode), as on SQLite: case-insensitive
    -- filters, `q` and ordering read these, so both backends fold alike.
    username_lc               TEXT NOT NULL,
    email_lc                  TEXT NOT NULL,
    first_name_lc             TEXT,
    last_name_lc              TEXT,
    timezone                  TEXT,
    language                  TEXT,
    custom                    TEXT NOT NULL DEFAULT '{}',
    provider_type             TEXT NOT NULL DEFAULT 'contensis',
    password_hash             TEXT,
    password_change_frequency BIGINT NOT NULL DEFAULT 0,
    password_expirable        BOOLEAN NOT NULL DEFAULT FALSE,
    suspended                 BOOLEAN NOT NULL DEFAULT FALSE,
    locked                    BOOLEAN NOT NULL DEFAULT FALSE,
    password_reset_required   BOOLEAN NOT NULL DEFAULT FALSE,
    opt_out_of_notifications  BOOLEAN NOT NULL DEFAULT FALSE,
    created                   BIGINT NOT NULL,
    modified                  BIGINT NOT NULL,
    last_login                BIGINT,
    last_failed_login         BIGINT,
    expiry                    BIGINT,
    password_changed          BIGINT,
    failed_login_attempts     BIGINT NOT NULL DEFAULT 0,
    failed_since_success      BIGINT NOT NULL DEFAULT 0,
    successful_login_attempts BIGINT NOT NULL DEFAULT 0,
    -- Bumped whenever every token issued so far must stop working (password change).
    token_version             BIGINT NOT NULL DEFAULT 0
);

-- The default user order and the ordering comparisons sort in byte order, as on SQLite.
CREATE INDEX users_username_lc ON users ((username_lc COLLATE "C"));
CREATE INDEX users_last_name_lc ON users ((last_name_lc COLLATE "C"));
CREATE INDEX users_created ON users (created);

-- Substring search (`q`, contains, startsWith, endsWith): trigram GIN indexes make
-- `LIKE '%text%'` an index lookup instead of a scan. pg_trgm ships with PostgreSQL
-- (contrib) and is a trusted extension since PostgreSQL 13. It is created in `public`,
-- so that it outlives any one schema; its operator class is found through search_path.
CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public;
CREATE INDEX users_username_trgm ON users USING gin (username_lc gin_trgm_ops);
CREATE INDEX users_email_trgm ON users USING gin (email_lc gin_trgm_ops);
CREATE INDEX users_first_name_trgm ON users USING gin (first_name_lc gin_trgm_ops);
CREATE INDEX users_last_name_trgm ON users USING gin (last_name_lc gin_trgm_ops);

-- Every name a user can be addressed by (username and email), normalised to lower case
-- in Rust. One table makes "no username equals another user's email" a primary-key rule
-- the database enforces, whichever node writes.
CREATE TABLE user_identifiers (
    key     TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE
);
CREATE INDEX user_identifiers_user ON user_identifiers (user_id);

CREATE TABLE groups (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    name_key    TEXT NOT NULL UNIQUE,
    description TEXT,
    type        TEXT NOT NULL DEFAULT 'contensis',
    custom      TEXT NOT NULL DEFAULT '{}',
    created     BIGINT NOT NULL,
    modified    BIGINT NOT NULL
);

-- Direct user memberships.
CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members (user_id, group_id);

-- Direct child-group links (the edges of the group graph).
CREATE TABLE group_children (
    parent_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    child_id  TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    PRIMARY KEY (parent_id, child_id)
);
CREATE INDEX group_children_child ON group_children (child_id, parent_id);

-- Transitive, reflexive closure of group_children: (a, d) means d is a or lies below a.
-- Maintained by the store in the same transaction as every edge change; edge changes
-- are serialized across nodes by an advisory lock (see src/store/postgres.rs).
CREATE TABLE group_closure (
    ancestor_id   TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    descendant_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    PRIMARY KEY (ancestor_id, descendant_id)
);
CREATE INDEX group_closure_descendant ON group_closure (descendant_id, ancestor_id);

-- Token signing keys, shared by every node on the database.
CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY NOT NULL,
    algorithm   TEXT NOT NULL,
    private_key BYTEA NOT NULL,
    public_key  BYTEA NOT NULL,
    created     BIGINT NOT NULL
);

-- Refresh tokens: only a SHA-256 of the secret is kept. `family` ties a rotation chain
-- together so that reuse of a spent token can revoke the whole chain.
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    family     TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    created    BIGINT NOT NULL,
    expires    BIGINT NOT NULL,
    used       BOOLEAN NOT NULL DEFAULT FALSE,
    revoked    BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

-- API keys. Each has a user (provider_type 'apiKey') that can be put in groups like any
-- user; deleting the key deletes that user. Only a SHA-256 of the secret is stored: the
-- secret is 32 random bytes, so a fast hash is as strong as a slow one here.
CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    name_key    TEXT NOT NULL UNIQUE,
    description TEXT,
    enabled     BOOLEAN NOT NULL DEFAULT TRUE,
    client_id   TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL,
    user_id     TEXT NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    created     BIGINT NOT NULL,
    created_by  TEXT,
    modified    BIGINT NOT NULL,
    modified_by TEXT
);
