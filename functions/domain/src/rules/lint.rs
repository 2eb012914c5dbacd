//! `leadflow rules lint`: what the rules say that no one meant, found by
//! reasoning about them rather than by running leads through them.
//!
//! Conditions are compared by their tests' shapes (numeric intervals and
//! sets, text sets and parts, booleans, tier and status sets); a test the lint
//! cannot reason about (`matches`, a `not`) is taken to hold for some leads and
//! imply nothing, so a finding is never a guess: a rule reported as shadowed is
//! shadowed.

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use serde::Serialize;

use super::RuleSet;
use super::condition::{Cond, Shape};

/// How serious a finding is, by the policy the README declares: an error is
/// a rule that cannot do what it says; a warning, one that will not for a while.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Error,
    Warning,
}

/// One finding, located.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub level: Level,
    /// What kind of finding (`shadowed`, `never_matches`, ...).
    pub kind: &'static str,
    pub file: &'static str,
    pub line: Option<usize>,
    /// The rule, tier, pool or setting it is about.
    pub rule: String,
    pub message: String,
}

/// Every finding about `rules`, as of `today` (pools are looked at over the
/// next `weeks` weeks).
pub fn lint(rules: &RuleSet, today: NaiveDate, weeks: u32) -> Vec<Finding> {
    let mut out = Vec::new();
    routing_rules(rules, &mut out);
    overlaps(rules, &mut out);
    gaps(rules, &mut out);
    fit_rules(rules, &mut out);
    tiers(rules, &mut out);
    pools(rules, today, weeks, &mut out);
    lifecycle(rules, &mut out);
    sla(rules, today, &mut out);
    out.sort_by(|a, b| (a.level, a.file, a.line).cmp(&(b.level, b.file, b.line)));
    out
}

fn routing_rules(rules: &RuleSet, out: &mut Vec<Finding>) {
    let routing = &rules.routing;
    for (j, later) in routing.rules.iter().enumerate() {
        if !satisfiable(&later.when) {
            out.push(Finding {
                level: Level::Error,
                kind: "never_matches",
                file: "routing.yaml",
                line: later.line,
                rule: later.name.clone(),
                message: "its conditions contradict each other: no lead can match it".to_owned(),
            });
            continue;
        }
        if let Some(earlier) = routing.rules[..j].iter().find(|e| implies(&later.when, &e.when)) {
            let same = earlier.to == later.to;
            out.push(Finding {
                level: Level::Error,
                kind: "shadowed",
                file: "routing.yaml",
                line: later.line,
                rule: later.name.clone(),
                message: format!(
                    "no lead reaches it: every lead it matches matches `{}` above it{}, which {}",
                    earlier.name,
                    earlier.line.map(|l| format!(" (line {l})")).unwrap_or_default(),
                    if same { "sends it to the same target" } else { "sends it elsewhere" }
                ),
            });
        }
    }
}

/// The tests of a condition that is one test or a conjunction of tests, all
/// of shapes the lint reasons about; `None` otherwise.
fn plain_tests(c: &Cond) -> Option<Vec<&super::condition::Test>> {
    match c {
        Cond::Test(t) if t.shape != Shape::Opaque => Some(vec![t]),
        Cond::All(cs) => {
            let mut out = Vec::new();
            for c in cs.iter() {
                out.extend(plain_tests(c)?);
            }
            Some(out)
        }
        _ => None,
    }
}

/// Two rules on the same fields, naming different targets, whose conditions
/// hold together for some leads while neither holds wherever the other does:
/// overlapping bands or sets (an exception written above a broader rule is
/// not one of these, nor are rules on different fields, which is how a
/// first-match list writes priorities).
fn overlaps(rules: &RuleSet, out: &mut Vec<Finding>) {
    let routing = &rules.routing;
    for (j, later) in routing.rules.iter().enumerate() {
        let Some(b) = plain_tests(&later.when) else { continue };
        for earlier in &routing.rules[..j] {
            let Some(a) = plain_tests(&earlier.when) else { continue };
            let fields = |ts: &[&super::condition::Test]| {
                let mut f: Vec<String> = ts.iter().filter_map(|t| field(&t.shape).map(str::to_owned)).collect();
                f.sort_unstable();
                f.dedup();
                f
            };
            if earlier.to == later.to
                || fields(&a) != fields(&b)
                || implies(&later.when, &earlier.when)
                || implies(&earlier.when, &later.when)
            {
                continue;
            }
            let both: Vec<Shape> = a.iter().chain(&b).map(|t| t.shape.clone()).collect();
            if empty(&both) {
                continue;
            }
            // Only an overlap some lead is really in: one whose values pass every test.
            let Some(example) = example(&a.iter().chain(&b).copied().collect::<Vec<_>>()) else { continue };
            out.push(Finding {
                level: Level::Warning,
                kind: "overlap",
                file: "routing.yaml",
                line: later.line,
                rule: later.name.clone(),
                message: format!(
                    "overlaps `{}` above it{} on the same fields, with another target: leads in both ({example}) go to `{}`'s",
                    earlier.name,
                    earlier.line.map(|l| format!(" (line {l})")).unwrap_or_default(),
                    earlier.name
                ),
            });
            break;
        }
    }
}

