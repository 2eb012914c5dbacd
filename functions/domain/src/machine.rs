//! A lead's life as a state machine.
//!
//! [`decide`] is the one place where leadflow decides what happens to a lead:
//! given the input (a form post, engagement events, a sales event, the SLA
//! check's tick, the nightly clean-up, a repair), the lead as stored (or none),
//! what is known of the team, the rules and the time leadflow learned of the
//! input, it returns a typed [`Decision`]: the next lead, its history records,
//! the notifications it causes and the team changes (open-lead counts with the
//! capacity each increment must respect, pool turns, account owners). No I/O,
//! no clock: the service reads, calls [`decide`], saves the whole decision in
//! one conditional write on the lead's version, then delivers.
//!
//! Routing needs to know who is available and, for a round-robin or weighted
//! pool, which turn this assignment takes. The machine does not fetch them: it
//! answers [`Outcome::Needs`] and is asked again with the answer, like the
//! sans-IO protocol cores that ask their driver for more input.
//!
//! Two times are kept apart. An event's `happened_at` is when it happened: it
//! moves the lead's activity (idleness, decay, dormancy). `now` is when leadflow
//! learned of it: clocks, deadlines, escalations, leases and `updated_at` run
//! from it, so a late event never starts a first-response clock that has
//! already run out.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use thiserror::Error;

use crate::lead::{FieldTarget, Profile, Status};
use crate::message::{self, Context};
use crate::record::{HistoryEntry, Lead, Notification, NotificationKind, Pending, Record, SlaClock};
use crate::rules::capture::MergePolicy;
use crate::rules::lifecycle::{LifecycleError, ReactivationAction, SalesEvent};
use crate::rules::routing::{AssignContext, Assignment, CursorMove, PoolCursors, Strategy, Unavailable, Workload};
use crate::rules::scoring::idle_days;
use crate::rules::sla::Audience;
use crate::rules::{Explanation, RuleSet};

/// How long the writer of a notification has to publish it before the SLA
/// check may retry it.
pub const DELIVERY_LEASE: Duration = Duration::minutes(2);

/// How far in the future an event's own time may be (senders' clocks drift);
/// an event further ahead is refused.
pub const CLOCK_SKEW: Duration = Duration::minutes(5);

/// What happened to a lead, as the machine takes it.
#[derive(Clone, Debug)]
pub enum Input<'a> {
    /// A form post: create the lead, or merge into it by the rules' merge policy.
    /// A form post, read; `warnings` are what did not fit (kept in the history).
    FormPost { profile: &'a Profile, warnings: &'a [crate::form::Warning] },
    /// Engagement events (type and count) that happened at `happened_at`.
    Engagement { counts: &'a [(String, u32)], happened_at: DateTime<Utc>, event_id: Option<&'a str> },
    /// A sales event from the CRM that happened at `happened_at`.
    Sales { event: &'a SalesEvent, happened_at: DateTime<Utc>, event_id: Option<&'a str> },
    /// The SLA check's tick: fire the escalation steps that are due.
    SlaTick,
    /// The nightly clean-up: decay and dormancy.
    Hygiene,
    /// A row of an imported file; with `handoff`, a lead at the hand-off
    /// tier is routed and handed off (notifying only with `notify`).
    Import { row: &'a crate::import::ImportRow, handoff: bool, notify: bool },
    /// A rep's action from the web app, at `now`.
    Act { by: &'a str, action: &'a Action, event_id: Option<&'a str> },
    /// Derive the lead's state again from its facts (a lead left without a
    /// score, nurturing at the hand-off tier, or a running clock out of the
    /// SLA check's index), as `leadflow doctor --repair` does.
    Repair { problem: &'a str },
}

impl Input<'_> {
    pub fn name(&self) -> &'static str {
        match self {
            Input::FormPost { .. } => "form_post",
            Input::Engagement { .. } => "engagement",
            Input::Sales { .. } => "sales",
            Input::SlaTick => "sla_tick",
            Input::Hygiene => "hygiene",
            Input::Act { .. } => "act",
            Input::Import { .. } => "import",
            Input::Repair { .. } => "repair",
        }
    }
}

/// What a rep can do to a lead from the web app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// A sales event, recorded as the rep's.
    Sales(SalesEvent),
    /// The owner gives the lead back: another available member of its pool
    /// takes it with a new first-response clock, or, when nobody can, it waits
    /// unassigned and the managers are told.
    NotMine,
    /// A manager gives the lead to `to`, a member of their team (or
    /// themselves); past `to`'s capacity only with `over_capacity`.
    Assign { to: String, over_capacity: bool },
}

/// What a rep may do with a lead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Nothing: not theirs, and not their team's.
    None,
    /// The lead's owner: sales events and "not mine".
    Owner,
    /// The owner's manager, or, for a lead nobody owns, any manager: all of
    /// the owner's actions, and assigning.
    Manager,
}

/// What `rep` may do with `lead` under the rules: a rep acts on their own
/// leads, a manager on their team's and on leads nobody owns.
pub fn access(rules: &RuleSet, lead: &Lead, rep: &str) -> Access {
    if rules.routing.rep_index(rep).is_none() {
        return Access::None;
    }
    match lead.owner.as_deref() {
        Some(owner) if owner == rep => Access::Owner,
        Some(owner) if manager_of(rules, owner).as_deref() == Some(rep) => Access::Manager,
        None if managers(rules).iter().any(|m| m == rep) => Access::Manager,
        _ => Access::None,
    }
}

/// The reps a manager may assign leads to: their team, and themselves.
pub fn team_of(rules: &RuleSet, manager: &str) -> Vec<String> {
    let routing = &rules.routing;
    let Some(m) = routing.rep_index(manager) else {
        return Vec::new();
    };
    let mut team: Vec<String> = vec![manager.to_owned()];
    team.extend(routing.reps.iter().filter(|r| r.manager == Some(m)).map(|r| r.id.clone()));
    team
}

/// What routing knows about the team: open-lead counts, the owner of the
/// company's other leads, and the turn taken from a pool (if any).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TeamState {
    pub open: BTreeMap<String, u32>,
    /// Runtime settings over `routing.yaml`, by rep.
    pub settings: BTreeMap<String, crate::team::RepSettings>,
    pub account_owner: Option<String>,
    /// A pool and the position of the turn this decision took in its cycle.
    pub turn: Option<(String, u64)>,
}

