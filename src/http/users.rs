//! `/users`: user CRUD, list, and the user's groups.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, head, post};

use super::error::ApiError;
use super::extract::{AppJson, Auth, Field, MaybeAuth, Params, Schema, Segments, leaf};
use super::{AppState, views};
use crate::domain::ids::{GroupRef, UserRef};
use crate::service::users::{ActionInput, CreateOptions, PasswordInput, UserInput};
use crate::store::ListQuery;

/// Fields users can be ordered by.
pub const USER_ORDER_FIELDS: &[&str] = &[
    "id",
    "username",
    "email",
    "firstName",
    "lastName",
    "timezone",
    "language",
    "created",
    "modified",
    "lastLogin",
    "expiry",
    "passwordChanged",
];

/// Fields groups can be ordered by.
pub const GROUP_ORDER_FIELDS: &[&str] =
    &["id", "name", "description", "type", "created", "modified"];

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
        .route(
            "/users/{user}",
            get(read).put(update).patch(update).delete(remove),
        )
        .route("/users/{user}/groups", get(groups))
        .route("/users/{user}/groups/{groups}", head(in_groups))
        .route("/users/{user}/credentials/password", post(password))
        .route("/users/{user}/actions", post(action))
}

/// Reads `q`, `order` and paging.
pub fn list_query(params: &Params, order_fields: &[&'static str]) -> Result<ListQuery, ApiError> {
    if params.get("zenql").is_some_and(|z| !z.trim().is_empty()) {
        return Err(ApiError::bad_request(
            "The zenql parameter is not supported yet.",
        ));
    }
    Ok(ListQuery {
        q: params.get("q").map(str::to_owned),
        order: params.order(order_fields)?,
        page: params.page()?,
    })
}

async fn list(
    State(s): State<AppState>,
    Auth(caller): Auth,
    params: Params,
) -> Result<Response, ApiError> {
    let query = list_query(&params, USER_ORDER_FIELDS)?;
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
        .update_user(&caller, &UserRef::parse(&user), input)
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
    let query = list_query(&params, GROUP_ORDER_FIELDS)?;
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
    s.change_password(caller.as_ref(), &UserRef::parse(&user), input).await?;
    Ok(StatusCode::OK)
}

async fn action(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments(user): Segments<String>,
    AppJson(input): AppJson<ActionInput>,
) -> Result<StatusCode, ApiError> {
    s.user_action(&caller, &UserRef::parse(&user), input).await?;
    Ok(StatusCode::NO_CONTENT)
}
