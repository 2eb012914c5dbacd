//! One conformance suite over the storage and notification traits, run against
//! the embedded store with the log notifier and against DynamoDB with SNS (on
//! moto's server). Each case is written once, generic over a [`Rig`].

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use leadflow_app::{
    Change, Direct, History, LeadFilter, Leadflow, Leads, Nonces, Notifier, NotifyError, SaveError, StoreError, Team,
};
use leadflow_domain::machine::LoadChange;
use leadflow_domain::{Action, Email, LeadId, Notification, Pending, Profile, Queue, RuleSet, Status};

use crate::support::repo_root;

/// A notification as a rep received it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Delivered {
    pub id: String,
    pub kind: String,
    /// The rep whose channel received it.
    pub rep: String,
}

/// A notifier that can be made to fail, standing in for an outage.
#[derive(Debug)]
pub struct Flaky<N> {
    pub inner: N,
    pub failing: AtomicBool,
}

impl<N: Notifier> Notifier for Flaky<N> {
    async fn publish(&self, n: &Notification) -> Result<(), NotifyError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(NotifyError { message: "the notifier is down".into(), source: None });
        }
        self.inner.publish(n).await
    }

    async fn send(&self, m: &Direct) -> Result<(), NotifyError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(NotifyError { message: "the notifier is down".into(), source: None });
        }
        self.inner.send(m).await
    }
}

/// A notifier that publishes nowhere, for cases about the store alone.
#[derive(Debug)]
pub struct Nowhere;

impl Notifier for Nowhere {
    async fn publish(&self, _: &Notification) -> Result<(), NotifyError> {
        Ok(())
    }

    async fn send(&self, _: &Direct) -> Result<(), NotifyError> {
        Ok(())
    }
}

/// A store and notifier under test, and a way to read back what reps received.
pub trait Rig: Send + Sync + 'static {
    type S: leadflow_app::Store + Clone + 'static;
    type N: Notifier + 'static;
    fn app(&self) -> &Arc<Leadflow<Self::S, Flaky<Self::N>>>;
    /// Everything delivered so far, one entry per rep channel that received it.
    fn delivered(&self) -> impl Future<Output = Vec<Delivered>> + Send;
}

pub fn conformance_rules() -> Arc<RuleSet> {
    Arc::new(RuleSet::load_dir(&repo_root().join("tests/fixtures/conformance-rules")).expect("conformance rules"))
}

pub fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("RFC 3339 time")
}

fn profile(email: &str) -> Profile {
    Profile::new(Email::parse(email).expect("email"))
}

fn vp(email: &str) -> Profile {
    let mut p = profile(email);
    p.job_title = Some("VP Sales".into());
    p.first_name = Some("Jo".into());
    p.company = Some("Acme".into());
    p
}

const T0: &str = "2026-03-02T14:00:00Z";

pub async fn fifty_concurrent_captures_of_one_email_give_one_lead_with_no_field_lost<R: Rig>(rig: R) {
    let app = Arc::clone(rig.app());
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let app = Arc::clone(&app);
            tokio::spawn(async move {
                let mut p = profile("Burst@Example.com");
                p.custom.insert(format!("field_{i:02}"), format!("value {i}"));
                p.source = Some(format!("source-{i}"));
                // Told `busy` (nothing was written), a sender posts again.
                loop {
                    match app.capture(p.clone(), &[], at(T0)).await {
                        Err(leadflow_app::ServiceError::Busy) => continue,
                        other => break other.expect("capture"),
                    }
                }
            })
        })
        .collect();
    let mut created = 0;
    for t in tasks {
        created += usize::from(t.await.expect("task").created);
    }
    assert_eq!(created, 1, "exactly one capture creates the lead");

    let leads = app.store.list(&LeadFilter::default()).await.expect("list");
    assert_eq!(leads.len(), 1);
    let lead = &leads[0];
    assert_eq!(lead.profile.custom.len(), 50, "every captured field is kept");
    for i in 0..50 {
        assert_eq!(lead.profile.custom[&format!("field_{i:02}")], format!("value {i}"));
    }
    assert_eq!(lead.events["form_submission"], 50);
    assert!(lead.profile.source.as_deref().is_some_and(|s| s.starts_with("source-")));
    let history = app.store.history(&lead.id).await.expect("history");
    let submissions = history.iter().filter(|h| h.record.event_type() == Some("form_submission")).count();
    assert_eq!(submissions, 50, "every submission is in the history");
}

pub async fn a_repeat_capture_keeps_first_touch_and_never_empties_a_field<R: Rig>(rig: R) {
    let app = rig.app();
    let mut first = profile("jo@example.com");
    first.source = Some("webinar".into());
    first.company = Some("Acme".into());
    let one = app.capture(first, &[], at(T0)).await.expect("first capture");
    assert!(one.created);
    let mut again = profile("JO@example.com");
    again.source = Some("ads".into());
    again.phone = Some("+15550100".into());
    let two = app.capture(again, &[], at("2026-03-02T15:00:00Z")).await.expect("second capture");
    assert!(!two.created);
    assert_eq!(one.lead.id, two.lead.id);
    let stored = app.store.get(&one.lead.id).await.expect("get").expect("lead");
    assert_eq!(stored.profile.source.as_deref(), Some("webinar"));
    assert_eq!(stored.profile.company.as_deref(), Some("Acme"));
    assert_eq!(stored.profile.phone.as_deref(), Some("+15550100"));
    assert_eq!(stored.created_at, at(T0));
    assert_eq!(stored.last_activity_at, at("2026-03-02T15:00:00Z"));
}

pub async fn a_hundred_concurrent_events_on_one_lead_give_the_exact_score<R: Rig>(rig: R) {
    let app = Arc::clone(rig.app());
    let lead = app.capture(profile("clicks@example.com"), &[], at(T0)).await.expect("capture").lead;
    assert_eq!(lead.score, 0);
    // Each sender gives its event an id and, told `busy`, sends it again (as the
    // 503's Retry-After asks): the score ends exact.
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let app = Arc::clone(&app);
            let id = lead.id.clone();
            tokio::spawn(async move {
                let counts = [("email_click".to_owned(), 1)];
                let what = leadflow_app::Happening::Engagement(&counts);
                let now = at("2026-03-02T14:05:00Z");
                let mut busy = 0;
                loop {
                    match app.record(&id, what, now, Some(&format!("click-{i}")), now).await {
                        Ok(recorded) => return (recorded.expect("lead"), busy),
                        Err(leadflow_app::ServiceError::Busy) => busy += 1,
                        Err(e) => panic!("record: {e}"),
                    }
                }
            })
        })
        .collect();
    let mut retries = 0;
    for t in tasks {
        let (recorded, busy) = t.await.expect("task");
        assert!(!recorded.repeat);
        retries += busy;
    }
    println!("100 concurrent events on one lead: {retries} answered busy and sent again");
    let stored = app.store.get(&lead.id).await.expect("get").expect("lead");
    assert_eq!(stored.events["email_click"], 100);
    assert_eq!(stored.score, 100, "every click counted once in the stored score");
    assert_eq!(stored.tier, "hot");
    assert_eq!(stored.status, Status::Assigned, "crossing the hand-off tier hands the lead off");
    let history = app.store.history(&lead.id).await.expect("history");
    assert_eq!(history.iter().filter(|h| h.record.event_type() == Some("email_click")).count(), 100);

    let delivered = rig.delivered().await;
    let handoffs: Vec<_> = delivered.iter().filter(|d| d.kind == "handoff").collect();
    assert_eq!(handoffs.len(), 1, "one hand-off, delivered once: {delivered:?}");
    assert_eq!(Some(handoffs[0].rep.as_str()), stored.owner.as_deref());
}

