//! What a form post becomes: the posted fields, mapped by the source's rules in
//! `capture.yaml`, read into a profile. Only the email can refuse a lead: any
//! other value that does not fit its field is normalised when it can be
//! ("Germany" is DE, "51-200" employees is 51), otherwise kept as submitted
//! beside the profile (`raw`) and reported as a [`Warning`]; a value too long
//! is cut, fields past the limits are dropped and counted.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::lead::{
    Email, FieldError, FieldTarget, FieldValue, Profile, ProfileField, UnknownCountry, valid_custom_name,
};
use crate::rules::capture::{Capture, EmployeeBand, EventSpec};

/// A value that did not fit: which field, and what was wrong (the value itself
/// is on the lead, in `raw`, or was cut or dropped as the problem says).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    pub field: String,
    pub problem: String,
}

/// A form post, read.
#[derive(Clone, Debug, PartialEq)]
pub struct Form {
    pub profile: Profile,
    pub warnings: Vec<Warning>,
    /// A honeypot field was filled in: a bot. Nothing is stored.
    pub honeypot: bool,
    /// Where the sender asked the browser to go next (`_redirect`, `retURL`),
    /// as posted; the HTTP layer allows only its configured origins.
    pub redirect: Option<String>,
}

/// Why a post was refused: only ever about the email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    pub errors: BTreeMap<String, String>,
}

/// The form fields that name where a browser goes after posting.
pub const REDIRECT_FIELDS: [&str; 2] = ["_redirect", "retURL"];

/// Where page addresses a sender includes may carry UTM parameters.
const UTM_PARAMETERS: [(&str, ProfileField); 3] = [
    ("utm_source", ProfileField::UtmSource),
    ("utm_medium", ProfileField::UtmMedium),
    ("utm_campaign", ProfileField::UtmCampaign),
];

/// Reads the posted fields (name and text, in order) of a post from `source`.
///
/// The email, the redirect, the honeypots and every field the source maps or
/// that names a lead field are always read; the limits bound only the fields
/// nobody mapped (which become custom fields), so that a sender's own noise
/// never pushes out what matters.
pub fn read(capture: &Capture, source: Option<&str>, posted: Vec<(String, String)>) -> Result<Form, Refused> {
    let limits = &capture.limits;
    let spec = source.and_then(|s| capture.sources.get(s));
    let keeps_custom = spec.is_none_or(|s| s.custom_fields);
    // An authenticated sender is not a bot: its fields are never honeypots.
    let honeypots: &[String] = if spec.is_some_and(|s| s.auth.is_some()) { &[] } else { &capture.honeypots };
    let mut warnings = Vec::new();
    let mut email = None;
    let mut redirect = None;
    let mut honeypot = false;
    let mut fields: Vec<(FieldTarget, String)> = Vec::new();
    let mut pages: Vec<String> = Vec::new();
    let mut dropped = 0usize;
    let mut unmapped = 0usize;
    let mut custom = 0usize;
    for (name, value) in posted {
        let value = value.trim();
        if REDIRECT_FIELDS.contains(&name.as_str()) {
            redirect = (!value.is_empty()).then(|| value.to_owned()).or(redirect);
            continue;
        }
        if honeypots.contains(&name) {
            honeypot |= !value.is_empty();
            continue;
        }
        if value.is_empty() {
            continue;
        }
        // The source's mapping, a lead field's name, or the same in another
        // spelling ("First Name", "Email").
        let known = capture.mapped(source, &name).or_else(|| {
            custom_name(&name).and_then(|n| FieldTarget::parse(&n)).filter(|t| matches!(t, FieldTarget::Profile(_)))
        });
        let target = match known {
            Some(target) => target,
            None => {
                if looks_like_page(value) && pages.len() < 8 {
                    pages.push(value.to_owned());
                }
                unmapped += 1;
                let name = custom_name(&name).filter(|_| keeps_custom && unmapped <= limits.fields_per_post);
                match name {
                    Some(n) if custom < limits.custom_fields => {
                        custom += 1;
                        FieldTarget::Custom(n)
                    }
                    _ => {
                        dropped += 1;
                        continue;
                    }
                }
            }
        };
        if let FieldTarget::Profile(ProfileField::Email) = target {
            email = Some(value.to_owned());
            continue;
        }
        fields.push((target, value.to_owned()));
    }

    let email = match email.as_deref().map(Email::parse) {
        None => return Err(refused("is required")),
        Some(Err(e)) => return Err(refused(&e.to_string())),
        Some(Ok(email)) => email,
    };
    let mut profile = Profile::new(email);
    for (target, value) in fields {
        let field = target.to_string();
        let (value, cut) = cut(&value, limits.value_chars);
        if cut {
            warnings
                .push(Warning { field: field.clone(), problem: format!("cut to {} characters", limits.value_chars) });
        }
        match read_value(target.clone(), &value, capture.employee_bands) {
            Ok(Some(parsed)) => profile.apply(parsed),
            Ok(None) => {}
            Err(e) => {
                profile.raw.insert(field.clone(), value);
                warnings.push(Warning { field, problem: format!("{e}; kept as submitted") });
            }
        }
    }
    // UTM parameters of a page address the sender sent (not the lead's own
    // website), for what the post did not say itself.
    for page in &pages {
        for (parameter, field) in UTM_PARAMETERS {
            if profile.text(field).is_none()
                && let Some(value) = query_parameter(page, parameter)
            {
                let (value, _) = cut(&value, limits.value_chars);
                if let Ok(Some(parsed)) = FieldValue::parse(FieldTarget::Profile(field), &value) {
                    profile.apply(parsed);
                }
            }
        }
    }
    for required in &capture.required {
        if !profile.has(required) && !profile.raw.contains_key(&required.to_string()) {
            warnings.push(Warning { field: required.to_string(), problem: "is required; the lead is kept".to_owned() });
        }
    }
    if dropped > 0 {
        warnings.push(Warning {
            field: "*".to_owned(),
            problem: format!("{dropped} field(s) dropped: past the limits, or not kept for this source"),
        });
    }
    if profile.source.is_none() {
        profile.source = source.map(str::to_owned);
    }
    Ok(Form { profile, warnings, honeypot, redirect })
}

