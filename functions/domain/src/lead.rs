//! What leadflow knows about a lead: the captured profile, parsed into types that
//! can only hold valid values, and the lead's status.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A lead's email address: trimmed, lower-cased and syntactically valid.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email {
    address: String,
    /// Where the domain starts, so that reading it costs nothing.
    domain_at: usize,
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error("`{input}` is not a valid email address")]
pub struct InvalidEmail {
    input: String,
}

impl Email {
    pub fn parse(input: &str) -> Result<Self, InvalidEmail> {
        let trimmed = trim(input);
        // Addresses are nearly always ASCII: lower-cased a byte at a time.
        let normalised = if trimmed.is_ascii() { trimmed.to_ascii_lowercase() } else { trimmed.to_lowercase() };
        let domain_at = match plain_address(normalised.as_bytes()) {
            Some(at) => at,
            None if normalised.len() <= 254 && valid_address(&normalised) => normalised.rfind('@').map_or(0, |i| i + 1),
            None => return Err(InvalidEmail { input: input.chars().take(80).collect() }),
        };
        Ok(Email { address: normalised, domain_at })
    }

    pub fn as_str(&self) -> &str {
        &self.address
    }

    /// No address: a place for the email of a profile being read, which is
    /// never handed out until the real one has replaced it.
    pub(crate) fn pending() -> Self {
        Email { address: String::new(), domain_at: 0 }
    }

    /// The part after `@`.
    #[inline]
    pub fn domain(&self) -> &str {
        &self.address[self.domain_at..]
    }
}

/// A bare address (no display name, as in "Jo <jo@example.com>") whose domain
/// has a dot and is not a literal (`[192.0.2.1]`).
fn valid_address(address: &str) -> bool {
    use email_address::EmailAddress;
    if address.contains('<') {
        let options = email_address::Options::default().without_display_text();
        return EmailAddress::parse_with_options(address, options)
            .is_ok_and(|e| e.domain().contains('.') && !e.domain().starts_with('['));
    }
    // With no `<` there is no display name to find, and the address is valid
    // when its two parts are (what `parse_with_options` checks, without
    // scanning for a display name a character at a time or copying the address).
    address.rsplit_once('@').is_some_and(|(local, domain)| {
        domain.contains('.')
            && !domain.starts_with('[')
            && EmailAddress::is_valid_local_part(local)
            && EmailAddress::is_valid_domain(domain)
    })
}

/// The ASCII characters of an atom (RFC 5322 `atext`): letters, digits and
/// ``!#$%&'*+-/=?^_`{|}~``.
const ATEXT: [bool; 128] = {
    let mut table = [false; 128];
    let mut c = 0;
    while c < 128 {
        table[c] = (c as u8).is_ascii_alphanumeric();
        c += 1;
    }
    let specials = b"!#$%&'*+-/=?^_`{|}~";
    let mut i = 0;
    while i < specials.len() {
        table[specials[i] as usize] = true;
        i += 1;
    }
    table
};

/// Whether `part` is dot-separated atoms of ASCII `atext`, each of 1 to `max`
/// bytes; a domain's `label`s also start and end with a letter or digit.
fn dot_atoms(part: &[u8], max: usize, label: bool) -> bool {
    let mut len = 0;
    let mut prev = b'.';
    for &b in part {
        if b == b'.' {
            if len == 0 || label && !prev.is_ascii_alphanumeric() {
                return false;
            }
            len = 0;
        } else {
            if !(b < 128 && ATEXT[usize::from(b)]) || len == 0 && label && !b.is_ascii_alphanumeric() {
                return false;
            }
            len += 1;
            if len > max {
                return false;
            }
        }
        prev = b;
    }
    len > 0 && (!label || prev.is_ascii_alphanumeric())
}

