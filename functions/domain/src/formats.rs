//! How each sending system lays out a lead, read into plain form fields (name
//! and text) before `capture.yaml`'s field mapping applies. A source names its
//! format; `fields` (the default) reads a flat form or JSON object, nested
//! values by path (`properties.email.value`, `data[0].email`).
//!
//! Page addresses a format finds (HubSpot's `pageUri`, say) are kept as
//! fields, so that the form reader can take UTM parameters from them.

use serde_json::Value;

use crate::form::flatten;

/// A body as the HTTP layer read it.
#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    /// `application/json`.
    Json(Value),
    /// `application/x-www-form-urlencoded` or `multipart/form-data`: names and
    /// values in order.
    Pairs(Vec<(String, String)>),
}

/// The layouts leadflow reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// A flat form, or a JSON object read by path.
    #[default]
    Fields,
    /// PHP-style bracket keys (`contact[email]`, `tags[]`), as ActiveCampaign
    /// and many PHP form tools post them: read as paths (`contact.email`).
    Bracket,
    /// HubSpot Forms API v3: `fields: [{name, value}]`, `context` (page address
    /// and name, `hutk`), `legalConsentOptions`.
    HubspotForms,
    /// A HubSpot workflow webhook: flat properties, or `properties.X.value`.
    HubspotWorkflow,
    /// Typeform: `form_response.answers[]` by field `ref`, each read by its
    /// type, and `form_response.hidden`.
    Typeform,
    /// Tally: `data.fields[]` by label; choice ids read as their option text.
    Tally,
    /// Webflow form submissions: `payload.data`, by field label.
    Webflow,
    /// Jotform: the `rawRequest` field's JSON, each answer by its field name
    /// without the question number (`q3_name: {first, last}` is `name.first`,
    /// `name.last`), else the form fields.
    Jotform,
    /// Google Forms through Apps Script: `namedValues`, question title to a
    /// list of answers.
    GoogleForms,
    /// Zoho CRM: the record in `data[0]` (or the body itself).
    Zoho,
    /// Pipedrive: the person in `current` (v1) or `data` (v2), its `email` and
    /// `phone` lists read as their primary value.
    Pipedrive,
    /// Freshsales: the record under `lead` (or `contact`).
    Freshsales,
}

impl Format {
    pub const ALL: [(&'static str, Format); 12] = [
        ("fields", Format::Fields),
        ("bracket", Format::Bracket),
        ("hubspot_forms", Format::HubspotForms),
        ("hubspot_workflow", Format::HubspotWorkflow),
        ("typeform", Format::Typeform),
        ("tally", Format::Tally),
        ("webflow", Format::Webflow),
        ("jotform", Format::Jotform),
        ("google_forms", Format::GoogleForms),
        ("zoho", Format::Zoho),
        ("pipedrive", Format::Pipedrive),
        ("freshsales", Format::Freshsales),
    ];

    pub fn parse(name: &str) -> Option<Format> {
        Format::ALL.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    pub fn name(self) -> &'static str {
        Format::ALL.iter().find(|(_, f)| *f == self).map_or("fields", |(n, _)| n)
    }
}

/// The form fields of `body` in `format`. `Err` says why the body is not what
/// the format expects.
pub fn fields(format: Format, body: Body) -> Result<Vec<(String, String)>, String> {
    let out = match (format, body) {
        (Format::Fields, Body::Pairs(pairs)) => pairs,
        (Format::Bracket, Body::Pairs(pairs)) => pairs.into_iter().map(|(k, v)| (bracket_path(&k), v)).collect(),
        (Format::Jotform, Body::Pairs(pairs)) => jotform(pairs)?,
        // A JSON format's sender posting a plain form is read as one.
        (_, Body::Pairs(pairs)) => pairs,
        (Format::Fields | Format::Bracket | Format::Jotform, Body::Json(v)) => flatten(&v),
        (Format::HubspotForms, Body::Json(v)) => hubspot_forms(&v)?,
        (Format::HubspotWorkflow, Body::Json(v)) => hubspot_workflow(&v),
        (Format::Typeform, Body::Json(v)) => typeform(&v)?,
        (Format::Tally, Body::Json(v)) => tally(&v)?,
        (Format::Webflow, Body::Json(v)) => {
            let data = v.pointer("/payload/data").or_else(|| v.get("data")).ok_or("no `payload.data`")?;
            flatten(data)
        }
        (Format::GoogleForms, Body::Json(v)) => google_forms(&v)?,
        (Format::Zoho, Body::Json(v)) => flatten(v.pointer("/data/0").unwrap_or(&v)),
        (Format::Pipedrive, Body::Json(v)) => pipedrive(&v)?,
        (Format::Freshsales, Body::Json(v)) => flatten(v.get("lead").or_else(|| v.get("contact")).unwrap_or(&v)),
    };
    Ok(out)
}

/// `contact[email]` as `contact.email`, `a[b][c]` as `a.b.c`, `tags[]` as `tags`.
fn bracket_path(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for (i, part) in key.split('[').enumerate() {
        let part = part.strip_suffix(']').unwrap_or(part);
        if i > 0 && !part.is_empty() {
            out.push('.');
        }
        out.push_str(part);
    }
    out
}

/// A JSON value as one text: lists joined by ", ".
fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().filter_map(text).collect();
            (!parts.is_empty()).then(|| parts.join(", "))
        }
        Value::Object(_) => None,
        other => Some(other.to_string()),
    }
}

