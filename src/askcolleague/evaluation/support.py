"""Citation support: split an answer into claims with their [n] markers, and judge each claim against what it cites.

ALCE citation recall / precision (Gao et al. 2023) without an NLI model: `SupportJudge` applies the
one support rule (answer/support.py, also the LLM answer checker's) to sets of passages.
"""
from __future__ import annotations

import re

import numpy as np

from ..answer.support import no_claim, numbers, supports, windows
from ..text import sentences

_ROW = re.compile(r"\S.* \| .*\S")  # a table row as the loaders write it: cells joined by " | "

_MARKS = re.compile(r"(?:[ \t]*\[\s*(?:passages?|sources?)?\s*\d+(?:\s*(?:[,;]|[-–]|and)\s*\d+)*\s*\])+", re.I)


def _marker_numbers(s: str) -> list[int]:
    out: list[int] = []
    for a, b in re.findall(r"(\d+)(?:\s*[-–]\s*(\d+))?", s):
        lo, hi = int(a), int(b or a)
        out += list(range(lo, hi + 1)) if 0 <= hi - lo <= 20 else [lo, hi]
    return list(dict.fromkeys(out))


def split_claims(text: str) -> list[tuple[str, list[int]]]:
    """(sentence, cited numbers) pairs of an answer with [n] markers.

    A run of markers cites the sentence right before it (the last sentence of the text since the
    previous run); earlier sentences of that stretch, and sentences after the last run, cite nothing.
    """
    out: list[tuple[str, list[int]]] = []
    pos = 0
    for m in _MARKS.finditer(text):
        seg, pos = text[pos:m.start()], m.end()
        nums = _marker_numbers(m.group(0))
        # (a table row quoted alone is one claim: `sentences` reads a lone row as a table's header)
        sents = sentences(seg) or ([seg.strip()] if _ROW.fullmatch(seg.strip()) else [])
        if not sents:
            if out:  # "[1] [2]" split by something that is not a sentence: same claim
                out[-1] = (out[-1][0], list(dict.fromkeys(out[-1][1] + nums)))
            continue
        out += [(s, []) for s in sents[:-1]]
        out.append((sents[-1], nums))
    out += [(s, []) for s in sentences(text[pos:])]
    return out


class SupportJudge:
    """Is a sentence supported by a set of passages? The one support rule (answer/support.py), for sets.

    supported(s, P) ⇔ every number in s occurs in the texts (or headers: title, section, date) of P,
    and with c = the best cosine (the index's embedding model) between s and any sentence, or two
    adjacent sentences, of a passage in P: c ≥ COS_STRONG (0.60), or c ≥ COS_WEAK (0.45) and at least
    LEX_MIN (half) of s's content terms occur in P. With no offline NLI model this stands in for the
    entailment judgement of ALCE; for one passage it is exactly the check applied to LLM answers.
    """

    def __init__(self, embedder) -> None:
        self.embedder = embedder
        self._vec: dict[str, np.ndarray] = {}
        self._windows: dict[str, list[str]] = {}

    def vectors(self, texts: list[str]) -> np.ndarray:
        todo = [t for t in dict.fromkeys(texts) if t not in self._vec]
        for i in range(0, len(todo), 256):
            part = todo[i:i + 256]
            for t, v in zip(part, self.embedder.embed_batch(part)):
                self._vec[t] = v
        return np.stack([self._vec[t] for t in texts]) if texts else np.zeros((0, 1), dtype=np.float32)

    def windows(self, passage: str) -> list[str]:
        w = self._windows.get(passage)
        if w is None:
            w = self._windows[passage] = windows(passage)
        return w

    def is_claim(self, sentence: str) -> bool:
        return not no_claim(sentence)

    def supported(self, sentence: str, passages: list[tuple[str, str]]) -> bool:
        """`passages`: (text, header) pairs."""
        if not passages:
            return False
        src = " ".join(f"{t} {h}" for t, h in passages)
        if not numbers(sentence) <= numbers(src):
            return False  # (before embedding anything)
        wins = [w for t, _ in passages for w in self.windows(t)]
        v = self.vectors([sentence] + wins)
        return supports(float(np.max(v[1:] @ v[0])), sentence, src)

    def judge(self, answer_text: str, cited: dict[int, tuple[str, str]]) -> dict:
        """ALCE citation recall and precision of one answer; `cited`: {n: (passage text, header)}.

        Returns {claims, supported, citations, relevant, recall, precision, unsupported: [sentences],
        irrelevant: [(sentence, n)]}; recall/precision are None when there is nothing to judge.
        """
        claims = [(s, [n for n in ns if n in cited]) for s, ns in split_claims(answer_text)]
        claims = [(s, ns) for s, ns in claims if ns or self.is_claim(s)]
        n_sup = n_cites = n_rel = 0
        unsupported, irrelevant = [], []
        for s, ns in claims:
            joint = self.supported(s, [cited[n] for n in ns])
            n_sup += joint
            if not joint:
                unsupported.append(s)
            n_cites += len(ns)
            if joint and len(ns) > 1:
                for n in ns:
                    if self.supported(s, [cited[n]]) or not self.supported(s, [cited[m] for m in ns if m != n]):
                        n_rel += 1
                    else:
                        irrelevant.append((s, n))
            elif joint:
                n_rel += 1
            else:
                irrelevant += [(s, n) for n in ns]
        return {"claims": len(claims), "supported": n_sup, "citations": n_cites, "relevant": n_rel,
                "recall": n_sup / len(claims) if claims else None,
                "precision": n_rel / n_cites if n_cites else None,
                "unsupported": unsupported, "irrelevant": irrelevant}
