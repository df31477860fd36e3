//! `/groups`: group CRUD, user membership and child groups.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiError;
use super::extract::{AppJson, Auth, Params, Segments};
use super::openapi::{
    BadRequest, Conflict, Forbidden, GroupChildPath, GroupPath, GroupUserPath, IncludeSelfParam,
    InheritanceParams, ListParams, NotFound, PageParams, PayloadTooLarge, Unauthorized,
    Unprocessable,
};
use super::users::list_query;
use super::views::{GroupView, PageView, UserView};
use super::{AppState, views};
use crate::domain::ids::{GroupRef, UserRef};
use crate::query::ast::{GROUPS, USERS};
use crate::service::Patch;
use crate::service::groups::GroupInput;

/// The body of a group create or update: what is read is what is documented.
#[derive(Debug, Default, serde::Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = GroupInput)]
pub struct GroupBody {
    /// Required on create; unique case-insensitively.
    #[schema(value_type = Option<String>, max_length = 255)]
    #[serde(default)]
    pub name: Patch<String>,
    /// Optional.
    #[schema(value_type = Option<String>, max_length = 2000)]
    #[serde(default)]
    pub description: Patch<String>,
    /// `contensis` (default) or `external` on create; ignored on update.
    #[serde(rename = "type")]
    #[schema(value_type = Option<GroupKind>)]
    #[serde(default)]
    pub kind: Patch<String>,
    /// Free-form JSON object, at most 64 KiB serialized.
    #[schema(value_type = Option<Object>)]
    #[serde(default)]
    pub custom: Patch<Map<String, Value>>,
}

impl From<GroupBody> for GroupInput {
    fn from(b: GroupBody) -> Self {
        Self {
            name: b.name,
            description: b.description,
            kind: b.kind,
            custom: b.custom,
        }
    }
}

/// The group types a client may create (`type`; the service checks the value).
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = GroupType)]
pub enum GroupKind {
    /// Managed here (the default).
    Contensis,
    /// Managed by another system.
    External,
}

/// The routes under `/groups`, with their documentation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(read, update, remove))
        .routes(routes!(members, add_members))
        .routes(routes!(add_member, remove_member, has_member))
        .routes(routes!(children, add_children))
        .routes(routes!(add_child, remove_child))
}

/// List groups.
#[utoipa::path(
    get,
    path = "/groups",
    tag = "groups",
    operation_id = "listGroups",
    params(ListParams, PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of groups.", body = PageView<GroupView>),
        BadRequest, Unauthorized, Forbidden,
    ),
)]
async fn list(
    State(s): State<AppState>,
    Auth(caller): Auth,
    params: Params,
) -> Result<Response, ApiError> {
    let query = list_query(&params, &GROUPS)?;
    let page = s.list_groups(&caller, &query).await?;
    Ok(Json(views::page(&page, query.page, views::group)).into_response())
}

/// Create a group (type defaults to `contensis`).
#[utoipa::path(
    post,
    path = "/groups",
    tag = "groups",
    operation_id = "createGroup",
    request_body = GroupBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The new group.", body = GroupView),
        BadRequest, Unauthorized, Forbidden, Conflict, PayloadTooLarge, Unprocessable,
    ),
)]
async fn create(
    State(s): State<AppState>,
    Auth(caller): Auth,
    AppJson(input): AppJson<GroupBody>,
) -> Result<Response, ApiError> {
    let group = s.create_group(&caller, input.into()).await?;
    Ok((StatusCode::CREATED, Json(views::group(&group))).into_response())
}

/// Get a group.
#[utoipa::path(
    get,
    path = "/groups/{group}",
    tag = "groups",
    operation_id = "getGroup",
    params(GroupPath),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The group.", body = GroupView),
        BadRequest, Unauthorized, Forbidden, NotFound,
    ),
)]
async fn read(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments(group): Segments<String>,
) -> Result<Response, ApiError> {
    let group = s.get_group(&caller, &GroupRef::group(&group)).await?;
    Ok(Json(views::group(&group)).into_response())
}

/// Update the name, description or custom data.
#[utoipa::path(
    put,
    path = "/groups/{group}",
    tag = "groups",
    operation_id = "updateGroup",
    params(GroupPath),
    request_body = GroupBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The updated group.", body = GroupView),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge, Unprocessable,
    ),
)]
async fn update(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments(group): Segments<String>,
    AppJson(input): AppJson<GroupBody>,
) -> Result<Response, ApiError> {
    let group = s
        .update_group(&caller, &GroupRef::group(&group), input.into())
        .await?;
    Ok(Json(views::group(&group)).into_response())
}

/// Delete a group with its memberships and child links; users stay.
#[utoipa::path(
    delete,
    path = "/groups/{group}",
    tag = "groups",
    operation_id = "deleteGroup",
    params(GroupPath),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted."),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict,
    ),
)]
async fn remove(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments(group): Segments<String>,
) -> Result<StatusCode, ApiError> {
    s.delete_group(&caller, &GroupRef::group(&group)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The group's members; `includeInherited` adds members of every descendant group.
#[utoipa::path(
    get,
    path = "/groups/{group}/users",
    tag = "groups",
    operation_id = "listGroupUsers",
    params(GroupPath, InheritanceParams, ListParams, PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of users.", body = PageView<UserView>),
        BadRequest, Unauthorized, Forbidden, NotFound,
    ),
)]
async fn members(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments(group): Segments<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let query = list_query(&params, &USERS)?;
    let page = s
        .group_members(
            &caller,
            &GroupRef::group(&group),
            params.bool("includeInherited")?,
            &params.groups("excludedGroups"),
            &query,
        )
        .await?;
    let now = s.now();
    Ok(Json(views::page(&page, query.page, |u| views::user(u, now))).into_response())
}

