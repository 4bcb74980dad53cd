"""Abstention calibrated per index: where "nothing here answers this" lies on this corpus's cosine scale.

A fixed cosine threshold does not travel between collections: the same model gives lower
similarities on terse technical text, code, other languages or long sections than on the short
English policy pages of the demo corpus, so a threshold chosen on one suite makes another index
abstain on questions its passages plainly answer. At build time the index is probed with questions
that are off-topic for any company knowledge base (cooking, sports, astronomy, geography, ...): their
best cosine shows where this corpus's "unrelated" lies. The per-index threshold is that level plus a
margin, never above the fixed default:

    threshold = min(DEFAULT, quantile_95(best cosine of the off-topic probes) + MARGIN)

On the demo corpus the off-topic probes' 95th percentile is about 0.27, so the default stands; on a
collection whose unrelated questions still score 0.15 the threshold drops to about 0.30. The
calibration is stored in the manifest (``abstain_calibration``) and shown by ``index status``; the
``abstain_threshold`` setting ``auto`` (the default) uses it, a number overrides it.
"""
from __future__ import annotations

import numpy as np

DEFAULT = 0.42  # the threshold calibrated on eval/demo.yaml (askcolleague eval reports the best value)
MARGIN = 0.15  # cosine above the unrelated level: answerable demo questions sit >= 0.31, unrelated <= 0.29
FLOOR = 0.15
METHOD = "min(default, q95(off-topic probes) + margin)"

OFF_TOPIC = (
    "What is the boiling point of mercury?", "Who won the football World Cup in 1966?",
    "How do I bake sourdough bread at home?", "What is the capital of Mongolia?",
    "How many moons does Jupiter have?", "What is a good name for a goldfish?",
    "How do you say thank you in Japanese?", "When did the Roman Empire fall?",
    "What is the best way to learn the violin?", "How long should I boil an egg?",
    "Which planet is closest to the sun?", "What are the rules of cricket?",
    "How do I get red wine out of a carpet?", "Who painted the Mona Lisa?",
    "What do koalas eat?", "How tall is Mount Everest?", "What is the plot of Hamlet?",
    "How do I train my puppy to sit?", "What is the recipe for guacamole?",
    "Which team won the 1998 NBA finals?", "How do volcanoes form?", "What is the lifespan of a tortoise?",
    "Who wrote Pride and Prejudice?", "How many strings does a cello have?",
    "What is the population of Iceland?", "How do I knit a scarf?", "Why is the sky blue?",
    "What is the speed of sound in water?", "Which wine goes with grilled fish?",
    "How do hummingbirds fly backwards?", "Who was the first person on the moon?",
    "What is the deepest lake in the world?", "How do I grow tomatoes on a balcony?",
    "What are the symptoms of the common cold in cats?", "Who composed the Four Seasons?",
    "How many players are on a rugby team?", "What is the national dish of Peru?",
    "How old is the universe?", "What language is spoken in Brazil?", "How do I fold a paper crane?",
    "Which dinosaurs lived in the Jurassic?", "What is the longest river in Africa?",
    "How many calories are in a banana?", "Who invented the telephone?", "What causes the northern lights?",
    "How do I tune a guitar by ear?", "What is the tallest tree species?", "When is the best time to see cherry blossoms in Kyoto?",
)


_PROBES: dict[tuple, np.ndarray] = {}  # the probes' vectors per model, embedded once per process


def _probe_vectors(embedder) -> np.ndarray:
    key = (type(embedder).__name__, getattr(embedder, "model_id", None), getattr(embedder, "dim", None))
    if key[1] is None or key not in _PROBES:
        vecs = np.asarray(embedder.embed_batch(list(OFF_TOPIC)), dtype=np.float32)
        if key[1] is None:
            return vecs
        _PROBES[key] = vecs
    return _PROBES[key]


def calibrate(vectors, embedder, default: float = DEFAULT) -> dict:
    """The index's abstention calibration (stored in the manifest): probe statistics and threshold.
    `vectors`: the new version's vector index (index/base.py VectorIndex)."""
    if len(vectors) == 0:
        return from_best(np.zeros(0, dtype=np.float32), default)
    vecs = _probe_vectors(embedder)
    return from_best(np.array([vectors.search(v, 1)[0][1] for v in vecs], dtype=np.float32), default)


class ProbeBest:
    """The probes' best cosines, kept up to date as a streaming build adds vectors (none are kept)."""

    def __init__(self, embedder) -> None:
        self.probes = _probe_vectors(embedder)
        self.best = np.full(len(self.probes), -np.inf, dtype=np.float32)
        self.n = 0

    def add(self, vecs: np.ndarray) -> None:
        if len(vecs):
            self.best = np.maximum(self.best, (self.probes @ np.asarray(vecs, dtype=np.float32).T).max(axis=1))
            self.n += len(vecs)

    def result(self, default: float = DEFAULT) -> dict:
        return from_best(self.best if self.n else np.zeros(0, dtype=np.float32), default)


def from_best(best: np.ndarray, default: float = DEFAULT) -> dict:
    """The calibration from each probe's best cosine over the index (empty: no vectors)."""
    if len(best) == 0:
        return {"method": METHOD, "threshold": default, "probes": 0}
    best = np.sort(np.asarray(best, dtype=np.float32))
    q95 = float(np.quantile(best, 0.95))
    threshold = round(max(FLOOR, min(default, q95 + MARGIN)), 4)
    return {"method": METHOD, "threshold": threshold, "default": default, "margin": MARGIN,
            "probes": len(best), "off_topic_q50": round(float(np.median(best)), 4),
            "off_topic_q95": round(q95, 4), "off_topic_max": round(float(best[-1]), 4)}
