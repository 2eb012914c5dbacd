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

/// Runs `leadflow ARGS` in `dir`; its exit code and standard output.
fn run_in(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_leadflow")).args(args).current_dir(dir).output().expect("leadflow");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn git(dir: &std::path::Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(["-c", "user.name=RevOps", "-c", "user.email=revops@example.com", "-c", "commit.gpgsign=false"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git");
    assert!(ok.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&ok.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_diff_reports_what_a_change_does_to_exported_leads_against_a_directory_or_a_git_revision() {
    // A repository whose rules/ is the starter set, committed; then a change in the working tree.
    let repo = tempfile::tempdir().expect("repo");
    let rules_dir = repo.path().join("rules");
    std::fs::create_dir(&rules_dir).expect("rules dir");
    for entry in std::fs::read_dir(starter_rules()).expect("starter rules") {
        let entry = entry.expect("entry");
        if entry.path().is_file() {
            std::fs::copy(entry.path(), rules_dir.join(entry.file_name())).expect("copy");
        }
    }
    git(repo.path(), &["init", "-q"]);
    git(repo.path(), &["add", "rules"]);
    git(repo.path(), &["commit", "-q", "-m", "starter rules"]);
    let base_dir = tempfile::tempdir().expect("base");
    for entry in std::fs::read_dir(&rules_dir).expect("rules") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), base_dir.path().join(entry.file_name())).expect("copy");
    }

    // Leads: exported from a store the starter rules decided.
    let db = repo.path().join("leads.db");
    let rules = Arc::new(RuleSet::load_dir(&rules_dir).expect("rules"));
    let app = Leadflow::new(
        rules,
        EmbeddedStore::open(&db).expect("store"),
        LogNotifier::open(&repo.path().join("o.jsonl")).expect("log"),
    );
    for i in 0..30 {
        let mut p = Profile::new(Email::parse(&format!("buyer{i}@firm{i}.example")).expect("email"));
        p.job_title = Some(["VP Sales", "Engineer", "Director of IT"][i % 3].into());
        p.employees = Some([50, 1500, 9000][i % 3]);
        p.country = Some(leadflow_domain::CountryCode::parse("US").expect("US"));
        app.capture(p, &[], Utc::now()).await.expect("capture");
    }
    let store = format!("embedded:{}", db.display());
    let (code, exported, _) = run_in(repo.path(), &["leads", "export", "--store", &store]);
    assert_eq!(code, 0);
    std::fs::write(repo.path().join("leads.jsonl"), &exported).expect("write");

    // No change: exit 0.
    let (code, text, err) = run_in(repo.path(), &["rules", "diff", "--base", "HEAD", "--leads", "leads.jsonl"]);
    assert_eq!(code, 0, "{text}{err}");
    assert!(text.contains("30 leads decided, 0 rejected; 0 move tier or route"), "{text}");

    // Enterprise size is worth less: leads move tier, and the report says which rule.
    let scoring = std::fs::read_to_string(rules_dir.join("scoring.yaml")).expect("scoring");
    let changed = scoring.replacen("points: 30", "points: 5", 1);
    assert_ne!(changed, scoring, "the starter scoring has a rule worth 30");
    std::fs::write(rules_dir.join("scoring.yaml"), changed).expect("write");
    let json_args = ["rules", "diff", "--base", "HEAD", "--leads", "leads.jsonl", "--format", "json"];
    let (code, json, err) = run_in(repo.path(), &json_args);
    assert_eq!(code, 3, "changes: {err}");
    let report: Value = serde_json::from_str(&json).expect("a JSON report");
    let moved = report["moved"].as_u64().expect("moved");
    assert!(moved > 0, "{report}");
    let tiers = report["tiers"].as_object().expect("tiers");
    let total: u64 = tiers.values().map(|m| m["leads"].as_u64().expect("leads")).sum();
    assert_eq!(total, moved, "every move is a tier move here: {report}");
    for m in tiers.values() {
        for example in m["examples"].as_array().expect("examples") {
            let id = example.as_str().expect("an id");
            assert!(id.len() == 24 && !id.contains('@'), "examples are lead ids, never emails: {id}");
        }
    }
    let fit = report["fit_rules"].as_object().expect("fit rules");
    assert!(fit.values().any(|v| v[2].as_u64() > Some(0)), "a rule matched with other points: {report}");
    // The same against a directory holding the base rules; and over budget.
    let dir_args = [
        "rules",
        "diff",
        "--base",
        base_dir.path().to_str().expect("path"),
        "--leads",
        "leads.jsonl",
        "--format",
        "json",
    ];
    let (code, same, _) = run_in(repo.path(), &dir_args);
    assert_eq!(code, 3);
    let again: Value = serde_json::from_str(&same).expect("JSON");
    assert_eq!((&again["moved"], &again["tiers"]), (&report["moved"], &report["tiers"]));
    let (code, _, _) =
        run_in(repo.path(), &["rules", "diff", "--base", "HEAD", "--leads", "leads.jsonl", "--budget", "0"]);
    assert_eq!(code, 4, "beyond the budget");
    let (code, markdown, _) =
        run_in(repo.path(), &["rules", "diff", "--base", "HEAD", "--leads", "leads.jsonl", "--format", "markdown"]);
    assert_eq!(code, 3);
    assert!(markdown.starts_with("## Rule change:") && markdown.contains("| move | leads | examples |"), "{markdown}");

    // A base that is neither a directory nor a revision: a clear error.
    let (code, _, err) = run_in(repo.path(), &["rules", "diff", "--base", "no-such-branch", "--leads", "leads.jsonl"]);
    assert_eq!(code, 1);
    assert!(err.contains("`no-such-branch` is neither a directory nor a git revision"), "{err}");
}
