//! Pictures patients text in (MMS): the S3 adapter against the emulator's
//! bucket (put, pre-signed link fetched with a plain HTTP client), the
//! carrier adapter against the simulator's media API, the media queue, and
//! end to end: an MMS through the simulator until its copy is `ready` and
//! its link serves the same bytes.

use std::time::Duration;

use base64::Engine as _;
use cloud_tests::{poll, random_phone, Endpoints};
use messaging_adapters::bandwidth::{Bandwidth, BandwidthConfig};
use messaging_adapters::s3::S3Media;
use messaging_adapters::sqs::SqsMediaQueue;
use messaging_core::app::conversations::record_inbound;
use messaging_core::domain::conversation::{InboundEntry, MediaCopyJob, MediaItem, ThreadItem};
use messaging_core::domain::secret::Secret;
use messaging_core::ports::{CarrierMedia, MediaFetchError, MediaLinks, MediaQueue, MediaStorage};
use serde_json::{json, Value};

/// Held by the tests here that download stored media from the simulator:
/// its armed `media_failures` are one counter for everyone, so a test
/// arming it must not have its failure taken by another.
static SIM_MEDIA_API: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A tiny PNG (the bytes matter, not the picture).
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\xff\xff?\0\x05\xfe\x02\xfe\xa7\x35\x81\x84\0\0\0\0IEND\xaeB`\x82";

fn bucket(local: &Endpoints) -> String {
    local
        .media_bucket
        .clone()
        .expect("media_bucket in endpoints.json: restart the local cloud")
}

fn carrier(local: &Endpoints) -> Bandwidth {
    Bandwidth::new(BandwidthConfig {
        api_url: format!("{}/api/v2", local.carrier_url),
        account_id: "9900000".into(),
        application_id: "local-application".into(),
        username: "sim-user".into(),
        password: Secret::new("sim-password").into(),
        timeout: Duration::from_secs(5),
    })
    .unwrap()
}

/// An MMS from `from` to `to` through the simulator; its media URLs.
async fn inbound_mms(
    local: &Endpoints,
    from: &str,
    to: &str,
    files: &[(&str, &[u8])],
) -> Vec<String> {
    inbound_mms_with_id(local, from, to, files).await.1
}

/// [`inbound_mms`], with the simulator's message id.
async fn inbound_mms_with_id(
    local: &Endpoints,
    from: &str,
    to: &str,
    files: &[(&str, &[u8])],
) -> (String, Vec<String>) {
    let media: Vec<Value> = files
        .iter()
        .map(|(content_type, bytes)| {
            json!({"content_type": content_type,
                   "base64": base64::engine::general_purpose::STANDARD.encode(bytes)})
        })
        .collect();
    let r = cloud_tests::http()
        .post(format!("{}/_sim/inbound", local.carrier_url))
        .json(&json!({"from": from, "to": to, "text": "my x-ray", "media": media}))
        .send()
        .await
        .expect("simulator");
    assert_eq!(r.status().as_u16(), 202);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["callback_status"], 200, "webhook answered {body:?}");
    let urls = body["media"]
        .as_array()
        .expect("media urls")
        .iter()
        .map(|u| u.as_str().unwrap().to_string())
        .collect();
    (body["id"].as_str().unwrap().to_string(), urls)
}

/// Makes the simulator's media API answer the next `n` downloads with 503.
async fn fail_next_downloads(local: &Endpoints, n: u32) {
    let r = cloud_tests::http()
        .put(format!("{}/_sim/config", local.carrier_url))
        .json(&json!({"media_failures": n}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn s3_stores_objects_and_presigns_path_style_links_that_serve_them() {
    let local = Endpoints::load();
    let bucket = bucket(&local);
    let s3 = S3Media::new(&local.aws().await, &bucket);
    let key = format!("test/{}/0.png", uuid::Uuid::new_v4().simple());
    s3.put(&key, "image/png", PNG.to_vec()).await.unwrap();
    // Putting again (a retried copy) replaces the object.
    s3.put(&key, "image/png", PNG.to_vec()).await.unwrap();

    let before = chrono::Utc::now();
    let (url, expires_at) = s3
        .presigned_get(&key, Duration::from_secs(15 * 60), chrono::Utc::now())
        .await
        .unwrap();
    let lifetime = expires_at - before;
    assert!(
        (chrono::Duration::seconds(899)..=chrono::Duration::seconds(901)).contains(&lifetime),
        "{lifetime}"
    );
    let prefix = format!("{}/{bucket}/{key}?", local.aws_endpoint_url);
    assert!(
        url.starts_with(&prefix),
        "{url} is not path-style on {prefix}"
    );
    for part in [
        "X-Amz-Algorithm=AWS4-HMAC-SHA256",
        "X-Amz-Expires=900",
        "X-Amz-Signature=",
    ] {
        assert!(url.contains(part), "{url} lacks {part}");
    }

    let r = cloud_tests::http().get(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "{url}");
    assert_eq!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("image/png")
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), PNG);
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn the_carrier_adapter_downloads_media_and_classifies_failures() {
    let local = Endpoints::load();
    let _media_api = SIM_MEDIA_API.lock().await;
    let t = local.new_practice().await;
    let patient = random_phone();
    let urls = inbound_mms(
        &local,
        patient.as_str(),
        t.practice.channels.sms_main.as_str(),
        &[("image/png", PNG), ("text/plain", b"second file")],
    )
    .await;
    assert_eq!(urls.len(), 2);
    let bw = carrier(&local);
    assert_eq!(bw.download(&urls[0]).await.unwrap(), PNG);
    assert_eq!(bw.download(&urls[1]).await.unwrap(), b"second file");

    // Unknown media: gone for good.
    let unknown = format!(
        "{}/api/v2/users/9900000/media/nothing/0/x.png",
        local.carrier_url
    );
    match bw.download(&unknown).await {
        Err(MediaFetchError::Permanent(why)) => assert!(why.contains("404"), "{why}"),
        other => panic!("{other:?}"),
    }
    // Another host (here: the same simulator by another name) never gets
    // the credentials.
    let elsewhere = urls[0].replace("127.0.0.1", "localhost");
    assert!(matches!(
        bw.download(&elsewhere).await,
        Err(MediaFetchError::Permanent(_))
    ));
    // Carrier trouble: worth a retry.
    fail_next_downloads(&local, 1).await;
    match bw.download(&urls[0]).await {
        Err(MediaFetchError::Retryable(why)) => assert!(why.contains("503"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(bw.download(&urls[0]).await.unwrap(), PNG);
    // Wrong credentials: refused for good.
    let wrong = Bandwidth::new(BandwidthConfig {
        password: Secret::new("not-it").into(),
        ..BandwidthConfig {
            api_url: format!("{}/api/v2", local.carrier_url),
            account_id: "9900000".into(),
            application_id: String::new(),
            username: "sim-user".into(),
            password: Secret::new("").into(),
            timeout: Duration::from_secs(5),
        }
    })
    .unwrap();
    assert!(matches!(
        wrong.download(&urls[0]).await,
        Err(MediaFetchError::Permanent(_))
    ));
}

#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn the_media_queue_carries_copy_jobs_as_json() {
    let local = Endpoints::load();
    let sqs = aws_sdk_sqs::Client::new(&local.aws().await);
    let name = format!("test-media-{}", uuid::Uuid::new_v4().simple());
    let url = sqs
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let jobs: Vec<MediaCopyJob> = (0..12)
        .map(|index| MediaCopyJob {
            practice_id: "p1".into(),
            phone: random_phone(),
            position: format!("2026-12-01T15:00:00.000Z#bw-{index}"),
            index,
            carrier_url: format!("https://carrier/{index}"),
            storage_key: format!("media/p1/bw/{index}.png"),
            content_type: "image/png".into(),
        })
        .collect();
    SqsMediaQueue::new(sqs.clone(), &url)
        .enqueue_media(&jobs)
        .await
        .unwrap();
    let mut received: Vec<MediaCopyJob> = Vec::new();
    for _ in 0..10 {
        let out = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        for m in out.messages() {
            received.push(serde_json::from_str(m.body().unwrap()).unwrap());
        }
        if received.len() >= jobs.len() {
            break;
        }
    }
    sqs.delete_queue().queue_url(&url).send().await.unwrap();
    received.sort_by_key(|j| j.index);
    assert_eq!(received, jobs);
}

/// Needs the webhook to queue a copy job per attachment after recording
/// the text (`MediaQueue::enqueue_media`); until it does, the attachment
/// stays `copying` and this test fails at the poll.
#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn an_mms_is_copied_and_its_thread_link_serves_the_picture() {
    let local = Endpoints::load();
    let _media_api = SIM_MEDIA_API.lock().await;
    let t = local.new_practice().await;
    let patient = random_phone();
    inbound_mms(
        &local,
        patient.as_str(),
        t.practice.channels.sms_main.as_str(),
        &[("image/png", PNG)],
    )
    .await;
    let path = format!(
        "/v1/conversations/c{}/messages",
        patient.as_str().trim_start_matches('+')
    );

    // The text is there at once; its picture is copying, then ready.
    let r = t.api.get(&path).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let entry = &r.body["items"][0];
    assert_eq!(entry["text"], "my x-ray");
    let first = &entry["media"][0];
    assert_eq!(first["content_type"], "image/png");
    if first["status"] == "copying" {
        assert!(
            first["url"].is_null() && first["expires_at"].is_null(),
            "{first}"
        );
    }
    let media = poll(Duration::from_secs(90), || async {
        let r = t.api.get(&path).await;
        let m = r.body["items"][0]["media"][0].clone();
        match m["status"].as_str() {
            Some("ready") => Some(m),
            Some("copying") => None,
            other => panic!("copy ended {other:?}: {m}"),
        }
    })
    .await
    .expect("the picture was not copied within 90 s");
    let mut fields: Vec<&str> = media
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["content_type", "expires_at", "status", "url"]);
    let url = media["url"].as_str().expect("a link once ready");
    let expires_at: chrono::DateTime<chrono::Utc> =
        media["expires_at"].as_str().unwrap().parse().unwrap();
    let left = expires_at - chrono::Utc::now();
    assert!(
        left > chrono::Duration::minutes(14) && left <= chrono::Duration::minutes(15),
        "{left}"
    );
    let r = cloud_tests::http().get(url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "{url}");
    assert_eq!(r.bytes().await.unwrap().as_ref(), PNG);

    // Reading the thread again gives a fresh link.
    let again = t.api.get(&path).await.body["items"][0]["media"][0].clone();
    assert_eq!(again["status"], "ready");
    assert!(again["url"].is_string());
}

/// What the webhook does with an MMS, done here by hand: the text recorded
/// with its attachments `copying`, and one job per attachment on the
/// stack's media queue. Then the deployed copier and the thread.
#[tokio::test]
#[ignore = "needs the local cloud: run `make test`"]
async fn queued_copies_end_ready_or_failed_and_the_thread_shows_them() {
    let local = Endpoints::load();
    let _media_api = SIM_MEDIA_API.lock().await;
    let t = local.new_practice().await;
    let practice_id = t.practice.practice_id.clone();
    let patient = random_phone();
    let (sim_id, urls) = inbound_mms_with_id(
        &local,
        random_phone().as_str(),
        t.practice.channels.sms_main.as_str(),
        &[("image/png", PNG)],
    )
    .await;
    let gone = format!(
        "{}/api/v2/users/9900000/media/gone/0/x.png",
        local.carrier_url
    );
    let carrier_id = format!("bw-{}", uuid::Uuid::new_v4().simple());
    let key = |i: usize| format!("media/{practice_id}/{carrier_id}/{i}");
    let entry = InboundEntry::new(
        &carrier_id,
        patient.clone(),
        t.practice.channels.sms_main.clone(),
        "two pictures",
        chrono::Utc::now(),
        vec![
            MediaItem::new(&urls[0], "image/png", key(0)),
            MediaItem::new(&gone, "image/png", key(1)),
        ],
    );
    let store = local.store().await;
    record_inbound(&store, &practice_id, &entry, chrono::Utc::now())
        .await
        .unwrap();
    let position = ThreadItem::Inbound(entry.clone()).position();
    let jobs: Vec<MediaCopyJob> = entry
        .media
        .iter()
        .enumerate()
        .map(|(index, m)| MediaCopyJob {
            practice_id: practice_id.clone(),
            phone: patient.clone(),
            position: position.clone(),
            index,
            carrier_url: m.carrier_url.clone(),
            storage_key: m.storage_key.clone(),
            content_type: m.content_type.clone(),
        })
        .collect();
    let queue_url = local
        .media_queue_url
        .clone()
        .expect("media_queue_url in endpoints.json: restart the local cloud");
    // The picture's first download meets carrier trouble (the simulator
    // fails downloads of stored media only): retried 10 s later. The other
    // link is unknown to the carrier: failed at once.
    fail_next_downloads(&local, 1).await;
    SqsMediaQueue::new(aws_sdk_sqs::Client::new(&local.aws().await), queue_url)
        .enqueue_media(&jobs)
        .await
        .unwrap();

    let path = format!(
        "/v1/conversations/c{}/messages",
        patient.as_str().trim_start_matches('+')
    );
    let media = poll(Duration::from_secs(60), || async {
        let r = t.api.get(&path).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let media = r.body["items"][0]["media"].clone();
        let done = media
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["status"] != "copying");
        done.then_some(media)
    })
    .await
    .expect("copies not finished within 60 s");
    assert_eq!(media[0]["status"], "ready", "{media}");
    assert_eq!(media[1]["status"], "failed", "{media}");
    assert_eq!(
        media[1],
        json!({"url": null, "content_type": "image/png", "status": "failed", "expires_at": null})
    );
    let url = media[0]["url"].as_str().unwrap();
    assert!(url.contains(&format!("/{}/", bucket(&local))), "{url}");
    let r = cloud_tests::http().get(url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), PNG);

    // The picture was downloaded twice: refused with a 503, then served.
    let r: Value = cloud_tests::http()
        .get(format!(
            "{}/_sim/media-requests?message_id={sim_id}",
            local.carrier_url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let statuses: Vec<u64> = r["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["status"].as_u64().unwrap())
        .collect();
    // The webhook queued its own copy of this MMS when the simulator
    // delivered it; that copy may have downloaded the picture (200) before
    // the fault was set. This test's job then met the 503 and was served
    // on its retry.
    let ours = statuses
        .iter()
        .position(|s| *s == 503)
        .unwrap_or_else(|| panic!("no download met the fault: {r}"));
    assert_eq!(&statuses[ours..], [503, 200], "{r}");
    assert!(statuses[..ours].iter().all(|s| *s == 200), "{r}");
    assert!(ours <= 1, "at most the webhook's own copy came first: {r}");
}