/// Where the domain starts, when `address` is valid in the common form: an
/// unquoted ASCII local part of dot-separated atoms, `@`, and a domain of
/// two or more labels that start and end with a letter or digit; checked in
/// one pass a byte at a time against a table. It accepts only what
/// `valid_address` accepts, and exactly that for ASCII addresses whose local
/// part is not quoted (a test compares the two); anything else (a quoted
/// local part, non-ASCII text, an invalid address) is for `valid_address`.
fn plain_address(address: &[u8]) -> Option<usize> {
    let at = memchr::memchr(b'@', address)?;
    let (local, domain) = (&address[..at], &address[at + 1..]);
    let plain = address.len() <= 254
        && local.len() <= 64
        && dot_atoms(local, 64, false)
        && dot_atoms(domain, 63, true)
        && memchr::memchr(b'.', domain).is_some();
    plain.then_some(at + 1)
}

impl TryFrom<String> for Email {
    type Error = InvalidEmail;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Email::parse(&s)
    }
}

impl From<Email> for String {
    fn from(e: Email) -> String {
        e.address
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address)
    }
}

/// An ISO 3166 alpha-2 country code, upper case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CountryCode([u8; 2]);

#[derive(Debug, Error, PartialEq, Eq)]
#[error("`{input}` is not a two-letter country code (ISO 3166 alpha-2, e.g. DE)")]
pub struct InvalidCountry {
    input: String,
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error("`{input}` is not a country leadflow knows (a name, or an ISO 3166 code such as DE or DEU)")]
pub struct UnknownCountry {
    input: String,
}

impl UnknownCountry {
    pub fn new(input: &str) -> Self {
        UnknownCountry { input: input.trim().chars().take(80).collect() }
    }
}

impl CountryCode {
    pub fn parse(input: &str) -> Result<Self, InvalidCountry> {
        match trim(input).as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Ok(CountryCode([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
            }
            _ => Err(InvalidCountry { input: input.chars().take(80).collect() }),
        }
    }

    /// A number from 0 to 675, one per code, for sets of countries.
    #[inline]
    pub fn index(&self) -> usize {
        usize::from(self.0[0] - b'A') * 26 + usize::from(self.0[1] - b'A')
    }

    pub fn as_str(&self) -> &str {
        // Both bytes are ASCII letters by construction.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl TryFrom<String> for CountryCode {
    type Error = InvalidCountry;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        CountryCode::parse(&s)
    }
}

impl From<CountryCode> for String {
    fn from(c: CountryCode) -> String {
        c.as_str().to_owned()
    }
}

/// Where a lead is in its life. See `rules/lifecycle.yaml`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Below the hand-off tier; marketing keeps nurturing it.
    Nurturing,
    /// Handed off to a rep; the first-response clock is running.
    Assigned,
    /// At or above the hand-off tier, but nobody was available.
    Unassigned,
    /// A rep has made contact.
    Working,
    /// Enough BANT criteria are met.
    Qualified,
    Converted,
    Disqualified,
    Dormant,
}

impl Status {
    pub const ALL: [Status; 8] = [
        Status::Nurturing,
        Status::Assigned,
        Status::Unassigned,
        Status::Working,
        Status::Qualified,
        Status::Converted,
        Status::Disqualified,
        Status::Dormant,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Nurturing => "nurturing",
            Status::Assigned => "assigned",
            Status::Unassigned => "unassigned",
            Status::Working => "working",
            Status::Qualified => "qualified",
            Status::Converted => "converted",
            Status::Disqualified => "disqualified",
            Status::Dormant => "dormant",
        }
    }

    /// Open leads count against a rep's capacity.
    pub fn is_open(self) -> bool {
        matches!(self, Status::Assigned | Status::Working)
    }

    pub(crate) fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error("unknown status `{0}`")]
pub struct UnknownStatus(pub String);

impl FromStr for Status {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

/// The BANT qualification criteria, each unknown until a rep records it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bant {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub need: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<bool>,
}

impl Bant {
    /// How many criteria are known to be met.
    pub fn met(&self) -> u8 {
        [self.budget, self.authority, self.need, self.timeline].into_iter().filter(|c| *c == Some(true)).count() as u8
    }

