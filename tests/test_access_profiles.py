"""A restricted profile's fields never reach a non-member, even when that person wrote something visible."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from askcolleague.answer import Assistant
from askcolleague.indexing.build import build

TITLE, TEAM, URL = "Director of Mergers", "Corporate Development", "https://intranet.test/people/fiona"


@pytest.fixture(scope="module")
def idx(tmp_path_factory, real_embedder):
    root = tmp_path_factory.mktemp("aclp") / "kb"
    root.mkdir()
    (root / "espresso.md").write_text(textwrap.dedent("""\
        ---
        title: Descaling the espresso machine
        author: Fiona F. <fiona@acme.test>
        ---
        # Descaling the espresso machine

        Descale the espresso machine on the second floor every Friday with the citric acid in the cupboard.
        Run two tanks of clean water through it afterwards so the coffee does not taste sour.
    """))
    (root / "people.yaml").write_text(textwrap.dedent(f"""\
        - name: Fiona Finance
          email: fiona@acme.test
          title: {TITLE}
          team: {TEAM}
          url: {URL}
          groups: [finance]
          expertise: [espresso machines]
        - name: Paul Public
          email: paul@acme.test
          groups: [all]
    """))
    path = root.parent / "idx"
    build([root], path, embedder=real_embedder, warn=lambda m: None)
    return path


@pytest.fixture(scope="module")
def asst(idx, real_embedder):
    return Assistant.from_index(idx, embedder=real_embedder)


Q = "How do I descale the espresso machine?"


def test_member_sees_the_profile_fields(asst):
    ans = asst.ask(Q, as_person="Fiona Finance")
    fiona = next(p for p in ans.people if p.name == "Fiona Finance")
    assert (fiona.title, fiona.team, fiona.url) == (TITLE, TEAM, URL)


def test_non_member_sees_only_what_the_passage_says(asst):
    for mode in ("hybrid", "dense", "bm25"):
        ans = asst.ask(Q, as_person="Paul Public", mode=mode)
        blob = json.dumps(ans.to_dict())
        assert "descale" in ans.answer.lower(), mode
        for secret in (TITLE, TEAM, URL, "Fiona Finance", "espresso machines"):
            assert secret not in blob, (mode, secret)
        card = next(p for p in ans.people if p.email == "fiona@acme.test")
        assert (card.name, card.title, card.team, card.url, card.has_profile) == \
            ("Fiona F.", None, None, "mailto:fiona@acme.test", False)
        assert ans.citations[0].authors == [{"name": "Fiona F.", "email": "fiona@acme.test",
                                             "url": "mailto:fiona@acme.test"}]
    people = asst.find_people("espresso machine descaling", as_person="Paul Public")
    assert all(p.title is None for p in people if p.email == "fiona@acme.test")


def test_no_access_control_shows_the_profile(asst):
    ans = asst.ask(Q)
    assert any(p.title == TITLE for p in ans.people)


def test_people_list_as_non_member(idx):
    out = subprocess.run([sys.executable, "-m", "askcolleague", "people", "list", "--index", str(idx), "--json",
                          "--as", "Paul Public"], capture_output=True, text=True, check=True).stdout
    assert TITLE not in out and URL not in out and TEAM not in out
    rows = {p["email"]: p for p in json.loads(out)}
    assert rows["fiona@acme.test"]["name"] == "Fiona F." and rows["fiona@acme.test"]["wrote"] == {"document": 1}
