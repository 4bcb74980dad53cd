"""Parsed elements (unstructured's Title, NarrativeText, ListItem, Table ...) into a Doc: the title,
the section tree from the headings, list items and tables as lines; shared by every loader that
parses with unstructured or builds such elements itself."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..errors import LoadError
from ..models import Block, Doc
from .base import display

_NUMBERED = re.compile(r"^(\d+|[a-zA-Z])[.)]\s")
_SKIP = {"Header", "Footer", "PageBreak", "PageNumber", "Image"}
_MARKUP = ("md", "html", "rst", "org", "odt", "odp")  # formats whose heading levels are authored, not inferred


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


def _names_doc(first: Any, rest: list, title: str | None, fmt: str) -> bool:
    """Whether a leading heading names the whole document (then it is the title, not a section)."""
    if title:
        a, b = _words(first.text), _words(title)
        return a <= b or b <= a
    if fmt not in _MARKUP:  # heading levels are guessed: the first heading is the title
        return True
    depth = first.metadata.category_depth or 0
    return not any(e.category == "Title" and (e.metadata.category_depth or 0) <= depth for e in rest)


def _table(el: Any) -> str:
    """A table as one line per row, cells separated by ' | ' (its flat text if no HTML)."""
    html = el.metadata.text_as_html
    if not html:
        return el.text
    import lxml.html  # (lazy: loaded only when used, so start-up stays fast)

    rows = (" | ".join(" ".join(c.text_content().split()) for c in tr.xpath("./th|./td"))
            for tr in lxml.html.fragment_fromstring(html, create_parent=True).iter("tr"))
    return "\n".join(r for r in rows if r.strip(" |")) or el.text


def element_doc(path: Path, key: str, fmt: str, meta: dict[str, Any], elements: list) -> Doc:
    elements = [e for e in elements if e.category not in _SKIP and (e.text or "").strip()]
    title = meta.get("title")
    if fmt != "eml" and elements and elements[0].category == "Title" and _names_doc(elements[0], elements[1:], title, fmt):
        title, elements = title or " ".join(elements[0].text.split()), elements[1:]
    title = title or re.sub(r"[\s_-]+", " ", display(path.stem)).strip().capitalize() or display(path.name)

    sections: list[tuple[str | None, str | None, list[str]]] = [(None, None, [])]  # (path, parent path, lines)
    stack: list[tuple[int, str, bool]] = []  # (depth, heading, depth inferred)
    for el in elements:
        text = el.text.strip()
        if el.category == "Title" and fmt != "eml":
            depth = el.metadata.category_depth
            if depth is None:  # no depth given: a sibling of the last such heading, under the last known one
                while stack and stack[-1][2]:
                    stack.pop()
                depth = stack[-1][0] + 1 if stack else 0
            while stack and stack[-1][0] >= depth:
                stack.pop()
            parent = " > ".join(h for _, h, _ in stack) or None
            stack.append((depth, " ".join(text.split()), el.metadata.category_depth is None))
            sections.append((" > ".join(h for _, h, _ in stack), parent, []))
        elif el.category == "ListItem":
            sections[-1][2].append(text if _NUMBERED.match(text) else f"- {text}")
        else:
            sections[-1][2].append(_table(el) if el.category == "Table" else text)

    blocks = []
    for i, (section, parent, lines) in enumerate(sections):
        nxt = sections[i + 1][0] if i + 1 < len(sections) else None
        if i and not lines and not (nxt or "").startswith(f"{section} > "):
            # A heading with nothing under it (a subtitle, a trailing line): a line of its parent section.
            section, lines = parent, [section[len(parent) + 3:] if parent else section]
        if lines and blocks and blocks[-1].section == section:
            blocks[-1].text += "\n" + "\n".join(lines)
        elif lines:
            blocks.append(Block(text="\n".join(lines), kind="document", section=section,
                                authors=list(meta.get("authors", [])), unit_id=f"s{len(blocks)}",
                                date=meta.get("date")))
    if not blocks:
        raise LoadError("no text found; add content or remove the file")
    extra = {k: v for k, v in meta.items() if k not in ("title", "authors", "date", "url", "tags", "groups")}
    return Doc(doc_id=key, source=key, title=title, source_type="document", blocks=blocks,
               authors=list(meta.get("authors", [])), date=meta.get("date"), url=meta.get("url"),
               tags=meta.get("tags", []), groups=meta.get("groups", []), meta={"format": fmt, **extra})
