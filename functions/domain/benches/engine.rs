//! Decisions per second of the rule engine on the starter rules, against a
//! hand-written implementation of the same rules; and rules load time.
//!
//! `cargo bench -p leadflow-domain`

mod support;

use std::path::Path;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use leadflow_domain::rules::scoring::MatchedFit;
use leadflow_domain::{RuleSet, RuleSources};

const LEADS: usize = 100_000;

fn rules_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../rules"))
}

/// The engine and the reference must decide the same for every lead, or the
/// comparison means nothing.
fn assert_reference_agrees(rules: &RuleSet, leads: &[leadflow_domain::rules::input::LeadInput]) {
    let mut slots = Vec::new();
    let mut fit = MatchedFit::default();
    for lead in leads {
        rules.event_slots(&lead.events, &mut slots);
        let mut facts = rules.facts(&lead.profile, &slots, lead.status, lead.bant);
        fit.0.clear();
        let eval = rules.evaluate(&mut facts, lead.idle_days, &mut fit);
        let engine = support::Decision {
            score: eval.score.total,
            tier: eval.score.tier,
            fit: fit.0.iter().fold(0, |bits, i| bits | 1 << i),
            route: eval.route.rule.unwrap_or(rules.routing.rules.len()),
        };
        assert_eq!(engine, support::decide(lead), "engine and reference differ on {:?}", lead.profile);
    }
}

fn decisions(c: &mut Criterion) {
    let rules = RuleSet::load_dir(rules_dir()).expect("starter rules load");
    let leads = support::generate(LEADS, 42);
    assert_reference_agrees(&rules, &leads);

    let mut group = c.benchmark_group("decisions");
    group.throughput(Throughput::Elements(LEADS as u64));
    group.sample_size(20);
    group.bench_function("engine", |b| {
        let mut slots = Vec::new();
        b.iter(|| {
            let mut sum = 0i64;
            for lead in &leads {
                rules.event_slots(&lead.events, &mut slots);
                let mut facts = rules.facts(&lead.profile, &slots, lead.status, lead.bant);
                let eval = rules.evaluate(&mut facts, lead.idle_days, &mut ());
                sum += eval.score.total + eval.route.rule.unwrap_or(9) as i64;
            }
            std::hint::black_box(sum)
        })
    });
    group.bench_function("reference", |b| {
        b.iter(|| {
            let mut sum = 0i64;
            for lead in &leads {
                let d = support::decide(lead);
                sum += d.score + d.route as i64;
            }
            std::hint::black_box(sum)
        })
    });
    group.finish();
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