/// A lead (its values of the fields tested) that meets every test, as text;
/// `None` when none is found (numbers are whole, as every numeric field but
/// revenue holds them).
fn example(tests: &[&super::condition::Test]) -> Option<String> {
    let mut fields: Vec<(String, &str)> =
        tests.iter().filter_map(|t| Some((t.field_name(), field(&t.shape)?))).collect();
    fields.sort_unstable();
    fields.dedup();
    let mut parts = Vec::new();
    for (name, f) in fields {
        let on: Vec<&Shape> = tests.iter().map(|t| &t.shape).filter(|s| field(s) == Some(f)).collect();
        let numeric = on.iter().any(|s| matches!(s, Shape::Range { .. } | Shape::Numbers { .. }));
        let textual = on.iter().any(|s| matches!(s, Shape::Texts { .. } | Shape::Part { .. }));
        let value = if numeric {
            let candidates: Vec<f64> = match points(&on) {
                Some(p) => p,
                None => {
                    let first = pick(interval(&on))? as f64;
                    (0..64).map(|i| first + f64::from(i)).collect()
                }
            };
            let v = candidates.into_iter().find(|v| v.fract() == 0.0 && on.iter().all(|s| allows_number(s, *v)))?;
            format!("{}", v + 0.0)
        } else if textual {
            let candidates: Vec<String> = match texts(&on) {
                Some(t) => t,
                None => on
                    .iter()
                    .filter_map(|s| if let Shape::Part { part, .. } = s { Some(part.clone()) } else { None })
                    .collect(),
            };
            candidates.into_iter().find(|t| on.iter().all(|s| allows_text(s, t)))?
        } else {
            match on.first() {
                Some(Shape::Bool { value, .. }) if on.iter().all(|s| *s == on[0]) => value.to_string(),
                _ => return None,
            }
        };
        parts.push(format!("{name} {value}"));
    }
    Some(parts.join(", "))
}

/// A whole number inside an interval, if there is one.
fn pick((lo, lo_in, hi, hi_in): (f64, bool, f64, bool)) -> Option<i64> {
    let first = if lo.is_finite() {
        if lo_in { lo.ceil() } else { lo.floor() + 1.0 }
    } else if hi.is_finite() {
        hi.floor() - 1.0
    } else {
        0.0
    };
    (above(first, lo, lo_in) && below(first, hi, hi_in)).then_some(first as i64)
}

