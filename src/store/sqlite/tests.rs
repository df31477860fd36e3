//! The SQLite store's own tests: what only it does (the graph and names in memory, its
//! migrations).

use std::time::Duration;

use super::*;
use crate::domain::group::GroupType;
use crate::store::audit::testing::{events_about, events_where};

fn group(name: &str) -> Group {
    Group {
        id: GroupId::new(),
        name: name.into(),
        description: None,
        kind: GroupType::Contensis,
        custom: serde_json::Map::new(),
        created: 1,
        modified: 1,
        user_count: 0,
        child_group_count: 0,
    }
}

/// Names by key, as a path does.
fn named<Id>(key: &str) -> Named<'_, Id> {
    Named { id: None, key }
}

/// The group, the user and the answer a check by names gives.
async fn answer(
    store: &SqliteStore,
    group: &str,
    user: &str,
) -> (Option<GroupId>, Option<UserId>, bool) {
    let found = store.check_member(named(group), named(user)).await.unwrap();
    (found.group, found.user, found.member)
}

async fn is_in(store: &SqliteStore, g: &Group, user: &str) -> bool {
    let (group, _, member) = answer(store, &g.name, user).await;
    assert_eq!(group, Some(g.id), "the group resolves");
    member
}

/// Waits until the store holds the graph as the database has it now.
async fn graph_loaded(store: &SqliteStore) -> i64 {
    for _ in 0..200 {
        // A check notices a stale graph and starts the reload.
        store
            .check_member(named("nobody"), named("nobody"))
            .await
            .unwrap();
        let version: i64 = store
            .direct
            .read(|c| c.query_row("SELECT n FROM graph_version", [], |r| r.get(0)))
            .unwrap();
        if store
            .graph
            .get()
            .is_some_and(|g| g.kept() && g.version() == version)
        {
            return version;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the graph was never loaded");
}

/// Checks answered from the graph in memory see every change to the graph at once,
/// also one made by another connection to the file (another process, such as
/// `gatehouse import`): the version they read with the user's groups tells them.
#[tokio::test]
async fn checks_from_the_graph_in_memory_see_changes_made_elsewhere_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("g.db").display());
    let store = SqliteStore::open(&url).await.unwrap();
    let elsewhere = SqliteStore::open(&url).await.unwrap();

    let (outer, inner) = (group("outer"), group("inner"));
    store.create_group(&outer, ev()).await.unwrap();
    store.create_group(&inner, ev()).await.unwrap();
    let user = User::new("tyler".into(), "tyler@example.com".into(), 1);
    store.create_user(&user, &[inner.id], ev()).await.unwrap();

    let before = graph_loaded(&store).await;
    assert!(is_in(&store, &inner, "tyler").await);
    assert!(!is_in(&store, &outer, "tyler").await, "no link yet");

    // A link made through the other store: the next check sees it.
    elsewhere
        .add_children(outer.id, &[inner.id], ev())
        .await
        .unwrap();
    assert!(is_in(&store, &outer, "tyler").await, "the new link is seen");
    let after = graph_loaded(&store).await;
    assert!(after > before, "the link bumped the graph's version");
    assert!(is_in(&store, &outer, "tyler").await, "and from memory");
    // The other answers from memory: no such group, no such user, a user with no
    // groups.
    assert_eq!(
        answer(&store, "nope", "tyler").await,
        (None, Some(user.id), false)
    );
    assert_eq!(
        answer(&store, "outer", "nobody").await,
        (Some(outer.id), None, false)
    );
    let loner = User::new("marla".into(), "marla@example.com".into(), 1);
    store.create_user(&loner, &[], ev()).await.unwrap();
    assert!(!is_in(&store, &outer, "marla@example.com").await);
    let by_id = store
        .check_member(
            Named {
                id: Some(outer.id),
                key: "",
            },
            Named {
                id: Some(user.id),
                key: "",
            },
        )
        .await
        .unwrap();
    assert!(by_id.member, "by ids");
    assert!(
        store.graph.get().is_some_and(|g| g.version() == after),
        "all of these were answered with the same graph"
    );

    // A group created elsewhere is found by name; its removal is seen too.
    let late = group("late");
    elsewhere.create_group(&late, ev()).await.unwrap();
    elsewhere
        .add_members(late.id, &[user.id], ev())
        .await
        .unwrap();
    assert!(is_in(&store, &late, "tyler").await);
    graph_loaded(&store).await;
    assert!(
        elsewhere
            .remove_child(outer.id, inner.id, 2, ev())
            .await
            .unwrap(),
        "the link existed"
    );
    assert!(
        !is_in(&store, &outer, "tyler").await,
        "the removed link is seen"
    );
    assert!(elsewhere.delete_group(late.id, 3, ev()).await.unwrap());
    let (group, _, member) = answer(&store, "late", "tyler").await;
    assert_eq!(group, None, "a deleted group is gone at once");
    assert!(!member);
}

