"""`askcolleague forget`: a person removed from the index for good (recorded in forgotten.json, so
later builds keep them out), then the index rebuilt from its sources reusing every other vector."""
from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path
from typing import Callable

from .. import feedback
from ..embed import Embedder
from ..errors import ConfigError
from ..index import open_index
from ..models import normalize_name
from ..settings import Settings
from .build import FORGOTTEN, BuildReport, build, read_forgotten


def forget(index_path: str | Path, person: str, with_content: bool = False, settings: Settings | None = None,
           embedder: Embedder | None = None, warn: Callable[[str], None] | None = None) -> BuildReport:
    """Remove a person's profile (and with `with_content`, everything they wrote) from the index, for good.

    The person is recorded in ``forgotten.json`` in the index folder, so later builds and updates
    keep them out even though the sources still mention them; then the index is rebuilt from its
    sources (reusing all other vectors). The feedback log's entries that cite their passages are
    deleted too (with `with_content`).
    """
    index_path = Path(index_path)
    idx = open_index(index_path, settings, embedder=embedder)
    try:
        pids = idx.store.person_ids(person)
        if not pids:
            raise ConfigError(f"no person {person!r} in {index_path}; see `askcolleague people list`")
        entries = read_forgotten(index_path)
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
    tmp = index_path / (FORGOTTEN + ".tmp")
    tmp.write_text(json.dumps(entries, indent=2, ensure_ascii=False))
    os.replace(tmp, index_path / FORGOTTEN)
    report = build(None, index_path, settings=settings, embedder=embedder, update=True, warn=warn)
    if with_content:
        feedback.forget_chunks(index_path, removed_chunks)
    return report
