//! The patient list with the age filter (the seed's "try using the age
//! filter to reduce the size of your list").

use chrono::NaiveDate;

use crate::domain::error::AppError;
use crate::domain::patient::{AgeFilter, Patient};
use crate::paging::{decode_cursor, encode_cursor};
use crate::ports::{OptOutStore, PracticeStore};

/// Patients read per query while filling a page.
const READ_BATCH: u32 = 200;

/// The practice's date at `now`, in its own time zone (ages are counted on it).
pub fn practice_today(
    practice: &crate::domain::practice::Practice,
    now: chrono::DateTime<chrono::Utc>,
) -> NaiveDate {
    now.with_timezone(&practice.timezone.tz()).date_naive()
}

/// One page of the practice's patients matching `filter` on `today` (the
/// practice's date), in id order, with `sms_opted_out` filled in. Reads
/// the practice's patient records in id order until the page is full; the
/// cursor is the last patient returned.
pub async fn list<S: PracticeStore + OptOutStore>(
    store: &S,
    practice_id: &str,
    filter: &AgeFilter,
    today: NaiveDate,
    limit: u32,
    cursor: Option<&str>,
) -> Result<(Vec<Patient>, Option<String>), AppError> {
    let mut after = cursor.map(decode_cursor).transpose()?;
    let mut page = Vec::new();
    let next = loop {
        let (batch, next) = store
            .list_patients(practice_id, READ_BATCH.max(limit), after.as_deref())
            .await?;
        let mut full = None;
        for patient in batch {
            let id = patient.patient_id.clone();
            if filter.matches(&patient, today) {
                page.push(patient);
                if page.len() == limit as usize {
                    // More may follow: continue after this patient.
                    full = Some(encode_cursor(&id));
                    break;
                }
            }
            after = Some(id);
        }
        if full.is_some() || next.is_none() {
            break full;
        }
    };
    // The opt-out state of this page's numbers only.
    let phones: Vec<String> = page.iter().map(|p| p.phone.to_string()).collect();
    let opted_out = store.opted_out_among(practice_id, &phones).await?;
    for patient in &mut page {
        patient.sms_opted_out = opted_out.contains(patient.phone.as_str());
    }
    Ok((page, next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::phone::PhoneNumber;
    use crate::ports::{OptOutChange, OptOutStore, PracticeStore};
    use crate::testing::MemoryStore;

    async fn seed(store: &MemoryStore) {
        for i in 0..30u32 {
            let p = Patient {
                patient_id: format!("p-{i:02}"),
                first_name: "A".into(),
                last_name: None,
                phone: PhoneNumber::parse(&format!("+1415555{:04}", 100 + i)).unwrap(),
                // ages 10, 12, ..., 68 on 2026-11-26; every third has no birth date
                birth_date: (i % 3 != 0)
                    .then(|| NaiveDate::from_ymd_opt(2016 - 2 * i as i32, 1, 1).unwrap()),
                sms_opted_out: false,
                sms_undeliverable: None,
            };
            store.put_patient("demo", &p).await.unwrap();
        }
        store
            .record_opt_out(&OptOutChange {
                practice_id: "demo".into(),
                phone: "+14155550101".into(),
                opted_out: true,
                keyword: "STOP".into(),
                source: "sms".into(),
                at: chrono::Utc::now(),
            })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn pages_of_matches_cover_the_filter_exactly_once() {
        let store = MemoryStore::default();
        seed(&store).await;
        let today = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        let filter = AgeFilter::parse(Some("18"), Some("40")).unwrap();
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let (page, next) = list(&store, "demo", &filter, today, 3, cursor.as_deref())
                .await
                .unwrap();
            assert!(page.len() <= 3);
            all.extend(page);
            match next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let ids: Vec<&str> = all.iter().map(|p| p.patient_id.as_str()).collect();
        // ages 2i+10 in 18..=40 → i in 4..=15, minus multiples of 3 (no birth date)
        assert_eq!(
            ids,
            ["p-04", "p-05", "p-07", "p-08", "p-10", "p-11", "p-13", "p-14"]
        );
        let (everyone, _) = list(&store, "demo", &AgeFilter::default(), today, 200, None)
            .await
            .unwrap();
        assert_eq!(everyone.len(), 30);
        assert!(
            everyone
                .iter()
                .find(|p| p.patient_id == "p-01")
                .unwrap()
                .sms_opted_out
        );
    }
}
