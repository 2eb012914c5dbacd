//! The words of a notification: one short SMS and a full email with the context
//! a rep needs to call the lead back.

use std::fmt::Write;

use crate::record::{Lead, Notification, NotificationKind};
use crate::rules::Explanation;
use crate::rules::RuleSet;
use crate::rules::routing::Step;
use chrono::{DateTime, Utc};

/// SNS sends an SMS of up to 160 GSM 03.38 characters as one message (70 when
/// any character is outside that alphabet and UCS-2 is used), and splits
/// longer ones. A hand-off fits one message.
pub const SMS_MAX_GSM: usize = 160;
pub const SMS_MAX_UCS2: usize = 70;

/// SNS's limit on a subject: ASCII, no line breaks or control characters,
/// under 100 characters.
pub const SUBJECT_MAX_CHARS: usize = 99;

/// The GSM 03.38 basic alphabet; the characters of its extension table
/// (`^{}\[~]|€` and form feed) count twice.
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u{1b}ÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM_EXTENSION: &str = "^{}\\[~]|€";

/// What a notification says, beyond the lead itself.
#[derive(Clone, Debug)]
pub struct Context<'a> {
    pub kind: NotificationKind,
    pub to: Vec<String>,
    /// Why the rules decided what they did (hand-offs and reactivations).
    pub explanation: Option<&'a Explanation>,
    /// How the rep was chosen.
    pub chain: &'a [Step],
    /// Escalation or reassignment detail, one line.
    pub note: Option<String>,
    pub at: DateTime<Utc>,
}

/// Renders a notification about `lead` (its state after the change).
pub fn render(rules: &RuleSet, lead: &Lead, n: usize, ctx: Context<'_>) -> Notification {
    let p = &lead.profile;
    // Every value the lead wrote is cleaned before it reaches a rep.
    let name = match (p.first_name.as_deref(), p.last_name.as_deref()) {
        (Some(f), Some(l)) => format!("{f} {l}"),
        (Some(f), None) => f.to_owned(),
        (None, Some(l)) => l.to_owned(),
        (None, None) => p.email.as_str().to_owned(),
    };
    let name = clean(&name, NAME_CHARS);
    let company = clean(p.company.as_deref().unwrap_or(p.email.domain()), NAME_CHARS);
    let email_address = clean(p.email.as_str(), VALUE_CHARS);
    let deadline = lead.sla.map(|c| local_time(rules, c.deadline));
    let headline = match ctx.kind {
        NotificationKind::Handoff => "New lead",
        NotificationKind::Escalation => "SLA breach",
        NotificationKind::Reassigned => "Lead reassigned",
        NotificationKind::Reactivation => "Lead is back",
        NotificationKind::Unassigned => "Nobody available for lead",
    };

    let mut sms = format!("{headline}: {name}, {company}, score {} ({})", lead.score, lead.tier);
    if let Some(d) = &deadline {
        let _ = write!(sms, ", respond by {d}");
    }
    let sms = fit_sms(&sms);
    let subject = sns_subject(&format!("{headline}: {name} ({company}), {} lead", lead.tier));

    let mut email = String::new();
    let _ = writeln!(email, "{headline}: {name} at {company}.");
    if let Some(note) = &ctx.note {
        let _ = writeln!(email, "{note}");
    }
    let _ = writeln!(email, "\nWho");
    let _ = writeln!(email, "  {name} <{email_address}>");
    for (label, value) in [
        ("title", p.job_title.as_deref()),
        ("company", p.company.as_deref()),
        ("phone", p.phone.as_deref()),
        ("industry", p.industry.as_deref()),
        ("country", p.country.as_ref().map(|c| c.as_str())),
        ("source", p.source.as_deref()),
    ] {
        if let Some(v) = value {
            let _ = writeln!(email, "  {label}: {}", clean(v, VALUE_CHARS));
        }
    }
    if let Some(n) = p.employees {
        let _ = writeln!(email, "  employees: {n}");
    }
    let _ = writeln!(email, "\nScore {} ({})", lead.score, lead.tier);
    if let Some(e) = ctx.explanation {
        // The explanation quotes field values: each line cleaned on its own.
        for line in e.to_string().lines().skip(1) {
            let indent = &line[..line.len() - line.trim_start().len()];
            let _ = writeln!(email, "{indent}{}", clean(line, LINE_CHARS));
        }
    }
    let _ = writeln!(email, "\nActivity");
    if lead.events.is_empty() {
        let _ = writeln!(email, "  none recorded");
    }
    for (kind, count) in &lead.events {
        let _ = writeln!(email, "  {kind} x{count}");
    }
    let _ = writeln!(email, "  last activity {}", local_time(rules, lead.last_activity_at));
    if !ctx.chain.is_empty() {
        let _ = writeln!(email, "\nWhy {}", lead.owner.as_deref().unwrap_or("nobody"));
        for step in ctx.chain {
            let _ = writeln!(email, "  {}", describe(step));
        }
    }
    if let Some(d) = &deadline {
        let _ = writeln!(email, "\nRespond by {d}.");
    }
    let _ = writeln!(email, "\nLead {} (rules {})", lead.id, rules.version);

    Notification {
        id: format!("{}-{}-{n}", lead.id, lead.version),
        kind: ctx.kind,
        lead_id: lead.id.clone(),
        owner: lead.owner.clone(),
        to: ctx.to,
        tier: lead.tier.clone(),
        sms,
        subject,
        email,
        created_at: ctx.at,
    }
}

