"""Spreadsheets and tables (.xlsx .xlsm .xls .ods .csv .tsv): one document per file, one section per sheet.

Every row becomes a line that carries its column names ("Region: EMEA · Q3 revenue: 4.2M"), so a
passage cut from the middle of a sheet still says what its numbers are; rows are grouped into
blocks of about one chunk each, and every block's context line (embedded with each of its
chunks) repeats the sheet's header. The header is the first row of mostly text cells among the
first rows (title lines above it are kept as the sheet's first line); a sheet without one uses
column letters. Authors and dates come from the workbook's core properties (.xlsx/.xlsm/.ods, OLE
summary information for .xls) or a sidecar. Formulas are read as the value the spreadsheet program
last computed. Huge sheets are bounded: ASKCOLLEAGUE_SHEET_MAX_ROWS rows per sheet and
ASKCOLLEAGUE_SHEET_MAX_CELLS cells per file are read, with a warning naming the file.
"""
from __future__ import annotations

import csv
import datetime as _dt
import io
import math
import re
import warnings
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..errors import LoadError
from ..models import Doc
from ..settings import Settings
from .base import check_zip, latest_date, norm_date, read_bytes, warn
from .encoding import decode
from .meta import fields, split_people
from .ocr import section_doc

SHEET_EXTENSIONS = (".xlsx", ".xlsm", ".xls", ".ods", ".csv", ".tsv")
_NUMERIC = re.compile(r"^[-+]?[$€£¥]?\s?\d[\d.,\s']*%?$|^\d{4}-\d{2}-\d{2}")
HEADER_SCAN = 15  # rows looked at to find the header
EMPTY_RUN = 10_000  # this many empty rows in a row end a sheet (styled rows to the sheet's bottom)


def _limits() -> tuple[int, int, int]:
    s = Settings.load()
    return max(int(s.sheet_max_rows), 1), max(int(s.sheet_max_cells), 1), max(int(s.chunk_tokens), 32)


def load(path: Path, key: str, max_bytes: int) -> list[Doc]:
    """Read one spreadsheet or CSV/TSV file into a Doc whose sections are its sheets."""
    ext = path.suffix.lower()
    data = read_bytes(path, max_bytes)
    meta: dict[str, Any] = {"format": ext.lstrip(".")}
    if ext in (".csv", ".tsv"):
        sheets, encoding = _csv(data, ext)
        if encoding != "utf-8":
            meta["encoding"] = encoding
    elif ext in (".xlsx", ".xlsm"):
        sheets, props = _xlsx(data, max_bytes)
        meta.update(props)
    elif ext == ".xls":
        sheets, props = _xls(data)
        meta.update(props)
    elif ext == ".ods":
        sheets, props = _ods(data, max_bytes)
        meta.update(props)
    else:
        raise LoadError(f"unsupported spreadsheet type '{ext}'; save it as .xlsx or .csv")
    return [_doc(path, key, meta, sheets)]


# ---------------------------------------------------------------- cells

