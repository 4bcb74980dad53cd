"""Parse, chunk and embed sources on a Ray cluster (``askcolleague index build SOURCES --ray ADDRESS``).

``ray_sources(specs, ...)`` does, for every source, what a local build does (``load_source``, then
``chunk_doc`` with the model's tokenizer, then ``embed_batch``), but on the nodes of a Ray cluster,
and hands the results back to the driver in the order of `specs`; the driver writes the index through
the usual writer, as a local build does. The pipeline is Ray Data::

    from_items([{i, path, key, kind}, ...])              a row per source (its index i in `specs`)
      .map_batches(_parse_and_chunk, batch_size=1)        tasks: load_source + chunk_doc; the row now
                                                           carries the pickled docs and chunks (or the
                                                           LoadError) and the chunks' embed texts
      .map_batches(_EmbedActor, compute=ActorPoolStrategy(size=N), num_cpus=1, batch_size=1)
                                                           an actor pool of ONNX embedders (one
                                                           thread each, the model loaded once per
                                                           actor): the row gains the source's vectors
      .iter_batches()                                      on the driver, with preserve_order (and
                                                           a reorder buffer on `i`, to be sure)

Ray Data fuses the two stages into the actor pool (they ask for the same resources on purpose):
each source is parsed by an actor just before it embeds the source's chunks, so no parse task waits
for a CPU that an idle embedder holds, and docs never travel between workers. A source that cannot be
parsed comes back as its ``LoadError`` (same class, same message as locally), never as a failed
dataset; a parse that takes over ``ASKCOLLEAGUE_PARSE_TIMEOUT`` seconds is interrupted the same way,
where the platform allows it (SIGALRM on the worker's main thread).

Results are those of the local path: the same docs and chunks (equal objects: ids, texts, order),
and each source's vectors from one ``embed_batch`` call over that source's chunks, as locally, so
equal to local ``embed_batch(source's embed texts)`` within float rounding (cosine 1.000000 on the
demo corpus) and independent of the cluster's size or scheduling. Batches never mix sources on
purpose: with the int8 runtimes (the default ``onnx-int8``) a vector depends slightly on the other
texts of its batch through the activation scales, so a build that embeds length-sorted batches
across sources agrees with per-source batches only to cosine 0.993 at worst on the demo corpus; the
fp32 ``onnx`` runtime agrees to 0.9999999 whatever the batches.

Ray is optional (``pip install 'askcolleague[ray]'``) and imported only when a build asks for it.

Running a real cluster
----------------------
Every node needs the same installation and the same view of the sources:

* ``pip install 'askcolleague[ray]'`` on every node, in an environment with the same Python, Ray
  and askcolleague versions (workers import askcolleague to parse and embed; each node exports the
  ONNX model into its own ``~/.cache/askcolleague/onnx`` on first use);
* the sources at the **same paths** on every node: a shared file system (NFS, a cluster mount) or
  identical copies. Workers read the files themselves; only results travel back to the driver;
* on the head node: ``ray start --head --node-ip-address=HEAD_IP --port=6379
  --include-dashboard=false`` (``--num-cpus`` to lend fewer cores);
* on each worker node: ``ray start --address=HEAD_IP:6379 --node-ip-address=NODE_IP``;
* on any machine of the cluster (the driver must reach every node, and they it): ``askcolleague
  index build SOURCES --index FOLDER --ray HEAD_IP:6379``. ``--ray local`` instead starts a private
  single-machine cluster for the build (every process bound to 127.0.0.1) and stops it afterwards.

The driver's ASKCOLLEAGUE_* settings travel with the tasks (Ray ``runtime_env`` env_vars), except
``ASKCOLLEAGUE_LLM_API_KEY``, which parsing and embedding never need; so does ``HF_HUB_OFFLINE=1``.
Ray does not encrypt or, by default, authenticate its traffic: keep the cluster's ports on a private
network (or use Ray's token authentication).

Ray resolves ``127.0.0.1`` and ``localhost`` to the machine's interface address (so that a head's
address works from other machines), which makes nodes bound to loopback unreachable. For a loopback
address (``--ray local``, or ``--ray 127.0.0.1:PORT`` for a cluster whose nodes were all started with
``--node-ip-address=127.0.0.1`` on one machine) this module turns that resolution off while it
connects, so that the node IP stays 127.0.0.1 and every Ray server binds to loopback only.
"""
from __future__ import annotations

