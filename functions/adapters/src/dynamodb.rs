//! The DynamoDB store: one table (see `table`), conditional writes and
//! transactions, every request asking for its consumed capacity so that the cost
//! of each operation can be measured (`DynamoStore::usage`).
//!
//! - every decision: one strongly consistent read (`GetItem`, or `BatchGetItem`
//!   of the lead and the event's id record), then one `TransactWriteItems`: the
//!   lead on its version (or only if absent), the event id only if absent, `ADD`
//!   to the reps' open-lead counts each conditional on the rep's capacity, the
//!   pool counter, history and outbox items. Two round trips for a capture or an
//!   event that does not hand off; a cancelled transaction's reasons are mapped
//!   item by item (lead changed, rep at capacity, duplicate event, conflict).
//! - round-robin: one `UpdateItem` per turn, `ADD` on the pool's counter.
//! - SLA check and clean-up: `Query` on the sparse indexes. The only scan is
//!   the SLA check's one-time repair sweep, a page per check until done.
//!
//! Every request is awaited boxed (`.send().boxed()`): an SDK request's future
//! nests some sixty types (orchestrator, retries, timeouts, tracing), and a
//! Lambda function's whole future (runtime, handler, service, store, SDK) would
//! otherwise pass rustc's type-layout depth limit. The box costs one allocation
//! per round trip.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConsumedCapacity, KeysAndAttributes, Put, ReturnConsumedCapacity, ReturnValue, TransactWriteItem,
    Update,
};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use futures_util::FutureExt as _;
use leadflow_app::{
    Change, EventResult, History, LeadFilter, Leads, Nonces, Outbox, Rollup, RollupRead, Rollups, SaveError, Snapshot,
    StoreError, SweepState, Team, TeamState,
};
use leadflow_domain::facts::{Dim, RollupKey, Tally};
use leadflow_domain::lead::{FieldTarget, ProfileField};
use leadflow_domain::team::RepSettings;
use leadflow_domain::{Email, HistoryEntry, Lead, LeadId, Notification, Pending, Profile, Queue, Status, queue_order};

use crate::embedded::ts;
use crate::table::{DUE_INDEX, IDLE_INDEX, QUEUE_INDEX, TTL_ATTRIBUTE};

type Item = HashMap<String, AttributeValue>;

/// Round trips and capacity units by operation, as DynamoDB reported them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Usage {
    pub round_trips: u64,
    pub capacity_units: f64,
    /// Items returned by queries and reads.
    pub items_read: u64,
}

/// leadflow's store in a DynamoDB table.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
    usage: Arc<Mutex<BTreeMap<&'static str, Usage>>>,
}

fn unavailable<E: std::error::Error + Send + Sync + 'static>(what: &str, e: E) -> StoreError {
    StoreError::unavailable(format!("DynamoDB {what} failed"), e)
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn lead_pk(id: &LeadId) -> String {
    format!("LEAD#{id}")
}

const LEAD_SK: &str = "LEAD";
const POOL_SK: &str = "TURNS";
const REP_SK: &str = "LOAD";
const ACCOUNT_SK: &str = "OWNER";
const SLA_PARTITION: &str = "SLA";
const OUTBOX_PARTITION: &str = "OUTBOX";
const IDLE_PARTITION: &str = "OPEN";
const DEAD_PARTITION: &str = "DEAD";
const SWEEP_PK: &str = "SWEEP";
const NONCE_SK: &str = "NONCE";

/// A queue's partition of the `queue` index.
fn queue_partition(queue: Queue<'_>) -> String {
    match queue {
        Queue::Owner(rep) => format!("OWNER#{rep}"),
        Queue::Unassigned => "UNASSIGNED".to_owned(),
    }
}

/// The sort key of an event id recorded under its lead.
fn event_sk(event_id: &str) -> String {
    format!("EVENT#{event_id}")
}

/// The attribute of a profile field (custom fields as `custom.<name>`).
fn field_attribute(target: &FieldTarget) -> String {
    match target {
        FieldTarget::Profile(f) => f.name().to_owned(),
        FieldTarget::Custom(name) => format!("custom.{name}"),
    }
}

fn field_value(p: &Profile, target: &FieldTarget) -> Option<AttributeValue> {
    match target {
        FieldTarget::Custom(name) => p.custom.get(name).map(|v| s(v.clone())),
        FieldTarget::Profile(f) => match f {
            ProfileField::Email => Some(s(p.email.as_str())),
            ProfileField::Country => p.country.map(|c| s(c.as_str())),
            ProfileField::Employees => p.employees.map(n),
            ProfileField::AnnualRevenue => p.annual_revenue.map(n),
            other => p.text(*other).map(|t| s(t.to_owned())),
        },
    }
}

fn event_attribute(kind: &str) -> String {
    format!("events.{kind}")
}

fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Option<T> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|t| t.parse().ok())
}

fn get_time(item: &Item, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    get_s(item, name)
        .map(|t| t.parse::<DateTime<Utc>>().map_err(|e| StoreError::Corrupt(format!("`{name}` is not a time: {e}"))))
        .transpose()
}

fn get_json<T: serde::de::DeserializeOwned>(item: &Item, name: &str) -> Result<Option<T>, StoreError> {
    get_s(item, name)
        .map(|t| serde_json::from_str(t).map_err(|e| StoreError::Corrupt(format!("`{name}` is not valid: {e}"))))
        .transpose()
}

