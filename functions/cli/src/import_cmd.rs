//! `leadflow leads import FILE`: leads from a CSV or JSON Lines file into the
//! store, each row one decision of the state machine (create or merge by
//! email, with the row's own dates, scored, then held or handed off), saved
//! with the same conditions as any capture.
//!
//! Rows of one lead are imported in file order, by one worker; rows of
//! different leads by `--parallel` workers at once, each taking batches of up
//! to 25 rows of different leads (on DynamoDB one BatchGetItem and one
//! TransactWriteItems per batch, each lead under its own conditions). Each
//! row's idempotency key is recorded with it, so running the same import again
//! after an interruption imports what is missing and changes nothing else.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use leadflow_app::{ImportThen, Imported, Leadflow, Notifier, ServiceError, Store};
use leadflow_domain::import::{ImportRow, Importer, RowError};
use leadflow_domain::{LeadId, Refusal};

use crate::data_cmd::{Backend, runtime, with_app};

/// How `leads import` reads its file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportFormat {
    Csv,
    Jsonl,
}

/// What happens after an imported lead is scored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportNext {
    /// Score only; a lead at the hand-off tier waits for its next activity.
    Score,
    /// Route and hand off as a captured lead would be.
    Handoff,
}

/// Everything `leads import` is asked to do.
#[derive(Debug)]
pub struct ImportJob {
    pub file: PathBuf,
    pub format: Option<ImportFormat>,
    pub source: Option<String>,
    pub then: ImportNext,
    pub notify_reps: bool,
    pub dry_run: bool,
    pub report: Option<PathBuf>,
    pub parallel: usize,
    pub now: DateTime<Utc>,
}

/// One line of the per-row report.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Finding {
    line: u64,
    level: &'static str,
    field: String,
    reason: String,
}

/// What the import came to.
#[derive(Debug, Default)]
struct Tally {
    rows: u64,
    created: u64,
    merged: u64,
    /// Of the merged and created: rows whose email an earlier row had.
    duplicates: u64,
    repeats: u64,
    refused: u64,
    warned: u64,
    findings: Vec<Finding>,
}

/// A row for a worker: its line, and what it read as.
struct Work {
    line: u64,
    row: ImportRow,
}

/// The most rows a worker imports in one batch (one read and one write on
/// DynamoDB: 25 leads of 3 items each stay under a transaction's 100).
const BATCH: usize = 25;

/// A CSV field over more lines or bytes than these is a quote left open.
const MAX_FIELD_LINES: usize = 50;
const MAX_FIELD_BYTES: usize = 64 * 1024;

/// Rows read per progress line when standard error is not a terminal.
const PROGRESS_EVERY: u64 = 10_000;

pub fn run(backend: &Backend, job: &ImportJob) -> Result<ExitCode> {
    if job.notify_reps && job.then != ImportNext::Handoff {
        bail!("--notify-reps sends hand-off messages: it needs --then handoff");
    }
    let input = read_input(&job.file)?;
    let format = job.format.unwrap_or_else(|| guess_format(&job.file, &input));
    let then = match job.then {
        ImportNext::Score => ImportThen::Score,
        ImportNext::Handoff => ImportThen::Handoff { notify: job.notify_reps },
    };
    runtime()?.block_on(async {
        let code: ExitCode;
        with_app!(backend, |app| {
            let importer = Importer::new(&app.rules, job.source.as_deref()).map_err(anyhow::Error::msg)?;
            let tally = import(app, importer, &input, format, then, job).await?;
            code = finish(&tally, job)?;
        });
        Ok(code)
    })
}

