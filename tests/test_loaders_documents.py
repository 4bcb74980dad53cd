"""Document loader: metadata, one block per section, every bad input a LoadError, no network."""
from __future__ import annotations

import datetime as dt
import random
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from askcolleague.errors import LoadError
from askcolleague.loaders import DOCUMENT_EXTENSIONS, SourceSpec, load_source
from askcolleague.loaders.documents import load
from askcolleague.models import AuthorRef

FIX = Path(__file__).parent / "fixtures" / "documents"
MAX = 10_000_000


def load_one(path: Path, max_bytes: int = MAX):
    docs = load(path, path.name, max_bytes)
    assert len(docs) == 1
    doc = docs[0]
    assert (doc.doc_id, doc.source, doc.source_type) == (path.name, path.name, "document")
    assert doc.blocks and all(b.text.strip() and b.kind == "document" for b in doc.blocks)
    assert [b.unit_id for b in doc.blocks] == [f"s{i}" for i in range(len(doc.blocks))]
    assert all(b.authors == doc.authors and b.date == doc.date for b in doc.blocks)
    return doc


def sections(doc) -> dict[str | None, str]:
    return {b.section: b.text for b in doc.blocks}


def raises(path: Path, *words: str, max_bytes: int = MAX) -> str:
    with pytest.raises(LoadError) as e:
        load(path, path.name, max_bytes)
    msg = str(e.value)
    assert "\n" not in msg and ";" in msg and path.name not in re.sub(r"\S+\.meta\.yaml", "", msg), msg
    for w in words:
        assert w in msg, msg
    return msg


# ---------------------------------------------------------------- generated binaries

def make_pdf(path: Path, encrypt=None, text: bool = True) -> Path:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import HRFlowable, ListFlowable, ListItem, Paragraph, SimpleDocTemplate

    st = getSampleStyleSheet()
    doc = SimpleDocTemplate(str(path), pagesize=A4, title="Security Guide", author="Dana Lee <dana.lee@acme.example>",
                            subject="Keeping company data safe", keywords="security, passwords", encrypt=encrypt,
                            invariant=1)

    def footer(canvas, _doc):
        if text:
            canvas.drawString(280, 25, f"Page {canvas.getPageNumber()}")

    story = [
        Paragraph("Security Guide", st["Title"]),
        Paragraph("This guide explains how we keep company data safe.", st["Normal"]),
        Paragraph("Passwords", st["Heading1"]),
        Paragraph("Use a password manager and never reuse a password across services.", st["Normal"]),
        ListFlowable([ListItem(Paragraph("Enable two-factor authentication on every account.", st["Normal"]))],
                     bulletType="bullet"),
        Paragraph("Phishing", st["Heading2"]),
        Paragraph("Report phishing emails to the security team within one hour.", st["Normal"]),
        Paragraph("Devices", st["Heading1"]),
        Paragraph("Lock your screen whenever you leave your desk.", st["Normal"]),
    ] if text else [HRFlowable(width="80%")]  # a drawing, no text
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return path


def make_docx(path: Path) -> Path:
    import docx

    d = docx.Document()
    props = d.core_properties
    props.title, props.author, props.keywords = "Travel Policy", "Ann Smith <ann.smith@acme.example>; Raj Patel", "travel; policy"
    props.created, props.modified = dt.datetime(2024, 2, 1, 9, 0), dt.datetime(2024, 2, 3, 17, 30)
    d.add_heading("Travel Policy", 0)
    d.add_paragraph("This policy covers business trips for all employees.")
    d.add_heading("Booking flights", 1)
    d.add_paragraph("Book economy class for flights under six hours through the travel portal.")
    d.add_paragraph("Compare at least two fares.", style="List Bullet")
    d.add_heading("Long-haul exceptions", 2)
    d.add_paragraph("Premium economy is allowed for flights over six hours.")
    table = d.add_table(rows=2, cols=2)
    for (r, c), v in {(0, 0): "Region", (0, 1): "Per diem", (1, 0): "EU", (1, 1): "60 EUR"}.items():
        table.cell(r, c).text = v
    d.add_heading("Hotels", 1)
    d.add_paragraph("Hotels up to 150 EUR per night are approved automatically.")
    d.save(path)
    return path


