//! What each operation costs on DynamoDB, measured on moto through the store's
//! `ReturnConsumedCapacity` meter: round trips and capacity units per
//! operation, and for the two scheduled jobs the items read per lead changed on
//! a table of 10,000 leads of which 100 are due. The figures are printed
//! (`--nocapture`); the assertions hold the design's bounds.
//!
//! moto answers every request with a fixed capacity figure, not one computed
//! from item sizes (and none for transactions), so the capacity it reports counts
//! requests as moto sees them; the round trips and items read are exact. What
//! DynamoDB itself would charge is estimated from the sizes of the items a
//! hand-off writes, read back from the table (see `estimate_by_size`).

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, Utc};
use leadflow_adapters::{DynamoStore, Usage};
use leadflow_app::{Change, Leadflow, Leads};
use leadflow_domain::{Email, Lead, LeadId, Profile, SlaClock, Status};

use crate::conformance::{Nowhere, at, conformance_rules};
use crate::moto::{endpoint, new_table, sdk_config};

fn profile(email: &str, vp: bool) -> Profile {
    let mut p = Profile::new(Email::parse(email).expect("email"));
    if vp {
        p.job_title = Some("VP Sales".into());
    }
    p
}

/// The usage since the last reset, cleared for the next step.
fn take(store: &DynamoStore) -> BTreeMap<&'static str, Usage> {
    let usage = store.usage();
    store.reset_usage();
    usage
}

fn round_trips(usage: &BTreeMap<&'static str, Usage>) -> u64 {
    usage.values().map(|u| u.round_trips).sum()
}

fn items_read(usage: &BTreeMap<&'static str, Usage>) -> u64 {
    usage.values().map(|u| u.items_read).sum()
}

