//! Decisions per second of the rule engine on two workloads, each against a
//! hand-written implementation of the same rules; and rules load time.
//!
//! - `starter`: the rules of `rules/` on leads with up to four event types.
//! - `saas`: the rules of `benches/saas/` (16 fit rules, 8 engagement terms,
//!   15 routing rules) on leads with 0 to 20 events each.
//!
//! Each workload prints the engine's throughput as a ratio of the reference's,
//! from criterion's estimates of the same run, and again from passes of both
//! taken in turn. `cargo bench -p leadflow-domain --bench engine`

mod support;

use std::path::{Path, PathBuf};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use leadflow_domain::rules::input::LeadInput;
use leadflow_domain::rules::scoring::MatchedFit;
use leadflow_domain::{RuleSet, RuleSources};

/// Leads per workload: 100,000, or `LEADFLOW_BENCH_LEADS` (a few thousand
/// keep them in the cache, which leaves the work per lead alone).
fn lead_count() -> usize {
    std::env::var("LEADFLOW_BENCH_LEADS").ok().and_then(|n| n.parse().ok()).unwrap_or(100_000)
}

fn rules_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../rules"))
}

fn saas_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/saas"))
}

/// The engine and the reference must decide the same for every lead, or the
/// comparison means nothing.
fn assert_reference_agrees(rules: &RuleSet, leads: &[LeadInput], reference: fn(&LeadInput) -> support::Decision) {
    let mut scratch = Vec::new();
    let mut fit = MatchedFit::default();
    for lead in leads {
        let events = lead.events.slots_of(&rules.events, &mut scratch);
        let mut facts = rules.facts(&lead.profile, events, lead.status, lead.bant);
        fit.0.clear();
        let eval = rules.evaluate(&mut facts, lead.idle_days, &mut fit);
        // As timed: told nothing.
        let mut untraced = rules.facts(&lead.profile, events, lead.status, lead.bant);
        assert_eq!(rules.evaluate(&mut untraced, lead.idle_days, &mut ()), eval);
        let engine = support::Decision {
            score: eval.score.total,
            tier: eval.score.tier,
            fit: fit.0.iter().fold(0, |bits, i| bits | 1 << i),
            route: eval.route.rule.unwrap_or(rules.routing.rules.len()),
        };
        assert_eq!(engine, reference(lead), "engine and reference differ on {:?} {:?}", lead.profile, lead.events);
    }
}

/// Benchmarks the engine and the reference on one workload, then prints the
/// ratio of their throughputs from criterion's estimates of this run.
fn workload(c: &mut Criterion, name: &str, dir: &Path, seed: u64, reference: fn(&LeadInput) -> support::Decision) {
    let rules = RuleSet::load_dir(dir).unwrap_or_else(|e| panic!("{name} rules load: {e}"));
    let (leads, slots) = match name {
        "saas" => (support::saas::generate(lead_count(), seed, &rules.events), support::saas::EVENT_SLOTS),
        _ => (support::generate(lead_count(), seed, &rules.events), support::EVENT_SLOTS),
    };
    assert_eq!(rules.events.names()[..slots.len()], slots, "the reference reads events by these slots");
    assert_reference_agrees(&rules, &leads, reference);

    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(lead_count() as u64));
    group.sample_size(20);
    group.bench_function("engine", |b| {
        let mut slots = Vec::new();
        b.iter(|| std::hint::black_box(engine_pass(&rules, &leads, &mut slots)))
    });
    group.bench_function("reference", |b| b.iter(|| std::hint::black_box(reference_pass(&leads, reference))));
    group.finish();
    print_ratio(name);
    // Not under `cargo test --benches`, nor when profiling one benchmark.
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--profile-time") {
        print_interleaved(name, &rules, &leads, reference);
    }
}