def make_pptx(path: Path) -> Path:
    import pptx

    p = pptx.Presentation()
    p.core_properties.title, p.core_properties.author = "Q3 Roadmap", "Raj Patel <raj@acme.example>"
    p.core_properties.keywords, p.core_properties.modified = "roadmap, q3", dt.datetime(2024, 7, 1, 8, 0)
    s = p.slides.add_slide(p.slide_layouts[0])
    s.shapes.title.text, s.placeholders[1].text = "Q3 Roadmap", "Platform team"
    s = p.slides.add_slide(p.slide_layouts[1])
    s.shapes.title.text = "Goals"
    body = s.placeholders[1].text_frame
    body.text = "Ship the new billing service by the end of August."
    body.add_paragraph().text = "Retire the legacy message queue before the audit."
    s.notes_slide.notes_text_frame.text = "The billing service has a hard deadline because of the contract renewal."
    s = p.slides.add_slide(p.slide_layouts[1])
    s.shapes.title.text = "Risks"
    s.placeholders[1].text_frame.text = "Two engineers are on parental leave in September."
    p.save(path)
    return path


# ---------------------------------------------------------------- formats

def test_markdown_front_matter_and_sections():
    doc = load_one(FIX / "it-handbook.md")
    assert doc.title == "IT Handbook"
    assert doc.authors == [AuthorRef(name="Dana Lee", email="dana.lee@acme.example"),
                           AuthorRef(name="Raj Patel", email="raj@acme.example")]
    assert (doc.date, doc.url) == ("2024-03-15", "https://wiki.acme.example/it/handbook")
    assert (doc.tags, doc.groups, doc.meta) == (["it", "laptops", "phones"], ["all"], {"format": "md"})
    s = sections(doc)
    assert list(s) == [None, "Laptops", "Laptops > Requesting a laptop", "Laptops > Returning a laptop", "Phones"]
    assert s[None].startswith("This handbook collects")
    assert "- ThinkPad X1 Carbon for everyone else.\nApproval by your manager" in s["Laptops > Requesting a laptop"]
    # '#it-help' at a line start is a Slack channel, not a heading; tables keep their rows.
    assert "Ask in #it-help if you cannot come" in s["Laptops > Returning a laptop"]
    assert "Office | IT desk\nBerlin | Floor 2\nPortland | Floor 5" in s["Laptops > Returning a laptop"]
    assert "# this is a shell comment" in s["Phones"]


def test_plain_text_title_and_headings():
    doc = load_one(FIX / "office-wifi.txt")
    assert (doc.title, doc.authors, doc.date) == ("Office Wi-Fi Guide", [], None)
    s = sections(doc)
    assert list(s) == [None, "WI-FI NETWORKS", "PRINTING"]
    assert s[None] == "Maintained by the IT team."
    assert "The guest password changes on the first day" in s["WI-FI NETWORKS"]
    assert s["PRINTING"] == "- Send print jobs to the follow-me queue.\n- Hold your badge to any printer to release the job."


def test_rst_with_pandoc_and_field_list_metadata():
    doc = load_one(FIX / "onboarding.rst")
    assert (doc.title, doc.date, doc.tags) == ("Onboarding Guide", "2024-06-01", ["onboarding", "hr"])
    assert doc.authors == [AuthorRef(name="Hannah Schmidt", email="hannah.schmidt@acme.example")]
    s = sections(doc)
    assert list(s) == [None, "First day", "First day > Accounts", "First week"]
    assert s[None] == "Welcome to Acme. This guide covers your first week."  # field list is metadata, not text
    assert "- Meet your buddy." in s["First day"]
    assert s["First day > Accounts"] == "IT creates your email account before you start."


def test_html_meta_tags_and_headings():
    doc = load_one(FIX / "vpn.html")
    assert (doc.title, doc.date, doc.url) == ("VPN Setup", "2024-05-02", "https://wiki.acme.example/it/vpn")
    assert doc.authors == [AuthorRef(name="Priya Raman", email="priya.raman@acme.example")]
    assert doc.tags == ["vpn", "network", "remote"]
    s = sections(doc)
    assert list(s) == [None, "Installing the client", "Installing the client > Troubleshooting", "Support"]
    assert "Home" not in "\n".join(s.values())  # navigation is not content
    assert "- macOS: install it from the App Store." in s["Installing the client"]
    assert "Berlin | vpn-ber.acme.example" in s["Installing the client > Troubleshooting"]


