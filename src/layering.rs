//! The layering of ARCHITECTURE.md, checked on the sources: which module may name which.
//!
//! Every `use` item of every file is read as a tree (`use crate::{a::b, c};` names
//! `crate::a` and `crate::c`), and so is every path written inline in code
//! (`crate::store::Store`); comments and string literals do not count. A rule says which
//! top-level modules of the crate, and which outside crates, a folder must not name.

use std::collections::BTreeSet;
use std::path::Path;

/// Folder (under `src/`), then what it must not name: `crate::<module>` or an outside
/// crate. Each line states a rule of ARCHITECTURE.md.
const RULES: &[(&str, &[&str])] = &[
    // The nouns and rules: no I/O, no other layer.
    (
        "domain",
        &[
            "crate::store",
            "crate::service",
            "crate::http",
            "crate::cli",
            "crate::app",
            "crate::auth",
            "crate::query",
            "axum",
            "sqlx",
            "tokio",
            "rusqlite",
        ],
    ),
    // The query languages: pure, nothing else in the crate.
    (
        "query",
        &[
            "crate::store",
            "crate::service",
            "crate::http",
            "crate::cli",
            "crate::app",
            "crate::auth",
            "crate::domain",
            "crate::clock",
            "axum",
            "sqlx",
            "tokio",
        ],
    ),
    // HTTP is a front door: it calls the service, never the store.
    ("http", &["crate::store", "crate::cli", "sqlx", "rusqlite"]),
    // SCIM is a front door of its own: the service only (its provisioning operations
    // and reads), no store, no hashing or signing, no Contensis wire types.
    (
        "http/scim",
        &[
            "crate::store",
            "crate::cli",
            "crate::auth",
            "crate::app",
            "sqlx",
            "rusqlite",
            "utoipa",
        ],
    ),
    // LDAP is a front door too: it calls the service, never the store or HTTP.
    (
        "ldap",
        &[
            "crate::store",
            "crate::http",
            "crate::cli",
            "sqlx",
            "rusqlite",
            "axum",
        ],
    ),
    // Hashing and signing know neither HTTP nor the store.
    (
        "auth",
        &[
            "crate::store",
            "crate::http",
            "crate::service",
            "crate::cli",
            "axum",
            "sqlx",
        ],
    ),
    // The service sees no HTTP types and no SQL.
    (
        "service",
        &["crate::http", "crate::cli", "axum", "sqlx", "rusqlite"],
    ),
    // The store sees no HTTP and calls no service.
    (
        "store",
        &[
            "crate::http",
            "crate::service",
            "crate::cli",
            "crate::app",
            "axum",
        ],
    ),
    // The command line is a front door like HTTP: it parses, prints (with HTTP's wire
    // views, so both show the same JSON) and calls the service, or `app` to open a
    // database; it never reaches the store or SQL.
    ("cli", &["crate::store", "sqlx", "rusqlite"]),
];

/// Strips comments and string literals (enough of Rust's lexical rules for this check:
/// line and nested block comments, normal, byte and raw strings, char literals).
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut depth = 0;
                while i < b.len() {
                    if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        i += 2;
                    } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            b'r' if matches!(b.get(i + 1), Some(b'"' | b'#'))
                && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')) =>
            {
                let mut hashes = 0;
                let mut j = i + 1;
                while b.get(j) == Some(&b'#') {
                    hashes += 1;
                    j += 1;
                }
                if b.get(j) != Some(&b'"') {
                    out.push('r');
                    i += 1;
                    continue;
                }
                j += 1;
                let close: Vec<u8> = std::iter::once(b'"')
                    .chain(std::iter::repeat_n(b'#', hashes))
                    .collect();
                while j < b.len() && !b[j..].starts_with(&close) {
                    j += 1;
                }
                i = j + close.len();
                out.push_str("\"\"");
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                out.push_str("\"\"");
            }
            // A char literal ('x', '\n', '\''), not a lifetime ('a).
            b'\'' if b.get(i + 2) == Some(&b'\'') || b.get(i + 1) == Some(&b'\\') => {
                i += 1;
                while i < b.len() && b[i] != b'\'' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                out.push_str("' '");
            }
            c => {
                out.push(c as char);
                i += 1;
            }
        }
    }
    out
}

