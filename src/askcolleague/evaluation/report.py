"""Evaluation: gold question suites, retrieval / people / answer metrics, reports, calibration, BEIR.

    from askcolleague.answer import Assistant
    from askcolleague.evaluation import load_suite, evaluate

    suite = load_suite("eval/demo.yaml")
    report = evaluate(Assistant.from_index("indexes/default"), suite)
    print(report.table())
    report.write("eval/reports/today")   # json, md, html, png plots, TREC runs + qrels, .meta.json

Ranking metrics (documents, chunks, people) are computed with ranx (trec_eval definitions):

- Recall@k: fraction of a question's gold items in the top k; MRR@10: 1/rank of the first gold item
  (0 beyond 10); nDCG@10: binary gains, log2 discount; P@1: the top item is gold; success@10 (ranx
  ``hit_rate@10``): any gold item in the top 10.
- Documents: the retrieval run's doc_ids, deduplicated in rank order (a document ranks where its
  best chunk ranks); relevant = the question's gold ``docs``. Chunks: only for questions that list
  gold ``chunks``. People: the answer's ranked people against the gold ``people`` (names compared
  case- and accent-insensitively, see ``people.normalize_name``).

Answer metrics (see `SupportJudge` for the support rule, shared with the LLM answer checker):

- citation recall (ALCE, Gao et al. 2023): the fraction of an answer's claim sentences that are
  supported by the passages they cite (a claim citing nothing counts as unsupported);
- citation precision (ALCE): a citation is irrelevant when it does not support its sentence on its
  own *and* the sentence's other citations support it without it; precision = relevant / citations;
- fact coverage: the fraction of gold facts found (case-insensitive, whitespace-normalised) in the
  answer text; ``fact_coverage_cited``: in the answer text or the passages it cites;
- abstention precision / recall / F1, abstained = positive, unanswerable = true.

Attribution metrics ("who said / wrote / proposed X", questions of type ``attribution``; see
`attribution_result`):

- ``attribution.p@1``: the answer's top person is the expected author (the question's ``people[0]``);
- ``attribution.origin_accuracy`` (questions with ``origin``): the top person is the origin of the
  idea *and*, when the answer cites anything, the first citation's authors include the origin;
- ``attribution.people_agree``: over answered (not abstained) attribution questions, the top person
  is an author of a cited passage; ``people.agree_with_citations``: the same over every answered
  question of the suite.

All are averaged over questions (macro). Latency p50/p95 per stage comes from ``Answer.timings_ms``.
LLM-judged RAGAS faithfulness / answer relevancy are not computed (see `Report.notes`).
"""
from __future__ import annotations

import base64
import datetime as _dt
import difflib
import hashlib
import html
import json
import platform
import re
import subprocess
import sys
import tempfile
import time
import unicodedata
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from .errors import ConfigError

MODES = ("bm25", "dense", "hybrid")
TYPES = ("answerable", "multi", "people", "attribution", "unanswerable")
DEPTH = 100
QUESTION_KEYS = ("id", "question", "type", "docs", "people", "facts", "chunks", "origin", "echoes", "notes")
SUITE_KEYS = ("version", "description", "questions", "name")

DOC_METRICS = ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10", "hit_rate@10")
PEOPLE_METRICS = ("precision@1", "recall@3", "mrr")
ATTRIBUTION_METRICS = ("attribution.p@1", "attribution.origin_accuracy", "attribution.people_agree")
BEIR_METRICS = ("ndcg@10", "recall@100", "recall@10", "mrr@10")
# Published nDCG@10 on BEIR SciFact (Thakur et al. 2021 for BM25; sentence-transformers for MiniLM).
PUBLISHED = {"scifact": {"bm25": {"ndcg@10": 0.665}, "dense": {"ndcg@10": 0.645}}}
PUBLISHED_SOURCES = {"bm25": "BM25 (Elasticsearch), BEIR paper", "dense": "all-MiniLM-L6-v2, sentence-transformers"}

# display names for the metric keys
LABELS = {
    "doc.recall@1": "Recall@1 (docs)", "doc.recall@5": "Recall@5 (docs)", "doc.recall@10": "Recall@10 (docs)",
    "doc.mrr@10": "MRR@10 (docs)", "doc.ndcg@10": "nDCG@10 (docs)", "doc.hit_rate@10": "Success@10 (docs)",
    "doc.recall@100": "Recall@100 (docs)",
    "people.precision@1": "P@1 (people)", "people.recall@3": "Recall@3 (people)", "people.mrr": "MRR (people)",
    "people.agree_with_citations": "People agree with citations (all answered)",
    "attribution.p@1": "P@1 (attribution)", "attribution.origin_accuracy": "Origin accuracy (attribution)",
    "attribution.people_agree": "People agree with citations (attribution)",
    "answer.citation_recall": "Citation recall", "answer.citation_precision": "Citation precision",
    "answer.fact_coverage": "Fact coverage (answer)", "answer.fact_coverage_cited": "Fact coverage (answer+cited)",
    "abstain.precision": "Abstention precision", "abstain.recall": "Abstention recall", "abstain.f1": "Abstention F1",
}


# ==========================================================================================
# suite

@dataclass
class Question:
    id: str
    question: str
    type: str
    docs: list[str] = field(default_factory=list)
    people: list[str] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)
    chunks: list[str] = field(default_factory=list)  # optional gold chunk ids (chunk level metrics)
    origin: str | None = None  # attribution: whom the idea comes from (then also people[0])
    echoes: list[str] = field(default_factory=list)  # attribution: people who repeated the idea later

    @property
    def answerable(self) -> bool:
        return self.type != "unanswerable"

    @property
    def expected_author(self) -> str | None:
        """Attribution questions: the person who said / wrote / proposed it (``people[0]``)."""
        return self.people[0] if self.type == "attribution" and self.people else None


@dataclass
class Suite:
    questions: list[Question]
    version: int = 1
    description: str = ""
    path: str | None = None
    sha256: str | None = None

    def of_type(self, *types: str) -> list[Question]:
        return [q for q in self.questions if q.type in types]

    def counts(self) -> dict[str, int]:
        return {t: len(self.of_type(t)) for t in TYPES}


class SuiteError(ConfigError):
    """A gold suite file that cannot be used; the message names the question and the fix."""


