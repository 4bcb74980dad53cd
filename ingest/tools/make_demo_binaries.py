#!/usr/bin/env python3
"""Generate the binary documents (PDF, DOCX, PPTX) of the bundled demo corpus.

The text of these documents lives in this script. Output is deterministic: fixed dates, reportlab
``invariant=1`` with ``SOURCE_DATE_EPOCH`` set to each document's date, and DOCX/PPTX zip members
rewritten with a fixed timestamp. Run from anywhere:

    python ingest/tools/make_demo_binaries.py

The generated files are committed; re-run this script after editing the text below.
"""
from __future__ import annotations

import datetime as dt
import io
import os
import zipfile
from pathlib import Path

DEMO = Path(__file__).resolve().parent.parent / "demo"

# ---------------------------------------------------------------------------------------------
# Content. A section is (heading, [blocks]); a block is a paragraph string or a list of bullets.
# Headings starting with "## " are second-level headings.
# ---------------------------------------------------------------------------------------------

PDFS = [
    {
        "path": "handbook/travel-policy.pdf",
        "title": "Travel Policy",
        "author": "Northwind Finance Team",
        "subject": "Business travel booking, approvals, flights, hotels and per diem",
        "date": dt.datetime(2024, 10, 1, 9, 0, 0),
        "intro": "Effective 1 October 2024. Owner: Tom Becker, Finance Controller. This policy applies to all "
                 "employees and contractors travelling on Northwind Robotics business. Expenses that are not "
                 "specific to travel are covered by the Expense Policy.",
        "sections": [
            ("Before you travel", [
                "Travel should have a clear business purpose: a customer visit, a proof of concept, a team week, "
                "a conference you are speaking at or attending with your learning budget, or a trade show. "
                "Consider whether a video call would do.",
                ["Domestic travel (within the United States, or within Germany) needs approval from your manager.",
                 "International travel, including any trip between the US and Europe, needs approval from your VP.",
                 "Approval is requested in TripHub when you book; the trip is not ticketed until it is approved.",
                 "Travel to countries on the Security team's restricted list needs an extra approval from Security."],
            ]),
            ("Booking", [
                "All flights, hotels and rental cars are booked through TripHub, our travel booking tool, at "
                "https://travel.northwind.example. Bookings made outside TripHub are not reimbursed unless TripHub "
                "could not offer the same trip, and you must explain why in the expense.",
                "Book at least 14 days before departure. Late bookings are allowed for customer emergencies "
                "but are reported to your VP each month.",
                "TripHub shows our negotiated hotel rates and the policy limits; bookings above the limits are "
                "flagged and need your manager's approval with a reason.",
            ]),
            ("Flights", [
                ["Economy class for flights under 6 hours.",
                 "Premium economy is allowed for flights of 6 hours or more (scheduled flight time of a single leg).",
                 "Business class is never booked, except with written approval from the CFO for medical reasons.",
                 "Choose the lowest reasonable fare within two hours of your preferred departure time.",
                 "One checked bag is covered; extra baggage only for equipment such as demo kits or robot parts."],
            ]),
            ("Trains and ground transport", [
                "In Germany and within Europe, take the train for trips under 4 hours door to door. Second class "
                "is standard; first class is allowed for train journeys longer than 4 hours.",
                "Taxis and ride-hailing are fine to and from airports, stations and customer sites. Rental cars "
                "are compact class unless you transport equipment or three or more colleagues travel together. "
                "Always decline the rental company's insurance: our corporate policy covers rental cars booked in TripHub.",
            ]),
            ("Hotels", [
                ["United States: up to $250 per night, or $325 per night in New York City and San Francisco.",
                 "Germany: up to EUR 180 per night.",
                 "Other countries: the TripHub limit for the city, which is based on the government rate.",
                 "Stay at the hotels with negotiated rates near our offices when you visit Portland or Berlin.",
                 "Airbnb and similar rentals are allowed when cheaper than the hotel limit and booked through TripHub."],
            ]),
            ("Meals and per diem", [
                "Meals while travelling are covered by a daily per diem instead of receipts: $75 per day in the "
                "United States and EUR 60 per day in Germany. On the first and last day of a trip you receive "
                "75% of the per diem. Meals that are provided (customer dinners, conference lunches) reduce the "
                "per diem by the German statutory rates or by $20 per meal in the US.",
                "Customer meals that you pay for are expenses, not per diem, and follow the Expense Policy limit "
                "of $100 per person.",
            ]),
            ("Safety and insurance", [
                "All business trips booked in TripHub are covered by the company travel insurance, including "
                "medical emergencies and evacuation. The 24/7 travel assistance number is printed on the back of "
                "your corporate card and in TripHub.",
                "If you lose a laptop or phone while travelling, report it to Security within one hour in "
                "#security-incidents or by calling the security hotline.",
            ]),
            ("After the trip", [
                "Submit all travel expenses in Expensa within 30 days of your return. TripHub bookings appear in "
                "Expensa automatically; you only need to add the per diem and any other costs with receipts.",
                "Questions about this policy go to #finance-questions or to Tom Becker.",
            ]),
        ],
    },
    {
        "path": "security/pen-test-summary-2025.pdf",
        "title": "Penetration Test Summary 2025: Harbor Platform",
        "author": "Chris Doyle <chris.doyle@redline-security.example>",
        "subject": "Executive summary of the 2025 external penetration test of Harbor",
        "date": dt.datetime(2025, 6, 27, 12, 0, 0),
        "intro": "Prepared by Chris Doyle, Redline Security, for Northwind Robotics. Test period: 5 to 23 May 2025. "
                 "This summary may be shared with customers under NDA. The full report is available from "
                 "Northwind Security on request.",
        "sections": [
            ("Scope", [
                "The test covered the Harbor public API (v1 and v2), the customer web application, the robot "
                "check-in endpoints, the OTA download service (Relay) and the Teleport proxy. Physical robots and "
                "Northwind's corporate IT were out of scope. Testing was grey-box: testers received two customer "
                "tenants with admin and viewer accounts and the public API documentation.",
            ]),
            ("Summary of findings", [
                "We found no critical vulnerabilities. Overall, the Harbor platform shows a mature security "
                "posture: consistent authorisation checks, strong TLS configuration on the main endpoints and "
                "effective tenant isolation in almost all areas.",
                ["Critical: 0",
                 "High: 2",
                 "Medium: 5",
                 "Low: 7",
                 "Informational: 4"],
            ]),
            ("High findings", [
                "H-1: Insecure direct object reference in the site export endpoint. The endpoint "
                "/v2/sites/{site_id}/export checked that the caller was authenticated but not that the site "
                "belonged to the caller's tenant. An attacker with any valid API key and a guessed site ID could "
                "download another customer's site map export. Site IDs are random, which limits practical "
                "exploitation. Status: fixed by Northwind on 4 June 2025 and verified by Redline on 6 June 2025.",
                "H-2: Outdated TLS configuration on the legacy OTA endpoint. The legacy Relay endpoint used by "
                "robots on NWOS 5.x still accepted TLS 1.0 and 1.1 and weak cipher suites. Status: TLS 1.0 and "
                "1.1 disabled on 19 June 2025 after confirming that no robot still uses the legacy endpoint.",
            ]),
            ("Medium and low findings", [
                "The medium findings concern missing rate limiting on the password reset endpoint of the web "
                "application, verbose error messages that revealed internal hostnames, a missing "
                "Content-Security-Policy header on two legacy pages, session cookies without the SameSite "
                "attribute on the v1 web app, and an overly broad CORS policy on a deprecated v1 endpoint. The "
                "low findings are hardening recommendations listed in the full report.",
            ]),
            ("Remediation deadlines", [
                "Northwind's vulnerability management policy sets these deadlines from the date a finding is "
                "reported:",
                ["Critical: fix within 7 days.",
                 "High: fix within 30 days.",
                 "Medium: fix within 90 days.",
                 "Low: fix within 180 days or accept the risk with Security's sign-off."],
                "Both high findings were fixed within their deadline. Mei Tanaka (Northwind Security) tracks the "
                "remaining findings.",
            ]),
            ("Retest", [
                "A retest of all medium and high findings is scheduled for September 2025. The next full "
                "penetration test is planned for May 2026 and will include the Picker P3 prototypes.",
            ]),
        ],
    },
    {
        "path": "engineering/robot-safety-standard.pdf",
        "title": "Robot Safety Standard",
        "author": "Olumide Adeyemi <olumide.adeyemi@northwind.example>",
        "subject": "Speed limits, safety fields, emergency stop and safety-related changes for Northwind robots",
        "date": dt.datetime(2024, 9, 9, 8, 30, 0),
        "intro": "Owner: Olumide Adeyemi, Robotics Firmware. Approved by the Safety Review Board on 9 September 2024. "
                 "This standard applies to the NR-40 pallet mover, the Picker P2 and all prototypes, in customer "
                 "sites, in the Portland robot lab and in the Berlin test hall.",
        "sections": [
            ("Principles", [
                "Our robots share space with people, forklifts and other vehicles. Safety functions are designed "
                "to work even when the main computer, the network or Harbor fails. The safety functions run on "
                "the safety controller and the motor controller boards, not on NWOS.",
                "The design follows ISO 3691-4 for driverless industrial trucks. Every new robot model and every "
                "change to a safety function is assessed against it.",
            ]),
            ("Speed limits", [
                ["Shared zones (areas where people may walk): at most 1.5 m/s.",
                 "Robot-only aisles (fenced or access-controlled): at most 2.0 m/s.",
                 "When carrying a load above 1,000 kg: at most 1.2 m/s in all zones.",
                 "Near zone transitions, doors and crossings: at most 0.8 m/s, configured per site.",
                 "Zones and their limits are configured in Harbor by trained site admins and verified during commissioning."],
            ]),
            ("Safety fields", [
                "Each robot has two safety-rated lidar scanners that monitor protective fields around the robot. "
                "The protective field in front of the robot grows with speed; at 1.5 m/s it extends 1.2 m ahead "
                "of the robot. If an object enters the protective field, the robot performs a controlled stop. "
                "A larger warning field slows the robot down before the protective field is reached.",
            ]),
            ("Emergency stop", [
                "Every robot has at least two red emergency stop buttons, reachable from both sides. The hardware "
                "emergency stop cuts power to the drive and lift motors within 100 ms through a safety relay; it "
                "does not depend on software.",
                ["Never disable, bridge or cover an emergency stop button, not even for a test.",
                 "After an emergency stop, the robot only resumes after a person resets it at the robot and confirms in Harbor.",
                 "Wireless emergency stops are available for test halls and commissioning, in addition to the buttons."],
            ]),
            ("Changes to safety-related firmware", [
                "Safety-related firmware is any code that affects speed limits, safety fields, the emergency stop "
                "chain, brake control or load handling limits.",
                ["Every change needs reviews from two firmware engineers, at least one of whom is a member of the Safety Review Board.",
                 "The Safety Review Board signs off before the change is included in an NWOS release.",
                 "Safety-related changes are always tested on the hardware-in-the-loop rig and on lab robots, never first at a customer site.",
                 "Customer release notes must mention every safety-related change."],
            ]),
            ("Labs and customer sites", [
                "Anyone who enters the Portland robot lab, the Berlin test hall or a customer site's robot area "
                "must have completed the robot safety induction. Wear closed-toe shoes and a high-visibility vest, "
                "and stay on marked walkways.",
                "Report every safety incident and near miss within 24 hours in #safety, including ones where "
                "nobody was hurt. Near-miss reports are how we find problems before someone gets hurt.",
            ]),
        ],
    },
]

