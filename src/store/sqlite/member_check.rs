//! The membership check of a group and a user named by path segments, in three tiers:
//! the user's direct groups read with the graph's version, against the group graph held
//! in memory (`group_graph.rs`), skipping the name lookup when the name was asked for
//! before (`name_cache.rs`); else one statement that answers through the closure table,
//! after which the graph is read again in the background.

use std::sync::Arc;
use std::time::Instant;

use rusqlite::Connection;

use super::SqliteStore;
use crate::domain::ids::{GroupId, UserId};
use crate::store::group_graph::{GroupGraph, MAX_CLOSURE_ROWS, Resolved};
use crate::store::sql;
use crate::store::{MemberCheck, Named, StoreError, StoreResult};

impl SqliteStore {
    /// Reads the group graph again in the background, unless the graph held is already
    /// the one at `version` (another check reloaded it meanwhile) or a reload is running.
    fn reload_graph(&self, version: i64) {
        if !self.graph.begin_reload(version) {
            return;
        }
        let (readers, cache) = (Arc::clone(&self.direct), Arc::clone(&self.graph));
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            cache.settle_load(readers.scan(|c| load_graph(c, MAX_CLOSURE_ROWS)), started);
        });
    }

    /// [`Store::check_member`](crate::store::Store::check_member), answered from memory
    /// where it can (module documentation).
    pub(super) fn check_member_here(
        &self,
        group: Named<'_, GroupId>,
        user: Named<'_, UserId>,
    ) -> StoreResult<MemberCheck> {
        let uid = user.id.map(|u| u.to_string());
        let graph = self.graph.get();
        if let Some(graph) = graph.as_ref().filter(|g| g.kept()) {
            // The user and their direct groups; the closure from memory, if it is the
            // graph this statement saw (module `group_graph`).
            let resolved = graph.resolve(group.id, group.key);
            // A name asked for before: the user's groups alone, if no name has stopped
            // naming its user since (module `name_cache`).
            if user.id.is_none()
                && let Some(known) = self.names.get(user.key)
            {
                let member = self.direct.read(|c| {
                    let mut stmt = c.prepare_cached(sql::GROUPS_OF_USER_SEQ)?;
                    let mut rows = stmt.query([known.seq])?;
                    let Some(first) = rows.next()? else {
                        return Ok(None);
                    };
                    if first.get::<_, i64>(0)? != graph.version()
                        || first.get::<_, i64>(1)? != known.version
                    {
                        return Ok(None); // changed since: ask the database
                    }
                    if lies_under(first, 2, graph, resolved)? {
                        return Ok(Some(true));
                    }
                    Ok::<_, StoreError>(Some(any_row_under(&mut rows, 2, graph, resolved)?))
                })?;
                if let Some(member) = member {
                    return Ok(MemberCheck {
                        group: resolved.map(|g| g.id),
                        user: Some(known.id),
                        member,
                    });
                }
            }
            let answer = self.direct.read(|c| {
                let mut stmt = c.prepare_cached(sql::USER_GROUPS)?;
                let mut rows = stmt.query(rusqlite::params![uid, user.key])?;
                // The versions and the user are on every row: read them from the first.
                let Some(first) = rows.next()? else {
                    return Ok(None);
                };
                if first.get::<_, i64>(0)? != graph.version() {
                    return Ok(None); // changed since it was read: ask the database
                }
                let found = first.get_ref(2)?.as_str_or_null()?.and_then(UserId::parse);
                if let (Some(id), Some(seq), None) =
                    (found, first.get_ref(3)?.as_i64_or_null()?, user.id)
                {
                    self.names.remember(user.key, first.get(1)?, seq, id);
                }
                if lies_under(first, 4, graph, resolved)? {
                    return Ok(Some((found, true)));
                }
                let member = any_row_under(&mut rows, 4, graph, resolved)?;
                Ok::<_, StoreError>(Some((found, member)))
            })?;
            if let Some((user, member)) = answer {
                return Ok(MemberCheck {
                    group: resolved.map(|g| g.id),
                    user,
                    member,
                });
            }
        }
        let gid = group.id.map(|g| g.to_string());
        let (g, u, member, version): (Option<String>, Option<String>, bool, i64) =
            self.direct.read(|c| {
                c.prepare_cached(sql::MEMBER_CHECK)?
                    .query_row(rusqlite::params![gid, group.key, uid, user.key], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                    })
            })?;
        if graph.is_none_or(|g| g.version() != version) {
            self.reload_graph(version);
        }
        Ok(MemberCheck {
            group: g.as_deref().and_then(GroupId::parse),
            user: u.as_deref().and_then(UserId::parse),
            member,
        })
    }
}

