"""Stack Exchange data dumps (a folder with Posts.xml and Users.xml, or the site's .7z or .zip): one thread per question.

Each question, answer and comment is its own unit, credited to its author (``OwnerUserId`` /
``UserId`` through Users.xml, else the ``OwnerDisplayName`` / ``UserDisplayName`` a deleted user
left). Roles: the question is the asker's (role question, as are the asker's own comments); answers
are role answer with ``accepted`` and ``votes`` (the score), the accepted answer first, then by
score; comments are role comment. Closed questions keep their answers and are titled ``[closed]``
(``[duplicate]`` when closed as a duplicate); community wiki posts stay credited to their first
author and say so in their context line; posts of the Community bot (user -1) are credited to
nobody. Links point to the original question, answer or comment when the sidecar gives the site's
``site_url``.

What each file of the dump contributes (only Posts.xml is required for the threads, Users.xml for
the profiles; the others are read when present):

- ``Posts.xml``: questions (``PostTypeId`` 1) and answers (2), their bodies, scores, tags,
  ``AcceptedAnswerId``, ``ClosedDate`` and ``CommunityOwnedDate``; tag wikis (4, 5) only with Tags.xml.
- ``Users.xml``: authors' display names, and people profiles (through ``people.load_people``):
  DisplayName, AboutMe as the bio, Location, WebsiteUrl as the profile url and the reputation, for
  the users who wrote a post or comment in the dump.
- ``Comments.xml``: the comments on questions and answers.
- ``Badges.xml``: the profile's bio ends with the user's badges, gold first ("Badges: gold Great
  Answer; silver python (tag), Good Answer ×3; ..."; at most ``MAX_BADGES_LISTED`` named), and the
  tags of tag-based badges become the profile's ``expertise`` (at most ``MAX_EXPERTISE``).
- ``PostLinks.xml``: duplicates (``LinkTypeId`` 3) and linked questions (1). The thread's meta gets
  ``duplicate_of``, ``duplicates`` and ``linked`` (question id, title when known, url); a duplicate's
  question says "Duplicate of: <original's title>" in its context line.
- ``PostHistory.xml``: posts deleted (type 12 not undone by a later 13) are not indexed; the close
  date (type 10 not undone by a later 11) when Posts.xml has no ``ClosedDate``, and the close reason
  (meta ``close_reason``); the originals a duplicate closure names; the users other than the
  author who edited a post (types 4-9; meta ``editors``: unit id → names; authorship never moves);
  the author of a post whose Posts.xml row names none (its initial revision's user).
- ``Votes.xml``: a post without a ``Score`` gets up votes (``VoteTypeId`` 2) minus down votes (3);
  a question without ``AcceptedAnswerId`` gets the answer its asker accepted (1). A Score or an
  AcceptedAnswerId in Posts.xml always wins.
- ``Tags.xml``: each tag with a wiki excerpt (or wiki) becomes a document ``<key>#tags/<name>``,
  credited to nobody (tag wikis are written by many).

Every file is read with ``iterparse`` and each row is cleared once read, so the parse does not grow
with the dump; from Badges, Votes, PostHistory and PostLinks only bounded tallies per post or user
are kept. A .7z dump has its XML files unpacked into a private temporary folder; a .zip dump is read
straight from the archive. Either must hold the XML files at its top or in the one folder that holds
everything, within ASKCOLLEAGUE_ARCHIVE_MAX_MB unpacked (member names pointing outside the archive,
links and encrypted members are not read).
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterable, Iterator, Union
from xml.etree.ElementTree import ParseError

from ..errors import LoadError
from ..models import AuthorRef, Block, Doc, Person, person_id_for
from .archives import _SKIP, _limits, safe_name
from .base import check_size, check_zip, display, norm_date
from .meta import read_sidecar
from .threads import clean_text, html_to_text, reply_context

FILES = ("Posts.xml", "Users.xml", "Comments.xml", "Badges.xml", "PostLinks.xml", "PostHistory.xml",
         "Votes.xml", "Tags.xml")
THREAD_FILES = ("Posts.xml", "Users.xml", "Comments.xml", "PostLinks.xml", "PostHistory.xml", "Votes.xml",
                "Tags.xml")
PEOPLE_FILES = ("Posts.xml", "Users.xml", "Comments.xml", "Badges.xml")
COMMUNITY = "-1"
MAX_BADGES_LISTED = 12  # badges named on one profile (the rest are counted)
MAX_BADGE_KINDS = 500  # distinct badges tallied per user (a bound on memory, far above real users)
MAX_EXPERTISE = 10  # tags of tag-based badges in one profile's expertise
MAX_LINKS = 20  # duplicates / linked questions kept per question
MAX_EDITORS = 10  # editors kept per post
BADGE_CLASSES = {1: "gold", 2: "silver", 3: "bronze"}
# CloseReasonId (PostHistory type 10's Comment): the old reasons, then those since 2013
CLOSE_REASONS = {"1": "exact duplicate", "2": "off-topic", "3": "subjective and argumentative",
                 "4": "not a real question", "7": "too localized", "10": "general reference",
                 "20": "noise or pointless", "101": "duplicate", "102": "off-topic",
                 "103": "unclear what you're asking", "104": "too broad", "105": "primarily opinion-based"}
DUPLICATE_REASONS = ("1", "101")
EDIT_TYPES = ("4", "5", "6", "7", "8", "9")  # edits of title, body, tags and their rollbacks
INITIAL_TYPES = ("1", "2", "3")


@dataclass
class _Member:
    """A dump file inside a .zip, read straight from the archive."""

    zf: zipfile.ZipFile
    info: zipfile.ZipInfo
    name: str  # the dump file's name, e.g. Posts.xml

    def open(self) -> IO[bytes]:
        return self.zf.open(self.info)


DumpFile = Union[Path, _Member]


def _find(names: Iterable[str]) -> dict[str, str]:
    """{'Posts.xml': name as listed, ...}: the dump files at the top of a listing, or in the one
    folder that holds everything (an archive of the dump's folder); names pointing outside the
    archive are passed over."""
    entries = [(n, raw) for raw in names if (n := safe_name(raw)) is not None and not _SKIP.search(n)]
    tops = {n.split("/", 1)[0] for n, _ in entries if "/" in n}
    at_top = [(n, raw) for n, raw in entries if "/" not in n and n not in tops]  # (not a folder's own entry)
    wanted = {f.lower(): f for f in FILES}
    if not any(n.lower() in wanted for n, _ in at_top) and len(tops) == 1 and not at_top:
        root = next(iter(tops)) + "/"
        level = [(n[len(root):], raw) for n, raw in entries if n.startswith(root) and "/" not in n[len(root):]]
    else:
        level = at_top
    out: dict[str, str] = {}
    for n, raw in sorted(level):
        f = wanted.get(n.lower())
        if f and f not in out:
            out[f] = raw
    return out


def is_dump_dir(path: Path) -> bool:
    found = _find([p.name for p in path.iterdir() if p.is_file()]) if path.is_dir() else {}
    return "Posts.xml" in found and "Users.xml" in found


def is_dump_7z(path: Path) -> bool:
    try:
        import py7zr  # (lazy: loaded only when used, so start-up stays fast)

        with py7zr.SevenZipFile(path, mode="r") as z:
            found = _find(z.getnames())
    except Exception:  # not a readable .7z: the archive loader says why
        return False
    return "Posts.xml" in found


def is_dump_zip(path: Path) -> bool:
    """A .zip holding a dump: Posts.xml and Users.xml at its top or in the one folder it holds."""
    _limit, max_members = _limits()
    try:
        with open(path, "rb") as f:  # the member count first: no ZipInfo for each of a million members
            end = zipfile._EndRecData(f)
        if not end or end[zipfile._ECD_ENTRIES_TOTAL] > max_members:
            return False
        with zipfile.ZipFile(path) as z:
            found = _find(z.namelist())
    except Exception:  # not a readable zip: the archive loader says why
        return False
    return "Posts.xml" in found and "Users.xml" in found


def _too_big(total: int, limit: int) -> LoadError:
    return LoadError(f"the dump's XML files unpack to {total / 1e6:.0f} MB, over the {limit / 1e6:.0f} MB "
                     "allowed; raise ASKCOLLEAGUE_ARCHIVE_MAX_MB")


@contextlib.contextmanager
def _files(path: Path, max_bytes: int, wanted: tuple[str, ...] = FILES) -> Iterator[dict[str, DumpFile]]:
    """The dump's `wanted` XML files: the folder's own, the .zip's members (read in place), or the
    .7z's unpacked into a temporary folder."""
    if path.is_dir():
        found = _find([p.name for p in path.iterdir() if p.is_file()])
        yield {f: path / n for f, n in found.items() if f in wanted}
        return
    check_size(path, max_bytes)
    limit, max_members = _limits()
    if path.suffix.lower() == ".zip":
        with _zip_files(path, limit, max_members, wanted) as files:
            yield files
        return
    import py7zr  # (lazy: loaded only when used, so start-up stays fast)

    try:
        z = py7zr.SevenZipFile(path, mode="r", max_extract_size=limit)
    except Exception as e:
        raise LoadError(f"not a valid .7z file ({type(e).__name__}); download the dump again") from None
    with z, tempfile.TemporaryDirectory(prefix="askcolleague-se-") as tmp:
        infos = {i.filename: i for i in z.list()}
        found = {f: n for f, n in _find(z.getnames()).items()
                 if f in wanted and not getattr(infos.get(n), "is_symlink", False)}
        total = sum(infos[n].uncompressed or 0 for n in found.values() if n in infos)
        if total > limit:
            raise _too_big(total, limit)
        if found:
            try:
                z.extract(path=tmp, targets=list(found.values()))
            except Exception as e:
                raise LoadError(f"cannot unpack the dump ({type(e).__name__}); download it again") from None
        out: dict[str, DumpFile] = {}
        for f, n in found.items():
            p = Path(tmp) / safe_name(n)  # (found names are safe: _find passes over the others)
            if p.is_file() and not p.is_symlink():
                out[f] = p
        yield out


@contextlib.contextmanager
def _zip_files(path: Path, limit: int, max_members: int, wanted: tuple[str, ...]) -> Iterator[dict[str, DumpFile]]:
    check_zip(path, limit, "zip", "download the dump again or raise ASKCOLLEAGUE_ARCHIVE_MAX_MEMBERS / "
              "ASKCOLLEAGUE_ARCHIVE_MAX_MB", max_members=max_members)  # the member count before any ZipInfo
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        raise LoadError("not a valid .zip file; download the dump again") from None
    with z:
        out: dict[str, DumpFile] = {}
        for f, n in _find(z.namelist()).items():
            info = z.getinfo(n)
            if f not in wanted or info.is_dir() or stat.S_ISLNK(info.external_attr >> 16):
                continue
            if info.flag_bits & 0x1:
                raise LoadError(f"{f} is encrypted in the zip; unpack it with its password")
            out[f] = _Member(z, info, f)
        total = sum(m.info.file_size for m in out.values() if isinstance(m, _Member))
        if total > limit:  # (zipfile never inflates a member past its declared size)
            raise _too_big(total, limit)
        yield out


def rows(file: DumpFile) -> Iterator[dict[str, str]]:
    """The attributes of each ``<row>`` of a dump file, streamed: every row is cleared once read."""
    import defusedxml.ElementTree as SafeET  # (lazy: loaded only when used, so start-up stays fast)
    from defusedxml import DefusedXmlException  # (lazy: loaded only when used, so start-up stays fast)

    root = None
    src = None
    try:
        src = str(file) if isinstance(file, (str, os.PathLike)) else file.open()
        for event, el in SafeET.iterparse(src, events=("start", "end"), forbid_dtd=True):
            if root is None:
                root = el
            elif event == "end" and el.tag == "row":
                yield dict(el.attrib)
                el.clear()
                root.clear()
    except DefusedXmlException:
        raise LoadError(f"{file.name} uses a DTD or entities, which are refused for safety; download the dump again") from None
    except ParseError as e:
        raise LoadError(f"{file.name} is malformed XML at line {e.position[0]}; download the dump again") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, OSError) as e:
        raise LoadError(f"cannot read {file.name} ({type(e).__name__}); download the dump again") from None
    finally:
        if src is not None and not isinstance(src, str):
            src.close()


