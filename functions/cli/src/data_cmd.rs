//! The commands that touch stored data: `serve`, `sla-check`, `cleanup`,
//! `leads list` and `leads show`, against the store and notifier chosen with
//! `--store` and `--notify`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use leadflow_adapters::{EmbeddedStore, LogNotifier};
use leadflow_app::{History, LeadFilter, Leadflow, Leads, Notifier, Outbox, Store, Team};
use leadflow_domain::{Email, LeadId, RuleSet, Status};

/// Where leads are stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreSpec {
    Embedded(PathBuf),
    Dynamodb(String),
}

impl std::str::FromStr for StoreSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once(':') {
            Some(("embedded", path)) if !path.is_empty() => Ok(StoreSpec::Embedded(path.into())),
            Some(("dynamodb", table)) if !table.is_empty() => Ok(StoreSpec::Dynamodb(table.to_owned())),
            _ => Err(format!("`{s}` is not embedded:PATH or dynamodb:TABLE")),
        }
    }
}

/// Where notifications go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotifySpec {
    Log(PathBuf),
    Sns(String),
}

impl std::str::FromStr for NotifySpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once(':') {
            Some(("log", path)) if !path.is_empty() => Ok(NotifySpec::Log(path.into())),
            Some(("sns", arn)) if arn.starts_with("arn:") => Ok(NotifySpec::Sns(arn.to_owned())),
            _ => Err(format!("`{s}` is not log:PATH or sns:TOPIC_ARN")),
        }
    }
}

/// The store, notifier and rules every data command takes.
#[derive(Debug, clap::Args)]
pub struct Backend {
    /// Where leads are stored: `embedded:PATH` (SQLite) or `dynamodb:TABLE`.
    #[arg(long, value_name = "embedded:PATH|dynamodb:TABLE", default_value = "embedded:.leadflow/leads.db")]
    pub store: StoreSpec,
    /// Where notifications go: `log:PATH` (one JSON line each) or `sns:TOPIC_ARN`.
    #[arg(long, value_name = "log:PATH|sns:TOPIC_ARN", default_value = "log:.leadflow/outbox.jsonl")]
    pub notify: NotifySpec,
    /// The rules directory.
    #[arg(long, value_name = "DIR", default_value = "rules")]
    pub rules: PathBuf,
    /// The web app's address, that action links in notifications open
    /// (https://leads.example.com). `serve` defaults to its own address.
    #[arg(long, env = "APP_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// How many days an action link in a notification works.
    #[arg(long, env = "ACTION_LINK_DAYS", default_value_t = 7, value_parser = clap::value_parser!(u16).range(1..=90))]
    pub action_link_days: u16,
}

/// Runs `$body` with `$app` bound to an `Arc<Leadflow<S, N>>` for the chosen
/// store and notifier (AWS clients from the SDK's usual configuration).
macro_rules! with_app {
    ($backend:expr, |$app:ident| $body:expr) => {{
        let backend: &$crate::data_cmd::Backend = $backend;
        let rules = std::sync::Arc::new($crate::data_cmd::load_rules(&backend.rules)?);
        let web = $crate::web_cmd::config(backend)?;
        let aws = match (&backend.store, &backend.notify) {
            ($crate::data_cmd::StoreSpec::Embedded(_), $crate::data_cmd::NotifySpec::Log(_)) => None,
            _ => Some(leadflow_adapters::aws_defaults().load().await),
        };
        match (&backend.store, &backend.notify) {
            ($crate::data_cmd::StoreSpec::Embedded(path), $crate::data_cmd::NotifySpec::Log(log)) => {
                let $app = std::sync::Arc::new(
                    leadflow_app::Leadflow::new(
                        rules,
                        $crate::data_cmd::open_embedded(path)?,
                        $crate::data_cmd::open_log(log)?,
                    )
                    .with_links(web.as_ref().map(|w| w.links.clone())),
                );
                $body
            }
            ($crate::data_cmd::StoreSpec::Embedded(path), $crate::data_cmd::NotifySpec::Sns(arn)) => {
                let sns = leadflow_adapters::SnsNotifier::new(
                    aws_sdk_sns::Client::new(aws.as_ref().expect("AWS configuration")),
                    arn,
                );
                let $app = std::sync::Arc::new(
                    leadflow_app::Leadflow::new(rules, $crate::data_cmd::open_embedded(path)?, sns)
                        .with_links(web.as_ref().map(|w| w.links.clone())),
                );
                $body
            }
            ($crate::data_cmd::StoreSpec::Dynamodb(table), $crate::data_cmd::NotifySpec::Log(log)) => {
                let config = aws.as_ref().expect("AWS configuration");
                let store = leadflow_adapters::DynamoStore::new(aws_sdk_dynamodb::Client::new(config), table);
                let $app = std::sync::Arc::new(
                    leadflow_app::Leadflow::new(rules, store, $crate::data_cmd::open_log(log)?)
                        .with_links(web.as_ref().map(|w| w.links.clone())),
                );
                $body
            }
            ($crate::data_cmd::StoreSpec::Dynamodb(table), $crate::data_cmd::NotifySpec::Sns(arn)) => {
                let config = aws.as_ref().expect("AWS configuration");
                let store = leadflow_adapters::DynamoStore::new(aws_sdk_dynamodb::Client::new(config), table);
                let sns = leadflow_adapters::SnsNotifier::new(aws_sdk_sns::Client::new(config), arn);
                let $app = std::sync::Arc::new(
                    leadflow_app::Leadflow::new(rules, store, sns).with_links(web.as_ref().map(|w| w.links.clone())),
                );
                $body
            }
        }
    }};
}
pub(crate) use with_app;