def cell_text(v: Any) -> str:
    """A cell value as it reads: integers without '.0', dates in ISO form, text on one line."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, _dt.datetime):
        if v.time() == _dt.time(0):
            return v.date().isoformat()
        return v.replace(microsecond=0).isoformat(sep=" ", timespec="minutes")
    if isinstance(v, (_dt.date, _dt.time)):
        return v.isoformat()
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return ""
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else f"{v:.10g}"
    return " ".join(str(v).split())


def _is_label(v: Any) -> bool:
    return isinstance(v, str) and bool(v.strip()) and not _NUMERIC.match(v.strip())


def _letters(i: int) -> str:
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(65 + r) + s
    return s


# ---------------------------------------------------------------- rows to blocks

def _doc(path: Path, key: str, meta: dict[str, Any], sheets: Iterable[tuple[str, Iterator[list[Any]]]]) -> Doc:
    max_rows, max_cells, tokens = _limits()
    budget = int(tokens * 2.5)  # characters of rows per block: about one chunk with its context line
    cells_left = max_cells
    parts: list[tuple[str, str, str]] = []  # (section, context, text)
    names, n_rows, cut = [], 0, []
    for name, rows in sheets:
        if cells_left <= 0:
            cut.append(f"sheets after {names[-1]!r} not read (over ASKCOLLEAGUE_SHEET_MAX_CELLS={max_cells} cells)")
            break
        names.append(name)
        head: list[list[Any]] = []
        it = iter(rows)
        empty = 0
        for row in it:  # the first rows, to find the header
            if any(cell_text(v) for v in row):
                head.append(list(row))
                if len(head) >= HEADER_SCAN:
                    break
            else:
                empty += 1
                if empty >= EMPTY_RUN:
                    break
        if not head:
            continue
        width = max(sum(1 for v in r if cell_text(v)) for r in head)
        h = next((i for i, r in enumerate(head) if sum(1 for v in r if cell_text(v)) >= max(2, math.ceil(width / 2))
                  and all(_is_label(v) for v in r if cell_text(v))), None)
        captions = [" ".join(t for v in r if (t := cell_text(v))) for r in (head[:h] if h is not None else [])]
        if h is not None:
            header = [cell_text(v) or f"Column {_letters(i)}" for i, v in enumerate(head[h])]
            body: Iterator[list[Any]] = iter(head[h + 1:])
        else:
            header = [] if width <= 1 else [_letters(i) for i in range(max(len(r) for r in head))]
            body = iter(head)
        header_key = [c.casefold() for c in header]

        def all_rows() -> Iterator[list[Any]]:
            yield from body
            yield from it

        lines: list[str] = list(captions)
        size, first, last, count, empty = sum(map(len, lines)), None, None, 0, 0
        context = f"Columns: {' · '.join(c for c in header if c)}" if header else None

        def flush() -> None:
            nonlocal lines, size, first
            if lines:
                rng = f"rows {first}–{last}" if first is not None else "title"
                parts.append((name, f"{context} ({rng})" if context else rng, "\n".join(lines)))
            lines, size, first = [], 0, None

        row_no = (h + 1 if h is not None else 0)  # rows counted from the header (data row 1 = first below it)
        for row in all_rows():
            vals = [cell_text(v) for v in row]
            if not any(vals):
                empty += 1
                if empty >= EMPTY_RUN:
                    break
                continue
            empty = 0
            if header and [v.casefold() for v in vals[:len(header)]] == header_key:
                continue  # the header repeated (a report printed in pages)
            count += 1
            if count > max_rows:
                cut.append(f"sheet {name!r} has more than {max_rows} rows; read the first {max_rows} "
                           "(raise ASKCOLLEAGUE_SHEET_MAX_ROWS to read more)")
                break
            cells = sum(1 for v in vals if v)
            cells_left -= cells
            if cells_left < 0:
                cut.append(f"more than {max_cells} cells; stopped in sheet {name!r} at data row {count} "
                           "(raise ASKCOLLEAGUE_SHEET_MAX_CELLS to read more)")
                break
            row_no += 1
            if header:
                labels = header + [_letters(i) for i in range(len(header), len(vals))]
                line = " · ".join(f"{lab}: {v}" for lab, v in zip(labels, vals) if v)
            else:
                line = " · ".join(v for v in vals if v)
            if lines and size + len(line) > budget:
                flush()
            if first is None:
                first = row_no
            last = row_no
            lines.append(line)
            size += len(line) + 1
        flush()
        n_rows += min(count, max_rows)
    for message in cut:
        warn(key, message)
    if not parts:
        raise LoadError("no cells with values found; add content or remove the file")
    meta = {**meta, "sheets": names, "rows": n_rows, **({"truncated": True} if cut else {})}
    sections = [(name if len(names) > 1 or meta["format"] not in ("csv", "tsv") else None, text) for name, _, text in parts]
    doc = section_doc(path, key, meta, sections)
    for block, (_, context, _) in zip(doc.blocks, parts):
        block.context = context
    return doc


# ---------------------------------------------------------------- readers

def _csv(data: bytes, ext: str) -> tuple[list[tuple[str, Iterator[list[Any]]]], str]:
    text, encoding = decode(data, ext.lstrip(".").upper())
    lines = text.split("\n", 1)
    delimiter = None
    m = re.fullmatch(r"\s*sep=(.)\s*", lines[0])  # Excel's "sep=;" first line
    if m:
        delimiter, text = m.group(1), lines[1] if len(lines) > 1 else ""
    elif ext == ".tsv":
        delimiter = "\t"
    else:
        try:
            delimiter = csv.Sniffer().sniff(text[:8192], delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False))
    except csv.Error as e:  # a field over the csv module's size limit, or a NUL
        raise LoadError(f"malformed {ext.lstrip('.').upper()} ({e}); fix the quoting or split the file") from None
    return [("Sheet", iter(rows))], encoding


def _props(title: Any, creator: Any, modifier: Any, created: Any, modified: Any, keywords: Any = None) -> dict[str, Any]:
    authors = split_people(creator) if creator else split_people(modifier)
    return fields({"title": title, "authors": authors, "date": latest_date(created, modified), "tags": keywords})


def _xlsx(data: bytes, max_bytes: int) -> tuple[Iterator[tuple[str, Iterator[list[Any]]]], dict[str, Any]]:
    check_zip(io.BytesIO(data), max_bytes, "XLSX", fix="re-save it, or raise ASKCOLLEAGUE_MAX_FILE_MB")

    import openpyxl  # (lazy: loaded only when used, so start-up stays fast)

    try:
        with warnings.catch_warnings():  # "Data Validation extension is not supported" and the like
            warnings.simplefilter("ignore")
            wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as e:
        raise LoadError(f"not a valid Excel workbook ({type(e).__name__}); re-save it as .xlsx") from None
    p = wb.properties
    props = _props(p.title, p.creator, p.lastModifiedBy, p.created, p.modified, p.keywords)

    def sheets() -> Iterator[tuple[str, Iterator[list[Any]]]]:
        try:
            for ws in wb.worksheets:
                if hasattr(ws, "iter_rows"):
                    yield ws.title, (list(r) for r in ws.iter_rows(values_only=True))
        finally:
            wb.close()

    return sheets(), props


def _xls(data: bytes) -> tuple[list[tuple[str, Iterator[list[Any]]]], dict[str, Any]]:
    import xlrd  # (lazy: loaded only when used, so start-up stays fast)

    try:
        book = xlrd.open_workbook(file_contents=data, on_demand=True)
    except Exception as e:
        msg = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise LoadError(f"not a valid Excel 97-2003 workbook ({msg}); re-save it as .xlsx") from None
    props = _ole_props(data) or fields({"authors": split_people(book.user_name)})

    def rows(sheet: Any) -> Iterator[list[Any]]:
        for r in range(sheet.nrows):
            out = []
            for c in sheet.row(r):
                if c.ctype == xlrd.XL_CELL_DATE:
                    try:
                        out.append(xlrd.xldate_as_datetime(c.value, book.datemode))
                    except Exception:
                        out.append(c.value)
                elif c.ctype == xlrd.XL_CELL_BOOLEAN:
                    out.append(bool(c.value))
                elif c.ctype in (xlrd.XL_CELL_ERROR, xlrd.XL_CELL_BLANK, xlrd.XL_CELL_EMPTY):
                    out.append(None)
                else:
                    out.append(c.value)
            yield out

    def sheets() -> Iterator[tuple[str, Iterator[list[Any]]]]:
        try:
            for i in range(book.nsheets):
                yield book.sheet_by_index(i).name, rows(book.sheet_by_index(i))
        finally:
            book.release_resources()

    return sheets(), props


def _ole_props(data: bytes) -> dict[str, Any]:
    """Title, author, dates and keywords from an OLE file's SummaryInformation (.xls, .doc, .ppt)."""
    try:
        import olefile  # (lazy: loaded only when used, so start-up stays fast)

        with olefile.OleFileIO(data) as ole:
            m = ole.get_metadata()
    except Exception:  # no or damaged summary stream: the sheets may still be fine
        return {}

    def s(v: Any) -> str | None:
        return v.decode("cp1252", "replace").strip("\x00 ") if isinstance(v, bytes) else v

    return _props(s(m.title), s(m.author), s(m.last_saved_by), m.create_time, m.last_saved_time, s(m.keywords))


