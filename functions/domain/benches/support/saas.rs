//! The second workload: the rules in `benches/saas/` (16 fit rules, 8
//! engagement terms, 15 first-match routing rules), a generator of leads with
//! 0 to 20 events each, and the same rules written by hand.

use leadflow_domain::Status;
use leadflow_domain::lead::{Bant, Email, FieldTarget, Profile, ProfileField};
use leadflow_domain::rules::input::LeadInput;
use leadflow_domain::rules::{EventCounts, EventVocabulary};

use super::Decision;

const DOMAINS: &[&str] = &[
    "gmail.com",
    "yahoo.com",
    "outlook.com",
    "qq.com",
    "web.de",
    "megacorp.com",
    "tinyshop.io",
    "bank-of-somewhere.com",
    "hospital.org",
    "city.gov",
    "startup.dev",
    "agency.co.uk",
    "factory.de",
    "retailer.fr",
    "logistics.nl",
    "studio.se",
    "mining.com.au",
    "telco.jp",
];
const COUNTRIES: &[&str] = &[
    "US", "US", "US", "US", "CA", "GB", "GB", "DE", "DE", "FR", "NL", "SE", "AU", "IE", "ES", "IT", "PL", "NO", "BR",
    "MX", "AR", "JP", "IN", "SG", "NZ", "KR", "ZA", "AE", "CN", "TR",
];
const TITLES: &[&str] = &[
    "Chief Technology Officer",
    "CHIEF REVENUE OFFICER",
    "VP of Sales",
    "SVP Operations",
    "Vice President, Marketing",
    "Director of Engineering",
    "Senior director, IT",
    "Marketing Intern",
    "Student",
    "Executive Assistant",
    "Software Engineer",
    "CEO",
    "Head of Growth",
    "Account Executive",
    "Data Scientist",
    "Chief of Staff",
    "Engineering Manager",
    "Founder & CEO",
    "Product Designer",
    "IT Administrator",
];
const INDUSTRIES: &[&str] = &[
    "Software",
    "SaaS",
    "saas",
    "FinTech",
    "Banking",
    "insurance",
    "Healthcare",
    "Government",
    "Education",
    "Retail",
    "Manufacturing",
    "Cybersecurity",
    "DevTools",
    "Biotech",
    "Pharma",
    "Logistics",
    "Media",
];
const SOURCES: &[&str] =
    &["google-ads", "LinkedIn-Ads", "capterra", "G2", "organic", "referral", "webinar", "partner", "events"];
/// The eight types the rules score, and one they do not know.
const EVENTS: &[&str] = &[
    "demo_request",
    "trial_signup",
    "pricing_page_view",
    "pricing_page_view",
    "webinar_attended",
    "content_download",
    "content_download",
    "email_click",
    "email_click",
    "email_click",
    "support_ticket",
    "unsubscribe",
    "chat_started",
];

/// The event types the rules score, in the order of their slots (the order
/// of `engagement` in scoring.yaml), which the reference reads them by.
pub const EVENT_SLOTS: [&str; 8] = [
    "demo_request",
    "trial_signup",
    "pricing_page_view",
    "webinar_attended",
    "content_download",
    "email_click",
    "support_ticket",
    "unsubscribe",
];

/// `n` synthetic leads with their events counted against `vocabulary`; the
/// same `seed` always gives the same leads.
pub fn generate(n: usize, seed: u64, vocabulary: &EventVocabulary) -> Vec<LeadInput> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..n)
        .map(|i| {
            let domain = DOMAINS[rng.usize(..DOMAINS.len())];
            let email = Email::parse(&format!("person{i}@{domain}")).expect("valid email");
            let mut p = Profile::new(email);
            let mut set = |f: ProfileField, v: &str| p.set(&FieldTarget::Profile(f), v).expect("valid field");
            if rng.u8(..10) < 8 {
                set(ProfileField::Country, COUNTRIES[rng.usize(..COUNTRIES.len())]);
            }
            if rng.u8(..10) < 8 {
                let employees = (10f64.powf(rng.f64() * 4.7)) as i64;
                set(ProfileField::Employees, &employees.to_string());
            }
            if rng.u8(..4) < 3 {
                set(ProfileField::JobTitle, TITLES[rng.usize(..TITLES.len())]);
            }
            if rng.u8(..10) < 7 {
                set(ProfileField::Industry, INDUSTRIES[rng.usize(..INDUSTRIES.len())]);
            }
            if rng.u8(..10) < 6 {
                set(ProfileField::Source, SOURCES[rng.usize(..SOURCES.len())]);
            }
            let mut events = EventCounts::new(vocabulary);
            for _ in 0..rng.usize(..=20) {
                let e = EVENTS[rng.usize(..EVENTS.len())];
                events.set(e, events.count(e) + 1);
            }
            LeadInput { profile: p, events, idle_days: rng.u32(..90), status: Status::Nurturing, bant: Bant::default() }
        })
        .collect()
}

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
    "aol.com",
    "proton.me",
    "gmx.de",
    "web.de",
    "mail.ru",
    "qq.com",
    "163.com",
];
const NA: &[&str] = &["US", "CA"];
const EMEA: &[&str] = &["GB", "IE", "DE", "AT", "CH", "NL", "FR", "SE", "DK", "NO", "FI", "ES", "IT", "BE", "PL"];
const APAC: &[&str] = &["AU", "NZ", "JP", "SG", "IN", "KR"];
const LATAM: &[&str] = &["BR", "MX", "AR", "CL", "CO"];

