//! `/Users` and `/Me`: the SCIM User (core schema and enterprise extension) over
//! gatehouse's users.
//!
//! Mapping (docs/scim.md has the table): `userName` ↔ username, the primary (else first)
//! of `emails` ↔ email, `name.givenName`/`familyName` ↔ first/last name,
//! `preferredLanguage` ↔ language, `timezone` ↔ timezone, `active` ↔ not suspended,
//! `password` through the password policy, `groups` read-only from the memberships.
//! Everything else SCIM says about a user (`externalId`, `displayName`, the rest of
//! `name`, the whole `emails` list, phone numbers, the enterprise extension, …) is kept
//! in the user's custom properties under keys starting `scim.`, so a round trip loses
//! nothing and the Contensis API shows it too; the client's own custom keys are left
//! alone.

use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, Method, StatusCode};
use serde_json::{Map, Value, json};

use super::error::ScimError;
use super::list::{self, ListParams, Projection};
use super::schema::{self, ENTERPRISE, USER, USERS};
use super::{Ctx, Reply, ScimBody, check_if_match, not_modified, patch, stamp_version, time};
use crate::domain::group::Group;
use crate::domain::ids::{IdOrName, UserId, UserRef};
use crate::domain::user::User;
use crate::query::ast::{FieldRef, Relation, USERS as USER_FIELDS};
use crate::query::scim_filter::{AttrPath, Mapped};
use crate::service::Patch;
use crate::service::users::{CreateOptions, CredentialsInput, UpdateMode, UserAction, UserInput};

/// The prefix of the custom-property keys that hold SCIM attributes.
pub const KEY: &str = "scim.";
/// The prefix of the keys of enterprise-extension attributes.
pub const ENTERPRISE_KEY: &str = "scim.enterprise.";

/// Attributes with a column of their own (or none at all), never stored as `scim.*`.
const MAPPED: &[&str] = &[
    "userName",
    "preferredLanguage",
    "timezone",
    "active",
    "password",
    "groups",
];

/// What a SCIM attribute is in the user query fields (filters and `sortBy`).
pub fn resolve(a: &AttrPath) -> Result<Mapped, String> {
    let named = |n: &str| -> Result<Mapped, String> {
        USER_FIELDS
            .lookup(n)
            .map(Mapped::field)
            .ok_or_else(|| format!("'{a}' cannot be filtered on"))
    };
    let custom = |k: String| Ok(Mapped::field(FieldRef::Custom(k)));
    let refused = || Err(format!("'{a}' cannot be filtered or sorted on"));
    match a.uri.as_deref() {
        None => {}
        Some(u) if u.eq_ignore_ascii_case(USER) => {}
        Some(u) if u.eq_ignore_ascii_case(ENTERPRISE) => {
            let attr = schema::ENTERPRISE_ATTRS
                .iter()
                .find(|x| x.name.eq_ignore_ascii_case(&a.name));
            return match (attr, &a.sub) {
                (Some(x), None) if x.ty != schema::Type::Complex => {
                    custom(format!("{ENTERPRISE_KEY}{}", x.name))
                }
                _ => refused(),
            };
        }
        Some(_) => return refused(),
    }
    let name = a.name.to_ascii_lowercase();
    let sub = a.sub.as_deref().map(str::to_ascii_lowercase);
    match (name.as_str(), sub.as_deref()) {
        ("id", None) => named("id"),
        ("username", None) => named("username"),
        ("emails", None | Some("value")) => named("email"),
        ("name", Some("givenname")) => named("firstName"),
        ("name", Some("familyname")) => named("lastName"),
        ("preferredlanguage", None) => named("language"),
        ("timezone", None) => named("timezone"),
        ("active", None) => Ok(Mapped {
            negated: true,
            ..named("status.suspended")?
        }),
        // The groups the user is in, directly or through child groups.
        ("groups", None | Some("value")) => {
            Ok(Mapped::related(&[Relation::MemberOf { nested: true }]))
        }
        ("meta", Some("created")) => named("created"),
        ("meta", Some("lastmodified")) => named("modified"),
        (_, None) => match USERS.attr(&a.name) {
            Some(x) if x.ty != schema::Type::Complex && !x.multi && !MAPPED.contains(&x.name) => {
                custom(format!("{KEY}{}", x.name))
            }
            _ => refused(),
        },
        _ => refused(),
    }
}

