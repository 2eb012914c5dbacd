#!/usr/bin/env python3
"""Writes N synthetic leads as `leadflow leads export` does (one JSON line
each: id, lead, events, idle_days, stored), for measuring `rules replay` and
`rules diff` on a whole history:

    python3 infra/bench/leads.py 1000000 > /tmp/leads.jsonl
    leadflow rules replay --leads /tmp/leads.jsonl > /dev/null

The same N and seed always write the same file.
"""

import json
import random
import sys

FIRST = ["Ada", "Grace", "Linus", "Margaret", "Alan", "Barbara", "Jo", "Ken", "Frances", "Dennis"]
LAST = ["Lovelace", "Hopper", "Torvalds", "Hamilton", "Turing", "Liskov", "Smith", "Thompson", "Allen"]
DOMAINS = ["gmail.com", "outlook.com", "acme.com", "globex.com", "initech.com", "umbrella.nl",
           "brightco.co.uk", "example.de", "bigcorp.com", "hooli.com", "stark.io", "wayne.se"]
TITLES = ["VP Sales", "Head of Marketing", "Software Engineer", "Marketing Intern", "CTO",
          "Director of IT", "Account Manager", "Chief Revenue Officer", "Founder", "Data Analyst"]
INDUSTRIES = ["software", "SaaS", "fintech", "retail", "manufacturing", "healthcare", "education"]
COUNTRIES = ["US", "US", "US", "CA", "GB", "DE", "FR", "NL", "SE", "ES", "BR", "IN", "JP", "AU"]
SOURCES = ["website", "webinar", "google-ads", "linkedin-ads", "referral", "trade-show"]
EVENTS = ["pricing_page_view", "webinar_attended", "content_download", "email_click", "email_open",
          "form_submission", "demo_request", "unsubscribe"]
STATUSES = ["nurturing", "nurturing", "nurturing", "assigned", "working", "qualified", "dormant"]


def lead(rng, n):
    first, last = rng.choice(FIRST), rng.choice(LAST)
    fields = {
        "email": f"{first.lower()}.{last.lower()}{n}@{rng.choice(DOMAINS)}",
        "first_name": first,
        "last_name": last,
        "company": f"{last} {rng.choice(['Inc', 'GmbH', 'Ltd', 'Labs'])}",
        "job_title": rng.choice(TITLES),
        "country": rng.choice(COUNTRIES),
        "industry": rng.choice(INDUSTRIES),
        "employees": str(rng.choice([3, 12, 45, 120, 250, 800, 2000, 12000])),
        "source": rng.choice(SOURCES),
        "status": rng.choice(STATUSES),
    }
    events = {e: rng.randint(1, 6) for e in rng.sample(EVENTS, rng.randint(0, 4))}
    return {
        "events": events,
        "id": f"L{n:08d}",
        "idle_days": rng.randint(0, 90),
        "lead": fields,
        "stored": {"owner": None, "pool": None, "score": rng.randint(0, 100), "tier": "cold", "version": 3},
    }


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 42)
    out = sys.stdout
    for n in range(count):
        out.write(json.dumps(lead(rng, n), separators=(",", ":")))
        out.write("\n")


if __name__ == "__main__":
    main()
