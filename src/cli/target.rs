//! Where a directory command acts: directly on the database, through the service layer
//! as [`Caller::operator`] (for recovery, and for a server that is down), or through a
//! running server's public REST API (`/api/security/…`) with a token or an API key.
//!
//! Both answer with the API's JSON views (`http::views` on the database side, the
//! response bodies on the server side) and fail with the API's refusals, so every
//! command prints the same thing whichever target it used. Rules live in the service:
//! this module only carries requests to it.

use std::time::Duration;

use clap::Args;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Method;
use serde_json::{Value, json};

use super::output::{Failure, FailureKind};
use crate::domain::ids::{GroupRef, SYSTEM_ADMINISTRATORS_ID, UserRef};
use crate::domain::page::PageRequest;
use crate::http::extract::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use crate::http::views;
use crate::query::ast::{FieldSet, GROUPS, OrderBy, USERS};
use crate::query::zenql;
use crate::service::ListRequest;
use crate::service::groups::GroupInput;
use crate::service::users::{CreateOptions, CredentialsInput, UserAction, UserInput};
use crate::service::{Caller, Patch, Services};

/// Where to act, and as whom (global options of `gatehouse user` and `gatehouse group`).
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// Work directly on this database (ignored with --server).
    #[arg(
        long = "database",
        env = "GATEHOUSE_DATABASE_URL",
        hide_env_values = true,
        default_value = "sqlite://gatehouse.db",
        global = true,
        value_name = "URL"
    )]
    pub database_url: String,
    /// Act through the running server at this base URL (http://HOST:PORT) instead of on
    /// the database, with GATEHOUSE_TOKEN, or GATEHOUSE_CLIENT_ID and
    /// GATEHOUSE_CLIENT_SECRET.
    #[arg(long, global = true, value_name = "URL")]
    pub server: Option<String>,
    /// A bearer token for --server. Prefer the environment variable: a flag's value is
    /// visible to other users of the machine in the process list.
    #[arg(
        long,
        env = "GATEHOUSE_TOKEN",
        hide_env_values = true,
        global = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// The client id of an API key for --server, exchanged for a token.
    #[arg(
        long,
        env = "GATEHOUSE_CLIENT_ID",
        hide_env_values = true,
        global = true,
        value_name = "ID"
    )]
    pub client_id: Option<String>,
    /// The API key's secret. Prefer the environment variable (see --token).
    #[arg(
        long,
        env = "GATEHOUSE_CLIENT_SECRET",
        hide_env_values = true,
        global = true,
        value_name = "SECRET"
    )]
    pub client_secret: Option<String>,
}

/// Paging and filters of the list commands.
#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// Case-insensitive "contains" over the text fields (users: username, email, names;
    /// groups: name).
    #[arg(long, value_name = "TEXT")]
    pub q: Option<String>,
    /// A ZenQL filter, e.g. `firstName ~ tyl and created > now(-7)`.
    #[arg(long, value_name = "EXPR")]
    pub zenql: Option<String>,
    /// The page to show, zero-based as the API's pageIndex.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub page: u32,
    /// Items per page, 1 to 1000.
    #[arg(long, default_value_t = DEFAULT_PAGE_SIZE, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_PAGE_SIZE)))]
    pub page_size: u32,
}

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// The username.
    pub username: String,
    /// The email.
    pub email: String,
    /// Optional.
    pub first_name: Option<String>,
    /// Optional.
    pub last_name: Option<String>,
    /// The initial password.
    pub password: String,
    /// Also a member of System Administrators.
    pub admin: bool,
}

/// The database through the service layer, or a server through its API.
#[derive(Debug)]
pub enum Target {
    /// Directly on the database, as the operator.
    Database(Box<Services>),
    /// Through a running server.
    Server(Remote),
}

impl Target {
    /// Opens the database, or reaches the server and obtains a token.
    pub async fn open(args: &TargetArgs) -> Result<Self, Failure> {
        match &args.server {
            Some(url) => Ok(Self::Server(Remote::connect(url, args).await?)),
            None => {
                let services = super::admin::services(&args.database_url)
                    .await
                    .map_err(|e| {
                        Failure::other(format!(
                            "cannot open the database {}: {}",
                            crate::config::redact_url(&args.database_url),
                            root_cause(e.as_ref())
                        ))
                    })?;
                Ok(Self::Database(Box::new(services)))
            }
        }
    }

