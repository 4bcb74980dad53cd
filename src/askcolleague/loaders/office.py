"""Mail and office formats beyond DOCX/PPTX: Outlook .msg, OpenDocument .odt/.odp, .rtf, .epub, .org,
and legacy .doc/.ppt through LibreOffice headless.

Each file is one document shaped like the document loader's (one block per section). An Outlook
message is credited to its sender; its attachments are documents of their own, with doc ids
``message.msg!/attachment.pdf`` and ``meta.attached_to`` naming the message. An EPUB's chapters are
its sections and its authors come from its metadata. ``.doc``/``.ppt`` are converted to DOCX/PPTX
by LibreOffice (Debian ``libreoffice-writer-nogui`` / ``libreoffice-impress-nogui``) and read as
those; without LibreOffice they are skipped with a line that says what to install.
"""
from __future__ import annotations

import atexit
import io
import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import warnings
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from ..errors import LoadError
from ..models import AuthorRef, Doc
from .archives import load_member
from .base import check_zip, latest_date, norm_date, read_bytes, split_quoted, warn
from .elements import element_doc
from .encoding import decode
from .meta import fields, split_people
from .ocr import section_doc
from .sheets import odf_props, odf_text
from .threads import html_to_text

OFFICE_EXTENSIONS = (".msg", ".odt", ".odp", ".rtf", ".epub", ".org", ".doc", ".ppt")
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
CONVERT_TIMEOUT = 180  # seconds LibreOffice may take to convert one file
MAX_ATTACHMENTS = 100


def load(path: Path, key: str, max_bytes: int, depth: int = 0) -> list[Doc]:
    ext = path.suffix.lower()
    data = read_bytes(path, max_bytes)
    if ext == ".msg":
        return _msg(path, key, data, max_bytes, depth)
    if ext == ".epub":
        return [_epub(path, key, data, max_bytes)]
    if ext in (".doc", ".ppt"):
        meta, elements = _legacy(ext, data, max_bytes)
        return [element_doc(path, key, ext.lstrip("."), meta, elements)]
    if ext in (".odt", ".odp"):
        meta, elements = _odf(ext, data, max_bytes)
    elif ext == ".rtf":
        meta, elements = _rtf(data)
    elif ext == ".org":
        meta, elements = _org(data)
    else:
        raise LoadError(f"unsupported document type '{ext}'; convert it to PDF, DOCX or Markdown")
    return [element_doc(path, key, ext.lstrip("."), meta, elements)]


def _title(text: str, depth: int) -> Any:
    from unstructured.documents.elements import Title  # (lazy: loaded only when used, so start-up stays fast)

    el = Title(text)
    el.metadata.category_depth = depth
    return el


def _text(text: str) -> Any:
    from unstructured.documents.elements import Text  # (lazy: loaded only when used, so start-up stays fast)

    return Text(text)


def _item(text: str) -> Any:
    from unstructured.documents.elements import ListItem  # (lazy: loaded only when used, so start-up stays fast)

    return ListItem(text)


# ---------------------------------------------------------------- OpenDocument

def _odf(ext: str, data: bytes, max_bytes: int) -> tuple[dict[str, Any], list]:
    what = "ODT" if ext == ".odt" else "ODP"
    check_zip(io.BytesIO(data), max_bytes, what, fix="re-save it, or raise ASKCOLLEAGUE_MAX_FILE_MB")
    from odf.opendocument import load as odf_load  # (lazy: loaded only when used, so start-up stays fast)


    try:
        doc = odf_load(io.BytesIO(data))
    except Exception as e:
        raise LoadError(f"not a valid OpenDocument file ({type(e).__name__}); re-save it as {ext}") from None
    meta = odf_props(doc)
    if ext == ".odt":
        elements: list = []
        _odt_walk(doc.text, elements)
        return meta, elements
    return meta, _odp(doc)


def _odt_walk(node: Any, out: list) -> None:
    from odf import teletype  # (lazy: loaded only when used, so start-up stays fast)

    for el in getattr(node, "childNodes", []):
        name = getattr(el, "qname", (None, None))[1]
        if name == "h":
            text = " ".join(teletype.extractText(el).split())
            level = int(el.getAttribute("outlinelevel") or 1)
            if text:
                out.append(_title(text, max(level - 1, 0)))
        elif name == "p":
            text = teletype.extractText(el).strip()
            if text:
                out.append(_text(text))
        elif name == "list":
            for item in el.childNodes:
                text = " ".join(teletype.extractText(item).split())
                if text:
                    out.append(_item(text))
        elif name == "table":
            rows = []
            for row in el.getElementsByType(_odf_row()):
                cells = [" ".join(teletype.extractText(c).split()) for c in row.childNodes]
                if any(cells):
                    rows.append(" | ".join(cells))
            if rows:
                out.append(_text("\n".join(rows)))
        elif name in ("section", "index-body", "table-of-content"):
            if name == "section":
                _odt_walk(el, out)
        elif name not in ("sequence-decls", "variable-decls", "tracked-changes", "forms"):
            _odt_walk(el, out)


