//! Shared by the benchmarks: a seeded gatehouse in-process, and percentile figures.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use gatehouse::clock::SystemClock;
use gatehouse::config::{Config, Secret};
use gatehouse::domain::group::{Group, GroupType};
use gatehouse::domain::ids::{GroupId, UserId};
use gatehouse::domain::user::User;
use gatehouse::service::auth::TokenRequest;
use gatehouse::service::{Caller, Services};
use gatehouse::store::ImportBatch;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tower::ServiceExt as _;

/// The bootstrap admin's password in benchmark databases.
pub const ADMIN_PASSWORD: &str = "Bench-Admin-42";

/// The shape of a seeded directory.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub users: usize,
    pub groups: usize,
    pub memberships_per_user: usize,
    pub depth: usize,
}

/// A seeded, in-process gatehouse.
pub struct Seeded {
    pub services: Arc<Services>,
    pub router: axum::Router,
    pub token: String,
    pub users: Vec<UserId>,
    pub groups: Vec<GroupId>,
    /// Each user's direct groups (indexes into `groups`).
    pub memberships: Vec<Vec<usize>>,
    pub shape: Shape,
    pub seed_time: Duration,
    _dir: tempfile::TempDir,
}

pub fn env_usize(name: &str, default: usize) -> usize {
    #[expect(
        clippy::disallowed_methods,
        reason = "benchmark knobs, outside the server"
    )]
    let v = std::env::var(name).ok();
    v.and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn user(i: usize, now: i64) -> User {
    User {
        first_name: Some(format!("First{}", i % 5000)),
        last_name: Some(format!("Last{}", i % 7919)),
        created: now - (i as i64) * 60_000,
        ..User::new(
            format!("user{i:07}"),
            format!("user{i:07}@example.com"),
            now,
        )
    }
}

/// Seeds a fresh SQLite database: groups in chains `depth` deep, every user a direct
/// member of `memberships_per_user` random groups.
pub async fn seed(shape: Shape) -> Seeded {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let mut config = Config::for_database(url.clone());
    config.admin_password = Some(Secret::new(ADMIN_PASSWORD));
    let store = gatehouse::app::open_store(&url).await.expect("store");
    let services = Arc::new(
        Services::start(store, Arc::new(SystemClock), config.settings())
            .await
            .expect("services"),
    );
    gatehouse::app::bootstrap_admin(&services, &config)
        .await
        .expect("admin");
    let now = services.now();
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(42);

    let groups: Vec<Group> = (0..shape.groups)
        .map(|i| Group {
            id: GroupId::new(),
            name: format!("group{i:05}"),
            description: None,
            kind: GroupType::Contensis,
            custom: serde_json::Map::new(),
            created: now,
            modified: now,
            user_count: 0,
            child_group_count: 0,
        })
        .collect();
    let group_ids: Vec<GroupId> = groups.iter().map(|g| g.id).collect();
    let children: Vec<(GroupId, GroupId)> = (0..shape.groups)
        .filter(|i| (i + 1) % shape.depth != 0 && i + 1 < shape.groups)
        .map(|i| (group_ids[i], group_ids[i + 1]))
        .collect();
    services
        .import_batch(
            &Caller::operator(),
            &ImportBatch {
                groups,
                children,
                ..ImportBatch::default()
            },
        )
        .await
        .expect("groups");

    let mut user_ids = Vec::with_capacity(shape.users);
    let mut memberships = Vec::with_capacity(shape.users);
    let batch_size = 10_000;
    for start in (0..shape.users).step_by(batch_size) {
        let end = (start + batch_size).min(shape.users);
        let users: Vec<User> = (start..end).map(|i| user(i, now)).collect();
        let mut members = Vec::with_capacity(users.len() * shape.memberships_per_user);
        for u in &users {
            let mut mine: Vec<usize> = Vec::with_capacity(shape.memberships_per_user);
            while mine.len() < shape.memberships_per_user.min(shape.groups) {
                let g = rng.gen_range(0..shape.groups);
                if !mine.contains(&g) {
                    mine.push(g);
                }
            }
            for &g in &mine {
                members.push((group_ids[g], u.id));
            }
            user_ids.push(u.id);
            memberships.push(mine);
        }
        services
            .import_batch(
                &Caller::operator(),
                &ImportBatch {
                    users,
                    members,
                    ..ImportBatch::default()
                },
            )
            .await
            .expect("users");
    }
    let seed_time = started.elapsed();
    let token = services
        .token(TokenRequest {
            grant_type: Some("contensis_classic".into()),
            username: Some("admin".into()),
            password: Some(ADMIN_PASSWORD.into()),
            ..TokenRequest::default()
        })
        .await
        .expect("admin login")
        .access_token;
    let router = gatehouse::http::router(services.clone());
    Seeded {
        services,
        router,
        token,
        users: user_ids,
        groups: group_ids,
        memberships,
        shape,
        seed_time,
        _dir: dir,
    }
}

impl Seeded {
    /// Sends one request through the whole router in-process; returns status and time.
    pub async fn call(&self, method: Method, uri: &str) -> (StatusCode, Duration) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {}", self.token))
            .body(Body::empty())
            .expect("request");
        let t = Instant::now();
        let resp = self.router.clone().oneshot(req).await.expect("infallible");
        let status = resp.status();
        let _ = axum::body::to_bytes(resp.into_body(), usize::MAX).await;
        (status, t.elapsed())
    }

    /// The top group of the chain that group index `g` belongs to.
    pub fn chain_top(&self, g: usize) -> usize {
        g - g % self.shape.depth
    }
}

/// Latency figures over a set of samples.
pub struct Figures {
    pub count: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub per_sec: f64,
}

pub fn figures(mut samples: Vec<Duration>, wall: Duration) -> Figures {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    Figures {
        count: samples.len(),
        p50: at(0.50),
        p99: at(0.99),
        max: *samples.last().expect("samples"),
        per_sec: samples.len() as f64 / wall.as_secs_f64(),
    }
}

pub fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}