/// A lead item as a `Lead`.
fn lead_from_item(item: &Item) -> Result<Lead, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("lead item without a valid `{what}`"));
    let email = get_s(item, "email").and_then(|e| Email::parse(e).ok()).ok_or_else(|| corrupt("email"))?;
    let mut profile = Profile::new(email);
    for (name, value) in item {
        let text = value.as_s().ok().map(String::as_str).or_else(|| value.as_n().ok().map(String::as_str));
        let Some(text) = text else { continue };
        if let Some(custom) = name.strip_prefix("custom.") {
            profile.custom.insert(custom.to_owned(), text.to_owned());
        } else if let Some(raw) = name.strip_prefix("raw.") {
            profile.raw.insert(raw.to_owned(), text.to_owned());
        } else if let Some(field) = ProfileField::from_name(name).filter(|f| *f != ProfileField::Email) {
            profile.set(&FieldTarget::Profile(field), text).map_err(|_| corrupt(name))?;
        }
    }
    let events = item
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("events.")?.to_owned(), v.as_n().ok()?.parse().ok()?)))
        .collect();
    let at = |name: &str| get_time(item, name)?.ok_or_else(|| corrupt(name));
    Ok(Lead {
        id: get_s(item, "id").and_then(|i| LeadId::parse(i).ok()).ok_or_else(|| corrupt("id"))?,
        version: get_n(item, "version").ok_or_else(|| corrupt("version"))?,
        profile,
        status: get_s(item, "status").and_then(|t| t.parse::<Status>().ok()).ok_or_else(|| corrupt("status"))?,
        owner: get_s(item, "owner").map(str::to_owned),
        previous_owner: get_s(item, "previous_owner").map(str::to_owned),
        pool: get_s(item, "pool").map(str::to_owned),
        score: get_n(item, "score").unwrap_or(0),
        tier: get_s(item, "tier").unwrap_or_default().to_owned(),
        bant: get_json(item, "bant")?.unwrap_or_default(),
        events,
        unanswered: get_n(item, "unanswered").unwrap_or(0),
        created_at: at("created_at")?,
        updated_at: at("updated_at")?,
        last_activity_at: at("last_activity_at")?,
        sla: get_json(item, "sla")?,
        sla_due: get_time(item, "sla_due")?,
        hygiene_at: get_time(item, "hygiene_at")?,
        disqualify_reason: get_s(item, "disqualify_reason").map(str::to_owned),
        expires_at: get_n::<i64>(item, TTL_ATTRIBUTE).and_then(|t| DateTime::from_timestamp(t, 0)),
        held: item.get("held").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false),
        facts: get_json(item, "facts")?.unwrap_or_default(),
    })
}

/// A `Lead` as its item, with the index keys it belongs under.
fn lead_item(lead: &Lead) -> Item {
    let mut item = Item::new();
    item.insert("pk".into(), s(lead_pk(&lead.id)));
    item.insert("sk".into(), s(LEAD_SK));
    item.insert("id".into(), s(lead.id.as_str()));
    item.insert("version".into(), n(lead.version));
    for field in lead.profile.present_fields() {
        if let Some(v) = field_value(&lead.profile, &field) {
            item.insert(field_attribute(&field), v);
        }
    }
    for (name, value) in &lead.profile.raw {
        item.insert(format!("raw.{name}"), s(value.clone()));
    }
    for (kind, count) in &lead.events {
        item.insert(event_attribute(kind), n(count));
    }
    item.insert("status".into(), s(lead.status.as_str()));
    let mut opt = |name: &str, v: &Option<String>| {
        if let Some(v) = v {
            item.insert(name.into(), s(v.clone()));
        }
    };
    opt("owner", &lead.owner);
    opt("previous_owner", &lead.previous_owner);
    opt("pool", &lead.pool);
    opt("disqualify_reason", &lead.disqualify_reason);
    item.insert("score".into(), n(lead.score));
    item.insert("tier".into(), s(lead.tier.clone()));
    item.insert("bant".into(), s(serde_json::to_string(&lead.bant).unwrap_or_default()));
    item.insert("unanswered".into(), n(lead.unanswered));
    if lead.held {
        item.insert("held".into(), AttributeValue::Bool(true));
    }
    item.insert("facts".into(), s(serde_json::to_string(&lead.facts).unwrap_or_default()));
    item.insert("created_at".into(), s(ts(lead.created_at)));
    item.insert("updated_at".into(), s(ts(lead.updated_at)));
    item.insert("last_activity_at".into(), s(ts(lead.last_activity_at)));
    if let Some(sla) = &lead.sla {
        item.insert("sla".into(), s(serde_json::to_string(sla).unwrap_or_default()));
    }
    if let Some(due) = lead.sla_due {
        item.insert("sla_due".into(), s(ts(due)));
        item.insert("gsi1pk".into(), s(SLA_PARTITION));
        item.insert("gsi1sk".into(), s(format!("{}#{}", ts(due), lead.id)));
    }
    if let Some(at) = lead.hygiene_at {
        item.insert("hygiene_at".into(), s(ts(at)));
        item.insert("gsi2pk".into(), s(IDLE_PARTITION));
        item.insert("gsi2sk".into(), s(format!("{}#{}", ts(at), lead.id)));
    }
    if let Some(queue) = lead.queue() {
        item.insert("gsi3pk".into(), s(queue_partition(queue)));
        item.insert("gsi3sk".into(), s(format!("{}#{}", ts(lead.updated_at), lead.id)));
    }
    if let Some(t) = lead.expires_at {
        item.insert(TTL_ATTRIBUTE.into(), n(t.timestamp()));
    }
    item
}

/// A decision's history records, as one item (written in the same
/// transaction, so they are all there or none is): one item per decision
/// rather than per record, since DynamoDB charges each item written by the KiB,
/// rounded up. Keyed by the first record, so the history reads in order.
fn history_item(id: &LeadId, entries: &[HistoryEntry]) -> Option<Item> {
    let first = entries.first()?;
    Some(HashMap::from([
        ("pk".to_owned(), s(lead_pk(id))),
        ("sk".to_owned(), s(format!("H#{}", first.key()))),
        ("doc".to_owned(), s(serde_json::to_string(entries).unwrap_or_default())),
    ]))
}

fn outbox_item(p: &Pending) -> Item {
    HashMap::from([
        ("pk".to_owned(), s(lead_pk(&p.notification.lead_id))),
        ("sk".to_owned(), s(format!("OUTBOX#{}", p.notification.id))),
        ("doc".to_owned(), s(serde_json::to_string(p).unwrap_or_default())),
        ("gsi1pk".to_owned(), s(OUTBOX_PARTITION)),
        ("gsi1sk".to_owned(), outbox_sort_key(p)),
    ])
}

fn outbox_sort_key(p: &Pending) -> AttributeValue {
    s(format!("{}#{}", ts(p.lease_until), p.notification.id))
}