/// An http(s) address with a query: maybe a page address with UTM parameters.
fn looks_like_page(value: &str) -> bool {
    (value.starts_with("https://") || value.starts_with("http://")) && value.contains('?')
}

/// A query parameter of an address.
fn query_parameter(address: &str, name: &str) -> Option<String> {
    let (_, query) = address.split_once('?')?;
    let query = query.split('#').next().unwrap_or("");
    form_urlencoded::parse(query.as_bytes()).find(|(k, v)| k == name && !v.is_empty()).map(|(_, v)| v.into_owned())
}

/// A source's webhook fields read as one leadflow event (`email`, `type`, and
/// `id` and `at` when the sender gives them), by the source's `events` paths.
/// `Err` says what is missing or not mapped.
pub fn read_event(spec: &EventSpec, fields: &[(String, String)]) -> Result<serde_json::Value, String> {
    let get = |path: &str| fields.iter().find(|(k, v)| k == path && !v.trim().is_empty()).map(|(_, v)| v.trim());
    let email = get(&spec.email).ok_or_else(|| format!("no email at `{}`", spec.email))?;
    let kind = match (&spec.fixed_kind, &spec.kind) {
        (Some(fixed), _) => fixed.clone(),
        (None, Some(path)) => {
            let theirs = get(path).ok_or_else(|| format!("no event type at `{path}`"))?;
            if spec.types.is_empty() {
                theirs.to_owned()
            } else {
                let mapped = spec
                    .types
                    .get(theirs)
                    .or_else(|| spec.types.iter().find(|(k, _)| k.eq_ignore_ascii_case(theirs)).map(|(_, v)| v));
                mapped.cloned().ok_or_else(|| {
                    format!(
                        "the event type `{}` is not mapped in capture.yaml",
                        theirs.chars().take(80).collect::<String>()
                    )
                })?
            }
        }
        (None, None) => return Err("the source names no event type".to_owned()),
    };
    let mut event = serde_json::json!({ "email": email, "type": kind });
    if let Some(id) = spec.id.as_deref().and_then(get) {
        event["id"] = serde_json::json!(id);
    }
    // A time the sender writes otherwise than RFC 3339 is left out: the event
    // then happened when it arrived.
    if let Some(at) = spec.at.as_deref().and_then(get).filter(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()) {
        event["at"] = serde_json::json!(at);
    }
    Ok(event)
}

