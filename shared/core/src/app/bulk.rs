//! Bulk messages: accept a list (ids or an age audience), store it cheaply,
//! and let one pump job per bulk release it in waves under the practice's
//! hourly cap; read progress, page recipients, cancel.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::app::dispatch::Dispatched;
use crate::app::idempotency;
use crate::app::rate_cap::BULK_KEY;
use crate::app::sending::{
    new_message_id, parse_optional_send_at, queue_or_schedule, resolve_channel, resolve_text,
    schedule_name, Answer,
};
use crate::domain::bulk::{estimate_completion, plan_wave, BulkProgress, Pace, PumpStep};
use crate::domain::clock::{queue_delay, to_api_time, Clock};
use crate::domain::error::{AppError, StoreError};
use crate::domain::limits::DYNAMO_TRANSACTION_ITEMS;
use crate::domain::merge::{self, MergeData};
use crate::domain::message::{
    bulk_status_of, Counts, Message, MessageType, MessageView, Recipient, RecipientStatus,
    RecipientView, SendJob,
};
use crate::domain::patient::{validate_id, AgeFilter, Patient};
use crate::domain::practice::Practice;
use crate::domain::text;
use crate::paging::{decode_cursor, encode_cursor};
use crate::ports::{
    BulkStore, CreateOutcome, MessageStore, OptOutStore, PracticeStore, RateStore, SendQueue,
    SendScheduler, TemplateStore, Transition,
};

/// Body of `POST /v1/bulk-messages`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    /// The patients to text, or...
    #[serde(default)]
    pub patient_ids: Option<Vec<String>>,
    /// ...everyone whose age is in a range.
    #[serde(default)]
    pub audience: Option<Audience>,
    /// The text with optional merge fields, or...
    #[serde(default)]
    pub text: Option<String>,
    /// ...a saved Quick Message.
    #[serde(default)]
    pub template_id: Option<String>,
    /// `sms_main` (default) or `sms_alt`.
    #[serde(default)]
    pub channel: Option<String>,
    /// Start later, at this time.
    #[serde(default)]
    pub send_at: Option<String>,
    /// The office confirms it knows bulk sends are capped per hour and meant
    /// for patients who expect the message. Required, `true`.
    #[serde(default)]
    pub acknowledge_bulk_limit: Option<bool>,
}

/// An age range; whole years, inclusive, on the practice's date.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Audience {
    /// Youngest age included.
    #[serde(default)]
    pub min_age: Option<i64>,
    /// Oldest age included.
    #[serde(default)]
    pub max_age: Option<i64>,
}

/// A bulk message as the API shows it: the message resource without its
/// recipients, with the cap and when it should be done.
#[derive(Debug, Clone, Serialize)]
pub struct BulkView {
    #[serde(flatten)]
    message: MessageView,
    hourly_cap: u32,
    cap_window_seconds: u32,
    estimated_completion_at: Option<String>,
}

/// One page of a bulk's recipients.
#[derive(Debug, Clone, Serialize)]
pub struct RecipientItem {
    recipient_id: String,
    #[serde(flatten)]
    recipient: RecipientView,
}

/// Everything the bulk use cases need.
pub struct BulkMessages<S, Q, C> {
    /// Practices, patients, opt-outs, templates, messages, rate buckets.
    pub store: S,
    /// The send queue.
    pub queue: Q,
    /// One-time schedules for bulks that start later.
    pub scheduler: C,
    /// Starts due within this much go on the queue with a delay instead of
    /// a schedule.
    pub queue_delay_max: Duration,
    /// Carrier submissions per second through one sending number.
    pub per_second: u32,
}

/// Why a recipient is kept but not sent to.
pub mod skip {
    /// The number replied STOP.
    pub const OPTED_OUT: &str = "opted_out: the number replied STOP";
}

/// Position of the `n`-th recipient (1-based) as its id.
pub fn recipient_id(n: u32) -> String {
    format!("{n:05}")
}