pub async fn three_hundred_concurrent_handoffs_to_a_round_robin_pool_give_a_hundred_each<R: Rig>(rig: R) {
    let app = Arc::clone(rig.app());
    let tasks: Vec<_> = (0..300)
        .map(|i| {
            let app = Arc::clone(&app);
            tokio::spawn(async move { capture_until_taken(&app, vp(&format!("vp{i}@corp{i}.com"))).await })
        })
        .collect();
    let mut owners: BTreeMap<String, usize> = BTreeMap::new();
    for t in tasks {
        let out = t.await.expect("task");
        assert_eq!(out.lead.status, Status::Assigned);
        *owners.entry(out.lead.owner.expect("owner")).or_default() += 1;
    }
    let expected: BTreeMap<String, usize> = ["rio", "sam", "tia"].into_iter().map(|r| (r.to_owned(), 100)).collect();
    assert_eq!(owners, expected);

    let team = app.store.team_state(&["rio", "sam", "tia"], None).await.expect("team");
    assert_eq!(app.store.take_turn("trio").await.expect("turn"), 300, "one turn per hand-off");
    for rep in ["rio", "sam", "tia"] {
        assert_eq!(team.open[rep], 100, "open-lead count of {rep}");
    }

    let delivered = rig.delivered().await;
    let mut per_rep: BTreeMap<&str, usize> = BTreeMap::new();
    let mut ids = BTreeSet::new();
    for d in delivered.iter().filter(|d| d.kind == "handoff") {
        assert!(ids.insert((d.id.clone(), d.rep.clone())), "delivered twice: {d:?}");
        *per_rep.entry(d.rep.as_str()).or_default() += 1;
    }
    assert_eq!(ids.len(), 300, "every hand-off delivered exactly once");
    assert_eq!(per_rep.values().copied().collect::<Vec<_>>(), vec![100, 100, 100]);
}

pub async fn concurrent_turns_are_each_taken_once_and_a_skip_moves_the_counter_on<R: Rig>(rig: R) {
    let app = Arc::clone(rig.app());
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let app = Arc::clone(&app);
            tokio::spawn(async move { app.store.take_turn("solo").await.expect("turn") })
        })
        .collect();
    let mut positions = BTreeSet::new();
    for t in tasks {
        assert!(positions.insert(t.await.expect("task")), "a position taken twice");
    }
    assert_eq!(positions, (0..200).collect::<BTreeSet<u64>>());
    assert_eq!(app.store.take_turn("other").await.expect("turn"), 0, "each pool counts its own turns");

    let lead = app.capture(profile("skip@example.com"), &[], at(T0)).await.expect("capture").lead;
    let mut next = lead.clone();
    next.version += 1;
    let mut change = Change::of(next, lead.version);
    change.team.skip = Some(("solo".into(), 2));
    app.store.save(&change).await.expect("save");
    assert_eq!(app.store.take_turn("solo").await.expect("turn"), 202);
}

pub async fn round_robin_passes_over_an_unavailable_member_and_resumes_after_the_one_chosen<R: Rig>(rig: R) {
    let mut rules = (*conformance_rules()).clone();
    let sam = rules.routing.rep_index("sam").expect("sam");
    rules.routing.reps[sam].active = false;
    let app = Leadflow::new(Arc::new(rules), rig.app().store.clone(), Nowhere);
    let mut owners = Vec::new();
    for i in 0..4 {
        let lead = app.capture(vp(&format!("vp{i}@away{i}.com")), &[], at(T0)).await.expect("capture").lead;
        owners.push(lead.owner.expect("owner"));
    }
    assert_eq!(owners, ["rio", "tia", "rio", "tia"]);
    assert_eq!(app.store.take_turn("trio").await.expect("turn"), 6, "turns 1 and 4 passed over sam");
}

pub async fn a_save_on_a_stale_version_changes_nothing<R: Rig>(rig: R) {
    let app = rig.app();
    let lead = app.capture(profile("stale@example.com"), &[], at(T0)).await.expect("capture").lead;
    let mut next = lead.clone();
    next.version = lead.version;
    next.score = 999;
    let stale = Change::of(next.clone(), lead.version - 1);
    assert!(matches!(app.store.save(&stale).await, Err(SaveError::LeadChanged)));

    let mut assignment = Change::of(next, lead.version - 1);
    assignment.lead.version = lead.version;
    assignment.team.skip = Some(("trio".into(), 2));
    assignment.team.load = vec![LoadChange { rep: "rio".into(), delta: 1, capacity: None }];
    assignment.team.account = Some(("example.com".into(), "rio".into()));
    assert!(matches!(app.store.save(&assignment).await, Err(SaveError::LeadChanged)));

    let stored = app.store.get(&lead.id).await.expect("get").expect("lead");
    assert_eq!(stored, lead, "nothing of a refused change is stored");
    let team = app.store.team_state(&["rio"], Some("example.com")).await.expect("team");
    assert_eq!((team.open["rio"], team.account_owner), (0, None));
    assert_eq!(app.store.take_turn("trio").await.expect("turn"), 0, "the counter did not move");
}

pub async fn a_failed_publish_stays_pending_and_is_delivered_once_by_the_sla_check<R: Rig>(rig: R) {
    let app = rig.app();
    app.notifier.failing.store(true, Ordering::SeqCst);
    let lead = app.capture(vp("outage@example.com"), &[], at(T0)).await.expect("capture").lead;
    assert_eq!(lead.status, Status::Assigned, "the hand-off is saved even when publishing fails");
    assert!(rig.delivered().await.is_empty());

    // Within the lease nobody retries; after it, the SLA check does, once.
    app.notifier.failing.store(false, Ordering::SeqCst);
    let early = app.sla_check(at("2026-03-02T14:01:00Z")).await.expect("sla check");
    assert_eq!(early.notifications_retried, 0);
    let (a, b) = tokio::join!(app.sla_check(at("2026-03-02T14:03:00Z")), app.sla_check(at("2026-03-02T14:03:00Z")));
    let retried = a.expect("sla check").notifications_retried + b.expect("sla check").notifications_retried;
    assert_eq!(retried, 1, "two checks at once retry the notification once");
    let later = app.sla_check(at("2026-03-02T14:10:00Z")).await.expect("sla check");
    assert_eq!(later.notifications_retried, 0);

    let delivered = rig.delivered().await;
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert_eq!(delivered[0].kind, "handoff");
    assert_eq!(Some(delivered[0].rep.as_str()), lead.owner.as_deref());
}

