//! The pages, server-rendered with maud (escaped by construction), one
//! column, large buttons, readable at 360 px, no script.

use chrono::{DateTime, Utc};
use leadflow_domain::link::ACTIONS;
use leadflow_domain::machine::{Access, team_of};
use leadflow_domain::message::{describe, local_time};
use leadflow_domain::rules::lifecycle::SalesEvent;
use leadflow_domain::team::Effective;
use leadflow_domain::{Bant, HistoryEntry, Lead, Record, RuleSet, Status, TeamState};
use maud::{DOCTYPE, Markup, html};

const STYLE: &str = "
body{font:17px/1.45 system-ui,sans-serif;margin:0;padding:16px;max-width:560px;color:#1b1b1b;background:#fafafa}
h1{font-size:1.4em;margin:.2em 0}h2{font-size:1.05em;margin:1.2em 0 .4em}
.muted{color:#555}.card{background:#fff;border:1px solid #ddd;border-radius:10px;padding:12px 14px;margin:12px 0}
.flash{background:#e7f6ea;border-color:#8fd19e}.problem{background:#fdecea;border-color:#f5a3a3}
.due{font-weight:600}.late{color:#b00020;font-weight:600}
form{margin:0}button{display:block;width:100%;font-size:1.05em;padding:14px;margin:8px 0;border-radius:10px;
border:1px solid #0b5cad;background:#0b5cad;color:#fff}button.secondary{background:#fff;color:#0b5cad}
label{display:block;padding:6px 0}select{font-size:1em;padding:10px;width:100%}
a{color:#0b5cad}dl{margin:0}dt{font-weight:600;float:left;clear:left;width:7em}dd{margin:0 0 4px 7.5em}
nav{display:flex;flex-wrap:wrap;gap:12px;align-items:center;margin-bottom:8px}nav form button{padding:6px 10px;margin:0;width:auto}
ul.leads{list-style:none;padding:0;margin:0}ul.leads li{margin:10px 0}ul.leads a.lead{display:block;text-decoration:none;color:inherit}
input[type=email]{font-size:1.05em;padding:12px;width:100%;box-sizing:border-box}
pre{white-space:pre-wrap;font-size:.9em;margin:0}ol.history{padding-left:1.2em;font-size:.92em}
body:has(.wide){max-width:1100px}.board{display:grid;grid-template-columns:repeat(auto-fit,minmax(220px,1fr));gap:12px}
.board .card{margin:0}.board h3{margin:0 0 6px;font-size:1em;text-transform:capitalize}.board ul.leads li{margin:6px 0;font-size:.92em}
svg.chart{width:100%;height:auto;background:#fff;border:1px solid #ddd;border-radius:10px}
form.filters{display:flex;flex-wrap:wrap;gap:8px;align-items:end}form.filters label{padding:0}
form.filters select,form.filters input{font-size:.95em;padding:8px;width:auto}form.filters button{width:auto;margin:0;padding:9px 14px}
dl.figures dt{width:9em}dl.figures dd{margin-left:9.5em}
";

/// A whole page.
pub fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                meta name="robots" content="noindex, nofollow";
                title { (title) " · leadflow" }
                style { (maud::PreEscaped(STYLE)) }
            }
            body { (body) }
        }
    }
}

/// A page that only says what went wrong.
pub fn problem(message: &str) -> Markup {
    layout(
        "leadflow",
        html! {
            h1 { "leadflow" }
            div.card.problem role="alert" { (message) }
        },
    )
}

/// An action link's page: the lead's essentials and what the rep may do.
pub struct ActionPage<'a> {
    pub rules: &'a RuleSet,
    pub lead: &'a Lead,
    pub rep: &'a str,
    pub access: Access,
    pub csrf: &'a str,
    pub nonce: &'a str,
    /// The action just taken (after the redirect).
    pub flash: Option<&'a str>,
    /// The action the link was opened for (`?do=`), shown first.
    pub focus: Option<&'a str>,
    /// Why the last action was refused.
    pub problem: Option<&'a str>,
    /// For a signed-in rep: the navigation, the score, why this rep, the history.
    pub details: Option<Details<'a>>,
    pub now: DateTime<Utc>,
}

fn label(action: &str) -> &'static str {
    ACTIONS.iter().find(|(a, _)| *a == action).map_or("Assign", |(_, l)| *l)
}

/// "in 42 min", "3 h 5 min ago".
fn time_left(deadline: DateTime<Utc>, now: DateTime<Utc>) -> (String, bool) {
    let minutes = (deadline - now).num_minutes();
    let span = |m: i64| if m >= 60 { format!("{} h {} min", m / 60, m % 60) } else { format!("{m} min") };
    if minutes >= 0 { (format!("in {}", span(minutes)), false) } else { (format!("{} overdue", span(-minutes)), true) }
}

impl ActionPage<'_> {
    /// Whether the lifecycle takes this action from the lead's status (a lead
    /// nobody owns takes only an assignment).
    fn allowed(&self, action: &str) -> bool {
        if self.lead.owner.is_none() {
            return false;
        }
        let lifecycle = &self.rules.lifecycle;
        let event = match action {
            "contacted" => SalesEvent::Contacted,
            "contact_attempt" => SalesEvent::ContactAttempt,
            "qualified" => SalesEvent::Qualified(Bant::default()),
            "converted" => SalesEvent::Converted,
            "nurture" => SalesEvent::Nurture,
            "disqualified" => match lifecycle.disqualify_reasons.first() {
                Some(reason) => SalesEvent::Disqualified { reason: reason.clone() },
                None => return false,
            },
            "not_mine" => return self.lead.status.is_open(),
            _ => return false,
        };
        lifecycle.apply(self.lead.status, self.lead.bant, &event).is_ok()
    }

    /// The page for a rep who may no longer act on the lead: whose it is,
    /// and nothing of the lead itself.
    fn not_yours(&self) -> Markup {
        let whose = match &self.lead.owner {
            Some(owner) => format!("This lead is with {owner} now. There is nothing for you to do here."),
            None => "This lead has no owner now. There is nothing for you to do here.".to_owned(),
        };
        layout(
            "leadflow",
            html! {
                @if let Some(d) = &self.details { (nav(d.chrome)) }
                h1 { "leadflow" }
                @if let Some(problem) = self.problem { div.card.problem role="alert" { (problem) } }
                div.card role="status" { (whose) }
            },
        )
    }

    fn form(&self, action: &str, fields: Markup, secondary: bool) -> Markup {
        html! {
            form method="post" {
                input type="hidden" name="csrf" value=(self.csrf);
                input type="hidden" name="nonce" value=(self.nonce);
                input type="hidden" name="action" value=(action);
                (fields)
                @if secondary { button.secondary type="submit" { (label(action)) } }
                @else { button type="submit" { (label(action)) } }
            }
        }
    }

    fn action_form(&self, action: &str) -> Markup {
        let fields = match action {
            "qualified" => html! {
                p.muted { "The BANT criteria the lead meets:" }
                @for (name, text) in [("budget", "Budget"), ("authority", "Authority"), ("need", "Need"), ("timeline", "Timeline")] {
                    label { input type="checkbox" name=(name) value="yes"; " " (text) }
                }
            },
            "disqualified" => html! {
                label for="reason" { "Reason" }
                select id="reason" name="reason" required {
                    option value="" { "Choose a reason" }
                    @for r in &self.rules.lifecycle.disqualify_reasons { option value=(r) { (r.replace('_', " ")) } }
                }
            },
            _ => html! {},
        };
        let secondary = !matches!(action, "contacted");
        self.form(action, fields, secondary)
    }

    fn assign_form(&self) -> Markup {
        let team: Vec<String> =
            team_of(self.rules, self.rep).into_iter().filter(|r| self.lead.owner.as_deref() != Some(r)).collect();
        let routing = &self.rules.routing;
        let name = |id: &str| routing.rep_index(id).map_or(id.to_owned(), |i| routing.reps[i].name.clone());
        let fields = html! {
            label for="to" { "Assign to" }
            select id="to" name="to" required {
                option value="" { "Choose a rep" }
                @for r in &team { option value=(r) { (name(r)) } }
            }
            label { input type="checkbox" name="over_capacity" value="yes"; " Even over their capacity" }
        };
        self.form("assign", fields, true)
    }

    pub fn render(&self) -> Markup {
        if self.access == Access::None {
            return self.not_yours();
        }
        let lead = self.lead;
        let p = &lead.profile;
        let name = lead_name(lead);
        let clock = lead.sla.filter(|_| lead.status == Status::Assigned);
        let mut actions: Vec<&str> = ACTIONS.iter().map(|(a, _)| *a).filter(|a| self.allowed(a)).collect();
        if let Some(focus) = self.focus
            && let Some(i) = actions.iter().position(|a| *a == focus)
        {
            let a = actions.remove(i);
            actions.insert(0, a);
        }
        layout(
            &name,
            html! {
                @if let Some(d) = &self.details { (nav(d.chrome)) }
                p.muted { "Lead for " (self.rep) }
                h1 { (name) }
                p { (p.job_title.as_deref().unwrap_or("")) @if p.job_title.is_some() && p.company.is_some() { ", " } (p.company.as_deref().unwrap_or("")) }
                @if let Some(done) = self.flash {
                    div.card.flash role="status" { "Saved: " (label(done)) "." }
                }
                @if let Some(problem) = self.problem {
                    div.card.problem role="alert" { (problem) }
                }
                div.card {
                    dl {
                        dt { "Status" } dd { (lead.status) }
                        dt { "Score" } dd { (lead.score) " (" (lead.tier) ")" }
                        dt { "Owner" } dd { (lead.owner.as_deref().unwrap_or("nobody")) }
                        @if let Some(phone) = &p.phone { dt { "Phone" } dd { a href={ "tel:" (phone) } { (phone) } } }
                        dt { "Email" } dd { a href={ "mailto:" (p.email.as_str()) } { (p.email.as_str()) } }
                        @if let Some(c) = &p.country { dt { "Country" } dd { (c.as_str()) } }
                    }
                    @if let Some(clock) = clock {
                        @let (left, late) = time_left(clock.deadline, self.now);
                        p class=(if late { "late" } else { "due" }) {
                            "Respond by " (local_time(self.rules, clock.deadline)) " (" (left) ")"
                        }
                    }
                }
                @match self.access {
                    Access::None => {
                        div.card role="status" {
                            @match &lead.owner {
                                Some(owner) => { "This lead is with " (owner) " now. There is nothing for you to do here." }
                                None => { "This lead has no owner now. There is nothing for you to do here." }
                            }
                        }
                    }
                    access => {
                        @if actions.is_empty() && access != Access::Manager {
                            p.muted { "This lead is " (lead.status) "; there is nothing more to record." }
                        }
                        @for action in &actions {
                            @if self.focus == Some(*action) { h2 { "Confirm: " (label(action)) } }
                            (self.action_form(action))
                        }
                        @if access == Access::Manager && matches!(lead.status, Status::Unassigned | Status::Assigned | Status::Working) {
                            h2 { "Assign" }
                            (self.assign_form())
                        }
                    }
                }
                @if let Some(d) = &self.details {
                    @let (score, why) = score_and_why(d.history);
                    @if let Some(score) = score { h2 { "Score" } div.card { pre { (score) } } }
                    @if !why.is_empty() {
                        h2 { "Why " (lead.owner.as_deref().unwrap_or("nobody")) }
                        div.card { @for line in &why { (line) br; } }
                    }
                    h2 { "History" }
                    ol.history {
                        @for h in d.history { li { span.muted { (local_time(self.rules, h.at)) } " " (summary(&h.record)) } }
                    }
                }
            },
        )
    }
}

