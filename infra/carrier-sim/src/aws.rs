//! AWS End User Messaging SMS (`pinpoint-sms-voice-v2`), simulated: the
//! JSON API the product's AWS adapter calls (`POST /` with
//! `X-Amz-Target: PinpointSMSVoiceV2.SendTextMessage`, `SendMediaMessage`,
//! `DeleteOptedOutNumber`), and the reports AWS would publish, put on the
//! stack's SNS topic in the local cloud's emulator — the path AWS uses.
//!
//! Fates follow the same last four digits as Bandwidth's: a number ending
//! in a Bandwidth error code gets that code's AWS counterpart, a failure
//! event (`TEXT_INVALID` for 4720…) or, where AWS refuses at once, an API
//! error (4775: `ConflictException` `DESTINATION_PHONE_NUMBER_OPTED_OUT`;
//! 4405: `ResourceNotFoundException`). Every other number gets
//! `TEXT_SUCCESSFUL` (not final) then `TEXT_DELIVERED`. Faults armed with
//! `/_sim/faults` apply as to Bandwidth sends (`http_429` answers AWS's
//! `ThrottlingException`, `http_500` an `InternalServerException`).
//!
//! Requests must be SigV4-signed for the `sms-voice` service (the signature
//! itself is not checked, as the emulator does not check its own), and be
//! sent from a number of the simulated account (`POST /_sim/aws/numbers`).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::{cut_connection, hang, injected_response};
use crate::sim::{fate_for, now_rfc3339, AppState, CallbackRecord, Fate, FaultMode, StoredMessage};

/// What AWS answers, or publishes, for a destination's fate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsFate {
    /// `TEXT_SUCCESSFUL`, then `TEXT_DELIVERED`.
    Delivered,
    /// A final failure event of this type.
    FailedEvent(&'static str),
    /// The send is refused at once: HTTP status, exception, reason.
    Refused(u16, &'static str, Option<&'static str>),
}

/// The AWS counterpart of each Bandwidth code (docs/carriers.md has the
/// table); a code without one is `TEXT_UNKNOWN`.
pub fn aws_fate(to: &str) -> AwsFate {
    match fate_for(to) {
        Fate::Delivered => AwsFate::Delivered,
        Fate::Failed { code, .. } => match code {
            4775 => AwsFate::Refused(
                400,
                "ConflictException",
                Some("DESTINATION_PHONE_NUMBER_OPTED_OUT"),
            ),
            4403 | 4405 => AwsFate::Refused(404, "ResourceNotFoundException", None),
            4432 => AwsFate::Refused(400, "ValidationException", Some("INVALID_PARAMETER")),
            4001 => AwsFate::Refused(403, "AccessDeniedException", Some("ACCOUNT_DISABLED")),
            4493 => AwsFate::Refused(403, "AccessDeniedException", None),
            4481 => AwsFate::Refused(
                403,
                "AccessDeniedException",
                Some("INSUFFICIENT_ACCOUNT_REPUTATION"),
            ),
            4720 | 4700 | 4406 | 4303 | 4404 | 4721 | 4350 | 4434 | 4452 | 4703 => {
                AwsFate::FailedEvent("TEXT_INVALID")
            }
            4701 | 4702 | 4730 => AwsFate::FailedEvent("TEXT_UNREACHABLE"),
            4482 | 4750 | 4772 => AwsFate::FailedEvent("TEXT_BLOCKED"),
            4470 | 4770 | 4771 | 4782 => AwsFate::FailedEvent("TEXT_SPAM"),
            4773 | 4774 | 4795 | 4740 | 4780 | 4781 | 4785 => {
                AwsFate::FailedEvent("TEXT_CARRIER_BLOCKED")
            }
            4301 | 4751 | 4752 => AwsFate::FailedEvent("TEXT_INVALID_MESSAGE"),
            4360 | 4492 => AwsFate::FailedEvent("TEXT_TTL_EXPIRED"),
            5000..=5999 if code != 5999 => AwsFate::FailedEvent("TEXT_CARRIER_UNREACHABLE"),
            _ => AwsFate::FailedEvent("TEXT_UNKNOWN"),
        },
    }
}

/// An AWS JSON error answer.
fn aws_error(status: u16, exception: &str, reason: Option<&str>, message: &str) -> Response {
    let mut body = json!({"__type": exception, "Message": message});
    if let Some(reason) = reason {
        body["Reason"] = json!(reason);
    }
    let mut response = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        Json(body),
    )
        .into_response();
    if let Ok(value) = exception.parse() {
        response.headers_mut().insert("x-amzn-errortype", value);
    }
    response
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SendRequest {
    destination_phone_number: String,
    origination_identity: String,
    #[serde(default)]
    message_body: Option<String>,
    #[serde(default)]
    media_urls: Option<Vec<String>>,
    #[serde(default)]
    configuration_set_name: Option<String>,
    #[serde(default)]
    context: std::collections::HashMap<String, String>,
}