DOCXS = [
    {
        "path": "finance/procurement-policy.docx",
        "title": "Procurement Policy",
        "author": "Tom Becker",
        "subject": "How to buy goods, services and software at Northwind Robotics",
        "date": dt.datetime(2024, 8, 5, 10, 0, 0),
        "sections": [
            ("Procurement Policy", [
                "This policy explains how to buy goods and services for Northwind Robotics. It protects the "
                "company's money, makes sure every vendor is reviewed for security and legal risk, and keeps our "
                "books accurate. It does not cover travel and personal expenses, which are in the Travel and "
                "Expense policies.",
            ]),
            ("## Approval thresholds", [
                ["Below $1,000 (or EUR 900): buy with a corporate card or request it in BuyRight; your manager approves.",
                 "$1,000 to $5,000: a purchase order in BuyRight, approved by your manager and your budget owner.",
                 "Above $5,000: a purchase order in BuyRight with three quotes (or a written reason why fewer are "
                 "possible), approved by your manager, your VP and Finance.",
                 "Above $50,000: all of the above plus approval from the CFO, and a contract reviewed by Legal."],
                "Do not split a purchase into smaller orders to stay under a threshold.",
            ]),
            ("## Software and SaaS", [
                "Every new software product or SaaS service must pass a vendor security review by the Security team "
                "before the purchase, whatever the price, including free tools that process company data. Request "
                "the review in BuyRight; Security answers within 5 business days for standard vendors. Sofia Novak "
                "owns the vendor review process.",
                "Software subscriptions are never paid with personal cards or claimed as expenses.",
            ]),
            ("## Hardware and robot parts", [
                "Laptops, monitors and peripherals are ordered by IT through ServiceDesk, not through BuyRight. "
                "Robot parts and lab equipment for Robotics Firmware and ML/Perception are ordered through BuyRight "
                "with the project code of the project that needs them, for example KESTREL for the Picker P3.",
            ]),
            ("## Payment terms", [
                "Our standard payment terms are net 45 days from the invoice date. Invoices must show the purchase "
                "order number; invoices without one are returned to the vendor. Send invoices to "
                "invoices@northwind.example.",
            ]),
            ("## Contacts", [
                "Tom Becker (Finance Controller) owns this policy. Ask in #finance-questions.",
            ]),
        ],
    },
    {
        "path": "projects/kestrel-requirements.docx",
        "title": "Kestrel (Picker P3) Product Requirements",
        "author": "Grace Kim",
        "subject": "Product requirements for the Picker P3 robot",
        "date": dt.datetime(2025, 4, 14, 15, 0, 0),
        "sections": [
            ("Kestrel (Picker P3) Product Requirements", [
                "Version 1.2, approved at the Kestrel steering meeting on 14 April 2025. This document lists the "
                "product requirements for the Picker P3. Changes need approval from the Kestrel steering group "
                "(Grace Kim, Marcus Chen, Aisha Okafor, the VP Product and the VP Sales).",
            ]),
            ("## Performance", [
                ["Payload of the drive base: up to 25 kg in totes, plus the arm.",
                 "Pick rate: at least 450 picks per hour for the reference item set.",
                 "Grasp success rate: at least 97% on the reference item set, including polybags.",
                 "Battery life: at least 10 hours of picking on one charge; charging from 20% to 80% in under 60 minutes.",
                 "Arm: 6 axes with a suction gripper; tool changer for a two-finger gripper as an option."],
            ]),
            ("## Safety", [
                ["Comply with the Northwind robot safety standard and ISO 3691-4 for the mobile base.",
                 "The arm stops within 200 ms when a person enters the arm's protective field.",
                 "Speed limits in shared zones are the same as for all robots: at most 1.5 m/s."],
            ]),
            ("## Software", [
                ["Runs NWOS 7 (the next major version) on the Jetson Orin main compute module.",
                 "Pick missions are a new mission type in Harbor, available through the existing v2 API.",
                 "Receives updates through the same OTA staged rollout as the rest of the fleet."],
            ]),
            ("## Cost and schedule", [
                ["Bill of materials cost target: $38,000 per robot at a volume of 500 units per year.",
                 "General availability: September 2026.",
                 "First pilot customer site: Q2 2026."],
            ]),
            ("## Open questions", [
                "Whether grasp perception needs a second Jetson Orin module; decision at the end of EVT in "
                "November 2025. Which two-finger gripper supplier to use for the optional tool changer.",
            ]),
        ],
    },
    {
        "path": "hr/performance-review-process.docx",
        "title": "Performance Review Process",
        "author": "Hannah Schmidt",
        "subject": "How performance reviews, calibration and promotions work",
        "date": dt.datetime(2025, 2, 17, 9, 0, 0),
        "sections": [
            ("Performance Review Process", [
                "Northwind runs performance reviews twice a year, in April and in October. Reviews are meant to "
                "give everyone clear feedback and to make decisions about pay and promotions fair and consistent "
                "across teams.",
            ]),
            ("## Timeline of a review cycle", [
                ["Week 1: self-review in PeopleHub (about one page; what you did, what you learned, what is next).",
                 "Weeks 1 to 2: peer feedback from 3 to 5 peers, chosen by you and your manager together.",
                 "Week 3: the manager writes the review and proposes a rating.",
                 "Week 4: calibration meetings per department, run by the People team.",
                 "Week 5: review conversations between manager and employee; the written review is shared in PeopleHub."],
            ]),
            ("## Ratings", [
                "We use four ratings: Exceeds expectations, Strong, Developing, and Not meeting expectations. "
                "Ratings are calibrated across teams so that a Strong in Finance means the same as a Strong in "
                "Robotics Firmware. There are no quotas for ratings.",
            ]),
            ("## Promotions and pay", [
                "Promotions are decided once a year, in the October cycle, and take effect on 1 January. Salary "
                "adjustments based on the review also happen once a year, effective 1 January. The April cycle is "
                "for feedback and development only, except for promotions that were deferred in October.",
                "To be promoted you need a promotion case written by your manager, showing that you already work at "
                "the next level, and support from the calibration group.",
            ]),
            ("## New employees", [
                "You take part in a review cycle once you have been with Northwind for at least three months "
                "when the cycle starts. Before that, your 90-day check-in replaces the review.",
            ]),
            ("## Contacts", [
                "Hannah Schmidt (People Partner) owns the process. Questions: #people-questions.",
            ]),
        ],
    },
]

