"""What the web chat shows, as HTML and chat Markdown: the answer with its [n] links, the sources
panel's passage cards (highlighted sentences, "Show more"), the people cards, the status line.
Every document-derived string goes through esc() (HTML) or md() (chat Markdown)."""
from __future__ import annotations

import html
import re
from typing import Any

from ..answer.bounds import ELLIPSIS, PAGE_PASSAGE_CHARS, SHOWN_CHARS, _spans, clip, window


def esc(s: Any) -> str:
    return html.escape("" if s is None else str(s), quote=True)


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~$:])")


def md(s: Any) -> str:
    """Text for a Markdown message: HTML-escaped, and Markdown punctuation backslash-escaped."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape("" if s is None else str(s), quote=False))


def safe_url(url: str | None) -> str | None:
    """An http(s) or mailto link, escaped; None for anything else (javascript:, data:, chat handles)."""
    u = (url or "").strip()
    return esc(u) if re.match(r"(?i)(https?://|mailto:)[^\s]+$", u) else None


def _link(text_html: str, url: str | None, cls: str = "") -> str:
    href = safe_url(url)
    c = f' class="{cls}"' if cls else ""
    return f'<a{c} href="{href}" target="_blank" rel="noopener noreferrer">{text_html}</a>' if href else text_html


def _marked(text: str, spans: list[tuple[int, int]], lo: int, hi: int, tag: str = "mark") -> str:
    """Escaped text[lo:hi], with the parts of `spans` inside it wrapped in <mark>."""
    out, pos = [], lo
    for a, b in spans:
        a, b = max(a, lo), min(b, hi)
        if a >= b:
            continue
        out += [esc(text[pos:a]), f"<{tag}>", esc(text[a:b]), f"</{tag}>"]
        pos = b
    out.append(esc(text[pos:hi]))
    return "".join(out)


def highlight(text: str, sentences: list[str], tag: str = "mark") -> str:
    """Escaped `text` with each of `sentences` (matched across whitespace) wrapped in <mark>."""
    return _marked(text, _spans(text, sentences), 0, len(text), tag)


def passage_html(text: str, sentences: list[str]) -> tuple[str, str]:
    """(the passage text of a source card, its "Show more" button or ""): at most SHOWN_CHARS
    around the first highlighted sentence, and, behind the button, at most PAGE_PASSAGE_CHARS."""
    spans = _spans(text, sentences)
    n = len(text)
    a, b = window(text, spans, SHOWN_CHARS)
    if (a, b) == (0, n):
        return f'<div class="ac-text">{_marked(text, spans, 0, n)}</div>', ""

    def part(lo: int, hi: int) -> str:
        return (ELLIPSIS if lo else "") + _marked(text, spans, lo, hi) + (ELLIPSIS if hi < n else "")

    fa, fb = window(text, spans, PAGE_PASSAGE_CHARS)
    note = "" if (fa, fb) == (0, n) else (
        f'<div class="ac-cut">Showing {fb - fa:,} of the passage\'s {n:,} characters; '
        "open the original for the rest.</div>")
    more = fb - fa - (b - a)
    return (f'<div class="ac-text ac-short">{part(a, b)}</div>'
            f'<div class="ac-text ac-full" hidden>{part(fa, fb)}{note}</div>',
            f'<button class="ac-more" type="button" data-more="Show more ({more:,} characters)">'
            f'Show more ({more:,} characters)</button>')


def _day(date: str | None) -> str:
    return (date or "")[:10]


_UNSUPPORTED = re.compile(r"\s*\[unsupported\]")  # the checker's mark after a sentence (llm.UNSUPPORTED_MARK)


_BOUNDARY = re.compile(r"[.!?](?:\s*\[\d+\])*\s+|\[unsupported\]\s*|\n+")


def _unsupported_spans(text: str) -> list[tuple[int, int, int]]:
    """(sentence start, sentence end, mark end) of each sentence the checker marked [unsupported]."""
    spans = []
    for m in _UNSUPPORTED.finditer(text):
        body = re.sub(r"(?:\s*\[\d+\])*\s*[.!?]?(?:\s*\[\d+\])*$", "", text[:m.start()])
        spans.append((max((b.end() for b in _BOUNDARY.finditer(body)), default=0), m.start(), m.end()))
    return spans


def answer_markdown(ans: dict, turn: int) -> str:
    """The chat message of an answer: escaped text, [n] markers linked to the sources panel."""
    text = ans["answer"] or ""
    cited = {c["n"] for c in ans["citations"]}

    def piece(s: str) -> str:
        out = []
        for part in re.split(r"(\[\d+\])", s):
            m = re.fullmatch(r"\[(\d+)\]", part)
            if m and int(m.group(1)) in cited:
                out.append(f'<a class="ac-cite" href="#src-{turn}-{m.group(1)}">[{m.group(1)}]</a>')
            else:
                out.append(md(part))
        return "".join(out)

    out, pos = [], 0
    for a, b, end in _unsupported_spans(text):
        out += [piece(text[pos:a]), '<span class="ac-unsupported" title="Not supported by the cited passages">',
                piece(text[a:b]), ' <span class="ac-badge">unsupported</span></span>']
        pos = end
    out.append(piece(text[pos:]))
    body = "".join(out)
    if ans.get("unsupported_sentences"):
        body += "\n\n*Sentences marked unsupported are not backed by the passages they cite.*"
    if ans.get("fallback_reason"):
        body += f"\n\n*Extractive answer ({md(ans['fallback_reason'])}).*"
    if ans["abstained"]:
        body += "\n\n*The **Who to ask** panel lists them, with what they wrote.*"
    return body


def sources_html(turns: list[dict]) -> str:
    """The sources panel: the cited passages of every answer, newest first; older answers folded."""
    if not any(t["answer"] for t in turns):
        return '<div class="ac-empty">The sources of each answer appear here: click a [n] to open its passage.</div>'
    out = []
    last = max((t for t, tr in enumerate(turns) if tr["answer"]), default=-1)
    for t in range(last, -1, -1):
        ans = turns[t]["answer"]
        if not ans:
            continue
        latest = t == last
        cards = []
        for c in ans["citations"]:
            authors = ", ".join(_link(esc(a["name"]), a.get("url")) for a in c["authors"]) or "unknown author"
            ocr = ('<span class="ac-ocr" title="Read from an image by OCR: the text may hold recognition errors">'
                   'OCR</span>') if c.get("ocr") else ""
            meta = " · ".join(x for x in (authors, esc(_day(c["date"])), esc(c["source_type"]), ocr) if x)
            orig = _link("open original ↗", c.get("url"), "ac-orig")
            section = f' <span class="ac-section">› {esc(clip(c["section"]))}</span>' if c.get("section") else ""
            snippet = " … ".join(esc(clip(h, 300)) for h in c["highlights"][:1])
            text_html, more = passage_html(c["text"] or "", c["highlights"])
            cards.append(
                f'<details class="ac-src" id="src-{t}-{c["n"]}" data-chunk="{esc(c["chunk_id"])}">'
                f'<summary><span class="ac-n">[{c["n"]}]</span> <span class="ac-title">{esc(clip(c["title"]))}</span>'
                f'{section}<div class="ac-meta">{meta}</div>'
                + (f'<div class="ac-snippet">“{snippet}”</div>' if snippet else "") + "</summary>"
                + text_html +
                f'<div class="ac-actions">{more}{orig if orig.startswith("<a") else ""}'
                f'<button class="ac-wrong" data-turn="{t}" data-n="{c["n"]}" '
                f'title="Report that this passage does not support the answer">⚑ Wrong source</button></div>'
                "</details>")
        if not cards:
            cards.append('<div class="ac-empty">No passage cited.</div>')
        q = esc(clip(turns[t]["question"]))
        out.append(f'<details class="ac-turn" {"open" if latest else ""}><summary class="ac-q">'
                   f'{"Sources" if latest else "Earlier"}: “{q}”</summary>{"".join(cards)}</details>')
    return "".join(out)


def _cite_links(text_html: str, turn: int | None) -> str:
    """[n] markers in escaped text, linked to the sources panel of answer `turn`."""
    if turn is None:
        return text_html
    return re.sub(r"\[(\d+)\]", lambda m: f'<a class="ac-cite" href="#src-{turn}-{m.group(1)}">[{m.group(1)}]</a>', text_html)


def people_html(turn: int | None, ans: dict | None) -> str:
    """The who-to-ask panel: a card per person, with the passages they wrote as the reason."""
    if ans is None:
        return '<div class="ac-empty">People who wrote about your question appear here.</div>'
    head = ('<div class="ac-abstain">No answer in the knowledge base. Ask them:</div>' if ans["abstained"] else "")
    if not ans["people"]:
        return head + '<div class="ac-empty">Nobody found.</div>'
    cards = []
    for p in ans["people"]:
        role = " · ".join(esc(clip(x)) for x in (p.get("title"), p.get("team")) if x)
        why = []
        for e in p["evidence"]:
            n = f'<a class="ac-cite" href="#src-{turn}-{e["n"]}">[{e["n"]}]</a> ' if e.get("n") else ""
            why.append(f'<li>{n}{esc(clip(e["title"]))} <span class="ac-type">{esc(e.get("source_type"))}</span></li>')
        contact = _link("contact ↗", p.get("url"), "ac-contact")
        cards.append(
            f'<div class="ac-person"><div class="ac-prow"><span class="ac-pname">{esc(clip(p["name"]))}</span>'
            + (contact if contact.startswith("<a") else "") + "</div>"
            + (f'<div class="ac-role">{role}</div>' if role else "")
            + ("" if p.get("has_profile", True) else '<div class="ac-role">no profile in the people directory</div>')
            + (f'<div class="ac-reason">Why: {_cite_links(esc(p["reason"]), turn)}</div>' if p.get("reason") else "")
            + f'<div class="ac-why">Wrote:<ul>{"".join(why)}</ul></div></div>')
    return head + "".join(cards)


def status_line(m: dict, counts: dict | None = None) -> str:
    """One line about an index version, from its manifest: counts (or the given ones), model, build time."""
    c = counts if counts is not None else m.get("counts", {})
    model = m.get("model", {}).get("id", "?").split("/")[-1]
    built = (m.get("built_at") or "?").replace("T", " ")[:16]
    return (f"{c.get('documents', 0)} documents · {c.get('chunks', 0)} passages · {c.get('people', 0)} people · "
            f"model {model} · index built {built} UTC")


def header_html(m: dict, counts: dict | None = None) -> str:
    """The page header, with the status line of the index version that answered last."""
    return ('<div class="ac-head"><h1>askcolleague</h1><span>Answers from company knowledge, with their '
            'sources and who to ask.</span></div><div class="ac-status">' + esc(status_line(m, counts)) + "</div>")