pub async fn each_escalation_step_fires_once_and_reassignment_picks_another_rep<R: Rig>(rig: R) {
    let app = rig.app();
    let lead = app.capture(vp("slow@example.com"), &[], at(T0)).await.expect("capture").lead;
    let first_owner = lead.owner.clone().expect("owner");
    let deadline = lead.sla.expect("clock").deadline;
    assert_eq!(deadline, at("2026-03-02T15:00:00Z"), "warm: one hour");
    assert_eq!(lead.sla_due, Some(deadline));

    let before = app.sla_check(at("2026-03-02T14:59:00Z")).await.expect("check");
    assert_eq!(before.leads_read, 0, "nothing is due before the deadline");
    let step1 = app.sla_check(at("2026-03-02T15:00:00Z")).await.expect("check");
    assert_eq!((step1.leads_read, step1.escalations), (1, 1));
    let again = app.sla_check(at("2026-03-02T15:10:00Z")).await.expect("check");
    assert_eq!((again.leads_read, again.escalations), (0, 0), "a step fires once");
    let rest = app.sla_check(at("2026-03-02T16:30:00Z")).await.expect("check");
    assert_eq!((rest.escalations, rest.reassignments), (2, 1));

    let stored = app.store.get(&lead.id).await.expect("get").expect("lead");
    let new_owner = stored.owner.clone().expect("owner");
    assert_ne!(new_owner, first_owner, "reassignment never picks the same rep");
    assert_eq!(stored.sla_due, None, "every step has fired");
    let team = app.store.team_state(&[&first_owner, &new_owner], None).await.expect("team");
    assert_eq!((team.open[&first_owner], team.open[&new_owner]), (0, 1), "capacity moves with the lead");

    let delivered = rig.delivered().await;
    let kinds: Vec<(&str, &str)> = delivered.iter().map(|d| (d.kind.as_str(), d.rep.as_str())).collect();
    for expected in [
        ("handoff", first_owner.as_str()),
        ("escalation", first_owner.as_str()),
        ("escalation", "max"),
        ("reassigned", new_owner.as_str()),
        ("reassigned", first_owner.as_str()),
    ] {
        assert!(kinds.contains(&expected), "{expected:?} missing from {kinds:?}");
    }
}

pub async fn the_clean_up_reads_only_the_leads_whose_idleness_matters<R: Rig>(rig: R) {
    let app = rig.app();
    let idle = app.capture(vp("idle@example.com"), &[], at(T0)).await.expect("capture").lead;
    let recent =
        app.capture(profile("recent@example.com"), &[], at("2026-03-30T14:00:00Z")).await.expect("capture").lead;
    assert_eq!(idle.hygiene_at, Some(at("2026-04-01T14:00:00Z")), "dormant after 30 idle days");

    let none = app.cleanup(at("2026-04-01T13:59:00Z")).await.expect("cleanup");
    assert_eq!(none.leads_read, 0);
    let report = app.cleanup(at("2026-04-01T14:00:00Z")).await.expect("cleanup");
    assert_eq!((report.leads_read, report.leads_changed, report.dormant), (1, 1, 1));
    let stored = app.store.get(&idle.id).await.expect("get").expect("lead");
    assert_eq!(stored.status, Status::Dormant);
    assert_eq!(stored.owner, None);
    assert_eq!(stored.previous_owner, idle.owner);
    assert_eq!(stored.hygiene_at, None);
    let owner = idle.owner.clone().expect("owner");
    let team = app.store.team_state(&[&owner], None).await.expect("team");
    assert_eq!(team.open[&owner], 0, "a dormant lead releases its rep's capacity");
    assert_eq!(app.store.get(&recent.id).await.expect("get").expect("lead").status, Status::Nurturing);
}

pub async fn a_missing_lead_takes_no_events<R: Rig>(rig: R) {
    let app = rig.app();
    let id = LeadId::for_email(&Email::parse("nobody@example.com").expect("email"));
    assert!(app.engage(&id, &[("email_click".into(), 1)], at(T0)).await.expect("engage").is_none());
    assert!(app.store.get(&id).await.expect("get").is_none());
}

/// Captures at T0, posting again while the answer is `busy` (nothing was
/// written), as a sender honouring `Retry-After` does.
async fn capture_until_taken<S: leadflow_app::Store, N: Notifier>(
    app: &Leadflow<S, N>,
    profile: Profile,
) -> leadflow_app::CaptureOutcome {
    loop {
        match app.capture(profile.clone(), &[], at(T0)).await {
            Err(leadflow_app::ServiceError::Busy) => continue,
            other => return other.expect("capture"),
        }
    }
}

/// Polls `f` at most `limit` times, then drops it: `None` when it had not
/// finished. Every poll that returns `Pending` is a point where a client that
/// hangs up, a Lambda timeout or a crash can stop an operation.
pub async fn cut<F: Future>(f: F, limit: usize) -> Option<F::Output> {
    let mut f = std::pin::pin!(f);
    let mut polls = 0;
    std::future::poll_fn(|cx| {
        if polls == limit {
            return std::task::Poll::Ready(None);
        }
        polls += 1;
        f.as_mut().poll(cx).map(Some)
    })
    .await
}

/// Waits for writes left running by a dropped operation, then checks every
/// invariant of the store at `now`: `leadflow doctor` finds nothing, and the
/// daily roll-ups agree exactly with the leads' facts.
pub async fn assert_sound<S: leadflow_app::Store, N: Notifier>(app: &Leadflow<S, N>, now: DateTime<Utc>, when: &str) {
    assert_doctor_finds_nothing(app, now, when).await;
    assert_rollups_agree(app, now, when).await;
}

/// `leadflow doctor` finds nothing (for stores seeded as an older version
/// left them, whose leads were never counted).
pub async fn assert_doctor_finds_nothing<S: leadflow_app::Store, N: Notifier>(
    app: &Leadflow<S, N>,
    now: DateTime<Utc>,
    when: &str,
) {
    tokio::time::sleep(std::time::Duration::from_millis(60)).await;
    let findings = app.doctor(now, false).await.expect("doctor");
    assert!(findings.is_empty(), "{when}: {findings:#?}");
}

/// Every figure the roll-ups hold for all days, counted again from the
/// leads' facts, is the same: nothing counted twice, nothing lost.
pub async fn assert_rollups_agree<S: leadflow_app::Store, N: Notifier>(
    app: &Leadflow<S, N>,
    now: DateTime<Utc>,
    when: &str,
) {
    use leadflow_domain::facts;
    let leads = app.store.list(&LeadFilter::default()).await.expect("leads");
    let from = leads.iter().map(|l| l.created_at).min().unwrap_or(now).date_naive();
    let to = leads.iter().map(|l| l.updated_at).max().unwrap_or(now).max(now).date_naive();
    let read = app.store.rollups(from, to, &["all"]).await.expect("roll-ups");
    let kept = facts::totals(read.rollups.iter().map(|r| (&r.key, &r.counts)));
    assert_eq!(kept, facts::recount(&leads), "{when}: the roll-ups disagree with the leads");
}

