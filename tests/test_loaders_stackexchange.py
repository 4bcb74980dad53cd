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


# ---------------------------------------------------------------- the optional files of a dump

BREAD = Path(__file__).parent / "fixtures" / "stackexchange" / "bread.stackexchange.com"
SITE = "https://bread.stackexchange.com"


def units(doc):
    return [(b.unit_id, b.role, b.authors[0].label() if b.authors else None, b.accepted, b.votes) for b in doc.blocks]


def test_badges_go_on_their_owners_profile_and_tag_badges_are_expertise():
    people = {p.name: p for p in load_people(BREAD / "Users.xml")}
    assert set(people) == {"Ines Müller", "breadhead", "Kofi", "editor_ed"}  # not the lurker, whose gold stays his
    ines = people["Ines Müller"]
    assert ines.bio == ("Baker in Hamburg. I keep three starters alive.\n\n"
                        "Badges: gold Great Answer; silver sourdough (tag), starter (tag); "
                        "bronze Nice Answer ×3, fermentation (tag), Teacher.")
    assert ines.expertise == ["sourdough", "starter", "fermentation"]  # tag badges, best first
    assert people["breadhead"].bio == "Badges: bronze Student, Supporter." and people["breadhead"].expertise == []
    assert people["Kofi"].bio is None and people["Kofi"].expertise == []
    assert "Famous Question" not in " ".join(p.bio or "" for p in people.values())
    from askcolleague.indexing.identity import profile_text

    text = profile_text(ines)
    assert "Expertise: sourdough, starter, fermentation." in text and "Badges: gold Great Answer" in text


def test_badges_listed_per_user_are_bounded(tmp_path):
    d = tmp_path / "site"
    d.mkdir()
    (d / "Posts.xml").write_text('<posts><row Id="1" PostTypeId="1" Title="T" Body="b" OwnerUserId="3" /></posts>')
    (d / "Users.xml").write_text('<users><row Id="3" DisplayName="Busy" /></users>')
    badges = [f'<row Id="{i}" UserId="3" Name="tag{i:02d}" Class="3" TagBased="True" />' for i in range(30)]
    badges += ['<row Id="100" UserId="3" Name="Famous" Class="1" TagBased="False" />'] * 3
    (d / "Badges.xml").write_text("<badges>" + "".join(badges) + "</badges>")
    busy, = load_people(d / "Users.xml")
    assert busy.bio.startswith("Badges: gold Famous ×3; bronze tag00 (tag), tag01 (tag),")
    assert busy.bio.count("(tag)") == stackexchange.MAX_BADGES_LISTED - 1 and busy.bio.endswith("(and 19 more).")
    assert busy.expertise == [f"tag{i:02d}" for i in range(stackexchange.MAX_EXPERTISE)]


def test_a_duplicate_names_its_original():
    t = threads(BREAD)
    dup = t["bread.stackexchange.com#20"]
    assert dup.title == "How do I revive a neglected starter? [duplicate]"
    assert dup.blocks[0].context == "Duplicate of: Why does my sourdough starter smell like acetone?"
    original = {"question_id": "10", "title": "Why does my sourdough starter smell like acetone?",
                "url": f"{SITE}/questions/10"}
    assert dup.meta["duplicate_of"] == [original]  # PostLinks and the closure's history agree: listed once
    assert dup.meta["closed"] == "2021-03-07T08:00:00" and dup.meta["close_reason"] == "duplicate"  # from PostHistory
    q = t["bread.stackexchange.com#10"]
    assert q.meta["duplicates"] == [{"question_id": "20", "title": "How do I revive a neglected starter?",
                                     "url": f"{SITE}/questions/20"}]
    # linked both ways (a link from an answer is its question's); the link to the deleted question is gone
    assert [x["question_id"] for x in q.meta["linked"]] == ["50"]
    assert [x["question_id"] for x in t["bread.stackexchange.com#50"].meta["linked"]] == ["10", "40"]
    assert "duplicate_of" not in q.meta and q.blocks[0].context is None


