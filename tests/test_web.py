"""Web chat: query rewriting and rendering, the /ask API, a real browser (Debian chromium), XSS, `python app.py`."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest import ROOT, copy_tree  # noqa: E402
from llm_server import ScriptedLLM  # noqa: E402

from askcolleague.web.app import _stream
from askcolleague.web.render import answer_markdown, highlight, people_html, safe_url, sources_html
from askcolleague.web.followup import rewrite_query

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
ARTIFACTS = ROOT / "test-artifacts"
DESKTOP, PHONE = {"width": 1280, "height": 900}, {"width": 390, "height": 844}
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                    reason="Debian chromium is not installed at /usr/bin/chromium "
                                           "(apt-get install chromium; .ci/run installs it)")

K8S = "How long must a new Kubernetes version run in staging before production?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------------------ follow-ups

def test_rewrite_leaves_first_and_self_contained_questions_alone():
    assert rewrite_query("  and who owns that? ", []) == "and who owns that?"
    assert rewrite_query("How do I request a new laptop?", [K8S]) == "How do I request a new laptop?"
    long_q = "Which team approves production Kubernetes cluster upgrades for that region?"
    assert rewrite_query(long_q, [K8S]) == long_q  # refers back, but has 6+ content words


def test_rewrite_appends_previous_key_terms_to_follow_ups():
    q = rewrite_query("and who owns that?", [K8S])
    assert q == "and who owns that? Kubernetes version run staging production"
    assert "long" not in q.split() and "must" not in q.split()  # question fillers are not carried
    assert rewrite_query("Berlin?", ["How much annual leave do people get?"]) == "Berlin? annual leave people"
    assert rewrite_query("What about contractors?", ["Who approves expense reports?"]) == \
        "What about contractors? approves expense reports"
    # a chain of follow-ups keeps its topic: the previous query is already rewritten
    first = rewrite_query("Who owns it?", [K8S])
    assert rewrite_query("Since when?", [K8S, first]).endswith("Kubernetes version run staging production")
    # no word twice
    assert rewrite_query("Is staging it?", [K8S]).split().count("staging") == 1


# ------------------------------------------------------------------------------------------ rendering

EVIL = '<script>window.__xss=1</script> <img src=x onerror="window.__xss=2"> [x](javascript:alert(1)) **b** $5'


def _answer(**kw) -> dict:
    cite = {"n": 1, "chunk_id": "d::0", "doc_id": "d", "title": "T " + EVIL, "section": "S " + EVIL,
            "text": "First line.\nSecond " + EVIL + " sentence\nwrapped here. Third.", "url": "javascript:alert(1)",
            "source_type": "document", "date": "2025-01-02T00:00:00", "score": 1.0,
            "authors": [{"name": "Eve " + EVIL, "email": None, "url": "https://people.example/eve"}],
            "highlights": ["Second " + EVIL + " sentence wrapped here."]}
    person = {"person_id": "p", "name": "Eve " + EVIL, "email": None, "url": "javascript:alert(2)", "title": EVIL,
              "team": "Ops", "score": 1.0, "evidence": [{"chunk_id": "d::0", "n": 1, "title": EVIL, "url": None,
                                                         "source_type": "document"}], "has_profile": False}
    return dict({"question": "q", "answer": f"Second {EVIL} sentence [1]. Made up [1]. [unsupported] Bogus [7].",
                 "abstained": False, "mode": "llm", "fallback_reason": None, "citations": [cite],
                 "unsupported_sentences": ["Made up."], "people": [person], "timings_ms": {},
                 "more_results": []}, **kw)


def test_rendering_escapes_everything_from_documents():
    a = _answer()
    for out in (answer_markdown(a, 3), sources_html([{"question": EVIL, "query": "q", "answer": a}]),
                people_html(3, a)):
        assert "<script" not in out and "<img" not in out and 'href="javascript' not in out
        assert "&lt;script&gt;" in out
    md = answer_markdown(a, 3)
    assert md.count('href="#src-3-1"') == 2 and "[7]" in md.replace("\\[7\\]", "[7]")  # unknown [7] stays text
    assert ('title="Not supported by the cited passages">Made up <a class="ac-cite" href="#src-3-1">[1]</a>\\. '
            '<span class="ac-badge">unsupported</span></span> Bogus') in md
    assert "[unsupported]" not in md and "\\*\\*b\\*\\*" in md and "\\$5" in md
    src = sources_html([{"question": "q", "query": "q", "answer": a}])
    assert 'id="src-0-1"' in src and "<mark>Second &lt;script&gt;" in src and "wrapped here.</mark>" in src
    assert 'href="https://people.example/eve"' in src and "open original" not in src  # javascript: url: no link
    assert 'href="#src-3-1"' in people_html(3, a) and "no profile" in people_html(3, a)


def test_unsupported_marks_cover_their_sentence():
    from askcolleague.web.render import _unsupported_spans

    def marked(text):
        return [text[a:b] for a, b, _ in _unsupported_spans(text)]

    assert marked("Fine [1]. Pizza on Fridays [1]. [unsupported] Also fine [2].") == ["Pizza on Fridays [1]."]
    assert marked("Made up. [unsupported]\nOther [2]! Wrong too [1][2]. [unsupported]") == \
        ["Made up.", "Wrong too [1][2]."]
    assert marked("No marks [1].") == []


def test_safe_url_and_highlight():
    assert safe_url("https://a.example/x?a=1&b=<2>") == "https://a.example/x?a=1&amp;b=&lt;2&gt;"
    assert safe_url("mailto:a@b.example") and not safe_url("javascript:alert(1)") and not safe_url("slack:@dana")
    assert highlight("a <b>\n c", ["<b> c"]) == "a <mark>&lt;b&gt;\n c</mark>"
    assert "abstain" in people_html(0, _answer(abstained=True, citations=[], answer="No."))


def test_stream_yields_tokens_then_the_answer():
    class FakeAssistant:
        class settings:
            llm_base_url = "http://127.0.0.1:9/v1"

        def ask(self, q, on_token=None, **kw):
            for t in ["Hello ", "world ", "[1]."]:
                on_token(t)
                time.sleep(0.05)
            return "ANSWER"

    steps = list(_stream(FakeAssistant(), "q", {}))
    assert steps[-1] == (None, "ANSWER")
    partial = [t for t, a in steps[:-1]]
    assert partial and partial[-1] == "Hello world [1]." and all(a is None for _, a in steps[:-1])


# ------------------------------------------------------------------------------------------ the server

@pytest.fixture(scope="module")
def web_index(demo_index, tmp_path_factory) -> Path:
    """A copy of the session's demo index, so feedback written here does not touch the shared one."""
    return copy_tree(demo_index, tmp_path_factory.mktemp("web") / "index")


