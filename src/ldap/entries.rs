//! The entries of the tree: the root DSE, the subschema entry, the base and its two
//! organizational units (held in memory), and one entry per user and per group; and
//! which of their attributes a search asks for (`*`, `+`, `1.1`, names).

use ldap3_proto::proto::{LdapPartialAttribute, LdapSearchResultEntry};

use super::dn::Tree;
use super::filter::generalized_time;
use crate::domain::group::Group;
use crate::domain::user::User;

/// OID of the Who am I extended operation (RFC 4532).
pub const OID_WHOAMI: &str = "1.3.6.1.4.1.4203.1.11.3";
/// OID of the password modify extended operation (RFC 3062).
pub const OID_PASSWORD_MODIFY: &str = "1.3.6.1.4.1.4203.1.11.1";
/// OID of the StartTLS extended operation (RFC 4511 §4.14).
pub const OID_START_TLS: &str = "1.3.6.1.4.1.1466.20037";
/// OID of the simple paged results control (RFC 2696).
pub const OID_PAGED_RESULTS: &str = "1.2.840.113556.1.4.319";

/// Attributes that are operational (RFC 4512 §3.4): returned only when named or with `+`.
const OPERATIONAL: &[&str] = &[
    "entryuuid",
    "createtimestamp",
    "modifytimestamp",
    "entrydn",
    "hassubordinates",
    "subschemasubentry",
    "structuralobjectclass",
];

