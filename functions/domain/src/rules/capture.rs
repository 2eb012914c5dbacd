//! `capture.yaml`: field mapping per source, required fields, the honeypot,
//! free email domains and the merge policy for repeat submissions.

use std::collections::BTreeMap;

use marked_yaml::Node;

use super::diag::suggest;
use super::text::KeyedList;
use super::yaml::{Doc, child, item, optional};
use crate::formats::Format;
use crate::lead::{FieldTarget, MAX_FIELD_CHARS, Profile, ProfileField};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergePolicy {
    /// A non-empty new value replaces the stored one.
    OverwriteIfPresent,
    /// The stored value stays; a new value only fills an empty field.
    KeepFirst,
}

/// How an employee band ("51-200") becomes one number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EmployeeBand {
    #[default]
    Lower,
    Upper,
    Midpoint,
}

/// What one post may bring, so that a lead stays far below what a store item
/// holds (DynamoDB's is 400 KB).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Fields read from one post; the rest are dropped and counted.
    pub fields_per_post: usize,
    /// Custom fields one post may add; the rest are dropped and counted.
    pub custom_fields: usize,
    /// Characters in one value; longer values are cut, with a warning.
    pub value_chars: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { fields_per_post: 100, custom_fields: 50, value_chars: 1000 }
    }
}

/// Custom fields times characters: at most this many characters of custom
/// text per post (200 KB in the worst UTF-8).
pub const MAX_CUSTOM_CHARS: usize = 50_000;

/// How a source's sender proves who it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceAuthKind {
    /// The secret in this header.
    Header(String),
    /// HTTP basic auth whose `user:password` is the secret.
    Basic,
    /// The secret in this query parameter (for senders that can set nothing
    /// but an address).
    Query(String),
    /// Typeform's `Typeform-Signature`.
    Typeform,
    /// Tally's `Tally-Signature`.
    Tally,
    /// Webflow's `x-webflow-signature` over its timestamp and the body.
    Webflow,
    /// HubSpot's `X-HubSpot-Signature-v3`.
    HubspotV3,
}

/// A source's authentication: how, and the environment variable holding the
/// secret (never the secret itself: the rules live in git).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceAuth {
    pub kind: SourceAuthKind,
    pub secret: String,
}

/// The vendor signatures `auth: { signature: NAME }` takes.
pub const SIGNATURES: [&str; 4] = ["typeform", "tally", "webflow", "hubspot_v3"];

/// Where a source's webhook body says what happened, for `POST
/// /events?source=NAME`: paths of its fields (after its `format`), and its own
/// event type names mapped to leadflow's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventSpec {
    /// The path of the lead's email.
    pub email: String,
    /// The path of the sender's event type; `None` with `type_is`.
    pub kind: Option<String>,
    /// The one event type a webhook that sends only one kind stands for.
    pub fixed_kind: Option<String>,
    /// The sender's event type to leadflow's (`"Clicks Link in Email": email_click`);
    /// empty: the sender's names are leadflow's.
    pub types: BTreeMap<String, String>,
    /// The path of the sender's id for the event, if it has one.
    pub id: Option<String>,
    /// The path of when it happened (RFC 3339), if it says.
    pub at: Option<String>,
}

/// One source's reading of its posts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// How its engagement and sales events are read, when it sends them.
    pub events: Option<EventSpec>,
    /// How its body is laid out.
    pub format: Format,
    /// How its sender proves who it is; `None`: anyone may post (a public form).
    pub auth: Option<SourceAuth>,
    /// Form field name to lead field.
    pub fields: BTreeMap<String, FieldTarget>,
    /// Whether fields it does not map are kept as custom fields.
    pub custom_fields: bool,
}

#[derive(Clone, Debug)]
pub struct Capture {
    pub required: Vec<FieldTarget>,
    /// Fields hidden from people; a post with any of them filled is a bot's.
    pub honeypots: Vec<String>,
    /// Lower case.
    pub free_email_domains: KeyedList,
    pub sources: BTreeMap<String, Source>,
    pub employee_bands: EmployeeBand,
    pub limits: Limits,
    /// Fields that keep their first value (first-touch attribution).
    pub keep_first: Vec<FieldTarget>,
    pub merge_default: MergePolicy,
}

impl Capture {
    #[inline]
    pub fn is_free_email(&self, domain: &str) -> bool {
        self.free_email_domains.position(domain).is_some()
    }

