//! Benchmark support: a deterministic generator of synthetic leads, and a
//! hand-written Rust function that implements the starter rules directly (the
//! physical limit the engine is measured against); and the second workload,
//! [`saas`], built the same way.

pub mod saas;

use std::sync::LazyLock;

use leadflow_domain::Status;
use leadflow_domain::lead::{Bant, Email, FieldTarget, Profile, ProfileField};
use leadflow_domain::rules::input::LeadInput;
use leadflow_domain::rules::{EventCounts, EventVocabulary};
use regex::Regex;

const DOMAINS: &[&str] = &[
    "gmail.com",
    "outlook.com",
    "yahoo.com",
    "acme.com",
    "globex.com",
    "rivalsoft.com",
    "northwind.com",
    "brightco.co.uk",
    "example.de",
    "bigcorp.com",
    "smallshop.io",
    "contoso.com",
    "fabrikam.fr",
    "initech.com",
    "umbrella.nl",
    "wayne.se",
    "stark.io",
    "hooli.com",
    "piedpiper.com",
    "vandelay.com",
];
const COUNTRIES: &[&str] =
    &["US", "US", "US", "CA", "GB", "DE", "FR", "NL", "SE", "AT", "ES", "IT", "BR", "IN", "JP", "AU"];
const TITLES: &[&str] = &[
    "VP Sales",
    "Head of Marketing",
    "Software Engineer",
    "Marketing Intern",
    "Student",
    "CTO",
    "Director of IT",
    "Account Manager",
    "Chief Revenue Officer",
    "Founder",
    "Operations Manager",
    "Data Analyst",
    "Vice President, Engineering",
    "Product Manager",
    "Growth Lead",
    "CEO",
];
const INDUSTRIES: &[&str] = &[
    "software",
    "SaaS",
    "fintech",
    "retail",
    "manufacturing",
    "healthcare",
    "e-commerce",
    "education",
    "logistics",
    "Marketplace",
];
/// The event types the starter rules score, in the order of their slots (the
/// order of `engagement` in scoring.yaml), which the reference reads them by;
/// leads do each of them alike.
pub const EVENT_SLOTS: [&str; 8] = [
    "demo_request",
    "pricing_page_view",
    "webinar_attended",
    "content_download",
    "email_click",
    "email_open",
    "form_submission",
    "unsubscribe",
];

/// `n` synthetic leads with their events counted against `vocabulary`; the
/// same `seed` always gives the same leads.
pub fn generate(n: usize, seed: u64, vocabulary: &EventVocabulary) -> Vec<LeadInput> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..n)
        .map(|i| {
            let domain = DOMAINS[rng.usize(..DOMAINS.len())];
            let email = Email::parse(&format!("lead{i}@{domain}")).expect("valid email");
            let mut p = Profile::new(email);
            let mut set = |f: ProfileField, v: &str| p.set(&FieldTarget::Profile(f), v).expect("valid field");
            if rng.u8(..10) < 8 {
                set(ProfileField::Country, COUNTRIES[rng.usize(..COUNTRIES.len())]);
            }
            if rng.u8(..10) < 8 {
                // Roughly log-uniform company sizes from 1 to 50,000.
                let employees = (10f64.powf(rng.f64() * 4.7)) as i64;
                set(ProfileField::Employees, &employees.to_string());
            }
            if rng.u8(..10) < 7 {
                set(ProfileField::JobTitle, TITLES[rng.usize(..TITLES.len())]);
            }
            if rng.u8(..10) < 6 {
                set(ProfileField::Industry, INDUSTRIES[rng.usize(..INDUSTRIES.len())]);
            }
            let mut events = EventCounts::new(vocabulary);
            for _ in 0..rng.usize(..5) {
                let e = EVENT_SLOTS[rng.usize(..EVENT_SLOTS.len())];
                events.set(e, events.count(e) + rng.u32(1..4));
            }
            LeadInput { profile: p, events, idle_days: rng.u32(..60), status: Status::Nurturing, bant: Bant::default() }
        })
        .collect()
}

