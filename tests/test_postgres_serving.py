"""Many app servers on one PostgreSQL index (issue 15, item 6): two `askcolleague serve` processes on
their own loopback ports answer from the same database while `askcolleague index update` publishes a
new version from a third process: no request fails, both servers follow the new version and never go
back, and feedback given through each server's page lands in the one feedback table.

The load version of this (N servers, many clients, a rebuild during the load) is
`python bench/bench_load.py --index postgresql://… --servers N --rebuild-during`."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest import ROOT  # noqa: E402
from fakes import FakeEmbedder, fakes_env  # noqa: E402
from test_serving import NEW, QUESTIONS, TOPICS, _thread  # noqa: E402
from test_web import browser, free_port, needs_chromium  # noqa: E402,F401  (browser: the fixture)

from askcolleague.index import backend_for  # noqa: E402
from askcolleague.indexing.build import build  # noqa: E402

DESK_Q = "Where do I order a standing desk voucher?"
N_SERVERS = 2


def _env() -> dict[str, str]:
    """The subprocesses' environment: the fake model as a plugin, no ASKCOLLEAGUE_* from the caller's shell
    (the module-scoped fixtures below run before the autouse _clean_env)."""
    env = {k: v for k, v in fakes_env().items() if not k.startswith("ASKCOLLEAGUE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    return {**env, "ASKCOLLEAGUE_PLUGINS": "fakes"}


def cli(*args: str) -> subprocess.CompletedProcess:
    p = subprocess.run([sys.executable, "-m", "askcolleague", *args], capture_output=True, text=True, cwd=ROOT,
                       env=_env(), timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    return p


@pytest.fixture(scope="module")
def pg_index(pg_server, tmp_path_factory) -> tuple[str, Path]:
    """(URI, source folder) of an index built with the fake model, in a schema of its own."""
    sep = "&" if "?" in pg_server else "?"
    uri = f"{pg_server}{sep}schema=t_many_servers_{uuid.uuid4().hex[:6]}"
    kb = tmp_path_factory.mktemp("many-servers") / "kb"
    kb.mkdir()
    (kb / "forum.jsonl").write_text("\n".join(_thread(i, t) for i, t in enumerate(TOPICS)) + "\n")
    build([kb], uri, embedder=FakeEmbedder(), warn=lambda m: None)
    return uri, kb


def _wait_up(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"server on {url} did not answer within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def servers(pg_index, tmp_path_factory):
    """N_SERVERS `askcolleague serve` processes on the one index, each on its own port of 127.0.0.1 (the chat
    in bm25 mode: the fake model's cosines are low); stopped at the end, with a check that none of them (nor
    a child) is left."""
    import psutil

    uri, _ = pg_index
    logs = tmp_path_factory.mktemp("server-logs")
    procs: list[tuple[str, subprocess.Popen, Path]] = []
    try:
        for i in range(N_SERVERS):
            port = free_port()
            log = logs / f"server{i}.log"
            with open(log, "w") as out:
                proc = subprocess.Popen([sys.executable, "-m", "askcolleague", "serve", "--index", uri, "--host",
                                         "127.0.0.1", "--port", str(port), "--no-mcp"],
                                        stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                        env={**_env(), "ASKCOLLEAGUE_MODE": "bm25"})  # (the chat's mode)
            procs.append((f"http://127.0.0.1:{port}/", proc, log))
        for url, proc, log in procs:  # (they start in parallel)
            _wait_up(url, proc, log)
        yield [(url, proc) for url, proc, _ in procs]
    finally:
        family = []
        for _, proc, _ in procs:
            try:
                family += [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
            except psutil.NoSuchProcess:
                pass
            proc.terminate()
        for _, proc, _ in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)
        _, alive = psutil.wait_procs(family, timeout=10)
        for p in alive:
            p.kill()
        assert not alive, f"processes left after stopping the servers: {alive}"


def test_servers_listen_on_loopback_only(servers):
    import psutil

    for url, proc in servers:
        listening = [c.laddr for c in psutil.Process(proc.pid).net_connections(kind="inet")
                     if c.status == psutil.CONN_LISTEN]
        assert listening and all(a.ip == "127.0.0.1" for a in listening), (url, listening)
        assert {a.port for a in listening} == {int(url.rsplit(":", 1)[1].strip("/"))}


def test_servers_answer_through_an_update_from_another_process(pg_index, servers):
    """Clients ask both servers without pause while `askcolleague index update` (a third process) adds a
    document: 0 failed requests; each server answers from the old version until the update, from the new
    one after it, and once one of its answers came from the new version, no later request gets the old one;
    answers about the new document cite it as soon as they come from the new version."""
    from gradio_client import Client

    uri, kb = pg_index
    backend = backend_for(uri)
    old = backend.live_name(uri)
    results: list[tuple[int, float, float, str, dict]] = []  # (server, started, finished, question, answer)
    errors: list[str] = []
    lock, stop = threading.Lock(), threading.Event()
    clients = [Client(url, verbose=False) for url, _ in servers for _ in range(2)]  # 2 clients per server

    def ask_forever(n: int) -> None:
        server, client, i = n // 2, clients[n], n
        while not stop.is_set():
            q = DESK_Q if i % 2 else QUESTIONS[i // 2 % len(QUESTIONS)]
            i += 1
            t = time.monotonic()
            try:
                r = client.predict(q, mode="bm25", api_name="/ask")
                with lock:
                    results.append((server, t, time.monotonic(), q, r))
            except Exception as e:  # any failed request fails the test
                with lock:
                    errors.append(f"server {server}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=ask_forever, args=(n,), daemon=True) for n in range(len(clients))]
    for th in threads:
        th.start()
    try:
        deadline = time.time() + 30  # (until every server has answered a few)
        while time.time() < deadline and not all(sum(s == k for s, *_ in list(results)) >= 3
                                                 for k in range(len(servers))):
            time.sleep(0.1)
        (kb / "desks.jsonl").write_text(_thread(99, NEW) + "\n")
        update_started = time.monotonic()
        report = json.loads(cli("index", "update", "--index", uri, "--json").stdout)
        update_done = time.monotonic()
        new = report["version"]
        deadline = time.time() + 30  # (until every server has answered a request sent after the update)
        while time.time() < deadline and not all(
                any(s == k and r["index_version"] == new and t > update_done for s, t, _, _, r in list(results))
                for k in range(len(servers))):
            time.sleep(0.2)
        time.sleep(1.0)
    finally:
        stop.set()
        for th in threads:
            th.join(timeout=60)

    print(f"\n{len(results)} answers, update {update_done - update_started:.1f} s; per server (before, during, "
          "after): ", [(sum(s == k and f < update_started for s, t, f, *_ in results),
                        sum(s == k and t >= update_started and f <= update_done for s, t, f, *_ in results),
                        sum(s == k and t > update_done for s, t, f, *_ in results)) for k in range(len(servers))])
    assert not errors, errors[:3]
    assert report["changed"] and report["embedded"] >= 1 and new != old and backend.live_name(uri) == new
    assert {r["index_version"] for *_, r in results} == {old, new}
    for k in range(len(servers)):
        mine = [(t, f, q, r) for s, t, f, q, r in results if s == k]
        before = [r for t, f, q, r in mine if f < update_started]
        during = [r for t, f, q, r in mine if t >= update_started and f <= update_done]
        after = [r for t, f, q, r in mine if t > update_done]
        assert len(before) >= 3 and all(r["index_version"] == old for r in before), k
        assert len(during) >= 3, f"server {k}: only {len(during)} answers while the update ran"
        assert after and all(r["index_version"] == new for r in after), k
        first_new = min(f for t, f, q, r in mine if r["index_version"] == new)
        assert all(r["index_version"] == new for t, f, q, r in mine if t > first_new), f"server {k} went back"
        for t, f, q, r in mine:
            assert r["citations"] or (q == DESK_Q and r["index_version"] == old), (k, q, r["index_version"])
            titles = [c["title"] for c in r["citations"]]
            if q == DESK_Q and r["index_version"] == new:
                assert titles[0] == "Standing desks", (k, titles)
            if r["index_version"] == old:
                assert "Standing desks" not in titles, (k, titles)


@pytest.mark.browser
@needs_chromium
def test_feedback_from_every_server_lands_in_one_table(pg_index, servers, browser):
    """A thumbs-up (with a comment naming the server) on an answer in each server's page: both rows are in
    the index's one feedback table, as `askcolleague feedback export` shows them."""
    from test_web import DESKTOP, _ask, _page

    uri, _ = pg_index
    before = json.loads(cli("feedback", "export", "--index", uri, "--json").stdout)
    for n, (url, _) in enumerate(servers):
        page = _page(browser, url, DESKTOP)
        _ask(page, QUESTIONS[0], 1)
        page.fill("#ac-comment textarea", f"via server {n}")
        page.locator("#ac-chat button[aria-label='Like']").first.click()
        page.wait_for_function("document.querySelector('#ac-comment textarea').value === ''")  # (cleared once saved)
        assert not page.outside
        page.close()
    rows = json.loads(cli("feedback", "export", "--index", uri, "--json").stdout)[len(before):]
    live = backend_for(uri).live_name(uri)
    assert sorted((r["kind"], r["comment"], r["question"]) for r in rows) == [
        ("up", f"via server {n}", QUESTIONS[0]) for n in range(len(servers))]
    assert all(r["index_version"] == live and r["chunk_ids"] for r in rows), (live, rows)
