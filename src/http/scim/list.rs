//! Lists and searches (RFC 7644 §3.4.2, §3.4.3): `filter`, `sortBy`/`sortOrder`,
//! `startIndex`/`count`, `attributes`/`excludedAttributes`, from the query string or a
//! `.search` body; the page window over the service's paged lists; and the projection
//! of a representation onto the attributes asked for.

use axum::extract::RawQuery;
use serde_json::{Map, Value, json};

use super::error::ScimError;
use super::schema::{self, ResourceSchema};
use super::{Ctx, MAX_RESULTS, Reply, ScimBody, groups, users};
use crate::domain::page::PageRequest;
use crate::query::ast::{Direction, Expr, OrderBy};
use crate::query::scim_filter::{self, AttrPath, Mapped};
use crate::service::ListRequest;

/// The default page size when `count` is not given.
pub const DEFAULT_COUNT: u32 = 100;

/// A list request as a client wrote it.
#[derive(Debug, Default, Clone)]
pub struct ListParams {
    /// `filter`.
    pub filter: Option<String>,
    /// `sortBy`.
    pub sort_by: Option<String>,
    /// `sortOrder`: `ascending` (default) or `descending`.
    pub descending: bool,
    /// `startIndex`, one-based.
    pub start_index: u64,
    /// `count`, at most [`MAX_RESULTS`].
    pub count: u32,
    /// `attributes` / `excludedAttributes`.
    pub projection: Projection,
}

/// `attributes` and `excludedAttributes`.
#[derive(Debug, Default, Clone)]
pub struct Projection {
    /// Only these (with `id` and `schemas`), when not empty.
    pub attributes: Vec<String>,
    /// Not these.
    pub excluded: Vec<String>,
}

fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Projection {
    /// From a query string.
    pub fn from_query(query: Option<&str>) -> Self {
        let mut p = Self::default();
        for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            if k.eq_ignore_ascii_case("attributes") {
                p.attributes.extend(split_list(&v));
            } else if k.eq_ignore_ascii_case("excludedAttributes") {
                p.excluded.extend(split_list(&v));
            }
        }
        p
    }

    /// Whether the top-level attribute `name` is to be returned (so it is worth
    /// computing: `groups` of a user, `members` of a group).
    pub fn wants(&self, name: &str) -> bool {
        let top = |p: &String| {
            let p = p.rsplit_once(':').map_or(p.as_str(), |(_, n)| n);
            p.split('.').next().unwrap_or("").eq_ignore_ascii_case(name)
        };
        if !self.attributes.is_empty() {
            return self.attributes.iter().any(top);
        }
        !self.excluded.iter().any(|p| top(p) && !p.contains('.'))
    }

    /// The representation with only the attributes asked for.
    pub fn apply(&self, rep: Value, schema: &ResourceSchema) -> Value {
        let Value::Object(mut map) = rep else {
            return rep;
        };
        if !self.attributes.is_empty() {
            let mut out = Map::new();
            for keep in ["schemas", "id"] {
                if let Some(v) = map.get(keep) {
                    out.insert(keep.into(), v.clone());
                }
            }
            for path in &self.attributes {
                copy_path(&map, &mut out, path, schema);
            }
            return Value::Object(out);
        }
        for path in &self.excluded {
            remove_path(&mut map, path, schema);
        }
        Value::Object(map)
    }
}

/// Where a projection path points: inside the extension object or at the top, then an
/// attribute name and an optional sub-attribute. `None` attribute: the whole extension.
fn locate<'p>(
    path: &'p str,
    schema: &ResourceSchema,
) -> (Option<&'static str>, Option<&'p str>, Option<&'p str>) {
    if let Some(ext) = schema
        .extension
        .filter(|e| path.len() >= e.id.len() && path[..e.id.len()].eq_ignore_ascii_case(e.id))
    {
        let rest = path[ext.id.len()..].trim_start_matches(':');
        if rest.is_empty() {
            return (Some(ext.id), None, None);
        }
        let (a, s) = split_sub(rest);
        return (Some(ext.id), Some(a), s);
    }
    let rest = match path.rsplit_once(':') {
        Some((uri, rest)) if uri.eq_ignore_ascii_case(schema.core.id) => rest,
        _ => path,
    };
    let (a, s) = split_sub(rest);
    (None, Some(a), s)
}

fn split_sub(p: &str) -> (&str, Option<&str>) {
    match p.split_once('.') {
        Some((a, s)) => (a, Some(s)),
        None => (p, None),
    }
}