impl Workload for TeamState {
    fn open_leads(&self, rep: &str) -> u32 {
        self.open.get(rep).copied().unwrap_or(0)
    }

    fn settings(&self, rep: &str) -> Option<&crate::team::RepSettings> {
        self.settings.get(rep)
    }
}

impl PoolCursors for TeamState {
    fn cursor(&self, pool: &str) -> u64 {
        match &self.turn {
            Some((p, position)) if p == pool => *position,
            _ => 0,
        }
    }
}

/// What the machine needs before it can decide.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Need {
    /// The team's open-lead counts and, for `account_match`, the owner of this
    /// company domain's leads.
    Team { account: Option<String> },
    /// A turn from this round-robin or weighted pool.
    Turn { pool: String },
}

/// Why an input cannot be applied.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum Refusal {
    #[error("no lead has this email or id")]
    UnknownLead,
    #[error(transparent)]
    Rejected(#[from] LifecycleError),
    #[error("the event happened at {at}, in the future (more than {} minutes ahead)", CLOCK_SKEW.num_minutes())]
    FromTheFuture { at: DateTime<Utc> },
    /// The rep may not act on this lead (it moved to someone else meanwhile,
    /// or was never theirs).
    #[error("{}", match owner { Some(o) => format!("this lead is with {o} now"), None => "this lead has no owner now".to_owned() })]
    NotYours { owner: Option<String> },
    /// A manager's assignment that cannot be made, and why.
    #[error("{0}")]
    CannotAssign(String),
}

/// One rep's open-lead count moving. An increment with a `capacity` succeeds
/// only while the count is below it, in the same write as the assignment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadChange {
    pub rep: String,
    pub delta: i64,
    pub capacity: Option<u32>,
}

/// What changes beside the lead, in the same write.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TeamChanges {
    pub load: Vec<LoadChange>,
    /// A round-robin or weighted pick that passed over unavailable members: the
    /// pool, and how many positions its turn counter moves on beyond the turn taken.
    pub skip: Option<(String, u64)>,
    /// A company email domain and the rep who now owns it (for `account_match`).
    pub account: Option<(String, String)>,
}

/// What a decision did, for the jobs' reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Effect {
    pub created: bool,
    pub handed_off: bool,
    pub escalations: usize,
    pub reassigned: bool,
    pub rescored: bool,
    pub dormant: bool,
}

/// Everything one decision changes, saved in one write.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// The next lead; its `version` is `expected_version + 1`.
    pub lead: Lead,
    /// The version the decision was made on; 0 for a lead that does not exist yet.
    pub expected_version: u64,
    pub history: Vec<HistoryEntry>,
    pub outbox: Vec<Pending>,
    pub team: TeamChanges,
    pub effect: Effect,
    /// What the decision adds to the daily roll-ups, saved in the same write.
    pub rollup: crate::facts::Tally,
}

/// The machine's answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Decided(Box<Decision>),
    /// Ask again with this answered.
    Needs(Need),
    /// Nothing to change.
    Unchanged,
}

/// Decides what `input` does to `lead` (as stored; `None` when there is none),
/// with `team` as known so far, at `now` (when leadflow learned of the input).
pub fn decide(
    rules: &RuleSet,
    lead: Option<&Lead>,
    input: &Input<'_>,
    team: Option<&TeamState>,
    now: DateTime<Utc>,
) -> Result<Outcome, Refusal> {
    let mut m = Machine { rules, team, now, draft: Draft::default() };
    let result = match input {
        Input::FormPost { profile, warnings } => m.form_post(lead, profile, warnings),
        Input::Engagement { counts, happened_at, event_id } => {
            m.engagement(lead.ok_or(Refusal::UnknownLead)?, counts, *happened_at, *event_id)
        }
        Input::Sales { event, happened_at, event_id } => {
            m.sales(lead.ok_or(Refusal::UnknownLead)?, event, *happened_at, *event_id)
        }
        Input::Import { row, handoff, notify } => m.import(lead, row, *handoff, *notify),
        Input::SlaTick => m.sla_tick(lead.ok_or(Refusal::UnknownLead)?),
        Input::Hygiene => m.hygiene(lead.ok_or(Refusal::UnknownLead)?),
        Input::Act { by, action, event_id } => m.act(lead.ok_or(Refusal::UnknownLead)?, by, action, *event_id),
        Input::Repair { problem } => m.repair(lead.ok_or(Refusal::UnknownLead)?, problem),
    };
    match result {
        Ok(Some(next)) => Ok(Outcome::Decided(Box::new(m.draft.finish(rules, lead, next, now)))),
        Ok(None) => Ok(Outcome::Unchanged),
        Err(Stop::Needs(need)) => Ok(Outcome::Needs(need)),
        Err(Stop::Refused(r)) => Err(r),
    }
}

/// Why deciding stopped early.
enum Stop {
    Needs(Need),
    Refused(Refusal),
}

impl From<Refusal> for Stop {
    fn from(r: Refusal) -> Stop {
        Stop::Refused(r)
    }
}

impl From<LifecycleError> for Stop {
    fn from(e: LifecycleError) -> Stop {
        Stop::Refused(Refusal::Rejected(e))
    }
}

/// The parts of a decision besides the next lead, as they are made.
#[derive(Default)]
struct Draft {
    records: Vec<Record>,
    notifications: Vec<Notification>,
    team: TeamChanges,
    effect: Effect,
}

impl Draft {
    fn finish(mut self, rules: &RuleSet, before: Option<&Lead>, mut lead: Lead, now: DateTime<Utc>) -> Decision {
        let expected_version = before.map_or(0, |l| l.version);
        lead.version = expected_version + 1;
        self.team.load = merge_load(std::mem::take(&mut self.team.load));
        let rollup = crate::facts::account(rules, before, &mut lead, &self.records, now);
        let rules_version = &rules.version;
        let mut records = self.records;
        for n in &self.notifications {
            records.push(Record::Notification { id: n.id.clone(), kind: n.kind, to: n.to.clone() });
        }
        let history = records
            .into_iter()
            .enumerate()
            .map(|(i, r)| HistoryEntry::new(now, lead.version, i, r).under(rules_version))
            .collect();
        let outbox = self
            .notifications
            .into_iter()
            .map(|mut notification| {
                // Rendered before the version moved on: name it by the new one.
                notification.owner.clone_from(&lead.owner);
                Pending { notification, lease_until: now + DELIVERY_LEASE, attempts: 0 }
            })
            .collect();
        Decision { lead, expected_version, history, outbox, team: self.team, effect: self.effect, rollup }
    }
}

