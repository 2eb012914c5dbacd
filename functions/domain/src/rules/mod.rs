//! The rule engine: RevOps's YAML, compiled once at load, evaluated per lead.
//!
//! One loader ([`RuleSet::load`]) takes the five rule files from wherever they
//! come from: a directory for the command line and the local server, strings
//! embedded in the binary for the Lambdas.

pub mod capture;
pub mod condition;
pub mod diag;
pub mod field;
pub mod filetests;
pub mod input;
pub mod lifecycle;
pub mod lint;
pub mod program;
use program::{Compiled, Program, Word};
pub mod routing;
pub mod schema;
pub mod scoring;
pub mod sla;
pub mod testcases;
pub mod text;
pub mod words;
pub mod yaml;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};
use thiserror::Error;

pub use diag::{Diagnostic, Diagnostics};
pub use field::{EventCounts, EventVocabulary, Facts};

use crate::lead::{Bant, Profile, Status};
use routing::{RouteMatch, TargetName};
use scoring::{Score, ScoreExplanation, ScoreRecorder, ScoreTrace};
use yaml::Doc;

/// The rule files, in the order they are compiled.
pub const RULE_FILES: [&str; 5] = ["capture.yaml", "scoring.yaml", "lifecycle.yaml", "routing.yaml", "sla.yaml"];

/// The text of the rule files, by file name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleSources {
    files: BTreeMap<String, String>,
}

#[derive(Debug, Error)]
pub enum RuleError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not UTF-8 text", path.display())]
    NotUtf8 { path: PathBuf },
    #[error("{0}")]
    Invalid(Diagnostics),
}

impl RuleSources {
    /// Reads the five rule files of `dir`. A missing file is reported at load.
    pub fn from_dir(dir: &Path) -> Result<Self, RuleError> {
        let mut files = BTreeMap::new();
        for name in RULE_FILES {
            let path = dir.join(name);
            match std::fs::read(&path) {
                Ok(bytes) => {
                    let text = String::from_utf8(bytes).map_err(|_| RuleError::NotUtf8 { path: path.clone() })?;
                    files.insert(name.to_owned(), text);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(RuleError::Read { path, source }),
            }
        }
        Ok(RuleSources { files })
    }

    /// Rule files given as text (the Lambdas embed them with `include_str!`).
    pub fn from_texts<'a>(texts: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        RuleSources { files: texts.into_iter().map(|(n, t)| (n.to_owned(), t.to_owned())).collect() }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.files.get(name).map(String::as_str)
    }

    /// A short, stable fingerprint of the rules, stored with every decision.
    pub fn version(&self) -> String {
        let mut h = Sha256::new();
        for (name, text) in &self.files {
            h.update(name.as_bytes());
            h.update([0]);
            h.update(text.as_bytes());
            h.update([0]);
        }
        h.finalize().iter().take(6).map(|b| format!("{b:02x}")).collect()
    }
}

/// All five rule files, compiled.
#[derive(Clone, Debug)]
pub struct RuleSet {
    pub version: String,
    pub events: EventVocabulary,
    pub capture: capture::Capture,
    pub scoring: scoring::Scoring,
    pub lifecycle: lifecycle::Lifecycle,
    pub routing: routing::Routing,
    pub sla: sla::Sla,
    /// The text values that conditions compare, numbered per field.
    pub symbols: condition::Symbols,
    /// The parts that conditions look for in text, searched for once per lead.
    pub parts: condition::Parts,
    /// The fit and routing conditions compiled over one word of tests per lead.
    pub program: Program,
}

