//! Bandwidth Messaging API v2 carrier simulator.
//!
//! A local stand-in for Bandwidth so the product's real HTTP adapter can be
//! exercised end to end without a carrier account: it accepts sends with
//! Bandwidth's request/response shapes, decides each message's fate from the
//! destination number, posts Bandwidth v2 callbacks to the product's webhook,
//! and offers `/_sim/*` endpoints for tests to inject faults, simulate inbound
//! texts and inspect what was sent.

pub mod api;
pub mod callbacks;
pub mod config;
pub mod control;
pub mod sim;

use axum::routing::{get, post, put};
use axum::Router;

pub use config::{CallbackTarget, Config, ConfigError};
pub use sim::{AppState, StateError};

/// All routes of the simulator over the given state.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/api/v2/users/{account_id}/messages",
            post(api::create_message),
        )
        .route("/_sim/health", get(control::health))
        .route(
            "/_sim/messages",
            get(control::list_messages).delete(control::clear_messages),
        )
        .route(
            "/_sim/faults",
            post(control::arm_fault).delete(control::clear_faults),
        )
        .route("/_sim/config", put(control::put_config))
        .route("/_sim/inbound", post(control::inbound))
        .with_state(state)
}
