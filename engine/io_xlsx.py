"""What calamine (through fastexcel) does not say about an .xlsx sheet's cells, read from the sheet's XML.

calamine reads a cell that holds an Excel error (#DIV/0!, #N/A, #VALUE!, ...) and a formula saved without its
result (a file written by a program, never opened in Excel) as empty cells; fastexcel reports cell errors only
through pyarrow. An empty optional field scores as "not applicable", so a failed `=完成/目标` would score
silently. The sheet's XML says which cells they are: such a cell reads as its error text, or as its formula,
and the parse of the field then names it by row and column like any other cell that is not a number.

calamine also starts a sheet at its first used column: a sheet whose table starts in column C has that column
as its first. `first_column` says which it is, so that a message can name columns by their Excel letters.

The XML is scanned with byte searches (a sheet of 30,000 rows x 60 columns is ~64 MB of XML); cells are
parsed one by one only where an error or a formula is found.
"""

from __future__ import annotations

import html
import io
import posixpath
import re
import zipfile
from dataclasses import dataclass
from xml.etree import ElementTree

_CELL = re.compile(rb"<((?:[\w.-]+:)?)c\b([^>]*?)(?:/>|>(.*?)</\1c\s*>)", re.S)
_ATTR = re.compile(rb"""([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_REF = re.compile(rb"([A-Za-z]{1,3})([0-9]+)")
_TEXT_TYPES = (b"str", b"d")  # calamine keeps a cell of these types even when its <v> is empty
_NOT_CELLS = re.compile(rb"<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>", re.S)  # (no producer writes them in cells)


class Unreadable(Exception):
    """The sheet's XML could not be found or read (the workbook is damaged, or not an ordinary .xlsx)."""


@dataclass(frozen=True)
class OddCell:
    """A cell calamine reads as empty that is not: `text` is what it reads as instead."""

    ref: str | None  # its address (D7), None when the file does not record it
    row: int | None  # 1-based sheet row
    column: int | None  # 0-based sheet column (A = 0)
    text: str  # the error ('#DIV/0!'), or the formula ('=B2/C2') saved without its result
    error: bool


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _sheets(z: zipfile.ZipFile) -> list[tuple[str, str]]:
    """Each sheet of the workbook, in its order (calamine's): (its part, its kind: worksheet, chartsheet, ...)."""
    names = set(z.namelist())

    def rels_of(part: str) -> dict[str, tuple[str, str]]:
        """A part's relationships: id -> (target part, type)."""
        folder, base = posixpath.split(part)
        rels = posixpath.join(folder, "_rels", base + ".rels")
        if rels not in names:
            return {}
        out = {}
        for el in ElementTree.fromstring(z.read(rels)):
            target = el.get("Target", "")
            out[el.get("Id", "")] = (target.lstrip("/") if target.startswith("/")
                                     else posixpath.normpath(posixpath.join(folder, target)),
                                     el.get("Type", "").rsplit("/", 1)[-1])
        return out

    root = ElementTree.fromstring(z.read("_rels/.rels"))
    book = next((el.get("Target", "").lstrip("/") for el in root
                 if el.get("Type", "").endswith("/officeDocument")), "xl/workbook.xml")
    targets = rels_of(book)
    out = []
    for el in ElementTree.fromstring(z.read(book)).iter():
        if _local(el.tag) == "sheet":
            rid = next((v for k, v in el.attrib.items() if _local(k) == "id"), None)
            out.append(targets.get(rid or "", ("", "")))
    return out


def sheet_kinds(data: bytes) -> list[str] | None:
    """Each sheet's kind (worksheet, chartsheet, ...) in the workbook's order; None when it cannot be told."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return [kind for _, kind in _sheets(z)]
    except Exception:  # noqa: BLE001 - a damaged file: sheet_xml says what is wrong with it
        return None


def sheet_xml(data: bytes, index: int) -> bytes:
    """The XML of the `index`-th sheet (0-based, in the workbook's order, which is calamine's) of an .xlsx
    workbook's bytes. Raises Unreadable, saying why, when the package does not say where it is or it cannot
    be read: the caller must not take calamine's empty cells on trust then."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            sheets = _sheets(z)
            if not 0 <= index < len(sheets):
                raise Unreadable(f"the workbook lists {len(sheets)} sheets")
            part = sheets[index][0]
            if part not in z.namelist():
                raise Unreadable("the sheet's part is missing from the file")
            return z.read(part)
    except Unreadable:
        raise
    except Exception as e:  # noqa: BLE001 - zipfile, zlib and ElementTree raise many kinds on a damaged file
        raise Unreadable(str(e).splitlines()[0] if str(e) else type(e).__name__) from None


def cells_of(xml: bytes) -> bytes:
    """The sheet's cells: its sheetData element (calamine reads nothing after it), without comments, CDATA
    sections and processing instructions (which calamine skips, and which a byte scan would take for cells)."""
    lo, hi = xml.find(b"sheetData"), xml.rfind(b"sheetData")
    if not 0 <= lo < hi:
        return b""
    cells = xml[max(0, xml.rfind(b"<", 0, lo)):xml.find(b">", hi) + 1]  # from its tag: the namespace prefix
    return _NOT_CELLS.sub(b"", cells) if b"<!" in cells or b"<?" in cells else cells


def merged(xml: bytes) -> list[tuple[str, int, int, int, int]]:
    """The sheet's merged ranges (the whole sheet's XML: they follow its cells): (A4:A6, first row, first
    column, last row, last column), rows 1-based, columns 0-based. Only a range's first cell holds its value;
    calamine reads the others as empty."""
    out: list[tuple[str, int, int, int, int]] = []
    tail = max(0, xml.rfind(b"sheetData"))  # (a scan of the cells before them would cost ~0.4 s at 30k rows)
    if xml.find(b"mergeCell", tail) == -1:
        return out
    pattern = re.compile(rb"""<(?:[\w.-]+:)?mergeCell\s[^>]*?\bref\s*=\s*["']([A-Za-z]+[0-9]+):([A-Za-z]+[0-9]+)["']""")
    for m in pattern.finditer(xml, tail):
        (r1, c1), (r2, c2) = _position(m.group(1)), _position(m.group(2))
        if r1 is None or c1 is None or r2 is None or c2 is None:
            continue
        text = (m.group(1) + b":" + m.group(2)).decode().upper()
        out.append((text, min(r1, r2), min(c1, c2), max(r1, r2), max(c1, c2)))
    return out


def odd_cells(xml: bytes) -> list[OddCell]:
    """The cells holding an Excel error, and the formulas saved without a result, in sheet order (`xml`: the
    sheet's `cells_of`)."""
    lo, hi = 0, len(xml)
    hashes = xml.find(b"#", lo, hi) != -1  # an error value starts with '#'
    formulas = xml.find(b"f", lo, hi) != -1  # single bytes are found fast (memchr)
    if not hashes and not formulas:
        return []
    prefix = _prefix(xml)
    starts: set[int] = set()
    if hashes:  # each '#' in a cell: that cell (then on after it; a text full of '#' is one cell)
        at = xml.find(b"#", lo, hi)
        while at != -1:
            start = _cell_start(xml, prefix, at, lo)
            cell = _CELL.match(xml, start, hi) if start != -1 and start not in starts else None
            if cell is not None and cell.end() > at:
                starts.add(start)
                at = cell.end()
            else:  # not in a cell (e.g. in a row's attribute): on past the tag or text holding it
                at = max(at + 1, xml.find(b">", at, hi) + 1)
            at = xml.find(b"#", at, hi)
    if formulas:  # a formula without a saved result ends its cell: </f></c>, </f><v/></c>, <f .../></c>
        p = re.escape(prefix)
        end = rb"\s*(?:<" + p + rb"v\s*/>|<" + p + rb"v>\s*</" + p + rb"v>)?\s*</" + p + rb"c\s*>"
        for pattern in (rb"</" + p + rb"f\s*>" + end, rb"<" + p + rb"f\b[^>]*/>" + end):
            for m in re.compile(pattern).finditer(xml, lo, hi):  # a literal start: scanned at find's speed
                starts.add(_cell_start(xml, prefix, m.start(), lo))
    out = []
    for start in sorted(s for s in starts if s >= 0):
        cell = _CELL.match(xml, start, hi)
        if cell is None:
            continue
        attrs = _attrs(cell.group(2))
        body = cell.group(3) or b""
        value = _child(body, prefix, b"v")
        row, column = _position(attrs.get(b"r"))
        ref = attrs.get(b"r")
        shown = ref.decode(errors="replace").upper() if ref else None
        kind = attrs.get(b"t")
        if kind == b"e":
            text = html.unescape(value.decode(errors="replace")) if value else "#ERROR"  # &#35;N/A is #N/A
            out.append(OddCell(shown, row, column, text, error=True))
        elif (value is None or (not value and kind != b"str")) and (formula := _child(body, prefix, b"f")) is not None:
            text = "=" + html.unescape(formula.decode(errors="replace")) if formula else "(a formula)"
            out.append(OddCell(shown, row, column, text, error=False))  # (t="str" with <v></v>: the text '')
    return out


def first_column(xml: bytes) -> int | None:
    """The 0-based sheet column calamine's first column is: the leftmost holding a value (a cell with
    only a style, a number cell with an empty <v>, or a formula saved without a result does not count).
    None when a cell holding a value does not record its column. `xml`: the sheet's `cells_of`."""
    prefix = _prefix(xml)
    lo, hi = 0, len(xml)
    least = None
    for cell in _CELL.finditer(xml, lo, hi):
        body = cell.group(3)
        if not body:
            continue
        attrs = _attrs(cell.group(2))
        value = _child(body, prefix, b"v")
        if _child(body, prefix, b"is") is None and not (value or (value is not None and attrs.get(b"t") in
                                                                 _TEXT_TYPES)):
            continue
        _, col = _position(attrs.get(b"r"))
        if col is None:
            return None
        least = col if least is None else min(least, col)
        if least == 0:
            break
    return least or 0


def _cell_start(xml: bytes, prefix: bytes, at: int, lo: int) -> int:
    """Where the cell element holding position `at` starts (-1: none)."""
    tag = b"<" + prefix + b"c"
    start = xml.rfind(tag, lo, at)
    while start != -1 and xml[start + len(tag):start + len(tag) + 1] not in (b" ", b">", b"/", b"\t", b"\n", b"\r"):
        start = xml.rfind(tag, lo, start)  # <col ...>, <cfRule ...>: not a cell
    return start


def _attrs(text: bytes) -> dict[bytes, bytes]:
    return {k.rsplit(b":", 1)[-1]: (a if a else b) for k, a, b in _ATTR.findall(text)}


def _position(ref: bytes | None) -> tuple[int | None, int | None]:
    """(1-based row, 0-based column) of a cell reference such as D7, or Nones."""
    pos = _REF.fullmatch(ref.strip()) if ref else None
    return (int(pos.group(2)), _column(pos.group(1).upper())) if pos else (None, None)


def _prefix(xml: bytes) -> bytes:
    """The namespace prefix the sheet's elements are written with ('' or e.g. 'x:')."""
    m = re.search(rb"<((?:[\w.-]+:)?)sheetData\b", xml)
    return m.group(1) if m else b""


def _child(body: bytes, prefix: bytes, name: bytes) -> bytes | None:
    m = re.search(rb"<" + re.escape(prefix + name) + rb"(?:\s[^>]*)?(?:/>|>(.*?)</" + re.escape(prefix + name)
                  + rb">)", body, re.S)
    return None if m is None else (m.group(1) or b"")


def _column(letters: bytes) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ch - 64
    return n - 1

