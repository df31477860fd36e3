//! The group graph in memory, for the membership check on SQLite.
//!
//! `HEAD /groups/{group}/users/{user}` is the hottest call a directory serves. On SQLite
//! it cost a statement of a dozen B-tree descents: the group by id or name, the user,
//! the user's direct groups, and for each of those a probe of the closure table. Groups
//! and their links are few (thousands where users are millions) and change seldom, so
//! the server keeps them here — every group's id and name key, and the closure as pairs
//! of small integers — the way Zanzibar's Leopard index keeps group-to-group reachability
//! in memory. A check is then one statement (the user and their direct groups) and a
//! few hash lookups.
//!
//! Consistency does not rest on a time-to-live. Every change to the graph bumps
//! `graph_version` in its own transaction (triggers, migration 0004), whichever process
//! makes it; the check reads that counter in the same statement as the user's groups,
//! and uses the memory copy only when the counters are equal, that is, when the copy
//! is exactly the graph that statement saw. Otherwise the check runs the full statement
//! ([`super::sql::MEMBER_CHECK`]) and a reload starts in the background.
//!
//! A graph larger than [`MAX_CLOSURE_ROWS`] is not kept: checks then always run the
//! full statement.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use rusqlite::Connection;

use super::StoreResult;
use crate::domain::ids::GroupId;

/// Closure rows past which the graph is not kept in memory (8 bytes each: 16 MB at most).
pub(super) const MAX_CLOSURE_ROWS: i64 = 2_000_000;

/// The graph as one snapshot of the database saw it.
#[derive(Debug)]
pub(super) struct GroupGraph {
    /// `graph_version` when the snapshot was read.
    version: i64,
    /// `false` when the graph was too large to keep: the maps are then empty, and the
    /// snapshot only records that this version need not be read again.
    kept: bool,
    /// Every group's id, by index.
    ids: Vec<GroupId>,
    by_id: HashMap<GroupId, u32>,
    by_name: HashMap<String, u32>,
    /// The closure, by index into `ids`: the integer keys (`seq`, what the membership
    /// table names groups by) of the group and of every group below it, sorted. A check
    /// resolves its group once and searches this one short list for each of the user's
    /// direct groups.
    below: Vec<Vec<i64>>,
}

/// The group a check names, as the graph resolves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Resolved {
    pub id: GroupId,
    index: u32,
}

impl GroupGraph {
    /// Reads the whole graph in one read transaction (not kept when it has more than
    /// `max_closure` closure rows).
    pub(super) fn load(conn: &Connection, max_closure: i64) -> StoreResult<Self> {
        conn.execute_batch("BEGIN")?;
        let read = Self::read(conn, max_closure);
        conn.execute_batch("COMMIT")?;
        read
    }

    fn read(conn: &Connection, max_closure: i64) -> StoreResult<Self> {
        let version: i64 =
            conn.query_row("SELECT n FROM graph_version WHERE id = 1", [], |r| r.get(0))?;
        let mut graph = Self {
            version,
            kept: false,
            ids: Vec::new(),
            by_id: HashMap::new(),
            by_name: HashMap::new(),
            below: Vec::new(),
        };
        let rows: i64 = conn.query_row("SELECT COUNT(*) FROM group_closure", [], |r| r.get(0))?;
        if rows > max_closure {
            return Ok(graph);
        }
        // By the text id, as the closure rows give it: the index and the integer key.
        let mut by_text: HashMap<String, (usize, Option<i64>)> = HashMap::new();
        let mut groups = conn.prepare("SELECT id, name_key, seq FROM groups")?;
        let mut found = groups.query([])?;
        while let Some(row) = found.next()? {
            let text: String = row.get(0)?;
            let (Some(id), Ok(index)) = (GroupId::parse(&text), u32::try_from(graph.ids.len()))
            else {
                continue;
            };
            by_text.insert(text, (graph.ids.len(), row.get(2)?));
            graph.ids.push(id);
            graph.by_id.insert(id, index);
            graph.by_name.insert(row.get(1)?, index);
        }
        graph.below = vec![Vec::new(); graph.ids.len()];
        let mut pairs = conn.prepare("SELECT ancestor_id, descendant_id FROM group_closure")?;
        let mut found = pairs.query([])?;
        while let Some(row) = found.next()? {
            let a = by_text.get(row.get_ref(0)?.as_str()?);
            let d = by_text.get(row.get_ref(1)?.as_str()?);
            if let (Some((a, _)), Some((_, Some(d)))) = (a, d) {
                graph.below[*a].push(*d);
            }
        }
        for list in &mut graph.below {
            list.sort_unstable();
        }
        graph.kept = true;
        Ok(graph)
    }

