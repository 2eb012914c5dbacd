//! `leadflow rules diff --base REF|DIR --leads FILE.jsonl`: what a rule change
//! does to real leads, before it is merged. Each lead is decided under the
//! base rules and under the rules of this tree; the report counts tier moves,
//! route moves, hand-off volume per target against capacity, and the
//! distribution of score changes, names the fit rules responsible, and gives
//! example lead ids (never emails) for each move.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::str::Utf8Error;

use anyhow::{Context, Result, bail};
use leadflow_domain::RuleSet;
use leadflow_domain::rules::input::{EventTypes, LeadInput, LeadLine, read_lead};
use leadflow_domain::rules::routing::TargetName;
use leadflow_domain::rules::scoring::MatchedFit;
use leadflow_domain::rules::{RULE_FILES, RuleSources};
use serde::Serialize;

use crate::lines::{Block, Blocks};

/// Exit code when the change moves leads.
pub const CHANGES: u8 = 3;
/// Exit code when it moves more leads than `--budget`.
pub const OVER_BUDGET: u8 = 4;
/// Examples kept per move.
const EXAMPLES: usize = 3;

/// How the report is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DiffFormat {
    Text,
    Markdown,
    Json,
}

/// One lead decided under one rule set.
struct Decided {
    score: i64,
    tier: String,
    handoff: bool,
    route_rule: String,
    target: String,
    /// The fit rules that matched, with their points.
    fit: Vec<(String, i64)>,
}

fn decide(rules: &RuleSet, input: &LeadInput, fit: &mut MatchedFit, slots: &mut Vec<u32>) -> Decided {
    let events = input.events.slots_of(&rules.events, slots);
    let mut facts = rules.facts(&input.profile, events, input.status, input.bant);
    fit.0.clear();
    let eval = rules.evaluate(&mut facts, input.idle_days, fit);
    let target = match rules.routing.target_name(rules.routing.target(eval.route)) {
        TargetName::Pool { pool } => format!("pool {pool}"),
        TargetName::Rep { rep } => format!("rep {rep}"),
    };
    Decided {
        score: eval.score.total,
        tier: rules.tier_name(eval.score.tier).to_owned(),
        handoff: rules.scoring.is_handoff(eval.score.tier),
        route_rule: rules.routing.rule_name(eval.route).to_owned(),
        target,
        fit: fit.0.iter().map(|i| (rules.scoring.fit[*i].name.clone(), rules.scoring.fit[*i].points)).collect(),
    }
}

/// A move and how many leads made it, with examples: the first leads of the
/// file that made it, whichever thread decided them.
#[derive(Debug, Default, Serialize)]
struct Move {
    leads: usize,
    examples: Vec<String>,
    /// The examples with their line, kept in line order.
    #[serde(skip)]
    first: Vec<(usize, String)>,
}

impl Move {
    fn add(&mut self, line: usize, example: &str) {
        self.leads += 1;
        self.keep(line, example);
    }

    fn keep(&mut self, line: usize, example: &str) {
        if self.first.len() < EXAMPLES || self.first.last().is_some_and(|(l, _)| line < *l) {
            let at = self.first.partition_point(|(l, _)| *l < line);
            self.first.insert(at, (line, example.to_owned()));
            self.first.truncate(EXAMPLES);
            self.examples = self.first.iter().map(|(_, id)| id.clone()).collect();
        }
    }

    fn merge(&mut self, other: Move) {
        self.leads += other.leads;
        for (line, id) in other.first {
            self.keep(line, &id);
        }
    }
}

/// What the change does, over every lead read.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    base: String,
    head: String,
    leads: usize,
    rejected: usize,
    /// Leads whose tier or route target changed.
    moved: usize,
    /// `from -> to` tier moves.
    tiers: BTreeMap<String, Move>,
    /// `from -> to` route target moves (leads at the hand-off tier under either).
    routes: BTreeMap<String, Move>,
    /// Hand-offs per target: [base, head], with the capacity of the target.
    handoffs: BTreeMap<String, [usize; 2]>,
    capacity: BTreeMap<String, u32>,
    /// Score changes by band.
    score_deltas: BTreeMap<String, usize>,
    /// Fit rules behind score changes: leads for which each no longer
    /// matches, now matches, or matches with other points: [gone, new, repointed].
    fit_rules: BTreeMap<String, [usize; 3]>,
    /// Routing rules behind the route moves: `base rule -> head rule`.
    route_rules: BTreeMap<String, usize>,
}

