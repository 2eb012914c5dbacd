//! The small traits the service is written against. The DynamoDB store and the
//! embedded store implement the storage traits with the same semantics, and one
//! conformance suite (tests/integration/conformance.rs) holds both to them.

use std::future::Future;

use chrono::NaiveDate;
use chrono::{DateTime, Utc};
use leadflow_domain::facts::{RollupKey, Tally};
use leadflow_domain::machine::TeamChanges;
use leadflow_domain::team::RepSettings;
use leadflow_domain::{Decision, HistoryEntry, Lead, LeadId, Notification, Pending, Queue, Status, TeamState};
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

/// Why a change was not saved. Nothing of it was.
#[derive(Debug, Error)]
pub enum SaveError {
    /// The lead changed since it was read: its version is no longer the expected one.
    #[error("the lead changed since it was read")]
    LeadChanged,
    /// An open-lead increment would take this rep past their capacity.
    #[error("rep `{rep}` is at capacity")]
    AtCapacity { rep: String },
    /// The event id was already recorded for this lead (a concurrent duplicate).
    #[error("event `{event_id}` was already applied")]
    Duplicate { event_id: String },
    /// Another write to one of the same items was in progress (DynamoDB's
    /// `TransactionConflict`); deciding again is safe.
    #[error("a concurrent write to the same items was in progress")]
    Conflict,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The answer recorded for an event with an id, returned for every repeat.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EventResult {
    pub lead_id: LeadId,
    pub status: Status,
    pub score: i64,
    pub tier: String,
    pub owner: Option<String>,
}

impl EventResult {
    pub fn of(lead: &Lead) -> EventResult {
        EventResult {
            lead_id: lead.id.clone(),
            status: lead.status,
            score: lead.score,
            tier: lead.tier.clone(),
            owner: lead.owner.clone(),
        }
    }
}

/// An event id recorded with the change that applied the event. It is saved
/// only if no unexpired record of the id exists (an expired one is replaced).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventMark {
    pub event_id: String,
    pub result: EventResult,
    /// When the record stops counting (and DynamoDB's TTL may delete it).
    pub expires_at: DateTime<Utc>,
    /// The time of the save: a record that expired by then is replaced.
    pub now: DateTime<Utc>,
}

/// Everything that changes with one decision about a lead, saved atomically:
/// the lead (only if its version is still `expected_version`; 0: only if it
/// does not exist), its history entries, the notifications it causes, the reps'
/// open-lead counts (each increment only while under its capacity), the pool's
/// turn counter, the account's owner, and the id of the event it applied
/// (only if not recorded yet).
#[derive(Clone, Debug)]
pub struct Change {
    /// The new state; its `version` must be `expected_version + 1`.
    pub lead: Lead,
    pub expected_version: u64,
    pub history: Vec<HistoryEntry>,
    pub outbox: Vec<Pending>,
    pub team: TeamChanges,
    pub event: Option<EventMark>,
    /// What the change adds to the daily roll-ups.
    pub rollup: Tally,
}

impl Change {
    pub fn of(lead: Lead, expected_version: u64) -> Change {
        Change {
            lead,
            expected_version,
            history: Vec::new(),
            outbox: Vec::new(),
            team: TeamChanges::default(),
            event: None,
            rollup: Tally::default(),
        }
    }

    pub fn from_decision(d: Decision, event: Option<EventMark>) -> Change {
        Change {
            lead: d.lead,
            expected_version: d.expected_version,
            history: d.history,
            outbox: d.outbox,
            team: d.team,
            event,
            rollup: d.rollup,
        }
    }
}

/// A lead as read for a decision, with the answer already recorded for the
/// event being applied (if it was).
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub lead: Option<Lead>,
    pub seen: Option<EventResult>,
}

/// Which leads to list.
#[derive(Clone, Debug, Default)]
pub struct LeadFilter {
    pub status: Option<Status>,
    pub owner: Option<String>,
}

