//! leadflow's adapters behind the service's traits: the embedded store
//! (SQLite) and the `log:PATH` notifier for running on one machine, and the
//! DynamoDB store and SNS notifier for AWS.

pub mod dynamodb;
pub mod embedded;
pub mod log;
pub mod sns;
pub mod table;

pub use dynamodb::{DynamoStore, Usage};
pub use embedded::EmbeddedStore;
pub use log::LogNotifier;
pub use sns::SnsNotifier;
