//! `capture.yaml`: field mapping per source, required fields, the honeypot,
//! free email domains and the merge policy for repeat submissions.

use std::collections::BTreeMap;

use marked_yaml::Node;

use super::diag::suggest;
use super::text::KeyedList;
use super::yaml::{Doc, child, item, optional};
use crate::lead::{FieldTarget, Profile, ProfileField};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergePolicy {
    /// A non-empty new value replaces the stored one.
    OverwriteIfPresent,
    /// The stored value stays; a new value only fills an empty field.
    KeepFirst,
}

#[derive(Clone, Debug)]
pub struct Capture {
    pub required: Vec<FieldTarget>,
    pub honeypot: Option<String>,
    /// Lower case.
    pub free_email_domains: KeyedList,
    /// Per source: form field name to lead field.
    pub sources: BTreeMap<String, BTreeMap<String, FieldTarget>>,
    /// Fields that keep their first value (first-touch attribution).
    pub keep_first: Vec<FieldTarget>,
    pub merge_default: MergePolicy,
}

impl Capture {
    #[inline]
    pub fn is_free_email(&self, domain: &str) -> bool {
        self.free_email_domains.position(domain).is_some()
    }

    /// Where a posted form field goes: the source's mapping, else a field of the
    /// same name, else a custom field; `None` for names that cannot be stored.
    pub fn target_for(&self, source: Option<&str>, form_field: &str) -> Option<FieldTarget> {
        if let Some(mapped) = source.and_then(|s| self.sources.get(s)).and_then(|m| m.get(form_field)) {
            return Some(mapped.clone());
        }
        FieldTarget::parse(form_field).or_else(|| FieldTarget::parse(&format!("custom.{form_field}")))
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

pub fn compile(doc: &mut Doc<'_>, root: &Node) -> Option<Capture> {
    let map = doc.map(root, "")?;
    doc.only_keys(map, "", &["required", "honeypot", "free_email_domains", "sources", "merge"]);
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

    let honeypot = optional(map, "honeypot").and_then(|n| {
        let name = doc.text(n, "honeypot")?;
        if FieldTarget::parse(&name).is_some_and(|t| matches!(t, FieldTarget::Profile(_))) {
            doc.error(
                n.span(),
                "honeypot",
                format!("`{name}` is a lead field; the honeypot must be a field no person fills in"),
            );
        }
        Some(name)
    });

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
            doc.only_keys(s, &path, &["fields"]);
            let mut fields = BTreeMap::new();
            if let Some(f) = doc.required(s, "fields", &path)
                && let Some(fm) = doc.map(f, &child(&path, "fields"))
            {
                for (form, lead) in fm.iter() {
                    if let Some(t) = field_target(doc, lead, &child(&child(&path, "fields"), form.as_str())) {
                        fields.insert(form.as_str().to_owned(), t);
                    }
                }
            }
            sources.insert(name.as_str().to_owned(), fields);
        }
    }

    let mut keep_first = Vec::new();
    let mut merge_default = MergePolicy::OverwriteIfPresent;
    if let Some(node) = optional(map, "merge")
        && let Some(m) = doc.map(node, "merge")
    {
        doc.only_keys(m, "merge", &["keep_first", "default"]);
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
    Some(Capture { required, honeypot, free_email_domains, sources, keep_first, merge_default })
}
