//! `leadflow report`: the pipeline's figures over a period, from the daily
//! roll-ups (one item per day and dimension value; never the leads).

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::{Result, bail};
use chrono::{NaiveDate, Utc};
use leadflow_domain::report::{By, Durations, Figures, Report, report};

use leadflow_app::Rollups as _;

use crate::data_cmd::{Backend, runtime, with_app};
use crate::import_cmd::cell;

/// How the report is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// Tables for people.
    Text,
    /// Every figure, for programs.
    Json,
    /// One row per group, for spreadsheets.
    Csv,
}

/// The longest period a report covers (ten years of days).
const MAX_DAYS: i64 = 3660;

pub fn run(
    backend: &Backend,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    by: Option<By>,
    format: ReportFormat,
) -> Result<ExitCode> {
    for day in [from, to].into_iter().flatten() {
        if !(2000..=2200).contains(&chrono::Datelike::year(&day)) {
            bail!("{day} is not a day a report covers: years 2000 to 2200");
        }
    }
    let to = to.unwrap_or_else(|| Utc::now().date_naive());
    let from = from.unwrap_or(to - chrono::Duration::days(29));
    if from > to {
        bail!("--from {from} is after --to {to}");
    }
    if (to - from).num_days() >= MAX_DAYS {
        bail!("a report covers at most {MAX_DAYS} days; {from} to {to} is longer");
    }
    runtime()?.block_on(async {
        with_app!(backend, |app| {
            let started = std::time::Instant::now();
            // The total, and the rows' kind (weeks are the total's days).
            let kinds: Vec<&str> = match by {
                None | Some(By::Week) => vec!["all"],
                Some(by) => vec!["all", by.as_str()],
            };
            let read = app.store.rollups(from, to, &kinds).await?;
            let report = report(read.rollups.iter().map(|r| (&r.key, &r.counts)), from, to, by);
            let took = started.elapsed();
            match format {
                ReportFormat::Text => print!("{}", text(&report)),
                ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
                ReportFormat::Csv => csv_out(&report)?,
            }
            std::io::Write::flush(&mut std::io::stdout())?;
            let capacity = if read.capacity_units > 0.0 {
                format!(", {:.1} read capacity units", read.capacity_units)
            } else {
                String::new()
            };
            eprintln!(
                "{} roll-ups read in {} round trip(s){capacity}, {} ms",
                read.items_read,
                read.round_trips,
                took.as_millis()
            );
        });
        Ok(ExitCode::SUCCESS)
    })
}

/// `≤ 15m`, `> 7d` past the last bucket, `-` with none.
fn at_most(d: &Durations, p: Option<i64>) -> String {
    match p {
        _ if d.count == 0 => "-".to_owned(),
        Some(secs) => format!("≤ {}", span(secs)),
        None => "> 7d".to_owned(),
    }
}

