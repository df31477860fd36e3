//! `/users`: user CRUD, list, and the user's groups.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiError;
use super::extract::{
    AppJson, Auth, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, MaybeAuth, Params, Segments,
};
use super::openapi::{
    BadRequest, Busy, Conflict, Forbidden, InheritanceParams, ListParams, NotFound, PageParams,
    PayloadTooLarge, TooManyRequests, Unauthorized, Unprocessable, UserPath,
};
use super::token::client_addr;
use super::views::{GroupView, PageView, UserView};
use super::{AppState, views};
use crate::domain::ids::{GroupRef, UserRef};
use crate::domain::names::FieldError;
use crate::domain::page::PageRequest;
use crate::query::ast::{FieldSet, GROUPS, OrderBy, USERS};
use crate::query::error::QueryError;
use crate::query::{json, zenql};
use crate::service::Caller;
use crate::service::ListRequest;
use crate::service::Patch;
use crate::service::users::{
    CreateOptions, CredentialsInput, PasswordInput, UpdateMode, UserAction, UserInput,
};
use serde_json::{Map, Value, json};

/// The body of `POST /users/search`.
#[derive(Debug, Default, Clone, serde::Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct SearchInput {
    /// The JSON `where` array (spec §7): items are ANDed; each is `{"field": F, OP: V}`,
    /// `{"and": [...]}`, `{"or": [...]}` or `{"not": {...}}`.
    #[serde(rename = "where")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub filter: Value,
    /// `[{"asc": F} | {"desc": F}]` or a list of field names; at most 16.
    #[schema(value_type = Option<Vec<Value>>, max_items = 16)]
    pub order_by: Value,
    /// Zero-based page.
    #[schema(format = Int64, maximum = 4_294_967_295_u32)]
    pub page_index: Option<u32>,
    /// Page size, 1 to 1000.
    #[schema(minimum = 1, maximum = 1000)]
    pub page_size: Option<u32>,
}

/// The body of create, PUT and PATCH of a user: what is read is what is documented.
/// Every property is optional on update; `null` clears a nullable field.
#[derive(Debug, Default, serde::Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = UserInput)]
pub struct UserBody {
    /// Defaults to the email on create; `null` is refused.
    #[schema(value_type = Option<String>, max_length = 255)]
    #[serde(default)]
    pub username: Patch<String>,
    /// Required on create; `null` is refused.
    #[schema(value_type = Option<String>, max_length = 255)]
    #[serde(default)]
    pub email: Patch<String>,
    /// Optional profile field.
    #[schema(value_type = Option<String>, max_length = 255)]
    #[serde(default)]
    pub first_name: Patch<String>,
    /// Optional profile field.
    #[schema(value_type = Option<String>, max_length = 255)]
    #[serde(default)]
    pub last_name: Patch<String>,
    /// Optional profile field (an IANA zone name).
    #[schema(value_type = Option<String>, max_length = 255)]
    #[serde(default)]
    pub timezone: Patch<String>,
    /// Optional profile field (a language tag).
    #[schema(value_type = Option<String>, max_length = 255)]
    #[serde(default)]
    pub language: Patch<String>,
    /// Free-form JSON object, at most 64 KiB serialized. PATCH merges it (RFC 7396).
    #[schema(value_type = Option<Object>)]
    #[serde(default)]
    pub custom: Patch<Map<String, Value>>,
    /// The initial password (create only) and the change frequency.
    pub credentials: Option<CredentialsBody>,
    /// RFC 3339 instant after which the account stops working; must be in the future.
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(default)]
    pub expiry: Patch<String>,
    /// Opted out of notifications.
    #[schema(value_type = Option<bool>)]
    #[serde(default)]
    pub opt_out_of_notifications: Patch<bool>,
}

impl From<UserBody> for UserInput {
    fn from(b: UserBody) -> Self {
        Self {
            username: b.username,
            email: b.email,
            first_name: b.first_name,
            last_name: b.last_name,
            timezone: b.timezone,
            language: b.language,
            custom: b.custom,
            credentials: b.credentials.map(|c| CredentialsInput {
                password: c.password,
                password_change_frequency: c.password_change_frequency,
            }),
            expiry: b.expiry,
            opt_out_of_notifications: b.opt_out_of_notifications,
        }
    }
}