fn nurturing(email: &str) -> Profile {
    let mut p = profile(email);
    p.company = Some("Initech".into());
    p
}

pub async fn an_operation_dropped_at_any_await_point_leaves_every_invariant_whole<R: Rig>(rig: R) {
    let app = rig.app();
    let mut points = 0;
    // A capture that hands off, stopped after each possible number of polls.
    for limit in 0.. {
        let done = cut(app.capture(vp(&format!("cut{limit}@corp{limit}.com")), &[], at(T0)), limit).await;
        assert_sound(app, at(T0), &format!("capture dropped after {limit} polls")).await;
        if let Some(outcome) = done {
            assert_eq!(outcome.expect("capture").lead.status, Status::Assigned);
            points += limit;
            break;
        }
    }
    // Engagement that crosses the hand-off tier.
    for limit in 0.. {
        let lead = app.capture(nurturing(&format!("warm{limit}@corp.com")), &[], at(T0)).await.expect("capture").lead;
        app.engage(&lead.id, &[("email_click".to_owned(), 45)], at(T0)).await.expect("engage");
        let done = cut(app.engage(&lead.id, &[("email_click".to_owned(), 10)], at(T0)), limit).await;
        assert_sound(app, at(T0), &format!("engagement dropped after {limit} polls")).await;
        if let Some(outcome) = done {
            assert_eq!(outcome.expect("engage").expect("lead").status, Status::Assigned);
            points += limit;
            break;
        }
    }
    // The SLA check reassigning every lead handed off so far.
    let later = at("2026-03-02T16:30:00Z");
    for limit in 0.. {
        let done = cut(app.sla_check(later), limit).await;
        // Notifications dropped before delivery are due for a retry at `later`
        // (the next check sends them, below); every other invariant holds.
        assert_sound(app, at(T0), &format!("SLA check dropped after {limit} polls")).await;
        if let Some(report) = done {
            report.expect("sla check");
            points += limit;
            break;
        }
    }
    // Whatever was dropped between a save and its delivery is delivered by the
    // next SLA check, after its lease. Delivery is at least once: an operation
    // stopped after SNS took a message but before it was marked sent sends it
    // again (with the same notification id), so each cut adds at most one.
    app.sla_check(at("2026-03-02T16:40:00Z")).await.expect("sla check");
    let leads = app.store.list(&LeadFilter::default()).await.expect("list");
    let handed: usize = leads.iter().filter(|l| l.owner.is_some()).count();
    let delivered = rig.delivered().await;
    let mut ids = BTreeSet::new();
    let mut again = 0;
    for d in &delivered {
        again += usize::from(!ids.insert((d.id.clone(), d.rep.clone())));
    }
    assert!(again <= points, "{again} sent again for {points} cuts");
    let handoffs: BTreeSet<&str> = delivered.iter().filter(|d| d.kind == "handoff").map(|d| d.id.as_str()).collect();
    assert_eq!(handoffs.len(), handed, "a hand-off delivered for every lead handed off");
    assert!(
        leadflow_app::Outbox::due_notifications(&app.store, at("2026-03-03T00:00:00Z"), 10)
            .await
            .expect("due")
            .is_empty()
    );
    assert_sound(app, at("2026-03-02T16:40:00Z"), "at the end").await;
    println!("cancellation points exercised: {points}");
    assert!(points >= 6, "each operation awaits at least twice: {points}");
}

pub async fn concurrent_hand_offs_never_take_a_rep_past_capacity<R: Rig>(rig: R) {
    let mut rules = (*conformance_rules()).clone();
    for (rep, capacity) in [("rio", Some(60)), ("sam", Some(60))] {
        let i = rules.routing.rep_index(rep).expect("rep");
        rules.routing.reps[i].capacity = capacity;
    }
    let tia = rules.routing.rep_index("tia").expect("tia");
    rules.routing.reps[tia].active = false;
    let app = Arc::new(Leadflow::new(Arc::new(rules), rig.app().store.clone(), Nowhere));
    let tasks: Vec<_> = (0..150)
        .map(|i| {
            let app = Arc::clone(&app);
            tokio::spawn(async move { capture_until_taken(&app, vp(&format!("cap{i}@corp{i}.com"))).await })
        })
        .collect();
    let mut owners: BTreeMap<String, usize> = BTreeMap::new();
    let mut unassigned = 0;
    for t in tasks {
        let lead = t.await.expect("task").lead;
        match lead.owner {
            Some(owner) => *owners.entry(owner).or_default() += 1,
            None => {
                assert_eq!(lead.status, Status::Unassigned);
                unassigned += 1;
            }
        }
    }
    assert_eq!(
        owners,
        BTreeMap::from([("rio".to_owned(), 60), ("sam".to_owned(), 60)]),
        "filled to capacity, no further"
    );
    assert_eq!(unassigned, 30);
    let team = app.store.team_state(&["rio", "sam"], None).await.expect("team");
    assert_eq!((team.open["rio"], team.open["sam"]), (60, 60));
    assert_sound(&app, at(T0), "after 150 concurrent hand-offs").await;
}

