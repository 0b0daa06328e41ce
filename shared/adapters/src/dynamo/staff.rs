//! Staff accounts, console sessions and failed sign-ins on the one table.
//!
//! | item                 | pk                    | sk                                  |
//! |----------------------|-----------------------|-------------------------------------|
//! | staff account        | `PRACTICE#{id}`       | `STAFF#{staff_id}`                  |
//! | sign-in name         | `STAFFUSER#{user}`    | `#STAFFUSER`                        |
//! | session              | `SESSION#{sha256}`    | `#SESSION` (TTL at expiry)          |
//! | a member's session   | `PRACTICE#{id}`       | `STAFFSESSION#{staff_id}#{sha256}`  |
//! | failed sign-ins      | `SIGNINFAIL#{sha256}` | `#SIGNINFAIL` (TTL at window end)   |
//!
//! A sign-in name is taken with a conditional put in the same transaction
//! as the account, so two accounts never share one. A session is read by
//! its token's digest alone (the cookie names nothing else); the second
//! item lists a member's sessions so a new password or a deleted account
//! ends them all. Expired items are deleted by DynamoDB's TTL; reads check
//! `expires_at` themselves, as that deletion lags.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, Utc};

use super::items::{from_item, key, s, to_item};
use super::keys::practice_pk;
use super::tx::cancelled_by_condition;
use super::{conditional, err, DynamoStore, Item};
use messaging_core::domain::clock::to_api_time;
use messaging_core::domain::error::StoreError;
use messaging_core::domain::staff::{LoginFailures, Session, StaffMember, FAILURE_WINDOW};
use messaging_core::ports::{StaffCreated, StaffStore};

const STAFF_PREFIX: &str = "STAFF#";
const USER_SK: &str = "#STAFFUSER";
const SESSION_SK: &str = "#SESSION";
const FAILURES_SK: &str = "#SIGNINFAIL";

fn staff_sk(staff_id: &str) -> String {
    format!("{STAFF_PREFIX}{staff_id}")
}
fn user_pk(user: &str) -> String {
    format!("STAFFUSER#{user}")
}
fn session_pk(token_hash: &str) -> String {
    format!("SESSION#{token_hash}")
}
fn member_sessions_prefix(staff_id: &str) -> String {
    format!("STAFFSESSION#{staff_id}#")
}
fn member_session_sk(staff_id: &str, token_hash: &str) -> String {
    format!("{}{token_hash}", member_sessions_prefix(staff_id))
}
fn failures_pk(key: &str) -> String {
    format!("SIGNINFAIL#{key}")
}
fn ttl(at: &DateTime<Utc>) -> AttributeValue {
    AttributeValue::N(at.timestamp().to_string())
}

/// The pointer from a sign-in name to its account.
#[derive(serde::Deserialize)]
struct UserPointer {
    practice_id: String,
    staff_id: String,
}

/// A member's session as listed under the practice.
#[derive(serde::Deserialize)]
struct MemberSession {
    token_hash: String,
}

impl DynamoStore {
    /// Deletes a session and its listing under the member.
    async fn end_session(
        &self,
        practice_id: &str,
        staff_id: &str,
        token_hash: &str,
    ) -> Result<(), StoreError> {
        let writes = vec![
            self.delete(session_pk(token_hash), SESSION_SK.into())?,
            self.delete(
                practice_pk(practice_id),
                member_session_sk(staff_id, token_hash),
            )?,
        ];
        self.transact(writes, "end session").await
    }

    /// The digests of every session listed under a member.
    async fn member_sessions(
        &self,
        practice_id: &str,
        staff_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        let sessions: Vec<MemberSession> = self
            .query_prefix_all(
                practice_id,
                &member_sessions_prefix(staff_id),
                |m: &MemberSession| member_session_sk(staff_id, &m.token_hash),
                "list sessions",
            )
            .await?;
        Ok(sessions.into_iter().map(|m| m.token_hash).collect())
    }
}