/// Whole-number gaps between routing rules that each test one numeric field
/// only (bands of `employees`, say): values no band takes, which fall to a
/// later rule or the default.
fn gaps(rules: &RuleSet, out: &mut Vec<Finding>) {
    let routing = &rules.routing;
    let mut bands: std::collections::BTreeMap<String, Vec<Band<'_>>> = std::collections::BTreeMap::new();
    for rule in &routing.rules {
        let Some(tests) = plain_tests(&rule.when) else { continue };
        let Some(f) = tests.first().and_then(|t| field(&t.shape)) else { continue };
        if !tests.iter().all(|t| field(&t.shape) == Some(f) && matches!(t.shape, Shape::Range { .. })) {
            continue;
        }
        let on: Vec<&Shape> = tests.iter().map(|t| &t.shape).collect();
        let (lo, lo_in, hi, hi_in) = interval(&on);
        let band = Band {
            key: f.to_owned(),
            lo,
            lo_in,
            hi,
            hi_in,
            rule: &rule.name,
            line: rule.line,
            field: tests[0].field_name(),
        };
        bands.entry(f.to_owned()).or_default().push(band);
    }
    for (_, mut list) in bands {
        if list.len() < 2 {
            continue;
        }
        list.sort_by(|a, b| a.lo.total_cmp(&b.lo).then(b.lo_in.cmp(&a.lo_in)));
        // Walk the bands upwards: the first whole number no band covers, between two bands.
        let mut reach = (list[0].hi, list[0].hi_in);
        for pair in list.windows(2) {
            let next = &pair[1];
            let from = if reach.1 { reach.0.floor() + 1.0 } else { reach.0.ceil() };
            // Taken by no rule that tests only this field (bands in any order included).
            let taken = routing.rules.iter().any(|r| {
                plain_tests(&r.when).is_some_and(|ts| {
                    ts.iter().all(|t| field(&t.shape) == Some(next_field(&list)) && allows_number(&t.shape, from))
                })
            });
            if reach.0.is_finite() && !above(from, next.lo, next.lo_in) && !taken {
                out.push(Finding {
                    level: Level::Warning,
                    kind: "gap",
                    file: "routing.yaml",
                    line: next.line,
                    rule: next.rule.to_owned(),
                    message: format!(
                        "a lead with {} {} is in no band: it falls between `{}` and `{}` to the rules below them or the default",
                        next.field,
                        from + 0.0,
                        pair[0].rule,
                        next.rule
                    ),
                });
            }
            if next.hi > reach.0 || (next.hi == reach.0 && next.hi_in) {
                reach = (next.hi, next.hi_in);
            }
        }
    }
}

/// The field identity of a list of bands (all on one field).
fn next_field<'a>(list: &'a [Band<'_>]) -> &'a str {
    list.first().map_or("", |b| b.key.as_str())
}

/// A routing rule that tests one numeric field only: its interval.
struct Band<'r> {
    /// The field's identity in shapes.
    key: String,
    lo: f64,
    lo_in: bool,
    hi: f64,
    hi_in: bool,
    rule: &'r str,
    line: Option<usize>,
    field: String,
}

fn fit_rules(rules: &RuleSet, out: &mut Vec<Finding>) {
    for rule in &rules.scoring.fit {
        if !satisfiable(&rule.when) {
            out.push(Finding {
                level: Level::Error,
                kind: "never_matches",
                file: "scoring.yaml",
                line: rule.line,
                rule: rule.name.clone(),
                message: format!(
                    "its conditions contradict each other: no lead can match it, so its {} points never count",
                    rule.points
                ),
            });
        }
    }
}

/// The highest and lowest score any lead could have (`None`: unbounded).
fn score_range(rules: &RuleSet) -> (Option<i64>, Option<i64>) {
    let s = &rules.scoring;
    let fit_max: i64 = s.fit.iter().filter(|r| r.points > 0 && satisfiable(&r.when)).map(|r| r.points).sum();
    let fit_min: i64 = s.fit.iter().filter(|r| r.points < 0 && satisfiable(&r.when)).map(|r| r.points).sum();
    let (fit_max, fit_min) = (s.limits_fit.clamp(fit_max), s.limits_fit.clamp(fit_min));
    let bound = |positive: bool| -> Option<i64> {
        let mut sum = 0i64;
        for e in s.engagement.iter().filter(|e| (e.points > 0) == positive && e.points != 0) {
            sum += e.max_points?.abs() * e.points.signum();
        }
        Some(sum)
    };
    let eng_max = bound(true).map(|m| s.limits_engagement.clamp(m)).or(s.limits_engagement.max);
    let eng_min = bound(false).map(|m| s.limits_engagement.clamp(m)).or(s.limits_engagement.min);
    let hi = eng_max.map(|e| s.limits_total.clamp(fit_max + e)).or(s.limits_total.max);
    let lo = eng_min.map(|e| s.limits_total.clamp(fit_min + e.min(0))).or(s.limits_total.min);
    (hi, lo)
}

