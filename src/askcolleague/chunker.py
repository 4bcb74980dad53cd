"""Structure-aware chunking: one block (section, post, comment, message) → token-budgeted chunks."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache

from .embedder import Embedder
from .models import Block, Chunk, Doc

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_BOUNDARY = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n\s*")


@dataclass(frozen=True)
class ChunkerConfig:
    """Chunk size in the embedding model's own tokens (context line included) and overlap."""

    max_tokens: int = 200
    overlap: int = 32
    min_body: int = 48  # body tokens always allowed, however long the context line

    def to_dict(self) -> dict:
        return {"max_tokens": self.max_tokens, "overlap": self.overlap, "min_body": self.min_body,
                "unit": "model word pieces, context line included"}


@lru_cache(maxsize=1)
def _cl100k():
    from ._offline import cl100k

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


def _truncate_to(embedder: Embedder, text: str, n: int) -> str:
    offs = embedder.token_offsets(text)
    if len(offs) <= n:
        return text
    return text[: offs[n - 1][1]] + " …" if n > 0 else ""


def split_text(embedder: Embedder, text: str, budget: int, overlap: int) -> list[str]:
    """Split text into pieces of at most `budget` tokens, cutting at sentence/line ends where possible.

    Consecutive pieces overlap by up to `overlap` tokens, starting at a sentence boundary when one
    lies in the overlap window.
    """
    offs = embedder.token_offsets(text)
    n = len(offs)
    if n <= budget:
        return [text.strip()] if text.strip() else []
    # token index at which each sentence/line starts
    starts = sorted({0, *(_first_token_at(offs, m.end()) for m in _BOUNDARY.finditer(text))} - {n})
    pieces = []
    i = 0
    while i < n:
        j = min(i + budget, n)
        if j < n:
            cands = [b for b in starts if i + budget // 2 < b <= j]
            if cands:
                j = cands[-1]
        pieces.append(text[offs[i][0]: offs[j - 1][1]].strip())
        if j >= n:
            break
        back = [b for b in starts if j - overlap <= b < j and b > i]
        nxt = back[0] if back else max(j - overlap, i + 1)
        i = nxt if overlap > 0 else j
    return [p for p in pieces if p]


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
    doc.title = _CONTROL.sub("", doc.title or "")
    limit = min(config.max_tokens, embedder.max_tokens - embedder.special_tokens)
    position = 0
    for block in doc.blocks:
        text = _CONTROL.sub("", block.text).strip()  # e.g. escaped in JSON, so no loader saw them
        if not text:
            continue
        if block.section:
            block.section = _CONTROL.sub("", block.section)
        ctx = context_line(doc, block)
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
                n_tokens=n_tok,
                n_tiktoken=tiktoken_count(piece),
            ))
            position += 1
    return chunks


def embed_key(chunk: Chunk) -> str:
    """What an embedding depends on: the exact text given to the model."""
    return hashlib.sha256(chunk.embed_text.encode("utf-8")).hexdigest()
