//! Saved Quick Messages, in memory.

use async_trait::async_trait;

use crate::domain::error::StoreError;
use crate::domain::template::QuickMessage;
use crate::ports::TemplateStore;

use super::MemoryStore;

#[async_trait]
impl TemplateStore for MemoryStore {
    async fn put_template(
        &self,
        practice_id: &str,
        template: &QuickMessage,
    ) -> Result<(), StoreError> {
        self.0.lock().await.templates.insert(
            (practice_id.to_string(), template.id.clone()),
            template.clone(),
        );
        Ok(())
    }
    async fn get_template(
        &self,
        practice_id: &str,
        template_id: &str,
    ) -> Result<Option<QuickMessage>, StoreError> {
        let s = self.0.lock().await;
        Ok(s.templates
            .get(&(practice_id.to_string(), template_id.to_string()))
            .cloned())
    }
    async fn delete_template(
        &self,
        practice_id: &str,
        template_id: &str,
    ) -> Result<bool, StoreError> {
        let mut s = self.0.lock().await;
        Ok(s.templates
            .remove(&(practice_id.to_string(), template_id.to_string()))
            .is_some())
    }
    async fn list_templates(
        &self,
        practice_id: &str,
        limit: u32,
        after: Option<&str>,
    ) -> Result<(Vec<QuickMessage>, Option<String>), StoreError> {
        let s = self.0.lock().await;
        let mut all: Vec<QuickMessage> = s
            .templates
            .iter()
            .filter(|((p, id), _)| p == practice_id && after.is_none_or(|a| id.as_str() > a))
            .map(|(_, t)| t.clone())
            .collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        let more = all.len() > limit as usize;
        all.truncate(limit as usize);
        let next = more.then(|| all.last().map(|t| t.id.clone())).flatten();
        Ok((all, next))
    }
}
