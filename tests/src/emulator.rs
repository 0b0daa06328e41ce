//! The emulator's JSON APIs called directly (it does not check signatures),
//! for what the SDK crates of the tests do not cover: the functions' logs in
//! CloudWatch Logs (and, for the cost model, DynamoDB Streams).

use chrono::Utc;
use serde_json::{json, Value};

/// One call of an AWS JSON API on the emulator at `url`: `target` is the
/// `X-Amz-Target` header, `json` the protocol's version.
pub async fn call(
    http: &reqwest::Client,
    url: &str,
    target: &str,
    service: &str,
    json: &str,
    body: &Value,
) -> Value {
    let date = Utc::now().format("%Y%m%d");
    http.post(url)
        .header("x-amz-target", target)
        .header("content-type", format!("application/x-amz-json-{json}"))
        .header(
            "authorization",
            format!("AWS4-HMAC-SHA256 Credential=test/{date}/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"),
        )
        .json(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("the emulator's {target}: {e}"))
        .json()
        .await
        .expect("json")
}

/// One CloudWatch Logs operation on the emulator.
pub async fn logs(http: &reqwest::Client, url: &str, operation: &str, body: &Value) -> Value {
    call(
        http,
        url,
        &format!("Logs_20140328.{operation}"),
        "logs",
        "1.1",
        body,
    )
    .await
}

/// The JSON log records (`{"level", "fields": {"message", …}}`) one deployed
/// function of `stack` wrote since `since_ms` (ms since the epoch). `function`
/// is the template's logical name without `Function` (`Dispatcher`).
pub async fn function_log_records(
    url: &str,
    stack: &str,
    function: &str,
    since_ms: i64,
) -> Vec<Value> {
    let http = crate::http();
    let prefix = format!("/aws/lambda/{stack}-{function}");
    let groups = logs(
        &http,
        url,
        "DescribeLogGroups",
        &json!({"logGroupNamePrefix": prefix}),
    )
    .await;
    let mut records = Vec::new();
    for group in groups["logGroups"].as_array().cloned().unwrap_or_default() {
        let name = group["logGroupName"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mut token: Option<String> = None;
        loop {
            let mut body = json!({"logGroupName": name, "startTime": since_ms});
            if let Some(t) = &token {
                body["nextToken"] = json!(t);
            }
            let page = logs(&http, url, "FilterLogEvents", &body).await;
            for event in page["events"].as_array().cloned().unwrap_or_default() {
                if let Some(record) = event["message"]
                    .as_str()
                    .and_then(|m| serde_json::from_str::<Value>(m.trim()).ok())
                {
                    records.push(record);
                }
            }
            token = page["nextToken"].as_str().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
    }
    records
}