fn key_of<'m>(map: &'m Map<String, Value>, name: &str) -> Option<&'m String> {
    map.keys().find(|k| k.eq_ignore_ascii_case(name))
}

fn copy_path(
    from: &Map<String, Value>,
    to: &mut Map<String, Value>,
    path: &str,
    schema: &ResourceSchema,
) {
    let (ext, attr, sub) = locate(path, schema);
    let (src, dst) = match ext {
        Some(uri) => {
            let Some(Value::Object(src)) = from.get(uri) else {
                return;
            };
            let Value::Object(dst) = to
                .entry(uri.to_owned())
                .or_insert_with(|| Value::Object(Map::new()))
            else {
                return;
            };
            let Some(attr) = attr else {
                *dst = src.clone();
                return;
            };
            copy_attr(src, dst, attr, sub);
            return;
        }
        None => (from, to),
    };
    if let Some(attr) = attr {
        copy_attr(src, dst, attr, sub);
    }
}

fn copy_attr(
    src: &Map<String, Value>,
    dst: &mut Map<String, Value>,
    attr: &str,
    sub: Option<&str>,
) {
    let Some(key) = key_of(src, attr) else {
        return;
    };
    let value = &src[key];
    let Some(sub) = sub else {
        dst.insert(key.clone(), value.clone());
        return;
    };
    let pick = |v: &Value| -> Option<Value> {
        let obj = v.as_object()?;
        let k = key_of(obj, sub)?;
        let mut m = Map::new();
        m.insert(k.clone(), obj[k].clone());
        Some(Value::Object(m))
    };
    match value {
        Value::Array(items) => {
            let picked: Vec<Value> = items.iter().filter_map(pick).collect();
            if !picked.is_empty() {
                dst.insert(key.clone(), Value::Array(picked));
            }
        }
        v => {
            if let Some(Value::Object(m)) = pick(v) {
                let entry = dst
                    .entry(key.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(e) = entry {
                    e.extend(m);
                }
            }
        }
    }
}

fn remove_path(map: &mut Map<String, Value>, path: &str, schema: &ResourceSchema) {
    let (ext, attr, sub) = locate(path, schema);
    let target = match ext {
        Some(uri) => {
            let Some(attr) = attr else {
                map.remove(uri);
                return;
            };
            if let Some(Value::Object(m)) = map.get_mut(uri) {
                remove_attr(m, attr, sub);
                if m.is_empty() {
                    map.remove(uri);
                }
            }
            return;
        }
        None => map,
    };
    if let Some(attr) = attr {
        if ["id", "schemas"]
            .iter()
            .any(|k| k.eq_ignore_ascii_case(attr))
        {
            return;
        }
        remove_attr(target, attr, sub);
    }
}

fn remove_attr(map: &mut Map<String, Value>, attr: &str, sub: Option<&str>) {
    let Some(key) = key_of(map, attr).cloned() else {
        return;
    };
    let Some(sub) = sub else {
        map.remove(&key);
        return;
    };
    let strip = |v: &mut Value| {
        if let Value::Object(o) = v {
            if let Some(k) = key_of(o, sub).cloned() {
                o.remove(&k);
            }
        }
    };
    match map.get_mut(&key) {
        Some(Value::Array(items)) => items.iter_mut().for_each(strip),
        Some(v) => strip(v),
        None => {}
    }
}

impl ListParams {
    /// From a list's query string; names case-insensitive.
    pub fn from_query(query: Option<&str>) -> Result<Self, ScimError> {
        let mut p = Self {
            start_index: 1,
            count: DEFAULT_COUNT,
            projection: Projection::from_query(query),
            ..Self::default()
        };
        for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match k.to_ascii_lowercase().as_str() {
                "filter" => p.filter = Some(v.into_owned()),
                "sortby" => p.sort_by = Some(v.into_owned()),
                "sortorder" => p.descending = sort_order(&v)?,
                "startindex" => p.start_index = start_index(&v)?,
                "count" => p.count = count(&v)?,
                _ => {}
            }
        }
        Ok(p)
    }

    /// From a `.search` body (RFC 7644 §3.4.3).
    pub fn from_search(body: Value) -> Result<Self, ScimError> {
        let Value::Object(map) = body else {
            return Err(ScimError::invalid_syntax("The body must be a JSON object."));
        };
        let mut p = Self {
            start_index: 1,
            count: DEFAULT_COUNT,
            ..Self::default()
        };
        let text = |v: &Value, name: &str| -> Result<String, ScimError> {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| ScimError::invalid_value(format!("'{name}' must be a string.")))
        };
        let list = |v: &Value, name: &str| -> Result<Vec<String>, ScimError> {
            match v {
                Value::Array(items) => items.iter().map(|i| text(i, name)).collect(),
                Value::String(s) => Ok(split_list(s)),
                _ => Err(ScimError::invalid_value(format!(
                    "'{name}' must list attributes."
                ))),
            }
        };
        for (k, v) in &map {
            match k.to_ascii_lowercase().as_str() {
                "schemas" => {
                    let ok = v
                        .as_array()
                        .is_some_and(|a| a.iter().any(|s| s.as_str() == Some(schema::SEARCH)));
                    if !ok {
                        return Err(ScimError::invalid_syntax(format!(
                            "'schemas' must be [\"{}\"].",
                            schema::SEARCH
                        )));
                    }
                }
                "filter" => p.filter = Some(text(v, "filter")?),
                "sortby" => p.sort_by = Some(text(v, "sortBy")?),
                "sortorder" => p.descending = sort_order(&text(v, "sortOrder")?)?,
                "startindex" => p.start_index = start_index(&number(v)?)?,
                "count" => p.count = count(&number(v)?)?,
                "attributes" => p.projection.attributes = list(v, "attributes")?,
                "excludedattributes" => p.projection.excluded = list(v, "excludedAttributes")?,
                other => {
                    return Err(ScimError::invalid_syntax(format!(
                        "Unknown search parameter '{other}'."
                    )));
                }
            }
        }
        if !map.keys().any(|k| k.eq_ignore_ascii_case("schemas")) {
            return Err(ScimError::invalid_syntax(format!(
                "'schemas' must be [\"{}\"].",
                schema::SEARCH
            )));
        }
        Ok(p)
    }

    /// The service's list request for this page, and how many of its items to skip:
    /// SCIM pages start anywhere (`startIndex`), the service's at multiples of their
    /// size, so the window is read from one or two pages of `count` items.
    pub fn request(
        &self,
        resolve: &dyn Fn(&AttrPath) -> Result<Mapped, String>,
    ) -> Result<(Option<Expr>, OrderBy), ScimError> {
        let filter = match &self.filter {
            None => None,
            Some(text) => {
                let parsed = scim_filter::parse(text).map_err(|e| ScimError::filter(&e))?;
                Some(scim_filter::to_expr(&parsed, resolve).map_err(|e| ScimError::filter(&e))?)
            }
        };
        let order = match &self.sort_by {
            None => OrderBy(Vec::new()),
            Some(attr) => {
                let path = scim_filter::parse_path(attr)
                    .ok()
                    .filter(|p| p.filter.is_none())
                    .ok_or_else(|| {
                        ScimError::invalid_value(format!("'{attr}' cannot be sorted by."))
                    })?;
                let m = resolve(&path.attr)
                    .map_err(|why| ScimError::invalid_value(format!("sortBy: {why}")))?;
                if !m.related.is_empty() {
                    return Err(ScimError::invalid_value(format!(
                        "'{attr}' cannot be sorted by."
                    )));
                }
                let dir = if self.descending != m.negated {
                    Direction::Desc
                } else {
                    Direction::Asc
                };
                OrderBy(vec![(m.field, dir)])
            }
        };
        Ok((filter, order))
    }
}