/// A check by name remembers the user the name resolved to (module `name_cache`),
/// and forgets it once the name stops naming that user, whichever connection (or
/// process) made the change: a name moved to another user, a user renamed, a user
/// deleted.
#[tokio::test]
async fn a_remembered_name_follows_changes_made_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("n.db").display());
    let store = SqliteStore::open(&url).await.unwrap();
    let elsewhere = SqliteStore::open(&url).await.unwrap();
    let club = group("club");
    store.create_group(&club, ev()).await.unwrap();
    let tyler = User::new("tyler".into(), "tyler@example.com".into(), 1);
    store.create_user(&tyler, &[club.id], ev()).await.unwrap();
    let marla = User::new("marla".into(), "marla@example.com".into(), 1);
    store.create_user(&marla, &[], ev()).await.unwrap();
    graph_loaded(&store).await;

    assert!(is_in(&store, &club, "tyler").await);
    let known = store.names.get("tyler").expect("remembered");
    assert_eq!(known.id, tyler.id);
    assert!(is_in(&store, &club, "tyler").await, "answered from it");
    // A new user does not make a remembered name wrong.
    let bob = User::new("bob".into(), "bob@example.com".into(), 1);
    elsewhere.create_user(&bob, &[], ev()).await.unwrap();
    assert_eq!(store.names.get("tyler"), Some(known));

    // "tyler" moved to marla behind this store's back.
    sqlx::raw_sql(&format!(
        "DELETE FROM user_identifiers WHERE key = 'tyler'; \
         INSERT INTO user_identifiers (key, user_id, user_seq) \
         SELECT 'tyler', id, seq FROM users WHERE id = '{}'",
        marla.id
    ))
    .execute(&elsewhere.writer)
    .await
    .unwrap();
    assert_eq!(
        answer(&store, "club", "tyler").await,
        (Some(club.id), Some(marla.id), false)
    );
    assert_eq!(store.names.get("tyler").map(|k| k.id), Some(marla.id));

    // Renamed, then deleted, elsewhere.
    assert!(is_in(&store, &club, "tyler@example.com").await);
    sqlx::raw_sql(
        "UPDATE user_identifiers SET key = 'tyler@example.org' WHERE key = 'tyler@example.com'",
    )
    .execute(&elsewhere.writer)
    .await
    .unwrap();
    assert_eq!(
        answer(&store, "club", "tyler@example.com").await,
        (Some(club.id), None, false)
    );
    assert!(is_in(&store, &club, "tyler@example.org").await);
    assert!(elsewhere.delete_user(tyler.id, 2, ev()).await.unwrap());
    assert_eq!(
        answer(&store, "club", "tyler@example.org").await,
        (Some(club.id), None, false)
    );
}

