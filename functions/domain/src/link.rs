//! Signed links: an action link names one lead and one rep and expires; a
//! sign-in link names one rep and expires within minutes. Both are compact
//! enough for an SMS, carry no personal data, and are checked with a MAC
//! compared in constant time. Pure: the caller passes "now" and the key.
//!
//! A token is the URL-safe base64 (no padding) of
//! `purpose (1 byte) | lead id (12 bytes, action links only) | expiry (4 bytes,
//! minutes since 1970, big-endian) | nonce (8 bytes, sign-in links only) |
//! rep id | MAC (12 bytes)`, the MAC being the first 12 bytes of
//! HMAC-SHA256 under the link key over everything before it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, Duration, TimeZone, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use thiserror::Error;

use crate::record::{LeadId, Notification, NotificationKind};

/// How long an action link works unless configured otherwise.
pub const DEFAULT_ACTION_TTL: Duration = Duration::days(7);
/// How long a sign-in link works.
pub const SIGN_IN_TTL: Duration = Duration::minutes(15);
/// The shortest secret links and sessions are made with.
pub const MIN_SECRET_BYTES: usize = 32;

const MAC_BYTES: usize = 12;
const LEAD_BYTES: usize = LeadId::LEN / 2;
const NONCE_BYTES: usize = 8;
/// The longest rep id a link carries (rep ids are short words in `routing.yaml`).
const MAX_REP_BYTES: usize = 64;
const ACTION: u8 = b'a';
const SIGN_IN: u8 = b's';

/// What a valid link grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grant {
    /// Acting on `lead` as `rep`.
    Action { lead: LeadId, rep: String, expires_at: DateTime<Utc> },
    /// Signing in as `rep`, once: `nonce` names this link, so that a used one
    /// can be refused.
    SignIn { rep: String, nonce: u64, expires_at: DateTime<Utc> },
}

/// Why a link is refused. The page says which, in words a rep understands.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum LinkError {
    #[error("this link is not a leadflow link, or it was cut short")]
    Malformed,
    #[error("this link was not made by leadflow")]
    Forged,
    #[error("this link has expired")]
    Expired,
}

/// The secret links are signed with, derived from the app secret.
#[derive(Clone)]
pub struct LinkKey([u8; 32]);

impl std::fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkKey(..)")
    }
}

/// A secret too short to sign with.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
#[error("the app secret must be at least {MIN_SECRET_BYTES} bytes long (it has {0})")]
pub struct ShortSecret(pub usize);

impl LinkKey {
    /// The link key for an app secret, derived for this purpose only (the
    /// same secret also keys sessions and CSRF tokens, each under its own label).
    pub fn derive(secret: &[u8]) -> Result<LinkKey, ShortSecret> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(ShortSecret(secret.len()));
        }
        Ok(LinkKey(derive_key(secret, b"leadflow links v1")))
    }

    fn mac(&self, data: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(data);
        mac
    }

    /// An action link's token for `rep` on `lead`, valid until `expires_at`.
    pub fn action_token(&self, lead: &LeadId, rep: &str, expires_at: DateTime<Utc>) -> String {
        let mut bytes = vec![ACTION];
        bytes.extend(lead_bytes(lead));
        bytes.extend(minutes(expires_at).to_be_bytes());
        bytes.extend(rep.as_bytes().iter().take(MAX_REP_BYTES));
        self.seal(bytes)
    }

    /// A sign-in link's token for `rep`, valid until `expires_at`; `nonce`
    /// makes each one distinct (the caller draws it at random).
    pub fn sign_in_token(&self, rep: &str, nonce: u64, expires_at: DateTime<Utc>) -> String {
        let mut bytes = vec![SIGN_IN];
        bytes.extend(minutes(expires_at).to_be_bytes());
        bytes.extend(nonce.to_be_bytes());
        bytes.extend(rep.as_bytes().iter().take(MAX_REP_BYTES));
        self.seal(bytes)
    }

    fn seal(&self, mut bytes: Vec<u8>) -> String {
        let tag = self.mac(&bytes).finalize().into_bytes();
        bytes.extend(&tag[..MAC_BYTES]);
        B64.encode(bytes)
    }

    /// What `token` grants at `now`: the MAC is checked before anything the
    /// token says is believed.
    pub fn open(&self, token: &str, now: DateTime<Utc>) -> Result<Grant, LinkError> {
        if token.len() > 4 * (1 + LEAD_BYTES + 4 + NONCE_BYTES + MAX_REP_BYTES + MAC_BYTES) / 3 + 4 {
            return Err(LinkError::Malformed);
        }
        let bytes = B64.decode(token).map_err(|_| LinkError::Malformed)?;
        let fixed = match bytes.first() {
            Some(&ACTION) => 1 + LEAD_BYTES + 4,
            Some(&SIGN_IN) => 1 + 4 + NONCE_BYTES,
            _ => return Err(LinkError::Malformed),
        };
        if bytes.len() <= fixed + MAC_BYTES {
            return Err(LinkError::Malformed);
        }
        let (body, tag) = bytes.split_at(bytes.len() - MAC_BYTES);
        self.mac(body).verify_truncated_left(tag).map_err(|_| LinkError::Forged)?;
        let rep = std::str::from_utf8(&body[fixed..]).map_err(|_| LinkError::Malformed)?.to_owned();
        let (expiry_at, grant) = match body[0] {
            ACTION => {
                let lead: String = body[1..1 + LEAD_BYTES].iter().map(|b| format!("{b:02x}")).collect();
                let lead = LeadId::parse(&lead).map_err(|_| LinkError::Malformed)?;
                let expires_at = from_minutes(&body[1 + LEAD_BYTES..fixed]);
                (expires_at, Grant::Action { lead, rep, expires_at })
            }
            _ => {
                let expires_at = from_minutes(&body[1..5]);
                let nonce = u64::from_be_bytes(body[5..fixed].try_into().map_err(|_| LinkError::Malformed)?);
                (expires_at, Grant::SignIn { rep, nonce, expires_at })
            }
        };
        if now >= expiry_at {
            return Err(LinkError::Expired);
        }
        Ok(grant)
    }
}

