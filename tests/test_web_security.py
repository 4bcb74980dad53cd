"""Web security: sessions bound to their user, login limits, uploads off, bounded passages, session
timeouts, security headers, monitoring off — each against a real server on 127.0.0.1 (serve())."""
from __future__ import annotations

import json
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_web import CHROMIUM, CHROMIUM_ARGS, DESKTOP, free_port, needs_chromium  # noqa: E402

from fakes import FakeEmbedder  # noqa: E402
from askcolleague.indexing.build import build  # noqa: E402
from askcolleague.settings import SETTINGS, Settings  # noqa: E402
from askcolleague.web.auth import add_user, hash_password  # noqa: E402

PASSWORDS = {"fay": "fay-pw-1", "paul": "paul-pw-2"}
SECRET_Q = "What is the secret budget for Project Walrus?"
SECRETS = (b"77 million", b"Walrus", b"Finance budget")


def _corpus(kb: Path) -> None:
    kb.mkdir(parents=True)
    (kb / "budget.md").write_text(textwrap.dedent("""\
        ---
        title: Finance budget 2026
        author: Fay Finance <fay@acme.test>
        groups: [finance]
        ---
        # Finance budget 2026

        The secret budget for Project Walrus is 77 million kroner, approved by the board in March.
    """))
    (kb / "lunch.md").write_text(textwrap.dedent("""\
        ---
        title: Office lunch
        author: Paul Public <paul@acme.test>
        ---
        # Office lunch

        Lunch is served at noon on the third floor.
    """))
    (kb / "people.yaml").write_text("- name: Fay Finance\n  email: fay@acme.test\n  groups: [finance]\n"
                                    "- name: Paul Public\n  email: paul@acme.test\n")


@pytest.fixture(scope="module")
def kb(tmp_path_factory) -> tuple[Path, Path]:
    """(index, users file): a `groups: [finance]` document that only fay may see; paul may not."""
    root = tmp_path_factory.mktemp("websec")
    _corpus(root / "kb")
    build([root / "kb"], root / "idx", embedder=FakeEmbedder(), warn=lambda m: None)
    users = root / "users.yaml"
    add_user(users, "fay", PASSWORDS["fay"], person="Fay Finance")
    add_user(users, "paul", PASSWORDS["paul"], person="Paul Public")
    return root / "idx", users


def _settings(**overrides) -> Settings:
    return Settings(dict({s.name: s.default for s in SETTINGS}, mode="bm25", **overrides))


def _serve(index: Path, **overrides):
    from askcolleague.web.app import serve

    port = free_port()
    demo = serve(index, port=port, block=False, settings=_settings(**overrides))
    return demo, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def app(kb):
    index, users = kb
    demo, url = _serve(index, users_file=str(users))
    yield url
    demo.close()


def login(url: str, user: str, password: str | None = None) -> httpx.Client:
    c = httpx.Client(base_url=url, timeout=60)
    r = c.post("/login", data={"username": user, "password": password or PASSWORDS[user]})
    assert r.status_code == 200, r.text
    return c


def fn_index(client: httpx.Client, name: str) -> tuple[int, int | None]:
    """(fn_index, trigger id) of an event of the page, by its function name (from /config)."""
    for d in client.get("/config").json()["dependencies"]:
        if d.get("api_name") == name:
            return d["id"], (d["targets"][0][0] if d["targets"] else None)
    raise KeyError(name)


def join(client: httpx.Client, fn: tuple[int, int | None], data: list, session: str, event_data=None):
    """What the page's JS client does to run an event: POST queue/join with its session hash."""
    return client.post("/gradio_api/queue/join", json={"data": data, "fn_index": fn[0], "trigger_id": fn[1],
                                                       "session_hash": session, "event_data": event_data})


def listen(client: httpx.Client, session: str, timeout: float = 30) -> tuple[int, bytes]:
    """(status, every byte received) of GET queue/data?session_hash=…, until an event completes."""
    out = b""
    try:
        with client.stream("GET", "/gradio_api/queue/data", params={"session_hash": session},
                           timeout=timeout) as r:
            for chunk in r.iter_bytes():
                out += chunk
                if b'"process_completed"' in out or b"close_stream" in out:
                    break
            return r.status_code, out
    except httpx.ReadTimeout:
        return -1, out


