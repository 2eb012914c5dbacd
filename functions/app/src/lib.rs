//! leadflow's service: the small traits the stores and notifiers implement, and
//! the commands written once against them (capture, engagement, hand-off,
//! delivery, the SLA check and the nightly clean-up). No AWS and no clock: every
//! command takes "now".

pub mod message;
pub mod ports;
pub mod service;

pub use ports::{
    Captured, Change, History, LeadFilter, Leads, Notifier, NotifyError, Outbox, SaveError, Store, StoreError, Team,
    TeamState,
};
pub use service::{CaptureOutcome, CleanupReport, Leadflow, ServiceError, SlaReport};
