//! AWS End User Messaging SMS (`pinpoint-sms-voice-v2`): `SendTextMessage`
//! to send, `DeleteOptedOutNumber` to take a number that texted START off
//! the deployment's opt-out list.
//!
//! Two JSON calls (the service's `awsJson1_0` protocol), signed here with
//! SigV4 by `aws-sigv4` — the signer the SDK itself uses — and sent through
//! the one HTTP stack, as the S3 adapter does: the generated
//! `aws-sdk-pinpointsmsvoicev2` crate would bring the service's whole model
//! (about 120 operations) into the dispatcher for these two
//! (docs/measurements.md, "The AWS carrier without its SDK crate").
//!
//! Outcomes follow the Bandwidth adapter's rules: a 2xx is an acceptance
//! (never sent again), no connection or a throttling / server error is
//! retryable, an answer that never came is unconfirmed (AWS has no
//! idempotency key on sends either), and a refusal is explained from AWS's
//! own reason (`domain::aws_errors`).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use serde::{Deserialize, Serialize};

use crate::aws::SdkConfig;
use messaging_core::app::aws_sms::TAG_CONTEXT_KEY;
use messaging_core::domain::error::StoreError;
use messaging_core::domain::message::RecipientError;
use messaging_core::ports::{CarrierOptOuts, CarrierOutcome, OutboundText};

/// The service's signing name.
const SERVICE: &str = "sms-voice";
/// The `X-Amz-Target` prefix of its operations.
const TARGET: &str = "PinpointSMSVoiceV2";

/// What the adapter needs to send from the deployment's account.
#[derive(Debug, Clone)]
pub struct AwsSmsConfig {
    /// `https://sms-voice.{region}.amazonaws.com` unless overridden (the
    /// local cloud points it at the carrier simulator).
    pub api_url: Option<String>,
    /// The configuration set every text is sent with: its event
    /// destination is the stack's SNS topic.
    pub configuration_set: String,
    /// The opt-out list of the deployment's numbers (a START removes the
    /// number from it); `None`: nothing to remove from.
    pub opt_out_list: Option<String>,
    /// How long to wait for an answer.
    pub timeout: Duration,
}

/// The AWS carrier adapter.
#[derive(Debug, Clone)]
pub struct AwsSms {
    http: reqwest::Client,
    credentials: Option<SharedCredentialsProvider>,
    region: String,
    url: String,
    config: AwsSmsConfig,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SendTextMessage<'a> {
    destination_phone_number: &'a str,
    origination_identity: &'a str,
    message_body: &'a str,
    message_type: &'static str,
    configuration_set_name: &'a str,
    context: HashMap<&'static str, &'a str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Sent {
    message_id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteOptedOutNumber<'a> {
    opt_out_list_name: &'a str,
    opted_out_number: &'a str,
}

/// An error answer: `__type` (`com.amazonaws.pinpointsmsvoicev2#ConflictException`
/// or just the name), and the `Reason` most of them carry.
#[derive(Deserialize, Default)]
struct Problem {
    #[serde(default, rename = "__type")]
    kind: String,
    #[serde(default, alias = "message")]
    #[serde(rename = "Message")]
    message: String,
    #[serde(default, rename = "Reason")]
    reason: Option<String>,
}

impl Problem {
    fn exception(&self, header: Option<&str>) -> String {
        let raw = if self.kind.is_empty() {
            header.unwrap_or_default()
        } else {
            &self.kind
        };
        // `aws.protocoltests#Name:http://…` and `namespace#Name` forms.
        let name = raw.split(':').next().unwrap_or_default();
        name.rsplit('#').next().unwrap_or_default().to_string()
    }
}

/// What a request got: an answer (status, body, the error-type header), or
/// no answer (`true` when the request never left: no connection).
type Answer = Result<(u16, Vec<u8>, Option<String>), (bool, String)>;

impl AwsSms {
    /// The adapter, with `sdk`'s region and credentials.
    pub fn new(sdk: &SdkConfig, config: AwsSmsConfig) -> Result<Self, reqwest::Error> {
        let region = sdk
            .region()
            .map_or_else(|| "us-east-1".to_string(), ToString::to_string);
        let url = config.api_url.clone().map_or_else(
            || format!("https://sms-voice.{region}.amazonaws.com/"),
            |u| format!("{}/", u.trim_end_matches('/')),
        );
        let http = crate::http::client_builder()
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(3))
            .build()?;
        Ok(Self {
            http,
            credentials: sdk.credentials_provider(),
            region,
            url,
            config,
        })
    }