/// The longest name or company a notification shows.
pub const NAME_CHARS: usize = 60;
/// The longest other value a notification shows.
pub const VALUE_CHARS: usize = 100;
/// The longest explanation line a notification shows.
const LINE_CHARS: usize = 200;

/// A value a lead wrote, as a notification shows it: one line (control and
/// invisible formatting characters, line and paragraph separators as spaces,
/// runs of spaces as one), no markup (`<` and `>` dropped), links defanged
/// (`https://x` as `https[:]//x`, `www.x` as `www[.]x`, so no phone or mail
/// client makes a link of them, and no character that transliterates to `/`,
/// `:` or `@` rebuilds one), at most `max` characters.
pub fn clean(value: &str, max: usize) -> String {
    let invisible = |c: char| {
        c.is_control()
            || matches!(c, '\u{00AD}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}')
    };
    // A character that transliterates to link punctuation ("÷" is "/") would
    // become that punctuation in a GSM SMS or an ASCII subject: a space instead.
    let punctuation = |c: char| {
        !c.is_ascii() && deunicode::deunicode_char(c).is_some_and(|t| t.chars().any(|p| "/:@<>.\\".contains(p)))
    };
    let mut out = String::with_capacity(value.len().min(max * 4));
    for c in value.chars() {
        let c = if invisible(c) || punctuation(c) { ' ' } else { c };
        if c == '<' || c == '>' || (c.is_whitespace() && (out.is_empty() || out.ends_with(' '))) {
            continue;
        }
        out.push(if c.is_whitespace() { ' ' } else { c });
    }
    let out = out.trim_end().replace("://", "[:]//").replace("www.", "www[.]").replace("WWW.", "WWW[.]");
    truncate(&out, max)
}

/// A time in the business-hours time zone when there is one, else UTC.
pub fn local_time(rules: &RuleSet, t: DateTime<Utc>) -> String {
    match &rules.sla.business_hours {
        Some(bh) => format!("{} {}", bh.timezone.local(t).format("%a %H:%M"), bh.timezone.abbreviation(t)),
        None => t.format("%a %H:%M UTC").to_string(),
    }
}

/// One step of how a rep was chosen, in words.
pub fn describe(step: &Step) -> String {
    match step {
        Step::Sticky { rep } => format!("{rep} owned this lead before (sticky)"),
        Step::AccountMatch { rep } => format!("{rep} owns this company's other leads"),
        Step::RepUnavailable { rep, why } => format!("{rep} unavailable: {}", unavailable(why)),
        Step::PoolExhausted { pool, .. } => format!("nobody available in pool {pool}"),
        Step::Fallback { pool } => format!("fell back to pool {pool}"),
        Step::Overflow { from, to } => format!("pool {from} overflowed to {to}"),
        Step::Default => "no rule matched: default target".to_owned(),
        Step::Chosen { rep, pool, strategy } => match (pool, strategy) {
            (Some(pool), Some(s)) => format!("{rep} chosen from pool {pool} ({})", s.as_str()),
            _ => format!("{rep} chosen"),
        },
    }
}

fn unavailable(why: &crate::rules::routing::Unavailable) -> String {
    use crate::rules::routing::Unavailable as U;
    match why {
        U::Inactive => "inactive".to_owned(),
        U::Away => "away".to_owned(),
        U::AtCapacity { open, capacity } => format!("at capacity ({open}/{capacity})"),
    }
}

