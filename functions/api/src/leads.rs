//! `POST /leads`: a web form post becomes a lead.

use std::collections::{BTreeMap, HashSet};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::header::{self, HeaderValue};
use http::{Request, StatusCode, Uri};
use leadflow_app::{Notifier, Store};
use leadflow_domain::lead::{FieldTarget, ProfileField};
use leadflow_domain::{Email, FieldValue, LeadId, Profile, Status};
use serde_json::json;
use tracing::{info, instrument};

use crate::error::ApiError;
use crate::{Api, HttpResponse, MAX_FORM_BYTES, json, media_type};

/// The form field naming where to send a browser after a form post.
const REDIRECT_FIELD: &str = "_redirect";

/// The posted fields, in order, as text.
fn fields(request: &Request<Bytes>) -> Result<Vec<(String, String)>, ApiError> {
    let body = request.body();
    match media_type(request).as_deref() {
        Some("application/json") => {
            let value: serde_json::Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::Malformed(format!("the body is not valid JSON: {e}")))?;
            let serde_json::Value::Object(map) = value else {
                return Err(ApiError::Malformed("the body must be a JSON object of fields".into()));
            };
            let mut out = Vec::with_capacity(map.len());
            let mut invalid = BTreeMap::new();
            for (name, v) in map {
                match v {
                    serde_json::Value::Null => {}
                    serde_json::Value::String(s) => out.push((name, s)),
                    serde_json::Value::Number(n) => out.push((name, n.to_string())),
                    serde_json::Value::Bool(b) => out.push((name, b.to_string())),
                    _ => {
                        invalid.insert(name, "must be text, a number or true/false".to_owned());
                    }
                }
            }
            if invalid.is_empty() { Ok(out) } else { Err(ApiError::Invalid(invalid)) }
        }
        Some("application/x-www-form-urlencoded") => {
            Ok(form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
        }
        Some(other) => Err(ApiError::UnsupportedMediaType(format!(
            "`{other}` is not accepted; post application/json or application/x-www-form-urlencoded"
        ))),
        None => Err(ApiError::UnsupportedMediaType(
            "a Content-Type is required: application/json or application/x-www-form-urlencoded".into(),
        )),
    }
}

/// The `?source=` of the request, if any.
fn source(uri: &Uri) -> Option<String> {
    form_urlencoded::parse(uri.query()?.as_bytes()).find(|(k, _)| k == "source").map(|(_, v)| v.trim().to_owned())
}

/// The redirect target, when it is an http(s) address on an allowed origin.
fn redirect_target<S, N>(api: &Api<S, N>, value: &str) -> Option<HeaderValue> {
    let uri: Uri = value.trim().parse().ok()?;
    let (scheme, authority) = (uri.scheme_str()?, uri.authority()?);
    if !matches!(scheme, "http" | "https") || !api.config.allows(&format!("{scheme}://{authority}")) {
        return None;
    }
    HeaderValue::from_str(value.trim()).ok()
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
    let capture = &rules.capture;
    let source = source(request.uri()).filter(|s| !s.is_empty());
    tracing::Span::current().record("source", source.as_deref().unwrap_or("-"));
    let posted = fields(request)?;

    let mut redirect = None;
    let mut honeypot = false;
    let mut email = None;
    let mut fields: Vec<FieldValue> = Vec::new();
    let mut present: HashSet<FieldTarget> = HashSet::new();
    let mut invalid = BTreeMap::new();
    for (name, value) in posted {
        let value = value.trim();
        if name == REDIRECT_FIELD {
            if !value.is_empty() {
                redirect = redirect_target(api, value);
                if redirect.is_none() {
                    invalid.insert(name, "must be an http(s) address on an allowed origin".to_owned());
                }
            }
            continue;
        }
        if capture.honeypot.as_deref() == Some(name.as_str()) {
            honeypot |= !value.is_empty();
            continue;
        }
        if value.is_empty() {
            continue;
        }
        match capture.target_for(source.as_deref(), &name) {
            Some(FieldTarget::Profile(ProfileField::Email)) => email = Some(value.to_owned()),
            Some(target) => {
                present.insert(target.clone());
                let name = target.to_string();
                match FieldValue::parse(target, value) {
                    Ok(field) => fields.extend(field),
                    Err(e) => {
                        invalid.insert(name, e.to_string());
                    }
                }
            }
            None => {
                invalid.insert(
                    name,
                    "is not a name leadflow can store (letters, digits, `_` and `-`, at most 64)".to_owned(),
                );
            }
        }
    }

    let email = match email.as_deref().map(Email::parse) {
        None => {
            invalid.insert("email".to_owned(), "is required".to_owned());
            None
        }
        Some(Err(e)) => {
            invalid.insert("email".to_owned(), e.to_string());
            None
        }
        Some(Ok(email)) => Some(email),
    };
    for required in &capture.required {
        if *required != FieldTarget::Profile(ProfileField::Email) && !present.contains(required) {
            invalid.entry(required.to_string()).or_insert_with(|| "is required".to_owned());
        }
    }
    // Every field's error at once, so that a form can show them all.
    let Some(email) = email.filter(|_| invalid.is_empty()) else {
        return Err(ApiError::Invalid(invalid));
    };
    let mut profile = Profile::new(email);
    for field in fields {
        profile.apply(field);
    }
    if profile.source.is_none() {
        profile.source = source;
    }

    let (lead_id, status, created) = if honeypot {
        // A bot filled the hidden field: answer as usual, store nothing.
        info!(honeypot = true, "form post caught by the honeypot; nothing stored");
        (LeadId::for_email(&profile.email), Status::Nurturing, true)
    } else {
        let outcome = api.service.capture(profile, now).await?;
        info!(lead_id = %outcome.lead.id, created = outcome.created, status = %outcome.lead.status.as_str(), "lead captured");
        (outcome.lead.id, outcome.lead.status, outcome.created)
    };
    if let Some(location) = redirect {
        let mut r = json(StatusCode::SEE_OTHER, &json!({ "lead_id": lead_id, "status": status, "created": created }));
        r.headers_mut().insert(header::LOCATION, location);
        return Ok(r);
    }
    let code = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok(json(code, &json!({ "lead_id": lead_id, "status": status, "created": created })))
}
