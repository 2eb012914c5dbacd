//! The conformance suite on DynamoDB and SNS, through the real AWS SDK against
//! moto's server. `tests/run.sh` starts moto and exports its address in
//! `LEADFLOW_MOTO_ENDPOINT`; without it these tests fail, they never skip.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_config::SdkConfig;
use leadflow_adapters::{DynamoStore, SnsNotifier, table};
use leadflow_app::Leadflow;

use crate::conformance::{Delivered, Flaky, Rig, at, conformance_rules};
use crate::support::repo_root;

pub fn endpoint() -> String {
    std::env::var("LEADFLOW_MOTO_ENDPOINT")
        .expect("LEADFLOW_MOTO_ENDPOINT is not set: run the tests with tests/run.sh, which starts moto")
}

pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    leadflow_adapters::aws_defaults()
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "tests"))
        .load()
        .await
}

/// A name no other test uses.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("{prefix}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst))
}

/// A topic with, per rep, an SQS queue and a phone number, each subscribed with
/// a filter policy on `owner` as the generated email and SMS subscriptions are.
/// Phone numbers are unique to the test, since moto keeps every SMS it sends.
pub struct Inboxes {
    pub topic_arn: String,
    topic_name: String,
    queue_names: BTreeMap<String, String>,
    queues: BTreeMap<String, String>,
    /// Rep by phone number.
    phones: BTreeMap<String, String>,
    endpoint: String,
    sqs: aws_sdk_sqs::Client,
    seen: Mutex<Vec<Delivered>>,
}

/// A phone number no other test uses.
fn unique_phone() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("+1999{:06}{:04}", std::process::id() % 1_000_000, NEXT.fetch_add(1, Ordering::SeqCst))
}

impl Inboxes {
    pub async fn create(config: &SdkConfig, reps: &[&str]) -> Inboxes {
        let names = reps.iter().map(|r| ((*r).to_owned(), unique(&format!("inbox-{r}")))).collect();
        Inboxes::create_named(config, unique("handoff"), names).await
    }

    /// The same topic and queues again, on an emulator that forgot them.
    pub async fn create_named_like(config: &SdkConfig, other: &Inboxes) -> Inboxes {
        Inboxes::create_named(config, other.topic_name.clone(), other.queue_names.clone()).await
    }