/// The `credentials` object of a user body.
#[derive(Debug, Default, serde::Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = CredentialsInput)]
pub struct CredentialsBody {
    /// The initial password (create only; use the password endpoint to change it).
    pub password: Option<String>,
    /// Days before an expirable password must be changed; 0 = never.
    #[schema(value_type = Option<i64>, minimum = 0)]
    #[serde(default)]
    pub password_change_frequency: Patch<i64>,
}

/// The body of `POST /users/{user}/credentials/password`.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[schema(as = PasswordInput)]
pub struct PasswordBody {
    /// The current password; required when changing one's own, or without a token.
    #[serde(default)]
    pub existing: Option<String>,
    /// The new password (at least 8 characters, three kinds of character).
    pub new: String,
}

impl From<PasswordBody> for PasswordInput {
    fn from(b: PasswordBody) -> Self {
        Self {
            existing: b.existing,
            new: b.new,
        }
    }
}

/// The body of `POST /users/{user}/actions`.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[schema(as = ActionInput)]
pub struct ActionBody {
    /// The action, matched case-insensitively; anything else is a 422.
    #[serde(rename = "type")]
    #[schema(value_type = ActionKind)]
    pub kind: String,
}

/// A user action, as `ActionBody::kind` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = UserAction)]
pub enum ActionKind {
    /// No logins; every token refused.
    Suspend,
    /// Lift a suspension.
    Unsuspend,
    /// Lift a lockout.
    Unlock,
    /// Require a new password at the next login.
    ForcePasswordReset,
    /// Let the password expire after `passwordChangeFrequency` days.
    SetPasswordToExpirable,
}

impl ActionKind {
    const ALL: [Self; 5] = [
        Self::Suspend,
        Self::Unsuspend,
        Self::Unlock,
        Self::ForcePasswordReset,
        Self::SetPasswordToExpirable,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Suspend => "suspend",
            Self::Unsuspend => "unsuspend",
            Self::Unlock => "unlock",
            Self::ForcePasswordReset => "forcePasswordReset",
            Self::SetPasswordToExpirable => "setPasswordToExpirable",
        }
    }

    /// The action a body names, case-insensitively; otherwise the 422 naming `type`.
    fn parse(text: &str) -> Result<Self, ApiError> {
        Self::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(text))
            .ok_or_else(|| {
                crate::service::Error::from(FieldError::new(
                    "type",
                    "type must be one of suspend, unsuspend, unlock, forcePasswordReset, setPasswordToExpirable",
                ))
                .into()
            })
    }
}

impl From<ActionKind> for UserAction {
    fn from(k: ActionKind) -> Self {
        match k {
            ActionKind::Suspend => Self::Suspend,
            ActionKind::Unsuspend => Self::Unsuspend,
            ActionKind::Unlock => Self::Unlock,
            ActionKind::ForcePasswordReset => Self::ForcePasswordReset,
            ActionKind::SetPasswordToExpirable => Self::SetPasswordToExpirable,
        }
    }
}

/// `POST /users` options.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[expect(dead_code, reason = "documents the query; `Params` reads it")]
struct CreateParams {
    /// Create the user suspended.
    suspended: Option<bool>,
    /// Require a password change at first login.
    force_password_reset: Option<bool>,
}

/// `GET /users/search` parameters.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[expect(dead_code, reason = "documents the query; `Params` reads it")]
struct SearchParams {
    /// The JSON `where` array (spec §7), as JSON text.
    #[param(rename = "where")]
    filter: Option<String>,
    /// `orderBy` as JSON text, or comma-separated fields like `lastName,-created`; at
    /// most 16 fields.
    order_by: Option<String>,
}

/// The user and a comma-separated list of groups.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[expect(dead_code, reason = "documents the path; `Segments` reads it")]
struct UserGroupsPath {
    /// A user id, username or email, or `@current`.
    #[param(min_length = 1)]
    user: String,
    /// Comma-separated group ids or names.
    #[param(min_length = 1)]
    groups: String,
}

/// The routes under `/users`, with their documentation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(search_get, search_post))
        .routes(routes!(read, update, patch, remove))
        .routes(routes!(groups))
        .routes(routes!(in_groups))
        .routes(routes!(password))
        .routes(routes!(action))
}

