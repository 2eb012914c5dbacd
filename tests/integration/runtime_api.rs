//! A local implementation of the Lambda runtime API, enough to run a function's
//! `bootstrap` the way the Lambda service does: the bootstrap asks for its next
//! invocation (`GET /2018-06-01/runtime/invocation/next`), answers it
//! (`POST .../invocation/{id}/response` or `.../error`), or reports that its
//! cold start failed (`POST /2018-06-01/runtime/init/error`).
//!
//! [`RuntimeApi::invoke`] queues an event and waits for the bootstrap's answer.
//! One runtime API serves one bootstrap, as one Lambda sandbox does.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

/// How a bootstrap answered an invocation.
#[derive(Debug)]
pub enum Answer {
    /// `/response`: the function's result.
    Response(Value),
    /// `/error`: the error it reported, and the error type header.
    Error { body: Value, error_type: Option<String> },
}

struct Invocation {
    id: String,
    event: Value,
    answer: oneshot::Sender<Answer>,
}

struct Shared {
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>,
    waiting: Mutex<HashMap<String, oneshot::Sender<Answer>>>,
    init_error: Mutex<Option<Value>>,
    first_next: Mutex<Option<Instant>>,
}

pub struct RuntimeApi {
    address: SocketAddr,
    shared: Arc<Shared>,
    invocations: mpsc::UnboundedSender<Invocation>,
    next_id: std::sync::atomic::AtomicUsize,
    server: tokio::task::JoinHandle<()>,
}

/// The function's ARN in every invocation's context.
const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:leadflow-test";

impl RuntimeApi {
    /// Listens on a free loopback port.
    pub async fn start() -> RuntimeApi {
        let (invocations, queue) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            queue: tokio::sync::Mutex::new(queue),
            waiting: Mutex::new(HashMap::new()),
            init_error: Mutex::new(None),
            first_next: Mutex::new(None),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the runtime API");
        let address = listener.local_addr().expect("its address");
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("the runtime API serves");
        });
        RuntimeApi { address, shared, invocations, next_id: Default::default(), server }
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// Hands `event` to the bootstrap and waits up to `timeout` for its answer.
    pub async fn invoke(&self, event: Value, timeout: Duration) -> Answer {
        let n = self.next_id.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let (answer, answered) = oneshot::channel();
        let id = format!("8f5e3c1a-0000-4000-8000-{n:012}");
        self.invocations.send(Invocation { id, event, answer }).expect("the runtime API is running");
        tokio::time::timeout(timeout, answered)
            .await
            .expect("the bootstrap answers the invocation in time")
            .expect("the runtime API keeps the invocation")
    }

    /// What the bootstrap posted to `/runtime/init/error`, if anything.
    pub fn init_error(&self) -> Option<Value> {
        self.shared.init_error.lock().expect("init error").clone()
    }

    /// When the bootstrap first asked for an invocation: the end of its cold start.
    pub fn first_next(&self) -> Option<Instant> {
        *self.shared.first_next.lock().expect("first next")
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    shared.first_next.lock().expect("first next").get_or_insert_with(Instant::now);
    let Some(invocation) = shared.queue.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    shared.waiting.lock().expect("waiting").insert(invocation.id.clone(), invocation.answer);
    let deadline = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock") + Duration::from_secs(60);
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        headers.insert(name, value.parse().expect("a header value"));
    };
    set("lambda-runtime-aws-request-id", invocation.id);
    set("lambda-runtime-deadline-ms", deadline.as_millis().to_string());
    set("lambda-runtime-invoked-function-arn", FUNCTION_ARN.to_owned());
    set("lambda-runtime-trace-id", "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0".to_owned());
    set("content-type", "application/json".to_owned());
    (StatusCode::OK, headers, invocation.event.to_string()).into_response()
}

fn answered(shared: &Shared, id: &str, answer: Answer) -> StatusCode {
    match shared.waiting.lock().expect("waiting").remove(id) {
        Some(waiter) => {
            let _ = waiter.send(answer);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

fn json(body: &Bytes) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

async fn response(State(shared): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    answered(&shared, &id, Answer::Response(json(&body)))
}

async fn error(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let error_type = headers.get("lambda-runtime-function-error-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
    answered(&shared, &id, Answer::Error { body: json(&body), error_type })
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    *shared.init_error.lock().expect("init error") = Some(json(&body));
    StatusCode::ACCEPTED
}