def _site(path: Path) -> tuple[str, str | None]:
    """(site id for handles, base URL or None) from the sidecar's ``site_url``, else the dump's name."""

    raw, _ = read_sidecar(path)
    url = str(raw.get("site_url") or "").strip().rstrip("/") or None
    if url and not re.match(r"^https?://", url):
        url = "https://" + url
    name = re.sub(r"^https?://", "", url) if url else re.sub(r"\.(7z|zip)$", "", path.name, flags=re.I)
    return name, url


@dataclass
class _Post:
    id: str
    kind: str  # "1" question, "2" answer
    text: str
    owner: str | None
    owner_name: str | None
    date: str | None
    score: int | None
    parent: str | None = None
    title: str | None = None
    tags: list[str] = field(default_factory=list)
    accepted: str | None = None
    closed: str | None = None
    wiki: bool = False
    views: int | None = None
    comments: list[dict] = field(default_factory=list)


@dataclass
class _History:
    """What PostHistory.xml says about one post (bounded: no revision text is kept)."""

    deleted: tuple | None = None  # (order, type) of the last delete (12) or undelete (13)
    closed: tuple | None = None  # (order, type, date, reason id, [original question ids]) of the last 10 / 11
    editors: list[tuple[str | None, str]] = field(default_factory=list)  # (user id, name), not the author
    first: tuple[str | None, str | None] | None = None  # (user id, name) of the initial revision


