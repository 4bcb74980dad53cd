"""Stack Exchange data dumps (a folder with Posts.xml and Users.xml, or the site's .7z): one thread per question.

Each question, answer and comment is its own unit, credited to its author (``OwnerUserId`` /
``UserId`` through Users.xml, else the ``OwnerDisplayName`` / ``UserDisplayName`` a deleted user
left). Roles: the question is the asker's (role question, as are the asker's own comments); answers
are role answer with ``accepted`` and ``votes`` (the score), the accepted answer first, then by
score; comments are role comment. Closed questions keep their answers and are titled ``[closed]``;
community wiki posts stay credited to their first author and say so in their context line; posts
of the Community bot (user -1) are credited to nobody. Users.xml becomes people profiles (through
``people.load_people``): DisplayName, AboutMe as the bio, Location, WebsiteUrl as the profile url
and the reputation, for the users who wrote something in the dump. Links point to the original
question, answer or comment when the sidecar gives the site's ``site_url``. The XML files are read
with ``iterparse`` and each row is cleared once read, so the parse does not grow with the dump.
Badges, Tags, Votes, PostHistory and PostLinks are not needed and not read.
"""
from __future__ import annotations

import contextlib
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator
from xml.etree.ElementTree import ParseError

from ..errors import LoadError
from ..models import AuthorRef, Block, Doc, Person, person_id_for
from .archives import _limits, safe_name
from .base import check_size, display, norm_date
from .meta import read_sidecar
from .threads import clean_text, html_to_text, reply_context

FILES = ("Posts.xml", "Users.xml", "Comments.xml")
COMMUNITY = "-1"


def _find(names: list[str]) -> dict[str, str]:
    """{'Posts.xml': member name, ...} for the dump files at the top of a listing (or under one folder)."""
    out: dict[str, str] = {}
    for n in sorted(names, key=lambda s: s.count("/")):
        base = n.rsplit("/", 1)[-1]
        for f in FILES:
            if base.lower() == f.lower() and f not in out and n.count("/") <= 1:
                out[f] = n
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


@contextlib.contextmanager
def _files(path: Path, max_bytes: int) -> Iterator[dict[str, Path]]:
    """The dump's XML files on disk: the folder's own, or the .7z's unpacked into a temporary folder."""
    if path.is_dir():
        found = _find([p.name for p in path.iterdir() if p.is_file()])
        yield {f: path / n for f, n in found.items()}
        return
    import py7zr  # (lazy: loaded only when used, so start-up stays fast)


    check_size(path, max_bytes)
    limit, _members = _limits()
    try:
        z = py7zr.SevenZipFile(path, mode="r", max_extract_size=limit)
    except Exception as e:
        raise LoadError(f"not a valid .7z file ({type(e).__name__}); download the dump again") from None
    with z, tempfile.TemporaryDirectory(prefix="askcolleague-se-") as tmp:
        found = {f: n for f, n in _find(z.getnames()).items() if safe_name(n)}
        infos = {i.filename: i for i in z.list()}
        total = sum(infos[n].uncompressed or 0 for n in found.values() if n in infos)
        if total > limit:
            raise LoadError(f"the dump's XML files unpack to {total / 1e6:.0f} MB, over the {limit / 1e6:.0f} MB "
                            "allowed; raise ASKCOLLEAGUE_ARCHIVE_MAX_MB")
        try:
            z.extract(path=tmp, targets=list(found.values()))
        except Exception as e:
            raise LoadError(f"cannot unpack the dump ({type(e).__name__}); download it again") from None
        yield {f: Path(tmp) / n for f, n in found.items() if (Path(tmp) / n).is_file() and not (Path(tmp) / n).is_symlink()}


def rows(file: Path) -> Iterator[dict[str, str]]:
    """The attributes of each ``<row>`` of a dump file, streamed: every row is cleared once read."""
    import defusedxml.ElementTree as SafeET  # (lazy: loaded only when used, so start-up stays fast)
    from defusedxml import DefusedXmlException  # (lazy: loaded only when used, so start-up stays fast)

    root = None
    try:
        for event, el in SafeET.iterparse(str(file), events=("start", "end"), forbid_dtd=True):
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


def _site(path: Path) -> tuple[str, str | None]:
    """(site id for handles, base URL or None) from the sidecar's ``site_url``, else the dump's name."""

    raw, _ = read_sidecar(path)
    url = str(raw.get("site_url") or "").strip().rstrip("/") or None
    if url and not re.match(r"^https?://", url):
        url = "https://" + url
    name = re.sub(r"^https?://", "", url) if url else re.sub(r"\.7z$", "", path.name, flags=re.I)
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


