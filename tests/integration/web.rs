//! The web app through its handler, on both stores (the embedded store, and
//! DynamoDB on moto), with the starter rules: a rep acts from the link in a
//! notification, and every way to misuse a link or a form is refused with
//! nothing changed.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use http::{Request, StatusCode};
use leadflow_adapters::{EmbeddedStore, LogNotifier};
use leadflow_api::{Api, ApiConfig};
use leadflow_app::{Leadflow, Store};
use leadflow_domain::{Email, Lead, LeadId, Record, RuleSet, Status};
use leadflow_web::{Web, WebConfig};
use serde_json::{Value, json};

use crate::support::starter_rules;

const APP_SECRET: &[u8] = b"a web app secret of at least thirty-two bytes";
const BASE: &str = "https://leads.example.com";

struct WebRig<S> {
    api: Api<S, LogNotifier>,
    web: Web<S, LogNotifier>,
    config: WebConfig,
    log: std::path::PathBuf,
    now: DateTime<Utc>,
    _dir: tempfile::TempDir,
}

struct Page {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

impl Page {
    /// A hidden field of the page's first form.
    fn field(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start =
            self.body.find(&marker).unwrap_or_else(|| panic!("no field {name} in {}", self.body)) + marker.len();
        self.body[start..].split('"').next().unwrap_or("").to_owned()
    }
}

fn rig_on<S: Store>(store: S, dir: tempfile::TempDir) -> WebRig<S> {
    let rules: Arc<RuleSet> = Arc::new(RuleSet::load_dir(&starter_rules()).expect("starter rules"));
    let log = dir.path().join("outbox.jsonl");
    let config = WebConfig::new(APP_SECRET, BASE, Duration::days(7)).expect("config");
    let service = Arc::new(
        Leadflow::new(rules, store, LogNotifier::open(&log).expect("log")).with_links(Some(config.links.clone())),
    );
    let api = Api::new(Arc::clone(&service), ApiConfig::default());
    let web = Web::new(service, config.clone());
    // A Tuesday, 10:00 in New York: business hours.
    let now = "2026-03-03T15:00:00Z".parse().expect("time");
    WebRig { api, web, config, log, now, _dir: dir }
}

fn embedded() -> WebRig<EmbeddedStore> {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = EmbeddedStore::open(&dir.path().join("leads.db")).expect("store");
    rig_on(store, dir)
}

async fn dynamodb() -> WebRig<leadflow_adapters::DynamoStore> {
    let config = crate::moto::sdk_config(&crate::moto::endpoint()).await;
    rig_on(crate::moto::new_table(&config).await, tempfile::tempdir().expect("temp dir"))
}

impl<S: Store> WebRig<S> {
    async fn capture(&self, email: &str) -> Lead {
        let body = json!({"email": email, "first_name": "Jo", "last_name": "Park", "company": "Bigcorp",
            "job_title": "VP Sales", "employees": "5000", "country": "US", "phone": "+14155550123"});
        let request = Request::post("/leads")
            .header("content-type", "application/json")
            .body(Bytes::from(body.to_string()))
            .expect("request");
        let response = self.api.handle(request, self.now).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED, "{}", response.body());
        self.lead(email).await
    }

    async fn lead(&self, email: &str) -> Lead {
        let id = LeadId::for_email(&Email::parse(email).expect("email"));
        self.web.service.store.get(&id).await.expect("get").expect("stored lead")
    }

    fn notifications(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect()
    }

    /// The path of the action link in the last SMS to `rep`.
    fn link_sent_to(&self, rep: &str) -> String {
        let n = self.notifications().into_iter().rev().find(|n| n["to"] == json!([rep])).expect("a notification");
        let sms = n["sms"].as_str().expect("sms");
        let url = sms.rsplit(' ').next().expect("a link");
        assert!(url.starts_with(BASE), "{sms}");
        assert!(sms.chars().count() <= 160, "{sms}");
        url[BASE.len()..].to_owned()
    }

    /// The path of an action link made by hand, for `rep` on `lead`, expiring at `expires`.
    fn link(&self, lead: &Lead, rep: &str, expires: DateTime<Utc>) -> String {
        format!("/a/{}", self.config.links.key.action_token(&lead.id, rep, expires))
    }

    async fn send(&self, request: Request<Bytes>, now: DateTime<Utc>) -> Page {
        let response = self.web.handle(request, now).await;
        let headers = response.headers();
        assert_eq!(headers["cache-control"], "no-store");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        Page {
            status: response.status(),
            location: headers.get("location").map(|l| l.to_str().expect("location").to_owned()),
            body: response.body().clone(),
        }
    }