/// The upper bound of a `<time>#<id>` sort key at `now`.
fn due_bound(now: DateTime<Utc>) -> String {
    format!("{}#~", ts(now))
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> DynamoStore {
        DynamoStore { client, table: table.into(), usage: Arc::default() }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// What each operation has cost so far.
    pub fn usage(&self) -> BTreeMap<&'static str, Usage> {
        self.usage.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    pub fn reset_usage(&self) {
        self.usage.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }

    /// A transaction item that writes `item` whole.
    /// Writes `items` in one TransactWriteItems, metering what it cost.
    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<(), SdkError<aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError>> {
        let r = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .boxed()
            .await?;
        self.meter("save", r.consumed_capacity(), 0);
        Ok(())
    }

    /// The items of one change's transaction, and what each is (to name a
    /// cancellation reason).
    fn transaction<'c>(&self, change: &'c Change) -> Result<(Vec<TransactWriteItem>, Vec<Part<'c>>), SaveError> {
        let (mut items, mut parts) = self.own_items(change)?;
        for item in self.rollup_items(&change.rollup, rollup_shard(&change.lead.id))? {
            items.push(item);
            parts.push(Part::Other("daily roll-up"));
        }
        Ok((items, parts))
    }

    /// A change's items but its roll-ups (which a batch adds up and writes once).
    fn own_items<'c>(&self, change: &'c Change) -> Result<(Vec<TransactWriteItem>, Vec<Part<'c>>), SaveError> {
        if change.lead.version != change.expected_version + 1 {
            return Err(SaveError::LeadChanged);
        }
        let (condition, version) = if change.expected_version == 0 {
            ("attribute_not_exists(pk)", None)
        } else {
            ("#version = :expected", Some(n(change.expected_version)))
        };
        let version_name = version.as_ref().map(|_| HashMap::from([("#version".to_owned(), "version".to_owned())]));
        let lead = Put::builder()
            .table_name(&self.table)
            .set_item(Some(lead_item(&change.lead)))
            .condition_expression(condition)
            .set_expression_attribute_names(version_name)
            .set_expression_attribute_values(version.map(|v| HashMap::from([(":expected".to_owned(), v)])))
            .build()
            .map_err(|e| unavailable("TransactWriteItems", e))?;
        // What each item of the transaction is, to name a cancellation reason.
        let mut parts = vec![Part::Lead];
        let mut items = vec![TransactWriteItem::builder().put(lead).build()];
        if let Some(mark) = &change.event {
            let item = HashMap::from([
                ("pk".to_owned(), s(lead_pk(&change.lead.id))),
                ("sk".to_owned(), s(event_sk(&mark.event_id))),
                ("result".to_owned(), s(serde_json::to_string(&mark.result).unwrap_or_default())),
                (TTL_ATTRIBUTE.to_owned(), n(mark.expires_at.timestamp())),
            ]);
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk) OR #expires <= :now")
                .expression_attribute_names("#expires", TTL_ATTRIBUTE)
                .expression_attribute_values(":now", n(mark.now.timestamp()))
                .build()
                .map_err(|e| unavailable("TransactWriteItems", e))?;
            items.push(TransactWriteItem::builder().put(put).build());
            parts.push(Part::Event(&mark.event_id));
        }
        let team = &change.team;
        if let Some((pool, skipped)) = &team.skip {
            items.push(self.add(format!("POOL#{pool}"), POOL_SK, "taken", n(skipped), None)?);
            parts.push(Part::Other("pool turn counter"));
        }
        for load in &team.load {
            let capacity = load.capacity.filter(|_| load.delta > 0).map(|c| i64::from(c) - load.delta);
            items.push(self.add(format!("REP#{}", load.rep), REP_SK, "open", n(load.delta), capacity)?);
            parts.push(Part::Rep(&load.rep));
        }
        if let Some((domain, owner)) = &team.account {
            let item = HashMap::from([
                ("pk".to_owned(), s(format!("ACCOUNT#{domain}"))),
                ("sk".to_owned(), s(ACCOUNT_SK)),
                ("owner".to_owned(), s(owner.clone())),
            ]);
            items.push(self.put(item)?);
            parts.push(Part::Other("account owner"));
        }
        if let Some(item) = history_item(&change.lead.id, &change.history) {
            items.push(self.put(item)?);
            parts.push(Part::Other("history"));
        }
        for item in change.outbox.iter().map(outbox_item) {
            items.push(self.put(item)?);
            parts.push(Part::Other("outbox entry"));
        }
        Ok((items, parts))
    }

    /// One `ADD` of every counter per roll-up.
    fn rollup_items(&self, tally: &Tally, shard: u8) -> Result<Vec<TransactWriteItem>, StoreError> {
        let mut items = Vec::with_capacity(tally.counts.len());
        for (key, counts) in &tally.counts {
            let (pk, sk) = rollup_key(key, shard);
            let mut names = HashMap::new();
            let mut values = HashMap::new();
            let mut adds = Vec::with_capacity(counts.len());
            for (i, (counter, delta)) in counts.iter().enumerate() {
                names.insert(format!("#c{i}"), format!("{ROLLUP_COUNTER}{counter}"));
                values.insert(format!(":c{i}"), n(delta));
                adds.push(format!("#c{i} :c{i}"));
            }
            if adds.is_empty() {
                continue;
            }
            let update = Update::builder()
                .table_name(&self.table)
                .key("pk", s(pk))
                .key("sk", s(sk))
                .update_expression(format!("ADD {}", adds.join(", ")))
                .set_expression_attribute_names(Some(names))
                .set_expression_attribute_values(Some(values))
                .build()
                .map_err(|e| unavailable("TransactWriteItems", e))?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        Ok(items)
    }

    fn put(&self, item: Item) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .build()
            .map_err(|e| unavailable("TransactWriteItems", e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// A transaction item that adds `delta` to a number attribute (created at
    /// 0); with `at_most`, only while the attribute is at most that before.
    fn add(
        &self,
        pk: String,
        sk: &str,
        attribute: &str,
        delta: AttributeValue,
        at_most: Option<i64>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .update_expression("ADD #a :d")
            .expression_attribute_names("#a", attribute)
            .expression_attribute_values(":d", delta);
        if let Some(limit) = at_most {
            update = update
                .condition_expression(if limit >= 0 {
                    "attribute_not_exists(#a) OR #a <= :limit"
                } else {
                    "#a <= :limit"
                })
                .expression_attribute_values(":limit", n(limit));
        }
        let update = update.build().map_err(|e| unavailable("TransactWriteItems", e))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    fn meter(&self, op: &'static str, consumed: &[ConsumedCapacity], items: usize) {
        let mut usage = self.usage.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let u = usage.entry(op).or_default();
        u.round_trips += 1;
        u.capacity_units += consumed.iter().filter_map(ConsumedCapacity::capacity_units).sum::<f64>();
        u.items_read += items as u64;
    }

    /// Takes a notification out of the pending index (sent, or a dead letter);
    /// one that is gone or already settled is left as it is.
    async fn settle_outbox(
        &self,
        op: &'static str,
        notification: &Notification,
        update: &str,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<(), StoreError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(lead_pk(&notification.lead_id)))
            .key("sk", s(format!("OUTBOX#{}", notification.id)))
            .update_expression(update)
            .condition_expression(condition)
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        for (name, value) in values {
            request = request.expression_attribute_values(name, value);
        }
        match request.send().boxed().await {
            Ok(r) => {
                self.meter(op, r.consumed_capacity.as_slice(), 0);
                Ok(())
            }
            Err(e) if is_conditional_failure(&e) => Ok(()),
            Err(e) => Err(unavailable(&format!("UpdateItem ({op})"), e)),
        }
    }

    /// Strongly consistent `BatchGetItem` of `keys`, 100 at a time, until no
    /// key is left unprocessed.
    async fn batch_get(&self, op: &'static str, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let mut pending = keys;
        let mut out = Vec::new();
        while !pending.is_empty() {
            let batch: Vec<Item> = pending.drain(..pending.len().min(100)).collect();
            let request = KeysAndAttributes::builder()
                .set_keys(Some(batch))
                .consistent_read(true)
                .build()
                .map_err(|e| unavailable("BatchGetItem", e))?;
            let r = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .boxed()
                .await
                .map_err(|e| unavailable("BatchGetItem", e))?;
            let items = r.responses.as_ref().and_then(|m| m.get(&self.table)).cloned().unwrap_or_default();
            self.meter(op, r.consumed_capacity(), items.len());
            out.extend(items);
            if let Some(mut rest) = r.unprocessed_keys
                && let Some(k) = rest.remove(&self.table)
            {
                pending.extend(k.keys);
            }
        }
        Ok(out)
    }

    async fn query_due(
        &self,
        op: &'static str,
        index: &str,
        (hash, range): (&str, &str),
        partition: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Item>, StoreError> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression("#h = :p AND #r <= :now")
            .expression_attribute_names("#h", hash)
            .expression_attribute_names("#r", range)
            .expression_attribute_values(":p", s(partition))
            .expression_attribute_values(":now", s(due_bound(now)))
            .limit(i32::try_from(limit.min(1000)).unwrap_or(1000))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while out.len() < limit
            && let Some(page) = pages.next().await
        {
            let r = page.map_err(|e| unavailable("Query", e))?;
            let items = r.items.unwrap_or_default();
            self.meter(op, r.consumed_capacity.as_slice(), items.len());
            out.extend(items);
        }
        out.truncate(limit);
        Ok(out)
    }
}

fn is_conditional_failure(e: &SdkError<UpdateItemError>) -> bool {
    matches!(e.as_service_error(), Some(UpdateItemError::ConditionalCheckFailedException(_)))
}

impl Leads for DynamoStore {
    async fn read(&self, id: &LeadId, event_id: Option<&str>, now: DateTime<Utc>) -> Result<Snapshot, StoreError> {
        let Some(event_id) = event_id else {
            return Ok(Snapshot { lead: self.get(id).await?, seen: None });
        };
        // The lead and the event's record, in one strongly consistent read.
        let key = |sk: String| HashMap::from([("pk".to_owned(), s(lead_pk(id))), ("sk".to_owned(), s(sk))]);
        let mut snapshot = Snapshot::default();
        for item in self.batch_get("read", vec![key(LEAD_SK.to_owned()), key(event_sk(event_id))]).await? {
            if get_s(&item, "sk") == Some(LEAD_SK) {
                snapshot.lead = Some(lead_from_item(&item)?);
            } else if get_n::<i64>(&item, TTL_ATTRIBUTE).is_some_and(|t| t > now.timestamp()) {
                // TTL deletes expired items lazily: an expired record no longer counts.
                snapshot.seen = get_json(&item, "result")?;
            }
        }
        Ok(snapshot)
    }

    async fn get(&self, id: &LeadId) -> Result<Option<Lead>, StoreError> {
        let r = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(lead_pk(id)))
            .key("sk", s(LEAD_SK))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .boxed()
            .await
            .map_err(|e| unavailable("GetItem", e))?;
        self.meter("get", r.consumed_capacity.as_slice(), usize::from(r.item.is_some()));
        r.item.as_ref().map(lead_from_item).transpose()
    }

    async fn save(&self, change: &Change) -> Result<(), SaveError> {
        let (items, parts) = self.transaction(change)?;
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(e) => {
                let Some(reasons) = cancellation(&e) else {
                    return Err(unavailable("TransactWriteItems", e).into());
                };
                Err(cancelled(&parts, &reasons).unwrap_or_else(|message| {
                    SaveError::Store(StoreError::Unavailable { message, source: Some(Box::new(e)) })
                }))
            }
        }
    }

    async fn read_many(
        &self,
        keys: &[(LeadId, Option<String>)],
        now: DateTime<Utc>,
    ) -> Result<Vec<Snapshot>, StoreError> {
        // Every lead and its event's record, in strongly consistent batches.
        let key =
            |id: &LeadId, sk: String| HashMap::from([("pk".to_owned(), s(lead_pk(id))), ("sk".to_owned(), s(sk))]);
        let mut wanted = Vec::with_capacity(keys.len() * 2);
        for (id, event_id) in keys {
            wanted.push(key(id, LEAD_SK.to_owned()));
            if let Some(e) = event_id {
                wanted.push(key(id, event_sk(e)));
            }
        }
        let mut leads: HashMap<String, Lead> = HashMap::new();
        let mut seen: HashMap<(String, String), EventResult> = HashMap::new();
        for item in self.batch_get("read", wanted).await? {
            let (Some(pk), Some(sk)) = (get_s(&item, "pk"), get_s(&item, "sk")) else { continue };
            if sk == LEAD_SK {
                leads.insert(pk.to_owned(), lead_from_item(&item)?);
            } else if get_n::<i64>(&item, TTL_ATTRIBUTE).is_some_and(|t| t > now.timestamp())
                && let Some(result) = get_json(&item, "result")?
            {
                seen.insert((pk.to_owned(), sk.to_owned()), result);
            }
        }
        Ok(keys
            .iter()
            .map(|(id, event_id)| {
                let pk = lead_pk(id);
                let seen = event_id.as_ref().and_then(|e| seen.get(&(pk.clone(), event_sk(e))).cloned());
                Snapshot { lead: leads.get(&pk).cloned(), seen }
            })
            .collect())
    }

    async fn save_many(&self, changes: &[Change]) -> Vec<Result<(), SaveError>> {
        let mut results: Vec<Option<Result<(), SaveError>>> = (0..changes.len()).map(|_| None).collect();
        // Each change's items; a change that cannot be built is answered at once.
        let mut built = Vec::new();
        for (i, change) in changes.iter().enumerate() {
            match self.own_items(change) {
                Ok((items, parts)) => built.push((i, items, parts)),
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        // Room for each change's roll-ups, which its group adds up and writes
        // once (many changes of a day share theirs).
        let rollups = |i: usize| changes[i].rollup.counts.len();
        // Transactions of up to MAX_TRANSACTION_ITEMS items and about
        // TRANSACTION_BYTES, no item twice in one.
        let mut groups: Vec<Vec<usize>> = Vec::new();
        let (mut count, mut bytes) = (0, 0);
        let mut keys: std::collections::HashSet<(String, String)> = std::collections::HashSet::new();
        for (b, (_, items, _)) in built.iter().enumerate() {
            let own: Vec<(String, String)> = items.iter().filter_map(item_key).collect();
            let size: usize = items.iter().map(item_bytes).sum();
            let fits = count + items.len() + rollups(built[b].0) <= MAX_TRANSACTION_ITEMS
                && bytes + size <= TRANSACTION_BYTES
                && own.iter().all(|k| !keys.contains(k));
            if groups.is_empty() || !fits {
                groups.push(Vec::new());
                (count, bytes) = (0, 0);
                keys.clear();
            }
            (count, bytes) = (count + items.len() + rollups(built[b].0), bytes + size);
            keys.extend(own);
            groups.last_mut().expect("a group").push(b);
        }
        for mut group in groups {
            // A cancelled transaction wrote nothing: the changes that caused it
            // are answered, and the others are sent again without them.
            while !group.is_empty() {
                let mut items: Vec<TransactWriteItem> =
                    group.iter().flat_map(|b| built[*b].1.iter().cloned()).collect();
                let mut tally = Tally::default();
                for b in &group {
                    tally.merge(&changes[built[*b].0].rollup);
                }
                let shard = group.first().map_or(0, |b| rollup_shard(&changes[built[*b].0].lead.id));
                match self.rollup_items(&tally, shard) {
                    Ok(rollups) => items.extend(rollups),
                    Err(e) => {
                        for b in &group {
                            results[built[*b].0] = Some(Err(SaveError::Store(StoreError::Corrupt(e.to_string()))));
                        }
                        break;
                    }
                }
                let e = match self.transact(items).await {
                    Ok(()) => {
                        for b in &group {
                            results[built[*b].0] = Some(Ok(()));
                        }
                        break;
                    }
                    Err(e) => e,
                };
                let Some(reasons) = cancellation(&e) else {
                    // Refused whole (too large, throttled, unavailable): each
                    // change on its own, so that one cannot hold back the others.
                    for b in &group {
                        let i = built[*b].0;
                        results[i] = Some(self.save(&changes[i]).await);
                    }
                    break;
                };
                let mut at = 0;
                let mut failed = Vec::new();
                for b in &group {
                    let (i, items, parts) = &built[*b];
                    let own: Vec<(usize, &str)> = reasons
                        .iter()
                        .filter(|(r, _)| (at..at + items.len()).contains(r))
                        .map(|(r, code)| (r - at, *code))
                        .collect();
                    at += items.len();
                    if !own.is_empty() {
                        failed.push(*b);
                        results[*i] = Some(Err(cancelled(parts, &own).unwrap_or_else(|message| {
                            SaveError::Store(StoreError::Unavailable { message, source: None })
                        })));
                    }
                }
                if failed.is_empty() {
                    // Cancelled with no item named: each is answered as a conflict, to be decided again.
                    for b in &group {
                        results[built[*b].0] = Some(Err(SaveError::Conflict));
                    }
                    break;
                }
                group.retain(|b| !failed.contains(b));
            }
        }
        results.into_iter().map(|r| r.unwrap_or(Err(SaveError::Conflict))).collect()
    }

    async fn sla_due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Lead>, StoreError> {
        let items = self.query_due("sla_due", DUE_INDEX, ("gsi1pk", "gsi1sk"), SLA_PARTITION, now, limit).await?;
        items.iter().map(lead_from_item).collect()
    }

    async fn hygiene_due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Lead>, StoreError> {
        let items = self.query_due("hygiene_due", IDLE_INDEX, ("gsi2pk", "gsi2sk"), IDLE_PARTITION, now, limit).await?;
        items.iter().map(lead_from_item).collect()
    }

    async fn page(&self, after: Option<&str>, limit: usize) -> Result<(Vec<Lead>, Option<String>), StoreError> {
        // The page token is the key the scan stopped at, `{"pk", "sk"}` as JSON.
        let start = match after {
            Some(token) => {
                let key: BTreeMap<String, String> =
                    serde_json::from_str(token).map_err(|e| StoreError::Corrupt(format!("not a page token: {e}")))?;
                Some(key.into_iter().map(|(k, v)| (k, s(v))).collect::<Item>())
            }
            None => None,
        };
        let r = self
            .client
            .scan()
            .table_name(&self.table)
            .set_exclusive_start_key(start)
            .limit(i32::try_from(limit.clamp(1, 1000)).unwrap_or(1000))
            .filter_expression("#sk = :lead")
            .expression_attribute_names("#sk", "sk")
            .expression_attribute_values(":lead", s(LEAD_SK))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .boxed()
            .await
            .map_err(|e| unavailable("Scan (page)", e))?;
        let items = r.items.unwrap_or_default();
        self.meter("page", r.consumed_capacity.as_slice(), items.len());
        let leads = items.iter().map(lead_from_item).collect::<Result<Vec<_>, _>>()?;
        let next = r.last_evaluated_key.as_ref().map(|k| {
            let key: BTreeMap<&str, &str> = ["pk", "sk"].into_iter().filter_map(|n| Some((n, get_s(k, n)?))).collect();
            serde_json::to_string(&key).unwrap_or_default()
        });
        Ok((leads, next))
    }

    async fn sweep_state(&self) -> Result<SweepState, StoreError> {
        let r = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(SWEEP_PK))
            .key("sk", s(SWEEP_PK))
            .consistent_read(true)
            .send()
            .boxed()
            .await
            .map_err(|e| unavailable("GetItem (sweep)", e))?;
        Ok(r.item.as_ref().map(|i| get_json(i, "doc")).transpose()?.flatten().unwrap_or_default())
    }

    async fn save_sweep_state(&self, state: &SweepState) -> Result<(), StoreError> {
        let item = HashMap::from([
            ("pk".to_owned(), s(SWEEP_PK)),
            ("sk".to_owned(), s(SWEEP_PK)),
            ("doc".to_owned(), s(serde_json::to_string(state).unwrap_or_default())),
        ]);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .boxed()
            .await
            .map_err(|e| unavailable("PutItem (sweep)", e))?;
        Ok(())
    }

    async fn queue(&self, queue: Queue<'_>, limit: usize) -> Result<Vec<Lead>, StoreError> {
        let far = DateTime::from_timestamp(253_402_300_799, 0).unwrap_or_default();
        let partition = queue_partition(queue);
        let items = self.query_due("queue", QUEUE_INDEX, ("gsi3pk", "gsi3sk"), &partition, far, usize::MAX).await?;
        let mut leads = items.iter().map(lead_from_item).collect::<Result<Vec<Lead>, StoreError>>()?;
        queue_order(&mut leads);
        leads.truncate(limit);
        Ok(leads)
    }

    /// Lists leads by scanning the table: for the CLI and small tables, never
    /// used by the functions.
    async fn list(&self, filter: &LeadFilter) -> Result<Vec<Lead>, StoreError> {
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .filter_expression("#sk = :lead")
            .expression_attribute_names("#sk", "sk")
            .expression_attribute_values(":lead", s(LEAD_SK))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let r = page.map_err(|e| unavailable("Scan", e))?;
            let items = r.items.unwrap_or_default();
            self.meter("list", r.consumed_capacity.as_slice(), items.len());
            for item in &items {
                let lead = lead_from_item(item)?;
                if filter.status.is_none_or(|st| st == lead.status)
                    && filter.owner.as_ref().is_none_or(|o| lead.owner.as_ref() == Some(o))
                {
                    out.push(lead);
                }
            }
        }
        out.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }
}

