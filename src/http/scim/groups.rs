//! `/Groups`: the SCIM Group over gatehouse's groups. `displayName` ↔ name, `members` ↔
//! the direct users (`type` `User`) and direct child groups (`type` `Group`),
//! `externalId` kept in the group's custom properties (`scim.externalId`).
//!
//! Member changes in a PATCH go straight to the service's add/remove member and child
//! operations (a group of 100,000 members is not read to add one); everything else is
//! applied to the representation and written as a PUT would.

use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::{Map, Value, json};

use super::error::ScimError;
use super::list::{self, ListParams, Projection};
use super::patch::{self, Op, Operation};
use super::schema::{GROUP, GROUPS};
use super::users::KEY;
use super::{Ctx, Reply, ScimBody, check_if_match, not_modified, stamp_version, time};
use crate::domain::group::Group;
use crate::domain::ids::{GroupId, GroupRef, IdOrName, UserId, UserRef};
use crate::query::ast::{FieldRef, GROUPS as GROUP_FIELDS, Relation};
use crate::query::scim_filter::{self, AttrPath, CompValue, CompareOp, Filter, Mapped};
use crate::service::Patch;
use crate::service::groups::GroupInput;

/// What a SCIM attribute is in the group query fields.
pub fn resolve(a: &AttrPath) -> Result<Mapped, String> {
    let named = |n: &str| {
        GROUP_FIELDS
            .lookup(n)
            .map(Mapped::field)
            .ok_or_else(|| format!("'{a}' cannot be filtered on"))
    };
    if a.uri
        .as_deref()
        .is_some_and(|u| !u.eq_ignore_ascii_case(GROUP))
    {
        return Err(format!("'{a}' cannot be filtered or sorted on"));
    }
    let name = a.name.to_ascii_lowercase();
    let sub = a.sub.as_deref().map(str::to_ascii_lowercase);
    match (name.as_str(), sub.as_deref()) {
        ("id", None) => named("id"),
        ("displayname", None) => named("name"),
        ("externalid", None) => Ok(Mapped::field(FieldRef::Custom(format!("{KEY}externalId")))),
        // A direct member: a user, or a child group.
        ("members", None | Some("value")) => Ok(Mapped::related(&[
            Relation::HasMemberUser,
            Relation::HasChildGroup,
        ])),
        ("meta", Some("created")) => named("created"),
        ("meta", Some("lastmodified")) => named("modified"),
        _ => Err(format!("'{a}' cannot be filtered or sorted on")),
    }
}

fn group_ref(id: GroupId) -> GroupRef {
    GroupRef {
        id: Some(id),
        name: id.to_string(),
    }
}

fn user_ref(id: UserId) -> UserRef {
    UserRef::Key(IdOrName {
        id: Some(id),
        name: id.to_string(),
    })
}

/// The group a SCIM id names, or 404.
pub async fn load(ctx: &Ctx, id: &str) -> Result<Group, ScimError> {
    let missing = || ScimError::not_found(format!("No group has the id '{id}'."));
    let gid = GroupId::parse(id).ok_or_else(missing)?;
    match ctx.state.get_group(ctx.p.caller(), &group_ref(gid)).await {
        Ok(g) if g.id == gid => Ok(g),
        Ok(_) => Err(missing()),
        Err(crate::service::Error::NotFound { .. }) => Err(missing()),
        Err(e) => Err(e.into()),
    }
}

/// A member: a user or a child group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Member {
    User(UserId),
    Group(GroupId),
}

impl Member {
    fn id(self) -> String {
        match self {
            Self::User(u) => u.to_string(),
            Self::Group(g) => g.to_string(),
        }
    }
}

async fn members(ctx: &Ctx, group: GroupId) -> Result<Vec<Member>, ScimError> {
    let users = ctx.state.provision_members(&ctx.p, group).await?;
    let groups = ctx.state.provision_children(&ctx.p, group).await?;
    Ok(users
        .iter()
        .map(|u| Member::User(u.id))
        .chain(groups.iter().map(|g| Member::Group(g.id)))
        .collect())
}

fn member_json(m: Member, base: &str) -> Value {
    match m {
        Member::User(u) => {
            json!({"value": u.to_string(), "$ref": format!("{base}/Users/{u}"), "type": "User"})
        }
        Member::Group(g) => {
            json!({"value": g.to_string(), "$ref": format!("{base}/Groups/{g}"), "type": "Group"})
        }
    }
}

