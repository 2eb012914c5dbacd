//! `leadflow rules ...` as RevOps runs it.

use serde::Deserialize;

use crate::support::{copy_of_starter_rules, leadflow, starter_rules, stderr, stdout};

#[derive(Debug, Deserialize)]
struct Fixture {
    class: String,
    patches: Vec<Patch>,
    expect: Vec<Expected>,
}

#[derive(Debug, Deserialize)]
struct Patch {
    file: String,
    replace: String,
    with: String,
}

#[derive(Debug, Deserialize)]
struct Expected {
    file: String,
    #[serde(default)]
    path: Option<String>,
    message: String,
    #[serde(default)]
    at: bool,
}

/// Whether `line` reports `e`: `DIR/FILE[:LINE:COL]: [PATH: ]...MESSAGE...`.
fn reports(line: &str, e: &Expected) -> bool {
    let Some(rest) = line.split_once(&format!("/{}", e.file)).map(|(_, r)| r) else { return false };
    let (position, rest) = rest.split_once(": ").unwrap_or(("", rest));
    let located = {
        let parts: Vec<&str> = position.split(':').collect();
        parts.len() == 3 && parts[1].parse::<usize>().is_ok() && parts[2].parse::<usize>().is_ok()
    };
    if e.at && !located {
        return false;
    }
    let path_ok = match &e.path {
        Some(p) => rest.starts_with(&format!("{p}: ")),
        None => true,
    };
    path_ok && rest.contains(&e.message)
}

#[test]
fn starter_rules_pass_check() {
    let out = leadflow(&["rules", "check", "--rules", starter_rules().to_str().unwrap()], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("rules valid"), "{}", stdout(&out));
}

#[test]
fn starter_rule_tests_pass() {
    let out = leadflow(&["rules", "test"], "");
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let last = stdout(&out).lines().last().unwrap_or_default().to_owned();
    assert!(last.ends_with("passed, 0 failed"), "{last}");
    assert!(!stdout(&out).contains("not matched by any test case"), "every starter rule has a test: {}", stdout(&out));
}

#[test]
fn rule_test_names_the_rules_no_case_matches() {
    let dir = copy_of_starter_rules();
    let scoring = dir.path().join("scoring.yaml");
    let text = std::fs::read_to_string(&scoring).unwrap();
    std::fs::write(
        &scoring,
        text.replacen(
            "fit:\n",
            "fit:\n  - { name: nobody-matches, when: { employees: { gt: 9000000 } }, points: 1 }\n",
            1,
        ),
    )
    .unwrap();
    let out = leadflow(&["rules", "test", "--rules", dir.path().to_str().unwrap()], "");
    assert!(out.status.success(), "an untested rule is reported, not a failure: {}", stdout(&out));
    assert!(stdout(&out).contains("not matched by any test case: fit rule nobody-matches"), "{}", stdout(&out));
}

