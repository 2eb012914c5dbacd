//! The functions as they ship: each arm64 `bootstrap` that `sam build` made
//! (`.aws-sam/build/<Function>/bootstrap`), run under user-mode emulation
//! (`qemu-aarch64`, with Debian's arm64 C library) against the project's own
//! Lambda runtime API ([`crate::runtime_api`]) and DynamoDB, SNS and SSM on
//! moto, configured by environment variables as `template.yaml` configures
//! them.
//!
//! `tests/run.sh` runs `sam build` first and installs `qemu-user` and
//! `libc6-arm64-cross`; without a build or the emulator these tests fail.
//! `LEADFLOW_SAM_BUILD` overrides where the build is, `LEADFLOW_QEMU_LD_PREFIX`
//! where the arm64 C library is.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{Duration as Days, Utc};
use leadflow_app::Leads;
use leadflow_domain::LeadId;
use serde_json::{Value, json};

use crate::lambda::{events_post_event, form_post_event, schedule_event};
use crate::moto::{Inboxes, endpoint, new_table, sdk_config, unique};
use crate::runtime_api::{Answer, RuntimeApi};
use crate::support::repo_root;

const SECRET: &str = "arm64-events-secret";
/// Emulated arm64 is slow: a cold start plus a first call can take seconds.
const CALL: Duration = Duration::from_secs(120);

fn sam_build() -> PathBuf {
    let dir =
        std::env::var_os("LEADFLOW_SAM_BUILD").map(PathBuf::from).unwrap_or_else(|| repo_root().join(".aws-sam/build"));
    assert!(dir.is_dir(), "{} is missing: run `sam build` first (tests/run.sh does)", dir.display());
    dir
}

/// One function's bootstrap under qemu, served by its own runtime API.
struct Bootstrap {
    function: &'static str,
    api: RuntimeApi,
    child: Child,
    spawned: Instant,
    /// Everything it printed, stdout and stderr, a line at a time.
    log: Arc<Mutex<Vec<String>>>,
}

impl Bootstrap {
    /// Starts `function`'s bootstrap with the Lambda environment, moto's
    /// address and credentials, and `vars`; nothing else from this process.
    async fn launch(function: &'static str, vars: &[(&str, &str)]) -> Bootstrap {
        let api = RuntimeApi::start().await;
        let bootstrap = sam_build().join(function).join("bootstrap");
        assert!(bootstrap.is_file(), "{} is missing: run `sam build` first", bootstrap.display());
        let prefix = std::env::var("LEADFLOW_QEMU_LD_PREFIX").unwrap_or_else(|_| "/usr/aarch64-linux-gnu".to_owned());
        let mut command = Command::new("qemu-aarch64");
        command
            .arg("-L")
            .arg(&prefix)
            .arg(&bootstrap)
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", api.address())
            .env("AWS_LAMBDA_FUNCTION_NAME", function)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{function}"))
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_ENDPOINT_URL", endpoint())
            .env("RUST_LOG", "info")
            .envs(vars.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let spawned = Instant::now();
        let mut child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot run qemu-aarch64 ({e}): install Debian's qemu-user and libc6-arm64-cross (tests/run.sh does)"
            )
        });
        let log = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        for stream in [Box::new(stdout) as Box<dyn std::io::Read + Send>, Box::new(stderr)] {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    log.lock().expect("log").push(line);
                }
            });
        }
        Bootstrap { function, api, child, spawned, log }
    }

    async fn invoke(&mut self, event: Value) -> Value {
        let answer = tokio::select! {
            answer = self.api.invoke(event, CALL) => answer,
            status = exited(&mut self.child) => panic!("{} exited ({status}):\n{}", self.function, self.printed()),
        };
        match answer {
            Answer::Response(value) => value,
            Answer::Error { body, error_type } => {
                panic!("{} answered an error ({error_type:?}): {body}\n{}", self.function, self.printed())
            }
        }
    }

    /// An API Gateway event answered with the HTTP status and the body as it is.
    async fn page(&mut self, event: Value) -> (u64, String) {
        let response = self.invoke(event).await;
        let status = response["statusCode"].as_u64().expect("a status code");
        (status, response["body"].as_str().expect("a text body").to_owned())
    }

    /// An API Gateway event answered with the HTTP status and the JSON body.
    async fn http(&mut self, event: Value) -> (u64, Value) {
        let response = self.invoke(event).await;
        let status = response["statusCode"].as_u64().expect("a status code");
        let body = serde_json::from_str(response["body"].as_str().expect("a text body")).expect("a JSON body");
        (status, body)
    }

    fn printed(&self) -> String {
        self.log.lock().expect("log").join("\n")
    }

    /// Whether the lines an invocation logged name the rules it decided under.
    fn logged_rules_version(&self) -> bool {
        let version = leadflow_lambda::rules().expect("embedded rules").version;
        self.log
            .lock()
            .expect("log")
            .iter()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .any(|line| line["spans"].as_array().is_some_and(|s| s.iter().any(|s| s["rules_version"] == version)))
    }

    /// The `init_ms` the bootstrap logged at the end of its cold start.
    fn init_ms(&self) -> f64 {
        self.log
            .lock()
            .expect("log")
            .iter()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .find_map(|line| line["fields"]["init_ms"].as_f64())
            .unwrap_or_else(|| panic!("{} logged no init_ms:\n{}", self.function, self.printed()))
    }
}

