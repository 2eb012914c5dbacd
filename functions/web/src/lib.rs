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
//!
//! Sign-in: a rep asks for a link at `/app/signin` with the email
//! `routing.yaml` gives them; the notifier sends it to their own
//! subscriptions. The link works once, for 15 minutes; opening it shows a
//! button, and only the button's POST signs in (mail scanners open links).
//! The session is a signed cookie ([`session`]). A rep sees and acts on their
//! own leads (`/app`, `/app/leads/{id}`); a manager also on their team's,
//! with the team (`/app/team`) and the unassigned queue (`/app/unassigned`).
//! Every form carries a CSRF token bound to its link or session.

mod charts;
mod pages;
pub mod session;

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, KeyInit, Mac};
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use leadflow_app::{Direct, Leadflow, Notifier, ServiceError, Store, TeamError};
use leadflow_domain::facts::Dim;
use leadflow_domain::link::{ACTIONS, Grant, LinkError, LinkKey, Links, SIGN_IN_TTL, ShortSecret, derive_key};
use leadflow_domain::machine::{Access, managers, team_of};
use leadflow_domain::report::{By, report_within};
use leadflow_domain::rules::lifecycle::SalesEvent;
use leadflow_domain::team::TeamChange;
use leadflow_domain::{Action, Bant, Email, Lead, LeadId, Queue, Refusal, Status, access};
use session::{Session, Sessions};
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
    pub sessions: Sessions,
    csrf_key: [u8; 32],
}

impl WebConfig {
    /// The web app's configuration from the app secret (at least 32 bytes),
    /// its public address and how long action links work.
    pub fn new(secret: &[u8], base_url: &str, action_ttl: Duration) -> Result<WebConfig, ShortSecret> {
        let key = LinkKey::derive(secret)?;
        Ok(WebConfig {
            links: Links::new(base_url, key, action_ttl),
            sessions: Sessions::new(secret, base_url.starts_with("https://")),
            csrf_key: derive_key(secret, b"leadflow csrf v1"),
        })
    }