fn tiers(rules: &RuleSet, out: &mut Vec<Finding>) {
    let (hi, lo) = score_range(rules);
    let tiers = &rules.scoring.tiers;
    for (i, tier) in tiers.iter().enumerate() {
        let above_all = hi.is_some_and(|h| tier.threshold > h);
        // Every score at or above the next tier's threshold: this one is skipped.
        let below_all = tiers.get(i + 1).is_some_and(|next| lo.is_some_and(|l| next.threshold <= l));
        if above_all || below_all {
            out.push(Finding {
                level: Level::Error,
                kind: "unreachable_tier",
                file: "scoring.yaml",
                line: None,
                rule: tier.name.clone(),
                message: if above_all {
                    format!(
                        "no score reaches {}: the highest a lead can score is {}",
                        tier.threshold,
                        hi.unwrap_or_default()
                    )
                } else {
                    format!("every lead scores at least {}, above this tier", lo.unwrap_or_default())
                },
            });
        }
    }
}

fn pools(rules: &RuleSet, today: NaiveDate, weeks: u32, out: &mut Vec<Finding>) {
    let routing = &rules.routing;
    let days: Vec<NaiveDate> = (0..i64::from(weeks) * 7).map(|d| today + Duration::days(d)).collect();
    for pool in &routing.pools {
        let members: Vec<&super::routing::Rep> = pool.members.iter().map(|m| &routing.reps[*m]).collect();
        let nobody = |day: &NaiveDate| members.iter().all(|r| !r.active || r.is_away(*day));
        if members.iter().all(|r| !r.active) {
            out.push(Finding {
                level: Level::Warning,
                kind: "pool_unavailable",
                file: "routing.yaml",
                line: None,
                rule: pool.id.clone(),
                message: "every member is inactive: its leads go to its overflow, or wait unassigned".to_owned(),
            });
        } else if let Some(first) = days.iter().position(nobody) {
            let last = days[first..].iter().take_while(|d| nobody(d)).count() + first - 1;
            out.push(Finding {
                level: Level::Warning,
                kind: "pool_unavailable",
                file: "routing.yaml",
                line: None,
                rule: pool.id.clone(),
                message: format!(
                    "every member is away or inactive from {} to {}: its leads go to its overflow, or wait unassigned",
                    days[first], days[last]
                ),
            });
        }
    }
}

fn lifecycle(rules: &RuleSet, out: &mut Vec<Finding>) {
    let l = &rules.lifecycle;
    if l.qualification_required > 4 {
        out.push(Finding {
            level: Level::Error,
            kind: "dead_end",
            file: "lifecycle.yaml",
            line: None,
            rule: "qualification".to_owned(),
            message: format!(
                "{} BANT criteria are required, of four: no lead can be qualified",
                l.qualification_required
            ),
        });
    }
    let goes_dormant = l.dormancy.after_days_idle.is_some() || l.dormancy.after_unanswered.is_some();
    if goes_dormant && !l.dormancy.statuses.is_empty() && l.reactivation_events.is_empty() {
        out.push(Finding {
            level: Level::Warning,
            kind: "dead_end",
            file: "lifecycle.yaml",
            line: None,
            rule: "reactivation".to_owned(),
            message: "leads go dormant but no event wakes them: a dormant lead never leaves dormancy".to_owned(),
        });
    }
}

fn sla(rules: &RuleSet, today: NaiveDate, out: &mut Vec<Finding>) {
    let Some(idle_days) = rules.lifecycle.dormancy.after_days_idle else { return };
    for (tier, name) in rules.scoring.tiers.iter().map(|t| &t.name).enumerate() {
        // The latest deadline of a hand-off at noon UTC on each day of a week,
        // so the finding does not depend on the weekday the lint runs.
        let latest = (0..7)
            .filter_map(|d| (today + Duration::days(d)).and_hms_opt(12, 0, 0).map(|t| Utc.from_utc_datetime(&t)))
            .filter_map(|start| Some((start, rules.sla.deadline(tier, start)?)))
            .max_by_key(|(start, deadline)| *deadline - *start);
        let Some((start, deadline)) = latest else { continue };
        if deadline - start > Duration::days(i64::from(idle_days)) {
            out.push(Finding {
                level: Level::Error,
                kind: "sla_unmeetable",
                file: "sla.yaml",
                line: None,
                rule: format!("first_response.{name}"),
                message: format!(
                    "a {name} lead handed off on {} is due {}, after {idle_days} idle days make it dormant",
                    start.format("%Y-%m-%d %H:%M UTC"),
                    deadline.format("%Y-%m-%d %H:%M UTC")
                ),
            });
        }
    }
}

