//! leadflow's HTTP API: `POST /leads` and `POST /events`, written once over
//! `http` types so that the Lambdas (through `lambda_http`) and `leadflow serve`
//! (through axum) run exactly the same code. The caller passes "now".

mod auth;
mod error;
mod events;
mod leads;

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use leadflow_app::{Leadflow, Notifier, Store};

pub use auth::{MissingSecret, SourceSecrets, vendor_signature};
pub use error::ApiError;
pub use events::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};

/// The largest lead form body.
pub const MAX_FORM_BYTES: usize = 64 * 1024;
/// The largest events body (a batch of 100 events with properties).
pub const MAX_EVENTS_BYTES: usize = 512 * 1024;

/// What the API needs besides the service.
#[derive(Clone, Debug, Default)]
pub struct ApiConfig {
    /// The secret `/events` signatures are made with.
    pub events_secret: Vec<u8>,
    /// Origins (`https://www.example.com`) whose pages may post to the API
    /// from a browser (CORS) and that a form's `_redirect` may send people to.
    pub allowed_origins: Vec<String>,
    /// The secrets of the sources whose senders authenticate (`auth:` in
    /// `capture.yaml`).
    pub source_secrets: SourceSecrets,
}

impl ApiConfig {
    fn allows(&self, origin: &str) -> bool {
        self.allowed_origins.iter().any(|o| o.eq_ignore_ascii_case(origin.trim_end_matches('/')))
    }
}

/// The HTTP API over a service.
#[derive(Debug)]
pub struct Api<S, N> {
    pub service: Arc<Leadflow<S, N>>,
    pub config: ApiConfig,
}

pub type HttpResponse = Response<String>;

impl<S: Store, N: Notifier> Api<S, N> {
    pub fn new(service: Arc<Leadflow<S, N>>, config: ApiConfig) -> Self {
        Api { service, config }
    }

    /// Answers one request at `now`.
    pub async fn handle(&self, request: Request<Bytes>, now: DateTime<Utc>) -> HttpResponse {
        let origin = request
            .headers()
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok())
            .filter(|o| self.config.allows(o))
            .map(str::to_owned);
        let path = request.uri().path().trim_end_matches('/').to_owned();
        let mut response = match (request.method(), path.as_str()) {
            (&Method::OPTIONS, "/leads" | "/events") => preflight(),
            (&Method::POST, "/leads") => leads::post(self, &request, now).await.unwrap_or_else(ApiError::into_response),
            (&Method::POST, "/events") => {
                events::post(self, &request, now).await.unwrap_or_else(ApiError::into_response)
            }
            (_, "/leads" | "/events") => ApiError::MethodNotAllowed.into_response(),
            _ => ApiError::NotFound.into_response(),
        };
        if let Some(metrics) = &self.service.metrics
            && (response.status().is_client_error() || response.status().is_server_error())
        {
            metrics.rejected(error::code_of(&response));
        }
        if let Some(origin) = origin
            && let Ok(value) = HeaderValue::from_str(&origin)
        {
            let headers = response.headers_mut();
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
            headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        }
        response
    }
}

/// A CORS preflight: the allowed origin is added by `handle`; without it the
/// browser refuses the request.
fn preflight() -> HttpResponse {
    let mut r = Response::new(String::new());
    *r.status_mut() = StatusCode::NO_CONTENT;
    let h = r.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST, OPTIONS"));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type, x-leadflow-timestamp, x-leadflow-signature"),
    );
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    r
}

/// A JSON response.
pub(crate) fn json(status: StatusCode, body: &serde_json::Value) -> HttpResponse {
    let mut r = Response::new(body.to_string());
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// The media type of a request, lower case, without parameters; `None` without one.
pub(crate) fn media_type(request: &Request<Bytes>) -> Option<String> {
    let value = request.headers().get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(value.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
}

/// A lead as the API and the CLI show it: every stored field, with `email`,
/// `owner` (null when none), `score`, `tier`, `created_at` and `updated_at` at the top.
pub fn lead_view(lead: &leadflow_domain::Lead) -> serde_json::Value {
    let mut view = serde_json::to_value(lead).unwrap_or_default();
    view["email"] = serde_json::json!(lead.profile.email.as_str());
    view["owner"] = serde_json::json!(lead.owner);
    view
}
