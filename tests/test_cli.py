"""End to end through the command line, with the real model, on the bundled demo corpus."""
from __future__ import annotations

import json
import subprocess
import sys

from conftest import DEMO, ROOT


def run(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "askcolleague", *args], capture_output=True, text=True, cwd=ROOT)
    if check:
        assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def test_demo_build_report(demo_build):
    path, report, _ = demo_build
    assert report["sources_indexed"] >= 45 and not report["skipped"]
    assert report["chunks"] > 300 and report["embedded"] == report["chunks"]
    assert report["people"] >= 16


def test_readme_states_the_demo_corpus_counts(demo_build):
    """README's "a fictional robotics company with N sources and M people" matches the demo build."""
    import re

    import yaml

    _, report, _ = demo_build
    m = re.search(r"with (\d+) sources and (\d+) people\)", (ROOT / "README.md").read_text())
    assert m, "README no longer states the demo corpus counts"
    profiles = yaml.safe_load((DEMO / "people.yaml").read_text())["people"]
    assert (int(m.group(1)), int(m.group(2))) == (report["sources_indexed"], len(profiles))
    assert report["people"] > len(profiles)  # authors without a profile (Alex Morgan, Chris Doyle) too


def test_status_and_people(demo_index):
    st = json.loads(run("index", "status", "--index", str(demo_index), "--json").stdout)
    assert st["model"]["id"] == "sentence-transformers/all-MiniLM-L6-v2" and st["model"]["dim"] == 384
    kinds = {s["kind"] for s in st["sources"]}
    assert {"document", "wxr", "slack", "mbox", "jsonl"} <= kinds
    exts = {s["key"].rsplit(".", 1)[-1] for s in st["sources"] if s["kind"] == "document"}
    assert {"md", "txt", "rst", "html", "pdf", "docx", "pptx", "eml"} <= exts
    people = json.loads(run("people", "list", "--index", str(demo_index), "--json").stdout)
    by_name = {p["name"]: p for p in people}
    assert len([p for p in people if p["has_profile"]]) >= 15
    # every author resolved to one person: no duplicate people for one email
    emails = [p["email"] for p in people if p["email"]]
    assert len(emails) == len(set(emails))
    # people with profiles wrote in several kinds of source
    assert sum(1 for p in people if len(p["wrote"]) >= 3) >= 5
    assert any(not p["has_profile"] and p["wrote"] for p in people)  # an author without a profile
    text = run("people", "list", "--index", str(demo_index)).stdout
    assert "wrote:" in text and all(name in text for name in list(by_name)[:5])


def test_update_with_nothing_changed(demo_index):
    out = run("index", "update", "--index", str(demo_index), "--json")
    rep = json.loads(out.stdout)
    assert rep["embedded"] == 0 and rep["changed"] is False


def test_build_nothing_indexable_fails_clearly(tmp_path):
    (tmp_path / "a.md").write_bytes(b"\x00\x00binary")
    proc = run("index", "build", str(tmp_path), "--index", str(tmp_path / "idx"), check=False)
    assert proc.returncode == 1
    assert "a.md" in proc.stderr and "binary" in proc.stderr and "nothing could be indexed" in proc.stderr


def test_missing_index_says_how_to_build(tmp_path):
    proc = run("ask", "anything", "--index", str(tmp_path / "none"), check=False)
    assert proc.returncode == 1 and "index build" in proc.stderr and "Traceback" not in proc.stderr


def test_an_index_uri_no_backend_serves_is_refused(tmp_path):
    """`--index scheme://…` that no backend registered: one line naming it, and no folder made of it."""
    for args in (["ask", "hi"], ["index", "build", str(DEMO)]):
        p = subprocess.run([sys.executable, "-m", "askcolleague", *args, "--index", "mongodb://kb:secret@db/knowledge"],
                           capture_output=True, text=True, cwd=tmp_path, timeout=120)
        assert p.returncode == 1 and "Traceback" not in p.stderr
        errors = [ln for ln in (p.stdout + p.stderr).splitlines() if ln.startswith("Error:")]
        assert errors == ["Error: mongodb://…: no index backend for mongodb://; use an index folder or "
                          "postgres:// or postgresql://"]
        assert "secret" not in p.stdout + p.stderr
        assert not list(tmp_path.iterdir())