PPTXS = [
    {
        "path": "ml/perception-roadmap-2025.pptx",
        "title": "ML/Perception Roadmap 2025",
        "author": "Aisha Okafor",
        "subject": "PalletNet v5 and the perception roadmap for 2025",
        "date": dt.datetime(2025, 1, 22, 16, 0, 0),
        "slides": [
            ("ML/Perception Roadmap 2025", ["Aisha Okafor, Head of ML/Perception", "Engineering all-hands, January 2025"]),
            ("2024 recap", ["PalletNet v4 shipped to the whole fleet in January 2025",
                            "Trained on about 1.2 million labeled images from 40 customer sites",
                            "mAP@0.5 of 0.84 on warehouse-val-2025 (promotion bar: 0.82)",
                            "Average latency 38 ms per frame on Jetson Orin (budget: 45 ms)"]),
            ("What customers still struggle with", ["Pallets in black and transparent stretch wrap",
                                                    "Low light in cold-storage warehouses",
                                                    "Reflective floors that confuse depth estimates",
                                                    "Mixed pallets with overhanging cartons"]),
            ("PalletNet v5 goals", ["Camera and lidar depth fusion for pallet pockets",
                                    "Recall on clear stretch wrap above 0.90",
                                    "Latency target 35 ms per frame, to leave room for Kestrel grasping",
                                    "No regression on safety classes (person, forklift, pallet jack)"]),
            ("Timeline", ["Dataset freeze: 15 May 2025",
                          "Training runs on gpu-pool-a: June 2025",
                          "Shadow mode on 20 robots: July 2025",
                          "Fleet rollout with NWOS 6.8: September 2025"]),
            ("Asks", ["Customer Support: tag tickets about missed pallets with perception-miss",
                      "Sales Engineering: tell us about POC sites with unusual pallets",
                      "Platform: second GPU node pool for Kestrel grasp models in H2"]),
        ],
    },
    {
        "path": "engineering/platform-q1-2025-review.pptx",
        "title": "Platform Team Q1 2025 Review",
        "author": "Dana Lee",
        "subject": "Quarterly review of the Platform team",
        "date": dt.datetime(2025, 4, 3, 17, 0, 0),
        "slides": [
            ("Platform Team Q1 2025 Review", ["Dana Lee, Platform Lead", "3 April 2025"]),
            ("Highlights", ["All 14 EKS clusters upgraded to Kubernetes 1.30 (last one on 18 March)",
                            "Datadog fully decommissioned in January; Grafana stack is the only observability tool",
                            "New ci-large runner pool; integration test queue time down from 9 to 2 minutes",
                            "Median CI pipeline: 11 minutes"]),
            ("Reliability", ["One SEV1: Harbor API outage on 11 February, 47 minutes, expired internal certificate",
                             "All postmortem action items done except the dashboard panel",
                             "Harbor availability in Q1: 99.93% (us-west-2), 99.99% (other regions)"]),
            ("Cost", ["AWS spend flat quarter over quarter despite 9% more robots",
                      "Observability: about $110,000 per year instead of $420,000 for Datadog",
                      "Aurora reader resized for support queries (+$1,100 per month)"]),
            ("Q2 2025 goals", ["Karpenter pilot on tools and staging clusters",
                               "Prepare Kubernetes 1.31 upgrade for Q3",
                               "Terraform module clean-up finished by end of June (Alex Morgan)",
                               "On-call: no more than one week in six for every engineer"]),
        ],
    },
]