/// One pass of the engine over every lead.
#[inline(never)]
fn engine_pass(rules: &RuleSet, leads: &[LeadInput], scratch: &mut Vec<u32>) -> i64 {
    let mut sum = 0i64;
    for lead in leads {
        let events = lead.events.slots_of(&rules.events, scratch);
        let mut facts = rules.facts(&lead.profile, events, lead.status, lead.bant);
        let eval = rules.evaluate(&mut facts, lead.idle_days, &mut ());
        sum += eval.score.total + eval.route.rule.unwrap_or(99) as i64;
    }
    sum
}

/// One pass of the reference over every lead.
#[inline(never)]
fn reference_pass(leads: &[LeadInput], reference: fn(&LeadInput) -> support::Decision) -> i64 {
    leads.iter().map(reference).map(|d| d.score + d.route as i64).sum()
}

/// The ratio again, from passes of the engine and the reference taken in
/// turn, so that both meet the same moments of a noisy machine: the median of
/// the per-round ratios, and the ratio of each one's fastest pass (what a
/// pass costs when nothing else on the machine got in its way).
fn print_interleaved(name: &str, rules: &RuleSet, leads: &[LeadInput], reference: fn(&LeadInput) -> support::Decision) {
    let mut slots = Vec::new();
    let (mut ratios, mut fastest) = (Vec::new(), (f64::MAX, f64::MAX));
    for _ in 0..21 {
        let start = std::time::Instant::now();
        std::hint::black_box(engine_pass(rules, leads, &mut slots));
        let engine = start.elapsed().as_secs_f64();
        let start = std::time::Instant::now();
        std::hint::black_box(reference_pass(leads, reference));
        let reference = start.elapsed().as_secs_f64();
        ratios.push(reference / engine);
        fastest = (fastest.0.min(engine), fastest.1.min(reference));
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "{name}: interleaved, 21 rounds of both: ratio {:.2} (median; lowest {:.2}, highest {:.2}); \
         fastest passes {:.2} M/s and {:.2} M/s, ratio {:.2}",
        ratios[ratios.len() / 2],
        ratios[0],
        ratios[ratios.len() - 1],
        leads.len() as f64 / fastest.0 / 1e6,
        leads.len() as f64 / fastest.1 / 1e6,
        fastest.1 / fastest.0
    );
}

/// Where criterion keeps this run's estimate of one benchmark.
fn estimate_path(group: &str, function: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target")).to_path_buf());
    target.join("criterion").join(group).join(function).join("new/estimates.json")
}

/// Mean time per iteration, in nanoseconds, as criterion estimated it.
fn mean_ns(group: &str, function: &str) -> Option<f64> {
    let text = std::fs::read_to_string(estimate_path(group, function)).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["mean"]["point_estimate"].as_f64()
}

fn print_ratio(group: &str) {
    // Absent when criterion only tests the benchmarks (`cargo test --benches`).
    if let (Some(engine), Some(reference)) = (mean_ns(group, "engine"), mean_ns(group, "reference")) {
        let per_sec = |ns: f64| lead_count() as f64 / ns * 1e9;
        println!(
            "{group}: engine {:.2} M decisions/s, reference {:.2} M decisions/s, ratio {:.2}",
            per_sec(engine) / 1e6,
            per_sec(reference) / 1e6,
            reference / engine
        );
    }
}

fn decisions(c: &mut Criterion) {
    workload(c, "starter", rules_dir(), 42, support::decide);
    workload(c, "saas", saas_dir(), 7, support::saas::decide);
}

fn load(c: &mut Criterion) {
    let sources = RuleSources::from_dir(rules_dir()).expect("starter rules");
    let mut group = c.benchmark_group("rules");
    group.bench_function("compile", |b| {
        b.iter_batched(|| sources.clone(), |s| RuleSet::load(&s).expect("valid"), BatchSize::SmallInput)
    });
    group.bench_function("read_and_compile", |b| b.iter(|| RuleSet::load_dir(rules_dir()).expect("valid")));
    group.finish();
}

criterion_group!(benches, decisions, load);
criterion_main!(benches);