/// Whether some lead could meet `c`.
pub fn satisfiable(c: &Cond) -> bool {
    match c {
        Cond::Always | Cond::Not(_) => true,
        Cond::Any(cs) => cs.iter().any(satisfiable),
        Cond::Test(t) => !empty(std::slice::from_ref(&t.shape)),
        Cond::All(cs) => {
            let shapes: Vec<Shape> = tests(cs).into_iter().cloned().collect();
            cs.iter().all(satisfiable) && !empty(&shapes)
        }
    }
}

/// The shapes of the tests directly in a conjunction.
fn tests(cs: &[Cond]) -> Vec<&Shape> {
    let mut out = Vec::new();
    for c in cs {
        match c {
            Cond::Test(t) => out.push(&t.shape),
            Cond::All(inner) => out.extend(tests(inner)),
            _ => {}
        }
    }
    out
}

/// Whether every lead meeting `a` meets `b`.
pub fn implies(a: &Cond, b: &Cond) -> bool {
    match (a, b) {
        (_, Cond::Always) => true,
        (Cond::Always, _) => false,
        (_, Cond::All(bs)) => bs.iter().all(|b| implies(a, b)),
        (Cond::Any(as_), _) => as_.iter().all(|a| implies(a, b)),
        (_, Cond::Any(bs)) => bs.iter().any(|b| implies(a, b)),
        (Cond::All(as_), Cond::Test(t)) => as_.iter().any(|a| implies(a, b)) || narrows(&tests(as_), &t.shape),
        (Cond::Test(x), Cond::Test(y)) => narrows(&[&x.shape], &y.shape),
        _ => false,
    }
}

fn field(s: &Shape) -> Option<&str> {
    match s {
        Shape::Opaque => None,
        Shape::Range { field, .. }
        | Shape::Numbers { field, .. }
        | Shape::Texts { field, .. }
        | Shape::Part { field, .. }
        | Shape::Bool { field, .. }
        | Shape::Mask { field, .. } => Some(field),
    }
}

/// Whether tests `a`, all holding, make `b` hold.
fn narrows(a: &[&Shape], b: &Shape) -> bool {
    let Some(f) = field(b) else { return false };
    let on: Vec<&Shape> = a.iter().copied().filter(|s| field(s) == Some(f)).collect();
    if on.is_empty() {
        return false;
    }
    if on.contains(&b) {
        return true;
    }
    match b {
        Shape::Range { lo, lo_in, hi, hi_in, .. } => {
            let inside = |v: f64| above(v, *lo, *lo_in) && below(v, *hi, *hi_in);
            if let Some(points) = points(&on) {
                return points.iter().all(|v| inside(*v));
            }
            let (l, li, h, hi2) = interval(&on);
            (l > *lo || (l == *lo && (*lo_in || !li))) && (h < *hi || (h == *hi && (*hi_in || !hi2)))
        }
        Shape::Numbers { values, not: false, .. } => points(&on).is_some_and(|p| p.iter().all(|v| values.contains(v))),
        Shape::Numbers { values, not: true, .. } => match points(&on) {
            Some(p) => p.iter().all(|v| !values.contains(v)),
            None => {
                let (l, li, h, hi2) = interval(&on);
                values.iter().all(|v| !(above(*v, l, li) && below(*v, h, hi2)))
            }
        },
        Shape::Texts { values, not, .. } => {
            match texts(&on) {
                Some(set) => set.iter().all(|t| values.contains(t) != *not),
                None => *not && on.iter().any(
                    |s| matches!(s, Shape::Texts { values: v, not: true, .. } if values.iter().all(|x| v.contains(x))),
                ),
            }
        }
        Shape::Part { how, part, .. } => match texts(&on) {
            Some(set) => set.iter().all(|t| has_part(t, how, part)),
            None => on.iter().any(|s| match s {
                Shape::Part { how: h2, part: p2, .. } => (how == h2 || *how == "contains") && has_part(p2, how, part),
                _ => false,
            }),
        },
        Shape::Bool { value, .. } => on.iter().any(|s| matches!(s, Shape::Bool { value: v, .. } if v == value)),
        Shape::Mask { mask, .. } => {
            let have = on.iter().fold(u64::MAX, |m, s| if let Shape::Mask { mask, .. } = s { m & mask } else { m });
            have & !mask == 0
        }
        Shape::Opaque => false,
    }
}

