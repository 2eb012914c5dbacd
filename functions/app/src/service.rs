//! The commands, written once against the traits in `ports`: the Lambdas, the
//! local server and the CLI run exactly this code with different adapters.
//!
//! A capture or an engagement event is one atomic write to the lead (so nothing
//! captured or counted is ever lost, however many arrive at once), then one
//! conditional save of everything derived from it: score, tier, hand-off,
//! history and the notifications. When that save finds a newer version, a later
//! write has happened whose own save derives from a state that includes this
//! one, so the superseded derivation is dropped (its event history is still
//! written). Jobs that change a lead read it, decide, and save on its version,
//! retrying a bounded number of times with jitter.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use leadflow_domain::lead::FieldTarget;
use leadflow_domain::rules::Explanation;
use leadflow_domain::rules::capture::MergePolicy;
use leadflow_domain::rules::lifecycle::{LifecycleError, ReactivationAction, SalesEvent};
use leadflow_domain::rules::routing::{AssignContext, Assignment, CursorMove, PoolCursors, Strategy};
use leadflow_domain::rules::scoring::idle_days;
use leadflow_domain::rules::sla::Audience;
use leadflow_domain::{
    HistoryEntry, HistoryKind, Lead, LeadId, Notification, NotificationKind, Pending, Profile, RuleSet, SlaClock,
    Status,
};
use serde_json::json;
use thiserror::Error;
use tracing::{info, warn};

use crate::message::{self, Context};
use crate::ports::{Change, Notifier, SaveError, Store, StoreError, TeamState};

/// How long the writer of a notification has to publish it before the SLA
/// check may retry it.
pub const DELIVERY_LEASE: chrono::Duration = chrono::Duration::minutes(2);

/// The most attempts at a save that keeps losing races on a lead.
pub const MAX_ATTEMPTS: u32 = 10;

#[derive(Debug, Error)]
pub enum ServiceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The rules do not allow this change (a sales event the lead's status does
    /// not take, or a disqualification reason not in the list).
    #[error(transparent)]
    Rejected(#[from] LifecycleError),
    #[error("the lead kept changing while this change was saved; try again")]
    Busy,
}

/// leadflow's service: the rules, a store and a notifier.
#[derive(Debug)]
pub struct Leadflow<S, N> {
    pub rules: Arc<RuleSet>,
    pub store: S,
    pub notifier: N,
}

/// What a capture did.
#[derive(Clone, Debug)]
pub struct CaptureOutcome {
    pub lead: Lead,
    pub created: bool,
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
}

/// What the nightly clean-up did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CleanupReport {
    pub leads_read: usize,
    pub leads_changed: usize,
    pub rescored: usize,
    pub dormant: usize,
}

/// What a derived save came to.
enum Saved {
    Done(Box<Lead>, Vec<Pending>),
    /// A newer write exists; its own save covers this one.
    Superseded,
}

impl<S: Store, N: Notifier> Leadflow<S, N> {
    pub fn new(rules: Arc<RuleSet>, store: S, notifier: N) -> Self {
        Leadflow { rules, store, notifier }
    }

    /// Captures a lead: create-or-update by email, then score, route and hand off.
    pub async fn capture(&self, profile: Profile, now: DateTime<Utc>) -> Result<CaptureOutcome, ServiceError> {
        let capture = &self.rules.capture;
        let keep_first: Vec<FieldTarget> = profile
            .present_fields()
            .into_iter()
            .filter(|f| capture.merge_default == MergePolicy::KeepFirst || capture.keep_first.contains(f))
            .collect();
        let captured = self.store.capture(&profile, &keep_first, now).await?;
        let event = json!({ "type": "form_submission", "count": 1, "source": profile.source });
        let lead = self.derive(captured.lead, now, vec![event], &["form_submission".to_owned()]).await?;
        Ok(CaptureOutcome { lead, created: captured.created })
    }