#[test]
fn every_broken_rule_fixture_fails_check_naming_file_and_path() {
    let text = std::fs::read_to_string(crate::support::repo_root().join("tests/fixtures/broken-rules.yaml")).unwrap();
    let fixtures: Vec<Fixture> = serde_yaml::from_str(&text).unwrap();
    assert!(fixtures.len() >= 30);
    let mut failures = Vec::new();
    for f in fixtures {
        let dir = copy_of_starter_rules();
        for p in &f.patches {
            let path = dir.path().join(&p.file);
            let original = std::fs::read_to_string(&path).unwrap();
            assert!(original.contains(&p.replace), "{}: `{}` not found in {}", f.class, p.replace, p.file);
            std::fs::write(&path, original.replacen(&p.replace, &p.with, 1)).unwrap();
        }
        let out = leadflow(&["rules", "check", "--rules", dir.path().to_str().unwrap()], "");
        let err = stderr(&out);
        if out.status.code() != Some(1) {
            failures.push(format!("{}: check should fail\n{err}", f.class));
        }
        for e in &f.expect {
            if !err.lines().any(|l| reports(l, e)) {
                failures.push(format!("{}: expected a report of {e:?}, got:\n{err}", f.class));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_missing_rule_file_is_reported_by_name() {
    let dir = copy_of_starter_rules();
    std::fs::remove_file(dir.path().join("sla.yaml")).unwrap();
    let out = leadflow(&["rules", "check", "--rules", dir.path().to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("sla.yaml: file is missing"), "{}", stderr(&out));
}

#[test]
fn a_rule_file_that_is_not_utf8_is_reported() {
    let dir = copy_of_starter_rules();
    std::fs::write(dir.path().join("capture.yaml"), b"required: [email]\nhoneypot: \xff\xfe\n").unwrap();
    let out = leadflow(&["rules", "check", "--rules", dir.path().to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("capture.yaml is not UTF-8 text"), "{}", stderr(&out));
}

#[test]
fn a_failing_rule_test_shows_expected_actual_and_the_explanation() {
    let dir = copy_of_starter_rules();
    std::fs::write(
        dir.path().join("tests/wrong.yaml"),
        "- name: wrong on purpose\n  lead: { email: cfo@acme.com, job_title: CFO, employees: 5000 }\n  expect: { score: 51, tier: warm, route: { rule: enterprise } }\n",
    )
    .unwrap();
    let out = leadflow(&["rules", "test", "--rules", dir.path().to_str().unwrap()], "");
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("FAIL") && text.contains("wrong on purpose"), "{text}");
    assert!(text.contains("score: expected 51, got 50"), "{text}");
    assert!(text.contains("route.rule: expected enterprise, got strategic-accounts"), "{text}");
    assert!(text.contains("+30 enterprise-size"), "the explanation is shown: {text}");
    assert!(text.lines().last().unwrap().ends_with("passed, 1 failed"), "{text}");
    assert!(!text.contains(" 0 passed"), "{text}");
}

#[test]
fn a_rule_test_file_that_does_not_parse_fails_with_its_location() {
    let dir = copy_of_starter_rules();
    std::fs::write(dir.path().join("tests/broken.yaml"), "- name: x\n  lead: { email: a@b.co }\n  expct: {}\n")
        .unwrap();
    let out = leadflow(&["rules", "test", "--rules", dir.path().to_str().unwrap()], "");
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("tests/broken.yaml:") && text.contains("unknown field `expct`"), "{text}");
}

#[test]
fn explain_prints_the_score_breakdown_and_route() {
    let lead = r#"{"lead": {"email": "jo@example.de", "country": "DE", "employees": 2000, "job_title": "VP Sales", "industry": "software"}, "events": {"pricing_page_view": 2, "webinar_attended": 1}}"#;
    let out = leadflow(&["rules", "explain", "--lead", "-"], lead);
    let text = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(text.starts_with("score 90 (hot, hand-off)"), "{text}");
    assert!(text.contains("limited from 65 to 60"), "{text}");
    assert!(text.contains("route: rule enterprise -> pool enterprise"), "{text}");

    let out = leadflow(&["rules", "explain", "--lead", "-", "--json"], lead);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["score"]["score"], 90);
    assert_eq!(json["score"]["fit"][0]["rule"], "enterprise-size");
    assert_eq!(json["route"]["target"]["pool"], "enterprise");
}

#[test]
fn explain_rejects_a_lead_with_an_unknown_field() {
    let out = leadflow(&["rules", "explain", "--lead", "-"], "{email: a@b.co, industy: software}");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("unknown lead field `industy` (did you mean `industry`?)"), "{}", stderr(&out));
}

#[test]
fn replay_prints_one_decision_per_line_and_a_summary() {
    let leads = concat!(
        r#"{"lead": {"email": "cfo@acme.com", "job_title": "CFO", "employees": 5000}}"#,
        "\n",
        r#"{"email": "pat@northwind.com", "country": "US", "employees": 300, "events": {"demo_request": 1, "page_view": 4}}"#,
        "\n",
        "not json\n",
        r#"{"email": "x"}"#,
        "\n",
    );
    let out = leadflow(&["rules", "replay", "--leads", "-"], leads);
    let lines: Vec<serde_json::Value> =
        stdout(&out).lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["score"], 50);
    assert_eq!(lines[0]["tier"], "warm");
    assert_eq!(lines[0]["route"], serde_json::json!({"rule": "strategic-accounts", "rep": "ana"}));
    assert_eq!(lines[1]["route"], serde_json::json!({"rule": "mid-market-demo", "pool": "enterprise"}));
    assert_eq!(lines[1]["fit"], serde_json::json!(["mid-market-size", "core-market", "business-email"]));
    assert_eq!(lines[2]["line"], 3);
    assert_eq!(lines[3]["line"], 4);
    assert!(lines[3]["error"].as_str().unwrap().contains("not a valid email"));
    assert!(stderr(&out).contains("2 decisions, 2 rejected"), "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_leads_file_line_that_is_not_text_is_rejected_on_its_own_and_the_rest_decided() {
    let mut leads = Vec::new();
    leads.extend_from_slice(br#"{"email": "cfo@acme.com", "job_title": "CFO", "employees": 5000}"#);
    leads.extend_from_slice(b"\n{\"email\": \"ana@\xff\xfe.com\"}\n\n");
    // Windows line ends, and no end to the last line.
    leads.extend_from_slice(b"{\"email\": \"pat@northwind.com\", \"country\": \"US\"}\r\n{\"email\": \"jo@x.io\"}");
    let out = crate::support::leadflow_bytes(&["rules", "replay", "--leads", "-"], &leads);
    let lines: Vec<serde_json::Value> =
        stdout(&out).lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    assert_eq!(lines.len(), 4, "{}", stdout(&out));
    assert_eq!(lines[0]["tier"], "warm");
    assert_eq!(lines[1]["line"], 2);
    assert!(lines[1]["error"].as_str().unwrap().contains("not UTF-8"), "{}", lines[1]);
    assert!(lines[2]["score"].is_number() && lines[3]["score"].is_number(), "lines 4 and 5 decided: {lines:?}");
    assert!(stderr(&out).contains("3 decisions, 1 rejected"), "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(1));

    let out = crate::support::leadflow_bytes(&["rules", "diff", "--base", "rules", "--leads", "-"], &leads);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("3 leads decided, 1 rejected"), "{}", stdout(&out));
}

/// The pull-request workflow's steps, run as GitHub runs them (bash, with
/// `GITHUB_OUTPUT` and `GITHUB_STEP_SUMMARY`), over a base and a changed copy of
/// the starter rules and the committed backtest leads.
#[test]
fn the_pull_request_workflow_checks_tests_and_posts_what_a_rule_change_does() {
    let text =
        std::fs::read_to_string(crate::support::repo_root().join(".github/workflows/rules.yml")).expect("workflow");
    let workflow: serde_yaml::Value = serde_yaml::from_str(&text).expect("the workflow is YAML");
    let paths = &workflow["on"]["pull_request"]["paths"];
    assert_eq!(paths, &serde_yaml::Value::from(vec!["rules/**"]), "it runs on pull requests touching rules/");
    assert_eq!(workflow["permissions"]["pull-requests"], "write", "it may comment");
    let steps = workflow["jobs"]["rules"]["steps"].as_sequence().expect("steps");
    let run = |name: &str| -> String {
        steps
            .iter()
            .find(|s| s["name"] == name)
            .and_then(|s| s["run"].as_str())
            .unwrap_or_else(|| panic!("a step `{name}`"))
            .to_owned()
    };
    let comment = steps.iter().find(|s| s["with"]["path"] == "diff.md").expect("a step posts diff.md");
    assert!(comment["uses"].as_str().expect("an action").contains("comment"), "{comment:?}");

    // A repository whose base commit has the starter rules; the pull request adds
    // two countries to the core market.
    let work = tempfile::tempdir().expect("dir");
    let copy = copy_of_starter_rules();
    std::fs::rename(copy.path(), work.path().join("rules")).expect("move the rules in");
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(["-c", "user.name=RevOps", "-c", "user.email=revops@example.com"])
            .args(args)
            .current_dir(work.path())
            .output()
            .expect("git");
        assert!(out.status.success(), "git {args:?}: {}", stderr(&out));
        stdout(&out).trim().to_owned()
    };
    git(&["init", "-q"]);
    git(&["add", "rules"]);
    git(&["commit", "-q", "-m", "the base rules"]);
    let base_sha = git(&["rev-parse", "HEAD"]);
    let scoring = work.path().join("rules/scoring.yaml");
    let changed = std::fs::read_to_string(&scoring).expect("scoring.yaml").replace(
        "{ country: [US, CA, GB, IE, DE, AT, CH, NL, FR, SE, DK] }",
        "{ country: [US, CA, GB, IE, DE, AT, CH, NL, FR, SE, DK, JP, BR] }",
    );
    std::fs::write(&scoring, changed).expect("write");
    // A directory the pull request adds under the old base's name is not read.
    std::fs::create_dir_all(work.path().join("origin/main")).expect("dir");
    let runner_temp = tempfile::tempdir().expect("runner temp");
    let bash = |script: &str, budget: &str| -> (bool, String, String) {
        let script = script.replace("target/release/leadflow", env!("CARGO_BIN_EXE_leadflow"));
        let _ = std::fs::remove_dir_all(runner_temp.path().join("base"));
        let _ = std::process::Command::new("git").args(["worktree", "prune"]).current_dir(work.path()).status();
        let output = work.path().join("output");
        let summary = work.path().join("summary");
        let out = std::process::Command::new("bash")
            .args(["-e", "-c", &script])
            .current_dir(work.path())
            .env("BASE_SHA", &base_sha)
            .env("RUNNER_TEMP", runner_temp.path())
            .env("GITHUB_OUTPUT", &output)
            .env("GITHUB_STEP_SUMMARY", &summary)
            .env("LEADS", "rules/tests/backtest.jsonl")
            .env("BUDGET", budget)
            .output()
            .expect("bash");
        let outputs = std::fs::read_to_string(&output).unwrap_or_default();
        let _ = std::fs::remove_file(&output);
        (out.status.success(), outputs, format!("{}{}", stdout(&out), stderr(&out)))
    };
    for step in ["Check the rule files", "Lint the rules", "Run the rule tests"] {
        let (ok, _, printed) = bash(&run(step), "");
        assert!(ok, "{step}: {printed}");
    }
    let diff = run("Decide the backtest leads under both rule sets");
    let (ok, outputs, printed) = bash(&diff, "");
    assert!(ok, "{printed}");
    assert_eq!(outputs.trim(), "code=3", "changes");
    let comment = std::fs::read_to_string(work.path().join("diff.md")).expect("diff.md");
    assert!(comment.contains("core-market"), "the rule behind the moves is named: {comment}");
    assert!(comment.contains('|'), "a Markdown table: {comment}");
    let (ok, outputs, _) = bash(&diff, "1");
    assert!(ok, "a budget overrun still posts the comment");
    assert_eq!(outputs.trim(), "code=4");
    assert_eq!(
        steps.iter().find(|s| s["with"]["path"] == "diff.md").expect("comment")["if"],
        "github.event.pull_request.head.repo.full_name == github.repository",
        "forks get no comment step"
    );
    let last = steps.last().expect("a last step");
    assert_eq!(last["if"], "steps.diff.outputs.code == '4'", "and then fails the job");
}

#[test]
fn rule_test_coverage_is_reported_per_rule_and_gated_exactly() {
    let copy = copy_of_starter_rules();
    let tests = copy.path().join("tests");
    std::fs::remove_file(tests.join("routing.yaml")).expect("remove");
    std::fs::remove_file(tests.join("scoring.yaml")).expect("remove");
    std::fs::write(
        tests.join("one.yaml"),
        "- name: a VP at a large German software company\n  lead: { email: jo@example.de, country: DE, employees: 2000, job_title: VP Sales, industry: software }\n",
    )
    .expect("write");
    let dir = copy.path().to_str().expect("path");
    let out = leadflow(&["rules", "test", "--rules", dir], "");
    let printed = stdout(&out);
    assert!(out.status.success(), "{printed}");
    assert!(printed.contains("     1  fit rule enterprise-size"), "{printed}");
    assert!(printed.contains("     0  routing rule emea"), "{printed}");
    // enterprise-size, senior-title, target-industry, core-market, business-email and the enterprise route.
    let line = printed.lines().find(|l| l.starts_with("coverage: ")).expect("a coverage line");
    assert_eq!(line, "coverage: 6 of 15 rules (40.00%)");
    let gate = |min: &str| leadflow(&["rules", "test", "--rules", dir, "--min-coverage", min], "");
    assert!(gate("40").status.success(), "exactly 40% meets 40");
    let over = gate("40.000001");
    assert_eq!(over.status.code(), Some(1), "no rounding up: 6/15 is below 40.000001%");
    assert!(stdout(&over).contains("coverage is below --min-coverage 40.000001%"), "{}", stdout(&over));
    for bad in ["abc", "101", "-5", "1e2", ""] {
        let out = gate(bad);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
    }
}

#[test]
fn capture_sla_and_lifecycle_cases_fail_on_a_wrong_expectation_and_name_a_typo() {
    let copy = copy_of_starter_rules();
    let tests = copy.path().join("tests");
    let edit = |file: &str, from: &str, to: &str| {
        let path = tests.join(file);
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.contains(from), "{file} holds {from}");
        std::fs::write(&path, text.replacen(from, to, 1)).expect("write");
    };
    edit("sla.yaml", "deadline: \"2026-03-09T08:05:00-04:00\"", "deadline: \"2026-03-09T08:05:00-05:00\"");
    edit("capture.yaml", "country: DE, employees: \"1001\"", "country: FR, employees: \"1001\"");
    edit("lifecycle.yaml", "{ disqualified: spam }", "{ disqualifed: spam }");
    edit("capture.yaml", "source: hubspot_forms", "source: hubspot_formz");
    // Two warnings are not one warning named with a comma.
    edit("capture.yaml", "warnings: [country, employees]", "warnings: [\"country, employees\"]");
    let out = leadflow(&["rules", "test", "--rules", copy.path().to_str().expect("path")], "");
    let printed = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{printed}");
    for line in [
        "deadline: expected 2026-03-09T13:05:00+00:00, got 2026-03-09T12:05:00+00:00",
        "profile: expected country: `FR`, got country: `DE`",
        "`disqualifed` is not a sales event (did you mean `disqualified`?)",
        "`hubspot_formz` is not a source of capture.yaml (did you mean `hubspot_forms`?)",
        "warnings: expected [\"country, employees\"], got [\"country\", \"employees\"]",
    ] {
        assert!(printed.contains(line), "{line}: {printed}");
    }
    assert!(printed.trim_end().ends_with("5 failed"), "{printed}");
}

#[test]
fn rules_lint_finds_planted_mistakes_each_located_and_nothing_in_the_starter_rules() {
    let starter = leadflow(&["rules", "lint", "--today", "2026-12-01"], "");
    assert!(starter.status.success(), "{}{}", stdout(&starter), stderr(&starter));
    assert_eq!(stdout(&starter), "", "no finding on the starter rules");
    assert!(stderr(&starter).starts_with("0 errors, 0 warnings"), "{}", stderr(&starter));

    let copy = copy_of_starter_rules();
    let edit = |file: &str, from: &str, to: &str| {
        let path = copy.path().join(file);
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.contains(from), "{file} holds {from}");
        std::fs::write(&path, text.replacen(from, to, 1)).expect("write");
    };
    edit(
        "routing.yaml",
        "  - name: emea\n",
        "  - name: big-german-accounts\n    when: { employees: { gte: 5000 }, free_email: false, country: [DE, AT, CH] }\n    to: { pool: emea }\n\n  - name: emea\n",
    );
    edit(
        "routing.yaml",
        "capacity: 40, manager: mia }\n  - { id: ben",
        "capacity: 40, manager: mia,\n      away: [{ from: 2026-12-24, to: 2026-12-31 }] }\n  - { id: ben",
    );
    edit(
        "routing.yaml",
        "capacity: 40, manager: mia }\n  - { id: cho",
        "capacity: 40, manager: mia,\n      away: [{ from: 2026-12-20, to: 2026-12-27 }] }\n  - { id: cho",
    );
    // Bands of employees that overlap, and one whole number no band takes.
    edit(
        "routing.yaml",
        "  - name: mid-market-demo\n",
        "  - name: band-small\n    when: { employees: { lt: 50 } }\n    to: { pool: inbound }\n\n  - name: band-mid\n    when: { employees: { between: [51, 300] } }\n    to: { pool: emea }\n\n  - name: band-overlapping\n    when: { employees: { between: [250, 900] } }\n    to: { pool: inbound }\n\n  - name: mid-market-demo\n",
    );
    edit(
        "scoring.yaml",
        "fit:\n",
        "fit:\n  - name: impossible-size\n    when: { employees: { gt: 500 }, all: [{ employees: { lt: 100 } }] }\n    points: 5\n",
    );
    edit("scoring.yaml", "tiers: { hot: 80, warm: 50, cold: 0 }", "tiers: { elite: 500, hot: 80, warm: 50, cold: 0 }");
    edit("sla.yaml", "first_response: { hot: 15m, warm: 4h }", "first_response: { hot: 15m, warm: 45d }");
    let dir = copy.path().to_str().expect("path");
    let out = leadflow(&["rules", "lint", "--rules", dir, "--today", "2026-12-01"], "");
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let printed = stdout(&out);
    for expected in [
        "routing.yaml:50: error[shadowed]: `big-german-accounts`: no lead reaches it: every lead it matches matches `enterprise` above it (line 46)",
        "scoring.yaml:16: error[never_matches]: `impossible-size`",
        "scoring.yaml: error[unreachable_tier]: `elite`: no score reaches 500: the highest a lead can score is 150",
        "sla.yaml: error[sla_unmeetable]: `first_response.warm`",
        "routing.yaml: warning[pool_unavailable]: `enterprise`: every member is away or inactive from 2026-12-24 to 2026-12-27",
        "warning[gap]: `band-mid`: a lead with employees 50 is in no band",
        "warning[overlap]: `band-overlapping`: overlaps `band-mid` above it",
    ] {
        assert!(printed.contains(expected), "{expected}\n{printed}");
    }
    assert!(stderr(&out).starts_with("4 errors, 3 warnings"), "{}", stderr(&out));
    let json = leadflow(&["rules", "lint", "--rules", dir, "--today", "2026-12-01", "--json"], "");
    let findings: serde_json::Value = serde_json::from_str(&stdout(&json)).expect("JSON");
    assert_eq!(findings.as_array().map(Vec::len), Some(7));
    assert_eq!(findings[0]["line"], 50);
    // Only the warning left: it fails only when warnings are denied.
    edit("sla.yaml", "warm: 45d", "warm: 4h");
    edit("scoring.yaml", "elite: 500, ", "");
    edit(
        "scoring.yaml",
        "  - name: impossible-size\n    when: { employees: { gt: 500 }, all: [{ employees: { lt: 100 } }] }\n    points: 5\n",
        "",
    );
    edit(
        "routing.yaml",
        "  - name: big-german-accounts\n    when: { employees: { gte: 5000 }, free_email: false, country: [DE, AT, CH] }\n    to: { pool: emea }\n\n",
        "",
    );
    edit(
        "routing.yaml",
        "  - name: band-overlapping\n    when: { employees: { between: [250, 900] } }\n    to: { pool: inbound }\n\n",
        "",
    );
    edit("routing.yaml", "between: [51, 300]", "between: [50, 300]");
    let warned = leadflow(&["rules", "lint", "--rules", dir, "--today", "2026-12-01"], "");
    assert!(warned.status.success(), "{}", stdout(&warned));
    let denied = leadflow(&["rules", "lint", "--rules", dir, "--today", "2026-12-01", "--deny-warnings"], "");
    assert_eq!(denied.status.code(), Some(1));
}

