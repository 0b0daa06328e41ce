//! Simulator state (recorded messages, armed faults, callback target) and the
//! rule that decides each message's fate.
//!
//! Fate is a pure function of the destination number so that tests in the
//! product can pick an outcome just by choosing a phone number, with no setup
//! call: a number ending in a known Bandwidth error code fails with that code,
//! every other number is delivered.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Mutex};

use crate::config::{CallbackTarget, Config};

/// Bandwidth messaging error codes the simulator can produce, with a short
/// description in the spirit of Bandwidth's own. The descriptions are
/// approximate: the product must key on `errorCode`, never on the text.
pub const BANDWIDTH_ERROR_CODES: &[(u16, &str)] = &[
    (4001, "service-not-allowed"),
    (4301, "malformed-invalid-encoding"),
    (4350, "malformed-for-destination"),
    (4360, "message-expired"),
    (4405, "rejected-unallocated-from-number"),
    (4406, "rejected-unallocated-to-number"),
    (4432, "rejected-invalid-destination"),
    (4434, "rejected-destination-blocked"),
    (4452, "rejected-destination-not-messaging-enabled"),
    (4470, "rejected-spam-detected"),
    (4481, "rejected-from-number-blocked"),
    (4492, "rejected-message-expired"),
    (4493, "rejected-unregistered-campaign"),
    (4700, "invalid-service-type"),
    (4701, "destination-service-unavailable"),
    (4702, "destination-subscriber-unavailable"),
    (4703, "destination-subscriber-not-found"),
    (4720, "destination-invalid-landline"),
    (4750, "destination-rejected-message"),
    (4751, "destination-rejected-message-size"),
    (4770, "destination-spam-detected"),
    (4775, "destination-rejected-opted-out"),
    (4780, "carrier-rejected-spam"),
    (4781, "carrier-rejected-volumetric"),
    (4782, "carrier-rejected-content"),
    (4795, "destination-unknown-rejection"),
    (5100, "temporary-app-error"),
    (5101, "permanent-app-error"),
    (5106, "impossible-to-route"),
    (5111, "destination-unreachable"),
    (5201, "carrier-temporary-failure"),
    (5211, "carrier-permanent-failure"),
    (5220, "carrier-throttled"),
    (5230, "carrier-routing-error"),
    (5231, "carrier-unknown-destination"),
    (5232, "carrier-rejected"),
    (5600, "carrier-service-unavailable"),
    (5610, "carrier-service-failure"),
    (5620, "carrier-application-error"),
    (5630, "carrier-message-not-acknowledged"),
    (5640, "carrier-delivery-failed"),
    (5650, "carrier-send-failed"),
    (9902, "delivery-receipt-expired"),
];

/// What happens to a message sent to one destination number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// A `message-delivered` callback follows.
    Delivered,
    /// A `message-failed` callback with this Bandwidth error code follows.
    Failed {
        /// Bandwidth error code (e.g. 4720).
        code: u16,
        /// Short description for the callback's `description`.
        description: &'static str,
    },
}

/// Decides the fate of a message by the last four digits of `number`
/// (non-digits such as `+` are ignored).
pub fn fate_for(number: &str) -> Fate {
    let digits: Vec<u32> = number.chars().filter_map(|c| c.to_digit(10)).collect();
    let Some(last_four) = digits.len().checked_sub(4).map(|start| &digits[start..]) else {
        return Fate::Delivered;
    };
    let code = last_four.iter().fold(0u32, |acc, d| acc * 10 + d);
    BANDWIDTH_ERROR_CODES
        .iter()
        .find(|(known, _)| u32::from(*known) == code)
        .map_or(Fate::Delivered, |&(code, description)| Fate::Failed {
            code,
            description,
        })
}

/// Bandwidth's segment count, simplified: one segment up to 160 characters,
/// then 153 characters per segment (the UDH eats the rest). Ignores UCS-2.
pub fn segment_count(text: &str) -> u32 {
    let chars = text.chars().count();
    let segments = if chars <= 160 {
        1
    } else {
        1 + (chars - 1) / 153
    };
    u32::try_from(segments).unwrap_or(u32::MAX)
}

/// Current time in Bandwidth's format: RFC 3339, millisecond precision, `Z`.
pub fn now_rfc3339() -> String {
    format_time(Utc::now())
}