fn has_part(text: &str, how: &str, part: &str) -> bool {
    let text = text.to_lowercase();
    match how {
        "starts_with" => text.starts_with(part),
        "ends_with" => text.ends_with(part),
        _ => text.contains(part),
    }
}

fn above(v: f64, lo: f64, inclusive: bool) -> bool {
    v > lo || (inclusive && v == lo)
}

fn below(v: f64, hi: f64, inclusive: bool) -> bool {
    v < hi || (inclusive && v == hi)
}

/// The interval the numeric ranges among `on` leave: low, low included, high, high included.
fn interval(on: &[&Shape]) -> (f64, bool, f64, bool) {
    let (mut l, mut li, mut h, mut hi) = (f64::NEG_INFINITY, false, f64::INFINITY, false);
    for s in on {
        if let Shape::Range { lo, lo_in, hi: h2, hi_in, .. } = s {
            if *lo > l || (*lo == l && !lo_in) {
                (l, li) = (*lo, *lo_in);
            }
            if *h2 < h || (*h2 == h && !hi_in) {
                (h, hi) = (*h2, *hi_in);
            }
        }
    }
    (l, li, h, hi)
}

/// The numbers a value can be, when some test lists them (and the others allow).
fn points(on: &[&Shape]) -> Option<Vec<f64>> {
    let listed = on.iter().find_map(|s| match s {
        Shape::Numbers { values, not: false, .. } => Some(values.clone()),
        _ => None,
    })?;
    Some(listed.into_iter().filter(|v| on.iter().all(|s| allows_number(s, *v))).collect())
}

fn allows_number(s: &Shape, v: f64) -> bool {
    match s {
        Shape::Range { lo, lo_in, hi, hi_in, .. } => above(v, *lo, *lo_in) && below(v, *hi, *hi_in),
        Shape::Numbers { values, not, .. } => values.contains(&v) != *not,
        _ => true,
    }
}

/// The texts a value can be, when some test lists them (and the others allow).
fn texts(on: &[&Shape]) -> Option<Vec<String>> {
    let listed = on.iter().find_map(|s| match s {
        Shape::Texts { values, not: false, .. } => Some(values.clone()),
        _ => None,
    })?;
    Some(listed.into_iter().filter(|t| on.iter().all(|s| allows_text(s, t))).collect())
}

fn allows_text(s: &Shape, t: &str) -> bool {
    match s {
        Shape::Texts { values, not, .. } => values.iter().any(|v| v == t) != *not,
        Shape::Part { how, part, .. } => has_part(t, how, part),
        _ => true,
    }
}

