//! leadflow's web app for reps and managers, written once over `http` types
//! so that a Lambda (through `lambda_http`) and `leadflow serve` (through
//! axum) run the same code. The caller passes "now".
//!
//! Action links: every hand-off, escalation and reassignment carries a link
//! that names one lead and one rep, signed and expiring
//! ([`leadflow_domain::link`]). `GET /a/{token}` shows the lead's essentials
//! and the actions; it never changes anything, since SMS apps and mail
//! scanners fetch links on their own. Only a button's `POST /a/{token}` acts:
//! it carries a CSRF token bound to the link, must come from this site, and
//! carries a one-time nonce so that a double submit is one action. Then it
//! redirects back to the page (POST, redirect, GET).

mod pages;

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, KeyInit, Mac};
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use leadflow_app::{Leadflow, Notifier, ServiceError, Store};
use leadflow_domain::link::{Grant, LinkError, LinkKey, Links, ShortSecret, derive_key};
use leadflow_domain::rules::lifecycle::SalesEvent;
use leadflow_domain::{Action, Bant, Lead, LeadId, Refusal, access};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tracing::{info, warn};

/// The largest form a page posts.
pub const MAX_FORM_BYTES: usize = 8 * 1024;

/// The prefix of event ids the web app gives the actions it records.
const EVENT_ID_PREFIX: &str = "web:";

/// What the web app needs besides the service.
#[derive(Clone, Debug)]
pub struct WebConfig {
    pub links: Links,
    csrf_key: [u8; 32],
}

impl WebConfig {
    /// The web app's configuration from the app secret (at least 32 bytes),
    /// its public address and how long action links work.
    pub fn new(secret: &[u8], base_url: &str, action_ttl: Duration) -> Result<WebConfig, ShortSecret> {
        let key = LinkKey::derive(secret)?;
        Ok(WebConfig {
            links: Links::new(base_url, key, action_ttl),
            csrf_key: derive_key(secret, b"leadflow csrf v1"),
        })
    }

    /// The CSRF token of the forms on an action link's page: bound to the link.
    fn csrf(&self, token: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.csrf_key).expect("HMAC takes a key of any length");
        mac.update(b"action-link|");
        mac.update(token.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }
}

/// The web app over a service.
#[derive(Debug)]
pub struct Web<S, N> {
    pub service: Arc<Leadflow<S, N>>,
    pub config: WebConfig,
}

pub type HttpResponse = Response<String>;

/// Whether a path is the web app's (the rest is the HTTP API's).
pub fn handles(path: &str) -> bool {
    path.starts_with("/a/")
}

