//! The service: orchestration only. Every command reads the lead, asks the
//! domain's state machine ([`leadflow_domain::decide`]) what happens, saves the
//! whole decision in one conditional write on the lead's version, then delivers
//! its notifications. The Lambdas, the local server and the CLI run exactly
//! this code with different adapters.
//!
//! A save that loses a race (the lead changed, a rep reached capacity, an event
//! id was recorded meanwhile, or DynamoDB cancelled the transaction for a
//! concurrent write) saved nothing: the service reads again and decides again,
//! a bounded number of times with jittered backoff, then answers
//! [`ServiceError::Busy`]. So a stored lead is never without its derived state,
//! and a computed hand-off is never dropped.

use std::sync::Arc;

use crate::Metrics;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use leadflow_domain::form::Warning;
use leadflow_domain::link::Links;
use leadflow_domain::machine::{DELIVERY_LEASE, Effect, problems};
use leadflow_domain::rules::lifecycle::SalesEvent;
use leadflow_domain::team::{self, RepSettings, TeamChange, TeamChangeError};
use leadflow_domain::{
    Action, Input, Lead, LeadId, Need, Notification, Outcome, Pending, Profile, Queue, Record, Refusal, RuleSet,
    Status, TeamState, decide,
};
use thiserror::Error;
use tracing::{info, warn};

use crate::ports::{Change, EventMark, EventResult, LeadFilter, Notifier, SaveError, Store, StoreError, SweepState};

/// The most attempts at a decision that keeps losing races on a lead.
pub const MAX_ATTEMPTS: u32 = 12;

/// How long an event id is remembered: a repeat within it changes nothing.
pub const EVENT_ID_RETENTION: chrono::Duration = chrono::Duration::days(7);

/// How long a form post counts as a repeat of an identical one: a double
/// click, or a client that resends after losing the answer, is one submission.
pub const FORM_REPEAT_WINDOW: chrono::Duration = chrono::Duration::minutes(10);

/// The id prefix of form posts (event ids from `/events` start `id:` or `sig:`).
const FORM_ID_PREFIX: &str = "form:";

/// How long an imported row is remembered: the same row imported again
/// within it (a re-run after an interruption) changes nothing.
pub const IMPORT_ID_RETENTION: chrono::Duration = chrono::Duration::days(90);

/// What happens to an imported lead after it is scored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportThen {
    /// Scored only; a lead at the hand-off tier is held until its next activity.
    Score,
    /// Routed and handed off as a captured lead would be; `notify` sends the
    /// hand-off messages (otherwise the lead is in its owner's queue, unannounced).
    Handoff { notify: bool },
}

/// What an imported row came to.
#[derive(Clone, Debug, PartialEq)]
pub enum Imported {
    /// A new lead.
    Created(Lead),
    /// Merged into a stored lead by the merge policy.
    Merged(Lead),
    /// This very row was imported before: nothing changed.
    Repeat,
}

/// The version of the repair sweep: the SLA check sweeps every lead once per
/// version, repairing what older versions of leadflow left broken.
pub const SWEEP_VERSION: u32 = 1;

/// Leads (DynamoDB: items) read per SLA check by the repair sweep.
pub const DEFAULT_SWEEP_PAGE: usize = 500;

/// The most unassigned leads the SLA check routes again per run.
pub const UNASSIGNED_PER_CHECK: usize = 500;

/// How many times a notification is tried before it goes to the dead letters.
pub const DEFAULT_MAX_DELIVERIES: u32 = 8;

#[derive(Debug, Error)]
pub enum ServiceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The rules do not allow this change (a sales event the lead's status does
    /// not take, a disqualification reason not in the list, an event from the future).
    #[error(transparent)]
    Refused(Refusal),
    #[error("the lead kept changing while this change was saved; try again")]
    Busy,
}

/// Why a change to the team was not made.
#[derive(Debug, Error)]
pub enum TeamError {
    #[error("there is no rep `{0}` in routing.yaml")]
    UnknownRep(String),
    #[error(transparent)]
    Invalid(#[from] TeamChangeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the rep's settings kept changing; try again")]
    Busy,
}

/// leadflow's service: the rules, a store and a notifier.
#[derive(Debug)]
pub struct Leadflow<S, N> {
    pub rules: Arc<RuleSet>,
    pub store: S,
    pub notifier: N,
    /// Attempts at publishing a notification before it is a dead letter.
    pub max_deliveries: u32,
    /// Leads (DynamoDB: items) the repair sweep reads per SLA check.
    pub sweep_page: usize,
    /// Where notifications' action links point; without it notifications carry none.
    pub links: Option<Links>,
    /// Where what the service does is reported for monitoring, if anywhere.
    pub metrics: Option<Arc<dyn Metrics>>,
}

/// What a capture did.
#[derive(Clone, Debug)]
pub struct CaptureOutcome {
    pub lead: Lead,
    pub created: bool,
}

/// What an event did: the lead as it left it, or, for a repeat of an event id
/// already applied, the answer given the first time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    pub result: EventResult,
    pub repeat: bool,
}