def _odf_row() -> Any:
    from odf.table import TableRow  # (lazy: loaded only when used, so start-up stays fast)

    return TableRow


def _odp(doc: Any) -> list:
    from odf import teletype  # (lazy: loaded only when used, so start-up stays fast)
    from odf.draw import Frame, Page  # (lazy: loaded only when used, so start-up stays fast)
    from odf.namespaces import PRESENTATIONNS  # (lazy: loaded only when used, so start-up stays fast)
    from odf.presentation import Notes  # (lazy: loaded only when used, so start-up stays fast)

    elements = []
    for n, page in enumerate(doc.presentation.getElementsByType(Page), 1):
        title, body, notes = None, [], []
        for frame in page.getElementsByType(Frame):
            if any(frame in nt.getElementsByType(Frame) for nt in page.getElementsByType(Notes)):
                continue

            text = odf_text(frame).strip()
            if not text:
                continue
            if frame.getAttrNS(PRESENTATIONNS, "class") == "title" and title is None:
                title = " ".join(text.split())
            else:
                body.append(text)
        for nt in page.getElementsByType(Notes):
            for frame in nt.getElementsByType(Frame):
                if frame.getAttrNS(PRESENTATIONNS, "class") == "notes":
                    text = teletype.extractText(frame).strip()
                    if text:
                        notes.append(text)
        elements.append(_title(title or page.getAttribute("name") or f"Slide {n}", 0))
        elements += [_text(b) for b in body] + [_text(f"Notes: {t}") for t in notes]
    return elements


# ---------------------------------------------------------------- RTF

_RTF_INFO = re.compile(r"\{\\(title|author|operator|subject|keywords)\s+((?:[^{}\\]|\\[^{}]|\{[^{}]*\})*)\}")
_RTF_TIME = re.compile(r"\{\\(creatim|revtim)((?:\\[a-z]+\d+)+)\}")


def _rtf(data: bytes) -> tuple[dict[str, Any], list]:
    from striprtf.striprtf import rtf_to_text  # (lazy: loaded only when used, so start-up stays fast)

    if not data.lstrip().startswith(b"{\\rtf"):
        raise LoadError("not an RTF file (no {\\rtf header); rename it to its real extension")
    raw = data.decode("latin-1")
    cpg = re.search(r"\\ansicpg(\d+)", raw[:2000])
    encoding = f"cp{cpg.group(1)}" if cpg else "cp1252"
    try:
        "".encode(encoding)
    except LookupError:
        encoding = "cp1252"

    def plain(s: str) -> str:
        return " ".join(rtf_to_text("{\\rtf1 " + s + "}", encoding=encoding, errors="replace").split())

    info = {m.group(1): plain(m.group(2)) for m in _RTF_INFO.finditer(raw)}
    dates = {}
    for m in _RTF_TIME.finditer(raw):
        parts = dict(re.findall(r"\\([a-z]+)(\d+)", m.group(2)))
        try:
            dates[m.group(1)] = f"{int(parts['yr']):04d}-{int(parts.get('mo', 1)):02d}-{int(parts.get('dy', 1)):02d}"
        except (KeyError, ValueError):
            pass
    try:
        text = rtf_to_text(raw, encoding=encoding, errors="replace")
    except Exception as e:
        raise LoadError(f"could not read the RTF ({type(e).__name__}); re-save it") from None
    meta = fields({"title": info.get("title"), "authors": split_people(info.get("author") or info.get("operator")),
                   "date": latest_date(dates.get("creatim"), dates.get("revtim")), "tags": info.get("keywords")})
    if encoding != "cp1252":
        meta["encoding"] = encoding
    paras = [p.strip() for p in re.split(r"\n\s*\n|\n", text.replace("\r", "")) if p.strip()]
    return meta, [_text(p) for p in paras]


# ---------------------------------------------------------------- Org mode

_ORG_KEY = re.compile(r"^#\+(\w+):\s*(.*)$", re.I)
_ORG_HEAD = re.compile(r"^(\*+)\s+(?:(?:TODO|DONE|NEXT|WAITING|CANCELLED)\s+)?(?:\[#[A-Z]\]\s+)?(.*?)(?:\s+(:[\w@#%:]+:))?\s*$")
_ORG_LINK = re.compile(r"\[\[([^\]]+)\](?:\[([^\]]+)\])?\]")


