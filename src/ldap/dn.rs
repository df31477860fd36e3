//! Distinguished names (RFC 4514): parsing what clients send, escaping what the tree
//! shows, and where a DN sits in the tree.
//!
//! A DN is a list of RDNs, most specific first. Attribute types compare
//! case-insensitively; values as the folded (lower-case) text, which is how gatehouse
//! compares usernames and group names too.

use std::fmt;

/// The longest DN read from a client, in bytes; longer ones are invalid.
pub const MAX_DN: usize = 4096;

/// One `type=value` pair (multi-valued RDNs are read as their first pair).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rdn {
    /// The attribute type, lower-cased (`uid`, `cn`, `ou`, `dc`).
    pub attr: String,
    /// The value, unescaped, as written.
    pub value: String,
}

/// A parsed DN, most specific RDN first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dn(pub Vec<Rdn>);

impl Dn {
    /// Parses a DN string (RFC 4514 §3): `,` (or `;`) between RDNs, `+` between the
    /// pairs of a multi-valued RDN, `\` escapes a special character or two hex digits,
    /// `#` starts a hex-encoded BER value (refused: no gatehouse value is binary).
    /// `None` when it is not a DN.
    pub fn parse(s: &str) -> Option<Dn> {
        if s.len() > MAX_DN {
            return None;
        }
        let s = s.trim();
        if s.is_empty() {
            return Some(Dn::default());
        }
        let mut rdns = Vec::new();
        let mut chars = s.char_indices().peekable();
        loop {
            // Attribute type.
            let mut attr = String::new();
            while let Some(&(_, c)) = chars.peek() {
                if c == '=' {
                    break;
                }
                attr.push(c);
                chars.next();
            }
            chars.next()?; // '='
            let attr = attr.trim().to_ascii_lowercase();
            let valid_type = !attr.is_empty()
                && attr
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
            if !valid_type {
                return None;
            }
            // Value.
            while chars.peek().is_some_and(|&(_, c)| c == ' ') {
                chars.next();
            }
            if chars.peek().is_some_and(|&(_, c)| c == '#') {
                return None;
            }
            let mut bytes: Vec<u8> = Vec::new();
            // Bytes written by an escape: trailing spaces among them are kept.
            let mut kept = 0usize;
            let mut end = None;
            while let Some((_, c)) = chars.next() {
                match c {
                    '\\' => {
                        let (_, a) = chars.next()?;
                        if a.is_ascii_hexdigit() {
                            let (_, b) = chars.next()?;
                            let hex = [a as u8, b as u8];
                            let hex = std::str::from_utf8(&hex).ok()?;
                            bytes.push(u8::from_str_radix(hex, 16).ok()?);
                        } else {
                            let mut buf = [0u8; 4];
                            bytes.extend_from_slice(a.encode_utf8(&mut buf).as_bytes());
                        }
                        kept = bytes.len();
                    }
                    ',' | ';' | '+' => {
                        end = Some(c);
                        break;
                    }
                    '"' | '<' | '>' => return None,
                    c => {
                        let mut buf = [0u8; 4];
                        bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    }
                }
            }
            while bytes.len() > kept && bytes.last() == Some(&b' ') {
                bytes.pop();
            }
            let value = String::from_utf8(bytes).ok()?;
            match end {
                // The other pairs of a multi-valued RDN are skipped.
                Some('+') => {
                    for (_, c) in chars.by_ref() {
                        if c == ',' || c == ';' {
                            break;
                        }
                    }
                    rdns.push(Rdn { attr, value });
                }
                Some(_) => rdns.push(Rdn { attr, value }),
                None => {
                    rdns.push(Rdn { attr, value });
                    break;
                }
            }
            // A trailing separator is not a DN.
            chars.peek()?;
        }
        Some(Dn(rdns))
    }

    /// Whether this DN ends with `suffix` (equal RDNs, compared folded).
    pub fn ends_with(&self, suffix: &Dn) -> bool {
        self.0.len() >= suffix.0.len()
            && self.0[self.0.len() - suffix.0.len()..]
                .iter()
                .zip(&suffix.0)
                .all(|(a, b)| a.attr == b.attr && a.value.to_lowercase() == b.value.to_lowercase())
    }

