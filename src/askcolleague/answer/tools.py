"""The agent tools (ask, search, find_people, get_passage) over one Assistant: JSON-ready dicts, the asker's access applied.

Every function takes `groups`, the asker's access: None = no access control (every passage), a list
= only passages without groups or in one of these groups, applied *before* ranking (retrieval
filters), exactly as in the web chat. The MCP server (web/mcp.py) serves them; visible_groups and
the bounds (bounds.py) are the web API's own.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from ..errors import AskColleagueError, ConfigError
from ..models import SOURCE_TYPES, role_of
from .assistant import Assistant
from .bounds import MAX_PASSAGE_CHARS, PAGE_PASSAGE_CHARS, bound_answer, clip, clip_passage
from .result import cited_authors

MODES = ("hybrid", "dense", "bm25")
MAX_QUESTION_CHARS = 2_000  # a question, query or topic longer than this is refused
MAX_K = 100
DEFAULT_SEARCH_K = 8


class ToolInputError(AskColleagueError, ValueError):
    """A tool argument is out of range; the message says which and what is allowed."""


def visible_groups(asst: Assistant, person: str | None) -> list[str]:
    """The groups whose passages a logged-in user may see: their person's groups. A user without a
    person, or with one the index does not know, gets [] (passages without groups only), never everything."""
    if not person:
        return []
    try:
        return asst.groups_for(person)
    except ConfigError:
        return []


# ------------------------------------------------------------------------------------------ arguments

def _text(value: Any, name: str, limit: int = 200, required: bool = False) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ToolInputError(f"{name} is empty")
        return None
    if not isinstance(value, str):
        raise ToolInputError(f"{name} must be a string, not {type(value).__name__}")
    if len(value) > limit:
        raise ToolInputError(f"{name} is too long (at most {limit:,} characters)")
    return value.strip()


def _k(k: Any) -> int | None:
    if k is None:
        return None
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise ToolInputError(f"k must be a whole number from 1 to {MAX_K}")
    return k


def _mode(mode: Any) -> str | None:
    if mode in (None, ""):
        return None
    if mode not in MODES:
        raise ToolInputError(f"mode must be one of {', '.join(MODES)}")
    return mode


def _types(source_type: Any) -> list[str] | None:
    types = [source_type] if isinstance(source_type, str) else list(source_type or [])
    bad = [t for t in types if t not in SOURCE_TYPES]
    if bad:
        raise ToolInputError(f"source_type {bad[0]!r} is not one of {', '.join(SOURCE_TYPES)}")
    return types or None


def iso_date(value: Any, name: str) -> str | None:
    """A `since`/`until` argument: an ISO date (or left out), else a ToolInputError saying the form."""
    v = _text(value, name, 40)
    if v is None:
        return None
    try:
        return dt.date.fromisoformat(v).isoformat()
    except ValueError:
        raise ToolInputError(f"{name} must be a date like 2025-01-31, not {v!r}") from None


def _filters(source_type, person, since, until) -> dict:
    return {"source_type": _types(source_type), "person": _text(person, "person"),
            "since": iso_date(since, "since"), "until": iso_date(until, "until")}


def _access(groups: list[str] | None) -> dict:
    return {} if groups is None else {"groups": list(groups)}


# ------------------------------------------------------------------------------------------ the tools

def ask(asst: Assistant, groups: list[str] | None, question: str, k: int | None = None, mode: str | None = None,
        source_type: str | list[str] | None = None, person: str | None = None, since: str | None = None,
        until: str | None = None) -> dict:
    """The JSON contract of an answer (Answer.to_dict(), bounded as the web API's /ask bounds it) plus
    the index_version that answered."""
    question = _text(question, "question", MAX_QUESTION_CHARS, required=True)
    out = bound_answer(asst.ask(question, k=_k(k), mode=_mode(mode), **_filters(source_type, person, since, until),
                                **_access(groups)).to_dict())
    out["index_version"] = asst.index.version
    return out


def _passage(asst: Assistant, row: dict, links, groups: list[str] | None, limit: int) -> dict:
    text, cut = clip_passage(row["text"] or "", [], limit)
    d = {"chunk_id": row["chunk_id"], "doc_id": row["doc_id"], "title": clip(row["title"]),
         "section": clip(row["section"]), "text": text, "url": row["url"], "source_type": row["source_type"],
         "date": row["date"], "authors": cited_authors(asst.index.store, row, links, groups)}
    if cut:
        d["truncated"] = True
    if (row["section"] or "").endswith("(OCR)") and asst.index.store.ocr_docs([row["doc_id"]]):
        d["ocr"] = True  # read from an image: the text may hold recognition errors
    return d


def search(asst: Assistant, groups: list[str] | None, query: str, k: int | None = None, mode: str | None = None,
           source_type: str | list[str] | None = None, person: str | None = None, since: str | None = None,
           until: str | None = None) -> dict:
    """{query, passages: [{rank, score, chunk_id, doc_id, title, section, text, url, source_type, date,
    authors}], index_version}: the passages retrieved for `query`, best first, without composing an answer."""
    query = _text(query, "query", MAX_QUESTION_CHARS, required=True)
    f = _filters(source_type, person, since, until)
    retriever = asst.as_retriever(k=_k(k) or DEFAULT_SEARCH_K, mode=_mode(mode) or asst.settings.mode,
                                  source_types=f["source_type"], person=f["person"], since=f["since"],
                                  until=f["until"], groups=None if groups is None else list(groups))
    passages = []
    for i, doc in enumerate(retriever.invoke(query), 1):
        m = doc.metadata  # the citation metadata (authors already as the asker may see them)
        text, cut = clip_passage(doc.page_content or "", [], MAX_PASSAGE_CHARS)
        passages.append({"rank": i, "score": round(m["score"], 6), "chunk_id": m["chunk_id"], "doc_id": m["doc_id"],
                         "title": clip(m["title"]), "section": clip(m["section"]), "text": text, "url": m["url"],
                         "source_type": m["source_type"], "date": m["date"], "authors": m["authors"],
                         **({"truncated": True} if cut else {})})
    return {"query": query, "passages": passages, "index_version": asst.index.version}


def find_people(asst: Assistant, groups: list[str] | None, topic: str) -> dict:
    """{topic, people: [people cards with their evidence], index_version}: who knows about `topic`."""
    topic = _text(topic, "topic", MAX_QUESTION_CHARS, required=True)
    people = [dict(d, evidence=[dict(e, title=clip(e.get("title"))) for e in d.get("evidence") or []])
              for d in (p.to_dict() for p in asst.find_people(topic, **_access(groups)))]
    return {"topic": topic, "people": people, "index_version": asst.index.version}


class PassageNotFound(AskColleagueError):
    """No passage with that chunk id that the asker may see (a hidden passage gets the same answer)."""


def get_passage(asst: Assistant, groups: list[str] | None, chunk_id: str) -> dict:
    """One passage (up to PAGE_PASSAGE_CHARS of it) with its document's metadata and the chunk ids of the
    passages before and after it in the document (when the asker may see them). A chunk id that does not
    exist and one the asker may not see raise the same PassageNotFound, after the same single query."""
    cid = _text(chunk_id, "chunk_id", 200, required=True)
    found = asst.index.store.passage(cid, groups)
    if found is None:
        raise PassageNotFound(f"no passage with chunk_id {cid!r}; take chunk ids from the results of ask or search "
                              "(an index rebuild may change them)")
    row, doc, nb = found
    links = asst.index.store.links_for([row["id"]])
    out = _passage(asst, row, links, groups, PAGE_PASSAGE_CHARS)
    out.update({
        "position": row["position"], "role": role_of(row["source_type"], row.get("role")), "tags": row["tags"],
        "previous_chunk_id": nb.get(row["position"] - 1), "next_chunk_id": nb.get(row["position"] + 1),
        "document": {"doc_id": row["doc_id"], "title": clip(doc["title"]) if doc else clip(row["title"]),
                     "url": doc["url"] if doc else row["url"], "source_type": doc["source_type"] if doc else None,
                     "date": doc["date"] if doc else None, "tags": doc["tags"] if doc else []},
        "index_version": asst.index.version})
    return out
