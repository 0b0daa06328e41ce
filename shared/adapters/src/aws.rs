//! The AWS SDK configuration of the functions, and the HTTP connector every
//! AWS request goes through.
//!
//! A function's configuration comes from Lambda's environment alone:
//! `AWS_REGION`, the execution role's `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`, and `AWS_ENDPOINT_URL`
//! on the local cloud. That is what `aws-config`'s default chain found first
//! on Lambda anyway; building it directly keeps the chain's other providers
//! (profiles, SSO, STS, instance metadata) out of the binaries and their
//! cold start. The operator's command and the tests, which run on a
//! laptop, keep `aws-config` (with [`http_client`]).
//!
//! Requests are sent by [`http_client`]: the SDK's standard retries,
//! signing and timeouts around a reqwest client of the one HTTP stack
//! ([`crate::http`]). With metering on ([`metering`]), each request is
//! counted by service and operation, for the cost model.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_smithy_async::rt::sleep::{SharedAsyncSleep, TokioSleep};
use aws_smithy_async::time::SharedTimeSource;
use aws_smithy_runtime_api::client::behavior_version::BehaviorVersion;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
pub use aws_types::SdkConfig;

/// The connect timeout `aws-config` sets by default.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);

/// An SDK configuration with fixed credentials (the functions' from their
/// environment, the tests' for the emulator).
pub fn config(region: String, credentials: Credentials, endpoint_url: Option<String>) -> SdkConfig {
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(aws_types::region::Region::new(region))
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .http_client(http_client())
        .retry_config(RetryConfig::standard())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .build(),
        )
        .sleep_impl(SharedAsyncSleep::new(TokioSleep::new()))
        .time_source(SharedTimeSource::default());
    if let Some(url) = endpoint_url {
        builder = builder.endpoint_url(url);
    }
    builder.build()
}

/// The SDK's HTTP client over a new reqwest client: one connection pool
/// shared by every SDK client made from the same configuration (a
/// function builds its configuration once per cold start).
pub fn http_client() -> SharedHttpClient {
    SharedHttpClient::new(Reqwest {
        http: reqwest_client(),
    })
}

/// A reqwest client for AWS requests (the SDK's, and the S3 adapter's
/// signed requests). Not one per process: a pooled connection belongs to
/// the tokio runtime that opened it, and a process-wide pool handed one
/// runtime's dead connections to another (each test has its own runtime;
/// the local-cloud tests failed with "connection closed before message
/// completed" and with requests sent twice).
pub(crate) fn reqwest_client() -> reqwest::Client {
    crate::http::client_builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
        .expect("the TLS settings are valid")
}

#[derive(Debug, Clone)]
struct Reqwest {
    http: reqwest::Client,
}

impl HttpClient for Reqwest {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(ReqwestConnector {
            http: self.http.clone(),
            read_timeout: settings.read_timeout(),
        })
    }
}

#[derive(Debug, Clone)]
struct ReqwestConnector {
    http: reqwest::Client,
    read_timeout: Option<Duration>,
}

impl HttpConnector for ReqwestConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        metering::count(&request);
        let http = self.http.clone();
        let read_timeout = self.read_timeout;
        HttpConnectorFuture::new(async move {
            // Every request this project makes has its body in memory
            // (JSON, or an attachment already downloaded).
            let body = request
                .body()
                .bytes()
                .ok_or_else(|| {
                    ConnectorError::user("streaming request bodies are not supported".into())
                })?
                .to_vec();
            let method = reqwest::Method::from_bytes(request.method().as_bytes())
                .map_err(|e| ConnectorError::user(e.into()))?;
            let mut outgoing = http.request(method, request.uri()).body(body);
            for (name, value) in request.headers() {
                outgoing = outgoing.header(name, value);
            }
            if let Some(timeout) = read_timeout {
                outgoing = outgoing.timeout(timeout);
            }
            let response = outgoing.send().await.map_err(connector_error)?;
            let status = StatusCode::try_from(response.status().as_u16())
                .map_err(|e| ConnectorError::other(e.into(), None))?;
            let headers = response.headers().clone();
            let bytes = response.bytes().await.map_err(connector_error)?;
            let mut answer = HttpResponse::new(status, SdkBody::from(bytes));
            for (name, value) in &headers {
                if let Ok(value) = value.to_str() {
                    answer
                        .headers_mut()
                        .append(name.as_str().to_string(), value.to_string());
                }
            }
            Ok(answer)
        })
    }
}

/// How the SDK's retry policy sees a transport failure: a timeout or an
/// I/O failure is retried like the SDK's own client's.
fn connector_error(e: reqwest::Error) -> ConnectorError {
    if e.is_timeout() {
        ConnectorError::timeout(e.into())
    } else if e.is_connect() || e.is_request() || e.is_body() {
        ConnectorError::io(e.into())
    } else {
        ConnectorError::other(e.into(), None)
    }
}

/// Counting AWS requests per invocation, for the cost model
/// (`cost-model` in tests/benchmarks). Off unless the function's
/// `METER_AWS_REQUESTS` is `true` (the template's `MeterAwsRequests`).
pub mod metering {
    use super::{BTreeMap, HttpRequest, Mutex};

