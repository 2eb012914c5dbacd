//! `leadflow rules ...`: what RevOps runs on a pull request.

use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use leadflow_domain::rules::Evaluation;
use leadflow_domain::rules::input::{EventTypes, read_lead};
use leadflow_domain::rules::routing::{RouteMatch, TargetName};
use leadflow_domain::rules::scoring::MatchedFit;
use leadflow_domain::rules::testcases::{self, CaseOutcome};
use leadflow_domain::{RuleError, RuleSet};
use serde::Serialize;
use serde_json::{Value, json};

use crate::lines::Blocks;

/// Loads the rules, printing every problem; `None` when they are invalid.
fn load(dir: &Path) -> Result<Option<RuleSet>> {
    match RuleSet::load_dir(dir) {
        Ok(rules) => Ok(Some(rules)),
        Err(RuleError::Invalid(diags)) => {
            for d in diags.iter() {
                eprintln!("{}", located(dir, d));
            }
            eprintln!("{} problem{} in {}", diags.len(), if diags.len() == 1 { "" } else { "s" }, dir.display());
            Ok(None)
        }
        Err(e) => Err(e).context("loading rules"),
    }
}

/// A diagnostic with its file named as a path, so editors can jump to it.
fn located(dir: &Path, d: &leadflow_domain::Diagnostic) -> String {
    if d.file.is_empty() {
        return d.to_string();
    }
    let mut d = d.clone();
    d.file = dir.join(&d.file).display().to_string();
    d.to_string()
}