def _int(v: str | None) -> int | None:
    try:
        return int(v) if v is not None else None
    except ValueError:
        return None


def _tags(v: str | None) -> list[str]:
    return [t for t in re.split(r"[<>|]+", v or "") if t]


def _name(v: str | None) -> str | None:
    return " ".join((v or "").split()) or None


def _order(r: dict[str, str]) -> tuple[str, int]:
    """A history or vote row's place in time: its date, then its id (rows of one second)."""
    return norm_date(r.get("CreationDate")) or "", _int(r.get("Id")) or 0


def load(path: Path, key: str, max_bytes: int) -> list[Doc]:
    site, url = _site(path)
    with _files(path, max_bytes, THREAD_FILES) as files:
        if "Posts.xml" not in files:
            raise LoadError("no Posts.xml in the Stack Exchange dump; download the site's dump again")
        users = {r["Id"]: r.get("DisplayName") for r in rows(files["Users.xml"]) if r.get("Id")} \
            if "Users.xml" in files else {}
        posts: dict[str, _Post] = {}
        wiki_texts: dict[str, str] = {}  # tag wiki (excerpt) posts, kept only when Tags.xml can name them
        for r in rows(files["Posts.xml"]):
            kind = r.get("PostTypeId")
            if kind in ("4", "5") and "Tags.xml" in files and r.get("Id"):
                wiki_texts[r["Id"]] = html_to_text(r.get("Body") or "")
            if kind not in ("1", "2") or not r.get("Id"):
                continue  # tag wikis, moderator nominations, privilege pages
            posts[r["Id"]] = _Post(
                id=r["Id"], kind=kind, text=html_to_text(r.get("Body") or ""), owner=r.get("OwnerUserId"),
                owner_name=r.get("OwnerDisplayName"), date=norm_date(r.get("CreationDate")), score=_int(r.get("Score")),
                parent=r.get("ParentId"), title=_name(r.get("Title")), tags=_tags(r.get("Tags")),
                accepted=r.get("AcceptedAnswerId"), closed=norm_date(r.get("ClosedDate")),
                wiki=bool(r.get("CommunityOwnedDate")), views=_int(r.get("ViewCount")))
        history = _read_history(files["PostHistory.xml"], posts) if "PostHistory.xml" in files else {}
        close_info, gone = _apply_history(posts, history, users)
        links = _read_links(files["PostLinks.xml"], posts, gone) if "PostLinks.xml" in files else {}
        for qid, info in close_info.items():  # the originals a duplicate closure names, when PostLinks lacks them
            for orig in info["originals"]:
                _link(links, posts, gone, qid, "duplicate_of", orig)
                _link(links, posts, gone, orig, "duplicates", qid)
        if "Votes.xml" in files:
            _apply_votes(files["Votes.xml"], posts)
        if "Comments.xml" in files:
            for r in rows(files["Comments.xml"]):
                p = posts.get(r.get("PostId") or "")
                if p is not None and (r.get("Text") or "").strip():  # comments on posts not in the dump are dropped
                    p.comments.append({"id": r.get("Id"), "text": clean_text(r["Text"]), "user": r.get("UserId"),
                                       "name": r.get("UserDisplayName"), "date": norm_date(r.get("CreationDate")),
                                       "score": _int(r.get("Score"))})
        tag_docs = _tag_docs(files["Tags.xml"], wiki_texts, key, site, url) if "Tags.xml" in files else []
    answers: dict[str, list[_Post]] = {}
    for p in posts.values():
        if p.kind == "2" and p.parent in posts:
            answers.setdefault(p.parent, []).append(p)

    def author(uid: str | None, name: str | None) -> list[AuthorRef]:
        if uid == COMMUNITY:
            return []
        if uid and uid in users:
            return [AuthorRef(name=users[uid] or name, handle=f"stackexchange:{site}/{uid}")]
        return [AuthorRef(name=" ".join(name.split()))] if name and name.strip() else []

    def ref(qid: str) -> dict:
        q = posts.get(qid)
        title = q.title if q is not None and q.kind == "1" else None
        return {"question_id": qid, **({"title": title} if title else {}),
                **({"url": f"{url}/questions/{qid}"} if url else {})}

    docs = []
    for q in (p for p in posts.values() if p.kind == "1"):
        qlinks = links.get(q.id, {})
        dups = [ref(i) for i in qlinks.get("duplicate_of", [])]
        mark = " [duplicate]" if dups and (q.closed or q.id in close_info) else " [closed]" if q.closed else ""
        title = (q.title or f"Question {q.id}") + mark
        asker = author(q.owner, q.owner_name)
        asker_name = asker[0].label() if asker else None
        qurl = f"{url}/questions/{q.id}" if url else None
        notes = ["Community wiki question"] if q.wiki else []
        if dups:
            notes.append("Duplicate of: " + "; ".join(d.get("title") or f"question {d['question_id']}" for d in dups))
        blocks = [Block(text=q.text, kind="post", authors=asker, unit_id=f"q{q.id}", date=q.date, url=qurl,
                        role="question", votes=q.score, context=". ".join(notes) or None)]
        blocks += _comments(q, q.id, asker, author, title, url)
        ranked = sorted(answers.get(q.id, []), key=lambda a: (a.id != q.accepted, -(a.score or 0), a.date or ""))
        for a in ranked:
            by = author(a.owner, a.owner_name)
            noun = ("Accepted answer" if a.id == q.accepted else "Answer") + (" (community wiki)" if a.wiki else "")
            blocks.append(Block(text=a.text, kind="comment", authors=by, unit_id=f"a{a.id}", date=a.date,
                                url=f"{url}/a/{a.id}" if url else None, reply_to=asker_name, role="answer",
                                accepted=a.id == q.accepted, votes=a.score,
                                context=reply_context(noun, by[0].label() if by else None, asker_name, title)))
            blocks += _comments(a, q.id, asker, author, title, url)
        blocks = [b for b in blocks if b.text.strip()]
        if not blocks:
            continue
        editors = {f"{'q' if p.kind == '1' else 'a'}{p.id}": names for p in [q, *ranked]
                   if (names := [n for _uid, n in history.get(p.id, _History()).editors])}
        close = close_info.get(q.id, {})
        meta = {"format": "stackexchange", "site": site, "question_id": q.id, "answers": len(ranked),
                **({"accepted_answer": q.accepted} if q.accepted in posts else {}),
                **({"closed": q.closed} if q.closed else {}),
                **({"close_reason": close["reason"]} if close.get("reason") and q.closed else {}),
                **({"community_wiki": True} if q.wiki else {}),
                **({"views": q.views} if q.views is not None else {}),
                **({"duplicate_of": dups} if dups else {}),
                **{k: [ref(i) for i in qlinks[k]] for k in ("duplicates", "linked") if qlinks.get(k)},
                **({"editors": editors} if editors else {})}
        docs.append(Doc(doc_id=f"{key}#{q.id}", source=key, title=title, source_type="post", blocks=blocks,
                        authors=asker, date=q.date, url=qurl, tags=q.tags, meta=meta))
    docs += tag_docs
    if not docs:
        raise LoadError("no questions in Posts.xml; check it is a Stack Exchange dump")
    return docs