fn hubspot_forms(v: &Value) -> Result<Vec<(String, String)>, String> {
    let list = v.get("fields").and_then(Value::as_array).ok_or("no `fields` list")?;
    let mut out: Vec<(String, String)> = Vec::new();
    for f in list {
        let (Some(name), Some(value)) = (f.get("name").and_then(Value::as_str), f.get("value").and_then(text)) else {
            continue;
        };
        // A multi-value property arrives as one entry per value.
        match out.iter_mut().find(|(n, _)| n == name) {
            Some((_, existing)) => {
                existing.push(';');
                existing.push_str(&value);
            }
            None => out.push((name.to_owned(), value)),
        }
    }
    if let Some(context) = v.get("context") {
        for (key, name) in [("pageUri", "page_uri"), ("pageName", "page_name"), ("hutk", "hutk")] {
            if let Some(value) = context.get(key).and_then(text) {
                out.push((name.to_owned(), value));
            }
        }
    }
    if let Some(consent) = v.pointer("/legalConsentOptions/consent") {
        if let Some(process) = consent.get("consentToProcess").and_then(text) {
            out.push(("consent_to_process".to_owned(), process));
        }
        for c in consent.get("communications").and_then(Value::as_array).into_iter().flatten() {
            if let (Some(id), Some(value)) = (c.get("subscriptionTypeId").and_then(text), c.get("value").and_then(text))
            {
                out.push((format!("consent_subscription_{id}"), value));
            }
        }
    }
    Ok(out)
}

fn hubspot_workflow(v: &Value) -> Vec<(String, String)> {
    match v.get("properties").and_then(Value::as_object) {
        Some(props) => {
            let mut out: Vec<(String, String)> = props
                .iter()
                .filter_map(|(k, p)| Some((k.clone(), p.get("value").and_then(text).or_else(|| text(p))?)))
                .collect();
            if let Some(id) = v.get("vid").or_else(|| v.get("objectId")).and_then(text) {
                out.push(("hubspot_id".to_owned(), id));
            }
            // The page of the last form submission, for its UTM parameters.
            if let Some(page) = v.pointer("/form-submissions/0/page-url").and_then(text) {
                out.push(("page_url".to_owned(), page));
            }
            out
        }
        None => flatten(v),
    }
}

fn typeform(v: &Value) -> Result<Vec<(String, String)>, String> {
    let response = v.get("form_response").ok_or("no `form_response`")?;
    let mut out = Vec::new();
    for answer in response.get("answers").and_then(Value::as_array).into_iter().flatten() {
        let Some(name) = answer.pointer("/field/ref").or_else(|| answer.pointer("/field/id")).and_then(Value::as_str)
        else {
            continue;
        };
        let kind = answer.get("type").and_then(Value::as_str).unwrap_or("");
        let value = match kind {
            "choice" => answer.get("choice").and_then(|c| c.get("label").or_else(|| c.get("other"))).and_then(text),
            "choices" => {
                let c = answer.get("choices");
                let mut parts: Vec<String> = c.and_then(|c| c.get("labels")).and_then(text).into_iter().collect();
                parts.extend(c.and_then(|c| c.get("other")).and_then(text));
                (!parts.is_empty()).then(|| parts.join(", "))
            }
            "payment" => answer.pointer("/payment/amount").and_then(text),
            other => answer.get(other).and_then(text),
        };
        if let Some(value) = value {
            out.push((name.to_owned(), value));
        }
    }
    for (key, value) in response.get("hidden").and_then(Value::as_object).into_iter().flatten() {
        if let Some(value) = text(value) {
            out.push((key.clone(), value));
        }
    }
    Ok(out)
}

