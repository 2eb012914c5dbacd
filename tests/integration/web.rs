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
    assert!(!page.body.contains("Jo Park") && !page.body.contains("tel:"), "nothing of the lead: {}", page.body);

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
    assert!(!stale.body.contains("Jo Park") && !stale.body.contains("tel:"), "nor shows the lead: {}", stale.body);
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

impl<S: Store> WebRig<S> {
    async fn send_as(
        &self,
        mut request: Request<Bytes>,
        cookie: Option<&str>,
        now: DateTime<Utc>,
    ) -> (Page, Option<String>) {
        if let Some(c) = cookie {
            request.headers_mut().insert("cookie", c.parse().expect("cookie"));
        }
        let response = self.web.handle(request, now).await;
        let set = response.headers().get("set-cookie").map(|v| v.to_str().expect("cookie").to_owned());
        let page = Page {
            status: response.status(),
            location: response.headers().get("location").map(|l| l.to_str().expect("location").to_owned()),
            body: response.body().clone(),
        };
        (page, set)
    }

    async fn get_as(&self, path: &str, cookie: &str) -> Page {
        self.send_as(Request::get(path).body(Bytes::new()).expect("request"), Some(cookie), self.now).await.0
    }

    async fn post_as(&self, path: &str, form: &[(&str, &str)], cookie: Option<&str>) -> (Page, Option<String>) {
        let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let request = Request::post(path)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("sec-fetch-site", "same-origin")
            .body(Bytes::from(body))
            .expect("request");
        self.send_as(request, cookie, self.now).await
    }

    /// Asks for a sign-in link for `email` from the sign-in page.
    async fn ask(&self, email: &str) -> Page {
        let page = self.get("/app/signin").await;
        let (csrf, nonce) = (page.field("csrf"), page.field("nonce"));
        self.post_as("/app/signin", &[("csrf", &csrf), ("nonce", &nonce), ("email", email)], None).await.0
    }

    fn sign_in_links(&self) -> Vec<(String, String)> {
        self.notifications()
            .into_iter()
            .filter(|n| n["kind"] == "sign_in")
            .map(|n| {
                let sms = n["sms"].as_str().expect("sms");
                let url = sms.rsplit(' ').next().expect("link");
                (n["to"][0].as_str().expect("to").to_owned(), url[BASE.len()..].to_owned())
            })
            .collect()
    }

    /// Signs `email`'s rep in through the emailed link: the session cookie (`name=value`).
    async fn sign_in(&self, email: &str) -> String {
        self.ask(email).await;
        let (_, link) = self.sign_in_links().pop().expect("a sign-in link");
        let page = self.get(&link).await;
        let (done, cookie) = self.post_as(&link, &[("csrf", &page.field("csrf"))], None).await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        assert_eq!(done.location.as_deref(), Some("/app"));
        cookie.expect("a session cookie").split(';').next().expect("pair").to_owned()
    }
}

#[tokio::test]
async fn reps_sign_in_by_emailed_link_and_see_only_what_is_theirs_on_the_embedded_store() {
    reps_sign_in_by_emailed_link_and_see_only_what_is_theirs(embedded()).await;
}

#[tokio::test]
async fn reps_sign_in_by_emailed_link_and_see_only_what_is_theirs_on_dynamodb() {
    reps_sign_in_by_emailed_link_and_see_only_what_is_theirs(dynamodb().await).await;
}