def _org(data: bytes) -> tuple[dict[str, Any], list]:
    text, encoding = decode(data, "Org")
    raw: dict[str, Any] = {}
    elements: list = []
    para: list[str] = []
    drawer = block = False

    def flush() -> None:
        if para:
            elements.append(_text(" ".join(para)))
            para.clear()

    for line in text.replace("\r\n", "\n").split("\n"):
        s = line.strip()
        if block:
            if re.match(r"#\+end_", s, re.I):
                block = False
                flush()
            else:
                para.append(line.rstrip())
            continue
        if drawer:
            drawer = s.upper() != ":END:"
            continue
        if re.fullmatch(r":[A-Z_]+:", s, re.I) and s.upper() != ":END:":
            drawer = True
            continue
        if re.match(r"#\+begin_", s, re.I):
            flush()
            block = True
            continue
        m = _ORG_KEY.match(s)
        if m:
            name = m.group(1).lower()
            if name in ("title", "author", "date", "filetags"):
                raw["tags" if name == "filetags" else name] = [t for t in m.group(2).split(":") if t] \
                    if name == "filetags" else m.group(2)
            continue
        if s.startswith("# ") or s == "#":
            continue  # a comment line
        m = _ORG_HEAD.match(line)
        if m and line.startswith("*"):
            flush()
            elements.append(_title(_ORG_LINK.sub(lambda k: k.group(2) or k.group(1), m.group(2)), len(m.group(1)) - 1))
            continue
        if not s:
            flush()
            continue
        s = _ORG_LINK.sub(lambda k: f"{k.group(2)} ({k.group(1)})" if k.group(2) else k.group(1), s)
        if re.match(r"^([-+]|\d+[.)])\s+", s):
            flush()
            elements.append(_item(re.sub(r"^[-+]\s+", "", s)))
        else:
            para.append(s)
    flush()
    meta = fields(raw)
    if encoding != "utf-8":
        meta["encoding"] = encoding
    return meta, elements


# ---------------------------------------------------------------- EPUB

def _epub(path: Path, key: str, data: bytes, max_bytes: int) -> Doc:
    check_zip(io.BytesIO(data), max_bytes, "EPUB", fix="re-save it, or raise ASKCOLLEAGUE_MAX_FILE_MB")

    import ebooklib  # (lazy: loaded only when used, so start-up stays fast)
    from ebooklib import epub  # (lazy: loaded only when used, so start-up stays fast)


    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            book = epub.read_epub(io.BytesIO(data), {"ignore_ncx": True})
    except Exception as e:
        msg = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise LoadError(f"not a valid EPUB ({msg}); re-export the e-book") from None

    def dc(name: str) -> list[str]:
        return [str(v).strip() for v, _attrs in book.get_metadata("DC", name) if v and str(v).strip()]

    meta = fields({"title": (dc("title") or [None])[0], "authors": dc("creator"), "date": (dc("date") or [None])[0],
                   "tags": dc("subject")})
    if dc("language"):
        meta["language"] = dc("language")[0]
    labels: dict[str, str] = {}

    def walk(toc: Any) -> None:
        for entry in toc if isinstance(toc, (list, tuple)) else [toc]:
            if isinstance(entry, tuple) and len(entry) == 2:
                walk(entry[0])
                walk(entry[1])
            elif hasattr(entry, "href") and getattr(entry, "title", None):
                labels.setdefault(entry.href.split("#")[0], " ".join(entry.title.split()))

    walk(book.toc)
    sections = []
    for n, (idref, _linear) in enumerate(book.spine, 1):
        item = book.get_item_with_id(idref)
        if item is None or item.get_type() != ebooklib.ITEM_DOCUMENT or isinstance(item, epub.EpubNav):
            continue
        html = item.get_content().decode("utf-8", "replace")
        text = html_to_text(html)
        if not text.strip():
            continue
        head = re.search(r"<h[1-3][^>]*>(.*?)</h[1-3]>", html, re.S | re.I)
        label = labels.get(item.get_name()) or (" ".join(html_to_text(head.group(1)).split()) if head else None) \
            or f"Chapter {len(sections) + 1}"
        first, _, rest = text.partition("\n")
        if " ".join(first.split()).casefold() == label.casefold():
            text = rest.strip()
        if text:
            sections.append((label, text))
    if not sections:
        raise LoadError("no chapters with text in the EPUB; check the e-book is not image-only or DRM-protected")
    return section_doc(path, key, {**meta, "format": "epub", "chapters": len(sections)}, sections)


