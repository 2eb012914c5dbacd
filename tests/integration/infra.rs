//! The table `leadflow table create` makes is the table template.yaml declares,
//! and the generated subscriptions in infra/ are current.

use std::collections::BTreeSet;

use serde_yaml::Value;

use crate::moto::{endpoint, sdk_config, unique};
use crate::support::{leadflow, repo_root, stderr, stdout};

/// An index: name, key schema, projection.
type Index = (String, Vec<(String, String)>, String);

/// A table definition reduced to what must agree: keys, attribute
/// definitions, indexes (keys and projection), billing and TTL.
#[derive(Debug, PartialEq, Eq)]
struct Shape {
    keys: Vec<(String, String)>,
    attributes: BTreeSet<(String, String)>,
    indexes: BTreeSet<Index>,
    billing: String,
    ttl: Option<String>,
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_else(|| panic!("expected text, got {v:?}")).to_owned()
}

fn key_list(v: &Value) -> Vec<(String, String)> {
    v.as_sequence().expect("key schema").iter().map(|k| (text(&k["AttributeName"]), text(&k["KeyType"]))).collect()
}

fn template_shape() -> Shape {
    let template: Value =
        serde_yaml::from_str(&std::fs::read_to_string(repo_root().join("template.yaml")).expect("template.yaml"))
            .expect("template.yaml is YAML");
    let p = &template["Resources"]["LeadsTable"]["Properties"];
    let ttl = &p["TimeToLiveSpecification"];
    Shape {
        keys: key_list(&p["KeySchema"]),
        attributes: p["AttributeDefinitions"]
            .as_sequence()
            .expect("attribute definitions")
            .iter()
            .map(|a| (text(&a["AttributeName"]), text(&a["AttributeType"])))
            .collect(),
        indexes: p["GlobalSecondaryIndexes"]
            .as_sequence()
            .expect("indexes")
            .iter()
            .map(|i| (text(&i["IndexName"]), key_list(&i["KeySchema"]), text(&i["Projection"]["ProjectionType"])))
            .collect(),
        billing: text(&p["BillingMode"]),
        ttl: (ttl["Enabled"].as_bool() == Some(true)).then(|| text(&ttl["AttributeName"])),
    }
}

