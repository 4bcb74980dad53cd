"""A build of scanned pages: OCR (Tesseract) in the parse workers, overlapped with embedding.

    python bench/bench_ocr.py                        # 200 pages; auto workers vs ASKCOLLEAGUE_PARSE_WORKERS=1
    python bench/bench_ocr.py --pages 40 --no-compare
    python bench/bench_ocr.py --pairs 3              # alternate the two configurations 3 times, medians

The corpus (generated once, cached in ``--work``, default ``bench/.scale/ocr-<pages>``, git-ignored):
``pages`` scanned office pages — a title, numbered headings, paragraphs of varied sentences about
policies, IT, travel and finance, a short list, a few numbers and amounts — drawn with Pillow in a
TrueType font found under /usr/share/fonts (PIL's default font, scaled, if none) on a grayscale US
letter page at 150 or 200 dpi, then made to look scanned: rotated by up to 1°, slightly blurred,
grey paper, noise and specks. One page in four is a page of a 5-page PDF without a text layer
(200 pages: 150 single images — PNG, TIFF and JPEG — and 10 PDFs of 5 pages). ``corpus.json``
holds the text drawn on every page.

Each configuration is one whole build as a user runs it, timed from start to exit by this script:
``python -m askcolleague index build CORPUS --index DIR --json -q`` into an empty DIR, with
HF_HUB_OFFLINE=1 and the default (bundled) model:

* ``auto``: ASKCOLLEAGUE_PARSE_WORKERS=0 — images, so one parse worker process per core (at most 4);
* ``1`` (unless ``--no-compare``): ASKCOLLEAGUE_PARSE_WORKERS=1 — parsed in the build's reader thread.

Printed per configuration: the process's wall seconds, the CPU seconds of its process tree (the
build, its parse workers and their Tesseract processes; sampled, see TreeSampler), the most
Tesseract processes running at once, the tree's peak RSS (summed over processes: shared pages
count more than once), sources, chunks, the report's seconds per stage (each stage's own busy
time: parse is the time the reader thread waited for a source's documents, embed the main
thread's time in the model; when they overlap the stages add up to more than the build), and
"parse X s + chunk C s + embed Y s = Z s in a build of B s (wall W s)"; "overlapped" is the sum of
the stages minus the build's seconds. The main thread embeds a window of ASKCOLLEAGUE_BUILD_WINDOW
chunks at a time (default 2048), so a corpus of fewer chunks is embedded only after its last page
is parsed; ``--window N`` sets it for both configurations.

Then the OCR's word recall over every page: the words drawn on the page (lower-cased runs of
letters and digits) found in the text the index holds for it (its chunks' text; a PDF's by their
"Page N (OCR)" section), counted with multiplicity (the chunks' overlap can only raise it a little),
and the word precision the other way round. Pages under 90 % recall, pages missing from the index,
skipped files (with their reasons) and the build's stderr are listed. JSON to bench/results/bench_ocr.json.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, median  # noqa: E402

CORPUS_VERSION = 1
PDF_PAGES = 5  # pages per PDF; one page in four goes into a PDF
CONFIGS = {"auto": "0", "1": "1"}  # label: ASKCOLLEAGUE_PARSE_WORKERS

# ------------------------------------------------------------------------------------------
# the text of a page

TOPICS = {
    "Travel and Expenses Policy": {
        "sections": ["Booking flights", "Hotels and accommodation", "Per diem and meals", "Approvals",
                     "Ground transport", "Submitting a claim", "International travel", "Travel insurance"],
        "sentences": [
            "Economy class is the default for flights shorter than {hours} hours.",
            "Book through the travel portal at least {days} days before departure to get the negotiated fares.",
            "Hotel rates above {amount} per night need the written approval of your {role}.",
            "The daily meal allowance is {amount} in most cities and {amount2} in high-cost locations.",
            "Keep every receipt over {small} and attach it to the claim within {days} days of your return.",
            "Trips abroad must be registered with the {team} team so that we can reach you in an emergency.",
            "Taxis are reimbursed when no train or bus runs within {mins} minutes of the meeting.",
            "Mileage for a private car is paid at {cents} cents per kilometre, up to {km} kilometres a month.",
            "Claims are paid with the salary of the following month if they arrive before the {nth} of the month.",
            "Upgrades paid with personal miles are allowed, but the company pays the economy fare only.",
            "If a meeting is cancelled, contact the travel desk before {clock} to avoid a no-show fee.",
            "Travel insurance covers medical costs up to {big} and lost luggage up to {amount}.",
            "Your {role} approves trips within the country; trips abroad also need the approval of {person}.",
            "Alcohol, minibar items and in-room films are not reimbursed.",
        ],
    },
    "Information Security Standard": {
        "sections": ["Passwords and passphrases", "Laptops and mobile devices", "Reporting an incident",
                     "Access reviews", "Email and phishing", "Removable media", "Visitors", "Data classification"],
        "sentences": [
            "Passphrases must be at least {chars} characters long and must not be reused on other sites.",
            "Multi-factor authentication is required for the VPN, email and the {system} console.",
            "Lock your screen whenever you leave your desk, even for {mins} minutes.",
            "Report a lost laptop or phone to the service desk within {hours} hours, on extension {ext}.",
            "Suspicious email should be forwarded to the {team} team and then deleted.",
            "Access rights are reviewed every {months} months by the owner of each system.",
            "Confidential documents may only be stored on the encrypted {system} share.",
            "USB storage devices are blocked on company laptops unless an exception was granted by {person}.",
            "Security patches are installed automatically within {days} days of their release.",
            "Visitors sign in at reception, wear a badge and are accompanied at all times.",
            "An incident ticket is opened for every report, and the reporter hears back within {hours} hours.",
            "Customer data must never be copied to personal cloud storage or private email accounts.",
            "In {year} we handled {count} reported incidents, of which {small} were confirmed phishing attempts.",
            "Administrators use a separate account for privileged work and never browse the web with it.",
        ],
    },
    "IT Service Guide": {
        "sections": ["Requesting a new laptop", "VPN access", "Printing", "Software requests", "Backups",
                     "Meeting rooms", "Phones and headsets", "Leaving the company"],
        "sentences": [
            "New laptops are ordered through the service portal and arrive within {days} working days.",
            "Standard laptops come with {ram} GB of memory and a {disk} GB solid-state disk.",
            "Install the VPN client from the software centre and sign in with your network account.",
            "Printers on every floor accept jobs sent to the queue named {queue}.",
            "Software that is not in the catalogue needs a licence check by the {team} team.",
            "Home folders are backed up every night at {clock} and kept for {days} days.",
            "To restore a deleted file, open a ticket with its path and the date it was last seen.",
            "Meeting rooms with video equipment are booked through the calendar, at most {weeks} weeks ahead.",
            "The service desk is open from {open} to {close} on working days and answers calls on extension {ext}.",
            "Headsets are replaced free of charge every {months} months or when they break.",
            "Before you leave the company, return your laptop, badge and phone to the service desk.",
            "Our ticket queue handled {count} requests last quarter, and {pct} percent were solved on the first day.",
            "Old equipment is wiped and recycled by a certified partner; never throw it away yourself.",
            "The wireless network for guests is called {queue}-guest and needs a daily code from reception.",
        ],
    },
    "Finance Procedures Manual": {
        "sections": ["Purchase orders", "Invoices", "Budgets", "Month-end closing", "Company cards",
                     "Payments to suppliers", "Cost centres", "Audit requirements"],
        "sentences": [
            "Every purchase above {amount} needs a purchase order before the goods are ordered.",
            "Invoices are paid within {days} days of receipt when they quote a valid order number.",
            "Budgets for the next year are drafted in {month} and approved by the board in {month2}.",
            "The books are closed on the {nth} working day of each month.",
            "Company cards have a monthly limit of {big} and may not be used for personal expenses.",
            "New suppliers are checked by the {team} team before their first order is placed.",
            "Each cost centre has an owner who reviews its spending every {months} months.",
            "Spending above {pct} percent of the approved budget must be explained in the monthly report.",
            "Original contracts are kept for {years} years, as the auditors require.",
            "Foreign invoices are converted at the rate of the day they were booked.",
            "Payment runs take place every {weekday}, and urgent payments need the approval of {person}.",
            "Last year the department processed {count} invoices with an average value of {amount}.",
            "Credit notes are matched against the original invoice before any refund is made.",
            "Questions about VAT go to the tax specialist on extension {ext}.",
        ],
    },
    "Employee Handbook": {
        "sections": ["Working hours", "Annual leave", "Sick leave", "Remote work", "Training",
                     "Performance reviews", "Parental leave", "Code of conduct"],
        "sentences": [
            "Core working hours are from {open} to {close3}; the rest of the day is flexible.",
            "Full-time employees receive {leave} days of annual leave, and up to {small} days may be carried over.",
            "Report sick leave to your {role} before {clock} on the first day of absence.",
            "A doctor's note is needed from the {nth} day of sick leave onwards.",
            "You may work from home up to {wfh} days a week after agreeing the days with your team.",
            "Each employee has a training budget of {amount} a year for courses and conferences.",
            "Performance reviews are held in {month} and a short check-in follows in {month2}.",
            "Parental leave of up to {weeks} weeks is paid at {pct} percent of the salary.",
            "Conflicts of interest must be declared to {person} as soon as they arise.",
            "Overtime is compensated with time off within {months} months.",
            "The canteen is open from {open2} and serves lunch until {close2}.",
            "In {year} the company employed {count} people in {small} offices.",
            "Gifts from suppliers worth more than {small2} must be declared and are usually returned.",
            "New colleagues are assigned a buddy from another team for their first {weeks} weeks.",
        ],
    },
}
PEOPLE = ["Maria Jensen", "Tom Alvarez", "Priya Natarajan", "Lukas Becker", "Sophie Laurent", "Daniel Okafor",
          "Hanna Lindqvist", "Marco Rossi", "Aisha Rahman", "Peter Novak", "Emily Carter", "Jonas Weber"]
TEAMS = ["Security", "Procurement", "Facilities", "Service Desk", "Payroll", "Infrastructure", "Compliance"]
ROLES = ["manager", "team lead", "department head", "cost centre owner"]
SYSTEMS = ["Finance", "Payroll", "Atlas", "Helios", "Orion", "Records"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
DOC_KINDS = ["Revision", "Version", "Edition", "Issue"]
LIST_INTROS = ["Before you start, check the following:", "The steps are:", "Please note:",
               "The following documents are required:"]
LIST_ITEMS = ["the approval of your {role}", "a valid cost centre number", "the order number {ref}",
              "a copy of the receipt", "your employee number", "the ticket number from the portal",
              "the signature of {person}", "the date and place of the event", "a short business reason",
              "the name of the supplier", "the total amount including tax"]


def _fill(t: str, r: random.Random) -> str:
    vals = {
        "hours": r.choice([3, 4, 5, 6, 8]), "days": r.choice([5, 7, 10, 14, 21, 30]), "mins": r.choice([5, 10, 15, 30]),
        "amount": f"${r.randrange(40, 2000):,}", "amount2": f"${r.randrange(60, 120)}", "small": r.randrange(2, 12),
        "small2": f"${r.choice([25, 50, 75, 100])}", "big": f"${r.randrange(5, 60) * 1000:,}",
        "role": r.choice(ROLES), "team": r.choice(TEAMS), "person": r.choice(PEOPLE), "system": r.choice(SYSTEMS),
        "cents": r.choice([25, 30, 35, 42]), "km": r.choice([500, 800, 1200, 1500]),
        "nth": r.choice(["5th", "10th", "15th", "20th", "third", "fifth"]),
        "clock": r.choice(["9:00", "10:30", "noon", "18:00", "2:00 in the morning"]),
        "chars": r.choice([12, 14, 16]), "ext": r.randrange(2000, 8999), "months": r.choice([3, 6, 12]),
        "year": r.choice([2021, 2022, 2023, 2024]), "count": f"{r.randrange(120, 9800):,}",
        "ram": r.choice([16, 32, 64]), "disk": r.choice([256, 512, 1024]),
        "queue": r.choice(["print-north", "print-south", "follow-me", "office-main"]),
        "weeks": r.choice([2, 4, 6, 8, 12, 16]), "open": r.choice(["8:00", "8:30", "9:00"]),
        "close": r.choice(["17:00", "17:30", "18:00"]), "close3": r.choice(["15:00", "15:30", "16:00"]),
        "open2": r.choice(["7:30", "11:30"]), "close2": r.choice(["13:30", "14:00", "14:30"]),
        "pct": r.choice([5, 10, 15, 20, 80, 85, 90, 100]), "month": r.choice(MONTHS), "month2": r.choice(MONTHS),
        "years": r.choice([7, 10]), "weekday": r.choice(WEEKDAYS), "leave": r.choice([25, 28, 30]),
        "wfh": r.choice([2, 3]), "ref": f"PO-{r.randrange(10000, 99999)}",
    }
    return t.format(**vals)


def page_content(r: random.Random) -> tuple[str, list[tuple[str, str]]]:
    """(its topic, a page as (kind, text) blocks to lay out: title, subtitle, heading, para, item), more than fits."""
    name = r.choice(list(TOPICS))
    topic = TOPICS[name]
    chapter = r.randrange(1, 9)
    out = [("title", name), ("subtitle", f"{r.choice(DOC_KINDS)} {r.randrange(1, 9)}.{r.randrange(0, 10)}, "
                                          f"{r.choice(MONTHS)} {r.choice([2022, 2023, 2024, 2025])}")]
    others = [s for t in TOPICS.values() for s in t["sentences"]]
    for k, sec in enumerate(r.sample(topic["sections"], k=min(5, len(topic["sections"])))):
        out.append(("heading", f"{chapter}.{k + 1} {sec}"))
        for _ in range(r.choice([1, 2, 2])):
            # mostly the topic's own sentences, now and then one from another (real documents wander)
            sents = r.sample(topic["sentences"], k=r.randrange(3, 6))
            sents = [s if r.random() < 0.9 else r.choice(others) for s in sents]
            out.append(("para", " ".join(_fill(s, r) for s in sents)))
        if r.random() < 0.3:
            out.append(("para", r.choice(LIST_INTROS)))
            for i, it in enumerate(r.sample(LIST_ITEMS, k=r.randrange(2, 5))):
                out.append(("item", f"{i + 1}. " + _fill(it, r).capitalize()))
    return name.split()[0].lower(), out


# ------------------------------------------------------------------------------------------
# drawing and "scanning"

FONT_FAMILIES = [  # (regular, bold) file names under /usr/share/fonts
    ("LiberationSerif-Regular.ttf", "LiberationSerif-Bold.ttf"),
    ("LiberationSans-Regular.ttf", "LiberationSans-Bold.ttf"),
    ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"),
    ("DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf"),
    ("FreeSerif.ttf", "FreeSerifBold.ttf"),
    ("NotoSans-Regular.ttf", "NotoSans-Bold.ttf"),
]


def find_fonts() -> list[tuple[Path, Path]]:
    """(regular, bold) TrueType pairs on this machine; any .ttf as both when none of the known ones."""
    found: dict[str, Path] = {}
    for base in (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), Path.home() / ".fonts"):
        if base.is_dir():
            for p in base.rglob("*.ttf"):
                found.setdefault(p.name, p)
    pairs = [(found[r], found.get(b, found[r])) for r, b in FONT_FAMILIES if r in found]
    if not pairs:
        pairs = [(p, p) for n, p in sorted(found.items()) if "mono" not in n.lower()][:2]
    return pairs


def _font(path: Path | None, px: int):
    from PIL import ImageFont

    if path is None:
        try:
            return ImageFont.load_default(size=px)  # Pillow ≥ 10.1: the default font, scalable
        except TypeError:
            return ImageFont.load_default()
    return ImageFont.truetype(str(path), px)


def render_page(content: list[tuple[str, str]], fonts: tuple[Path | None, Path | None], dpi: int,
                seed: int):
    """(grayscale scanned-looking image, the text drawn) of a page; stops when the page is full."""
    from PIL import Image, ImageDraw, ImageFilter

    w, h = int(8.5 * dpi), int(11 * dpi)
    margin = int(0.9 * dpi)
    pt = lambda p: max(8, round(p / 72 * dpi))  # noqa: E731
    body = random.Random(seed).choice([10.5, 11, 11.5, 12])
    styles = {"title": (fonts[1], pt(18), 0.5), "subtitle": (fonts[0], pt(body), 0.6),
              "heading": (fonts[1], pt(body + 2.5), 0.35), "para": (fonts[0], pt(body), 0.45),
              "item": (fonts[0], pt(body), 0.15)}
    cache = {k: _font(f, s) for k, (f, s, _) in styles.items()}
    img = Image.new("L", (w, h), 255)
    d = ImageDraw.Draw(img)
    y = margin
    drawn: list[str] = []
    for kind, text in content:
        font, size, after = cache[kind], styles[kind][1], styles[kind][2]
        indent = int(0.3 * dpi) if kind == "item" else 0
        lines, line = [], ""
        for word in text.split():
            cand = f"{line} {word}".strip()
            if line and d.textlength(cand, font=font) > w - 2 * margin - indent:
                lines.append(line)
                line = word
            else:
                line = cand
        lines.append(line)
        step = int(size * 1.35)
        if y + step * len(lines) > h - margin:
            break  # the page is full: this block is not drawn (nor counted)
        if kind == "heading":
            y += int(size * 0.4)
        for ln in lines:
            d.text((margin + indent, y), ln, fill=0, font=font)
            y += step
        y += int(size * after)
        drawn.append(text)
    # the scan: a small skew, a little blur, grey paper, ink not quite black, noise and specks
    rng = np.random.default_rng(seed)
    img = img.rotate(float(rng.uniform(-1, 1)), resample=Image.BICUBIC, fillcolor=255)
    img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.4, 0.8))))
    a = np.asarray(img, dtype=np.float32) / 255
    paper, ink = rng.uniform(228, 248), rng.uniform(15, 55)
    a = ink + a * (paper - ink) + rng.normal(0, rng.uniform(3, 7), a.shape)
    n = int(rng.integers(150, 600))
    ys, xs = rng.integers(0, h - 3, n), rng.integers(0, w - 3, n)
    for yy, xx, s in zip(ys, xs, rng.integers(1, 4, n)):
        a[yy:yy + s, xx:xx + s] = rng.uniform(40, 160)
    img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "L")
    return img, "\n\n".join(drawn)


def generate(folder: Path, pages: int, seed: int = 7) -> dict:
    """The corpus in `folder` (reused when corpus.json says it is the same): {file name: [page texts]}."""
    info_path = folder / "corpus.json"
    if info_path.is_file():
        info = json.loads(info_path.read_text())
        if (info.get("pages"), info.get("seed"), info.get("version")) == (pages, seed, CORPUS_VERSION) and all(
                (folder / "scans" / f).is_file() for f in info["files"]):
            return info
    shutil.rmtree(folder / "scans", ignore_errors=True)
    out = folder / "scans"
    out.mkdir(parents=True)
    fonts = find_fonts() or [(None, None)]
    n_pdf = pages // (4 * PDF_PAGES) if pages >= 4 * PDF_PAGES else 0
    n_img = pages - n_pdf * PDF_PAGES
    print(f"generating {pages} scanned pages in {folder} ({n_img} images, {n_pdf} PDFs of {PDF_PAGES} pages; "
          f"fonts: {', '.join(sorted({f[0].name if f[0] else 'PIL default' for f in fonts}))}) …",
          file=sys.stderr, flush=True)
    r = random.Random(seed)
    files: dict[str, list[str]] = {}
    formats = [("png", "PNG"), ("tif", "TIFF"), ("jpg", "JPEG")]
    t = time.perf_counter()
    page_no = 0

    def one() -> tuple:
        nonlocal page_no
        page_no += 1
        dpi = r.choice([150, 150, 200])
        topic, content = page_content(r)
        img, text = render_page(content, r.choice(fonts), dpi, seed * 100003 + page_no)
        return img, text, dpi, topic

    for i in range(n_img):
        img, text, dpi, topic = one()
        ext, fmt = formats[i % len(formats)]
        name = f"scan-{i + 1:04d}-{topic}.{ext}"
        kw = {"quality": int(r.choice([70, 80, 90]))} if fmt == "JPEG" else \
            {"compression": "tiff_deflate"} if fmt == "TIFF" else {"optimize": False}
        img.save(out / name, fmt, dpi=(dpi, dpi), **kw)
        files[name] = [text]
    for j in range(n_pdf):
        imgs, texts, dpi = [], [], 150
        for _ in range(PDF_PAGES):
            img, text, dpi, _topic = one()
            imgs.append(img)
            texts.append(text)
        name = f"scanned-report-{j + 1:03d}.pdf"
        imgs[0].save(out / name, "PDF", resolution=float(dpi), save_all=True, append_images=imgs[1:])
        files[name] = texts
    info = {"version": CORPUS_VERSION, "pages": pages, "seed": seed, "images": n_img, "pdfs": n_pdf,
            "pdf_pages": PDF_PAGES, "fonts": sorted({str(f[0].name) if f[0] else "PIL default" for f in fonts}),
            "bytes": sum((out / f).stat().st_size for f in files), "files": files}
    info_path.write_text(json.dumps(info, indent=1) + "\n")
    print(f"  … {time.perf_counter() - t:.0f} s, {info['bytes'] / 1e6:.0f} MB", file=sys.stderr, flush=True)
    return info


# ------------------------------------------------------------------------------------------
# one build, and what its index holds

class TreeSampler:
    """Samples a process tree (every `every` s, and its descendants after it exits, until they do):
    peak RSS of the tree, the most Tesseract processes at once, and its CPU seconds.

    CPU: each process's own user+system time when last seen, plus the part of its reaped children's
    time (``children_user/system``) not already counted from those children's own samples — so the
    short Tesseract runs count in full through the worker that waited for them, and the workers,
    which the multiprocessing forkserver (not the build) reaps, through their own samples. What is
    lost is each long-lived process's last fraction of a sampling interval."""

    def __init__(self, pid: int, every: float = 0.25) -> None:
        import psutil

        self.psutil, self.root, self.every = psutil, psutil.Process(pid), every
        self.seen: dict[int, dict] = {}
        self.procs: dict[int, object] = {pid: self.root}
        self.round = 0
        self.peak_rss = 0
        self.max_tesseract = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _sample(self) -> int:
        ps = self.psutil
        self.round += 1
        try:
            for c in self.root.children(recursive=True):
                self.procs.setdefault(c.pid, c)
        except ps.Error:
            pass
        alive = rss = tess = 0
        for pid, p in list(self.procs.items()):
            try:
                with p.oneshot():
                    if not p.is_running() or p.status() == ps.STATUS_ZOMBIE:
                        raise ps.NoSuchProcess(pid)
                    t = p.cpu_times()
                    info = {"own": t.user + t.system, "kids": t.children_user + t.children_system,
                            "ppid": p.ppid(), "round": self.round, "name": p.name()}
                    rss += p.memory_info().rss
                    for c in p.children():
                        self.procs.setdefault(c.pid, c)
            except ps.Error:
                self.procs.pop(pid, None)
                continue
            self.seen[pid] = info
            alive += 1
            tess += info["name"].startswith("tesseract")
        self.peak_rss = max(self.peak_rss, rss)
        self.max_tesseract = max(self.max_tesseract, tess)
        return alive

    def _run(self) -> None:
        while not self.stop.is_set():
            self._sample()
            self.stop.wait(self.every)
        deadline = time.monotonic() + 15  # the forkserver and its workers outlive the build by a moment
        while self._sample() and time.monotonic() < deadline:
            time.sleep(self.every / 2)

    def finish(self) -> dict:
        self.stop.set()
        self.thread.join()
        total = 0.0
        for pid, i in self.seen.items():
            reaped = sum(c["own"] + c["kids"] for c in self.seen.values() if c["ppid"] == pid and c["round"] < i["round"])
            total += i["own"] + max(0.0, i["kids"] - reaped)
        return {"cpu_s": total, "peak_tree_rss_mb": round(self.peak_rss / 2**20, 1),
                "max_tesseract": self.max_tesseract, "processes": len(self.seen),
                "tesseract_seen": sum(i["name"].startswith("tesseract") for i in self.seen.values())}


