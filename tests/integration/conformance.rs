//! One conformance suite over the storage and notification traits, run against
//! the embedded store with the log notifier and against DynamoDB with SNS (on
//! moto's server). Each case is written once, generic over a [`Rig`].

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use leadflow_app::{Change, History, LeadFilter, Leadflow, Leads, Notifier, NotifyError, SaveError, Team};
use leadflow_domain::{Email, LeadId, Notification, Profile, RuleSet, Status};

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
}

/// A notifier that publishes nowhere, for cases about the store alone.
#[derive(Debug)]
pub struct Nowhere;

impl Notifier for Nowhere {
    async fn publish(&self, _: &Notification) -> Result<(), NotifyError> {
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
                app.capture(p, at(T0)).await.expect("capture")
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
    let submissions = history.iter().filter(|h| h.body["type"] == "form_submission").count();
    assert_eq!(submissions, 50, "every submission is in the history");
}

pub async fn a_repeat_capture_keeps_first_touch_and_never_empties_a_field<R: Rig>(rig: R) {
    let app = rig.app();
    let mut first = profile("jo@example.com");
    first.source = Some("webinar".into());
    first.company = Some("Acme".into());
    let one = app.capture(first, at(T0)).await.expect("first capture");
    assert!(one.created);
    let mut again = profile("JO@example.com");
    again.source = Some("ads".into());
    again.phone = Some("+15550100".into());
    let two = app.capture(again, at("2026-03-02T15:00:00Z")).await.expect("second capture");
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
    let lead = app.capture(profile("clicks@example.com"), at(T0)).await.expect("capture").lead;
    assert_eq!(lead.score, 0);
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let app = Arc::clone(&app);
            let id = lead.id.clone();
            tokio::spawn(async move {
                app.engage(&id, &[("email_click".to_owned(), 1)], at("2026-03-02T14:05:00Z")).await.expect("engage")
            })
        })
        .collect();
    for t in tasks {
        assert!(t.await.expect("task").is_some());
    }
    let stored = app.store.get(&lead.id).await.expect("get").expect("lead");
    assert_eq!(stored.events["email_click"], 100);
    assert_eq!(stored.score, 100, "every click counted once in the stored score");
    assert_eq!(stored.tier, "hot");
    assert_eq!(stored.status, Status::Assigned, "crossing the hand-off tier hands the lead off");
    let history = app.store.history(&lead.id).await.expect("history");
    assert_eq!(history.iter().filter(|h| h.body["type"] == "email_click").count(), 100);

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
            tokio::spawn(async move { app.capture(vp(&format!("vp{i}@corp{i}.com")), at(T0)).await.expect("capture") })
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

    let lead = app.capture(profile("skip@example.com"), at(T0)).await.expect("capture").lead;
    let mut next = lead.clone();
    next.version += 1;
    let mut change = Change::of(next, lead.version);
    change.skip = Some(("solo".into(), 2));
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
        let lead = app.capture(vp(&format!("vp{i}@away{i}.com")), at(T0)).await.expect("capture").lead;
        owners.push(lead.owner.expect("owner"));
    }
    assert_eq!(owners, ["rio", "tia", "rio", "tia"]);
    assert_eq!(app.store.take_turn("trio").await.expect("turn"), 6, "turns 1 and 4 passed over sam");
}

pub async fn a_save_on_a_stale_version_changes_nothing<R: Rig>(rig: R) {
    let app = rig.app();
    let lead = app.capture(profile("stale@example.com"), at(T0)).await.expect("capture").lead;
    let mut next = lead.clone();
    next.version = lead.version;
    next.score = 999;
    let stale = Change::of(next.clone(), lead.version - 1);
    assert!(matches!(app.store.save(&stale).await, Err(SaveError::LeadChanged)));

    let mut assignment = Change::of(next, lead.version - 1);
    assignment.lead.version = lead.version;
    assignment.skip = Some(("trio".into(), 2));
    assignment.load = vec![("rio".into(), 1)];
    assignment.account = Some(("example.com".into(), "rio".into()));
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
    let lead = app.capture(vp("outage@example.com"), at(T0)).await.expect("capture").lead;
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
    let lead = app.capture(vp("slow@example.com"), at(T0)).await.expect("capture").lead;
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
    let idle = app.capture(vp("idle@example.com"), at(T0)).await.expect("capture").lead;
    let recent = app.capture(profile("recent@example.com"), at("2026-03-30T14:00:00Z")).await.expect("capture").lead;
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