def test_without_postlinks_the_closure_names_the_original(tmp_path):
    d = tmp_path / "bread.stackexchange.com"
    shutil.copytree(BREAD, d)
    (d / "PostLinks.xml").unlink()
    t = threads(d)
    dup = t["bread.stackexchange.com#20"]
    assert dup.title.endswith("[duplicate]") and [x["question_id"] for x in dup.meta["duplicate_of"]] == ["10"]
    assert dup.blocks[0].context == "Duplicate of: Why does my sourdough starter smell like acetone?"
    assert [x["question_id"] for x in t["bread.stackexchange.com#10"].meta["duplicates"]] == ["20"]
    assert "linked" not in t["bread.stackexchange.com#10"].meta


def test_post_history_deletes_closes_reopens_and_records_editors():
    t = threads(BREAD)
    everything = " ".join(b.text for d in t.values() for b in d.blocks)
    assert "bread.stackexchange.com#30" not in t and "Cheap watches" not in everything  # deleted question
    assert "deleted spam question" not in everything and "An answer to the spam question." not in everything
    rye = t["bread.stackexchange.com#40"]
    assert units(rye) == [
        ("q40", "question", "Kofi", None, 2),  # no Score: 2 up votes
        ("a41", "answer", "Ines Müller", True, 5),  # AcceptedAnswerId wins over an accept vote on a43
        ("a43", "answer", "editor_ed", False, 3),  # deleted, then undeleted
        ("a44", "answer", "Ines Müller", False, 2),  # no owner in Posts.xml: its first revision's user
    ]  # a42 was deleted, and its comment with it
    assert "A deleted answer about rye." not in everything and "deleted rye answer" not in everything
    assert rye.meta["answers"] == 3 and rye.meta["editors"] == {"a44": ["anon_fixer"]}
    reopened = t["bread.stackexchange.com#50"]
    assert reopened.title == "Best temperature for a starter" and "closed" not in reopened.meta
    closed = t["bread.stackexchange.com#60"]
    assert closed.title == "Best flour brand? [closed]" and closed.meta["closed"] == "2021-06-02T08:00:00"
    assert closed.meta["close_reason"] == "primarily opinion-based"
    q = t["bread.stackexchange.com#10"]
    # others' edits are recorded, not the author's own nor the Community bot's; authorship stays
    assert q.meta["editors"] == {"q10": ["editor_ed"], "a12": ["Ines Müller"]}
    assert q.blocks[0].authors[0].label() == "Kofi"
    assert next(b for b in q.blocks if b.unit_id == "a12").authors[0].label() == "breadhead"


def test_votes_give_missing_scores_and_the_accepted_answer():
    q = threads(BREAD)["bread.stackexchange.com#10"]
    assert units(q) == [
        ("q10", "question", "Kofi", None, 12),  # a Score wins over the votes
        ("c200", "comment", "Ines Müller", None, 1),
        ("a12", "answer", "breadhead", True, 2),  # accepted by vote 1; 3 up, 1 down
        ("c201", "question", "Kofi", None, 2),
        ("a11", "answer", "Ines Müller", False, 7),  # Score 7 wins over its down vote
        ("c204", "comment", "gone_baker", None, 0),
    ]
    assert q.meta["accepted_answer"] == "12"
    assert q.blocks[2].context.startswith("Accepted answer by breadhead replying to Kofi")


def test_tag_wikis_from_tags_xml():
    t = threads(BREAD)
    tag = t["bread.stackexchange.com#tags/sourdough"]
    assert [(b.section, b.text, b.authors) for b in tag.blocks] == [
        ("Excerpt", "A culture of wild yeast and lactic acid bacteria used to leaven bread.", []),
        ("Tag wiki", "Sourdough is bread leavened by a starter instead of commercial yeast.", [])]
    assert tag.url == f"{SITE}/tags/sourdough/info" and tag.tags == ["sourdough"]
    assert {k for k in t if "#tags/" in k} == {"bread.stackexchange.com#tags/sourdough"}  # rye's excerpt is missing


