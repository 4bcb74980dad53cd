"""Serving reliability: answering through a rebuild, concurrent clients, feedback surviving SIGKILL."""
from __future__ import annotations

import importlib.util
import json
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest import ROOT  # noqa: E402
from test_web import browser, free_port, needs_chromium  # noqa: E402,F401

from fakes import FakeEmbedder  # noqa: E402
from askcolleague.indexing.build import build
from askcolleague.index import current_version  # noqa: E402
from askcolleague.settings import SETTINGS, Settings  # noqa: E402

TOPICS = [("Laptop requests", "Dana Lee", "Request a laptop in the ServiceDesk portal; delivery takes five days."),
          ("Travel booking", "Sam Ortiz", "Book flights in the travel portal two weeks ahead of the trip."),
          ("VPN access", "Ann Smith", "Install the WireGuard client and import the profile from the IT portal."),
          ("Event database", "Bob Stone", "ClickHouse stores the event data; it handled 2 billion rows."),
          ("Expense reports", "Priya Raman", "Submit expense reports within 30 days with the receipts attached.")]
QUESTIONS = ["How do I request a laptop?", "How far ahead do I book flights?", "Which VPN client do I install?",
             "Where is event data stored?", "When are expense reports due?"]
NEW = ("Standing desks", "Lea Park", "Standing desks are ordered through the facilities portal with a desk voucher.")


class SlowFake(FakeEmbedder):
    """The fake model, slowed down so that a rebuild lasts long enough to overlap many requests."""

    def _embed(self, texts):
        time.sleep(0.5)
        return super()._embed(texts)


def _thread(i: int, topic: tuple[str, str, str]) -> str:
    title, author, body = topic
    return json.dumps({"id": f"t{i}", "title": title, "author": f"{author} <{author.split()[0].lower()}@acme.test>",
                       "date": "2025-03-01", "body": body + " " + "More context on the topic. " * 5,
                       "comments": [{"id": f"c{i}", "author": "Ann Smith <ann@acme.test>",
                                     "body": "Thanks, that helps."}]})


@pytest.fixture
def fake_index(tmp_path) -> Path:
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "forum.jsonl").write_text("\n".join(_thread(i, t) for i, t in enumerate(TOPICS)) + "\n")
    build([kb], tmp_path / "idx", embedder=FakeEmbedder(), warn=lambda m: None)
    return tmp_path / "idx"


def _serve(index: Path, **overrides):
    from askcolleague.web.app import serve

    port = free_port()
    settings = Settings(dict({s.name: s.default for s in SETTINGS}, **overrides))
    demo = serve(index, port=port, block=False, settings=settings)
    return demo, f"http://127.0.0.1:{port}/"


