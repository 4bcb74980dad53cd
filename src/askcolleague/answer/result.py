"""The answer's JSON contract (`Answer`, `Citation`, `PersonHit`) and what a citation may show of
its authors to an asker who may not see their profiles."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..models import Person, normalize_name, person_id_for
from ..search import Hit


@dataclass
class Citation:
    n: int
    chunk_id: str
    doc_id: str
    title: str
    section: str | None
    text: str
    url: str | None
    source_type: str
    date: str | None
    score: float
    authors: list[dict]
    highlights: list[str] = field(default_factory=list)  # sentences of `text` the answer relies on
    role: str | None = None  # the unit's role in its conversation: question, answer, reply, comment, ...
    ocr: bool = False  # the text was read from an image by OCR: it may hold recognition errors

@dataclass
class PersonHit:
    person_id: str
    name: str
    email: str | None
    url: str | None
    title: str | None
    team: str | None
    score: float
    evidence: list[dict] = field(default_factory=list)  # {chunk_id, n, title, url}
    has_profile: bool = True
    reason: str = ""  # why this person, from the evidence: "wrote the cited passage [1]", ...

    def to_dict(self) -> dict:
        return asdict(self)

    def render(self, i: int | None = None) -> str:
        role = " · ".join(x for x in (self.title, self.team) if x)
        head = f"{str(i) + '. ' if i else ''}{self.name}{' — ' + role if role else ''}  ({self.score:.2f})"
        lines = [head, f"    {self.url or ''}"]
        if self.reason:
            lines.append(f"    why: {self.reason}")
        for e in self.evidence:
            n = f"[{e['n']}] " if e.get("n") else ""
            lines.append(f"    wrote: {n}{e['title']}")
        return "\n".join(lines)

@dataclass
class Answer:
    question: str
    answer: str
    abstained: bool
    mode: str  # extractive | llm
    fallback_reason: str | None
    citations: list[Citation]
    unsupported_sentences: list[str]
    people: list[PersonHit]
    timings_ms: dict[str, float]
    more_results: list[Citation] = field(default_factory=list)
    retrieval_mode: str = "hybrid"
    question_kind: str = "expertise"  # attribution ("who said X") or expertise (every other question)

    def __post_init__(self) -> None:
        self.picks: list[tuple[Hit, str, float]] = []  # (passage, sentence, support score): not in the JSON

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def render(self) -> str:
        """Plain text for a terminal."""
        out = [self.answer, ""]
        if self.unsupported_sentences:
            out.append("Not supported by the cited passages:")
            out += [f"  ! {s}" for s in self.unsupported_sentences]
            out.append("")
        if self.fallback_reason:
            out += [f"(extractive answer: {self.fallback_reason})", ""]
        if self.citations:
            out.append("Sources:")
            for c in self.citations:
                who = ", ".join(a["name"] for a in c.authors) or "unknown author"
                where = f"{c.title}" + (f" › {c.section}" if c.section else "")
                ocr = ", OCR: may hold recognition errors" if c.ocr else ""
                out.append(f"  [{c.n}] {where} — {who}{', ' + c.date[:10] if c.date else ''} ({c.source_type}{ocr})")
                if c.url:
                    out.append(f"       {c.url}")
        if self.people:
            out += ["", "Who to ask:"]
            out += ["  " + p.render(i).replace("\n", "\n  ") for i, p in enumerate(self.people, 1)]
        if self.more_results:
            out += ["", "More results:"]
            out += [f"  - {c.title}" + (f" › {c.section}" if c.section else "") for c in self.more_results]
        return "\n".join(out).rstrip() + "\n"

def cited_authors(store, chunk_row: dict, links: dict[int, list], groups: list[str] | None = None) -> list[dict]:
    """The citation's authors: {name, email, url} from their people records; with access control
    (`groups`), a person whose profile the asker may not see is shown as the passage itself names them."""
    pids = [pid for pid, role, _w in links.get(chunk_row["id"], []) if role in ("author", "profile")]
    shown = store.visible_profiles(pids, groups)
    out = []
    for pid in pids:
        p = store.person(pid)
        if p:
            card = p if pid in shown else as_seen(p, [chunk_row])
            out.append({"name": card.name, "email": card.email, "url": card.link()})
    return out

def as_seen(p: Person, rows: list[dict]) -> Person:
    """What may be shown of a person whose profile is hidden from the asker: only the name and email
    the visible passages `rows` themselves carry for them — no title, team, profile link or handle."""
    names = {normalize_name(n) for n in [p.name, *p.aliases] if n}
    emails = {e.lower() for e in [p.email, *(a for a in p.aliases if "@" in a)] if e}
    refs = [a for r in rows for a in r.get("authors") or []]
    mine = [a for a in refs if (a.get("email") or "").lower() in emails
            or (a.get("name") and normalize_name(a["name"]) in names)]
    if not mine and len(refs) == 1:
        mine = refs
    name = next((a["name"] for a in mine if a.get("name")), None)
    email = next((a["email"].lower() for a in mine if a.get("email")), None)
    name = name or email or p.name
    return Person(name=name, email=email, person_id=person_id_for(name, email), has_profile=False)
