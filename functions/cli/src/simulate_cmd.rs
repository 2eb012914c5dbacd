//! `leadflow simulate`: a generated pipeline, played through the service as
//! real traffic would be: leads arriving over a period on form posts, some
//! engaging later, reps responding after realistic delays (or not at all),
//! leads qualifying, converting and closing, the SLA check every hour and the
//! clean-up every night. Every step is a real decision, saved with its roll-up
//! counts, so that reports and the dashboard can be tried and measured on a
//! store of any size. It refuses a store that holds leads already.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Result, bail};
use chrono::{DateTime, Datelike, Duration, NaiveDate, Timelike, Utc};
use leadflow_app::{Happening, Leadflow, Leads as _, Notifier, ServiceError, Store};
use leadflow_domain::lead::Bant;
use leadflow_domain::rules::lifecycle::{DealOutcome, SalesEvent};
use leadflow_domain::{Email, LeadId, Profile, Status};

use crate::data_cmd::{Backend, NotifySpec, runtime, with_app};

/// What to generate.
#[derive(Clone, Debug)]
pub struct Plan {
    pub leads: usize,
    pub from: NaiveDate,
    pub days: u32,
    pub seed: u64,
    pub parallel: usize,
}

/// Something that happens to one lead at a time.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    /// The form post that creates lead `n`.
    Arrive(usize),
    /// The lead does something on the website (events that score).
    Engage(LeadId),
    /// Looks whether an unassigned lead found a rep (the SLA check routes it).
    Look(LeadId, u8),
    /// Its rep calls; `attempts` unanswered calls came first.
    Contact(LeadId, u8),
    Qualify(LeadId),
    Convert(LeadId),
    Close(LeadId),
    Disqualify(LeadId),
    /// Sales hands the lead back to marketing.
    Nurture(LeadId),
}

#[derive(Default)]
struct Totals {
    decisions: u64,
    refused: u64,
}

const TITLES: [(&str, u32); 10] = [
    ("VP Sales", 6),
    ("Head of Growth", 6),
    ("Marketing Manager", 14),
    ("Software Engineer", 16),
    ("CTO", 4),
    ("Director of Operations", 6),
    ("Analyst", 18),
    ("Founder", 5),
    ("Intern", 5),
    ("Consultant", 20),
];
const INDUSTRIES: [(&str, u32); 8] = [
    ("software", 20),
    ("saas", 15),
    ("fintech", 8),
    ("e-commerce", 8),
    ("retail", 12),
    ("healthcare", 12),
    ("education", 10),
    ("manufacturing", 15),
];
const COUNTRIES: [(&str, u32); 10] =
    [("US", 40), ("CA", 6), ("GB", 10), ("DE", 9), ("FR", 5), ("NL", 4), ("SE", 3), ("IN", 10), ("BR", 7), ("AU", 6)];
const SOURCES: [(&str, u32); 7] = [
    ("organic", 30),
    ("google_ads", 25),
    ("webinar", 12),
    ("linkedin", 12),
    ("referral", 8),
    ("partner", 6),
    ("trade_show", 7),
];
const REASONS: [(&str, u32); 5] =
    [("no_budget", 35), ("no_need", 25), ("unreachable", 20), ("competitor_research", 10), ("out_of_territory", 10)];

fn pick<T: Copy>(rng: &mut fastrand::Rng, table: &[(T, u32)]) -> T {
    let total: u32 = table.iter().map(|(_, w)| w).sum();
    let mut at = rng.u32(0..total);
    for (value, weight) in table {
        if at < *weight {
            return *value;
        }
        at -= weight;
    }
    table[0].0
}

fn minutes(rng: &mut fastrand::Rng, from: i64, to: i64) -> Duration {
    Duration::seconds(rng.i64(from * 60..to * 60))
}

/// How long a rep takes to first respond: mostly minutes, a tail of hours
/// and days, and some never do.
fn response(rng: &mut fastrand::Rng) -> Option<Duration> {
    match rng.u32(0..100) {
        0..55 => Some(minutes(rng, 1, 15)),
        55..75 => Some(minutes(rng, 15, 60)),
        75..90 => Some(minutes(rng, 60, 8 * 60)),
        90..95 => Some(minutes(rng, 8 * 60, 48 * 60)),
        _ => None,
    }
}

/// When lead `n` arrives: weekdays three times as busy as weekends, mostly
/// in American working hours.
fn arrival(rng: &mut fastrand::Rng, plan: &Plan) -> DateTime<Utc> {
    loop {
        let day = plan.from + Duration::days(i64::from(rng.u32(0..plan.days)));
        let weekend = day.weekday().number_from_monday() > 5;
        if weekend && rng.u32(0..3) > 0 {
            continue;
        }
        let hour = if rng.u32(0..10) < 7 { rng.u32(13..23) } else { rng.u32(0..24) };
        let at = day.and_hms_opt(hour, rng.u32(0..60), rng.u32(0..60)).unwrap_or_default().and_utc();
        return at;
    }
}

