//! `/users`: user CRUD, list, and the user's groups.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, head, post};

use super::error::ApiError;
use super::extract::{
    AppJson, Auth, DEFAULT_PAGE_SIZE, Field, MAX_PAGE_SIZE, MaybeAuth, Params, Schema, Segments,
    leaf,
};
use super::{AppState, views};
use crate::clock::Millis;
use crate::domain::ids::{GroupRef, UserRef};
use crate::query::ast::{FieldSet, GROUPS, OrderBy, USERS};
use crate::query::error::QueryError;
use crate::query::{json, zenql};
use crate::service::Caller;
use crate::service::users::{ActionInput, CreateOptions, PasswordInput, UpdateMode, UserInput};
use crate::store::ListQuery;
use crate::store::PageRequest;
use crate::store::filter_sql::Ctx;
use serde_json::{Value, json};

/// The body of `POST /users/search`.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SearchInput {
    /// The JSON `where` array (spec §7).
    #[serde(rename = "where")]
    pub filter: Value,
    /// `[{"asc": F} | {"desc": F}]` or a list of field names.
    pub order_by: Value,
    /// Zero-based page.
    pub page_index: Option<u32>,
    /// Page size, 1 to 1000.
    pub page_size: Option<u32>,
}

impl Schema for SearchInput {
    const FIELDS: &'static [Field] = &[
        leaf("where"),
        leaf("orderBy"),
        leaf("pageIndex"),
        leaf("pageSize"),
    ];
}

impl Schema for PasswordInput {
    const FIELDS: &'static [Field] = &[leaf("existing"), leaf("new")];
}

impl Schema for ActionInput {
    const FIELDS: &'static [Field] = &[leaf("type")];
}

impl Schema for UserInput {
    const FIELDS: &'static [Field] = &[
        leaf("username"),
        leaf("email"),
        leaf("firstName"),
        leaf("lastName"),
        leaf("timezone"),
        leaf("language"),
        leaf("custom"),
        Field {
            name: "credentials",
            nested: &[leaf("password"), leaf("passwordChangeFrequency")],
        },
        leaf("expiry"),
        leaf("optOutOfNotifications"),
    ];
}

/// The routes under `/users`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users", get(list).post(create))
        .route("/users/search", get(search_get).post(search_post))
        .route(
            "/users/{user}",
            get(read).put(update).patch(patch).delete(remove),
        )
        .route("/users/{user}/groups", get(groups))
        .route("/users/{user}/groups/{groups}", head(in_groups))
        .route("/users/{user}/credentials/password", post(password))
        .route("/users/{user}/actions", post(action))
}

/// Reads `q`, `zenql`, `order` and paging for a list of `fields`.
pub fn list_query(
    params: &Params,
    fields: &FieldSet,
    caller: &Caller,
    now: Millis,
) -> Result<ListQuery, ApiError> {
    let filter = match params.get("zenql").filter(|z| !z.trim().is_empty()) {
        Some(z) => Some(zenql::parse(z, fields).map_err(|e| query_error("zenql", &e))?),
        None => None,
    };
    let order = match params.get("order").filter(|o| !o.trim().is_empty()) {
        Some(o) => json::parse_order_param(o, fields).map_err(|e| query_error("order", &e))?,
        None => OrderBy(Vec::new()),
    };
    Ok(ListQuery {
        q: params.get("q").map(str::to_owned),
        filter,
        order,
        page: params.page()?,
        ctx: Ctx {
            now_ms: now,
            current_user_id: caller.user.id.to_string(),
        },
    })
}

/// A 400 for a query that does not parse, pointing at the position or JSON path.
pub fn query_error(parameter: &str, e: &QueryError) -> ApiError {
    ApiError::bad_request(format!("Invalid {parameter}: {e}.")).with_data(json!({
        "parameter": parameter,
        "position": e.position(),
        "path": e.path(),
    }))
}

async fn list(
    State(s): State<AppState>,
    Auth(caller): Auth,
    params: Params,
) -> Result<Response, ApiError> {
    let query = list_query(&params, &USERS, &caller, s.now())?;
    let page = s.list_users(&caller, &query).await?;
    let now = s.now();
    Ok(Json(views::page(&page, query.page, |u| views::user(u, now))).into_response())
}

async fn create(
    State(s): State<AppState>,
    Auth(caller): Auth,
    params: Params,
    AppJson(input): AppJson<UserInput>,
) -> Result<Response, ApiError> {
    let opts = CreateOptions {
        suspended: params.bool("suspended")?,
        force_password_reset: params.bool("forcePasswordReset")?,
    };
    let user = s.create_user(&caller, input, opts).await?;
    Ok((StatusCode::CREATED, Json(views::user(&user, s.now()))).into_response())
}

async fn read(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments(user): Segments<String>,
) -> Result<Response, ApiError> {
    let user = s.get_user(&caller, &UserRef::parse(&user)).await?;
    Ok(Json(views::user(&user, s.now())).into_response())
}