/// The longest `q` (in characters, like every string of spec §1).
pub const MAX_Q_CHARS: usize = 255;

/// Reads `q`, `zenql`, `order` and paging for a list of `fields`.
pub fn list_query(params: &Params, fields: &FieldSet) -> Result<ListRequest, ApiError> {
    let filter = match params.get("zenql").filter(|z| !z.trim().is_empty()) {
        Some(z) => Some(zenql::parse(z, fields).map_err(|e| query_error("zenql", &e))?),
        None => None,
    };
    let order = match params.get("order").filter(|o| !o.trim().is_empty()) {
        Some(o) => json::parse_order_param(o, fields).map_err(|e| query_error("order", &e))?,
        None => OrderBy(Vec::new()),
    };
    let q = params.get("q");
    if q.is_some_and(|q| q.chars().nth(MAX_Q_CHARS).is_some()) {
        return Err(ApiError::bad_request(format!(
            "Query parameter 'q' is too long (at most {MAX_Q_CHARS} characters)."
        ))
        .with_data(json!({ "parameter": "q" })));
    }
    Ok(ListRequest {
        q: q.map(str::to_owned),
        filter,
        order,
        page: params.page()?,
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

/// List users.
#[utoipa::path(
    get,
    path = "/users",
    tag = "users",
    operation_id = "listUsers",
    params(ListParams, PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of users.", body = PageView<UserView>),
        BadRequest, Unauthorized, Forbidden,
    ),
)]
async fn list(
    State(s): State<AppState>,
    Auth(caller): Auth,
    params: Params,
) -> Result<Response, ApiError> {
    let query = list_query(&params, &USERS)?;
    let page = s.list_users(&caller, &query).await?;
    let now = s.now();
    Ok(Json(views::page(&page, query.page, |u| views::user(u, now))).into_response())
}

/// Create a user; `username` defaults to the email.
#[utoipa::path(
    post,
    path = "/users",
    tag = "users",
    operation_id = "createUser",
    params(CreateParams),
    request_body = UserBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The new user.", body = UserView),
        BadRequest, Unauthorized, Forbidden, Conflict, PayloadTooLarge, Unprocessable,
    ),
)]
async fn create(
    State(s): State<AppState>,
    Auth(caller): Auth,
    params: Params,
    AppJson(input): AppJson<UserBody>,
) -> Result<Response, ApiError> {
    let opts = CreateOptions {
        suspended: params.bool("suspended")?,
        force_password_reset: params.bool("forcePasswordReset")?,
    };
    let user = s.create_user(&caller, input.into(), opts).await?;
    Ok((StatusCode::CREATED, Json(views::user(&user, s.now()))).into_response())
}

/// Get a user.
#[utoipa::path(
    get,
    path = "/users/{user}",
    tag = "users",
    operation_id = "getUser",
    params(UserPath),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user.", body = UserView),
        BadRequest, Unauthorized, Forbidden, NotFound,
    ),
)]
async fn read(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments(user): Segments<String>,
) -> Result<Response, ApiError> {
    let user = s.get_user(&caller, &UserRef::parse(&user)).await?;
    Ok(Json(views::user(&user, s.now())).into_response())
}

/// Update the profile fields given.
#[utoipa::path(
    put,
    path = "/users/{user}",
    tag = "users",
    operation_id = "updateUser",
    params(UserPath),
    request_body = UserBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The updated user.", body = UserView),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge, Unprocessable,
    ),
)]
async fn update(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments(user): Segments<String>,
    AppJson(input): AppJson<UserBody>,
) -> Result<Response, ApiError> {
    let user = s
        .update_user(
            &caller,
            &UserRef::parse(&user),
            input.into(),
            UpdateMode::Replace,
        )
        .await?;
    Ok(Json(views::user(&user, s.now())).into_response())
}

/// Apply a JSON merge patch (`application/merge-patch+json` or `application/json`).
#[utoipa::path(
    patch,
    path = "/users/{user}",
    tag = "users",
    operation_id = "patchUser",
    params(UserPath),
    request_body(
        content(
            (UserBody = "application/merge-patch+json"),
            (UserBody = "application/json"),
        ),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The updated user.", body = UserView),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge, Unprocessable,
    ),
)]
async fn patch(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments(user): Segments<String>,
    AppJson(input): AppJson<UserBody>,
) -> Result<Response, ApiError> {
    let user = s
        .update_user(
            &caller,
            &UserRef::parse(&user),
            input.into(),
            UpdateMode::MergePatch,
        )
        .await?;
    Ok(Json(views::user(&user, s.now())).into_response())
}