/// What a signed-in page shows around its content.
#[derive(Debug)]
pub struct Chrome {
    pub rep: String,
    pub manager: bool,
    /// The session's CSRF token (for sign-out).
    pub csrf: String,
}

/// A lead's page for a signed-in rep, beyond the action link's.
#[derive(Clone, Copy, Debug)]
pub struct Details<'a> {
    pub chrome: &'a Chrome,
    pub history: &'a [HistoryEntry],
}

/// The navigation of signed-in pages.
fn nav(chrome: &Chrome) -> Markup {
    html! {
        nav {
            a href="/app" { "My leads" }
            @if chrome.manager {
                a href="/app/team" { "Team" }
                a href="/app/unassigned" { "Unassigned" }
                a href="/app/dashboard" { "Dashboard" }
            }
            span.muted { (chrome.rep) }
            form method="post" action="/app/signout" {
                input type="hidden" name="csrf" value=(chrome.csrf);
                button.secondary type="submit" { "Sign out" }
            }
        }
    }
}

/// The name a lead goes by.
fn lead_name(lead: &Lead) -> String {
    let p = &lead.profile;
    match (p.first_name.as_deref(), p.last_name.as_deref()) {
        (Some(f), Some(l)) => format!("{f} {l}"),
        (Some(n), None) | (None, Some(n)) => n.to_owned(),
        (None, None) => p.email.as_str().to_owned(),
    }
}

