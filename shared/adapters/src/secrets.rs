//! Passwords read from AWS Secrets Manager at cold start, never from the
//! environment (where `GetFunctionConfiguration` would show them).
//!
//! A [`Password`] holds the current value in memory. When the other side
//! refuses it (the carrier answers 401, or a callback's Basic credentials do
//! not match), the caller asks for a [`Password::refresh`]: the secret was
//! perhaps rotated. Re-reads are spaced at least [`REFRESH_SPACING`] apart,
//! so a stream of bad credentials from outside cannot turn into a stream of
//! Secrets Manager calls.

use std::sync::Arc;
use std::time::{Duration, Instant};

use messaging_core::domain::error::StoreError;
use messaging_core::domain::secret::Secret;
use tokio::sync::RwLock;

/// The shortest time between two reads of one secret.
pub const REFRESH_SPACING: Duration = Duration::from_secs(30);

#[derive(Debug)]
enum Source {
    /// Given as is (tests, or a developer's own run).
    Fixed,
    /// A Secrets Manager secret whose `SecretString` is the password.
    Manager {
        client: aws_sdk_secretsmanager::Client,
        arn: String,
    },
}

#[derive(Debug)]
struct Current {
    value: Secret,
    read_at: Instant,
}

/// A password, possibly backed by Secrets Manager. Cheap to clone; clones
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
                value,
                read_at: Instant::now(),
            })),
            spacing: REFRESH_SPACING,
        }
    }
}

impl Password {
    /// Reads the secret `arn` now (cold start).
    pub async fn from_secrets_manager(
        client: aws_sdk_secretsmanager::Client,
        arn: impl Into<String>,
    ) -> Result<Self, StoreError> {
        let arn = arn.into();
        let value = read(&client, &arn).await?;
        Ok(Self {
            source: Arc::new(Source::Manager { client, arn }),
            current: Arc::new(RwLock::new(Current {
                value,
                read_at: Instant::now(),
            })),
            spacing: REFRESH_SPACING,
        })
    }

    /// Changes the shortest time between two reads (tests).
    pub fn with_refresh_spacing(mut self, spacing: Duration) -> Self {
        self.spacing = spacing;
        self
    }

    /// The password as last read.
    pub async fn current(&self) -> Secret {
        self.current.read().await.value.clone()
    }

    /// Reads the secret again if it was last read more than
    /// [`REFRESH_SPACING`] ago; `true` when the value changed (worth trying
    /// the refused request again).
    pub async fn refresh(&self) -> bool {
        let Source::Manager { client, arn } = self.source.as_ref() else {
            return false;
        };
        let mut current = self.current.write().await;
        if current.read_at.elapsed() < self.spacing {
            return false;
        }
        current.read_at = Instant::now();
        match read(client, arn).await {
            Ok(value) if value.expose() != current.value.expose() => {
                tracing::info!("password secret changed; using the new value");
                current.value = value;
                true
            }
            Ok(_) => false,
            Err(e) => {
                tracing::warn!(error = %e, "could not re-read the password secret");
                false
            }
        }
    }
}

async fn read(client: &aws_sdk_secretsmanager::Client, arn: &str) -> Result<Secret, StoreError> {
    let out = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| {
            StoreError::new(
                "read a password secret",
                aws_sdk_secretsmanager::error::DisplayErrorContext(e),
            )
        })?;
    out.secret_string()
        .filter(|s| !s.is_empty())
        .map(Secret::new)
        .ok_or_else(|| StoreError::new("read a password secret", "the secret has no SecretString"))
}