/// Formats a timestamp the way Bandwidth does.
pub fn format_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A Bandwidth-looking message id: 16 hex digits plus `sim`, so ids from the
/// simulator are recognisable in logs and never collide with real ones.
pub fn new_message_id() -> String {
    // Low 64 bits of a v4 UUID: random enough for a test run.
    let random = uuid::Uuid::new_v4().as_u128() as u64;
    format!("{random:016x}sim")
}

/// Bandwidth's message object, as returned by "create message" and embedded
/// in every callback event.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BwMessage {
    /// Message id.
    pub id: String,
    /// Number that owns the message (the sender for outbound, the practice
    /// number for inbound).
    pub owner: String,
    /// Bandwidth application id.
    pub application_id: String,
    /// When the carrier accepted it.
    pub time: String,
    /// Number of SMS segments.
    pub segment_count: u32,
    /// `out` or `in`.
    pub direction: String,
    /// All recipients.
    pub to: Vec<String>,
    /// Sender.
    pub from: String,
    /// Body.
    pub text: String,
    /// Caller's tag, echoed back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Media URLs, echoed back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media: Option<Vec<String>>,
    /// Priority, echoed back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
}

/// Result of one callback as seen by the test inspection API.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CallbackRecord {
    /// Event type (`message-delivered`, `message-failed`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Destination number the event is about.
    pub to: String,
    /// Final HTTP status the webhook answered, `None` if it never answered
    /// (or no callback URL was configured).
    pub status: Option<u16>,
    /// Number of HTTP attempts made.
    pub attempts: u32,
    /// When the last attempt finished.
    pub at: String,
}

/// A successfully submitted message as the carrier received it, plus what
/// happened to its callbacks. This is what `GET /_sim/messages` returns.
#[derive(Debug, Clone, Serialize)]
pub struct StoredMessage {
    /// Message id given in the 202.
    pub id: String,
    /// Sender.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
    /// Body.
    pub text: String,
    /// Caller's tag (null if none).
    pub tag: Option<String>,
    /// Application id from the request.
    #[serde(rename = "applicationId")]
    pub application_id: String,
    /// Media URLs, if sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media: Option<Vec<String>>,
    /// Priority, if sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    /// Expiration, if sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration: Option<String>,
    /// When the simulator accepted it.
    pub received_at: String,
    /// One entry per finished callback (for AWS: per event published).
    pub callbacks: Vec<CallbackRecord>,
    /// `"aws"` for a text sent through the AWS End User Messaging API
    /// (absent for Bandwidth's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
}

/// An MMS file kept behind one of the simulator's media URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMedia {
    /// `Content-Type` it is served with.
    pub content_type: String,
    /// The file.
    pub bytes: Bytes,
}

/// One request to the media API, as `GET /_sim/media-requests` lists it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MediaRequestRecord {
    /// Media id from the path (`{messageId}/{index}/{fileName}`).
    pub media_id: String,
    /// Status the simulator answered.
    pub status: u16,
    /// When it answered.
    pub at: String,
}

/// Failure a test can arm for a destination number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FaultMode {
    /// Answer 500.
    #[serde(rename = "http_500")]
    Http500,
    /// Keep the request open without answering.
    #[serde(rename = "timeout")]
    Timeout,
    /// Answer 400.
    #[serde(rename = "http_400")]
    Http400,
    /// Answer 429.
    #[serde(rename = "http_429")]
    Http429,
    /// Accept the message (recorded, callbacks sent), then keep the request
    /// open without answering: the sender times out not knowing.
    #[serde(rename = "accept_then_timeout")]
    AcceptThenTimeout,
    /// Drop the connection without answering and without accepting.
    #[serde(rename = "cut_before_accept")]
    CutBeforeAccept,
    /// Accept the message, then drop the connection without answering.
    #[serde(rename = "cut_after_accept")]
    CutAfterAccept,
    /// Accept and answer 202, but cut the connection inside the body.
    #[serde(rename = "cut_body_after_2xx")]
    CutBodyAfter2xx,
    /// Accept normally; post each status callback twice.
    #[serde(rename = "duplicate_callbacks")]
    DuplicateCallbacks,
    /// Accept, but post the status callback before answering the send (the
    /// delivery report overtakes the send's own answer).
    #[serde(rename = "early_callbacks")]
    EarlyCallbacks,
}

impl FaultMode {
    /// Whether the carrier records (accepts) the message under this fault.
    pub fn accepts(self) -> bool {
        matches!(
            self,
            Self::AcceptThenTimeout
                | Self::CutAfterAccept
                | Self::CutBodyAfter2xx
                | Self::DuplicateCallbacks
                | Self::EarlyCallbacks
        )
    }
}

