"""Gold question suites: the question types, loading and validating a suite file, gold items the index lacks."""
from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from .. import safeyaml
from ..errors import ConfigError
from ..models import normalize_name

TYPES = ("answerable", "multi", "people", "attribution", "unanswerable")
QUESTION_KEYS = ("id", "question", "type", "docs", "people", "facts", "chunks", "origin", "echoes", "notes")
SUITE_KEYS = ("version", "description", "questions", "name")


@dataclass
class Question:
    id: str
    question: str
    type: str
    docs: list[str] = field(default_factory=list)
    people: list[str] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)
    chunks: list[str] = field(default_factory=list)  # optional gold chunk ids (chunk level metrics)
    origin: str | None = None  # attribution: whom the idea comes from (then also people[0])
    echoes: list[str] = field(default_factory=list)  # attribution: people who repeated the idea later

    @property
    def answerable(self) -> bool:
        return self.type != "unanswerable"

    @property
    def expected_author(self) -> str | None:
        """Attribution questions: the person who said / wrote / proposed it (``people[0]``)."""
        return self.people[0] if self.type == "attribution" and self.people else None


@dataclass
class Suite:
    questions: list[Question]
    version: int = 1
    description: str = ""
    path: str | None = None
    sha256: str | None = None

    def of_type(self, *types: str) -> list[Question]:
        return [q for q in self.questions if q.type in types]

    def counts(self) -> dict[str, int]:
        return {t: len(self.of_type(t)) for t in TYPES}


class SuiteError(ConfigError):
    """A gold suite file that cannot be used; the message names the question and the fix."""


