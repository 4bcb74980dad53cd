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
from .models import Person
from .retrieval import STOPWORDS, Filters, Hit, Retriever
from .store import visible_sql
from .settings import Settings

MAX_SENTENCES = 4
SENTENCE_POOL = 12  # sentences embedded per answer (after a cheap lexical pre-selection)


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

    def to_dict(self) -> dict:
        return asdict(self)

    def render(self, i: int | None = None) -> str:
        role = " · ".join(x for x in (self.title, self.team) if x)
        head = f"{str(i) + '. ' if i else ''}{self.name}{' — ' + role if role else ''}  ({self.score:.2f})"
        lines = [head, f"    {self.url or ''}"]
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


def sentences(text: str) -> list[str]:
    """Split a passage into sentences (and lines); drop fragments without a word."""
    # a single line break inside a paragraph is a hard wrap, not a sentence end
    text = re.sub(r"(?<![.!?:\n])\n(?![ \t]*(?:[-•*]|\d+[.)])\s|[ \t]*\n)", " ", text)
    parts = [s.strip(" \t-•*") for s in _SENT.split(text)]
    return [p for p in parts if re.search(r"[A-Za-z]{2}", p)]


def answerable_sentence(s: str) -> bool:
    """A sentence that can state a fact: not a heading, a fragment, a question, a lead-in to a list
    (ending in ':') or a run-on list."""
    words = s.split()
    end = s.rstrip()[-1:]
    return 4 <= len(words) <= 80 and end not in ("?", ":") and not s.isupper()


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


