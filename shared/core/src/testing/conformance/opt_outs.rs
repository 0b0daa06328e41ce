//! Opt-outs, and the practice behind a sending number.

use std::collections::HashSet;

use super::{now, phone, practice, Store};
use crate::domain::phone::PhoneNumber;
use crate::ports::OptOutChange;

/// Inbound texts find their practice through the number they were sent to.
pub async fn sending_numbers_map_to_their_practice<S: Store>(store: S, practice_id: &str) {
    let mut p = practice(practice_id);
    let (main, alt, other) = (p.channels.sms_main.clone(), phone(), phone());
    p.channels.sms_alt = Some(alt.clone());
    store.put_practice(&p).await.unwrap();
    let owner = |n: PhoneNumber| {
        let store = &store;
        async move { store.practice_for_number(n.as_str()).await.unwrap() }
    };
    assert_eq!(owner(main.clone()).await.as_deref(), Some(practice_id));
    assert_eq!(owner(alt.clone()).await.as_deref(), Some(practice_id));
    assert_eq!(owner(other.clone()).await, None);

    p.channels.sms_alt = Some(other.clone());
    store.put_practice(&p).await.unwrap();
    assert_eq!(owner(main.clone()).await.as_deref(), Some(practice_id));
    assert_eq!(
        owner(alt.clone()).await,
        None,
        "the number given up is free"
    );
    assert_eq!(owner(other.clone()).await.as_deref(), Some(practice_id));

    // Another practice cannot take a number over, as main or alt; what it
    // tried to store is not stored. A number given up is free to take.
    let second_id = format!("{practice_id}-second");
    for taken in [main.clone(), other.clone()] {
        let mut second = practice(&second_id);
        second.channels.sms_alt = Some(taken.clone());
        let e = store.put_practice(&second).await.unwrap_err();
        assert!(e.to_string().contains("belongs to another practice"), "{e}");
        assert_eq!(owner(taken).await.as_deref(), Some(practice_id));
        assert!(store.get_practice(&second_id).await.unwrap().is_none());
        assert_eq!(owner(second.channels.sms_main).await, None);
    }
    let mut second = practice(&second_id);
    second.channels.sms_alt = Some(alt.clone());
    store.put_practice(&second).await.unwrap();
    assert_eq!(owner(alt).await.as_deref(), Some(second_id.as_str()));
}

/// STOP and START per practice and number, read back singly and as the set
/// of numbers opted out.
pub async fn opt_outs_are_per_practice_and_reversible<S: Store>(store: S, practice_id: &str) {
    let other = format!("{practice_id}-other");
    let (first, second) = (phone(), phone());
    let change = |practice: &str, phone: &PhoneNumber, opted_out: bool| OptOutChange {
        practice_id: practice.to_string(),
        phone: phone.to_string(),
        opted_out,
        keyword: if opted_out { "STOP" } else { "START" }.into(),
        source: "sms".into(),
        at: now(),
    };
    let opted_out = |practice: String, phone: PhoneNumber| {
        let store = &store;
        async move { store.is_opted_out(&practice, phone.as_str()).await.unwrap() }
    };
    assert!(!opted_out(practice_id.into(), first.clone()).await);
    let asked = [first.to_string(), second.to_string(), phone().to_string()];
    assert!(store
        .opted_out_among(practice_id, &asked)
        .await
        .unwrap()
        .is_empty());

    store
        .record_opt_out(&change(practice_id, &first, true))
        .await
        .unwrap();
    store
        .record_opt_out(&change(practice_id, &second, true))
        .await
        .unwrap();
    assert!(opted_out(practice_id.into(), first.clone()).await);
    assert!(
        !opted_out(other.clone(), first.clone()).await,
        "per practice"
    );
    assert_eq!(
        store.opted_out_among(practice_id, &asked).await.unwrap(),
        HashSet::from([first.to_string(), second.to_string()])
    );

    store
        .record_opt_out(&change(practice_id, &second, false))
        .await
        .unwrap();
    assert!(!opted_out(practice_id.into(), second.clone()).await);
    assert_eq!(
        store.opted_out_among(practice_id, &asked).await.unwrap(),
        HashSet::from([first.to_string()])
    );
    store
        .record_opt_out(&change(practice_id, &second, true))
        .await
        .unwrap();
    assert!(opted_out(practice_id.into(), second).await, "STOP again");
    assert!(store
        .opted_out_among(&other, &asked)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .opted_out_among(practice_id, &[])
        .await
        .unwrap()
        .is_empty());
}
