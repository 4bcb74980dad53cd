#!/usr/bin/env python3
"""Generate the threaded sources of the bundled demo corpus.

Writes, under ingest/demo/:
  blog/northwind-blog.xml      WordPress WXR 1.2 export (posts, a page, comments, spam/trash/pingback, a draft)
  slack/                       Slack workspace export (users.json, channels.json, <channel>/<date>.json)
  mail/eng-announce.mbox       mbox with threaded replies (Message-ID / In-Reply-To / References, "> " quoting)
  mail/platform-team.mbox      a second list: inline "> " quotes of the message answered, an Outlook-style top post
  forum/qa-threads.jsonl       JSONL Q&A threads with nested comments
  forum/dev-help.jsonl         another forum category, with votes and accepted answers

The content lives in this script; the output is deterministic. Thread ids used by eval/demo.yaml are
fixed here (WXR post ids, Slack parent ts, mbox root Message-IDs, JSONL thread ids), so keep them
stable when editing. Run: python ingest/tools/make_demo_threads.py
"""
from __future__ import annotations

import datetime as dt
import email.header
import email.utils
import json
from pathlib import Path
from xml.sax.saxutils import escape

DEMO = Path(__file__).resolve().parent.parent / "demo"
UTC = dt.timezone.utc


def _dt(s: str) -> dt.datetime:
    return dt.datetime.strptime(s, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


# =============================================================================================
# WordPress (WXR 1.2)
# =============================================================================================

BLOG_AUTHORS = [  # login, email, display name, first, last
    ("dlee", "dana.lee@northwind.example", "Dana Lee", "Dana", "Lee"),
    ("bcarter", "ben.carter@northwind.example", "Ben Carter", "Ben", "Carter"),
    ("mchen", "marcus.chen@northwind.example", "Marcus Chen", "Marcus", "Chen"),
    ("aokafor", "aisha.okafor@northwind.example", "Aisha Okafor", "Aisha", "Okafor"),
    ("kwatanabe", "kenji.watanabe@northwind.example", "Kenji Watanabe", "Kenji", "Watanabe"),
    ("rshankar", "ravi.shankar@northwind.example", "Ravi Shankar", "Ravi", "Shankar"),
    ("hschmidt", "hannah.schmidt@northwind.example", "Hannah Schmidt", "Hannah", "Schmidt"),
    ("mtanaka", "mei.tanaka@northwind.example", "Mei Tanaka", "Mei", "Tanaka"),
    ("eobrien", "emily.obrien@northwind.example", "Emily O'Brien", "Emily", "O'Brien"),
    ("gkim", "grace.kim@northwind.example", "Grace Kim", "Grace", "Kim"),
    ("lvogel", "lena.vogel@northwind.example", "Lena Vogel", "Lena", "Vogel"),
]

# Commenter identities as they appear in the blog (some spelled differently from people.yaml).
C = {
    "dana": ("Dana Lee", "dana.lee@northwind.example"),
    "jose": ("Jose Alvarez", "jose.alvarez@northwind.example"),
    "ravi": ("Ravi Shankar", "ravi.shankar@northwind.example"),
    "alex": ("Alex Morgan", "alex.morgan@contractors.northwind.example"),
    "emily": ("Emily O'Brien", "Emily.OBrien@northwind.example"),
    "priya": ("Priya Raman", "priya.raman@northwind.example"),
    "lukas": ("Lukas Meyer", "lukas.meyer@northwind.example"),
    "ben": ("Ben Carter", "ben.carter@northwind.example"),
    "olu": ("Olu Adeyemi", "olumide.adeyemi@northwind.example"),
    "marcus": ("Marcus Chen", "marcus.chen@northwind.example"),
    "grace": ("Grace Kim", "grace.kim@northwind.example"),
    "nora": ("Nora Lindqvist", "nora.lindqvist@northwind.example"),
    "aisha": ("Aisha Okafor", "aisha.okafor@northwind.example"),
    "kenji": ("Kenji Watanabe", "kenji.watanabe@northwind.example"),
    "mei": ("Mei Tanaka", "mei.tanaka@northwind.example"),
    "sofia": ("Sofia Novak", "sofia.novak@northwind.example"),
    "hannah": ("Hannah Schmidt", "hannah.schmidt@northwind.example"),
    "lena": ("Lena Vogel", "lena.vogel@northwind.example"),
    "spammer": ("Best Replica Watches", "deals@cheap-watches.example"),
}

# Comment tuple: (comment_id, who, date, parent_id or 0, content, approved, type)
POSTS = [
    {
        "id": 101, "login": "dlee", "date": "2025-03-25 15:00", "type": "post", "status": "publish",
        "slug": "2025/03/25/eks-1-30-upgrade",
        "title": "How we upgraded 14 EKS clusters to Kubernetes 1.30 without downtime",
        "tags": ["kubernetes", "eks", "platform", "upgrades"],
        "content": """<p>Between 18 February and 18 March 2025 the Platform team upgraded all <strong>14 EKS clusters</strong>
from Kubernetes 1.29 to 1.30: four production clusters, three staging clusters and seven tooling and
development clusters. Customers did not notice, which is exactly the point. Here is how we do it.</p>
<h2>One version at a time, staging first</h2>
<p>We upgrade one minor version at a time, always development first, then staging, then production.
Staging soaks for <strong>7 days</strong> on the new version while the nightly end-to-end tests and the Harbor
load test run. Only then do we touch production, one cluster per maintenance window, starting with the
smallest region.</p>
<h2>Drains are where upgrades go wrong</h2>
<p>The control plane upgrade is boring: Terraform changes one number, EKS does the rest in about half an
hour. The node group rotation is where things break. Every node is cordoned and drained, and a drain
waits for PodDisruptionBudgets. Our rule: the drain timeout is <strong>15 minutes per node</strong>, and if a
drain hits it, we do not force it. We find the PDB that blocks, and we page its owners.</p>
<h2>What we changed this time</h2>
<ul>
<li>We check for PDBs that allow zero disruptions weeks before the upgrade.</li>
<li>We pause CI runners before rotating the CI node group, after killing a batch of builds on 26 February.</li>
<li>Every production upgrade is announced five business days ahead, and Customer Support gets a heads-up.</li>
</ul>
<p>The full procedure is in the Kubernetes upgrade runbook on the wiki. Next up: Kubernetes 1.31 in Q3.</p>""",
        "comments": [
            (1001, "jose", "2025-03-25 16:10", 0,
             "For anyone running self-hosted runners: we now pause the runner scale sets before the ci node group is rotated. "
             "Jobs have a 30-minute grace period, which is longer than the drain timeout, so without the pause builds get killed halfway. "
             "Bonus: since the new ci-large pool went live the e2e suite finishes in 14 minutes instead of 22.", "1", ""),
            (1002, "ravi", "2025-03-25 17:02", 0,
             "Some numbers from the Cluster Upgrade dashboard: across the four production windows the Harbor error rate never went above "
             "0.12%, and p99 API latency peaked at 640 ms, well under the 800 ms pre-flight limit.", "1", ""),
            (1003, "alex", "2025-03-26 08:45", 0,
             "Out of curiosity, how long did the control plane upgrades take per cluster?", "1", ""),
            (1004, "dana", "2025-03-26 09:30", 1003,
             "Between 27 and 33 minutes per cluster. prod-us-west-2 was the slowest at 33 minutes; the API server stayed available the whole time.",
             "1", "comment"),
            (1005, "emily", "2025-03-26 18:20", 0,
             "From the Support side: zero customer tickets related to the upgrades. The five-day heads-up let us put an extra Tier 2 engineer "
             "on each window.", "1", ""),
            (1006, ("Kubernetes Weekly Digest", "digest@k8s-weekly.example"), "2025-03-28 07:00", 0,
             "[&#8230;] Northwind Robotics describes how they upgraded 14 EKS clusters [&#8230;]", "1", "pingback"),
        ],
    },
    {
        "id": 102, "login": "bcarter", "date": "2025-02-21 10:00", "type": "post", "status": "publish",
        "slug": "2025/02/21/meet-northwind-connect",
        "title": "Meet Northwind Connect, our new VPN",
        "tags": ["it", "vpn", "northwind-connect"],
        "content": """<p>Our old OpenVPN setup served us since 2019, but it was a single gateway in Oregon, it dropped every
time a laptop went to sleep and its certificates were a pain to revoke. Starting 24 February we are rolling
out <strong>Northwind Connect</strong>, a WireGuard-based client that signs you in with Okta.</p>
<h2>What changes for you</h2>
<ul>
<li>Sign-in with Okta and your usual second factor, no more certificate files.</li>
<li>Gateways in us-west-2 and eu-central-1; you are routed to the nearest one.</li>
<li>Split tunnel: only internal traffic goes through the VPN, so video calls stay fast.</li>
<li>It reconnects silently after sleep.</li>
</ul>
<h2>Schedule</h2>
<p>Berlin goes first (24 February to 7 March), then Portland (10 to 21 March), and remote colleagues by 31 March.
The OpenVPN gateway is switched off on 15 April 2025.</p>
<p>Install it from Self Service on macOS, Company Portal on Windows, or <code>apt install nwconnect</code> on Linux.</p>""",
        "comments": [
            (1011, "priya", "2025-02-21 17:45", 0,
             "Correction for Linux users: please install nwconnect 2.3.1 or later. Version 2.3.0 has a DNS bug that breaks internal "
             "hostnames after suspend. The apt repository already serves 2.3.1.", "1", ""),
            (1012, "lukas", "2025-02-22 09:12", 0,
             "Does it work from customer sites? Some of our POC warehouses block everything except HTTPS.", "1", ""),
            (1013, "ben", "2025-02-22 10:05", 1012,
             "Yes. Turn on \"Use TCP fallback\" under Settings &gt; Advanced and it tunnels over TCP port 443. A bit slower than UDP, "
             "but it works almost everywhere, including hotel Wi-Fi.", "1", "comment"),
            (1014, "spammer", "2025-02-23 03:14", 0,
             "Great post!!! Best replica watches at lowest prices, visit our shop now", "spam", ""),
        ],
    },
    {
        "id": 103, "login": "mchen", "date": "2025-04-10 16:00", "type": "post", "status": "publish",
        "slug": "2025/04/10/inside-our-ota-pipeline",
        "title": "Inside our OTA pipeline: shipping firmware to 3,200 robots",
        "tags": ["firmware", "ota", "nwos", "robots"],
        "content": """<p>Every month a new version of NWOS, our robot operating system, goes out to about 3,200 robots at 57
customer sites. Nobody drives to those warehouses to plug in a USB stick. This post explains how our
over-the-air (OTA) pipeline keeps those updates boring.</p>
<h2>Signed images, A/B partitions</h2>
<p>Images are signed with ed25519 keys that never leave a hardware security module, and the bootloader refuses
to boot anything else. Each robot has two root partitions: the update goes to the inactive one, and if the
robot fails its health check three times after rebooting, it falls back to the old partition on its own.</p>
<h2>Install only when it is safe</h2>
<p>A robot installs only when it is docked, has more than 40% battery, has no mission coming up and the site is
outside its operating hours. Downloads during operating hours are capped at 2 Mbps per robot.</p>
<h2>Four stages</h2>
<p>Since ADR-0012 every release goes to 1%, 10%, 50% and finally 100% of the fleet, with at least 24 hours at each
stage and a gate on the rollback rate. Robots are picked at random within each site, so no customer ever has
all robots on a brand-new version at once.</p>""",
        "comments": [
            (1021, "olu", "2025-04-10 17:30", 0,
             "One detail that often surprises people: the motor controller boards are not part of the A/B scheme. The fleet agent "
             "flashes them over the CAN bus after NWOS has booted, one board at a time, about 4 minutes per robot. The NR-40 has two "
             "controller boards and the Picker P2 has three.", "1", ""),
            (1022, "emily", "2025-04-11 08:05", 0,
             "How much notice do customers get before their robots update? Site admins ask us this a lot.", "1", ""),
            (1023, "marcus", "2025-04-11 09:40", 1022,
             "At least 72 hours before the first robot at their site installs. Site admins see it on the Updates page in Harbor and "
             "can pause updates for up to 14 days, except for critical security releases.", "1", "comment"),
            (1024, "grace", "2025-04-11 14:15", 0,
             "Worth adding: since the four-stage rollout the median time to get a release to the full fleet went from 16 days to 6 "
             "days, and we have not had a whole site go down because of an update.", "1", ""),
            (1025, "marcus", "2025-04-11 14:20", 0, "test comment, please ignore", "trash", ""),
        ],
    },
    {
        "id": 104, "login": "aokafor", "date": "2025-02-05 11:00", "type": "post", "status": "publish",
        "slug": "2025/02/05/palletnet-v4",
        "title": "PalletNet v4: what changed in our perception stack",
        "tags": ["ml", "perception", "palletnet"],
        "content": """<p>PalletNet v4 reached the whole fleet in January 2025. It finds pallets, pallet pockets, people,
forklifts and pallet jacks in camera images, and it does that on the robot in 38 milliseconds per frame.</p>
<h2>Better data, not just a bigger model</h2>
<p>v4 was trained on about 1.2 million labeled images from 40 customer sites. The biggest improvement came from
wrapped pallets: black stretch film used to be invisible to v3 in some lighting.</p>
<h2>How we decide a model is ready</h2>
<p>A model must reach mAP@0.5 of at least 0.82 on our fixed validation set, must not lose more than one point of
recall on any safety-critical class, must fit in the 45 ms latency budget on a Jetson Orin, and must run two
weeks in shadow mode on 20 robots. v4 scored 0.84.</p>""",
        "comments": [
            (1031, "nora", "2025-02-05 13:20", 0,
             "Behind the 1.2 million images: we labeled 310,000 new images for v4, about a quarter of them wrapped pallets. The "
             "vendor's batches passed our QA sample with 98.4% label accuracy on average.", "1", ""),
            (1032, "lukas", "2025-02-06 10:00", 0,
             "A prospect in Rotterdam asked whether PalletNet works in dim cold-storage aisles. Do we have a number?", "1", ""),
            (1033, "aisha", "2025-02-06 12:30", 1032,
             "Yes: we tested v4 down to 20 lux, which covers typical cold-storage aisles. Below that the robot relies on lidar only "
             "and slows to 0.8 m/s.", "1", ""),
            (1034, "marcus", "2025-02-06 15:00", 0,
             "For Support: PalletNet v4 ships inside NWOS 6.1. Robots still on NWOS 6.0 keep running v3.", "1", ""),
        ],
    },
    {
        "id": 105, "login": "kwatanabe", "date": "2024-10-15 14:00", "type": "post", "status": "publish",
        "slug": "2024/10/15/why-we-moved-to-aurora",
        "title": "Why we moved Harbor to Aurora PostgreSQL",
        "tags": ["postgres", "aurora", "database", "project-atlas"],
        "content": """<p>On Saturday 21 September 2024 Harbor switched from a self-managed PostgreSQL 12 cluster to Amazon Aurora
PostgreSQL 15. This post explains why (PostgreSQL 12 reached end of life, and running Patroni ate a fifth of an
engineer), why we did not use AWS DMS, and how we kept the cutover short.</p>
<h2>Logical replication instead of DMS</h2>
<p>DMS mishandled our jsonb columns and sequences in tests, so we used native logical replication. The initial
copy of 2.1 TB took 31 hours; afterwards replication lag stayed under two seconds.</p>
<h2>Rehearse, rehearse</h2>
<p>We rehearsed the cutover twice on staging and found one missing step each time. Sequences are not replicated
by logical replication, so they have to be copied at cutover.</p>""",
        "comments": [
            (1041, "dana", "2024-10-15 16:00", 0,
             "From the cutover side: Harbor was read-only for 6 minutes. The longest single step was the sequence sync, at 2 minutes "
             "10 seconds.", "1", ""),
            (1042, "grace", "2024-10-16 09:00", 0, "How did the cost end up compared with the estimate in the ADR?", "1", ""),
            (1043, "kenji", "2024-10-16 11:30", 1042,
             "About 18% more than the EC2 setup, as estimated. In exchange, our restore test went from over 6 hours to 25 minutes "
             "with point-in-time restore, and nobody has touched Patroni since.", "1", ""),
            (1044, "jose", "2024-10-16 12:10", 0,
             "CI integration tests have run against postgres:15 containers since July, so the version mismatch flakes we used to "
             "see are gone too.", "1", ""),
        ],
    },
    {
        "id": 106, "login": "rshankar", "date": "2025-01-28 17:00", "type": "post", "status": "publish",
        "slug": "2025/01/28/life-after-datadog",
        "title": "Life after Datadog: our observability stack",
        "tags": ["observability", "grafana", "prometheus", "loki", "cost"],
        "content": """<p>In January 2025 we switched off Datadog for good. All metrics, logs and traces now live in a self-hosted
Grafana stack: Prometheus agents and Mimir for metrics, Loki for logs, Tempo for traces, all instrumented with
OpenTelemetry.</p>
<h2>Why</h2>
<p>Our Datadog bill had reached about $420,000 a year, and teams had started to log less to save money. The new stack
costs about $110,000 a year to run, and logs are now kept for 30 days for every service.</p>
<h2>What we learned</h2>
<ul>
<li>Dashboards as code (Jsonnet) made the migration reviewable.</li>
<li>Cardinality limits are essential; we cap each service at 500,000 active series.</li>
<li>Every alert needs a runbook link, enforced in CI.</li>
</ul>""",
        "comments": [
            (1051, "mei", "2025-01-28 18:30", 0,
             "Security note: the OpenTelemetry collector masks email addresses, but please do not rely on it. In Q4 we found three "
             "services logging customer names; all are fixed, and the log review is now part of the quarterly access review.", "1", ""),
            (1052, "dana", "2025-01-29 08:15", 0,
             "Capacity check: Mimir is at about 7 million active series out of a capacity of 10 million, so please keep the "
             "cardinality rules in mind.", "1", ""),
            (1053, "kenji", "2025-01-29 10:40", 0,
             "Tip: the Postgres (Aurora) dashboard now shows replication lag for the analytics reader, and it alerts when the lag is "
             "above 30 seconds.", "1", ""),
            (1054, "spammer", "2025-01-30 02:00", 0, "nice article, check my profile for SEO services", "trash", ""),
        ],
    },
    {
        "id": 107, "login": "hschmidt", "date": "2024-06-10 09:00", "type": "post", "status": "publish",
        "slug": "2024/06/10/welcome-to-the-berlin-office",
        "title": "Welcome to our new Berlin office",
        "tags": ["berlin", "office", "culture"],
        "content": """<p>After two years in a coworking space, the Berlin team has its own home: two floors and a robot test
hall in a former printing house by the canal. About 60 of us work here, from ML/Perception and Platform to Sales
Engineering, Security, IT and People.</p>
<p>Come by on a Thursday for the team lunch, and bring visitors to see the robots in the test hall (after the
safety induction, of course).</p>""",
        "comments": [
            (1061, "ben", "2024-06-10 11:00", 0,
             "IT tip: company laptops join NW-Staff automatically, no password needed. Guests use NW-Guest; the password is on the "
             "reception screen and changes on the first of every month.", "1", ""),
            (1062, "lukas", "2024-06-10 12:30", 0,
             "The test hall fits 10 robots, so we can now rehearse European POCs here before shipping robots to customers.", "1", ""),
            (1063, "hannah", "2024-06-10 14:00", 1062,
             "And for everyone who cycles: the bike room in the courtyard has space for 40 bikes.", "1", ""),
        ],
    },
    {
        "id": 108, "login": "mtanaka", "date": "2024-10-08 15:00", "type": "post", "status": "publish",
        "slug": "2024/10/08/five-signs-of-phishing",
        "title": "Security Awareness Month: five signs of phishing",
        "tags": ["security", "phishing", "awareness"],
        "content": """<p>October is Security Awareness Month. Here are the five signs that catch most phishing mails: urgency,
a sender that does not match the display name, requests about money or codes, links that do not go where they
say, and unexpected attachments.</p>
<p>If you see one, press the Report Phish button in Outlook. Reporting takes two seconds and helps everyone,
because we block the sender for the whole company.</p>""",
        "comments": [
            (1071, "sofia", "2024-10-08 16:30", 0,
             "Some numbers: so far in 2024 our quarterly phishing simulations had a 4.1% click rate, down from 9.8% in 2022, and 71% of "
             "employees reported the simulation with the Report Phish button.", "1", ""),
            (1072, "emily", "2024-10-09 09:15", 0,
             "Support got a call from a fake \"customer\" who wanted us to reset a site admin's password. Reminder for support agents: "
             "we only reset after calling back the number stored in the CRM.", "1", ""),
            (1073, "mei", "2024-10-09 10:00", 1072,
             "Great catch. Please also post those calls in #security-incidents; voice phishing is phishing too.", "1", ""),
        ],
    },
    {
        "id": 109, "login": "eobrien", "date": "2025-05-20 16:00", "type": "post", "status": "publish",
        "slug": "2025/05/20/a-day-in-customer-support",
        "title": "A day in Customer Support",
        "tags": ["support", "customers", "culture"],
        "content": """<p>Customer Support answers about 1,400 tickets a month from warehouses in North America, Europe and Australia.
Most are how-to questions; a few are robots that stopped in the middle of an aisle at 3 a.m. local time.</p>
<p>Our Tier 1 agents solve most tickets themselves. When they cannot, Tier 2 support engineers dig into robot logs,
and for real product defects we page engineering. The support bundle that every robot can produce has changed
our work the most.</p>""",
        "comments": [
            (1081, "olu", "2025-05-20 17:10", 0,
             "Support bundles save us hours. Since NWOS 6.2 the bundle also contains the CAN bus logs, so motor controller issues "
             "can be triaged without a site visit.", "1", ""),
            (1082, "marcus", "2025-05-20 18:00", 1081,
             "And Tier 3 pages for firmware dropped by about a third since support bundles became mandatory for escalations.", "1", ""),
            (1083, "emily", "2025-05-21 08:30", 1082,
             "Our median first response for P1 tickets in Q1 2025 was 11 minutes, well within the 30-minute SLA.", "1", ""),
        ],
    },
    {
        "id": 110, "login": "gkim", "date": "2024-05-01 12:00", "type": "page", "status": "publish",
        "slug": "about",
        "title": "About the Northwind Engineering Blog",
        "tags": ["about"],
        "content": """<p>This is the internal engineering blog of Northwind Robotics. Anyone in the company can write a post about
what they built, learned or broke. Posts are reviewed by two colleagues before they are published.</p>""",
        "comments": [
            (1091, "jose", "2024-05-02 08:00", 0,
             "Drafts go to #blog-review; any two reviewers are enough, they do not have to be on your team.", "1", ""),
            (1092, "grace", "2024-05-02 09:30", 1091,
             "And please publish within two weeks after the review, so posts do not go stale.", "1", ""),
        ],
    },
    {
        "id": 111, "login": "gkim", "date": "2025-06-02 10:00", "type": "post", "status": "draft",
        "slug": "?p=111",
        "title": "Engineering roadmap H2 2025 (draft, do not publish)",
        "tags": ["roadmap"],
        "content": """<p>DRAFT. Besides Kestrel, we are exploring Project Heron, an autonomous forklift for trailer loading, with
a feasibility study budget of $400,000. Not decided; do not share.</p>""",
        "comments": [],
    },
    # Attribution traps (eval/demo.yaml, type attribution): the post's author replies to nearly every
    # comment; Kenji's staleness-banner idea is repeated by Priya and by Mei, who credits it to Lena.
    {
        "id": 113, "login": "lvogel", "date": "2025-06-16 13:00", "type": "post", "status": "publish",
        "slug": "2025/06/16/proposal-new-wiki-search",
        "title": "Proposal: replace the wiki's built-in search with Meilisearch",
        "tags": ["wiki", "search", "documentation", "developer-experience"],
        "content": """<p>Everyone who has tried to find a runbook at 3 a.m. knows the problem: the wiki's built-in search is
bad. It ranks pages by how often the words appear in the title, it knows no synonyms (searching for
<em>k8s</em> does not find <em>Kubernetes</em>), and a single typo returns nothing at all. In the May
developer-experience survey, 64% of the people who answered said they give up on the wiki search at least
once a week and ask in Slack instead. The search log agrees: 41% of searches end without a click on any
result.</p>
<h2>What I propose</h2>
<p>Replace the built-in search with <strong>Meilisearch</strong>, self-hosted on the tools cluster, and index
the wiki, the ADRs and the runbooks into one search box. Meilisearch is open source, tolerates typos out of
the box, supports a synonym list we can maintain ourselves (k8s, EKS, Kubernetes; PTO, vacation, leave) and
answers in well under 50 ms on an index of our size (about 9,400 pages).</p>
<h2>What I do not propose</h2>
<ul>
<li>Moving the wiki itself. Pages, permissions and history stay where they are; only the search box changes.</li>
<li>A hosted search service. Everything stays on our own infrastructure.</li>
<li>Searching Slack. That is a different project with different privacy questions.</li>
</ul>
<h2>Plan</h2>
<p>A pilot with two teams in July, a comparison against the current search, and a decision at the end of
July. Comments, objections and horror stories about the current search are very welcome below.</p>""",
        "comments": [
            (1101, "kenji", "2025-06-16 15:05", 0,
             "Before we change engines: in my experience half of the bad results are not the engine's fault, they are stale "
             "pages. The Terraform naming page from 2022 still ranks above the current Terraform conventions. Could the new "
             "search rank pages by their last edit, and put a warning banner on any page that nobody has edited for 18 months? "
             "That alone would stop people from following outdated instructions.", "1", ""),
            (1102, "lena", "2025-06-16 15:40", 1101,
             "Ranking by freshness is something Meilisearch can do with a custom ranking rule on the updated_at field, so that "
             "part is cheap. I'll check how many of our pages have not been touched in a long time; my guess is a lot.", "1", ""),
            (1103, "sofia", "2025-06-16 17:20", 0,
             "One condition from Security: wiki pages include security runbooks, customer names and the odd credential that "
             "somebody pasted by mistake. Whatever we pick, the index has to stay on our own clusters in eu-central-1. A SaaS "
             "search service with data outside the EU is a no-go, and so is sending page content to a third-party API for "
             "\"AI answers\".", "1", ""),
            (1104, "lena", "2025-06-16 18:05", 1103,
             "Agreed, and that is the plan: self-hosted on the tools cluster in eu-central-1, no SaaS, no external API. I'll "
             "add a section on data residency and on how page permissions carry over to search results.", "1", ""),
            (1105, "emily", "2025-06-17 09:10", 0,
             "Support would love this. Could the search also cover our Zendesk macros? Agents search the wiki and Zendesk "
             "separately today, and the macros often contain the better answer.", "1", ""),
            (1106, "lena", "2025-06-17 10:30", 1105,
             "Macros are out of scope for the pilot, but there is a connector for it, so let's look at it in phase two. "
             "I've added it to the list of follow-ups.", "1", ""),
            (1107, "priya", "2025-06-18 08:45", 0,
             "+1 to the staleness idea from earlier in the thread. A banner on pages older than 18 months would already fix "
             "most of what IT gets asked about: the 2019 page about our old Jira workflow still shows up first when you search "
             "for tickets.", "1", ""),
            (1108, "lena", "2025-06-18 09:15", 1107,
             "Noted. I'm collecting examples of misleading old pages in a spreadsheet linked from the proposal, please add "
             "yours there.", "1", ""),
            (1109, "mei", "2025-06-19 11:00", 0,
             "Lena, as you say yourself in the comments, pages that haven't been edited in 18 months should get a warning "
             "banner. I'd go one step further: every page gets an owner, and owners have to confirm their pages once a year, "
             "or the page is marked as unverified. Access runbooks change too often to go stale quietly.", "1", ""),
            (1110, "lena", "2025-06-19 11:25", 1109,
             "An annual owner review is a good fit for the wiki; it can already send reminder mails to page owners. "
             "I'll write it up as a separate proposal so it does not hold up the search pilot.", "1", ""),
            (1111, "jose", "2025-06-20 14:00", 0,
             "Please test with real queries before we commit to an engine. Take a few months of the current search log and "
             "replay every query against both engines, then compare what people actually clicked. Also check code snippets: "
             "some tokenizers split on dots and dashes, so searches like kubectl-drain or harbor.yaml behave oddly.", "1", ""),
            (1112, "lena", "2025-06-20 15:30", 1111,
             "Yes! I exported three months of search logs, about 12,000 queries, and will replay them against the old search "
             "and Meilisearch during the pilot. Code snippets are on the test list.", "1", ""),
            (1113, "spammer", "2025-06-21 04:12", 0,
             "Great post. Looking for cheap SEO backlinks? Visit our site!!!", "spam", ""),
            (1114, "grace", "2025-06-23 16:00", 0,
             "Approved for a pilot with Platform and Support in July. Let's decide by 31 July, based on the replayed search "
             "logs and a short follow-up survey. Lena owns the decision write-up.", "1", ""),
            (1115, "lena", "2025-06-23 16:20", 1114,
             "Thanks Grace. The pilot starts on 7 July; I'll post the results in this thread.", "1", ""),
        ],
    },
]


def _cdata(s: str) -> str:
    return "<![CDATA[" + s.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def write_wxr() -> Path:
    out = DEMO / "blog" / "northwind-blog.xml"
    out.parent.mkdir(parents=True, exist_ok=True)
    L = ['<?xml version="1.0" encoding="UTF-8" ?>',
         '<!-- This is a WordPress eXtended RSS file generated by WordPress as an export of your site. -->',
         '<rss version="2.0"',
         '\txmlns:excerpt="http://wordpress.org/export/1.2/excerpt/"',
         '\txmlns:content="http://purl.org/rss/1.0/modules/content/"',
         '\txmlns:wfw="http://wellformedweb.org/CommentAPI/"',
         '\txmlns:dc="http://purl.org/dc/elements/1.1/"',
         '\txmlns:wp="http://wordpress.org/export/1.2/"',
         '>',
         '<channel>',
         '\t<title>Northwind Engineering Blog</title>',
         '\t<link>https://blog.northwind.example</link>',
         '\t<description>What Northwind Robotics builds, learns and breaks</description>',
         '\t<pubDate>Mon, 02 Jun 2025 12:00:00 +0000</pubDate>',
         '\t<language>en-US</language>',
         '\t<wp:wxr_version>1.2</wp:wxr_version>',
         '\t<wp:base_site_url>https://blog.northwind.example</wp:base_site_url>',
         '\t<wp:base_blog_url>https://blog.northwind.example</wp:base_blog_url>']
    for i, (login, mail, display, first, last) in enumerate(BLOG_AUTHORS, 1):
        L += ['\t<wp:author>',
              f'\t\t<wp:author_id>{i}</wp:author_id>',
              f'\t\t<wp:author_login>{_cdata(login)}</wp:author_login>',
              f'\t\t<wp:author_email>{_cdata(mail)}</wp:author_email>',
              f'\t\t<wp:author_display_name>{_cdata(display)}</wp:author_display_name>',
              f'\t\t<wp:author_first_name>{_cdata(first)}</wp:author_first_name>',
              f'\t\t<wp:author_last_name>{_cdata(last)}</wp:author_last_name>',
              '\t</wp:author>']
    tags = sorted({t for p in POSTS for t in p["tags"]})
    for n, t in enumerate(tags, 1):
        L.append(f'\t<wp:tag><wp:term_id>{n}</wp:term_id><wp:tag_slug>{_cdata(t)}</wp:tag_slug>'
                 f'<wp:tag_name>{_cdata(t)}</wp:tag_name></wp:tag>')
    L.append('\t<generator>https://wordpress.org/?v=6.5.2</generator>')
    for p in POSTS:
        d = _dt(p["date"])
        link = f"https://blog.northwind.example/{p['slug']}/" if p["status"] == "publish" else \
            f"https://blog.northwind.example/{p['slug']}"
        L += ['\t<item>',
              f'\t\t<title>{escape(p["title"])}</title>',
              f'\t\t<link>{escape(link)}</link>',
              f'\t\t<pubDate>{email.utils.format_datetime(d)}</pubDate>',
              f'\t\t<dc:creator>{_cdata(p["login"])}</dc:creator>',
              f'\t\t<guid isPermaLink="false">https://blog.northwind.example/?p={p["id"]}</guid>',
              '\t\t<description></description>',
              f'\t\t<content:encoded>{_cdata(p["content"])}</content:encoded>',
              f'\t\t<excerpt:encoded>{_cdata("")}</excerpt:encoded>',
              f'\t\t<wp:post_id>{p["id"]}</wp:post_id>',
              f'\t\t<wp:post_date>{_cdata(d.strftime("%Y-%m-%d %H:%M:%S"))}</wp:post_date>',
              f'\t\t<wp:post_date_gmt>{_cdata(d.strftime("%Y-%m-%d %H:%M:%S") if p["status"] == "publish" else "0000-00-00 00:00:00")}</wp:post_date_gmt>',
              f'\t\t<wp:comment_status>{_cdata("open")}</wp:comment_status>',
              f'\t\t<wp:ping_status>{_cdata("open")}</wp:ping_status>',
              f'\t\t<wp:post_name>{_cdata(p["slug"].rstrip("/").split("/")[-1] if p["status"] == "publish" else "")}</wp:post_name>',
              f'\t\t<wp:status>{_cdata(p["status"])}</wp:status>',
              '\t\t<wp:post_parent>0</wp:post_parent>',
              '\t\t<wp:menu_order>0</wp:menu_order>',
              f'\t\t<wp:post_type>{_cdata(p["type"])}</wp:post_type>',
              f'\t\t<wp:post_password>{_cdata("")}</wp:post_password>',
              '\t\t<wp:is_sticky>0</wp:is_sticky>']
        for t in p["tags"]:
            L.append(f'\t\t<category domain="post_tag" nicename="{escape(t)}">{_cdata(t)}</category>')
        if p["type"] == "post":
            L.append(f'\t\t<category domain="category" nicename="engineering">{_cdata("Engineering")}</category>')
        for cid, who, cdate, parent, text, approved, ctype in p["comments"]:
            name, mail = who if isinstance(who, tuple) else C[who]
            cd = _dt(cdate)
            url = "https://k8s-weekly.example/2025/03/28/" if ctype == "pingback" else ""
            L += ['\t\t<wp:comment>',
                  f'\t\t\t<wp:comment_id>{cid}</wp:comment_id>',
                  f'\t\t\t<wp:comment_author>{_cdata(name)}</wp:comment_author>',
                  f'\t\t\t<wp:comment_author_email>{_cdata(mail)}</wp:comment_author_email>',
                  f'\t\t\t<wp:comment_author_url>{escape(url)}</wp:comment_author_url>',
                  f'\t\t\t<wp:comment_author_IP>{_cdata("10.40.0.1" if ctype != "pingback" else "203.0.113.7")}</wp:comment_author_IP>',
                  f'\t\t\t<wp:comment_date>{_cdata(cd.strftime("%Y-%m-%d %H:%M:%S"))}</wp:comment_date>',
                  f'\t\t\t<wp:comment_date_gmt>{_cdata(cd.strftime("%Y-%m-%d %H:%M:%S"))}</wp:comment_date_gmt>',
                  f'\t\t\t<wp:comment_content>{_cdata(text)}</wp:comment_content>',
                  f'\t\t\t<wp:comment_approved>{_cdata(approved)}</wp:comment_approved>',
                  f'\t\t\t<wp:comment_type>{_cdata(ctype)}</wp:comment_type>',
                  f'\t\t\t<wp:comment_parent>{parent}</wp:comment_parent>',
                  f'\t\t\t<wp:comment_user_id>0</wp:comment_user_id>',
                  '\t\t</wp:comment>']
        L.append('\t</item>')
    # An attachment item, as real exports contain; loaders skip post_type attachment.
    L += ['\t<item>',
          '\t\t<title>eks-upgrade-timeline</title>',
          '\t\t<link>https://blog.northwind.example/2025/03/25/eks-1-30-upgrade/eks-upgrade-timeline/</link>',
          '\t\t<dc:creator>' + _cdata("dlee") + '</dc:creator>',
          '\t\t<content:encoded>' + _cdata("") + '</content:encoded>',
          '\t\t<wp:post_id>112</wp:post_id>',
          '\t\t<wp:post_date>' + _cdata("2025-03-25 14:55:00") + '</wp:post_date>',
          '\t\t<wp:status>' + _cdata("inherit") + '</wp:status>',
          '\t\t<wp:post_parent>101</wp:post_parent>',
          '\t\t<wp:post_type>' + _cdata("attachment") + '</wp:post_type>',
          '\t\t<wp:attachment_url>' + _cdata("https://blog.northwind.example/wp-content/uploads/2025/03/eks-upgrade-timeline.png") + '</wp:attachment_url>',
          '\t</item>',
          '</channel>', '</rss>', '']
    out.write_text("\n".join(L), encoding="utf-8")
    return out


# =============================================================================================
# Slack export
# =============================================================================================

SLACK_USERS = [  # id, username, real_name, display_name, email, is_bot
    ("U01DANA", "dana.lee", "Dana Lee", "Dana", "dana.lee@northwind.example", False),
    ("U02JOSE", "jose.alvarez", "Jose Alvarez", "José", "jose.alvarez@northwind.example", False),
    ("U03PRIYA", "priya.raman", "Priya Raman", "Priya", "priya.raman@northwind.example", False),
    ("U04MARCUS", "marcus.chen", "Marcus Chen", "Marcus", "marcus.chen@northwind.example", False),
    ("U05AISHA", "aisha.okafor", "Aisha Okafor", "Aisha", "aisha.okafor@northwind.example", False),
    ("U06SOFIA", "sofia.novak", "Sofia Novak", "Sofia", "sofia.novak@northwind.example", False),
    ("U07RAVI", "ravi.shankar", "Ravi Shankar", "Ravi", "ravi.shankar@northwind.example", False),
    ("U08BEN", "ben.carter", "Ben Carter", "Ben (IT Berlin)", "ben.carter@northwind.example", False),
    ("U09ALEX", "alex.morgan", "Alex Morgan", "Alex (contractor)", "alex.morgan@contractors.northwind.example", False),
    ("U10NORA", "nora.lindqvist", "Nora Lindqvist", "Nora", "nora.lindqvist@northwind.example", False),
    ("U11OLU", "olu.adeyemi", "Olu Adeyemi", "Olu", "olumide.adeyemi@northwind.example", False),
    ("U12MEI", "mei.tanaka", "Mei Tanaka", "Mei", "mei.tanaka@northwind.example", False),
    ("U13KENJI", "kenji.watanabe", "Kenji Watanabe", "Kenji", "kenji.watanabe@northwind.example", False),
    ("U14EMILY", "emily.obrien", "Emily O'Brien", "Em", "Emily.OBrien@northwind.example", False),
    ("U15LUKAS", "lukas.meyer", "Lukas Meyer", "Lukas", "lukas.meyer@northwind.example", False),
    ("U16GRACE", "grace.kim", "Grace Kim", "Grace", "grace.kim@northwind.example", False),
    ("U17TOM", "tom.becker", "Tom Becker", "Tom", "tom.becker@northwind.example", False),
    ("U18HANNAH", "hannah.schmidt", "Hannah Schmidt", "Hannah", "hannah.schmidt@northwind.example", False),
    ("U19SAM", "sam.ortiz", "Sam Ortiz", "Sam (Office PDX)", "sam.ortiz@northwind.example", False),
    ("U90PDBOT", "pagerduty", "PagerDuty", "PagerDuty", "", True),
]

SLACK_CHANNELS = [  # id, name, created, purpose
    ("C01INFRA", "infra", "2019-03-01 09:00", "Platform, Kubernetes, AWS and Terraform. Page the Platform on-call with /pd platform."),
    ("C02ITHELP", "it-help", "2019-03-01 09:05", "Laptops, accounts, VPN, Wi-Fi. IT answers during office hours in Portland and Berlin."),
    ("C03SECURITY", "security", "2019-06-12 10:00", "Security questions. Report incidents in #security-incidents, not here."),
    ("C04MLPERC", "ml-perception", "2020-01-20 08:30", "PalletNet, datasets, labeling and the GPU cluster."),
    ("C05RELEASE", "release", "2021-02-08 17:00", "Harbor release train, go/no-go decisions, hotfix approvals."),
    ("C06OFFICEPDX", "office-portland", "2021-09-01 16:00", "Portland office: desks, deliveries, the kitchen and the plants."),
]

# A thread: (channel, [messages]); a message: (user, "YYYY-MM-DD HH:MM", text). The first message is the parent;
# a thread of one message is a plain channel message. Extra: ("join", user, date) adds a channel_join event.
SLACK_THREADS = [
    ("infra", [
        ("U09ALEX", "2025-03-10 16:05",
         "I'm second pair of eyes for the prod-ap-southeast-2 upgrade tomorrow. Quick question: what's the max node drain "
         "timeout during k8s upgrades? The runbook draft I have says 10m in one place and 15m in another."),
        ("U01DANA", "2025-03-10 16:12",
         "15 minutes per node. The 10m is an old value, I'll fix the draft. If a drain hits 15 minutes, don't force it: find the "
         "PDB that blocks it and page the owning team."),
        ("U02JOSE", "2025-03-10 16:20",
         "<@U09ALEX> and whenever a ci node group is involved, pause the runner scale sets first: "
         "`kubectl -n arc-runners scale runnerdeployment --all --replicas=0`. CI jobs get a 30-minute grace period, longer than "
         "the drain timeout, so otherwise you kill builds halfway. That's what bit us on tools-ci on 26 Feb."),
        ("U09ALEX", "2025-03-10 16:31", "Thanks both. Added the runner pause to my checklist for the later clusters."),
    ]),
    ("infra", [
        ("U01DANA", "2025-03-04 18:30",
         "Staging soak for 1.30 is done, no regressions in nightly e2e or the load test. Prod order: ap-southeast-2 on 3/11, "
         "eu-central-1 on 3/13, us-east-1 + us-west-2 on 3/18. Announcement is going out on eng-announce today."),
    ]),
    ("infra", [
        ("U02JOSE", "2025-03-20 09:10",
         "ci-large is live :tada: 16 vCPU / 64 GB nodes for integration tests and the e2e suite. Add "
         "`runs-on: [self-hosted, ci-large]` to your job. Queue time for integration tests went from 9 minutes to about 2."),
        ("U13KENJI", "2025-03-20 09:25",
         "Does ci-large have enough disk for the Aurora snapshot fixture? It's 40 GB unpacked."),
        ("U02JOSE", "2025-03-20 09:41",
         "> Does ci-large have enough disk for the Aurora snapshot fixture?\nYes, ci-large nodes have 200 GB gp3 volumes. "
         "ci-default only has 100 GB, so keep fixture-heavy jobs on ci-large."),
    ]),
    ("infra", [
        ("U07RAVI", "2025-05-06 14:00",
         "Heads-up: Loki ingestion for prod-us-west-2 is at 85% of the limit because mission-dispatch started logging full "
         "payloads at debug level. Does anyone know who owns mission-dispatch these days?"),
        ("U01DANA", "2025-05-06 14:06", "Backend team. I've pinged their on-call in #backend."),
        ("U07RAVI", "2025-05-06 15:20",
         "Fixed, they turned debug off. I also set a per-tenant ingestion limit of 20 MB/s in Loki, and a service that uses "
         "more than half of it now gets a ticket-severity alert."),
    ]),
    ("it-help", [
        ("join", "U15LUKAS", "2025-01-14 09:58"),
        ("U15LUKAS", "2025-01-14 10:02",
         "My ThinkPad's battery is bulging, the touchpad clicks by itself. What should I do?"),
        ("U03PRIYA", "2025-01-14 10:05",
         "Stop using it and unplug it now, swollen batteries can catch fire. Open a ticket under Hardware > Repair in "
         "ServiceDesk; we give you a loaner the same day."),
        ("U08BEN", "2025-01-14 10:09",
         "<@U15LUKAS> I'm in Berlin today, come to the IT cabinet on the 2nd floor, I have a loaner ThinkPad ready. Your files "
         "are synced to OneDrive, so you won't lose anything."),
    ]),
    ("it-help", [
        ("U14EMILY", "2025-03-17 23:40",
         "Northwind Connect keeps disconnecting on my hotel Wi-Fi in Chicago, every 2-3 minutes. Anything I can do?"),
        ("U08BEN", "2025-03-18 07:02",
         "Hotel networks often block WireGuard's UDP port. In Northwind Connect go to Settings > Advanced and turn on "
         "\"Use TCP fallback\"; it tunnels over TCP 443."),
        ("U03PRIYA", "2025-03-18 14:30",
         "Also check that you're on version 2.4.0 or newer. 2.4.0 fixed the reconnect loop on captive portals."),
        ("U14EMILY", "2025-03-18 14:45", "TCP fallback did it, thanks!"),
    ]),
    ("it-help", [
        ("U18HANNAH", "2025-04-02 08:15",
         "Can I get a second monitor for my home office? And does it come out of my home office stipend?"),
        ("U03PRIYA", "2025-04-02 15:40",
         "Monitors are company property, so they don't touch your stipend. Request it in ServiceDesk under Hardware > "
         "Peripherals. Peripherals up to $300 only need your manager's approval; above $300 Finance approves too. The standard "
         "monitor is a 27-inch 4K display."),
    ]),
    ("it-help", [
        ("U10NORA", "2025-03-12 10:20", "Teleport asks me for a YubiKey. How do I get one?"),
        ("U08BEN", "2025-03-12 10:31",
         "Request it in ServiceDesk under Hardware > Security key. You get two YubiKey 5 NFC keys, one for daily use and a "
         "backup to keep at home. Pick them up at the IT cabinet, or we mail them to remote folks."),
    ]),
    ("security", [
        ("U11OLU", "2025-02-26 15:22",
         "I think I just clicked a link in a mail that claimed to be from DHL about a robot part delivery. I didn't enter "
         "anything. What now?"),
        ("U12MEI", "2025-02-26 15:26",
         "Thanks for telling us right away! Use the Report Phish button on the mail so we get the headers. Since you didn't enter "
         "a password you don't need to reset it; I'll check your Okta sign-ins. Next time post in #security-incidents so the "
         "on-call sees it immediately."),
        ("U06SOFIA", "2025-02-26 15:58",
         "&gt; I think I just clicked a link in a mail that claimed to be from DHL\nThis is exactly the right reaction, "
         "<@U11OLU>. Nobody gets in trouble for reporting. That DHL mail went to 23 people today: 4 clicked, 11 reported it, and "
         "we blocked the sender domain at 15:40 UTC."),
    ]),
    ("security", [
        ("U10NORA", "2025-03-12 11:05",
         "I need read access to production telemetry tables to pull frame metadata for the v5 dataset. What's the process?"),
        ("U12MEI", "2025-03-12 11:12",
         "Request the Teleport role db-readonly-prod: `tsh request create --roles db-readonly-prod --reason \"v5 dataset\"`. "
         "Approvers are the data owner (<@U13KENJI> for the Harbor databases) and your manager. Access lasts at most 8 hours per "
         "request."),
        ("U13KENJI", "2025-03-12 11:30",
         "I'll approve it when it comes in. Please query the analytics reader (the harbor-analytics endpoint), not the writer: "
         "queries on the writer are killed after 30 seconds."),
    ]),
    ("security", [
        ("U06SOFIA", "2025-06-24 09:00",
         "Pen-test update: findings H-1 (site export IDOR) and H-2 (old TLS on the legacy OTA endpoint) are both closed. The "
         "retest of medium and high findings is booked for September. The customer-shareable summary is in the security folder."),
    ]),
    ("ml-perception", [
        ("U10NORA", "2025-05-19 09:30",
         "<@U05AISHA> for PalletNet v5 I'd like to book 6 nodes on gpu-pool-a for 5 days. Is that ok?"),
        ("U05AISHA", "2025-05-19 09:52",
         "The standard limit is 4 nodes (32 A100s) per job for at most 72 hours, so 6 nodes for 5 days needs my approval. "
         "Approved for the week of June 2, please put it in the gpu-calendar. Checkpoint every 2 hours in case we need to "
         "preempt for a hotfix model."),
        ("U10NORA", "2025-05-19 10:03",
         "Booked June 2-6, 6 nodes. Checkpoints go to s3://nw-ml-checkpoints/nora/v5/."),
    ]),
    ("ml-perception", [
        ("U15LUKAS", "2025-02-18 13:00",
         "A prospect asks whether PalletNet detects pallets wrapped in black stretch film. Do we have numbers?"),
        ("U05AISHA", "2025-02-18 13:14",
         "Yes, since v4. Recall on the black-wrap subset of warehouse-val-2025 is 0.91 (v3 had 0.74). Clear wrap is weaker at "
         "0.83; that's one of the v5 goals."),
        ("U10NORA", "2025-02-18 13:20",
         "If they ask about test coverage: the black-wrap subset has 3,900 images from 11 sites."),
    ]),
    ("release", [
        ("U02JOSE", "2025-04-07 17:05",
         "Release 2025.15.0 is cut. Release captain this week: <@U13KENJI>. Staging deploy in progress."),
        ("U04MARCUS", "2025-04-08 10:10",
         "Fleet version report for the go/no-go: 98.6% of robots are on NWOS 6.1 or newer and 1.4% still on 6.0, which is still "
         "supported. 6.0 drops out of support once 6.3 reaches the full fleet."),
        ("U13KENJI", "2025-04-08 17:02",
         "Go for Wednesday. Two migrations in this release, both expand-only, reviewed."),
    ]),
    ("release", [
        ("U16GRACE", "2025-12-01 18:00",
         "Change freeze reminder: 15 Dec through 2 Jan. Details are in my mail on eng-announce. SEV1/SEV2 hotfixes only, with "
         "my approval (or <@U01DANA>'s if I'm unreachable)."),
        ("U02JOSE", "2025-12-01 18:12",
         "Last train before the freeze is 2025.50, production rollout Wednesday 10 Dec. Anything not merged by the Monday 8 Dec "
         "cut waits until January."),
        ("U01DANA", "2025-12-01 18:40",
         "Platform won't make Kubernetes or Terraform changes in production from Friday 12 Dec, so we have a quiet weekend "
         "before the freeze starts."),
    ]),
    # Attribution traps: Sam's rota idea is echoed ("+1, like Sam said") by Marcus and Dana; Tom's spikes by Olu.
    ("office-portland", [
        ("join", "U19SAM", "2025-07-01 16:20"),
        ("U19SAM", "2025-07-01 16:30",
         "Hi all :seedling: Last year the plants on the 3rd floor did not survive the week around the Fourth of July. "
         "Proposal: a watering rota where each team takes one week at a time, watering on Monday and Thursday, and the "
         "team's name goes into the Office PDX calendar. Watering cans and plant food are in the kitchen cupboard under the "
         "coffee machine. Which team takes week 1 (starting 7 July)?"),
        ("U04MARCUS", "2025-07-01 16:41",
         "+1, like Sam said, one team per week is the easiest way to do it. Firmware takes week 1."),
        ("U14EMILY", "2025-07-01 16:55",
         "Support can do week 2. What about the big fiddle-leaf fig by reception? I think it needs less water than the "
         "others, last summer it got drowned."),
        ("U19SAM", "2025-07-01 17:10",
         "Good catch <@U14EMILY>. The fig only gets water on Thursdays, half a can. I'll hang a tag on it."),
        ("U17TOM", "2025-07-01 17:32",
         "Finance takes week 3. For the holiday weeks when nobody is in, can we get self-watering spikes? A pack of 12 is "
         "about $24, I can approve that from the office budget."),
        ("U11OLU", "2025-07-02 08:05",
         "+1 to Tom's idea with the spikes. The small pots could also go on trays in the test lab sink over long weekends."),
        ("U01DANA", "2025-07-02 09:20",
         "Platform takes week 4. And like Sam said, Monday and Thursday is plenty: I killed my desk cactus by watering it "
         "every day :sweat_smile:"),
        ("U19SAM", "2025-07-02 10:00",
         "Rota is in the calendar: Firmware, Support, Finance, Platform, then IT and Security from August. Spikes are "
         "ordered, thanks <@U17TOM>."),
    ]),
    ("office-portland", [
        ("U19SAM", "2025-07-28 09:15",
         "Quick report from the 3rd floor: the rota skipped week 3 and the ferns by the window are bone dry. I watered them "
         "this morning. The big fig is fine, the tag works."),
        ("U17TOM", "2025-07-28 09:40",
         "Sorry, that one is on Finance, it was quarter close. We'll swap into week 7 to make up for it."),
    ]),
]

# A bot message (skipped by loaders) for realism.
SLACK_BOT = ("infra", "2025-03-13 15:47", "U90PDBOT",
             "Triggered: [platform-primary] Drain of ip-10-40-12-7 exceeded 15m (PDB kafka-consumer-pdb) on prod-eu-central-1")


def _ts(s: str, seq: int) -> str:
    return f"{int(_dt(s).timestamp())}.{seq:06d}"


def write_slack() -> Path:
    root = DEMO / "slack"
    root.mkdir(parents=True, exist_ok=True)
    users = []
    for uid, uname, real, display, mail, bot in SLACK_USERS:
        profile = {"real_name": real, "display_name": display, "real_name_normalized": real}
        if mail:
            profile["email"] = mail
        users.append({"id": uid, "team_id": "T0NORTHW", "name": uname, "real_name": real, "deleted": False,
                      "is_bot": bot, "tz": "Europe/Berlin" if uid in ("U02JOSE", "U05AISHA", "U06SOFIA", "U08BEN",
                                                                          "U10NORA", "U15LUKAS", "U18HANNAH")
                      else "America/Los_Angeles", "profile": profile})
    (root / "users.json").write_text(json.dumps(users, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    days: dict[tuple[str, str], list[dict]] = {}
    members: dict[str, set[str]] = {name: set() for _, name, _, _ in SLACK_CHANNELS}
    for channel, msgs in SLACK_THREADS:
        real = [m for m in msgs if m[0] != "join"]
        parent_ts = _ts(real[0][1], 100)
        for m in msgs:
            if m[0] == "join":
                _, uid, when = m
                days.setdefault((channel, when[:10]), []).append(
                    {"type": "message", "subtype": "channel_join", "user": uid, "text": f"<@{uid}> has joined the channel",
                     "ts": _ts(when, 50)})
                members[channel].add(uid)
        for i, (uid, when, text) in enumerate(real):
            ts = parent_ts if i == 0 else _ts(when, 100 + i)
            msg = {"type": "message", "user": uid, "text": text, "ts": ts}
            if len(real) > 1:
                msg["thread_ts"] = parent_ts
                if i == 0:
                    replies = [(u, _ts(w, 100 + j)) for j, (u, w, _) in enumerate(real) if j > 0]
                    msg["reply_count"] = len(replies)
                    msg["reply_users_count"] = len({u for u, _ in replies})
                    msg["reply_users"] = sorted({u for u, _ in replies})
                    msg["latest_reply"] = replies[-1][1]
                    msg["replies"] = [{"user": u, "ts": t} for u, t in replies]
                else:
                    msg["parent_user_id"] = real[0][0]
            members[channel].add(uid)
            days.setdefault((channel, when[:10]), []).append(msg)
    channel, when, uid, text = SLACK_BOT
    days.setdefault((channel, when[:10]), []).append(
        {"type": "message", "subtype": "bot_message", "bot_id": "B90PD", "username": "PagerDuty", "text": text,
         "ts": _ts(when, 900)})

    channels = []
    for cid, name, created, purpose in SLACK_CHANNELS:
        everyone = sorted(members[name] | {"U01DANA", "U03PRIYA", "U16GRACE"})
        channels.append({"id": cid, "name": name, "created": int(_dt(created).timestamp()), "creator": "U01DANA",
                         "is_archived": False, "is_general": False, "members": everyone,
                         "topic": {"value": "", "creator": "", "last_set": 0},
                         "purpose": {"value": purpose, "creator": "U01DANA", "last_set": int(_dt(created).timestamp())}})
    (root / "channels.json").write_text(json.dumps(channels, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for _, name, _, _ in SLACK_CHANNELS:  # drop day files from earlier runs (dates may have changed)
        for old in (root / name).glob("*.json"):
            old.unlink()
    for (channel, day), msgs in sorted(days.items()):
        msgs.sort(key=lambda m: float(m["ts"]))
        (root / channel).mkdir(exist_ok=True)
        (root / channel / f"{day}.json").write_text(json.dumps(msgs, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return root


def slack_thread_ids() -> list[str]:
    return [f"{ch}/{_ts([m for m in msgs if m[0] != 'join'][0][1], 100)}" for ch, msgs in SLACK_THREADS]


# =============================================================================================
# mbox
# =============================================================================================

# (message_id, from, date "YYYY-MM-DD HH:MM", subject, parent message_id or None, body)
MAILS = [
    ("atlas-cutover-20240828@northwind.example", '"Watanabe, Kenji" <kenji.watanabe@northwind.example>',
     "2024-08-28 16:00", "Harbor database cutover to Aurora on Saturday 21 September", None,
     """Hi all,

Project Atlas is ready for the production cutover. Harbor moves from the PostgreSQL 12 cluster
to Aurora PostgreSQL 15 on Saturday 21 September 2024, starting at 06:00 UTC.

What to expect:

- Harbor goes read-only for the cutover. Our target is under 10 minutes.
- Logical replication has been running since August; lag is under 2 seconds.
- The old cluster stays available, without writes, for 30 days as a fallback.

Please do not schedule deploys or migrations for that weekend.

Kenji"""),
    ("atlas-cutover-reply1@northwind.example", '"Lee, Dana" <Dana.Lee@Northwind.Example>',
     "2024-08-28 17:20", "Re: Harbor database cutover to Aurora on Saturday 21 September",
     "atlas-cutover-20240828@northwind.example",
     """I'll be incident commander for the cutover, with Kenji as technical lead. Customer Support
will post the maintenance notice on Statuspage 5 days ahead, as the SLA requires.

Kenji, can you confirm what customers and robots will see during the read-only window?

Dana"""),
    ("atlas-cutover-reply2@northwind.example", '"Watanabe, Kenji" <kenji.watanabe@northwind.example>',
     "2024-08-29 08:05", "Re: Harbor database cutover to Aurora on Saturday 21 September",
     "atlas-cutover-reply1@northwind.example",
     """Customers see a read-only banner in the web app and cannot create missions for the duration.
Robots keep executing their current missions and buffer telemetry locally, then upload it when
Harbor is writable again. We rehearsed twice on staging: 9 and 7 minutes of read-only time.

Kenji"""),
    ("atlas-cutover-reply3@northwind.example", '"Álvarez, José" <jose.alvarez@northwind.example>',
     "2024-08-29 09:30", "Re: Harbor database cutover to Aurora on Saturday 21 September",
     "atlas-cutover-reply2@northwind.example",
     """CI has run integration tests against the postgres:15 image since July, so nothing changes for
CI on the day. I'll block merges of pull requests that touch migrations from Friday 20 September
12:00 UTC until Kenji gives the all-clear.

José"""),

    ("k8s-130-prod-20250305@northwind.example", '"Lee, Dana" <dana.lee@northwind.example>',
     "2025-03-05 09:00", "Kubernetes 1.30 production upgrades: 11, 13 and 18 March", None,
     """Hi engineering,

Staging has soaked on Kubernetes 1.30 for 7 days without regressions, so we are moving on to
production. All upgrades run in the platform window, Tuesday 15:00-18:00 UTC, except the
Thursday slot for eu-central-1:

- Tue 11 March: prod-ap-southeast-2
- Thu 13 March: prod-eu-central-1
- Tue 18 March: prod-us-east-1 and prod-us-west-2

Expect no customer impact. If your service has a PodDisruptionBudget that allows zero
disruptions, fix it before 11 March or tell me which window you want to be around for.

Dana"""),
    ("k8s-130-prod-reply1@northwind.example", '"Shankar, Ravi" <ravi.shankar@northwind.example>',
     "2025-03-05 11:40", "Re: Kubernetes 1.30 production upgrades: 11, 13 and 18 March",
     "k8s-130-prod-20250305@northwind.example",
     """The Cluster Upgrade dashboard now has a panel for evictions blocked by PDBs, so we can see a
stuck drain well before it reaches the 15-minute timeout.

Ravi"""),
    ("k8s-130-prod-reply2@northwind.example", '"O\'Brien, Emily" <Emily.OBrien@northwind.example>',
     "2025-03-05 15:10", "Re: Kubernetes 1.30 production upgrades: 11, 13 and 18 March",
     "k8s-130-prod-reply1@northwind.example",
     """Support will have an extra Tier 2 engineer on shift during each window. Please post in
#support-eng when each cluster is done, so we can close the internal notice.

Emily"""),

    ("oncall-comp-20250320@northwind.example", '"Kim, Grace" <grace.kim@northwind.example>',
     "2025-03-20 17:00", "On-call compensation changes from 1 April 2025", None,
     """Hi all,

Starting 1 April 2025 the on-call stipend goes up:

- United States: from $300 to $400 per week
- Germany: from EUR 260 to EUR 350 per week

It applies to primary and secondary shifts alike and is paid with the next payroll after your
shift. The rules for night pages (start late the next day) stay as they are.

Grace"""),
    ("oncall-comp-reply1@northwind.example", '"Shankar, Ravi" <ravi.shankar@northwind.example>',
     "2025-03-20 18:25", "Re: On-call compensation changes from 1 April 2025",
     "oncall-comp-20250320@northwind.example",
     """Thanks Grace! Does the public holiday bonus still apply on top of the new stipend?

Ravi"""),
    ("oncall-comp-reply2@northwind.example", '"Kim, Grace" <grace.kim@northwind.example>',
     "2025-03-21 08:10", "Re: On-call compensation changes from 1 April 2025",
     "oncall-comp-reply1@northwind.example",
     """Yes. Each public holiday during your on-call week adds $100 (EUR 90), on top of the weekly
stipend. Ravi, please update the on-call handbook.

Grace"""),

    ("palletnet-v5-freeze-20250428@northwind.example", '"Lindqvist, Nora" <nora.lindqvist@northwind.example>',
     "2025-04-28 08:30", "PalletNet v5 dataset freeze on 15 May", None,
     """Hi all,

The training set for PalletNet v5 (warehouse-train-2025-2) will be frozen on 15 May 2025 at
23:59 UTC. Frames collected after that go into the next set. So far the set has about 420,000
newly labeled images, including 60,000 with clear stretch wrap.

If your team wants special cases in the evaluation set, tell me by 9 May.

Nora"""),
    ("palletnet-v5-freeze-reply1@northwind.example", '"Okafor, Aisha" <aisha.okafor@northwind.example>',
     "2025-04-28 10:00", "Re: PalletNet v5 dataset freeze on 15 May",
     "palletnet-v5-freeze-20250428@northwind.example",
     """Thanks Nora. Anything that misses the freeze goes into the v5.1 set in the autumn; we will not
move the date, because training is booked on gpu-pool-a from 2 June.

Aisha"""),
    ("palletnet-v5-freeze-reply2@northwind.example", '"Meyer, Lukas" <lukas.meyer@northwind.example>',
     "2025-04-29 07:45", "Re: PalletNet v5 dataset freeze on 15 May",
     "palletnet-v5-freeze-reply1@northwind.example",
     """Two POC sites in Poland use blue plastic pallets, which we rarely see elsewhere. Can frames
from them make it into the set?

Lukas"""),
    ("palletnet-v5-freeze-reply3@northwind.example", '"Lindqvist, Nora" <nora.lindqvist@northwind.example>',
     "2025-04-30 12:00", "Re: PalletNet v5 dataset freeze on 15 May",
     "palletnet-v5-freeze-reply2@northwind.example",
     """Yes, the POC agreements allow data collection. I added 6,200 frames from the two sites; they
are in the labeling queue and will be back before the freeze.

Nora"""),
]


def _quote(mid: str, mails: list[tuple] = MAILS) -> str:
    m = next(x for x in mails if x[0] == mid)
    name = email.utils.parseaddr(m[1])[0]
    if "," in name:  # "Last, First" -> "First Last" in the attribution line
        last, first = [p.strip() for p in name.split(",", 1)]
        name = f"{first} {last}"
    when = email.utils.format_datetime(_dt(m[2]))
    body = m[5]
    return f"On {when}, {name} wrote:\n" + "\n".join("> " + line if line else ">" for line in body.splitlines())


def _encode_addr(sender: str) -> str:
    """RFC 2047-encode a non-ASCII display name, as mail clients do ("Álvarez, José" -> =?utf-8?q?...?=)."""
    name, addr = email.utils.parseaddr(sender)
    if name.isascii():
        return sender
    return f"{email.header.Header(name, 'utf-8').encode()} <{addr}>"


def write_mbox(mails: list[tuple] = MAILS, name: str = "eng-announce", about: str = "Engineering announcements",
               quote_parent: bool = True) -> Path:
    """One mailing list archive, mail/<name>.mbox. `quote_parent`: append the parent's whole body quoted
    ("On ..., X wrote:" + "> " lines) to each reply; otherwise the bodies carry their own quoting."""
    out = DEMO / "mail" / f"{name}.mbox"
    out.parent.mkdir(parents=True, exist_ok=True)
    chunks = []
    refs: dict[str, list[str]] = {}
    for mid, sender, when, subject, parent, body in mails:
        d = _dt(when)
        addr = email.utils.parseaddr(sender)[1]
        lines = [f"From {addr} {d:%a %b} {d.day:2d} {d:%H:%M:%S %Y}",  # asctime form, e.g. "Wed Mar  5 09:00:00 2025"
                 f"From: {_encode_addr(sender)}",
                 f"To: {name}@northwind.example",
                 f"Date: {email.utils.format_datetime(d)}",
                 f"Subject: {subject}",
                 f"Message-ID: <{mid}>"]
        if parent:
            refs[mid] = refs[parent] + [parent]
            lines.append(f"In-Reply-To: <{parent}>")
            lines.append("References: " + " ".join(f"<{r}>" for r in refs[mid]))
        else:
            refs[mid] = []
        lines += [f"List-Id: {about} <{name}.northwind.example>",
                  f"Archived-At: <https://lists.northwind.example/{name}/{mid.split('@')[0]}>",
                  "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit", ""]
        text = body
        if parent and quote_parent:
            text = body + "\n\n" + _quote(parent, mails)
        text += f"\n\n-- \n{name} mailing list: https://lists.northwind.example/{name}"
        # mbox "From " escaping of body lines
        text = "\n".join((">" + ln) if ln.startswith("From ") else ln for ln in text.splitlines())
        chunks.append("\n".join(lines) + "\n" + text + "\n")
    out.write_text("\n".join(chunks), encoding="utf-8")
    return out


def mbox_thread_ids() -> list[str]:
    return [m[0] for m in MAILS + PLATFORM_MAILS if m[4] is None]


# The Platform team's own list (mail/platform-team.mbox). Replies quote what they answer inline, the way
# people actually reply (and one top-posts Outlook-style), instead of the whole parent appended at the end.
# Attribution traps: Kenji's reply quotes José's words, Dana's quotes Kenji's.
PLATFORM_MAILS = [
    ("bazel-cache-s3-20250512@northwind.example", '"Álvarez, José" <jose.alvarez@northwind.example>',
     "2025-05-12 08:30", "Moving the Bazel remote cache to S3", None,
     """Hi Platform,

Our Bazel remote cache is a single bazel-remote instance, an i4i.2xlarge in us-west-2 with 1.8 TB
of local NVMe. It has served us well, but we have outgrown it. The disk fills up every Friday
afternoon and eviction starts thrashing, so the cache hit rate on pull requests drops from 85% to
about 60% until the weekend. Friday pipelines are visibly slower, and the instance is a single
point of failure: when AWS retired its host in March, every build ran uncached for two hours.

Proposal:

- Run bazel-remote as a stateless front in the tools-ci cluster, 3 replicas behind the existing
  bazel-cache.northwind.example name, with an S3 bucket as the backing store.
- A lifecycle rule deletes cache entries after 30 days; nobody needs older ones.
- Cutover on Monday 2 June. Rollback is a one-line change of the --remote_cache flag back to the
  old host, which we keep running until 30 June.

Cost: roughly $1,900 a month, instead of $2,300 for the instance and its snapshots.

Comments by Friday, please.

José"""),
    ("bazel-cache-s3-reply1@northwind.example", '"Watanabe, Kenji" <kenji.watanabe@northwind.example>',
     "2025-05-12 17:05", "Re: Moving the Bazel remote cache to S3", "bazel-cache-s3-20250512@northwind.example",
     """On Mon, 12 May 2025 at 08:30, José Álvarez wrote:
> The disk fills up every Friday
> afternoon and eviction starts thrashing, so the cache hit rate on pull requests drops from 85% to
> about 60% until the weekend.

That matches what I see: the database integration jobs take twice as long on Fridays.

Strong +1 for the move. One thing to get right: put the bucket in us-west-2, next to tools-ci.
Cross-region reads would cost more than the instance we are replacing, and they add 60-80 ms to
every cache lookup. Please also turn on S3 request metrics from day one, so we can see what the
cache really costs.

Kenji"""),
    ("bazel-cache-s3-reply2@northwind.example", "Dana Lee <dana.lee@northwind.example>",
     "2025-05-13 09:10", "Re: Moving the Bazel remote cache to S3", "bazel-cache-s3-reply1@northwind.example",
     """Kenji Watanabe wrote:
> put the bucket in us-west-2, next to tools-ci.
> Cross-region reads would cost more than the instance we are replacing

Agreed, and the bucket goes into Terraform under platform/ci-cache like everything else.

One more thing before we cut over: let's run the old and the new cache side by side for a week,
with every build writing to both, and compare hit rates and p95 lookup times on the CI dashboard.
If the new one is not at least as good on a Friday, we wait.

Dana"""),
    ("bazel-cache-s3-reply3@northwind.example", '"Álvarez, José" <jose.alvarez@northwind.example>',
     "2025-05-13 11:45", "RE: Moving the Bazel remote cache to S3", "bazel-cache-s3-reply2@northwind.example",
     """Sounds good. Parallel week from 26 May to 1 June, and the cutover stays on 2 June if the numbers
hold. Ravi, could you add the panels?

José

Sent from my phone

-----Original Message-----
From: Dana Lee <dana.lee@northwind.example>
Sent: Tuesday, 13 May 2025 09:10
Subject: Re: Moving the Bazel remote cache to S3

One more thing before we cut over: let's run the old and the new cache side by side for a week,
with every build writing to both, and compare hit rates and p95 lookup times on the CI dashboard."""),
    ("bazel-cache-s3-reply4@northwind.example", '"Shankar, Ravi" <ravi.shankar@northwind.example>',
     "2025-05-14 16:20", "Re: Moving the Bazel remote cache to S3", "bazel-cache-s3-reply3@northwind.example",
     """Done. The CI dashboard in Grafana now has a "Remote cache" row: hit rate per runner pool, p95
lookup time and S3 request rate, old and new cache side by side. There is also a ticket-severity
alert when the hit rate on ci-default stays below 70% for an hour.

Ravi"""),
    ("bazel-cache-s3-done-20250603@northwind.example", '"Álvarez, José" <jose.alvarez@northwind.example>',
     "2025-06-03 10:00", "Bazel remote cache is on S3 now", None,
     """Hi Platform,

The cutover happened yesterday as planned and nobody noticed, which is the point. During the
parallel week the new cache matched the old one on hit rate and was 4 ms faster at p95. Last
Friday the hit rate stayed at 84% all afternoon, where the old cache used to drop to about 60%.

The old instance keeps running until 30 June, then it goes. Thanks Kenji, Dana and Ravi.

José"""),
]


# =============================================================================================
# JSONL forum threads
# =============================================================================================

FORUM = [
    {"id": "t-101", "title": "How do I get access to the staging cluster?",
     "author": "Alex Morgan <alex.morgan@contractors.northwind.example>", "date": "2025-02-03T09:12:00Z",
     "tags": ["kubernetes", "access", "staging"],
     "body": "I'm a Platform contractor starting on the Terraform clean-up. I need kubectl access to the staging clusters. Who approves that?",
     "comments": [
         {"id": "c1", "author": "Dana Lee <dana.lee@northwind.example>", "date": "2025-02-03T09:40:00Z",
          "body": "Request the k8s-staging-dev group in ServiceDesk under Access > Kubernetes > staging. Normally your team lead approves; "
                  "for contractors it is your Northwind sponsor, which is me in your case.",
          "comments": [
              {"id": "c2", "author": {"name": "Mei Tanaka", "email": "mei.tanaka@northwind.example"}, "date": "2025-02-03T10:05:00Z",
               "body": "And for production: nothing in your first 30 days, and after that only through Teleport just-in-time requests. "
                       "Contractors need a Platform sponsor to request k8s-prod-readonly.",
               "comments": [
                   {"id": "c3", "author": "Alex Morgan", "date": "2025-02-03T10:30:00Z",
                    "body": "Thanks both, the staging request was approved in 20 minutes.", "comments": []}]}]},
     ]},
    {"id": "t-102", "title": "Can I expense a coworking day pass?",
     "author": "Lukas Meyer <lukas.meyer@northwind.example>", "date": "2024-11-07T08:00:00Z",
     "tags": ["expenses", "remote-work"],
     "body": "When I visit customers in Hamburg I often work a day from a coworking space. Can I expense the day pass, and under which category?",
     "comments": [
         {"id": "c1", "author": "Tom Becker <tom.becker@northwind.example>", "date": "2024-11-07T15:20:00Z",
          "body": "Yes, when you are travelling or your home internet is down: up to $40 (EUR 35) per day, at most 8 days per month, "
                  "under the category Workspace in Expensa. A regular coworking membership is a procurement request, not an expense.",
          "comments": [
              {"id": "c2", "author": "Hannah Schmidt <hannah.schmidt@northwind.example>", "date": "2024-11-07T16:00:00Z",
               "body": "> under the category Workspace in Expensa\nNote that this is separate from the home office stipend, which is "
                       "a one-time amount for equipment and does not cover coworking.",
               "comments": []}]},
         {"id": "c3", "author": "Ben Carter <ben.carter@northwind.example>", "date": "2024-11-08T07:30:00Z",
          "body": "If you are in Berlin anyway, the office has hot desks on the 3rd floor, no booking needed.", "comments": []},
     ]},
    {"id": "t-103", "title": "OTA rollout stuck at the 10% stage for three days?",
     "author": "Emily O'Brien <Emily.OBrien@northwind.example>", "date": "2025-04-22T14:00:00Z",
     "tags": ["ota", "firmware", "support"],
     "body": "Two customers ask why only some of their robots got NWOS 6.3 and the rest have been waiting since Saturday. "
             "Is the rollout stuck?",
     "comments": [
         {"id": "c1", "author": "Marcus Chen <marcus.chen@northwind.example>", "date": "2025-04-22T15:10:00Z",
          "body": "Not stuck, paused on purpose: the Early stage (10%) gate failed with 0.7% failed installs and rollbacks against "
                  "the 0.5% threshold. Almost all of them are robots at one site that failed the localization check after reboot. "
                  "The rollout stays paused until we understand it.",
          "comments": [
              {"id": "c2", "author": "Olu Adeyemi <olumide.adeyemi@northwind.example>", "date": "2025-04-23T09:45:00Z",
               "body": "Found it: that site had moved its reflectors, so localization converged slowly and the post-install health "
                       "check timed out after 90 seconds. NWOS 6.3.1 raises the timeout to 180 seconds; rollout resumes with 6.3.1.",
               "comments": [
                   {"id": "c3", "author": "Emily O'Brien", "date": "2025-04-23T10:00:00Z",
                    "body": "Thanks, I'll update both customers and link the tickets to the release.", "comments": []}]}]},
         {"id": "c4", "author": "Grace Kim <grace.kim@northwind.example>", "date": "2025-04-23T16:00:00Z",
          "body": "A good example of the stage gate doing its job: only the handful of Early-stage robots at that site were affected, "
                  "not the whole site.", "comments": []},
     ]},
    {"id": "t-104", "title": "Which Python version should new services use?",
     "author": "Nora Lindqvist <nora.lindqvist@northwind.example>", "date": "2025-03-03T12:00:00Z",
     "tags": ["python", "developer-tooling", "services"],
     "body": "I'm turning the dataset export script into a small service. Which Python version and base image should I use?",
     "comments": [
         {"id": "c1", "author": "José Álvarez <jose.alvarez@northwind.example>", "date": "2025-03-03T12:30:00Z",
          "body": "Python 3.12, starting from the nw-python:3.12-slim base image. Services still on 3.11 will be upgraded by the end "
                  "of 2025; the base image gets security patches every Monday.",
          "comments": [
              {"id": "c2", "author": "Grace Kim <grace.kim@northwind.example>", "date": "2025-03-03T13:15:00Z",
               "body": "For latency-critical paths such as mission dispatch or robot check-in we use Go instead. A dataset export "
                       "service is fine in Python.",
               "comments": []}]},
     ]},
    {"id": "t-105", "title": "Can I use my personal phone for Slack and mail?",
     "author": "Tom Becker <tom.becker@northwind.example>", "date": "2024-09-12T16:00:00Z",
     "tags": ["it", "byod", "mobile", "intune"],
     "body": "I'd rather not carry two phones. Is it allowed to put Slack and Outlook on my personal phone?",
     "comments": [
         {"id": "c1", "author": "Priya Raman <priya.raman@northwind.example>", "date": "2024-09-12T16:45:00Z",
          "body": "Yes, after you enroll the phone in Intune through the Company Portal app. Intune only manages a separate work "
                  "profile; IT cannot see your personal apps, photos or messages.",
          "comments": [
              {"id": "c2", "author": "Mei Tanaka <mei.tanaka@northwind.example>", "date": "2024-09-12T17:10:00Z",
               "body": "If the phone gets lost, report it within 1 hour, just like a laptop. We only wipe the work profile.",
               "comments": []}]},
         {"id": "c3", "author": "Ben Carter <ben.carter@northwind.example>", "date": "2024-09-13T07:50:00Z",
          "body": "Minimum versions: iOS 17 or Android 13. Older phones cannot enroll.", "comments": []},
     ]},
]


# Another forum category (forum/dev-help.jsonl), exported with its votes and accepted answers (the loader
# ignores those fields). Attribution trap: one person asks, two others answer, the asker thanks one of them.
DEV_HELP = [
    {"id": "t-201", "title": "Can I replay a customer's mission log in the simulator?",
     "author": "Emily O'Brien <Emily.OBrien@northwind.example>", "date": "2025-06-03T15:20:00Z",
     "tags": ["simulator", "support", "robots"], "votes": 6, "views": 212,
     "body": "A customer in Leeds reports that one of their NR-40s stopped in the middle of aisle 14 three nights in a row, "
             "always around 02:40, and started again on its own after about a minute. Nothing in the ticket explains it. Is "
             "there a way to replay the robot's mission log in the simulator myself, so I can see what it saw, instead of "
             "asking engineering to dig through raw logs every time?",
     "comments": [
         {"id": "c1", "author": "Olu Adeyemi <olumide.adeyemi@northwind.example>", "date": "2025-06-03T16:05:00Z",
          "votes": 9, "accepted": True,
          "body": "Yes. Download the mission log from the robot's page in Harbor (Logs > Missions, a .nwlog file) together "
                  "with the site map from the same page, then run `nwsim replay --map site-map.yaml mission.nwlog`. Replays "
                  "run at 4x speed by default; use `--speed 1` to watch the stop in real time, and switch on the "
                  "safety-field layer to see what triggered it. This works for robots on NWOS 6.1 and newer.",
          "comments": [
              {"id": "c2", "author": "Emily O'Brien", "date": "2025-06-04T09:30:00Z", "votes": 2,
               "body": "Worked, thanks! A pallet overhang in aisle 14 reached into the safety field whenever the night "
                       "shift restocked. The customer is moving that pallet.",
               "comments": []}]},
         {"id": "c3", "author": "Marcus Chen <marcus.chen@northwind.example>", "date": "2025-06-03T17:40:00Z", "votes": 3,
          "body": "For anything longer than an hour, submit the replay to the fleet-sim cluster instead of running it on "
                  "your laptop: `nwsim submit --map site-map.yaml mission.nwlog`. Results show up in #fleet-sim. Laptop "
                  "replays tend to run out of memory past about 90 minutes of log.",
          "comments": []},
     ]},
]


def write_forum(threads: list[dict] = FORUM, name: str = "qa-threads") -> Path:
    out = DEMO / "forum" / f"{name}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)

    def add_urls(thread_url: str, comments: list[dict]) -> None:
        for c in comments:
            c.setdefault("url", f"{thread_url}#{c['id']}")
            add_urls(thread_url, c.get("comments", []))

    lines = []
    for t in threads:
        num = t["id"].split("-")[1]
        t = {"id": t["id"], "title": t["title"], "url": f"https://forum.northwind.example/t/{num}", **{
            k: v for k, v in t.items() if k not in ("id", "title")}}
        add_urls(t["url"], t["comments"])
        lines.append(json.dumps(t, ensure_ascii=False))
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def main() -> None:
    for p in (write_wxr(), write_slack(), write_mbox(),
              write_mbox(PLATFORM_MAILS, "platform-team", "Platform team", quote_parent=False),
              write_forum(), write_forum(DEV_HELP, "dev-help")):
        print(f"wrote {p.relative_to(DEMO.parent)}")
    print("slack threads:", *slack_thread_ids(), sep="\n  ")
    print("mbox threads:", *mbox_thread_ids(), sep="\n  ")


if __name__ == "__main__":
    main()
