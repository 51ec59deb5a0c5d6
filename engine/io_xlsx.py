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

_CELL = re.compile(rb"<((?:[\w.-]+:)?)c\b([^>]*?)(?:/>|>(.*?)</\1c>)", re.S)
_ATTR = re.compile(rb"""([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_REF = re.compile(rb"([A-Z]{1,3})([0-9]+)")
_ERROR = (b't="e"', b"t='e'")


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


def sheet_xml(data: bytes, sheet: str) -> bytes | None:
    """The XML of the sheet named `sheet` of an .xlsx workbook's bytes; None when the package does not say
    where it is (the caller then reads what calamine read)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = set(z.namelist())

            def rels_of(part: str) -> dict[str, str]:
                """A part's relationships: id -> target part."""
                folder, base = posixpath.split(part)
                rels = posixpath.join(folder, "_rels", base + ".rels")
                if rels not in names:
                    return {}
                out = {}
                for el in ElementTree.fromstring(z.read(rels)):
                    target = el.get("Target", "")
                    out[el.get("Id", "")] = (target.lstrip("/") if target.startswith("/")
                                             else posixpath.normpath(posixpath.join(folder, target)))
                return out

            root = ElementTree.fromstring(z.read("_rels/.rels"))
            book = next((el.get("Target", "").lstrip("/") for el in root
                         if el.get("Type", "").endswith("/officeDocument")), "xl/workbook.xml")
            targets = rels_of(book)
            for el in ElementTree.fromstring(z.read(book)).iter():
                if _local(el.tag) == "sheet" and el.get("name") == sheet:
                    rid = next((v for k, v in el.attrib.items() if _local(k) == "id"), None)
                    part = targets.get(rid or "")
                    return z.read(part) if part in names else None
    except (zipfile.BadZipFile, KeyError, ElementTree.ParseError, OSError, ValueError):
        return None
    return None


def odd_cells(xml: bytes) -> list[OddCell]:
    """The cells holding an Excel error, and the formulas saved without a result, in sheet order."""
    lo, hi = xml.find(b"sheetData"), xml.rfind(b"sheetData")  # single bytes are found fast (memchr)
    if xml.find(b"#", lo, hi) == -1 and xml.find(b"f", lo, hi) == -1:
        return []  # no error value (they start with '#') and no formula element
    prefix = _prefix(xml)
    starts = set()
    for needle in _ERROR:
        at = xml.find(needle)
        while at != -1:
            starts.add(xml.rfind(b"<" + prefix + b"c", 0, at))
            at = xml.find(needle, at + 1)
    if xml.find(b"f", lo, hi) != -1:  # a formula without a saved result (<v>) ends its cell: </f></c> or <f/></c>
        p = re.escape(prefix)
        for pattern in (rb"</" + p + rb"f>\s*</" + p + rb"c>", rb"<" + p + rb"f\b[^>]*/>\s*</" + p + rb"c>"):
            for m in re.finditer(pattern, xml):  # a literal start: scanned at find's speed
                starts.add(xml.rfind(b"<" + prefix + b"c", 0, m.start()))
    out = []
    for start in sorted(s for s in starts if s >= 0):
        cell = _CELL.match(xml, start)
        if cell is None:
            continue
        attrs = {k: (a if a else b) for k, a, b in _ATTR.findall(cell.group(2))}
        body = cell.group(3) or b""
        value = _child(body, prefix, b"v")
        ref = attrs.get(b"r")
        pos = _REF.fullmatch(ref) if ref else None
        row, column = (int(pos.group(2)), _column(pos.group(1))) if pos else (None, None)
        shown = ref.decode(errors="replace") if ref else None
        if attrs.get(b"t") == b"e":
            out.append(OddCell(shown, row, column, (value or b"#ERROR").decode(errors="replace"), error=True))
        elif value is None and b"<" + prefix + b"f" in body:
            formula = _child(body, prefix, b"f")
            text = "=" + html.unescape(formula.decode(errors="replace")) if formula else "(a formula)"
            out.append(OddCell(shown, row, column, text, error=False))
    return out


def first_column(xml: bytes) -> int:
    """The 0-based sheet column calamine's first column is: the leftmost holding a value (a cell with
    only a style, or a formula saved without a result, does not count)."""
    prefix = _prefix(xml)
    least = None
    for cell in _CELL.finditer(xml):
        body = cell.group(3)
        if not body or (_child(body, prefix, b"v") is None and b"<" + prefix + b"is" not in body):
            continue
        ref = dict((k, a or b) for k, a, b in _ATTR.findall(cell.group(2))).get(b"r")
        pos = _REF.fullmatch(ref) if ref else None
        if pos is None:
            return 0
        col = _column(pos.group(1))
        least = col if least is None else min(least, col)
        if least == 0:
            break
    return least or 0


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

