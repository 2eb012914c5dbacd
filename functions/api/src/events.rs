//! `POST /events`: engagement events from marketing tools and sales events from
//! the CRM, signed with the shared secret.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use http::{Request, StatusCode};
use leadflow_app::{EventResult, Happening, Notifier, Recorded, ServiceError, Store};
use leadflow_domain::lead::Bant;
use leadflow_domain::rules::field::{EventVocabulary, valid_event_name};
use leadflow_domain::rules::lifecycle::{DealOutcome, SalesEvent};
use leadflow_domain::{Email, LeadId, Refusal, form, formats};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;
use tracing::{info, instrument, warn};

use crate::error::ApiError;
use crate::{Api, HttpResponse, MAX_EVENTS_BYTES, json, media_type};

pub const TIMESTAMP_HEADER: &str = "x-leadflow-timestamp";
pub const SIGNATURE_HEADER: &str = "x-leadflow-signature";
/// How far a request's timestamp may be from now, either way.
const WINDOW_SECONDS: i64 = 5 * 60;
/// The most events in one request.
pub const MAX_BATCH: usize = 100;

/// The signature header value for `body` sent at `timestamp` (Unix seconds):
/// `sha256=` and the hex HMAC-SHA256 of `"{timestamp}.{body}"`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!("sha256={}", hex::encode(mac(secret, &timestamp.to_string(), body).finalize().into_bytes()))
}

/// The HMAC-SHA256 of `"{timestamp}.{body}"`.
fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Checks the signature; returns it (hex), which names the request for replays.
fn verify(secret: &[u8], request: &Request<Bytes>, now: DateTime<Utc>) -> Result<String, ApiError> {
    if secret.is_empty() {
        // Without a secret every signature could be forged: take no events at all.
        return Err(ApiError::Unauthorized("this endpoint has no events secret configured"));
    }
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
    let sent = header(TIMESTAMP_HEADER).ok_or(ApiError::Unauthorized("X-Leadflow-Timestamp is missing"))?.trim();
    let timestamp: i64 =
        sent.parse().map_err(|_| ApiError::Unauthorized("X-Leadflow-Timestamp is not Unix seconds"))?;
    if (now.timestamp() - timestamp).abs() > WINDOW_SECONDS {
        return Err(ApiError::Unauthorized("the timestamp is more than 5 minutes away"));
    }
    let signature = header(SIGNATURE_HEADER)
        .ok_or(ApiError::Unauthorized("X-Leadflow-Signature is missing"))?
        .trim()
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or(ApiError::Unauthorized("X-Leadflow-Signature is not sha256=HEX"))?;
    // The signature covers the timestamp exactly as sent.
    mac(secret, sent, request.body())
        .verify_slice(&signature)
        .map_err(|_| ApiError::Unauthorized("the signature does not match"))?;
    Ok(hex::encode(signature))
}

/// One event as posted.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Posted {
    /// The sender's id for the event: a repeat changes nothing.
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    lead_id: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    at: Option<DateTime<Utc>>,
    #[serde(default)]
    properties: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    bant: Option<Bant>,
    #[serde(default)]
    reason: Option<String>,
    /// An `outcome`'s `won` or `lost` (also read from `properties.result`).
    #[serde(default)]
    result: Option<String>,
}

/// Why one event of a request was not applied.
#[derive(Debug)]
struct Refused {
    code: &'static str,
    message: String,
}

impl Refused {
    fn invalid(message: impl Into<String>) -> Refused {
        Refused { code: "invalid", message: message.into() }
    }
}

/// What an event is.
enum Kind {
    Engagement(String),
    Sales(SalesEvent),
}

