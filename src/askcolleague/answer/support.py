"""The one support check: is a sentence supported by the passage(s) it cites?

Used by the LLM answer checker (llm.check) and by the eval suite's citation metrics
(evaluation/support.py), so both judge with the same rule:

    supported(s, P) ⇔ every number in s occurs in P's texts or headers (title, section, date), and,
    with c = the best cosine between s and any sentence (or two adjacent sentences) of P:
    c ≥ COS_STRONG, or c ≥ COS_WEAK and at least LEX_MIN of s's content terms occur in P.

With no offline NLI model this stands in for an entailment judgement (ALCE, Gao et al. 2023).
"""
from __future__ import annotations

import re

from ..text import content_terms, lexical_overlap, sentences

COS_STRONG = 0.60  # supported on meaning alone (all-MiniLM-L6-v2 cosine) ...
COS_WEAK, LEX_MIN = 0.45, 0.5  # ... or on weaker meaning plus half the sentence's content words in the passage

CITE = re.compile(r"\[\s*(?:passages?|sources?)?\s*(\d+(?:\s*(?:[,;]|[-–]|and)\s*\d+)*)\s*\]", re.I)
_NUM = re.compile(r"\d+(?:[.,]\d+)*")
_DONT_KNOW = re.compile(r"\b(?:don'?t|do not|cannot|can't) (?:know|tell|say)\b|\b(?:passages?|sources?|context)\b"
                        r".*\b(?:not|no|n't|nothing)\b", re.I)


def plain(s: str) -> str:
    """A sentence without citation markers or markdown, for comparison."""
    s = CITE.sub(" ", s)
    s = re.sub(r"[*_`#>]+|^\s*(?:[-•]|\d+[.)])\s+", " ", s)
    return re.sub(r" ([.,;:!?])", r"\1", " ".join(s.split()))


def no_claim(s: str) -> bool:
    """A lead-in ("Here is what I found:"), a heading, or an honest 'the passages don't say'."""
    p = plain(s)
    return (p.endswith(":") and len(p.split()) <= 15) or len(content_terms(p)) <= 1 or bool(_DONT_KNOW.search(p))


def numbers(s: str) -> set[str]:
    return {n.replace(",", "") for n in _NUM.findall(s)}


def windows(passage: str) -> list[str]:
    """The passage's sentences, then each pair of adjacent sentences: what a claim is compared with."""
    ps = sentences(passage) or [passage]
    return ps + [f"{a} {b}" for a, b in zip(ps, ps[1:])]


def supports(cos: float, sentence: str, source: str) -> bool:
    """The rule, given c = the best cosine of `sentence` to a window of the cited text `source`
    (passages and their headers)."""
    if not numbers(sentence) <= numbers(source):
        return False
    return cos >= COS_STRONG or (cos >= COS_WEAK and lexical_overlap(content_terms(sentence), source) >= LEX_MIN)