    async fn get(&self, path: &str) -> Page {
        self.send(Request::get(path).body(Bytes::new()).expect("request"), self.now).await
    }

    async fn post_with(&self, path: &str, form: &[(&str, &str)], headers: &[(&str, &str)]) -> Page {
        let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let mut request = Request::post(path).header("content-type", "application/x-www-form-urlencoded");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request.body(Bytes::from(body)).expect("request"), self.now).await
    }

    /// Presses `action`'s button on the page at `path`, as a browser on this site would.
    async fn press(&self, path: &str, action: &str, extra: &[(&str, &str)]) -> Page {
        let page = self.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let (csrf, nonce) = (page.field("csrf"), page.field("nonce"));
        let mut form = vec![("csrf", csrf.as_str()), ("nonce", nonce.as_str()), ("action", action)];
        form.extend_from_slice(extra);
        self.post_with(path, &form, &[("sec-fetch-site", "same-origin")]).await
    }

    async fn history(&self, lead: &Lead) -> Vec<Record> {
        self.web.service.store.history(&lead.id).await.expect("history").into_iter().map(|h| h.record).collect()
    }
}

#[tokio::test]
async fn a_rep_marks_a_lead_contacted_from_the_link_in_the_hand_off_on_the_embedded_store() {
    a_rep_marks_a_lead_contacted_from_the_link_in_the_hand_off(embedded()).await;
}

#[tokio::test]
async fn a_rep_marks_a_lead_contacted_from_the_link_in_the_hand_off_on_dynamodb() {
    a_rep_marks_a_lead_contacted_from_the_link_in_the_hand_off(dynamodb().await).await;
}

async fn a_rep_marks_a_lead_contacted_from_the_link_in_the_hand_off<S: Store>(rig: WebRig<S>) {
    let lead = rig.capture("jo@bigcorp.com").await;
    assert_eq!(lead.status, Status::Assigned);
    let owner = lead.owner.clone().expect("an owner");
    let link = rig.link_sent_to(&owner);

    // Opening the link (as an SMS app's preview would, twice) changes nothing.
    let page = rig.get(&format!("{link}?do=contacted")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<h1>Jo Park</h1>"), "{}", page.body);
    assert!(page.body.contains("Confirm: Contacted"));
    assert!(page.body.contains("href=\"tel:+14155550123\""));
    let head = rig.send(Request::head(link.as_str()).body(Bytes::new()).expect("request"), rig.now).await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(rig.lead("jo@bigcorp.com").await.version, lead.version);

    // One tap: contacted, then back to the page (POST, redirect, GET).
    let done = rig.press(&link, "contacted", &[]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some(format!("{link}?done=contacted").as_str()));
    let after = rig.lead("jo@bigcorp.com").await;
    assert_eq!(after.status, Status::Working);
    assert_eq!(after.sla, None, "the first-response clock stopped");
    assert_eq!(after.sla_due, None, "and left the SLA check's index");
    let by: Vec<Option<String>> = rig
        .history(&after)
        .await
        .into_iter()
        .filter_map(|r| match r {
            Record::Event { kind, by, .. } if kind == "contacted" => Some(by),
            _ => None,
        })
        .collect();
    assert_eq!(by, vec![Some(owner.clone())], "recorded once, as the rep's");
    let flash = rig.get(done.location.as_deref().expect("location")).await;
    assert!(flash.body.contains("Saved: Contacted."), "{}", flash.body);

    // A second press of the same form (a double tap, a resend) is the same action.
    let page = rig.get(&link).await;
    let (csrf, nonce) = (page.field("csrf"), page.field("nonce"));
    let form = [("csrf", csrf.as_str()), ("nonce", nonce.as_str()), ("action", "contact_attempt")];
    for _ in 0..2 {
        let again = rig.post_with(&link, &form, &[]).await;
        assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.body);
    }
    let after = rig.lead("jo@bigcorp.com").await;
    assert_eq!(after.events.get("contact_attempt"), Some(&1), "{:?}", after.events);

    // Qualify with BANT checkboxes, then convert.
    let qualified = rig.press(&link, "qualified", &[("budget", "yes"), ("authority", "yes"), ("need", "yes")]).await;
    assert_eq!(qualified.status, StatusCode::SEE_OTHER, "{}", qualified.body);
    let after = rig.lead("jo@bigcorp.com").await;
    assert_eq!(after.bant.budget, Some(true));
    assert_eq!(after.bant.timeline, Some(false));
    assert_eq!(after.status, Status::Qualified);
    assert_eq!(rig.press(&link, "converted", &[]).await.status, StatusCode::SEE_OTHER);
    assert_eq!(rig.lead("jo@bigcorp.com").await.status, Status::Converted);
    // A converted lead takes no more actions: the page says so and offers none.
    let page = rig.get(&link).await;
    assert!(!page.body.contains("<form"), "{}", page.body);
    assert!(page.body.contains("nothing more to record"));
}