def ask_in_session(client: httpx.Client, session: str, question: str = SECRET_Q) -> bytes:
    respond = fn_index(client, "respond")
    r = join(client, respond, [question, [], None, [], "", "", ""], session)
    assert r.status_code == 200, r.text
    status, got = listen(client, session)
    assert status == 200
    return got


def no_secret(*blobs: bytes) -> None:
    for b in blobs:
        for s in SECRETS:
            assert s not in b, (s, b[:500])


# ------------------------------------------------------------------------------------------ A. sessions

def test_another_users_session_is_refused(app, capfd):
    """paul, logged in, knows fay's session hash: joining an event in it, listening on it, cancelling
    its event or keeping it alive are all refused (403), and nothing of fay's answer reaches him."""
    fay, paul = login(app, "fay"), login(app, "paul")
    h = "fay-session-1"
    assert b"77 million" in ask_in_session(fay, h)  # fay's state (turns) now holds the finance passage
    received: list[bytes] = []

    respond, like = fn_index(paul, "respond"), fn_index(paul, "on_like")
    r = join(paul, respond, ["and how much?", [], None, [], "", "", ""], h)
    received.append(r.content)
    assert r.status_code == 403 and b"another user" in r.content
    r = join(paul, like, [None, ""], h, event_data={"index": [1, 0], "value": "x", "liked": True})
    received.append(r.content)
    assert r.status_code == 403
    status, got = listen(paul, h, timeout=10)
    received.append(got)
    assert status == 403

    # listening only, while fay's next answer runs: paul gets nothing, fay gets all of it
    r = join(fay, fn_index(fay, "respond"), [SECRET_Q, [], None, [], "", "", ""], h)
    assert r.status_code == 200
    event_id = r.json()["event_id"]
    for _ in range(3):
        status, got = listen(paul, h, timeout=5)
        received.append(got)
        assert status == 403
    for verb, path, body in [("post", "/gradio_api/cancel", {"session_hash": h, "fn_index": respond[0],
                                                             "event_id": event_id}),
                             ("post", "/gradio_api/reset", {"event_id": event_id})]:
        r = getattr(paul, verb)(path, json=body)
        received.append(r.content)
        assert r.status_code == 403, (path, r.status_code, r.text)
    with paul.stream("GET", f"/gradio_api/heartbeat/{h}", timeout=10) as r:
        assert r.status_code == 403
        received.append(r.read())
    r = paul.get("/gradio_api/deep_link", params={"session_hash": h})  # would copy the session's values
    received.append(r.content)
    assert r.status_code == 404
    status, got = listen(fay, h)
    assert status == 200 and b"77 million" in got
    no_secret(*received)

    # without a login, cancel and reset are refused too
    anon = httpx.Client(base_url=app, timeout=30)
    cancel = {"session_hash": "x", "fn_index": 0, "event_id": "y"}
    assert anon.post("/gradio_api/cancel", json=cancel).status_code == 401
    assert anon.post("/gradio_api/reset", json={"event_id": "y"}).status_code == 401
    with anon.stream("GET", "/gradio_api/heartbeat/anon-1") as r:
        assert r.status_code == 401
    assert "used a session of another user" in capfd.readouterr().err

    # paul's own session still works, and answers as paul
    mine = ask_in_session(paul, "paul-session-1", "When is lunch served?")
    assert b"noon" in mine
    no_secret(mine)


def test_another_users_api_event_is_refused(app):
    """An /ask call without a session hash (POST /call/ask): its event id is fay's alone."""
    fay, paul = login(app, "fay"), login(app, "paul")
    ev = fay.post("/gradio_api/call/ask", json={"data": [SECRET_Q] + [None] * 6}).json()["event_id"]
    r = paul.get(f"/gradio_api/call/ask/{ev}", timeout=10)
    assert r.status_code == 403
    no_secret(r.content)
    r = fay.get(f"/gradio_api/call/ask/{ev}", timeout=60)
    assert r.status_code == 200 and b"77 million" in r.content


