"""Stack Exchange data dumps (#13 item 7): threads, roles, credit, profiles, links, streaming; and
the parse pool (item 8): a hanging or crashing parser costs only its file."""
from __future__ import annotations

import json
import os
import shutil
import stat
import time
import tracemalloc
from pathlib import Path

import pytest

from fakes import FakeEmbedder
from askcolleague.errors import LoadError
from askcolleague.index import Index, status
from askcolleague.indexing.build import build
from askcolleague.loaders import SourceSpec, discover, kind_of, load_source
from askcolleague.loaders import stackexchange
from askcolleague.indexing.identity import load_people
from askcolleague.settings import Settings

FIX = Path(__file__).parent / "fixtures" / "formats"
DUMP = FIX / "cooking.stackexchange.com"
MAX = 10_000_000


def threads(path: Path = DUMP):
    docs = load_source(SourceSpec(path, path.name, kind_of(path)), MAX)
    return {d.doc_id: d for d in docs}


def test_a_dump_folder_is_one_source_with_its_users_as_people():
    specs, people, problems = discover([FIX])
    assert [(s.key, s.kind) for s in specs] == [("formats/cooking.stackexchange.com", "stackexchange")]
    assert [p.name for p in people] == ["Users.xml"] and not problems


def test_question_answers_and_comments_with_roles_and_credit():
    t = threads()
    assert set(t) == {"cooking.stackexchange.com#1", "cooking.stackexchange.com#5", "cooking.stackexchange.com#6"}
    q = t["cooking.stackexchange.com#1"]
    assert q.title == "How do I fix a split hollandaise?" and q.source_type == "post"
    assert q.tags == ["sauce", "emulsion", "eggs", "cooking"]  # the dump's tags and the sidecar's
    assert q.url == "https://cooking.stackexchange.com/questions/1"
    assert q.meta["accepted_answer"] == "3" and q.meta["answers"] == 3 and q.meta["views"] == 5012
    units = [(b.unit_id, b.role, b.authors[0].label() if b.authors else None, b.accepted, b.votes) for b in q.blocks]
    assert units == [
        ("q1", "question", "sam", None, 14),
        ("c100", "comment", "Aaronut", None, 2),
        ("c101", "question", "sam", None, 0),  # the asker's own follow-up is the asker's side
        ("a3", "answer", "Aaronut", True, 9),  # accepted first,
        ("c102", "question", "sam", None, 5),
        ("a2", "answer", "Jürgen Weiß", False, 25),  # then by score
        ("c103", "comment", "old_account", None, 1),  # a deleted user's display name
        ("a4", "answer", "deleted_user_42", False, -2),
    ]
    by = {b.unit_id: b for b in q.blocks}
    assert by["a3"].text.startswith("Add a tablespoon of warm water") and "Keep it below 70 °C." in by["a3"].text
    assert by["a3"].url == "https://cooking.stackexchange.com/a/3" and by["a3"].reply_to == "sam"
    assert by["a3"].context == 'Accepted answer by Aaronut replying to sam on "How do I fix a split hollandaise?"'
    assert by["c102"].url == "https://cooking.stackexchange.com/questions/1#comment102_3"
    assert by["a2"].authors[0].handle == "stackexchange:cooking.stackexchange.com/12"
    assert "A comment on a deleted post." not in " ".join(b.text for d in t.values() for b in d.blocks)


def test_closed_questions_community_wiki_and_the_community_bot():
    t = threads()
    closed = t["cooking.stackexchange.com#5"]
    assert closed.title == "Best chef's knife brand? [closed]" and closed.meta["closed"] == "2024-04-10T12:00:00"
    wiki = t["cooking.stackexchange.com#6"]
    head, answer = wiki.blocks
    assert head.authors[0].label() == "Aaronut" and head.context == "Community wiki question"
    assert answer.authors == [] and "74 °C" in answer.text  # the Community bot is nobody's expertise
    assert wiki.meta["community_wiki"] is True


def test_users_become_profiles_for_those_who_wrote_something():
    people = {p.name: p for p in load_people(DUMP / "Users.xml")}
    assert set(people) == {"Aaronut", "Jürgen Weiß", "sam"}  # not the Community bot, not the lurker
    a = people["Aaronut"]
    assert (a.bio, a.location, a.url) == ("Food scientist. Ask me about emulsions and sous vide.", "Toronto, Canada",
                                          "https://aaronut.example")
    assert a.title == "48,211 reputation on cooking.stackexchange.com"
    assert a.handles == {"stackexchange": "cooking.stackexchange.com/7"}
    assert people["sam"].url == "https://cooking.stackexchange.com/users/15"  # no website: the site profile


def test_a_dump_7z(tmp_path):
    import py7zr

    with py7zr.SevenZipFile(tmp_path / "cooking.stackexchange.com.7z", "w") as z:
        for f in ("Posts.xml", "Users.xml", "Comments.xml"):
            z.write(DUMP / f, f)
    path = tmp_path / "cooking.stackexchange.com.7z"
    assert kind_of(path) == "stackexchange"
    t = threads(path)
    q = t["cooking.stackexchange.com.7z#1"]
    assert q.url is None  # no sidecar: no site_url, no links
    assert [b.unit_id for b in q.blocks][:4] == ["q1", "c100", "c101", "a3"]
    assert {p.name for p in load_people(path)} == {"Aaronut", "Jürgen Weiß", "sam"}


