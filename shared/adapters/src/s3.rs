//! The media bucket on S3: copies of the attachments patients text in,
//! written by the media copier and read only through pre-signed links.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use chrono::{DateTime, Utc};

use messaging_core::domain::error::StoreError;
use messaging_core::ports::{MediaLinks, MediaStorage};

/// An S3 client for `sdk`. When an endpoint is configured (the local
/// cloud's `AWS_ENDPOINT_URL`), objects are addressed path-style
/// (`{endpoint}/{bucket}/{key}`): an emulator on `127.0.0.1` has no
/// per-bucket host names. On AWS the default (virtual-hosted) applies.
pub fn client(sdk: &crate::aws::SdkConfig) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(sdk.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// The media bucket.
#[derive(Debug, Clone)]
pub struct S3Media {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Media {
    /// Wraps a client (see [`client`]) and the bucket's name.
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }
}

#[async_trait]
impl MediaStorage for S3Media {
    async fn put(&self, key: &str, content_type: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| {
                StoreError::new("store media", aws_sdk_s3::error::DisplayErrorContext(e))
            })?;
        Ok(())
    }
}

#[async_trait]
impl MediaLinks for S3Media {
    /// A SigV4 query-signed `GetObject` URL. Signing is local (no request to
    /// S3); the link works as long as the signer may `s3:GetObject` and its
    /// credentials are valid (on Lambda, the role's session: a link outlives
    /// neither `expires_in` nor that session).
    async fn presigned_get(
        &self,
        key: &str,
        expires_in: Duration,
    ) -> Result<(String, DateTime<Utc>), StoreError> {
        let start = SystemTime::now();
        let presigning = PresigningConfig::builder()
            .start_time(start)
            .expires_in(expires_in)
            .build()
            .map_err(|e| StoreError::new("sign media link", e))?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(presigning)
            .await
            .map_err(|e| {
                StoreError::new("sign media link", aws_sdk_s3::error::DisplayErrorContext(e))
            })?;
        let expires_at = DateTime::<Utc>::from(start + expires_in);
        Ok((request.uri().to_string(), expires_at))
    }
}
