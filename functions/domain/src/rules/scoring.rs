//! `scoring.yaml`: fit and engagement points, caps, limits, decay, tiers and the
//! hand-off tier.

use marked_yaml::Node;
use serde::Serialize;

use super::condition::{self, Cond};
use super::field::{EventVocabulary, Facts, Scope, valid_event_name};
use super::yaml::{Doc, child, item, optional};

/// Points for one event type.
#[derive(Clone, Debug)]
pub struct Engagement {
    pub event: String,
    pub slot: u16,
    pub points: i64,
    /// The most points (in magnitude) this type can contribute.
    pub max_points: Option<i64>,
}

#[derive(Clone, Debug)]
pub struct FitRule {
    pub name: String,
    pub when: Cond,
    pub points: i64,
    /// Where the rule starts in scoring.yaml.
    pub line: Option<usize>,
}

/// An optional lower and upper bound.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Bounds {
    pub min: Option<i64>,
    pub max: Option<i64>,
}

impl Bounds {
    pub fn clamp(&self, v: i64) -> i64 {
        let v = self.min.map_or(v, |m| v.max(m));
        self.max.map_or(v, |m| v.min(m))
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decay {
    pub after_days: u32,
    pub percent_per_week: f64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tier {
    pub name: String,
    /// The lowest score of the tier.
    pub threshold: i64,
}

#[derive(Clone, Debug)]
pub struct Scoring {
    pub fit: Vec<FitRule>,
    pub engagement: Vec<Engagement>,
    pub limits_fit: Bounds,
    pub limits_engagement: Bounds,
    pub limits_total: Bounds,
    pub decay: Option<Decay>,
    /// Lowest threshold first.
    pub tiers: Vec<Tier>,
    /// Index into `tiers`: leads at or above it go to sales.
    pub handoff: usize,
    /// When no count can make an engagement term's points, or their sum,
    /// leave the integers (see [`engagement_is_exact`]): the terms, added
    /// with no saturating arithmetic.
    exact_terms: Option<ExactTerms>,
}

/// Engagement terms as plain arithmetic reads them.
#[derive(Clone, Debug)]
struct ExactTerms {
    terms: Box<[Term]>,
    /// Whether term `i` reads slot `i`: the counts are then read in order.
    /// It holds for valid rules, whose engagement types are the first event
    /// types declared, in the order of `engagement`.
    in_slot_order: bool,
}

/// An engagement term: its slot, its points and its cap (the largest
/// integer when it has none).
#[derive(Clone, Copy, Debug)]
struct Term {
    slot: usize,
    points: i64,
    cap: i64,
}

impl ExactTerms {
    /// The terms, when adding them with plain arithmetic is exact.
    fn of(engagement: &[Engagement]) -> Option<ExactTerms> {
        engagement_is_exact(engagement).then(|| ExactTerms {
            terms: engagement
                .iter()
                .map(|e| Term { slot: usize::from(e.slot), points: e.points, cap: e.max_points.unwrap_or(i64::MAX) })
                .collect(),
            in_slot_order: engagement.iter().enumerate().all(|(i, e)| usize::from(e.slot) == i),
        })
    }
}

/// The numbers of one scoring, step by step (the evaluation order in rules/scoring.yaml).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Score {
    pub fit_raw: i64,
    pub fit: i64,
    pub positive: i64,
    pub negative: i64,
    pub idle_days: u32,
    pub decay_weeks: u32,
    pub decay_factor: f64,
    pub positive_decayed: i64,
    pub engagement_raw: i64,
    pub engagement: i64,
    pub total_raw: i64,
    pub total: i64,
    /// Index into [`Scoring::tiers`].
    pub tier: usize,
}

/// Told about each step of a scoring. `()` records nothing and costs nothing.
pub trait ScoreTrace {
    /// Whether it is told anything: when not, the fit points may be summed
    /// without asking rule by rule.
    const RECORDS: bool = true;
    fn fit_matched(&mut self, _rule: usize, _points: i64) {}
    fn engagement(&mut self, _index: usize, _count: u32, _contribution: i64, _capped: bool) {}
}

impl ScoreTrace for () {
    const RECORDS: bool = false;
}

/// Collects the fit rules that matched, by index.
#[derive(Debug, Default)]
pub struct MatchedFit(pub Vec<usize>);

impl ScoreTrace for MatchedFit {
    fn fit_matched(&mut self, rule: usize, _points: i64) {
        self.0.push(rule);
    }
}

/// Whole days between two instants, as the decay rule counts them.
pub fn idle_days(last_activity: chrono::DateTime<chrono::Utc>, now: chrono::DateTime<chrono::Utc>) -> u32 {
    u32::try_from((now - last_activity).num_days().max(0)).unwrap_or(u32::MAX)
}

impl Scoring {
    /// Scores a lead. `idle_days` are whole days since its last activity.
    #[inline]
    pub fn score<T: ScoreTrace>(&self, facts: &Facts<'_>, idle_days: u32, trace: &mut T) -> Score {
        let fit_raw = self.fit_by(trace, |i| self.fit[i].when.holds(facts));
        self.score_from(facts, idle_days, trace, fit_raw)
    }

    /// The fit points before limits, with `holds(i)` saying whether fit rule
    /// `i` holds; each rule that does is told to `trace`.
    #[inline(always)]
    pub(super) fn fit_by<T: ScoreTrace>(&self, trace: &mut T, holds: impl Fn(usize) -> bool) -> i64 {
        let mut fit_raw = 0i64;
        for (i, rule) in self.fit.iter().enumerate() {
            let hit = holds(i);
            // Adding nothing rather than branching: whether a rule holds is
            // as good as random from one lead to the next.
            fit_raw = fit_raw.saturating_add(std::hint::select_unpredictable(hit, rule.points, 0));
            if hit {
                trace.fit_matched(i, rule.points);
            }
        }
        fit_raw
    }

    /// Scores a lead whose fit points before limits are `fit_raw`.
    #[inline(always)]
    pub(super) fn score_from<T: ScoreTrace>(
        &self,
        facts: &Facts<'_>,
        idle_days: u32,
        trace: &mut T,
        fit_raw: i64,
    ) -> Score {
        let fit = self.limits_fit.clamp(fit_raw);

        // With no branch on the counts either: which types a lead has are as
        // good as random, and a type with no events contributes nothing.
        let (mut positive, mut negative) = (0i64, 0i64);
        if let Some(exact) = &self.exact_terms {
            let mut add = |i: usize, e: &Term, count: u32| {
                let raw = e.points * i64::from(count);
                // A cap is above zero: the points are held within it either way.
                let contribution = raw.clamp(-e.cap, e.cap);
                if count != 0 {
                    trace.engagement(i, count, contribution, contribution != raw);
                }
                positive += contribution.max(0);
                negative += contribution.min(0);
            };
            match facts.events.get(..exact.terms.len()).filter(|_| exact.in_slot_order) {
                Some(counts) => exact.terms.iter().zip(counts).enumerate().for_each(|(i, (e, &n))| add(i, e, n)),
                None => exact
                    .terms
                    .iter()
                    .enumerate()
                    .for_each(|(i, e)| add(i, e, facts.events.get(e.slot).copied().unwrap_or(0))),
            }
        }
        for (i, e) in self.engagement.iter().enumerate().filter(|_| self.exact_terms.is_none()) {
            let count = facts.events.get(usize::from(e.slot)).copied().unwrap_or(0);
            let raw = e.points.saturating_mul(i64::from(count));
            let max = e.max_points.unwrap_or(i64::MAX);
            let capped = raw.unsigned_abs() > max.unsigned_abs();
            let contribution = if capped { max * raw.signum() } else { raw };
            if count != 0 {
                trace.engagement(i, count, contribution, capped);
            }
            positive = positive.saturating_add(contribution.max(0));
            negative = negative.saturating_add(contribution.min(0));
        }

        let (decay_weeks, decay_factor) = match self.decay {
            Some(d) => {
                let weeks = idle_days.saturating_sub(d.after_days) / 7;
                (weeks, (1.0 - d.percent_per_week / 100.0 * f64::from(weeks)).max(0.0))
            }
            None => (0, 1.0),
        };
        // f64::round rounds half away from zero, as the rules say.
        let positive_decayed =
            if decay_factor == 1.0 { positive } else { (positive as f64 * decay_factor).round() as i64 };
        let engagement_raw = positive_decayed.saturating_add(negative);
        let engagement = self.limits_engagement.clamp(engagement_raw);
        let total_raw = fit.saturating_add(engagement);
        let total = self.limits_total.clamp(total_raw);
        Score {
            fit_raw,
            fit,
            positive,
            negative,
            idle_days,
            decay_weeks,
            decay_factor,
            positive_decayed,
            engagement_raw,
            engagement,
            total_raw,
            total,
            tier: self.tier_of(total),
        }
    }

    /// The tier with the highest threshold at or below `score`.
    #[inline]
    pub fn tier_of(&self, score: i64) -> usize {
        self.tiers.iter().rposition(|t| t.threshold <= score).unwrap_or(0)
    }

    pub fn is_handoff(&self, tier: usize) -> bool {
        tier >= self.handoff
    }

    pub fn tier_names(&self) -> Vec<String> {
        self.tiers.iter().map(|t| t.name.clone()).collect()
    }

    pub fn tier_index(&self, name: &str) -> Option<usize> {
        self.tiers.iter().position(|t| t.name == name)
    }

    /// The lowest score the rules can produce, or `None` when unbounded below.
    fn lowest_reachable(&self) -> Option<i64> {
        let fit_low = self.limits_fit.clamp(self.fit.iter().map(|r| r.points.min(0)).sum());
        let mut engagement_low = Some(0i64);
        for e in self.engagement.iter().filter(|e| e.points < 0) {
            engagement_low = match (engagement_low, e.max_points) {
                (Some(low), Some(max)) => Some(low - max),
                _ => None,
            };
        }
        let engagement_low = match (engagement_low, self.limits_engagement.min) {
            (Some(low), _) => Some(self.limits_engagement.clamp(low)),
            (None, Some(min)) => Some(min),
            (None, None) => None,
        };
        match (engagement_low, self.limits_total.min) {
            (Some(low), _) => Some(self.limits_total.clamp(fit_low + low)),
            (None, Some(min)) => Some(min),
            (None, None) => None,
        }
    }
}

/// Largest points magnitude accepted anywhere in scoring.yaml.
const MAX_POINTS: i64 = 1_000_000;

fn points(doc: &mut Doc<'_>, node: &Node, path: &str) -> Option<i64> {
    let span = *node.span();
    let p = doc.int(node, path)?;
    if p.abs() > MAX_POINTS {
        doc.error(&span, path, format!("points must be between -{MAX_POINTS} and {MAX_POINTS}"));
        return None;
    }
    Some(p)
}

/// The event types `scoring.yaml` declares under `engagement`, read before
/// anything is compiled so that every file's conditions can name them.
pub fn declared_events(root: &Node, events: &mut EventVocabulary) {
    if let Some(map) = root.as_mapping().and_then(|m| m.get_mapping("engagement")) {
        for key in map.keys() {
            if valid_event_name(key.as_str()) {
                events.declare(key.as_str());
            }
        }
    }
}

pub fn compile(doc: &mut Doc<'_>, root: &Node, events: &EventVocabulary) -> Option<Scoring> {
    let map = doc.map(root, "")?;
    doc.only_keys(map, "", &super::schema::SCORING.names());
    let errors_before = doc.diags.len();

    // Tiers first: everything else refers to them.
    let mut tiers = Vec::new();
    if let Some(node) = doc.required(map, "tiers", "")
        && let Some(t) = doc.map(node, "tiers")
    {
        if t.is_empty() {
            doc.error(t.span(), "tiers", "at least one tier is required");
        }
        for (name, threshold) in t.iter() {
            let p = child("tiers", name.as_str());
            if let Some(th) = points(doc, threshold, &p) {
                if let Some(other) = tiers.iter().find(|x: &&Tier| x.threshold == th) {
                    doc.error(threshold.span(), &p, format!("tier `{}` has the same threshold {th}", other.name));
                }
                tiers.push(Tier { name: name.as_str().to_owned(), threshold: th });
            }
        }
    }
    tiers.sort_by_key(|t| t.threshold);
    let tier_names: Vec<String> = tiers.iter().map(|t| t.name.clone()).collect();

    let mut handoff = 0;
    if let Some(node) = doc.required(map, "handoff", "")
        && let Some(name) = doc.text(node, "handoff")
    {
        match tier_names.iter().position(|t| *t == name) {
            Some(ix) => handoff = ix,
            None if tier_names.is_empty() => {}
            None => doc.error_hint(
                node.span(),
                "handoff",
                format!("`{name}` is not a tier; tiers are {}", tier_names.join(", ")),
                super::diag::suggest(&name, tier_names.iter().map(String::as_str)),
            ),
        }
    }

    let scope = Scope { events, tiers: Some(&tier_names), score_known: false };
    let mut fit = Vec::new();
    if let Some(node) = optional(map, "fit")
        && let Some(seq) = doc.seq(node, "fit")
    {
        for (i, rule) in seq.iter().enumerate() {
            let path = item("fit", i);
            let Some(r) = doc.map(rule, &path) else { continue };
            doc.only_keys(r, &path, &super::schema::FIT_RULE.names());
            let name = doc.required(r, "name", &path).and_then(|n| doc.text(n, &child(&path, "name")));
            if let Some(name) = &name
                && fit.iter().any(|f: &FitRule| f.name == *name)
            {
                doc.error(r.span(), &child(&path, "name"), format!("duplicate fit rule name `{name}`"));
            }
            let when = match optional(r, "when") {
                Some(w) => condition::compile(doc, w, &child(&path, "when"), &scope),
                None => Some(Cond::Always),
            };
            let pts = doc.required(r, "points", &path).and_then(|p| points(doc, p, &child(&path, "points")));
            if let (Some(name), Some(when), Some(points)) = (name, when, pts) {
                fit.push(FitRule { name, when, points, line: r.span().start().map(|m| m.line()) });
            }
        }
    }

    let mut engagement = Vec::new();
    if let Some(node) = optional(map, "engagement")
        && let Some(m) = doc.map(node, "engagement")
    {
        for (event, value) in m.iter() {
            let path = child("engagement", event.as_str());
            if !valid_event_name(event.as_str()) {
                doc.error(event.span(), &path, "event types use lower-case letters, digits and `_`");
                continue;
            }
            let (p, max_points) = match value {
                Node::Mapping(pm) => {
                    doc.only_keys(pm, &path, &super::schema::ENGAGEMENT.names());
                    let p = doc.required(pm, "points", &path).and_then(|n| points(doc, n, &child(&path, "points")));
                    let max = match optional(pm, "max_points") {
                        Some(n) => {
                            let mp = child(&path, "max_points");
                            match points(doc, n, &mp) {
                                Some(m) if m > 0 => Some(Some(m)),
                                Some(_) => {
                                    doc.error(n.span(), &mp, "max_points must be above zero");
                                    None
                                }
                                None => None,
                            }
                        }
                        None => Some(None),
                    };
                    (p, max)
                }
                other => (points(doc, other, &path), Some(None)),
            };
            if let (Some(points), Some(max_points), Some(slot)) = (p, max_points, events.slot(event.as_str())) {
                engagement.push(Engagement { event: event.as_str().to_owned(), slot, points, max_points });
            }
        }
    }

    let (mut limits_fit, mut limits_engagement, mut limits_total) = Default::default();
    if let Some(node) = optional(map, "limits")
        && let Some(m) = doc.map(node, "limits")
    {
        doc.only_keys(m, "limits", &super::schema::SCORE_LIMITS.names());
        for (key, slot) in
            [("fit", &mut limits_fit), ("engagement", &mut limits_engagement), ("total", &mut limits_total)]
        {
            if let Some(b) = optional(m, key) {
                *slot = bounds(doc, b, &child("limits", key));
            }
        }
    }

    let mut decay = None;
    if let Some(node) = optional(map, "decay")
        && let Some(m) = doc.map(node, "decay")
    {
        doc.only_keys(m, "decay", &super::schema::DECAY.names());
        let after = doc.required(m, "after_days", "decay").and_then(|n| doc.count(n, "decay.after_days"));
        let pct = doc.required(m, "percent_per_week", "decay").and_then(|n| {
            let v = doc.number(n, "decay.percent_per_week")?;
            if (0.0..=100.0).contains(&v) {
                Some(v)
            } else {
                doc.error(n.span(), "decay.percent_per_week", "must be between 0 and 100");
                None
            }
        });
        if let (Some(after_days), Some(percent_per_week)) = (after, pct) {
            decay = Some(Decay { after_days, percent_per_week });
        }
    }

    if doc.diags.len() > errors_before || tiers.is_empty() {
        return None;
    }
    let exact_terms = ExactTerms::of(&engagement);
    let scoring =
        Scoring { fit, engagement, limits_fit, limits_engagement, limits_total, decay, tiers, handoff, exact_terms };
    let lowest = &scoring.tiers[0];
    match scoring.lowest_reachable() {
        Some(low) if low >= lowest.threshold => {}
        reach => {
            let reach = reach.map_or("unbounded".to_owned(), |l| l.to_string());
            doc.error_at_top(
                &child("tiers", &lowest.name),
                format!(
                    "the lowest tier `{}` starts at {}, but scores can reach {reach}; lower it or set limits.total.min",
                    lowest.name, lowest.threshold
                ),
            );
            return None;
        }
    }
    Some(scoring)
}

fn bounds(doc: &mut Doc<'_>, node: &Node, path: &str) -> Bounds {
    let Some(m) = doc.map(node, path) else { return Bounds::default() };
    doc.only_keys(m, path, &super::schema::BOUNDS.names());
    let min = optional(m, "min").and_then(|n| points(doc, n, &child(path, "min")));
    let max = optional(m, "max").and_then(|n| points(doc, n, &child(path, "max")));
    if let (Some(lo), Some(hi)) = (min, max)
        && lo > hi
    {
        doc.error(m.span(), path, format!("min {lo} is above max {hi}"));
    }
    Bounds { min, max }
}

/// Why a lead scored what it did.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct ScoreExplanation {
    pub score: i64,
    pub tier: String,
    pub handoff: bool,
    pub fit: Vec<FitHit>,
    pub fit_total: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fit_clamped: Option<Clamp>,
    pub engagement: Vec<EngagementLine>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decay: Option<DecayTrace>,
    pub engagement_total: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engagement_clamped: Option<Clamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_clamped: Option<Clamp>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FitHit {
    pub rule: String,
    pub points: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct EngagementLine {
    pub event: String,
    pub count: u32,
    pub points_each: i64,
    pub contribution: i64,
    pub capped: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Clamp {
    pub from: i64,
    pub to: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct DecayTrace {
    pub idle_days: u32,
    pub weeks: u32,
    pub factor: f64,
    pub positive_before: i64,
    pub positive_after: i64,
}

fn clamp_of(from: i64, to: i64) -> Option<Clamp> {
    (from != to).then_some(Clamp { from, to })
}

/// Whether every term's points at the highest count a lead can have, all
/// added, stay within the integers: true unless a rule set has thousands of
/// event types with points near the largest allowed.
fn engagement_is_exact(terms: &[Engagement]) -> bool {
    terms
        .iter()
        .try_fold(0i64, |sum, e| sum.checked_add(e.points.checked_abs()?.checked_mul(i64::from(u32::MAX))?))
        .is_some()
}

/// Records everything, for an explanation.
#[derive(Debug, Default)]
pub struct ScoreRecorder {
    fit: Vec<(usize, i64)>,
    engagement: Vec<(usize, u32, i64, bool)>,
}

impl ScoreTrace for ScoreRecorder {
    fn fit_matched(&mut self, rule: usize, points: i64) {
        self.fit.push((rule, points));
    }
    fn engagement(&mut self, index: usize, count: u32, contribution: i64, capped: bool) {
        self.engagement.push((index, count, contribution, capped));
    }
}

impl ScoreRecorder {
    pub fn explain(self, scoring: &Scoring, s: &Score) -> ScoreExplanation {
        ScoreExplanation {
            score: s.total,
            tier: scoring.tiers[s.tier].name.clone(),
            handoff: scoring.is_handoff(s.tier),
            fit: self.fit.iter().map(|(i, p)| FitHit { rule: scoring.fit[*i].name.clone(), points: *p }).collect(),
            fit_total: s.fit,
            fit_clamped: clamp_of(s.fit_raw, s.fit),
            engagement: self
                .engagement
                .iter()
                .map(|(i, count, contribution, capped)| EngagementLine {
                    event: scoring.engagement[*i].event.clone(),
                    count: *count,
                    points_each: scoring.engagement[*i].points,
                    contribution: *contribution,
                    capped: *capped,
                })
                .collect(),
            decay: scoring.decay.map(|_| DecayTrace {
                idle_days: s.idle_days,
                weeks: s.decay_weeks,
                factor: s.decay_factor,
                positive_before: s.positive,
                positive_after: s.positive_decayed,
            }),
            engagement_total: s.engagement,
            engagement_clamped: clamp_of(s.engagement_raw, s.engagement),
            total_clamped: clamp_of(s.total_raw, s.total),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lead::{Bant, Email, Profile, Status};
    use crate::rules::condition::{ABSENT, PART_SLOTS, SYMBOL_SLOTS};

    fn facts<'a>(profile: &'a Profile, events: &'a [u32]) -> Facts<'a> {
        Facts {
            profile,
            free_email: false,
            events,
            status: Status::Nurturing,
            bant: Bant::default(),
            score: None,
            tier: None,
            symbols: [ABSENT; SYMBOL_SLOTS],
            parts: [0; PART_SLOTS],
        }
    }

    fn scoring(terms: &[(i64, Option<i64>)]) -> Scoring {
        let engagement: Vec<Engagement> = terms
            .iter()
            .enumerate()
            .map(|(slot, &(points, max_points))| Engagement {
                event: format!("e{slot}"),
                slot: slot as u16,
                points,
                max_points,
            })
            .collect();
        let exact_terms = ExactTerms::of(&engagement);
        Scoring {
            fit: Vec::new(),
            engagement,
            limits_fit: Bounds::default(),
            limits_engagement: Bounds::default(),
            limits_total: Bounds::default(),
            decay: None,
            tiers: vec![Tier { name: "cold".into(), threshold: i64::MIN }],
            handoff: 0,
            exact_terms,
        }
    }

    /// Terms added with plain arithmetic, where no count can overflow them,
    /// give what saturating arithmetic gives: points, caps, which were
    /// capped, for counts up to the largest.
    #[test]
    fn exact_engagement_adds_as_saturating_engagement_does() {
        let profile = Profile::new(Email::parse("ana@example.com").expect("email"));
        let mut rng = fastrand::Rng::with_seed(9);
        for _ in 0..2_000 {
            let terms: Vec<(i64, Option<i64>)> = (0..rng.usize(1..9))
                .map(|_| (rng.i64(-1_000_000..1_000_000), rng.bool().then(|| rng.i64(1..5_000_000))))
                .collect();
            let exact = scoring(&terms);
            assert!(exact.exact_terms.is_some());
            let saturating = Scoring { exact_terms: None, ..exact.clone() };
            // The same terms, their counts looked up by slot one by one.
            let mut by_slot = exact.clone();
            by_slot.exact_terms.as_mut().expect("exact").in_slot_order = false;
            let counts: Vec<u32> = terms.iter().map(|_| [0, 1, 2, 7, 1_000, u32::MAX][rng.usize(..6)]).collect();
            let (mut a, mut b, mut c) = (ScoreRecorder::default(), ScoreRecorder::default(), ScoreRecorder::default());
            let facts = facts(&profile, &counts);
            let scored = exact.score_from(&facts, 0, &mut a, 0);
            assert_eq!(scored, saturating.score_from(&facts, 0, &mut b, 0));
            assert_eq!(scored, by_slot.score_from(&facts, 0, &mut c, 0));
            assert_eq!(a.engagement, b.engagement, "{terms:?} {counts:?}");
            assert_eq!(a.engagement, c.engagement, "{terms:?} {counts:?}");
        }
    }

    /// Terms whose slots are not in their order read each count by its
    /// slot: the third term reads the first count.
    #[test]
    fn terms_out_of_slot_order_read_their_own_counts() {
        let profile = Profile::new(Email::parse("ana@example.com").expect("email"));
        let mut shuffled = scoring(&[(1, None), (10, None), (100, Some(150))]);
        for (e, slot) in shuffled.engagement.iter_mut().zip([2u16, 1, 0]) {
            e.slot = slot;
        }
        shuffled.exact_terms = ExactTerms::of(&shuffled.engagement);
        assert!(!shuffled.exact_terms.as_ref().expect("exact").in_slot_order);
        let score = shuffled.score_from(&facts(&profile, &[2, 3, 5]), 0, &mut (), 0);
        assert_eq!(score.positive, 5 + 30 + 150);
    }

    /// Points a rule file may give are added exactly up to two thousand
    /// event types at the largest; past that, and for points no file may
    /// give, saturating.
    #[test]
    fn engagement_is_exact_while_no_sum_can_overflow() {
        let terms = |n: usize, points: i64| scoring(&vec![(points, None); n]).engagement;
        assert!(engagement_is_exact(&terms(2_000, MAX_POINTS)));
        assert!(engagement_is_exact(&terms(2_000, -MAX_POINTS)));
        assert!(!engagement_is_exact(&terms(2_200, MAX_POINTS)));
        assert!(!engagement_is_exact(&terms(1, i64::MIN)));
        assert!(!engagement_is_exact(&terms(1, i64::MAX / 2)));
    }

    /// Points so large that counts overflow them saturate, as before.
    #[test]
    fn engagement_points_past_the_integers_saturate() {
        let profile = Profile::new(Email::parse("ana@example.com").expect("email"));
        let huge = scoring(&[(i64::MAX / 2, None), (i64::MAX / 2, None), (i64::MIN, Some(5))]);
        assert!(huge.exact_terms.is_none());
        let counts = [3, u32::MAX, 1];
        let score = huge.score_from(&facts(&profile, &counts), 0, &mut (), 0);
        assert_eq!((score.positive, score.negative), (i64::MAX, -5));
    }
}
