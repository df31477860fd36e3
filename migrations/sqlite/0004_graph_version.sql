-- A counter bumped by every change to the group graph: a group created, renamed or
-- deleted, a child link added or removed (closure rows change only with those). The
-- server keeps the graph in memory for membership checks (src/store/group_graph.rs)
-- and reads this counter in the same statement as the user's groups: an equal counter
-- proves the memory copy is the graph that statement saw, whichever process changed it.
CREATE TABLE graph_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  INTEGER NOT NULL
);

INSERT INTO graph_version (id, n) VALUES (1, 0);

CREATE TRIGGER graph_group_added AFTER INSERT ON groups BEGIN
    UPDATE graph_version SET n = n + 1 WHERE id = 1;
END;

CREATE TRIGGER graph_group_renamed AFTER UPDATE OF id, name_key ON groups BEGIN
    UPDATE graph_version SET n = n + 1 WHERE id = 1;
END;

CREATE TRIGGER graph_group_deleted AFTER DELETE ON groups BEGIN
    UPDATE graph_version SET n = n + 1 WHERE id = 1;
END;

CREATE TRIGGER graph_link_added AFTER INSERT ON group_children BEGIN
    UPDATE graph_version SET n = n + 1 WHERE id = 1;
END;

CREATE TRIGGER graph_link_removed AFTER DELETE ON group_children BEGIN
    UPDATE graph_version SET n = n + 1 WHERE id = 1;
END;