#[tokio::test]
async fn every_misuse_of_a_link_or_form_is_refused_and_changes_nothing_on_the_embedded_store() {
    every_misuse_of_a_link_or_form_is_refused_and_changes_nothing(embedded()).await;
}

#[tokio::test]
async fn every_misuse_of_a_link_or_form_is_refused_and_changes_nothing_on_dynamodb() {
    every_misuse_of_a_link_or_form_is_refused_and_changes_nothing(dynamodb().await).await;
}

async fn every_misuse_of_a_link_or_form_is_refused_and_changes_nothing<S: Store>(rig: WebRig<S>) {
    let lead = rig.capture("pat@bigcorp.com").await;
    let owner = lead.owner.clone().expect("an owner");
    let other = if owner == "ana" { "ben" } else { "ana" };
    let link = rig.link_sent_to(&owner);
    let page = rig.get(&link).await;
    let (csrf, nonce) = (page.field("csrf"), page.field("nonce"));
    let ok_form =
        |action: &'static str| vec![("csrf", csrf.clone()), ("nonce", nonce.clone()), ("action", action.into())];

    // Links: forged, expired, cut short, of another kind, of another rep.
    let token = link.trim_start_matches("/a/");
    let last = token.chars().last().expect("a token");
    let forged = format!("/a/{}{}", &token[..token.len() - 1], if last == 'A' { 'B' } else { 'A' });
    assert_eq!(rig.get(&forged).await.status, StatusCode::FORBIDDEN);
    let expired = rig.link(&lead, &owner, rig.now - Duration::minutes(1));
    let page = rig.get(&expired).await;
    assert_eq!(page.status, StatusCode::GONE);
    assert!(page.body.contains("This link has expired"), "{}", page.body);
    assert_eq!(rig.get(&link[..link.len() - 10]).await.status, StatusCode::NOT_FOUND);
    let sign_in = format!("/a/{}", rig.config.links.key.sign_in_token(&owner, 7, rig.now + Duration::minutes(5)));
    assert_eq!(rig.get(&sign_in).await.status, StatusCode::NOT_FOUND);
    assert_eq!(rig.get("/a/").await.status, StatusCode::NOT_FOUND);
    assert_eq!(rig.get("/nothing-here").await.status, StatusCode::NOT_FOUND);

    // Another rep's link to this lead shows who has it, and offers nothing.
    let theirs = rig.link(&lead, other, rig.now + Duration::days(1));
    let page = rig.get(&theirs).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(&format!("This lead is with {owner} now")), "{}", page.body);
    assert!(!page.body.contains("<form"));

    // Forms: a token of another link, none, another site, no nonce, unknown actions, too large.
    let wrong_csrf = vec![("csrf", "0".repeat(32)), ("nonce", nonce.clone()), ("action", "contacted".to_owned())];
    type Form = Vec<(&'static str, String)>;
    type Headers = Vec<(&'static str, &'static str)>;
    let cases: Vec<(Form, Headers, StatusCode)> = vec![
        (wrong_csrf, vec![], StatusCode::FORBIDDEN),
        (ok_form("contacted").into_iter().filter(|(k, _)| *k != "csrf").collect(), vec![], StatusCode::FORBIDDEN),
        (ok_form("contacted"), vec![("sec-fetch-site", "cross-site")], StatusCode::FORBIDDEN),
        (
            ok_form("contacted"),
            vec![("origin", "https://evil.example"), ("host", "leads.example.com")],
            StatusCode::FORBIDDEN,
        ),
        (
            ok_form("contacted").into_iter().filter(|(k, _)| *k != "nonce").collect(),
            vec![],
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (ok_form("launch_missiles"), vec![], StatusCode::UNPROCESSABLE_ENTITY),
        (ok_form("disqualified"), vec![], StatusCode::UNPROCESSABLE_ENTITY),
        (ok_form("assign"), vec![], StatusCode::UNPROCESSABLE_ENTITY),
    ];
    for (form, headers, want) in &cases {
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let page = rig.post_with(&link, &form, headers).await;
        assert_eq!(page.status, *want, "{form:?} {headers:?}: {}", page.body);
        assert!(page.body.contains("role=\"alert\""), "says why: {}", page.body);
    }
    let mut huge = ok_form("contacted");
    huge.push(("pad", "x".repeat(10_000)));
    let huge: Vec<(&str, &str)> = huge.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(rig.post_with(&link, &huge, &[]).await.status, StatusCode::PAYLOAD_TOO_LARGE);
    let put = Request::put(link.as_str()).body(Bytes::new()).expect("request");
    assert_eq!(rig.send(put, rig.now).await.status, StatusCode::METHOD_NOT_ALLOWED);
    // A reason not in lifecycle.yaml: the rules refuse it, the page says so.
    let page = rig.press(&link, "disqualified", &[("reason", "<script>alert(1)</script>")]).await;
    assert_eq!(page.status, StatusCode::CONFLICT, "{}", page.body);
    assert!(!page.body.contains("<script>"), "escaped: {}", page.body);
    // A rep who is not a manager cannot assign.
    let page = rig.press(&link, "assign", &[("to", other)]).await;
    assert_eq!(page.status, StatusCode::CONFLICT, "{}", page.body);

    let after = rig.lead("pat@bigcorp.com").await;
    assert_eq!(
        (after.version, after.status, after.owner.clone()),
        (lead.version, Status::Assigned, Some(owner.clone()))
    );

    // The page was open when the manager gave the lead to someone else: its
    // button now says so plainly, and saves nothing.
    let manager = rig.link(&lead, "mia", rig.now + Duration::days(1));
    assert_eq!(rig.press(&manager, "assign", &[("to", other)]).await.status, StatusCode::SEE_OTHER);
    let moved = rig.lead("pat@bigcorp.com").await;
    let stale = rig.post_with(&link, &[("csrf", &csrf), ("nonce", &nonce), ("action", "contacted")], &[]).await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.body);
    assert!(stale.body.contains(&format!("Nothing was saved: this lead is with {other} now")), "{}", stale.body);
    assert!(!stale.body.contains("<form"), "and offers nothing: {}", stale.body);
    assert_eq!(rig.lead("pat@bigcorp.com").await.version, moved.version);
}