impl RuleSet {
    /// Compiles the rules, reporting every problem in every file.
    pub fn load(sources: &RuleSources) -> Result<RuleSet, Diagnostics> {
        let mut diags = Vec::new();
        let mut parsed = BTreeMap::new();
        for name in RULE_FILES {
            let Some(text) = sources.get(name) else {
                diags.push(Diagnostic {
                    file: name.to_owned(),
                    path: String::new(),
                    line: None,
                    column: None,
                    message: "file is missing".to_owned(),
                    suggestion: None,
                });
                continue;
            };
            let (doc, node) = Doc::parse(name, text);
            diags.extend(doc.diags);
            match node {
                Some(node) => {
                    parsed.insert(name, node);
                }
                None if text.trim().is_empty() => diags.push(Diagnostic {
                    file: name.to_owned(),
                    path: String::new(),
                    line: None,
                    column: None,
                    message: "file is empty".to_owned(),
                    suggestion: None,
                }),
                None => {}
            }
        }

        // Event types are declared by scoring.yaml and lifecycle.yaml; read them
        // first so that conditions anywhere can name them.
        let mut events = EventVocabulary::default();
        if let Some(n) = parsed.get("scoring.yaml") {
            scoring::declared_events(n, &mut events);
        }
        let lifecycle_node = parsed.get("lifecycle.yaml");
        match lifecycle_node {
            Some(n) => lifecycle::declared_events(n, &mut events),
            None => lifecycle::LIFECYCLE_EVENTS.iter().for_each(|e| {
                events.declare(e);
            }),
        }

        let mut compile = |name: &'static str, f: &mut dyn FnMut(&mut Doc<'_>, &marked_yaml::Node) -> bool| {
            if let Some(node) = parsed.get(name) {
                let mut doc = Doc { file: name, diags: Vec::new() };
                let ok = f(&mut doc, node);
                diags.extend(doc.diags);
                ok
            } else {
                false
            }
        };
        let mut capture = None;
        compile("capture.yaml", &mut |d, n| {
            capture = capture::compile(d, n);
            capture.is_some()
        });
        let mut scoring = None;
        compile("scoring.yaml", &mut |d, n| {
            scoring = scoring::compile(d, n, &events);
            scoring.is_some()
        });
        let tiers = scoring.as_ref().map(|s: &scoring::Scoring| s.tier_names());
        let mut lifecycle = None;
        compile("lifecycle.yaml", &mut |d, n| {
            lifecycle = lifecycle::compile(d, n, &events);
            lifecycle.is_some()
        });
        let mut routing = None;
        compile("routing.yaml", &mut |d, n| {
            routing = routing::compile(d, n, &events, tiers.as_deref());
            routing.is_some()
        });
        let mut sla = None;
        compile("sla.yaml", &mut |d, n| {
            sla = sla::compile(d, n, tiers.as_deref());
            sla.is_some()
        });

        match (capture, scoring, lifecycle, routing, sla) {
            (Some(capture), Some(mut scoring), Some(lifecycle), Some(mut routing), Some(sla)) if diags.is_empty() => {
                let (mut symbols, mut parts) = (condition::Symbols::default(), condition::Parts::default());
                let conditions = scoring.fit.iter_mut().map(|rule| &mut rule.when);
                for when in conditions.chain(routing.rules.iter_mut().map(|rule| &mut rule.when)) {
                    when.symbolise(&mut symbols);
                    when.search_once(&mut parts);
                }
                parts.finish();
                let program = Program::compile(
                    scoring.fit.iter().map(|rule| (&rule.when, rule.points)),
                    routing.rules.iter().map(|rule| &rule.when),
                );
                let version = sources.version();
                Ok(RuleSet { version, events, capture, scoring, lifecycle, routing, sla, symbols, parts, program })
            }
            _ => {
                if diags.is_empty() {
                    diags.push(Diagnostic {
                        file: String::new(),
                        path: String::new(),
                        line: None,
                        column: None,
                        message: "the rules did not compile".to_owned(),
                        suggestion: None,
                    });
                }
                Err(Diagnostics(diags))
            }
        }
    }

    /// Reads and compiles the rule files of `dir`.
    pub fn load_dir(dir: &Path) -> Result<RuleSet, RuleError> {
        RuleSet::load(&RuleSources::from_dir(dir)?).map_err(RuleError::Invalid)
    }

    /// Fills `slots` with a stored lead's event counts, one per event type the
    /// rules know, so that scoring and conditions read them by position. Types
    /// the rules do not know are not counted. (Leads read from JSON come with
    /// their counts by slot already: see [`EventCounts`].)
    pub fn event_slots(&self, counts: &BTreeMap<String, u32>, slots: &mut Vec<u32>) {
        slots.clear();
        slots.resize(self.events.len(), 0);
        for (name, count) in counts {
            if let Some(slot) = self.events.slot(name) {
                slots[usize::from(slot)] = *count;
            }
        }
    }

    /// The facts the engine reads about a lead.
    pub fn facts<'a>(&self, profile: &'a Profile, events: &'a [u32], status: Status, bant: Bant) -> Facts<'a> {
        let mut facts = Facts {
            profile,
            free_email: self.capture.is_free_email(profile.email.domain()),
            events,
            status,
            bant,
            score: None,
            tier: None,
            symbols: [condition::ABSENT; condition::SYMBOL_SLOTS],
            parts: [0; condition::PART_SLOTS],
        };
        facts.symbols = self.symbols.of(&facts);
        facts.parts = self.parts.of(&facts);
        facts
    }

    /// Scores a lead, then finds the routing rule that decides where it goes.
    /// Leaves the score and tier in `facts` for later rules.
    #[inline]
    pub fn evaluate<T: ScoreTrace>(&self, facts: &mut Facts<'_>, idle_days: u32, trace: &mut T) -> Evaluation {
        match &self.program {
            Program::Narrow(program) => self.evaluate_by(program, facts, idle_days, trace),
            Program::Wide(program) => self.evaluate_by(program, facts, idle_days, trace),
        }
    }

    #[inline(always)]
    fn evaluate_by<W: Word, T: ScoreTrace>(
        &self,
        program: &Compiled<W>,
        facts: &mut Facts<'_>,
        idle_days: u32,
        trace: &mut T,
    ) -> Evaluation {
        let (before, folded) = program.before(facts);
        let tree = |i: usize| self.scoring.fit[i].when.holds(facts);
        let fit_raw = if !T::RECORDS && program.folds() {
            folded + program.rest_of_fit(before, tree)
        } else {
            self.scoring.fit_by(
                trace,
                #[inline(always)]
                |i| program.fit_holds(i, before, || tree(i)),
            )
        };
        let score = self.scoring.score_from(facts, idle_days, trace, fit_raw);
        facts.score = Some(score.total);
        facts.tier = Some(score.tier);
        let bits = program.after(facts, before);
        let rule = program.first_route(bits, |i| self.routing.rules[i].when.holds(facts));
        Evaluation { score, route: RouteMatch { rule } }
    }

    /// Evaluates a lead and explains every step.
    pub fn explain(&self, facts: &mut Facts<'_>, idle_days: u32) -> Explanation {
        let mut recorder = ScoreRecorder::default();
        let eval = self.evaluate(facts, idle_days, &mut recorder);
        Explanation {
            rules_version: self.version.clone(),
            score: recorder.explain(&self.scoring, &eval.score),
            route: RouteExplanation {
                rule: self.routing.rule_name(eval.route).to_owned(),
                target: self.routing.target_name(self.routing.target(eval.route)),
            },
        }
    }

    pub fn tier_name(&self, tier: usize) -> &str {
        &self.scoring.tiers[tier].name
    }
}

