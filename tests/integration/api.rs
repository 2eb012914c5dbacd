//! The HTTP API through its handler, on the embedded store with the starter
//! rules: every contract of POST /leads and POST /events, and every class of
//! bad input, each answered with its error and nothing stored.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use http::{Request, StatusCode};
use leadflow_adapters::{EmbeddedStore, LogNotifier};
use leadflow_api::{Api, ApiConfig, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use leadflow_app::{LeadFilter, Leadflow, Leads};
use leadflow_domain::{Email, Lead, LeadId, RuleSet, Status};
use serde_json::{Value, json};

use crate::support::starter_rules;

const SECRET: &[u8] = b"test-secret";
const ORIGIN: &str = "https://www.example.com";

struct Rig {
    api: Api<EmbeddedStore, LogNotifier>,
    log: std::path::PathBuf,
    now: DateTime<Utc>,
    /// Requests signed so far: each is signed a second earlier, as separate
    /// requests from one sender are.
    signed: std::sync::atomic::AtomicI64,
    _dir: tempfile::TempDir,
}

fn rig() -> Rig {
    rig_with(|_| {})
}

/// The test secret of every source that authenticates.
fn source_secrets(rules: &RuleSet) -> std::collections::BTreeMap<String, Vec<u8>> {
    rules
        .capture
        .sources
        .iter()
        .filter(|(_, s)| s.auth.is_some())
        .map(|(name, _)| (name.clone(), format!("secret-of-{name}").into_bytes()))
        .collect()
}

/// A rig on the starter rules as changed by `change`.
fn rig_with(change: impl FnOnce(&mut RuleSet)) -> Rig {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rules = RuleSet::load_dir(&starter_rules()).expect("starter rules");
    change(&mut rules);
    let secrets = source_secrets(&rules);
    let rules = Arc::new(rules);
    let store = EmbeddedStore::open(&dir.path().join("leads.db")).expect("store");
    let log = dir.path().join("outbox.jsonl");
    let service = Arc::new(Leadflow::new(rules, store, LogNotifier::open(&log).expect("log")));
    let config = ApiConfig {
        events_secret: SECRET.to_vec(),
        allowed_origins: vec![ORIGIN.to_owned()],
        source_secrets: leadflow_api::SourceSecrets::from_map(secrets),
    };
    // A Tuesday, 10:00 in New York: business hours.
    let now = "2026-03-03T15:00:00Z".parse().expect("time");
    Rig { api: Api::new(service, config), log, now, signed: 0.into(), _dir: dir }
}

struct Answer {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Value,
}

impl Rig {
    async fn send(&self, request: Request<Bytes>) -> Answer {
        let response = self.api.handle(request, self.now).await;
        let status = response.status();
        let headers = response.headers().clone();
        let body = serde_json::from_str(response.body()).unwrap_or(Value::Null);
        Answer { status, headers, body }
    }

    async fn post(&self, uri: &str, content_type: &str, body: impl Into<Bytes>) -> Answer {
        let request = Request::post(uri).header("content-type", content_type).body(body.into()).expect("request");
        self.send(request).await
    }

    async fn lead_json(&self, body: Value) -> Answer {
        self.post("/leads", "application/json", body.to_string()).await
    }

    async fn events_at(&self, body: &Value, timestamp: i64) -> Answer {
        let raw = body.to_string();
        let request = Request::post("/events")
            .header("content-type", "application/json")
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, sign(SECRET, timestamp, raw.as_bytes()))
            .body(Bytes::from(raw))
            .expect("request");
        self.send(request).await
    }

    async fn events(&self, body: Value) -> Answer {
        let earlier = self.signed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.events_at(&body, self.now.timestamp() - earlier).await
    }

    async fn stored(&self) -> Vec<Lead> {
        self.api.service.store.list(&LeadFilter::default()).await.expect("list")
    }

    async fn lead(&self, email: &str) -> Lead {
        let id = LeadId::for_email(&Email::parse(email).expect("email"));
        self.api.service.store.get(&id).await.expect("get").expect("stored lead")
    }

    /// A post to `/leads?source=SOURCE` with the proof that source's `auth`
    /// asks for, made with the rig's secret (`right`) or a wrong one.
    fn proven(&self, source: &str, content_type: &str, body: String, right: bool) -> Request<Bytes> {
        self.proven_to("/leads", source, content_type, body, right)
    }

    /// The same, to `path` (`/leads` or `/events`).
    fn proven_to(&self, path: &str, source: &str, content_type: &str, body: String, right: bool) -> Request<Bytes> {
        use leadflow_domain::rules::capture::SourceAuthKind as K;
        let secret = if right { format!("secret-of-{source}") } else { "not-the-secret".to_owned() };
        let mut uri = format!("{path}?source={source}");
        let mut request =
            Request::builder().method("POST").header("content-type", content_type).header("host", "api.example.com");
        let auth = self.api.service.rules.capture.sources.get(source).and_then(|s| s.auth.clone());
        let sign = |parts: &[&[u8]], hex: bool| leadflow_api::vendor_signature(secret.as_bytes(), parts, hex);
        let ms = self.now.timestamp_millis().to_string();
        match auth.map(|a| a.kind) {
            None => {}
            Some(K::Header(name)) => request = request.header(name, &secret),
            Some(K::Basic) => {
                use base64::Engine;
                let encoded = base64::engine::general_purpose::STANDARD.encode(format!("user:{secret}"));
                // The rig's secret is the whole `user:password`.
                let encoded = if right { base64::engine::general_purpose::STANDARD.encode(&secret) } else { encoded };
                request = request.header("authorization", format!("Basic {encoded}"));
            }
            Some(K::Query(name)) => uri = format!("{uri}&{name}={secret}"),
            Some(K::Typeform) => {
                request = request.header("typeform-signature", format!("sha256={}", sign(&[body.as_bytes()], false)));
            }
            Some(K::Tally) => request = request.header("tally-signature", sign(&[body.as_bytes()], false)),
            Some(K::Webflow) => {
                let signature = sign(&[ms.as_bytes(), b":", body.as_bytes()], true);
                request = request.header("x-webflow-timestamp", &ms).header("x-webflow-signature", signature);
            }
            Some(K::HubspotV3) => {
                let address = format!("https://api.example.com{uri}");
                let signature = sign(&[b"POST", address.as_bytes(), body.as_bytes(), ms.as_bytes()], false);
                request =
                    request.header("x-hubspot-request-timestamp", &ms).header("x-hubspot-signature-v3", signature);
            }
        }
        request.uri(uri).body(Bytes::from(body)).expect("request")
    }

    fn notifications(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect()
    }
}