/// An event about a lead, as the service takes it.
#[derive(Clone, Copy, Debug)]
pub enum Happening<'a> {
    Engagement(&'a [(String, u32)]),
    Sales(&'a SalesEvent),
}

/// What the SLA check did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SlaReport {
    pub leads_read: usize,
    pub leads_changed: usize,
    pub escalations: usize,
    pub reassignments: usize,
    pub notifications_retried: usize,
    pub notifications_failed: usize,
    /// Notifications that failed their last allowed attempt this run.
    pub dead_letters: usize,
    /// Leads whose change failed (a store error); they stay due for the next run.
    pub leads_failed: usize,
    /// Leads an older version left broken, repaired by the sweep.
    pub leads_repaired: usize,
    /// Unassigned leads handed off now that someone is available.
    pub unassigned_routed: usize,
    /// Unassigned leads still waiting that the managers were reminded of.
    pub unassigned_reminders: usize,
}

/// What the nightly clean-up did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CleanupReport {
    pub leads_read: usize,
    pub leads_changed: usize,
    pub rescored: usize,
    pub dormant: usize,
    /// Leads whose change failed (a store error); they stay due for the next run.
    pub leads_failed: usize,
}

/// One broken invariant found by [`Leadflow::doctor`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// `lead`, `rep`, `outbox` or `history`.
    pub subject: &'static str,
    /// The lead id, rep id or notification id.
    pub id: String,
    pub problem: String,
    pub repaired: bool,
}

