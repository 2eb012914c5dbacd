//! `leadflow serve`: the HTTP API of the Lambdas on one machine, with the SLA
//! check on a timer.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
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
use leadflow_web::Web;
use tracing::{error, info};

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

async fn run<S: Store + 'static, N: Notifier + 'static>(app: Arc<Leadflow<S, N>>, args: &ServeArgs) -> Result<()> {
    let mut origins = args.allowed_origins.clone();
    if let Ok(list) = std::env::var("ALLOWED_ORIGINS") {
        origins.extend(list.split(',').map(str::trim).filter(|o| !o.is_empty()).map(str::to_owned));
    }
    origins.push(format!("http://{}", args.addr));
    origins.push(format!("http://localhost:{}", args.addr.port()));
    // Sources that authenticate read their secrets from the environment, as on AWS.
    let (source_secrets, missing) = SourceSecrets::load(&app.rules.capture, |name| std::env::var(name).ok());
    for m in &missing {
        println!("{m}: posts to /leads?source={} are refused until it is set", m.source_name);
    }
    let config = ApiConfig { events_secret: events_secret()?, allowed_origins: origins, source_secrets };
    let api = Api::new(Arc::clone(&app), config);
    let web = crate::web_cmd::config(&args.backend)?
        .context("the web app has no secret: set APP_SECRET, or let serve keep one beside the store")?;
    println!("action links open on {}", web.links.base_url);
    let web = Web::new(Arc::clone(&app), web);
    let router = Router::new()
        .route("/", get(form_page))
        .route("/thanks", get(thanks_page))
        .fallback(handle::<S, N>)
        .with_state(Arc::new(Apps { api, web }));

    let listener =
        tokio::net::TcpListener::bind(args.addr).await.with_context(|| format!("listening on {}", args.addr))?;
    println!("leadflow listening on http://{}", listener.local_addr()?);

    let sla = Arc::clone(&app);
    let timer = tokio::spawn(every(Duration::from_secs(args.sla_every.max(1)), "sla check", move || {
        let app = Arc::clone(&sla);
        async move { app.sla_check(Utc::now()).await }
    }));
    let hygiene = Arc::clone(&app);
    let nightly = tokio::spawn(every(Duration::from_secs(args.cleanup_every.max(1)), "clean-up", move || {
        let app = Arc::clone(&hygiene);
        async move { app.cleanup(Utc::now()).await }
    }));
    axum::serve(listener, router).with_graceful_shutdown(shutdown()).await?;
    timer.abort();
    nightly.abort();
    info!("stopped");
    Ok(())
}

/// The HTTP API and the web app, side by side as on AWS.
#[derive(Debug)]
struct Apps<S, N> {
    api: Api<S, N>,
    web: Web<S, N>,
}

async fn handle<S: Store + 'static, N: Notifier + 'static>(
    State(apps): State<Arc<Apps<S, N>>>,
    request: Request,
) -> Response {
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

fn to_axum(response: http::Response<String>) -> Response {
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, Body::from(body))
}

/// Runs `job` now and then every `period`; a failed run is logged and the
/// next tick runs it again.
async fn every<F, Fut, T, E>(period: Duration, what: &'static str, mut job: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let mut ticks = tokio::time::interval(period);
    loop {
        ticks.tick().await;
        if let Err(e) = job().await {
            error!(error = %e, job = what, "the job failed; it runs again at the next tick");
        }
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
        let mut countries: Vec<(String, String)> =
            keshvar::CountryIterator::new().map(|c| (c.iso_short_name().to_owned(), c.alpha2().to_string())).collect();
        countries.sort();
        let options: String = countries
            .iter()
            .map(|(name, code)| format!("      <option value=\"{code}\">{}</option>\n", escape(name)))
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