/// The representation, with `members` when asked for.
pub async fn representation(
    ctx: &Ctx,
    group: &Group,
    with_members: bool,
) -> Result<Value, ScimError> {
    let list = if with_members {
        members(ctx, group.id).await?
    } else {
        Vec::new()
    };
    let mut rep = render(group, &list, &ctx.base);
    if !with_members {
        // A version must cover the members; without them there is none to give.
        if let Some(meta) = rep["meta"].as_object_mut() {
            meta.remove("version");
        }
    }
    Ok(rep)
}

fn render(group: &Group, members: &[Member], base: &str) -> Value {
    let mut m = Map::new();
    m.insert("schemas".into(), json!([GROUP]));
    m.insert("id".into(), json!(group.id.to_string()));
    for (key, value) in &group.custom {
        if let Some(attr) = key.strip_prefix(KEY).filter(|a| *a == "externalId") {
            m.insert(attr.to_owned(), value.clone());
        }
    }
    m.insert("displayName".into(), json!(group.name));
    if !members.is_empty() {
        let list: Vec<Value> = members.iter().map(|x| member_json(*x, base)).collect();
        m.insert("members".into(), Value::Array(list));
    }
    m.insert(
        "meta".into(),
        json!({
            "resourceType": "Group",
            "created": time(group.created),
            "lastModified": time(group.modified),
            "location": format!("{base}/Groups/{}", group.id),
        }),
    );
    let mut rep = Value::Object(m);
    stamp_version(&mut rep);
    rep
}

/// Reads one value of `members` as a user or group that exists: `type` when given,
/// else whichever the id names.
async fn member_of(ctx: &Ctx, item: &Value) -> Result<Member, ScimError> {
    let value = item
        .get("value")
        .and_then(Value::as_str)
        .ok_or_else(|| ScimError::invalid_value("Each member needs a 'value': the member's id."))?;
    let kind = item
        .get("type")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase);
    let by_ref = item.get("$ref").and_then(Value::as_str).map(|r| {
        if r.contains("/Groups/") {
            "group"
        } else {
            "user"
        }
    });
    let kind = kind.as_deref().or(by_ref);
    let missing =
        || ScimError::invalid_value(format!("The member '{value}' is not a user or group here."));
    let as_user = || async {
        let Some(id) = UserId::parse(value) else {
            return Ok(None);
        };
        match ctx.state.get_user(ctx.p.caller(), &user_ref(id)).await {
            Ok(u) if u.id == id => Ok(Some(Member::User(id))),
            Ok(_) | Err(crate::service::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(ScimError::from(e)),
        }
    };
    let as_group = || async {
        let Some(id) = GroupId::parse(value) else {
            return Ok(None);
        };
        match ctx.state.get_group(ctx.p.caller(), &group_ref(id)).await {
            Ok(g) if g.id == id => Ok(Some(Member::Group(id))),
            Ok(_) | Err(crate::service::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(ScimError::from(e)),
        }
    };
    let found = match kind {
        Some("user") => as_user().await?,
        Some("group") => as_group().await?,
        Some(_) => {
            return Err(ScimError::invalid_value(
                "A member's type is User or Group.",
            ));
        }
        None => match as_user().await? {
            Some(m) => Some(m),
            None => as_group().await?,
        },
    };
    found.ok_or_else(missing)
}

async fn add(ctx: &Ctx, group: GroupId, m: Member) -> Result<(), ScimError> {
    match m {
        Member::User(u) => ctx.state.provision_add_member(&ctx.p, group, u).await?,
        Member::Group(g) => ctx.state.provision_add_child(&ctx.p, group, g).await?,
    }
    Ok(())
}

async fn remove(ctx: &Ctx, group: GroupId, m: Member) -> Result<(), ScimError> {
    match m {
        Member::User(u) => ctx.state.provision_remove_member(&ctx.p, group, u).await?,
        Member::Group(g) => ctx.state.provision_remove_child(&ctx.p, group, g).await?,
    };
    Ok(())
}

/// The members a list of member values names, all checked before any change.
async fn members_of(ctx: &Ctx, value: Option<&Value>) -> Result<Vec<Member>, ScimError> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a.clone(),
        Some(other) => vec![other.clone()],
    };
    let mut out = Vec::with_capacity(items.len());
    for item in &items {
        let m = member_of(ctx, item).await?;
        if !out.contains(&m) {
            out.push(m);
        }
    }
    Ok(out)
}