/// Delete a user with its memberships and tokens.
#[utoipa::path(
    delete,
    path = "/users/{user}",
    tag = "users",
    operation_id = "deleteUser",
    params(UserPath),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted."),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict,
    ),
)]
async fn remove(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments(user): Segments<String>,
) -> Result<StatusCode, ApiError> {
    s.delete_user(&caller, &UserRef::parse(&user)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The user's groups; `includeInherited` adds every ancestor group.
#[utoipa::path(
    get,
    path = "/users/{user}/groups",
    tag = "users",
    operation_id = "listUserGroups",
    params(UserPath, InheritanceParams, ListParams, PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of groups.", body = PageView<GroupView>),
        BadRequest, Unauthorized, Forbidden, NotFound,
    ),
)]
async fn groups(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments(user): Segments<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let query = list_query(&params, &GROUPS)?;
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

/// Whether the user is in any of the groups, directly or through child groups.
#[utoipa::path(
    head,
    path = "/users/{user}/groups/{groups}",
    tag = "users",
    operation_id = "userInAnyGroup",
    params(UserGroupsPath),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "A member of at least one of the groups."),
        (status = 400, description = "A malformed identifier."),
        (status = 401, description = "Missing, invalid or expired token."),
        (status = 403, description = "Not allowed."),
        (status = 404, description = "Not a member, or the user or every group is unknown."),
    ),
)]
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

/// Set a password. Without a token, `existing` must prove the current one.
#[utoipa::path(
    post,
    path = "/users/{user}/credentials/password",
    tag = "users",
    operation_id = "setPassword",
    params(UserPath),
    request_body = PasswordBody,
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Changed (empty body)."),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge, Unprocessable,
        TooManyRequests, Busy,
    ),
)]
async fn password(
    State(s): State<AppState>,
    MaybeAuth(caller): MaybeAuth,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Segments(user): Segments<String>,
    AppJson(input): AppJson<PasswordBody>,
) -> Result<StatusCode, ApiError> {
    let addr = client_addr(
        peer.map(|Extension(ConnectInfo(p))| p),
        &headers,
        s.settings().trust_forwarded_for,
    );
    s.change_password(
        caller.as_deref(),
        &UserRef::parse(&user),
        input.into(),
        addr,
    )
    .await?;
    Ok(StatusCode::OK)
}

/// Suspend, unsuspend, unlock, force a password reset or make the password expirable.
#[utoipa::path(
    post,
    path = "/users/{user}/actions",
    tag = "users",
    operation_id = "userAction",
    params(UserPath),
    request_body = ActionBody,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Done."),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge, Unprocessable,
    ),
)]
async fn action(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments(user): Segments<String>,
    AppJson(input): AppJson<ActionBody>,
) -> Result<StatusCode, ApiError> {
    let action = ActionKind::parse(&input.kind)?;
    s.user_action(&caller, &UserRef::parse(&user), action.into())
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
    let query = ListRequest {
        q: None,
        filter,
        order,
        page,
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

/// Search users with the JSON query in the query string (spec §7).
#[utoipa::path(
    get,
    path = "/users/search",
    tag = "users",
    operation_id = "searchUsersGet",
    params(SearchParams, PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of users.", body = PageView<UserView>),
        BadRequest, Unauthorized, Forbidden,
    ),
)]
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

/// Search users with the JSON query (spec §7).
#[utoipa::path(
    post,
    path = "/users/search",
    tag = "users",
    operation_id = "searchUsers",
    request_body = SearchInput,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of users.", body = PageView<UserView>),
        BadRequest, Unauthorized, Forbidden, PayloadTooLarge,
    ),
)]
async fn search_post(
    State(s): State<AppState>,
    Auth(caller): Auth,
    AppJson(input): AppJson<SearchInput>,
) -> Result<Response, ApiError> {
    search(&s, &caller, input).await
}