fn profile(rng: &mut fastrand::Rng, n: usize, leads: usize) -> Result<Profile> {
    // Some companies send several people (account matching keeps them together).
    let company = rng.usize(0..(leads * 4 / 5).max(1));
    let mut p = Profile::new(Email::parse(&format!("p{n}@co{company}.example"))?);
    p.company = Some(format!("Company {company}"));
    p.first_name = Some(format!("Person{n}"));
    p.job_title = Some(pick(rng, &TITLES).to_owned());
    p.industry = Some(pick(rng, &INDUSTRIES).to_owned());
    p.country = Some(leadflow_domain::CountryCode::parse(pick(rng, &COUNTRIES))?);
    p.employees = Some(match rng.u32(0..10) {
        0..4 => rng.i64(2..20),
        4..7 => rng.i64(20..200),
        7..9 => rng.i64(200..1000),
        _ => rng.i64(1000..50_000),
    });
    p.source = Some(pick(rng, &SOURCES).to_owned());
    Ok(p)
}

pub fn run(backend: &Backend, plan: &Plan) -> Result<ExitCode> {
    if !matches!(backend.notify, NotifySpec::Log(_)) {
        bail!("simulate sends no real messages: use --notify log:PATH");
    }
    if plan.leads == 0 || plan.days == 0 {
        bail!("--leads and --days must be at least 1");
    }
    runtime()?.block_on(async {
        with_app!(backend, |app| {
            let (stored, _) = app.store.page(None, 1).await?;
            if !stored.is_empty() {
                bail!("the store holds leads already: simulate fills an empty store only");
            }
            simulate(app, plan).await?;
        });
        Ok(ExitCode::SUCCESS)
    })
}