def _strings(value: Any, where: str, key: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        raise SuiteError(f"{where}: `{key}` must be a list; write {key}: [{value!r}]")
    if not isinstance(value, list):
        raise SuiteError(f"{where}: `{key}` must be a list of strings, not {type(value).__name__}")
    out = []
    for v in value:
        if not isinstance(v, (str, int, float)) or isinstance(v, bool) or str(v).strip() == "":
            raise SuiteError(f"{where}: `{key}` has an empty or non-text entry ({v!r}); quote it or remove it")
        out.append(str(v).strip())
    dup = [v for v in dict.fromkeys(out) if out.count(v) > 1]
    if dup:
        raise SuiteError(f"{where}: `{key}` lists {dup[0]!r} twice; remove the duplicate")
    return out


def parse_suite(data: Any, path: str = "<suite>") -> Suite:
    """Validate a suite already parsed from YAML/JSON (see `load_suite`)."""
    if not isinstance(data, dict):
        raise SuiteError(f"{path}: expected a mapping with `version` and `questions:`; see eval/README.md")
    for k in data:
        if k not in SUITE_KEYS:
            hint = difflib.get_close_matches(str(k), SUITE_KEYS, 1)
            raise SuiteError(f"{path}: unknown top-level key {k!r}"
                             + (f"; did you mean {hint[0]!r}?" if hint else f"; use {', '.join(SUITE_KEYS)}"))
    version = data.get("version", 1)
    if version != 1:
        raise SuiteError(f"{path}: suite version {version!r} is not supported; write `version: 1`")
    qs = data.get("questions")
    if not isinstance(qs, list) or not qs:
        raise SuiteError(f"{path}: no `questions:` list; add at least one question (see eval/README.md)")
    out: list[Question] = []
    seen: set[str] = set()
    for n, q in enumerate(qs, 1):
        if not isinstance(q, dict):
            raise SuiteError(f"{path}: question #{n} is not a mapping; write `- id: ...` with question, type, docs")
        qid = q.get("id")
        if qid is None or str(qid).strip() == "":
            raise SuiteError(f"{path}: question #{n} has no `id`; give it a unique id such as q{n:03d}")
        qid = str(qid).strip()
        where = f"{path}: question {qid}"
        if qid in seen:
            raise SuiteError(f"{where}: duplicate id; give each question its own id")
        seen.add(qid)
        for k in q:
            if k not in QUESTION_KEYS:
                hint = difflib.get_close_matches(str(k), QUESTION_KEYS, 1)
                raise SuiteError(f"{where}: unknown key {k!r}"
                                 + (f"; did you mean {hint[0]!r}?" if hint else f"; use {', '.join(QUESTION_KEYS)}"))
        text = q.get("question")
        if not isinstance(text, str) or not text.strip():
            raise SuiteError(f"{where}: `question` is missing or empty; write the question text")
        typ = q.get("type")
        if typ not in TYPES:
            raise SuiteError(f"{where}: type {typ!r} is not one of {', '.join(TYPES)}; fix `type:`")
        docs, people, facts, chunks, echoes = (_strings(q.get(k), where, k)
                                               for k in ("docs", "people", "facts", "chunks", "echoes"))
        origin = q.get("origin")
        if origin is not None and (not isinstance(origin, str) or not origin.strip()):
            raise SuiteError(f"{where}: `origin` must be one name (whom the idea comes from), not {origin!r}")
        origin = origin.strip() if origin else None
        if typ != "attribution" and (origin or echoes):
            raise SuiteError(f"{where}: `{'origin' if origin else 'echoes'}` is only for attribution questions; "
                             "remove it or write type: attribution")
        if typ == "attribution":
            if not people:
                raise SuiteError(f"{where}: an attribution question needs the expected author as people[0]; "
                                 "add people: [\"Name\"]")
            first = normalize_name(people[0])
            if origin and normalize_name(origin) != first:
                raise SuiteError(f"{where}: `origin` {origin!r} must also be the expected author, people[0] "
                                 f"(now {people[0]!r}); list the origin first in people")
            if any(normalize_name(e) == first for e in echoes):
                raise SuiteError(f"{where}: {people[0]!r} is both the expected author (people[0]) and in `echoes`; "
                                 "an echo repeats someone else's idea: remove it from one of them")
        if typ == "unanswerable":
            for k, v in (("docs", docs), ("people", people), ("facts", facts), ("chunks", chunks)):
                if v:
                    raise SuiteError(f"{where}: an unanswerable question lists `{k}`; empty it or change the type")
        elif typ == "multi" and len(docs) < 2:
            raise SuiteError(f"{where}: a multi question needs at least two `docs` (one per source it combines); "
                             "add them or make it type: answerable")
        elif typ == "people" and not people:
            raise SuiteError(f"{where}: a people question needs at least one name in `people`; add the expert(s)")
        elif not docs and not chunks:
            raise SuiteError(f"{where}: a {typ} question lists no gold `docs`; add the doc id(s) that answer it "
                             "(source keys relative to ingest/, e.g. demo/it/laptop-requests.md)")
        out.append(Question(qid, text.strip(), typ, docs, people, facts, chunks, origin, echoes))
    return Suite(out, int(version), str(data.get("description") or "").strip(), path)


def load_suite(path: str | Path) -> Suite:
    """Read and validate a gold suite (YAML or JSON). Raises SuiteError with one actionable line."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise SuiteError(f"{p}: cannot read the suite ({e.strerror}); check the path (default eval/demo.yaml)") from None
    try:
        data = safeyaml.load(raw.decode("utf-8"), f"{p}")
    except safeyaml.YamlRefused as e:
        raise SuiteError(str(e)) from None
    except (UnicodeDecodeError, yaml.YAMLError) as e:
        first = " ".join(str(e).split())[:200]
        raise SuiteError(f"{p}: not valid YAML ({first}); fix the syntax") from None
    suite = parse_suite(data, str(p))
    suite.sha256 = hashlib.sha256(raw).hexdigest()
    return suite


def suite_warnings(suite: Suite, doc_ids: Iterable[str], people: Iterable[str] = ()) -> list[str]:
    """Gold docs / people the index does not have (the question can never score on them)."""
    have = set(doc_ids)
    names = {normalize_name(n) for n in people}
    out = []
    for q in suite.questions:
        for d in q.docs:
            if d not in have:
                close = difflib.get_close_matches(d, list(have), 1)
                out.append(f"{q.id}: gold doc {d!r} is not in the index"
                           + (f" (did you mean {close[0]!r}?)" if close else ""))
        if names:
            for p in dict.fromkeys([*q.people, *([q.origin] if q.origin else []), *q.echoes]):
                if normalize_name(p) not in names:
                    out.append(f"{q.id}: gold person {p!r} is not in the index")
    return out
