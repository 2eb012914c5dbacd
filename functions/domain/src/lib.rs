//! leadflow's domain: leads, the rule engine, lifecycle transitions and
//! explanations. No AWS, no Lambda, and no clock: every function that depends on
//! time takes it as an argument.

pub mod duration;
pub mod lead;
pub mod record;
pub mod rules;

pub use lead::{Bant, CountryCode, Email, FieldValue, Profile, Status};
pub use record::{HistoryEntry, HistoryKind, Lead, LeadId, Notification, NotificationKind, Pending, SlaClock};
pub use rules::{Diagnostic, Diagnostics, RuleError, RuleSet, RuleSources};
