//! The leads table: one DynamoDB table, on-demand, shaped by the access patterns.
//!
//! | item | pk | sk |
//! | --- | --- | --- |
//! | lead | `LEAD#<id>` | `LEAD` |
//! | a decision's history records | `LEAD#<id>` | `H#<time>#<version>#00` |
//! | notification (pending, sent or dead) | `LEAD#<id>` | `OUTBOX#<notification id>` |
//! | event id applied (with its answer; TTL) | `LEAD#<id>` | `EVENT#<event id>` |
//! | pool turn counter | `POOL#<pool>` | `TURNS` |
//! | rep's open leads | `REP#<rep>` | `LOAD` |
//! | company owner | `ACCOUNT#<domain>` | `OWNER` |
//! | a used one-time value (a sign-in link; TTL) | `NONCE#<nonce>` | `NONCE` |
//!
//! Three sparse indexes: `due` (`gsi1pk`, `gsi1sk`) holds leads whose SLA clock
//! runs (`SLA`, keyed by the next step's time), unsent notifications
//! (`OUTBOX`, keyed by the end of their lease) and dead letters (`DEAD`, keyed
//! by when they were given up); `idle` (`gsi2pk`, `gsi2sk`)
//! holds open leads keyed by the time their idleness next matters, derived from
//! their last activity; `queue` (`gsi3pk`, `gsi3sk`) holds the leads waiting for
//! a person, by owner (`OWNER#<rep>`) or unassigned (`UNASSIGNED`), keyed by
//! their last change, so a rep's page reads only their own leads. Items leave an index when the attributes are removed,
//! so neither job ever reads a lead it has nothing to do for. `expires_at`
//! (epoch seconds) is the TTL attribute.
//!
//! `template.yaml` declares the same table; a test keeps the two equal.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TimeToLiveSpecification,
};

pub const DUE_INDEX: &str = "due";
pub const IDLE_INDEX: &str = "idle";
pub const QUEUE_INDEX: &str = "queue";
pub const TTL_ATTRIBUTE: &str = "expires_at";

/// The key attributes: the table's, then each index's.
pub const KEY_ATTRIBUTES: [&str; 8] = ["pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk"];

fn key(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder().attribute_name(name).key_type(kind).build().expect("key schema element")
}

pub fn key_schema() -> Vec<KeySchemaElement> {
    vec![key("pk", KeyType::Hash), key("sk", KeyType::Range)]
}

pub fn attribute_definitions() -> Vec<AttributeDefinition> {
    KEY_ATTRIBUTES
        .iter()
        .map(|name| {
            AttributeDefinition::builder()
                .attribute_name(*name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attribute definition")
        })
        .collect()
}

pub fn global_secondary_indexes() -> Vec<GlobalSecondaryIndex> {
    [(DUE_INDEX, "gsi1pk", "gsi1sk"), (IDLE_INDEX, "gsi2pk", "gsi2sk"), (QUEUE_INDEX, "gsi3pk", "gsi3sk")]
        .into_iter()
        .map(|(name, hash, range)| {
            GlobalSecondaryIndex::builder()
                .index_name(name)
                .key_schema(key(hash, KeyType::Hash))
                .key_schema(key(range, KeyType::Range))
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .expect("index")
        })
        .collect()
}

pub fn billing_mode() -> BillingMode {
    BillingMode::PayPerRequest
}

pub fn time_to_live() -> TimeToLiveSpecification {
    TimeToLiveSpecification::builder().attribute_name(TTL_ATTRIBUTE).enabled(true).build().expect("ttl")
}

/// Creates the table (waiting until it is active) and turns on TTL.
pub async fn create(client: &aws_sdk_dynamodb::Client, table: &str) -> Result<(), aws_sdk_dynamodb::Error> {
    client
        .create_table()
        .table_name(table)
        .set_key_schema(Some(key_schema()))
        .set_attribute_definitions(Some(attribute_definitions()))
        .set_global_secondary_indexes(Some(global_secondary_indexes()))
        .billing_mode(billing_mode())
        .send()
        .await?;
    for _ in 0..600 {
        let d = client.describe_table().table_name(table).send().await?;
        if d.table().and_then(|t| t.table_status()) == Some(&aws_sdk_dynamodb::types::TableStatus::Active) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    client.update_time_to_live().table_name(table).time_to_live_specification(time_to_live()).send().await?;
    Ok(())
}