async fn import<S, N>(
    app: Arc<Leadflow<S, N>>,
    importer: Importer,
    input: &[u8],
    format: ImportFormat,
    then: ImportThen,
    job: &ImportJob,
) -> Result<Tally>
where
    S: Store + Send + Sync + 'static,
    N: Notifier + Send + Sync + 'static,
{
    let tally = Arc::new(Mutex::new(Tally::default()));
    let progress = Progress::new(input.len() as u64);
    let lanes = job.parallel.max(1);
    let mut senders = Vec::with_capacity(lanes);
    let mut workers = Vec::with_capacity(lanes);
    for _ in 0..lanes {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Work>(64);
        senders.push(tx);
        let (app, tally, dry_run, now) = (app.clone(), tally.clone(), job.dry_run, job.now);
        workers.push(tokio::spawn(async move {
            let mut next: Option<Work> = None;
            let mut stuck: HashSet<LeadId> = HashSet::new();
            loop {
                // A batch of rows of different leads: what the channel holds now,
                // up to BATCH; a second row of a lead in the batch starts the next.
                let first = match next.take() {
                    Some(work) => work,
                    None => match rx.recv().await {
                        Some(work) => work,
                        None => break,
                    },
                };
                let mut leads = HashSet::from([LeadId::for_email(&first.row.profile.email)]);
                let mut batch = vec![first];
                while batch.len() < BATCH {
                    let Ok(work) = rx.try_recv() else { break };
                    if leads.insert(LeadId::for_email(&work.row.profile.email)) {
                        batch.push(work);
                    } else {
                        next = Some(work);
                        break;
                    }
                }
                // A lead one of whose rows was not imported takes no later row
                // in this run, so that a re-run applies its rows in file order.
                let (batch, skipped): (Vec<Work>, Vec<Work>) =
                    batch.into_iter().partition(|w| !stuck.contains(&LeadId::for_email(&w.row.profile.email)));
                if !skipped.is_empty() {
                    let mut t = tally.lock().expect("tally");
                    for work in &skipped {
                        t.refused += 1;
                        t.findings.push(error(
                            work.line,
                            "*",
                            "an earlier row of this lead was not imported; run the import again".into(),
                        ));
                    }
                }
                if batch.is_empty() {
                    continue;
                }
                let results = if dry_run {
                    let mut out = Vec::with_capacity(batch.len());
                    for work in &batch {
                        out.push(dry(&app, work, now).await);
                    }
                    out
                } else {
                    let rows: Vec<&ImportRow> = batch.iter().map(|w| &w.row).collect();
                    match app.import_many(&rows, then, now).await {
                        Ok(results) => results.into_iter().map(|r| r.map(Some)).collect(),
                        Err(e) => {
                            let line = batch[0].line;
                            return Err(anyhow::Error::new(e)
                                .context(format!("line {line}: the store failed; imported rows are kept")));
                        }
                    }
                };
                let mut t = tally.lock().expect("tally");
                for (work, result) in batch.iter().zip(results) {
                    match result {
                        Ok(Some(Imported::Created(_))) => t.created += 1,
                        Ok(Some(Imported::Merged(_))) => t.merged += 1,
                        Ok(Some(Imported::Repeat)) => t.repeats += 1,
                        Ok(None) => {}
                        Err(ServiceError::Refused(Refusal::FromTheFuture { at })) => {
                            t.refused += 1;
                            let field = if work.row.created_at == Some(at) { "created_at" } else { "last_activity_at" };
                            t.findings.push(error(work.line, field, format!("{} is in the future", at.to_rfc3339())));
                        }
                        Err(ServiceError::Refused(refusal)) => {
                            t.refused += 1;
                            t.findings.push(error(work.line, "*", refusal.to_string()));
                        }
                        Err(ServiceError::Busy) => {
                            stuck.insert(LeadId::for_email(&work.row.profile.email));
                            t.refused += 1;
                            t.findings.push(error(
                                work.line,
                                "*",
                                "the lead kept changing; run the import again".into(),
                            ));
                        }
                        Err(e) => {
                            return Err(anyhow::Error::new(e)
                                .context(format!("line {}: the store failed; imported rows are kept", work.line)));
                        }
                    }
                }
            }
            Ok(())
        }));
    }

    let mut seen: HashMap<LeadId, u64> = HashMap::new();
    let mut dispatch = async |line: u64, read: Result<ImportRow, Vec<RowError>>, at_byte: u64| -> Result<()> {
        let row = {
            let mut t = tally.lock().expect("tally");
            t.rows += 1;
            progress.read(at_byte, t.rows, t.refused);
            match read {
                Err(errors) => {
                    t.refused += 1;
                    t.findings.extend(errors.into_iter().map(|e| error(line, &e.field, e.reason)));
                    return Ok(());
                }
                Ok(row) => row,
            }
        };
        let id = LeadId::for_email(&row.profile.email);
        {
            let mut t = tally.lock().expect("tally");
            if !row.warnings.is_empty() {
                t.warned += 1;
                for w in &row.warnings {
                    t.findings.push(Finding {
                        line,
                        level: "warning",
                        field: w.field.clone(),
                        reason: w.problem.clone(),
                    });
                }
            }
            match seen.entry(id.clone()) {
                Entry::Occupied(first) => {
                    t.duplicates += 1;
                    t.findings.push(Finding {
                        line,
                        level: "merged",
                        field: "email".to_owned(),
                        reason: format!("the email of line {}: merged by the merge policy", first.get()),
                    });
                    if job.dry_run {
                        t.merged += 1;
                        return Ok(());
                    }
                }
                Entry::Vacant(v) => {
                    v.insert(line);
                }
            }
        }
        let lane = lane_of(&id, lanes);
        // A worker that stopped did so on an error, reported when it is joined.
        let _ = senders[lane].send(Work { line, row }).await;
        Ok(())
    };

    match format {
        ImportFormat::Jsonl => {
            let mut offset = 0u64;
            for (i, text) in input.split(|b| *b == b'\n').enumerate() {
                offset += text.len() as u64 + 1;
                let line = i as u64 + 1;
                let text = text.strip_suffix(b"\r").unwrap_or(text);
                if text.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let read = match serde_json::from_slice::<serde_json::Value>(text) {
                    Ok(value) => importer.read_json(&value),
                    Err(e) => Err(vec![RowError { field: "*".to_owned(), reason: format!("not JSON: {e}") }]),
                };
                dispatch(line, read, offset).await?;
                if workers.iter().any(tokio::task::JoinHandle::is_finished) {
                    break;
                }
            }
        }
        ImportFormat::Csv => {
            let mut reader =
                csv::ReaderBuilder::new().delimiter(sniff_delimiter(input)).flexible(true).from_reader(input);
            let header: Vec<String> = match reader.byte_headers() {
                Ok(h) => h.iter().map(|name| String::from_utf8_lossy(name).trim().to_owned()).collect(),
                Err(e) => bail!("the CSV header cannot be read: {e}"),
            };
            if header.iter().all(String::is_empty) {
                bail!("the CSV file has no header row naming its columns");
            }
            let mut record = csv::ByteRecord::new();
            loop {
                match reader.read_byte_record(&mut record) {
                    Ok(false) => break,
                    Ok(true) => {}
                    Err(e) => bail!("reading the CSV file: {e}"),
                }
                let (line, byte) = record.position().map_or((0, 0), |p| (p.line(), p.byte()));
                if record.iter().all(<[u8]>::is_empty) {
                    continue;
                }
                let read = csv_row(&header, &record).and_then(|fields| importer.read_fields(fields));
                dispatch(line, read, byte).await?;
                if workers.iter().any(tokio::task::JoinHandle::is_finished) {
                    break;
                }
            }
        }
    }
    drop(senders);
    for worker in workers {
        worker.await.context("an import worker panicked")??;
    }
    progress.done();
    let tally = Arc::try_unwrap(tally).map_err(|_| anyhow::anyhow!("workers still hold the tally"))?;
    let mut tally = tally.into_inner().map_err(|_| anyhow::anyhow!("a worker panicked"))?;
    tally.findings.sort();
    Ok(tally)
}