# ---------------------------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------------------------

FIXED_ZIP_TIME = (2025, 1, 1, 0, 0, 0)


def _epoch(d: dt.datetime) -> int:
    return int(d.replace(tzinfo=dt.timezone.utc).timestamp())


def write_pdf(spec: dict) -> Path:
    from reportlab.lib.enums import TA_LEFT
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer

    out = DEMO / spec["path"]
    out.parent.mkdir(parents=True, exist_ok=True)
    os.environ["SOURCE_DATE_EPOCH"] = str(_epoch(spec["date"]))  # read by reportlab's TimeStamp
    styles = getSampleStyleSheet()
    body = ParagraphStyle("Body", parent=styles["BodyText"], fontSize=10.5, leading=14, alignment=TA_LEFT)
    bullet = ParagraphStyle("Bullet", parent=body, leftIndent=12, spaceAfter=2)
    doc = SimpleDocTemplate(
        str(out), pagesize=A4, leftMargin=2.2 * cm, rightMargin=2.2 * cm, topMargin=2 * cm, bottomMargin=2 * cm,
        title=spec["title"], author=spec["author"], subject=spec["subject"], creator="Northwind Robotics wiki export",
        invariant=1,
    )
    story = [Paragraph(spec["title"], styles["Title"]), Paragraph(spec["intro"], body), Spacer(1, 8)]
    for heading, blocks in spec["sections"]:
        story.append(Paragraph(heading, styles["Heading2"]))
        for block in blocks:
            if isinstance(block, list):
                # "- " bullets as plain paragraphs: wrapped lines stay aligned, so PDF text extraction keeps each
                # item in one text box (a hanging indent splits the continuation line into its own box).
                story.extend(Paragraph("- " + b, bullet) for b in block)
            else:
                story.append(Paragraph(block, body))
            story.append(Spacer(1, 4))
    doc.build(story)
    os.environ.pop("SOURCE_DATE_EPOCH", None)
    return out


