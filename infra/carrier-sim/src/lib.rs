//! Bandwidth Messaging API v2 carrier simulator.
//!
//! A local stand-in for Bandwidth so the product's real HTTP adapter can be
//! exercised end to end without a carrier account: it accepts sends with
//! Bandwidth's request/response shapes, decides each message's fate from the
//! destination number, posts Bandwidth v2 callbacks to the product's webhook,
//! and offers `/_sim/*` endpoints for tests to inject faults, simulate inbound
//! texts and inspect what was sent.
//!
//! Inbound texts may be MMS: the simulator keeps their files and serves them
//! through Bandwidth's media API (`GET /api/v2/users/{accountId}/media/...`),
//! whose URLs it puts in the `message-received` callback (see [`media`]).
//! The `/_sim/*` endpoints are listed in [`control`].

pub mod api;
pub mod aws;
pub mod callbacks;
pub mod config;
pub mod control;
pub mod media;
pub mod sim;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use axum::Router;

pub use api::CutConnection;
pub use config::{CallbackTarget, Config, ConfigError};
pub use sim::{AppState, StateError};

/// A reqwest builder for the simulator and its tests. This workspace's
/// reqwest has no TLS provider of its own (the functions configure rustls
/// with `ring`), so the process default is set to `ring` first.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    // Already installed (by an earlier call): nothing to do.
    let _already = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

/// All routes of the simulator over the given state.
pub fn router(state: AppState) -> Router {
    Router::new()
        // AWS End User Messaging SMS's JSON API (`X-Amz-Target`).
        .route("/", post(aws::api))
        .route("/_sim/aws/numbers", post(aws::add_numbers))
        .route(
            "/api/v2/users/{account_id}/messages",
            post(api::create_message),
        )
        .route(
            "/api/v2/users/{account_id}/media/{*media_id}",
            get(media::get_media),
        )
        .route("/_sim/health", get(control::health))
        .route(
            "/_sim/messages",
            get(control::list_messages).delete(control::clear_messages),
        )
        .route("/_sim/attempts", get(control::count_attempts))
        .route(
            "/_sim/faults",
            post(control::arm_fault).delete(control::clear_faults),
        )
        .route("/_sim/config", put(control::put_config))
        .route(
            "/_sim/inbound",
            post(control::inbound).layer(DefaultBodyLimit::max(media::INBOUND_BODY_LIMIT)),
        )
        .route(
            "/_sim/media-requests",
            get(control::list_media_requests).delete(control::clear_media_requests),
        )
        .with_state(state)
}
