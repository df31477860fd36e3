//! The group graph in memory, for the membership check of either store.
//!
//! `HEAD /groups/{group}/users/{user}` is the hottest call a directory serves. Answered
//! by the database alone it costs a statement of a dozen index descents: the group by id
//! or name, the user, the user's direct groups, and for each of those a probe of the
//! closure table. Groups and their links are few (thousands where users are millions)
//! and change seldom, so each server keeps them here — every group's id and name key,
//! and the closure as pairs of small integers — the way Zanzibar's Leopard index keeps
//! group-to-group reachability in memory. A check is then one statement (the user and
//! their direct groups) and a few hash lookups.
//!
//! Consistency does not rest on a time-to-live. Every change to the graph bumps
//! `graph_version` in its own transaction (triggers: SQLite's migration 0004,
//! PostgreSQL's 0004), whichever process or node makes it; the check reads that counter
//! in the same statement as the user's groups, and uses the memory copy only when the
//! counters are equal, that is, when the copy is exactly the graph that statement saw.
//! Otherwise the check runs the full statement ([`super::sql::MEMBER_CHECK`]) and a
//! reload starts in the background. Each store reads the snapshot in one read
//! transaction of its own (`sqlite/member_check.rs`, `postgres/member_check.rs`) and
//! hands the rows to [`GraphBuilder`].
//!
//! A graph larger than [`MAX_CLOSURE_ROWS`] is not kept: checks then always run the
//! full statement.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use super::StoreResult;
use crate::domain::ids::GroupId;

/// Closure rows past which the graph is not kept in memory (8 bytes each: 16 MB at most).
pub(crate) const MAX_CLOSURE_ROWS: i64 = 2_000_000;

/// The graph as one snapshot of the database saw it.
#[derive(Debug)]
pub(crate) struct GroupGraph {
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
pub(crate) struct Resolved {
    pub id: GroupId,
    index: u32,
}

impl GroupGraph {
    /// A snapshot at `version` of a graph too large to keep: it only records that this
    /// version need not be read again.
    pub(crate) fn not_kept(version: i64) -> Self {
        Self {
            version,
            kept: false,
            ids: Vec::new(),
            by_id: HashMap::new(),
            by_name: HashMap::new(),
            below: Vec::new(),
        }
    }

    /// Starts a snapshot at `version`: add every group, then every closure row.
    pub(crate) fn builder(version: i64) -> GraphBuilder {
        GraphBuilder {
            graph: Self::not_kept(version),
            by_text: HashMap::new(),
        }
    }

    /// The counter this snapshot was read at.
    pub(crate) fn version(&self) -> i64 {
        self.version
    }

    /// Whether the graph is held (it was not too large).
    pub(crate) fn kept(&self) -> bool {
        self.kept
    }

    /// The group by id, else by name key: the rule of `Services::resolve_group_id`.
    pub(crate) fn resolve(&self, id: Option<GroupId>, name_key: &str) -> Option<Resolved> {
        let index = id
            .and_then(|id| self.by_id.get(&id))
            .or_else(|| self.by_name.get(name_key))?;
        Some(Resolved {
            id: *self.ids.get(usize::try_from(*index).ok()?)?,
            index: *index,
        })
    }

    /// Whether the group numbered `group` (its `seq`) is `ancestor` or lies below it.
    pub(crate) fn is_under(&self, ancestor: Resolved, group: i64) -> bool {
        usize::try_from(ancestor.index)
            .ok()
            .and_then(|a| self.below.get(a))
            .is_some_and(|below| below.binary_search(&group).is_ok())
    }
}

/// A snapshot being read: groups first ([`GraphBuilder::group`]), then the closure rows
/// ([`GraphBuilder::closure_row`]).
#[derive(Debug)]
pub(crate) struct GraphBuilder {
    graph: GroupGraph,
    /// By the text id, as the closure rows give it: the index and the integer key.
    by_text: HashMap<String, (usize, Option<i64>)>,
}

impl GraphBuilder {
    /// A group: its text id, name key and integer key (`seq`). An id that does not
    /// parse is skipped (no row has one).
    pub(crate) fn group(&mut self, text: String, name_key: String, seq: Option<i64>) {
        let graph = &mut self.graph;
        let (Some(id), Ok(index)) = (GroupId::parse(&text), u32::try_from(graph.ids.len())) else {
            return;
        };
        self.by_text.insert(text, (graph.ids.len(), seq));
        graph.ids.push(id);
        graph.by_id.insert(id, index);
        graph.by_name.insert(name_key, index);
    }

