"""Text helpers shared by every stage: the stopwords, the question's words for BM25, sentences
(abbreviations, table rows and hard wraps handled), the content terms that overlap measures use, and
the restoration of a sentence cut at a chunk boundary."""
from __future__ import annotations

import re

STOPWORDS = frozenset("""a about above after again against all am an and any are as at be because been before
being below between both but by can could did do does doing down during each few for from further had has
have having he her here hers herself him himself his how i if in into is it its itself just me more most my
myself no nor not now of off on once only or other our ours ourselves out over own same she should so some
such than that the their theirs them themselves then there these they this those through to too under until
up very was we were what when where which while who whom why will with would you your yours yourself
yourselves s t don i'm we're it's what's who's""".split())

_WORD = re.compile(r"[\w][\w'-]*", re.UNICODE)


def question_words(text: str) -> list[str]:
    """The question's words for BM25: lower-cased, without stopwords, each once (BM25 weighs them)."""
    words = [w.strip("'-").lower() for w in _WORD.findall(text)]
    return list(dict.fromkeys(w for w in words if w and w not in STOPWORDS))


_SENT = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9@#])|(?<=[.!?:])\s+[-•*]\s+|\n+")

_TOK = re.compile(r"[a-z0-9][a-z0-9'+#.-]*[a-z0-9+#]|[a-z0-9]")

_ABBREV = re.compile(r"(?:\b(?:e\.g|i\.e|cf|vs|approx|incl|esp|resp|Dr|Mr|Mrs|Ms|Mx|Prof|Sr|Jr|St|No|Nr|Fig|Eq|"
                     r"ca|z\.B|d\.h|bzw|usw|Hr|Fr)\.|(?<![\w.])[A-Z]\.)$")  # "e.g." / "J." end no sentence

_TABLE_ROW = re.compile(r"\S.* \| .*\S")  # a table row as the loaders write it: cells joined by " | "


def table_rows(text: str) -> dict[str, str]:
    """Each table row of a passage (not a header), mapped to the header row of its table."""
    out, header = {}, None
    for line in text.split("\n"):
        line = line.strip()
        if _TABLE_ROW.fullmatch(line):
            if header is None:
                header = line
            else:
                out[line] = header
        else:
            header = None
    return out


def sentences(text: str) -> list[str]:
    """Split a passage into sentences (and lines); drop fragments without a word. A table row is
    one sentence of its own (its header row is not a sentence)."""
    parts: list[str] = []
    para: list[str] = []
    header = False
    for line in text.split("\n") + [""]:
        if _TABLE_ROW.fullmatch(line.strip()):
            parts += _prose(para)
            para = []
            if header:
                parts.append(line.strip())
            header = True
        else:
            header = False
            para.append(line)
    parts += _prose(para)
    return [p for p in parts if re.search(r"[A-Za-z]{2}", p)]


def _prose(lines: list[str]) -> list[str]:
    text = "\n".join(lines)
    if not text.strip():
        return []
    # an unbroken run of 200+ characters (a hash, base64, a minified line) is a paragraph of its own
    text = re.sub(r"\S{200,}", lambda m: f"\n\n{m.group(0)}\n\n", text)
    # a single line break inside a paragraph is a hard wrap, not a sentence end
    text = re.sub(r"(?<![.!?:\n])\n(?![ \t]*(?:[-•*]|\d+[.)])\s|[ \t]*\n)", " ", text)
    parts: list[str] = []
    for piece in _SENT.split(text):
        if parts and _ABBREV.search(parts[-1]) and piece and not piece.startswith("\n"):
            parts[-1] = f"{parts[-1]} {piece}"  # split after an abbreviation or an initial: rejoin
        else:
            parts.append(piece)
    return [s.strip(" \t-•*") for s in parts if s and s.strip(" \t-•*")]

_SENTENCE_END = re.compile(r"[.!?…][\"')\]’”]*\s*$")

_SENTENCE_START = re.compile(r"[.!?…][\"')\]’”]*\s+|\n")


def restore_start(prev: str, cur: str, prev_starts: bool = False) -> tuple[str, bool]:
    """Where chunk `cur` starts, given the chunk `prev` before it in the same unit (a section,
    comment or message): (the words of cur's first sentence that lie in prev, whether cur starts
    mid-sentence). ("", False) when cur starts a sentence or a line; (prefix, True) when the
    sentence it starts inside begins in prev (the overlap is found exactly: both are slices of one
    text); ("", True) when it starts mid-sentence and the start is not in prev either (unless
    `prev_starts`: prev itself begins a sentence, e.g. it is its unit's first chunk)."""
    cur = cur.lstrip()
    if not prev or not cur:
        return "", False
    probe = cur[:20]
    at = prev.find(probe)  # the longest suffix of prev that begins cur: their overlap
    while at >= 0 and not cur.startswith(prev[at:]) and not prev[at:].startswith(cur):
        at = prev.find(probe, at + 1)
    if at < 0:  # no overlap: cur begins where prev ends
        if _SENTENCE_END.search(prev) or not cur[:1].islower():
            return "", False
        before = prev.rstrip() + " "
    else:
        before = prev[:at]
        if not before.strip() or before.endswith("\n") or _SENTENCE_END.search(before):
            return "", False
    start = max((m.end() for m in _SENTENCE_START.finditer(before.rstrip())), default=0)
    if start == 0 and not prev_starts:
        return "", True
    return before[start:], True

MAX_SENTENCE_CHARS = 1000  # longer "sentences" (an unbroken run, a flattened table) are not answer sentences


def answerable_sentence(s: str) -> bool:
    """A sentence that can state a fact: not a heading, a fragment, a question, a lead-in to a list
    (ending in ':') or a run-on list."""
    words = s.split()
    end = s.rstrip()[-1:]
    return 4 <= len(words) <= 80 and len(s) <= MAX_SENTENCE_CHARS and end not in ("?", ":") and not s.isupper()


def _stem(w: str) -> str:
    for suf in ("ing", "ed", "es", "s"):
        if len(w) > len(suf) + 2 and w.endswith(suf):
            return w[: -len(suf)]
    return w


def content_terms(text: str) -> set[str]:
    return {_stem(w) for w in _TOK.findall(text.lower()) if w not in STOPWORDS and len(w) > 1}


def lexical_overlap(query_terms: set[str], text: str) -> float:
    """Fraction of the question's content terms found in the text."""
    if not query_terms:
        return 0.0
    return len(query_terms & content_terms(text)) / len(query_terms)


def squash(s: str) -> str:
    """Lower-cased, with runs of whitespace as one space: for comparing sentences."""
    return " ".join(s.split()).lower()


def same_sentence(a: str, b: str) -> bool:
    """One sentence repeats the other (a quote of it, or the same words)."""
    a, b = squash(a).rstrip("."), squash(b).rstrip(".")
    return a in b or b in a
