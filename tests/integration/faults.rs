//! DynamoDB under real contention: a fault-injecting proxy between the AWS SDK
//! and moto answers chosen requests with DynamoDB's own errors
//! (`TransactionCanceledException` with `TransactionConflict` reasons,
//! `ThrottlingException`, a 500), delays them, or drops the connection after
//! forwarding, and the tests check what leadflow makes of it: decisions taken
//! again, retries by the SDK, nothing written twice, invariants intact.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use leadflow_adapters::DynamoStore;
use leadflow_app::{Happening, History, Leadflow, Leads, SaveError, ServiceError};
use leadflow_domain::{Email, LeadId, Profile, Status};

use crate::conformance::{Nowhere, assert_sound, at, conformance_rules};
use crate::moto::{endpoint, new_table, sdk_config};

const TRANSACT: &str = "DynamoDB_20120810.TransactWriteItems";
const READ: &str = "DynamoDB_20120810.BatchGetItem";

/// What the proxy does to the next request of an operation.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with DynamoDB's JSON error, without forwarding.
    Error { status: u16, body: String },
    /// Wait, then forward.
    Delay(Duration),
    /// Forward (so the write happens), then cut the answer off mid-body.
    DropAfterForwarding,
}

impl Fault {
    /// Cancelled: every item `None` but those at `conflicts`, which conflict.
    pub fn transaction_conflict(items: usize, conflicts: &[usize]) -> Fault {
        let reasons: Vec<serde_json::Value> = (0..items)
            .map(|i| {
                if conflicts.contains(&i) {
                    serde_json::json!({ "Code": "TransactionConflict", "Message": "Transaction is ongoing for the item" })
                } else {
                    serde_json::json!({ "Code": "None" })
                }
            })
            .collect();
        Fault::cancelled(reasons)
    }

    pub fn cancelled(reasons: Vec<serde_json::Value>) -> Fault {
        let codes: Vec<&str> = reasons.iter().map(|r| r["Code"].as_str().unwrap_or("None")).collect();
        let body = serde_json::json!({
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "Message": format!("Transaction cancelled, please refer cancellation reasons for specific reasons [{}]", codes.join(", ")),
            "CancellationReasons": reasons,
        });
        Fault::Error { status: 400, body: body.to_string() }
    }

    pub fn throttling() -> Fault {
        let body = serde_json::json!({
            "__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
            "message": "Rate of requests exceeds the allowed throughput.",
        });
        Fault::Error { status: 400, body: body.to_string() }
    }

    pub fn internal() -> Fault {
        let body = serde_json::json!({ "__type": "com.amazon.coral.service#InternalFailure" });
        Fault::Error { status: 500, body: body.to_string() }
    }
}

#[derive(Default)]
struct Plan {
    faults: VecDeque<(&'static str, Fault)>,
    /// Every operation that reached the proxy, in order.
    seen: Vec<String>,
}

/// The proxy, on a free loopback port.
pub struct Proxy {
    pub url: String,
    plan: Arc<Mutex<Plan>>,
}

impl Proxy {
    pub async fn start(upstream: String) -> Proxy {
        let plan = Arc::new(Mutex::new(Plan::default()));
        let state = (Arc::clone(&plan), upstream, reqwest::Client::new());
        let router = Router::new().fallback(forward).with_state(Arc::new(state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, router).await.expect("proxy") });
        Proxy { url, plan }
    }

    /// The next request of `operation` meets `fault` (faults apply in order).
    pub fn inject(&self, operation: &'static str, fault: Fault) {
        self.plan.lock().expect("plan").faults.push_back((operation, fault));
    }

    pub fn count(&self, operation: &str) -> usize {
        self.plan.lock().expect("plan").seen.iter().filter(|s| s.as_str() == operation).count()
    }

    pub fn pending_faults(&self) -> usize {
        self.plan.lock().expect("plan").faults.len()
    }
}

type ProxyState = Arc<(Arc<Mutex<Plan>>, String, reqwest::Client)>;

