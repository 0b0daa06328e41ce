//! Two-way texting on the one table: conversations (the Inbox), their
//! threads (Patient Chat) and the patients listed by phone number.
//!
//! | item             | pk              | sk                                   |
//! |------------------|-----------------|--------------------------------------|
//! | conversation     | `PRACTICE#{id}` | `CONV#{phone}`                       |
//! | thread entry     | `PRACTICE#{id}` | `THREAD#{phone}#{position}`          |
//! | patient by phone | `PRACTICE#{id}` | `PHONEPAT#{phone}#{patient_id}`      |
//!
//! A conversation item holds the [`Conversation`] (with its `version`), the
//! `patients` who had the number when it was last written, and the keys of
//! four sparse Inbox indexes. All share the sort key `csk`
//! ([`inbox_key`]: last activity to the millisecond, then the number); the
//! partition says which conversations an index holds:
//!
//! | index                   | partition attribute | value                                            |
//! |-------------------------|---------------------|--------------------------------------------------|
//! | `InboxByStatus`         | `cgsi1pk`           | `PRACTICE#{id}#{status}`                         |
//! | `InboxUnread`           | `cgsi2pk`           | `PRACTICE#{id}#{status}#unread` (unread only)    |
//! | `InboxByAssignee`       | `cgsi3pk`           | `PRACTICE#{id}#{status}#a#{assignee}` (assigned) |
//! | `InboxUnreadByAssignee` | `cgsi4pk`           | `PRACTICE#{id}#{status}#unread#a#{assignee}`     |
//!
//! Every write of a conversation is a whole `Put`, so an attribute the
//! conversation no longer qualifies for is simply not written, and the item
//! leaves that index. Every Inbox filter is one partition per status (two
//! when both statuses are listed, merged by `csk`): a page reads what it
//! returns, plus one item to know whether more follow. No scan, no filter
//! expression.
//!
//! Thread entries sort by [`ThreadItem::position`] (time, then the entry id),
//! so a page of a thread is one `Query` read backwards. The patient-by-phone
//! links are written with the patient, in one transaction
//! ([`PracticeStore::put_patient`](messaging_core::ports::PracticeStore::put_patient)),
//! so they are read consistently.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;

use super::items::{from_item, key, s, to_item};
use super::keys::{
    phone_patients_prefix, practice_pk, recipient_sk, INBOX_BY_ASSIGNEE, INBOX_BY_STATUS,
    INBOX_UNREAD, INBOX_UNREAD_BY_ASSIGNEE,
};
use super::paging::{next_cursor, split_page, Pages};
use super::tx::cancelled_by_condition;
use super::{err, DynamoStore, Item};
use messaging_core::domain::conversation::{
    Conversation, ConversationStatus, InboxFilter, MediaStatus, PatientRef, StoredConversation,
    ThreadItem,
};
use messaging_core::domain::error::StoreError;
use messaging_core::domain::events;
use messaging_core::domain::message::{Recipient, SendJob};
use messaging_core::domain::phone::PhoneNumber;
use messaging_core::ports::{inbox_key, ConversationStore, SaveConversation};

/// The sort key of every Inbox index.
const INBOX_SORT: &str = "csk";

fn conversation_sk(phone: &PhoneNumber) -> String {
    format!("CONV#{}", phone.as_str())
}

fn thread_prefix(phone: &PhoneNumber) -> String {
    format!("THREAD#{}#", phone.as_str())
}

fn thread_sk(phone: &PhoneNumber, position: &str) -> String {
    format!("{}{position}", thread_prefix(phone))
}

fn status_name(status: ConversationStatus) -> &'static str {
    match status {
        ConversationStatus::Open => "open",
        ConversationStatus::Closed => "closed",
    }
}

/// Which Inbox index, partition attribute and partition a filter reads for
/// one status.
fn inbox_partition(
    practice_id: &str,
    status: ConversationStatus,
    unread_only: bool,
    assignee: Option<&str>,
) -> (&'static str, &'static str, String) {
    let base = format!("{}#{}", practice_pk(practice_id), status_name(status));
    match (unread_only, assignee) {
        (false, None) => (INBOX_BY_STATUS, "cgsi1pk", base),
        (true, None) => (INBOX_UNREAD, "cgsi2pk", format!("{base}#unread")),
        (false, Some(a)) => (INBOX_BY_ASSIGNEE, "cgsi3pk", format!("{base}#a#{a}")),
        (true, Some(a)) => (
            INBOX_UNREAD_BY_ASSIGNEE,
            "cgsi4pk",
            format!("{base}#unread#a#{a}"),
        ),
    }
}