# ---------------------------------------------------------------- Outlook .msg

_OUTLOOK_HEADER = re.compile(r"^\s*(From|Von|De|Van|Da):\s.+\n\s*(Sent|Gesendet|Envoyé|Verzonden|Inviato|Date):\s", re.I | re.M)
_ORIGINAL = re.compile(r"^\s*-{3,}\s*(Original Message|Ursprüngliche Nachricht|Message d'origine)\s*-{3,}", re.I | re.M)


def own_words(body: str) -> str:
    """A reply's own words: the quoted original below an Outlook header block or '-----Original
    Message-----' line, and '>' quoted lines, removed (they are the earlier sender's words)."""
    body = body.replace("\r\n", "\n")
    cut = min((m.start() for m in (_OUTLOOK_HEADER.search(body), _ORIGINAL.search(body)) if m), default=len(body))
    own, _quoted = split_quoted(body[:cut])
    return own


def _msg(path: Path, key: str, data: bytes, max_bytes: int, depth: int) -> list[Doc]:
    if not data.startswith(OLE_MAGIC):
        raise LoadError("not an Outlook message (.msg is an OLE file); save the mail again from Outlook")

    import extract_msg  # (lazy: loaded only when used, so start-up stays fast)


    logging.getLogger("extract_msg").setLevel(logging.ERROR)
    try:
        msg = extract_msg.openMsg(data, delayAttachments=False)
    except Exception as e:
        msg_ = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise LoadError(f"not a readable Outlook message ({msg_}); save the mail again from Outlook") from None
    try:
        subject = " ".join((getattr(msg, "subject", None) or "").split())
        sender = _sender(msg)
        body = getattr(msg, "body", None) or ""
        if not body.strip():
            html = getattr(msg, "htmlBody", None)
            if html:
                body = html_to_text(html.decode("utf-8", "replace") if isinstance(html, bytes) else str(html))
        text = own_words(body)
        recipients = [str(r.formatted if hasattr(r, "formatted") else r) for r in (getattr(msg, "recipients", None) or [])]
        date = norm_date(getattr(msg, "date", None))
        meta: dict[str, Any] = {"title": subject or None, "authors": sender, "date": date}
        meta = {k: v for k, v in meta.items() if v}
        names, attached = [], []
        for att in list(getattr(msg, "attachments", None) or [])[:MAX_ATTACHMENTS]:
            name = getattr(att, "longFilename", None) or getattr(att, "shortFilename", None) or getattr(att, "name", None)
            payload = getattr(att, "data", None)
            if not name or not isinstance(payload, bytes):
                continue  # an embedded message or an OLE object: not a file
            if getattr(att, "hidden", False) or (getattr(att, "cid", None) and name.lower().endswith(
                    (".png", ".jpg", ".jpeg", ".gif", ".bmp"))):
                continue  # an inline image (a signature logo)
            name = os.path.basename(name.replace("\\", "/")) or "attachment"
            names.append(name)
            attached.append((name, payload))
    finally:
        try:
            msg.close()
        except Exception:
            pass
    docs: list[Doc] = []
    if text.strip():
        docs.append(section_doc(path, key, {**meta, "format": "msg", "recipients": recipients,
                                            **({"attachments": names} if names else {})}, [(None, text)]))

    for name, payload in attached:
        try:
            sub = load_member(name, payload, f"{key}!/{name}", key, max_bytes, depth + 1)
        except LoadError as e:
            warn(f"{key}!/{name}", f"attachment skipped: {e}")
            continue
        for d in sub:
            d.meta["attached_to"] = key
            if not d.authors and sender:  # sent by the sender: theirs unless the file says otherwise
                d.authors = list(sender)
                for b in d.blocks:
                    b.authors = list(sender)
        docs += sub
    if not docs:
        raise LoadError("no text in the message or its attachments; remove it")
    return docs


def _sender(msg: Any) -> list[AuthorRef]:
    raw = getattr(msg, "sender", None) or ""
    ref = AuthorRef.parse(str(raw)) if raw else None
    email = None
    for stream in ("__substg1.0_5D01", "__substg1.0_0C1F", "__substg1.0_0065"):  # SMTP, sender, on behalf of
        try:
            value = msg.getStringStream(stream)
        except Exception:
            value = None
        if value and "@" in str(value):
            email = str(value).strip()
            break
    if ref is None and email:
        ref = AuthorRef(email=str(email).lower())
    elif ref is not None and not ref.email and email and "@" in str(email):
        ref.email = str(email).lower()
    return [ref] if ref else []


