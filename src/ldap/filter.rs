//! LDAP search filters (RFC 4511 §4.5.1.7) → the query AST the REST API's ZenQL and
//! JSON filters produce ([`Expr`]), one translation per kind of entry (users, groups),
//! so the store answers them with the same SQL and the same indexes; and a small
//! evaluator for the few fixed entries (root DSE, base, organizational units) that
//! live in memory.
//!
//! LDAP's three-valued logic is kept exactly: each node is translated to the pair
//! (when it is TRUE, when it is FALSE), so `(!(x=1))` matches entries without `x`, and
//! a filter on an attribute an entry kind does not have is Undefined (neither), under
//! `!` too. Text compares case-insensitively, as the AST does.

use std::collections::HashMap;

use ldap3_proto::proto::{LdapFilter, LdapSubstringFilter};

use super::dn::{Dn, Place, Tree};
use crate::query::ast::{self, Condition, Expr, FieldRef, Op, Relation, Value};

/// The deepest filter answered; deeper ones are refused (`unwillingToPerform`).
pub const MAX_DEPTH: usize = 32;

/// The most nodes one filter may have.
pub const MAX_NODES: usize = 512;

/// The kinds of entry a filter is translated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `ou=people` entries.
    Users,
    /// `ou=groups` entries.
    Groups,
}

/// A name a filter value refers to, to look up before translating.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Ref {
    /// A user by username or email (folded).
    User(String),
    /// A group by name (folded).
    Group(String),
}

/// The ids the names of a filter resolved to (absent: no such entry).
#[derive(Debug, Default, Clone)]
pub struct Resolved(pub HashMap<Ref, String>);

/// How deep and how big a filter is.
pub fn size(f: &LdapFilter) -> (usize, usize) {
    match f {
        LdapFilter::And(items) | LdapFilter::Or(items) => {
            items.iter().fold((1, 1), |(depth, nodes), item| {
                let (d, n) = size(item);
                (depth.max(d + 1), nodes + n)
            })
        }
        LdapFilter::Not(inner) => {
            let (d, n) = size(inner);
            (d + 1, n + 1)
        }
        _ => (1, 1),
    }
}

/// What a DN-valued filter value (`memberOf`, `member`) names, if anything in the tree.
fn dn_ref(tree: &Tree, value: &str) -> Option<Ref> {
    let dn = Dn::parse(value)?;
    match tree.place(&dn) {
        Place::User(name) => Some(Ref::User(name.to_lowercase())),
        Place::Group(name) => Some(Ref::Group(name.to_lowercase())),
        _ => None,
    }
}

/// A `member` value: a DN, or (as Grafana sends with `group_search_filter_user_attribute
/// = "uid"`) a bare username.
fn member_ref(tree: &Tree, value: &str) -> Option<Ref> {
    if value.contains('=') {
        dn_ref(tree, value)
    } else {
        Some(Ref::User(value.to_lowercase()))
    }
}

/// The names a filter refers to through DN values, to resolve before [`translate`].
pub fn refs(tree: &Tree, f: &LdapFilter, out: &mut Vec<Ref>) {
    match f {
        LdapFilter::And(items) | LdapFilter::Or(items) => {
            for item in items {
                refs(tree, item, out);
            }
        }
        LdapFilter::Not(inner) => refs(tree, inner, out),
        LdapFilter::Equality(attr, value) | LdapFilter::Approx(attr, value) => {
            let r = match attr.to_ascii_lowercase().as_str() {
                "memberof" => dn_ref(tree, value),
                "member" | "uniquemember" => member_ref(tree, value),
                _ => None,
            };
            if let Some(r) = r {
                if !out.contains(&r) {
                    out.push(r);
                }
            }
        }
        _ => {}
    }
}

/// A translated node: the expressions for TRUE and for FALSE.
#[derive(Debug, Clone)]
struct Tv {
    t: Expr,
    f: Expr,
}

fn always() -> Expr {
    Expr::And(Vec::new())
}