def test_handlers_refuse_state_of_another_user(kb):
    """Defence in depth: even without the guard in front, respond/on_like never read a conversation
    state that another user's turns are in (each turn records its user)."""
    from askcolleague.web.auth import Users
    from askcolleague.web.app import _auth, create_app

    index, users_file = kb
    users = Users(users_file)
    demo = create_app(index, _settings(users_file=str(users_file)), users=users)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, auth=_auth(users),
                quiet=True, enable_monitoring=False)
    try:
        url = f"http://127.0.0.1:{port}"
        fay, paul = login(url, "fay"), login(url, "paul")
        h = "fay-session-2"
        assert b"77 million" in ask_in_session(fay, h)
        got = ask_in_session(paul, h, "and how much?")
        assert b"belongs to another login" in got
        no_secret(got)
        r = join(paul, fn_index(paul, "on_like"), [None, "spam"], h,
                 event_data={"index": [1, 0], "value": "x", "liked": False})
        assert r.status_code == 200
        status, got = listen(paul, h)
        no_secret(got)
        from askcolleague.feedback import export

        assert not [row for row in export(index) if row.get("comment") == "spam"]
    finally:
        demo.close()


# ------------------------------------------------------------------------------------------ B. login limits

def test_failed_logins_are_limited(kb, capfd):
    index, users = kb
    demo, url = _serve(index, users_file=str(users), login_max_failures=5, login_max_address_failures=12)
    try:
        c = httpx.Client(base_url=url, timeout=30)

        def attempt(user, pw):
            return c.post("/login", data={"username": user, "password": pw})

        codes = [attempt("paul", f"guess-{i}").status_code for i in range(5)]
        assert codes == [400] * 5
        r = attempt("paul", "guess-6")
        assert r.status_code == 429 and "too many failed logins; try again in" in r.json()["detail"]
        assert int(r.headers["retry-after"]) > 0
        assert attempt("paul", PASSWORDS["paul"]).status_code == 429  # the right password waits too
        t = time.perf_counter()
        for i in range(20):  # refused before any scrypt check (~0.1 s each)
            assert attempt("paul", f"more-{i}").status_code == 429
        assert time.perf_counter() - t < 1.5
        assert "login: 5 failed attempts for user 'paul' from 127.0.0.1; locked for 60 s" in capfd.readouterr().err
        # the browser's multipart form counts the same
        assert c.post("/login", files={"username": (None, "paul"), "password": (None, "x")}).status_code == 429
        login(url, "fay")  # other users still log in
        # per address: 12 failures from 127.0.0.1, whatever the usernames, lock the address
        for i in range(7):
            assert attempt(f"nobody-{i}", "x").status_code == 400
        assert attempt("nobody-x", "x").status_code == 429
        assert attempt("fay", PASSWORDS["fay"]).status_code == 429
        assert "failed attempts from 127.0.0.1 (the last for user 'nobody-6'); address locked for 60 s" in \
            capfd.readouterr().err
    finally:
        demo.close()


def test_login_limiter_backoff_window_and_parallel_guesses():
    from askcolleague.web.guard import LoginLimiter

    now = [1000.0]
    logs = []
    lim = LoginLimiter(max_failures=3, max_address_failures=0, window=300, lockout=60, clock=lambda: now[0],
                       log=logs.append)

    def fail(user="u"):
        assert lim.begin(user, "10.0.0.1") == 0
        lim.end(user, "10.0.0.1", False)

    for _ in range(3):
        fail()
    assert lim.begin("u", "10.0.0.1") == pytest.approx(60)
    now[0] += 61
    for _ in range(3):
        fail()
    assert lim.begin("u", "10.0.0.1") == pytest.approx(120)  # the second lockout doubles
    assert [m.split("; ")[1] for m in logs] == ["locked for 60 s", "locked for 120 s"]
    # failures older than the window do not count
    fail("v")
    fail("v")
    now[0] += 301
    fail("v")
    assert lim.begin("v", "10.0.0.1") == 0
    lim.end("v", "10.0.0.1", True)  # a success clears the username
    # guesses in flight fill the quota: 3 parallel checks, the 4th must wait
    assert [lim.begin("w", "a") for _ in range(4)][:3] == [0, 0, 0]
    assert lim.begin("w", "a") > 0


