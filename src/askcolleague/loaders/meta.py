"""Metadata every source kind shares: YAML mappings, the Doc fields they give, and sidecar files.

A sidecar ``FILE.meta.yaml`` (or ``.meta.yml``) beside any source file overrides its metadata. It is
read and applied in one place, ``loaders.load_source``, for every loader (the document loader also
reads it before sectioning, so that a sidecar title decides whether a leading heading is the title):

* a file of one document (Markdown, PDF, DOCX, ...): every key overrides the file's own;
* a file of many threads (``.jsonl``, ``.mbox``, WordPress ``.xml``, Slack ``.zip``/folder):
  ``groups`` replace every thread's own groups (WordPress ``private``, Slack ``slack:<channel>``),
  ``tags`` are added to every thread's own; ``title``, ``author(s)``, ``date`` and ``url`` describe
  one document, so a sidecar giving them is refused (the file is skipped with a message naming the key)
  rather than silently ignored.
"""
from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import yaml

from .. import safeyaml
from ..errors import MetadataError
from ..models import Doc, parse_authors
from .base import norm_date

KEYS = ("title", "author", "authors", "date", "url", "tags", "groups")
THREAD_KEYS = ("tags", "groups")  # the keys a sidecar may give a file of many threads
SIDECAR_SUFFIXES = (".meta.yaml", ".meta.yml")
PLACEHOLDERS = {"python-docx", "python-pptx", "anonymous", "unknown", "untitled", "unspecified"}  # tool defaults


def yaml_mapping(text: str, what: str, first_line: int = 1) -> dict[str, Any]:
    """A YAML mapping (None → {}); LoadError naming `what` for bad YAML, aliases, or a non-mapping."""
    try:
        data = safeyaml.load(text, what)
    except safeyaml.YamlRefused as e:
        raise MetadataError(str(e)) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "context_mark", None) or getattr(e, "problem_mark", None)  # where the broken part starts
        where = f" (line {mark.line + first_line})" if mark else ""
        raise MetadataError(f"{what} is not valid YAML{where}; fix it") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise MetadataError(f"{what} is not a YAML mapping (title:, author:, date: ...); fix it")
    return data


def check_keys(raw: dict[str, Any], what: str) -> None:
    """Refuse a key that is a near miss of `groups` (``group:``, ``Groupes:``): a typo there would
    make a restricted file public without a word."""
    for k in raw:
        key = str(k).strip().lower()
        if key not in KEYS and difflib.get_close_matches(key, ["groups"], n=1, cutoff=0.7):
            raise MetadataError(f"{what} has the key {str(k)!r}; did you mean `groups:`? fix the key")


def fields(raw: dict[str, Any]) -> dict[str, Any]:
    """The Doc fields present (not empty) in a metadata mapping: title, authors, date, url, tags, groups."""
    raw = {str(k).lower(): v for k, v in raw.items()}
    people = raw.get("authors") or raw.get("author")
    out = {"title": " ".join(str(raw.get("title")).split()) if given(raw.get("title")) else None,
           "authors": [a for a in parse_authors(split_people(people)) if a.email or given(a.name)],
           "date": norm_date(raw.get("date")), "url": str(raw["url"]).strip() if given(raw.get("url")) else None,
           "tags": as_list(raw.get("tags")), "groups": as_list(raw.get("groups"))}
    return {k: v for k, v in out.items() if v}


def given(value: Any) -> bool:
    """A real value: not empty and not a tool's placeholder such as 'untitled' or 'python-docx'."""
    return value is not None and str(value).strip().lower() not in ("", *PLACEHOLDERS)


def split_people(value: Any) -> Any:
    """Split an author string on ';' (Office and rst style); other values pass through."""
    return [p for p in re.split(r"\s*;\s*", value.strip()) if p] if isinstance(value, str) else value


def as_list(value: Any) -> list[str]:
    if value is None:
        return []
    items = re.split(r"[,;]", value) if isinstance(value, str) else value if isinstance(value, (list, tuple)) else [value]
    return [s for s in (str(i).strip() for i in items) if s]


# ---------------------------------------------------------------- sidecars

def sidecar_path(path: Path) -> Path | None:
    """The sidecar beside a source file (``FILE.meta.yaml`` first), or None."""
    for suffix in SIDECAR_SUFFIXES:
        side = path.with_name(path.name + suffix)
        if side.is_file():
            return side
    return None


def read_sidecar(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(raw mapping, Doc fields) of the sidecar beside a source file or folder; ({}, {}) when there is none."""
    side = sidecar_path(path)
    if side is None:
        return {}, {}
    what = f"sidecar {side.name}"
    try:
        text = side.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise MetadataError(f"cannot read sidecar {side.name} ({e}); re-save it as UTF-8") from None
    raw = yaml_mapping(text, what)
    check_keys(raw, what)
    return raw, fields(raw)


def apply_sidecar(docs: list[Doc], path: Path, kind: str) -> list[Doc]:
    """Apply the sidecar beside `path` (if any) to the docs its loader returned (see module docstring)."""
    raw, meta = read_sidecar(path)
    if not raw:
        return docs
    if kind != "document":
        given_keys = [str(k) for k, v in raw.items() if str(k).lower() in KEYS and str(k).lower() not in THREAD_KEYS
                      and v not in (None, "", [])]
        if given_keys:
            raise MetadataError(
                f"sidecar {sidecar_path(path).name} gives {', '.join(repr(k) for k in given_keys)}, which cannot apply to a file of many "
                f"threads (only `tags:` and `groups:` can); remove {'them' if len(given_keys) > 1 else 'it'} "
                "— each thread keeps its own title, authors, date and url")
    for doc in docs:
        if "groups" in meta:
            doc.groups = list(meta["groups"])
            # a Slack private channel's members were given its group; the sidecar's groups are not theirs
            doc.meta.pop("members", None)
        if "tags" in meta:
            doc.tags = list(meta["tags"]) if kind == "document" else list(dict.fromkeys([*doc.tags, *meta["tags"]]))
        if kind != "document":
            continue
        for k in ("title", "url"):
            if k in meta:
                setattr(doc, k, meta[k])
        if "date" in meta:
            doc.date = meta["date"]
            for b in doc.blocks:
                b.date = meta["date"]
        if "authors" in meta:
            doc.authors = list(meta["authors"])
            for b in doc.blocks:
                b.authors = list(meta["authors"])
    return docs