def _serve(index: Path, settings=None):
    """serve() in this process on a free port, with default settings unless given (no ASKCOLLEAGUE_* leaks in)."""
    from askcolleague.settings import SETTINGS, Settings
    from askcolleague.web.app import serve

    port = free_port()
    demo = serve(index, port=port, block=False, settings=settings or Settings({s.name: s.default for s in SETTINGS}))
    return demo, f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="module")
def app_url(web_index):
    demo, url = _serve(web_index)
    yield url
    demo.close()


def test_api_ask(app_url, web_index):
    from gradio_client import Client

    from askcolleague.index import Index

    client = Client(app_url, verbose=False)
    r = client.predict("How do I request a new laptop?", api_name="/ask")
    assert set(r) >= {"question", "answer", "abstained", "mode", "fallback_reason", "citations",
                      "unsupported_sentences", "people", "timings_ms", "more_results"}
    assert not r["abstained"] and r["citations"] and re.search(r"\[1\]", r["answer"])
    texts = {row["text"] for row in Index.open(web_index).store.chunk_rows()}
    for c in r["citations"]:
        assert c["text"] in texts
        assert {"n", "chunk_id", "title", "section", "url", "source_type", "date", "authors", "highlights"} <= set(c)
    assert any("laptop" in c["title"].lower() for c in r["citations"])
    assert "Priya Raman" in [p["name"] for p in r["people"]]

    f = client.predict("How do I request a new laptop?", 3, "bm25", ["profile"], None, None, None, api_name="/ask")
    assert f["retrieval_mode"] == "bm25"
    assert all(c["source_type"] == "profile" for c in f["citations"] + f["more_results"])
    with pytest.raises(Exception, match="since must be a date"):
        client.predict("How do I request a new laptop?", since="2025-13-01", api_name="/ask")
    early = client.predict("How do I request a new laptop?", until="2000-01-01", api_name="/ask")
    assert early["abstained"] and early["citations"] == []
    people = client.predict("kubernetes upgrades", api_name="/people")
    assert people and people[0]["name"] == "Dana Lee" and people[0]["evidence"]


# ------------------------------------------------------------------------------------------ a real browser

@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _page(browser, url: str, viewport: dict):
    page = browser.new_page(viewport=viewport)
    page.outside = []  # requests that leave this machine: there must be none
    page.on("request", lambda r: page.outside.append(r.url)
            if not re.match(r"(https?|wss?)://127\.0\.0\.1[:/]|(data|blob):", r.url) else None)
    page.goto(url)
    page.wait_for_selector("#ac-question textarea")
    return page