async fn reps_sign_in_by_emailed_link_and_see_only_what_is_theirs<S: Store>(rig: WebRig<S>) {
    let first = rig.capture("one@bigcorp.com").await;
    let second = rig.capture("two@megacorp.com").await;
    let (a, b) = (first.owner.clone().expect("owner"), second.owner.clone().expect("owner"));
    assert_ne!(a, b, "round robin: the enterprise pool's two reps");

    // Without a session, every page sends people to sign in.
    for path in ["/app", "/app/team", "/app/unassigned", "/app/dashboard", &format!("/app/leads/{}", first.id)] {
        let page = rig.get(path).await;
        assert_eq!((page.status, page.location.as_deref()), (StatusCode::SEE_OTHER, Some("/app/signin")), "{path}");
    }

    let cookie = rig.sign_in(&format!("{a}@example.com")).await;
    let mine = rig.get_as("/app", &cookie).await;
    assert_eq!(mine.status, StatusCode::OK);
    assert!(mine.body.contains(&format!("/app/leads/{}", first.id)), "{}", mine.body);
    assert!(!mine.body.contains(&second.id.to_string()), "another rep's lead is not listed");
    let page = rig.get_as(&format!("/app/leads/{}", first.id), &cookie).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("<h2>History</h2>") && page.body.contains(&format!("<h2>Why {a}</h2>")),
        "{}",
        page.body
    );
    // Another rep's lead, a made-up id and garbage all look the same: not found.
    for id in [second.id.to_string(), "0".repeat(24), "../../etc".to_owned()] {
        assert_eq!(rig.get_as(&format!("/app/leads/{id}"), &cookie).await.status, StatusCode::NOT_FOUND, "{id}");
    }
    // Not a manager: no team, no unassigned queue.
    assert_eq!(rig.get_as("/app/team", &cookie).await.status, StatusCode::NOT_FOUND);
    assert_eq!(rig.get_as("/app/unassigned", &cookie).await.status, StatusCode::NOT_FOUND);
    assert_eq!(rig.get_as("/app/dashboard", &cookie).await.status, StatusCode::NOT_FOUND);

    // Acting from the lead's page: the session's CSRF token, then back to the page.
    let csrf = page.field("csrf");
    let nonce = page.field("nonce");
    let path = format!("/app/leads/{}", first.id);
    let (done, _) =
        rig.post_as(&path, &[("csrf", &csrf), ("nonce", &nonce), ("action", "contacted")], Some(&cookie)).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location, Some(format!("{path}?done=contacted")));
    assert_eq!(rig.lead("one@bigcorp.com").await.status, Status::Working);
    // The same form without the session, with another session's token, or for another rep's lead.
    let (page, _) = rig.post_as(&path, &[("csrf", &csrf), ("nonce", &nonce), ("action", "converted")], None).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let other_path = format!("/app/leads/{}", second.id);
    let (page, _) =
        rig.post_as(&other_path, &[("csrf", &csrf), ("nonce", &nonce), ("action", "contacted")], Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    let (page, _) =
        rig.post_as(&path, &[("csrf", "0"), ("nonce", &nonce), ("action", "converted")], Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(rig.lead("two@megacorp.com").await.version, second.version);

    // The manager sees the team and assigns from the lead's page.
    let mia = rig.sign_in("mia@example.com").await;
    let team = rig.get_as("/app/team", &mia).await;
    assert_eq!(team.status, StatusCode::OK);
    for rep in ["Ana Lopez", "Ben Okafor", "Eve Martin", "Fay Nguyen"] {
        assert!(team.body.contains(rep), "{rep}: {}", team.body);
    }
    assert!(!team.body.contains("Cho Park"), "max's team is not mia's");
    let page = rig.get_as(&other_path, &mia).await;
    assert_eq!(page.status, StatusCode::OK, "her team's lead");
    let form = [
        ("csrf", page.field("csrf")),
        ("nonce", page.field("nonce")),
        ("action", "assign".into()),
        ("to", "eve".into()),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (done, _) = rig.post_as(&other_path, &form, Some(&mia)).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(rig.lead("two@megacorp.com").await.owner.as_deref(), Some("eve"));
    let eve = rig.sign_in("eve@example.com").await;
    assert!(rig.get_as("/app", &eve).await.body.contains(&second.id.to_string()), "now in Eve's queue");
    assert!(
        !rig.get_as("/app", &rig.sign_in(&format!("{b}@example.com")).await)
            .await
            .body
            .contains(&second.id.to_string())
    );

    // Signing out ends the session in the browser.
    let (out, set) = rig.post_as("/app/signout", &[("csrf", &csrf)], Some(&cookie)).await;
    assert_eq!(out.location.as_deref(), Some("/app/signin"));
    assert!(set.expect("a removal").contains("Max-Age=0"));
}

#[tokio::test]
async fn sign_in_links_are_refused_when_forged_expired_replayed_or_asked_for_by_strangers() {
    let mut rig = embedded();
    // A stranger's address gets the same answer as a rep's, and no message.
    let stranger = rig.ask("nobody@elsewhere.example").await;
    let rep = rig.ask("ana@example.com").await;
    assert_eq!(stranger.status, StatusCode::OK);
    let said = |p: &Page| {
        let status = p.body.split("role=\"status\">").nth(1).and_then(|t| t.split("</div>").next());
        status.and_then(|t| t.split(" is a rep").nth(1)).map(str::to_owned)
    };
    assert_eq!(said(&stranger), said(&rep), "the same words either way");
    assert_eq!(rig.sign_in_links().len(), 1, "one link, to ana");
    // Asking again within the minute sends nothing more (no SMS flood).
    rig.ask("ana@example.com").await;
    rig.ask("ANA@Example.com").await;
    assert_eq!(rig.sign_in_links().len(), 1);
    // Not an address: said so, nothing sent.
    let bad = rig.ask("<script>@@").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!bad.body.contains("<script>"));

    let (_, link) = rig.sign_in_links().pop().expect("link");
    // Opening the link twice (a mail scanner, then the rep) signs nobody in and spends nothing.
    assert!(rig.get(&link).await.body.contains("Sign in as Ana Lopez"));
    let page = rig.get(&link).await;
    let csrf = page.field("csrf");
    // The button's form from another site, or without its token.
    let cross = Request::post(link.as_str())
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "cross-site")
        .body(Bytes::from(format!("csrf={csrf}")))
        .expect("request");
    assert_eq!(rig.send_as(cross, None, rig.now).await.0.status, StatusCode::FORBIDDEN);
    assert_eq!(rig.post_as(&link, &[], None).await.0.status, StatusCode::FORBIDDEN);
    // A browser that says neither where the form came from (no `Sec-Fetch-Site`,
    // `Origin: null`) cannot complete a sign-in: it could be someone else's form.
    let unsure = Request::post(link.as_str())
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", "null")
        .body(Bytes::from(format!("csrf={csrf}")))
        .expect("request");
    assert_eq!(rig.send_as(unsure, None, rig.now).await.0.status, StatusCode::FORBIDDEN);
    // Once, then never again.
    let (first, cookie) = rig.post_as(&link, &[("csrf", &csrf)], None).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER);
    assert!(cookie.is_some());
    let (again, cookie) = rig.post_as(&link, &[("csrf", &csrf)], None).await;
    assert_eq!(again.status, StatusCode::GONE, "{}", again.body);
    assert!(cookie.is_none());

    // Expired, forged, or an action link in its place.
    let key = &rig.config.links.key;
    let expired = format!("/app/signin/{}", key.sign_in_token("ana", 9, rig.now - Duration::seconds(1)));
    assert_eq!(rig.get(&expired).await.status, StatusCode::GONE);
    let forged = format!("/app/signin/{}", LinkKeyOf::other().sign_in_token("ana", 9, rig.now + Duration::minutes(5)));
    assert_eq!(rig.get(&forged).await.status, StatusCode::FORBIDDEN);
    let lead = rig.capture("x@bigcorp.com").await;
    let action = format!("/app/signin/{}", key.action_token(&lead.id, "ana", rig.now + Duration::days(1)));
    assert_eq!(rig.get(&action).await.status, StatusCode::NOT_FOUND);
    // A link for a rep no longer in routing.yaml.
    let gone = format!("/app/signin/{}", key.sign_in_token("zed", 9, rig.now + Duration::minutes(5)));
    assert_eq!(rig.get(&gone).await.status, StatusCode::NOT_FOUND);

    // A session cookie that was altered, or signed with another secret, is no session.
    let good = rig.sign_in_with_new_minute("ana@example.com").await;
    assert_eq!(rig.get_as("/app", &good).await.status, StatusCode::OK);
    let altered = good.replace(".ana", ".mia");
    assert_eq!(rig.get_as("/app", &altered).await.location.as_deref(), Some("/app/signin"));
    let expired_session = rig
        .send_as(Request::get("/app").body(Bytes::new()).expect("request"), Some(&good), rig.now + Duration::hours(13))
        .await
        .0;
    assert_eq!(expired_session.location.as_deref(), Some("/app/signin"));
}