/// Makes the direct members exactly `wanted`.
async fn set_members(ctx: &Ctx, group: GroupId, wanted: &[Member]) -> Result<(), ScimError> {
    let now = members(ctx, group).await?;
    for m in wanted.iter().filter(|m| !now.contains(m)) {
        add(ctx, group, *m).await?;
    }
    for m in now.iter().filter(|m| !wanted.contains(m)) {
        remove(ctx, group, *m).await?;
    }
    Ok(())
}

/// The group's custom properties with the SCIM ones replaced by `body`'s.
fn custom_of(body: &Map<String, Value>, existing: &Map<String, Value>) -> Map<String, Value> {
    let mut custom: Map<String, Value> = existing
        .iter()
        .filter(|(k, _)| !k.starts_with(KEY))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in body {
        if k != "displayName" && k != "members" {
            custom.insert(format!("{KEY}{k}"), v.clone());
        }
    }
    custom
}

fn name_of(body: &Map<String, Value>) -> Result<String, ScimError> {
    body.get("displayName")
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .map(str::to_owned)
        .ok_or_else(|| ScimError::invalid_value("displayName is required."))
}

/// `POST /Groups`.
pub async fn create(ctx: &Ctx, body: Value) -> Result<Reply, ScimError> {
    let body = GROUPS.read_body(body)?;
    let name = name_of(&body)?;
    let wanted = members_of(ctx, body.get("members")).await?;
    let input = GroupInput {
        name: Patch::Value(name),
        description: Patch::Absent,
        kind: Patch::Absent,
        custom: Patch::Value(custom_of(&body, &Map::new())),
    };
    let group = ctx.state.provision_create_group(&ctx.p, input).await?;
    for m in &wanted {
        add(ctx, group.id, *m).await?;
    }
    let group = load(ctx, &group.id.to_string()).await?;
    Ok(Reply::resource(
        StatusCode::CREATED,
        render(&group, &wanted, &ctx.base),
    ))
}

/// `GET /Groups/{id}`.
pub async fn get(
    ctx: &Ctx,
    id: &str,
    projection: &Projection,
    headers: &HeaderMap,
) -> Result<Reply, ScimError> {
    let group = load(ctx, id).await?;
    // The version covers the members, so they are read when a version is compared.
    let with_members = projection.wants("members") || headers.contains_key(header::IF_NONE_MATCH);
    let rep = representation(ctx, &group, with_members).await?;
    if with_members && not_modified(headers, &rep) {
        let mut r = Reply::no_content();
        r.status = StatusCode::NOT_MODIFIED;
        r.etag = rep["meta"]["version"].as_str().map(str::to_owned);
        return Ok(r);
    }
    let mut reply = Reply::resource(StatusCode::OK, rep.clone());
    reply.body = Some(projection.apply(rep, &GROUPS));
    Ok(reply)
}

async fn write(ctx: &Ctx, group: &Group, body: &Map<String, Value>) -> Result<(), ScimError> {
    let input = GroupInput {
        name: Patch::Value(name_of(body)?),
        description: Patch::Absent,
        kind: Patch::Absent,
        custom: Patch::Value(custom_of(body, &group.custom)),
    };
    ctx.state
        .provision_update_group(&ctx.p, group.id, input)
        .await?;
    Ok(())
}

/// `PUT /Groups/{id}`: name, `externalId` and the whole member list.
pub async fn put(
    ctx: &Ctx,
    id: &str,
    body: Value,
    headers: &HeaderMap,
) -> Result<Reply, ScimError> {
    let _turn = ctx.state.provisioning_turn(id).await;
    let group = load(ctx, id).await?;
    if headers.contains_key(header::IF_MATCH) {
        check_if_match(headers, &representation(ctx, &group, true).await?)?;
    }
    let body = GROUPS.read_body(body)?;
    let wanted = members_of(ctx, body.get("members")).await?;
    write(ctx, &group, &body).await?;
    set_members(ctx, group.id, &wanted).await?;
    let group = load(ctx, id).await?;
    Ok(Reply::resource(
        StatusCode::OK,
        representation(ctx, &group, true).await?,
    ))
}

