"""WordPress export (WXR) loader: one Doc per published post or page, each comment its own block."""
from __future__ import annotations

import re
from pathlib import Path
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from ..errors import LoadError
from ..models import AuthorRef, Block, Doc
from .base import norm_date, read_bytes, split_quoted
from .threads import add_unit, asks, author_name, first_words, html_to_text, mark_asker, reply_context, reply_role

_WP_NS = re.compile(r"^\{(http://wordpress\.org/export/\d+\.\d+/)\}")
_NS = {"content": "http://purl.org/rss/1.0/modules/content/", "dc": "http://purl.org/dc/elements/1.1/"}
_KEEP_STATUS = ("publish", "private")


def _parse(data: bytes) -> Element:
    try:
        return SafeET.fromstring(data, forbid_dtd=True)
    except DefusedXmlException:
        raise LoadError("XML uses entities/DTD, which are refused for safety; export again without them") from None
    except ParseError as e:
        raise LoadError(f"malformed XML at line {e.position[0]}, column {e.position[1]} ({str(e).split(':')[0]}); "
                        "export again or fix the XML") from None
    except ValueError as e:  # e.g. an encoding expat does not support
        raise LoadError(f"unreadable XML ({e}); export again as UTF-8") from None


def _text(el: Element, path: str, ns: dict[str, str]) -> str:
    return (el.findtext(path, default="", namespaces=ns) or "").strip()


def _date(el: Element, ns: dict[str, str], *paths: str) -> str | None:
    for p in paths:
        value = _text(el, p, ns)
        if value and not value.startswith("0000"):
            return norm_date(value)
    return None


def load(path: Path, key: str, max_bytes: int) -> list[Doc]:
    root = _parse(read_bytes(path, max_bytes))
    channel = root.find("channel")
    wp = next((m.group(1) for e in root.iter() if isinstance(e.tag, str) and (m := _WP_NS.match(e.tag))), None)
    if root.tag != "rss" or channel is None or wp is None:
        raise LoadError("not a WordPress export (WXR); export the site with WordPress Tools → Export")
    ns = {**_NS, "wp": wp}
    people: dict[str, AuthorRef] = {}
    for a in channel.findall("wp:author", ns):
        login = _text(a, "wp:author_login", ns)
        full = f"{_text(a, 'wp:author_first_name', ns)} {_text(a, 'wp:author_last_name', ns)}".strip()
        email = _text(a, "wp:author_email", ns).lower()
        people[login] = AuthorRef(name=_text(a, "wp:author_display_name", ns) or full or login or None,
                                  email=email or None)
    docs = []
    for item in channel.findall("item"):
        status = _text(item, "wp:status", ns)
        if _text(item, "wp:post_type", ns) not in ("post", "page") or status not in _KEEP_STATUS:
            continue
        docs.append(_post(item, ns, key, people, private=status == "private" or bool(_text(item, "wp:post_password", ns))))
    return docs


def _post(item: Element, ns: dict[str, str], key: str, people: dict[str, AuthorRef], private: bool) -> Doc:
    post_id = _text(item, "wp:post_id", ns)
    link = _text(item, "link", ns) or None
    login = _text(item, "dc:creator", ns)
    author = people.get(login) or (AuthorRef(name=login) if login else None)
    authors = [author] if author else []
    body = html_to_text(_text(item, "content:encoded", ns))
    title = _text(item, "title", ns) or first_words(body) or f"Post {post_id}"
    head = Block(text=body, kind="post", authors=authors, unit_id=f"post-{post_id}", url=link,
                 date=_date(item, ns, "wp:post_date_gmt", "wp:post_date", "pubDate"),
                 role="question" if asks(_text(item, "title", ns), body) else "post")
    blocks: list[Block] = []
    add_unit(blocks, head)
    units: dict[str, Block] = {}
    for c in item.findall("wp:comment", ns):
        if _text(c, "wp:comment_approved", ns) != "1" or _text(c, "wp:comment_type", ns) not in ("", "comment"):
            continue
        cid = _text(c, "wp:comment_id", ns)
        parent = units.get(_text(c, "wp:comment_parent", ns), head)
        name = _text(c, "wp:comment_author", ns)
        email = _text(c, "wp:comment_author_email", ns).lower()
        c_authors = [AuthorRef(name=name or None, email=email or None)] if name or email else []
        own, quote = split_quoted(html_to_text(_text(c, "wp:comment_content", ns)))
        block = Block(
            text=own, kind="comment", authors=c_authors, unit_id=f"comment-{cid}",
            date=_date(c, ns, "wp:comment_date_gmt", "wp:comment_date"),
            url=f"{link}#comment-{cid}" if link else None, reply_to=author_name(parent.authors),
            context=reply_context("Comment", author_name(c_authors), author_name(parent.authors), title),
            role=reply_role(parent, parent is head),
        )
        units[cid] = block
        add_unit(blocks, block, quote, parent)
    mark_asker(blocks)
    tags: list[str] = []
    for cat in item.findall("category"):
        label = (cat.text or "").strip() or cat.get("nicename", "")
        if cat.get("domain") in ("post_tag", "category") and cat.get("nicename") != "uncategorized" and label not in tags:
            tags.append(label)
    return Doc(
        doc_id=f"{key}#post-{post_id}", source=key, title=title, source_type="post", blocks=blocks,
        authors=authors, date=head.date, url=link, tags=[t for t in tags if t], groups=["private"] if private else [],
        meta={"format": "wxr", "post_type": _text(item, "wp:post_type", ns)},
    )
