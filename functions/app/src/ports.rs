//! The small traits the service is written against. The DynamoDB store and the
//! embedded store implement the storage traits with the same semantics, and one
//! conformance suite (tests/integration/conformance.rs) holds both to them.

use std::collections::BTreeMap;
use std::future::Future;

use chrono::{DateTime, Utc};
use leadflow_domain::lead::FieldTarget;
use leadflow_domain::rules::routing::Workload;
use leadflow_domain::{HistoryEntry, Lead, LeadId, Notification, Pending, Profile, Status};
use thiserror::Error;

/// A store that could not do what it was asked. The source is kept for the logs.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("the store is unavailable: {message}")]
    Unavailable {
        message: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    #[error("a stored item could not be read: {0}")]
    Corrupt(String),
}

impl StoreError {
    pub fn unavailable(message: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Unavailable { message: message.into(), source: Some(Box::new(source)) }
    }
}

/// Why a change was not saved.
#[derive(Debug, Error)]
pub enum SaveError {
    /// The lead changed since it was read: its version is no longer the expected one.
    #[error("the lead changed since it was read")]
    LeadChanged,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The result of a capture's atomic write.
#[derive(Clone, Debug)]
pub struct Captured {
    /// The lead after the write.
    pub lead: Lead,
    /// Whether this capture created it.
    pub created: bool,
}

/// Everything that changes with one decision about a lead, saved atomically:
/// the lead (only if its version is still `expected_version`), its history
/// entries, the notifications it causes, and for an assignment the reps'
/// open-lead counts, the account's owner and any positions the pool's turn
/// counter moves past unavailable members.
#[derive(Clone, Debug)]
pub struct Change {
    /// The new state; its `version` must be `expected_version + 1`.
    pub lead: Lead,
    pub expected_version: u64,
    pub history: Vec<HistoryEntry>,
    pub outbox: Vec<Pending>,
    /// For a round-robin or weighted assignment that passed over unavailable
    /// members: the pool, and how many positions its turn counter moves on
    /// beyond the turn taken (see [`Team::take_turn`]).
    pub skip: Option<(String, u64)>,
    /// Open-lead count changes by rep id.
    pub load: Vec<(String, i64)>,
    /// A company email domain and the rep who now owns it (for `account_match`).
    pub account: Option<(String, String)>,
}

impl Change {
    pub fn of(lead: Lead, expected_version: u64) -> Change {
        Change {
            lead,
            expected_version,
            history: Vec::new(),
            outbox: Vec::new(),
            skip: None,
            load: Vec::new(),
            account: None,
        }
    }
}

/// Which leads to list.
#[derive(Clone, Debug, Default)]
pub struct LeadFilter {
    pub status: Option<Status>,
    pub owner: Option<String>,
}

/// Leads: create-or-update by email, atomic event counts, and conditional saves.
pub trait Leads: Send + Sync {
    /// Creates the lead of `incoming.email` or merges `incoming` into it (a field
    /// for which `keep_first` holds keeps a stored value; other present fields
    /// replace), counts one `form_submission` and marks activity at `at`, in
    /// one atomic write. Concurrent captures of one email never lose a field.
    fn capture(
        &self,
        incoming: &Profile,
        keep_first: &[FieldTarget],
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<Captured, StoreError>> + Send;

    /// Adds event counts to a lead in one atomic write (see `Lead::count_events`);
    /// `None` when there is no such lead.
    fn record_events(
        &self,
        id: &LeadId,
        counts: &[(String, u32)],
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<Lead>, StoreError>> + Send;

    /// The lead as last written (a strongly consistent read).
    fn get(&self, id: &LeadId) -> impl Future<Output = Result<Option<Lead>, StoreError>> + Send;

    /// Saves a change atomically, or nothing.
    fn save(&self, change: &Change) -> impl Future<Output = Result<(), SaveError>> + Send;

    /// Leads whose SLA check is due at `now` (`sla_due <= now`), earliest first.
    fn sla_due(&self, now: DateTime<Utc>, limit: usize) -> impl Future<Output = Result<Vec<Lead>, StoreError>> + Send;

    /// Open leads whose idleness matters at `now` (`hygiene_at <= now`), earliest first.
    fn hygiene_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Lead>, StoreError>> + Send;

    /// Every lead that matches, newest first.
    fn list(&self, filter: &LeadFilter) -> impl Future<Output = Result<Vec<Lead>, StoreError>> + Send;
}

/// What routing reads about the team, in one read: open-lead counts and the
/// owner of a company's other leads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TeamState {
    pub open: BTreeMap<String, u32>,
    pub account_owner: Option<String>,
}

impl Workload for TeamState {
    fn open_leads(&self, rep: &str) -> u32 {
        self.open.get(rep).copied().unwrap_or(0)
    }
}

/// Per-rep open-lead counts, account owners, and one turn counter per pool.
///
/// Counts and owners change only inside a [`Change`], with the assignment that
/// moves them. A round-robin assignment first takes a turn: the counter is
/// advanced atomically, so concurrent assignments to one pool each get their own
/// position in its cycle and never wait for each other.
pub trait Team: Send + Sync {
    fn team_state(
        &self,
        reps: &[&str],
        account: Option<&str>,
    ) -> impl Future<Output = Result<TeamState, StoreError>> + Send;

    /// Advances the pool's turn counter by one, atomically, and returns the
    /// position it was at (0 for a pool that has never assigned).
    fn take_turn(&self, pool: &str) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// A lead's events and decisions.
pub trait History: Send + Sync {
    /// Adds entries outside a change (events whose derived change was superseded).
    fn append(&self, id: &LeadId, entries: &[HistoryEntry]) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The whole history, oldest first.
    fn history(&self, id: &LeadId) -> impl Future<Output = Result<Vec<HistoryEntry>, StoreError>> + Send;
}

/// Notifications saved with the change that caused them, waiting to be published.
pub trait Outbox: Send + Sync {
    /// Pending notifications whose lease has run out at `now`.
    fn due_notifications(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Pending>, StoreError>> + Send;

    /// Takes a pending notification for publishing until `lease_until`; false when
    /// someone else took it first or it was sent.
    fn claim(
        &self,
        pending: &Pending,
        lease_until: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Records that a notification was published; it is never published again.
    fn mark_sent(
        &self,
        notification: &Notification,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// All the storage the service needs.
pub trait Store: Leads + Team + History + Outbox {}
impl<T: Leads + Team + History + Outbox> Store for T {}

/// A notification that could not be published; it stays pending.
#[derive(Debug, Error)]
#[error("publishing failed: {message}")]
pub struct NotifyError {
    pub message: String,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl NotifyError {
    pub fn new(message: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        NotifyError { message: message.into(), source: Some(Box::new(source)) }
    }
}

/// Publishes notifications to reps.
pub trait Notifier: Send + Sync {
    fn publish(&self, notification: &Notification) -> impl Future<Output = Result<(), NotifyError>> + Send;
}