fn never() -> Expr {
    Expr::Or(Vec::new())
}

/// Whether an expression is the constant FALSE.
pub fn is_never(e: &Expr) -> bool {
    matches!(e, Expr::Or(items) if items.is_empty())
}

fn is_always(e: &Expr) -> bool {
    matches!(e, Expr::And(items) if items.is_empty())
}

/// `Undefined`: neither TRUE nor FALSE.
fn undefined() -> Tv {
    Tv {
        t: never(),
        f: never(),
    }
}

fn constant(b: bool) -> Tv {
    if b {
        Tv {
            t: always(),
            f: never(),
        }
    } else {
        Tv {
            t: never(),
            f: always(),
        }
    }
}

fn and(items: Vec<Expr>) -> Expr {
    let mut kept = Vec::new();
    for e in items {
        if is_never(&e) {
            return never();
        }
        if !is_always(&e) {
            kept.push(e);
        }
    }
    if kept.len() == 1 {
        kept.pop().unwrap_or_else(always)
    } else {
        Expr::And(kept)
    }
}

fn or(items: Vec<Expr>) -> Expr {
    let mut kept = Vec::new();
    for e in items {
        if is_always(&e) {
            return always();
        }
        if !is_never(&e) {
            kept.push(e);
        }
    }
    if kept.len() == 1 {
        kept.pop().unwrap_or_else(never)
    } else {
        Expr::Or(kept)
    }
}

fn not(e: Expr) -> Expr {
    if is_always(&e) {
        never()
    } else if is_never(&e) {
        always()
    } else {
        Expr::Not(Box::new(e))
    }
}

/// A defined comparison: FALSE exactly when not TRUE.
fn defined(t: Expr) -> Tv {
    let f = not(t.clone());
    Tv { t, f }
}

/// An attribute of an entry kind, as the AST names it.
enum Attr {
    /// A field of the resource.
    Field(FieldRef),
    /// `objectClass`.
    ObjectClass,
    /// `memberOf` (users).
    MemberOf,
    /// `member` / `uniqueMember` (groups).
    Member,
    /// An attribute every entry of the kind has, not otherwise filterable (`displayName`,
    /// `entryDN`...): present, never equal to anything we can check.
    PresentOnly,
    /// Not an attribute of this kind of entry.
    Unknown,
}

fn attr(kind: Kind, name: &str) -> Attr {
    let field = |canonical: &str, set: &ast::FieldSet| {
        set.lookup(canonical).map_or(Attr::Unknown, Attr::Field)
    };
    let lower = name.to_ascii_lowercase();
    match (kind, lower.as_str()) {
        (_, "objectclass") => Attr::ObjectClass,
        (Kind::Users, "uid" | "cn" | "userid") => field("username", &ast::USERS),
        (Kind::Users, "mail" | "email") => field("email", &ast::USERS),
        (Kind::Users, "givenname") => field("firstName", &ast::USERS),
        (Kind::Users, "sn" | "surname") => field("lastName", &ast::USERS),
        (Kind::Users, "entryuuid") => field("id", &ast::USERS),
        (Kind::Users, "createtimestamp") => field("created", &ast::USERS),
        (Kind::Users, "modifytimestamp") => field("modified", &ast::USERS),
        (Kind::Users, "memberof") => Attr::MemberOf,
        (Kind::Users, "displayname" | "entrydn") => Attr::PresentOnly,
        (Kind::Groups, "cn") => field("name", &ast::GROUPS),
        (Kind::Groups, "description") => field("description", &ast::GROUPS),
        (Kind::Groups, "entryuuid") => field("id", &ast::GROUPS),
        (Kind::Groups, "createtimestamp") => field("created", &ast::GROUPS),
        (Kind::Groups, "modifytimestamp") => field("modified", &ast::GROUPS),
        (Kind::Groups, "member" | "uniquemember") => Attr::Member,
        (Kind::Groups, "entrydn") => Attr::PresentOnly,
        _ => Attr::Unknown,
    }
}

