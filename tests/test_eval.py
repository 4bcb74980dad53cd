"""Evaluation: metrics against hand-computed values, suite validation, report files, BEIR, the regression gate."""
from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys

import pytest
import yaml

from conftest import FIXTURES, ROOT

from askcolleague.errors import ConfigError
from askcolleague.evaluation import (
    ATTRIBUTION_METRICS, MODES, Calibration, Question, Report, SuiteError, abstention_metrics,
    answer_view, attribution_metrics, attribution_result, check_thresholds, choose_threshold, fact_hits, load_suite,
    load_thresholds, parse_suite, ranking_metrics, read_beir, same_person, split_claims, write_trec,
)
from askcolleague.evaluation.runner import _problems

MINI = FIXTURES / "beir" / "mini"
THRESHOLDS = ROOT / "eval" / "thresholds.yaml"


# ------------------------------------------------------------------------------------------
# metrics: ranx against a brute-force reference on a hand-made run

def _ref(gold: set[str], ranked: list[str], metric: str) -> float:
    """trec_eval definitions, written out."""
    name, _, k = metric.partition("@")
    k = int(k) if k else len(ranked)
    top = ranked[:k]
    if name == "recall":
        return len(gold & set(top)) / len(gold)
    if name == "precision":
        return sum(d in gold for d in top) / k
    if name == "hit_rate":
        return float(any(d in gold for d in top))
    if name == "mrr":
        return next((1 / i for i, d in enumerate(top, 1) if d in gold), 0.0)
    if name == "ndcg":
        dcg = sum(1 / math.log2(i + 1) for i, d in enumerate(top, 1) if d in gold)
        idcg = sum(1 / math.log2(i + 1) for i in range(1, min(len(gold), k) + 1))
        return dcg / idcg
    raise ValueError(metric)


QRELS = {"a": {"d1", "d2"}, "b": {"x"}, "c": {"z"}, "d": {"m1", "m2", "m3"}}
RUN = {
    "a": ["d3", "d1", "d4", "d5", "d6", "d2"],  # gold at 2 and 6
    "b": ["x", "y"],  # gold at 1
    "c": ["p", "q", "r"],  # gold missing
    "d": ["m3", "n", "m1", "o", "p", "q", "r", "s", "t", "u", "m2"],  # 3rd gold at 11
}
METRICS = ["recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10", "hit_rate@10", "precision@1", "mrr"]


def test_ranking_metrics_match_brute_force():
    got = ranking_metrics(QRELS, RUN, METRICS)
    for m in METRICS:
        want = sum(_ref(QRELS[q], RUN[q], m) for q in QRELS) / len(QRELS)
        assert got[m] == pytest.approx(want, abs=1e-9), m


def test_ranking_metrics_by_hand():
    got = ranking_metrics(QRELS, RUN, ["recall@5", "mrr@10", "ndcg@10"])
    # recall@5: a 1/2, b 1, c 0, d 2/3
    assert got["recall@5"] == pytest.approx((0.5 + 1 + 0 + 2 / 3) / 4)
    # MRR@10: a 1/2, b 1, c 0, d 1
    assert got["mrr@10"] == pytest.approx(2.5 / 4)
    # nDCG@10 of a: (1/log2 3 + 1/log2 7) / (1 + 1/log2 3); d: (1 + 1/log2 4) / (1 + 1/log2 3 + 1/log2 4)
    a = (1 / math.log2(3) + 1 / math.log2(7)) / (1 + 1 / math.log2(3))
    d = (1 + 0.5) / (1 + 1 / math.log2(3) + 0.5)
    assert got["ndcg@10"] == pytest.approx((a + 1 + 0 + d) / 4)


def test_ranking_metrics_edge_cases():
    # a query missing from the run scores 0; a query without gold is left out
    got = ranking_metrics({"a": {"d1"}, "b": {"x"}, "e": set()}, {"a": ["d1"]}, ["recall@1"])
    assert got["recall@1"] == pytest.approx(0.5)
    assert ranking_metrics({"e": set()}, {"e": ["x"]}, ["recall@1"]) == {}