def _strings(value: Any, where: str, key: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        raise SuiteError(f"{where}: `{key}` must be a list; write {key}: [{value!r}]")
    if not isinstance(value, list):
        raise SuiteError(f"{where}: `{key}` must be a list of strings, not {type(value).__name__}")
    out = []
    for v in value:
        if not isinstance(v, (str, int, float)) or isinstance(v, bool) or str(v).strip() == "":
            raise SuiteError(f"{where}: `{key}` has an empty or non-text entry ({v!r}); quote it or remove it")
        out.append(str(v).strip())
    dup = [v for v in dict.fromkeys(out) if out.count(v) > 1]
    if dup:
        raise SuiteError(f"{where}: `{key}` lists {dup[0]!r} twice; remove the duplicate")
    return out


def parse_suite(data: Any, path: str = "<suite>") -> Suite:
    """Validate a suite already parsed from YAML/JSON (see `load_suite`)."""
    if not isinstance(data, dict):
        raise SuiteError(f"{path}: expected a mapping with `version` and `questions:`; see eval/README.md")
    for k in data:
        if k not in SUITE_KEYS:
            hint = difflib.get_close_matches(str(k), SUITE_KEYS, 1)
            raise SuiteError(f"{path}: unknown top-level key {k!r}"
                             + (f"; did you mean {hint[0]!r}?" if hint else f"; use {', '.join(SUITE_KEYS)}"))
    version = data.get("version", 1)
    if version != 1:
        raise SuiteError(f"{path}: suite version {version!r} is not supported; write `version: 1`")
    qs = data.get("questions")
    if not isinstance(qs, list) or not qs:
        raise SuiteError(f"{path}: no `questions:` list; add at least one question (see eval/README.md)")
    out: list[Question] = []
    seen: set[str] = set()
    for n, q in enumerate(qs, 1):
        if not isinstance(q, dict):
            raise SuiteError(f"{path}: question #{n} is not a mapping; write `- id: ...` with question, type, docs")
        qid = q.get("id")
        if qid is None or str(qid).strip() == "":
            raise SuiteError(f"{path}: question #{n} has no `id`; give it a unique id such as q{n:03d}")
        qid = str(qid).strip()
        where = f"{path}: question {qid}"
        if qid in seen:
            raise SuiteError(f"{where}: duplicate id; give each question its own id")
        seen.add(qid)
        for k in q:
            if k not in QUESTION_KEYS:
                hint = difflib.get_close_matches(str(k), QUESTION_KEYS, 1)
                raise SuiteError(f"{where}: unknown key {k!r}"
                                 + (f"; did you mean {hint[0]!r}?" if hint else f"; use {', '.join(QUESTION_KEYS)}"))
        text = q.get("question")
        if not isinstance(text, str) or not text.strip():
            raise SuiteError(f"{where}: `question` is missing or empty; write the question text")
        typ = q.get("type")
        if typ not in TYPES:
            raise SuiteError(f"{where}: type {typ!r} is not one of {', '.join(TYPES)}; fix `type:`")
        docs, people, facts, chunks, echoes = (_strings(q.get(k), where, k)
                                               for k in ("docs", "people", "facts", "chunks", "echoes"))
        origin = q.get("origin")
        if origin is not None and (not isinstance(origin, str) or not origin.strip()):
            raise SuiteError(f"{where}: `origin` must be one name (whom the idea comes from), not {origin!r}")
        origin = origin.strip() if origin else None
        if typ != "attribution" and (origin or echoes):
            raise SuiteError(f"{where}: `{'origin' if origin else 'echoes'}` is only for attribution questions; "
                             "remove it or write type: attribution")
        if typ == "attribution":
            if not people:
                raise SuiteError(f"{where}: an attribution question needs the expected author as people[0]; "
                                 "add people: [\"Name\"]")
            first = _person_key(people[0])
            if origin and _person_key(origin) != first:
                raise SuiteError(f"{where}: `origin` {origin!r} must also be the expected author, people[0] "
                                 f"(now {people[0]!r}); list the origin first in people")
            if any(_person_key(e) == first for e in echoes):
                raise SuiteError(f"{where}: {people[0]!r} is both the expected author (people[0]) and in `echoes`; "
                                 "an echo repeats someone else's idea: remove it from one of them")
        if typ == "unanswerable":
            for k, v in (("docs", docs), ("people", people), ("facts", facts), ("chunks", chunks)):
                if v:
                    raise SuiteError(f"{where}: an unanswerable question lists `{k}`; empty it or change the type")
        elif typ == "multi" and len(docs) < 2:
            raise SuiteError(f"{where}: a multi question needs at least two `docs` (one per source it combines); "
                             "add them or make it type: answerable")
        elif typ == "people" and not people:
            raise SuiteError(f"{where}: a people question needs at least one name in `people`; add the expert(s)")
        elif not docs and not chunks:
            raise SuiteError(f"{where}: a {typ} question lists no gold `docs`; add the doc id(s) that answer it "
                             "(source keys relative to ingest/, e.g. demo/it/laptop-requests.md)")
        out.append(Question(qid, text.strip(), typ, docs, people, facts, chunks, origin, echoes))
    return Suite(out, int(version), str(data.get("description") or "").strip(), path)


def load_suite(path: str | Path) -> Suite:
    """Read and validate a gold suite (YAML or JSON). Raises SuiteError with one actionable line."""
    import yaml

    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise SuiteError(f"{p}: cannot read the suite ({e.strerror}); check the path (default eval/demo.yaml)") from None
    from . import safeyaml

    try:
        data = safeyaml.load(raw.decode("utf-8"), f"{p}")
    except safeyaml.YamlRefused as e:
        raise SuiteError(str(e)) from None
    except (UnicodeDecodeError, yaml.YAMLError) as e:
        first = " ".join(str(e).split())[:200]
        raise SuiteError(f"{p}: not valid YAML ({first}); fix the syntax") from None
    suite = parse_suite(data, str(p))
    suite.sha256 = hashlib.sha256(raw).hexdigest()
    return suite


def suite_warnings(suite: Suite, doc_ids: Iterable[str], people: Iterable[str] = ()) -> list[str]:
    """Gold docs / people the index does not have (the question can never score on them)."""
    have = set(doc_ids)
    names = {_person_key(n) for n in people}
    out = []
    for q in suite.questions:
        for d in q.docs:
            if d not in have:
                close = difflib.get_close_matches(d, list(have), 1)
                out.append(f"{q.id}: gold doc {d!r} is not in the index"
                           + (f" (did you mean {close[0]!r}?)" if close else ""))
        if names:
            for p in dict.fromkeys([*q.people, *([q.origin] if q.origin else []), *q.echoes]):
                if _person_key(p) not in names:
                    out.append(f"{q.id}: gold person {p!r} is not in the index")
    return out


# ==========================================================================================
# metrics (ranx)

def _ranx_eval(qrels: dict[str, dict[str, int]], run: dict[str, list[str]], metrics: Iterable[str]
               ) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """ranx over qrels {qid: {id: rel}} and a ranked run {qid: [ids best first]}.

    Returns (mean per metric, per question per metric). Queries without relevant items are left
    out; a query missing from the run (or with no results) scores 0. Scores given to ranx are the
    rank order (n, n-1, ...), so ties are impossible and ranx ranks exactly as we did.
    """
    from ranx import Qrels, Run, evaluate as ranx_evaluate

    metrics = list(metrics)
    q = {qid: {d: int(r) for d, r in rel.items() if r > 0} for qid, rel in qrels.items()}
    q = {qid: rel for qid, rel in q.items() if rel}
    if not q:
        return {}, {}
    r: dict[str, dict[str, float]] = {}
    for qid in q:
        ranked = list(dict.fromkeys(run.get(qid) or []))
        r[qid] = {d: float(len(ranked) - i) for i, d in enumerate(ranked)} or {"__no_result__": 0.0}
    run_obj = Run(r)  # exactly the qrels' queries, so no make_comparable is needed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba type-safety chatter
        ranx_evaluate(Qrels(q), run_obj, metrics, return_mean=False, save_results_in_run=True)
    per_q = {qid: {m: float(run_obj.scores[m][qid]) for m in metrics} for qid in q}
    mean = {m: float(np.mean([per_q[qid][m] for qid in per_q])) for m in metrics}
    return mean, per_q


def ranking_metrics(qrels: dict[str, Iterable[str] | dict[str, int]], run: dict[str, list[str]],
                    metrics: Iterable[str] = DOC_METRICS) -> dict[str, float]:
    """Mean ranx metrics of a ranked run against gold sets (or graded qrels). See `_ranx_eval`."""
    q = {qid: (dict(rel) if isinstance(rel, dict) else {d: 1 for d in rel}) for qid, rel in qrels.items()}
    return _ranx_eval(q, run, metrics)[0]


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def abstention_metrics(pairs: Iterable[tuple[bool, bool]]) -> dict[str, float]:
    """Precision/recall/F1 of abstaining, from (abstained, unanswerable) pairs; abstained = positive."""
    tp = fp = fn = 0
    for abstained, unanswerable in pairs:
        tp += abstained and unanswerable
        fp += abstained and not unanswerable
        fn += (not abstained) and unanswerable
    p, r, f = _prf(tp, fp, fn)
    return {"abstain.precision": p, "abstain.recall": r, "abstain.f1": f}


def _person_ref(p: Any) -> tuple[str, str]:
    """(normalised name, lower-case email) of a name string or a {name, email} mapping / object."""
    if isinstance(p, str):
        return _person_key(p), ""
    get = p.get if isinstance(p, dict) else (lambda k, d=None: getattr(p, k, d))
    return _person_key(str(get("name") or "")), str(get("email") or "").strip().lower()


def same_person(a: Any, b: Any) -> bool:
    """Two people refs (names, or {name, email}) are one person: same email, or same normalised name."""
    (na, ea), (nb, eb) = _person_ref(a), _person_ref(b)
    return bool((ea and ea == eb) or (na and na == nb))


def answer_view(ans: Any) -> dict:
    """What the attribution metrics read of an answer (an `Answer` or its ``to_dict()``):
    {abstained, people: [{name, email}] best first, citations: [{n, doc_id, authors: [{name, email}]}] by n}."""
    d = ans if isinstance(ans, dict) else ans.to_dict()
    people = [{"name": p.get("name"), "email": p.get("email")} for p in d.get("people") or []]
    cites = sorted(d.get("citations") or [], key=lambda c: c.get("n") or 0)
    return {"abstained": bool(d.get("abstained")), "people": people,
            "citations": [{"n": c.get("n"), "doc_id": c.get("doc_id"),
                           "authors": [{"name": a.get("name"), "email": a.get("email")} for a in c.get("authors") or []]}
                          for c in cites]}


def attribution_result(q: Question, view: dict) -> dict:
    """How one answer does on the attribution metrics (see `attribution_metrics`); `view`: `answer_view`.

    - ``p1`` (attribution questions): the top person is the expected author, ``q.people[0]``;
    - ``origin`` (questions with ``q.origin``): the top person is the origin, and when the answer cites
      anything, the first citation ([1]) has the origin among its authors;
    - ``agree`` (every question answered without abstaining): the top person is an author of one of
      the cited passages (an answer without people or citations disagrees).
    None where a metric does not apply. Also reports ``top``, ``top_is_echo`` and ``cited_authors``.
    """
    top = view["people"][0] if view["people"] else None
    cites = view["citations"]
    authors = [a for c in cites for a in c["authors"]]
    out: dict[str, Any] = {
        "top": top["name"] if top else None,
        "cited_authors": list(dict.fromkeys(a["name"] for a in authors if a.get("name"))),
        "p1": None, "origin": None, "agree": None, "top_is_echo": False,
    }
    if not view["abstained"]:
        out["agree"] = bool(top) and any(same_person(top, a) for a in authors)
    if q.type == "attribution" and q.people:
        out["p1"] = bool(top) and same_person(top, q.people[0])
        out["top_is_echo"] = bool(top) and any(same_person(top, e) for e in q.echoes)
        if q.origin:
            first_ok = not cites or any(same_person(q.origin, a) for a in cites[0]["authors"])
            out["origin"] = bool(top) and same_person(top, q.origin) and first_ok
            out["first_citation_authors"] = [a["name"] for a in cites[0]["authors"]] if cites else []
    return out


def attribution_metrics(results: Iterable[tuple[Question, dict]]) -> dict[str, float]:
    """Mean attribution metrics over (question, `attribution_result`) pairs; a metric is left out when
    no question qualifies (``attribution.*`` over attribution questions, ``people.agree_with_citations``
    over every answered question)."""
    p1, origin, agree, agree_all = [], [], [], []
    for q, r in results:
        if r.get("agree") is not None:
            agree_all.append(r["agree"])
        if q.type != "attribution":
            continue
        if r.get("p1") is not None:
            p1.append(r["p1"])
        if r.get("origin") is not None:
            origin.append(r["origin"])
        if r.get("agree") is not None:
            agree.append(r["agree"])
    out: dict[str, float] = {}
    for name, vals in (("attribution.p@1", p1), ("attribution.origin_accuracy", origin),
                       ("attribution.people_agree", agree), ("people.agree_with_citations", agree_all)):
        if vals:
            out[name] = float(np.mean(vals))
    return out


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    a = np.asarray(values, dtype=float)
    return {"p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)),
            "mean": float(a.mean()), "n": int(a.size)}


# ==========================================================================================
# text matching

def _norm(text: str) -> str:
    """Facts match case-insensitively, whitespace-normalised (NFC, ’ → ', no markdown emphasis)."""
    text = unicodedata.normalize("NFC", text).replace("\u2019", "'").replace("\u00a0", " ")
    text = text.replace("**", "").replace("`", "")
    return " ".join(text.casefold().split())


def fact_hits(facts: list[str], text: str) -> list[bool]:
    t = _norm(text)
    return [_norm(f) in t for f in facts]


def _person_key(name: str) -> str:
    from .people import normalize_name

    return normalize_name(name)


# ==========================================================================================
# citation support (ALCE citation recall / precision without an NLI model)

def _checker_rule():
    """The LLM checker's support thresholds and number rule (askcolleague.llm), or the same defaults."""
    try:
        from . import llm
    except Exception:  # noqa: BLE001 - llm is optional; the rule below is the same
        llm = None
    strong = getattr(llm, "COS_STRONG", 0.60)
    weak = getattr(llm, "COS_WEAK", 0.45)
    lex = getattr(llm, "LEX_MIN", 0.5)
    nums = getattr(llm, "_nums", None) or (lambda s: {n.replace(",", "") for n in re.findall(r"\d+(?:[.,]\d+)*", s)})
    no_claim = getattr(llm, "_no_claim", None)
    return strong, weak, lex, nums, no_claim


_MARKS = re.compile(r"(?:[ \t]*\[\s*(?:passages?|sources?)?\s*\d+(?:\s*(?:[,;]|[-–]|and)\s*\d+)*\s*\])+", re.I)


def _marker_numbers(s: str) -> list[int]:
    out: list[int] = []
    for a, b in re.findall(r"(\d+)(?:\s*[-–]\s*(\d+))?", s):
        lo, hi = int(a), int(b or a)
        out += list(range(lo, hi + 1)) if 0 <= hi - lo <= 20 else [lo, hi]
    return list(dict.fromkeys(out))


def split_claims(text: str) -> list[tuple[str, list[int]]]:
    """(sentence, cited numbers) pairs of an answer with [n] markers.

    A run of markers cites the sentence right before it (the last sentence of the text since the
    previous run); earlier sentences of that stretch, and sentences after the last run, cite nothing.
    """
    from .answer import sentences

    out: list[tuple[str, list[int]]] = []
    pos = 0
    for m in _MARKS.finditer(text):
        seg, pos = text[pos:m.start()], m.end()
        nums = _marker_numbers(m.group(0))
        sents = sentences(seg)
        if not sents:
            if out:  # "[1] [2]" split by something that is not a sentence: same claim
                out[-1] = (out[-1][0], list(dict.fromkeys(out[-1][1] + nums)))
            continue
        out += [(s, []) for s in sents[:-1]]
        out.append((sents[-1], nums))
    out += [(s, []) for s in sentences(text[pos:])]
    return out


class SupportJudge:
    """Is a sentence supported by a set of passages? The LLM checker's rule (`llm.check`), for sets.

    supported(s, P) ⇔ every number in s occurs in the texts (or headers: title, section, date) of P,
    and with c = the best cosine (the index's embedding model) between s and any sentence, or two
    adjacent sentences, of a passage in P: c ≥ COS_STRONG (0.60), or c ≥ COS_WEAK (0.45) and at least
    LEX_MIN (half) of s's content terms occur in P. With no offline NLI model this stands in for the
    entailment judgement of ALCE; for one passage it is exactly the check applied to LLM answers.
    """

    def __init__(self, embedder) -> None:
        self.embedder = embedder
        self.strong, self.weak, self.lex_min, self._nums, self._no_claim = _checker_rule()
        self._vec: dict[str, np.ndarray] = {}
        self._windows: dict[str, list[str]] = {}

    def vectors(self, texts: list[str]) -> np.ndarray:
        todo = [t for t in dict.fromkeys(texts) if t not in self._vec]
        for i in range(0, len(todo), 256):
            part = todo[i:i + 256]
            for t, v in zip(part, self.embedder.embed_batch(part)):
                self._vec[t] = v
        return np.stack([self._vec[t] for t in texts]) if texts else np.zeros((0, 1), dtype=np.float32)

    def windows(self, passage: str) -> list[str]:
        from .answer import sentences

        w = self._windows.get(passage)
        if w is None:
            ps = sentences(passage) or [passage]
            w = self._windows[passage] = ps + [f"{a} {b}" for a, b in zip(ps, ps[1:])]
        return w

    def is_claim(self, sentence: str) -> bool:
        from .answer import content_terms

        if self._no_claim is not None:
            return not self._no_claim(sentence)
        return len(content_terms(sentence)) > 1

    def supported(self, sentence: str, passages: list[tuple[str, str]]) -> bool:
        """`passages`: (text, header) pairs."""
        from .answer import content_terms, lexical_overlap

        if not passages:
            return False
        src = " ".join(f"{t} {h}" for t, h in passages)
        if not self._nums(sentence) <= self._nums(src):
            return False
        wins = [w for t, _ in passages for w in self.windows(t)]
        v = self.vectors([sentence] + wins)
        cos = float(np.max(v[1:] @ v[0]))
        return cos >= self.strong or (cos >= self.weak and lexical_overlap(content_terms(sentence), src) >= self.lex_min)

    def judge(self, answer_text: str, cited: dict[int, tuple[str, str]]) -> dict:
        """ALCE citation recall and precision of one answer; `cited`: {n: (passage text, header)}.

        Returns {claims, supported, citations, relevant, recall, precision, unsupported: [sentences],
        irrelevant: [(sentence, n)]}; recall/precision are None when there is nothing to judge.
        """
        claims = [(s, [n for n in ns if n in cited]) for s, ns in split_claims(answer_text)]
        claims = [(s, ns) for s, ns in claims if ns or self.is_claim(s)]
        n_sup = n_cites = n_rel = 0
        unsupported, irrelevant = [], []
        for s, ns in claims:
            joint = self.supported(s, [cited[n] for n in ns])
            n_sup += joint
            if not joint:
                unsupported.append(s)
            n_cites += len(ns)
            if joint and len(ns) > 1:
                for n in ns:
                    if self.supported(s, [cited[n]]) or not self.supported(s, [cited[m] for m in ns if m != n]):
                        n_rel += 1
                    else:
                        irrelevant.append((s, n))
            elif joint:
                n_rel += 1
            else:
                irrelevant += [(s, n) for n in ns]
        return {"claims": len(claims), "supported": n_sup, "citations": n_cites, "relevant": n_rel,
                "recall": n_sup / len(claims) if claims else None,
                "precision": n_rel / n_cites if n_cites else None,
                "unsupported": unsupported, "irrelevant": irrelevant}


# ==========================================================================================
# calibration

@dataclass
class Calibration:
    """The abstain threshold that maximises abstention F1 on a suite (see `calibrate_abstention`)."""

    mode: str
    threshold: float
    f1: float
    precision: float
    recall: float
    interval: tuple[float, float]  # every threshold t with lo < t <= hi gives the same F1
    scores: list[dict]  # {id, type, best_cosine, forced}
    current: float | None = None  # the threshold in the settings
    current_f1: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        s = (f"abstain_threshold = {self.threshold:.2f} ({self.mode}): abstention F1 {self.f1:.3f} "
             f"(P {self.precision:.3f}, R {self.recall:.3f}); any value in "
             f"({self.interval[0]:.4f}, {self.interval[1]:.4f}] gives the same")
        if self.current is not None:
            s += f"; current setting {self.current:.2f} gives F1 {self.current_f1:.3f}"
        return s


def current_threshold(assistant) -> float:
    """The abstain threshold `assistant` answers with: its own resolved value when it has one (a setting
    of `auto` means the index's calibration), else the numeric setting."""
    v = getattr(assistant, "abstain_threshold", None)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    return float(assistant.settings.abstain_threshold)


def question_vectors(assistant, questions: Iterable[Question]) -> dict[str, np.ndarray]:
    """Each question's embedding exactly as `Assistant.ask` makes it: alone, in a batch of one.

    Not one batch of all questions: the int8 runtime's vectors depend a little on the batch they are
    padded in (cosine >= 0.995 between the two, not 1.0), enough to move a question that sits near
    the abstain threshold to its other side, so calibration and the retrieval run would see
    different vectors than the answers do."""
    return {q.id: assistant.embedder.embed_batch([q.question])[0] for q in questions}


def best_passage_cosine(assistant, question: str, mode: str, k: int, qvec: np.ndarray) -> float | None:
    """The abstain signal of `Assistant.ask`: the best cosine among the top-k passages of `mode`."""
    depth = max(assistant.settings.people_depth, k * 5)
    pool = assistant.retriever.search(question, k=None, mode=mode, depth=depth, qvec=qvec)
    hits = pool[:k]
    if not hits:
        return None
    cos = assistant.retriever.cosine(qvec, [h.id for h in hits])
    return max(cos.values()) if cos else None


def _f1_at(items: list[tuple[bool, float | None, bool]], t: float) -> tuple[float, float, float]:
    tp = fp = fn = 0
    for unans, best, forced in items:
        abst = forced or best is None or best < t
        tp += abst and unans
        fp += abst and not unans
        fn += (not abst) and unans
    return _prf(tp, fp, fn)


def choose_threshold(items: list[tuple[bool, float | None, bool]]) -> tuple[float, tuple[float, float], tuple]:
    """The threshold maximising F1 over (unanswerable, best cosine, forced to abstain) items.

    Candidates are the gaps between consecutive best cosines; among equally good gaps the widest
    wins, and the threshold is its midpoint rounded to 2 decimals when that stays inside the gap.
    """
    vals = sorted({round(b, 6) for _, b, forced in items if b is not None and not forced})
    if not vals:
        raise ConfigError("no question has a dense best-passage cosine; calibrate on a dense or hybrid index")
    edges = [vals[0] - 0.05] + vals + [vals[-1] + 0.05]
    best = None
    for lo, hi in zip(edges, edges[1:]):
        t = (lo + hi) / 2
        prf = _f1_at(items, t if hi > lo else hi)
        key = (round(prf[2], 9), hi - lo)
        if best is None or key > best[0]:
            best = (key, lo, hi, prf)
    _, lo, hi, prf = best
    mid = (lo + hi) / 2
    t = round(mid, 2)
    if not (lo < t <= hi):
        t = round(mid, 3)
    # a threshold t abstains on best < t: the interval of equivalent thresholds is (lo, hi]
    return t, (round(lo, 4), round(hi, 4)), prf


def calibrate_abstention(assistant, suite: Suite, mode: str = "hybrid", k: int | None = None,
                         qvecs: dict[str, np.ndarray] | None = None) -> Calibration:
    """Choose `abstain_threshold` from a suite: maximise abstention F1 (abstained = positive).

    Each question's signal is its best-passage cosine as `Assistant.ask` computes it for `mode`
    (the top-k passages' best cosine to the question). Questions the assistant abstains on
    regardless of the threshold (a capitalised name the index never mentions, or no hits) are
    positives at every threshold. Needs answerable and unanswerable questions.
    """
    if mode == "bm25":
        raise ConfigError("bm25 mode ignores abstain_threshold; calibrate with mode dense or hybrid")
    unans = suite.of_type("unanswerable")
    if not unans or len(unans) == len(suite.questions):
        raise ConfigError(f"{suite.path}: calibration needs both answerable and unanswerable questions; "
                          "add some of the missing type")
    k = k or assistant.settings.k
    if qvecs is None:
        qvecs = question_vectors(assistant, suite.questions)
    items, scores = [], []
    for q in suite.questions:
        best = best_passage_cosine(assistant, q.question, mode, k, qvecs[q.id])
        forced = bool(assistant.unknown_names(q.question))
        items.append((q.type == "unanswerable", best, forced))
        scores.append({"id": q.id, "type": q.type, "best_cosine": None if best is None else round(best, 4),
                       "forced": forced})
    t, interval, (p, r, f) = choose_threshold(items)
    cur = current_threshold(assistant)
    return Calibration(mode, t, f, p, r, interval, scores, cur, _f1_at(items, cur)[2])


# ==========================================================================================
# report

@dataclass
class Report:
    """Everything one evaluation measured; `table()` for a terminal, `write(folder)` for files."""

    title: str
    modes: list[str]
    metrics: dict[str, dict[str, float]]  # mode -> metric -> value
    counts: dict[str, int] = field(default_factory=dict)  # questions behind each metric group
    latency: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # mode -> stage -> stats
    calibration: dict[str, Calibration] = field(default_factory=dict)
    questions: dict[str, list[dict]] = field(default_factory=dict)  # mode -> per question
    failures: dict[str, list[dict]] = field(default_factory=dict)  # mode -> per question problems
    runs: dict[str, dict[str, list[tuple[str, float]]]] = field(default_factory=dict)  # mode -> qid -> docs
    qrels: dict[str, dict[str, int]] = field(default_factory=dict)
    chunk_runs: dict[str, dict[str, list[tuple[str, float]]]] = field(default_factory=dict)
    chunk_qrels: dict[str, dict[str, int]] = field(default_factory=dict)
    published: dict[str, dict[str, float]] = field(default_factory=dict)  # mode -> metric -> value
    config: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    index_manifest: dict | None = None
    seconds: float = 0.0

    # -- views ----------------------------------------------------------------------------
    def metric_names(self) -> list[str]:
        names: list[str] = []
        for m in self.modes:
            for k in self.metrics.get(m, {}):
                if k not in names:
                    names.append(k)
        return names

    def to_dict(self) -> dict:
        return {
            "title": self.title, "modes": self.modes, "config": self.config, "metrics": self.metrics,
            "published": self.published, "counts": self.counts, "latency_ms": self.latency,
            "calibration": {m: c.to_dict() for m, c in self.calibration.items()},
            "failures": self.failures, "warnings": self.warnings, "notes": self.notes,
            "questions": self.questions, "seconds": round(self.seconds, 1),
        }

    def table(self) -> str:
        """Modes side by side, metric by metric (and latency p50/p95 in ms)."""
        names = self.metric_names()
        pub = bool(self.published)
        w = max([len(LABELS.get(n, n)) for n in names] + [24]) + 2
        head = "metric".ljust(w) + "".join(m.rjust(10) for m in self.modes)
        lines = [self.title, head, "-" * len(head)]
        group = None
        for n in names:
            g = n.split(".")[0]
            if g != group:
                group = g
                c = self.counts.get(g)
                lines.append(f"[{g}]" + (f" ({c} questions)" if c else ""))
            row = ("  " + LABELS.get(n, n)).ljust(w)
            for m in self.modes:
                v = self.metrics.get(m, {}).get(n)
                row += (f"{v:.3f}" if v is not None else "-").rjust(10)
            lines.append(row)
            if pub and any(n.split(".", 1)[-1] in self.published.get(m, {}) for m in self.modes):
                row = "    published".ljust(w)
                for m in self.modes:
                    v = self.published.get(m, {}).get(n.split(".", 1)[-1])
                    row += (f"{v:.3f}" if v is not None else "").rjust(10)
                lines.append(row)
        if self.latency:
            stages = list(dict.fromkeys(s for m in self.modes for s in self.latency.get(m, {})))
            lines.append("[latency ms] p50 / p95")
            for s in stages:
                row = ("  " + s).ljust(w)
                for m in self.modes:
                    st = self.latency.get(m, {}).get(s)
                    row += (f"{st['p50']:.0f}/{st['p95']:.0f}" if st else "-").rjust(10)
                lines.append(row)
        for c in self.calibration.values():
            lines.append("calibration: " + c.summary())
        nf = {m: len(v) for m, v in self.failures.items() if v}
        if nf:
            lines.append("questions with problems: " + ", ".join(f"{m} {n}" for m, n in nf.items()))
        for wmsg in self.warnings:
            lines.append(f"warning: {wmsg}")
        return "\n".join(lines)

    # -- files ----------------------------------------------------------------------------
    def write(self, out_dir: str | Path, command: list[str] | None = None) -> dict[str, Path]:
        """Write report.{json,md,html}, report.meta.json, metrics.png, latency.png, TREC runs and qrels."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        files: dict[str, Path] = {}
        files.update(write_trec(self, out))
        files.update(plot(self, out))
        files["json"] = out / "report.json"
        files["json"].write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False, default=str))
        files["md"] = out / "report.md"
        files["md"].write_text(render_markdown(self, files))
        files["html"] = out / "report.html"
        files["html"].write_text(render_html(self, files))
        files["meta"] = out / "report.meta.json"
        files["meta"].write_text(json.dumps(run_meta(self, command, files), indent=2, ensure_ascii=False,
                                            default=str))
        return files


def _trec_id(s: str) -> str:
    """TREC files are whitespace-separated: whitespace in ids is percent-encoded."""
    return re.sub(r"\s", lambda m: "%{:02X}".format(ord(m.group(0))), s)


def write_trec(report: Report, out: Path) -> dict[str, Path]:
    """`run.<mode>.trec` (qid Q0 docid rank score tag) and `qrels.trec` (qid 0 docid rel); chunk files too.

    The score column is the rank order (depth+1-rank), not the fused score: diversification moves
    chunks without rescoring them, and trec_eval ranks by score.
    """
    files: dict[str, Path] = {}
    for kind, runs, qrels in (("", report.runs, report.qrels), (".chunks", report.chunk_runs, report.chunk_qrels)):
        if not runs:
            continue
        for mode, run in runs.items():
            p = out / f"run.{mode}{kind}.trec"
            lines = []
            for qid, ranked in run.items():
                n = len(ranked)
                for rank, (doc, _score) in enumerate(ranked, 1):
                    lines.append(f"{_trec_id(qid)} Q0 {_trec_id(doc)} {rank} {n + 1 - rank} askcolleague-{mode}")
            p.write_text("\n".join(lines) + ("\n" if lines else ""))
            files[f"run.{mode}{kind}"] = p
        p = out / f"qrels{kind}.trec"
        p.write_text("".join(f"{_trec_id(q)} 0 {_trec_id(d)} {r}\n" for q, rel in qrels.items() for d, r in rel.items()))
        files[f"qrels{kind}"] = p
    return files


def plot(report: Report, out: Path) -> dict[str, Path]:
    """metrics.png (grouped bars: metric × mode) and latency.png (p50/p95 per stage × mode)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files: dict[str, Path] = {}
    names = [n for n in report.metric_names()]
    if names:
        fig, ax = plt.subplots(figsize=(max(8, 0.75 * len(names) + 2), 4.8))
        x = np.arange(len(names))
        w = 0.8 / max(len(report.modes), 1)
        for i, m in enumerate(report.modes):
            vals = [report.metrics.get(m, {}).get(n) or 0.0 for n in names]
            ax.bar(x + (i - (len(report.modes) - 1) / 2) * w, vals, w, label=m)
        ax.set_xticks(x)
        ax.set_xticklabels([LABELS.get(n, n) for n in names], rotation=40, ha="right", fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("score")
        ax.set_title(f"{report.title}: metrics per mode")
        ax.legend()
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        files["metrics_png"] = out / "metrics.png"
        fig.savefig(files["metrics_png"], dpi=110)
        plt.close(fig)
    stages = list(dict.fromkeys(s for m in report.modes for s in report.latency.get(m, {})))
    if stages:
        fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(stages) + 2), 4.2))
        x = np.arange(len(stages))
        w = 0.8 / max(len(report.modes), 1)
        for i, m in enumerate(report.modes):
            st = report.latency.get(m, {})
            p50 = [st.get(s, {}).get("p50", 0.0) for s in stages]
            p95 = [st.get(s, {}).get("p95", 0.0) for s in stages]
            pos = x + (i - (len(report.modes) - 1) / 2) * w
            bars = ax.bar(pos, p95, w, alpha=0.35, label=f"{m} p95")
            ax.bar(pos, p50, w, color=bars[0].get_facecolor()[:3], label=f"{m} p50")
        ax.set_xticks(x)
        ax.set_xticklabels(stages)
        ax.set_ylabel("ms")
        ax.set_title(f"{report.title}: latency per stage (p50 solid, p95 light)")
        ax.legend(fontsize=7, ncol=len(report.modes))
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        files["latency_png"] = out / "latency.png"
        fig.savefig(files["latency_png"], dpi=110)
        plt.close(fig)
    return files


