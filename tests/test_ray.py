"""Parse, chunk and embed on a Ray cluster (askcolleague.indexing.distributed): a real two-node cluster on
this machine (a head and a worker node, each started with the `ray` CLI in its own process, one CPU
each), every Ray server bound to 127.0.0.1; the demo corpus with the real bundled model, compared
with the local path; and a private `--ray local` cluster that leaves nothing running.

The nodes run Ray's own CLI (`ray.scripts.scripts.main`, what the `ray` command runs) with one
thing turned off: Ray rewrites 127.0.0.1 and localhost to the machine's interface address, in
`--node-ip-address` and in a worker node's `--address` (ray-project/ray#59110), so a worker node
cannot otherwise join a head bound to loopback. The driver side (`ray_sources` joining a loopback
address) does the same for itself (see distributed.py).
"""
from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray", reason="pip install -e '.[ray]' (the test extra brings it)")
pytest.importorskip("ray.data", reason="pip install -e '.[ray]' (the test extra brings it)")
psutil = pytest.importorskip("psutil")

from askcolleague.embed import get_embedder  # noqa: E402
from askcolleague.errors import ConfigError, LoadError  # noqa: E402
from askcolleague.indexing import distributed  # noqa: E402
from askcolleague.indexing.chunker import ChunkerConfig, chunk_doc  # noqa: E402
from askcolleague.loaders import discover, load_source  # noqa: E402
from askcolleague.settings import Settings  # noqa: E402

pytestmark = [
    pytest.mark.slow,  # the real model
    pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context"),  # Ray Data's own, on its options
]

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "ingest" / "demo"
LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}

# `ray …` with Ray's localhost resolution off in the CLI process (see the module's docstring)
RAY_CLI = ("import sys\n"
           "import ray._private.services as services\n"
           "services.resolve_ip_for_localhost = lambda host: host\n"
           "from ray.scripts.scripts import main\n"
           "sys.argv[0] = 'ray'\n"
           "sys.exit(main())\n")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(p) -> bool:
    try:
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _tree(tag: str) -> dict[int, "psutil.Process"]:
    """Live processes whose command line names `tag` (the cluster's temp dir), with all their
    descendants (Ray's workers and actors rename themselves `ray::…`)."""
    found = {}
    for p in psutil.process_iter(["cmdline"]):
        try:
            if p.pid != os.getpid() and any(tag in a for a in (p.info["cmdline"] or [])) and _alive(p):
                found[p.pid] = p
        except psutil.Error:
            continue
    for p in list(found.values()):
        try:
            found.update({c.pid: c for c in p.children(recursive=True) if _alive(c)})
        except psutil.Error:
            pass
    return found


def _is_ray(p) -> bool:
    """A process of Ray's own (server, agent, worker or actor), by name or command line."""
    try:
        if not _alive(p):
            return False
        cmd = p.cmdline()
        name = p.name()
    except psutil.Error:
        return False
    return name in ("raylet", "gcs_server") or name.startswith("ray::") or \
        any(a.startswith("ray::") or "/site-packages/ray/" in a for a in cmd)


def _ray_pids() -> set[int]:
    return {p.pid for p in psutil.process_iter() if _is_ray(p)}


def _listening(pids: set[int]) -> list[tuple[int, str, int]]:
    return sorted((c.pid, c.laddr.ip, c.laddr.port) for c in psutil.net_connections(kind="inet")
                  if c.status == psutil.CONN_LISTEN and c.pid in pids)


def _kill(procs: dict[int, "psutil.Process"]) -> None:
    for p in procs.values():
        try:
            p.terminate()
        except psutil.Error:
            pass
    _gone, alive = psutil.wait_procs(list(procs.values()), timeout=10)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=10)


def _reload_ray_config() -> None:
    """This process's Ray config read again from the environment (the auth mode is read once, at
    `import ray`, and this module imported ray before the fixture set it), as Ray itself does when
    it turns token auth on (ray._private.authentication.authentication_token_setup)."""
    import ray._raylet

    ray._raylet.Config.initialize("")


def _ray_cli(args: list[str], env: dict[str, str], log: Path) -> None:
    with open(log, "ab") as out:
        proc = subprocess.run([sys.executable, "-c", RAY_CLI, *args], cwd=ROOT, env=env, stdout=out,
                              stderr=subprocess.STDOUT, timeout=180)
    assert proc.returncode == 0, log.read_text(errors="replace")[-3000:]


