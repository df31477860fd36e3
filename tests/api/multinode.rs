//! Several gatehouse nodes on one database (spec §8): real `gatehouse serve` processes
//! sharing one fresh PostgreSQL schema, driven over HTTP at once, and two stores (two
//! connection pools, as two nodes have) racing on the invariants directly.
//!
//! On SQLite, several processes on one file is not a supported deployment, so a
//! "cluster" there is ONE `gatehouse serve` process reached through two handles, and the
//! store races use one store from two tasks. The same assertions then check that
//! concurrent requests to a single node keep the invariants, which is still worth
//! knowing; the cross-process part runs with `GATEHOUSE_TEST_BACKEND=postgres`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse::clock::Millis;
use gatehouse::domain::group::{Group, GroupType};
use gatehouse::domain::ids::{GroupId, SYSTEM_ADMINISTRATORS_ID, UserId};
use gatehouse::domain::user::{Provider, User};
use gatehouse::store::{
    MemberCheck, Named, RefreshToken, RefreshUse, StateChange, Store, StoreError,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection as _;

use crate::helpers::*;

/// Two handles, `a` and `b`, on one service: two processes on one PostgreSQL schema, or
/// one process on SQLite (see the module documentation).
struct Cluster {
    a: String,
    b: String,
    http: reqwest::Client,
    admin: String,
    _nodes: Vec<Node>,
    _dir: Arc<tempfile::TempDir>,
}

impl Cluster {
    async fn start() -> Cluster {
        let (dir, url) = fresh_database().await;
        let nodes = if on_postgres() {
            // Both at once: they race to migrate and bootstrap the empty schema too.
            let (a, b) = tokio::join!(Node::start(&url, &dir, "a"), Node::start(&url, &dir, "b"));
            vec![a, b]
        } else {
            vec![Node::start(&url, &dir, "a").await]
        };
        let http = crate::helpers::client_builder()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("a client");
        let mut cluster = Cluster {
            a: nodes[0].base.clone(),
            b: nodes.last().expect("a node").base.clone(),
            http,
            admin: String::new(),
            _nodes: nodes,
            _dir: dir,
        };
        let a = cluster.a.clone();
        cluster.admin = cluster.login(&a, "admin", ADMIN_PASSWORD).await;
        cluster
    }

    async fn send(
        &self,
        base: &str,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Resp {
        let mut req = self
            .http
            .request(method, format!("{base}{path}"))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        Resp::from(req.send().await.expect("the request is sent")).await
    }

    async fn token(&self, base: &str, form: &[(&str, &str)]) -> Resp {
        let body = form
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect::<Vec<_>>()
            .join("&");
        let req = self
            .http
            .post(format!("{base}/authenticate/connect/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        Resp::from(req.send().await.expect("the request is sent")).await
    }

    async fn login(&self, base: &str, username: &str, password: &str) -> String {
        let r = self
            .token(
                base,
                &[
                    ("grant_type", "contensis_classic"),
                    ("username", username),
                    ("password", password),
                ],
            )
            .await;
        r.expect(StatusCode::OK);
        r.body["access_token"].as_str().expect("a token").to_owned()
    }

    async fn create_user(&self, base: &str, username: &str) -> Value {
        let r = self
            .send(
                base,
                Method::POST,
                "/api/security/users",
                &self.admin,
                Some(user_body(username, &format!("{username}@example.com"))),
            )
            .await;
        r.expect(StatusCode::CREATED);
        r.body
    }

    async fn create_group(&self, base: &str, name: &str) {
        self.send(
            base,
            Method::POST,
            "/api/security/groups",
            &self.admin,
            Some(json!({ "name": name })),
        )
        .await
        .expect(StatusCode::CREATED);
    }
}

fn user_body(username: &str, email: &str) -> Value {
    json!({"username": username, "email": email, "firstName": "Node", "lastName": "Racer",
           "credentials": {"password": PASSWORD}})
}

const ADMINS: &str = "System%20Administrators";

#[tokio::test]
async fn a_write_on_one_node_is_read_on_the_other() {
    let c = Cluster::start().await;
    let user = c.create_user(&c.a, "written-on-a").await;
    let r = c
        .send(
            &c.b,
            Method::GET,
            "/api/security/users/written-on-a",
            &c.admin,
            None,
        )
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["id"], user["id"]);

    c.create_group(&c.b, "Made on B").await;
    c.send(
        &c.a,
        Method::PUT,
        "/api/security/groups/Made%20on%20B/users/written-on-a",
        &c.admin,
        None,
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    c.send(
        &c.b,
        Method::HEAD,
        "/api/security/users/written-on-a/groups/Made%20on%20B",
        &c.admin,
        None,
    )
    .await
    .expect(StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn one_username_created_on_both_nodes_at_once_is_created_once() {
    let c = Cluster::start().await;
    for i in 0..20 {
        let name = format!("racer{i}");
        let (ra, rb) = tokio::join!(
            c.send(
                &c.a,
                Method::POST,
                "/api/security/users",
                &c.admin,
                Some(user_body(&name, &format!("{name}-a@example.com"))),
            ),
            c.send(
                &c.b,
                Method::POST,
                "/api/security/users",
                &c.admin,
                Some(user_body(&name, &format!("{name}-b@example.com"))),
            ),
        );
        let mut statuses = [ra.status.as_u16(), rb.status.as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, [201, 409], "round {i}: {} / {}", ra.text, rb.text);
        let conflict = if ra.status == StatusCode::CONFLICT {
            &ra
        } else {
            &rb
        };
        conflict.expect(StatusCode::CONFLICT);
    }
    let r = c
        .send(
            &c.b,
            Method::GET,
            "/api/security/users?q=racer",
            &c.admin,
            None,
        )
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["totalCount"], 20);
}

#[tokio::test]
async fn crossed_child_links_on_two_nodes_never_make_a_cycle() {
    let c = Cluster::start().await;
    c.create_user(&c.a, "member").await;
    for i in 0..12 {
        let (x, y) = (format!("X{i}"), format!("Y{i}"));
        c.create_group(&c.a, &x).await;
        c.create_group(&c.b, &y).await;
        c.send(
            &c.a,
            Method::PUT,
            &format!("/api/security/groups/{y}/users/member"),
            &c.admin,
            None,
        )
        .await
        .expect(StatusCode::NO_CONTENT);
        let (x_in_y, y_in_x) = (
            format!("/api/security/groups/{x}/groups/{y}"),
            format!("/api/security/groups/{y}/groups/{x}"),
        );
        let (ra, rb) = tokio::join!(
            c.send(&c.a, Method::PUT, &x_in_y, &c.admin, None),
            c.send(&c.b, Method::PUT, &y_in_x, &c.admin, None),
        );
        let mut statuses = [ra.status.as_u16(), rb.status.as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, [204, 409], "round {i}: {} / {}", ra.text, rb.text);

        // Exactly one of the two links exists, seen from either node.
        let mut links = 0;
        for (base, parent, child) in [(&c.a, &x, &y), (&c.b, &y, &x)] {
            let r = c
                .send(
                    base,
                    Method::GET,
                    &format!("/api/security/groups/{parent}/groups"),
                    &c.admin,
                    None,
                )
                .await;
            r.expect(StatusCode::OK);
            let names: Vec<&str> = r.body["items"]
                .as_array()
                .expect("items")
                .iter()
                .filter_map(|g| g["name"].as_str())
                .collect();
            links += usize::from(names.contains(&child.as_str()));
        }
        assert_eq!(links, 1, "round {i}");

        // Graph queries terminate (the client's timeout would fail them otherwise).
        for base in [&c.a, &c.b] {
            for g in [&x, &y] {
                c.send(
                    base,
                    Method::GET,
                    &format!("/api/security/groups/{g}/groups?includeInherited=true"),
                    &c.admin,
                    None,
                )
                .await
                .expect(StatusCode::OK);
                c.send(
                    base,
                    Method::HEAD,
                    &format!("/api/security/groups/{g}/users/member"),
                    &c.admin,
                    None,
                )
                .await;
            }
        }
        // The member of Y is in X exactly when X contains Y.
        let x_has_y = ra.status == StatusCode::NO_CONTENT;
        let r = c
            .send(
                &c.b,
                Method::HEAD,
                &format!("/api/security/groups/{x}/users/member"),
                &c.admin,
                None,
            )
            .await;
        assert_eq!(r.status == StatusCode::NO_CONTENT, x_has_y, "round {i}");
    }
}

#[tokio::test]
async fn a_token_issued_by_one_node_works_on_the_other() {
    let c = Cluster::start().await;
    c.create_user(&c.a, "traveller").await;
    let token = c.login(&c.a, "traveller", PASSWORD).await;
    let r = c
        .send(
            &c.b,
            Method::GET,
            "/api/security/users/@current",
            &token,
            None,
        )
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body["username"], "traveller");

    // A refresh token from A rotates on B; the spent one is then refused on A.
    let login = c
        .token(
            &c.a,
            &[
                ("grant_type", "contensis_classic"),
                ("username", "traveller"),
                ("password", PASSWORD),
            ],
        )
        .await;
    login.expect(StatusCode::OK);
    let first = login.body["refresh_token"]
        .as_str()
        .expect("a refresh token");
    let rotated = c
        .token(
            &c.b,
            &[
                ("grant_type", "contensis_classic_refresh_token"),
                ("refresh_token", first),
            ],
        )
        .await;
    rotated.expect(StatusCode::OK);
    let second = rotated.body["refresh_token"].as_str().expect("a new one");
    let again = c
        .token(
            &c.a,
            &[
                ("grant_type", "contensis_classic_refresh_token"),
                ("refresh_token", first),
            ],
        )
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "{}", again.text);
    // Reuse revoked the whole chain, on every node.
    let after = c
        .token(
            &c.b,
            &[
                ("grant_type", "contensis_classic_refresh_token"),
                ("refresh_token", second),
            ],
        )
        .await;
    assert_eq!(after.status, StatusCode::BAD_REQUEST, "{}", after.text);
}

#[tokio::test]
async fn one_refresh_token_spent_on_both_nodes_at_once_revokes_its_chain() {
    let c = Cluster::start().await;
    c.create_user(&c.a, "twin").await;
    for i in 0..8 {
        let login = c
            .token(
                &c.a,
                &[
                    ("grant_type", "contensis_classic"),
                    ("username", "twin"),
                    ("password", PASSWORD),
                ],
            )
            .await;
        login.expect(StatusCode::OK);
        let rt = login.body["refresh_token"]
            .as_str()
            .expect("a refresh token");
        let form = [
            ("grant_type", "contensis_classic_refresh_token"),
            ("refresh_token", rt),
        ];
        let (ra, rb) = tokio::join!(c.token(&c.a, &form), c.token(&c.b, &form));
        let mut statuses = [ra.status.as_u16(), rb.status.as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 400], "round {i}: {} / {}", ra.text, rb.text);
        // The winner's new refresh token belongs to the reused chain: it is revoked too.
        let winner = if ra.status == StatusCode::OK {
            &ra
        } else {
            &rb
        };
        let next = winner.body["refresh_token"].as_str().expect("a new one");
        let r = c
            .token(
                &c.b,
                &[
                    ("grant_type", "contensis_classic_refresh_token"),
                    ("refresh_token", next),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "round {i}: {}", r.text);
    }
}

#[tokio::test]
async fn a_user_suspended_through_one_node_is_refused_by_the_other_within_two_seconds() {
    let c = Cluster::start().await;
    c.create_user(&c.a, "soon-suspended").await;
    let token = c.login(&c.b, "soon-suspended", PASSWORD).await;
    c.send(
        &c.b,
        Method::GET,
        "/api/security/users/@current",
        &token,
        None,
    )
    .await
    .expect(StatusCode::OK);
    c.send(
        &c.a,
        Method::POST,
        "/api/security/users/soon-suspended/actions",
        &c.admin,
        Some(json!({"type": "suspend"})),
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    let start = Instant::now();
    loop {
        let r = c
            .send(
                &c.b,
                Method::GET,
                "/api/security/users/@current",
                &token,
                None,
            )
            .await;
        if r.status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "node B still accepted the token of a suspended user after 2 s"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn a_membership_changed_through_one_node_is_the_others_next_answer() {
    let c = Cluster::start().await;
    c.create_user(&c.a, "checked").await;
    c.create_group(&c.a, "Outer").await;
    c.create_group(&c.a, "Inner").await;
    let path = |p: &str| format!("/api/security/groups/{p}");
    c.send(
        &c.a,
        Method::PUT,
        &path("Outer/groups/Inner"),
        &c.admin,
        None,
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    let checked = path("Outer/users/checked");
    let head = || c.send(&c.b, Method::HEAD, &checked, &c.admin, None);
    for round in 0..3 {
        // B's caches warm (graph and name read after its first checks), then A changes.
        for _ in 0..10 {
            head().await.expect(StatusCode::NOT_FOUND);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        c.send(
            &c.a,
            Method::PUT,
            &path("Inner/users/checked"),
            &c.admin,
            None,
        )
        .await
        .expect(StatusCode::NO_CONTENT);
        head().await.expect(StatusCode::NO_CONTENT);
        for _ in 0..10 {
            head().await.expect(StatusCode::NO_CONTENT);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        c.send(
            &c.a,
            Method::DELETE,
            &path("Inner/users/checked"),
            &c.admin,
            None,
        )
        .await
        .expect(StatusCode::NO_CONTENT);
        let r = head().await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "round {round}: {}", r.text);
    }
}

#[tokio::test]
async fn racing_removals_of_the_last_two_admins_through_two_nodes_leave_one() {
    let c = Cluster::start().await;
    c.create_user(&c.a, "admin2").await;
    c.send(
        &c.a,
        Method::PUT,
        &format!("/api/security/groups/{ADMINS}/users/admin2"),
        &c.admin,
        None,
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    let admin2 = c.login(&c.b, "admin2", PASSWORD).await;
    for i in 0..10 {
        // Each admin removes the other, through a different node.
        let (remove_2, remove_1) = (
            format!("/api/security/groups/{ADMINS}/users/admin2"),
            format!("/api/security/groups/{ADMINS}/users/admin"),
        );
        let (ra, rb) = tokio::join!(
            c.send(&c.a, Method::DELETE, &remove_2, &c.admin, None),
            c.send(&c.b, Method::DELETE, &remove_1, &admin2, None),
        );
        let won: Vec<bool> = [&ra, &rb]
            .iter()
            .map(|r| r.status == StatusCode::NO_CONTENT)
            .collect();
        assert_eq!(
            won.iter().filter(|w| **w).count(),
            1,
            "round {i}: {} / {}",
            ra.text,
            rb.text
        );
        // The loser is refused by the guard (409) or, when its caller was removed
        // before its request was authorized, as a non-admin (403).
        let loser = if won[0] { &rb } else { &ra };
        assert!(
            [StatusCode::CONFLICT, StatusCode::FORBIDDEN].contains(&loser.status),
            "round {i}: {}",
            loser.text
        );
        let (survivor, removed, base) = if won[0] {
            (&c.admin, "admin2", &c.b)
        } else {
            (&admin2, "admin", &c.a)
        };
        let r = c
            .send(
                base,
                Method::GET,
                &format!("/api/security/groups/{ADMINS}/users"),
                survivor,
                None,
            )
            .await;
        r.expect(StatusCode::OK);
        assert_eq!(r.body["totalCount"], 1, "round {i}: {}", r.text);
        c.send(
            base,
            Method::PUT,
            &format!("/api/security/groups/{ADMINS}/users/{removed}"),
            survivor,
            None,
        )
        .await
        .expect(StatusCode::NO_CONTENT);
    }
}

// ---- the same races one level down: two stores, as two nodes hold two pools ----

/// Two stores on one fresh database: two pools on PostgreSQL, one shared store on
/// SQLite (module documentation).
async fn two_stores() -> (Arc<dyn Store>, Arc<dyn Store>, Arc<tempfile::TempDir>) {
    let (one, two, dir, _) = two_stores_with_url().await;
    (one, two, dir)
}

/// [`two_stores`], and the database's URL.
async fn two_stores_with_url() -> (
    Arc<dyn Store>,
    Arc<dyn Store>,
    Arc<tempfile::TempDir>,
    String,
) {
    let (dir, url) = fresh_database().await;
    let one = gatehouse::app::open_store(&url).await.expect("a store");
    let two = if on_postgres() {
        gatehouse::app::open_store(&url)
            .await
            .expect("a second store")
    } else {
        one.clone()
    };
    one.ensure_system_group(1).await.expect("the system group");
    (one, two, dir, url)
}

fn new_user(name: &str) -> User {
    let now: Millis = 1_700_000_000_000;
    User {
        id: UserId::new(),
        username: name.to_owned(),
        email: format!("{name}@example.com"),
        first_name: None,
        last_name: None,
        timezone: None,
        language: None,
        custom: serde_json::Map::new(),
        provider: Provider::Contensis,
        password_change_frequency: 0,
        password_expirable: false,
        suspended: false,
        locked: false,
        password_reset_flag: false,
        opt_out_of_notifications: false,
        created: now,
        modified: now,
        last_login: None,
        last_failed_login: None,
        expiry: None,
        password_changed: None,
        failed_login_attempts: 0,
        failed_since_success: 0,
        successful_login_attempts: 0,
        token_version: 0,
        password_hash: None,
    }
}

fn new_group(name: &str) -> Group {
    Group {
        id: GroupId::new(),
        name: name.to_owned(),
        description: None,
        kind: GroupType::Contensis,
        custom: serde_json::Map::new(),
        created: 1,
        modified: 1,
        user_count: 0,
        child_group_count: 0,
    }
}

/// Exactly one of two racing outcomes succeeded and the other hit the guard.
#[track_caller]
fn one_won<T: std::fmt::Debug>(
    round: usize,
    a: &Result<T, StoreError>,
    b: &Result<T, StoreError>,
    refused: fn(&StoreError) -> bool,
) -> bool {
    match (a, b) {
        (Ok(_), Err(e)) if refused(e) => true,
        (Err(e), Ok(_)) if refused(e) => false,
        _ => panic!("round {round}: expected one success and one refusal, got {a:?} / {b:?}"),
    }
}

#[tokio::test]
async fn two_stores_removing_the_last_two_admins_in_every_way_leave_one() {
    let (s1, s2, _dir) = two_stores().await;
    let last_admin = |e: &StoreError| matches!(e, StoreError::LastAdmin);
    // Each kind of removal: out of the group, deleted, suspended.
    let remove = |s: Arc<dyn Store>, u: UserId, kind: usize| async move {
        match kind % 3 {
            0 => s
                .remove_member(SYSTEM_ADMINISTRATORS_ID, u, 2, ev())
                .await
                .map(|_| ()),
            1 => s.delete_user(u, 2, ev()).await.map(|_| ()),
            _ => s.set_user_state(u, StateChange::Suspend, 2, ev()).await,
        }
    };
    let mut survivor: Option<UserId> = None;
    for round in 0..27 {
        let (u1, u2) = (
            new_user(&format!("a{round}")),
            new_user(&format!("b{round}")),
        );
        s1.create_user(&u1, &[SYSTEM_ADMINISTRATORS_ID], ev())
            .await
            .unwrap();
        s2.create_user(&u2, &[SYSTEM_ADMINISTRATORS_ID], ev())
            .await
            .unwrap();
        // The last round's survivor may go now: exactly two administrators are left.
        if let Some(s) = survivor.take() {
            s1.delete_user(s, 2, ev()).await.unwrap();
        }
        // Every pairing of removal kinds, one on each store.
        let (r1, r2) = tokio::join!(
            remove(s1.clone(), u1.id, round),
            remove(s2.clone(), u2.id, round / 3)
        );
        let left = if one_won(round, &r1, &r2, last_admin) {
            u2.id
        } else {
            u1.id
        };
        // The survivor is now the last administrator, from either store's view.
        assert!(matches!(
            s1.remove_member(SYSTEM_ADMINISTRATORS_ID, left, 2, ev())
                .await,
            Err(StoreError::LastAdmin)
        ));
        assert!(matches!(
            s2.delete_user(left, 2, ev()).await,
            Err(StoreError::LastAdmin)
        ));
        survivor = Some(left);
    }
}

#[tokio::test]
async fn two_stores_linking_crossed_groups_never_make_a_cycle() {
    let (s1, s2, _dir) = two_stores().await;
    let cycle = |e: &StoreError| matches!(e, StoreError::Cycle);
    for round in 0..30 {
        let (x, y) = (
            new_group(&format!("x{round}")),
            new_group(&format!("y{round}")),
        );
        s1.create_group(&x, ev()).await.unwrap();
        s2.create_group(&y, ev()).await.unwrap();
        let (xs, ys) = ([x.id], [y.id]);
        let (r1, r2) = tokio::join!(
            s1.add_children(x.id, &ys, ev()),
            s2.add_children(y.id, &xs, ev())
        );
        let x_has_y = one_won(round, &r1, &r2, cycle);
        // The closure agrees with the one edge that exists, whichever store reads it.
        let member = new_user(&format!("m{round}"));
        s1.create_user(&member, &[y.id], ev()).await.unwrap();
        assert_eq!(s2.is_member(member.id, &[x.id]).await.unwrap(), x_has_y);
        s1.delete_user(member.id, 2, ev()).await.unwrap();
    }
    // A longer ring attempted from both sides at once: a→b→c and c→a.
    let [a, b, c] = ["ring-a", "ring-b", "ring-c"].map(new_group);
    for g in [&a, &b, &c] {
        s1.create_group(g, ev()).await.unwrap();
    }
    s1.add_children(a.id, &[b.id], ev()).await.unwrap();
    let (cs, as_) = ([c.id], [a.id]);
    let (r1, r2) = tokio::join!(
        s1.add_children(b.id, &cs, ev()),
        s2.add_children(c.id, &as_, ev())
    );
    one_won(0, &r1, &r2, cycle);
}

/// Memberships that no user or group holds any more, counted in the database itself
/// (PostgreSQL; SQLite's foreign keys make them impossible).
async fn orphan_memberships(url: &str) -> i64 {
    if !on_postgres() {
        return 0;
    }
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .expect("a connection");
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM group_members m \
         WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.seq = m.user_seq) \
         OR NOT EXISTS (SELECT 1 FROM groups g WHERE g.seq = m.group_seq)",
    )
    .fetch_one(&mut conn)
    .await
    .expect("the count")
}

/// Grouped adds on both stores of `users` to `group`, all at once.
fn add_all(
    stores: [&Arc<dyn Store>; 2],
    group: &Group,
    users: &[User],
) -> tokio::task::JoinSet<Result<MemberCheck, StoreError>> {
    let mut adds = tokio::task::JoinSet::new();
    for (i, u) in users.iter().enumerate() {
        let s = stores[i % 2].clone();
        let (gid, gname, uid, uname) = (group.id, group.name.clone(), u.id, u.username.clone());
        adds.spawn(async move {
            let (g, u) = (
                Named {
                    id: Some(gid),
                    key: &gname,
                },
                Named {
                    id: Some(uid),
                    key: &uname,
                },
            );
            s.add_member_named(g, u, ev()).await
        });
    }
    adds
}

/// A new group and 16 new users in no group, named after `prefix`.
async fn group_and_users(s: &Arc<dyn Store>, prefix: &str) -> (Group, Vec<User>) {
    let group = new_group(prefix);
    s.create_group(&group, ev()).await.unwrap();
    let users: Vec<User> = (0..16)
        .map(|i| new_user(&format!("{prefix}x{i}")))
        .collect();
    for u in &users {
        s.create_user(u, &[], ev()).await.unwrap();
    }
    (group, users)
}

#[tokio::test]
async fn adds_racing_the_deletion_of_their_users_and_groups_leave_no_membership_behind() {
    let (s1, s2, _dir, url) = two_stores_with_url().await;
    for round in 0..15 {
        // Users deleted one by one on one store while both add them to a group.
        let (group, users) = group_and_users(&s1, &format!("gone{round}")).await;
        let adds = add_all([&s2, &s1], &group, &users);
        for u in &users {
            assert!(s1.delete_user(u.id, 2, ev()).await.unwrap());
        }
        for add in adds.join_all().await {
            // Made, or the user was gone: found missing, or gone mid-way (made alone).
            match add {
                Ok(found) => assert_eq!(found.group, Some(group.id), "round {round}"),
                Err(e) => assert!(matches!(e, StoreError::NotFound), "round {round}: {e:?}"),
            }
        }
        let left = s2.get_group(group.id).await.unwrap().expect("the group");
        assert_eq!(
            left.user_count, 0,
            "round {round}: members of deleted users"
        );

        // A group deleted on one store while both add users to it.
        let (group, users) = group_and_users(&s1, &format!("stay{round}")).await;
        let adds = add_all([&s1, &s2], &group, &users);
        tokio::task::yield_now().await;
        assert!(s1.delete_group(group.id, 2, ev()).await.unwrap());
        adds.join_all().await;
        assert_eq!(
            orphan_memberships(&url).await,
            0,
            "round {round}: memberships without their user or group"
        );
        for u in &users {
            assert!(s2.delete_user(u.id, 2, ev()).await.unwrap());
        }
    }
    assert_eq!(orphan_memberships(&url).await, 0);
}

#[tokio::test]
async fn two_stores_spending_one_refresh_token_spend_it_once() {
    let (s1, s2, _dir) = two_stores().await;
    let user = new_user("spender");
    s1.create_user(&user, &[], ev()).await.unwrap();
    for round in 0..30 {
        let token = RefreshToken {
            token_hash: format!("hash-{round}"),
            family: format!("family-{round}"),
            user_id: user.id,
            scope: String::new(),
            created: 1,
            expires: i64::MAX,
        };
        s1.insert_refresh_token(&token).await.unwrap();
        let (r1, r2) = tokio::join!(
            s1.use_refresh_token(&token.token_hash, 2, ev()),
            s2.use_refresh_token(&token.token_hash, 2, ev())
        );
        let (r1, r2) = (r1.unwrap(), r2.unwrap());
        let valid = [&r1, &r2]
            .iter()
            .filter(|r| matches!(r, RefreshUse::Valid(_)))
            .count();
        let reused = [&r1, &r2]
            .iter()
            .filter(|r| matches!(r, RefreshUse::Reused))
            .count();
        assert_eq!((valid, reused), (1, 1), "round {round}: {r1:?} / {r2:?}");
        // The winner's successor joins a revoked family, so it is born revoked.
        let next = RefreshToken {
            token_hash: format!("next-{round}"),
            ..token.clone()
        };
        s2.insert_refresh_token(&next).await.unwrap();
        assert_eq!(
            s1.use_refresh_token(&next.token_hash, 3, ev())
                .await
                .unwrap(),
            RefreshUse::Invalid,
            "round {round}"
        );
    }
}

// ---- what each node keeps in memory for checks, attacked from the other node ----

/// A check of `user` in `group`, both named by name (lower-case ASCII: their own keys),
/// as `HEAD /groups/{group}/users/{user}` asks the store.
async fn check(s: &Arc<dyn Store>, group: &str, user: &str) -> MemberCheck {
    s.check_member(named(group), named(user)).await.unwrap()
}

/// A row named by its key alone.
fn named<Id>(key: &str) -> Named<'_, Id> {
    Named { id: None, key }
}

/// Checks until the store has read the graph and remembered the name (its caches are
/// filled in the background after the first check), asserting every answer.
async fn warm(s: &Arc<dyn Store>, group: &str, user: &str, member: bool) {
    for _ in 0..20 {
        assert_eq!(
            check(s, group, user).await.member,
            member,
            "{group} / {user}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_check_on_one_store_never_answers_from_a_cache_the_other_made_stale() {
    let (s1, s2, _dir) = two_stores().await;
    let [top, mid] = ["top", "mid"].map(new_group);
    for g in [&top, &mid] {
        s1.create_group(g, ev()).await.unwrap();
    }
    s1.add_children(top.id, &[mid.id], ev()).await.unwrap();
    let ann = new_user("ann");
    s1.create_user(&ann, &[], ev()).await.unwrap();
    let added = s1
        .add_member_named(named("mid"), named("ann"), ev())
        .await
        .unwrap();
    assert_eq!(
        (added.group, added.user, added.member),
        (Some(mid.id), Some(ann.id), true)
    );

    // Each change on store 1 is answered by store 2's very next check, caches warm.
    warm(&s2, "top", "ann", true).await;
    assert!(
        s1.remove_member(mid.id, ann.id, 2, ev()).await.unwrap(),
        "removed"
    );
    assert!(!check(&s2, "top", "ann").await.member, "membership removed");
    warm(&s2, "top", "ann", false).await;
    s1.add_member_named(named("mid"), named("ann"), ev())
        .await
        .unwrap();
    assert!(check(&s2, "top", "ann").await.member, "membership added");

    warm(&s2, "top", "ann", true).await;
    assert!(s1.remove_child(top.id, mid.id, 2, ev()).await.unwrap());
    assert!(!check(&s2, "top", "ann").await.member, "child link removed");
    warm(&s2, "top", "ann", false).await;
    s1.add_children(top.id, &[mid.id], ev()).await.unwrap();
    assert!(check(&s2, "top", "ann").await.member, "child link added");

    // A renamed group answers to its new name only.
    warm(&s2, "top", "ann", true).await;
    let renamed = Group {
        name: "summit".into(),
        ..top.clone()
    };
    s1.update_group(&renamed, ev()).await.unwrap();
    assert_eq!(check(&s2, "top", "ann").await.group, None, "old group name");
    let found = check(&s2, "summit", "ann").await;
    assert_eq!((found.group, found.member), (Some(top.id), true));

    // A renamed user: the old name names nobody, then someone else.
    warm(&s2, "summit", "ann", true).await;
    let before = s1.get_user(ann.id).await.unwrap().unwrap();
    let after = User {
        username: "anna".into(),
        email: "anna@example.com".into(),
        ..before.clone()
    };
    s1.update_user_profile(&before, &after, ev()).await.unwrap();
    assert_eq!(check(&s2, "summit", "ann").await.user, None, "old username");
    assert_eq!(check(&s2, "summit", "anna").await.user, Some(ann.id));
    warm(&s2, "summit", "anna", true).await;
    let impostor = new_user("ann");
    s1.create_user(&impostor, &[], ev()).await.unwrap();
    let found = check(&s2, "summit", "ann").await;
    assert_eq!((found.user, found.member), (Some(impostor.id), false));

    // A deleted user, a deleted group.
    warm(&s2, "summit", "anna", true).await;
    assert!(s1.delete_user(ann.id, 2, ev()).await.unwrap());
    assert_eq!(
        check(&s2, "summit", "anna").await.user,
        None,
        "user deleted"
    );
    s1.add_member_named(named("mid"), named("ann"), ev())
        .await
        .unwrap();
    warm(&s2, "summit", "ann", true).await;
    assert!(s1.delete_group(mid.id, 2, ev()).await.unwrap());
    let found = check(&s2, "summit", "ann").await;
    assert_eq!(
        (found.group, found.member),
        (Some(top.id), false),
        "the group it came through is gone"
    );
    assert_eq!(check(&s2, "mid", "ann").await.group, None, "group deleted");
}

/// Many warm checks at once on one store, for different users, groups and answers: each
/// answers for its own user and group (on PostgreSQL the checks waiting together share
/// one statement, `postgres/check_batch.rs`), checks abandoned while they wait harm none
/// of the others, and a change made on the other store is seen by every check that
/// starts after it.
#[tokio::test]
async fn concurrent_warm_checks_each_answer_for_their_own_user_and_group() {
    let (s1, s2, _dir) = two_stores().await;
    let groups = ["g0", "g1", "g2", "g3"].map(new_group);
    let top = new_group("top");
    for g in groups.iter().chain([&top]) {
        s1.create_group(g, ev()).await.unwrap();
    }
    s1.add_children(top.id, &[groups[0].id], ev())
        .await
        .unwrap();
    // User i is a direct member of g(i % 4), and through g0 of top when i % 4 == 0.
    let names: Vec<String> = (0..40).map(|i| format!("user{i:02}")).collect();
    for (i, name) in names.iter().enumerate() {
        s1.create_user(&new_user(name), &[groups[i % 4].id], ev())
            .await
            .unwrap();
    }
    // Store 2 reads the graph, then remembers every name.
    warm(&s2, "top", &names[0], true).await;
    for (i, name) in names.iter().enumerate() {
        assert_eq!(check(&s2, "top", name).await.member, i % 4 == 0, "{name}");
    }
    let expected = |group: &str, user: usize, removed: bool| match group {
        "top" => user % 4 == 0 && !(removed && user == 0),
        g => g == format!("g{}", user % 4) && !(removed && user == 0),
    };
    let all_at_once = |removed: bool| {
        let mut checks = tokio::task::JoinSet::new();
        for k in 0..400 {
            let (s, user) = (Arc::clone(&s2), k % names.len());
            let name = names[user].clone();
            let group = ["top", "g0", "g1", "g2", "g3"][k % 5];
            checks.spawn(async move {
                if k % 3 == 0 {
                    // Abandoned once it is waiting: its answer is never read.
                    let _ = tokio::time::timeout(Duration::ZERO, check(&s, group, &name)).await;
                    return;
                }
                let found = check(&s, group, &name).await;
                assert!(
                    found.user.is_some() && found.group.is_some(),
                    "{group} / {name}"
                );
                assert_eq!(
                    found.member,
                    expected(group, user, removed),
                    "{group} / {name}"
                );
            });
        }
        checks.join_all()
    };
    all_at_once(false).await;
    // A change on store 1: every check store 2 starts afterwards sees it.
    assert!(
        s1.remove_member(groups[0].id, user_named(&s1, &names[0]).await, 2, ev())
            .await
            .unwrap()
    );
    all_at_once(true).await;
    all_at_once(true).await;
}

/// The id of the user with `name`.
async fn user_named(s: &Arc<dyn Store>, name: &str) -> UserId {
    s.find_user_by_key(name).await.unwrap().expect("the user")
}

#[tokio::test]
async fn adds_racing_on_two_stores_each_make_one_membership_and_one_event() {
    let (s1, s2, _dir) = two_stores().await;
    let groups: Vec<Group> = (0..4).map(|i| new_group(&format!("g{i}"))).collect();
    let users: Vec<User> = (0..12).map(|i| new_user(&format!("u{i}"))).collect();
    for g in &groups {
        s1.create_group(g, ev()).await.unwrap();
    }
    for u in &users {
        s1.create_user(u, &[], ev()).await.unwrap();
    }
    let added = gatehouse::domain::audit::EventType::MemberAdded;
    let event = gatehouse::domain::audit::Event::new(
        added,
        gatehouse::domain::audit::Actor::cli(),
        Default::default(),
        5,
    );
    // Every pair twice on each store, all at once, and adds naming nobody among them.
    let mut calls = Vec::new();
    for round in 0..2 {
        for (gi, g) in groups.iter().enumerate() {
            for (ui, u) in users.iter().enumerate() {
                for s in [&s1, &s2] {
                    let (s, event) = (s.clone(), event.clone());
                    let (gname, uname) = (g.name.clone(), u.username.clone());
                    let by_id = (gi + ui + round) % 2 == 0;
                    let (gid, uid) = (by_id.then_some(g.id), by_id.then_some(u.id));
                    calls.push(tokio::spawn(async move {
                        s.add_member_named(
                            Named {
                                id: gid,
                                key: &gname,
                            },
                            Named {
                                id: uid,
                                key: &uname,
                            },
                            &event,
                        )
                        .await
                    }));
                }
            }
            let s = if round == 0 { s1.clone() } else { s2.clone() };
            let event = event.clone();
            calls.push(tokio::spawn(async move {
                s.add_member_named(
                    Named {
                        id: None,
                        key: "nobody",
                    },
                    Named {
                        id: None,
                        key: "u1",
                    },
                    &event,
                )
                .await
            }));
        }
    }
    let mut answered = 0;
    for call in calls {
        let found = call.await.unwrap().unwrap();
        match found.group {
            Some(_) => assert!(found.member && found.user.is_some(), "{found:?}"),
            None => assert!(!found.member, "{found:?}"),
        }
        answered += 1;
    }
    assert_eq!(answered, 2 * 4 * (12 * 2 + 1));
    for g in &groups {
        for u in &users {
            assert!(s2.is_member(u.id, &[g.id]).await.unwrap());
        }
    }
    let events = s1.audit_after(0, 0, 10_000).await.unwrap();
    let adds: Vec<_> = events.iter().filter(|e| e.kind == added.as_str()).collect();
    assert_eq!(adds.len(), 4 * 12, "one event per membership made");
    let mut pairs: Vec<_> = adds
        .iter()
        .map(|e| (e.group_id.clone(), e.user_id.clone()))
        .collect();
    pairs.sort();
    pairs.dedup();
    assert_eq!(pairs.len(), 4 * 12, "each about its own pair");
}

/// An audit event for store calls made directly by these tests (as the operator).
fn ev() -> &'static gatehouse::domain::audit::Event {
    use gatehouse::domain::audit::{Actor, Event, EventType, Origin};
    static EVENT: std::sync::LazyLock<Event> = std::sync::LazyLock::new(|| {
        Event::new(EventType::UserUpdated, Actor::cli(), Origin::default(), 1)
    });
    &EVENT
}