    /// `newer`'s known criteria replace these.
    pub fn updated_with(self, newer: Bant) -> Bant {
        Bant {
            budget: newer.budget.or(self.budget),
            authority: newer.authority.or(self.authority),
            need: newer.need.or(self.need),
            timeline: newer.timeline.or(self.timeline),
        }
    }
}

/// The profile fields a lead can carry, as named in forms, rules and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProfileField {
    Email,
    FirstName,
    LastName,
    Company,
    JobTitle,
    Phone,
    Country,
    State,
    Industry,
    Employees,
    AnnualRevenue,
    Website,
    Source,
    UtmSource,
    UtmMedium,
    UtmCampaign,
}

impl ProfileField {
    pub const ALL: [ProfileField; 16] = [
        ProfileField::Email,
        ProfileField::FirstName,
        ProfileField::LastName,
        ProfileField::Company,
        ProfileField::JobTitle,
        ProfileField::Phone,
        ProfileField::Country,
        ProfileField::State,
        ProfileField::Industry,
        ProfileField::Employees,
        ProfileField::AnnualRevenue,
        ProfileField::Website,
        ProfileField::Source,
        ProfileField::UtmSource,
        ProfileField::UtmMedium,
        ProfileField::UtmCampaign,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ProfileField::Email => "email",
            ProfileField::FirstName => "first_name",
            ProfileField::LastName => "last_name",
            ProfileField::Company => "company",
            ProfileField::JobTitle => "job_title",
            ProfileField::Phone => "phone",
            ProfileField::Country => "country",
            ProfileField::State => "state",
            ProfileField::Industry => "industry",
            ProfileField::Employees => "employees",
            ProfileField::AnnualRevenue => "annual_revenue",
            ProfileField::Website => "website",
            ProfileField::Source => "source",
            ProfileField::UtmSource => "utm_source",
            ProfileField::UtmMedium => "utm_medium",
            ProfileField::UtmCampaign => "utm_campaign",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "email" => ProfileField::Email,
            "first_name" => ProfileField::FirstName,
            "last_name" => ProfileField::LastName,
            "company" => ProfileField::Company,
            "job_title" => ProfileField::JobTitle,
            "phone" => ProfileField::Phone,
            "country" => ProfileField::Country,
            "state" => ProfileField::State,
            "industry" => ProfileField::Industry,
            "employees" => ProfileField::Employees,
            "annual_revenue" => ProfileField::AnnualRevenue,
            "website" => ProfileField::Website,
            "source" => ProfileField::Source,
            "utm_source" => ProfileField::UtmSource,
            "utm_medium" => ProfileField::UtmMedium,
            "utm_campaign" => ProfileField::UtmCampaign,
            _ => return None,
        })
    }
}

/// Where a captured value goes: a profile field or a custom field.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FieldTarget {
    Profile(ProfileField),
    Custom(String),
}

impl FieldTarget {
    /// `email`, `custom.seats`; `None` for any other name.
    pub fn parse(name: &str) -> Option<Self> {
        if let Some(custom) = name.strip_prefix("custom.") {
            return valid_custom_name(custom).then(|| FieldTarget::Custom(custom.to_owned()));
        }
        ProfileField::from_name(name).map(FieldTarget::Profile)
    }
}

impl fmt::Display for FieldTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldTarget::Profile(p) => f.write_str(p.name()),
            FieldTarget::Custom(name) => write!(f, "custom.{name}"),
        }
    }
}