    /// `POST /users` (and, with `admin`, the user's membership of System Administrators,
    /// in the same transaction on the database; a second request on the server).
    pub async fn create_user(&self, new: NewUser) -> Result<Value, Failure> {
        match self {
            Self::Database(s) => {
                let input = UserInput {
                    username: Patch::Value(new.username),
                    email: Patch::Value(new.email),
                    first_name: new.first_name.map_or(Patch::Absent, Patch::Value),
                    last_name: new.last_name.map_or(Patch::Absent, Patch::Value),
                    credentials: Some(CredentialsInput {
                        password: Some(new.password),
                        ..CredentialsInput::default()
                    }),
                    ..UserInput::default()
                };
                let groups = if new.admin {
                    vec![SYSTEM_ADMINISTRATORS_ID]
                } else {
                    Vec::new()
                };
                let user = s
                    .create_user_in(&operator(), input, CreateOptions::default(), &groups)
                    .await?;
                Ok(user_json(s, &user))
            }
            Self::Server(r) => {
                let mut body = json!({
                    "username": new.username,
                    "email": new.email,
                    "credentials": {"password": new.password},
                });
                if let Some(f) = new.first_name {
                    body["firstName"] = json!(f);
                }
                if let Some(l) = new.last_name {
                    body["lastName"] = json!(l);
                }
                let user = r.call(Method::POST, &["users"], &[], Some(body)).await?;
                if new.admin {
                    let id = user["id"].as_str().unwrap_or_default().to_owned();
                    let admins = SYSTEM_ADMINISTRATORS_ID.to_string();
                    r.call(Method::PUT, &["groups", &admins, "users", &id], &[], None)
                        .await
                        .map_err(|f| {
                            Failure::new(
                                f.kind,
                                format!(
                                    "created user '{}' ({id}), but could not add it to System \
                                     Administrators: {}",
                                    user["username"].as_str().unwrap_or_default(),
                                    f.message
                                ),
                            )
                        })?;
                }
                Ok(user)
            }
        }
    }

    /// `GET /users`.
    pub async fn list_users(&self, list: &ListArgs) -> Result<Value, Failure> {
        match self {
            Self::Database(s) => {
                let query = list_query(list, &USERS)?;
                let page = s.list_users(&operator(), &query).await?;
                let now = s.now();
                Ok(to_json(&views::page(&page, query.page, |u| {
                    views::user(u, now)
                })))
            }
            Self::Server(r) => {
                r.call(Method::GET, &["users"], &list_params(list), None)
                    .await
            }
        }
    }

    /// `GET /users/{user}`.
    pub async fn get_user(&self, user: &str) -> Result<Value, Failure> {
        match self {
            Self::Database(s) => {
                let found = s.get_user(&operator(), &UserRef::parse(user)).await?;
                Ok(user_json(s, &found))
            }
            Self::Server(r) => r.call(Method::GET, &["users", user], &[], None).await,
        }
    }

    /// `POST /users/{user}/actions` with `{"type": action}`; answers the user afterwards.
    pub async fn user_action(&self, user: &str, action: &str) -> Result<Value, Failure> {
        let before = self.get_user(user).await?;
        let id = super::output::id_of(&before);
        match self {
            Self::Database(s) => {
                let change = match action {
                    "suspend" => UserAction::Suspend,
                    "unsuspend" => UserAction::Unsuspend,
                    "unlock" => UserAction::Unlock,
                    other => unreachable!("the command line has no action {other:?}"),
                };
                s.user_action(&operator(), &UserRef::parse(&id), change)
                    .await?;
            }
            Self::Server(r) => {
                let body = json!({ "type": action });
                r.call(Method::POST, &["users", &id, "actions"], &[], Some(body))
                    .await?;
            }
        }
        self.get_user(&id).await
    }

    /// `DELETE /users/{user}`; answers the user as it was.
    pub async fn delete_user(&self, user: &str) -> Result<Value, Failure> {
        let before = self.get_user(user).await?;
        let id = super::output::id_of(&before);
        match self {
            Self::Database(s) => s.delete_user(&operator(), &UserRef::parse(&id)).await?,
            Self::Server(r) => {
                r.call(Method::DELETE, &["users", &id], &[], None).await?;
            }
        }
        Ok(before)
    }

    /// `POST /groups`.
    pub async fn create_group(
        &self,
        name: String,
        description: Option<String>,
    ) -> Result<Value, Failure> {
        match self {
            Self::Database(s) => {
                let input = GroupInput {
                    name: Patch::Value(name),
                    description: description.map_or(Patch::Absent, Patch::Value),
                    ..GroupInput::default()
                };
                let group = s.create_group(&operator(), input).await?;
                Ok(to_json(&views::group(&group)))
            }
            Self::Server(r) => {
                let mut body = json!({ "name": name });
                if let Some(d) = description {
                    body["description"] = json!(d);
                }
                r.call(Method::POST, &["groups"], &[], Some(body)).await
            }
        }
    }

    /// `GET /groups/{group}`.
    pub async fn get_group(&self, group: &str) -> Result<Value, Failure> {
        match self {
            Self::Database(s) => {
                let found = s.get_group(&operator(), &GroupRef::group(group)).await?;
                Ok(to_json(&views::group(&found)))
            }
            Self::Server(r) => r.call(Method::GET, &["groups", group], &[], None).await,
        }
    }

