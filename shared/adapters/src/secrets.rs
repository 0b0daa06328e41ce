//! Passwords read from SSM Parameter Store (`SecureString` parameters),
//! never from the environment (where `GetFunctionConfiguration` would show
//! them).
//!
//! A [`Password`] is read when it is first needed ([`Password::current`]),
//! not at cold start: an instance's init makes no network call for it, an
//! instance that never needs it never reads it, and a Parameter Store that
//! cannot be reached fails the requests that need the password (each one
//! retried as any other transient failure) instead of the function's start.
//! The value is then kept for the instance's life. When the other side
//! refuses it (the carrier answers 401, or a callback's Basic credentials
//! do not match), the caller asks for a [`Password::refresh`]: the
//! parameter was perhaps changed. Re-reads are spaced at least
//! [`REFRESH_SPACING`] apart, so a stream of bad credentials from outside
//! cannot turn into a stream of Parameter Store calls.

use std::sync::Arc;
use std::time::{Duration, Instant};

use messaging_core::domain::error::StoreError;
use messaging_core::domain::secret::Secret;
use tokio::sync::RwLock;

use crate::ssm::ParameterStore;

/// The shortest time between two reads of one parameter.
pub const REFRESH_SPACING: Duration = Duration::from_secs(30);

#[derive(Debug)]
enum Source {
    /// Given as is (tests, or a developer's own run).
    Fixed,
    /// A `SecureString` parameter whose value is the password.
    Parameter { store: ParameterStore, name: String },
}

#[derive(Debug)]
struct Current {
    /// `None` until first read.
    value: Option<Secret>,
    read_at: Instant,
}

/// A password, possibly backed by Parameter Store. Cheap to clone; clones
/// share the cached value.
#[derive(Debug, Clone)]
pub struct Password {
    source: Arc<Source>,
    current: Arc<RwLock<Current>>,
    spacing: Duration,
}

impl From<Secret> for Password {
    fn from(value: Secret) -> Self {
        Self {
            source: Arc::new(Source::Fixed),
            current: Arc::new(RwLock::new(Current {
                value: Some(value),
                read_at: Instant::now(),
            })),
            spacing: REFRESH_SPACING,
        }
    }
}

impl Password {
    /// The `SecureString` parameter `name`, read on first use (nothing is
    /// read now).
    pub fn from_parameter(store: ParameterStore, name: impl Into<String>) -> Self {
        Self {
            source: Arc::new(Source::Parameter {
                store,
                name: name.into(),
            }),
            current: Arc::new(RwLock::new(Current {
                value: None,
                read_at: Instant::now(),
            })),
            spacing: REFRESH_SPACING,
        }
    }

    /// Changes the shortest time between two reads (tests).
    pub fn with_refresh_spacing(mut self, spacing: Duration) -> Self {
        self.spacing = spacing;
        self
    }

    /// The password: as last read, or read now if it never was (callers
    /// that arrive meanwhile wait for that one read).
    ///
    /// # Errors
    ///
    /// The first read failed (it is tried again at the next call).
    pub async fn current(&self) -> Result<Secret, StoreError> {
        if let Some(value) = &self.current.read().await.value {
            return Ok(value.clone());
        }
        let Source::Parameter { store, name } = self.source.as_ref() else {
            return Err(StoreError::new("read a password", "no password is configured"));
        };
        let mut current = self.current.write().await;
        if let Some(value) = &current.value {
            return Ok(value.clone());
        }
        let value = store.secure_string(name).await?;
        current.value = Some(value.clone());
        current.read_at = Instant::now();
        Ok(value)
    }

    /// Reads the parameter again if it was last read more than the
    /// spacing ago ([`REFRESH_SPACING`]); `true` when the value changed
    /// (worth trying the refused request again).
    pub async fn refresh(&self) -> bool {
        let Source::Parameter { store, name } = self.source.as_ref() else {
            return false;
        };
        let mut current = self.current.write().await;
        if current.value.is_some() && current.read_at.elapsed() < self.spacing {
            return false;
        }
        current.read_at = Instant::now();
        match store.secure_string(name).await {
            Ok(value) => {
                let changed = current
                    .value
                    .as_ref()
                    .is_none_or(|old| old.expose() != value.expose());
                if changed {
                    tracing::info!("password parameter changed; using the new value");
                }
                current.value = Some(value);
                changed
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not re-read the password parameter");
                false
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;

    #[tokio::test]
    async fn a_given_password_is_current_and_never_refreshed() {
        let password = Password::from(Secret::new("s3cret"));
        assert_eq!(password.current().await.unwrap().expose(), "s3cret");
        assert!(!password.refresh().await);
    }

    #[tokio::test]
    async fn a_parameter_is_not_read_until_it_is_needed_and_a_failed_read_is_tried_again() {
        // A store nobody listens on: building the password reads nothing,
        // each use tries (and here fails) to read it.
        let aws = crate::aws::config(
            "us-east-1".into(),
            Credentials::new("a", "b", None, None, "test"),
            Some("http://127.0.0.1:9".into()),
        );
        let password = Password::from_parameter(ParameterStore::new(&aws), "/pm/password");
        let first = password.current().await.unwrap_err();
        assert!(first.to_string().contains("read a password parameter"), "{first}");
        assert!(password.current().await.is_err(), "tried again, not cached");
    }
}
