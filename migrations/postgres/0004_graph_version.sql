-- Two counters, as on SQLite (migrations/sqlite/0004_graph_version.sql and
-- 0006_names_version.sql): `n`, bumped by every change to the group graph (a group
-- created, renamed or deleted, a child link added or removed), and `names`, bumped
-- whenever a username or email stops naming the user it named (an identifier row
-- deleted or changed, a user deleted). Each node keeps the graph and the names it
-- resolved in memory (src/store/group_graph.rs, name_cache.rs) and reads both counters
-- in the same statement as the user's groups: equal counters prove the memory copy is
-- what that statement's snapshot holds, whichever node made the change.
--
-- The bump is an UPDATE of the one row, so it commits (and becomes visible) with the
-- change that made it. Graph changes are statement-level triggers (an import inserts
-- thousands of groups in a few statements); the names' are per row, because they must
-- not fire for statements that delete nothing on the busy paths.
CREATE TABLE graph_version (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    n     BIGINT NOT NULL,
    names BIGINT NOT NULL
);

INSERT INTO graph_version (id, n, names) VALUES (1, 0, 0);

-- The functions name the table in the schema they were made in, whatever the
-- search_path of the session that fires them (an operator's psql, say).
CREATE FUNCTION gatehouse_bump_graph() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE graph_version SET n = n + 1 WHERE id = 1;
    RETURN NULL;
END $$;

CREATE FUNCTION gatehouse_bump_names() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE graph_version SET names = names + 1 WHERE id = 1;
    RETURN NULL;
END $$;

CREATE TRIGGER graph_groups_changed AFTER INSERT OR DELETE OR UPDATE OF id, name_key ON groups
    FOR EACH STATEMENT EXECUTE FUNCTION gatehouse_bump_graph();

CREATE TRIGGER graph_links_changed AFTER INSERT OR DELETE OR UPDATE ON group_children
    FOR EACH STATEMENT EXECUTE FUNCTION gatehouse_bump_graph();

CREATE TRIGGER graph_closure_changed AFTER INSERT OR DELETE OR UPDATE ON group_closure
    FOR EACH STATEMENT EXECUTE FUNCTION gatehouse_bump_graph();

CREATE TRIGGER names_identifiers_changed AFTER DELETE OR UPDATE ON user_identifiers
    FOR EACH ROW EXECUTE FUNCTION gatehouse_bump_names();

CREATE TRIGGER names_users_deleted AFTER DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION gatehouse_bump_names();