/// `POST /`: the operations of the AWS API the product calls.
pub async fn api(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let signed_for_sms = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.starts_with("AWS4-HMAC-SHA256 ") && v.contains("/sms-voice/aws4_request")
        });
    if !signed_for_sms {
        return aws_error(
            403,
            "AccessDeniedException",
            None,
            "requests must be SigV4-signed for sms-voice",
        );
    }
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    match target.as_str() {
        "PinpointSMSVoiceV2.SendTextMessage" | "PinpointSMSVoiceV2.SendMediaMessage" => {
            send(&state, &body, target.ends_with("SendMediaMessage")).await
        }
        // The simulated account keeps no opt-out list: every number is
        // "not on it"; the product treats that as done.
        "PinpointSMSVoiceV2.DeleteOptedOutNumber" => aws_error(
            404,
            "ResourceNotFoundException",
            None,
            "the number is not on the opt-out list",
        ),
        other => aws_error(
            400,
            "UnknownOperationException",
            None,
            &format!("{other} is not simulated"),
        ),
    }
}

async fn send(state: &AppState, body: &[u8], media: bool) -> Response {
    let request: SendRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return aws_error(
                400,
                "ValidationException",
                Some("CANNOT_PARSE"),
                &e.to_string(),
            )
        }
    };
    let to = request.destination_phone_number.clone();
    if !state.is_aws_number(&request.origination_identity).await {
        return aws_error(
            404,
            "ResourceNotFoundException",
            None,
            "no such origination identity in this account",
        );
    }
    if request
        .configuration_set_name
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        return aws_error(
            400,
            "ValidationException",
            Some("MISSING_PARAMETER"),
            "the product always sends with its configuration set",
        );
    }
    state.count_attempt(std::slice::from_ref(&to)).await;
    let fault = state.take_fault(std::slice::from_ref(&to)).await;
    if let Some(mode) = fault.filter(|m| !m.accepts()) {
        return match mode {
            FaultMode::Timeout => {
                hang(state, state.fault_hang()).await;
                injected_response(mode)
            }
            FaultMode::CutBeforeAccept => cut_connection(),
            FaultMode::Http429 => {
                aws_error(400, "ThrottlingException", None, "Simulated throttling")
            }
            FaultMode::Http500 => {
                aws_error(500, "InternalServerException", None, "Simulated failure")
            }
            _ => aws_error(
                400,
                "ValidationException",
                Some("INVALID_REQUEST"),
                "Simulated rejection",
            ),
        };
    }
    let fate = aws_fate(&to);
    if let AwsFate::Refused(status, exception, reason) = fate {
        return aws_error(status, exception, reason, "Simulated refusal");
    }
    let id = uuid::Uuid::new_v4().to_string();
    let message = StoredMessage {
        id: id.clone(),
        from: request.origination_identity.clone(),
        to: vec![to.clone()],
        text: request.message_body.clone().unwrap_or_default(),
        tag: request.context.get("tag").cloned(),
        application_id: request.configuration_set_name.clone().unwrap_or_default(),
        media: media.then(|| request.media_urls.clone().unwrap_or_default()),
        priority: None,
        expiration: None,
        received_at: now_rfc3339(),
        callbacks: Vec::new(),
        carrier: Some("aws".into()),
    };
    state.record(message.clone()).await;
    tracing::info!(%id, from = %message.from, to = %to, "AWS text accepted");
    let copies = if fault == Some(FaultMode::DuplicateCallbacks) {
        2
    } else {
        1
    };
    if fault == Some(FaultMode::EarlyCallbacks) {
        publish_fate(state, &message, fate, copies, false).await;
    } else {
        let (state, message) = (state.clone(), message.clone());
        tokio::spawn(async move { publish_fate(&state, &message, fate, copies, true).await });
    }
    match fault {
        Some(FaultMode::AcceptThenTimeout) => {
            hang(state, state.fault_hang()).await;
            injected_response(FaultMode::Timeout)
        }
        Some(FaultMode::CutAfterAccept | FaultMode::CutBodyAfter2xx) => cut_connection(),
        _ => (StatusCode::OK, Json(json!({"MessageId": id}))).into_response(),
    }
}

/// The events of one text, as its configuration set would publish them.
async fn publish_fate(
    state: &AppState,
    message: &StoredMessage,
    fate: AwsFate,
    copies: u32,
    wait: bool,
) {
    if wait {
        tokio::time::sleep(state.delivery_delay()).await;
    }
    let events: Vec<(&str, bool)> = match fate {
        AwsFate::Delivered => vec![("TEXT_SUCCESSFUL", false), ("TEXT_DELIVERED", true)],
        AwsFate::FailedEvent(kind) => vec![(kind, true)],
        AwsFate::Refused(..) => Vec::new(),
    };
    for (kind, is_final) in events {
        let event = delivery_event(message, kind, is_final);
        for _ in 0..copies.max(1) {
            let status = publish(state, &event).await;
            state
                .record_callback(
                    &message.id,
                    CallbackRecord {
                        kind: kind.to_owned(),
                        to: message.to.first().cloned().unwrap_or_default(),
                        status,
                        attempts: 1,
                        at: now_rfc3339(),
                    },
                )
                .await;
        }
    }
}