#[async_trait]
impl StaffStore for DynamoStore {
    async fn create_staff(&self, staff: &StaffMember) -> Result<StaffCreated, StoreError> {
        let pointer: Item = HashMap::from([
            ("pk".to_string(), s(user_pk(&staff.user))),
            ("sk".to_string(), s(USER_SK)),
            ("practice_id".to_string(), s(staff.practice_id.clone())),
            ("staff_id".to_string(), s(staff.staff_id.clone())),
        ]);
        let account = to_item(
            staff,
            practice_pk(&staff.practice_id),
            staff_sk(&staff.staff_id),
        )?;
        let writes = vec![
            self.put(pointer, Some("attribute_not_exists(pk)"))?,
            self.put(account, Some("attribute_not_exists(pk)"))?,
        ];
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .await
        {
            Ok(_) => Ok(StaffCreated::Created),
            Err(e) if cancelled_by_condition(&e, 0) || cancelled_by_condition(&e, 1) => {
                Ok(StaffCreated::UserTaken)
            }
            Err(e) => Err(StoreError::new("create staff", DisplayErrorContext(e))),
        }
    }

    async fn update_staff(&self, staff: &StaffMember) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                practice_pk(&staff.practice_id),
                staff_sk(&staff.staff_id),
            )))
            .update_expression("SET #name = :name, #role = :role, password_hash = :hash")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#name", "name")
            .expression_attribute_names("#role", "role")
            .expression_attribute_values(":name", s(staff.name.clone()))
            .expression_attribute_values(":role", s(staff.role.as_str()))
            .expression_attribute_values(":hash", s(staff.password_hash.clone()))
            .send()
            .await;
        conditional(result, "update staff")
    }

    async fn staff_for_user(&self, user: &str) -> Result<Option<StaffMember>, StoreError> {
        let pointer: Option<UserPointer> = self
            .get(user_pk(user), USER_SK.into(), "look up user")
            .await?;
        match pointer {
            Some(p) => self.get_staff(&p.practice_id, &p.staff_id).await,
            None => Ok(None),
        }
    }

    async fn get_staff(
        &self,
        practice_id: &str,
        staff_id: &str,
    ) -> Result<Option<StaffMember>, StoreError> {
        self.get(practice_pk(practice_id), staff_sk(staff_id), "read staff")
            .await
    }

    async fn list_staff(&self, practice_id: &str) -> Result<Vec<StaffMember>, StoreError> {
        self.query_prefix_all(
            practice_id,
            STAFF_PREFIX,
            |m: &StaffMember| staff_sk(&m.staff_id),
            "list staff",
        )
        .await
    }

    async fn delete_staff(&self, practice_id: &str, staff_id: &str) -> Result<bool, StoreError> {
        let Some(staff) = self.get_staff(practice_id, staff_id).await? else {
            return Ok(false);
        };
        let writes = vec![
            self.delete(practice_pk(practice_id), staff_sk(staff_id))?,
            self.delete(user_pk(&staff.user), USER_SK.into())?,
        ];
        self.transact(writes, "delete staff").await?;
        self.delete_sessions_of(practice_id, staff_id).await?;
        Ok(true)
    }

    async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        let mut item = to_item(session, session_pk(&session.token_hash), SESSION_SK.into())?;
        item.insert("ttl".into(), ttl(&session.expires_at));
        let listing: Item = HashMap::from([
            ("pk".to_string(), s(practice_pk(&session.practice_id))),
            (
                "sk".to_string(),
                s(member_session_sk(&session.staff_id, &session.token_hash)),
            ),
            ("token_hash".to_string(), s(session.token_hash.clone())),
            ("ttl".to_string(), ttl(&session.expires_at)),
        ]);
        let writes = vec![self.put(item, None)?, self.put(listing, None)?];
        self.transact(writes, "create session").await?;
        Ok(())
    }

    async fn get_session(&self, token_hash: &str) -> Result<Option<Session>, StoreError> {
        self.get(session_pk(token_hash), SESSION_SK.into(), "read session")
            .await
    }

    async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        match self.get_session(token_hash).await? {
            Some(session) => {
                self.end_session(&session.practice_id, &session.staff_id, token_hash)
                    .await
            }
            None => Ok(()),
        }
    }

    async fn delete_sessions_of(
        &self,
        practice_id: &str,
        staff_id: &str,
    ) -> Result<(), StoreError> {
        for token_hash in self.member_sessions(practice_id, staff_id).await? {
            self.end_session(practice_id, staff_id, &token_hash).await?;
        }
        Ok(())
    }

    async fn login_failures(&self, user: &str) -> Result<Option<LoginFailures>, StoreError> {
        self.get(
            failures_pk(user),
            FAILURES_SK.into(),
            "read sign-in failures",
        )
        .await
    }

    async fn record_login_failure(
        &self,
        user: &str,
        now: DateTime<Utc>,
    ) -> Result<LoginFailures, StoreError> {
        let cutoff = s(to_api_time(&(now - FAILURE_WINDOW)));
        let refused_by_condition = |e: &aws_sdk_dynamodb::error::SdkError<_, _>| {
            e.as_service_error().is_some_and(
                aws_sdk_dynamodb::operation::update_item::UpdateItemError::is_conditional_check_failed_exception,
            )
        };
        // Each attempt is counted once and atomically, so of a burst of
        // concurrent attempts each sees its own count: none gets a guess
        // the policy would not give it.
        for _ in 0..3 {
            // One more in a window still open (times are stored as the API
            // writes them, so they compare as text)...
            let counted = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(failures_pk(user), FAILURES_SK.into())))
                .update_expression("ADD failures :one")
                .condition_expression("window_started_at > :cutoff")
                .expression_attribute_values(":one", AttributeValue::N("1".into()))
                .expression_attribute_values(":cutoff", cutoff.clone())
                .return_values(ReturnValue::AllNew)
                .send()
                .await;
            match counted {
                Ok(out) => return from_item(out.attributes.unwrap_or_default()),
                Err(e) if refused_by_condition(&e) => {}
                Err(e) => {
                    return Err(StoreError::new(
                        "count sign-in failure",
                        DisplayErrorContext(e),
                    ))
                }
            }
            // ...else the first of a new window, unless another attempt has
            // just begun one (then count in that one).
            let fresh = LoginFailures {
                failures: 1,
                window_started_at: now,
            };
            let started = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(HashMap::from([
                    ("pk".to_string(), s(failures_pk(user))),
                    ("sk".to_string(), s(FAILURES_SK)),
                    ("failures".to_string(), AttributeValue::N("1".into())),
                    ("window_started_at".to_string(), s(to_api_time(&now))),
                    ("ttl".to_string(), ttl(&(now + FAILURE_WINDOW))),
                ])))
                .condition_expression("attribute_not_exists(pk) OR window_started_at <= :cutoff")
                .expression_attribute_values(":cutoff", cutoff.clone())
                .send()
                .await;
            match started {
                Ok(_) => return Ok(fresh),
                Err(e)
                    if e.as_service_error().is_some_and(
                        aws_sdk_dynamodb::operation::put_item::PutItemError::is_conditional_check_failed_exception,
                    ) => {}
                Err(e) => {
                    return Err(StoreError::new("count sign-in failure", DisplayErrorContext(e)))
                }
            }
        }
        Err(StoreError::new(
            "count sign-in failure",
            "the count kept changing; try again",
        ))
    }

    async fn clear_login_failures(&self, user: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(failures_pk(user), FAILURES_SK.into())))
            .send()
            .await
            .map_err(err("clear sign-in failures"))?;
        Ok(())
    }
}
