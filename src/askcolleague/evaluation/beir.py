"""BEIR evaluation: index a BEIR-layout dataset (corpus, queries, qrels) and score each mode on it."""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable

from ..embed import get_embedder
from ..errors import ConfigError
from ..index import backend_for, open_index
from ..indexing.build import build
from ..search import Retriever
from ..settings import Settings
from .metrics import DEPTH, MODES, percentiles, ranked_docs, ranx_eval
from .report import Report

BEIR_METRICS = ("ndcg@10", "recall@100", "recall@10", "mrr@10")
# Published nDCG@10 on BEIR SciFact (Thakur et al. 2021 for BM25; sentence-transformers for MiniLM).
PUBLISHED = {"scifact": {"bm25": {"ndcg@10": 0.665}, "dense": {"ndcg@10": 0.645}}}
PUBLISHED_SOURCES = {"bm25": "BM25 (Elasticsearch), BEIR paper", "dense": "all-MiniLM-L6-v2, sentence-transformers"}


def _read_jsonl(path: Path, need: tuple[str, ...]) -> list[dict]:
    if not path.is_file():
        raise ConfigError(f"{path}: missing; a BEIR folder holds corpus.jsonl, queries.jsonl and qrels/test.tsv")
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as e:
                raise ConfigError(f"{path}: line {n} is not valid JSON ({e}); fix the line") from None
            missing = [k for k in need if k not in obj]
            if missing:
                raise ConfigError(f"{path}: line {n} has no {missing[0]!r}; BEIR lines need {', '.join(need)}")
            out.append(obj)
    return out