def _read_history(file: DumpFile, posts: dict[str, _Post]) -> dict[str, _History]:
    """Deletions, closures, editors and initial authors of the posts in the dump, from PostHistory.xml."""
    out: dict[str, _History] = {}
    for r in rows(file):
        pid, t = r.get("PostId") or "", r.get("PostHistoryTypeId")
        p = posts.get(pid)
        if p is None:
            continue
        h = out.get(pid)
        if h is None:
            h = out[pid] = _History()
        if t in ("12", "13"):
            o = _order(r)
            if h.deleted is None or o >= h.deleted[0]:
                h.deleted = (o, t)
        elif t in ("10", "11"):
            o = _order(r)
            if h.closed is None or o >= h.closed[0]:
                reason = (r.get("Comment") or "").strip()
                h.closed = (o, t, norm_date(r.get("CreationDate")), reason,
                            _originals(r.get("Text")) if t == "10" and reason in DUPLICATE_REASONS else [])
        elif t in INITIAL_TYPES:
            if h.first is None and (r.get("UserId") or r.get("UserDisplayName")):
                h.first = (r.get("UserId"), _name(r.get("UserDisplayName")))
        elif t in EDIT_TYPES and len(h.editors) < MAX_EDITORS:
            uid, name = r.get("UserId") or None, _name(r.get("UserDisplayName"))
            if uid == COMMUNITY or not (uid or name):
                continue  # the Community bot's automatic edits (and anonymous ones) are nobody's
            if (uid, name) not in h.editors and all(uid != u if uid else name != n for u, n in h.editors):
                h.editors.append((uid, name or ""))
    return out


