"""JSON Schema of an answer (`ask --json`, `Answer.to_dict()`, the web API's `/ask`)."""
from __future__ import annotations

_STR_OR_NULL = {"type": ["string", "null"]}

_AUTHOR = {"type": "object", "required": ["name", "email", "url"],
           "properties": {"name": {"type": "string"}, "email": _STR_OR_NULL, "url": _STR_OR_NULL}}

_CITATION = {
    "type": "object",
    "required": ["n", "chunk_id", "doc_id", "title", "section", "text", "url", "source_type", "date", "score", "authors"],
    "properties": {
        "n": {"type": "integer", "minimum": 0}, "chunk_id": {"type": "string"}, "doc_id": {"type": "string"},
        "title": {"type": "string"}, "section": _STR_OR_NULL, "text": {"type": "string"}, "url": _STR_OR_NULL,
        "source_type": {"enum": ["document", "post", "comment", "message", "profile"]},
        "date": _STR_OR_NULL, "score": {"type": "number"}, "authors": {"type": "array", "items": _AUTHOR},
        "highlights": {"type": "array", "items": {"type": "string"}},
        "role": {"enum": ["document", "post", "question", "answer", "comment", "reply", "message", "profile", None]},
        "ocr": {"type": "boolean"},  # the passage was read from an image by OCR (may hold recognition errors)
        # the web API's /ask cuts a passage longer than web.MAX_PASSAGE_CHARS and says so
        "truncated": {"type": "boolean"},
    },
}

PERSON_SCHEMA = {
    "type": "object",
    "required": ["name", "email", "url", "title", "team", "score", "evidence"],
    "properties": {
        "name": {"type": "string"}, "email": _STR_OR_NULL, "url": _STR_OR_NULL, "title": _STR_OR_NULL,
        "team": _STR_OR_NULL, "score": {"type": "number"}, "reason": {"type": "string"},
        "evidence": {"type": "array", "items": {
            "type": "object", "required": ["chunk_id", "n", "title", "url"],
            "properties": {"chunk_id": {"type": "string"}, "n": {"type": ["integer", "null"]},
                           "title": {"type": "string"}, "url": _STR_OR_NULL}}},
    },
}

ANSWER_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "askcolleague answer",
    "type": "object",
    "required": ["question", "answer", "abstained", "mode", "fallback_reason", "citations",
                 "unsupported_sentences", "people", "timings_ms"],
    "properties": {
        "question": {"type": "string"}, "answer": {"type": "string"}, "abstained": {"type": "boolean"},
        "mode": {"enum": ["extractive", "llm"]}, "fallback_reason": _STR_OR_NULL,
        "citations": {"type": "array", "items": _CITATION},
        "unsupported_sentences": {"type": "array", "items": {"type": "string"}},
        "people": {"type": "array", "items": PERSON_SCHEMA},
        "timings_ms": {"type": "object", "required": ["retrieve", "answer", "people", "total"],
                       "additionalProperties": {"type": "number"}},
        "more_results": {"type": "array", "items": _CITATION},
        "question_kind": {"enum": ["attribution", "expertise"]},
        "truncated": {"type": "boolean"},  # /ask: an answer sentence was cut (web.MAX_SENTENCE_CHARS)
    },
}
