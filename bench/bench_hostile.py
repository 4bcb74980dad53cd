"""Hostile input at ingest: does `index build` finish, how long does it take, how much memory, and why
is each hostile file skipped? Then: are the good files answerable, and is no restricted passage
visible to someone without groups?

    python bench/bench_hostile.py                 # every case, the real model (onnx-int8 runtime)
    python bench/bench_hostile.py --cases alias-front-matter,docx-bomb

Each case is its own corpus, built in a temp folder: a few good files (a public Markdown page, a
JSONL forum thread, a Markdown page restricted to `groups: [finance]`) next to the hostile input(s):

* alias-front-matter / alias-sidecar / alias-people / alias-tags: a 442-byte YAML "billion laughs"
  (9 levels of 9 aliases) in Markdown front matter (`groups:`), in a `FILE.meta.yaml` sidecar, in a
  `people.yaml` (a person's `groups:`), and aliased into `tags:`;
* bad-utf8-name: a Markdown file whose name has the byte 0xFF (not UTF-8);
* symlink-passwd: `passwd.txt` → `/etc/passwd` (outside the tree);
* one-line-45mb: a 45 MB `.txt` of one line without spaces;
* docx-bomb: a DOCX whose extra member is 2 GB of zeros (the file is about 2 MB);
* front-matter-blank-line: front matter with `groups: [finance]` after a blank line and a BOM;
* sidecar-threads: `.jsonl`, `.mbox` and WordPress `.xml` with sidecars `groups: [finance]`.

Every build runs as `python -m askcolleague index build DIR --index IDX --json -q` in a fresh
child of a small wrapper process, whose `getrusage(RUSAGE_CHILDREN).ru_maxrss` is that build's own
peak RSS. A warm-up build first makes the ONNX model cache, so no case pays for the export. After
each build: `askcolleague ask --as dana@acme.example` (an author with no groups) must cite the good
public page and no restricted one, and the store must hold no passage an asker without groups can
see that comes from a restricted input or says its secret word. Writes bench/results/hostile.json.
"""
from __future__ import annotations

import argparse
import base64
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine  # noqa: E402

THREADS = ROOT / "tests" / "fixtures" / "threads"
RESULTS = ROOT / "bench" / "results"
TARGET_RSS_MB = 1536

PUBLIC = "# Lunch\n\nThe canteen serves lunch from noon to two on the third floor, every weekday.\n"
PUBLIC_Q = "When is lunch served in the canteen?"
SECRET = "---\ntitle: Acquisition\ngroups: [finance]\n---\n\nThe Zephyrine acquisition closes in May for 41 million.\n"
SECRET_WORD = "Zephyrine"
ASKER = "dana@acme.example"  # the forum thread's author: a person with no groups
THREAD = {"id": "t1", "title": "Which VPN client?", "author": "Dana Lee <dana@acme.example>",
          "body": "We use WireGuard for the office VPN; the config is on the wiki.",
          "comments": [{"id": "c1", "author": "Sam Ortiz", "body": "Thanks, that works on Linux too."}]}

_WRAPPER = r"""
import json, resource, subprocess, sys, time
t = time.perf_counter()
p = subprocess.run(sys.argv[1:], capture_output=True)
print(json.dumps({"rc": p.returncode, "seconds": time.perf_counter() - t,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
                  "stdout": p.stdout.decode("utf-8", "replace"), "stderr": p.stderr.decode("utf-8", "replace")}))
"""


def bomb(key: str | None = None, levels: int = 9, width: int = 9) -> str:
    lines = [f"a0: &a0 [{','.join(['lol'] * width)}]"]
    lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    if key:
        lines.append(f"{key}: *a{levels - 1}")
    return "\n".join(lines) + "\n"


def docx_bytes(text: str) -> bytes:
    import docx

    d = docx.Document()
    d.add_paragraph(text)
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def write_docx_bomb(path: Path, gigabytes: float = 2.0) -> None:
    """A valid DOCX plus a member of `gigabytes` GB of zeros, deflated (streamed: ~2 MB on disk)."""
    path.write_bytes(docx_bytes("Nothing to see here."))
    block = bytes(1 << 20)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as z:
        with z.open("word/media/zeros.bin", "w", force_zip64=True) as f:
            for _ in range(int(gigabytes * 1024)):
                f.write(block)


# ------------------------------------------------------------------------------------------
# cases: each writes its hostile files into `kb` and returns (hostile names, restricted sources)

def case_alias_front_matter(kb: Path):
    (kb / "bomb.md").write_text("---\n" + bomb("groups") + "---\n\nThe Zephyrine plan.\n")
    return ["bomb.md"], []


