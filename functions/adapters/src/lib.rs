//! leadflow's adapters behind the service's traits: the embedded store
//! (SQLite) and the `log:PATH` notifier for running on one machine, and the
//! DynamoDB store and SNS notifier for AWS.

pub mod embedded;
pub mod log;

pub use embedded::EmbeddedStore;
pub use log::LogNotifier;
