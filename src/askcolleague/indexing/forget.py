"""`askcolleague forget`: a person removed from the index for good (recorded with the index — the
folder's forgotten.json, a row in PostgreSQL — so later builds keep them out), then the index rebuilt
from its sources reusing every other vector."""
from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Callable

from .. import feedback
from ..embed import Embedder
from ..errors import ConfigError
from ..index import backend_for, open_index
from ..models import normalize_name
from ..settings import Settings
from .build import BuildReport, build


def forget(index_path: str | Path, person: str, with_content: bool = False, settings: Settings | None = None,
           embedder: Embedder | None = None, warn: Callable[[str], None] | None = None) -> BuildReport:
    """Remove a person's profile (and with `with_content`, everything they wrote) from the index, for good.

    The person is recorded with the index (``forgotten.json`` in an index folder), so later builds and updates
    keep them out even though the sources still mention them; then the index is rebuilt from its
    sources (reusing all other vectors). The feedback log's entries that cite their passages are
    deleted too (with `with_content`).
    """
    backend = backend_for(index_path)
    index_path = backend.location(index_path)
    idx = open_index(index_path, settings, embedder=embedder)
    try:
        pids = idx.store.person_ids(person)
        if not pids:
            raise ConfigError(f"no person {person!r} in {backend.display(index_path)}; see `askcolleague people list`")
        entries = backend.read_forgotten(index_path)
        removed_chunks: list[str] = []
        for pid in pids:
            p = idx.store.person(pid)
            entries.append({
                "person_id": p.person_id, "name": p.name, "emails": [e for e in [p.email] if e],
                "names": sorted({normalize_name(n) for n in [p.name, *p.aliases]}),
                "handles": sorted(p.handles.items()), "with_content": with_content,
                "at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")})
            removed_chunks += idx.store.chunk_ids_of_person(pid)
    finally:
        idx.close()
    backend.write_forgotten(index_path, entries)
    report = build(None, index_path, settings=settings, embedder=embedder, update=True, warn=warn)
    if with_content:
        feedback.forget_chunks(index_path, removed_chunks)
    return report