    /// The counter this snapshot was read at.
    pub(super) fn version(&self) -> i64 {
        self.version
    }

    /// Whether the graph is held (it was not too large).
    pub(super) fn kept(&self) -> bool {
        self.kept
    }

    /// The group by id, else by name key: the rule of `Services::resolve_group_id`.
    pub(super) fn resolve(&self, id: Option<GroupId>, name_key: &str) -> Option<Resolved> {
        let index = id
            .and_then(|id| self.by_id.get(&id))
            .or_else(|| self.by_name.get(name_key))?;
        Some(Resolved {
            id: *self.ids.get(usize::try_from(*index).ok()?)?,
            index: *index,
        })
    }

    /// Whether the group numbered `group` (its `seq`) is `ancestor` or lies below it.
    pub(super) fn is_under(&self, ancestor: Resolved, group: i64) -> bool {
        usize::try_from(ancestor.index)
            .ok()
            .and_then(|a| self.below.get(a))
            .is_some_and(|below| below.binary_search(&group).is_ok())
    }
}

/// The current snapshot, replaced when a check finds it stale.
#[derive(Debug, Default)]
pub(super) struct GraphCache {
    current: RwLock<Option<Arc<GroupGraph>>>,
    loading: AtomicBool,
}

impl GraphCache {
    pub(super) fn get(&self) -> Option<Arc<GroupGraph>> {
        self.current
            .read()
            .expect("the graph lock is never poisoned")
            .clone()
    }

    /// Claims the one reload that may run at a time; `false` if one is running.
    pub(super) fn begin_load(&self) -> bool {
        !self.loading.swap(true, Ordering::AcqRel)
    }

    /// Ends a reload claimed with [`Self::begin_load`], keeping its result.
    pub(super) fn finish_load(&self, loaded: GroupGraph) {
        *self
            .current
            .write()
            .expect("the graph lock is never poisoned") = Some(Arc::new(loaded));
        self.loading.store(false, Ordering::Release);
    }

    /// Ends a reload that failed, keeping what was there.
    pub(super) fn abandon_load(&self) {
        self.loading.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tables the graph is read from, as the migrations make them (no triggers).
    /// Each group's `seq` is its position in `groups`, from 1.
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
    fn resolves_by_id_then_name_and_answers_from_the_closure() {
        let (top, mid, other) = (GroupId::new(), GroupId::new(), GroupId::new());
        let conn = database(
            &[(top, "top"), (mid, "mid"), (other, "other")],
            &[(top, top), (mid, mid), (other, other), (top, mid)],
        );
        let graph = GroupGraph::load(&conn, 100).unwrap();
        assert!(graph.kept());
        assert_eq!(graph.version(), 7);

        let by_id = graph.resolve(Some(top), "other").unwrap();
        assert_eq!(by_id.id, top, "the id wins over the name");
        let by_name = graph.resolve(Some(GroupId::new()), "other").unwrap();
        assert_eq!(by_name.id, other, "an unknown id falls back to the name");
        assert_eq!(graph.resolve(None, "nope"), None);

        let (top_seq, mid_seq, other_seq) = (1, 2, 3);
        assert!(graph.is_under(by_id, mid_seq), "below");
        assert!(graph.is_under(by_id, top_seq), "itself");
        assert!(!graph.is_under(by_id, other_seq));
        let mid = graph.resolve(None, "mid").unwrap();
        assert!(!graph.is_under(mid, top_seq), "not upwards");
        assert!(!graph.is_under(mid, 99), "unknown group");
    }

    #[test]
    fn a_graph_past_the_limit_is_not_kept() {
        let (a, b) = (GroupId::new(), GroupId::new());
        let conn = database(&[(a, "a"), (b, "b")], &[(a, a), (b, b), (a, b)]);
        let graph = GroupGraph::load(&conn, 2).unwrap();
        assert!(!graph.kept());
        assert_eq!(
            graph.version(),
            7,
            "the version it was read at, all the same"
        );
        assert!(GroupGraph::load(&conn, 3).unwrap().kept());
    }
}