    async fn identity(&self) -> Result<Identity, String> {
        let provider = self
            .credentials
            .as_ref()
            .ok_or("no AWS credentials are configured")?;
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|e| e.to_string())?;
        Ok(credentials.into())
    }

    /// One signed call of `operation` with `body`.
    async fn call(&self, operation: &'static str, body: &[u8]) -> Answer {
        let identity = self.identity().await.map_err(|e| (true, e))?;
        let target = format!("{TARGET}.{operation}");
        let headers = signed_headers(
            &self.url,
            &target,
            body,
            &identity,
            &self.region,
            SystemTime::now(),
        )
        .map_err(|e| (true, format!("cannot sign the request: {e}")))?;
        let mut request = self
            .http
            .post(&self.url)
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", &target)
            .body(body.to_vec());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        crate::aws::metering::count_as(match operation {
            "SendTextMessage" => "sms-voice:SendTextMessage",
            _ => "sms-voice:DeleteOptedOutNumber",
        });
        let response = request.send().await.map_err(|e| {
            if e.is_connect() {
                (true, format!("AWS unreachable: {e}"))
            } else if e.is_timeout() {
                (false, "AWS did not answer in time".to_string())
            } else {
                (false, format!("connection lost before AWS's answer: {e}"))
            }
        })?;
        let status = response.status().as_u16();
        let error_type = response
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        match response.bytes().await {
            Ok(bytes) => Ok((status, bytes.to_vec(), error_type)),
            // A 2xx whose body was cut off is still an acceptance.
            Err(_) if (200..300).contains(&status) => Ok((status, Vec::new(), error_type)),
            Err(e) => Err((true, format!("AWS's answer was cut off: {e}"))),
        }
    }

    /// Sends one text: the outcome, as [`messaging_core::ports::Carrier`]
    /// defines them.
    pub async fn send_text(&self, text: &OutboundText) -> CarrierOutcome {
        let body = SendTextMessage {
            destination_phone_number: &text.to,
            origination_identity: &text.from,
            message_body: &text.text,
            message_type: "TRANSACTIONAL",
            configuration_set_name: &self.config.configuration_set,
            context: HashMap::from([(TAG_CONTEXT_KEY, text.tag.as_str())]),
        };
        let body = match serde_json::to_vec(&body) {
            Ok(b) => b,
            Err(e) => {
                return CarrierOutcome::Rejected {
                    status: 0,
                    detail: format!("the request could not be written: {e}"),
                    error: None,
                }
            }
        };
        let (status, bytes, error_type) = match self.call("SendTextMessage", &body).await {
            Ok(answer) => answer,
            Err((true, reason)) => return CarrierOutcome::Retryable { reason },
            Err((false, reason)) => return CarrierOutcome::Unconfirmed { reason },
        };
        outcome(status, &bytes, error_type.as_deref())
    }
}

/// What an answer to `SendTextMessage` means.
fn outcome(status: u16, bytes: &[u8], error_type: Option<&str>) -> CarrierOutcome {
    if (200..300).contains(&status) {
        let id = serde_json::from_slice::<Sent>(bytes)
            .map(|s| s.message_id)
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "AWS accepted with an unreadable answer");
                String::new()
            });
        return CarrierOutcome::Accepted {
            carrier_message_id: id,
        };
    }
    let problem: Problem = serde_json::from_slice(bytes).unwrap_or_default();
    let exception = problem.exception(error_type);
    let detail = format!(
        "{exception}{}: {}",
        problem
            .reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default(),
        problem.message
    );
    let retryable = status >= 500
        || status == 429
        || matches!(
            exception.as_str(),
            "ThrottlingException" | "InternalServerException"
        );
    if retryable {
        return CarrierOutcome::Retryable {
            reason: format!("HTTP {status}: {detail}"),
        };
    }
    // The reason says most (DESTINATION_PHONE_NUMBER_OPTED_OUT,
    // MONTHLY_SPEND_LIMIT_REACHED_FOR_TEXT…); a reason the catalog does not
    // know is explained by its exception.
    let known = |code: &str| messaging_core::domain::aws_errors::lookup(code).is_some();
    let code = match problem.reason.as_deref() {
        Some(reason) if known(reason) => reason.to_string(),
        _ if !exception.is_empty() => exception,
        _ => format!("http_{status}"),
    };
    CarrierOutcome::Rejected {
        status,
        detail,
        error: Some(RecipientError::from_aws_code(&code)),
    }
}

#[async_trait]
impl CarrierOptOuts for AwsSms {
    async fn remove_opt_out(&self, phone: &str) -> Result<(), StoreError> {
        let Some(list) = self.config.opt_out_list.as_deref() else {
            return Ok(());
        };
        let body = serde_json::to_vec(&DeleteOptedOutNumber {
            opt_out_list_name: list,
            opted_out_number: phone,
        })
        .map_err(|e| StoreError::new("remove from the opt-out list", e))?;
        let (status, bytes, error_type) = self
            .call("DeleteOptedOutNumber", &body)
            .await
            .map_err(|(_, e)| StoreError::new("remove from the opt-out list", e))?;
        if (200..300).contains(&status) {
            return Ok(());
        }
        let problem: Problem = serde_json::from_slice(&bytes).unwrap_or_default();
        // Not on the list: nothing to remove.
        if problem.exception(error_type.as_deref()) == "ResourceNotFoundException" {
            return Ok(());
        }
        Err(StoreError::new(
            "remove from the opt-out list",
            format!(
                "AWS answered {status}: {}",
                problem.exception(error_type.as_deref())
            ),
        ))
    }
}

