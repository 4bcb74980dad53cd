"""Hostile input at ingest: sidecars on every source kind, front matter that fails closed, YAML alias
bombs, undecodable file names, symbolic links out of the tree, one-line giants, office-file bombs,
and a full disk. A build never aborts on one bad file: it is skipped with one line naming the fix,
the good files are indexed, and nothing already indexed is lost."""
from __future__ import annotations

import errno
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from askcolleague import safeyaml
from askcolleague.indexing.chunker import MAX_CHUNK_CHARS, MAX_TITLE_CHARS, ChunkerConfig, chunk_doc, split_text
from fakes import FakeEmbedder, fakes_env
from askcolleague.errors import ConfigError, DiskFullError, LoadError
from askcolleague.index import Index
from askcolleague.indexing.build import build, read_sources_yaml
from askcolleague.models import Block, Doc
from askcolleague.settings import Settings
from askcolleague.index.sqlite import visible_sql

ROOT = Path(__file__).resolve().parents[1]
THREADS = Path(__file__).parent / "fixtures" / "threads"
GOOD = "# Lunch\n\nWe eat lunch at noon in the big kitchen on the third floor.\n"


def _build(root, tmp_path, update=False, **settings):
    warnings: list[str] = []
    rep = build(None if update else [root], tmp_path / "idx", embedder=FakeEmbedder(), warn=warnings.append,
                settings=Settings.load(**settings), update=update)
    return rep, {os.path.basename(s.path): s.reason for s in rep.skipped}, warnings


def _kb(tmp_path) -> Path:
    root = tmp_path / "kb"
    root.mkdir()
    (root / "lunch.md").write_text(GOOD)
    return root


def _rows(tmp_path, source_suffix=""):
    idx = Index.open(tmp_path / "idx", embedder=FakeEmbedder())
    try:
        return [r for r in idx.store.chunk_rows() if r["source"].endswith(source_suffix)]
    finally:
        idx.close()


def _public(tmp_path, source: str) -> int:
    """Chunks of `source` an asker without groups may see."""
    idx = Index.open(tmp_path / "idx", embedder=FakeEmbedder())
    try:
        cond, args = visible_sql([])
        return idx.store.db.execute(f"SELECT COUNT(*) FROM chunks c WHERE c.source = ? AND {cond}",
                                    [source, *args]).fetchone()[0]
    finally:
        idx.close()


def _zip_folder(folder: Path, out: Path) -> Path:
    with zipfile.ZipFile(out, "w") as z:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                z.write(f, f.relative_to(folder).as_posix())
    return out


# ---------------------------------------------------------------- 1. sidecars on every source kind

THREAD_FILES = {
    "forum.jsonl": lambda root: shutil.copy(THREADS / "forum.jsonl", root / "forum.jsonl"),
    "lists.mbox": lambda root: shutil.copy(THREADS / "lists.mbox", root / "lists.mbox"),
    "blog.xml": lambda root: shutil.copy(THREADS / "blog.xml", root / "blog.xml"),
    "slack.zip": lambda root: _zip_folder(THREADS / "slack", root / "slack.zip"),
    "slack": lambda root: shutil.copytree(THREADS / "slack", root / "slack"),
}


@pytest.mark.parametrize("name", sorted(THREAD_FILES))
def test_sidecar_groups_and_tags_apply_to_every_thread(tmp_path, name):
    root = _kb(tmp_path)
    THREAD_FILES[name](root)
    (root / f"{name}.meta.yaml").write_text("groups: [finance]\ntags: [archive]\n")
    rep, skipped, _ = _build(root, tmp_path)
    assert not skipped, skipped
    rows = _rows(tmp_path, name)
    assert rows and all(r["groups"] == ["finance"] for r in rows), {tuple(r["groups"]) for r in rows}
    assert all("archive" in r["tags"] for r in rows)
    assert _public(tmp_path, f"kb/{name}") == 0 and _public(tmp_path, "kb/lunch.md") == 1