#[derive(Debug, Clone, Copy)]
struct ArmedFault {
    mode: FaultMode,
    remaining: u32,
}

/// Error building the shared state.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The HTTP client for callbacks could not be built (TLS backend etc.).
    #[error("cannot build the callback HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
}

/// Shared, cheaply clonable simulator state handed to every handler.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    account_id: String,
    api_user: String,
    api_password: String,
    application_id: String,
    delivery_delay: Duration,
    fault_hang: Duration,
    http: reqwest::Client,
    callback: Mutex<CallbackTarget>,
    messages: Mutex<Vec<StoredMessage>>,
    faults: Mutex<HashMap<String, ArmedFault>>,
    /// Send requests received per destination, whatever was answered.
    attempts: Mutex<HashMap<String, u32>>,
    public_url: Option<String>,
    media: Mutex<HashMap<String, StoredMedia>>,
    media_failures: Mutex<u32>,
    media_requests: Mutex<Vec<MediaRequestRecord>>,
    aws: Mutex<AwsTarget>,
    shutdown_tx: watch::Sender<bool>,
}

/// Where the simulated AWS End User Messaging publishes its events and
/// inbound texts, and which numbers its account has.
#[derive(Debug, Clone, Default)]
pub struct AwsTarget {
    /// The stack's SMS event topic.
    pub topic_arn: Option<String>,
    /// The SNS endpoint (the local cloud's emulator).
    pub sns_url: Option<String>,
    /// Origination numbers of the simulated account: sends from others are
    /// refused, inbound texts to these go through SNS.
    pub numbers: std::collections::HashSet<String>,
}

/// Per-attempt timeout for callbacks, so a dead webhook cannot pin a task.
const CALLBACK_HTTP_TIMEOUT: Duration = Duration::from_secs(10);

impl AppState {
    /// Builds the state from a config.
    pub fn new(config: Config) -> Result<Self, StateError> {
        let http = crate::http_client_builder()
            .timeout(CALLBACK_HTTP_TIMEOUT)
            .build()?;
        let (shutdown_tx, _) = watch::channel(false);
        Ok(Self {
            inner: Arc::new(Inner {
                account_id: config.account_id,
                api_user: config.api_user,
                api_password: config.api_password,
                application_id: config.application_id,
                delivery_delay: config.delivery_delay,
                fault_hang: config.fault_hang,
                http,
                callback: Mutex::new(config.callback),
                messages: Mutex::new(Vec::new()),
                faults: Mutex::new(HashMap::new()),
                attempts: Mutex::new(HashMap::new()),
                public_url: config.public_url,
                media: Mutex::new(HashMap::new()),
                media_failures: Mutex::new(0),
                media_requests: Mutex::new(Vec::new()),
                aws: Mutex::new(AwsTarget::default()),
                shutdown_tx,
            }),
        })
    }

    /// The account id the send API accepts.
    pub fn account_id(&self) -> &str {
        &self.inner.account_id
    }

    /// Whether the given Basic credentials are the configured API ones.
    pub fn credentials_match(&self, user: &str, password: &str) -> bool {
        user == self.inner.api_user && password == self.inner.api_password
    }

    /// Application id for inbound events.
    pub fn application_id(&self) -> &str {
        &self.inner.application_id
    }

    /// Delay before a delivery callback.
    pub fn delivery_delay(&self) -> Duration {
        self.inner.delivery_delay
    }

    /// How long a `timeout` fault hangs.
    pub fn fault_hang(&self) -> Duration {
        self.inner.fault_hang
    }

    /// HTTP client used for callbacks.
    pub fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// Snapshot of the current callback target. Taken at delivery time so a
    /// runtime reconfiguration applies to callbacks still pending.
    pub async fn callback_target(&self) -> CallbackTarget {
        self.inner.callback.lock().await.clone()
    }

    /// Applies a partial callback reconfiguration and returns the result.
    pub async fn update_callback(
        &self,
        url: Option<String>,
        user: Option<String>,
        password: Option<String>,
    ) -> CallbackTarget {
        let mut target = self.inner.callback.lock().await;
        if let Some(url) = url {
            target.url = CallbackTarget::normalize_url(&url);
        }
        if let Some(user) = user {
            target.user = user;
        }
        if let Some(password) = password {
            target.password = password;
        }
        target.clone()
    }