const BANDS: [(i64, i64, &str); 7] = [
    (i64::MIN, -20, "-20 or less"),
    (-19, -10, "-19 to -10"),
    (-9, -1, "-9 to -1"),
    (0, 0, "0"),
    (1, 9, "+1 to +9"),
    (10, 19, "+10 to +19"),
    (20, i64::MAX, "+20 or more"),
];

impl Report {
    fn add(&mut self, line: usize, id: &str, base: &Decided, head: &Decided) {
        self.leads += 1;
        let delta = head.score - base.score;
        if let Some((_, _, band)) = BANDS.iter().find(|(lo, hi, _)| (*lo..=*hi).contains(&delta)) {
            *self.score_deltas.entry((*band).to_owned()).or_default() += 1;
        }
        if delta != 0 {
            let points = |side: &[(String, i64)], name: &str| side.iter().find(|(n, _)| n == name).map(|(_, p)| *p);
            for (name, p) in &base.fit {
                match points(&head.fit, name) {
                    None => self.fit_rules.entry(name.clone()).or_default()[0] += 1,
                    Some(q) if q != *p => self.fit_rules.entry(name.clone()).or_default()[2] += 1,
                    Some(_) => {}
                }
            }
            for (name, _) in head.fit.iter().filter(|(n, _)| points(&base.fit, n).is_none()) {
                self.fit_rules.entry(name.clone()).or_default()[1] += 1;
            }
        }
        if base.handoff {
            self.handoffs.entry(base.target.clone()).or_default()[0] += 1;
        }
        if head.handoff {
            self.handoffs.entry(head.target.clone()).or_default()[1] += 1;
        }
        let tier_moved = base.tier != head.tier;
        let route_moved = base.target != head.target && (base.handoff || head.handoff);
        if tier_moved {
            self.tiers.entry(format!("{} -> {}", base.tier, head.tier)).or_default().add(line, id);
        }
        if route_moved {
            self.routes.entry(format!("{} -> {}", base.target, head.target)).or_default().add(line, id);
            *self.route_rules.entry(format!("{} -> {}", base.route_rule, head.route_rule)).or_default() += 1;
        }
        if tier_moved || route_moved {
            self.moved += 1;
        }
    }

    /// Adds what another thread decided.
    fn merge(&mut self, other: Report) {
        self.leads += other.leads;
        self.rejected += other.rejected;
        self.moved += other.moved;
        for (k, m) in other.tiers {
            self.tiers.entry(k).or_default().merge(m);
        }
        for (k, m) in other.routes {
            self.routes.entry(k).or_default().merge(m);
        }
        for (k, [b, h]) in other.handoffs {
            let e = self.handoffs.entry(k).or_default();
            e[0] += b;
            e[1] += h;
        }
        for (k, n) in other.score_deltas {
            *self.score_deltas.entry(k).or_default() += n;
        }
        for (k, [g, n, r]) in other.fit_rules {
            let e = self.fit_rules.entry(k).or_default();
            e[0] += g;
            e[1] += n;
            e[2] += r;
        }
        for (k, n) in other.route_rules {
            *self.route_rules.entry(k).or_default() += n;
        }
    }

    fn changed(&self) -> bool {
        self.moved > 0 || self.score_deltas.iter().any(|(band, n)| band != "0" && *n > 0)
    }