/// A custom field name: letters, digits, `_` and `-`, at most 64 characters.
pub fn valid_custom_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A value that does not fit its field.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FieldError {
    #[error(transparent)]
    Email(#[from] InvalidEmail),
    #[error(transparent)]
    Country(#[from] InvalidCountry),
    #[error(transparent)]
    UnknownCountry(#[from] UnknownCountry),
    #[error("`{value}` is not a whole number of employees")]
    Employees { value: String },
    #[error("`{value}` is not an amount")]
    AnnualRevenue { value: String },
    #[error("`{field}` is longer than {max} characters")]
    TooLong { field: String, max: usize },
}

/// The longest text a captured field may hold.
pub const MAX_FIELD_CHARS: usize = 1000;

/// What was captured about a lead.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub email: Email,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<CountryCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub industry: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employees: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annual_revenue: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_medium: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_campaign: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom: BTreeMap<String, String>,
    /// Values that did not fit their field, as submitted, by field name: kept
    /// so that nothing a lead sent is lost; a valid value later replaces one.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, String>,
}

/// `str::trim`, without decoding a character when both ends are visible ASCII
/// (as they nearly always are), which no trimming changes.
#[inline]
fn trim(text: &str) -> &str {
    match text.as_bytes() {
        [first, .., last] if first.is_ascii_graphic() && last.is_ascii_graphic() => text,
        [only] if only.is_ascii_graphic() => text,
        _ => text.trim(),
    }
}

fn text_value(field: &str, value: &str) -> Result<Option<String>, FieldError> {
    let value = trim(value);
    // A value of no more bytes than the limit has no more characters either.
    if value.len() > MAX_FIELD_CHARS && value.chars().count() > MAX_FIELD_CHARS {
        return Err(FieldError::TooLong { field: field.to_owned(), max: MAX_FIELD_CHARS });
    }
    Ok((!value.is_empty()).then(|| value.to_owned()))
}

fn parse_employees(value: &str) -> Result<i64, FieldError> {
    let digits: Cow<'_, str> = if value.bytes().all(|b| b.is_ascii_digit()) {
        Cow::Borrowed(value)
    } else {
        value.chars().filter(|c| !matches!(c, ',' | '_' | ' ')).collect::<String>().into()
    };
    digits
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| FieldError::Employees { value: value.chars().take(80).collect() })
}

fn parse_amount(value: &str) -> Result<f64, FieldError> {
    let digits: String = value.chars().filter(|c| !matches!(c, ',' | '_' | ' ')).collect();
    digits
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n >= 0.0)
        .ok_or_else(|| FieldError::AnnualRevenue { value: value.chars().take(80).collect() })
}

/// A captured value parsed for the field it goes to: only `FieldValue::parse` makes
/// one, so a profile built from fields holds valid values only.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldValue(Parsed);

#[derive(Clone, Debug, PartialEq)]
enum Parsed {
    Email(Email),
    Country(CountryCode),
    Employees(i64),
    AnnualRevenue(f64),
    Text(ProfileField, String),
    Custom(String, String),
}

impl FieldValue {
    /// The profile field it sets (`None` for a custom field).
    fn profile_field(&self) -> Option<ProfileField> {
        Some(match &self.0 {
            Parsed::Email(_) => ProfileField::Email,
            Parsed::Country(_) => ProfileField::Country,
            Parsed::Employees(_) => ProfileField::Employees,
            Parsed::AnnualRevenue(_) => ProfileField::AnnualRevenue,
            Parsed::Text(field, _) => *field,
            Parsed::Custom(..) => return None,
        })
    }

    /// Parses captured text for `target`; `None` for an empty value, which sets
    /// nothing.
    pub fn parse(target: FieldTarget, value: &str) -> Result<Option<FieldValue>, FieldError> {
        let field = match target {
            FieldTarget::Custom(name) => {
                return Ok(text_value(&name, value)?.map(|v| FieldValue(Parsed::Custom(name, v))));
            }
            FieldTarget::Profile(field) => field,
        };
        let value = trim(value);
        if value.is_empty() {
            return Ok(None);
        }
        let parsed = match field {
            ProfileField::Email => Parsed::Email(Email::parse(value)?),
            ProfileField::Country => Parsed::Country(CountryCode::parse(value)?),
            ProfileField::Employees => Parsed::Employees(parse_employees(value)?),
            ProfileField::AnnualRevenue => Parsed::AnnualRevenue(parse_amount(value)?),
            text => match text_value(text.name(), value)? {
                Some(v) => Parsed::Text(text, v),
                None => return Ok(None),
            },
        };
        Ok(Some(FieldValue(parsed)))
    }
}