pub async fn an_engagement_and_a_contact_attempt_at_once_never_lose_the_hand_off<R: Rig>(rig: R) {
    let app = Arc::clone(rig.app());
    let mut ids = Vec::new();
    for i in 0..30 {
        let lead = app.capture(nurturing(&format!("race{i}@corp.com")), &[], at(T0)).await.expect("capture").lead;
        app.engage(&lead.id, &[("email_click".to_owned(), 45)], at(T0)).await.expect("engage");
        ids.push(lead.id);
    }
    let mut tasks = Vec::new();
    for id in &ids {
        let (a, b) = (Arc::clone(&app), Arc::clone(&app));
        let (x, y) = (id.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            a.engage(&x, &[("pricing_page_view".to_owned(), 1)], at(T0)).await.expect("engage");
        }));
        tasks.push(tokio::spawn(async move {
            let attempt = leadflow_domain::rules::lifecycle::SalesEvent::ContactAttempt;
            b.sales_event(&y, &attempt, at(T0)).await.expect("attempt");
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    for id in &ids {
        let lead = app.store.get(id).await.expect("get").expect("lead");
        assert_eq!(lead.score, 55);
        assert_eq!(lead.status, Status::Assigned, "{id}: the hand-off is never dropped");
        assert!(lead.owner.is_some());
        assert_eq!(lead.events["contact_attempt"], 1);
    }
    let handoffs = rig.delivered().await.into_iter().filter(|d| d.kind == "handoff").count();
    assert_eq!(handoffs, 30, "one hand-off per lead");
    assert_sound(&app, at(T0), "after the races").await;
}

pub async fn an_event_that_happened_a_day_ago_starts_the_clock_when_it_arrives<R: Rig>(rig: R) {
    let app = rig.app();
    let two_days_ago = at("2026-02-28T14:00:00Z");
    let lead = app.capture(nurturing("late@corp.com"), &[], two_days_ago).await.expect("capture").lead;
    app.engage(&lead.id, &[("email_click".to_owned(), 45)], two_days_ago).await.expect("engage");
    let happened = at("2026-03-01T14:00:00Z");
    let counts = [("email_click".to_owned(), 10)];
    let what = leadflow_app::Happening::Engagement(&counts);
    let recorded = app.record(&lead.id, what, happened, Some("sync-1"), at(T0)).await.expect("record").expect("lead");
    assert_eq!(recorded.result.status, Status::Assigned);
    let stored = app.store.get(&lead.id).await.expect("get").expect("lead");
    assert_eq!(stored.last_activity_at, happened, "activity is when it happened");
    let clock = stored.sla.expect("clock");
    assert_eq!((clock.handed_off_at, clock.deadline), (at(T0), at("2026-03-02T15:00:00Z")), "clocks run from arrival");
    assert_eq!(stored.updated_at, at(T0));
    let check = app.sla_check(at("2026-03-02T14:05:00Z")).await.expect("sla check");
    assert_eq!((check.escalations, check.reassignments), (0, 0), "nothing is late yet");

    // An event from further ahead than the clock skew allows is refused.
    let ahead = at(T0) + chrono::Duration::minutes(10);
    let refused = app.record(&lead.id, what, ahead, Some("future-1"), at(T0)).await;
    assert!(matches!(refused, Err(leadflow_app::ServiceError::Refused(_))), "{refused:?}");
    assert_eq!(app.store.get(&lead.id).await.expect("get").expect("lead").events["email_click"], 55);
    assert_sound(app, at(T0), "after a late event").await;
}

pub async fn an_event_id_is_applied_once_however_often_it_is_sent<R: Rig>(rig: R) {
    let app = Arc::clone(rig.app());
    let lead = app.capture(nurturing("once@corp.com"), &[], at(T0)).await.expect("capture").lead;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let app = Arc::clone(&app);
            let id = lead.id.clone();
            tokio::spawn(async move {
                let counts = [("email_click".to_owned(), 1)];
                let what = leadflow_app::Happening::Engagement(&counts);
                app.record(&id, what, at(T0), Some("click-42"), at(T0)).await.expect("record").expect("lead")
            })
        })
        .collect();
    let mut firsts = 0;
    for t in tasks {
        let r = t.await.expect("task");
        firsts += usize::from(!r.repeat);
        assert_eq!(r.result.score, 1, "every answer is the first one");
    }
    assert_eq!(firsts, 1, "one of twenty applied it");
    let stored = app.store.get(&lead.id).await.expect("get").expect("lead");
    assert_eq!(stored.events["email_click"], 1);
    let history = app.store.history(&lead.id).await.expect("history");
    assert_eq!(history.iter().filter(|h| h.record.event_type() == Some("email_click")).count(), 1);
    assert_sound(&app, at(T0), "after repeats").await;
}

pub async fn an_event_answered_unavailable_after_it_was_saved_is_applied_once_when_sent_again<R: Rig>(rig: R) {
    let store = LosesAnswers { inner: rig.app().store.clone(), lose_next_save: Arc::new(AtomicBool::new(false)) };
    let app = Leadflow::new(conformance_rules(), store.clone(), Nowhere);
    let lead = app.capture(nurturing("retry@corp.com"), &[], at(T0)).await.expect("capture").lead;
    let counts = [("email_click".to_owned(), 3)];
    let what = leadflow_app::Happening::Engagement(&counts);
    store.lose_next_save.store(true, Ordering::SeqCst);
    let first = app.record(&lead.id, what, at(T0), Some("batch-7"), at(T0)).await;
    assert!(matches!(first, Err(leadflow_app::ServiceError::Store(_))), "answered unavailable: {first:?}");
    let again = app.record(&lead.id, what, at(T0), Some("batch-7"), at(T0)).await.expect("retry").expect("lead");
    assert!(again.repeat, "the retry finds the first application");
    assert_eq!(again.result.score, 3);
    let stored = app.store.get(&lead.id).await.expect("get").expect("lead");
    assert_eq!(stored.events["email_click"], 3, "counted once");
    assert_sound(&app, at(T0), "after a retried unavailable").await;
}

/// A store that saves, then loses the answer once: the write happened, the
/// caller hears that the store is unavailable (a timeout after the commit).
#[derive(Clone, Debug)]
pub struct LosesAnswers<S> {
    pub inner: S,
    pub lose_next_save: Arc<AtomicBool>,
}

impl<S: leadflow_app::Store> Leads for LosesAnswers<S> {
    async fn read(
        &self,
        id: &LeadId,
        event_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<leadflow_app::Snapshot, StoreError> {
        self.inner.read(id, event_id, now).await
    }
    async fn get(&self, id: &LeadId) -> Result<Option<leadflow_domain::Lead>, StoreError> {
        self.inner.get(id).await
    }
    async fn save(&self, change: &Change) -> Result<(), SaveError> {
        self.inner.save(change).await?;
        if self.lose_next_save.swap(false, Ordering::SeqCst) {
            return Err(SaveError::Store(StoreError::Unavailable { message: "timed out".into(), source: None }));
        }
        Ok(())
    }
    async fn sla_due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<leadflow_domain::Lead>, StoreError> {
        self.inner.sla_due(now, limit).await
    }
    async fn hygiene_due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<leadflow_domain::Lead>, StoreError> {
        self.inner.hygiene_due(now, limit).await
    }
    async fn queue(&self, queue: Queue<'_>, limit: usize) -> Result<Vec<leadflow_domain::Lead>, StoreError> {
        self.inner.queue(queue, limit).await
    }
    async fn list(&self, filter: &LeadFilter) -> Result<Vec<leadflow_domain::Lead>, StoreError> {
        self.inner.list(filter).await
    }
    async fn page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<leadflow_domain::Lead>, Option<String>), StoreError> {
        self.inner.page(after, limit).await
    }
    async fn sweep_state(&self) -> Result<leadflow_app::SweepState, StoreError> {
        self.inner.sweep_state().await
    }
    async fn save_sweep_state(&self, state: &leadflow_app::SweepState) -> Result<(), StoreError> {
        self.inner.save_sweep_state(state).await
    }
}

impl<S: leadflow_app::Store> Team for LosesAnswers<S> {
    async fn team_state(&self, reps: &[&str], account: Option<&str>) -> Result<leadflow_app::TeamState, StoreError> {
        self.inner.team_state(reps, account).await
    }
    async fn set_open_leads(&self, rep: &str, expected: u32, open: u32) -> Result<bool, StoreError> {
        self.inner.set_open_leads(rep, expected, open).await
    }
    async fn take_turn(&self, pool: &str) -> Result<u64, StoreError> {
        self.inner.take_turn(pool).await
    }
    async fn set_rep_settings(
        &self,
        rep: &str,
        expected: Option<&leadflow_domain::team::RepSettings>,
        next: Option<&leadflow_domain::team::RepSettings>,
    ) -> Result<bool, StoreError> {
        self.inner.set_rep_settings(rep, expected, next).await
    }
}

