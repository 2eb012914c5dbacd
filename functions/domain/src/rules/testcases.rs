//! Rule tests (`rules/tests/*.yaml`): sample leads and what the rules must
//! decide for them.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::diag::suggest;
use super::input::EventTypes;
use super::routing::TargetName;
use super::{Diagnostic, Explanation, RuleSet};
use crate::rules::yaml::MAX_FILE_BYTES;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    name: String,
    lead: Value,
    #[serde(default)]
    events: Option<Value>,
    #[serde(default)]
    idle_days: Option<Value>,
    #[serde(default)]
    expect: Expect,
}

/// What a case expects; every key may be left out.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub score: Option<i64>,
    pub tier: Option<String>,
    /// Exactly the fit rules that matched, in any order.
    pub fit: Option<Vec<String>>,
    pub route: Option<ExpectRoute>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectRoute {
    pub rule: Option<String>,
    pub pool: Option<String>,
    pub rep: Option<String>,
}

/// An expected value that differs from what the rules decided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    pub what: &'static str,
    pub expected: String,
    pub actual: String,
}

/// The result of one case.
#[derive(Clone, Debug, Serialize)]
pub struct CaseOutcome {
    pub file: String,
    pub name: String,
    /// The case itself is invalid (an unknown field, an unknown rule name).
    pub errors: Vec<String>,
    pub mismatches: Vec<Mismatch>,
    pub explanation: Option<Explanation>,
}

impl CaseOutcome {
    pub fn passed(&self) -> bool {
        self.errors.is_empty() && self.mismatches.is_empty()
    }
}

fn check_name(errors: &mut Vec<String>, what: &str, name: &str, known: &[&str]) {
    if !known.contains(&name) {
        let hint = suggest(name, known.iter().copied()).map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default();
        errors.push(format!("expect.{what}: `{name}` is not defined in the rules{hint}"));
    }
}

/// Runs every case of one test file. A file that does not parse is one
/// diagnostic; a case that is invalid fails with its errors.
pub fn run_file(rules: &RuleSet, file: &str, text: &str) -> Result<Vec<CaseOutcome>, Box<Diagnostic>> {
    let diag = |line: Option<usize>, column: Option<usize>, message: String| {
        Box::new(Diagnostic { file: file.to_owned(), path: String::new(), line, column, message, suggestion: None })
    };
    if text.len() > MAX_FILE_BYTES {
        return Err(diag(None, None, format!("file is larger than {MAX_FILE_BYTES} bytes")));
    }
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let cases: Vec<serde_yaml::Value> = serde_yaml::from_str(text).map_err(|e| {
        let (line, column) = e.location().map_or((None, None), |l| (Some(l.line()), Some(l.column())));
        diag(line, column, format!("invalid rule test file: {}", strip_location(&e.to_string())))
    })?;
    Ok(cases.into_iter().enumerate().map(|(i, c)| run_any(rules, file, i, c)).collect())
}

/// A case of any kind, by the key it has: `lead` (scoring and routing),
/// `capture`, `sla` or `lifecycle`.
fn run_any(rules: &RuleSet, file: &str, index: usize, case: serde_yaml::Value) -> CaseOutcome {
    use super::filetests;
    let name = case
        .get("name")
        .and_then(serde_yaml::Value::as_str)
        .map_or_else(|| format!("case {}", index + 1), str::to_owned);
    let invalid = |e: serde_yaml::Error| CaseOutcome {
        file: file.to_owned(),
        name: name.clone(),
        errors: vec![format!("invalid case: {e}")],
        mismatches: Vec::new(),
        explanation: None,
    };
    let has = |key: &str| case.get(key).is_some();
    if has("capture") {
        serde_yaml::from_value(case.clone()).map_or_else(invalid, |c| filetests::run_capture(rules, file, c))
    } else if has("sla") {
        serde_yaml::from_value(case.clone()).map_or_else(invalid, |c| filetests::run_sla(rules, file, c))
    } else if has("lifecycle") {
        serde_yaml::from_value(case.clone()).map_or_else(invalid, |c| filetests::run_lifecycle(rules, file, c))
    } else {
        serde_yaml::from_value(case.clone()).map_or_else(invalid, |c| run_case(rules, file, c))
    }
}

