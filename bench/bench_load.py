"""Load test of the web app: concurrent clients asking through the `/ask` API; failures, p50/p95/p99, throughput.

    python bench/bench_load.py [--index DIR] [--clients 20] [--questions 500] [--mode hybrid]

Serves the index with `askcolleague serve` in a child process on 127.0.0.1 (without --index, the
demo corpus is first built with the real model into a temporary folder), then CLIENTS threads, each
with its own gradio_client.Client, send QUESTIONS questions in total (taken in turn from
eval/demo.yaml) and wait for each answer before sending the next. Latency is measured by the
client: queue wait + answer + transport. Prints a table; writes bench/results/load.json and a
Markdown snippet bench/results/load.md.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def pct(xs: list[float], p: float) -> float:
    """The p-th percentile (nearest rank on the sorted values)."""
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


def demo_questions() -> list[str]:
    import yaml

    suite = yaml.safe_load((ROOT / "eval" / "demo.yaml").read_text())
    return [q["question"] for q in suite["questions"]]


def run_load(url: str, questions: list[str], clients: int = 20, total: int = 500, mode: str | None = None,
             auth: tuple[str, str] | None = None) -> dict:
    """Send `total` questions from `clients` concurrent API clients (one request in flight each).

    Returns {"ok", "failed", "errors" (first 20), "latency_ms": {p50, p95, p99, mean, max},
    "server_ms": {p50, p95} (the answer's own timings_ms.total), "wall_s", "throughput_qps"}.
    """
    from gradio_client import Client

    lock = threading.Lock()
    next_i = [0]
    lat: list[float] = []
    server: list[float] = []
    errors: list[str] = []
    ready = threading.Barrier(clients + 1)

    def take() -> int | None:
        with lock:
            if next_i[0] >= total:
                return None
            next_i[0] += 1
            return next_i[0] - 1

    def client_loop() -> None:
        try:
            client = Client(url, auth=auth, verbose=False)
        except Exception as e:  # counted below: this client's share fails
            client = e
        ready.wait()
        while (i := take()) is not None:
            t = time.perf_counter()
            try:
                if isinstance(client, Exception):
                    raise client
                r = client.predict(questions[i % len(questions)], mode=mode, api_name="/ask")
                assert isinstance(r, dict) and "answer" in r, f"unexpected reply {str(r)[:80]}"
                with lock:
                    lat.append((time.perf_counter() - t) * 1e3)
                    server.append(r["timings_ms"]["total"])
            except Exception as e:
                with lock:
                    errors.append(f"{type(e).__name__}: {str(e)[:200]}")

    threads = [threading.Thread(target=client_loop, daemon=True) for _ in range(clients)]
    for th in threads:
        th.start()
    ready.wait()
    t0 = time.perf_counter()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    return {"clients": clients, "total": total, "ok": len(lat), "failed": len(errors), "errors": errors[:20],
            "latency_ms": {"p50": pct(lat, 50), "p95": pct(lat, 95), "p99": pct(lat, 99),
                           "mean": statistics.fmean(lat) if lat else float("nan"),
                           "max": max(lat, default=float("nan"))},
            "server_ms": {"p50": pct(server, 50), "p95": pct(server, 95)},
            "wall_s": wall, "throughput_qps": len(lat) / wall if wall else 0.0}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_up(url: str, proc: subprocess.Popen, timeout: float = 900) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(1)
    raise RuntimeError(f"the server did not answer on {url} within {timeout:.0f} s")


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))


def machine() -> dict:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {"nproc": os.cpu_count(), "cpu": cpu, "python": sys.version.split()[0], "loadavg_before": os.getloadavg()}


def markdown(res: dict, cfg: dict) -> str:
    lat = res["latency_ms"]
    return "\n".join([
        f"### Web load test ({cfg['date'][:10]})",
        "",
        f"`python bench/bench_load.py --clients {res['clients']} --questions {res['total']}"
        f"{' --concurrency ' + str(cfg['concurrency']) if '--concurrency' in ' '.join(cfg['command']) else ''}` — "
        f"{res['clients']} concurrent `gradio_client` clients, {res['total']} questions from eval/demo.yaml through "
        f"`/ask` ({cfg['mode']} retrieval, extractive answers), index {cfg['index_desc']}, Gradio queue "
        f"concurrency {cfg['concurrency']} / max_size {cfg['queue_max_size']}, {cfg['machine']['nproc']} cores "
        f"(load average before: {cfg['machine']['loadavg_before'][0]:.1f}).",
        "",
        "| failed | p50 ms | p95 ms | p99 ms | max ms | throughput q/s | server p50 ms |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {res['failed']} / {res['total']} | {lat['p50']:.0f} | {lat['p95']:.0f} | {lat['p99']:.0f} | "
        f"{lat['max']:.0f} | {res['throughput_qps']:.2f} | {res['server_ms']['p50']:.0f} |",
        "",
        "Latency is what a client waits (queue + answer + transport); server p50 is the answer's own "
        "`timings_ms.total`. With one answer at a time, p50 ≈ clients × service time.",
        "",
    ])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, default=None,
                    help="index to serve [default: build ingest/demo into a temp folder]")
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--questions", type=int, default=500)
    ap.add_argument("--mode", default="hybrid", choices=["hybrid", "dense", "bm25"])
    ap.add_argument("--concurrency", type=int, default=None,
                    help="serve with this many answers at a time instead of web.CONCURRENCY (to compare settings)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from askcolleague.settings import Settings
    from askcolleague.web.app import CONCURRENCY, QUEUE_MAX_SIZE

    concurrency = args.concurrency or CONCURRENCY

    tmp = tempfile.TemporaryDirectory(prefix="askcolleague-load-")
    index = args.index
    if index is None:
        index = Path(tmp.name) / "index"
        print(f"building the demo corpus into {index} (real model) …", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "askcolleague", "index", "build", str(ROOT / "ingest" / "demo"),
                        "--index", str(index), "-q"], check=True, env=_env(), cwd=ROOT)
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    log = open(Path(tmp.name) / "server.log", "w")
    cmd = [sys.executable, "-m", "askcolleague", "serve", "--index", str(index), "--port", str(port)]
    if args.concurrency:
        cmd = [sys.executable, "-c", f"import askcolleague.web.app as w; w.CONCURRENCY = {args.concurrency}; "
                                     f"w.serve({str(index)!r}, port={port})"]
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=_env(), cwd=ROOT)
    try:
        _wait_up(url, server)
        mach = machine()
        print(f"serving {index} on {url}; {args.clients} clients × {args.questions} questions …", file=sys.stderr)
        res = run_load(url, demo_questions(), clients=args.clients, total=args.questions, mode=args.mode)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        if server.returncode not in (0, -15, None):
            print((Path(tmp.name) / "server.log").read_text()[-3000:], file=sys.stderr)
    runtime = getattr(Settings.load(), "runtime", "torch")
    manifest = json.loads((index / (index / "CURRENT").read_text().strip() / "manifest.json").read_text())
    cfg = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "command": sys.argv,
           "mode": args.mode, "concurrency": concurrency, "queue_max_size": QUEUE_MAX_SIZE, "machine": mach,
           "model": manifest["model"]["id"], "runtime": runtime,
           "chunks": manifest["counts"]["chunks"],
           "index_desc": f"{'the demo corpus' if args.index is None else index} "
                         f"({manifest['counts']['chunks']} chunks, {manifest['model']['id'].split('/')[-1]}, "
                         f"{runtime} runtime)"}
    lat = res["latency_ms"]
    print(f"{'clients':>8}{'questions':>10}{'failed':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}"
          f"{'q/s':>7}{'server p50':>12}")
    print(f"{res['clients']:>8}{res['total']:>10}{res['failed']:>8}{lat['p50']:>9.0f}{lat['p95']:>9.0f}"
          f"{lat['p99']:>9.0f}{lat['max']:>9.0f}{res['throughput_qps']:>7.2f}{res['server_ms']['p50']:>12.0f}")
    for e in res["errors"][:5]:
        print(f"  error: {e}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "load.json").write_text(json.dumps({**cfg, "results": res}, indent=2) + "\n")
    (args.out / "load.md").write_text(markdown(res, cfg))
    print(f"wrote {args.out / 'load.json'} and {args.out / 'load.md'}", file=sys.stderr)
    tmp.cleanup()
    sys.exit(1 if res["failed"] else 0)


if __name__ == "__main__":
    main()
