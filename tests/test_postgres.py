"""The PostgreSQL + pgvector backend against a real server (tests/conftest.py `pg_server`): every
command on a postgresql:// index, versions published atomically, a killed build, serving processes
following a rebuild, clear errors, and retrieval quality equal to the folder backend's.

The backend's search contract (exact dense search, filters before ranking, BM25 = FTS5) is in
tests/test_backend_contract.py, which runs against both backends."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import DEMO, FIXTURES, ROOT
from fakes import FakeEmbedder, fakes_env

from askcolleague.errors import IndexFormatError, IndexNotFoundError, ModelMismatchError
from askcolleague.index import backend_for, open_index
from askcolleague.indexing.build import build
from askcolleague.search import Filters, Retriever

PASSWORD = "s3cret-Pw-7"


def cli(*args, check=True, env=None):
    p = subprocess.run([sys.executable, "-m", "askcolleague", *args], capture_output=True, text=True, cwd=ROOT,
                       env=env, timeout=900)
    if check:
        assert p.returncode == 0, p.stderr[-3000:]
    return p


def _psql(uri: str, sql: str):
    import psycopg

    from askcolleague.index.postgres import Location

    with psycopg.connect(Location.parse(uri).conninfo, autocommit=True) as c:
        cur = c.execute(sql)
        return cur.fetchall() if cur.description else None


def _kb(root: Path, n: int = 40) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    topics = ["payroll", "kubernetes", "laptops", "travel", "security"]
    for i in range(n):
        t = topics[i % len(topics)]
        groups = "groups: [finance]\n" if i % 4 == 1 else ""
        (root / f"n{i:03d}.md").write_text(f"---\ntitle: {t.title()} note {i}\nauthor: Person {i % 6}\n{groups}---\n\n"
                                           f"# {t.title()}\n\nThe {t} process, step {i}: ask the {t} team first.\n")
    return root


@pytest.fixture
def user_uri(pg_server, pg_uri):
    """pg_uri, as a login role with a password in the URI (the server trusts local sockets, but the
    password must still never be shown)."""
    role = "kb_" + pg_uri.rsplit("schema=", 1)[1][-6:]
    _psql(pg_server, f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'; GRANT CREATE ON DATABASE postgres TO {role}; "
                     "CREATE EXTENSION IF NOT EXISTS vector")
    return pg_uri.replace("postgresql://postgres:@", f"postgresql://{role}:{PASSWORD}@")


@pytest.mark.slow
def test_every_command_works_on_a_postgresql_index(user_uri, demo_build):
    """build, status, ask, people, update, feedback export and forget, through the CLI, with the real model;
    the same chunks as the folder index of the same corpus, and the password shown nowhere."""
    outputs = []
    rep = json.loads(cli("index", "build", str(DEMO), "--index", user_uri, "--json").stdout)
    folder_path, folder_rep, _ = demo_build
    assert rep["chunks"] == folder_rep["chunks"] and rep["docs"] == folder_rep["docs"]
    st = cli("index", "status", "--index", user_uri, "--json")
    status = json.loads(st.stdout)
    assert status["version"] == rep["version"] and status["counts"]["chunks"] == rep["chunks"]
    assert status["store"]["engine"] == "postgresql" and status["bytes"] > 0
    outputs += [st.stdout, st.stderr, json.dumps(rep)]

    q = "Who should I ask about the Kubernetes upgrade?"
    pg = cli("ask", q, "--index", user_uri, "--json", "--no-llm")
    fo = cli("ask", q, "--index", str(folder_path), "--json", "--no-llm")
    a, b = json.loads(pg.stdout), json.loads(fo.stdout)
    assert a["citations"] and [c["chunk_id"] for c in a["citations"]][:2] == [c["chunk_id"] for c in b["citations"]][:2]
    assert a["people"][0]["name"] == b["people"][0]["name"]
    outputs += [pg.stdout, pg.stderr]

    people = cli("people", "list", "--index", user_uri)
    assert people.stdout.strip() and people.stdout == cli("people", "list", "--index", str(folder_path)).stdout
    up = json.loads(cli("index", "update", "--index", user_uri, "--json").stdout)
    assert up["embedded"] == 0 and up["changed"] is False
    assert json.loads(cli("feedback", "export", "--index", user_uri, "--json").stdout) == []

    name = a["people"][0]["name"]
    gone = cli("forget", name, "--yes", "--index", user_uri)
    assert name not in cli("people", "list", "--index", user_uri).stdout
    after = json.loads(cli("index", "status", "--index", user_uri, "--json").stdout)
    assert after["version"] != status["version"] and after["forgotten"] == 1
    outputs += [gone.stdout, gone.stderr]
    assert not any(PASSWORD in o for o in outputs)
    assert "***@" in status["index"]


def test_builds_publish_atomically_and_serving_follows(pg_uri, tmp_path):
    kb = _kb(tmp_path / "kb")
    e = FakeEmbedder()
    first = build([kb], pg_uri, embedder=e, warn=lambda m: None)
    from askcolleague.answer.assistant import LiveAssistant

    live = LiveAssistant(pg_uri)
    old = live.get()
    assert old.index.version == first.version
    hits = old.retriever.search("kubernetes team", k=3, mode="bm25")
    (kb / "n999.md").write_text("---\ntitle: Standing desks\nauthor: Lea Park\n---\n\nStanding desks come with a voucher.\n")
    second = build(None, pg_uri, embedder=e, update=True, warn=lambda m: None)
    assert second.version != first.version and second.embedded == 1 and second.reused_vectors >= 40
    new = live.get()
    assert new.index.version == second.version and new is not old
    assert new.retriever.search("standing desks voucher", k=1, mode="bm25")[0].row["title"] == "Standing desks"
    # the previous version is kept for requests in flight on it
    assert [h.id for h in old.retriever.search("kubernetes team", k=3, mode="bm25")] == [h.id for h in hits]
    third = build(None, pg_uri, embedder=e, update=True, rebuild=True, warn=lambda m: None)
    states = dict(_psql(pg_uri, f"SELECT name, state FROM {pg_uri.rsplit('schema=', 1)[1]}.askc_versions"))
    assert states == {third.version: "live", second.version: "retired"}  # the first one was dropped


def test_a_killed_build_leaves_the_live_version_and_the_next_build_cleans_up(pg_uri, tmp_path):
    kb = _kb(tmp_path / "kb", n=30)
    e = FakeEmbedder()
    first = build([kb], pg_uri, embedder=e, warn=lambda m: None)
    big = _kb(tmp_path / "big", n=3000)
    schema = pg_uri.rsplit("schema=", 1)[1]
    code = ("import sys; from fakes import FakeEmbedder; from askcolleague.indexing.build import build; "
            f"build([{str(big)!r}], {pg_uri!r}, embedder=FakeEmbedder(), rebuild=True, warn=lambda m: None)")
    proc = subprocess.Popen([sys.executable, "-c", code], env=fakes_env(), cwd=ROOT)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            if _psql(pg_uri, f"SELECT 1 FROM {schema}.askc_versions WHERE state = 'building'"):
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the build finished before it could be killed"
        time.sleep(0.3)  # (into the COPY of its rows)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    building = _psql(pg_uri, f"SELECT name FROM {schema}.askc_versions WHERE state = 'building'")
    assert building, "the killed build left no trace to clean up"
    # the live version is untouched and answers
    assert backend_for(pg_uri).live_name(pg_uri) == first.version
    idx = open_index(pg_uri, embedder=e)
    assert idx.store.count("chunks") == 30 and Retriever(idx).search("payroll team", k=3)
    # the next build (which holds the lock) drops the half-written version
    again = build([kb], pg_uri, embedder=e, warn=lambda m: None)
    left = _psql(pg_uri, f"SELECT nspname FROM pg_namespace WHERE nspname LIKE '{schema}_v%'")
    assert {r[0] for r in left} == {f"{schema}_{again.version}", f"{schema}_{first.version}"}
    assert not _psql(pg_uri, f"SELECT 1 FROM {schema}.askc_versions WHERE state = 'building'")


def test_one_build_at_a_time(pg_uri, tmp_path):
    from askcolleague.errors import IndexLockedError

    backend = backend_for(pg_uri)
    with backend.lock(pg_uri):
        with pytest.raises(IndexLockedError, match="another build or update is running"):
            build([_kb(tmp_path / "kb", n=3)], pg_uri, embedder=FakeEmbedder(), warn=lambda m: None)


def test_clear_errors(pg_server, pg_uri, tmp_path):
    with pytest.raises(IndexNotFoundError, match="no index here; build one with"):
        open_index(pg_uri, embedder=FakeEmbedder())
    build([_kb(tmp_path / "kb", n=5)], pg_uri, embedder=FakeEmbedder(), warn=lambda m: None)
    with pytest.raises(ModelMismatchError, match="--rebuild"):
        open_index(pg_uri, embedder=FakeEmbedder(dim=32))
    schema = pg_uri.rsplit("schema=", 1)[1]
    _psql(pg_uri, f"UPDATE {schema}.askc_meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(IndexFormatError, match="schema version 99"):
        open_index(pg_uri, embedder=FakeEmbedder())
    bad = f"postgresql://nobody:{PASSWORD}@/nodb?host={tmp_path}/no-socket-here"
    p = cli("ask", "anything", "--index", bad, check=False)
    errors = [ln for ln in p.stderr.splitlines() if ln.startswith("Error:")]
    assert p.returncode == 1 and "Traceback" not in p.stderr and len(errors) == 1
    assert "cannot connect" in errors[0] and PASSWORD not in p.stderr + p.stdout
    p = cli("ask", "anything", "--index", pg_server + "&schema=Bad-Name", check=False)
    assert p.returncode == 1 and "is not a valid name" in p.stderr and "Traceback" not in p.stderr


def test_feedback_lands_in_the_database(pg_uri, tmp_path):
    build([_kb(tmp_path / "kb", n=5)], pg_uri, embedder=FakeEmbedder(), warn=lambda m: None)
    backend = backend_for(pg_uri)
    a, b = backend.feedback(pg_uri), backend.feedback(pg_uri)  # (as two app servers would)
    a.add("up", "q1", "answer one", ["kb/n000.md#0"], index_version="v1")
    b.add("wrong_source", "q2", "answer two", ["kb/n001.md#0"], chunk_id="kb/n001.md#0", comment=" stale ")
    rows = json.loads(cli("feedback", "export", "--index", pg_uri, "--json").stdout)
    assert [(r["kind"], r["question"], r["chunk_ids"]) for r in rows] == [
        ("up", "q1", ["kb/n000.md#0"]), ("wrong_source", "q2", ["kb/n001.md#0"])]
    assert rows[1]["comment"] == "stale"


def test_access_groups_apply_in_sql(pg_uri, tmp_path):
    build([_kb(tmp_path / "kb")], pg_uri, embedder=FakeEmbedder(), warn=lambda m: None)
    idx = open_index(pg_uri, embedder=FakeEmbedder())
    r = Retriever(idx)
    for mode in ("dense", "bm25", "hybrid"):
        public = r.search("payroll process", k=20, mode=mode, filters=Filters(groups=[]))
        assert public and not any(h.row["groups"] for h in public)
        finance = r.search("payroll process", k=40, mode=mode, filters=Filters(groups=["finance"]))
        assert any(h.row["groups"] == ["finance"] for h in finance)
    assert idx.store.visible_totals([])[0] == 30 and idx.store.visible_totals(["finance"])[0] == 40


@pytest.mark.slow
def test_retrieval_quality_equals_the_folder_backend(pg_uri, demo_index, real_embedder, tmp_path):
    """Hybrid nDCG@10 on the demo suite and on the BEIR fixture within 0.01 of the folder backend."""
    from askcolleague.answer import Assistant
    from askcolleague.evaluation import evaluate, evaluate_beir, load_suite

    suite = load_suite(ROOT / "eval" / "demo.yaml")
    build([DEMO], pg_uri, embedder=real_embedder, warn=lambda m: None)
    got = {}
    for name, where in (("folder", demo_index), ("postgresql", pg_uri)):
        rep = evaluate(Assistant.from_index(where, embedder=real_embedder), suite, ["hybrid"])
        got[name] = rep.metrics["hybrid"]
    keys = [k for k in got["folder"] if k.endswith("ndcg@10")]
    assert keys
    for k in keys:
        assert abs(got["folder"][k] - got["postgresql"][k]) <= 0.01, (k, got)
    mini = FIXTURES / "beir" / "mini"
    beir = {name: evaluate_beir(mini, ["hybrid"], embedder=real_embedder, index_at=at).metrics["hybrid"]
            for name, at in (("folder", None), ("postgresql", pg_uri + "_beir"))}
    assert abs(beir["folder"]["doc.ndcg@10"] - beir["postgresql"]["doc.ndcg@10"]) <= 0.01, beir
    print("\nhybrid nDCG@10 folder vs postgresql:", {k: (round(got["folder"][k], 4), round(got["postgresql"][k], 4))
                                                    for k in keys},
          "BEIR mini:", beir["folder"]["doc.ndcg@10"], beir["postgresql"]["doc.ndcg@10"])


def test_mcp_on_stdio_answers_from_a_postgresql_index(pg_uri, tmp_path):
    """`askcolleague mcp --index postgresql://…` with the official MCP client: the tools answer from the
    database, public passages only by default."""
    import asyncio

    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client
    from test_mcp import data

    build([_kb(tmp_path / "kb")], pg_uri, embedder=FakeEmbedder(), warn=lambda m: None)
    env = {**fakes_env(), "ASKCOLLEAGUE_PLUGINS": "fakes", "ASKCOLLEAGUE_MODE": "bm25"}

    async def go():
        params = StdioServerParameters(command=sys.executable, args=["-m", "askcolleague", "mcp", "--index", pg_uri],
                                       cwd=str(ROOT), env=env)
        async with stdio_client(params) as (r, w):
            async with ClientSession(r, w) as s:
                await s.initialize()
                return (await s.list_tools()).tools, await s.call_tool("search", {"query": "payroll team", "k": 20})
    tools, search = asyncio.run(go())
    assert {"ask", "search", "find_people", "get_passage"} <= {t.name for t in tools}
    found = data(search)["passages"]
    hidden = {f"note {i}" for i in range(40) if i % 4 == 1}  # (the finance group's notes, see _kb)
    assert found and not any(" ".join(p["title"].split()[-2:]) in hidden for p in found)
    assert len(found) == 20 and all(p["title"].endswith(("note 0", "note 2", "note 3")) or
                                    int(p["title"].split()[-1]) % 4 != 1 for p in found)