/// What an applied event came to, as [`Leadflow::record`] and [`Leadflow::act`] answer.
fn recorded(applied: Result<Applied, ServiceError>) -> Result<Option<Recorded>, ServiceError> {
    match applied {
        Ok(Applied::Changed(change, ..)) => Ok(Some(Recorded { result: EventResult::of(&change.lead), repeat: false })),
        Ok(Applied::Repeat(result, _)) => Ok(Some(Recorded { result, repeat: true })),
        Ok(Applied::Unchanged(lead)) => Ok(lead.map(|l| Recorded { result: EventResult::of(&l), repeat: false })),
        Err(ServiceError::Refused(Refusal::UnknownLead)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The record of an event id, saved with the change that applied it, for as
/// long as a repeat of its kind must change nothing.
fn mark(event_id: &str, lead: &Lead, now: DateTime<Utc>) -> EventMark {
    let keep = if event_id.starts_with(FORM_ID_PREFIX) {
        FORM_REPEAT_WINDOW
    } else if event_id.starts_with(leadflow_domain::import::IMPORT_ID_PREFIX) {
        IMPORT_ID_RETENTION
    } else {
        EVENT_ID_RETENTION
    };
    EventMark { event_id: event_id.to_owned(), result: EventResult::of(lead), expires_at: now + keep, now }
}

/// What a decision came to.
enum Applied {
    /// The change saved, what it did, and how many of its notifications failed to publish.
    Changed(Box<Change>, Effect, usize),
    Unchanged(Option<Lead>),
    /// The event id was applied before: its first answer, and the lead as it is now.
    Repeat(EventResult, Option<Lead>),
}

impl<S: Clone, N: Clone> Leadflow<S, N> {
    /// The same service under other rules: the same store, notifier, links
    /// and settings (what `leadflow serve` runs after reloading the rules).
    pub fn with_rules(&self, rules: Arc<RuleSet>) -> Self {
        Leadflow {
            rules,
            store: self.store.clone(),
            notifier: self.notifier.clone(),
            max_deliveries: self.max_deliveries,
            sweep_page: self.sweep_page,
            links: self.links.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

impl<S: Store, N: Notifier> Leadflow<S, N> {
    pub fn new(rules: Arc<RuleSet>, store: S, notifier: N) -> Self {
        Leadflow {
            rules,
            store,
            notifier,
            max_deliveries: DEFAULT_MAX_DELIVERIES,
            sweep_page: DEFAULT_SWEEP_PAGE,
            links: None,
            metrics: None,
        }
    }

    /// Reports what the service does to `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<dyn Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// A saved decision's counts, to the metrics.
    fn observe(&self, change: &Change) {
        if let Some(m) = &self.metrics {
            m.decided(&change.rollup);
        }
    }

    /// Notifications carry action links made with `links` (none without).
    pub fn with_links(mut self, links: Option<Links>) -> Self {
        self.links = links;
        self
    }

    /// Captures a lead: create-or-update by email, score, route and hand off,
    /// in one write.
    /// An identical post within [`FORM_REPEAT_WINDOW`] is the same submission:
    /// it changes nothing and answers with the lead as it is.
    pub async fn capture(
        &self,
        profile: Profile,
        warnings: &[Warning],
        now: DateTime<Utc>,
    ) -> Result<CaptureOutcome, ServiceError> {
        let id = LeadId::for_email(&profile.email);
        let form_id = form_id(&profile);
        match self.apply(&id, &Input::FormPost { profile: &profile, warnings }, Some(&form_id), None, now).await? {
            Applied::Changed(change, effect, _) => Ok(CaptureOutcome { lead: change.lead, created: effect.created }),
            Applied::Repeat(_, Some(lead)) | Applied::Unchanged(Some(lead)) => {
                Ok(CaptureOutcome { lead, created: false })
            }
            Applied::Repeat(_, None) | Applied::Unchanged(None) => Err(ServiceError::Busy),
        }
    }

    /// Imports one row of a file at `now`: create or merge by email, with the
    /// row's own dates and counts, scored, then as `then` says, in one write.
    /// The same row imported again changes nothing.
    pub async fn import(
        &self,
        row: &leadflow_domain::import::ImportRow,
        then: ImportThen,
        now: DateTime<Utc>,
    ) -> Result<Imported, ServiceError> {
        let id = LeadId::for_email(&row.profile.email);
        let import_id = row.import_id();
        let (handoff, notify) = match then {
            ImportThen::Score => (false, false),
            ImportThen::Handoff { notify } => (true, notify),
        };
        match self.apply(&id, &Input::Import { row, handoff, notify }, Some(&import_id), None, now).await? {
            Applied::Changed(change, effect, _) if effect.created => Ok(Imported::Created(change.lead)),
            Applied::Changed(change, ..) => Ok(Imported::Merged(change.lead)),
            Applied::Repeat(..) => Ok(Imported::Repeat),
            Applied::Unchanged(_) => Err(ServiceError::Busy),
        }
    }

    /// Imports rows of different leads at once: one read and one save for
    /// the batch where the store can (DynamoDB: BatchGetItem, and
    /// TransactWriteItems holding several leads, each under its own
    /// conditions). A row whose save lost a race is imported again on its own,
    /// as [`Leadflow::import`] does. Hand-offs (which take team reads and pool
    /// turns) are imported one at a time. One result per row, in order.
    pub async fn import_many(
        &self,
        rows: &[&leadflow_domain::import::ImportRow],
        then: ImportThen,
        now: DateTime<Utc>,
    ) -> Result<Vec<Result<Imported, ServiceError>>, ServiceError> {
        let mut results: Vec<Option<Result<Imported, ServiceError>>> = Vec::with_capacity(rows.len());
        if matches!(then, ImportThen::Handoff { .. }) {
            for row in rows {
                results.push(Some(self.import(row, then, now).await));
            }
            return Ok(results.into_iter().flatten().collect());
        }
        let keys: Vec<(LeadId, Option<String>)> =
            rows.iter().map(|r| (LeadId::for_email(&r.profile.email), Some(r.import_id()))).collect();
        let snapshots = self.store.read_many(&keys, now).await?;
        let mut changes = Vec::new();
        let mut saving = Vec::new();
        for (i, (row, snapshot)) in rows.iter().zip(snapshots).enumerate() {
            if snapshot.seen.is_some() {
                results.push(Some(Ok(Imported::Repeat)));
                continue;
            }
            let input = Input::Import { row, handoff: false, notify: false };
            match decide(&self.rules, snapshot.lead.as_ref(), &input, None, now) {
                Ok(Outcome::Decided(d)) => {
                    let created = d.effect.created;
                    let mark = mark(keys[i].1.as_deref().unwrap_or_default(), &d.lead, now);
                    changes.push(Change::from_decision(*d, Some(mark)));
                    saving.push((i, created));
                    results.push(None);
                }
                Ok(Outcome::Unchanged | Outcome::Needs(_)) => results.push(Some(self.import(row, then, now).await)),
                Err(refusal) => results.push(Some(Err(ServiceError::Refused(refusal)))),
            }
        }
        let saved = self.store.save_many(&changes).await;
        for ((i, created), (change, result)) in saving.into_iter().zip(changes.into_iter().zip(saved)) {
            if result.is_ok() {
                self.observe(&change);
            }
            results[i] = Some(match result {
                Ok(()) if created => Ok(Imported::Created(change.lead)),
                Ok(()) => Ok(Imported::Merged(change.lead)),
                Err(SaveError::Store(e)) => Err(e.into()),
                // Lost a race: decided again on its own, with retries.
                Err(_) => self.import(rows[i], then, now).await,
            });
        }
        Ok(results.into_iter().flatten().collect())
    }

    /// Whether a lead is stored under `id` (what an import's dry run needs).
    pub async fn stored(&self, id: &LeadId, now: DateTime<Utc>) -> Result<bool, ServiceError> {
        Ok(self.store.read(id, None, now).await?.lead.is_some())
    }

    /// Applies an event about a lead that happened at `happened_at` and reached
    /// leadflow at `now`. With an `event_id`, a repeat returns the first answer
    /// and changes nothing. `None`: no such lead.
    pub async fn record(
        &self,
        id: &LeadId,
        what: Happening<'_>,
        happened_at: DateTime<Utc>,
        event_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Option<Recorded>, ServiceError> {
        let input = match what {
            Happening::Engagement(counts) => Input::Engagement { counts, happened_at, event_id },
            Happening::Sales(event) => Input::Sales { event, happened_at, event_id },
        };
        recorded(self.apply(id, &input, event_id, None, now).await)
    }

    /// A rep's action from the web app, at `now`. With an `event_id` (the
    /// form's), a repeat of the same submission returns the first answer and
    /// changes nothing. `None`: no such lead.
    pub async fn act(
        &self,
        id: &LeadId,
        by: &str,
        action: &Action,
        event_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Option<Recorded>, ServiceError> {
        recorded(self.apply(id, &Input::Act { by, action, event_id }, event_id, None, now).await)
    }

    /// Changes a rep's runtime settings (availability, away dates, capacity)
    /// as `by` asks, effective at the next routing decision: one conditional
    /// write on the settings as read, read again if they changed meanwhile.
    /// The settings after it (`None`: as `routing.yaml` says).
    pub async fn change_team(
        &self,
        rep: &str,
        change: &TeamChange,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<RepSettings>, TeamError> {
        let index = self.rules.routing.rep_index(rep).ok_or_else(|| TeamError::UnknownRep(rep.to_owned()))?;
        for attempt in 1..=MAX_ATTEMPTS {
            if attempt > 1 {
                backoff(attempt).await;
            }
            let state = self.store.team_state(&[rep], None).await?;
            let current = state.settings.get(rep);
            let next = team::apply(&self.rules.routing.reps[index], current, change, by, now)?;
            if self.store.set_rep_settings(rep, current, next.as_ref()).await? {
                info!(rep, by, change = ?change, "team changed");
                return Ok(next);
            }
        }
        Err(TeamError::Busy)
    }

    /// Engagement events (type and count) that happened now. `None`: no such lead.
    pub async fn engage(
        &self,
        id: &LeadId,
        counts: &[(String, u32)],
        now: DateTime<Utc>,
    ) -> Result<Option<Lead>, ServiceError> {
        self.changed_lead(id, &Input::Engagement { counts, happened_at: now, event_id: None }, now).await
    }

    /// A sales event from the CRM that happened now. `None`: no such lead.
    pub async fn sales_event(
        &self,
        id: &LeadId,
        event: &SalesEvent,
        now: DateTime<Utc>,
    ) -> Result<Option<Lead>, ServiceError> {
        self.changed_lead(id, &Input::Sales { event, happened_at: now, event_id: None }, now).await
    }

    async fn changed_lead(
        &self,
        id: &LeadId,
        input: &Input<'_>,
        now: DateTime<Utc>,
    ) -> Result<Option<Lead>, ServiceError> {
        match self.apply(id, input, None, None, now).await {
            Ok(Applied::Changed(change, ..)) => Ok(Some(change.lead)),
            Ok(Applied::Unchanged(lead)) => Ok(lead),
            Ok(Applied::Repeat(..)) => Err(ServiceError::Busy),
            Err(ServiceError::Refused(Refusal::UnknownLead)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reads, decides, saves, delivers; on a lost race reads and decides again.
    /// `first`: a copy of the lead already read (from an index) for the first attempt.
    async fn apply(
        &self,
        id: &LeadId,
        input: &Input<'_>,
        event_id: Option<&str>,
        first: Option<Lead>,
        now: DateTime<Utc>,
    ) -> Result<Applied, ServiceError> {
        let mut first = first;
        // A turn taken from a pool is kept across attempts, so that a lost race
        // does not cost the pool a turn.
        let mut turn: Option<(String, u64)> = None;
        for attempt in 1..=MAX_ATTEMPTS {
            if attempt > 1 {
                backoff(attempt).await;
            }
            let lead = match first.take() {
                Some(lead) => Some(lead),
                None => {
                    let snapshot = self.store.read(id, event_id, now).await?;
                    if let Some(seen) = snapshot.seen {
                        return Ok(Applied::Repeat(seen, snapshot.lead));
                    }
                    snapshot.lead
                }
            };
            let Some(decision) = self.decide(lead.as_ref(), input, &mut turn, now).await? else {
                return Ok(Applied::Unchanged(lead));
            };
            let effect = decision.effect;
            let mark = event_id.map(|event_id| mark(event_id, &decision.lead, now));
            let mut change = Change::from_decision(decision, mark);
            if let Some(links) = &self.links {
                // Each notification carries its recipient's own links.
                change.outbox.iter_mut().for_each(|p| links.address(&mut p.notification));
            }
            match self.store.save(&change).await {
                Ok(()) => {
                    self.observe(&change);
                    let failed = self.deliver(&change.outbox, now).await;
                    return Ok(Applied::Changed(Box::new(change), effect, failed));
                }
                Err(e @ (SaveError::LeadChanged | SaveError::AtCapacity { .. } | SaveError::Conflict)) => {
                    info!(lead_id = %id, input = input.name(), attempt, reason = %e, "decide again");
                }
                Err(SaveError::Duplicate { .. }) => {
                    // Applied meanwhile by a concurrent request: the next read returns its answer.
                }
                Err(SaveError::Store(e)) => return Err(e.into()),
            }
        }
        warn!(lead_id = %id, input = input.name(), attempts = MAX_ATTEMPTS, "the lead kept changing");
        Err(ServiceError::Busy)
    }

    /// Runs the state machine, answering what it needs from the store.
    async fn decide(
        &self,
        lead: Option<&Lead>,
        input: &Input<'_>,
        turn: &mut Option<(String, u64)>,
        now: DateTime<Utc>,
    ) -> Result<Option<leadflow_domain::Decision>, ServiceError> {
        let mut team: Option<TeamState> = None;
        loop {
            match decide(&self.rules, lead, input, team.as_ref(), now).map_err(ServiceError::Refused)? {
                Outcome::Decided(d) => return Ok(Some(*d)),
                Outcome::Unchanged => return Ok(None),
                Outcome::Needs(Need::Team { account }) => {
                    let reps: Vec<&str> = self.rules.routing.reps.iter().map(|r| r.id.as_str()).collect();
                    let mut state = self.store.team_state(&reps, account.as_deref()).await?;
                    state.turn.clone_from(turn);
                    team = Some(state);
                }
                Outcome::Needs(Need::Turn { pool }) => {
                    let kept = turn.as_ref().filter(|(p, _)| *p == pool).map(|(_, position)| *position);
                    let position = match kept {
                        Some(position) => position,
                        None => self.store.take_turn(&pool).await?,
                    };
                    *turn = Some((pool.clone(), position));
                    let Some(state) = team.as_mut() else {
                        // The machine asks for the team before a turn; ask it again.
                        continue;
                    };
                    state.turn = Some((pool, position));
                }
            }
        }
    }

    /// Publishes notifications just saved and marks each sent. One that fails
    /// stays pending; the SLA check retries it after its lease. Returns how many failed.
    pub async fn deliver(&self, outbox: &[Pending], now: DateTime<Utc>) -> usize {
        let mut failed = 0;
        for pending in outbox {
            if !self.publish(&pending.notification, now).await {
                failed += 1;
            }
        }
        failed
    }

    async fn publish(&self, n: &Notification, now: DateTime<Utc>) -> bool {
        match self.notifier.publish(n).await {
            Ok(()) => {
                if let Err(e) = self.store.mark_sent(n, now).await {
                    warn!(lead_id = %n.lead_id, notification = %n.id, error = %e, "published but not marked sent");
                }
                true
            }
            Err(e) => {
                warn!(lead_id = %n.lead_id, notification = %n.id, kind = n.kind.as_str(), error = %e,
                    "publish failed; the notification stays pending");
                if let Some(m) = &self.metrics {
                    m.delivery(1, 0);
                }
                false
            }
        }
    }

    /// Retries notifications whose lease ran out: each is claimed first, so two
    /// checks running at once never publish the same one. A notification that
    /// fails its last allowed attempt becomes a dead letter, and the managers
    /// are alerted once.
    pub async fn retry_pending(&self, now: DateTime<Utc>, report: &mut SlaReport) -> Result<(), ServiceError> {
        for pending in self.store.due_notifications(now, usize::MAX).await? {
            if !self.store.claim(&pending, now + DELIVERY_LEASE).await? {
                continue;
            }
            if self.publish(&pending.notification, now).await {
                report.notifications_retried += 1;
                continue;
            }
            report.notifications_failed += 1;
            if pending.attempts + 1 >= self.max_deliveries {
                self.store.give_up(&pending.notification, now).await?;
                report.dead_letters += 1;
                if let Some(m) = &self.metrics {
                    m.delivery(0, 1);
                }
                warn!(lead_id = %pending.notification.lead_id, notification = %pending.notification.id,
                    attempts = pending.attempts + 1, "notification undeliverable; moved to the dead letters");
                self.alert_dead_letter(&pending.notification, now).await;
            }
        }
        Ok(())
    }

    /// Tells the managers, once, that a notification could not be delivered.
    async fn alert_dead_letter(&self, dead: &Notification, now: DateTime<Utc>) {
        let mut alert = dead.clone();
        alert.id = format!("{}-undelivered", dead.id);
        alert.to = leadflow_domain::machine::managers(&self.rules);
        alert.subject = leadflow_domain::message::sns_subject(&format!("Undelivered: {}", dead.subject));
        alert.sms = format!("leadflow could not deliver a {} for lead {}", dead.kind.as_str(), dead.lead_id);
        alert.email = format!(
            "leadflow could not deliver this {} after {} attempts. It is listed by `leadflow outbox`.\n\n{}",
            dead.kind.as_str(),
            self.max_deliveries,
            // The dead notification's links were its recipient's alone.
            leadflow_domain::link::without_links(&dead.email)
        );
        alert.created_at = now;
        if let Err(e) = self.notifier.publish(&alert).await {
            warn!(notification = %alert.id, error = %e, "the dead-letter alert could not be published either");
        }
    }

    /// The SLA check at `now`: retries pending notifications, fires each due
    /// escalation step once per lead, and takes the repair sweep one page on.
    pub async fn sla_check(&self, now: DateTime<Utc>) -> Result<SlaReport, ServiceError> {
        let mut report = SlaReport::default();
        self.retry_pending(now, &mut report).await?;
        self.sweep(now, &mut report).await?;
        let due = self.store.sla_due(now, usize::MAX).await?;
        // Unassigned leads due for a reminder are routed again with the rest of their queue.
        let (reminders, due): (Vec<Lead>, Vec<Lead>) = due.into_iter().partition(|l| l.status == Status::Unassigned);
        report.leads_read = due.len();
        for lead in due {
            let id = lead.id.clone();
            match self.apply(&id, &Input::SlaTick, None, Some(lead), now).await {
                Ok(Applied::Changed(_, effect, failed)) => {
                    report.leads_changed += 1;
                    report.escalations += effect.escalations;
                    report.reassignments += usize::from(effect.reassigned);
                    report.notifications_failed += failed;
                }
                Ok(_) | Err(ServiceError::Refused(_)) => {}
                // Still due: the next run takes it up; one lead never holds up the rest.
                Err(ServiceError::Busy) => warn!(lead_id = %id, "left for the next SLA check"),
                Err(e) => {
                    report.leads_failed += 1;
                    warn!(lead_id = %id, error = %e, "the SLA check failed for this lead; it stays due");
                }
            }
        }
        self.release_departed(now, &mut report).await?;
        self.route_unassigned(now, reminders, &mut report).await?;
        info!(
            leads = report.leads_read,
            changed = report.leads_changed,
            escalations = report.escalations,
            unassigned_routed = report.unassigned_routed,
            "sla check"
        );
        Ok(report)
    }

    /// Gives the open leads of reps removed from `routing.yaml` since the last
    /// check back to their pools (or to the unassigned queue). The reps named
    /// at the last check are kept with the sweep's state; the roster moves on
    /// only once every lead of a departed rep was given back.
    async fn release_departed(&self, now: DateTime<Utc>, report: &mut SlaReport) -> Result<(), ServiceError> {
        let state = self.store.sweep_state().await?;
        let current: Vec<String> = self.rules.routing.reps.iter().map(|r| r.id.clone()).collect();
        let departed: Vec<String> = match &state.roster {
            Some(roster) if *roster == current => return Ok(()),
            Some(roster) => roster.iter().filter(|r| !current.contains(r)).cloned().collect(),
            None => Vec::new(),
        };
        let mut all_released = true;
        for rep in &departed {
            for lead in self.store.queue(Queue::Owner(rep), usize::MAX).await? {
                let id = lead.id.clone();
                match self.apply(&id, &Input::SlaTick, None, Some(lead), now).await {
                    Ok(Applied::Changed(_, effect, failed)) => {
                        report.leads_changed += 1;
                        report.reassignments += usize::from(effect.reassigned);
                        report.notifications_failed += failed;
                        info!(lead_id = %id, rep = %rep, "the lead of a rep removed from routing.yaml was given back");
                    }
                    Ok(_) | Err(ServiceError::Refused(_)) => {}
                    Err(e) => {
                        all_released = false;
                        warn!(lead_id = %id, error = %e, "a departed rep's lead is left for the next SLA check");
                    }
                }
            }
        }
        if all_released {
            // Read again: the repair sweep may have moved on meanwhile.
            let state = self.store.sweep_state().await?;
            self.store.save_sweep_state(&SweepState { roster: Some(current), ..state }).await?;
        }
        Ok(())
    }

    /// Routes the unassigned leads again (at most [`UNASSIGNED_PER_CHECK`] a
    /// run, in the queue's order, with those due for a reminder): each goes
    /// to whoever is available now, or waits, its managers reminded when due.
    async fn route_unassigned(
        &self,
        now: DateTime<Utc>,
        reminders: Vec<Lead>,
        report: &mut SlaReport,
    ) -> Result<(), ServiceError> {
        let mut waiting = reminders;
        for lead in self.store.queue(Queue::Unassigned, UNASSIGNED_PER_CHECK).await? {
            if !waiting.iter().any(|l| l.id == lead.id) {
                waiting.push(lead);
            }
        }
        for lead in waiting {
            let id = lead.id.clone();
            report.leads_read += 1;
            match self.apply(&id, &Input::SlaTick, None, Some(lead), now).await {
                Ok(Applied::Changed(_, effect, failed)) => {
                    report.leads_changed += 1;
                    report.unassigned_routed += usize::from(effect.handed_off);
                    report.unassigned_reminders += usize::from(!effect.handed_off);
                    report.notifications_failed += failed;
                }
                Ok(_) | Err(ServiceError::Refused(_)) => {}
                Err(ServiceError::Busy) => warn!(lead_id = %id, "left for the next SLA check"),
                Err(e) => {
                    report.leads_failed += 1;
                    warn!(lead_id = %id, error = %e, "routing an unassigned lead failed; it stays unassigned");
                }
            }
        }
        Ok(())
    }

    /// One page of the repair sweep: leads that an older version of leadflow
    /// left broken (stored without a score, or nurturing at the hand-off tier
    /// having never been handed off) are derived again and handed off. The
    /// sweep runs once per [`SWEEP_VERSION`], a page per SLA check, and
    /// remembers where it stopped, so each check stays short on any table.
    pub async fn sweep(&self, now: DateTime<Utc>, report: &mut SlaReport) -> Result<(), ServiceError> {
        let state = self.store.sweep_state().await?;
        if state.done_version >= SWEEP_VERSION {
            return Ok(());
        }
        let (leads, next) = self.store.page(state.after.as_deref(), self.sweep_page).await?;
        for lead in &leads {
            let found = problems(&self.rules, lead);
            // A lead sent back to nurture by sales has a previous owner and is
            // not found; anything else found is what older versions left.
            if found.is_empty() {
                continue;
            }
            let problem = found.join("; ");
            match self.apply(&lead.id, &Input::Repair { problem: &problem }, None, None, now).await {
                Ok(Applied::Changed(..)) => {
                    report.leads_repaired += 1;
                    info!(lead_id = %lead.id, problem = %problem, "repaired a lead an older version left");
                }
                Ok(_) | Err(ServiceError::Refused(_)) => {}
                Err(e) => {
                    // Not past it: the page is read again by the next check.
                    warn!(lead_id = %lead.id, error = %e, "the repair sweep stops here until the next check");
                    return Ok(());
                }
            }
        }
        let state = match next {
            Some(after) => SweepState { after: Some(after), ..state },
            None => SweepState { done_version: SWEEP_VERSION, after: None, ..state },
        };
        self.store.save_sweep_state(&state).await?;
        Ok(())
    }

    /// The nightly clean-up at `now`: decay rescoring and dormancy for the open
    /// leads whose idleness matters now, releasing the owner's capacity.
    pub async fn cleanup(&self, now: DateTime<Utc>) -> Result<CleanupReport, ServiceError> {
        let mut report = CleanupReport::default();
        let due = self.store.hygiene_due(now, usize::MAX).await?;
        report.leads_read = due.len();
        for lead in due {
            let id = lead.id.clone();
            match self.apply(&id, &Input::Hygiene, None, Some(lead), now).await {
                Ok(Applied::Changed(_, effect, _)) => {
                    report.leads_changed += 1;
                    report.rescored += usize::from(effect.rescored);
                    report.dormant += usize::from(effect.dormant);
                }
                Ok(_) | Err(ServiceError::Refused(_)) => {}
                Err(ServiceError::Busy) => warn!(lead_id = %id, "left for the next clean-up"),
                Err(e) => {
                    report.leads_failed += 1;
                    warn!(lead_id = %id, error = %e, "the clean-up failed for this lead; it stays due");
                }
            }
        }
        info!(leads = report.leads_read, changed = report.leads_changed, dormant = report.dormant, "clean-up");
        Ok(report)
    }

    /// Checks every invariant of the store at `now`, and with `repair` fixes what
    /// can be fixed: leads without derived state, nurturing at the hand-off tier
    /// or with a running clock out of the SLA index are derived again (and
    /// handed off), open-lead counts are set to what the leads say, and
    /// notifications stuck past their lease are retried. A finding is marked
    /// repaired only when checking again finds it gone.
    pub async fn doctor(&self, now: DateTime<Utc>, repair: bool) -> Result<Vec<Finding>, ServiceError> {
        let mut findings = Vec::new();
        let reps: Vec<&str> = self.rules.routing.reps.iter().map(|r| r.id.as_str()).collect();
        // The counts before and after the leads are listed: a rep whose count
        // moved meanwhile had a change in flight, and is not judged this time.
        let counts_before = self.store.team_state(&reps, None).await?;
        let leads = self.store.list(&LeadFilter::default()).await?;
        for lead in &leads {
            let history = self.store.history(&lead.id).await?;
            let legacy = history.iter().any(|h| matches!(h.record, Record::Legacy { .. }));
            let found = problems(&self.rules, lead);
            let mut fixed = false;
            if repair && !found.is_empty() {
                let problem = found.join("; ");
                if let Ok(Applied::Changed(change, ..)) =
                    self.apply(&lead.id, &Input::Repair { problem: &problem }, None, None, now).await
                {
                    fixed = problems(&self.rules, &change.lead).is_empty();
                }
            }
            for problem in found {
                findings.push(Finding { subject: "lead", id: lead.id.to_string(), problem, repaired: fixed });
            }
            // Leads written before history was typed have no per-version record.
            let mut versions: Vec<u64> = history.iter().filter_map(|h| h.version()).collect();
            versions.sort_unstable();
            versions.dedup();
            let missing: Vec<u64> = (1..=lead.version).filter(|v| versions.binary_search(v).is_err()).collect();
            if !missing.is_empty() && !legacy {
                findings.push(Finding {
                    subject: "history",
                    id: lead.id.to_string(),
                    problem: format!("no history for version(s) {missing:?} of {}", lead.version),
                    repaired: false,
                });
            }
        }
        // Open-lead counts against the leads (listed again after any repair).
        let leads = if repair { self.store.list(&LeadFilter::default()).await? } else { leads };
        let counts_after = self.store.team_state(&reps, None).await?;
        for rep in &reps {
            let before = counts_before.open.get(*rep).copied().unwrap_or(0);
            let stored = counts_after.open.get(*rep).copied().unwrap_or(0);
            let counted = leads.iter().filter(|l| l.status.is_open() && l.owner.as_deref() == Some(rep)).count() as u32;
            if counted == stored || (before != stored && !repair) {
                continue;
            }
            let repaired = repair && self.store.set_open_leads(rep, stored, counted).await.unwrap_or(false);
            findings.push(Finding {
                subject: "rep",
                id: (*rep).to_owned(),
                problem: format!("open-lead count is {stored}, the leads say {counted}"),
                repaired,
            });
        }
        let stuck = self.store.due_notifications(now, usize::MAX).await?;
        let mut retried = SlaReport::default();
        if repair && !stuck.is_empty() {
            self.retry_pending(now, &mut retried).await?;
        }
        let still: Vec<String> = if repair {
            self.store.due_notifications(now, usize::MAX).await?.into_iter().map(|p| p.notification.id).collect()
        } else {
            Vec::new()
        };
        for p in stuck {
            let repaired = repair && !still.contains(&p.notification.id);
            findings.push(Finding {
                subject: "outbox",
                id: p.notification.id.clone(),
                problem: format!(
                    "unsent past its lease ({}, {} attempts)",
                    p.lease_until.format("%Y-%m-%dT%H:%M:%SZ"),
                    p.attempts
                ),
                repaired,
            });
        }
        Ok(findings)
    }
}

/// A form post's id: a digest of everything it holds.
fn form_id(profile: &Profile) -> String {
    use sha2::Digest;
    let doc = serde_json::to_vec(profile).unwrap_or_default();
    let digest = sha2::Sha256::digest(&doc);
    format!("{FORM_ID_PREFIX}{}", hex::encode(&digest[..16]))
}

/// Waits before another attempt: full jitter over an exponential ceiling
/// (10 ms, 20 ms, ... up to 640 ms).
async fn backoff(attempt: u32) {
    let ceiling = 10u64 << attempt.min(7);
    tokio::time::sleep(StdDuration::from_millis(fastrand::u64(0..=ceiling))).await;
}