    /// The RDNs in front of `suffix`, if this DN ends with it.
    pub fn strip_suffix(&self, suffix: &Dn) -> Option<&[Rdn]> {
        self.ends_with(suffix)
            .then(|| &self.0[..self.0.len() - suffix.0.len()])
    }

    /// Whether this is the empty DN (the root DSE).
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Dn {
    /// The DN in RFC 4514 form, values escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, rdn) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}={}", rdn.attr, escape_value(&rdn.value))?;
        }
        Ok(())
    }
}

/// Escapes an attribute value for a DN (RFC 4514 §2.4): `"` `+` `,` `;` `<` `>` `\`
/// anywhere, `#` and a space at the start, a space at the end, and NUL.
pub fn escape_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 4);
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

/// Where a DN sits in gatehouse's tree under a base DN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// `""`: the root DSE.
    RootDse,
    /// `cn=Subschema`.
    Subschema,
    /// The base DN itself.
    Base,
    /// `ou=people,<base>`.
    People,
    /// `ou=groups,<base>`.
    Groups,
    /// `uid=<name>,ou=people,<base>` (or `mail=`, `cn=`, `entryUUID=`).
    User(String),
    /// `cn=<name>,ou=groups,<base>`.
    Group(String),
    /// `cn=<client id>,ou=services,<base>`: an API key's service account.
    Service(String),
    /// Under the base, but no entry gatehouse has: the longest existing parent.
    Missing(Box<Place>),
    /// Not under the base at all.
    Outside,
}

/// The tree's fixed names.
#[derive(Debug, Clone)]
pub struct Tree {
    /// The base DN, parsed.
    pub base: Dn,
    /// The base DN as configured (for display).
    pub base_text: String,
}

impl Tree {
    /// A tree under `base` (e.g. `dc=example,dc=com`); `None` when it is not a DN or empty.
    pub fn new(base: &str) -> Option<Self> {
        let dn = Dn::parse(base)?;
        if dn.is_root() {
            return None;
        }
        Some(Self {
            base_text: dn.to_string(),
            base: dn,
        })
    }

    /// `ou=people,<base>`.
    pub fn people(&self) -> String {
        format!("ou=people,{}", self.base_text)
    }

    /// `ou=groups,<base>`.
    pub fn groups(&self) -> String {
        format!("ou=groups,{}", self.base_text)
    }

    /// The DN of a user's entry.
    pub fn user_dn(&self, username: &str) -> String {
        format!(
            "uid={},ou=people,{}",
            escape_value(username),
            self.base_text
        )
    }

    /// The DN of a group's entry.
    pub fn group_dn(&self, name: &str) -> String {
        format!("cn={},ou=groups,{}", escape_value(name), self.base_text)
    }

    /// The DN an API key binds as.
    pub fn service_dn(&self, client_id: &str) -> String {
        format!(
            "cn={},ou=services,{}",
            escape_value(client_id),
            self.base_text
        )
    }

    /// Where a DN sits.
    pub fn place(&self, dn: &Dn) -> Place {
        if dn.is_root() {
            return Place::RootDse;
        }
        if dn.0.len() == 1
            && dn.0[0].attr == "cn"
            && dn.0[0].value.eq_ignore_ascii_case("subschema")
        {
            return Place::Subschema;
        }
        let Some(front) = dn.strip_suffix(&self.base) else {
            return Place::Outside;
        };
        let ou = |rdn: &Rdn, name: &str| rdn.attr == "ou" && rdn.value.eq_ignore_ascii_case(name);
        match front {
            [] => Place::Base,
            [one] if ou(one, "people") => Place::People,
            [one] if ou(one, "groups") => Place::Groups,
            [entry, parent] if ou(parent, "people") => {
                if matches!(entry.attr.as_str(), "uid" | "cn" | "mail" | "entryuuid") {
                    Place::User(entry.value.clone())
                } else {
                    Place::Missing(Box::new(Place::People))
                }
            }
            [entry, parent] if ou(parent, "groups") => {
                if entry.attr == "cn" {
                    Place::Group(entry.value.clone())
                } else {
                    Place::Missing(Box::new(Place::Groups))
                }
            }
            [entry, parent] if ou(parent, "services") && entry.attr == "cn" => {
                Place::Service(entry.value.clone())
            }
            [.., parent] if ou(parent, "people") => Place::Missing(Box::new(Place::People)),
            [.., parent] if ou(parent, "groups") => Place::Missing(Box::new(Place::Groups)),
            _ => Place::Missing(Box::new(Place::Base)),
        }
    }

