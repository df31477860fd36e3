//! Lists and searches on SQLite: pages counted and fetched on the scanning connections,
//! and the plan of a `q` search through the trigram index.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::SqliteStore;
use super::readers::Readers;
use super::rows::{RowByName, rows_of};
use crate::domain::user::User;
use crate::store::filter_sql::Dialect;
use crate::store::sql::{self, ListSql};
use crate::store::{ListQuery, Page, PageRequest, StoreError, StoreResult, UserScope};

/// Rows an unfiltered, default-ordered user page may walk and still run on the calling
/// thread (an index walk of this many rows takes well under a millisecond).
const INLINE_WALK: u64 = 1_000;

/// Trigram counts at or above this are "common": counting further would cost more than
/// it tells.
const TRIGRAM_CAP: i64 = 20_000;
/// How long a trigram count is trusted.
const TRIGRAM_TTL: Duration = Duration::from_secs(600);

impl SqliteStore {
    /// [`Store::list_users`](crate::store::Store::list_users).
    pub(super) async fn users_page(
        &self,
        scope: &UserScope,
        query: &ListQuery,
    ) -> StoreResult<Page<User>> {
        let plan = match query.q.as_deref() {
            Some(q) => self.trigram_plan(q).await?,
            None => None,
        };
        let mut list = ListSql::users_matching(scope, query, Dialect::Sqlite, plan);
        if !list.is_everything() {
            return fetch_page(&self.direct, list, query.page, None, |r| sql::user_from(r)).await;
        }
        let total = self.user_total()?;
        let page = query.page;
        let walked = (u64::from(page.index) + 1) * u64::from(page.size);
        if !query.order.0.is_empty() || walked > INLINE_WALK {
            return fetch_page(&self.direct, list, page, Some(total), |r| sql::user_from(r)).await;
        }
        // The default order over everyone, near the start: a bounded walk of the
        // username index, cheap enough to run here rather than hop to the blocking pool.
        let page_sql = list.page_sql(page);
        let params = &list.params;
        let items = self
            .direct
            .read(|c| rows_of(c, &page_sql, params, |r| sql::user_from(r)))?;
        Ok(Page { items, total })
    }

    /// Plans a `q` search through the trigram index. FTS5 reads the posting list of
    /// every trigram of a phrase, and a term made of trigrams that most users share (the
    /// email domain, a common name prefix) then costs a pass over long lists. Instead,
    /// pick the two rarest trigrams of the term — counted once, capped, and remembered —
    /// and let the caller verify the candidates with `LIKE`. `None` keeps the phrase
    /// query (short terms, or terms whose every trigram is common).
    pub(super) async fn trigram_plan(&self, q: &str) -> StoreResult<Option<String>> {
        // ASCII only: then our lower-casing and FTS5's case folding agree on every
        // trigram, so the candidates are a true superset of the matches.
        if !q.is_ascii() {
            return Ok(None);
        }
        let chars: Vec<char> = q.to_ascii_lowercase().chars().collect();
        if chars.len() < 5 {
            return Ok(None);
        }
        let mut grams: Vec<String> = chars.windows(3).map(|w| w.iter().collect()).collect();
        grams.sort();
        grams.dedup();
        let mut counted = Vec::with_capacity(grams.len());
        for gram in grams {
            let known = {
                let cache = self
                    .trigrams
                    .lock()
                    .expect("the trigram cache is never poisoned");
                cache
                    .get(&gram)
                    .filter(|(_, at)| at.elapsed() < TRIGRAM_TTL)
                    .map(|(n, _)| *n)
            };
            let n = match known {
                Some(n) => n,
                None => {
                    let phrase = sql::fts_phrase(&gram);
                    let n: i64 = self
                        .direct
                        .read_blocking(move |c| {
                            Ok(c.prepare_cached(
                                "SELECT COUNT(*) FROM (SELECT 1 FROM users_fts \
                                 WHERE users_fts MATCH $1 LIMIT $2)",
                            )?
                            .query_row(rusqlite::params![phrase, TRIGRAM_CAP], |r| r.get(0))?)
                        })
                        .await?;
                    let mut cache = self
                        .trigrams
                        .lock()
                        .expect("the trigram cache is never poisoned");
                    if cache.len() > 100_000 {
                        cache.clear();
                    }
                    cache.insert(gram.clone(), (n, Instant::now()));
                    n
                }
            };
            counted.push((n, gram));
        }
        counted.sort();
        match counted.as_slice() {
            [(a, ga), (_, gb), ..] if *a < TRIGRAM_CAP => Ok(Some(format!(
                "{} AND {}",
                sql::fts_phrase(ga),
                sql::fts_phrase(gb)
            ))),
            _ => Ok(None),
        }
    }
}

/// Counts the matches of a list (unless `total` is known) and fetches one page of them,
/// concurrently on two read connections of the blocking pool: a search's cost is then
/// the slower of the two, not their sum. (On rusqlite rather than sqlx: sqlx hands each
/// row to the async side over a channel, which cost more than the query.)
pub(super) async fn fetch_page<T: Send + 'static>(
    readers: &Arc<Readers>,
    mut list: ListSql,
    page: PageRequest,
    total: Option<i64>,
    map: fn(&RowByName<'_, '_>) -> StoreResult<T>,
) -> StoreResult<Page<T>> {
    let count_sql = list.count_sql();
    let count_params = list.count_params().to_vec();
    let page_sql = list.page_sql(page);
    let page_params = list.params.clone();
    let count = async {
        match total {
            Some(n) => Ok(n),
            None => {
                readers
                    .read_blocking(move |c| {
                        rows_of(c, &count_sql, &count_params, |r| Ok(r.row().get(0)?))?
                            .pop()
                            .ok_or(StoreError::NotFound)
                    })
                    .await
            }
        }
    };
    let rows = readers.read_blocking(move |c| rows_of(c, &page_sql, &page_params, map));
    let (total, items) = tokio::try_join!(count, rows)?;
    Ok(Page { items, total })
}
