"""mbox loader: one Doc per mail thread (Message-ID / In-Reply-To / References), each message its own block."""
from __future__ import annotations

import email.errors
import email.header
import email.utils
import hashlib
import mailbox
import re
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

from ..errors import LoadError
from ..models import AuthorRef, Block, Doc
from .base import check_size, norm_date, split_quoted
from .threads import add_unit, asks, author_name, clean_text, first_words, html_to_text, mark_asker, reply_context

_ID = re.compile(r"<([^<>\s]+)>")
_REPLY_PREFIX = re.compile(r"^\s*((re|fwd?|aw|sv|wg)\s*(\[\d+\])?\s*:\s*)+", re.I)
_ORIGINAL = re.compile(r"^\s*-{3,}\s*Original Message\s*-{3,}\s*$", re.I | re.M)


@dataclass
class _Mail:
    mid: str
    refs: list[str]  # In-Reply-To first, then References newest first
    first_ref: str | None  # first References id (the thread's oldest)
    subject: str
    block: Block
    quote: str
    parent: str | None = None
    up: str | None = None


def _decode(raw: str) -> str:
    try:
        value = str(email.header.make_header(email.header.decode_header(raw)))
    except (email.errors.HeaderParseError, LookupError, UnicodeError, ValueError):
        value = raw
    return " ".join(value.split())


def _header(msg: Message, name: str) -> str:
    raw = msg.get(name)
    return "" if raw is None else _decode(str(raw))


def _ids(value: str) -> list[str]:
    return _ID.findall(value)


def _body(msg: Message) -> str:
    """The first text/plain part, else the first text/html part as text; signature and '>From ' escapes removed."""
    texts: dict[str, str] = {}
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype not in ("text/plain", "text/html") or ctype in texts or part.get_content_disposition() == "attachment":
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            try:
                texts[ctype] = payload.decode(part.get_content_charset() or "utf-8", errors="replace")
            except LookupError:
                texts[ctype] = payload.decode("utf-8", errors="replace")
    if "text/plain" in texts:
        lines = re.sub(r"(?m)^>(>*From )", r"\1", texts["text/plain"]).splitlines()
        text = "\n".join(lines[: lines.index("-- ")] if "-- " in lines else lines)
    else:
        text = html_to_text(texts.get("text/html", ""))
    m = _ORIGINAL.search(text)  # Outlook-style top posting: the original below is the parent's words
    if m:
        text = text[: m.start()] + "\n".join(f"> {line}" for line in text[m.end():].splitlines())
    return text


def _author(msg: Message) -> list[AuthorRef]:
    # split the raw header first: an encoded "Álvarez, José" must not split at its comma
    name, addr = email.utils.parseaddr(str(msg.get("From") or ""))
    name, addr = _decode(name).strip(), addr.strip().lower()
    return [AuthorRef(name=name or None, email=addr or None)] if name or addr else []


def load(path: Path, key: str, max_bytes: int) -> list[Doc]:
    check_size(path, max_bytes)
    box = mailbox.mbox(str(path), create=False)
    mails: dict[str, _Mail] = {}
    try:
        for msg in box:
            _add(mails, msg)
    finally:
        box.close()
    if not mails:
        raise LoadError("no mail messages found (no 'From ' separator lines); check it is an mbox file")
    subjects: dict[str, str] = {}  # normalised subject → first message with it
    for m in mails.values():
        m.parent = next((r for r in m.refs if r in mails and r != m.mid), None)
        m.up = m.first_ref if m.first_ref in mails and m.first_ref != m.mid else m.parent
        topic = _REPLY_PREFIX.sub("", m.subject).casefold()
        if not m.refs and topic and topic in subjects and _REPLY_PREFIX.match(m.subject):
            m.parent = m.up = subjects[topic]
        subjects.setdefault(topic, m.mid)
    threads: dict[str, list[_Mail]] = {}
    for m in mails.values():
        root, seen = m, {m.mid}
        while root.up and root.up not in seen:
            seen.add(root.up)
            root = mails[root.up]
        threads.setdefault(root.mid, []).append(m)
    return [_thread(key, root_id, msgs, mails) for root_id, msgs in threads.items()]


def _add(mails: dict[str, _Mail], msg: Message) -> None:
    subject = _header(msg, "Subject")
    author = _author(msg)
    body = _body(msg)
    ids = _ids(_header(msg, "Message-ID"))
    mid = ids[0] if ids else "nomsgid-" + hashlib.sha1(
        "\n".join((_header(msg, "From"), _header(msg, "Date"), subject, body)).encode("utf-8", "replace")).hexdigest()[:16]
    if mid in mails:
        return
    refs = _ids(_header(msg, "References"))
    own, quote = split_quoted(body)
    block = Block(text=clean_text(own), kind="message", authors=author, unit_id=mid,
                  date=norm_date(_header(msg, "Date")), url=_header(msg, "Archived-At").strip("<>") or None)
    mails[mid] = _Mail(mid=mid, refs=_ids(_header(msg, "In-Reply-To"))[:1] + refs[::-1], first_ref=refs[0] if refs else None,
                       subject=subject, block=block, quote=clean_text(quote))


def _thread(key: str, root_id: str, msgs: list[_Mail], mails: dict[str, _Mail]) -> Doc:
    root = mails[root_id]
    title = _REPLY_PREFIX.sub("", root.subject) or first_words(root.block.text) or "(no subject)"
    blocks: list[Block] = []
    root.block.role = "question" if asks(None, root.block.text) else "post"
    for m in [root] + [m for m in msgs if m is not root]:
        parent = mails[m.parent].block if m.parent else None
        if parent is not None:
            m.block.role = "answer" if parent is root.block and root.block.role == "question" else "reply"
        if parent is not None:
            m.block.reply_to = author_name(parent.authors)
            m.block.context = reply_context("Email", author_name(m.block.authors), m.block.reply_to, title)
        add_unit(blocks, m.block, m.quote, parent)
    mark_asker(blocks)
    return Doc(
        doc_id=f"{key}#{root_id}", source=key, title=title, source_type="message", blocks=blocks,
        authors=list(root.block.authors), date=root.block.date, url=root.block.url, meta={"format": "mbox"},
    )
