"""Generic XML (not a WordPress export): its text as one document, title from an obvious element.

Parsed with defusedxml: entity declarations and external references are refused, so no billion
laughs and no file or network reads. Text is kept per element, one line each (attributes of an
element without text become ``name: value`` lines, so a data file of attribute rows still reads);
a top-level element with a title child becomes a section.
"""
from __future__ import annotations

import re
from pathlib import Path
from xml.etree.ElementTree import Element, ParseError

from ..errors import LoadError
from ..models import Doc
from .base import read_bytes
from .encoding import declared_charset
from .ocr import section_doc

_TITLES = ("title", "name", "subject", "heading", "caption", "label", "headline")
_MAX_LINES = 200_000


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def load(path: Path, key: str, max_bytes: int) -> list[Doc]:
    import defusedxml.ElementTree as SafeET  # (lazy: loaded only when used, so start-up stays fast)
    from defusedxml import DefusedXmlException  # (lazy: loaded only when used, so start-up stays fast)


    data = read_bytes(path, max_bytes)
    try:
        root = SafeET.fromstring(data)
    except DefusedXmlException:
        raise LoadError("XML declares entities or external references, which are refused for safety; "
                        "remove the DOCTYPE's entity declarations") from None
    except ParseError as e:
        raise LoadError(f"malformed XML at line {e.position[0]}, column {e.position[1]} ({str(e).split(':')[0]}); "
                        "fix the XML") from None
    except ValueError as e:
        raise LoadError(f"unreadable XML ({e}); save it as UTF-8") from None
    title = next((" ".join(el.text.split()) for el in root.iter() if _local(el.tag) in _TITLES and el.text and el.text.strip()), None)
    sections: list[tuple[str | None, str]] = []
    loose: list[str] = []
    for child in [root] if not len(root) else list(root):
        head = next((" ".join(c.text.split()) for c in child if _local(c.tag) in _TITLES and c.text and c.text.strip()), None) \
            if child is not root else None
        lines = _lines(child) if child is not root else _lines(root, deep=False)
        if child is not root and root.text and root.text.strip() and not sections and not loose:
            loose.append(" ".join(root.text.split()))
        if head and lines:
            if loose:
                sections.append((None, "\n".join(loose)))
                loose = []
            if lines[0] == head:
                lines = lines[1:]
            sections.append((head, "\n".join(lines) or head))
        else:
            loose.extend(lines)
    if loose:
        sections.append((None, "\n".join(loose)))
    if len(sections) > 1 and sum(1 for s, _ in sections if s) <= 1:  # one titled element is the document's title
        sections = [(None, "\n".join(t for _, t in sections))]
    enc = declared_charset(data)
    meta = {"format": "xml", "root": _local(root.tag), **({"title": title} if title else {}),
            **({"encoding": enc} if enc and enc not in ("utf-8", "utf8") else {})}
    if sections and sections[0][0] is None and title and sections[0][1].startswith(title):
        sections[0] = (None, sections[0][1][len(title):].lstrip("\n"))
    return [section_doc(path, key, meta, sections)]


def _lines(el: Element, deep: bool = True) -> list[str]:
    out: list[str] = []

    def visit(e: Element) -> None:
        if len(out) >= _MAX_LINES or not isinstance(e.tag, str):
            return
        text = " ".join((e.text or "").split())
        if text:
            out.append(text)
        elif e.attrib and not len(e):
            attrs = " · ".join(f"{_local(k)}: {' '.join(v.split())}" for k, v in e.attrib.items() if v.strip())
            if attrs:
                out.append(attrs)
        if deep or e is el:
            for c in e:
                visit(c)
                tail = " ".join((c.tail or "").split())
                if tail:
                    out.append(tail)

    visit(el)
    return [re.sub(r"\s+", " ", line) for line in out]
