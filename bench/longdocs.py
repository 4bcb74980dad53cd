"""BENCHMARK-ONLY: a corpus of long technical Markdown documents, from documentation installed on this machine.

    python bench/longdocs.py --out /tmp/askcolleague-bench/corpus-longdocs     # (bench_ingest calls it itself)

Real documents with long sections, code blocks, tables and (some) front matter: the Markdown that
installed packages carry on disk (Node.js's API and contributor docs under /usr/share/doc/nodejs,
npm's command and configuration docs, READMEs and guides inside Python packages). Candidates are
the ``.md`` files under ROOTS of MIN_BYTES–MAX_BYTES, valid UTF-8, with at least MIN_HEADINGS
headings, no changelogs, licences or templates, one copy of each content; sorted by path, ``N`` of
them are taken at even steps. Each is copied to ``docs/NNN-<name>.md`` with YAML front matter
(title: its own, else its first ``#`` heading, else the file name; author: the project it came from)
added where missing. ``corpus.json`` lists every file with its origin and SHA-256, so two machines
(or two days) can tell whether they measured the same corpus; ``queries.txt`` holds questions made
from section headings. Same installed packages → byte-identical corpus.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import sys
import sysconfig
from pathlib import Path

ROOTS = ["/usr/share/doc", "/usr/lib/node_modules", sysconfig.get_paths()["purelib"], "/usr/lib/python3/dist-packages"]
N = 80
MIN_BYTES, MAX_BYTES = 8 * 1024, 64 * 1024
MIN_HEADINGS = 3
EXCLUDE = re.compile(r"changelog|change_log|changes|history|license|licence|copying|notice|authors|"
                     r"code_of_conduct|template|\.dist-info|/tests?/|/test_", re.I)
VERSION = 1  # bump when the selection rules change


def candidates(roots: list[str] = ROOTS) -> list[Path]:
    seen: set[str] = set()
    out: list[Path] = []
    for root in roots:
        r = Path(root)
        if not r.is_dir():
            continue
        for p in sorted(r.rglob("*.md")):
            s = str(p)
            if EXCLUDE.search(s) or s.count("/node_modules/") > 1 or not p.is_file() or p.is_symlink():
                continue
            try:
                size = p.stat().st_size
                if not MIN_BYTES <= size <= MAX_BYTES:
                    continue
                data = p.read_bytes()
                text = data.decode("utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            if len(re.findall(r"^#{1,6} \S", text, re.M)) < MIN_HEADINGS:
                continue
            h = hashlib.sha256(data).hexdigest()
            if h in seen:
                continue
            seen.add(h)
            out.append(p)
    return sorted(out, key=str)


def select(paths: list[Path], n: int = N) -> list[Path]:
    if len(paths) <= n:
        return list(paths)
    return [paths[(i * len(paths)) // n] for i in range(n)]


def origin(p: Path) -> str:
    s = str(p)
    if "/nodejs/" in s:
        return "Node.js contributors"
    if "/node_modules/npm/" in s:
        return "npm contributors"
    m = re.search(r"/(?:site|dist)-packages/([^/]+)/", s)
    if m:
        return f"{m.group(1)} maintainers"
    return f"{p.parent.name} maintainers"


def with_front_matter(text: str, p: Path) -> str:
    import yaml

    meta: dict = {}
    body = text
    m = re.match(r"\A---\r?\n(.*?\r?\n)---\r?\n", text, re.S)
    if m:
        try:
            meta = yaml.safe_load(m.group(1)) or {}
        except yaml.YAMLError:
            meta = None
        if isinstance(meta, dict):
            body = text[m.end():]
        else:  # not front matter after all: keep the text whole
            meta = {}
    if not meta.get("title"):
        h = re.search(r"^# +(.+?)\s*#*\s*$", body, re.M)
        meta["title"] = h.group(1).strip() if h else p.stem.replace("-", " ").replace("_", " ")
    if not meta.get("author"):
        meta["author"] = origin(p)
    fm = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000)
    return f"---\n{fm}---\n\n{body.lstrip()}"


def questions(texts: list[str], n: int = 30) -> list[str]:
    heads = []
    for t in texts:
        for h in re.findall(r"^#{2,3} +(.+?)\s*$", t, re.M):
            h = re.sub(r"[`*_\[\]<>]", "", h).strip()
            if 3 <= len(h.split()) <= 12:
                heads.append(f"What does the documentation say about {h}?")
    step = max(len(heads) // n, 1)
    return heads[::step][:n]


def generate(folder: Path, n: int = N) -> dict:
    picked = select(candidates(), n)
    if not picked:
        raise SystemExit("no long Markdown documentation found under " + ", ".join(ROOTS))
    docs = folder / "docs"
    if docs.exists():
        shutil.rmtree(docs)
    docs.mkdir(parents=True)
    files, texts = [], []
    for i, p in enumerate(picked):
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{p.parent.name}-{p.name}")
        out = docs / f"{i:03d}-{name}"
        text = with_front_matter(p.read_text(encoding="utf-8"), p)
        out.write_text(text, encoding="utf-8")
        texts.append(text)
        files.append({"file": out.name, "from": str(p), "bytes": len(text.encode()),
                      "sha256": hashlib.sha256(p.read_bytes()).hexdigest()})
    (folder / "queries.txt").write_text("\n".join(questions(texts)) + "\n")
    info = {"corpus": "longdocs", "version": VERSION, "docs": len(files), "bytes": sum(f["bytes"] for f in files),
            "fingerprint": hashlib.sha256("".join(f["sha256"] for f in files).encode()).hexdigest()[:16],
            "rules": {"roots": ROOTS, "min_bytes": MIN_BYTES, "max_bytes": MAX_BYTES, "min_headings": MIN_HEADINGS,
                      "n": n}, "files": files}
    (folder / "corpus.json").write_text(json.dumps(info, indent=1) + "\n")
    return info


def ensure(folder: Path, n: int = N) -> Path:
    """The corpus in `folder`, (re)made unless it is there with the same selection."""
    info = folder / "corpus.json"
    if info.is_file():
        d = json.loads(info.read_text())
        picked = select(candidates(), n)
        same = d.get("version") == VERSION and [f["from"] for f in d.get("files", [])] == [str(p) for p in picked]
        if same and all((folder / "docs" / f["file"]).is_file() for f in d["files"]):
            return folder
    print(f"copying long technical documents into {folder} …", file=sys.stderr)
    generate(folder, n)
    return folder


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="/tmp/askcolleague-bench/corpus-longdocs")
    ap.add_argument("--n", type=int, default=N)
    a = ap.parse_args()
    i = generate(Path(a.out), a.n)
    print(json.dumps({k: v for k, v in i.items() if k != "files"}))