def test_sidecar_groups_are_not_granted_to_private_channel_members(tmp_path):
    root = _kb(tmp_path)
    shutil.copytree(THREADS / "slack", root / "slack")
    rep, _, _ = _build(root, tmp_path)
    idx = Index.open(tmp_path / "idx", embedder=FakeEmbedder())
    before = {p.name: p.groups for p in idx.store.people()}
    idx.close()
    assert any("slack:secret-ops" in g for g in before.values())  # the private channel's members
    (root / "slack.meta.yaml").write_text("groups: [finance]\n")
    _build(root, tmp_path)
    idx = Index.open(tmp_path / "idx", embedder=FakeEmbedder())
    after = {p.name: p.groups for p in idx.store.people()}
    idx.close()
    assert not any("finance" in g for g in after.values()), after  # channel membership gives no "finance"


@pytest.mark.parametrize("key", ["title", "author", "date", "url"])
def test_sidecar_keys_of_one_document_are_refused_beside_a_thread_file(tmp_path, key):
    root = _kb(tmp_path)
    shutil.copy(THREADS / "forum.jsonl", root / "forum.jsonl")
    value = {"title": "Forum", "author": "Ann <a@x.test>", "date": "2024-01-01", "url": "https://x.test"}[key]
    (root / "forum.jsonl.meta.yaml").write_text(f"{key}: {value}\ngroups: [finance]\n")
    rep, skipped, _ = _build(root, tmp_path)
    reason = skipped["forum.jsonl"]
    assert f"'{key}'" in reason and "only `tags:` and `groups:`" in reason and "\n" not in reason
    assert not _rows(tmp_path, "forum.jsonl") and rep.sources_indexed == 1  # skipped, never public


def test_changed_sidecar_reindexes_a_thread_file(tmp_path):
    root = _kb(tmp_path)
    shutil.copy(THREADS / "lists.mbox", root / "lists.mbox")
    _build(root, tmp_path)
    assert _public(tmp_path, "kb/lists.mbox") > 0
    side = root / "lists.mbox.meta.yaml"
    side.write_text("groups: [hr]\n")
    rep, _, _ = _build(root, tmp_path, update=True)
    assert rep.changed and _public(tmp_path, "kb/lists.mbox") == 0
    assert {tuple(r["groups"]) for r in _rows(tmp_path, "lists.mbox")} == {("hr",)}
    side.write_text("groups: [legal]\n")
    _build(root, tmp_path, update=True)
    assert {tuple(r["groups"]) for r in _rows(tmp_path, "lists.mbox")} == {("legal",)}


def test_unreadable_new_metadata_does_not_keep_the_public_version(tmp_path):
    """A file indexed public, then given a sidecar or front matter meant to restrict it that cannot be
    read: the old public version is not kept (an unreadable file with the same text is)."""
    root = _kb(tmp_path)
    shutil.copy(THREADS / "forum.jsonl", root / "forum.jsonl")
    (root / "budget.md").write_text("# Budget\n\nThe budget is five million.\n")
    (root / "notes.md").write_text("# Notes\n\nThe kitchen closes at five.\n")
    _build(root, tmp_path)
    assert _public(tmp_path, "kb/forum.jsonl") and _public(tmp_path, "kb/budget.md")
    (root / "forum.jsonl.meta.yaml").write_text("title: Forum\ngroups: [finance]\n")
    (root / "budget.md").write_text("---\ngroups: [finance]\n\nThe budget is five million.\n")
    (root / "notes.md").write_bytes(b"\xff\xfe not UTF-8 any more")
    rep, skipped, warnings = _build(root, tmp_path, update=True)
    assert "previously indexed version is removed" in skipped["forum.jsonl"]
    assert "previously indexed version is removed" in skipped["budget.md"]
    assert [os.path.basename(k.path) for k in rep.kept] == ["notes.md"]  # not about access: kept
    assert not _rows(tmp_path, "forum.jsonl") and not _rows(tmp_path, "budget.md") and _rows(tmp_path, "notes.md")


