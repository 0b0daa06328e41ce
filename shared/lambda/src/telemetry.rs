//! Logging: JSON lines on Lambda (CloudWatch), filtered by `RUST_LOG`
//! (default `info`).

/// Installs the global subscriber once per process.
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let result = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_target(false)
        .with_current_span(false)
        .without_time()
        .try_init();
    if let Err(e) = result {
        eprintln!("logging was already initialised: {e}");
    }
}