def _int(v: str | None) -> int | None:
    try:
        return int(v) if v is not None else None
    except ValueError:
        return None


def _tags(v: str | None) -> list[str]:
    return [t for t in re.split(r"[<>|]+", v or "") if t]


def load(path: Path, key: str, max_bytes: int) -> list[Doc]:
    site, url = _site(path)
    with _files(path, max_bytes) as files:
        if "Posts.xml" not in files:
            raise LoadError("no Posts.xml in the Stack Exchange dump; download the site's dump again")
        users = {r["Id"]: r.get("DisplayName") for r in rows(files["Users.xml"])} if "Users.xml" in files else {}
        posts: dict[str, _Post] = {}
        for r in rows(files["Posts.xml"]):
            kind = r.get("PostTypeId")
            if kind not in ("1", "2") or not r.get("Id"):
                continue  # tag wikis, moderator nominations, privilege pages
            posts[r["Id"]] = _Post(
                id=r["Id"], kind=kind, text=html_to_text(r.get("Body") or ""), owner=r.get("OwnerUserId"),
                owner_name=r.get("OwnerDisplayName"), date=norm_date(r.get("CreationDate")), score=_int(r.get("Score")),
                parent=r.get("ParentId"), title=" ".join((r.get("Title") or "").split()) or None, tags=_tags(r.get("Tags")),
                accepted=r.get("AcceptedAnswerId"), closed=norm_date(r.get("ClosedDate")),
                wiki=bool(r.get("CommunityOwnedDate")), views=_int(r.get("ViewCount")))
        if "Comments.xml" in files:
            for r in rows(files["Comments.xml"]):
                p = posts.get(r.get("PostId") or "")
                if p is not None and (r.get("Text") or "").strip():  # comments on posts not in the dump are dropped
                    p.comments.append({"id": r.get("Id"), "text": clean_text(r["Text"]), "user": r.get("UserId"),
                                       "name": r.get("UserDisplayName"), "date": norm_date(r.get("CreationDate")),
                                       "score": _int(r.get("Score"))})
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

    docs = []
    for q in (p for p in posts.values() if p.kind == "1"):
        title = (q.title or f"Question {q.id}") + (" [closed]" if q.closed else "")
        asker = author(q.owner, q.owner_name)
        asker_name = asker[0].label() if asker else None
        qurl = f"{url}/questions/{q.id}" if url else None
        blocks = [Block(text=q.text, kind="post", authors=asker, unit_id=f"q{q.id}", date=q.date, url=qurl,
                        role="question", votes=q.score,
                        context="Community wiki question" if q.wiki else None)]
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
        meta = {"format": "stackexchange", "site": site, "question_id": q.id, "answers": len(ranked),
                **({"accepted_answer": q.accepted} if q.accepted in posts else {}),
                **({"closed": q.closed} if q.closed else {}), **({"community_wiki": True} if q.wiki else {}),
                **({"views": q.views} if q.views is not None else {})}
        docs.append(Doc(doc_id=f"{key}#{q.id}", source=key, title=title, source_type="post", blocks=blocks,
                        authors=asker, date=q.date, url=qurl, tags=q.tags, meta=meta))
    if not docs:
        raise LoadError("no questions in Posts.xml; check it is a Stack Exchange dump")
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
    its Users.xml, or the .7z)."""
    dump = path.parent if path.is_file() and path.name.lower() == "users.xml" else path
    site, url = _site(dump)
    people = []
    with _files(dump, max_bytes) as files:
        if "Users.xml" not in files:
            raise LoadError("no Users.xml in the Stack Exchange dump; download the site's dump again")
        active: set[str] = set()
        for name, attr in (("Posts.xml", "OwnerUserId"), ("Comments.xml", "UserId")):
            if name in files:
                active.update(r[attr] for r in rows(files[name]) if r.get(attr))
        for r in rows(files["Users.xml"]):
            uid, name = r.get("Id"), " ".join((r.get("DisplayName") or "").split())
            if not uid or uid == COMMUNITY or uid not in active or not name:
                continue
            rep = _int(r.get("Reputation"))
            handle = f"stackexchange:{site}/{uid}"
            bio = html_to_text(r.get("AboutMe") or "") or None
            web = (r.get("WebsiteUrl") or "").strip() or (f"{url}/users/{uid}" if url else None)
            p = Person(name=name, title=f"{rep:,} reputation on {site}" if rep is not None else None,
                       location=(r.get("Location") or "").strip() or None, bio=bio, url=web,
                       handles={"stackexchange": f"{site}/{uid}"}, has_profile=True,
                       source=f"{display(dump)}!/Users.xml")
            p.person_id = person_id_for(handle=handle)
            people.append(p)
    return people