    /// Arms a fault for the next `times` sends to `to` (replacing any
    /// previous one for that number; `times == 0` disarms).
    pub async fn arm_fault(&self, to: String, mode: FaultMode, times: u32) {
        let mut faults = self.inner.faults.lock().await;
        if times == 0 {
            faults.remove(&to);
        } else {
            faults.insert(
                to,
                ArmedFault {
                    mode,
                    remaining: times,
                },
            );
        }
    }

    /// Counts one send request to each of `recipients`.
    pub async fn count_attempt(&self, recipients: &[String]) {
        let mut attempts = self.inner.attempts.lock().await;
        for to in recipients {
            *attempts.entry(to.clone()).or_default() += 1;
        }
    }

    /// Send requests received for `to`, accepted or not.
    pub async fn attempts(&self, to: &str) -> u32 {
        self.inner
            .attempts
            .lock()
            .await
            .get(to)
            .copied()
            .unwrap_or(0)
    }

    /// Disarms every fault.
    pub async fn clear_faults(&self) {
        self.inner.faults.lock().await.clear();
    }

    /// Consumes one shot of the first armed fault among `recipients`.
    pub async fn take_fault(&self, recipients: &[String]) -> Option<FaultMode> {
        let mut faults = self.inner.faults.lock().await;
        let number = recipients
            .iter()
            .find(|n| faults.contains_key(n.as_str()))?;
        let fault = faults.get_mut(number.as_str())?;
        let mode = fault.mode;
        fault.remaining = fault.remaining.saturating_sub(1);
        if fault.remaining == 0 {
            faults.remove(number.as_str());
        }
        Some(mode)
    }

    /// Records an accepted message.
    pub async fn record(&self, message: StoredMessage) {
        self.inner.messages.lock().await.push(message);
    }

    /// Appends a callback outcome to the message it belongs to.
    pub async fn record_callback(&self, message_id: &str, record: CallbackRecord) {
        let mut messages = self.inner.messages.lock().await;
        if let Some(message) = messages.iter_mut().find(|m| m.id == message_id) {
            message.callbacks.push(record);
        }
    }

    /// Recorded messages, oldest first, optionally only those to `to`.
    pub async fn messages(&self, to: Option<&str>) -> Vec<StoredMessage> {
        let messages = self.inner.messages.lock().await;
        messages
            .iter()
            .filter(|m| to.is_none_or(|to| m.to.iter().any(|n| n == to)))
            .cloned()
            .collect()
    }

    /// Forgets every recorded message.
    pub async fn clear_messages(&self) {
        self.inner.messages.lock().await.clear();
    }

    /// Configured base URL for media URLs, if any.
    pub fn public_url(&self) -> Option<&str> {
        self.inner.public_url.as_deref()
    }

    /// Keeps a media file under `media_id` (replacing any previous one).
    pub async fn store_media(&self, media_id: String, media: StoredMedia) {
        self.inner.media.lock().await.insert(media_id, media);
    }

    /// The media file stored under `media_id`.
    pub async fn media(&self, media_id: &str) -> Option<StoredMedia> {
        self.inner.media.lock().await.get(media_id).cloned()
    }

    /// Makes the next `times` downloads of stored media fail (replacing any
    /// previous count; 0 disarms).
    pub async fn set_media_failures(&self, times: u32) {
        *self.inner.media_failures.lock().await = times;
    }

    /// Media download failures still armed.
    pub async fn media_failures(&self) -> u32 {
        *self.inner.media_failures.lock().await
    }

    /// Consumes one armed media failure; `true` if this download must fail.
    pub async fn take_media_failure(&self) -> bool {
        let mut remaining = self.inner.media_failures.lock().await;
        if *remaining == 0 {
            return false;
        }
        *remaining -= 1;
        true
    }

    /// Records one media API request.
    pub async fn record_media_request(&self, record: MediaRequestRecord) {
        self.inner.media_requests.lock().await.push(record);
    }

    /// Media API requests, oldest first, optionally only those for media of
    /// one message.
    pub async fn media_requests(&self, message_id: Option<&str>) -> Vec<MediaRequestRecord> {
        let prefix = message_id.map(|id| format!("{id}/"));
        self.inner
            .media_requests
            .lock()
            .await
            .iter()
            .filter(|r| {
                prefix
                    .as_deref()
                    .is_none_or(|prefix| r.media_id.starts_with(prefix))
            })
            .cloned()
            .collect()
    }

    /// Forgets the recorded media API requests.
    pub async fn clear_media_requests(&self) {
        self.inner.media_requests.lock().await.clear();
    }

