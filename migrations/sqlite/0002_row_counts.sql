-- The number of users, kept by triggers, so the unfiltered user list can give its
-- totalCount without counting the table on every request (a million-row COUNT(*) is
-- milliseconds; this is one row). Writes to users are serialized by SQLite already, so
-- the one row is no new contention.
CREATE TABLE row_counts (
    name TEXT PRIMARY KEY,
    n INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO row_counts (name, n) SELECT 'users', COUNT(*) FROM users;

CREATE TRIGGER users_counted_in AFTER INSERT ON users BEGIN
    UPDATE row_counts SET n = n + 1 WHERE name = 'users';
END;

CREATE TRIGGER users_counted_out AFTER DELETE ON users BEGIN
    UPDATE row_counts SET n = n - 1 WHERE name = 'users';
END;
