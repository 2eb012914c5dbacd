//! The embedded store: SQLite in one file (default `.leadflow/leads.db`).
//!
//! SQLite because several processes can use one file safely: `leadflow serve`
//! writes while `leadflow leads list` or `leadflow sla-check` read and write the
//! same file, each change in its own transaction (WAL mode, so readers never
//! wait for the writer). Every change is one `BEGIN IMMEDIATE` transaction,
//! which gives the same guarantees the DynamoDB store gets from conditional
//! writes and transactions: a save applies only on the expected version (or,
//! for a new lead, only if there is none), open-lead counts move with
//! assignments and never past a rep's capacity, an event id is recorded once,
//! and a pool's turn counter is advanced atomically.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use leadflow_app::{
    Change, History, LeadFilter, Leads, Nonces, Outbox, Rollup, RollupRead, Rollups, SaveError, Snapshot, StoreError,
    SweepState, Team, TeamState,
};
use leadflow_domain::facts::{Dim, RollupKey, Tally};
use leadflow_domain::team::RepSettings;
use leadflow_domain::{HistoryEntry, Lead, LeadId, Notification, Pending, Queue, queue_order};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS leads (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    status TEXT NOT NULL,
    owner TEXT,
    sla_due TEXT,
    hygiene_at TEXT,
    updated_at TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS leads_sla_due ON leads (sla_due) WHERE sla_due IS NOT NULL;
CREATE INDEX IF NOT EXISTS leads_hygiene_at ON leads (hygiene_at) WHERE hygiene_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS nonces (nonce TEXT PRIMARY KEY, expires_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS history (
    lead_id TEXT NOT NULL,
    key TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (lead_id, key)
);
CREATE TABLE IF NOT EXISTS outbox (
    id TEXT PRIMARY KEY,
    lead_id TEXT NOT NULL,
    lease_until TEXT NOT NULL,
    sent_at TEXT,
    dead_at TEXT,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (lease_until) WHERE sent_at IS NULL;
CREATE TABLE IF NOT EXISTS pool_turns (pool TEXT PRIMARY KEY, taken INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS rep_load (rep TEXT PRIMARY KEY, open INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS rep_settings (rep TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (domain TEXT PRIMARY KEY, owner TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rollups (
    day TEXT NOT NULL,
    dim TEXT NOT NULL,
    counter TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (day, dim, counter)
);
CREATE TABLE IF NOT EXISTS event_ids (
    lead_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    result TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    PRIMARY KEY (lead_id, event_id)
);
";

/// Columns added since the first schema, for databases made before them.
const MIGRATIONS: [&str; 2] = ["ALTER TABLE outbox ADD COLUMN dead_at TEXT", "ALTER TABLE leads ADD COLUMN queue TEXT"];

/// leadflow's store in one SQLite file.
#[derive(Clone, Debug)]
pub struct EmbeddedStore {
    path: PathBuf,
    conn: Arc<Mutex<Connection>>,
}

fn sql_error(e: rusqlite::Error) -> StoreError {
    StoreError::unavailable("the embedded database failed", e)
}

fn json_error(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!("a stored document is not valid: {e}"))
}

/// Instants as text that sorts in time order.
pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl EmbeddedStore {
    /// Opens (creating if needed) the database at `path` and its folder.
    pub fn open(path: &Path) -> Result<EmbeddedStore, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::unavailable(format!("cannot create {}", dir.display()), e))?;
        }
        let conn = Connection::open(path).map_err(sql_error)?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(sql_error)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(sql_error)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(sql_error)?;
        conn.execute_batch(SCHEMA).map_err(sql_error)?;
        for migration in MIGRATIONS {
            // A column that exists already is what the migration wants.
            match conn.execute_batch(migration) {
                Ok(()) if migration.contains("queue") => backfill_queues(&conn)?,
                Ok(()) => {}
                Err(e) if e.to_string().contains("duplicate column") => {}
                Err(e) => return Err(sql_error(e)),
            }
        }
        conn.execute_batch("CREATE INDEX IF NOT EXISTS leads_queue ON leads (queue) WHERE queue IS NOT NULL;")
            .map_err(sql_error)?;
        Ok(EmbeddedStore { path: path.to_owned(), conn: Arc::new(Mutex::new(conn)) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in one immediate transaction on a blocking thread.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, SaveError> + Send + 'static,
    ) -> Result<T, SaveError> {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_error)?;
            let out = f(&tx)?;
            tx.commit().map_err(sql_error)?;
            Ok(out)
        })
        .await
        .map_err(|e| StoreError::unavailable("the embedded database task failed", e))?
    }

    async fn query<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let conn = conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            f(&conn)
        })
        .await
        .map_err(|e| StoreError::unavailable("the embedded database task failed", e))?
    }
}