/// The member ids a removal filter names when it is `value eq "…"` terms joined by
/// `or` (what clients send); `None` for any other filter.
fn ids_in(f: &Filter) -> Option<Vec<String>> {
    match f {
        Filter::Compare {
            attr,
            op: CompareOp::Eq,
            value: CompValue::String(v),
        } if attr.name.eq_ignore_ascii_case("value") && attr.sub.is_none() => Some(vec![v.clone()]),
        Filter::Or(items) => {
            let mut out = Vec::new();
            for i in items {
                out.extend(ids_in(i)?);
            }
            Some(out)
        }
        _ => None,
    }
}

/// Whether an operation is about `members`; a path-less one is split in two.
fn split_members(op: &Operation) -> (Option<Operation>, Option<Operation>) {
    let is_members = |p: &str| {
        let p = p.rsplit_once(':').map_or(p, |(uri, rest)| {
            if uri.eq_ignore_ascii_case(GROUP) {
                rest
            } else {
                p
            }
        });
        p.len() >= 7 && p[..7].eq_ignore_ascii_case("members")
    };
    match (&op.path, &op.value) {
        (Some(p), _) if is_members(p) => (Some(op.clone()), None),
        (Some(_), _) => (None, Some(op.clone())),
        (None, Some(Value::Object(v))) => {
            let mut rest = v.clone();
            let key = v
                .keys()
                .find(|k| k.eq_ignore_ascii_case("members"))
                .cloned();
            let members = key.and_then(|k| rest.remove(&k)).map(|m| Operation {
                op: op.op,
                path: Some("members".into()),
                value: Some(m),
            });
            let other = (!rest.is_empty()).then_some(Operation {
                op: op.op,
                path: None,
                value: Some(Value::Object(rest)),
            });
            (members, other)
        }
        (None, _) => (None, Some(op.clone())),
    }
}

async fn members_op(ctx: &Ctx, group: GroupId, op: &Operation) -> Result<(), ScimError> {
    let path = op.path.as_deref().unwrap_or("members");
    let parsed = scim_filter::parse_path(path)
        .map_err(|e| ScimError::invalid_path(format!("The path '{path}' cannot be read: {e}.")))?;
    if parsed.sub.is_some() || parsed.attr.sub.is_some() {
        return Err(ScimError::mutability(
            "A member's sub-attributes cannot be changed; add or remove the member.",
        ));
    }
    match (op.op, &parsed.filter) {
        (Op::Add, None) => {
            for m in members_of(ctx, op.value.as_ref()).await? {
                add(ctx, group, m).await?;
            }
        }
        (Op::Replace, None) => {
            let wanted = members_of(ctx, op.value.as_ref()).await?;
            set_members(ctx, group, &wanted).await?;
        }
        (Op::Remove, None) => match &op.value {
            // Entra ID: the members to remove as the value.
            Some(v) => {
                let items = match v {
                    Value::Array(a) => a.clone(),
                    other => vec![other.clone()],
                };
                let now = members(ctx, group).await?;
                for item in items {
                    let id = item
                        .get("value")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    for m in now.iter().filter(|m| m.id().eq_ignore_ascii_case(id)) {
                        remove(ctx, group, *m).await?;
                    }
                }
            }
            None => set_members(ctx, group, &[]).await?,
        },
        (Op::Remove, Some(f)) => {
            let now = members(ctx, group).await?;
            let hits: Vec<Member> = match ids_in(f) {
                Some(ids) => now
                    .into_iter()
                    .filter(|m| ids.iter().any(|i| i.eq_ignore_ascii_case(&m.id())))
                    .collect(),
                None => now
                    .into_iter()
                    .filter(|m| scim_filter::matches(f, &member_json(*m, &ctx.base)))
                    .collect(),
            };
            for m in hits {
                remove(ctx, group, m).await?;
            }
        }
        (Op::Add | Op::Replace, Some(_)) => {
            return Err(ScimError::mutability(
                "Members are added or removed, not changed in place.",
            ));
        }
    }
    Ok(())
}