/// One change per rep (a store writes each rep's count once per write): the
/// net delta, checked against the capacity of any increment in it.
fn merge_load(load: Vec<LoadChange>) -> Vec<LoadChange> {
    let mut out: Vec<LoadChange> = Vec::new();
    for change in load {
        match out.iter_mut().find(|c| c.rep == change.rep) {
            Some(c) => {
                c.delta += change.delta;
                c.capacity = c.capacity.or(change.capacity);
            }
            None => out.push(change),
        }
    }
    out.retain(|c| c.delta != 0);
    for c in &mut out {
        if c.delta < 0 {
            c.capacity = None;
        }
    }
    out
}

struct Machine<'a> {
    rules: &'a RuleSet,
    team: Option<&'a TeamState>,
    now: DateTime<Utc>,
    draft: Draft,
}

type Step<T> = Result<T, Stop>;

impl Machine<'_> {
    fn form_post(
        &mut self,
        lead: Option<&Lead>,
        profile: &Profile,
        warnings: &[crate::form::Warning],
    ) -> Step<Option<Lead>> {
        let now = self.now;
        let (mut next, before, capture) = self.captured(lead, profile, warnings.to_vec(), now);
        next.count_events(&[("form_submission".to_owned(), 1)], now);
        next.updated_at = now.max(next.updated_at);
        self.draft.records.push(Record::Event {
            kind: "form_submission".to_owned(),
            count: 1,
            happened_at: now,
            event_id: None,
            source: profile.source.clone(),
            by: None,
        });
        self.draft.records.extend(capture);
        let kinds = ["form_submission".to_owned()];
        self.derive(&mut next, before, &kinds)?;
        Ok(Some(next))
    }

    /// A captured profile as the next lead: merged into the stored one by the
    /// merge policy, or a new lead created `at`. Also the status it had, and
    /// the capture record to keep when anything did not fit or was replaced.
    fn captured(
        &mut self,
        lead: Option<&Lead>,
        profile: &Profile,
        mut warnings: Vec<crate::form::Warning>,
        at: DateTime<Utc>,
    ) -> (Lead, Option<Status>, Option<Record>) {
        let (next, before) = match lead {
            Some(stored) => {
                let mut next = stored.clone();
                let capture = &self.rules.capture;
                let keep_first =
                    |f: &FieldTarget| capture.merge_default == MergePolicy::KeepFirst || capture.keep_first.contains(f);
                let dropped = next.merge_capture(profile, &keep_first, capture.limits.custom_fields);
                if dropped > 0 {
                    warnings.push(crate::form::Warning {
                        field: "custom".to_owned(),
                        problem: format!(
                            "{dropped} custom field(s) dropped: the lead holds at most {}",
                            capture.limits.custom_fields
                        ),
                    });
                }
                (next, Some(stored.status))
            }
            None => {
                self.draft.effect.created = true;
                (Lead::new(profile.clone(), at), None)
            }
        };
        // On a lead a rep owns, the values a post replaced are kept.
        let replaced: BTreeMap<String, String> = match lead.filter(|l| l.owner.is_some()) {
            // Profile fields only: bounded, and what an impostor would change.
            Some(stored) => profile
                .present_fields()
                .into_iter()
                .filter(|f| matches!(f, FieldTarget::Profile(_)))
                .filter_map(|f| {
                    let old = stored.profile.value_text(&f)?;
                    (next.profile.value_text(&f).as_ref() != Some(&old)).then(|| (f.to_string(), old))
                })
                .collect(),
            None => BTreeMap::new(),
        };
        let record = (!warnings.is_empty() || !replaced.is_empty()).then_some(Record::Capture { warnings, replaced });
        (next, before, record)
    }

    /// A row of an imported file: the lead created (or merged) with the row's
    /// own times and counts, scored, and handed off only when asked.
    fn import(
        &mut self,
        lead: Option<&Lead>,
        row: &crate::import::ImportRow,
        handoff: bool,
        notify: bool,
    ) -> Step<Option<Lead>> {
        let rules = self.rules;
        let now = self.now;
        // A row's own times; a row without them is dated now only when it
        // creates the lead, and leaves a stored lead's times as they are.
        let created = row.created_at.map(|t| self.happened(t)).transpose()?;
        let last = row.last_activity_at.or(row.created_at).map(|t| self.happened(t)).transpose()?;
        let last = last.map(|l| created.map_or(l, |c| l.max(c)));
        let (mut next, before, capture) =
            self.captured(lead, &row.profile, row.warnings.clone(), created.unwrap_or(now));
        let at = self.draft.records.len();
        if let Some(created) = created {
            next.created_at = next.created_at.min(created);
        }
        match (lead, last) {
            (Some(_), Some(last)) => next.last_activity_at = next.last_activity_at.max(last),
            (None, Some(last)) => next.last_activity_at = last,
            (_, None) => {}
        }
        // The row's counts are totals in the system it comes from, not new
        // events: the larger count is kept, so a row imported twice counts once.
        for (kind, n) in row.events.iter().filter(|(k, n)| **n > 0 && rules.events.slot(k).is_some()) {
            let count = next.events.entry(kind.clone()).or_insert(0);
            *count = (*count).max(*n);
        }
        next.updated_at = lead.map_or(now, |l| now.max(l.updated_at));
        self.draft.records.extend(capture);
        if handoff {
            self.derive(&mut next, before, &[])?;
        } else {
            let tier = self.score(&mut next);
            next.hygiene_at = hygiene_at(rules, &next, now);
            next.held = next.status == Status::Nurturing && next.owner.is_none() && rules.scoring.is_handoff(tier);
        }
        if !notify {
            // Notifications held: the lead waits in its owner's queue in the
            // web app, and its clock runs as for any hand-off.
            self.draft.notifications.clear();
        }
        self.draft.records.insert(at, Record::Imported { created_at: next.created_at, held: next.held });
        Ok(Some(next))
    }

    fn engagement(
        &mut self,
        lead: &Lead,
        counts: &[(String, u32)],
        happened_at: DateTime<Utc>,
        event_id: Option<&str>,
    ) -> Step<Option<Lead>> {
        let happened_at = self.happened(happened_at)?;
        let mut next = lead.clone();
        next.count_events(counts, happened_at);
        // Only event types the rules know are counted on the lead (others score
        // nothing); every event stays in the history. So no sender can grow a
        // lead past what a store item holds by inventing event names.
        next.events.retain(|kind, _| lead.events.contains_key(kind) || self.rules.events.slot(kind).is_some());
        next.updated_at = self.now.max(lead.updated_at);
        for (kind, count) in counts {
            self.draft.records.push(Record::Event {
                kind: kind.clone(),
                count: *count,
                happened_at,
                event_id: event_id.map(str::to_owned),
                source: None,
                by: None,
            });
        }
        let kinds: Vec<String> = counts.iter().map(|(k, _)| k.clone()).collect();
        self.derive(&mut next, Some(lead.status), &kinds)?;
        Ok(Some(next))
    }

    /// An event's own time: never after now (a clock a little ahead is taken
    /// as now); further ahead is refused.
    fn happened(&self, at: DateTime<Utc>) -> Result<DateTime<Utc>, Refusal> {
        if at > self.now + CLOCK_SKEW {
            return Err(Refusal::FromTheFuture { at });
        }
        Ok(at.min(self.now))
    }

    /// Score, tier and hand-off after the lead's facts changed; `before` is the
    /// status it had (`None` for a new lead).
    fn derive(&mut self, next: &mut Lead, before: Option<Status>, kinds: &[String]) -> Step<()> {
        let rules = self.rules;
        let now = self.now;
        next.held = false;
        let (explanation, tier) = rescore(rules, next, now);
        next.score = explanation.score.score;
        next.tier.clone_from(&explanation.score.tier);
        self.draft
            .records
            .push(Record::Scored { rules_version: rules.version.clone(), explanation: Box::new(explanation.clone()) });
        let status = before.unwrap_or(Status::Nurturing);
        let reactivation = kinds
            .iter()
            .filter_map(|k| rules.events.slot(k))
            .find_map(|slot| rules.lifecycle.reactivation(status, slot));
        let back_to_owner = next.previous_owner.clone().filter(|o| rules.routing.rep_index(o).is_some());
        let woken = reactivation.is_some();
        if let (Some(ReactivationAction::NotifyOwner), Some(owner)) = (reactivation, back_to_owner) {
            self.reactivate(next, tier, owner, &explanation);
            self.transition(status, next.status, "reactivation");
        } else if (woken || status == Status::Nurturing) && rules.scoring.is_handoff(tier) {
            // A new hand-off; or a woken lead routed again as a new lead would be
            // (with `reroute`, or with no last owner to go back to).
            let a = self.route(next)?;
            self.hand_off(next, tier, &a, &explanation);
            self.transition(status, next.status, if woken { "reactivation" } else { "handoff" });
        } else if woken {
            // Woken below the hand-off tier: back to marketing, as a new lead
            // would be, and handed off when it crosses the tier.
            next.status = Status::Nurturing;
            self.transition(status, next.status, "reactivation");
        }
        next.hygiene_at = hygiene_at(rules, next, now);
        Ok(())
    }

    /// Scores the lead and keeps the explanation; the tier's index.
    fn score(&mut self, next: &mut Lead) -> usize {
        let rules = self.rules;
        let (explanation, tier) = rescore(rules, next, self.now);
        next.score = explanation.score.score;
        next.tier.clone_from(&explanation.score.tier);
        self.draft
            .records
            .push(Record::Scored { rules_version: rules.version.clone(), explanation: Box::new(explanation) });
        tier
    }

    fn transition(&mut self, from: Status, to: Status, cause: &str) {
        if from != to {
            self.draft.records.push(Record::Transition {
                from,
                to,
                cause: cause.to_owned(),
                dormancy: None,
                reason: None,
            });
        }
    }

    fn team(&self, lead: &Lead) -> Step<&TeamState> {
        self.team.ok_or_else(|| Stop::Needs(Need::Team { account: account_domain(self.rules, lead) }))
    }

    /// Routes a lead. When the choice falls to a round-robin or weighted pool,
    /// the pool's turn is needed and the member at (or after) it is chosen.
    /// Whether a counted pool is reached depends only on who is available, not
    /// on the turn, so routing again with the turn reaches the same pool.
    fn route(&self, lead: &Lead) -> Step<Assignment> {
        let rules = self.rules;
        let team = self.team(lead)?;
        let mut slots = Vec::new();
        rules.event_slots(&lead.events, &mut slots);
        let mut facts = rules.facts(&lead.profile, &slots, lead.status, lead.bant);
        facts.score = Some(lead.score);
        facts.tier = rules.scoring.tier_index(&lead.tier);
        let ctx = AssignContext {
            today: self.now.date_naive(),
            previous_owner: lead.owner.as_deref().or(lead.previous_owner.as_deref()),
            account_owner: team.account_owner.as_deref(),
        };
        let a = rules.routing.assign(&facts, &ctx, team, team);
        if let (Some(pool), Some(_)) = (&a.pool, a.cursor)
            && team.turn.as_ref().is_none_or(|(p, _)| p != pool)
        {
            return Err(Stop::Needs(Need::Turn { pool: pool.clone() }));
        }
        Ok(a)
    }

    /// Hands a lead off to the assignment's rep, or marks it unassigned and
    /// alerts the managers.
    fn hand_off(&mut self, lead: &mut Lead, tier: usize, a: &Assignment, explanation: &Explanation) {
        let rules = self.rules;
        self.draft
            .records
            .push(Record::Assignment { rules_version: rules.version.clone(), assignment: Box::new(a.clone()) });
        match &a.rep {
            Some(rep) => {
                lead.status = Status::Assigned;
                lead.owner = Some(rep.clone());
                lead.pool.clone_from(&a.pool);
                lead.unanswered = 0;
                self.start_clock(lead, tier);
                // Sticky and account ownership never take a lead past capacity:
                // sticky only keeps an owner under it; account ownership ignores it.
                let account_match =
                    a.chain.iter().any(|s| matches!(s, crate::rules::routing::Step::AccountMatch { .. }));
                let capacity = if account_match { None } else { capacity_of(rules, self.team, rep) };
                self.draft.team.load.push(LoadChange { rep: rep.clone(), delta: 1, capacity });
                if let (Some(pool), Some(cursor)) = (&a.pool, a.cursor) {
                    self.skip_past(pool, cursor);
                }
                if let Some(domain) = account_domain(rules, lead) {
                    self.draft.team.account = Some((domain, rep.clone()));
                }
                self.draft.effect.handed_off = true;
                let ctx = Context {
                    kind: NotificationKind::Handoff,
                    to: vec![rep.clone()],
                    explanation: Some(explanation),
                    chain: &a.chain,
                    note: None,
                    at: self.now,
                };
                self.notify(lead, ctx);
            }
            None => {
                lead.status = Status::Unassigned;
                lead.owner = None;
                lead.sla = None;
                // The SLA check routes it again at every run; this is when the
                // managers are reminded of it.
                lead.sla_due = rules.sla.next_reminder(self.now);
                let ctx = Context {
                    kind: NotificationKind::Unassigned,
                    to: managers(rules),
                    explanation: Some(explanation),
                    chain: &a.chain,
                    note: Some("Nobody in the lead's pools is available; please assign it.".to_owned()),
                    at: self.now,
                };
                self.notify(lead, ctx);
            }
        }
    }

    /// A dormant lead that woke up goes back to its last owner, who is told why,
    /// with a new first-response clock.
    fn reactivate(&mut self, lead: &mut Lead, tier: usize, owner: String, explanation: &Explanation) {
        lead.status = Status::Assigned;
        lead.owner = Some(owner.clone());
        lead.unanswered = 0;
        self.start_clock(lead, tier);
        self.draft.team.load.push(LoadChange { rep: owner.clone(), delta: 1, capacity: None });
        let ctx = Context {
            kind: NotificationKind::Reactivation,
            to: vec![owner],
            explanation: Some(explanation),
            chain: &[],
            note: Some("This dormant lead is active again and back with you.".to_owned()),
            at: self.now,
        };
        self.notify(lead, ctx);
    }

    /// Starts the first-response clock of a lead handed off now.
    fn start_clock(&self, lead: &mut Lead, tier: usize) {
        let sla = &self.rules.sla;
        let now = self.now;
        lead.sla = sla.deadline(tier, now).map(|deadline| SlaClock { handed_off_at: now, deadline, fired: 0 });
        lead.sla_due = lead.sla.and_then(|c| sla.next_due(c.deadline, 0));
    }

    /// A pick that passed over unavailable members moves the pool's counter past
    /// them too, so the next turn starts after the member chosen.
    fn skip_past(&mut self, pool: &str, cursor: CursorMove) {
        let skipped = cursor.to.saturating_sub(cursor.from).saturating_sub(1);
        if skipped > 0 {
            self.draft.team.skip = Some((pool.to_owned(), skipped));
        }
    }

    /// One notification per recipient, so that each carries links that are
    /// the recipient's own; with no recipient, one that reaches nobody's
    /// subscription but stays in the outbox and the history.
    fn notify(&mut self, lead: &Lead, ctx: Context<'_>) {
        // The notification is named by the version this decision writes.
        let mut named = lead.clone();
        named.version = lead.version + 1;
        let recipients: Vec<Vec<String>> =
            if ctx.to.is_empty() { vec![Vec::new()] } else { ctx.to.iter().map(|r| vec![r.clone()]).collect() };
        for to in recipients {
            let n = self.draft.notifications.len();
            let ctx = Context { to, ..ctx.clone() };
            self.draft.notifications.push(message::render(self.rules, &named, n, ctx));
        }
    }

    fn alert(&mut self, lead: &Lead, kind: NotificationKind, to: Vec<String>, note: String) {
        let ctx = Context { kind, to, explanation: None, chain: &[], note: Some(note), at: self.now };
        self.notify(lead, ctx);
    }

    fn sales(
        &mut self,
        lead: &Lead,
        event: &SalesEvent,
        happened_at: DateTime<Utc>,
        event_id: Option<&str>,
    ) -> Step<Option<Lead>> {
        let rules = self.rules;
        let now = self.now;
        let happened_at = self.happened(happened_at)?;
        let t = rules.lifecycle.apply(lead.status, lead.bant, event)?;
        if let (SalesEvent::Outcome(_), Some(known)) = (event, &lead.facts.outcome) {
            return Err(LifecycleError::OutcomeKnown(known.deal.result()).into());
        }
        let mut next = lead.clone();
        next.updated_at = now.max(lead.updated_at);
        if !matches!(event, SalesEvent::ContactAttempt) {
            // An attempt that got no answer is the rep's doing, not the lead's.
            next.last_activity_at = happened_at.max(lead.last_activity_at);
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
            SalesEvent::Outcome(deal) => {
                next.facts.outcome = Some(crate::facts::Outcome { deal: deal.clone(), at: now });
            }
            SalesEvent::Qualified(_) | SalesEvent::Converted => {}
        }
        self.draft.records.push(Record::Event {
            kind: event.kind().to_owned(),
            count: 1,
            happened_at,
            event_id: event_id.map(str::to_owned),
            source: None,
            by: None,
        });
        if t.to == Status::Nurturing {
            // Back to marketing: the owner lets go, and is remembered.
            self.let_go(&mut next, lead.status.is_open());
        } else if let Some(owner) = &next.owner {
            match (lead.status.is_open(), next.status.is_open()) {
                (true, false) => {
                    self.draft.team.load.push(LoadChange { rep: owner.clone(), delta: -1, capacity: None })
                }
                (false, true) => self.draft.team.load.push(LoadChange { rep: owner.clone(), delta: 1, capacity: None }),
                _ => {}
            }
        }
        if t.from != t.to {
            self.draft.records.push(Record::Transition {
                from: t.from,
                to: t.to,
                cause: event.kind().to_owned(),
                dormancy: None,
                reason: next.disqualify_reason.clone().filter(|_| t.to == Status::Disqualified),
            });
        }
        next.expires_at = rules.lifecycle.expires_at(t.to, now);
        let (explanation, _) = rescore(rules, &next, now);
        next.score = explanation.score.score;
        next.tier.clone_from(&explanation.score.tier);
        next.hygiene_at = hygiene_at(rules, &next, now);
        Ok(Some(next))
    }

    /// A rep's action from the web app; who may do what is [`access`].
    fn act(&mut self, lead: &Lead, by: &str, action: &Action, event_id: Option<&str>) -> Step<Option<Lead>> {
        let access = access(self.rules, lead, by);
        match action {
            Action::Sales(event) => {
                // A lead nobody owns is assigned first: a sales event would take it
                // out of the unassigned queue with nobody working it.
                if access == Access::None || lead.owner.is_none() {
                    return Err(Refusal::NotYours { owner: lead.owner.clone() }.into());
                }
                let next = self.sales(lead, event, self.now, event_id)?;
                for record in &mut self.draft.records {
                    if let Record::Event { by: who, .. } = record {
                        *who = Some(by.to_owned());
                    }
                }
                Ok(next)
            }
            Action::NotMine => {
                if access == Access::None {
                    return Err(Refusal::NotYours { owner: lead.owner.clone() }.into());
                }
                if !lead.status.is_open() {
                    return Err(LifecycleError::NotAllowed { status: lead.status, event: "not_mine" }.into());
                }
                self.give_back(lead, &format!("{by} said the lead is not theirs."), "not_mine")
            }
            Action::Assign { to, over_capacity } => {
                if access != Access::Manager {
                    return Err(Refusal::CannotAssign("only the owner's manager can assign this lead".into()).into());
                }
                self.assign_by(lead, by, to, *over_capacity)
            }
        }
    }

    /// Moves a lead to `rep`, picked from its pool at `cursor`: the load moves
    /// with it (the increment within `rep`'s capacity) and the pool's turn
    /// passes the members skipped. Returns the rep it moved from.
    fn move_to(&mut self, next: &mut Lead, rep: &str, cursor: Option<(String, CursorMove)>) -> Option<String> {
        let from = next.owner.replace(rep.to_owned());
        if let Some(old) = &from {
            self.draft.team.load.push(LoadChange { rep: old.clone(), delta: -1, capacity: None });
        }
        let capacity = capacity_of(self.rules, self.team, rep);
        self.draft.team.load.push(LoadChange { rep: rep.to_owned(), delta: 1, capacity });
        if let Some((pool, cursor)) = cursor {
            self.skip_past(&pool, cursor);
        }
        self.draft.effect.reassigned = true;
        from
    }

    /// The owner lets a lead go ("not mine", or they left the team): another
    /// available member of the pool takes it with a fresh clock; or nobody
    /// can, and the managers decide. `why` goes into the history.
    fn give_back(&mut self, lead: &Lead, why: &str, cause: &str) -> Step<Option<Lead>> {
        let rules = self.rules;
        let mut next = lead.clone();
        next.updated_at = self.now.max(lead.updated_at);
        let why = why.to_owned();
        let (explanation, tier) = rescore(rules, &next, self.now);
        match self.reassign_pick(&next)? {
            Some((rep, cursor)) => {
                let from = self.move_to(&mut next, &rep, cursor);
                if next.status == Status::Assigned {
                    self.start_clock(&mut next, tier);
                }
                self.draft.records.push(Record::Reassignment { from, to: rep.clone(), why: why.clone() });
                let ctx = Context {
                    kind: NotificationKind::Reassigned,
                    to: vec![rep],
                    explanation: Some(&explanation),
                    chain: &[],
                    note: Some(why),
                    at: self.now,
                };
                self.notify(&next, ctx);
            }
            None => {
                // The rep who let it go is not remembered as its last owner, or
                // `sticky` would route it straight back to them.
                if let Some(old) = next.owner.take() {
                    self.draft.team.load.push(LoadChange { rep: old, delta: -1, capacity: None });
                }
                next.status = Status::Unassigned;
                next.sla = None;
                next.sla_due = rules.sla.next_reminder(self.now);
                self.transition(lead.status, Status::Unassigned, cause);
                let note = format!("{why} Nobody else in its pool is available; please assign it.");
                let ctx = Context {
                    kind: NotificationKind::Unassigned,
                    to: managers(rules),
                    explanation: Some(&explanation),
                    chain: &[],
                    note: Some(note),
                    at: self.now,
                };
                self.notify(&next, ctx);
            }
        }
        Ok(Some(next))
    }

    /// A manager's assignment of `lead` to `to`.
    fn assign_by(&mut self, lead: &Lead, by: &str, to: &str, over_capacity: bool) -> Step<Option<Lead>> {
        let rules = self.rules;
        let routing = &rules.routing;
        if !matches!(lead.status, Status::Unassigned | Status::Assigned | Status::Working) {
            return Err(LifecycleError::NotAllowed { status: lead.status, event: "assign" }.into());
        }
        let Some(r) = routing.rep_index(to) else {
            return Err(Refusal::CannotAssign(format!("there is no rep `{}`", message::clean(to, 40))).into());
        };
        if !team_of(rules, by).iter().any(|m| m == to) {
            return Err(Refusal::CannotAssign(format!("{to} is not in your team")).into());
        }
        if lead.owner.as_deref() == Some(to) {
            return Ok(None);
        }
        let team = self.team(lead)?;
        let today = self.now.date_naive();
        let open = team.open.get(to).copied().unwrap_or(0);
        if let Err(why) = routing.availability(r, today, team, over_capacity) {
            let why = match why {
                Unavailable::Inactive => format!("{to} is not active"),
                Unavailable::Away => format!("{to} is away today"),
                Unavailable::AtCapacity { open, capacity } => {
                    format!("{to} is at capacity ({open} of {capacity} open leads); assign over capacity to override")
                }
            };
            return Err(Refusal::CannotAssign(why).into());
        }
        let mut next = lead.clone();
        next.updated_at = self.now.max(lead.updated_at);
        let from = next.owner.replace(to.to_owned());
        if let Some(old) = &from
            && lead.status.is_open()
        {
            self.draft.team.load.push(LoadChange { rep: old.clone(), delta: -1, capacity: None });
        }
        let capacity = if over_capacity { None } else { capacity_of(rules, self.team, to) };
        self.draft.team.load.push(LoadChange { rep: to.to_owned(), delta: 1, capacity });
        let (explanation, tier) = rescore(rules, &next, self.now);
        if lead.status != Status::Working {
            next.status = Status::Assigned;
            next.unanswered = 0;
            self.start_clock(&mut next, tier);
        }
        if lead.status == Status::Unassigned {
            self.transition(lead.status, next.status, "assigned");
        }
        let mut why = format!("Assigned by {by}.");
        if let Some(capacity) = capacity_of(rules, self.team, to).filter(|c| over_capacity && open >= *c) {
            why.push_str(&format!(" Over capacity ({} of {capacity} open leads), by {by}'s decision.", open + 1));
        }
        self.draft.effect.reassigned = true;
        self.draft.records.push(Record::Reassignment { from, to: to.to_owned(), why: why.clone() });
        let kind =
            if lead.status == Status::Unassigned { NotificationKind::Handoff } else { NotificationKind::Reassigned };
        let ctx = Context {
            kind,
            to: vec![to.to_owned()],
            explanation: Some(&explanation),
            chain: &[],
            note: Some(why),
            at: self.now,
        };
        self.notify(&next, ctx);
        Ok(Some(next))
    }

    /// A lead leaving its owner (dormant, or back to nurturing): the owner is kept
    /// as the previous owner and their capacity released.
    fn let_go(&mut self, lead: &mut Lead, was_open: bool) {
        if let Some(owner) = lead.owner.take() {
            if was_open {
                self.draft.team.load.push(LoadChange { rep: owner.clone(), delta: -1, capacity: None });
            }
            lead.previous_owner = Some(owner);
        }
        lead.sla = None;
        lead.sla_due = None;
    }

    /// An unassigned lead at the SLA check: routed again when someone in its
    /// pools is available now; otherwise, when a reminder is due (`unassigned`
    /// in `sla.yaml`), the managers are told again; otherwise nothing changes.
    fn unassigned_tick(&mut self, lead: &Lead) -> Step<Option<Lead>> {
        let rules = self.rules;
        let now = self.now;
        let mut next = lead.clone();
        let (explanation, tier) = rescore(rules, &next, now);
        next.score = explanation.score.score;
        next.tier.clone_from(&explanation.score.tier);
        let a = self.route(&next)?;
        if a.rep.is_some() {
            next.updated_at = now.max(lead.updated_at);
            self.hand_off(&mut next, tier, &a, &explanation);
            self.transition(Status::Unassigned, next.status, "rerouted");
            next.hygiene_at = hygiene_at(rules, &next, now);
            return Ok(Some(next));
        }
        if lead.sla_due.is_none_or(|due| due > now) {
            return Ok(None);
        }
        next.updated_at = now.max(lead.updated_at);
        next.sla_due = rules.sla.next_reminder(now);
        self.draft.effect.escalations = 1;
        self.alert(
            &next,
            NotificationKind::Unassigned,
            managers(rules),
            "Still waiting: nobody in the lead's pools is available. Please assign it.".to_owned(),
        );
        Ok(Some(next))
    }

    /// The escalation steps due for one lead; `None` when nothing is due.
    fn sla_tick(&mut self, lead: &Lead) -> Step<Option<Lead>> {
        let rules = self.rules;
        let now = self.now;
        if lead.status == Status::Unassigned {
            return self.unassigned_tick(lead);
        }
        if let Some(owner) = lead.owner.as_deref().filter(|o| rules.routing.rep_index(o).is_none())
            && lead.status.is_open()
        {
            // The owner left routing.yaml: the lead goes back to its pool.
            let why = format!("{owner} is no longer in routing.yaml.");
            return self.give_back(lead, &why, "owner_removed");
        }
        let Some(clock) = lead.sla.filter(|_| lead.status == Status::Assigned) else {
            // The clock stopped since the lead was indexed: take it off the index.
            if lead.sla_due.is_none() {
                return Ok(None);
            }
            let mut next = lead.clone();
            next.sla_due = None;
            self.draft.records.push(Record::Repair { problem: "an SLA check was due on a stopped clock".into() });
            return Ok(Some(next));
        };
        let steps = rules.sla.due_steps(clock.deadline, now, clock.fired);
        let mut next = lead.clone();
        next.updated_at = now.max(lead.updated_at);
        let mut fired = clock.fired;
        for step in &steps {
            fired |= 1 << step;
            let s = &rules.sla.escalation[*step];
            let owner = next.owner.clone();
            // Steps due together (after an outage of the check) move the lead once.
            if s.reassign
                && !self.draft.effect.reassigned
                && let Some((rep, cursor)) = self.reassign_pick(&next)?
            {
                let from = self.move_to(&mut next, &rep, cursor);
                let why = format!(
                    "Reassigned from {} after the first-response deadline passed.",
                    from.as_deref().unwrap_or("nobody")
                );
                self.draft.records.push(Record::Reassignment { from: from.clone(), to: rep.clone(), why: why.clone() });
                let to: Vec<String> = std::iter::once(rep).chain(from).collect();
                self.alert(&next, NotificationKind::Reassigned, to, why);
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
                self.alert(&next, NotificationKind::Escalation, to, note);
            }
        }
        next.sla = Some(SlaClock { fired, ..clock });
        next.sla_due = rules.sla.next_due(clock.deadline, fired);
        if steps.is_empty() && next.sla_due == lead.sla_due {
            return Ok(None);
        }
        self.draft.effect.escalations = steps.len();
        self.draft.records.push(Record::Escalation {
            rules_version: rules.version.clone(),
            steps: steps.iter().map(|s| s + 1).collect(),
            owner: next.owner.clone(),
        });
        Ok(Some(next))
    }

    /// Another available member of the lead's pool, never its current owner;
    /// from a round-robin or weighted pool, the member at or after the pool's
    /// turn.
    #[allow(clippy::type_complexity)]
    fn reassign_pick(&self, lead: &Lead) -> Step<Option<(String, Option<(String, CursorMove)>)>> {
        let routing = &self.rules.routing;
        let Some((pool_id, pool)) = lead.pool.as_deref().and_then(|id| Some((id, routing.pool_index(id)?))) else {
            return Ok(None);
        };
        let team = self.team(lead)?;
        let exclude = lead.owner.as_deref().and_then(|o| routing.rep_index(o));
        let today = self.now.date_naive();
        if routing.pick(pool, today, team, team, exclude).is_err() {
            return Ok(None);
        }
        if matches!(routing.pools[pool].strategy, Strategy::RoundRobin | Strategy::Weighted)
            && team.turn.as_ref().is_none_or(|(p, _)| p != pool_id)
        {
            return Err(Stop::Needs(Need::Turn { pool: pool_id.to_owned() }));
        }
        Ok(routing
            .pick(pool, today, team, team, exclude)
            .ok()
            .map(|pick| (routing.reps[pick.rep].id.clone(), pick.cursor.map(|c| (pool_id.to_owned(), c)))))
    }

    /// Decay rescoring and dormancy, releasing the owner's capacity.
    fn hygiene(&mut self, lead: &Lead) -> Step<Option<Lead>> {
        let rules = self.rules;
        let now = self.now;
        let (explanation, _) = rescore(rules, lead, now);
        let mut next = lead.clone();
        next.updated_at = now.max(lead.updated_at);
        next.score = explanation.score.score;
        next.tier.clone_from(&explanation.score.tier);
        let idle = idle_days(lead.last_activity_at, now);
        self.draft.effect.rescored = next.score != lead.score;
        self.draft.records.push(Record::Rescored {
            rules_version: rules.version.clone(),
            idle_days: idle,
            from: lead.score,
            to: next.score,
        });
        let cause = rules.lifecycle.dormancy(lead.status, idle, lead.unanswered);
        if let Some(cause) = cause {
            self.let_go(&mut next, lead.status.is_open());
            next.status = Status::Dormant;
            self.draft.effect.dormant = true;
            self.draft.records.push(Record::Transition {
                from: lead.status,
                to: Status::Dormant,
                cause: "dormancy".to_owned(),
                dormancy: Some(cause),
                reason: None,
            });
        }
        next.hygiene_at = hygiene_at(rules, &next, now);
        Ok(Some(next))
    }

    /// Derives a lead's state again from its facts: score and tier, and a
    /// hand-off when it is nurturing at the hand-off tier.
    fn repair(&mut self, lead: &Lead, problem: &str) -> Step<Option<Lead>> {
        let mut next = lead.clone();
        next.updated_at = self.now.max(lead.updated_at);
        self.draft.records.push(Record::Repair { problem: problem.to_owned() });
        self.derive(&mut next, Some(lead.status), &[])?;
        if next.status == Status::Assigned
            && let Some(clock) = next.sla
        {
            // A running clock goes back into the SLA check's index.
            next.sla_due = self.rules.sla.next_due(clock.deadline, clock.fired);
        }
        Ok(Some(next))
    }
}