fn load(conn: &Connection, id: &str) -> Result<Option<Lead>, StoreError> {
    let doc: Option<String> =
        conn.query_row("SELECT doc FROM leads WHERE id = ?1", [id], |r| r.get(0)).optional().map_err(sql_error)?;
    doc.map(|d| serde_json::from_str(&d).map_err(json_error)).transpose()
}

/// A lead's queue as the `queue` column holds it.
fn queue_key(queue: Option<Queue<'_>>) -> Option<String> {
    match queue? {
        Queue::Owner(rep) => Some(format!("owner#{rep}")),
        Queue::Unassigned => Some("unassigned".to_owned()),
    }
}

/// Fills the `queue` column of the leads stored before it existed.
fn backfill_queues(conn: &Connection) -> Result<(), StoreError> {
    let leads: Vec<Lead> = docs_where(conn, "SELECT doc FROM leads", &[])?;
    for lead in leads {
        conn.execute("UPDATE leads SET queue = ?2 WHERE id = ?1", params![lead.id.as_str(), queue_key(lead.queue())])
            .map_err(sql_error)?;
    }
    Ok(())
}

fn upsert(conn: &Connection, lead: &Lead) -> Result<(), StoreError> {
    let doc = serde_json::to_string(lead).map_err(json_error)?;
    conn.execute(
        "INSERT INTO leads (id, version, status, owner, sla_due, hygiene_at, updated_at, doc, queue)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (id) DO UPDATE SET version = ?2, status = ?3, owner = ?4, sla_due = ?5,
             hygiene_at = ?6, updated_at = ?7, doc = ?8, queue = ?9",
        params![
            lead.id.as_str(),
            lead.version as i64,
            lead.status.as_str(),
            lead.owner,
            lead.sla_due.map(ts),
            lead.hygiene_at.map(ts),
            ts(lead.updated_at),
            doc,
            queue_key(lead.queue()),
        ],
    )
    .map_err(sql_error)?;
    Ok(())
}

/// Adds a change's counts to the daily roll-ups.
fn add_rollup(conn: &Connection, tally: &Tally) -> Result<(), StoreError> {
    let mut add = conn
        .prepare_cached(
            "INSERT INTO rollups (day, dim, counter, n) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (day, dim, counter) DO UPDATE SET n = n + excluded.n",
        )
        .map_err(sql_error)?;
    for (key, counts) in &tally.counts {
        let day = key.day.to_string();
        let dim = key.dim.key();
        for (counter, delta) in counts {
            add.execute(params![day, dim, counter, delta]).map_err(sql_error)?;
        }
    }
    Ok(())
}

fn put_history(conn: &Connection, id: &LeadId, entries: &[HistoryEntry]) -> Result<(), StoreError> {
    for e in entries {
        let doc = serde_json::to_string(e).map_err(json_error)?;
        conn.execute(
            "INSERT INTO history (lead_id, key, doc) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            params![id.as_str(), e.key(), doc],
        )
        .map_err(sql_error)?;
    }
    Ok(())
}

/// The JSON documents (the first column) a query returns, read as `T`.
fn docs_where<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    sql: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(sql_error)?;
    let docs = stmt.query_map(args, |r| r.get::<_, String>(0)).map_err(sql_error)?;
    docs.map(|d| serde_json::from_str(&d.map_err(sql_error)?).map_err(json_error)).collect()
}