def test_eml_headers_and_own_words_only():
    doc = load_one(FIX / "office-move.eml")
    assert (doc.title, doc.date) == ("Office move on Friday", "2024-03-05T09:15:00")
    assert doc.authors == [AuthorRef(name="Jörg Müller", email="joerg.mueller@acme.example")]
    assert len(doc.blocks) == 1 and doc.blocks[0].section is None
    text = doc.blocks[0].text
    assert "The movers come on Friday at eight in the morning." in text
    assert "When exactly" not in text and "wrote:" not in text  # Dana's quoted words are not Jörg's


def test_pdf_info_sections_and_no_page_footer(tmp_path):
    doc = load_one(make_pdf(tmp_path / "security.pdf"))
    assert (doc.title, doc.date, doc.tags) == ("Security Guide", "2000-01-01T00:00:00", ["security", "passwords"])
    assert doc.authors == [AuthorRef(name="Dana Lee", email="dana.lee@acme.example")]
    assert doc.meta == {"format": "pdf", "subject": "Keeping company data safe"}
    s = sections(doc)
    assert list(s) == [None, "Passwords", "Passwords > Phishing", "Devices"]
    assert s[None] == "This guide explains how we keep company data safe."
    assert "never reuse a password" in s["Passwords"] and "Enable two-factor authentication" in s["Passwords"]
    assert s["Passwords > Phishing"] == "Report phishing emails to the security team within one hour."
    assert "Page 1" not in "\n".join(s.values())


def test_docx_core_properties_and_headings(tmp_path):
    doc = load_one(make_docx(tmp_path / "travel.docx"))
    assert (doc.title, doc.date, doc.tags) == ("Travel Policy", "2024-02-03T17:30:00", ["travel", "policy"])
    assert doc.authors == [AuthorRef(name="Ann Smith", email="ann.smith@acme.example"), AuthorRef(name="Raj Patel")]
    s = sections(doc)
    assert list(s) == [None, "Booking flights", "Booking flights > Long-haul exceptions", "Hotels"]
    assert "- Compare at least two fares." in s["Booking flights"]
    assert "Region | Per diem\nEU | 60 EUR" in s["Booking flights > Long-haul exceptions"]


def test_pptx_slides_are_sections_with_speaker_notes(tmp_path):
    doc = load_one(make_pptx(tmp_path / "roadmap.pptx"))
    assert (doc.title, doc.date, doc.tags) == ("Q3 Roadmap", "2024-07-01T08:00:00", ["roadmap", "q3"])
    assert doc.authors == [AuthorRef(name="Raj Patel", email="raj@acme.example")]
    s = sections(doc)
    assert list(s) == [None, "Goals", "Risks"]
    assert s[None] == "Platform team"
    assert "Ship the new billing service" in s["Goals"] and "hard deadline" in s["Goals"]
    assert s["Risks"] == "Two engineers are on parental leave in September."


def test_sidecar_overrides_file_metadata(tmp_path):
    md = shutil.copy(FIX / "it-handbook.md", tmp_path / "it-handbook.md")
    (tmp_path / "it-handbook.md.meta.yaml").write_text(
        "title: Hardware Handbook\nauthor: {name: Priya Raman, email: priya.raman@acme.example}\ngroups: [it]\n")
    doc = load_one(Path(md))
    assert (doc.title, doc.groups) == ("Hardware Handbook", ["it"])
    assert doc.authors == [AuthorRef(name="Priya Raman", email="priya.raman@acme.example")]
    assert doc.blocks[0].authors == doc.authors
    assert (doc.date, doc.url) == ("2024-03-15", "https://wiki.acme.example/it/handbook")  # kept from front matter

    pdf = make_pdf(tmp_path / "guide.pdf")
    (tmp_path / "guide.pdf.meta.yaml").write_text("title: Security Basics\ndate: 2024-09-01\ntags: [security]\n"
                                                  "url: https://wiki.acme.example/security\n")
    doc = load_one(pdf)
    assert (doc.title, doc.date, doc.tags, doc.url) == ("Security Basics", "2024-09-01", ["security"],
                                                        "https://wiki.acme.example/security")
    assert doc.authors == [AuthorRef(name="Dana Lee", email="dana.lee@acme.example")]