impl Nonces for DynamoStore {
    /// One conditional put: the nonce's item is written only if there is none,
    /// or the one there expired (DynamoDB's TTL deletes it some time after).
    async fn spend(&self, nonce: &str, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let item = HashMap::from([
            ("pk".to_owned(), s(format!("NONCE#{nonce}"))),
            ("sk".to_owned(), s(NONCE_SK)),
            (TTL_ATTRIBUTE.to_owned(), n(expires_at.timestamp())),
        ]);
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR #ttl <= :now")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":now", n(now.timestamp()))
            .send()
            .boxed()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.as_service_error(), Some(PutItemError::ConditionalCheckFailedException(_))) => {
                Ok(false)
            }
            Err(e) => Err(unavailable("PutItem (nonce)", e)),
        }
    }
}

impl Team for DynamoStore {
    async fn team_state(&self, reps: &[&str], account: Option<&str>) -> Result<TeamState, StoreError> {
        let key = |pk: String, sk: &str| HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))]);
        let mut keys: Vec<Item> = reps.iter().map(|r| key(format!("REP#{r}"), REP_SK)).collect();
        keys.extend(account.map(|d| key(format!("ACCOUNT#{d}"), ACCOUNT_SK)));
        let mut state = TeamState { open: reps.iter().map(|r| ((*r).to_owned(), 0)).collect(), ..TeamState::default() };
        for item in &self.batch_get("team_state", keys).await? {
            let pk = get_s(item, "pk").unwrap_or_default();
            if let Some(rep) = pk.strip_prefix("REP#") {
                state.open.insert(rep.to_owned(), get_n::<i64>(item, "open").unwrap_or(0).max(0) as u32);
                if let Some(doc) = get_s(item, "settings") {
                    let settings = serde_json::from_str(doc)
                        .map_err(|e| StoreError::Corrupt(format!("the settings of rep {rep}: {e}")))?;
                    state.settings.insert(rep.to_owned(), settings);
                }
            } else if pk.starts_with("ACCOUNT#") {
                state.account_owner = get_s(item, "owner").map(str::to_owned);
            }
        }
        Ok(state)
    }

    /// One conditional update of the rep's item (the one that holds the
    /// open-lead count), on the settings document as it was read.
    async fn set_rep_settings(
        &self,
        rep: &str,
        expected: Option<&RepSettings>,
        next: Option<&RepSettings>,
    ) -> Result<bool, StoreError> {
        let doc = |s: &RepSettings| serde_json::to_string(s).unwrap_or_default();
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("REP#{rep}")))
            .key("sk", s(REP_SK))
            .expression_attribute_names("#settings", "settings");
        update = match expected {
            Some(e) => {
                update.condition_expression("#settings = :expected").expression_attribute_values(":expected", s(doc(e)))
            }
            None => update.condition_expression("attribute_not_exists(#settings)"),
        };
        update = match next {
            Some(n) => {
                update.update_expression("SET #settings = :next").expression_attribute_values(":next", s(doc(n)))
            }
            None => update.update_expression("REMOVE #settings"),
        };
        match update.send().boxed().await {
            Ok(_) => Ok(true),
            Err(e) if is_conditional_failure(&e) => Ok(false),
            Err(e) => Err(unavailable("UpdateItem (rep settings)", e)),
        }
    }

    async fn set_open_leads(&self, rep: &str, expected: u32, open: u32) -> Result<bool, StoreError> {
        let condition =
            if expected == 0 { "attribute_not_exists(#open) OR #open = :expected" } else { "#open = :expected" };
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("REP#{rep}")))
            .key("sk", s(REP_SK))
            .update_expression("SET #open = :open")
            .condition_expression(condition)
            .expression_attribute_names("#open", "open")
            .expression_attribute_values(":open", n(open))
            .expression_attribute_values(":expected", n(expected))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .boxed()
            .await;
        match r {
            Ok(r) => {
                self.meter("set_open_leads", r.consumed_capacity.as_slice(), 0);
                Ok(true)
            }
            Err(e) if is_conditional_failure(&e) => Ok(false),
            Err(e) => Err(unavailable("UpdateItem (open leads)", e)),
        }
    }

    async fn take_turn(&self, pool: &str) -> Result<u64, StoreError> {
        // The counter is also written inside hand-off transactions (a pick that
        // skipped members); DynamoDB refuses a plain update to an item in a
        // transaction in progress, which is worth a few quick retries.
        let mut attempt = 0;
        let r = loop {
            attempt += 1;
            let r = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(format!("POOL#{pool}")))
                .key("sk", s(POOL_SK))
                .update_expression("ADD #taken :one")
                .expression_attribute_names("#taken", "taken")
                .expression_attribute_values(":one", n(1))
                .return_values(ReturnValue::UpdatedNew)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .boxed()
                .await;
            match r {
                Err(e)
                    if attempt < 5
                        && matches!(e.as_service_error(), Some(UpdateItemError::TransactionConflictException(_))) =>
                {
                    tokio::time::sleep(std::time::Duration::from_millis(fastrand::u64(5..=20 * attempt))).await;
                }
                other => break other.map_err(|e| unavailable("UpdateItem", e))?,
            }
        };
        self.meter("take_turn", r.consumed_capacity.as_slice(), 0);
        let taken: u64 =
            r.attributes.as_ref().and_then(|a| get_n(a, "taken")).ok_or_else(|| {
                StoreError::Corrupt(format!("the turn counter of pool `{pool}` is not a whole number"))
            })?;
        Ok(taken.saturating_sub(1))
    }
}