def case_alias_sidecar(kb: Path):
    (kb / "side.md").write_text("# Side\n\nThe Zephyrine plan.\n")
    (kb / "side.md.meta.yaml").write_text(bomb("groups"))
    return ["side.md"], []


def case_alias_people(kb: Path):
    (kb / "people.yaml").write_text(bomb() + "people:\n  - name: Dana Lee\n    email: dana@acme.example\n"
                                    "    groups: *a8\n")
    return ["people.yaml"], []


def case_alias_tags(kb: Path):
    (kb / "tagged.md").write_text("---\n" + bomb("tags") + "---\n\nThe Zephyrine plan.\n")
    return ["tagged.md"], []


def case_bad_utf8_name(kb: Path):
    with open(os.path.join(os.fsencode(str(kb)), b"bad\xff.md"), "wb") as f:
        f.write(b"# Parking\n\nThe parking garage opens at seven and closes at ten.\n")
    return [], []  # indexed under the key kb/bad\xff.md


def case_symlink_passwd(kb: Path):
    os.symlink("/etc/passwd", kb / "passwd.txt")
    return ["passwd.txt"], []


def case_one_line_45mb(kb: Path):
    with open(kb / "one-line.txt", "w") as f:
        f.write("x" * 45_000_000)
    return [], []  # indexed, in chunks of at most 4,000 characters


def case_docx_bomb(kb: Path):
    write_docx_bomb(kb / "bomb.docx")
    return ["bomb.docx"], []


def case_front_matter_blank_line(kb: Path):
    (kb / "late.md").write_bytes(("\ufeff\n" + SECRET.replace("Zephyrine", "Zephyrine (late)")).encode())
    return [], ["late.md"]


def case_sidecar_threads(kb: Path):
    for name in ("forum.jsonl", "lists.mbox", "blog.xml"):
        shutil.copy(THREADS / name, kb / name)
        (kb / f"{name}.meta.yaml").write_text("groups: [finance]\n")
    return [], ["forum.jsonl", "lists.mbox", "blog.xml"]


CASES = {
    "alias-front-matter": case_alias_front_matter,
    "alias-sidecar": case_alias_sidecar,
    "alias-people": case_alias_people,
    "alias-tags": case_alias_tags,
    "bad-utf8-name": case_bad_utf8_name,
    "symlink-passwd": case_symlink_passwd,
    "one-line-45mb": case_one_line_45mb,
    "docx-bomb": case_docx_bomb,
    "front-matter-blank-line": case_front_matter_blank_line,
    "sidecar-threads": case_sidecar_threads,
}


# ------------------------------------------------------------------------------------------

def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASKCOLLEAGUE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])
    return env