fn refused(problem: &str) -> Refused {
    Refused { errors: BTreeMap::from([("email".to_owned(), problem.to_owned())]) }
}

/// `value` cut to `max` characters, and whether it was.
fn cut(value: &str, max: usize) -> (String, bool) {
    match value.char_indices().nth(max) {
        Some((at, _)) => (value[..at].trim_end().to_owned(), true),
        None => (value.to_owned(), false),
    }
}

/// At most this many fields are read from one JSON body.
pub const MAX_JSON_FIELDS: usize = 1000;
/// Longer paths are left out.
pub const MAX_PATH_BYTES: usize = 256;

/// A JSON body as form fields: scalars by their path (`company`,
/// `properties.email.value`, `data[0].email`), a list of scalars (checkboxes)
/// as one value joined by ", ", null and empty values left out. Nesting deeper
/// than 16 levels, paths over 256 bytes and fields past the first 1,000 are
/// left out too, so that no body costs more than a bounded amount to read.
pub fn flatten(value: &serde_json::Value) -> Vec<(String, String)> {
    fn walk(value: &serde_json::Value, path: &str, depth: usize, out: &mut Vec<(String, String)>) {
        use serde_json::Value as V;
        if depth > 16 || path.len() > MAX_PATH_BYTES || out.len() >= MAX_JSON_FIELDS {
            return;
        }
        match value {
            V::Null => {}
            V::String(s) => out.push((path.to_owned(), s.clone())),
            V::Number(n) => out.push((path.to_owned(), n.to_string())),
            V::Bool(b) => out.push((path.to_owned(), b.to_string())),
            V::Array(items) if items.iter().all(|i| !i.is_array() && !i.is_object()) => {
                let text: Vec<String> = items
                    .iter()
                    .filter_map(|i| match i {
                        V::String(s) => Some(s.clone()),
                        V::Null => None,
                        other => Some(other.to_string()),
                    })
                    .collect();
                if !text.is_empty() {
                    out.push((path.to_owned(), text.join(", ")));
                }
            }
            V::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(item, &format!("{path}[{i}]"), depth + 1, out);
                }
            }
            V::Object(map) => {
                for (key, item) in map {
                    let path = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                    walk(item, &path, depth + 1, out);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(value, "", 0, &mut out);
    out
}

/// A value read for its field, normalising what people send: employee bands
/// by `band`, countries by name (see [`crate::country`]).
pub fn read_value(target: FieldTarget, value: &str, band: EmployeeBand) -> Result<Option<FieldValue>, FieldError> {
    match &target {
        FieldTarget::Profile(ProfileField::Employees) => match employees(value, band) {
            Some(n) => FieldValue::parse(target, &n.to_string()),
            None => Err(FieldError::Employees { value: value.chars().take(80).collect() }),
        },
        FieldTarget::Profile(ProfileField::Country) => match crate::country::lookup(value) {
            Some(code) => FieldValue::parse(target, code.as_str()),
            None => Err(FieldError::UnknownCountry(UnknownCountry::new(value))),
        },
        _ => FieldValue::parse(target, value),
    }
}

/// A form field's name as a custom field name: lower case, anything but
/// letters, digits, `_` and `-` as `_`, at most 64 characters
/// ("How did you hear?" is `how_did_you_hear`).
pub fn custom_name(name: &str) -> Option<String> {
    let mut out = String::new();
    for c in name.trim().chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() || c == '-' {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let out: String = out.trim_matches('_').chars().take(64).collect();
    let out = out.trim_end_matches('_').to_owned();
    valid_custom_name(&out).then_some(out)
}

/// A head count as people and tools send it: a number ("2,000", "2.5k"), a
/// band ("51-200", "1,001 - 5,000", "10k+", "500 or more", "<10", "1 to 10
/// employees"), or "just me"; a band becomes one number by `band` (an open
/// band is its lower bound).
pub fn employees(text: &str, band: EmployeeBand) -> Option<i64> {
    let lower = text.trim().to_lowercase();
    if lower.starts_with('-') {
        return None;
    }
    if ["just me", "only me", "self-employed", "self employed", "solo", "me", "myself", "freelancer"]
        .contains(&lower.as_str())
    {
        return Some(1);
    }
    if !only_head_count_words(&lower) || mixed_scale(&lower) {
        return None;
    }
    let numbers = numbers(&lower)?;
    let open_above = lower.contains('+')
        || ["more than", "over", "above", "or more", "at least", ">"].iter().any(|w| lower.contains(w));
    let below = ["less than", "fewer than", "under", "below", "<"].iter().any(|w| lower.contains(w));
    let up_to = lower.contains("up to");
    let (lo, hi) = match numbers.as_slice() {
        [n] if below => (1.min(*n), Some((*n - 1).max(1))),
        [n] if up_to => (1.min(*n), Some(*n)),
        [n] if open_above => (*n, None),
        [n] => (*n, Some(*n)),
        [a, b] if a <= b => (*a, Some(*b)),
        _ => return None,
    };
    Some(match (band, hi) {
        (EmployeeBand::Lower, _) | (_, None) => lo,
        (EmployeeBand::Upper, Some(hi)) => hi,
        (EmployeeBand::Midpoint, Some(hi)) => (lo + hi) / 2,
    })
}

/// Whether `text` holds nothing but numbers, separators and the words of a
/// head count, so that "1e5", "10 thousand" or "2,5" in another notation are
/// kept as sent rather than read wrong.
fn only_head_count_words(text: &str) -> bool {
    const WORDS: [&str; 16] = [
        "more than",
        "fewer than",
        "less than",
        "or more",
        "at least",
        "up to",
        "employees",
        "employee",
        "people",
        "persons",
        "staff",
        "over",
        "above",
        "under",
        "below",
        "to",
    ];
    let mut rest = text.to_owned();
    for word in WORDS {
        rest = rest.replace(word, " ");
    }
    let bytes = rest.as_bytes();
    bytes.iter().enumerate().all(|(i, b)| {
        b.is_ascii_digit()
            || matches!(b, b' ' | b',' | b'.' | b'\'' | b'+' | b'<' | b'>' | b'-' | b'~')
            || (matches!(b, b'k' | b'm') && i > 0 && bytes[i - 1].is_ascii_digit())
    }) || rest.contains('\u{2013}')
        && rest.replace('\u{2013}', "-").bytes().all(|b| b.is_ascii_digit() || b" ,.'+<>-~".contains(&b))
}

/// The numbers in `text`: digits with `,` `.` `'` or a space between groups of
/// three as thousands separators, a decimal point otherwise, and an optional
/// `k` (thousand) or `m` (million). `None` for anything else with digits in it.
fn numbers(text: &str) -> Option<Vec<i64>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let mut digits = String::new();
        let mut fraction = String::new();
        while i < bytes.len() {
            let b = bytes[i];
            if b.is_ascii_digit() {
                digits.push(b as char);
                i += 1;
                continue;
            }
            let group = bytes.get(i + 1..i + 4).is_some_and(|g| g.iter().all(u8::is_ascii_digit))
                && bytes.get(i + 4).is_none_or(|b| !b.is_ascii_digit());
            if matches!(b, b',' | b'.' | b'\'' | b' ') && group && fraction.is_empty() {
                i += 1;
                continue;
            }
            if b == b',' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
                // "2,5": a decimal comma, or a list; either way no head count.
                return None;
            }
            if b == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) && fraction.is_empty() {
                i += 1;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    fraction.push(bytes[i] as char);
                    i += 1;
                }
                continue;
            }
            break;
        }
        let scale = match bytes.get(i) {
            Some(b'k') if !bytes.get(i + 1).is_some_and(u8::is_ascii_alphabetic) => 1_000.0,
            Some(b'm') if !bytes.get(i + 1).is_some_and(u8::is_ascii_alphabetic) => 1_000_000.0,
            _ => 1.0,
        };
        if !fraction.is_empty() && scale == 1.0 {
            // 1.5 people is no head count.
            return None;
        }
        if scale != 1.0 {
            i += 1;
        }
        let value: f64 = format!("{digits}.{}", if fraction.is_empty() { "0" } else { &fraction }).parse().ok()?;
        let n = (value * scale).round();
        if !(0.0..=1e12).contains(&n) {
            return None;
        }
        out.push(n as i64);
    }
    (!out.is_empty()).then_some(out)
}

