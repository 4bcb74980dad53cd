"""Text encodings: byte-order marks, declared charsets, else detection (charset-normalizer).

``decode(data)`` returns the text and the name of the encoding it was read with; the loaders
record that name in the document's ``meta["encoding"]`` and the index in the source's manifest
entry. Order: a byte-order mark (UTF-8/16/32) wins; then a charset the file declares (HTML
``<meta charset>``, an XML declaration, a MIME header) if the bytes decode with it; then strict
UTF-8; then UTF-16 without a mark (every other byte zero); then detection. A detected encoding is
only trusted with enough text to go on (``MIN_DETECT_BYTES``): a few bytes of Latin-1 decode as
anything, and a wrong guess would index mojibake without a word. A shorter file is read as
windows-1252 (which reads Latin-1 text the same) only when it plainly is Western text
(``short_western``): no control bytes but tab, CR and LF; mostly letters and digits; at least one
ASCII letter, and in every word of two letters or more with accented letters a plain one too
(Cyrillic or Greek bytes read as windows-1252 make words of accented letters only); no digit or
symbol between two letters (Polish cp1250 read as windows-1252 makes "Za¿ó³æ"). Anything else
is refused, saying to re-save the file as UTF-8.
"""
from __future__ import annotations

import codecs
import re

from ..errors import LoadError

MIN_DETECT_BYTES = 64
_BOMS = (  # longest first: a UTF-32 LE mark starts with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32"), (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8", "UTF-8"), (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16"),
)
# WHATWG: a page that says latin-1 or ascii is read as windows-1252 (what every browser does)
_ALIASES = {"iso-8859-1": "cp1252", "iso8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252",
            "l1": "cp1252", "us-ascii": "cp1252", "ascii": "cp1252", "windows-1252": "cp1252"}
_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_XML_DECL = re.compile(rb"""^\s*<\?xml[^>]{0,200}?encoding\s*=\s*["']([A-Za-z0-9_.:-]+)["']""")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_WORD = re.compile(r"[^\W\d_]+")  # a run of letters


def declared_charset(data: bytes) -> str | None:
    """The charset an HTML ``<meta>`` or an XML declaration names in the first 4 KB, if any."""
    head = data[:4096]
    m = _XML_DECL.match(head) or _META_CHARSET.search(head)
    return m.group(1).decode("ascii").lower() if m else None


def _codec(name: str | None) -> str | None:
    if not name:
        return None
    name = _ALIASES.get(name.strip().lower(), name.strip().lower())
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _utf16_without_bom(data: bytes) -> str | None:
    """'utf-16-le'/'utf-16-be' when every other byte of the start is zero (Windows tools write such
    files without a mark), else None."""
    head = data[:4096]
    if len(head) < 8:
        return None
    even, odd = head[0::2], head[1::2]
    if odd.count(0) >= 0.9 * len(odd) and even.count(0) <= 0.05 * len(even):
        return "utf-16-le"
    if even.count(0) >= 0.9 * len(even) and odd.count(0) <= 0.05 * len(odd):
        return "utf-16-be"
    return None


def decode(data: bytes, what: str = "text", declared: str | None = None) -> tuple[str, str]:
    """(text, encoding name) of a text file's bytes; LoadError (one line, with the fix) for binary
    data or bytes no encoding explains. Control characters other than tab/newline/CR are dropped."""
    text, enc = _decode(data, what, declared)
    text = _CONTROL.sub("", text)
    if not text.strip():
        raise LoadError("no text in file; add content or remove it")
    return text, enc


def _decode(data: bytes, what: str, declared: str | None) -> tuple[str, str]:
    for bom, enc, label in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom):].decode(enc), ("utf-8-sig" if enc == "utf-8" else enc)
            except UnicodeDecodeError as e:
                raise LoadError(f"starts with a {label} byte-order mark but is not valid {label} at byte "
                                f"{e.start + len(bom)}; re-save the file as UTF-8") from None
    if b"\x00" in data[:8192]:
        enc = _utf16_without_bom(data)
        if enc:
            try:
                return data.decode(enc), enc
            except UnicodeDecodeError:
                pass
        raise LoadError(f"binary data in a {what} file; rename it to its real extension or remove it")
    enc = _codec(declared or declared_charset(data))
    if enc and enc not in ("utf-8", "utf-16", "utf-32"):
        try:
            return data.decode(enc), enc
        except UnicodeDecodeError:
            pass  # the declaration is wrong: the bytes decide
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as e:
        bad = e.start
    if len(data) < MIN_DETECT_BYTES:
        short = short_western(data)
        if short is not None:
            return short
        raise LoadError(f"invalid UTF-8 at byte {bad}, and too little text to tell its encoding; "
                        "re-save the file as UTF-8")
    guess = detect(data)
    if guess is None:
        raise LoadError(f"invalid UTF-8 at byte {bad}, and too little text to tell its encoding; "
                        "re-save the file as UTF-8")
    return data.decode(guess), guess


def short_western(data: bytes) -> tuple[str, str] | None:
    """(text, 'cp1252') for a few bytes that are plainly Western European text in windows-1252 (or
    Latin-1, whose printable characters windows-1252 reads the same), else None: too little text for
    detection, so only what can hardly be anything else is read (see the module). The five bytes
    windows-1252 leaves undefined are Latin-1's C1 control characters, never text: refused."""
    if not data or _CONTROL_BYTES.search(data):
        return None
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        return None
    return (text, "cp1252") if _plausible_western(text) else None


def _plausible_western(text: str) -> bool:
    import unicodedata  # (lazy: loaded only when used, so start-up stays fast)

    seen = [c for c in text if not c.isspace()]
    if not seen or any(not c.isprintable() for c in seen):  # (C1 controls: Latin-1's 0x80-0x9f)
        return False
    if sum(c.isalnum() for c in seen) < 0.5 * len(seen):
        return False
    words = _WORD.findall(text)
    if not any(c.isascii() for w in words for c in w):
        return False
    if any(len(w) > 1 and not w.isascii() and not any(c.isascii() for c in w) for w in words):
        return False
    for before, c, after in zip(text, text[1:], text[2:]):
        if not c.isascii() and before.isalpha() and after.isalpha() and unicodedata.category(c)[0] in "NS" \
                and unicodedata.category(c) != "Sk":  # (an acute or a cedilla as an apostrophe: "don´t")
            return False
    return True


def detect(data: bytes) -> str | None:
    """The encoding charset-normalizer finds most plausible, or None. Among single-byte code pages
    that fit equally well (cp1250 and cp1252 both decode most Western text), windows-1252 wins:
    it is what office machines in Western Europe and the Americas write (the margins were set on
    German, French and Polish samples: Polish cp1250 text stays cp1250)."""
    from charset_normalizer import from_bytes  # (lazy: loaded only when used, so start-up stays fast)

    results = list(from_bytes(data, cp_isolation=None))
    if not results:
        return None
    best = results[0]
    from charset_normalizer.utils import is_multi_byte_encoding  # (lazy: loaded only when used, so start-up stays fast)

    if best.encoding != "cp1252" and not is_multi_byte_encoding(best.encoding):
        from charset_normalizer.md import mess_ratio  # (lazy: loaded only when used, so start-up stays fast)

        try:
            western = data.decode("cp1252")
        except UnicodeDecodeError:
            return best.encoding
        # DOS and Mac code pages are rare today: windows-1252 wins against them on a smaller margin
        margin = 0.03 if re.match(r"cp[4-9]\d\d$|mac_", best.encoding) else 0.01
        if mess_ratio(western) <= best.chaos + margin:
            return "cp1252"
    return best.encoding
