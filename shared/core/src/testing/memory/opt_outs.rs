//! Opt-outs and their audit trail, in memory.

use async_trait::async_trait;

use crate::domain::error::StoreError;
use crate::domain::events::{self};
use crate::ports::{OptOutChange, OptOutStore};

use super::MemoryStore;

#[async_trait]
impl OptOutStore for MemoryStore {
    async fn is_opted_out(&self, practice_id: &str, phone: &str) -> Result<bool, StoreError> {
        let s = self.0.lock().await;
        Ok(s.opt_outs
            .get(&(practice_id.to_string(), phone.to_string()))
            .copied()
            .unwrap_or(false))
    }
    async fn record_opt_out(&self, change: &OptOutChange) -> Result<(), StoreError> {
        let mut s = self.0.lock().await;
        let was = s
            .opt_outs
            .insert(
                (change.practice_id.clone(), change.phone.clone()),
                change.opted_out,
            )
            .unwrap_or(false);
        if was != change.opted_out {
            s.record_event(events::opt_change(
                &change.practice_id,
                &change.phone,
                change.opted_out,
                &change.source,
                change.at,
            ));
        }
        s.opt_audit.push(change.clone());
        Ok(())
    }
    async fn opted_out_among(
        &self,
        practice_id: &str,
        phones: &[String],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let s = self.0.lock().await;
        Ok(phones
            .iter()
            .filter(|phone| {
                s.opt_outs
                    .get(&(practice_id.to_string(), (*phone).clone()))
                    .copied()
                    .unwrap_or(false)
            })
            .cloned()
            .collect())
    }
    async fn practice_for_number(&self, number: &str) -> Result<Option<String>, StoreError> {
        let s = self.0.lock().await;
        Ok(s.practices
            .values()
            .find(|p| {
                p.channels.sms_main.as_str() == number
                    || p.channels
                        .sms_alt
                        .as_ref()
                        .is_some_and(|a| a.as_str() == number)
            })
            .map(|p| p.practice_id.clone()))
    }
}