    /// Records engagement events (type and count) for a lead and rescores it,
    /// handing it off when it crosses the hand-off tier. `None`: no such lead.
    pub async fn engage(
        &self,
        id: &LeadId,
        counts: &[(String, u32)],
        now: DateTime<Utc>,
    ) -> Result<Option<Lead>, ServiceError> {
        let Some(snapshot) = self.store.record_events(id, counts, now).await? else {
            return Ok(None);
        };
        let events = counts.iter().map(|(kind, n)| json!({ "type": kind, "count": n })).collect();
        let kinds: Vec<String> = counts.iter().map(|(kind, _)| kind.clone()).collect();
        Ok(Some(self.derive(snapshot, now, events, &kinds).await?))
    }

    /// Derives score, tier and hand-off from a snapshot just written, and saves
    /// them on its version. Returns the lead as this call left it (or, when a
    /// newer write superseded it, as last stored).
    async fn derive(
        &self,
        snapshot: Lead,
        now: DateTime<Utc>,
        events: Vec<serde_json::Value>,
        kinds: &[String],
    ) -> Result<Lead, ServiceError> {
        let history: Vec<HistoryEntry> = events
            .into_iter()
            .enumerate()
            .map(|(i, body)| entry(now, snapshot.version, i, HistoryKind::Event, body))
            .collect();
        match self.save_derived(&snapshot, now, &history, kinds).await? {
            Saved::Done(lead, outbox) => {
                self.deliver(&outbox, now).await;
                Ok(*lead)
            }
            Saved::Superseded => {
                self.store.append(&snapshot.id, &history).await?;
                Ok(self.store.get(&snapshot.id).await?.unwrap_or(snapshot))
            }
        }
    }

    async fn save_derived(
        &self,
        snapshot: &Lead,
        now: DateTime<Utc>,
        events: &[HistoryEntry],
        kinds: &[String],
    ) -> Result<Saved, ServiceError> {
        let rules = &*self.rules;
        let (explanation, tier) = self.rescore(snapshot, now);
        let mut lead = snapshot.clone();
        lead.version = snapshot.version + 1;
        lead.score = explanation.score.score;
        lead.tier.clone_from(&explanation.score.tier);
        lead.updated_at = now.max(snapshot.updated_at);
        let mut change_parts = Parts::default();
        let mut assignment = None;
        let reactivation = kinds
            .iter()
            .filter_map(|k| rules.events.slot(k))
            .find_map(|slot| rules.lifecycle.reactivation(snapshot.status, slot));
        let back_to_owner = snapshot.previous_owner.clone().filter(|o| rules.routing.rep_index(o).is_some());
        let woken = reactivation.is_some();
        if let (Some(ReactivationAction::NotifyOwner), Some(owner)) = (reactivation, back_to_owner) {
            self.reactivate(&mut lead, tier, owner, &explanation, now, &mut change_parts);
        } else if (woken || snapshot.status == Status::Nurturing) && rules.scoring.is_handoff(tier) {
            // A new hand-off; or a woken lead routed again as a new lead would be
            // (with `reroute`, or with no last owner to go back to).
            let a = self.route(&lead, now).await?;
            self.hand_off(&mut lead, tier, &a, &explanation, now, &mut change_parts);
            assignment = Some(a);
        } else if woken {
            // Woken below the hand-off tier: back to marketing, as a new lead
            // would be, and handed off when it crosses the tier.
            lead.status = Status::Nurturing;
        }
        lead.hygiene_at = hygiene_at(rules, &lead, now);
        let transition =
            (snapshot.status != lead.status).then(|| json!({ "from": snapshot.status, "to": lead.status }));
        let decision = json!({
            "rules_version": rules.version,
            "score": explanation.score,
            "route": explanation.route,
            "assignment": assignment,
            "transition": transition,
        });
        let mut history = events.to_vec();
        history.push(entry(now, snapshot.version, history.len(), HistoryKind::Decision, decision));
        let change = change_parts.into_change(lead.clone(), snapshot.version, history);
        match self.store.save(&change).await {
            Ok(()) => Ok(Saved::Done(Box::new(lead), change.outbox)),
            Err(SaveError::LeadChanged) => Ok(Saved::Superseded),
            Err(SaveError::Store(e)) => Err(e.into()),
        }
    }