    async fn create_named(config: &SdkConfig, topic_name: String, queue_names: BTreeMap<String, String>) -> Inboxes {
        let sns = aws_sdk_sns::Client::new(config);
        let sqs = aws_sdk_sqs::Client::new(config);
        let topic = sns.create_topic().name(&topic_name).send().await.expect("create topic");
        let topic_arn = topic.topic_arn().expect("topic arn").to_owned();
        let mut queues = BTreeMap::new();
        let mut phones = BTreeMap::new();
        for (rep, name) in &queue_names {
            let phone = unique_phone();
            sns.subscribe()
                .topic_arn(&topic_arn)
                .protocol("sms")
                .endpoint(&phone)
                .attributes("FilterPolicy", serde_json::json!({ "owner": [rep] }).to_string())
                .send()
                .await
                .expect("subscribe a phone");
            phones.insert(phone, rep.clone());
            let q = sqs.create_queue().queue_name(name).send().await.expect("create queue");
            let url = q.queue_url().expect("queue url").to_owned();
            let attrs = sqs
                .get_queue_attributes()
                .queue_url(&url)
                .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .send()
                .await
                .expect("queue attributes");
            let arn = attrs.attributes().and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn));
            sns.subscribe()
                .topic_arn(&topic_arn)
                .protocol("sqs")
                .endpoint(arn.expect("queue arn"))
                .attributes("FilterPolicy", serde_json::json!({ "owner": [rep] }).to_string())
                .send()
                .await
                .expect("subscribe");
            queues.insert(rep.clone(), url);
        }
        let endpoint = config.endpoint_url().expect("the emulator's address").to_owned();
        Inboxes { topic_arn, topic_name, queue_names, queues, phones, endpoint, sqs, seen: Mutex::new(Vec::new()) }
    }

    /// Everything received so far on the queues (messages are deleted once
    /// read), after checking that each rep got exactly as many SMS as queue
    /// messages, each one SMS long.
    pub async fn delivered(&self) -> Vec<Delivered> {
        let received = self.received_on_queues().await;
        let mut per_rep: BTreeMap<&str, usize> = BTreeMap::new();
        for d in &received {
            *per_rep.entry(d.rep.as_str()).or_default() += 1;
        }
        let sms = self.sms().await;
        let mut sms_per_rep: BTreeMap<&str, usize> = BTreeMap::new();
        for (rep, text) in &sms {
            assert!(!text.is_empty() && text.chars().count() <= 160, "one SMS: {text:?}");
            *sms_per_rep.entry(rep.as_str()).or_default() += 1;
        }
        assert_eq!(sms_per_rep, per_rep, "every rep gets each notification once by SMS and once by queue");
        received
    }

    /// The SMS moto sent to this topic's phone numbers: (rep, text).
    pub async fn sms(&self) -> Vec<(String, String)> {
        let url = format!("{}/moto-api/data.json", self.endpoint);
        let data: serde_json::Value =
            reqwest::get(&url).await.expect("moto's data").json().await.expect("moto's data is JSON");
        let sent = data["sns"]["SMS"].as_array().cloned().unwrap_or_default();
        sent.iter()
            .filter_map(|m| {
                let rep = self.phones.get(m["phone_number"].as_str()?)?;
                Some((rep.clone(), m["message"].as_str()?.to_owned()))
            })
            .collect()
    }

    async fn received_on_queues(&self) -> Vec<Delivered> {
        for (rep, url) in &self.queues {
            loop {
                let r =
                    self.sqs.receive_message().queue_url(url).max_number_of_messages(10).send().await.expect("receive");
                let messages = r.messages();
                if messages.is_empty() {
                    break;
                }
                for m in messages {
                    let body: serde_json::Value = serde_json::from_str(m.body().expect("body")).expect("SNS envelope");
                    let attr = |name: &str| body["MessageAttributes"][name]["Value"].as_str().unwrap_or("").to_owned();
                    let owners: Vec<String> = serde_json::from_str(&attr("owner")).expect("owner is a JSON array");
                    assert!(owners.contains(rep), "{rep}'s queue got a message for {owners:?}");
                    assert!(!attr("tier").is_empty(), "every message has a tier");
                    let text = body["Message"].as_str().expect("message");
                    let about_a_lead = attr("kind") != "sign_in";
                    assert!(text.contains("Lead ") || !about_a_lead, "the full body reaches the queue: {text}");
                    self.seen.lock().expect("seen").push(Delivered {
                        id: attr("notification"),
                        kind: attr("kind"),
                        rep: rep.clone(),
                    });
                    self.sqs
                        .delete_message()
                        .queue_url(url)
                        .receipt_handle(m.receipt_handle().expect("receipt"))
                        .send()
                        .await
                        .expect("delete");
                }
            }
        }
        self.seen.lock().expect("seen").clone()
    }
}

pub struct MotoRig {
    app: Arc<Leadflow<DynamoStore, Flaky<SnsNotifier>>>,
    inboxes: Inboxes,
}

pub async fn new_table(config: &SdkConfig) -> DynamoStore {
    let client = aws_sdk_dynamodb::Client::new(config);
    let name = unique("leads");
    table::create(&client, &name).await.expect("create table");
    DynamoStore::new(client, name)
}