@pytest.fixture(scope="module")
def cluster():
    """A head and one worker node on 127.0.0.1 (1 CPU each), their session files in a temp dir of
    their own, Ray's token authentication on; every process of theirs killed at the end. Yields
    (address, temp dir)."""
    tmp = tempfile.mkdtemp(prefix="ac-ray-")  # short: Ray's unix socket paths live under it
    port = _free_port()
    # token authentication, with a token of its own (not ~/.ray/auth_token): the nodes and this driver
    token = Path(tmp) / "auth_token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "ASKCOLLEAGUE_"))}
    env.update(RAY_USAGE_STATS_ENABLED="0", HF_HUB_OFFLINE="1", **auth)
    saved = {k: os.environ.get(k) for k in auth}
    os.environ.update(auth)
    _reload_ray_config()
    log = Path(tmp) / "ray-start.log"
    common = ["--num-cpus=1", "--object-store-memory=300000000", "--disable-usage-stats"]
    try:
        _ray_cli(["start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--include-dashboard=false",
                  f"--temp-dir={tmp}", *common], env, log)
        _ray_cli(["start", f"--address=127.0.0.1:{port}", "--node-ip-address=127.0.0.1", *common], env, log)
        yield f"127.0.0.1:{port}", tmp
    finally:
        for _ in range(3):  # workers may still be starting: until none is left
            procs = _tree(tmp)
            if not procs:
                break
            _kill(procs)
        left = _tree(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        _reload_ray_config()
        assert not left, f"Ray processes left running: {sorted((p.pid, p.name()) for p in left.values())}"


def _check_loopback(pids: set[int], at_least: int) -> list[tuple[int, str, int]]:
    socks = _listening(pids)
    wrong = [s for s in socks if s[1] not in LOOPBACK]
    assert not wrong, f"Ray listens beyond loopback: {wrong} (all: {socks})"
    assert len(socks) >= at_least, socks
    return socks


def test_every_ray_server_listens_on_loopback_only(cluster):
    address, tmp = cluster
    import ray

    pids = set(_tree(tmp))
    names = {psutil.Process(p).name() for p in pids}
    assert {"gcs_server", "raylet"} <= names, names
    raylets = [p for p in pids if psutil.Process(p).name() == "raylet"]
    assert len(raylets) == 2, "a head and a worker node"
    # the GCS, each raylet's node manager and object manager, each node's runtime env agent
    socks = _check_loopback(pids, at_least=1 + 2 * 2 + 2)
    assert any(port == int(address.rsplit(":", 1)[1]) for _pid, _ip, port in socks)
    # both nodes registered with the loopback address
    with distributed._node_ip_stays_loopback(ray, local=False):
        ray.init(address=address, log_to_driver=False, logging_level="warning")
    try:
        nodes = [n for n in ray.nodes() if n["Alive"]]
        assert len(nodes) == 2 and {n["NodeManagerAddress"] for n in nodes} == {"127.0.0.1"}
        assert ray.cluster_resources()["CPU"] == 2
        # the driver's own core worker server too
        assert _check_loopback({os.getpid()}, at_least=1)
    finally:
        ray.shutdown()


def _local(specs, settings, cfg, max_bytes):
    """The local path: load_source + chunk_doc + embed_batch per source, the same model and runtime."""
    emb = get_embedder(settings.model or None, batch_size=settings.batch_size, threads=0, runtime=settings.runtime)
    emb.embed_batch(["warm-up"])
    out, t_embed, n, t0 = [], 0.0, 0, time.perf_counter()
    for spec in specs:
        try:
            docs = load_source(spec, max_bytes)
        except LoadError as e:
            out.append((e, [], None))
            continue
        chunks = [c for d in docs for c in chunk_doc(d, emb, cfg)]
        t = time.perf_counter()
        vecs = emb.embed_batch([c.embed_text for c in chunks])
        t_embed += time.perf_counter() - t
        n += len(chunks)
        out.append((docs, chunks, vecs))
    return out, time.perf_counter() - t0, n / t_embed if t_embed else 0.0


def test_demo_corpus_on_two_nodes_equals_the_local_path(cluster, tmp_path):
    address, tmp = cluster
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.jsonl").write_text('{"id": 1, "messages": [\n')  # not JSON
    (bad / "report.docx").write_text("a text file named .docx\n")  # not a zip
    specs, _people, problems = discover([DEMO, bad])
    assert not problems, problems
    assert len(specs) > 40
    settings = Settings.load()
    cfg = ChunkerConfig(settings.chunk_tokens, settings.chunk_overlap)
    max_bytes = int(settings.max_file_mb * 1024 * 1024)

    t0 = time.perf_counter()
    got, socks = [], None
    for item in distributed.ray_sources(specs, max_bytes, settings, cfg, settings.model, settings.runtime, address,
                                        workers=2):
        if socks is None:  # mid-run, the actors alive: theirs, the workers' and this driver's servers
            socks = _check_loopback(set(_tree(tmp)) | {os.getpid()}, at_least=8)
            t_first = time.perf_counter()
        got.append(item)
    t_end = time.perf_counter()
    assert distributed.workers_used() == 2
    assert distributed.last_run() == {"address": address, "nodes": 2, "cpus": 2, "workers": 2}
    assert not _listening({os.getpid()}), "the driver disconnected (the cluster it joined still runs)"
    assert len(_tree(tmp)) >= 6, "the cluster it joined is left running"

    local, t_local, local_rate = _local(specs, settings, cfg, max_bytes)
    assert [g[0] for g in got] == specs, "in the order of the specs"
    worst, n_chunks, errors = 1.0, 0, {}
    for (spec, docs, chunks, vecs), (l_docs, l_chunks, l_vecs) in zip(got, local):
        if isinstance(l_docs, LoadError):
            assert isinstance(docs, LoadError) and type(docs) is type(l_docs), (spec.key, docs)
            assert str(docs) == str(l_docs)
            assert chunks == [] and vecs.shape[0] == 0
            errors[spec.key] = str(docs)
            continue
        assert not isinstance(docs, LoadError), (spec.key, docs)
        assert len(docs) == len(l_docs) and docs == l_docs, spec.key
        assert [c.chunk_id for c in chunks] == [c.chunk_id for c in l_chunks], spec.key
        assert [c.text for c in chunks] == [c.text for c in l_chunks]
        assert [c.embed_text for c in chunks] == [c.embed_text for c in l_chunks]
        assert chunks == l_chunks
        assert vecs.dtype == np.float32 and vecs.shape == l_vecs.shape
        if len(chunks):
            assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
            worst = min(worst, float((vecs * l_vecs).sum(axis=1).min()))
        n_chunks += len(chunks)
    assert set(errors) == {"bad/broken.jsonl", "bad/report.docx"}, errors
    assert "not valid JSON" in errors["bad/broken.jsonl"] and "DOCX" in errors["bad/report.docx"]
    assert n_chunks > 400
    assert worst >= 0.999, worst
    after_first = sum(len(c) for _s, _d, c, _v in got[1:])
    print(f"\n2-node Ray (2 actors, 1 ONNX thread each): {len(specs)} sources, {n_chunks} chunks, "
          f"{t_end - t0:.1f} s from the call ({n_chunks / (t_end - t0):.1f} chunks/s; first result after "
          f"{t_first - t0:.1f} s, then {after_first / max(t_end - t_first, 1e-9):.1f} chunks/s); local in this "
          f"process: {t_local:.1f} s ({n_chunks / t_local:.1f} chunks/s parse+chunk+embed; embedding alone "
          f"{local_rate:.1f} chunks/s, 2 threads); worst cosine {worst:.6f}; {len(socks)} listening sockets, "
          "all on loopback")


def test_local_cluster_runs_and_leaves_nothing_behind(cluster, tmp_path):
    _address, tmp = cluster
    (tmp_path / "a.md").write_text("# Parking\n\nVisitors park on level 2 of the garage; ask reception for a pass.\n")
    (tmp_path / "b.md").write_text("# Printers\n\nThe third-floor printer needs a badge to release a job.\n")
    (tmp_path / "c.jsonl").write_text("not json\n")
    specs, _, _ = discover([tmp_path])
    settings = Settings.load()
    cfg = ChunkerConfig(settings.chunk_tokens, settings.chunk_overlap)
    before = _ray_pids() | set(_tree(tmp))

    got, socks = [], None
    for item in distributed.ray_sources(specs, 1 << 20, settings, cfg, settings.model, settings.runtime, "local",
                                        workers=1):
        if socks is None:  # the private cluster's servers and this driver's: loopback only
            mine = (_ray_pids() - before - set(_tree(tmp))) | {os.getpid()}
            socks = _check_loopback(mine, at_least=4)
        got.append(item)
    assert [g[0].key for g in got] == [s.key for s in specs]
    by_key = {s.key: (docs, chunks, vecs) for s, docs, chunks, vecs in got}
    docs, chunks, vecs = by_key[f"{tmp_path.name}/a.md"]
    assert docs[0].title == "Parking" and len(chunks) == 1 and vecs.shape == (1, 384)
    assert "garage" in chunks[0].text
    assert isinstance(by_key[f"{tmp_path.name}/c.jsonl"][0], LoadError)
    assert distributed.last_run()["nodes"] == 1 and distributed.workers_used() == 1

    import ray

    assert not ray.is_initialized()
    deadline = time.monotonic() + 30
    while True:  # ray.shutdown() stops its processes; the last workers take a moment to exit
        left = [p for p in (psutil.Process(q) for q in _ray_pids() - before - set(_tree(tmp)) if psutil.pid_exists(q))
                if _alive(p)]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert not left, f"left running: {[(p.pid, p.name()) for p in left]}"


def test_without_ray_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(ConfigError) as e:
        next(distributed.ray_sources([object()], 1, Settings.load(), ChunkerConfig(), "", "onnx", "local"))
    assert str(e.value) == "--ray needs Ray: pip install 'askcolleague[ray]'"


def test_worker_env_carries_settings_not_secrets(monkeypatch):
    monkeypatch.setenv("ASKCOLLEAGUE_OCR", "0")
    monkeypatch.setenv("ASKCOLLEAGUE_LLM_API_KEY", "sk-secret")
    env = distributed.worker_env(Settings.load(chunk_tokens=120))
    assert env["ASKCOLLEAGUE_OCR"] == "0" and env["ASKCOLLEAGUE_CHUNK_TOKENS"] == "120"
    assert "ASKCOLLEAGUE_LLM_API_KEY" not in env and env["HF_HUB_OFFLINE"] == "1"
    assert distributed._is_loopback("127.0.0.1:6379") and distributed._is_loopback("localhost:1")
    assert distributed._is_loopback("[::1]:6379") and not distributed._is_loopback("10.0.0.5:6379")


def test_a_source_without_chunks_has_an_empty_vector_array():
    import pickle

    from askcolleague.models import Doc

    docs, chunks, vecs = distributed._result(pickle.dumps(([Doc("k", "k", "T")], [], None)), b"", 384)
    assert docs[0].title == "T" and chunks == [] and vecs.shape == (0, 384) and vecs.dtype == np.float32
    err, chunks, vecs = distributed._result(pickle.dumps((None, [], ("MetadataError", "bad sidecar"))), b"", 384)
    assert type(err).__name__ == "MetadataError" and str(err) == "bad sidecar" and vecs.shape == (0, 384)


def test_a_ray_build_equals_a_local_build(cluster, tmp_path):
    """`index build --ray ADDRESS` writes the same index as a local build: the same chunk ids and texts
    in the same order, the same people and links, vectors within 0.999 cosine. (With the fp32 `onnx`
    runtime: the int8 runtimes' vectors depend slightly on the other texts of their batch, and a
    cluster embeds a source at a time where a local build length-sorts a window across sources.)"""
    from click.testing import CliRunner

    from askcolleague.cli import cli
    from askcolleague.index import Index, current_version
    from askcolleague.indexing.build import build

    address, _tmp = cluster
    settings = Settings.load(runtime="onnx")
    local = build([DEMO], tmp_path / "local", settings=settings, warn=lambda m: None)
    remote = build([DEMO], tmp_path / "ray", settings=settings, warn=lambda m: None, ray=address)
    assert remote.chunks == local.chunks > 400 and remote.docs == local.docs and remote.people == local.people
    assert remote.embedded + remote.deduplicated == remote.chunks and not remote.skipped

    def dump(path):
        idx = Index.open(path, settings=settings)
        try:
            db = idx.store.db
            rows = [tuple(r) for r in db.execute("SELECT id, chunk_id, text, embed_text, source FROM chunks ORDER BY id")]
            links = sorted(tuple(r) for r in db.execute("SELECT * FROM chunk_people"))
            people = sorted(tuple(r) for r in db.execute("SELECT person_id, name, email FROM people"))
            return rows, links, people, idx.vectors.all()[1], idx.manifest
        finally:
            idx.close()

    a, b = dump(tmp_path / "local"), dump(tmp_path / "ray")
    assert a[0] == b[0] and a[1] == b[1] and a[2] == b[2]
    cos = (a[3] * b[3]).sum(axis=1)
    assert cos.min() >= 0.999, float(cos.min())
    assert b[4]["build"]["workers"] == 2 and "workers" not in a[4]["build"]

    # the command line: --ray on a few files, into a folder index
    (tmp_path / "kb").mkdir()
    (tmp_path / "kb" / "parking.md").write_text("# Parking\n\nVisitors park on level 2; reception has passes.\n")
    res = CliRunner().invoke(cli, ["index", "build", str(tmp_path / "kb"), "--index", str(tmp_path / "cli"),
                                   "--ray", address, "--json"])
    assert res.exit_code == 0, res.output
    assert current_version(tmp_path / "cli") is not None and '"chunks": 1' in res.output
