"""Archives (.zip that is not a Slack export, .7z): read as a folder of documents.

The members are unpacked into a private temporary folder and read as any folder is (sources.discover
and load_source), so every type the loaders know is read inside an archive too, sidecars included.
A member's doc id is ``archive.zip!/path/in/archive`` (``#thread`` after it for files of threads);
every doc's source is the archive, the unit of change detection. Bounds, checked on the declared
sizes before anything is inflated (and again while inflating): at most ASKCOLLEAGUE_ARCHIVE_MAX_MEMBERS
members and ASKCOLLEAGUE_ARCHIVE_MAX_MB unpacked; archives nested at most MAX_DEPTH deep. Members
with absolute paths, ``..`` parts or drive letters, links and encrypted members are skipped with a
warning; a member that cannot be read is skipped with its reason, and the rest are read.
"""
from __future__ import annotations

import contextvars
import os
import re
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from ..errors import LoadError
from ..models import Doc
from ..settings import Settings
from .base import check_size, check_zip, warn

ARCHIVE_EXTENSIONS = (".zip", ".7z")
MAX_DEPTH = 2
_DEPTH: contextvars.ContextVar[int] = contextvars.ContextVar("archive_depth", default=0)
_SKIP = re.compile(r"(^|/)(__MACOSX|\.[^/]*)(/|$)|(^|/)(Thumbs\.db|desktop\.ini)$", re.I)


def _limits() -> tuple[int, int]:
    s = Settings.load()
    return int(s.archive_max_mb * 1024 * 1024), max(int(s.archive_max_members), 1)


def safe_name(name: str) -> str | None:
    """The member's path as a relative posix path, or None when it points outside the archive."""
    n = name.replace("\\", "/")
    if n.startswith("/") or re.match(r"^[A-Za-z]:", n) or "\x00" in n:
        return None
    parts = [p for p in n.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return "/".join(parts)


def load(path: Path, key: str, max_bytes: int) -> list[Doc]:
    """Read every member of a .zip or .7z archive; LoadError when it cannot be opened or holds nothing readable."""
    depth = _DEPTH.get()
    if depth >= MAX_DEPTH:
        raise LoadError(f"archive nested more than {MAX_DEPTH} deep; unpack the outer archive")
    check_size(path, max_bytes)
    limit, max_members = _limits()
    token = _DEPTH.set(depth + 1)
    try:
        with tempfile.TemporaryDirectory(prefix="askcolleague-archive-") as tmp:
            root = Path(tmp) / "a"
            root.mkdir()
            members = (_unzip if path.suffix.lower() == ".zip" else _un7z)(path, key, root, limit, max_members)
            return _read_folder(root, key, max_bytes, members)
    finally:
        _DEPTH.reset(token)


def _bound(count: int, total: int, limit: int, max_members: int) -> None:
    if count > max_members:
        raise LoadError(f"archive has {count} members, over the {max_members} allowed (zip bomb?); "
                        "split it or raise ASKCOLLEAGUE_ARCHIVE_MAX_MEMBERS")
    if total > limit:
        raise LoadError(f"archive unpacks to {total / 1e6:.0f} MB, over the {limit / 1e6:.0f} MB allowed (zip bomb?); "
                        "split it or raise ASKCOLLEAGUE_ARCHIVE_MAX_MB")


def _unzip(path: Path, key: str, root: Path, limit: int, max_members: int) -> int:
    check_zip(path, limit, "zip", "split it or raise ASKCOLLEAGUE_ARCHIVE_MAX_MEMBERS / ASKCOLLEAGUE_ARCHIVE_MAX_MB",
              max_members=max_members)  # the member count before any ZipInfo is made
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        raise LoadError("not a valid .zip file; re-create the archive") from None
    with z:
        infos = [i for i in z.infolist() if not i.is_dir()]
        _bound(len(infos), sum(i.file_size for i in infos), limit, max_members)
        left, n = limit, 0
        for info in infos:
            name = safe_name(info.filename)
            where = f"{key}!/{info.filename}"
            if name is None:
                warn(where, "member points outside the archive (absolute path or '..'); skipped")
                continue
            if _SKIP.search(name):
                continue
            if stat.S_ISLNK(info.external_attr >> 16):
                warn(where, "member is a symbolic link; skipped")
                continue
            if info.flag_bits & 0x1:
                warn(where, "member is encrypted; skipped (unpack it with its password)")
                continue
            dest = root / name
            try:
                dest.parent.mkdir(parents=True, exist_ok=True)
                with z.open(info) as src, open(dest, "wb") as out:
                    while chunk := src.read(1 << 20):
                        left -= len(chunk)
                        if left < 0:
                            _bound(0, limit + 1, limit, max_members)
                        out.write(chunk)
            except LoadError:
                raise
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError, ValueError) as e:
                warn(where, f"member cannot be unpacked ({str(e)[:120]}); skipped")
                dest.unlink(missing_ok=True)
                continue
            n += 1
    return n


