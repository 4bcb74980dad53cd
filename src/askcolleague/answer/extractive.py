"""Extractive answers: whole sentences chosen from the retrieved passages (lexical pre-selection,
then the embedding model), cited with numbers; for an attribution question the origin of an echoed
idea is quoted first."""
from __future__ import annotations

import re

from ..models import role_of
from ..search import Hit
from ..text import (
    answerable_sentence, content_terms, restore_start, same_sentence, sentences, squash, table_rows,
)
from .questions import AGREEMENT, QUANTITY, QUANTITY_QUESTION
from .result import Answer, Citation, cited_authors

MAX_SENTENCES = 4

POOL_PER_PASSAGE = 3  # sentences of one passage among the SENTENCE_POOL embedded

MAX_PER_PASSAGE = 2  # sentences of one passage in an answer

SENTENCE_POOL = 16  # sentences embedded per answer (after a cheap lexical pre-selection)

ECHO_COSINE = 0.80  # two sentences state the same idea (all-MiniLM-L6-v2: paraphrases score ~0.8-0.95)

ECHO_OVERLAP = 0.6  # ... or share this share of their content words

ECHO_ANSWERS, ECHO_RELATED = 0.10, 0.35  # ... or, in the same thread, states what was asked nearly as well
# (cosine to the question's statement within 0.10 of the best sentence's) and is related to it (pairwise cosine >= 0.35)

_GROUPED = re.compile(r"(?<![\d,])\d{1,3}(?:,\d{3})+(?![\d,])")  # 5,000 or 1,200,000


def _terms(text: str) -> set[str]:
    """Content terms, with numbers written with thousands separators read whole: content_terms splits
    "$5,000" into "5" (dropped) and "000", so "$5,000" and "$38,000" would match alike; the embedding model
    reads numbers poorly, so the lexical side has to read them exactly."""
    return content_terms(text) | {n.replace(",", "") for n in _GROUPED.findall(text)}


def _in_context(row: dict, sentence: str, header: str | None = None) -> str:
    head = row["title"] + (f" — {row['section']}" if row.get("section") else "")
    if header:  # a table row, read with its column names: "Priority: P1 · First response: 30 minutes"
        cells, names = sentence.split(" | "), header.split(" | ")
        if len(cells) == len(names):
            sentence = " · ".join(f"{n}: {c}" for n, c in zip(names, cells))
    return f"{head}: {sentence}"


