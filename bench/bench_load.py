"""Load test of the web app: concurrent clients asking through the `/ask` API; failures, p50/p95/p99, throughput.

    python bench/bench_load.py [--index DIR|URI] [--clients 20] [--questions 500] [--mode hybrid]
                               [--servers N] [--rebuild-during [--rebuild-after S]]

Serves the index with `askcolleague serve` in a child process on 127.0.0.1 (without --index, the
demo corpus is first built with the real model into a temporary folder), then CLIENTS threads, each
with its own gradio_client.Client, send QUESTIONS questions in total (taken in turn from
eval/demo.yaml) and wait for each answer before sending the next. Latency is measured by the
client: queue wait + answer + transport. Prints a table; writes bench/results/load.json and a
Markdown snippet bench/results/load.md.

Many app servers (issue 15): `--servers N` starts N `askcolleague serve` processes on their own
loopback ports, all on the one index (a folder, or a postgresql:// URI), and spreads the clients over
them in turn (client i asks server i mod N). `--rebuild-during` runs `askcolleague index build
--rebuild` of the index's own sources (its manifest's roots and people files) in another process,
REBUILD_AFTER seconds into the load; the load goes on past QUESTIONS until the rebuild has finished and
every server has answered questions sent after it. Prints a row per server and the total (answers/s,
p50/p95, failed), the rebuild's span and which index versions each server answered from: every server
must switch to the new version and never answer from the old one again (the exit status is 1 on a failed
request, an answer from an older version after a switch, or a failed rebuild). Writes load-servers.json
and load-servers.md instead (the single-server files are left alone).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Callable

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
    return run_load_servers([url], questions, clients=clients, total=total, mode=mode, auth=auth)["total"]


def _summary(answers: list[tuple], errors: list[str], clients: int, wall: float) -> dict:
    lat = [a[3] for a in answers]
    server = [a[4] for a in answers]
    return {"clients": clients, "total": len(answers) + len(errors), "ok": len(lat), "failed": len(errors),
            "errors": errors[:20],
            "latency_ms": {"p50": pct(lat, 50), "p95": pct(lat, 95), "p99": pct(lat, 99),
                           "mean": statistics.fmean(lat) if lat else float("nan"),
                           "max": max(lat, default=float("nan"))},
            "server_ms": {"p50": pct(server, 50), "p95": pct(server, 95)},
            "wall_s": wall, "throughput_qps": len(lat) / wall if wall else 0.0}


def _versions(answers: list[tuple]) -> dict:
    """Which index versions one server answered from: [version, answers, first answered at s] in order of
    first answer, and `stale`: answers from a version older than one this server had already answered
    from before the request was sent (a server must never go back)."""
    first: dict[str, float] = {}
    counts: dict[str, int] = {}
    for start, end, version, *_ in sorted(answers, key=lambda a: a[1]):
        first.setdefault(version, end)
        counts[version] = counts.get(version, 0) + 1
    stale = sum(1 for start, end, version, *_ in answers
                if any(first[v] > first[version] and first[v] < start for v in first))
    return {"seen": [[v, counts[v], round(first[v], 3)] for v in sorted(first, key=first.get)], "stale": stale}


AFTER_DURING_S = 120  # how long the load may go on after a rebuild (run_load_servers' `during`)


def run_load_servers(urls: list[str], questions: list[str], clients: int = 20, total: int = 500,
                     mode: str | None = None, auth: tuple[str, str] | None = None,
                     during: tuple[float, Callable[[], dict]] | None = None) -> dict:
    """run_load over several servers: client i asks urls[i % len(urls)]; `total` questions in all.

    `during`: (seconds, fn): fn() runs in its own thread that many seconds after the load starts (a
    rebuild); its result is returned as "during", with "started_s"/"finished_s" (from the load's start)
    and "answers_during" (per server: answers sent and received while it ran). The load then goes on past
    `total` questions until fn has returned and every server has answered as many questions sent after
    that as it has clients (at most AFTER_DURING_S longer), so that the switch is seen.
    Returns {"total": run_load's dict for all servers, "servers": [the same per server, with "url" and
    "versions" (see _versions)], "during": … or None}.
    """
    from gradio_client import Client

    lock = threading.Lock()
    next_i = [0]
    answers: list[list[tuple]] = [[] for _ in urls]  # (start s, end s, index_version, latency ms, server ms)
    errors: list[list[str]] = [[] for _ in urls]
    ready = threading.Barrier(clients + 1)
    t0 = [0.0]

    side: dict = {}
    per_server = [sum(1 for c in range(clients) if c % len(urls) == s) for s in range(len(urls))]

    def settled() -> bool:  # (with the lock held)
        if during is None:
            return True
        done = side.get("finished_s")
        if done is None:
            return False
        return (time.perf_counter() - t0[0] - done > AFTER_DURING_S
                or all(sum(1 for a in mine if a[0] > done) >= n for mine, n in zip(answers, per_server)))

    def take() -> int | None:
        with lock:
            if next_i[0] >= total and settled():
                return None
            next_i[0] += 1
            return next_i[0] - 1

    def client_loop(s: int) -> None:
        try:
            client = Client(urls[s], auth=auth, verbose=False)
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
                end = time.perf_counter()
                with lock:
                    answers[s].append((t - t0[0], end - t0[0], r.get("index_version"), (end - t) * 1e3,
                                       r["timings_ms"]["total"]))
            except Exception as e:
                with lock:
                    errors[s].append(f"{type(e).__name__}: {str(e)[:200]}")

    threads = [threading.Thread(target=client_loop, args=(c % len(urls),), daemon=True) for c in range(clients)]
    for th in threads:
        th.start()
    ready.wait()
    t0[0] = time.perf_counter()
    side_thread = None
    if during is not None:
        def run_during() -> None:
            time.sleep(during[0])
            side["started_s"] = time.perf_counter() - t0[0]
            try:
                side.update(during[1]())
            finally:
                side["finished_s"] = time.perf_counter() - t0[0]
        side_thread = threading.Thread(target=run_during, daemon=True)
        side_thread.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0[0]
    if side_thread is not None:
        side_thread.join()
        side["load_wall_s"] = wall
        side["answers_during"] = [sum(1 for a in mine if a[0] >= side["started_s"] and a[1] <= side["finished_s"])
                                  for mine in answers]
    all_answers = [a for mine in answers for a in mine]
    all_errors = [e for mine in errors for e in mine]
    servers = [{"url": url, **_summary(answers[s], errors[s], per_server[s], wall), "versions": _versions(answers[s])}
               for s, url in enumerate(urls)]
    return {"total": _summary(all_answers, all_errors, clients, wall), "servers": servers,
            "during": side if during is not None else None}


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


def _server_cmd(index, port: int, concurrency: int | None) -> list[str]:
    cmd = [sys.executable, "-m", "askcolleague", "serve", "--index", str(index), "--port", str(port)]
    if concurrency:
        cmd = [sys.executable, "-c", f"import askcolleague.web.app as w; w.CONCURRENCY = {concurrency}; "
                                     f"w.serve({str(index)!r}, port={port})"]
    return cmd


def _stop(server: subprocess.Popen, log, log_path: Path) -> None:
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=30)
    log.close()
    if server.returncode not in (0, -15, None):
        print(log_path.read_text()[-3000:], file=sys.stderr)


def _entry_path(entry: dict) -> Path:
    """A manifest's root or people file entry (as indexing/build.py records them)."""
    return Path(os.fsdecode(bytes.fromhex(entry["path_bytes"]))) if entry.get("path_bytes") else Path(entry["path"])


