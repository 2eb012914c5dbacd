//! What leadflow's five Lambda functions share. Each function's `main` sets up
//! tracing and runs its cold start through [`start`]: it reads its [`Config`],
//! builds the AWS clients and compiles the rules once, logs the time it took
//! (`init_ms`), and hands every invocation to one of the handlers here. A cold
//! start that fails (a missing variable, say) is logged and reported to the
//! Lambda runtime API by its message, which names what is wrong.
//!
//! The rules are compiled into the binary from `rules/` (cargo-lambda ships
//! only the binary), so a deployment always runs the rules it was built with.

pub mod emf;

use std::sync::Arc;
use std::time::Instant;

use aws_config::SdkConfig;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use lambda_http::{Body, Request, Response};
use lambda_runtime::LambdaEvent;
use leadflow_adapters::{DynamoStore, SnsNotifier};
use leadflow_api::{Api, ApiConfig, SourceSecrets};
use leadflow_app::{CleanupReport, Leadflow, Notifier, SlaReport, Store};
use leadflow_domain::RuleSet;
use leadflow_domain::rules::RuleSources;
use leadflow_web::{Web, WebConfig};
use thiserror::Error;
use tracing::{Instrument as _, error, info, warn};

/// The rule files, as built.
pub const RULES: [(&str, &str); 5] = [
    ("scoring.yaml", include_str!("../../../rules/scoring.yaml")),
    ("routing.yaml", include_str!("../../../rules/routing.yaml")),
    ("sla.yaml", include_str!("../../../rules/sla.yaml")),
    ("lifecycle.yaml", include_str!("../../../rules/lifecycle.yaml")),
    ("capture.yaml", include_str!("../../../rules/capture.yaml")),
];

/// Why a function could not start.
#[derive(Debug, Error)]
pub enum StartError {
    #[error("the environment variable {0} is not set")]
    Missing(&'static str),
    #[error("the compiled-in rules are not valid: {0}")]
    Rules(String),
    #[error("cannot read the SSM parameter {name}")]
    Secret {
        name: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{0}")]
    Invalid(String),
}

/// Where the `/events` secret comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Secret {
    /// `EVENTS_SECRET`: the secret itself (for local runs and tests).
    Value(String),
    /// `EVENTS_SECRET_PARAMETER`: an SSM Parameter Store name (a SecureString),
    /// read once at cold start.
    Parameter(String),
}

/// A function's configuration, from the environment.
#[derive(Clone, Debug)]
pub struct Config {
    /// `LEADS_TABLE`.
    pub table: String,
    /// `HANDOFF_TOPIC_ARN`.
    pub topic_arn: String,
    /// `EVENTS_SECRET` or `EVENTS_SECRET_PARAMETER` (score-update only; without
    /// either, `/events` refuses every request).
    pub secret: Option<Secret>,
    /// `ALLOWED_ORIGINS`: comma-separated origins for CORS and `_redirect`.
    pub allowed_origins: Vec<String>,
    /// `APP_SECRET`: what action links, sign-in links and sessions are
    /// signed with (at least 32 bytes), or `ssm:NAME` for an SSM SecureString.
    pub app_secret: Option<String>,
    /// `APP_URL`: the web app's address that links in notifications open, or
    /// `ssm:NAME` for a parameter holding it.
    pub app_url: Option<String>,
    /// `ACTION_LINK_DAYS`: how long an action link works (default 7).
    pub action_link_days: u16,
}

impl Config {
    /// Reads the configuration through `var` (`std::env::var` in the functions).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Config, StartError> {
        let need = |name: &'static str| var(name).filter(|v| !v.is_empty()).ok_or(StartError::Missing(name));
        let secret = match (var("EVENTS_SECRET"), var("EVENTS_SECRET_PARAMETER")) {
            (Some(v), _) if !v.is_empty() => Some(Secret::Value(v)),
            (_, Some(p)) if !p.is_empty() => Some(Secret::Parameter(p)),
            _ => None,
        };
        let allowed_origins = var("ALLOWED_ORIGINS")
            .map(|list| list.split(',').map(str::trim).filter(|o| !o.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default();
        let action_link_days = match var("ACTION_LINK_DAYS").filter(|v| !v.is_empty()) {
            None => 7,
            Some(v) => v.parse().ok().filter(|d| (1..=90).contains(d)).ok_or_else(|| {
                StartError::Invalid(format!("ACTION_LINK_DAYS must be a number of days from 1 to 90, not `{v}`"))
            })?,
        };
        Ok(Config {
            table: need("LEADS_TABLE")?,
            topic_arn: need("HANDOFF_TOPIC_ARN")?,
            secret,
            allowed_origins,
            app_secret: var("APP_SECRET").filter(|v| !v.is_empty()),
            app_url: var("APP_URL").filter(|v| !v.is_empty()),
            action_link_days,
        })
    }

    pub fn from_env() -> Result<Config, StartError> {
        Config::from_vars(|name| std::env::var(name).ok())
    }
}

/// The rules compiled into the binary.
pub fn rules() -> Result<RuleSet, StartError> {
    RuleSet::load(&RuleSources::from_texts(RULES)).map_err(|d| StartError::Rules(d.to_string()))
}

pub type Service = Leadflow<DynamoStore, SnsNotifier>;

/// The service on DynamoDB and SNS, with clients built from `sdk`, and the
/// web app's configuration when `APP_SECRET` and `APP_URL` are set (then
/// notifications carry action links).
pub async fn service(config: &Config, sdk: &SdkConfig) -> Result<(Arc<Service>, Option<WebConfig>), StartError> {
    let rules = Arc::new(rules()?);
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), &config.table);
    let notifier = SnsNotifier::new(aws_sdk_sns::Client::new(sdk), &config.topic_arn);
    let web = web_config(config, sdk).await?;
    if web.is_none() {
        warn!("APP_SECRET or APP_URL is not set: notifications carry no action links");
    }
    info!(rules_version = %rules.version, "rules and clients ready");
    let links = web.as_ref().map(|w| w.links.clone());
    let metrics = Arc::new(emf::Emf::from_env());
    Ok((Arc::new(Leadflow::new(rules, store, notifier).with_links(links).with_metrics(metrics)), web))
}

