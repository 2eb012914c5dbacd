//! `leadflow report` and `leadflow simulate`: a generated pipeline played
//! through the service on both stores gives the same figures, read from the
//! roll-ups alone; bad periods, dimensions and stores are refused clearly.

use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::moto::{endpoint, sdk_config, unique};
use crate::support::{repo_root, starter_rules, stderr, stdout};

fn leadflow(dir: &std::path::Path, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_leadflow"));
    c.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_ENDPOINT_URL", endpoint());
    c.output().expect("leadflow")
}

/// Simulates the same seeded pipeline into `store` (one step at a time, so
/// both stores see the same order) and reports it by `by` as JSON.
fn simulate_and_report(dir: &std::path::Path, store: &str, by: &str) -> (Value, String) {
    let rules = starter_rules();
    let rules = rules.to_str().expect("rules");
    let sim = leadflow(
        dir,
        &[
            "simulate",
            "--store",
            store,
            "--rules",
            rules,
            "--leads",
            "60",
            "--from",
            "2026-02-02",
            "--days",
            "14",
            "--parallel",
            "1",
            "--seed",
            "5",
        ],
    );
    assert!(sim.status.success(), "simulate: {}", stderr(&sim));
    assert!(stderr(&sim).contains("60 leads over 14 days"), "{}", stderr(&sim));
    let report = leadflow(
        dir,
        &[
            "report",
            "--store",
            store,
            "--rules",
            rules,
            "--from",
            "2026-02-02",
            "--to",
            "2026-02-15",
            "--by",
            by,
            "--format",
            "json",
        ],
    );
    assert!(report.status.success(), "report: {}", stderr(&report));
    (serde_json::from_str(&stdout(&report)).expect("report JSON"), stderr(&report))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_pipeline_reports_the_same_figures_on_both_stores() {
    let dir = tempfile::tempdir().expect("dir");
    let (embedded, said) = simulate_and_report(dir.path(), "embedded:e.db", "rep");
    assert!(said.contains("roll-ups read in 1 round trip(s)"), "{said}");
    let config = sdk_config(&endpoint()).await;
    let table = unique("report");
    leadflow_adapters::table::create(&aws_sdk_dynamodb::Client::new(&config), &table).await.expect("table");
    let (dynamodb, said) = simulate_and_report(dir.path(), &format!("dynamodb:{table}"), "rep");
    assert!(said.contains("roll-ups read in 2 round trip(s)"), "one query per month and kind (all, rep): {said}");
    assert_eq!(embedded, dynamodb, "the same pipeline counts the same on both stores");

    let total = &embedded["total"]["figures"];
    assert_eq!(total["captured"], 60);
    let handoffs = total["handoffs"].as_i64().expect("hand-offs");
    assert!(handoffs > 5, "{total}");
    // Every row is a rep of routing.yaml, and the reps' captures add up to
    // the leads captured with an owner.
    let reps: Vec<&str> =
        embedded["rows"].as_array().expect("rows").iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert!(
        !reps.is_empty() && reps.iter().all(|r| ["ana", "ben", "cho", "dan", "eve", "fay"].contains(r)),
        "{reps:?}"
    );
    let per_rep: i64 =
        embedded["rows"].as_array().unwrap().iter().map(|r| r["figures"]["handoffs"].as_i64().unwrap()).sum();
    assert_eq!(per_rep, handoffs, "each hand-off is filed under the rep it went to");
    let funnel = total["funnel"].as_array().expect("funnel");
    assert_eq!(funnel[0]["step"], "captured");
    assert_eq!(funnel[1]["rate_from_previous"].as_f64(), Some(funnel[1]["count"].as_f64().unwrap() / 60.0));

    // Weeks, as CSV: a header, one row per week and the total.
    let rules = starter_rules();
    let embedded_report = |extra: &[&str]| {
        let mut args = vec!["report", "--store", "embedded:e.db", "--from", "2026-02-02", "--to", "2026-02-15"];
        args.extend(["--rules", rules.to_str().expect("rules")]);
        args.extend(extra);
        let out = leadflow(dir.path(), &args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        out
    };
    let csv = embedded_report(&["--by", "week", "--format", "csv"]);
    let lines: Vec<String> = stdout(&csv).lines().map(str::to_owned).collect();
    assert!(lines[0].starts_with("group,captured,reached_handoff,handoffs"), "{}", lines[0]);
    assert_eq!(
        lines[1..].iter().map(|l| l.split(',').next().unwrap()).collect::<Vec<_>>(),
        ["2026-02-02", "2026-02-09", "all"]
    );
    let captured: i64 = lines[1..3].iter().map(|l| l.split(',').nth(1).unwrap().parse::<i64>().unwrap()).sum();
    assert_eq!(captured, 60, "the weeks add up to the total");

    // And as text for people: every definition has its line.
    let text = embedded_report(&[]);
    let text = stdout(&text);
    for heading in
        ["speed p50", "Funnel", "Speed to lead in business time", "SLA:", "Unassigned:", "Dormant:", "Calibration"]
    {
        assert!(text.contains(heading), "{heading}: {text}");
    }
}

#[test]
fn bad_periods_dimensions_and_stores_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().expect("dir");
    let rules = starter_rules();
    let rules = rules.to_str().expect("rules");
    let refused = |args: &[&str], says: &str| {
        let out = leadflow(dir.path(), args);
        assert!(!out.status.success(), "{args:?} was taken");
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    };
    refused(&["report", "--rules", rules, "--from", "2026-03-02", "--to", "2026-03-01"], "is after --to");
    refused(&["report", "--rules", rules, "--from", "2016-01-01", "--to", "2026-03-01"], "at most 3660 days");
    refused(&["report", "--rules", rules, "--by", "team"], "`team` is not a dimension");
    refused(&["report", "--rules", rules, "--to=1900-01-01"], "years 2000 to 2200");
    refused(&["report", "--rules", rules, "--from", "last tuesday"], "invalid value");
    refused(
        &["simulate", "--rules", rules, "--from", "2026-01-01", "--notify", "sns:arn:aws:sns:us-east-1:1:x"],
        "sends no real messages",
    );
    // A store with leads is never filled with made-up ones.
    let sim = ["simulate", "--rules", rules, "--from", "2026-01-01", "--days", "2", "--leads", "5"];
    assert!(leadflow(dir.path(), &sim).status.success());
    refused(&sim, "fills an empty store only");
    let _ = repo_root();
}