def test_abstention_metrics_and_threshold():
    m = abstention_metrics([(True, True), (True, False), (False, True), (False, False), (True, True)])
    assert m["abstain.precision"] == pytest.approx(2 / 3)
    assert m["abstain.recall"] == pytest.approx(2 / 3)
    assert m["abstain.f1"] == pytest.approx(2 / 3)
    # (unanswerable, best cosine, forced): perfectly separable between 0.40 and 0.50
    items = [(True, 0.30, False), (True, 0.40, False), (False, 0.50, False), (False, 0.70, False),
             (True, 0.65, True)]
    t, (lo, hi), (p, r, f) = choose_threshold(items)
    assert lo == pytest.approx(0.40) and hi == pytest.approx(0.50) and t == pytest.approx(0.45)
    assert (p, r, f) == (1.0, 1.0, 1.0)
    # an answerable question answered at every threshold (a passage states its amount): best cosine inf
    t, (lo, hi), (p, r, f) = choose_threshold(items + [(False, float("inf"), False)])
    assert t == pytest.approx(0.45) and (p, r, f) == (1.0, 1.0, 1.0)


def test_calibration_signal_is_what_ask_searches():
    from askcolleague.evaluation.calibration import ask_query

    assert ask_query("Who proposed running the old and the new cache side by side?") == \
        "running the old and the new cache side by side"
    assert ask_query("How do I request a new laptop?") == "How do I request a new laptop?"


def test_split_claims_and_facts():
    text = "Laptops are refreshed every 3 years. [1] Order in ServiceDesk. [2][3] A closing remark."
    assert split_claims(text) == [("Laptops are refreshed every 3 years.", [1]),
                                  ("Order in ServiceDesk.", [2, 3]), ("A closing remark.", [])]
    assert split_claims("Alpha beta. Gamma delta [1, 2-3].") == [("Alpha beta.", []), ("Gamma delta", [1, 2, 3])]
    # a table row quoted alone is a claim of its own, not merged into the sentence before it
    assert split_claims("Drains take 15 minutes. [1] P1 | Robots stopped | 30 minutes [2]") == \
        [("Drains take 15 minutes.", [1]), ("P1 | Robots stopped | 30 minutes", [2])]
    assert fact_hits(["ThinkPad T14", "32 GB  RAM", "missing"], "a **thinkpad t14** with 32 GB\nRAM") == \
        [True, True, False]


# ------------------------------------------------------------------------------------------
# suite validation

def _q(**kw):
    base = {"id": "q1", "question": "How?", "type": "answerable", "docs": ["demo/a.md"]}
    base.update(kw)
    return {k: v for k, v in base.items() if v is not ...}


@pytest.mark.parametrize("question, needle", [
    (_q(type="answerble"), "q1: type 'answerble' is not one of"),
    (_q(docs=[]), "q1: a answerable question lists no gold `docs`"),
    (_q(docs="demo/a.md"), "q1: `docs` must be a list; write docs: ['demo/a.md']"),
    (_q(doc=["x"]), "q1: unknown key 'doc'; did you mean 'docs'?"),
    (_q(question=""), "q1: `question` is missing or empty"),
    (_q(type="unanswerable"), "q1: an unanswerable question lists `docs`; empty it or change the type"),
    (_q(type="multi"), "q1: a multi question needs at least two `docs`"),
    (_q(type="people", people=[]), "q1: a people question needs at least one name"),
    (_q(facts=["x", "x"]), "q1: `facts` lists 'x' twice"),
    (_q(id=...), "question #1 has no `id`"),
    (_q(type="attribution", people=[]), "q1: an attribution question needs the expected author as people[0]"),
    (_q(type="attribution", people=["Ann Smith"], origin="Bob Stone"),
     "q1: `origin` 'Bob Stone' must also be the expected author, people[0] (now 'Ann Smith')"),
    (_q(type="attribution", people=["Ann Smith"], echoes=["ann  SMITH"]),
     "q1: 'Ann Smith' is both the expected author (people[0]) and in `echoes`"),
    (_q(type="attribution", people=["Ann Smith"], origin=["Ann Smith"]), "q1: `origin` must be one name"),
    (_q(type="attribution", people=["Ann Smith"], echoes="Bob Stone"), "q1: `echoes` must be a list"),
    (_q(origin="Ann Smith"), "q1: `origin` is only for attribution questions"),
    (_q(type="people", people=["Ann Smith"], echoes=["Bob Stone"]), "q1: `echoes` is only for attribution questions"),
    (_q(echos=["Bob Stone"]), "q1: unknown key 'echos'; did you mean 'echoes'?"),
])
def test_suite_validation_errors(question, needle):
    with pytest.raises(SuiteError) as e:
        parse_suite({"version": 1, "questions": [question]}, "s.yaml")
    msg = str(e.value)
    assert needle in msg and msg.startswith("s.yaml: ") and "\n" not in msg


