"""Feedback store: round-trip, durability across reopening, export (library and CLI)."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from askcolleague.cli import cli
from askcolleague.feedback import FILENAME, FeedbackStore, export

KEYS = {"id", "created_at", "kind", "question", "query", "answer", "chunk_ids", "chunk_id", "comment",
        "index_version"}


def _fill(store: FeedbackStore) -> None:
    store.add("up", "How do I request a laptop?", "Use ServiceDesk. [1]", ["a::0", "b::1"], comment=" quick ")
    store.add("down", "Who owns it?", "Nobody. [1]", ["c::2"], query="Who owns it? laptop")
    store.add("wrong_source", "How do I request a laptop?", "Use ServiceDesk. [1]", ["a::0", "b::1"],
              chunk_id="b::1", comment="about phones", index_version="v-1")


def test_round_trip(tmp_path):
    with FeedbackStore.for_index(tmp_path) as store:
        _fill(store)
        rows = store.rows()
    assert [r["kind"] for r in rows] == ["up", "down", "wrong_source"]
    assert rows[0]["chunk_ids"] == ["a::0", "b::1"] and rows[0]["comment"] == "quick" and rows[0]["chunk_id"] is None
    assert rows[1]["query"] == "Who owns it? laptop" and rows[1]["comment"] is None
    assert rows[2]["chunk_id"] == "b::1" and rows[2]["index_version"] == "v-1"
    assert all(set(r) == KEYS and r["created_at"].endswith("+00:00") for r in rows)
    assert [r["id"] for r in rows] == sorted({r["id"] for r in rows})


def test_survives_reopening(tmp_path):
    store = FeedbackStore.for_index(tmp_path)
    _fill(store)
    store.close()
    assert (tmp_path / FILENAME).is_file()
    with FeedbackStore.for_index(tmp_path) as again:
        again.add("up", "q", "a")
        rows = again.rows()
    assert len(rows) == 4 and rows[-1]["chunk_ids"] == []


def test_rejects_unknown_kind(tmp_path):
    with FeedbackStore.for_index(tmp_path) as store, pytest.raises(ValueError, match="kind"):
        store.add("meh", "q", "a")


def test_export_without_feedback_creates_nothing(tmp_path):
    assert export(tmp_path / "idx") == []
    assert not (tmp_path / "idx").exists()


def test_cli_export_json_and_text(tmp_path):
    with FeedbackStore.for_index(tmp_path) as store:
        _fill(store)
    res = CliRunner().invoke(cli, ["feedback", "export", "--index", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert isinstance(rows, list) and len(rows) == 3
    assert all(set(r) == KEYS for r in rows)
    assert rows[2] | {"created_at": None} == {
        "id": 3, "created_at": None, "kind": "wrong_source", "question": "How do I request a laptop?", "query": None,
        "answer": "Use ServiceDesk. [1]", "chunk_ids": ["a::0", "b::1"], "chunk_id": "b::1",
        "comment": "about phones", "index_version": "v-1"}
    text = CliRunner().invoke(cli, ["feedback", "export", "--index", str(tmp_path)])
    assert text.exit_code == 0 and "wrong_source" in text.output and "about phones" in text.output
    empty = CliRunner().invoke(cli, ["feedback", "export", "--index", str(tmp_path / "none"), "--json"])
    assert empty.exit_code == 0 and json.loads(empty.output) == []
