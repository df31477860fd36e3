-- A second counter beside the graph's, bumped whenever a username or email stops
-- naming the user it named: an identifier row deleted or changed (a rename deletes the
-- old rows), or a user deleted. New names do not bump it. The server remembers which
-- user a name resolved to (src/store/sqlite.rs, `NameCache`) and reads this counter in
-- the same statement as the user's groups: an equal counter proves the remembered
-- answer is still the one the database would give, whichever process changed it.
ALTER TABLE graph_version ADD COLUMN names INTEGER NOT NULL DEFAULT 0;

CREATE TRIGGER names_identifier_removed AFTER DELETE ON user_identifiers BEGIN
    UPDATE graph_version SET names = names + 1 WHERE id = 1;
END;

CREATE TRIGGER names_identifier_changed AFTER UPDATE ON user_identifiers BEGIN
    UPDATE graph_version SET names = names + 1 WHERE id = 1;
END;

CREATE TRIGGER names_user_deleted AFTER DELETE ON users BEGIN
    UPDATE graph_version SET names = names + 1 WHERE id = 1;
END;