    /// The body format of posts from `source` (`fields` without one).
    pub fn format(&self, source: Option<&str>) -> Format {
        source.and_then(|s| self.sources.get(s)).map(|s| s.format).unwrap_or_default()
    }

    /// Where a posted form field goes by name: the source's mapping, else the
    /// lead field of that name (`email`, `custom.seats`); `None` otherwise (a
    /// custom field, if the source keeps them).
    pub fn mapped(&self, source: Option<&str>, form_field: &str) -> Option<FieldTarget> {
        if let Some(mapped) = source.and_then(|s| self.sources.get(s)).and_then(|m| m.fields.get(form_field)) {
            return Some(mapped.clone());
        }
        FieldTarget::parse(form_field)
    }

    /// A repeat submission merged into the stored profile. Empty values never
    /// overwrite; `keep_first` fields keep their first value.
    pub fn merge(&self, stored: &Profile, incoming: &Profile) -> Profile {
        let mut merged = stored.clone();
        for field in incoming.present_fields() {
            let keep = stored.has(&field)
                && (self.keep_first.contains(&field) || self.merge_default == MergePolicy::KeepFirst);
            if !keep {
                merged.take_field(incoming, &field);
            }
        }
        merged
    }
}

fn field_target(doc: &mut Doc<'_>, node: &Node, path: &str) -> Option<FieldTarget> {
    let name = doc.text(node, path)?;
    match FieldTarget::parse(&name) {
        Some(t) => Some(t),
        None => {
            let known: Vec<&str> = ProfileField::ALL.iter().map(|f| f.name()).collect();
            doc.error_hint(
                node.span(),
                path,
                format!("unknown lead field `{name}` (use `custom.{name}` for a field of your own)"),
                suggest(&name, known),
            );
            None
        }
    }
}

fn compile_events(doc: &mut Doc<'_>, node: &Node, path: &str) -> Option<EventSpec> {
    let m = doc.map(node, path)?;
    doc.only_keys(m, path, &super::schema::SOURCE_EVENTS.names());
    let mut text = |key: &str| optional(m, key).and_then(|n| doc.text(n, &child(path, key)));
    let email = text("email");
    let kind = text("type");
    let fixed_kind = text("type_is");
    let id = text("id");
    let at = text("at");
    let Some(email) = email else {
        doc.error(m.span(), &child(path, "email"), "`email` is required: the path of the lead's email");
        return None;
    };
    if kind.is_some() == fixed_kind.is_some() {
        doc.error(node.span(), path, "give exactly one of `type` (a path) or `type_is` (one event type)");
        return None;
    }
    let mut types = BTreeMap::new();
    if let Some(n) = optional(m, "types")
        && let Some(tm) = doc.map(n, &child(path, "types"))
    {
        for (theirs, ours) in tm.iter() {
            let p = child(&child(path, "types"), theirs.as_str());
            if let Some(ours) = doc.text(ours, &p) {
                if !crate::rules::field::valid_event_name(&ours) {
                    doc.error(&ours_span(tm, theirs.as_str()), &p, format!("`{ours}` is not an event type name"));
                }
                types.insert(theirs.as_str().to_owned(), ours);
            }
        }
    }
    if let Some(k) = &fixed_kind
        && !crate::rules::field::valid_event_name(k)
    {
        doc.error(node.span(), &child(path, "type_is"), format!("`{k}` is not an event type name"));
    }
    Some(EventSpec { email, kind, fixed_kind, types, id, at })
}

fn ours_span(map: &marked_yaml::types::MarkedMappingNode, key: &str) -> marked_yaml::Span {
    map.get_node(key).map(|n| *n.span()).unwrap_or(*map.span())
}

