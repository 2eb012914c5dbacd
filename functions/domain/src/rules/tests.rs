//! Table-driven tests of the rule engine. The tables are data files in
//! `functions/domain/tests/tables/`; each case names what it checks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::input::EventTypes;
use super::lifecycle::{DealOutcome, DormancyCause, SalesEvent};
use super::routing::{AssignContext, PoolCursors, Step, Workload};
use super::testcases;
use super::yaml::Doc;
use super::{RULE_FILES, RuleSet, RuleSources};
use crate::lead::{Bant, Status};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn table<T: for<'de> Deserialize<'de>>(name: &str) -> T {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tables").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn starter_sources() -> RuleSources {
    RuleSources::from_dir(&repo().join("rules")).expect("starter rules")
}

/// The starter rules with some files replaced by the given YAML values.
fn rules_with(overrides: &[(&str, &serde_yaml::Value)]) -> RuleSet {
    let starter = starter_sources();
    let texts: Vec<(String, String)> = RULE_FILES
        .iter()
        .map(|name| {
            let text = match overrides.iter().find(|(n, _)| n == name) {
                Some((_, v)) => serde_yaml::to_string(v).expect("yaml"),
                None => starter.get(name).expect("starter file").to_owned(),
            };
            ((*name).to_owned(), text)
        })
        .collect();
    let sources = RuleSources::from_texts(texts.iter().map(|(n, t)| (n.as_str(), t.as_str())));
    RuleSet::load(&sources).unwrap_or_else(|d| panic!("table rules do not load:\n{d}"))
}

// ---------------------------------------------------------------- conditions

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConditionCase {
    name: String,
    when: serde_yaml::Value,
    lead: Value,
    #[serde(default)]
    events: Option<Value>,
    #[serde(default)]
    score: Option<i64>,
    #[serde(default)]
    tier: Option<String>,
    holds: bool,
}

