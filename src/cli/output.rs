//! What the directory commands (`gatehouse user …`, `gatehouse group …`) print, and how
//! they fail: aligned tables and records for people (coloured only on a terminal), the
//! API's JSON with `--json`, and [`Failure`], which carries the exit code.
//!
//! Everything here renders the API's JSON views, whichever target answered, so the
//! database and the server give the same output by construction. No rule lives here.

use std::io::{IsTerminal as _, Read as _};

use serde_json::Value;

use crate::service::Error as ServiceError;

/// Exit code of any other error (an unreachable server, a database that cannot be
/// opened, a refused token, an internal fault).
pub const EXIT_OTHER: u8 = 1;
/// Exit code of a command line that cannot be used (clap's own usage errors, and an
/// argument the service cannot read, such as a malformed ZenQL expression: HTTP 400).
pub const EXIT_USAGE: u8 = 2;
/// Exit code when a user or group that was named does not exist (HTTP 404).
pub const EXIT_NOT_FOUND: u8 = 3;
/// Exit code when a rule refused the change (HTTP 409 or 422): the last administrator,
/// a cycle, a duplicate name, the password policy; also `import --strict` with records
/// refused or in conflict.
pub const EXIT_REFUSED: u8 = 4;

/// Which exit code a failure gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// [`EXIT_NOT_FOUND`].
    NotFound,
    /// [`EXIT_REFUSED`].
    Refused,
    /// [`EXIT_USAGE`].
    Usage,
    /// [`EXIT_OTHER`].
    Other,
}

/// A command that failed, in one line of plain words naming what failed.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    /// Decides the exit code.
    pub kind: FailureKind,
    /// The line printed to stderr.
    pub message: String,
}

impl Failure {
    /// A failure of `kind`.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// An [`FailureKind::Other`] failure.
    pub fn other(message: impl Into<String>) -> Self {
        Self::new(FailureKind::Other, message)
    }

    /// A [`FailureKind::Usage`] failure.
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(FailureKind::Usage, message)
    }

    /// The process's exit code.
    pub fn exit_code(&self) -> u8 {
        match self.kind {
            FailureKind::NotFound => EXIT_NOT_FOUND,
            FailureKind::Refused => EXIT_REFUSED,
            FailureKind::Usage => EXIT_USAGE,
            FailureKind::Other => EXIT_OTHER,
        }
    }

    /// A refusal as the API sends it: its status, and the error body's `message` and
    /// `data`. Both targets end here, so they fail with the same words.
    pub fn from_api(status: u16, message: &str, data: &Value) -> Self {
        let kind = match status {
            400 => FailureKind::Usage,
            404 => FailureKind::NotFound,
            409 | 422 => FailureKind::Refused,
            _ => FailureKind::Other,
        };
        let mut text = message.trim().to_owned();
        // A bulk refusal names every identifier that was missing.
        for key in ["users", "groups"] {
            if let Some(names) = data.get(key).and_then(Value::as_array) {
                let names: Vec<String> = names
                    .iter()
                    .map(|n| format!("'{}'", clean(n.as_str().unwrap_or_default())))
                    .collect();
                text = format!(
                    "{} ({key}: {})",
                    text.trim_end_matches('.'),
                    names.join(", ")
                );
            }
        }
        if status == 401 {
            text = format!(
                "{text} The token was refused: set GATEHOUSE_TOKEN to a valid token, or \
                 GATEHOUSE_CLIENT_ID and GATEHOUSE_CLIENT_SECRET to an API key."
            );
        } else if status == 403 {
            text = format!("{text} (the credentials are not those of an administrator)");
        }
        Self::new(kind, clean(&text))
    }
}

impl From<ServiceError> for Failure {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::BadRequest(m) => Self::from_api(400, &m, &Value::Null),
            ServiceError::NotFound { message, data } => Self::from_api(404, &message, &data),
            ServiceError::Conflict(m) => Self::from_api(409, &m, &Value::Null),
            ServiceError::Invalid(f) => Self::from_api(422, &f.reason, &Value::Null),
            // The operator at the database may see a fault's cause (the API hides it).
            ServiceError::Internal(source) => Self::other(format!("internal error: {source}")),
            e => Self::other(e.to_string()),
        }
    }
}

/// Reads a password from standard input: at most 1 KiB plus a line end, the line end
/// trimmed. Empty input is refused.
pub fn read_password_stdin() -> Result<String, Failure> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .take(4096)
        .read_to_end(&mut bytes)
        .map_err(|e| {
            Failure::other(format!("cannot read the password from standard input: {e}"))
        })?;
    let text = String::from_utf8(bytes)
        .map_err(|_| Failure::usage("the password on standard input is not UTF-8"))?;
    let password = text.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        return Err(Failure::usage(
            "--password-stdin was given but standard input held no password",
        ));
    }
    Ok(password.to_owned())
}

