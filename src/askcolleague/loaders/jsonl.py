"""JSONL thread loader: one post per line with nested comments, each comment its own block."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import LoadError
from ..models import AuthorRef, Block, Doc
from .base import norm_date, read_text, split_quoted
from .threads import add_unit, asks, author_name, first_words, mark_asker, reply_context, reply_role, to_text, votes_of

MAX_DEPTH = 50


def _str(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    return str(value).strip() or None


def _authors(value: Any) -> list[AuthorRef]:
    ref = AuthorRef.parse(value) if isinstance(value, (str, dict)) else None
    return [ref] if ref else []


def load(path: Path, key: str, max_bytes: int) -> list[Doc]:
    docs = []
    for n, line in enumerate(read_text(path, max_bytes, "JSONL").split("\n"), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as e:
            raise LoadError(f"line {n} is not valid JSON ({e}); fix the line") from None
        except RecursionError:
            raise LoadError(f"line {n} is nested too deeply; flatten the line") from None
        if not isinstance(obj, dict):
            raise LoadError(f"line {n} is not a JSON object; write one thread object per line")
        docs.append(_thread(obj, n, key))
    return docs


def _thread(obj: dict, n: int, key: str) -> Doc:
    thread_id = _str(obj.get("id")) or str(n)
    body = to_text(_str(obj.get("body")) or "")
    title = _str(obj.get("title")) or first_words(body) or f"Thread {thread_id}"
    head = Block(text=body, kind="post", authors=_authors(obj.get("author")), unit_id="post",
                 date=norm_date(_str(obj.get("date"))), url=_str(obj.get("url")),
                 role="question" if asks(_str(obj.get("title")), body) else "post",
                 votes=votes_of(obj.get("votes", obj.get("score"))))
    blocks: list[Block] = []
    add_unit(blocks, head)
    _comments(obj.get("comments"), head, title, blocks, n, 1, "")
    mark_asker(blocks)
    tags = obj.get("tags")
    tags = tags.split(",") if isinstance(tags, str) else tags if isinstance(tags, list) else []
    return Doc(
        doc_id=f"{key}#{thread_id}", source=key, title=title, source_type="post", blocks=blocks,
        authors=list(head.authors), date=head.date, url=head.url, tags=[t for t in map(_str, tags) if t],
        meta={"format": "jsonl", "line": n},
    )


def _comments(items: Any, parent: Block, title: str, blocks: list[Block], n: int, depth: int, path: str) -> None:
    if not isinstance(items, list) or not items:
        return
    if depth > MAX_DEPTH:
        raise LoadError(f"line {n} has comments nested more than {MAX_DEPTH} levels deep; flatten the thread")
    for i, c in enumerate(items, 1):
        if not isinstance(c, dict):
            continue
        pos = f"{path}{i}"
        authors = _authors(c.get("author"))
        own, quote = split_quoted(to_text(_str(c.get("body")) or ""))
        block = Block(
            text=own, kind="comment", authors=authors, unit_id=f"comment-{_str(c.get('id')) or pos}",
            date=norm_date(_str(c.get("date"))), url=_str(c.get("url")), reply_to=author_name(parent.authors),
            context=reply_context("Comment", author_name(authors), author_name(parent.authors), title),
            role=reply_role(parent, depth == 1), votes=votes_of(c.get("votes", c.get("score"))),
            accepted=bool(c["accepted"]) if isinstance(c.get("accepted"), bool) else None,
        )
        add_unit(blocks, block, quote, parent)
        _comments(c.get("comments"), block, title, blocks, n, depth + 1, f"{pos}.")