fn user_ref(id: UserId) -> UserRef {
    UserRef::Key(IdOrName {
        id: Some(id),
        name: id.to_string(),
    })
}

/// The user a SCIM id names, or 404.
pub async fn load(ctx: &Ctx, id: &str) -> Result<User, ScimError> {
    let missing = || ScimError::not_found(format!("No user has the id '{id}'."));
    let uid = UserId::parse(id).ok_or_else(missing)?;
    match ctx.state.get_user(ctx.p.caller(), &user_ref(uid)).await {
        Ok(u) if u.id == uid => Ok(u),
        Ok(_) => Err(missing()),
        Err(crate::service::Error::NotFound { .. }) => Err(missing()),
        Err(e) => Err(e.into()),
    }
}

/// The SCIM representation of a user, with `groups` when asked for.
pub async fn representation(ctx: &Ctx, user: &User, with_groups: bool) -> Result<Value, ScimError> {
    let groups = if with_groups {
        ctx.state.provision_user_groups(&ctx.p, user.id).await?
    } else {
        Vec::new()
    };
    Ok(render(user, &groups, &ctx.base))
}

/// The representation, from the user and the groups it is in (`true`: directly).
pub fn render(user: &User, groups: &[(Group, bool)], base: &str) -> Value {
    let mut m = Map::new();
    let mut ext = Map::new();
    let mut name = Map::new();
    let mut emails: Option<Vec<Value>> = None;
    for (key, value) in &user.custom {
        // Only attributes of the schemas: a `scim.*` key some other client wrote is
        // not shown as an attribute SCIM would then refuse on the way back.
        if let Some(attr) = key.strip_prefix(ENTERPRISE_KEY) {
            if schema::ENTERPRISE_ATTRS.iter().any(|a| a.name == attr) {
                ext.insert(attr.to_owned(), value.clone());
            }
        } else if let Some(attr) = key
            .strip_prefix(KEY)
            .filter(|a| USERS.attr(a).is_some_and(|x| x.name == *a))
        {
            match attr {
                "name" => {
                    if let Value::Object(n) = value {
                        name.extend(n.clone());
                    }
                }
                "emails" => emails = value.as_array().cloned(),
                _ => {
                    m.insert(attr.to_owned(), value.clone());
                }
            }
        }
    }
    let mut schemas = vec![json!(USER)];
    if !ext.is_empty() {
        schemas.push(json!(ENTERPRISE));
        m.insert(ENTERPRISE.into(), Value::Object(ext));
    }
    m.insert("schemas".into(), Value::Array(schemas));
    m.insert("id".into(), json!(user.id.to_string()));
    m.insert("userName".into(), json!(user.username));
    if let Some(f) = &user.first_name {
        name.insert("givenName".into(), json!(f));
    }
    if let Some(l) = &user.last_name {
        name.insert("familyName".into(), json!(l));
    }
    if !name.is_empty() {
        m.insert("name".into(), Value::Object(name));
    }
    if let Some(l) = &user.language {
        m.insert("preferredLanguage".into(), json!(l));
    }
    if let Some(t) = &user.timezone {
        m.insert("timezone".into(), json!(t));
    }
    m.insert("active".into(), json!(!user.suspended));
    // The stored list, with the primary (else first) address being the user's email:
    // a change through the Contensis API shows here.
    let mut emails = emails
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| vec![json!({"value": user.email, "primary": true})]);
    let at = primary_index(&emails);
    match &mut emails[at] {
        Value::Object(o) => {
            o.insert("value".into(), json!(user.email));
        }
        other => *other = json!({"value": user.email}),
    }
    m.insert("emails".into(), Value::Array(emails));
    if !groups.is_empty() {
        let list: Vec<Value> = groups
            .iter()
            .map(|(g, direct)| {
                json!({
                    "value": g.id.to_string(),
                    "$ref": format!("{base}/Groups/{}", g.id),
                    "display": g.name,
                    "type": if *direct { "direct" } else { "indirect" },
                })
            })
            .collect();
        m.insert("groups".into(), Value::Array(list));
    }
    m.insert(
        "meta".into(),
        json!({
            "resourceType": "User",
            "created": time(user.created),
            "lastModified": time(user.modified),
            "location": format!("{base}/Users/{}", user.id),
        }),
    );
    let mut rep = Value::Object(m);
    stamp_version(&mut rep);
    rep
}