#[tokio::test]
async fn not_mine_passes_the_lead_on_with_the_new_owners_own_link_on_the_embedded_store() {
    not_mine_passes_the_lead_on_and_a_manager_reassigns_it(embedded()).await;
}

#[tokio::test]
async fn not_mine_passes_the_lead_on_with_the_new_owners_own_link_on_dynamodb() {
    not_mine_passes_the_lead_on_and_a_manager_reassigns_it(dynamodb().await).await;
}

async fn not_mine_passes_the_lead_on_and_a_manager_reassigns_it<S: Store>(rig: WebRig<S>) {
    let lead = rig.capture("lee@bigcorp.com").await;
    let first = lead.owner.clone().expect("an owner");
    let link = rig.link_sent_to(&first);
    let done = rig.press(&link, "not_mine", &[]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let after = rig.lead("lee@bigcorp.com").await;
    let second = after.owner.clone().expect("a new owner");
    assert_ne!(second, first);
    assert_eq!(after.status, Status::Assigned);
    assert!(after.sla.is_some_and(|c| c.handed_off_at == rig.now), "a fresh clock for the new owner");
    // The new owner's notification carries a link of their own, which works.
    let theirs = rig.link_sent_to(&second);
    assert_ne!(theirs, link);
    let page = rig.get(&theirs).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(&format!("Lead for {second}")) && page.body.contains("<form"), "{}", page.body);
    // The first owner's link now says where the lead went.
    assert!(rig.get(&link).await.body.contains(&format!("This lead is with {second} now")));

    // Their manager (mia) gives it back to the first rep; cho is not in her team.
    let manager = rig.link(&after, "mia", rig.now + Duration::days(1));
    let page = rig.get(&manager).await;
    assert!(page.body.contains("Assign to"), "{}", page.body);
    let refused = rig.press(&manager, "assign", &[("to", "cho")]).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(refused.body.contains("cho is not in your team"), "{}", refused.body);
    let done = rig.press(&manager, "assign", &[("to", &first)]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let back = rig.lead("lee@bigcorp.com").await;
    assert_eq!(back.owner.as_deref(), Some(first.as_str()));
    let why: Vec<String> = rig
        .history(&back)
        .await
        .into_iter()
        .filter_map(|r| match r {
            Record::Reassignment { why, .. } => Some(why),
            _ => None,
        })
        .collect();
    assert_eq!(why, vec![format!("{first} said the lead is not theirs."), "Assigned by mia.".to_owned()]);
}
