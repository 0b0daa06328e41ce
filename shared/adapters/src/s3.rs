//! The media bucket on S3: copies of the attachments patients text in,
//! written by the media copier and read only through pre-signed links.
//!
//! Two operations, `PutObject` and a pre-signed `GetObject` link, signed
//! here with SigV4 by `aws-sigv4` (the signer the AWS SDK itself uses) and
//! sent through the one HTTP stack (reqwest over rustls). The generated S3 SDK crate
//! is not linked: for these two calls it brought the SDK's S3 endpoint
//! rules, XML protocol and flexible-checksum tables (about 1 MB of every
//! binary that stores or links media; docs/measurements.md, "Cold start").
//! The signatures are checked against the examples AWS documents for S3
//! (tests below), and the calls against the local cloud's S3.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest,
    SignatureLocation, SigningSettings, UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use chrono::{DateTime, Utc};

use crate::aws::SdkConfig;
use crate::retry::Backoff;
use messaging_core::domain::error::StoreError;
use messaging_core::ports::{MediaLinks, MediaStorage};

/// How long one `PutObject` may take (an attachment is at most a few MB).
const PUT_TIMEOUT: Duration = Duration::from_secs(30);

/// Three tries of a `PutObject` that failed in transit or with a 5xx or
/// 429 (S3's `SlowDown`), like the SDK's standard retries.
const PUT_RETRY: Backoff = Backoff {
    attempts: 3,
    first: Duration::from_millis(100),
    max: Duration::from_secs(2),
    jitter: Duration::from_millis(100),
};

/// The media bucket.
#[derive(Debug, Clone)]
pub struct S3Media {
    http: reqwest::Client,
    credentials: Option<SharedCredentialsProvider>,
    region: String,
    /// Where the bucket's objects are: `https://{bucket}.s3.{region}.amazonaws.com`
    /// on AWS (virtual-hosted), `{endpoint}/{bucket}` when an endpoint is
    /// configured (the local cloud's `AWS_ENDPOINT_URL`: an emulator on
    /// `127.0.0.1` has no per-bucket host names).
    bucket_url: String,
}

impl S3Media {
    /// The bucket `bucket`, reached with `sdk`'s region, credentials and
    /// endpoint.
    pub fn new(sdk: &SdkConfig, bucket: impl Into<String>) -> Self {
        let bucket = bucket.into();
        let region = sdk
            .region()
            .map_or_else(|| "us-east-1".to_string(), ToString::to_string);
        let bucket_url = match sdk.endpoint_url() {
            Some(endpoint) => format!("{}/{bucket}", endpoint.trim_end_matches('/')),
            None => format!("https://{bucket}.s3.{region}.amazonaws.com"),
        };
        Self {
            http: crate::aws::reqwest_client(),
            credentials: sdk.credentials_provider(),
            region,
            bucket_url,
        }
    }

    fn object_url(&self, key: &str) -> String {
        format!("{}/{}", self.bucket_url, encode_key(key))
    }

    async fn identity(&self, op: &'static str) -> Result<Identity, StoreError> {
        let provider = self
            .credentials
            .as_ref()
            .ok_or_else(|| StoreError::new(op, "no AWS credentials are configured"))?;
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|e| StoreError::new(op, e))?;
        Ok(credentials.into())
    }

    async fn put_once(
        &self,
        url: &str,
        content_type: &str,
        bytes: &[u8],
    ) -> Result<(), (bool, StoreError)> {
        let identity = self.identity("store media").await.map_err(|e| (false, e))?;
        let headers = signed_put_headers(
            url,
            &[("content-type", content_type)],
            bytes,
            &identity,
            &self.region,
            SystemTime::now(),
        )
        .map_err(|e| (false, StoreError::new("sign media upload", e)))?;
        let mut request = self
            .http
            .put(url)
            .timeout(PUT_TIMEOUT)
            .header("content-type", content_type)
            .body(bytes.to_vec());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        crate::aws::metering::count_as("s3:PUT");
        let response = request.send().await.map_err(|e| {
            let transient = e.is_timeout() || e.is_connect() || e.is_request();
            (transient, StoreError::new("store media", e))
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        let transient = status.is_server_error() || status.as_u16() == 429;
        Err((
            transient,
            StoreError::new(
                "store media",
                format!(
                    "S3 answered {status}: {}",
                    xml_element(&body, "Code").unwrap_or("no error code")
                ),
            ),
        ))
    }
}

#[async_trait]
impl MediaStorage for S3Media {
    async fn put(&self, key: &str, content_type: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        let url = self.object_url(key);
        PUT_RETRY
            .run(
                |_| self.put_once(&url, content_type, &bytes),
                |(transient, e), attempt| {
                    if *transient {
                        tracing::warn!(attempt, error = %e, "media upload failed; trying again");
                    }
                    *transient
                },
            )
            .await
            .map_err(|(_, e)| e)
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
        now: DateTime<Utc>,
    ) -> Result<(String, DateTime<Utc>), StoreError> {
        let start = SystemTime::from(now);
        let identity = self.identity("sign media link").await?;
        let url = presigned_get_url(
            &self.object_url(key),
            &identity,
            &self.region,
            start,
            expires_in,
        )
        .map_err(|e| StoreError::new("sign media link", e))?;
        Ok((url, DateTime::<Utc>::from(start + expires_in)))
    }
}

/// S3's signing rules: the path is signed as sent (encoded once, not
/// normalised), and a signed request carries its payload's SHA-256.
fn s3_settings(location: SignatureLocation) -> SigningSettings {
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.signature_location = location;
    // A link is signed with `UNSIGNED-PAYLOAD` (no header), as S3 expects.
    settings.payload_checksum_kind = if location == SignatureLocation::Headers {
        PayloadChecksumKind::XAmzSha256
    } else {
        PayloadChecksumKind::NoHeader
    };
    settings
}

type SignError = Box<dyn std::error::Error + Send + Sync>;

fn signing_params<'a>(
    identity: &'a Identity,
    region: &'a str,
    time: SystemTime,
    settings: SigningSettings,
) -> Result<aws_sigv4::http_request::SigningParams<'a>, SignError> {
    Ok(v4::SigningParams::builder()
        .identity(identity)
        .region(region)
        .name("s3")
        .time(time)
        .settings(settings)
        .build()?
        .into())
}

