"""OCR with Tesseract (the Debian ``tesseract-ocr`` command): images, and PDF pages without a text layer.

Text read by OCR may hold recognition errors, so it is marked: its sections are named
``... (OCR)`` (the citation shows it), and the document's meta has ``ocr: true``, the mean word
confidence and the languages used. Settings: ``ASKCOLLEAGUE_OCR`` (off = such files are skipped
with a reason) and ``ASKCOLLEAGUE_OCR_LANGUAGES`` (Tesseract's ``-l``, e.g. ``eng+deu``).
"""
from __future__ import annotations

import csv
import functools
import io
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from ..errors import LoadError
from ..models import Block, Doc
from ..settings import Settings
from .base import display, read_bytes, warn
from .meta import fields, split_people

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
INSTALL = "apt-get install tesseract-ocr tesseract-ocr-eng"
MAX_PIXELS = 80_000_000  # an image with more pixels is refused (a decompression bomb, or a poster)
MAX_FRAMES = 200  # pages of a multi-page TIFF
PAGE_TIMEOUT = 180  # seconds Tesseract may take on one page
MIN_CONFIDENCE = 40.0  # mean word confidence below this (or no word of 2+ letters) = no text


def _settings() -> tuple[bool, str]:
    s = Settings.load()
    return bool(s.ocr), str(s.ocr_languages or "eng").strip() or "eng"


