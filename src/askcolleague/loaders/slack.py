"""Slack export loader (folder or .zip, read in memory): one Doc per thread, each message its own block."""
from __future__ import annotations

import json
import re
import zipfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..errors import LoadError
from ..models import AuthorRef, Block, Doc
from .base import MAX_EXPORT_MEMBERS, ZIP_EXPANSION, check_size, check_zip, norm_date, read_bytes, split_quoted
from .threads import add_unit, asks, author_name, clean_text, first_words, mark_asker, reply_context

_DAY_FILE = re.compile(r"^([^/]+)/\d{4}-\d{2}-\d{2}\.json$")
_KEEP_SUBTYPES = (None, "", "thread_broadcast", "file_share", "me_message")
_TOKEN = re.compile(r"<([^<>]*)>")


class _Export:
    """The JSON files of an export, by path relative to its top folder; a zip is never extracted."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path, self.max_bytes, self.zip = path, max_bytes, None
        if path.is_dir():
            self.names = {p.name for p in path.iterdir() if p.is_file() and not p.is_symlink()} | {
                f"{d.name}/{p.name}" for d in path.iterdir() if d.is_dir() and not d.is_symlink()
                for p in d.iterdir() if p.is_file() and not p.is_symlink()}
            return
        check_size(path, max_bytes)
        fix = "split the export or raise ASKCOLLEAGUE_MAX_FILE_MB"
        try:
            check_zip(path, max_bytes, "zip", fix, max_members=MAX_EXPORT_MEMBERS)
        except LoadError as e:
            if "not a valid" in str(e):
                raise LoadError("not a valid .zip file; export the workspace from Slack again") from None
            raise
        try:
            self.zip = zipfile.ZipFile(path)
            infos = self.zip.infolist()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError):
            raise LoadError("not a valid .zip file; export the workspace from Slack again") from None
        try:
            self._check(infos)
        except LoadError:
            self.zip.close()
            raise

    def _check(self, infos: list[zipfile.ZipInfo]) -> None:
        self.left = self.max_bytes * ZIP_EXPANSION  # check_zip has checked the declared sizes; this bounds the reads
        for info in infos:
            parts = info.filename.replace("\\", "/").split("/")
            if info.filename.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", info.filename) or ".." in parts:
                raise LoadError(f"zip member {info.filename!r} points outside the archive (zip slip); "
                                "export the workspace from Slack again")
        tops = sorted((i.filename for i in infos if i.filename.rsplit("/", 1)[-1] == "users.json"),
                      key=lambda n: n.count("/"))
        prefix = tops[0][: -len("users.json")] if tops else ""
        self.members = {i.filename[len(prefix):]: i for i in infos if i.filename.startswith(prefix) and not i.is_dir()}
        self.names = set(self.members)

    def _bomb(self) -> None:
        raise LoadError(f"zip expands to more than {self.max_bytes * ZIP_EXPANSION / 1e6:g} MB (zip bomb?); "
                        "split the export or raise ASKCOLLEAGUE_MAX_FILE_MB")

    def read(self, name: str) -> bytes:
        if self.zip is None:
            return read_bytes(self.path / name, self.max_bytes)
        try:
            with self.zip.open(self.members[name]) as f:
                data = f.read(self.left + 1)
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as e:
            raise LoadError(f"cannot read {name} in the zip ({e}); export the workspace from Slack again") from None
        self.left -= len(data)
        if self.left < 0:
            self._bomb()
        return data

    def json(self, name: str, default: Any = None) -> Any:
        if name not in self.names:
            return default
        try:
            return json.loads(self.read(name).decode("utf-8-sig"))
        except ValueError as e:
            raise LoadError(f"{name} is not valid JSON ({e}); export the workspace from Slack again") from None


def _list(value: Any) -> list[dict]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def load(path: Path, key: str, max_bytes: int) -> list[Doc]:
    export = _Export(path, max_bytes)
    try:
        return _load(export, key)
    finally:
        if export.zip is not None:
            export.zip.close()


def _load(export: _Export, key: str) -> list[Doc]:
    if "users.json" not in export.names or "channels.json" not in export.names:
        raise LoadError("not a Slack export (no users.json and channels.json at the top); export the workspace from Slack")
    users: dict[str, AuthorRef] = {}
    bots: set[str] = set()
    for u in _list(export.json("users.json")):
        uid, profile = str(u.get("id", "")), u.get("profile") if isinstance(u.get("profile"), dict) else {}
        name = u.get("real_name") or profile.get("real_name") or profile.get("display_name") or u.get("name")
        email = profile.get("email")
        users[uid] = AuthorRef(name=str(name) if name else None, email=str(email).lower() if email else None,
                               handle=f"slack:{uid}")
        if u.get("is_bot") or uid == "USLACKBOT":
            bots.add(uid)
    channels: dict[str, dict] = {}  # folder name → channel info, with "private"
    names: dict[str, str] = {}  # channel id → name
    for file in ("channels.json", "groups.json", "mpims.json", "dms.json"):
        for c in _list(export.json(file, [])):
            folder = str(c.get("name") or c.get("id", ""))
            channels[folder] = {**c, "private": file != "channels.json" or bool(c.get("is_private"))}
            names[str(c.get("id", ""))] = folder
    by_folder: dict[str, dict[str, dict]] = {}
    for name in sorted(export.names):
        m = _DAY_FILE.match(name)
        if not m:
            continue
        day = export.json(name)
        if not isinstance(day, list):
            raise LoadError(f"{name} is not a list of messages; export the workspace from Slack again")
        msgs = by_folder.setdefault(m.group(1), {})
        for msg in _list(day):
            if (msg.get("subtype") in _KEEP_SUBTYPES and not msg.get("bot_id") and msg.get("user")
                    and str(msg["user"]) not in bots and re.fullmatch(r"\d+(\.\d+)?", str(msg.get("ts", "")))):
                msgs.setdefault(str(msg["ts"]), msg)
    docs = []
    for folder, msgs in sorted(by_folder.items()):
        threads: dict[str, list[dict]] = {}
        for ts, msg in sorted(msgs.items(), key=lambda kv: float(kv[0])):
            threads.setdefault(str(msg.get("thread_ts") or ts), []).append(msg)
        info = channels.get(folder, {"private": True})  # unknown folder: fail closed
        for thread_ts, thread in threads.items():
            doc = _thread(key, folder, info, thread_ts, thread, users, names)
            if doc:
                docs.append(doc)
    return docs


def _format(text: str, users: dict[str, AuthorRef], names: dict[str, str]) -> str:
    """Slack markup to plain text: mentions, channel links, URLs, and the three escaped characters."""

    def token(m: re.Match) -> str:
        target, _, label = m.group(1).partition("|")
        if target.startswith("@"):
            ref = users.get(target[1:])
            return f"@{ref.name if ref and ref.name else label or target[1:]}"
        if target.startswith("#"):
            return f"#{label or names.get(target[1:], target[1:])}"
        if target.startswith("!"):
            return label or f"@{target[1:].split('^')[0]}"
        if label and label not in (target, target.removeprefix("mailto:")):
            return f"{label} ({target})"
        return label or target

    return _TOKEN.sub(token, text).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _norm(text: str) -> str:
    return " ".join(text.casefold().split())


def _thread(key: str, folder: str, info: dict, thread_ts: str, thread: list[dict],
            users: dict[str, AuthorRef], names: dict[str, str]) -> Doc | None:
    blocks: list[Block] = []
    earlier: list[Block] = []
    parent: Block | None = None  # the thread's parent message, when the export has it
    title = ""
    for msg in thread:
        uid, ts = str(msg["user"]), str(msg["ts"])
        profile = msg.get("user_profile") if isinstance(msg.get("user_profile"), dict) else {}
        author = users.get(uid) or AuthorRef(name=profile.get("real_name") or profile.get("display_name") or None,
                                             handle=f"slack:{uid}")
        own, quote = split_quoted(clean_text(_format(str(msg.get("text") or ""), users, names)))
        title = title or f"#{folder}: {first_words(own) or '(no text)'}"
        block = Block(text=own, kind="message", authors=[author], unit_id=ts, date=norm_date(float(ts)))
        if len(thread) > 1 and not earlier and ts == thread_ts:
            block.role = "question" if asks(None, own) else "post"  # a thread's parent message
        elif parent is not None:
            block.role = "answer" if parent.role == "question" else "reply"
        if parent is not None:
            block.reply_to = author_name(parent.authors)
            block.context = reply_context("Message", author.label(), block.reply_to, title)
        source = next((b for b in reversed(earlier) if b.text and _norm(quote) in _norm(b.text)), parent)
        add_unit(blocks, block, quote, source)
        earlier.append(block)
        if len(earlier) == 1 and ts == thread_ts:
            parent = block
    mark_asker(blocks)
    if not blocks:
        return None
    private = info.get("private", False)
    members = info.get("members") if isinstance(info.get("members"), list) else []
    return Doc(
        doc_id=f"{key}#{folder}/{thread_ts}", source=key, title=title, source_type="message", blocks=blocks,
        authors=list(earlier[0].authors), date=earlier[0].date, groups=[f"slack:{folder}"] if private else [],
        meta={"format": "slack", "channel": folder,
              **({"members": [asdict(users.get(str(m)) or AuthorRef(handle=f"slack:{m}")) for m in members]}
                 if private else {})},
    )
