//! `carrier-sim` binary: reads config, binds 127.0.0.1, announces the address
//! as one JSON line on stdout (for launchers), serves until SIGTERM / Ctrl-C.

use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use carrier_sim::{router, AppState, Config, ConfigError, StateError};
use tracing_subscriber::EnvFilter;

/// Why the simulator could not run.
#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot bind 127.0.0.1:{port}: {source}")]
    Bind { port: u16, source: std::io::Error },
    #[error("server error: {0}")]
    Serve(std::io::Error),
    #[error("cannot announce the listening address on stdout: {0}")]
    Announce(std::io::Error),
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "carrier-sim failed");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), RunError> {
    let mut config = Config::from_process()?;
    let port = config.port;
    // Loopback only: this is a test double with fixed credentials.
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .await
        .map_err(|source| RunError::Bind { port, source })?;
    let address = listener.local_addr().map_err(RunError::Serve)?;
    // Media URLs point back at us; with `--port 0` only now is the port known.
    let public_url = config
        .public_url
        .get_or_insert_with(|| format!("http://{address}"))
        .clone();
    tracing::info!(
        account_id = %config.account_id,
        callback_url = ?config.callback.url,
        delivery_delay_ms = config.delivery_delay.as_millis(),
        public_url,
        "starting carrier-sim"
    );
    let state = AppState::new(config)?;
    // A `cut_*` fault unwinds out of its handler to drop the connection;
    // that is the fault working, not a bug worth a backtrace.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !info.payload().is::<carrier_sim::CutConnection>() {
            report(info);
        }
    }));
    announce(address).map_err(RunError::Announce)?;
    tracing::info!(%address, "listening");

    let shutdown_state = state.clone();
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move {
            wait_for_signal().await;
            tracing::info!("shutting down");
            shutdown_state.begin_shutdown();
        })
        .await
        .map_err(RunError::Serve)?;
    tracing::info!("stopped");
    Ok(())
}

/// Prints `{"listening":"http://127.0.0.1:PORT"}` and flushes, so a launcher
/// reading our stdout gets the address even when stdout is a pipe.
fn announce(address: SocketAddr) -> std::io::Result<()> {
    let line = serde_json::json!({ "listening": format!("http://{address}") });
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")?;
    stdout.flush()
}

/// Resolves on Ctrl-C, or SIGTERM on Unix (what process managers send).
async fn wait_for_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