fn is_true(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// The primary value's index in a non-empty list (the first if none is primary).
pub fn primary_index(items: &[Value]) -> usize {
    items
        .iter()
        .position(|e| is_true(e.get("primary")))
        .unwrap_or(0)
}

/// A checked body as a change to a user.
struct Write {
    input: UserInput,
    password: Option<String>,
    active: Option<bool>,
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

fn patch_of(v: Option<&Value>) -> Patch<String> {
    match v.and_then(text) {
        Some(s) => Patch::Value(s),
        None => Patch::Null,
    }
}

/// Reads a checked body (`schema::ResourceSchema::read_body`) as a whole user, as PUT
/// and POST mean it: what is absent is cleared, except `active` and `password`, which an
/// absent value leaves as they are.
fn write_of(mut body: Map<String, Value>, custom: &Map<String, Value>) -> Result<Write, ScimError> {
    let user_name = body
        .remove("userName")
        .and_then(|v| text(&v))
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| ScimError::invalid_value("userName is required."))?;
    let emails = body
        .get("emails")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let email = if emails.is_empty() {
        None
    } else {
        emails[primary_index(&emails)].get("value").and_then(text)
    };
    let email = email
        .or_else(|| user_name.contains('@').then(|| user_name.clone()))
        .ok_or_else(|| {
            ScimError::invalid_value("emails is required: gatehouse keeps an email for every user.")
        })?;
    let password = body.remove("password").and_then(|v| text(&v));
    let active = body.remove("active").and_then(|v| v.as_bool());
    let language = patch_of(body.remove("preferredLanguage").as_ref());
    let timezone = patch_of(body.remove("timezone").as_ref());
    let mut name = match body.remove("name") {
        Some(Value::Object(n)) => n,
        _ => Map::new(),
    };
    let first_name = patch_of(name.remove("givenName").as_ref());
    let last_name = patch_of(name.remove("familyName").as_ref());
    let mut custom: Map<String, Value> = custom
        .iter()
        .filter(|(k, _)| !k.starts_with(KEY))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !name.is_empty() {
        custom.insert(format!("{KEY}name"), Value::Object(name));
    }
    for (key, value) in body {
        if key == ENTERPRISE {
            if let Value::Object(ext) = value {
                for (k, v) in ext {
                    custom.insert(format!("{ENTERPRISE_KEY}{k}"), v);
                }
            }
        } else if key != "groups" {
            custom.insert(format!("{KEY}{key}"), value);
        }
    }
    Ok(Write {
        input: UserInput {
            username: Patch::Value(user_name),
            email: Patch::Value(email),
            first_name,
            last_name,
            timezone,
            language,
            custom: Patch::Value(custom),
            credentials: None,
            expiry: Patch::Absent,
            opt_out_of_notifications: Patch::Absent,
        },
        password,
        active,
    })
}

/// `POST /Users`.
pub async fn create(ctx: &Ctx, body: Value) -> Result<Reply, ScimError> {
    let body = USERS.read_body(body)?;
    let w = write_of(body, &Map::new())?;
    let mut input = w.input;
    input.credentials = w.password.map(|p| CredentialsInput {
        password: Some(p),
        password_change_frequency: Patch::Absent,
    });
    let opts = CreateOptions {
        suspended: w.active == Some(false),
        force_password_reset: false,
    };
    let user = ctx.state.provision_create_user(&ctx.p, input, opts).await?;
    let rep = render(&user, &[], &ctx.base);
    Ok(Reply::resource(StatusCode::CREATED, rep))
}

/// Makes `user` what the checked body says (PUT, and PATCH after its operations).
async fn replace(ctx: &Ctx, user: &User, body: Map<String, Value>) -> Result<User, ScimError> {
    let w = write_of(body, &user.custom)?;
    if w.active == Some(true) && user.suspended {
        ctx.state
            .provision_user_action(&ctx.p, user.id, UserAction::Unsuspend)
            .await?;
    }
    ctx.state
        .provision_update_user(&ctx.p, user.id, w.input, UpdateMode::Replace)
        .await?;
    if let Some(password) = w.password {
        match ctx
            .state
            .provision_password(&ctx.p, user.id, password)
            .await
        {
            Ok(()) => {}
            // Clients (Okta) send the password with every PUT: the same one again is
            // no change.
            Err(crate::service::Error::Invalid(f)) if f.reason.contains("must differ") => {}
            Err(e) => return Err(e.into()),
        }
    }
    if w.active == Some(false) && !user.suspended {
        ctx.state
            .provision_user_action(&ctx.p, user.id, UserAction::Suspend)
            .await?;
    }
    load(ctx, &user.id.to_string()).await
}

/// `GET /Users/{id}`.
pub async fn get(
    ctx: &Ctx,
    id: &str,
    projection: &Projection,
    headers: &HeaderMap,
) -> Result<Reply, ScimError> {
    let user = load(ctx, id).await?;
    let rep = representation(ctx, &user, true).await?;
    if not_modified(headers, &rep) {
        let mut r = Reply::no_content();
        r.status = StatusCode::NOT_MODIFIED;
        r.etag = rep["meta"]["version"].as_str().map(str::to_owned);
        return Ok(r);
    }
    let mut reply = Reply::resource(StatusCode::OK, rep.clone());
    reply.body = Some(projection.apply(rep, &USERS));
    Ok(reply)
}

/// `PUT /Users/{id}`.
pub async fn put(
    ctx: &Ctx,
    id: &str,
    body: Value,
    headers: &HeaderMap,
) -> Result<Reply, ScimError> {
    let _turn = ctx.state.provisioning_turn(id).await;
    let user = load(ctx, id).await?;
    check_if_match(headers, &representation(ctx, &user, true).await?)?;
    let body = USERS.read_body(body)?;
    let user = replace(ctx, &user, body).await?;
    Ok(Reply::resource(
        StatusCode::OK,
        representation(ctx, &user, true).await?,
    ))
}

/// `PATCH /Users/{id}`: the operations are applied to the representation, and the
/// result is then written as a PUT would (nothing is written when nothing changed).
pub async fn patch(
    ctx: &Ctx,
    id: &str,
    body: Value,
    headers: &HeaderMap,
) -> Result<Reply, ScimError> {
    let _turn = ctx.state.provisioning_turn(id).await;
    let ops = patch::operations(body)?;
    let user = load(ctx, id).await?;
    let current = representation(ctx, &user, true).await?;
    check_if_match(headers, &current)?;
    let mut doc = current.as_object().cloned().unwrap_or_default();
    for k in ["id", "meta", "groups", "schemas"] {
        doc.remove(k);
    }
    let before = doc.clone();
    for op in &ops {
        patch::apply(&mut doc, &USERS, op)?;
    }
    if doc == before {
        return Ok(Reply::resource(StatusCode::OK, current));
    }
    let mut schemas = vec![json!(USER)];
    if doc.contains_key(ENTERPRISE) {
        schemas.push(json!(ENTERPRISE));
    }
    doc.insert("schemas".into(), Value::Array(schemas));
    let body = USERS.read_body(Value::Object(doc))?;
    let user = replace(ctx, &user, body).await?;
    Ok(Reply::resource(
        StatusCode::OK,
        representation(ctx, &user, true).await?,
    ))
}

/// `DELETE /Users/{id}`.
pub async fn delete(ctx: &Ctx, id: &str, headers: &HeaderMap) -> Result<Reply, ScimError> {
    let _turn = ctx.state.provisioning_turn(id).await;
    let user = load(ctx, id).await?;
    if headers.contains_key(axum::http::header::IF_MATCH) {
        check_if_match(headers, &representation(ctx, &user, true).await?)?;
    }
    ctx.state.provision_delete_user(&ctx.p, user.id).await?;
    Ok(Reply::no_content())
}

/// A page of users as representations, and the total.
pub async fn list(ctx: &Ctx, params: &ListParams) -> Result<(Vec<Value>, i64), ScimError> {
    let (filter, order) = params.request(&resolve)?;
    let (page, total) = list::window(params.start_index - 1, params.count, |page| {
        let req = list::page_request(filter.clone(), order.clone(), page);
        async move { Ok(ctx.state.list_users(ctx.p.caller(), &req).await?) }
    })
    .await?;
    let with_groups = params.projection.wants("groups");
    let mut out = Vec::with_capacity(page.len());
    for user in &page {
        let rep = representation(ctx, user, with_groups).await?;
        out.push(params.projection.apply(rep, &USERS));
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

// ---------------------------------------------------------------------------------------
// Handlers.

/// `GET /Users`.
pub async fn list_handler(ctx: Ctx, q: RawQuery) -> Result<Reply, ScimError> {
    list_reply(&ctx, ListParams::from_query(list::raw(&q))?).await
}

/// `POST /Users/.search`.
pub async fn search_handler(ctx: Ctx, ScimBody(body): ScimBody) -> Result<Reply, ScimError> {
    list_reply(&ctx, ListParams::from_search(body)?).await
}

/// `POST /Users`.
pub async fn create_handler(ctx: Ctx, ScimBody(body): ScimBody) -> Result<Reply, ScimError> {
    create(&ctx, body).await
}

/// `GET /Users/{id}`.
pub async fn get_handler(
    ctx: Ctx,
    Path(id): Path<String>,
    q: RawQuery,
    headers: HeaderMap,
) -> Result<Reply, ScimError> {
    get(&ctx, &id, &Projection::from_query(list::raw(&q)), &headers).await
}

/// `PUT /Users/{id}`.
pub async fn replace_handler(
    ctx: Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
    ScimBody(body): ScimBody,
) -> Result<Reply, ScimError> {
    put(&ctx, &id, body, &headers).await
}

/// `PATCH /Users/{id}`.
pub async fn patch_handler(
    ctx: Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
    ScimBody(body): ScimBody,
) -> Result<Reply, ScimError> {
    patch(&ctx, &id, body, &headers).await
}

/// `DELETE /Users/{id}`.
pub async fn delete_handler(
    ctx: Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Reply, ScimError> {
    delete(&ctx, &id, &headers).await
}

/// `/Me`: the authenticated user's own resource (RFC 7644 §3.11), every method.
pub async fn me_handler(
    ctx: Ctx,
    method: Method,
    q: RawQuery,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Reply, ScimError> {
    let id = ctx.p.caller().user.id.to_string();
    let body = || -> Result<Value, ScimError> {
        if !super::super::content_type::is_json(&headers) {
            return Err(ScimError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                None,
                "Send the body as application/scim+json (or application/json).",
            ));
        }
        super::parse_json(&body)
    };
    match method {
        Method::GET => get(&ctx, &id, &Projection::from_query(list::raw(&q)), &headers).await,
        Method::PUT => put(&ctx, &id, body()?, &headers).await,
        Method::PATCH => patch(&ctx, &id, body()?, &headers).await,
        Method::DELETE => delete(&ctx, &id, &headers).await,
        _ => Err(ScimError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            None,
            "Not allowed on /Me.",
        )),
    }
}