# ------------------------------------------------------------------------------------------ C. uploads off

def test_uploads_and_file_routes_are_off(app):
    fay = login(app, "fay")
    r = fay.post("/gradio_api/upload", files={"files": ("big.bin", b"\0" * 200_000)})
    assert r.status_code == 404, r.text
    for path in ("/gradio_api/upload_progress?upload_id=x", "/gradio_api/file=/etc/passwd",
                 "/gradio_api/file=README.md", "/gradio_api/file/etc/passwd", "/gradio_api/stream/x/y/1/playlist.m3u8",
                 "/gradio_api/proxy=http://127.0.0.1:9/"):
        assert fay.get(path).status_code == 404, path
    assert httpx.post(app + "/gradio_api/upload", files={"files": ("a", b"a")}).status_code == 404
    # no route takes a form or a file (a session hash could hide in one): only JSON bodies
    r = fay.post("/gradio_api/component_server", files={"session_hash": (None, "fay-session-1"),
                                                         "component_id": (None, "1"), "fn_name": (None, "x")})
    assert r.status_code == 415


# ------------------------------------------------------------------------------------------ D. long passages

LONG = "x" * 120_000


@pytest.fixture(scope="module")
def long_app(tmp_path_factory):
    """An index like an old one whose chunker kept a 120,000-character line in one passage (today's
    chunker splits it): the passage's text is made so in the index's store after the build."""
    import sqlite3

    from askcolleague.index import current_version

    root = tmp_path_factory.mktemp("long")
    kb = root / "kb"
    kb.mkdir()
    (kb / "dump.md").write_text("---\ntitle: Server log dump\nauthor: Ann Smith <ann@acme.test>\n---\n"
                                "# Server log dump\n\nThe nightly backup job writes its log to the archive bucket. "
                                "The restore drill happens every quarter.\n")
    (kb / "lunch.md").write_text("# Lunch\n\nLunch is served at noon.\n")
    build([kb], root / "idx", embedder=FakeEmbedder(), warn=lambda m: None)
    db = sqlite3.connect(current_version(root / "idx") / "store.sqlite")
    with db:
        n = db.execute("UPDATE chunks SET text = replace(text, 'archive bucket.', 'archive bucket. ' || ?) "
                       "WHERE text LIKE '%nightly backup%'", (LONG,)).rowcount
    db.close()
    assert n == 1
    demo, url = _serve(root / "idx")
    yield url
    demo.close()


def test_api_bounds_long_passages(long_app):
    import jsonschema
    from gradio_client import Client

    from askcolleague.schema import ANSWER_SCHEMA
    from askcolleague.answer.bounds import MAX_PASSAGE_CHARS, MAX_SENTENCE_CHARS

    r = Client(long_app + "/", verbose=False).predict("Where does the nightly backup job write its log?",
                                                      api_name="/ask")
    jsonschema.validate(r, ANSWER_SCHEMA)
    c = next(c for c in r["citations"] + r["more_results"] if c["title"] == "Server log dump")
    assert c["truncated"] is True and len(c["text"]) <= MAX_PASSAGE_CHARS + 2
    assert c["text"].startswith("The nightly backup job") and c["text"].endswith("…")
    assert all(len(h) <= MAX_SENTENCE_CHARS + 1 for h in c["highlights"])
    assert len(json.dumps(r)) < 3 * MAX_PASSAGE_CHARS + 6 * MAX_SENTENCE_CHARS + 10_000


