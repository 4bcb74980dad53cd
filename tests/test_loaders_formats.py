"""The formats of a company share (#13): encodings, spreadsheets, mail and office files, e-books,
OCR, archives, generic XML. Fixtures are written by the libraries and programs that write these
formats (openpyxl, xlwt, odfpy, ebooklib, aspose-email-foss for Outlook .msg, LibreOffice for
.doc/.ppt, Pillow for scans, py7zr), messy and multilingual as real exports are."""
from __future__ import annotations

import datetime as dt
import io
import logging
import shutil
import zipfile
from pathlib import Path

import pytest

from askcolleague.errors import LoadError
from askcolleague.loaders import SourceSpec, discover, kind_of, load_source

MAX = 10_000_000
HAS_TESSERACT = shutil.which("tesseract") is not None
HAS_SOFFICE = shutil.which("soffice") is not None or shutil.which("libreoffice") is not None
needs_tesseract = pytest.mark.skipif(not HAS_TESSERACT, reason="Debian tesseract-ocr is not installed (.ci/run installs it)")
needs_soffice = pytest.mark.skipif(not HAS_SOFFICE, reason="LibreOffice is not installed (.ci/run installs it)")


def load(path: Path, key: str | None = None):
    return load_source(SourceSpec(path, key or path.name, kind_of(path)), MAX)


def one(path: Path):
    docs = load(path)
    assert len(docs) == 1, [d.doc_id for d in docs]
    d = docs[0]
    assert d.doc_id == path.name and d.source == path.name
    return d


def text_of(doc) -> str:
    return "\n".join(b.text for b in doc.blocks)


def skip_reason(path: Path) -> str:
    with pytest.raises(LoadError) as e:
        load(path)
    msg = str(e.value)
    assert "\n" not in msg and ";" in msg, msg
    return msg


# ---------------------------------------------------------------- encodings

GERMAN = ("# Reisekosten für Außendienst\n\nÜbernachtungen in München bis 120 € pro Nacht. Gebühren für "
          "Gepäck werden erstattet, Verspätungen über 30 Minuten bitte melden.\n\n## Verpflegung\n\n"
          "Frühstück ist im Zimmerpreis enthalten; Abendessen bis 25 € — Belege aufheben, Grüße an die Buchhaltung.\n")


def test_cp1252_markdown_is_read_and_its_encoding_recorded(tmp_path):
    p = tmp_path / "reisekosten.md"
    p.write_bytes(GERMAN.encode("cp1252"))
    d = one(p)
    assert d.title == "Reisekosten für Außendienst"
    assert "120 € pro Nacht" in text_of(d) and "Grüße an die Buchhaltung" in text_of(d)
    assert d.meta["encoding"] == "cp1252"


@pytest.mark.parametrize("codec, bom", [("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff"),
                                        ("utf-32-le", b"\xff\xfe\x00\x00"), ("utf-8", b"\xef\xbb\xbf")])
def test_byte_order_marks(tmp_path, codec, bom):
    p = tmp_path / "notes.txt"
    p.write_bytes(bom + "Gäste-WLAN\n\nWi-Fi: Gäste-Netz „Besucher“, Passwort beim Empfang — 日本語のメモ\n".encode(codec))
    d = one(p)
    assert "Gäste-Netz „Besucher“" in text_of(d) and "日本語のメモ" in text_of(d)
    assert d.meta.get("encoding") == (codec if codec != "utf-8" else "utf-8-sig")


def test_utf16_without_a_mark_and_a_broken_mark(tmp_path):
    p = tmp_path / "export.txt"
    p.write_bytes("Server room\n\nThe code is 4711, ask Zoë at the front desk.\n".encode("utf-16-le"))
    assert "ask Zoë" in text_of(one(p))
    bad = tmp_path / "half.txt"
    bad.write_bytes(b"\xff\xfeab\x00")  # odd length after a UTF-16 mark
    assert "UTF-16 byte-order mark but is not valid UTF-16" in skip_reason(bad)


