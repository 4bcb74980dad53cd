"""Helpers every loader shares: safe reads, size limits, hashing, dates, quoted-text splitting."""
from __future__ import annotations

import datetime as _dt
import email.utils
import hashlib
import logging
import os
import re
import zipfile
from pathlib import Path
from typing import IO, Any

from ..errors import LoadError
from .encoding import decode

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
ZIP_EXPANSION = 10  # a zip (Slack export, DOCX, PPTX) may expand to this many times the file-size limit
MAX_OFFICE_MEMBERS = 10_000  # members of a DOCX/PPTX (real ones have tens to a few hundred)
MAX_EXPORT_MEMBERS = 500_000  # members of a Slack export zip (one per channel and day)


def display(path: str | os.PathLike) -> str:
    """A path as valid UTF-8 text: bytes that are not UTF-8 (a file name from another system, kept by
    Python as lone surrogates) are shown as ``\\xff`` escapes. Stable, so usable as a key."""
    s = os.fspath(path)
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        return os.fsencode(s).decode("utf-8", "backslashreplace")


_log = logging.getLogger("askcolleague.loaders")


def warn(where: str | os.PathLike, message: str) -> None:
    """A warning about a source that is still read (a sheet cut at its row limit, an archive member
    skipped): logged as ``warning: <where>: <message>`` on the ``askcolleague.loaders`` logger
    (stderr when nothing else is configured)."""
    _log.warning("warning: %s: %s", display(where), message)


def _mb(n: float) -> str:
    return f"{n / 1e6:.0f}" if n >= 10e6 else f"{n / 1e6:.3g}"


def check_zip(file: str | os.PathLike | IO[bytes], max_bytes: int, what: str, fix: str,
              max_members: int = MAX_OFFICE_MEMBERS) -> list[zipfile.ZipInfo]:
    """The members of a zip, refused (LoadError) before anything is inflated when there are more than
    `max_members` or their declared sizes add up to more than ZIP_EXPANSION × `max_bytes`.

    The count is read from the end-of-central-directory record first, so that a zip of millions of
    empty members is refused before a ZipInfo is made for each. Declared sizes are a sound bound:
    zipfile never inflates a member past its declared size (a lying header fails its CRC check).
    """
    limit = max_bytes * ZIP_EXPANSION
    try:
        fp = open(file, "rb") if isinstance(file, (str, os.PathLike)) else file
    except OSError as e:
        raise LoadError(f"cannot read ({e.strerror}); check the file's permissions") from None
    try:
        try:
            end = zipfile._EndRecData(fp)  # (private, but stable since Python 2) the directory's own count
            declared = end[zipfile._ECD_ENTRIES_TOTAL] if end else None
        except Exception:  # the full open below reports a damaged zip
            declared = None
        if declared is not None and declared > max_members:
            raise LoadError(f"{what} has {declared} members, over the {max_members} allowed (zip bomb?); {fix}")
        try:
            fp.seek(0)
            with zipfile.ZipFile(fp) as z:
                infos = z.infolist()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, OverflowError):
            raise LoadError(f"not a valid {what} file; {fix}") from None
    finally:
        if fp is not file:
            fp.close()
    if len(infos) > max_members:
        raise LoadError(f"{what} has {len(infos)} members, over the {max_members} allowed (zip bomb?); {fix}")
    total = sum(i.file_size for i in infos)
    if total > limit:
        raise LoadError(f"{what} expands to more than {_mb(limit)} MB (zip bomb?): its members declare "
                        f"{_mb(total)} MB; {fix}")
    return infos


def check_size(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> int:
    """Return the file size; raise LoadError for an empty or oversized file."""
    try:
        size = path.stat().st_size
    except OSError as e:
        raise LoadError(f"cannot read ({e.strerror}); check the path and its permissions") from None
    if size == 0:
        raise LoadError("empty file; add content or remove it")
    if size > max_bytes:
        raise LoadError(
            f"file is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB limit; "
            "raise ASKCOLLEAGUE_MAX_FILE_MB or split the file"
        )
    return size


def read_bytes(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    check_size(path, max_bytes)
    try:
        return path.read_bytes()
    except OSError as e:
        raise LoadError(f"cannot read ({e.strerror}); check the file's permissions") from None


def decode_text(data: bytes, what: str = "text", declared: str | None = None) -> str:
    """Decode a text file's bytes: a byte-order mark, a declared charset, UTF-8, else the detected
    encoding (loaders.encoding); LoadError for binary data or bytes no encoding explains."""

    return decode(data, what, declared)[0]


def read_text(path: Path, max_bytes: int = DEFAULT_MAX_BYTES, what: str = "text") -> str:
    return decode_text(read_bytes(path, max_bytes), what)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def norm_date(value: Any) -> str | None:
    """Normalise a date/datetime/string/epoch to ISO 8601 (date, or datetime in UTC); None if unknown."""
    if value is None or value == "":
        return None
    if isinstance(value, _dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        return value.replace(microsecond=0).isoformat()
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, (int, float)):
        try:
            return _dt.datetime.fromtimestamp(float(value), _dt.timezone.utc).replace(tzinfo=None, microsecond=0).isoformat()
        except (OverflowError, OSError, ValueError):
            return None
    s = str(value).strip()
    if not s:
        return None
    if re.fullmatch(r"\d{9,11}(\.\d+)?", s):
        return norm_date(float(s))
    # PDF dates: D:20240115093000+01'00'
    m = re.fullmatch(r"D:(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?.*", s)
    if m:
        parts = [int(p) if p else d for p, d in zip(m.groups(), (0, 1, 1, 0, 0, 0))]
        try:
            return norm_date(_dt.datetime(*parts))
        except ValueError:
            return None
    try:
        d = _dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
        if len(s) <= 10:
            return d.date().isoformat()
        return norm_date(d)
    except ValueError:
        pass
    try:
        d = email.utils.parsedate_to_datetime(s)
        return norm_date(d)
    except (TypeError, ValueError, IndexError):
        pass
    m = re.match(r"^(\d{4}-\d{2}-\d{2})", s)
    if m:
        return m.group(1)
    return None


_QUOTE_RE = re.compile(r"^\s*(>|&gt;)")


def split_quoted(text: str) -> tuple[str, str]:
    """Split a reply into (own words, quoted words). Quoted lines start with '>'.

    Attribution lines such as "On Mon, Dana wrote:" directly above a quote are dropped.
    """
    own: list[str] = []
    quoted: list[str] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if _QUOTE_RE.match(line):
            quoted.append(_QUOTE_RE.sub("", line, count=1).lstrip(">").strip())
            continue
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if re.search(r"wrote:\s*$", line) and _QUOTE_RE.match(nxt):
            continue
        own.append(line)
    return "\n".join(own).strip(), "\n".join(q for q in quoted).strip()


def latest_date(*dates: Any) -> str | None:
    """The latest of a file's created/modified dates (some tools never update 'modified')."""
    return max(filter(None, map(norm_date, dates)), default=None)