/// A new pump token: pump jobs carry it as their recipient id. It holds
/// its creation time (`*{epoch ms}-{random}`), so a pump that finds no bulk
/// knows whether the bulk may still be being stored.
fn new_pump_token(now: DateTime<Utc>) -> String {
    format!(
        "*{}-{}",
        now.timestamp_millis(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// When a pump token was made, if it says.
fn pump_token_made(token: &str) -> Option<DateTime<Utc>> {
    let ms = token.strip_prefix('*')?.split('-').next()?.parse().ok()?;
    DateTime::<Utc>::from_timestamp_millis(ms)
}

/// The first pump job is queued this long before the bulk is stored
/// (normally it is stored within milliseconds).
pub const PUMP_HEAD_START_SECONDS: u32 = 1;

/// How long a pump keeps looking for a bulk that is not stored yet before it
/// concludes that storing failed and stops.
pub const PUMP_GRACE: Duration = Duration::seconds(60);

/// Whether a queued job is a bulk's pump rather than a recipient's send.
pub fn is_pump(job: &SendJob) -> bool {
    job.recipient_id.starts_with('*')
}

/// The pace the practice's bulks are held to.
pub fn pace(practice: &Practice, per_second: u32) -> Pace {
    Pace {
        cap: practice.hourly_cap,
        window: Duration::seconds(i64::from(practice.cap_window_seconds)),
        per_second: per_second.max(1),
    }
}

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

fn not_found(id: &str) -> AppError {
    AppError::not_found("message_not_found", format!("no bulk message {id}"))
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
        let hash = idempotency::request_hash("POST /v1/bulk-messages", request_value);
        if let Some(key) = idempotency_key {
            idempotency::validate_key(key)?;
            if let Some(rec) = self.store.get_idempotency(pid, key).await? {
                let (status, body) = idempotency::replay(&rec, &hash)?;
                return Ok(Answer { status, body });
            }
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
        let (raw_text, template_id) =
            resolve_text(&self.store, pid, request.text, request.template_id).await?;
        let patients = self
            .select(practice, request.patient_ids, request.audience, now)
            .await?;

        // Sendable recipients first (`1..=sendable`), skipped ones after.
        let opted_out = self.store.opted_out_numbers(pid).await?;
        let practice_phone = practice.channels.sms_main.to_string();
        let mut sendable: Vec<(Patient, String)> = Vec::new();
        let mut skipped: Vec<(Patient, String, String)> = Vec::new();
        for patient in patients {
            let data = MergeData {
                first_name: Some(&patient.first_name),
                last_name: patient.last_name.as_deref(),
                practice_name: Some(&practice.name),
                practice_phone: Some(&practice_phone),
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
                &practice.timezone,
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
            version: 0,
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
        let pump = (sendable_count > 0).then(|| new_pump_token(now));
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
            status: String::new(),
            counts,
            sent_at: None,
            bulk: Some(BulkProgress {
                sendable: sendable_count,
                released: 0,
                pump: pump.clone(),
                due: due.unwrap_or(now),
                canceled_at: None,
            }),
        };
        message.status = bulk_status_of(&message).to_string();

        let view = self.view(practice, &message, now).await?;
        let body = serde_json::to_string(&view)
            .map_err(|e| AppError::unavailable(format!("could not encode the answer: {e}")))?;
        let record = idempotency_key.map(|k| idempotency::record(pid, k, &hash, 202, &body, now));
        // The pump job goes out first, a moment ahead of the bulk it drives:
        // once the bulk is stored nothing can leave it without a pump. If
        // storing fails, the pump finds no bulk and stops (see `run_pump`).
        let pump_job = pump.map(|token| SendJob {
            practice_id: pid.clone(),
            message_id: message_id.clone(),
            recipient_id: token,
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
            CreateOutcome::IdempotencyKeyTaken => {
                let key = idempotency_key.unwrap_or_default();
                let rec = self.store.get_idempotency(pid, key).await?.ok_or_else(|| {
                    AppError::conflict("idempotency_key_reused", "retry the request")
                })?;
                let (status, body) = idempotency::replay(&rec, &hash)?;
                return Ok(Answer { status, body });
            }
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
        job: &SendJob,
        due: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let Some(due) = due else {
            return self
                .queue
                .enqueue_delayed(job, PUMP_HEAD_START_SECONDS)
                .await;
        };
        queue_or_schedule(
            &self.queue,
            &self.scheduler,
            self.queue_delay_max,
            message_id,
            job,
            due,
            now,
        )
        .await
    }

    async fn load(&self, practice: &Practice, message_id: &str) -> Result<Message, AppError> {
        if message_id.is_empty() || message_id.len() > 64 {
            return Err(not_found(message_id));
        }
        self.store
            .get_message_only(&practice.practice_id, message_id)
            .await?
            .filter(|m| m.message_type == MessageType::BulkMessage)
            .ok_or_else(|| not_found(message_id))
    }

    /// The resource with a fresh estimate: what this bulk still has to send
    /// behind what the practice's other sending bulks still have, under the
    /// cap as it stands, the number's pace and quiet hours.
    async fn view(
        &self,
        practice: &Practice,
        message: &Message,
        now: DateTime<Utc>,
    ) -> Result<BulkView, AppError> {
        let c = &message.counts;
        let own = c.scheduled + c.queued + c.sending;
        let canceled = message
            .bulk
            .as_ref()
            .is_some_and(|b| b.canceled_at.is_some());
        let estimate = if own == 0 || canceled {
            None
        } else {
            let start = message.bulk.as_ref().map_or(now, |b| b.due.max(now));
            let mut ahead = 0u32;
            if start <= now {
                for other in self.store.sending_bulks(&practice.practice_id).await? {
                    if other.id < message.id {
                        ahead += other.counts.queued + other.counts.sending;
                    }
                }
            }
            let (bucket, _) = self
                .store
                .read_bucket(&practice.practice_id, BULK_KEY)
                .await?;
            estimate_completion(
                &bucket,
                start,
                ahead,
                own,
                &pace(practice, self.per_second),
                &practice.timezone,
                practice.quiet_hours.as_ref(),
            )
        };
        Ok(BulkView {
            message: MessageView::summary(message),
            hourly_cap: practice.hourly_cap,
            cap_window_seconds: practice.cap_window_seconds,
            estimated_completion_at: estimate.as_ref().map(to_api_time),
        })
    }

    /// `GET /v1/bulk-messages/{id}`.
    pub async fn get(
        &self,
        practice: &Practice,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<BulkView, AppError> {
        let message = self.load(practice, message_id).await?;
        self.view(practice, &message, now).await
    }

    /// `GET /v1/bulk-messages/{id}/recipients?status=`: a page in list order.
    pub async fn recipients(
        &self,
        practice: &Practice,
        message_id: &str,
        status: Option<&str>,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<(Vec<RecipientItem>, Option<String>), AppError> {
        let status = status
            .filter(|s| !s.is_empty())
            .map(|s| {
                RecipientStatus::parse(s).ok_or_else(|| {
                    AppError::invalid(
                        "invalid_field",
                        format!("status {s:?} is not a recipient status"),
                    )
                    .at("status")
                })
            })
            .transpose()?;
        self.load(practice, message_id).await?;
        let after = cursor.map(decode_cursor).transpose()?;
        let (page, next) = self
            .store
            .recipients_page(
                &practice.practice_id,
                message_id,
                status,
                limit,
                after.as_deref(),
            )
            .await?;
        let items = page
            .iter()
            .map(|r| RecipientItem {
                recipient_id: r.recipient_id.clone(),
                recipient: RecipientView::from(r),
            })
            .collect();
        Ok((items, next.as_deref().map(encode_cursor)))
    }

    /// `DELETE /v1/bulk-messages/{id}`: stops the pump and cancels every
    /// recipient not yet `sending`, in transactions of up to 99 recipients
    /// conditioned on each being unchanged; a recipient the dispatcher
    /// claims meanwhile is read again and left to finish. Idempotent.
    pub async fn cancel(
        &self,
        practice: &Practice,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<BulkView, AppError> {
        let pid = &practice.practice_id;
        let message = self.load(practice, message_id).await?;
        self.store.stop_bulk(pid, message_id, now).await?;
        if message.send_at.is_some() {
            if let Err(e) = self.scheduler.unschedule(&schedule_name(message_id)).await {
                // Harmless: a firing pump finds the bulk canceled.
                tracing::warn!(message_id, error = %e, "schedule not deleted");
            }
        }
        let cancel = Transition::Cancel { at: now };
        for round in 0..5 {
            let mut waiting = Vec::new();
            for status in [RecipientStatus::Queued, RecipientStatus::Scheduled] {
                let mut after: Option<String> = None;
                loop {
                    let (page, next) = self
                        .store
                        .recipients_page(pid, message_id, Some(status), 200, after.as_deref())
                        .await?;
                    waiting.extend(page);
                    match next {
                        Some(n) => after = Some(n),
                        None => break,
                    }
                }
            }
            if waiting.is_empty() {
                break;
            }
            let mut conflicts = 0;
            // One item of each transaction is the message's counts.
            for chunk in waiting.chunks(DYNAMO_TRANSACTION_ITEMS - 1) {
                if !self.store.transition_many(chunk, &cancel).await? {
                    conflicts += 1;
                }
            }
            if conflicts == 0 {
                break;
            }
            tracing::info!(
                message_id,
                round,
                conflicts,
                "recipients moved during cancel; reading again"
            );
        }
        let message = self.load(practice, message_id).await?;
        let status = bulk_status_of(&message);
        if status != message.status {
            self.store
                .set_bulk_status(pid, message_id, &message.status, status, None)
                .await?;
        }
        tracing::info!(message_id, "bulk canceled");
        let message = self.load(practice, message_id).await?;
        self.view(practice, &message, now).await
    }
}

/// One run of a bulk's pump (a queue job whose recipient id is its token):
/// releases the next wave or waits, then hands the pump on to a new job.
///
/// Never lost, never twice: the wave and the next pump job are enqueued
/// before the progress is recorded with a write conditioned on this job's
/// token. If the write fails (a duplicate of this job got there first, or
/// the bulk was canceled) the enqueued copies are harmless duplicates — the
/// dispatcher's claim lets one send through, and the orphaned pump job finds
/// a token that is not its own and stops. If this run dies before the write,
/// the queue delivers it again and it releases the same wave again.
pub async fn run_pump<S, Q, K>(
    store: &S,
    queue: &Q,
    clock: &K,
    job: &SendJob,
    per_second: u32,
) -> Result<Dispatched, StoreError>
where
    S: BulkStore + PracticeStore + RateStore,
    Q: SendQueue,
    K: Clock,
{
    let (pid, mid) = (&job.practice_id, &job.message_id);
    let Some(message) = store.get_message_only(pid, mid).await? else {
        let now = clock.now();
        if pump_token_made(&job.recipient_id).is_some_and(|made| now - made < PUMP_GRACE) {
            // Queued just ahead of its bulk, which is still being stored.
            queue.enqueue_delayed(job, 2).await?;
            tracing::info!(%job, "pump ahead of its bulk; looking again");
        } else {
            tracing::warn!(%job, "pump for a bulk that was never stored; dropped");
        }
        return Ok(Dispatched::Done);
    };
    let Some(progress) = message.bulk.clone() else {
        return Ok(Dispatched::Done);
    };
    if progress.pump.as_deref() != Some(job.recipient_id.as_str()) || progress.canceled_at.is_some()
    {
        tracing::info!(%job, "stale pump job (canceled, finished or duplicated); dropped");
        return Ok(Dispatched::Done);
    }
    let Some(practice) = store.get_practice(pid).await? else {
        return Ok(Dispatched::Done);
    };
    let (bucket, _) = store.read_bucket(pid, BULK_KEY).await?;
    let now = clock.now();
    let step = plan_wave(
        &bucket,
        now,
        progress.due,
        progress.sendable.saturating_sub(progress.released),
        &pace(&practice, per_second),
        &practice.timezone,
        practice.quiet_hours.as_ref(),
    );
    let pump_job = |token: &str| SendJob {
        practice_id: pid.clone(),
        message_id: mid.clone(),
        recipient_id: token.to_string(),
    };
    let (released, next) = match step {
        PumpStep::Finished => (progress.released, None),
        PumpStep::Wait { until } => {
            let token = new_pump_token(now);
            queue
                .enqueue_delayed(&pump_job(&token), queue_delay(until - now).max(1))
                .await?;
            tracing::info!(%job, until = %to_api_time(&until), "bulk waits");
            (progress.released, Some(token))
        }
        PumpStep::Release { delays, next_run } => {
            let count = u32::try_from(delays.len()).unwrap_or(u32::MAX);
            let wave: Vec<(SendJob, u32)> = delays
                .iter()
                .zip(progress.released + 1..)
                .map(|(delay, n)| {
                    let job = SendJob {
                        practice_id: pid.clone(),
                        message_id: mid.clone(),
                        recipient_id: recipient_id(n),
                    };
                    // Rounded up: never before the instant planned for it.
                    (job, queue_delay(*delay))
                })
                .collect();
            queue.enqueue_wave(&wave).await?;
            let released = progress.released + count;
            let next = if released < progress.sendable {
                let token = new_pump_token(now);
                queue
                    .enqueue_delayed(&pump_job(&token), queue_delay(next_run - now).max(1))
                    .await?;
                Some(token)
            } else {
                None
            };
            tracing::info!(%job, count, released, sendable = progress.sendable, "bulk wave released");
            (released, next)
        }
    };
    if !store
        .advance_pump(pid, mid, &job.recipient_id, released, next.as_deref())
        .await?
    {
        tracing::info!(%job, "pump moved on or bulk canceled meanwhile; this run's copies are duplicates");
        return Ok(Dispatched::Done);
    }
    if progress.released == 0 && released > 0 {
        // Sending begins: the tracking list shows it from now on as sending.
        for from in ["scheduled", "sending"] {
            if store
                .set_bulk_status(pid, mid, from, "sending", Some(now))
                .await?
            {
                break;
            }
        }
    }
    Ok(Dispatched::Done)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex as StdMutex};

    use chrono::NaiveDate;

    use super::*;
    use crate::app::dispatch::{Dispatcher, RetryPolicy};
    use crate::domain::patient::UndeliverableNumber;
    use crate::domain::phone::PhoneNumber;
    use crate::ports::OptOutChange;
    use crate::testing::{
        sample_practice, MemoryQueue, MemoryScheduler, MemoryStore, ScriptedCarrier,
    };

    const T0: &str = "2026-12-01T15:00:00Z";

    /// A clock the test moves.
    #[derive(Clone)]
    struct TestClock(Arc<StdMutex<DateTime<Utc>>>);
    impl TestClock {
        fn new() -> Self {
            Self(Arc::new(StdMutex::new(T0.parse().unwrap())))
        }
        fn set(&self, t: DateTime<Utc>) {
            *self.0.lock().unwrap() = t;
        }
    }
    impl Clock for TestClock {
        fn now(&self) -> DateTime<Utc> {
            *self.0.lock().unwrap()
        }
    }

    fn phone(i: u32) -> PhoneNumber {
        PhoneNumber::parse(&format!("+1415555{:04}", 2000 + i)).unwrap()
    }

    async fn setup(practice: &Practice, patients: u32) -> MemoryStore {
        let store = MemoryStore::default();
        store.add_practice(practice.clone(), "key").await;
        for i in 0..patients {
            let p = Patient {
                patient_id: format!("p-{i:03}"),
                first_name: format!("Pat{i}"),
                last_name: (i % 2 == 0).then(|| "Diaz".to_string()),
                phone: phone(i),
                // ages 20, 21, ... on 2026-12-01
                birth_date: Some(NaiveDate::from_ymd_opt(2006 - i as i32, 1, 1).unwrap()),
                sms_opted_out: false,
                sms_undeliverable: None,
            };
            store.put_patient(&practice.practice_id, &p).await.unwrap();
        }
        store
    }

    fn bulk_app(
        store: &MemoryStore,
        queue: &MemoryQueue,
    ) -> BulkMessages<MemoryStore, MemoryQueue, MemoryScheduler> {
        BulkMessages {
            store: store.clone(),
            queue: queue.clone(),
            scheduler: MemoryScheduler::default(),
            queue_delay_max: Duration::seconds(900),
            per_second: 1,
        }
    }

    async fn accept(
        app: &BulkMessages<MemoryStore, MemoryQueue, MemoryScheduler>,
        practice: &Practice,
        body: serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<serde_json::Value, AppError> {
        let request: BulkRequest = serde_json::from_value(body.clone()).unwrap();
        let answer = app.accept(practice, request, &body, None, now).await?;
        assert_eq!(answer.status, 202);
        Ok(serde_json::from_str(&answer.body).unwrap())
    }

    fn ids(n: u32) -> Vec<String> {
        (0..n).map(|i| format!("p-{i:03}")).collect()
    }

    async fn stored_messages(store: &MemoryStore, practice: &Practice) -> usize {
        store
            .sending_bulks(&practice.practice_id)
            .await
            .unwrap()
            .len()
    }

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

    /// Runs queue jobs in visibility order through a real dispatcher until
    /// the queue is empty or `until`, recording how often each job was
    /// received. Returns the receive count per recipient job.
    struct Sim {
        store: MemoryStore,
        queue: MemoryQueue,
        clock: TestClock,
        pending: Vec<(DateTime<Utc>, u64, SendJob)>,
        seq: u64,
        receives: std::collections::HashMap<String, u32>,
        pump_runs: u32,
    }

    impl Sim {
        fn new(store: &MemoryStore, queue: &MemoryQueue, clock: &TestClock) -> Self {
            Self {
                store: store.clone(),
                queue: queue.clone(),
                clock: clock.clone(),
                pending: Vec::new(),
                seq: 0,
                receives: Default::default(),
                pump_runs: 0,
            }
        }

        async fn collect(&mut self) {
            let now = self.clock.now();
            for job in self.queue.jobs.lock().await.drain(..) {
                self.seq += 1;
                self.pending.push((now, self.seq, job));
            }
            for (job, delay) in self.queue.delayed.lock().await.drain(..) {
                self.seq += 1;
                self.pending
                    .push((now + Duration::seconds(i64::from(delay)), self.seq, job));
            }
        }

        async fn run_until(&mut self, until: DateTime<Utc>) {
            let d = Dispatcher {
                store: self.store.clone(),
                queue: self.queue.clone(),
                carrier: ScriptedCarrier::accepting(),
                clock: self.clock.clone(),
                retry: RetryPolicy::default(),
                bulk_per_second: 1,
                inline_wait: Duration::zero(),
            };
            loop {
                self.collect().await;
                self.pending.sort_by_key(|(t, s, _)| (*t, *s));
                if self.pending.is_empty() || self.pending[0].0 > until {
                    return;
                }
                let (t, _, job) = self.pending.remove(0);
                self.clock.set(t.max(self.clock.now()));
                if is_pump(&job) {
                    self.pump_runs += 1;
                } else {
                    *self.receives.entry(job.to_tag()).or_default() += 1;
                }
                match d.dispatch(&job).await.unwrap() {
                    Dispatched::Done => {}
                    Dispatched::RetryAfter(s) => {
                        self.seq += 1;
                        self.pending.push((
                            self.clock.now() + Duration::seconds(i64::from(s)),
                            self.seq,
                            job,
                        ));
                    }
                }
            }
        }
    }

    async fn sent_times(
        store: &MemoryStore,
        practice_id: &str,
        message_id: &str,
    ) -> Vec<DateTime<Utc>> {
        let (all, _) = store
            .recipients_page(practice_id, message_id, None, 10_000, None)
            .await
            .unwrap();
        let mut t: Vec<_> = all.iter().filter_map(|r| r.sent_at).collect();
        t.sort();
        t
    }

    fn max_in_window(times: &[DateTime<Utc>], window: Duration) -> usize {
        times
            .iter()
            .map(|a| {
                times
                    .iter()
                    .filter(|b| **b >= *a && **b < *a + window)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[tokio::test]
    async fn a_bulk_goes_out_in_waves_within_the_cap_and_finishes_on_time() {
        let mut practice = sample_practice("demo");
        practice.hourly_cap = 5;
        practice.cap_window_seconds = 30;
        let store = setup(&practice, 12).await;
        let queue = MemoryQueue::default();
        let clock = TestClock::new();
        let app = bulk_app(&store, &queue);
        let body = serde_json::json!({"patient_ids": ids(12), "text": "Hi {first_name}", "acknowledge_bulk_limit": true});
        let view = accept(&app, &practice, body, clock.now()).await.unwrap();
        let id = view["id"].as_str().unwrap().to_string();
        // 12 at 5 per 30 s: the 11th and 12th go in the third window.
        assert_eq!(view["estimated_completion_at"], "2026-12-01T15:01:01.000Z");

        let mut sim = Sim::new(&store, &queue, &clock);
        sim.run_until(clock.now() + Duration::hours(1)).await;
        let times = sent_times(&store, "demo", &id).await;
        assert_eq!(times.len(), 12, "all sent");
        assert!(max_in_window(&times, Duration::seconds(30)) <= 5);
        // Within ceil(12/5) = 3 windows plus 5 minutes of the start.
        let start: DateTime<Utc> = T0.parse().unwrap();
        assert!(*times.last().unwrap() <= start + Duration::seconds(3 * 30 + 300));
        // Waves: 1/s inside a wave.
        assert!(times
            .windows(2)
            .all(|w| w[1] - w[0] >= Duration::seconds(1)));
        // Each recipient arrives when there is room for it: received once,
        // never deferred; the pump runs about twice per wave.
        let receives: u32 = sim.receives.values().sum();
        assert_eq!(receives, 12);
        assert!(sim.pump_runs <= 6, "{} pump runs", sim.pump_runs);
        let message = store.get_message_only("demo", &id).await.unwrap().unwrap();
        assert_eq!(message.counts.sent, 12);
        assert_eq!(message.bulk.unwrap().pump, None, "pump finished");
        assert!(message.sent_at.is_some());
    }

    #[tokio::test]
    async fn a_direct_message_is_not_held_behind_a_bulk() {
        let mut practice = sample_practice("demo");
        practice.hourly_cap = 2;
        practice.cap_window_seconds = 600;
        let store = setup(&practice, 6).await;
        let queue = MemoryQueue::default();
        let clock = TestClock::new();
        let app = bulk_app(&store, &queue);
        let body = serde_json::json!({"patient_ids": ids(6), "text": "Hi", "acknowledge_bulk_limit": true});
        accept(&app, &practice, body, clock.now()).await.unwrap();
        let mut sim = Sim::new(&store, &queue, &clock);
        sim.run_until(clock.now() + Duration::seconds(30)).await;
        // The cap is used up for ten minutes; a direct message goes now.
        let mut direct = crate::testing::queued_recipient();
        direct.practice_id = "demo".into();
        let job = store.insert_recipient(direct).await;
        queue.jobs.lock().await.push(job.clone());
        sim.run_until(clock.now()).await;
        let r = store.recipient(&job).await.unwrap();
        assert_eq!(r.status, RecipientStatus::Sent);
    }

    #[tokio::test]
    async fn cancel_mid_way_stops_the_rest_and_stop_mid_way_skips_that_number() {
        let mut practice = sample_practice("demo");
        practice.hourly_cap = 4;
        practice.cap_window_seconds = 60;
        let store = setup(&practice, 10).await;
        let queue = MemoryQueue::default();
        let clock = TestClock::new();
        let app = bulk_app(&store, &queue);
        let body = serde_json::json!({"patient_ids": ids(10), "text": "Hi", "acknowledge_bulk_limit": true});
        let view = accept(&app, &practice, body, clock.now()).await.unwrap();
        let id = view["id"].as_str().unwrap().to_string();
        // Patient 2 texts STOP before its turn.
        store
            .record_opt_out(&OptOutChange {
                practice_id: "demo".into(),
                phone: phone(2).to_string(),
                opted_out: true,
                keyword: "STOP".into(),
                source: "sms".into(),
                at: clock.now(),
            })
            .await
            .unwrap();
        let mut sim = Sim::new(&store, &queue, &clock);
        sim.run_until(clock.now() + Duration::seconds(20)).await;
        let first_wave = sent_times(&store, "demo", &id).await.len();
        // Recipients 1, 2, 4 and 5: the STOP (3) did not use a slot.
        assert_eq!(first_wave, 4);
        let view = app.cancel(&practice, &id, clock.now()).await.unwrap();
        let view = serde_json::to_value(&view).unwrap();
        assert_eq!(view["counts"]["canceled"], 5);
        assert_eq!(view["counts"]["skipped"], 1);
        // Four reached the carrier and await their delivery reports.
        assert_eq!(view["status"], "sending");
        assert!(view["estimated_completion_at"].is_null());
        // Idempotent, and nothing more is sent.
        app.cancel(&practice, &id, clock.now()).await.unwrap();
        sim.run_until(clock.now() + Duration::hours(2)).await;
        assert_eq!(sent_times(&store, "demo", &id).await.len(), 4);
        let (skipped, _) = store
            .recipients_page("demo", &id, Some(RecipientStatus::Skipped), 50, None)
            .await
            .unwrap();
        assert_eq!(skipped[0].to, phone(2));
    }

    #[tokio::test]
    async fn a_scheduled_bulk_waits_for_its_time_and_canceling_before_it_cancels_all() {
        let practice = sample_practice("demo");
        let store = setup(&practice, 3).await;
        let queue = MemoryQueue::default();
        let clock = TestClock::new();
        let app = bulk_app(&store, &queue);
        let body = serde_json::json!({"patient_ids": ids(3), "text": "Hi", "acknowledge_bulk_limit": true, "send_at": "2026-12-01T10:10:00-05:00"});
        let view = accept(&app, &practice, body, clock.now()).await.unwrap();
        assert_eq!(view["status"], "scheduled");
        assert_eq!(view["estimated_completion_at"], "2026-12-01T15:10:02.000Z");
        let id = view["id"].as_str().unwrap().to_string();
        let mut sim = Sim::new(&store, &queue, &clock);
        let start: DateTime<Utc> = T0.parse().unwrap();
        sim.run_until(start + Duration::minutes(9)).await;
        assert!(sent_times(&store, "demo", &id).await.is_empty());
        sim.run_until(start + Duration::minutes(14)).await;
        let times = sent_times(&store, "demo", &id).await;
        assert_eq!(times.len(), 3);
        assert!(times[0] >= "2026-12-01T15:10:00Z".parse::<DateTime<Utc>>().unwrap());

        let body = serde_json::json!({"patient_ids": ids(3), "text": "Later", "acknowledge_bulk_limit": true, "send_at": "2026-12-02T10:00:00-05:00"});
        let view = accept(&app, &practice, body, clock.now()).await.unwrap();
        let id = view["id"].as_str().unwrap().to_string();
        let view =
            serde_json::to_value(app.cancel(&practice, &id, clock.now()).await.unwrap()).unwrap();
        assert_eq!(view["status"], "canceled");
        assert_eq!(view["counts"]["canceled"], 3);
    }

    #[tokio::test]
    async fn canceling_a_bulk_with_nothing_left_leaves_it_completed() {
        let practice = sample_practice("demo");
        let store = setup(&practice, 2).await;
        for i in 0..2 {
            store
                .record_opt_out(&OptOutChange {
                    practice_id: "demo".into(),
                    phone: phone(i).to_string(),
                    opted_out: true,
                    keyword: "STOP".into(),
                    source: "sms".into(),
                    at: T0.parse().unwrap(),
                })
                .await
                .unwrap();
        }
        let queue = MemoryQueue::default();
        let app = bulk_app(&store, &queue);
        let now: DateTime<Utc> = T0.parse().unwrap();
        let body = serde_json::json!({"patient_ids": ids(2), "text": "Hi", "acknowledge_bulk_limit": true});
        let view = accept(&app, &practice, body, now).await.unwrap();
        assert_eq!(view["status"], "completed");
        assert!(
            queue.delayed.lock().await.is_empty(),
            "no pump for nothing to send"
        );
        let id = view["id"].as_str().unwrap();
        let view = serde_json::to_value(app.cancel(&practice, id, now).await.unwrap()).unwrap();
        assert_eq!(view["status"], "completed");
        assert_eq!(view["counts"]["skipped"], 2);
    }

    #[tokio::test]
    async fn a_short_wait_for_the_number_is_spent_in_the_function_not_the_queue() {
        let practice = sample_practice("demo");
        let store = setup(&practice, 3).await;
        let queue = MemoryQueue::default();
        let app = bulk_app(&store, &queue);
        let clock = crate::domain::clock::SystemClock;
        let body = serde_json::json!({"patient_ids": ids(3), "text": "Hi", "acknowledge_bulk_limit": true});
        let view = accept(&app, &practice, body, clock.now()).await.unwrap();
        let id = view["id"].as_str().unwrap().to_string();
        let pump = queue.delayed.lock().await.remove(0).0;
        run_pump(&store, &queue, &clock, &pump, 1).await.unwrap();
        let wave: Vec<SendJob> = queue
            .delayed
            .lock()
            .await
            .drain(..)
            .map(|(j, _)| j)
            .collect();
        assert_eq!(wave.len(), 3);
        let dispatcher = |inline_wait| Dispatcher {
            store: store.clone(),
            queue: queue.clone(),
            carrier: ScriptedCarrier::accepting(),
            clock,
            retry: RetryPolicy::default(),
            bulk_per_second: 1,
            inline_wait,
        };
        // Delivered all at once (as if SQS were early): the second waits
        // for the number's next second in the function...
        let patient = dispatcher(Duration::milliseconds(1500));
        assert_eq!(patient.dispatch(&wave[0]).await.unwrap(), Dispatched::Done);
        assert_eq!(patient.dispatch(&wave[1]).await.unwrap(), Dispatched::Done);
        assert!(
            queue.delayed.lock().await.is_empty(),
            "nothing went back to the queue"
        );
        let times = sent_times(&store, "demo", &id).await;
        assert_eq!(times.len(), 2);
        assert!(times[1] - times[0] >= Duration::seconds(1), "{times:?}");
        // ...while without an inline wait it goes back to the queue.
        let hasty = dispatcher(Duration::zero());
        assert_eq!(hasty.dispatch(&wave[2]).await.unwrap(), Dispatched::Done);
        assert_eq!(queue.delayed.lock().await.len(), 1);
        assert_eq!(sent_times(&store, "demo", &id).await.len(), 2);
    }

    #[tokio::test]
    async fn a_refused_pump_job_stores_nothing_and_a_pump_ahead_of_its_bulk_waits() {
        let practice = sample_practice("demo");
        let store = setup(&practice, 2).await;
        let refusing = MemoryQueue {
            refuse: true,
            ..MemoryQueue::default()
        };
        let app = bulk_app(&store, &refusing);
        let now: DateTime<Utc> = T0.parse().unwrap();
        let body = serde_json::json!({"patient_ids": ids(2), "text": "Hi", "acknowledge_bulk_limit": true});
        let e = accept(&app, &practice, body, now).await.unwrap_err();
        assert_eq!(e.kind, crate::domain::error::ErrorKind::Unavailable);
        assert!(
            store.sending_bulks("demo").await.unwrap().is_empty(),
            "nothing stored"
        );

        // A pump that arrives before its bulk is stored looks again; one
        // whose bulk never appeared within the grace period stops.
        let queue = MemoryQueue::default();
        let clock = TestClock::new();
        let early = SendJob {
            practice_id: "demo".into(),
            message_id: "not-yet".into(),
            recipient_id: new_pump_token(clock.now()),
        };
        run_pump(&store, &queue, &clock, &early, 1).await.unwrap();
        assert_eq!(queue.delayed.lock().await.len(), 1);
        clock.set(clock.now() + PUMP_GRACE);
        run_pump(&store, &queue, &clock, &early, 1).await.unwrap();
        assert_eq!(queue.delayed.lock().await.len(), 1, "given up");
    }

    #[tokio::test]
    async fn the_estimate_counts_what_the_practices_other_bulks_still_have_to_send() {
        let mut practice = sample_practice("demo");
        practice.hourly_cap = 2;
        let store = setup(&practice, 3).await;
        let queue = MemoryQueue::default();
        let app = bulk_app(&store, &queue);
        let now: DateTime<Utc> = T0.parse().unwrap();
        let first = serde_json::json!({"patient_ids": ["p-000", "p-001"], "text": "Hi", "acknowledge_bulk_limit": true});
        let view = accept(&app, &practice, first, now).await.unwrap();
        assert_eq!(view["estimated_completion_at"], "2026-12-01T15:00:01.000Z");
        // Five seconds later the first bulk's two (not sent yet) are ahead
        // and fill the cap from then: the next goes an hour after them.
        let second = serde_json::json!({"patient_ids": ["p-002"], "text": "Hi", "acknowledge_bulk_limit": true});
        let view = accept(&app, &practice, second, now + Duration::seconds(5))
            .await
            .unwrap();
        assert_eq!(view["estimated_completion_at"], "2026-12-01T16:00:05.000Z");
    }

    #[tokio::test]
    async fn a_stale_pump_job_does_nothing() {
        let practice = sample_practice("demo");
        let store = setup(&practice, 3).await;
        let queue = MemoryQueue::default();
        let clock = TestClock::new();
        let app = bulk_app(&store, &queue);
        let body = serde_json::json!({"patient_ids": ids(3), "text": "Hi", "acknowledge_bulk_limit": true});
        accept(&app, &practice, body, clock.now()).await.unwrap();
        let pump = queue.delayed.lock().await.remove(0).0;
        // The pump runs once, then a duplicate of the same job arrives.
        run_pump(&store, &queue, &clock, &pump, 1).await.unwrap();
        let released = queue.delayed.lock().await.len();
        assert_eq!(released, 3, "three recipients; the pump is finished");
        run_pump(&store, &queue, &clock, &pump, 1).await.unwrap();
        assert_eq!(queue.delayed.lock().await.len(), released);
    }
}