async fn forward(State(state): State<ProxyState>, request: Request) -> Response {
    let (plan, upstream, client) = &*state;
    let (parts, body) = request.into_parts();
    let target = parts.headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let fault = {
        let mut plan = plan.lock().expect("plan");
        plan.seen.push(target.clone());
        let at = plan.faults.iter().position(|(op, _)| *op == target);
        at.and_then(|i| plan.faults.remove(i)).map(|(_, f)| f)
    };
    let body = to_bytes(body, usize::MAX).await.expect("request body");
    match &fault {
        Some(Fault::Error { status, body }) => {
            return Response::builder()
                .status(*status)
                .header("content-type", "application/x-amz-json-1.0")
                .body(Body::from(body.clone()))
                .expect("response");
        }
        Some(Fault::Delay(d)) => tokio::time::sleep(*d).await,
        _ => {}
    }
    let mut outgoing = client.request(parts.method.clone(), format!("{upstream}{}", parts.uri));
    for (name, value) in &parts.headers {
        if name != http::header::HOST && name != http::header::CONTENT_LENGTH {
            outgoing = outgoing.header(name, value);
        }
    }
    let answer = outgoing.body(body).send().await.expect("moto answers");
    let status = answer.status();
    let headers = answer.headers().clone();
    let bytes = answer.bytes().await.expect("moto's body");
    let mut response = Response::builder().status(status);
    for (name, value) in &headers {
        if name != http::header::TRANSFER_ENCODING && name != http::header::CONNECTION {
            response = response.header(name, value);
        }
    }
    if matches!(fault, Some(Fault::DropAfterForwarding)) {
        // The write happened; the answer is cut off after a few bytes.
        let head = bytes.slice(..bytes.len().min(5));
        let cut = futures_util::stream::iter([
            Ok::<_, std::io::Error>(head),
            Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection dropped")),
        ]);
        return response.body(Body::from_stream(cut)).expect("response");
    }
    response.body(Body::from(bytes)).expect("response")
}

async fn rig() -> (Proxy, Leadflow<DynamoStore, Nowhere>) {
    let direct = sdk_config(&endpoint()).await;
    let table = new_table(&direct).await.table().to_owned();
    let proxy = Proxy::start(endpoint()).await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk_config(&proxy.url).await), table);
    (proxy, Leadflow::new(conformance_rules(), store, Nowhere))
}