/// One history record, in a line.
fn summary(record: &Record) -> String {
    match record {
        Record::Event { kind, count, by, .. } => match by {
            Some(by) => format!("{kind} (by {by})"),
            None if *count > 1 => format!("{kind} x{count}"),
            None => kind.clone(),
        },
        Record::Capture { warnings, replaced } => {
            format!("form values kept aside: {} warnings, {} replaced", warnings.len(), replaced.len())
        }
        Record::Scored { explanation, .. } => {
            format!("scored {} ({})", explanation.score.score, explanation.score.tier)
        }
        Record::Transition { from, to, cause, reason, .. } => match reason {
            Some(r) => format!("{from} to {to} ({cause}: {r})"),
            None => format!("{from} to {to} ({cause})"),
        },
        Record::Assignment { assignment, .. } => match &assignment.rep {
            Some(rep) => format!("assigned to {rep} by rule {}", assignment.rule),
            None => format!("nobody available (rule {})", assignment.rule),
        },
        Record::Reassignment { to, why, .. } => format!("to {to}: {why}"),
        Record::Escalation { steps, .. } => format!("escalation steps {steps:?}"),
        Record::Notification { kind, to, .. } => format!("{} sent to {}", kind.as_str(), to.join(", ")),
        Record::Rescored { from, to, idle_days, .. } => format!("rescored {from} to {to} after {idle_days} idle days"),
        Record::Repair { problem } => format!("repaired: {problem}"),
        Record::Imported { created_at, held } => format!(
            "imported (created {}){}",
            created_at.format("%Y-%m-%d"),
            if *held { ", hand-off held until its next activity" } else { "" }
        ),
        Record::Legacy { kind, .. } => format!("({kind})"),
    }
}

