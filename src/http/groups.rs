//! `/groups`: group CRUD, user membership and child groups.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};

use super::error::ApiError;
use super::extract::{AppJson, Auth, Field, Params, Schema, Segments, leaf};
use super::users::list_query;
use super::{AppState, views};
use crate::domain::ids::{GroupRef, UserRef};
use crate::query::ast::{GROUPS, USERS};
use crate::service::groups::GroupInput;

impl Schema for GroupInput {
    const FIELDS: &'static [Field] = &[
        leaf("name"),
        leaf("description"),
        leaf("type"),
        leaf("custom"),
    ];
}

/// The routes under `/groups`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/groups", get(list).post(create))
        .route("/groups/{group}", get(read).put(update).delete(remove))
        .route("/groups/{group}/users", get(members).post(add_members))
        .route(
            "/groups/{group}/users/{user}",
            put(add_member).delete(remove_member).head(has_member),
        )
        .route("/groups/{group}/groups", get(children).post(add_children))
        .route(
            "/groups/{group}/groups/{child}",
            put(add_child).delete(remove_child),
        )
}

async fn list(
    State(s): State<AppState>,
    Auth(caller): Auth,
    params: Params,
) -> Result<Response, ApiError> {
    let query = list_query(&params, &GROUPS, &caller, s.now())?;
    let page = s.list_groups(&caller, &query).await?;
    Ok(Json(views::page(&page, query.page, views::group)).into_response())
}

async fn create(
    State(s): State<AppState>,
    Auth(caller): Auth,
    AppJson(input): AppJson<GroupInput>,
) -> Result<Response, ApiError> {
    let group = s.create_group(&caller, input).await?;
    Ok((StatusCode::CREATED, Json(views::group(&group))).into_response())
}

async fn read(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments(group): Segments<String>,
) -> Result<Response, ApiError> {
    let group = s.get_group(&caller, &GroupRef::group(&group)).await?;
    Ok(Json(views::group(&group)).into_response())
}

async fn update(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments(group): Segments<String>,
    AppJson(input): AppJson<GroupInput>,
) -> Result<Response, ApiError> {
    let group = s
        .update_group(&caller, &GroupRef::group(&group), input)
        .await?;
    Ok(Json(views::group(&group)).into_response())
}

async fn remove(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments(group): Segments<String>,
) -> Result<StatusCode, ApiError> {
    s.delete_group(&caller, &GroupRef::group(&group)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn members(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments(group): Segments<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let query = list_query(&params, &USERS, &caller, s.now())?;
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

async fn add_member(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments((group, user)): Segments<(String, String)>,
) -> Result<StatusCode, ApiError> {
    s.add_member(&caller, &GroupRef::group(&group), &UserRef::parse(&user))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_member(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments((group, user)): Segments<(String, String)>,
) -> Result<StatusCode, ApiError> {
    s.remove_member(&caller, &GroupRef::group(&group), &UserRef::parse(&user))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

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

async fn children(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments(group): Segments<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let query = list_query(&params, &GROUPS, &caller, s.now())?;
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

async fn add_child(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments((group, child)): Segments<(String, String)>,
) -> Result<StatusCode, ApiError> {
    s.add_child(&caller, &GroupRef::group(&group), &GroupRef::group(&child))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_child(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Segments((group, child)): Segments<(String, String)>,
) -> Result<StatusCode, ApiError> {
    s.remove_child(&caller, &GroupRef::group(&group), &GroupRef::group(&child))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