/// The object classes of each kind of entry, lower-cased.
pub fn object_classes(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Users => &["top", "person", "organizationalperson", "inetorgperson"],
        Kind::Groups => &["top", "groupofnames", "groupofuniquenames"],
    }
}

fn cmp(field: &FieldRef, op: Op) -> Expr {
    Expr::Cmp(Condition {
        field: field.clone(),
        op,
    })
}

/// A value of a field: text as is, timestamps as GeneralizedTime. `None` when the text
/// is not of the field's syntax (the comparison is then Undefined).
fn value_of(field: &FieldRef, text: &str) -> Option<Value> {
    match field.ty() {
        Some(ast::FieldType::Timestamp) => parse_generalized_time(text).map(Value::Timestamp),
        _ => Some(Value::String(text.to_owned())),
    }
}

/// Translates `f` for entries of `kind` into the AST: the condition under which an
/// entry of that kind matches. Names in DN values are looked up in `resolved`.
pub fn translate(tree: &Tree, kind: Kind, f: &LdapFilter, resolved: &Resolved) -> Expr {
    tv(tree, kind, f, resolved).t
}

fn tv(tree: &Tree, kind: Kind, f: &LdapFilter, resolved: &Resolved) -> Tv {
    match f {
        LdapFilter::And(items) => {
            let parts: Vec<Tv> = items.iter().map(|i| tv(tree, kind, i, resolved)).collect();
            Tv {
                t: and(parts.iter().map(|p| p.t.clone()).collect()),
                f: or(parts.into_iter().map(|p| p.f).collect()),
            }
        }
        LdapFilter::Or(items) => {
            let parts: Vec<Tv> = items.iter().map(|i| tv(tree, kind, i, resolved)).collect();
            Tv {
                t: or(parts.iter().map(|p| p.t.clone()).collect()),
                f: and(parts.into_iter().map(|p| p.f).collect()),
            }
        }
        LdapFilter::Not(inner) => {
            let Tv { t, f } = tv(tree, kind, inner, resolved);
            Tv { t: f, f: t }
        }
        LdapFilter::Present(name) => match attr(kind, name) {
            Attr::ObjectClass | Attr::PresentOnly => constant(true),
            Attr::Field(field) => {
                // Set on every row: ids, timestamps, usernames, emails, group names.
                let always_set =
                    matches!(
                        field.ty(),
                        Some(ast::FieldType::Id | ast::FieldType::Timestamp)
                    ) || matches!(field.to_string().as_str(), "username" | "email" | "name");
                if always_set {
                    constant(true)
                } else {
                    defined(cmp(&field, Op::Exists(true)))
                }
            }
            // In some group; has some member (a user or a child group).
            Attr::MemberOf => defined(Expr::RelatedAny(Relation::MemberOf { nested: true })),
            Attr::Member => defined(or(vec![
                Expr::RelatedAny(Relation::HasMemberUser),
                Expr::RelatedAny(Relation::HasChildGroup),
            ])),
            Attr::Unknown => constant(false),
        },
        LdapFilter::Equality(name, value) | LdapFilter::Approx(name, value) => {
            equality(tree, kind, name, value, resolved)
        }
        LdapFilter::Substring(name, sub) => match attr(kind, name) {
            Attr::Field(field) if field.ty() == Some(ast::FieldType::Text) => {
                defined(substring(&field, sub))
            }
            Attr::ObjectClass => constant(
                object_classes(kind)
                    .iter()
                    .any(|class| substring_matches(class, sub)),
            ),
            _ => undefined(),
        },
        LdapFilter::GreaterOrEqual(name, value) | LdapFilter::LessOrEqual(name, value) => {
            let ge = matches!(f, LdapFilter::GreaterOrEqual(..));
            match attr(kind, name) {
                Attr::Field(field) => match value_of(&field, value) {
                    Some(v) => defined(cmp(&field, if ge { Op::Ge(v) } else { Op::Le(v) })),
                    None => undefined(),
                },
                _ => undefined(),
            }
        }
        LdapFilter::Extensible(_) => undefined(),
    }
}