/// Whether tests that all hold can hold together for no lead.
fn empty(shapes: &[Shape]) -> bool {
    let mut fields: Vec<&str> = shapes.iter().filter_map(field).collect();
    fields.sort_unstable();
    fields.dedup();
    fields.into_iter().any(|f| {
        let on: Vec<&Shape> = shapes.iter().filter(|s| field(s) == Some(f)).collect();
        if let Some(p) = points(&on) {
            return p.is_empty();
        }
        if let Some(t) = texts(&on) {
            return t.is_empty();
        }
        let (l, li, h, hi) = interval(&on);
        if l > h || (l == h && !(li && hi)) {
            return true;
        }
        let bools: Vec<bool> =
            on.iter().filter_map(|s| if let Shape::Bool { value, .. } = s { Some(*value) } else { None }).collect();
        if bools.windows(2).any(|w| w[0] != w[1]) {
            return true;
        }
        let masks: Vec<u64> =
            on.iter().filter_map(|s| if let Shape::Mask { mask, .. } = s { Some(*mask) } else { None }).collect();
        !masks.is_empty() && masks.iter().fold(u64::MAX, |m, x| m & x) == 0
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{RULE_FILES, RuleSources};

    /// The starter rules with routing.yaml's `rules:` replaced.
    fn with_routing_rules(rules_yaml: &str) -> RuleSet {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules");
        let sources = RuleSources::from_dir(&dir).expect("starter rules");
        let routing = sources.get("routing.yaml").expect("routing.yaml");
        let (start, end) = (routing.find("\nrules:\n").expect("rules"), routing.find("\ndefault:").expect("default"));
        let routing = format!("{}\nrules:\n{rules_yaml}{}", &routing[..start], &routing[end..]);
        let texts: Vec<(&str, String)> = RULE_FILES
            .iter()
            .map(|f| (*f, if *f == "routing.yaml" { routing.clone() } else { sources.get(f).unwrap_or("").to_owned() }))
            .collect();
        RuleSet::load(&RuleSources::from_texts(texts.iter().map(|(f, t)| (*f, t.as_str())))).expect("valid rules")
    }

    /// The rules found shadowed, and those that never match.
    fn found(rules_yaml: &str) -> (Vec<String>, Vec<String>) {
        let rules = with_routing_rules(rules_yaml);
        let today = NaiveDate::from_ymd_opt(2026, 6, 1).expect("date");
        let findings = lint(&rules, today, 1);
        let of = |kind: &str| findings.iter().filter(|f| f.kind == kind).map(|f| f.rule.clone()).collect();
        (of("shadowed"), of("never_matches"))
    }

    #[test]
    fn a_rule_inside_an_earlier_numeric_interval_is_shadowed_and_a_wider_one_is_not() {
        let (shadowed, _) = found(
            "  - { name: big, when: { employees: { gte: 1000 } }, to: { pool: enterprise } }
  - { name: bigger, when: { employees: { between: [2000, 3000] } }, to: { pool: emea } }
  - { name: exactly, when: { employees: [1500, 4000] }, to: { pool: emea } }
  - { name: wider, when: { employees: { gte: 500 } }, to: { pool: emea } }
  - { name: both-ends, when: { employees: { gt: 999 }, all: [{ employees: { lte: 999 } }] }, to: { pool: emea } }
",
        );
        assert_eq!(shadowed, ["bigger", "exactly"]);
    }

    #[test]
    fn text_sets_parts_and_booleans_shadow_only_when_implied() {
        let (shadowed, _) = found(
            "  - { name: software, when: { industry: [software, saas] }, to: { pool: enterprise } }
  - { name: saas-only, when: { industry: SaaS, country: [DE] }, to: { pool: emea } }
  - { name: software-or-retail, when: { industry: [software, retail] }, to: { pool: emea } }
  - { name: vps, when: { job_title: { contains: vp } }, to: { pool: enterprise } }
  - { name: vp-of, when: { job_title: { starts_with: VP of } }, to: { pool: emea } }
  - { name: v-anything, when: { job_title: { contains: v } }, to: { pool: emea } }
  - { name: free, when: { free_email: true }, to: { pool: inbound } }
  - { name: free-in-de, when: { free_email: true, country: DE }, to: { pool: emea } }
  - { name: business, when: { free_email: false }, to: { pool: emea } }
  - { name: regex, when: { job_title: { matches: '^CEO$' } }, to: { pool: enterprise } }
  - { name: regex-again, when: { job_title: { matches: '^CEO$' } }, to: { pool: emea } }
",
        );
        // A regex is not reasoned about: the lint claims nothing it cannot prove.
        assert_eq!(shadowed, ["saas-only", "vp-of", "free-in-de"]);
    }

    #[test]
    fn any_and_all_are_followed() {
        let (shadowed, _) = found(
            "  - { name: na-or-eu, when: { any: [{ country: [US, CA] }, { country: [DE, FR] }] }, to: { pool: inbound } }
  - { name: canada, when: { country: CA }, to: { pool: emea } }
  - { name: germany-big, when: { all: [{ country: DE }, { employees: { gte: 10 } }] }, to: { pool: emea } }
  - { name: japan, when: { country: JP }, to: { pool: emea } }
",
        );
        assert_eq!(shadowed, ["canada", "germany-big"]);
    }

    #[test]
    fn contradictions_are_found() {
        let (_, never) = found(
            "  - { name: de-and-fr, when: { country: DE, all: [{ country: FR }] }, to: { pool: emea } }
  - { name: free-and-not, when: { free_email: true, all: [{ free_email: false }] }, to: { pool: emea } }
  - { name: small-and-big, when: { employees: { lt: 10 }, all: [{ employees: { gt: 100 } }] }, to: { pool: emea } }
  - { name: fine, when: { employees: { gte: 10 }, all: [{ employees: { lte: 10 } }] }, to: { pool: emea } }
  - { name: listed-outside, when: { employees: [5, 7], all: [{ employees: { gt: 8 } }] }, to: { pool: emea } }
",
        );
        assert_eq!(never, ["de-and-fr", "free-and-not", "small-and-big", "listed-outside"]);
    }

    fn kinds(rules_yaml: &str, kind: &str) -> Vec<String> {
        let rules = with_routing_rules(rules_yaml);
        let today = NaiveDate::from_ymd_opt(2026, 6, 1).expect("date");
        lint(&rules, today, 1)
            .into_iter()
            .filter(|f| f.kind == kind)
            .map(|f| format!("{}: {}", f.rule, f.message))
            .collect()
    }

    #[test]
    fn bands_on_the_same_field_that_overlap_are_found_but_an_exception_above_a_broad_rule_is_not() {
        let found = kinds(
            "  - { name: enterprise-band, when: { employees: { gte: 1000 } }, to: { pool: enterprise } }
  - { name: mid-band, when: { employees: { between: [500, 2000] } }, to: { pool: emea } }
  - { name: special, when: { country: [DE], employees: { between: [10, 20] } }, to: { pool: emea } }
  - { name: broad, when: { country: [DE, FR], employees: { gte: 5 } }, to: { pool: inbound } }
  - { name: other-fields, when: { industry: [software] }, to: { pool: inbound } }
",
            "overlap",
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("mid-band: overlaps `enterprise-band`"), "{found:?}");
        assert!(found[0].contains("(employees 1000)"), "{found:?}");
    }

    #[test]
    fn a_whole_number_no_band_takes_is_a_gap() {
        let found = kinds(
            "  - { name: small, when: { employees: { lt: 200 } }, to: { pool: inbound } }
  - { name: mid, when: { employees: { between: [201, 999] } }, to: { pool: emea } }
  - { name: large, when: { employees: { gte: 1000 } }, to: { pool: enterprise } }
",
            "gap",
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("mid: a lead with employees 200 is in no band"), "{found:?}");
        let tiled = kinds(
            "  - { name: small, when: { employees: { lt: 200 } }, to: { pool: inbound } }
  - { name: mid, when: { employees: { gte: 200 }, all: [{ employees: { lt: 1000 } }] }, to: { pool: emea } }
  - { name: large, when: { employees: { gte: 1000 } }, to: { pool: enterprise } }
",
            "gap",
        );
        assert_eq!(tiled, Vec::<String>::new());
    }

    #[test]
    fn what_the_lint_cannot_prove_it_does_not_claim() {
        // Unicode case folding is not lower-casing: İ does not fold to i.
        let (shadowed, never) = found(
            "  - { name: has-i, when: { job_title: { contains: i } }, to: { pool: enterprise } }
  - { name: istanbul, when: { job_title: İstanbul }, to: { pool: emea } }
  - { name: final-sigma, when: { job_title: ας, all: [{ job_title: { ends_with: σ } }] }, to: { pool: emea } }
",
        );
        assert_eq!((shadowed, never), (Vec::<String>::new(), Vec::<String>::new()));
        // 5 is taken by a band whatever the order; between 10 and 11 there is no whole number.
        assert_eq!(
            kinds(
                "  - { name: small, when: { employees: { lt: 5 } }, to: { pool: inbound } }
  - { name: above5, when: { employees: { gt: 5 } }, to: { pool: emea } }
  - { name: from5, when: { employees: { gte: 5 } }, to: { pool: enterprise } }
",
                "gap"
            ),
            Vec::<String>::new()
        );
        assert_eq!(
            kinds(
                "  - { name: up-to-10, when: { employees: { lt: 11 } }, to: { pool: inbound } }
  - { name: over-10, when: { employees: { gt: 10 } }, to: { pool: emea } }
  - { name: mid, when: { employees: { between: [8, 20], not_in: [8, 9, 10] } }, to: { pool: enterprise } }
",
                "overlap"
            ),
            // Not up-to-10 and over-10 (no whole number in both), nor mid and up-to-10
            // (the whole numbers they share are excluded); mid and over-10 share 11.
            vec!["mid: overlaps `over-10` above it (line 40) on the same fields, with another target: leads in both (employees 11) go to `over-10`'s".to_owned()]
        );
    }

    #[test]
    fn the_starter_rules_have_no_finding() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules");
        let rules = RuleSet::load_dir(&dir).expect("starter rules");
        for (y, m, d) in [(2026, 1, 5), (2026, 12, 1), (2026, 12, 21)] {
            let today = NaiveDate::from_ymd_opt(y, m, d).expect("date");
            assert_eq!(lint(&rules, today, 4), Vec::new(), "{today}");
        }
    }
}
