"""Rank fusion: reciprocal rank fusion of several ranked runs."""
from __future__ import annotations

from typing import Hashable, Sequence


def reciprocal_rank_fusion(runs: Sequence[Sequence[Hashable]], rrf_k: int = 60) -> list[tuple[Hashable, float]]:
    """Fuse ranked lists of ids: score(d) = Σ_runs 1 / (rrf_k + rank(d)), ranks starting at 1.

    Cormack, Clarke & Büttcher (SIGIR 2009). ``rrf_k`` (60 in the paper, our default) damps the
    weight of top ranks so that agreement between runs matters more than one run's first place;
    it is not a cut-off — every id in every run is scored. Ties keep first-seen order.
    """
    scores: dict[Hashable, float] = {}
    for run in runs:
        for rank, doc in enumerate(run, start=1):
            scores[doc] = scores.get(doc, 0.0) + 1.0 / (rrf_k + rank)
    return sorted(scores.items(), key=lambda kv: -kv[1])
