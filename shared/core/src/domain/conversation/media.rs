//! Pictures and files patients send: as stored, as shown, and the job that
//! copies them from the carrier into the practice's storage.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::phone::PhoneNumber;

/// Where a picture or file a patient sent stands: the carrier's link
/// expires, so it is copied into the practice's own storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaStatus {
    /// Being copied from the carrier.
    Copying,
    /// Copied; readable at its storage key.
    Ready,
    /// Could not be copied (link expired, too large, carrier error).
    Failed,
}

/// A picture or file attached to an inbound text, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaItem {
    /// The carrier's link; needs the carrier's credentials and expires, so
    /// it is kept for the copy and never shown (see [`MediaItem::view`]).
    pub carrier_url: String,
    /// MIME type the carrier reported (`image/jpeg`).
    pub content_type: String,
    #[allow(missing_docs)]
    pub status: MediaStatus,
    /// Where the copy lives (or will) in the practice's storage; chosen on
    /// receipt so a retried copy writes the same object.
    pub storage_key: String,
}

/// A [`MediaItem`] as the API shows it: without the carrier's link, and
/// with a time-limited link to the copy once it is ready
/// (`{"url", "content_type", "status", "expires_at"}`).
///
/// [`MediaItem::view`] leaves `url` and `expires_at` null; the function
/// serving the thread fills them in for ready items
/// (`app::media::link_media`) with links that are fresh on every read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MediaView {
    /// A link to the copy, null until it is ready.
    pub url: Option<String>,
    #[allow(missing_docs)]
    pub content_type: String,
    #[allow(missing_docs)]
    pub status: MediaStatus,
    /// When `url` stops working; null with it.
    pub expires_at: Option<DateTime<Utc>>,
    /// Where the copy lives; never shown (the link is).
    #[serde(skip)]
    pub storage_key: String,
}

impl MediaItem {
    /// An attachment just received, to be copied to `storage_key`.
    pub fn new(
        carrier_url: impl Into<String>,
        content_type: impl Into<String>,
        storage_key: impl Into<String>,
    ) -> Self {
        MediaItem {
            carrier_url: carrier_url.into(),
            content_type: content_type.into(),
            status: MediaStatus::Copying,
            storage_key: storage_key.into(),
        }
    }

    /// What the API may show of it.
    pub fn view(&self) -> MediaView {
        MediaView {
            url: None,
            content_type: self.content_type.clone(),
            status: self.status,
            expires_at: None,
            storage_key: self.storage_key.clone(),
        }
    }
}

/// A job to copy one attachment of an inbound text from the carrier into
/// the practice's storage: what the media queue carries (ids and links,
/// never the file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaCopyJob {
    #[allow(missing_docs)]
    pub practice_id: String,
    /// The patient's number (the thread the entry is in).
    pub phone: PhoneNumber,
    /// The entry's [`ThreadItem::position`](super::ThreadItem::position).
    pub position: String,
    /// Which attachment of the entry.
    pub index: usize,
    /// Where the carrier keeps it (needs the carrier's credentials).
    pub carrier_url: String,
    /// Where the copy goes.
    pub storage_key: String,
    #[allow(missing_docs)]
    pub content_type: String,
}
