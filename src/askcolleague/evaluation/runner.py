"""Running a gold suite: every question in every mode, retrieval to depth and the full `ask`, into a `Report`."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from ..errors import ConfigError
from ..index import backend_for
from ..models import normalize_name
from ..settings import Settings
from .calibration import Calibration, calibrate_abstention, current_threshold, question_vectors
from .metrics import (
    DEPTH, DOC_METRICS, MODES, PEOPLE_METRICS, abstention_metrics, answer_view, attribution_metrics, attribution_result,
    fact_hits, percentiles, ranked_docs, ranx_eval,
)
from .report import Report
from .suite import Question, Suite, suite_warnings
from .support import SupportJudge


def _settings_with(settings, **overrides):
    return Settings({**settings.values, **{k: v for k, v in overrides.items() if v is not None}})


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
    try:
        report.index_manifest = backend_for(assistant.index.path).status(assistant.index.path)
    except Exception:  # noqa: BLE001 - an index opened some other way: use its manifest
        report.index_manifest = dict(assistant.index.manifest)
    doc_ids = assistant.index.store.doc_ids()
    report.warnings = suite_warnings(suite, doc_ids, [p.name for p in assistant.index.store.people()])
    report.notes.append("LLM-judged faithfulness and answer relevancy (RAGAS) are not computed: no judge model "
                        "is available offline and each needs several LLM calls per question; citation "
                        "recall/precision (embedding + lexical support rule) stand in for faithfulness.")
    report.calibration = calibrations

    report.qrels = {q.id: {d: 1 for d in q.docs} for q in suite.questions if q.docs}
    report.chunk_qrels = {q.id: {c: 1 for c in q.chunks} for q in suite.questions if q.chunks}
    # attribution questions ("who said X") are scored by the attribution metrics, where people[0] is the one
    # right answer, not by the expert-finding metrics (any listed person counts)
    people_qrels = {q.id: {normalize_name(p): 1 for p in q.people} for q in suite.questions
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
        runs[q.id] = ranked_docs(hits, depth)
        chunk_runs[q.id] = [(h.row["chunk_id"], float(h.score)) for h in hits[:depth]]
        ans = assistant.ask(q.question, k=k, mode=mode, llm=llm)
        for stage, ms in ans.timings_ms.items():
            lat.setdefault(stage, []).append(ms)
        lat.setdefault("search@depth", []).append(search_ms)
        people_run[q.id] = [normalize_name(p.name) for p in ans.people]
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
    mean, per_q = ranx_eval(report.qrels, {qid: [d for d, _ in r] for qid, r in runs.items()}, DOC_METRICS)
    metrics.update({f"doc.{m}": v for m, v in mean.items()})
    if report.chunk_qrels:
        mean_c, _ = ranx_eval(report.chunk_qrels, {qid: [c for c, _ in r] for qid, r in chunk_runs.items()},
                               DOC_METRICS)
        metrics.update({f"chunk.{m}": v for m, v in mean_c.items()})
    mean_p, per_qp = ranx_eval(people_qrels, people_run, PEOPLE_METRICS)
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
        gold = {normalize_name(p) for p in q.people}
        if not gold & {normalize_name(p) for p in row["people"][:3]}:
            out.append({"kind": "people", "expected": f"one of {q.people} in the top 3",
                        "got": f"{row['people'][:3]}"})
    if a.get("agree") is False:
        out.append({"kind": "people-vs-citations", "expected": "the top person among the cited passages' authors",
                    "got": f"top {a.get('top')!r}; cited authors {a.get('cited_authors')}"})
    return out