fn number(v: &Value) -> Result<String, ScimError> {
    match v {
        Value::Number(n) => Ok(n.to_string()),
        Value::String(s) => Ok(s.clone()),
        _ => Err(ScimError::invalid_value(
            "startIndex and count must be numbers.",
        )),
    }
}

fn sort_order(v: &str) -> Result<bool, ScimError> {
    if v.eq_ignore_ascii_case("ascending") {
        Ok(false)
    } else if v.eq_ignore_ascii_case("descending") {
        Ok(true)
    } else {
        Err(ScimError::invalid_value(
            "sortOrder must be 'ascending' or 'descending'.",
        ))
    }
}

/// `startIndex`: below 1 reads as 1 (RFC 7644 §3.4.2.4).
fn start_index(v: &str) -> Result<u64, ScimError> {
    let n: i64 = v
        .trim()
        .parse()
        .map_err(|_| ScimError::invalid_value("startIndex must be a whole number."))?;
    Ok(n.max(1) as u64)
}

/// `count`: below 0 reads as 0, above the maximum as the maximum.
fn count(v: &str) -> Result<u32, ScimError> {
    let n: i64 = v
        .trim()
        .parse()
        .map_err(|_| ScimError::invalid_value("count must be a whole number."))?;
    Ok(n.clamp(0, i64::from(MAX_RESULTS)) as u32)
}

