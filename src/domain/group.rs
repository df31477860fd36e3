//! The group, and the rules of the group graph that do not need the database.

use serde_json::{Map, Value};

use super::ids::GroupId;
use crate::clock::Millis;

/// The kind of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupType {
    /// Built in (`System Administrators`): cannot be deleted or renamed.
    Sys,
    /// An ordinary group.
    Contensis,
    /// A group mirrored from an outside directory.
    External,
}

impl GroupType {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sys => "sys",
            Self::Contensis => "contensis",
            Self::External => "external",
        }
    }

    /// Parses a wire or stored name, case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "sys" => Some(Self::Sys),
            "contensis" => Some(Self::Contensis),
            "external" => Some(Self::External),
            _ => None,
        }
    }
}

/// A group as stored, with its direct counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// The id.
    pub id: GroupId,
    /// Unique case-insensitively.
    pub name: String,
    /// Optional description.
    pub description: Option<String>,
    /// The kind.
    pub kind: GroupType,
    /// Free-form JSON object owned by the client.
    pub custom: Map<String, Value>,
    /// Creation time.
    pub created: Millis,
    /// Last change.
    pub modified: Millis,
    /// Direct user members.
    pub user_count: i64,
    /// Direct child groups.
    pub child_group_count: i64,
}