/// `benches/saas/` written by hand: the fit rules as a bit each in file
/// order, the routing rule's index (15 for `default`).
#[inline]
pub fn decide(lead: &LeadInput) -> Decision {
    let p = &lead.profile;
    let free = FREE.contains(&p.email.domain());
    let employees = p.employees;
    let country = p.country.as_ref().map(|c| c.as_str());
    let in_region = |list: &[&str]| country.is_some_and(|c| list.contains(&c));
    let title = p.job_title.as_deref().filter(|t| !t.is_empty());
    let title_has = |part: &str| title.is_some_and(|t| contains_ci(t, part));
    let industry = p.industry.as_deref();
    let &[demo, trial, pricing, webinar, content, click, support, unsubscribe, ..] = lead.events.by_slot() else {
        panic!("the rules have eight event types")
    };
    let [demo, trial, pricing, webinar, content, click, support, unsubscribe] =
        [demo, trial, pricing, webinar, content, click, support, unsubscribe].map(i64::from);

    let mut fit = 0i64;
    let mut bits = 0u16;
    let mut hit = |i: u16, holds: bool, points: i64| {
        if holds {
            fit += points;
            bits |= 1 << i;
        }
    };
    let n = employees.unwrap_or(-1);
    hit(0, n >= 5000, 25);
    hit(1, (1000..=4999).contains(&n), 20);
    hit(2, (200..=999).contains(&n), 12);
    hit(3, (20..=199).contains(&n), 5);
    hit(4, employees.is_some_and(|n| n < 5), -10);
    hit(5, title_has("chief"), 15);
    hit(6, title_has("vp") || title_has("vice president"), 12);
    hit(7, title_has("director"), 8);
    hit(8, title_has("intern") || title_has("student") || title_has("assistant"), -20);
    hit(9, one_of(industry, &["software", "saas", "fintech", "cybersecurity", "devtools"]), 10);
    hit(10, one_of(industry, &["banking", "insurance", "healthcare", "government"]), 5);
    hit(11, in_region(&["US", "CA", "GB", "DE", "FR", "NL", "SE", "AU"]), 5);
    hit(12, one_of(p.source.as_deref(), &["google-ads", "linkedin-ads", "capterra", "g2"]), 5);
    hit(13, free, -15);
    hit(14, pricing >= 3, 10);
    let engaged = demo + trial + pricing + webinar + content + click + support + unsubscribe > 0;
    hit(15, !engaged, -10);

    let engagement = 30 * demo
        + 25 * trial
        + (5 * pricing).min(20)
        + 8 * webinar
        + (3 * content).min(12)
        + click.min(6)
        + 2 * support
        - 25 * unsubscribe;
    let score = (fit + engagement).clamp(0, 120);
    let tier = if score >= 70 {
        2
    } else if score >= 40 {
        1
    } else {
        0
    };

    let big = employees.is_some_and(|n| n >= 1000);
    let mid = employees.is_some_and(|n| (200..=999).contains(&n));
    let route = if score >= 90 && big {
        0
    } else if big && in_region(NA) {
        1
    } else if big && in_region(EMEA) {
        2
    } else if big {
        3
    } else if one_of(industry, &["fintech", "banking", "insurance"]) && score >= 70 {
        4
    } else if one_of(industry, &["healthcare", "biotech", "pharma"]) {
        5
    } else if one_of(industry, &["government", "education"]) {
        6
    } else if mid && in_region(EMEA) {
        7
    } else if mid && in_region(NA) {
        8
    } else if in_region(APAC) {
        9
    } else if in_region(LATAM) {
        10
    } else if one_of(industry, &["software", "saas", "devtools"]) && score >= 40 {
        11
    } else if in_region(EMEA) {
        12
    } else if score >= 60 {
        13
    } else if score < 20 {
        14
    } else {
        15
    };
    Decision { score, tier, fit: bits, route }
}