def _ask(page, question: str, n: int) -> None:
    """Type a question, send it, and wait for its answer (the n-th): its sources appear in the panel."""
    page.fill("#ac-question textarea", question)
    page.click("#ac-ask")
    page.wait_for_function(
        """([q, n]) => { const t = document.querySelectorAll('#ac-sources details.ac-turn');
                        return t.length == n && t[0].querySelector('summary').innerText.includes(q); }""",
        arg=[question, n], timeout=120_000)


def _rows(index: Path, kind: str, timeout: float = 15) -> list[dict]:
    from askcolleague.feedback import export

    end = time.time() + timeout
    while time.time() < end:
        rows = [r for r in export(index) if r["kind"] == kind]
        if rows:
            return rows
        time.sleep(0.2)
    return []


@pytest.mark.browser
@needs_chromium
def test_chat_in_a_browser(app_url, web_index, browser):
    ARTIFACTS.mkdir(exist_ok=True)
    page = _page(browser, app_url, DESKTOP)
    assert "documents" in page.inner_text("#ac-header") and "people" in page.inner_text("#ac-header")
    # a bad filter is answered in the chat (and leaves the feedback of later answers on their own turn)
    page.click("#ac-filters .label-wrap")
    page.fill("#ac-f-since input, #ac-f-since textarea", "2025-13-01")
    page.fill("#ac-question textarea", "Anything new?")
    page.click("#ac-ask")
    page.wait_for_function("document.querySelector('#ac-chat').innerText.includes('must be a date')")
    page.fill("#ac-f-since input, #ac-f-since textarea", "")
    _ask(page, "How do I request a new laptop?", 1)
    answer = page.locator("#ac-chat .bot").last
    assert answer.locator("a.ac-cite").count() >= 1
    assert page.locator("#ac-who .ac-person").count() >= 1 and "Priya Raman" in page.inner_text("#ac-who")
    # a [n] marker opens its source in the sources panel
    answer.locator("a.ac-cite").first.click()
    src = page.locator("#ac-sources details.ac-src").first
    page.wait_for_function("document.querySelector('#ac-sources details.ac-src').open === true")
    assert src.locator("mark").count() >= 1 and src.locator(".ac-text").is_visible()
    assert "Priya Raman" in src.inner_text() and "document" in src.inner_text()
    page.screenshot(path=str(ARTIFACTS / "web-desktop.png"), full_page=True)
    # feedback: thumbs up (with a comment), then "wrong source" on the opened citation
    page.fill("#ac-comment textarea", "spot on")
    answer_turn = page.locator("#ac-chat button[aria-label='Like']").last
    answer_turn.click()
    up = _rows(web_index, "up")
    assert up and up[-1]["question"] == "How do I request a new laptop?" and up[-1]["comment"] == "spot on"
    assert up[-1]["chunk_ids"] and "[1]" in up[-1]["answer"]
    src.locator("button.ac-wrong").click()
    wrong = _rows(web_index, "wrong_source")
    assert wrong and wrong[-1]["chunk_id"] == up[-1]["chunk_ids"][0]
    # a follow-up is searched with the conversation's key terms
    _ask(page, "and how long does delivery take?", 2)
    follow_up = page.locator("#ac-chat .bot").last.inner_text()
    assert "Searched for: and how long does delivery take? request laptop" in follow_up
    assert "5 business days" in follow_up
    assert page.outside == []
    page.close()

    phone = _page(browser, app_url, PHONE)
    _ask(phone, "Who should I ask about Kubernetes upgrades?", 1)
    assert phone.locator("#ac-who .ac-person").count() >= 1
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1  # nothing overflows
    chat_box, who_box = phone.locator("#ac-chat").bounding_box(), phone.locator("#ac-who").bounding_box()
    assert who_box["y"] > chat_box["y"] + chat_box["height"] - 1  # the columns stack
    phone.screenshot(path=str(ARTIFACTS / "web-phone.png"), full_page=True)
    phone.close()


@pytest.mark.browser
@needs_chromium
def test_abstention_shows_who_to_ask(app_url, browser):
    page = _page(browser, app_url, DESKTOP)
    _ask(page, "What is the parental leave policy in Brazil?", 1)
    assert "couldn't find an answer" in page.locator("#ac-chat .bot").last.inner_text()
    assert page.locator("#ac-who .ac-abstain").is_visible() and page.locator("#ac-who .ac-person").count() >= 1
    page.screenshot(path=str(ARTIFACTS / "web-abstain.png"), full_page=True)
    page.close()


