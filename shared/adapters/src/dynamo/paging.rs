//! Reading a `Query` page by page: each request after the first starts at
//! the last one's `LastEvaluatedKey` (`ExclusiveStartKey`) and asks for
//! what is still wanted (`Limit`); the pages the API hands out read one
//! item more than they show, to know whether another follows.

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use serde::de::DeserializeOwned;

use super::items::{from_item, key, s};
use super::keys::practice_pk;
use super::{err, DynamoStore, Item};
use messaging_core::domain::error::StoreError;

/// How far a read goes.
#[derive(Debug, Clone, Copy)]
pub(super) enum Pages {
    /// Every page, with no `Limit`.
    All,
    /// Until this many items are read (or none are left): each request's
    /// `Limit` is what is still wanted.
    UpTo(usize),
    /// One request, with this `Limit` if any.
    First(Option<u32>),
}

impl DynamoStore {
    /// The items of the query `shape` describes (key condition, index,
    /// filter, order, consistency; the table is set), from `start` on, as
    /// far as `pages` says, each decoded as it arrives; and the
    /// `LastEvaluatedKey` of the last request, if it gave one.
    pub(super) async fn query_pages<T>(
        &self,
        shape: impl Fn(QueryFluentBuilder) -> QueryFluentBuilder,
        start: Option<Item>,
        pages: Pages,
        op: &'static str,
        mut decode: impl FnMut(Item) -> Result<T, StoreError>,
    ) -> Result<(Vec<T>, Option<Item>), StoreError> {
        let mut found: Vec<T> = Vec::new();
        let mut start = start;
        loop {
            let query = shape(self.client.query().table_name(&self.table));
            let query = match pages {
                Pages::All | Pages::First(None) => query,
                Pages::UpTo(wanted) => {
                    query.limit(i32::try_from(wanted - found.len()).unwrap_or(i32::MAX))
                }
                Pages::First(Some(limit)) => query.limit(i32::try_from(limit).unwrap_or(i32::MAX)),
            };
            let out = query
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(err(op))?;
            for item in out.items.unwrap_or_default() {
                found.push(decode(item)?);
            }
            let again = match pages {
                Pages::All => true,
                Pages::UpTo(wanted) => found.len() < wanted,
                Pages::First(_) => false,
            };
            match out.last_evaluated_key {
                Some(k) if again && !k.is_empty() => start = Some(k),
                last => return Ok((found, last)),
            }
        }
    }

    /// Up to `limit` items of a practice whose sort key starts with `prefix`
    /// (and, when `only_status` is given, whose `status` is that), in
    /// sort-key order, after the sort key `after`; read consistently, past
    /// DynamoDB's 1 MB pages until it has them. Also says whether more follow.
    pub(super) async fn query_prefix<T: DeserializeOwned>(
        &self,
        practice_id: &str,
        prefix: &str,
        limit: usize,
        after: Option<String>,
        only_status: Option<&str>,
        op: &'static str,
    ) -> Result<(Vec<T>, bool), StoreError> {
        let pk = practice_pk(practice_id);
        // One more than asked, to know whether another page follows.
        let wanted = limit.saturating_add(1);
        let start: Option<Item> = after.map(|sk| key(pk.clone(), sk));
        let (found, _) = self
            .query_pages(
                |query| {
                    let query = query
                        .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                        .expression_attribute_values(":pk", s(pk.clone()))
                        .expression_attribute_values(":prefix", s(prefix))
                        .consistent_read(true);
                    match only_status {
                        Some(status) => query
                            .filter_expression("#status = :status")
                            .expression_attribute_names("#status", "status")
                            .expression_attribute_values(":status", s(status)),
                        None => query,
                    }
                },
                start,
                Pages::UpTo(wanted),
                op,
                from_item,
            )
            .await?;
        Ok(split_page(found, limit))
    }

    /// Every item of a practice whose sort key starts with `prefix`, read
    /// as [`query_prefix`](Self::query_prefix) pages of 100, each after the
    /// sort key `sk_of` gives for the last item of the one before.
    pub(super) async fn query_prefix_all<T: DeserializeOwned>(
        &self,
        practice_id: &str,
        prefix: &str,
        sk_of: impl Fn(&T) -> String,
        op: &'static str,
    ) -> Result<Vec<T>, StoreError> {
        let mut found = Vec::new();
        let mut after = None;
        loop {
            let (page, more): (Vec<T>, bool) = self
                .query_prefix(practice_id, prefix, 100, after, None, op)
                .await?;
            after = page.last().map(&sk_of);
            found.extend(page);
            if !more {
                return Ok(found);
            }
        }
    }
}

/// Items read with one more than `limit` (to know whether another page
/// follows): the first `limit`, and whether more follow.
pub(super) fn split_page<T>(mut found: Vec<T>, limit: usize) -> (Vec<T>, bool) {
    let more = found.len() > limit;
    found.truncate(limit);
    (found, more)
}

/// Where the page after `page` starts, when more follow: `cursor` of its
/// last item.
pub(super) fn next_cursor<T>(
    page: &[T],
    more: bool,
    cursor: impl FnOnce(&T) -> Option<String>,
) -> Option<String> {
    if more {
        page.last().and_then(cursor)
    } else {
        None
    }
}