/// Leads: one read and one conditional save per decision.
pub trait Leads: Send + Sync {
    /// The lead and, with `event_id`, the answer recorded for that event (unless
    /// it expired by `now`), in one strongly consistent read.
    fn read(
        &self,
        id: &LeadId,
        event_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Snapshot, StoreError>> + Send;

    /// The lead as last written (a strongly consistent read).
    fn get(&self, id: &LeadId) -> impl Future<Output = Result<Option<Lead>, StoreError>> + Send;

    /// Saves a change atomically, or nothing.
    fn save(&self, change: &Change) -> impl Future<Output = Result<(), SaveError>> + Send;

    /// [`Leads::read`] of several leads (an import's batch), in order; a store
    /// may read them in fewer round trips. By default one at a time.
    fn read_many(
        &self,
        keys: &[(LeadId, Option<String>)],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<Snapshot>, StoreError>> + Send {
        async move {
            let mut out = Vec::with_capacity(keys.len());
            for (id, event_id) in keys {
                out.push(self.read(id, event_id.as_deref(), now).await?);
            }
            Ok(out)
        }
    }

    /// Saves changes of different leads, each atomically or not at all, with
    /// the same conditions as [`Leads::save`]: one result per change, in order.
    /// A store may save several in one round trip. By default one at a time.
    fn save_many(&self, changes: &[Change]) -> impl Future<Output = Vec<Result<(), SaveError>>> + Send {
        async move {
            let mut out = Vec::with_capacity(changes.len());
            for change in changes {
                out.push(self.save(change).await);
            }
            out
        }
    }

    /// Leads whose SLA check is due at `now` (`sla_due <= now`), earliest first.
    fn sla_due(&self, now: DateTime<Utc>, limit: usize) -> impl Future<Output = Result<Vec<Lead>, StoreError>> + Send;

    /// Open leads whose idleness matters at `now` (`hygiene_at <= now`), earliest first.
    fn hygiene_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Lead>, StoreError>> + Send;

    /// The leads waiting in `queue` (see [`Lead::queue`]), at most `limit`,
    /// in the order a person works them ([`leadflow_domain::queue_order`]).
    /// Reads only that queue's leads.
    fn queue(&self, queue: Queue<'_>, limit: usize) -> impl Future<Output = Result<Vec<Lead>, StoreError>> + Send;

    /// Every lead that matches, newest first.
    fn list(&self, filter: &LeadFilter) -> impl Future<Output = Result<Vec<Lead>, StoreError>> + Send;

    /// One page of every lead, in the store's own order, from `after` (a page
    /// token this returned before; `None` for the first page): about `limit`
    /// leads and the next page's token, `None` after the last page.
    fn page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<(Vec<Lead>, Option<String>), StoreError>> + Send;

    /// Where the repair sweep of leads stored by older versions stands.
    fn sweep_state(&self) -> impl Future<Output = Result<SweepState, StoreError>> + Send;

    /// Records where the sweep stands.
    fn save_sweep_state(&self, state: &SweepState) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The repair sweep: which version of it finished last, and the page token of
/// the one under way; and the reps `routing.yaml` named at the last SLA check,
/// so that the leads of a rep removed since go back to their pools.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SweepState {
    pub done_version: u32,
    pub after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roster: Option<Vec<String>>,
}

/// Per-rep open-lead counts and runtime settings, account owners, and one
/// turn counter per pool.
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

    /// Sets a rep's open-lead count to `open` if it is still `expected`
    /// (`leadflow doctor --repair`, when the count disagrees with the leads);
    /// false when it moved meanwhile.
    fn set_open_leads(
        &self,
        rep: &str,
        expected: u32,
        open: u32,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Advances the pool's turn counter by one, atomically, and returns the
    /// position it was at (0 for a pool that has never assigned).
    fn take_turn(&self, pool: &str) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Replaces a rep's runtime settings with `next` (`None`: none, as
    /// `routing.yaml` says) if they are still `expected`; false when they
    /// changed meanwhile. The settings are read with the rep's open-lead
    /// count by [`Team::team_state`].
    fn set_rep_settings(
        &self,
        rep: &str,
        expected: Option<&RepSettings>,
        next: Option<&RepSettings>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// A lead's events and decisions.
pub trait History: Send + Sync {
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

    /// Moves a notification that failed its last allowed attempt to the dead
    /// letters: it is never retried, and stays listed.
    fn give_up(
        &self,
        notification: &Notification,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The dead letters, oldest first.
    fn dead_letters(&self) -> impl Future<Output = Result<Vec<Pending>, StoreError>> + Send;

    /// Records that a notification was published; it is never published again.
    fn mark_sent(
        &self,
        notification: &Notification,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Values that may be used once, such as a sign-in link.
pub trait Nonces: Send + Sync {
    /// Records `nonce` as used until `expires_at`: true the first time; false
    /// when it was used before and has not expired by `now`.
    fn spend(
        &self,
        nonce: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// All the storage the service needs.
/// One day's counts under one dimension value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rollup {
    pub key: RollupKey,
    pub counts: std::collections::BTreeMap<String, i64>,
}

/// Roll-ups as read, and what reading them took.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RollupRead {
    pub rollups: Vec<Rollup>,
    /// Items the store read (one per day and dimension value).
    pub items_read: u64,
    pub round_trips: u64,
    /// The read capacity the store reported (DynamoDB), 0 where it reports none.
    pub capacity_units: f64,
}

/// The daily roll-ups each save adds to (see [`Change::rollup`]).
pub trait Rollups: Send + Sync {
    /// The roll-ups of the days `from` to `to` (both included) of the
    /// dimension kinds named (`all`, `rep`, `pool`, `tier`, `source`): reads
    /// the items of those kinds per day and value, never a lead.
    fn rollups(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        kinds: &[&str],
    ) -> impl Future<Output = Result<RollupRead, StoreError>> + Send;
}

/// Where the service reports what it did, for monitoring (CloudWatch's
/// embedded metric format in the Lambdas). Called after the fact; it must
/// not fail or block.
pub trait Metrics: Send + Sync + std::fmt::Debug {
    /// A decision was saved, adding these counts to the roll-ups.
    fn decided(&self, tally: &Tally);
    /// Notifications that failed to publish (to be retried), and that became dead letters.
    fn delivery(&self, failed: usize, dead: usize);
    /// A request was refused, by the error code it was answered with.
    fn rejected(&self, code: &str);
}

pub trait Store: Leads + Team + History + Outbox + Nonces + Rollups {}
impl<T: Leads + Team + History + Outbox + Nonces + Rollups> Store for T {}

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

/// A message to one rep that is about no lead: a sign-in link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Direct {
    /// Unique per message, for consumers that deduplicate.
    pub id: String,
    /// What it is (`sign_in`); SNS carries it as the `kind` attribute.
    pub kind: &'static str,
    /// The rep it is for.
    pub to: String,
    pub subject: String,
    pub sms: String,
    pub email: String,
    pub created_at: DateTime<Utc>,
}

/// Publishes notifications to reps.
pub trait Notifier: Send + Sync {
    fn publish(&self, notification: &Notification) -> impl Future<Output = Result<(), NotifyError>> + Send;

    /// Sends a message to one rep, through the same channel and the rep's
    /// same subscriptions. Not kept in any outbox: the rep asks again.
    fn send(&self, message: &Direct) -> impl Future<Output = Result<(), NotifyError>> + Send;
}