def test_suite_level_errors(tmp_path):
    with pytest.raises(SuiteError, match="duplicate id"):
        parse_suite({"questions": [_q(), _q()]})
    with pytest.raises(SuiteError, match="version 2 is not supported"):
        parse_suite({"version": 2, "questions": [_q()]})
    with pytest.raises(SuiteError, match="no `questions:` list"):
        parse_suite({"version": 1})
    with pytest.raises(SuiteError, match="unknown top-level key 'question'"):
        parse_suite({"question": []})
    bad = tmp_path / "bad.yaml"
    bad.write_text("questions: [\n")
    with pytest.raises(SuiteError, match="not valid YAML"):
        load_suite(bad)
    with pytest.raises(SuiteError, match="cannot read the suite"):
        load_suite(tmp_path / "missing.yaml")


def test_attribution_fields_parse_and_old_suites_stay_valid():
    s = parse_suite({"version": 1, "questions": [
        _q(),  # a suite written before attribution questions existed
        _q(id="a1", type="attribution", docs=["demo/t.jsonl#t1"], people=["Ann Smith", "Carl Diaz"],
           origin="ann smith", echoes=["Bob Stone"]),
        _q(id="a2", type="attribution", docs=["demo/t.jsonl#t1"], people=["Bob Stone"])]}, "s.yaml")
    old, a1, a2 = s.questions
    assert (old.origin, old.echoes, old.expected_author) == (None, [], None)
    assert (a1.expected_author, a1.origin, a1.echoes) == ("Ann Smith", "ann smith", ["Bob Stone"])
    assert (a2.expected_author, a2.origin, a2.echoes) == ("Bob Stone", None, [])
    assert s.counts()["attribution"] == 2


def test_demo_suite_loads():
    s = load_suite(ROOT / "eval" / "demo.yaml")
    c = s.counts()
    assert c["answerable"] >= 26 and c["multi"] >= 5 and c["people"] >= 7 and c["unanswerable"] >= 10
    assert len({q.id for q in s.questions}) == len(s.questions) and s.sha256
    attribution = s.of_type("attribution")
    assert c["attribution"] >= 15 and all(q.people for q in attribution)
    assert len([q for q in attribution if q.origin]) >= 5 and len([q for q in attribution if q.echoes]) >= 5