def test_sidecar_group_typo_is_refused(tmp_path):
    root = _kb(tmp_path)
    (root / "budget.md").write_text("# Budget\n\nThe budget is five million.\n")
    (root / "budget.md.meta.yaml").write_text("group: [finance]\n")
    shutil.copy(THREADS / "forum.jsonl", root / "forum.jsonl")
    (root / "forum.jsonl.meta.yaml").write_text("Groupes: [finance]\n")
    rep, skipped, _ = _build(root, tmp_path)
    assert "did you mean `groups:`" in skipped["budget.md"] and "did you mean `groups:`" in skipped["forum.jsonl"]
    assert rep.sources_indexed == 1


# ---------------------------------------------------------------- 2. front matter fails closed

@pytest.mark.parametrize("lead", ["\n", "\n\n  \n", "\ufeff", "\ufeff\ufeff\n", "  ", "\u200b\n"])
def test_front_matter_after_blank_lines_or_bom_is_read(tmp_path, lead):
    root = _kb(tmp_path)
    (root / "budget.md").write_bytes((lead + "---\ntitle: Budget 2025\ngroups: [finance]\n---\n\n"
                                      "The budget is five million.\n").encode("utf-8"))
    rep, skipped, _ = _build(root, tmp_path)
    assert not skipped
    rows = _rows(tmp_path, "budget.md")
    assert rows and all(r["groups"] == ["finance"] and r["title"] == "Budget 2025" for r in rows)
    assert not any("groups" in r["text"] or "finance" in r["text"] for r in rows)
    assert _public(tmp_path, "kb/budget.md") == 0


@pytest.mark.parametrize("text, words", [
    ("---\ntitle: Budget\ngroups: [finance]\n\nThe budget is five million.\n", "no closing ---"),
    ("\n---\ngroups: [finance]\nThe budget is five million.\n", "no closing ---"),
    ("+++\ntitle = \"Budget\"\ngroups = [\"finance\"]\n+++\n\nThe budget is five million.\n", "TOML front matter"),
    ("---\ngroup: [finance]\n---\n\nThe budget is five million.\n", "did you mean `groups:`"),
])
def test_front_matter_that_cannot_be_read_skips_the_file(tmp_path, text, words):
    root = _kb(tmp_path)
    (root / "budget.md").write_text(text)
    rep, skipped, _ = _build(root, tmp_path)
    assert words in skipped["budget.md"] and "\n" not in skipped["budget.md"]
    assert rep.sources_indexed == 1 and not _rows(tmp_path, "budget.md")


def test_front_matter_in_plain_text(tmp_path):
    root = _kb(tmp_path)
    (root / "budget.txt").write_text("\n---\ntitle: Budget\ngroups: [finance]\n---\nThe budget is five million.\n")
    (root / "memo.txt").write_text("---\nMEMO\n---\nThe kitchen closes at five.\n")  # rules, not metadata
    (root / "open.txt").write_text("---\ngroups: [finance]\nThe budget is five million.\n")
    rep, skipped, _ = _build(root, tmp_path)
    assert set(skipped) == {"open.txt"} and "no closing ---" in skipped["open.txt"]
    rows = _rows(tmp_path, "budget.txt")
    assert rows and all(r["groups"] == ["finance"] and "groups" not in r["text"] for r in rows)
    assert any("kitchen closes" in r["text"] for r in _rows(tmp_path, "memo.txt"))


# ---------------------------------------------------------------- 3. YAML alias bombs

def _bomb(key: str | None = None, levels: int = 9, width: int = 9) -> str:
    lines = [f"a0: &a0 [{','.join(['lol'] * width)}]"]
    lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    if key:
        lines.append(f"{key}: *a{levels - 1}")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_fast_and_small():
    text = _bomb("tags")
    assert len(text) < 500
    tracemalloc.start()
    t = time.perf_counter()
    with pytest.raises(safeyaml.YamlRefused, match=r"^front matter uses YAML aliases \(&anchor/\*alias\), "
                                                   r"which are refused for safety; write the values out$"):
        safeyaml.load(text, "front matter")
    seconds = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert seconds < 0.1 and peak < 2_000_000, (seconds, peak)
    with pytest.raises(safeyaml.YamlRefused):
        safeyaml.load("base: &b {x: 1}\nother:\n  <<: *b\n", "x")  # merge keys are aliases too
    with pytest.raises(safeyaml.YamlRefused, match="nested"):
        safeyaml.load("[" * 5000 + "]" * 5000, "x")
    assert safeyaml.load("a: 'text with & and * in it'\nb: [1, 2]\n") == {"a": "text with & and * in it", "b": [1, 2]}