def _fmt(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, float) else "-" if v is None else str(v)


def _metric_rows(report: Report) -> tuple[list[str], list[list[str]]]:
    head = ["metric", *report.modes]
    rows = []
    for n in report.metric_names():
        row = [LABELS.get(n, n), *[_fmt(report.metrics.get(m, {}).get(n)) for m in report.modes]]
        rows.append(row)
        key = n.split(".", 1)[-1]
        if any(key in report.published.get(m, {}) for m in report.modes):
            rows.append([f"{LABELS.get(n, n)} — published",
                         *[_fmt(report.published.get(m, {}).get(key)) if key in report.published.get(m, {}) else ""
                           for m in report.modes]])
    return head, rows


def _latency_rows(report: Report) -> tuple[list[str], list[list[str]]]:
    stages = list(dict.fromkeys(s for m in report.modes for s in report.latency.get(m, {})))
    head = ["stage (ms)", *[f"{m} p50 / p95" for m in report.modes]]
    rows = [[s, *[(lambda st: f"{st['p50']:.1f} / {st['p95']:.1f}" if st else "-")(report.latency.get(m, {}).get(s))
                  for m in report.modes]] for s in stages]
    return head, rows


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    esc = lambda s: str(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    out = ["| " + " | ".join(map(esc, head)) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    out += ["| " + " | ".join(map(esc, r)) + " |" for r in rows]
    return "\n".join(out)


def _failure_lines(f: dict) -> list[str]:
    return [f"{p['kind']}: expected {p['expected']}; got {p['got']}" for p in f["problems"]]


def render_markdown(report: Report, files: dict[str, Path] | None = None) -> str:
    files = files or {}
    c = report.config
    out = [f"# {report.title}", ""]
    out += [f"- {k}: `{v}`" for k, v in c.items() if not isinstance(v, (dict, list))]
    out += [f"- questions: {', '.join(f'{t} {n}' for t, n in report.counts.items())}", ""]
    out += ["## Metrics", "", _md_table(*_metric_rows(report)), ""]
    if "metrics_png" in files:
        out += ["![metrics per mode](metrics.png)", ""]
    if report.latency:
        out += ["## Latency", "", _md_table(*_latency_rows(report)), ""]
        if "latency_png" in files:
            out += ["![latency per stage](latency.png)", ""]
    if report.calibration:
        out += ["## Abstention calibration", ""]
        out += [f"- {cal.summary()}" for cal in report.calibration.values()]
        out.append("")
    if report.warnings or report.notes:
        out += ["## Notes", ""] + [f"- warning: {w}" for w in report.warnings] + [f"- {n}" for n in report.notes] + [""]
    if report.failures:
        out += ["## Failures per question", ""]
        for mode, fails in report.failures.items():
            out += [f"### {mode} ({len(fails)} questions)", ""]
            if not fails:
                out += ["None.", ""]
            for f in fails:
                out.append(f"- **{f['id']}** ({f['type']}) {f['question']}")
                out += [f"  - {line}" for line in _failure_lines(f)]
            out.append("")
    trec = [p.name for k, p in files.items() if k.startswith(("run.", "qrels"))]
    if trec:
        out += ["## Files", "", "TREC runs and qrels: " + ", ".join(f"`{n}`" for n in trec), ""]
    return "\n".join(out)


def _html_table(head: list[str], rows: list[list[str]]) -> str:
    e = html.escape
    return ("<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr></thead><tbody>"
            + "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in r) + "</tr>" for r in rows)
            + "</tbody></table>")


def render_html(report: Report, files: dict[str, Path] | None = None) -> str:
    """A self-contained HTML page (plots embedded as data URIs)."""
    files = files or {}
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(report.title)}</title><style>"
             "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
             "td:first-child,th:first-child{text-align:left}li{margin:.2em 0}code{background:#f4f4f4}"
             ".p{color:#a33}img{max-width:100%}</style></head><body>",
             f"<h1>{e(report.title)}</h1><ul>"]
    parts += [f"<li>{e(str(k))}: <code>{e(str(v))}</code></li>" for k, v in report.config.items()
              if not isinstance(v, (dict, list))]
    parts.append(f"<li>questions: {e(', '.join(f'{t} {n}' for t, n in report.counts.items()))}</li></ul>")
    parts += ["<h2>Metrics</h2>", _html_table(*_metric_rows(report))]

    def img(key: str, alt: str) -> str:
        p = files.get(key)
        if not p or not Path(p).is_file():
            return ""
        data = base64.b64encode(Path(p).read_bytes()).decode()
        return f"<p><img alt='{e(alt)}' src='data:image/png;base64,{data}'></p>"

    parts.append(img("metrics_png", "metrics per mode"))
    if report.latency:
        parts += ["<h2>Latency</h2>", _html_table(*_latency_rows(report)), img("latency_png", "latency per stage")]
    if report.calibration:
        parts += ["<h2>Abstention calibration</h2><ul>"]
        parts += [f"<li>{e(c.summary())}</li>" for c in report.calibration.values()] + ["</ul>"]
    if report.warnings or report.notes:
        parts += ["<h2>Notes</h2><ul>"] + [f"<li class='p'>warning: {e(w)}</li>" for w in report.warnings]
        parts += [f"<li>{e(n)}</li>" for n in report.notes] + ["</ul>"]
    if report.failures:
        parts.append("<h2>Failures per question</h2>")
        for mode, fails in report.failures.items():
            parts.append(f"<h3>{e(mode)} ({len(fails)} questions)</h3><ul>")
            for f in fails:
                parts.append(f"<li><b>{e(f['id'])}</b> ({e(f['type'])}) {e(f['question'])}<ul>"
                             + "".join(f"<li>{e(x)}</li>" for x in _failure_lines(f)) + "</ul></li>")
            parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def code_version() -> dict:
    from . import __version__

    info: dict[str, Any] = {"askcolleague": __version__}
    repo = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=5)
        if head.returncode == 0:
            info["git_commit"] = head.stdout.strip()
            dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "src"], cwd=repo, capture_output=True,
                                   timeout=10)
            info["git_dirty_src"] = dirty.returncode != 0
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def _versions(*names: str) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for n in names:
        try:
            out[n] = version(n)
        except PackageNotFoundError:
            pass
    return out