/// The paths a `use` tree names, each to its first two segments (`crate::store`,
/// `axum::extract`, `sqlx`), with `{a, b}` groups expanded.
fn use_paths(tree: &str) -> Vec<String> {
    fn expand(prefix: &str, tree: &str, out: &mut Vec<String>) {
        let tree = tree.trim();
        if let Some(open) = tree.find('{') {
            let head = tree[..open].trim().trim_end_matches("::");
            let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
            let base = join(prefix, head);
            let mut depth = 0;
            let mut start = 0;
            for (k, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        expand(&base, &inner[start..k], out);
                        start = k + 1;
                    }
                    _ => {}
                }
            }
            expand(&base, &inner[start..], out);
        } else {
            let path = tree.split(" as ").next().unwrap_or("").trim();
            if !path.is_empty() {
                out.push(join(prefix, path));
            }
        }
    }
    fn join(prefix: &str, path: &str) -> String {
        match (prefix.is_empty(), path.is_empty()) {
            (true, _) => path.to_owned(),
            (_, true) => prefix.to_owned(),
            _ => format!("{prefix}::{path}"),
        }
    }
    let mut out = Vec::new();
    expand("", tree, &mut out);
    out
}

/// Everything a file names: its `use` items' paths and the `crate::…` paths written
/// inline, as `crate::<module>` or `<outside crate>`, plus the outside crates named
/// inline as `name::`.
fn names(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut add = |path: &str| {
        let mut parts = path.trim_start_matches("::").split("::");
        let first = parts.next().unwrap_or("").trim().to_owned();
        if first == "crate" {
            if let Some(module) = parts.next() {
                found.insert(format!("crate::{}", module.trim()));
            }
        } else if !first.is_empty() {
            found.insert(first);
        }
    };
    let mut rest = code;
    while let Some(at) = find_word(rest, "use") {
        let after = &rest[at + 3..];
        let end = after.find(';').unwrap_or(after.len());
        for path in use_paths(&after[..end]) {
            add(&path);
        }
        rest = &after[end..];
    }
    // Paths written inline: an identifier followed by `::`.
    let bytes = code.as_bytes();
    let mut i = 0;
    while let Some(pos) = code[i..].find("::") {
        let end = i + pos;
        let mut start = end;
        while start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
            start -= 1;
        }
        let before_ok = start == 0 || !matches!(bytes[start - 1], b':' | b'.');
        if start < end && before_ok {
            let tail_end = code[end + 2..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map_or(code.len(), |k| end + 2 + k);
            add(&code[start..tail_end]);
        }
        i = end + 2;
    }
    found
}

/// Where `word` stands as a whole word (a `use` keyword, not `reuse` or `used`).
fn find_word(text: &str, word: &str) -> Option<usize> {
    let b = text.as_bytes();
    let mut from = 0;
    while let Some(k) = text[from..].find(word) {
        let at = from + k;
        let before = at == 0 || !(b[at - 1].is_ascii_alphanumeric() || b[at - 1] == b'_');
        let after = b
            .get(at + word.len())
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || *c == b'_'));
        if before && after {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a source folder") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_folder_names_only_what_its_layer_may() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut broken = Vec::new();
    for (folder, forbidden) in RULES {
        let mut files = Vec::new();
        rust_files(&src.join(folder), &mut files);
        assert!(!files.is_empty(), "no sources under src/{folder}");
        for file in files {
            let text = std::fs::read_to_string(&file).expect("a readable source");
            let named = names(&code_only(&text));
            for bad in *forbidden {
                if named.contains(*bad) {
                    broken.push(format!("{} names {bad}", file.display()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "layering broken:\n{}", broken.join("\n"));
}

#[test]
fn every_folder_has_a_rule() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(&src).expect("src/") {
        let path = entry.expect("a directory entry").path();
        if !path.is_dir() {
            continue;
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !RULES.iter().any(|(folder, _)| *folder == name) {
            missing.push(name.to_owned());
        }
    }
    assert!(
        missing.is_empty(),
        "folders of src/ without a layering rule: {missing:?}"
    );
}

#[test]
fn handlers_hold_no_sql() {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http"),
        &mut files,
    );
    for file in files {
        let text = std::fs::read_to_string(&file).expect("a readable source");
        for sql in ["SELECT ", "INSERT ", "UPDATE ", "DELETE FROM"] {
            assert!(!text.contains(sql), "{} holds SQL ({sql})", file.display());
        }
    }
}

#[test]
fn the_checker_reads_use_trees_and_inline_paths_but_not_comments() {
    let code = code_only(
        "use crate::{a::b, c::{d, e as f}};\n\
         pub use axum::Json;\n\
         // use crate::commented;\n\
         /* crate::blocked::X */\n\
         let s = \"crate::quoted::x\";\n\
         let r = r#\"crate::raw\"#;\n\
         fn f<'a>(x: &'a str) -> char { let _ = crate::inline::g(); 'c' }\n\
         let v = self.x::<u8>(); let reused = 1;",
    );
    let got = names(&code);
    for want in ["crate::a", "crate::c", "axum", "crate::inline"] {
        assert!(got.contains(want), "{want} missing from {got:?}");
    }
    for not in [
        "crate::commented",
        "crate::blocked",
        "crate::quoted",
        "crate::raw",
    ] {
        assert!(!got.contains(not), "{not} found in {got:?}");
    }
}