    /// The CSRF token of a form, bound to what the form acts with: an action
    /// link's token, a session, a sign-in link, or a sign-in form's nonce.
    fn csrf(&self, scope: &str, value: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.csrf_key).expect("HMAC takes a key of any length");
        mac.update(scope.as_bytes());
        mac.update(b"|");
        mac.update(value.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    fn session_csrf(&self, session: &Session) -> String {
        self.csrf("session", &session_value(session))
    }

    fn check_session_csrf(&self, form: &Form, session: &Session) -> Result<(), WebError> {
        self.check_csrf(form, "session", &session_value(session))
    }

    /// Checks a posted CSRF token in constant time.
    fn check_csrf(&self, form: &Form, scope: &str, value: &str) -> Result<(), WebError> {
        let given = form.get("csrf").unwrap_or("");
        if bool::from(given.as_bytes().ct_eq(self.csrf(scope, value).as_bytes())) {
            Ok(())
        } else {
            Err(WebError::Forbidden("This form was not made by this page"))
        }
    }
}

/// What a session's CSRF tokens are bound to.
fn session_value(session: &Session) -> String {
    format!("{}|{}", session.rep, session.expires_at.timestamp())
}

/// A posted form.
struct Form(Vec<(String, String)>);

impl Form {
    fn read(request: &Request<Bytes>) -> Result<Form, WebError> {
        if request.body().len() > MAX_FORM_BYTES {
            return Err(WebError::TooLarge);
        }
        Ok(Form(form_urlencoded::parse(request.body()).into_owned().collect()))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
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
    path.starts_with("/a/") || path == "/app" || path.starts_with("/app/")
}

/// Why a request got no page it asked for.
#[derive(Debug)]
enum WebError {
    Link(LinkError),
    /// A sign-in link used before.
    Used,
    NotFound,
    MethodNotAllowed,
    TooLarge,
    /// A form that this site did not make (a missing or wrong CSRF token, or
    /// a post from another site).
    Forbidden(&'static str),
    BadForm(String),
    Busy,
    /// A page that needs a session, without one.
    SignIn,
    Internal(ServiceError),
}

impl WebError {
    fn status(&self) -> StatusCode {
        match self {
            WebError::Link(LinkError::Expired) | WebError::Used => StatusCode::GONE,
            WebError::Link(LinkError::Forged) | WebError::Forbidden(_) => StatusCode::FORBIDDEN,
            WebError::Link(LinkError::Malformed) | WebError::NotFound => StatusCode::NOT_FOUND,
            WebError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            WebError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            WebError::BadForm(_) => StatusCode::UNPROCESSABLE_ENTITY,
            WebError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            WebError::SignIn => StatusCode::SEE_OTHER,
            WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn message(&self) -> String {
        match self {
            WebError::Link(LinkError::Expired) => {
                "This link has expired. Open the lead from a newer notification, or ask your manager.".into()
            }
            WebError::Link(e) => format!("{e}. Open the lead from the notification you received."),
            WebError::Used => "This sign-in link was used already. Ask for a new one.".into(),
            WebError::NotFound => "There is nothing here. The lead may have been deleted.".into(),
            WebError::MethodNotAllowed => "This page does not take that request.".into(),
            WebError::TooLarge => "The form sent too much.".into(),
            WebError::Forbidden(why) => format!("{why}. Open the link again and press the button there."),
            WebError::BadForm(why) => why.clone(),
            WebError::Busy => "The lead was changing while you acted. Nothing was saved; please try again.".into(),
            WebError::SignIn => "Sign in first.".into(),
            // The cause is logged, never shown.
            WebError::Internal(_) => "Something went wrong on our side. Nothing was saved; please try again.".into(),
        }
    }

    fn into_response(self) -> HttpResponse {
        if let WebError::SignIn = self {
            return redirect("/app/signin");
        }
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
        let get = matches!(*request.method(), Method::GET | Method::HEAD);
        let post = *request.method() == Method::POST;
        let result = if let Some(token) = path.strip_prefix("/a/") {
            match (get, post) {
                (true, _) => self.action_page(token, &request, now).await,
                (_, true) => self.act(token, &request, now).await,
                _ => Err(WebError::MethodNotAllowed),
            }
        } else if let Some(token) = path.strip_prefix("/app/signin/") {
            match (get, post) {
                (true, _) => self.sign_in_page(token, now),
                (_, true) => self.sign_in(token, &request, now).await,
                _ => Err(WebError::MethodNotAllowed),
            }
        } else if let Some(id) = path.strip_prefix("/app/leads/") {
            match (get, post) {
                (true, _) => self.lead_page(id, &request, now).await,
                (_, true) => self.lead_act(id, &request, now).await,
                _ => Err(WebError::MethodNotAllowed),
            }
        } else {
            match (path.trim_end_matches('/'), get, post) {
                ("/app/signin", true, _) => Ok(self.ask_page(&request, now, None)),
                ("/app/signin", _, true) => self.ask(&request, now).await,
                ("/app/signout", _, true) => self.sign_out(&request, now),
                ("/app", true, _) => self.my_leads(&request, now).await,
                ("/app/team", true, _) => self.team_page(&request, now).await,
                ("/app/team", _, true) => self.change_team(&request, now).await,
                ("/app/unassigned", true, _) => self.unassigned_page(&request, now).await,
                ("/app/dashboard", true, _) => self.dashboard(&request, now).await,
                (
                    "/app" | "/app/signin" | "/app/signout" | "/app/team" | "/app/unassigned" | "/app/dashboard",
                    _,
                    _,
                ) => Err(WebError::MethodNotAllowed),
                _ => Err(WebError::NotFound),
            }
        };
        let mut response = result.unwrap_or_else(WebError::into_response);
        secure(response.headers_mut());
        response
    }

    /// The lead and the rep an action link names, once its signature and expiry hold.
    fn grant(&self, token: &str, now: DateTime<Utc>) -> Result<(LeadId, String), WebError> {
        match self.config.links.key.open(token, now).map_err(WebError::Link)? {
            Grant::Action { lead, rep, .. } => Ok((lead, rep)),
            Grant::SignIn { .. } => Err(WebError::Link(LinkError::Malformed)),
        }
    }

    async fn action_page(
        &self,
        token: &str,
        request: &Request<Bytes>,
        now: DateTime<Utc>,
    ) -> Result<HttpResponse, WebError> {
        let (lead_id, rep) = self.grant(token, now)?;
        let lead = self.service.store.get(&lead_id).await.map_err(internal)?.ok_or(WebError::NotFound)?;
        let query = query_pairs(request);
        let flash = query.iter().find(|(k, _)| k == "done").map(|(_, v)| v.as_str());
        let focus = query.iter().find(|(k, _)| k == "do").map(|(_, v)| v.as_str());
        let csrf = self.config.csrf("action-link", token);
        let view = View { lead: &lead, rep: &rep, csrf: &csrf, flash, focus, problem: None, details: None, now };
        Ok(self.render(view, StatusCode::OK))
    }

    /// A lead's page for `rep`, its forms posting to `post_to` with `csrf`.
    fn render(&self, view: View<'_>, status: StatusCode) -> HttpResponse {
        let rules = &self.service.rules;
        let page = pages::ActionPage {
            rules,
            lead: view.lead,
            rep: view.rep,
            access: access(rules, view.lead, view.rep),
            csrf: view.csrf,
            nonce: &nonce(),
            flash: view.flash,
            focus: view.focus,
            problem: view.problem,
            details: view.details,
            now: view.now,
        };
        html(status, page.render().into_string())
    }

    async fn act(&self, token: &str, request: &Request<Bytes>, now: DateTime<Utc>) -> Result<HttpResponse, WebError> {
        same_site(request)?;
        // The lead is read by the decision itself; the link alone says whose it is.
        let (lead_id, rep) = self.grant(token, now)?;
        let form = Form::read(request)?;
        self.config.check_csrf(&form, "action-link", token)?;
        match self.perform(&lead_id, &rep, &form, now).await? {
            Ok(name) => Ok(redirect(&format!("/a/{token}?done={name}"))),
            Err((lead, message)) => {
                let csrf = self.config.csrf("action-link", token);
                let view = View {
                    lead: &lead,
                    rep: &rep,
                    csrf: &csrf,
                    flash: None,
                    focus: None,
                    problem: Some(&message),
                    details: None,
                    now,
                };
                Ok(self.render(view, StatusCode::CONFLICT))
            }
        }
    }

    /// Applies the action a form names, as `rep`: the action's name when it
    /// was saved; the lead as it is and why, when the rules refused it.
    async fn perform(
        &self,
        lead_id: &LeadId,
        rep: &str,
        form: &Form,
        now: DateTime<Utc>,
    ) -> Result<Result<&'static str, (Lead, String)>, WebError> {
        let nonce =
            form.get("nonce").filter(|n| (8..=64).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_alphanumeric()));
        let nonce = nonce.ok_or_else(|| WebError::BadForm("The form is incomplete; open the page again.".into()))?;
        let (name, action) = read_action(form.get("action").unwrap_or(""), form)?;
        // One page's forms share a nonce: each action on it is its own event.
        let event_id = format!("{EVENT_ID_PREFIX}{nonce}:{name}");
        match self.service.act(lead_id, rep, &action, Some(&event_id), now).await {
            Ok(Some(recorded)) => {
                info!(lead_id = %lead_id, rep = %rep, action = name, repeat = recorded.repeat, "web action");
                Ok(Ok(name))
            }
            Ok(None) => Err(WebError::NotFound),
            Err(ServiceError::Refused(refusal)) => {
                let lead = self.service.store.get(lead_id).await.map_err(|e| WebError::Internal(e.into()))?;
                Ok(Err((lead.ok_or(WebError::NotFound)?, refusal_message(&refusal))))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The signed-in rep, or a redirect to the sign-in page.
    fn session(&self, request: &Request<Bytes>, now: DateTime<Utc>) -> Result<Session, WebError> {
        let session = self.config.sessions.read(request.headers(), now).ok_or(WebError::SignIn)?;
        // A rep removed from routing.yaml is signed out.
        if self.service.rules.routing.rep_index(&session.rep).is_none() {
            return Err(WebError::SignIn);
        }
        Ok(session)
    }

    fn chrome(&self, session: &Session) -> pages::Chrome {
        let rules = &self.service.rules;
        pages::Chrome {
            rep: session.rep.clone(),
            manager: managers(rules).contains(&session.rep),
            csrf: self.config.session_csrf(session),
        }
    }

    async fn my_leads(&self, request: &Request<Bytes>, now: DateTime<Utc>) -> Result<HttpResponse, WebError> {
        let session = self.session(request, now)?;
        let leads = self.service.store.queue(Queue::Owner(&session.rep), QUEUE_PAGE).await.map_err(internal)?;
        let page = pages::queue_page(&self.service.rules, &self.chrome(&session), "My leads", &leads, None, now);
        Ok(html(StatusCode::OK, page.into_string()))
    }

    async fn unassigned_page(&self, request: &Request<Bytes>, now: DateTime<Utc>) -> Result<HttpResponse, WebError> {
        let session = self.session(request, now)?;
        let chrome = self.chrome(&session);
        if !chrome.manager {
            return Err(WebError::NotFound);
        }
        let leads = self.service.store.queue(Queue::Unassigned, QUEUE_PAGE).await.map_err(internal)?;
        let assign = pages::AssignForms { team: team_of(&self.service.rules, &session.rep), nonce: nonce() };
        let page = pages::queue_page(&self.service.rules, &chrome, "Unassigned", &leads, Some(&assign), now);
        Ok(html(StatusCode::OK, page.into_string()))
    }

    /// A manager's dashboard: their team's waiting leads by status, filtered
    /// by owner, tier and source, and the charts of the period (12 weeks to
    /// today unless asked), from the daily roll-ups.
    async fn dashboard(&self, request: &Request<Bytes>, now: DateTime<Utc>) -> Result<HttpResponse, WebError> {
        let session = self.session(request, now)?;
        let chrome = self.chrome(&session);
        if !chrome.manager {
            return Err(WebError::NotFound);
        }
        let rules = &self.service.rules;
        let team = team_of(rules, &session.rep);
        let tiers = rules.scoring.tier_names();
        let filters = dashboard_filters(&query_pairs(request), &team, &tiers)?;
        let to = filters.to.unwrap_or_else(|| now.date_naive());
        let from = filters.from.unwrap_or(to - Duration::days(DASHBOARD_DAYS - 1));
        if from > to || (to - from).num_days() >= MAX_DASHBOARD_DAYS {
            return Err(WebError::BadForm(format!(
                "Choose a period of at most {MAX_DASHBOARD_DAYS} days whose start is not after its end."
            )));
        }
        // The board: the team's queues and the unassigned one, never the table.
        let mut waiting = self.service.store.queue(Queue::Unassigned, QUEUE_PAGE).await.map_err(internal)?;
        for rep in &team {
            waiting.extend(self.service.store.queue(Queue::Owner(rep), QUEUE_PAGE).await.map_err(internal)?);
        }
        let mut sources: Vec<String> = waiting.iter().filter_map(|l| l.facts.first_touch.clone()).collect();
        sources.extend(filters.source.clone());
        sources.sort();
        sources.dedup();
        let shown: Vec<&Lead> = waiting
            .iter()
            .filter(|l| filters.owner.is_none() || l.owner == filters.owner)
            .filter(|l| filters.tier.as_ref().is_none_or(|t| &l.tier == t))
            .filter(|l| filters.source.is_none() || l.facts.first_touch == filters.source)
            .collect();
        let board = [Status::Unassigned, Status::Assigned, Status::Working, Status::Qualified]
            .into_iter()
            .map(|status| {
                let mut leads: Vec<&Lead> = shown.iter().copied().filter(|l| l.status == status).collect();
                // The longest waiting first.
                leads.sort_by_key(|l| l.facts.status_since.unwrap_or(l.updated_at));
                (status, leads)
            })
            .collect();
        // The charts: every lead, or the one rep, tier or source asked for.
        let within = match (&filters.owner, &filters.tier, &filters.source) {
            (Some(rep), _, _) => Dim::Rep(rep.clone()),
            (None, Some(tier), _) => Dim::Tier(tier.clone()),
            (None, None, Some(source)) => Dim::Source(source.clone()),
            _ => Dim::All,
        };
        let kinds = [within.kind()];
        let read = self.service.store.rollups(from, to, &kinds).await.map_err(internal)?;
        let report = report_within(read.rollups.iter().map(|r| (&r.key, &r.counts)), from, to, Some(By::Week), &within);
        let charts_of = match &within {
            Dim::All => "every lead".to_owned(),
            dim => format!("{} {}", dim.kind(), dim.value()),
        };
        let dashboard = pages::Dashboard {
            chrome: &chrome,
            hidden: waiting.len() - shown.len(),
            board,
            filters: &filters,
            team: &team,
            tiers,
            sources,
            report: &report,
            charts_of,
        };
        Ok(html(StatusCode::OK, pages::dashboard_page(&dashboard, now).into_string()))
    }

    async fn team_page(&self, request: &Request<Bytes>, now: DateTime<Utc>) -> Result<HttpResponse, WebError> {
        let session = self.session(request, now)?;
        let query = query_pairs(request);
        let done = query
            .iter()
            .find(|(k, v)| k == "done" && TEAM_CHANGES.contains(&v.as_str()))
            .map(|(_, v)| format!("Saved: {v}."));
        self.render_team(&session, done.as_deref().map(|d| (d, true)), now, StatusCode::OK).await
    }

    async fn render_team(
        &self,
        session: &Session,
        said: Option<(&str, bool)>,
        now: DateTime<Utc>,
        status: StatusCode,
    ) -> Result<HttpResponse, WebError> {
        let chrome = self.chrome(session);
        if !chrome.manager {
            return Err(WebError::NotFound);
        }
        let rules = &self.service.rules;
        let team = team_of(rules, &session.rep);
        let ids: Vec<&str> = team.iter().map(String::as_str).collect();
        let state = self.service.store.team_state(&ids, None).await.map_err(internal)?;
        let page = pages::team_page(rules, &chrome, &team, &state, said, now);
        Ok(html(status, page.into_string()))
    }

    /// A manager changes a member of their team (or themselves).
    async fn change_team(&self, request: &Request<Bytes>, now: DateTime<Utc>) -> Result<HttpResponse, WebError> {
        same_site(request)?;
        let session =
            self.session(request, now).map_err(|_| WebError::Forbidden("Your session has ended; sign in again"))?;
        let form = Form::read(request)?;
        self.config.check_session_csrf(&form, &session)?;
        let rep = form.get("rep").unwrap_or("");
        if !managers(&self.service.rules).contains(&session.rep)
            || !team_of(&self.service.rules, &session.rep).iter().any(|r| r == rep)
        {
            return Err(WebError::NotFound);
        }
        let date = |name: &str| form.get(name).and_then(|d| d.parse::<chrono::NaiveDate>().ok());
        let change = match form.get("change").unwrap_or("") {
            "away" => match (date("from"), date("to")) {
                (Some(from), Some(to)) => TeamChange::Away { from, to },
                _ => return Err(WebError::BadForm("Give the first and last day away as dates.".into())),
            },
            "back" => TeamChange::Back,
            "capacity" => match form.get("capacity").and_then(|c| c.trim().parse::<u32>().ok()) {
                Some(c) => TeamChange::Capacity(c),
                None => return Err(WebError::BadForm("Give the capacity as a whole number.".into())),
            },
            "active" => TeamChange::Active(true),
            "inactive" => TeamChange::Active(false),
            "reset" => TeamChange::Reset,
            _ => return Err(WebError::BadForm("That is not a change leadflow knows.".into())),
        };
        match self.service.change_team(rep, &change, &session.rep, now).await {
            Ok(_) => Ok(redirect(&format!("/app/team?done={}", form.get("change").unwrap_or("")))),
            Err(TeamError::Invalid(e)) => {
                let text = format!("Nothing was saved: {e}.");
                self.render_team(&session, Some((&text, false)), now, StatusCode::UNPROCESSABLE_ENTITY).await
            }
            Err(TeamError::UnknownRep(_)) => Err(WebError::NotFound),
            Err(TeamError::Busy) => Err(WebError::Busy),
            Err(TeamError::Store(e)) => Err(internal(e)),
        }
    }

    /// A lead the signed-in rep may see: their own, their team's, or (for a
    /// manager) one nobody owns. Any other is "not found", so that a page
    /// never tells whether an address is a lead.
    async fn visible_lead(&self, id: &str, session: &Session) -> Result<Lead, WebError> {
        let id = LeadId::parse(id).map_err(|_| WebError::NotFound)?;
        let lead = self.service.store.get(&id).await.map_err(internal)?.ok_or(WebError::NotFound)?;
        if access(&self.service.rules, &lead, &session.rep) == Access::None {
            return Err(WebError::NotFound);
        }
        Ok(lead)
    }

    async fn lead_page(
        &self,
        id: &str,
        request: &Request<Bytes>,
        now: DateTime<Utc>,
    ) -> Result<HttpResponse, WebError> {
        let session = self.session(request, now)?;
        let lead = self.visible_lead(id, &session).await?;
        let query = query_pairs(request);
        let flash = query.iter().find(|(k, _)| k == "done").map(|(_, v)| v.as_str());
        self.signed_in_lead(&session, &lead, (flash, None), now, StatusCode::OK).await
    }

    /// A lead's page for a signed-in rep, with its history; `said`: the action
    /// just saved, or why one was refused.
    async fn signed_in_lead(
        &self,
        session: &Session,
        lead: &Lead,
        said: (Option<&str>, Option<&str>),
        now: DateTime<Utc>,
        status: StatusCode,
    ) -> Result<HttpResponse, WebError> {
        let history = self.service.store.history(&lead.id).await.map_err(internal)?;
        let csrf = self.config.session_csrf(session);
        let chrome = self.chrome(session);
        let details = pages::Details { chrome: &chrome, history: &history };
        let (flash, problem) = said;
        let view =
            View { lead, rep: &session.rep, csrf: &csrf, flash, focus: None, problem, details: Some(details), now };
        Ok(self.render(view, status))
    }

    async fn lead_act(&self, id: &str, request: &Request<Bytes>, now: DateTime<Utc>) -> Result<HttpResponse, WebError> {
        same_site(request)?;
        let session =
            self.session(request, now).map_err(|_| WebError::Forbidden("Your session has ended; sign in again"))?;
        let form = Form::read(request)?;
        self.config.check_session_csrf(&form, &session)?;
        let lead = self.visible_lead(id, &session).await?;
        match self.perform(&lead.id, &session.rep, &form, now).await? {
            Ok(name) => {
                let back = form.get("back").filter(|b| *b == "/app/unassigned").map(str::to_owned);
                Ok(redirect(&back.unwrap_or_else(|| format!("/app/leads/{}?done={name}", lead.id))))
            }
            Err((lead, message)) => {
                self.signed_in_lead(&session, &lead, (None, Some(&message)), now, StatusCode::CONFLICT).await
            }
        }
    }

    /// The page that asks for a sign-in link.
    fn ask_page(&self, request: &Request<Bytes>, now: DateTime<Utc>, said: Option<(&str, bool)>) -> HttpResponse {
        if said.is_none() && self.session(request, now).is_ok() {
            return redirect("/app");
        }
        let nonce = nonce();
        let csrf = self.config.csrf("sign-in-form", &nonce);
        let status = match said {
            Some((_, false)) => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::OK,
        };
        html(status, pages::ask_page(&csrf, &nonce, said).into_string())
    }

    /// Sends a sign-in link to the rep whose email was given. The answer is
    /// the same whether or not the address is a rep's, and a rep gets at
    /// most one link a minute however often it is asked for.
    async fn ask(&self, request: &Request<Bytes>, now: DateTime<Utc>) -> Result<HttpResponse, WebError> {
        same_site(request)?;
        let form = Form::read(request)?;
        self.config.check_csrf(&form, "sign-in-form", form.get("nonce").unwrap_or(""))?;
        let typed = form.get("email").unwrap_or("").trim();
        let Ok(email) = Email::parse(typed) else {
            return Ok(self.ask_page(request, now, Some((typed, false))));
        };
        let rules = &self.service.rules;
        // A rep `active: false` takes no new leads but still works the ones they have.
        if let Some(rep) = rules.routing.reps.iter().find(|r| r.email == email)
            && self.may_send_sign_in(&rep.id, now).await?
        {
            let nonce = fastrand::u64(..);
            let expires = now + SIGN_IN_TTL;
            let token = self.config.links.key.sign_in_token(&rep.id, nonce, expires);
            let url = format!("{}/app/signin/{token}", self.config.links.base_url);
            let message = Direct {
                id: format!("sign-in-{nonce:016x}"),
                kind: "sign_in",
                to: rep.id.clone(),
                subject: "Your leadflow sign-in link".into(),
                sms: leadflow_domain::message::fit_sms_with_link("leadflow sign-in, once, 15 min:", &url),
                email: format!(
                    "Sign in to leadflow: {url}\n\nThe link works once, for 15 minutes. \
                         If you did not ask for it, ignore this message.\n"
                ),
                created_at: now,
            };
            if let Err(e) = self.service.notifier.send(&message).await {
                warn!(rep = %rep.id, error = %e, "the sign-in link could not be sent");
            } else {
                info!(rep = %rep.id, "sign-in link sent");
            }
        }
        Ok(self.ask_page(request, now, Some((email.as_str(), true))))
    }

    /// Whether another sign-in link may go to `rep` now: one a minute, and
    /// [`SIGN_IN_LINKS_PER_HOUR`] an hour, each counted by spending a nonce, so
    /// that nobody can flood a rep's phone (or the SMS budget) by asking.
    async fn may_send_sign_in(&self, rep: &str, now: DateTime<Utc>) -> Result<bool, WebError> {
        let store = &self.service.store;
        let minute = now.timestamp().div_euclid(60);
        if !store
            .spend(&format!("sign-in-asked:{rep}:{minute}"), now + Duration::minutes(2), now)
            .await
            .map_err(internal)?
        {
            return Ok(false);
        }
        let hour = now.timestamp().div_euclid(3600);
        for n in 0..SIGN_IN_LINKS_PER_HOUR {
            let slot = format!("sign-in-hour:{rep}:{hour}:{n}");
            if store.spend(&slot, now + Duration::hours(2), now).await.map_err(internal)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// A sign-in link's page: one button, since only its POST signs in.
    fn sign_in_page(&self, token: &str, now: DateTime<Utc>) -> Result<HttpResponse, WebError> {
        let Grant::SignIn { rep, .. } = self.config.links.key.open(token, now).map_err(WebError::Link)? else {
            return Err(WebError::Link(LinkError::Malformed));
        };
        let routing = &self.service.rules.routing;
        let name = routing.rep_index(&rep).map(|i| routing.reps[i].name.clone()).ok_or(WebError::NotFound)?;
        let csrf = self.config.csrf("sign-in-link", token);
        Ok(html(StatusCode::OK, pages::sign_in_page(&name, &csrf).into_string()))
    }

    /// Signs in with a link, once: its nonce is spent in the store first.
    /// The post must show it comes from this site: someone who asked for a
    /// link for themselves knows its token and form, and must not be able to
    /// sign another person's browser in with it.
    async fn sign_in(
        &self,
        token: &str,
        request: &Request<Bytes>,
        now: DateTime<Utc>,
    ) -> Result<HttpResponse, WebError> {
        same_site(request)?;
        let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
        if header("sec-fetch-site").is_none() && header("origin").is_none_or(|o| o == "null") {
            return Err(WebError::Forbidden("This browser did not say where the form came from"));
        }
        let Grant::SignIn { rep, nonce, expires_at } =
            self.config.links.key.open(token, now).map_err(WebError::Link)?
        else {
            return Err(WebError::Link(LinkError::Malformed));
        };
        let form = Form::read(request)?;
        self.config.check_csrf(&form, "sign-in-link", token)?;
        if self.service.rules.routing.rep_index(&rep).is_none() {
            return Err(WebError::NotFound);
        }
        let first =
            self.service.store.spend(&format!("sign-in:{nonce:016x}"), expires_at, now).await.map_err(internal)?;
        if !first {
            return Err(WebError::Used);
        }
        let (_, cookie) = self.config.sessions.start(&rep, now);
        info!(rep = %rep, "signed in");
        let mut r = redirect("/app");
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            r.headers_mut().insert(header::SET_COOKIE, value);
        }
        Ok(r)
    }

    fn sign_out(&self, request: &Request<Bytes>, now: DateTime<Utc>) -> Result<HttpResponse, WebError> {
        same_site(request)?;
        let form = Form::read(request)?;
        if let Some(session) = self.config.sessions.read(request.headers(), now) {
            self.config.check_session_csrf(&form, &session)?;
        }
        let mut r = redirect("/app/signin");
        if let Ok(value) = HeaderValue::from_str(&self.config.sessions.end()) {
            r.headers_mut().insert(header::SET_COOKIE, value);
        }
        Ok(r)
    }
}

/// What a lead's page shows.
struct View<'a> {
    lead: &'a Lead,
    rep: &'a str,
    csrf: &'a str,
    flash: Option<&'a str>,
    focus: Option<&'a str>,
    problem: Option<&'a str>,
    details: Option<pages::Details<'a>>,
    now: DateTime<Utc>,
}

/// The changes the team page makes, by the name its forms give them.
const TEAM_CHANGES: [&str; 6] = ["away", "back", "capacity", "active", "inactive", "reset"];

/// How many sign-in links a rep can be sent in an hour (and one a minute).
pub const SIGN_IN_LINKS_PER_HOUR: usize = 5;

/// The most leads a queue page lists.
const QUEUE_PAGE: usize = 200;

fn internal(e: leadflow_app::StoreError) -> WebError {
    WebError::Internal(e.into())
}

/// An action as the form names it, with its name as the page says it.
fn read_action(name: &str, form: &Form) -> Result<(&'static str, Action), WebError> {
    let checked = |n: &str| Some(form.get(n).is_some());
    let name = ACTIONS.iter().map(|(a, _)| *a).chain(["assign"]).find(|a| *a == name);
    let action = match name {
        Some("contacted") => Action::Sales(SalesEvent::Contacted),
        Some("contact_attempt") => Action::Sales(SalesEvent::ContactAttempt),
        Some("qualified") => Action::Sales(SalesEvent::Qualified(Bant {
            budget: checked("budget"),
            authority: checked("authority"),
            need: checked("need"),
            timeline: checked("timeline"),
        })),
        Some("converted") => Action::Sales(SalesEvent::Converted),
        Some("nurture") => Action::Sales(SalesEvent::Nurture),
        Some("disqualified") => match form.get("reason").filter(|r| !r.is_empty()) {
            Some(reason) => Action::Sales(SalesEvent::Disqualified { reason: reason.to_owned() }),
            None => return Err(WebError::BadForm("Choose a reason to disqualify the lead.".into())),
        },
        Some("not_mine") => Action::NotMine,
        Some("assign") => match form.get("to").filter(|r| !r.is_empty()) {
            Some(to) => Action::Assign { to: to.to_owned(), over_capacity: form.get("over_capacity").is_some() },
            None => return Err(WebError::BadForm("Choose whom to assign the lead to.".into())),
        },
        _ => return Err(WebError::BadForm("That is not an action leadflow knows.".into())),
    };
    Ok((name.unwrap_or_default(), action))
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
    // Under `Referrer-Policy: no-referrer` browsers send `Origin: null` with
    // their own forms; then `Sec-Fetch-Site` and the CSRF token decide.
    if let (Some(origin), Some(host)) = (header("origin").filter(|o| *o != "null"), header("host")) {
        let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
        if !origin_host.eq_ignore_ascii_case(host) {
            return Err(WebError::Forbidden("This form was posted from another site"));
        }
    }
    Ok(())
}

/// A one-time value for a form: its submission's event id.
/// The dashboard's period when none is asked for, and the longest it shows.
const DASHBOARD_DAYS: i64 = 84;
const MAX_DASHBOARD_DAYS: i64 = 731;

/// The dashboard's filters from its query: dates as `YYYY-MM-DD`, an owner
/// from the manager's team, a tier the rules name, a source as roll-ups name
/// it. Empty values are no filter; anything else is refused.
fn dashboard_filters(
    query: &[(String, String)],
    team: &[String],
    tiers: &[String],
) -> Result<pages::Filters, WebError> {
    let mut f = pages::Filters::default();
    for (name, value) in query {
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        let date = || {
            value
                .parse::<chrono::NaiveDate>()
                .ok()
                .filter(|d| (2000..=2200).contains(&chrono::Datelike::year(d)))
                .ok_or_else(|| WebError::BadForm("Dates are written like 2026-03-02, from 2000 to 2200.".into()))
        };
        match name.as_str() {
            "from" => f.from = Some(date()?),
            "to" => f.to = Some(date()?),
            "owner" if team.iter().any(|r| r == value) => f.owner = Some(value.to_owned()),
            "owner" => return Err(WebError::BadForm("The owner is not in your team.".into())),
            "tier" if tiers.iter().any(|t| t == value) => f.tier = Some(value.to_owned()),
            "tier" => return Err(WebError::BadForm("The rules have no such tier.".into())),
            "source" if value == "(none)" => f.source = Some(value.to_owned()),
            "source" => f.source = Some(leadflow_domain::facts::source_key(value)),
            _ => {}
        }
    }
    Ok(f)
}

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