def test_check_eval_validates_the_demo_suite():
    """ingest/tools/check_eval.py: facts in the gold docs, people in people.yaml, authors wrote in the gold docs."""
    proc = subprocess.run([sys.executable, str(ROOT / "ingest" / "tools" / "check_eval.py")], capture_output=True,
                          text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "attribution" in proc.stdout and "0 problem(s)" in proc.stdout


# ------------------------------------------------------------------------------------------
# attribution metrics on hand-made answers

KENJI = {"name": "Kenji Watanabe", "email": "kenji.watanabe@northwind.example"}
LENA = {"name": "Lena Vogel", "email": "lena.vogel@northwind.example"}
MEI = {"name": "Mei Tanaka", "email": "mei.tanaka@northwind.example"}
OLU = {"name": "Olu Adeyemi", "email": "olumide.adeyemi@northwind.example"}  # as seen in a source, not the profile


def _answer(people, citations, abstained=False) -> dict:
    """A hand-made Answer.to_dict(): people best first; citations as lists of authors, numbered from 1."""
    return {"abstained": abstained, "people": [dict(p, score=1.0) for p in people],
            "citations": [{"n": n, "doc_id": f"d{n}", "authors": authors} for n, authors in enumerate(citations, 1)]}


BANNER = Question("a1", "Who first suggested a warning banner on stale wiki pages?", "attribution", ["d"],
                  ["Kenji Watanabe"], origin="Kenji Watanabe", echoes=["Priya Raman", "Mei Tanaka"])
MACROS = Question("a2", "Who asked about the Zendesk macros?", "attribution", ["d"], ["Emily O'Brien"])
LAPTOP = Question("q1", "How do I request a new laptop?", "answerable", ["d"], ["Priya Raman"])


def test_same_person_by_email_or_normalised_name():
    assert same_person(OLU, {"name": "Olumide Adeyemi", "email": "Olumide.Adeyemi@northwind.example"})
    assert same_person("José Álvarez", {"name": "jose  alvarez", "email": None})
    assert same_person("Watanabe, Kenji", KENJI)
    assert not same_person(KENJI, LENA) and not same_person({"name": "", "email": ""}, {"name": "", "email": ""})


@pytest.mark.parametrize("answer, want", [
    # the origin on top and author of [1]: everything right
    (_answer([KENJI, LENA], [[KENJI], [LENA]]), {"p1": True, "origin": True, "agree": True}),
    # the prolific post author on top; she wrote [2], so people and citations agree, but the attribution is wrong
    (_answer([LENA, KENJI], [[MEI], [LENA]]), {"p1": False, "origin": False, "agree": True}),
    # the right person on top, but [1] is an echo's comment: not the origin's own words first
    (_answer([KENJI], [[MEI], [KENJI]]), {"p1": True, "origin": False, "agree": True}),
    # the right person on top, and no citation at all (e.g. an abstention): only the top person counts
    (_answer([KENJI], [], abstained=True), {"p1": True, "origin": True, "agree": None}),
    # an echo on top, cited passages by someone else: nothing agrees
    (_answer([MEI], [[LENA]]), {"p1": False, "origin": False, "agree": False}),
    # nobody suggested
    (_answer([], [[KENJI]]), {"p1": False, "origin": False, "agree": False}),
])
def test_attribution_result(answer, want):
    r = attribution_result(BANNER, answer_view(answer))
    assert {k: r[k] for k in want} == want
    assert r["top_is_echo"] == (bool(answer["people"]) and answer["people"][0]["name"] == MEI["name"])


def test_attribution_metrics_by_hand():
    results = [
        (BANNER, attribution_result(BANNER, answer_view(_answer([KENJI, LENA], [[KENJI]])))),   # p1 1, origin 1, agree 1
        (BANNER, attribution_result(BANNER, answer_view(_answer([LENA], [[MEI], [LENA]])))),    # p1 0, origin 0, agree 1
        (MACROS, attribution_result(MACROS, answer_view(_answer([LENA], [[LENA]])))),            # p1 0, -, agree 1
        (MACROS, attribution_result(MACROS, answer_view(_answer([LENA], [], abstained=True)))),  # p1 0, -, -
        (LAPTOP, attribution_result(LAPTOP, answer_view(_answer([LENA], [[KENJI]])))),           # agree 0 (all only)
        (LAPTOP, attribution_result(LAPTOP, answer_view(_answer([], [], abstained=True)))),      # nothing
    ]
    m = attribution_metrics(results)
    assert set(m) == {*ATTRIBUTION_METRICS, "people.agree_with_citations"}
    assert m["attribution.p@1"] == pytest.approx(1 / 4)
    assert m["attribution.origin_accuracy"] == pytest.approx(1 / 2)
    assert m["attribution.people_agree"] == pytest.approx(3 / 3)
    assert m["people.agree_with_citations"] == pytest.approx(3 / 4)
    # no attribution question: only the general health metric; nothing answered: nothing at all
    assert set(attribution_metrics(results[4:])) == {"people.agree_with_citations"}
    assert attribution_metrics(results[5:]) == {}


def test_answer_view_reads_an_answer_object():
    class Cite:
        def __init__(self, n, authors):
            self.n, self.authors = n, authors

    class Ans:
        def to_dict(self):
            return {"abstained": False, "people": [dict(OLU, score=2.0, evidence=[])],
                    "citations": [{"n": 2, "doc_id": "b", "authors": [LENA]}, {"n": 1, "doc_id": "a", "authors": [OLU]}]}

    v = answer_view(Ans())
    assert [c["n"] for c in v["citations"]] == [1, 2] and v["people"] == [OLU]


def _row(q: Question, answer: dict) -> dict:
    return {"abstained": answer["abstained"], "answer": "…", "cited": [{"doc_id": c["doc_id"]} for c in answer["citations"]],
            "people": [p["name"] for p in answer["people"]], "first_gold_rank": 1, "facts_in_cited": [],
            "attribution": attribution_result(q, answer_view(answer))}


def test_attribution_failures_are_reported():
    got = _problems(BANNER, _row(BANNER, _answer([MEI, KENJI], [[LENA]])), ["d"])
    kinds = {p["kind"]: p for p in got}
    assert set(kinds) == {"attribution", "origin", "people-vs-citations"}
    assert kinds["attribution"]["expected"] == "Kenji Watanabe first in the people list"
    assert "Mei Tanaka" in kinds["attribution"]["got"] and "only repeated it" in kinds["attribution"]["got"]
    assert "Kenji Watanabe (the idea's origin)" in kinds["origin"]["expected"]
    assert "'Mei Tanaka'" in kinds["origin"]["got"] and "['Lena Vogel']" in kinds["origin"]["got"]
    assert "cited authors ['Lena Vogel']" in kinds["people-vs-citations"]["got"]
    # right answer: no attribution problem; the generic "people in the top 3" check is not applied to it
    assert _problems(BANNER, _row(BANNER, _answer([KENJI, MEI], [[KENJI]])), ["d"]) == []
    # a non-attribution question: the people-vs-citations check applies too
    laptop = _problems(LAPTOP, _row(LAPTOP, _answer([LENA], [[KENJI]])), ["d"])
    assert [p["kind"] for p in laptop] == ["people", "people-vs-citations"]


# ------------------------------------------------------------------------------------------
# report files

def _tiny_report() -> Report:
    r = Report(title="tiny", modes=["bm25", "hybrid"], metrics={
        "bm25": {"doc.recall@1": 0.5, "doc.ndcg@10": 0.7, "people.agree_with_citations": 0.6,
                 "attribution.p@1": 0.25, "attribution.origin_accuracy": 0.0, "attribution.people_agree": 0.5,
                 "abstain.f1": 0.4},
        "hybrid": {"doc.recall@1": 1.0, "doc.ndcg@10": 0.9, "people.agree_with_citations": 0.9,
                   "attribution.p@1": 0.75, "attribution.origin_accuracy": 0.5, "attribution.people_agree": 1.0,
                   "abstain.f1": 0.8}},
        counts={"doc": 2, "attribution": 4, "abstain": 3})
    r.runs = {m: {"q1": [("demo/a b.md", 0.9), ("demo/c.md", 0.95)], "q2": [("demo/c.md", 0.2)]} for m in r.modes}
    r.qrels = {"q1": {"demo/a b.md": 1}, "q2": {"demo/d.md": 1}}
    r.latency = {m: {"total": {"p50": 10.0, "p95": 20.0, "mean": 12.0, "n": 2}} for m in r.modes}
    r.failures = {"bm25": [{"id": "q2", "type": "answerable", "question": "Why <b>?",
                            "problems": [{"kind": "retrieval", "expected": "demo/d.md", "got": "demo/c.md"}]},
                           {"id": "a1", "type": "attribution", "question": "Who said it?",
                            "problems": [{"kind": "attribution", "expected": "Kenji Watanabe first in the people list",
                                          "got": "['Lena Vogel']"}]}],
                  "hybrid": []}
    r.calibration = {"hybrid": Calibration("hybrid", 0.45, 0.8, 0.8, 0.8, (0.44, 0.46), [], 0.35, 0.7)}
    r.config = {"suite": "tiny.yaml", "k": 8}
    r.index_manifest = {"model": {"id": "m", "dim": 3}}
    return r


def test_trec_files(tmp_path):
    files = write_trec(_tiny_report(), tmp_path)
    assert set(files) == {"run.bm25", "run.hybrid", "qrels"}
    lines = (tmp_path / "run.hybrid.trec").read_text().splitlines()
    assert lines[0] == "q1 Q0 demo/a%20b.md 1 2 askcolleague-hybrid"
    for line in lines:
        qid, q0, doc, rank, score, tag = line.split()
        assert q0 == "Q0" and int(rank) >= 1 and float(score) > 0 and tag == "askcolleague-hybrid"
    # scores fall with rank (trec_eval sorts by score), whatever the fused scores were
    q1 = [line.split() for line in lines if line.startswith("q1 ")]
    assert [int(x[3]) for x in q1] == [1, 2] and float(q1[0][4]) > float(q1[1][4])
    assert (tmp_path / "qrels.trec").read_text().splitlines() == ["q1 0 demo/a%20b.md 1", "q2 0 demo/d.md 1"]


def test_report_files(tmp_path):
    r = _tiny_report()
    files = r.write(tmp_path / "out", command=["askcolleague", "eval"])
    for name in ("report.json", "report.md", "report.html", "report.meta.json", "metrics.png", "latency.png",
                 "run.bm25.trec", "run.hybrid.trec", "qrels.trec"):
        assert (tmp_path / "out" / name).is_file() and (tmp_path / "out" / name).stat().st_size > 0, name
    assert (tmp_path / "out" / "metrics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads(files["json"].read_text())
    assert data["metrics"]["hybrid"]["doc.recall@1"] == 1.0 and data["calibration"]["hybrid"]["threshold"] == 0.45
    meta = json.loads(files["meta"].read_text())
    assert meta["command"] == ["askcolleague", "eval"] and meta["code"]["askcolleague"]
    assert meta["model"] == {"id": "m", "dim": 3} and meta["config"]["k"] == 8
    md = files["md"].read_text()
    assert "| Recall@1 (docs) | 0.500 | 1.000 |" in md and "![metrics per mode](metrics.png)" in md
    assert "**q2**" in md and "retrieval: expected demo/d.md; got demo/c.md" in md
    assert "| P@1 (attribution) | 0.250 | 0.750 |" in md and "| Origin accuracy (attribution) | 0.000 | 0.500 |" in md
    assert "| People agree with citations (all answered) | 0.600 | 0.900 |" in md
    assert "**a1** (attribution)" in md and "attribution: expected Kenji Watanabe first in the people list" in md
    assert data["metrics"]["bm25"]["attribution.people_agree"] == 0.5
    page = files["html"].read_text()
    assert "data:image/png;base64," in page and "Why &lt;b&gt;?" in page
    assert "<td>P@1 (attribution)</td><td>0.250</td><td>0.750</td>" in page
    table = r.table()
    assert "Recall@1 (docs)" in table and "0.500" in table and "1.000" in table and "calibration:" in table
    assert "[attribution] (4 questions)" in table and "Origin accuracy (attribution)" in table


def test_thresholds_gate(tmp_path):
    r = _tiny_report()
    gate = {"metrics": {"bm25": {"doc.recall@1": 0.6, "doc.ndcg@10": 0.5}, "hybrid": {"people.mrr": 0.1},
                        "dense": {"doc.recall@1": 0.9}}}
    assert check_thresholds(r, gate) == ["bm25 doc.recall@1 = 0.500 < 0.600",
                                         "hybrid people.mrr: not measured (minimum 0.1)"]
    p = tmp_path / "t.yaml"
    p.write_text("metrics:\n  hybird:\n    doc.recall@1: 0.5\n")
    with pytest.raises(ConfigError, match="hybird"):
        load_thresholds(p)
    p.write_text("abstain_threshold: high\nmetrics: {}\n")
    with pytest.raises(ConfigError, match="abstain_threshold must be a number or `calibrated`"):
        load_thresholds(p)
    t = load_thresholds(THRESHOLDS)
    assert set(t["metrics"]) == set(MODES)
    assert all(0 <= v <= 1 for m in t["metrics"].values() for v in m.values())
    for mode in MODES:  # the attribution metrics are gated like the others
        assert {*ATTRIBUTION_METRICS, "people.agree_with_citations"} <= set(t["metrics"][mode]), mode


# ------------------------------------------------------------------------------------------
# BEIR

def test_read_beir_mini_and_errors(tmp_path):
    corpus, queries, qrels = read_beir(MINI)
    assert len(corpus) == 40 and len(queries) == 10 and sum(len(v) for v in qrels.values()) == 13
    bad = tmp_path / "bad"
    shutil.copytree(MINI, bad)
    (bad / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq99\td01\t1\n")
    with pytest.raises(ConfigError, match="query 'q99' is not in queries.jsonl"):
        read_beir(bad)
    (bad / "corpus.jsonl").write_text('{"_id": "d1"}\n')
    with pytest.raises(ConfigError, match="line 1 has no 'text'"):
        read_beir(bad)


@pytest.mark.slow
def test_beir_mini(real_embedder, tmp_path):
    from askcolleague.evaluation import evaluate_beir

    data = tmp_path / "scifact"  # named like SciFact: the published numbers are printed beside ours
    shutil.copytree(MINI, data)
    r = evaluate_beir(data, MODES, real_embedder)
    assert r.modes == list(MODES) and "hybrid" in r.metrics
    for m in MODES:
        assert 0.0 <= r.metrics[m]["doc.ndcg@10"] <= 1.0 and 0.0 <= r.metrics[m]["doc.recall@100"] <= 1.0
    # easy hand-made queries: every mode finds most of the gold documents
    assert r.metrics["hybrid"]["doc.ndcg@10"] > 0.8 and r.metrics["hybrid"]["doc.recall@100"] > 0.9
    # index doc ids are mapped back to BEIR ids
    assert r.runs["dense"]["q1"][0][0] == "d01"
    assert r.published["bm25"]["ndcg@10"] == 0.665 and "0.665" in r.table() and "published" in r.table()
    files = r.write(tmp_path / "out")
    assert files["run.hybrid"].read_text().startswith("q")
    assert json.loads(files["meta"].read_text())["index"]["counts"]["documents"] == 40


@pytest.mark.slow
def test_cli_beir(tmp_path):
    out = tmp_path / "rep"
    proc = subprocess.run([sys.executable, "-m", "askcolleague", "eval", "--beir", str(MINI), "--modes", "bm25,hybrid",
                           "--out", str(out), "--json"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(proc.stdout)
    assert set(data["metrics"]) == {"bm25", "hybrid"} and "doc.ndcg@10" in data["metrics"]["hybrid"]
    assert (out / "report.html").is_file() and (out / "run.bm25.trec").is_file()


# ------------------------------------------------------------------------------------------
# answers: the citation support rule (real model)

@pytest.mark.slow
def test_support_judge(real_embedder):
    from askcolleague.evaluation import SupportJudge

    j = SupportJudge(real_embedder)
    laptop = ("Laptops are refreshed every 3 years. ServiceDesk opens a refresh ticket six weeks before.",
              "Requesting a Laptop")
    pto = ("Employees in Berlin get 28 vacation days per year.", "Paid Time Off")
    assert j.supported("Laptops are refreshed every 3 years.", [laptop])
    assert not j.supported("Laptops are refreshed every 4 years.", [laptop])  # a number the passage lacks
    assert not j.supported("Employees in Berlin get 28 vacation days per year.", [laptop])
    res = j.judge("Laptops are refreshed every 3 years. [1][2] Berlin staff get 28 vacation days per year. [2] "
                  "The moon is made of cheese.", {1: laptop, 2: pto})
    # claims: 1 supported (by [1]; [2] is irrelevant to it), 2 supported, 3 cites nothing
    assert res["claims"] == 3 and res["supported"] == 2 and res["recall"] == pytest.approx(2 / 3)
    assert res["citations"] == 3 and res["relevant"] == 2 and res["precision"] == pytest.approx(2 / 3)
    assert res["irrelevant"] == [("Laptops are refreshed every 3 years.", 2)]


# ------------------------------------------------------------------------------------------
# the demo suite: regression gate

@pytest.fixture(scope="module")
def demo_report(demo_index, real_embedder):
    from askcolleague.answer import Assistant
    from askcolleague.evaluation import evaluate
    from askcolleague.settings import Settings

    gate = load_thresholds(THRESHOLDS)
    asst = Assistant.from_index(demo_index, Settings.load(), embedder=real_embedder)
    suite = load_suite(ROOT / "eval" / "demo.yaml")
    return evaluate(asst, suite, MODES, abstain_threshold=gate.get("abstain_threshold")), gate


@pytest.mark.slow
def test_demo_gate(demo_report, tmp_path):
    report, gate = demo_report
    print(report.table())
    files = report.write(tmp_path / "demo")
    below = check_thresholds(report, gate)
    fails = {m: [f["id"] for f in report.failures[m]] for m in report.modes}
    assert not below, f"metrics below eval/thresholds.yaml: {below}; questions with problems: {fails}; " \
                      f"report: {files['md']}"


@pytest.mark.slow
def test_demo_report_contents(demo_report, tmp_path):
    report, _ = demo_report
    assert not report.warnings, report.warnings  # every gold doc and person is in the index
    assert set(report.calibration) >= {"hybrid", "dense"}
    cal = report.calibration["hybrid"]
    assert 0.0 < cal.threshold < 1.0 and cal.f1 >= cal.current_f1
    assert report.config["abstain_threshold"] == cal.threshold
    suite = load_suite(ROOT / "eval" / "demo.yaml")
    # attribution questions have their own people metrics; the expert-finding ones cover the rest
    assert report.counts["attribution"] == len(suite.of_type("attribution"))
    assert report.counts["people"] == len([q for q in suite.questions if q.people and q.type != "attribution"])
    for m in MODES:
        assert {*ATTRIBUTION_METRICS, "people.agree_with_citations"} <= set(report.metrics[m])
        assert all(0.0 <= report.metrics[m][k] <= 1.0 for k in ATTRIBUTION_METRICS)
        rows = report.questions[m]
        assert len(rows) == len(suite.questions)
        attr = {r["id"]: r["attribution"] for r in rows if r["type"] == "attribution"}
        want = sum(a["p1"] for a in attr.values()) / len(attr)
        assert report.metrics[m]["attribution.p@1"] == pytest.approx(want)
        kinds = {p["kind"] for f in report.failures[m] for p in f["problems"]}
        if report.metrics[m]["attribution.p@1"] < 1.0:
            assert "attribution" in kinds
        assert {"retrieve", "answer", "people", "total"} <= set(report.latency[m])
        assert all(r["timings_ms"] for r in rows)
    files = write_trec(report, tmp_path)
    n_gold = sum(len(v) for v in report.qrels.values())
    assert len((tmp_path / "qrels.trec").read_text().splitlines()) == n_gold
    first = (tmp_path / "run.hybrid.trec").read_text().splitlines()[0].split()
    assert len(first) == 6 and first[1] == "Q0" and first[3] == "1"
    assert set(files) >= {"run.bm25", "run.dense", "run.hybrid", "qrels"}


@pytest.mark.slow
def test_cli_eval_check_fails_below_threshold(demo_index, tmp_path):
    suite = tmp_path / "tiny.yaml"
    suite.write_text(yaml.safe_dump({"version": 1, "questions": [
        {"id": "t1", "question": "How do I request a new laptop?", "type": "answerable",
         "docs": ["demo/it/laptop-requests.md"], "people": ["Priya Raman"], "facts": ["ServiceDesk"]},
        {"id": "t2", "question": "Can I bring my dog to the office?", "type": "unanswerable"}]}))
    gate = tmp_path / "gate.yaml"
    gate.write_text("metrics:\n  hybrid:\n    doc.recall@10: 0.5\n    doc.ndcg@10: 1.01\n")
    out = tmp_path / "rep"
    proc = subprocess.run([sys.executable, "-m", "askcolleague", "eval", "--index", str(demo_index), "--suite",
                           str(suite), "--modes", "hybrid", "--out", str(out), "--check", str(gate)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "below threshold: hybrid doc.ndcg@10 = 1.000 < 1.010" in proc.stderr
    assert "Recall@10 (docs)" in proc.stdout and (out / "report.md").is_file()