impl<S: leadflow_app::Store> Nonces for LosesAnswers<S> {
    async fn spend(&self, nonce: &str, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.inner.spend(nonce, expires_at, now).await
    }
}

impl<S: leadflow_app::Store> leadflow_app::Rollups for LosesAnswers<S> {
    async fn rollups(
        &self,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
        kinds: &[&str],
    ) -> Result<leadflow_app::RollupRead, StoreError> {
        self.inner.rollups(from, to, kinds).await
    }
}

impl<S: leadflow_app::Store> History for LosesAnswers<S> {
    async fn history(&self, id: &LeadId) -> Result<Vec<leadflow_domain::HistoryEntry>, StoreError> {
        self.inner.history(id).await
    }
}

impl<S: leadflow_app::Store> leadflow_app::Outbox for LosesAnswers<S> {
    async fn due_notifications(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Pending>, StoreError> {
        self.inner.due_notifications(now, limit).await
    }
    async fn claim(&self, pending: &Pending, lease_until: DateTime<Utc>) -> Result<bool, StoreError> {
        self.inner.claim(pending, lease_until).await
    }
    async fn give_up(&self, n: &Notification, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.inner.give_up(n, at).await
    }
    async fn dead_letters(&self) -> Result<Vec<Pending>, StoreError> {
        self.inner.dead_letters().await
    }
    async fn mark_sent(&self, n: &Notification, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.inner.mark_sent(n, at).await
    }
}

pub async fn a_notification_that_keeps_failing_becomes_a_dead_letter_and_alerts_the_managers_once<R: Rig>(rig: R) {
    let app = rig.app();
    app.notifier.failing.store(true, Ordering::SeqCst);
    let lead = app.capture(vp("unreachable@corp.com"), &[], at(T0)).await.expect("capture").lead;
    assert_eq!(lead.status, Status::Assigned);
    let mut dead = 0;
    for minute in (3..=40).step_by(3) {
        let now = at(T0) + chrono::Duration::minutes(minute);
        let report = app.sla_check(now).await.expect("sla check");
        dead += report.dead_letters;
        if minute == 30 {
            // Delivery works again; only the dead-letter alert goes out.
            app.notifier.failing.store(false, Ordering::SeqCst);
        }
    }
    assert_eq!(dead, 1, "one notification gave up");
    let letters = leadflow_app::Outbox::dead_letters(&app.store).await.expect("dead letters");
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].notification.kind, leadflow_domain::NotificationKind::Handoff);
    assert!(
        leadflow_app::Outbox::due_notifications(&app.store, at("2026-03-03T00:00:00Z"), 10)
            .await
            .expect("due")
            .is_empty()
    );
    assert!(rig.delivered().await.iter().all(|d| d.kind != "handoff"), "a dead letter is never sent");
}

/// A VP stored by an older version's first write (with that version's untyped
/// history), never scored or routed: what a crash between its two writes left.
fn as_an_older_version_left_it(email: &str) -> Change {
    let mut lead = leadflow_domain::Lead::new(vp(email), at(T0));
    lead.version = 1;
    lead.events.insert("form_submission".into(), 1);
    let mut change = Change::of(lead, 0);
    let old_entry = r#"{"at":"2026-03-02T14:00:00Z","seq":"0000000000#00#0badc0de","kind":"event","body":{"type":"form_submission","count":1}}"#;
    change.history = vec![serde_json::from_str(old_entry).expect("legacy entry")];
    change
}

pub async fn doctor_finds_and_repairs_what_an_older_version_left_behind<R: Rig>(rig: R) {
    let app = rig.app();
    let change = as_an_older_version_left_it("stranded@corp.com");
    let broken = change.lead.clone();
    app.store.save(&change).await.expect("seed");
    // A rep's count that disagrees with the leads.
    assert!(app.store.set_open_leads("sam", 0, 7).await.expect("skew"));
    // A lead nobody could take, then contacted by a manager: working, no owner, sound.
    let mut rules = (*conformance_rules()).clone();
    for rep in ["rio", "sam", "tia"] {
        let i = rules.routing.rep_index(rep).expect("rep");
        rules.routing.reps[i].active = false;
    }
    let nobody = Leadflow::new(Arc::new(rules), app.store.clone(), Nowhere);
    let orphan = nobody.capture(vp("orphan@corp.com"), &[], at(T0)).await.expect("capture").lead;
    assert_eq!(orphan.status, Status::Unassigned);
    let contacted = leadflow_domain::rules::lifecycle::SalesEvent::Contacted;
    nobody.sales_event(&orphan.id, &contacted, at(T0)).await.expect("contacted");

    let found = app.doctor(at(T0), false).await.expect("doctor");
    let subjects: BTreeSet<(&str, String)> = found.iter().map(|f| (f.subject, f.id.clone())).collect();
    assert!(subjects.contains(&("lead", broken.id.to_string())), "{found:#?}");
    assert!(subjects.contains(&("rep", "sam".to_owned())), "{found:#?}");
    assert!(!subjects.contains(&("lead", orphan.id.to_string())), "a contacted orphan is not broken: {found:#?}");
    assert!(found.iter().all(|f| !f.repaired));

    let repaired = app.doctor(at(T0), true).await.expect("doctor --repair");
    assert!(repaired.iter().all(|f| f.repaired), "{repaired:#?}");
    let lead = app.store.get(&broken.id).await.expect("get").expect("lead");
    assert_eq!((lead.status, lead.tier.as_str()), (Status::Assigned, "warm"), "derived again and handed off");
    assert_doctor_finds_nothing(app, at(T0), "after doctor --repair").await;
}

pub async fn the_sla_check_sweeps_once_and_repairs_leads_an_older_version_left<R: Rig>(rig: R) {
    let mut app = Leadflow::new(conformance_rules(), rig.app().store.clone(), Nowhere);
    app.sweep_page = 3;
    let app = &app;
    let mut stranded = Vec::new();
    for i in 0..7 {
        let change = as_an_older_version_left_it(&format!("old{i}@corp{i}.com"));
        app.store.save(&change).await.expect("seed");
        stranded.push(change.lead.id);
    }
    for i in 0..5 {
        app.capture(profile(&format!("fine{i}@example.com")), &[], at(T0)).await.expect("capture");
    }
    let mut repaired = 0;
    let mut checks = 0;
    while app.store.sweep_state().await.expect("state").done_version == 0 {
        checks += 1;
        assert!(checks <= 40, "the sweep ends");
        let report = app.sla_check(at(T0) + chrono::Duration::minutes(checks)).await.expect("sla check");
        repaired += report.leads_repaired;
    }
    assert!(checks >= 2, "a page per check: {checks}");
    assert_eq!(repaired, 7, "each broken lead repaired once");
    for id in &stranded {
        let lead = app.store.get(id).await.expect("get").expect("lead");
        assert_eq!((lead.status, lead.tier.as_str()), (Status::Assigned, "warm"), "{id}");
    }
    let state = app.store.sweep_state().await.expect("state");
    assert_eq!((state.done_version, state.after), (leadflow_app::service::SWEEP_VERSION, None));
    // Done: a later check reads no page.
    let later = app.sla_check(at(T0) + chrono::Duration::minutes(checks + 1)).await.expect("sla check");
    assert_eq!(later.leads_repaired, 0);
    assert_doctor_finds_nothing(app, at(T0), "after the sweep").await;
}

