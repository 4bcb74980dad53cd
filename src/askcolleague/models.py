"""Small dataclasses passed between stages: load → chunk → embed → store → search."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass, field
from typing import Any

# Source types of an indexed unit of attribution.
SOURCE_TYPES = ("document", "post", "comment", "message", "profile")
# The role of a unit in its conversation: who asked, who answered (Q&A threads), who replied.
ROLES = ("document", "post", "question", "answer", "comment", "reply", "message", "profile")


@dataclass
class AuthorRef:
    """An author as seen in a source, before identity resolution.

    ``handle`` is namespaced, e.g. ``"slack:U123"``; any of the three fields may be None.
    """

    name: str | None = None
    email: str | None = None
    handle: str | None = None

    @classmethod
    def parse(cls, value: Any) -> "AuthorRef | None":
        """Parse ``"Name <email>"``, ``"Name"``, ``"email@x"`` or a ``{name, email}`` mapping."""
        if value is None:
            return None
        if isinstance(value, AuthorRef):
            return value
        if isinstance(value, dict):
            name = _clean(value.get("name"))
            email = _clean(value.get("email"))
            handle = _clean(value.get("handle"))
            if not (name or email or handle):
                return None
            return cls(name=name, email=email.lower() if email else None, handle=handle)
        text = str(value).strip()
        if not text:
            return None
        m = re.match(r"^\s*\"?([^\"<]*?)\"?\s*<([^<>@\s]+@[^<>\s]+)>\s*$", text)
        if m:
            return cls(name=_clean(m.group(1)), email=m.group(2).strip().lower())
        if re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", text):
            return cls(email=text.lower())
        return cls(name=text)

    def label(self) -> str:
        return self.name or self.email or self.handle or "unknown"


def _clean(v: Any) -> str | None:
    if v is None:
        return None
    s = str(v).strip()
    return s or None


def parse_authors(value: Any) -> list[AuthorRef]:
    """Parse an ``author``/``authors`` field: one value, a list, or a ``;``/``,``-free string."""
    if value is None:
        return []
    items = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for item in items:
        ref = AuthorRef.parse(item)
        if ref is not None:
            out.append(ref)
    return out


@dataclass
class Block:
    """One unit of attribution inside a Doc: a section of a document, a post, a comment, a message.

    A block's words are all by ``authors`` (a document section may have several co-authors; a
    comment or message has exactly one). Chunks never cross block boundaries, so a chunk never
    mixes two authors' words.
    """

    text: str
    kind: str = "document"  # one of SOURCE_TYPES
    section: str | None = None  # section heading (documents) or None
    authors: list[AuthorRef] = field(default_factory=list)
    unit_id: str | None = None  # stable id within the doc: comment id, message id, element index
    date: str | None = None  # ISO 8601 date or datetime
    url: str | None = None  # link to this unit (comment permalink) if any
    reply_to: str | None = None  # display name of the author this unit replies to
    context: str | None = None  # extra context prepended for embedding (e.g. "Reply to Dana on: Title")
    quoted_from: str | None = None  # unit_id of the message whose words these are (quoted text)
    role: str | None = None  # one of ROLES; None = from source_type (see role_of)
    accepted: bool | None = None  # an answer the asker accepted (where the source records it)
    votes: int | None = None  # its score / votes (where the source records it)


def role_of(kind: str, role: str | None) -> str:
    """A unit's role: the loader's, else the one its source type implies."""
    return role if role in ROLES else {"comment": "comment", "message": "message", "post": "post",
                                       "profile": "profile"}.get(kind, "document")


@dataclass
class Doc:
    """A document or a whole thread, as read from one source file."""

    doc_id: str  # stable: "<source key>" or "<source key>#<thread id>"
    source: str  # the source file (path as given/relative), the unit of change detection
    title: str
    source_type: str = "document"  # type of the doc's head unit: document | post | message | profile
    blocks: list[Block] = field(default_factory=list)
    authors: list[AuthorRef] = field(default_factory=list)
    date: str | None = None
    url: str | None = None
    tags: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)  # anything else worth keeping (format, etc.)


@dataclass
class Person:
    """A person profile (from a people file) or an author seen in sources."""

    name: str
    email: str | None = None
    title: str | None = None
    team: str | None = None
    location: str | None = None
    expertise: list[str] = field(default_factory=list)
    bio: str | None = None
    url: str | None = None
    aliases: list[str] = field(default_factory=list)
    handles: dict[str, str] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)
    person_id: str | None = None
    has_profile: bool = True
    source: str | None = None  # people file it came from

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def link(self) -> str | None:
        """Profile url, else mailto:, else a chat handle."""
        if self.url:
            return self.url
        if self.email:
            return f"mailto:{self.email}"
        for ns, h in sorted(self.handles.items()):
            return f"{ns}:{h}"
        return None


@dataclass
class Chunk:
    """An embeddable piece of one Block, with everything a citation needs."""

    chunk_id: str  # "<doc_id>::<position>::<content hash[:12]>"
    doc_id: str
    source: str
    position: int  # position of the chunk within its doc
    text: str  # the passage shown to users (the author's own words)
    embed_text: str  # text given to the embedder: context (title, section, reply) + text
    title: str
    section: str | None
    source_type: str
    authors: list[AuthorRef] = field(default_factory=list)
    date: str | None = None
    url: str | None = None
    tags: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    unit_id: str | None = None
    reply_to: str | None = None
    quoted_from: str | None = None
    n_tokens: int = 0  # in the embedding model's tokenizer (embed_text, without special tokens)
    n_tiktoken: int = 0  # cl100k tokens of text, for LLM context budgeting
    role: str | None = None  # the unit's role (ROLES): question, answer, reply, ...
    accepted: bool | None = None
    votes: int | None = None


@dataclass
class SourceError:
    """A file that was skipped, with the reason and the fix."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