fn strip_location(message: &str) -> &str {
    message.split(" at line ").next().unwrap_or(message)
}

fn run_case(rules: &RuleSet, file: &str, case: RawCase) -> CaseOutcome {
    let mut errors = Vec::new();
    let fit_names: Vec<&str> = rules.scoring.fit.iter().map(|r| r.name.as_str()).collect();
    let tier_names: Vec<&str> = rules.scoring.tiers.iter().map(|t| t.name.as_str()).collect();
    let mut route_names: Vec<&str> = rules.routing.rules.iter().map(|r| r.name.as_str()).collect();
    route_names.push("default");
    let pool_names: Vec<&str> = rules.routing.pools.iter().map(|p| p.id.as_str()).collect();
    let rep_names: Vec<&str> = rules.routing.reps.iter().map(|r| r.id.as_str()).collect();
    let e = &case.expect;
    if let Some(t) = &e.tier {
        check_name(&mut errors, "tier", t, &tier_names);
    }
    for f in e.fit.iter().flatten() {
        check_name(&mut errors, "fit", f, &fit_names);
    }
    if let Some(r) = &e.route {
        if let Some(rule) = &r.rule {
            check_name(&mut errors, "route.rule", rule, &route_names);
        }
        if let Some(pool) = &r.pool {
            check_name(&mut errors, "route.pool", pool, &pool_names);
        }
        if let Some(rep) = &r.rep {
            check_name(&mut errors, "route.rep", rep, &rep_names);
        }
    }

    let value = json!({ "lead": case.lead, "events": case.events, "idle_days": case.idle_days });
    let input = match rules.lead_input(&value, EventTypes::Known) {
        Ok(i) => Some(i),
        Err(e) => {
            errors.extend(e.0);
            None
        }
    };
    let mut outcome =
        CaseOutcome { file: file.to_owned(), name: case.name, errors, mismatches: Vec::new(), explanation: None };
    let Some(input) = input else { return outcome };

    let mut scratch = Vec::new();
    let slots = input.events.slots_of(&rules.events, &mut scratch);
    let mut facts = rules.facts(&input.profile, slots, input.status, input.bant);
    let ex = rules.explain(&mut facts, input.idle_days);
    let m = &mut outcome.mismatches;
    if let Some(score) = e.score
        && score != ex.score.score
    {
        m.push(Mismatch { what: "score", expected: score.to_string(), actual: ex.score.score.to_string() });
    }
    if let Some(tier) = &e.tier
        && *tier != ex.score.tier
    {
        m.push(Mismatch { what: "tier", expected: tier.clone(), actual: ex.score.tier.clone() });
    }
    if let Some(fit) = &e.fit {
        let mut expected: Vec<&str> = fit.iter().map(String::as_str).collect();
        let mut actual: Vec<&str> = ex.score.fit.iter().map(|h| h.rule.as_str()).collect();
        expected.sort_unstable();
        actual.sort_unstable();
        if expected != actual {
            m.push(Mismatch {
                what: "fit",
                expected: format!("[{}]", expected.join(", ")),
                actual: format!("[{}]", actual.join(", ")),
            });
        }
    }
    if let Some(r) = &e.route {
        if let Some(rule) = &r.rule
            && *rule != ex.route.rule
        {
            m.push(Mismatch { what: "route.rule", expected: rule.clone(), actual: ex.route.rule.clone() });
        }
        let actual_target = match &ex.route.target {
            TargetName::Pool { pool } => format!("pool {pool}"),
            TargetName::Rep { rep } => format!("rep {rep}"),
        };
        if let Some(pool) = &r.pool
            && !matches!(&ex.route.target, TargetName::Pool { pool: p } if p == pool)
        {
            m.push(Mismatch { what: "route.pool", expected: format!("pool {pool}"), actual: actual_target.clone() });
        }
        if let Some(rep) = &r.rep
            && !matches!(&ex.route.target, TargetName::Rep { rep: x } if x == rep)
        {
            m.push(Mismatch { what: "route.rep", expected: format!("rep {rep}"), actual: actual_target });
        }
    }
    outcome.explanation = Some(ex);
    outcome
}
