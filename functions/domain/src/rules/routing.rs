//! `routing.yaml`: reps, pools, ordered routing rules and the default target; the
//! pure decision of which rep gets a lead, given the team's state.

use chrono::NaiveDate;
use marked_yaml::Node;
use serde::Serialize;

use super::condition::{self, Cond};
use super::diag::suggest;
use super::field::{EventVocabulary, Facts, Scope};
use super::yaml::{Doc, child, item, optional};
use crate::lead::Email;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rep {
    pub id: String,
    pub name: String,
    pub email: Email,
    pub phone: Option<String>,
    /// The most open leads (assigned + working) at once.
    pub capacity: Option<u32>,
    /// Index into [`Routing::reps`].
    pub manager: Option<usize>,
    pub active: bool,
    /// Inclusive date ranges, UTC.
    pub away: Vec<(NaiveDate, NaiveDate)>,
}

impl Rep {
    pub fn is_away(&self, today: NaiveDate) -> bool {
        self.away.iter().any(|(from, to)| *from <= today && today <= *to)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    RoundRobin,
    Weighted,
    LeastLoaded,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::RoundRobin => "round_robin",
            Strategy::Weighted => "weighted",
            Strategy::LeastLoaded => "least_loaded",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    pub id: String,
    /// Indexes into [`Routing::reps`], in listed order.
    pub members: Vec<usize>,
    pub weights: Vec<u32>,
    pub strategy: Strategy,
    /// The order in which round-robin and weighted pools hand out leads: each
    /// member once (round_robin) or `weight` times, smoothly interleaved
    /// (weighted). Indexes into `members`.
    pub cycle: Vec<usize>,
    /// Index into [`Routing::pools`].
    pub overflow: Option<usize>,
}

/// Where a routing rule sends a lead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Rep { rep: usize, fallback: Option<usize> },
    Pool(usize),
}

#[derive(Clone, Debug)]
pub struct RouteRule {
    pub name: String,
    pub when: Cond,
    pub to: Target,
    /// Where the rule starts in routing.yaml.
    pub line: Option<usize>,
}

#[derive(Clone, Debug)]
pub struct Routing {
    pub reps: Vec<Rep>,
    pub pools: Vec<Pool>,
    pub rules: Vec<RouteRule>,
    pub default: Target,
    pub sticky: bool,
    pub account_match: bool,
}

/// How many open leads (assigned + working) each rep has now, and what
/// managers changed about them at runtime.
pub trait Workload {
    fn open_leads(&self, rep: &str) -> u32;

    /// The runtime settings layered over `routing.yaml` for this rep, if any.
    fn settings(&self, _rep: &str) -> Option<&crate::team::RepSettings> {
        None
    }
}

/// Where each round-robin or weighted pool stands: the position in its cycle of
/// the next assignment (0 for a pool that has assigned nothing yet).
pub trait PoolCursors {
    fn cursor(&self, pool: &str) -> u64;
}

/// Why a rep cannot take a lead now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Unavailable {
    Inactive,
    Away,
    AtCapacity { open: u32, capacity: u32 },
}

/// The first routing rule that holds, or `None` for `default`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteMatch {
    pub rule: Option<usize>,
}

/// A target as written in the rules, by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum TargetName {
    Pool { pool: String },
    Rep { rep: String },
}

/// One member chosen from a pool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Pick {
    pub rep: usize,
    /// For round-robin and weighted pools: the cursor before and after.
    pub cursor: Option<CursorMove>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct CursorMove {
    pub from: u64,
    pub to: u64,
}

/// One step on the way from the matched rule to the rep.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// The lead's current or previous owner keeps it.
    Sticky {
        rep: String,
    },
    /// Another lead from the same company domain is owned by this rep.
    AccountMatch {
        rep: String,
    },
    RepUnavailable {
        rep: String,
        #[serde(flatten)]
        why: Unavailable,
    },
    /// A pool had no available member.
    PoolExhausted {
        pool: String,
        unavailable: Vec<(String, Unavailable)>,
    },
    Fallback {
        pool: String,
    },
    Overflow {
        from: String,
        to: String,
    },
    Default,
    Chosen {
        rep: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        pool: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        strategy: Option<Strategy>,
    },
}