def test_alias_bombs_in_every_yaml_the_ingest_reads(tmp_path):
    root = _kb(tmp_path)
    (root / "front.md").write_text("---\n" + _bomb("groups") + "---\n\nBody text.\n")
    (root / "tagged.md").write_text("---\n" + _bomb("tags") + "---\n\nBody text.\n")
    (root / "side.md").write_text("# Side\n\nBody text.\n")
    (root / "side.md.meta.yaml").write_text(_bomb("groups"))
    shutil.copy(THREADS / "forum.jsonl", root / "forum.jsonl")
    (root / "forum.jsonl.meta.yaml").write_text(_bomb("tags"))
    (root / "people.yaml").write_text(_bomb() + "people:\n  - name: Dana Lee\n    groups: *a8\n")
    t = time.perf_counter()
    rep, skipped, _ = _build(root, tmp_path)
    assert time.perf_counter() - t < 60
    assert set(skipped) == {"front.md", "tagged.md", "side.md", "forum.jsonl", "people.yaml"}, skipped
    assert all("YAML aliases" in r and "write the values out" in r for r in skipped.values()), skipped
    assert rep.sources_indexed == 1 and _rows(tmp_path, "lunch.md")


def test_alias_bomb_in_sources_yaml_and_eval_suite(tmp_path):
    from askcolleague.evaluation import SuiteError, load_suite

    (tmp_path / "sources.yaml").write_text(_bomb("sources"))
    t = time.perf_counter()
    with pytest.raises(ConfigError, match="YAML aliases"):
        read_sources_yaml(tmp_path / "sources.yaml")
    (tmp_path / "suite.yaml").write_text(_bomb("questions"))
    with pytest.raises(SuiteError, match="YAML aliases"):
        load_suite(tmp_path / "suite.yaml")
    assert time.perf_counter() - t < 1


def test_people_file_alias_bomb(tmp_path):
    from askcolleague.indexing.identity import load_people

    (tmp_path / "people.yaml").write_text(_bomb() + "people:\n  - name: Dana\n    groups: *a8\n")
    with pytest.raises(LoadError, match=r"people file uses YAML aliases"):
        load_people(tmp_path / "people.yaml")


# ---------------------------------------------------------------- 4. file names that are not UTF-8

def test_file_name_with_invalid_utf8(tmp_path):
    root = _kb(tmp_path)
    broot = os.fsencode(str(root))
    with open(os.path.join(broot, b"bad\xff.md"), "wb") as f:
        f.write(b"# Budget review\n\nThe quarterly numbers are fine.\n")
    with open(os.path.join(broot, b"odd\xfe.xyz"), "wb") as f:  # skipped: its warning must print too
        f.write(b"data")
    (root / "surrogates.jsonl").write_text('{"id": "1", "title": "Lone \\ud800 title", "author": "Ann \\udcff",'
                                           ' "body": "Body with a lone \\udfff surrogate."}\n')
    idx = tmp_path / "idx"
    env = {k: v for k, v in fakes_env().items() if not k.startswith("ASKCOLLEAGUE_")}
    env["ASKCOLLEAGUE_PLUGINS"] = "fakes"  # the fake model registers itself (tests/fakes.py)
    cmd = [sys.executable, "-m", "askcolleague", "index", "build", str(root), "--index", str(idx),
           "--model", "fake:hashing-bow", "--json"]
    p = subprocess.run(cmd, capture_output=True, cwd=ROOT, env=env, timeout=300)
    assert p.returncode == 0, p.stderr.decode(errors="replace")[-2000:]
    report = json.loads(p.stdout)
    assert report["sources_indexed"] == 3
    assert [s["path"].endswith("odd\\xfe.xyz") for s in report["skipped"]] == [True]
    assert b"odd\\xfe.xyz" in p.stderr
    st = subprocess.run([sys.executable, "-m", "askcolleague", "index", "status", "--index", str(idx), "--json"],
                        capture_output=True, cwd=ROOT, env=env, timeout=120)
    assert st.returncode == 0, st.stderr.decode(errors="replace")[-2000:]
    keys = {s["key"] for s in json.loads(st.stdout)["sources"]}
    assert "kb/bad\\xff.md" in keys
    text = subprocess.run([sys.executable, "-m", "askcolleague", "index", "status", "--index", str(idx)],
                          capture_output=True, cwd=ROOT, env=env, timeout=120)
    assert text.returncode == 0
    rows = _rows(tmp_path)
    assert any("quarterly numbers" in r["text"] for r in rows)
    sur = [r for r in rows if r["source"] == "kb/surrogates.jsonl"]
    assert sur and "\ufffd" in sur[0]["title"] and "\ufffd" in sur[0]["text"]
    # an update finds the same file under the same key: nothing to re-read
    up = subprocess.run([sys.executable, "-m", "askcolleague", "index", "update", "--index", str(idx), "--json"],
                        capture_output=True, cwd=ROOT, env=env, timeout=300)
    assert up.returncode == 0 and json.loads(up.stdout)["changed"] is False, up.stderr[-2000:]