/// Runs the schema validator (jsonschema, in the test virtualenv) on files.
fn validate(files: &[std::path::PathBuf]) -> Vec<String> {
    let python = std::env::var("LEADFLOW_MOTO_PYTHON")
        .expect("LEADFLOW_MOTO_PYTHON is not set: run the tests with tests/run.sh, which makes the virtualenv");
    let root = crate::support::repo_root();
    let out = std::process::Command::new(python)
        .arg(root.join("tests/fixtures/validate_rules.py"))
        .arg(root.join("rules/schema"))
        .args(files)
        .output()
        .expect("python");
    assert!(out.status.success(), "the validator runs: {}", stderr(&out));
    stdout(&out).lines().map(str::to_owned).collect()
}

#[test]
fn the_rule_file_schemas_are_current_accept_every_valid_file_and_refuse_broken_structure() {
    // The committed schemas are what `rules schema` writes now.
    let root = crate::support::repo_root();
    let out = leadflow(&["rules", "schema", "--out", "-"], "");
    let generated: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    for file in ["capture", "lifecycle", "routing", "scoring", "sla"] {
        let committed = std::fs::read_to_string(root.join(format!("rules/schema/{file}.schema.json"))).expect("schema");
        let committed: serde_json::Value = serde_json::from_str(&committed).expect("JSON");
        assert_eq!(
            committed,
            generated[format!("{file}.yaml")],
            "rules/schema/{file}.schema.json is stale: run leadflow rules schema"
        );
        let first = std::fs::read_to_string(root.join(format!("rules/{file}.yaml"))).expect("rule file");
        assert!(
            first.starts_with(&format!("# yaml-language-server: $schema=schema/{file}.schema.json\n")),
            "{file}.yaml names its schema"
        );
    }
    // Every valid rule file in the repository is valid by its schema.
    let mut valid = Vec::new();
    for dir in ["rules", "tests/fixtures/conformance-rules"] {
        for file in ["capture", "lifecycle", "routing", "scoring", "sla"] {
            valid.push(root.join(dir).join(format!("{file}.yaml")));
        }
    }
    for line in validate(&valid) {
        assert!(line.starts_with("ok "), "{line}");
    }
    // Broken structure (unknown keys, operators and words, wrong kinds of value) is
    // refused; what only the loader can know (a rep that does not exist, a regex
    // that does not compile) is left to `rules check`.
    let text = std::fs::read_to_string(root.join("tests/fixtures/broken-rules.yaml")).expect("fixtures");
    let fixtures: Vec<Fixture> = serde_yaml::from_str(&text).expect("fixtures");
    let mut refused = std::collections::BTreeSet::new();
    for f in &fixtures {
        let dir = copy_of_starter_rules();
        let mut patched = Vec::new();
        for p in &f.patches {
            let path = dir.path().join(&p.file);
            let original = std::fs::read_to_string(&path).expect("read");
            std::fs::write(&path, original.replacen(&p.replace, &p.with, 1)).expect("write");
            patched.push(path);
        }
        if validate(&patched).iter().any(|l| l.starts_with("invalid ")) {
            refused.insert(f.class.clone());
        }
    }
    for class in [
        "invalid YAML",
        "duplicate key",
        "unknown operator",
        "unknown top-level key",
        "unknown source setting",
        "unknown body format",
        "unknown vendor signature",
        "unknown reactivation action",
        "unknown employee band rule",
        "invalid duration",
    ] {
        assert!(refused.contains(class), "the schema refuses {class}; it refused {refused:?}");
    }
    println!("the schemas refuse {} of {} broken-rule fixtures: {refused:?}", refused.len(), fixtures.len());
}