def run_build(corpus: Path, index: Path, workers: str, window: int | None = None) -> dict:
    """The whole build as a process, timed start to exit: wall, CPU of its process tree, peak RSS."""
    shutil.rmtree(index, ignore_errors=True)
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", ASKCOLLEAGUE_PARSE_WORKERS=workers)
    if window:
        env["ASKCOLLEAGUE_BUILD_WINDOW"] = str(window)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "askcolleague", "index", "build", str(corpus), "--index", str(index), "--json", "-q"]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=str(ROOT), env=env, text=True)
        tree = TreeSampler(p.pid)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t
        tree = tree.finish()
        code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    try:
        rep = json.loads(stdout)
    except ValueError:
        raise RuntimeError(f"build failed ({code}):\n{stderr[-3000:]}\n{stdout[-2000:]}") from None
    return {"workers": workers, "window": window, "exit": code, "wall_s": wall, **tree,
            "cpu_s_reaped": ru.ru_utime + ru.ru_stime, "peak_rss_mb": round(ru.ru_maxrss / 1024, 1), "report": rep,
            "stderr": [line for line in stderr.splitlines() if line.strip()]}


WORD = re.compile(r"[a-z0-9]+")
PAGE_SECTION = re.compile(r"Page (\d+) \(OCR\)")


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def index_texts(index: Path) -> dict[str, dict[int, str]]:
    """{file name: {page (1-based): the chunk text the index holds for it}}; single images are page 1."""
    from askcolleague.index import current_version

    con = sqlite3.connect(current_version(index) / "store.sqlite")
    rows = con.execute("SELECT source, doc_id, section, text FROM chunks ORDER BY doc_id, position").fetchall()
    con.close()
    out: dict[str, dict[int, list[str]]] = {}
    for source, doc_id, section, text in rows:
        name = Path(str(doc_id).split("#", 1)[0]).name
        m = PAGE_SECTION.search(section or "")
        out.setdefault(name, {}).setdefault(int(m.group(1)) if m else 1, []).append(text)
    return {n: {p: "\n".join(ts) for p, ts in pages.items()} for n, pages in out.items()}