def test_html_declared_latin1_charset(tmp_path):
    html = ("<html><head><meta http-equiv='Content-Type' content='text/html; charset=iso-8859-1'>"
            "<title>Öffnungszeiten Kantine</title></head><body><h1>Öffnungszeiten Kantine</h1>"
            "<p>Die Kantine öffnet um 11:30 Uhr. Spätzle gibt es dienstags; Getränke kosten 1,50 €.</p></body></html>")
    p = tmp_path / "kantine.html"
    p.write_bytes(html.encode("cp1252"))
    d = one(p)
    assert "Spätzle gibt es dienstags" in text_of(d) and "1,50 €" in text_of(d)
    assert d.meta["encoding"] == "cp1252"  # WHATWG: iso-8859-1 is read as windows-1252


def test_short_undecodable_text_still_names_the_fix(tmp_path):
    p = tmp_path / "tiny.txt"
    p.write_bytes("Привет".encode("cp1251"))  # (short Western text is read: test_encoding_short.py)
    assert "invalid UTF-8" in skip_reason(p) and "re-save the file as UTF-8" in skip_reason(p)


# ---------------------------------------------------------------- spreadsheets

def make_xlsx(path: Path, ext: str = ".xlsx") -> Path:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Revenue"
    ws.append(["Quarterly revenue 2026 (EUR)"])  # a title line above the header, as real reports have
    ws.append([])
    ws.append(["Region", "Q3 revenue", "Owner", "Closed on"])
    ws.append(["EMEA", "4.2M", "Jürgen Weiß", dt.datetime(2026, 9, 30)])
    ws.append(["APAC", 3100000, "Mei Tanaka", dt.datetime(2026, 9, 28)])
    ws.append(["Amériques", 2.5, None, None])
    other = wb.create_sheet("Notes")
    other.append(["Topic", "Note"])
    other.append(["Forecast", "Q4 depends on the Lyon contract"])
    wb.properties.creator = "Jürgen Weiß <j.weiss@acme.example>"
    wb.properties.title = "Revenue by region"
    wb.properties.created = dt.datetime(2026, 10, 2, 9, 0)
    wb.save(path.with_suffix(ext))
    return path.with_suffix(ext)


@pytest.mark.parametrize("ext", [".xlsx", ".xlsm"])
def test_xlsx_rows_carry_their_column_names(tmp_path, ext):
    d = one(make_xlsx(tmp_path / "revenue", ext))
    assert d.title == "Revenue by region"
    assert [a.name for a in d.authors] == ["Jürgen Weiß"] and d.authors[0].email == "j.weiss@acme.example"
    assert d.date >= "2026-10-02T09:00:00"  # the later of created and modified (openpyxl sets modified on save)
    sections = {b.section: b for b in d.blocks}
    rev = sections["Revenue"].text.splitlines()
    assert rev[0] == "Quarterly revenue 2026 (EUR)"
    assert "Region: EMEA · Q3 revenue: 4.2M · Owner: Jürgen Weiß · Closed on: 2026-09-30" in rev
    assert "Region: APAC · Q3 revenue: 3100000 · Owner: Mei Tanaka · Closed on: 2026-09-28" in rev
    assert "Region: Amériques · Q3 revenue: 2.5" in rev
    assert sections["Revenue"].context.startswith("Columns: Region · Q3 revenue · Owner · Closed on")
    assert sections["Notes"].text == "Topic: Forecast · Note: Q4 depends on the Lyon contract"
    assert d.meta["sheets"] == ["Revenue", "Notes"] and d.meta["rows"] == 4


def test_big_sheet_is_bounded_with_a_warning_and_header_in_every_block(tmp_path, monkeypatch, caplog):
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Ticket", "Summary", "Assignee"])
    for i in range(1, 400):
        ws.append([f"IT-{i}", f"Laptop {i} does not boot after the BIOS update", "Raj Patel"])
    wb.save(tmp_path / "tickets.xlsx")
    monkeypatch.setenv("ASKCOLLEAGUE_SHEET_MAX_ROWS", "250")
    with caplog.at_level(logging.WARNING, logger="askcolleague.loaders"):
        d = one(tmp_path / "tickets.xlsx")
    assert "Ticket: IT-250 ·" in text_of(d) and "IT-251 " not in text_of(d)
    assert d.meta["truncated"] and d.meta["rows"] == 250
    assert any("tickets.xlsx" in r.getMessage() and "ASKCOLLEAGUE_SHEET_MAX_ROWS" in r.getMessage() for r in caplog.records)
    assert len(d.blocks) > 5  # rows grouped to about one chunk per block
    assert all(b.context.startswith("Columns: Ticket · Summary · Assignee") for b in d.blocks)
    assert all(b.text.startswith("Ticket: IT-") for b in d.blocks)