fn kind_of(posted: &Posted, events: &EventVocabulary) -> Result<Kind, Refused> {
    let property = |name: &str| posted.properties.as_ref().and_then(|p| p.get(name)).cloned();
    Ok(match posted.kind.as_str() {
        "contacted" => Kind::Sales(SalesEvent::Contacted),
        "contact_attempt" => Kind::Sales(SalesEvent::ContactAttempt),
        "converted" => Kind::Sales(SalesEvent::Converted),
        "nurture" => Kind::Sales(SalesEvent::Nurture),
        "qualified" => {
            let bant = match (posted.bant, property("bant")) {
                (Some(b), _) => b,
                (None, Some(v)) => serde_json::from_value(v).map_err(|e| {
                    Refused::invalid(format!("`bant` must hold budget, authority, need, timeline as true/false: {e}"))
                })?,
                (None, None) => return Err(Refused::invalid("a `qualified` event needs `bant`")),
            };
            Kind::Sales(SalesEvent::Qualified(bant))
        }
        "disqualified" => {
            let reason =
                posted.reason.clone().or_else(|| property("reason").and_then(|v| v.as_str().map(str::to_owned)));
            match reason {
                Some(reason) if !reason.trim().is_empty() => Kind::Sales(SalesEvent::Disqualified { reason }),
                _ => return Err(Refused::invalid("a `disqualified` event needs a `reason`")),
            }
        }
        "outcome" => {
            // A number or a text; anything else is not an amount.
            let text = |v: Value| match v {
                Value::String(s) => Some(s),
                Value::Number(n) => Some(n.to_string()),
                Value::Null => None,
                _ => Some(String::from("not a number")),
            };
            let result = posted.result.clone().or_else(|| property("result").and_then(text));
            let Some(result) = result else {
                return Err(Refused::invalid("an `outcome` event needs a `result`: won or lost"));
            };
            let amount = property("amount").and_then(text);
            let currency = property("currency").and_then(text);
            let deal = DealOutcome::parse(&result, amount.as_deref(), currency.as_deref()).map_err(Refused::invalid)?;
            Kind::Sales(SalesEvent::Outcome(deal))
        }
        "form_submission" => return Err(Refused::invalid("form submissions are posted to /leads")),
        other if events.slot(other).is_some() => Kind::Engagement(other.to_owned()),
        other if valid_event_name(other) => {
            // Only the types the rules name are taken, so no sender can grow a
            // lead's history with invented ones.
            let known = events.names().iter().filter(|n| *n != "form_submission").cloned().collect::<Vec<_>>();
            return Err(Refused::invalid(format!(
                "`{other}` is not an event type the rules name; they name {}, and the sales events contacted, \
                 contact_attempt, qualified, disqualified, converted, outcome and nurture",
                known.join(", ")
            )));
        }
        _ => return Err(Refused::invalid("`type` must be a name of lower-case letters, digits and `_`")),
    })
}

fn lead_id_of(posted: &Posted) -> Result<LeadId, Refused> {
    match (&posted.email, &posted.lead_id) {
        (Some(email), None) => {
            Email::parse(email).map(|e| LeadId::for_email(&e)).map_err(|e| Refused::invalid(e.to_string()))
        }
        (None, Some(id)) => LeadId::parse(id).map_err(|e| Refused::invalid(e.to_string())),
        _ => Err(Refused::invalid("an event names its lead by `email` or by `lead_id`, one of them")),
    }
}

fn summary(r: &EventResult) -> Value {
    json!({ "lead_id": r.lead_id, "status": r.status, "score": r.score, "tier": r.tier, "owner": r.owner })
}

/// The longest event id a sender may give.
const MAX_EVENT_ID_CHARS: usize = 128;

/// The id an event is deduplicated by: the sender's own, or, without one, the
/// request's signature and the event's place in it, so that a request replayed
/// verbatim changes nothing.
fn event_id_of(posted: &Posted, signature: &str, index: usize) -> Result<String, Refused> {
    match &posted.id {
        Some(id) => {
            let id = id.trim();
            let printable = id.chars().all(|c| c.is_ascii_graphic());
            if id.is_empty() || id.chars().count() > MAX_EVENT_ID_CHARS || !printable {
                return Err(Refused::invalid(format!(
                    "`id` must be 1 to {MAX_EVENT_ID_CHARS} printable ASCII characters without spaces"
                )));
            }
            Ok(format!("id:{id}"))
        }
        None => Ok(format!("sig:{}#{index}", &signature[..signature.len().min(32)])),
    }
}

/// The events of a request in leadflow's own format: one event or
/// `{"events": [...]}`.
fn leadflow_events(request: &Request<Bytes>) -> Result<Vec<Value>, ApiError> {
    if media_type(request).as_deref() != Some("application/json") {
        return Err(ApiError::UnsupportedMediaType("events are posted as application/json".into()));
    }
    let body: Value = serde_json::from_slice(request.body())
        .map_err(|e| ApiError::Malformed(format!("the body is not valid JSON: {e}")))?;
    let events = match body {
        Value::Object(mut map) if map.contains_key("events") => match map.remove("events") {
            Some(Value::Array(events)) => events,
            _ => return Err(ApiError::Malformed("`events` must be a list of events".into())),
        },
        single @ Value::Object(_) => vec![single],
        _ => return Err(ApiError::Malformed("the body must be an event or {\"events\": [...]}".into())),
    };
    Ok(events)
}

