"""Shared fixtures: a clean settings environment, a fake embedder, the real model, the demo index."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import fakes  # noqa: F401  (registers the "fake:" test model, as a plugin would)

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
    return fakes.FakeEmbedder()


@pytest.fixture(scope="session")
def real_embedder():
    from askcolleague.embed import get_embedder

    return get_embedder()


@pytest.fixture(scope="session")
def demo_build(tmp_path_factory):
    """The bundled demo corpus indexed once per session through the CLI, with the real model.

    Returns (index path, the build's --json report, its stderr).
    """
    path = tmp_path_factory.mktemp("demo") / "index"
    proc = subprocess.run([sys.executable, "-m", "askcolleague", "index", "build", str(DEMO), "--index", str(path),
                           "--json"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return path, json.loads(proc.stdout), proc.stderr


@pytest.fixture(scope="session")
def demo_index(demo_build):
    """Path of the session's demo index (see demo_build)."""
    return demo_build[0]


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
