"""Who to ask: people ranked from the same evidence that answers the question (Balog et al.'s
Model 2 as the base; cited authors lead; attribution questions put the statement's origin first),
each with a short reason. See the README's "Who to ask" section for the formula."""
from __future__ import annotations

import datetime as dt
import math
import time

from ..models import Person
from ..search import Hit
from ..text import content_terms
from .result import Citation, PersonHit, as_seen

# question's statement within 0.10 of the best sentence's) and is related to it (pairwise cosine >= 0.35)
RELATED = 0.1  # a passage with rel(d) >= this counts as "on this" in a person's reason (cosine ~0.11 below the best)

ASKER_WEIGHT = 0.3  # a question's author asked about the topic: not (yet) its expert

def role_weight(row: dict) -> float:
    """How much a passage tells about its author's expertise, by its role in a Q&A thread: the
    person who asked is not the expert (0.3); an accepted answer counts 1.5, a voted one up to 1.5."""
    role = row.get("role")
    if role == "question":
        return ASKER_WEIGHT
    if role == "answer":
        if row.get("accepted"):
            return 1.5
        return 1.0 + min(max(row.get("votes") or 0, 0), 10) / 20
    return 1.0


class PeopleRanking:
    """The people to ask, ranked from the evidence that answers the question (a mixin of Assistant)."""

    # -- people ----------------------------------------------------------------------------
    def rank_people(self, pool: list[Hit], citations: list[Citation], qvec, limit: int = 5,
                    groups: list[str] | None = None, kind: str = "expertise",
                    support: dict[str, float] | None = None, origin: dict | None = None,
                    question: str = "") -> list[PersonHit]:
        """Who to ask, from the same evidence that answers: Balog et al. 2006 Model 2, with the cited
        authors leading.

        rel(d) ≈ p(q|d): a softmax-like weight of the chunk's cosine similarity to the question,
        exp((cos - cos_best) / 0.05), so passages far less relevant than the best add little (in bm25
        mode, the fused score normalised to the best). w(p, d) is 1/#authors for an author (half
        for words quoted from them in someone else's message) and 0.7 for a profile's own chunk;
        optional recency decay (ASKCOLLEAGUE_PEOPLE_HALF_LIFE_DAYS).

        Model 2 sums rel·w over the pool, so someone with many loosely related passages outweighs the
        person whose one passage answers. Here a person's pool evidence counts with diminishing
        weight — breadth(p) = Σ_i e_i / (i + 1) over their contributions e = rel·w, largest first —
        and the cited passages count by how well their sentences support the answer:
        cited(p) = Σ_{d cited} support(d) / support_best · w(p, d). Expertise questions rank by
        cited(p) + breadth(p); attribution questions ("who said X") by origin first (the author of
        the earliest passage stating the answer, see _origin), then 2·cited(p) + 0.3·breadth(p).

        With access control (`groups`), a card's title, team, link and email come from the profile
        only when the asker may see the profile; otherwise only the name and email the visible
        evidence carries (see as_seen).
        """
        if not pool:
            return []
        cited = {c.chunk_id: c.n for c in citations}
        support = support or {}
        s_best = max(support.values(), default=0.0) or 1.0
        links = self.index.store.links_for([h.id for h in pool])
        top = pool[0].score
        best_cos = max((h.dense for h in pool if h.dense is not None), default=None)
        half_life = float(self.settings.people_half_life_days or 0)
        today = time.time() / 86400.0
        contrib: dict[str, list[tuple[float, Hit, str]]] = {}
        cited_score: dict[str, float] = {}
        for h in pool:
            if best_cos is not None and h.dense is not None:
                rel = math.exp((h.dense - best_cos) / 0.05)
            else:
                rel = h.score / top
            if half_life and h.row.get("date"):
                try:

                    age = today - dt.datetime.fromisoformat(h.row["date"][:10]).timestamp() / 86400.0
                    rel *= math.pow(0.5, max(age, 0) / half_life)
                except ValueError:
                    pass
            quoted = bool(h.row.get("quoted_from"))
            if quoted:
                rel *= 0.5
            if kind != "attribution":
                rel *= role_weight(h.row)
            for pid, role, w in links.get(h.id, []):
                weight = w if role == "author" else 0.7 if role == "profile" else 0.0
                if weight <= 0:
                    continue
                contrib.setdefault(pid, []).append((rel * weight, h, role))
                if h.row["chunk_id"] in cited:
                    sup = support.get(h.row["chunk_id"], 0.5 * s_best) / s_best * weight * (0.5 if quoted else 1.0)
                    if kind != "attribution":
                        sup *= role_weight(h.row)
                    # expertise: every cited passage counts; attribution: the one that says it best
                    cited_score[pid] = max(cited_score.get(pid, 0.0), sup) if kind == "attribution" \
                        else cited_score.get(pid, 0.0) + sup
        origin = origin or {}
        first = set(origin.get("authors", []))
        echoed = set(origin.get("echo_authors", [])) - first
        scores: dict[str, float] = {}
        for pid, items in contrib.items():
            vals = sorted((e for e, _, _ in items), reverse=True)
            breadth = sum(v / (i + 1) for i, v in enumerate(vals))
            if kind == "attribution":
                scores[pid] = (3.0 if pid in first else 1.0 if pid in echoed else 0.0) \
                    + 2.0 * cited_score.get(pid, 0.0) + 0.3 * breadth
            else:
                scores[pid] = cited_score.get(pid, 0.0) + breadth
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        if not ranked:
            return []
        best = ranked[0][1]
        shown = self.index.store.visible_profiles([pid for pid, _ in ranked], groups)
        qterms = content_terms(question)
        out = []
        for pid, sc in ranked:
            if sc < best * 0.15:
                break
            p = self._people.get(pid) or self.index.store.person(pid)
            if p is None:
                continue
            if pid not in shown:
                p = as_seen(p, [h.row for _, h, _ in contrib[pid]])
            ev = []
            seen_docs = set()
            for _, h, _ in sorted(contrib[pid], key=lambda t: -t[0]):
                if h.row["doc_id"] in seen_docs or len(ev) >= 3:
                    continue
                seen_docs.add(h.row["doc_id"])
                ev.append({"chunk_id": h.row["chunk_id"], "n": cited.get(h.row["chunk_id"]),
                           "title": h.row["title"], "url": h.row["url"], "source_type": h.row["source_type"]})
            reason = self._reason(pid, p, contrib[pid], cited, origin, pid in first, pid in echoed, qterms)
            out.append(PersonHit(person_id=p.person_id, name=p.name, email=p.email, url=p.link(), title=p.title,
                                 team=p.team, score=round(sc, 4), evidence=ev, has_profile=p.has_profile,
                                 reason=reason))
        return out

    def _reason(self, pid: str, p: Person, items: list[tuple[float, Hit, str]], cited: dict[str, int],
                origin: dict, is_origin: bool, is_echo: bool, qterms: set[str]) -> str:
        """A short why for a person card, from their evidence: "said it first [1]; ...", "wrote the
        cited passage [2]", "wrote 4 passages on this, 2 cited", "profile lists kubernetes"."""
        authored = [(h, role) for e, h, role in items if role == "author" and not h.row.get("quoted_from")
                    and (e >= RELATED or h.row["chunk_id"] in cited)]
        units = {(h.row["doc_id"], h.row.get("unit_id")) for h, _ in authored}
        ns = sorted({cited[h.row["chunk_id"]] for h, _ in authored if h.row["chunk_id"] in cited})
        marks = ", ".join(f"[{n}]" for n in ns)
        parts = []
        later = [nm for nm in origin.get("echo_names", []) if nm != p.name] if is_origin else []
        is_origin = is_origin and bool(later)  # "first" only when someone else repeated it
        if origin.get("asking") and pid in origin.get("authors", []) and not is_origin:
            n = cited.get(origin.get("chunk_id", ""))
            parts.append("asked the question" + (f" [{n}]" if n else ""))
        if is_origin:
            n = cited.get(origin.get("chunk_id", ""))
            parts.append(("asked it first" if origin.get("asking") else "said it first") + (f" [{n}]" if n else ""))
            parts.append("later repeated by " + ", ".join(later))
        elif is_echo:
            parts.append("repeated it later" + (f" {marks}" if marks else "")
                         + (f" (first said by {origin['origin_name']})" if origin.get("origin_name") else ""))
        if not is_echo:
            if len(units) > max(len(ns), 1):
                parts.append(f"wrote {len(units)} passages on this" + (f", {len(ns)} cited ({marks})" if ns else ""))
            elif ns and not is_origin:
                parts.append(f"wrote the cited passage{'s' if len(ns) > 1 else ''} {marks}")
            elif units and not is_origin:
                parts.append("wrote a related passage")
        if not origin.get("asking") and any(h.row.get("role") == "question" for h, _ in authored):
            parts.append("asked about it")
        if any(h.row.get("role") == "answer" and h.row.get("accepted") for h, _ in authored):
            parts.append("wrote the accepted answer")
        if any(h.row.get("quoted_from") for _, h, role in items if role == "author"):
            parts.append("quoted in " + ("a cited passage" if any(h.row["chunk_id"] in cited for _, h, _ in items
                                                                   if h.row.get("quoted_from")) else "a reply"))
        if any(role == "profile" for _, _, role in items):
            hits = [e for e in p.expertise if content_terms(e) & qterms]
            parts.append(f"profile lists {', '.join(hits[:3])}" if hits else "profile matches the question")
        return "; ".join(parts)