def test_passage_rendering_is_bounded():
    from askcolleague.answer.bounds import PAGE_PASSAGE_CHARS, SHOWN_CHARS, bound_answer
    from askcolleague.web.render import passage_html

    text = "word " * 30_000 + "The key sentence is here. " + "more " * 30_000
    short, more = passage_html(text, ["The key sentence is here."])
    assert "<mark>The key sentence is here.</mark>" in short and "Show more" in more
    first = short.split('<div class="ac-text ac-full" hidden>')[0]
    assert len(first) < SHOWN_CHARS + 200 and "<mark>" in first
    assert len(short) < SHOWN_CHARS + PAGE_PASSAGE_CHARS + 500 and "open the original" in short
    small, none = passage_html("Short text.", ["Short text."])
    assert none == "" and small == '<div class="ac-text"><mark>Short text.</mark></div>'
    a = bound_answer({"answer": "y" * 50_000 + " [1].", "citations": [{"n": 1, "text": text, "title": "t",
                      "section": None, "highlights": ["The key sentence is here."]}], "people": []})
    assert a["truncated"] and a["answer"].endswith("[1].") and len(a["answer"]) < 1100
    assert a["citations"][0]["truncated"] and "The key sentence is here." in a["citations"][0]["text"]


@pytest.mark.browser
@needs_chromium
def test_long_passage_keeps_the_page_responsive(long_app):
    from playwright.sync_api import sync_playwright

    from askcolleague.answer.bounds import PAGE_PASSAGE_CHARS, SHOWN_CHARS

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=DESKTOP)
            csp_errors = []
            page.on("console", lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None)
            page.goto(long_app + "/")
            page.wait_for_selector("#ac-question textarea")
            page.fill("#ac-question textarea", "Where does the nightly backup job write its log?")
            page.click("#ac-ask")
            page.wait_for_selector("#ac-sources details.ac-src", timeout=120_000)
            assert len(page.inner_text("#ac-chat")) < 5_000
            page.locator("#ac-chat a.ac-cite").first.click()
            t = time.perf_counter()
            page.wait_for_function("document.querySelector('#ac-sources details.ac-src').open === true",
                                   timeout=5_000)
            took = page.evaluate("() => { const t = performance.now(); document.body.getBoundingClientRect(); "
                                 "return performance.now() - t; }")
            assert time.perf_counter() - t < 2.0 and took < 1000
            card = page.locator("#ac-sources details.ac-src").first
            shown = card.locator(".ac-text.ac-short").inner_text()
            assert "The nightly backup job" in shown and len(shown) <= SHOWN_CHARS + 2
            assert page.evaluate("document.querySelector('#ac-sources').textContent.length") < \
                PAGE_PASSAGE_CHARS + SHOWN_CHARS + 2_000
            width = page.evaluate("document.querySelector('#ac-sources').scrollWidth")
            assert width <= page.evaluate("document.querySelector('#ac-sources').clientWidth") + 1  # wrapped
            card.locator("button.ac-more").click()
            t = time.perf_counter()
            full = card.locator(".ac-text.ac-full")
            full.wait_for(state="visible", timeout=5_000)
            assert page.evaluate("1 + 1") == 2 and time.perf_counter() - t < 2.0
            text = full.inner_text()
            assert PAGE_PASSAGE_CHARS - 100 <= len(text) <= PAGE_PASSAGE_CHARS + 200 and "open the original" in text
            assert not card.locator(".ac-text.ac-short").is_visible()
            assert card.locator("button.ac-more").inner_text() == "Show less"
            card.locator("button.ac-more").click()
            assert card.locator(".ac-text.ac-short").is_visible() and not full.is_visible()
            assert csp_errors == []
            page.close()
        finally:
            browser.close()


# ------------------------------------------------------------------------------------------ E. users file

