//! A lead's whole life through the Lambda handlers, fed API Gateway HTTP API
//! (payload 2.0) and EventBridge Scheduler event JSON (`infra/events/`),
//! against DynamoDB and SNS on moto, with an SQS queue and a phone per rep.

use std::collections::BTreeSet;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Duration, Utc};
use lambda_runtime::{Context, LambdaEvent};
use leadflow_adapters::{DynamoStore, SnsNotifier};
use leadflow_api::{Api, sign};
use leadflow_lambda::Config;
use serde_json::{Value, json};

use crate::moto::{Inboxes, endpoint, new_table, sdk_config};
use crate::support::repo_root;

const SECRET: &str = "lambda-secret";

pub fn fixture(name: &str) -> Value {
    let text = std::fs::read_to_string(repo_root().join("infra/events").join(name)).expect("event fixture");
    serde_json::from_str(&text).expect("fixture JSON")
}

/// The API Gateway event (payload 2.0) of a lead form post with `body`.
pub fn form_post_event(query: &str, body: &Value) -> Value {
    let mut event = fixture("post-leads.json");
    event["rawQueryString"] = json!(query);
    event["queryStringParameters"] = json!({});
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').expect("k=v");
        event["queryStringParameters"][k] = json!(v);
    }
    event["body"] = json!(body.to_string());
    event
}

/// The API Gateway event of an `/events` post, signed with `secret` now.
pub fn events_post_event(secret: &str, events: &Value) -> Value {
    let mut event = fixture("post-events.json");
    let body = events.to_string();
    let ts = Utc::now().timestamp();
    event["headers"]["x-leadflow-timestamp"] = json!(ts.to_string());
    event["headers"]["x-leadflow-signature"] = json!(sign(secret.as_bytes(), ts, body.as_bytes()));
    event["body"] = json!(body);
    event
}

/// The EventBridge Scheduler event of a run at `at`.
pub fn schedule_event(at: DateTime<Utc>) -> Value {
    let mut event = fixture("schedule.json");
    event["time"] = json!(at.to_rfc3339());
    event
}

fn form_post(query: &str, body: &Value) -> lambda_http::Request {
    lambda_http::request::from_str(&form_post_event(query, body).to_string()).expect("an API Gateway request")
}

fn events_post(events: &Value) -> lambda_http::Request {
    lambda_http::request::from_str(&events_post_event(SECRET, events).to_string()).expect("an API Gateway request")
}

fn schedule(at: DateTime<Utc>) -> LambdaEvent<EventBridgeEvent> {
    LambdaEvent::new(serde_json::from_value(schedule_event(at)).expect("a schedule event"), Context::default())
}

async fn call(api: &Api<DynamoStore, SnsNotifier>, request: lambda_http::Request) -> (u16, Value) {
    let response = leadflow_lambda::http(api, request).await.expect("handler");
    let status = response.status().as_u16();
    let body = match response.body() {
        lambda_http::Body::Text(t) => serde_json::from_str(t).expect("JSON body"),
        other => panic!("a text body, not {other:?}"),
    };
    (status, body)
}

async fn event(api: &Api<DynamoStore, SnsNotifier>, e: Value) -> Value {
    let (status, body) = call(api, events_post(&json!({ "events": [e] }))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["ok"], true, "{body}");
    body["results"][0]["lead"].clone()
}