#[test]
fn condition_table() {
    let rules = rules_with(&[]);
    let tiers = rules.scoring.tier_names();
    let cases: Vec<ConditionCase> = table("conditions.yaml");
    assert!(cases.len() > 50);
    let mut failures = Vec::new();
    for case in cases {
        let text = serde_yaml::to_string(&case.when).expect("yaml");
        let (mut doc, node) = Doc::parse("table", &text);
        let scope = super::field::Scope { events: &rules.events, tiers: Some(&tiers), score_known: true };
        let cond = node.and_then(|n| super::condition::compile(&mut doc, &n, "when", &scope));
        let Some(cond) = cond else {
            failures.push(format!("{}: does not compile: {:?}", case.name, doc.diags));
            continue;
        };
        let input = rules
            .lead_input(&serde_json::json!({"lead": case.lead, "events": case.events}), EventTypes::Known)
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let mut scratch = Vec::new();
        let slots = input.events.slots_of(&rules.events, &mut scratch);
        let mut facts = rules.facts(&input.profile, slots, input.status, input.bant);
        facts.score = case.score;
        facts.tier = case.tier.as_deref().map(|t| rules.scoring.tier_index(t).expect("tier"));
        if cond.holds(&facts) != case.holds {
            failures.push(format!("{}: expected holds = {}", case.name, case.holds));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------- scoring

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScoringGroup {
    about: String,
    scoring: serde_yaml::Value,
    cases: serde_yaml::Value,
}

#[test]
fn scoring_table() {
    let groups: Vec<ScoringGroup> = table("scoring.yaml");
    let mut failures = Vec::new();
    let mut count = 0;
    for g in groups {
        let rules = rules_with(&[("scoring.yaml", &g.scoring)]);
        let text = serde_yaml::to_string(&g.cases).expect("yaml");
        let outcomes = testcases::run_file(&rules, &g.about, &text).unwrap_or_else(|d| panic!("{d}"));
        for o in outcomes {
            count += 1;
            if !o.passed() {
                failures.push(format!(
                    "{}: {}: {:?} {:?}\n{}",
                    g.about,
                    o.name,
                    o.errors,
                    o.mismatches,
                    o.explanation.map(|e| e.to_string()).unwrap_or_default()
                ));
            }
        }
    }
    assert!(count > 20);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------- routing

#[derive(Default)]
struct Team {
    open: BTreeMap<String, u32>,
    cursors: BTreeMap<String, u64>,
}

impl Workload for Team {
    fn open_leads(&self, rep: &str) -> u32 {
        self.open.get(rep).copied().unwrap_or(0)
    }
}

impl PoolCursors for Team {
    fn cursor(&self, pool: &str) -> u64 {
        self.cursors.get(pool).copied().unwrap_or(0)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoutingGroup {
    about: String,
    routing: serde_yaml::Value,
    cases: Vec<RoutingCase>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoutingCase {
    name: String,
    lead: Value,
    #[serde(default)]
    events: Option<Value>,
    today: NaiveDate,
    #[serde(default)]
    open: BTreeMap<String, u32>,
    #[serde(default)]
    cursors: BTreeMap<String, u64>,
    #[serde(default)]
    previous_owner: Option<String>,
    #[serde(default)]
    account_owner: Option<String>,
    /// Route this many leads one after another, each assignment adding to the
    /// rep's open leads and moving the cursor, as the store does.
    #[serde(default = "one")]
    repeat: u32,
    expect: RoutingExpect,
}

fn one() -> u32 {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoutingExpect {
    #[serde(default)]
    rule: Option<String>,
    /// The rep, or null for unassigned (single assignment).
    #[serde(default)]
    rep: Option<Option<String>>,
    #[serde(default)]
    pool: Option<Option<String>>,
    /// The kinds of chain steps, in order (single assignment).
    #[serde(default)]
    chain: Option<Vec<String>>,
    /// The reps chosen, in order (repeated assignments).
    #[serde(default)]
    sequence: Option<Vec<String>>,
    /// Assignments per rep (repeated assignments).
    #[serde(default)]
    counts: Option<BTreeMap<String, u32>>,
}

fn step_kind(s: &Step) -> String {
    let v = serde_json::to_value(s).expect("json");
    let kind = v["step"].as_str().unwrap_or_default().to_owned();
    match s {
        Step::RepUnavailable { rep, .. }
        | Step::Chosen { rep, .. }
        | Step::Sticky { rep }
        | Step::AccountMatch { rep } => {
            format!("{kind} {rep}")
        }
        Step::PoolExhausted { pool, .. } | Step::Fallback { pool } => format!("{kind} {pool}"),
        Step::Overflow { to, .. } => format!("{kind} {to}"),
        Step::Default => kind,
    }
}

#[test]
fn routing_table() {
    let groups: Vec<RoutingGroup> = table("routing.yaml");
    let mut failures = Vec::new();
    for g in groups {
        let rules = rules_with(&[("routing.yaml", &g.routing)]);
        for case in g.cases {
            let label = format!("{}: {}", g.about, case.name);
            let input = rules
                .lead_input(&serde_json::json!({"lead": case.lead, "events": case.events}), EventTypes::Known)
                .unwrap_or_else(|e| panic!("{label}: {e}"));
            let mut scratch = Vec::new();
            let slots = input.events.slots_of(&rules.events, &mut scratch);
            let mut team = Team { open: case.open.clone(), cursors: case.cursors.clone() };
            let ctx = AssignContext {
                today: case.today,
                previous_owner: case.previous_owner.as_deref(),
                account_owner: case.account_owner.as_deref(),
            };
            let mut chosen = Vec::new();
            let mut last = None;
            for _ in 0..case.repeat {
                let mut facts = rules.facts(&input.profile, slots, input.status, input.bant);
                rules.evaluate(&mut facts, 0, &mut ());
                let a = rules.routing.assign(&facts, &ctx, &team, &team);
                if let Some(rep) = &a.rep {
                    *team.open.entry(rep.clone()).or_default() += 1;
                    chosen.push(rep.clone());
                }
                if let (Some(pool), Some(c)) = (&a.pool, a.cursor) {
                    assert_eq!(team.cursor(pool), c.from, "{label}: cursor moves from where it stood");
                    team.cursors.insert(pool.clone(), c.to);
                }
                last = Some(a);
            }
            let a = last.expect("at least one assignment");
            let e = &case.expect;
            if let Some(rule) = &e.rule
                && *rule != a.rule
            {
                failures.push(format!("{label}: rule {} != {rule}", a.rule));
            }
            if let Some(rep) = &e.rep
                && *rep != a.rep
            {
                failures.push(format!("{label}: rep {:?} != {rep:?}", a.rep));
            }
            if let Some(pool) = &e.pool
                && *pool != a.pool
            {
                failures.push(format!("{label}: pool {:?} != {pool:?}", a.pool));
            }
            if let Some(chain) = &e.chain {
                let got: Vec<String> = a.chain.iter().map(step_kind).collect();
                if got != *chain {
                    failures.push(format!("{label}: chain {got:?} != {chain:?}"));
                }
            }
            if let Some(seq) = &e.sequence
                && chosen != *seq
            {
                failures.push(format!("{label}: sequence {chosen:?} != {seq:?}"));
            }
            if let Some(counts) = &e.counts {
                let mut got: BTreeMap<String, u32> = BTreeMap::new();
                for r in &chosen {
                    *got.entry(r.clone()).or_default() += 1;
                }
                if got != *counts {
                    failures.push(format!("{label}: counts {got:?} != {counts:?}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------- SLA

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SlaGroup {
    about: String,
    sla: serde_yaml::Value,
    cases: Vec<SlaCase>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SlaCase {
    name: String,
    tier: String,
    handed_off_at: DateTime<Utc>,
    /// The deadline, or null for no SLA.
    deadline: Option<DateTime<Utc>>,
    /// When each escalation step is due.
    #[serde(default)]
    steps: Option<Vec<DateTime<Utc>>>,
    /// Steps due at a given time, with a bit per step already fired.
    #[serde(default)]
    due: Option<Vec<DueCheck>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DueCheck {
    now: DateTime<Utc>,
    #[serde(default)]
    fired: u64,
    steps: Vec<usize>,
}

#[test]
fn sla_table() {
    let groups: Vec<SlaGroup> = table("sla.yaml");
    let mut failures = Vec::new();
    for g in groups {
        let rules = rules_with(&[("sla.yaml", &g.sla)]);
        for case in g.cases {
            let label = format!("{}: {}", g.about, case.name);
            let tier = rules.scoring.tier_index(&case.tier).expect("tier");
            let deadline = rules.sla.deadline(tier, case.handed_off_at);
            if deadline != case.deadline {
                failures.push(format!("{label}: deadline {deadline:?} != {:?}", case.deadline));
                continue;
            }
            let Some(deadline) = deadline else { continue };
            if let Some(steps) = &case.steps {
                let got: Vec<DateTime<Utc>> =
                    (0..rules.sla.escalation.len()).filter_map(|i| rules.sla.step_due(i, deadline)).collect();
                if got != *steps {
                    failures.push(format!("{label}: steps {got:?} != {steps:?}"));
                }
            }
            for d in case.due.iter().flatten() {
                let got = rules.sla.due_steps(deadline, d.now, d.fired);
                if got != d.steps {
                    failures.push(format!("{label}: at {} with fired {:b}: {got:?} != {:?}", d.now, d.fired, d.steps));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn starter_sla_runs_clocks_in_new_york_business_hours() {
    let rules = rules_with(&[]);
    let hot = rules.scoring.tier_index("hot").unwrap();
    let cold = rules.scoring.tier_index("cold").unwrap();
    let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
    // Friday 17:50 in New York (UTC-5): 10 minutes on Friday, 5 on Monday from 08:00.
    assert_eq!(rules.sla.deadline(hot, at("2026-11-20T22:50:00Z")), Some(at("2026-11-23T13:05:00Z")));
    assert_eq!(rules.sla.deadline(cold, at("2026-11-20T22:50:00Z")), None);
    // The manager hears of it 30 minutes after the deadline; the lead moves at 2 hours.
    let deadline = at("2026-11-23T13:05:00Z");
    assert_eq!(rules.sla.due_steps(deadline, at("2026-11-23T13:35:00Z"), 0b001), vec![1]);
    assert_eq!(rules.sla.step_due(2, deadline), Some(at("2026-11-23T15:05:00Z")));
    assert!(rules.sla.escalation[2].reassign);
}

#[test]
fn the_next_escalation_is_the_earliest_step_not_fired() {
    let rules = rules_with(&[]);
    let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
    let deadline = at("2026-11-23T13:05:00Z");
    assert_eq!(rules.sla.next_due(deadline, 0), Some(deadline));
    assert_eq!(rules.sla.next_due(deadline, 0b001), Some(at("2026-11-23T13:35:00Z")));
    assert_eq!(rules.sla.next_due(deadline, 0b111), None);
}

#[test]
fn idle_days_are_whole_days_and_never_negative() {
    use super::scoring::idle_days;
    let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
    assert_eq!(idle_days(at("2026-11-01T12:00:00Z"), at("2026-11-15T11:59:59Z")), 13);
    assert_eq!(idle_days(at("2026-11-01T12:00:00Z"), at("2026-11-15T12:00:00Z")), 14);
    assert_eq!(idle_days(at("2026-11-15T12:00:00Z"), at("2026-11-01T12:00:00Z")), 0);
}

#[test]
fn only_disqualified_leads_expire_after_the_retention_period() {
    let rules = rules_with(&[]);
    let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
    let then = at("2026-11-24T10:00:00Z");
    assert_eq!(rules.lifecycle.expires_at(Status::Disqualified, then), Some(at("2027-11-24T10:00:00Z")));
    assert_eq!(rules.lifecycle.expires_at(Status::Converted, then), None);
}

// ---------------------------------------------------------------- lifecycle

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LifecycleTable {
    transitions: Vec<TransitionCase>,
    dormancy: Vec<DormancyCase>,
    reactivation: Vec<ReactivationCase>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransitionCase {
    from: Status,
    event: String,
    #[serde(default)]
    bant_before: Bant,
    #[serde(default)]
    bant: Bant,
    #[serde(default)]
    reason: Option<String>,
    /// The status after, or `error`.
    to: String,
    #[serde(default)]
    stops_clock: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DormancyCase {
    status: Status,
    idle_days: u32,
    unanswered: u32,
    /// `idle`, `unanswered`, or null for staying awake.
    dormant: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReactivationCase {
    status: Status,
    event: String,
    wakes: bool,
}

#[test]
fn lifecycle_table() {
    let rules = rules_with(&[]);
    let t: LifecycleTable = table("lifecycle.yaml");
    let mut failures = Vec::new();
    for c in &t.transitions {
        let event = match c.event.as_str() {
            "contacted" => SalesEvent::Contacted,
            "contact_attempt" => SalesEvent::ContactAttempt,
            "qualified" => SalesEvent::Qualified(c.bant),
            "converted" => SalesEvent::Converted,
            "outcome" => SalesEvent::Outcome(DealOutcome { won: true, amount_cents: None, currency: None }),
            "disqualified" => SalesEvent::Disqualified { reason: c.reason.clone().unwrap_or_default() },
            "nurture" => SalesEvent::Nurture,
            other => panic!("unknown event {other}"),
        };
        let label = format!("{} + {}", c.from, c.event);
        match (rules.lifecycle.apply(c.from, c.bant_before, &event), c.to.as_str()) {
            (Err(_), "error") => {}
            (Err(e), to) => failures.push(format!("{label}: error {e}, expected {to}")),
            (Ok(t), "error") => failures.push(format!("{label}: {} accepted, expected an error", t.to)),
            (Ok(t), to) => {
                if t.to.as_str() != to || t.stops_clock != c.stops_clock {
                    failures.push(format!(
                        "{label}: {} (stops clock {}), expected {to} ({})",
                        t.to, t.stops_clock, c.stops_clock
                    ));
                }
            }
        }
    }
    for c in &t.dormancy {
        let got = match rules.lifecycle.dormancy(c.status, c.idle_days, c.unanswered) {
            Some(DormancyCause::Idle { .. }) => Some("idle"),
            Some(DormancyCause::Unanswered { .. }) => Some("unanswered"),
            None => None,
        };
        if got != c.dormant.as_deref() {
            failures.push(format!("dormancy {} idle {} unanswered {}: {got:?}", c.status, c.idle_days, c.unanswered));
        }
    }
    for c in &t.reactivation {
        let slot = rules.events.slot(&c.event).expect("known event");
        if rules.lifecycle.reactivation(c.status, slot).is_some() != c.wakes {
            failures.push(format!("reactivation {} on {}: expected wakes = {}", c.event, c.status, c.wakes));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------- loader

#[test]
fn diagnostics_carry_line_and_column_of_the_offending_key() {
    let mut sources = starter_sources();
    let routing = sources.get("routing.yaml").unwrap().replace(
        "when: { employees: { gte: 1000 }, free_email: false }",
        "when: { employees: { gte: 1000 }, industy: x }",
    );
    let line = routing.lines().position(|l| l.contains("industy")).unwrap() + 1;
    let column = routing.lines().nth(line - 1).unwrap().find("industy").unwrap() + 1;
    sources = RuleSources::from_texts(
        RULE_FILES.iter().map(|n| (*n, if *n == "routing.yaml" { routing.as_str() } else { sources.get(n).unwrap() })),
    );
    let diags = RuleSet::load(&sources).unwrap_err();
    let d = diags.iter().next().unwrap();
    assert_eq!((d.file.as_str(), d.path.as_str()), ("routing.yaml", "rules[1].when.industy"));
    assert_eq!((d.line, d.column), (Some(line), Some(column)));
    assert_eq!(d.suggestion.as_deref(), Some("industry"));
}

#[test]
fn the_rules_version_changes_with_any_file() {
    let a = starter_sources();
    let edited: Vec<(&str, String)> = RULE_FILES
        .iter()
        .map(|n| {
            (
                *n,
                if *n == "sla.yaml" {
                    format!("# edited\n{}", a.get(n).unwrap())
                } else {
                    a.get(n).unwrap().to_owned()
                },
            )
        })
        .collect();
    let b = RuleSources::from_texts(edited.iter().map(|(n, t)| (*n, t.as_str())));
    assert_ne!(a.version(), b.version());
    assert_eq!(a.version(), starter_sources().version());
}

#[test]
fn capture_merge_keeps_first_touch_and_never_overwrites_with_empty() {
    use crate::lead::{Email, FieldTarget, Profile, ProfileField};
    let rules = rules_with(&[]);
    let mut first = Profile::new(Email::parse("jo@example.de").unwrap());
    first.set(&FieldTarget::Profile(ProfileField::Source), "webinar").unwrap();
    first.set(&FieldTarget::Profile(ProfileField::Company), "Old GmbH").unwrap();
    first.set(&FieldTarget::Profile(ProfileField::JobTitle), "Manager").unwrap();
    let mut again = Profile::new(Email::parse("jo@example.de").unwrap());
    again.set(&FieldTarget::Profile(ProfileField::Source), "google").unwrap();
    again.set(&FieldTarget::Profile(ProfileField::Company), "New GmbH").unwrap();
    again.set(&FieldTarget::Profile(ProfileField::UtmCampaign), "spring").unwrap();
    let merged = rules.capture.merge(&first, &again);
    assert_eq!(merged.source.as_deref(), Some("webinar"), "first touch kept");
    assert_eq!(merged.company.as_deref(), Some("New GmbH"), "present values overwrite");
    assert_eq!(merged.job_title.as_deref(), Some("Manager"), "absent values never overwrite");
    assert_eq!(merged.utm_campaign.as_deref(), Some("spring"), "a keep_first field that was empty is filled");
}

#[test]
fn capture_maps_source_fields_then_lead_field_names() {
    use crate::lead::{FieldTarget, ProfileField};
    let rules = rules_with(&[]);
    let c = &rules.capture;
    assert_eq!(c.mapped(Some("hubspot"), "numemployees"), Some(FieldTarget::Profile(ProfileField::Employees)));
    assert_eq!(c.mapped(None, "numemployees"), None, "a custom field, if the source keeps them");
    assert_eq!(c.mapped(None, "custom.seats"), Some(FieldTarget::Custom("seats".into())));
    assert_eq!(c.mapped(Some("hubspot"), "company"), Some(FieldTarget::Profile(ProfileField::Company)));
    assert!(c.is_free_email("gmail.com"));
    assert!(!c.is_free_email("acme.com"));
}

// ---------------------------------------------------------------- robustness

mod robustness {
    use proptest::prelude::*;

    use super::super::{RULE_FILES, RuleSet, RuleSources};
    use super::starter_sources;

    /// Words the loader reacts to, so that random documents reach deep into it.
    const WORDS: &[&str] = &[
        "fit",
        "engagement",
        "limits",
        "decay",
        "tiers",
        "handoff",
        "name",
        "when",
        "points",
        "max_points",
        "min",
        "max",
        "after_days",
        "percent_per_week",
        "reps",
        "pools",
        "rules",
        "default",
        "sticky",
        "account_match",
        "id",
        "email",
        "phone",
        "capacity",
        "manager",
        "active",
        "away",
        "from",
        "to",
        "members",
        "strategy",
        "overflow",
        "pool",
        "rep",
        "fallback",
        "first_response",
        "business_hours",
        "timezone",
        "days",
        "hours",
        "escalation",
        "after",
        "notify",
        "reassign",
        "qualification",
        "required",
        "disqualify_reasons",
        "dormancy",
        "statuses",
        "reactivation",
        "events",
        "action",
        "retention",
        "honeypot",
        "free_email_domains",
        "sources",
        "fields",
        "merge",
        "keep_first",
        "all",
        "any",
        "not",
        "country",
        "employees",
        "score",
        "tier",
        "status",
        "events.demo_request",
        "custom.x",
        "bant.need",
        "hot",
        "warm",
        "cold",
        "round_robin",
        "weighted",
        "least_loaded",
        "owner",
        "ana",
        "ben",
        "inbound",
        "enterprise",
        "true",
        "false",
        "5m",
        "1h",
        "mon",
        "Europe/Berlin",
        "09:00-17:00",
        "2026-12-20",
        "0",
        "-1",
        "1e999",
        "(",
        "[a-",
        "~",
        "",
    ];

    /// The rule words and every condition operator.
    fn words() -> Vec<&'static str> {
        WORDS.iter().chain(super::super::condition::OPERATORS).copied().collect()
    }

    fn scalar() -> impl Strategy<Value = serde_yaml::Value> {
        prop_oneof![
            proptest::sample::select(words()).prop_map(|w| serde_yaml::Value::String(w.to_owned())),
            any::<i64>().prop_map(|n| serde_yaml::Value::Number(n.into())),
            any::<bool>().prop_map(serde_yaml::Value::Bool),
            Just(serde_yaml::Value::Null),
            ".{0,12}".prop_map(serde_yaml::Value::String),
        ]
    }

    fn document() -> impl Strategy<Value = serde_yaml::Value> {
        scalar().prop_recursive(6, 80, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_yaml::Value::Sequence),
                proptest::collection::vec((proptest::sample::select(words()), inner), 0..6).prop_map(|pairs| {
                    serde_yaml::Value::Mapping(
                        pairs.into_iter().map(|(k, v)| (serde_yaml::Value::String(k.to_owned()), v)).collect(),
                    )
                }),
            ]
        })
    }

    /// The starter rules with one file replaced by `text`.
    fn load_with(file: usize, text: &str) {
        let starter = starter_sources();
        let name = RULE_FILES[file % RULE_FILES.len()];
        let sources = RuleSources::from_texts(
            RULE_FILES.iter().map(|n| (*n, if *n == name { text } else { starter.get(n).unwrap() })),
        );
        // Loading either succeeds or reports diagnostics; it never panics.
        if let Err(diags) = RuleSet::load(&sources) {
            assert!(!diags.is_empty());
            for d in diags.iter() {
                assert!(!d.message.is_empty());
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

        #[test]
        fn random_yaml_documents_never_panic_the_loader(file in 0usize..5, doc in document()) {
            load_with(file, &serde_yaml::to_string(&doc).unwrap());
        }

        #[test]
        fn random_bytes_never_panic_the_loader(file in 0usize..5, bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            load_with(file, &String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn mangled_starter_files_never_panic_the_loader(
            file in 0usize..5,
            edits in proptest::collection::vec((any::<proptest::sample::Index>(), 0usize..3, ".{0,3}"), 1..6),
        ) {
            let starter = starter_sources();
            let mut text: Vec<char> = starter.get(RULE_FILES[file]).unwrap().chars().collect();
            for (at, kind, insert) in edits {
                let i = at.index(text.len().max(1)).min(text.len());
                match kind {
                    0 => { text.drain(i..(i + 5).min(text.len())); }
                    1 => { text.splice(i..i, insert.chars()); }
                    _ => { if i < text.len() { text[i] = insert.chars().next().unwrap_or(' '); } }
                }
            }
            load_with(file, &text.into_iter().collect::<String>());
        }
    }

    #[test]
    fn pathological_inputs_are_errors_not_crashes() {
        let deep_flow = format!("{}{}", "[".repeat(500_000), "]".repeat(500_000));
        let deep_block: String = (0..2_000).map(|i| format!("{}a{i}:\n", " ".repeat(i))).collect();
        let huge = "x: ".to_owned() + &"y".repeat(2 << 20);
        for text in
            [deep_flow.as_str(), deep_block.as_str(), huge.as_str(), "\u{0}", "- - - -", "&a x: *a", "!!binary x: 1"]
        {
            for file in 0..5 {
                load_with(file, text);
            }
        }
    }
}

// ------------------------------------------------- compiled conditions

/// The conditions compiled over one word of tests per lead decide exactly as
/// the condition trees do: the same score, the same fit rules in the same
/// order, the same route, for random rule sets and random leads.
mod program {
    use serde_json::json;

    use super::*;
    use crate::lead::{Email, FieldTarget, Profile, ProfileField};
    use crate::rules::EventCounts;
    use crate::rules::scoring::MatchedFit;

    const COUNTRIES: &[&str] = &["US", "CA", "GB", "DE", "FR", "JP", "BR", "IN"];
    const INDUSTRIES: &[&str] = &["software", "SaaS", "fintech", "Banking", "retail", "ÉNERGIE", "énergie"];
    const TITLES: &[&str] =
        &["Chief Revenue Officer", "VP Sales", "vice president", "Intern", "CTO", "KELVIN K", "Directeur"];
    const EVENTS: &[&str] = &["demo_request", "pricing_page_view", "email_open", "unsubscribe"];
    const STATUSES: &[&str] = &["nurturing", "assigned", "working", "qualified", "dormant"];

    fn pick<'a>(rng: &mut fastrand::Rng, from: &[&'a str]) -> &'a str {
        from[rng.usize(..from.len())]
    }

    fn some<'a>(rng: &mut fastrand::Rng, from: &[&'a str]) -> Vec<&'a str> {
        (0..rng.usize(1..4)).map(|_| pick(rng, from)).collect()
    }

    /// One test on one field; routing tests may read the score and tier.
    fn leaf(rng: &mut fastrand::Rng, routing: bool) -> Value {
        let n = |rng: &mut fastrand::Rng| rng.i64(0..3000);
        match rng.u8(..if routing { 14 } else { 12 }) {
            0 => json!({ "employees": { "gte": n(rng) } }),
            1 => {
                let a = n(rng);
                json!({ "employees": { "between": [a, a + n(rng)] } })
            }
            2 => json!({ "employees": { "lt": n(rng) } }),
            3 => json!({ "country": some(rng, COUNTRIES) }),
            4 => json!({ "country": { "not_in": some(rng, COUNTRIES) } }),
            5 => json!({ "industry": some(rng, INDUSTRIES) }),
            6 => json!({ "industry": { "ne": pick(rng, INDUSTRIES) } }),
            7 => json!({ "job_title": { "contains": pick(rng, &["chief", "vp", "k", "intern", "dir"]) } }),
            8 => match rng.u8(..3) {
                0 => json!({ "job_title": { "starts_with": "vp" } }),
                1 => json!({ "job_title": { "matches": "(?i)^c.o$" } }),
                _ => json!({ "source": { "exists": rng.bool() } }),
            },
            9 => json!({ "free_email": rng.bool() }),
            10 => match rng.u8(..3) {
                0 => json!({ format!("events.{}", pick(rng, EVENTS)): { "exists": rng.bool() } }),
                1 => json!({ format!("events.{}", pick(rng, EVENTS)): { "gte": rng.u32(1..4) } }),
                _ => json!({ "status": some(rng, STATUSES) }),
            },
            11 => json!({ "bant.budget": rng.bool() }),
            12 => json!({ "score": { if rng.bool() { "gte" } else { "lt" }: rng.i64(0..120) } }),
            _ => json!({ "tier": some(rng, &["cold", "warm", "hot"]) }),
        }
    }

    fn condition(rng: &mut fastrand::Rng, routing: bool, depth: u32) -> Value {
        if depth == 0 {
            return leaf(rng, routing);
        }
        let list = |rng: &mut fastrand::Rng| -> Vec<Value> {
            (0..rng.usize(1..4)).map(|_| condition(rng, routing, depth - 1)).collect()
        };
        match rng.u8(..7) {
            0 | 1 => leaf(rng, routing),
            2 => json!({ "all": list(rng) }),
            3 => json!({ "any": list(rng) }),
            4 => json!({ "not": condition(rng, routing, depth - 1) }),
            5 => {
                // Several keys in one map: all of them.
                let mut map = serde_json::Map::new();
                for _ in 0..rng.usize(1..4) {
                    if let Value::Object(m) = leaf(rng, routing) {
                        map.extend(m);
                    }
                }
                Value::Object(map)
            }
            _ => json!({ "all": [leaf(rng, routing), { "any": list(rng) }, { "not": { "any": list(rng) } }] }),
        }
    }

    fn yaml(v: Value) -> serde_yaml::Value {
        serde_yaml::to_value(v).expect("yaml")
    }

    /// The starter rules with random fit and routing rules.
    fn random_rules(rng: &mut fastrand::Rng) -> RuleSet {
        let file = |name: &str| -> serde_yaml::Value {
            serde_yaml::from_str(starter_sources().get(name).expect("starter file")).expect("yaml")
        };
        let mut scoring = file("scoring.yaml");
        let fit: Vec<Value> = (0..rng.usize(1..12))
            .map(
                |i| json!({ "name": format!("fit-{i}"), "when": condition(rng, false, 2), "points": rng.i64(-30..40) }),
            )
            .collect();
        scoring["fit"] = yaml(json!(fit));
        let mut routing = file("routing.yaml");
        let rules: Vec<Value> = (0..rng.usize(1..12))
            .map(|i| json!({ "name": format!("route-{i}"), "when": condition(rng, true, 2), "to": { "pool": "inbound" } }))
            .collect();
        routing["rules"] = yaml(json!(rules));
        rules_with(&[("scoring.yaml", &scoring), ("routing.yaml", &routing)])
    }

    fn random_lead(rng: &mut fastrand::Rng, rules: &RuleSet) -> (Profile, EventCounts, Status, Bant, u32) {
        let domain = pick(rng, &["gmail.com", "acme.com", "web.de", "globex.com"]);
        let mut p = Profile::new(Email::parse(&format!("lead@{domain}")).expect("email"));
        let mut set = |rng: &mut fastrand::Rng, field: ProfileField, value: &str| {
            if rng.u8(..4) > 0 {
                p.set(&FieldTarget::Profile(field), value).expect("valid");
            }
        };
        let employees = rng.i64(0..6000).to_string();
        set(rng, ProfileField::Employees, &employees);
        let (country, industry, title) = (pick(rng, COUNTRIES), pick(rng, INDUSTRIES), pick(rng, TITLES));
        set(rng, ProfileField::Country, country);
        set(rng, ProfileField::Industry, industry);
        set(rng, ProfileField::JobTitle, title);
        set(rng, ProfileField::Source, "webinar");
        let mut events = EventCounts::new(&rules.events);
        for _ in 0..rng.usize(..4) {
            events.set(pick(rng, EVENTS), rng.u32(..4));
        }
        let status = pick(rng, STATUSES).parse().expect("status");
        let bant = Bant { budget: [None, Some(true), Some(false)][rng.usize(..3)], ..Bant::default() };
        (p, events, status, bant, rng.u32(..80))
    }

    /// Decides `leads` both ways and panics where they differ.
    fn agree(rules: &RuleSet, rng: &mut fastrand::Rng, leads: usize) {
        let mut scratch = Vec::new();
        for _ in 0..leads {
            let (profile, events, status, bant, idle) = random_lead(rng, rules);
            let slots = events.slots_of(&rules.events, &mut scratch);
            let mut facts = rules.facts(&profile, slots, status, bant);
            let (mut fast_fit, mut tree_fit) = (MatchedFit::default(), MatchedFit::default());
            let fast = rules.evaluate(&mut facts, idle, &mut fast_fit);
            // Told nothing, the word sums the fit points at once.
            let mut facts = rules.facts(&profile, slots, status, bant);
            assert_eq!(rules.evaluate(&mut facts, idle, &mut ()), fast, "{profile:?} {events:?}");
            let mut facts = rules.facts(&profile, slots, status, bant);
            let score = rules.scoring.score(&facts, idle, &mut tree_fit);
            facts.score = Some(score.total);
            facts.tier = Some(score.tier);
            let route = rules.routing.decide(&facts);
            assert_eq!(fast.score, score, "{profile:?} {events:?}");
            assert_eq!(fast_fit.0, tree_fit.0, "{profile:?} {events:?}");
            assert_eq!(fast.route, route, "{profile:?} {events:?} {status:?}");
        }
    }

    #[test]
    fn compiled_conditions_decide_as_the_trees_do() {
        let mut rng = fastrand::Rng::with_seed(11);
        let (mut decided, mut rules_seen) = (0, 0);
        for _ in 0..150 {
            let rules = random_rules(&mut rng);
            let (d, total, _) = rules.program.coverage();
            decided += d;
            rules_seen += total;
            agree(&rules, &mut rng, 300);
        }
        // Most random conditions are flat enough for the word; the rest keep
        // their trees, and both kinds were compared.
        assert!(decided * 2 > rules_seen && decided < rules_seen, "{decided} of {rules_seen} rules compiled");
    }

    /// The shipped and benchmark rule sets: the word decides every rule but
    /// the starter's one `matches` test (a regex is never a bit of the word),
    /// and the fit rules that read one value are folded into its table.
    #[test]
    fn the_word_decides_the_shipped_rules() {
        let saas = RuleSet::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/saas")).expect("saas rules");
        let starter = RuleSet::load(&starter_sources()).expect("starter rules");
        let mut rng = fastrand::Rng::with_seed(5);
        for (rules, trees) in [(&saas, 0), (&starter, 1)] {
            let (decided, total, _) = rules.program.coverage();
            assert_eq!(decided + trees, total);
            agree(rules, &mut rng, 2000);
        }
        // Every saas fit rule but `never-engaged` (eight event counts) reads
        // one value with a table, and is folded into it.
        assert_eq!((saas.program.folded(), saas.scoring.fit.len()), (15, 16));
    }

    /// A test naming thousands of values makes a table as long, folded fit
    /// points included, and decides as the trees do.
    #[test]
    fn a_test_naming_thousands_of_values_decides_by_its_table() {
        let mut scoring: serde_yaml::Value =
            serde_yaml::from_str(starter_sources().get("scoring.yaml").expect("file")).expect("yaml");
        let mut named: Vec<String> = (0..5_000).map(|i| format!("industry-{i}")).collect();
        named.extend(["fintech", "énergie"].map(String::from));
        let fit = json!([
            { "name": "many", "when": { "industry": named }, "points": 7 },
            { "name": "not-many", "when": { "industry": { "not_in": named } }, "points": -3 },
        ]);
        scoring["fit"] = yaml(fit);
        let rules = rules_with(&[("scoring.yaml", &scoring)]);
        let (decided, total, _) = rules.program.coverage();
        assert!(decided >= 2 && decided <= total);
        agree(&rules, &mut fastrand::Rng::with_seed(12), 2000);
    }

    /// A field searched for more parts than its table tells apart: the parts
    /// past it keep their bits one by one, those before in the table, and
    /// fit rules reading either, alone or with others, decide as the trees do.
    #[test]
    fn parts_past_a_fields_table_decide_as_the_trees_do() {
        let mut scoring: serde_yaml::Value =
            serde_yaml::from_str(starter_sources().get("scoring.yaml").expect("file")).expect("yaml");
        let words = ["chief", "vp", "vice", "intern", "dir", "k", "o", "cto", "sales", "rev", "es", "e"];
        for searched in [4, 8, 9, 12] {
            let mut fit: Vec<Value> = words[..searched]
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    json!({ "name": format!("part-{i}"), "when": { "job_title": { "contains": w } }, "points": i + 1 })
                })
                .collect();
            fit.push(json!({ "name": "none", "when": { "not": { "any": [
                { "job_title": { "contains": "chief" } }, { "job_title": { "contains": words[searched - 1] } }
            ] } }, "points": -7 }));
            fit.push(json!({ "name": "mixed", "when": { "job_title": { "contains": "vp" }, "free_email": false },
                "points": 11 }));
            scoring["fit"] = yaml(json!(fit));
            let rules = rules_with(&[("scoring.yaml", &scoring)]);
            agree(&rules, &mut fastrand::Rng::with_seed(searched as u64), 2000);
        }
    }

    /// More tests than a word of 64 bits holds: all in one of 128, and every
    /// rule decided by it.
    #[test]
    fn a_wide_word_decides_past_64_tests() {
        let mut scoring: serde_yaml::Value =
            serde_yaml::from_str(starter_sources().get("scoring.yaml").expect("file")).expect("yaml");
        let fit: Vec<Value> = (0..90)
            .map(
                |i| json!({ "name": format!("size-{i}"), "when": { "employees": { "gte": i * 60 } }, "points": i % 7 }),
            )
            .collect();
        scoring["fit"] = yaml(json!(fit));
        let rules = rules_with(&[("scoring.yaml", &scoring)]);
        assert!(matches!(rules.program, crate::rules::Program::Wide(_)));
        let (decided, total, tests) = rules.program.coverage();
        assert!(tests > 64 && decided == total, "{decided} of {total} rules, {tests} tests");
        agree(&rules, &mut fastrand::Rng::with_seed(4), 2000);
    }

    /// More distinct tests than the word has bits: the rules past it keep
    /// their trees and still decide the same.
    #[test]
    fn rules_past_the_word_keep_their_trees() {
        let mut scoring: serde_yaml::Value =
            serde_yaml::from_str(starter_sources().get("scoring.yaml").expect("file")).expect("yaml");
        let fit: Vec<Value> = (0..200)
            .map(|i| json!({ "name": format!("size-{i}"), "when": { "employees": { "gte": i * 25 } }, "points": 1 }))
            .collect();
        scoring["fit"] = yaml(json!(fit));
        let rules = rules_with(&[("scoring.yaml", &scoring)]);
        let (decided, total, tests) = rules.program.coverage();
        assert_eq!(tests, 128);
        assert!(decided < total);
        agree(&rules, &mut fastrand::Rng::with_seed(3), 2000);
    }
}
