//! The tracking list (the seed's Communication dashboard): the Manual tab,
//! every message the practice sent by hand, and the Automatic tab, every
//! text the product sent by itself (appointment reminders); newest first,
//! filtered by type, status and sent dates.
//!
//! Served from two indexes (see the DynamoDB adapter): one over all messages,
//! one partitioned by type and status. A filter picks the partitions to read
//! (at most 8), each read is one `Query` bounded by the page size, and the
//! partitions are merged by tracking key. No scan, no filter expression: the
//! cost follows the page, not the practice's history.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::clock::to_api_time;
use crate::domain::error::AppError;
use crate::domain::message::{
    BulkStatus, Counts, Message, MessageStatus, MessageType, RecipientStatus, Tab,
};
use crate::domain::practice::Channel;
use crate::paging::{decode_cursor, encode_cursor};
use crate::ports::{tracking_key, MessageStore, TrackingIndex};

/// Statuses a bulk message as a whole can have.
pub const BULK_STATUSES: [&str; 4] = [
    BulkStatus::Scheduled.as_str(),
    BulkStatus::Sending.as_str(),
    BulkStatus::Completed.as_str(),
    BulkStatus::Canceled.as_str(),
];

/// What `GET /v1/communications` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackingQuery {
    /// `tab=` (default: manual).
    pub tab: Tab,
    /// `type=`.
    pub message_type: Option<MessageType>,
    /// `status=`.
    pub status: Option<String>,
    /// `sent_from=` (inclusive).
    pub sent_from: Option<DateTime<Utc>>,
    /// `sent_to=` (inclusive).
    pub sent_to: Option<DateTime<Utc>>,
    /// Page size.
    pub limit: u32,
    /// Where the previous page ended.
    pub cursor: Option<String>,
}

fn statuses_of(t: MessageType) -> Vec<&'static str> {
    match t {
        MessageType::BulkMessage => BULK_STATUSES.to_vec(),
        _ => RecipientStatus::ALL.iter().map(|s| s.as_str()).collect(),
    }
}