    /// The score and its explanation at `now`.
    fn rescore(&self, lead: &Lead, now: DateTime<Utc>) -> (Explanation, usize) {
        let rules = &*self.rules;
        let mut slots = Vec::new();
        rules.event_slots(&lead.events, &mut slots);
        let mut facts = rules.facts(&lead.profile, &slots, lead.status, lead.bant);
        let explanation = rules.explain(&mut facts, idle_days(lead.last_activity_at, now));
        let tier = rules.scoring.tier_index(&explanation.score.tier).unwrap_or(0);
        (explanation, tier)
    }

    async fn team_state(&self, lead: &Lead) -> Result<TeamState, StoreError> {
        let reps: Vec<&str> = self.rules.routing.reps.iter().map(|r| r.id.as_str()).collect();
        let account = account_domain(&self.rules, lead);
        self.store.team_state(&reps, account.as_deref()).await
    }

    /// Routes a lead. When the choice falls to a round-robin or weighted pool,
    /// the pool's next turn is taken and the member at (or after) it is chosen.
    async fn route(&self, lead: &Lead, now: DateTime<Utc>) -> Result<Assignment, StoreError> {
        let team = self.team_state(lead).await?;
        let first = self.assign(lead, now, &team, Turn::NONE);
        // Whether a counted pool is reached depends only on who is available,
        // not on the turn, so routing again with the turn reaches the same pool.
        match (&first.pool, first.cursor) {
            (Some(pool), Some(_)) => {
                let position = self.store.take_turn(pool).await?;
                Ok(self.assign(lead, now, &team, Turn { pool, position }))
            }
            _ => Ok(first),
        }
    }

    fn assign(&self, lead: &Lead, now: DateTime<Utc>, team: &TeamState, turn: Turn<'_>) -> Assignment {
        let rules = &*self.rules;
        let mut slots = Vec::new();
        rules.event_slots(&lead.events, &mut slots);
        let mut facts = rules.facts(&lead.profile, &slots, lead.status, lead.bant);
        facts.score = Some(lead.score);
        facts.tier = rules.scoring.tier_index(&lead.tier);
        let ctx = AssignContext {
            today: now.date_naive(),
            previous_owner: lead.owner.as_deref().or(lead.previous_owner.as_deref()),
            account_owner: team.account_owner.as_deref(),
        };
        rules.routing.assign(&facts, &ctx, team, &turn)
    }

    /// Hands a lead off to the assignment's rep, or marks it unassigned and
    /// alerts the managers.
    fn hand_off(
        &self,
        lead: &mut Lead,
        tier: usize,
        a: &Assignment,
        explanation: &Explanation,
        now: DateTime<Utc>,
        parts: &mut Parts,
    ) {
        let rules = &*self.rules;
        match &a.rep {
            Some(rep) => {
                lead.status = Status::Assigned;
                lead.owner = Some(rep.clone());
                lead.pool.clone_from(&a.pool);
                lead.unanswered = 0;
                self.start_clock(lead, tier, now);
                parts.load.push((rep.clone(), 1));
                if let (Some(pool), Some(cursor)) = (&a.pool, a.cursor) {
                    parts.skip_past(pool, cursor);
                }
                if let Some(domain) = account_domain(rules, lead) {
                    parts.account = Some((domain, rep.clone()));
                }
                let ctx = Context {
                    kind: NotificationKind::Handoff,
                    to: vec![rep.clone()],
                    explanation: Some(explanation),
                    chain: &a.chain,
                    note: None,
                    at: now,
                };
                parts.notify(message::render(rules, lead, parts.outbox.len(), ctx), now);
            }
            None => {
                lead.status = Status::Unassigned;
                lead.owner = None;
                lead.sla = None;
                lead.sla_due = None;
                let ctx = Context {
                    kind: NotificationKind::Unassigned,
                    to: managers(rules),
                    explanation: Some(explanation),
                    chain: &a.chain,
                    note: Some("Nobody in the lead's pools is available; please assign it.".to_owned()),
                    at: now,
                };
                parts.notify(message::render(rules, lead, parts.outbox.len(), ctx), now);
            }
        }
    }