/// An SMS body cut to one message: 160 GSM units, or 70 UTF-16 units when
/// any character needs UCS-2. Line breaks and control characters become
/// spaces. Latin letters and punctuation outside the GSM alphabet ("Zoë",
/// curly quotes) are written in it when that keeps the whole text GSM, which
/// keeps the 160-unit message; other scripts stay as they are, in UCS-2.
pub fn fit_sms(s: &str) -> String {
    let s: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let is_gsm = |c: char| GSM_BASIC.contains(c) || GSM_EXTENSION.contains(c);
    let s = if s.chars().all(is_gsm) { s } else { gsm_where_possible(&s).unwrap_or(s) };
    if !s.chars().all(is_gsm) {
        return truncate_utf16(&s, SMS_MAX_UCS2);
    }
    cut_gsm(&s, SMS_MAX_GSM)
}

/// An SMS body that ends with `link` and still fits one message. The link
/// needs the 160-unit GSM message, so the text is written in the GSM alphabet
/// (other scripts transliterated, anything left as `?`) and cut to leave room.
pub fn fit_sms_with_link(text: &str, link: &str) -> String {
    let is_gsm = |c: char| GSM_BASIC.contains(c) || GSM_EXTENSION.contains(c);
    let s: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let s = if s.chars().all(is_gsm) {
        s
    } else {
        gsm_where_possible(&s).unwrap_or_else(|| {
            let plain = deunicode::deunicode(&s);
            plain.chars().map(|c| if is_gsm(c) && !c.is_control() { c } else { '?' }).collect()
        })
    };
    let link: String = link.chars().filter(|c| is_gsm(*c) && !c.is_control()).collect();
    let room = SMS_MAX_GSM.saturating_sub(gsm_units(&link) + 1);
    format!("{} {link}", cut_gsm(s.trim_end(), room))
}

fn gsm_units(s: &str) -> usize {
    s.chars().map(|c| if GSM_EXTENSION.contains(c) { 2 } else { 1 }).sum()
}

/// GSM text cut to `max` units, ending with "..." when cut ("..." is GSM; "…" is not).
fn cut_gsm(s: &str, max: usize) -> String {
    if gsm_units(s) <= max {
        return s.to_owned();
    }
    let units = |c: char| if GSM_EXTENSION.contains(c) { 2 } else { 1 };
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        if used + units(c) > max.saturating_sub(3) {
            break;
        }
        used += units(c);
        out.push(c);
    }
    out.push_str("...");
    out
}

/// `s` in the GSM alphabet, when every character outside it is Latin or
/// common punctuation with a GSM spelling; `None` otherwise.
fn gsm_where_possible(s: &str) -> Option<String> {
    let is_gsm = |c: char| GSM_BASIC.contains(c) || GSM_EXTENSION.contains(c);
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if is_gsm(c) {
            out.push(c);
            continue;
        }
        let latin = matches!(c, '\u{00A0}'..='\u{024F}' | '\u{1E00}'..='\u{1EFF}' | '\u{2010}'..='\u{2027}');
        let plain = deunicode::deunicode_char(c).filter(|p| latin && p.chars().all(is_gsm))?;
        out.push_str(plain);
    }
    Some(out)
}

/// Cut to `max` UTF-16 units (a character outside the Basic Multilingual
/// Plane, such as an emoji, takes two), never inside a character.
fn truncate_utf16(s: &str, max: usize) -> String {
    if s.encode_utf16().count() <= max {
        return s.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        if used + c.len_utf16() > max - 1 {
            break;
        }
        used += c.len_utf16();
        out.push(c);
    }
    out.push('…');
    out
}