/// A link key no deployment uses.
struct LinkKeyOf;

impl LinkKeyOf {
    fn other() -> leadflow_domain::link::LinkKey {
        leadflow_domain::link::LinkKey::derive(b"another deployment's secret, also long enough").expect("key")
    }
}

impl<S: Store> WebRig<S> {
    /// Signs in a minute later than the last ask (one link a minute per rep).
    async fn sign_in_with_new_minute(&mut self, email: &str) -> String {
        self.now += Duration::minutes(1);
        self.sign_in(email).await
    }
}

#[tokio::test]
async fn a_manager_marks_a_rep_away_on_the_team_page_and_the_next_leads_go_elsewhere_on_the_embedded_store() {
    a_manager_marks_a_rep_away_and_the_next_leads_go_elsewhere(embedded()).await;
}

#[tokio::test]
async fn a_manager_marks_a_rep_away_on_the_team_page_and_the_next_leads_go_elsewhere_on_dynamodb() {
    a_manager_marks_a_rep_away_and_the_next_leads_go_elsewhere(dynamodb().await).await;
}

async fn a_manager_marks_a_rep_away_and_the_next_leads_go_elsewhere<S: Store>(rig: WebRig<S>) {
    let mia = rig.sign_in("mia@example.com").await;
    let page = rig.get_as("/app/team", &mia).await;
    assert!(page.body.contains("id=\"rep-ana\""), "{}", page.body);
    let csrf = page.field("csrf");
    let today = rig.now.date_naive().to_string();
    let change = |rep: &'static str, change: &'static str, extra: Vec<(&'static str, String)>| {
        let mut form = vec![("csrf", csrf.clone()), ("rep", rep.to_owned()), ("change", change.to_owned())];
        form.extend(extra);
        form
    };

    // Refused: dates that make no sense, a capacity that is not a number,
    // another manager's rep, a rep that does not exist, a rep who manages nobody.
    let backwards = change("ana", "away", vec![("from", today.clone()), ("to", "2026-03-01".into())]);
    let page = rig.post_team(backwards, &mia).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", page.body);
    assert!(page.body.contains("Nothing was saved: an away range must not end before it starts"), "{}", page.body);
    assert_eq!(
        rig.post_team(change("ana", "away", vec![("from", "soon".into())]), &mia).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        rig.post_team(change("ana", "capacity", vec![("capacity", "lots".into())]), &mia).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(rig.post_team(change("cho", "inactive", vec![]), &mia).await.status, StatusCode::NOT_FOUND);
    assert_eq!(rig.post_team(change("zed", "inactive", vec![]), &mia).await.status, StatusCode::NOT_FOUND);
    let ana = rig.sign_in("ana@example.com").await;
    let page = rig.get_as("/app", &ana).await;
    let own = [("csrf", page.field("csrf")), ("rep", "ben".into()), ("change", "inactive".into())];
    let own: Vec<(&str, &str)> = own.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(rig.post_as("/app/team", &own, Some(&ana)).await.0.status, StatusCode::NOT_FOUND);
    let unchanged = rig.get_as("/app/team", &mia).await;
    assert!(!unchanged.body.contains("Changed</dt>"), "nothing was changed: {}", unchanged.body);

    // Ana is away today: the enterprise pool's leads all go to Ben.
    let away = change("ana", "away", vec![("from", today.clone()), ("to", today.clone())]);
    let done = rig.post_team(away, &mia).await;
    assert_eq!(
        (done.status, done.location.as_deref()),
        (StatusCode::SEE_OTHER, Some("/app/team?done=away")),
        "{}",
        done.body
    );
    let page = rig.get_as("/app/team", &mia).await;
    assert!(page.body.contains("no (away today)") && page.body.contains("by mia"), "{}", page.body);
    for i in 0..3 {
        let lead = rig.capture(&format!("buyer{i}@corp{i}.example")).await;
        assert_eq!(lead.owner.as_deref(), Some("ben"), "lead {i}");
    }
    // Back today: Ana takes leads again.
    assert_eq!(rig.post_team(change("ana", "back", vec![]), &mia).await.status, StatusCode::SEE_OTHER);
    let owners: Vec<Option<String>> = {
        let mut v = Vec::new();
        for i in 3..5 {
            v.push(rig.capture(&format!("buyer{i}@corp{i}.example")).await.owner);
        }
        v
    };
    assert!(owners.contains(&Some("ana".to_owned())), "{owners:?}");
}

impl<S: Store> WebRig<S> {
    async fn post_team(&self, form: Vec<(&'static str, String)>, cookie: &str) -> Page {
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.post_as("/app/team", &form, Some(cookie)).await.0
    }
}

#[test]
fn leadflow_team_changes_the_team_from_the_command_line() {
    let dir = tempfile::tempdir().expect("dir");
    let store = format!("embedded:{}", dir.path().join("leads.db").display());
    let run = |args: &[&str]| {
        let mut all = vec!["team"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--store", &store, "--notify"]);
        let log = format!("log:{}", dir.path().join("outbox.jsonl").display());
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_leadflow"));
        cmd.args(&all).arg(&log).arg("--rules").arg(starter_rules()).env("USER", "revops");
        cmd.output().expect("leadflow team")
    };
    let away = run(&["away", "dan", "--from", "2026-12-02", "--to", "2099-12-05"]);
    assert!(away.status.success(), "{}", String::from_utf8_lossy(&away.stderr));
    assert!(run(&["capacity", "eve", "3"]).status.success());
    assert!(run(&["active", "fay", "false"]).status.success());
    let show = run(&["show", "--json"]);
    let rows: Vec<Value> = serde_json::from_slice(&show.stdout).expect("JSON");
    let row = |rep: &str| rows.iter().find(|r| r["rep"] == rep).expect("row").clone();
    assert_eq!(row("eve")["capacity"], 3);
    assert_eq!(row("fay")["available"], false);
    assert_eq!(row("dan")["changed_by"], "cli:revops");
    assert!(row("dan")["away"].as_array().expect("away").iter().any(|r| r == "2026-12-02..2099-12-05"));
    // Wrong input: a clear error, nothing changed.
    for bad in [
        vec!["away", "dan", "--from", "2026-12-05", "--to", "2026-12-01"],
        vec!["capacity", "eve", "0"],
        vec!["back", "zed"],
        vec!["active", "fay", "maybe"],
    ] {
        let out = run(&bad);
        assert!(!out.status.success(), "{bad:?}");
        assert!(!String::from_utf8_lossy(&out.stderr).trim().is_empty(), "{bad:?} says why");
    }
    assert_eq!(serde_json::from_slice::<Vec<Value>>(&run(&["show", "--json"]).stdout).expect("JSON"), rows);
    assert!(run(&["reset", "fay"]).status.success());
    let rows: Vec<Value> = serde_json::from_slice(&run(&["show", "--json"]).stdout).expect("JSON");
    assert_eq!(rows.iter().find(|r| r["rep"] == "fay").expect("fay")["changed_by"], Value::Null);
}

#[tokio::test]
async fn a_rep_gets_at_most_five_sign_in_links_an_hour_however_often_anyone_asks() {
    let mut rig = embedded();
    for _ in 0..8 {
        rig.ask("ben@example.com").await;
        rig.now += Duration::minutes(2);
    }
    assert_eq!(rig.sign_in_links().len(), 5, "five an hour");
    rig.now += Duration::hours(1);
    rig.ask("ben@example.com").await;
    assert_eq!(rig.sign_in_links().len(), 6, "and again the next hour");
}

#[tokio::test]
async fn an_unassigned_lead_offers_a_manager_only_the_assignment() {
    let rig = embedded();
    for rep in ["ana", "ben", "eve", "fay"] {
        let inactive = leadflow_domain::team::TeamChange::Active(false);
        rig.web.service.change_team(rep, &inactive, "mia", rig.now).await.expect("inactive");
    }
    let lead = rig.capture("nobody@bigcorp.com").await;
    assert_eq!(lead.status, Status::Unassigned);
    let link = rig.link(&lead, "mia", rig.now + Duration::days(1));
    let page = rig.get(&link).await;
    assert!(page.body.contains("Assign to"), "{}", page.body);
    assert!(!page.body.contains("value=\"contacted\""), "no sales action before it is assigned: {}", page.body);
    let refused = rig
        .post_with(
            &link,
            &[("csrf", &page.field("csrf")), ("nonce", &page.field("nonce")), ("action", "contacted")],
            &[],
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert_eq!(rig.lead("nobody@bigcorp.com").await.status, Status::Unassigned, "still in the queue");
}

#[tokio::test]
async fn a_manager_s_dashboard_shows_the_team_s_pipeline_and_refuses_hostile_filters_on_the_embedded_store() {
    a_manager_s_dashboard_shows_the_team_s_pipeline_and_refuses_hostile_filters(embedded()).await;
}

#[tokio::test]
async fn a_manager_s_dashboard_shows_the_team_s_pipeline_and_refuses_hostile_filters_on_dynamodb() {
    a_manager_s_dashboard_shows_the_team_s_pipeline_and_refuses_hostile_filters(dynamodb().await).await;
}

async fn a_manager_s_dashboard_shows_the_team_s_pipeline_and_refuses_hostile_filters<S: Store>(rig: WebRig<S>) {
    let first = rig.capture("one@bigcorp.com").await;
    let second = rig.capture("two@megacorp.com").await;
    let owners = [first.owner.clone().expect("owner"), second.owner.clone().expect("owner")];
    let mia = rig.sign_in("mia@example.com").await;
    let page = rig.get_as("/app/dashboard", &mia).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let board = |body: &str| {
        body.split("id=\"status-assigned\"").nth(1).unwrap_or("").split("</section>").next().unwrap_or("").to_owned()
    };
    let assigned = board(&page.body);
    assert!(assigned.contains(&format!("/app/leads/{}", first.id)) && assigned.contains("(2)"), "{assigned}");
    for chart in ["Speed to lead by week", "SLA by week", "Funnel", "Calibration"] {
        assert!(page.body.contains(chart), "{chart}");
    }
    assert!(page.body.matches("<svg").count() >= 4, "{}", page.body);
    // Two captures today, both handed off: the figures come from the roll-ups.
    assert!(page.body.contains("<dt>Captured</dt><dd>2</dd>"), "{}", page.body);

    // Filtered by one owner: only their lead on the board, and the charts are theirs.
    let only = rig.get_as(&format!("/app/dashboard?owner={}", owners[0]), &mia).await;
    assert_eq!(only.status, StatusCode::OK);
    let assigned = board(&only.body);
    assert!(assigned.contains(&first.id.to_string()) && !assigned.contains(&second.id.to_string()), "{assigned}");
    assert!(only.body.contains(&format!("rep {}", owners[0])), "{}", only.body);
    assert!(only.body.contains("1 waiting leads are outside the filters."), "{}", only.body);

    // Filters that name what is not there, and periods that make no sense.
    for (query, says) in [
        ("owner=cho", "not in your team"),
        ("owner=%3Cscript%3E", "not in your team"),
        ("tier=lukewarm", "no such tier"),
        ("from=yesterday", "Dates are written like"),
        ("to=-262144-01-01", "from 2000 to 2200"),
        ("to=1900-01-01", "from 2000 to 2200"),
        ("from=2026-03-05&to=2026-03-01", "at most 731 days"),
        ("from=2020-01-01&to=2026-03-01", "at most 731 days"),
    ] {
        let page = rig.get_as(&format!("/app/dashboard?{query}"), &mia).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {}", page.body);
        assert!(page.body.contains(says), "{query}: {}", page.body);
        assert!(!page.body.contains("<script>"), "{query}");
    }
    // A source is filed as the roll-ups name it; a hostile one is only text.
    let page = rig.get_as("/app/dashboard?source=%3Cscript%3Ealert(1)%3C/script%3E", &mia).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("<script>") && page.body.contains("source _script_alert_1___script_"), "{}", page.body);
    let (post, _) = rig.post_as("/app/dashboard", &[("csrf", &page.field("csrf"))], Some(&mia)).await;
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
}