    /// A dormant lead that woke up goes back to its last owner, who is told why,
    /// with a new first-response clock.
    fn reactivate(
        &self,
        lead: &mut Lead,
        tier: usize,
        owner: String,
        explanation: &Explanation,
        now: DateTime<Utc>,
        parts: &mut Parts,
    ) {
        let rules = &*self.rules;
        lead.status = Status::Assigned;
        lead.owner = Some(owner.clone());
        lead.unanswered = 0;
        self.start_clock(lead, tier, now);
        parts.load.push((owner.clone(), 1));
        let ctx = Context {
            kind: NotificationKind::Reactivation,
            to: vec![owner],
            explanation: Some(explanation),
            chain: &[],
            note: Some("This dormant lead is active again and back with you.".to_owned()),
            at: now,
        };
        parts.notify(message::render(rules, lead, parts.outbox.len(), ctx), now);
    }

    /// Starts the first-response clock of a lead handed off at `now`.
    fn start_clock(&self, lead: &mut Lead, tier: usize, now: DateTime<Utc>) {
        let sla = &self.rules.sla;
        lead.sla = sla.deadline(tier, now).map(|deadline| SlaClock { handed_off_at: now, deadline, fired: 0 });
        lead.sla_due = lead.sla.and_then(|c| sla.next_due(c.deadline, 0));
    }