/// The score and its explanation at `now`, and the tier's index.
pub fn rescore(rules: &RuleSet, lead: &Lead, now: DateTime<Utc>) -> (Explanation, usize) {
    let mut slots = Vec::new();
    rules.event_slots(&lead.events, &mut slots);
    let mut facts = rules.facts(&lead.profile, &slots, lead.status, lead.bant);
    let explanation = rules.explain(&mut facts, idle_days(lead.last_activity_at, now));
    let tier = rules.scoring.tier_index(&explanation.score.tier).unwrap_or(0);
    (explanation, tier)
}

/// A rep's capacity as routing sees it: `routing.yaml`'s, or a manager's change.
fn capacity_of(rules: &RuleSet, team: Option<&TeamState>, rep: &str) -> Option<u32> {
    let r = rules.routing.rep_index(rep)?;
    crate::team::Effective::of(&rules.routing.reps[r], team.and_then(|t| t.settings.get(rep))).capacity
}

/// A company's email domain, for account ownership; `None` for free email.
pub fn account_domain(rules: &RuleSet, lead: &Lead) -> Option<String> {
    let domain = lead.profile.email.domain();
    (!rules.capture.is_free_email(domain)).then(|| domain.to_owned())
}

fn manager_of(rules: &RuleSet, rep: &str) -> Option<String> {
    let routing = &rules.routing;
    let r = routing.rep_index(rep)?;
    routing.reps[r].manager.map(|m| routing.reps[m].id.clone())
}