def _un7z(path: Path, key: str, root: Path, limit: int, max_members: int) -> int:
    import py7zr  # (lazy: loaded only when used, so start-up stays fast)

    try:
        z = py7zr.SevenZipFile(path, mode="r", max_extract_size=limit)
    except py7zr.PasswordRequired:
        raise LoadError("the .7z archive is encrypted; unpack it with its password") from None
    except (py7zr.Bad7zFile, OSError, EOFError, ValueError, KeyError, IndexError) as e:
        raise LoadError(f"not a valid .7z file ({type(e).__name__}); re-create the archive") from None
    with z:
        if z.needs_password():
            raise LoadError("the .7z archive is encrypted; unpack it with its password")
        infos = [i for i in z.list() if not i.is_directory]
        _bound(len(infos), sum(i.uncompressed or 0 for i in infos), limit, max_members)
        targets = []
        for info in infos:
            name = safe_name(info.filename)
            where = f"{key}!/{info.filename}"
            if name is None:
                warn(where, "member points outside the archive (absolute path or '..'); skipped")
            elif getattr(info, "is_symlink", False):
                warn(where, "member is a symbolic link; skipped")
            elif not _SKIP.search(name):
                targets.append(info.filename)
        if not targets:
            return 0
        try:
            z.extract(path=root, targets=targets)
        except Exception as e:  # py7zr raises many kinds for damaged data
            raise LoadError(f"cannot unpack the .7z archive ({type(e).__name__}: {str(e)[:100]}); re-create it") from None
    for p in root.rglob("*"):  # nothing may point out of the folder, whatever the archive said
        if p.is_symlink():
            p.unlink()
    return len(targets)


def _read_folder(root: Path, key: str, max_bytes: int, members: int) -> list[Doc]:
    from . import (  # (an archive's members go through the package's dispatch, which reads archives: recursion by design)
        discover, load_source,
    )

    if not members:
        raise LoadError("archive holds no files; remove it")
    specs, people, problems = discover([root])
    for p in people:
        warn(f"{key}!/{p.relative_to(root).as_posix()}", "people files inside an archive are not read; "
             "put it beside the archive")
    for where, reason in problems:
        warn(_member_key(key, root, where), reason)
    docs: list[Doc] = []
    reasons: list[str] = []
    for spec in specs:
        rel = spec.path.relative_to(root).as_posix() if spec.path != root else ""
        member = f"{key}!/{rel}" if rel else key
        spec.key = member
        try:
            got = load_source(spec, max_bytes)
        except LoadError as e:
            warn(member, str(e))
            reasons.append(f"{rel or 'archive'}: {e}")
            continue
        for d in got:
            d.source = key
            d.meta.setdefault("archive_member", rel)
        docs += got
    if not docs:
        first = reasons[0] if reasons else (problems[0][1] if problems else "no readable files")
        raise LoadError(f"nothing readable in the archive ({first.rstrip('.')}); fix or remove its files")
    return docs


def _member_key(key: str, root: Path, where: str) -> str:
    try:
        return f"{key}!/{Path(where).relative_to(root).as_posix()}"
    except ValueError:
        return f"{key}!/{os.path.basename(where)}"


def load_member(name: str, data: bytes, member_key: str, source_key: str, max_bytes: int, depth: int = 0) -> list[Doc]:
    """Read one file given as bytes (a mail attachment) with the loader its name calls for."""
    from . import (  # (an archive's members go through the package's dispatch, which reads archives: recursion by design)
        SourceSpec, kind_of, load_source,
    )

    if len(data) > max_bytes:
        raise LoadError(f"is {len(data) / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB limit; "
                        "raise ASKCOLLEAGUE_MAX_FILE_MB")
    if _DEPTH.get() + depth > MAX_DEPTH + 1:
        raise LoadError(f"nested more than {MAX_DEPTH} deep; save it separately")
    safe = os.path.basename(name.replace("\\", "/")) or "attachment"
    with tempfile.TemporaryDirectory(prefix="askcolleague-member-") as tmp:
        p = Path(tmp) / safe
        p.write_bytes(data)
        kind = kind_of(p)
        if kind in ("unknown", "folder"):
            raise LoadError(f"unsupported file type '{PurePosixPath(safe).suffix or safe}'")
        docs = load_source(SourceSpec(path=p, key=member_key, kind=kind), max_bytes)
    for d in docs:
        d.source = source_key
    return docs

