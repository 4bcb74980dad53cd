"""People files (YAML/JSON/CSV) and identity resolution: every author seen in a source → one Person."""
from __future__ import annotations

import copy
import csv
import io
import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml

from .. import safeyaml
from ..errors import LoadError
from ..loaders.base import DEFAULT_MAX_BYTES, read_text
from ..loaders.stackexchange import load_users
from ..models import AuthorRef, Person, handle_key, normalize_name, person_id_for, split_handle

_TEXT_FIELDS = ("name", "email", "title", "team", "location", "bio", "url")
_LIST_FIELDS = ("expertise", "aliases", "groups")


# -- loading -----------------------------------------------------------------------------------
def load_people(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> list[Person]:
    """Read a people file: a list of records (or ``{people: [...]}``) in YAML or JSON, or a CSV table.

    In CSV cells and in string values, ``expertise``/``aliases``/``groups`` are ``;``-separated and
    ``handles`` are ``ns:id`` pairs (``slack:U123;github:dana``). Unknown fields are ignored.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if path.name.lower() == "users.xml" or suffix in (".7z", ".zip"):  # a Stack Exchange dump's users
        return load_users(path, max_bytes)
    if suffix not in (".yaml", ".yml", ".json", ".csv"):
        raise LoadError(f"unsupported people file type {suffix or '(none)'!r}; use .yaml, .json or .csv")
    text = read_text(path, max_bytes, "people")
    records = _read_csv(text) if suffix == ".csv" else _records(_parse(text, suffix))
    return [_person(rec, n, str(path)) for n, rec in enumerate(records, 1)]


def _parse(text: str, suffix: str) -> Any:
    try:
        if suffix == ".json":
            return json.loads(text)
        return safeyaml.load(text, "people file")
    except safeyaml.YamlRefused as e:
        raise LoadError(str(e)) from None
    except json.JSONDecodeError as e:
        raise LoadError(f"malformed JSON at line {e.lineno} ({e.msg}); fix the syntax") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise LoadError(f"malformed YAML{where} ({getattr(e, 'problem', None) or 'syntax error'}); fix the syntax") from None
    except RecursionError:
        raise LoadError("nested too deeply; write a flat list of people") from None


def _records(data: Any) -> list:
    if isinstance(data, dict) and "people" in data:
        data = data["people"] or []
    if not isinstance(data, list):
        raise LoadError("expected a list of people or a mapping with a `people:` list; wrap the records in `people:`")
    return data


def _read_csv(text: str) -> list[dict]:
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    try:
        rows = list(reader)
    except csv.Error as e:
        raise LoadError(f"malformed CSV at line {reader.line_num} ({e}); fix the quoting") from None
    if "name" not in [(h or "").strip().lower() for h in reader.fieldnames or []]:
        raise LoadError("CSV has no `name` column; add a header row such as name,email,title,team")
    return rows


def _person(rec: Any, n: int, source: str) -> Person:
    if not isinstance(rec, dict):
        raise LoadError(f"person #{n} is not a record; write each person as a mapping with name, email, ...")
    rec = {str(k).strip().lower(): v for k, v in rec.items() if k is not None}
    vals = {f: _str(rec.get(f)) for f in _TEXT_FIELDS}
    if not vals["name"]:
        raise LoadError(f"person #{n} has no name; add a name")
    if vals["email"]:
        vals["email"] = vals["email"].lower()
        if "@" not in vals["email"]:
            raise LoadError(f"person #{n} has email {vals['email']!r}, which is not an address; fix or remove it")
    p = Person(**vals, **{f: _list(rec.get(f)) for f in _LIST_FIELDS},
               handles=_handles(rec.get("handles"), n), has_profile=True, source=source)
    p.person_id = person_id_for(p.name, p.email)
    return p


def _str(v: Any) -> str | None:
    if v is None or isinstance(v, (dict, list)):
        return None
    return str(v).strip() or None


def _list(v: Any) -> list[str]:
    if v is None or isinstance(v, dict):
        return []
    items = v if isinstance(v, list) else str(v).split(";")
    return [s for s in map(_str, items) if s]


def _handles(v: Any, n: int) -> dict[str, str]:
    if isinstance(v, dict):
        pairs = list(v.items())
    else:
        pairs = []
        for item in _list(v):
            ns, sep, hid = item.partition(":")
            if not sep:
                raise LoadError(f"person #{n} has handle {item!r} without a namespace; write it as slack:U123")
            pairs.append((ns, hid))
    return {str(ns).strip().lower(): str(h).strip() for ns, h in pairs if _str(ns) and _str(h)}


# -- names and ids -----------------------------------------------------------------------------
# -- identity resolution -----------------------------------------------------------------------
class IdentityResolver:
    """Links authors (AuthorRef) to people: profiles first, then authors discovered in sources.

    Profiles with the same email are merged field by field (the first non-empty value wins; lists
    and handles are united). An alias that contains "@" is matched as another email of its person.
    ``resolve`` tries, in order: email (case-insensitive), handle (``"slack:U123"`` against
    ``handles: {slack: U123}``), then normalised name or alias. A name match never links a ref to a
    person whose email, or handle in the same namespace, differs from the ref's; among several
    name matches, profiles beat discovered authors, then the lowest person_id wins. An author
    matching nobody becomes a new Person (``has_profile=False``) that later refs resolve to; it is
    named by its email or handle until a ref brings a name. A name, email or handle seen on a
    resolved ref becomes another key for that person. Ids never change once given out, and are made
    unique with a ``#2``, ``#3`` suffix.
    """

    def __init__(self, profiles: list[Person]) -> None:
        self._people: list[Person] = []
        self._by_email: dict[str, Person] = {}
        self._by_handle: dict[str, Person] = {}
        self._by_name: dict[str, list[Person]] = {}
        self._unnamed: set[str] = set()  # person_ids whose name is only their email or handle
        merged: list[Person] = []
        by_email: dict[str, Person] = {}
        for p in map(copy.deepcopy, profiles):
            p.email = (p.email or "").strip().lower() or None
            if p.email in by_email:
                _merge(by_email[p.email], p)
            else:
                merged.append(p)
                if p.email:
                    by_email[p.email] = p
        for p in merged:
            self._add(p, p.person_id or person_id_for(p.name, p.email))

    def people(self) -> list[Person]:
        """Everyone: profiles in file order, then discovered authors in order of first sight."""
        return list(self._people)

    def resolve(self, ref: AuthorRef) -> Person:
        email = (ref.email or "").strip().lower() or None
        handle = handle_key(ref.handle) if ref.handle else None
        p = (email and self._by_email.get(email)) or (handle and self._by_handle.get(handle)) \
            or self._name_match(ref.name, email, handle)
        if p is None:
            p = Person(name=ref.name or email or ref.handle or "unknown", email=email, has_profile=False)
            if ref.handle:
                ns, hid = split_handle(ref.handle)
                p.handles[ns] = hid
            self._add(p, person_id_for(ref.name, email, ref.handle))
            if not ref.name:
                self._unnamed.add(p.person_id)
        else:
            self._learn(p, ref.name, email, handle, ref.handle)
        return p

    def _name_match(self, name: str | None, email: str | None, handle: str | None) -> Person | None:
        cands = [p for p in self._by_name.get(normalize_name(name), []) if _compatible(p, email, handle)] if name else []
        return min(cands, key=lambda p: (not p.has_profile, p.person_id), default=None)

    def _add(self, p: Person, pid: str) -> None:
        base, n, taken = pid, 2, {q.person_id for q in self._people}
        while pid in taken:
            pid, n = f"{base}#{n}", n + 1
        p.person_id = pid
        self._people.append(p)
        if p.email:
            self._by_email.setdefault(p.email.lower(), p)
        for ns, hid in p.handles.items():
            self._by_handle.setdefault(handle_key(f"{ns}:{hid}"), p)
        for alias in [p.name, *p.aliases]:
            self._index_name(alias, p)

    def _index_name(self, name: str, p: Person) -> None:
        if "@" in name:
            self._by_email.setdefault(name.strip().lower(), p)
        elif (key := normalize_name(name)) and p not in (lst := self._by_name.setdefault(key, [])):
            lst.append(p)

    def _learn(self, p: Person, name: str | None, email: str | None, handle: str | None, raw: str | None) -> None:
        """Remember the ref's identifiers for ``p``; a discovered author also takes them as fields."""
        if email:
            self._by_email.setdefault(email, p)
        if handle:
            self._by_handle.setdefault(handle, p)
        if name:
            self._index_name(name, p)
        if p.has_profile:
            return
        if email and not p.email:
            p.email = email
        if raw:
            p.handles.setdefault(*split_handle(raw))
        if name and p.person_id in self._unnamed:
            p.name = name
            self._unnamed.discard(p.person_id)
        elif name and normalize_name(name) != normalize_name(p.name) and name not in p.aliases:
            p.aliases.append(name)


def _compatible(p: Person, email: str | None, handle: str | None) -> bool:
    """False when the ref's email, or its handle in a namespace p has, contradicts p's."""
    if email and p.email and email != p.email.lower():
        return False
    if handle:
        ns = handle.partition(":")[0]
        known = {handle_key(f"{k}:{v}") for k, v in p.handles.items() if k.casefold() == ns}
        return not known or handle in known
    return True


def _merge(into: Person, other: Person) -> None:
    """Fill ``into`` from a duplicate profile: first non-empty value wins, lists and handles are united."""
    for f in fields(Person):
        if f.name in ("person_id", "has_profile", "source"):
            continue
        a, b = getattr(into, f.name), getattr(other, f.name)
        if isinstance(a, list):
            a.extend(x for x in b if x not in a)
        elif isinstance(a, dict):
            setattr(into, f.name, {**b, **a})
        elif not a:
            setattr(into, f.name, b)


# -- profile text ------------------------------------------------------------------------------
def profile_text(p: Person) -> str:
    """The text indexed for a profile, e.g.
    "Dana Lee — Platform Lead, Infrastructure team (Berlin). Expertise: kubernetes, terraform. Bio: ..."."""
    team = p.team and (p.team if p.team.casefold().endswith("team") else f"{p.team} team")
    role = ", ".join(x for x in (p.title, team) if x)
    head = p.name + (f" — {role}" if role else "") + (f" ({p.location})" if p.location else "")
    parts = [head.rstrip(".") + "."]
    if p.expertise:
        parts.append(f"Expertise: {', '.join(p.expertise)}.")
    if p.bio:
        parts.append(f"Bio: {p.bio.strip()}")
    return " ".join(parts)
