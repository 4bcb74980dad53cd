"""Bounds on what one passage or answer puts in a response (the web API, the MCP tools): pure text functions."""
from __future__ import annotations

import re


def _find(text: str, sentence: str) -> tuple[int, int] | None:
    words = sentence.split()
    if not words:
        return None
    m = re.search(r"\s+".join(re.escape(w) for w in words), text)
    return m.span() if m else None


def _spans(text: str, sentences: list[str]) -> list[tuple[int, int]]:
    """Non-overlapping (start, end) of each of `sentences` found in `text`, in order."""
    out, pos = [], 0
    for a, b in sorted(s for s in (_find(text, x) for x in sentences) if s):
        if a >= pos:
            out.append((a, b))
            pos = b
    return out


# Bounds on what one passage puts in a response: an old index (or a file of one endless line) may
# hold a passage of 100,000+ characters, which would freeze the page and bloat every answer.
SHOWN_CHARS = 2_000          # of a passage shown when its card opens (around its highlighted sentence)
PAGE_PASSAGE_CHARS = 20_000  # the most of one passage the page holds ("Show more" reveals up to this)
MAX_PASSAGE_CHARS = 4_000    # the most of one passage the /ask API returns (with "truncated": true)
MAX_SENTENCE_CHARS = 1_000   # the most of one answer sentence, highlight, title or section
ELLIPSIS = "…"


def window(text: str, spans: list[tuple[int, int]], limit: int) -> tuple[int, int]:
    """(start, end) of at most `limit` characters of `text` that hold the start of the first span
    (with up to a quarter of the room as context before it), moved to whitespace nearby if any."""
    n = len(text)
    if n <= limit:
        return 0, n
    a, b = spans[0] if spans else (0, 0)
    start = max(0, min(a - max(0, limit - (b - a)) // 4, n - limit))
    end = start + limit
    if start:
        m = re.search(r"\s", text[start:min(a, start + 80)])
        start += m.end() if m else 0
    if end < n:
        lo = max(start, end - 80, a + 1)
        ws = [m.start() for m in re.finditer(r"\s", text[lo:end])]
        end = lo + ws[-1] if ws else end
    return start, end


def clip(text: str | None, limit: int = MAX_SENTENCE_CHARS) -> str | None:
    """`text` cut to `limit` characters, with an ellipsis when cut."""
    if text is None or len(text) <= limit:
        return text
    return text[:limit].rstrip() + ELLIPSIS


def clip_passage(text: str, sentences: list[str], limit: int = MAX_PASSAGE_CHARS) -> tuple[str, bool]:
    """(at most `limit` characters of a passage around its first highlighted sentence, with
    ellipses where cut; whether it was cut)."""
    if len(text) <= limit:
        return text, False
    a, b = window(text, _spans(text, sentences), limit)
    return (ELLIPSIS if a else "") + text[a:b] + (ELLIPSIS if b < len(text) else ""), True


def _clip_answer(text: str) -> str:
    """An answer with each sentence (the text between [n] markers) cut to MAX_SENTENCE_CHARS."""
    if len(text) <= MAX_SENTENCE_CHARS:
        return text
    return "".join(p if re.fullmatch(r"\[\d+\]", p) else clip(p) for p in re.split(r"(\[\d+\])", text))


def bound_answer(a: dict) -> dict:
    """A copy of an answer dict (Answer.to_dict()) with every document-derived text bounded: each
    citation's `text` to MAX_PASSAGE_CHARS around its highlight (`truncated: true` when cut); answer
    sentences, highlights, titles and sections to MAX_SENTENCE_CHARS (`truncated: true` on the answer)."""
    out = dict(a)

    def cite(c: dict) -> dict:
        c = dict(c)
        c["text"], cut = clip_passage(c.get("text") or "", c.get("highlights") or [])
        if cut:
            c["truncated"] = True
        c["highlights"] = [clip(h) for h in c.get("highlights") or []]
        c["title"], c["section"] = clip(c.get("title")), clip(c.get("section"))
        return c

    out["citations"] = [cite(c) for c in a.get("citations") or []]
    if "more_results" in a:
        out["more_results"] = [cite(c) for c in a.get("more_results") or []]
    answer = a.get("answer") or ""
    out["answer"] = _clip_answer(answer)
    out["unsupported_sentences"] = [clip(x) for x in a.get("unsupported_sentences") or []]
    out["people"] = [dict(p, evidence=[dict(e, title=clip(e.get("title"))) for e in p.get("evidence") or []])
                     for p in a.get("people") or []]
    if out["answer"] != answer:
        out["truncated"] = True
    return out
