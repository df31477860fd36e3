//! The one error type of the query front ends (ZenQL and the JSON `where`/`orderBy`).
//!
//! Role: say what is wrong with a client's query in words fit for a 400 response body,
//! pointing at a byte offset (ZenQL, `order=`) or a JSON path (`where[1].field`).
//! It must not carry internals (SQL, database errors): queries fail here, before any SQL
//! exists, and the store never produces a `QueryError`.

use std::fmt;

/// Where in the client's input an error was found.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Location {
    /// A byte offset into a text query (ZenQL or the `order=` parameter).
    Position(usize),
    /// A path into a JSON query, such as `where[1].field`.
    Path(String),
}

/// A malformed or invalid query. `Display` gives the message for the API client,
/// e.g. `unknown field 'frstName' at position 0` or `unknown field 'x' at where[0].field`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct QueryError {
    message: String,
    location: Option<Location>,
}

impl QueryError {
    /// An error at a byte offset of a text query.
    pub fn at(position: usize, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            location: Some(Location::Position(position)),
        }
    }

    /// An error about the query as a whole, with no one place to point at.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            location: None,
        }
    }

    /// An error at a path of a JSON query.
    pub fn at_path(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            location: Some(Location::Path(path.into())),
        }
    }

    /// The message without its location.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The byte offset, for errors in a text query.
    pub fn position(&self) -> Option<usize> {
        match &self.location {
            Some(Location::Position(p)) => Some(*p),
            _ => None,
        }
    }

    /// The JSON path, for errors in a JSON query.
    pub fn path(&self) -> Option<&str> {
        match &self.location {
            Some(Location::Path(p)) => Some(p),
            _ => None,
        }
    }

    fn render(&self) -> Rendered<'_> {
        Rendered(self)
    }
}

struct Rendered<'a>(&'a QueryError);

impl fmt::Display for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self.0;
        // Through the accessors, so the text and the structured parts cannot drift apart.
        match (e.position(), e.path()) {
            (Some(p), _) => write!(f, "{} at position {p}", e.message()),
            (None, Some(p)) => write!(f, "{} at {p}", e.message()),
            (None, None) => write!(f, "{}", e.message()),
        }
    }
}