impl Profile {
    /// A profile with only an email.
    pub fn new(email: Email) -> Self {
        Profile {
            email,
            first_name: None,
            last_name: None,
            company: None,
            job_title: None,
            phone: None,
            country: None,
            state: None,
            industry: None,
            employees: None,
            annual_revenue: None,
            website: None,
            source: None,
            utm_source: None,
            utm_medium: None,
            utm_campaign: None,
            custom: BTreeMap::new(),
            raw: BTreeMap::new(),
        }
    }

    /// Sets one field from its captured text; an empty value clears nothing and
    /// sets nothing.
    pub fn set(&mut self, target: &FieldTarget, value: &str) -> Result<(), FieldError> {
        if let Some(field) = FieldValue::parse(target.clone(), value)? {
            self.apply(field);
        }
        Ok(())
    }

    /// Sets one field from its parsed value (which replaces any raw value kept
    /// for that field).
    pub fn apply(&mut self, field: FieldValue) {
        if let Some(name) = field.profile_field() {
            self.raw.remove(name.name());
        }
        match field.0 {
            Parsed::Email(email) => self.email = email,
            Parsed::Country(country) => self.country = Some(country),
            Parsed::Employees(n) => self.employees = Some(n),
            Parsed::AnnualRevenue(amount) => self.annual_revenue = Some(amount),
            Parsed::Custom(name, text) => {
                self.custom.insert(name, text);
            }
            Parsed::Text(field, text) => {
                let slot = match field {
                    ProfileField::FirstName => &mut self.first_name,
                    ProfileField::LastName => &mut self.last_name,
                    ProfileField::Company => &mut self.company,
                    ProfileField::JobTitle => &mut self.job_title,
                    ProfileField::Phone => &mut self.phone,
                    ProfileField::State => &mut self.state,
                    ProfileField::Industry => &mut self.industry,
                    ProfileField::Website => &mut self.website,
                    ProfileField::Source => &mut self.source,
                    ProfileField::UtmSource => &mut self.utm_source,
                    ProfileField::UtmMedium => &mut self.utm_medium,
                    ProfileField::UtmCampaign => &mut self.utm_campaign,
                    // `FieldValue::parse` makes these the typed variants above.
                    ProfileField::Email
                    | ProfileField::Country
                    | ProfileField::Employees
                    | ProfileField::AnnualRevenue => return,
                };
                *slot = Some(text);
            }
        }
    }

    /// Whether a field holds a value.
    pub fn has(&self, target: &FieldTarget) -> bool {
        match target {
            FieldTarget::Custom(name) => self.custom.contains_key(name),
            FieldTarget::Profile(field) => match field {
                ProfileField::Email => true,
                ProfileField::Country => self.country.is_some(),
                ProfileField::Employees => self.employees.is_some(),
                ProfileField::AnnualRevenue => self.annual_revenue.is_some(),
                other => self.text(*other).is_some(),
            },
        }
    }

    /// The text of a text field (`None` for email, country and numbers).
    pub fn text(&self, field: ProfileField) -> Option<&str> {
        match field {
            ProfileField::FirstName => self.first_name.as_deref(),
            ProfileField::LastName => self.last_name.as_deref(),
            ProfileField::Company => self.company.as_deref(),
            ProfileField::JobTitle => self.job_title.as_deref(),
            ProfileField::Phone => self.phone.as_deref(),
            ProfileField::State => self.state.as_deref(),
            ProfileField::Industry => self.industry.as_deref(),
            ProfileField::Website => self.website.as_deref(),
            ProfileField::Source => self.source.as_deref(),
            ProfileField::UtmSource => self.utm_source.as_deref(),
            ProfileField::UtmMedium => self.utm_medium.as_deref(),
            ProfileField::UtmCampaign => self.utm_campaign.as_deref(),
            ProfileField::Email | ProfileField::Country | ProfileField::Employees | ProfileField::AnnualRevenue => None,
        }
    }

