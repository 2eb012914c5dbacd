//! Every error the API answers, and the one place that maps them to HTTP.

use std::collections::BTreeMap;

use http::StatusCode;
use leadflow_app::ServiceError;
use serde_json::json;
use thiserror::Error;
use tracing::error;

use crate::{HttpResponse, json};

/// How long a client should wait before sending again after a 503.
pub const RETRY_AFTER_SECONDS: &str = "1";

#[derive(Debug, Error)]
pub enum ApiError {
    /// The body cannot be read as the request says it is.
    #[error("{0}")]
    Malformed(String),
    #[error("a valid X-Leadflow-Signature is required: {0}")]
    Unauthorized(&'static str),
    /// A source that authenticates its sender, and this request's proof failed.
    #[error("this source's sender must authenticate: {0}")]
    SourceUnauthorized(&'static str),
    #[error("the body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Well-formed, but some fields are not valid; by field name.
    #[error("some fields are not valid")]
    Invalid(BTreeMap<String, String>),
    #[error("no such resource; the API has POST /leads and POST /events")]
    NotFound,
    #[error("this resource takes POST")]
    MethodNotAllowed,
    /// The store or another dependency failed; the cause is logged, never shown.
    #[error("internal error")]
    Internal(#[source] ServiceError),
}

impl ApiError {
    pub fn invalid(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::Invalid(BTreeMap::from([(field.to_owned(), message.into())]))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Malformed(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) | ApiError::SourceUnauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Internal(ServiceError::Busy) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Malformed(_) => "malformed",
            ApiError::Unauthorized(_) | ApiError::SourceUnauthorized(_) => "unauthorized",
            ApiError::TooLarge { .. } => "too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Invalid(_) => "invalid",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Internal(ServiceError::Busy) => "busy",
            ApiError::Internal(_) => "internal",
        }
    }

    /// `{"error": {"code", "message", "fields"?}}` with the status.
    pub fn into_response(self) -> HttpResponse {
        if let ApiError::Internal(cause) = &self {
            error!(error = %cause, source = ?std::error::Error::source(cause), "request failed");
        }
        let message = match &self {
            ApiError::Internal(ServiceError::Busy) => "the lead is changing; try again".to_owned(),
            other => other.to_string(),
        };
        let mut body = json!({ "error": { "code": self.code(), "message": message } });
        if let ApiError::Invalid(fields) = &self {
            body["error"]["fields"] = json!(fields);
        }
        let mut response = json(self.status(), &body);
        if self.status() == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, http::HeaderValue::from_static(RETRY_AFTER_SECONDS));
        }
        response
    }
}

/// The error code an error response answers with (by its status, for
/// answers made elsewhere, such as a source's refusal).
pub fn code_of(response: &HttpResponse) -> &'static str {
    match response.status() {
        StatusCode::BAD_REQUEST => "malformed",
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => "unauthorized",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::SERVICE_UNAVAILABLE => "busy",
        s if s.is_server_error() => "internal",
        _ => "other",
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Refused(reason) => ApiError::invalid("type", reason.to_string()),
            other => ApiError::Internal(other),
        }
    }
}