/// Migration 0005 moves memberships and names to integer keys: a database made by
/// the migrations before it keeps every membership (direct and nested), every name,
/// the groups' counts, and takes new groups, members and deletions afterwards.
#[tokio::test]
async fn integer_keys_migration_keeps_memberships_and_names() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("old.db").display());
    let options = SqliteConnectOptions::from_str(&url)
        .unwrap()
        .create_if_missing(true)
        .foreign_keys(true);
    let old = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap();
    let before_0005: Vec<_> = MIGRATOR.iter().filter(|m| m.version < 5).cloned().collect();
    assert_eq!(before_0005.len(), 4);
    let earlier = sqlx::migrate::Migrator {
        migrations: before_0005.into(),
        ..sqlx::migrate::Migrator::DEFAULT
    };
    earlier.run(&old).await.unwrap();
    let (ann, bob) = (UserId::new(), UserId::new());
    let (outer, inner, other) = (GroupId::new(), GroupId::new(), GroupId::new());
    let mut script = String::new();
    for (id, name) in [(ann, "ann"), (bob, "bob")] {
        script += &format!(
            "INSERT INTO users (id, username, email, username_lc, email_lc, created, \
             modified) VALUES ('{id}', '{name}', '{name}@x.io', '{name}', '{name}@x.io', 1, 1); \
             INSERT INTO user_identifiers VALUES ('{name}', '{id}'), ('{name}@x.io', '{id}'); "
        );
    }
    for (id, name) in [(outer, "outer"), (inner, "inner"), (other, "other")] {
        script += &format!(
            "INSERT INTO groups (id, name, name_key, created, modified) \
             VALUES ('{id}', '{name}', '{name}', 1, 1); \
             INSERT INTO group_closure VALUES ('{id}', '{id}'); "
        );
    }
    script += &format!(
        "INSERT INTO group_children VALUES ('{outer}', '{inner}'); \
         INSERT INTO group_closure VALUES ('{outer}', '{inner}'); \
         INSERT INTO group_members VALUES ('{inner}', '{ann}'), ('{other}', '{bob}'), \
         ('{outer}', '{bob}');"
    );
    sqlx::raw_sql(&script).execute(&old).await.unwrap();
    old.close().await;

    let store = SqliteStore::open(&url).await.unwrap();
    for (group, user, member) in [
        ("inner", "ann", true),
        ("outer", "ann@x.io", true),
        ("other", "ann", false),
        ("other", "bob", true),
        ("outer", "bob@x.io", true),
        ("inner", "bob", false),
    ] {
        assert_eq!(
            answer(&store, group, user).await.2,
            member,
            "{user} in {group}"
        );
    }
    assert_eq!(store.find_user_by_key("bob@x.io").await.unwrap(), Some(bob));
    let counts = store.get_group(outer).await.unwrap().unwrap();
    assert_eq!((counts.user_count, counts.child_group_count), (1, 1));

    // New rows take numbers of their own.
    let newer = group("newer");
    store.create_group(&newer, ev()).await.unwrap();
    store.add_members(newer.id, &[ann], ev()).await.unwrap();
    assert!(answer(&store, "newer", "ann").await.2);
    assert!(!answer(&store, "newer", "bob").await.2);
    let numbers: Vec<i64> = store
        .direct
        .read(|c| {
            c.prepare("SELECT seq FROM groups ORDER BY seq")?
                .query_map([], |r| r.get(0))?
                .collect()
        })
        .unwrap();
    assert_eq!(numbers, [1, 2, 3, 4]);

    // Deleting a user takes their memberships and names with them.
    assert!(store.delete_user(bob, 2, ev()).await.unwrap());
    let left: (i64, i64) = store
        .direct
        .read(|c| {
            c.query_row(
                "SELECT (SELECT COUNT(*) FROM group_members), \
                 (SELECT COUNT(*) FROM user_identifiers)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
        .unwrap();
    assert_eq!(left, (2, 2), "ann's two memberships and two names");
}

/// A store on a new file in a directory of its own (removed when the first value is
/// dropped), and the file's path, for connections of the test's own.
async fn fresh_store() -> (tempfile::TempDir, std::path::PathBuf, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gatehouse.db");
    let store = SqliteStore::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    (dir, path, store)
}

/// An audit event for the store calls these tests make.
fn ev() -> &'static crate::domain::audit::Event {
    use crate::domain::audit::{Actor, Event, EventType, Origin};
    static EVENT: std::sync::LazyLock<Event> = std::sync::LazyLock::new(|| {
        Event::new(EventType::UserUpdated, Actor::cli(), Origin::default(), 1)
    });
    &EVENT
}

/// `close` ends what the store runs in the background and waits for it: the batch
/// writer's and the checkpointer's threads are joined, later writes fail, and the file
/// is whole for whoever opens it next.
#[tokio::test]
async fn close_joins_the_background_threads_and_later_writes_fail() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("c.db").display());
    let store = SqliteStore::open(&url).await.unwrap();
    let staff = group("staff");
    store.create_group(&staff, ev()).await.unwrap();
    let user = User::new("tyler".into(), "tyler@example.com".into(), 1);
    store.create_user(&user, &[], ev()).await.unwrap();
    // A membership goes through the batch writer, which wakes the checkpointer.
    store.add_members(staff.id, &[user.id], ev()).await.unwrap();

    assert!(!store.batch.stopped());
    store.close().await;
    assert!(store.batch.stopped(), "both threads were joined");
    let late = group("late");
    assert!(store.add_members(staff.id, &[user.id], ev()).await.is_err());
    assert!(store.create_group(&late, ev()).await.is_err());
    store.close().await; // twice is harmless
    drop(store);

    let again = SqliteStore::open(&url).await.unwrap();
    let (group, found, member) = answer(&again, "staff", "tyler").await;
    assert_eq!(
        (group, found, member),
        (Some(staff.id), Some(user.id), true)
    );
}