/// Who gets a lead, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Assignment {
    /// The routing rule that matched, or `default`.
    pub rule: String,
    pub target: TargetName,
    /// The rep id; `None` when nobody was available (the lead is `unassigned`).
    pub rep: Option<String>,
    /// The pool the rep was chosen from, if any (reassignment draws from it).
    pub pool: Option<String>,
    /// The pool cursor to store with the assignment, for round-robin and weighted pools.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<CursorMove>,
    pub chain: Vec<Step>,
}

/// What is known about a lead's owners before routing it.
#[derive(Clone, Copy, Debug)]
pub struct AssignContext<'a> {
    /// The day, UTC, for `away` ranges.
    pub today: NaiveDate,
    /// The rep who owns or last owned the lead (for `sticky`).
    pub previous_owner: Option<&'a str>,
    /// The owner of another lead from the same non-free email domain (for `account_match`).
    pub account_owner: Option<&'a str>,
}

impl Routing {
    /// The first rule whose condition holds.
    #[inline]
    pub fn decide(&self, facts: &Facts<'_>) -> RouteMatch {
        RouteMatch { rule: self.rules.iter().position(|r| r.when.holds(facts)) }
    }

    pub fn rule_name(&self, m: RouteMatch) -> &str {
        m.rule.map_or("default", |i| &self.rules[i].name)
    }

    pub fn target(&self, m: RouteMatch) -> Target {
        m.rule.map_or(self.default, |i| self.rules[i].to)
    }

    pub fn target_name(&self, t: Target) -> TargetName {
        match t {
            Target::Rep { rep, .. } => TargetName::Rep { rep: self.reps[rep].id.clone() },
            Target::Pool(p) => TargetName::Pool { pool: self.pools[p].id.clone() },
        }
    }

    pub fn rep_index(&self, id: &str) -> Option<usize> {
        self.reps.iter().position(|r| r.id == id)
    }

    pub fn pool_index(&self, id: &str) -> Option<usize> {
        self.pools.iter().position(|p| p.id == id)
    }

    /// Whether a rep can take a lead today, as `routing.yaml` and the runtime
    /// settings say together. `capacity` applies unless `ignore_capacity`.
    pub fn availability<W: Workload>(
        &self,
        rep: usize,
        today: NaiveDate,
        load: &W,
        ignore_capacity: bool,
    ) -> Result<(), Unavailable> {
        let r = &self.reps[rep];
        let effective = crate::team::Effective::of(r, load.settings(&r.id));
        if !effective.active {
            return Err(Unavailable::Inactive);
        }
        if effective.is_away(today) {
            return Err(Unavailable::Away);
        }
        if let Some(capacity) = effective.capacity
            && !ignore_capacity
        {
            let open = load.open_leads(&r.id);
            if open >= capacity {
                return Err(Unavailable::AtCapacity { open, capacity });
            }
        }
        Ok(())
    }