/// What the rules decide about a lead, before anyone's availability.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    pub score: Score,
    pub route: RouteMatch,
}

/// The routing rule that matched and the target it names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RouteExplanation {
    pub rule: String,
    pub target: TargetName,
}

/// Why the rules decided what they did about a lead.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Explanation {
    pub rules_version: String,
    pub score: ScoreExplanation,
    pub route: RouteExplanation,
}

impl std::fmt::Display for Explanation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.score;
        writeln!(
            f,
            "score {} ({}{}), rules {}",
            s.score,
            s.tier,
            if s.handoff { ", hand-off" } else { "" },
            self.rules_version
        )?;
        writeln!(f, "  fit {}", s.fit_total)?;
        for hit in &s.fit {
            writeln!(f, "    {:+} {}", hit.points, hit.rule)?;
        }
        if s.fit.is_empty() {
            writeln!(f, "    (no fit rule matched)")?;
        }
        if let Some(c) = s.fit_clamped {
            writeln!(f, "    limited from {} to {}", c.from, c.to)?;
        }
        writeln!(f, "  engagement {}", s.engagement_total)?;
        for line in &s.engagement {
            writeln!(
                f,
                "    {:+} {} x{} at {:+}{}",
                line.contribution,
                line.event,
                line.count,
                line.points_each,
                if line.capped { " (capped)" } else { "" }
            )?;
        }
        if let Some(d) = s.decay
            && d.weeks > 0
        {
            writeln!(
                f,
                "    decay: idle {} days, {} weeks, factor {:.2}: {} -> {}",
                d.idle_days, d.weeks, d.factor, d.positive_before, d.positive_after
            )?;
        }
        if let Some(c) = s.engagement_clamped {
            writeln!(f, "    limited from {} to {}", c.from, c.to)?;
        }
        if let Some(c) = s.total_clamped {
            writeln!(f, "  total limited from {} to {}", c.from, c.to)?;
        }
        let target = match &self.route.target {
            TargetName::Pool { pool } => format!("pool {pool}"),
            TargetName::Rep { rep } => format!("rep {rep}"),
        };
        write!(f, "  route: rule {} -> {target}", self.route.rule)
    }
}

#[cfg(test)]
mod tests;