import ipaddress
import logging
import os
import pickle
import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .. import errors
from .._offline import _ENV as _OFFLINE_ENV
from ..errors import ConfigError, LoadError
from ..loaders import SourceSpec
from ..models import Chunk, Doc
from ..settings import SETTINGS, Settings
from .chunker import ChunkerConfig

RAY_MISSING = "--ray needs Ray: pip install 'askcolleague[ray]'"
# settings the workers never need and that should not travel in a runtime_env (visible cluster-wide)
_PRIVATE_ENV = ("ASKCOLLEAGUE_LLM_API_KEY",)
_MAX_BLOCKS = 1000  # dataset blocks: one per source, up to this many (then several sources a block)

_last_run: dict[str, Any] | None = None


def require_ray():
    """The ray module with Ray Data loaded, or a ConfigError naming the extra."""
    try:
        import ray  # (lazy: the optional [ray] extra, only for --ray)
        import ray.data  # noqa: F401  (lazy: the optional [ray] extra, only for --ray)
    except ImportError:
        raise ConfigError("--ray needs Ray: pip install 'askcolleague[ray]'") from None  # (= RAY_MISSING)
    return ray


def workers_used() -> int:
    """How many embedding workers (actors) the last ``ray_sources`` run in this process used (0: none)."""
    return int(_last_run["workers"]) if _last_run else 0


def last_run() -> dict[str, Any] | None:
    """What the last ``ray_sources`` run used: {"address", "nodes", "cpus", "workers"} (None: no run)."""
    return dict(_last_run) if _last_run else None


def worker_env(settings: Settings | None = None) -> dict[str, str]:
    """The environment variables the workers get: the driver's ASKCOLLEAGUE_* (less secrets), the
    settings the build was given that differ from them (command-line overrides), and the offline
    switches (HF_HUB_OFFLINE=1 ...)."""
    env = {k: v for k, v in os.environ.items() if k.startswith("ASKCOLLEAGUE_") and k not in _PRIVATE_ENV}
    if settings is not None:
        from_env = Settings.load()
        for s in SETTINGS:
            v = settings.values.get(s.name)
            if s.env not in _PRIVATE_ENV and v is not None and v != from_env.values.get(s.name):
                env[s.env] = str(v)
    for k, v in _OFFLINE_ENV.items():
        env.setdefault(k, os.environ.get(k, v))
    env["HF_HUB_OFFLINE"] = "1"
    return env


def _host_of(address: str) -> str:
    """The host of "HOST:PORT", "[V6]:PORT", "HOST" or "ray://HOST:PORT"."""
    a = address.strip().split("://", 1)[-1]
    if a.startswith("[") and "]" in a:
        return a[1:a.index("]")]
    return a.rsplit(":", 1)[0] if a.count(":") == 1 else a


def _is_loopback(address: str) -> bool:
    host = _host_of(address)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextmanager
def _node_ip_stays_loopback(ray, local: bool):
    """Ray's localhost resolution off (see the module's docstring) while it connects or starts."""
    consts = ray._private.ray_constants
    before = consts.ENABLE_RAY_CLUSTER
    env_before = os.environ.get(consts.ENABLE_RAY_CLUSTERS_ENV_VAR)
    consts.ENABLE_RAY_CLUSTER = False
    if local:  # the processes a local start spawns inherit it (none of them joins another node)
        os.environ[consts.ENABLE_RAY_CLUSTERS_ENV_VAR] = "0"
    try:
        yield
    finally:
        consts.ENABLE_RAY_CLUSTER = before
        if local:
            if env_before is None:
                os.environ.pop(consts.ENABLE_RAY_CLUSTERS_ENV_VAR, None)
            else:
                os.environ[consts.ENABLE_RAY_CLUSTERS_ENV_VAR] = env_before