@pytest.mark.browser
@needs_chromium
def test_document_html_is_shown_as_text(tmp_path, browser):
    from askcolleague.embed import get_embedder
    from askcolleague.indexing.build import build

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "badges.txt").write_text(
        "Visitor badge policy\n\nVisitor badges are printed at the front desk by the office manager. "
        "<script>window.__xss=1</script> Every visitor badge expires at the end of the day. "
        '<img src=x onerror="window.__xss=2"> Lost visitor badges must be reported to security within one hour. '
        "See [details](javascript:window.__xss=3).\n")
    (corpus / "printer.md").write_text(
        '---\ntitle: Badge printer <img src=x onerror="window.__xss=4">\nauthor: Mallory <mallory@example.com>\n'
        "date: 2025-01-01\n---\n# Badge printer\n\nThe badge printer at the front desk needs new ribbons every "
        'month. <img src=x onerror="window.__xss=5"> Order ribbons through the facilities portal.\n')
    build([corpus], tmp_path / "idx", embedder=get_embedder(), warn=lambda m: None)
    demo, url = _serve(tmp_path / "idx")
    try:
        page = _page(browser, url, DESKTOP)
        _ask(page, "When does a visitor badge expire?", 1)
        _ask(page, "How often does the badge printer need new ribbons?", 2)
        page.evaluate("document.querySelectorAll('#ac-sources details').forEach(d => d.open = true)")
        page.wait_for_timeout(500)
        assert page.evaluate("typeof window.__xss") == "undefined"
        assert page.evaluate("document.querySelectorAll('img[onerror], a[href^=\"javascript\"]').length") == 0
        chat, sources = page.inner_text("#ac-chat"), page.inner_text("#ac-sources")
        assert "<script>window.__xss=1</script>" in chat and "<script>window.__xss=1</script>" in sources
        assert '<img src=x onerror="window.__xss=4">' in page.inner_text("#ac-who")
        page.screenshot(path=str(ARTIFACTS / "web-xss.png"), full_page=True)
        page.close()
    finally:
        demo.close()


@pytest.mark.browser
@needs_chromium
def test_llm_answer_streams_and_marks_unsupported_sentences(web_index, browser):
    from gradio_client import Client

    from askcolleague.settings import Settings

    def reply(body: dict) -> str:
        user = next(m["content"] for m in body["messages"] if m["role"] == "user")
        n = next(n for n, t in re.findall(r'<passage n="(\d+)"[^>]*>\n(.*?)\n</passage>', user, re.S)
                 if "Hardware &gt; Laptop" in t)  # passages are HTML-escaped in the prompt
        return (f"Open the ServiceDesk portal and choose Hardware > Laptop [{n}]. "
                f"The cafeteria serves free pizza to everyone on Fridays [{n}].")

    llm = ScriptedLLM(default=reply).start()
    demo, url = _serve(web_index, settings=Settings.load(llm_base_url=llm.base_url, llm_model="scripted"))
    try:
        api = Client(url, verbose=False).predict("How do I request a new laptop?", api_name="/ask")
        assert api["mode"] == "llm" and api["citations"], api["fallback_reason"]
        page = _page(browser, url, DESKTOP)
        _ask(page, "How do I request a new laptop?", 1)
        answer = page.locator("#ac-chat .bot").last
        assert "Hardware > Laptop" in answer.inner_text() and answer.locator("a.ac-cite").count() >= 1
        assert llm.sent and len(llm.sent[-1]) > 5  # the reply was streamed token by token
        if api["unsupported_sentences"]:
            assert answer.locator(".ac-unsupported").count() == len(api["unsupported_sentences"])
            assert "pizza" in answer.locator(".ac-unsupported").first.inner_text()
        page.screenshot(path=str(ARTIFACTS / "web-llm.png"), full_page=True)
        page.close()
    finally:
        demo.close()
        llm.stop()


# ------------------------------------------------------------------------------------------ python app.py

def test_app_py_builds_the_demo_index_and_serves(tmp_path):
    from askcolleague.index import current_version

    index, port, log = tmp_path / "idx", free_port(), tmp_path / "app.log"
    index.mkdir()
    env = dict(os.environ, ASKCOLLEAGUE_INDEX=str(index))
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port)], cwd=tmp_path, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline, status = time.time() + 600, None
        while time.time() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                    status = r.status
                    break
            except OSError:
                time.sleep(2)
        text = log.read_text()
        assert status == 200, f"app.py did not serve (exit {proc.poll()}):\n{text[-3000:]}"
        assert "building one from the demo corpus" in text and "indexed" in text
        assert current_version(index) is not None
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