/// A value from the environment as it is, or from SSM when it is `ssm:NAME`.
async fn resolve(sdk: &SdkConfig, value: &str) -> Result<String, StartError> {
    match value.strip_prefix("ssm:") {
        Some(name) => parameter(sdk, name).await,
        None => Ok(value.to_owned()),
    }
}

/// The web app's secret and address, read once at cold start.
pub async fn web_config(config: &Config, sdk: &SdkConfig) -> Result<Option<WebConfig>, StartError> {
    let (Some(secret), Some(url)) = (&config.app_secret, &config.app_url) else {
        return Ok(None);
    };
    let secret = resolve(sdk, secret).await?;
    let url = resolve(sdk, url).await?;
    if !url.starts_with("https://") && !url.starts_with("http://") {
        return Err(StartError::Invalid(format!("APP_URL must be an https:// address, not `{url}`")));
    }
    let ttl = chrono::Duration::days(i64::from(config.action_link_days));
    WebConfig::new(secret.as_bytes(), &url, ttl).map(Some).map_err(|e| StartError::Invalid(format!("APP_SECRET: {e}")))
}

/// An SSM SecureString, read once at cold start.
async fn parameter(sdk: &SdkConfig, name: &str) -> Result<String, StartError> {
    let ssm = aws_sdk_ssm::Client::new(sdk);
    let r = ssm
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| StartError::Secret { name: name.to_owned(), source: Box::new(e) })?;
    Ok(r.parameter.and_then(|p| p.value).unwrap_or_default())
}

/// The HTTP API for the HTTP functions: the service, the events secret, and
/// the secrets of the sources that authenticate (`auth:` in `capture.yaml`):
/// each from the environment variable its `auth` names, whose value is the
/// secret or `ssm:NAME` for an SSM SecureString. A source whose variable is
/// not set is logged by name and refuses every post until it is; the other
/// sources go on taking leads.
pub async fn api(config: &Config, sdk: &SdkConfig) -> Result<Api<DynamoStore, SnsNotifier>, StartError> {
    let (service, _) = service(config, sdk).await?;
    let events_secret = match &config.secret {
        Some(Secret::Value(v)) => v.clone().into_bytes(),
        Some(Secret::Parameter(name)) => parameter(sdk, name).await?.into_bytes(),
        // Without a secret the API refuses every event (form-submission needs none).
        None => Vec::new(),
    };
    let (from_env, missing) = SourceSecrets::load(&service.rules.capture, |name| std::env::var(name).ok());
    for m in &missing {
        error!(source_name = %m.source_name, variable = %m.variable, "{m}; that source refuses every post");
    }
    let mut secrets = std::collections::BTreeMap::new();
    for (source, value) in from_env.into_map() {
        let value = match std::str::from_utf8(&value).ok().and_then(|v| v.strip_prefix("ssm:")) {
            Some(name) => parameter(sdk, name).await?.into_bytes(),
            None => value,
        };
        secrets.insert(source, value);
    }
    let config = ApiConfig {
        events_secret,
        allowed_origins: config.allowed_origins.clone(),
        source_secrets: SourceSecrets::from_map(secrets),
    };
    Ok(Api::new(service, config))
}