/// An item of a save's transaction, to name the reason it was cancelled.
#[derive(Clone, Copy, Debug)]
enum Part<'a> {
    Lead,
    Event(&'a str),
    Rep(&'a str),
    Other(&'static str),
}

/// The most items DynamoDB takes in one TransactWriteItems.
const MAX_TRANSACTION_ITEMS: usize = 100;

/// Roll-up counters are attributes named by this and the counter.
const ROLLUP_COUNTER: &str = "c:";

/// How many items each roll-up is spread over: decisions about different
/// leads add to different shards (by lead id), so that concurrent
/// transactions rarely touch the same item (DynamoDB cancels them with
/// `TransactionConflict`); a report sums the shards.
pub const ROLLUP_SHARDS: u8 = 8;

/// The shard a lead's decisions add to.
fn rollup_shard(id: &LeadId) -> u8 {
    id.as_str().bytes().next().map_or(0, |b| b % ROLLUP_SHARDS)
}

/// A roll-up's key: its month's partition (`ROLLUP#2026-03`), and the
/// dimension's kind, the day, its value and the shard (`all#2026-03-02#5`,
/// `rep#2026-03-02#ana#5`), so a report reads a month of one kind per query.
fn rollup_key(key: &RollupKey, shard: u8) -> (String, String) {
    let pk = format!("ROLLUP#{}", key.day.format("%Y-%m"));
    let sk = match &key.dim {
        Dim::All => format!("all#{}#{shard}", key.day),
        dim => format!("{}#{}#{}#{shard}", dim.kind(), key.day, dim.value()),
    };
    (pk, sk)
}

/// The cancellation reasons of a cancelled transaction (index of the item,
/// code), or `None` for any other failure.
fn cancellation(
    e: &SdkError<aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError>,
) -> Option<Vec<(usize, &str)>> {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError as E;
    let Some(E::TransactionCanceledException(c)) = e.as_service_error() else {
        return None;
    };
    Some(
        c.cancellation_reasons()
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.code().filter(|code| *code != "None").map(|code| (i, code)))
            .collect(),
    )
}

/// What one TransactWriteItems may carry, with room to spare under
/// DynamoDB's 4 MB.
const TRANSACTION_BYTES: usize = 3 * 1024 * 1024;

/// About how many bytes an item of a transaction is: its attribute names and
/// values (numbers, booleans and nested values counted generously).
fn item_bytes(item: &TransactWriteItem) -> usize {
    let attributes = match (item.put(), item.update()) {
        (Some(put), _) => put.item(),
        (None, Some(update)) => update.key(),
        _ => return 0,
    };
    attributes
        .iter()
        .map(|(name, value)| {
            name.len()
                + match value {
                    AttributeValue::S(text) => text.len(),
                    AttributeValue::N(number) => number.len(),
                    _ => 64,
                }
        })
        .sum::<usize>()
        + 256
}

/// The key (`pk`, `sk`) of a transaction's item.
fn item_key(item: &TransactWriteItem) -> Option<(String, String)> {
    let key = match (item.put(), item.update()) {
        (Some(put), _) => put.item(),
        (None, Some(update)) => update.key(),
        _ => return None,
    };
    Some((get_s(key, "pk")?.to_owned(), get_s(key, "sk")?.to_owned()))
}

/// What a cancelled save means, from its reasons (index into `parts`, code):
/// the lead's version, a rep's capacity or an event id already recorded are
/// races to decide again; `TransactionConflict` is a concurrent write to the
/// same items. Anything else is an error whose message names every reason.
fn cancelled(parts: &[Part<'_>], reasons: &[(usize, &str)]) -> Result<SaveError, String> {
    for &(i, code) in reasons {
        match (parts.get(i), code) {
            (Some(Part::Lead), "ConditionalCheckFailed") => return Ok(SaveError::LeadChanged),
            (Some(Part::Event(id)), "ConditionalCheckFailed") => {
                return Ok(SaveError::Duplicate { event_id: (*id).to_owned() });
            }
            (Some(Part::Rep(rep)), "ConditionalCheckFailed") => {
                return Ok(SaveError::AtCapacity { rep: (*rep).to_owned() });
            }
            _ => {}
        }
    }
    // A concurrent write or throttling on an item: nothing was written, and
    // deciding again is safe.
    let transient = |code: &str| {
        matches!(
            code,
            "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded" | "RequestLimitExceeded"
        )
    };
    if !reasons.is_empty() && reasons.iter().all(|(_, code)| transient(code)) {
        return Ok(SaveError::Conflict);
    }
    let named: Vec<String> = reasons
        .iter()
        .map(|&(i, code)| {
            let what = match parts.get(i) {
                Some(Part::Lead) => "the lead".to_owned(),
                Some(Part::Event(id)) => format!("event id {id}"),
                Some(Part::Rep(rep)) => format!("rep {rep}'s open-lead count"),
                Some(Part::Other(what)) => (*what).to_owned(),
                None => format!("item {i}"),
            };
            format!("{what}: {code}")
        })
        .collect();
    Err(format!("DynamoDB cancelled the save ({})", named.join(", ")))
}

impl History for DynamoStore {
    async fn history(&self, id: &LeadId) -> Result<Vec<HistoryEntry>, StoreError> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :h)")
            .expression_attribute_values(":pk", s(lead_pk(id)))
            .expression_attribute_values(":h", s("H#"))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let r = page.map_err(|e| unavailable("Query", e))?;
            let items = r.items.unwrap_or_default();
            self.meter("history", r.consumed_capacity.as_slice(), items.len());
            for item in &items {
                // A decision's records as a list; an entry of its own from older versions.
                let doc: serde_json::Value =
                    get_json(item, "doc")?.ok_or_else(|| StoreError::Corrupt("history item without doc".into()))?;
                let corrupt = |e: serde_json::Error| StoreError::Corrupt(format!("a history item is not valid: {e}"));
                match doc {
                    serde_json::Value::Array(entries) => {
                        for entry in entries {
                            out.push(serde_json::from_value(entry).map_err(corrupt)?);
                        }
                    }
                    entry => out.push(serde_json::from_value(entry).map_err(corrupt)?),
                }
            }
        }
        Ok(out)
    }
}