fn report(what: &str, usage: &BTreeMap<&'static str, Usage>) {
    let parts: Vec<String> = usage
        .iter()
        .map(|(op, u)| format!("{op} x{} ({} CU, {} items read)", u.round_trips, u.capacity_units, u.items_read))
        .collect();
    let capacity: f64 = usage.values().map(|u| u.capacity_units).sum();
    println!("{what}: {} round trips, {capacity} CU: {}", round_trips(usage), parts.join(", "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_operation_takes_the_round_trips_it_is_designed_for() {
    let store = new_table(&sdk_config(&endpoint()).await).await;
    let app = Leadflow::new(conformance_rules(), store, Nowhere);
    let t0 = at("2026-03-02T14:00:00Z");

    app.capture(profile("new@example.com", false), &[], t0).await.expect("capture");
    let new = take(&app.store);
    report("capture, new lead", &new);
    assert_eq!((new["read"].round_trips, new["save"].round_trips), (1, 1), "one read, one write");
    assert_eq!(round_trips(&new), 2);

    let double = app.capture(profile("new@example.com", false), &[], t0 + Duration::seconds(1)).await.expect("capture");
    assert_eq!(double.lead.version, 1, "a double submit is one submission");
    let double_usage = take(&app.store);
    report("capture, the same form again (double submit)", &double_usage);
    assert_eq!(round_trips(&double_usage), 1, "one read, no write");

    let mut changed = profile("new@example.com", false);
    changed.company = Some("Initech".into());
    let repeat = app.capture(changed, &[], t0 + Duration::minutes(5)).await.expect("capture");
    assert!(!repeat.created);
    let repeat_usage = take(&app.store);
    report("capture, repeat", &repeat_usage);
    assert_eq!(round_trips(&repeat_usage), 2);

    let id = repeat.lead.id.clone();
    app.engage(&id, &[("email_click".to_owned(), 1)], t0 + Duration::minutes(6)).await.expect("engage");
    let rescore = take(&app.store);
    report("rescoring (one event)", &rescore);
    assert_eq!((rescore["get"].round_trips, rescore["save"].round_trips), (1, 1));
    assert_eq!(round_trips(&rescore), 2);

    let counts = [("email_click".to_owned(), 1)];
    let what = leadflow_app::Happening::Engagement(&counts);
    let later = t0 + Duration::minutes(7);
    app.record(&id, what, later, Some("evt-1"), later).await.expect("record").expect("lead");
    let with_id = take(&app.store);
    report("rescoring (one event with an id)", &with_id);
    assert_eq!((with_id["read"].round_trips, with_id["save"].round_trips), (1, 1), "lead and id read together");
    assert_eq!(round_trips(&with_id), 2);
    let repeat = app.record(&id, what, later, Some("evt-1"), later).await.expect("record").expect("lead");
    assert!(repeat.repeat);
    let repeat_usage = take(&app.store);
    report("a repeated event id", &repeat_usage);
    assert_eq!(round_trips(&repeat_usage), 1, "a repeat is one read, no write");

    let handed = app.capture(profile("vp@corp.com", true), &[], t0).await.expect("capture").lead;
    assert_eq!(handed.status, Status::Assigned);
    let assignment = take(&app.store);
    report("capture with assignment", &assignment);
    for op in ["read", "team_state", "take_turn", "save", "mark_sent"] {
        assert_eq!(assignment[op].round_trips, 1, "{op}");
    }
    assert_eq!(round_trips(&assignment), 5);

    estimate_by_size(&app.store, &handed.id).await;

    let deadline = handed.sla.expect("clock").deadline;
    let check = app.sla_check(deadline).await.expect("sla check");
    assert_eq!((check.leads_read, check.leads_changed), (1, 1));
    let sla = take(&app.store);
    report("SLA check, one lead due", &sla);
    assert_eq!(sla["sla_due"].round_trips, 1, "one query of the due index");
    assert_eq!(sla["sla_due"].items_read, 1);

    let hygiene_at = app.store.get(&handed.id).await.expect("get").expect("lead").hygiene_at.expect("hygiene");
    app.store.reset_usage();
    let cleanup = app.cleanup(hygiene_at).await.expect("cleanup");
    let hygiene = take(&app.store);
    report("clean-up", &hygiene);
    assert_eq!(hygiene["hygiene_due"].round_trips, 1, "one query of the idle index");
    assert_eq!(hygiene["hygiene_due"].items_read as usize, cleanup.leads_read);
}

/// An item's size as DynamoDB counts it: attribute names plus values (strings
/// by their UTF-8 bytes, numbers by about one byte per two digits, maps and
/// lists with a few bytes of overhead).
fn value_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(t) => t.len(),
        AttributeValue::N(t) => t.len().div_ceil(2) + 1,
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::M(m) => 3 + m.iter().map(|(k, v)| k.len() + value_size(v) + 1).sum::<usize>(),
        AttributeValue::L(l) => 3 + l.iter().map(|v| value_size(v) + 1).sum::<usize>(),
        AttributeValue::Ss(items) => items.iter().map(String::len).sum(),
        _ => 0,
    }
}

fn item_size(item: &std::collections::HashMap<String, AttributeValue>) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

/// What DynamoDB would charge for a hand-off, from the sizes of the items it
/// wrote: 1 write unit per KiB of each item written (twice that inside a
/// transaction), 1 read unit per 4 KiB strongly consistent, half that for the
/// eventually consistent index queries.
async fn estimate_by_size(store: &DynamoStore, id: &LeadId) {
    let r = store
        .client()
        .query()
        .table_name(store.table())
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(format!("LEAD#{id}")))
        .send()
        .await
        .expect("query the lead's partition");
    let mut sizes: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for item in r.items() {
        let sk = item.get("sk").and_then(|v| v.as_s().ok()).map_or("", String::as_str);
        let kind = if sk == "LEAD" {
            "lead"
        } else if sk.starts_with("H#") {
            "history"
        } else if sk.starts_with("EVENT#") {
            "event id"
        } else {
            "outbox"
        };
        sizes.entry(kind).or_default().push(item_size(item));
    }
    let kib = |bytes: usize| bytes.div_ceil(1024) as f64;
    let lead = sizes["lead"][0];
    let history: f64 = sizes["history"].iter().map(|b| kib(*b)).sum();
    let outbox: f64 = sizes["outbox"].iter().map(|b| kib(*b)).sum();
    let event_id: f64 = sizes.get("event id").map_or(0.0, |v| v.iter().map(|b| kib(*b)).sum());
    println!(
        "item sizes: lead {lead} B, history {:?} B, outbox {:?} B, form id {:?} B",
        sizes["history"],
        sizes["outbox"],
        sizes.get("event id")
    );
    // The consistent read of the lead, then the transaction.
    let read = (lead.div_ceil(4096) as f64).max(1.0);
    let save = 2.0 * (kib(lead) + history + event_id);
    // The team read: one strongly consistent read for each of the four reps
    // (these rules do not match accounts); the turn; the transaction with the
    // rep's count; marking the notification sent.
    let team = 4.0;
    let assignment = read + team + 1.0 + 2.0 * (kib(lead) + history + event_id + outbox + 1.0) + outbox;
    let query = |bytes: usize| (bytes.div_ceil(4096) as f64 * 0.5).max(0.5);
    println!("by size on DynamoDB: capture {read} RCU + {save} WCU (lead, history, form id); an event the same");
    println!(
        "by size on DynamoDB: capture with hand-off {assignment} units (read, team read, turn, transaction, mark sent)"
    );
    println!(
        "by size on DynamoDB: SLA-due or hygiene query returning 1 lead {} RCU, 100 leads {} RCU",
        query(lead),
        query(100 * lead)
    );
}