def test_xls_written_by_xlwt(tmp_path):
    import xlwt

    wb = xlwt.Workbook(encoding="utf-8")
    ws = wb.add_sheet("Inventar")
    for r, row in enumerate([["Gerät", "Standort", "Anzahl"], ["Drucker", "Köln, 3. OG", 4], ["Beamer", "Zürich", 2]]):
        for c, v in enumerate(row):
            ws.write(r, c, v)
    wb.save(str(tmp_path / "inventar.xls"))
    d = one(tmp_path / "inventar.xls")
    assert d.blocks[0].section == "Inventar"
    assert "Gerät: Drucker · Standort: Köln, 3. OG · Anzahl: 4" in d.blocks[0].text


def test_ods_written_by_odfpy(tmp_path):
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.dc import Creator, Title
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    doc = OpenDocumentSpreadsheet()
    doc.meta.addElement(Creator(text="Ana Souza"))
    doc.meta.addElement(Title(text="Escala de plantão"))
    t = Table(name="Plantão")
    for row in [["Semana", "Responsável", "Telefone"], ["36", "Ana Souza", "+55 11 5555-0101"], ["37", "João Lima", None]]:
        tr = TableRow()
        for v in row:
            tc = TableCell(valuetype="string") if v else TableCell(numbercolumnsrepeated=3)
            if v:
                tc.addElement(P(text=v))
            tr.addElement(tc)
        t.addElement(tr)
    t.addElement(TableRow(numberrowsrepeated=1048570))  # the empty rows LibreOffice writes to the bottom
    doc.spreadsheet.addElement(t)
    doc.save(str(tmp_path / "plantao.ods"))
    d = one(tmp_path / "plantao.ods")
    assert d.title == "Escala de plantão" and [a.name for a in d.authors] == ["Ana Souza"]
    assert d.blocks[0].text.splitlines() == ["Semana: 36 · Responsável: Ana Souza · Telefone: +55 11 5555-0101",
                                             "Semana: 37 · Responsável: João Lima"]


def test_csv_cp1252_semicolons_and_tsv(tmp_path):
    rows = "Kunde;Ansprechpartner;Umsatz 2025\nMüller GmbH;Frau Schäfer;1.250.000 €\nBäckerei Öztürk;Herr Öztürk;85.000 €\n"
    (tmp_path / "kunden.csv").write_bytes(rows.encode("cp1252"))
    d = one(tmp_path / "kunden.csv")
    assert "Kunde: Müller GmbH · Ansprechpartner: Frau Schäfer · Umsatz 2025: 1.250.000 €" in d.blocks[0].text
    assert d.meta["encoding"] == "cp1252" and d.blocks[0].section is None
    (tmp_path / "oncall.tsv").write_text("name\tteam\tphone\nDana Lee\tPlatform\t+1 555 0100\n", encoding="utf-8")
    assert one(tmp_path / "oncall.tsv").blocks[0].text == "name: Dana Lee · team: Platform · phone: +1 555 0100"


def test_csv_authors_from_a_sidecar(tmp_path):
    (tmp_path / "budget.csv").write_text("item,cost\nlaptops,12000\n")
    (tmp_path / "budget.csv.meta.yaml").write_text("author: Raj Patel <raj@acme.example>\ndate: 2026-01-15\n")
    d = one(tmp_path / "budget.csv")
    assert d.blocks[0].authors[0].email == "raj@acme.example" and d.date == "2026-01-15"


# ---------------------------------------------------------------- mail and office

def make_msg(path: Path, attachment: tuple[str, bytes] | None = None) -> Path:
    from aspose.email_foss import msg

    body = ("Hallo Team,\n\ndie Zahlen für EMEA sind final: 4,2 Mio. €. Bitte bis Freitag freigeben.\n\nGrüße\nJürgen\n\n"
            "From: Alice Example <alice@example.com>\nSent: Monday, March 9, 2026 08:00\nTo: Jürgen Weiß\n"
            "Subject: Q3 Budget\n\nCan you send the final numbers?\n")
    m = msg.MapiMessage.create("RE: Q3 Budget – Freigabe", body)
    m.set_property(msg.PropertyId.SENDER_NAME, "Jürgen Weiß")
    m.set_property(msg.PropertyId.SENDER_EMAIL_ADDRESS, "j.weiss@acme.example")
    m.set_property(msg.PropertyId.MESSAGE_DELIVERY_TIME, dt.datetime(2026, 3, 15, 10, 30, tzinfo=dt.timezone.utc))
    m.add_recipient("alice@example.com", display_name="Alice Example")
    if attachment:
        m.add_attachment(attachment[0], attachment[1], mime_type="text/plain")
    m.save(str(path))
    return path


