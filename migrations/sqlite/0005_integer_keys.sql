-- Integer keys in the membership tables. A membership was two 36-character text UUIDs,
-- stored twice (the table and its index by user): 80-byte index entries, so a leaf held
-- about fifty and every add rewrote two or three random leaves of two large trees. With
-- the users' and groups' integer keys an entry is a few bytes: the trees are an eighth
-- of the size, a page cache holds them, and an add writes about a quarter less WAL
-- (bench/key_width.py). Clients still see only the UUIDs.

-- Groups get a stable integer key. The table keeps its text primary key (the child links
-- and the closure reference it), so `seq` is an ordinary column with a unique index,
-- numbered after each insert. Never reused while the group exists; a deleted group's
-- number may be given again, which is harmless: its memberships went with it.
ALTER TABLE groups ADD COLUMN seq INTEGER;
UPDATE groups SET seq = rowid;
CREATE UNIQUE INDEX groups_seq ON groups (seq);

CREATE TRIGGER groups_numbered AFTER INSERT ON groups WHEN new.seq IS NULL BEGIN
    UPDATE groups SET seq = (SELECT IFNULL(MAX(seq), 0) + 1 FROM groups) WHERE id = new.id;
END;

CREATE TABLE group_members_by_seq (
    group_seq INTEGER NOT NULL REFERENCES groups (seq) ON DELETE CASCADE,
    user_seq  INTEGER NOT NULL REFERENCES users (seq) ON DELETE CASCADE,
    PRIMARY KEY (group_seq, user_seq)
) WITHOUT ROWID;

INSERT INTO group_members_by_seq (group_seq, user_seq)
SELECT g.seq, u.seq FROM group_members m
JOIN groups g ON g.id = m.group_id JOIN users u ON u.id = m.user_id
ORDER BY 1, 2;

DROP TABLE group_members;
ALTER TABLE group_members_by_seq RENAME TO group_members;
CREATE INDEX group_members_user ON group_members (user_seq, group_seq);

-- A user's names carry the user's integer key as well as the id (which never changes),
-- so that a check by username reads the name and then the user's memberships, with no
-- visit to the users table.
CREATE TABLE user_identifiers_by_seq (
    key      TEXT PRIMARY KEY NOT NULL,
    user_id  TEXT NOT NULL,
    user_seq INTEGER NOT NULL REFERENCES users (seq) ON DELETE CASCADE
) WITHOUT ROWID;

INSERT INTO user_identifiers_by_seq (key, user_id, user_seq)
SELECT i.key, i.user_id, u.seq FROM user_identifiers i JOIN users u ON u.id = i.user_id
ORDER BY 1;

DROP TABLE user_identifiers;
ALTER TABLE user_identifiers_by_seq RENAME TO user_identifiers;
CREATE INDEX user_identifiers_user ON user_identifiers (user_seq);
