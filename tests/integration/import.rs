//! `leadflow leads import`: files from CRMs and from `leads export` into either
//! store, every bad row reported, the rest stored once, and a re-run (after
//! an interruption, or by mistake) changing nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::moto::{endpoint, sdk_config, unique};
use crate::support::{repo_root, starter_rules, stderr, stdout};

/// Runs `leadflow ARGS` with the emulator's address in the environment.
fn leadflow(args: &[&str]) -> Output {
    command(args).output().expect("leadflow")
}

fn command(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_leadflow"));
    c.args(args)
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test");
    if let Ok(moto) = std::env::var("LEADFLOW_MOTO_ENDPOINT") {
        c.env("AWS_ENDPOINT_URL", moto);
    }
    c
}

async fn dynamodb_store() -> String {
    let config = sdk_config(&endpoint()).await;
    let name = unique("import");
    leadflow_adapters::table::create(&aws_sdk_dynamodb::Client::new(&config), &name).await.expect("table");
    format!("dynamodb:{name}")
}

fn exported(store: &str, rules: &Path) -> Vec<Value> {
    let out = leadflow(&["leads", "export", "--store", store, "--rules", rules.to_str().expect("path")]);
    assert!(out.status.success(), "export: {}", stderr(&out));
    stdout(&out).lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
}

/// A CRM's file: `rows` rows, one in 20 bad (5%) in one of three ways, every
/// 10th the email of an earlier row with a newer company (10%). The lines
/// that must be refused, and the email and company each lead must end with.
fn crm_file(rows: usize) -> (String, BTreeSet<u64>, BTreeMap<String, String>) {
    let mut csv =
        String::from("Email,First Name,Company,title,Country,employees,created_at,events.pricing_page_view\n");
    let mut bad = BTreeSet::new();
    let mut last_company = BTreeMap::new();
    for i in 0..rows {
        let line = i as u64 + 2;
        let (email, company) = if i % 10 == 9 {
            (format!("person{}@corp{}.example", i - 5, (i - 5) % 13), format!("Renamed {i}"))
        } else {
            (format!("person{i}@corp{}.example", i % 13), format!("Company {i}"))
        };
        let row = match (i % 20, i / 20 % 3) {
            (3, 0) => format!("not-an-email-{i},Ann,{company},CTO,DE,51-200,2025-01-0{},1", i % 9 + 1),
            (3, 1) => format!("{email},Ann,{company},CTO,DE,51-200,last tuesday,1"),
            (3, _) => format!("{email},Ann,{company}"),
            _ => {
                let created = format!("2025-{:02}-{:02}", i % 12 + 1, i % 28 + 1);
                // A country by name, a quoted company with a comma, a band.
                format!("{email},\"Ann, the {i}th\",\"{company}\",VP Sales,Germany,\"1,001-5,000\",{created},{}", i % 4)
            }
        };
        if i % 20 == 3 {
            bad.insert(line);
        }
        if !bad.contains(&line) {
            last_company.insert(email.clone(), company.clone());
        }
        csv.push_str(&row);
        csv.push('\n');
    }
    (csv, bad, last_company)
}

fn refused_lines(err: &str) -> BTreeSet<u64> {
    err.lines().filter_map(|l| l.strip_prefix("line ")?.split(':').next()?.parse().ok()).collect()
}

