//! `GET/PATCH /v1/settings`, `GET /v1/patients`, `PUT/GET /v1/patients/{id}`, `/v1/templates…`,
//! `GET /v1/error-codes`, `GET /v1/communications`, and the Inbox and
//! Patient Chat reads (`/v1/conversations…`, see [`super::conversations`]),
//! and the office's event endpoints and events (see [`super::events_api`]).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};

use crate::config::{ConfigError, FromEnv, PracticeApiConfig};
use crate::http;
use messaging_adapters::dynamo::DynamoStore;
use messaging_adapters::event_http::SystemResolver;
use messaging_adapters::s3::S3Media;
use messaging_adapters::sqs::SqsEventQueue;
use messaging_core::app::auth::Authenticator;
use messaging_core::app::patients;
use messaging_core::app::settings;
use messaging_core::app::tracking::{self, TrackingQuery};
use messaging_core::domain::carrier::CarrierKind;
use messaging_core::domain::error::AppError;
use messaging_core::domain::event_endpoint::UrlPolicy;
use messaging_core::domain::message::CARRIER;
use messaging_core::domain::patient::{validate_id, AgeFilter, Patient, PatientInput};
use messaging_core::domain::{aws_errors, carrier_errors};
use messaging_core::ports::{
    ConversationStore, EventQueue, EventStore, HostResolver, MediaLinks, MessageStore, OptOutStore,
    PracticeStore, StaffStore, TemplateStore,
};

/// The practice function: settings, patients, Quick Messages, the error
/// catalog and the tracking list; over its ports: the store, the links to
/// copied attachments, the event queue and the resolver of endpoint hosts.
pub struct PracticeApi<S, M, Q, R> {
    auth: Authenticator<S>,
    /// The console's session cookie, an alternative to the API key.
    session_cookie: crate::session_cookie::SessionCookie,
    store: S,
    /// Signs the thread's links to copied attachments.
    media: M,
    /// Where redelivered events' first attempts go.
    event_queue: Q,
    /// Resolves event endpoints' host names.
    resolver: R,
    /// Which event endpoint URLs are allowed.
    url_policy: UrlPolicy,
}

/// The practice function as deployed: DynamoDB, S3, SQS, the system resolver.
pub type AwsPracticeApi = PracticeApi<DynamoStore, S3Media, SqsEventQueue, SystemResolver>;

impl AwsPracticeApi {
    /// Reads [`PracticeApiConfig`] from the environment; builds the client once.
    pub async fn from_env() -> Result<Self, ConfigError> {
        Ok(Self::new(PracticeApiConfig::from_env()?, crate::config::aws()?).await)
    }

    /// Builds the client for `config`.
    pub async fn new(config: PracticeApiConfig, aws: messaging_adapters::aws::SdkConfig) -> Self {
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), config.table_name);
        Self::with_ports(
            store,
            S3Media::new(&aws, config.media_bucket),
            SqsEventQueue::new(
                aws_sdk_sqs::Client::new(&aws),
                config.event_queue_url.as_str(),
                None,
            ),
            SystemResolver,
            config.url_policy,
            config.session_cookie,
        )
    }
}