    /// Publishes notifications just saved and marks each sent. One that fails
    /// stays pending; the SLA check retries it after its lease.
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
                false
            }
        }
    }

    /// Retries notifications whose lease ran out: each is claimed first, so two
    /// checks running at once never publish the same one.
    pub async fn retry_pending(&self, now: DateTime<Utc>, report: &mut SlaReport) -> Result<(), ServiceError> {
        for pending in self.store.due_notifications(now, usize::MAX).await? {
            if !self.store.claim(&pending, now + DELIVERY_LEASE).await? {
                continue;
            }
            if self.publish(&pending.notification, now).await {
                report.notifications_retried += 1;
            } else {
                report.notifications_failed += 1;
            }
        }
        Ok(())
    }

    /// The SLA check at `now`: fires each due escalation step once per lead
    /// and retries pending notifications.
    pub async fn sla_check(&self, now: DateTime<Utc>) -> Result<SlaReport, ServiceError> {
        let mut report = SlaReport::default();
        self.retry_pending(now, &mut report).await?;
        let due = self.store.sla_due(now, usize::MAX).await?;
        report.leads_read = due.len();
        for lead in due {
            if let Some((change, effect)) = self.settle(Job::SlaCheck, lead, now).await? {
                report.leads_changed += 1;
                report.escalations += effect.escalations;
                report.reassignments += usize::from(effect.reassigned);
                report.notifications_failed += self.deliver(&change.outbox, now).await;
            }
        }
        info!(leads = report.leads_read, changed = report.leads_changed, escalations = report.escalations, "sla check");
        Ok(report)
    }

    /// Decides what a job does to one lead and saves it on the lead's version;
    /// when the lead changed meanwhile, reads it again and decides again, a
    /// bounded number of times with jitter. `None` when nothing changed (or the
    /// lead stayed contended: it is still due, so the next run takes it up).
    async fn settle(
        &self,
        job: Job<'_>,
        lead: Lead,
        now: DateTime<Utc>,
    ) -> Result<Option<(Change, Effect)>, ServiceError> {
        let id = lead.id.clone();
        let mut lead = lead;
        for attempt in 1..=MAX_ATTEMPTS {
            let decided = match job {
                Job::SlaCheck => self.escalate(&lead, now).await?,
                Job::Cleanup => Some(self.tidy(&lead, now)),
                Job::Sales(event) => Some(self.apply_sales(&lead, event, now)?),
            };
            let Some((change, effect)) = decided else { return Ok(None) };
            match self.store.save(&change).await {
                Ok(()) => return Ok(Some((change, effect))),
                Err(SaveError::LeadChanged) => {}
                Err(SaveError::Store(e)) => return Err(e.into()),
            }
            if attempt == MAX_ATTEMPTS {
                break;
            }
            backoff(attempt).await;
            match self.store.get(&id).await? {
                Some(current) => lead = current,
                None => return Ok(None),
            }
        }
        warn!(lead_id = %id, job = ?job, attempts = MAX_ATTEMPTS, "the lead kept changing; left for the next run");
        Ok(None)
    }

    /// The escalation steps due for one lead, as a change; `None` when nothing is due.
    async fn escalate(&self, lead: &Lead, now: DateTime<Utc>) -> Result<Option<(Change, Effect)>, StoreError> {
        let rules = &*self.rules;
        let Some(clock) = lead.sla.filter(|_| lead.status == Status::Assigned) else {
            // The clock stopped since the lead was indexed: take it off the index.
            if lead.sla_due.is_none() {
                return Ok(None);
            }
            let mut next = lead.clone();
            next.version += 1;
            next.sla_due = None;
            return Ok(Some((Change::of(next, lead.version), Effect::default())));
        };
        let steps = rules.sla.due_steps(clock.deadline, now, clock.fired);
        let mut next = lead.clone();
        next.version += 1;
        next.updated_at = now.max(lead.updated_at);
        let mut parts = Parts::default();
        let mut reassigned = false;
        let mut fired = clock.fired;
        for step in &steps {
            fired |= 1 << step;
            let s = &rules.sla.escalation[*step];
            let owner = next.owner.clone();
            if s.reassign
                && let Some((rep, cursor)) = self.reassign_pick(&next, now).await?
            {
                let from = next.owner.replace(rep.clone());
                if let Some(old) = &from {
                    parts.load.push((old.clone(), -1));
                }
                parts.load.push((rep.clone(), 1));
                if let Some((pool, cursor)) = cursor {
                    parts.skip_past(&pool, cursor);
                }
                reassigned = true;
                let note = format!(
                    "Reassigned from {} after the first-response deadline passed.",
                    from.as_deref().unwrap_or("nobody")
                );
                let to: Vec<String> = std::iter::once(rep).chain(from).collect();
                parts.alert(rules, &next, NotificationKind::Reassigned, to, note, now);
            }
            let mut to = Vec::new();
            for audience in &s.notify {
                let who = match audience {
                    Audience::Owner => next.owner.clone(),
                    Audience::Manager => owner.as_deref().and_then(|o| manager_of(rules, o)),
                };
                if let Some(w) = who.filter(|w| !to.contains(w)) {
                    to.push(w);
                }
            }
            if !to.is_empty() {
                let note = format!("Escalation step {} of the first-response SLA.", step + 1);
                parts.alert(rules, &next, NotificationKind::Escalation, to, note, now);
            }
        }
        next.sla = Some(SlaClock { fired, ..clock });
        next.sla_due = rules.sla.next_due(clock.deadline, fired);
        if steps.is_empty() && next.sla_due == lead.sla_due {
            return Ok(None);
        }
        let history = vec![entry(
            now,
            lead.version,
            0,
            HistoryKind::Decision,
            json!({
                "rules_version": rules.version,
                "escalation_steps": steps.iter().map(|s| s + 1).collect::<Vec<_>>(),
                "owner": next.owner,
                "reassigned": reassigned,
            }),
        )];
        let effect = Effect { escalations: steps.len(), reassigned, ..Effect::default() };
        Ok(Some((parts.into_change(next, lead.version, history), effect)))
    }

    /// Another available member of the lead's pool, never its current owner;
    /// from a round-robin or weighted pool, the member at or after the pool's
    /// next turn.
    async fn reassign_pick(
        &self,
        lead: &Lead,
        now: DateTime<Utc>,
    ) -> Result<Option<(String, Option<(String, CursorMove)>)>, StoreError> {
        let routing = &self.rules.routing;
        let Some((pool_id, pool)) = lead.pool.as_deref().and_then(|id| Some((id, routing.pool_index(id)?))) else {
            return Ok(None);
        };
        let team = self.team_state(lead).await?;
        let exclude = lead.owner.as_deref().and_then(|o| routing.rep_index(o));
        let today = now.date_naive();
        if routing.pick(pool, today, &team, &Turn::NONE, exclude).is_err() {
            return Ok(None);
        }
        let turn = match routing.pools[pool].strategy {
            Strategy::RoundRobin | Strategy::Weighted => {
                Turn { pool: pool_id, position: self.store.take_turn(pool_id).await? }
            }
            Strategy::LeastLoaded => Turn::NONE,
        };
        Ok(routing
            .pick(pool, today, &team, &turn, exclude)
            .ok()
            .map(|pick| (routing.reps[pick.rep].id.clone(), pick.cursor.map(|c| (pool_id.to_owned(), c)))))
    }

    /// Applies a sales event from the CRM (`contacted`, `contact_attempt`,
    /// `qualified`, `converted`, `disqualified`, `nurture`). `None`: no such lead.
    pub async fn sales_event(
        &self,
        id: &LeadId,
        event: &SalesEvent,
        now: DateTime<Utc>,
    ) -> Result<Option<Lead>, ServiceError> {
        let Some(lead) = self.store.get(id).await? else {
            return Ok(None);
        };
        match self.settle(Job::Sales(event), lead, now).await? {
            Some((change, _)) => {
                self.deliver(&change.outbox, now).await;
                Ok(Some(change.lead))
            }
            None if self.store.get(id).await?.is_none() => Ok(None),
            None => Err(ServiceError::Busy),
        }
    }

    /// What a sales event does to a lead: its status and BANT, the first-response
    /// clock (first contact stops it), unanswered attempts, the owner's capacity
    /// (released when the lead leaves `assigned`/`working`), retention.
    fn apply_sales(
        &self,
        lead: &Lead,
        event: &SalesEvent,
        now: DateTime<Utc>,
    ) -> Result<(Change, Effect), LifecycleError> {
        let rules = &*self.rules;
        let t = rules.lifecycle.apply(lead.status, lead.bant, event)?;
        let mut next = lead.clone();
        next.version += 1;
        next.updated_at = now.max(lead.updated_at);
        if !matches!(event, SalesEvent::ContactAttempt) {
            // An attempt that got no answer is the rep's doing, not the lead's.
            next.last_activity_at = now.max(lead.last_activity_at);
        }
        next.status = t.to;
        next.bant = t.bant;
        *next.events.entry(event.kind().to_owned()).or_default() += 1;
        if t.stops_clock {
            next.sla = None;
            next.sla_due = None;
        }
        match event {
            SalesEvent::ContactAttempt => next.unanswered += 1,
            SalesEvent::Contacted => next.unanswered = 0,
            SalesEvent::Disqualified { reason } => next.disqualify_reason = Some(reason.clone()),
            SalesEvent::Nurture => next.disqualify_reason = None,
            SalesEvent::Qualified(_) | SalesEvent::Converted => {}
        }
        let mut parts = Parts::default();
        if t.to == Status::Nurturing {
            // Back to marketing: the owner lets go, and is remembered.
            let_go(&mut next, lead.status.is_open(), &mut parts);
        } else if let Some(owner) = &next.owner {
            match (lead.status.is_open(), next.status.is_open()) {
                (true, false) => parts.load.push((owner.clone(), -1)),
                (false, true) => parts.load.push((owner.clone(), 1)),
                _ => {}
            }
        }
        next.expires_at = rules.lifecycle.expires_at(t.to, now);
        let (explanation, _) = self.rescore(&next, now);
        next.score = explanation.score.score;
        next.tier.clone_from(&explanation.score.tier);
        next.hygiene_at = hygiene_at(rules, &next, now);
        let history = vec![entry(
            now,
            lead.version,
            0,
            HistoryKind::Event,
            json!({
                "type": event.kind(),
                "rules_version": rules.version,
                "transition": { "from": t.from, "to": t.to },
                "bant": t.bant,
                "reason": next.disqualify_reason,
                "score": explanation.score.score,
            }),
        )];
        Ok((parts.into_change(next, lead.version, history), Effect::default()))
    }

    /// The nightly clean-up at `now`: decay rescoring and dormancy for the open
    /// leads whose idleness matters now, releasing the owner's capacity.
    pub async fn cleanup(&self, now: DateTime<Utc>) -> Result<CleanupReport, ServiceError> {
        let mut report = CleanupReport::default();
        let due = self.store.hygiene_due(now, usize::MAX).await?;
        report.leads_read = due.len();
        for lead in due {
            if let Some((_, effect)) = self.settle(Job::Cleanup, lead, now).await? {
                report.leads_changed += 1;
                report.rescored += usize::from(effect.rescored);
                report.dormant += usize::from(effect.dormant);
            }
        }
        info!(leads = report.leads_read, changed = report.leads_changed, dormant = report.dormant, "clean-up");
        Ok(report)
    }

    fn tidy(&self, lead: &Lead, now: DateTime<Utc>) -> (Change, Effect) {
        let rules = &*self.rules;
        let (explanation, _) = self.rescore(lead, now);
        let mut next = lead.clone();
        next.version += 1;
        next.updated_at = now.max(lead.updated_at);
        next.score = explanation.score.score;
        next.tier.clone_from(&explanation.score.tier);
        let rescored = next.score != lead.score;
        let idle = idle_days(lead.last_activity_at, now);
        let cause = rules.lifecycle.dormancy(lead.status, idle, lead.unanswered);
        let mut parts = Parts::default();
        if cause.is_some() {
            let_go(&mut next, lead.status.is_open(), &mut parts);
            next.status = Status::Dormant;
        }
        next.hygiene_at = hygiene_at(rules, &next, now);
        let history = vec![entry(
            now,
            lead.version,
            0,
            HistoryKind::Decision,
            json!({
                "rules_version": rules.version,
                "cleanup": { "idle_days": idle, "score": { "from": lead.score, "to": next.score }, "dormant": cause },
                "transition": cause.map(|_| json!({ "from": lead.status, "to": Status::Dormant })),
            }),
        )];
        let effect = Effect { rescored, dormant: cause.is_some(), ..Effect::default() };
        (parts.into_change(next, lead.version, history), effect)
    }
}