/// The last score's explanation, and how the current owner came to have the lead.
fn score_and_why(history: &[HistoryEntry]) -> (Option<String>, Vec<String>) {
    let score = history.iter().rev().find_map(|h| match &h.record {
        Record::Scored { explanation, .. } => Some(explanation.to_string()),
        _ => None,
    });
    let mut why = Vec::new();
    for h in history.iter().rev() {
        match &h.record {
            Record::Reassignment { why: w, .. } => {
                why.push(w.clone());
                break;
            }
            Record::Assignment { assignment, .. } => {
                why.extend(assignment.chain.iter().map(describe));
                break;
            }
            _ => {}
        }
    }
    (score, why)
}

/// Where a rep asks for a sign-in link, and what they were told.
pub fn ask_page(csrf: &str, nonce: &str, said: Option<(&str, bool)>) -> Markup {
    layout(
        "Sign in",
        html! {
            h1 { "Sign in to leadflow" }
            @match said {
                Some((email, true)) => {
                    div.card.flash role="status" {
                        "If " (email) " is a rep's address, a sign-in link is on its way to your email and phone. "
                        "It works once, for 15 minutes."
                    }
                }
                Some((typed, false)) => { div.card.problem role="alert" { "\u{201c}" (typed) "\u{201d} is not an email address." } }
                None => {}
            }
            form method="post" action="/app/signin" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="nonce" value=(nonce);
                label for="email" { "Your work email" }
                input id="email" type="email" name="email" required autocomplete="email";
                button type="submit" { "Send me a sign-in link" }
            }
        },
    )
}

