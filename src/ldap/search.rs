//! Search (RFC 4511 §4.5): where the base sits, which entries the scope covers, the
//! filter translated per kind of entry and run through the service's directory reads,
//! attribute selection, size and time limits, and the paged-results control
//! (RFC 2696).
//!
//! The entries a scope covers are, in this order: the fixed ones held in memory (the
//! base, its organizational units), then users, then groups. A page is a window on that
//! sequence; the paged-results cookie is the offset of the next window.

use std::time::{Duration, Instant};

use ldap3_proto::proto::{LdapFilter, LdapResultCode, LdapSearchResultEntry, LdapSearchScope};

use super::dn::{Dn, Place, Tree};
use super::entries::{self, Selection};
use super::filter::{self, Kind, Ref, Resolved};
use crate::domain::page::PageRequest;
use crate::query::ast::{self, Condition, Expr, Op, Value};
use crate::service::Services;
use crate::service::directory::Reader;

/// The most entries a search without the paged-results control returns.
pub const MAX_UNPAGED: usize = 10_000;

/// The largest page of the paged-results control.
pub const MAX_PAGE: usize = 1_000;

/// The longest a search may run, whatever the client's time limit.
pub const MAX_TIME: Duration = Duration::from_secs(30);

/// Rows read from the store per query when no page size says otherwise.
const CHUNK: usize = 500;

/// A search's outcome: its entries, the result, and the paged-results cookie to
/// return (`Some` when the control was sent; empty when there is nothing more).
#[derive(Debug)]
pub struct Outcome {
    /// The entries, in order.
    pub entries: Vec<LdapSearchResultEntry>,
    /// The result code and message of `SearchResultDone`.
    pub code: LdapResultCode,
    /// The text of `SearchResultDone`.
    pub message: String,
    /// `matchedDN` for `noSuchObject`.
    pub matched: String,
    /// The cookie for the paged-results response control.
    pub cookie: Option<Vec<u8>>,
}

impl Outcome {
    fn done(entries: Vec<LdapSearchResultEntry>) -> Self {
        Self {
            entries,
            code: LdapResultCode::Success,
            message: String::new(),
            matched: String::new(),
            cookie: None,
        }
    }

    /// A failure without entries.
    pub fn error(code: LdapResultCode, message: impl Into<String>) -> Self {
        Self {
            entries: Vec::new(),
            code,
            message: message.into(),
            matched: String::new(),
            cookie: None,
        }
    }
}

/// A search request, as the session read it.
#[derive(Debug)]
pub struct Request<'a> {
    /// The base DN.
    pub base: &'a str,
    /// The scope.
    pub scope: &'a LdapSearchScope,
    /// The filter.
    pub filter: &'a LdapFilter,
    /// Which attributes.
    pub selection: Selection,
    /// The client's size limit (0: none).
    pub size_limit: usize,
    /// The client's time limit in seconds (0: none).
    pub time_limit: u64,
    /// The paged-results control: page size and cookie.
    pub paged: Option<(usize, Vec<u8>)>,
}

/// What a scope covers below its base.
#[derive(Debug, Default)]
struct Plan {
    fixed: Vec<(String, entries::Attrs)>,
    users: Option<Expr>,
    groups: Option<Expr>,
}

/// `<field> = <value>` for the entry an RDN names.
fn rdn_condition(fields: &ast::FieldSet, field: &str, value: &str) -> Expr {
    Expr::Cmp(Condition {
        field: fields.lookup(field).expect("a known field"),
        op: Op::Eq(Value::String(value.to_owned())),
    })
}