def test_outlook_msg_sender_recipients_and_attachment(tmp_path):
    note = "Budget notes\n\nThe Lyon contract adds 300k in Q4; the travel budget stays flat.\n".encode()
    docs = load(make_msg(tmp_path / "budget.msg", ("notes.txt", note)))
    by_id = {d.doc_id: d for d in docs}
    mail = by_id["budget.msg"]
    assert mail.title == "RE: Q3 Budget – Freigabe" and mail.date == "2026-03-15T10:30:00"
    assert [(a.name, a.email) for a in mail.authors] == [("Jürgen Weiß", "j.weiss@acme.example")]
    assert "die Zahlen für EMEA sind final" in text_of(mail)
    assert "Can you send the final numbers" not in text_of(mail)  # the quoted original is Alice's, not his
    assert any("alice@example.com" in r for r in mail.meta["recipients"])
    assert mail.meta["attachments"] == ["notes.txt"]
    att = by_id["budget.msg!/notes.txt"]
    assert att.source == "budget.msg" and att.meta["attached_to"] == "budget.msg"
    assert "Lyon contract adds 300k" in text_of(att) and att.authors[0].email == "j.weiss@acme.example"


def test_not_a_msg(tmp_path):
    (tmp_path / "fake.msg").write_text("From: someone\n\nthis is a text file renamed to .msg\n")
    assert "not an Outlook message" in skip_reason(tmp_path / "fake.msg")


def make_odt(path: Path) -> Path:
    from odf.dc import Creator, Title
    from odf.opendocument import OpenDocumentText
    from odf.text import H, List, ListItem, P

    doc = OpenDocumentText()
    doc.meta.addElement(Title(text="Politique de télétravail"))
    doc.meta.addElement(Creator(text="Élodie Martin"))
    doc.text.addElement(H(outlinelevel=1, text="Politique de télétravail"))
    doc.text.addElement(P(text="Chaque salarié peut travailler à domicile deux jours par semaine."))
    doc.text.addElement(H(outlinelevel=2, text="Équipement"))
    lst = List()
    item = ListItem()
    item.addElement(P(text="Un écran et un casque sont fournis."))
    lst.addElement(item)
    doc.text.addElement(lst)
    doc.text.addElement(H(outlinelevel=2, text="Horaires"))
    doc.text.addElement(P(text="Joignable entre 10h et 16h."))
    doc.save(str(path))
    return path


def test_odt_sections_and_author(tmp_path):
    d = one(make_odt(tmp_path / "teletravail.odt"))
    assert d.title == "Politique de télétravail" and [a.name for a in d.authors] == ["Élodie Martin"]
    secs = {b.section: b.text for b in d.blocks}
    assert secs[None] == "Chaque salarié peut travailler à domicile deux jours par semaine."
    assert secs["Équipement"] == "- Un écran et un casque sont fournis."
    assert secs["Horaires"] == "Joignable entre 10h et 16h."


def test_odp_slides_are_sections(tmp_path):
    from odf.draw import Frame, Page, TextBox
    from odf.namespaces import PRESENTATIONNS
    from odf.opendocument import OpenDocumentPresentation
    from odf.style import MasterPage, PageLayout
    from odf.text import P

    doc = OpenDocumentPresentation()
    layout = PageLayout(name="pl")
    doc.automaticstyles.addElement(layout)
    master = MasterPage(name="m", pagelayoutname=layout)
    doc.masterstyles.addElement(master)
    for title, body in [("Roadmap Q3", "Ship SSO for every app"), ("Risks", "Vendor contract ends in October")]:
        page = Page(masterpagename=master)
        for cls, text in (("title", title), ("outline", body)):
            frame = Frame(width="20cm", height="3cm", x="1cm", y="1cm")
            frame.setAttrNS(PRESENTATIONNS, "class", cls)
            box = TextBox()
            box.addElement(P(text=text))
            frame.addElement(box)
            page.addElement(frame)
        doc.presentation.addElement(page)
    doc.save(str(tmp_path / "roadmap.odp"))
    secs = {b.section: b.text for b in one(tmp_path / "roadmap.odp").blocks}
    assert secs == {"Roadmap Q3": "Ship SSO for every app", "Risks": "Vendor contract ends in October"}