/// A sign-in link's page: one button.
pub fn sign_in_page(name: &str, csrf: &str) -> Markup {
    layout(
        "Sign in",
        html! {
            h1 { "Sign in as " (name) }
            p.muted { "This link works once." }
            form method="post" {
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" { "Sign in" }
            }
        },
    )
}

/// The forms a manager assigns unassigned leads with.
#[derive(Debug)]
pub struct AssignForms {
    pub team: Vec<String>,
    pub nonce: String,
}

/// A list of leads: a rep's own, or the unassigned queue (with `assign`).
pub fn queue_page(
    rules: &RuleSet,
    chrome: &Chrome,
    title: &str,
    leads: &[Lead],
    assign: Option<&AssignForms>,
    now: DateTime<Utc>,
) -> Markup {
    let routing = &rules.routing;
    let name = |id: &str| routing.rep_index(id).map_or(id.to_owned(), |i| routing.reps[i].name.clone());
    layout(
        title,
        html! {
            (nav(chrome))
            h1 { (title) " (" (leads.len()) ")" }
            @if leads.is_empty() { p.muted { "Nothing waiting." } }
            ul.leads {
                @for lead in leads {
                    li.card {
                        a.lead href={ "/app/leads/" (lead.id) } {
                            strong { (lead_name(lead)) }
                            @if let Some(c) = &lead.profile.company { " · " (c) }
                            br;
                            span.muted { (lead.status) " · " (lead.tier) " " (lead.score) }
                            @if let Some(clock) = lead.sla.filter(|_| lead.status == Status::Assigned) {
                                @let (left, late) = time_left(clock.deadline, now);
                                br;
                                span class=(if late { "late" } else { "due" }) { "respond " (left) }
                            }
                        }
                        @if let Some(assign) = assign {
                            form method="post" action={ "/app/leads/" (lead.id) } {
                                input type="hidden" name="csrf" value=(chrome.csrf);
                                input type="hidden" name="nonce" value=(assign.nonce);
                                input type="hidden" name="action" value="assign";
                                input type="hidden" name="back" value="/app/unassigned";
                                select name="to" required aria-label="Assign to" {
                                    option value="" { "Assign to…" }
                                    @for r in &assign.team { option value=(r) { (name(r)) } }
                                }
                                label { input type="checkbox" name="over_capacity" value="yes"; " Even over their capacity" }
                                button.secondary type="submit" { "Assign" }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// A manager's team: availability, away dates, capacity and open leads, and
/// the forms that change them (effective at the next routing decision).
pub fn team_page(
    rules: &RuleSet,
    chrome: &Chrome,
    team: &[String],
    state: &TeamState,
    said: Option<(&str, bool)>,
    now: DateTime<Utc>,
) -> Markup {
    let routing = &rules.routing;
    let today = now.date_naive();
    let form = |rep: &str, change: &str, fields: Markup, label: &str| {
        html! {
            form method="post" action="/app/team" {
                input type="hidden" name="csrf" value=(chrome.csrf);
                input type="hidden" name="rep" value=(rep);
                input type="hidden" name="change" value=(change);
                (fields)
                button.secondary type="submit" { (label) }
            }
        }
    };
    layout(
        "Team",
        html! {
            (nav(chrome))
            h1 { "Team" }
            @match said {
                Some((text, true)) => { div.card.flash role="status" { (text) } }
                Some((text, false)) => { div.card.problem role="alert" { (text) } }
                None => {}
            }
            @for id in team {
                @if let Some(rep) = routing.rep_index(id).map(|i| &routing.reps[i]) {
                    @let settings = state.settings.get(id);
                    @let effective = Effective::of(rep, settings);
                    @let open = state.open.get(id).copied().unwrap_or(0);
                    div.card id={ "rep-" (id) } {
                        strong { (rep.name) } " " span.muted { (rep.id) }
                        dl {
                            dt { "Available" }
                            dd {
                                @if !effective.active { "no (not taking leads)" }
                                @else if effective.is_away(today) { "no (away today)" }
                                @else { "yes" }
                            }
                            dt { "Open leads" }
                            dd { (open) @if let Some(c) = effective.capacity { " of " (c) } }
                            @if !effective.away.is_empty() {
                                dt { "Away" }
                                dd { @for (from, to) in &effective.away { (from) " to " (to) br; } }
                            }
                            @if let Some(s) = settings {
                                dt { "Changed" }
                                dd { "by " (s.changed_by) ", " (local_time(rules, s.changed_at)) }
                            }
                        }
                        details {
                            summary { "Change" }
                            (form(id, "away", html! {
                                label { "Away from " input type="date" name="from" required value=(today); }
                                label { "to " input type="date" name="to" required value=(today); }
                            }, "Mark away"))
                            @if effective.is_away(today) { (form(id, "back", html! {}, "Back today")) }
                            (form(id, "capacity", html! {
                                label { "Capacity " input type="number" name="capacity" min="1" max="10000" required
                                    value=(effective.capacity.map(|c| c.to_string()).unwrap_or_default()); }
                            }, "Set capacity"))
                            @if effective.active { (form(id, "inactive", html! {}, "Stop assigning leads")) }
                            @else { (form(id, "active", html! {}, "Start assigning leads")) }
                            @if settings.is_some() { (form(id, "reset", html! {}, "Back to routing.yaml")) }
                        }
                    }
                }
            }
        },
    )
}

/// What the dashboard shows, and the filters it was asked for.
pub struct Dashboard<'a> {
    pub chrome: &'a Chrome,
    /// Waiting leads of the manager's team (and the unassigned queue), by status.
    pub board: Vec<(Status, Vec<&'a Lead>)>,
    /// How many waiting leads the filters left out.
    pub hidden: usize,
    pub filters: &'a Filters,
    /// The team members a manager may filter by.
    pub team: &'a [String],
    pub tiers: Vec<String>,
    /// The sources leads of the board came from.
    pub sources: Vec<String>,
    pub report: &'a leadflow_domain::report::Report,
    /// What the charts are of: every lead, or one rep, tier or source.
    pub charts_of: String,
}

/// The dashboard's filters, as the query string gave them.
#[derive(Clone, Debug, Default)]
pub struct Filters {
    pub from: Option<chrono::NaiveDate>,
    pub to: Option<chrono::NaiveDate>,
    pub owner: Option<String>,
    pub tier: Option<String>,
    pub source: Option<String>,
}

/// How long ago, in a few characters: 12m, 3h, 5d.
fn age(since: DateTime<Utc>, now: DateTime<Utc>) -> String {
    crate::charts::duration((now - since).num_seconds().max(0))
}

/// The manager's dashboard: the pipeline board, then the charts of speed to
/// lead, the SLA, the funnel and the score's calibration over the period.
pub fn dashboard_page(d: &Dashboard<'_>, now: DateTime<Utc>) -> Markup {
    use crate::charts::{Scale, Series, bars, rows};
    let r = d.report;
    let weeks: Vec<String> = r.rows.iter().map(|row| row.name.clone()).collect();
    let secs = |v: Option<i64>| v.map(|s| s as f64);
    let speed = [
        Series {
            name: "p50",
            color: "#0b5cad",
            values: r.rows.iter().map(|w| secs(w.figures.speed_to_lead.p50_at_most_secs)).collect(),
        },
        Series {
            name: "p90",
            color: "#8fb8e6",
            values: r.rows.iter().map(|w| secs(w.figures.speed_to_lead.p90_at_most_secs)).collect(),
        },
    ];
    let sla = [
        Series {
            name: "met",
            color: "#2e7d32",
            values: r.rows.iter().map(|w| Some(w.figures.sla_met as f64)).collect(),
        },
        Series {
            name: "breached",
            color: "#c62828",
            values: r.rows.iter().map(|w| Some(w.figures.sla_breached as f64)).collect(),
        },
    ];
    let total = &r.total.figures;
    let funnel: Vec<(String, f64, String)> = total
        .funnel
        .iter()
        .map(|s| {
            let label = if s.step == "reached_handoff" { "hand-off tier" } else { s.step };
            let rate = s.rate_from_previous.map(|v| format!("({:.0}%)", v * 100.0)).unwrap_or_default();
            (label.to_owned(), s.count as f64, rate)
        })
        .collect();
    let bands: Vec<String> = total.calibration.iter().map(|b| b.band.to_string()).collect();
    let calibration = [
        Series {
            name: "converted",
            color: "#0b5cad",
            values: total.calibration.iter().map(|b| b.conversion_rate).collect(),
        },
        Series {
            name: "won of closed",
            color: "#2e7d32",
            values: total.calibration.iter().map(|b| b.win_rate).collect(),
        },
    ];
    let f = d.filters;
    let selected = |v: &Option<String>, option: &str| v.as_deref() == Some(option);
    let percent = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{:.0}%", v * 100.0));
    layout_wide(
        "Dashboard",
        html! {
            (nav(d.chrome))
            h1 { "Dashboard" }
            form.filters method="get" action="/app/dashboard" {
                label { "From " input type="date" name="from" value=(r.from); }
                label { "To " input type="date" name="to" value=(r.to); }
                label { "Owner " select name="owner" {
                    option value="" { "Anyone" }
                    @for rep in d.team { option value=(rep) selected[selected(&f.owner, rep)] { (rep) } }
                } }
                label { "Tier " select name="tier" {
                    option value="" { "Any" }
                    @for t in &d.tiers { option value=(t) selected[selected(&f.tier, t)] { (t) } }
                } }
                label { "Source " select name="source" {
                    option value="" { "Any" }
                    @for s in &d.sources { option value=(s) selected[selected(&f.source, s)] { (s) } }
                } }
                button.secondary type="submit" { "Show" }
            }
            h2 { "Figures from " (r.from) " to " (r.to) " · " (d.charts_of) }
            dl.figures {
                dt { "Captured" } dd { (total.captured) }
                dt { "Hand-offs" } dd { (total.handoffs) }
                dt { "Speed to lead" } dd {
                    @match total.speed_to_lead.p50_at_most_secs {
                        Some(p50) => { "p50 ≤ " (crate::charts::duration(p50)) }
                        None => "-",
                    }
                    " · " (percent(total.within_target)) " within target"
                }
                dt { "SLA breached" } dd { (total.sla_breached) " (" (percent(total.sla_breach_rate)) ")" }
                dt { "Won" } dd { (total.won) " of " (total.won + total.lost) " closed" }
            }
            h2 { "Pipeline" }
            @if d.hidden > 0 { p.muted { (d.hidden) " waiting leads are outside the filters." } }
            div.board {
                @for (status, leads) in &d.board {
                    section.card.column id={ "status-" (status) } {
                        h3 { (status) " " span.muted { "(" (leads.len()) ")" } }
                        @if leads.is_empty() { p.muted { "None." } }
                        ul.leads {
                            @for lead in leads.iter().take(BOARD_COLUMN) {
                                li {
                                    a href={ "/app/leads/" (lead.id) } { (lead_name(lead)) }
                                    br;
                                    span.muted {
                                        (lead.tier) " " (lead.score)
                                        @if let Some(owner) = &lead.owner { " · " (owner) }
                                        " · " (age(lead.facts.status_since.unwrap_or(lead.updated_at), now))
                                    }
                                }
                            }
                        }
                        @if leads.len() > BOARD_COLUMN { p.muted { "and " (leads.len() - BOARD_COLUMN) " more" } }
                    }
                }
            }
            h2 { "Speed to lead by week" }
            (bars("Speed to lead by week, p50 and p90", &weeks, &speed, Scale::Duration, false))
            h2 { "SLA by week" }
            (bars("Hand-offs that met or breached their deadline, by week", &weeks, &sla, Scale::Linear, true))
            h2 { "Funnel" }
            (rows("Funnel: captured to won", &funnel, "#0b5cad"))
            h2 { "Calibration" }
            p.muted { "By the score at the first hand-off, in bands of " (leadflow_domain::facts::BAND_WIDTH) " points." }
            (bars("Conversion and win rate by score band", &bands, &calibration, Scale::Share, false))
        },
    )
}

/// Leads shown per board column.
const BOARD_COLUMN: usize = 6;

/// A page with room for the dashboard on a desktop (one column on a phone).
pub fn layout_wide(title: &str, body: Markup) -> Markup {
    layout(title, html! { div.wide { (body) } })
}
