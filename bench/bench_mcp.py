"""MCP `ask` latency against the `/ask` API's, on the same server: p50/p95 of each, runs alternating.

    python bench/bench_mcp.py [--index DIR] [--rounds 3] [--login]

Serves the index with `askcolleague serve` in a child process on 127.0.0.1 (without --index, the demo
corpus is first built with the real model into a temporary folder). One client of each kind is
opened once: an MCP session of the official `mcp` SDK over streamable HTTP (/gradio_api/mcp/) and a
gradio_client.Client (/ask). Each question of eval/demo.yaml is then asked through both, one after
the other, the order swapped every question (a shared, noisy machine hurts both alike); latency is
measured by the client (transport + queue + answer). Both give the same extractive answer (checked).
With --login the server has a users file and both clients send `Authorization: Bearer <token>`.
Writes bench/results/mcp.json.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_load import ROOT, RESULTS, _env, _free_port, _wait_up, demo_questions, machine, pct  # noqa: E402


def _stats(xs: list[float]) -> dict:
    return {"p50": round(pct(xs, 50), 1), "p95": round(pct(xs, 95), 1), "mean": round(sum(xs) / len(xs), 1),
            "n": len(xs)}


async def measure(url: str, questions: list[str], rounds: int, token: str | None) -> dict:
    from gradio_client import Client
    from mcp import ClientSession
    from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client

    headers = {"Authorization": f"Bearer {token}"} if token else None
    api = Client(url, headers=headers, verbose=False)
    ms: dict[str, list[float]] = {"mcp": [], "api": []}
    server_ms: dict[str, list[float]] = {"mcp": [], "api": []}
    mismatches = 0
    async with create_mcp_http_client(headers=headers) as http, \
            streamable_http_client(url + "gradio_api/mcp/", http_client=http) as (r, w, _), \
            ClientSession(r, w) as session:
        await session.initialize()

        async def via_mcp(q: str) -> dict:
            res = await session.call_tool("ask", {"question": q})
            if res.isError:
                raise RuntimeError(res.content[0].text)
            return json.loads(res.content[0].text)

        async def via_api(q: str) -> dict:
            return await asyncio.to_thread(api.predict, q, api_name="/ask")

        runs = {"mcp": via_mcp, "api": via_api}
        for f in runs.values():  # warm up, untimed
            await f(questions[0])
        i = 0
        for _ in range(rounds):
            for q in questions:
                order = ["mcp", "api"] if i % 2 == 0 else ["api", "mcp"]
                i += 1
                got = {}
                for name in order:
                    t = time.perf_counter()
                    got[name] = await runs[name](q)
                    ms[name].append((time.perf_counter() - t) * 1e3)
                    server_ms[name].append(got[name]["timings_ms"]["total"])
                mismatches += got["mcp"]["answer"] != got["api"]["answer"]
    return {"client_ms": {k: _stats(v) for k, v in ms.items()},
            "server_ms": {k: _stats(v) for k, v in server_ms.items()},
            "p50_difference_ms": round(pct(ms["mcp"], 50) - pct(ms["api"], 50), 1),
            "p95_difference_ms": round(pct(ms["mcp"], 95) - pct(ms["api"], 95), 1),
            "answer_mismatches": mismatches}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--index", type=Path, default=None, help="index to serve [default: build ingest/demo into a temp folder]")
    p.add_argument("--rounds", type=int, default=3, help="passes over the demo questions [default: 3]")
    p.add_argument("--login", action="store_true", help="serve with a users file; both clients use an API token")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-mcp-"))
    index = args.index
    if index is None:
        index = tmp / "index"
        print(f"building the demo corpus into {index} (real model) …", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "askcolleague", "index", "build", str(ROOT / "ingest" / "demo"),
                        "--index", str(index), "-q"], check=True, env=_env(), cwd=ROOT)
    env, token = _env(), None
    if args.login:
        sys.path.insert(0, str(ROOT / "src"))
        from askcolleague.web.auth import add_user, create_token

        users = tmp / "users.yaml"
        add_user(users, "bench", "bench-password", person="Dana Lee")
        token = create_token(users, "bench")[1]
        env["ASKCOLLEAGUE_USERS_FILE"] = str(users)
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    log = open(tmp / "server.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "askcolleague", "serve", "--index", str(index), "--port",
                               str(port)], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    try:
        _wait_up(url, server)
        questions = demo_questions()
        cfg = {"date": dt.datetime.now().isoformat(timespec="seconds"), "index": str(index), "rounds": args.rounds,
               "questions": len(questions), "login": args.login, "machine": machine()}
        res = asyncio.run(measure(url, questions, args.rounds, token))
    finally:
        server.terminate()
        server.wait(30)
    c = res["client_ms"]
    print(f"{'':18}{'p50 ms':>9}{'p95 ms':>9}{'mean ms':>9}   (n={c['mcp']['n']} each, alternating; login "
          f"{'on, bearer token' if args.login else 'off'})")
    for name, label in (("mcp", "MCP tools/call ask"), ("api", "/ask API")):
        print(f"{label:18}{c[name]['p50']:>9}{c[name]['p95']:>9}{c[name]['mean']:>9}"
              f"   (server's own answer time p50 {res['server_ms'][name]['p50']} ms)")
    print(f"MCP - API: p50 {res['p50_difference_ms']:+} ms, p95 {res['p95_difference_ms']:+} ms; "
          f"answers that differ: {res['answer_mismatches']}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "mcp-login.json" if args.login else "mcp.json"
    (RESULTS / name).write_text(json.dumps({"config": cfg, "results": res}, indent=2) + "\n")
    print(f"wrote {RESULTS / name}", file=sys.stderr)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
