//! Staff accounts, sessions and failed sign-ins, in memory.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::error::StoreError;
use crate::ports::{StaffCreated, StaffStore};

use super::MemoryStore;

#[async_trait]
impl StaffStore for MemoryStore {
    async fn create_staff(
        &self,
        staff: &crate::domain::staff::StaffMember,
    ) -> Result<StaffCreated, StoreError> {
        let mut s = self.0.lock().await;
        let key = (staff.practice_id.clone(), staff.staff_id.clone());
        if s.staff_users.contains_key(&staff.user) || s.staff.contains_key(&key) {
            return Ok(StaffCreated::UserTaken);
        }
        s.staff_users.insert(staff.user.clone(), key.clone());
        s.staff.insert(key, staff.clone());
        Ok(StaffCreated::Created)
    }

    async fn update_staff(
        &self,
        staff: &crate::domain::staff::StaffMember,
    ) -> Result<bool, StoreError> {
        let mut s = self.0.lock().await;
        let key = (staff.practice_id.clone(), staff.staff_id.clone());
        match s.staff.get_mut(&key) {
            Some(stored) => {
                let user = stored.user.clone();
                *stored = staff.clone();
                stored.user = user;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn staff_for_user(
        &self,
        user: &str,
    ) -> Result<Option<crate::domain::staff::StaffMember>, StoreError> {
        let s = self.0.lock().await;
        Ok(s.staff_users
            .get(user)
            .and_then(|k| s.staff.get(k))
            .cloned())
    }

    async fn get_staff(
        &self,
        practice_id: &str,
        staff_id: &str,
    ) -> Result<Option<crate::domain::staff::StaffMember>, StoreError> {
        Ok(self
            .0
            .lock()
            .await
            .staff
            .get(&(practice_id.to_string(), staff_id.to_string()))
            .cloned())
    }

    async fn list_staff(
        &self,
        practice_id: &str,
    ) -> Result<Vec<crate::domain::staff::StaffMember>, StoreError> {
        Ok(self
            .0
            .lock()
            .await
            .staff
            .iter()
            .filter(|((p, _), _)| p == practice_id)
            .map(|(_, m)| m.clone())
            .collect())
    }

    async fn delete_staff(&self, practice_id: &str, staff_id: &str) -> Result<bool, StoreError> {
        let mut s = self.0.lock().await;
        let Some(removed) = s
            .staff
            .remove(&(practice_id.to_string(), staff_id.to_string()))
        else {
            return Ok(false);
        };
        s.staff_users.remove(&removed.user);
        s.sessions
            .retain(|_, v| !(v.practice_id == practice_id && v.staff_id == staff_id));
        Ok(true)
    }

    async fn create_session(
        &self,
        session: &crate::domain::staff::Session,
    ) -> Result<(), StoreError> {
        self.0
            .lock()
            .await
            .sessions
            .insert(session.token_hash.clone(), session.clone());
        Ok(())
    }

    async fn get_session(
        &self,
        token_hash: &str,
    ) -> Result<Option<crate::domain::staff::Session>, StoreError> {
        Ok(self.0.lock().await.sessions.get(token_hash).cloned())
    }

    async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        self.0.lock().await.sessions.remove(token_hash);
        Ok(())
    }

    async fn delete_sessions_of(
        &self,
        practice_id: &str,
        staff_id: &str,
    ) -> Result<(), StoreError> {
        self.0
            .lock()
            .await
            .sessions
            .retain(|_, v| !(v.practice_id == practice_id && v.staff_id == staff_id));
        Ok(())
    }

    async fn login_failures(
        &self,
        user: &str,
    ) -> Result<Option<crate::domain::staff::LoginFailures>, StoreError> {
        Ok(self.0.lock().await.login_failures.get(user).copied())
    }

    async fn record_login_failure(
        &self,
        user: &str,
        now: DateTime<Utc>,
    ) -> Result<crate::domain::staff::LoginFailures, StoreError> {
        let mut s = self.0.lock().await;
        let entry = s.login_failures.entry(user.to_string()).or_insert(
            crate::domain::staff::LoginFailures {
                failures: 0,
                window_started_at: now,
            },
        );
        if now >= entry.window_ends_at() {
            *entry = crate::domain::staff::LoginFailures {
                failures: 0,
                window_started_at: now,
            };
        }
        entry.failures += 1;
        Ok(*entry)
    }

    async fn clear_login_failures(&self, user: &str) -> Result<(), StoreError> {
        self.0.lock().await.login_failures.remove(user);
        Ok(())
    }
}
