"""Answers with numbered, checked citations and the people to ask: `Assistant.ask(question) -> Answer`."""
from __future__ import annotations

import math
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .errors import ModelMismatchError
from .index import Index
from .models import Person, role_of
from .retrieval import STOPWORDS, Filters, Hit, Retriever
from .store import visible_sql
from .settings import Settings

MAX_SENTENCES = 4
QUANTITY_QUESTION = re.compile(r"\b(?:how\s+(?:many|much|long|often|fast|quickly|soon|big|large|old|far|high|low)|"
                               r"what\s+(?:time|date|day|year|percentage|share|size|number|amount|price|cost)|"
                               r"when|which\s+(?:year|month|day|date|version))\b", re.I)
QUANTITY = re.compile(r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|twelve|twenty|thirty|hundred|"
                      r"once|twice|daily|weekly|monthly|yearly|annually|quarterly|january|february|march|april|may|"
                      r"june|july|august|september|october|november|december|monday|tuesday|wednesday|thursday|"
                      r"friday|saturday|sunday)\b", re.I)
MAX_SENTENCE_CHARS = 1000  # longer "sentences" (an unbroken run, a flattened table) are not answer sentences
POOL_PER_PASSAGE = 3  # sentences of one passage among the SENTENCE_POOL embedded
MAX_PER_PASSAGE = 2  # sentences of one passage in an answer
ANSWER_CLOSEST = 3  # the pool's passages nearest the question (cosine) always among the answer's candidates
SENTENCE_POOL = 16  # sentences embedded per answer (after a cheap lexical pre-selection)

# "Who said / wrote / proposed ... X": the person who made the statement is the answer.
_ATTRIBUTION_VERBS = (
    "said|says|say|wrote|writes|write|proposed|proposes|propose|suggested|suggests|suggest|asked|asks|ask|"
    "argued|argues|argue|reported|reports|report|mentioned|mentions|raised|raises|claimed|claims|"
    "recommended|recommends|pointed out|points out|noticed|notices|complained|complains|objected|objects|"
    "posted|posts|came up with|comes up with|brought up|brings up|floated|pitched|flagged|flags|warned|warns|"
    "predicted|promised|announced|announces|insisted|thought|think|believes|believed|disagreed|agreed|"
    "found|discovered|wants|wanted|added|explained|described|built|created|fixed|volunteered|offered|"
    "first|originally|initially|started the (?:thread|discussion)|opened the (?:thread|issue)")
ATTRIBUTION = re.compile(
    r"^\W*(?:so\s+|and\s+|but\s+)?(?:who|which\s+(?:person|colleague|engineer|one))\s+"
    r"(?:(?:was|is)\s+(?:it\s+)?(?:that\s+|who\s+)?)?(?:did\s+|had\s+|has\s+|have\s+)?"
    r"(?:first\s+|originally\s+|actually\s+|initially\s+|really\s+)?"
    rf"(?:{_ATTRIBUTION_VERBS})\b"
    r"|\bwhose\s+(?:idea|suggestion|proposal|question|comment|point|argument|claim|plan)\b"
    r"|\bwho\s+(?:had|came up with|gave)\s+the\s+(?:idea|suggestion|proposal)\b"
    r"|\b(?:credit|attributed?)\s+(?:for|to)\b", re.I)
_ASKING = re.compile(r"^\W*(?:who|which\s+\w+)\s+(?:(?:was|is)\s+(?:it\s+)?(?:that\s+|who\s+)?)?"
                     r"(?:first\s+|originally\s+)?(?:asked|asks|ask)\b|\bwhose\s+question\b", re.I)
ECHO_COSINE = 0.80  # two sentences state the same idea (all-MiniLM-L6-v2: paraphrases score ~0.8-0.95)
ECHO_OVERLAP = 0.6  # ... or share this share of their content words
ECHO_ANSWERS, ECHO_RELATED = 0.10, 0.35  # ... or states what was asked nearly as well (cosine to the
# question's statement within 0.10 of the best sentence's) and is related to it (pairwise cosine >= 0.35)
RELATED = 0.1  # a passage with rel(d) >= this counts as "on this" in a person's reason (cosine ~0.11 below the best)


def statement_of(question: str) -> str:
    """What an attribution question asks about, without its "who said ..." frame: "Who proposed
    running the old and the new cache side by side?" → "running the old and the new cache side by
    side". Searched instead of the question, it is closer in meaning to the sentence that says it."""
    m = ATTRIBUTION.search(question)
    if not m or m.start() > 3:
        return question
    rest = re.sub(r"^(?:that|about|whether|if|for|to|on|the idea (?:that|of)|it)\s+", "", question[m.end():].strip(" ,:"))
    rest = rest.rstrip(" ?")
    return rest if len(rest.split()) >= 3 else question


# A sentence that opens by agreeing ("Agreed, …", "+1", "Same here", "As Kenji said, …") reacts to
# what someone else said: for "who said X" it is an echo, not the statement's source.
AGREEMENT = re.compile(r"^\W*(?:agreed|i\s+agree|\+1|same\s+here|exactly|absolutely|seconded|good\s+(?:point|idea|call)|"
                       r"as\s+(?:\w+\s+){0,3}(?:said|says|suggested|wrote|mentioned|pointed\s+out|proposed))\b", re.I)
ASKER_WEIGHT = 0.3  # a question's author asked about the topic: not (yet) its expert


def role_weight(row: dict) -> float:
    """How much a passage tells about its author's expertise, by its role in a Q&A thread: the
    person who asked is not the expert (0.3); an accepted answer counts 1.5, a voted one up to 1.5."""
    role = row.get("role")
    if role == "question":
        return ASKER_WEIGHT
    if role == "answer":
        if row.get("accepted"):
            return 1.5
        return 1.0 + min(max(row.get("votes") or 0, 0), 10) / 20
    return 1.0