impl Drop for Bootstrap {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for `child` to exit (it is polled: `std::process::Child` has no
/// asynchronous wait).
async fn exited(child: &mut Child) -> ExitStatus {
    loop {
        if let Some(status) = child.try_wait().expect("wait for the bootstrap") {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_arm64_bootstraps_take_a_lead_through_its_life_under_emulation() {
    let sdk = sdk_config(&endpoint()).await;
    let store = new_table(&sdk).await;
    let reps = ["ana", "ben", "cho", "dan", "eve", "fay", "mia", "max"];
    let inboxes = Inboxes::create(&sdk, &reps).await;
    let parameter = format!("/{}", unique("events-secret"));
    aws_sdk_ssm::Client::new(&sdk)
        .put_parameter()
        .name(&parameter)
        .value(SECRET)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .expect("the events secret in SSM");
    let app_secret = format!("/{}", unique("app-secret"));
    aws_sdk_ssm::Client::new(&sdk)
        .put_parameter()
        .name(&app_secret)
        .value("the app secret, at least thirty-two bytes long")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .expect("the app secret in SSM");
    let app_secret = format!("ssm:{app_secret}");
    let base = "https://abc123.execute-api.us-east-1.amazonaws.com";
    let table = store.table().to_owned();
    let common = [("LEADS_TABLE", table.as_str()), ("HANDOFF_TOPIC_ARN", inboxes.topic_arn.as_str())];
    let app = [("APP_SECRET", app_secret.as_str()), ("APP_URL", base)];

    // All five start at once, as after a deploy.
    let mut forms = Bootstrap::launch(
        "FormSubmissionFunction",
        &[common[0], common[1], ("ALLOWED_ORIGINS", "https://www.example.com")],
    )
    .await;
    let mut scores =
        Bootstrap::launch("ScoreUpdateFunction", &[common[0], common[1], ("EVENTS_SECRET_PARAMETER", &parameter)])
            .await;
    let mut sla = Bootstrap::launch("SlaCheckFunction", &[common[0], common[1], app[0], app[1]]).await;
    let mut cleanup = Bootstrap::launch("PipelineCleanupFunction", &common).await;
    let mut web = Bootstrap::launch("WebAppFunction", &[common[0], common[1], app[0], app[1]]).await;

    // A form post through API Gateway creates the lead.
    let lee = json!({ "email": "lee@bigco.com", "first_name": "Lee", "employees": 2000, "country": "US" });
    let (status, created) = forms.http(form_post_event("source=webinar", &lee)).await;
    assert_eq!((status, &created["accepted"]), (202, &json!(true)), "{created}");
    let id = LeadId::parse(created["lead_id"].as_str().expect("a lead id")).expect("lead id");
    let stored = store.get(&id).await.expect("read the lead").expect("the lead is stored");
    assert_eq!(stored.status.as_str(), "nurturing");

    // A malformed one is refused, and nothing is stored.
    let (status, refused) = forms.http(form_post_event("source=webinar", &json!({ "email": "not-an-email" }))).await;
    assert_eq!((status, &refused["error"]["code"]), (422, &json!("invalid")), "{refused}");

    // Signed events, checked against the secret read from SSM, rescore it over the hand-off tier.
    let view = |id: &str| json!({ "events": [{ "id": id, "email": "lee@bigco.com", "type": "pricing_page_view" }] });
    let (status, first) = scores.http(events_post_event(SECRET, &view("view-1"))).await;
    assert_eq!((status, &first["results"][0]["ok"]), (200, &json!(true)), "{first}");
    let handed = &first["results"][0]["lead"];
    assert_eq!(handed["status"], "assigned", "{first}");
    let (_, second) = scores.http(events_post_event(SECRET, &view("view-2"))).await;
    assert!(second["results"][0]["lead"]["score"].as_i64() > handed["score"].as_i64(), "{second}");
    let (status, forged) = scores.http(events_post_event("not-the-secret", &view("view-3"))).await;
    assert_eq!(status, 401, "{forged}");
    let delivered = inboxes.delivered().await;
    assert_eq!(delivered.iter().map(|d| d.kind.as_str()).collect::<Vec<_>>(), ["handoff"]);

    // The scheduler's event a week later: every escalation step, and the reassignment.
    let report = sla.invoke(schedule_event(Utc::now() + Days::days(7))).await;
    assert_eq!((&report["escalations"], &report["reassignments"]), (&json!(3), &json!(1)), "{report}");
    // The new owner opens the link in the reassignment's SMS and taps "Contacted".
    let owner = store.get(&id).await.expect("read").expect("lead").owner.expect("an owner");
    let sms =
        inboxes.sms().await.into_iter().rev().find(|(rep, t)| *rep == owner && t.contains("/a/")).expect("a link");
    let path = sms.1.rsplit(' ').next().expect("link").strip_prefix(base).expect("the app's address").to_owned();
    let (status, page) = web.page(crate::lambda::web_event("GET", &path, "", "", &[])).await;
    assert_eq!(status, 200, "{page}");
    let field = |name: &str| {
        let marker = format!("name=\"{name}\" value=\"");
        let at = page.find(&marker).expect("the field") + marker.len();
        page[at..].split('"').next().expect("a value").to_owned()
    };
    let form = format!("csrf={}&nonce={}&action=contacted", field("csrf"), field("nonce"));
    let (status, _) = web.page(crate::lambda::web_event("POST", &path, "", &form, &[])).await;
    assert_eq!(status, 303);
    let working = store.get(&id).await.expect("read").expect("lead");
    assert_eq!(working.status.as_str(), "working");
    let (status, _) = web.page(crate::lambda::web_event("GET", "/a/not-a-token", "", "", &[])).await;
    assert_eq!(status, 404);

    // And the nightly clean-up forty days on.
    let report = cleanup.invoke(schedule_event(Utc::now() + Days::days(40))).await;
    assert_eq!(report["dormant"], 1, "{report}");
    let stored = store.get(&id).await.expect("read the lead").expect("the lead is stored");
    assert_eq!(stored.status.as_str(), "dormant");
    let all = store.list(&leadflow_app::LeadFilter::default()).await.expect("list");
    assert_eq!(all.len(), 1, "the refused post stored nothing");

    for bootstrap in [&forms, &sla, &cleanup] {
        assert!(
            bootstrap.logged_rules_version(),
            "{}: log lines name the rules:\n{}",
            bootstrap.function,
            bootstrap.printed()
        );
    }
    for bootstrap in [&forms, &scores, &sla, &cleanup, &web] {
        let ready = bootstrap.api.first_next().expect("it asked for an invocation") - bootstrap.spawned;
        println!(
            "{}: init_ms {:.1} logged, {} ms from exec to the first /next (emulated)",
            bootstrap.function,
            bootstrap.init_ms(),
            ready.as_millis()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_arm64_bootstrap_without_its_table_fails_its_cold_start_naming_the_variable() {
    let mut bootstrap =
        Bootstrap::launch("SlaCheckFunction", &[("HANDOFF_TOPIC_ARN", "arn:aws:sns:us-east-1:1:t")]).await;
    let status = tokio::time::timeout(CALL, exited(&mut bootstrap.child)).await.expect("it exits");
    assert!(!status.success(), "{status}");
    let report = bootstrap.api.init_error().unwrap_or_else(|| panic!("no init error:\n{}", bootstrap.printed()));
    assert_eq!(report["errorType"], "Runtime.InitError", "{report}");
    assert_eq!(report["errorMessage"], "the environment variable LEADS_TABLE is not set", "{report}");
    assert!(bootstrap.printed().contains("the environment variable LEADS_TABLE is not set"), "{}", bootstrap.printed());
    assert!(bootstrap.api.first_next().is_none(), "it never asked for an invocation");
}

/// What `sam deploy` uploads is what `sam build` made: `sam package` (the
/// upload step of `sam deploy`) against moto's S3, then each function's code
/// object is fetched back and its `bootstrap` compared with the built one.
#[test]
fn sam_package_uploads_the_bootstraps_sam_build_made() {
    let build = sam_build();
    let python = PathBuf::from(
        std::env::var("LEADFLOW_MOTO_PYTHON")
            .expect("LEADFLOW_MOTO_PYTHON is not set: run the tests with tests/run.sh"),
    );
    let sam = python.with_file_name("sam");
    let bucket = unique("artifacts").to_lowercase();
    let dir = tempfile::tempdir().expect("temp dir");
    let packaged = dir.path().join("packaged.yaml");
    let aws = |command: &mut Command| {
        command
            .env("AWS_ENDPOINT_URL", endpoint())
            .env("AWS_REGION", "us-east-1")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("SAM_CLI_TELEMETRY", "0")
            .current_dir(repo_root())
            .output()
            .expect("run")
    };
    let made = aws(Command::new(&python).args(["-c", PYTHON_S3, "create", &bucket]));
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let out = aws(Command::new(&sam).arg("package").arg("--template-file").arg(build.join("template.yaml")).args([
        "--s3-bucket",
        &bucket,
        "--output-template-file",
        packaged.to_str().expect("a UTF-8 path"),
    ]));
    assert!(out.status.success(), "sam package: {}", String::from_utf8_lossy(&out.stderr));

    let template: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&packaged).expect("packaged template")).expect("YAML");
    let resources = template["Resources"].as_mapping().expect("resources");
    let mut checked = Vec::new();
    for (name, resource) in resources {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let name = name.as_str().expect("a name");
        let uri = resource["Properties"]["CodeUri"].as_str().expect("a CodeUri");
        let key = uri
            .strip_prefix(&format!("s3://{bucket}/"))
            .unwrap_or_else(|| panic!("{name}: {uri} is not in the bucket"));
        let fetched = aws(Command::new(&python).args(["-c", PYTHON_S3, "bootstrap", &bucket, key]));
        assert!(fetched.status.success(), "{}", String::from_utf8_lossy(&fetched.stderr));
        let built = std::fs::read(build.join(name).join("bootstrap")).expect("the built bootstrap");
        assert!(fetched.stdout == built, "{name}: the uploaded bootstrap differs from the built one");
        checked.push(name.to_owned());
    }
    let source: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(repo_root().join("template.yaml")).expect("template"))
            .expect("YAML");
    let declared = source["Resources"]
        .as_mapping()
        .expect("resources")
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .count();
    assert_eq!(checked.len(), declared, "every function template.yaml declares is packaged: {checked:?}");
}

/// boto3 (installed with moto) for the S3 side: `create BUCKET`, or `bootstrap
/// BUCKET KEY` to print the `bootstrap` inside a code zip.
const PYTHON_S3: &str = r#"
import io, sys, zipfile, boto3
s3 = boto3.client("s3")
if sys.argv[1] == "create":
    s3.create_bucket(Bucket=sys.argv[2])
else:
    body = s3.get_object(Bucket=sys.argv[2], Key=sys.argv[3])["Body"].read()
    sys.stdout.buffer.write(zipfile.ZipFile(io.BytesIO(body)).read("bootstrap"))
"#;
