//! `POST /leads`: a web form post becomes a lead.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::header::{self, HeaderValue};
use http::{Request, StatusCode, Uri};
use leadflow_app::{Notifier, Store};
use leadflow_domain::LeadId;
use leadflow_domain::form::{self, Warning};
use leadflow_domain::formats::{self, Body};
use serde_json::json;
use tracing::{info, instrument};

use crate::error::ApiError;
use crate::{Api, HttpResponse, MAX_FORM_BYTES, json, media_type};

/// The body as sent: a JSON object, or a form's fields in order
/// (urlencoded or multipart; uploaded files are left out).
pub(crate) async fn body(request: &Request<Bytes>) -> Result<Body, ApiError> {
    let bytes = request.body();
    match media_type(request).as_deref() {
        Some("application/json") => {
            let value: serde_json::Value = serde_json::from_slice(bytes)
                .map_err(|e| ApiError::Malformed(format!("the body is not valid JSON: {e}")))?;
            if !value.is_object() {
                return Err(ApiError::Malformed("the body must be a JSON object of fields".into()));
            }
            Ok(Body::Json(value))
        }
        Some("application/x-www-form-urlencoded") => {
            Ok(Body::Pairs(form_urlencoded::parse(bytes).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()))
        }
        Some("multipart/form-data") => {
            let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
            let boundary = multer::parse_boundary(content_type)
                .map_err(|e| ApiError::Malformed(format!("a multipart body needs its boundary: {e}")))?;
            let chunk = bytes.clone();
            let stream = futures_util::stream::once(async move { Ok::<Bytes, std::convert::Infallible>(chunk) });
            let mut multipart = multer::Multipart::new(stream, boundary);
            let mut pairs = Vec::new();
            let malformed = |e: multer::Error| ApiError::Malformed(format!("the multipart body is not valid: {e}"));
            while let Some(field) = multipart.next_field().await.map_err(malformed)? {
                let name = field.name().map(str::to_owned);
                let file = field.file_name().is_some();
                let text = field.text().await.map_err(malformed)?;
                if let (Some(name), false) = (name, file) {
                    pairs.push((name, text));
                }
            }
            Ok(Body::Pairs(pairs))
        }
        Some(other) => Err(ApiError::UnsupportedMediaType(format!(
            "`{other}` is not accepted; post application/json, application/x-www-form-urlencoded or multipart/form-data"
        ))),
        None => Err(ApiError::UnsupportedMediaType(
            "a Content-Type is required: application/json, application/x-www-form-urlencoded or multipart/form-data"
                .into(),
        )),
    }
}

/// The `?source=` of the request, if any.
/// A source name is a short plain word (letters, digits, `_`, `-`, `.`, at most
/// 64): anything else names no source and is left out of the lead.
pub(crate) fn source(uri: &Uri) -> Option<String> {
    let value = form_urlencoded::parse(uri.query()?.as_bytes()).find(|(k, _)| k == "source").map(|(_, v)| v)?;
    let value = value.trim();
    let plain = value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    (plain && !value.is_empty() && value.len() <= 64).then(|| value.to_owned())
}

/// The redirect target: an http(s) address on an allowed origin, or a path on
/// this host (`/thanks`: letters, digits, `/`, `-`, `_`, `.`, never `//`, so no
/// browser reads it as another host).
fn redirect_target<S, N>(api: &Api<S, N>, value: &str) -> Option<HeaderValue> {
    let value = value.trim();
    if let Some(path) = value.strip_prefix('/') {
        let plain = path.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.'));
        return (plain && !path.starts_with('/')).then(|| HeaderValue::from_str(value).ok()).flatten();
    }
    let uri: Uri = value.parse().ok()?;
    let (scheme, authority) = (uri.scheme_str()?, uri.authority()?);
    if !matches!(scheme, "http" | "https") || !api.config.allows(&format!("{scheme}://{authority}")) {
        return None;
    }
    HeaderValue::from_str(value).ok()
}

#[instrument(skip_all, fields(source))]
pub(crate) async fn post<S: Store, N: Notifier>(
    api: &Api<S, N>,
    request: &Request<Bytes>,
    now: DateTime<Utc>,
) -> Result<HttpResponse, ApiError> {
    if request.body().len() > MAX_FORM_BYTES {
        return Err(ApiError::TooLarge { limit: MAX_FORM_BYTES });
    }
    let rules = &api.service.rules;
    let source = source(request.uri());
    tracing::Span::current().record("source", source.as_deref().unwrap_or("-"));
    crate::auth::verify(&rules.capture, &api.config.source_secrets, source.as_deref(), request, now)?;
    let format = rules.capture.format(source.as_deref());
    let posted = formats::fields(format, body(request).await?).map_err(|why| {
        ApiError::Malformed(format!("the body is not what a `{}` source sends: {why}", format.name()))
    })?;
    let form =
        form::read(&rules.capture, source.as_deref(), posted).map_err(|refused| ApiError::Invalid(refused.errors))?;
    let mut warnings = form.warnings;
    let redirect = match form.redirect.as_deref() {
        Some(value) => {
            let target = redirect_target(api, value);
            if target.is_none() {
                warnings.push(Warning {
                    field: "_redirect".to_owned(),
                    problem: "not followed: it must be a path on this host or an http(s) address on an allowed origin"
                        .to_owned(),
                });
            }
            target
        }
        None => None,
    };
    let lead_id = LeadId::for_email(&form.profile.email);
    if form.honeypot {
        // A bot filled a hidden field: answer as usual, store nothing.
        info!(honeypot = true, lead_id = %lead_id, "form post caught by a honeypot; nothing stored");
    } else {
        let outcome = api.service.capture(form.profile, &warnings, now).await?;
        info!(
            lead_id = %outcome.lead.id,
            created = outcome.created,
            warnings = warnings.len(),
            status = %outcome.lead.status.as_str(),
            "lead captured"
        );
    }
    // The same answer for a new and a known email, and nothing of the lead's
    // state: anyone can post any address.
    let body = json!({ "accepted": true, "lead_id": lead_id, "warnings": warnings });
    if let Some(location) = redirect {
        let mut r = json(StatusCode::SEE_OTHER, &body);
        r.headers_mut().insert(header::LOCATION, location);
        return Ok(r);
    }
    Ok(json(StatusCode::ACCEPTED, &body))
}
