"""Query latency: retrieval alone and the full extractive ask (answer + people), p50/p95/p99.

    python bench/bench_query.py [--index indexes/default] [--rounds 5] [--embedder torch|onnx|onnx-int8|onnx-int8-fast]

Builds the demo index first if the folder has none. Model loading happens once, before timing.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # this work tree's package, whatever else is installed


from _common import QUESTIONS, pct, time_questions  # noqa: E402  (bench/ is the script's folder)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", default=str(ROOT / "indexes" / "default"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--embedder", default=None, choices=["torch", "onnx", "onnx-int8", "onnx-int8-fast"],
                    help="query-time embedding runtime [default: the index's, from the `runtime` setting]")
    args = ap.parse_args()
    from askcolleague.answer import Assistant
    from askcolleague.indexing.build import build
    from askcolleague.index import current_version

    if current_version(Path(args.index)) is None:
        print(f"building the demo index at {args.index} …", file=sys.stderr)
        build([ROOT / "ingest" / "demo"], args.index)
    t = time.perf_counter()
    emb = None
    if args.embedder:
        from askcolleague.embed import get_embedder

        emb = get_embedder(runtime=args.embedder)  # as Index.embedder: a question on 1 thread, batches on all
    asst = Assistant.from_index(args.index, embedder=emb)
    asst.warm_up()
    print(f"load + warm-up: {time.perf_counter() - t:.2f} s")
    n = asst.index.faiss.ntotal
    retrieve, full, stages = time_questions(asst, QUESTIONS, args.rounds)
    print(f"index: {args.index} ({n} chunks), {len(full)} questions, embedder {asst.embedder.describe().get('runtime', 'torch')}")
    print(f"{'what':<28}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}")
    for name, xs in [("retrieval (embed + search)", retrieve), ("full ask (answer + people)", full)] + \
            [(f"  stage: {k}", v) for k, v in stages.items()]:
        print(f"{name:<28}{pct(xs, 50):>10.1f}{pct(xs, 95):>10.1f}{pct(xs, 99):>10.1f}")


if __name__ == "__main__":
    main()