/// Replaces control characters (a terminal's escape sequences among them) so that text
/// from the directory can never drive the terminal it is printed on.
pub fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

/// How human output is drawn.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// ANSI colours and bold: only when standard output is a terminal.
    pub colour: bool,
}

impl Style {
    /// Colour when standard output is a terminal, unless `no_colour`.
    pub fn detect(no_colour: bool) -> Self {
        Self {
            colour: !no_colour && std::io::stdout().is_terminal(),
        }
    }

    fn paint(self, sgr: &str, text: &str) -> String {
        if self.colour && !sgr.is_empty() {
            format!("\u{1b}[{sgr}m{text}\u{1b}[0m")
        } else {
            text.to_owned()
        }
    }
}

/// A table cell: text and an SGR colour code ("" for none).
type Cell = (String, &'static str);

const BOLD: &str = "1";
const GREEN: &str = "32";
const RED: &str = "31";
const YELLOW: &str = "33";
const DIM: &str = "2";

/// Cells wider than this are cut with an ellipsis.
const MAX_CELL: usize = 48;

fn cut(text: &str) -> String {
    let text = clean(text);
    if text.chars().count() <= MAX_CELL {
        text
    } else {
        let kept: String = text.chars().take(MAX_CELL - 1).collect();
        format!("{kept}…")
    }
}

/// An aligned table with a bold header row.
fn table(style: Style, headers: &[&str], rows: &[Vec<Cell>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, (text, _)) in widths.iter_mut().zip(row) {
            *w = (*w).max(text.chars().count());
        }
    }
    let line = |cells: Vec<(String, &str)>| {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, ((text, sgr), width)) in cells.into_iter().zip(&widths).enumerate() {
            let pad = if i == last {
                0
            } else {
                width - text.chars().count() + 2
            };
            out.push_str(&style.paint(sgr, &text));
            out.push_str(&" ".repeat(pad));
        }
        out.trim_end().to_owned()
    };
    let mut out = line(headers.iter().map(|h| ((*h).to_owned(), BOLD)).collect());
    out.push('\n');
    for row in rows {
        out.push_str(&line(row.clone()));
        out.push('\n');
    }
    out
}