def _recorded(text: str) -> str:
    """A command or location as the results record it: paths relative to the checkout, no socket folder."""
    return re.sub(r"host=/[^&\s]*", "host=<socket dir>", text.replace(str(ROOT) + "/", ""))


def _rebuilder(index, shown: str, log_path: Path) -> Callable[[], dict]:
    """fn() for run_load_servers(during=…): `askcolleague index build --rebuild` of the index's own sources."""
    from askcolleague.index import backend_for

    def rebuild() -> dict:
        m = backend_for(index).status(index)
        args = [str(_entry_path(r)) for r in m["roots"]]
        for f in m.get("people_files") or []:
            args += ["--people", str(_entry_path(f))]
        cmd = [sys.executable, "-m", "askcolleague", "index", "build", *args, "--rebuild", "--index", str(index),
               "--json", "-q"]
        t = time.perf_counter()
        with open(log_path, "w") as err:
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=_env(), cwd=ROOT)
        out = {"command": _recorded(" ".join(["askcolleague", *cmd[3:]]).replace(str(index), shown)),
               "returncode": p.returncode,
               "seconds": time.perf_counter() - t, "version_before": m["version"]}
        if p.returncode == 0:
            rep = json.loads(p.stdout)
            out.update(version_after=rep["version"], chunks=rep.get("chunks"), embedded=rep.get("embedded"))
        else:
            out["stderr"] = log_path.read_text()[-2000:]
        return out

    return rebuild


def _short(version: str | None) -> str:
    return str(version)[-6:]