def question_kind(question: str) -> str:
    """``attribution`` for "who said / wrote / proposed / asked ... X" (the statement's author comes
    first), else ``expertise`` ("who knows about X", "who should I ask", and every other question:
    the people with the broadest relevant evidence, cited authors leading)."""
    return "attribution" if ATTRIBUTION.search(question) else "expertise"


# ------------------------------------------------------------------------------------------
# result types (the JSON contract)

@dataclass
class Citation:
    n: int
    chunk_id: str
    doc_id: str
    title: str
    section: str | None
    text: str
    url: str | None
    source_type: str
    date: str | None
    score: float
    authors: list[dict]
    highlights: list[str] = field(default_factory=list)  # sentences of `text` the answer relies on
    role: str | None = None  # the unit's role in its conversation: question, answer, reply, comment, ...


@dataclass
class PersonHit:
    person_id: str
    name: str
    email: str | None
    url: str | None
    title: str | None
    team: str | None
    score: float
    evidence: list[dict] = field(default_factory=list)  # {chunk_id, n, title, url}
    has_profile: bool = True
    reason: str = ""  # why this person, from the evidence: "wrote the cited passage [1]", ...

    def to_dict(self) -> dict:
        return asdict(self)

    def render(self, i: int | None = None) -> str:
        role = " · ".join(x for x in (self.title, self.team) if x)
        head = f"{str(i) + '. ' if i else ''}{self.name}{' — ' + role if role else ''}  ({self.score:.2f})"
        lines = [head, f"    {self.url or ''}"]
        if self.reason:
            lines.append(f"    why: {self.reason}")
        for e in self.evidence:
            n = f"[{e['n']}] " if e.get("n") else ""
            lines.append(f"    wrote: {n}{e['title']}")
        return "\n".join(lines)


@dataclass
class Answer:
    question: str
    answer: str
    abstained: bool
    mode: str  # extractive | llm
    fallback_reason: str | None
    citations: list[Citation]
    unsupported_sentences: list[str]
    people: list[PersonHit]
    timings_ms: dict[str, float]
    more_results: list[Citation] = field(default_factory=list)
    retrieval_mode: str = "hybrid"
    question_kind: str = "expertise"  # attribution ("who said X") or expertise (every other question)

    def __post_init__(self) -> None:
        self.picks: list[tuple[Hit, str, float]] = []  # (passage, sentence, support score): not in the JSON

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def render(self) -> str:
        """Plain text for a terminal."""
        out = [self.answer, ""]
        if self.unsupported_sentences:
            out.append("Not supported by the cited passages:")
            out += [f"  ! {s}" for s in self.unsupported_sentences]
            out.append("")
        if self.fallback_reason:
            out += [f"(extractive answer: {self.fallback_reason})", ""]
        if self.citations:
            out.append("Sources:")
            for c in self.citations:
                who = ", ".join(a["name"] for a in c.authors) or "unknown author"
                where = f"{c.title}" + (f" › {c.section}" if c.section else "")
                out.append(f"  [{c.n}] {where} — {who}{', ' + c.date[:10] if c.date else ''} ({c.source_type})")
                if c.url:
                    out.append(f"       {c.url}")
        if self.people:
            out += ["", "Who to ask:"]
            out += ["  " + p.render(i).replace("\n", "\n  ") for i, p in enumerate(self.people, 1)]
        if self.more_results:
            out += ["", "More results:"]
            out += [f"  - {c.title}" + (f" › {c.section}" if c.section else "") for c in self.more_results]
        return "\n".join(out).rstrip() + "\n"


# ------------------------------------------------------------------------------------------
# text helpers

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


def _in_context(row: dict, sentence: str, header: str | None = None) -> str:
    head = row["title"] + (f" — {row['section']}" if row.get("section") else "")
    if header:  # a table row, read with its column names: "Priority: P1 · First response: 30 minutes"
        cells, names = sentence.split(" | "), header.split(" | ")
        if len(cells) == len(names):
            sentence = " · ".join(f"{n}: {c}" for n, c in zip(names, cells))
    return f"{head}: {sentence}"


def _norm(s: str) -> str:
    return " ".join(s.split()).lower()


def _same(a: str, b: str) -> bool:
    """One sentence repeats the other (a quote of it, or the same words)."""
    a, b = " ".join(a.lower().split()).rstrip("."), " ".join(b.lower().split()).rstrip(".")
    return a in b or b in a


def _authors(store, chunk_row: dict, links: dict[int, list], groups: list[str] | None = None) -> list[dict]:
    """The citation's authors: {name, email, url} from their people records; with access control
    (`groups`), a person whose profile the asker may not see is shown as the passage itself names them."""
    pids = [pid for pid, role, _w in links.get(chunk_row["id"], []) if role in ("author", "profile")]
    shown = store.visible_profiles(pids, groups)
    out = []
    for pid in pids:
        p = store.person(pid)
        if p:
            card = p if pid in shown else as_seen(p, [chunk_row])
            out.append({"name": card.name, "email": card.email, "url": card.link()})
    return out