fn vp(email: &str) -> Profile {
    let mut p = Profile::new(Email::parse(email).expect("email"));
    p.job_title = Some("VP Sales".into());
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_conflicts_are_decided_again_and_the_hand_off_is_saved_once() {
    let (proxy, app) = rig().await;
    // The hand-off's transaction: lead, rep count, account, history, outbox.
    for _ in 0..3 {
        proxy.inject(TRANSACT, Fault::transaction_conflict(8, &[1]));
    }
    let lead = app.capture(vp("contended@corp.com"), &[], at("2026-03-02T14:00:00Z")).await.expect("capture").lead;
    assert_eq!(proxy.pending_faults(), 0);
    assert_eq!(proxy.count(TRANSACT), 4, "three cancelled, then saved");
    assert_eq!((lead.status, lead.version), (Status::Assigned, 1));
    let stored = app.store.get(&lead.id).await.expect("get").expect("lead");
    assert_eq!(stored.events["form_submission"], 1, "decided four times, saved once");
    let owner = stored.owner.clone().expect("owner");
    let team = leadflow_app::Team::team_state(&app.store, &[owner.as_str()], None).await.expect("team");
    assert_eq!(team.open[&owner], 1);
    assert_sound(&app, at("2026-03-02T14:00:00Z"), "after conflicts").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_that_stays_contended_answers_busy_and_nothing_is_written() {
    let (proxy, app) = rig().await;
    for _ in 0..leadflow_app::service::MAX_ATTEMPTS {
        proxy.inject(TRANSACT, Fault::transaction_conflict(4, &[0]));
    }
    let outcome = app.capture(vp("hot@corp.com"), &[], at("2026-03-02T14:00:00Z")).await;
    assert!(matches!(outcome, Err(ServiceError::Busy)), "{outcome:?}");
    let id = LeadId::for_email(&Email::parse("hot@corp.com").expect("email"));
    assert!(app.store.get(&id).await.expect("get").is_none(), "nothing of a refused capture is stored");
    assert!(app.store.history(&id).await.expect("history").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_5xx_and_slow_answers_are_retried_by_the_sdk() {
    let (proxy, app) = rig().await;
    proxy.inject(READ, Fault::throttling());
    proxy.inject(READ, Fault::Delay(Duration::from_millis(300)));
    proxy.inject(TRANSACT, Fault::internal());
    let outcome = app.capture(vp("slow@corp.com"), &[], at("2026-03-02T14:00:00Z")).await.expect("capture");
    assert!(outcome.created);
    assert_eq!(proxy.pending_faults(), 0);
    assert_eq!(proxy.count(TRANSACT), 2, "the 500 was retried once");
    let stored = app.store.get(&outcome.lead.id).await.expect("get").expect("lead");
    assert_eq!(stored.events["form_submission"], 1);
    assert_sound(&app, at("2026-03-02T14:00:00Z"), "after throttling").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_whose_answer_was_lost_after_its_write_is_counted_once() {
    let (proxy, app) = rig().await;
    let lead = app.capture(vp("lost@corp.com"), &[], at("2026-03-02T14:00:00Z")).await.expect("capture").lead;
    proxy.inject(TRANSACT, Fault::DropAfterForwarding);
    let counts = [("email_click".to_owned(), 1)];
    let now = at("2026-03-02T14:01:00Z");
    let first = app.record(&lead.id, Happening::Engagement(&counts), now, Some("click-1"), now).await;
    // However the SDK's retry and leadflow's read-again turned out, a second
    // send of the same id is a repeat and the click counts once.
    let again = app.record(&lead.id, Happening::Engagement(&counts), now, Some("click-1"), now).await;
    let again = again.expect("sent again").expect("lead");
    assert!(again.repeat, "{first:?}");
    let stored = app.store.get(&lead.id).await.expect("get").expect("lead");
    assert_eq!(stored.events["email_click"], 1);
    assert_sound(&app, now, "after a lost answer").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_save_names_each_reason_and_its_item() {
    let (proxy, app) = rig().await;
    let lead = app.capture(vp("named@corp.com"), &[], at("2026-03-02T14:00:00Z")).await.expect("capture").lead;
    let mut next = lead.clone();
    next.version += 1;
    let mut change = leadflow_app::Change::of(next, lead.version);
    change.team.load = vec![leadflow_domain::machine::LoadChange { rep: "rio".into(), delta: -1, capacity: None }];
    proxy.inject(
        TRANSACT,
        Fault::cancelled(vec![
            serde_json::json!({ "Code": "None" }),
            serde_json::json!({ "Code": "ValidationError", "Message": "bad" }),
        ]),
    );
    match app.store.save(&change).await {
        Err(SaveError::Store(e)) => {
            let message = e.to_string();
            assert!(message.contains("rep rio's open-lead count: ValidationError"), "{message}");
            assert!(std::error::Error::source(&e).is_some(), "the SDK's error is kept as the source");
        }
        other => panic!("expected a store error, got {other:?}"),
    }
    assert_eq!(app.store.get(&lead.id).await.expect("get").expect("lead"), lead, "nothing saved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_post_whose_answer_was_lost_after_its_write_is_one_submission() {
    let (proxy, app) = rig().await;
    proxy.inject(TRANSACT, Fault::DropAfterForwarding);
    let outcome = app.capture(vp("resent@corp.com"), &[], at("2026-03-02T14:00:00Z")).await.expect("capture");
    // The SDK sent it again; leadflow read again and found it applied.
    assert!(proxy.count(TRANSACT) >= 2);
    assert_eq!((outcome.lead.version, outcome.lead.status), (1, Status::Assigned));
    let stored = app.store.get(&outcome.lead.id).await.expect("get").expect("lead");
    assert_eq!((stored.events["form_submission"], stored.version), (1, 1));
    // The client resends too: still one submission, within the repeat window.
    let resent = app.capture(vp("resent@corp.com"), &[], at("2026-03-02T14:01:00Z")).await.expect("capture");
    assert_eq!(resent.lead.version, 1);
    assert_sound(&app, at("2026-03-02T14:01:00Z"), "after a lost answer").await;
}
