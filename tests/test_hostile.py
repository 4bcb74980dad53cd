"""Hostile and broken input: the ingest never crashes, it skips the file and says why."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fakes import FakeEmbedder, fakes_env
from askcolleague.index import Index
from askcolleague.indexing.build import build
from askcolleague.settings import Settings


def _ok(root):
    (root / "ok.jsonl").write_text(json.dumps({"id": "1", "title": "Fine", "author": "Ann <a@x.test>",
                                               "body": "A perfectly normal thread about lunch."}) + "\n")


def _build(root, tmp_path, **settings):
    warnings = []
    rep = build([root], tmp_path / "idx", embedder=FakeEmbedder(), warn=warnings.append,
                settings=Settings.load(**settings))
    return rep, {os.path.basename(s.path): s.reason for s in rep.skipped}, warnings


def test_symlink_loop_and_broken_link(tmp_path):
    root = tmp_path / "kb"
    (root / "sub").mkdir(parents=True)
    _ok(root)
    os.symlink(root, root / "sub" / "loop")          # a folder link back up: not followed
    os.symlink(root / "missing.md", root / "dangling.md")
    rep, skipped, _ = _build(root, tmp_path)
    assert rep.sources_indexed == 1
    assert "broken symbolic link" in skipped["dangling.md"]


def test_deeply_nested_json(tmp_path):
    root = tmp_path / "kb"
    root.mkdir()
    _ok(root)
    deep = {"id": "d", "title": "Deep", "body": "x", "comments": []}
    cur = deep
    for i in range(400):  # json.dumps itself stops near 1000 frames
        nxt = {"id": f"c{i}", "author": "Bob", "body": "reply", "comments": []}
        cur["comments"].append(nxt)
        cur = nxt
    (root / "deep.jsonl").write_text(json.dumps(deep) + "\n")
    (root / "brackets.jsonl").write_text("[" * 100_000 + "]" * 100_000 + "\n")
    rep, skipped, _ = _build(root, tmp_path)
    assert set(skipped) == {"deep.jsonl", "brackets.jsonl"} and rep.sources_indexed == 1


def test_huge_line_is_bounded_by_size_limit(tmp_path):
    root = tmp_path / "kb"
    root.mkdir()
    _ok(root)
    with open(root / "huge.txt", "wb") as f:  # a sparse 1 GB file of one line: never read into memory
        f.seek(1 << 30)
        f.write(b"x")
    rep, skipped, _ = _build(root, tmp_path)
    assert "limit" in skipped["huge.txt"] and rep.sources_indexed == 1


def test_control_characters_are_dropped(tmp_path):
    root = tmp_path / "kb"
    root.mkdir()
    (root / "ctl.jsonl").write_text(json.dumps({"id": "1", "title": "Bell\x07 title", "author": "Ann",
                                                "body": "Text with \x1b[31m escapes \x00 and \x08 controls."}) + "\n")
    rep, skipped, _ = _build(root, tmp_path)
    assert not skipped
    idx = Index.open(tmp_path / "idx", embedder=FakeEmbedder())
    text = " ".join(r["text"] + r["title"] for r in idx.store.chunk_rows())
    assert not any(ch in text for ch in "\x07\x1b\x00\x08")


_AS_NOBODY = r"""
import json, os, sys, tempfile
from pathlib import Path
from fakes import FakeEmbedder
from askcolleague.indexing.build import build
kb, out = Path(sys.argv[1]), Path(sys.argv[2])
# warm every lazy import and data file (they live under /root, which `nobody` cannot enter)
warm = Path(tempfile.mkdtemp())
(warm / "w.md").write_text("# Warm\n\nWarm up the loaders.")
build([warm], warm / "idx", embedder=FakeEmbedder(), warn=lambda m: None)
try:
    os.setgroups([]); os.setgid(65534); os.setuid(65534)  # now an ordinary user: permissions apply
except OSError as e:  # e.g. a user namespace without uid 65534
    print(json.dumps({"cannot_drop": str(e)}))
    sys.exit(0)
rep = build([kb], out / "idx", embedder=FakeEmbedder(), warn=lambda m: None)
print(json.dumps({"indexed": rep.sources_indexed, "skipped": {os.path.basename(e.path): e.reason for e in rep.skipped}}))
"""


def test_unreadable_file(tmp_path):
    """A file the ingest may not read is skipped with the reason; as root, the build drops to `nobody`."""
    import stat
    import subprocess
    import sys
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="ac-perm-"))  # outside root's 0700 pytest folder
    try:
        os.chmod(base, 0o755)
        root = base / "kb"
        root.mkdir()
        _ok(root)
        (root / "secret.md").write_text("# Secret\n\ntext")
        os.chmod(root / "secret.md", 0)
        out = base / "out"
        out.mkdir()
        os.chmod(out, stat.S_IRWXU | stat.S_IRWXG | stat.S_IRWXO)
        if os.geteuid() == 0:
            p = subprocess.run([sys.executable, "-c", _AS_NOBODY, str(root), str(out)], capture_output=True,
                               text=True, timeout=300, env=fakes_env())
            assert p.returncode == 0, p.stderr[-2000:]
            res = json.loads(p.stdout.strip().splitlines()[-1])
            if "cannot_drop" in res:
                pytest.skip(f"running as root and cannot drop to nobody: {res['cannot_drop']}")
            skipped, indexed = res["skipped"], res["indexed"]
        else:
            rep, skipped, _ = _build(root, out)
            indexed = rep.sources_indexed
        assert "permission" in skipped["secret.md"].lower() and indexed == 1
    finally:
        import shutil

        shutil.rmtree(base, ignore_errors=True)


def test_file_changing_while_read(tmp_path, monkeypatch):
    """A file rewritten during its read: indexed as read, a warning, and the next update reads it again."""
    import askcolleague.indexing.build as index_mod

    root = tmp_path / "kb"
    root.mkdir()
    _ok(root)
    doc = root / "moving.md"
    doc.write_text("# Moving\n\nThe office moves on Monday.\n")
    real = index_mod.load_source

    def racing(spec, max_bytes):
        docs = real(spec, max_bytes)
        if spec.path.name == "moving.md":
            doc.write_text("# Moving\n\nThe office moves on Friday instead.\n")  # written right after the read
        return docs

    monkeypatch.setattr(index_mod, "load_source", racing)
    rep, skipped, warnings = _build(root, tmp_path)
    assert not skipped and rep.sources_indexed == 2
    assert any("moving.md: changed while being read" in w for w in warnings), warnings
    monkeypatch.setattr(index_mod, "load_source", real)
    upd = build([root], tmp_path / "idx", embedder=FakeEmbedder(), warn=lambda m: None, update=True)
    assert upd.changed and upd.sources_reused == 1  # ok.jsonl reused, moving.md read again
    texts = [r["text"] for r in Index.open(tmp_path / "idx", embedder=FakeEmbedder()).store.chunk_rows()]
    assert any("Friday" in t for t in texts) and not any("Monday" in t for t in texts)