fn compile_auth(doc: &mut Doc<'_>, node: &Node, path: &str) -> Option<SourceAuth> {
    let m = doc.map(node, path)?;
    doc.only_keys(m, path, &super::schema::AUTH.names());
    let secret_node = doc.required(m, "secret", path)?;
    let secret_path = child(path, "secret");
    let secret = doc.text(secret_node, &secret_path)?;
    let variable = secret.bytes().next().is_some_and(|b| b.is_ascii_uppercase() || b == b'_')
        && secret.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if !variable {
        doc.error(
            secret_node.span(),
            &secret_path,
            format!("`{secret}` is not an environment variable name (A-Z, 0-9, _): name the variable that holds the secret, never the secret"),
        );
        return None;
    }
    let given: Vec<&str> =
        ["header", "basic", "query", "signature"].into_iter().filter(|k| optional(m, k).is_some()).collect();
    if given.len() != 1 {
        doc.error(node.span(), path, "give exactly one of header, basic, query or signature");
        return None;
    }
    let key = given[0];
    let value = optional(m, key)?;
    let key_path = child(path, key);
    let kind = match key {
        "basic" => match doc.boolean(value, &key_path)? {
            true => SourceAuthKind::Basic,
            false => {
                doc.error(value.span(), &key_path, "`basic: false` authenticates nothing; leave `auth` out instead");
                return None;
            }
        },
        "header" | "query" => {
            let name = doc.text(value, &key_path)?;
            if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                doc.error(value.span(), &key_path, format!("`{name}` is not a header or parameter name"));
                return None;
            }
            if key == "header" {
                SourceAuthKind::Header(name.to_ascii_lowercase())
            } else {
                SourceAuthKind::Query(name)
            }
        }
        _ => {
            let name = doc.text(value, &key_path)?;
            match name.as_str() {
                "typeform" => SourceAuthKind::Typeform,
                "tally" => SourceAuthKind::Tally,
                "webflow" => SourceAuthKind::Webflow,
                "hubspot_v3" => SourceAuthKind::HubspotV3,
                other => {
                    doc.error_hint(
                        value.span(),
                        &key_path,
                        format!("unknown signature `{other}`; expected one of {}", SIGNATURES.join(", ")),
                        suggest(other, SIGNATURES),
                    );
                    return None;
                }
            }
        }
    };
    Some(SourceAuth { kind, secret })
}

