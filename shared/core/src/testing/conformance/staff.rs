//! Staff accounts, sessions and failed sign-ins.

use chrono::Duration;

use super::{ids, now, Store};
use crate::app::auth::hash_key;
use crate::ports::StaffCreated;

fn staff_member(practice_id: &str, user: &str) -> crate::domain::staff::StaffMember {
    crate::domain::staff::StaffMember {
        practice_id: practice_id.to_string(),
        staff_id: crate::domain::staff::new_staff_id(),
        user: user.to_string(),
        name: "Dana Front Desk".into(),
        role: crate::domain::staff::StaffRole::Staff,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        created_at: now(),
    }
}

/// A random sign-in name (names are global on DynamoDB).
fn user_name() -> String {
    format!("user-{}", uuid::Uuid::new_v4().simple())
}

/// An account takes its sign-in name for the whole deployment, until it is
/// deleted; updates keep the name; a practice lists only its own accounts.
pub async fn staff_accounts_take_their_user_name_once<S: Store>(store: S, practice_id: &str) {
    let user = user_name();
    let dana = staff_member(practice_id, &user);
    assert_eq!(
        store.create_staff(&dana).await.unwrap(),
        StaffCreated::Created
    );
    let other_practice = format!("{practice_id}-other");
    let taken = staff_member(&other_practice, &user);
    assert_eq!(
        store.create_staff(&taken).await.unwrap(),
        StaffCreated::UserTaken
    );
    assert!(store.list_staff(&other_practice).await.unwrap().is_empty());
    assert_eq!(
        store.staff_for_user(&user).await.unwrap(),
        Some(dana.clone())
    );
    assert_eq!(
        store.get_staff(practice_id, &dana.staff_id).await.unwrap(),
        Some(dana.clone())
    );
    assert_eq!(
        store
            .get_staff(&other_practice, &dana.staff_id)
            .await
            .unwrap(),
        None
    );

    let mut renamed = dana.clone();
    renamed.name = "Dana R.".into();
    renamed.role = crate::domain::staff::StaffRole::Admin;
    renamed.user = "ignored-on-update".into();
    assert!(store.update_staff(&renamed).await.unwrap());
    let stored = store.staff_for_user(&user).await.unwrap().unwrap();
    assert_eq!(
        (stored.name.as_str(), stored.role, stored.user.as_str()),
        (
            "Dana R.",
            crate::domain::staff::StaffRole::Admin,
            user.as_str()
        )
    );
    assert!(!store
        .update_staff(&staff_member(practice_id, &user_name()))
        .await
        .unwrap());

    let lee = staff_member(practice_id, &user_name());
    store.create_staff(&lee).await.unwrap();
    let mut listed = ids(&store.list_staff(practice_id).await.unwrap(), |m| {
        m.staff_id.as_str()
    });
    listed.sort();
    let mut expected = vec![dana.staff_id.clone(), lee.staff_id.clone()];
    expected.sort();
    assert_eq!(listed, expected);

    assert!(!store
        .delete_staff(&other_practice, &dana.staff_id)
        .await
        .unwrap());
    assert!(store
        .delete_staff(practice_id, &dana.staff_id)
        .await
        .unwrap());
    assert!(!store
        .delete_staff(practice_id, &dana.staff_id)
        .await
        .unwrap());
    assert_eq!(store.staff_for_user(&user).await.unwrap(), None);
    assert_eq!(
        store.create_staff(&taken).await.unwrap(),
        StaffCreated::Created,
        "the name is free again"
    );
}

fn session_of(
    member: &crate::domain::staff::StaffMember,
    expires_in: Duration,
) -> crate::domain::staff::Session {
    crate::domain::staff::Session {
        token_hash: hash_key(&uuid::Uuid::new_v4().to_string()),
        practice_id: member.practice_id.clone(),
        staff_id: member.staff_id.clone(),
        name: member.name.clone(),
        role: member.role,
        created_at: now(),
        expires_at: now() + expires_in,
    }
}

