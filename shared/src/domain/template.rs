//! Quick Messages: saved texts with merge fields (the seed's "Load a Quick Message").

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A saved Quick Message, as stored and as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuickMessage {
    /// Id given by the API.
    pub id: String,
    /// What the office calls it ("Running late").
    pub name: String,
    /// The text, with merge fields.
    pub body: String,
    /// When it was saved first.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}
