//! leadflow's service: the small traits the stores and notifiers implement, and
//! the commands written once against them. Each command reads, asks the
//! domain's state machine, saves the decision in one write and delivers. No
//! AWS and no clock: every command takes "now".

pub mod ports;
pub mod service;

pub use leadflow_domain::TeamState;
pub use ports::{
    Change, Direct, EventMark, EventResult, History, LeadFilter, Leads, Metrics, Nonces, Notifier, NotifyError, Outbox,
    Rollup, RollupRead, Rollups, SaveError, Snapshot, Store, StoreError, SweepState, Team,
};
pub use service::{
    CaptureOutcome, CleanupReport, Finding, Happening, ImportThen, Imported, Leadflow, Recorded, ServiceError,
    SlaReport, TeamError,
};
