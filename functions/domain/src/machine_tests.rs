//! The state machine's table: `functions/domain/tests/tables/machine.yaml`.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_yaml::Value;

use super::*;
use crate::lead::{FieldTarget, Profile, Status};
use crate::record::{Lead, SlaClock};
use crate::rules::lifecycle::SalesEvent;
use crate::{Email, RuleSet};

fn t0() -> DateTime<Utc> {
    "2026-03-02T14:00:00Z".parse().expect("time")
}

fn at(minutes: i64) -> DateTime<Utc> {
    t0() + Duration::minutes(minutes)
}

fn rules() -> RuleSet {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/conformance-rules");
    RuleSet::load_dir(&dir).expect("conformance rules")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    #[serde(default)]
    capacity: BTreeMap<String, u32>,
    /// An extra escalation step that reassigns, this long after the deadline (`2h`).
    #[serde(default)]
    reassign_again_after: Option<String>,
    #[serde(default)]
    lead: Option<LeadSpec>,
    /// An `InputSpec` in YAML map form (`{engagement: {...}}`), read through JSON.
    input: Value,
    #[serde(default)]
    team: TeamSpec,
    expect: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LeadSpec {
    email: String,
    #[serde(default)]
    job_title: Option<String>,
    #[serde(default)]
    status: Option<Status>,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    previous_owner: Option<String>,
    #[serde(default)]
    pool: Option<String>,
    #[serde(default)]
    events: BTreeMap<String, u32>,
    /// Minutes from T0 when it was created (and last active).
    #[serde(default)]
    created: i64,
    /// The first-response deadline, in minutes from T0.
    #[serde(default)]
    clock: Option<i64>,
    /// When the SLA check is next due for it, in minutes from T0 (an
    /// unassigned lead's next reminder).
    #[serde(default)]
    due: Option<i64>,
    /// Stored without derived state, as an older version could leave it.
    #[serde(default)]
    underived: bool,
    /// Imported with its hand-off held.
    #[serde(default)]
    held: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum InputSpec {
    FormPost(BTreeMap<String, String>),
    Engagement {
        events: BTreeMap<String, u32>,
        #[serde(default)]
        happened: i64,
    },
    Sales(String),
    SlaTick(i64),
    Hygiene(i64),
    /// A row of an imported file: fields, created and last active (minutes
    /// from T0), event counts, and what happens next.
    Import {
        fields: BTreeMap<String, String>,
        #[serde(default)]
        created: Option<i64>,
        #[serde(default)]
        last_active: Option<i64>,
        #[serde(default)]
        events: BTreeMap<String, u32>,
        #[serde(default)]
        handoff: bool,
        #[serde(default)]
        notify: bool,
    },
    Repair,
    /// A rep's action from the web app: `{by: rio, do: contacted}`, `{by:
    /// rio, do: not_mine}`, `{by: max, do: assign, to: sam, over_capacity: true}`.
    Act {
        by: String,
        #[serde(rename = "do")]
        action: String,
        #[serde(default)]
        to: Option<String>,
        #[serde(default)]
        over_capacity: bool,
    },
}

fn sales_event(kind: &str) -> Result<SalesEvent, String> {
    Ok(match kind {
        "contacted" => SalesEvent::Contacted,
        "contact_attempt" => SalesEvent::ContactAttempt,
        "converted" => SalesEvent::Converted,
        "nurture" => SalesEvent::Nurture,
        "won" | "lost" => SalesEvent::Outcome(
            crate::rules::lifecycle::DealOutcome::parse(kind, Some("1200.50"), Some("eur"))
                .map_err(|e| e.to_string())?,
        ),
        other => return Err(format!("unknown sales event {other}")),
    })
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TeamSpec {
    #[serde(default)]
    open: BTreeMap<String, u32>,
    #[serde(default)]
    turn: u64,
    /// Reps a manager marked inactive at runtime.
    #[serde(default)]
    inactive: Vec<String>,
    /// Capacities a manager set at runtime.
    #[serde(default)]
    capacity: BTreeMap<String, u32>,
}

impl TeamSpec {
    fn state(&self) -> TeamState {
        let mut settings: BTreeMap<String, crate::team::RepSettings> = BTreeMap::new();
        let blank = || crate::team::RepSettings {
            active: None,
            away: None,
            capacity: None,
            changed_by: "max".into(),
            changed_at: t0(),
        };
        for rep in &self.inactive {
            settings.entry(rep.clone()).or_insert_with(blank).active = Some(false);
        }
        for (rep, c) in &self.capacity {
            settings.entry(rep.clone()).or_insert_with(blank).capacity = Some(*c);
        }
        TeamState { open: self.open.clone(), settings, ..TeamState::default() }
    }
}

fn profile(email: &str, fields: &BTreeMap<String, String>) -> Profile {
    let mut p = Profile::new(Email::parse(email).expect("email"));
    for (name, value) in fields {
        let target = FieldTarget::parse(name).unwrap_or_else(|| panic!("field {name}"));
        p.set(&target, value).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    p
}

fn stored(rules: &RuleSet, spec: &LeadSpec) -> Lead {
    let mut fields = BTreeMap::new();
    if let Some(title) = &spec.job_title {
        fields.insert("job_title".to_owned(), title.clone());
    }
    let mut lead = Lead::new(profile(&spec.email, &fields), at(spec.created));
    lead.version = 3;
    lead.events.clone_from(&spec.events);
    lead.status = spec.status.unwrap_or(Status::Nurturing);
    lead.owner.clone_from(&spec.owner);
    lead.previous_owner.clone_from(&spec.previous_owner);
    lead.pool.clone_from(&spec.pool);
    lead.held = spec.held;
    if !spec.underived {
        let (explanation, _) = rescore(rules, &lead, at(spec.created));
        lead.score = explanation.score.score;
        lead.tier = explanation.score.tier;
    }
    if let Some(deadline) = spec.clock {
        lead.sla = Some(SlaClock { handed_off_at: at(deadline - 60), deadline: at(deadline), fired: 0 });
        lead.sla_due = Some(at(deadline));
    }
    if let Some(due) = spec.due {
        lead.sla_due = Some(at(due));
    }
    lead
}

fn minutes(v: &Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("minutes: {v:?}"))
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(serde_yaml::to_string(other).expect("yaml").trim().to_owned()),
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence().map(|s| s.iter().filter_map(text).collect()).unwrap_or_else(|| panic!("a list: {v:?}"))
}

#[test]
fn machine_table() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tables/machine.yaml");
    let cases: Vec<Case> = serde_yaml::from_str(&std::fs::read_to_string(&path).expect("table")).expect("table");
    let mut failures = Vec::new();
    for case in &cases {
        if let Err(e) = run(case) {
            failures.push(format!("{}: {e}", case.name));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

fn run(case: &Case) -> Result<(), String> {
    let mut rules = rules();
    for (rep, capacity) in &case.capacity {
        let i = rules.routing.rep_index(rep).ok_or(format!("no rep {rep}"))?;
        rules.routing.reps[i].capacity = Some(*capacity);
    }
    if let Some(after) = &case.reassign_again_after {
        let after = crate::duration::Duration::parse(after).map_err(|e| e.to_string())?;
        rules.sla.escalation.push(crate::rules::sla::EscalationStep { after, notify: Vec::new(), reassign: true });
    }
    let lead = case.lead.as_ref().map(|spec| stored(&rules, spec));
    let form;
    let counts: Vec<(String, u32)>;
    let sales;
    let action;
    let row;
    let spec: InputSpec =
        serde_json::to_value(&case.input).and_then(serde_json::from_value).map_err(|e| format!("input: {e}"))?;
    let (input, now) = match &spec {
        InputSpec::FormPost(fields) => {
            let email = fields.get("email").ok_or("a form post needs an email")?;
            let rest = fields.iter().filter(|(k, _)| *k != "email").map(|(k, v)| (k.clone(), v.clone())).collect();
            form = profile(email, &rest);
            (Input::FormPost { profile: &form, warnings: &[] }, t0())
        }
        InputSpec::Engagement { events, happened } => {
            counts = events.iter().map(|(k, v)| (k.clone(), *v)).collect();
            (Input::Engagement { counts: &counts, happened_at: at(*happened), event_id: None }, t0())
        }
        InputSpec::Sales(kind) => {
            sales = sales_event(kind)?;
            (Input::Sales { event: &sales, happened_at: t0(), event_id: None }, t0())
        }
        InputSpec::Act { by, action: kind, to, over_capacity } => {
            action = match (kind.as_str(), to) {
                ("not_mine", _) => Action::NotMine,
                ("assign", Some(to)) => Action::Assign { to: to.clone(), over_capacity: *over_capacity },
                (other, _) => Action::Sales(sales_event(other)?),
            };
            (Input::Act { by, action: &action, event_id: None }, t0())
        }
        InputSpec::Import { fields, created, last_active, events, handoff, notify } => {
            let email = fields.get("email").ok_or("an import needs an email")?;
            let rest = fields.iter().filter(|(k, _)| *k != "email").map(|(k, v)| (k.clone(), v.clone())).collect();
            row = crate::import::ImportRow {
                profile: profile(email, &rest),
                warnings: Vec::new(),
                created_at: created.map(at),
                last_activity_at: last_active.map(at),
                events: events.clone(),
            };
            (Input::Import { row: &row, handoff: *handoff, notify: *notify }, t0())
        }
        InputSpec::SlaTick(m) => (Input::SlaTick, at(*m)),
        InputSpec::Hygiene(m) => (Input::Hygiene, at(*m)),
        InputSpec::Repair => (Input::Repair { problem: "no derived state" }, t0()),
    };

    let mut needs = Vec::new();
    let mut team: Option<TeamState> = None;
    let outcome = loop {
        match decide(&rules, lead.as_ref(), &input, team.as_ref(), now) {
            Ok(Outcome::Needs(Need::Team { .. })) => {
                needs.push("team".to_owned());
                team = Some(case.team.state());
            }
            Ok(Outcome::Needs(Need::Turn { pool })) => {
                needs.push(format!("turn {pool}"));
                let state = team.as_mut().ok_or("a turn asked for before the team")?;
                state.turn = Some((pool, case.team.turn));
            }
            other => break other,
        }
        if needs.len() > 4 {
            return Err(format!("keeps asking: {needs:?}"));
        }
    };

    let expect = &case.expect;
    let decision = match outcome {
        Err(refusal) => {
            let got = match refusal {
                Refusal::UnknownLead => "unknown_lead",
                Refusal::Rejected(_) => "rejected",
                Refusal::FromTheFuture { .. } => "future",
                Refusal::NotYours { .. } => "not_yours",
                Refusal::CannotAssign(_) => "cannot_assign",
            };
            return match expect.get("refused").and_then(text) {
                Some(want) if want == got => Ok(()),
                _ => Err(format!("refused ({refusal}), expected {expect:?}")),
            };
        }
        Ok(Outcome::Unchanged) => {
            return if expect.get("unchanged").and_then(Value::as_bool) == Some(true) {
                Ok(())
            } else {
                Err("unchanged".to_owned())
            };
        }
        Ok(Outcome::Decided(d)) => *d,
        Ok(Outcome::Needs(_)) => unreachable!("answered above"),
    };
    let next = &decision.lead;
    let mut errors = Vec::new();
    let mut check = |what: &str, got: String, want: String| {
        if got != want {
            errors.push(format!("{what}: got {got}, expected {want}"));
        }
    };
    for (key, want) in expect {
        match key.as_str() {
            "needs" => check(key, format!("{needs:?}"), format!("{:?}", strings(want))),
            "status" => check(key, next.status.to_string(), text(want).unwrap_or_default()),
            "owner" => check(key, format!("{:?}", next.owner), format!("{:?}", text(want))),
            "previous_owner" => check(key, format!("{:?}", next.previous_owner), format!("{:?}", text(want))),
            "tier" => check(key, next.tier.clone(), text(want).unwrap_or_default()),
            "score" => check(key, next.score.to_string(), minutes(want).to_string()),
            "version" => check(key, next.version.to_string(), minutes(want).to_string()),
            "escalations" => check(key, decision.effect.escalations.to_string(), minutes(want).to_string()),
            "last_activity" => check(key, next.last_activity_at.to_string(), at(minutes(want)).to_string()),
            "created" => check(key, next.created_at.to_string(), at(minutes(want)).to_string()),
            "held" => check(key, next.held.to_string(), want.as_bool().unwrap_or_default().to_string()),
            "due" => {
                check(key, format!("{:?}", next.sla_due), format!("{:?}", (!want.is_null()).then(|| at(minutes(want)))))
            }
            "hygiene_at" => check(key, format!("{:?}", next.hygiene_at), format!("{:?}", Some(at(minutes(want))))),
            "counted" => {
                let want: BTreeMap<String, u32> = serde_yaml::from_value(want.clone()).map_err(|e| e.to_string())?;
                check(key, format!("{:?}", next.events), format!("{want:?}"));
            }
            "clock" => {
                let got = next.sla.map(|c| (c.handed_off_at, c.deadline));
                let want =
                    (!want.is_null()).then(|| (at(minutes(&want["handed_off_at"])), at(minutes(&want["deadline"]))));
                check(key, format!("{got:?}"), format!("{want:?}"));
            }
            "load" => {
                let got: Vec<String> = decision
                    .team
                    .load
                    .iter()
                    .map(|l| match l.capacity {
                        Some(c) => format!("{} {:+} of {c}", l.rep, l.delta),
                        None => format!("{} {:+}", l.rep, l.delta),
                    })
                    .collect();
                check(key, format!("{got:?}"), format!("{:?}", strings(want)));
            }
            "skip" => {
                let want = strings(want);
                let got = decision.team.skip.as_ref().map(|(p, n)| vec![p.clone(), n.to_string()]);
                check(key, format!("{got:?}"), format!("{:?}", Some(want)));
            }
            "records" => {
                let got: Vec<String> = decision
                    .history
                    .iter()
                    .map(|h| {
                        serde_json::to_value(&h.record).expect("record")["record"].as_str().unwrap_or("").to_owned()
                    })
                    .collect();
                check(key, format!("{got:?}"), format!("{:?}", strings(want)));
            }
            "by" => {
                let got: Vec<String> = decision
                    .history
                    .iter()
                    .filter_map(|h| match &h.record {
                        Record::Event { by, .. } => by.clone(),
                        _ => None,
                    })
                    .collect();
                check(key, format!("{got:?}"), format!("{:?}", strings(want)));
            }
            "why" => {
                let got: Vec<String> = decision
                    .history
                    .iter()
                    .filter_map(|h| match &h.record {
                        Record::Reassignment { why, .. } => Some(why.clone()),
                        _ => None,
                    })
                    .collect();
                check(key, format!("{got:?}"), format!("{:?}", strings(want)));
            }
            "notifications" => {
                let got: Vec<String> = decision
                    .outbox
                    .iter()
                    .map(|p| format!("{} {}", p.notification.kind.as_str(), p.notification.to.join(" ")))
                    .collect();
                check(key, format!("{got:?}"), format!("{:?}", strings(want)));
            }
            other => check("expectation", format!("`{other}`"), "a known key".to_owned()),
        }
    }
    // Whatever the case, a decision is whole: the next version, history for it,
    // and a lead that passes every invariant.
    if next.version != decision.expected_version + 1 {
        errors.push(format!("version {} after {}", next.version, decision.expected_version));
    }
    if decision.history.is_empty() || decision.history.iter().any(|h| h.version() != Some(next.version)) {
        errors.push("every decision writes history for its version".to_owned());
    }
    if decision.history.iter().any(|h| h.rules.as_deref() != Some(rules.version.as_str())) {
        errors.push("every record of a decision names the rules version".to_owned());
    }
    let broken = problems(&rules, next);
    if !broken.is_empty() {
        errors.push(format!("invariants: {broken:?}"));
    }
    if errors.is_empty() { Ok(()) } else { Err(errors.join("; ")) }
}