fn limit_arg(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Leads whose time in `column` (an indexed time column) has come, earliest first.
fn due(conn: &Connection, column: &'static str, now: DateTime<Utc>, limit: usize) -> Result<Vec<Lead>, StoreError> {
    let sql = format!("SELECT doc FROM leads WHERE {column} IS NOT NULL AND {column} <= ?1 ORDER BY {column} LIMIT ?2");
    docs_where(conn, &sql, &[&ts(now), &limit_arg(limit)])
}

impl Leads for EmbeddedStore {
    async fn read(&self, id: &LeadId, event_id: Option<&str>, now: DateTime<Utc>) -> Result<Snapshot, StoreError> {
        let id = id.clone();
        let event_id = event_id.map(str::to_owned);
        self.query(move |c| {
            let lead = load(c, id.as_str())?;
            let seen = match event_id {
                Some(event_id) => c
                    .query_row(
                        "SELECT result FROM event_ids WHERE lead_id = ?1 AND event_id = ?2 AND expires_at > ?3",
                        params![id.as_str(), event_id, ts(now)],
                        |r| r.get::<_, String>(0),
                    )
                    .optional()
                    .map_err(sql_error)?
                    .map(|r| serde_json::from_str(&r).map_err(json_error))
                    .transpose()?,
                None => None,
            };
            Ok(Snapshot { lead, seen })
        })
        .await
    }

    async fn get(&self, id: &LeadId) -> Result<Option<Lead>, StoreError> {
        let id = id.clone();
        self.query(move |c| load(c, id.as_str())).await
    }

    async fn save(&self, change: &Change) -> Result<(), SaveError> {
        let change = change.clone();
        self.write(move |tx| {
            let stored: Option<i64> = tx
                .query_row("SELECT version FROM leads WHERE id = ?1", [change.lead.id.as_str()], |r| r.get(0))
                .optional()
                .map_err(sql_error)?;
            if stored.unwrap_or(0) as u64 != change.expected_version || change.lead.version != change.expected_version + 1
            {
                return Err(SaveError::LeadChanged);
            }
            if let Some(mark) = &change.event {
                let result = serde_json::to_string(&mark.result).map_err(json_error)?;
                let inserted = tx
                    .execute(
                        "INSERT INTO event_ids (lead_id, event_id, result, expires_at) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (lead_id, event_id) DO UPDATE SET result = excluded.result,
                             expires_at = excluded.expires_at
                         WHERE event_ids.expires_at <= ?5",
                        params![change.lead.id.as_str(), mark.event_id, result, ts(mark.expires_at), ts(mark.now)],
                    )
                    .map_err(sql_error)?;
                if inserted == 0 {
                    return Err(SaveError::Duplicate { event_id: mark.event_id.clone() });
                }
            }
            let team = &change.team;
            if let Some((pool, skipped)) = &team.skip {
                tx.execute(
                    "INSERT INTO pool_turns (pool, taken) VALUES (?1, ?2)
                     ON CONFLICT (pool) DO UPDATE SET taken = taken + ?2",
                    params![pool, *skipped as i64],
                )
                .map_err(sql_error)?;
            }
            for load in &team.load {
                let open: i64 = tx
                    .query_row("SELECT open FROM rep_load WHERE rep = ?1", [&load.rep], |r| r.get(0))
                    .optional()
                    .map_err(sql_error)?
                    .unwrap_or(0);
                if load.delta > 0
                    && let Some(capacity) = load.capacity
                    && open + load.delta > i64::from(capacity)
                {
                    return Err(SaveError::AtCapacity { rep: load.rep.clone() });
                }
                tx.execute(
                    "INSERT INTO rep_load (rep, open) VALUES (?1, ?2)
                     ON CONFLICT (rep) DO UPDATE SET open = open + ?2",
                    params![load.rep, load.delta],
                )
                .map_err(sql_error)?;
            }
            if let Some((domain, owner)) = &team.account {
                tx.execute(
                    "INSERT INTO accounts (domain, owner) VALUES (?1, ?2) ON CONFLICT (domain) DO UPDATE SET owner = ?2",
                    params![domain, owner],
                )
                .map_err(sql_error)?;
            }
            upsert(tx, &change.lead)?;
            put_history(tx, &change.lead.id, &change.history)?;
            add_rollup(tx, &change.rollup)?;
            for p in &change.outbox {
                let doc = serde_json::to_string(p).map_err(json_error)?;
                tx.execute(
                    "INSERT INTO outbox (id, lead_id, lease_until, doc) VALUES (?1, ?2, ?3, ?4)",
                    params![p.notification.id, change.lead.id.as_str(), ts(p.lease_until), doc],
                )
                .map_err(sql_error)?;
            }
            Ok(())
        })
        .await
    }

    async fn sla_due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Lead>, StoreError> {
        self.query(move |c| due(c, "sla_due", now, limit)).await
    }

    async fn hygiene_due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Lead>, StoreError> {
        self.query(move |c| due(c, "hygiene_at", now, limit)).await
    }

    async fn page(&self, after: Option<&str>, limit: usize) -> Result<(Vec<Lead>, Option<String>), StoreError> {
        self.page_of(after, limit.max(1)).await
    }

    async fn sweep_state(&self) -> Result<SweepState, StoreError> {
        self.query(|c| {
            let doc: Option<String> = c
                .query_row("SELECT doc FROM settings WHERE name = 'sweep'", [], |r| r.get(0))
                .optional()
                .map_err(sql_error)?;
            doc.map(|d| serde_json::from_str(&d).map_err(json_error)).transpose().map(Option::unwrap_or_default)
        })
        .await
    }

    async fn save_sweep_state(&self, state: &SweepState) -> Result<(), StoreError> {
        let doc = serde_json::to_string(state).map_err(json_error)?;
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO settings (name, doc) VALUES ('sweep', ?1) ON CONFLICT (name) DO UPDATE SET doc = ?1",
                [doc],
            )
            .map_err(sql_error)?;
            Ok(())
        })
        .await
        .map_err(into_store_error)
    }

    async fn queue(&self, queue: Queue<'_>, limit: usize) -> Result<Vec<Lead>, StoreError> {
        let key = queue_key(Some(queue));
        let mut leads = self.query(move |c| docs_where(c, "SELECT doc FROM leads WHERE queue = ?1", &[&key])).await?;
        queue_order(&mut leads);
        leads.truncate(limit);
        Ok(leads)
    }

    async fn list(&self, filter: &LeadFilter) -> Result<Vec<Lead>, StoreError> {
        let status = filter.status.map(|s| s.as_str().to_owned());
        let owner = filter.owner.clone();
        self.query(move |c| {
            docs_where(
                c,
                "SELECT doc FROM leads WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR owner = ?2)
                 ORDER BY updated_at DESC, id",
                &[&status, &owner],
            )
        })
        .await
    }
}