    static COUNTS: Mutex<Option<BTreeMap<String, u64>>> = Mutex::new(None);

    /// Turns counting on for this process when the environment asks.
    pub fn enable_from_environment() {
        if std::env::var("METER_AWS_REQUESTS").is_ok_and(|v| v == "true") {
            if let Ok(mut counts) = COUNTS.lock() {
                counts.get_or_insert_with(BTreeMap::new);
            }
        }
    }

    /// Turns counting on (tests).
    #[cfg(test)]
    pub(super) fn enable() {
        if let Ok(mut counts) = COUNTS.lock() {
            counts.get_or_insert_with(BTreeMap::new);
        }
    }

    /// The requests counted since the last call (`None` when off).
    pub fn take() -> Option<BTreeMap<String, u64>> {
        COUNTS.lock().ok()?.as_mut().map(std::mem::take)
    }

    /// Counts one request the SDK does not send (`service:METHOD`).
    pub(crate) fn count_as(key: &str) {
        let Ok(mut guard) = COUNTS.lock() else { return };
        if let Some(counts) = guard.as_mut() {
            *counts.entry(key.to_string()).or_default() += 1;
        }
    }

    pub(super) fn count(request: &HttpRequest) {
        let Ok(mut guard) = COUNTS.lock() else { return };
        let Some(counts) = guard.as_mut() else { return };
        let (key, items) = describe(request);
        if let Some((what, n)) = items {
            *counts.entry(format!("{key}.{what}")).or_default() += n;
        }
        *counts.entry(key).or_default() += 1;
    }

    /// `service:Operation` (the `X-Amz-Target` of JSON protocols) or
    /// `service:METHOD` (REST protocols), with the number of items a
    /// DynamoDB batch or transaction, or an SQS batch, carries.
    fn describe(request: &HttpRequest) -> (String, Option<(&'static str, u64)>) {
        let headers = request.headers();
        // The credential scope: `Credential=KEY/DATE/REGION/SERVICE/aws4_request`.
        let service = headers
            .get("authorization")
            .and_then(|a| a.split("/aws4_request").next())
            .and_then(|a| a.rsplit('/').next())
            .unwrap_or("unknown")
            .to_string();
        let Some(target) = headers.get("x-amz-target") else {
            return (format!("{service}:{}", request.method()), None);
        };
        let operation = target.rsplit('.').next().unwrap_or(target);
        let items = match operation {
            "TransactWriteItems" | "TransactGetItems" | "BatchWriteItem" | "BatchGetItem"
            | "SendMessageBatch" | "DeleteMessageBatch" => request
                .body()
                .bytes()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
                .map(|body| ("items", batch_items(&body))),
            _ => None,
        };
        (format!("{service}:{operation}"), items)
    }

    pub(super) fn batch_items(body: &serde_json::Value) -> u64 {
        let list = body.get("TransactItems").or_else(|| body.get("Entries"));
        if let Some(items) = list.and_then(|v| v.as_array()) {
            return items.len() as u64;
        }
        body.get("RequestItems")
            .and_then(|v| v.as_object())
            .map_or(0, |tables| {
                tables
                    .values()
                    .map(|t| {
                        t.as_array().map_or_else(
                            || t.get("Keys").and_then(|k| k.as_array()).map_or(0, Vec::len),
                            Vec::len,
                        ) as u64
                    })
                    .sum()
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_connection_is_retried_like_the_sdks_own_client_and_counted() {
        super::metering::enable();
        let sdk = config(
            "us-east-1".into(),
            Credentials::new("key", "secret", None, None, "test"),
            // Nothing listens on port 1.
            Some("http://127.0.0.1:1".into()),
        );
        let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
        let result = dynamo
            .get_item()
            .table_name("t")
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S("a".into()))
            .send()
            .await;
        let error = result.expect_err("no server");
        assert!(
            matches!(error, aws_sdk_dynamodb::error::SdkError::DispatchFailure(ref f) if f.is_io()),
            "{error:?}"
        );
        let counts = super::metering::take().expect("metering is on");
        // The standard policy's three attempts, each one request.
        assert_eq!(counts.get("dynamodb:GetItem"), Some(&3), "{counts:?}");
    }

    #[test]
    fn batches_count_their_items() {
        let transact =
            serde_json::json!({"TransactItems": [{"Put": {}}, {"Update": {}}, {"Put": {}}]});
        let batch_write = serde_json::json!({"RequestItems": {"a": [{"PutRequest": {}}, {"DeleteRequest": {}}], "b": [{}]}});
        let batch_get = serde_json::json!({"RequestItems": {"a": {"Keys": [{}, {}]}}});
        let sqs = serde_json::json!({"QueueUrl": "q", "Entries": [{}, {}, {}, {}]});
        assert_eq!(super::metering::batch_items(&transact), 3);
        assert_eq!(super::metering::batch_items(&batch_write), 3);
        assert_eq!(super::metering::batch_items(&batch_get), 2);
        assert_eq!(super::metering::batch_items(&sqs), 4);
    }
}
