"""Evaluation: gold question suites, retrieval / people / answer metrics, reports, calibration, BEIR, the gate.

    from askcolleague.answer import Assistant
    from askcolleague.evaluation import load_suite, evaluate

    suite = load_suite("eval/demo.yaml")
    report = evaluate(Assistant.from_index("indexes/default"), suite)
    print(report.table())
    report.write("eval/reports/today")   # json, md, html, png plots, TREC runs + qrels, .meta.json

suite (gold suites) -> runner (every question in every mode) -> metrics, support (citations),
calibration (abstain threshold) -> report (files) -> gate (minimums); beir runs a BEIR dataset.
"""
from .beir import BEIR_FILE, BEIR_METRICS, PUBLISHED, PUBLISHED_SOURCES, beir_doc_id, evaluate_beir, read_beir
from .calibration import (
    Calibration, best_passage_cosine, calibrate_abstention, choose_threshold, current_threshold, question_vectors,
)
from .gate import check_thresholds, load_thresholds
from .metrics import (
    ATTRIBUTION_METRICS, DEPTH, DOC_METRICS, LABELS, MODES, PEOPLE_METRICS, abstention_metrics, answer_view,
    attribution_metrics, attribution_result, fact_hits, percentiles, ranking_metrics, same_person,
)
from .report import Report, code_version, default_out_dir, plot, render_html, render_markdown, run_meta, write_trec
from .runner import evaluate
from .suite import (
    QUESTION_KEYS, SUITE_KEYS, TYPES, Question, Suite, SuiteError, load_suite, parse_suite, suite_warnings,
)
from .support import SupportJudge, split_claims

__all__ = [
    # suite
    "QUESTION_KEYS", "SUITE_KEYS", "TYPES", "Question", "Suite", "SuiteError", "load_suite", "parse_suite",
    "suite_warnings",
    # running
    "evaluate", "evaluate_beir", "read_beir", "beir_doc_id", "BEIR_FILE",
    # metrics
    "MODES", "DEPTH", "DOC_METRICS", "PEOPLE_METRICS", "ATTRIBUTION_METRICS", "BEIR_METRICS", "LABELS",
    "PUBLISHED", "PUBLISHED_SOURCES", "ranking_metrics", "abstention_metrics", "same_person", "answer_view",
    "attribution_result", "attribution_metrics", "percentiles", "fact_hits",
    # citation support
    "SupportJudge", "split_claims",
    # calibration
    "Calibration", "calibrate_abstention", "choose_threshold", "current_threshold", "question_vectors",
    "best_passage_cosine",
    # reports and the gate
    "Report", "write_trec", "plot", "render_markdown", "render_html", "code_version", "run_meta", "default_out_dir",
    "load_thresholds", "check_thresholds",
]