pub async fn a_nonce_is_spent_once_until_it_expires_however_many_race_for_it<R: Rig>(rig: R) {
    let store = rig.app().store.clone();
    let now = at("2026-03-02T14:00:00Z");
    let expires = at("2026-03-02T14:15:00Z");
    let nonce = format!("n{}", fastrand::u64(..));
    let tries = (0..20).map(|_| {
        let store = store.clone();
        let nonce = nonce.clone();
        tokio::spawn(async move { store.spend(&nonce, expires, now).await.expect("spend") })
    });
    let mut firsts = 0;
    for t in tries {
        firsts += usize::from(t.await.expect("task"));
    }
    assert_eq!(firsts, 1, "exactly one of twenty concurrent uses is the first");
    assert!(!store.spend(&nonce, expires, at("2026-03-02T14:14:59Z")).await.expect("spend"), "still spent");
    assert!(store.spend(&nonce, at("2026-03-02T15:00:00Z"), expires).await.expect("spend"), "spendable once expired");
    assert!(store.spend(&format!("{nonce}x"), expires, now).await.expect("spend"), "another nonce is its own");
}

pub async fn each_rep_queue_holds_exactly_their_leads_waiting_for_them<R: Rig>(rig: R) {
    let app = rig.app();
    let now = at("2026-03-02T14:00:00Z");
    let mut ids = Vec::new();
    for i in 0..9 {
        let outcome = app.capture(vp(&format!("queue{i}@acme{i}.example")), &[], now).await.expect("capture");
        ids.push(outcome.lead.id);
    }
    // One contacted (still theirs), one converted (gone from the queue), one
    // given back with nobody else free (unassigned).
    let lead = |i: usize| ids[i].clone();
    let owner_of = |l: &leadflow_domain::Lead| l.owner.clone().expect("owner");
    let first = app.store.get(&lead(0)).await.expect("get").expect("lead");
    app.act(
        &lead(0),
        &owner_of(&first),
        &Action::Sales(leadflow_domain::rules::lifecycle::SalesEvent::Contacted),
        None,
        now,
    )
    .await
    .expect("contacted");
    let second = app.store.get(&lead(1)).await.expect("get").expect("lead");
    app.act(
        &lead(1),
        &owner_of(&second),
        &Action::Sales(leadflow_domain::rules::lifecycle::SalesEvent::Converted),
        None,
        now,
    )
    .await
    .expect("converted");
    let all = app.store.list(&LeadFilter::default()).await.expect("list");
    let mut expected: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for l in &all {
        if let Some(Queue::Owner(rep)) = l.queue() {
            expected.entry(rep.to_owned()).or_default().insert(l.id.to_string());
        }
    }
    assert_eq!(expected.values().map(BTreeSet::len).sum::<usize>(), 8, "nine leads, one converted");
    for rep in ["rio", "sam", "tia", "max"] {
        let queue = app.store.queue(Queue::Owner(rep), 100).await.expect("queue");
        let got: BTreeSet<String> = queue.iter().map(|l| l.id.to_string()).collect();
        assert_eq!(got, expected.get(rep).cloned().unwrap_or_default(), "{rep}'s queue");
        // Running clocks first, by deadline; the contacted lead after them.
        let clocks: Vec<bool> = queue.iter().map(|l| l.sla.is_some() && l.status == Status::Assigned).collect();
        assert!(clocks.windows(2).all(|w| w[0] || !w[1]), "{rep}: {clocks:?}");
    }
    let busiest = expected.iter().max_by_key(|(_, leads)| leads.len()).map(|(rep, _)| rep.clone()).expect("a rep");
    assert_eq!(app.store.queue(Queue::Owner(&busiest), 1).await.expect("queue").len(), 1, "at most `limit`");
    assert!(app.store.queue(Queue::Unassigned, 100).await.expect("queue").is_empty());
}

pub async fn a_direct_message_reaches_its_rep_alone<R: Rig>(rig: R) {
    let before = rig.delivered().await.len();
    let message = Direct {
        id: format!("sign-in-{}", fastrand::u64(..)),
        kind: "sign_in",
        to: "sam".into(),
        subject: "Sign in to leadflow".into(),
        sms: "leadflow sign-in: https://leads.example.com/app/signin/x".into(),
        email: "Sign in to leadflow: https://leads.example.com/app/signin/x".into(),
        created_at: at("2026-03-02T14:00:00Z"),
    };
    rig.app().notifier.send(&message).await.expect("sent");
    let delivered = rig.delivered().await;
    let new: Vec<&Delivered> = delivered.iter().skip(before).collect();
    assert_eq!(new.len(), 1, "{new:?}");
    assert_eq!(
        (new[0].id.as_str(), new[0].kind.as_str(), new[0].rep.as_str()),
        (message.id.as_str(), "sign_in", "sam")
    );
}

pub async fn concurrent_team_changes_are_all_kept_and_the_next_routing_honours_them<R: Rig>(rig: R) {
    use leadflow_domain::team::TeamChange;
    let app = rig.app();
    let now = at("2026-03-02T14:00:00Z");
    let day = move |d: i64| now.date_naive() + chrono::Duration::days(d);
    let changes = (0..8).map(|i| {
        let app = Arc::clone(app);
        tokio::spawn(async move {
            let away = TeamChange::Away { from: day(10 + 3 * i), to: day(11 + 3 * i) };
            app.change_team("tia", &away, &format!("manager{i}"), now).await.expect("change")
        })
    });
    for c in changes {
        c.await.expect("task");
    }
    let state = app.store.team_state(&["tia"], None).await.expect("team");
    let away = state.settings.get("tia").and_then(|s| s.away.clone()).expect("tia's settings");
    assert_eq!(away.len(), 8, "no change lost to another: {away:?}");

    for rep in ["rio", "sam"] {
        app.change_team(rep, &TeamChange::Active(false), "max", now).await.expect("inactive");
    }
    for i in 0..3 {
        let lead = app.capture(vp(&format!("team{i}@corp{i}.example")), &[], now).await.expect("capture").lead;
        assert_eq!(lead.owner.as_deref(), Some("tia"), "rio and sam are off today");
    }
    app.change_team("rio", &TeamChange::Reset, "max", now).await.expect("reset");
    let lead = app.capture(vp("team9@corp9.example"), &[], now).await.expect("capture").lead;
    assert_eq!(lead.owner.as_deref(), Some("rio"), "back as routing.yaml says, and next in the cycle");
    let unknown = app.change_team("zed", &TeamChange::Active(false), "max", now).await;
    assert!(matches!(unknown, Err(leadflow_app::TeamError::UnknownRep(_))), "{unknown:?}");
}