# ---------------------------------------------------------------- .doc / .ppt through LibreOffice

_PROFILE: str | None = None


def _profile() -> str:
    """A LibreOffice user profile of this process (two processes cannot share one)."""
    global _PROFILE
    if _PROFILE is None:
        _PROFILE = tempfile.mkdtemp(prefix=f"askcolleague-lo-{os.getpid()}-")
        atexit.register(shutil.rmtree, _PROFILE, True)
    return _PROFILE


def soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


def _legacy(ext: str, data: bytes, max_bytes: int) -> tuple[dict[str, Any], list]:
    word = ext == ".doc"
    if not data.startswith(OLE_MAGIC):
        raise LoadError(f"not a {'Word' if word else 'PowerPoint'} 97-2003 file; rename it to its real extension")
    exe = soffice()
    if exe is None:
        pkg = "libreoffice-writer-nogui" if word else "libreoffice-impress-nogui"
        raise LoadError(f"legacy {ext} files are read through LibreOffice, which is not installed; "
                        f"apt-get install {pkg} (or save the file as {ext}x)")
    target = "docx" if word else "pptx"
    with tempfile.TemporaryDirectory(prefix="askcolleague-convert-") as tmp:
        src = Path(tmp) / f"in{ext}"
        src.write_bytes(data)
        cmd = [exe, "--headless", "--norestore", "--nologo", "--nodefault", "--nolockcheck",
               f"-env:UserInstallation=file://{_profile()}", "--convert-to", target, "--outdir", tmp, str(src)]
        # its own process group, so that a timeout kills LibreOffice's children too; in a parse worker
        # (loaders.pool), which leads a group of its own, it stays in the worker's, which a timeout kills
        own = os.getpgrp() != os.getpid()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=own)
        try:
            _out, err = proc.communicate(timeout=CONVERT_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL) if own else proc.kill()
            proc.communicate()
            raise LoadError(f"LibreOffice took over {CONVERT_TIMEOUT} s to convert it; save it as {ext}x") from None
        out = Path(tmp) / f"in.{target}"
        if not out.is_file():
            line = (err or b"").decode("utf-8", "replace").strip().splitlines()
            why = next((ln for ln in line if "javaldx" not in ln), "")[:120]
            raise LoadError(f"LibreOffice could not convert it{f' ({why})' if why else ''}; save it as {ext}x")
        converted = out.read_bytes()
    meta, elements = docx_pptx(target, converted, max_bytes)
    return {**meta, "converted_with": "libreoffice"}, elements


def docx_pptx(fmt: str, data: bytes, max_bytes: int) -> tuple[dict[str, Any], list]:
    try:
        if not zipfile.is_zipfile(io.BytesIO(data)):
            raise ValueError
    except Exception:
        raise LoadError(f"not a valid {fmt.upper()} file; re-save it") from None
    # before any parser inflates a member: a few MB of zeros can declare gigabytes
    check_zip(io.BytesIO(data), max_bytes, fmt.upper(), fix="re-save it, or raise ASKCOLLEAGUE_MAX_FILE_MB")
    try:
        if fmt == "docx":
            import docx  # (lazy: loaded only when used, so start-up stays fast)

            opened = docx.Document(io.BytesIO(data))
        else:
            import pptx  # (lazy: loaded only when used, so start-up stays fast)

            opened = pptx.Presentation(io.BytesIO(data))
    except Exception:
        raise LoadError(f"not a valid {fmt.upper()} file; re-save it") from None
    props = opened.core_properties
    meta = fields({"title": props.title, "authors": split_people(props.author), "tags": props.keywords,
                    "date": latest_date(props.created, props.modified)})
    if fmt == "docx":
        from unstructured.partition.docx import partition_docx  # (lazy: loaded only when used, so start-up stays fast)

        return meta, partition_docx(file=io.BytesIO(data), languages=[""])
    from unstructured.documents.elements import NarrativeText  # (lazy: loaded only when used, so start-up stays fast)
    from unstructured.partition.pptx import partition_pptx  # (lazy: loaded only when used, so start-up stays fast)

    by_slide = defaultdict(list)
    for el in partition_pptx(file=io.BytesIO(data), languages=[""]):
        by_slide[el.metadata.page_number].append(el)
    elements = []
    for n, slide in enumerate(opened.slides, 1):  # speaker notes after the slide's own text
        elements += by_slide[n]
        frame = slide.notes_slide.notes_text_frame if slide.has_notes_slide else None
        if frame is not None and frame.text.strip():
            elements.append(NarrativeText(frame.text.strip()))
    return meta, elements
