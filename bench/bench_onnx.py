"""Torch vs ONNX Runtime (fp32, int8) for the bundled all-MiniLM-L6-v2: agreement and texts/s.

    python bench/bench_onnx.py [--rounds 5] [--threads 2] [--batch-sizes 32,64]

1. Agreement: cosine of each ONNX variant's vector with the torch (sentence-transformers) vector on
   a few hundred real sentences of the demo corpus (plus long passages that hit the 256-token
   truncation), and overlap@5 of nearest neighbours among them.
2. Throughput: texts/s embedding chunk-sized texts (the chunker's ~150–200-token passages from the
   synthetic corpus) and single-question latency, for each runtime × batch size, alternating the
   runtimes in every round (the machine is shared; medians over rounds).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, median  # noqa: E402


def real_sentences(n: int = 400) -> list[str]:
    demo = ROOT / "ingest" / "demo"
    texts: list[str] = []
    for f in sorted(demo.rglob("*")):
        if f.suffix in (".md", ".txt", ".rst", ".eml", ".html") and f.is_file():
            t = re.sub(r"<[^>]+>", " ", f.read_text(errors="replace"))
            texts += [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n\s*\n", t) if len(s.strip()) > 20]
    if len(texts) < 50:  # no demo corpus: fall back to the synthetic generator's sentences
        from make_corpus import TOPICS, make_people, sentence
        import random

        rng = random.Random(0)
        people = make_people(rng, 50, "acme.example")
        texts = [sentence(rng, TOPICS[k], people) for k in sorted(TOPICS) for _ in range(15)]
    step = max(len(texts) // n, 1)
    out = texts[::step][:n]
    long = [" ".join(texts[i:i + 40]) for i in range(0, min(len(texts), 400), 40)]  # > 256 tokens
    return out + long


def chunk_texts(n: int = 256) -> list[str]:
    """Chunk-like texts: a context line and ~120–180 words of synthetic workplace prose."""
    import random

    from make_corpus import TOPICS, make_people, paragraph

    rng = random.Random(1)
    people = make_people(rng, 50, "acme.example")
    out = []
    keys = sorted(TOPICS)
    for i in range(n):
        t = TOPICS[keys[i % len(keys)]]
        body = paragraph(rng, t, people, rng.randint(7, 11))
        out.append(f"{t[0]}: runbook — Steps\n{body}")
    return out


def make(kind: str, bs: int, threads: int):
    if kind == "torch":
        from askcolleague.embed import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(batch_size=bs, threads=threads)
    from askcolleague.embed.onnx import OnnxEmbedder

    if kind == "onnx-fp32":
        return OnnxEmbedder(batch_size=bs, threads=threads)
    if kind == "int8-fast":
        return OnnxEmbedder(batch_size=bs, threads=threads, quantize="fast")
    if kind in ("int8-smooth", "onnx-int8"):  # the default runtime
        return OnnxEmbedder(batch_size=bs, threads=threads, quantize="smooth")
    if kind == "int8-safe":
        return OnnxEmbedder(batch_size=bs, threads=threads, quantize="safe")
    if kind == "int8-all":  # every weight MatMul int8 (for comparison; distinct id)
        return OnnxEmbedder(batch_size=bs, threads=threads, quantize=True, int8_exclude=())
    raise SystemExit(kind)


def embed_all(emb, texts: list[str], bs: int) -> np.ndarray:
    """As index.build does: length-sorted batches of `bs` through embed_batch."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), emb.dim), dtype=np.float32)
    for s in range(0, len(order), bs):
        part = order[s:s + bs]
        out[part] = emb.embed_batch([texts[i] for i in part])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-sizes", default="32")
    ap.add_argument("--texts", type=int, default=128)
    ap.add_argument("--kinds", default="torch,onnx-fp32,int8-safe,int8-smooth,int8-fast,int8-all",
                    help="runtimes compared for agreement (torch first)")
    ap.add_argument("--speed-kinds", default="torch,onnx-fp32,int8-safe,int8-smooth,int8-fast",
                    help="runtimes timed for throughput")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "onnx.json"))
    args = ap.parse_args()
    kinds = args.kinds.split(",")
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    result: dict = {"machine": machine(), "threads": args.threads}
    import torch

    torch.set_num_threads(args.threads)
    print(json.dumps(result["machine"]))

    # 1. agreement ---------------------------------------------------------------------------
    sents = real_sentences()
    embs = {k: make(k, 64, args.threads) for k in kinds}
    t = time.perf_counter()
    for e in embs.values():  # export/quantise once (cached), outside the timings
        e.embed_batch(["warm up", "the batch session"])
    print(f"first use (load; export + quantise when not cached): {time.perf_counter() - t:.1f} s")
    ref = embed_all(embs["torch"], sents, 64)
    q = ref[: min(60, len(ref))]
    top_ref = np.argsort(-(q @ ref.T), axis=1)[:, 1:6]
    agree = {}
    print(f"\nagreement with torch on {len(sents)} real sentences/passages (demo corpus):")
    print(f"{'runtime':<16}{'min cos':>10}{'p1 cos':>10}{'mean cos':>10}{'overlap@5':>11}{'model_id':>44}")
    for k in kinds:
        if k == "torch":
            continue
        v = embed_all(embs[k], sents, 64)
        cos = (ref * v).sum(1)
        top = np.argsort(-(v[: len(q)] @ v.T), axis=1)[:, 1:6]
        ov = float(np.mean([len(set(a) & set(b)) / 5 for a, b in zip(top_ref, top)]))
        agree[k] = {"min": float(cos.min()), "p1": float(np.percentile(cos, 1)), "mean": float(cos.mean()),
                    "overlap_at_5": ov, "model_id": embs[k].model_id, "n": len(sents)}
        print(f"{k:<16}{cos.min():>10.5f}{np.percentile(cos, 1):>10.5f}{cos.mean():>10.5f}{ov:>11.3f}"
              f"{embs[k].model_id:>44}")
    result["agreement"] = agree

    # 2. throughput ----------------------------------------------------------------------------
    kinds = args.speed_kinds.split(",")
    for k in kinds:
        if k not in embs:
            embs[k] = make(k, 64, args.threads)
            embs[k].embed_batch(["warm up", "the batch session"])
    texts = chunk_texts(args.texts)
    tok = embs["torch"]
    ntok = sum(tok.count_tokens(t) + 2 for t in texts)
    print(f"\nthroughput: {len(texts)} chunk-like texts, mean {ntok / len(texts):.0f} tokens, "
          f"{args.threads} threads, {args.rounds} rounds alternating runtimes (medians)")
    runs: dict[tuple[str, int], list[float]] = {}
    qlat: dict[str, list[float]] = {}
    for r in range(args.rounds):
        order = kinds[r % len(kinds):] + kinds[: r % len(kinds)]
        for bs in sizes:
            for k in order:
                e = embs[k]
                e.batch_size = bs
                t = time.perf_counter()
                embed_all(e, texts, bs)
                runs.setdefault((k, bs), []).append(len(texts) / (time.perf_counter() - t))
        for k in order:
            t = time.perf_counter()
            for qq in ("How do I request a new laptop?", "Who approves travel?", "What is the on-call rotation?"):
                embs[k].embed_batch([qq])
            qlat.setdefault(k, []).append((time.perf_counter() - t) / 3 * 1e3)
    base = {bs: median(runs[("torch", bs)]) for bs in sizes}
    print(f"{'runtime':<16}{'batch':>6}{'texts/s':>10}{'tokens/s':>10}{'× torch':>9}   per-round texts/s")
    tp = {}
    for k in kinds:
        for bs in sizes:
            m = median(runs[(k, bs)])
            tp[f"{k}@{bs}"] = {"texts_per_s": m, "tokens_per_s": m * ntok / len(texts), "x_torch": m / base[bs],
                               "rounds": runs[(k, bs)]}
            print(f"{k:<16}{bs:>6}{m:>10.1f}{m * ntok / len(texts):>10.0f}{m / base[bs]:>9.2f}   "
                  + " ".join(f"{x:.0f}" for x in runs[(k, bs)]))
    print(f"\n{'runtime':<16}{'1-question embed ms (median)':>30}")
    for k in kinds:
        print(f"{k:<16}{median(qlat[k]):>30.1f}")
    result["throughput"] = tp
    result["question_ms"] = {k: median(v) for k, v in qlat.items()}
    result["texts"] = {"n": len(texts), "mean_tokens": ntok / len(texts)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