def test_rtf_with_cp1252_escapes_and_info(tmp_path):
    rtf = (r"{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0 Calibri;}}{\info{\title Caf\'e9 opening hours}"
           r"{\author Ren\'e9e Dupont}{\creatim\yr2025\mo11\dy3\hr9\min5}}"
           r"\pard The caf\'e9 opens at 8:00.\par Cr\'e8me br\'fbl\'e9e on Fridays \endash  ask Ren\'e9e.\par}")
    (tmp_path / "cafe.rtf").write_bytes(rtf.encode("ascii"))
    d = one(tmp_path / "cafe.rtf")
    assert d.title == "Café opening hours" and d.authors[0].name == "Renée Dupont" and d.date == "2025-11-03"
    assert "The café opens at 8:00." in text_of(d) and "Crème brûlée on Fridays" in text_of(d)


@needs_soffice
def test_rtf_written_by_libreoffice(tmp_path):
    import subprocess

    src = make_odt(tmp_path / "policy.odt")
    subprocess.run(["soffice", "--headless", f"-env:UserInstallation=file://{tmp_path}/lo", "--convert-to", "rtf",
                    "--outdir", str(tmp_path / "out"), str(src)], check=True, capture_output=True, timeout=180)
    d = one(tmp_path / "out" / "policy.rtf")
    assert "Un écran et un casque sont fournis." in text_of(d)


def test_epub_chapters_and_authors(tmp_path):
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("handbook-2026")
    book.set_title("Employee Handbook")
    book.set_language("en")
    book.add_author("Dana Lee")
    book.add_author("Raj Patel")
    chapters = []
    for i, (title, body) in enumerate([("Welcome", "<p>Badges are collected at reception on day one.</p>"),
                                       ("Expenses", "<p>Submit receipts within <b>30 days</b> in the portal.</p>")], 1):
        c = epub.EpubHtml(title=title, file_name=f"ch{i}.xhtml", lang="en")
        c.content = f"<h1>{title}</h1>{body}"
        book.add_item(c)
        chapters.append(c)
    book.toc = chapters
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *chapters]
    epub.write_epub(str(tmp_path / "handbook.epub"), book)
    d = one(tmp_path / "handbook.epub")
    assert d.title == "Employee Handbook" and [a.name for a in d.authors] == ["Dana Lee", "Raj Patel"]
    assert {b.section: b.text for b in d.blocks} == {"Welcome": "Badges are collected at reception on day one.",
                                                    "Expenses": "Submit receipts within 30 days in the portal."}


def test_org_mode(tmp_path):
    (tmp_path / "infra.org").write_text(
        "#+TITLE: Infra notes\n#+AUTHOR: Dana Lee\n#+DATE: <2026-02-01 Sun>\n#+FILETAGS: :infra:k8s:\n\n"
        "* TODO Upgrade the cluster                                        :ops:\n"
        "  :PROPERTIES:\n  :ID: 1234\n  :END:\n"
        "  Drain nodes one at a time; see [[https://wiki.acme.example/drain][the drain guide]].\n"
        "** Rollback\n  - keep the old node pool for a day\n"
        "#+BEGIN_SRC sh\nkubectl drain node-1\n#+END_SRC\n", encoding="utf-8")
    d = one(tmp_path / "infra.org")
    assert (d.title, d.authors[0].name, d.date, d.tags) == ("Infra notes", "Dana Lee", None, ["infra", "k8s"]) or \
        (d.title, d.authors[0].name, d.tags) == ("Infra notes", "Dana Lee", ["infra", "k8s"])
    secs = {b.section: b.text for b in d.blocks}
    assert "the drain guide (https://wiki.acme.example/drain)" in secs["Upgrade the cluster"]
    assert ":ID:" not in text_of(d)
    assert secs["Upgrade the cluster > Rollback"].splitlines() == ["- keep the old node pool for a day", "kubectl drain node-1"]


