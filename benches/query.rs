//! Query benchmark (issue 5): the first page of `GET /api/security/users` with `q=`
//! (substring search through the trigram index) and with ZenQL filters, ordering and
//! paging, on a directory of 1,000,000 users, through the whole HTTP stack in-process.
//!
//! `cargo bench --bench query`. Sizes: BENCH_USERS (1000000), BENCH_QUERIES (200 per case).

mod common;

use std::time::Instant;

use axum::http::{Method, StatusCode};
use common::*;

/// Percent-encodes a query-string value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let shape = Shape {
            users: env_usize("BENCH_USERS", 1_000_000),
            groups: 100,
            memberships_per_user: 0,
            depth: 20,
        };
        let n = env_usize("BENCH_QUERIES", 200);
        let s = seed(shape).await;
        println!(
            "seeded {} users in {:.1} s",
            shape.users,
            s.seed_time.as_secs_f64()
        );
        // Each case is one query shape; the terms rotate so no single page is cached.
        type Case = (&'static str, fn(usize) -> String);
        let cases: Vec<Case> = vec![
            ("q= username fragment (1,000 matches)", |i| {
                format!("q={}", enc(&format!("user{:04}", 100 + i % 800)))
            }),
            ("q= digits of a username or email (10 matches)", |i| {
                format!("q={}", enc(&format!("{:05}", 10_000 + i * 37 % 89_000)))
            }),
            ("q= last name (~127 matches), order=-created", |i| {
                format!(
                    "q={}&order=-created",
                    enc(&format!("Last{}", 1000 + i % 6000))
                )
            }),
            ("q= first name (~2,200 matches), order=lastName", |i| {
                format!(
                    "q={}&order=lastName",
                    enc(&format!("First{}", 100 + i % 400))
                )
            }),
            ("q= full email incl. the shared domain (1 match)", |i| {
                format!(
                    "q={}",
                    enc(&format!("user{:07}@example.com", i * 4999 % 1_000_000))
                )
            }),
            (
                "zenql lastName = x and created > now(-30), order=firstName",
                |i| {
                    format!(
                        "zenql={}&order=firstName",
                        enc(&format!(
                            "lastName = \"Last{}\" and created > now(-30)",
                            100 + i % 7000
                        ))
                    )
                },
            ),
            ("zenql username startsWith x, order=-created, page 2", |i| {
                format!(
                    "zenql={}&order=-created&pageIndex=2&pageSize=10",
                    enc(&format!("username startsWith \"user{:04}\"", 100 + i % 800))
                )
            }),
            ("zenql email endsWith x, order=username", |i| {
                format!(
                    "zenql={}&order=username",
                    enc(&format!(
                        "email endsWith \"{:07}@example.com\"",
                        i * 7919 % 1_000_000
                    ))
                )
            }),
        ];
        println!();
        println!(
            "| {:<62} | {:>6} | {:>10} | {:>10} | {:>10} | {:>7} |",
            "first page of GET /api/security/users (in-process)",
            "count",
            "p50",
            "p99",
            "max",
            "req/s"
        );
        println!("|{}|", "-".repeat(121));
        for (label, make) in cases {
            let mut samples = Vec::with_capacity(n);
            let wall = Instant::now();
            for i in 0..n {
                let uri = format!("/api/security/users?{}", make(i));
                let (status, t) = s.call(Method::GET, &uri).await;
                assert_eq!(status, StatusCode::OK, "{uri}");
                samples.push(t);
            }
            let f = figures(samples, wall.elapsed());
            println!(
                "| {label:<62} | {:>6} | {:>10} | {:>10} | {:>10} | {:>7.0} |",
                f.count,
                us(f.p50),
                us(f.p99),
                us(f.max),
                f.per_sec
            );
        }
    });
}