pub fn compile(doc: &mut Doc<'_>, root: &Node) -> Option<Capture> {
    let map = doc.map(root, "")?;
    doc.only_keys(map, "", &super::schema::CAPTURE.names());
    let errors_before = doc.diags.len();

    let mut required = vec![FieldTarget::Profile(ProfileField::Email)];
    if let Some(node) = optional(map, "required")
        && let Some(seq) = doc.seq(node, "required")
    {
        for (i, f) in seq.iter().enumerate() {
            if let Some(t) = field_target(doc, f, &item("required", i))
                && !required.contains(&t)
            {
                required.push(t);
            }
        }
    }

    // One name or a list.
    let mut honeypots = Vec::new();
    if let Some(node) = optional(map, "honeypot") {
        let names: Vec<(String, String, marked_yaml::Span)> = match node.as_sequence() {
            Some(seq) => seq
                .iter()
                .enumerate()
                .filter_map(|(i, n)| Some((doc.text(n, &item("honeypot", i))?, item("honeypot", i), *n.span())))
                .collect(),
            None => {
                doc.text(node, "honeypot").map(|n| vec![(n, "honeypot".to_owned(), *node.span())]).unwrap_or_default()
            }
        };
        for (name, path, span) in names {
            if FieldTarget::parse(&name).is_some_and(|t| matches!(t, FieldTarget::Profile(_))) {
                doc.error(
                    &span,
                    &path,
                    format!("`{name}` is a lead field; a honeypot must be a field no person fills in"),
                );
            }
            honeypots.push(name);
        }
    }

    let mut free_email_domains = KeyedList::default();
    if let Some(node) = optional(map, "free_email_domains")
        && let Some(seq) = doc.seq(node, "free_email_domains")
    {
        for (i, d) in seq.iter().enumerate() {
            let p = item("free_email_domains", i);
            if let Some(domain) = doc.text(d, &p) {
                let domain = domain.to_lowercase();
                if !domain.contains('.') || domain.contains('@') {
                    doc.error(d.span(), &p, format!("`{domain}` is not a domain like gmail.com"));
                }
                free_email_domains.insert(&domain);
            }
        }
    }

    let mut sources = BTreeMap::new();
    if let Some(node) = optional(map, "sources")
        && let Some(m) = doc.map(node, "sources")
    {
        for (name, spec) in m.iter() {
            let path = child("sources", name.as_str());
            let Some(s) = doc.map(spec, &path) else { continue };
            doc.only_keys(s, &path, &super::schema::SOURCE.names());
            let auth = optional(s, "auth").and_then(|n| compile_auth(doc, n, &child(&path, "auth")));
            let events = optional(s, "events").and_then(|n| compile_events(doc, n, &child(&path, "events")));
            if let (Some(n), None) = (optional(s, "events"), optional(s, "auth")) {
                doc.error(
                    n.span(),
                    &child(&path, "events"),
                    "a source that sends events must authenticate: add `auth`",
                );
            }
            let mut format = Format::default();
            if let Some(n) = optional(s, "format")
                && let Some(name) = doc.text(n, &child(&path, "format"))
            {
                match Format::parse(&name) {
                    Some(f) => format = f,
                    None => doc.error_hint(
                        n.span(),
                        &child(&path, "format"),
                        format!(
                            "unknown format `{name}`; expected one of {}",
                            Format::ALL.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                        ),
                        suggest(&name, Format::ALL.iter().map(|(n, _)| *n)),
                    ),
                }
            }
            let mut fields = BTreeMap::new();
            if let Some(f) = optional(s, "fields")
                && let Some(fm) = doc.map(f, &child(&path, "fields"))
            {
                for (form, lead) in fm.iter() {
                    if let Some(t) = field_target(doc, lead, &child(&child(&path, "fields"), form.as_str())) {
                        fields.insert(form.as_str().to_owned(), t);
                    }
                }
            }
            let custom_fields = match optional(s, "custom_fields") {
                Some(n) => doc.boolean(n, &child(&path, "custom_fields")).unwrap_or(true),
                None => true,
            };
            let fields = Source { events, format, auth, fields, custom_fields };
            sources.insert(name.as_str().to_owned(), fields);
        }
    }

    let mut employee_bands = EmployeeBand::default();
    if let Some(n) = optional(map, "employee_bands")
        && let Some(text) = doc.text(n, "employee_bands")
    {
        match text.as_str() {
            "lower" => employee_bands = EmployeeBand::Lower,
            "upper" => employee_bands = EmployeeBand::Upper,
            "midpoint" => employee_bands = EmployeeBand::Midpoint,
            other => doc.error_hint(
                n.span(),
                "employee_bands",
                format!("`{other}` is not lower, upper or midpoint"),
                suggest(other, ["lower", "upper", "midpoint"]),
            ),
        }
    }

    let mut limits = Limits::default();
    if let Some(node) = optional(map, "limits")
        && let Some(m) = doc.map(node, "limits")
    {
        doc.only_keys(m, "limits", &super::schema::CAPTURE_LIMITS.names());
        let mut read = |key: &str, range: std::ops::RangeInclusive<usize>, slot: &mut usize| {
            if let Some(n) = optional(m, key) {
                let path = child("limits", key);
                match doc.int(n, &path) {
                    Some(v) if usize::try_from(v).is_ok_and(|v| range.contains(&v)) => *slot = v as usize,
                    Some(v) => {
                        doc.error(n.span(), &path, format!("{v} is not from {} to {}", range.start(), range.end()))
                    }
                    None => {}
                }
            }
        };
        read("fields_per_post", 1..=500, &mut limits.fields_per_post);
        read("custom_fields", 0..=200, &mut limits.custom_fields);
        read("value_chars", 1..=MAX_FIELD_CHARS, &mut limits.value_chars);
        if limits.custom_fields * limits.value_chars > MAX_CUSTOM_CHARS {
            doc.error(
                node.span(),
                "limits",
                format!(
                    "custom_fields x value_chars is {}, over {MAX_CUSTOM_CHARS}: a lead could outgrow a store item",
                    limits.custom_fields * limits.value_chars
                ),
            );
        }
    }

    let mut keep_first = Vec::new();
    let mut merge_default = MergePolicy::OverwriteIfPresent;
    if let Some(node) = optional(map, "merge")
        && let Some(m) = doc.map(node, "merge")
    {
        doc.only_keys(m, "merge", &super::schema::MERGE.names());
        if let Some(n) = optional(m, "keep_first")
            && let Some(seq) = doc.seq(n, "merge.keep_first")
        {
            for (i, f) in seq.iter().enumerate() {
                if let Some(t) = field_target(doc, f, &item("merge.keep_first", i)) {
                    keep_first.push(t);
                }
            }
        }
        if let Some(n) = optional(m, "default")
            && let Some(text) = doc.text(n, "merge.default")
        {
            match text.as_str() {
                "overwrite_if_present" => merge_default = MergePolicy::OverwriteIfPresent,
                "keep_first" => merge_default = MergePolicy::KeepFirst,
                other => doc.error_hint(
                    n.span(),
                    "merge.default",
                    format!("`{other}` is not overwrite_if_present or keep_first"),
                    suggest(other, ["overwrite_if_present", "keep_first"]),
                ),
            }
        }
    }

    if doc.diags.len() > errors_before {
        return None;
    }
    Some(Capture {
        required,
        honeypots,
        free_email_domains,
        sources,
        employee_bands,
        limits,
        keep_first,
        merge_default,
    })
}