/// Runs a search for `reader` (`None`: anonymous, who sees only the root DSE).
pub async fn run(
    services: &Services,
    tree: &Tree,
    tls: bool,
    reader: Option<&Reader>,
    req: Request<'_>,
) -> Outcome {
    let started = Instant::now();
    let deadline = match req.time_limit {
        0 => MAX_TIME,
        secs => Duration::from_secs(secs).min(MAX_TIME),
    };
    let Some(base) = Dn::parse(req.base) else {
        return Outcome::error(LdapResultCode::InvalidDNSyntax, "The base is not a DN.");
    };
    let place = tree.place(&base);
    let subtree = matches!(req.scope, LdapSearchScope::Subtree);
    let children = matches!(req.scope, LdapSearchScope::Children);
    let base_only = matches!(req.scope, LdapSearchScope::Base);
    // The root DSE and the subschema entry answer base searches of anyone.
    match &place {
        Place::RootDse => {
            let mut found = Vec::new();
            if base_only && filter::matches(req.filter, &entries::root_dse_attrs(tree, tls)) {
                let sel = if req.selection.wants_all() {
                    req.selection.everything()
                } else {
                    req.selection.clone()
                };
                found.push(sel.entry(String::new(), entries::root_dse_attrs(tree, tls)));
            }
            return Outcome::done(found);
        }
        Place::Subschema if reader.is_some() => {
            let mut found = Vec::new();
            if base_only && filter::matches(req.filter, &entries::subschema_attrs()) {
                let sel = if req.selection.wants_all() {
                    req.selection.everything()
                } else {
                    req.selection.clone()
                };
                found.push(sel.entry("cn=Subschema".into(), entries::subschema_attrs()));
            }
            return Outcome::done(found);
        }
        _ => {}
    }
    let Some(reader) = reader else {
        return Outcome::error(
            LdapResultCode::InsufficentAccessRights,
            "Bind first: anonymous clients may read the root DSE only.",
        );
    };
    // The names the filter refers to, resolved once.
    let mut names = Vec::new();
    filter::refs(tree, req.filter, &mut names);
    let mut resolved = Resolved::default();
    for name in names {
        let id = match &name {
            Ref::User(n) => services
                .directory_user_id(n)
                .await
                .map(|o| o.map(|i| i.to_string())),
            Ref::Group(n) => services
                .directory_group_id(n)
                .await
                .map(|o| o.map(|i| i.to_string())),
        };
        match id {
            Ok(Some(id)) => {
                resolved.0.insert(name, id);
            }
            Ok(None) => {}
            Err(e) => return internal(&e),
        }
    }
    let users = || Some(filter::translate(tree, Kind::Users, req.filter, &resolved));
    let groups = || Some(filter::translate(tree, Kind::Groups, req.filter, &resolved));
    let mut plan = Plan::default();
    let fixed = |plan: &mut Plan, dn: String, attrs: entries::Attrs| {
        if filter::matches(req.filter, &attrs) {
            plan.fixed.push((dn, attrs));
        }
    };
    match &place {
        Place::Base => {
            if base_only || subtree {
                fixed(&mut plan, tree.base_text.clone(), entries::base_attrs(tree));
            }
            if !base_only {
                fixed(&mut plan, tree.people(), entries::ou_attrs(tree, "people"));
                fixed(&mut plan, tree.groups(), entries::ou_attrs(tree, "groups"));
            }
            if subtree || children {
                plan.users = users();
                plan.groups = groups();
            }
        }
        Place::People | Place::Groups => {
            let people = place == Place::People;
            let (dn, ou) = if people {
                (tree.people(), "people")
            } else {
                (tree.groups(), "groups")
            };
            if base_only || subtree {
                fixed(&mut plan, dn, entries::ou_attrs(tree, ou));
            }
            if !base_only {
                if people {
                    plan.users = users();
                } else {
                    plan.groups = groups();
                }
            }
        }
        Place::User(value) | Place::Group(value) => {
            if matches!(req.scope, LdapSearchScope::OneLevel) || children {
                return Outcome::done(Vec::new());
            }
            let rdn = &base.0[0];
            if matches!(place, Place::User(_)) {
                let field = match rdn.attr.as_str() {
                    "mail" => "email",
                    "entryuuid" => "id",
                    _ => "username",
                };
                let one = rdn_condition(&ast::USERS, field, value);
                plan.users = users().map(|f| Expr::And(vec![one, f]));
            } else {
                let one = rdn_condition(&ast::GROUPS, "name", value);
                plan.groups = groups().map(|f| Expr::And(vec![one, f]));
            }
            // A base search must name an entry that exists.
            let exists = match &place {
                Place::User(_) => exists_user(services, reader, &base, value).await,
                _ => exists_group(services, reader, value).await,
            };
            match exists {
                Ok(true) => {}
                Ok(false) => {
                    let parent = if matches!(place, Place::User(_)) {
                        tree.people()
                    } else {
                        tree.groups()
                    };
                    return no_such_object(parent);
                }
                Err(e) => return internal(&e),
            }
        }
        Place::Missing(parent) => {
            let matched = match parent.as_ref() {
                Place::People => tree.people(),
                Place::Groups => tree.groups(),
                _ => tree.base_text.clone(),
            };
            return no_such_object(matched);
        }
        Place::Service(_) | Place::Subschema => {
            return no_such_object(tree.base_text.clone());
        }
        Place::Outside | Place::RootDse => return no_such_object(String::new()),
    }
    plan.users = plan.users.filter(|e| !filter::is_never(e));
    plan.groups = plan.groups.filter(|e| !filter::is_never(e));

    // A page size of zero ends a paged search (RFC 2696 §3).
    if req.paged.as_ref().is_some_and(|(size, _)| *size == 0) {
        let mut done = Outcome::done(Vec::new());
        done.cookie = Some(Vec::new());
        return done;
    }
    // The window: from the cookie's offset, a page (or the limits) long.
    let (offset, page) = match &req.paged {
        Some((size, cookie)) => {
            let offset = match cookie.as_slice() {
                [] => 0,
                bytes => match <[u8; 8]>::try_from(bytes) {
                    Ok(b) => u64::from_be_bytes(b) as usize,
                    Err(_) => {
                        return Outcome::error(
                            LdapResultCode::UnwillingToPerform,
                            "The paged-results cookie is not one this server gave.",
                        );
                    }
                },
            };
            (offset, Some((*size).clamp(1, MAX_PAGE)))
        }
        None => (0, None),
    };
    let limit = match (page, req.size_limit) {
        (Some(p), 0) => p,
        (Some(p), l) => p.min(l),
        (None, 0) => MAX_UNPAGED,
        (None, l) => l.min(MAX_UNPAGED),
    };
    let mut window = Window {
        skip: offset,
        want: limit + 1, // one more, to tell whether the limit was reached
        found: Vec::new(),
    };
    for (dn, attrs) in plan.fixed {
        window.offer(|| req.selection.entry(dn, attrs));
    }
    let mut timed_out = false;
    if let Some(expr) = plan.users {
        match fetch_users(
            services,
            tree,
            reader,
            &req.selection,
            expr,
            &mut window,
            started,
            deadline,
        )
        .await
        {
            Ok(done) => timed_out |= !done,
            Err(e) => return internal(&e),
        }
    }
    if let Some(expr) = plan.groups.filter(|_| !timed_out) {
        match fetch_groups(
            services,
            tree,
            reader,
            &req.selection,
            expr,
            &mut window,
            started,
            deadline,
        )
        .await
        {
            Ok(done) => timed_out |= !done,
            Err(e) => return internal(&e),
        }
    }
    let more = window.found.len() > limit;
    let mut found = window.found;
    found.truncate(limit);
    let returned = found.len();
    let mut outcome = Outcome::done(found);
    if timed_out {
        outcome.code = LdapResultCode::TimeLimitExceeded;
        outcome.message = "The time limit was reached.".into();
    }
    match page {
        Some(p) => {
            // The client's size limit ends a paged search too.
            if more && returned < p {
                outcome.code = LdapResultCode::SizeLimitExceeded;
            } else if more {
                outcome.cookie = Some(((offset + returned) as u64).to_be_bytes().to_vec());
            }
            outcome.cookie.get_or_insert_with(Vec::new);
        }
        None if more => {
            outcome.code = LdapResultCode::SizeLimitExceeded;
            outcome.message = if req.size_limit != 0 && req.size_limit <= MAX_UNPAGED {
                "The size limit was reached.".into()
            } else {
                format!("More than {MAX_UNPAGED} entries match; use the paged-results control.")
            };
        }
        None => {}
    }
    outcome
}

