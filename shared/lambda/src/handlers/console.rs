//! The console function: the office console's files (`GET /console`,
//! `GET /console/{asset}`), staff sign-in and sign-out (`POST /v1/sessions`,
//! `GET`/`DELETE /v1/sessions/current`), and the practice's staff accounts
//! (`GET`/`POST /v1/staff`, `DELETE /v1/staff/{id}`).
//!
//! Its own function because a sign-in hashes a password with Argon2id
//! (memory-hard, by design costly): it gets the memory and CPU for that
//! without the API functions paying for it, and a burst of sign-ins never
//! holds up sending.

use lambda_http::http::header::{
    CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, IF_NONE_MATCH, SET_COOKIE, VARY,
};
use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};

use crate::config::{ConfigError, ConsoleConfig, FromEnv};
use crate::console_assets;
use crate::http;
use crate::session_cookie::SessionCookie;
use messaging_adapters::dynamo::DynamoStore;
use messaging_core::app::auth::{Authenticator, CSRF_HEADER, CSRF_VALUE};
use messaging_core::app::staff::{self, NewStaff, SessionView, SignInRequest};
use messaging_core::domain::error::AppError;
use messaging_core::ports::{PracticeStore, Sleep, StaffStore};

/// The `Content-Security-Policy` of the console's page: its own script and
/// stylesheet only, API calls to its own origin, pictures from the media
/// links (pre-signed S3 URLs on another origin), no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data: https: http:; connect-src 'self'; \
     form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The console function, over the store of practices, staff and sessions.
pub struct ConsoleApi<S> {
    auth: Authenticator<S>,
    store: S,
    cookie: SessionCookie,
}

/// The console function as deployed: DynamoDB.
pub type AwsConsoleApi = ConsoleApi<DynamoStore>;

impl AwsConsoleApi {
    /// Reads [`ConsoleConfig`] from the environment; builds the client once.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = ConsoleConfig::from_env()?;
        let aws = crate::config::aws()?;
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), config.table_name);
        Ok(Self::new(store, config.session_cookie))
    }
}

impl<S: PracticeStore + StaffStore + Clone> ConsoleApi<S> {
    /// Serves the console over `store`, writing `cookie`.
    pub fn new(store: S, cookie: SessionCookie) -> Self {
        Self {
            auth: Authenticator::new(store.clone()),
            store,
            cookie,
        }
    }

    /// Handles one HTTP request.
    pub async fn handle(&self, req: Request) -> Result<Response<Body>, std::convert::Infallible> {
        let route = http::route_key(&req);
        Ok(super::respond(&route, self.route(&route, &req).await))
    }

    async fn route(&self, route: &str, req: &Request) -> Result<Response<Body>, AppError> {
        let now = chrono::Utc::now();
        match route {
            "GET /console" => Ok(asset(req, "")),
            "GET /console/{asset}" => Ok(asset(
                req,
                &http::path_param(req, "asset").unwrap_or_default(),
            )),
            "POST /v1/sessions" => {
                // Before anything is read or counted: a sign-in from a page
                // that is not the console (a `text/plain` form elsewhere) is
                // refused, and never counts as a failed guess.
                require_console_header(req)?;
                let (request, _) =
                    messaging_core::json::parse_json::<SignInRequest>(http::body_bytes(req)?)?;
                let signed = staff::sign_in(&self.store, &Sleep, &request, now).await?;
                tracing::info!(
                    practice_id = %signed.session.practice_id,
                    staff_id = %signed.session.staff_id,
                    "signed in"
                );
                let mut response =
                    http::json(StatusCode::CREATED, &SessionView::from(&signed.session));
                set_cookie(
                    &mut response,
                    &self
                        .cookie
                        .set(&signed.token, signed.session.expires_at, now),
                );
                Ok(response)
            }
            "GET /v1/sessions/current" => {
                let token = self.session_token(req).ok_or_else(not_signed_in)?;
                let session = staff::session_for_token(&self.store, token, now)
                    .await?
                    .ok_or_else(not_signed_in)?;
                Ok(http::json(StatusCode::OK, &SessionView::from(&session)))
            }
            "DELETE /v1/sessions/current" => {
                let token = self.session_token(req).ok_or_else(not_signed_in)?;
                require_console_header(req)?;
                staff::sign_out(&self.store, token).await?;
                let mut response = http::empty(StatusCode::NO_CONTENT);
                set_cookie(&mut response, &self.cookie.clear());
                Ok(response)
            }
            "GET /v1/staff" => {
                let caller = super::caller(&self.auth, self.cookie, req, now).await?;
                let items = staff::list_staff(&self.store, &caller.practice.practice_id).await?;
                if caller.is_admin() {
                    return Ok(http::page(&items, None));
                }
                // A user name is half of a sign-in: staff see colleagues' names only.
                let items: Vec<serde_json::Value> = items
                    .iter()
                    .filter_map(|a| serde_json::to_value(a).ok())
                    .map(|mut a| {
                        if let Some(fields) = a.as_object_mut() {
                            fields.remove("user");
                        }
                        a
                    })
                    .collect();
                Ok(http::page(&items, None))
            }
            "POST /v1/staff" => {
                let caller = super::caller(&self.auth, self.cookie, req, now).await?;
                if !caller.is_admin() {
                    return Err(super::admin_only("manage staff accounts"));
                }
                let (input, _) =
                    messaging_core::json::parse_json::<NewStaff>(http::body_bytes(req)?)?;
                let account =
                    staff::create_staff(&self.store, &caller.practice.practice_id, &input, now)
                        .await?;
                Ok(http::json(StatusCode::CREATED, &account))
            }
            "DELETE /v1/staff/{id}" => {
                let caller = super::caller(&self.auth, self.cookie, req, now).await?;
                if !caller.is_admin() {
                    return Err(super::admin_only("manage staff accounts"));
                }
                let id = http::path_param(req, "id").unwrap_or_default();
                let by = caller.staff.as_ref().map(|s| s.staff_id.as_str());
                staff::delete_staff(&self.store, &caller.practice.practice_id, &id, by).await?;
                Ok(http::empty(StatusCode::NO_CONTENT))
            }
            _ => Err(http::no_route()),
        }
    }

