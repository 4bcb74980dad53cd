"""Metrics: ranking (documents, chunks, people), abstention, attribution, fact coverage, latency percentiles.

Ranking metrics (documents, chunks, people) are computed with ranx (trec_eval definitions):

- Recall@k: fraction of a question's gold items in the top k; MRR@10: 1/rank of the first gold item
  (0 beyond 10); nDCG@10: binary gains, log2 discount; P@1: the top item is gold; success@10 (ranx
  ``hit_rate@10``): any gold item in the top 10.
- Documents: the retrieval run's doc_ids, deduplicated in rank order (a document ranks where its
  best chunk ranks); relevant = the question's gold ``docs``. Chunks: only for questions that list
  gold ``chunks``. People: the answer's ranked people against the gold ``people`` (names compared
  case- and accent-insensitively, see ``people.normalize_name``).

Answer metrics (citation recall / precision come from `support.SupportJudge`, the support rule
shared with the LLM answer checker):

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

import unicodedata
import warnings
from typing import Any, Iterable

import numpy as np

from ..models import normalize_name
from .suite import Question

MODES = ("bm25", "dense", "hybrid")
DEPTH = 100

DOC_METRICS = ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10", "hit_rate@10")
PEOPLE_METRICS = ("precision@1", "recall@3", "mrr")
ATTRIBUTION_METRICS = ("attribution.p@1", "attribution.origin_accuracy", "attribution.people_agree")

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


def ranx_eval(qrels: dict[str, dict[str, int]], run: dict[str, list[str]], metrics: Iterable[str]
              ) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """ranx over qrels {qid: {id: rel}} and a ranked run {qid: [ids best first]}.

    Returns (mean per metric, per question per metric). Queries without relevant items are left
    out; a query missing from the run (or with no results) scores 0. Scores given to ranx are the
    rank order (n, n-1, ...), so ties are impossible and ranx ranks exactly as we did.
    """
    # here, not at the top: ranx loads numba, seconds of start-up that suite parsing and the CLI should not pay
    from ranx import Qrels, Run
    from ranx import evaluate as ranx_evaluate

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
    """Mean ranx metrics of a ranked run against gold sets (or graded qrels). See `ranx_eval`."""
    q = {qid: (dict(rel) if isinstance(rel, dict) else {d: 1 for d in rel}) for qid, rel in qrels.items()}
    return ranx_eval(q, run, metrics)[0]


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
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
    p, r, f = prf(tp, fp, fn)
    return {"abstain.precision": p, "abstain.recall": r, "abstain.f1": f}


def _person_ref(p: Any) -> tuple[str, str]:
    """(normalised name, lower-case email) of a name string or a {name, email} mapping / object."""
    if isinstance(p, str):
        return normalize_name(p), ""
    get = p.get if isinstance(p, dict) else (lambda k, d=None: getattr(p, k, d))
    return normalize_name(str(get("name") or "")), str(get("email") or "").strip().lower()


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


def _norm(text: str) -> str:
    """Facts match case-insensitively, whitespace-normalised (NFC, ’ → ', no markdown emphasis)."""
    text = unicodedata.normalize("NFC", text).replace("\u2019", "'").replace("\u00a0", " ")
    text = text.replace("**", "").replace("`", "")
    return " ".join(text.casefold().split())


def fact_hits(facts: list[str], text: str) -> list[bool]:
    t = _norm(text)
    return [_norm(f) in t for f in facts]


def ranked_docs(hits, depth: int) -> list[tuple[str, float]]:
    """(doc_id, score) of the first `depth` distinct documents of `hits`; a document ranks where its best chunk does."""
    out: dict[str, float] = {}
    for h in hits:
        d = h.row["doc_id"]
        if d not in out:
            out[d] = float(h.score)
            if len(out) >= depth:
                break
    return list(out.items())