/// The `index`-th history entry of the change made from `version`. The random
/// suffix keeps the keys of entries written by racing changes apart.
fn entry(at: DateTime<Utc>, version: u64, index: usize, kind: HistoryKind, body: serde_json::Value) -> HistoryEntry {
    HistoryEntry { at, seq: format!("{version:010}#{index:02}#{:08x}", fastrand::u32(..)), kind, body }
}

/// The changes decided on a lead as read, and saved on its version.
#[derive(Clone, Copy, Debug)]
enum Job<'a> {
    SlaCheck,
    Cleanup,
    Sales(&'a SalesEvent),
}

/// What a job's decision about one lead does.
#[derive(Clone, Copy, Debug, Default)]
struct Effect {
    escalations: usize,
    reassigned: bool,
    rescored: bool,
    dormant: bool,
}

/// A lead leaving its owner (dormant, or back to nurturing): the owner is kept
/// as the previous owner and their capacity released.
fn let_go(lead: &mut Lead, was_open: bool, parts: &mut Parts) {
    if let Some(owner) = lead.owner.take() {
        if was_open {
            parts.load.push((owner.clone(), -1));
        }
        lead.previous_owner = Some(owner);
    }
    lead.sla = None;
    lead.sla_due = None;
}

/// A pool's turn for routing: the position in its cycle that the pick starts
/// from; other pools (and routing before any turn is taken) start at 0.
#[derive(Clone, Copy)]
struct Turn<'a> {
    pool: &'a str,
    position: u64,
}

