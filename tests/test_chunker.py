"""Chunking: token budgets in the model's own tokenizer, overlap, stable ids, no author mixing."""
from __future__ import annotations

import pytest

from askcolleague.indexing.chunker import ChunkerConfig, chunk_doc, split_text
from askcolleague.embed import SentenceTransformerEmbedder
from askcolleague.models import AuthorRef, Block, Doc


@pytest.fixture(scope="module")
def tok_embedder():
    # Construction reads the tokenizer and config only; the network weights are not loaded.
    return SentenceTransformerEmbedder()


def _long_text(n_sentences: int) -> str:
    words = "kubernetes node drain upgrade etcd snapshot rollback terraform ingress certificate".split()
    return " ".join(
        f"Step {i}: the {words[i % len(words)]} check uses {words[(i * 3) % len(words)]} and "
        f"{words[(i * 7) % len(words)]} before continuing." for i in range(n_sentences))


def test_no_chunk_exceeds_model_limit(tok_embedder):
    doc = Doc(doc_id="d", source="d", title="A very long runbook title " * 20, blocks=[
        Block(text=_long_text(300), section="Procedure " * 30, authors=[AuthorRef("Dana Lee")]),
        Block(text="x" * 5000, section="Blob"),  # one giant "word"
    ])
    chunks = chunk_doc(doc, tok_embedder, ChunkerConfig(200, 32))
    assert len(chunks) > 10
    for c in chunks:
        assert c.n_tokens == tok_embedder.count_tokens(c.embed_text)
        assert c.n_tokens + tok_embedder.special_tokens <= tok_embedder.max_tokens
        assert c.n_tokens <= 200
        assert c.n_tiktoken > 0


def test_overlap_only_where_a_sentence_is_cut(tok_embedder):
    text = _long_text(60)
    pieces = split_text(tok_embedder, text, 80, 20)
    assert len(pieces) > 3
    # every sentence of the text appears whole in some piece
    for s in text.split(". "):
        assert any(s.strip(". ") in p for p in pieces)
    # pieces end at sentence ends, and the next piece starts with the next sentence: nothing repeated
    assert all(p.endswith(".") for p in pieces)
    assert " ".join(pieces) == text
    # one sentence longer than the budget is cut, and the piece after each cut goes back over it
    run = " ".join(f"w{i}" for i in range(400)) + "."
    cut = split_text(tok_embedder, run, 80, 20)
    assert len(cut) >= 5
    for a, b in zip(cut, cut[1:]):
        shared = set(a.split()) & set(b.split())
        assert 4 <= len(shared) <= 20  # (20 word pieces back: "w61" is 2 or 3 of them)
    # a cut sentence among whole ones: the overlap goes back to that sentence's start
    mixed = "Short one. " + run + " Another short one."
    got = split_text(tok_embedder, mixed, 80, 20)
    assert got[0].startswith("Short one.") and got[-1].endswith("Another short one.")
    assert sum(tok_embedder.count_tokens(p) for p in pieces) <= tok_embedder.count_tokens(text) + len(pieces)


def test_ids_stable_and_blocks_not_mixed(fake_embedder):
    def make():
        return Doc(doc_id="t#1", source="t", title="Thread", source_type="post", blocks=[
            Block(text="Original post text. " * 40, kind="post", authors=[AuthorRef("Ann")], unit_id="p"),
            Block(text="A reply with a fact.", kind="comment", authors=[AuthorRef("Bob")], unit_id="c1",
                  reply_to="Ann", context="Comment by Bob replying to Ann"),
        ])
    a = chunk_doc(make(), fake_embedder, ChunkerConfig(60, 10))
    b = chunk_doc(make(), fake_embedder, ChunkerConfig(60, 10))
    assert [c.chunk_id for c in a] == [c.chunk_id for c in b]
    assert len({c.chunk_id for c in a}) == len(a)
    for c in a:
        assert len(c.authors) == 1
        assert ("Bob" in c.authors[0].name) == (c.unit_id == "c1")
    last = a[-1]
    assert last.text == "A reply with a fact." and "replying to Ann" in last.embed_text
    assert last.reply_to == "Ann" and last.source_type == "comment"