type SignError = Box<dyn std::error::Error + Send + Sync>;

/// The headers that sign a `POST` of `body` to `url` for `target`
/// (`authorization`, `x-amz-date`, and `x-amz-security-token` with
/// temporary credentials).
fn signed_headers(
    url: &str,
    target: &str,
    body: &[u8],
    identity: &Identity,
    region: &str,
    time: SystemTime,
) -> Result<Vec<(&'static str, String)>, SignError> {
    let params = v4::SigningParams::builder()
        .identity(identity)
        .region(region)
        .name(SERVICE)
        .time(time)
        .settings(SigningSettings::default())
        .build()?
        .into();
    let headers = [
        ("content-type", "application/x-amz-json-1.0"),
        ("x-amz-target", target),
    ];
    let request = SignableRequest::new(
        "POST",
        url,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )?;
    let (instructions, _) = sign(request, &params)?.into_parts();
    let (headers, _) = instructions.into_parts();
    Ok(headers
        .into_iter()
        .map(|h| (h.name(), h.value().to_string()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;

    fn rejected_code(status: u16, body: &str, header: Option<&str>) -> (String, String) {
        match outcome(status, body.as_bytes(), header) {
            CarrierOutcome::Rejected { error: Some(e), .. } => (e.code, e.carrier),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn answers_are_read_as_the_carrier_port_defines_them() {
        assert_eq!(
            outcome(200, br#"{"MessageId": "m-1"}"#, None),
            CarrierOutcome::Accepted {
                carrier_message_id: "m-1".into()
            }
        );
        // Accepted, whatever its body.
        assert_eq!(
            outcome(200, b"{\"Mess", None),
            CarrierOutcome::Accepted {
                carrier_message_id: String::new()
            }
        );
        for (status, kind) in [
            (400, "ThrottlingException"),
            (500, "InternalServerException"),
            (503, ""),
        ] {
            let body = format!(r#"{{"__type": "{kind}", "Message": "slow down"}}"#);
            assert!(
                matches!(
                    outcome(status, body.as_bytes(), None),
                    CarrierOutcome::Retryable { .. }
                ),
                "{status} {kind}"
            );
        }
    }

    #[test]
    fn a_refusal_is_explained_by_its_reason_or_else_its_exception() {
        let opted_out = r#"{"__type": "com.amazonaws.pinpointsmsvoicev2#ConflictException", "Message": "opted out", "Reason": "DESTINATION_PHONE_NUMBER_OPTED_OUT", "ResourceType": "opt-out-list", "ResourceId": "Default"}"#;
        assert_eq!(
            rejected_code(400, opted_out, None),
            ("DESTINATION_PHONE_NUMBER_OPTED_OUT".into(), "aws".into())
        );
        let spend = r#"{"__type": "ServiceQuotaExceededException", "Message": "limit", "Reason": "MONTHLY_SPEND_LIMIT_REACHED_FOR_TEXT"}"#;
        assert_eq!(
            rejected_code(402, spend, None).0,
            "MONTHLY_SPEND_LIMIT_REACHED_FOR_TEXT"
        );
        let not_found =
            r#"{"Message": "no such origination identity", "ResourceType": "phone-number"}"#;
        assert_eq!(
            rejected_code(
                404,
                not_found,
                Some("ResourceNotFoundException:http://internal")
            )
            .0,
            "ResourceNotFoundException"
        );
        let validation =
            r#"{"__type": "ValidationException", "Message": "bad", "Reason": "SOMETHING_NEW"}"#;
        assert_eq!(
            rejected_code(400, validation, None).0,
            "ValidationException"
        );
    }

    #[test]
    fn requests_are_signed_for_the_sms_voice_service() {
        let identity: Identity =
            Credentials::new("AKIDEXAMPLE", "secret", None, None, "test").into();
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_169_200);
        let headers = signed_headers(
            "https://sms-voice.us-east-1.amazonaws.com/",
            "PinpointSMSVoiceV2.SendTextMessage",
            b"{}",
            &identity,
            "us-east-1",
            time,
        )
        .unwrap();
        let auth = &headers
            .iter()
            .find(|(n, _)| *n == "authorization")
            .unwrap()
            .1;
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20251126/us-east-1/sms-voice/aws4_request"
            ),
            "{auth}"
        );
        assert!(
            auth.contains("SignedHeaders=content-type;host;x-amz-date;x-amz-target"),
            "{auth}"
        );
        assert!(headers
            .iter()
            .any(|(n, v)| *n == "x-amz-date" && v == "20251126T150000Z"));
    }
}