/// Every rep who manages someone.
pub fn managers(rules: &RuleSet) -> Vec<String> {
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
    if let Some(limit) = dormancy.after_days_idle
        && dormancy.statuses.contains(&lead.status)
    {
        if idle >= limit {
            // Already idle past the limit (a lead woken by a late event): at once.
            return Some(now);
        }
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
    days.map(|d| lead.last_activity_at + Duration::days(i64::from(d)))
}

fn has_positive_engagement(rules: &RuleSet, lead: &Lead) -> bool {
    rules.scoring.engagement.iter().any(|e| e.points > 0 && lead.events.get(&e.event).is_some_and(|n| *n > 0))
}

/// What a lead must always be, whatever wrote it: the invariants that
/// `leadflow doctor` checks. An empty list when it is sound.
pub fn problems(rules: &RuleSet, lead: &Lead) -> Vec<String> {
    let mut out = Vec::new();
    let tier = rules.scoring.tier_index(&lead.tier);
    if tier.is_none() {
        out.push(format!("no derived state: tier `{}` is not a tier of the rules", lead.tier));
    }
    // A lead sales sent back to nurture (its `nurture` events count it, and an
    // owner it had stays its previous owner) is there by decision, not a
    // hand-off that never happened.
    let sent_back = lead.previous_owner.is_some() || lead.events.get("nurture").is_some_and(|n| *n > 0);
    if lead.status == Status::Nurturing
        && tier.is_some_and(|t| rules.scoring.is_handoff(t))
        && lead.owner.is_none()
        && !sent_back
        && !lead.held
    {
        out.push(format!("nurturing at the hand-off tier ({}) and never handed off", lead.tier));
    }
    // A rep may contact a lead nobody was assigned (it is then working with no
    // owner); a lead handed off is always someone's.
    if lead.status == Status::Assigned && lead.owner.is_none() {
        out.push("assigned with no owner".to_owned());
    }
    if lead.status == Status::Assigned
        && lead.sla_due.is_none()
        && let Some(clock) = lead.sla
        && rules.sla.next_due(clock.deadline, clock.fired).is_some()
    {
        out.push("assigned with a running clock that the SLA check cannot find".to_owned());
    }
    out
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
