"""Answers with numbered, checked citations and the people to ask: `Assistant.ask(question) -> Answer`.

The stages after retrieval: the answer candidates (the fused top k, the passages nearest in meaning,
the originals of retrieved quotes), abstention, an extractive or generated answer, the origin of an
attribution question's statement, and the people ranked from the same evidence."""
from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Callable

from ..errors import ConfigError, ModelMismatchError
from ..index import Index, backend_for, open_index
from ..indexing.calibration import DEFAULT
from ..models import Person
from ..search import Filters, Hit, Retriever
from ..settings import Settings
from ..text import STOPWORDS, content_terms
from .experts import PeopleRanking
from .extractive import ExtractiveAnswers
from .questions import _ASKING, question_kind, statement_of
from .result import Answer, PersonHit, cited_authors

ANSWER_CLOSEST = 3  # the pool's passages nearest the question (cosine) always among the answer's candidates

AMOUNT = re.compile(r"[$€£¥]\s?\d(?:[\d,.]*\d)?|\b(?:USD|EUR|GBP|CHF)\s?\d(?:[\d,.]*\d)?"
                    r"|\d(?:[\d,.]*\d)?\s?(?:USD|EUR|GBP|CHF)\b|\b\d{1,3}(?:,\d{3})+\b")  # $5,000, EUR 35, 12,000

FOCUS_COSINE = 0.85  # the question without the words the index never mentions, below this cosine to the question:
# those words carry it (all-MiniLM-L6-v2: "sabbatical", "dog" 0.71-0.77; "properly", "supposed", "argued" 0.92-0.99)
MEANING_GAIN = 0.05  # ...unless the closest passages match the whole question this much better than the rest of
# it: then they hold the absent word's meaning under another spelling (a synonym, a typo: "notebook" → the laptop
# page, +0.23; "kuberentes" → the Kubernetes runbook, +0.23; "sabbatical" → the time-off policy, +0.00)


