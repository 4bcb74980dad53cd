"""Helpers the thread loaders share: HTML to text, titles, reply context and quoted-text blocks."""
from __future__ import annotations

import re
from html.parser import HTMLParser

from ..models import AuthorRef, Block

_BLOCK_TAGS = {
    "p", "div", "section", "article", "header", "footer", "aside", "main", "nav", "figure", "figcaption",
    "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "dl", "dt", "dd", "pre", "table", "tr", "hr",
}
_SKIP_TAGS = {"script", "style", "head", "template"}
_HTML_RE = re.compile(r"</?[a-zA-Z][a-zA-Z0-9]*(\s[^<>]*)?/?>|&(#\d+|#x[0-9a-fA-F]+|[a-zA-Z]+\d*);")


def clean_text(text: str) -> str:
    """Collapse runs of spaces within lines and of blank lines; strip."""
    lines = (re.sub(r"[^\S\n]+", " ", line).strip() for line in text.splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


class _TextParser(HTMLParser):
    """Collects text with paragraph breaks; a <blockquote> becomes '> ' lines (see split_quoted)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.buffers: list[list[str]] = [[]]
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in _SKIP_TAGS:
            self.skip += 1
        elif tag == "blockquote":
            self.buffers.append([])
        elif tag == "br":
            self.buffers[-1].append("\n")
        elif tag == "li":
            self.buffers[-1].append("\n- ")
        elif tag in _BLOCK_TAGS:
            self.buffers[-1].append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self.skip = max(0, self.skip - 1)
        elif tag == "blockquote" and len(self.buffers) > 1:
            inner = clean_text("".join(self.buffers.pop()))
            quoted = "\n".join(f"> {line}" if line else "" for line in inner.splitlines())
            self.buffers[-1].append(f"\n\n{quoted}\n\n")
        elif tag in _BLOCK_TAGS:
            self.buffers[-1].append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.buffers[-1].append(data)

    def text(self) -> str:
        self.close()
        while len(self.buffers) > 1:
            self.handle_endtag("blockquote")
        return clean_text("".join(self.buffers[0]))


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment, paragraphs kept, blockquotes as '> ' lines."""
    parser = _TextParser()
    parser.feed(html)
    return parser.text()


def to_text(body: str) -> str:
    """Plain text of a body that may be HTML or plain text."""
    return html_to_text(body) if _HTML_RE.search(body) else clean_text(body)


def first_words(text: str, max_words: int = 10) -> str:
    """The first sentence of the first non-empty line, cut to `max_words` words."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    m = re.match(r"(.+?[.!?])(\s|$)", line)
    words = (m.group(1) if m else line).split()
    return " ".join(words[:max_words]) + (" …" if len(words) > max_words else "")


def asks(title: str | None, text: str | None) -> bool:
    """Whether a thread opens with a request for help: its opening text asks something (a '?' in its
    first 600 characters) and its title, where it has one, is a question too. A discussion opened
    with a question for a title ("What should we do about wiki search?") but no question in its text
    is a post, not a question."""
    opening = (text or "")[:600]
    return "?" in opening and (title is None or (title or "").rstrip().endswith("?"))


def reply_role(parent: Block, top: bool) -> str:
    """The role of a reply: an answer to a question (directly under it), else a comment on a post
    (directly under it) or a reply in the discussion below."""
    if top and parent.role == "question":
        return "answer"
    return "comment" if top and parent.kind == "post" else "reply"


def mark_asker(blocks: list[Block]) -> list[Block]:
    """In a question thread, the asker's own follow-ups ("that worked, thanks") are the asker's
    side of the conversation too: role "question", not answers or replies."""
    head = next((b for b in blocks if b.role == "question" and not b.quoted_from), None)
    if head is None or not head.authors:
        return blocks
    who = {(a.email or "").lower() or (a.name or "").casefold() for a in head.authors}
    for b in blocks:
        if b is not head and not b.quoted_from and b.authors and \
                {(a.email or "").lower() or (a.name or "").casefold() for a in b.authors} <= who:
            b.role = "question"
    return blocks


def votes_of(value) -> int | None:
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def author_name(authors: list[AuthorRef]) -> str | None:
    return authors[0].label() if authors else None


def reply_context(noun: str, author: str | None, parent: str | None, title: str) -> str:
    """E.g. 'Comment by Ann Smith replying to Dana Lee on "Upgrading to Kubernetes 1.30"'."""
    who = f"{noun} by {author or 'unknown'}"
    return f'{who} replying to {parent} on "{title}"' if parent else f'{who} on "{title}"'


def add_unit(blocks: list[Block], block: Block, quote: str = "", source: Block | None = None) -> None:
    """Append `block` (if it has text), preceded by its `quote` credited to `source`'s author.

    A quote whose source is unknown or has no author is dropped: quoted words are never credited
    to the person quoting them.
    """
    if quote and source is not None and source.authors:
        blocks.append(Block(
            text=quote, kind=block.kind, authors=list(source.authors), unit_id=f"{block.unit_id}:quote",
            date=source.date, url=source.url, quoted_from=source.unit_id, role=source.role,
            context=f"Quoted by {author_name(block.authors) or 'unknown'} from {author_name(source.authors)}",
        ))
    if block.text:
        blocks.append(block)