fn equality(tree: &Tree, kind: Kind, name: &str, value: &str, resolved: &Resolved) -> Tv {
    match attr(kind, name) {
        Attr::ObjectClass => constant(
            object_classes(kind)
                .iter()
                .any(|c| c.eq_ignore_ascii_case(value)),
        ),
        Attr::Field(field) => match value_of(&field, value) {
            Some(v) => defined(cmp(&field, Op::Eq(v))),
            None => undefined(),
        },
        Attr::MemberOf => {
            let id = dn_ref(tree, value).and_then(|r| match r {
                Ref::Group(_) => resolved.0.get(&r).cloned(),
                Ref::User(_) => None,
            });
            match id {
                Some(id) => defined(Expr::Related(Relation::MemberOf { nested: true }, id)),
                None => constant(false),
            }
        }
        Attr::Member => {
            let found = member_ref(tree, value).and_then(|r| {
                let rel = match r {
                    Ref::User(_) => Relation::HasMemberUser,
                    Ref::Group(_) => Relation::HasChildGroup,
                };
                resolved.0.get(&r).map(|id| (rel, id.clone()))
            });
            match found {
                Some((rel, id)) => defined(Expr::Related(rel, id)),
                None => constant(false),
            }
        }
        Attr::PresentOnly => constant(false),
        Attr::Unknown => undefined(),
    }
}

fn substring(field: &FieldRef, sub: &LdapSubstringFilter) -> Expr {
    let mut parts = Vec::new();
    if let Some(initial) = sub.initial.as_ref().filter(|s| !s.is_empty()) {
        parts.push(cmp(field, Op::StartsWith(initial.clone())));
    }
    for any in sub.any.iter().filter(|s| !s.is_empty()) {
        parts.push(cmp(field, Op::Contains(any.clone())));
    }
    if let Some(last) = sub.final_.as_ref().filter(|s| !s.is_empty()) {
        parts.push(cmp(field, Op::EndsWith(last.clone())));
    }
    if parts.is_empty() {
        // `(attr=*)` written as a substring: presence.
        return cmp(field, Op::Exists(true));
    }
    if parts.len() > 1 {
        // Each part alone lets the store use its indexes; together they would also
        // accept overlapping parts (`ab*b` matching `ab`), which the ordered pattern
        // refuses.
        parts.push(cmp(
            field,
            Op::Substrings {
                initial: sub.initial.clone().filter(|s| !s.is_empty()),
                any: sub.any.iter().filter(|s| !s.is_empty()).cloned().collect(),
                last: sub.final_.clone().filter(|s| !s.is_empty()),
            },
        ));
    }
    and(parts)
}

