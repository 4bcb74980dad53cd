"""Document loader (md, txt, rst, html, docx, pptx, eml, pdf): one Doc per file, one Block per section.

Spreadsheets (loaders.sheets), mail and office formats beyond these (loaders.office) and images
(loaders.ocr) are documents too: ``load`` hands them to their modules. Text files are decoded by
loaders.encoding (byte-order marks, declared charsets, detection); an encoding other than UTF-8 is
recorded in ``meta["encoding"]``. PDF pages without a text layer are OCR'd (loaders.ocr).
"""
from __future__ import annotations

import email
import email.policy
import email.utils
import io
import logging
import re
import threading
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .._offline import patch_unstructured
from ..errors import LoadError, MetadataError
from ..models import Doc
from . import ocr, office, sheets
from .base import latest_date, read_bytes
from .elements import element_doc
from .encoding import declared_charset, decode
from .meta import check_keys
from .meta import fields as _fields
from .meta import given as _given
from .meta import read_sidecar
from .meta import split_people as _people
from .meta import yaml_mapping as _yaml_mapping
from .ocr import IMAGE_EXTENSIONS
from .office import OFFICE_EXTENSIONS, docx_pptx
from .sheets import SHEET_EXTENSIONS

_FORMATS = {".md": "md", ".markdown": "md", ".txt": "txt", ".text": "txt", ".rst": "rst", ".html": "html",
            ".htm": "html", ".pdf": "pdf", ".docx": "docx", ".pptx": "pptx", ".eml": "eml"}