# ---------------------------------------------------------------- 5. symbolic links out of the tree

def test_file_symlink_outside_the_tree_is_skipped(tmp_path):
    root = _kb(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text("# Salaries\n\nThe CEO earns a lot.\n")
    os.symlink(outside / "secret.md", root / "secret.md")
    if Path("/etc/passwd").is_file():
        os.symlink("/etc/passwd", root / "passwd.txt")
    (root / "sub").mkdir()
    (root / "sub" / "real.md").write_text("# Inside\n\nThe kitchen is on the third floor.\n")
    os.symlink(root / "sub" / "real.md", root / "alias.md")  # inside the tree: still read
    os.symlink(outside, root / "ext")  # a folder outside: not followed, and said so
    rep, skipped, _ = _build(root, tmp_path)
    reason = skipped["secret.md"]
    assert "symbolic link to a file outside" in reason and str(outside / "secret.md") in reason
    assert "ASKCOLLEAGUE_FOLLOW_SYMLINKS=1" in reason and "copy" in reason
    if "passwd.txt" in os.listdir(root):
        assert "/etc/passwd" in skipped["passwd.txt"]
    assert "symbolic link to a folder outside" in skipped["ext"]
    texts = " ".join(r["text"] for r in _rows(tmp_path))
    assert "CEO" not in texts and "root:" not in texts
    assert {r["source"] for r in _rows(tmp_path)} == {"kb/lunch.md", "kb/sub/real.md", "kb/alias.md"}


def test_follow_symlinks_setting_and_links_named_directly(tmp_path):
    root = _kb(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text("# Salaries\n\nThe CEO earns a lot.\n")
    os.symlink(outside / "secret.md", root / "secret.md")
    os.symlink(outside, root / "ext")
    os.symlink(root, outside / "back")  # a loop through the followed folder: read once
    rep, skipped, _ = _build(root, tmp_path, follow_symlinks=True)
    assert not skipped
    assert {r["source"] for r in _rows(tmp_path)} == {"kb/lunch.md", "kb/secret.md", "kb/ext/secret.md"}
    # a link the user names on the command line is read wherever it leads
    os.symlink(outside / "secret.md", tmp_path / "named.md")
    os.symlink(outside, tmp_path / "named-dir")
    rep = build([tmp_path / "named.md", tmp_path / "named-dir"], tmp_path / "idx2", embedder=FakeEmbedder(),
                warn=lambda m: None, settings=Settings.load())
    assert rep.sources_indexed == 2
    assert [os.path.basename(s.path) for s in rep.skipped] == ["back"]  # inside the named folder, a link out of it


def test_follow_symlinks_environment_variable(monkeypatch):
    monkeypatch.setenv("ASKCOLLEAGUE_FOLLOW_SYMLINKS", "1")
    assert Settings.load().follow_symlinks is True
    monkeypatch.delenv("ASKCOLLEAGUE_FOLLOW_SYMLINKS")
    assert Settings.load().follow_symlinks is False


def test_fifo_is_skipped_not_waited_on(tmp_path):
    root = _kb(tmp_path)
    os.mkfifo(root / "pipe.md")
    rep, skipped, _ = _build(root, tmp_path)
    assert "not a regular file" in skipped["pipe.md"] and rep.sources_indexed == 1


# ---------------------------------------------------------------- 6. chunks are bounded

def _check_pieces(emb, text, budget):
    pieces = split_text(emb, text, budget, 32)
    assert pieces and all(len(p) <= MAX_CHUNK_CHARS for p in pieces), max(map(len, pieces))
    assert all(emb.count_tokens(p) <= budget for p in pieces)
    assert sum(len(p) for p in pieces) >= len(text.replace(" ", "").replace("\n", "")) * 0.99  # nothing lost
    return pieces


def test_split_text_bounds_lines_without_spaces():
    emb = FakeEmbedder()
    assert len(_check_pieces(emb, "x" * 200_000, 150)) == 50
    _check_pieces(emb, ("y" * 7000 + " ") * 10, 150)
    _check_pieces(emb, "QUJD+/" * 50_000, 150)
    _check_pieces(emb, "short line. " * 3000 + "z" * 30_000 + " end.", 150)


def test_split_text_windows_give_the_same_pieces(monkeypatch):
    import random

    import askcolleague.indexing.chunker as chunker

    rnd = random.Random(7)
    words = ["alpha", "beta.", "gamma\n", "delta", "epsilon!", "zeta", "eta,", "theta"]
    text = " ".join(rnd.choice(words) for _ in range(30_000))
    emb = FakeEmbedder()
    whole = split_text(emb, text, 120, 24)
    monkeypatch.setattr(chunker, "_WINDOW", 10_000)
    assert split_text(emb, text, 120, 24) == whole
    monkeypatch.setattr(chunker, "_WINDOW", 10_000)
    spaced = "a" + " " * 25_000 + "b" + " " * 25_000 + "c"  # windows with (nearly) nothing in them
    assert split_text(emb, spaced, 120, 24) == ["a", "b", "c"]


def test_chunk_doc_bounds_titles_and_sections():
    emb = FakeEmbedder()
    doc = Doc(doc_id="d", source="d", title="T" * 100_000,
              blocks=[Block(text="w" * 50_000, section="S" * 100_000, context="C" * 100_000)])
    chunks = chunk_doc(doc, emb, ChunkerConfig())
    limit = min(ChunkerConfig().max_tokens, emb.max_tokens - emb.special_tokens)
    assert len(chunks) >= 13
    for c in chunks:
        assert len(c.text) <= MAX_CHUNK_CHARS and len(c.title) <= MAX_TITLE_CHARS
        assert len(c.section) <= MAX_TITLE_CHARS and len(c.embed_text) <= 6000 and c.n_tokens <= limit


def test_one_line_file_is_chunked_to_the_budget(tmp_path):
    root = _kb(tmp_path)
    (root / "dump.txt").write_text("Data dump\n\nThe blob below is the export.\n\n" + "x" * 2_000_000 + "\n")
    t = time.perf_counter()
    rep, skipped, _ = _build(root, tmp_path)
    assert not skipped and time.perf_counter() - t < 120
    rows = _rows(tmp_path, "dump.txt")
    assert len(rows) >= 500 and max(len(r["text"]) for r in rows) <= MAX_CHUNK_CHARS
    assert max(r["n_tokens"] for r in rows) <= 200


@pytest.mark.slow
def test_real_tokenizer_chunks_of_a_one_line_file(real_embedder):
    import base64
    import random

    limit = min(ChunkerConfig().max_tokens, real_embedder.max_tokens - real_embedder.special_tokens)
    blob = base64.b64encode(random.Random(3).randbytes(600_000)).decode()
    for text in ("x" * 2_000_000, blob, ("word" * 40 + " ") * 2000):
        doc = Doc(doc_id="d", source="d", title="Dump", blocks=[Block(text=text)])
        t = time.perf_counter()
        chunks = chunk_doc(doc, real_embedder, ChunkerConfig())
        assert time.perf_counter() - t < 120
        assert chunks and max(len(c.text) for c in chunks) <= MAX_CHUNK_CHARS
        assert max(c.n_tokens for c in chunks) <= limit
        assert all(real_embedder.count_tokens(c.embed_text) <= limit for c in chunks[:50])


# ---------------------------------------------------------------- 7. office files that expand

def _docx(text: str) -> bytes:
    import docx

    d = docx.Document()
    d.add_paragraph(text)
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def test_docx_that_expands_past_the_bound_is_skipped_fast(tmp_path):
    root = _kb(tmp_path)
    (root / "fine.docx").write_bytes(_docx("The fire drill is on Tuesday at ten."))
    bomb = io.BytesIO(_docx("Nothing to see."))
    with zipfile.ZipFile(bomb, "a", zipfile.ZIP_DEFLATED) as z:
        z.writestr("word/media/blob.bin", b" " * 20_000_000)
    (root / "bomb.docx").write_bytes(bomb.getvalue())
    assert (root / "bomb.docx").stat().st_size < 200_000
    t = time.perf_counter()
    rep, skipped, _ = _build(root, tmp_path, max_file_mb=0.5)  # bound: 10 x 0.5 MB
    assert time.perf_counter() - t < 30
    reason = skipped["bomb.docx"]
    assert reason.startswith("DOCX expands to more than 5.24 MB (zip bomb?)") and "ASKCOLLEAGUE_MAX_FILE_MB" in reason
    assert rep.sources_indexed == 2 and any("fire drill" in r["text"] for r in _rows(tmp_path, "fine.docx"))


def test_office_zip_with_too_many_members(tmp_path):
    from askcolleague.loaders.base import MAX_OFFICE_MEMBERS, check_zip

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for i in range(MAX_OFFICE_MEMBERS + 1):
            z.writestr(f"m{i}", b"")
    with pytest.raises(LoadError, match=r"has 10001 members, over the 10000 allowed \(zip bomb\?\)"):
        check_zip(io.BytesIO(buf.getvalue()), 1_000_000, "PPTX", "re-save it")


# ---------------------------------------------------------------- 8. a full disk

def _two_versions(tmp_path):
    root = _kb(tmp_path)
    rep, _, _ = _build(root, tmp_path)
    (root / "more.md").write_text("# More\n\nThe parking garage opens at seven.\n")  # the next build has work
    return root, rep.version


def _assert_kept(tmp_path, version):
    idx_dir = tmp_path / "idx"
    assert not [d.name for d in idx_dir.iterdir() if d.name.endswith(".tmp")]
    assert sorted(d.name for d in idx_dir.iterdir() if d.name.startswith("v-")) == [version]
    idx = Index.open(idx_dir, embedder=FakeEmbedder())
    try:
        assert idx.vdir.name == version and {r["source"] for r in idx.store.chunk_rows()} == {"kb/lunch.md"}
    finally:
        idx.close()


def _disk_full_message(e, tmp_path):
    msg = str(e)
    assert "\n" not in msg and str(tmp_path / "idx") in msg and "disk full" in msg
    assert "MB" in msg and "free space on" in msg and "run again" in msg and "previous version is unchanged" in msg


@pytest.mark.parametrize("where", ["faiss", "sqlite", "manifest", "bm25"])
def test_disk_full_keeps_the_previous_version_and_removes_the_partial_one(tmp_path, monkeypatch, where):
    import askcolleague.index.faiss as faiss_mod
    import askcolleague.index.folder as index_mod
    import askcolleague.index.bm25 as lexical

    root, version = _two_versions(tmp_path)
    if where == "faiss":  # (the vectors file is written as the vectors arrive)
        def fail(*a, **k):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        monkeypatch.setattr(faiss_mod.FlatFileWriter, "add", fail)
    elif where == "sqlite":
        real = index_mod.Store.create

        def fail(path):
            real(path)
            raise sqlite3.OperationalError("database or disk is full")
        monkeypatch.setattr(index_mod.Store, "create", staticmethod(fail))
    elif where == "manifest":
        real_write = Path.write_text

        def fail(self, *a, **k):
            if self.name == "manifest.json":
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
            return real_write(self, *a, **k)
        monkeypatch.setattr(Path, "write_text", fail)
    else:
        def fail(*a, **k):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        monkeypatch.setattr(lexical, "build", fail)
    with pytest.raises(DiskFullError) as e:
        _build(root, tmp_path)
    _disk_full_message(e.value, tmp_path)
    _assert_kept(tmp_path, version)
    monkeypatch.undo()
    rep, _, _ = _build(root, tmp_path)  # with space again, the next build just works
    assert rep.sources_indexed == 2


def test_disk_full_through_the_cli_is_one_line(tmp_path, monkeypatch):
    from click.testing import CliRunner

    import askcolleague.index.faiss as faiss_mod
    from askcolleague.cli import cli

    root, version = _two_versions(tmp_path)

    def fail(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(faiss_mod.FlatFileWriter, "close", fail)
    res = CliRunner().invoke(cli, ["index", "build", str(root), "--index", str(tmp_path / "idx"),
                                   "--model", "fake:hashing-bow", "-q"])
    assert res.exit_code == 1 and "Traceback" not in res.output
    line = [ln for ln in res.output.splitlines() if ln.startswith("Error:")]
    assert len(line) == 1 and "disk full" in line[0] and "free space on" in line[0], res.output
    _assert_kept(tmp_path, version)


def test_stale_tmp_versions_are_removed_at_the_start(tmp_path, monkeypatch):
    """Left by a crashed or disk-full build, they are removed before the new version is written (their
    space is what the new one needs), not only after it was published."""
    import askcolleague.index.folder as index_mod

    root, version = _two_versions(tmp_path)
    stale = tmp_path / "idx" / "v-20200101T000000-dead00.tmp"
    stale.mkdir()
    (stale / "store.sqlite").write_bytes(b"\0" * 1000)
    (tmp_path / "idx" / "CURRENT.tmp").write_text("v-20200101T000000-dead00\n")
    real, seen = index_mod.Store.create, []

    def create(path):
        seen.append(stale.exists() or (tmp_path / "idx" / "CURRENT.tmp").exists())
        return real(path)
    monkeypatch.setattr(index_mod.Store, "create", staticmethod(create))
    rep, _, _ = _build(root, tmp_path)
    assert seen == [False] and not stale.exists()
    assert rep.sources_indexed == 2


def test_disk_full_on_a_real_small_filesystem(tmp_path):
    """A real tmpfs of 3 MB: the first build fits, the second does not; then space is freed."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    try:
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True,
                           text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        pytest.skip(f"cannot mount a tmpfs here: {e}")
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {p.stderr.strip()}")
    try:
        root = _kb(tmp_path)
        idx = mnt / "idx"
        rep = build([root], idx, embedder=FakeEmbedder(), warn=lambda m: None, settings=Settings.load())
        version = rep.version
        words = " ".join(f"w{i}x{i * 7919 % 100003}" for i in range(250_000))  # ~3.5 MB of distinct words
        (root / "big.txt").write_text("Big file\n\n" + words + "\n")
        with pytest.raises(DiskFullError) as e:
            build([root], idx, embedder=FakeEmbedder(), warn=lambda m: None, settings=Settings.load())
        msg = str(e.value)
        assert "\n" not in msg and f"free space on {mnt}" in msg and "previous version is unchanged" in msg
        assert not [d for d in idx.iterdir() if d.name.endswith(".tmp")]
        assert [d.name for d in idx.iterdir() if d.name.startswith("v-")] == [version]
        Index.open(idx, embedder=FakeEmbedder()).close()
        (root / "big.txt").unlink()
        (root / "more.md").write_text("# More\n\nThe parking garage opens at seven.\n")
        rep = build([root], idx, embedder=FakeEmbedder(), warn=lambda m: None, settings=Settings.load())
        assert rep.sources_indexed == 2
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=30)