def _originals(text: str | None) -> list[str]:
    """The ``OriginalQuestionIds`` a duplicate closure's history row records (JSON in its Text)."""
    if not text or len(text) > 20_000:
        return []
    try:
        data = json.loads(text)
    except ValueError:
        return []
    ids = data.get("OriginalQuestionIds") if isinstance(data, dict) else None
    return [str(i) for i in ids[:MAX_LINKS] if isinstance(i, (int, str))] if isinstance(ids, list) else []


def _apply_history(posts: dict[str, _Post], history: dict[str, _History], users: dict[str, str | None]
                   ) -> tuple[dict[str, dict], set[str]]:
    """Drop deleted posts, fill authors and closures from the history, and settle who edited what.
    Returns ({question id: {"reason": ..., "originals": [...]}} for the questions the history closes,
    the ids of the posts deleted)."""
    closes: dict[str, dict] = {}
    gone: set[str] = set()
    for pid, h in history.items():
        p = posts[pid]
        if h.deleted is not None and h.deleted[1] == "12":
            del posts[pid]
            gone.add(pid)
            continue
        if not p.owner and not (p.owner_name or "").strip() and h.first is not None:
            p.owner, p.owner_name = h.first
        if h.closed is not None and h.closed[1] == "10" and p.kind == "1":
            _o, _t, date, reason, originals = h.closed
            p.closed = p.closed or date
            closes[pid] = {"reason": CLOSE_REASONS.get(reason, reason[:200]) or None, "originals": originals}
        h.editors = [(uid, (users.get(uid) if uid else None) or name) for uid, name in h.editors
                     if not (uid and uid == p.owner) and not (not uid and name == _name(p.owner_name))]
        h.editors = [(uid, name) for uid, name in h.editors if name]
    return closes, gone