fn no_such_object(matched: String) -> Outcome {
    let mut o = Outcome::error(LdapResultCode::NoSuchObject, "No such entry.");
    o.matched = matched;
    o
}

fn internal(e: &crate::service::Error) -> Outcome {
    match e {
        crate::service::Error::Busy => Outcome::error(
            LdapResultCode::Busy,
            "The server is busy; retry in a moment.",
        ),
        e => {
            let log_id = uuid::Uuid::new_v4();
            tracing::error!(%log_id, error = %e, "LDAP search failed");
            Outcome::error(
                LdapResultCode::Other,
                format!("Internal error; logId {log_id}."),
            )
        }
    }
}

/// The window of the sequence of entries a page shows.
struct Window {
    skip: usize,
    want: usize,
    found: Vec<LdapSearchResultEntry>,
}

impl Window {
    fn offer(&mut self, entry: impl FnOnce() -> LdapSearchResultEntry) {
        if self.skip > 0 {
            self.skip -= 1;
        } else if self.found.len() < self.want {
            self.found.push(entry());
        }
    }

    fn full(&self) -> bool {
        self.found.len() >= self.want
    }

    /// The store page that holds row `pos` of a list, sized to what the window still
    /// wants, and how many of its rows come before `pos`. (A window that starts inside
    /// a page takes the rest of it, then the next page.)
    fn page_at(&self, pos: usize) -> (PageRequest, usize) {
        let size = (self.want - self.found.len()).clamp(1, CHUNK);
        (
            PageRequest {
                index: u32::try_from(pos / size).unwrap_or(u32::MAX),
                size: u32::try_from(size).unwrap_or(u32::MAX),
            },
            pos % size,
        )
    }