def _docx(path: Path) -> Path:
    import docx

    d = docx.Document()
    d.core_properties.author, d.core_properties.title = "Jürgen Weiß", "Reisekostenrichtlinie"
    d.add_heading("Reisekostenrichtlinie", 1)
    d.add_paragraph("Hotels bis 120 EUR pro Nacht werden ohne Rückfrage erstattet.")
    d.add_heading("Bahn", 2)
    d.add_paragraph("Zweite Klasse, ab vier Stunden Fahrt erste Klasse.")
    d.save(path)
    return path


def _convert(src: Path, target: str, out: Path) -> Path:
    import subprocess

    subprocess.run(["soffice", "--headless", f"-env:UserInstallation=file://{out}/lo", "--convert-to", target,
                    "--outdir", str(out), str(src)], check=True, capture_output=True, timeout=180)
    return out / f"{src.stem}.{target}"


@needs_soffice
def test_legacy_doc_and_ppt_through_libreoffice(tmp_path):
    import pptx

    doc = _convert(_docx(tmp_path / "reise.docx"), "doc", tmp_path / "out")
    d = one(doc)
    assert d.meta["format"] == "doc" and d.meta["converted_with"] == "libreoffice"
    assert d.authors[0].name == "Jürgen Weiß"
    assert {b.section: b.text for b in d.blocks}["Bahn"] == "Zweite Klasse, ab vier Stunden Fahrt erste Klasse."
    p = pptx.Presentation()
    s = p.slides.add_slide(p.slide_layouts[1])
    s.shapes.title.text = "Security review"
    s.placeholders[1].text = "Rotate the VPN certificates before June"
    p.core_properties.author = "Mei Tanaka"
    p.save(tmp_path / "review.pptx")
    d = one(_convert(tmp_path / "review.pptx", "ppt", tmp_path / "out"))
    assert "Rotate the VPN certificates before June" in text_of(d) and d.authors[0].name == "Mei Tanaka"


def test_legacy_doc_without_libreoffice_says_what_to_install(tmp_path, monkeypatch):
    from askcolleague.loaders import office

    monkeypatch.setattr(office, "soffice", lambda: None)
    (tmp_path / "old.doc").write_bytes(office.OLE_MAGIC + b"\x00" * 600)
    assert "apt-get install libreoffice-writer-nogui" in skip_reason(tmp_path / "old.doc")
    (tmp_path / "old.ppt").write_bytes(office.OLE_MAGIC + b"\x00" * 600)
    assert "apt-get install libreoffice-impress-nogui" in skip_reason(tmp_path / "old.ppt")
    (tmp_path / "renamed.doc").write_text("plain text saved as .doc")
    assert "not a Word 97-2003 file" in skip_reason(tmp_path / "renamed.doc")


# ---------------------------------------------------------------- OCR

SCAN_TEXT = ["Visitor WiFi password", "is printed on the badge", "at the front desk"]


def scan(lines: list[str], size=(1400, 500)):
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("L", size, 255)
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=56)
    for i, line in enumerate(lines):
        draw.text((60, 60 + i * 120), line, fill=0, font=font)
    return img


@needs_tesseract
@pytest.mark.parametrize("ext", [".png", ".jpg", ".tiff"])
def test_image_is_read_by_ocr_and_marked(tmp_path, ext):
    path = tmp_path / f"notice{ext}"
    scan(SCAN_TEXT).save(path)
    d = one(path)
    words = text_of(d).lower()
    assert "visitor" in words and "password" in words and "front desk" in words
    assert d.meta["ocr"] is True and d.meta["ocr_languages"] == "eng" and d.meta["ocr_confidence"] > 60
    assert all("(OCR)" in b.section for b in d.blocks)


@needs_tesseract
def test_scanned_pdf_pages_are_ocrd(tmp_path):
    pages = [scan(SCAN_TEXT).convert("RGB"), scan(["Printer on floor 3", "needs a new toner"]).convert("RGB")]
    pages[0].save(tmp_path / "scan.pdf", save_all=True, append_images=pages[1:], resolution=150)
    d = one(tmp_path / "scan.pdf")
    secs = {b.section: b.text.lower() for b in d.blocks}
    assert "front desk" in secs["Page 1 (OCR)"] and "toner" in secs["Page 2 (OCR)"]
    assert d.meta["ocr"] is True and d.meta["ocr_pages"] == [1, 2]


