//! Staff sign-in on the deployed local stack: the cookie, acting as the
//! staff member's practice on every route, the CSRF header, sign-out, one
//! answer for a wrong name or password, the slowdown and refusal after
//! repeated failures, and the console's files.

use std::time::Instant;

use cloud_tests::{random_phone, sign_in_raw, Endpoints, StaffSession};
use serde_json::json;

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn the_demo_staff_account_signs_in_and_acts_as_the_demo_practice() {
    let local = Endpoints::load();
    let console = local
        .console
        .clone()
        .expect("endpoints.json has the console");
    assert_eq!(console.url, format!("{}/console", local.api_url));
    let session = StaffSession::sign_in(&local.api_url, &console.user, &console.password).await;
    // The local cloud is plain HTTP: everything but Secure (and its prefix).
    let set_cookie = &session.set_cookie;
    assert!(set_cookie.starts_with("pm_session=pms_"), "{set_cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "{set_cookie}");
    assert_eq!(session.signed_in["practice_id"], local.practice_id);
    assert_eq!(session.signed_in["staff"]["role"], "admin");
    assert!(session.signed_in["staff"]["id"]
        .as_str()
        .unwrap()
        .starts_with("stf_"));

    let settings = session.call("GET", "/v1/settings", None, false).await;
    assert_eq!(settings.status, 200, "{:?}", settings.body);
    assert_eq!(settings.body["practice_id"], local.practice_id);
    let current = session
        .call("GET", "/v1/sessions/current", None, false)
        .await;
    assert_eq!(current.status, 200);
    assert_eq!(current.body["staff"], session.signed_in["staff"]);
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn a_session_reaches_its_own_practice_only_and_changes_need_the_console_header() {
    let local = Endpoints::load();
    let ours = local.new_practice().await;
    let theirs = local.new_practice().await;
    let (user, password) = ours.staff(&local, "staff").await;
    let session = StaffSession::sign_in(&local.api_url, &user, &password).await;

    // Another practice's message and patient are as absent as unknown ones.
    let phone = random_phone();
    let at = (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339();
    let sent = theirs
        .api
        .post(
            "/v1/messages",
            &json!({"to": phone.as_str(), "text": "Theirs", "send_at": at}),
        )
        .await;
    assert_eq!(sent.status, 202, "{:?}", sent.body);
    let id = sent.body["id"].as_str().unwrap();
    let r = session
        .call("GET", &format!("/v1/messages/{id}"), None, false)
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        theirs
            .api
            .put(
                "/v1/patients/p-1",
                &json!({"first_name": "Ana", "phone": random_phone().as_str()})
            )
            .await
            .status,
        200
    );
    let r = session.call("GET", "/v1/patients/p-1", None, false).await;
    assert_eq!(r.status, 404);

    // A change without X-Requested-With: console is refused and stores nothing.
    let template =
        json!({"name": "Running late", "body": "Hi {first_name}, we run 10 minutes late."});
    let r = session
        .call("POST", "/v1/templates", Some(&template), false)
        .await;
    assert_eq!((r.status, r.code()), (403, "csrf_header_required"));
    let listed = session.call("GET", "/v1/templates", None, false).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 0);
    let r = session
        .call("POST", "/v1/templates", Some(&template), true)
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    // ... and it is ours: the practice's own key sees it.
    let listed = ours.api.get("/v1/templates").await;
    assert_eq!(listed.body["items"][0]["name"], "Running late");
    // Sending with the session works on the messages function too.
    let r = session
        .call(
            "POST",
            "/v1/messages",
            Some(&json!({"to": random_phone().as_str(), "text": "From the console"})),
            true,
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);

    // A staff member (not an admin) cannot manage accounts.
    let r = session
        .call(
            "POST",
            "/v1/staff",
            Some(&json!({"user": "x-new", "name": "New", "role": "staff", "password": "long enough pw"})),
            true,
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "admin_only"));
    let r = session.call("GET", "/v1/staff", None, false).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);

    // Sign-out ends the session everywhere; the cookie is cleared.
    let r = session
        .call("DELETE", "/v1/sessions/current", None, false)
        .await;
    assert_eq!(r.status, 403, "sign-out needs the header too");
    let r = session
        .call("DELETE", "/v1/sessions/current", None, true)
        .await;
    assert_eq!(r.status, 204);
    for path in ["/v1/settings", "/v1/templates", "/v1/sessions/current"] {
        let r = session.call("GET", path, None, false).await;
        assert_eq!((r.status, r.code()), (401, "unauthorized"), "{path}");
    }
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn an_admin_adds_and_removes_a_colleague() {
    let local = Endpoints::load();
    let practice = local.new_practice().await;
    let (user, password) = practice.staff(&local, "admin").await;
    let admin = StaffSession::sign_in(&local.api_url, &user, &password).await;
    let colleague = format!("c-{}", uuid::Uuid::new_v4().simple());
    let r = admin
        .call(
            "POST",
            "/v1/staff",
            Some(&json!({"user": colleague, "name": "Lee Hygienist", "role": "staff", "password": "short"})),
            true,
        )
        .await;
    assert_eq!(
        (r.status, r.code(), r.field()),
        (422, "weak_password", "password")
    );
    let r = admin
        .call(
            "POST",
            "/v1/staff",
            Some(&json!({"user": colleague, "name": "Lee Hygienist", "role": "staff", "password": "a long passphrase"})),
            true,
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    let lee = StaffSession::sign_in(&local.api_url, &colleague, "a long passphrase").await;
    assert_eq!(lee.signed_in["staff"]["name"], "Lee Hygienist");
    let r = admin
        .call(
            "DELETE",
            &format!(
                "/v1/staff/{}",
                admin.signed_in["staff"]["id"].as_str().unwrap()
            ),
            None,
            true,
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "cannot_delete_self"));
    let r = admin
        .call("DELETE", &format!("/v1/staff/{id}"), None, true)
        .await;
    assert_eq!(r.status, 204);
    let r = lee.call("GET", "/v1/settings", None, false).await;
    assert_eq!(r.status, 401, "a removed account's sessions end");
    let (status, ..) = sign_in_raw(&local.api_url, &colleague, "a long passphrase").await;
    assert_eq!(status, 401);
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn wrong_names_and_passwords_get_one_answer_then_slow_then_429() {
    let local = Endpoints::load();
    let practice = local.new_practice().await;
    let (user, password) = practice.staff(&local, "staff").await;

    let (s1, c1, wrong_password, _) = sign_in_raw(&local.api_url, &user, "not the password").await;
    let (s2, c2, wrong_user, _) = sign_in_raw(&local.api_url, &format!("{user}x"), &password).await;
    assert_eq!((s1, s2), (401, 401));
    assert_eq!(wrong_password, wrong_user, "the same answer for both");
    assert_eq!(wrong_password["error"]["code"], "invalid_credentials");
    assert!(c1.is_none() && c2.is_none());

    // Failures 2 and 3 answer at once; from the 4th each waits a second.
    for _ in 0..2 {
        let started = Instant::now();
        assert_eq!(sign_in_raw(&local.api_url, &user, "nope").await.0, 401);
        assert!(started.elapsed().as_millis() < 3000);
    }
    let mut last = None;
    for _ in 3..10 {
        let started = Instant::now();
        assert_eq!(sign_in_raw(&local.api_url, &user, "nope").await.0, 401);
        last = Some(started.elapsed());
    }
    assert!(
        last.unwrap().as_millis() >= 1000,
        "slowed: {:?}",
        last.unwrap()
    );
    // The 11th attempt, even with the right password, is refused.
    let (status, cookie, body, retry_after) = sign_in_raw(&local.api_url, &user, &password).await;
    assert_eq!((status, cookie), (429, None));
    assert_eq!(body["error"]["code"], "too_many_attempts");
    let seconds: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!((800..=900).contains(&seconds), "{seconds}");
    // Another account of the practice is not held up.
    let (other, other_password) = practice.staff(&local, "staff").await;
    StaffSession::sign_in(&local.api_url, &other, &other_password).await;
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn the_console_is_served_by_the_stack_without_outside_assets() {
    let local = Endpoints::load();
    let http = cloud_tests::http();
    let page = http
        .get(format!("{}/console", local.api_url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    let etag = page.headers()["etag"].to_str().unwrap().to_string();
    let html = page.text().await.unwrap();
    assert!(html.contains("console/console.js") && html.contains("console/console.css"));
    for asset in ["console.js", "console.css"] {
        let r = http
            .get(format!("{}/console/{asset}", local.api_url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{asset}");
    }
    let again = http
        .get(format!("{}/console", local.api_url))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    // Gzipped for a browser that takes it (API Gateway does not compress).
    let plain = http
        .get(format!("{}/console/console.js", local.api_url))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let gzipped = http
        .get(format!("{}/console/console.js", local.api_url))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gzipped.headers()["content-encoding"], "gzip");
    let gzipped = gzipped.bytes().await.unwrap();
    assert_eq!(&gzipped[..2], &[0x1f, 0x8b], "a gzip stream");
    assert!(
        gzipped.len() * 3 < plain.len(),
        "{} of {}",
        gzipped.len(),
        plain.len()
    );
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn a_staff_session_cannot_rewire_integrations_or_settings_and_an_admin_can() {
    let local = Endpoints::load();
    let practice = local.new_practice().await;
    let (user, password) = practice.staff(&local, "staff").await;
    let staff = StaffSession::sign_in(&local.api_url, &user, &password).await;
    let endpoint = json!({"url": "https://example.com/pm-events"});
    let some_endpoint = "0193684b-2f1a-7c3e-9d2b-4a5f6e7d8c91";
    let some_event = "evt_0193684b2f1a7c3e9d2b4a5f6e7d8c91";
    let refused = [
        (
            "PATCH",
            "/v1/settings".to_string(),
            Some(json!({"help_text": "Call us."})),
        ),
        (
            "POST",
            "/v1/event-endpoints".to_string(),
            Some(endpoint.clone()),
        ),
        (
            "DELETE",
            format!("/v1/event-endpoints/{some_endpoint}"),
            None,
        ),
        (
            "POST",
            format!("/v1/event-endpoints/{some_endpoint}/rotate-secret"),
            None,
        ),
        ("POST", format!("/v1/events/{some_event}/redeliver"), None),
    ];
    for (method, path, body) in &refused {
        let r = staff.call(method, path, body.as_ref(), true).await;
        assert_eq!(
            (r.status, r.code()),
            (403, "admin_only"),
            "{method} {path}: {:?}",
            r.body
        );
    }
    let listed = practice.api.get("/v1/event-endpoints").await;
    assert_eq!(
        listed.body["items"].as_array().map(Vec::len),
        Some(0),
        "nothing stored"
    );
    let settings = staff.call("GET", "/v1/settings", None, false).await;
    assert_eq!(settings.status, 200, "staff still read the settings");
    assert_ne!(settings.body["help_text"], "Call us.");

    let (user, password) = practice.staff(&local, "admin").await;
    let admin = StaffSession::sign_in(&local.api_url, &user, &password).await;
    let r = admin
        .call(
            "PATCH",
            "/v1/settings",
            Some(&json!({"help_text": "Call us."})),
            true,
        )
        .await;
    assert_eq!(
        (r.status, r.body["help_text"].as_str()),
        (200, Some("Call us.")),
        "{:?}",
        r.body
    );
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn a_sign_in_without_the_console_header_is_refused_and_never_counts_as_a_guess() {
    let local = Endpoints::load();
    let practice = local.new_practice().await;
    let (user, password) = practice.staff(&local, "staff").await;
    // What a form posted from another site can send: no custom header.
    for _ in 0..12 {
        let r = cloud_tests::http()
            .post(format!("{}/v1/sessions", local.api_url))
            .header("content-type", "text/plain")
            .body(json!({"user": user, "password": "a guess"}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 403);
        assert!(r.headers().get("set-cookie").is_none());
    }
    // Twelve refusals counted nothing: the right password still signs in at once.
    let (status, cookie, body, _) = sign_in_raw(&local.api_url, &user, &password).await;
    assert_eq!(status, 201, "{body}");
    assert!(cookie.is_some());
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn staff_see_colleagues_names_but_not_their_user_names_and_api_answers_are_not_cached() {
    let local = Endpoints::load();
    let practice = local.new_practice().await;
    let (user, password) = practice.staff(&local, "staff").await;
    let staff = StaffSession::sign_in(&local.api_url, &user, &password).await;
    let r = staff.call("GET", "/v1/staff", None, false).await;
    assert_eq!(r.status, 200);
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert!(items[0]["name"].is_string());
    assert!(items[0].get("user").is_none(), "{items:?}");
    let (user, password) = practice.staff(&local, "admin").await;
    let admin = StaffSession::sign_in(&local.api_url, &user, &password).await;
    let r = admin.call("GET", "/v1/staff", None, false).await;
    assert!(r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["user"].is_string()));

    // Patient data is never kept by a cache; no answer is MIME-sniffed.
    let r = cloud_tests::http()
        .get(format!("{}/v1/settings", local.api_url))
        .bearer_auth(&local.api_key)
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    assert_eq!(header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(header("x-content-type-options").as_deref(), Some("nosniff"));
    assert!(header("strict-transport-security").is_some());
}