/// Reads the whole graph in one read transaction (not kept when it has more than
/// `max_closure` closure rows).
fn load_graph(conn: &Connection, max_closure: i64) -> StoreResult<GroupGraph> {
    conn.execute_batch("BEGIN")?;
    let read = read_graph(conn, max_closure);
    conn.execute_batch("COMMIT")?;
    read
}

fn read_graph(conn: &Connection, max_closure: i64) -> StoreResult<GroupGraph> {
    let version: i64 =
        conn.query_row("SELECT n FROM graph_version WHERE id = 1", [], |r| r.get(0))?;
    let rows: i64 = conn.query_row("SELECT COUNT(*) FROM group_closure", [], |r| r.get(0))?;
    if rows > max_closure {
        return Ok(GroupGraph::not_kept(version));
    }
    let mut graph = GroupGraph::builder(version);
    let mut groups = conn.prepare("SELECT id, name_key, seq FROM groups")?;
    let mut found = groups.query([])?;
    while let Some(row) = found.next()? {
        graph.group(row.get(0)?, row.get(1)?, row.get(2)?);
    }
    let mut pairs = conn.prepare("SELECT ancestor_id, descendant_id FROM group_closure")?;
    let mut found = pairs.query([])?;
    while let Some(row) = found.next()? {
        graph.closure_row(row.get_ref(0)?.as_str()?, row.get_ref(1)?.as_str()?);
    }
    Ok(graph.finish())
}

/// Whether the direct group in column `col` of `row` (an integer key, NULL for none) is
/// `group` or lies below it in `graph`.
fn lies_under(
    row: &rusqlite::Row<'_>,
    col: usize,
    graph: &GroupGraph,
    group: Option<Resolved>,
) -> StoreResult<bool> {
    let direct = row.get_ref(col)?.as_i64_or_null()?;
    Ok(group.zip(direct).is_some_and(|(g, d)| graph.is_under(g, d)))
}

/// Whether any remaining row's direct group (column `col`) lies under `group`.
fn any_row_under(
    rows: &mut rusqlite::Rows<'_>,
    col: usize,
    graph: &GroupGraph,
    group: Option<Resolved>,
) -> StoreResult<bool> {
    if group.is_none() {
        return Ok(false);
    }
    while let Some(row) = rows.next()? {
        if lies_under(row, col, graph, group)? {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::GroupId;

    /// The tables the graph is read from, as the migrations make them (no triggers).
    fn database(groups: &[(GroupId, &str)], closure: &[(GroupId, GroupId)]) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE groups (id TEXT PRIMARY KEY, name_key TEXT NOT NULL UNIQUE, \
             seq INTEGER UNIQUE); \
             CREATE TABLE group_closure (ancestor_id TEXT, descendant_id TEXT); \
             CREATE TABLE graph_version (id INTEGER PRIMARY KEY, n INTEGER NOT NULL); \
             INSERT INTO graph_version VALUES (1, 7);",
        )
        .unwrap();
        for (seq, (id, key)) in (1..).zip(groups) {
            conn.execute(
                "INSERT INTO groups VALUES (?1, ?2, ?3)",
                (id.to_string(), key, seq),
            )
            .unwrap();
        }
        for (a, d) in closure {
            conn.execute(
                "INSERT INTO group_closure VALUES (?1, ?2)",
                (a.to_string(), d.to_string()),
            )
            .unwrap();
        }
        conn
    }

    #[test]
    fn the_graph_read_from_the_tables_answers_and_one_past_the_limit_is_not_kept() {
        let (a, b) = (GroupId::new(), GroupId::new());
        let conn = database(&[(a, "a"), (b, "b")], &[(a, a), (b, b), (a, b)]);
        let graph = load_graph(&conn, 3).unwrap();
        assert!(graph.kept());
        assert_eq!(graph.version(), 7);
        let top = graph.resolve(None, "a").unwrap();
        assert!(graph.is_under(top, 2), "b (seq 2) lies below a");
        let graph = load_graph(&conn, 2).unwrap();
        assert!(!graph.kept());
        assert_eq!(
            graph.version(),
            7,
            "the version it was read at, all the same"
        );
    }
}