    /// After reading the page that holds `pos` (`n` rows of a list of `total`): whether
    /// the list is done, and where its next row is. A list that ends before `pos`
    /// passes the rest of the skip on to the next list.
    fn advance(&mut self, pos: usize, page: PageRequest, n: usize, total: usize) -> Option<usize> {
        if pos >= total {
            self.skip = pos - total;
            return None;
        }
        self.skip = 0;
        let next = page.index as usize * page.size as usize + n;
        (n == page.size as usize && next < total).then_some(next)
    }
}

/// Reads users into the window; `false` when the time ran out.
#[expect(clippy::too_many_arguments, reason = "one search's state")]
async fn fetch_users(
    services: &Services,
    tree: &Tree,
    reader: &Reader,
    sel: &Selection,
    expr: Expr,
    window: &mut Window,
    started: Instant,
    deadline: Duration,
) -> crate::service::Result<bool> {
    let member_of = sel.wants("memberOf");
    let mut pos = window.skip;
    loop {
        if window.full() {
            return Ok(true);
        }
        if started.elapsed() > deadline {
            return Ok(false);
        }
        let (page, drop) = window.page_at(pos);
        let got = services.directory_users(reader, expr.clone(), page).await?;
        let total = usize::try_from(got.total).unwrap_or(0);
        let n = got.items.len();
        if pos < total {
            window.skip = 0;
            for user in got.items.into_iter().skip(drop) {
                let groups = if member_of {
                    services
                        .directory_groups_of(reader, user.id)
                        .await?
                        .iter()
                        .map(|g| tree.group_dn(&g.name))
                        .collect()
                } else {
                    Vec::new()
                };
                let dn = tree.user_dn(&user.username);
                window.offer(|| sel.entry(dn, entries::user_attrs(tree, &user, groups)));
            }
        }
        match window.advance(pos, page, n, total) {
            Some(next) => pos = next,
            None => return Ok(true),
        }
    }
}

/// Reads groups into the window; `false` when the time ran out.
#[expect(clippy::too_many_arguments, reason = "one search's state")]
async fn fetch_groups(
    services: &Services,
    tree: &Tree,
    reader: &Reader,
    sel: &Selection,
    expr: Expr,
    window: &mut Window,
    started: Instant,
    deadline: Duration,
) -> crate::service::Result<bool> {
    let members = sel.wants_any(&["member", "uniqueMember"]);
    let mut pos = window.skip;
    loop {
        if window.full() {
            return Ok(true);
        }
        if started.elapsed() > deadline {
            return Ok(false);
        }
        let (page, drop) = window.page_at(pos);
        let got = services
            .directory_groups(reader, expr.clone(), page)
            .await?;
        let total = usize::try_from(got.total).unwrap_or(0);
        let n = got.items.len();
        if pos < total {
            window.skip = 0;
            for group in got.items.into_iter().skip(drop) {
                let dns = if members {
                    let (users, groups) = services.directory_members(reader, group.id).await?;
                    users
                        .iter()
                        .map(|u| tree.user_dn(&u.username))
                        .chain(groups.iter().map(|g| tree.group_dn(&g.name)))
                        .collect()
                } else {
                    Vec::new()
                };
                let dn = tree.group_dn(&group.name);
                window.offer(|| sel.entry(dn, entries::group_attrs(tree, &group, dns)));
            }
        }
        match window.advance(pos, page, n, total) {
            Some(next) => pos = next,
            None => return Ok(true),
        }
    }
}

async fn exists_user(
    services: &Services,
    reader: &Reader,
    base: &Dn,
    value: &str,
) -> crate::service::Result<bool> {
    let field = match base.0[0].attr.as_str() {
        "mail" => "email",
        "entryuuid" => "id",
        _ => "username",
    };
    let page = PageRequest { index: 0, size: 1 };
    let got = services
        .directory_users(reader, rdn_condition(&ast::USERS, field, value), page)
        .await?;
    Ok(!got.items.is_empty())
}

async fn exists_group(
    services: &Services,
    reader: &Reader,
    value: &str,
) -> crate::service::Result<bool> {
    let page = PageRequest { index: 0, size: 1 };
    let got = services
        .directory_groups(reader, rdn_condition(&ast::GROUPS, "name", value), page)
        .await?;
    Ok(!got.items.is_empty())
}