pub async fn an_unassigned_lead_is_handed_off_by_the_sla_check_when_a_rep_comes_back<R: Rig>(rig: R) {
    use leadflow_domain::team::TeamChange;
    let app = rig.app();
    let now = at("2026-03-02T14:00:00Z");
    for rep in ["rio", "sam", "tia"] {
        app.change_team(rep, &TeamChange::Active(false), "max", now).await.expect("inactive");
    }
    let lead = app.capture(vp("waiting@corp.example"), &[], now).await.expect("capture").lead;
    assert_eq!(lead.status, Status::Unassigned);
    let report = app.sla_check(now + chrono::Duration::minutes(5)).await.expect("check");
    assert_eq!((report.unassigned_routed, report.unassigned_reminders), (0, 0), "{report:?}");
    let report = app.sla_check(now + chrono::Duration::minutes(61)).await.expect("check");
    assert_eq!(report.unassigned_reminders, 1, "the managers are reminded after an hour: {report:?}");
    let still = app.store.get(&lead.id).await.expect("get").expect("lead");
    assert_eq!(still.status, Status::Unassigned);
    assert_eq!(app.store.queue(Queue::Unassigned, 10).await.expect("queue").len(), 1);

    app.change_team("tia", &TeamChange::Active(true), "max", now).await.expect("back");
    let report = app.sla_check(now + chrono::Duration::minutes(70)).await.expect("check");
    assert_eq!(report.unassigned_routed, 1, "{report:?}");
    let taken = app.store.get(&lead.id).await.expect("get").expect("lead");
    assert_eq!((taken.status, taken.owner.as_deref()), (Status::Assigned, Some("tia")));
    assert!(taken.sla.is_some_and(|c| c.handed_off_at == now + chrono::Duration::minutes(70)), "a fresh clock");
    assert!(app.store.queue(Queue::Unassigned, 10).await.expect("queue").is_empty());
    let kinds: Vec<(String, String)> = rig.delivered().await.into_iter().map(|d| (d.kind, d.rep)).collect();
    let count = |kind: &str, rep: &str| kinds.iter().filter(|(k, r)| k == kind && r == rep).count();
    assert_eq!((count("unassigned", "max"), count("handoff", "tia")), (2, 1), "{kinds:?}");
    // A second run changes nothing more.
    let report = app.sla_check(now + chrono::Duration::minutes(75)).await.expect("check");
    assert_eq!((report.unassigned_routed, report.unassigned_reminders), (0, 0));
}

pub async fn the_open_leads_of_a_rep_removed_from_routing_go_back_to_their_pool<R: Rig>(rig: R) {
    let app = rig.app();
    let now = at("2026-03-02T14:00:00Z");
    app.sla_check(now).await.expect("the first check remembers who is on the team");
    let mut theirs = Vec::new();
    for i in 0..6 {
        let lead = app.capture(vp(&format!("leaver{i}@corp{i}.example")), &[], now).await.expect("capture").lead;
        if lead.owner.as_deref() == Some("tia") {
            theirs.push(lead.id);
        }
    }
    assert_eq!(theirs.len(), 2, "round robin over three reps");
    // The next deploy's rules have no Tia.
    let dir = tempfile::tempdir().expect("dir");
    let source = repo_root().join("tests/fixtures/conformance-rules");
    for entry in std::fs::read_dir(&source).expect("rules") {
        let entry = entry.expect("entry");
        let text = std::fs::read_to_string(entry.path()).expect("rule file");
        let text = text
            .lines()
            .filter(|l| !l.contains("id: tia"))
            .map(|l| l.replace("[rio, sam, tia]", "[rio, sam]"))
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(dir.path().join(entry.file_name()), text).expect("write");
    }
    let rules = RuleSet::load_dir(dir.path()).expect("the rules without Tia");
    assert!(rules.routing.rep_index("tia").is_none());
    let without = Leadflow::new(Arc::new(rules), app.store.clone(), Nowhere);
    let report = without.sla_check(now + chrono::Duration::minutes(5)).await.expect("check");
    assert_eq!(report.reassignments, 2, "{report:?}");
    for id in &theirs {
        let lead = app.store.get(id).await.expect("get").expect("lead");
        assert!(matches!(lead.owner.as_deref(), Some("rio" | "sam")), "{:?}", lead.owner);
    }
    assert!(app.store.queue(Queue::Owner("tia"), 10).await.expect("queue").is_empty());
    let again = without.sla_check(now + chrono::Duration::minutes(10)).await.expect("check");
    assert_eq!(again.reassignments, 0, "once");
}

/// Declares one test per conformance case for a rig made by `$make`.
#[macro_export]
macro_rules! conformance_tests {
    ($make:path) => {
        $crate::conformance_tests!(@cases $make;
            fifty_concurrent_captures_of_one_email_give_one_lead_with_no_field_lost,
            a_repeat_capture_keeps_first_touch_and_never_empties_a_field,
            a_hundred_concurrent_events_on_one_lead_give_the_exact_score,
            three_hundred_concurrent_handoffs_to_a_round_robin_pool_give_a_hundred_each,
            concurrent_turns_are_each_taken_once_and_a_skip_moves_the_counter_on,
            round_robin_passes_over_an_unavailable_member_and_resumes_after_the_one_chosen,
            a_save_on_a_stale_version_changes_nothing,
            a_failed_publish_stays_pending_and_is_delivered_once_by_the_sla_check,
            each_escalation_step_fires_once_and_reassignment_picks_another_rep,
            the_clean_up_reads_only_the_leads_whose_idleness_matters,
            a_missing_lead_takes_no_events,
            an_operation_dropped_at_any_await_point_leaves_every_invariant_whole,
            concurrent_hand_offs_never_take_a_rep_past_capacity,
            an_engagement_and_a_contact_attempt_at_once_never_lose_the_hand_off,
            an_event_that_happened_a_day_ago_starts_the_clock_when_it_arrives,
            an_event_id_is_applied_once_however_often_it_is_sent,
            an_event_answered_unavailable_after_it_was_saved_is_applied_once_when_sent_again,
            a_notification_that_keeps_failing_becomes_a_dead_letter_and_alerts_the_managers_once,
            doctor_finds_and_repairs_what_an_older_version_left_behind,
            the_sla_check_sweeps_once_and_repairs_leads_an_older_version_left,
            a_nonce_is_spent_once_until_it_expires_however_many_race_for_it,
            each_rep_queue_holds_exactly_their_leads_waiting_for_them,
            a_direct_message_reaches_its_rep_alone,
            concurrent_team_changes_are_all_kept_and_the_next_routing_honours_them,
            an_unassigned_lead_is_handed_off_by_the_sla_check_when_a_rep_comes_back,
            the_open_leads_of_a_rep_removed_from_routing_go_back_to_their_pool,
        );
    };
    (@cases $make:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                $crate::conformance::$case($make().await).await;
            }
        )*
    };
}