def markdown_servers(res: dict, cfg: dict) -> str:
    lines = [
        f"### Web load test, {len(res['servers'])} app servers ({cfg['date'][:10]})",
        "",
        f"`{cfg['command_line']}` — {res['total']['clients']} concurrent `gradio_client` clients spread over "
        f"{len(res['servers'])} `askcolleague serve` processes (127.0.0.1, one port each), {res['total']['total']} "
        f"questions{_more(res, cfg)} from eval/demo.yaml through `/ask` ({cfg['mode']} retrieval, extractive "
        f"answers), index "
        f"{cfg['index_desc']}, Gradio queue concurrency {cfg['concurrency']} per server, "
        f"{cfg['machine']['nproc']} cores (load average before: {cfg['machine']['loadavg_before'][0]:.1f}).",
        "",
        "| server | clients | failed | p50 ms | p95 ms | p99 ms | max ms | answers/s | server p50 ms "
        "| versions answered from (answers) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in res["servers"] + [res["total"]]:
        lat = r["latency_ms"]
        name = f":{r['url'].rsplit(':', 1)[1].strip('/')}" if "url" in r else "**total**"
        seen = " → ".join(f"…{_short(v)} ({c})" for v, c, _ in r["versions"]["seen"]) if "versions" in r else ""
        lines.append(f"| {name} | {r['clients']} | {r['failed']} / {r['total']} | {lat['p50']:.0f} | "
                     f"{lat['p95']:.0f} | {lat['p99']:.0f} | {lat['max']:.0f} | {r['throughput_qps']:.2f} | "
                     f"{r['server_ms']['p50']:.0f} | {seen} |")
    d = res.get("during")
    if d:
        lines += ["", _rebuild_line(res)]
    lines += ["", "Latency is what a client waits (queue + answer + transport); server p50 is the answer's own "
                  "`timings_ms.total`; answers/s is per server over the whole run. A server must never answer from "
                  "an older version once it has answered from a newer one.", ""]
    return "\n".join(lines)


def _more(res: dict, cfg: dict) -> str:
    extra = res["total"]["total"] - cfg["questions"]
    return (f" ({cfg['questions']} asked for, and {extra} more until every server had answered questions sent "
            "after the rebuild)" if extra > 0 else "")


def _rebuild_line(res: dict) -> str:
    d = res["during"]
    if d.get("returncode") != 0:
        return f"Rebuild `{d.get('command')}` FAILED (exit {d.get('returncode')}): {d.get('stderr', '')[-300:]}"
    switched = [any(v == d["version_after"] for v, *_ in s["versions"]["seen"]) for s in res["servers"]]
    return (f"Rebuild during the load: `{d['command']}` ({d.get('chunks')} chunks, {d.get('embedded')} embedded) ran "
            f"from {d['started_s']:.1f} s to {d['finished_s']:.1f} s of the {d['load_wall_s']:.1f} s load "
            f"({d['seconds']:.1f} s); answers received while it ran, per server: {d['answers_during']}; version "
            f"…{_short(d['version_before'])} → …{_short(d['version_after'])}; servers that switched: "
            f"{sum(switched)} / {len(switched)}; answers from an older version after a switch: "
            f"{sum(s['versions']['stale'] for s in res['servers'])}.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", default=None,
                    help="index to serve, a folder or a postgresql:// URI [default: build ingest/demo into a temp "
                         "folder]")
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--questions", type=int, default=500)
    ap.add_argument("--mode", default="hybrid", choices=["hybrid", "dense", "bm25"])
    ap.add_argument("--concurrency", type=int, default=None,
                    help="serve with this many answers at a time instead of web.CONCURRENCY (to compare settings)")
    ap.add_argument("--servers", type=int, default=1,
                    help="app server processes on the one index, one loopback port each; client i asks server i mod N")
    ap.add_argument("--rebuild-during", action="store_true",
                    help="run `askcolleague index build --rebuild` of the index's sources in another process during "
                         "the load")
    ap.add_argument("--rebuild-after", type=float, default=3.0, help="seconds into the load to start the rebuild")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from askcolleague.index import backend_for
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
    elif backend_for(index).name == "folder":
        index = Path(index)
    if args.servers > 1 or args.rebuild_during:
        sys.exit(main_servers(args, index, tmp, concurrency))
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    log = open(Path(tmp.name) / "server.log", "w")
    cmd = _server_cmd(index, port, args.concurrency)
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=_env(), cwd=ROOT)
    try:
        _wait_up(url, server)
        mach = machine()
        print(f"serving {index} on {url}; {args.clients} clients × {args.questions} questions …", file=sys.stderr)
        res = run_load(url, demo_questions(), clients=args.clients, total=args.questions, mode=args.mode)
    finally:
        _stop(server, log, Path(tmp.name) / "server.log")
    runtime = getattr(Settings.load(), "runtime", "torch")
    if isinstance(index, Path):
        manifest = json.loads((index / (index / "CURRENT").read_text().strip() / "manifest.json").read_text())
    else:
        manifest = backend_for(index).status(index)
    cfg = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "command": sys.argv,
           "mode": args.mode, "concurrency": concurrency, "queue_max_size": QUEUE_MAX_SIZE, "machine": mach,
           "model": manifest["model"]["id"], "runtime": runtime,
           "chunks": manifest["counts"]["chunks"],
           "index_desc": f"{'the demo corpus' if args.index is None else _recorded(backend_for(index).display(index))} "
                         f"({manifest['counts']['chunks']} chunks, {manifest['model']['id'].split('/')[-1]}, "
                         f"{runtime} runtime)"}
    if not isinstance(index, Path):
        cfg["command"] = [_recorded(a.replace(str(index), backend_for(index).display(index))) for a in sys.argv]
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