/// A session is found by its token's digest; it ends alone, with all its staff member's
/// sessions, or with the account.
pub async fn sessions_are_read_by_digest_and_ended_alone_or_by_staff_member<S: Store>(
    store: S,
    practice_id: &str,
) {
    let dana = staff_member(practice_id, &user_name());
    let lee = staff_member(practice_id, &user_name());
    store.create_staff(&dana).await.unwrap();
    store.create_staff(&lee).await.unwrap();
    let first = session_of(&dana, Duration::hours(12));
    let second = session_of(&dana, Duration::hours(12));
    let expired = session_of(&dana, Duration::seconds(-1));
    let lees = session_of(&lee, Duration::hours(12));
    for s in [&first, &second, &expired, &lees] {
        store.create_session(s).await.unwrap();
    }
    assert_eq!(
        store.get_session(&first.token_hash).await.unwrap(),
        Some(first.clone())
    );
    // An expired session may still be read (DynamoDB's TTL deletes it some
    // time later; the emulator sooner): callers check `expires_at`.
    assert!(store
        .get_session(&expired.token_hash)
        .await
        .unwrap()
        .is_none_or(|s| !s.is_live(now())));
    assert_eq!(store.get_session(&hash_key("nobody")).await.unwrap(), None);

    store.delete_session(&first.token_hash).await.unwrap();
    store.delete_session(&first.token_hash).await.unwrap();
    assert_eq!(store.get_session(&first.token_hash).await.unwrap(), None);
    assert!(store
        .get_session(&second.token_hash)
        .await
        .unwrap()
        .is_some());

    store
        .delete_sessions_of(practice_id, &dana.staff_id)
        .await
        .unwrap();
    assert_eq!(store.get_session(&second.token_hash).await.unwrap(), None);
    assert_eq!(store.get_session(&expired.token_hash).await.unwrap(), None);
    assert!(store.get_session(&lees.token_hash).await.unwrap().is_some());

    store
        .delete_staff(practice_id, &lee.staff_id)
        .await
        .unwrap();
    assert_eq!(store.get_session(&lees.token_hash).await.unwrap(), None);
}

/// Failures count up within their window, start again after it, and are
/// forgotten when cleared; each key on its own.
/// A burst of concurrent failures (the first of a window among them) is
/// counted once each: every caller sees its own count, 1 to n.
pub async fn a_burst_of_login_failures_is_counted_once_each<S: Store + Clone + 'static>(
    store: S,
    _practice_id: &str,
) {
    let key = hash_key(&user_name());
    let at = now();
    let burst: Vec<_> = (0..12)
        .map(|_| {
            let (store, key) = (store.clone(), key.clone());
            tokio::spawn(async move { store.record_login_failure(&key, at).await.unwrap() })
        })
        .collect();
    let mut counts = Vec::new();
    for counted in burst {
        counts.push(counted.await.unwrap().failures);
    }
    counts.sort_unstable();
    assert_eq!(counts, (1..=12).collect::<Vec<u32>>());
    assert_eq!(
        store
            .login_failures(&key)
            .await
            .unwrap()
            .map(|f| f.failures),
        Some(12)
    );
}

pub async fn login_failures_count_within_their_window_and_restart_after_it<S: Store>(
    store: S,
    _practice_id: &str,
) {
    let key = hash_key(&user_name());
    let other = hash_key(&user_name());
    assert_eq!(store.login_failures(&key).await.unwrap(), None);
    let start = now();
    let first = store.record_login_failure(&key, start).await.unwrap();
    assert_eq!((first.failures, first.window_started_at), (1, start));
    let second = store
        .record_login_failure(&key, start + Duration::minutes(5))
        .await
        .unwrap();
    assert_eq!((second.failures, second.window_started_at), (2, start));
    assert_eq!(store.login_failures(&key).await.unwrap(), Some(second));
    assert_eq!(store.login_failures(&other).await.unwrap(), None);

    let later = start + crate::domain::staff::FAILURE_WINDOW;
    let restarted = store.record_login_failure(&key, later).await.unwrap();
    assert_eq!(
        (restarted.failures, restarted.window_started_at),
        (1, later)
    );

    store.clear_login_failures(&key).await.unwrap();
    assert_eq!(store.login_failures(&key).await.unwrap(), None);
}
