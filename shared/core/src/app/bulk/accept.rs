//! `POST /v1/bulk-messages`: validate, pick the recipients, hand the pump
//! job over, store the bulk.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use super::{recipient_id, skip, Audience, BulkMessages, BulkRequest, PUMP_HEAD_START_SECONDS};
use crate::app::idempotency::IdempotentPost;
use crate::app::sending::{
    new_message_id, parse_optional_send_at, queue_or_schedule, resolve_channel, resolve_text,
    schedule_name, Answer,
};
use crate::domain::bulk::{BulkProgress, PumpJob, PumpToken};
use crate::domain::error::{AppError, StoreError};
use crate::domain::merge::{self, MergeData};
use crate::domain::message::{
    bulk_status_of, Counts, Message, MessageStatus, MessageType, Recipient, RecipientStatus,
};
use crate::domain::patient::{validate_id, AgeFilter, Patient};
use crate::domain::practice::Practice;
use crate::domain::text;
use crate::ports::{
    BulkStore, CreateOutcome, MessageStore, OptOutStore, PracticeStore, RateStore, SendQueue,
    SendScheduler, TemplateStore,
};

/// 422 `too_many_recipients` above the practice's `max_bulk_recipients`.
fn check_size(practice: &Practice, n: usize, field: &str, hint: &str) -> Result<(), AppError> {
    let max = practice.max_bulk_recipients;
    if n > max as usize {
        return Err(AppError::invalid(
            "too_many_recipients",
            format!(
                "{n} recipients is more than this practice's limit of {max} per bulk message; {hint}"
            ),
        )
        .at(field));
    }
    Ok(())
}

