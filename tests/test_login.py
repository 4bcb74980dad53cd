"""Web login: every request answers as its user, so a restricted passage reaches only its group's members."""
from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_web import DESKTOP, _ask, browser, free_port, needs_chromium  # noqa: E402,F401

from askcolleague.errors import ConfigError  # noqa: E402
from askcolleague.indexing.build import build  # noqa: E402
from askcolleague.settings import SETTINGS, Settings  # noqa: E402
from askcolleague.web.auth import add_user, remove_user  # noqa: E402

SECRET_Q = "When does the Bluefin acquisition close and for how much?"
PASSWORDS = {"dana": "dana-pw-1", "paul": "paul-pw-2", "guest": "guest-pw-3", "ghost": "ghost-pw-4",
             "gone": "gone-pw-5"}


@pytest.fixture(scope="module")
def login_app(tmp_path_factory, real_embedder):
    """An index with a `groups: [secret]` document, a users file, and the app serving both with login on."""
    root = tmp_path_factory.mktemp("login")
    kb = root / "kb"
    kb.mkdir()
    (kb / "board.md").write_text(textwrap.dedent("""\
        ---
        title: Board notes on Project Zephyr
        author: Dana Lee <dana@acme.test>
        groups: [secret]
        ---
        # Board notes on Project Zephyr

        The acquisition of Bluefin Logistics closes on 14 July for 42 million euros. Project Zephyr is its
        code name.
    """))
    (kb / "lunch.md").write_text(textwrap.dedent("""\
        ---
        title: Office lunch
        author: Paul Public <paul@acme.test>
        ---
        # Office lunch

        Lunch is served at noon on the third floor. The acquisition of new chairs closes in spring.
    """))
    (kb / "people.yaml").write_text(textwrap.dedent("""\
        - name: Dana Lee
          email: dana@acme.test
          title: CFO
          groups: [secret]
        - name: Paul Public
          email: paul@acme.test
    """))
    build([kb], root / "idx", embedder=real_embedder, warn=lambda m: None)
    users = root / "users.yaml"
    add_user(users, "dana", PASSWORDS["dana"], person="dana@acme.test")
    add_user(users, "paul", PASSWORDS["paul"], person="Paul Public")
    add_user(users, "guest", PASSWORDS["guest"])  # no person: passages without groups only
    add_user(users, "ghost", PASSWORDS["ghost"], person="Nobody Known")  # unknown person: the same
    add_user(users, "gone", PASSWORDS["gone"], person="Dana Lee")
    from askcolleague.web.app import serve

    port = free_port()
    settings = Settings(dict({s.name: s.default for s in SETTINGS}, users_file=str(users)))
    demo = serve(root / "idx", port=port, block=False, settings=settings)
    yield f"http://127.0.0.1:{port}/", users
    demo.close()


def url_index(app) -> str:
    return str(Path(app[1]).parent / "idx")


def test_counts_and_filters_cover_only_what_a_user_may_see(login_app):
    """The status line's counts and the filter choices never count or name hidden passages."""
    from askcolleague.answer import Assistant
    from askcolleague.web.app import _choices, visible_counts

    asst = Assistant.from_index(Path(url_index(login_app)))
    everyone, member = visible_counts(asst, []), visible_counts(asst, ["secret"])
    total = asst.index.manifest["counts"]
    assert member["documents"] == total["documents"] and member["chunks"] == total["chunks"]
    # hidden: the board notes, and Dana's profile (a profile carries its person's groups)
    assert everyone["documents"] == member["documents"] - 2 and everyone["chunks"] < member["chunks"]
    assert everyone["people"] == 1 and member["people"] == 2
    assert _choices(asst, [])[1] == ["Paul Public"] and _choices(asst, ["secret"])[1] == ["Dana Lee", "Paul Public"]


def _client(url: str, user: str):
    from gradio_client import Client

    return Client(url, auth=(user, PASSWORDS[user]), verbose=False)


def _leaks(answer: dict) -> list[str]:
    blob = json.dumps({k: v for k, v in answer.items() if k != "question"})
    return [w for w in ("42 million", "14 July", "Board notes", "Zephyr") if w in blob]


def test_member_sees_the_restricted_passage(login_app):
    url, _ = login_app
    dana = _client(url, "dana")
    ans = dana.predict(SECRET_Q, api_name="/ask")
    assert "42 million" in ans["answer"] and any("Board notes" in c["title"] for c in ans["citations"])
    assert not dana.predict("What is Project Zephyr?", api_name="/ask")["abstained"]
    people = dana.predict("Bluefin acquisition", api_name="/people")
    assert any("Board notes" in e["title"] for p in people for e in p["evidence"])