def _zip_dump(path: Path, folder: str = "", extra: dict[str, str] | None = None) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        if folder:
            z.writestr(folder, "")  # the folder's own entry, as zip tools write it
        for f in sorted(BREAD.iterdir()):
            z.write(f, folder + f.name)
        for name, text in (extra or {}).items():
            z.writestr(name, text)
    shutil.copy(BREAD.parent / "bread.stackexchange.com.meta.yaml", path.with_name(path.name + ".meta.yaml"))
    return path


def _same(docs, profiles):
    strip = {"doc_id", "source"}
    return ({d.doc_id.split("#", 1)[1]: {k: v for k, v in d.__dict__.items() if k not in strip} for d in docs},
            sorted(({k: v for k, v in p.to_dict().items() if k != "source"} for p in profiles), key=lambda p: p["name"]))


@pytest.mark.parametrize("folder", ["", "bread.stackexchange.com/"])
def test_a_zip_dump_is_the_same_as_the_folder(tmp_path, folder):
    path = _zip_dump(tmp_path / "bread.stackexchange.com.zip", folder,
                     {"__MACOSX/._Posts.xml": "junk"} if folder else None)
    assert kind_of(path) == "stackexchange"
    specs, people, problems = discover([tmp_path])
    assert [(s.key, s.kind) for s in specs] == [(f"{tmp_path.name}/bread.stackexchange.com.zip", "stackexchange")]
    assert people == [path] and not problems
    zdocs = load_source(SourceSpec(path, path.name, "stackexchange"), MAX)
    fdocs = load_source(SourceSpec(BREAD, BREAD.name, "stackexchange"), MAX)
    assert _same(zdocs, load_people(path)) == _same(fdocs, load_people(BREAD / "Users.xml"))
    assert {p.name for p in load_people(path)} == {"Ines Müller", "breadhead", "Kofi", "editor_ed"}


def test_what_zip_is_not_a_dump(tmp_path):
    import zipfile

    mixed = _zip_dump(tmp_path / "share.zip", "bread/", {"notes.md": "# Notes\n\nSee the dump.\n"})
    assert kind_of(mixed) == "archive"  # a folder of files that holds a dump: an archive
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("../Posts.xml", "<posts/>")
        z.writestr("../Users.xml", "<users/>")
    assert kind_of(evil) == "archive" and stackexchange._find(["../Posts.xml", "/Users.xml"]) == {}
    slack = tmp_path / "slack.zip"
    with zipfile.ZipFile(slack, "w") as z:
        z.writestr("users.json", "[]")
        z.writestr("channels.json", "[]")
    assert kind_of(slack) == "slack"


def test_a_zip_dump_is_bounded(tmp_path, monkeypatch):
    path = _zip_dump(tmp_path / "bread.stackexchange.com.zip")
    monkeypatch.setenv("ASKCOLLEAGUE_ARCHIVE_MAX_MB", "0.002")
    with pytest.raises(LoadError, match="the dump.s XML files unpack to .* allowed; raise ASKCOLLEAGUE_ARCHIVE_MAX_MB"):
        load_source(SourceSpec(path, path.name, "stackexchange"), MAX)
    monkeypatch.delenv("ASKCOLLEAGUE_ARCHIVE_MAX_MB")
    monkeypatch.setenv("ASKCOLLEAGUE_ARCHIVE_MAX_MEMBERS", "3")
    assert kind_of(path) == "archive"  # more members than any dump may have: not opened as one
    with pytest.raises(LoadError, match="members, over the 3 allowed"):
        load_source(SourceSpec(path, path.name, "stackexchange"), MAX)