def _read_links(file: DumpFile, posts: dict[str, _Post], gone: set[str]) -> dict[str, dict[str, list[str]]]:
    """{question id: {"duplicate_of" | "duplicates" | "linked": [question ids]}} from PostLinks.xml
    (a link from or to an answer is its question's; links to deleted posts are dropped)."""
    def question(pid: str) -> str:
        p = posts.get(pid)
        return p.parent if p is not None and p.kind == "2" and p.parent else pid

    out: dict[str, dict[str, list[str]]] = {}
    for r in rows(file):
        a, b = question(r.get("PostId") or ""), question(r.get("RelatedPostId") or "")
        if r.get("LinkTypeId") == "3":
            _link(out, posts, gone, a, "duplicate_of", b)
            _link(out, posts, gone, b, "duplicates", a)
        elif r.get("LinkTypeId") == "1":
            _link(out, posts, gone, a, "linked", b)
            _link(out, posts, gone, b, "linked", a)
    return out


def _link(links: dict[str, dict[str, list[str]]], posts: dict[str, _Post], gone: set[str], qid: str, kind: str,
          other: str) -> None:
    """Record that question `qid` has `other` among its `kind` (at most MAX_LINKS)."""
    if qid not in posts or not other or other == qid or other in gone:
        return  # links of posts not in the dump (deleted ones included) are nobody's
    lst = links.setdefault(qid, {}).setdefault(kind, [])
    if other not in lst and len(lst) < MAX_LINKS:
        lst.append(other)