/// Why a request got no page it asked for.
#[derive(Debug)]
enum WebError {
    Link(LinkError),
    NotFound,
    MethodNotAllowed,
    TooLarge,
    /// A form that this site did not make (a missing or wrong CSRF token, or
    /// a post from another site).
    Forbidden(&'static str),
    BadForm(String),
    Busy,
    Internal(ServiceError),
}

impl WebError {
    fn status(&self) -> StatusCode {
        match self {
            WebError::Link(LinkError::Expired) => StatusCode::GONE,
            WebError::Link(LinkError::Forged) | WebError::Forbidden(_) => StatusCode::FORBIDDEN,
            WebError::Link(LinkError::Malformed) | WebError::NotFound => StatusCode::NOT_FOUND,
            WebError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            WebError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            WebError::BadForm(_) => StatusCode::UNPROCESSABLE_ENTITY,
            WebError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn message(&self) -> String {
        match self {
            WebError::Link(LinkError::Expired) => {
                "This link has expired. Open the lead from a newer notification, or ask your manager.".into()
            }
            WebError::Link(e) => format!("{e}. Open the lead from the notification you received."),
            WebError::NotFound => "There is nothing here. The lead may have been deleted.".into(),
            WebError::MethodNotAllowed => "This page does not take that request.".into(),
            WebError::TooLarge => "The form sent too much.".into(),
            WebError::Forbidden(why) => format!("{why}. Open the link again and press the button there."),
            WebError::BadForm(why) => why.clone(),
            WebError::Busy => "The lead was changing while you acted. Nothing was saved; please try again.".into(),
            // The cause is logged, never shown.
            WebError::Internal(_) => "Something went wrong on our side. Nothing was saved; please try again.".into(),
        }
    }

    fn into_response(self) -> HttpResponse {
        if let WebError::Internal(e) = &self {
            warn!(error = %e, "web app request failed");
        }
        html(self.status(), pages::problem(&self.message()).into_string())
    }
}

impl From<ServiceError> for WebError {
    fn from(e: ServiceError) -> WebError {
        match e {
            ServiceError::Busy => WebError::Busy,
            other => WebError::Internal(other),
        }
    }
}

impl<S: Store, N: Notifier> Web<S, N> {
    pub fn new(service: Arc<Leadflow<S, N>>, config: WebConfig) -> Self {
        Web { service, config }
    }

    /// Answers one request at `now`.
    pub async fn handle(&self, request: Request<Bytes>, now: DateTime<Utc>) -> HttpResponse {
        let path = request.uri().path().to_owned();
        let result = match (request.method(), path.strip_prefix("/a/")) {
            (&Method::GET | &Method::HEAD, Some(token)) => self.action_page(token, &request, now).await,
            (&Method::POST, Some(token)) => self.act(token, &request, now).await,
            (_, Some(_)) => Err(WebError::MethodNotAllowed),
            _ => Err(WebError::NotFound),
        };
        let mut response = result.unwrap_or_else(WebError::into_response);
        secure(response.headers_mut());
        response
    }

    /// The lead and the rep an action link names, when the rep may still act on it.
    async fn open(&self, token: &str, now: DateTime<Utc>) -> Result<(LeadId, String, Option<Lead>), WebError> {
        let Grant::Action { lead, rep, .. } = self.config.links.key.open(token, now).map_err(WebError::Link)? else {
            return Err(WebError::Link(LinkError::Malformed));
        };
        let stored = self.service.store.get(&lead).await.map_err(|e| WebError::Internal(e.into()))?;
        Ok((lead, rep, stored))
    }

    async fn action_page(
        &self,
        token: &str,
        request: &Request<Bytes>,
        now: DateTime<Utc>,
    ) -> Result<HttpResponse, WebError> {
        let (_, rep, lead) = self.open(token, now).await?;
        let lead = lead.ok_or(WebError::NotFound)?;
        let query = query_pairs(request);
        let flash = query.iter().find(|(k, _)| k == "done").map(|(_, v)| v.as_str());
        let focus = query.iter().find(|(k, _)| k == "do").map(|(_, v)| v.as_str());
        Ok(self.render(token, &rep, &lead, flash, focus, None, now, StatusCode::OK))
    }

    #[allow(clippy::too_many_arguments)]
    fn render(
        &self,
        token: &str,
        rep: &str,
        lead: &Lead,
        flash: Option<&str>,
        focus: Option<&str>,
        problem: Option<&str>,
        now: DateTime<Utc>,
        status: StatusCode,
    ) -> HttpResponse {
        let rules = &self.service.rules;
        let page = pages::ActionPage {
            rules,
            lead,
            rep,
            access: access(rules, lead, rep),
            csrf: &self.config.csrf(token),
            nonce: &nonce(),
            flash,
            focus,
            problem,
            now,
        };
        html(status, page.render().into_string())
    }

    async fn act(&self, token: &str, request: &Request<Bytes>, now: DateTime<Utc>) -> Result<HttpResponse, WebError> {
        same_site(request)?;
        let (lead_id, rep, _) = self.open(token, now).await?;
        if request.body().len() > MAX_FORM_BYTES {
            return Err(WebError::TooLarge);
        }
        let form: Vec<(String, String)> = form_urlencoded::parse(request.body()).into_owned().collect();
        let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let csrf = field("csrf").unwrap_or("");
        if !bool::from(csrf.as_bytes().ct_eq(self.config.csrf(token).as_bytes())) {
            return Err(WebError::Forbidden("This form was not made by this page"));
        }
        let nonce =
            field("nonce").filter(|n| (8..=64).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_alphanumeric()));
        let nonce = nonce.ok_or_else(|| WebError::BadForm("The form is incomplete; open the link again.".into()))?;
        let name = field("action").unwrap_or("");
        let action = read_action(name, &form)?;
        // One page's forms share a nonce: each action on it is its own event.
        let event_id = format!("{EVENT_ID_PREFIX}{nonce}:{name}");
        match self.service.act(&lead_id, &rep, &action, Some(&event_id), now).await {
            Ok(Some(recorded)) => {
                info!(lead_id = %lead_id, rep = %rep, action = name, repeat = recorded.repeat, "web action");
                Ok(redirect(&format!("/a/{token}?done={name}")))
            }
            Ok(None) => Err(WebError::NotFound),
            Err(ServiceError::Refused(refusal)) => {
                let lead = self.service.store.get(&lead_id).await.map_err(|e| WebError::Internal(e.into()))?;
                let lead = lead.ok_or(WebError::NotFound)?;
                let message = refusal_message(&refusal);
                Ok(self.render(token, &rep, &lead, None, None, Some(&message), now, StatusCode::CONFLICT))
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// An action as the form names it.
fn read_action(name: &str, form: &[(String, String)]) -> Result<Action, WebError> {
    let field = |n: &str| form.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    let checked = |n: &str| Some(field(n).is_some());
    Ok(match name {
        "contacted" => Action::Sales(SalesEvent::Contacted),
        "contact_attempt" => Action::Sales(SalesEvent::ContactAttempt),
        "qualified" => Action::Sales(SalesEvent::Qualified(Bant {
            budget: checked("budget"),
            authority: checked("authority"),
            need: checked("need"),
            timeline: checked("timeline"),
        })),
        "converted" => Action::Sales(SalesEvent::Converted),
        "nurture" => Action::Sales(SalesEvent::Nurture),
        "disqualified" => match field("reason").filter(|r| !r.is_empty()) {
            Some(reason) => Action::Sales(SalesEvent::Disqualified { reason: reason.to_owned() }),
            None => return Err(WebError::BadForm("Choose a reason to disqualify the lead.".into())),
        },
        "not_mine" => Action::NotMine,
        "assign" => match field("to").filter(|r| !r.is_empty()) {
            Some(to) => Action::Assign { to: to.to_owned(), over_capacity: field("over_capacity").is_some() },
            None => return Err(WebError::BadForm("Choose whom to assign the lead to.".into())),
        },
        _ => return Err(WebError::BadForm("That is not an action leadflow knows.".into())),
    })
}

/// A refusal in the words of the page.
fn refusal_message(refusal: &Refusal) -> String {
    match refusal {
        Refusal::NotYours { owner: Some(owner) } => format!("Nothing was saved: this lead is with {owner} now."),
        Refusal::NotYours { owner: None } => "Nothing was saved: this lead has no owner now.".into(),
        Refusal::Rejected(e) => format!("Nothing was saved: {e}."),
        other => format!("Nothing was saved: {other}."),
    }
}

/// A post must come from this site: a browser says where a request comes
/// from (`Sec-Fetch-Site`, `Origin`); another site's form is refused.
fn same_site(request: &Request<Bytes>) -> Result<(), WebError> {
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site")
        && !matches!(site, "same-origin" | "none")
    {
        return Err(WebError::Forbidden("This form was posted from another site"));
    }
    if let (Some(origin), Some(host)) = (header("origin"), header("host")) {
        let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
        if !origin_host.eq_ignore_ascii_case(host) {
            return Err(WebError::Forbidden("This form was posted from another site"));
        }
    }
    Ok(())
}

/// A one-time value for a form: its submission's event id.
fn nonce() -> String {
    std::iter::repeat_with(fastrand::alphanumeric).take(22).collect()
}

fn query_pairs(request: &Request<Bytes>) -> Vec<(String, String)> {
    request.uri().query().map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default()
}

fn html(status: StatusCode, body: String) -> HttpResponse {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    r
}

fn redirect(location: &str) -> HttpResponse {
    let mut r = Response::new(String::new());
    *r.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(value) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, value);
    }
    r
}

/// Headers on every page: never cached or framed, no referrer (a link's
/// token is in its address), nothing loaded from elsewhere, no script.
fn secure(headers: &mut http::HeaderMap) {
    let set = |h: &mut http::HeaderMap, name: &'static str, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(headers, "cache-control", "no-store");
    set(headers, "referrer-policy", "no-referrer");
    set(headers, "x-frame-options", "DENY");
    set(headers, "x-content-type-options", "nosniff");
    set(headers, "x-robots-tag", "noindex, nofollow");
    set(
        headers,
        "content-security-policy",
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
}
