//! `leadflow serve`: the HTTP API of the Lambdas on one machine, with the SLA
//! check on a timer.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use leadflow_api::{Api, ApiConfig, ApiError, SourceSecrets};
use leadflow_app::{Leadflow, Notifier, Store};
use leadflow_domain::{RuleSet, RuleSources};
use leadflow_web::Web;
use tracing::{Instrument as _, error, info};

use crate::data_cmd::{Backend, runtime, with_app};

/// The largest body read from a request; the API applies its own limits below it.
const MAX_BODY: usize = 1024 * 1024;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub backend: Backend,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,
    /// An origin whose pages may post to the API and that `_redirect` may name
    /// (repeatable), like https://www.example.com. Also read from ALLOWED_ORIGINS
    /// (comma-separated). The server's own origin is always allowed.
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,
    /// How often the SLA check runs, in seconds.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub sla_every: u64,
    /// How often the clean-up (decay, dormancy) runs, in seconds. It reads only
    /// the leads whose idleness matters by then, so hourly costs little.
    #[arg(long, default_value_t = 3600, value_name = "SECONDS")]
    pub cleanup_every: u64,
}

pub fn serve(args: ServeArgs) -> Result<ExitCode> {
    crate::init_tracing();
    crate::web_cmd::prepare(&args.backend, args.addr)?;
    runtime()?.block_on(async {
        with_app!(&args.backend, |app| {
            run(app, &args).await?;
        });
        Ok(ExitCode::SUCCESS)
    })
}

fn events_secret() -> Result<Vec<u8>> {
    match std::env::var("EVENTS_SECRET") {
        Ok(secret) if !secret.is_empty() => Ok(secret.into_bytes()),
        _ => {
            let secret = crate::random_secret()?;
            println!("EVENTS_SECRET is not set; /events takes signatures made with this secret: {secret}");
            Ok(secret.into_bytes())
        }
    }
}

async fn run<S, N>(app: Arc<Leadflow<S, N>>, args: &ServeArgs) -> Result<()>
where
    S: Store + Clone + 'static,
    N: Notifier + Clone + 'static,
{
    let mut origins = args.allowed_origins.clone();
    if let Ok(list) = std::env::var("ALLOWED_ORIGINS") {
        origins.extend(list.split(',').map(str::trim).filter(|o| !o.is_empty()).map(str::to_owned));
    }
    origins.push(format!("http://{}", args.addr));
    origins.push(format!("http://localhost:{}", args.addr.port()));
    let web = crate::web_cmd::config(&args.backend)?
        .context("the web app has no secret: set APP_SECRET, or let serve keep one beside the store")?;
    println!("action links open on {}", web.links.base_url);
    let settings = Settings { events_secret: events_secret()?, origins, web };
    let live = Arc::new(Live { apps: RwLock::new(Arc::new(settings.apps(app))) });
    let router = Router::new()
        .route("/", get(form_page))
        .route("/thanks", get(thanks_page))
        .fallback(handle::<S, N>)
        .with_state(Arc::clone(&live));

    let listener =
        tokio::net::TcpListener::bind(args.addr).await.with_context(|| format!("listening on {}", args.addr))?;
    println!("leadflow listening on http://{}", listener.local_addr()?);

    let sla = Arc::clone(&live);
    let timer = tokio::spawn(every(Duration::from_secs(args.sla_every.max(1)), move || {
        let app = Arc::clone(&sla.current().app);
        let span = rules_span(&app);
        async move { logged("sla check", app.sla_check(Utc::now()).await) }.instrument(span)
    }));
    let hygiene = Arc::clone(&live);
    let nightly = tokio::spawn(every(Duration::from_secs(args.cleanup_every.max(1)), move || {
        let app = Arc::clone(&hygiene.current().app);
        let span = rules_span(&app);
        async move { logged("clean-up", app.cleanup(Utc::now()).await) }.instrument(span)
    }));
    let watcher = tokio::spawn(watch_rules(Arc::clone(&live), settings, args.backend.rules.clone()));
    axum::serve(listener, router).with_graceful_shutdown(shutdown()).await?;
    timer.abort();
    nightly.abort();
    watcher.abort();
    info!("stopped");
    Ok(())
}

/// What the HTTP API and the web app are built with besides the rules.
struct Settings {
    events_secret: Vec<u8>,
    origins: Vec<String>,
    web: leadflow_web::WebConfig,
}

impl Settings {
    /// The API and the web app over `app` and its rules. Sources that
    /// authenticate read their secrets from the environment, as on AWS.
    fn apps<S: Store, N: Notifier>(&self, app: Arc<Leadflow<S, N>>) -> Apps<S, N> {
        let (source_secrets, missing) = SourceSecrets::load(&app.rules.capture, |name| std::env::var(name).ok());
        for m in &missing {
            println!("{m}: posts to /leads?source={} are refused until it is set", m.source_name);
        }
        let config = ApiConfig {
            events_secret: self.events_secret.clone(),
            allowed_origins: self.origins.clone(),
            source_secrets,
        };
        Apps { api: Api::new(Arc::clone(&app), config), web: Web::new(Arc::clone(&app), self.web.clone()), app }
    }
}