async fn a_crm_file_is_imported_once_with_every_bad_row_reported(store: &str) {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("crm.csv");
    let (csv, bad, companies) = crm_file(400);
    std::fs::write(&file, csv).expect("write");
    let rules = starter_rules();
    let args =
        ["leads", "import", file.to_str().expect("path"), "--store", store, "--rules", rules.to_str().expect("rules")];
    let report = dir.path().join("report.csv");
    let mut with_report = args.to_vec();
    with_report.extend(["--report", report.to_str().expect("path"), "--parallel", "8"]);
    let out = leadflow(&with_report);
    assert_eq!(out.status.code(), Some(3), "some rows refused: {}", stderr(&out));
    assert_eq!(refused_lines(&stderr(&out)), bad, "every bad row is reported by its line: {}", stderr(&out));
    let summary = stdout(&out);
    let good = 400 - bad.len();
    let merged = good - companies.len();
    assert!(
        summary.starts_with(&format!("400 rows: {} leads were created, {merged} rows were merged", companies.len())),
        "{summary}"
    );
    let report = std::fs::read_to_string(&report).expect("report");
    assert!(report.starts_with("line,level,field,reason\n"), "{report}");
    assert!(report.contains("5,error,email,"), "{report}");
    assert!(report.contains("merged by the merge policy"), "{report}");

    let leads = exported(store, &rules);
    assert_eq!(leads.len(), companies.len(), "each lead stored once");
    for lead in &leads {
        let email = lead["lead"]["email"].as_str().expect("email");
        assert_eq!(lead["lead"]["company"].as_str(), companies.get(email).map(String::as_str), "the later row wins");
        assert_eq!(lead["lead"]["country"], "DE");
        assert_eq!(lead["lead"]["employees"], "1001");
        assert!(lead["stored"]["created_at"].as_str().expect("created").starts_with("2025-"), "{lead}");
    }

    // Again: nothing is created, nothing merged, every good row was imported before.
    let again = leadflow(&args);
    assert_eq!(again.status.code(), Some(3));
    assert!(
        stdout(&again).starts_with(&format!(
            "400 rows: 0 leads were created, 0 rows were merged into a lead ({merged} of them repeat an email of the file), {good} rows were imported before"
        )),
        "{}",
        stdout(&again)
    );
    let versions = |leads: &[Value]| -> BTreeMap<String, Value> {
        leads.iter().map(|l| (l["id"].as_str().expect("id").to_owned(), l["stored"]["version"].clone())).collect()
    };
    assert_eq!(versions(&exported(store, &rules)), versions(&leads), "a re-run changes no lead");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crm_file_is_imported_once_with_every_bad_row_reported_on_the_embedded_store() {
    let dir = tempfile::tempdir().expect("dir");
    a_crm_file_is_imported_once_with_every_bad_row_reported(&format!("embedded:{}", dir.path().join("l.db").display()))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crm_file_is_imported_once_with_every_bad_row_reported_on_dynamodb() {
    a_crm_file_is_imported_once_with_every_bad_row_reported(&dynamodb_store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_imported_into_dynamodb_keeps_profiles_counts_and_dates() {
    let dir = tempfile::tempdir().expect("dir");
    let from = format!("embedded:{}", dir.path().join("from.db").display());
    let (csv, _, _) = crm_file(60);
    let file = dir.path().join("crm.csv");
    std::fs::write(&file, csv).expect("write");
    let rules = starter_rules();
    let rules = rules.to_str().expect("rules");
    let out = leadflow(&["leads", "import", file.to_str().expect("path"), "--store", &from, "--rules", rules]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let before = exported(&from, Path::new(rules));

    let export = dir.path().join("export.jsonl");
    let out = leadflow(&["leads", "export", "--store", &from, "--rules", rules]);
    std::fs::write(&export, &out.stdout).expect("write export");
    let to = dynamodb_store().await;
    let out = leadflow(&["leads", "import", export.to_str().expect("path"), "--store", &to, "--rules", rules]);
    assert!(out.status.success(), "an export imports whole: {}", stderr(&out));
    let after = exported(&to, Path::new(rules));
    let key = |leads: &[Value]| -> BTreeMap<String, (Value, Value, Value, Value, Value)> {
        leads
            .iter()
            .map(|l| {
                (
                    l["id"].as_str().expect("id").to_owned(),
                    (
                        l["lead"].clone(),
                        l["events"].clone(),
                        l["stored"]["created_at"].clone(),
                        l["stored"]["last_activity_at"].clone(),
                        l["stored"]["score"].clone(),
                    ),
                )
            })
            .collect()
    };
    assert_eq!(key(&after), key(&before), "profile, counts, dates and score survive the trip");
}

#[test]
fn a_dry_run_reports_and_stores_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let store = format!("embedded:{}", dir.path().join("l.db").display());
    let (csv, bad, companies) = crm_file(100);
    let file = dir.path().join("crm.csv");
    std::fs::write(&file, csv).expect("write");
    let rules = starter_rules();
    let out = leadflow(&[
        "leads",
        "import",
        file.to_str().expect("path"),
        "--dry-run",
        "--store",
        &store,
        "--rules",
        rules.to_str().expect("rules"),
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(refused_lines(&stderr(&out)), bad);
    assert!(
        stdout(&out).starts_with(&format!("100 rows: {} leads would be created", companies.len())),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("(dry run: nothing was stored)"));
    assert!(exported(&store, &rules).is_empty(), "nothing stored");
}

#[test]
fn an_import_hands_off_only_when_asked_and_notifies_only_when_told() {
    let dir = tempfile::tempdir().expect("dir");
    let rules = repo_root().join("tests/fixtures/conformance-rules");
    let rules = rules.to_str().expect("rules");
    // Under the conformance rules a VP title alone reaches the hand-off tier.
    let file = dir.path().join("vps.csv");
    std::fs::write(
        &file,
        "email,job_title,created_at\nvp1@corp.example,VP Sales,2025-06-01\nvp2@corp.example,VP Sales,2025-06-02\n",
    )
    .expect("write");
    let run = |name: &str, extra: &[&str]| -> (String, String) {
        let store = format!("embedded:{}", dir.path().join(format!("{name}.db")).display());
        let outbox = dir.path().join(format!("{name}.jsonl"));
        let notify = format!("log:{}", outbox.display());
        let mut args = vec!["leads", "import", file.to_str().expect("path"), "--store", &store, "--notify", &notify];
        args.extend(["--rules", rules]);
        args.extend(extra);
        let out = leadflow(&args);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        let list = leadflow(&["leads", "list", "--json", "--store", &store, "--rules", rules]);
        (stdout(&list), std::fs::read_to_string(&outbox).unwrap_or_default())
    };

    let (held, outbox) = run("held", &[]);
    let leads: Vec<Value> = serde_json::from_str(&held).expect("json");
    assert!(leads.iter().all(|l| l["status"] == "nurturing" && l["owner"].is_null()), "{held}");
    assert!(outbox.is_empty(), "{outbox}");
    let doctor = |name: &str| {
        let store = format!("embedded:{}", dir.path().join(format!("{name}.db")).display());
        let out = leadflow(&["doctor", "--json", "--store", &store, "--rules", rules]);
        assert_eq!(stdout(&out).trim(), "[]", "a held lead is not a broken one: {}", stderr(&out));
    };
    doctor("held");

    let (quiet, outbox) = run("quiet", &["--then", "handoff"]);
    let leads: Vec<Value> = serde_json::from_str(&quiet).expect("json");
    assert!(leads.iter().all(|l| l["status"] == "assigned" && l["owner"].is_string()), "{quiet}");
    assert!(outbox.is_empty(), "no message without --notify-reps: {outbox}");
    doctor("quiet");

    let (_, outbox) = run("told", &["--then", "handoff", "--notify-reps"]);
    let kinds: Vec<Value> =
        outbox.lines().map(|l| serde_json::from_str::<Value>(l).expect("json")["kind"].clone()).collect();
    assert_eq!(kinds, ["handoff", "handoff"], "{outbox}");

    let out = leadflow(&["leads", "import", file.to_str().expect("path"), "--notify-reps", "--rules", rules]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("needs --then handoff"), "{}", stderr(&out));
}

#[test]
fn hostile_and_broken_files_get_clear_errors_and_lose_no_good_row() {
    let dir = tempfile::tempdir().expect("dir");
    let store = format!("embedded:{}", dir.path().join("l.db").display());
    let rules = starter_rules();
    let rules = rules.to_str().expect("rules");
    let import = |name: &str, bytes: &[u8], extra: &[&str]| -> Output {
        let file = dir.path().join(name);
        std::fs::write(&file, bytes).expect("write");
        let mut args = vec!["leads", "import", file.to_str().expect("path"), "--store", &store, "--rules", rules];
        args.extend(extra);
        leadflow(&args)
    };

    let mut bytes = b"email,company,events\nok1@x.example,Good,\nbad@x.example,Caf\xe9 Latin-1,\n".to_vec();
    bytes.extend_from_slice(b"ok2@x.example,Good,\"{\"\"pricing_page_view\"\": 99999999999}\"\n");
    bytes.extend_from_slice(b"ok3@x.example,Good,\"[1]\"\nok4@x.example,\"=HYPERLINK(\"\"http://evil\"\")\",\n");
    bytes.extend_from_slice(b"ok5@x.example\n\n");
    let out = import("hostile.csv", &bytes, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("line 3: company: is not UTF-8 text"), "{err}");
    assert!(err.contains("line 4: events.pricing_page_view: is not a count"), "{err}");
    assert!(err.contains("line 5: events: is not a JSON object"), "{err}");
    assert!(err.contains("line 7: *: has 1 fields; the header has 3"), "{err}");
    let leads = exported(&store, Path::new(rules));
    let emails: BTreeSet<&str> = leads.iter().filter_map(|l| l["lead"]["email"].as_str()).collect();
    assert_eq!(emails, BTreeSet::from(["ok1@x.example", "ok4@x.example"]), "the good rows are stored");
    let formula = leads.iter().find(|l| l["lead"]["email"] == "ok4@x.example").expect("ok4");
    assert_eq!(formula["lead"]["company"], "=HYPERLINK(\"http://evil\")", "kept as text");

    let out = import("lines.jsonl", b"{\"email\": \"j1@x.example\"}\nnot json\n[1,2]\n{\"lead\": 7}\n", &[]);
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    for line in ["line 2: *: not JSON", "line 3: *: a line is a JSON object", "line 4: lead: is not an object"] {
        assert!(err.contains(line), "{line}: {err}");
    }

    // A quote left open would swallow every row after it into one field.
    let mut open = String::from("email,notes\nfirst@x.example,fine\nopen@x.example,\"call back\n");
    for i in 0..80 {
        open.push_str(&format!("swallowed{i}@x.example,more\n"));
    }
    let out = import("open.csv", open.as_bytes(), &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("line 3: notes: runs over"), "{}", stderr(&out));
    assert!(stderr(&out).contains("a quote left open?"), "{}", stderr(&out));

    // Reasons never repeat a value, and a report cell is never a formula.
    let report = dir.path().join("report.csv");
    let out = import(
        "pii.csv",
        b"email,phone,=cmd\nAna Lopez <ana@x.example>,+1 555,x\nok9@x.example,not a phone at all,\xff\n",
        &["--report", report.to_str().expect("path")],
    );
    let err = stderr(&out);
    assert!(err.contains("line 2: email: is not a valid email address"), "{err}");
    assert!(!err.contains("Ana Lopez") && !err.contains("not a phone"), "no value printed: {err}");
    let report = std::fs::read_to_string(&report).expect("report");
    assert!(!report.contains("Ana Lopez") && !report.contains("not a phone"), "{report}");
    assert!(report.contains(",'=cmd,"), "a formula-like field is quoted: {report}");

    let out = import("empty.csv", b"", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no header row"), "{}", stderr(&out));
    let out = import("x.csv", b"email\na@b.example\n", &["--source", "acme_crm"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no source `acme_crm`"), "{}", stderr(&out));
    let out = import("future.csv", b"email,created_at\nlater@x.example,2999-01-01\n", &[]);
    assert!(
        stderr(&out).contains("line 2: created_at: 2999-01-01T00:00:00+00:00 is in the future"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_import_killed_midway_finishes_when_run_again() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("l.db");
    let store = format!("embedded:{}", db.display());
    let rules = starter_rules();
    let rules = rules.to_str().expect("rules");
    let mut csv = String::from("email,company,job_title,created_at\n");
    let rows = 20_000;
    for i in 0..rows {
        csv.push_str(&format!("lead{i}@firm{}.example,Firm {},CTO,2025-{:02}-01\n", i % 97, i % 97, i % 12 + 1));
    }
    let file = dir.path().join("big.csv");
    std::fs::write(&file, csv).expect("write");
    let args = ["leads", "import", file.to_str().expect("path"), "--store", &store, "--rules", rules];

    let mut child = command(&args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("import");
    // Kill it once it has stored some leads but not all.
    let started = std::time::Instant::now();
    loop {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let stored = stored_count(&db);
        if stored > 0 || started.elapsed().as_secs() > 60 {
            break;
        }
    }
    assert!(child.try_wait().expect("wait").is_none(), "the import was still running when killed");
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let partial = stored_count(&db);
    assert!(partial > 0 && partial < rows, "killed midway: {partial} of {rows}");

    let out = leadflow(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = stdout(&out);
    let created: usize =
        summary.split(": ").nth(1).and_then(|s| s.split(' ').next()).and_then(|n| n.parse().ok()).expect("count");
    assert_eq!(created, rows - partial, "{summary} after {partial}");
    let leads = exported(&store, Path::new(rules));
    assert_eq!(leads.len(), rows, "every row stored once");
    assert!(leads.iter().all(|l| l["stored"]["version"] == 1), "no lead imported twice");
    let out = leadflow(&["doctor", "--json", "--store", &store, "--rules", rules]);
    assert_eq!(stdout(&out).trim(), "[]", "{}", stderr(&out));
}

/// Leads in an embedded store, read while another process writes it.
fn stored_count(db: &Path) -> usize {
    let out = leadflow(&["leads", "export", "--store", &format!("embedded:{}", db.display())]);
    stdout(&out).lines().count()
}

/// Changes of several leads saved at once: each under its own conditions,
/// the ones whose lead changed or whose row was recorded meanwhile refused,
/// the others saved.
async fn a_batch_saves_each_change_under_its_own_conditions<S: leadflow_app::Store>(store: S) {
    use leadflow_app::{Change, SaveError};
    use leadflow_domain::import::Importer;
    use leadflow_domain::{Input, Outcome, decide};
    let rules = crate::conformance::conformance_rules();
    let now = chrono::Utc::now();
    let importer = Importer::new(&rules, None).expect("importer");
    let change = |email: &str, company: &str, expected: Option<&leadflow_domain::Lead>| -> Change {
        let row = importer
            .read_fields(vec![("email".into(), email.into()), ("company".into(), company.into())])
            .expect("row");
        let input = Input::Import { row: &row, handoff: false, notify: false };
        let Ok(Outcome::Decided(d)) = decide(&rules, expected, &input, None, now) else { panic!("decided") };
        let mark = leadflow_app::EventMark {
            event_id: row.import_id(),
            result: leadflow_app::EventResult::of(&d.lead),
            expires_at: now + chrono::Duration::days(1),
            now,
        };
        Change::from_decision(*d, Some(mark))
    };
    let a = change("a@batch.example", "A", None);
    let b = change("b@batch.example", "B", None);
    let c = change("c@batch.example", "C", None);
    let d = change("d@batch.example", "D", None);
    // Meanwhile: B is captured by someone else, and C's very row is imported.
    let other_b = change("b@batch.example", "B elsewhere", None);
    store.save(&other_b).await.expect("B saved first");
    let mut c_first = change("c@batch.example", "C", None);
    c_first.lead.profile.company = Some("C".into());
    store.save(&c_first).await.expect("C saved first");
    let results = store.save_many(&[a.clone(), b, c, d.clone()]).await;
    assert!(matches!(results[0], Ok(())), "{results:?}");
    assert!(matches!(results[1], Err(SaveError::LeadChanged)), "{results:?}");
    assert!(matches!(results[2], Err(SaveError::LeadChanged | SaveError::Duplicate { .. })), "{results:?}");
    assert!(matches!(results[3], Ok(())), "{results:?}");
    let keys: Vec<_> =
        [&a, &d].iter().map(|c| (c.lead.id.clone(), c.event.as_ref().map(|m| m.event_id.clone()))).collect();
    let read = store.read_many(&keys, now).await.expect("read");
    assert!(read.iter().all(|s| s.lead.as_ref().is_some_and(|l| l.version == 1) && s.seen.is_some()), "{read:?}");
    let b = store.get(&other_b.lead.id).await.expect("get").expect("B");
    assert_eq!(b.profile.company.as_deref(), Some("B elsewhere"), "the refused change wrote nothing");
    // The batch's roll-ups are added up and written once with it; the refused
    // changes' counts are not.
    let day = now.date_naive();
    let read = store.rollups(day, day, &leadflow_domain::facts::DIM_KINDS).await.expect("roll-ups");
    let all = read.rollups.iter().find(|r| r.key.dim == leadflow_domain::facts::Dim::All).expect("all");
    assert_eq!(all.counts.get("captured"), Some(&4), "{read:?}");
    let (leads, _) = store.page(None, 100).await.expect("leads");
    let kept = leadflow_domain::facts::totals(read.rollups.iter().map(|r| (&r.key, &r.counts)));
    assert_eq!(kept, leadflow_domain::facts::recount(&leads));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_saves_each_change_under_its_own_conditions_on_the_embedded_store() {
    let dir = tempfile::tempdir().expect("dir");
    let store = leadflow_adapters::EmbeddedStore::open(&dir.path().join("l.db")).expect("store");
    a_batch_saves_each_change_under_its_own_conditions(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_saves_each_change_under_its_own_conditions_on_dynamodb() {
    let config = sdk_config(&endpoint()).await;
    a_batch_saves_each_change_under_its_own_conditions(crate::moto::new_table(&config).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_imports_of_one_file_racing_on_dynamodb_apply_each_row_once() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("crm.csv");
    let (csv, bad, companies) = crm_file(300);
    std::fs::write(&file, csv).expect("write");
    let store = dynamodb_store().await;
    let rules = starter_rules();
    let args =
        ["leads", "import", file.to_str().expect("path"), "--store", &store, "--rules", rules.to_str().expect("rules")];
    let children: Vec<_> =
        (0..2).map(|_| command(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("import")).collect();
    let mut counts = [0usize; 3];
    for child in children {
        let out = child.wait_with_output().expect("import");
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        let words: Vec<usize> = stdout(&out).split(' ').filter_map(|w| w.parse().ok()).collect();
        // rows, created, merged, imported before, refused, warned (the "(N of them" does not parse)
        counts[0] += words[1];
        counts[1] += words[2];
        counts[2] += words[3];
    }
    let good = 300 - bad.len();
    assert_eq!(counts[0], companies.len(), "each lead created once between them");
    assert_eq!(counts[0] + counts[1] + counts[2], 2 * good, "every good row applied once, or found applied");
    let leads = exported(&store, &rules);
    assert_eq!(leads.len(), companies.len());
    for lead in &leads {
        let email = lead["lead"]["email"].as_str().expect("email");
        assert_eq!(lead["lead"]["company"].as_str(), companies.get(email).map(String::as_str), "file order kept");
    }
}
