"""Follow-up questions: "and in Berlin?" carries the previous question's content words along."""
from __future__ import annotations

import re

from ..text import STOPWORDS

FOLLOW_UP_WORDS = frozenset(
    "it its that this these those they them their theirs there he him his she her hers one ones same such".split())


CONTINUATION = re.compile(r"\s*(?:and|also|but|so|then|or|what about|how about)\b", re.I)


# words of a question that say how it is asked, not what about: not carried into a follow-up
QUESTION_FILLER = frozenset("long much many often must need needs get got make tell know please new use used "
                            "happen happens okay ok".split())


MIN_CONTENT_WORDS = 6


MAX_CARRIED = 8


_WORD = re.compile(r"[A-Za-z0-9][\w'+#.-]*[A-Za-z0-9+#]|[A-Za-z0-9]")


def content_words(text: str) -> list[str]:
    """The words of a question that are not stopwords, in order, once each (original case)."""
    out: dict[str, str] = {}
    for w in _WORD.findall(text):
        if w.lower() not in STOPWORDS and w.lower() not in out:
            out[w.lower()] = w
    return list(out.values())


def rewrite_query(question: str, previous: list[str]) -> str:
    """The query to search for `question`, given the earlier queries of the conversation (oldest first).

    Rule: a question is a follow-up when there is an earlier query, it has fewer than 6 content
    (non-stop) words, and it either refers back (it, that, this, they, them, those, there, he, she,
    his, her, their, one, ...), starts with a continuation (and, also, but, so, then, or, what about,
    how about) or has at most one content word. A follow-up gets the previous query's content words
    that it lacks appended (at most 8; not question fillers such as "long", "must", "need"). The
    previous query is itself already rewritten, so a chain of follow-ups keeps its topic. Anything
    else is searched as asked.
    """
    q = " ".join(question.split())
    if not previous or not q:
        return q
    words = content_words(q)
    if len(words) >= MIN_CONTENT_WORDS:
        return q
    refers = bool({w.lower() for w in re.findall(r"[A-Za-z']+", q)} & FOLLOW_UP_WORDS)
    if not (refers or CONTINUATION.match(q) or len(words) <= 1):
        return q
    have = {w.lower() for w in words}
    carried = [w for w in content_words(previous[-1])
               if w.lower() not in have and w.lower() not in QUESTION_FILLER][:MAX_CARRIED]
    return f"{q} {' '.join(carried)}" if carried else q