/// Whether `value` matches a substring filter, case-insensitively and in order, the
/// parts not overlapping (RFC 4517 §4.2.6 semantics).
pub fn substring_matches(value: &str, sub: &LdapSubstringFilter) -> bool {
    let value = value.to_lowercase();
    let mut rest: &str = &value;
    if let Some(initial) = &sub.initial {
        let initial = initial.to_lowercase();
        match rest.strip_prefix(initial.as_str()) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    for any in &sub.any {
        let any = any.to_lowercase();
        match rest.find(any.as_str()) {
            Some(at) => rest = &rest[at + any.len()..],
            None => return false,
        }
    }
    match &sub.final_ {
        Some(last) => rest.ends_with(last.to_lowercase().as_str()),
        None => true,
    }
}

/// Evaluates a filter on an entry held in memory (attribute names and values), with
/// the same case-insensitive matching. Undefined counts as not matching.
pub fn matches(f: &LdapFilter, attrs: &[(&str, Vec<String>)]) -> bool {
    eval(f, attrs) == Some(true)
}

fn eval(f: &LdapFilter, attrs: &[(&str, Vec<String>)]) -> Option<bool> {
    let values = |name: &str| {
        attrs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    match f {
        LdapFilter::And(items) => {
            let mut result = Some(true);
            for item in items {
                match eval(item, attrs) {
                    Some(false) => return Some(false),
                    None => result = None,
                    Some(true) => {}
                }
            }
            result
        }
        LdapFilter::Or(items) => {
            let mut result = Some(false);
            for item in items {
                match eval(item, attrs) {
                    Some(true) => return Some(true),
                    None => result = None,
                    Some(false) => {}
                }
            }
            result
        }
        LdapFilter::Not(inner) => eval(inner, attrs).map(|b| !b),
        LdapFilter::Present(name) => Some(values(name).is_some()),
        LdapFilter::Equality(name, value) | LdapFilter::Approx(name, value) => {
            let value = value.to_lowercase();
            Some(values(name).is_some_and(|vs| vs.iter().any(|v| v.to_lowercase() == value)))
        }
        LdapFilter::Substring(name, sub) => {
            Some(values(name).is_some_and(|vs| vs.iter().any(|v| substring_matches(v, sub))))
        }
        LdapFilter::GreaterOrEqual(name, value) => {
            let value = value.to_lowercase();
            Some(values(name).is_some_and(|vs| vs.iter().any(|v| v.to_lowercase() >= value)))
        }
        LdapFilter::LessOrEqual(name, value) => {
            let value = value.to_lowercase();
            Some(values(name).is_some_and(|vs| vs.iter().any(|v| v.to_lowercase() <= value)))
        }
        LdapFilter::Extensible(_) => None,
    }
}

/// Milliseconds since the epoch as GeneralizedTime (RFC 4517 §3.3.13), UTC:
/// `20240131103000Z`, or with milliseconds when there are any (`...00.123Z`).
pub fn generalized_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000);
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(secs) else {
        return "19700101000000Z".to_owned();
    };
    let base = format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    if milli == 0 {
        format!("{base}Z")
    } else {
        format!("{base}.{milli:03}Z")
    }
}