_FRONT_MATTER = re.compile(r"---[ \t]*\n(.*?\n)?(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S)
_LEADING = re.compile(r"[\s\ufeff\u200b\u200c\u200d\u2060]*")  # blank lines, spaces, BOMs before front matter
_OPENS = re.compile(r"(---|\+\+\+)[ \t]*\n[\s\ufeff]*([^\n]*)")  # an opening line and the first line after it
_KEY_LINE = re.compile(r"[\"']?[A-Za-z_][\w .-]*[\"']?[ \t]*(:|=)([ \t]|$)")  # `key: value` (or TOML `key = value`)
_META_KEY = re.compile(r"^[ \t]*[\"']?(title|authors?|date|url|tags|groups?)[\"']?[ \t]*[:=]", re.I | re.M)
_RST_FIELD = re.compile(r"^:(title|authors?|date|url|tags|groups):[ \t]*(.*)\n?", re.I | re.M)
_HASH_LINE = re.compile(r"^#+[^#\s]")  # '#channel' at a line start: a heading to Python-Markdown only
_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_CID = re.compile(r"\(cid:\d+\)")
_QUOTE = re.compile(r"^(>|On\b.{0,300}\bwrote:\s*(>|$))", re.S)
_ORIGINAL = re.compile(r"^-{3,}\s*Original Message\s*-{3,}", re.I)


def load(path: Path, key: str, max_bytes: int) -> list[Doc]:
    """Read one document file into a Doc whose blocks are its sections."""
    ext = path.suffix.lower()
    if ext in SHEET_EXTENSIONS:
        return sheets.load(path, key, max_bytes)
    if ext in OFFICE_EXTENSIONS:
        return office.load(path, key, max_bytes)
    if ext in IMAGE_EXTENSIONS:
        return ocr.load_image(path, key, max_bytes)
    fmt = _FORMATS.get(ext)
    if fmt is None:
        raise LoadError(f"unsupported document type '{path.suffix}'; convert it to PDF, DOCX or Markdown")
    data = read_bytes(path, max_bytes)
    sidecar = _sidecar(path)
    try:
        meta, elements = _parse(fmt, data, max_bytes)
    except LoadError:
        raise
    except Exception as e:  # a parser failure on a malformed file
        msg = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise LoadError(f"could not parse ({msg}); check the file is a valid {fmt} file") from None
    return [element_doc(path, key, fmt, {**meta, **sidecar}, elements)]


# ---------------------------------------------------------------- formats

def _parse(fmt: str, data: bytes, max_bytes: int) -> tuple[dict[str, Any], list]:
    """(metadata fields, unstructured elements) for one file's bytes."""

    patch_unstructured()
    if fmt == "pdf":
        return _pdf(data)
    if fmt in ("docx", "pptx"):
        return docx_pptx(fmt, data, max_bytes)
    if fmt == "eml":
        return _eml(data)
    text, encoding = decode(data, declared=declared_charset(data) if fmt == "html" else None)
    meta, elements = _text_format(fmt, text.replace("\r\n", "\n"))
    if encoding != "utf-8":
        meta = {**meta, "encoding": encoding}
    return meta, elements


def _text_format(fmt: str, text: str) -> tuple[dict[str, Any], list]:
    front, text = _front_matter(text, fmt)
    if front and not text.strip():
        raise LoadError("no text after the front matter; add content or remove the file")
    if fmt == "md":
        from unstructured.partition.md import partition_md  # (lazy: loaded only when used, so start-up stays fast)

        meta = front
        with _untagged_paragraphs():
            return meta, partition_md(text=_escape_hash_lines(text), languages=[""])
    if fmt == "html":
        from unstructured.partition.html import partition_html  # (lazy: loaded only when used, so start-up stays fast)

        with _untagged_paragraphs():
            return _html_meta(text), partition_html(text=text, languages=[""])
    if fmt == "rst":
        from unstructured.partition.rst import partition_rst  # (lazy: loaded only when used, so start-up stays fast)

        meta = {**front, **_fields({m.group(1): m.group(2).strip() for m in _RST_FIELD.finditer(text)})}
        with _untagged_paragraphs():
            return meta, partition_rst(file=io.BytesIO(_RST_FIELD.sub("", text).encode()), languages=[""])
    from unstructured.partition.text import partition_text  # (lazy: loaded only when used, so start-up stays fast)

    with _long_paragraphs_untagged():
        return front, partition_text(text=_title_line(text), languages=[""])


_PARSER_LOCK = threading.RLock()


@contextmanager
def _untagged_paragraphs():
    """unstructured's HTML parser (Markdown, HTML and reST go through it) runs spaCy's tagger and
    sentence splitter on every paragraph only to call it NarrativeText rather than Text. The loader
    treats both alike (headings come from the markup's tags), and that tagging was over half of the
    parse time of the demo corpus (bench/RESULTS.md), so during our own calls it is skipped: every
    paragraph is Text. Lists, tables, headings and addresses are classified as before. The swap is
    undone after each call; the lock keeps two of our own parses from interleaving it."""
    from unstructured.partition.html import parser  # (lazy: loaded only when used, so start-up stays fast)

    with _PARSER_LOCK:
        saved = parser.is_possible_narrative_text
        parser.is_possible_narrative_text = _not_tagged
        try:
            yield
        finally:
            parser.is_possible_narrative_text = saved


def _not_tagged(text: str, *args: Any, **kwargs: Any) -> bool:
    return False


_LONG_PARAGRAPH = 20_000  # characters: never a title, and plain body text whatever spaCy says


@contextmanager
def _long_paragraphs_untagged():
    """unstructured's plain-text partitioner runs spaCy over each paragraph to tell narrative text
    and titles from other text; on a paragraph of megabytes (a one-line dump) that took most of a
    minute, to call it a Title. A paragraph this long is body text: it is classified as Text at once.
    Shorter paragraphs are classified as before."""
    from unstructured.partition import text as text_mod  # (lazy: loaded only when used, so start-up stays fast)

    with _PARSER_LOCK:
        saved = text_mod.is_possible_narrative_text, text_mod.is_possible_title

        def short(check):
            return lambda t, *a, **k: len(t) <= _LONG_PARAGRAPH and check(t, *a, **k)

        text_mod.is_possible_narrative_text, text_mod.is_possible_title = map(short, saved)
        try:
            yield
        finally:
            text_mod.is_possible_narrative_text, text_mod.is_possible_title = saved


def _front_matter(text: str, fmt: str) -> tuple[dict[str, Any], str]:
    """(fields, the text after it) of a leading YAML front matter block; fails closed.

    The block may follow blank lines, spaces or a BOM. In Markdown any ``---`` block is front
    matter; in plain text and reST (where ``---`` lines are also rules and title adornments) only a
    block with a metadata key (title, author(s), date, url, tags, groups). A start that looks like
    front matter but is not closed, or is TOML (``+++``), is refused: indexing it as text would make
    a restricted file public with its ``groups:`` line in the passages.
    """
    lead = _LEADING.match(text).end()
    rest = text[lead:]
    first_line = text.count("\n", 0, lead) + 2  # the line after the opening ---
    m = _FRONT_MATTER.match(rest)
    if m and m.group(0).startswith("---"):
        block = m.group(1) or ""
        if fmt != "md" and not (_KEY_LINE.match(block.lstrip()) and _META_KEY.search(block)):
            return {}, text
        raw = _yaml_mapping(block, "front matter", first_line=first_line)
        check_keys(raw, "front matter")
        return _fields(raw), rest[m.end():]
    opens = _OPENS.match(rest)
    if opens and _KEY_LINE.match(opens.group(2)) and (fmt == "md" or _META_KEY.match(opens.group(2))):
        line = first_line - 1
        if opens.group(1) == "+++":
            raise MetadataError(f"TOML front matter (+++ at line {line}) is not supported; "
                                "write the metadata as YAML between --- lines")
        raise MetadataError(f"front matter opened at line {line} has no closing --- line; "
                            "add one after the metadata")
    return {}, text


def _escape_hash_lines(text: str) -> str:
    """Escape '#word' line starts outside code fences, which CommonMark (and authors) do not mean as headings."""
    lines, fenced = text.split("\n"), False
    for i, line in enumerate(lines):
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and _HASH_LINE.match(line):
            lines[i] = "\\" + line
    return "\n".join(lines)


def _title_line(text: str) -> str:
    """Give a plain-text file's first line a paragraph of its own when it reads as a title."""
    from unstructured.documents.elements import Title  # (lazy: loaded only when used, so start-up stays fast)
    from unstructured.partition.text import element_from_text  # (lazy: loaded only when used, so start-up stays fast)

    text = text.strip("\n")
    first, _, rest = text.partition("\n")
    if len(first) <= _LONG_PARAGRAPH and rest.partition("\n")[0].strip() and isinstance(element_from_text(first.strip()), Title):
        return f"{first}\n\n{rest}"
    return text


def _html_meta(text: str) -> dict[str, Any]:
    import lxml.html  # (lazy: loaded only when used, so start-up stays fast)

    try:
        root = lxml.html.document_fromstring(text.encode(), parser=lxml.html.HTMLParser(encoding="utf-8"))
    except Exception:  # no markup to read metadata from: the partitioner still reads the text
        return {}
    raw: dict[str, Any] = {"title": root.findtext(".//title")}
    for m in root.iter("meta"):
        name, content = (m.get("name") or m.get("property") or "").lower(), m.get("content")
        field = {"author": "authors", "date": "date", "dc.date": "date", "article:published_time": "date",
                 "keywords": "tags", "og:url": "url"}.get(name)
        if field and content and not raw.get(field):
            raw[field] = _people(content) if field == "authors" else content
    for link in root.iter("link"):
        if (link.get("rel") or "").lower() == "canonical" and link.get("href"):
            raw["url"] = link.get("href")
    return _fields(raw)


def _eml(data: bytes) -> tuple[dict[str, Any], list]:
    from unstructured.partition.email import partition_email  # (lazy: loaded only when used, so start-up stays fast)

    msg = email.message_from_bytes(data, policy=email.policy.default)
    senders = email.utils.getaddresses([str(msg.get("from", ""))])
    meta = _fields({"title": str(msg.get("subject", "")), "date": str(msg.get("date", "")),
                    "authors": [{"name": n, "email": a} if "@" in a else n for n, a in senders if n or a]})
    elements = []  # the sender's own words: no quoted replies, no forwarded original
    for el in partition_email(file=io.BytesIO(data), process_attachments=False, languages=[""]):
        if _ORIGINAL.match(el.text):
            break
        if not _QUOTE.match(el.text):
            elements.append(el)
    return meta, elements


def _pdf(data: bytes) -> tuple[dict[str, Any], list]:
    from pypdf import PdfReader  # (lazy: loaded only when used, so start-up stays fast)

    if b"%PDF-" not in data[:1024]:
        raise LoadError("not a readable PDF (no PDF header); re-export the file")
    for name in ("pypdf", "pdfminer"):  # their warnings about damaged files would flood the console
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise LoadError("PDF is encrypted; remove the password and re-export")
        info = {k: str(reader.metadata[k]) for k in reader.metadata or {}}
        pages, scanned = _pdf_elements(data)
    except LoadError:
        raise
    except Exception as e:
        msg = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise LoadError(f"not a readable PDF ({msg}); re-export the file") from None
    extra: dict[str, Any] = {}
    if scanned:  # pages with an image or glyphs but no text we can read: OCR them
        why = ocr.unavailable("it")
        if why and not any(pages):
            raise LoadError(f"PDF has no text layer (scanned?); {why}")
        if not why:
            from unstructured.documents.elements import Text  # (lazy: loaded only when used, so start-up stays fast)

            read = ocr.pdf_pages(data, scanned)
            for i, (text, _conf) in read.items():
                if text:
                    pages[i] = [_ocr_title(f"Page {i + 1} (OCR)")] + [Text(p) for p in text.split("\n\n")]
            done = [i for i, (t, _c) in read.items() if t]
            if done:
                confs = [c for t, c in read.values() if t]
                extra = {"ocr": True, "ocr_pages": [i + 1 for i in done],
                         "ocr_confidence": round(sum(confs) / len(confs), 1), "ocr_languages": ocr._settings()[1]}
    elements = [el for page in pages for el in page]
    if not elements:
        raise LoadError("PDF has no text layer (scanned?); OCR it first"
                        + (" (Tesseract found no text on its pages)" if scanned and not ocr.unavailable("x") else ""))
    meta = _fields({"title": info.get("/Title"), "authors": _people(info.get("/Author")),
                    "date": latest_date(info.get("/CreationDate"), info.get("/ModDate")), "tags": info.get("/Keywords")})
    if _given(info.get("/Subject")):
        meta["subject"] = info["/Subject"].strip()
    return {**meta, **extra}, elements


def _ocr_title(text: str) -> Any:
    from unstructured.documents.elements import Title  # (lazy: loaded only when used, so start-up stays fast)

    el = Title(text)
    el.metadata.category_depth = 0
    return el


def _has_ink(page: Any) -> bool:
    """Whether a pdfminer page holds an image or glyphs (a scan, or a font without a text mapping)."""
    from pdfminer.layout import LTChar, LTContainer, LTImage  # (lazy: loaded only when used, so start-up stays fast)

    stack = [page]
    while stack:
        el = stack.pop()
        if isinstance(el, (LTImage, LTChar)):
            return True
        if isinstance(el, LTContainer):
            stack.extend(el)
    return False


def _pdf_elements(data: bytes) -> tuple[list[list], list[int]]:
    """Text boxes per page, split where the font size changes, classified by unstructured's rules,
    and the pages (0-based) without readable text that hold an image or glyphs (to OCR).

    A paragraph in a font larger than the body text is a Title whose depth ranks its size.
    """
    from pdfminer.high_level import extract_pages  # (lazy: loaded only when used, so start-up stays fast)
    from pdfminer.layout import LTChar, LTTextBox  # (lazy: loaded only when used, so start-up stays fast)
    from unstructured.documents.coordinates import PixelSpace  # (lazy: loaded only when used, so start-up stays fast)
    from unstructured.documents.elements import ListItem, Title  # (lazy: loaded only when used, so start-up stays fast)
    from unstructured.partition.text import element_from_text  # (lazy: loaded only when used, so start-up stays fast)

    paras: list[list] = []  # [lines, size, x0, top, x1, bottom, page system, page index]
    scanned: list[int] = []
    n_pages = 0
    for page_no, page in enumerate(extract_pages(io.BytesIO(data))):
        n_pages = page_no + 1
        system = PixelSpace(page.width, page.height)
        before = len(paras)
        for box in page:
            if not isinstance(box, LTTextBox):
                continue
            start = len(paras)
            for line in box:
                text = " ".join(_CID.sub("", line.get_text()).split())
                sizes = [round(c.size * 2) / 2 for c in line if isinstance(c, LTChar)] if text else []
                if not sizes:
                    continue
                size = Counter(sizes).most_common(1)[0][0]
                top, bottom = page.height - line.y1, page.height - line.y0
                if len(paras) > start and paras[-1][1] == size:
                    p = paras[-1]
                    p[0].append(text)
                    p[2:6] = min(p[2], line.x0), min(p[3], top), max(p[4], line.x1), max(p[5], bottom)
                else:
                    paras.append([[text], size, line.x0, top, line.x1, bottom, system, page_no])
        if len(paras) == before and _has_ink(page):
            scanned.append(page_no)
    pages: list[list] = [[] for _ in range(n_pages)]
    if not paras:
        return pages, scanned
    weights = Counter()
    for p in paras:
        weights[p[1]] += sum(map(len, p[0]))
    body = weights.most_common(1)[0][0]
    heads = sorted({p[1] for p in paras if p[1] > body * 1.15}, reverse=True)
    for lines, size, x0, top, x1, bottom, system, page_no in paras:
        text = " ".join(lines)
        el = element_from_text(text, ((x0, top), (x0, bottom), (x1, bottom), (x1, top)), system)
        if el.category in ("Header", "Footer"):  # running heads and page numbers, by position
            continue
        if size in heads and len(text) < 150 and not isinstance(el, ListItem):
            el = Title(text)
        if isinstance(el, Title):
            el.metadata.category_depth = heads.index(size) if size in heads else len(heads)
        pages[page_no].append(el)
    return pages, scanned


# ---------------------------------------------------------------- metadata

def _sidecar(path: Path) -> dict[str, Any]:
    """Fields from ``FILE.meta.yaml`` (or ``.meta.yml``), which override the file's own (see loaders.meta)."""
    return read_sidecar(path)[1]


# ---------------------------------------------------------------- sections