fn assert_error(answer: &Answer, status: StatusCode, code: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(answer.body["error"]["code"], code, "{}", answer.body);
    assert!(answer.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
}

#[tokio::test]
async fn a_json_form_post_creates_a_lead_and_a_repeat_updates_it() {
    let rig = rig();
    let first = rig
        .lead_json(json!({
            "email": "Jo@Initech.com", "first_name": "Jo", "job_title": "VP Sales", "employees": 2000,
            "industry": "software", "country": "US", "source": "webinar",
        }))
        .await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    assert_eq!(first.body, json!({ "accepted": true, "lead_id": first.body["lead_id"], "warnings": [] }));
    assert_eq!(rig.lead("jo@initech.com").await.status, Status::Assigned, "a warm lead is handed off at once");
    let again = rig.lead_json(json!({ "email": "jo@initech.com", "last_name": "Park", "source": "ads" })).await;
    // A known email is answered as a new one: the answer tells nobody what leadflow knows.
    assert_eq!((again.status, &again.body), (first.status, &first.body));
    let lead = rig.lead("jo@initech.com").await;
    assert_eq!(lead.profile.source.as_deref(), Some("webinar"), "first touch kept");
    assert_eq!(lead.profile.last_name.as_deref(), Some("Park"));
    assert_eq!(lead.profile.first_name.as_deref(), Some("Jo"), "an absent field never empties a stored one");
}

#[tokio::test]
async fn a_plain_html_form_post_uses_the_source_mapping_and_redirects_to_an_allowed_origin() {
    let rig = rig();
    let body =
        "email=ann%40globex.io&first_name=Ann&title=CTO&employees=250&_redirect=https%3A%2F%2Fwww.example.com%2Fthanks";
    let answer = rig.post("/leads?source=salesforce", "application/x-www-form-urlencoded", body).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.headers["location"], "https://www.example.com/thanks");
    for (hostile, followed) in [
        ("//evil.example/x", false),
        ("/\\evil.example", false),
        ("/thanks?next=https://evil.example", false),
        ("javascript:alert(1)", false),
        ("https://evil.example/phish", false),
        ("/thanks", true),
        ("retURL-style https://www.example.com/ok", false),
    ] {
        let body = format!(
            "email=ann%40globex.io&_redirect={}",
            form_urlencoded::byte_serialize(hostile.as_bytes()).collect::<String>()
        );
        let answer = rig.post("/leads", "application/x-www-form-urlencoded", body).await;
        assert_eq!(answer.status == StatusCode::SEE_OTHER, followed, "{hostile}: {}", answer.body);
    }
    let odd = format!("/leads?source={}", "x".repeat(500));
    assert_eq!(
        rig.post(&odd, "application/x-www-form-urlencoded", "email=odd%40globex.io").await.status,
        StatusCode::ACCEPTED
    );
    assert_eq!(rig.lead("odd@globex.io").await.profile.source, None, "an odd source names nothing");
    let ret = rig
        .post(
            "/leads",
            "application/x-www-form-urlencoded",
            "email=ann%40globex.io&retURL=https%3A%2F%2Fwww.example.com%2Fok",
        )
        .await;
    assert_eq!(
        (ret.status, ret.headers["location"].to_str().ok()),
        (StatusCode::SEE_OTHER, Some("https://www.example.com/ok")),
        "Salesforce's retURL"
    );
    let lead = rig.lead("ann@globex.io").await;
    assert_eq!(lead.profile.first_name.as_deref(), Some("Ann"));
    assert_eq!(lead.profile.employees, Some(250));
    assert_eq!(lead.profile.job_title.as_deref(), Some("CTO"), "Salesforce's `title`");
    assert_eq!(lead.profile.source.as_deref(), Some("salesforce"), "the source names a lead without one");
}