def run_meta(report: Report, command: list[str] | None = None, files: dict[str, Path] | None = None) -> dict:
    """What produced a report: configuration, index manifest, model, code version, command line."""
    manifest = report.index_manifest or {}
    return {
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command if command is not None else sys.argv,
        "config": report.config,
        "model": manifest.get("model"),
        "index": manifest,
        "code": code_version(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": _versions("ranx", "numpy", "faiss-cpu", "sentence-transformers", "torch", "matplotlib"),
        "files": sorted(p.name for p in (files or {}).values()),
        "seconds": round(report.seconds, 1),
    }


# ==========================================================================================
# evaluation

def _settings_with(settings, **overrides):
    from .settings import Settings

    return Settings({**settings.values, **{k: v for k, v in overrides.items() if v is not None}})


def _ranked_docs(hits, depth: int) -> list[tuple[str, float]]:
    out: dict[str, float] = {}
    for h in hits:
        d = h.row["doc_id"]
        if d not in out:
            out[d] = float(h.score)
            if len(out) >= depth:
                break
    return list(out.items())


def _header(c) -> str:
    return " ".join(str(x or "") for x in (c.title, c.section, c.date))


def _short(s: str, n: int = 240) -> str:
    s = " ".join(str(s).split())
    return s if len(s) <= n else s[: n - 1] + "…"


def evaluate(assistant, suite: Suite, modes: Iterable[str] = MODES, k: int | None = None, depth: int = DEPTH,
             abstain_threshold: float | str | None = None, llm: bool = False,
             progress: Callable[[str], None] | None = None) -> Report:
    """Run every question of `suite` in every mode: retrieval to `depth` docs and the full `ask`.

    `abstain_threshold`: None = the assistant's setting; a number; or "calibrated" = first
    `calibrate_abstention` (on the settings' mode, hybrid if that is bm25) and use its value.
    Answers are extractive unless `llm` (and an LLM is configured). Returns a `Report`.
    """
    t_start = time.time()
    modes = [m.strip() for m in modes if m and m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise ConfigError(f"unknown mode {bad[0] if bad else ''!r}; use some of {', '.join(MODES)}")
    say = progress or (lambda msg: None)
    settings0 = assistant.settings
    if llm and not settings0.llm_base_url:
        raise ConfigError("evaluating generated answers needs an LLM: set ASKCOLLEAGUE_LLM_BASE_URL (and _LLM_MODEL)")
    k = k or settings0.k
    say("warming up the model")
    assistant.warm_up()
    qvecs = question_vectors(assistant, suite.questions)

    calibrations: dict[str, Calibration] = {}
    cal_mode = settings0.mode if settings0.mode != "bm25" else "hybrid"
    for m in dict.fromkeys([cal_mode, *[m for m in modes if m != "bm25"]]):
        if suite.of_type("unanswerable") and len(suite.of_type("unanswerable")) < len(suite.questions):
            say(f"calibrating the abstain threshold ({m})")
            calibrations[m] = calibrate_abstention(assistant, suite, m, k, qvecs)
    threshold = abstain_threshold
    if isinstance(threshold, str):
        if threshold != "calibrated":
            try:
                threshold = float(threshold)
            except ValueError:
                raise ConfigError(f"abstain threshold {threshold!r}: give a number or 'calibrated'") from None
        elif cal_mode not in calibrations:
            raise ConfigError(f"{suite.path}: cannot calibrate without answerable and unanswerable questions")
        else:
            threshold = calibrations[cal_mode].threshold
    threshold = float(threshold) if threshold is not None else current_threshold(assistant)

    judge = SupportJudge(assistant.embedder)
    report = Report(title=f"askcolleague eval: {Path(suite.path or 'suite').name}", modes=modes, metrics={},
                    counts={})
    report.config = {
        "suite": suite.path, "suite_sha256": suite.sha256, "index": str(assistant.index.path),
        "modes": ",".join(modes), "k": k, "depth": depth, "abstain_threshold": threshold,
        "abstain_threshold_setting": settings0.abstain_threshold, "answers": "llm" if llm else "extractive",
        "rrf_k": settings0.rrf_k, "max_per_doc": settings0.max_per_doc, "people_depth": settings0.people_depth,
        "settings": {k2: v for k2, v in settings0.values.items() if "key" not in k2},
    }
    from .index import status

    try:
        report.index_manifest = status(assistant.index.path)
    except Exception:  # noqa: BLE001 - an index opened some other way: use its manifest
        report.index_manifest = dict(assistant.index.manifest)
    doc_ids = [r[0] for r in assistant.index.store.db.execute("SELECT doc_id FROM docs")]
    report.warnings = suite_warnings(suite, doc_ids, [p.name for p in assistant.index.store.people()])
    report.notes.append("LLM-judged faithfulness and answer relevancy (RAGAS) are not computed: no judge model "
                        "is available offline and each needs several LLM calls per question; citation "
                        "recall/precision (embedding + lexical support rule) stand in for faithfulness.")
    report.calibration = calibrations

    report.qrels = {q.id: {d: 1 for d in q.docs} for q in suite.questions if q.docs}
    report.chunk_qrels = {q.id: {c: 1 for c in q.chunks} for q in suite.questions if q.chunks}
    # attribution questions ("who said X") are scored by the attribution metrics, where people[0] is the one
    # right answer, not by the expert-finding metrics (any listed person counts)
    people_qrels = {q.id: {_person_key(p): 1 for p in q.people} for q in suite.questions
                    if q.people and q.type != "attribution"}
    n_attr = len(suite.of_type("attribution"))
    report.counts = {"doc": len(report.qrels), "people": len(people_qrels),
                     **({"attribution": n_attr} if n_attr else {}),
                     "answer": len([q for q in suite.questions if q.answerable]),
                     "abstain": len(suite.questions), **({"chunk": len(report.chunk_qrels)} if report.chunk_qrels else {})}

    assistant.settings = _settings_with(settings0, abstain_threshold=threshold)
    try:
        for mode in modes:
            say(f"{mode}: {len(suite.questions)} questions")
            _evaluate_mode(assistant, suite, mode, k, depth, llm, qvecs, judge, people_qrels, report)
    finally:
        assistant.settings = settings0
    report.seconds = time.time() - t_start
    return report


def _evaluate_mode(assistant, suite: Suite, mode: str, k: int, depth: int, llm: bool, qvecs: dict,
                   judge: SupportJudge, people_qrels: dict, report: Report) -> None:
    runs: dict[str, list[tuple[str, float]]] = {}
    chunk_runs: dict[str, list[tuple[str, float]]] = {}
    people_run: dict[str, list[str]] = {}
    rows: list[dict] = []
    lat: dict[str, list[float]] = {}
    cite_rec, cite_prec, fcov, fcov_cited, abst = [], [], [], [], []
    attributions: list[tuple[Question, dict]] = []
    for q in suite.questions:
        t0 = time.perf_counter()
        hits = assistant.retriever.search(q.question, k=None, mode=mode, depth=max(depth * 5, 200),
                                          qvec=None if mode == "bm25" else qvecs[q.id])
        search_ms = (time.perf_counter() - t0) * 1e3
        runs[q.id] = _ranked_docs(hits, depth)
        chunk_runs[q.id] = [(h.row["chunk_id"], float(h.score)) for h in hits[:depth]]
        ans = assistant.ask(q.question, k=k, mode=mode, llm=llm)
        for stage, ms in ans.timings_ms.items():
            lat.setdefault(stage, []).append(ms)
        lat.setdefault("search@depth", []).append(search_ms)
        people_run[q.id] = [_person_key(p.name) for p in ans.people]
        cited = {c.n: (c.text, _header(c)) for c in ans.citations}
        cited_text = " ".join(c.text + " " + c.title for c in ans.citations)
        row: dict[str, Any] = {
            "id": q.id, "type": q.type, "question": q.question, "abstained": ans.abstained,
            "answer": ans.answer, "answer_mode": ans.mode, "fallback_reason": ans.fallback_reason,
            "cited": [{"n": c.n, "doc_id": c.doc_id, "chunk_id": c.chunk_id} for c in ans.citations],
            "people": [p.name for p in ans.people],
            "citation_authors": [[a.get("name") for a in c.authors] for c in ans.citations],
            "top_docs": [d for d, _ in runs[q.id][:10]],
            "gold_docs": q.docs, "gold_people": q.people,
            **({"origin": q.origin} if q.origin else {}), **({"echoes": q.echoes} if q.echoes else {}),
            "timings_ms": {s: round(v, 1) for s, v in ans.timings_ms.items()},
        }
        ranked = [d for d, _ in runs[q.id]]
        row["first_gold_rank"] = next((i for i, d in enumerate(ranked, 1) if d in q.docs), None)
        row["attribution"] = attribution_result(q, answer_view(ans))
        attributions.append((q, row["attribution"]))
        abst.append((ans.abstained, q.type == "unanswerable"))
        if not ans.abstained and ans.citations:
            j = judge.judge(ans.answer, cited)
            row["citation"] = {kk: j[kk] for kk in ("claims", "supported", "citations", "relevant", "recall",
                                                    "precision")}
            row["unsupported"] = j["unsupported"]
            if j["recall"] is not None:
                cite_rec.append(j["recall"])
            if j["precision"] is not None:
                cite_prec.append(j["precision"])
        if q.facts:
            in_answer = fact_hits(q.facts, ans.answer)
            in_cited = fact_hits(q.facts, ans.answer + " " + cited_text)
            row["facts_in_answer"] = [f for f, h in zip(q.facts, in_answer) if h]
            row["facts_in_cited"] = [f for f, h in zip(q.facts, in_cited) if h]
            fcov.append(sum(in_answer) / len(q.facts))
            fcov_cited.append(sum(in_cited) / len(q.facts))
        row["problems"] = _problems(q, row, ranked)
        rows.append(row)

    metrics: dict[str, float] = {}
    mean, per_q = _ranx_eval(report.qrels, {qid: [d for d, _ in r] for qid, r in runs.items()}, DOC_METRICS)
    metrics.update({f"doc.{m}": v for m, v in mean.items()})
    if report.chunk_qrels:
        mean_c, _ = _ranx_eval(report.chunk_qrels, {qid: [c for c, _ in r] for qid, r in chunk_runs.items()},
                               DOC_METRICS)
        metrics.update({f"chunk.{m}": v for m, v in mean_c.items()})
    mean_p, per_qp = _ranx_eval(people_qrels, people_run, PEOPLE_METRICS)
    metrics.update({f"people.{m}": v for m, v in mean_p.items()})
    attr = attribution_metrics(attributions)
    if "people.agree_with_citations" in attr:
        metrics["people.agree_with_citations"] = attr.pop("people.agree_with_citations")
    metrics.update(attr)
    for row in rows:
        row["doc_metrics"] = per_q.get(row["id"])
        row["people_metrics"] = per_qp.get(row["id"])
    if cite_rec:
        metrics["answer.citation_recall"] = float(np.mean(cite_rec))
    if cite_prec:
        metrics["answer.citation_precision"] = float(np.mean(cite_prec))
    if fcov:
        metrics["answer.fact_coverage"] = float(np.mean(fcov))
        metrics["answer.fact_coverage_cited"] = float(np.mean(fcov_cited))
    metrics.update(abstention_metrics(abst))
    report.metrics[mode] = metrics
    report.latency[mode] = {s: percentiles(v) for s, v in lat.items()}
    report.questions[mode] = rows
    report.failures[mode] = [{"id": r["id"], "type": r["type"], "question": r["question"], "problems": r["problems"]}
                             for r in rows if r["problems"]]
    report.runs[mode] = runs
    if report.chunk_qrels:
        report.chunk_runs[mode] = chunk_runs


def _problems(q: Question, row: dict, ranked: list[str]) -> list[dict]:
    """What went wrong for one question, as {kind, expected, got}."""
    out = []
    cited_docs = list(dict.fromkeys(c["doc_id"] for c in row["cited"]))
    if q.type == "unanswerable":
        if not row["abstained"]:
            out.append({"kind": "answered-unanswerable", "expected": "abstain",
                        "got": f"{_short(row['answer'])!r} citing {cited_docs}"})
        return out
    if q.docs:
        if row["first_gold_rank"] is None or row["first_gold_rank"] > 10:
            out.append({"kind": "retrieval", "expected": f"one of {q.docs} in the top 10",
                        "got": f"rank {row['first_gold_rank'] or '>' + str(len(ranked))}; top 5 {ranked[:5]}"})
        elif q.type == "multi":
            missing = [d for d in q.docs if d not in ranked[:10]]
            if missing:
                out.append({"kind": "retrieval-multi", "expected": f"all of {q.docs} in the top 10",
                            "got": f"missing {missing}; top 5 {ranked[:5]}"})
    if row["abstained"]:
        out.append({"kind": "abstained", "expected": f"an answer with {q.facts or q.docs}",
                    "got": f"abstention: {_short(row['answer'], 160)!r}"})
    elif q.facts:
        missing = [f for f in q.facts if f not in row.get("facts_in_cited", [])]
        if missing:
            out.append({"kind": "facts", "expected": f"facts {missing} in the answer or its citations",
                        "got": f"{_short(row['answer'])!r} citing {cited_docs}"})
    if row.get("unsupported"):
        out.append({"kind": "citation", "expected": "every sentence supported by what it cites",
                    "got": f"unsupported: {[_short(s, 120) for s in row['unsupported']]}"})
    a = row.get("attribution") or {}
    if q.type == "attribution":
        if a.get("p1") is False:
            out.append({"kind": "attribution", "expected": f"{q.people[0]} first in the people list",
                        "got": f"{row['people'][:3]}" + (" (the top person only repeated it)" if a.get("top_is_echo")
                                                          else "")})
        if a.get("origin") is False:
            out.append({"kind": "origin", "expected": f"{q.origin} (the idea's origin) first in the people list "
                                                      "and among the authors of citation [1]",
                        "got": f"top {a.get('top')!r}; [1] by {a.get('first_citation_authors')}"})
    elif q.people:
        gold = {_person_key(p) for p in q.people}
        if not gold & {_person_key(p) for p in row["people"][:3]}:
            out.append({"kind": "people", "expected": f"one of {q.people} in the top 3",
                        "got": f"{row['people'][:3]}"})
    if a.get("agree") is False:
        out.append({"kind": "people-vs-citations", "expected": "the top person among the cited passages' authors",
                    "got": f"top {a.get('top')!r}; cited authors {a.get('cited_authors')}"})
    return out


# ==========================================================================================
# regression gate

def load_thresholds(path: str | Path) -> dict:
    """eval/thresholds.yaml: {abstain_threshold: number|calibrated, metrics: {mode: {metric: minimum}}}."""
    import yaml

    p = Path(path)
    from . import safeyaml

    try:
        data = safeyaml.load(p.read_text(), f"{p}") or {}
    except safeyaml.YamlRefused as e:
        raise ConfigError(str(e)) from None
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{p}: cannot read thresholds ({' '.join(str(e).split())[:160]}); fix the file") from None
    if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict):
        raise ConfigError(f"{p}: expected `metrics: {{mode: {{metric: minimum}}}}`; see eval/README.md")
    for k in data:
        if k not in ("metrics", "abstain_threshold"):
            raise ConfigError(f"{p}: unknown key {k!r}; use `metrics:` and optionally `abstain_threshold:`")
    at = data.get("abstain_threshold")
    if at is not None and at != "calibrated" and (not isinstance(at, (int, float)) or isinstance(at, bool)):
        raise ConfigError(f"{p}: abstain_threshold must be a number or `calibrated`, not {at!r}")
    for mode, mins in data["metrics"].items():
        if mode not in MODES or not isinstance(mins, dict):
            raise ConfigError(f"{p}: `metrics.{mode}` must be one of {', '.join(MODES)} with metric: minimum pairs")
        for name, v in mins.items():
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                raise ConfigError(f"{p}: metrics.{mode}.{name} must be a number, not {v!r}")
    return data


def check_thresholds(report: Report, thresholds: dict) -> list[str]:
    """Every metric below its minimum, as one line each (empty list = gate passed)."""
    out = []
    for mode, mins in thresholds.get("metrics", {}).items():
        if mode not in report.metrics:
            continue
        for name, minimum in mins.items():
            v = report.metrics[mode].get(name)
            if v is None:
                out.append(f"{mode} {name}: not measured (minimum {minimum})")
            elif v + 1e-9 < minimum:
                out.append(f"{mode} {name} = {v:.3f} < {minimum:.3f}")
    return out


# ==========================================================================================
# BEIR

def _read_jsonl(path: Path, need: tuple[str, ...]) -> list[dict]:
    if not path.is_file():
        raise ConfigError(f"{path}: missing; a BEIR folder holds corpus.jsonl, queries.jsonl and qrels/test.tsv")
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as e:
                raise ConfigError(f"{path}: line {n} is not valid JSON ({e}); fix the line") from None
            missing = [k for k in need if k not in obj]
            if missing:
                raise ConfigError(f"{path}: line {n} has no {missing[0]!r}; BEIR lines need {', '.join(need)}")
            out.append(obj)
    return out


def read_beir(dataset_dir: str | Path, split: str = "test") -> tuple[list[dict], dict[str, str], dict[str, dict[str, int]]]:
    """(corpus [{_id, title, text}], queries {qid: text}, qrels {qid: {doc: score}}) of a BEIR folder."""
    d = Path(dataset_dir)
    corpus = _read_jsonl(d / "corpus.jsonl", ("_id", "text"))
    queries = {str(q["_id"]): str(q["text"]) for q in _read_jsonl(d / "queries.jsonl", ("_id", "text"))}
    qpath = d / "qrels" / f"{split}.tsv"
    if not qpath.is_file():
        raise ConfigError(f"{qpath}: missing; BEIR qrels are qrels/<split>.tsv (query-id, corpus-id, score)")
    qrels: dict[str, dict[str, int]] = {}
    for n, line in enumerate(qpath.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.strip().split("\t") if "\t" in line else line.split()
        if not parts or (n == 1 and parts[0] == "query-id"):
            continue
        if len(parts) < 3:
            raise ConfigError(f"{qpath}: line {n} needs query-id, corpus-id and score separated by tabs")
        try:
            score = int(float(parts[2]))
        except ValueError:
            raise ConfigError(f"{qpath}: line {n}: score {parts[2]!r} is not a number") from None
        qrels.setdefault(parts[0], {})[parts[1]] = score
    unknown = [q for q in qrels if q not in queries]
    if unknown:
        raise ConfigError(f"{qpath}: query {unknown[0]!r} is not in queries.jsonl; fix the qrels or the queries")
    return corpus, queries, qrels


BEIR_FILE = "corpus.jsonl"  # the temp corpus file; doc ids are f"{BEIR_FILE}#{_id}"


def beir_doc_id(doc_id: str) -> str:
    """The BEIR _id of an indexed BEIR document (index doc ids are ``corpus.jsonl#<_id>``)."""
    return doc_id.split("#", 1)[1] if doc_id.startswith(BEIR_FILE + "#") else doc_id


def evaluate_beir(dataset_dir: str | Path, modes: Iterable[str] = MODES, embedder=None, split: str = "test",
                  depth: int = DEPTH, settings=None, work_dir: str | Path | None = None,
                  progress: Callable[[str], None] | None = None) -> Report:
    """nDCG@10 and Recall@100 (and Recall@10, MRR@10) per mode on a BEIR-layout dataset.

    The corpus is written as a JSONL thread file (one thread per document: id = _id, title, body =
    text) into a temporary folder, indexed with `index.build` (no people, no authors), and searched
    at document level: a document ranks where its best chunk ranks. Index doc ids are
    ``corpus.jsonl#<_id>`` and are mapped back to the BEIR ids. When the folder is named ``scifact``
    the published numbers are shown beside ours.
    """
    from .index import Index, build, status
    from .retrieval import Retriever
    from .settings import Settings

    t_start = time.time()
    say = progress or (lambda msg: None)
    modes = [m.strip() for m in modes if m and m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise ConfigError(f"unknown mode {bad[0] if bad else ''!r}; use some of {', '.join(MODES)}")
    d = Path(dataset_dir)
    corpus, queries, qrels = read_beir(d, split)
    qrels = {q: {doc: s for doc, s in rel.items() if s > 0} for q, rel in qrels.items()}
    qrels = {q: rel for q, rel in qrels.items() if rel}
    settings = settings or Settings.load()
    if embedder is None:
        from .embedder import get_embedder

        embedder = get_embedder(settings.model or None, batch_size=settings.batch_size, threads=settings.threads,
                                runtime=settings.runtime)
    tmp_ctx = tempfile.TemporaryDirectory(prefix="askcolleague-beir-") if work_dir is None else None
    work = Path(tmp_ctx.name if tmp_ctx else work_dir)
    try:
        work.mkdir(parents=True, exist_ok=True)
        src = work / BEIR_FILE
        with open(src, "w", encoding="utf-8") as f:
            for doc in corpus:
                f.write(json.dumps({"id": str(doc["_id"]), "title": str(doc.get("title") or "").strip(),
                                    "body": str(doc["text"])}, ensure_ascii=False) + "\n")
        say(f"indexing {len(corpus)} documents")
        warns: list[str] = []
        build([src], work / "index", settings=settings, embedder=embedder, warn=warns.append,
              command=["evaluate_beir", str(d)])
        idx = Index.open(work / "index", settings, embedder=embedder)
        try:
            retriever = Retriever(idx, rrf_k=settings.rrf_k, max_per_doc=settings.max_per_doc)
            qids = [q for q in queries if q in qrels]
            vecs = embedder.embed_batch([queries[q] for q in qids]) if any(m != "bm25" for m in modes) else None
            name = d.name.lower()
            report = Report(title=f"BEIR {d.name} ({split})", modes=modes, metrics={},
                            counts={"doc": len(qids)}, published=PUBLISHED.get(name, {}))
            report.qrels = {q: qrels[q] for q in qids}
            for mode in modes:
                say(f"{mode}: {len(qids)} queries")
                runs, times = {}, []
                for i, q in enumerate(qids):
                    t0 = time.perf_counter()
                    hits = retriever.search(queries[q], k=None, mode=mode, depth=max(depth * 3, 300),
                                            qvec=None if mode == "bm25" else vecs[i])
                    times.append((time.perf_counter() - t0) * 1e3)
                    runs[q] = [(beir_doc_id(doc), s) for doc, s in _ranked_docs(hits, depth)]
                mean, _ = _ranx_eval(report.qrels, {q: [doc for doc, _ in r] for q, r in runs.items()}, BEIR_METRICS)
                report.metrics[mode] = {f"doc.{m}": v for m, v in mean.items()}
                report.runs[mode] = runs
                report.latency[mode] = {"search@depth": percentiles(times)}
            report.index_manifest = status(work / "index")
        finally:
            idx.close()
        report.config = {"dataset": str(d), "split": split, "modes": ",".join(modes), "depth": depth,
                         "documents": len(corpus), "queries": len(qids),
                         "chunks": report.index_manifest["counts"]["chunks"], "model": embedder.model_id,
                         "doc_ids": f"index doc id {BEIR_FILE}#<_id> -> BEIR _id"}
        if report.published:
            report.notes.append("published nDCG@10: " + "; ".join(
                f"{m} {v['ndcg@10']:.3f} ({PUBLISHED_SOURCES.get(m, '')})" for m, v in report.published.items()))
            report.notes.append("differences expected: SQLite FTS5 bm25 (porter stemmer, OR of query words) is not "
                                "Elasticsearch BM25; documents longer than a chunk are split and rank by their best "
                                "chunk; the chunk embeds 'title\\ntext'.")
        report.warnings += warns
        report.seconds = time.time() - t_start
        return report
    finally:
        if tmp_ctx:
            tmp_ctx.cleanup()


def default_out_dir(base: str | Path = "eval/reports") -> Path:
    return Path(base) / _dt.datetime.now().strftime("%Y-%m-%d-%H%M%S")