/// A subject SNS accepts: transliterated to ASCII, one line, under 100 characters.
pub fn sns_subject(s: &str) -> String {
    let ascii = deunicode::deunicode(s);
    let line: String = ascii.chars().map(|c| if c.is_ascii_control() { ' ' } else { c }).collect();
    let line = line.trim();
    if line.chars().count() <= SUBJECT_MAX_CHARS {
        return line.to_owned();
    }
    let mut out: String = line.chars().take(SUBJECT_MAX_CHARS - 3).collect();
    out.push_str("...");
    out
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sms_with_a_link_keeps_the_link_whole_in_one_gsm_message() {
        let link = format!("https://leads.example.com/a/{}", "A".repeat(43));
        for text in
            ["New lead: Jo", &"x".repeat(300), "New lead: Дмитрий Иванов, ООО Ромашка", "New lead: 王小明 {braces}"]
        {
            let s = fit_sms_with_link(text, &link);
            assert!(s.ends_with(&format!(" {link}")), "{s}");
            assert!(gsm_units(&s) <= SMS_MAX_GSM, "{} units: {s}", gsm_units(&s));
            assert!(s.chars().all(|c| GSM_BASIC.contains(c) || GSM_EXTENSION.contains(c)), "{s}");
        }
        assert_eq!(fit_sms_with_link("New lead: Jo", &link), format!("New lead: Jo {link}"));
        assert!(fit_sms_with_link("New lead: Дмитрий", &link).starts_with("New lead: Dmitrii"));
    }

    #[test]
    fn a_long_gsm_sms_is_cut_to_one_message_of_160_units() {
        let s = fit_sms(&"x".repeat(300));
        assert_eq!(s.chars().count(), SMS_MAX_GSM);
        assert!(s.ends_with("..."));
        assert_eq!(fit_sms("short"), "short");
        // Extension characters count twice.
        let braces = fit_sms(&"{".repeat(100));
        assert_eq!(braces.chars().filter(|c| *c == '{').count(), (SMS_MAX_GSM - 3) / 2);
    }

    #[test]
    fn an_sms_with_a_character_outside_gsm_fits_70() {
        let s = fit_sms(&format!("New lead: 王小明 {}", "y".repeat(100)));
        assert_eq!(s.chars().count(), SMS_MAX_UCS2);
        assert_eq!(fit_sms("Lead: José Müller"), "Lead: José Müller", "é and ü are GSM");
    }

    #[test]
    fn latin_letters_outside_gsm_are_written_in_it_to_keep_160() {
        assert_eq!(fit_sms("New lead: Zoë Šimić, “Acme” – CEO"), "New lead: Zoe Simic, \"Acme\" - CEO");
        assert_eq!(fit_sms(&format!("New lead: Zoë {}", "y".repeat(140))).chars().count(), 154, "not cut to 70");
        // Another script stays as it is, in UCS-2.
        assert_eq!(fit_sms("New lead: Δημήτρης"), "New lead: Δημήτρης");
    }

    #[test]
    fn a_ucs2_sms_counts_utf16_units_and_never_splits_an_emoji() {
        let s = fit_sms(&"🙂".repeat(50));
        assert!(s.encode_utf16().count() <= SMS_MAX_UCS2, "{}", s.encode_utf16().count());
        assert!(s.ends_with('…'));
    }

    #[test]
    fn what_a_lead_wrote_is_one_clean_line() {
        assert_eq!(
            clean("Jo\nScore 150\r\nCall https://evil.example now", 100),
            "Jo Score 150 Call https[:]//evil.example now"
        );
        assert_eq!(clean("<b>Jo</b>\u{202E}moc.live", 100), "bJo/b moc.live");
        assert_eq!(clean("   a   b   ", 100), "a b");
        // Characters that transliterate to link punctuation cannot rebuild a link.
        let sneaky = clean("https:÷÷evil.example/pay ǝvil", 100);
        assert!(!fit_sms(&sneaky).contains("://") && !sns_subject(&sneaky).contains("://"), "{sneaky}");
        assert_eq!(clean("see www.evil.example", 100), "see www[.]evil.example");
        assert_eq!(clean(&"x".repeat(500), 60).chars().count(), 60);
    }

    #[test]
    fn line_breaks_never_reach_an_sms_or_a_subject() {
        assert_eq!(fit_sms("Jo\nScore 150\r\nhttp://x"), "Jo Score 150  http://x");
        assert_eq!(sns_subject("New lead: Jo\nScore 150"), "New lead: Jo Score 150");
    }

    #[test]
    fn subjects_are_ascii_and_under_100_characters() {
        assert_eq!(sns_subject("New lead: José Ñúñez (Zürich AG)"), "New lead: Jose Nunez (Zurich AG)");
        let long = sns_subject(&format!("New lead: {}", "王".repeat(200)));
        assert!(long.is_ascii() && long.chars().count() <= SUBJECT_MAX_CHARS, "{long}");
    }
}