pub fn load_rules(dir: &std::path::Path) -> Result<RuleSet> {
    match RuleSet::load_dir(dir) {
        Ok(rules) => Ok(rules),
        Err(diagnostics) => bail!("the rules in {} are not valid:\n{diagnostics}", dir.display()),
    }
}

pub fn open_embedded(path: &std::path::Path) -> Result<EmbeddedStore> {
    EmbeddedStore::open(path).with_context(|| format!("opening {}", path.display()))
}

pub fn open_log(path: &std::path::Path) -> Result<LogNotifier> {
    LogNotifier::open(path).with_context(|| format!("opening {}", path.display()))
}

pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

fn print_json(value: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// `leadflow sla-check --now TIME`.
pub fn sla_check(backend: &Backend, now: DateTime<Utc>) -> Result<ExitCode> {
    runtime()?.block_on(async {
        with_app!(backend, |app| {
            let report = app.sla_check(now).await?;
            print_json(&report)?;
        });
        Ok(ExitCode::SUCCESS)
    })
}

/// `leadflow cleanup --now TIME`.
pub fn cleanup(backend: &Backend, now: DateTime<Utc>) -> Result<ExitCode> {
    runtime()?.block_on(async {
        with_app!(backend, |app| {
            let report = app.cleanup(now).await?;
            print_json(&report)?;
        });
        Ok(ExitCode::SUCCESS)
    })
}

/// `leadflow doctor [--repair]`.
pub fn doctor(backend: &Backend, repair: bool, now: DateTime<Utc>, as_json: bool) -> Result<ExitCode> {
    runtime()?.block_on(async {
        let unrepaired: usize;
        with_app!(backend, |app| {
            let findings = app.doctor(now, repair).await?;
            unrepaired = findings.iter().filter(|f| !f.repaired).count();
            if as_json {
                print_json(&findings)?;
            } else {
                for f in &findings {
                    let state = if f.repaired { "repaired" } else { "found" };
                    println!("{state:<8}  {:<7}  {}  {}", f.subject, f.id, f.problem);
                }
                eprintln!("{} problems, {} repaired", findings.len(), findings.len() - unrepaired);
            }
        });
        Ok(if unrepaired == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
    })
}

/// `leadflow outbox`.
pub fn outbox(backend: &Backend, now: DateTime<Utc>, as_json: bool) -> Result<ExitCode> {
    runtime()?.block_on(async {
        with_app!(backend, |app| {
            let pending = app.store.due_notifications(now, usize::MAX).await?;
            let dead = app.store.dead_letters().await?;
            if as_json {
                print_json(&serde_json::json!({ "pending": pending, "dead": dead }))?;
            } else {
                println!("{:<8}  {:<40}  {:<12}  {:>8}  to", "state", "notification", "kind", "attempts");
                for (state, list) in [("pending", &pending), ("dead", &dead)] {
                    for p in list {
                        let n = &p.notification;
                        println!(
                            "{state:<8}  {:<40}  {:<12}  {:>8}  {}",
                            n.id,
                            n.kind.as_str(),
                            p.attempts,
                            n.to.join(",")
                        );
                    }
                }
                eprintln!("{} pending past their lease, {} dead letters", pending.len(), dead.len());
            }
        });
        Ok(ExitCode::SUCCESS)
    })
}

/// Who changes the team from the command line: the operating system's user.
fn cli_user() -> String {
    let user = std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_default();
    if user.is_empty() { "cli".to_owned() } else { format!("cli:{user}") }
}

/// `leadflow team show`.
pub fn team_show(backend: &Backend, now: DateTime<Utc>, as_json: bool) -> Result<ExitCode> {
    runtime()?.block_on(async {
        with_app!(backend, |app| {
            let routing = &app.rules.routing;
            let ids: Vec<&str> = routing.reps.iter().map(|r| r.id.as_str()).collect();
            let state = app.store.team_state(&ids, None).await?;
            let today = now.date_naive();
            let rows: Vec<serde_json::Value> = routing
                .reps
                .iter()
                .map(|rep| {
                    let settings = state.settings.get(&rep.id);
                    let e = leadflow_domain::team::Effective::of(rep, settings);
                    serde_json::json!({
                        "rep": rep.id,
                        "available": e.active && !e.is_away(today),
                        "active": e.active,
                        "away": e.away.iter().map(|(f, t)| format!("{f}..{t}")).collect::<Vec<_>>(),
                        "capacity": e.capacity,
                        "open": state.open.get(&rep.id).copied().unwrap_or(0),
                        "changed_by": settings.map(|s| s.changed_by.clone()),
                        "changed_at": settings.map(|s| s.changed_at),
                    })
                })
                .collect();
            if as_json {
                print_json(&serde_json::Value::Array(rows))?;
            } else {
                println!(
                    "{:<12}  {:<9}  {:>4}  {:>8}  {:<24}  changed",
                    "rep", "available", "open", "capacity", "away"
                );
                for r in &rows {
                    println!(
                        "{:<12}  {:<9}  {:>4}  {:>8}  {:<24}  {}",
                        r["rep"].as_str().unwrap_or(""),
                        if r["available"] == true {
                            "yes"
                        } else if r["active"] == false {
                            "inactive"
                        } else {
                            "away"
                        },
                        r["open"],
                        r["capacity"].as_u64().map_or("-".to_owned(), |c| c.to_string()),
                        r["away"]
                            .as_array()
                            .map(|a| a.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join(","))
                            .unwrap_or_default(),
                        r["changed_by"].as_str().unwrap_or("")
                    );
                }
            }
        });
        Ok(ExitCode::SUCCESS)
    })
}

/// `leadflow team away|back|capacity|active|reset`.
pub fn team_change(backend: &Backend, rep: &str, change: &leadflow_domain::team::TeamChange) -> Result<ExitCode> {
    runtime()?.block_on(async {
        with_app!(backend, |app| {
            let settings = app.change_team(rep, change, &cli_user(), Utc::now()).await?;
            match settings {
                Some(s) => println!("{rep}: {}", serde_json::to_string(&s)?),
                None => println!("{rep}: as routing.yaml says"),
            }
        });
        Ok(ExitCode::SUCCESS)
    })
}

/// Leads per page read from the store by `leads export`.
const EXPORT_PAGE: usize = 500;

/// `leadflow leads export`: every lead, a page at a time, to standard output.
pub fn export(backend: &Backend, format: crate::ExportFormat, history: bool, now: DateTime<Utc>) -> Result<ExitCode> {
    use std::io::Write;
    if history && format == crate::ExportFormat::Csv {
        bail!("--history is for JSON Lines; CSV has no place for a lead's history");
    }
    runtime()?.block_on(async {
        with_app!(backend, |app| {
            let out = std::io::BufWriter::new(std::io::stdout().lock());
            let (mut jsonl, mut csv) = match format {
                crate::ExportFormat::Jsonl => (Some(out), None),
                crate::ExportFormat::Csv => {
                    let mut w = csv::Writer::from_writer(out);
                    w.write_record(csv_header())?;
                    (None, Some(w))
                }
            };
            let mut after: Option<String> = None;
            let mut count = 0usize;
            loop {
                let (leads, next) = app.store.page(after.as_deref(), EXPORT_PAGE).await?;
                for lead in &leads {
                    count += 1;
                    if let Some(w) = csv.as_mut() {
                        w.write_record(csv_row(lead, now))?;
                    }
                    if let Some(out) = jsonl.as_mut() {
                        let mut line = leadflow_domain::rules::input::exported(lead, now);
                        if history {
                            line["history"] = serde_json::to_value(app.store.history(&lead.id).await?)?;
                        }
                        serde_json::to_writer(&mut *out, &line)?;
                        out.write_all(b"\n")?;
                    }
                }
                match next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
            if let Some(mut w) = csv {
                w.flush()?;
            }
            if let Some(mut out) = jsonl {
                out.flush()?;
            }
            eprintln!("exported {count} leads");
        });
        Ok(ExitCode::SUCCESS)
    })
}

fn csv_header() -> Vec<String> {
    let mut header = vec!["id".to_owned()];
    header.extend(leadflow_domain::lead::ProfileField::ALL.iter().map(|f| f.name().to_owned()));
    header.extend(
        [
            "status",
            "owner",
            "score",
            "tier",
            "created_at",
            "updated_at",
            "last_activity_at",
            "idle_days",
            "events",
            "custom",
        ]
        .map(str::to_owned),
    );
    header
}

fn csv_row(lead: &leadflow_domain::Lead, now: DateTime<Utc>) -> Vec<String> {
    use leadflow_domain::lead::{FieldTarget, ProfileField};
    let mut row = vec![lead.id.to_string()];
    row.extend(
        ProfileField::ALL.iter().map(|f| lead.profile.value_text(&FieldTarget::Profile(*f)).unwrap_or_default()),
    );
    let custom: std::collections::BTreeMap<String, String> = lead
        .profile
        .present_fields()
        .into_iter()
        .filter_map(|t| match &t {
            FieldTarget::Custom(name) => lead.profile.value_text(&t).map(|v| (name.clone(), v)),
            FieldTarget::Profile(_) => None,
        })
        .collect();
    row.extend([
        lead.status.as_str().to_owned(),
        lead.owner.clone().unwrap_or_default(),
        lead.score.to_string(),
        lead.tier.clone(),
        lead.created_at.to_rfc3339(),
        lead.updated_at.to_rfc3339(),
        lead.last_activity_at.to_rfc3339(),
        leadflow_domain::rules::scoring::idle_days(lead.last_activity_at, now).to_string(),
        serde_json::to_string(&lead.events).unwrap_or_default(),
        serde_json::to_string(&custom).unwrap_or_default(),
    ]);
    row
}

/// `leadflow leads list`.
pub fn list(backend: &Backend, status: Option<Status>, owner: Option<String>, as_json: bool) -> Result<ExitCode> {
    runtime()?.block_on(async {
        with_app!(backend, |app| {
            print_list(&app, LeadFilter { status, owner }, as_json).await?;
        });
        Ok(ExitCode::SUCCESS)
    })
}

async fn print_list<S: Store, N: Notifier>(app: &Leadflow<S, N>, filter: LeadFilter, as_json: bool) -> Result<()> {
    let leads = app.store.list(&filter).await?;
    if as_json {
        let views: Vec<_> = leads.iter().map(leadflow_api::lead_view).collect();
        return print_json(&views);
    }
    println!("{:<24}  {:<12}  {:<10}  {:>5}  {:<6}  email", "id", "status", "owner", "score", "tier");
    for l in &leads {
        println!(
            "{:<24}  {:<12}  {:<10}  {:>5}  {:<6}  {}",
            l.id,
            l.status.as_str(),
            l.owner.as_deref().unwrap_or("-"),
            l.score,
            l.tier,
            l.profile.email.as_str()
        );
    }
    eprintln!("{} leads", leads.len());
    Ok(())
}

/// `leadflow leads show EMAIL|ID`.
pub fn show(backend: &Backend, who: &str, as_json: bool) -> Result<ExitCode> {
    let id = match Email::parse(who) {
        Ok(email) => LeadId::for_email(&email),
        Err(_) => LeadId::parse(who).map_err(|_| anyhow::anyhow!("`{who}` is neither an email nor a lead id"))?,
    };
    runtime()?.block_on(async {
        with_app!(backend, |app| {
            let Some(lead) = app.store.get(&id).await? else {
                eprintln!("no lead {who}");
                return Ok(ExitCode::FAILURE);
            };
            let history = app.store.history(&id).await?;
            let mut view = leadflow_api::lead_view(&lead);
            view["history"] = serde_json::to_value(&history)?;
            if as_json {
                print_json(&view)?;
            } else {
                println!("{}", serde_yaml::to_string(&view)?);
            }
        });
        Ok(ExitCode::SUCCESS)
    })
}