impl Nonces for EmbeddedStore {
    async fn spend(&self, nonce: &str, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let nonce = nonce.to_owned();
        self.write(move |tx| {
            let changed = tx
                .execute(
                    "INSERT INTO nonces (nonce, expires_at) VALUES (?1, ?2)
                     ON CONFLICT (nonce) DO UPDATE SET expires_at = ?2 WHERE nonces.expires_at <= ?3",
                    params![nonce, ts(expires_at), ts(now)],
                )
                .map_err(sql_error)?;
            Ok(changed == 1)
        })
        .await
        .map_err(into_store_error)
    }
}

impl EmbeddedStore {
    async fn page_of(&self, after: Option<&str>, limit: usize) -> Result<(Vec<Lead>, Option<String>), StoreError> {
        let after = after.unwrap_or("").to_owned();
        self.query(move |c| {
            let leads: Vec<Lead> = docs_where(
                c,
                "SELECT doc FROM leads WHERE id > ?1 ORDER BY id LIMIT ?2",
                &[&after, &limit_arg(limit)],
            )?;
            let next = (leads.len() == limit).then(|| leads.last().map(|l| l.id.to_string())).flatten();
            Ok((leads, next))
        })
        .await
    }
}

fn into_store_error(e: SaveError) -> StoreError {
    match e {
        SaveError::Store(e) => e,
        other => StoreError::Corrupt(other.to_string()),
    }
}