def test_a_7z_dump_reads_the_optional_files_too(tmp_path):
    import py7zr

    path = tmp_path / "bread.stackexchange.com.7z"
    with py7zr.SevenZipFile(path, "w") as z:
        for f in sorted(BREAD.iterdir()):
            z.write(f, f.name)
    shutil.copy(BREAD.parent / "bread.stackexchange.com.meta.yaml", tmp_path / "bread.stackexchange.com.7z.meta.yaml")
    assert kind_of(path) == "stackexchange"
    assert _same(load_source(SourceSpec(path, path.name, "stackexchange"), MAX), load_people(path)) == \
        _same(load_source(SourceSpec(BREAD, BREAD.name, "stackexchange"), MAX), load_people(BREAD / "Users.xml"))


def test_the_optional_files_are_streamed(tmp_path):
    """Many more votes, history rows and badges for the same posts and users: about the same peak."""
    def peak(n: int) -> int:
        d = tmp_path / f"d{n}"
        shutil.copytree(BREAD, d)
        (d / "Votes.xml").write_text("<votes>" + "".join(
            f'<row Id="{i}" PostId="{10 + i % 50}" VoteTypeId="{2 + i % 2}" CreationDate="2021-01-01T00:00:00.000" />'
            for i in range(n)) + "</votes>")
        (d / "PostHistory.xml").write_text("<posthistory>" + "".join(
            f'<row Id="{i}" PostHistoryTypeId="5" PostId="{10 + i % 50}" UserId="{i % 7}" '
            f'CreationDate="2021-01-01T00:00:00.000" Text="{"revision text " * 20}" />' for i in range(n))
            + "</posthistory>")
        (d / "Badges.xml").write_text("<badges>" + "".join(
            f'<row Id="{i}" UserId="{3 + i % 4}" Name="Nice Answer" Class="3" TagBased="False" />'
            for i in range(n)) + "</badges>")
        tracemalloc.start()
        docs = load_source(SourceSpec(d, d.name, "stackexchange"), 10 * MAX)
        people = load_people(d / "Users.xml", 10 * MAX)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert docs and people
        return top

    peak(100)  # (imports and caches first)
    small, large = peak(2_000), peak(20_000)
    assert large < small * 2, (small, large)


def test_build_over_a_zip_dump_credits_each_unit_to_its_author(tmp_path):
    kb = tmp_path / "kb"
    kb.mkdir()
    _zip_dump(kb / "bread.stackexchange.com.zip")
    rep = build([kb], tmp_path / "idx", embedder=FakeEmbedder(), warn=lambda m: None)
    assert not rep.skipped, rep.skipped
    idx = Index.open(tmp_path / "idx", embedder=FakeEmbedder())
    credit = {(r["unit_id"], r["doc_id"].split("#")[1]): (r["name"], bool(r["has_profile"])) for r in idx.store.db.execute(
        "SELECT c.unit_id, c.doc_id, p.name, p.has_profile FROM chunks c JOIN chunk_people l ON l.chunk = c.id "
        "JOIN people p ON p.person_id = l.person_id WHERE l.role = 'author' AND c.source_type != 'profile'")}
    assert credit[("q10", "10")] == ("Kofi", True)
    assert credit[("a12", "10")] == ("breadhead", True)  # edited by Ines: still breadhead's
    assert credit[("a11", "10")] == ("Ines Müller", True)
    assert credit[("c200", "10")] == ("Ines Müller", True) and credit[("c201", "10")] == ("Kofi", True)
    assert credit[("c204", "10")] == ("gone_baker", False)  # a deleted user: no profile
    assert credit[("a44", "40")] == ("Ines Müller", True) and credit[("a43", "40")] == ("editor_ed", True)
    assert not any(name == "anon_fixer" for name, _ in credit.values())  # an editor is nobody's author
    assert not any(unit in ("q30", "a31", "a42") for unit, _ in credit)
    rows = idx.store.chunk_rows()
    a12 = next(r for r in rows if r["unit_id"] == "a12")
    assert a12["accepted"] and a12["votes"] == 2
    profile = next(r for r in rows if r["source_type"] == "profile" and "Baker in Hamburg" in r["text"])
    assert "Expertise: sourdough, starter, fermentation." in profile["text"] and "gold Great Answer" in profile["text"]
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