#[instrument(skip_all, fields(events))]
pub(crate) async fn post<S: Store, N: Notifier>(
    api: &Api<S, N>,
    request: &Request<Bytes>,
    now: DateTime<Utc>,
) -> Result<HttpResponse, ApiError> {
    // The size first: a body over the limit is not worth hashing.
    if request.body().len() > MAX_EVENTS_BYTES {
        return Err(ApiError::TooLarge { limit: MAX_EVENTS_BYTES });
    }
    // A source that sends events (`events:` in capture.yaml) is authenticated
    // and read its own way; anything else is leadflow's signed format.
    let source = crate::leads::source(request.uri());
    let from_source = source
        .as_deref()
        .and_then(|name| api.service.rules.capture.sources.get(name))
        .and_then(|spec| Some((spec.format, spec.events.as_ref()?)));
    let (signature, events) = match from_source {
        Some((format, spec)) => {
            crate::auth::verify(
                &api.service.rules.capture,
                &api.config.source_secrets,
                source.as_deref(),
                request,
                now,
            )?;
            let fields = formats::fields(format, crate::leads::body(request).await?)
                .map_err(|why| ApiError::Malformed(format!("the body is not what this source sends: {why}")))?;
            let event = match form::read_event(spec, &fields) {
                Ok(event) => event,
                Err(why) => {
                    let result = json!({ "index": 0, "ok": false, "error": { "code": "invalid", "message": why } });
                    return Ok(json(StatusCode::OK, &json!({ "results": [result] })));
                }
            };
            // Without the sender's id, the body is the id: a redelivery changes nothing.
            let digest = hex::encode(<Sha256 as sha2::Digest>::digest(request.body()));
            (format!("{}{digest}", source.as_deref().unwrap_or_default()), vec![event])
        }
        None => (verify(&api.config.events_secret, request, now)?, leadflow_events(request)?),
    };
    if events.is_empty() {
        return Err(ApiError::invalid("events", "is empty"));
    }
    if events.len() > MAX_BATCH {
        return Err(ApiError::invalid("events", format!("holds {} events; at most {MAX_BATCH}", events.len())));
    }
    tracing::Span::current().record("events", events.len());

    let mut results = Vec::with_capacity(events.len());
    let mut unavailable = false;
    for (index, event) in events.into_iter().enumerate() {
        let outcome = apply(api, event, &signature, index, now).await;
        let result = match outcome {
            Ok(recorded) => {
                let mut r = json!({ "index": index, "ok": true, "lead": summary(&recorded.result) });
                if recorded.repeat {
                    r["repeat"] = json!(true);
                }
                r
            }
            Err(refused) => {
                unavailable |= matches!(refused.code, "unavailable" | "busy");
                json!({ "index": index, "ok": false, "error": { "code": refused.code, "message": refused.message } })
            }
        };
        results.push(result);
    }
    // A store outage or a lead too busy answers 503 so that the sender retries;
    // the results say which events were applied, and their ids make a retry safe.
    let status = if unavailable { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    let mut response = json(status, &json!({ "results": results }));
    if unavailable {
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, http::HeaderValue::from_static(crate::error::RETRY_AFTER_SECONDS));
    }
    Ok(response)
}

async fn apply<S: Store, N: Notifier>(
    api: &Api<S, N>,
    event: Value,
    signature: &str,
    index: usize,
    now: DateTime<Utc>,
) -> Result<Recorded, Refused> {
    let posted: Posted = serde_json::from_value(event).map_err(|e| Refused::invalid(e.to_string()))?;
    let id = lead_id_of(&posted)?;
    let kind = kind_of(&posted, &api.service.rules.events)?;
    let event_id = event_id_of(&posted, signature, index)?;
    // When it happened drives activity; the clocks run from now.
    let happened_at = posted.at.unwrap_or(now);
    let counts;
    let what = match &kind {
        Kind::Engagement(name) => {
            counts = [(name.clone(), 1)];
            Happening::Engagement(&counts)
        }
        Kind::Sales(event) => Happening::Sales(event),
    };
    match api.service.record(&id, what, happened_at, Some(&event_id), now).await {
        Ok(Some(recorded)) => {
            info!(lead_id = %id, event = %posted.kind, repeat = recorded.repeat, status = recorded.result.status.as_str(), "event applied");
            Ok(recorded)
        }
        Ok(None) => Err(Refused { code: "unknown_lead", message: "no lead has this email or id".into() }),
        Err(ServiceError::Refused(Refusal::FromTheFuture { at })) => {
            Err(Refused::invalid(format!("`at` ({at}) is in the future")))
        }
        Err(ServiceError::Refused(e)) => Err(Refused { code: "rejected", message: e.to_string() }),
        Err(ServiceError::Busy) => {
            Err(Refused { code: "busy", message: "the lead kept changing; send it again".into() })
        }
        Err(e) => {
            warn!(lead_id = %id, error = %e, "event not applied");
            Err(Refused { code: "unavailable", message: "the store is unavailable; send it again".into() })
        }
    }
}