/// A configuration-set event, shaped as AWS documents it.
pub fn delivery_event(message: &StoredMessage, kind: &str, is_final: bool) -> Value {
    let now = chrono::Utc::now().timestamp_millis();
    let status = kind.trim_start_matches("TEXT_");
    let mut context = serde_json::Map::new();
    if let Some(tag) = &message.tag {
        context.insert("tag".into(), json!(tag));
    }
    json!({
        "eventType": kind, "eventVersion": "1.0", "eventTimestamp": now, "isFinal": is_final,
        "originationPhoneNumber": message.from,
        "destinationPhoneNumber": message.to.first(),
        "isoCountryCode": "US", "mcc": "310", "mnc": "800", "carrierName": "Simulated Mobile",
        "messageId": message.id, "messageRequestTimestamp": now,
        "messageEncoding": "GSM", "messageType": "TRANSACTIONAL",
        "messageStatus": status, "messageStatusDescription": format!("Simulated {status}"),
        "context": context, "totalMessageParts": 1,
        "totalMessagePrice": 0.00581, "totalCarrierFee": 0.003,
    })
}

/// A two-way inbound text, shaped as AWS documents it.
pub fn inbound_text(id: &str, from: &str, to: &str, text: &str) -> Value {
    let keyword = text
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_uppercase();
    json!({
        "originationNumber": from, "destinationNumber": to, "messageKeyword": keyword,
        "messageBody": text, "inboundMessageId": id, "previousPublishedMessageId": "",
    })
}

/// Publishes `message` to the SMS event topic through the emulator's SNS;
/// the HTTP status SNS answered (`None`: no topic set, or no answer).
pub async fn publish(state: &AppState, message: &Value) -> Option<u16> {
    let target = state.aws_target().await;
    let (Some(topic), Some(sns)) = (target.topic_arn, target.sns_url) else {
        tracing::warn!("no SMS event topic configured (PUT /_sim/config aws_topic_arn, aws_sns_url); event dropped");
        return None;
    };
    let form = format!(
        "Action=Publish&Version=2010-03-31&TopicArn={}&Message={}",
        form_encode(&topic),
        form_encode(&message.to_string())
    );
    // The emulator routes by the credential scope and checks no signature.
    let date = chrono::Utc::now().format("%Y%m%d");
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential=test/{date}/us-east-1/sns/aws4_request, SignedHeaders=host, Signature=0"
    );
    let sent = state
        .http()
        .post(format!("{sns}/"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::AUTHORIZATION, authorization)
        .body(form)
        .send()
        .await;
    match sent {
        Ok(r) => {
            let status = r.status().as_u16();
            if !r.status().is_success() {
                let body = r.text().await.unwrap_or_default();
                tracing::warn!(status, body, "SNS refused the publication");
            }
            Some(status)
        }
        Err(e) => {
            tracing::warn!(error = %e, "SNS unreachable; event dropped");
            None
        }
    }
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char);
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Body of `POST /_sim/aws/numbers`.
#[derive(Debug, Deserialize)]
pub struct NumbersRequest {
    /// E.164 numbers to add to the simulated account.
    pub numbers: Vec<String>,
}

/// `POST /_sim/aws/numbers`: numbers the simulated AWS account owns (as if
/// requested with `RequestPhoneNumber`, two-way to the SMS event topic).
pub async fn add_numbers(
    State(state): State<AppState>,
    Json(request): Json<NumbersRequest>,
) -> Json<Value> {
    let count = state.add_aws_numbers(request.numbers).await;
    Json(json!({"numbers": count}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bandwidth_code_gives_its_aws_counterpart() {
        assert_eq!(aws_fate("+14155550142"), AwsFate::Delivered);
        assert_eq!(
            aws_fate("+14155554720"),
            AwsFate::FailedEvent("TEXT_INVALID")
        );
        assert_eq!(
            aws_fate("+14155554700"),
            AwsFate::FailedEvent("TEXT_INVALID")
        );
        assert_eq!(aws_fate("+14155554470"), AwsFate::FailedEvent("TEXT_SPAM"));
        assert_eq!(
            aws_fate("+14155555600"),
            AwsFate::FailedEvent("TEXT_CARRIER_UNREACHABLE")
        );
        assert_eq!(
            aws_fate("+14155559902"),
            AwsFate::FailedEvent("TEXT_UNKNOWN")
        );
        assert!(matches!(
            aws_fate("+14155554775"),
            AwsFate::Refused(
                400,
                "ConflictException",
                Some("DESTINATION_PHONE_NUMBER_OPTED_OUT")
            )
        ));
        for (code, _) in crate::sim::BANDWIDTH_ERROR_CODES {
            assert_ne!(
                aws_fate(&format!("+1415555{code:04}")),
                AwsFate::Delivered,
                "{code}"
            );
        }
    }

    #[test]
    fn form_values_are_percent_encoded() {
        assert_eq!(form_encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }
}