def test_title_falls_back_to_first_heading_then_file_name(tmp_path):
    (tmp_path / "notes.md").write_text("# Release Notes\n\nVersion 2 ships the new search page.\n")
    doc = load_one(tmp_path / "notes.md")
    assert doc.title == "Release Notes" and [b.section for b in doc.blocks] == [None]
    (tmp_path / "faq.md").write_text("# Laptops\n\nAsk IT for a laptop.\n\n# Phones\n\nPhones are for on-call.\n")
    doc = load_one(tmp_path / "faq.md")  # two top-level headings: both are sections
    assert doc.title == "Faq" and list(sections(doc)) == ["Laptops", "Phones"]
    (tmp_path / "team_lunch-plans.md").write_text("We meet at noon on Fridays in the big kitchen.\n")
    assert load_one(tmp_path / "team_lunch-plans.md").title == "Team lunch plans"


def test_load_source_wrapper(tmp_path):
    docs = load_source(SourceSpec(path=FIX / "vpn.html", key="docs/vpn.html", kind="document"), MAX)
    assert [d.doc_id for d in docs] == ["docs/vpn.html"]


# ---------------------------------------------------------------- bad input

def test_binary_data_in_text_files(tmp_path):
    for name in ("image.md", "notes.txt", "page.html", "guide.rst"):
        (tmp_path / name).write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
        raises(tmp_path / name, "binary data in a text file", "rename it to its real extension")


def test_invalid_utf8(tmp_path):
    (tmp_path / "latin1.txt").write_bytes("Кафе открыто с 8 до 18.\n".encode("cp1251"))  # (short Western text is read: test_encoding_short.py)
    raises(tmp_path / "latin1.txt", "invalid UTF-8", "re-save the file as UTF-8")


def test_empty_whitespace_and_front_matter_only(tmp_path):
    (tmp_path / "empty.md").write_bytes(b"")
    raises(tmp_path / "empty.md", "empty file")
    (tmp_path / "blank.txt").write_text("  \n\n\t\n")
    raises(tmp_path / "blank.txt", "no text")
    (tmp_path / "meta-only.md").write_text("---\ntitle: Placeholder\n---\n\n")
    raises(tmp_path / "meta-only.md", "no text")


def test_oversize_file():
    raises(FIX / "it-handbook.md", "over the", "ASKCOLLEAGUE_MAX_FILE_MB", max_bytes=100)


def test_invalid_front_matter_and_sidecar(tmp_path):
    (tmp_path / "bad.md").write_text("---\ntitle: Fine\ntags: [a, b\n---\n\nBody text here.\n")
    raises(tmp_path / "bad.md", "front matter is not valid YAML (line 3)", "fix it")
    (tmp_path / "list.md").write_text("---\n- just\n- a list\n---\n\nBody text here.\n")
    raises(tmp_path / "list.md", "front matter is not a YAML mapping")
    shutil.copy(FIX / "vpn.html", tmp_path / "vpn.html")
    (tmp_path / "vpn.html.meta.yaml").write_text("title: [unclosed\n")
    raises(tmp_path / "vpn.html", "sidecar vpn.html.meta.yaml is not valid YAML (line 1); fix it")


def test_corrupt_office_files(tmp_path):
    (tmp_path / "report.docx").write_bytes(b"This is not a zip file at all, just text.")
    raises(tmp_path / "report.docx", "not a valid DOCX file; re-save it")
    with zipfile.ZipFile(tmp_path / "deck.pptx", "w") as z:
        z.writestr("hello.txt", "a zip, but not a presentation")
    raises(tmp_path / "deck.pptx", "not a valid PPTX file; re-save it")


def test_pdf_with_owner_password_only_loads(tmp_path):
    from reportlab.lib.pdfencrypt import StandardEncryption

    pdf = make_pdf(tmp_path / "locked.pdf", encrypt=StandardEncryption("", ownerPassword="owner", canCopy=0))
    assert "Lock your screen" in sections(load_one(pdf))["Devices"]


