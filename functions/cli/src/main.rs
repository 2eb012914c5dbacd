//! `leadflow`: the command line for RevOps and developers.

mod data_cmd;
mod diff_cmd;
mod import_cmd;
mod infra_cmd;
mod lines;
mod report_cmd;
mod rules_cmd;
mod serve_cmd;
mod simulate_cmd;
mod web_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use leadflow_domain::Status;
use leadflow_domain::team::TeamChange;

use crate::data_cmd::Backend;

#[derive(Debug, Parser)]
#[command(name = "leadflow", version, about = "Serverless lead management: capture, score, route and hand off leads.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP API locally, with the SLA check on a timer.
    ///
    /// Serves POST /leads and POST /events exactly as the Lambdas do, the web
    /// app for reps and managers (action links at /a/..., sign-in at
    /// /app/signin), and a sample lead form at /. By default leads are stored in
    /// .leadflow/leads.db and notifications appended to .leadflow/outbox.jsonl;
    /// links are signed with APP_SECRET or a secret kept in web.json beside the store.
    /// /events signatures use EVENTS_SECRET; without it a secret is generated
    /// and printed. The rules are reloaded when a file of --rules changes or on
    /// SIGHUP; a set that does not load is refused (every problem logged) and the
    /// running rules go on. Every log line names the rules version it ran under.
    /// Stops gracefully on Ctrl-C or SIGTERM.
    Serve(serve_cmd::ServeArgs),
    /// Run the SLA check once: escalations due at TIME, pending notifications.
    SlaCheck {
        #[command(flatten)]
        backend: Backend,
        /// The time to check at (RFC 3339), like 2026-03-02T15:00:00Z.
        #[arg(long, value_name = "TIME")]
        now: DateTime<Utc>,
    },
    /// Run the nightly clean-up once: decay, dormancy, capacity released.
    Cleanup {
        #[command(flatten)]
        backend: Backend,
        /// The time to clean up at (RFC 3339).
        #[arg(long, value_name = "TIME")]
        now: DateTime<Utc>,
    },
    /// Check the store's invariants; with --repair, fix what can be fixed.
    ///
    /// Reports every lead without derived state (no valid tier), every lead
    /// nurturing with no owner at the hand-off tier, open leads without an
    /// owner, running clocks the SLA check cannot find, versions with no
    /// history, reps' open-lead counts that disagree with the leads, and
    /// notifications unsent past their lease. --repair derives broken leads
    /// again (handing them off), sets the counts to what the leads say and
    /// retries the notifications. Exits 1 when a problem is left unrepaired.
    Doctor {
        #[command(flatten)]
        backend: Backend,
        /// Fix what can be fixed.
        #[arg(long)]
        repair: bool,
        /// The time to check at (RFC 3339); default now.
        #[arg(long, value_name = "TIME")]
        now: Option<DateTime<Utc>>,
        /// Print the findings as a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// List notifications waiting to be published and the dead letters.
    ///
    /// A notification that failed every allowed attempt (8) is a dead letter:
    /// never retried, listed here, and the managers were alerted once.
    Outbox {
        #[command(flatten)]
        backend: Backend,
        /// The time to list pending notifications at (RFC 3339); default now.
        #[arg(long, value_name = "TIME")]
        now: Option<DateTime<Utc>>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The pipeline's figures over a period: speed to lead, SLA, funnel, calibration.
    ///
    /// Read from the daily roll-ups every decision updates in the same write
    /// (one item per day and rep, pool, tier or source; never the leads), so
    /// a year reads in a moment. Speed to lead is first hand-off to first
    /// contact; percentiles are the upper bound of fixed buckets (1m, 2m, 5m,
    /// 10m, 15m, 30m, 1h, 2h, 4h, 8h, 1d, 2d, 7d), means are exact. Every
    /// count is of what happened in the period, on the day it happened (UTC).
    /// Prints the roll-ups read and the time taken on standard error.
    Report {
        #[command(flatten)]
        backend: Backend,
        /// The first day (default: 29 days before --to).
        #[arg(long, value_name = "DATE")]
        from: Option<chrono::NaiveDate>,
        /// The last day, included (default: today, UTC).
        #[arg(long, value_name = "DATE")]
        to: Option<chrono::NaiveDate>,
        /// A row per rep, pool, tier, first-touch source or ISO week (by its Monday).
        #[arg(long, value_name = "rep|pool|tier|source|week")]
        by: Option<leadflow_domain::report::By>,
        #[arg(long, value_enum, default_value = "text")]
        format: report_cmd::ReportFormat,
    },
    /// Fill an empty store with a generated pipeline, played as real traffic.
    ///
    /// Leads arrive on form posts over the period (weekdays busier, mostly in
    /// American working hours), some engage later, reps respond after
    /// realistic delays or not at all, leads qualify, convert and close won or
    /// lost; the SLA check runs every hour and the clean-up every night. Every
    /// step is a real decision through the same service as the functions, so
    /// reports and the dashboard can be tried and measured at any size.
    /// Refuses a store that holds leads, and any notifier but a log.
    Simulate {
        #[command(flatten)]
        backend: Backend,
        /// How many leads arrive.
        #[arg(long, default_value_t = 5000)]
        leads: usize,
        /// The first day.
        #[arg(long, value_name = "DATE")]
        from: chrono::NaiveDate,
        /// How many days the pipeline runs.
        #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=3660))]
        days: u32,
        /// The same seed gives the same pipeline.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Steps played at once.
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
        parallel: u16,
    },
    /// List or show stored leads.
    #[command(subcommand)]
    Leads(LeadsCommand),
    /// Show or change the team at runtime: availability, away dates, capacity.
    ///
    /// Changes are stored (with who made them) over routing.yaml, which still
    /// says who exists and the pools, and take effect at the next routing
    /// decision, with no deploy. Managers make the same changes on the web
    /// app's team page.
    #[command(subcommand)]
    Team(TeamCommand),
    /// Check, test and explain the rule files RevOps edits.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Create the DynamoDB table (for emulators and dev accounts).
    #[command(subcommand)]
    Table(TableCommand),
    /// Generate the reps' SNS subscriptions from routing.yaml.
    ///
    /// Writes a CloudFormation template with one SMS and one email subscription
    /// per rep with a phone or email, each with a filter policy on the `owner`
    /// message attribute. The checked-in infra/subscriptions.yaml is this
    /// command's output; a test fails when it is stale.
    Subscriptions {
        #[command(flatten)]
        dir: RulesDir,
        /// Where to write; `-` prints it.
        #[arg(long, value_name = "FILE|-", default_value = "infra/subscriptions.yaml")]
        out: String,
    },
}

#[derive(Debug, Subcommand)]
enum LeadsCommand {
    /// Every stored lead that matches, newest first.
    List {
        #[command(flatten)]
        backend: Backend,
        /// Only leads with this status.
        #[arg(long, value_name = "STATUS")]
        status: Option<Status>,
        /// Only leads this rep owns.
        #[arg(long, value_name = "REP")]
        owner: Option<String>,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Every stored lead, streamed a page at a time, for backtests and spreadsheets.
    ///
    /// JSON Lines (default): one lead per line in the shape `rules replay` reads
    /// (`lead` with its profile, status and BANT; `events`; `idle_days` at
    /// --now), with its `id` and what was `stored` (owner, pool, score, tier,
    /// version, times); with --history, its events and decisions too. CSV: one
    /// row per lead with a column per profile field, status, owner, score, tier,
    /// times, and the events and custom fields as JSON. The count goes to
    /// standard error.
    Export {
        #[command(flatten)]
        backend: Backend,
        #[arg(long, value_enum, default_value = "jsonl")]
        format: ExportFormat,
        /// Add each lead's history (JSON Lines only).
        #[arg(long)]
        history: bool,
        /// The time idle days are counted to (RFC 3339); default now.
        #[arg(long, value_name = "TIME")]
        now: Option<DateTime<Utc>>,
    },
    /// Bring leads in from a CSV or JSON Lines file: a CRM's or a form tool's
    /// export, or `leads export`'s own.
    ///
    /// Each row is read as a post from --source would be (its field mapping in
    /// capture.yaml; without it, columns by lead field names such as email,
    /// company, job_title, custom.NAME), with the row's own created_at,
    /// last_activity_at and event counts (an `events` JSON column or
    /// `events.TYPE` columns). Columns an export writes that are decided
    /// (id, status, owner, score, tier, updated_at, idle_days) are skipped.
    ///
    /// A row is refused only for its email, a time, count or JSON column that
    /// cannot be read, more than 64 event types, activity before creation, a
    /// time in the future, a CSV cell that is not UTF-8 or a field count unlike
    /// the header's, or a field over 50 lines or 64 KB (a quote left open);
    /// every refused row is printed with its line, field and reason (never the
    /// value), and the rest are stored. Rows with the email of
    /// an earlier row, or of a stored lead, merge into it by the merge policy.
    /// Leads are scored and, at the hand-off tier, held until their next
    /// activity; `--then handoff` routes and hands them off instead, without
    /// messages unless --notify-reps. The same import run again changes
    /// nothing, so after an interruption it finishes the job.
    ///
    /// Exit status: 0 every row imported, 3 some rows refused (the rest are
    /// stored), 1 the import could not run or stopped.
    Import {
        #[command(flatten)]
        backend: Backend,
        /// The file; `-` reads standard input.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// How to read it; default from the extension (.csv, .jsonl), else by its first line.
        #[arg(long, value_enum)]
        format: Option<import_cmd::ImportFormat>,
        /// The capture.yaml source whose field mapping reads the columns.
        #[arg(long, value_name = "NAME")]
        source: Option<String>,
        /// What happens after scoring.
        #[arg(long, value_enum, default_value = "score")]
        then: import_cmd::ImportNext,
        /// With --then handoff: send the hand-off messages to the reps.
        #[arg(long)]
        notify_reps: bool,
        /// Read and check every row, and say what would be created or merged;
        /// store nothing (rows the store would refuse are found only by importing).
        #[arg(long)]
        dry_run: bool,
        /// Write every finding (line, level, field, reason) to this CSV file.
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        /// Workers importing at once, each a batch of up to 25 rows of different
        /// leads at a time (rows of one lead always in file order).
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
        parallel: u16,
        /// The time the import happens (RFC 3339); default now.
        #[arg(long, value_name = "TIME")]
        now: Option<DateTime<Utc>>,
    },
    /// One lead with its history of events and decisions.
    Show {
        #[command(flatten)]
        backend: Backend,
        /// The lead's email or id.
        #[arg(value_name = "EMAIL|ID")]
        lead: String,
        /// Print JSON instead of YAML.
        #[arg(long)]
        json: bool,
    },
}

/// How `leads export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Jsonl,
    Csv,
}

#[derive(Debug, Subcommand)]
enum TeamCommand {
    /// Every rep: available today or not, away dates, capacity, open leads,
    /// and who changed them last.
    Show {
        #[command(flatten)]
        backend: Backend,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Mark REP away from FROM to TO (inclusive dates, UTC).
    Away {
        #[command(flatten)]
        backend: Backend,
        rep: String,
        /// The first day away (YYYY-MM-DD).
        #[arg(long, value_name = "DATE")]
        from: chrono::NaiveDate,
        /// The last day away (YYYY-MM-DD).
        #[arg(long, value_name = "DATE")]
        to: chrono::NaiveDate,
    },
    /// REP is back today: the away range under way ends yesterday.
    Back {
        #[command(flatten)]
        backend: Backend,
        rep: String,
    },
    /// Set REP's capacity (most open leads at once).
    Capacity {
        #[command(flatten)]
        backend: Backend,
        rep: String,
        #[arg(value_parser = clap::value_parser!(u32).range(1..=10_000))]
        capacity: u32,
    },
    /// Start (`true`) or stop (`false`) assigning leads to REP.
    Active {
        #[command(flatten)]
        backend: Backend,
        rep: String,
        #[arg(action = clap::ArgAction::Set)]
        active: bool,
    },
    /// Drop REP's runtime changes: routing.yaml again.
    Reset {
        #[command(flatten)]
        backend: Backend,
        rep: String,
    },
}

#[derive(Debug, Subcommand)]
enum TableCommand {
    /// Create TABLE with the definition template.yaml declares (keys, indexes, TTL).
    ///
    /// Uses the AWS SDK's usual configuration: AWS_REGION, credentials, and
    /// AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_DYNAMODB) for an emulator.
    Create {
        /// The table name.
        table: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct RulesDir {
    /// The directory holding scoring.yaml, routing.yaml, sla.yaml, lifecycle.yaml,
    /// capture.yaml and tests/.
    #[arg(long, value_name = "DIR", default_value = "rules", global = true)]
    rules: PathBuf,
}

#[derive(Debug, Subcommand)]
enum RulesCommand {
    /// Validate every rule file.
    ///
    /// Prints every problem of every file as `FILE:LINE:COL: PATH: message`, with
    /// "did you mean" for near names. Exits 1 when any file is invalid.
    Check {
        #[command(flatten)]
        dir: RulesDir,
    },
    /// Run the rule tests in DIR/tests/*.yaml.
    ///
    /// A failing case shows the expected and actual values and the explanation
    /// of the decision. Then the coverage: for each fit and routing rule (and the
    /// routing default), how many cases it decided, the rules no case reached,
    /// and the share covered. Ends with `N passed, M failed`; exits 1 when any
    /// case fails or the coverage is below --min-coverage.
    Test {
        #[command(flatten)]
        dir: RulesDir,
        /// The least share of rules the cases must reach, in percent (`90`,
        /// `87.5`); compared exactly: 17 of 19 rules is 89.47...%, below 89.5.
        #[arg(long, value_name = "PERCENT")]
        min_coverage: Option<rules_cmd::Percent>,
    },
    /// Show how the rules score and route one lead, step by step.
    ///
    /// The lead is a rule-test case (`{lead: {...}, events: {...}, idle_days: N}`)
    /// or flat (`{email: ..., country: ..., events: {...}}`), in YAML or JSON.
    Explain {
        #[command(flatten)]
        dir: RulesDir,
        /// A YAML or JSON file with the lead; `-` reads standard input.
        #[arg(long, value_name = "FILE|-")]
        lead: String,
        /// Print the explanation as JSON.
        #[arg(long)]
        json: bool,
    },
    /// What a rule change does to real leads, before it is merged.
    ///
    /// Decides every lead of --leads (JSON Lines as `leads export` writes, or
    /// as `replay` reads) under the base rules and under DIR's, and reports
    /// tier moves, route moves of hand-off leads, hand-offs per target against
    /// capacity, score changes by band and the fit rules behind them, with up
    /// to three example lead ids per move. Exits 0 when nothing changes, 3 when
    /// leads move or scores change, 4 when more leads move than --budget, and 1
    /// on an error.
    Diff {
        #[command(flatten)]
        dir: RulesDir,
        /// The rules to compare with: a directory, or a git revision (branch,
        /// tag, commit) whose copy of DIR is read with `git show`.
        #[arg(long, value_name = "REF|DIR")]
        base: String,
        /// JSON Lines file of leads; `-` reads standard input.
        #[arg(long, value_name = "FILE.jsonl")]
        leads: String,
        #[arg(long, value_enum, default_value = "text")]
        format: diff_cmd::DiffFormat,
        /// The most leads that may move tier or route before the exit code is 4.
        #[arg(long, value_name = "LEADS")]
        budget: Option<usize>,
    },
    /// Write the JSON Schema of each rule file, for editors.
    ///
    /// The schemas come from the same definitions of sections and keys the
    /// loader checks files against. The starter files name theirs on their
    /// first line (`# yaml-language-server: $schema=schema/NAME.schema.json`),
    /// which the YAML extension of VS Code and other editors read.
    Schema {
        /// The folder to write FILE.schema.json into; `-` prints them as one JSON object.
        #[arg(long, value_name = "DIR|-", default_value = "rules/schema")]
        out: String,
    },
    /// Find what the rules say that nobody meant, without running a lead.
    ///
    /// Errors: a routing rule no lead reaches because a rule above it takes
    /// every lead it matches (over numeric intervals, text sets and parts, and
    /// booleans), a fit or routing rule whose conditions contradict each other,
    /// a tier no score can reach, an SLA deadline later than dormancy, a
    /// qualification no lead can meet. Warnings: two routing rules on the same
    /// fields with different targets whose bands or sets overlap, a whole
    /// number no band of routing rules takes, a pool whose members are all
    /// inactive or away on some day of the coming --weeks, dormant leads that
    /// nothing wakes. Each names the file, the line and the rule. Exits 1 on
    /// an error (or, with --deny-warnings, a warning).
    Lint {
        #[command(flatten)]
        dir: RulesDir,
        /// The first day pools are looked at (default today, UTC).
        #[arg(long, value_name = "DATE")]
        today: Option<chrono::NaiveDate>,
        /// How many weeks ahead pools are looked at.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=52))]
        weeks: u32,
        /// Fail on warnings too.
        #[arg(long)]
        deny_warnings: bool,
        /// Print the findings as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Decide about many leads, for backtests and benchmarks.
    ///
    /// One JSON lead per line in (as for `explain`), one JSON decision (`score`,
    /// `tier`, `fit`, `route`) per line out, and a summary with decisions per
    /// second on standard error. Event types the rules do not know score nothing.
    /// A line that is not a valid lead gives `{"line": N, "error": ...}` in its
    /// place, so output lines match input lines, and the exit code is 1.
    Replay {
        #[command(flatten)]
        dir: RulesDir,
        /// JSON Lines file of leads; `-` reads standard input.
        #[arg(long, value_name = "FILE.jsonl")]
        leads: String,
    },
}

/// 32 bytes from the operating system's generator, as hex: a secret `serve` makes.
pub fn random_secret() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("the operating system's random generator failed: {e}"))?;
    Ok(hex::encode(bytes))
}

/// Logs to standard error, filtered by RUST_LOG (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: a log file or pipe gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).try_init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Rules(RulesCommand::Check { dir }) => rules_cmd::check(&dir.rules),
        Command::Rules(RulesCommand::Test { dir, min_coverage }) => rules_cmd::test(&dir.rules, min_coverage),
        Command::Rules(RulesCommand::Explain { dir, lead, json }) => rules_cmd::explain(&dir.rules, &lead, json),
        Command::Rules(RulesCommand::Schema { out }) => rules_cmd::schema(&out),
        Command::Rules(RulesCommand::Lint { dir, today, weeks, deny_warnings, json }) => {
            rules_cmd::lint(&dir.rules, today.unwrap_or_else(|| Utc::now().date_naive()), weeks, deny_warnings, json)
        }
        Command::Rules(RulesCommand::Replay { dir, leads }) => rules_cmd::replay(&dir.rules, &leads),
        Command::Rules(RulesCommand::Diff { dir, base, leads, format, budget }) => {
            diff_cmd::diff(&dir.rules, &base, &leads, format, budget)
        }
        Command::Table(TableCommand::Create { table }) => infra_cmd::create_table(&table),
        Command::Subscriptions { dir, out } => infra_cmd::subscriptions(&dir.rules, &out),
        Command::Serve(args) => serve_cmd::serve(args),
        Command::SlaCheck { backend, now } => data_cmd::sla_check(&backend, now),
        Command::Cleanup { backend, now } => data_cmd::cleanup(&backend, now),
        Command::Leads(LeadsCommand::List { backend, status, owner, json }) => {
            data_cmd::list(&backend, status, owner, json)
        }
        Command::Leads(LeadsCommand::Import {
            backend,
            file,
            format,
            source,
            then,
            notify_reps,
            dry_run,
            report,
            parallel,
            now,
        }) => import_cmd::run(
            &backend,
            &import_cmd::ImportJob {
                file,
                format,
                source,
                then,
                notify_reps,
                dry_run,
                report,
                parallel: usize::from(parallel),
                now: now.unwrap_or_else(Utc::now),
            },
        ),
        Command::Leads(LeadsCommand::Show { backend, lead, json }) => data_cmd::show(&backend, &lead, json),
        Command::Leads(LeadsCommand::Export { backend, format, history, now }) => {
            data_cmd::export(&backend, format, history, now.unwrap_or_else(Utc::now))
        }
        Command::Team(TeamCommand::Show { backend, json }) => data_cmd::team_show(&backend, Utc::now(), json),
        Command::Team(TeamCommand::Away { backend, rep, from, to }) => {
            data_cmd::team_change(&backend, &rep, &TeamChange::Away { from, to })
        }
        Command::Team(TeamCommand::Back { backend, rep }) => data_cmd::team_change(&backend, &rep, &TeamChange::Back),
        Command::Team(TeamCommand::Capacity { backend, rep, capacity }) => {
            data_cmd::team_change(&backend, &rep, &TeamChange::Capacity(capacity))
        }
        Command::Team(TeamCommand::Active { backend, rep, active }) => {
            data_cmd::team_change(&backend, &rep, &TeamChange::Active(active))
        }
        Command::Team(TeamCommand::Reset { backend, rep }) => data_cmd::team_change(&backend, &rep, &TeamChange::Reset),
        Command::Doctor { backend, repair, now, json } => {
            data_cmd::doctor(&backend, repair, now.unwrap_or_else(Utc::now), json)
        }
        Command::Simulate { backend, leads, from, days, seed, parallel } => {
            let plan = simulate_cmd::Plan { leads, from, days, seed, parallel: usize::from(parallel) };
            simulate_cmd::run(&backend, &plan)
        }
        Command::Report { backend, from, to, by, format } => report_cmd::run(&backend, from, to, by, format),
        Command::Outbox { backend, now, json } => data_cmd::outbox(&backend, now.unwrap_or_else(Utc::now), json),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
