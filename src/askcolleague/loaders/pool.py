"""Parse sources in worker processes, ahead of the build that consumes them, with a per-source timeout.

``ParsePool(specs, max_bytes, settings).load(spec)`` returns what ``load_source(spec, max_bytes)``
would (or raises its LoadError), but the parsing happens in ASKCOLLEAGUE_PARSE_WORKERS worker
processes that work ahead through `specs` in order, so slow formats (OCR, LibreOffice) of later
sources are parsed while the build chunks and embeds earlier ones. A source whose parse takes over
ASKCOLLEAGUE_PARSE_TIMEOUT seconds has its worker killed (with the OCR or LibreOffice processes it
started: each worker leads its own process group) and is skipped with a reason; a worker that
crashes (a segfault in a C parser, the out-of-memory killer) costs only its source. Workers come
from a ``forkserver`` that has imported the loaders once: the build's process holds model threads,
which must not be forked. ``parse_workers = 1`` parses in the calling process, as before. Each
task carries the caller's ASKCOLLEAGUE_* settings and PATH. As with any multiprocessing pool, a script
that builds an index must guard its top level with ``if __name__ == "__main__":`` (the CLI does).
"""
from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import tempfile
import time
import weakref
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Iterable

from ..errors import LoadError, MetadataError
from ..models import Doc
from ..settings import Settings
from . import SourceSpec, load_source

MAX_AUTO_WORKERS = 4
# Auto mode starts workers only for these (OCR, LibreOffice) or for this many sources to parse: the
# workers' forkserver imports the parsers once (about 10 s on a busy 2-core machine, as much as the
# 50-source demo corpus takes to parse), which a small build of quick formats would not win back.
SLOW_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".doc", ".ppt", ".msg", ".zip", ".7z")
AUTO_MIN_SOURCES = 200
_PRELOAD = ["askcolleague.loaders._poolwarm"]


def _worker(conn: Connection) -> None:
    """A worker's loop: (spec, max_bytes) in, ("ok", key, docs) or ("err", key, class, message) out."""
    try:
        os.setsid()  # its own process group: a timeout kills the OCR/LibreOffice children with it
    except OSError:
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the build's to handle
    # its temporary files (unpacked archives, LibreOffice's profile) in a folder of its own, which the
    # pool removes when it stops or kills the worker
    tmp = tempfile.mkdtemp(prefix="askcolleague-parse-")
    tempfile.tempdir = os.environ["TMPDIR"] = tmp
    conn.send(("ready", tmp))  # imports done: from now on its time is its task's
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            task = None
        if task is None:
            shutil.rmtree(tmp, ignore_errors=True)
            return
        spec, max_bytes, env = task
        for k in [k for k in os.environ if k.startswith("ASKCOLLEAGUE_") and k not in env]:
            del os.environ[k]
        os.environ.update(env)  # the build's settings now, not the forkserver's from its start
        stamp = _stamp(spec)
        try:
            conn.send(("ok", spec.key, load_source(spec, max_bytes), stamp))
        except LoadError as e:
            conn.send(("err", spec.key, type(e).__name__, str(e), stamp))
        except BaseException as e:  # load_source turns parser errors into LoadError; this is the rest
            conn.send(("err", spec.key, "LoadError", f"could not parse ({type(e).__name__}); check the file", stamp))


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith("ASKCOLLEAGUE_") or k == "PATH"}


def _stamp(spec: SourceSpec) -> tuple | None:
    """What says a file is unchanged since it was parsed: its size and modification time (ns)."""
    try:
        st = os.stat(spec.path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns) if not spec.path.is_dir() else None


@dataclass
class _Worker:
    proc: Any
    conn: Connection
    spec: SourceSpec | None = None
    started: float = 0.0
    ready: bool = False
    tmp: str | None = None