/// Whether the numbers of `text` carry a `k` or `m` on some but not all.
fn mixed_scale(text: &str) -> bool {
    let bytes = text.as_bytes();
    let ends: Vec<bool> = bytes
        .iter()
        .enumerate()
        .filter(|(i, b)| {
            b.is_ascii_digit()
                && bytes.get(i + 1).is_none_or(|n| !n.is_ascii_digit() && !matches!(n, b',' | b'.' | b'\''))
        })
        .map(|(i, _)| matches!(bytes.get(i + 1), Some(b'k' | b'm')))
        .collect();
    ends.iter().any(|s| *s) && !ends.iter().all(|s| *s)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::*;
    use crate::rules::{RuleSet, RuleSources};

    fn starter() -> RuleSet {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules");
        RuleSet::load(&RuleSources::from_dir(&dir).expect("rules")).expect("starter rules")
    }

    fn post(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn real_world_values_never_refuse_a_lead() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tables/field_values.yaml");
        let table: BTreeMap<String, serde_yaml::Value> =
            serde_yaml::from_str(&std::fs::read_to_string(&path).expect("table")).expect("YAML");
        let rules = starter();
        let mut checked = 0;
        let mut failures = Vec::new();
        for (field, cases) in &table {
            if field.starts_with("emails_") {
                for email in cases.as_sequence().expect("emails") {
                    let email = email.as_str().expect("an email");
                    let read = read(&rules.capture, None, post(&[("email", email)]));
                    checked += 1;
                    if read.is_ok() != (field == "emails_accepted") {
                        failures.push(format!("email {email:?}: {read:?}"));
                    }
                }
                continue;
            }
            for case in cases.as_sequence().expect("cases") {
                let [value, expected] = case.as_sequence().expect("a pair").as_slice() else {
                    panic!("{field}: {case:?} is not a [value, expected] pair");
                };
                let value = value.as_str().expect("a text value");
                checked += 1;
                let form = match read(&rules.capture, None, post(&[("email", "jo@example.com"), (field, value)])) {
                    Ok(form) => form,
                    Err(refused) => {
                        failures.push(format!("{field} {value:?} refused the lead: {refused:?}"));
                        continue;
                    }
                };
                let target = FieldTarget::parse(field).expect("a lead field");
                let got = form.profile.value_text(&target);
                let raw = form.profile.raw.get(field.as_str());
                let ok = match expected {
                    serde_yaml::Value::String(e) if e == "raw" => {
                        got.is_none() && raw.map(String::as_str) == Some(value.trim()) && !form.warnings.is_empty()
                    }
                    serde_yaml::Value::String(e) => got.as_deref() == Some(e.as_str()) && raw.is_none(),
                    serde_yaml::Value::Number(n) => {
                        got.as_deref().and_then(|g| g.parse::<f64>().ok()) == n.as_f64() && raw.is_none()
                    }
                    other => panic!("{field}: unexpected {other:?}"),
                };
                if !ok {
                    failures.push(format!("{field} {value:?}: expected {expected:?}, got {got:?} (raw {raw:?})"));
                }
            }
        }
        assert!(checked >= 200, "{checked} values");
        assert!(failures.is_empty(), "{} of {checked}:\n{}", failures.len(), failures.join("\n"));
    }

    #[test]
    fn a_source_that_keeps_no_custom_fields_drops_and_counts_them() {
        let mut rules = starter();
        rules.capture.sources.get_mut("hubspot").expect("hubspot").custom_fields = false;
        let form = read(&rules.capture, Some("hubspot"), post(&[("email", "a@corp.com"), ("seats", "5"), ("x", "y")]))
            .expect("read");
        assert!(form.profile.custom.is_empty());
        assert!(form.warnings.iter().any(|w| w.problem.starts_with("2 field(s) dropped")), "{:?}", form.warnings);
        let kept = read(&rules.capture, None, post(&[("email", "a@corp.com"), ("seats", "5")])).expect("read");
        assert_eq!(kept.profile.custom.get("seats").map(String::as_str), Some("5"));
    }

    #[test]
    fn a_hostile_json_body_reads_into_a_bounded_number_of_short_fields() {
        // One 32 KB key over thousands of nested entries, and thousands of fields.
        let long = "k".repeat(32_000);
        let nested = serde_json::json!({ long: vec![serde_json::json!([{ "a": 1 }]); 8_000] });
        assert!(flatten(&nested).is_empty(), "every path is over the limit");
        let wide: serde_json::Map<String, serde_json::Value> =
            (0..5_000).map(|i| (format!("f{i}"), serde_json::json!("x"))).collect();
        let fields = flatten(&serde_json::Value::Object(wide));
        assert_eq!(fields.len(), MAX_JSON_FIELDS);
        let deep = (0..100).fold(serde_json::json!("x"), |v, _| serde_json::json!({ "d": v }));
        assert!(flatten(&deep).is_empty(), "nesting past 16 levels is left out");
    }

    #[test]
    fn nested_json_is_read_by_path() {
        let body = serde_json::json!({
            "properties": { "email": { "value": "a@corp.com" } },
            "data": [{ "company": "Acme" }],
            "interests": ["pricing", "api"],
            "empty": null,
        });
        let fields = flatten(&body);
        assert_eq!(
            fields,
            post(&[
                ("data[0].company", "Acme"),
                ("interests", "pricing, api"),
                ("properties.email.value", "a@corp.com")
            ])
        );
    }

    #[test]
    fn employee_bands_become_their_lower_bound_by_default() {
        for (text, lower, upper, mid) in [
            ("2000", 2000, 2000, 2000),
            ("2,000", 2000, 2000, 2000),
            ("2.000", 2000, 2000, 2000),
            ("2 000", 2000, 2000, 2000),
            ("51-200", 51, 200, 125),
            ("51 - 200", 51, 200, 125),
            ("1,001-5,000", 1001, 5000, 3000),
            ("1.001 – 5.000", 1001, 5000, 3000),
            ("1000+", 1000, 1000, 1000),
            ("10,000+", 10000, 10000, 10000),
            ("10k+", 10000, 10000, 10000),
            ("2.5k", 2500, 2500, 2500),
            ("1k-5k", 1000, 5000, 3000),
            ("500 or more", 500, 500, 500),
            ("More than 1000", 1000, 1000, 1000),
            ("Over 500 employees", 500, 500, 500),
            ("<10", 1, 9, 5),
            ("Less than 50", 1, 49, 25),
            ("1 to 10 employees", 1, 10, 5),
            ("11-50 employees", 11, 50, 30),
            ("Just me", 1, 1, 1),
            ("Self-employed", 1, 1, 1),
        ] {
            assert_eq!(employees(text, EmployeeBand::Lower), Some(lower), "{text}");
            assert_eq!(employees(text, EmployeeBand::Upper), Some(upper), "{text}");
            assert_eq!(employees(text, EmployeeBand::Midpoint), Some(mid), "{text}");
        }
    }

    #[test]
    fn what_is_no_head_count_is_none() {
        for text in [
            "lots",
            "",
            "n/a",
            "200-51",
            "1-2-3",
            "99999999999999999999",
            "100, 50",
            "10, 5",
            "1.5",
            "1e5",
            "10 thousand",
            "2 million",
            "1-10k",
            "2,5k",
        ] {
            assert_eq!(employees(text, EmployeeBand::Lower), None, "{text}");
        }
    }

    #[test]
    fn form_field_names_become_custom_field_names() {
        assert_eq!(custom_name("How did you hear about us?").as_deref(), Some("how_did_you_hear_about_us"));
        assert_eq!(custom_name("Team size").as_deref(), Some("team_size"));
        assert_eq!(custom_name("seats").as_deref(), Some("seats"));
        assert_eq!(custom_name("???"), None);
        assert_eq!(custom_name(&"x".repeat(100)).map(|n| n.len()), Some(64));
    }
}