    fn session_token<'a>(&self, req: &'a Request) -> Option<&'a str> {
        self.cookie.read(http::header(req.headers(), "cookie"))
    }
}

fn not_signed_in() -> AppError {
    AppError::unauthorized("You are not signed in; sign in with your user name and password.")
}

/// 403 `csrf_header_required` unless the request carries
/// `X-Requested-With: console` (what the console's every call sends).
fn require_console_header(req: &Request) -> Result<(), AppError> {
    if http::header(req.headers(), CSRF_HEADER)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(CSRF_VALUE))
    {
        Ok(())
    } else {
        Err(AppError::forbidden(
            "csrf_header_required",
            "A console request that changes something must carry the header 'X-Requested-With: console'.",
        ))
    }
}

fn set_cookie(response: &mut Response<Body>, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(SET_COOKIE, value);
    }
}

/// One of the console's files (gzipped when the browser takes it), or 304
/// when the browser has it already.
fn asset(req: &Request, name: &str) -> Response<Body> {
    let Some(asset) = console_assets::find(name) else {
        return http::error(&AppError::not_found(
            "not_found",
            "the console has no such file",
        ));
    };
    let gzip = http::header(req.headers(), "accept-encoding").is_some_and(|v| {
        v.split(',')
            .any(|e| e.split(';').next().is_some_and(|e| e.trim() == "gzip"))
    }) && !asset.gzipped().is_empty();
    let etag = if gzip {
        asset.gzip_etag()
    } else {
        asset.etag().to_string()
    };
    let fresh = http::header(req.headers(), IF_NONE_MATCH.as_str())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag));
    let mut response = if fresh {
        http::empty(StatusCode::NOT_MODIFIED)
    } else if gzip {
        Response::new(Body::Binary(asset.gzipped().to_vec()))
    } else {
        Response::new(Body::Text(asset.body.to_string()))
    };
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    if gzip && !fresh {
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    headers.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
    // Revalidated on every load (a 304 costs no body), so a deploy shows at once.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(tag) = HeaderValue::from_str(&etag) {
        headers.insert(ETAG, tag);
    }
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    if name.is_empty() {
        headers.insert(
            "content-security-policy",
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
        headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    }
    response
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use lambda_http::http::Method;
    use lambda_http::request::RequestContext;
    use lambda_http::RequestExt;
    use serde_json::Value;

    use super::*;
    use messaging_core::app::auth::generate_key;
    use messaging_core::testing::{sample_practice, MemoryStore};

    /// A request as API Gateway hands it over: method, route key, path
    /// parameters, headers, body.
    fn request(
        method: &str,
        route: &str,
        params: &[(&str, &str)],
        headers: &[(&str, &str)],
        body: &str,
    ) -> Request {
        let mut context =
            lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext::default();
        context.route_key = Some(route.to_string());
        let mut req = lambda_http::http::Request::new(Body::Text(body.to_string()))
            .with_request_context(RequestContext::ApiGatewayV2(context))
            .with_path_parameters(
                params
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<HashMap<_, _>>(),
            );
        *req.method_mut() = Method::from_bytes(method.as_bytes()).unwrap();
        for (k, v) in headers {
            req.headers_mut().insert(
                lambda_http::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        req
    }

    async fn console() -> (ConsoleApi<MemoryStore>, MemoryStore) {
        let store = MemoryStore::default();
        store
            .add_practice(sample_practice("demo"), &generate_key())
            .await;
        staff::create_staff(
            &store,
            "demo",
            &NewStaff {
                user: "dana".into(),
                name: "Dana".into(),
                role: "admin".into(),
                password: "correct horse battery".into(),
            },
            chrono::Utc::now(),
        )
        .await
        .unwrap();
        (
            ConsoleApi::new(store.clone(), SessionCookie { secure: true }),
            store,
        )
    }

    async fn send(api: &ConsoleApi<MemoryStore>, req: Request) -> Response<Body> {
        api.handle(req).await.unwrap()
    }

    fn json(r: &Response<Body>) -> Value {
        serde_json::from_slice(r.body().as_ref()).unwrap_or(Value::Null)
    }

    #[tokio::test]
    async fn sign_in_sets_a_strict_http_only_cookie_and_sign_out_clears_it() {
        let (api, _) = console().await;
        let r = send(
            &api,
            request(
                "POST",
                "POST /v1/sessions",
                &[],
                &[("x-requested-with", "console")],
                r#"{"user": "Dana", "password": "correct horse battery"}"#,
            ),
        )
        .await;
        assert_eq!(r.status(), 201);
        let cookie = r.headers()[SET_COOKIE].to_str().unwrap().to_string();
        assert!(cookie.starts_with("__Host-pm_session=pms_"), "{cookie}");
        for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
            assert!(cookie.contains(attribute), "{cookie}");
        }
        let body = json(&r);
        assert_eq!(body["staff"]["name"], "Dana");
        assert_eq!(body["staff"]["role"], "admin");
        assert_eq!(body["practice_id"], "demo");
        assert!(body["expires_at"].as_str().unwrap().ends_with('Z'));
        let pair = cookie.split(';').next().unwrap().to_string();

        let r = send(
            &api,
            request(
                "GET",
                "GET /v1/sessions/current",
                &[],
                &[("cookie", &pair)],
                "",
            ),
        )
        .await;
        assert_eq!(r.status(), 200);
        assert_eq!(json(&r)["staff"]["name"], "Dana");

        // Sign-out without the console's header is refused.
        let r = send(
            &api,
            request(
                "DELETE",
                "DELETE /v1/sessions/current",
                &[],
                &[("cookie", &pair)],
                "",
            ),
        )
        .await;
        assert_eq!(r.status(), 403);
        assert_eq!(json(&r)["error"]["code"], "csrf_header_required");
        let r = send(
            &api,
            request(
                "DELETE",
                "DELETE /v1/sessions/current",
                &[],
                &[("cookie", &pair), ("x-requested-with", "console")],
                "",
            ),
        )
        .await;
        assert_eq!(r.status(), 204);
        assert!(r.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0"));
        let r = send(
            &api,
            request(
                "GET",
                "GET /v1/sessions/current",
                &[],
                &[("cookie", &pair)],
                "",
            ),
        )
        .await;
        assert_eq!(r.status(), 401);
    }

    #[tokio::test]
    async fn wrong_credentials_are_one_answer_and_bad_bodies_are_named() {
        let (api, _) = console().await;
        let wrong = |body: &'static str| {
            request(
                "POST",
                "POST /v1/sessions",
                &[],
                &[("x-requested-with", "console")],
                body,
            )
        };
        let a = send(&api, wrong(r#"{"user": "dana", "password": "nope"}"#)).await;
        let b = send(&api, wrong(r#"{"user": "zed", "password": "nope"}"#)).await;
        assert_eq!((a.status().as_u16(), b.status().as_u16()), (401, 401));
        assert_eq!(json(&a), json(&b));
        assert_eq!(json(&a)["error"]["code"], "invalid_credentials");
        assert!(a.headers().get(SET_COOKIE).is_none());
        let r = send(&api, wrong(r#"{"user": "dana"}"#)).await;
        assert_eq!(r.status(), 422);
        assert_eq!(json(&r)["error"]["field"], "password");
        let r = send(
            &api,
            wrong(r#"{"user": "dana", "password": "x", "remember": true}"#),
        )
        .await;
        assert_eq!(r.status(), 400);
    }

    #[tokio::test]
    async fn the_console_page_is_served_with_its_policy_and_revalidated() {
        let (api, _) = console().await;
        let r = send(&api, request("GET", "GET /console", &[], &[], "")).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()[CONTENT_TYPE], "text/html; charset=utf-8");
        assert!(r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'"));
        let etag = r.headers()[ETAG].to_str().unwrap().to_string();
        let r = send(
            &api,
            request(
                "GET",
                "GET /console/{asset}",
                &[("asset", "console.js")],
                &[],
                "",
            ),
        )
        .await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()[CONTENT_TYPE], "text/javascript; charset=utf-8");
        let r = send(
            &api,
            request("GET", "GET /console", &[], &[("if-none-match", &etag)], ""),
        )
        .await;
        assert_eq!(r.status(), 304);
        assert!(r.body().is_empty());
        let r = send(
            &api,
            request("GET", "GET /console/{asset}", &[("asset", "x.js")], &[], ""),
        )
        .await;
        assert_eq!(r.status(), 404);
        // A browser that takes gzip gets it, under its own tag.
        let r = send(
            &api,
            request(
                "GET",
                "GET /console/{asset}",
                &[("asset", "console.js")],
                &[("accept-encoding", "gzip, deflate, br")],
                "",
            ),
        )
        .await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()[CONTENT_ENCODING], "gzip");
        assert_eq!(r.headers()[VARY], "Accept-Encoding");
        assert!(r.headers()[ETAG].to_str().unwrap().ends_with("-gz\""));
        assert!(r.body().len() < console_assets::find("console.js").unwrap().body.len() / 2);
    }

    async fn cookie_of(api: &ConsoleApi<MemoryStore>, user: &str) -> String {
        let body = format!(r#"{{"user": "{user}", "password": "correct horse battery"}}"#);
        let r = send(
            api,
            request(
                "POST",
                "POST /v1/sessions",
                &[],
                &[("x-requested-with", "console")],
                &body,
            ),
        )
        .await;
        r.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string()
    }

    #[tokio::test]
    async fn only_admins_manage_staff_accounts() {
        let (api, store) = console().await;
        staff::create_staff(
            &store,
            "demo",
            &NewStaff {
                user: "lee".into(),
                name: "Lee".into(),
                role: "staff".into(),
                password: "correct horse battery".into(),
            },
            chrono::Utc::now(),
        )
        .await
        .unwrap();
        let lee = cookie_of(&api, "lee").await;
        let dana = cookie_of(&api, "dana").await;
        let new =
            r#"{"user": "sam", "name": "Sam", "role": "staff", "password": "another long one"}"#;
        let lee_refs = [("cookie", lee.as_str()), ("x-requested-with", "console")];
        let dana_refs = [("cookie", dana.as_str()), ("x-requested-with", "console")];
        let r = send(&api, request("POST", "POST /v1/staff", &[], &lee_refs, new)).await;
        assert_eq!(r.status(), 403);
        assert_eq!(json(&r)["error"]["code"], "admin_only");
        let r = send(
            &api,
            request("POST", "POST /v1/staff", &[], &dana_refs, new),
        )
        .await;
        assert_eq!(r.status(), 201);
        let sam = json(&r);
        assert_eq!(sam["user"], "sam");
        assert!(sam.get("password_hash").is_none() && sam.get("password").is_none());
        let r = send(&api, request("GET", "GET /v1/staff", &[], &lee_refs, "")).await;
        assert_eq!(r.status(), 200);
        assert_eq!(json(&r)["items"].as_array().unwrap().len(), 3);
        let id = sam["id"].as_str().unwrap();
        let r = send(
            &api,
            request(
                "DELETE",
                "DELETE /v1/staff/{id}",
                &[("id", id)],
                &dana_refs,
                "",
            ),
        )
        .await;
        assert_eq!(r.status(), 204);
    }
    #[tokio::test]
    async fn a_sign_in_without_the_console_header_is_refused_and_not_counted() {
        let (api, store) = console().await;
        for _ in 0..12 {
            let r = send(
                &api,
                request(
                    "POST",
                    "POST /v1/sessions",
                    &[],
                    &[],
                    r#"{"user": "dana", "password": "a guess"}"#,
                ),
            )
            .await;
            assert_eq!(r.status(), 403);
            assert_eq!(json(&r)["error"]["code"], "csrf_header_required");
        }
        assert!(
            store
                .login_failures("dana")
                .await
                .unwrap()
                .is_none_or(|f| f.failures == 0),
            "refused before the password is looked at"
        );
        let r = send(
            &api,
            request(
                "POST",
                "POST /v1/sessions",
                &[],
                &[("x-requested-with", "console")],
                r#"{"user": "dana", "password": "correct horse battery"}"#,
            ),
        )
        .await;
        assert_eq!(r.status(), 201, "the right password still signs in");
    }
}