def _apply_votes(file: DumpFile, posts: dict[str, _Post]) -> None:
    """Scores of the posts without one (up minus down votes), and accepted answers of the questions
    without one (the asker's accept vote, the latest if several)."""
    tally = {pid: [0, 0] for pid, p in posts.items() if p.score is None}
    open_q = {pid for pid, p in posts.items() if p.kind == "1" and not p.accepted}
    accepts: dict[str, tuple] = {}  # question id: (order, answer id)
    if not tally and not open_q:
        return
    for r in rows(file):
        pid, t = r.get("PostId") or "", r.get("VoteTypeId")
        if t in ("2", "3") and pid in tally:
            tally[pid][t == "3"] += 1
        elif t == "1" and (p := posts.get(pid)) is not None and p.kind == "2" and p.parent in open_q:
            o = _order(r)
            if p.parent not in accepts or o >= accepts[p.parent][0]:
                accepts[p.parent] = (o, pid)
    for pid, (up, down) in tally.items():
        posts[pid].score = up - down
    for qid, (_o, aid) in accepts.items():
        posts[qid].accepted = aid


def _tag_docs(file: DumpFile, texts: dict[str, str], key: str, site: str, url: str | None) -> list[Doc]:
    """One document per tag with a wiki excerpt or wiki, credited to nobody."""
    docs = []
    for r in rows(file):
        name = (r.get("TagName") or "").strip()
        parts = [(i, texts.get(i or "", "")) for i in (r.get("ExcerptPostId"), r.get("WikiPostId"))]
        parts = [(i, t) for i, t in parts if t.strip()]
        if not name or not parts:
            continue
        turl = f"{url}/tags/{name}/info" if url else None
        blocks = [Block(text=t, kind="document", unit_id=f"t{i}", url=turl, role="document",
                        section="Excerpt" if i == r.get("ExcerptPostId") else "Tag wiki") for i, t in parts]
        docs.append(Doc(doc_id=f"{key}#tags/{name}", source=key, title=f"Tag [{name}] on {site}",
                        source_type="document", blocks=blocks, url=turl, tags=[name],
                        meta={"format": "stackexchange", "site": site, "tag": name,
                              **({"questions": _int(r.get("Count"))} if _int(r.get("Count")) is not None else {})}))
    return docs


def _comments(post: _Post, qid: str, asker: list[AuthorRef], author, title: str, url: str | None) -> list[Block]:
    owner = author(post.owner, post.owner_name)
    to = owner[0].label() if owner else None
    who = {(a.handle or a.name or "").casefold() for a in asker}
    out = []
    for c in sorted(post.comments, key=lambda c: c["date"] or ""):
        by = author(c["user"], c["name"])
        mine = bool(by) and {(a.handle or a.name or "").casefold() for a in by} <= who
        out.append(Block(text=c["text"], kind="comment", authors=by, unit_id=f"c{c['id']}", date=c["date"],
                         url=f"{url}/questions/{qid}#comment{c['id']}_{post.id}" if url else None, reply_to=to,
                         role="question" if mine else "comment", votes=c["score"],
                         context=reply_context("Comment", by[0].label() if by else None, to, title)))
    return out


