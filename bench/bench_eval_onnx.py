"""Retrieval/answer quality on eval/demo.yaml with the torch model vs the ONNX runtimes.

    python bench/bench_eval_onnx.py [--kinds torch,onnx-fp32,int8-fast,int8-safe,int8-smooth] [--modes hybrid,dense]

For each runtime: build the demo index (ingest/demo + people.yaml) with that embedder into a temp
folder, then run `askcolleague.evaluation.evaluate` with an Assistant using the same embedder, and
print the metrics side by side. fp32 ONNX gives the same vectors as torch (cosine 1.0000), so its
row checks the integration rather than quality.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine  # noqa: E402
from bench_onnx import make  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kinds", default="torch,int8-safe,int8-smooth")
    ap.add_argument("--modes", default="hybrid,dense")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "eval_onnx.json"))
    args = ap.parse_args()
    from askcolleague.answer import Assistant
    from askcolleague.evaluation import evaluate, load_suite
    from askcolleague.indexing.build import build
    from askcolleague.settings import Settings

    suite = load_suite(ROOT / "eval" / "demo.yaml")
    settings = Settings.load()
    res = {"machine": machine(), "metrics": {}}
    for kind in args.kinds.split(","):
        emb = make(kind, 64, args.threads)
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            r = build([ROOT / "ingest" / "demo"], Path(tmp) / "idx", people_files=[ROOT / "ingest" / "demo" / "people.yaml"],
                      settings=settings, embedder=emb, rebuild=True, warn=lambda m: None)
            build_s = time.perf_counter() - t
            asst = Assistant.from_index(Path(tmp) / "idx", settings, embedder=emb)
            t = time.perf_counter()
            rep = evaluate(asst, suite, modes=args.modes.split(","))
            eval_s = time.perf_counter() - t
            asst.index.close()
        res["metrics"][kind] = {"build_s": build_s, "chunks": r.chunks, "eval_s": eval_s, "metrics": rep.metrics,
                                "model_id": emb.model_id}
        print(f"== {kind}: {r.chunks} chunks, build {build_s:.1f}s, eval {eval_s:.1f}s", flush=True)
        print(rep.table(), flush=True)
    names = []
    for v in res["metrics"].values():
        for mode, ms in v["metrics"].items():
            for n in ms:
                if (mode, n) not in names:
                    names.append((mode, n))
    kinds = list(res["metrics"])
    print(f"\n{'mode':<8}{'metric':<28}" + "".join(f"{k:>14}" for k in kinds))
    for mode, n in names:
        vals = [res["metrics"][k]["metrics"].get(mode, {}).get(n) for k in kinds]
        print(f"{mode:<8}{n:<28}" + "".join(f"{v:>14.3f}" if isinstance(v, (int, float)) else f"{'—':>14}" for v in vals))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