    /// Chooses a member of `pool` by its strategy, never `exclude`; or, when no
    /// member is available, why each one is not.
    pub fn pick<W: Workload, C: PoolCursors>(
        &self,
        pool: usize,
        today: NaiveDate,
        load: &W,
        cursors: &C,
        exclude: Option<usize>,
    ) -> Result<Pick, Vec<(String, Unavailable)>> {
        let p = &self.pools[pool];
        let usable = |rep: usize| Some(rep) != exclude && self.availability(rep, today, load, false).is_ok();
        match p.strategy {
            Strategy::RoundRobin | Strategy::Weighted => {
                let from = cursors.cursor(&p.id);
                let len = p.cycle.len() as u64;
                for step in 0..len {
                    let position = from.wrapping_add(step);
                    let rep = p.members[p.cycle[(position % len) as usize]];
                    if usable(rep) {
                        return Ok(Pick { rep, cursor: Some(CursorMove { from, to: position.wrapping_add(1) }) });
                    }
                }
            }
            Strategy::LeastLoaded => {
                let best = p
                    .members
                    .iter()
                    .copied()
                    .filter(|rep| usable(*rep))
                    .min_by_key(|rep| load.open_leads(&self.reps[*rep].id));
                if let Some(rep) = best {
                    return Ok(Pick { rep, cursor: None });
                }
            }
        }
        Err(p
            .members
            .iter()
            .filter(|rep| Some(**rep) != exclude)
            .filter_map(|rep| {
                self.availability(*rep, today, load, false).err().map(|why| (self.reps[*rep].id.clone(), why))
            })
            .collect())
    }

    /// Routes a lead: sticky owner, account owner, then the first matching rule
    /// and its chain of fallbacks and overflows.
    pub fn assign<W: Workload, C: PoolCursors>(
        &self,
        facts: &Facts<'_>,
        ctx: &AssignContext<'_>,
        load: &W,
        cursors: &C,
    ) -> Assignment {
        let m = self.decide(facts);
        let rule = self.rule_name(m).to_owned();
        let target = self.target(m);
        let target_name = self.target_name(target);
        let mut chain = Vec::new();

        let keep = |owner: Option<&str>, ignore_capacity: bool| {
            owner
                .and_then(|id| self.rep_index(id))
                .filter(|rep| self.availability(*rep, ctx.today, load, ignore_capacity).is_ok())
        };
        if self.sticky
            && let Some(rep) = keep(ctx.previous_owner, false)
        {
            let id = self.reps[rep].id.clone();
            chain.push(Step::Sticky { rep: id.clone() });
            return Assignment { rule, target: target_name, rep: Some(id), pool: None, cursor: None, chain };
        }
        if self.account_match
            && let Some(rep) = keep(ctx.account_owner, true)
        {
            let id = self.reps[rep].id.clone();
            chain.push(Step::AccountMatch { rep: id.clone() });
            return Assignment { rule, target: target_name, rep: Some(id), pool: None, cursor: None, chain };
        }

        let mut tried_pools = Vec::new();
        let mut next = Some(target);
        let mut tried_default = m.rule.is_none();
        while let Some(t) = next.take() {
            let failed_pool = match t {
                Target::Rep { rep, fallback } => match self.availability(rep, ctx.today, load, false) {
                    Ok(()) => {
                        let id = self.reps[rep].id.clone();
                        chain.push(Step::Chosen { rep: id.clone(), pool: None, strategy: None });
                        return Assignment {
                            rule,
                            target: target_name,
                            rep: Some(id),
                            pool: None,
                            cursor: None,
                            chain,
                        };
                    }
                    Err(why) => {
                        chain.push(Step::RepUnavailable { rep: self.reps[rep].id.clone(), why });
                        if let Some(pool) = fallback.filter(|p| !tried_pools.contains(p)) {
                            chain.push(Step::Fallback { pool: self.pools[pool].id.clone() });
                            next = Some(Target::Pool(pool));
                            continue;
                        }
                        None
                    }
                },
                Target::Pool(pool) => {
                    tried_pools.push(pool);
                    match self.pick(pool, ctx.today, load, cursors, None) {
                        Ok(pick) => {
                            let p = &self.pools[pool];
                            let id = self.reps[pick.rep].id.clone();
                            chain.push(Step::Chosen {
                                rep: id.clone(),
                                pool: Some(p.id.clone()),
                                strategy: Some(p.strategy),
                            });
                            return Assignment {
                                rule,
                                target: target_name,
                                rep: Some(id),
                                pool: Some(p.id.clone()),
                                cursor: pick.cursor,
                                chain,
                            };
                        }
                        Err(unavailable) => {
                            chain.push(Step::PoolExhausted { pool: self.pools[pool].id.clone(), unavailable });
                            Some(pool)
                        }
                    }
                }
            };
            if let Some(pool) = failed_pool
                && let Some(over) = self.pools[pool].overflow.filter(|o| !tried_pools.contains(o))
            {
                chain.push(Step::Overflow { from: self.pools[pool].id.clone(), to: self.pools[over].id.clone() });
                next = Some(Target::Pool(over));
                continue;
            }
            if !tried_default {
                tried_default = true;
                let skip = matches!(self.default, Target::Pool(p) if tried_pools.contains(&p));
                if !skip {
                    chain.push(Step::Default);
                    next = Some(self.default);
                }
            }
        }
        Assignment { rule, target: target_name, rep: None, pool: None, cursor: None, chain }
    }
}

