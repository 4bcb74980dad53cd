"""Reciprocal rank fusion against a brute-force reference."""
from __future__ import annotations

import random

from askcolleague.search.fusion import reciprocal_rank_fusion


def _reference(runs, k):
    ids = {d for r in runs for d in r}
    return {d: sum(1 / (k + r.index(d) + 1) for r in runs if d in r) for d in ids}


def test_rrf_matches_reference():
    rng = random.Random(7)
    for _ in range(50):
        runs = [rng.sample(range(40), rng.randint(0, 25)) for _ in range(rng.randint(1, 3))]
        k = rng.choice([1, 10, 60])
        got = reciprocal_rank_fusion(runs, k)
        ref = _reference(runs, k)
        assert {d for d, _ in got} == set(ref)
        for d, s in got:
            assert abs(s - ref[d]) < 1e-12
        assert [s for _, s in got] == sorted((s for _, s in got), reverse=True)


def test_agreement_beats_single_first_place():
    fused = reciprocal_rank_fusion([["a", "b"], ["c", "b"]], 60)
    assert fused[0][0] == "b"