impl<S, Q, C> BulkMessages<S, Q, C>
where
    S: PracticeStore + OptOutStore + TemplateStore + MessageStore + BulkStore + RateStore,
    Q: SendQueue,
    C: SendScheduler,
{
    /// `POST /v1/bulk-messages`: validates, picks the recipients, stores the
    /// bulk (recipients in batches, then message and idempotency record in
    /// one transaction), hands its pump job to the queue or a schedule, and
    /// answers 202 with the bulk, its cap and its estimated completion.
    pub async fn accept(
        &self,
        practice: &Practice,
        request: BulkRequest,
        request_value: &serde_json::Value,
        idempotency_key: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Answer, AppError> {
        let pid = &practice.practice_id;
        let post = IdempotentPost::new(
            pid,
            "POST /v1/bulk-messages",
            request_value,
            idempotency_key,
        );
        if let Some(answer) = post.open(&self.store, now).await?.answer() {
            return Ok(answer);
        }
        if request.acknowledge_bulk_limit != Some(true) {
            return Err(AppError::invalid(
                "bulk_acknowledgment_required",
                format!(
                    "set acknowledge_bulk_limit to true to confirm that bulk messages go out at most {} per hour and only to patients who expect them",
                    practice.hourly_cap
                ),
            )
            .at("acknowledge_bulk_limit"));
        }
        let send_at = parse_optional_send_at(request.send_at.as_deref(), now)?;
        let (channel, from) = resolve_channel(practice, request.channel.as_deref())?;
        let (raw_text, template_id) = resolve_text(
            &self.store,
            pid,
            request.text,
            request.template_id,
            &crate::domain::merge::MERGE_FIELDS,
        )
        .await?;
        let patients = self
            .select(practice, request.patient_ids, request.audience, now)
            .await?;

        // Sendable recipients first (`1..=sendable`), skipped ones after.
        let phones: Vec<String> = patients.iter().map(|p| p.phone.to_string()).collect();
        let opted_out = self.store.opted_out_among(pid, &phones).await?;
        let practice_phone = practice.channels.sms_main.to_string();
        let mut sendable: Vec<(Patient, String)> = Vec::new();
        let mut skipped: Vec<(Patient, String, String)> = Vec::new();
        for patient in patients {
            let data = MergeData {
                first_name: Some(&patient.first_name),
                last_name: patient.last_name.as_deref(),
                practice_name: Some(&practice.name),
                practice_phone: Some(&practice_phone),
                ..MergeData::default()
            };
            let rendered = merge::render(&raw_text, &data);
            let reason = if opted_out.contains(patient.phone.as_str()) {
                Some(skip::OPTED_OUT.to_string())
            } else if let Some(mark) = patient
                .sms_undeliverable
                .as_ref()
                .filter(|m| m.phone == patient.phone)
            {
                Some(format!(
                    "invalid_phone: the carrier reported {} ({}); {}",
                    mark.code, mark.title, mark.resolution
                ))
            } else {
                match &rendered {
                    Err(e) => Some(format!("missing_merge_data: {}", e.message)),
                    Ok(r) => text::validate_text(r)
                        .err()
                        .map(|e| format!("invalid_text: {e}")),
                }
            };
            let rendered = rendered.unwrap_or_else(|_| raw_text.clone());
            match reason {
                None => sendable.push((patient, rendered)),
                Some(reason) => skipped.push((patient, rendered, reason)),
            }
        }
        let stats = sendable
            .iter()
            .map(|(_, t)| text::analyze(t))
            .max_by_key(|s| s.segments)
            .unwrap_or_else(|| text::analyze(&raw_text));

        let due = send_at.map(|t| {
            crate::domain::quiet_hours::next_allowed(
                t,
                practice.timezone.tz(),
                practice.quiet_hours.as_ref(),
            )
        });
        let waiting = if send_at.is_some() {
            RecipientStatus::Scheduled
        } else {
            RecipientStatus::Queued
        };
        let message_id = new_message_id();
        let sendable_count = u32::try_from(sendable.len()).unwrap_or(u32::MAX);
        let recipient = |n: usize, patient: Patient, text: String, status, skip_reason| Recipient {
            practice_id: pid.clone(),
            message_id: message_id.clone(),
            recipient_id: recipient_id(u32::try_from(n + 1).unwrap_or(u32::MAX)),
            patient_id: Some(patient.patient_id),
            to: patient.phone,
            from: from.clone(),
            text,
            status,
            not_before: if status == RecipientStatus::Scheduled {
                due
            } else {
                None
            },
            carrier_message_id: None,
            sent_at: None,
            delivered_at: None,
            error: None,
            skip_reason,
            attempts: 0,
            claimed_at: None,
            message_type: MessageType::BulkMessage,
            origin: None,
            version: 0,
            appointment_ids: Vec::new(),
        };
        let mut recipients = Vec::with_capacity(sendable.len() + skipped.len());
        for (patient, text) in sendable {
            recipients.push(recipient(recipients.len(), patient, text, waiting, None));
        }
        for (patient, text, reason) in skipped {
            recipients.push(recipient(
                recipients.len(),
                patient,
                text,
                RecipientStatus::Skipped,
                Some(reason),
            ));
        }
        let counts = Counts::of(recipients.iter().map(|r| &r.status));
        let pump = (sendable_count > 0).then(|| PumpToken::new(now));
        let mut message = Message {
            id: message_id.clone(),
            practice_id: pid.clone(),
            message_type: MessageType::BulkMessage,
            channel,
            from,
            text: raw_text,
            template_id,
            encoding: stats.encoding,
            segments: stats.segments,
            send_at,
            created_at: now,
            target_count: u32::try_from(recipients.len()).unwrap_or(u32::MAX),
            status: MessageStatus::default(),
            counts,
            sent_at: None,
            bulk: Some(BulkProgress {
                sendable: sendable_count,
                released: 0,
                pump: pump.as_ref().map(|t| t.as_str().to_string()),
                due: due.unwrap_or(now),
                canceled_at: None,
            }),
            appointment_ids: Vec::new(),
        };
        message.status = bulk_status_of(&message).into();

        let view = self.view(practice, &message, now).await?;
        let body = serde_json::to_string(&view)
            .map_err(|e| AppError::unavailable(format!("could not encode the answer: {e}")))?;
        let record = post.record(202, &body, now);
        // The pump job goes out first, a moment ahead of the bulk it drives:
        // once the bulk is stored nothing can leave it without a pump. If
        // storing fails, the pump finds no bulk and stops (see `run_pump`).
        let pump_job = pump.map(|token| PumpJob {
            practice_id: pid.clone(),
            message_id: message_id.clone(),
            token,
        });
        if let Some(job) = &pump_job {
            if let Err(e) = self.start_pump(&message_id, job, due, now).await {
                tracing::error!(error = %e, %message_id, "pump not queued; nothing stored");
                return Err(AppError::unavailable(
                    "The bulk message could not be queued or scheduled; nothing was stored or sent. Retry shortly.",
                ));
            }
        }
        let stored = self
            .store
            .create_bulk(&message, &recipients, record.as_ref())
            .await;
        if !matches!(stored, Ok(CreateOutcome::Created)) && due.is_some() && pump_job.is_some() {
            // Harmless if it stays (the pump would find no bulk), but tidy.
            if let Err(e) = self.scheduler.unschedule(&schedule_name(&message_id)).await {
                tracing::warn!(error = %e, %message_id, "schedule of an unstored bulk not deleted");
            }
        }
        match stored? {
            CreateOutcome::Created => {}
            CreateOutcome::IdempotencyKeyTaken => return post.winner(&self.store, now).await,
        }
        tracing::info!(%message_id, practice_id = %pid, target = message.target_count, sendable = sendable_count, "bulk message accepted");
        Ok(Answer { status: 202, body })
    }

    /// The patients a request names, checked: ids (deduplicated, all known)
    /// or an age audience (non-empty), at most `max_bulk_recipients`.
    async fn select(
        &self,
        practice: &Practice,
        patient_ids: Option<Vec<String>>,
        audience: Option<Audience>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Patient>, AppError> {
        match (patient_ids, audience) {
            (Some(ids), None) => self.select_ids(practice, ids).await,
            (None, Some(audience)) => self.select_audience(practice, &audience, now).await,
            (Some(_), Some(_)) => Err(AppError::invalid(
                "invalid_field",
                "give either patient_ids or audience, not both",
            )
            .at("audience")),
            (None, None) => Err(AppError::invalid(
                "invalid_field",
                "patient_ids or audience is required",
            )
            .at("patient_ids")),
        }
    }

    /// The listed patients, once each, in the order listed; 404
    /// `unknown_patients` naming every id not synced.
    async fn select_ids(
        &self,
        practice: &Practice,
        ids: Vec<String>,
    ) -> Result<Vec<Patient>, AppError> {
        if ids.is_empty() {
            return Err(AppError::invalid(
                "invalid_field",
                "patient_ids must list at least one patient",
            )
            .at("patient_ids"));
        }
        let mut seen = HashSet::new();
        let mut unique = Vec::new();
        for (i, id) in ids.into_iter().enumerate() {
            validate_id(&id, &format!("patient_ids[{i}]"))?;
            if seen.insert(id.clone()) {
                unique.push(id);
            }
        }
        check_size(
            practice,
            unique.len(),
            "patient_ids",
            "split the list or use a narrower age filter",
        )?;
        let found = self
            .store
            .get_patients(&practice.practice_id, &unique)
            .await?;
        let mut by_id: std::collections::HashMap<String, Patient> = found
            .into_iter()
            .map(|p| (p.patient_id.clone(), p))
            .collect();
        let unknown: Vec<&str> = unique
            .iter()
            .map(String::as_str)
            .filter(|id| !by_id.contains_key(*id))
            .collect();
        if !unknown.is_empty() {
            return Err(AppError::not_found(
                "unknown_patients",
                format!(
                    "no patients with these ids: {}; sync them with PUT /v1/patients/{{id}} first",
                    unknown.join(", ")
                ),
            )
            .at("patient_ids"));
        }
        Ok(unique.iter().filter_map(|id| by_id.remove(id)).collect())
    }

    /// Every patient whose age on the practice's date is in range; 422
    /// `empty_audience` when nobody is.
    async fn select_audience(
        &self,
        practice: &Practice,
        audience: &Audience,
        now: DateTime<Utc>,
    ) -> Result<Vec<Patient>, AppError> {
        let filter = AgeFilter::from_years(audience.min_age, audience.max_age, "audience.")?;
        if !filter.is_set() {
            return Err(AppError::invalid(
                "invalid_field",
                "audience needs min_age, max_age or both",
            )
            .at("audience"));
        }
        let today = crate::app::patients::practice_today(practice, now);
        let mut matched = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let (batch, next) = self
                .store
                .list_patients(&practice.practice_id, 1000, after.as_deref())
                .await?;
            matched.extend(batch.into_iter().filter(|p| filter.matches(p, today)));
            // Refused as soon as it is too big: never more than the limit
            // (and one page) held in memory.
            check_size(
                practice,
                matched.len(),
                "audience",
                "try a narrower age filter",
            )?;
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        if matched.is_empty() {
            return Err(AppError::invalid(
                "empty_audience",
                "no patients with a birth date on file match this age range",
            )
            .at("audience"));
        }
        check_size(
            practice,
            matched.len(),
            "audience",
            "try a narrower age filter",
        )?;
        Ok(matched)
    }

    /// Puts the first pump job on its way: now, with a queue delay, or with
    /// a schedule that fires a minute early (the pump holds until due).
    async fn start_pump(
        &self,
        message_id: &str,
        job: &PumpJob,
        due: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let job = job.to_send_job();
        let Some(due) = due else {
            return self
                .queue
                .enqueue_delayed(&job, PUMP_HEAD_START_SECONDS)
                .await;
        };
        queue_or_schedule(
            &self.queue,
            &self.scheduler,
            self.queue_delay_max,
            message_id,
            &job,
            due,
            now,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::super::test_support::*;
    use super::super::PUMP_HEAD_START_SECONDS;
    use crate::domain::patient::UndeliverableNumber;
    use crate::ports::{OptOutChange, OptOutStore, PracticeStore};
    use crate::testing::{sample_practice, MemoryQueue};

    #[tokio::test]
    async fn bad_requests_are_refused_by_field_and_store_nothing() {
        let practice = sample_practice("demo");
        let store = setup(&practice, 5).await;
        let queue = MemoryQueue::default();
        let app = bulk_app(&store, &queue);
        let now: DateTime<Utc> = T0.parse().unwrap();
        let cases = [
            (
                serde_json::json!({"patient_ids": ["p-000"], "text": "Hi"}),
                "bulk_acknowledgment_required",
                "acknowledge_bulk_limit",
            ),
            (
                serde_json::json!({"patient_ids": ["p-000"], "text": "Hi", "acknowledge_bulk_limit": false}),
                "bulk_acknowledgment_required",
                "acknowledge_bulk_limit",
            ),
            (
                serde_json::json!({"patient_ids": [], "text": "Hi", "acknowledge_bulk_limit": true}),
                "invalid_field",
                "patient_ids",
            ),
            (
                serde_json::json!({"text": "Hi", "acknowledge_bulk_limit": true}),
                "invalid_field",
                "patient_ids",
            ),
            (
                serde_json::json!({"patient_ids": ["p-000"], "audience": {"min_age": 1}, "text": "Hi", "acknowledge_bulk_limit": true}),
                "invalid_field",
                "audience",
            ),
            (
                serde_json::json!({"patient_ids": ["p-000", "nobody", "p-001", "ghost"], "text": "Hi", "acknowledge_bulk_limit": true}),
                "unknown_patients",
                "patient_ids",
            ),
            (
                serde_json::json!({"audience": {"min_age": 30, "max_age": 20}, "text": "Hi", "acknowledge_bulk_limit": true}),
                "invalid_field",
                "audience.min_age",
            ),
            (
                serde_json::json!({"audience": {"min_age": -1}, "text": "Hi", "acknowledge_bulk_limit": true}),
                "invalid_field",
                "audience.min_age",
            ),
            (
                serde_json::json!({"audience": {"max_age": -3}, "text": "Hi", "acknowledge_bulk_limit": true}),
                "invalid_field",
                "audience.max_age",
            ),
            (
                serde_json::json!({"audience": {"min_age": 90}, "text": "Hi", "acknowledge_bulk_limit": true}),
                "empty_audience",
                "audience",
            ),
            (
                serde_json::json!({"audience": {}, "text": "Hi", "acknowledge_bulk_limit": true}),
                "invalid_field",
                "audience",
            ),
            (
                serde_json::json!({"patient_ids": ["p-000"], "acknowledge_bulk_limit": true}),
                "invalid_text",
                "text",
            ),
        ];
        for (body, code, field) in cases {
            let e = accept(&app, &practice, body.clone(), now)
                .await
                .unwrap_err();
            assert_eq!((e.code, e.field.as_deref()), (code, Some(field)), "{body}");
            if code == "unknown_patients" {
                assert!(e.message.contains("nobody, ghost"), "{}", e.message);
            }
        }
        let mut small = practice.clone();
        small.max_bulk_recipients = 3;
        let e = accept(&app, &small, serde_json::json!({"audience": {"min_age": 0}, "text": "Hi", "acknowledge_bulk_limit": true}), now).await.unwrap_err();
        assert_eq!(e.code, "too_many_recipients");
        assert!(e.message.contains("narrower age filter"), "{}", e.message);
        assert_eq!(stored_messages(&store, &practice).await, 0);
        assert!(queue.delayed.lock().await.is_empty());
    }

    #[tokio::test]
    async fn duplicates_go_once_and_unsendable_recipients_are_kept_as_skipped() {
        let practice = sample_practice("demo");
        let store = setup(&practice, 4).await;
        store
            .record_opt_out(&OptOutChange {
                practice_id: "demo".into(),
                phone: phone(1).to_string(),
                opted_out: true,
                keyword: "STOP".into(),
                source: "sms".into(),
                at: T0.parse().unwrap(),
            })
            .await
            .unwrap();
        let mut bad = store.get_patient("demo", "p-002").await.unwrap().unwrap();
        bad.sms_undeliverable = Some(UndeliverableNumber {
            phone: bad.phone.clone(),
            code: "4720".into(),
            title: "Carrier rejected as invalid destination address".into(),
            resolution: "Update the number.".into(),
            since: T0.parse().unwrap(),
        });
        store.put_patient("demo", &bad).await.unwrap();
        let queue = MemoryQueue::default();
        let app = bulk_app(&store, &queue);
        let now: DateTime<Utc> = T0.parse().unwrap();
        // p-003 has no last name: the text needs one.
        let body = serde_json::json!({
            "patient_ids": ["p-000", "p-001", "p-000", "p-002", "p-003"],
            "text": "Hi {first_name} {last_name}",
            "acknowledge_bulk_limit": true,
        });
        let view = accept(&app, &practice, body, now).await.unwrap();
        assert_eq!(view["type"], "bulk_message");
        assert_eq!(view["target_count"], 4);
        assert_eq!(view["counts"]["queued"], 1);
        assert_eq!(view["counts"]["skipped"], 3);
        assert_eq!(view["hourly_cap"], 250);
        assert_eq!(view["estimated_completion_at"], "2026-12-01T15:00:00.000Z");
        assert!(view.get("recipients").is_none());
        let id = view["id"].as_str().unwrap();
        let (page, next) = app
            .recipients(&practice, id, Some("skipped"), 50, None)
            .await
            .unwrap();
        assert!(next.is_none());
        let page = serde_json::to_value(&page).unwrap();
        let reasons: Vec<&str> = page
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["skip_reason"].as_str().unwrap())
            .collect();
        assert!(reasons[0].starts_with("opted_out"), "{reasons:?}");
        assert!(
            reasons[1].starts_with("invalid_phone") && reasons[1].contains("4720"),
            "{reasons:?}"
        );
        assert!(reasons[2].starts_with("missing_merge_data"), "{reasons:?}");
        // The sendable one is first and carries the rendered text.
        let (queued, _) = app
            .recipients(&practice, id, Some("queued"), 50, None)
            .await
            .unwrap();
        let queued = serde_json::to_value(&queued).unwrap();
        assert_eq!(queued[0]["recipient_id"], "00001");
        assert_eq!(queued[0]["patient_id"], "p-000");
        // One pump job went on the queue, not the recipients themselves.
        let jobs = queue.delayed.lock().await.clone();
        assert_eq!(jobs.len(), 1);
        assert!(is_pump(&jobs[0].0));
        assert_eq!(jobs[0].1, PUMP_HEAD_START_SECONDS);
    }
}