/// Reads GeneralizedTime: `YYYYMMDDHH[MM[SS]][.fff]` then `Z` or `±HHMM`. `None` when it
/// is not one.
pub fn parse_generalized_time(s: &str) -> Option<i64> {
    let s = s.trim();
    let (body, offset_min) = if let Some(b) = s.strip_suffix(['Z', 'z']) {
        (b, 0i64)
    } else {
        let at = s.rfind(['+', '-'])?;
        let (b, off) = s.split_at(at);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let digits = &off[1..];
        if digits.len() != 4 || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let h: i64 = digits[..2].parse().ok()?;
        let m: i64 = digits[2..].parse().ok()?;
        (b, sign * (h * 60 + m))
    };
    let (whole, fraction) = match body.split_once(['.', ',']) {
        Some((w, f)) => (w, Some(f)),
        None => (body, None),
    };
    if !matches!(whole.len(), 10 | 12 | 14) || !whole.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let num = |r: std::ops::Range<usize>| whole.get(r).and_then(|d| d.parse::<u32>().ok());
    let year = i32::try_from(num(0..4)?).ok()?;
    let month = time::Month::try_from(u8::try_from(num(4..6)?).ok()?).ok()?;
    let day = u8::try_from(num(6..8)?).ok()?;
    let hour = u8::try_from(num(8..10)?).ok()?;
    let minute = if whole.len() >= 12 {
        u8::try_from(num(10..12)?).ok()?
    } else {
        0
    };
    let second = if whole.len() >= 14 {
        u8::try_from(num(12..14)?).ok()?
    } else {
        0
    };
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    let t = date.with_hms(hour, minute, second).ok()?.assume_utc();
    let mut ms = t.unix_timestamp().checked_mul(1000)?;
    if let Some(f) = fraction {
        if f.is_empty() || f.len() > 9 || !f.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let padded = format!("{f:0<3}");
        ms += padded[..3].parse::<i64>().ok()?;
    }
    Some(ms - offset_min * 60_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ldap3_proto::parse_ldap_filter_str;

    fn tree() -> Tree {
        Tree::new("dc=example,dc=com").unwrap()
    }

    fn users(filter: &str) -> String {
        users_with(filter, &Resolved::default())
    }

    fn users_with(filter: &str, resolved: &Resolved) -> String {
        let f = parse_ldap_filter_str(filter).unwrap();
        translate(&tree(), Kind::Users, &f, resolved).to_string()
    }

    fn groups_with(filter: &str, resolved: &Resolved) -> String {
        let f = parse_ldap_filter_str(filter).unwrap();
        translate(&tree(), Kind::Groups, &f, resolved).to_string()
    }

    #[test]
    fn equality_on_the_indexed_attributes_becomes_field_equality() {
        assert_eq!(users("(uid=Alice)"), r#"username = "Alice""#);
        assert_eq!(users("(cn=alice)"), r#"username = "alice""#);
        assert_eq!(users("(mail=a@x.org)"), r#"email = "a@x.org""#);
        assert_eq!(
            users("(entryUUID=0b9f1c1e-0000-4000-8000-000000000000)"),
            r#"id = "0b9f1c1e-0000-4000-8000-000000000000""#
        );
        let r = Resolved::default();
        assert_eq!(groups_with("(cn=Admins)", &r), r#"name = "Admins""#);
    }

    #[test]
    fn object_classes_decide_which_kind_of_entry_can_match() {
        assert_eq!(users("(objectClass=inetOrgPerson)"), "(and)");
        assert_eq!(users("(objectclass=PERSON)"), "(and)");
        assert_eq!(users("(objectClass=groupOfNames)"), "(or)");
        let r = Resolved::default();
        assert_eq!(groups_with("(objectClass=groupOfUniqueNames)", &r), "(and)");
        assert_eq!(groups_with("(objectClass=person)", &r), "(or)");
        assert_eq!(
            users("(&(objectClass=person)(|(uid=a)(mail=a)))"),
            r#"(username = "a" or email = "a")"#
        );
    }

    #[test]
    fn negation_keeps_ldap_three_valued_logic() {
        // An attribute users lack is Undefined: neither it nor its negation matches.
        assert_eq!(users("(description=x)"), "(or)");
        assert_eq!(users("(!(description=x))"), "(or)");
        // A missing value is FALSE, so its negation matches.
        assert_eq!(users("(!(givenName=x))"), r#"not firstName = "x""#);
        assert_eq!(users("(!(!(uid=a)))"), r#"username = "a""#);
        // NOT (Undefined AND FALSE) is TRUE; NOT (Undefined AND x) is "x is FALSE".
        assert_eq!(
            users("(!(&(description=x)(uid=a)))"),
            r#"not username = "a""#
        );
    }

    #[test]
    fn substrings_presence_and_timestamps() {
        assert_eq!(
            users("(uid=al*c*e)"),
            r#"(username startsWith "al" and username ~ "c" and username endsWith "e" and username substrings "al*c*e")"#
        );
        assert_eq!(users("(uid=*b*)"), r#"username ~ "b""#);
        assert_eq!(
            users("(mail=*@example.com)"),
            r#"email endsWith "@example.com""#
        );
        assert_eq!(users("(givenName=*)"), "firstName exists true");
        // Every user has a username and an email.
        assert_eq!(users("(uid=*)"), "(and)");
        assert_eq!(users("(mail=*)"), "(and)");
        assert_eq!(
            users("(createTimestamp>=20240131000000Z)"),
            "created >= 2024-01-31T00:00:00.000Z"
        );
        assert_eq!(
            users("(modifyTimestamp<=20240131103000.5Z)"),
            "modified <= 2024-01-31T10:30:00.500Z"
        );
        // Not a time: Undefined.
        assert_eq!(users("(createTimestamp>=yesterday)"), "(or)");
    }

    fn eq(attr: &str, value: &str) -> LdapFilter {
        LdapFilter::Equality(attr.into(), value.into())
    }

    #[test]
    fn member_of_and_member_resolve_through_the_graph() {
        let tree = tree();
        let f = LdapFilter::And(vec![
            eq("objectClass", "person"),
            LdapFilter::Or(vec![
                eq("memberOf", "cn=Dev,ou=groups,dc=example,dc=com"),
                eq("memberof", "CN=ops,OU=Groups,DC=Example,DC=com"),
            ]),
        ]);
        let mut found = Vec::new();
        refs(&tree, &f, &mut found);
        assert_eq!(
            found,
            vec![Ref::Group("dev".into()), Ref::Group("ops".into())]
        );
        let mut resolved = Resolved::default();
        resolved.0.insert(Ref::Group("dev".into()), "g-dev".into());
        // `ops` does not exist: FALSE.
        assert_eq!(
            translate(&tree, Kind::Users, &f, &resolved).to_string(),
            r#"memberOf("g-dev")"#
        );
        let mut resolved = Resolved::default();
        resolved
            .0
            .insert(Ref::User("alice".into()), "u-alice".into());
        resolved
            .0
            .insert(Ref::Group("child".into()), "g-child".into());
        let groups = |f: &LdapFilter| translate(&tree, Kind::Groups, f, &resolved).to_string();
        assert_eq!(
            groups(&LdapFilter::Or(vec![
                eq("member", "uid=alice,ou=people,dc=example,dc=com"),
                eq("uniqueMember", "cn=child,ou=groups,dc=example,dc=com"),
            ])),
            r#"(hasMember("u-alice") or hasChild("g-child"))"#
        );
        // Grafana's `%s` with group_search_filter_user_attribute = uid: a bare name.
        assert_eq!(
            groups(&eq("uniqueMember", "Alice")),
            r#"hasMember("u-alice")"#
        );
        // A DN outside the tree names nothing.
        assert_eq!(groups(&eq("member", "uid=alice,dc=elsewhere")), "(or)");
        // Users have no `member`; groups no `memberOf`: Undefined, under NOT too.
        let not_member = LdapFilter::Not(Box::new(eq(
            "memberOf",
            "cn=Dev,ou=groups,dc=example,dc=com",
        )));
        assert_eq!(groups(&not_member), "(or)");
    }

    #[test]
    fn depth_and_size_are_measured() {
        let f = parse_ldap_filter_str("(&(a=1)(|(b=2)(!(c=3))))").unwrap();
        assert_eq!(size(&f), (4, 6));
    }

    #[test]
    fn in_memory_entries_match_case_insensitively() {
        let attrs = vec![
            (
                "objectClass",
                vec!["top".to_owned(), "organizationalUnit".to_owned()],
            ),
            ("ou", vec!["people".to_owned()]),
        ];
        let m = |f: &str| matches(&parse_ldap_filter_str(f).unwrap(), &attrs);
        assert!(m("(objectClass=*)"));
        assert!(m("(objectclass=ORGANIZATIONALUNIT)"));
        assert!(m("(ou=peo*)"));
        assert!(!m("(ou=groups)"));
        assert!(m("(!(ou=groups))"));
    }

    #[test]
    fn generalized_time_round_trips() {
        assert_eq!(generalized_time(0), "19700101000000Z");
        assert_eq!(generalized_time(1_706_697_000_123), "20240131103000.123Z");
        assert_eq!(
            parse_generalized_time("20240131103000.123Z"),
            Some(1_706_697_000_123)
        );
        assert_eq!(
            parse_generalized_time("2024013110Z"),
            Some(1_706_695_200_000)
        );
        assert_eq!(
            parse_generalized_time("20240131113000+0100"),
            Some(1_706_697_000_000)
        );
        for bad in [
            "",
            "2024",
            "20241331000000Z",
            "20240131103000",
            "abcdefghijklmnZ",
        ] {
            assert_eq!(parse_generalized_time(bad), None, "{bad}");
        }
    }
}