/// The API and the web app under the rules running now. A reload swaps them
/// whole, so each request and each job runs under one version of the rules.
struct Live<S, N> {
    apps: RwLock<Arc<Apps<S, N>>>,
}

impl<S, N> Live<S, N> {
    fn current(&self) -> Arc<Apps<S, N>> {
        Arc::clone(&self.apps.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

/// How often serve looks for changed rule files.
const RULES_POLL: Duration = Duration::from_secs(2);

/// Reloads the rules when their files change (looked at every two seconds,
/// loaded when two looks in a row agree) or on SIGHUP. A set that does not load is refused, every problem logged,
/// and the running rules stay.
async fn watch_rules<S, N>(live: Arc<Live<S, N>>, settings: Settings, dir: std::path::PathBuf)
where
    S: Store + Clone + 'static,
    N: Notifier + Clone + 'static,
{
    let fingerprint = |dir: &std::path::Path| RuleSources::from_dir(dir).map(|s| s.version()).ok();
    let mut seen = fingerprint(&dir);
    // A change is loaded once two looks agree, not while an editor is still writing it.
    let mut changing = None;
    let mut ticks = tokio::time::interval(RULES_POLL);
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        #[cfg(unix)]
        let asked = async {
            match hangup.as_mut() {
                Some(h) => h.recv().await.is_some(),
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let asked = std::future::pending::<bool>();
        let why = tokio::select! {
            _ = ticks.tick() => {
                let now = fingerprint(&dir);
                if now == seen {
                    changing = None;
                    continue;
                }
                if changing != Some(now.clone()) {
                    changing = Some(now);
                    continue;
                }
                changing = None;
                seen = now;
                "the rule files changed"
            }
            true = asked => {
                seen = fingerprint(&dir);
                changing = None;
                "SIGHUP"
            }
        };
        let running = live.current();
        let from = running.app.rules.version.clone();
        match RuleSet::load_dir(&dir) {
            Err(e) => {
                error!(rules_version = %from, why, problems = %e, "the new rules are refused; the running rules stay");
            }
            Ok(rules) if rules.version == from => info!(rules_version = %from, why, "the rules are unchanged"),
            Ok(rules) => {
                let to = rules.version.clone();
                let apps = Arc::new(settings.apps(Arc::new(running.app.with_rules(Arc::new(rules)))));
                *live.apps.write().unwrap_or_else(std::sync::PoisonError::into_inner) = apps;
                info!(rules_version = %to, from = %from, why, "rules reloaded");
            }
        }
    }
}

/// The span every request and job runs in, so that each log line names the
/// rules it was decided under.
fn rules_span<S, N>(app: &Leadflow<S, N>) -> tracing::Span {
    tracing::info_span!("rules", rules_version = %app.rules.version)
}

/// The HTTP API and the web app, side by side as on AWS, over one service.
struct Apps<S, N> {
    app: Arc<Leadflow<S, N>>,
    api: Api<S, N>,
    web: Web<S, N>,
}

async fn handle<S: Store + 'static, N: Notifier + 'static>(
    State(live): State<Arc<Live<S, N>>>,
    request: Request,
) -> Response {
    let apps = live.current();
    let span = rules_span(&apps.app);
    async move {
        let (parts, body) = request.into_parts();
        let bytes = match to_bytes(body, MAX_BODY).await {
            Ok(b) => b,
            Err(_) => return to_axum(ApiError::TooLarge { limit: MAX_BODY }.into_response()),
        };
        let request = http::Request::from_parts(parts, bytes);
        if leadflow_web::handles(request.uri().path()) {
            return to_axum(apps.web.handle(request, Utc::now()).await);
        }
        to_axum(apps.api.handle(request, Utc::now()).await)
    }
    .instrument(span)
    .await
}

fn to_axum(response: http::Response<String>) -> Response {
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, Body::from(body))
}

/// Runs `job` now and then every `period`.
async fn every<F, Fut>(period: Duration, mut job: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut ticks = tokio::time::interval(period);
    loop {
        ticks.tick().await;
        job().await;
    }
}

/// Logs a scheduled job that failed (in the job's span); the next tick runs it again.
fn logged<T, E: std::fmt::Display>(what: &'static str, result: Result<T, E>) {
    if let Err(e) = result {
        error!(error = %e, job = what, "the job failed; it runs again at the next tick");
    }
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    info!("shutting down: finishing requests in flight");
}

/// The sample form, with every country by its English name (the form posts
/// the ISO code, so a typed name can never pick the wrong country).
async fn form_page() -> impl IntoResponse {
    static PAGE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let options: String = leadflow_domain::country::english_names()
            .map(|(name, code)| format!("      <option value=\"{}\">{}</option>\n", code.as_str(), escape(name)))
            .collect();
        include_str!("form.html").replace("<!-- countries -->\n", &options)
    });
    Html(PAGE.as_str())
}

/// Where the sample form sends people after posting.
async fn thanks_page() -> impl IntoResponse {
    Html(include_str!("thanks.html"))
}

/// Text for HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