def measured(args: list[str], timeout: float) -> dict:
    """Run `python -m askcolleague <args>` under the wrapper: exit status, seconds, peak RSS, output."""
    cmd = [sys.executable, "-c", _WRAPPER, sys.executable, "-m", "askcolleague", *args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env(), cwd=str(ROOT))
    if p.returncode != 0:
        raise RuntimeError(f"wrapper failed: {p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def ask(index: Path, question: str) -> dict:
    p = subprocess.run([sys.executable, "-m", "askcolleague", "ask", question, "--index", str(index), "--json",
                        "--as", ASKER], capture_output=True, text=True, env=_env(),
                       cwd=str(ROOT), timeout=300)
    if p.returncode != 0:
        raise RuntimeError(f"ask failed: {p.stderr[-2000:]}")
    return json.loads(p.stdout)


def visible_leaks(index: Path, restricted: list[str]) -> list[str]:
    """Passages an asker without groups could see that come from a restricted source or say SECRET_WORD."""
    cur = (index / "CURRENT").read_text().strip()
    db = sqlite3.connect(f"file:{index / cur / 'store.sqlite'}?mode=ro", uri=True)
    rows = db.execute("SELECT source, text, embed_text FROM chunks WHERE groups_json = '[]'").fetchall()
    db.close()
    return [f"{s}: {t[:60]!r}" for s, t, e in rows
            if any(s.endswith("/" + r) for r in restricted) or SECRET_WORD in t or SECRET_WORD in e]


def make_corpus(base: Path, name: str) -> tuple[Path, list[str], list[str]]:
    kb = base / name / "kb"
    kb.mkdir(parents=True)
    (kb / "lunch.md").write_text(PUBLIC)
    (kb / "acquisition.md").write_text(SECRET)
    (kb / "vpn.jsonl").write_text(json.dumps(THREAD) + "\n")
    hostile, restricted = CASES[name](kb)
    return kb, hostile, ["acquisition.md", *restricted]


def run_case(base: Path, name: str, timeout: float) -> dict:
    kb, hostile, restricted = make_corpus(base, name)
    index = base / name / "idx"
    m = measured(["index", "build", str(kb), "--index", str(index), "--json", "-q"], timeout)
    row = {"case": name, "finished": m["rc"] == 0, "exit": m["rc"], "seconds": round(m["seconds"], 1),
           "peak_rss_mb": round(m["peak_rss_mb"]), "skipped": {}, "good_answerable": False, "leaks": []}
    if m["rc"] != 0:
        row["error"] = (m["stderr"].strip().splitlines() or [""])[-1][:300]
        return row
    rep = json.loads(m["stdout"])
    row.update(indexed=rep["sources_indexed"], chunks=rep["chunks"],
               skipped={os.path.basename(s["path"]): s["reason"] for s in rep["skipped"]})
    row["hostile_skipped"] = all(h in row["skipped"] for h in hostile)
    ans = ask(index, PUBLIC_Q)
    row["good_answerable"] = any(c["doc_id"].endswith("kb/lunch.md") for c in ans["citations"])
    secret = ask(index, "When does the Zephyrine acquisition close?")
    row["leaks"] = visible_leaks(index, restricted) + [
        f"cited {c['doc_id']}" for c in secret["citations"] + secret.get("more_results", [])
        if SECRET_WORD in c["text"] or any(c["doc_id"].split("#")[0].endswith("/" + r) for r in restricted)]
    if name == "bad-utf8-name":
        st = subprocess.run([sys.executable, "-m", "askcolleague", "index", "status", "--index", str(index), "--json"],
                            capture_output=True, text=True, env=_env(), cwd=str(ROOT), timeout=120)
        row["status_ok"] = st.returncode == 0
        row["keys"] = [s["key"] for s in json.loads(st.stdout)["sources"] if "\\x" in s["key"]] if st.returncode == 0 else []
    if name == "one-line-45mb":
        cur = (index / "CURRENT").read_text().strip()
        db = sqlite3.connect(f"file:{index / cur / 'store.sqlite'}?mode=ro", uri=True)
        row["longest_chunk_chars"] = db.execute("SELECT MAX(LENGTH(text)) FROM chunks").fetchone()[0]
        db.close()
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated: " + ", ".join(CASES))
    ap.add_argument("--timeout", type=float, default=1800, help="seconds allowed per build")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder")
    args = ap.parse_args()
    names = [c for c in args.cases.split(",") if c]
    base = Path(tempfile.mkdtemp(prefix="ac-hostile-"))
    try:
        warm = base / "warm"
        warm.mkdir()
        (warm / "w.md").write_text(PUBLIC)
        w = measured(["index", "build", str(warm), "--index", str(base / "warm-idx"), "--json", "-q"], args.timeout)
        print(f"warm-up build: exit {w['rc']}, {w['seconds']:.1f}s, {w['peak_rss_mb']:.0f} MB", file=sys.stderr)
        rows = []
        for name in names:
            t = time.perf_counter()
            row = run_case(base, name, args.timeout)
            rows.append(row)
            print(f"{name}: done in {time.perf_counter() - t:.0f}s", file=sys.stderr)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"kept {base}", file=sys.stderr)

    print(f"| case | finished | seconds | peak RSS MB | good file answerable | restricted visible | skip message |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        msgs = "; ".join(f"{k}: {v}" for k, v in r["skipped"].items()) or r.get("error", "") or (
            f"(indexed: {r['chunks']} chunks, the longest {r['longest_chunk_chars']} characters)"
            if "longest_chunk_chars" in r else
            f"(indexed as {', '.join(r['keys'])}; `index status --json` {'works' if r['status_ok'] else 'FAILS'})"
            if "keys" in r else "(indexed, restricted)")
        print(f"| {r['case']} | {'yes' if r['finished'] else 'NO (exit %d)' % r['exit']} | {r['seconds']} | "
              f"{r['peak_rss_mb']} | {'yes' if r['good_answerable'] else 'NO'} | "
              f"{len(r['leaks']) or 'none'} | {msgs} |")
    aborted = sum(not r["finished"] for r in rows)
    peak = max(r["peak_rss_mb"] for r in rows)
    ok = (aborted == 0 and peak <= TARGET_RSS_MB and all(r["good_answerable"] and not r["leaks"] for r in rows))
    print(f"\naborted builds: {aborted}; peak RSS {peak} MB (target <= {TARGET_RSS_MB}); "
          f"good files answerable in {sum(r['good_answerable'] for r in rows)}/{len(rows)}; "
          f"restricted passages visible without groups: {sum(len(r['leaks']) for r in rows)} — "
          f"{'PASS' if ok else 'FAIL'}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {"machine": machine(), "cases": rows, "aborted": aborted, "peak_rss_mb": peak,
           "target_rss_mb": TARGET_RSS_MB, "pass": ok}
    (RESULTS / "hostile.json").write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