/// `leadflow rules schema`.
pub fn schema(out: &str) -> Result<ExitCode> {
    use leadflow_domain::rules::schema;
    let mut all = serde_json::Map::new();
    for (file, _) in schema::FILES {
        let value = schema::json_schema(file).context("a schema for every rule file")?;
        all.insert(file.to_owned(), value);
    }
    if out == "-" {
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(ExitCode::SUCCESS);
    }
    let dir = Path::new(out);
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (file, value) in all {
        let name = format!("{}.schema.json", file.trim_end_matches(".yaml"));
        let path = dir.join(&name);
        std::fs::write(&path, format!("{}\n", serde_json::to_string_pretty(&value)?))
            .with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `leadflow rules lint`.
pub fn lint(dir: &Path, today: chrono::NaiveDate, weeks: u32, deny_warnings: bool, json: bool) -> Result<ExitCode> {
    use leadflow_domain::rules::lint::{self, Level};
    let Some(rules) = load(dir)? else { return Ok(ExitCode::FAILURE) };
    let findings = lint::lint(&rules, today, weeks);
    if json {
        println!("{}", serde_json::to_string_pretty(&findings)?);
    } else {
        for f in &findings {
            let at = match f.line {
                Some(line) => format!("{}:{line}", dir.join(f.file).display()),
                None => dir.join(f.file).display().to_string(),
            };
            let level = match f.level {
                Level::Error => "error",
                Level::Warning => "warning",
            };
            println!("{at}: {level}[{}]: `{}`: {}", f.kind, f.rule, f.message);
        }
    }
    let errors = findings.iter().filter(|f| f.level == Level::Error).count();
    let warnings = findings.len() - errors;
    eprintln!("{errors} errors, {warnings} warnings (pools looked at from {today} for {weeks} weeks)");
    Ok(if errors > 0 || (deny_warnings && warnings > 0) { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

pub fn check(dir: &Path) -> Result<ExitCode> {
    let Some(rules) = load(dir)? else { return Ok(ExitCode::FAILURE) };
    println!(
        "{}: rules valid (version {}): {} fit rules, {} engagement types, {} tiers, {} reps, {} pools, {} routing rules, {} escalation steps",
        dir.display(),
        rules.version,
        rules.scoring.fit.len(),
        rules.scoring.engagement.len(),
        rules.scoring.tiers.len(),
        rules.routing.reps.len(),
        rules.routing.pools.len(),
        rules.routing.rules.len(),
        rules.sla.escalation.len(),
    );
    Ok(ExitCode::SUCCESS)
}

/// A share in percent, as written (`87.5` is 875/10), compared exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Percent {
    numerator: u128,
    denominator: u128,
}

impl Percent {
    /// Whether `covered` of `total` is at least this share.
    pub fn met_by(self, covered: usize, total: usize) -> bool {
        (covered as u128) * 100 * self.denominator >= self.numerator * (total as u128)
    }
}

impl std::str::FromStr for Percent {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a percentage from 0 to 100 (like 90 or 87.5)");
        let (whole, fraction) = s.trim().split_once('.').unwrap_or((s.trim(), ""));
        if whole.is_empty()
            || fraction.len() > 6
            || !(whole.chars().chain(fraction.chars()).all(|c| c.is_ascii_digit()))
        {
            return Err(bad());
        }
        let denominator = 10u128.pow(fraction.len() as u32);
        let numerator = format!("{whole}{fraction}").parse::<u128>().map_err(|_| bad())?;
        if numerator > 100 * denominator {
            return Err(bad());
        }
        Ok(Percent { numerator, denominator })
    }
}

impl std::fmt::Display for Percent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let places = self.denominator.ilog10() as usize;
        let (whole, rest) = (self.numerator / self.denominator, self.numerator % self.denominator);
        if places == 0 { write!(f, "{whole}%") } else { write!(f, "{whole}.{rest:0places$}%") }
    }
}

pub fn test(dir: &Path, min_coverage: Option<Percent>) -> Result<ExitCode> {
    let Some(rules) = load(dir)? else {
        println!("0 passed, 0 failed (the rules did not load)");
        return Ok(ExitCode::FAILURE);
    };
    let tests_dir = dir.join("tests");
    let mut files: Vec<_> = std::fs::read_dir(&tests_dir)
        .with_context(|| format!("reading {}", tests_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    let (mut passed, mut failed) = (0usize, 0usize);
    let mut hits: std::collections::BTreeMap<(&str, String), usize> = std::collections::BTreeMap::new();
    for path in files {
        let name = path.strip_prefix(dir).unwrap_or(&path).display().to_string();
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        match testcases::run_file(&rules, &name, &text) {
            Ok(outcomes) => {
                for o in outcomes {
                    if let Some(ex) = &o.explanation {
                        for hit in &ex.score.fit {
                            *hits.entry(("fit", hit.rule.clone())).or_default() += 1;
                        }
                        *hits.entry(("route", ex.route.rule.clone())).or_default() += 1;
                    }
                    if o.passed() {
                        passed += 1;
                    } else {
                        failed += 1;
                        print_failure(dir, &o);
                    }
                }
            }
            Err(d) => {
                failed += 1;
                println!("FAIL {}\n", located(dir, &d));
            }
        }
    }
    // Coverage: how many cases each fit and routing rule decided.
    let mut rows: Vec<(String, usize)> = Vec::new();
    for rule in &rules.scoring.fit {
        rows.push((format!("fit rule {}", rule.name), hits.get(&("fit", rule.name.clone())).copied().unwrap_or(0)));
    }
    for rule in rules.routing.rules.iter().map(|r| r.name.as_str()).chain(["default"]) {
        rows.push((format!("routing rule {rule}"), hits.get(&("route", rule.to_owned())).copied().unwrap_or(0)));
    }
    let covered = rows.iter().filter(|(_, n)| *n > 0).count();
    println!("coverage (cases per rule):");
    for (rule, n) in &rows {
        println!("  {n:>4}  {rule}");
    }
    let untested: Vec<&str> = rows.iter().filter(|(_, n)| *n == 0).map(|(r, _)| r.as_str()).collect();
    if !untested.is_empty() {
        println!("not matched by any test case: {}", untested.join(", "));
    }
    // Shown cut, never rounded up, to two decimals.
    let hundredths = covered * 10_000 / rows.len().max(1);
    println!("coverage: {covered} of {} rules ({}.{:02}%)", rows.len(), hundredths / 100, hundredths % 100);
    let below = min_coverage.is_some_and(|min| !min.met_by(covered, rows.len()));
    if let Some(min) = min_coverage.filter(|_| below) {
        println!("coverage is below --min-coverage {min}");
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 && !below { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn print_failure(dir: &Path, o: &CaseOutcome) {
    println!("FAIL {}: {}", dir.join(&o.file).display(), o.name);
    for e in &o.errors {
        println!("  error: {e}");
    }
    for m in &o.mismatches {
        println!("  {}: expected {}, got {}", m.what, m.expected, m.actual);
    }
    if let Some(ex) = &o.explanation {
        for line in ex.to_string().lines() {
            println!("  | {line}");
        }
    }
    println!();
}

fn read_input(source: &str) -> Result<String> {
    if source == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).context("reading standard input")?;
        Ok(s)
    } else {
        std::fs::read_to_string(source).with_context(|| format!("reading {source}"))
    }
}

pub fn explain(dir: &Path, lead: &str, as_json: bool) -> Result<ExitCode> {
    let Some(rules) = load(dir)? else { return Ok(ExitCode::FAILURE) };
    let text = read_input(lead)?;
    // YAML is a superset of JSON, so one parser reads both.
    let value: Value = match serde_yaml::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {lead}: not a YAML or JSON lead: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let input = match rules.lead_input(&value, EventTypes::Known) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: {lead}: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut slots = Vec::new();
    let events = input.events.slots_of(&rules.events, &mut slots);
    let mut facts = rules.facts(&input.profile, events, input.status, input.bant);
    let ex = rules.explain(&mut facts, input.idle_days);
    if as_json {
        println!("{}", serde_json::to_string_pretty(&ex)?);
    } else {
        println!("{ex}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The `route` of a line of `rules replay` output.
#[derive(Serialize)]
struct Route<'a> {
    rule: &'a str,
    #[serde(flatten)]
    target: TargetName,
}

/// Writes decisions as `rules replay` prints them, one JSON line each:
/// `{"score":..,"tier":..,"fit":[..],"route":{"rule":..,"pool"|"rep":..}}`.
/// Every name a line can hold is rendered as JSON once, when the rules are
/// loaded, so a line is the score's digits and copies of those.
struct DecisionLines {
    /// `"tier"` by tier.
    tiers: Vec<Vec<u8>>,
    /// `"name"` by fit rule.
    fit: Vec<Vec<u8>>,
    /// `{"rule":..,..}}` and a newline, by routing rule; the last for `default`.
    routes: Vec<Vec<u8>>,
}

impl DecisionLines {
    fn new(rules: &RuleSet) -> Result<Self> {
        let string = |s: &str| serde_json::to_vec(s);
        let route = |m: RouteMatch| -> serde_json::Result<Vec<u8>> {
            let target = rules.routing.target_name(rules.routing.target(m));
            let mut json = serde_json::to_vec(&Route { rule: rules.routing.rule_name(m), target })?;
            json.extend_from_slice(b"}\n");
            Ok(json)
        };
        let matches = (0..rules.routing.rules.len()).map(Some).chain([None]);
        Ok(DecisionLines {
            tiers: rules.scoring.tiers.iter().map(|t| string(&t.name)).collect::<Result<_, _>>()?,
            fit: rules.scoring.fit.iter().map(|r| string(&r.name)).collect::<Result<_, _>>()?,
            routes: matches.map(|rule| route(RouteMatch { rule })).collect::<Result<_, _>>()?,
        })
    }

    fn write(&self, out: &mut Vec<u8>, eval: &Evaluation, fit: &[usize]) {
        out.extend_from_slice(b"{\"score\":");
        out.extend_from_slice(itoa::Buffer::new().format(eval.score.total).as_bytes());
        out.extend_from_slice(b",\"tier\":");
        out.extend_from_slice(&self.tiers[eval.score.tier]);
        out.extend_from_slice(b",\"fit\":[");
        for (i, rule) in fit.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&self.fit[*rule]);
        }
        out.extend_from_slice(b"],\"route\":");
        out.extend_from_slice(&self.routes[eval.route.rule.unwrap_or(self.routes.len() - 1)]);
    }
}

pub fn replay(dir: &Path, leads: &str) -> Result<ExitCode> {
    let Some(rules) = load(dir)? else { return Ok(ExitCode::FAILURE) };
    let reader: Box<dyn Read> = if leads == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(leads).with_context(|| format!("opening {leads}"))?)
    };
    let lines = DecisionLines::new(&rules)?;
    let mut blocks = Blocks::new(reader);
    let mut stdout = std::io::stdout().lock();
    let mut out = Vec::with_capacity(1 << 17);
    let (mut decided, mut rejected) = (0u64, 0u64);
    let mut slots = Vec::new();
    let mut fit = MatchedFit::default();
    let started = Instant::now();
    loop {
        let block = match blocks.next_block() {
            Ok(Some(block)) => block,
            Ok(None) => break,
            Err(e) => {
                // What was decided stays decided.
                stdout.write_all(&out)?;
                stdout.flush()?;
                return Err(
                    anyhow::Error::new(e).context(format!("reading the leads from line {}", blocks.next_line()))
                );
            }
        };
        for (n, line) in block.lines() {
            let read = line.map_err(|e| format!("the line is not UTF-8 text: {e}"));
            let input = match read
                .and_then(|line| read_lead(line, &rules.events, EventTypes::Any).input.map_err(|e| e.to_string()))
            {
                Ok(input) => input,
                Err(error) => {
                    rejected += 1;
                    serde_json::to_writer(&mut out, &json!({ "line": n, "error": error }))?;
                    out.push(b'\n');
                    continue;
                }
            };
            let events = input.events.slots_of(&rules.events, &mut slots);
            let mut facts = rules.facts(&input.profile, events, input.status, input.bant);
            fit.0.clear();
            let eval = rules.evaluate(&mut facts, input.idle_days, &mut fit);
            lines.write(&mut out, &eval, &fit.0);
            decided += 1;
            if out.len() >= 1 << 16 {
                stdout.write_all(&out)?;
                out.clear();
            }
        }
    }
    stdout.write_all(&out)?;
    stdout.flush()?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "{decided} decisions, {rejected} rejected, in {:.3} s ({:.0} decisions/s, rules {})",
        secs,
        decided as f64 / secs.max(1e-9),
        rules.version
    );
    Ok(if rejected == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