    /// Copies `field` from `other` (used by merge policies); a value copied
    /// replaces any raw value kept for the field.
    pub fn take_field(&mut self, other: &Profile, target: &FieldTarget) {
        if let FieldTarget::Profile(field) = target {
            self.raw.remove(field.name());
        }
        match target {
            FieldTarget::Custom(name) => {
                if let Some(v) = other.custom.get(name) {
                    self.custom.insert(name.clone(), v.clone());
                }
            }
            FieldTarget::Profile(field) => match field {
                ProfileField::Email => self.email = other.email.clone(),
                ProfileField::FirstName => self.first_name.clone_from(&other.first_name),
                ProfileField::LastName => self.last_name.clone_from(&other.last_name),
                ProfileField::Company => self.company.clone_from(&other.company),
                ProfileField::JobTitle => self.job_title.clone_from(&other.job_title),
                ProfileField::Phone => self.phone.clone_from(&other.phone),
                ProfileField::Country => self.country = other.country,
                ProfileField::State => self.state.clone_from(&other.state),
                ProfileField::Industry => self.industry.clone_from(&other.industry),
                ProfileField::Employees => self.employees = other.employees,
                ProfileField::AnnualRevenue => self.annual_revenue = other.annual_revenue,
                ProfileField::Website => self.website.clone_from(&other.website),
                ProfileField::Source => self.source.clone_from(&other.source),
                ProfileField::UtmSource => self.utm_source.clone_from(&other.utm_source),
                ProfileField::UtmMedium => self.utm_medium.clone_from(&other.utm_medium),
                ProfileField::UtmCampaign => self.utm_campaign.clone_from(&other.utm_campaign),
            },
        }
    }

    /// A field's value as text (numbers as written by `to_string`).
    pub fn value_text(&self, target: &FieldTarget) -> Option<String> {
        match target {
            FieldTarget::Custom(name) => self.custom.get(name).cloned(),
            FieldTarget::Profile(ProfileField::Email) => Some(self.email.as_str().to_owned()),
            FieldTarget::Profile(ProfileField::Country) => self.country.map(|c| c.as_str().to_owned()),
            FieldTarget::Profile(ProfileField::Employees) => self.employees.map(|n| n.to_string()),
            FieldTarget::Profile(ProfileField::AnnualRevenue) => self.annual_revenue.map(|n| n.to_string()),
            FieldTarget::Profile(field) => self.text(*field).map(str::to_owned),
        }
    }

