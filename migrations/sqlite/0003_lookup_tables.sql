-- Finding a user by username or email in one B-tree descent instead of two.
--
-- user_identifiers was a rowid table: a lookup walked its primary-key index, then the
-- table for the row. Clustered on the key (WITHOUT ROWID), the first descent finds the
-- user id. Measured on the load benchmark: the nested membership check by names went
-- from 43% to 46% of the /health baseline (BENCHMARKS.md).
CREATE TABLE user_identifiers_clustered (
    key     TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE
) WITHOUT ROWID;

INSERT INTO user_identifiers_clustered (key, user_id)
SELECT key, user_id FROM user_identifiers;

DROP TABLE user_identifiers;
ALTER TABLE user_identifiers_clustered RENAME TO user_identifiers;
CREATE INDEX user_identifiers_user ON user_identifiers (user_id);