#[test]
fn a_function_without_its_configuration_fails_to_start_naming_the_variable() {
    let missing = Config::from_vars(|name| (name == "LEADS_TABLE").then(|| "leads".to_owned())).unwrap_err();
    assert_eq!(missing.to_string(), "the environment variable HANDOFF_TOPIC_ARN is not set");
    let none = Config::from_vars(|_| None).unwrap_err();
    assert_eq!(none.to_string(), "the environment variable LEADS_TABLE is not set");
    assert!(leadflow_lambda::rules().is_ok(), "the compiled-in rules load");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_lives_its_whole_life_through_the_lambda_handlers() {
    let sdk = sdk_config(&endpoint()).await;
    let store = new_table(&sdk).await;
    let reps = ["ana", "ben", "cho", "dan", "eve", "fay", "mia", "max"];
    let inboxes = Inboxes::create(&sdk, &reps).await;
    let vars = [
        ("LEADS_TABLE", store.table().to_owned()),
        ("HANDOFF_TOPIC_ARN", inboxes.topic_arn.clone()),
        ("EVENTS_SECRET", SECRET.to_owned()),
        ("ALLOWED_ORIGINS", "https://www.example.com".to_owned()),
    ];
    let config =
        Config::from_vars(|name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())).expect("configuration");
    let api = leadflow_lambda::api(&config, &sdk).await.expect("cold start");
    let service = std::sync::Arc::clone(&api.service);

    // Captured from the webinar form, then again from an ad: first touch kept.
    let lee = json!({ "email": "lee@bigco.com", "first_name": "Lee", "employees": 2000, "country": "US" });
    let (status, created) = call(&api, form_post("source=webinar", &lee)).await;
    assert_eq!((status, &created["accepted"]), (202, &json!(true)), "{created}");
    let (status, again) = call(&api, form_post("source=ads", &json!({ "email": "lee@bigco.com" }))).await;
    assert_eq!((status, &again), (202, &created), "a known email is answered as a new one");

    // Engagement over the hand-off tier: routed, notified with the reasons.
    event(&api, json!({ "email": "lee@bigco.com", "type": "pricing_page_view" })).await;
    let handed = event(&api, json!({ "email": "lee@bigco.com", "type": "pricing_page_view" })).await;
    assert_eq!(handed["status"], "assigned");
    let first_owner = handed["owner"].as_str().expect("owner").to_owned();
    let delivered = inboxes.delivered().await;
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert_eq!((delivered[0].kind.as_str(), delivered[0].rep.as_str()), ("handoff", first_owner.as_str()));

    // A week later the SLA check runs from its schedule event: every step once.
    let week = Utc::now() + Duration::days(7);
    let report = leadflow_lambda::sla_check(&service, schedule(week)).await.expect("sla check");
    assert_eq!((report.escalations, report.reassignments), (3, 1), "{report:?}");
    let again = leadflow_lambda::sla_check(&service, schedule(week)).await.expect("sla check");
    assert_eq!(again.escalations, 0, "each step fires once");
    let kinds: BTreeSet<String> = inboxes.delivered().await.into_iter().map(|d| d.kind).collect();
    assert_eq!(kinds, ["escalation", "handoff", "reassigned"].map(str::to_owned).into());

    let working = event(&api, json!({ "email": "lee@bigco.com", "type": "contacted" })).await;
    assert_eq!(working["status"], "working");
    let owner = working["owner"].as_str().expect("owner").to_owned();
    assert_ne!(owner, first_owner);

    // Forty days on, the nightly clean-up makes it dormant; pricing wakes it up.
    let cleanup = leadflow_lambda::cleanup(&service, schedule(Utc::now() + Duration::days(40))).await.expect("cleanup");
    assert_eq!(cleanup.dormant, 1);
    let awake = event(&api, json!({ "email": "lee@bigco.com", "type": "pricing_page_view" })).await;
    assert_eq!((&awake["status"], &awake["owner"]), (&json!("assigned"), &json!(owner)));
    let reactivations = inboxes.delivered().await.into_iter().filter(|d| d.kind == "reactivation").count();
    assert_eq!(reactivations, 1);

    event(&api, json!({ "email": "lee@bigco.com", "type": "contacted" })).await;
    let bant = json!({ "budget": true, "need": true, "timeline": true });
    let qualified = event(&api, json!({ "email": "lee@bigco.com", "type": "qualified", "bant": bant })).await;
    assert_eq!(qualified["status"], "qualified");
    let converted = event(&api, json!({ "email": "lee@bigco.com", "type": "converted" })).await;
    assert_eq!(converted["status"], "converted");
    let stored = leadflow_app::Leads::get(
        &service.store,
        &leadflow_domain::LeadId::parse(created["lead_id"].as_str().expect("id")).expect("lead id"),
    )
    .await
    .expect("get")
    .expect("lead");
    assert_eq!(stored.profile.source.as_deref(), Some("webinar"));

    // A bad request through API Gateway: its error, and nothing stored.
    let (status, body) = call(&api, form_post("", &json!({ "email": "not-an-email" }))).await;
    assert_eq!((status, &body["error"]["code"]), (422, &json!("invalid")));
    let leads = leadflow_app::Leads::list(&service.store, &leadflow_app::LeadFilter::default()).await.expect("list");
    assert_eq!(leads.len(), 1);

    // The CLI reads the same table: `--store dynamodb:TABLE` with the SDK's endpoint setting.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_leadflow"))
        .args(["leads", "list", "--json", "--status", "converted"])
        .args(["--store", &format!("dynamodb:{}", store.table()), "--notify", &format!("sns:{}", inboxes.topic_arn)])
        .env("AWS_ENDPOINT_URL", endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .current_dir(repo_root())
        .output()
        .expect("leadflow leads list");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed: Value = serde_json::from_slice(&out.stdout).expect("JSON list");
    assert_eq!(listed[0]["email"], "lee@bigco.com");
    assert_eq!(listed[0]["status"], "converted");
}

/// An API Gateway event (payload 2.0) for the web app: `method` on `path`
/// (with `query`), a form `body`, and the browser's `cookies`.
fn web_request(method: &str, path: &str, query: &str, body: &str, cookies: &[String]) -> lambda_http::Request {
    let event = web_event(method, path, query, body, cookies);
    lambda_http::request::from_str(&event.to_string()).expect("an API Gateway request")
}

/// The same, as the JSON API Gateway sends.
pub fn web_event(method: &str, path: &str, query: &str, body: &str, cookies: &[String]) -> Value {
    let mut event = fixture("post-leads.json");
    let route = if path.starts_with("/a/") { format!("{method} /a/{{token}}") } else { "ANY /app/{proxy+}".to_owned() };
    event["routeKey"] = json!(route);
    event["requestContext"]["routeKey"] = json!(route);
    event["rawPath"] = json!(path);
    event["requestContext"]["http"]["path"] = json!(path);
    event["requestContext"]["http"]["method"] = json!(method);
    event["rawQueryString"] = json!(query);
    event["queryStringParameters"] = json!({});
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').expect("k=v");
        event["queryStringParameters"][k] = json!(v);
    }
    event["headers"] = json!({
        "content-type": "application/x-www-form-urlencoded",
        "host": "abc123.execute-api.us-east-1.amazonaws.com",
        "origin": "https://abc123.execute-api.us-east-1.amazonaws.com",
        "sec-fetch-site": "same-origin",
    });
    if !cookies.is_empty() {
        event["cookies"] = json!(cookies);
    }
    event["body"] = json!(body);
    event
}