    fn text(&self, markdown: bool) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let h = |s: &mut String, title: &str| {
            if markdown {
                let _ = writeln!(s, "\n### {title}\n");
            } else {
                let _ = writeln!(s, "\n{title}");
            }
        };
        let row = |s: &mut String, cells: &[String]| {
            if markdown {
                let _ = writeln!(s, "| {} |", cells.join(" | "));
            } else {
                let _ = writeln!(s, "  {}", cells.join("  "));
            }
        };
        let head_row = |s: &mut String, cells: &[&str]| {
            if markdown {
                let _ = writeln!(s, "| {} |", cells.join(" | "));
                let _ = writeln!(s, "|{}", " --- |".repeat(cells.len()));
            }
        };
        if markdown {
            let _ = writeln!(s, "## Rule change: {} → {}", self.base, self.head);
        } else {
            let _ = writeln!(s, "rules {} -> {}", self.base, self.head);
        }
        let _ = writeln!(
            s,
            "{}{} leads decided, {} rejected; {} move tier or route",
            if markdown { "\n" } else { "" },
            self.leads,
            self.rejected,
            self.moved
        );
        h(&mut s, "Tier moves");
        head_row(&mut s, &["move", "leads", "examples"]);
        if self.tiers.is_empty() {
            row(&mut s, &["none".into(), String::new(), String::new()]);
        }
        for (m, mv) in &self.tiers {
            row(&mut s, &[m.clone(), mv.leads.to_string(), mv.examples.join(", ")]);
        }
        h(&mut s, "Route moves (leads at the hand-off tier)");
        head_row(&mut s, &["move", "leads", "examples"]);
        if self.routes.is_empty() {
            row(&mut s, &["none".into(), String::new(), String::new()]);
        }
        for (m, mv) in &self.routes {
            row(&mut s, &[m.clone(), mv.leads.to_string(), mv.examples.join(", ")]);
        }
        for (rules, n) in &self.route_rules {
            row(&mut s, &[format!("rule {rules}"), n.to_string(), String::new()]);
        }
        h(&mut s, "Hand-offs per target");
        head_row(&mut s, &["target", "base", "head", "capacity"]);
        for (target, [b, n]) in &self.handoffs {
            let cap = self.capacity.get(target).map_or("-".to_owned(), |c| c.to_string());
            let over = self.capacity.get(target).is_some_and(|c| *n > *c as usize);
            row(
                &mut s,
                &[target.clone(), b.to_string(), n.to_string(), format!("{cap}{}", if over { " (over)" } else { "" })],
            );
        }
        h(&mut s, "Score changes");
        head_row(&mut s, &["change", "leads"]);
        for (_, _, band) in BANDS {
            if let Some(n) = self.score_deltas.get(band) {
                row(&mut s, &[band.to_owned(), n.to_string()]);
            }
        }
        if !self.fit_rules.is_empty() {
            h(&mut s, "Fit rules behind the score changes");
            head_row(&mut s, &["rule", "no longer matches", "now matches", "other points"]);
            for (rule, [gone, new, repointed]) in &self.fit_rules {
                row(&mut s, &[rule.clone(), gone.to_string(), new.to_string(), repointed.to_string()]);
            }
        }
        s
    }
}