def load_users(path: Path, max_bytes: int) -> list[Person]:
    """People profiles of the users who wrote a post or comment in the dump (path: the dump folder,
    its Users.xml, or the .7z or .zip), with their badges when the dump has Badges.xml."""
    dump = path.parent if path.is_file() and path.name.lower() == "users.xml" else path
    site, url = _site(dump)
    people = []
    with _files(dump, max_bytes, PEOPLE_FILES) as files:
        if "Users.xml" not in files:
            raise LoadError("no Users.xml in the Stack Exchange dump; download the site's dump again")
        active: set[str] = set()
        for name, attr in (("Posts.xml", "OwnerUserId"), ("Comments.xml", "UserId")):
            if name in files:
                active.update(r[attr] for r in rows(files[name]) if r.get(attr))
        active.discard(COMMUNITY)
        badges = _read_badges(files["Badges.xml"], active) if "Badges.xml" in files else {}
        for r in rows(files["Users.xml"]):
            uid, name = r.get("Id"), _name(r.get("DisplayName"))
            if not uid or uid == COMMUNITY or uid not in active or not name:
                continue
            rep = _int(r.get("Reputation"))
            handle = f"stackexchange:{site}/{uid}"
            about = html_to_text(r.get("AboutMe") or "")
            listed, expertise = _badge_summary(badges.get(uid, {}))
            bio = "\n\n".join(x for x in (about, listed) if x) or None
            web = (r.get("WebsiteUrl") or "").strip() or (f"{url}/users/{uid}" if url else None)
            p = Person(name=name, title=f"{rep:,} reputation on {site}" if rep is not None else None,
                       location=(r.get("Location") or "").strip() or None, bio=bio, url=web,
                       expertise=expertise, handles={"stackexchange": f"{site}/{uid}"}, has_profile=True,
                       source=f"{display(dump)}!/Users.xml")
            p.person_id = person_id_for(handle=handle)
            people.append(p)
    return people


def _read_badges(file: DumpFile, active: set[str]) -> dict[str, dict[tuple[int, str, bool], int]]:
    """{user id: {(class, badge name, tag based): times awarded}} for the users in `active`."""
    out: dict[str, dict[tuple[int, str, bool], int]] = {}
    for r in rows(file):
        uid, name = r.get("UserId"), _name(r.get("Name"))
        if uid not in active or not name:
            continue
        cls = _int(r.get("Class"))
        k = (cls if cls in BADGE_CLASSES else 3, name[:100], (r.get("TagBased") or "").strip().lower() == "true")
        mine = out.setdefault(uid, {})
        if k in mine or len(mine) < MAX_BADGE_KINDS:
            mine[k] = mine.get(k, 0) + 1
    return out


def _badge_summary(badges: dict[tuple[int, str, bool], int]) -> tuple[str, list[str]]:
    """("Badges: gold Great Answer; silver python (tag), Good Answer ×3; ...", tags of tag badges)."""
    ranked = sorted(badges.items(), key=lambda kv: (kv[0][0], -kv[1], kv[0][1].casefold()))
    expertise: list[str] = []
    for (_cls, name, tag), _n in ranked:
        if tag and name not in expertise and len(expertise) < MAX_EXPERTISE:
            expertise.append(name)
    if not ranked:
        return "", expertise
    shown, groups = ranked[:MAX_BADGES_LISTED], []
    for cls, label in BADGE_CLASSES.items():
        names = [f"{name}{' (tag)' if tag else ''}{f' ×{n}' if n > 1 else ''}" for (c, name, tag), n in shown if c == cls]
        if names:
            groups.append(f"{label} {', '.join(names)}")
    more = sum(n for _k, n in ranked[MAX_BADGES_LISTED:])
    return "Badges: " + "; ".join(groups) + (f" (and {more} more)" if more else "") + ".", expertise
