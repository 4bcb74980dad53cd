"""Deterministic synthetic corpus for ingest/memory benchmarks: Markdown documents + people.yaml.

    python bench/make_corpus.py --docs 1000 --out /tmp/askc-corpus-1k
    python bench/make_corpus.py --docs 10000 --out /tmp/askc-corpus-10k --seed 7

Every document is 300–1500 words in 3–8 ``##`` sections, with YAML front matter (title,
``author: "Name <email>"`` from a pool of ~200 people, date, tags). The text is built from workplace
sentence templates and per-topic vocabulary (Kubernetes upgrades, expense policy, on-call, ...), and
a document's author is usually someone whose expertise is its topic, so BM25, dense retrieval and
"who to ask" behave roughly as on a real intranet. Same arguments → byte-identical files.

Also written: ``people.yaml`` (profiles of everyone in the pool), ``queries.txt`` (questions about
the topics, for query benchmarks) and ``corpus.json`` (parameters and counts).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import re
import shutil
from pathlib import Path

FIRST = """Ada Aiko Alex Amara Amir Ana Anders Anika Arjun Ayesha Ben Bianca Carlos Chen Chloe Dana Daniel
Dmitri Elena Emeka Emma Farah Felix Fatima Gabriel Grace Hana Hassan Ines Ivan Jamal Jana Javier Jin Jonas
Julia Kai Kamala Kenji Lars Laura Leila Liam Lina Lucas Maya Mei Mateo Mia Mohammed Nadia Nikhil Noah Nora
Olga Omar Oscar Pablo Priya Rahul Rosa Ruth Sam Sara Sean Sofia Tariq Tom Uma Viktor Wei Yara Yusuf Zoe
Zainab Hugo Ingrid Kwame""".split()
LAST = """Abbott Adeyemi Alvarez Andersen Baker Banerjee Becker Bianchi Brooks Campbell Chen Costa Dubois
Eriksson Fernandez Fischer Garcia Gupta Haddad Hansen Hoffmann Ivanova Jensen Kato Khan Kim Kowalski Larsen
Lee Lopez Martin Meyer Moreau Murphy Nakamura Nguyen Novak Okafor Olsen Park Patel Pereira Petrov Quinn Rossi
Santos Schmidt Silva Singh Sato Suzuki Tanaka Torres Walsh Watanabe Weber Wilson Yamamoto Young Zhang Zimmermann
Ortiz Mensah Lindqvist Horvat Dahl Farouk Moretti Nilsson Popescu Reyes Sorensen Takahashi Varga Wright""".split()

TEAMS = ["Platform", "Payments", "Data", "Security", "IT", "People Ops", "Finance", "Support", "Sales",
         "Mobile", "Firmware", "ML", "Growth", "Legal", "Facilities"]
LEVELS = ["Engineer", "Senior Engineer", "Staff Engineer", "Manager", "Lead", "Analyst", "Specialist",
          "Principal Engineer", "Director"]
CITIES = ["Berlin", "Lisbon", "Portland, OR", "Toronto", "Singapore", "Austin, TX", "Dublin", "Warsaw",
          "Bangalore", "Nairobi", "São Paulo", "Tokyo"]

# topic: (title, team, tags, systems, nouns, actions, facts)
TOPICS = {
    "k8s-upgrade": ("Kubernetes cluster upgrades", "Platform", ["kubernetes", "eks", "upgrade"],
                    ["the production EKS cluster", "the staging cluster", "Harbor", "the ingress controller"],
                    ["node pool", "control plane", "kubelet version", "PodDisruptionBudget", "CoreDNS add-on",
                     "drain window", "cluster autoscaler", "surge capacity"],
                    ["drain the old node pool", "bump the control plane version", "check deprecated APIs",
                     "cordon the nodes", "roll back the add-ons"],
                    ["Upgrades go one minor version at a time and never on a Friday.",
                     "The staging cluster is upgraded a full week before production."]),
    "oncall": ("On-call rotation", "Platform", ["oncall", "pager", "incident"],
               ["PagerDuty", "the alerting pipeline", "the status page", "the incident channel"],
               ["primary on-call", "secondary on-call", "handover note", "escalation policy", "pager load",
                "follow-the-sun schedule", "on-call stipend"],
               ["swap a shift", "acknowledge the page", "escalate to the secondary", "write the handover note"],
               ["Shifts start on Monday at 10:00 local time.",
                "Anyone paged more than three times at night gets the next morning off."]),
    "expenses": ("Expense reports and reimbursement", "Finance", ["expenses", "finance", "policy"],
                 ["the expense tool", "the corporate card portal", "the finance inbox", "the travel desk"],
                 ["meal allowance", "receipt", "per diem", "corporate card", "reimbursement", "cost center",
                  "approval chain"],
                 ["submit the expense report", "attach the receipt", "pick the cost center",
                  "ask your manager to approve"],
                 ["Meals are reimbursed up to 60 EUR per day when travelling.",
                  "Reports older than 90 days are not reimbursed."]),
    "vpn": ("VPN and remote access", "IT", ["vpn", "network", "access"],
            ["the VPN client", "the identity provider", "the bastion host", "the device management agent"],
            ["VPN profile", "split tunnelling", "device certificate", "MFA prompt", "access group",
             "gateway region", "posture check"],
            ["install the VPN client", "enrol the laptop", "request an access group", "renew the certificate"],
            ["The VPN gateway in Frankfurt is the default for Europe.",
             "Device certificates expire after twelve months."]),
    "laptops": ("Laptop requests and hardware", "IT", ["laptop", "hardware", "it"],
                ["the IT service desk", "the asset inventory", "the hardware catalogue", "the MDM console"],
                ["refresh cycle", "loaner laptop", "hardware request", "docking station", "asset tag",
                 "disk encryption", "shipping address"],
                ["file a hardware request", "return the old laptop", "wipe the disk", "book a loaner"],
                ["Laptops are refreshed every three years.",
                 "A standard request ships within five working days."]),
    "postgres": ("Database migration and PostgreSQL", "Data", ["postgres", "database", "migration"],
                 ["the orders database", "Aurora PostgreSQL", "the read replica", "the events database"],
                 ["logical replication", "schema migration", "connection pool", "replication lag",
                  "vacuum schedule", "cutover", "read-only window"],
                 ["run the schema migration", "promote the replica", "check replication lag",
                  "schedule the cutover"],
                 ["Schema migrations must be backwards compatible for one release.",
                  "The read-only window at cutover was six minutes."]),
    "ci": ("CI pipeline and builds", "Platform", ["ci", "builds", "github-actions"],
           ["the CI pipeline", "the build cache", "the self-hosted runners", "the artifact registry"],
           ["flaky test", "build cache hit rate", "runner pool", "merge queue", "pipeline stage",
            "required check", "build minutes"],
           ["retry the flaky job", "quarantine the test", "warm the build cache", "add a required check"],
           ["The median pipeline takes eleven minutes on main.",
            "A test that fails twice in a week is quarantined automatically."]),
    "release": ("Release process", "Platform", ["release", "deploy", "process"],
                ["the release train", "the deploy tool", "the canary fleet", "the changelog"],
                ["release captain", "canary", "rollback plan", "release branch", "change freeze",
                 "hotfix", "release notes"],
                ["cut the release branch", "promote the canary", "announce the freeze", "ship a hotfix"],
                ["The release train leaves every Tuesday at 14:00 UTC.",
                 "The canary takes five percent of traffic for one hour."]),
    "postmortem": ("Incident postmortems", "Platform", ["incident", "postmortem", "sev1"],
                   ["the incident tracker", "the timeline doc", "the status page", "the war room"],
                   ["root cause", "contributing factor", "action item", "customer impact", "detection time",
                    "blameless review", "severity level"],
                   ["write the timeline", "assign the action items", "publish the postmortem",
                    "schedule the review"],
                   ["Every SEV1 gets a written postmortem within five working days.",
                    "Action items without an owner are closed after thirty days."]),
    "retention": ("Data retention policy", "Legal", ["retention", "privacy", "gdpr"],
                  ["the data warehouse", "the log archive", "the backup vault", "the CRM"],
                  ["retention period", "deletion request", "legal hold", "personal data", "anonymisation",
                   "audit log", "data processing agreement"],
                  ["handle a deletion request", "place a legal hold", "anonymise the export",
                   "review the retention schedule"],
                  ["Application logs are kept for 30 days, audit logs for seven years.",
                   "Deletion requests must be completed within one month."]),
    "security": ("Reporting security incidents", "Security", ["security", "incident", "phishing"],
                 ["the security channel", "the SIEM", "the endpoint agent", "the bug bounty inbox"],
                 ["phishing email", "suspicious login", "compromised credential", "security ticket",
                  "forensic image", "token rotation", "disclosure"],
                 ["report the phishing email", "rotate the token", "isolate the laptop", "open a security ticket"],
                 ["Report anything suspicious within one hour, even if unsure.",
                  "The security on-call answers pages around the clock."]),
    "hiring": ("Hiring and interviews", "People Ops", ["hiring", "interviews", "recruiting"],
               ["the applicant tracking system", "the interview kit", "the hiring committee",
                "the referral portal"],
               ["interview loop", "scorecard", "take-home exercise", "debrief", "offer approval",
                "referral bonus", "hiring plan"],
               ["submit the scorecard", "schedule the debrief", "refer a candidate", "request offer approval"],
               ["Scorecards are due within 24 hours of the interview.",
                "Every loop has at least one interviewer from outside the team."]),
    "onboarding": ("Onboarding new joiners", "People Ops", ["onboarding", "new-hire", "buddy"],
                   ["the onboarding checklist", "the HR portal", "the welcome session", "the buddy programme"],
                   ["first-week plan", "buddy", "account setup", "starter project", "welcome pack",
                    "30-60-90 plan", "orientation"],
                   ["assign a buddy", "prepare the accounts", "book the welcome session",
                    "review the 30-60-90 plan"],
                   ["New joiners get their laptop on day one.",
                    "Every new engineer ships a small change in the first week."]),
    "reviews": ("Performance reviews", "People Ops", ["performance", "reviews", "feedback"],
                ["the review tool", "the calibration session", "the career ladder", "the feedback form"],
                ["self-review", "peer feedback", "calibration", "promotion packet", "rating scale",
                 "growth plan", "review cycle"],
                ["write the self-review", "nominate peers", "prepare the promotion packet",
                 "share the feedback"],
                ["Review cycles run twice a year, in March and September.",
                 "Promotion packets need two peer endorsements."]),
    "travel": ("Business travel", "Finance", ["travel", "booking", "policy"],
               ["the travel desk", "the booking tool", "the visa service", "the travel insurance"],
               ["economy fare", "hotel cap", "travel approval", "visa letter", "rail travel",
                "trip itinerary", "duty of care"],
               ["book the flight", "request travel approval", "ask for a visa letter", "file the itinerary"],
               ["Trains are preferred for trips under four hours.",
                "International travel needs approval from a director."]),
    "firmware": ("Firmware updates for robots", "Firmware", ["firmware", "robots", "ota"],
                 ["the OTA service", "the robot fleet", "the bootloader", "the test bench"],
                 ["staged rollout", "signed image", "rollback partition", "fleet cohort", "update window",
                  "watchdog reset", "bootloader version"],
                 ["sign the firmware image", "start the staged rollout", "pause the cohort",
                  "flash the test bench"],
                 ["Firmware rolls out to 1%, 10% and then 100% of the fleet.",
                  "Every image is signed with the hardware security module."]),
    "support": ("Customer support escalations", "Support", ["support", "escalation", "customers"],
                ["the support desk", "the escalation queue", "the customer portal", "Zendesk"],
                ["tier-two escalation", "SLA breach", "priority ticket", "customer impact", "macro",
                 "known issue", "refund request"],
                ["escalate the ticket", "tag the known issue", "update the customer", "approve the refund"],
                ["Priority tickets are answered within two business hours.",
                 "Engineering owns an escalation until the customer confirms the fix."]),
    "pricing": ("Pricing and discounts", "Sales", ["pricing", "discounts", "deals"],
                ["the CPQ tool", "the price book", "the deal desk", "Salesforce"],
                ["discount approval", "list price", "multi-year deal", "price increase", "quote",
                 "renewal uplift", "volume tier"],
                ["request a discount approval", "generate the quote", "update the price book",
                 "loop in the deal desk"],
                ["Discounts above 20% need approval from the deal desk.",
                 "Renewals include a 5% uplift unless the contract says otherwise."]),
    "ml-training": ("Model training infrastructure", "ML", ["ml", "training", "gpu"],
                    ["the training cluster", "the feature store", "the experiment tracker", "the model registry"],
                    ["GPU quota", "training run", "checkpoint", "evaluation set", "hyperparameter sweep",
                     "data drift", "model card"],
                    ["request GPU quota", "register the model", "resume from the checkpoint",
                     "launch the sweep"],
                    ["Every model in production has a model card.",
                     "Training runs longer than a day must checkpoint every hour."]),
    "observability": ("Monitoring and alerting", "Platform", ["observability", "alerts", "metrics"],
                      ["Grafana", "Prometheus", "the tracing backend", "the log pipeline"],
                      ["alert rule", "SLO", "error budget", "dashboard", "p99 latency", "burn rate",
                       "log sampling"],
                      ["add an alert rule", "tune the burn-rate alert", "build a dashboard",
                       "silence the noisy alert"],
                      ["Every service has an availability SLO of 99.9%.",
                       "Alerts that page must have a runbook link."]),
    "feature-flags": ("Feature flags", "Growth", ["feature-flags", "experiments", "rollout"],
                      ["the flag service", "the experiment platform", "the admin console", "the SDK"],
                      ["kill switch", "percentage rollout", "stale flag", "targeting rule", "A/B test",
                       "holdout group", "flag owner"],
                      ["create a flag", "ramp the rollout", "clean up stale flags", "read the experiment results"],
                      ["Flags older than 90 days are flagged for clean-up.",
                       "Every experiment needs a pre-registered success metric."]),
    "api": ("Public API versioning", "Payments", ["api", "versioning", "deprecation"],
            ["the public API", "the API gateway", "the developer portal", "the SDKs"],
            ["breaking change", "deprecation notice", "API version", "rate limit", "webhook",
             "idempotency key", "changelog entry"],
            ["announce the deprecation", "bump the API version", "raise the rate limit", "update the SDKs"],
            ["Deprecated versions stay available for twelve months.",
             "Every breaking change needs a migration guide."]),
    "cloud-cost": ("Cloud cost optimisation", "Platform", ["cost", "aws", "finops"],
                   ["the AWS bill", "the cost explorer", "the savings plans", "the tagging policy"],
                   ["reserved capacity", "savings plan", "idle instance", "cost allocation tag",
                    "spot instances", "storage tier", "monthly forecast"],
                   ["tag the resources", "buy a savings plan", "shut down idle instances", "move data to cold storage"],
                   ["Untagged resources are reported to the owning team every Monday.",
                    "Savings plans cover about 70% of steady compute."]),
    "backup": ("Backups and disaster recovery", "Data", ["backup", "disaster-recovery", "restore"],
               ["the backup vault", "the DR region", "the snapshot scheduler", "the restore runbook"],
               ["restore drill", "RPO", "RTO", "point-in-time recovery", "snapshot", "cross-region copy",
                "backup verification"],
               ["run the restore drill", "verify the snapshot", "fail over to the DR region",
                "restore a single table"],
               ["Restore drills run every quarter.", "The recovery point objective is fifteen minutes."]),
    "sso": ("Single sign-on and access control", "Security", ["sso", "access", "okta"],
            ["the identity provider", "the access request form", "the SCIM integration", "the admin roles"],
            ["access review", "SAML app", "role mapping", "least privilege", "break-glass account",
             "group membership", "offboarding"],
            ["request access", "add the SAML app", "run the access review", "remove stale accounts"],
            ["Access reviews happen every quarter for production systems.",
             "Break-glass accounts are tested once a month."]),
    "analytics": ("Analytics and the data warehouse", "Data", ["analytics", "warehouse", "dbt"],
                  ["the data warehouse", "dbt", "the BI tool", "the event pipeline"],
                  ["dbt model", "dashboard", "event schema", "data contract", "freshness check",
                   "metric definition", "backfill"],
                  ["add a dbt model", "define the metric", "run the backfill", "fix the freshness check"],
                  ["Core dashboards refresh every hour.",
                   "Every event needs a schema in the registry before it ships."]),
    "mobile": ("Mobile app releases", "Mobile", ["mobile", "ios", "android"],
               ["the App Store", "Google Play", "the mobile CI", "the crash reporter"],
               ["phased release", "crash-free rate", "app review", "minimum OS version", "TestFlight build",
                "release notes", "force update"],
               ["submit the build for review", "halt the phased release", "bump the minimum OS version",
                "triage the crash"],
               ["Mobile releases ship every two weeks.",
                "A crash-free rate below 99.5% halts the phased release."]),
    "okrs": ("Quarterly planning and OKRs", "Growth", ["planning", "okrs", "roadmap"],
             ["the planning doc", "the roadmap", "the OKR tracker", "the leadership review"],
             ["objective", "key result", "headcount plan", "dependency", "stretch goal", "quarterly review",
              "capacity estimate"],
             ["draft the objectives", "score the key results", "flag the dependencies", "present the plan"],
             ["Planning starts three weeks before the quarter.",
              "Key results are scored from 0 to 1 at the end of the quarter."]),
    "vendors": ("Vendor contracts and procurement", "Legal", ["procurement", "vendors", "contracts"],
                ["the procurement portal", "the contract repository", "the vendor risk review",
                 "the purchase order system"],
                ["purchase order", "security questionnaire", "renewal date", "master services agreement",
                 "signature authority", "vendor risk", "payment terms"],
                ["raise a purchase order", "send the security questionnaire", "review the contract",
                 "get the signature"],
                ["Contracts above 50k EUR need a legal review.",
                 "Vendor risk reviews take about two weeks."]),
    "office": ("Office and facilities", "Facilities", ["office", "facilities", "desk-booking"],
               ["the desk booking app", "the front desk", "the facilities ticket queue", "the badge system"],
               ["desk booking", "meeting room", "visitor badge", "parking spot", "office hours",
                "quiet zone", "fire drill"],
               ["book a desk", "register a visitor", "report a broken chair", "request a parking spot"],
               ["The office is open from 7:00 to 21:00 on weekdays.",
                "Visitors must be registered a day in advance."]),
}

KINDS = {
    "runbook": ["Overview", "Before you start", "Steps", "Verification", "Rollback", "Troubleshooting", "Contacts"],
    "RFC": ["Context", "Problem", "Proposal", "Alternatives considered", "Risks", "Rollout plan", "Open questions"],
    "meeting notes": ["Attendees", "Updates", "Discussion", "Decisions", "Action items", "Next meeting"],
    "FAQ": ["General", "Eligibility", "How do I", "Common problems", "Exceptions", "Who to contact"],
    "postmortem": ["Summary", "Impact", "Timeline", "Root cause", "What went well", "What went wrong", "Action items"],
    "policy": ["Purpose", "Scope", "Policy", "Responsibilities", "Exceptions", "Review"],
    "design doc": ["Goals", "Non-goals", "Background", "Design", "Data model", "Testing", "Migration", "Open questions"],
    "status update": ["Highlights", "Progress", "Risks", "Asks", "Next steps"],
    "how-to": ["Why", "Prerequisites", "Steps", "Tips", "Related"],
    "retro": ["What we did", "What went well", "What did not", "Ideas", "Follow-ups"],
}

TEMPLATES = [
    "The {noun} for {system} is owned by the {team} team, so ask {person} before changing it.",
    "To {action}, open {system2} and follow the checklist in this page.",
    "We agreed that the {noun} should be reviewed every {period}.",
    "{person} pointed out that the {noun} was not documented anywhere, which caused confusion in {month}.",
    "If the {noun} looks wrong, {action} first and only then contact {team}.",
    "Last {month} we had {num} problems with the {noun} on {system}; most of them were configuration mistakes.",
    "The current target is {num} {unit} for the {noun}, down from {num2} last year.",
    "Please do not {action} during the change freeze unless {person} approves it.",
    "The {noun} and the {noun2} are related: changing one usually means revisiting the other.",
    "We decided to keep {system} as it is for now and revisit the {noun} next quarter.",
    "A short summary: {fact}",
    "Remember that {fact_lc}",
    "In practice, most people {action} on {weekday} mornings, when {system} is quiet.",
    "The {team} team tracks open questions about the {noun} in the shared board.",
    "{person} will {action} and report back in the next sync.",
    "There is a known issue where the {noun} is ignored by {system2} after a restart.",
    "Before {month}, the {noun} was handled manually, which took about {num} hours a week.",
    "For anything urgent, page the {team} on-call instead of waiting for a reply in chat.",
    "The numbers below come from {system} and were checked by {person}.",
    "We measured the {noun} over {num} days and saw no regression.",
    "It is fine to {action} yourself; you do not need a ticket for that.",
    "Exceptions to the {noun} rule are approved by the head of {team}.",
    "The old process required three approvals; now a single approval from {person} is enough.",
    "Most of the questions we get are about the {noun}, so we added a section on it below.",
    "Do not copy the {noun} from another environment; {action} instead.",
    "This page replaces the wiki page from {year} about the {noun}.",
    "The main risk is that {system} and {system2} disagree about the {noun}.",
    "We will {action} in {region} first and then in the other regions.",
    "Cost-wise the {noun} is small, about {num} EUR a month.",
    "Nobody has touched the {noun} since {year}, so treat the defaults with care.",
    "If you are new to this, pair with someone from {team} the first time you {action}.",
    "The {noun} is documented in more detail in the {team} handbook.",
    "Feedback on this proposal is welcome until {weekday}; comment inline or ping {person}.",
    "We tried automating the {noun} in {year}, but the script broke whenever {system} changed.",
    "The dashboard for the {noun} shows the last {num} days by default.",
    "Action item: {person} to {action} by the end of the sprint.",
    "Decision: we keep the {noun} and {action} once a quarter.",
    "The {noun} affects roughly {num} customers, mostly in {region}.",
    "After the change the {noun} took {num} minutes instead of {num2}.",
    "There is no need to restart {system} after you {action}.",
]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
PERIODS = ["week", "two weeks", "month", "quarter", "six months", "year"]
UNITS = ["minutes", "percent", "hours", "tickets", "requests per second", "days"]
REGIONS = ["eu-west-1", "us-east-1", "ap-southeast-1", "Europe", "North America", "APAC"]
QUESTION_TEMPLATES = [
    "How do I {action}?", "Who owns the {noun}?", "What is the policy on the {noun}?",
    "When should I {action}?", "Who should I ask about {title_lc}?", "What happens if the {noun} breaks?",
]


def slug(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-")


def make_people(rng: random.Random, n: int, domain: str) -> list[dict]:
    names = sorted({(f, l) for f in FIRST for l in LAST})
    rng.shuffle(names)
    topics = sorted(TOPICS)
    people = []
    for first, last in names[:n]:
        topic_keys = rng.sample(topics, 3)
        team = TOPICS[topic_keys[0]][1]
        people.append({
            "name": f"{first} {last}",
            "email": f"{first.lower()}.{last.lower()}@{domain}",
            "title": f"{rng.choice(LEVELS)}, {team}",
            "team": team,
            "location": rng.choice(CITIES),
            "expertise": [TOPICS[t][0] for t in topic_keys],
            "bio": (f"{first} works in {team} and knows {TOPICS[topic_keys[0]][0].lower()} well; "
                    f"also ask about {TOPICS[topic_keys[1]][0].lower()}."),
            "url": f"https://people.{domain}/{slug(first + ' ' + last)}",
            "groups": ["all", slug(team)],
            "_topics": topic_keys,
        })
    return people


def yaml_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)  # a JSON string is a valid YAML double-quoted scalar


def sentence(rng: random.Random, topic: tuple, people: list[dict]) -> str:
    title, team, tags, systems, nouns, actions, facts = topic
    fact = rng.choice(facts)
    fill = {
        "noun": rng.choice(nouns), "noun2": rng.choice(nouns), "system": rng.choice(systems),
        "system2": rng.choice(systems), "action": rng.choice(actions), "team": team if rng.random() < .7 else rng.choice(TEAMS),
        "person": rng.choice(people)["name"], "period": rng.choice(PERIODS), "month": rng.choice(MONTHS),
        "num": rng.choice([2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 75, 120, 200, 450]),
        "num2": rng.choice([3, 5, 9, 14, 18, 35, 60, 90, 150, 300]), "unit": rng.choice(UNITS),
        "fact": fact, "fact_lc": fact[0].lower() + fact[1:], "weekday": rng.choice(WEEKDAYS),
        "year": rng.choice(range(2018, 2025)), "region": rng.choice(REGIONS),
    }
    s = rng.choice(TEMPLATES).format(**fill)
    return s[0].upper() + s[1:]


def paragraph(rng, topic, people, n) -> str:
    return " ".join(sentence(rng, topic, people) for _ in range(n))


def make_doc(rng: random.Random, i: int, people: list[dict], experts: dict[str, list[dict]]) -> tuple[str, str, str]:
    tkey = rng.choice(sorted(TOPICS))
    topic = TOPICS[tkey]
    title, team, tags, systems = topic[:4]
    kind = rng.choice(sorted(KINDS))
    pool = experts.get(tkey) or people
    author = rng.choice(pool) if rng.random() < 0.85 else rng.choice(people)
    mentioned = rng.sample(pool if len(pool) >= 4 else people, min(4, len(pool) if len(pool) >= 4 else len(people)))
    sys_name = rng.choice(systems).removeprefix("the ")
    doc_title = f"{title}: {kind} for {sys_name}" if rng.random() < 0.6 else \
        f"{kind[0].upper() + kind[1:]} — {title.lower()} ({MONTHS[rng.randrange(12)]} {rng.choice(range(2022, 2026))})"
    date = dt.date(2022, 1, 1) + dt.timedelta(days=rng.randrange(4 * 365))
    words_target = rng.randint(300, 1500)
    sections = KINDS[kind]
    n_sec = min(len(sections), max(3, min(8, words_target // 170 + rng.randint(0, 2))))
    chosen = sections[:1] + sorted(rng.sample(sections[1:], n_sec - 1), key=sections.index)
    lines = ["---", f"title: {yaml_str(doc_title)}", f"author: {yaml_str(author['name'] + ' <' + author['email'] + '>')}",
             f"date: {date.isoformat()}", f"tags: [{', '.join(tags + [slug(kind)])}]", "---", "", f"# {doc_title}", ""]
    words = 0
    intro = paragraph(rng, topic, mentioned, rng.randint(2, 3))
    lines += [intro, ""]
    words += len(intro.split())
    per_sec = max(words_target - words, 60) / len(chosen)
    for sec in chosen:
        lines += [f"## {sec}", ""]
        sec_words = 0
        while sec_words == 0 or sec_words + 40 < per_sec:
            r = rng.random()
            if r < 0.2:  # a bullet list
                items = [f"- {sentence(rng, topic, mentioned)}" for _ in range(rng.randint(3, 6))]
                block = "\n".join(items)
            elif r < 0.27 and sec in ("Steps", "Rollback", "Before you start", "Verification"):
                items = [f"{k}. {rng.choice(topic[5]).capitalize()} in {rng.choice(systems)}."
                         for k in range(1, rng.randint(3, 7))]
                block = "\n".join(items)
            else:
                block = paragraph(rng, topic, mentioned, rng.randint(2, 5))
            lines += [block, ""]
            sec_words += len(block.split())
        words += sec_words
    rel = f"docs/{slug(team)}/{i:05d}-{slug(doc_title)[:60]}.md"
    return rel, "\n".join(lines).rstrip() + "\n", tkey


def people_yaml(people: list[dict]) -> str:
    out = ["# Synthetic people for the askcolleague benchmark corpus (bench/make_corpus.py). All invented.", "people:"]
    for p in people:
        out.append(f"  - name: {yaml_str(p['name'])}")
        for k in ("email", "title", "team", "location"):
            out.append(f"    {k}: {yaml_str(p[k])}")
        out.append(f"    expertise: [{', '.join(yaml_str(e) for e in p['expertise'])}]")
        out.append(f"    bio: {yaml_str(p['bio'])}")
        out.append(f"    url: {yaml_str(p['url'])}")
        out.append(f"    groups: [{', '.join(p['groups'])}]")
    return "\n".join(out) + "\n"


def generate(out: Path, docs: int, people_n: int = 200, seed: int = 42, domain: str = "acme.example") -> dict:
    rng = random.Random(seed)
    people = make_people(rng, people_n, domain)
    experts: dict[str, list[dict]] = {}
    for p in people:
        for t in p["_topics"]:
            experts.setdefault(t, []).append(p)
    if out.exists():
        shutil.rmtree(out / "docs", ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    total_words = 0
    topics_used: dict[str, int] = {}
    for i in range(docs):
        rel, text, tkey = make_doc(rng, i, people, experts)
        f = out / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text, encoding="utf-8")
        total_words += len(text.split())
        topics_used[tkey] = topics_used.get(tkey, 0) + 1
    (out / "people.yaml").write_text(people_yaml(people), encoding="utf-8")
    qs = []
    qrng = random.Random(seed + 1)
    for tkey in sorted(TOPICS):
        t = TOPICS[tkey]
        for tpl in QUESTION_TEMPLATES[:3] if len(qs) < 60 else QUESTION_TEMPLATES[3:]:
            qs.append(tpl.format(action=qrng.choice(t[5]), noun=qrng.choice(t[4]), title_lc=t[0].lower()))
    (out / "queries.txt").write_text("\n".join(qs) + "\n", encoding="utf-8")
    info = {"generator": "bench/make_corpus.py", "seed": seed, "docs": docs, "people": len(people),
            "words": total_words, "avg_words": round(total_words / max(docs, 1)), "topics": topics_used,
            "queries": len(qs)}
    (out / "corpus.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=1000)
    ap.add_argument("--people", type=int, default=200)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", required=True, help="target folder (its docs/ subfolder is replaced)")
    args = ap.parse_args()
    info = generate(Path(args.out), args.docs, args.people, args.seed)
    print(json.dumps({k: v for k, v in info.items() if k != "topics"}))


if __name__ == "__main__":
    main()