# -- person identity keys (shared by the loaders, identity resolution, the store and the answers)
_HONORIFICS = {"dr", "mr", "mrs", "ms", "mx", "prof"}


def normalize_name(name: str) -> str:
    """A name's matching key: "Lee, Dr. José  Álvarez-Ruiz" → "jose alvarez ruiz lee".

    Accents are stripped (NFKD), case is folded, "Last, First" (exactly one comma) becomes
    "First Last", apostrophes are dropped, other punctuation and runs of whitespace become one
    space, and one leading honorific (dr, mr, mrs, ms, mx, prof) is dropped.
    """
    s = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c)).casefold()
    last, comma, first = s.partition(",")
    if comma and "," not in first and last.strip() and first.strip():
        s = f"{first} {last}"
    words = re.sub(r"[\W_]+", " ", re.sub(r"['’`]", "", s)).split()
    if len(words) > 1 and words[0] in _HONORIFICS:
        words = words[1:]
    return " ".join(words)


def person_id_for(name: str | None = None, email: str | None = None, handle: str | None = None) -> str:
    """``email:<email>`` when an email is known, else ``name:<normalized name>``, else ``handle:<ns:id>``."""
    if email:
        return f"email:{email.strip().lower()}"
    if name and (key := normalize_name(name) or name.strip().casefold()):
        return f"name:{key}"
    if handle:
        return f"handle:{handle_key(handle)}"
    return "name:unknown"


def split_handle(handle: str) -> tuple[str, str]:
    """``"slack:U123"`` → ``("slack", "U123")``; a handle without a namespace goes under ``"handle"``."""
    ns, sep, hid = handle.strip().partition(":")
    if not sep:
        ns, hid = "handle", ns
    return ns.strip().lower(), hid.strip().lstrip("@")


def handle_key(handle: str) -> str:
    return ":".join(split_handle(handle)).casefold()