/// A dry run's answer for a row: whether its lead is stored (once per lead).
async fn dry<S: Store, N: Notifier>(
    app: &Leadflow<S, N>,
    work: &Work,
    now: DateTime<Utc>,
) -> Result<Option<Imported>, ServiceError> {
    let id = LeadId::for_email(&work.row.profile.email);
    Ok(Some(if app.stored(&id, now).await? {
        Imported::Merged(leadflow_domain::Lead::new(work.row.profile.clone(), now))
    } else {
        Imported::Created(leadflow_domain::Lead::new(work.row.profile.clone(), now))
    }))
}

/// A CSV record as named fields; `Err` when it does not fit the header or is not UTF-8.
fn csv_row(header: &[String], record: &csv::ByteRecord) -> Result<Vec<(String, String)>, Vec<RowError>> {
    // A quote left open runs to the next quote, maybe the end of the file: a
    // field over many lines or far over any value's length is refused, so
    // that the rows it swallowed are not stored as one lead's notes.
    for (name, value) in header.iter().zip(record.iter()) {
        let lines = value.iter().filter(|b| **b == b'\n').count();
        if lines > MAX_FIELD_LINES || value.len() > MAX_FIELD_BYTES {
            return Err(vec![RowError {
                field: name.clone(),
                reason: format!(
                    "runs over {} lines ({} bytes): a quote left open? The rows after it are inside it",
                    lines + 1,
                    value.len()
                ),
            }]);
        }
    }
    if record.len() != header.len() {
        return Err(vec![RowError {
            field: "*".to_owned(),
            reason: format!("has {} fields; the header has {}", record.len(), header.len()),
        }]);
    }
    let mut fields = Vec::with_capacity(header.len());
    for (name, value) in header.iter().zip(record.iter()) {
        match std::str::from_utf8(value) {
            Ok(text) => fields.push((name.clone(), text.to_owned())),
            Err(_) => {
                return Err(vec![RowError {
                    field: name.clone(),
                    reason: "is not UTF-8 text (save the file as UTF-8)".to_owned(),
                }]);
            }
        }
    }
    Ok(fields)
}

