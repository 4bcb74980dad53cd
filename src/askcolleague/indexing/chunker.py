"""Structure-aware chunking: one block (section, post, comment, message) → token-budgeted chunks."""
from __future__ import annotations

import bisect
import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache

from .._offline import cl100k
from ..embed import Embedder
from ..models import Block, Chunk, Doc

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_BOUNDARY = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n\s*")


# What a unit records besides its text; a new value makes the next build re-read every source (the
# vectors of unchanged texts are reused): "roles-1" = role, accepted and votes of Q&A thread units.
UNITS = "roles-1"
# How consecutive pieces of a long block overlap: "cut-sentences" = only where a sentence is cut
# (before it, every boundary overlapped); part of the chunker's identity, so an update re-chunks.
OVERLAP = "cut-sentences"


@dataclass(frozen=True)
class ChunkerConfig:
    """Chunk size in the embedding model's own tokens (context line included) and overlap."""

    max_tokens: int = 200
    overlap: int = 32
    min_body: int = 48  # body tokens always allowed, however long the context line

    def to_dict(self) -> dict:
        return {"max_tokens": self.max_tokens, "overlap": self.overlap, "overlap_at": OVERLAP,
                "min_body": self.min_body, "units": UNITS,
                "unit": "model word pieces, context line included"}


@lru_cache(maxsize=1)
def _cl100k():
    return cl100k()


def tiktoken_count(text: str) -> int:
    """cl100k tokens (for budgeting an LLM's context)."""
    return len(_cl100k().encode(text, disallowed_special=()))


def context_line(doc: Doc, block: Block) -> str:
    """What the chunk is about, prepended for embedding: title, section, and reply context."""
    head = doc.title
    if block.section and block.section != doc.title:
        head = f"{head} — {block.section}"
    if block.context:
        head = f"{head}\n{block.context}"
    return head


MAX_CHUNK_CHARS = 4000  # no chunk's text is longer, whatever the tokenizer makes of it
MAX_CONTEXT_CHARS = 1000  # nor its context line (title, section, reply context)
MAX_TITLE_CHARS = 500  # nor a title or section heading (a one-line file can make a 45 MB "heading")
_WINDOW = 1 << 20  # characters tokenised at a time


def _cap(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 2].rstrip() + " …"


def _truncate_to(embedder: Embedder, text: str, n: int) -> str:
    offs = embedder.token_offsets(text)
    if len(offs) <= n:
        return text
    return text[: offs[n - 1][1]] + " …" if n > 0 else ""


