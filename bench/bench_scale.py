"""Peak memory and throughput of a whole build at scale: `askcolleague index build` on a synthetic
corpus of N chunks (forum threads in JSONL: an opening post and replies, each post one chunk of
80–140 words drawn from a Zipf vocabulary of 50,000 words, so BM25 sees realistic term statistics).

    python bench/bench_scale.py --chunks 100000,1000000            # the hashing embedder (fast)
    python bench/bench_scale.py --chunks 20000 --model bundled       # the real model, smaller N

Prints, per N: wall time, chunks/s, the peak resident memory of the build's process tree (sampled
every 0.2 s: the build and its parse workers, summed), its largest single process (ru_maxrss), the
index's size on disk and the build's seconds per stage. With ``--kill-at F`` it kills the build
(SIGKILL) once F of the chunks are embedded and prints how much the next build resumed.

The default embedder is `bench/fastembed.py` (``hash:384``): the model's own cost is not what this
measures (bench_ingest.py does); its 384-dim vectors are the size the real model's are.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil

HERE = Path(__file__).resolve().parent
VOCAB = 50_000


def make_corpus(root: Path, n_chunks: int, per_file: int = 5000, seed: int = 1) -> Path:
    """Threads until n_chunks posts; cached by size."""
    out = root / f"forum-{n_chunks}"
    if (out / "DONE").is_file():
        return out
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    syll = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "si", "de", "pa", "zu", "fe", "go", "hi", "ju"]
    words = ["".join(syll[(i // len(syll) ** k) % len(syll)] for k in range(4)) + str(i % 7) for i in range(VOCAB)]
    ranks = np.minimum(rng.zipf(1.15, size=8_000_000) - 1, VOCAB - 1)
    pos = 0
    made, fno, t = 0, 0, 0
    f = None
    while made < n_chunks:
        if f is None or t % per_file == 0:
            if f:
                f.close()
            f = open(out / f"part-{fno:05d}.jsonl", "w", encoding="utf-8")
            fno += 1
        replies = min(int(rng.integers(0, 4)), n_chunks - made - 1)
        posts = []
        for _ in range(replies + 1):
            n = int(rng.integers(80, 141))
            if pos + n > len(ranks):
                pos = 0
            posts.append(" ".join(words[r] for r in ranks[pos:pos + n]))
            pos += n
        f.write(json.dumps({"id": f"t{t}", "title": f"Thread {t} {posts[0][:30]}",
                            "author": f"Person {t % 997} <p{t % 997}@acme.test>", "date": "2025-05-01",
                            "body": posts[0],
                            "comments": [{"id": f"t{t}c{k}", "author": f"Person {(t + k + 1) % 997} <p{(t + k + 1) % 997}@acme.test>",
                                          "body": b} for k, b in enumerate(posts[1:])]}) + "\n")
        made += replies + 1
        t += 1
    f.close()
    (out / "DONE").write_text(str(made))
    return out


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    try:
        tree = [proc, *proc.children(recursive=True)]
    except psutil.Error:  # (the build has just exited)
        return 0
    for p in tree:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_build(corpus: Path, index: Path, model: str, env: dict, kill_at: float | None = None, n: int = 0) -> dict:
    cmd = [sys.executable, "-m", "askcolleague", "index", "build", str(corpus), "--index", str(index), "--json", "-q"]
    if model != "bundled":
        cmd += ["--model", model]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    ps = psutil.Process(proc.pid)
    peak = [0]
    stop = threading.Event()
    killed = [False]

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], _tree_rss(ps))
            if kill_at is not None and not killed[0]:
                keys = index / ".resume" / "keys.txt"
                if keys.is_file() and keys.stat().st_size // 65 >= kill_at * n:
                    proc.send_signal(signal.SIGKILL)
                    killed[0] = True
            stop.wait(0.2)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out, err = proc.communicate()
    stop.set()
    th.join()
    wall = time.perf_counter() - t0
    if killed[0]:
        return {"killed": True, "wall_s": wall, "peak_rss_mb": peak[0] / 2**20}
    if proc.returncode != 0:
        raise SystemExit(f"build failed ({proc.returncode}): {err[-2000:]}")
    rep = json.loads(out)
    size = sum(f.stat().st_size for f in index.rglob("*") if f.is_file())
    return {"wall_s": wall, "chunks": rep["chunks"], "embedded": rep["embedded"], "resumed": rep.get("resumed", 0),
            "peak_rss_mb": peak[0] / 2**20, "max_process_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
            "disk_mb": size / 2**20, "stages": rep["stages"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", default="100000", help="comma-separated corpus sizes (chunks)")
    ap.add_argument("--model", default="hash:384", help="`hash:384` (bench/fastembed.py) or `bundled` (the real model)")
    ap.add_argument("--work", type=Path, default=Path("bench/.scale"), help="where corpora and indexes go")
    ap.add_argument("--window", type=int, default=None, help="ASKCOLLEAGUE_BUILD_WINDOW for the build")
    ap.add_argument("--kill-at", type=float, default=None, help="kill the build at this fraction embedded, then resume")
    ap.add_argument("--keep", action="store_true", help="keep the indexes")
    args = ap.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ASKCOLLEAGUE_PLUGINS": "fastembed",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))}
    if args.window:
        env["ASKCOLLEAGUE_BUILD_WINDOW"] = str(args.window)
    print(f"{'chunks':>9} {'wall s':>8} {'chunks/s':>9} {'peak RSS MB':>12} {'largest proc MB':>15} {'disk MB':>8}  stages (s)")
    for n in [int(x) for x in args.chunks.split(",")]:
        corpus = make_corpus(args.work, n)
        index = args.work / f"index-{n}"
        shutil.rmtree(index, ignore_errors=True)
        if args.kill_at:
            k = run_build(corpus, index, args.model, env, kill_at=args.kill_at, n=n)
            print(f"killed after {k['wall_s']:.0f} s at {args.kill_at:.0%} embedded (peak {k['peak_rss_mb']:.0f} MB)")
        r = run_build(corpus, index, args.model, env)
        stages = ", ".join(f"{k} {v:.0f}" for k, v in r["stages"].items() if v >= 0.5)
        print(f"{r['chunks']:>9,} {r['wall_s']:>8.0f} {r['chunks'] / r['wall_s']:>9.0f} {r['peak_rss_mb']:>12.0f} "
              f"{r['max_process_rss_mb']:>15.0f} {r['disk_mb']:>8.0f}  {stages}"
              + (f"  (resumed {r['resumed']:,}, embedded {r['embedded']:,})" if args.kill_at else ""))
        if not args.keep:
            shutil.rmtree(index, ignore_errors=True)


if __name__ == "__main__":
    main()