def _bench_load():
    spec = importlib.util.spec_from_file_location("bench_load", ROOT / "bench" / "bench_load.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_answers_continue_through_a_rebuild_and_switch_to_the_new_version(fake_index):
    from gradio_client import Client

    demo, url = _serve(fake_index)
    try:
        old = current_version(fake_index).name
        client = Client(url, verbose=False)
        results, errors, stop = [], [], threading.Event()

        def ask_forever():
            i = 0
            while not stop.is_set():
                q = QUESTIONS[i % len(QUESTIONS)] if i % 2 else "Where do I order a standing desk voucher?"
                i += 1
                try:
                    r = client.predict(q, mode="bm25", api_name="/ask")
                    results.append((time.monotonic(), q, r))
                except Exception as e:  # any failed request fails the test
                    errors.append(repr(e))

        t = threading.Thread(target=ask_forever)
        t.start()
        time.sleep(1.0)
        (fake_index.parent / "kb" / "desks.jsonl").write_text(_thread(99, NEW) + "\n")
        report = build(None, fake_index, embedder=SlowFake(), update=True, warn=lambda m: None)
        built = time.monotonic()
        new = current_version(fake_index).name
        assert report.changed and new != old
        deadline = time.time() + 30
        while time.time() < deadline and not any(r["index_version"] == new for _, _, r in results):
            time.sleep(0.2)
        time.sleep(1.0)
        stop.set()
        t.join(timeout=60)
    finally:
        demo.close()
    assert not errors, errors[:3]
    during = [r for when, _, r in results if when < built]
    after = [(q, r) for when, q, r in results if r["index_version"] == new]
    assert len(during) >= 5 and all(r["index_version"] == old for r in during)
    assert not any("Standing desks" in c["title"] for r in during for c in r["citations"])
    assert after, "no answer came from the new index version"
    desk = [r for q, r in after if "standing desk" in q]
    assert desk and all(r["citations"][0]["title"] == "Standing desks" for r in desk)
    assert all(r["citations"] for _, r in after)
    versions = [r["index_version"] for _, _, r in results]
    assert versions == sorted(versions, key=lambda v: v == new)  # once switched, never back


@pytest.mark.browser
@needs_chromium
def test_page_shows_and_records_the_version_that_answered(fake_index, browser):
    from test_web import DESKTOP, _ask, _page, _rows

    demo, url = _serve(fake_index, mode="bm25")  # the chat has no mode; the fake model's cosines are low
    try:
        old = current_version(fake_index).name
        page = _page(browser, url, DESKTOP)
        assert "5 documents" in page.inner_text("#ac-header")
        _ask(page, "How do I request a laptop?", 1)
        (fake_index.parent / "kb" / "desks.jsonl").write_text(_thread(99, NEW) + "\n")
        build(None, fake_index, embedder=FakeEmbedder(), update=True, warn=lambda m: None)
        new = current_version(fake_index).name
        page.fill("#ac-question textarea", "Where do I order a standing desk voucher?")
        page.click("#ac-ask")
        page.wait_for_function("document.querySelector('#ac-header').innerText.includes('6 documents')")
        page.wait_for_function("document.querySelectorAll('#ac-sources details.ac-turn').length == 2")
        assert "Standing desks" in page.inner_text("#ac-sources")
        likes = page.locator("#ac-chat button[aria-label='Like']")
        likes.first.click()
        up = _rows(fake_index, "up")
        likes.last.click()
        deadline = time.time() + 15
        while time.time() < deadline and len(up) < 2:
            up = _rows(fake_index, "up")
            time.sleep(0.2)
        assert [r["index_version"] for r in up] == [old, new]
        page.close()
    finally:
        demo.close()


def test_concurrent_clients_get_every_answer(fake_index):
    load = _bench_load()
    demo, url = _serve(fake_index)
    try:
        t = time.perf_counter()
        res = load.run_load(url, QUESTIONS, clients=8, total=320, mode="bm25")
        took = time.perf_counter() - t
    finally:
        demo.close()
    assert res["failed"] == 0, res["errors"][:3]
    assert res["ok"] == 320 and res["latency_ms"]["p50"] > 0 and res["throughput_qps"] > 0
    assert took < 60, f"320 questions took {took:.0f} s"


def test_queue_settings(fake_index):
    from askcolleague.web import app as web

    defaults = {s.name: s.default for s in SETTINGS}
    extractive = web.create_app(fake_index, Settings(defaults))
    llm = web.create_app(fake_index, Settings(dict(defaults, llm_base_url="http://127.0.0.1:9/v1")))
    assert extractive._queue.default_concurrency_limit == web.CONCURRENCY == 2
    assert llm._queue.default_concurrency_limit == web.LLM_CONCURRENCY > 1
    assert extractive._queue.max_size == web.QUEUE_MAX_SIZE >= 3 * 20


# ------------------------------------------------------------------------------------------ feedback

WRITER = """
import sys
from askcolleague.feedback import FeedbackStore

store = FeedbackStore(sys.argv[1])
print("ready", flush=True)
i = 0
while True:
    i += 1
    row = store.add("up" if i % 3 else "wrong_source", f"question {i}?", f"answer {i} [1]", [f"doc::{i}::x"],
                    chunk_id=f"doc::{i}::x", comment="c" * (i % 500), query=f"query {i}", index_version="v-1")
    print(row, flush=True)  # only printed once add() has returned: the row is committed
"""


def test_feedback_survives_sigkill(tmp_path):
    """Rows whose add() returned are on disk after a SIGKILL at a random moment; the file stays sound."""
    from askcolleague.feedback import FeedbackStore

    path = tmp_path / "feedback.sqlite"
    rng = random.Random(7)
    acknowledged: list[int] = []
    for _ in range(5):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        for _ in range(rng.randint(1, 40)):
            acknowledged.append(int(proc.stdout.readline()))
        proc.send_signal(signal.SIGKILL)  # while the next add is probably mid-transaction
        proc.wait()
        db = sqlite3.connect(path)
        try:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            ids = {r[0] for r in db.execute("SELECT id FROM feedback")}
        finally:
            db.close()
        assert set(acknowledged) <= ids
    with FeedbackStore(path) as store:
        rows = {r["id"]: r for r in store.rows()}
    last = rows[acknowledged[-1]]
    assert last["kind"] in ("up", "wrong_source") and last["chunk_ids"] == [last["chunk_id"]]
