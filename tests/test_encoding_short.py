"""Short files that are not UTF-8 (under MIN_DETECT_BYTES, too little for detection): plainly Western
text is read as windows-1252 and its encoding recorded; binary and text of other scripts are still refused."""
from __future__ import annotations

from pathlib import Path

import pytest

from fakes import FakeEmbedder
from askcolleague.errors import LoadError
from askcolleague.index import status
from askcolleague.indexing.build import build
from askcolleague.loaders import SourceSpec, kind_of, load_source
from askcolleague.loaders.encoding import MIN_DETECT_BYTES, decode

MAX = 10_000_000


@pytest.mark.parametrize("data, text", [
    (b"Caf\xe9 cr\xe8me: 3\x80", "Café crème: 3€"),
    ("Grüße".encode("latin-1"), "Grüße"),
    ("Viele Grüße, Jürgen\r\n".encode("latin-1"), "Viele Grüße, Jürgen\r\n"),
    ("Renée’s notes — 5 €\n".encode("cp1252"), "Renée’s notes — 5 €\n"),  # windows-1252's own punctuation
    ("don´t: Ça va? À 10h.\tété\n".encode("cp1252"), "don´t: Ça va? À 10h.\tété\n"),  # one-letter words, an acute
    ("café".encode("latin-1"), "café"),
])
def test_short_western_text_is_read_as_windows_1252(data, text):
    assert len(data) < MIN_DETECT_BYTES
    assert decode(data) == (text, "cp1252")


@pytest.mark.parametrize("data", [
    "Привет мир".encode("cp1251"),  # words of accented letters only: another script, not Western text
    "Καλημέρα".encode("cp1253"),
    "Zażółć gęślą".encode("cp1250"),  # "Za¿ó³æ": a digit between letters
    "ÄÖÜ".encode("cp1252"),  # no plain letter anywhere: nothing to go on
    b"\xff\xd8\xff\xe0",  # the start of a JPEG
    b"\x89PNG\r\n\x1a\n",  # a PNG signature (a control byte)
    b"caf\xe9\x81",  # a byte windows-1252 leaves undefined: a Latin-1 C1 control, never text
    b"\x1b[31mrot\xe9\x1b[0m",  # terminal escapes
    bytes(range(0x80, 0xBF)),
    b"\xa9\xae\xb0\xb1 \xa7\xb6",  # symbols, no letters
])
def test_short_binary_or_other_scripts_are_still_refused(data):
    assert len(data) < MIN_DETECT_BYTES
    with pytest.raises(LoadError, match=r"^invalid UTF-8 at byte \d+, and too little text to tell its encoding; "
                                        r"re-save the file as UTF-8$"):
        decode(data)


def test_short_utf8_and_boms_are_unchanged():
    assert decode("Grüße".encode()) == ("Grüße", "utf-8")
    assert decode(b"\xef\xbb\xbfGr\xc3\xbc\xc3\x9fe") == ("Grüße", "utf-8-sig")
    assert decode(b"\xff\xfe" + "Grüße".encode("utf-16-le")) == ("Grüße", "utf-16-le")
    with pytest.raises(LoadError, match="binary data"):
        decode(b"Gr\xfc\x00\xdfe")  # a NUL byte: binary, as before


def test_a_short_cp1252_file_is_loaded_and_its_encoding_recorded(tmp_path):
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "kantine.txt").write_bytes("Kantine\n\nHeute Spätzle für 3,50 €.\n".encode("cp1252"))
    (kb / "gruss.md").write_bytes("# Grüße\n\nBis morgen, Jürgen\n".encode("latin-1"))
    (kb / "blob.txt").write_bytes(b"\xff\xd8\xff\xe0")
    p = kb / "kantine.txt"
    assert p.stat().st_size < MIN_DETECT_BYTES and (kb / "gruss.md").stat().st_size < MIN_DETECT_BYTES
    d, = load_source(SourceSpec(p, p.name, kind_of(p)), MAX)
    assert "Heute Spätzle für 3,50 €." in " ".join(b.text for b in d.blocks) and d.meta["encoding"] == "cp1252"
    rep = build([kb], tmp_path / "idx", embedder=FakeEmbedder(), warn=lambda m: None)
    assert [(Path(s.path).name, s.reason.split(";")[0]) for s in rep.skipped] == [
        ("blob.txt", "invalid UTF-8 at byte 0, and too little text to tell its encoding")]
    enc = {s["key"]: s.get("encoding") for s in status(tmp_path / "idx")["sources"]}
    assert enc == {"kb/gruss.md": "cp1252", "kb/kantine.txt": "cp1252"}