/// An entry's attributes: names and values.
pub type Attrs = Vec<(&'static str, Vec<String>)>;

/// Which attributes a search asked for.
#[derive(Debug, Clone)]
pub struct Selection {
    all_user: bool,
    all_operational: bool,
    names: Vec<String>,
    types_only: bool,
}

impl Selection {
    /// Reads a search's attribute list: empty or `*` for every user attribute, `+` for
    /// every operational one, `1.1` for none, and names (case-insensitive).
    pub fn new(attrs: &[String], types_only: bool) -> Self {
        let mut s = Self {
            all_user: attrs.is_empty(),
            all_operational: false,
            names: Vec::new(),
            types_only,
        };
        for a in attrs {
            match a.as_str() {
                "*" => s.all_user = true,
                "+" => s.all_operational = true,
                "1.1" => {}
                name => s.names.push(name.to_ascii_lowercase()),
            }
        }
        s
    }

    /// Whether the attribute `name` (canonical spelling) is wanted.
    pub fn wants(&self, name: &str) -> bool {
        let lower = name.to_ascii_lowercase();
        if self.names.contains(&lower) {
            return true;
        }
        if OPERATIONAL.contains(&lower.as_str()) {
            self.all_operational
        } else {
            self.all_user
        }
    }

    /// Whether the search asked for all user or all operational attributes (or gave no
    /// list): the root DSE and the subschema entry then show everything they have.
    pub fn wants_all(&self) -> bool {
        self.all_user || self.all_operational
    }

    /// The same selection with every attribute, user and operational.
    pub fn everything(&self) -> Self {
        Self {
            all_user: true,
            all_operational: true,
            names: Vec::new(),
            types_only: self.types_only,
        }
    }

    /// Whether a user's `memberOf` or a group's `member` must be read.
    pub fn wants_any(&self, names: &[&str]) -> bool {
        names.iter().any(|n| self.wants(n))
    }

    fn attr(&self, name: &str, vals: Vec<String>, out: &mut Vec<LdapPartialAttribute>) {
        if vals.is_empty() || !self.wants(name) {
            return;
        }
        out.push(LdapPartialAttribute {
            atype: name.to_owned(),
            vals: if self.types_only {
                Vec::new()
            } else {
                vals.into_iter().map(String::into_bytes).collect()
            },
        });
    }

    /// An entry with the wanted attributes of `attrs`.
    pub fn entry(&self, dn: String, attrs: Vec<(&str, Vec<String>)>) -> LdapSearchResultEntry {
        let mut out = Vec::new();
        for (name, vals) in attrs {
            self.attr(name, vals, &mut out);
        }
        LdapSearchResultEntry {
            dn,
            attributes: out,
        }
    }
}

fn one(s: impl Into<String>) -> Vec<String> {
    vec![s.into()]
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// A user's display name: first and last name, else the username.
pub fn display_name(user: &User) -> String {
    let full = [user.first_name.as_deref(), user.last_name.as_deref()]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if full.is_empty() {
        user.username.clone()
    } else {
        full
    }
}

/// A user's attributes. `member_of` are the DNs of every group the user is in.
pub fn user_attrs(tree: &Tree, user: &User, member_of: Vec<String>) -> Attrs {
    let dn = tree.user_dn(&user.username);
    let mut attrs = vec![
        (
            "objectClass",
            strings(&["top", "person", "organizationalPerson", "inetOrgPerson"]),
        ),
        ("uid", one(&user.username)),
        ("cn", one(&user.username)),
        ("mail", one(&user.email)),
        ("displayName", one(display_name(user))),
    ];
    if let Some(first) = user.first_name.as_ref().filter(|s| !s.is_empty()) {
        attrs.push(("givenName", one(first)));
    }
    if let Some(last) = user.last_name.as_ref().filter(|s| !s.is_empty()) {
        attrs.push(("sn", one(last)));
    }
    attrs.extend([
        ("memberOf", member_of),
        ("entryUUID", one(user.id.to_string())),
        ("createTimestamp", one(generalized_time(user.created))),
        ("modifyTimestamp", one(generalized_time(user.modified))),
        ("entryDN", one(dn)),
        ("hasSubordinates", one("FALSE")),
        ("structuralObjectClass", one("inetOrgPerson")),
        ("subschemaSubentry", one("cn=Subschema")),
    ]);
    attrs
}

/// A group's attributes. `members` are the DNs of its direct users and child groups.
pub fn group_attrs(tree: &Tree, group: &Group, members: Vec<String>) -> Attrs {
    let dn = tree.group_dn(&group.name);
    let mut attrs = vec![
        (
            "objectClass",
            strings(&["top", "groupOfNames", "groupOfUniqueNames"]),
        ),
        ("cn", one(&group.name)),
    ];
    if let Some(d) = group.description.as_ref().filter(|s| !s.is_empty()) {
        attrs.push(("description", one(d)));
    }
    attrs.extend([
        ("member", members.clone()),
        ("uniqueMember", members),
        ("entryUUID", one(group.id.to_string())),
        ("createTimestamp", one(generalized_time(group.created))),
        ("modifyTimestamp", one(generalized_time(group.modified))),
        ("entryDN", one(dn)),
        ("hasSubordinates", one("FALSE")),
        ("structuralObjectClass", one("groupOfNames")),
        ("subschemaSubentry", one("cn=Subschema")),
    ]);
    attrs
}

/// The base entry's attributes.
pub fn base_attrs(tree: &Tree) -> Attrs {
    let first = &tree.base.0[0];
    let (class, attr): (&str, &'static str) = match first.attr.as_str() {
        "dc" => ("domain", "dc"),
        "o" => ("organization", "o"),
        "ou" => ("organizationalUnit", "ou"),
        "c" => ("country", "c"),
        "l" => ("locality", "l"),
        _ => ("extensibleObject", "cn"),
    };
    let mut classes = strings(&["top", class]);
    if attr == "dc" {
        classes.push("dcObject".into());
    }
    vec![
        ("objectClass", classes),
        (attr, one(&first.value)),
        ("entryDN", one(&tree.base_text)),
        ("hasSubordinates", one("TRUE")),
        ("subschemaSubentry", one("cn=Subschema")),
    ]
}

/// An organizational unit's attributes (`people` or `groups`).
pub fn ou_attrs(tree: &Tree, ou: &str) -> Attrs {
    vec![
        ("objectClass", strings(&["top", "organizationalUnit"])),
        ("ou", one(ou)),
        ("entryDN", one(format!("ou={ou},{}", tree.base_text))),
        ("hasSubordinates", one("TRUE")),
        ("subschemaSubentry", one("cn=Subschema")),
    ]
}

/// The root DSE (RFC 4512 §5.1). Its attributes are all returned for `*`, `+` or no
/// list, since clients read it to discover the server.
pub fn root_dse_attrs(tree: &Tree, tls: bool) -> Attrs {
    let mut extensions = strings(&[OID_WHOAMI, OID_PASSWORD_MODIFY]);
    if tls {
        extensions.push(OID_START_TLS.into());
    }
    vec![
        ("objectClass", strings(&["top"])),
        ("namingContexts", one(&tree.base_text)),
        ("supportedLDAPVersion", one("3")),
        ("supportedExtension", extensions),
        ("supportedControl", one(OID_PAGED_RESULTS)),
        ("supportedFeatures", one("1.3.6.1.4.1.4203.1.5.1")),
        ("subschemaSubentry", one("cn=Subschema")),
        ("vendorName", one("gatehouse")),
        ("vendorVersion", one(env!("CARGO_PKG_VERSION"))),
    ]
}

/// The subschema entry (RFC 4512 §4.2): the attribute types and object classes the
/// tree uses, in the standard definitions.
pub fn subschema_attrs() -> Attrs {
    const ATTRIBUTE_TYPES: &[&str] = &[
        "( 2.5.4.0 NAME 'objectClass' EQUALITY objectIdentifierMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.38 )",
        "( 2.5.4.3 NAME 'cn' SUP name )",
        "( 2.5.4.4 NAME 'sn' SUP name )",
        "( 2.5.4.11 NAME 'ou' SUP name )",
        "( 2.5.4.13 NAME 'description' EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )",
        "( 2.5.4.31 NAME 'member' SUP distinguishedName )",
        "( 2.5.4.41 NAME 'name' EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )",
        "( 2.5.4.42 NAME 'givenName' SUP name )",
        "( 2.5.4.49 NAME 'distinguishedName' EQUALITY distinguishedNameMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.12 )",
        "( 2.5.4.50 NAME 'uniqueMember' EQUALITY uniqueMemberMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.34 )",
        "( 0.9.2342.19200300.100.1.1 NAME 'uid' EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )",
        "( 0.9.2342.19200300.100.1.3 NAME 'mail' EQUALITY caseIgnoreIA5Match SUBSTR caseIgnoreIA5SubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.26 )",
        "( 0.9.2342.19200300.100.1.25 NAME 'dc' EQUALITY caseIgnoreIA5Match SYNTAX 1.3.6.1.4.1.1466.115.121.1.26 SINGLE-VALUE )",
        "( 2.16.840.1.113730.3.1.241 NAME 'displayName' EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )",
        "( 1.2.840.113556.1.2.102 NAME 'memberOf' EQUALITY distinguishedNameMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.12 NO-USER-MODIFICATION )",
        "( 1.3.6.1.1.16.4 NAME 'entryUUID' EQUALITY UUIDMatch ORDERING UUIDOrderingMatch SYNTAX 1.3.6.1.1.16.1 SINGLE-VALUE NO-USER-MODIFICATION USAGE directoryOperation )",
        "( 2.5.18.1 NAME 'createTimestamp' EQUALITY generalizedTimeMatch ORDERING generalizedTimeOrderingMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.24 SINGLE-VALUE NO-USER-MODIFICATION USAGE directoryOperation )",
        "( 2.5.18.2 NAME 'modifyTimestamp' EQUALITY generalizedTimeMatch ORDERING generalizedTimeOrderingMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.24 SINGLE-VALUE NO-USER-MODIFICATION USAGE directoryOperation )",
    ];
    const OBJECT_CLASSES: &[&str] = &[
        "( 2.5.6.0 NAME 'top' ABSTRACT MUST objectClass )",
        "( 2.5.6.6 NAME 'person' SUP top STRUCTURAL MUST ( sn $ cn ) MAY ( description ) )",
        "( 2.5.6.7 NAME 'organizationalPerson' SUP person STRUCTURAL MAY ( ou ) )",
        "( 2.16.840.1.113730.3.2.2 NAME 'inetOrgPerson' SUP organizationalPerson STRUCTURAL MAY ( displayName $ givenName $ mail $ uid ) )",
        "( 2.5.6.9 NAME 'groupOfNames' SUP top STRUCTURAL MUST ( member $ cn ) MAY ( description ) )",
        "( 2.5.6.17 NAME 'groupOfUniqueNames' SUP top STRUCTURAL MUST ( uniqueMember $ cn ) MAY ( description ) )",
        "( 2.5.6.5 NAME 'organizationalUnit' SUP top STRUCTURAL MUST ou )",
        "( 0.9.2342.19200300.100.4.13 NAME 'domain' SUP top STRUCTURAL MUST dc )",
    ];
    vec![
        (
            "objectClass",
            strings(&["top", "subentry", "subschema", "extensibleObject"]),
        ),
        ("cn", one("Subschema")),
        ("attributeTypes", strings(ATTRIBUTE_TYPES)),
        ("objectClasses", strings(OBJECT_CLASSES)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_selection_follows_rfc_4511() {
        let all = Selection::new(&[], false);
        assert!(all.wants("uid") && all.wants("memberOf"));
        assert!(
            !all.wants("entryUUID"),
            "operational attributes need + or a name"
        );
        let star = Selection::new(&["*".into()], false);
        assert!(star.wants("mail") && !star.wants("createTimestamp"));
        let plus = Selection::new(&["+".into()], false);
        assert!(plus.wants("entryUUID") && !plus.wants("uid"));
        let none = Selection::new(&["1.1".into()], false);
        assert!(!none.wants("uid") && !none.wants("entryUUID"));
        let named = Selection::new(&["UID".into(), "entryuuid".into()], false);
        assert!(named.wants("uid") && named.wants("entryUUID") && !named.wants("mail"));
    }

    #[test]
    fn entries_hold_only_the_wanted_attributes_and_types_only_drops_values() {
        let tree = Tree::new("dc=example,dc=com").unwrap();
        let mut user = User::new("a,b".into(), "ab@example.com".into(), 1_706_697_000_000);
        user.first_name = Some("Ann".into());
        let sel = Selection::new(
            &["uid".into(), "displayName".into(), "createTimestamp".into()],
            false,
        );
        let e = sel.entry(
            tree.user_dn(&user.username),
            user_attrs(&tree, &user, Vec::new()),
        );
        assert_eq!(e.dn, r"uid=a\,b,ou=people,dc=example,dc=com");
        let names: Vec<&str> = e.attributes.iter().map(|a| a.atype.as_str()).collect();
        assert_eq!(names, ["uid", "displayName", "createTimestamp"]);
        assert_eq!(e.attributes[1].vals, vec![b"Ann".to_vec()]);
        assert_eq!(e.attributes[2].vals, vec![b"20240131103000Z".to_vec()]);
        let types = Selection::new(&["uid".into()], true);
        let e = types.entry(String::new(), user_attrs(&tree, &user, Vec::new()));
        assert!(e.attributes[0].vals.is_empty());
    }
}