/// Add users (ids or other identifiers, at most 10,000); all or nothing.
#[utoipa::path(
    post,
    path = "/groups/{group}/users",
    tag = "groups",
    operation_id = "addGroupUsers",
    params(GroupPath),
    request_body(content = Vec<String>, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Added."),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge,
    ),
)]
async fn add_members(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments(group): Segments<String>,
    AppJson(users): AppJson<Vec<String>>,
) -> Result<StatusCode, ApiError> {
    s.add_members(&caller, &GroupRef::group(&group), &users)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Add a user to a group; idempotent.
#[utoipa::path(
    put,
    path = "/groups/{group}/users/{user}",
    tag = "groups",
    operation_id = "addGroupUser",
    params(GroupUserPath),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The user is a direct member."),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict,
    ),
)]
async fn add_member(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments((group, user)): Segments<(String, String)>,
) -> Result<StatusCode, ApiError> {
    s.add_member(&caller, &GroupRef::group(&group), &UserRef::parse(&user))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a direct member.
#[utoipa::path(
    delete,
    path = "/groups/{group}/users/{user}",
    tag = "groups",
    operation_id = "removeGroupUser",
    params(GroupUserPath),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed."),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict,
    ),
)]
async fn remove_member(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments((group, user)): Segments<(String, String)>,
) -> Result<StatusCode, ApiError> {
    s.remove_member(&caller, &GroupRef::group(&group), &UserRef::parse(&user))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The membership check's route, as matched under either prefix.
const MEMBER_CHECK_ROUTE: &str = "/groups/{group}/users/{user}";

/// Whether `req` is the membership check (`HEAD /groups/{group}/users/{user}`): the
/// `deadline` middleware runs it in place where the store's checks are safe to drop.
pub(super) fn is_member_check<B>(req: &axum::http::Request<B>) -> bool {
    req.method() == axum::http::Method::HEAD
        && req
            .extensions()
            .get::<axum::extract::MatchedPath>()
            .is_some_and(|route| route.as_str().ends_with(MEMBER_CHECK_ROUTE))
}

/// Whether the user is a member, directly or through child groups.
#[utoipa::path(
    head,
    path = "/groups/{group}/users/{user}",
    tag = "groups",
    operation_id = "groupHasUser",
    params(GroupUserPath),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "A member."),
        (status = 400, description = "A malformed identifier."),
        (status = 401, description = "Missing, invalid or expired token."),
        (status = 403, description = "Not allowed."),
        (status = 404, description = "Not a member, or the group or user is unknown."),
    ),
)]
async fn has_member(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments((group, user)): Segments<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let member = s
        .has_member(&caller, &GroupRef::group(&group), &UserRef::parse(&user))
        .await?;
    Ok(if member {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    })
}

/// The group's child groups; `includeInherited` lists every descendant.
#[utoipa::path(
    get,
    path = "/groups/{group}/groups",
    tag = "groups",
    operation_id = "listChildGroups",
    params(GroupPath, InheritanceParams, IncludeSelfParam, ListParams, PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of groups.", body = PageView<GroupView>),
        BadRequest, Unauthorized, Forbidden, NotFound,
    ),
)]
async fn children(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments(group): Segments<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let query = list_query(&params, &GROUPS)?;
    let page = s
        .child_groups(
            &caller,
            &GroupRef::group(&group),
            params.bool("includeInherited")?,
            params.bool("includeSelf")?,
            &params.groups("excludedGroups"),
            &query,
        )
        .await?;
    Ok(Json(views::page(&page, query.page, views::group)).into_response())
}

/// Add child groups (ids or names, at most 10,000); all or nothing.
#[utoipa::path(
    post,
    path = "/groups/{group}/groups",
    tag = "groups",
    operation_id = "addChildGroups",
    params(GroupPath),
    request_body(content = Vec<String>, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Added."),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge,
    ),
)]
async fn add_children(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments(group): Segments<String>,
    AppJson(children): AppJson<Vec<String>>,
) -> Result<StatusCode, ApiError> {
    s.add_children(&caller, &GroupRef::group(&group), &children)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Add a child group; idempotent. A cycle is a 409.
#[utoipa::path(
    put,
    path = "/groups/{group}/groups/{child}",
    tag = "groups",
    operation_id = "addChildGroup",
    params(GroupChildPath),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The child link exists."),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict,
    ),
)]
async fn add_child(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments((group, child)): Segments<(String, String)>,
) -> Result<StatusCode, ApiError> {
    s.add_child(&caller, &GroupRef::group(&group), &GroupRef::group(&child))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a child link.
#[utoipa::path(
    delete,
    path = "/groups/{group}/groups/{child}",
    tag = "groups",
    operation_id = "removeChildGroup",
    params(GroupChildPath),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed."),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict,
    ),
)]
async fn remove_child(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments((group, child)): Segments<(String, String)>,
) -> Result<StatusCode, ApiError> {
    s.remove_child(&caller, &GroupRef::group(&group), &GroupRef::group(&child))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
