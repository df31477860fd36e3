-- Integer keys in the membership tables, as on SQLite (its migration 0005 has the
-- measurements): memberships and a user's names refer to users and groups by a
-- database-assigned integer instead of the text UUID. Clients still see only the UUIDs.

ALTER TABLE users ADD COLUMN seq BIGINT GENERATED ALWAYS AS IDENTITY;
ALTER TABLE users ADD CONSTRAINT users_seq_key UNIQUE (seq);
ALTER TABLE groups ADD COLUMN seq BIGINT GENERATED ALWAYS AS IDENTITY;
ALTER TABLE groups ADD CONSTRAINT groups_seq_key UNIQUE (seq);

CREATE TABLE group_members_by_seq (
    group_seq BIGINT NOT NULL REFERENCES groups (seq) ON DELETE CASCADE,
    user_seq  BIGINT NOT NULL REFERENCES users (seq) ON DELETE CASCADE,
    PRIMARY KEY (group_seq, user_seq)
);
INSERT INTO group_members_by_seq (group_seq, user_seq)
SELECT g.seq, u.seq FROM group_members m
JOIN groups g ON g.id = m.group_id JOIN users u ON u.id = m.user_id;
DROP TABLE group_members;
ALTER TABLE group_members_by_seq RENAME TO group_members;
ALTER INDEX group_members_by_seq_pkey RENAME TO group_members_pkey;
CREATE INDEX group_members_user ON group_members (user_seq, group_seq);

CREATE TABLE user_identifiers_by_seq (
    key      TEXT PRIMARY KEY NOT NULL,
    user_id  TEXT NOT NULL,
    user_seq BIGINT NOT NULL REFERENCES users (seq) ON DELETE CASCADE
);
INSERT INTO user_identifiers_by_seq (key, user_id, user_seq)
SELECT i.key, i.user_id, u.seq FROM user_identifiers i JOIN users u ON u.id = i.user_id;
DROP TABLE user_identifiers;
ALTER TABLE user_identifiers_by_seq RENAME TO user_identifiers;
ALTER INDEX user_identifiers_by_seq_pkey RENAME TO user_identifiers_pkey;
CREATE INDEX user_identifiers_user ON user_identifiers (user_seq);