impl Outbox for DynamoStore {
    async fn due_notifications(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Pending>, StoreError> {
        let items =
            self.query_due("due_notifications", DUE_INDEX, ("gsi1pk", "gsi1sk"), OUTBOX_PARTITION, now, limit).await?;
        items
            .iter()
            .map(|i| get_json(i, "doc")?.ok_or_else(|| StoreError::Corrupt("outbox item without doc".into())))
            .collect()
    }

    async fn claim(&self, pending: &Pending, lease_until: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut next = pending.clone();
        next.lease_until = lease_until;
        next.attempts += 1;
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(lead_pk(&pending.notification.lead_id)))
            .key("sk", s(format!("OUTBOX#{}", pending.notification.id)))
            .update_expression("SET gsi1sk = :next, doc = :doc")
            .condition_expression("gsi1sk = :current")
            .expression_attribute_values(":current", outbox_sort_key(pending))
            .expression_attribute_values(":next", outbox_sort_key(&next))
            .expression_attribute_values(":doc", s(serde_json::to_string(&next).unwrap_or_default()))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .boxed()
            .await;
        match r {
            Ok(r) => {
                self.meter("claim", r.consumed_capacity.as_slice(), 0);
                Ok(true)
            }
            Err(e) if is_conditional_failure(&e) => Ok(false),
            Err(e) => Err(unavailable("UpdateItem (claim)", e)),
        }
    }