/// The conversation item as stored: `conversation` (whose `version` is the
/// one to store), its patients, and the keys of every Inbox index it belongs
/// to.
fn conversation_item(
    practice_id: &str,
    conversation: &Conversation,
    patients: &[PatientRef],
) -> Result<Item, StoreError> {
    let mut item = to_item(
        conversation,
        practice_pk(practice_id),
        conversation_sk(&conversation.phone),
    )?;
    item.insert(
        "patients".into(),
        serde_dynamo::to_attribute_value(patients)
            .map_err(|e| StoreError::new("encode patients", e))?,
    );
    item.insert(INBOX_SORT.into(), s(inbox_key(conversation)));
    let unread = conversation.unread_count > 0;
    let assignee = conversation.assignee.as_deref();
    let mut partitions = vec![
        inbox_partition(practice_id, conversation.status, false, None),
        inbox_partition(practice_id, conversation.status, false, assignee),
        inbox_partition(practice_id, conversation.status, unread, None),
        inbox_partition(practice_id, conversation.status, unread, assignee),
    ];
    partitions.dedup();
    for (_, attribute, value) in partitions {
        item.insert(attribute.into(), s(value));
    }
    Ok(item)
}

fn decode_conversation(mut item: Item) -> Result<StoredConversation, StoreError> {
    let patients = match item.remove("patients") {
        Some(v) => serde_dynamo::from_attribute_value(v)
            .map_err(|e| StoreError::new("decode patients", e))?,
        None => Vec::new(),
    };
    Ok(StoredConversation {
        conversation: from_item(item)?,
        patients,
    })
}

/// A thread entry as stored. Unlike other items its `NULL`s are kept: the
/// entries' optional fields (`keyword`) are read with a custom format that
/// needs them present.
fn thread_item(
    practice_id: &str,
    phone: &PhoneNumber,
    entry: &ThreadItem,
) -> Result<Item, StoreError> {
    let mut item: Item =
        serde_dynamo::to_item(entry).map_err(|e| StoreError::new("encode thread entry", e))?;
    item.extend(key(
        practice_pk(practice_id),
        thread_sk(phone, &entry.position()),
    ));
    Ok(item)
}

