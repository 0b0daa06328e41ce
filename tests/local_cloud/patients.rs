//! The patient list and its age filter on the deployed local stack.

use chrono::{Datelike, Duration, Utc};
use cloud_tests::{random_phone, Endpoints};
use serde_json::json;

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn age_filter_lists_patients_by_whole_years_in_pages() {
    let local = Endpoints::load();
    let t = local.new_practice().await;
    // The practice is in New York; dates far from a birthday avoid the
    // hours when New York and UTC disagree on "today".
    let today = Utc::now().date_naive();
    let born = |years: i32| {
        let d = today - Duration::days(40);
        d.with_year(d.year() - years).unwrap().to_string()
    };
    for (id, birth) in [
        ("a", Some(born(17))),
        ("b", Some(born(18))),
        ("c", Some(born(64))),
        ("d", Some(born(65))),
        ("e", None),
    ] {
        let mut body = json!({"first_name": id, "phone": random_phone().as_str()});
        if let Some(b) = birth {
            body["birth_date"] = json!(b);
        }
        assert_eq!(
            t.api.put(&format!("/v1/patients/{id}"), &body).await.status,
            200
        );
    }
    let mut ids = Vec::new();
    let mut path = "/v1/patients?min_age=18&max_age=64&limit=1".to_string();
    loop {
        let r = t.api.get(&path).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        ids.extend(
            r.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["patient_id"].as_str().unwrap().to_string()),
        );
        match r.body["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/patients?min_age=18&max_age=64&limit=1&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(ids, ["b", "c"]);
    let all = t.api.get("/v1/patients").await;
    assert_eq!(
        all.body["items"].as_array().unwrap().len(),
        5,
        "no filter lists everyone"
    );
    for (query, field) in [
        ("min_age=-1", "min_age"),
        ("max_age=x", "max_age"),
        ("min_age=65&max_age=18", "min_age"),
    ] {
        let r = t.api.get(&format!("/v1/patients?{query}")).await;
        assert_eq!((r.status, r.field()), (422, field), "{query}");
    }
}