@functools.lru_cache(maxsize=4)
def _languages(exe: str) -> frozenset[str]:
    try:
        out = subprocess.run([exe, "--list-langs"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    return frozenset(line.strip() for line in out.splitlines()[1:] if line.strip())


def unavailable(what: str) -> str | None:
    """Why `what` cannot be OCR'd here (one line with the fix), or None when it can."""
    on, langs = _settings()
    if not on:
        return f"{what} needs OCR, which is off; set ASKCOLLEAGUE_OCR=1 to read it"
    exe = shutil.which("tesseract")
    if exe is None:
        return f"{what} needs OCR and Tesseract is not installed; {INSTALL}"
    have = _languages(exe)
    missing = [lang for lang in langs.split("+") if have and lang not in have]
    if missing:
        return (f"Tesseract has no language data for {'+'.join(missing)}; apt-get install "
                + " ".join(f"tesseract-ocr-{m}" for m in missing) + " or change ASKCOLLEAGUE_OCR_LANGUAGES")
    return None


def recognise(image: Any) -> tuple[str, float]:
    """(text, mean word confidence 0-100) of a PIL image: paragraphs separated by blank lines.

    Tesseract runs as a child process on one thread (OMP_THREAD_LIMIT=1: the embedder and the
    other parse workers have the remaining cores) and is stopped after PAGE_TIMEOUT seconds."""
    exe = shutil.which("tesseract")
    if exe is None:
        raise LoadError(f"Tesseract is not installed; {INSTALL}")
    _on, langs = _settings()
    if image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    if image.width < 1200:  # small scans and screenshots: Tesseract reads glyphs of ~30 px best
        from PIL import Image  # (lazy: loaded only when used, so start-up stays fast)

        image = image.resize((image.width * 2, image.height * 2), Image.LANCZOS)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    try:
        proc = subprocess.run([exe, "stdin", "stdout", "-l", langs, "--psm", "3", "tsv"], input=buf.getvalue(),
                              capture_output=True, timeout=PAGE_TIMEOUT, env=env)
    except subprocess.TimeoutExpired:
        raise LoadError(f"Tesseract took over {PAGE_TIMEOUT} s on one page; split or downscale the file") from None
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise LoadError(f"Tesseract failed ({err[-1][:160] if err else proc.returncode}); check the image")
    return _from_tsv(proc.stdout.decode("utf-8", "replace"))


def _from_tsv(tsv: str) -> tuple[str, float]:
    paras: dict[tuple[str, str, str], list[str]] = {}
    confs: list[float] = []
    for row in csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE):
        word = (row.get("text") or "").strip()
        try:
            conf = float(row.get("conf") or -1)
        except ValueError:
            conf = -1
        if row.get("level") != "5" or not word or conf < 0:
            continue
        confs.append(conf)
        paras.setdefault((row["page_num"], row["block_num"], row["par_num"]), []).append(word)
    mean = sum(confs) / len(confs) if confs else 0.0
    if mean < MIN_CONFIDENCE or not any(sum(ch.isalnum() for ch in w) >= 2 for ws in paras.values() for w in ws):
        return "", mean
    return "\n\n".join(" ".join(ws) for ws in paras.values()), mean


# ---------------------------------------------------------------- images

def load_image(path: Path, key: str, max_bytes: int) -> list[Doc]:
    """An image file as a document of its OCR'd text: one section per page (TIFF) or one in all."""
    data = read_bytes(path, max_bytes)
    from PIL import (  # (lazy: loaded only when used, so start-up stays fast)
        Image, ImageSequence, UnidentifiedImageError,
    )

    fmt = path.suffix.lower().lstrip(".").replace("jpeg", "jpg").replace("tiff", "tif")
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        img = Image.open(io.BytesIO(data))
        img.size  # noqa: B018 (the header is read lazily)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise LoadError("not a readable image (unsupported or damaged image data); re-save it as PNG or JPEG") from None
    except Image.DecompressionBombError:
        raise LoadError(f"image has more than {MAX_PIXELS // 1_000_000} million pixels; downscale it") from None
    why = unavailable("an image")
    if why:
        raise LoadError(why)
    meta = _exif(img)
    pages: list[tuple[str, float]] = []
    try:
        for n, frame in enumerate(ImageSequence.Iterator(img)):
            if n >= MAX_FRAMES:

                warn(key, f"read the first {MAX_FRAMES} pages of the image only; split the file")
                break
            if frame.width * frame.height > MAX_PIXELS:
                raise LoadError(f"image has more than {MAX_PIXELS // 1_000_000} million pixels; downscale it")
            pages.append(recognise(frame.copy()))
    except (OSError, SyntaxError, ValueError) as e:
        raise LoadError(f"not a readable image ({str(e)[:120]}); re-save it as PNG or JPEG") from None
    texts = [(t, c) for t, c in pages]
    if not any(t for t, _ in texts):
        raise LoadError("no text found in the image by OCR; remove it, or set ASKCOLLEAGUE_OCR_LANGUAGES "
                        "if its text is in another language")
    sections = [(("Page %d (OCR)" % (i + 1)) if len(texts) > 1 else "Text (OCR)", t) for i, (t, _) in enumerate(texts) if t]
    confs = [c for t, c in texts if t]
    _on, langs = _settings()
    meta.update(format=fmt, ocr=True, ocr_languages=langs, ocr_confidence=round(sum(confs) / len(confs), 1))
    return [section_doc(path, key, meta, sections)]


def _exif(img: Any) -> dict[str, Any]:
    """Title, author and date an image carries in its EXIF tags (ImageDescription, Artist, DateTime)."""

    try:
        exif = img.getexif()
    except Exception:  # a damaged EXIF block: the pixels may still be fine
        return {}
    raw = {"title": exif.get(0x010E), "authors": split_people(exif.get(0x013B)), "date": None}
    stamp = exif.get(0x0132)
    if isinstance(stamp, str) and len(stamp) >= 10:  # "2024:03:05 14:20:00"
        raw["date"] = stamp[:10].replace(":", "-") + stamp[10:]
    return fields({k: v for k, v in raw.items() if v})


def section_doc(path: Path, key: str, meta: dict[str, Any], sections: list[tuple[str | None, str]],
                doc_id: str | None = None) -> Doc:
    """A document of the given (section, text) pairs, shaped like the document loader's: one block per
    section, every block by the document's authors and of its date; `meta` holds the fields
    (title, authors, date, url, tags, groups) and anything else for ``Doc.meta``."""

    authors = list(meta.get("authors", []))
    blocks = [Block(text=t.strip(), kind="document", section=s, authors=list(authors), unit_id=f"s{i}",
                    date=meta.get("date"))
              for i, (s, t) in enumerate((s, t) for s, t in sections if t and t.strip())]
    if not blocks:
        raise LoadError("no text found; add content or remove the file")
    title = meta.get("title") or re.sub(r"[\s_-]+", " ", display(path.stem)).strip().capitalize() or display(path.name)
    extra = {k: v for k, v in meta.items() if k not in ("title", "authors", "date", "url", "tags", "groups")}
    return Doc(doc_id=doc_id or key, source=key, title=title, source_type="document", blocks=blocks, authors=authors,
               date=meta.get("date"), url=meta.get("url"), tags=list(meta.get("tags", [])),
               groups=list(meta.get("groups", [])), meta=extra)


# ---------------------------------------------------------------- PDF pages

def pdf_pages(data: bytes, pages: list[int]) -> dict[int, tuple[str, float]]:
    """{page index: (text, confidence)} of the given PDF pages (0-based), rendered at 300 dpi."""
    import pypdfium2 as pdfium  # (lazy: loaded only when used, so start-up stays fast)

    out: dict[int, tuple[str, float]] = {}
    pdf = pdfium.PdfDocument(data)
    try:
        for i in pages:
            page = pdf[i]
            try:
                w, h = page.get_size()
                scale = min(300 / 72, (MAX_PIXELS / max(w * h, 1)) ** 0.5)
                image = page.render(scale=scale, grayscale=True).to_pil()
            finally:
                page.close()
            out[i] = recognise(image)
    finally:
        pdf.close()
    return out