fn sort_key_of(item: &Item) -> Option<&str> {
    match item.get(INBOX_SORT) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

impl DynamoStore {
    /// Up to `wanted` items of one Inbox partition, newest first, with a
    /// sort key below `after`; fewer only when the partition has no more.
    async fn inbox_partition_page(
        &self,
        (index, attribute, partition): (&'static str, &'static str, String),
        wanted: usize,
        after: Option<&str>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut values = HashMap::from([(":pk".to_string(), s(partition))]);
        let condition = match after {
            Some(after) => {
                values.insert(":after".into(), s(after));
                format!("{attribute} = :pk AND {INBOX_SORT} < :after")
            }
            None => format!("{attribute} = :pk"),
        };
        let (found, _) = self
            .query_pages(
                |query| {
                    query
                        .index_name(index)
                        .key_condition_expression(&condition)
                        .set_expression_attribute_values(Some(values.clone()))
                        .scan_index_forward(false)
                },
                None,
                Pages::UpTo(wanted),
                "read inbox",
                Ok,
            )
            .await?;
        Ok(found)
    }

    /// Retries a transaction cancelled only by another transaction on the
    /// same items; answers which item's condition failed, if one did.
    async fn save_transaction(
        &self,
        writes: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
        op: &'static str,
    ) -> Result<Option<usize>, StoreError> {
        let count = writes.len();
        match self.transact_retrying_conflicts(writes).await {
            Ok(_) => Ok(None),
            Err(e) => match (0..count).rev().find(|i| cancelled_by_condition(&e, *i)) {
                Some(i) => Ok(Some(i)),
                None => Err(StoreError::new(op, DisplayErrorContext(e))),
            },
        }
    }
}

#[async_trait]
impl ConversationStore for DynamoStore {
    async fn get_conversation(
        &self,
        practice_id: &str,
        phone: &PhoneNumber,
    ) -> Result<Option<StoredConversation>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(practice_pk(practice_id), conversation_sk(phone))))
            .consistent_read(true)
            .send()
            .await
            .map_err(err("read conversation"))?;
        out.item.map(decode_conversation).transpose()
    }

    async fn save_conversation(
        &self,
        practice_id: &str,
        conversation: &Conversation,
        created: bool,
        patients: &[PatientRef],
        entry: Option<&ThreadItem>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<SaveConversation, StoreError> {
        let mut next = conversation.clone();
        next.version = conversation.version + 1;
        let item = conversation_item(practice_id, &next, patients)?;
        let put = aws_sdk_dynamodb::types::Put::builder()
            .table_name(&self.table)
            .set_item(Some(item));
        let put = if created {
            put.condition_expression("attribute_not_exists(pk)")
        } else {
            put.condition_expression("version = :read_version")
                .expression_attribute_values(
                    ":read_version",
                    AttributeValue::N(conversation.version.to_string()),
                )
        };
        let put = put.build().map_err(|e| StoreError::new("build put", e))?;
        let mut writes = vec![aws_sdk_dynamodb::types::TransactWriteItem::builder()
            .put(put)
            .build()];
        if let Some(entry) = entry {
            writes.push(self.put(
                thread_item(practice_id, &conversation.phone, entry)?,
                Some("attribute_not_exists(sk)"),
            )?);
            // The outbox: a patient's text and its `message.received` are one write.
            if let ThreadItem::Inbound(inbound) = entry {
                let event = events::received(practice_id, inbound, now);
                writes.push(self.event_put(&event)?);
            }
        }
        // The entry (index 1) is looked at first: a recorded entry is a
        // duplicate whatever else changed meanwhile.
        Ok(
            match self.save_transaction(writes, "store conversation").await? {
                None => SaveConversation::Saved,
                Some(1) => SaveConversation::DuplicateEntry,
                Some(_) => SaveConversation::Conflict,
            },
        )
    }

    async fn list_conversations(
        &self,
        practice_id: &str,
        filter: &InboxFilter,
        limit: u32,
        after: Option<&str>,
    ) -> Result<(Vec<StoredConversation>, Option<String>), StoreError> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        // One more than asked, to know whether another page follows.
        let wanted = limit.saturating_add(1);
        let statuses = match filter.status {
            Some(status) => vec![status],
            None => vec![ConversationStatus::Open, ConversationStatus::Closed],
        };
        let mut found: Vec<Item> = Vec::new();
        for status in statuses {
            let partition = inbox_partition(
                practice_id,
                status,
                filter.unread_only,
                filter.assignee.as_deref(),
            );
            found.extend(self.inbox_partition_page(partition, wanted, after).await?);
        }
        // Each partition is newest first; merged, the newest `wanted` of both.
        found.sort_by(|a, b| sort_key_of(b).cmp(&sort_key_of(a)));
        let (found, more) = split_page(found, limit);
        let next = next_cursor(&found, more, |c| sort_key_of(c).map(str::to_string));
        let page = found
            .into_iter()
            .map(decode_conversation)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((page, next))
    }

    async fn thread(
        &self,
        practice_id: &str,
        phone: &PhoneNumber,
        limit: u32,
        after: Option<&str>,
    ) -> Result<(Vec<ThreadItem>, Option<String>), StoreError> {
        let pk = practice_pk(practice_id);
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let wanted = limit.saturating_add(1);
        let start: Option<Item> = after.map(|p| key(pk.clone(), thread_sk(phone, p)));
        let (found, _): (Vec<ThreadItem>, _) = self
            .query_pages(
                |query| {
                    query
                        .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                        .expression_attribute_values(":pk", s(pk.clone()))
                        .expression_attribute_values(":prefix", s(thread_prefix(phone)))
                        .scan_index_forward(false)
                        .consistent_read(true)
                },
                start,
                Pages::UpTo(wanted),
                "read thread",
                from_item,
            )
            .await?;
        let (found, more) = split_page(found, limit);
        let next = next_cursor(&found, more, |t| Some(t.position()));
        Ok((found, next))
    }

    async fn patients_with_phone(
        &self,
        practice_id: &str,
        phone: &PhoneNumber,
    ) -> Result<Vec<PatientRef>, StoreError> {
        let (patients, _) = self
            .query_prefix(
                practice_id,
                &phone_patients_prefix(phone),
                usize::MAX,
                None,
                None,
                "read patients by phone",
            )
            .await?;
        Ok(patients)
    }

    async fn recipients(&self, jobs: &[SendJob]) -> Result<Vec<Option<Recipient>>, StoreError> {
        // BatchGetItem refuses a request naming a key twice.
        let ids = |job: &SendJob| {
            (
                job.practice_id.clone(),
                job.message_id.clone(),
                job.recipient_id.clone(),
            )
        };
        let mut keys: Vec<Item> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for job in jobs {
            if seen.insert(ids(job)) {
                keys.push(key(
                    practice_pk(&job.practice_id),
                    recipient_sk(&job.message_id, &job.recipient_id),
                ));
            }
        }
        let mut found = HashMap::new();
        for item in self.batch_get(keys, "read recipients").await? {
            let recipient: Recipient = from_item(item)?;
            found.insert(ids(&recipient.job()), recipient);
        }
        Ok(jobs
            .iter()
            .map(|job| found.get(&ids(job)).cloned())
            .collect())
    }

    async fn set_media_status(
        &self,
        practice_id: &str,
        phone: &PhoneNumber,
        position: &str,
        index: usize,
        status: MediaStatus,
    ) -> Result<(), StoreError> {
        let value = serde_dynamo::to_attribute_value(status)
            .map_err(|e| StoreError::new("encode media status", e))?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                practice_pk(practice_id),
                thread_sk(phone, position),
            )))
            .update_expression(format!("SET media[{index}].#status = :status"))
            .condition_expression(format!("attribute_exists(media[{index}])"))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", value)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // No such entry, or no such attachment: nothing to record.
            Err(e)
                if e.as_service_error()
                    .is_some_and(UpdateItemError::is_conditional_check_failed_exception) =>
            {
                Ok(())
            }
            Err(e) => Err(StoreError::new(
                "record media status",
                DisplayErrorContext(e),
            )),
        }
    }
}