impl Turn<'_> {
    const NONE: Turn<'static> = Turn { pool: "", position: 0 };
}

impl PoolCursors for Turn<'_> {
    fn cursor(&self, pool: &str) -> u64 {
        if pool == self.pool { self.position } else { 0 }
    }
}

/// The parts of a change besides the lead and its history.
#[derive(Default)]
struct Parts {
    outbox: Vec<Pending>,
    skip: Option<(String, u64)>,
    load: Vec<(String, i64)>,
    account: Option<(String, String)>,
}

impl Parts {
    /// A pick that passed over unavailable members moves the pool's counter past
    /// them too, so the next turn starts after the member chosen.
    fn skip_past(&mut self, pool: &str, cursor: CursorMove) {
        let skipped = cursor.to.saturating_sub(cursor.from).saturating_sub(1);
        if skipped > 0 {
            self.skip = Some((pool.to_owned(), skipped));
        }
    }

    /// A notification about the lead that carries a note instead of the scoring.
    fn alert(
        &mut self,
        rules: &RuleSet,
        lead: &Lead,
        kind: NotificationKind,
        to: Vec<String>,
        note: String,
        now: DateTime<Utc>,
    ) {
        let ctx = Context { kind, to, explanation: None, chain: &[], note: Some(note), at: now };
        self.notify(message::render(rules, lead, self.outbox.len(), ctx), now);
    }