/// The scheduled functions' cold start: configuration from the environment,
/// then the service.
pub async fn service_from_env() -> Result<Arc<Service>, StartError> {
    let config = Config::from_env()?;
    Ok(service(&config, &sdk_config()).await?.0)
}

/// The web app's cold start: it needs `APP_SECRET` and `APP_URL`.
pub async fn web(config: &Config, sdk: &SdkConfig) -> Result<Web<DynamoStore, SnsNotifier>, StartError> {
    if config.app_secret.is_none() {
        return Err(StartError::Missing("APP_SECRET"));
    }
    if config.app_url.is_none() {
        return Err(StartError::Missing("APP_URL"));
    }
    let (service, web) = service(config, sdk).await?;
    let web = web.ok_or(StartError::Missing("APP_SECRET"))?;
    Ok(Web::new(service, web))
}

pub async fn web_from_env() -> Result<Web<DynamoStore, SnsNotifier>, StartError> {
    let config = Config::from_env()?;
    web(&config, &sdk_config()).await
}

/// The HTTP functions' cold start: configuration from the environment, then the
/// service and the API.
pub async fn api_from_env() -> Result<Api<DynamoStore, SnsNotifier>, StartError> {
    let config = Config::from_env()?;
    api(&config, &sdk_config()).await
}

/// Runs a function's cold start, `init`, and logs how long it took (`init_ms`).
/// A failure is logged, reported to the Lambda runtime API
/// (`/runtime/init/error`, so the Init phase fails with its message) and
/// returned, which ends the process.
pub async fn start<T>(init: impl Future<Output = Result<T, StartError>>) -> Result<T, StartError> {
    let started = Instant::now();
    match init.await {
        Ok(ready) => {
            info!(init_ms = started.elapsed().as_secs_f64() * 1000.0, "cold start done");
            Ok(ready)
        }
        Err(e) => {
            error!(error = %e, "cold start failed");
            report_init_error(&e).await;
            Err(e)
        }
    }
}

/// Tells the runtime API (`AWS_LAMBDA_RUNTIME_API`) why the cold start failed.
/// A report that cannot be delivered is logged; the process ends either way.
async fn report_init_error(e: &StartError) {
    let Some(api) = std::env::var("AWS_LAMBDA_RUNTIME_API").ok().and_then(|a| a.parse::<http::Uri>().ok()) else {
        warn!("AWS_LAMBDA_RUNTIME_API is not set; the start failure is only logged");
        return;
    };
    let diagnostic =
        lambda_runtime::Diagnostic { error_type: "Runtime.InitError".to_owned(), error_message: e.to_string() };
    let sent = async {
        let body = serde_json::to_vec(&diagnostic)?;
        let request = lambda_runtime_api_client::build_request()
            .method(http::Method::POST)
            .uri("/2018-06-01/runtime/init/error")
            .header("lambda-runtime-function-error-type", "Runtime.InitError")
            .body(lambda_runtime_api_client::body::Body::from(body))?;
        let client = lambda_runtime_api_client::PooledClient::builder().with_endpoint(api).build();
        let response = client.call(request).await?;
        if !response.status().is_success() {
            return Err(format!("the runtime API answered {}", response.status()).into());
        }
        Ok::<(), lambda_runtime::Error>(())
    };
    if let Err(report) = sent.await {
        warn!(error = %report, "the start failure could not be reported to the runtime API");
    }
}

/// JSON logs for CloudWatch, filtered by `RUST_LOG` (default `info`).
pub fn init_tracing() {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = log_filter(std::env::var("RUST_LOG").ok().as_deref());
    let logs = tracing_subscriber::fmt::layer().json().with_current_span(false).without_time().with_target(false);
    let _ = tracing_subscriber::registry().with(logs).with(filter).try_init();
}

/// The filter `RUST_LOG` names: a level (`debug`) and `target=level` pairs
/// separated by commas (`info,aws_smithy_runtime=debug`). Anything else, or
/// nothing, is `info`: a function never starts without its logs.
fn log_filter(spec: Option<&str>) -> tracing_subscriber::filter::Targets {
    let info = || tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO);
    let level =
        |s: &str| ["trace", "debug", "info", "warn", "error", "off"].iter().any(|l| l.eq_ignore_ascii_case(s.trim()));
    let target = |s: &str| {
        let s = s.trim();
        !s.is_empty()
            && s.split("::")
                .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
    };
    // `Targets` reads more than this (and reads some nonsense as a filter
    // that lets nothing through), so the spec is checked first.
    let readable = |spec: &str| {
        spec.split(',').all(|directive| match directive.split_once('=') {
            Some((name, lvl)) => target(name) && level(lvl),
            None => level(directive),
        })
    };
    match spec.map(str::trim).filter(|s| !s.is_empty() && readable(s)) {
        Some(spec) => {
            let tidy: Vec<String> =
                spec.split(',').map(|d| d.split('=').map(str::trim).collect::<Vec<_>>().join("=")).collect();
            tidy.join(",").parse().unwrap_or_else(|_| info())
        }
        None => info(),
    }
}