    /// A closure row: `descendant` is `ancestor` or lies below it (text ids).
    pub(crate) fn closure_row(&mut self, ancestor: &str, descendant: &str) {
        let graph = &mut self.graph;
        if graph.below.len() < graph.ids.len() {
            graph.below.resize(graph.ids.len(), Vec::new());
        }
        let a = self.by_text.get(ancestor);
        let d = self.by_text.get(descendant);
        if let (Some((a, _)), Some((_, Some(d)))) = (a, d)
            && let Some(list) = graph.below.get_mut(*a)
        {
            list.push(*d);
        }
    }

    /// The snapshot, kept.
    pub(crate) fn finish(self) -> GroupGraph {
        let mut graph = self.graph;
        graph.below.resize(graph.ids.len(), Vec::new());
        for list in &mut graph.below {
            list.sort_unstable();
        }
        graph.kept = true;
        graph
    }
}

/// The current snapshot, replaced when a check finds it stale.
#[derive(Debug, Default)]
pub(crate) struct GraphCache {
    current: RwLock<Option<Arc<GroupGraph>>>,
    loading: AtomicBool,
}

impl GraphCache {
    pub(crate) fn get(&self) -> Option<Arc<GroupGraph>> {
        self.current
            .read()
            .expect("the graph lock is never poisoned")
            .clone()
    }

    /// Claims the one reload that may run at a time; `false` if one is running.
    fn begin_load(&self) -> bool {
        !self.loading.swap(true, Ordering::AcqRel)
    }

    /// Claims a reload unless the graph held is already the one at `version` (another
    /// check reloaded it meanwhile) or a reload is running.
    pub(crate) fn begin_reload(&self, version: i64) -> bool {
        self.get().is_none_or(|g| g.version() != version) && self.begin_load()
    }

    /// Ends a reload claimed with [`Self::begin_reload`] that began at `started`: keeps
    /// the graph read, or, if the read failed, what was there.
    pub(crate) fn settle_load(&self, read: StoreResult<GroupGraph>, started: Instant) {
        match read {
            Ok(graph) => {
                tracing::debug!(
                    version = graph.version(),
                    kept = graph.kept(),
                    took = ?started.elapsed(),
                    "group graph read"
                );
                self.finish_load(graph);
            }
            Err(e) => {
                self.abandon_load();
                tracing::warn!(error = %e, "reading the group graph failed");
            }
        }
    }

    /// Ends a reload claimed with [`Self::begin_load`], keeping its result.
    fn finish_load(&self, loaded: GroupGraph) {
        *self
            .current
            .write()
            .expect("the graph lock is never poisoned") = Some(Arc::new(loaded));
        self.loading.store(false, Ordering::Release);
    }

    /// Ends a reload that failed, keeping what was there.
    fn abandon_load(&self) {
        self.loading.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A snapshot at version 7 of `groups` (each group's `seq` is its position, from 1)
    /// and `closure`.
    fn graph(groups: &[(GroupId, &str)], closure: &[(GroupId, GroupId)]) -> GroupGraph {
        let mut b = GroupGraph::builder(7);
        for (seq, (id, key)) in (1..).zip(groups) {
            b.group(id.to_string(), (*key).to_owned(), Some(seq));
        }
        for (a, d) in closure {
            b.closure_row(&a.to_string(), &d.to_string());
        }
        b.finish()
    }

    #[test]
    fn resolves_by_id_then_name_and_answers_from_the_closure() {
        let (top, mid, other) = (GroupId::new(), GroupId::new(), GroupId::new());
        let graph = graph(
            &[(top, "top"), (mid, "mid"), (other, "other")],
            &[(top, top), (mid, mid), (other, other), (top, mid)],
        );
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
    fn rows_naming_unknown_groups_are_ignored() {
        let (a, b) = (GroupId::new(), GroupId::new());
        let graph = graph(&[(a, "a")], &[(a, a), (a, b), (b, a)]);
        let a = graph.resolve(None, "a").unwrap();
        assert!(graph.is_under(a, 1));
        assert!(!graph.is_under(a, 2));
    }

    #[test]
    fn a_graph_not_kept_answers_nothing() {
        let graph = GroupGraph::not_kept(7);
        assert!(!graph.kept());
        assert_eq!(
            graph.version(),
            7,
            "the version it was read at, all the same"
        );
        assert_eq!(graph.resolve(None, "a"), None);
    }
}