/// Smooth weighted round-robin: each member appears `weight` times per cycle,
/// spread out as evenly as the weights allow. Ties go to the earlier member.
pub fn smooth_cycle(weights: &[u32]) -> Vec<usize> {
    let total: i64 = weights.iter().map(|w| i64::from(*w)).sum();
    let mut current = vec![0i64; weights.len()];
    let mut cycle = Vec::with_capacity(total as usize);
    for _ in 0..total {
        for (c, w) in current.iter_mut().zip(weights) {
            *c += i64::from(*w);
        }
        let mut best = 0;
        for i in 1..current.len() {
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total;
        cycle.push(best);
    }
    cycle
}

/// The largest weight a pool member may have (a cycle holds the sum of weights).
const MAX_WEIGHT: i64 = 1000;

fn date(doc: &mut Doc<'_>, node: &Node, path: &str) -> Option<NaiveDate> {
    let text = doc.text(node, path)?;
    match NaiveDate::parse_from_str(&text, "%Y-%m-%d") {
        Ok(d) => Some(d),
        Err(_) => {
            doc.error(node.span(), path, format!("`{text}` is not a date like 2026-12-24"));
            None
        }
    }
}

/// The position of the id written at `node` among `ids`, or an error naming
/// the closest one.
fn reference(doc: &mut Doc<'_>, node: &Node, path: &str, kind: &str, ids: &[String]) -> Option<usize> {
    let id = doc.text(node, path)?;
    let found = ids.iter().position(|r| *r == id);
    if found.is_none() {
        let hint = suggest(&id, ids.iter().map(String::as_str));
        doc.error_hint(node.span(), path, format!("unknown {kind} `{id}`"), hint);
    }
    found
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

fn valid_phone(p: &str) -> bool {
    let digits = p.strip_prefix('+').unwrap_or("");
    (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

pub fn compile(doc: &mut Doc<'_>, root: &Node, events: &EventVocabulary, tiers: Option<&[String]>) -> Option<Routing> {
    let map = doc.map(root, "")?;
    doc.only_keys(map, "", &super::schema::ROUTING.names());
    let errors_before = doc.diags.len();

    // Reps, in two passes: ids first, so that `manager` can name a later rep.
    let rep_nodes: Vec<&Node> = match doc.required(map, "reps", "").and_then(|n| doc.seq(n, "reps")) {
        Some(seq) => seq.iter().collect(),
        None => Vec::new(),
    };
    if rep_nodes.is_empty() && map.get_node("reps").is_some() {
        doc.error(map.span(), "reps", "at least one rep is required");
    }
    let mut ids: Vec<String> = Vec::new();
    for (i, node) in rep_nodes.iter().enumerate() {
        let path = item("reps", i);
        let id = doc.map(node, &path).and_then(|m| doc.required(m, "id", &path)).and_then(|n| {
            let id = doc.text(n, &child(&path, "id"))?;
            if !valid_id(&id) {
                doc.error(n.span(), &child(&path, "id"), "ids use letters, digits, `_`, `-` and `.`");
            } else if ids.contains(&id) {
                doc.error(n.span(), &child(&path, "id"), format!("duplicate rep id `{id}`"));
            }
            Some(id)
        });
        ids.push(id.unwrap_or_default());
    }
    let rep_ref = |doc: &mut Doc<'_>, node: &Node, path: &str| reference(doc, node, path, "rep", &ids);
    let mut reps = Vec::new();
    for (i, node) in rep_nodes.iter().enumerate() {
        let path = item("reps", i);
        let Some(m) = node.as_mapping() else { continue };
        doc.only_keys(m, &path, &super::schema::REP.names());
        let name = doc.required(m, "name", &path).and_then(|n| doc.text(n, &child(&path, "name")));
        let email = doc.required(m, "email", &path).and_then(|n| {
            let p = child(&path, "email");
            let text = doc.text(n, &p)?;
            Email::parse(&text).map_err(|e| doc.error(n.span(), &p, e.to_string())).ok()
        });
        let phone = optional(m, "phone").and_then(|n| {
            let p = child(&path, "phone");
            let text = doc.text(n, &p)?;
            if valid_phone(&text) {
                Some(text)
            } else {
                doc.error(n.span(), &p, format!("`{text}` is not a phone number in E.164 form, like \"+14155550101\""));
                None
            }
        });
        let capacity = optional(m, "capacity").and_then(|n| {
            let c = doc.count(n, &child(&path, "capacity"))?;
            if c == 0 {
                doc.error(
                    n.span(),
                    &child(&path, "capacity"),
                    "capacity must be at least 1 (use `active: false` to stop assigning)",
                );
            }
            Some(c)
        });
        let manager = optional(m, "manager").and_then(|n| {
            let p = child(&path, "manager");
            let mgr = rep_ref(doc, n, &p)?;
            if mgr == i {
                doc.error(n.span(), &p, "a rep cannot be their own manager");
            }
            Some(mgr)
        });
        let active = optional(m, "active").map_or(Some(true), |n| doc.boolean(n, &child(&path, "active")));
        let mut away = Vec::new();
        if let Some(n) = optional(m, "away")
            && let Some(seq) = doc.seq(n, &child(&path, "away"))
        {
            for (j, range) in seq.iter().enumerate() {
                let rp = item(&child(&path, "away"), j);
                let Some(r) = doc.map(range, &rp) else { continue };
                doc.only_keys(r, &rp, &super::schema::AWAY.names());
                let from = doc.required(r, "from", &rp).and_then(|n| date(doc, n, &child(&rp, "from")));
                let to = doc.required(r, "to", &rp).and_then(|n| date(doc, n, &child(&rp, "to")));
                if let (Some(from), Some(to)) = (from, to) {
                    if from > to {
                        doc.error(r.span(), &rp, format!("`from` {from} is after `to` {to}"));
                    }
                    away.push((from, to));
                }
            }
        }
        if let (Some(name), Some(email), Some(active)) = (name, email, active) {
            reps.push(Rep { id: ids[i].clone(), name, email, phone, capacity, manager, active, away });
        }
    }

    // Pools, likewise in two passes for `overflow`.
    let pool_nodes: Vec<(String, &Node, marked_yaml::Span)> =
        match doc.required(map, "pools", "").and_then(|n| doc.map(n, "pools")) {
            Some(m) => m.iter().map(|(k, v)| (k.as_str().to_owned(), v, *k.span())).collect(),
            None => Vec::new(),
        };
    let pool_ids: Vec<String> = pool_nodes.iter().map(|(k, _, _)| k.clone()).collect();
    for (id, _, span) in &pool_nodes {
        if !valid_id(id) {
            doc.error(span, &child("pools", id), "ids use letters, digits, `_`, `-` and `.`");
        } else if ids.contains(id) {
            doc.error(span, &child("pools", id), format!("`{id}` is both a rep and a pool; use distinct ids"));
        }
    }
    let pool_ref = |doc: &mut Doc<'_>, node: &Node, path: &str| reference(doc, node, path, "pool", &pool_ids);
    let mut pools = Vec::new();
    for (id, node, _) in &pool_nodes {
        let path = child("pools", id);
        let Some(m) = doc.map(node, &path) else { continue };
        doc.only_keys(m, &path, &super::schema::POOL.names());
        let strategy = doc.required(m, "strategy", &path).and_then(|n| {
            let p = child(&path, "strategy");
            let s = doc.text(n, &p)?;
            let all = [Strategy::RoundRobin, Strategy::Weighted, Strategy::LeastLoaded];
            let found = all.into_iter().find(|x| x.as_str() == s);
            if found.is_none() {
                doc.error_hint(
                    n.span(),
                    &p,
                    format!("unknown strategy `{s}`"),
                    suggest(&s, all.iter().map(|x| x.as_str())),
                );
            }
            found
        });
        let mp = child(&path, "members");
        let mut members = Vec::new();
        let mut weights = Vec::new();
        let mut members_ok = true;
        match doc.required(m, "members", &path) {
            Some(Node::Sequence(seq)) => {
                for (j, n) in seq.iter().enumerate() {
                    match rep_ref(doc, n, &item(&mp, j)) {
                        Some(r) => {
                            members.push(r);
                            weights.push(1);
                        }
                        None => members_ok = false,
                    }
                }
            }
            Some(Node::Mapping(wm)) => {
                if strategy.is_some_and(|s| s != Strategy::Weighted) {
                    doc.error(
                        wm.span(),
                        &mp,
                        "member weights only apply to `strategy: weighted`; list the members instead",
                    );
                    members_ok = false;
                }
                for (rep, w) in wm.iter() {
                    let wp = child(&mp, rep.as_str());
                    let r = rep_ref(doc, &Node::Scalar(rep.clone()), &wp);
                    let weight = match w {
                        Node::Scalar(s) if s.may_coerce() => {
                            s.as_str().trim().parse::<i64>().ok().filter(|n| (1..=MAX_WEIGHT).contains(n))
                        }
                        _ => None,
                    };
                    if weight.is_none() {
                        doc.error(w.span(), &wp, format!("weights are whole numbers from 1 to {MAX_WEIGHT}"));
                    }
                    match (r, weight) {
                        (Some(r), Some(w)) => {
                            members.push(r);
                            weights.push(w as u32);
                        }
                        _ => members_ok = false,
                    }
                }
            }
            Some(other) => {
                doc.error(other.span(), &mp, "members are a list of rep ids, or a map of rep id to weight");
                members_ok = false;
            }
            None => members_ok = false,
        }
        if members_ok && members.is_empty() {
            doc.error(m.span(), &mp, "a pool needs at least one member");
        }
        for (j, r) in members.iter().enumerate() {
            if members[..j].contains(r) {
                doc.error(m.span(), &mp, format!("`{}` is listed twice", ids[*r]));
            }
        }
        let overflow = optional(m, "overflow").and_then(|n| pool_ref(doc, n, &child(&path, "overflow")));
        if let Some(strategy) = strategy {
            let cycle = smooth_cycle(&weights);
            pools.push(Pool { id: id.clone(), members, weights, strategy, cycle, overflow });
        }
    }
    // Overflow chains must end.
    if pools.len() == pool_ids.len() {
        for start in 0..pools.len() {
            let mut seen = vec![start];
            let mut at = pools[start].overflow;
            while let Some(p) = at {
                if p == start {
                    let names: Vec<&str> = seen.iter().map(|i| pools[*i].id.as_str()).collect();
                    doc.error_at_top(
                        &child(&child("pools", &pools[start].id), "overflow"),
                        format!("overflow cycle: {} -> {}", names.join(" -> "), pools[start].id),
                    );
                    break;
                }
                if seen.contains(&p) {
                    break;
                }
                seen.push(p);
                at = pools[p].overflow;
            }
        }
    }

    let target = |doc: &mut Doc<'_>, node: &Node, path: &str| -> Option<Target> {
        let m = doc.map(node, path)?;
        doc.only_keys(m, path, &super::schema::TARGET.names());
        match (optional(m, "pool"), optional(m, "rep")) {
            (Some(p), None) => {
                if m.get_node("fallback").is_some() {
                    doc.error(
                        m.span(),
                        &child(path, "fallback"),
                        "`fallback` applies to a rep target; use the pool's `overflow`",
                    );
                }
                pool_ref(doc, p, &child(path, "pool")).map(Target::Pool)
            }
            (None, Some(r)) => {
                let rep = rep_ref(doc, r, &child(path, "rep"));
                let fallback = optional(m, "fallback").map(|f| pool_ref(doc, f, &child(path, "fallback")));
                match (rep, fallback) {
                    (Some(rep), None) => Some(Target::Rep { rep, fallback: None }),
                    (Some(rep), Some(Some(f))) => Some(Target::Rep { rep, fallback: Some(f) }),
                    _ => None,
                }
            }
            _ => {
                doc.error(m.span(), path, "a target names exactly one of `pool` or `rep`");
                None
            }
        }
    };

    let scope = Scope { events, tiers, score_known: true };
    let mut rules: Vec<RouteRule> = Vec::new();
    let mut unconditional: Option<String> = None;
    if let Some(node) = optional(map, "rules")
        && let Some(seq) = doc.seq(node, "rules")
    {
        for (i, rule) in seq.iter().enumerate() {
            let path = item("rules", i);
            let Some(r) = doc.map(rule, &path) else { continue };
            doc.only_keys(r, &path, &super::schema::ROUTE_RULE.names());
            let name = doc.required(r, "name", &path).and_then(|n| doc.text(n, &child(&path, "name")));
            if let Some(name) = &name {
                if name == "default" {
                    doc.error(r.span(), &child(&path, "name"), "`default` names the default target; pick another name");
                } else if rules.iter().any(|x| x.name == *name) {
                    doc.error(r.span(), &child(&path, "name"), format!("duplicate routing rule name `{name}`"));
                }
            }
            if let Some(before) = &unconditional {
                doc.error(
                    r.span(),
                    &path,
                    format!("unreachable: rule `{before}` above it has no condition and always matches"),
                );
            }
            let when = match optional(r, "when") {
                Some(w) => condition::compile(doc, w, &child(&path, "when"), &scope),
                None => Some(Cond::Always),
            };
            let to = doc.required(r, "to", &path).and_then(|t| target(doc, t, &child(&path, "to")));
            if let (Some(name), Some(when), Some(to)) = (name, when, to) {
                if when.is_unconditional() && unconditional.is_none() {
                    unconditional = Some(name.clone());
                }
                rules.push(RouteRule { name, when, to, line: r.span().start().map(|m| m.line()) });
            }
        }
    }
    let default = doc.required(map, "default", "").and_then(|t| target(doc, t, "default"));
    let sticky = optional(map, "sticky").map_or(Some(true), |n| doc.boolean(n, "sticky"));
    let account_match = optional(map, "account_match").map_or(Some(false), |n| doc.boolean(n, "account_match"));

    if doc.diags.len() > errors_before {
        return None;
    }
    Some(Routing { reps, pools, rules, default: default?, sticky: sticky?, account_match: account_match? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smooth_cycle_interleaves_by_weight() {
        assert_eq!(smooth_cycle(&[2, 1]), vec![0, 1, 0]);
        assert_eq!(smooth_cycle(&[5, 1, 1]), vec![0, 0, 1, 0, 2, 0, 0]);
        assert_eq!(smooth_cycle(&[1, 1, 1]), vec![0, 1, 2]);
    }
}
