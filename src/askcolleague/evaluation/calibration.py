"""Abstain threshold calibrated on a gold suite: the value that maximises abstention F1 on its questions.

The per-index calibration made at build time (off-topic probes; the `auto` setting) is
`askcolleague.indexing.calibration`; this module chooses a threshold from a suite's answerable and
unanswerable questions, for `askcolleague eval` to report and, with `calibrated`, to use.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable

import numpy as np

from ..answer.questions import question_kind, statement_of
from ..errors import ConfigError
from .metrics import prf
from .suite import Question, Suite


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


def ask_query(question: str) -> str:
    """What `Assistant.ask` searches and embeds for a question: an attribution question's statement."""
    return statement_of(question) if question_kind(question) == "attribution" else question


def _pool(assistant, question: str, mode: str, k: int, qvec: np.ndarray) -> tuple[list, float | None]:
    depth = max(assistant.settings.people_depth, k * 5)
    pool = assistant.retriever.search(question, k=None, mode=mode, depth=depth, qvec=qvec)
    cos = assistant.retriever.cosine(qvec, [h.id for h in pool]) if pool else {}
    return pool, max(cos.values()) if cos else None


def best_passage_cosine(assistant, question: str, mode: str, k: int, qvec: np.ndarray) -> float | None:
    """The abstain signal of `Assistant.ask`: the best cosine to the question of any passage in the pool it
    retrieves for `mode` (its candidates include the pool's passages nearest in meaning, whatever their rank).
    `question` and `qvec`: what ask searches and embeds (`ask_query`)."""
    return _pool(assistant, question, mode, k, qvec)[1]


def _f1_at(items: list[tuple[bool, float | None, bool]], t: float) -> tuple[float, float, float]:
    tp = fp = fn = 0
    for unans, best, forced in items:
        abst = forced or best is None or best < t
        tp += abst and unans
        fp += abst and not unans
        fn += (not abst) and unans
    return prf(tp, fp, fn)


def choose_threshold(items: list[tuple[bool, float | None, bool]]) -> tuple[float, tuple[float, float], tuple]:
    """The threshold maximising F1 over (unanswerable, best cosine, forced to abstain) items (a best
    cosine of inf: answered at every threshold).

    Candidates are the gaps between consecutive best cosines; among equally good gaps the widest
    wins, and the threshold is its midpoint rounded to 2 decimals when that stays inside the gap.
    """
    vals = sorted({round(b, 6) for _, b, forced in items if b is not None and not forced and b != float("inf")})
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
    (the best cosine of its retrieved pool, for what it searches: an attribution question's
    statement). Questions the assistant abstains on regardless of the threshold (a name or a word
    carrying the question that the index never mentions, or no hits) are positives at every
    threshold; those it answers regardless (a top-k passage states the question's amount,
    `Assistant.states_amount`) negatives at every threshold. Needs answerable and unanswerable
    questions. (`qvecs`: the questions' vectors, used where ask embeds the question itself.)
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
        query = ask_query(q.question)
        qvec = qvecs[q.id] if query == q.question else assistant.embedder.embed_batch([query])[0]
        pool, best = _pool(assistant, query, mode, k, qvec)
        forced = bool(assistant.unknown_terms(q.question, query, qvec, hits=pool))
        kept = not forced and best is not None and assistant.states_amount(q.question, pool[:k])
        items.append((q.type == "unanswerable", float("inf") if kept else best, forced))
        scores.append({"id": q.id, "type": q.type, "best_cosine": None if best is None else round(best, 4),
                       "forced": forced, **({"amount": True} if kept else {})})
    t, interval, (p, r, f) = choose_threshold(items)
    cur = current_threshold(assistant)
    return Calibration(mode, t, f, p, r, interval, scores, cur, _f1_at(items, cur)[2])