def as_seen(p: Person, rows: list[dict]) -> Person:
    """What may be shown of a person whose profile is hidden from the asker: only the name and email
    the visible passages `rows` themselves carry for them — no title, team, profile link or handle."""
    from .people import normalize_name, person_id_for

    names = {normalize_name(n) for n in [p.name, *p.aliases] if n}
    emails = {e.lower() for e in [p.email, *(a for a in p.aliases if "@" in a)] if e}
    refs = [a for r in rows for a in r.get("authors") or []]
    mine = [a for a in refs if (a.get("email") or "").lower() in emails
            or (a.get("name") and normalize_name(a["name"]) in names)]
    if not mine and len(refs) == 1:
        mine = refs
    name = next((a["name"] for a in mine if a.get("name")), None)
    email = next((a["email"].lower() for a in mine if a.get("email")), None)
    name = name or email or p.name
    return Person(name=name, email=email, person_id=person_id_for(name, email), has_profile=False)


# ------------------------------------------------------------------------------------------

class Assistant:
    """Question answering over one index. Load once (`from_index`), ask many times."""

    def __init__(self, index: Index, settings: Settings | None = None) -> None:
        self.index = index
        self.settings = settings or Settings.load()
        self.retriever = Retriever(index, rrf_k=self.settings.rrf_k, max_per_doc=self.settings.max_per_doc)
        self._people: dict[str, Person] = {p.person_id: p for p in index.store.people()}

    @classmethod
    def from_index(cls, path: str | Path | None = None, settings: Settings | None = None,
                   embedder=None) -> "Assistant":
        settings = settings or Settings.load()
        return cls(Index.open(path or settings.index, settings, embedder=embedder), settings)

    @property
    def embedder(self):
        return self.index.embedder

    @property
    def abstain_threshold(self) -> float:
        """The cosine below which the answer abstains: the setting, or with `auto` the index's own
        calibration (manifest `abstain_calibration`; see calibration.py), else the default 0.42."""
        from .calibration import DEFAULT

        value = self.settings.abstain_threshold
        if value != "auto":
            return float(value)
        cal = self.index.manifest.get("abstain_calibration") or {}
        return float(cal.get("threshold", DEFAULT))

    def warm_up(self) -> None:
        """Load the model and touch the index so the first question is as fast as the rest."""
        self.ask("warm up", k=2)
        self.embedder.embed_batch(["warm up", "the answer's sentences are embedded as a batch"])

    # -- public API ------------------------------------------------------------------------
    def ask(self, question: str, k: int | None = None, mode: str | None = None,
            source_type: str | list[str] | None = None, person: str | None = None,
            tag: str | list[str] | None = None, since: str | None = None, until: str | None = None,
            groups: list[str] | None = None, as_person: str | None = None, llm: bool | None = None,
            on_token: Callable[[str], None] | None = None) -> Answer:
        """Answer a question with cited passages and the people to ask.

        Filters (source_type, person, tag, since, until, groups) apply before ranking. `as_person`
        (or `groups`) turns access control on: only passages without groups, or in one of the
        asker's groups, can appear anywhere in the answer. With an LLM
        configured (ASKCOLLEAGUE_LLM_BASE_URL) and `llm` not False, the answer is generated, streamed
        to `on_token`, and checked; otherwise (or on fallback) it is extractive.
        """
        t0 = time.perf_counter()
        if as_person is not None:
            groups = sorted(set(groups or []) | set(self.groups_for(as_person)))
        k = k or self.settings.k
        mode = mode or self.settings.mode
        filters = Filters(
            source_types=[source_type] if isinstance(source_type, str) else source_type,
            person=person, tags=[tag] if isinstance(tag, str) else tag, since=since, until=until, groups=groups)
        question = question.strip()
        made: list = []
        depth = max(self.settings.people_depth, k * 5)
        kind = question_kind(question)
        query = statement_of(question) if kind == "attribution" else question

        def embed_question():  # called by the retriever while its BM25 run goes on in parallel
            made.append(self.embedder.embed_batch([query])[0])
            return made[0]

        pool = self.retriever.search(query, k=None, mode=mode, filters=filters, depth=depth,
                                     qvec=embed_question if mode != "bm25" else None)
        qvec = made[0] if made else None
        hits = pool[:k]
        if qvec is not None:
            cos = self.retriever.cosine(qvec, [h.id for h in pool])
            for h in pool:
                h.dense = cos.get(h.id, h.dense)
            # The passages closest to the question in meaning are answer candidates even when the
            # fusion (or the per-document cap) ranked them below k: hybrid retrieval decides the
            # ranking shown, not which sentence may answer.
            closest = sorted((h for h in pool if h.dense is not None), key=lambda h: -h.dense)[:ANSWER_CLOSEST]
            hits = hits + [h for h in closest if all(h.id != x.id for x in hits)]
            hits = hits + self._quote_sources(hits, qvec, filters)
        self._whole_sentences(hits)
        t1 = time.perf_counter()
        best = max((h.dense for h in hits if h.dense is not None), default=None)
        qterms = content_terms(query)
        if best is None:  # bm25 mode: abstain only when nothing matched
            abstain = not hits
        else:
            abstain = not hits or best < self.abstain_threshold
        abstain = abstain or bool(self.unknown_names(question, groups=groups))
        if abstain:
            answer = Answer(question, "", True, "extractive", None, [], [], [], {},
                            retrieval_mode=mode)
        elif self._use_llm(llm):
            answer = self._llm_answer(question, qterms, qvec, hits, mode, on_token, groups)
        else:
            # (attribution: a suggestion is often asked — "Could we ...?" — and "who asked X" is one)
            answer = self._extractive(question, qterms, qvec, hits, mode, groups, questions_ok=kind == "attribution")
        origin = None
        if kind == "attribution" and not answer.abstained and answer.picks:
            answer, origin = self._origin(question, answer, pool, hits, mode, groups,
                                          asking=bool(_ASKING.search(question)), qvec=qvec)
        t2 = time.perf_counter()
        support: dict[str, float] = {}
        for h, _sent, sc in answer.picks:
            support[h.row["chunk_id"]] = max(support.get(h.row["chunk_id"], 0.0), sc)
        answer.people = self.rank_people(pool, answer.citations, qvec, groups=groups, kind=kind, support=support,
                                         origin=origin, question=question)
        answer.question_kind = kind
        t3 = time.perf_counter()
        if abstain:
            answer.answer = self._abstain_text(answer.people)
        answer.timings_ms = {"retrieve": (t1 - t0) * 1e3, "answer": (t2 - t1) * 1e3,
                             "people": (t3 - t2) * 1e3, "total": (t3 - t0) * 1e3}
        return answer

    def _quote_sources(self, hits: list[Hit], qvec, filters: Filters) -> list[Hit]:
        """The messages that retrieved quotes come from ("> put the bucket in us-west-2"), as answer
        candidates: the quote is often cut mid-sentence and credits its author only at second hand,
        while the original states the whole sentence, in its author's own message. (The per-document
        cap can keep the original out of the pool: a thread is one document.) Only what the
        question's filters and the asker's groups allow."""
        want = {h.row["quoted_from"]: h.row["doc_id"] for h in hits if h.row.get("quoted_from")}
        if not want:
            return []
        have = {h.id for h in hits}
        rows = [r for r in self.index.store.chunks_of_units(want, want.values())
                if r["id"] not in have and not r.get("quoted_from")]
        allowed = self.retriever.allowed(filters) if rows else None
        if allowed is not None:
            ok = set(allowed.tolist())
            rows = [r for r in rows if r["id"] in ok]
        if not rows:
            return []
        cos = self.retriever.cosine(qvec, [r["id"] for r in rows])
        return [Hit(r["id"], 0.0, r, dense=cos.get(r["id"])) for r in rows]

    def groups_for(self, person: str) -> list[str]:
        """The groups a person (name, alias, email or handle) belongs to, for access control."""
        from .errors import ConfigError

        pids = self.retriever.person_ids(person)
        if not pids:
            raise ConfigError(f"no person {person!r} in the index; see `askcolleague people list`")
        return sorted({g for pid in pids for g in (self._people[pid].groups if pid in self._people else [])})

    def unknown_names(self, question: str, groups: list[str] | None = None) -> list[str]:
        """Capitalised names in the question (not its first word) that appear nowhere in the index
        (with `groups`: nowhere the asker may see, so the answer never tells a hidden name exists).

        "What is the parental leave policy in Brazil?" cannot be answered from a knowledge base
        that never mentions Brazil, however close its parental leave passages are.
        """
        words = re.findall(r"(?<![\w'])([A-Z][\w-]{2,})", question)
        first = re.match(r"\W*(\w+)", question)
        sql, extra = "SELECT 1 FROM chunks_fts WHERE chunks_fts MATCH ? LIMIT 1", []
        if groups is not None:
            cond, extra = visible_sql(groups)
            sql = f"SELECT 1 FROM chunks_fts f JOIN chunks c ON c.id = f.rowid WHERE chunks_fts MATCH ? AND {cond} LIMIT 1"
        out = []
        for w in dict.fromkeys(words):
            if (first and w == first.group(1)) or w.lower() in STOPWORDS:
                continue
            hit = self.index.store.db.execute(sql, (f'"{w}"', *extra)).fetchone()
            if hit is None:
                out.append(w)
        return out

    def find_people(self, question: str, mode: str | None = None, **filters) -> list[PersonHit]:
        """Who knows about this: people ranked from the evidence retrieved for the question."""
        return self.ask(question, mode=mode, **filters).people

    def as_retriever(self, k: int = 8, mode: str = "hybrid", **filters):
        """This index's hybrid retriever as a LangChain BaseRetriever (see lc_retriever)."""
        from .lc_retriever import AskColleagueRetriever

        return AskColleagueRetriever(assistant=self, k=k, mode=mode, filters=filters)

    # -- generated answer ------------------------------------------------------------------
    def _use_llm(self, llm: bool | None) -> bool:
        return llm is not False and bool(self.settings.llm_base_url)

    def _llm_answer(self, question, qterms, qvec, hits: list[Hit], mode: str, on_token,
                    groups: list[str] | None = None) -> Answer:
        """Generate with the LLM, check every [n]; fall back to the extractive answer with the reason."""
        from .llm import generate

        passages = [dict(h.row, authors=_authors(self.index.store, h.row, self.index.store.links_for([h.id]), groups))
                    for h in hits]
        res = generate(question, passages, self.settings, self.embedder, on_token=on_token)
        if res.reason:
            ans = self._extractive(question, qterms, qvec, hits, mode, groups)
            ans.fallback_reason = res.reason
            return ans
        ans = self._compose(question, hits, [(i, s) for i, s in res.support], mode, text=res.text, llm_mode=True,
                            groups=groups)
        ans.picks = [(hits[i], sent, 1.0) for i, sent in res.support]
        ans.unsupported_sentences = res.unsupported
        return ans

    # -- extractive answer -----------------------------------------------------------------
    def _whole_sentences(self, hits: list[Hit]) -> None:
        """Give each passage that starts mid-sentence (cut at a chunk boundary) the start of that
        sentence from the chunk before it in the same unit, so that no answer sentence, and no cited
        passage, begins mid-sentence; where it cannot be restored the fragment is marked (not used)."""
        todo = [h.row for h in hits if h.row.get("position") and h.row.get("restored") is None]
        near = self.index.store.chunks_at((r["doc_id"], r["position"] - d) for r in todo for d in (1, 2))
        for r in todo:
            prev, before = near.get((r["doc_id"], r["position"] - 1)), near.get((r["doc_id"], r["position"] - 2))
            if prev is None or prev.get("unit_id") != r.get("unit_id"):
                continue
            prev_starts = before is None or before.get("unit_id") != r.get("unit_id")  # prev opens its unit
            prefix, cut = restore_start(prev["text"], r["text"], prev_starts)
            r["restored"] = prefix
            if prefix:
                r["text"] = prefix + r["text"].lstrip()
            elif cut:
                r["cut_start"] = True

    def _extractive(self, question: str, qterms: set[str], qvec, hits: list[Hit], mode: str,
                    groups: list[str] | None = None, questions_ok: bool = False) -> Answer:
        cands: list[tuple[int, str]] = []  # (hit index, sentence)
        originals = {}  # unit id -> [(hit index, sentence)] of the messages that quotes come from
        for hi, h in enumerate(hits):
            if h.row.get("unit_id") and not h.row.get("quoted_from"):
                originals.setdefault(h.row["unit_id"], []).extend((hi, s) for s in sentences(h.row["text"]))
        for hi, h in enumerate(hits):
            sents = sentences(h.row["text"])
            if h.row.get("quoted_from"):
                # a quoted sentence found in its original message is the original's whole sentence
                # (a quote often starts mid-sentence: "> put the bucket in us-west-2, ...")
                source = originals.get(h.row["quoted_from"], [])
                whole = [next(((oi, o) for oi, o in source if _norm(s) in _norm(o)), (hi, s)) for s in sents]
                cands.extend(c for c in dict.fromkeys(whole) if c[0] != hi and answerable_sentence(c[1]))
                sents = [s for (oi, _), s in zip(whole, sents) if oi == hi and not s[:1].islower()]
            if sents and not re.search(r"[.!?:;)\"'’”]\s*$", h.row["text"]):
                sents = sents[:-1]  # the chunk was cut mid-sentence; the next chunk restores it whole
            if sents and h.row.get("cut_start"):
                sents = sents[1:]  # starts mid-sentence and the start could not be restored
            for s in sents:
                if answerable_sentence(s) or (questions_ok and answerable_sentence(s.rstrip("?") + ".")):
                    cands.append((hi, s))  # ("who asked X?": the question asked is the statement)
        if not cands:
            return Answer(question, "", True, "extractive", None, [], [], [], {}, retrieval_mode=mode)
        # Stage 1 (cheap): lexical overlap and passage rank keep the most promising sentences, plus
        # the opening sentences of the best passage; only these are embedded (the model is the cost).
        best_cos = max((h.dense for h in hits if h.dense is not None), default=None)

        def relevance(hi: int) -> float:  # the passage's own relevance: its cosine, else its rank
            h = hits[hi]
            if h.dense is not None and best_cos is not None:
                return math.exp((h.dense - best_cos) / 0.05)
            return 1.0 / (1.0 + 0.5 * hi)

        rel = [relevance(hi) for hi in range(len(hits))]
        for hi, h in enumerate(hits):  # a retrieved quote is evidence for the words of its original
            for oi, _ in originals.get(h.row.get("quoted_from") or "", [])[:1]:
                rel[oi] = max(rel[oi], rel[hi])
        top = max(range(len(hits)), key=lambda hi: rel[hi])
        lex = [lexical_overlap(qterms, s) for _, s in cands]
        # answer-type match (classic QA): "how many / how long / when ..." is answered by a sentence with a number
        typed = [QUANTITY.search(s) is not None for _, s in cands] if QUANTITY_QUESTION.search(question) else \
            [False] * len(cands)
        pre = sorted(range(len(cands)), key=lambda ci: -(0.6 * lex[ci] + 0.4 * rel[cands[ci][0]] + 0.2 * typed[ci]))
        opening = [ci for ci, (hi, _) in enumerate(cands) if hi == top][:3]
        per: dict[int, int] = {}
        pooled = []
        for ci in pre:  # at most POOL_PER_PASSAGE of one passage: every passage gets its best in
            if len(pooled) >= SENTENCE_POOL:
                break
            if per.get(cands[ci][0], 0) < POOL_PER_PASSAGE:
                per[cands[ci][0]] = per.get(cands[ci][0], 0) + 1
                pooled.append(ci)
        keep = sorted(set(pooled) | set(opening))
        cands = [cands[ci] for ci in keep]
        lex = [lex[ci] for ci in keep]
        # Stage 2: each kept sentence embedded with its passage's title and section (what it is about)
        svecs = None
        if qvec is not None:
            rows = {hi: table_rows(hits[hi].row["text"]) for hi in {hi for hi, _ in cands}}
            svecs = self.embedder.embed_batch([_in_context(hits[hi].row, s, rows[hi].get(s)) for hi, s in cands])
        scored = []
        for ci, (hi, s) in enumerate(cands):
            sim = float(svecs[ci] @ qvec) if svecs is not None else 0.0
            passage = rel[hi]
            score = 0.55 * sim + 0.25 * lex[ci] + 0.20 * passage + 0.05 * typed[ci]
            if hits[hi].row.get("quoted_from"):
                score -= 0.05  # prefer the original message to a quote of it
            if questions_ok and AGREEMENT.match(s):
                score -= 0.05  # "who said X": an agreeing reply repeats X; its source said it first
            if hits[hi].row.get("role") == "question" and not questions_ok:
                score -= 0.05  # the question's own words rarely answer it; its answers do
            scored.append((score, ci))
        scored.sort(reverse=True)
        best = scored[0][0]
        chosen: list[int] = []
        for score, ci in scored:
            if len(chosen) >= MAX_SENTENCES or score < best * 0.75:
                break
            if svecs is not None and any(float(svecs[ci] @ svecs[cj]) > 0.9 for cj in chosen):
                continue
            if any(_same(cands[ci][1], cands[cj][1]) for cj in chosen):
                continue
            if sum(cands[cj][0] == cands[ci][0] for cj in chosen) >= MAX_PER_PASSAGE:
                continue  # room for the best sentences of other passages
            chosen.append(ci)
        # keep passage order, then sentence order within a passage, for readability
        chosen.sort()
        ans = self._compose(question, hits, [(cands[ci][0], cands[ci][1]) for ci in chosen], mode, groups=groups)
        score_of = {ci: sc for sc, ci in scored}
        ans.picks = [(hits[cands[ci][0]], cands[ci][1], score_of[ci]) for ci in chosen]
        return ans

    def _origin(self, question: str, answer: Answer, pool: list[Hit], hits: list[Hit], mode: str,
                groups: list[str] | None, asking: bool = False, qvec=None) -> tuple[Answer, dict]:
        """For an attribution question: the earliest passage that states what the answer's best
        sentence states, and the later ones that repeat it (echoes: a quote, a paraphrase, "as you
        said"). Candidates are the sentences of the top passages sharing content words with the
        answer's sentence; one is the same idea when its embedding's cosine to it is at least
        ECHO_COSINE or it shares ECHO_OVERLAP of its content words. The earliest by date (then by
        position in a thread) is the origin. An extractive answer then quotes and cites the origin
        instead of an echo; the people ranking puts its author first and names the others.
        """
        asked = [t for t in answer.picks if t[1].rstrip().endswith("?")] if asking else []
        best_hit, best_sent, best_score = max(asked or answer.picks, key=lambda t: t[2])  # "who asked": the question
        terms = content_terms(best_sent)
        if not terms:
            return answer, {}
        cands: list[tuple[float, Hit, str]] = []
        for h in pool[:20]:
            for sent in sentences(h.row["text"]):
                if h.id == best_hit.id and _same(sent, best_sent):
                    continue
                other = content_terms(sent)
                if not other:
                    continue
                lex = len(terms & other) / len(terms | other)
                if lex >= 0.1 or any(h.id == p[0].id and sent == p[1] for p in answer.picks):
                    cands.append((lex, h, sent))
        cands.sort(key=lambda t: -t[0])
        cands = cands[:24]
        echoes: list[tuple[Hit, str]] = []
        if cands:
            vecs = self.embedder.embed_batch([best_sent] + [c[2] for c in cands])
            to_q = None if qvec is None else vecs @ qvec  # how well each states what was asked
            for i, ((lex, h, sent), v) in enumerate(zip(cands, vecs[1:]), 1):
                overlap = len(terms & content_terms(sent)) / len(terms)
                pair = float(v @ vecs[0])
                if pair >= ECHO_COSINE or overlap >= ECHO_OVERLAP and lex >= 0.4 or (
                        to_q is not None and to_q[i] >= to_q[0] - ECHO_ANSWERS and pair >= ECHO_RELATED):
                    echoes.append((h, sent))

        def when(item: tuple[Hit, str]) -> tuple:
            h = item[0]
            return (h.row.get("date") or "9999", h.row["doc_id"], h.row.get("position") or 0)

        group = [(best_hit, best_sent)] + echoes
        first_hit, first_sent = min(group, key=when)
        if first_hit.id == best_hit.id or when((first_hit, "")) >= when((best_hit, "")) or answer.mode != "extractive":
            first_hit, first_sent = best_hit, best_sent  # (a generated answer keeps its own citations)
        if answer.mode == "extractive" and answer.citations and answer.citations[0].chunk_id != first_hit.row["chunk_id"]:
            # the statement's origin is quoted and cited first: [1] is whom the people panel names
            hits = list(hits)
            if all(h.id != first_hit.id for h in hits):
                hits.append(first_hit)
            index = {h.id: i for i, h in enumerate(hits)}
            picks = [(first_hit, first_sent, score) if (h.id, sent) == (best_hit.id, best_sent) else (h, sent, score)
                     for h, sent, score in answer.picks]
            seen, unique = set(), []
            for h, sent, score in picks:
                if (h.id, sent) not in seen:
                    seen.add((h.id, sent))
                    unique.append((h, sent, score))
            unique.sort(key=lambda t: (t[0].id != first_hit.id, index[t[0].id]))
            new = self._compose(question, hits, [(index[h.id], sent) for h, sent, _ in unique], mode, groups=groups)
            new.picks = unique
            new.unsupported_sentences, new.fallback_reason = answer.unsupported_sentences, answer.fallback_reason
            answer = new
        links = self.index.store.links_for([h.id for h, _ in group])

        def authors(h: Hit) -> list[str]:
            return [pid for pid, role, _ in links.get(h.id, []) if role == "author"]

        def seen_names(h: Hit) -> list[str]:  # as the passage names its author (never a hidden profile's)
            return [a.get("name") or a.get("email") or "" for a in h.row.get("authors") or []]

        first_authors = authors(first_hit)
        later = [h for h, _ in sorted(group, key=when) if h.id != first_hit.id and set(authors(h)) - set(first_authors)]
        echo_authors = [pid for h in later for pid in authors(h) if pid not in first_authors]
        echo_names = [n for h in later for n in seen_names(h) if n and n not in seen_names(first_hit)]
        return answer, {"chunk_id": first_hit.row["chunk_id"], "authors": first_authors, "echo_authors": echo_authors,
                        "echo_names": list(dict.fromkeys(echo_names)),
                        "origin_name": next(iter(seen_names(first_hit)), None), "asking": asking}

    def _compose(self, question: str, hits: list[Hit], picks: list[tuple[int, str]], mode: str,
                 text: str | None = None, llm_mode: bool = False, groups: list[str] | None = None) -> Answer:
        """Number passages in order of first citation; list only cited ones; the rest are more results."""
        number: dict[int, int] = {}
        parts = []
        highlights: dict[int, list[str]] = {}
        for hi, s in picks:
            if hi not in number:
                number[hi] = len(number) + 1
            highlights.setdefault(hi, []).append(s)
            parts.append(f"{s} [{number[hi]}]")
        links = self.index.store.links_for([h.id for h in hits])
        cites = [self._citation(hits[hi], n, links, highlights.get(hi, []), groups) for hi, n in
                 sorted(number.items(), key=lambda kv: kv[1])]
        more = [self._citation(h, 0, links, [], groups) for i, h in enumerate(hits) if i not in number]
        return Answer(question, text if text is not None else " ".join(parts), False,
                      "llm" if llm_mode else "extractive", None, cites, [], [], {}, more, retrieval_mode=mode)

    def _citation(self, h: Hit, n: int, links, highlights: list[str], groups: list[str] | None = None) -> Citation:
        r = h.row
        return Citation(n=n, chunk_id=r["chunk_id"], doc_id=r["doc_id"], title=r["title"], section=r["section"],
                        text=r["text"], url=r["url"], source_type=r["source_type"], date=r["date"],
                        score=round(h.score, 6), authors=_authors(self.index.store, r, links, groups),
                        role=role_of(r["source_type"], r.get("role")),
                        highlights=highlights)

    # -- people ----------------------------------------------------------------------------
    def rank_people(self, pool: list[Hit], citations: list[Citation], qvec, limit: int = 5,
                    groups: list[str] | None = None, kind: str = "expertise",
                    support: dict[str, float] | None = None, origin: dict | None = None,
                    question: str = "") -> list[PersonHit]:
        """Who to ask, from the same evidence that answers: Balog et al. 2006 Model 2, with the cited
        authors leading.

        rel(d) ≈ p(q|d): a softmax-like weight of the chunk's cosine similarity to the question,
        exp((cos - cos_best) / 0.05), so passages far less relevant than the best add little (in bm25
        mode, the fused score normalised to the best). w(p, d) is 1/#authors for an author (half
        for words quoted from them in someone else's message) and 0.7 for a profile's own chunk;
        optional recency decay (ASKCOLLEAGUE_PEOPLE_HALF_LIFE_DAYS).

        Model 2 sums rel·w over the pool, so someone with many loosely related passages outweighs the
        person whose one passage answers. Here a person's pool evidence counts with diminishing
        weight — breadth(p) = Σ_i e_i / (i + 1) over their contributions e = rel·w, largest first —
        and the cited passages count by how well their sentences support the answer:
        cited(p) = Σ_{d cited} support(d) / support_best · w(p, d). Expertise questions rank by
        cited(p) + breadth(p); attribution questions ("who said X") by origin first (the author of
        the earliest passage stating the answer, see _origin), then 2·cited(p) + 0.3·breadth(p).

        With access control (`groups`), a card's title, team, link and email come from the profile
        only when the asker may see the profile; otherwise only the name and email the visible
        evidence carries (see as_seen).
        """
        if not pool:
            return []
        cited = {c.chunk_id: c.n for c in citations}
        support = support or {}
        s_best = max(support.values(), default=0.0) or 1.0
        links = self.index.store.links_for([h.id for h in pool])
        top = pool[0].score
        best_cos = max((h.dense for h in pool if h.dense is not None), default=None)
        half_life = float(self.settings.people_half_life_days or 0)
        today = time.time() / 86400.0
        contrib: dict[str, list[tuple[float, Hit, str]]] = {}
        cited_score: dict[str, float] = {}
        for h in pool:
            if best_cos is not None and h.dense is not None:
                rel = math.exp((h.dense - best_cos) / 0.05)
            else:
                rel = h.score / top
            if half_life and h.row.get("date"):
                try:
                    import datetime as dt

                    age = today - dt.datetime.fromisoformat(h.row["date"][:10]).timestamp() / 86400.0
                    rel *= math.pow(0.5, max(age, 0) / half_life)
                except ValueError:
                    pass
            quoted = bool(h.row.get("quoted_from"))
            if quoted:
                rel *= 0.5
            if kind != "attribution":
                rel *= role_weight(h.row)
            for pid, role, w in links.get(h.id, []):
                weight = w if role == "author" else 0.7 if role == "profile" else 0.0
                if weight <= 0:
                    continue
                contrib.setdefault(pid, []).append((rel * weight, h, role))
                if h.row["chunk_id"] in cited:
                    sup = support.get(h.row["chunk_id"], 0.5 * s_best) / s_best * weight * (0.5 if quoted else 1.0)
                    if kind != "attribution":
                        sup *= role_weight(h.row)
                    # expertise: every cited passage counts; attribution: the one that says it best
                    cited_score[pid] = max(cited_score.get(pid, 0.0), sup) if kind == "attribution" \
                        else cited_score.get(pid, 0.0) + sup
        origin = origin or {}
        first = set(origin.get("authors", []))
        echoed = set(origin.get("echo_authors", [])) - first
        scores: dict[str, float] = {}
        for pid, items in contrib.items():
            vals = sorted((e for e, _, _ in items), reverse=True)
            breadth = sum(v / (i + 1) for i, v in enumerate(vals))
            if kind == "attribution":
                scores[pid] = (3.0 if pid in first else 1.0 if pid in echoed else 0.0) \
                    + 2.0 * cited_score.get(pid, 0.0) + 0.3 * breadth
            else:
                scores[pid] = cited_score.get(pid, 0.0) + breadth
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        if not ranked:
            return []
        best = ranked[0][1]
        shown = self.index.store.visible_profiles([pid for pid, _ in ranked], groups)
        qterms = content_terms(question)
        out = []
        for pid, sc in ranked:
            if sc < best * 0.15:
                break
            p = self._people.get(pid) or self.index.store.person(pid)
            if p is None:
                continue
            if pid not in shown:
                p = as_seen(p, [h.row for _, h, _ in contrib[pid]])
            ev = []
            seen_docs = set()
            for _, h, _ in sorted(contrib[pid], key=lambda t: -t[0]):
                if h.row["doc_id"] in seen_docs or len(ev) >= 3:
                    continue
                seen_docs.add(h.row["doc_id"])
                ev.append({"chunk_id": h.row["chunk_id"], "n": cited.get(h.row["chunk_id"]),
                           "title": h.row["title"], "url": h.row["url"], "source_type": h.row["source_type"]})
            reason = self._reason(pid, p, contrib[pid], cited, origin, pid in first, pid in echoed, qterms)
            out.append(PersonHit(person_id=p.person_id, name=p.name, email=p.email, url=p.link(), title=p.title,
                                 team=p.team, score=round(sc, 4), evidence=ev, has_profile=p.has_profile,
                                 reason=reason))
        return out

    def _reason(self, pid: str, p: Person, items: list[tuple[float, Hit, str]], cited: dict[str, int],
                origin: dict, is_origin: bool, is_echo: bool, qterms: set[str]) -> str:
        """A short why for a person card, from their evidence: "said it first [1]; ...", "wrote the
        cited passage [2]", "wrote 4 passages on this, 2 cited", "profile lists kubernetes"."""
        authored = [(h, role) for e, h, role in items if role == "author" and not h.row.get("quoted_from")
                    and (e >= RELATED or h.row["chunk_id"] in cited)]
        units = {(h.row["doc_id"], h.row.get("unit_id")) for h, _ in authored}
        ns = sorted({cited[h.row["chunk_id"]] for h, _ in authored if h.row["chunk_id"] in cited})
        marks = ", ".join(f"[{n}]" for n in ns)
        parts = []
        later = [nm for nm in origin.get("echo_names", []) if nm != p.name] if is_origin else []
        is_origin = is_origin and bool(later)  # "first" only when someone else repeated it
        if origin.get("asking") and pid in origin.get("authors", []) and not is_origin:
            n = cited.get(origin.get("chunk_id", ""))
            parts.append("asked the question" + (f" [{n}]" if n else ""))
        if is_origin:
            n = cited.get(origin.get("chunk_id", ""))
            parts.append(("asked it first" if origin.get("asking") else "said it first") + (f" [{n}]" if n else ""))
            parts.append("later repeated by " + ", ".join(later))
        elif is_echo:
            parts.append("repeated it later" + (f" {marks}" if marks else "")
                         + (f" (first said by {origin['origin_name']})" if origin.get("origin_name") else ""))
        if not is_echo:
            if len(units) > max(len(ns), 1):
                parts.append(f"wrote {len(units)} passages on this" + (f", {len(ns)} cited ({marks})" if ns else ""))
            elif ns and not is_origin:
                parts.append(f"wrote the cited passage{'s' if len(ns) > 1 else ''} {marks}")
            elif units and not is_origin:
                parts.append("wrote a related passage")
        if not origin.get("asking") and any(h.row.get("role") == "question" for h, _ in authored):
            parts.append("asked about it")
        if any(h.row.get("role") == "answer" and h.row.get("accepted") for h, _ in authored):
            parts.append("wrote the accepted answer")
        if any(h.row.get("quoted_from") for _, h, role in items if role == "author"):
            parts.append("quoted in " + ("a cited passage" if any(h.row["chunk_id"] in cited for _, h, _ in items
                                                                   if h.row.get("quoted_from")) else "a reply"))
        if any(role == "profile" for _, _, role in items):
            hits = [e for e in p.expertise if content_terms(e) & qterms]
            parts.append(f"profile lists {', '.join(hits[:3])}" if hits else "profile matches the question")
        return "; ".join(parts)

    @staticmethod
    def _abstain_text(people: list[PersonHit]) -> str:
        msg = "I couldn't find an answer to this in the knowledge base."
        if people:
            names = [p.name + (f" ({p.title})" if p.title else "") for p in people[:3]]
            msg += " The people whose work is closest to it: " + "; ".join(names) + "."
        return msg


class LiveAssistant:
    """An Assistant that follows its index folder: after a rebuild swaps CURRENT, the next question
    is answered from the new version. Questions in flight finish on the version they started with
    (a build keeps the previous version folder), so no request fails during the switch.
    """

    def __init__(self, path: str | Path, settings: Settings | None = None) -> None:
        import threading

        self.path = Path(path)
        self.settings = settings or Settings.load()
        self._lock = threading.Lock()
        self._current: Assistant | None = None
        self._version: str | None = None

    def get(self) -> Assistant:
        """The Assistant for the live version (re-opened only when CURRENT changed)."""
        from .index import current_version

        vdir = current_version(self.path)
        name = vdir.name if vdir else None
        if self._current is None or name != self._version:
            with self._lock:
                if self._current is None or name != self._version:
                    embedder = self._current.index._embedder if self._current else None
                    try:
                        new = Assistant.from_index(self.path, self.settings, embedder=embedder)
                    except ModelMismatchError:  # rebuilt with another model: load that one
                        new = Assistant.from_index(self.path, self.settings)
                    self._current, self._version = new, new.index.vdir.name
        return self._current

    @property
    def version(self) -> str | None:
        """The version folder name of the Assistant last returned by get()."""
        return self._version