class ExtractiveAnswers:
    """Answers quoted from the passages: whole sentences, cited, the origin of an echoed idea first
    (a mixin of Assistant)."""

    # -- extractive answer -----------------------------------------------------------------
    def _whole_sentences(self, hits: list[Hit]) -> None:
        """Give each passage that starts mid-sentence (cut at a chunk boundary) the start of that
        sentence from the chunk before it in the same unit, so that no answer sentence, and no cited
        passage, begins mid-sentence; where it cannot be restored the fragment is marked (not used)."""
        todo = [h.row for h in hits if h.row.get("position") and h.row.get("restored") is None]
        near = self.index.store.chunks_at((r["doc_id"], r["position"] - d) for r in todo for d in (1, 2))
        for r in todo:
            prev, before = near.get((r["doc_id"], r["position"] - 1)), near.get((r["doc_id"], r["position"] - 2))
            if prev is None or prev.get("unit_id") != r.get("unit_id"):
                continue
            prev_starts = before is None or before.get("unit_id") != r.get("unit_id")  # prev opens its unit
            prefix, cut = restore_start(prev["text"], r["text"], prev_starts)
            r["restored"] = prefix
            if prefix:
                r["text"] = prefix + r["text"].lstrip()
            elif cut:
                r["cut_start"] = True

    def _extractive(self, question: str, qterms: set[str], qvec, hits: list[Hit], mode: str,
                    groups: list[str] | None = None, questions_ok: bool = False) -> Answer:
        cands: list[tuple[int, str]] = []  # (hit index, sentence)
        originals = {}  # unit id -> [(hit index, sentence)] of the messages that quotes come from
        quoted: dict[tuple[int, str], float] = {}  # an original's sentence -> the cosine of the retrieved quote of it
        for hi, h in enumerate(hits):
            if h.row.get("unit_id") and not h.row.get("quoted_from"):
                originals.setdefault(h.row["unit_id"], []).extend((hi, s) for s in sentences(h.row["text"]))
        for hi, h in enumerate(hits):
            sents = sentences(h.row["text"])
            if h.row.get("quoted_from"):
                # a quoted sentence found in its original message is the original's whole sentence
                # (a quote often starts mid-sentence: "> put the bucket in us-west-2, ...")
                source = originals.get(h.row["quoted_from"], [])
                whole = [next(((oi, o) for oi, o in source if squash(s) in squash(o)), (hi, s)) for s in sents]
                cands.extend(c for c in dict.fromkeys(whole) if c[0] != hi and answerable_sentence(c[1]))
                for c in whole:
                    if c[0] != hi and h.dense is not None:
                        quoted[c] = max(quoted.get(c, -1.0), h.dense)
                sents = [s for (oi, _), s in zip(whole, sents) if oi == hi and not s[:1].islower()]
            if sents and not re.search(r"[.!?:;)\"'’”]\s*$", h.row["text"]):
                sents = sents[:-1]  # the chunk was cut mid-sentence; the next chunk restores it whole
            if sents and h.row.get("cut_start"):
                sents = sents[1:]  # starts mid-sentence and the start could not be restored
            for s in sents:
                if answerable_sentence(s) or (questions_ok and answerable_sentence(s.rstrip("?") + ".")):
                    cands.append((hi, s))  # ("who asked X?": the question asked is the statement)
        if not cands:
            return Answer(question, "", True, "extractive", None, [], [], [], {}, retrieval_mode=mode)
        # Stage 1 (cheap): lexical overlap and passage rank keep the most promising sentences, plus
        # the opening sentences of the best passage; only these are embedded (the model is the cost).
        best_cos = max((h.dense for h in hits if h.dense is not None), default=None)

        def relevance(hi: int) -> float:  # the passage's own relevance: its cosine to the best's, else its rank
            # (linear, on the scale of the sentence's own cosine: the people ranking's exp((cos - best) / 0.05)
            # made a passage 0.05 below the best lose more than a 0.2 lead in its sentence's own similarity)
            h = hits[hi]
            if h.dense is not None and best_cos is not None and best_cos > 0:
                return max(h.dense, 0.0) / best_cos
            return 1.0 / (1.0 + 0.5 * hi)

        rel = [relevance(hi) for hi in range(len(hits))]
        for hi, h in enumerate(hits):  # a retrieved quote is evidence for the words of its original
            for oi, _ in originals.get(h.row.get("quoted_from") or "", [])[:1]:
                rel[oi] = max(rel[oi], rel[hi])
        top = max(range(len(hits)), key=lambda hi: rel[hi])
        qterms = qterms | {n.replace(",", "") for n in _GROUPED.findall(question)}
        lex = [len(qterms & _terms(s)) / len(qterms) if qterms else 0.0 for _, s in cands]
        # answer-type match (classic QA): "how many / how long / when ..." is answered by a sentence with a number
        typed = [QUANTITY.search(s) is not None for _, s in cands] if QUANTITY_QUESTION.search(question) else \
            [False] * len(cands)
        pre = sorted(range(len(cands)), key=lambda ci: -(0.6 * lex[ci] + 0.4 * rel[cands[ci][0]] + 0.2 * typed[ci]))
        opening = [ci for ci, (hi, _) in enumerate(cands) if hi == top][:3]
        per: dict[int, int] = {}
        pooled = []
        for ci in pre:  # at most POOL_PER_PASSAGE of one passage: every passage gets its best in
            if len(pooled) >= SENTENCE_POOL:
                break
            if per.get(cands[ci][0], 0) < POOL_PER_PASSAGE:
                per[cands[ci][0]] = per.get(cands[ci][0], 0) + 1
                pooled.append(ci)
        keep = sorted(set(pooled) | set(opening))
        cands = [cands[ci] for ci in keep]
        lex = [lex[ci] for ci in keep]
        # Stage 2: each kept sentence embedded with its passage's title and section (what it is about). For
        # "who said X" the sentence alone: it must state X itself, and in a thread every comment's context
        # repeats the thread's title ("Support would love this." scored 0.94 in context against the title's words)
        svecs = None
        if qvec is not None:
            rows = {hi: table_rows(hits[hi].row["text"]) for hi in {hi for hi, _ in cands}}
            svecs = self.embedder.embed_batch([s if questions_ok else _in_context(hits[hi].row, s, rows[hi].get(s))
                                               for hi, s in cands])
        scored = []
        for ci, (hi, s) in enumerate(cands):
            own = float(svecs[ci] @ qvec) if svecs is not None else 0.0
            # a quoted sentence was also retrieved through the quote, whose cosine read it with the words
            # quoted around it ("put the bucket in us-west-2, next to tools-ci. Cross-region reads ...")
            sim = max(own, quoted.get((hi, s), own))
            passage = rel[hi]
            score = 0.55 * sim + 0.25 * lex[ci] + 0.20 * passage + 0.05 * typed[ci]
            if hits[hi].row.get("quoted_from"):
                score -= 0.05  # prefer the original message to a quote of it
            if questions_ok and AGREEMENT.match(s):
                score -= 0.05  # "who said X": an agreeing reply repeats X; its source said it first
            if hits[hi].row.get("role") == "question" and not questions_ok:
                score -= 0.05  # the question's own words rarely answer it; its answers do
            scored.append((score, own, ci))
        scored.sort(reverse=True)  # (ties: the sentence that says more by itself first)
        scored = [(score, ci) for score, _, ci in scored]
        best = scored[0][0]
        chosen: list[int] = []
        for score, ci in scored:
            if len(chosen) >= MAX_SENTENCES or score < best * 0.75:
                break
            if any(self._repeats(hits, cands, svecs, ci, cj) for cj in chosen):
                continue
            if sum(cands[cj][0] == cands[ci][0] for cj in chosen) >= MAX_PER_PASSAGE:
                continue  # room for the best sentences of other passages
            chosen.append(ci)
        # keep passage order, then sentence order within a passage, for readability
        chosen.sort()
        ans = self._compose(question, hits, [(cands[ci][0], cands[ci][1]) for ci in chosen], mode, groups=groups)
        score_of = {ci: sc for sc, ci in scored}
        ans.picks = [(hits[cands[ci][0]], cands[ci][1], score_of[ci]) for ci in chosen]
        return ans

    @staticmethod
    def _repeats(hits: list[Hit], cands: list[tuple[int, str]], svecs, ci: int, cj: int) -> bool:
        """Whether answer sentence ci repeats cj: the same words, or (embedding cosine > 0.9) the same
        statement. Two sentences read in the same title and section share most of their embedding, so
        there only their words are compared (ECHO_OVERLAP of their content terms)."""
        (hi, a), (hj, b) = cands[ci], cands[cj]
        if same_sentence(a, b):
            return True
        ra, rb = hits[hi].row, hits[hj].row
        if (ra["title"], ra.get("section")) == (rb["title"], rb.get("section")):
            ta, tb = content_terms(a), content_terms(b)
            return bool(ta and tb) and len(ta & tb) / len(ta | tb) >= ECHO_OVERLAP
        return svecs is not None and float(svecs[ci] @ svecs[cj]) > 0.9

    def _origin(self, question: str, answer: Answer, pool: list[Hit], hits: list[Hit], mode: str,
                groups: list[str] | None, asking: bool = False, qvec=None) -> tuple[Answer, dict]:
        """For an attribution question: the earliest passage that states what the answer's best
        sentence states, and the later ones that repeat it (echoes: a quote, a paraphrase, "as you
        said"). Candidates are the sentences of the top passages sharing content words with the
        answer's sentence; one is the same idea when its embedding's cosine to it is at least
        ECHO_COSINE or it shares ECHO_OVERLAP of its content words. The earliest by date (then by
        position in a thread) is the origin. An extractive answer then quotes and cites the origin
        instead of an echo; the people ranking puts its author first and names the others.
        """
        asked = [t for t in answer.picks if t[1].rstrip().endswith("?")] if asking else []
        best_hit, best_sent, best_score = max(asked or answer.picks, key=lambda t: t[2])  # "who asked": the question
        terms = content_terms(best_sent)
        if not terms:
            return answer, {}
        cands: list[tuple[float, Hit, str]] = []
        for h in pool[:20]:
            for sent in sentences(h.row["text"]):
                if h.id == best_hit.id and same_sentence(sent, best_sent):
                    continue
                other = content_terms(sent)
                if not other:
                    continue
                lex = len(terms & other) / len(terms | other)
                if lex >= 0.1 or any(h.id == p[0].id and sent == p[1] for p in answer.picks):
                    cands.append((lex, h, sent))
        cands.sort(key=lambda t: -t[0])
        cands = cands[:24]
        echoes: list[tuple[Hit, str]] = []
        if cands:
            vecs = self.embedder.embed_batch([best_sent] + [c[2] for c in cands])
            to_q = None if qvec is None else vecs @ qvec  # how well each states what was asked
            for i, ((lex, h, sent), v) in enumerate(zip(cands, vecs[1:]), 1):
                overlap = len(terms & content_terms(sent)) / len(terms)
                pair = float(v @ vecs[0])
                if pair >= ECHO_COSINE or overlap >= ECHO_OVERLAP and lex >= 0.4 or (
                        to_q is not None and to_q[i] >= to_q[0] - ECHO_ANSWERS and pair >= ECHO_RELATED
                        and h.row["doc_id"] == best_hit.row["doc_id"]):
                    echoes.append((h, sent))

        def when(item: tuple[Hit, str]) -> tuple:
            h = item[0]
            return (h.row.get("date") or "9999", h.row["doc_id"], h.row.get("position") or 0)

        group = [(best_hit, best_sent)] + echoes
        first_hit, first_sent = min(group, key=when)
        if first_hit.id == best_hit.id or when((first_hit, "")) >= when((best_hit, "")) or answer.mode != "extractive":
            first_hit, first_sent = best_hit, best_sent  # (a generated answer keeps its own citations)
        if answer.mode == "extractive" and answer.citations and answer.citations[0].chunk_id != first_hit.row["chunk_id"]:
            # the statement's origin is quoted and cited first: [1] is whom the people panel names
            hits = list(hits)
            if all(h.id != first_hit.id for h in hits):
                hits.append(first_hit)
            index = {h.id: i for i, h in enumerate(hits)}
            picks = [(first_hit, first_sent, score) if (h.id, sent) == (best_hit.id, best_sent) else (h, sent, score)
                     for h, sent, score in answer.picks]
            seen, unique = set(), []
            for h, sent, score in picks:
                if (h.id, sent) not in seen:
                    seen.add((h.id, sent))
                    unique.append((h, sent, score))
            unique.sort(key=lambda t: (t[0].id != first_hit.id, index[t[0].id]))
            new = self._compose(question, hits, [(index[h.id], sent) for h, sent, _ in unique], mode, groups=groups)
            new.picks = unique
            new.unsupported_sentences, new.fallback_reason = answer.unsupported_sentences, answer.fallback_reason
            answer = new
        links = self.index.store.links_for([h.id for h, _ in group])

        def authors(h: Hit) -> list[str]:
            return [pid for pid, role, _ in links.get(h.id, []) if role == "author"]

        def seen_names(h: Hit) -> list[str]:  # as the passage names its author (never a hidden profile's)
            return [a.get("name") or a.get("email") or "" for a in h.row.get("authors") or []]

        first_authors = authors(first_hit)
        later = [h for h, _ in sorted(group, key=when) if h.id != first_hit.id and set(authors(h)) - set(first_authors)]
        echo_authors = [pid for h in later for pid in authors(h) if pid not in first_authors]
        echo_names = [n for h in later for n in seen_names(h) if n and n not in seen_names(first_hit)]
        return answer, {"chunk_id": first_hit.row["chunk_id"], "authors": first_authors, "echo_authors": echo_authors,
                        "echo_names": list(dict.fromkeys(echo_names)),
                        "origin_name": next(iter(seen_names(first_hit)), None), "asking": asking}

    def _compose(self, question: str, hits: list[Hit], picks: list[tuple[int, str]], mode: str,
                 text: str | None = None, llm_mode: bool = False, groups: list[str] | None = None) -> Answer:
        """Number passages in order of first citation; list only cited ones; the rest are more results."""
        number: dict[int, int] = {}
        parts = []
        highlights: dict[int, list[str]] = {}
        for hi, s in picks:
            if hi not in number:
                number[hi] = len(number) + 1
            highlights.setdefault(hi, []).append(s)
            parts.append(f"{s} [{number[hi]}]")
        links = self.index.store.links_for([h.id for h in hits])
        # a section read by OCR is named "… (OCR)" by the loaders; its document's meta confirms it
        ocr = self.index.store.ocr_docs(h.row["doc_id"] for h in hits if (h.row.get("section") or "").endswith("(OCR)"))
        cites = [self._citation(hits[hi], n, links, highlights.get(hi, []), groups, ocr) for hi, n in
                 sorted(number.items(), key=lambda kv: kv[1])]
        more = [self._citation(h, 0, links, [], groups, ocr) for i, h in enumerate(hits) if i not in number]
        return Answer(question, text if text is not None else " ".join(parts), False,
                      "llm" if llm_mode else "extractive", None, cites, [], [], {}, more, retrieval_mode=mode)

    def _citation(self, h: Hit, n: int, links, highlights: list[str], groups: list[str] | None = None,
                  ocr_docs: set[str] = frozenset()) -> Citation:
        r = h.row
        return Citation(n=n, chunk_id=r["chunk_id"], doc_id=r["doc_id"], title=r["title"], section=r["section"],
                        text=r["text"], url=r["url"], source_type=r["source_type"], date=r["date"],
                        score=round(h.score, 6), authors=cited_authors(self.index.store, r, links, groups),
                        role=role_of(r["source_type"], r.get("role")), highlights=highlights,
                        ocr=r["doc_id"] in ocr_docs and (r.get("section") or "").endswith("(OCR)"))
