//! Membership benchmark (issue 4): `HEAD /api/security/groups/{g}/users/{u}` through the
//! whole HTTP stack in-process (token check, admin check, resolution, closure lookup),
//! on a large directory and on a small one, plus adding a child group at the bottom of
//! the deepest chain. Prints p50/p99 and throughput.
//!
//! `cargo bench --bench membership`. Sizes: BENCH_USERS (100000), BENCH_GROUPS (10000),
//! BENCH_MEMBERSHIPS_PER_USER (10), BENCH_DEPTH (20), BENCH_CHECKS (20000).

mod common;

use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use common::*;
use gatehouse::domain::group::{Group, GroupType};
use gatehouse::domain::ids::GroupId;
use gatehouse::service::Caller;
use gatehouse::store::ImportBatch;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

async fn checks(s: &Seeded, n: usize) -> Figures {
    let mut rng = StdRng::seed_from_u64(7);
    let mut samples = Vec::with_capacity(n);
    let wall = Instant::now();
    for i in 0..n {
        let u = rng.gen_range(0..s.users.len());
        // Nine in ten: the top of a chain the user is in through a deeper group (a
        // nested yes). One in ten: a random chain top (mostly a no).
        let g = if i % 10 != 0 {
            let mine = &s.memberships[u];
            s.chain_top(mine[rng.gen_range(0..mine.len())])
        } else {
            s.chain_top(rng.gen_range(0..s.groups.len()))
        };
        let uri = format!("/api/security/groups/{}/users/{}", s.groups[g], s.users[u]);
        let (status, t) = s.call(Method::HEAD, &uri).await;
        assert!(
            status == StatusCode::NO_CONTENT || status == StatusCode::NOT_FOUND,
            "unexpected {status}"
        );
        if i % 10 != 0 {
            assert_eq!(
                status,
                StatusCode::NO_CONTENT,
                "a nested member must be found"
            );
        }
        samples.push(t);
    }
    figures(samples, wall.elapsed())
}

async fn child_adds(s: &Seeded, n: usize) -> Figures {
    let now = s.services.now();
    let leaves: Vec<Group> = (0..n)
        .map(|i| Group {
            id: GroupId::new(),
            name: format!("leaf{i:05}"),
            description: None,
            kind: GroupType::Contensis,
            custom: serde_json::Map::new(),
            created: now,
            modified: now,
            user_count: 0,
            child_group_count: 0,
        })
        .collect();
    let ids: Vec<GroupId> = leaves.iter().map(|g| g.id).collect();
    s.services
        .import_batch(
            &Caller::operator(),
            &ImportBatch {
                groups: leaves,
                ..ImportBatch::default()
            },
        )
        .await
        .expect("leaves");
    let bottom = s.groups[s.shape.depth - 1];
    let mut samples = Vec::with_capacity(n);
    let wall = Instant::now();
    for leaf in ids {
        let (status, t) = s
            .call(
                Method::PUT,
                &format!("/api/security/groups/{bottom}/groups/{leaf}"),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        samples.push(t);
    }
    figures(samples, wall.elapsed())
}

fn row(label: &str, f: &Figures) {
    println!(
        "| {label:<44} | {:>7} | {:>10} | {:>10} | {:>10} | {:>9.0} |",
        f.count,
        us(f.p50),
        us(f.p99),
        us(f.max),
        f.per_sec
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let large = Shape {
            users: env_usize("BENCH_USERS", 100_000),
            groups: env_usize("BENCH_GROUPS", 10_000),
            memberships_per_user: env_usize("BENCH_MEMBERSHIPS_PER_USER", 10),
            depth: env_usize("BENCH_DEPTH", 20),
        };
        let small = Shape {
            users: 1_000,
            ..large
        };
        let n = env_usize("BENCH_CHECKS", 20_000);
        let mut results = Vec::new();
        for shape in [large, small] {
            let s = seed(shape).await;
            println!(
                "seeded {} users, {} groups, {} memberships, chains {} deep in {:.1} s",
                shape.users,
                shape.groups,
                shape.users * shape.memberships_per_user,
                shape.depth,
                s.seed_time.as_secs_f64()
            );
            // Warm the caches the same way for both sizes: the page caches, and the group
            // graph the store reads in the background after the first check (~100 ms
            // for the large graph).
            let _ = checks(&s, 1_000).await;
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            let _ = checks(&s, 1_000).await;
            let check = checks(&s, n).await;
            let adds = child_adds(&s, 200).await;
            results.push((shape, check, adds));
        }
        println!();
        println!(
            "| {:<44} | {:>7} | {:>10} | {:>10} | {:>10} | {:>9} |",
            "operation (in-process, sequential)", "count", "p50", "p99", "max", "req/s"
        );
        println!("|{}|", "-".repeat(108));
        for (shape, check, adds) in &results {
            row(
                &format!("HEAD nested member check, {} users", shape.users),
                check,
            );
            row(
                &format!(
                    "PUT child group at depth {}, {} users",
                    shape.depth, shape.users
                ),
                adds,
            );
        }
        let (big, small) = (&results[0].1, &results[1].1);
        let ratio = big.p99.as_secs_f64() / small.p99.as_secs_f64();
        println!();
        println!(
            "check p99 large/small = {ratio:.2}x (target ≤ 2x); large p99 {} (target < 1 ms): {}",
            us(big.p99),
            if big.p99 < Duration::from_millis(1) && ratio <= 2.0 {
                "met"
            } else {
                "NOT met"
            }
        );
    });
}