def _normalise_zip(path: Path) -> None:
    """Rewrite an OOXML zip with fixed member timestamps so that the output is byte-for-byte stable."""
    src = zipfile.ZipFile(path)
    members = [(i.filename, src.read(i.filename)) for i in src.infolist()]
    src.close()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as dst:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=FIXED_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            dst.writestr(info, data)
    path.write_bytes(buf.getvalue())


def _core(props, spec: dict) -> None:
    props.title = spec["title"]
    props.author = spec["author"]
    props.subject = spec["subject"]
    props.created = spec["date"]
    props.modified = spec["date"]
    props.last_modified_by = spec["author"]
    props.revision = 1
    props.keywords = ""
    props.comments = ""


def write_docx(spec: dict) -> Path:
    import docx

    out = DEMO / spec["path"]
    out.parent.mkdir(parents=True, exist_ok=True)
    d = docx.Document()
    _core(d.core_properties, spec)
    for heading, blocks in spec["sections"]:
        level = 2 if heading.startswith("## ") else 1
        d.add_heading(heading.removeprefix("## "), level=level)
        for block in blocks:
            if isinstance(block, list):
                for b in block:
                    d.add_paragraph(b, style="List Bullet")
            else:
                d.add_paragraph(block)
    d.save(str(out))
    _normalise_zip(out)
    return out