/// Seeds `count` leads with plain conditional puts, eight at a time.
async fn seed(store: &DynamoStore, leads: Vec<Lead>) {
    let store = Arc::new(store.clone());
    let mut chunks: Vec<Vec<Lead>> = (0..8).map(|_| Vec::new()).collect();
    for (i, lead) in leads.into_iter().enumerate() {
        chunks[i % 8].push(lead);
    }
    let workers: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for mut lead in chunk {
                    lead.version = 1;
                    store.save(&Change::of(lead, 0)).await.expect("seed");
                }
            })
        })
        .collect();
    for w in workers {
        w.await.expect("seed worker");
    }
}

/// Reports a job's usage on the 10,000 leads and holds it to at most 1.2 items
/// read per lead changed.
fn reads_per_change(job: &str, usage: &BTreeMap<&'static str, Usage>, changed: usize) {
    report(&format!("{job} on 10,000 leads, 100 due"), usage);
    let ratio = items_read(usage) as f64 / changed as f64;
    println!("{job}: {} items read for {changed} leads changed: {ratio:.2}", items_read(usage));
    assert!(ratio <= 1.2, "the {job} read {ratio:.2} items per lead changed");
}

/// 10,000 leads: 2,000 handed off with their SLA clock running (100 of them
/// past the deadline) and 8,000 nurturing (100 of them idle for 31 days).
fn ten_thousand_leads(now: DateTime<Utc>) -> Vec<Lead> {
    (0..10_000)
        .map(|i| {
            let recent = now - Duration::days(1);
            let mut lead = Lead::new(profile(&format!("lead{i}@seed{i}.com"), false), recent);
            lead.hygiene_at = Some(recent + Duration::days(30));
            if i < 2_000 {
                let deadline = if i < 100 { now - Duration::minutes(5) } else { now + Duration::hours(2) };
                lead.status = Status::Assigned;
                lead.owner = Some(["rio", "sam", "tia"][i % 3].to_owned());
                lead.pool = Some("trio".to_owned());
                lead.sla = Some(SlaClock { handed_off_at: deadline - Duration::hours(1), deadline, fired: 0 });
                lead.sla_due = Some(deadline);
            } else if i < 2_100 {
                let idle = now - Duration::days(31);
                lead.last_activity_at = idle;
                lead.hygiene_at = Some(idle + Duration::days(30));
            }
            lead
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_ten_thousand_leads_the_jobs_read_little_more_than_the_hundred_they_change() {
    let store = new_table(&sdk_config(&endpoint()).await).await;
    let now = at("2026-06-01T12:00:00Z");
    seed(&store, ten_thousand_leads(now)).await;
    let app = Leadflow::new(conformance_rules(), store, Nowhere);
    // The one-time repair sweep of older leads is done (it reads a page per
    // check until it is, see the conformance suite); the steady state is measured.
    let done = leadflow_app::SweepState { done_version: leadflow_app::service::SWEEP_VERSION, ..Default::default() };
    leadflow_app::Leads::save_sweep_state(&app.store, &done).await.expect("sweep done");
    app.store.reset_usage();

    let sla = app.sla_check(now).await.expect("sla check");
    assert_eq!((sla.leads_read, sla.leads_changed, sla.escalations), (100, 100, 100));
    reads_per_change("SLA check", &take(&app.store), sla.leads_changed);

    let cleanup = app.cleanup(now).await.expect("cleanup");
    assert_eq!((cleanup.leads_read, cleanup.leads_changed, cleanup.dormant), (100, 100, 100));
    reads_per_change("clean-up", &take(&app.store), cleanup.leads_changed);
}