    async fn give_up(&self, notification: &Notification, at: DateTime<Utc>) -> Result<(), StoreError> {
        let values = vec![
            (":at", s(ts(at))),
            (":dead", s(DEAD_PARTITION)),
            (":key", s(format!("{}#{}", ts(at), notification.id))),
        ];
        let condition = "attribute_exists(pk) AND attribute_not_exists(sent_at)";
        self.settle_outbox(
            "give_up",
            notification,
            "SET dead_at = :at, gsi1pk = :dead, gsi1sk = :key",
            condition,
            values,
        )
        .await
    }

    async fn dead_letters(&self) -> Result<Vec<Pending>, StoreError> {
        // The last instant of year 9999: every dead letter's key sorts before it.
        let far = DateTime::from_timestamp(253_402_300_799, 0).unwrap_or_default();
        let items =
            self.query_due("dead_letters", DUE_INDEX, ("gsi1pk", "gsi1sk"), DEAD_PARTITION, far, usize::MAX).await?;
        items
            .iter()
            .map(|i| get_json(i, "doc")?.ok_or_else(|| StoreError::Corrupt("outbox item without doc".into())))
            .collect()
    }

    async fn mark_sent(&self, notification: &Notification, at: DateTime<Utc>) -> Result<(), StoreError> {
        let values = vec![(":at", s(ts(at)))];
        let update = "SET sent_at = :at REMOVE gsi1pk, gsi1sk";
        self.settle_outbox("mark_sent", notification, update, "attribute_exists(pk)", values).await
    }
}