def _spans(embedder: Embedder, text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    """Token spans of text[start:end] as positions in `text`; a span longer than `max_chars` (a word
    pieces tokenizer makes one [UNK] of a whitespace-free run, however long) is cut into pieces of
    `max_chars`, each counted as a token."""
    out: list[tuple[int, int]] = []
    for a, b in embedder.token_offsets(text[start:end]):
        a, b = a + start, b + start
        if b - a > max_chars:
            out.extend((x, min(x + max_chars, b)) for x in range(a, b, max_chars))
        else:
            out.append((a, b))
    return out


def split_text(embedder: Embedder, text: str, budget: int, overlap: int,
               max_chars: int = MAX_CHUNK_CHARS) -> list[str]:
    """Split text into pieces of at most `budget` tokens and `max_chars` characters, cutting at
    sentence/line ends where possible.

    A piece that ends at a sentence or line end is followed by the next sentence, with no overlap;
    only where a sentence had to be cut does the next piece go back, by up to `overlap` tokens (to
    the cut sentence's start when it lies in that window), so each token is embedded about once. Any text is split, a line without spaces included. Text longer than
    a window (1M characters) is tokenised a window at a time, ending each at whitespace and resuming
    at the first piece that could reach the window's end, so the pieces are those of one pass.
    """
    if len(text) <= _WINDOW:
        return _split(embedder, text, 0, len(text), budget, overlap, max_chars, final=True)[0]
    pieces: list[str] = []
    pos = 0
    while pos < len(text):
        end = min(pos + _WINDOW, len(text))
        if end < len(text):  # end the window at whitespace in its second half, if there is any
            ws = max(text.rfind("\n", pos + _WINDOW // 2, end), text.rfind(" ", pos + _WINDOW // 2, end))
            end = ws if ws > pos else end
        got, resume = _split(embedder, text, pos, end, budget, overlap, max_chars, final=end >= len(text))
        if resume is not None and resume <= pos:  # no piece fits in the window (it is nearly all spaces)
            got, resume = _split(embedder, text, pos, end, budget, overlap, max_chars, final=True)
            resume = end
        pieces += got
        if resume is None:
            break
        pos = resume
    return pieces


def _split(embedder: Embedder, text: str, start: int, end: int, budget: int, overlap: int, max_chars: int,
           final: bool) -> tuple[list[str], int | None]:
    """The pieces of text[start:end] (see split_text) and, unless `final`, where to resume: the start
    of the first piece that comes within two tokens of the window's end (None when all are done)."""
    offs = _spans(embedder, text, start, end, max_chars)
    n = len(offs)
    if final and n <= budget and (not n or offs[-1][1] - offs[0][0] <= max_chars):
        piece = text[start:end].strip()
        return ([piece] if piece else []), None
    if not n:
        return [], (None if final else end)
    # token index at which each sentence/line starts
    starts = sorted({0, *(_first_token_at(offs, m.end()) for m in _BOUNDARY.finditer(text, start, end))} - {n})
    starts_at = set(starts)
    pieces = []
    i = 0
    while i < n:
        j = min(i + budget, n)
        capped = offs[j - 1][1] - offs[i][0] > max_chars
        if capped:  # the largest j whose piece has at most max_chars characters (at least one token)
            j = max(_last_token_ending_by(offs, offs[i][0] + max_chars, i, j), i + 1)
        if not final and j + 2 >= n:
            return [p for p in pieces if p], offs[i][0]
        if j < n:
            lo = bisect.bisect_right(starts, i + budget // 2 if not capped else i + (j - i) // 2)
            hi = bisect.bisect_right(starts, j)
            if hi > lo:
                j = starts[hi - 1]
        pieces.append(text[offs[i][0]: offs[j - 1][1]].strip())
        if j >= n:
            break
        if j in starts_at:  # cut between two sentences (or lines): the next piece starts there, no overlap
            i = j
            continue
        ov = overlap if not capped else min(overlap, (j - i) // 4)
        k = bisect.bisect_left(starts, max(j - ov, i + 1))
        back = starts[k] if k < len(starts) and starts[k] < j else None
        nxt = back if back is not None else max(j - ov, i + 1)
        i = nxt if ov > 0 else j
    return [p for p in pieces if p], None


def _last_token_ending_by(offs: list[tuple[int, int]], pos: int, lo: int, hi: int) -> int:
    """The count j (lo <= j <= hi) of tokens offs[lo:j] that end at or before `pos`."""
    while lo < hi:
        mid = (lo + hi) // 2
        if offs[mid][1] <= pos:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _first_token_at(offs: list[tuple[int, int]], pos: int) -> int:
    lo, hi = 0, len(offs)
    while lo < hi:
        mid = (lo + hi) // 2
        if offs[mid][0] < pos:
            lo = mid + 1
        else:
            hi = mid
    return lo


def chunk_doc(doc: Doc, embedder: Embedder, config: ChunkerConfig = ChunkerConfig()) -> list[Chunk]:
    """Chunks of one doc, in order. A chunk never crosses a block, so never mixes two authors."""
    chunks: list[Chunk] = []
    doc.title = _cap(_CONTROL.sub("", doc.title or ""), MAX_TITLE_CHARS)
    limit = min(config.max_tokens, embedder.max_tokens - embedder.special_tokens)
    position = 0
    for block in doc.blocks:
        text = _CONTROL.sub("", block.text).strip()  # e.g. escaped in JSON, so no loader saw them
        if not text:
            continue
        if block.section:
            block.section = _cap(_CONTROL.sub("", block.section), MAX_TITLE_CHARS)
        ctx = _cap(context_line(doc, block), MAX_CONTEXT_CHARS)
        # keep the context line short enough that the body always gets min_body tokens
        ctx = _truncate_to(embedder, ctx, max(limit - config.min_body - 1, 8))
        ctx_tokens = embedder.count_tokens(ctx)
        budget = max(limit - ctx_tokens - 1, config.min_body)
        for piece in split_text(embedder, text, budget, min(config.overlap, budget // 4)):
            embed_text = f"{ctx}\n{piece}"
            # Tokenisation at the joint can differ by a piece or two; shave until it fits.
            n_tok = embedder.count_tokens(embed_text)
            while n_tok > limit:
                piece = _truncate_to(embedder, piece, embedder.count_tokens(piece) - (n_tok - limit) - 2)
                embed_text = f"{ctx}\n{piece}"
                n_tok = embedder.count_tokens(embed_text)
            if len(piece) > MAX_CHUNK_CHARS:  # the shave's " …" on a piece at the cap
                piece = piece[:MAX_CHUNK_CHARS]
                embed_text = f"{ctx}\n{piece}"
                n_tok = embedder.count_tokens(embed_text)
            digest = hashlib.sha256(embed_text.encode("utf-8")).hexdigest()
            chunks.append(Chunk(
                chunk_id=f"{doc.doc_id}::{position}::{digest[:12]}",
                doc_id=doc.doc_id,
                source=doc.source,
                position=position,
                text=piece,
                embed_text=embed_text,
                title=doc.title,
                section=block.section,
                source_type=block.kind,
                authors=list(block.authors),
                date=block.date or doc.date,
                url=block.url or doc.url,
                tags=list(doc.tags),
                groups=list(doc.groups),
                unit_id=block.unit_id,
                reply_to=block.reply_to,
                quoted_from=block.quoted_from,
                role=block.role,
                accepted=block.accepted,
                votes=block.votes,
                n_tokens=n_tok,
                n_tiktoken=tiktoken_count(piece),
            ))
            position += 1
    return chunks


def embed_key(chunk: Chunk) -> str:
    """What an embedding depends on: the exact text given to the model."""
    return hashlib.sha256(chunk.embed_text.encode("utf-8")).hexdigest()