impl TrackingQuery {
    /// Builds the query from query-string values, refusing bad ones by name.
    pub fn parse(
        get: impl Fn(&str) -> Option<String>,
        limit: u32,
        cursor: Option<String>,
    ) -> Result<Self, AppError> {
        let tab = match get("tab").as_deref() {
            None | Some("") | Some("manual") => Tab::Manual,
            Some("automatic") => Tab::Automatic,
            Some(other) => {
                return Err(AppError::invalid(
                    "invalid_field",
                    format!("tab {other:?} must be manual or automatic"),
                )
                .at("tab"))
            }
        };
        let message_type = match get("type").as_deref() {
            None | Some("") => None,
            Some(name) => {
                let names = || {
                    MessageType::ALL
                        .iter()
                        .filter(|t| t.tab() == tab)
                        .map(|t| t.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let t = MessageType::parse(name)
                    .filter(|t| t.tab() == tab)
                    .ok_or_else(|| {
                        AppError::invalid(
                            "invalid_field",
                            format!(
                                "type {name:?} is not a type of this tab; use one of {}",
                                names()
                            ),
                        )
                        .at("type")
                    })?;
                Some(t)
            }
        };
        let status = get("status").filter(|s| !s.is_empty());
        if let Some(s) = &status {
            let known = RecipientStatus::parse(s).is_some() || BULK_STATUSES.contains(&s.as_str());
            let fits = message_type.is_none_or(|t| statuses_of(t).contains(&s.as_str()));
            if !known || !fits {
                return Err(AppError::invalid(
                    "invalid_field",
                    format!("status {s:?} is not a status of these messages"),
                )
                .at("status"));
            }
        }
        let time = |name: &str| -> Result<Option<DateTime<Utc>>, AppError> {
            match get(name).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(v) => DateTime::parse_from_rfc3339(&v)
                    .map(|t| Some(t.with_timezone(&Utc)))
                    .map_err(|_| {
                        AppError::invalid(
                            "invalid_field",
                            format!(
                                "{name} must be an RFC 3339 time such as 2026-12-01T00:00:00-05:00"
                            ),
                        )
                        .at(name)
                    }),
            }
        };
        let (sent_from, sent_to) = (time("sent_from")?, time("sent_to")?);
        if let (Some(f), Some(t)) = (sent_from, sent_to) {
            if f > t {
                return Err(AppError::invalid(
                    "invalid_field",
                    "sent_from must not be after sent_to",
                )
                .at("sent_from"));
            }
        }
        Ok(Self {
            tab,
            message_type,
            status,
            sent_from,
            sent_to,
            limit,
            cursor,
        })
    }

    /// The index partitions this query reads.
    fn partitions(&self) -> Vec<TrackingIndex> {
        let types = match self.message_type {
            Some(t) => vec![t],
            None => MessageType::ALL
                .into_iter()
                .filter(|t| t.tab() == self.tab)
                .collect(),
        };
        match (&self.message_type, &self.status) {
            (None, None) => vec![TrackingIndex::All(self.tab)],
            (_, Some(s)) => types
                .into_iter()
                .filter(|t| statuses_of(*t).contains(&s.as_str()))
                .map(|t| TrackingIndex::TypeStatus(t, s.clone()))
                .collect(),
            (Some(t), None) => statuses_of(*t)
                .into_iter()
                .map(|s| TrackingIndex::TypeStatus(*t, s.to_string()))
                .collect(),
        }
    }
}

/// One line of the tracking list.
#[derive(Debug, Clone, Serialize)]
pub struct CommunicationView {
    id: String,
    #[serde(rename = "type")]
    message_type: MessageType,
    status: MessageStatus,
    sent_at: Option<String>,
    send_at: Option<String>,
    created_at: String,
    content: String,
    channel: Channel,
    target_count: u32,
    counts: Counts,
}

impl From<&Message> for CommunicationView {
    fn from(m: &Message) -> Self {
        Self {
            id: m.id.clone(),
            message_type: m.message_type,
            status: m.status,
            sent_at: m.sent_at.as_ref().map(to_api_time),
            send_at: m.send_at.as_ref().map(to_api_time),
            created_at: to_api_time(&m.created_at),
            content: m.text.clone(),
            channel: m.channel,
            target_count: m.target_count,
            counts: m.counts,
        }
    }
}

/// One page of the tracking list and the cursor of the next.
pub async fn list<M: MessageStore>(
    store: &M,
    practice_id: &str,
    query: &TrackingQuery,
) -> Result<(Vec<CommunicationView>, Option<String>), AppError> {
    let low = query
        .sent_from
        .as_ref()
        .map(to_api_time)
        .unwrap_or_else(|| "0".into());
    let mut high = query
        .sent_to
        .as_ref()
        .map(|t| format!("{}#~", to_api_time(t)))
        .unwrap_or_else(|| "~".into());
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
    if let Some(position) = &after {
        if *position < high {
            high = position.clone();
        }
    }
    let mut found: Vec<(String, Message)> = Vec::new();
    // One extra for the cursor's own item (BETWEEN is inclusive), one to
    // know whether another page follows.
    let per_partition = query.limit + 2;
    for index in query.partitions() {
        for m in store
            .communications(practice_id, &index, &low, &high, per_partition)
            .await?
        {
            let key = tracking_key(&m);
            if after.as_ref() != Some(&key) {
                found.push((key, m));
            }
        }
    }
    found.sort_by(|a, b| b.0.cmp(&a.0));
    found.dedup_by(|a, b| a.0 == b.0);
    let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
    let next = (found.len() > limit).then(|| encode_cursor(&found[limit - 1].0));
    let page = found
        .iter()
        .take(limit)
        .map(|(_, m)| CommunicationView::from(m))
        .collect();
    Ok((page, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Result<TrackingQuery, AppError> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        TrackingQuery::parse(|k| map.get(k).cloned(), 50, None)
    }

    #[test]
    fn filters_choose_the_fewest_partitions() {
        assert_eq!(
            q(&[]).unwrap().partitions(),
            vec![TrackingIndex::All(Tab::Manual)]
        );
        assert_eq!(
            q(&[("type", "direct_message")]).unwrap().partitions().len(),
            8
        );
        assert_eq!(
            q(&[("type", "bulk_message")]).unwrap().partitions().len(),
            4
        );
        // The Manual tab's five types share "scheduled"; bulks are never "delivered".
        assert_eq!(q(&[("status", "scheduled")]).unwrap().partitions().len(), 5);
        assert_eq!(q(&[("status", "delivered")]).unwrap().partitions().len(), 4);
        assert_eq!(
            q(&[("tab", "automatic")]).unwrap().partitions(),
            vec![TrackingIndex::All(Tab::Automatic)]
        );
        assert_eq!(
            q(&[("tab", "automatic"), ("status", "sent")])
                .unwrap()
                .partitions(),
            vec![TrackingIndex::TypeStatus(
                MessageType::AppointmentReminder,
                "sent".into()
            )]
        );
        assert_eq!(
            q(&[("tab", "manual"), ("type", "appointment_reminder")])
                .unwrap_err()
                .field
                .as_deref(),
            Some("type")
        );
        assert_eq!(
            q(&[("type", "direct_message"), ("status", "failed")])
                .unwrap()
                .partitions(),
            vec![TrackingIndex::TypeStatus(
                MessageType::DirectMessage,
                "failed".into()
            )]
        );
    }

    #[test]
    fn bad_filters_are_named() {
        assert_eq!(
            q(&[("type", "fax")]).unwrap_err().field.as_deref(),
            Some("type")
        );
        assert_eq!(
            q(&[("status", "lost")]).unwrap_err().field.as_deref(),
            Some("status")
        );
        assert_eq!(
            q(&[("type", "bulk_message"), ("status", "delivered")])
                .unwrap_err()
                .field
                .as_deref(),
            Some("status")
        );
        assert_eq!(
            q(&[("sent_from", "yesterday")])
                .unwrap_err()
                .field
                .as_deref(),
            Some("sent_from")
        );
        let reversed = q(&[
            ("sent_from", "2026-12-02T00:00:00Z"),
            ("sent_to", "2026-12-01T00:00:00Z"),
        ]);
        assert_eq!(reversed.unwrap_err().field.as_deref(), Some("sent_from"));
    }

    #[test]
    fn times_with_offsets_are_taken_in_utc() {
        let t = q(&[("sent_from", "2026-12-01T10:00:00-05:00")]).unwrap();
        assert_eq!(
            to_api_time(&t.sent_from.unwrap()),
            "2026-12-01T15:00:00.000Z"
        );
    }
}

#[cfg(test)]
mod paging_tests {
    use super::*;
    use crate::ports::MessageStore;
    use crate::testing::{queued_recipient, MemoryStore};

    async fn seed(store: &MemoryStore, n: usize) {
        for i in 0..n {
            let mut r = queued_recipient();
            r.message_id = format!("m-{i:03}");
            let created: DateTime<Utc> = format!("2026-11-{:02}T12:00:00Z", 1 + i % 28)
                .parse()
                .unwrap();
            let status = if i % 3 == 0 {
                RecipientStatus::Delivered
            } else {
                RecipientStatus::Queued
            };
            r.status = status;
            let m = Message {
                id: r.message_id.clone(),
                practice_id: "demo".into(),
                message_type: MessageType::DirectMessage,
                channel: Channel::SmsMain,
                from: r.from.clone(),
                text: format!("message {i}"),
                template_id: None,
                encoding: crate::domain::text::Encoding::Gsm7,
                segments: 1,
                send_at: None,
                created_at: created,
                target_count: 1,
                status: status.into(),
                counts: Counts::of([status].iter()),
                sent_at: None,
                bulk: None,
                appointment_ids: Vec::new(),
            };
            store.create_message(&m, &[r], None).await.unwrap();
        }
    }

    async fn walk(store: &MemoryStore, query: TrackingQuery) -> Vec<CommunicationView> {
        let mut all = Vec::new();
        let mut q = query;
        loop {
            let (page, next) = list(store, "demo", &q).await.unwrap();
            assert!(page.len() <= q.limit as usize);
            all.extend(page);
            match next {
                Some(c) => q.cursor = Some(c),
                None => return all,
            }
        }
    }

    #[tokio::test]
    async fn pages_cover_every_message_once_newest_first() {
        let store = MemoryStore::default();
        seed(&store, 40).await;
        let all = walk(
            &store,
            TrackingQuery {
                limit: 7,
                ..Default::default()
            },
        )
        .await;
        assert_eq!(all.len(), 40);
        let mut ids: Vec<&str> = all.iter().map(|v| v.id.as_str()).collect();
        let times: Vec<&str> = all.iter().map(|v| v.created_at.as_str()).collect();
        assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 40, "no message twice");
    }

    #[tokio::test]
    async fn date_bounds_are_inclusive_and_filters_exact() {
        let store = MemoryStore::default();
        seed(&store, 28).await;
        let q = TrackingQuery {
            limit: 5,
            sent_from: Some("2026-11-03T12:00:00Z".parse().unwrap()),
            sent_to: Some("2026-11-05T12:00:00Z".parse().unwrap()),
            ..Default::default()
        };
        let days: Vec<String> = walk(&store, q)
            .await
            .into_iter()
            .map(|v| v.created_at)
            .collect();
        assert_eq!(
            days,
            [
                "2026-11-05T12:00:00.000Z",
                "2026-11-04T12:00:00.000Z",
                "2026-11-03T12:00:00.000Z"
            ]
        );
        let delivered = walk(
            &store,
            TrackingQuery {
                limit: 2,
                status: Some("delivered".into()),
                message_type: Some(MessageType::DirectMessage),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(delivered.len(), 10);
        assert!(delivered.iter().all(|v| v.status == "delivered"));
        let by_type = walk(
            &store,
            TrackingQuery {
                limit: 3,
                message_type: Some(MessageType::DirectMessage),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(by_type.len(), 28);
    }
}