/// The rules at `base`: a directory, or a git commit, branch or tag whose
/// copy of the rules directory `dir` is read with `git show`.
fn base_rules(base: &str, dir: &Path) -> Result<(RuleSet, String)> {
    let as_dir = Path::new(base);
    if as_dir.is_dir() {
        let rules = RuleSet::load_dir(as_dir).map_err(|e| anyhow::anyhow!("the base rules in {base}: {e}"))?;
        return Ok((rules, base.to_owned()));
    }
    let mut texts = Vec::new();
    for file in RULE_FILES {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .arg("show")
            .arg(format!("{base}:./{file}"))
            .output()
            .context("running git")?;
        if !out.status.success() {
            bail!(
                "`{base}` is neither a directory nor a git revision with {file} in {}: {}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        texts.push((file, String::from_utf8(out.stdout).context("the base rules are not UTF-8")?));
    }
    let sources = RuleSources::from_texts(texts.iter().map(|(f, t)| (*f, t.as_str())));
    let rules = RuleSet::load(&sources).map_err(|d| anyhow::anyhow!("the base rules at {base} are not valid:\n{d}"))?;
    Ok((rules, base.to_owned()))
}

/// Capacity per target name: a rep's, or the sum of a pool's members'.
fn capacities(rules: &RuleSet) -> BTreeMap<String, u32> {
    let routing = &rules.routing;
    let mut out = BTreeMap::new();
    for rep in &routing.reps {
        if let Some(c) = rep.capacity {
            out.insert(format!("rep {}", rep.id), c);
        }
    }
    for pool in &routing.pools {
        let caps: Option<u32> = pool.members.iter().map(|m| routing.reps[*m].capacity).sum();
        if let Some(c) = caps {
            out.insert(format!("pool {}", pool.id), c);
        }
    }
    out
}

/// Decides line `n` under both rule sets into `report`.
fn decide_line(
    report: &mut Report,
    base: &RuleSet,
    head: &RuleSet,
    n: usize,
    line: Result<&str, Utf8Error>,
    fit: &mut MatchedFit,
    slots: &mut Vec<u32>,
) {
    let Ok(line) = line else {
        report.rejected += 1;
        return;
    };
    // Counted against the base rules' event types: the head's read theirs by name.
    let LeadLine { id, input } = read_lead(line, &base.events, EventTypes::Any);
    let Ok(input) = input else {
        report.rejected += 1;
        return;
    };
    let id = id.unwrap_or_else(|| format!("line {n}"));
    report.add(n, &id, &decide(base, &input, fit, slots), &decide(head, &input, fit, slots));
}

pub fn diff(dir: &Path, base: &str, leads: &str, format: DiffFormat, budget: Option<usize>) -> Result<ExitCode> {
    let head = RuleSet::load_dir(dir).map_err(|e| anyhow::anyhow!("the rules in {}: {e}", dir.display()))?;
    let (base_rules, base_name) = base_rules(base, dir)?;
    let reader: Box<dyn Read> = if leads == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(leads).with_context(|| format!("opening {leads}"))?)
    };
    let mut report = Report {
        base: format!("{base_name} ({})", base_rules.version),
        head: format!("{} ({})", dir.display(), head.version),
        capacity: capacities(&head),
        ..Report::default()
    };
    // Lines are read here and decided by one thread per core, a block at a time.
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get).min(8);
    let (send, receive) = std::sync::mpsc::sync_channel::<Block>(threads * 2);
    // Only the threads hold the receiver: if they all stop, sending fails
    // rather than waiting for ever.
    let receive = std::sync::Arc::new(std::sync::Mutex::new(receive));
    let (base_rules, head) = (&base_rules, &head);
    let parts = std::thread::scope(|scope| -> Result<Vec<Report>> {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let receive = std::sync::Arc::clone(&receive);
                scope.spawn(move || {
                    let mut part = Report::default();
                    let (mut fit, mut slots) = (MatchedFit::default(), Vec::new());
                    loop {
                        let block = match receive.lock().map(|r| r.recv()) {
                            Ok(Ok(block)) => block,
                            _ => break,
                        };
                        for (n, line) in block.lines() {
                            decide_line(&mut part, base_rules, head, n, line, &mut fit, &mut slots);
                        }
                    }
                    part
                })
            })
            .collect();
        drop(receive);
        let mut blocks = Blocks::new(reader);
        let read = loop {
            match blocks.next_block() {
                Ok(Some(block)) => {
                    if send.send(block).is_err() {
                        break Ok(());
                    }
                }
                Ok(None) => break Ok(()),
                Err(e) => {
                    break Err(
                        anyhow::Error::new(e).context(format!("reading the leads from line {}", blocks.next_line()))
                    );
                }
            }
        };
        drop(send);
        let parts = workers.into_iter().map(|w| w.join().map_err(|_| anyhow::anyhow!("a diff thread panicked")));
        let parts = parts.collect::<Result<Vec<Report>>>()?;
        read.map(|()| parts)
    })?;
    for part in parts {
        report.merge(part);
    }
    match format {
        DiffFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        DiffFormat::Text => print!("{}", report.text(false)),
        DiffFormat::Markdown => print!("{}", report.text(true)),
    }
    Ok(match budget {
        Some(b) if report.moved > b => ExitCode::from(OVER_BUDGET),
        _ if report.changed() => ExitCode::from(CHANGES),
        _ => ExitCode::SUCCESS,
    })
}