    /// `DELETE /groups/{group}`; answers the group as it was.
    pub async fn delete_group(&self, group: &str) -> Result<Value, Failure> {
        let before = self.get_group(group).await?;
        let id = super::output::id_of(&before);
        match self {
            Self::Database(s) => {
                s.delete_group(&operator(), &GroupRef::group(&id)).await?;
            }
            Self::Server(r) => {
                r.call(Method::DELETE, &["groups", &id], &[], None).await?;
            }
        }
        Ok(before)
    }

    /// `GET /groups`.
    pub async fn list_groups(&self, list: &ListArgs) -> Result<Value, Failure> {
        match self {
            Self::Database(s) => {
                let query = list_query(list, &GROUPS)?;
                let page = s.list_groups(&operator(), &query).await?;
                Ok(to_json(&views::page(&page, query.page, views::group)))
            }
            Self::Server(r) => {
                r.call(Method::GET, &["groups"], &list_params(list), None)
                    .await
            }
        }
    }

    /// `POST /groups/{group}/users`: all or nothing; answers the group afterwards.
    pub async fn add_users(&self, group: &str, users: &[String]) -> Result<Value, Failure> {
        match self {
            Self::Database(s) => {
                s.add_members(&operator(), &GroupRef::group(group), users)
                    .await?;
            }
            Self::Server(r) => {
                r.call(
                    Method::POST,
                    &["groups", group, "users"],
                    &[],
                    Some(json!(users)),
                )
                .await?;
            }
        }
        self.get_group(group).await
    }

    /// `DELETE /groups/{group}/users/{user}`; answers the group afterwards.
    pub async fn remove_user(&self, group: &str, user: &str) -> Result<Value, Failure> {
        match self {
            Self::Database(s) => {
                s.remove_member(&operator(), &GroupRef::group(group), &UserRef::parse(user))
                    .await?;
            }
            Self::Server(r) => {
                r.call(Method::DELETE, &["groups", group, "users", user], &[], None)
                    .await?;
            }
        }
        self.get_group(group).await
    }

    /// `PUT /groups/{group}/groups/{child}`; answers the parent group afterwards.
    pub async fn add_child(&self, group: &str, child: &str) -> Result<Value, Failure> {
        match self {
            Self::Database(s) => {
                s.add_child(
                    &operator(),
                    &GroupRef::group(group),
                    &GroupRef::group(child),
                )
                .await?;
            }
            Self::Server(r) => {
                r.call(Method::PUT, &["groups", group, "groups", child], &[], None)
                    .await?;
            }
        }
        self.get_group(group).await
    }

    /// `GET /groups/{group}/users[?includeInherited=true]`.
    pub async fn members(
        &self,
        group: &str,
        inherited: bool,
        list: &ListArgs,
    ) -> Result<Value, Failure> {
        match self {
            Self::Database(s) => {
                let query = list_query(list, &USERS)?;
                let page = s
                    .group_members(&operator(), &GroupRef::group(group), inherited, &[], &query)
                    .await?;
                let now = s.now();
                Ok(to_json(&views::page(&page, query.page, |u| {
                    views::user(u, now)
                })))
            }
            Self::Server(r) => {
                let mut params = list_params(list);
                if inherited {
                    params.push(("includeInherited", "true".into()));
                }
                r.call(Method::GET, &["groups", group, "users"], &params, None)
                    .await
            }
        }
    }
}

fn operator() -> Caller {
    Caller::operator()
}

fn to_json<T: serde::Serialize>(view: &T) -> Value {
    serde_json::to_value(view).expect("a view serializes")
}

fn user_json(s: &Services, user: &crate::domain::user::User) -> Value {
    to_json(&views::user(user, s.now()))
}

/// A list query as the API reads `q`, `zenql`, `pageIndex` and `pageSize`, with the
/// same message for a ZenQL expression that does not parse.
fn list_query(list: &ListArgs, fields: &FieldSet) -> Result<ListRequest, Failure> {
    let filter =
        match list.zenql.as_deref().filter(|z| !z.trim().is_empty()) {
            Some(z) => Some(zenql::parse(z, fields).map_err(|e| {
                Failure::from_api(400, &format!("Invalid zenql: {e}."), &Value::Null)
            })?),
            None => None,
        };
    Ok(ListRequest {
        q: list.q.clone(),
        filter,
        order: OrderBy(Vec::new()),
        page: PageRequest {
            index: list.page,
            size: list.page_size,
        },
    })
}