def _ods(data: bytes, max_bytes: int) -> tuple[list[tuple[str, Iterator[list[Any]]]], dict[str, Any]]:
    check_zip(io.BytesIO(data), max_bytes, "ODS", fix="re-save it, or raise ASKCOLLEAGUE_MAX_FILE_MB")
    from odf.opendocument import load as odf_load  # (lazy: loaded only when used, so start-up stays fast)
    from odf.table import Table, TableRow  # (lazy: loaded only when used, so start-up stays fast)

    try:
        doc = odf_load(io.BytesIO(data))
    except Exception as e:
        raise LoadError(f"not a valid OpenDocument spreadsheet ({type(e).__name__}); re-save it as .ods") from None
    props = odf_props(doc)
    _, max_cells, _ = _limits()

    def value(cell: Any) -> Any:
        kind = cell.getAttribute("valuetype")
        if kind in ("float", "percentage", "currency"):
            try:
                return float(cell.getAttribute("value"))
            except (TypeError, ValueError):
                pass
        elif kind == "date":
            return norm_date(cell.getAttribute("datevalue")) or odf_text(cell)
        elif kind == "boolean":
            return cell.getAttribute("booleanvalue") == "true"
        return odf_text(cell) or None

    def rows(table: Any) -> Iterator[list[Any]]:
        for row in table.getElementsByType(TableRow):
            out: list[Any] = []
            for cell in row.childNodes:
                if cell.qname[1] not in ("table-cell", "covered-table-cell"):
                    continue
                v = value(cell) if cell.qname[1] == "table-cell" else None
                rep = int(cell.getAttribute("numbercolumnsrepeated") or 1)
                out.extend([v] * min(rep, 1024))
            while out and out[-1] in (None, ""):
                out.pop()
            rep = int(row.getAttribute("numberrowsrepeated") or 1)
            for _ in range(min(rep, max_cells) if out else min(rep, EMPTY_RUN)):
                yield out

    sheets = [(t.getAttribute("name") or f"Sheet{i + 1}", rows(t)) for i, t in enumerate(doc.spreadsheet.getElementsByType(Table))]
    return sheets, props


def odf_text(el: Any) -> str:
    """The text of an OpenDocument element, paragraphs on their own lines."""
    from odf import teletype  # (lazy: loaded only when used, so start-up stays fast)
    from odf.text import P  # (lazy: loaded only when used, so start-up stays fast)

    paras = el.getElementsByType(P)
    return "\n".join(teletype.extractText(p) for p in paras) if paras else teletype.extractText(el)


def odf_props(doc: Any) -> dict[str, Any]:
    """Title, authors, date and keywords of an OpenDocument file's meta.xml."""
    from odf import teletype  # (lazy: loaded only when used, so start-up stays fast)
    from odf import dc
    from odf import meta as odf_meta  # (lazy: loaded only when used, so start-up stays fast)

    def first(kind: Any) -> str | None:
        els = doc.meta.getElementsByType(kind) if doc.meta is not None else []
        return teletype.extractText(els[0]).strip() if els else None

    keywords = [teletype.extractText(k).strip() for k in doc.meta.getElementsByType(odf_meta.Keyword)] if doc.meta else []
    return _props(first(dc.Title), first(odf_meta.InitialCreator), first(dc.Creator),
                  first(odf_meta.CreationDate), first(dc.Date), keywords or None)