async fn simulate<S, N>(app: Arc<Leadflow<S, N>>, plan: &Plan) -> Result<()>
where
    S: Store + Send + Sync + 'static,
    N: Notifier + Send + Sync + 'static,
{
    let started = std::time::Instant::now();
    let mut rng = fastrand::Rng::with_seed(plan.seed);
    let mut queue: BinaryHeap<Reverse<(DateTime<Utc>, u64, Step)>> = BinaryHeap::new();
    let mut order = 0u64;
    for n in 0..plan.leads {
        let at = arrival(&mut rng, plan);
        queue.push(Reverse((at, order, Step::Arrive(n))));
        order += 1;
    }
    let start = plan.from.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    let end = start + Duration::days(i64::from(plan.days));
    let mut totals = Totals::default();
    let mut hour = start;
    while hour < end {
        let next = hour + Duration::hours(1);
        // Everything due this hour, in waves: a lead's next step is planned
        // when its last one is done, so one lead never races itself.
        loop {
            let mut wave = Vec::new();
            while let Some(Reverse((at, _, _))) = queue.peek() {
                if *at >= next {
                    break;
                }
                let Some(Reverse((at, _, step))) = queue.pop() else { break };
                wave.push((at, step, rng.u64(..)));
            }
            if wave.is_empty() {
                break;
            }
            for chunk in wave.chunks(plan.parallel.max(1)) {
                let runs = chunk.iter().map(|(at, step, seed)| play(&app, plan, step.clone(), *at, *seed));
                for result in futures_util::future::join_all(runs).await {
                    let (followups, decided) = result?;
                    if decided {
                        totals.decisions += 1;
                    } else {
                        totals.refused += 1;
                    }
                    for (at, step) in followups.into_iter().filter(|(at, _)| *at < end) {
                        queue.push(Reverse((at, order, step)));
                        order += 1;
                    }
                }
            }
        }
        let report = app.sla_check(next).await?;
        totals.decisions += report.leads_changed as u64;
        if next.hour() == 2 {
            let report = app.cleanup(next).await?;
            totals.decisions += report.leads_changed as u64;
            if next.day() == 1 {
                eprintln!(
                    "{}: {} decisions so far, {:.0} s",
                    next.date_naive(),
                    totals.decisions,
                    started.elapsed().as_secs_f64()
                );
            }
        }
        hour = next;
    }
    eprintln!(
        "{} leads over {} days: {} decisions saved, {} steps refused by the lifecycle, in {:.1} s",
        plan.leads,
        plan.days,
        totals.decisions,
        totals.refused,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Plays one step at `at`; returns the lead's next steps, and whether the
/// step was a decision (a step the lead's state no longer takes is not).
async fn play<S: Store, N: Notifier>(
    app: &Leadflow<S, N>,
    plan: &Plan,
    step: Step,
    at: DateTime<Utc>,
    seed: u64,
) -> Result<(Vec<(DateTime<Utc>, Step)>, bool)> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut next = Vec::new();
    let sales = |event: SalesEvent, id: LeadId| async move {
        let result = app.record(&id, Happening::Sales(&event), at, None, at).await;
        match result {
            Ok(r) => Ok(r.map(|r| (r.result.status, id))),
            Err(ServiceError::Refused(_)) => Ok(None),
            Err(e) => Err(anyhow::Error::from(e)),
        }
    };
    // What a lead's status asks for next.
    let after =
        |status: Status, id: LeadId, rng: &mut fastrand::Rng, next: &mut Vec<(DateTime<Utc>, Step)>| match status {
            Status::Assigned => {
                if let Some(delay) = response(rng) {
                    let attempts = if rng.u32(0..10) == 0 { rng.u8(1..3) } else { 0 };
                    next.push((at + delay, Step::Contact(id, attempts)));
                }
            }
            Status::Unassigned => next.push((at + minutes(rng, 60, 6 * 60), Step::Look(id, 0))),
            Status::Nurturing | Status::Dormant if rng.u32(0..100) < 30 => {
                next.push((at + minutes(rng, 60, 45 * 24 * 60), Step::Engage(id)));
            }
            _ => {}
        };
    let decided = match step {
        Step::Arrive(n) => {
            let profile = profile(&mut rng, n, plan.leads)?;
            let outcome = app.capture(profile, &[], at).await?;
            after(outcome.lead.status, outcome.lead.id.clone(), &mut rng, &mut next);
            true
        }
        Step::Engage(id) => {
            let kind = pick(&mut rng, &[("pricing_page_view", 5), ("demo_request", 2), ("webinar_attended", 3)]);
            let counts = [(kind.to_owned(), rng.u32(1..3))];
            match app.record(&id, Happening::Engagement(&counts), at, None, at).await? {
                Some(r) => {
                    after(r.result.status, id, &mut rng, &mut next);
                    true
                }
                None => false,
            }
        }
        Step::Look(id, looks) => {
            match app.store.get(&id).await? {
                Some(lead) if lead.status == Status::Assigned => after(Status::Assigned, id, &mut rng, &mut next),
                Some(lead) if lead.status == Status::Unassigned && looks < 40 => {
                    next.push((at + minutes(&mut rng, 60, 6 * 60), Step::Look(id, looks + 1)));
                }
                _ => {}
            }
            false
        }
        Step::Contact(id, attempts) if attempts > 0 => {
            let done = sales(SalesEvent::ContactAttempt, id.clone()).await?;
            if done.is_some() {
                next.push((at + minutes(&mut rng, 30, 24 * 60), Step::Contact(id, attempts - 1)));
            }
            done.is_some()
        }
        Step::Contact(id, _) => match sales(SalesEvent::Contacted, id).await? {
            Some((_, id)) => {
                // Reps work a contacted lead to a decision within days.
                match rng.u32(0..100) {
                    0..45 => next.push((at + minutes(&mut rng, 4 * 60, 6 * 24 * 60), Step::Qualify(id))),
                    45..80 => next.push((at + minutes(&mut rng, 2 * 60, 4 * 24 * 60), Step::Disqualify(id))),
                    _ => next.push((at + minutes(&mut rng, 24 * 60, 7 * 24 * 60), Step::Nurture(id))),
                }
                true
            }
            None => false,
        },
        Step::Qualify(id) => {
            let bant = Bant { budget: Some(true), authority: Some(true), need: Some(true), timeline: Some(true) };
            match sales(SalesEvent::Qualified(bant), id).await? {
                Some((_, id)) => {
                    match rng.u32(0..100) {
                        0..55 => next.push((at + minutes(&mut rng, 7 * 24 * 60, 45 * 24 * 60), Step::Convert(id))),
                        55..70 => next.push((at + minutes(&mut rng, 2 * 24 * 60, 20 * 24 * 60), Step::Disqualify(id))),
                        _ => {}
                    }
                    true
                }
                None => false,
            }
        }
        Step::Convert(id) => match sales(SalesEvent::Converted, id).await? {
            Some((_, id)) => {
                next.push((at + minutes(&mut rng, 10 * 24 * 60, 60 * 24 * 60), Step::Close(id)));
                true
            }
            None => false,
        },
        Step::Close(id) => {
            let won = rng.u32(0..100) < 40;
            let amount = (rng.u32(50..1200) * 100).to_string();
            let deal = DealOutcome::parse(if won { "won" } else { "lost" }, Some(&amount), Some("USD"))
                .map_err(anyhow::Error::msg)?;
            sales(SalesEvent::Outcome(deal), id).await?.is_some()
        }
        Step::Nurture(id) => sales(SalesEvent::Nurture, id).await?.is_some(),
        Step::Disqualify(id) => {
            let reason = pick(&mut rng, &REASONS).to_owned();
            sales(SalesEvent::Disqualified { reason }, id).await?.is_some()
        }
    };
    Ok((next, decided))
}
