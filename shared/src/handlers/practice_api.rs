//! `GET /v1/settings`, `PUT/GET /v1/patients/{id}`.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};

use crate::adapters::dynamo::DynamoStore;
use crate::app::auth::Authenticator;
use crate::config::{self, ConfigError};
use crate::domain::error::AppError;
use crate::domain::patient::{validate_id, PatientInput};
use crate::domain::practice::Practice;
use crate::http;
use crate::ports::PracticeStore;

/// The practice function: settings and patients.
pub struct PracticeApi {
    auth: Authenticator<DynamoStore>,
    store: DynamoStore,
}

/// Today's date in the practice's time zone.
fn practice_today(practice: &Practice) -> chrono::NaiveDate {
    let tz: chrono_tz::Tz = practice.timezone.parse().unwrap_or(chrono_tz::UTC);
    chrono::Utc::now().with_timezone(&tz).date_naive()
}

impl PracticeApi {
    /// Reads `TABLE_NAME`; builds the client once.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let [table] = config::require(["TABLE_NAME"])?;
        let aws = crate::adapters::aws_config().await;
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), table);
        Ok(Self {
            auth: Authenticator::new(store.clone()),
            store,
        })
    }

    /// Handles one HTTP request.
    pub async fn handle(&self, req: Request) -> Result<Response<Body>, std::convert::Infallible> {
        let route = http::route_key(&req);
        Ok(super::respond(&route, self.route(&route, &req).await))
    }

    async fn route(&self, route: &str, req: &Request) -> Result<Response<Body>, AppError> {
        let practice = self.auth.practice(super::authorization(req)).await?;
        match route {
            "GET /v1/settings" => Ok(http::json(StatusCode::OK, &practice)),
            "PUT /v1/patients/{id}" => {
                let id = http::path_param(req, "id").unwrap_or_default();
                validate_id(&id, "patient_id")?;
                let (input, _) = http::parse_json::<PatientInput>(http::body_bytes(req)?)?;
                // Re-syncing a patient must not undo their STOP.
                let opted_out = self
                    .store
                    .get_patient(&practice.practice_id, &id)
                    .await?
                    .is_some_and(|p| p.sms_opted_out);
                let patient = input.into_patient(&id, practice_today(&practice), opted_out)?;
                self.store
                    .put_patient(&practice.practice_id, &patient)
                    .await?;
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
                Ok(http::json(StatusCode::OK, &patient))
            }
            _ => Err(http::no_route()),
        }
    }
}