impl<S, M, Q, R> PracticeApi<S, M, Q, R>
where
    S: PracticeStore
        + StaffStore
        + OptOutStore
        + TemplateStore
        + MessageStore
        + EventStore
        + ConversationStore
        + Clone,
    M: MediaLinks,
    Q: EventQueue,
    R: HostResolver,
{
    /// Serves the practice routes over these ports.
    pub fn with_ports(
        store: S,
        media: M,
        event_queue: Q,
        resolver: R,
        url_policy: UrlPolicy,
        session_cookie: crate::session_cookie::SessionCookie,
    ) -> Self {
        Self {
            auth: Authenticator::new(store.clone()),
            session_cookie,
            store,
            media,
            event_queue,
            resolver,
            url_policy,
        }
    }

    /// Handles one HTTP request.
    pub async fn handle(&self, req: Request) -> Result<Response<Body>, std::convert::Infallible> {
        let route = http::route_key(&req);
        Ok(super::respond(&route, self.route(&route, &req).await))
    }

    /// The patient with `sms_opted_out` read from the practice's opt-out record.
    async fn with_opt_out(
        &self,
        practice_id: &str,
        mut patient: Patient,
    ) -> Result<Patient, AppError> {
        patient.sms_opted_out = self
            .store
            .is_opted_out(practice_id, patient.phone.as_str())
            .await?;
        Ok(patient)
    }

    async fn route(&self, route: &str, req: &Request) -> Result<Response<Body>, AppError> {
        // Time enters here: every rule below judges by this one instant.
        let now = chrono::Utc::now();
        let caller = super::caller(&self.auth, self.session_cookie, req, now).await?;
        if let Some(what) = admin_only_route(route) {
            if !caller.is_admin() {
                return Err(super::admin_only(what));
            }
        }
        let practice = caller.practice;
        if let Some(result) = super::templates::route(&self.store, &practice, route, req, now).await
        {
            return result;
        }
        let events = super::events_api::EventRoutes {
            queue: &self.event_queue,
            resolver: &self.resolver,
            policy: self.url_policy,
        };
        if let Some(result) = events
            .route(&self.store, &practice.practice_id, route, req, now)
            .await
        {
            return result;
        }
        if let Some(result) =
            super::conversations::route(&self.store, &self.media, &practice, route, req, now).await
        {
            return result;
        }
        match route {
            "GET /v1/settings" => Ok(http::json(StatusCode::OK, &practice)),
            "PATCH /v1/settings" => {
                let body = http::body_bytes(req)?;
                let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
                    AppError::bad_request(
                        "invalid_json",
                        format!("the body is not valid JSON: {e}"),
                    )
                })?;
                let updated = settings::update(&self.store, &practice, &value).await?;
                self.auth.updated(&updated).await;
                Ok(http::json(StatusCode::OK, &updated))
            }
            "PUT /v1/patients/{id}" => {
                let id = http::path_param(req, "id").unwrap_or_default();
                validate_id(&id, "patient_id")?;
                let (input, _) =
                    messaging_core::json::parse_json::<PatientInput>(http::body_bytes(req)?)?;
                let previous = self.store.get_patient(&practice.practice_id, &id).await?;
                let patient = input.into_patient(
                    &id,
                    messaging_core::app::patients::practice_today(&practice, now),
                    previous.as_ref(),
                )?;
                self.store
                    .put_patient(&practice.practice_id, &patient)
                    .await?;
                let mut phones = vec![&patient.phone];
                phones.extend(previous.as_ref().map(|p| &p.phone));
                messaging_core::app::conversations::refresh_patients(
                    &self.store,
                    &practice.practice_id,
                    &phones,
                    now,
                )
                .await?;
                let patient = self.with_opt_out(&practice.practice_id, patient).await?;
                Ok(http::json(StatusCode::OK, &patient))
            }
            "GET /v1/patients/{id}" => {
                let id = http::path_param(req, "id").unwrap_or_default();
                let patient = self
                    .store
                    .get_patient(&practice.practice_id, &id)
                    .await?
                    .ok_or_else(|| {
                        AppError::not_found("patient_not_found", format!("no patient {id}"))
                    })?;
                let patient = self.with_opt_out(&practice.practice_id, patient).await?;
                Ok(http::json(StatusCode::OK, &patient))
            }
            "GET /v1/patients" => {
                let (limit, cursor) = http::page_params(req)?;
                http::check_query(req, &["min_age", "max_age"])?;
                let filter = AgeFilter::parse(
                    http::query_param(req, "min_age").as_deref(),
                    http::query_param(req, "max_age").as_deref(),
                )?;
                let today = messaging_core::app::patients::practice_today(&practice, now);
                let (items, next) = patients::list(
                    &self.store,
                    &practice.practice_id,
                    &filter,
                    today,
                    limit,
                    cursor.as_deref(),
                )
                .await?;
                Ok(http::page(&items, next))
            }
            "GET /v1/error-codes" => {
                // Both carriers' codes: Bandwidth's numbers, then AWS's names.
                let bandwidth = carrier_errors::catalog().iter().map(|e| {
                    serde_json::json!({
                        "code": e.code.to_string(), "carrier": CARRIER, "title": e.title,
                        "description": e.description, "resolution": e.resolution,
                        "permanent": e.permanent, "billable": e.billable,
                    })
                });
                let aws = aws_errors::catalog().iter().map(|e| {
                    serde_json::json!({
                        "code": e.code, "carrier": CarrierKind::Aws.as_str(), "title": e.title,
                        "description": e.description, "resolution": e.resolution,
                        "permanent": e.permanent, "billable": e.billable,
                    })
                });
                let items: Vec<serde_json::Value> = bandwidth.chain(aws).collect();
                Ok(http::json(
                    StatusCode::OK,
                    &serde_json::json!({"items": items}),
                ))
            }
            "GET /v1/communications" => {
                let (limit, cursor) = http::page_params(req)?;
                http::check_query(req, &["type", "status", "sent_from", "sent_to"])?;
                let query = TrackingQuery::parse(|k| http::query_param(req, k), limit, cursor)?;
                let (items, next) =
                    tracking::list(&self.store, &practice.practice_id, &query).await?;
                Ok(http::page(&items, next))
            }
            _ => Err(http::no_route()),
        }
    }
}