class ParsePool:
    """Parses `specs` ahead in worker processes; ``load(spec)`` hands each result over once.

    `wanted` (optional) says which specs to parse ahead; a spec it rejects is parsed only when
    ``load`` asks for it (a build passes the sources it will probably carry over unchanged).
    """

    def __init__(self, specs: Iterable[SourceSpec], max_bytes: int, settings: Any = None,
                 wanted: Callable[[SourceSpec], bool] | None = None,
                 load: Callable[[SourceSpec, int], list[Doc]] = load_source) -> None:

        settings = settings or Settings.load()
        specs = list(specs)
        self.ahead = deque(s for s in specs if wanted is None or wanted(s))
        n = int(settings.parse_workers)
        if n == 0:  # auto: workers pay off for slow formats or many files, not for a few quick ones
            slow = any(s.path.suffix.lower() in SLOW_EXTENSIONS for s in self.ahead)
            n = min(MAX_AUTO_WORKERS, os.cpu_count() or 1) if slow or len(self.ahead) >= AUTO_MIN_SOURCES else 1
        self.workers_wanted = max(1, min(n, len(specs)))
        self.max_bytes = max_bytes
        self.timeout = float(settings.parse_timeout)
        # a function other than load_source (a test's wrapper) cannot be sent to a worker: it runs here
        self.inline = n <= 1 or len(specs) <= 1 or load is not load_source
        self._load = load
        self.results: dict[str, tuple] = {}
        self.workers: list[_Worker] = []
        self._ctx = None
        self._failed_starts = 0
        self._finalizer = weakref.finalize(self, ParsePool._stop, self.workers)

    # -------------------------------------------------------------- public

    def load(self, spec: SourceSpec) -> list[Doc]:
        """The docs of one source (LoadError, or MetadataError, as load_source raises them)."""
        if self.inline:
            return self._load(spec, self.max_bytes)
        busy = {w.spec.key for w in self.workers if w.spec is not None}
        if spec.key not in self.results and spec.key not in busy:
            self.ahead = deque(s for s in self.ahead if s.key != spec.key)
            self.ahead.appendleft(spec)
        while spec.key not in self.results:
            self._pump()
            if self.inline:
                return self._load(spec, self.max_bytes)
        got = self.results.pop(spec.key)
        if got[0] != "fatal" and got[-1] != _stamp(spec):
            return load_source(spec, self.max_bytes)  # changed (or gone) since the worker read it: read it now
        if got[0] == "ok":
            return got[1]
        raise (MetadataError if got[1] == "MetadataError" else LoadError)(got[2])

    def close(self) -> None:
        """Stop the workers (also done when the pool is garbage-collected)."""
        self._finalizer()

    # -------------------------------------------------------------- workers

    @staticmethod
    def _stop(workers: list[_Worker]) -> None:
        for w in workers:
            try:
                if w.tmp is None and w.conn.poll(0):  # its "ready" not read yet: it names its folder
                    w.tmp = w.conn.recv()[1]
                w.conn.send(None)
            except (OSError, ValueError, EOFError, IndexError, TypeError):
                pass
        deadline = time.monotonic() + 5
        for w in workers:
            w.proc.join(max(deadline - time.monotonic(), 0))
            if w.proc.is_alive():
                _kill(w)
            w.conn.close()
            _remove_tmp(w)
        workers.clear()

    def _start(self) -> _Worker:
        if self._ctx is None:
            try:
                self._ctx = multiprocessing.get_context("forkserver")
                self._ctx.set_forkserver_preload(_PRELOAD)
            except ValueError:  # no forkserver on this platform
                self._ctx = multiprocessing.get_context("spawn")
        mine, theirs = self._ctx.Pipe()
        proc = self._ctx.Process(target=_worker, args=(theirs,), daemon=True, name="askcolleague-parse")
        proc.start()
        theirs.close()
        w = _Worker(proc, mine)
        self.workers.append(w)
        return w

    def _replace(self, w: _Worker) -> None:
        _kill(w)
        w.conn.close()
        _remove_tmp(w)
        self.workers.remove(w)

    def _pump(self) -> None:
        """Give idle workers work (at most twice the workers' number of results waiting), then wait
        for one event: a result, a worker's death, or a timeout."""
        while len(self.workers) < self.workers_wanted and self.ahead:
            self._start()
        for w in self.workers:
            if w.ready and w.spec is None and self.ahead and len(self.results) < 2 * self.workers_wanted:
                w.spec, w.started = self.ahead.popleft(), time.monotonic()
                try:
                    w.conn.send((w.spec, self.max_bytes, _env()))
                except (OSError, ValueError):
                    pass  # a dead worker: its sentinel says so below
        starting = [w for w in self.workers if not w.ready]
        busy = [w for w in self.workers if w.spec is not None]
        if not busy and not starting:
            if not self.ahead:
                raise RuntimeError("ParsePool: nothing to wait for")  # a bug: load() queued its spec
            return
        now = time.monotonic()
        left = min([w.started + self.timeout - now for w in busy] or [60.0])
        ready = wait([w.conn for w in busy + starting] + [w.proc.sentinel for w in busy + starting], timeout=max(left, 0))
        for w in starting:
            if w.conn in ready:
                try:
                    msg = w.conn.recv()
                    w.ready, w.tmp = msg[0] == "ready", msg[1]
                except (EOFError, OSError, IndexError, TypeError):
                    pass
            if not w.ready and (w.conn in ready or w.proc.sentinel in ready):
                self._replace(w)  # died while starting (a script without a __main__ guard, a broken install)
                self._failed_starts += 1
                if self._failed_starts >= 3:
                    self.inline = True  # workers cannot start here: parse in this process
                    return
        for w in busy:
            key = w.spec.key
            if w.conn in ready:
                try:
                    msg = w.conn.recv()
                except (EOFError, OSError):
                    msg = None
                if msg is not None:
                    self.results[key] = ("ok", msg[2], msg[3]) if msg[0] == "ok" else ("err", msg[2], msg[3], msg[4])
                    w.spec = None
                    continue
            if w.conn in ready or w.proc.sentinel in ready:
                w.proc.join(1)
                code = w.proc.exitcode
                how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
                self.results[key] = ("fatal", "LoadError", f"the parser crashed ({how}) on this file; check the file "
                                     "is valid, or convert it to another format")
                self._replace(w)
            elif time.monotonic() - w.started >= self.timeout:
                self.results[key] = ("fatal", "LoadError", f"parsing took over {self.timeout:g} s and was stopped; "
                                     "split the file or raise ASKCOLLEAGUE_PARSE_TIMEOUT")
                self._replace(w)


def _remove_tmp(w: _Worker) -> None:
    if w.tmp and os.path.basename(w.tmp).startswith("askcolleague-parse-"):
        shutil.rmtree(w.tmp, ignore_errors=True)


def _kill(w: _Worker) -> None:
    if not w.proc.is_alive():
        return
    try:
        if os.getpgid(w.proc.pid) == w.proc.pid:  # it leads its own group (never the build's)
            os.killpg(w.proc.pid, signal.SIGKILL)  # the worker and the OCR/LibreOffice processes it started
        else:
            w.proc.kill()
    except OSError:
        w.proc.kill()
    w.proc.join(5)


__all__ = ["ParsePool"]