impl Team for EmbeddedStore {
    async fn team_state(&self, reps: &[&str], account: Option<&str>) -> Result<TeamState, StoreError> {
        let reps: Vec<String> = reps.iter().map(|s| (*s).to_owned()).collect();
        let account = account.map(str::to_owned);
        self.query(move |c| {
            let mut state = TeamState::default();
            for rep in reps {
                let open: Option<i64> = c
                    .query_row("SELECT open FROM rep_load WHERE rep = ?1", [&rep], |r| r.get(0))
                    .optional()
                    .map_err(sql_error)?;
                let settings: Option<String> = c
                    .query_row("SELECT doc FROM rep_settings WHERE rep = ?1", [&rep], |r| r.get(0))
                    .optional()
                    .map_err(sql_error)?;
                if let Some(doc) = settings {
                    state.settings.insert(rep.clone(), serde_json::from_str(&doc).map_err(json_error)?);
                }
                state.open.insert(rep, u32::try_from(open.unwrap_or(0).max(0)).unwrap_or(u32::MAX));
            }
            if let Some(domain) = account {
                state.account_owner = c
                    .query_row("SELECT owner FROM accounts WHERE domain = ?1", [&domain], |r| r.get(0))
                    .optional()
                    .map_err(sql_error)?;
            }
            Ok(state)
        })
        .await
    }

    async fn set_rep_settings(
        &self,
        rep: &str,
        expected: Option<&RepSettings>,
        next: Option<&RepSettings>,
    ) -> Result<bool, StoreError> {
        let rep = rep.to_owned();
        let expected = expected.map(serde_json::to_string).transpose().map_err(json_error)?;
        let next = next.map(serde_json::to_string).transpose().map_err(json_error)?;
        self.write(move |tx| {
            let stored: Option<String> = tx
                .query_row("SELECT doc FROM rep_settings WHERE rep = ?1", [&rep], |r| r.get(0))
                .optional()
                .map_err(sql_error)?;
            if stored != expected {
                return Ok(false);
            }
            match next {
                Some(doc) => tx.execute(
                    "INSERT INTO rep_settings (rep, doc) VALUES (?1, ?2) ON CONFLICT (rep) DO UPDATE SET doc = ?2",
                    params![rep, doc],
                ),
                None => tx.execute("DELETE FROM rep_settings WHERE rep = ?1", [&rep]),
            }
            .map_err(sql_error)?;
            Ok(true)
        })
        .await
        .map_err(into_store_error)
    }

    async fn set_open_leads(&self, rep: &str, expected: u32, open: u32) -> Result<bool, StoreError> {
        let rep = rep.to_owned();
        self.write(move |tx| {
            let stored: i64 = tx
                .query_row("SELECT open FROM rep_load WHERE rep = ?1", [&rep], |r| r.get(0))
                .optional()
                .map_err(sql_error)?
                .unwrap_or(0);
            if stored != i64::from(expected) {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO rep_load (rep, open) VALUES (?1, ?2) ON CONFLICT (rep) DO UPDATE SET open = ?2",
                params![rep, i64::from(open)],
            )
            .map_err(sql_error)?;
            Ok(true)
        })
        .await
        .map_err(into_store_error)
    }

    async fn take_turn(&self, pool: &str) -> Result<u64, StoreError> {
        let pool = pool.to_owned();
        let taken: i64 = self
            .write(move |tx| {
                tx.query_row(
                    "INSERT INTO pool_turns (pool, taken) VALUES (?1, 1)
                     ON CONFLICT (pool) DO UPDATE SET taken = taken + 1 RETURNING taken",
                    [&pool],
                    |r| r.get(0),
                )
                .map_err(|e| sql_error(e).into())
            })
            .await
            .map_err(into_store_error)?;
        Ok(taken.saturating_sub(1) as u64)
    }
}

impl History for EmbeddedStore {
    async fn history(&self, id: &LeadId) -> Result<Vec<HistoryEntry>, StoreError> {
        let id = id.clone();
        self.query(move |c| docs_where(c, "SELECT doc FROM history WHERE lead_id = ?1 ORDER BY key", &[&id.as_str()]))
            .await
    }
}