    /// Where a DN string sits; [`Place::Outside`] for a string that is not a DN.
    pub fn place_of(&self, dn: &str) -> Place {
        Dn::parse(dn).map_or(Place::Outside, |dn| self.place(&dn))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> Tree {
        Tree::new("dc=Example,dc=com").unwrap()
    }

    #[test]
    fn parses_rfc_4514_escapes() {
        let dn = Dn::parse(r"uid=a\,b\+c\\d\20,ou=people,dc=example,dc=com").unwrap();
        assert_eq!(dn.0[0].attr, "uid");
        assert_eq!(dn.0[0].value, r"a,b+c\d ");
        assert_eq!(dn.0.len(), 4);
        let hex = Dn::parse(r"cn=caf\C3\A9,ou=groups,dc=x").unwrap();
        assert_eq!(hex.0[0].value, "café");
        let spaced = Dn::parse("UID = alice , OU=People,DC=example,DC=com").unwrap();
        assert_eq!(spaced.0[0].attr, "uid");
        assert_eq!(spaced.0[0].value, "alice");
        // Multi-valued RDNs keep their first pair.
        let multi = Dn::parse("cn=a+sn=b,dc=x").unwrap();
        assert_eq!(multi.0.len(), 2);
        assert_eq!(multi.0[0].value, "a");
    }

    #[test]
    fn refuses_what_is_not_a_dn() {
        for bad in [
            "alice", "=x", "uid=a,", "uid=#04", "uid=a\"b", r"uid=a\", r"uid=a\4", "u id=x",
            "uid=a<b",
        ] {
            assert_eq!(Dn::parse(bad), None, "{bad}");
        }
        assert_eq!(Dn::parse(&"a".repeat(MAX_DN + 1)), None);
        assert_eq!(Dn::parse(""), Some(Dn::default()));
    }

    #[test]
    fn escaping_round_trips_every_special_character() {
        for value in [
            "plain",
            "a,b",
            "+lead",
            " both ",
            "#hash",
            "mid#dle",
            r"back\slash",
            "q\"uote",
            "<>;=",
            "nul\0",
            "émile",
        ] {
            let dn = format!("cn={},ou=groups,dc=x", escape_value(value));
            let parsed = Dn::parse(&dn).unwrap_or_else(|| panic!("{dn} does not parse"));
            assert_eq!(parsed.0[0].value, value, "{dn}");
        }
        assert_eq!(escape_value(" a,b "), r"\ a\,b\ ");
        assert_eq!(escape_value("#x#"), r"\#x#");
    }

    #[test]
    fn places_dns_in_the_tree_case_insensitively() {
        let t = tree();
        assert_eq!(t.base_text, "dc=Example,dc=com");
        assert_eq!(t.place_of(""), Place::RootDse);
        assert_eq!(t.place_of("cn=Subschema"), Place::Subschema);
        assert_eq!(t.place_of("DC=example,DC=COM"), Place::Base);
        assert_eq!(t.place_of("ou=People,dc=example,dc=com"), Place::People);
        assert_eq!(t.place_of("ou=groups,dc=example,dc=com"), Place::Groups);
        assert_eq!(
            t.place_of("uid=Alice,ou=people,dc=example,dc=com"),
            Place::User("Alice".into())
        );
        assert_eq!(
            t.place_of(r"cn=Dev\, Ops,ou=groups,dc=example,dc=com"),
            Place::Group("Dev, Ops".into())
        );
        assert_eq!(
            t.place_of("cn=abc,ou=services,dc=example,dc=com"),
            Place::Service("abc".into())
        );
        assert_eq!(
            t.place_of("ou=nothing,dc=example,dc=com"),
            Place::Missing(Box::new(Place::Base))
        );
        assert_eq!(
            t.place_of("x=1,uid=a,ou=people,dc=example,dc=com"),
            Place::Missing(Box::new(Place::People))
        );
        assert_eq!(t.place_of("dc=other,dc=com"), Place::Outside);
        assert_eq!(t.place_of("not a dn"), Place::Outside);
        assert_eq!(
            t.user_dn("a,b"),
            r"uid=a\,b,ou=people,dc=Example,dc=com".to_owned()
        );
    }
}
