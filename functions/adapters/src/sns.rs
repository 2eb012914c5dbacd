//! The SNS notifier: every notification is one message on the hand-off topic.
//!
//! `MessageStructure: json` carries a short `sms` body and the full `email` and
//! `default` bodies. Message attributes let each rep's subscriptions filter:
//! `owner` (String.Array: the rep ids the message is for, so a filter policy
//! `{"owner": ["ana"]}` matches every message for Ana, including escalations
//! that go to her as a manager), `kind`, `tier`, and `notification` (its id, for consumers that deduplicate).
//! The request is awaited boxed, as the DynamoDB store's are (see there).

use aws_sdk_sns::Client;
use aws_sdk_sns::types::MessageAttributeValue;
use futures_util::FutureExt as _;
use leadflow_app::{Direct, Notifier, NotifyError};
use leadflow_domain::Notification;

#[derive(Clone, Debug)]
pub struct SnsNotifier {
    client: Client,
    topic_arn: String,
}

impl SnsNotifier {
    pub fn new(client: Client, topic_arn: impl Into<String>) -> SnsNotifier {
        SnsNotifier { client, topic_arn: topic_arn.into() }
    }
}

/// The JSON message with one body per protocol.
pub fn message_body(n: &Notification) -> String {
    serde_json::json!({ "default": n.email, "email": n.email, "sms": n.sms }).to_string()
}

fn attribute(kind: &str, value: String) -> Result<MessageAttributeValue, NotifyError> {
    MessageAttributeValue::builder()
        .data_type(kind)
        .string_value(value)
        .build()
        .map_err(|e| NotifyError::new("cannot build a message attribute", e))
}

impl Notifier for SnsNotifier {
    async fn publish(&self, n: &Notification) -> Result<(), NotifyError> {
        let to = serde_json::to_string(&n.to).map_err(|e| NotifyError::new("cannot encode recipients", e))?;
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .message_structure("json")
            .message(message_body(n))
            .subject(n.subject.chars().take(100).collect::<String>())
            .message_attributes("owner", attribute("String.Array", to)?)
            .message_attributes("notification", attribute("String", n.id.clone())?)
            .message_attributes("kind", attribute("String", n.kind.as_str().to_owned())?)
            .message_attributes(
                "tier",
                attribute("String", if n.tier.is_empty() { "none".into() } else { n.tier.clone() })?,
            )
            .send()
            .boxed()
            .await
            .map_err(|e| NotifyError::new("SNS Publish failed", e))?;
        Ok(())
    }

    /// The same topic and attributes, so the rep's own subscriptions (which
    /// filter on `owner`) receive it: `tier` is `none`.
    async fn send(&self, m: &Direct) -> Result<(), NotifyError> {
        let body = serde_json::json!({ "default": m.email, "email": m.email, "sms": m.sms }).to_string();
        let to = serde_json::to_string(&[&m.to]).map_err(|e| NotifyError::new("cannot encode recipients", e))?;
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .message_structure("json")
            .message(body)
            .subject(m.subject.chars().take(100).collect::<String>())
            .message_attributes("owner", attribute("String.Array", to)?)
            .message_attributes("notification", attribute("String", m.id.clone())?)
            .message_attributes("kind", attribute("String", m.kind.to_owned())?)
            .message_attributes("tier", attribute("String", "none".to_owned())?)
            .send()
            .boxed()
            .await
            .map_err(|e| NotifyError::new("SNS Publish failed", e))?;
        Ok(())
    }
}
