//! Saved Quick Messages.

use chrono::Duration;

use super::{ids, now, Store};
use crate::domain::template::QuickMessage;

/// Quick Messages: stored whole, replaced, listed in id order in pages,
/// deleted once.
pub async fn templates_round_trip_page_and_delete<S: Store>(store: S, practice_id: &str) {
    let at = now();
    let templates: Vec<QuickMessage> = (1..=5)
        .map(|i| QuickMessage {
            id: format!("0190-{i:02}"),
            name: format!("Template {i}"),
            body: format!("Hi {{first_name}}, reminder {i}"),
            created_at: at,
            updated_at: at,
        })
        .collect();
    for t in templates.iter().rev() {
        store.put_template(practice_id, t).await.unwrap();
    }
    assert_eq!(
        store.get_template(practice_id, "0190-02").await.unwrap(),
        Some(templates[1].clone())
    );
    assert_eq!(store.get_template(practice_id, "nope").await.unwrap(), None);

    let (page, next) = store.list_templates(practice_id, 2, None).await.unwrap();
    assert_eq!(page, templates[..2].to_vec());
    assert_eq!(next.as_deref(), Some("0190-02"));
    let (page, next) = store
        .list_templates(practice_id, 2, next.as_deref())
        .await
        .unwrap();
    assert_eq!(ids(&page, |t| &t.id), ["0190-03", "0190-04"]);
    let (page, next) = store
        .list_templates(practice_id, 2, next.as_deref())
        .await
        .unwrap();
    assert_eq!(
        (ids(&page, |t| &t.id), next),
        (vec!["0190-05".into()], None)
    );

    let mut changed = templates[2].clone();
    changed.name = "Running late".into();
    changed.updated_at = at + Duration::minutes(1);
    store.put_template(practice_id, &changed).await.unwrap();
    assert_eq!(
        store.get_template(practice_id, "0190-03").await.unwrap(),
        Some(changed)
    );

    assert!(store.delete_template(practice_id, "0190-03").await.unwrap());
    assert!(!store.delete_template(practice_id, "0190-03").await.unwrap());
    assert_eq!(
        store.get_template(practice_id, "0190-03").await.unwrap(),
        None
    );
    let (page, next) = store.list_templates(practice_id, 10, None).await.unwrap();
    assert_eq!(
        (ids(&page, |t| &t.id), next),
        (
            vec![
                "0190-01".into(),
                "0190-02".into(),
                "0190-04".into(),
                "0190-05".into()
            ],
            None
        )
    );
    assert!(store
        .list_templates(&format!("{practice_id}-other"), 10, None)
        .await
        .unwrap()
        .0
        .is_empty());
}
