//! A lead's whole life through `leadflow serve` over real HTTP, on the embedded
//! store, with the scheduled jobs run by `leadflow sla-check` and `leadflow
//! cleanup` at injected times against the same database file.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use chrono::{Duration, Utc};
use leadflow_api::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use serde_json::{Value, json};

use crate::support::{copy_of_starter_rules, stdout};

const SECRET: &str = "e2e-secret";

/// `leadflow serve` in a folder of its own, stopped when dropped.
pub struct Server {
    child: Child,
    pub base: String,
    dir: tempfile::TempDir,
    rules: tempfile::TempDir,
    /// `--store` for this server and the commands run on its data (default: embedded).
    store: Vec<String>,
    /// The environment of the server and of those commands (the AWS SDK's, on DynamoDB).
    env: Vec<(String, String)>,
}

impl Server {
    pub fn start() -> Server {
        Server::start_logging("info")
    }

    /// Logging at `level`: the server's standard error is read when it stops,
    /// so a busy test logs less than a pipe holds.
    fn start_logging(level: &str) -> Server {
        Server::start_with(level, Vec::new(), Vec::new())
    }

    /// On a fresh DynamoDB table on moto, with the AWS SDK pointed at it.
    pub fn start_on_dynamodb() -> Server {
        let table = crate::moto::unique("serve");
        let env: Vec<(String, String)> = [
            ("AWS_ENDPOINT_URL", crate::moto::endpoint()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ACCESS_KEY_ID", "test".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let created = Command::new(env!("CARGO_BIN_EXE_leadflow"))
            .args(["table", "create", &table])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("leadflow table create");
        assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
        Server::start_with("info", vec!["--store".to_owned(), format!("dynamodb:{table}")], env)
    }

    fn start_with(level: &str, store: Vec<String>, env: Vec<(String, String)>) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let rules = copy_of_starter_rules();
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let child = Command::new(env!("CARGO_BIN_EXE_leadflow"))
            .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--rules"])
            .arg(rules.path())
            .args(&store)
            .current_dir(dir.path())
            .env("EVENTS_SECRET", SECRET)
            .env("RUST_LOG", level)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start leadflow serve");
        let server = Server { child, base: format!("http://127.0.0.1:{port}"), dir, rules, store, env };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return server;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("leadflow serve did not start on port {port}");
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Runs another `leadflow` command on the server's data.
    pub fn cli(&self, args: &[&str]) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_leadflow"))
            .args(args)
            .arg("--rules")
            .arg(self.rules.path())
            .args(&self.store)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(self.dir.path())
            .output()
            .expect("run leadflow");
        assert!(out.status.success(), "leadflow {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out
    }

    pub fn show(&self, email: &str) -> Value {
        serde_json::from_str(&stdout(&self.cli(&["leads", "show", email, "--json"]))).expect("lead JSON")
    }

    pub fn notifications(&self, kind: &str) -> Vec<Value> {
        let text = std::fs::read_to_string(self.path(".leadflow/outbox.jsonl")).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("JSON line"))
            .filter(|n| n["kind"] == kind)
            .collect()
    }

    pub async fn lead(&self, query: &str, body: Value) -> (u16, Value) {
        let r = reqwest::Client::new()
            .post(format!("{}/leads{query}", self.base))
            .json(&body)
            .send()
            .await
            .expect("POST /leads");
        (r.status().as_u16(), r.json().await.expect("JSON answer"))
    }

    async fn event(&self, mut event: Value) -> Value {
        // Each event its own id, so that two alike in one second are two events.
        event["id"] = json!(format!("e{}", fastrand::u64(..)));
        let body = event.to_string();
        let ts = Utc::now().timestamp();
        let r = reqwest::Client::new()
            .post(format!("{}/events", self.base))
            .header("content-type", "application/json")
            .header(TIMESTAMP_HEADER, ts.to_string())
            .header(SIGNATURE_HEADER, sign(SECRET.as_bytes(), ts, body.as_bytes()))
            .body(body)
            .send()
            .await
            .expect("POST /events");
        assert_eq!(r.status().as_u16(), 200);
        let answer: Value = r.json().await.expect("JSON answer");
        assert_eq!(answer["results"][0]["ok"], true, "{answer}");
        answer["results"][0]["lead"].clone()
    }

    /// Stops the server as a service manager would, and waits for it.
    fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
        assert!(killed.success());
        let out = std::mem::replace(&mut self.child, Command::new("true").spawn().expect("true"))
            .wait_with_output()
            .expect("server output");
        assert!(out.status.success(), "serve exits cleanly on SIGTERM: {:?}", out.status);
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn at(days: i64) -> String {
    (Utc::now() + Duration::days(days)).to_rfc3339()
}

fn has_file(path: &Path) -> bool {
    path.metadata().is_ok_and(|m| m.len() > 0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_form_lists_countries_by_name_and_thanks_the_sender() {
    let server = Server::start();
    let page = reqwest::get(format!("{}/", server.base)).await.expect("GET /").text().await.expect("page");
    assert!(page.contains("<option value=\"DE\">Germany</option>"), "countries by name, posted as codes");
    assert!(page.contains("<option value=\"GE\">Georgia</option>"));
    // Posted as a browser posts it: the answer sends it on to the thank-you page.
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let posted = client
        .post(format!("{}/leads?source=website", server.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=sam%40formco.com&country=DE&employees=51-200&website_url=&_redirect=%2Fthanks")
        .send()
        .await
        .expect("form post");
    assert_eq!((posted.status().as_u16(), posted.headers()["location"].to_str().ok()), (303, Some("/thanks")));
    let thanks = reqwest::get(format!("{}/thanks", server.base)).await.expect("GET /thanks");
    assert!(thanks.status().is_success() && thanks.text().await.expect("page").contains("Thank you"));
    let sam = server.show("sam@formco.com");
    assert_eq!((&sam["profile"]["country"], &sam["profile"]["employees"]), (&json!("DE"), &json!(51)), "{sam}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_lives_its_whole_life_through_leadflow_serve() {
    let server = Server::start();
    let page = reqwest::get(format!("{}/", server.base)).await.expect("GET /").text().await.expect("page");
    assert!(page.contains("action=\"/leads"), "the sample form posts to /leads");

    // Capture, then a repeat capture from another source.
    let profile = json!({ "email": "lee@bigco.com", "first_name": "Lee", "employees": 2000, "country": "US" });
    let (status, created) = server.lead("?source=webinar", profile).await;
    assert_eq!((status, &created["accepted"]), (202, &json!(true)), "{created}");
    assert_eq!(server.show("lee@bigco.com")["status"], "nurturing");
    let (status, again) = server.lead("?source=ads", json!({ "email": "LEE@bigco.com", "job_title": "Ops" })).await;
    assert_eq!((status, &again), (202, &created), "a known email is answered as a new one");

    // Engagement over the hand-off tier: routed and notified with reasons.
    server.event(json!({ "email": "lee@bigco.com", "type": "pricing_page_view" })).await;
    let handed = server.event(json!({ "email": "lee@bigco.com", "type": "pricing_page_view" })).await;
    assert_eq!(handed["status"], "assigned");
    let first_owner = handed["owner"].as_str().expect("owner").to_owned();
    let handoff = &server.notifications("handoff")[0];
    assert_eq!(handoff["to"], json!([first_owner]));
    assert!(handoff["email"].as_str().is_some_and(|e| e.contains("enterprise")), "why this rep: {handoff}");
    let shown = server.show("lee@bigco.com");
    let assignments: Vec<&Value> =
        shown["history"].as_array().expect("history").iter().filter(|h| h["record"] == "assignment").collect();
    assert!(assignments.iter().any(|d| d["assignment"]["rule"] == "enterprise"), "{shown}");

    // The SLA breaches a week later: every escalation step fires once, then reassignment.
    let week = at(7);
    let report: Value =
        serde_json::from_str(&stdout(&server.cli(&["sla-check", "--now", &week]))).expect("report JSON");
    assert_eq!((report["escalations"].as_u64(), report["reassignments"].as_u64()), (Some(3), Some(1)), "{report}");
    let again: Value = serde_json::from_str(&stdout(&server.cli(&["sla-check", "--now", &week]))).expect("JSON");
    assert_eq!(again["escalations"], 0, "each step fires once");
    let owner = server.show("lee@bigco.com")["owner"].as_str().expect("owner").to_owned();
    assert_ne!(owner, first_owner, "reassigned to another rep");
    assert!(!server.notifications("reassigned").is_empty());
    assert!(!server.notifications("escalation").is_empty());

    // Contact stops the clock.
    let working = server.event(json!({ "email": "lee@bigco.com", "type": "contacted" })).await;
    assert_eq!(working["status"], "working");
    assert!(server.show("lee@bigco.com")["sla"].is_null());

    // Thirty idle days later the lead is dormant; a pricing view wakes it up.
    let cleanup: Value =
        serde_json::from_str(&stdout(&server.cli(&["cleanup", "--now", &at(40)]))).expect("report JSON");
    assert_eq!(cleanup["dormant"], 1, "{cleanup}");
    assert_eq!(server.show("lee@bigco.com")["status"], "dormant");
    let awake = server.event(json!({ "email": "lee@bigco.com", "type": "pricing_page_view" })).await;
    assert_eq!((&awake["status"], &awake["owner"]), (&json!("assigned"), &json!(owner)));
    assert_eq!(server.notifications("reactivation")[0]["to"], json!([owner]));

    // Qualified, then converted with the first-touch source kept.
    server.event(json!({ "email": "lee@bigco.com", "type": "contacted" })).await;
    let bant = json!({ "budget": true, "authority": true, "timeline": true });
    let qualified = server.event(json!({ "email": "lee@bigco.com", "type": "qualified", "bant": bant })).await;
    assert_eq!(qualified["status"], "qualified");
    let converted = server.event(json!({ "email": "lee@bigco.com", "type": "converted" })).await;
    assert_eq!(converted["status"], "converted");
    let shown = server.show("lee@bigco.com");
    assert_eq!(shown["profile"]["source"], "webinar");
    assert_eq!(shown["email"], "lee@bigco.com");

    // A bad post over real HTTP: its error, and nothing more stored.
    let r = reqwest::Client::new()
        .post(format!("{}/leads", server.base))
        .header("content-type", "text/plain")
        .body("email=x@corp.com")
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status().as_u16(), 415);
    let list: Value = serde_json::from_str(&stdout(&server.cli(&["leads", "list", "--json"]))).expect("list JSON");
    assert_eq!(list.as_array().map(Vec::len), Some(1));

    assert!(has_file(&server.path(".leadflow/leads.db")), "the default embedded store");
    let log = server.stop();
    assert!(log.contains("stopped"), "graceful shutdown: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_leadflow_serve_under_load_leaves_every_invariant_whole() {
    let mut server = Server::start_logging("error");
    let client = reqwest::Client::new();
    let posts: Vec<_> = (0..400)
        .map(|i| {
            let client = client.clone();
            let url = format!("{}/leads", server.base);
            // Half of them hand off (enterprise VPs), half nurture.
            let lead = if i % 2 == 0 {
                json!({ "email": format!("vp{i}@corp{i}.com"), "job_title": "VP Sales", "employees": 2000, "country": "US" })
            } else {
                json!({ "email": format!("reader{i}@example.org") })
            };
            tokio::spawn(async move { client.post(url).json(&lead).send().await.map(|r| r.status().as_u16()) })
        })
        .collect();
    // SIGKILL while the posts are in flight: no graceful shutdown, no flush.
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    server.child.kill().expect("SIGKILL");
    server.child.wait().expect("reaped");
    let mut answered = 0;
    for p in posts {
        if matches!(p.await.expect("task"), Ok(202)) {
            answered += 1;
        }
    }
    let list: Value = serde_json::from_str(&stdout(&server.cli(&["leads", "list", "--json"]))).expect("list JSON");
    let stored = list.as_array().expect("leads").len();
    assert!(stored >= answered, "every answered capture is stored: {answered} answered, {stored} stored");
    assert!(stored < 400, "the kill landed mid-load ({stored} stored)");
    // Nothing half-made, whatever the kill interrupted.
    let now = Utc::now().to_rfc3339();
    let doctor = server.cli(&["doctor", "--json", "--now", &now]);
    assert_eq!(stdout(&doctor).trim(), "[]", "leadflow doctor after SIGKILL");
    // Hand-offs whose delivery the kill cut off are sent by the next SLA check.
    let later = (Utc::now() + Duration::minutes(5)).to_rfc3339();
    server.cli(&["sla-check", "--now", &later]);
    let handed = list.as_array().expect("leads").iter().filter(|l| l["status"] == "assigned").count();
    let delivered: std::collections::BTreeSet<String> =
        server.notifications("handoff").iter().map(|n| n["lead_id"].as_str().expect("lead id").to_owned()).collect();
    assert_eq!(delivered.len(), handed, "a hand-off delivered for each lead handed off");
    assert_eq!(stdout(&server.cli(&["doctor", "--json", "--now", &later])).trim(), "[]");
    println!("SIGKILL after 150 ms: {answered} answered, {stored} stored, {handed} handed off");
}

/// The rules version of the lead's last score.
fn scored_under(lead: &Value) -> String {
    let history = lead["history"].as_array().expect("history");
    let scored = history.iter().rev().find(|h| h["record"] == "scored").expect("a scored record");
    scored["rules_version"].as_str().expect("rules_version").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_reloads_changed_rules_and_keeps_running_ones_when_the_change_is_broken() {
    let server = Server::start();
    let mut n = 0;
    let mut capture = async || {
        n += 1;
        let email = format!("reload{n}@example.com");
        let (status, _) = server.lead("", json!({"email": email, "job_title": "Analyst"})).await;
        assert_eq!(status, 202);
        // Read with the starter rules: the server's own may be broken on purpose.
        let out = Command::new(env!("CARGO_BIN_EXE_leadflow"))
            .args(["leads", "show", &email, "--json", "--rules"])
            .arg(crate::support::starter_rules())
            .current_dir(server.dir.path())
            .output()
            .expect("leads show");
        scored_under(&serde_json::from_slice(&out.stdout).expect("lead JSON"))
    };
    let first = capture().await;

    // A valid change to a rule file is picked up without a restart.
    let scoring = server.rules.path().join("scoring.yaml");
    let original = std::fs::read_to_string(&scoring).expect("scoring.yaml");
    std::fs::write(&scoring, format!("{original}\n# a RevOps edit\n")).expect("write");
    let mut second = first.clone();
    for _ in 0..40 {
        second = capture().await;
        if second != first {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_ne!(second, first, "the changed rules are running");

    // A broken change is refused, and the running rules go on deciding.
    let routing = server.rules.path().join("routing.yaml");
    let good_routing = std::fs::read_to_string(&routing).expect("routing.yaml");
    std::fs::write(&routing, "reps: [\n").expect("write");
    // Loaded (and refused) once two looks two seconds apart agree.
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    assert_eq!(capture().await, second, "still the last good rules");

    // SIGHUP reloads at once.
    std::fs::write(&routing, format!("{good_routing}\n# fixed\n")).expect("write");
    let hup = Command::new("kill").args(["-HUP", &server.child.id().to_string()]).status().expect("kill -HUP");
    assert!(hup.success());
    let mut third = second.clone();
    for _ in 0..40 {
        third = capture().await;
        if third != second {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_ne!(third, second, "the fixed rules are running");

    let logs = server.stop();
    assert!(logs.contains("the new rules are refused; the running rules stay"), "{logs}");
    assert!(logs.contains("SIGHUP"), "{logs}");
    assert!(logs.contains(&format!("rules_version={third}")), "log lines name the rules: {logs}");
}
