//! Logging: JSON lines on Lambda (CloudWatch), at the level `RUST_LOG`
//! names (`error`, `warn`, `info` (default), `debug`, `trace`; optimised
//! builds compile out `trace` call sites, so there it logs what `debug`
//! does: `tracing`'s `release_max_level_debug`) — for this
//! project's crates only. Dependencies (the Lambda runtime, the AWS SDK,
//! hyper, rustls...) log at `warn` at most whatever the level: their debug
//! and trace output prints raw events (the `Authorization` header, request
//! bodies) and DynamoDB items, which must never reach the logs.

/// The crates whose logs follow `RUST_LOG`.
const OWN_CRATES: [&str; 9] = [
    "messaging_core",
    "messaging_adapters",
    "messaging_lambda",
    "messages_api",
    "practice_api",
    "carrier_webhook",
    "dispatcher",
    "media_copier",
    "event_delivery",
];

/// The filter for `level`: our crates at `level`, everything else at
/// `warn`, or at `error` when `level` is `error`. An unknown level is `info`.
pub fn directives(level: Option<&str>) -> String {
    let level = match level.map(|l| l.trim().to_ascii_lowercase()).as_deref() {
        Some(l @ ("error" | "warn" | "info" | "debug" | "trace")) => l.to_string(),
        _ => "info".to_string(),
    };
    let others = if level == "error" { "error" } else { "warn" };
    std::iter::once(others.to_string())
        .chain(OWN_CRATES.iter().map(|c| format!("{c}={level}")))
        .collect::<Vec<_>>()
        .join(",")
}

/// Runs one invocation; with metering on (`METER_AWS_REQUESTS=true`, the
/// template's `MeterAwsRequests`), then logs its AWS requests by service
/// and operation and its duration, one line the cost model reads
/// (`cost-model` in tests/benchmarks). Off, it only awaits `invocation`.
pub async fn metered<F: std::future::Future>(invocation: F) -> F::Output {
    let started = std::time::Instant::now();
    let output = invocation.await;
    if let Some(requests) = messaging_adapters::aws::metering::take() {
        let requests = serde_json::to_string(&requests).unwrap_or_default();
        tracing::info!(
            aws_requests = %requests,
            duration_ms = started.elapsed().as_secs_f64() * 1000.0,
            "invocation metered"
        );
    }
    output
}

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// Installs the global subscriber once per process, and turns metering on
/// when the environment asks for it.
pub fn init() {
    messaging_adapters::aws::metering::enable_from_environment();
    let level = std::env::var("RUST_LOG").ok();
    let filter: Targets = directives(level.as_deref())
        .parse()
        .unwrap_or_else(|_| Targets::new().with_default(LevelFilter::WARN));
    let result = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_target(false)
                .with_current_span(false)
                .without_time()
                .with_filter(filter),
        )
        .try_init();
    if let Err(e) = result {
        eprintln!("logging was already initialised: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_never_log_below_warn() {
        let trace = directives(Some("trace"));
        assert!(trace.starts_with("warn,"), "{trace}");
        assert!(trace.contains("messaging_core=trace"));
        assert!(trace.contains("event_delivery=trace"));
        assert!(!trace.contains("aws") && !trace.contains("lambda_runtime"));
        assert!(directives(Some("error")).starts_with("error,"));
        assert!(directives(Some("DEBUG")).contains("messaging_lambda=debug"));
    }

    #[test]
    fn an_unknown_or_missing_level_is_info() {
        for level in [
            None,
            Some(""),
            Some("lambda_runtime=trace"),
            Some("verbose"),
        ] {
            let d = directives(level);
            assert!(
                d.starts_with("warn,") && d.contains("messaging_core=info"),
                "{level:?}: {d}"
            );
        }
        let filter: Targets = directives(Some("trace")).parse().expect("directives parse");
        assert!(filter.would_enable("messaging_core::app", &tracing::Level::TRACE));
        assert!(!filter.would_enable("aws_smithy_runtime::client", &tracing::Level::INFO));
        assert!(filter.would_enable("aws_smithy_runtime::client", &tracing::Level::WARN));
    }
}