def recall(info: dict, held: dict[str, dict[int, str]]) -> dict:
    """Word recall and precision of the OCR, page by page (multisets of words)."""
    per_page = []
    for name, texts in info["files"].items():
        for i, truth in enumerate(texts, 1):
            tw = Counter(words(truth))
            got = held.get(name, {}).get(i)
            ow = Counter(words(got or ""))
            hit = sum((tw & ow).values())
            per_page.append({"file": name, "page": i, "words": sum(tw.values()), "found": hit,
                             "ocr_words": sum(ow.values()), "in_index": got is not None,
                             "recall": hit / max(sum(tw.values()), 1), "precision": hit / max(sum(ow.values()), 1)})
    total = sum(p["words"] for p in per_page)
    found = sum(p["found"] for p in per_page)
    ocr_total = sum(p["ocr_words"] for p in per_page)
    rs = [p["recall"] for p in per_page if p["in_index"]]
    by_kind: dict[str, list[float]] = {}
    for p in per_page:
        if p["in_index"]:
            by_kind.setdefault(Path(p["file"]).suffix.lstrip("."), []).append(p["recall"])
    return {"pages": len(per_page), "pages_in_index": len(rs), "words": total, "found": found,
            "recall": found / max(total, 1), "precision": found / max(ocr_total, 1),
            "median_page_recall": median(rs), "min_page_recall": min(rs) if rs else float("nan"),
            "recall_by_format": {k: median(v) for k, v in sorted(by_kind.items())},
            "missing": [f"{p['file']} p{p['page']}" for p in per_page if not p["in_index"]],
            "low": [{k: p[k] for k in ("file", "page", "recall", "words")} for p in per_page
                    if p["in_index"] and p["recall"] < 0.9]}