/// An API Gateway HTTP API request (payload 2.0), answered by the API.
pub async fn http<S: Store, N: Notifier>(
    api: &Api<S, N>,
    request: Request,
) -> Result<Response<Body>, lambda_http::Error> {
    let span = rules_span(&api.service);
    Ok(to_lambda(api.handle(from_lambda(request), Utc::now()).instrument(span).await))
}

/// An API Gateway HTTP API request (payload 2.0) to the web app. Cookies
/// arrive in the `cookie` header and `Set-Cookie` leaves as the payload's
/// `cookies` (both by `lambda_http`).
pub async fn web_http<S: Store, N: Notifier>(
    web: &Web<S, N>,
    request: Request,
) -> Result<Response<Body>, lambda_http::Error> {
    let span = rules_span(&web.service);
    Ok(to_lambda(web.handle(from_lambda(request), Utc::now()).instrument(span).await))
}

fn from_lambda(request: Request) -> http::Request<bytes::Bytes> {
    let (parts, body) = request.into_parts();
    let bytes = match body {
        Body::Empty => bytes::Bytes::new(),
        Body::Text(t) => bytes::Bytes::from(t),
        Body::Binary(b) => bytes::Bytes::from(b),
        _ => bytes::Bytes::new(),
    };
    http::Request::from_parts(parts, bytes)
}

fn to_lambda(response: http::Response<String>) -> Response<Body> {
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, Body::Text(body))
}

/// The span each invocation runs in: every log line it writes names the
/// version of the rules it decided under (`spans[].rules_version`).
fn rules_span<S, N>(service: &Leadflow<S, N>) -> tracing::Span {
    tracing::info_span!("rules", rules_version = %service.rules.version)
}

/// "Now" for a scheduled run: the schedule event's time.
fn scheduled_at(event: &EventBridgeEvent) -> DateTime<Utc> {
    event.time.unwrap_or_else(|| {
        warn!("the schedule event has no time; using the clock");
        Utc::now()
    })
}

/// The SLA check, at the schedule event's time.
pub async fn sla_check<S: Store, N: Notifier>(
    service: &Leadflow<S, N>,
    event: LambdaEvent<EventBridgeEvent>,
) -> Result<SlaReport, lambda_runtime::Error> {
    Ok(service.sla_check(scheduled_at(&event.payload)).instrument(rules_span(service)).await?)
}

/// The nightly clean-up, at the schedule event's time.
pub async fn cleanup<S: Store, N: Notifier>(
    service: &Leadflow<S, N>,
    event: LambdaEvent<EventBridgeEvent>,
) -> Result<CleanupReport, lambda_runtime::Error> {
    Ok(service.cleanup(scheduled_at(&event.payload)).instrument(rules_span(service)).await?)
}

/// The AWS SDK's configuration from the Lambda environment (region,
/// credentials, and `AWS_ENDPOINT_URL` for an emulator).
pub fn sdk_config() -> SdkConfig {
    leadflow_adapters::aws_from_lambda_env()
}

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::log_filter;

    #[test]
    fn rust_log_sets_the_level_and_per_target_levels() {
        let debug = log_filter(Some("debug"));
        assert!(debug.would_enable("leadflow_app", &Level::DEBUG));
        assert!(!debug.would_enable("leadflow_app", &Level::TRACE));

        let mixed = log_filter(Some(" warn , aws_smithy_runtime = debug "));
        assert!(mixed.would_enable("aws_smithy_runtime::client", &Level::DEBUG));
        assert!(!mixed.would_enable("leadflow_app", &Level::INFO));
        assert!(mixed.would_enable("leadflow_app", &Level::WARN));
    }

    #[test]
    fn no_or_unreadable_rust_log_is_info() {
        for spec in [None, Some(""), Some("  "), Some("loud!!="), Some("x=not-a-level"), Some("=debug"), Some("info,")]
        {
            let filter = log_filter(spec);
            assert!(filter.would_enable("leadflow_app", &Level::INFO), "{spec:?}");
            assert!(!filter.would_enable("leadflow_app", &Level::DEBUG), "{spec:?}");
        }
    }
}