async fn update(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments(user): Segments<String>,
    AppJson(input): AppJson<UserInput>,
) -> Result<Response, ApiError> {
    let user = s
        .update_user(&caller, &UserRef::parse(&user), input, UpdateMode::Replace)
        .await?;
    Ok(Json(views::user(&user, s.now())).into_response())
}

async fn patch(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments(user): Segments<String>,
    AppJson(input): AppJson<UserInput>,
) -> Result<Response, ApiError> {
    let user = s
        .update_user(
            &caller,
            &UserRef::parse(&user),
            input,
            UpdateMode::MergePatch,
        )
        .await?;
    Ok(Json(views::user(&user, s.now())).into_response())
}

async fn remove(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments(user): Segments<String>,
) -> Result<StatusCode, ApiError> {
    s.delete_user(&caller, &UserRef::parse(&user)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn groups(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments(user): Segments<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let query = list_query(&params, &GROUPS, &caller, s.now())?;
    let page = s
        .user_groups(
            &caller,
            &UserRef::parse(&user),
            params.bool("includeInherited")?,
            &params.groups("excludedGroups"),
            &query,
        )
        .await?;
    Ok(Json(views::page(&page, query.page, views::group)).into_response())
}

async fn in_groups(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments((user, groups)): Segments<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let refs: Vec<GroupRef> = groups
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(GroupRef::group)
        .collect();
    let member = s
        .user_in_any_group(&caller, &UserRef::parse(&user), &refs)
        .await?;
    Ok(if member {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    })
}

async fn password(
    State(s): State<AppState>,
    MaybeAuth(caller): MaybeAuth,
    Segments(user): Segments<String>,
    AppJson(input): AppJson<PasswordInput>,
) -> Result<StatusCode, ApiError> {
    s.change_password(caller.as_ref(), &UserRef::parse(&user), input)
        .await?;
    Ok(StatusCode::OK)
}

async fn action(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments(user): Segments<String>,
    AppJson(input): AppJson<ActionInput>,
) -> Result<StatusCode, ApiError> {
    s.user_action(&caller, &UserRef::parse(&user), input)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Runs a JSON search (spec §7) for either transport.
async fn search(s: &AppState, caller: &Caller, input: SearchInput) -> Result<Response, ApiError> {
    let filter = match &input.filter {
        Value::Null => None,
        w => Some(json::parse_where(w, &USERS).map_err(|e| query_error("where", &e))?),
    };
    let order = match &input.order_by {
        Value::Null => OrderBy(Vec::new()),
        o => json::parse_order_by(o, &USERS).map_err(|e| query_error("orderBy", &e))?,
    };
    let page = PageRequest {
        index: input.page_index.unwrap_or(0),
        size: input.page_size.unwrap_or(DEFAULT_PAGE_SIZE),
    };
    if page.size == 0 || page.size > MAX_PAGE_SIZE {
        return Err(ApiError::bad_request(format!(
            "pageSize must be between 1 and {MAX_PAGE_SIZE}."
        )));
    }
    let now = s.now();
    let query = ListQuery {
        q: None,
        filter,
        order,
        page,
        ctx: Ctx {
            now_ms: now,
            current_user_id: caller.user.id.to_string(),
        },
    };
    let result = s.list_users(caller, &query).await?;
    Ok(Json(views::page(&result, page, |u| views::user(u, now))).into_response())
}

/// Parses a JSON value carried in the query string.
fn json_param(params: &Params, name: &str) -> Result<Value, ApiError> {
    match params.get(name).filter(|v| !v.trim().is_empty()) {
        None => Ok(Value::Null),
        Some(raw) => serde_json::from_str(raw).map_err(|e| {
            ApiError::bad_request(format!("Query parameter '{name}' is not valid JSON: {e}."))
                .with_data(json!({ "parameter": name }))
        }),
    }
}

async fn search_get(
    State(s): State<AppState>,
    Auth(caller): Auth,
    params: Params,
) -> Result<Response, ApiError> {
    let page = params.page()?;
    let order_by = match json_param(&params, "orderBy") {
        // A bare `orderBy=lastName,-created` is accepted like `order`.
        Err(_) => Value::Array(
            params
                .get("orderBy")
                .unwrap_or_default()
                .split(',')
                .map(|f| Value::String(f.trim().to_owned()))
                .collect(),
        ),
        ok => ok?,
    };
    let input = SearchInput {
        filter: json_param(&params, "where")?,
        order_by,
        page_index: Some(page.index),
        page_size: Some(page.size),
    };
    search(&s, &caller, input).await
}

async fn search_post(
    State(s): State<AppState>,
    Auth(caller): Auth,
    AppJson(input): AppJson<SearchInput>,
) -> Result<Response, ApiError> {
    search(&s, &caller, input).await
}