def test_the_parse_streams_rows(tmp_path):
    """Memory of the parse does not grow with the dump: 10x the rows, about the same peak."""
    def peak(n: int) -> int:
        d = tmp_path / f"d{n}"
        d.mkdir()
        (d / "Posts.xml").write_text("<posts>" + "".join(
            f'<row Id="{i}" PostTypeId="5" Body="{"tag wiki text " * 20}" />' for i in range(n)) + "</posts>")
        tracemalloc.start()
        count = sum(1 for _ in stackexchange.rows(d / "Posts.xml"))
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert count == n
        return top

    small, large = peak(2_000), peak(20_000)
    assert large < small * 2, (small, large)


def test_a_broken_dump_is_a_load_error(tmp_path):
    d = tmp_path / "site"
    d.mkdir()
    (d / "Posts.xml").write_text('<posts><row Id="1" PostTypeId="1" Title="x"')
    (d / "Users.xml").write_text("<users></users>")
    with pytest.raises(LoadError, match="Posts.xml is malformed XML at line 1; download the dump again"):
        threads(d)


def test_build_credits_answers_and_records_encodings(tmp_path):
    kb = tmp_path / "kb"
    shutil.copytree(FIX, kb)
    (kb / "notiz.md").write_bytes("# Notiz\n\nDie Kantine öffnet um 11:30 Uhr; Spätzle gibt es dienstags, Grüße.\n"
                                  .encode("cp1252"))
    rep = build([kb], tmp_path / "idx", embedder=FakeEmbedder(), warn=lambda m: None)
    assert not rep.skipped, rep.skipped
    m = status(tmp_path / "idx")
    enc = {s["key"]: s.get("encoding") for s in m["sources"]}
    assert enc == {"kb/cooking.stackexchange.com": None, "kb/notiz.md": "cp1252"}
    idx = Index.open(tmp_path / "idx", embedder=FakeEmbedder())
    rows = idx.store.chunk_rows()
    a3 = next(r for r in rows if r["unit_id"] == "a3")
    assert a3["role"] == "answer" and a3["accepted"] and a3["votes"] == 9
    assert any(r["source_type"] == "profile" and "Food scientist" in r["text"] for r in rows)
    people = {r["name"]: r for r in idx.store.db.execute("SELECT name, has_profile FROM people")}
    assert people["Aaronut"]["has_profile"] == 1  # the answers' author is the profile's person
    idx.close()


# ---------------------------------------------------------------- the parse pool

def _fake_soffice(tmp_path: Path, body: str) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    exe = bin_dir / "soffice"
    exe.write_text(f"#!/bin/sh\n{body}\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return bin_dir


def _sources(tmp_path: Path) -> list[SourceSpec]:
    from askcolleague.loaders.office import OLE_MAGIC

    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        (src / f"n{i}.md").write_text(f"# Note {i}\n\nThe answer is {i}.\n")
    (src / "legacy.doc").write_bytes(OLE_MAGIC + b"\x00" * 600)
    specs, _, _ = discover([src])
    return specs


@pytest.mark.parametrize("fake, reason", [
    ("sleep 60", "parsing took over 3 s and was stopped; split the file or raise ASKCOLLEAGUE_PARSE_TIMEOUT"),
    ("kill -9 $PPID; sleep 5", "the parser crashed (killed by signal 9) on this file"),
])
def test_a_hanging_or_crashing_parser_costs_only_its_file(tmp_path, monkeypatch, fake, reason):
    from askcolleague.loaders.pool import ParsePool

    monkeypatch.setenv("PATH", f"{_fake_soffice(tmp_path, fake)}{os.pathsep}{os.environ['PATH']}")
    specs = _sources(tmp_path)
    pool = ParsePool(specs, MAX, Settings.load(parse_workers=2, parse_timeout=3.0))
    got = {}
    t0 = time.monotonic()
    try:
        for spec in specs:
            try:
                got[spec.path.name] = [d.title for d in pool.load(spec)]
            except LoadError as e:
                got[spec.path.name] = str(e)
    finally:
        pool.close()
    assert got["legacy.doc"].startswith(reason)
    assert {k: v for k, v in got.items() if k != "legacy.doc"} == {f"n{i}.md": [f"Note {i}"] for i in range(3)}
    assert time.monotonic() - t0 < 50
    assert not pool.workers


def test_build_through_the_pool_skips_the_hanging_file(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{_fake_soffice(tmp_path, 'sleep 60')}{os.pathsep}{os.environ['PATH']}")
    specs = _sources(tmp_path)
    warnings: list[str] = []
    rep = build([specs[0].path.parent], tmp_path / "idx", embedder=FakeEmbedder(), warn=warnings.append,
                settings=Settings.load(parse_workers=2, parse_timeout=3.0))
    assert rep.sources_indexed == 3
    assert [(Path(s.path).name, s.reason.split(";")[0]) for s in rep.skipped] == [
        ("legacy.doc", "parsing took over 3 s and was stopped")]
    manifest = json.loads((tmp_path / "idx" / (tmp_path / "idx" / "CURRENT").read_text().strip() / "manifest.json").read_text())
    assert manifest["skipped"][0]["path"].endswith("legacy.doc")