@needs_tesseract
def test_blank_image_is_skipped_with_a_reason(tmp_path):
    from PIL import Image

    Image.new("RGB", (800, 600), (250, 250, 250)).save(tmp_path / "blank.png")
    assert "no text found in the image" in skip_reason(tmp_path / "blank.png")


def test_ocr_off_or_missing(tmp_path, monkeypatch):
    from askcolleague.loaders import ocr

    scan(SCAN_TEXT).save(tmp_path / "scan.png")
    monkeypatch.setenv("ASKCOLLEAGUE_OCR", "0")
    assert "ASKCOLLEAGUE_OCR=1" in skip_reason(tmp_path / "scan.png")
    monkeypatch.delenv("ASKCOLLEAGUE_OCR")
    monkeypatch.setattr(ocr.shutil, "which", lambda name: None)
    assert "apt-get install tesseract-ocr" in skip_reason(tmp_path / "scan.png")
    scan(SCAN_TEXT).convert("RGB").save(tmp_path / "scan.pdf")
    msg = skip_reason(tmp_path / "scan.pdf")
    assert "PDF has no text layer (scanned?)" in msg and "apt-get install tesseract-ocr" in msg


def test_damaged_image(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    assert "not a readable image" in skip_reason(tmp_path / "broken.png")


# ---------------------------------------------------------------- archives

def test_zip_of_documents_is_a_folder(tmp_path):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr("deep/faq.md", "# FAQ\n\nThe printer queue is called floor3-color.\n")
    with zipfile.ZipFile(tmp_path / "share.zip", "w") as z:
        z.writestr("HR/urlaub.md", GERMAN.encode("cp1252"))
        z.writestr("HR/urlaub.md.meta.yaml", "author: Frau Schäfer\n")
        z.writestr("Finance/kunden.csv", "Kunde,Umsatz\nMüller GmbH,1000\n")
        z.writestr("../../etc/evil.md", "# Evil\n\nshould never be read\n")
        z.writestr("/abs/evil.md", "# Evil\n\nshould never be read\n")
        z.writestr("__MACOSX/HR/._urlaub.md", b"\x00\x05\x16\x07")
        z.writestr("tools/setup.exe", b"MZ\x90\x00")
        z.writestr("nested.zip", inner.getvalue())
    assert kind_of(tmp_path / "share.zip") == "archive"
    docs = {d.doc_id: d for d in load(tmp_path / "share.zip")}
    assert set(docs) == {"share.zip!/HR/urlaub.md", "share.zip!/Finance/kunden.csv", "share.zip!/nested.zip!/deep/faq.md"}
    assert all(d.source == "share.zip" for d in docs.values())
    urlaub = docs["share.zip!/HR/urlaub.md"]
    assert urlaub.authors[0].name == "Frau Schäfer" and urlaub.meta["encoding"] == "cp1252"
    assert "floor3-color" in text_of(docs["share.zip!/nested.zip!/deep/faq.md"])


def test_archive_bounds_and_depth(tmp_path, monkeypatch):
    with zipfile.ZipFile(tmp_path / "many.zip", "w") as z:
        for i in range(30):
            z.writestr(f"n{i}.txt", f"note {i}")
    monkeypatch.setenv("ASKCOLLEAGUE_ARCHIVE_MAX_MEMBERS", "20")
    assert "ASKCOLLEAGUE_ARCHIVE_MAX_MEMBERS" in skip_reason(tmp_path / "many.zip")
    monkeypatch.delenv("ASKCOLLEAGUE_ARCHIVE_MAX_MEMBERS")
    with zipfile.ZipFile(tmp_path / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("zeros.txt", b"0" * 3_000_000)
    monkeypatch.setenv("ASKCOLLEAGUE_ARCHIVE_MAX_MB", "1")
    assert "ASKCOLLEAGUE_ARCHIVE_MAX_MB" in skip_reason(tmp_path / "bomb.zip")
    monkeypatch.delenv("ASKCOLLEAGUE_ARCHIVE_MAX_MB")
    data = b""
    for level in range(3):  # three archives deep: the innermost is not read
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr(f"l{level}.md", f"# Level {level}\n\nText at level {level}.\n")
            if data:
                z.writestr(f"inner{level}.zip", data)
        data = buf.getvalue()
    (tmp_path / "russian.zip").write_bytes(data)
    ids = {d.doc_id for d in load(tmp_path / "russian.zip")}
    assert ids == {"russian.zip!/l2.md", "russian.zip!/inner2.zip!/l1.md"}


def test_7z_archive(tmp_path):
    import py7zr

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "wiki.md").write_text("# Wiki\n\nThe VPN gateway is vpn2.acme.example.\n")
    with py7zr.SevenZipFile(tmp_path / "backup.7z", "w") as z:
        z.write(tmp_path / "src" / "wiki.md", "docs/wiki.md")
    assert kind_of(tmp_path / "backup.7z") == "archive"
    (d,) = load(tmp_path / "backup.7z")
    assert d.doc_id == "backup.7z!/docs/wiki.md" and "vpn2.acme.example" in text_of(d)


def test_slack_zip_is_still_slack(tmp_path):
    with zipfile.ZipFile(tmp_path / "export.zip", "w") as z:
        z.writestr("export/users.json", "[]")
        z.writestr("export/channels.json", "[]")
    assert kind_of(tmp_path / "export.zip") == "slack"


# ---------------------------------------------------------------- generic XML

def test_generic_xml_with_title_and_no_entities(tmp_path):
    (tmp_path / "runbook.xml").write_text(
        '<?xml version="1.0" encoding="ISO-8859-1"?>\n<runbook><title>Restart the payroll service</title>'
        "<step n='1'>Stop the cron jobs on pay-01.</step><step n='2'>Restart payroll and check the log.</step></runbook>",
        encoding="latin-1")
    assert kind_of(tmp_path / "runbook.xml") == "xml"
    d = one(tmp_path / "runbook.xml")
    assert d.title == "Restart the payroll service" and d.meta["encoding"] == "iso-8859-1"
    assert text_of(d).splitlines() == ["Stop the cron jobs on pay-01.", "Restart payroll and check the log."]
    (tmp_path / "laughs.xml").write_text('<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaa">]><l>&a;&a;</l>')
    assert "entities" in skip_reason(tmp_path / "laughs.xml")


# ---------------------------------------------------------------- discovery

def test_discovery_reads_every_new_type(tmp_path):
    make_xlsx(tmp_path / "r")
    make_odt(tmp_path / "t.odt")
    (tmp_path / "a.org").write_text("* Heading\nbody\n")
    specs, _people, problems = discover([tmp_path])
    assert {s.path.name: s.kind for s in specs} == {"r.xlsx": "document", "t.odt": "document", "a.org": "document"}
    assert not problems


@needs_tesseract
def test_ocr_passages_are_marked_on_their_citations(tmp_path, fake_embedder):
    """A passage read by OCR says so wherever it is cited: `ocr: true` in the JSON, "OCR" in the
    terminal and on the web's source card; a typed document beside it is not marked."""
    import jsonschema

    from askcolleague.answer import Assistant
    from askcolleague.indexing.build import build
    from askcolleague.schema import ANSWER_SCHEMA
    from askcolleague.web.render import sources_html

    root = tmp_path / "kb"
    root.mkdir()
    scan(SCAN_TEXT).save(root / "notice.png")
    (root / "wifi.md").write_text("# Office Wi-Fi\n\nThe staff Wi-Fi password changes every month and IT posts it.\n")
    build([root], tmp_path / "idx", embedder=fake_embedder, warn=lambda m: None)
    asst = Assistant.from_index(tmp_path / "idx", embedder=fake_embedder)
    ans = asst.ask("Where is the visitor WiFi password printed?", mode="bm25")
    cites = {c.doc_id: c for c in ans.citations + ans.more_results}
    ocr = next(c for d, c in cites.items() if d.endswith("notice.png"))
    typed = next(c for d, c in cites.items() if d.endswith("wifi.md"))
    assert ocr.ocr is True and typed.ocr is False
    d = ans.to_dict()
    jsonschema.validate(d, ANSWER_SCHEMA)
    assert ocr.n == 1  # the notice answers it
    assert "OCR: may hold recognition errors" in ans.render()
    assert 'class="ac-ocr"' in sources_html([{"question": "q", "answer": d}])
