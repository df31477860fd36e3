-- gatehouse schema, SQLite dialect. Times are INTEGER milliseconds since the Unix
-- epoch (UTC), ids are TEXT UUIDs, booleans INTEGER 0/1, `custom` a JSON object as TEXT.

CREATE TABLE users (
    -- A stable integer key for the full-text index below (an explicit INTEGER PRIMARY
    -- KEY, so VACUUM never renumbers it). Clients only ever see `id`.
    seq                       INTEGER PRIMARY KEY,
    id                        TEXT NOT NULL UNIQUE,
    username                  TEXT NOT NULL,
    email                     TEXT NOT NULL,
    first_name                TEXT,
    last_name                 TEXT,
    -- The same four, lower-cased in Rust (Unicode): SQLite's lower() folds ASCII only,
    -- so case-insensitive filters and ordering read these instead.
    username_lc               TEXT NOT NULL,
    email_lc                  TEXT NOT NULL,
    first_name_lc             TEXT,
    last_name_lc              TEXT,
    timezone                  TEXT,
    language                  TEXT,
    custom                    TEXT NOT NULL DEFAULT '{}',
    provider_type             TEXT NOT NULL DEFAULT 'contensis',
    password_hash             TEXT,
    password_change_frequency INTEGER NOT NULL DEFAULT 0,
    password_expirable        INTEGER NOT NULL DEFAULT 0,
    suspended                 INTEGER NOT NULL DEFAULT 0,
    locked                    INTEGER NOT NULL DEFAULT 0,
    password_reset_required   INTEGER NOT NULL DEFAULT 0,
    opt_out_of_notifications  INTEGER NOT NULL DEFAULT 0,
    created                   INTEGER NOT NULL,
    modified                  INTEGER NOT NULL,
    last_login                INTEGER,
    last_failed_login         INTEGER,
    expiry                    INTEGER,
    password_changed          INTEGER,
    failed_login_attempts     INTEGER NOT NULL DEFAULT 0,
    failed_since_success      INTEGER NOT NULL DEFAULT 0,
    successful_login_attempts INTEGER NOT NULL DEFAULT 0,
    -- Bumped whenever every token issued so far must stop working (password change).
    token_version             INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX users_username_lc ON users (username_lc);
CREATE INDEX users_last_name_lc ON users (last_name_lc);
CREATE INDEX users_created ON users (created);

-- Substring search (`q`): a trigram index over the searchable text of every user, kept
-- in step by triggers. Case-insensitive; used for search terms of 3+ characters.
CREATE VIRTUAL TABLE users_fts USING fts5 (
    username, email, first_name, last_name,
    content = 'users', content_rowid = 'seq', tokenize = 'trigram'
);
CREATE TRIGGER users_fts_insert AFTER INSERT ON users BEGIN
    INSERT INTO users_fts (rowid, username, email, first_name, last_name)
    VALUES (new.seq, new.username, new.email, new.first_name, new.last_name);
END;
CREATE TRIGGER users_fts_delete AFTER DELETE ON users BEGIN
    INSERT INTO users_fts (users_fts, rowid, username, email, first_name, last_name)
    VALUES ('delete', old.seq, old.username, old.email, old.first_name, old.last_name);
END;
CREATE TRIGGER users_fts_update AFTER UPDATE OF username, email, first_name, last_name ON users BEGIN
    INSERT INTO users_fts (users_fts, rowid, username, email, first_name, last_name)
    VALUES ('delete', old.seq, old.username, old.email, old.first_name, old.last_name);
    INSERT INTO users_fts (rowid, username, email, first_name, last_name)
    VALUES (new.seq, new.username, new.email, new.first_name, new.last_name);
END;

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
    created     INTEGER NOT NULL,
    modified    INTEGER NOT NULL
);

-- Direct user memberships.
CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
) WITHOUT ROWID;
CREATE INDEX group_members_user ON group_members (user_id, group_id);

-- Direct child-group links (the edges of the group graph).
CREATE TABLE group_children (
    parent_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    child_id  TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    PRIMARY KEY (parent_id, child_id)
) WITHOUT ROWID;
CREATE INDEX group_children_child ON group_children (child_id, parent_id);

-- Transitive, reflexive closure of group_children: (a, d) means d is a or lies below a.
-- Maintained by the store in the same transaction as every edge change.
CREATE TABLE group_closure (
    ancestor_id   TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    descendant_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    PRIMARY KEY (ancestor_id, descendant_id)
) WITHOUT ROWID;
CREATE INDEX group_closure_descendant ON group_closure (descendant_id, ancestor_id);

-- Token signing keys, shared by every node on the database.
CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY NOT NULL,
    algorithm   TEXT NOT NULL,
    private_key BLOB NOT NULL,
    public_key  BLOB NOT NULL,
    created     INTEGER NOT NULL
);

-- Refresh tokens: only a SHA-256 of the secret is kept. `family` ties a rotation chain
-- together so that reuse of a spent token can revoke the whole chain.
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    family     TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    created    INTEGER NOT NULL,
    expires    INTEGER NOT NULL,
    used       INTEGER NOT NULL DEFAULT 0,
    revoked    INTEGER NOT NULL DEFAULT 0
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
    enabled     INTEGER NOT NULL DEFAULT 1,
    client_id   TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL,
    user_id     TEXT NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    created     INTEGER NOT NULL,
    created_by  TEXT,
    modified    INTEGER NOT NULL,
    modified_by TEXT
);