#[tokio::test]
async fn table_create_makes_the_table_template_yaml_declares() {
    let table = unique("created");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_leadflow"))
        .args(["table", "create", &table])
        .env("AWS_ENDPOINT_URL", endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .expect("run leadflow");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let client = aws_sdk_dynamodb::Client::new(&sdk_config(&endpoint()).await);
    let d = client.describe_table().table_name(&table).send().await.expect("describe");
    let t = d.table().expect("table");
    let keys = |k: &[aws_sdk_dynamodb::types::KeySchemaElement]| -> Vec<(String, String)> {
        k.iter().map(|e| (e.attribute_name().to_owned(), e.key_type().as_str().to_owned())).collect()
    };
    let ttl = client.describe_time_to_live().table_name(&table).send().await.expect("ttl");
    let ttl = ttl
        .time_to_live_description()
        .filter(|t| t.time_to_live_status() == Some(&aws_sdk_dynamodb::types::TimeToLiveStatus::Enabled));
    let created = Shape {
        keys: keys(t.key_schema()),
        attributes: t
            .attribute_definitions()
            .iter()
            .map(|a| (a.attribute_name().to_owned(), a.attribute_type().as_str().to_owned()))
            .collect(),
        indexes: t
            .global_secondary_indexes()
            .iter()
            .map(|i| {
                (
                    i.index_name().expect("name").to_owned(),
                    keys(i.key_schema()),
                    i.projection().and_then(|p| p.projection_type()).expect("projection").as_str().to_owned(),
                )
            })
            .collect(),
        billing: t
            .billing_mode_summary()
            .and_then(|b| b.billing_mode())
            .map(|b| b.as_str().to_owned())
            .unwrap_or_default(),
        ttl: ttl.and_then(|t| t.attribute_name()).map(str::to_owned),
    };
    assert_eq!(created, template_shape());
}

#[test]
fn the_checked_in_subscriptions_are_generated_from_routing_yaml() {
    let out = leadflow(&["subscriptions", "--out", "-"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let checked_in = std::fs::read_to_string(repo_root().join("infra/subscriptions.yaml")).unwrap_or_default();
    assert!(
        stdout(&out) == checked_in,
        "infra/subscriptions.yaml is stale: run `cargo run -- subscriptions` and commit the result"
    );
    for rep in ["ana", "ben", "mia"] {
        assert!(checked_in.contains(&format!("'{{\"owner\":[\"{rep}\"]}}'")), "no filter policy for {rep}");
    }
}

#[test]
fn subscriptions_for_another_team_follow_its_routing_yaml() {
    let dir = repo_root().join("tests/fixtures/conformance-rules");
    let out = leadflow(&["subscriptions", "--rules", dir.to_str().expect("path"), "--out", "-"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.matches("Protocol: sms").count(), 4);
    assert_eq!(text.matches("Protocol: email").count(), 4);
    assert!(text.contains("RioSmsSubscription") && text.contains("\"+15555550101\""));
    let parsed: Value = serde_yaml::from_str(&text).expect("the output is YAML");
    assert_eq!(parsed["Resources"].as_mapping().expect("resources").len(), 8);
}

/// The README's deploy steps are what a person types, in order, and each names
/// what the templates declare: the secret's parameter name, the output the
/// subscriptions stack takes, the files it deploys.
#[test]
fn the_readme_deploy_steps_agree_with_the_templates() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let section = &readme[readme.find("## Deploying with SAM").expect("a deploy section")..];
    let block = section.split("```sh\n").nth(1).and_then(|b| b.split("```").next()).expect("the deploy commands");
    let commands: Vec<&str> = block.lines().map(|l| l.split('#').next().unwrap_or("").trim()).collect();
    let position = |start: &str| {
        commands.iter().position(|c| c.starts_with(start)).unwrap_or_else(|| panic!("no `{start}` step in:\n{block}"))
    };
    let steps = [
        "pip install",
        "rustup target add aarch64-unknown-linux-gnu",
        "aws ssm put-parameter",
        "sam build",
        "sam deploy --guided",
        "aws cloudformation deploy",
    ]
    .map(position);
    assert!(steps.windows(2).all(|w| w[0] < w[1]), "the steps are out of order: {steps:?}\n{block}");

    let load = |path: &str| -> Value {
        serde_yaml::from_str(&std::fs::read_to_string(repo_root().join(path)).expect(path)).expect("YAML")
    };
    let template = load("template.yaml");
    let parameter = text(&template["Parameters"]["EventsSecretParameterName"]["Default"]);
    assert!(
        commands[steps[2]].contains(&format!("--name /{parameter} "))
            && commands[steps[2]].contains("--type SecureString"),
        "the secret step must create the SecureString /{parameter}: {}",
        commands[steps[2]]
    );
    let app_secret = text(&template["Parameters"]["AppSecretParameterName"]["Default"]);
    let app_step = commands
        .iter()
        .find(|c| c.starts_with("aws ssm put-parameter") && c.contains(&format!("--name /{app_secret} ")))
        .unwrap_or_else(|| panic!("no step creates the app secret /{app_secret}:\n{block}"));
    assert!(app_step.contains("--type SecureString"), "{app_step}");
    let subscriptions = &block[block.find("aws cloudformation deploy").expect("the subscriptions step")..];
    let file =
        subscriptions.split("--template-file ").nth(1).and_then(|s| s.split_whitespace().next()).expect("a file");
    let stack = load(file);
    let name =
        subscriptions.split("--parameter-overrides ").nth(1).and_then(|s| s.split('=').next()).expect("a parameter");
    assert!(stack["Parameters"][name].is_mapping(), "{file} takes no parameter {name}");
    assert!(template["Outputs"][name].is_mapping(), "template.yaml has no output {name}");
}