impl Rollups for DynamoStore {
    async fn rollups(&self, from: NaiveDate, to: NaiveDate, kinds: &[&str]) -> Result<RollupRead, StoreError> {
        let mut read = RollupRead::default();
        if to < from {
            return Ok(read);
        }
        let mut summed: BTreeMap<RollupKey, BTreeMap<String, i64>> = BTreeMap::new();
        // One query per month and kind (more pages past 1 MB), between the
        // first and last day's keys; the shards are summed.
        let mut month = from.with_day(1).unwrap_or(from);
        while month <= to {
            let pk = format!("ROLLUP#{}", month.format("%Y-%m"));
            for kind in kinds {
                let mut start: Option<Item> = None;
                loop {
                    let r = self
                        .client
                        .query()
                        .table_name(&self.table)
                        .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
                        .expression_attribute_values(":pk", s(pk.clone()))
                        .expression_attribute_values(":from", s(format!("{kind}#{}#", from.max(month))))
                        .expression_attribute_values(":to", s(format!("{kind}#{to}#\u{10ffff}")))
                        .consistent_read(true)
                        .set_exclusive_start_key(start.take())
                        .return_consumed_capacity(ReturnConsumedCapacity::Total)
                        .send()
                        .boxed()
                        .await
                        .map_err(|e| unavailable("Query", e))?;
                    let items = r.items();
                    self.meter("rollups", r.consumed_capacity.as_slice(), items.len());
                    read.capacity_units += r.consumed_capacity.iter().filter_map(|c| c.capacity_units).sum::<f64>();
                    read.round_trips += 1;
                    read.items_read += items.len() as u64;
                    for item in items {
                        let (key, counts) = rollup_from_item(item)?;
                        let into = summed.entry(key).or_default();
                        for (name, n) in counts {
                            *into.entry(name).or_default() += n;
                        }
                    }
                    match r.last_evaluated_key() {
                        Some(key) if !key.is_empty() => start = Some(key.clone()),
                        _ => break,
                    }
                }
            }
            month = match month.checked_add_months(chrono::Months::new(1)) {
                Some(m) => m,
                None => break,
            };
        }
        read.rollups = summed.into_iter().map(|(key, counts)| Rollup { key, counts }).collect();
        Ok(read)
    }
}

/// A roll-up item (one shard) as its key and counts.
fn rollup_from_item(item: &Item) -> Result<(RollupKey, BTreeMap<String, i64>), StoreError> {
    let corrupt = || StoreError::Corrupt("a roll-up item without a valid key".to_owned());
    let sk = get_s(item, "sk").ok_or_else(corrupt)?;
    // KIND#DAY[#VALUE]#SHARD
    let (rest, _shard) = sk.rsplit_once('#').ok_or_else(corrupt)?;
    let (kind, rest) = rest.split_once('#').ok_or_else(corrupt)?;
    let (day, value) = match rest.split_once('#') {
        Some((day, value)) => (day, Some(value)),
        None => (rest, None),
    };
    let dim = match (kind, value) {
        ("all", None) => Dim::All,
        (kind, Some(value)) => Dim::parse(&format!("{kind}#{value}")).ok_or_else(corrupt)?,
        _ => return Err(corrupt()),
    };
    let key = RollupKey { day: day.parse().map_err(|_| corrupt())?, dim };
    let counts = item
        .iter()
        .filter_map(|(name, v)| Some((name.strip_prefix(ROLLUP_COUNTER)?.to_owned(), v.as_n().ok()?.parse().ok()?)))
        .collect();
    Ok((key, counts))
}