pub async fn rig() -> MotoRig {
    let config = sdk_config(&endpoint()).await;
    let store = new_table(&config).await;
    let inboxes = Inboxes::create(&config, &["rio", "sam", "tia", "max"]).await;
    let notifier = Flaky {
        inner: SnsNotifier::new(aws_sdk_sns::Client::new(&config), inboxes.topic_arn.clone()),
        failing: AtomicBool::new(false),
    };
    MotoRig { app: Arc::new(Leadflow::new(conformance_rules(), store, notifier)), inboxes }
}

impl Rig for MotoRig {
    type S = DynamoStore;
    type N = SnsNotifier;

    fn app(&self) -> &Arc<Leadflow<DynamoStore, Flaky<SnsNotifier>>> {
        &self.app
    }

    async fn delivered(&self) -> Vec<Delivered> {
        self.inboxes.delivered().await
    }
}

crate::conformance_tests!(rig);

/// A moto server of the test's own, to stop and start.
struct OwnMoto {
    port: u16,
    child: Option<Child>,
}

impl OwnMoto {
    fn start(port: u16) -> OwnMoto {
        let python = std::env::var("LEADFLOW_MOTO_PYTHON")
            .expect("LEADFLOW_MOTO_PYTHON is not set: run the tests with tests/run.sh, which installs moto");
        let child = Command::new(python)
            .arg(repo_root().join("infra/moto/serial_server.py"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto");
        // The guard owns the process from here: it is killed even if it never answers.
        let moto = OwnMoto { port, child: Some(child) };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return moto;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("moto did not start on port {port}");
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnMoto {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_off_published_while_sns_is_down_is_delivered_once_after_it_returns() {
    let store = new_table(&sdk_config(&endpoint()).await).await;
    let port = free_port();
    let mut sns_moto = OwnMoto::start(port);
    let sns_endpoint = format!("http://127.0.0.1:{}", sns_moto.port);
    let sns_config = sdk_config(&sns_endpoint).await;
    let inboxes = Inboxes::create(&sns_config, &["rio", "sam", "tia"]).await;
    let notifier = Flaky {
        inner: SnsNotifier::new(aws_sdk_sns::Client::new(&sns_config), inboxes.topic_arn.clone()),
        failing: AtomicBool::new(false),
    };
    let app = Leadflow::new(conformance_rules(), store, notifier);

    let mut first = leadflow_domain::Profile::new(leadflow_domain::Email::parse("first@corp.com").expect("email"));
    first.job_title = Some("VP Marketing".into());
    let one = app.capture(first, &[], at("2026-03-02T14:00:00Z")).await.expect("capture");
    assert_eq!(inboxes.delivered().await.len(), 1);

    sns_moto.stop();
    let mut second = leadflow_domain::Profile::new(leadflow_domain::Email::parse("second@corp.com").expect("email"));
    second.job_title = Some("VP Sales".into());
    let two = app.capture(second, &[], at("2026-03-02T14:01:00Z")).await.expect("capture while SNS is down");
    assert_eq!(two.lead.status, leadflow_domain::Status::Assigned, "the hand-off is stored");
    let report = app.sla_check(at("2026-03-02T14:04:00Z")).await.expect("sla check");
    assert_eq!(report.notifications_failed, 1, "still down: the retry fails and stays pending");

    // The emulator comes back empty: the topic and queues are made again under the same names.
    let sns_moto = OwnMoto::start(port);
    let inboxes_again = Inboxes::create_named_like(&sns_config, &inboxes).await;
    let report = app.sla_check(at("2026-03-02T14:08:00Z")).await.expect("sla check");
    assert_eq!(report.notifications_retried, 1);
    let again = app.sla_check(at("2026-03-02T14:20:00Z")).await.expect("sla check");
    assert_eq!(again.notifications_retried, 0, "a delivered notification is never retried");
    let delivered = inboxes_again.delivered().await;
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert_eq!(delivered[0].id, format!("{}-{}-0", two.lead.id, two.lead.version));
    assert_ne!(one.lead.id, two.lead.id);
    drop(sns_moto);
}