fn error(line: u64, field: &str, reason: String) -> Finding {
    Finding { line, level: "error", field: field.to_owned(), reason }
}

/// The worker for a lead: all of one lead's rows go to one worker, in order.
fn lane_of(id: &LeadId, lanes: usize) -> usize {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut hasher);
    (hasher.finish() % lanes as u64) as usize
}

fn read_input(file: &Path) -> Result<Vec<u8>> {
    if file == Path::new("-") {
        let mut input = Vec::new();
        std::io::stdin().lock().read_to_end(&mut input).context("reading standard input")?;
        return Ok(input);
    }
    std::fs::read(file).with_context(|| format!("reading {}", file.display()))
}

/// CSV by the `.csv` extension or a first line that is not a JSON object.
fn guess_format(file: &Path, input: &[u8]) -> ImportFormat {
    match file.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("csv") => ImportFormat::Csv,
        Some(e) if e.eq_ignore_ascii_case("jsonl") || e.eq_ignore_ascii_case("ndjson") => ImportFormat::Jsonl,
        _ => match input.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => ImportFormat::Jsonl,
            _ => ImportFormat::Csv,
        },
    }
}

/// The header line's delimiter: comma, or the semicolon or tab that
/// spreadsheets in many locales write, whichever the header has most of.
fn sniff_delimiter(input: &[u8]) -> u8 {
    let header = input.split(|b| *b == b'\n').next().unwrap_or_default();
    let count = |d: u8| header.iter().filter(|b| **b == d).count();
    [b',', b';', b'\t'].into_iter().max_by_key(|d| (count(*d), *d == b',')).unwrap_or(b',')
}

/// The progress bar on a terminal; plain lines otherwise.
struct Progress {
    bar: indicatif::ProgressBar,
    plain: bool,
}

impl Progress {
    fn new(bytes: u64) -> Progress {
        let plain = !std::io::stderr().is_terminal();
        let bar = if plain {
            indicatif::ProgressBar::hidden()
        } else {
            let bar = indicatif::ProgressBar::new(bytes);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {msg} {eta}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        };
        Progress { bar, plain }
    }

    /// The reader reached `byte` of the file, and row `rows`.
    fn read(&self, byte: u64, rows: u64, refused: u64) {
        if self.plain {
            if rows.is_multiple_of(PROGRESS_EVERY) {
                eprintln!("import: {rows} rows read, {refused} refused so far");
            }
        } else {
            self.bar.set_position(byte);
            if rows.is_multiple_of(1000) {
                self.bar.set_message(format!("{rows} rows"));
            }
        }
    }

    fn done(&self) {
        self.bar.finish_and_clear();
    }
}

/// A finding's reason without the value it is about: values are quoted in
/// backticks, and a value may be a person's name, email or phone.
fn redact(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len());
    for (i, part) in reason.split('`').enumerate() {
        out.push_str(if i % 2 == 1 { "the value" } else { part });
    }
    out
}

/// A report cell a spreadsheet shows as text, never runs as a formula.
pub(crate) fn cell(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{text}") } else { text.to_owned() }
}

fn finish(tally: &Tally, job: &ImportJob) -> Result<ExitCode> {
    for f in tally.findings.iter().filter(|f| f.level == "error") {
        eprintln!("line {}: {}: {}", f.line, f.field, redact(&f.reason));
    }
    if let Some(path) = &job.report {
        let mut w = csv::Writer::from_path(path).with_context(|| format!("writing {}", path.display()))?;
        w.write_record(["line", "level", "field", "reason"])?;
        for f in &tally.findings {
            w.write_record([f.line.to_string().as_str(), f.level, &cell(&f.field), &cell(&redact(&f.reason))])?;
        }
        w.flush()?;
    }
    let verb = if job.dry_run { "would be" } else { "were" };
    println!(
        "{} rows: {} leads {verb} created, {} rows {verb} merged into a lead ({} of them repeat an email of the file), {} rows were imported before, {} rows refused, {} with warnings{}",
        tally.rows,
        tally.created,
        tally.merged,
        tally.duplicates,
        tally.repeats,
        tally.refused,
        tally.warned,
        if job.dry_run { " (dry run: nothing was stored)" } else { "" },
    );
    Ok(if tally.refused > 0 { ExitCode::from(3) } else { ExitCode::SUCCESS })
}