def main_servers(args, index, tmp: tempfile.TemporaryDirectory, concurrency: int) -> int:
    """--servers N / --rebuild-during: N servers on the one index, a row per server and the total."""
    from askcolleague.index import backend_for
    from askcolleague.settings import Settings
    from askcolleague.web.app import QUEUE_MAX_SIZE

    backend = backend_for(index)
    shown = backend.display(index)
    ports: list[int] = []
    while len(ports) < args.servers:
        if (p := _free_port()) not in ports:
            ports.append(p)
    urls = [f"http://127.0.0.1:{p}/" for p in ports]
    servers = []
    try:
        for n, port in enumerate(ports):
            log_path = Path(tmp.name) / f"server{n}.log"
            log = open(log_path, "w")
            servers.append((subprocess.Popen(_server_cmd(index, port, args.concurrency), stdout=log,
                                             stderr=subprocess.STDOUT, env=_env(), cwd=ROOT), log, log_path))
        for url, (server, _, _) in zip(urls, servers):
            _wait_up(url, server)
        mach = machine()
        print(f"serving {shown} on {', '.join(urls)}; {args.clients} clients × {args.questions} questions"
              f"{f', a rebuild {args.rebuild_after:g} s in' if args.rebuild_during else ''} …", file=sys.stderr)
        during = ((args.rebuild_after, _rebuilder(index, shown, Path(tmp.name) / "rebuild.log"))
                  if args.rebuild_during else None)
        res = run_load_servers(urls, demo_questions(), clients=args.clients, total=args.questions, mode=args.mode,
                               during=during)
    finally:
        for server, log, log_path in servers:
            _stop(server, log, log_path)
    runtime = getattr(Settings.load(), "runtime", "torch")
    manifest = backend.status(index)
    command = [a.replace(str(index), shown) for a in sys.argv]
    cfg = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "command": command,
           "command_line": " ".join(["python", *command]), "mode": args.mode, "concurrency": concurrency,
           "queue_max_size": QUEUE_MAX_SIZE, "machine": mach, "model": manifest["model"]["id"], "runtime": runtime,
           "chunks": manifest["counts"]["chunks"], "servers": args.servers, "questions": args.questions,
           "index_desc": f"{'the demo corpus' if args.index is None else shown} ({backend.name}, "
                         f"{manifest['counts']['chunks']} chunks, {manifest['model']['id'].split('/')[-1]}, "
                         f"{runtime} runtime)"}
    print(f"{'server':>8}{'clients':>8}{'questions':>10}{'failed':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
          f"{'max ms':>9}{'q/s':>7}{'server p50':>12}  versions (answers)")
    for r in res["servers"] + [res["total"]]:
        lat = r["latency_ms"]
        name = f":{r['url'].rsplit(':', 1)[1].strip('/')}" if "url" in r else "total"
        seen = " → ".join(f"…{_short(v)} ({c})" for v, c, _ in r["versions"]["seen"]) if "versions" in r else ""
        print(f"{name:>8}{r['clients']:>8}{r['total']:>10}{r['failed']:>8}{lat['p50']:>9.0f}{lat['p95']:>9.0f}"
              f"{lat['p99']:>9.0f}{lat['max']:>9.0f}{r['throughput_qps']:>7.2f}{r['server_ms']['p50']:>12.0f}  {seen}")
    for e in res["total"]["errors"][:5]:
        print(f"  error: {e}")
    stale = sum(s["versions"]["stale"] for s in res["servers"])
    bad_rebuild = False
    if res["during"] is not None:
        print(_rebuild_line(res))
        d = res["during"]
        bad_rebuild = d.get("returncode") != 0
        if not bad_rebuild and not all(any(v == d["version_after"] for v, *_ in r["versions"]["seen"])
                                       for r in res["servers"]):
            print(f"note: not every server answered from the new version within {AFTER_DURING_S} s after the "
                  "rebuild", file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "load-servers.json").write_text(json.dumps({**cfg, "results": res}, indent=2) + "\n")
    (args.out / "load-servers.md").write_text(markdown_servers(res, cfg))
    print(f"wrote {args.out / 'load-servers.json'} and {args.out / 'load-servers.md'}", file=sys.stderr)
    tmp.cleanup()
    return 1 if res["total"]["failed"] or stale or bad_rebuild else 0

if __name__ == "__main__":
    main()