/// What the web app answered: status, body, `Location`, and cookies set (`name=value`).
async fn web_call(
    web: &leadflow_web::Web<DynamoStore, SnsNotifier>,
    request: lambda_http::Request,
) -> (u16, String, Option<String>, Vec<String>) {
    let response = leadflow_lambda::web_http(web, request).await.expect("handler");
    let status = response.status().as_u16();
    let location = response.headers().get("location").map(|l| l.to_str().expect("location").to_owned());
    let cookies = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().expect("cookie").split(';').next().expect("pair").to_owned())
        .collect();
    let body = match response.body() {
        lambda_http::Body::Text(t) => t.clone(),
        other => panic!("a text body, not {other:?}"),
    };
    (status, body, location, cookies)
}

fn field(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).unwrap_or_else(|| panic!("no {name} in {page}")) + marker.len();
    page[start..].split('"').next().unwrap_or("").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_app_runs_through_its_lambda_handler_with_its_secret_and_address_from_ssm() {
    let sdk = sdk_config(&endpoint()).await;
    let store = new_table(&sdk).await;
    let reps = ["ana", "ben", "cho", "dan", "eve", "fay", "mia", "max"];
    let inboxes = Inboxes::create(&sdk, &reps).await;
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    let secret_name = format!("/{}", crate::moto::unique("app-secret"));
    let url_name = format!("/{}", crate::moto::unique("public-url"));
    let base = "https://abc123.execute-api.us-east-1.amazonaws.com";
    for (name, value, kind) in [
        (&secret_name, "an app secret of forty bytes, for tests.", aws_sdk_ssm::types::ParameterType::SecureString),
        (&url_name, base, aws_sdk_ssm::types::ParameterType::String),
    ] {
        ssm.put_parameter().name(name).value(value).r#type(kind).send().await.expect("parameter");
    }
    let vars = [
        ("LEADS_TABLE", store.table().to_owned()),
        ("HANDOFF_TOPIC_ARN", inboxes.topic_arn.clone()),
        ("APP_SECRET", format!("ssm:{secret_name}")),
        ("APP_URL", format!("ssm:{url_name}")),
    ];
    let config =
        Config::from_vars(|name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())).expect("configuration");
    let api = leadflow_lambda::api(&config, &sdk).await.expect("form-submission's cold start");
    let web = leadflow_lambda::web(&config, &sdk).await.expect("web-app's cold start");

    // A hand-off by SNS: the rep's SMS ends with their action link.
    let vp = json!({ "email": "kim@initech.com", "first_name": "Kim", "job_title": "VP Sales", "employees": 2000, "country": "US" });
    let (status, _) = call(&api, form_post("", &vp)).await;
    assert_eq!(status, 202);
    let delivered = inboxes.delivered().await;
    let owner = delivered.iter().find(|d| d.kind == "handoff").expect("a hand-off").rep.clone();
    let sms = inboxes.sms().await.into_iter().find(|(rep, _)| *rep == owner).expect("an SMS").1;
    let link = sms.rsplit(' ').next().expect("a link").to_owned();
    assert!(link.starts_with(&format!("{base}/a/")), "{sms}");
    let path = &link[base.len()..];

    // The page, then one tap: contacted.
    let (status, page, _, _) = web_call(&web, web_request("GET", path, "do=contacted", "", &[])).await;
    assert_eq!(status, 200, "{page}");
    let form = format!("csrf={}&nonce={}&action=contacted", field(&page, "csrf"), field(&page, "nonce"));
    let (status, _, location, _) = web_call(&web, web_request("POST", path, "", &form, &[])).await;
    assert_eq!((status, location), (303, Some(format!("{path}?done=contacted"))));
    let id = leadflow_domain::LeadId::for_email(&leadflow_domain::Email::parse("kim@initech.com").expect("email"));
    let lead = leadflow_app::Leads::get(&web.service.store, &id).await.expect("get").expect("lead");
    assert_eq!((lead.status, lead.sla), (leadflow_domain::Status::Working, None));

    // Sign in by the link SNS carries, then the rep's own page through API Gateway's cookies.
    let (_, page, _, _) = web_call(&web, web_request("GET", "/app/signin", "", "", &[])).await;
    let ask = format!("csrf={}&nonce={}&email={owner}%40example.com", field(&page, "csrf"), field(&page, "nonce"));
    let (status, _, _, _) = web_call(&web, web_request("POST", "/app/signin", "", &ask, &[])).await;
    assert_eq!(status, 200);
    let texts = inboxes.sms().await;
    let signin = texts.iter().rev().find(|(rep, t)| *rep == owner && t.contains("sign-in")).expect("a sign-in SMS");
    let signin_path = signin.1.rsplit(' ').next().expect("link")[base.len()..].to_owned();
    let (_, page, _, _) = web_call(&web, web_request("GET", &signin_path, "", "", &[])).await;
    let confirm = format!("csrf={}", field(&page, "csrf"));
    let (status, _, location, cookies) = web_call(&web, web_request("POST", &signin_path, "", &confirm, &[])).await;
    assert_eq!((status, location.as_deref()), (303, Some("/app")));
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let (status, page, _, _) = web_call(&web, web_request("GET", "/app", "", "", &cookies)).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(&format!("/app/leads/{id}")), "{page}");

    // Without its address the web app does not start, and says which variable is missing.
    let partial = Config::from_vars(|name| {
        vars.iter().filter(|(k, _)| *k != "APP_URL").find(|(k, _)| *k == name).map(|(_, v)| v.clone())
    })
    .expect("configuration");
    let missing = leadflow_lambda::web(&partial, &sdk).await.expect_err("no cold start");
    assert_eq!(missing.to_string(), "the environment variable APP_URL is not set");
    let short = [("APP_SECRET", "short".to_owned()), ("APP_URL", base.to_owned())];
    let weak = Config::from_vars(|name| {
        short.iter().chain(vars.iter().take(2)).find(|(k, _)| *k == name).map(|(_, v)| v.clone())
    })
    .expect("configuration");
    let refused = leadflow_lambda::web(&weak, &sdk).await.expect_err("no cold start");
    assert!(refused.to_string().contains("at least 32 bytes"), "{refused}");
}
