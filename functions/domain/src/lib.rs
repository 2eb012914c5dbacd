//! leadflow's domain: leads, the rule engine, the lead's life as a state
//! machine, notifications and explanations. No AWS, no Lambda, and no clock:
//! every function that depends on time takes it as an argument.

pub mod country;
pub mod duration;
pub mod facts;
pub mod form;
pub mod formats;
pub mod import;
pub mod lead;
pub mod link;
pub mod machine;
pub mod message;
pub mod record;
pub mod report;
pub mod rules;
pub mod team;
pub mod zone;

pub use lead::{Bant, CountryCode, Email, FieldValue, Profile, Status};
pub use machine::{Access, Action, Decision, Input, Need, Outcome, Refusal, TeamState, access, decide};
pub use record::{
    HistoryEntry, Lead, LeadId, Notification, NotificationKind, Pending, Queue, Record, SlaClock, queue_order,
};
pub use rules::{Diagnostic, Diagnostics, RuleError, RuleSet, RuleSources};