@pytest.mark.parametrize("user", ["paul", "guest", "ghost"])
def test_others_never_see_it(login_app, user):
    url, _ = login_app
    client = _client(url, user)
    for q in [SECRET_Q, "acquisition", "Bluefin Logistics 42 million"]:
        for mode in ("hybrid", "dense", "bm25"):
            ans = client.predict(q, mode=mode, api_name="/ask")
            assert not _leaks(ans), (user, q, mode, _leaks(ans))
    # a name that only a hidden passage mentions is treated like a name the index never saw
    assert client.predict("What is Project Zephyr?", api_name="/ask")["abstained"]
    people = client.predict("Bluefin acquisition", api_name="/people")
    assert not any("Board notes" in e["title"] for p in people for e in p["evidence"])
    assert "Office lunch" in json.dumps(client.predict("When is lunch served?", api_name="/ask")["citations"])


def test_hidden_names_count_as_unknown(login_app, real_embedder):
    from askcolleague.answer import Assistant

    url, users = login_app
    asst = Assistant.from_index(users.parent / "idx", embedder=real_embedder)
    assert asst.unknown_names("What is Project Zephyr?") == []
    assert asst.unknown_names("What is Project Zephyr?", groups=["secret"]) == []
    assert asst.unknown_names("What is Project Zephyr?", groups=[]) == ["Project", "Zephyr"]
    assert asst.unknown_names("Where is the Office lunch?", groups=[]) == []


def test_wrong_password_and_no_login_are_refused(login_app):
    from gradio_client import Client

    url, _ = login_app
    with pytest.raises(Exception):
        Client(url, auth=("dana", "dana-pw-2"), verbose=False)
    with pytest.raises(Exception):
        Client(url, auth=("nobody", "dana-pw-1"), verbose=False)
    with pytest.raises(Exception):
        Client(url, verbose=False)
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url + "gradio_api/info", timeout=10)
    assert e.value.code == 401


def test_a_removed_user_is_refused_at_once(login_app):
    url, users = login_app
    client = _client(url, "gone")
    assert "42 million" in client.predict(SECRET_Q, api_name="/ask")["answer"]
    remove_user(users, "gone")  # the server re-reads the file; the open session no longer answers
    with pytest.raises(Exception, match="not logged in"):
        client.predict(SECRET_Q, api_name="/ask")


def test_serve_fails_fast_on_a_bad_users_file(tmp_path):
    from askcolleague.web.app import serve

    bad = tmp_path / "users.yaml"
    bad.write_text("- username: dana\n  password_hash: hunter2\n")
    settings = Settings(dict({s.name: s.default for s in SETTINGS}, users_file=str(bad)))
    with pytest.raises(ConfigError, match=f"users file {bad}, user 'dana': password_hash"):
        serve(tmp_path / "no-index", port=free_port(), block=False, settings=settings)
    assert not (tmp_path / "no-index").exists()  # nothing was built


@pytest.mark.browser
@needs_chromium
def test_login_form_then_an_answer(login_app, browser):
    url, _ = login_app
    page = browser.new_page(viewport=DESKTOP)
    page.goto(url)
    page.get_by_label("username").fill("paul")
    page.get_by_label("password").fill("wrong")
    page.get_by_role("button", name="Login").click()
    page.get_by_text("Incorrect Credentials").wait_for()
    page.get_by_label("password").fill(PASSWORDS["dana"])
    page.get_by_label("username").fill("dana")
    page.get_by_role("button", name="Login").click()
    page.wait_for_selector("#ac-question textarea", timeout=60_000)
    page.wait_for_function("document.querySelector('#ac-header').innerText.includes('documents')")
    header = page.inner_text("#ac-header")
    _ask(page, SECRET_Q, 1)
    assert "42 million" in page.locator("#ac-chat .bot").last.inner_text()
    from askcolleague.answer import Assistant
    from askcolleague.web.app import visible_counts

    asst = Assistant.from_index(Path(url_index(login_app)))
    mine = visible_counts(asst, ["secret"])
    assert f"{mine['documents']} documents · {mine['chunks']} passages" in header, header
    assert "Board notes" in page.inner_text("#ac-sources") and "Dana Lee" in page.inner_text("#ac-who")
    page.close()
