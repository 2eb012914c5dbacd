//! `leadflow leads export`: what a store holds, streamed as JSON Lines that
//! `rules replay` reads back unchanged, or as CSV.

use std::process::{Command, Stdio};
use std::sync::Arc;

use chrono::{Duration, Utc};
use leadflow_adapters::{EmbeddedStore, LogNotifier};
use leadflow_app::Leadflow;
use leadflow_domain::{Email, Profile, RuleSet};
use serde_json::Value;

use crate::support::starter_rules;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_replays_to_the_scores_and_tiers_the_store_holds() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("leads.db");
    let rules = Arc::new(RuleSet::load_dir(&starter_rules()).expect("rules"));
    let app = Leadflow::new(
        rules,
        EmbeddedStore::open(&db).expect("store"),
        LogNotifier::open(&dir.path().join("o.jsonl")).expect("log"),
    );
    let now = Utc::now();
    let titles = ["VP Sales", "Intern", "CTO", "Analyst", "Head of Growth"];
    let countries = ["US", "DE", "FR", "BR", "JP"];
    for i in 0..40 {
        let mut p = Profile::new(Email::parse(&format!("person{i}@company{}.example", i % 7)).expect("email"));
        p.job_title = Some(titles[i % titles.len()].into());
        p.country = Some(leadflow_domain::CountryCode::parse(countries[i % countries.len()]).expect("country"));
        p.employees = Some([12, 250, 1500, 40_000][i % 4]);
        p.first_name = Some(format!("Ada, \"the {i}th\""));
        let lead = app.capture(p, &[], now).await.expect("capture").lead;
        if i % 3 == 0 {
            app.engage(&lead.id, &[("pricing_page_view".to_owned(), (i % 4) as u32)], now).await.expect("events");
        }
    }
    let store = format!("embedded:{}", db.display());
    let export = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_leadflow"))
            .args(["leads", "export", "--store", &store, "--rules"])
            .arg(starter_rules())
            .args(args)
            .output()
            .expect("leadflow leads export")
    };
    let out = export(&["--now", &(now + Duration::minutes(1)).to_rfc3339()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), "exported 40 leads");
    let lines: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    assert_eq!(lines.len(), 40);

    let mut replay = Command::new(env!("CARGO_BIN_EXE_leadflow"))
        .args(["rules", "replay", "--leads", "-", "--rules"])
        .arg(starter_rules())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("replay");
    {
        use std::io::Write;
        replay.stdin.take().expect("stdin").write_all(&out.stdout).expect("write");
    }
    let decided = replay.wait_with_output().expect("replay output");
    assert!(decided.status.success(), "replay read every exported line: {}", String::from_utf8_lossy(&decided.stderr));
    let decisions: Vec<Value> =
        String::from_utf8_lossy(&decided.stdout).lines().map(|l| serde_json::from_str(l).expect("JSON")).collect();
    for (line, decision) in lines.iter().zip(&decisions) {
        assert_eq!(
            (&decision["score"], &decision["tier"]),
            (&line["stored"]["score"], &line["stored"]["tier"]),
            "the rules decide from the export what they decided for the store: {line}"
        );
    }

    // CSV: a header and a row per lead, every value quoted as needed.
    let out = export(&["--format", "csv"]);
    assert!(out.status.success());
    let mut reader = csv::Reader::from_reader(out.stdout.as_slice());
    let header = reader.headers().expect("header").clone();
    assert!(header.iter().any(|h| h == "first_name") && header.iter().any(|h| h == "events"));
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("a row")).collect();
    assert_eq!(rows.len(), 40);
    let first_name = header.iter().position(|h| h == "first_name").expect("column");
    assert!(rows.iter().all(|r| r[first_name].starts_with("Ada, \"the ")), "commas and quotes survive");

    // History belongs to JSON Lines only.
    let refused = export(&["--format", "csv", "--history"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--history is for JSON Lines"));
    let with_history = export(&["--history"]);
    let first: Value =
        serde_json::from_str(String::from_utf8_lossy(&with_history.stdout).lines().next().expect("a line"))
            .expect("JSON");
    assert!(first["history"].as_array().is_some_and(|h| !h.is_empty()), "{first}");
}
