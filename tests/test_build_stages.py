"""The build's report of its phases (BuildReport.stages) and the embedding of each distinct text once."""
from __future__ import annotations

import json

import numpy as np
import pytest

from fakes import FakeEmbedder
from askcolleague.index import current_version
from askcolleague.index.faiss import FaissVectors
from askcolleague.index.sqlite import Store
from askcolleague.indexing.build import STAGES, build

BOILERPLATE = ("Security notice: this document is internal. Do not forward it outside the company. "
               "Report a suspected leak to security@acme.test within one hour.")


def _md(title: str, body: str) -> str:
    return f"---\ntitle: {title}\nauthor: Dana Lee <dana@acme.test>\n---\n\n# {title}\n\n{body}\n"


@pytest.fixture
def corpus(tmp_path):
    """Three teams' copies of one boilerplate page (same title, section and text: the same embed text),
    plus two pages of their own."""
    root = tmp_path / "kb"
    for team in ("it", "hr", "finance"):
        (root / team).mkdir(parents=True)
        (root / team / "notice.md").write_text(_md("Security notice", f"## Notice\n\n{BOILERPLATE}"))
    (root / "it" / "laptops.md").write_text(_md(
        "Laptop requests", "## Ordering\n\nRequest a laptop in the ServiceDesk portal. Delivery takes five days."))
    (root / "hr" / "leave.md").write_text(_md(
        "Parental leave", "## Policy\n\nParents get sixteen weeks of paid leave, taken within the first year."))
    return root


class CountingEmbedder(FakeEmbedder):
    """FakeEmbedder that keeps every text it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def _embed(self, texts: list[str]) -> np.ndarray:
        self.seen.extend(texts)
        return super()._embed(texts)


def _stored(path) -> tuple[list[dict], dict[int, np.ndarray]]:
    vdir = current_version(path)
    store = Store(vdir / "store.sqlite", readonly=True)
    rows = store.chunk_rows()
    store.close()
    ids, vecs = FaissVectors.read(vdir).all()
    return rows, {int(i): vecs[k] for k, i in enumerate(ids)}


def test_identical_texts_embedded_once_with_the_same_vectors(corpus, tmp_path):
    emb = CountingEmbedder()
    path = tmp_path / "idx"
    rep = build([corpus], path, embedder=emb, warn=lambda m: None)

    rows, vecs = _stored(path)
    texts = [r["embed_text"] for r in rows]
    distinct = len(set(texts))
    assert rep.chunks == len(rows) and distinct < len(rows)
    assert sum(BOILERPLATE in t for t in texts) == 3  # three chunks, one text
    # each distinct text reached the model once (its other texts are the abstain calibration's probes)
    assert rep.embedded == distinct
    assert sorted(t for t in emb.seen if t in set(texts)) == sorted(set(texts))
    assert rep.deduplicated == len(rows) - distinct == 2
    assert rep.embedded + rep.deduplicated + rep.reused_vectors == rep.chunks
    # and every chunk has exactly the vector it would have had embedded on its own
    alone = FakeEmbedder()
    for r in rows:
        assert np.array_equal(vecs[r["id"]], alone.embed_batch([r["embed_text"]])[0]), r["chunk_id"]

    d = rep.to_dict()
    assert d["deduplicated"] == 2 and "stages" in d and json.dumps(d)
    build_entry = json.loads((current_version(path) / "manifest.json").read_text())["build"]
    assert build_entry["deduplicated"] == 2 and build_entry["embedded"] == distinct


def test_a_copy_of_a_text_embedded_before_is_reused_not_embedded(corpus, tmp_path):
    emb = CountingEmbedder()
    path = tmp_path / "idx"
    build([corpus], path, embedder=emb, warn=lambda m: None)
    (corpus / "legal").mkdir()
    (corpus / "legal" / "notice.md").write_text(_md("Security notice", f"## Notice\n\n{BOILERPLATE}"))
    emb.seen.clear()
    rep = build(None, path, embedder=emb, update=True, warn=lambda m: None)
    assert rep.changed and rep.embedded == 0 and BOILERPLATE not in " ".join(emb.seen)
    assert rep.deduplicated == 0 and rep.reused_vectors == rep.chunks


def test_stages_name_the_phases_in_order(corpus, tmp_path):
    path = tmp_path / "idx"
    rep = build([corpus], path, embedder=FakeEmbedder(), warn=lambda m: None)
    assert list(rep.stages) == [s for s in STAGES if s in rep.stages]
    # (the embedder was given: no model was loaded)
    assert set(rep.stages) == set(STAGES) - {"model"}
    assert all(v >= 0 for v in rep.stages.values())
    # (reading, embedding and writing overlap in a pipeline: each phase's time is within the build's)
    assert max(rep.stages.values()) <= rep.seconds + 0.05
    manifest = json.loads((current_version(path) / "manifest.json").read_text())
    assert set(manifest["build"]["stages"]) == set(STAGES) - {"model", "publish"}

    one = rep.summary(stages=True)
    assert "\n" not in one and one.startswith(rep.summary().rsplit(" (", 1)[0])
    assert "deduplicated 2" in rep.summary()
    assert ":" not in rep.summary().rsplit(" (", 1)[1]  # no phases without stages=True

    # an update with nothing changed stops once the sources' hashes match: nothing parsed or embedded
    up = build(None, path, embedder=FakeEmbedder(), update=True, warn=lambda m: None)
    assert not up.changed and "parse" in up.stages and not {"chunk", "embed", "write"} & set(up.stages)
    assert up.sources_reused == rep.sources_indexed and up.chunks == rep.chunks and up.version == rep.version