fn span(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s < 86_400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        s if s % 86_400 < 3600 => format!("{}d", s / 86_400),
        s => format!("{}d{}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// An amount with two decimals and thousands separated: 1,234,567.50.
fn thousands(amount: f64) -> String {
    let fixed = format!("{:.2}", amount.abs());
    let (whole, cents) = fixed.split_once('.').unwrap_or((&fixed, "00"));
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{}{grouped}.{cents}", if amount < 0.0 { "-" } else { "" })
}

fn mean(d: &Durations) -> String {
    d.mean_secs.map_or_else(|| "-".to_owned(), span)
}

fn percent(r: Option<f64>) -> String {
    r.map_or_else(|| "-".to_owned(), |r| format!("{:.1}%", r * 100.0))
}

/// The report as tables: one line per group with the headline figures, then
/// the funnel, time in status, disqualification reasons, calibration and
/// amounts of the whole period.
pub fn text(r: &Report) -> String {
    let mut out = String::new();
    let by = r.by.map_or_else(String::new, |b| format!(" by {b}"));
    let _ = writeln!(out, "Pipeline {} to {}{by}\n", r.from, r.to);
    let head = r.by.map_or("", By::as_str);
    let _ = writeln!(
        out,
        "{:<24} {:>8} {:>9} {:>8} {:>9} {:>9} {:>8} {:>9} {:>9} {:>6} {:>8} {:>9} {:>9} {:>5} {:>5}",
        head,
        "captured",
        "hand-offs",
        "contacts",
        "speed p50",
        "speed p90",
        "mean",
        "in target",
        "breached",
        "escal.",
        "reassign",
        "qualified",
        "converted",
        "won",
        "lost"
    );
    for row in r.rows.iter().chain(std::iter::once(&r.total)) {
        let f = &row.figures;
        let name: String = row.name.chars().take(24).collect();
        let _ = writeln!(
            out,
            "{:<24} {:>8} {:>9} {:>8} {:>9} {:>9} {:>8} {:>9} {:>9} {:>6} {:>8} {:>9} {:>9} {:>5} {:>5}",
            name,
            f.captured,
            f.handoffs,
            f.first_contacts,
            at_most(&f.speed_to_lead, f.speed_to_lead.p50_at_most_secs),
            at_most(&f.speed_to_lead, f.speed_to_lead.p90_at_most_secs),
            mean(&f.speed_to_lead),
            percent(f.within_target),
            percent(f.sla_breach_rate),
            f.escalations,
            f.reassignments,
            f.qualified,
            f.converted,
            f.won,
            f.lost
        );
    }
    let f = &r.total.figures;
    section(&mut out, f);
    if r.by == Some(By::Source) && r.rows.iter().any(|row| row.figures.disqualified > 0) {
        let _ = writeln!(out, "\nDisqualification reasons by source");
        for row in r.rows.iter().filter(|row| row.figures.disqualified > 0) {
            let reasons: Vec<String> =
                row.figures.disqualified_by_reason.iter().map(|(reason, n)| format!("{reason} {n}")).collect();
            let _ = writeln!(out, "  {:<24} {}", row.name, reasons.join(", "));
        }
    }
    out
}

fn section(out: &mut String, f: &Figures) {
    let _ = writeln!(out, "\nFunnel                      count  from previous");
    for step in &f.funnel {
        let name = match step.step {
            "reached_handoff" => "reached the hand-off tier",
            other => other,
        };
        let _ = writeln!(out, "  {name:<25} {:>6}  {:>13}", step.count, percent(step.rate_from_previous));
    }
    let _ = writeln!(
        out,
        "\nSpeed to lead in business time: p50 {}, p90 {}, mean {}",
        at_most(&f.speed_to_lead_business, f.speed_to_lead_business.p50_at_most_secs),
        at_most(&f.speed_to_lead_business, f.speed_to_lead_business.p90_at_most_secs),
        mean(&f.speed_to_lead_business)
    );
    let _ = writeln!(
        out,
        "SLA: {} hand-offs met their deadline, {} breached ({}); {} escalations, {} reassignments",
        f.sla_met,
        f.sla_breached,
        percent(f.sla_breach_rate),
        f.escalations,
        f.reassignments
    );
    let _ = writeln!(
        out,
        "Unassigned: {} leads went to the queue; waited p50 {}, p90 {}, mean {}",
        f.unassigned,
        at_most(&f.unassigned_time, f.unassigned_time.p50_at_most_secs),
        at_most(&f.unassigned_time, f.unassigned_time.p90_at_most_secs),
        mean(&f.unassigned_time)
    );
    let _ = writeln!(out, "Dormant: {} went dormant, {} were re-activated", f.dormant, f.reactivated);
    if !f.time_in_status.is_empty() {
        let _ = writeln!(out, "\nTime in status (when left)  count        p50        p90       mean");
        for (status, d) in &f.time_in_status {
            let _ = writeln!(
                out,
                "  {status:<25} {:>6} {:>10} {:>10} {:>10}",
                d.count,
                at_most(d, d.p50_at_most_secs),
                at_most(d, d.p90_at_most_secs),
                mean(d)
            );
        }
    }
    if !f.disqualified_by_reason.is_empty() {
        let _ = writeln!(out, "\nDisqualified: {}", f.disqualified);
        for (reason, n) in &f.disqualified_by_reason {
            let _ = writeln!(out, "  {reason:<25} {n:>6}");
        }
    }
    if !f.calibration.is_empty() {
        let _ = writeln!(out, "\nCalibration (score at first hand-off)");
        let _ = writeln!(
            out,
            "  {:<10} {:>9} {:>9} {:>10} {:>5} {:>5} {:>8}",
            "band", "hand-offs", "converted", "conversion", "won", "lost", "win rate"
        );
        for b in &f.calibration {
            let band = format!("{}-{}", b.band, b.band + leadflow_domain::facts::BAND_WIDTH - 1);
            let _ = writeln!(
                out,
                "  {band:<10} {:>9} {:>9} {:>10} {:>5} {:>5} {:>8}",
                b.handoffs,
                b.converted,
                percent(b.conversion_rate),
                b.won,
                b.lost,
                percent(b.win_rate)
            );
        }
    }
    for (currency, amount) in &f.won_amount {
        let _ = writeln!(out, "Won: {} {currency}", thousands(*amount));
    }
}

const CSV_HEADER: [&str; 33] = [
    "group",
    "captured",
    "reached_handoff",
    "handoffs",
    "first_handoffs",
    "first_contacts",
    "speed_p50_at_most_secs",
    "speed_p90_at_most_secs",
    "speed_mean_secs",
    "speed_business_p50_at_most_secs",
    "speed_business_p90_at_most_secs",
    "speed_business_mean_secs",
    "within_target",
    "sla_met",
    "sla_breached",
    "sla_breach_rate",
    "escalations",
    "reassignments",
    "unassigned",
    "unassigned_p50_at_most_secs",
    "unassigned_p90_at_most_secs",
    "unassigned_mean_secs",
    "qualified",
    "converted",
    "won",
    "lost",
    "disqualified",
    "dormant",
    "reactivated",
    "reached_handoff_rate",
    "qualified_rate",
    "converted_rate",
    "won_rate",
];

fn csv_out(r: &Report) -> Result<()> {
    let mut w = csv::Writer::from_writer(std::io::stdout().lock());
    w.write_record(CSV_HEADER)?;
    let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    let rate = |v: Option<f64>| v.map(|v| format!("{v:.4}")).unwrap_or_default();
    // p50, p90 and mean, as three cells.
    let spread = |d: &Durations| [opt(d.p50_at_most_secs), opt(d.p90_at_most_secs), opt(d.mean_secs)];
    for row in r.rows.iter().chain(std::iter::once(&r.total)) {
        let f = &row.figures;
        let ([s50, s90, smean], [b50, b90, bmean], [u50, u90, umean]) =
            (spread(&f.speed_to_lead), spread(&f.speed_to_lead_business), spread(&f.unassigned_time));
        let funnel = |i: usize| rate(f.funnel.get(i).and_then(|s| s.rate_from_previous));
        w.write_record([
            cell(&row.name),
            f.captured.to_string(),
            f.reached_handoff.to_string(),
            f.handoffs.to_string(),
            f.first_handoffs.to_string(),
            f.first_contacts.to_string(),
            s50,
            s90,
            smean,
            b50,
            b90,
            bmean,
            rate(f.within_target),
            f.sla_met.to_string(),
            f.sla_breached.to_string(),
            rate(f.sla_breach_rate),
            f.escalations.to_string(),
            f.reassignments.to_string(),
            f.unassigned.to_string(),
            u50,
            u90,
            umean,
            f.qualified.to_string(),
            f.converted.to_string(),
            f.won.to_string(),
            f.lost.to_string(),
            f.disqualified.to_string(),
            f.dormant.to_string(),
            f.reactivated.to_string(),
            funnel(1),
            funnel(2),
            funnel(3),
            funnel(4),
        ])?;
    }
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_and_amounts_read_as_people_write_them() {
        let spans: Vec<String> = [30, 60, 900, 3600, 5400, 86_400, 86_400 + 7200, 604_800].map(span).to_vec();
        assert_eq!(spans, ["30s", "1m", "15m", "1h", "1h30m", "1d", "1d2h", "7d"]);
        assert_eq!(thousands(6_494_200.0), "6,494,200.00");
        assert_eq!(thousands(999.5), "999.50");
        assert_eq!(thousands(1000.0), "1,000.00");
    }
}