def test_users_file_fails_closed_while_serving(kb, tmp_path, capfd):
    index, users = kb
    mine = tmp_path / "users.yaml"
    mine.write_bytes(users.read_bytes())
    demo, url = _serve(index, users_file=str(mine), users_file_grace_seconds=1.0)
    try:
        from gradio_client import Client

        fay = Client(url + "/", auth=("fay", PASSWORDS["fay"]), verbose=False)
        assert fay.predict("When is lunch served?", api_name="/ask")["citations"]
        mine.unlink()
        assert fay.predict("When is lunch served?", api_name="/ask")["citations"]  # within the grace period
        assert f"users file {mine} does not exist" in capfd.readouterr().err  # logged at once
        time.sleep(1.2)
        with pytest.raises(Exception, match="logins are refused"):
            fay.predict("When is lunch served?", api_name="/ask")
        r = httpx.post(url + "/login", data={"username": "fay", "password": PASSWORDS["fay"]})
        assert r.status_code == 503 and "users file is missing or broken" in r.json()["detail"]
        mine.write_text(f"- username: fay\n  password_hash: '{hash_password(PASSWORDS['fay'], n=2**10)}'\n")
        assert fay.predict("When is lunch served?", api_name="/ask")["citations"]
        assert f"users file {mine} is good again: 1 user(s)" in capfd.readouterr().err
    finally:
        demo.close()


# ------------------------------------------------------------------------------------------ F. the rest

def test_malformed_api_requests_get_clear_errors(app):
    fay = login(app, "fay")

    def call(api, data):
        data = data + [None] * ((7 if api == "ask" else 1) - len(data))
        ev = fay.post(f"/gradio_api/call/{api}", json={"data": data}).json()["event_id"]
        return fay.get(f"/gradio_api/call/{api}/{ev}", timeout=60).text

    for data, message in [([["a", "b"]], "question must be a string, not list"),
                          ([{"q": 1}], "question must be a string, not dict"),
                          (["Lunch?", "many"], "k must be a whole number from 1 to 100"),
                          (["Lunch?", 10_000], "k must be a whole number from 1 to 100"),
                          (["Lunch?", None, ["bm25"]], "mode must be a string"),
                          (["Lunch?", None, None, [1, 2]], "source_type must be a source type"),
                          (["Lunch?", None, None, None, ["x"]], "person must be a string"),
                          (["q" * 5_000], "question is too long")]:
        out = call("ask", data)
        assert "event: error" in out and message in out, (data, out)
        assert "Traceback" not in out and "attribute" not in out
    assert "topic must be a string" in call("people", [[1]])
    ok = call("ask", ["When is lunch served?", "3"])
    assert "event: complete" in ok and "noon" in ok


def test_monitoring_is_off(kb, capfd):
    index, _ = kb
    demo, url = _serve(index)
    try:
        for path in ("/monitoring", "/monitoring/summary", f"/monitoring/{demo.app.analytics_key}",
                     "/gradio_api/monitoring"):
            assert httpx.get(url + path).status_code == 404, path
        assert "onitoring" not in "".join(capfd.readouterr())
    finally:
        demo.close()


def test_login_sessions_expire(kb):
    index, users = kb
    demo, url = _serve(index, users_file=str(users), session_idle_minutes=1.5 / 60, session_max_hours=4 / 3600)
    try:
        fay = login(url, "fay")
        assert fay.get("/config").status_code == 200
        time.sleep(2.0)  # idle longer than 1.5 s
        assert fay.get("/config").status_code == 401
        assert fay.get("/gradio_api/info").status_code == 401
        assert "auth_required" in fay.get("/").text  # the page shows the login form again
        fay = login(url, "fay")
        t = time.time()
        while time.time() - t < 3.5:  # active all along
            assert fay.get("/config").status_code == 200
            time.sleep(0.5)
        time.sleep(1.0)
        assert fay.get("/config").status_code == 401  # 4 s after the login, however active
    finally:
        demo.close()


def test_security_headers_on_every_response(app):
    fay = login(app, "fay")
    for r in (fay.get("/"), fay.get("/config"), fay.get("/gradio_api/info"), fay.get("/no-such-page"),
              httpx.get(app + "/gradio_api/info"), httpx.post(app + "/login", data={"username": "x", "password": ""})):
        assert r.headers["x-frame-options"] == "DENY", r.url
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        csp = r.headers["content-security-policy"]
        for part in ("frame-ancestors 'none'", "object-src 'none'", "base-uri 'self'", "form-action 'self'"):
            assert part in csp
