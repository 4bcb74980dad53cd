"""Shared fixtures: a clean settings environment, a fake embedder, the real model, the demo index."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
DEMO = ROOT / "ingest" / "demo"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    """No ASKCOLLEAGUE_* setting from the developer's shell leaks into a test."""
    for k in list(os.environ):
        if k.startswith("ASKCOLLEAGUE_"):
            monkeypatch.delenv(k, raising=False)


@pytest.fixture
def fake_embedder():
    from askcolleague.embedder import FakeEmbedder

    return FakeEmbedder()


@pytest.fixture(scope="session")
def real_embedder():
    from askcolleague.embedder import get_embedder

    return get_embedder()


@pytest.fixture(scope="session")
def demo_index(tmp_path_factory, real_embedder):
    """The bundled demo corpus indexed once per test session with the real model."""
    from askcolleague.index import build

    path = tmp_path_factory.mktemp("demo") / "index"
    report = build([DEMO], path, embedder=real_embedder, warn=lambda m: None)
    assert report.chunks > 100, report.summary()
    return path


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