/// `PATCH /Groups/{id}`.
pub async fn patch(
    ctx: &Ctx,
    id: &str,
    body: Value,
    headers: &HeaderMap,
    projection: &Projection,
) -> Result<Reply, ScimError> {
    let _turn = ctx.state.provisioning_turn(id).await;
    let ops = patch::operations(body)?;
    let group = load(ctx, id).await?;
    if headers.contains_key(header::IF_MATCH) {
        check_if_match(headers, &representation(ctx, &group, true).await?)?;
    }
    let current = render(&group, &[], &ctx.base);
    let mut doc = current.as_object().cloned().unwrap_or_default();
    for k in ["id", "meta", "schemas"] {
        doc.remove(k);
    }
    let before = doc.clone();
    // Checked up front, so a bad operation changes nothing of the rest.
    let mut member_ops = Vec::new();
    for op in &ops {
        let (members, other) = split_members(op);
        if let Some(m) = members {
            member_ops.push(m);
        }
        if let Some(o) = other {
            patch::apply(&mut doc, &GROUPS, &o)?;
        }
    }
    if doc != before {
        doc.insert("schemas".into(), json!([GROUP]));
        let body = GROUPS.read_body(Value::Object(doc))?;
        write(ctx, &group, &body).await?;
    }
    for op in &member_ops {
        members_op(ctx, group.id, op).await?;
    }
    let group = load(ctx, id).await?;
    let rep = representation(ctx, &group, projection.wants("members")).await?;
    let mut reply = Reply::resource(StatusCode::OK, rep.clone());
    reply.body = Some(projection.apply(rep, &GROUPS));
    Ok(reply)
}

/// `DELETE /Groups/{id}`.
pub async fn delete(ctx: &Ctx, id: &str, headers: &HeaderMap) -> Result<Reply, ScimError> {
    let _turn = ctx.state.provisioning_turn(id).await;
    let group = load(ctx, id).await?;
    if headers.contains_key(header::IF_MATCH) {
        check_if_match(headers, &representation(ctx, &group, true).await?)?;
    }
    ctx.state.provision_delete_group(&ctx.p, group.id).await?;
    Ok(Reply::no_content())
}

/// A page of groups as representations, and the total.
pub async fn list(ctx: &Ctx, params: &ListParams) -> Result<(Vec<Value>, i64), ScimError> {
    let (filter, order) = params.request(&resolve)?;
    let (page, total) = list::window(params.start_index - 1, params.count, |page| {
        let req = list::page_request(filter.clone(), order.clone(), page);
        async move { Ok(ctx.state.list_groups(ctx.p.caller(), &req).await?) }
    })
    .await?;
    let with_members = params.projection.wants("members");
    let mut out = Vec::with_capacity(page.len());
    for group in &page {
        let rep = representation(ctx, group, with_members).await?;
        out.push(params.projection.apply(rep, &GROUPS));
    }
    Ok((out, total))
}

async fn list_reply(ctx: &Ctx, params: ListParams) -> Result<Reply, ScimError> {
    let (items, total) = list(ctx, &params).await?;
    Ok(Reply::ok(list::list_response(
        items,
        total,
        params.start_index,
    )))
}

/// `GET /Groups`.
pub async fn list_handler(ctx: Ctx, q: RawQuery) -> Result<Reply, ScimError> {
    list_reply(&ctx, ListParams::from_query(list::raw(&q))?).await
}

/// `POST /Groups/.search`.
pub async fn search_handler(ctx: Ctx, ScimBody(body): ScimBody) -> Result<Reply, ScimError> {
    list_reply(&ctx, ListParams::from_search(body)?).await
}

/// `POST /Groups`.
pub async fn create_handler(ctx: Ctx, ScimBody(body): ScimBody) -> Result<Reply, ScimError> {
    create(&ctx, body).await
}

/// `GET /Groups/{id}`.
pub async fn get_handler(
    ctx: Ctx,
    Path(id): Path<String>,
    q: RawQuery,
    headers: HeaderMap,
) -> Result<Reply, ScimError> {
    get(&ctx, &id, &Projection::from_query(list::raw(&q)), &headers).await
}

/// `PUT /Groups/{id}`.
pub async fn replace_handler(
    ctx: Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
    ScimBody(body): ScimBody,
) -> Result<Reply, ScimError> {
    put(&ctx, &id, body, &headers).await
}

/// `PATCH /Groups/{id}`.
pub async fn patch_handler(
    ctx: Ctx,
    Path(id): Path<String>,
    q: RawQuery,
    headers: HeaderMap,
    ScimBody(body): ScimBody,
) -> Result<Reply, ScimError> {
    patch(
        &ctx,
        &id,
        body,
        &headers,
        &Projection::from_query(list::raw(&q)),
    )
    .await
}

/// `DELETE /Groups/{id}`.
pub async fn delete_handler(
    ctx: Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Reply, ScimError> {
    delete(&ctx, &id, &headers).await
}