#[tokio::test]
async fn cors_answers_allowed_origins_only() {
    let rig = rig();
    let preflight = Request::builder()
        .method("OPTIONS")
        .uri("/leads")
        .header("origin", ORIGIN)
        .body(Bytes::new())
        .expect("request");
    let answer = rig.send(preflight).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    assert_eq!(answer.headers["access-control-allow-origin"], ORIGIN);
    let other = Request::post("/leads")
        .header("origin", "https://evil.example")
        .header("content-type", "application/json")
        .body(Bytes::from(json!({ "email": "x@corp.com" }).to_string()))
        .expect("request");
    let answer = rig.send(other).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    assert!(answer.headers.get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn a_filled_honeypot_gets_a_normal_answer_and_stores_nothing() {
    let rig = rig();
    for honeypot in ["website_url", "pi_extra_field"] {
        let answer = rig.lead_json(json!({ "email": "bot@spam.com", honeypot: "http://spam" })).await;
        assert_eq!(answer.status, StatusCode::ACCEPTED);
        assert_eq!(answer.body, json!({ "accepted": true, "lead_id": answer.body["lead_id"], "warnings": [] }));
    }
    assert!(rig.stored().await.is_empty());
    assert!(rig.notifications().is_empty());
}

#[tokio::test]
async fn every_bad_form_post_is_refused_with_its_error_and_stores_nothing() {
    let rig = rig();
    let big = format!("{{\"email\":\"a@corp.com\",\"notes\":\"{}\"}}", "x".repeat(70 * 1024));
    let cases: Vec<(Answer, StatusCode, &str)> = vec![
        (rig.post("/leads", "application/json", "{not json").await, StatusCode::BAD_REQUEST, "malformed"),
        (rig.post("/leads", "application/json", "[1, 2]").await, StatusCode::BAD_REQUEST, "malformed"),
        (rig.post("/leads", "application/json", big).await, StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
        (
            rig.post("/leads", "text/plain", "email=a@corp.com").await,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            rig.send(Request::post("/leads").body(Bytes::from("{}")).expect("request")).await,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (rig.lead_json(json!({ "first_name": "No Email" })).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        (rig.lead_json(json!({ "email": "not-an-email" })).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        (
            rig.send(Request::get("/leads").body(Bytes::new()).expect("request")).await,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (rig.post("/nowhere", "application/json", "{}").await, StatusCode::NOT_FOUND, "not_found"),
    ];
    for (answer, status, code) in &cases {
        assert_error(answer, *status, code);
    }
    assert_eq!(cases[5].0.body["error"]["fields"]["email"], "is required");
    assert!(cases[6].0.body["error"]["fields"]["email"].is_string());
    assert!(rig.stored().await.is_empty(), "nothing of a refused post is stored");
}

#[tokio::test]
async fn events_need_a_fresh_valid_signature() {
    let rig = rig();
    rig.lead_json(json!({ "email": "sig@corp.com" })).await;
    let before = rig.lead("sig@corp.com").await;
    let body = json!({ "email": "sig@corp.com", "type": "pricing_page_view" });

    let unsigned = Request::post("/events")
        .header("content-type", "application/json")
        .body(Bytes::from(body.to_string()))
        .expect("request");
    assert_error(&rig.send(unsigned).await, StatusCode::UNAUTHORIZED, "unauthorized");
    let forged = Request::post("/events")
        .header("content-type", "application/json")
        .header(TIMESTAMP_HEADER, rig.now.timestamp().to_string())
        .header(SIGNATURE_HEADER, sign(b"wrong secret", rig.now.timestamp(), body.to_string().as_bytes()))
        .body(Bytes::from(body.to_string()))
        .expect("request");
    assert_error(&rig.send(forged).await, StatusCode::UNAUTHORIZED, "unauthorized");
    let stale = rig.events_at(&body, (rig.now - Duration::minutes(6)).timestamp()).await;
    assert_error(&stale, StatusCode::UNAUTHORIZED, "unauthorized");

    assert_eq!(rig.lead("sig@corp.com").await, before, "no refused event is counted");
    let fresh = rig.events_at(&body, (rig.now - Duration::minutes(4)).timestamp()).await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.body);
}

#[tokio::test]
async fn a_signed_request_replayed_verbatim_changes_nothing_and_gets_the_first_answer() {
    let rig = rig();
    rig.lead_json(json!({ "email": "replay@corp.com" })).await;
    let body = json!({ "events": [
        { "email": "replay@corp.com", "type": "pricing_page_view" },
        { "email": "replay@corp.com", "type": "email_click" },
    ] });
    let ts = (rig.now - Duration::minutes(1)).timestamp();
    let first = rig.events_at(&body, ts).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let after_first = rig.lead("replay@corp.com").await;
    for _ in 0..3 {
        let replay = rig.events_at(&body, ts).await;
        assert_eq!(replay.status, StatusCode::OK, "{}", replay.body);
        for i in 0..2 {
            assert_eq!(replay.body["results"][i]["repeat"], true, "{}", replay.body);
            assert_eq!(replay.body["results"][i]["lead"], first.body["results"][i]["lead"]);
        }
    }
    assert_eq!(rig.lead("replay@corp.com").await, after_first, "a replay changes nothing");
    // The same events signed anew are new events.
    let resigned = rig.events_at(&body, ts + 1).await;
    assert!(resigned.body["results"][0]["repeat"].is_null(), "{}", resigned.body);
    assert_eq!(rig.lead("replay@corp.com").await.events["pricing_page_view"], 2);
}

#[tokio::test]
async fn an_event_id_makes_a_retry_safe_and_bad_ids_or_future_times_are_refused_per_event() {
    let rig = rig();
    rig.lead_json(json!({ "email": "ids@corp.com" })).await;
    let event = json!({ "id": "crm-991", "email": "ids@corp.com", "type": "demo_request" });
    let first = rig.events(event.clone()).await;
    assert_eq!(first.body["results"][0]["ok"], true, "{}", first.body);
    let again = rig.events(event).await;
    assert_eq!(again.body["results"][0]["repeat"], true, "{}", again.body);
    assert_eq!(rig.lead("ids@corp.com").await.events["demo_request"], 1, "sent twice, counted once");

    let ahead = (rig.now + Duration::hours(1)).to_rfc3339();
    let batch = json!({ "events": [
        { "id": "", "email": "ids@corp.com", "type": "email_click" },
        { "id": "has space", "email": "ids@corp.com", "type": "email_click" },
        { "id": "x".repeat(129), "email": "ids@corp.com", "type": "email_click" },
        { "id": "future-1", "email": "ids@corp.com", "type": "email_click", "at": ahead },
        { "id": "fine-1", "email": "ids@corp.com", "type": "email_click", "at": (rig.now - Duration::days(2)).to_rfc3339() },
    ] });
    let answer = rig.events(batch).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    for i in 0..4 {
        assert_eq!(answer.body["results"][i]["error"]["code"], "invalid", "{i}: {}", answer.body);
    }
    assert_eq!(answer.body["results"][4]["ok"], true, "{}", answer.body);
    let lead = rig.lead("ids@corp.com").await;
    assert_eq!(lead.events.get("email_click"), Some(&1), "only the valid event counted");
}

#[test]
fn busy_answers_503_with_retry_after() {
    let response = leadflow_api::ApiError::Internal(leadflow_app::ServiceError::Busy).into_response();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    assert!(response.body().contains("\"busy\""), "{}", response.body());
}

#[tokio::test]
async fn oversized_or_non_json_event_posts_are_refused_and_change_nothing() {
    let rig = rig();
    rig.lead_json(json!({ "email": "size@corp.com" })).await;
    let before = rig.lead("size@corp.com").await;
    let signed = |content_type: &str, raw: String| {
        let ts = rig.now.timestamp();
        Request::post("/events")
            .header("content-type", content_type)
            .header(TIMESTAMP_HEADER, ts.to_string())
            .header(SIGNATURE_HEADER, sign(SECRET, ts, raw.as_bytes()))
            .body(Bytes::from(raw))
            .expect("request")
    };
    let padding = "x".repeat(600 * 1024);
    let big = json!({ "email": "size@corp.com", "type": "email_click", "properties": { "note": padding } });
    let answer = rig.send(signed("application/json", big.to_string())).await;
    assert_error(&answer, StatusCode::PAYLOAD_TOO_LARGE, "too_large");
    let unsigned_big =
        Request::post("/events").header("content-type", "application/json").body(Bytes::from(big.to_string()));
    assert_error(&rig.send(unsigned_big.expect("request")).await, StatusCode::PAYLOAD_TOO_LARGE, "too_large");
    let form = "email=size@corp.com&type=email_click".to_owned();
    let answer = rig.send(signed("application/x-www-form-urlencoded", form)).await;
    assert_error(&answer, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    let answer = rig.send(signed("application/json", "{\"events\": []}".to_owned())).await;
    assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert_eq!(rig.lead("size@corp.com").await, before, "no refused post changes the lead");
}

#[tokio::test]
async fn a_batch_gets_a_result_per_event_and_bad_events_change_nothing() {
    let rig = rig();
    rig.lead_json(json!({ "email": "batch@corp.com", "employees": 500 })).await;
    let before = rig.lead("batch@corp.com").await;
    let answer = rig
        .events(json!({ "events": [
            { "email": "batch@corp.com", "type": "pricing_page_view" },
            { "email": "nobody@corp.com", "type": "pricing_page_view" },
            { "email": "batch@corp.com", "type": "disqualified" },
            { "email": "batch@corp.com", "type": "disqualified", "reason": "bored" },
            { "email": "batch@corp.com", "type": "Not A Name" },
            { "type": "email_click" },
            { "email": "batch@corp.com", "lead_id": "abc", "type": "email_click" },
            { "email": "batch@corp.com", "type": "email_click", "colour": "red" },
        ] }))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let results = answer.body["results"].as_array().expect("results");
    let codes: Vec<&str> = results.iter().map(|r| r["error"]["code"].as_str().unwrap_or("ok")).collect();
    assert_eq!(codes, ["ok", "unknown_lead", "invalid", "rejected", "invalid", "invalid", "invalid", "invalid"]);
    let after = rig.lead("batch@corp.com").await;
    assert_eq!(after.events.get("pricing_page_view"), Some(&1), "only the valid event counted");
    assert_eq!(after.status, before.status);

    let too_many: Vec<Value> = (0..101).map(|_| json!({ "email": "batch@corp.com", "type": "email_click" })).collect();
    assert_error(&rig.events(json!({ "events": too_many })).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert_error(&rig.events(json!([1])).await, StatusCode::BAD_REQUEST, "malformed");
    assert_eq!(rig.lead("batch@corp.com").await, after, "a refused batch changes nothing");
}

#[tokio::test]
async fn engagement_over_the_hand_off_tier_hands_off_and_sales_events_move_the_lead_on() {
    let rig = rig();
    // 2,000 employees, business email, US: 40 points, cold.
    rig.lead_json(json!({ "email": "lee@bigco.com", "employees": 2000, "country": "US" })).await;
    assert_eq!(rig.lead("lee@bigco.com").await.status, Status::Nurturing);
    let two_views = json!({ "events": [
        { "email": "lee@bigco.com", "type": "pricing_page_view" },
        { "email": "lee@bigco.com", "type": "pricing_page_view" },
    ] });
    let answer = rig.events(two_views).await;
    let last = &answer.body["results"][1]["lead"];
    assert_eq!(last["status"], "assigned", "{}", answer.body);
    assert_eq!(last["tier"], "warm");
    let owner = last["owner"].as_str().expect("owner").to_owned();
    assert!(["ana", "ben"].contains(&owner.as_str()), "the enterprise pool: {owner}");
    let handoffs: Vec<Value> = rig.notifications().into_iter().filter(|n| n["kind"] == "handoff").collect();
    assert_eq!(handoffs.len(), 1);
    assert_eq!(handoffs[0]["to"], json!([owner]));
    assert!(rig.lead("lee@bigco.com").await.sla.is_some(), "the first-response clock runs");

    let contacted = rig.events(json!({ "email": "lee@bigco.com", "type": "contacted" })).await;
    assert_eq!(contacted.body["results"][0]["lead"]["status"], "working");
    assert!(rig.lead("lee@bigco.com").await.sla.is_none(), "contact stops the clock");

    let bant = json!({ "budget": true, "authority": true, "need": true });
    let qualified = rig.events(json!({ "email": "lee@bigco.com", "type": "qualified", "bant": bant })).await;
    assert_eq!(qualified.body["results"][0]["lead"]["status"], "qualified", "{}", qualified.body);
    let converted = rig.events(json!({ "email": "lee@bigco.com", "type": "converted" })).await;
    assert_eq!(converted.body["results"][0]["lead"]["status"], "converted");
    let after = rig.events(json!({ "email": "lee@bigco.com", "type": "contacted" })).await;
    assert_eq!(after.body["results"][0]["error"]["code"], "rejected", "converted is final");
    let team = leadflow_app::Team::team_state(&rig.api.service.store, &[&owner], None).await.expect("team");
    assert_eq!(team.open[&owner], 0, "a converted lead no longer counts against its rep");
}

#[tokio::test]
async fn disqualified_with_a_listed_reason_expires_and_nurture_brings_it_back() {
    let rig = rig();
    rig.lead_json(json!({ "email": "dq@corp.com" })).await;
    let dq = rig.events(json!({ "email": "dq@corp.com", "type": "disqualified", "reason": "no_budget" })).await;
    assert_eq!(dq.body["results"][0]["lead"]["status"], "disqualified", "{}", dq.body);
    let lead = rig.lead("dq@corp.com").await;
    assert_eq!(lead.disqualify_reason.as_deref(), Some("no_budget"));
    assert_eq!(lead.expires_at, Some(rig.now + Duration::days(365)), "retention from lifecycle.yaml");
    let back = rig.events(json!({ "email": "dq@corp.com", "type": "nurture" })).await;
    assert_eq!(back.body["results"][0]["lead"]["status"], "nurturing");
    let lead = rig.lead("dq@corp.com").await;
    assert_eq!((lead.expires_at, lead.disqualify_reason), (None, None));
}

#[tokio::test]
async fn a_dormant_lead_that_views_pricing_goes_back_to_its_owner() {
    let rig = rig();
    let warm = json!({ "email": "sleepy@initech.com", "job_title": "CTO", "employees": 2000, "industry": "saas", "country": "US" });
    rig.lead_json(warm).await;
    let owner = rig.lead("sleepy@initech.com").await.owner.expect("owner");
    let report = rig.api.service.cleanup(rig.now + Duration::days(31)).await.expect("cleanup");
    assert_eq!(report.dormant, 1);
    assert_eq!(rig.lead("sleepy@initech.com").await.status, Status::Dormant);

    let view = rig.events(json!({ "email": "sleepy@initech.com", "type": "pricing_page_view" })).await;
    assert_eq!(view.body["results"][0]["lead"]["status"], "assigned", "{}", view.body);
    assert_eq!(view.body["results"][0]["lead"]["owner"], owner.as_str());
    let reactivations: Vec<Value> = rig.notifications().into_iter().filter(|n| n["kind"] == "reactivation").collect();
    assert_eq!(reactivations.len(), 1);
    assert_eq!(reactivations[0]["to"], json!([owner]));
}

#[tokio::test]
async fn three_unanswered_contact_attempts_make_a_lead_dormant_and_release_its_rep() {
    let rig = rig();
    let warm = json!({ "email": "ghost@initech.com", "job_title": "VP Sales", "employees": 2000, "country": "US" });
    rig.lead_json(warm).await;
    let owner = rig.lead("ghost@initech.com").await.owner.expect("owner");
    for _ in 0..3 {
        let tried = rig.events(json!({ "email": "ghost@initech.com", "type": "contact_attempt" })).await;
        assert_eq!(tried.body["results"][0]["lead"]["status"], "assigned", "an attempt is not a contact");
    }
    assert_eq!(rig.lead("ghost@initech.com").await.unanswered, 3);
    let report = rig.api.service.cleanup(rig.now + Duration::days(1)).await.expect("cleanup");
    assert_eq!(report.dormant, 1, "{report:?}");
    let lead = rig.lead("ghost@initech.com").await;
    assert_eq!(
        (lead.status, lead.owner, lead.previous_owner.as_deref()),
        (Status::Dormant, None, Some(owner.as_str()))
    );
    let team = leadflow_app::Team::team_state(&rig.api.service.store, &[&owner], None).await.expect("team");
    assert_eq!(team.open[&owner], 0);
}

#[tokio::test]
async fn a_warm_lead_nobody_can_take_is_unassigned_and_the_managers_are_alerted() {
    let rig = rig_with(|rules| rules.routing.reps.iter_mut().for_each(|r| r.active = false));
    let warm = json!({ "email": "orphan@bigco.com", "job_title": "VP Sales", "employees": 2000, "country": "US" });
    rig.lead_json(warm).await;
    assert_eq!(rig.lead("orphan@bigco.com").await.status, Status::Unassigned);
    let alerts: Vec<Value> = rig.notifications().into_iter().filter(|n| n["kind"] == "unassigned").collect();
    let to: Vec<&Value> = alerts.iter().map(|a| &a["to"]).collect();
    assert_eq!(to, [&json!(["mia"]), &json!(["max"])], "every manager hears of it, each in a message of their own");
    assert!(rig.lead("orphan@bigco.com").await.sla.is_none(), "no clock without an owner");
}

#[tokio::test]
async fn with_reroute_a_dormant_lead_that_wakes_up_is_routed_again() {
    use leadflow_domain::rules::lifecycle::ReactivationAction;
    let rig = rig_with(|rules| rules.lifecycle.reactivation_action = ReactivationAction::Reroute);
    let warm = json!({ "email": "again@bigco.com", "job_title": "VP Sales", "employees": 2000, "country": "US" });
    rig.lead_json(warm).await;
    let owner = rig.lead("again@bigco.com").await.owner.expect("owner");
    rig.api.service.cleanup(rig.now + Duration::days(31)).await.expect("cleanup");
    let view = rig.events(json!({ "email": "again@bigco.com", "type": "demo_request" })).await;
    let lead = &view.body["results"][0]["lead"];
    assert_eq!(lead["status"], "assigned", "{}", view.body);
    assert_eq!(lead["owner"], owner.as_str(), "sticky routing keeps the last owner while available");
    let handoffs = rig.notifications().into_iter().filter(|n| n["kind"] == "handoff").count();
    assert_eq!(handoffs, 2, "routed again: a new hand-off, not a re-activation note");
}

#[tokio::test]
async fn a_woken_lead_below_the_handoff_tier_goes_back_to_nurturing_as_a_new_lead_would() {
    use leadflow_domain::rules::lifecycle::ReactivationAction;
    for action in [ReactivationAction::Reroute, ReactivationAction::NotifyOwner] {
        let rig = rig_with(|rules| rules.lifecycle.reactivation_action = action);
        let small = json!({ "email": "small@tinyco.io", "employees": 40, "country": "US" });
        rig.lead_json(small).await;
        assert_eq!(rig.lead("small@tinyco.io").await.status, Status::Nurturing);
        let report = rig.api.service.cleanup(rig.now + Duration::days(31)).await.expect("cleanup");
        assert_eq!(report.dormant, 1, "{action:?}: {report:?}");

        let view = rig.events(json!({ "email": "small@tinyco.io", "type": "pricing_page_view" })).await;
        let lead = &view.body["results"][0]["lead"];
        assert_eq!(lead["status"], "nurturing", "{action:?}: {}", view.body);
        assert_eq!(lead["owner"], Value::Null, "{action:?}");
        assert!(rig.notifications().is_empty(), "{action:?}: below the hand-off tier nobody is told");
        let stored = rig.lead("small@tinyco.io").await;
        assert!(
            stored.sla.is_none() && stored.hygiene_at.is_some(),
            "{action:?}: no clock; the clean-up watches it again"
        );
    }
}

#[tokio::test]
async fn only_the_email_refuses_a_post_and_every_other_value_that_does_not_fit_is_kept_and_reported() {
    let rig = rig_with(|rules| {
        rules.capture.required.push(leadflow_domain::lead::FieldTarget::parse("company").expect("field"));
    });
    let form = "email=not-an-email&employees=lots&country=Atlantis&first_name=Jo&_redirect=https://evil.example/x";
    let answer = rig.post("/leads", "application/x-www-form-urlencoded", form).await;
    assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    let fields = answer.body["error"]["fields"].as_object().expect("fields");
    assert_eq!(fields.keys().collect::<Vec<_>>(), ["email"], "only the email refuses: {}", answer.body);
    assert!(rig.stored().await.is_empty(), "nothing of a refused post is stored");

    // The same post with a valid email: stored, scored on what is known, handed off.
    let form = json!({
        "email": "jo@bigco.com", "job_title": "VP Sales", "employees": "lots", "country": "Atlantis",
        "company": { "name": "BigCo" }, "How did you hear?": "a friend",
        "_redirect": "https://evil.example/x", "first_name": "Jo",
    });
    let answer = rig.lead_json(form).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "an unknown origin is not followed: {}", answer.body);
    let warned: Vec<&str> = answer.body["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .map(|w| w["field"].as_str().expect("field"))
        .collect();
    assert_eq!(warned, ["country", "employees", "company", "_redirect"], "{}", answer.body);
    let lead = rig.lead("jo@bigco.com").await;
    assert_eq!(lead.profile.raw.get("employees").map(String::as_str), Some("lots"));
    assert_eq!(lead.profile.raw.get("country").map(String::as_str), Some("Atlantis"));
    assert_eq!((lead.profile.employees, lead.profile.country), (None, None));
    assert_eq!(lead.profile.custom.get("company_name").map(String::as_str), Some("BigCo"));
    assert_eq!(lead.profile.custom.get("how_did_you_hear").map(String::as_str), Some("a friend"));
    assert_eq!(lead.profile.first_name.as_deref(), Some("Jo"));
    let history = leadflow_app::History::history(&rig.api.service.store, &lead.id).await.expect("history");
    let recorded = history.iter().find_map(|h| match &h.record {
        leadflow_domain::Record::Capture { warnings, .. } => Some(warnings.len()),
        _ => None,
    });
    assert_eq!(recorded, Some(4), "the warnings are in the lead's history");

    // A later valid value replaces the raw one.
    rig.lead_json(json!({ "email": "jo@bigco.com", "country": "Deutschland", "employees": "51-200" })).await;
    let lead = rig.lead("jo@bigco.com").await;
    assert_eq!(
        (lead.profile.country.map(|c| c.as_str().to_owned()), lead.profile.employees),
        (Some("DE".into()), Some(51))
    );
    assert!(lead.profile.raw.is_empty(), "{:?}", lead.profile.raw);
}

#[tokio::test]
async fn a_post_over_the_limits_is_cut_and_counted_and_the_lead_stays_small() {
    let rig = rig();
    let mut form = serde_json::Map::new();
    form.insert("email".into(), json!("big@corp.com"));
    form.insert("company".into(), json!("x".repeat(5000)));
    for i in 0..300 {
        form.insert(format!("field_{i:03}"), json!("y".repeat(1000)));
    }
    let body = Value::Object(form).to_string();
    assert!(body.len() < leadflow_api::MAX_FORM_BYTES * 8, "within the body limit of the test below");
    let answer = rig.post("/leads", "application/json", body).await;
    // Over 64 KB of body is refused whole, before anything is read.
    assert_error(&answer, StatusCode::PAYLOAD_TOO_LARGE, "too_large");

    let mut form = serde_json::Map::new();
    form.insert("email".into(), json!("big@corp.com"));
    form.insert("company".into(), json!("x".repeat(5000)));
    for i in 0..150 {
        form.insert(format!("f{i:03}"), json!("y".repeat(300)));
    }
    let answer = rig.lead_json(Value::Object(form)).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    let problems: Vec<String> =
        answer.body["warnings"].as_array().expect("warnings").iter().map(|w| w["problem"].to_string()).collect();
    assert!(problems.iter().any(|p| p.contains("cut to 1000")), "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("dropped")), "{problems:?}");
    let lead = rig.lead("big@corp.com").await;
    assert_eq!(lead.profile.company.as_ref().map(|c| c.chars().count()), Some(1000));
    assert_eq!(lead.profile.custom.len(), 50, "custom fields per post");
    // Later posts update those fields but add no more; the item stays far below 400 KB.
    for round in 0..5 {
        let mut form = serde_json::Map::new();
        form.insert("email".into(), json!("big@corp.com"));
        for i in 0..60 {
            form.insert(format!("r{round}_{i:02}"), json!("z".repeat(900)));
        }
        rig.lead_json(Value::Object(form)).await;
    }
    let lead = rig.lead("big@corp.com").await;
    let size = serde_json::to_vec(&lead).expect("JSON").len();
    assert_eq!(lead.profile.custom.len(), 50, "custom fields per lead");
    assert!(size < 300 * 1024, "a lead item of {size} bytes");
}

#[tokio::test]
async fn a_post_that_changes_a_lead_a_rep_owns_keeps_the_old_values_in_its_history() {
    let rig = rig();
    let warm = json!({ "email": "kim@bigco.com", "job_title": "VP Sales", "employees": 2000, "country": "US",
                       "company": "BigCo", "phone": "+1 555 0100" });
    rig.lead_json(warm).await;
    assert!(rig.lead("kim@bigco.com").await.owner.is_some(), "handed off");
    // Anyone can post any address: what the post replaced stays on record.
    rig.lead_json(json!({ "email": "kim@bigco.com", "company": "Impostor Inc", "phone": "+1 555 0199" })).await;
    let lead = rig.lead("kim@bigco.com").await;
    assert_eq!(lead.profile.company.as_deref(), Some("Impostor Inc"));
    let history = leadflow_app::History::history(&rig.api.service.store, &lead.id).await.expect("history");
    let replaced = history
        .iter()
        .find_map(|h| match &h.record {
            leadflow_domain::Record::Capture { replaced, .. } if !replaced.is_empty() => Some(replaced.clone()),
            _ => None,
        })
        .expect("a capture record with the replaced values");
    assert_eq!(
        replaced,
        [("company".to_owned(), "BigCo".to_owned()), ("phone".to_owned(), "+1 555 0100".to_owned())].into()
    );
}

#[tokio::test]
async fn an_event_type_the_rules_do_not_name_is_refused_and_nothing_of_it_is_stored() {
    let rig = rig();
    rig.lead_json(json!({ "email": "ev@corp.com" })).await;
    let before = rig.lead("ev@corp.com").await;
    let answer = rig
        .events(json!({ "events": [
            { "email": "ev@corp.com", "type": "made_up_event" },
            { "email": "ev@corp.com", "type": "email_click" },
        ] }))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let refused = &answer.body["results"][0];
    assert_eq!((&refused["ok"], &refused["error"]["code"]), (&json!(false), &json!("invalid")), "{}", answer.body);
    assert!(refused["error"]["message"].as_str().is_some_and(|m| m.contains("demo_request")), "names the known types");
    assert_eq!(answer.body["results"][1]["ok"], true);
    let after = rig.lead("ev@corp.com").await;
    assert!(!after.events.contains_key("made_up_event"));
    assert_eq!(after.events.get("email_click"), Some(&1));
    let history = leadflow_app::History::history(&rig.api.service.store, &before.id).await.expect("history");
    let kinds: Vec<&str> = history.iter().filter_map(|h| h.record.event_type()).collect();
    assert_eq!(kinds, ["form_submission", "email_click"], "nothing of the refused event is stored");
}

/// Each system's documented payload (tests/fixtures/vendors, with the address of
/// the documentation in each file), posted as that system posts it, becomes the
/// lead a RevOps person would expect.
#[tokio::test]
async fn every_system_s_documented_payload_creates_the_lead_it_describes() {
    use leadflow_domain::form::employees;
    use leadflow_domain::rules::capture::EmployeeBand;
    let dir = crate::support::repo_root().join("tests/fixtures/vendors");
    let mut files: Vec<_> =
        std::fs::read_dir(&dir).expect("vendor fixtures").map(|e| e.expect("entry").path()).collect();
    files.sort();
    assert!(files.len() >= 14, "{files:?}");
    for path in files {
        // A store of its own: every fixture is the same person.
        let rig = rig();
        let source = path.file_stem().and_then(|s| s.to_str()).expect("a name").to_owned();
        let fixture: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("JSON");
        assert!(
            fixture["documentation"].as_str().is_some_and(|d| d.starts_with("http")),
            "{source}: its documentation"
        );
        let body = match &fixture["body"] {
            Value::String(text) => text.clone(),
            json => json.to_string(),
        };
        let content_type = fixture["content_type"].as_str().expect("content type");
        let request = rig.proven(&source, content_type, body, true);
        let answer = rig.send(request).await;
        assert!(matches!(answer.status, StatusCode::ACCEPTED | StatusCode::SEE_OTHER), "{source}: {}", answer.body);
        let expect = &fixture["expect"];
        let lead = rig.lead(expect["email"].as_str().expect("email")).await;
        let p = &lead.profile;
        let text = |field: &str| expect[field].as_str().map(str::to_owned);
        assert_eq!(p.first_name, text("first_name"), "{source}: first_name");
        assert_eq!(p.last_name, text("last_name"), "{source}: last_name");
        assert_eq!(p.company, text("company"), "{source}: company");
        assert_eq!(p.job_title, text("job_title"), "{source}: job_title");
        assert_eq!(p.utm_source, text("utm_source"), "{source}: utm_source");
        assert_eq!(p.utm_campaign, text("utm_campaign"), "{source}: utm_campaign");
        if let Some(country) = text("country") {
            assert_eq!(p.country, leadflow_domain::country::lookup(&country), "{source}: country {country}");
            assert!(p.country.is_some(), "{source}: {country} is a country");
        }
        if let Some(band) = text("employees") {
            assert_eq!(p.employees, employees(&band, EmployeeBand::Lower), "{source}: employees {band}");
        }
        assert_eq!(p.source.as_deref(), Some(source.as_str()), "{source}: the source names the lead");
        assert!(p.raw.is_empty(), "{source}: nothing left unread: {:?}", p.raw);
    }
}

#[tokio::test]
async fn a_source_that_authenticates_refuses_a_post_without_its_proof_and_stores_nothing() {
    let rig = rig();
    let sources: Vec<String> = rig
        .api
        .service
        .rules
        .capture
        .sources
        .iter()
        .filter(|(_, s)| s.auth.is_some())
        .map(|(n, _)| n.clone())
        .collect();
    assert!(sources.len() >= 10, "{sources:?}");
    for source in &sources {
        let body = json!({ "email": "who@corp.com" }).to_string();
        let forged = rig.proven(source, "application/json", body.clone(), false);
        assert_error(&rig.send(forged).await, StatusCode::UNAUTHORIZED, "unauthorized");
        let bare = rig.post(&format!("/leads?source={source}"), "application/json", body).await;
        assert_error(&bare, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    assert!(rig.stored().await.is_empty(), "nothing of a refused post is stored");

    // A signed timestamp five minutes off is refused even with the right secret.
    let body = json!({ "payload": { "data": { "email": "late@corp.com" } } }).to_string();
    let old = (rig.now - Duration::minutes(6)).timestamp_millis().to_string();
    let signature =
        leadflow_api::vendor_signature(b"secret-of-webflow", &[old.as_bytes(), b":", body.as_bytes()], true);
    let late = Request::post("/leads?source=webflow")
        .header("content-type", "application/json")
        .header("x-webflow-timestamp", old)
        .header("x-webflow-signature", signature)
        .body(Bytes::from(body))
        .expect("request");
    assert_error(&rig.send(late).await, StatusCode::UNAUTHORIZED, "unauthorized");

    // A source whose secret is not configured refuses everything.
    let mut bare = rig_with(|_| {});
    bare.api.config.source_secrets = leadflow_api::SourceSecrets::default();
    let answer = bare.send(bare.proven("typeform", "application/json", json!({}).to_string(), true)).await;
    assert_error(&answer, StatusCode::UNAUTHORIZED, "unauthorized");

    // Sources without `auth` (a public web form) take posts from anyone.
    let open = rig.post("/leads?source=salesforce", "application/x-www-form-urlencoded", "email=open%40corp.com").await;
    assert_eq!(open.status, StatusCode::ACCEPTED);
}

/// Engagement from the systems that cannot sign leadflow's way: each posts to
/// `/events?source=NAME`, authenticated its own way, read by the source's paths.
#[tokio::test]
async fn marketo_activecampaign_and_hubspot_engagement_reach_events_through_their_source() {
    let rig = rig();
    rig.lead_json(json!({ "email": "ada@example.com" })).await;
    let marketo = std::fs::read_to_string(crate::support::repo_root().join("tests/fixtures/vendors/marketo.json"))
        .expect("the Marketo fixture");
    let marketo: Value = serde_json::from_str(&marketo).expect("JSON");
    let body = marketo["body"].to_string();

    let answer = rig.send(rig.proven_to("/events", "marketo", "application/json", body.clone(), true)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["results"][0]["ok"], true, "{}", answer.body);
    assert_eq!(rig.lead("ada@example.com").await.events.get("email_click"), Some(&1));
    // Marketo sends again after a timeout: the same body changes nothing.
    let again = rig.send(rig.proven_to("/events", "marketo", "application/json", body.clone(), true)).await;
    assert_eq!(again.body["results"][0]["repeat"], true, "{}", again.body);
    // Without its token: refused, nothing stored.
    let forged = rig.send(rig.proven_to("/events", "marketo", "application/json", body.clone(), false)).await;
    assert_error(&forged, StatusCode::UNAUTHORIZED, "unauthorized");
    // A Marketo activity nobody mapped: that event's error, nothing stored.
    let mut other = marketo["body"].clone();
    other["activity"]["type"] = json!("Changes Data Value");
    let unmapped = rig.send(rig.proven_to("/events", "marketo", "application/json", other.to_string(), true)).await;
    assert_eq!(unmapped.body["results"][0]["ok"], false, "{}", unmapped.body);
    assert!(unmapped.body["results"][0]["error"]["message"].as_str().is_some_and(|m| m.contains("not mapped")));
    assert_eq!(rig.lead("ada@example.com").await.events.get("email_click"), Some(&1));

    // ActiveCampaign's click webhook: bracket keys, a query token.
    let click = "type=click&date_time=2024-05-14T05%3A09%3A58-05%3A00&contact%5Bemail%5D=ada%40example.com&link%5Burl%5D=https%3A%2F%2Fwww.example.com%2Fdemo";
    let request =
        rig.proven_to("/events", "activecampaign", "application/x-www-form-urlencoded", click.to_owned(), true);
    let answer = rig.send(request).await;
    assert_eq!(answer.body["results"][0]["ok"], true, "{}", answer.body);
    assert_eq!(rig.lead("ada@example.com").await.events.get("email_click"), Some(&2));

    // A HubSpot workflow that stands for one kind of event, signed with HubSpot's v3 signature.
    let hubspot = json!({ "vid": 4151, "properties": { "email": { "value": "ada@example.com" } } }).to_string();
    let answer = rig.send(rig.proven_to("/events", "hubspot_demo_request", "application/json", hubspot, true)).await;
    assert_eq!(answer.body["results"][0]["ok"], true, "{}", answer.body);
    let lead = rig.lead("ada@example.com").await;
    assert_eq!(lead.events.get("demo_request"), Some(&1));

    // leadflow's own signed events are untouched by all this.
    let own = rig.events(json!({ "email": "ada@example.com", "type": "email_open" })).await;
    assert_eq!(own.body["results"][0]["ok"], true, "{}", own.body);
}

/// Everything the integration tests log, in the functions' own JSON format
/// (`leadflow_lambda::init_tracing`), through one process-wide subscriber: a
/// subscriber per test would race other tests for tracing's callsite cache.
fn captured_logs() -> &'static Arc<std::sync::Mutex<Vec<u8>>> {
    #[derive(Clone)]
    struct Buffer(Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("buffer").extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    static LOGS: std::sync::OnceLock<Arc<std::sync::Mutex<Vec<u8>>>> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = Buffer(Arc::clone(&logs));
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_current_span(false)
            .without_time()
            .with_target(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the tests' one subscriber");
        logs
    })
}

/// Honeypot hits are counted: `template.yaml`'s metric filter matches the
/// line the API logs for each hit, and not the line of a real lead.
#[tokio::test]
async fn a_honeypot_hit_is_logged_where_the_template_s_metric_filter_counts_it() {
    let logs = captured_logs();
    let rig = rig();
    rig.lead_json(json!({ "email": "metric-bot@spam.com", "website_url": "http://spam" })).await;
    rig.lead_json(json!({ "email": "metric-person@corp.com" })).await;
    let text = String::from_utf8_lossy(&logs.lock().expect("logs")).into_owned();
    let lines: Vec<Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();

    let template: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(crate::support::repo_root().join("template.yaml")).expect("template.yaml"),
    )
    .expect("YAML");
    let pattern = template["Resources"]["HoneypotHitsMetricFilter"]["Properties"]["FilterPattern"]
        .as_str()
        .expect("the honeypot metric filter");
    // `{ $.a.b IS TRUE }`: the path of a field that must be true.
    let path = pattern
        .trim_matches(|c| c == '{' || c == '}' || c == ' ')
        .strip_prefix("$.")
        .and_then(|p| p.strip_suffix(" IS TRUE"))
        .expect("a `{ $.path IS TRUE }` pattern");
    let counted = |line: &Value| path.split('.').try_fold(line, |v, k| v.get(k)).is_some_and(|v| v == &json!(true));
    let of = |email: &str| LeadId::for_email(&Email::parse(email).expect("email")).as_str().to_owned();
    let hits = |email: &str| lines.iter().filter(|l| counted(l) && l["fields"]["lead_id"] == of(email)).count();
    assert_eq!((hits("metric-bot@spam.com"), hits("metric-person@corp.com")), (1, 0), "{text}");
}