fn list_params(list: &ListArgs) -> Vec<(&'static str, String)> {
    let mut params = Vec::new();
    if let Some(q) = &list.q {
        params.push(("q", q.clone()));
    }
    if let Some(z) = &list.zenql {
        params.push(("zenql", z.clone()));
    }
    params.push(("pageIndex", list.page.to_string()));
    params.push(("pageSize", list.page_size.to_string()));
    params
}

/// The innermost cause of an error, in one line.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause
        .to_string()
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Characters a path segment keeps as they are: RFC 3986's unreserved set less `.`, so
/// that a name like `..` can never be read as a step up the path.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'~');

/// A response body larger than this is refused (a page of 1,000 users with the largest
/// `custom` objects stays below it).
const MAX_BODY: usize = 128 * 1024 * 1024;

/// A running gatehouse, reached over HTTP with a bearer token.
#[derive(Debug)]
pub struct Remote {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Remote {
    /// Checks the URL, and obtains a token when an API key is given instead of one.
    async fn connect(url: &str, args: &TargetArgs) -> Result<Self, Failure> {
        let base = url.trim_end_matches('/').to_owned();
        if base.starts_with("https://") {
            return Err(Failure::usage(format!(
                "--server {base}: this build speaks plain http:// only (it carries no TLS \
                 library); reach the server on its own host or through a tunnel"
            )));
        }
        if !base.starts_with("http://") || base.len() > 2048 {
            return Err(Failure::usage(format!(
                "--server {base}: expected a base URL such as http://127.0.0.1:8080"
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| Failure::other(format!("cannot set up an HTTP client: {e}")))?;
        let mut remote = Self {
            http,
            base,
            token: String::new(),
        };
        remote.token = match (&args.token, &args.client_id, &args.client_secret) {
            (Some(t), _, _) if !t.is_empty() => t.clone(),
            (_, Some(id), Some(secret)) => remote.client_credentials(id, secret).await?,
            _ => {
                return Err(Failure::usage(
                    "--server needs credentials: set GATEHOUSE_TOKEN to a bearer token, or \
                     GATEHOUSE_CLIENT_ID and GATEHOUSE_CLIENT_SECRET to an API key",
                ));
            }
        };
        Ok(remote)
    }

    /// Exchanges an API key for a token at the token endpoint (`client_credentials`).
    async fn client_credentials(&self, id: &str, secret: &str) -> Result<String, Failure> {
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", id)
            .append_pair("client_secret", secret)
            .finish();
        let url = format!("{}/authenticate/connect/token", self.base);
        let response = self
            .http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let status = response.status().as_u16();
        let body = self.read(response).await?;
        match body["access_token"].as_str() {
            Some(token) if status == 200 => Ok(token.to_owned()),
            _ => Err(Failure::other(format!(
                "the server at {} refused the API key {id}: {}",
                self.base,
                super::output::clean(body["error"].as_str().unwrap_or("no token in the answer"))
            ))),
        }
    }

    fn unreachable(&self, e: &reqwest::Error) -> Failure {
        let why = if e.is_timeout() {
            "no answer in time".to_owned()
        } else {
            root_cause(e)
        };
        Failure::other(format!("cannot reach the server at {}: {why}", self.base))
    }

    /// Reads a JSON body (empty for 204), at most [`MAX_BODY`] bytes.
    async fn read(&self, mut response: reqwest::Response) -> Result<Value, Failure> {
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.unreachable(&e))? {
            if bytes.len() + chunk.len() > MAX_BODY {
                return Err(Failure::other(format!(
                    "the server at {} sent an answer larger than {} MiB",
                    self.base,
                    MAX_BODY >> 20
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|_| {
            Failure::other(format!(
                "the server at {} did not answer with JSON: is it a gatehouse?",
                self.base
            ))
        })
    }

    /// Sends a request to `/api/security/` + the percent-encoded `segments`.
    async fn call(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> Result<Value, Failure> {
        let mut url = format!("{}/api/security", self.base);
        for segment in segments {
            url.push('/');
            url.extend(utf8_percent_encode(segment, SEGMENT));
        }
        if !query.is_empty() {
            let mut q = form_urlencoded::Serializer::new(String::new());
            for (k, v) in query {
                q.append_pair(k, v);
            }
            url.push('?');
            url.push_str(&q.finish());
        }
        let mut request = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(b) = body {
            request = request.json(&b);
        }
        let response = request.send().await.map_err(|e| self.unreachable(&e))?;
        let status = response.status().as_u16();
        let body = self.read(response).await?;
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let message = match body["message"].as_str() {
            Some(m) => m.to_owned(),
            None => format!("The server at {} answered {status}.", self.base),
        };
        let failure = Failure::from_api(status, &message, &body["data"]);
        Err(match failure.kind {
            FailureKind::Other if status >= 500 => Failure::other(format!(
                "{} (logId {})",
                failure.message,
                super::output::clean(body["logId"].as_str().unwrap_or("-"))
            )),
            _ => failure,
        })
    }
}