class Assistant(ExtractiveAnswers, PeopleRanking):
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
        return cls(open_index(path or settings.index, settings, embedder=embedder), settings)

    @property
    def embedder(self):
        return self.index.embedder

    @property
    def abstain_threshold(self) -> float:
        """The cosine below which the answer abstains: the setting, or with `auto` the index's own
        calibration (manifest `abstain_calibration`; see indexing/calibration.py), else the default 0.42."""
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
        best = max((h.dense for h in hits if h.dense is not None), default=None)  # the pool's best cosine
        if qvec is not None:
            hits = hits + self._quote_sources(hits, qvec, filters)
            if kind == "attribution":
                hits = hits + self._thread_openings(hits, qvec, filters)
        self._whole_sentences(hits)
        t1 = time.perf_counter()
        qterms = content_terms(query)
        if best is None:  # bm25 mode: abstain only when nothing matched
            abstain = not hits
        else:
            abstain = not hits or best < self.abstain_threshold and not self.states_amount(question, hits[:k])
        abstain = abstain or bool(self.unknown_terms(question, query, qvec, groups=groups, hits=hits))
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
        return self._unit_chunks(want, hits, qvec, filters)

    def _thread_openings(self, hits: list[Hit], qvec, filters: Filters) -> list[Hit]:
        """For "who said X": the opening post (or question) of every thread whose replies were retrieved,
        as answer candidates. A thread's replies discuss what its opening proposed, and each reply's
        context line repeats the thread's title, so the replies can fill the pool and the per-document
        cap while the post that said it first is left out — and with it the origin of the idea."""
        docs = {h.row["doc_id"] for h in hits if h.row.get("role") in ("answer", "comment", "reply", "message")
                and h.row.get("position")}
        first = self.index.store.chunks_at((d, 0) for d in docs) if docs else {}
        want = {r["unit_id"]: d for (d, _), r in first.items() if r.get("unit_id") and not r.get("quoted_from")}
        return self._unit_chunks(want, hits, qvec, filters)

    def _unit_chunks(self, units: dict[str, str], hits: list[Hit], qvec, filters: Filters) -> list[Hit]:
        """The chunks of `units` (unit id -> doc id) not among `hits`, with their cosine to the question:
        only what the question's filters and the asker's groups allow, never a quote."""
        if not units:
            return []
        have = {h.id for h in hits}
        rows = [r for r in self.index.store.chunks_of_units(units, units.values())
                if r["id"] not in have and not r.get("quoted_from")]
        allowed = self.retriever.allowed(filters) if rows else None
        if allowed is not None:
            ok = self.index.store.admits(allowed, [r["id"] for r in rows])
            rows = [r for r in rows if r["id"] in ok]
        if not rows:
            return []
        cos = self.retriever.cosine(qvec, [r["id"] for r in rows])
        return [Hit(r["id"], 0.0, r, dense=cos.get(r["id"])) for r in rows]

    def groups_for(self, person: str) -> list[str]:
        """The groups a person (name, alias, email or handle) belongs to, for access control."""
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
        return [w for w in dict.fromkeys(words)
                if not (first and w == first.group(1)) and w.lower() not in STOPWORDS
                and not self.index.store.mentions(w, groups)]

    @staticmethod
    def states_amount(question: str, hits: list[Hit]) -> bool:
        """Whether a passage states the amount the question asks about ("costs more than $5,000" and
        "Above $5,000: a purchase order in BuyRight with three quotes"): the embedding model reads amounts
        poorly (that question's best cosine is 0.31, the level of off-topic questions), so a passage stating
        the question's amounts verbatim is about it, whatever its cosine."""
        amounts = {re.sub(r"\s", "", a) for a in AMOUNT.findall(question)}
        return bool(amounts) and any(amounts <= {re.sub(r"\s", "", a) for a in AMOUNT.findall(h.row["text"])}
                                     for h in hits)

    def unknown_focus(self, text: str, qvec=None, groups: list[str] | None = None,
                      hits: list[Hit] | None = None) -> list[str]:
        """The words of `text` that appear nowhere in the index (nowhere the asker may see), when they
        carry its meaning: `text` without them has a cosine below FOCUS_COSINE to `text` (`qvec`, its
        embedding). "How many days of sabbatical do employees get after five years?" is closest to the
        vacation policy, which never mentions a sabbatical: without "sabbatical" (cosine 0.77) it is the
        question the index answers, not this one. An incidental word the index lacks ("properly",
        "supposed") leaves the question's meaning where it was (0.92-0.99) and is ignored. So is a word whose
        meaning the closest passages (of `hits`) hold under another spelling — "notebook" for a page on
        laptops, a typo: those passages match the whole question better than its rest (MEANING_GAIN)."""
        words = [w for w in dict.fromkeys(re.findall(r"[^\W_]{3,}", text))
                 if w.lower() not in STOPWORDS and not w.isdigit()]
        absent = [w for w in words if not self.index.store.mentions(w.lower(), groups)]
        if not absent:
            return []
        rest = " ".join(re.sub(r"\b(?:" + "|".join(map(re.escape, absent)) + r")\b", " ", text).split())
        whole = qvec if qvec is not None else self.embedder.embed_batch([text])[0]  # (each alone, as ask embeds)
        rest_vec = self.embedder.embed_batch([rest])[0]
        if float(rest_vec @ whole) >= FOCUS_COSINE:
            return []
        closest = [h.id for h in sorted((h for h in hits or [] if h.dense is not None), key=lambda h: -h.dense)[:3]]
        if closest:
            with_word, without = self.retriever.cosine(whole, closest), self.retriever.cosine(rest_vec, closest)
            if any(with_word[i] - without.get(i, with_word[i]) >= MEANING_GAIN for i in with_word):
                return []
        return absent

    def unknown_terms(self, question: str, query: str | None = None, qvec=None,
                      groups: list[str] | None = None, hits: list[Hit] | None = None) -> list[str]:
        """What the question asks about that the index never mentions, so it abstains however close its
        passages are: capitalised names (unknown_names), and words that carry the question (unknown_focus;
        `query` is what was searched and embedded as `qvec`: an attribution question's statement)."""
        return self.unknown_names(question, groups) or self.unknown_focus(query or question, qvec, groups, hits)

    def find_people(self, question: str, mode: str | None = None, **filters) -> list[PersonHit]:
        """Who knows about this: people ranked from the evidence retrieved for the question."""
        return self.ask(question, mode=mode, **filters).people

    def as_retriever(self, k: int = 8, mode: str = "hybrid", **filters):
        """This index's hybrid retriever as a LangChain BaseRetriever (see integrations/langchain.py)."""
        from ..integrations.langchain import AskColleagueRetriever  # (LangChain loads only for those who use it)

        return AskColleagueRetriever(assistant=self, k=k, mode=mode, filters=filters)

    # -- generated answer ------------------------------------------------------------------
    def _use_llm(self, llm: bool | None) -> bool:
        return llm is not False and bool(self.settings.llm_base_url)

    def _llm_answer(self, question, qterms, qvec, hits: list[Hit], mode: str, on_token,
                    groups: list[str] | None = None) -> Answer:
        """Generate with the LLM, check every [n]; fall back to the extractive answer with the reason."""
        from .llm import generate  # (the HTTP client loads only when an LLM is configured)

        passages = [dict(h.row, authors=cited_authors(self.index.store, h.row, self.index.store.links_for([h.id]), groups))
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
        self.backend = backend_for(path)
        self.path = self.backend.location(path)
        self.settings = settings or Settings.load()
        self._lock = threading.Lock()
        self._current: Assistant | None = None
        self._version: str | None = None

    def get(self) -> Assistant:
        """The Assistant for the live version (re-opened only when CURRENT changed)."""
        name = self.backend.live_name(self.path)
        if self._current is None or name != self._version:
            with self._lock:
                if self._current is None or name != self._version:
                    embedder = self._current.index._embedder if self._current else None
                    try:
                        new = Assistant.from_index(self.path, self.settings, embedder=embedder)
                    except ModelMismatchError:  # rebuilt with another model: load that one
                        new = Assistant.from_index(self.path, self.settings)
                    self._current, self._version = new, new.index.version
        return self._current

    @property
    def version(self) -> str | None:
        """The version folder name of the Assistant last returned by get()."""
        return self._version