def test_corrupt_encrypted_and_textless_pdf(tmp_path):
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\ngarbage without xref\n")
    raises(tmp_path / "broken.pdf", "not a readable PDF (", "re-export the file")
    raises(make_pdf(tmp_path / "secret.pdf", encrypt="s3cret"), "PDF is encrypted; remove the password and re-export")
    raises(make_pdf(tmp_path / "scan.pdf", text=False), "PDF has no text layer (scanned?); OCR it first")


@pytest.mark.parametrize("ext", DOCUMENT_EXTENSIONS)
def test_garbage_is_a_load_error_or_a_doc(tmp_path, ext):
    rnd = random.Random(ext)
    for i, data in enumerate([bytes(rnd.randrange(256) for _ in range(3000)), b"PK\x03\x04" + b"\x00" * 50,
                              b"%PDF-1.7\n" + bytes(rnd.randrange(32, 127) for _ in range(500)),
                              "\n".join("".join(rnd.choice("# -*>|`:=_ab\n") for _ in range(40)) for _ in range(50)).encode()]):
        path = tmp_path / f"g{i}{ext}"
        path.write_bytes(data)
        try:
            assert load_one(path)
        except LoadError as e:
            assert "\n" not in str(e) and ";" in str(e)


def test_no_network_during_import_and_partition(tmp_path):
    """Import, spaCy model load and partitioning of every format, with sockets disabled."""
    files = [FIX / n for n in ("it-handbook.md", "office-wifi.txt", "onboarding.rst", "vpn.html", "office-move.eml")]
    files += [make_pdf(tmp_path / "s.pdf"), make_docx(tmp_path / "t.docx"), make_pptx(tmp_path / "r.pptx")]
    script = textwrap.dedent("""
        import socket, sys
        def blocked(*a, **k):
            raise RuntimeError("network used")
        class NoSocket(socket.socket):  # a class, so that modules subclassing socket.socket still import
            __init__ = blocked
        socket.socket, socket.create_connection, socket.getaddrinfo = NoSocket, blocked, blocked
        from pathlib import Path
        from askcolleague.loaders.documents import load
        for f in sys.argv[1:]:
            assert load(Path(f), f, 10_000_000)[0].blocks, f
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", script, *map(str, files)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout == "ok\n"  # nothing noisy on stdout


def _valid_file(tmp_path: Path, ext: str) -> bytes:
    makers = {".pdf": make_pdf, ".docx": make_docx, ".pptx": make_pptx}
    if ext in makers:
        return makers[ext](tmp_path / f"valid{ext}").read_bytes()
    named = {".md": "it-handbook.md", ".markdown": "it-handbook.md", ".txt": "office-wifi.txt",
             ".text": "office-wifi.txt", ".rst": "onboarding.rst", ".html": "vpn.html",
             ".htm": "vpn.html", ".eml": "office-move.eml"}
    return (FIX / named[ext]).read_bytes()


@pytest.mark.parametrize("ext", DOCUMENT_EXTENSIONS)
def test_mutated_valid_files_never_crash(tmp_path_factory, ext):
    """Property: a valid file of each format, truncated, bit-flipped or spliced, loads or is a one-line LoadError."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    base = tmp_path_factory.mktemp("valid")
    valid = _valid_file(base, ext)
    work = tmp_path_factory.mktemp("mutated")

    @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(cut=st.integers(0, len(valid)), flips=st.lists(st.tuples(st.integers(0, len(valid) - 1),
                                                                     st.integers(0, 255)), max_size=12),
           splice=st.binary(max_size=64), how=st.sampled_from(["truncate", "flip", "splice"]))
    def check(cut, flips, splice, how):
        data = bytearray(valid)
        if how == "truncate":
            data = data[:cut]
        elif how == "flip":
            for i, b in flips:
                data[i] = b
        else:
            data[cut:cut] = splice
        path = work / f"m{ext}"
        path.write_bytes(bytes(data))
        try:
            docs = load(path, path.name, MAX)
        except LoadError as e:
            assert "\n" not in str(e) and ";" in str(e), str(e)
        else:
            assert docs and all(d.blocks for d in docs)

    check()