def _in_context(row: dict, sentence: str) -> str:
    head = row["title"] + (f" — {row['section']}" if row.get("section") else "")
    return f"{head}: {sentence}"


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

        def embed_question():  # called by the retriever while its BM25 run goes on in parallel
            made.append(self.embedder.embed_batch([question])[0])
            return made[0]

        depth = max(self.settings.people_depth, k * 5)
        pool = self.retriever.search(question, k=None, mode=mode, filters=filters, depth=depth,
                                     qvec=embed_question if mode != "bm25" else None)
        qvec = made[0] if made else None
        hits = pool[:k]
        if qvec is not None:
            cos = self.retriever.cosine(qvec, [h.id for h in pool])
            for h in pool:
                h.dense = cos.get(h.id, h.dense)
        t1 = time.perf_counter()
        best = max((h.dense for h in hits if h.dense is not None), default=None)
        qterms = content_terms(question)
        if best is None:  # bm25 mode: abstain only when nothing matched
            abstain = not hits
        else:
            abstain = not hits or best < self.settings.abstain_threshold
        abstain = abstain or bool(self.unknown_names(question, groups=groups))
        if abstain:
            answer = Answer(question, "", True, "extractive", None, [], [], [], {},
                            retrieval_mode=mode)
        elif self._use_llm(llm):
            answer = self._llm_answer(question, qterms, qvec, hits, mode, on_token, groups)
        else:
            answer = self._extractive(question, qterms, qvec, hits, mode, groups)
        t2 = time.perf_counter()
        answer.people = self.rank_people(pool, answer.citations, qvec, groups=groups)
        t3 = time.perf_counter()
        if abstain:
            answer.answer = self._abstain_text(answer.people)
        answer.timings_ms = {"retrieve": (t1 - t0) * 1e3, "answer": (t2 - t1) * 1e3,
                             "people": (t3 - t2) * 1e3, "total": (t3 - t0) * 1e3}
        return answer

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
        ans.unsupported_sentences = res.unsupported
        return ans

    # -- extractive answer -----------------------------------------------------------------
    def _extractive(self, question: str, qterms: set[str], qvec, hits: list[Hit], mode: str,
                    groups: list[str] | None = None) -> Answer:
        cands: list[tuple[int, str]] = []  # (hit index, sentence)
        for hi, h in enumerate(hits):
            sents = sentences(h.row["text"])
            if sents and not re.search(r"[.!?:;)\"'’”]\s*$", h.row["text"]):
                sents = sents[:-1]  # the chunk was cut mid-sentence; its overlap carries the rest
            for s in sents:
                if answerable_sentence(s):
                    cands.append((hi, s))
        if not cands:
            return Answer(question, "", True, "extractive", None, [], [], [], {}, retrieval_mode=mode)
        # Stage 1 (cheap): lexical overlap and passage rank keep the most promising sentences, plus
        # the opening sentences of the best passage; only these are embedded (the model is the cost).
        lex = [lexical_overlap(qterms, s) for _, s in cands]
        pre = sorted(range(len(cands)), key=lambda ci: -(0.6 * lex[ci] + 0.4 / (1.0 + 0.5 * cands[ci][0])))
        keep = sorted(set(pre[:SENTENCE_POOL]) | {ci for ci, (hi, _) in enumerate(cands) if hi == 0 and ci < 3})
        cands = [cands[ci] for ci in keep]
        lex = [lex[ci] for ci in keep]
        # Stage 2: each kept sentence embedded with its passage's title and section (what it is about)
        svecs = None
        if qvec is not None:
            svecs = self.embedder.embed_batch([_in_context(hits[hi].row, s) for hi, s in cands])
        scored = []
        for ci, (hi, s) in enumerate(cands):
            sim = float(svecs[ci] @ qvec) if svecs is not None else 0.0
            passage = 1.0 / (1.0 + 0.5 * hi)  # the retriever's ranking of the passage
            score = 0.55 * sim + 0.25 * lex[ci] + 0.20 * passage
            if hits[hi].row.get("quoted_from"):
                score -= 0.05  # prefer the original message to a quote of it
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
            chosen.append(ci)
        # keep passage order, then sentence order within a passage, for readability
        chosen.sort()
        return self._compose(question, hits, [(cands[ci][0], cands[ci][1]) for ci in chosen], mode, groups=groups)

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
                        highlights=highlights)

    # -- people ----------------------------------------------------------------------------
    def rank_people(self, pool: list[Hit], citations: list[Citation], qvec, limit: int = 5,
                    groups: list[str] | None = None) -> list[PersonHit]:
        """Balog et al. 2006 Model 2: score(p) = Σ_d rel(d) · w(p, d), over the retrieved pool.

        rel(d) ≈ p(q|d): a softmax-like weight of the chunk's cosine similarity to the question,
        exp((cos - cos_best) / 0.05), so passages far less relevant than the best add little (in bm25
        mode, the fused score normalised to the best). w(p, d) is 1/#authors for an author (half
        for words quoted from them in someone else's message) and 0.7 for a profile's own chunk;
        optional recency decay (ASKCOLLEAGUE_PEOPLE_HALF_LIFE_DAYS). With access control (`groups`),
        a card's title, team, link and email come from the profile only when the asker may see the
        profile; otherwise only the name and email the visible evidence carries (see as_seen).
        """
        if not pool:
            return []
        cited = {c.chunk_id: c.n for c in citations}
        links = self.index.store.links_for([h.id for h in pool])
        top = pool[0].score
        best_cos = max((h.dense for h in pool if h.dense is not None), default=None)
        half_life = float(self.settings.people_half_life_days or 0)
        today = time.time() / 86400.0
        scores: dict[str, float] = {}
        evidence: dict[str, list[tuple[float, Hit]]] = {}
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
            if h.row.get("quoted_from"):
                rel *= 0.5
            for pid, role, w in links.get(h.id, []):
                weight = w if role == "author" else 0.7 if role == "profile" else 0.0
                if weight <= 0:
                    continue
                scores[pid] = scores.get(pid, 0.0) + rel * weight
                evidence.setdefault(pid, []).append((rel * weight, h))
        ranked = sorted(scores.items(), key=lambda kv: -kv[1])[:limit]
        if not ranked:
            return []
        best = ranked[0][1]
        shown = self.index.store.visible_profiles([pid for pid, _ in ranked], groups)
        out = []
        for pid, s in ranked:
            if s < best * 0.15:
                break
            p = self._people.get(pid) or self.index.store.person(pid)
            if p is None:
                continue
            if pid not in shown:
                p = as_seen(p, [h.row for _, h in evidence[pid]])
            ev = []
            seen_docs = set()
            for _, h in sorted(evidence[pid], key=lambda t: -t[0]):
                if h.row["doc_id"] in seen_docs or len(ev) >= 3:
                    continue
                seen_docs.add(h.row["doc_id"])
                ev.append({"chunk_id": h.row["chunk_id"], "n": cited.get(h.row["chunk_id"]),
                           "title": h.row["title"], "url": h.row["url"], "source_type": h.row["source_type"]})
            out.append(PersonHit(person_id=p.person_id, name=p.name, email=p.email, url=p.link(), title=p.title,
                                 team=p.team, score=round(s, 4), evidence=ev, has_profile=p.has_profile))
        return out

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