impl Outbox for EmbeddedStore {
    async fn due_notifications(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Pending>, StoreError> {
        self.query(move |c| {
            docs_where(
                c,
                "SELECT doc FROM outbox WHERE sent_at IS NULL AND dead_at IS NULL AND lease_until <= ?1
                 ORDER BY lease_until LIMIT ?2",
                &[&ts(now), &limit_arg(limit)],
            )
        })
        .await
    }

    async fn claim(&self, pending: &Pending, lease_until: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut next = pending.clone();
        next.lease_until = lease_until;
        next.attempts += 1;
        let old = ts(pending.lease_until);
        self.write(move |tx| {
            let doc = serde_json::to_string(&next).map_err(json_error)?;
            let changed = tx
                .execute(
                    "UPDATE outbox SET lease_until = ?1, doc = ?2 WHERE id = ?3 AND sent_at IS NULL AND dead_at IS NULL AND lease_until = ?4",
                    params![ts(next.lease_until), doc, next.notification.id, old],
                )
                .map_err(sql_error)?;
            Ok(changed == 1)
        })
        .await
        .map_err(into_store_error)
    }

    async fn give_up(&self, notification: &Notification, at: DateTime<Utc>) -> Result<(), StoreError> {
        let id = notification.id.clone();
        self.write(move |tx| {
            tx.execute("UPDATE outbox SET dead_at = ?1 WHERE id = ?2 AND sent_at IS NULL", params![ts(at), id])
                .map_err(sql_error)?;
            Ok(())
        })
        .await
        .map_err(into_store_error)
    }

    async fn dead_letters(&self) -> Result<Vec<Pending>, StoreError> {
        self.query(move |c| docs_where(c, "SELECT doc FROM outbox WHERE dead_at IS NOT NULL ORDER BY dead_at", &[]))
            .await
    }

    async fn mark_sent(&self, notification: &Notification, at: DateTime<Utc>) -> Result<(), StoreError> {
        let id = notification.id.clone();
        self.write(move |tx| {
            tx.execute("UPDATE outbox SET sent_at = ?1 WHERE id = ?2 AND sent_at IS NULL", params![ts(at), id])
                .map_err(sql_error)?;
            Ok(())
        })
        .await
        .map_err(into_store_error)
    }
}

impl Rollups for EmbeddedStore {
    async fn rollups(&self, from: NaiveDate, to: NaiveDate, kinds: &[&str]) -> Result<RollupRead, StoreError> {
        // `all`, or `KIND#...`: a pattern per kind asked for.
        let patterns: Vec<String> =
            kinds.iter().map(|k| if *k == "all" { "all".to_owned() } else { format!("{k}#%") }).collect();
        self.query(move |c| {
            let mut stmt = c
                .prepare(
                    "SELECT day, dim, counter, n FROM rollups, json_each(?3) AS kind
                     WHERE day >= ?1 AND day <= ?2 AND dim LIKE kind.value ORDER BY day, dim",
                )
                .map_err(sql_error)?;
            let kinds = serde_json::to_string(&patterns).map_err(json_error)?;
            let rows = stmt
                .query_map(params![from.to_string(), to.to_string(), kinds], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, i64>(3)?))
                })
                .map_err(sql_error)?;
            let mut read = RollupRead { round_trips: 1, ..RollupRead::default() };
            for row in rows {
                let (day, dim, counter, n) = row.map_err(sql_error)?;
                let day: NaiveDate =
                    day.parse().map_err(|_| StoreError::Corrupt(format!("a roll-up's day `{day}` is not a date")))?;
                let dim =
                    Dim::parse(&dim).ok_or_else(|| StoreError::Corrupt(format!("a roll-up's dimension `{dim}`")))?;
                let key = RollupKey { day, dim };
                match read.rollups.last_mut() {
                    Some(last) if last.key == key => {
                        last.counts.insert(counter, n);
                    }
                    _ => read.rollups.push(Rollup { key, counts: [(counter, n)].into() }),
                }
            }
            read.items_read = read.rollups.len() as u64;
            Ok(read)
        })
        .await
    }
}
