//! The conformance suite on the embedded store with the `log:PATH` notifier.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use leadflow_adapters::{EmbeddedStore, LogNotifier};
use leadflow_app::Leadflow;

use crate::conformance::{Delivered, Flaky, Rig, conformance_rules};

pub struct EmbeddedRig {
    app: Arc<Leadflow<EmbeddedStore, Flaky<LogNotifier>>>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

pub async fn rig() -> EmbeddedRig {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = EmbeddedStore::open(&dir.path().join(".leadflow/leads.db")).expect("open store");
    let log = dir.path().join(".leadflow/outbox.jsonl");
    let notifier = Flaky { inner: LogNotifier::open(&log).expect("open log"), failing: AtomicBool::new(false) };
    EmbeddedRig { app: Arc::new(Leadflow::new(conformance_rules(), store, notifier)), log, _dir: dir }
}

impl Rig for EmbeddedRig {
    type S = EmbeddedStore;
    type N = LogNotifier;

    fn app(&self) -> &Arc<Leadflow<EmbeddedStore, Flaky<LogNotifier>>> {
        &self.app
    }

    async fn delivered(&self) -> Vec<Delivered> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut out = Vec::new();
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            for field in ["kind", "lead_id", "owner", "to", "tier", "sms", "email"] {
                assert!(v.get(field).is_some(), "log line without `{field}`: {line}");
            }
            for rep in v["to"].as_array().expect("to") {
                out.push(Delivered {
                    id: v["id"].as_str().expect("id").to_owned(),
                    kind: v["kind"].as_str().expect("kind").to_owned(),
                    rep: rep.as_str().expect("rep").to_owned(),
                });
            }
        }
        out
    }
}

crate::conformance_tests!(rig);
