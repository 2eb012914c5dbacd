//! The `log:PATH` notifier of the local server: every notification appended to
//! a file as one JSON line (default `.leadflow/outbox.jsonl`).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use leadflow_app::{Direct, Notifier, NotifyError};
use leadflow_domain::Notification;
use serde::Serialize;

#[derive(Clone, Debug)]
pub struct LogNotifier {
    path: PathBuf,
    file: Arc<Mutex<File>>,
}

/// One line of the log: the fields every notification has (kind, lead_id, owner, to, tier, sms, email), then the rest.
#[derive(Serialize)]
struct Line<'a> {
    kind: &'a str,
    lead_id: Option<&'a str>,
    owner: Option<&'a str>,
    to: &'a [String],
    tier: &'a str,
    sms: &'a str,
    email: &'a str,
    subject: &'a str,
    id: &'a str,
    created_at: String,
}

impl LogNotifier {
    /// Opens `path` for appending, creating it and its folder.
    pub fn open(path: &Path) -> std::io::Result<LogNotifier> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(LogNotifier { path: path.to_owned(), file: Arc::new(Mutex::new(file)) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Notifier for LogNotifier {
    async fn publish(&self, n: &Notification) -> Result<(), NotifyError> {
        let line = Line {
            kind: n.kind.as_str(),
            lead_id: Some(n.lead_id.as_str()),
            owner: n.owner.as_deref(),
            to: &n.to,
            tier: &n.tier,
            sms: &n.sms,
            email: &n.email,
            subject: &n.subject,
            id: &n.id,
            created_at: crate::embedded::ts(n.created_at),
        };
        self.append(&line)
    }

    /// A message about no lead: `lead_id` and `owner` are null, `tier` is empty.
    async fn send(&self, m: &Direct) -> Result<(), NotifyError> {
        let to = [m.to.clone()];
        let line = Line {
            kind: m.kind,
            lead_id: None,
            owner: None,
            to: &to,
            tier: "",
            sms: &m.sms,
            email: &m.email,
            subject: &m.subject,
            id: &m.id,
            created_at: crate::embedded::ts(m.created_at),
        };
        self.append(&line)
    }
}

impl LogNotifier {
    fn append(&self, line: &impl Serialize) -> Result<(), NotifyError> {
        let mut text = serde_json::to_string(line).map_err(|e| NotifyError::new("cannot encode", e))?;
        text.push('\n');
        let mut file = self.file.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // One write call per line, so lines from concurrent writers never interleave.
        file.write_all(text.as_bytes())
            .map_err(|e| NotifyError::new(format!("cannot append to {}", self.path.display()), e))
    }
}