    /// Every field that holds a value, profile fields first.
    pub fn present_fields(&self) -> Vec<FieldTarget> {
        let mut out: Vec<FieldTarget> =
            ProfileField::ALL.into_iter().map(FieldTarget::Profile).filter(|t| self.has(t)).collect();
        out.extend(self.custom.keys().map(|k| FieldTarget::Custom(k.clone())));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The address check as the email crate makes it on the whole address.
    fn valid_as_a_whole(address: &str) -> bool {
        let options = email_address::Options::default().without_display_text();
        email_address::EmailAddress::parse_with_options(address, options)
            .is_ok_and(|e| e.domain().contains('.') && !e.domain().starts_with('['))
    }

    /// Checking the two parts of an address with no `<` accepts exactly what
    /// checking the whole address does, on addresses built from the
    /// characters that matter to either (quotes, escapes, spaces, brackets,
    /// several `@`, dots in every place).
    #[test]
    fn checking_the_parts_accepts_what_checking_the_whole_does() {
        let pieces =
            ["a", "b.c", ".", "..", "@", "\"", "\\", " ", "[1.2.3.4]", "-", "x-y", "é", "+", "(c)", ",", "q\"@"];
        let mut rng = fastrand::Rng::with_seed(1);
        let (mut valid, mut tried) = (0, 0);
        for _ in 0..200_000 {
            let some = |rng: &mut fastrand::Rng, n: usize| -> String {
                (0..rng.usize(1..=n)).map(|_| pieces[rng.usize(..pieces.len())]).collect()
            };
            let address = match rng.u8(..3) {
                0 => some(&mut rng, 6),
                // Shaped like an address: a local part, `@` and a domain.
                _ => {
                    let (local, domain) = (some(&mut rng, 2), some(&mut rng, 1));
                    format!("{local}@{domain}{}", [".com", ".de", "", "."][rng.usize(..4)])
                }
            };
            tried += 1;
            valid += usize::from(valid_as_a_whole(&address));
            assert_eq!(valid_address(&address), valid_as_a_whole(&address), "{address:?}");
        }
        for address in ["jo@acme.com", "\"jo smith\"@acme.com", "jo@[192.0.2.1]", "jo@localhost", "@acme.com", "jo@"] {
            assert_eq!(valid_address(address), valid_as_a_whole(address), "{address:?}");
        }
        assert!(valid > 1000, "only {valid} of {tried} random addresses were valid");
    }

    /// The one-pass check of plain addresses accepts exactly what the email
    /// crate accepts for ASCII addresses whose local part is not quoted, and
    /// never more for any address: random parts from every printable ASCII
    /// character (`@` too), dots in every place, non-ASCII letters, and atoms
    /// around the length limits.
    #[test]
    fn the_plain_address_check_accepts_what_the_email_crate_does() {
        let printable: Vec<char> = (' '..='~').chain(['é', 'ß', '\u{1F600}']).collect();
        let mut rng = fastrand::Rng::with_seed(7);
        let part = |rng: &mut fastrand::Rng| -> String {
            let atoms = rng.usize(1..=4);
            let mut text = String::new();
            for i in 0..atoms {
                if i > 0 || rng.u8(..8) == 0 {
                    text.push('.');
                }
                let len = [0, 1, 2, 3, 5, 8, 62, 63, 64, 65][rng.usize(..10)];
                for _ in 0..len {
                    // Mostly letters, digits and `-`, so that many parts are valid.
                    text.push(match rng.u8(..100) {
                        0..=94 => rng.alphanumeric(),
                        95 | 96 => '-',
                        _ => printable[rng.usize(..printable.len())],
                    });
                }
            }
            if rng.u8(..8) == 0 {
                text.push('.');
            }
            text
        };
        let (mut plain, mut tried) = (0, 0);
        for _ in 0..100_000 {
            let address = format!("{}@{}", part(&mut rng), part(&mut rng));
            let fast = plain_address(address.as_bytes());
            let slow = address.len() <= 254 && valid_address(&address);
            assert!(fast.is_none() || slow, "{address:?} is plain but the crate refuses it");
            let quoted = address.rsplit_once('@').is_some_and(|(local, _)| local.starts_with('"'));
            if address.is_ascii() && !quoted {
                assert_eq!(fast.is_some(), slow, "{address:?}");
            }
            if let Some(at) = fast {
                assert_eq!(Some(at), address.rfind('@').map(|i| i + 1), "{address:?}");
            }
            tried += 1;
            plain += usize::from(fast.is_some());
        }
        assert!(plain > 2_000, "only {plain} of {tried} random addresses were plain");
        let long_label = format!("a@{}.de", "b".repeat(63));
        for address in ["jo@acme.com", "o'neil+tag@mail.example.de", &long_label] {
            assert!(plain_address(address.as_bytes()).is_some(), "{address}");
        }
        let too_long = format!("a@{}.de", "b".repeat(64));
        for address in ["jo@-acme.com", "jo.@acme.com", "j..o@acme.com", "jo@acme", "jo@acme.com.", &too_long] {
            assert!(plain_address(address.as_bytes()).is_none(), "{address}");
        }
    }

    /// The limit counts characters, not bytes.
    #[test]
    fn a_text_field_holds_up_to_the_limit_in_characters() {
        let target = FieldTarget::Profile(ProfileField::Company);
        let at_limit = ["a".repeat(MAX_FIELD_CHARS), "é".repeat(MAX_FIELD_CHARS)];
        for value in &at_limit {
            assert!(FieldValue::parse(target.clone(), value).is_ok(), "{} bytes", value.len());
        }
        for value in ["a".repeat(MAX_FIELD_CHARS + 1), "é".repeat(MAX_FIELD_CHARS + 1)] {
            let err = FieldValue::parse(target.clone(), &value).expect_err("over the limit");
            assert!(matches!(err, FieldError::TooLong { max: MAX_FIELD_CHARS, .. }), "{err:?}");
        }
    }

    #[test]
    fn email_is_trimmed_and_lower_cased() {
        let e = Email::parse("  Jo.Smith@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "jo.smith@example.com");
        assert_eq!(e.domain(), "example.com");
    }

    #[test]
    fn email_without_a_dotted_domain_is_rejected() {
        for bad in [
            "",
            "jo",
            "jo@",
            "@example.com",
            "jo@localhost",
            "jo smith@example.com",
            "jo@@example.com",
            "Jo <jo@example.com>",
            "<jo@example.com>",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn country_is_upper_cased_and_two_letters() {
        assert_eq!(CountryCode::parse(" de ").unwrap().as_str(), "DE");
        assert!(CountryCode::parse("DEU").is_err());
        assert!(CountryCode::parse("D1").is_err());
    }

    #[test]
    fn employees_accept_thousands_separators_and_reject_words() {
        let mut p = Profile::new(Email::parse("a@b.co").unwrap());
        p.set(&FieldTarget::Profile(ProfileField::Employees), "2,000").unwrap();
        assert_eq!(p.employees, Some(2000));
        assert!(p.set(&FieldTarget::Profile(ProfileField::Employees), "lots").is_err());
        assert!(p.set(&FieldTarget::Profile(ProfileField::Employees), "-5").is_err());
    }

    /// A number padded with white space (a tab from a spreadsheet, a line
    /// break from a text area) is the number.
    #[test]
    fn numbers_are_read_without_the_white_space_around_them() {
        let mut p = Profile::new(Email::parse("a@b.co").unwrap());
        p.set(&FieldTarget::Profile(ProfileField::Employees), "\t500 ").unwrap();
        assert_eq!(p.employees, Some(500));
        p.set(&FieldTarget::Profile(ProfileField::AnnualRevenue), "\u{a0}1,000\n").unwrap();
        assert_eq!(p.annual_revenue, Some(1000.0));
        let err = p.set(&FieldTarget::Profile(ProfileField::Employees), " \t12x\n").expect_err("not a number");
        assert_eq!(err.to_string(), "`12x` is not a whole number of employees");
    }

    #[test]
    fn an_empty_value_sets_nothing() {
        let mut p = Profile::new(Email::parse("a@b.co").unwrap());
        p.set(&FieldTarget::Profile(ProfileField::Company), "Acme").unwrap();
        p.set(&FieldTarget::Profile(ProfileField::Company), "  ").unwrap();
        assert_eq!(p.company.as_deref(), Some("Acme"));
    }

    #[test]
    fn bant_counts_only_met_criteria() {
        let b = Bant { budget: Some(true), authority: Some(false), need: Some(true), timeline: None };
        assert_eq!(b.met(), 2);
        let later = b.updated_with(Bant { authority: Some(true), ..Bant::default() });
        assert_eq!(later.met(), 3);
    }

    #[test]
    fn status_parses_its_own_names() {
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>().unwrap(), s);
        }
        assert!("won".parse::<Status>().is_err());
    }

    #[test]
    fn trimming_is_str_trim() {
        for text in ["", " ", "a", " a", "a ", "\u{a0}a", "a\u{3000}", "é", " é ", "ab", "a b", "\t\n", "~", "\u{7f}x"]
        {
            assert_eq!(trim(text), text.trim(), "{text:?}");
        }
    }

    #[test]
    fn profile_fields_read_their_own_names_only() {
        for field in ProfileField::ALL {
            assert_eq!(ProfileField::from_name(field.name()), Some(field));
        }
        for name in ["", "Email", "email ", "custom.email", "raw", "job-title"] {
            assert_eq!(ProfileField::from_name(name), None, "{name:?}");
        }
    }
}
