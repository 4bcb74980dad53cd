"""Access control: a passage the asker may not see never appears in an answer, citation, evidence, count or list."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from askcolleague.answer import Assistant
from askcolleague.indexing.build import build

SECRET = "The acquisition of Bluefin Logistics closes on 14 July for 42 million euros."


@pytest.fixture(scope="module")
def acl_index(tmp_path_factory, real_embedder):
    root = tmp_path_factory.mktemp("acl") / "kb"
    (root / "slack" / "deals").mkdir(parents=True)
    (root / "board.md").write_text(textwrap.dedent(f"""\
        ---
        title: Board notes on the acquisition
        author: Fiona Finance <fiona@acme.test>
        groups: [finance]
        ---
        # Board notes on the acquisition

        {SECRET} The deal team meets every Monday.
    """))
    (root / "lunch.md").write_text(textwrap.dedent("""\
        ---
        title: Office lunch
        author: Paul Public <paul@acme.test>
        ---
        # Office lunch

        Lunch is served at noon on the third floor. The acquisition of new chairs is planned for spring.
    """))
    s = root / "slack"
    (s / "users.json").write_text(json.dumps([
        {"id": "UFIONA", "name": "fiona", "real_name": "Fiona Finance", "profile": {"email": "fiona@acme.test"}},
        {"id": "UPAUL", "name": "paul", "real_name": "Paul Public", "profile": {"email": "paul@acme.test"}},
        {"id": "UGUS", "name": "gus", "real_name": "Gus Guest", "profile": {"email": "gus@acme.test"}}]))
    (s / "channels.json").write_text(json.dumps([]))
    (s / "groups.json").write_text(json.dumps([{"id": "G1", "name": "deals", "members": ["UFIONA", "UGUS"]}]))
    (s / "deals" / "2025-06-01.json").write_text(json.dumps([
        {"type": "message", "user": "UFIONA", "ts": "1748764800.000100",
         "text": "Bluefin Logistics due diligence found 3 open lawsuits; the acquisition price stays at 42 million."}]))
    (root / "people.yaml").write_text(textwrap.dedent("""\
        - name: Fiona Finance
          email: fiona@acme.test
          groups: [finance]
        - name: Paul Public
          email: paul@acme.test
          groups: [all]
        - name: Gus Guest
          email: gus@acme.test
    """))
    path = root.parent / "idx"
    build([root], path, embedder=real_embedder, warn=lambda m: None)
    return path


@pytest.fixture(scope="module")
def asst(acl_index, real_embedder):
    return Assistant.from_index(acl_index, embedder=real_embedder)


def _everything(ans) -> str:
    d = ans.to_dict()
    d.pop("question")
    return json.dumps(d)


def test_insider_sees_secret(asst):
    ans = asst.ask("When does the Bluefin acquisition close and for how much?", as_person="Fiona Finance")
    assert "42 million" in ans.answer


def test_outsider_never_sees_secret(asst):
    for q in ["When does the Bluefin acquisition close and for how much?", "acquisition", "Bluefin lawsuits"]:
        for mode in ("hybrid", "dense", "bm25"):
            ans = asst.ask(q, as_person="Paul Public", mode=mode)
            blob = _everything(ans)
            assert "42 million" not in blob and "lawsuits" not in blob and "Board notes" not in blob, (q, mode)
            for p in ans.people:
                assert p.name != "Fiona Finance" or all("Board" not in e["title"] for e in p.evidence)


def test_private_channel_members_see_it(asst):
    ans = asst.ask("What did due diligence on Bluefin find?", as_person="Gus Guest")
    assert "3 open lawsuits" in _everything(ans)
    assert "Board notes" not in _everything(ans)  # Gus is not in finance
    ans = asst.ask("What did due diligence on Bluefin find?", as_person="paul@acme.test")
    assert "lawsuits" not in _everything(ans)


def test_counts_respect_visibility(acl_index):
    def counts(*extra):
        out = subprocess.run([sys.executable, "-m", "askcolleague", "people", "list", "--index", str(acl_index),
                              "--json", *extra], capture_output=True, text=True, check=True).stdout
        return {p["name"]: p["wrote"] for p in json.loads(out)}
    assert counts()["Fiona Finance"] == {"document": 1, "message": 1}
    assert "Fiona Finance" not in counts("--as", "Paul Public")  # nothing of hers visible: not listed
    assert counts("--as", "Gus Guest")["Fiona Finance"] == {"message": 1}
    out = subprocess.run([sys.executable, "-m", "askcolleague", "ask", "Bluefin acquisition price", "--index",
                          str(acl_index), "--as", "Paul Public", "--json"], capture_output=True, text=True, check=True)
    assert "42 million" not in out.stdout
    bad = subprocess.run([sys.executable, "-m", "askcolleague", "ask", "x", "--index", str(acl_index), "--as", "Nobody"],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "people list" in bad.stderr
