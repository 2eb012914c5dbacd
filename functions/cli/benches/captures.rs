//! Captures per second through `leadflow serve` over HTTP, on the embedded
//! store with the starter rules: `cargo bench -p leadflow-cli --bench captures`.
//!
//! Starts the server in a temporary folder, then posts distinct JSON leads from
//! 32 concurrent clients and reports the rate and the latency percentiles. Run by
//! `cargo test` (without `--bench`) it posts a few hundred, as a smoke test.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

const CLIENTS: usize = 32;

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let total: usize = if full { 20_000 } else { 320 };
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_leadflow"))
        .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--rules"])
        .arg(&rules)
        .current_dir(dir.path())
        .env("EVENTS_SECRET", "bench")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start leadflow serve");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(20), "leadflow serve did not start");
        std::thread::sleep(Duration::from_millis(20));
    }

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let (elapsed, mut latencies) = runtime.block_on(async move {
        let client = reqwest::Client::new();
        let url = Arc::new(format!("http://127.0.0.1:{port}/leads"));
        let started = Instant::now();
        let workers: Vec<_> = (0..CLIENTS)
            .map(|w| {
                let client = client.clone();
                let url = Arc::clone(&url);
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    for i in (w..total).step_by(CLIENTS) {
                        let lead = json!({
                            "email": format!("lead{i}@company{}.com", i % 997),
                            "first_name": "Sam", "employees": 50 + i % 3000, "country": "US",
                            "job_title": if i % 4 == 0 { "VP Sales" } else { "Analyst" },
                        });
                        let t = Instant::now();
                        let r = client.post(url.as_str()).json(&lead).send().await.expect("POST /leads");
                        assert_eq!(r.status().as_u16(), 202, "{:?}", r.text().await);
                        latencies.push(t.elapsed());
                    }
                    latencies
                })
            })
            .collect();
        let mut all = Vec::new();
        for w in workers {
            all.extend(w.await.expect("client"));
        }
        (started.elapsed(), all)
    });
    let _ = server.kill();
    let _ = server.wait();

    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "{total} captures over HTTP, {CLIENTS} clients: {:.0} captures/s; latency p50 {:?}, p99 {:?}",
        total as f64 / elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.99)
    );
}