def _connect(ray, address: str, workers: int | None) -> bool:
    """Join the cluster at `address` or start a local one ("local"); True when this call started Ray
    (and so must shut it down). An already initialised Ray in this process is used as it is."""
    if ray.is_initialized():
        return False
    common = dict(include_dashboard=False, log_to_driver=False, logging_level="warning",
                  configure_logging=True)
    if address == "local":
        cpus = max(int(workers or 0), os.cpu_count() or 1)
        with _node_ip_stays_loopback(ray, local=True):
            ray.init(address="local", num_cpus=cpus, _node_ip_address="127.0.0.1", **common)
        return True
    common.pop("include_dashboard")  # a property of the cluster, not of a driver that joins it
    if _is_loopback(address):
        with _node_ip_stays_loopback(ray, local=False):
            ray.init(address=address, **common)
    else:
        ray.init(address=address, **common)
    return True


class _ConsoleQuiet(logging.Filter):
    """Ray Data's console lines below WARNING, and its notice that progress bars are off (the build
    draws its own): kept out of the build's output (they still reach Ray's session log files)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING and not str(record.msg).startswith("Progress bars")


@contextmanager
def _quiet_ray_data():
    handlers = [h for h in logging.getLogger("ray.data").handlers
                if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)]
    f = _ConsoleQuiet()
    for h in handlers:
        h.addFilter(f)
    try:
        yield
    finally:
        for h in handlers:
            h.removeFilter(f)


class _ParseTimeout(BaseException):
    """Raised by SIGALRM inside a parse (a BaseException: load_source turns Exceptions into LoadError)."""


@contextmanager
def _time_limit(seconds: float):
    """Interrupt the block after `seconds` with _ParseTimeout, on the main thread where SIGALRM exists."""
    if seconds <= 0 or not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def ring(signum, frame):
        raise _ParseTimeout()

    old = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _parse_one(path: str, key: str, kind: str, max_bytes: int, batch_size: int, chunker_cfg: ChunkerConfig,
               model: str | None, runtime: str | None, timeout: float) -> tuple[bytes, list[str], int]:
    """One source on a worker: (pickled (docs, chunks, error), the chunks' embed texts, model dim)."""
    from ..embed import get_embedder  # (lazy: imported on the worker, where the model is)
    from ..loaders import load_source  # (lazy: imported on the worker, where the parsers run)
    from .chunker import chunk_doc  # (lazy: imported on the worker)

    spec = SourceSpec(path=Path(path), key=key, kind=kind)
    embedder = get_embedder(model or None, batch_size=batch_size, threads=1, runtime=runtime)  # its tokenizer
    try:
        with _time_limit(timeout):
            docs = load_source(spec, max_bytes)
    except LoadError as e:
        err = (type(e).__name__, str(e))
    except _ParseTimeout:
        err = ("LoadError", f"parsing took over {timeout:g} s and was stopped; split the file or raise "
                            "ASKCOLLEAGUE_PARSE_TIMEOUT")
    except Exception as e:  # load_source turns parser errors into LoadError; this is the rest
        err = ("LoadError", f"could not parse ({type(e).__name__}); check the file")
    else:
        chunks = [c for d in docs for c in chunk_doc(d, embedder, chunker_cfg)]  # (chunk_doc tidies the docs)
        return pickle.dumps((docs, chunks, None), protocol=5), [c.embed_text for c in chunks], embedder.dim
    return pickle.dumps((None, [], err), protocol=5), [], embedder.dim


def _parse_and_chunk(batch: dict[str, np.ndarray], *, max_bytes: int, batch_size: int, chunker_cfg: ChunkerConfig,
                     model: str | None, runtime: str | None, timeout: float) -> dict[str, np.ndarray]:
    """Stage 1 (tasks): a row per source in (i, path, key, kind), a row per source out (i, its
    pickled docs and chunks or error, its chunks' embed texts pickled, the model's dimension)."""
    out: dict[str, list] = {"i": [], "payload": [], "texts": [], "dim": []}
    for i, path, key, kind in zip(batch["i"], batch["path"], batch["key"], batch["kind"]):
        payload, texts, dim = _parse_one(str(path), str(key), str(kind), max_bytes, batch_size, chunker_cfg,
                                         model, runtime, timeout)
        out["i"].append(int(i))
        out["payload"].append(payload)
        out["texts"].append(pickle.dumps(texts, protocol=5))
        out["dim"].append(dim)
    return {"i": np.asarray(out["i"], dtype=np.int64), "payload": _objects(out["payload"]),
            "texts": _objects(out["texts"]), "dim": np.asarray(out["dim"], dtype=np.int64)}


class _EmbedActor:
    """Stage 2, an actor of the pool: its own embedder (one ONNX thread), loaded once, here. Each
    source's chunks are embedded by one ``embed_batch`` call, as locally: with the int8 runtimes a
    vector depends a little on the other texts of its batch (activation scales), so batches that
    mixed sources would make vectors depend on the scheduling."""

    def __init__(self, model: str | None, batch_size: int, runtime: str | None) -> None:
        from ..embed import get_embedder  # (lazy: imported on the worker, where the model is)

        self.embedder = get_embedder(model or None, batch_size=batch_size, threads=1, runtime=runtime)
        self.embedder.embed_batch(["warm-up"])  # the session (and a first ONNX export) now, not in a batch

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vecs = []
        for texts, dim in zip(batch["texts"], batch["dim"]):
            texts = pickle.loads(texts)
            v = self.embedder.embed_batch(texts) if texts else np.zeros((0, int(dim)), dtype=np.float32)
            vecs.append(np.ascontiguousarray(v, dtype=np.float32).tobytes())
        return {"i": np.asarray(batch["i"], dtype=np.int64), "payload": _objects(batch["payload"]),
                "dim": np.asarray(batch["dim"], dtype=np.int64), "vec": _objects(vecs)}


def _objects(values) -> np.ndarray:
    """A column of bytes values (an object array: Ray stores it as Arrow binary)."""
    a = np.empty(len(values), dtype=object)
    for k, v in enumerate(values):
        a[k] = bytes(v)
    return a


def _error(cls_name: str, message: str) -> LoadError:
    """The worker's LoadError again: its class (LoadError or a subclass in askcolleague.errors) and message."""
    cls = getattr(errors, cls_name, None)
    if not (isinstance(cls, type) and issubclass(cls, LoadError)):
        cls = LoadError
    return cls(message)


def _result(payload: bytes, vec: bytes, dim: int) -> tuple[list[Doc] | LoadError, list[Chunk], np.ndarray]:
    docs, chunks, err = pickle.loads(payload)
    if err is not None:
        return _error(*err), [], np.zeros((0, dim), dtype=np.float32)
    vecs = np.frombuffer(vec, dtype=np.float32).reshape(len(chunks), dim).copy()
    return docs, chunks, vecs


def ray_sources(specs: list[SourceSpec], max_bytes: int, settings: Settings, chunker_cfg: ChunkerConfig,
                model: str | None, runtime: str | None, address: str, workers: int | None = None
                ) -> Iterator[tuple[SourceSpec, list[Doc] | LoadError, list[Chunk], np.ndarray]]:
    """Yield (spec, docs_or_error, chunks, vectors) for each SourceSpec in `specs`, IN THE ORDER OF `specs`,
    parsed, chunked and embedded on the Ray cluster at `address` ("local": start a local cluster bound to 127.0.0.1).

    `docs_or_error` is the source's list of Doc (as ``load_source`` returns them, after ``chunk_doc``)
    or, for a file that cannot be read, its LoadError (or MetadataError) with the local message, and
    then no chunks. `vectors` is a float32 (len(chunks), dim) array of unit vectors, row k for
    chunks[k] (shape (0, dim) for a source without chunks). `model` is the model setting ("" or None
    = bundled) and `runtime` the embedding runtime, as for ``get_embedder``; `workers` the size of the
    embedding actor pool (default: the CPUs of the cluster). The workers read the files at the same
    (absolute) paths: a shared file system, or the same copies on every node. A cluster this call
    started ("local") is shut down when the generator finishes or is closed; from one it joined it
    only disconnects, leaving it running (and a Ray already initialised in this process is used as
    it is, and left connected).
    """
    global _last_run
    specs = list(specs)
    if not specs:
        return
    ray = require_ray()
    env = {"env_vars": worker_env(settings)}
    batch_size = max(int(settings.batch_size), 1)
    timeout = float(getattr(settings, "parse_timeout", 0) or 0)
    auth_mode = os.environ.get("RAY_AUTH_MODE")  # a local start sets it (token auth) in this process
    started = _connect(ray, address, workers)
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        n_workers = max(1, min(int(workers or cpus), cpus))  # an actor takes a CPU: no more than the cluster's
        nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
        _last_run = {"address": address, "nodes": nodes, "cpus": cpus, "workers": n_workers}
        items = [{"i": i, "path": str(Path(s.path).absolute()), "key": s.key, "kind": s.kind}
                 for i, s in enumerate(specs)]
        with _data_options(ray), _quiet_ray_data():
            ds = ray.data.from_items(items, override_num_blocks=min(len(items), _MAX_BLOCKS))
            # the same resources and batch size in both stages, so that Ray Data fuses them into the
            # actor pool (parse tasks would otherwise wait for CPUs that the actors hold)
            ds = ds.map_batches(_parse_and_chunk, batch_size=1, num_cpus=1, runtime_env=env,
                                fn_kwargs=dict(max_bytes=int(max_bytes), batch_size=batch_size, chunker_cfg=chunker_cfg,
                                               model=model or "", runtime=runtime, timeout=timeout))
            ds = ds.map_batches(_EmbedActor, batch_size=1, num_cpus=1, runtime_env=env,
                                compute=ray.data.ActorPoolStrategy(size=n_workers),
                                fn_constructor_kwargs=dict(model=model or "", batch_size=batch_size, runtime=runtime))
            pending: dict[int, tuple] = {}  # results that came early (preserve_order makes that rare)
            nxt = 0
            for batch in ds.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=2):
                for i, payload, vec, dim in zip(batch["i"], batch["payload"], batch["vec"], batch["dim"]):
                    pending[int(i)] = (payload, vec, int(dim))
                while nxt in pending:
                    docs, chunks, vecs = _result(*pending.pop(nxt))
                    yield specs[nxt], docs, chunks, vecs
                    nxt += 1
            if nxt != len(specs):  # a row lost on the way would be a bug in this module or in Ray
                raise RuntimeError(f"the Ray cluster returned no result for {specs[nxt].key} "
                                   f"({len(specs) - nxt} source(s) from there on)")
    finally:
        if started:
            ray.shutdown()
            if auth_mode is None:
                os.environ.pop("RAY_AUTH_MODE", None)
            else:
                os.environ["RAY_AUTH_MODE"] = auth_mode


@contextmanager
def _data_options(ray):
    """Ray Data's options for this run (put back after): results in order, no progress bars of its
    own (the build has its own; Ray's would garble it), no plan printed at the start."""
    ctx = ray.data.DataContext.get_current()
    saved = (ctx.execution_options.preserve_order, ctx.enable_progress_bars, ctx.print_on_execution_start)
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    try:
        yield
    finally:
        ctx.execution_options.preserve_order, ctx.enable_progress_bars, ctx.print_on_execution_start = saved


__all__ = ["RAY_MISSING", "last_run", "ray_sources", "worker_env", "workers_used"]