/// What the reference decides: score, tier (0 cold, 1 warm, 2 hot), the
/// matched fit rules as a bit per rule in file order, and the routing rule
/// (its index in routing.yaml, or 4 for `default`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub score: i64,
    pub tier: usize,
    pub fit: u16,
    pub route: usize,
}

static SENIOR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(vp|vice president|head|director|chief|cto|ceo|coo|cfo|founder)\b").expect("regex")
});

fn contains_ci(hay: &str, needle: &str) -> bool {
    hay.as_bytes().windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

fn one_of(value: Option<&str>, list: &[&str]) -> bool {
    value.is_some_and(|v| list.iter().any(|x| v.eq_ignore_ascii_case(x)))
}

const FREE: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "outlook.com",
    "hotmail.com",
    "live.com",
    "icloud.com",
    "me.com",
    "aol.com",
    "proton.me",
    "protonmail.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "mail.com",
    "yandex.com",
];

/// The starter rules (rules/scoring.yaml and rules/routing.yaml), written by hand.
#[inline]
pub fn decide(lead: &LeadInput) -> Decision {
    let p = &lead.profile;
    let domain = p.email.domain();
    let free = FREE.contains(&domain);
    let employees = p.employees;
    let country = p.country.as_ref().map(|c| c.as_str());
    let title = p.job_title.as_deref();

    let mut fit = 0i64;
    let mut bits = 0u16;
    let mut hit = |i: u16, points: i64| {
        fit += points;
        bits |= 1 << i;
    };
    match employees {
        Some(n) if n >= 1000 => hit(0, 30),
        Some(n) if (200..=999).contains(&n) => hit(1, 20),
        Some(n) if (20..=199).contains(&n) => hit(2, 10),
        _ => {}
    }
    if title.is_some_and(|t| SENIOR.is_match(t)) {
        hit(3, 15);
    }
    if one_of(p.industry.as_deref(), &["software", "saas", "fintech", "e-commerce", "marketplace"]) {
        hit(4, 10);
    }
    if one_of(country, &["US", "CA", "GB", "IE", "DE", "AT", "CH", "NL", "FR", "SE", "DK"]) {
        hit(5, 5);
    }
    if free {
        hit(7, -10);
    } else {
        hit(6, 5);
    }
    if title.is_some_and(|t| contains_ci(t, "intern") || contains_ci(t, "student")) {
        hit(8, -25);
    }
    if ["rivalsoft.com", "pipelinely.io"].contains(&domain) {
        hit(9, -60);
    }
    let fit = fit.clamp(-50, 60);

    let &[demo, pricing, webinar, content, click, open, form, unsubscribe, ..] = lead.events.by_slot() else {
        panic!("the starter rules have eight event types")
    };
    let positive = 40 * i64::from(demo)
        + (10 * i64::from(pricing)).min(30)
        + 10 * i64::from(webinar)
        + (5 * i64::from(content)).min(15)
        + (2 * i64::from(click)).min(10)
        + i64::from(open).min(5)
        + (5 * i64::from(form)).min(10);
    let negative = -20 * i64::from(unsubscribe);
    let weeks = lead.idle_days.saturating_sub(14) / 7;
    let factor = (1.0 - 0.1 * f64::from(weeks)).max(0.0);
    let positive = if weeks == 0 { positive } else { (positive as f64 * factor).round() as i64 };
    let engagement = (positive + negative).min(100);
    let score = (fit + engagement).clamp(0, 150);
    let tier = if score >= 80 {
        2
    } else if score >= 50 {
        1
    } else {
        0
    };

    let route = if ["acme.com", "globex.com", "initech.com"].contains(&domain) {
        0
    } else if employees.is_some_and(|n| n >= 1000) && !free {
        1
    } else if one_of(
        country,
        &["GB", "IE", "DE", "AT", "CH", "NL", "FR", "SE", "DK", "NO", "FI", "ES", "IT", "BE", "PL"],
    ) {
        2
    } else if employees.is_some_and(|n| n >= 200) && demo >= 1 {
        3
    } else {
        4
    };
    Decision { score, tier, fit: bits, route }
}
