//! The web app's secret and address for the commands that run on one
//! machine. `APP_SECRET` (at least 32 bytes) and `APP_URL` come from the
//! environment, as on AWS; without them `serve` generates a secret and keeps
//! it, with the address it listens on, in `web.json` beside the embedded
//! store (`.leadflow/` for DynamoDB), so that the links in notifications that
//! `leadflow sla-check` and the other commands send open on `serve`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use leadflow_web::WebConfig;
use serde::{Deserialize, Serialize};

use crate::data_cmd::{Backend, StoreSpec};

/// What `web.json` keeps.
#[derive(Debug, Serialize, Deserialize)]
struct Kept {
    secret: String,
    url: String,
}

fn kept_path(backend: &Backend) -> PathBuf {
    let dir = match &backend.store {
        StoreSpec::Embedded(path) => path.parent().map(PathBuf::from).unwrap_or_default(),
        StoreSpec::Dynamodb(_) => PathBuf::from(".leadflow"),
    };
    dir.join("web.json")
}

fn read_kept(backend: &Backend) -> Result<Option<Kept>> {
    let path = kept_path(backend);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn env_secret() -> Option<String> {
    std::env::var("APP_SECRET").ok().filter(|s| !s.is_empty())
}

/// Before `serve` starts: without `APP_SECRET`, a secret kept in `web.json`
/// (made now if there is none), with the address links should open.
pub fn prepare(backend: &Backend, addr: SocketAddr) -> Result<()> {
    if env_secret().is_some() {
        return Ok(());
    }
    let url = backend.public_url.clone().unwrap_or_else(|| format!("http://{addr}"));
    let secret = match read_kept(backend)? {
        Some(kept) if kept.url == url => return Ok(()),
        Some(kept) => kept.secret,
        None => crate::random_secret()?,
    };
    let path = kept_path(backend);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(&Kept { secret, url })?;
    write_private(&path, &text).with_context(|| format!("writing {}", path.display()))?;
    println!("APP_SECRET is not set; links are signed with the secret kept in {}", path.display());
    Ok(())
}

#[cfg(unix)]
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::fs::PermissionsExt;
    let mut file = std::fs::OpenOptions::new().create(true).write(true).truncate(true).mode(0o600).open(path)?;
    // A file that existed keeps its mode through `open`: set it.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

/// The web app's configuration: `None` when there is no secret or no
/// address to make links with (notifications then carry none).
pub fn config(backend: &Backend) -> Result<Option<WebConfig>> {
    let kept = read_kept(backend)?;
    let (secret, kept_url) = match (env_secret(), kept) {
        (Some(secret), _) => (secret, None),
        (None, Some(kept)) => (kept.secret, Some(kept.url)),
        (None, None) => return Ok(None),
    };
    let Some(url) = backend.public_url.clone().or(kept_url) else {
        return Ok(None);
    };
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        bail!("the public URL `{url}` must start with https:// or http://");
    }
    let ttl = chrono::Duration::days(i64::from(backend.action_link_days));
    Ok(Some(WebConfig::new(secret.as_bytes(), &url, ttl)?))
}