/// Reads the window `[start, start + count)` (zero-based `start`) through a paged
/// list: one page of `count` items, or two when the window straddles them. Returns the
/// items and the total.
pub async fn window<T, F, Fut>(start: u64, count: u32, fetch: F) -> Result<(Vec<T>, i64), ScimError>
where
    F: Fn(PageRequest) -> Fut,
    Fut: std::future::Future<Output = Result<crate::domain::page::Page<T>, ScimError>>,
{
    if count == 0 {
        let page = fetch(PageRequest { index: 0, size: 1 }).await?;
        return Ok((Vec::new(), page.total));
    }
    let size = u64::from(count);
    let index = start / size;
    let skip = (start % size) as usize;
    let Ok(first_index) = u32::try_from(index) else {
        let page = fetch(PageRequest { index: 0, size: 1 }).await?;
        return Ok((Vec::new(), page.total));
    };
    let first = fetch(PageRequest {
        index: first_index,
        size: count,
    })
    .await?;
    let total = first.total;
    let mut items: Vec<T> = first.items.into_iter().skip(skip).collect();
    let next_start = (u64::from(first_index) + 1) * size;
    if skip > 0 && items.len() < count as usize && next_start < total.max(0) as u64 {
        if let Some(next) = first_index.checked_add(1) {
            let second = fetch(PageRequest {
                index: next,
                size: count,
            })
            .await?;
            items.extend(second.items);
        }
    }
    items.truncate(count as usize);
    Ok((items, total))
}

/// A `ListResponse`.
pub fn list_response(resources: Vec<Value>, total: i64, start_index: u64) -> Value {
    json!({
        "schemas": [schema::LIST],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

/// A `ListRequest` for one page.
pub fn page_request(filter: Option<Expr>, order: OrderBy, page: PageRequest) -> ListRequest {
    ListRequest {
        q: None,
        filter,
        order,
        page,
    }
}

/// `POST /.search`: users, then groups, one window over both. An attribute one of the
/// two resource types lacks makes that type contribute nothing; `sortBy` sorts within
/// each type.
pub async fn root_search_handler(ctx: Ctx, ScimBody(body): ScimBody) -> Result<Reply, ScimError> {
    let params = ListParams::from_search(body)?;
    let start = params.start_index - 1;
    // Totals first, to know where the window falls.
    let count_of = |p: &ListParams| {
        let mut p = p.clone();
        p.count = 0;
        p
    };
    let users_fit = users::list(&ctx, &count_of(&params)).await.map(|(_, t)| t);
    let groups_fit = groups::list(&ctx, &count_of(&params)).await.map(|(_, t)| t);
    // A filter or sort neither type can answer is the client's error.
    let (user_total, group_total) = match (users_fit, groups_fit) {
        (Err(e), Err(_)) => return Err(e),
        (u, g) => (u.or_else(skip_unfit)?, g.or_else(skip_unfit)?),
    };
    let mut out = Vec::new();
    let want = u64::from(params.count);
    if start < user_total as u64 && want > 0 {
        let (items, _) = users::list(&ctx, &params).await?;
        out.extend(items);
    }
    let taken = out.len() as u64;
    if taken < want && start + taken < (user_total + group_total) as u64 {
        let mut gp = params.clone();
        gp.start_index = (start + taken).saturating_sub(user_total as u64) + 1;
        gp.count = (want - taken) as u32;
        let (items, _) = groups::list(&ctx, &gp).await?;
        out.extend(items);
    }
    Ok(Reply::ok(list_response(
        out,
        user_total + group_total,
        params.start_index,
    )))
}

/// A filter or sort that one resource type cannot answer: that type has no match.
fn skip_unfit(e: ScimError) -> Result<i64, ScimError> {
    if e.status.as_u16() == 400 {
        Ok(0)
    } else {
        Err(e)
    }
}

/// Raw query string, for handlers.
pub fn raw(q: &RawQuery) -> Option<&str> {
    q.0.as_deref()
}