def write_pptx(spec: dict) -> Path:
    from pptx import Presentation

    out = DEMO / spec["path"]
    out.parent.mkdir(parents=True, exist_ok=True)
    prs = Presentation()
    _core(prs.core_properties, spec)
    for i, (title, bullets) in enumerate(spec["slides"]):
        layout = prs.slide_layouts[0 if i == 0 else 1]  # title slide, then title + content
        slide = prs.slides.add_slide(layout)
        slide.shapes.title.text = title
        body = slide.placeholders[1].text_frame
        body.text = bullets[0]
        for b in bullets[1:]:
            body.add_paragraph().text = b
    prs.save(str(out))
    _normalise_zip(out)
    return out


def all_text() -> dict[str, str]:
    """The text of each generated file (path relative to ingest/demo), for checks such as the eval validator."""
    texts: dict[str, str] = {}
    for spec in PDFS:
        parts = [spec["title"], spec["intro"]]
        for heading, blocks in spec["sections"]:
            parts.append(heading)
            for b in blocks:
                parts.extend(b if isinstance(b, list) else [b])
        texts[spec["path"]] = "\n".join(parts)
    for spec in DOCXS:
        parts = [spec["title"]]
        for heading, blocks in spec["sections"]:
            parts.append(heading.removeprefix("## "))
            for b in blocks:
                parts.extend(b if isinstance(b, list) else [b])
        texts[spec["path"]] = "\n".join(parts)
    for spec in PPTXS:
        parts = [spec["title"]]
        for title, bullets in spec["slides"]:
            parts.append(title)
            parts.extend(bullets)
        texts[spec["path"]] = "\n".join(parts)
    return texts


def main() -> None:
    written = [write_pdf(s) for s in PDFS] + [write_docx(s) for s in DOCXS] + [write_pptx(s) for s in PPTXS]
    for p in written:
        print(f"wrote {p.relative_to(DEMO.parent)} ({p.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
