//! leadflow's adapters behind the service's traits: the embedded store
//! (SQLite) and the `log:PATH` notifier for running on one machine, and the
//! DynamoDB store and SNS notifier for AWS.

pub mod dynamodb;
pub mod embedded;
pub mod log;
pub mod sns;
pub mod table;

use aws_config::{BehaviorVersion, ConfigLoader};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

/// The AWS SDK's configuration loader, over HTTPS with rustls on ring: every
/// client leadflow builds (the functions', the CLI's) starts here.
pub fn aws_defaults() -> ConfigLoader {
    let https = aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https();
    aws_config::defaults(BehaviorVersion::latest()).http_client(https)
}

pub use dynamodb::{DynamoStore, Usage};
pub use embedded::EmbeddedStore;
pub use log::LogNotifier;
pub use sns::SnsNotifier;