    /// The simulated AWS account's event target and numbers.
    pub async fn aws_target(&self) -> AwsTarget {
        self.inner.aws.lock().await.clone()
    }

    /// Sets where AWS events go (each `Some` replaces the current value).
    pub async fn set_aws_target(&self, topic_arn: Option<String>, sns_url: Option<String>) {
        let mut aws = self.inner.aws.lock().await;
        if let Some(topic) = topic_arn {
            aws.topic_arn = crate::config::normalize_base_url(&topic);
        }
        if let Some(url) = sns_url {
            aws.sns_url = crate::config::normalize_base_url(&url);
        }
    }

    /// Adds origination numbers to the simulated AWS account.
    pub async fn add_aws_numbers(&self, numbers: Vec<String>) -> usize {
        let mut aws = self.inner.aws.lock().await;
        aws.numbers.extend(numbers);
        aws.numbers.len()
    }

    /// Whether `number` is an origination number of the AWS account.
    pub async fn is_aws_number(&self, number: &str) -> bool {
        self.inner.aws.lock().await.numbers.contains(number)
    }

    /// Tells long-running handlers (hanging faults) to give up so graceful
    /// shutdown is not held up for their full hang time.
    pub fn begin_shutdown(&self) {
        self.inner.shutdown_tx.send_replace(true);
    }

    /// Resolves once [`AppState::begin_shutdown`] has been called.
    pub async fn shutdown_requested(&self) {
        let mut rx = self.inner.shutdown_tx.subscribe();
        // An error means the sender is gone, which also means shutting down.
        if rx.wait_for(|stop| *stop).await.is_err() {
            tracing::debug!("shutdown channel closed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_four_digits_matching_an_error_code_fail() {
        assert_eq!(
            fate_for("+14155554720"),
            Fate::Failed {
                code: 4720,
                description: "destination-invalid-landline"
            }
        );
        assert!(matches!(
            fate_for("+14155559902"),
            Fate::Failed { code: 9902, .. }
        ));
        assert!(matches!(
            fate_for("+1 (415) 555-4775"),
            Fate::Failed { code: 4775, .. }
        ));
    }

    #[test]
    fn other_numbers_are_delivered() {
        assert_eq!(fate_for("+14155550123"), Fate::Delivered);
        assert_eq!(fate_for("+14155554721"), Fate::Delivered);
        // Only the last four digits count, not an embedded code.
        assert_eq!(fate_for("+14720555012"), Fate::Delivered);
        assert_eq!(fate_for("720"), Fate::Delivered);
        assert_eq!(fate_for(""), Fate::Delivered);
    }

    #[test]
    fn every_listed_code_is_reachable() {
        for (code, _) in BANDWIDTH_ERROR_CODES {
            let number = format!("+1415555{code:04}");
            assert!(
                matches!(fate_for(&number), Fate::Failed { code: c, .. } if c == *code),
                "{number}"
            );
        }
    }

    #[test]
    fn segments_follow_160_then_153() {
        assert_eq!(segment_count(""), 1);
        assert_eq!(segment_count(&"a".repeat(160)), 1);
        assert_eq!(segment_count(&"a".repeat(161)), 2);
        assert_eq!(segment_count(&"a".repeat(306)), 2);
        assert_eq!(segment_count(&"a".repeat(307)), 3);
    }

    #[test]
    fn ids_look_like_bandwidth_ids_from_the_sim() {
        let id = new_message_id();
        assert_eq!(id.len(), 19);
        assert!(id.ends_with("sim"));
        assert!(id[..16].chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(id, new_message_id());
    }

    #[tokio::test]
    async fn faults_are_consumed_per_number() {
        let state = AppState::new(Config::default()).expect("state");
        state.arm_fault("+1".into(), FaultMode::Http500, 2).await;
        let to = vec!["+2".to_owned(), "+1".to_owned()];
        assert_eq!(state.take_fault(&to).await, Some(FaultMode::Http500));
        assert_eq!(state.take_fault(&to).await, Some(FaultMode::Http500));
        assert_eq!(state.take_fault(&to).await, None);
    }

    #[tokio::test]
    async fn media_failures_are_consumed_one_per_download() {
        let state = AppState::new(Config::default()).expect("state");
        assert!(!state.take_media_failure().await);
        state.set_media_failures(2).await;
        assert!(state.take_media_failure().await);
        assert_eq!(state.media_failures().await, 1);
        assert!(state.take_media_failure().await);
        assert!(!state.take_media_failure().await);
    }
}
