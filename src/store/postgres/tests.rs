//! The PostgreSQL store's own tests: what only it does. They run on the server
//! `GATEHOUSE_TEST_BACKEND=postgres` names (`TEST_POSTGRES_URL`), each in a new schema;
//! on another backend they return at once.

use std::time::{Duration, Instant};

use sqlx::{Connection as _, PgConnection};

use super::audit_index::{AuditIndexer, Pass};
use super::*;
use crate::config::TestBackend;
use crate::domain::audit::{Actor, EventType, Origin};
use crate::store::audit::testing::{events_about, events_where};
use crate::store::tx::{Lock, Tx as _};

/// A store in a new schema of the test server, without its index passes (the tests run
/// them), and the URL that reaches the schema; `None` when the tests run on SQLite.
async fn fresh_store() -> Option<(PgStore, String)> {
    let TestBackend::Postgres { url: server } =
        crate::config::test_backend().unwrap_or_else(|e| panic!("{e}"))
    else {
        return None;
    };
    let mut conn = PgConnection::connect(&server).await.unwrap();
    // Named as the API tests name theirs (`tests/api/helpers.rs`), so that their sweep
    // drops one a failed test leaves behind.
    let schema: String = sqlx::query_scalar(
        "SELECT 'gh_' || floor(extract(epoch FROM now()))::bigint || '_' || md5(random()::text)",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    sqlx::raw_sql(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let sep = if server.contains('?') { '&' } else { '?' };
    let url = format!("{server}{sep}options=-c%20search_path%3D{schema},public");
    Some((PgStore::connect(&url, 4).await.unwrap(), url))
}

/// Closes `store` and drops its schema (at the end of a test that passed).
async fn drop_schema(store: PgStore, url: &str) {
    store.close().await;
    let mut conn = PgConnection::connect(url).await.unwrap();
    sqlx::raw_sql("DO $$ BEGIN EXECUTE format('DROP SCHEMA %I CASCADE', current_schema()); END $$")
        .execute(&mut conn)
        .await
        .unwrap();
}

async fn scalar(store: &PgStore, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&store.pool)
        .await
        .unwrap()
}

/// Counts the index rows whose event is gone.
const DANGLING: &str = "SELECT COUNT(*) FROM audit_targets t \
    WHERE NOT EXISTS (SELECT 1 FROM audit_events a WHERE a.seq = t.seq)";

/// How far the index passes have come.
async fn mark(store: &PgStore) -> i64 {
    scalar(store, "SELECT seq FROM audit_indexed").await
}

/// An event recorded through the store.
#[derive(Debug)]
struct Recorded {
    seq: i64,
    at: i64,
    kind: EventType,
    /// Its user's and group's ids.
    targets: Vec<String>,
}

/// Records an event of `kind` at `at` about `user` and `group`.
async fn record(
    store: &PgStore,
    kind: EventType,
    at: i64,
    user: Option<UserId>,
    group: Option<GroupId>,
) -> Recorded {
    let mut event = Event::new(kind, Actor::cli(), Origin::default(), at);
    let mut targets = Vec::new();
    if let Some(user) = user {
        event = event.user(user);
        targets.push(user.to_string());
    }
    if let Some(group) = group {
        event = event.group(group);
        targets.push(group.to_string());
    }
    store.record_event(&event).await.unwrap();
    Recorded {
        seq: scalar(store, "SELECT MAX(seq) FROM audit_events").await,
        at,
        kind,
        targets,
    }
}

/// What `filter` (targets, types, time) should find among `events`, newest first.
fn expected(events: &[Recorded], filter: &AuditFilter) -> Vec<i64> {
    let mut found: Vec<i64> = events
        .iter()
        .filter(|e| filter.target_ids.iter().any(|id| e.targets.contains(id)))
        .filter(|e| filter.types.is_empty() || filter.types.iter().any(|t| t == e.kind.as_str()))
        .filter(|e| filter.since.is_none_or(|s| e.at >= s))
        .filter(|e| filter.until.is_none_or(|u| e.at < u))
        .map(|e| e.seq)
        .collect();
    found.sort_unstable_by(|a, b| b.cmp(a));
    found
}

/// Every lookup by target, alone and with other filters, finds what it should.
async fn lookups_find_everything(store: &PgStore, events: &[Recorded], ids: &[String], when: &str) {
    let about = |ids: &[&String]| AuditFilter {
        target_ids: ids.iter().map(|id| (*id).clone()).collect(),
        ..AuditFilter::default()
    };
    let (ann, bob, staff, ops) = (&ids[0], &ids[1], &ids[2], &ids[3]);
    let mut filters: Vec<AuditFilter> = ids.iter().map(|id| about(&[id])).collect();
    filters.push(about(&[ann, ops]));
    filters.push(about(&[ann, bob, staff, ops]));
    filters.push(AuditFilter {
        types: vec!["group.memberRemoved".into()],
        ..about(&[staff])
    });
    filters.push(AuditFilter {
        types: vec!["group.memberAdded".into(), "group.memberRemoved".into()],
        since: Some(1),
        until: Some(23),
        ..about(&[ann, ops])
    });
    filters.push(AuditFilter {
        since: Some(12),
        ..about(&[bob])
    });
    for filter in filters {
        let want = expected(events, &filter);
        assert!(!want.is_empty(), "{when}: {filter:?} asks for something");
        assert_eq!(
            events_where(store, filter.clone()).await,
            want,
            "{when}: {filter:?}"
        );
    }
}

/// Lookups by target find every event whatever the passes have indexed: before any
/// pass, after one, and with events on both sides of the mark; only exact ids match;
/// retention takes an event's index rows with it, also for events no pass has reached,
/// and the passes go on after it.
#[tokio::test]
async fn lookups_by_target_find_every_event_on_either_side_of_the_mark() {
    let Some((store, url)) = fresh_store().await else {
        return;
    };
    let mut indexer = AuditIndexer::new(store.pool.clone(), store.scope);
    let (ann, bob) = (UserId::new(), UserId::new());
    let (staff, ops) = (GroupId::new(), GroupId::new());
    let ids = [
        ann.to_string(),
        bob.to_string(),
        staff.to_string(),
        ops.to_string(),
    ];
    let mut events = Vec::new();
    let round = |round: i64| {
        let store = &store;
        async move {
            let mut made = Vec::new();
            let about = [(ann, staff), (bob, staff), (ann, ops), (bob, ops)];
            for (i, (user, group)) in (0..).zip(about) {
                let kind = if i % 2 == 0 {
                    EventType::MemberAdded
                } else {
                    EventType::MemberRemoved
                };
                let at = round * 10 + i;
                made.push(record(store, kind, at, Some(user), Some(group)).await);
            }
            // About a user only, about a group only, about neither; later times.
            made.push(record(store, EventType::UserUpdated, 99, Some(bob), None).await);
            made.push(record(store, EventType::GroupUpdated, 98, None, Some(ops)).await);
            made.push(record(store, EventType::UserCreated, 97, None, None).await);
            made
        }
    };
    let rows = |events: &[Recorded]| events.iter().map(|e| e.targets.len()).sum::<usize>();

    events.extend(round(0).await);
    assert_eq!(mark(&store).await, 0);
    lookups_find_everything(&store, &events, &ids, "before any pass").await;

    let newest = events.last().unwrap().seq;
    assert_eq!(indexer.pass().await.unwrap(), Pass::Indexed(newest));
    assert_eq!(mark(&store).await, newest);
    let indexed = scalar(&store, "SELECT COUNT(*) FROM audit_targets").await;
    assert_eq!(usize::try_from(indexed).unwrap(), rows(&events));
    assert_eq!(indexer.pass().await.unwrap(), Pass::Idle);
    lookups_find_everything(&store, &events, &ids, "after a pass").await;

    events.extend(round(1).await);
    lookups_find_everything(&store, &events, &ids, "on both sides of the mark").await;
    indexer.pass().await.unwrap();
    events.extend(round(2).await);
    lookups_find_everything(&store, &events, &ids, "after two passes").await;

    // The index only narrows the search, and only an id as recorded is found, whether
    // its events are indexed (rounds 0 and 1) or past the mark (round 2).
    for odd in [
        ann.to_string().to_uppercase(),
        staff.to_string().to_uppercase(),
        format!("{ann} "),
        format!("{ann}' OR '1'='1"),
        "%".to_owned(),
        "not \"an\" id".to_owned(),
        "\0".to_owned(),
        String::new(),
    ] {
        assert!(events_about(&store, &odd).await.is_empty(), "{odd:?}");
    }

    // Retention removes events and their index rows together, an event no pass has
    // reached included, and the next pass indexes what is left.
    let late = record(&store, EventType::MemberAdded, 5, Some(ann), Some(staff)).await;
    assert!(late.seq > mark(&store).await);
    events.push(late);
    let pruned = store.prune_audit(20, 1000).await.unwrap();
    assert_eq!(
        pruned,
        2 * 4 + 1,
        "rounds 0 and 1's changes, and the late one"
    );
    events.retain(|e| e.at >= 20);
    assert_eq!(scalar(&store, DANGLING).await, 0);
    lookups_find_everything(&store, &events, &ids, "after retention").await;
    let newest = scalar(&store, "SELECT MAX(seq) FROM audit_events").await;
    assert_eq!(indexer.pass().await.unwrap(), Pass::Indexed(newest));
    let indexed = scalar(&store, "SELECT COUNT(*) FROM audit_targets").await;
    assert_eq!(usize::try_from(indexed).unwrap(), rows(&events));
    assert_eq!(scalar(&store, DANGLING).await, 0);
    lookups_find_everything(&store, &events, &ids, "after retention and a pass").await;

    // A store opened as a node opens it runs the passes itself.
    let node = PgStore::open(&url).await.unwrap();
    let last = record(&node, EventType::MemberAdded, 50, Some(ann), Some(ops)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while mark(&node).await < last.seq {
        assert!(
            Instant::now() < deadline,
            "the node's passes reach its event"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    node.close().await;
    drop_schema(store, &url).await;
}

/// The attack on the mark: an event takes a `seq` in a transaction that stays open
/// while a later event commits and a pass runs. The pass must not move the mark past
/// the open transaction's event, or that event, once committed, would be neither in
/// the index nor past the mark, and no lookup by its target would ever find it.
#[tokio::test]
async fn a_pass_never_moves_the_mark_past_an_event_still_to_commit() {
    let Some((store, url)) = fresh_store().await else {
        return;
    };
    let mut indexer = AuditIndexer::new(store.pool.clone(), store.scope);
    // The argument needs every `seq` taken in its inserting statement (migration 0006).
    let cache = "SELECT seqcache FROM pg_sequence \
        WHERE seqrelid = pg_get_serial_sequence('audit_events', 'seq')::regclass";
    assert_eq!(scalar(&store, cache).await, 1);
    let (ann, bob, staff) = (UserId::new(), UserId::new(), GroupId::new());
    let first = record(&store, EventType::MemberAdded, 1, Some(bob), Some(staff)).await;
    assert_eq!(indexer.pass().await.unwrap(), Pass::Indexed(first.seq));

    // Another connection records an event and keeps its transaction open...
    let mut other = PgConnection::connect(&url).await.unwrap();
    let mut open = PgTx {
        conn: other.begin().await.unwrap(),
        scope: store.scope,
    };
    let event = Event::new(EventType::MemberAdded, Actor::cli(), Origin::default(), 2)
        .user(ann)
        .group(staff);
    audit::record(&mut open, &event).await.unwrap();
    let early: i64 = sqlx::query_scalar("SELECT MAX(seq) FROM audit_events")
        .fetch_one(&mut *open.conn)
        .await
        .unwrap();
    // ...while a later one commits, and a pass runs.
    let later = record(&store, EventType::MemberRemoved, 3, Some(bob), Some(staff)).await;
    assert!(later.seq > early);
    let started = Instant::now();
    assert_eq!(indexer.pass().await.unwrap(), Pass::Skipped);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the pass gave up after its lock timeout"
    );
    assert!(
        mark(&store).await < early,
        "the mark stays before the open transaction's event"
    );
    assert_eq!(
        events_about(&store, &bob.to_string()).await,
        [later.seq, first.seq]
    );
    assert!(events_about(&store, &ann.to_string()).await.is_empty());

    open.conn.commit().await.unwrap();
    assert_eq!(indexer.pass().await.unwrap(), Pass::Indexed(later.seq));
    assert_eq!(events_about(&store, &ann.to_string()).await, [early]);
    assert_eq!(
        events_about(&store, &staff.to_string()).await,
        [later.seq, early, first.seq]
    );
    let in_index = "SELECT COUNT(*) FROM audit_targets WHERE seq = $1";
    let rows: i64 = sqlx::query_scalar(in_index)
        .bind(early)
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(rows, 2, "the event's user and group are in the index");

    // A pass gives way to another node's pass holding the advisory lock (or retention),
    // and retention waits for it: a pass between reading an event and committing its
    // rows must not see the event removed under it.
    let next = record(&store, EventType::MemberAdded, 4, Some(ann), None).await;
    let mut node = PgConnection::connect(&url).await.unwrap();
    let mut busy = PgTx {
        conn: node.begin().await.unwrap(),
        scope: store.scope,
    };
    busy.lock(Lock::AuditIndex).await.unwrap();
    assert_eq!(indexer.pass().await.unwrap(), Pass::Skipped);
    assert_eq!(mark(&store).await, later.seq);
    let pruning = tokio::spawn({
        let store = store.clone();
        async move { store.prune_audit(2, 1000).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!pruning.is_finished(), "retention waits for the lock");
    busy.conn.rollback().await.unwrap();
    assert_eq!(pruning.await.unwrap().unwrap(), 1, "the first event went");
    assert_eq!(indexer.pass().await.unwrap(), Pass::Indexed(next.seq));
    assert_eq!(
        events_about(&store, &ann.to_string()).await,
        [next.seq, early]
    );
    assert_eq!(
        events_about(&store, &staff.to_string()).await,
        [later.seq, early]
    );
    assert_eq!(scalar(&store, DANGLING).await, 0);
    drop_schema(store, &url).await;
}
