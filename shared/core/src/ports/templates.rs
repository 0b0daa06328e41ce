//! Saved Quick Messages.

use async_trait::async_trait;

use crate::domain::error::StoreError;
use crate::domain::template::QuickMessage;

/// Saved Quick Messages of a practice.
#[async_trait]
pub trait TemplateStore: Send + Sync {
    /// Creates or replaces a template.
    async fn put_template(
        &self,
        practice_id: &str,
        template: &QuickMessage,
    ) -> Result<(), StoreError>;
    /// A template by id.
    async fn get_template(
        &self,
        practice_id: &str,
        template_id: &str,
    ) -> Result<Option<QuickMessage>, StoreError>;
    /// Deletes a template; `false` when there was none.
    async fn delete_template(
        &self,
        practice_id: &str,
        template_id: &str,
    ) -> Result<bool, StoreError>;
    /// A page of templates in id order, after the position `after` (an id).
    /// Returns the page and the position to continue from, if any.
    async fn list_templates(
        &self,
        practice_id: &str,
        limit: u32,
        after: Option<&str>,
    ) -> Result<(Vec<QuickMessage>, Option<String>), StoreError>;
}
