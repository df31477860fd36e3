//! `docs/guide.md` is checked, not trusted: its ```sh blocks run, top to bottom, as one
//! bash script against a live server, and every endpoint of the spec must have a curl
//! example there. A changed answer or a new endpoint without an example fails here.

use std::process::Command;

use crate::helpers::{ADMIN_PASSWORD, TestApp};
use crate::openapi::{GATEHOUSE, OTHER, SECURITY};

const GUIDE: &str = include_str!("../../docs/guide.md");

/// The bodies of the guide's ```sh blocks, in order.
fn sh_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match current.as_mut() {
            None if line.trim_end() == "```sh" => current = Some(String::new()),
            None => {}
            Some(_) if line.trim_end() == "```" => blocks.extend(current.take()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    assert!(
        current.is_none(),
        "an unclosed ```sh block in docs/guide.md"
    );
    blocks
}

/// Shell commands, one per entry: continuation lines (`\`) and lines inside a
/// single-quoted string are joined to the line they continue.
fn commands(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in script.lines() {
        let continued = line.ends_with('\\');
        current.push_str(line.strip_suffix('\\').unwrap_or(line));
        current.push(' ');
        if !continued && current.matches('\'').count() % 2 == 0 {
            out.push(std::mem::take(&mut current));
        }
    }
    out.push(current);
    out.retain(|c| !c.trim().is_empty());
    out
}

/// The HTTP method a curl command line sends: `-X M`, `-I` for HEAD, `-G` for GET, a
/// data flag for POST, GET otherwise.
fn method(command: &str) -> String {
    let words: Vec<&str> = command.split_whitespace().collect();
    let mut data = false;
    for (i, w) in words.iter().enumerate() {
        match *w {
            "-X" | "--request" => {
                return words
                    .get(i + 1)
                    .expect("-X names a method")
                    .trim_matches(['"', '\''])
                    .to_owned();
            }
            "-I" | "--head" => return "HEAD".into(),
            "-G" | "--get" => return "GET".into(),
            "-d" | "--data" | "--data-raw" | "--data-urlencode" | "--data-binary" | "--json" => {
                data = true;
            }
            _ => {}
        }
    }
    if data { "POST" } else { "GET" }.into()
}

/// The paths (without query) of the `$B/...` URLs a command names.
fn paths(command: &str) -> Vec<String> {
    command
        .split("$B")
        .skip(1)
        .filter(|rest| rest.starts_with('/'))
        .map(|rest| {
            let end = rest
                .find(|c: char| c == '?' || c == '"' || c == '\'' || c.is_whitespace())
                .unwrap_or(rest.len());
            rest[..end].to_owned()
        })
        .collect()
}

/// Whether a concrete path fits a template whose `{...}` segments match any value.
fn fits(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    t.len() == p.len()
        && t.iter().zip(&p).all(|(t, p)| {
            if t.starts_with('{') && t.ends_with('}') {
                !p.is_empty()
            } else {
                t == p
            }
        })
}

/// The (METHOD, path) pairs of the guide's examples.
fn examples() -> Vec<(String, String)> {
    sh_blocks(GUIDE)
        .iter()
        .flat_map(|b| commands(b))
        .flat_map(|c| {
            let m = method(&c);
            paths(&c).into_iter().map(move |p| (m.clone(), p))
        })
        .collect()
}

#[test]
fn the_example_parser_reads_methods_and_paths() {
    assert_eq!(method(r#"expect 200 -X PUT "$B/x" -d '{}'"#), "PUT");
    assert_eq!(method(r#"expect 204 -I "$B/x""#), "HEAD");
    assert_eq!(
        method(r#"expect 200 -G "$B/x" --data-urlencode 'q=1'"#),
        "GET"
    );
    assert_eq!(method(r#"expect 201 "$B/x" -d '{}'"#), "POST");
    assert_eq!(method(r#"expect 200 "$B/x""#), "GET");
    assert_eq!(
        paths(r#"expect 200 "$B/api/security/users/$USER_ID?q=a" x"#),
        ["/api/security/users/$USER_ID"]
    );
    assert!(fits("/a/{user}/b", "/a/tdurden/b"));
    assert!(!fits("/a/{user}", "/a/tdurden/b"));
    assert_eq!(commands("a \\\n b\nc '{\n}'\nd\n").len(), 3);
}

#[test]
fn every_endpoint_of_the_spec_has_a_curl_example_in_the_guide() {
    let examples = examples();
    let wanted = SECURITY
        .iter()
        .chain(GATEHOUSE)
        .map(|(m, p)| (*m, format!("/api/security{p}")))
        .chain(OTHER.iter().map(|(m, p)| (*m, (*p).to_owned())));
    let missing: Vec<String> = wanted
        .filter(|(m, t)| !examples.iter().any(|(em, ep)| em == m && fits(t, ep)))
        .map(|(m, t)| format!("{m} {t}"))
        .collect();
    assert!(
        missing.is_empty(),
        "endpoints without a curl example in docs/guide.md: {missing:#?}\nexamples found: {examples:#?}"
    );
    assert!(
        examples
            .iter()
            .any(|(_, p)| p.starts_with("/api/management/security/")),
        "the guide shows the /api/management/security prefix once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guide_examples_run_against_a_live_server() {
    // Served: curl runs the examples.
    let app = TestApp::serve().await;
    let script = format!("set -euo pipefail\n{}", sh_blocks(GUIDE).concat());
    let path = app.dir.path().join("guide.sh");
    std::fs::write(&path, &script).expect("the script is written");
    let (base, token) = (app.base().to_owned(), app.admin.clone());
    let metrics = app.metrics_base().expect("a metrics listener").to_owned();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .arg(&path)
            .env("B", base)
            .env("METRICS", metrics)
            .env("TOKEN", token)
            .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
            .output()
            .expect("bash runs")
    })
    .await
    .expect("the script finishes");
    assert!(
        out.status.success(),
        "docs/guide.md's examples failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
