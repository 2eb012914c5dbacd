//! How a source's sender proves who it is on `POST /leads?source=NAME`, as
//! `capture.yaml` declares per source (`auth:`): a shared secret in a header,
//! in HTTP basic auth or in a query token, or the vendor's own signature
//! (HubSpot v3, Typeform, Webflow, Tally). Every comparison is constant-time;
//! secrets are never logged. A source without `auth` takes posts from anyone,
//! as a web form on a public page must.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use http::Request;
use leadflow_domain::rules::capture::{Capture, SourceAuthKind};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// How old a vendor's signed timestamp may be.
const MAX_AGE_MS: i64 = 5 * 60 * 1000;

/// The secrets of the sources that authenticate, by source name.
#[derive(Clone, Default)]
pub struct SourceSecrets(BTreeMap<String, Vec<u8>>);

impl std::fmt::Debug for SourceSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The names only: a secret never reaches a log.
        f.debug_list().entries(self.0.keys()).finish()
    }
}

/// A variable a source's `auth` names that is not set.
#[derive(Debug, thiserror::Error)]
#[error("source `{source_name}` authenticates with the secret in {variable}, which is not set")]
pub struct MissingSecret {
    pub source_name: String,
    pub variable: String,
}

impl SourceSecrets {
    /// Each authenticating source's secret, read through `var` (the
    /// environment) by the variable its `auth` names, and the sources whose
    /// variable is not set (they refuse every post until it is).
    pub fn load(capture: &Capture, var: impl Fn(&str) -> Option<String>) -> (SourceSecrets, Vec<MissingSecret>) {
        let mut secrets = BTreeMap::new();
        let mut missing = Vec::new();
        for (name, source) in &capture.sources {
            let Some(auth) = &source.auth else { continue };
            match var(&auth.secret).filter(|v| !v.is_empty()) {
                Some(value) => {
                    secrets.insert(name.clone(), value.into_bytes());
                }
                None => missing.push(MissingSecret { source_name: name.clone(), variable: auth.secret.clone() }),
            }
        }
        (SourceSecrets(secrets), missing)
    }

    /// The secrets by source name.
    pub fn into_map(self) -> BTreeMap<String, Vec<u8>> {
        self.0
    }

    /// Secrets given directly (tests, `leadflow serve`).
    pub fn from_map(secrets: BTreeMap<String, Vec<u8>>) -> SourceSecrets {
        SourceSecrets(secrets)
    }
}

/// Whether `request` comes from `source`'s sender; `Ok` for a source without
/// `auth`.
pub(crate) fn verify(
    capture: &Capture,
    secrets: &SourceSecrets,
    source: Option<&str>,
    request: &Request<Bytes>,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let Some((name, auth)) =
        source.and_then(|s| capture.sources.get_key_value(s)).and_then(|(n, s)| Some((n, s.auth.as_ref()?)))
    else {
        return Ok(());
    };
    // A source that authenticates but has no secret refuses everything.
    let secret = secrets.0.get(name.as_str()).map(Vec::as_slice).unwrap_or_default();
    let denied = |why: &'static str| Err(ApiError::SourceUnauthorized(why));
    if secret.is_empty() {
        return denied("this source's secret is not configured");
    }
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let body = request.body().as_ref();
    match &auth.kind {
        SourceAuthKind::Header(name) => match header(name) {
            Some(sent) if equal(sent.as_bytes(), secret) => Ok(()),
            _ => denied("the source's secret header is missing or wrong"),
        },
        SourceAuthKind::Basic => {
            let sent = header("authorization")
                .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")))
                .and_then(|b| BASE64.decode(b.trim()).ok());
            // `user:password`, compared whole with the secret.
            match sent {
                Some(sent) if equal(&sent, secret) => Ok(()),
                _ => denied("HTTP basic credentials are missing or wrong"),
            }
        }
        SourceAuthKind::Query(param) => {
            let sent = request
                .uri()
                .query()
                .and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == param.as_str()).map(|(_, v)| v));
            match sent {
                Some(sent) if equal(sent.as_bytes(), secret) => Ok(()),
                _ => denied("the source's query token is missing or wrong"),
            }
        }
        SourceAuthKind::Typeform => {
            let sent = header("typeform-signature").and_then(|s| s.strip_prefix("sha256="));
            signed(secret, &[body], sent, Encoding::Base64).or_else(|_| denied("the Typeform-Signature does not match"))
        }
        SourceAuthKind::Tally => signed(secret, &[body], header("tally-signature"), Encoding::Base64)
            .or_else(|_| denied("the Tally-Signature does not match")),
        SourceAuthKind::Webflow => {
            let ts =
                header("x-webflow-timestamp").ok_or(ApiError::SourceUnauthorized("x-webflow-timestamp is missing"))?;
            fresh(ts, now)?;
            signed(secret, &[ts.as_bytes(), b":", body], header("x-webflow-signature"), Encoding::Hex)
                .or_else(|_| denied("the x-webflow-signature does not match"))
        }
        SourceAuthKind::HubspotV3 => {
            let ts = header("x-hubspot-request-timestamp")
                .ok_or(ApiError::SourceUnauthorized("X-HubSpot-Request-Timestamp is missing"))?;
            fresh(ts, now)?;
            // Method, the address HubSpot called, body and timestamp.
            let host = header("host").unwrap_or_default();
            let path = request.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
            let address = format!("https://{host}{path}");
            let parts: [&[u8]; 4] = [request.method().as_str().as_bytes(), address.as_bytes(), body, ts.as_bytes()];
            signed(secret, &parts, header("x-hubspot-signature-v3"), Encoding::Base64)
                .or_else(|_| denied("the X-HubSpot-Signature-v3 does not match"))
        }
    }
}

fn equal(sent: &[u8], secret: &[u8]) -> bool {
    sent.ct_eq(secret).into()
}

/// A vendor timestamp in milliseconds, no older than five minutes nor ahead.
fn fresh(ts: &str, now: DateTime<Utc>) -> Result<(), ApiError> {
    let ms: i64 = ts.parse().map_err(|_| ApiError::SourceUnauthorized("the signed timestamp is not a number"))?;
    if (now.timestamp_millis() - ms).abs() > MAX_AGE_MS {
        return Err(ApiError::SourceUnauthorized("the signed timestamp is more than 5 minutes off"));
    }
    Ok(())
}

enum Encoding {
    Base64,
    Hex,
}

/// HMAC-SHA256 of `parts` under `secret`, checked against `sent` in constant time.
fn signed(secret: &[u8], parts: &[&[u8]], sent: Option<&str>, encoding: Encoding) -> Result<(), ()> {
    let sent = sent.ok_or(())?;
    let sent = match encoding {
        Encoding::Base64 => BASE64.decode(sent).map_err(|_| ())?,
        Encoding::Hex => hex::decode(sent).map_err(|_| ())?,
    };
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(secret).map_err(|_| ())?;
    for part in parts {
        mac.update(part);
    }
    mac.verify_slice(&sent).map_err(|_| ())
}

/// A signature as the vendor makes it, for tests and senders.
pub fn vendor_signature(secret: &[u8], parts: &[&[u8]], hex_encoded: bool) -> String {
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("any key length");
    for part in parts {
        mac.update(part);
    }
    let bytes = mac.finalize().into_bytes();
    if hex_encoded { hex::encode(bytes) } else { BASE64.encode(bytes) }
}