def read_beir(dataset_dir: str | Path, split: str = "test") -> tuple[list[dict], dict[str, str], dict[str, dict[str, int]]]:
    """(corpus [{_id, title, text}], queries {qid: text}, qrels {qid: {doc: score}}) of a BEIR folder."""
    d = Path(dataset_dir)
    corpus = _read_jsonl(d / "corpus.jsonl", ("_id", "text"))
    queries = {str(q["_id"]): str(q["text"]) for q in _read_jsonl(d / "queries.jsonl", ("_id", "text"))}
    qpath = d / "qrels" / f"{split}.tsv"
    if not qpath.is_file():
        raise ConfigError(f"{qpath}: missing; BEIR qrels are qrels/<split>.tsv (query-id, corpus-id, score)")
    qrels: dict[str, dict[str, int]] = {}
    for n, line in enumerate(qpath.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.strip().split("\t") if "\t" in line else line.split()
        if not parts or (n == 1 and parts[0] == "query-id"):
            continue
        if len(parts) < 3:
            raise ConfigError(f"{qpath}: line {n} needs query-id, corpus-id and score separated by tabs")
        try:
            score = int(float(parts[2]))
        except ValueError:
            raise ConfigError(f"{qpath}: line {n}: score {parts[2]!r} is not a number") from None
        qrels.setdefault(parts[0], {})[parts[1]] = score
    unknown = [q for q in qrels if q not in queries]
    if unknown:
        raise ConfigError(f"{qpath}: query {unknown[0]!r} is not in queries.jsonl; fix the qrels or the queries")
    return corpus, queries, qrels


BEIR_FILE = "corpus.jsonl"  # the temp corpus file; doc ids are f"{BEIR_FILE}#{_id}"


def beir_doc_id(doc_id: str) -> str:
    """The BEIR _id of an indexed BEIR document (index doc ids are ``corpus.jsonl#<_id>``)."""
    return doc_id.split("#", 1)[1] if doc_id.startswith(BEIR_FILE + "#") else doc_id


def evaluate_beir(dataset_dir: str | Path, modes: Iterable[str] = MODES, embedder=None, split: str = "test",
                  depth: int = DEPTH, settings=None, work_dir: str | Path | None = None,
                  progress: Callable[[str], None] | None = None, index_at: str | Path | None = None) -> Report:
    """nDCG@10 and Recall@100 (and Recall@10, MRR@10) per mode on a BEIR-layout dataset.

    The corpus is written as a JSONL thread file (one thread per document: id = _id, title, body =
    text) into a temporary folder, indexed with `index.build` (no people, no authors), and searched
    at document level: a document ranks where its best chunk ranks. Index doc ids are
    ``corpus.jsonl#<_id>`` and are mapped back to the BEIR ids. When the folder is named ``scifact``
    the published numbers are shown beside ours. `index_at`: where to build the dataset's index (a
    folder or a postgresql:// URI; it is replaced), by default a folder in the work directory.
    """
    t_start = time.time()
    say = progress or (lambda msg: None)
    modes = [m.strip() for m in modes if m and m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise ConfigError(f"unknown mode {bad[0] if bad else ''!r}; use some of {', '.join(MODES)}")
    d = Path(dataset_dir)
    corpus, queries, qrels = read_beir(d, split)
    qrels = {q: {doc: s for doc, s in rel.items() if s > 0} for q, rel in qrels.items()}
    qrels = {q: rel for q, rel in qrels.items() if rel}
    settings = settings or Settings.load()
    if embedder is None:
        embedder = get_embedder(settings.model or None, batch_size=settings.batch_size, threads=settings.threads,
                                runtime=settings.runtime)
    tmp_ctx = tempfile.TemporaryDirectory(prefix="askcolleague-beir-") if work_dir is None else None
    work = Path(tmp_ctx.name if tmp_ctx else work_dir)
    try:
        work.mkdir(parents=True, exist_ok=True)
        src = work / BEIR_FILE
        with open(src, "w", encoding="utf-8") as f:
            for doc in corpus:
                f.write(json.dumps({"id": str(doc["_id"]), "title": str(doc.get("title") or "").strip(),
                                    "body": str(doc["text"])}, ensure_ascii=False) + "\n")
        say(f"indexing {len(corpus)} documents")
        warns: list[str] = []
        where = index_at or work / "index"
        build([src], where, settings=settings, embedder=embedder, warn=warns.append, rebuild=True,
              command=["evaluate_beir", str(d)])
        idx = open_index(where, settings, embedder=embedder)
        try:
            retriever = Retriever(idx, rrf_k=settings.rrf_k, max_per_doc=settings.max_per_doc)
            qids = [q for q in queries if q in qrels]
            vecs = embedder.embed_batch([queries[q] for q in qids]) if any(m != "bm25" for m in modes) else None
            name = d.name.lower()
            report = Report(title=f"BEIR {d.name} ({split})", modes=modes, metrics={},
                            counts={"doc": len(qids)}, published=PUBLISHED.get(name, {}))
            report.qrels = {q: qrels[q] for q in qids}
            for mode in modes:
                say(f"{mode}: {len(qids)} queries")
                runs, times = {}, []
                for i, q in enumerate(qids):
                    t0 = time.perf_counter()
                    hits = retriever.search(queries[q], k=None, mode=mode, depth=max(depth * 3, 300),
                                            qvec=None if mode == "bm25" else vecs[i])
                    times.append((time.perf_counter() - t0) * 1e3)
                    runs[q] = [(beir_doc_id(doc), s) for doc, s in ranked_docs(hits, depth)]
                mean, _ = ranx_eval(report.qrels, {q: [doc for doc, _ in r] for q, r in runs.items()}, BEIR_METRICS)
                report.metrics[mode] = {f"doc.{m}": v for m, v in mean.items()}
                report.runs[mode] = runs
                report.latency[mode] = {"search@depth": percentiles(times)}
            report.index_manifest = backend_for(where).status(where)
        finally:
            idx.close()
        report.config = {"dataset": str(d), "split": split, "modes": ",".join(modes), "depth": depth,
                         "documents": len(corpus), "queries": len(qids),
                         "chunks": report.index_manifest["counts"]["chunks"], "model": embedder.model_id,
                         "doc_ids": f"index doc id {BEIR_FILE}#<_id> -> BEIR _id"}
        if report.published:
            report.notes.append("published nDCG@10: " + "; ".join(
                f"{m} {v['ndcg@10']:.3f} ({PUBLISHED_SOURCES.get(m, '')})" for m, v in report.published.items()))
            report.notes.append("differences expected: SQLite FTS5 bm25 (porter stemmer, OR of query words) is not "
                                "Elasticsearch BM25; documents longer than a chunk are split and rank by their best "
                                "chunk; the chunk embeds 'title\\ntext'.")
        report.warnings += warns
        report.seconds = time.time() - t_start
        return report
    finally:
        if tmp_ctx:
            tmp_ctx.cleanup()
