"""Abstention calibrated per index: the threshold follows where unrelated questions score on this corpus."""
from __future__ import annotations

import faiss
import numpy as np
import pytest

from askcolleague.index.faiss import FaissVectors
from askcolleague.indexing import calibration
from askcolleague.answer import Assistant
from askcolleague.settings import Settings


class _Const:
    """An embedder whose every probe lands at a chosen cosine to the only indexed vector."""

    def __init__(self, cos: float) -> None:
        self.cos = cos

    def embed_batch(self, texts):
        v = np.zeros((len(texts), 2), dtype=np.float32)
        v[:, 0], v[:, 1] = self.cos, np.sqrt(1 - self.cos ** 2)
        return v


def _index() -> FaissVectors:
    fi = faiss.IndexIDMap2(faiss.IndexFlatIP(2))
    fi.add_with_ids(np.array([[1.0, 0.0]], dtype=np.float32), np.array([0]))
    return FaissVectors(fi)


@pytest.mark.parametrize("cos, want", [(0.10, 0.25), (0.20, 0.35), (0.27, 0.42), (0.60, 0.42), (-0.5, 0.15)])
def test_threshold_follows_the_unrelated_level(cos, want):
    cal = calibration.calibrate(_index(), _Const(cos))
    assert cal["threshold"] == pytest.approx(want, abs=1e-3)
    assert cal["probes"] == len(calibration.OFF_TOPIC) >= 40
    assert cal["off_topic_q95"] == pytest.approx(cos, abs=1e-3)


def test_empty_index_keeps_the_default():
    fi = FaissVectors(faiss.IndexIDMap2(faiss.IndexFlatIP(2)))
    assert calibration.calibrate(fi, _Const(0.1))["threshold"] == calibration.DEFAULT


def test_build_stores_it_and_ask_uses_it(tmp_path, fake_embedder):
    from askcolleague.indexing.build import build
    from askcolleague.index import status

    root = tmp_path / "kb"
    root.mkdir()
    (root / "a.md").write_text("# Parking\n\nThe bike cellar opens at seven and closes at nine every weekday.\n")
    build([root], tmp_path / "idx", embedder=fake_embedder, warn=lambda m: None)
    st = status(tmp_path / "idx")
    cal = st["abstain_calibration"]
    assert 0.15 <= cal["threshold"] <= calibration.DEFAULT and cal["probes"] == len(calibration.OFF_TOPIC)
    auto = Assistant.from_index(tmp_path / "idx", embedder=fake_embedder)
    assert auto.settings.abstain_threshold == "auto" and auto.abstain_threshold == cal["threshold"]
    fixed = Assistant.from_index(tmp_path / "idx", Settings.load(abstain_threshold=0.9), embedder=fake_embedder)
    assert fixed.abstain_threshold == 0.9
    assert fixed.ask("When does the bike cellar open?").abstained
    with pytest.raises(Exception, match="ASKCOLLEAGUE_ABSTAIN_THRESHOLD"):
        import os
        os.environ["ASKCOLLEAGUE_ABSTAIN_THRESHOLD"] = "high"
        try:
            Settings.load()
        finally:
            del os.environ["ASKCOLLEAGUE_ABSTAIN_THRESHOLD"]