fn tally(v: &Value) -> Result<Vec<(String, String)>, String> {
    let list = v.pointer("/data/fields").and_then(Value::as_array).ok_or("no `data.fields` list")?;
    let mut out = Vec::new();
    for f in list {
        let Some(name) = f
            .get("label")
            .and_then(Value::as_str)
            .filter(|l| !l.is_empty())
            .or_else(|| f.get("key").and_then(Value::as_str))
        else {
            continue;
        };
        let options = f.get("options").and_then(Value::as_array);
        let option_text = |id: &Value| {
            options
                .and_then(|opts| opts.iter().find(|o| o.get("id") == Some(id)))
                .and_then(|o| o.get("text"))
                .and_then(text)
                .or_else(|| text(id))
        };
        let value = match f.get("value") {
            Some(Value::Array(ids)) if options.is_some() => {
                let parts: Vec<String> = ids.iter().filter_map(option_text).collect();
                (!parts.is_empty()).then(|| parts.join(", "))
            }
            Some(id @ Value::String(_)) if options.is_some() => option_text(id),
            Some(other) => text(other),
            None => None,
        };
        if let Some(value) = value {
            out.push((name.to_owned(), value));
        }
    }
    Ok(out)
}

fn jotform(pairs: Vec<(String, String)>) -> Result<Vec<(String, String)>, String> {
    match pairs.iter().find(|(k, _)| k == "rawRequest") {
        Some((_, raw)) => {
            let v: Value = serde_json::from_str(raw).map_err(|e| format!("`rawRequest` is not JSON: {e}"))?;
            // `q3_name` is question 3's `name` field; the numbers differ per form.
            Ok(flatten(&v)
                .into_iter()
                .map(|(k, v)| match k.strip_prefix('q').and_then(|r| r.split_once('_')) {
                    Some((n, rest)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => (rest.to_owned(), v),
                    _ => (k, v),
                })
                .collect())
        }
        None => Ok(pairs),
    }
}

fn google_forms(v: &Value) -> Result<Vec<(String, String)>, String> {
    let named = v.get("namedValues").unwrap_or(v).as_object().ok_or("no `namedValues` object")?;
    Ok(named.iter().filter_map(|(q, answers)| Some((q.trim().to_owned(), text(answers)?))).collect())
}

fn pipedrive(v: &Value) -> Result<Vec<(String, String)>, String> {
    let person =
        v.get("data").filter(|d| d.is_object()).or_else(|| v.get("current")).ok_or("no `data` or `current`")?;
    let mut record = person.clone();
    if let Some(map) = record.as_object_mut() {
        for key in ["email", "emails", "phone", "phones"] {
            if let Some(Value::Array(list)) = map.get(key) {
                let primary = list
                    .iter()
                    .find(|e| e.get("primary").and_then(Value::as_bool) == Some(true))
                    .or_else(|| list.first())
                    .and_then(|e| e.get("value").cloned().or_else(|| Some(e.clone())));
                map.insert(key.trim_end_matches('s').to_owned(), primary.unwrap_or(Value::Null));
            }
        }
        if let Some(org) = map.get("org_id").and_then(|o| o.get("name")).cloned()
            && !map.contains_key("org_name")
        {
            map.insert("org_name".to_owned(), org);
        }
    }
    Ok(flatten(&record))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn bracket_keys_become_paths() {
        let read = fields(
            Format::Bracket,
            Body::Pairs(pairs(&[("contact[email]", "a@b.co"), ("contact[fields][12]", "x"), ("tags[]", "t")])),
        )
        .expect("read");
        assert_eq!(read, pairs(&[("contact.email", "a@b.co"), ("contact.fields.12", "x"), ("tags", "t")]));
    }

    #[test]
    fn a_body_that_is_not_what_its_format_says_is_refused_and_a_plain_form_is_read_as_one() {
        assert!(fields(Format::Tally, Body::Json(json!({ "data": {} }))).is_err());
        assert!(fields(Format::Typeform, Body::Json(json!({ "email": "a@b.co" }))).is_err());
        assert!(fields(Format::HubspotForms, Body::Json(json!({ "fields": "x" }))).is_err());
        let form = fields(Format::Typeform, Body::Pairs(pairs(&[("email", "a@b.co")]))).expect("a plain form");
        assert_eq!(form, pairs(&[("email", "a@b.co")]));
        assert!(fields(Format::Jotform, Body::Pairs(pairs(&[("rawRequest", "{not json")]))).is_err());
    }
}
