//! The media copier's configuration.

use super::carrier::{carrier_access, CarrierConfig};
use super::{Env, FromEnv, HttpUrl};

/// The media copier (the media-queue consumer): downloads attachments from
/// the carrier into the media bucket.
#[derive(Debug, Clone)]
pub struct MediaCopierConfig {
    /// `TABLE_NAME`.
    pub table_name: String,
    /// `MEDIA_BUCKET`.
    pub media_bucket: String,
    /// `MEDIA_QUEUE_URL`: its own queue (retry pauses).
    pub media_queue_url: HttpUrl,
    /// The `CARRIER_*` settings, as the dispatcher's; downloads name no
    /// messaging application, so `CARRIER_APPLICATION_ID` is not read (and
    /// is empty here).
    pub carrier: CarrierConfig,
}

impl FromEnv for MediaCopierConfig {
    fn read<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Self {
        let table_name = env.required("TABLE_NAME");
        let media_bucket = env.required("MEDIA_BUCKET");
        let media_queue_url = env.url("MEDIA_QUEUE_URL");
        let account_id = env.required("CARRIER_ACCOUNT_ID");
        let (api_url, username, password, timeout) = carrier_access(env);
        Self {
            table_name,
            media_bucket,
            media_queue_url,
            carrier: CarrierConfig {
                api_url,
                account_id,
                application_id: String::new(),
                username,
                password,
                timeout,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{vars, QUEUE_URL};
    use super::super::DispatcherConfig;
    use super::*;
    use messaging_core::domain::secret::Secret;

    #[test]
    fn the_media_copier_reads_its_bucket_queue_and_carrier_access() {
        let vars_ok = [
            ("TABLE_NAME", "messaging"),
            ("MEDIA_BUCKET", "stack-media"),
            ("MEDIA_QUEUE_URL", QUEUE_URL),
            ("CARRIER_ACCOUNT_ID", "9900000"),
            ("CARRIER_USERNAME", "api-user"),
            ("CARRIER_PASSWORD", "carrier-s3cret-pw"),
            ("CARRIER_API_URL", "http://127.0.0.1:4599/api/v2"),
        ];
        let c = MediaCopierConfig::from_lookup(vars(&vars_ok)).unwrap();
        assert_eq!(c.media_bucket, "stack-media");
        assert_eq!(c.media_queue_url.as_str(), QUEUE_URL);
        let b = c.carrier.bandwidth(Secret::new("resolved").into());
        assert_eq!(b.api_url, "http://127.0.0.1:4599/api/v2");
        assert_eq!(
            (b.account_id.as_str(), b.username.as_str()),
            ("9900000", "api-user")
        );
        assert_eq!(b.timeout, DispatcherConfig::DEFAULT_CARRIER_TIMEOUT);
        assert!(!format!("{c:?}").contains("carrier-s3cret-pw"));

        let e = MediaCopierConfig::from_lookup(vars(&[("MEDIA_QUEUE_URL", "queue")])).unwrap_err();
        assert_eq!(
            e.missing,
            vec![
                "TABLE_NAME",
                "MEDIA_BUCKET",
                "CARRIER_ACCOUNT_ID",
                "CARRIER_USERNAME",
                "CARRIER_PASSWORD"
            ]
        );
        assert_eq!(e.malformed[0].name, "MEDIA_QUEUE_URL");
    }
}