# ------------------------------------------------------------------------------------------

def overlap_line(r: dict) -> str:
    st = r["report"]["stages"]
    parse, chunk, embed = st.get("parse", 0.0), st.get("chunk", 0.0), st.get("embed", 0.0)
    return (f"parse {parse:.1f} s + chunk {chunk:.1f} s + embed {embed:.1f} s = {parse + chunk + embed:.1f} s "
            f"in a build of {r['report']['seconds']:.1f} s (process wall {r['wall_s']:.1f} s); "
            f"all stages sum to {sum(st.values()):.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=200, help="scanned pages in the corpus")
    ap.add_argument("--work", type=Path, default=None, help="corpus and index folder (default bench/.scale/ocr-N)")
    ap.add_argument("--no-compare", action="store_true", help="only the auto configuration (no PARSE_WORKERS=1 run)")
    ap.add_argument("--pairs", type=int, default=1, help="alternate the configurations this many times; medians")
    ap.add_argument("--window", type=int, default=None,
                    help="ASKCOLLEAGUE_BUILD_WINDOW for the builds (chunks embedded at a time; default: the build's)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "bench_ocr.json")
    args = ap.parse_args()

    work = (args.work or ROOT / "bench" / ".scale" / f"ocr-{args.pages}").resolve()
    work.mkdir(parents=True, exist_ok=True)
    info = generate(work, args.pages, args.seed)
    corpus = work / "scans"
    labels = ["auto"] if args.no_compare else list(CONFIGS)
    result: dict = {"machine": machine(), "tesseract": _tesseract(), "pages": args.pages,
                    "corpus": {k: v for k, v in info.items() if k != "files"}, "pairs": args.pairs, "runs": {},
                    "command": "python -m askcolleague index build <corpus> --index <dir> --json -q"}
    print(json.dumps(result["machine"]), flush=True)
    print(f"corpus: {info['pages']} pages = {info['images']} images + {info['pdfs']} PDFs of {info['pdf_pages']} "
          f"pages, {info['bytes'] / 1e6:.0f} MB, {sum(len(words(t)) for ts in info['files'].values() for t in ts)} "
          f"words drawn; {result['tesseract']}", flush=True)
    runs: dict[str, list[dict]] = {k: [] for k in labels}
    for i in range(args.pairs):
        for label in (labels if i % 2 == 0 else labels[::-1]):  # alternate which goes first
            index = work / f"index-{label}"
            r = run_build(corpus, index, CONFIGS[label], args.window)
            r["ocr"] = recall(info, index_texts(index))
            rep = r["report"]
            print(f"\n[{label}] pair {i + 1}: wall {r['wall_s']:.1f} s, CPU {r['cpu_s']:.1f} s, exit {r['exit']}, "
                  f"{rep['sources_indexed']} sources indexed, {len(rep['skipped'])} skipped, {rep['docs']} docs, "
                  f"{rep['chunks']} chunks ({rep['embedded']} embedded), peak RSS {r['peak_tree_rss_mb']:.0f} MB "
                  f"(tree), at most {r['max_tesseract']} Tesseract at once", flush=True)
            print("  stages: " + ", ".join(f"{k} {v:.1f}" for k, v in rep["stages"].items()), flush=True)
            print("  " + overlap_line(r), flush=True)
            print(f"  OCR word recall {r['ocr']['recall']:.3f} (precision {r['ocr']['precision']:.3f}) over "
                  f"{r['ocr']['pages_in_index']}/{r['ocr']['pages']} pages", flush=True)
            runs[label].append(r)
            shutil.rmtree(index, ignore_errors=True)

    # the table: medians over the pairs
    stage_names = [s for s in ("open", "model", "discover", "parse", "chunk", "people", "embed", "write",
                               "calibrate", "publish") if any(s in r["report"]["stages"] for v in runs.values() for r in v)]

    def med(label: str, f) -> float:
        return median([f(r) for r in runs[label]])

    rows = [("process wall s", lambda r: r["wall_s"], "{:.1f}"), ("CPU s (process tree)", lambda r: r["cpu_s"], "{:.1f}"),
            ("build s (report)", lambda r: r["report"]["seconds"], "{:.1f}"),
            ("sources indexed", lambda r: r["report"]["sources_indexed"], "{:.0f}"),
            ("skipped", lambda r: len(r["report"]["skipped"]), "{:.0f}"),
            ("chunks", lambda r: r["report"]["chunks"], "{:.0f}")]
    rows += [(f"  {s} s", (lambda s: lambda r: r["report"]["stages"].get(s, 0.0))(s), "{:.1f}") for s in stage_names]
    rows += [("  sum of stages s", lambda r: sum(r["report"]["stages"].values()), "{:.1f}"),
             ("parse+chunk+embed s", lambda r: sum(r["report"]["stages"].get(k, 0.0) for k in ("parse", "chunk", "embed")), "{:.1f}"),
             ("overlapped s (stages - build)", lambda r: sum(r["report"]["stages"].values()) - r["report"]["seconds"], "{:.1f}"),
             ("pages / min (wall)", lambda r: info["pages"] / r["wall_s"] * 60, "{:.1f}"),
             ("OCR word recall", lambda r: r["ocr"]["recall"], "{:.3f}"),
             ("OCR word precision", lambda r: r["ocr"]["precision"], "{:.3f}"),
             ("min page recall", lambda r: r["ocr"]["min_page_recall"], "{:.3f}"),
             ("Tesseract at once (max)", lambda r: r["max_tesseract"], "{:.0f}"),
             ("peak RSS MB (tree)", lambda r: r["peak_tree_rss_mb"], "{:.0f}"),
             ("peak RSS MB (largest proc)", lambda r: r["peak_rss_mb"], "{:.0f}")]
    heads = {"auto": "workers auto", "1": "PARSE_WORKERS=1"}
    print(f"\n{info['pages']} scanned pages, medians of {args.pairs} run(s) per configuration")
    print(f"{'':<32}" + "".join(f"{heads[k]:>18}" for k in labels))
    med_out: dict = {}
    for name, f, fmt in rows:
        med_out[name.strip()] = {k: med(k, f) for k in labels}
        print(f"{name:<32}" + "".join(f"{fmt.format(med(k, f)):>18}" for k in labels))
    for k in labels:
        r = runs[k][len(runs[k]) // 2]
        print(f"{heads[k]}: " + overlap_line(r))
    if len(labels) == 2:
        a, b = med("auto", lambda r: r["wall_s"]), med("1", lambda r: r["wall_s"])
        print(f"wall PARSE_WORKERS=1 / auto: {b / a:.2f}")
        med_out["wall ratio 1/auto"] = b / a
    r0 = runs[labels[0]][0]
    print("OCR recall by format (median page): "
          + ", ".join(f"{k} {v:.3f}" for k, v in r0["ocr"]["recall_by_format"].items()))
    for k in labels:
        for r in runs[k]:
            for s in r["report"]["skipped"]:
                print(f"skipped [{k}]: {s['path']}: {s['reason']}")
            for p in r["ocr"]["missing"]:
                print(f"not in the index [{k}]: {p}")
            for p in r["ocr"]["low"]:
                print(f"low recall [{k}]: {p['file']} page {p['page']}: {p['recall']:.3f} of {p['words']} words")
            noise = [line for line in r["stderr"] if not line.startswith("{")]
            for line in noise[:10]:
                print(f"stderr [{k}]: {line[:200]}")
    result["runs"] = runs
    result["median"] = med_out
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # (paths inside the checkout recorded relative to it: the results say nothing of this machine)
    args.out.write_text(json.dumps(result, indent=2).replace(str(ROOT) + "/", "") + "\n")
    print(f"\nwrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")


def _tesseract() -> str:
    exe = shutil.which("tesseract")
    if not exe:
        return "tesseract: not installed"
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30)
        return (out.stdout or out.stderr).splitlines()[0].strip()
    except (OSError, subprocess.SubprocessError, IndexError):
        return "tesseract: ?"


if __name__ == "__main__":
    main()