/// The headers that sign a `PUT` of `body` to `url` with `headers`
/// (`authorization`, `x-amz-date`, `x-amz-content-sha256`, and
/// `x-amz-security-token` with temporary credentials).
fn signed_put_headers(
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    identity: &Identity,
    region: &str,
    time: SystemTime,
) -> Result<Vec<(&'static str, String)>, SignError> {
    let params = signing_params(
        identity,
        region,
        time,
        s3_settings(SignatureLocation::Headers),
    )?;
    let request = SignableRequest::new(
        "PUT",
        url,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )?;
    let (instructions, _) = sign(request, &params)?.into_parts();
    let (headers, _) = instructions.into_parts();
    Ok(headers
        .into_iter()
        .map(|h| (h.name(), h.value().to_string()))
        .collect())
}

/// `url` with the query that lets anyone holding it `GET` it until
/// `time + expires_in`.
fn presigned_get_url(
    url: &str,
    identity: &Identity,
    region: &str,
    time: SystemTime,
    expires_in: Duration,
) -> Result<String, SignError> {
    let mut settings = s3_settings(SignatureLocation::QueryParams);
    settings.expires_in = Some(expires_in);
    let params = signing_params(identity, region, time, settings)?;
    let request = SignableRequest::new(
        "GET",
        url,
        std::iter::empty(),
        SignableBody::UnsignedPayload,
    )?;
    let (instructions, _) = sign(request, &params)?.into_parts();
    let (_, query) = instructions.into_parts();
    let query: Vec<String> = query
        .iter()
        .map(|(name, value): &(&str, Cow<'_, str>)| format!("{name}={}", uri_encode(value, false)))
        .collect();
    Ok(format!("{url}?{}", query.join("&")))
}

/// An object key as a URL path: every byte but the unreserved characters
/// (and `/`, which separates the key's parts) percent-encoded, as S3's
/// canonical URI has it.
fn encode_key(key: &str) -> String {
    uri_encode(key, true)
}

fn uri_encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(byte));
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// The text of the first `<name>` element of an S3 error document.
fn xml_element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(&xml[start..end])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;

    /// The credentials and the moment of AWS's S3 signing examples
    /// ("Authenticating Requests (AWS Signature Version 4)", Amazon S3 API
    /// reference): 2013-05-24T00:00:00Z, us-east-1, `examplebucket`.
    fn example() -> (Identity, SystemTime) {
        let credentials = Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "example",
        );
        (
            credentials.into(),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600),
        )
    }

    #[test]
    fn a_link_is_signed_as_in_the_documented_presigned_get_example() {
        let (identity, at) = example();
        let url = presigned_get_url(
            "https://examplebucket.s3.amazonaws.com/test.txt",
            &identity,
            "us-east-1",
            at,
            Duration::from_secs(86_400),
        )
        .expect("signed");
        let (base, query) = url.split_once('?').expect("a query");
        assert_eq!(base, "https://examplebucket.s3.amazonaws.com/test.txt");
        let mut params: Vec<&str> = query.split('&').collect();
        params.sort_unstable();
        assert_eq!(
            params,
            [
                "X-Amz-Algorithm=AWS4-HMAC-SHA256",
                "X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request",
                "X-Amz-Date=20130524T000000Z",
                "X-Amz-Expires=86400",
                "X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
                "X-Amz-SignedHeaders=host",
            ]
        );
    }

    #[test]
    fn an_upload_is_signed_as_in_the_documented_put_object_example() {
        let (identity, at) = example();
        // The key `test$file.text`: `$` is sent, and signed, encoded.
        let url = format!(
            "https://examplebucket.s3.amazonaws.com/{}",
            encode_key("test$file.text")
        );
        assert_eq!(
            url,
            "https://examplebucket.s3.amazonaws.com/test%24file.text"
        );
        let headers = signed_put_headers(
            &url,
            &[
                ("date", "Fri, 24 May 2013 00:00:00 GMT"),
                ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ],
            b"Welcome to Amazon S3.",
            &identity,
            "us-east-1",
            at,
        )
        .expect("signed");
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
                .unwrap_or_else(|| panic!("no {name} in {headers:?}"))
        };
        assert_eq!(
            header("x-amz-content-sha256"),
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
        );
        assert_eq!(header("x-amz-date"), "20130524T000000Z");
        let authorization = header("authorization").replace(", ", ",");
        assert_eq!(
            authorization,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,\
             SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,\
             Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
        );
    }

    #[test]
    fn temporary_credentials_sign_their_session_token_into_a_link() {
        let credentials = Credentials::new("AKID", "secret", Some("tok/en+=".into()), None, "t");
        let identity: Identity = credentials.into();
        let url = presigned_get_url(
            "http://127.0.0.1:4566/media/p%20x/a.png",
            &identity,
            "us-east-1",
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            Duration::from_secs(600),
        )
        .expect("signed");
        assert!(
            url.starts_with("http://127.0.0.1:4566/media/p%20x/a.png?"),
            "{url}"
        );
        assert!(url.contains("X-Amz-Security-Token=tok%2Fen%2B%3D"), "{url}");
        assert!(url.contains("X-Amz-Expires=600"), "{url}");
    }

    #[test]
    fn keys_are_encoded_as_s3_paths() {
        assert_eq!(
            encode_key("p1/conv/ab-c_d.e~f.png"),
            "p1/conv/ab-c_d.e~f.png"
        );
        assert_eq!(encode_key("a b+c/é"), "a%20b%2Bc/%C3%A9");
    }

    #[test]
    fn an_s3_error_names_its_code() {
        let xml = "<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>m</Message></Error>";
        assert_eq!(xml_element(xml, "Code"), Some("SlowDown"));
        assert_eq!(xml_element("no xml", "Code"), None);
    }

    /// An S3 stand-in on 127.0.0.1 giving `answers` in turn, one request
    /// per connection; answers the bucket's endpoint and the requests it saw.
    async fn scripted_s3(
        answers: &'static [&'static str],
    ) -> (SdkConfig, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            for answer in answers {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let mut buf = vec![0u8; 16384];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                log.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf[..n]).to_string());
                socket.write_all(answer.as_bytes()).await.ok();
            }
        });
        let credentials = Credentials::new("AKID", "secret", None, None, "t");
        let sdk = crate::aws::config(
            "us-east-1".into(),
            credentials,
            Some(format!("http://127.0.0.1:{port}")),
        );
        (sdk, seen)
    }

    const SLOW_DOWN: &str = "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 44\r\n\r\n<Error><Code>SlowDown</Code></Error>        ";
    const OK: &str = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
    const DENIED: &str = "HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 42\r\n\r\n<Error><Code>AccessDenied</Code></Error>  ";

    #[tokio::test]
    async fn an_upload_is_signed_and_a_slow_down_is_tried_again() {
        let (sdk, seen) = scripted_s3(&[SLOW_DOWN, OK]).await;
        S3Media::new(&sdk, "media")
            .put("p1/a.png", "image/png", b"png".to_vec())
            .await
            .expect("stored on the second try");
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert!(
            seen[1].starts_with("PUT /media/p1/a.png HTTP/1.1"),
            "{}",
            seen[1]
        );
        let lower = seen[1].to_ascii_lowercase();
        assert!(lower.contains("authorization: aws4-hmac-sha256 credential=akid/"));
        assert!(lower.contains("x-amz-content-sha256:"));
        assert!(lower.contains("content-type: image/png"));
    }

    #[tokio::test]
    async fn a_refused_upload_is_not_tried_again_and_names_s3s_code() {
        let (sdk, seen) = scripted_s3(&[DENIED, OK]).await;
        let e = S3Media::new(&sdk, "media")
            .put("p1/a.png", "image/png", b"png".to_vec())
            .await
            .expect_err("refused");
        assert!(e.to_string().contains("AccessDenied"), "{e}");
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[test]
    fn objects_are_virtual_hosted_on_aws_and_path_style_on_an_endpoint() {
        let credentials = Credentials::new("k", "s", None, None, "t");
        let aws = crate::aws::config("eu-west-1".into(), credentials.clone(), None);
        assert_eq!(
            S3Media::new(&aws, "media-b").object_url("p/a.png"),
            "https://media-b.s3.eu-west-1.amazonaws.com/p/a.png"
        );
        let local = crate::aws::config(
            "us-east-1".into(),
            credentials,
            Some("http://127.0.0.1:4566/".into()),
        );
        assert_eq!(
            S3Media::new(&local, "media-b").object_url("p/a.png"),
            "http://127.0.0.1:4566/media-b/p/a.png"
        );
    }
}