/// The practice routes only an admin's session (or the API key) may call,
/// and what they do in the office's words: a `staff` session could
/// otherwise point every patient's text (`message.received`) at any URL,
/// replay 30 days of events to it, or change the practice's replies.
fn admin_only_route(route: &str) -> Option<&'static str> {
    match route {
        "POST /v1/event-endpoints"
        | "DELETE /v1/event-endpoints/{id}"
        | "POST /v1/event-endpoints/{id}/rotate-secret" => Some("manage event endpoints"),
        "POST /v1/events/{id}/redeliver" => Some("redeliver events"),
        "PATCH /v1/settings" => Some("change settings"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::test_support::{answer, request, with_id, with_key, KEY};
    use crate::session_cookie::SessionCookie;
    use messaging_core::testing::{
        sample_practice, FixedResolver, MemoryEventQueue, MemoryMediaStorage, MemoryStore,
    };

    type Api = PracticeApi<MemoryStore, MemoryMediaStorage, MemoryEventQueue, FixedResolver>;

    async fn api(store: &MemoryStore) -> Api {
        resolving(store, FixedResolver::default()).await
    }

    /// The practice function whose endpoint host names resolve by `resolver`.
    async fn resolving(store: &MemoryStore, resolver: FixedResolver) -> Api {
        store.add_practice(sample_practice("p1"), KEY).await;
        PracticeApi::with_ports(
            store.clone(),
            MemoryMediaStorage::default(),
            MemoryEventQueue::default(),
            resolver,
            UrlPolicy::default(),
            SessionCookie { secure: true },
        )
    }

    async fn call(api: &Api, req: Request) -> (u16, serde_json::Value) {
        let Ok(response) = api.handle(req).await;
        answer(response)
    }

    /// `req` as the console sends it for a signed-in member of p1 whose
    /// role is `role` (a session cookie and the console's header).
    async fn as_member(store: &MemoryStore, role: &str, mut req: Request) -> Request {
        use messaging_core::app::staff::{create_staff, sign_in, NewStaff, SignInRequest};
        let now = chrono::Utc::now();
        let user = format!("{role}-member");
        if store.staff_for_user(&user).await.unwrap().is_none() {
            let member = NewStaff {
                user: user.clone(),
                name: role.into(),
                role: role.into(),
                password: "correct horse battery".into(),
            };
            create_staff(store, "p1", &member, now).await.unwrap();
        }
        let password = "correct horse battery".to_string();
        let signed = sign_in(
            store,
            &messaging_core::ports::Sleep,
            &SignInRequest { user, password },
            now,
        )
        .await
        .unwrap();
        let cookie = format!("{}={}", SessionCookie { secure: true }.name(), signed.token);
        req.headers_mut().insert("cookie", cookie.parse().unwrap());
        req.headers_mut()
            .insert("x-requested-with", "console".parse().unwrap());
        req
    }

    #[tokio::test]
    async fn a_staff_session_may_read_but_not_rewire_integrations_or_settings() {
        let store = MemoryStore::default();
        let public: std::net::IpAddr = "93.184.216.34".parse().unwrap();
        let resolver = FixedResolver(std::collections::HashMap::from([(
            "pm.example.com".to_string(),
            vec![public],
        )]));
        let api = resolving(&store, resolver).await;
        let endpoint = r#"{"url": "https://pm.example.com/hooks"}"#;
        let refused = [
            ("PATCH /v1/settings", None, r#"{"help_text": "Call us."}"#),
            ("POST /v1/event-endpoints", None, endpoint),
            (
                "DELETE /v1/event-endpoints/{id}",
                Some("0193684b-2f1a-7c3e-9d2b-4a5f6e7d8c91"),
                "",
            ),
            (
                "POST /v1/event-endpoints/{id}/rotate-secret",
                Some("0193684b-2f1a-7c3e-9d2b-4a5f6e7d8c91"),
                "",
            ),
            (
                "POST /v1/events/{id}/redeliver",
                Some("evt_0193684b2f1a7c3e9d2b4a5f6e7d8c91"),
                "",
            ),
        ];
        for (route, id, body) in refused {
            let req = request(route, body);
            let req = match id {
                Some(id) => with_id(req, id),
                None => req,
            };
            let (status, answer) = call(&api, as_member(&store, "staff", req).await).await;
            assert_eq!(
                (status, answer["error"]["code"].as_str()),
                (403, Some("admin_only")),
                "{route}: {answer}"
            );
        }
        assert!(
            store.endpoints("p1").await.unwrap().is_empty(),
            "nothing stored"
        );
        let (status, settings) = call(
            &api,
            as_member(&store, "staff", request("GET /v1/settings", "")).await,
        )
        .await;
        assert_eq!(status, 200, "reads stay open to staff");
        assert_ne!(settings["help_text"], "Call us.");

        // An admin's session, like the API key, may.
        let patch = request("PATCH /v1/settings", r#"{"help_text": "Call us."}"#);
        let (status, body) = call(&api, as_member(&store, "admin", patch).await).await;
        assert_eq!(
            (status, body["help_text"].as_str()),
            (200, Some("Call us.")),
            "{body}"
        );
        let create = request("POST /v1/event-endpoints", endpoint);
        let (status, body) = call(&api, as_member(&store, "admin", create).await).await;
        assert_eq!(status, 201, "{body}");
    }

    #[tokio::test]
    async fn a_request_without_a_key_or_with_an_unknown_one_is_401() {
        let api = api(&MemoryStore::default()).await;
        let (status, body) = call(&api, request("GET /v1/settings", "")).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (401, Some("unauthorized"))
        );
        let mut req = request("GET /v1/settings", "");
        req.headers_mut()
            .insert("authorization", "Bearer not-a-key".parse().unwrap());
        let (status, _) = call(&api, req).await;
        assert_eq!(status, 401);
    }

    #[tokio::test]
    async fn the_settings_are_those_of_the_key_s_practice() {
        let api = api(&MemoryStore::default()).await;
        let (status, body) = call(&api, with_key(request("GET /v1/settings", ""))).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["practice_id"], "p1");
        assert_eq!(body["name"], "Bright Smiles Dental");
        assert_eq!(body["timezone"], "America/New_York");
    }

    #[tokio::test]
    async fn a_template_is_created_listed_and_an_unknown_one_is_404() {
        let store = MemoryStore::default();
        let api = api(&store).await;
        let body = r#"{"name": "Running late", "body": "Hi {first_name}"}"#;
        let (status, created) = call(&api, with_key(request("POST /v1/templates", body))).await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(created["name"], "Running late");

        let (status, page) = call(&api, with_key(request("GET /v1/templates", ""))).await;
        assert_eq!(status, 200);
        let items = page["items"].as_array().unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["id"], created["id"]);
        assert_eq!(page["next_cursor"], serde_json::Value::Null);

        let (status, body) = call(
            &api,
            with_key(with_id(
                request("GET /v1/templates/{id}", ""),
                "no-such-template",
            )),
        )
        .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("template_not_found"))
        );
        assert_eq!(store.template_count().await, 1);
    }

    #[tokio::test]
    async fn an_unknown_patient_is_404_and_the_error_catalog_is_served() {
        let api = api(&MemoryStore::default()).await;
        let (status, body) = call(
            &api,
            with_key(with_id(request("GET /v1/patients/{id}", ""), "pt-404")),
        )
        .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("patient_not_found"))
        );
        let (status, body) = call(&api, with_key(request("GET /v1/error-codes", ""))).await;
        assert_eq!(status, 200);
        assert!(!body["items"].as_array().unwrap().is_empty());
        assert_eq!(body["items"][0]["carrier"], CARRIER);
    }

    #[tokio::test]
    async fn an_unknown_route_is_404() {
        let api = api(&MemoryStore::default()).await;
        let (status, body) = call(&api, with_key(request("POST /v1/messages", "{}"))).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("not_found"))
        );
    }

    #[tokio::test]
    async fn an_event_endpoint_is_created_listed_and_read_by_its_id() {
        let public: std::net::IpAddr = "93.184.216.34".parse().unwrap();
        let resolver = FixedResolver(std::collections::HashMap::from([(
            "pm.example.com".to_string(),
            vec![public],
        )]));
        let api = resolving(&MemoryStore::default(), resolver).await;
        let body = r#"{"url": "https://pm.example.com/hooks"}"#;
        let (status, created) =
            call(&api, with_key(request("POST /v1/event-endpoints", body))).await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(created["url"], "https://pm.example.com/hooks");
        let id = created["id"].as_str().unwrap().to_string();

        let (status, page) = call(&api, with_key(request("GET /v1/event-endpoints", ""))).await;
        assert_eq!(status, 200);
        assert_eq!(page["items"].as_array().unwrap().len(), 1);
        assert_eq!(page["items"][0]["id"], id.as_str());

        let get = |id: &str| with_key(with_id(request("GET /v1/event-endpoints/{id}", ""), id));
        let (status, got) = call(&api, get(&id)).await;
        assert_eq!((status, got["id"].as_str()), (200, Some(id.as_str())));
        let (status, body) = call(&api, get("not-a-uuid")).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("endpoint_not_found"))
        );
    }

    #[tokio::test]
    async fn an_endpoint_whose_host_does_not_resolve_is_refused() {
        let api = api(&MemoryStore::default()).await;
        let body = r#"{"url": "https://nowhere.example.com/hooks"}"#;
        let (status, refused) =
            call(&api, with_key(request("POST /v1/event-endpoints", body))).await;
        assert_eq!(status, 422, "{refused}");
        assert_eq!(refused["error"]["code"], "invalid_url");
        let (_, page) = call(&api, with_key(request("GET /v1/event-endpoints", ""))).await;
        assert_eq!(page["items"], serde_json::json!([]));
    }

    #[tokio::test]
    async fn a_settings_change_is_answered_and_read_back() {
        let api = api(&MemoryStore::default()).await;
        let body = r#"{"help_text": "Bright Smiles Dental: call 415-555-0100."}"#;
        let (status, changed) = call(&api, with_key(request("PATCH /v1/settings", body))).await;
        assert_eq!(status, 200, "{changed}");
        assert_eq!(
            changed["help_text"],
            "Bright Smiles Dental: call 415-555-0100."
        );
        let (status, read) = call(&api, with_key(request("GET /v1/settings", ""))).await;
        assert_eq!((status, &read["help_text"]), (200, &changed["help_text"]));

        let (status, refused) = call(
            &api,
            with_key(request("PATCH /v1/settings", r#"{"name": "Other"}"#)),
        )
        .await;
        assert_eq!(
            (status, refused["error"]["code"].as_str()),
            (422, Some("read_only_field"))
        );
    }

    #[tokio::test]
    async fn a_patient_is_put_and_read_back_with_its_opt_out() {
        let api = api(&MemoryStore::default()).await;
        let body = r#"{"first_name": "Ana", "phone": "+14155550142"}"#;
        let put = with_key(with_id(request("PUT /v1/patients/{id}", body), "pt-1"));
        let (status, patient) = call(&api, put).await;
        assert_eq!(status, 200, "{patient}");
        assert_eq!(patient["first_name"], "Ana");
        let get = with_key(with_id(request("GET /v1/patients/{id}", ""), "pt-1"));
        let (status, read) = call(&api, get).await;
        assert_eq!(status, 200, "{read}");
        assert_eq!(read["phone"], "+14155550142");
        assert_eq!(read["sms_opted_out"], false);
    }
}
