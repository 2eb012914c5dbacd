//! leadflow's adapters behind the service's traits: the embedded store
//! (SQLite) and the `log:PATH` notifier for running on one machine, and the
//! DynamoDB store and SNS notifier for AWS.

pub mod dynamodb;
pub mod embedded;
pub mod https;
pub mod log;
pub mod sns;
pub mod table;

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::identity::IdentityCache;
use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, ConfigLoader, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_async::rt::sleep::default_async_sleep;
use aws_smithy_async::time::SharedTimeSource;
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// HTTP/1.1 over rustls on ring, for every AWS client leadflow builds.
fn https() -> SharedHttpClient {
    https::client()
}

/// The AWS SDK's configuration loader with its whole default chain (profiles,
/// SSO, instance metadata, STS): for the CLI, which runs wherever people work.
pub fn aws_defaults() -> ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest()).http_client(https())
}

/// The AWS SDK's configuration from what Lambda puts in a function's
/// environment: `AWS_REGION`, the execution role's `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`, and `AWS_ENDPOINT_URL`
/// for an emulator. None of the default chain's sources (profile files, SSO,
/// instance metadata, STS) can apply inside Lambda, and leaving them out
/// leaves their code out of the functions' bootstraps.
pub fn aws_from_lambda_env() -> SdkConfig {
    let var = |name: &str| std::env::var(name).ok().filter(|value| !value.trim().is_empty());
    let mut config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .credentials_provider(SharedCredentialsProvider::new(EnvironmentVariableCredentialsProvider::new()))
        .identity_cache(IdentityCache::lazy().build())
        .retry_config(RetryConfig::standard())
        .time_source(SharedTimeSource::default())
        .http_client(https());
    config.set_region(var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")).map(Region::new));
    config.set_endpoint_url(var("AWS_ENDPOINT_URL"));
    config.set_sleep_impl(default_async_sleep());
    config.build()
}

pub use dynamodb::{DynamoStore, Usage};
pub use embedded::EmbeddedStore;
pub use log::LogNotifier;
pub use sns::SnsNotifier;