/// `key: value` lines with the values aligned.
fn record(style: Style, pairs: &[(&str, Cell)]) -> String {
    let width = pairs
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (key, (value, sgr)) in pairs {
        let label = format!("{key}:");
        out.push_str(&style.paint(BOLD, &label));
        out.push_str(&" ".repeat(width + 2 - label.chars().count() + 1));
        out.push_str(&style.paint(sgr, &clean(value)));
        out.push('\n');
    }
    out
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn or_dash(s: String) -> String {
    if s.is_empty() { "-".into() } else { s }
}

/// A user's status in words, with the colour that says whether they can sign in.
fn user_status(user: &Value) -> Cell {
    let s = &user["status"];
    let flag = |k: &str| s[k].as_bool().unwrap_or(false);
    let mut words = Vec::new();
    if flag("suspended") {
        words.push("suspended");
    } else if !flag("active") {
        words.push("expired");
    }
    if flag("locked") {
        words.push("locked");
    }
    if flag("passwordResetRequired") {
        words.push("reset-required");
    }
    if words.is_empty() {
        ("active".into(), GREEN)
    } else if words == ["reset-required"] {
        (words.join(","), YELLOW)
    } else {
        (words.join(","), RED)
    }
}

fn full_name(user: &Value) -> String {
    let name = format!("{} {}", text(user, "firstName"), text(user, "lastName"));
    name.trim().to_owned()
}

/// A page of users as a table, with a line that says where in the list it is.
pub fn users_table(style: Style, page: &Value) -> String {
    let rows: Vec<Vec<Cell>> = items(page)
        .iter()
        .map(|u| {
            vec![
                (cut(&text(u, "username")), ""),
                (cut(&text(u, "email")), ""),
                (cut(&or_dash(full_name(u))), ""),
                user_status(u),
                (text(u, "id"), DIM),
            ]
        })
        .collect();
    let mut out = table(style, &["USERNAME", "EMAIL", "NAME", "STATUS", "ID"], &rows);
    out.push_str(&footer(page, "user"));
    out
}

/// A page of groups as a table.
pub fn groups_table(style: Style, page: &Value) -> String {
    let rows: Vec<Vec<Cell>> = items(page)
        .iter()
        .map(|g| {
            vec![
                (cut(&text(g, "name")), ""),
                (text(g, "type"), ""),
                (text(g, "userCount"), ""),
                (text(g, "childGroupCount"), ""),
                (text(g, "id"), DIM),
                (cut(&text(g, "description")), ""),
            ]
        })
        .collect();
    let mut out = table(
        style,
        &["NAME", "TYPE", "USERS", "CHILDREN", "ID", "DESCRIPTION"],
        &rows,
    );
    out.push_str(&footer(page, "group"));
    out
}

fn items(page: &Value) -> &[Value] {
    page["items"].as_array().map_or(&[], Vec::as_slice)
}

fn footer(page: &Value, noun: &str) -> String {
    let total = page["totalCount"].as_i64().unwrap_or(0);
    let shown = items(page).len();
    let index = page["pageIndex"].as_i64().unwrap_or(0);
    let pages = page["pageCount"].as_i64().unwrap_or(0);
    let plural = if total == 1 { "" } else { "s" };
    if pages > 1 || index > 0 {
        format!(
            "{shown} of {total} {noun}{plural}: page {index} of pages 0 to {} (--page N, zero-based)\n",
            (pages - 1).max(0)
        )
    } else {
        format!("{total} {noun}{plural}\n")
    }
}

/// One user, field by field.
pub fn user_record(style: Style, u: &Value) -> String {
    let provider = text(&u["credentials"]["provider"], "type");
    record(
        style,
        &[
            ("id", (text(u, "id"), "")),
            ("username", (text(u, "username"), "")),
            ("email", (text(u, "email"), "")),
            ("name", (or_dash(full_name(u)), "")),
            ("status", user_status(u)),
            ("provider", (provider, "")),
            ("created", (text(u, "created"), "")),
            ("modified", (text(u, "modified"), "")),
            ("last login", (or_dash(text(u, "lastLogin")), "")),
            (
                "password changed",
                (or_dash(text(u, "passwordChanged")), ""),
            ),
            ("expiry", (or_dash(text(u, "expiry")), "")),
            (
                "failed logins",
                (text(u, "failedLoginAttemptsSinceLastSuccess"), ""),
            ),
        ],
    )
}

/// One group, field by field.
pub fn group_record(style: Style, g: &Value) -> String {
    record(
        style,
        &[
            ("id", (text(g, "id"), "")),
            ("name", (text(g, "name"), "")),
            ("description", (or_dash(text(g, "description")), "")),
            ("type", (text(g, "type"), "")),
            ("users", (text(g, "userCount"), "")),
            ("child groups", (text(g, "childGroupCount"), "")),
            ("created", (text(g, "created"), "")),
            ("modified", (text(g, "modified"), "")),
        ],
    )
}

/// A one-line confirmation naming what changed, e.g. `suspended user 'alice' (…)`.
pub fn done(style: Style, verb: &str, noun: &str, name: &str, id: &str) -> String {
    format!(
        "{} {noun} '{}' ({id})\n",
        style.paint(GREEN, verb),
        clean(name)
    )
}

/// The `username` of a user view or `name` of a group view.
pub fn name_of(v: &Value) -> String {
    match v.get("username") {
        Some(Value::String(s)) => s.clone(),
        _ => text(v, "name"),
    }
}

/// The `id` of a view.
pub fn id_of(v: &Value) -> String {
    text(v, "id")
}

/// Prints `value` as the API's JSON (pretty, keys sorted as the API sends them).
pub fn print_json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("a JSON value serializes")
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn control_characters_never_reach_the_terminal() {
        assert_eq!(clean("a\u{1b}[2Jb\nc"), "a\u{fffd}[2Jb\u{fffd}c");
    }

    #[test]
    fn tables_align_columns_by_characters() {
        let out = table(
            Style { colour: false },
            &["A", "B"],
            &[
                vec![("ééé".into(), ""), ("x".into(), "")],
                vec![("b".into(), ""), ("y".into(), "")],
            ],
        );
        assert_eq!(out, "A    B\nééé  x\nb    y\n");
    }

    #[test]
    fn api_refusals_map_to_exit_codes_and_name_what_was_missing() {
        let f = Failure::from_api(
            404,
            "2 of the users were not found; none were added.",
            &json!({"users": ["ann", "bob"]}),
        );
        assert_eq!(f.exit_code(), EXIT_NOT_FOUND);
        assert_eq!(
            f.message,
            "2 of the users were not found; none were added (users: 'ann', 'bob')"
        );
        assert_eq!(
            Failure::from_api(409, "x", &Value::Null).exit_code(),
            EXIT_REFUSED
        );
        assert_eq!(
            Failure::from_api(422, "x", &Value::Null).exit_code(),
            EXIT_REFUSED
        );
        assert_eq!(
            Failure::from_api(400, "x", &Value::Null).exit_code(),
            EXIT_USAGE
        );
        assert_eq!(
            Failure::from_api(500, "x", &Value::Null).exit_code(),
            EXIT_OTHER
        );
    }

    #[test]
    fn status_words_say_why_a_user_cannot_sign_in() {
        let u = |s: Value| json!({ "status": s });
        let active = json!({"active": true, "suspended": false, "locked": false, "passwordResetRequired": false});
        assert_eq!(user_status(&u(active)).0, "active");
        let locked = json!({"active": false, "suspended": true, "locked": true, "passwordResetRequired": false});
        assert_eq!(user_status(&u(locked)).0, "suspended,locked");
    }
}