/// A key for one purpose from the app secret (HMAC-SHA256 of the label).
pub fn derive_key(secret: &[u8], label: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(label);
    mac.finalize().into_bytes().into()
}

fn lead_bytes(lead: &LeadId) -> Vec<u8> {
    let s = lead.as_str().as_bytes();
    s.chunks(2)
        .map(|pair| {
            let digit = |c: u8| if c.is_ascii_digit() { c - b'0' } else { c - b'a' + 10 };
            digit(pair[0]) << 4 | digit(pair[1])
        })
        .collect()
}

fn minutes(at: DateTime<Utc>) -> u32 {
    u32::try_from(at.timestamp().div_euclid(60).max(0)).unwrap_or(u32::MAX)
}

fn from_minutes(bytes: &[u8]) -> DateTime<Utc> {
    let m = u32::from_be_bytes(bytes.try_into().unwrap_or([0; 4]));
    Utc.timestamp_opt(i64::from(m) * 60, 0).single().unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Where links point and how long action links last.
#[derive(Clone, Debug)]
pub struct Links {
    /// The web app's address, without a trailing slash (`https://leads.example.com`).
    pub base_url: String,
    pub key: LinkKey,
    pub action_ttl: Duration,
}

/// Where a notification's email starts its recipient's links.
pub const LINKS_HEADER: &str = "\n-- Links for you alone --\n";

/// An email without its recipient's links, to pass on to someone else.
pub fn without_links(email: &str) -> &str {
    email.split(LINKS_HEADER).next().unwrap_or(email)
}

/// The actions a rep can take from a notification, in the order the email lists them.
pub const ACTIONS: [(&str, &str); 7] = [
    ("contacted", "Contacted"),
    ("contact_attempt", "No answer"),
    ("qualified", "Qualify"),
    ("disqualified", "Disqualify"),
    ("converted", "Converted"),
    ("nurture", "Back to nurture"),
    ("not_mine", "Not mine"),
];

impl Links {
    pub fn new(base_url: &str, key: LinkKey, action_ttl: Duration) -> Links {
        Links { base_url: base_url.trim_end_matches('/').to_owned(), key, action_ttl }
    }

    /// The action link for `rep` on `lead`, made at `now`.
    pub fn action_url(&self, lead: &LeadId, rep: &str, now: DateTime<Utc>) -> String {
        format!("{}/a/{}", self.base_url, self.key.action_token(lead, rep, now + self.action_ttl))
    }

    /// Adds the recipient's action link to a notification for one rep: the
    /// SMS ends with the link (its text cut to keep one message), and the
    /// email lists one link per action. A notification for several reps, or
    /// none, is left as it is: a link names one rep.
    pub fn address(&self, n: &mut Notification) {
        let [rep] = n.to.as_slice() else {
            return;
        };
        let url = self.action_url(&n.lead_id, rep, n.created_at);
        n.sms = crate::message::fit_sms_with_link(&n.sms, &url);
        let mut actions = String::from(LINKS_HEADER);
        if n.kind == NotificationKind::Unassigned {
            actions.push_str(&format!("\nAssign it: {url}\n"));
        } else {
            actions.push_str("\nAct on it (each link opens a page; nothing changes until you press its button):\n");
            for (action, label) in ACTIONS {
                actions.push_str(&format!("  {label}: {url}?do={action}\n"));
            }
        }
        let expires = (n.created_at + self.action_ttl).format("%Y-%m-%d %H:%M UTC");
        actions.push_str(&format!("These links are yours alone and work until {expires}.\n"));
        n.email.push_str(&actions);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> LinkKey {
        LinkKey::derive(&[7u8; 32]).unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn lead() -> LeadId {
        LeadId::parse("0123456789abcdef01234567").unwrap()
    }

    #[test]
    fn an_action_link_opens_to_its_lead_and_rep_until_it_expires() {
        let expires = at("2026-12-08T10:00:00Z");
        let token = key().action_token(&lead(), "ana", expires);
        assert!(token.len() <= 45, "{token}");
        let grant = key().open(&token, at("2026-12-08T09:59:00Z")).unwrap();
        assert_eq!(grant, Grant::Action { lead: lead(), rep: "ana".into(), expires_at: expires });
        assert_eq!(key().open(&token, expires), Err(LinkError::Expired));
    }

    #[test]
    fn a_sign_in_link_carries_its_nonce() {
        let expires = at("2026-12-01T10:15:00Z");
        let token = key().sign_in_token("mia", 42, expires);
        let grant = key().open(&token, at("2026-12-01T10:00:00Z")).unwrap();
        assert_eq!(grant, Grant::SignIn { rep: "mia".into(), nonce: 42, expires_at: expires });
    }

    #[test]
    fn a_changed_byte_or_another_key_is_a_forgery() {
        let now = at("2026-12-01T10:00:00Z");
        let token = key().action_token(&lead(), "ana", at("2026-12-08T10:00:00Z"));
        let other = LinkKey::derive(&[8u8; 32]).unwrap();
        assert_eq!(other.open(&token, now), Err(LinkError::Forged));
        let mut bytes = B64.decode(&token).unwrap();
        // The rep's id, changed to another rep's: the MAC no longer holds.
        let n = bytes.len() - MAC_BYTES - 1;
        bytes[n] = b'b';
        assert_eq!(key().open(&B64.encode(&bytes), now), Err(LinkError::Forged));
        // A later expiry, written in by hand.
        let mut bytes = B64.decode(&token).unwrap();
        bytes[1 + LEAD_BYTES] = 0xff;
        assert_eq!(key().open(&B64.encode(&bytes), now), Err(LinkError::Forged));
    }

    #[test]
    fn hostile_tokens_are_refused_without_a_panic() {
        let now = at("2026-12-01T10:00:00Z");
        let long = "A".repeat(10_000);
        for bad in ["", "a", "!!!!", "YQ", &long, "c29tZXRoaW5nIGVsc2UgZW50aXJlbHk", "YQAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"]
        {
            let got = key().open(bad, now);
            assert!(matches!(got, Err(LinkError::Malformed | LinkError::Forged)), "{bad:.20}: {got:?}");
        }
        // A sign-in token cut to its header: no rep.
        let token = key().sign_in_token("", 1, at("2026-12-01T10:15:00Z"));
        assert_eq!(key().open(&token, now), Err(LinkError::Malformed));
    }

    #[test]
    fn a_short_secret_is_refused() {
        assert_eq!(LinkKey::derive(b"too short").unwrap_err(), ShortSecret(9));
    }

    fn notification(to: &[&str], kind: NotificationKind) -> Notification {
        Notification {
            id: "n".into(),
            kind,
            lead_id: lead(),
            owner: Some("ana".into()),
            to: to.iter().map(|s| (*s).to_owned()).collect(),
            tier: "hot".into(),
            sms: format!("New lead: {}", "x".repeat(200)),
            subject: "s".into(),
            email: "body\n".into(),
            created_at: at("2026-12-01T10:00:00Z"),
        }
    }

    #[test]
    fn a_notification_for_one_rep_carries_their_link_in_one_sms() {
        let links = Links::new("https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/", key(), DEFAULT_ACTION_TTL);
        let mut n = notification(&["ana"], NotificationKind::Handoff);
        links.address(&mut n);
        let url = links.action_url(&lead(), "ana", at("2026-12-01T10:00:00Z"));
        assert!(n.sms.ends_with(&format!(" {url}")), "{}", n.sms);
        assert!(n.sms.chars().count() <= crate::message::SMS_MAX_GSM, "{}", n.sms.len());
        for (action, _) in ACTIONS {
            assert!(n.email.contains(&format!("{url}?do={action}\n")), "{action}");
        }
        let Grant::Action { rep, .. } = key().open(url.rsplit('/').next().unwrap(), n.created_at).unwrap() else {
            panic!("not an action link");
        };
        assert_eq!(rep, "ana");
        assert_eq!(without_links(&n.email), "body\n", "passed on without the links");
        // A notification for two reps gets no link: a link names one rep.
        let mut both = notification(&["ana", "mia"], NotificationKind::Escalation);
        let before = both.clone();
        links.address(&mut both);
        assert_eq!(both, before);
    }
}