/// Events are found by target, type and actor whether or not an index pass has
/// reached them: the lookups read the deferred index up to its mark and scan past it.
#[tokio::test]
async fn lookups_by_target_type_and_actor_see_every_event_before_and_after_index_passes() {
    use crate::domain::audit::{Actor, ActorKind, Event, EventType, Origin};
    let (_dir, path, store) = fresh_store().await;
    let (ann, bob) = (UserId::new(), UserId::new());
    let (staff, ops) = (GroupId::new(), GroupId::new());
    let about = [(ann, staff), (bob, staff), (ann, ops), (bob, ops)];
    let by = |user: UserId| Actor {
        kind: ActorKind::User,
        id: Some(user),
        name: Some("someone".into()),
    };
    // What each lookup should find: (term, seq), built as events are recorded. A term
    // is a target's id, `type:` and a type, or `actor:` and a user id.
    let mut expected: Vec<(String, i64)> = Vec::new();
    // Each event's (at, seq), for the time ranges.
    let mut times: Vec<(i64, i64)> = Vec::new();
    let newest = |c: &rusqlite::Connection| -> i64 {
        c.query_row("SELECT MAX(seq) FROM audit_events", [], |r| r.get(0))
            .unwrap()
    };
    let index = rusqlite::Connection::open(&path).unwrap();
    index.busy_timeout(Duration::from_secs(5)).unwrap();
    for round in 0..4 {
        for (i, (user, group)) in about.iter().enumerate() {
            let at = i64::try_from(round * 10 + i).unwrap();
            // Added by the CLI, removed by ann: two types, one actor with an id.
            let (kind, actor) = if i % 2 == 0 {
                (EventType::MemberAdded, Actor::cli())
            } else {
                (EventType::MemberRemoved, by(ann))
            };
            let event = Event::new(kind, actor.clone(), Origin::default(), at)
                .user(*user)
                .group(*group);
            store.record_event(&event).await.unwrap();
            let seq = newest(&index);
            times.push((at, seq));
            expected.push((user.to_string(), seq));
            expected.push((group.to_string(), seq));
            expected.push((format!("type:{}", kind.as_str()), seq));
            if let Some(id) = actor.id {
                expected.push((format!("actor:{id}"), seq));
            }
        }
        // An event about neither, by bob, at a time out of order with the others.
        let other = Event::new(EventType::UserUpdated, by(bob), Origin::default(), 99);
        store.record_event(&other).await.unwrap();
        let seq = newest(&index);
        times.push((99, seq));
        expected.push(("type:user.updated".into(), seq));
        expected.push((format!("actor:{bob}"), seq));
        if round % 2 == 0 {
            // Index everything so far; the next round's events are (mostly) newer.
            while super::audit_index::pass(&index).unwrap() {}
            let (indexed, rows): (i64, i64) = index
                .query_row(
                    "SELECT (SELECT seq FROM audit_indexed), (SELECT COUNT(*) FROM audit_terms)",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap();
            assert_eq!(indexed, newest(&index), "the pass reached the newest event");
            assert_eq!(rows, newest(&index), "one row per event");
        }
        let find = |term: &str| {
            let mut want: Vec<i64> = expected
                .iter()
                .filter(|(t, _)| t == term)
                .map(|(_, s)| *s)
                .collect();
            want.reverse(); // newest first
            want
        };
        for target in [ann, bob]
            .map(|u| u.to_string())
            .into_iter()
            .chain([staff, ops].map(|g| g.to_string()))
        {
            let found = events_about(&store, &target).await;
            assert_eq!(found, find(&target), "round {round}: {target}");
        }
        for kind in [
            EventType::MemberAdded,
            EventType::MemberRemoved,
            EventType::UserUpdated,
        ] {
            let filter = AuditFilter {
                types: vec![kind.as_str().into()],
                ..AuditFilter::default()
            };
            let term = format!("type:{}", kind.as_str());
            assert_eq!(
                events_where(&store, filter).await,
                find(&term),
                "round {round}: {term}"
            );
        }
        let both = AuditFilter {
            types: vec!["group.memberAdded".into(), "user.updated".into()],
            ..AuditFilter::default()
        };
        let mut want = [find("type:group.memberAdded"), find("type:user.updated")].concat();
        want.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(
            events_where(&store, both).await,
            want,
            "round {round}: two types"
        );
        for user in [ann, bob] {
            let filter = AuditFilter {
                actor: Some(user.to_string()),
                ..AuditFilter::default()
            };
            let term = format!("actor:{user}");
            assert_eq!(
                events_where(&store, filter).await,
                find(&term),
                "round {round}: {term}"
            );
        }
        // Filters together: ann's removals about staff.
        let together = AuditFilter {
            types: vec!["group.memberRemoved".into()],
            actor: Some(ann.to_string()),
            target_ids: vec![staff.to_string()],
            ..AuditFilter::default()
        };
        let want: Vec<i64> = find("type:group.memberRemoved")
            .into_iter()
            .filter(|s| find(&staff.to_string()).contains(s))
            .collect();
        assert!(!want.is_empty());
        assert_eq!(
            events_where(&store, together).await,
            want,
            "round {round}: together"
        );
        // Time ranges, the out-of-order event's included.
        for (since, until) in [
            (Some(0), Some(2)),
            (Some(12), None),
            (None, Some(21)),
            (Some(21), Some(33)),
            (Some(50), Some(100)),
            (Some(100), None),
        ] {
            let filter = AuditFilter {
                since,
                until,
                ..AuditFilter::default()
            };
            let mut want: Vec<i64> = times
                .iter()
                .filter(|(at, _)| since.is_none_or(|s| *at >= s) && until.is_none_or(|u| *at < u))
                .map(|(_, seq)| *seq)
                .collect();
            want.reverse();
            let found = events_where(&store, filter).await;
            assert_eq!(found, want, "round {round}: {since:?}..{until:?}");
        }
    }

    // The index only narrows the search; the recorded values decide. FTS5 folds case
    // and would match an id's capitals or a type's other spelling, and a term that is
    // not a single token matches nothing rather than failing.
    while super::audit_index::pass(&index).unwrap() {}
    assert!(
        events_about(&store, &ann.to_string().to_uppercase())
            .await
            .is_empty()
    );
    assert!(events_about(&store, "not \"an\" id").await.is_empty());
    assert!(events_about(&store, "").await.is_empty());
    for odd in [
        "GROUP.MEMBERADDED",
        "group-memberAdded",
        "group.memberAdded OR x",
        "",
    ] {
        let filter = AuditFilter {
            types: vec![odd.into()],
            ..AuditFilter::default()
        };
        assert!(events_where(&store, filter).await.is_empty(), "{odd:?}");
    }
    for odd in [
        ann.to_string().to_uppercase(),
        format!("\"{ann}\""),
        String::new(),
    ] {
        let filter = AuditFilter {
            actor: Some(odd.clone()),
            ..AuditFilter::default()
        };
        assert!(events_where(&store, filter).await.is_empty(), "{odd:?}");
    }

    // Retention removes events and their index rows together, also events no pass has
    // reached yet.
    let late = Event::new(EventType::UserUpdated, Actor::cli(), Origin::default(), 5);
    store.record_event(&late).await.unwrap();
    let recent = Event::new(EventType::UserUpdated, Actor::cli(), Origin::default(), 99);
    store.record_event(&recent).await.unwrap();
    let pruned = store.prune_audit(20, 1000).await.unwrap();
    assert_eq!(
        pruned,
        2 * 4 + 1,
        "the changes of rounds 0 and 1 (at < 20), and the late one"
    );
    let dangling: i64 = index
        .query_row(
            "SELECT COUNT(*) FROM audit_terms t WHERE NOT EXISTS \
             (SELECT 1 FROM audit_events a WHERE a.seq = t.rowid)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(dangling, 0);
    assert_eq!(events_about(&store, &ann.to_string()).await.len(), 4);

    // Retention keeps the newest event, however old: `seq` is not AUTOINCREMENT, and
    // an id must never be given twice.
    let last = newest(&index);
    let last_event = Event::new(EventType::UserUpdated, Actor::cli(), Origin::default(), 1);
    store.record_event(&last_event).await.unwrap();
    assert_eq!(newest(&index), last + 1);
    while store.prune_audit(i64::MAX, 1000).await.unwrap() > 0 {}
    while super::audit_index::pass(&index).unwrap() {}
    assert_eq!(store.prune_audit(i64::MAX, 1000).await.unwrap(), 0);
    let left: Vec<i64> = events_where(&store, AuditFilter::default()).await;
    assert_eq!(left, [last + 1], "only the newest is left");
    let next = Event::new(EventType::UserUpdated, Actor::cli(), Origin::default(), 2);
    store.record_event(&next).await.unwrap();
    assert_eq!(newest(&index), last + 2, "the next id is new");
}

/// Adds that share a batch defer their events to one insert; the events still come out
/// in the order of the changes (a remove between two adds of the same membership flushes
/// the first add's event before its own), one per membership made, none for an add that
/// found nothing to do. And the flush is part of the batch: when it fails, no change of
/// the batch is stored, so no change is ever without its record.
#[tokio::test]
async fn adds_in_one_batch_record_their_events_in_order_or_not_at_all() {
    use crate::domain::audit::{Actor, Event, EventType, Origin};
    let (_dir, path, store) = fresh_store().await;
    let store = Arc::new(store);
    let staff = group("staff");
    store.create_group(&staff, ev()).await.unwrap();
    let mut users = Vec::new();
    for name in ["ann", "bob", "cyd"] {
        let user = User::new(name.into(), format!("{name}@example.com"), 1);
        store.create_user(&user, &[], ev()).await.unwrap();
        users.push(user);
    }
    let (ann, bob) = (users[0].id, users[1].id);
    let added = |request: &str| {
        let origin = Origin {
            request_id: Some(request.into()),
            ..Origin::default()
        };
        Event::new(EventType::MemberAdded, Actor::cli(), origin, 2)
    };

    /// Holds the batch writer in a change of its own until `release` is sent, so that
    /// everything queued meanwhile makes the next batch, in the order it was queued.
    async fn hold(store: &Arc<SqliteStore>) -> std::sync::mpsc::Sender<()> {
        let (release, held) = std::sync::mpsc::channel::<()>();
        let writer = Arc::clone(store);
        tokio::spawn(async move {
            writer
                .batch
                .write(move |_| {
                    let _ = held.recv();
                    Ok(())
                })
                .await
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        release
    }
    type Pending = tokio::task::JoinHandle<StoreResult<bool>>;
    let add = |user: &str, request: &str| -> Pending {
        let (store, user, event) = (Arc::clone(&store), user.to_owned(), added(request));
        tokio::spawn(async move {
            let found = store
                .add_member_named(named("staff"), named(&user), &event)
                .await?;
            Ok(found.member)
        })
    };
    let remove = |user: UserId, request: &str| -> Pending {
        let store = Arc::clone(&store);
        let event = Event::new(EventType::MemberRemoved, Actor::cli(), Origin::default(), 3)
            .group(staff.id)
            .user(user)
            .with("request", request.to_owned());
        tokio::spawn(async move { store.remove_member(staff.id, user, 3, &event).await })
    };
    // Queued one after the other, behind the held batch.
    let release = hold(&store).await;
    let mut queued = Vec::new();
    for job in [
        add("ann", "add ann"),
        add("bob", "add bob"),
        add("ann", "add ann again"), // already a member: no event
        add("nobody", "add nobody"), // no such user: no event
        remove(ann, "remove ann"),
        add("ann", "add ann back"),
        add("cyd", "add cyd"),
    ] {
        tokio::time::sleep(Duration::from_millis(5)).await;
        queued.push(job);
    }
    release.send(()).unwrap();
    let mut answers = Vec::new();
    for job in queued {
        answers.push(job.await.unwrap().unwrap());
    }
    assert_eq!(answers, [true, true, true, false, true, true, true]);

    let log = |sql: &str| -> Vec<(String, String)> {
        let c = rusqlite::Connection::open(&path).unwrap();
        let mut stmt = c.prepare(sql).unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let events = log(
        "SELECT event_type, COALESCE(request_id, json_extract(summary, '$.request')) \
         FROM audit_events WHERE event_type LIKE 'group.member%' ORDER BY seq",
    );
    let want: Vec<(String, String)> = [
        ("Added", "add ann"),
        ("Added", "add bob"),
        ("Removed", "remove ann"),
        ("Added", "add ann back"),
        ("Added", "add cyd"),
    ]
    .iter()
    .map(|(kind, request)| (format!("group.member{kind}"), (*request).to_owned()))
    .collect();
    assert_eq!(events, want);
    let named = log(
        "SELECT target_user_name, target_group_name FROM audit_events \
         WHERE request_id = 'add cyd'",
    );
    assert_eq!(named, [("cyd".to_owned(), "staff".to_owned())]);

    // A flush that fails (here a trigger refuses one event) fails the batch: neither
    // add of it is stored, with or without its event.
    let refuse = rusqlite::Connection::open(&path).unwrap();
    refuse
        .execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON audit_events \
             WHEN NEW.request_id = 'refused' BEGIN SELECT RAISE(ABORT, 'refused'); END",
        )
        .unwrap();
    let dee = User::new("dee".into(), "dee@example.com".into(), 1);
    store.create_user(&dee, &[], ev()).await.unwrap();
    store.remove_member(staff.id, bob, 4, ev()).await.unwrap();
    let release = hold(&store).await;
    let first = add("bob", "fine");
    tokio::time::sleep(Duration::from_millis(5)).await;
    let second = add("dee", "refused");
    tokio::time::sleep(Duration::from_millis(5)).await;
    release.send(()).unwrap();
    assert!(first.await.unwrap().is_err(), "its batch did not commit");
    assert!(second.await.unwrap().is_err());
    assert!(!is_in(&store, &staff, "bob").await);
    assert!(!is_in(&store, &staff, "dee").await);
    let stored = log(
        "SELECT event_type, request_id FROM audit_events WHERE request_id IN ('fine', 'refused')",
    );
    assert!(stored.is_empty(), "{stored:?}");
}

/// A webhook delivery poll with nothing to deliver takes no write lock: it answers at
/// once while another connection (an import in another process, say) holds the lock,
/// instead of waiting up to the busy timeout. With a delivery due, it claims.
#[tokio::test]
async fn a_delivery_poll_with_nothing_due_does_not_wait_for_the_write_lock() {
    let (_dir, path, store) = fresh_store().await;
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let poll = tokio::time::timeout(
        Duration::from_secs(3),
        store.claim_webhook("node", 1_000, 2_000),
    )
    .await
    .expect("the poll waited for the write lock");
    assert!(poll.unwrap().is_none());
    other.execute_batch("ROLLBACK").unwrap();

    // A due delivery is claimed (and the check above is not a poll that never claims).
    other
        .execute_batch(
            "INSERT INTO webhooks (id, url, secret, created, modified) \
             VALUES ('h1', 'http://127.0.0.1:9/', 's', 1, 1); \
             INSERT INTO audit_events (at, event_type, actor_type) VALUES (1, 'user.created', 'cli'); \
             INSERT INTO webhook_outbox (webhook_id, event_seq, created, next_attempt) \
             VALUES ('h1', (SELECT MAX(seq) FROM audit_events), 1, 500);",
        )
        .unwrap();
    let claimed = store.claim_webhook("node", 1_000, 2_000).await.unwrap();
    assert_eq!(claimed.map(|h| h.id), Some("h1".to_owned()));
    // Leased now: the next poll finds nothing until the lease runs out.
    assert!(
        store
            .claim_webhook("other", 1_500, 2_500)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .claim_webhook("other", 2_001, 3_000)
            .await
            .unwrap()
            .is_some()
    );
}