    fn notify(&mut self, notification: Notification, now: DateTime<Utc>) {
        self.outbox.push(Pending { notification, lease_until: now + DELIVERY_LEASE, attempts: 0 });
    }

    fn into_change(self, lead: Lead, expected_version: u64, history: Vec<HistoryEntry>) -> Change {
        Change {
            lead,
            expected_version,
            history,
            outbox: self.outbox,
            skip: self.skip,
            load: self.load,
            account: self.account,
        }
    }
}

/// A company's email domain, for account ownership; `None` for free email.
fn account_domain(rules: &RuleSet, lead: &Lead) -> Option<String> {
    let domain = lead.profile.email.domain();
    (!rules.capture.is_free_email(domain)).then(|| domain.to_owned())
}

fn manager_of(rules: &RuleSet, rep: &str) -> Option<String> {
    let routing = &rules.routing;
    let r = routing.rep_index(rep)?;
    routing.reps[r].manager.map(|m| routing.reps[m].id.clone())
}

/// Every rep who manages someone.
fn managers(rules: &RuleSet) -> Vec<String> {
    let routing = &rules.routing;
    let mut out: Vec<String> = Vec::new();
    for m in routing.reps.iter().filter_map(|r| r.manager) {
        let id = &routing.reps[m].id;
        if !out.contains(id) {
            out.push(id.clone());
        }
    }
    out
}

/// When idleness next changes an open lead: the day a decay step lowers its
/// score, or the day it goes dormant (now, once its unanswered contact attempts
/// reach the limit); `None` when neither can happen.
pub fn hygiene_at(rules: &RuleSet, lead: &Lead, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if matches!(lead.status, Status::Converted | Status::Disqualified | Status::Dormant) {
        return None;
    }
    let dormancy = &rules.lifecycle.dormancy;
    if let Some(limit) = dormancy.after_unanswered
        && lead.unanswered >= limit
        && dormancy.statuses.contains(&lead.status)
    {
        // Enough unanswered attempts: dormant at the next clean-up.
        return Some(now);
    }
    let idle = idle_days(lead.last_activity_at, now);
    let mut days: Option<u32> = None;
    let mut consider = |d: u32| {
        if d > idle {
            days = Some(days.map_or(d, |cur| cur.min(d)));
        }
    };
    if let Some(limit) = rules.lifecycle.dormancy.after_days_idle
        && rules.lifecycle.dormancy.statuses.contains(&lead.status)
    {
        consider(limit);
    }
    if let Some(decay) = rules.scoring.decay
        && decay.percent_per_week > 0.0
        && has_positive_engagement(rules, lead)
    {
        // The factor reaches 0 after this many weeks; later weeks change nothing.
        let last_week = (100.0 / decay.percent_per_week).ceil() as u32;
        let week = idle.saturating_sub(decay.after_days) / 7 + 1;
        if week <= last_week {
            consider(decay.after_days + 7 * week);
        }
    }
    days.map(|d| lead.last_activity_at + chrono::Duration::days(i64::from(d)))
}

fn has_positive_engagement(rules: &RuleSet, lead: &Lead) -> bool {
    rules.scoring.engagement.iter().any(|e| e.points > 0 && lead.events.get(&e.event).is_some_and(|n| *n > 0))
}

/// Waits before another attempt: full jitter over an exponential ceiling
/// (5 ms, 10 ms, ... up to 320 ms).
async fn backoff(attempt: u32) {
    let ceiling = 5u64 << attempt.min(6);
    tokio::time::sleep(StdDuration::from_millis(fastrand::u64(0..=ceiling))).await;
}
