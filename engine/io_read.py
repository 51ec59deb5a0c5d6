"""Reading input tables exactly: CSV (UTF-8, UTF-8 with BOM, GBK/GB18030), XLSX and Parquet.

CSV and XLSX cells come back as String, so the caller parses every number from its digits
and can name the cell that is wrong; Parquet keeps its types. Header names and text cells
are stripped and empty text becomes null. Row i of the returned frame is spreadsheet row
i + 2 (header = row 1): blank rows inside the table are kept as all-null rows so that the
numbering never shifts; only blank rows at the end are dropped.

Every failure is a `KaoheError` naming the file and, where it applies, the row and column.
"""

from __future__ import annotations

import codecs
import concurrent.futures
import csv
import functools
import hashlib
import io
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, NoReturn

import fastexcel
import polars as pl

from .errors import KaoheError, Loc, Notice, Problem, allowed, did_you_mean

FORMATS = {".csv": "csv", ".xlsx": "xlsx", ".parquet": "parquet"}
ENCODING_HINT = "save it from Excel as 'CSV UTF-8', or pass --encoding (e.g. --encoding gbk)"
QUOTE_HINT = ('check the quotes near there: a cell containing a comma, quote or line break must be '
              'wrapped in double quotes, with inner quotes doubled ("a""b")')
ENCODING_HINT_ZH = "请在 Excel 中另存为 'CSV UTF-8', 或加上 --encoding (如 --encoding gbk)"
QUOTE_HINT_ZH = '请检查附近的引号: 含逗号、引号或换行的单元格须用英文双引号括起来, 其中的引号要写两次 ("a""b")'
EMPTY_HINT_ZH = "第 1 行应是列名, 下面是数据行"
ROW1_EMPTY_ZH = ("第 1 行是空的: 表头必须是第一行", "请删除表头上方的空行")
NOT_XLSX_ZH = "文件可能已损坏, 或并不是真正的 .xlsx; 请在 Excel 中打开并另存为 .xlsx"
DAMAGED_ZH = "文件可能已损坏; 请在 Excel 中打开并另存为 .xlsx"
MAX_LISTED = 20


@dataclass(frozen=True, slots=True)
class TableInfo:
    """What was read: `encoding` for CSV (utf-8, utf-8-sig, gb18030 or as given), `sheet` for XLSX."""

    path: str
    format: str  # "csv" | "xlsx" | "parquet"
    encoding: str | None
    sheet: str | None
    sha256: str


def _fail(file: str, message: str, hint: str = "", *, row: int | None = None, column: str | None = None,
          zh: tuple[str, str] | None = None) -> NoReturn:
    raise KaoheError([Problem(Loc(file, row=row, column=column), message, hint=hint, zh=zh)])


WHAT_ZH = {"units": "单位数据", "events": "事件记录", "scenario": "情景", "data": "数据"}  # `what` of read_table


def _zh(what: str) -> str:
    return WHAT_ZH.get(what, what)


def _column_zh(text: str) -> str:
    """A column as `column(i)` names it, in Chinese: 'column 3 (C)' -> '第 3 列 (C)', 'column C' -> 'C 列'."""
    m = re.fullmatch(r"column (\d+)( \(\w+\))?", text)
    if m:
        return f"第 {m[1]} 列{m[2] or ''}"
    return text.removeprefix("column ") + " 列" if text.startswith("column ") else text


def _letter(i: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(65 + r) + s
    return s


def _read_bytes(path: str | Path, file: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        _fail(file, f"{what} file not found", "check the path (it is relative to the current directory)",
              zh=(f"找不到{_zh(what)}文件", "请检查路径 (相对于当前目录)"))
    except IsADirectoryError:
        _fail(file, f"is a directory, not a {what} file", "give the path of the file itself",
              zh=(f"这是一个文件夹, 不是{_zh(what)}文件", "请给出文件本身的路径"))
    except PermissionError:
        _fail(file, f"permission denied reading the {what} file",
              "close it in Excel/WPS if it is open, or check access",
              zh=(f"没有读取{_zh(what)}文件的权限", "如果它正在 Excel/WPS 中打开, 请先关闭; 或检查访问权限"))
    except OSError as e:
        _fail(file, f"cannot read the {what} file: {e.strerror}", zh=(f"无法读取{_zh(what)}文件: {e.strerror}", ""))


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (streamed)."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError as e:
        _fail(str(path), f"cannot read: {e.strerror}", "check the path")
    return h.hexdigest()


def read_table(path: str | Path, *, encoding: str | None = None, sheet: str | int | None = None,
               what: str = "data", allow_empty: bool = False,
               wanted: Callable[[str], bool] | None = None) -> pl.DataFrame:
    """A table as a DataFrame (String columns for CSV/XLSX); see `read_table_info`."""
    return read_table_info(path, encoding=encoding, sheet=sheet, what=what, allow_empty=allow_empty,
                           wanted=wanted)[0]


def read_table_info(path: str | Path, *, encoding: str | None = None, sheet: str | int | None = None,
                    what: str = "data", allow_empty: bool = False,
                    wanted: Callable[[str], bool] | None = None) -> tuple[pl.DataFrame, TableInfo]:
    """Read .csv/.xlsx/.parquet. `encoding` (CSV) is detected when None: UTF-8 (BOM optional), then
    GB18030 (a superset of GBK). `sheet` (XLSX) is a name or a 1-based number; default the first shown.
    `wanted` (Parquet): read only the columns whose names it accepts (the rest are never decoded)."""
    file = str(path)
    fmt = FORMATS.get(Path(path).suffix.lower())
    if Path(path).is_dir():
        _fail(file, f"is a directory, not a {what} file", "give the path of the file itself",
              zh=(f"这是一个文件夹, 不是{_zh(what)}文件", "请给出文件本身的路径"))
    if fmt is None:
        ext = Path(path).suffix or "(none)"
        old = ext.lower() in (".xls", ".et", ".ods", ".txt", ".tsv")
        hint = "save it from Excel as .xlsx or CSV" if old else ""
        _fail(file, f"unknown {what} file type '{ext}'; {allowed(FORMATS)}", hint,
              zh=(f"不支持的{_zh(what)}文件类型 '{ext}'; 可用: {', '.join(sorted(FORMATS))}",
                  "请在 Excel 中另存为 .xlsx 或 CSV" if old else ""))
    data = _read_bytes(path, file, what)
    digest = hashlib.sha256(data).hexdigest()
    used_sheet: str | None = None
    if fmt == "csv":
        text, encoding = _decode(data, file, encoding)
        df = _tidy(_parse_csv(text, file, what), file, what, column=_csv_column, allow_empty=allow_empty)
    elif fmt == "xlsx":
        raw, used_sheet, column = _parse_xlsx(data, file, sheet, what)
        df = _tidy(raw, file, what, column=column, where=f" (sheet '{used_sheet}')", allow_empty=allow_empty)
    else:
        df = _parquet(data, file, what, wanted)
    return df, TableInfo(file, fmt, encoding if fmt == "csv" else None, used_sheet, digest)


def _decode(data: bytes, file: str, encoding: str | None) -> tuple[str, str]:
    def where(e: UnicodeDecodeError, base: int = 0) -> str:
        at = base + e.start
        line = data.count(b"\n", 0, at) + 1
        return f"byte 0x{data[at]:02X} at offset {at}, line {line}"

    if encoding is not None:
        try:
            "a".encode(encoding)  # a text encoding: not rot13, base64, ... nor 'undefined'
        except (LookupError, UnicodeError):
            _fail(file, f"unknown text encoding '{encoding}'", "use utf-8, utf-8-sig, gbk or gb18030",
                  zh=(f"未知的文本编码 '{encoding}'", "请用 utf-8、utf-8-sig、gbk 或 gb18030"))
        try:
            return data.decode(encoding).removeprefix("\ufeff"), encoding
        except UnicodeDecodeError as e:
            _fail(file, f"not valid {encoding} text ({where(e)})", ENCODING_HINT,
                  zh=(f"不是有效的 {encoding} 文本 ({where(e)})", ENCODING_HINT_ZH))
        except UnicodeError as e:  # a codec that says no more than that (punycode, idna)
            _fail(file, f"not valid {encoding} text ({e})", ENCODING_HINT,
                  zh=(f"不是有效的 {encoding} 文本 ({e})", ENCODING_HINT_ZH))
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        _fail(file, "the file is UTF-16 text (Excel 'Unicode Text'), not CSV", "save it from Excel as 'CSV UTF-8'",
              zh=("这是 UTF-16 文本 (Excel 的 'Unicode 文本'), 不是 CSV", "请在 Excel 中另存为 'CSV UTF-8'"))
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[bom:].decode("utf-8"), "utf-8-sig" if bom else "utf-8"
    except UnicodeDecodeError as e8:
        utf8 = where(e8, bom)
    try:
        return data.decode("gb18030"), "gb18030"
    except UnicodeDecodeError as eg:
        _fail(file, f"cannot decode the text: not UTF-8 ({utf8}) and not GBK/GB18030 ({where(eg)})", ENCODING_HINT,
              zh=(f"无法识别文本编码: 不是 UTF-8 ({utf8}), 也不是 GBK/GB18030 ({where(eg)})", ENCODING_HINT_ZH))


def _plain_shape(data: bytes) -> tuple[int, int] | None:
    """(records, cells per record) of a CSV text (UTF-8 after a BOM) in which every line is one record with the header's
    number of cells, when that can be seen without parsing: no quotes, no NUL or other control character the
    two readings could trim differently, no lone CR, a header that holds something, and no line of another
    width that holds anything. None otherwise: the csv module looks (`_parse_csv`). Polars splits the lines
    (a CSV reading with a separator the text lacks and no quoting) and counts their cells: 1M lines of 42
    cells in ~0.4 s, against 1.3 s splitting one Python string and 5 s for the csv module (which builds
    every record as Python lists)."""
    # \x1c-\x1f: blank to Python's strip (the csv path) but not to Polars' (Rust's White_Space); \x01 splits
    if any(c in data for c in (b'"', b"\0", b"\x01", b"\x1c", b"\x1d", b"\x1e", b"\x1f")) or data.endswith(b"\r"):
        return None
    try:
        lines = pl.read_csv(data, has_header=False, separator="\x01", quote_char=None, infer_schema=False,
                            new_columns=["line"]).get_column("line").fill_null("")
    except pl.exceptions.PolarsError:
        return None
    if lines.len() != data.count(b"\n") + (not data.endswith(b"\n")):
        return None  # a line Polars skipped (or split otherwise): the csv module's reading counts it
    if b"\r" in data and lines.str.contains("\r", literal=True).any():
        return None  # a lone CR (Polars takes a line's CRLF end off; a CR elsewhere stays in the line)
    line = pl.col("line")
    shape = lines.to_frame().select(line, cells=pl.when(line == "").then(0)
                                    .otherwise(line.str.count_matches(",", literal=True) + 1))
    width = shape.item(0, "cells")
    # whether a line holds anything matters for the header and for lines of another width (usually none)
    odd = shape.with_row_index("i").filter((pl.col("i") == 0) | (pl.col("cells") != width)).select(
        filled=line.str.replace_all(",", "", literal=True).str.strip_chars() != "").to_series()
    if not odd[0] or odd.slice(1).any():
        return None  # an empty header or a ragged row: the csv module's reading says exactly what
    return shape.height, width


def _parse_csv(text: str, file: str, what: str) -> pl.DataFrame:
    """Polars parses the values; each record's cells are counted (`_plain_shape`, or the csv module), which
    polars cannot report (it pads short rows silently)."""
    # with a BOM first (Polars takes it off), Polars never reads the start as a compressed stream: a text
    # starting 'x^' or 'x\x01' is a zlib header to it ("corrupt deflate stream")
    first = text.split("\n", 1)[0]
    if "\t" in first and "," not in first:  # WPS/Excel '文本文件(制表符分隔)' saved as .csv
        _fail(file, "the file is separated by tabs, not commas", "save it from Excel or WPS as 'CSV UTF-8 (comma "
              "delimited)'", row=1, zh=("文件是用制表符分隔的, 不是逗号",
                                        "请在 Excel 或 WPS 中另存为“CSV UTF-8 (逗号分隔)”"))
    data = text.encode("utf-8-sig")
    plain = _plain_shape(data)
    if plain is not None:
        return _read_csv(text, data, file, *plain)
    try:
        records = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as e:
        _fail(file, f"cannot parse as CSV: {e}", QUOTE_HINT, zh=(f"无法按 CSV 解析: {e}", QUOTE_HINT_ZH))
    if not any(c.strip() for r in records for c in r):
        _fail(file, f"the {what} file is empty", "row 1 must hold the column names, data rows follow",
              zh=(f"{_zh(what)}文件是空的", EMPTY_HINT_ZH))
    if not any(c.strip() for c in records[0]):
        _fail(file, "row 1 is empty: the header must be the first row", "delete the empty rows above the header",
              row=1, zh=ROW1_EMPTY_ZH)
    width = len(records[0])
    note = _note_start([sum(1 for c in r if c.strip()) for r in records[1:]])  # a note's row may be short
    table = records if note is None else records[:note + 1]
    problems = [Problem(Loc(file, row=i + 1), f"this row has {len(r)} cells but the header (row 1) has {width}",
                        hint="look for a missing or extra comma; wrap cells containing commas in double quotes",
                        zh=(f"这一行有 {len(r)} 个单元格, 而表头 (第 1 行) 有 {width} 个",
                            "请检查是否少了或多了逗号; 含逗号的单元格要用英文双引号括起来"))
                for i, r in enumerate(table) if len(r) != width and any(c.strip() for c in r)]
    if problems:
        raise KaoheError(_cap(problems, file))
    return _read_csv(text, data, file, len(records), width)


def _read_csv(text: str, data: bytes, file: str, rows: int, width: int) -> pl.DataFrame:
    """The cells of `text` (`data`: its UTF-8, after a BOM), all as text, by Polars; it must see the `rows`
    records of `width` cells counted."""
    try:
        raw = pl.read_csv(io.BytesIO(data), has_header=False, infer_schema=False,
                          empty_string_is_null=False, truncate_ragged_lines=True, raise_if_empty=False)
    except (pl.exceptions.PolarsError, UnicodeError) as e:
        first = str(e).splitlines()[0]
        _fail(file, f"cannot parse as CSV: {first}", QUOTE_HINT, row=_quote_row(text),
              zh=(f"无法按 CSV 解析: {first}", QUOTE_HINT_ZH))
    if raw.height != rows or raw.width != width:
        _fail(file, f"cannot parse as CSV unambiguously ({rows} rows by one reading, {raw.height} by another)",
              QUOTE_HINT + "; lines must end in CRLF or LF, not a lone CR", row=_quote_row(text),
              zh=(f"CSV 的解析有歧义 (一种读法 {rows} 行, 另一种 {raw.height} 行)",
                  QUOTE_HINT_ZH + "; 行尾须是 CRLF 或 LF, 不能是单独的 CR"))
    return raw


def _quote_row(text: str) -> int | None:
    """The likeliest row of a quoting mistake: where a strict reading fails, else the first cell with a quote."""
    rows, first = 0, None
    try:
        for rec in csv.reader(io.StringIO(text, newline=""), strict=True):
            rows += 1
            if first is None and any('"' in c for c in rec):
                first = rows
    except csv.Error:
        return rows + 1
    return first


def _parse_xlsx(data: bytes, file: str, sheet: str | int | None, what: str
                ) -> tuple[pl.DataFrame, str, Callable[[int], str]]:
    """The sheet as text cells (row i = sheet row i + 1), its name, and how a message names its column i."""
    from .io_xlsx import Unreadable, cells_of, first_column, merged, sheet_xml  # noqa: PLC0415 - xlsx inputs only

    try:
        book = fastexcel.read_excel(data)
        names = book.sheet_names
    except Exception as e:  # noqa: BLE001 - fastexcel raises its own hierarchy and, on odd zips, others
        _fail(file, f"cannot open as an .xlsx workbook: {str(e).splitlines()[0]}",
              "the file may be damaged or not really .xlsx; open it in Excel and save it again as .xlsx",
              zh=(f"无法作为 .xlsx 工作簿打开: {str(e).splitlines()[0]}", NOT_XLSX_ZH))
    if not names:
        _fail(file, "the workbook has no sheets", zh=("工作簿中没有工作表", ""))
    name = _sheet_name(book, data, file, sheet)

    def sheet_as(dtypes: Literal["string", "float"]) -> pl.DataFrame:
        """Every cell as that type, every row from row 1 (calamine skips leading empty ones). fastexcel itself:
        polars' read_excel casts a column of whole numbers to Int64, and refused a sheet holding 1e20."""
        return book.load_sheet(name, header_row=None, skip_rows=0, dtypes=dtypes).to_polars()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # inflating the sheet's XML overlaps calamine's parse
        def cells_and_merges() -> tuple[bytes, list[tuple[str, int, int, int, int]]]:
            whole = sheet_xml(data, names.index(name))
            return cells_of(whole), merged(whole)

        xml_read = pool.submit(cells_and_merges)
        try:
            raw, numbers = sheet_as("string"), sheet_as("float")
        except Exception as e:  # noqa: BLE001 - calamine errors come through polars as several types
            _fail(file, f"cannot read sheet '{name}': {str(e).splitlines()[0]}",
                  "the file may be damaged; open it in Excel and save it again as .xlsx",
                  zh=(f"无法读取工作表 '{name}': {str(e).splitlines()[0]}", DAMAGED_ZH))
        try:
            xml, merges = xml_read.result()
        except Unreadable as e:  # calamine read it, but which of its empty cells are errors cannot be told
            _fail(file, f"cannot read the cells of sheet '{name}': {e}",
                  "the file may be damaged; open it in Excel and save it again as .xlsx",
                  zh=(f"无法读取工作表 '{name}' 的单元格: {e}", DAMAGED_ZH))
    if raw.height == 0 or raw.width == 0:
        others = ", ".join(f"'{n}'" for n in names if n != name)
        option = "--events-sheet" if what == "events" else "--sheet"
        _fail(file, f"sheet '{name}' is empty" + (f"; the workbook's other sheets: {others}" if others else ""),
              f"choose the sheet with {option} NAME" if others else
              f"put the column names in row 1 and the {what} below them",
              zh=(f"工作表 '{name}' 是空的" + (f"; 工作簿中还有: {others}" if others else ""),
                  f"请用 {option} 工作表名 指定要读取的工作表" if others else f"请在第 1 行写列名, 下面写{_zh(what)}"))
    # the sheet column of calamine's first (a scan of every cell): found once, only when something needs it
    first = functools.cache(lambda: first_column(xml))

    def column(i: int) -> str:
        at = first()
        return f"column {i + 1}" if at is None else f"column {_letter(at + i)}"

    out = _merged_cells(_odd_cells(_exact_numbers(raw, numbers), xml, first, file, name), merges, first, file, name)
    if all(v is None for v in out.row(0)):
        _fail(file, f"row 1 of sheet '{name}' is empty: the header must be the first row",
              "delete the empty rows above the header", row=1,
              zh=(f"工作表 '{name}' 的" + ROW1_EMPTY_ZH[0], ROW1_EMPTY_ZH[1]))
    return out, name, column


def _sheet_name(book: fastexcel.ExcelReader, data: bytes, file: str, sheet: str | int | None) -> str:
    """The sheet `--sheet` names (a name, or a number from 1); by default the first table Excel shows (a
    hidden sheet holds lookups, not the table; a chart sheet holds no cells)."""
    from .io_xlsx import sheet_kinds  # noqa: PLC0415 - xlsx inputs only

    names = book.sheet_names
    kinds = sheet_kinds(data)
    kinds = kinds if kinds is not None and len(kinds) == len(names) else ["worksheet"] * len(names)
    charts = {n for n, k in zip(names, kinds, strict=True) if k != "worksheet"}
    listed = ", ".join(f"'{n}'" for n in names)
    if sheet is None:
        try:
            shown = next((n for n in names if n not in charts
                          and book.load_sheet(n, header_row=None, n_rows=0).visible == "visible"), None)
        except Exception as e:  # noqa: BLE001 - fastexcel raises its own hierarchy and, on odd zips, others
            _fail(file, f"cannot open as an .xlsx workbook: {str(e).splitlines()[0]}",
                  "the file may be damaged or not really .xlsx; open it in Excel and save it again as .xlsx",
                  zh=(f"无法作为 .xlsx 工作簿打开: {str(e).splitlines()[0]}", NOT_XLSX_ZH))
        name = shown or next((n for n in names if n not in charts), names[0])
    elif isinstance(sheet, int):
        if not 1 <= sheet <= len(names):
            _fail(file, f"there is no sheet number {sheet}; the workbook has {len(names)}: {listed}",
                  "sheets are numbered from 1",
                  zh=(f"没有第 {sheet} 个工作表; 工作簿共有 {len(names)} 个: {listed}", "工作表从 1 开始编号"))
        name = names[sheet - 1]
    elif sheet in names:
        name = sheet
    elif sheet.strip().isascii() and sheet.strip().isdigit():  # --sheet 2 (not ²): the second sheet
        return _sheet_name(book, data, file, int(sheet))
    else:
        _fail(file, f"no sheet named '{sheet}'{did_you_mean(sheet, names)}; the sheets are: {listed}",
              "give one of these names, or the sheet's number (1 = first)",
              zh=(f"没有名为 '{sheet}' 的工作表{did_you_mean(sheet, names, 'zh')}; 现有工作表: {listed}",
                  "请给出其中一个名称, 或工作表的序号 (1 = 第一个)"))
    if name in charts:
        tables = ", ".join(f"'{n}'" for n in names if n not in charts)
        _fail(file, f"sheet '{name}' is a chart, not a table; the tables are: {tables or 'none'}",
              "give a table's name or number with --sheet",
              zh=(f"工作表 '{name}' 是图表, 不是表格; 表格有: {tables or '无'}", "请用 --sheet 给出表格的名称或序号"))
    return name


def _odd_cells(raw: pl.DataFrame, xml: bytes, first_col: Callable[[], int | None], file: str, sheet: str
               ) -> pl.DataFrame:
    """`raw` with each cell calamine read as empty that holds an Excel error or an unsaved formula result
    written as its error text or its formula (`engine.io_xlsx`): the field's parse then says it is not a
    number, at its row and column. A cell outside the table calamine read, or whose place the file does
    not record, is refused here. `first_col()`: the sheet column of calamine's first (`io_xlsx.first_column`)."""
    from .io_xlsx import odd_cells  # noqa: PLC0415 - xlsx inputs only

    cells = odd_cells(xml)
    if not cells:
        return raw
    first = first_col()
    fixes: dict[int, tuple[list[int], list[str]]] = {}
    for c in cells:
        i, j = -1, -1  # not placed: refused below
        if c.row is not None and c.column is not None and first is not None:
            i, j = c.row - 1, c.column - first
        if not (0 <= i < raw.height and 0 <= j < raw.width) or raw[i, j] is not None:
            what = f"the Excel error {c.text}" if c.error else f"a formula ({c.text}) saved without its result"
            where = f"cell {c.ref}" if c.ref else "a cell (the file does not record which)"
            what_zh = f"Excel 错误值 {c.text}" if c.error else f"未保存计算结果的公式 ({c.text})"
            where_zh = f"单元格 {c.ref}" if c.ref else "某个单元格 (文件未记录是哪一个)"
            _fail(file, f"{where} of sheet '{sheet}' holds {what}",
                  "correct the formula (or type the value) in Excel and save the file"
                  if c.error else "open the file in Excel and save it (Excel saves each formula's result), "
                  "or type the values", row=c.row,
                  zh=(f"工作表 '{sheet}' 的{where_zh}是{what_zh}",
                      "请在 Excel 中改正公式 (或直接填写数值) 并保存" if c.error
                      else "请在 Excel 中打开并保存文件 (Excel 会保存每个公式的结果), 或直接填写数值"))
        rows, texts = fixes.setdefault(j, ([], []))
        rows.append(i)
        texts.append(c.text)
    return raw.with_columns(raw.to_series(j).scatter(rows, texts) for j, (rows, texts) in fixes.items())


def _merged_cells(raw: pl.DataFrame, ranges: list[tuple[str, int, int, int, int]],
                  first_col: Callable[[], int | None], file: str, sheet: str) -> pl.DataFrame:
    """`raw` with each cell below the header that a merged range covers, and that calamine read as empty,
    reading '[merged A4:A6]': only a range's first cell holds its value, which Excel shows across the range.
    A unit's field there is then refused at its row and column (read as empty, an optional field scored as not
    applicable); a column the scheme does not read is not looked at."""
    body = [r for r in ranges if r[3] >= 2 and (r[1], r[2]) != (r[3], r[4])]
    if not body:
        return raw
    first = first_col()
    if first is None:
        _fail(file, f"cells {body[0][0]} of sheet '{sheet}' are merged, and the file does not record where its "
              "cells are", "unmerge the cells and give each unit its own value, then save the file in Excel",
              zh=(f"工作表 '{sheet}' 的单元格 {body[0][0]} 是合并单元格, 而文件未记录各单元格的位置",
                  "请取消合并, 为每个单位分别填写, 然后在 Excel 中保存"))
    marks: dict[int, dict[int, str]] = {}
    for text, r1, c1, r2, c2 in body:
        for col in range(max(c1, first), min(c2, first + raw.width - 1) + 1):
            covered = marks.setdefault(col - first, {})
            for r in range(max(r1, 2), min(r2, raw.height) + 1):
                if (r, col) != (r1, c1):
                    covered[r - 1] = f"[merged {text}]"
    def marked(m: dict[int, str]) -> pl.Series:
        return pl.Series([None] * raw.height, dtype=pl.String).scatter(list(m), list(m.values()))

    return raw.with_columns(pl.coalesce(raw.to_series(j), marked(m)).alias(raw.columns[j])
                            for j, m in marks.items() if m)


def _exact_numbers(raw: pl.DataFrame, numbers: pl.DataFrame) -> pl.DataFrame:
    """A number cell as text is written as Excel shows it, with at most 9 decimals (0.94999999999 ->
    '0.95'), which would pass a 0.95 threshold the number does not. Where that text is not the cell's
    number, the number is written instead, to Excel's 15 significant digits (0.1 + 0.2 is '0.3')."""
    out = raw
    for c in raw.columns:
        num = numbers.get_column(c)
        lost = (num.is_not_null() & (raw.get_column(c).cast(pl.Float64, strict=False) != num).fill_null(False))
        if lost.any():
            at = lost.arg_true()
            out = out.with_columns(out.get_column(c).scatter(at, [_excel_text(v) for v in num.gather(at)]))
    return out


def _excel_text(v: float) -> str:
    """A number to Excel's 15 significant digits, written out in full: 0.94999999999, 1E+20 -> '1' and 20
    zeros."""
    return f"{Decimal(f'{v:.15g}'):f}"


UNCELLED = (pl.List, pl.Array, pl.Struct, pl.Binary, pl.Object, pl.Duration)  # Parquet types no cell of a table holds


def _parquet(data: bytes, file: str, what: str, wanted: Callable[[str], bool] | None = None) -> pl.DataFrame:
    """Columns come in one chunk per row group, deliberately not copied into one: the copy's extra ~180 MiB
    at 1M units stayed resident (the freed chunks are not reused) and no later stage measured faster for it."""
    try:
        cols = None
        if wanted is not None:
            cols = [c for c in pl.read_parquet_schema(io.BytesIO(data)) if wanted(c.strip())] or None
        df = pl.read_parquet(io.BytesIO(data), columns=cols)
    except Exception as e:  # noqa: BLE001 - polars raises ComputeError, OSError, ... on damaged files
        _fail(file, f"cannot read as Parquet: {str(e).splitlines()[0]}", "the file may be damaged; write it again",
              zh=(f"无法作为 Parquet 读取: {str(e).splitlines()[0]}", "文件可能已损坏; 请重新导出"))
    names = [c.strip() for c in df.columns]
    _check_names(names, file, column=lambda i: f"column {i + 1}")
    df = df.rename(dict(zip(df.columns, names, strict=True)))
    odd = [(c, t) for c, t in df.schema.items() if t.base_type() in UNCELLED]
    if odd:
        raise KaoheError([Problem(Loc(file, column=c), f"column '{c}' holds {t} values, not one number, text, "
                                  "yes/no or date per cell", hint="write the table again with plain columns",
                                  zh=(f"列 '{c}' 的值是 {t}, 不是每格一个数、文字、是/否或日期",
                                      "请用普通的列重新导出这张表"))
                          for c, t in odd])
    if df.height == 0:
        _fail(file, f"no {what} rows: the file has column names but no rows",
              zh=(f"没有{_zh(what)}行: 文件只有列名, 没有数据行", ""))
    text = [c for c, t in df.schema.items() if t == pl.String]
    if not text:
        return df
    # finding the columns that need cleaning (usually none) is cheaper than rewriting every one
    size = {c: pl.col(c).str.len_bytes() for c in text}
    dirty = df.select(((pl.col(c).str.strip_chars().str.len_bytes() < n) | (n == 0)).any().alias(c)
                      for c, n in size.items()).row(0, named=True)
    return df.with_columns(_clean(c) for c in text if dirty[c])


def _clean(c: str) -> pl.Expr:
    v = pl.col(c).str.strip_chars()
    return pl.when(v != "").then(v).alias(c)


def _csv_column(i: int) -> str:
    return f"column {i + 1} ({_letter(i)})"  # as Excel shows the file


def _check_names(names: list[str], file: str, *, column: Callable[[int], str],
                 blank_ok: set[int] | None = None) -> None:
    """`column(i)` names the table's i-th column (0-based) in a message."""
    problems = []
    title = sum(1 for n in names if n) == 1 and len(names) > 1
    unnamed = [i for i, n in enumerate(names) if not n and i not in (blank_ok or set())]
    if title and len(unnamed) >= 3:  # one problem, not one per column (a title over 60 columns gave 59 of them)
        text = next(n for n in names if n)
        raise KaoheError([Problem(Loc(file, row=1), f"row 1 holds one name ('{text}') over {len(unnamed)} columns "
                                  f"that have values but no name ({column(unnamed[0])}, ...): is row 1 a title?",
                                  hint="delete the rows above the column names, so that they are in row 1",
                                  zh=(f"第 1 行只有一个名称 ('{text}'), 而有 {len(unnamed)} 列有值却没有列名 "
                                      f"({_column_zh(column(unnamed[0]))} 等): 第 1 行是标题吗?",
                                      "请删除列名上方的行, 使列名位于第 1 行"))])
    named = [n for n in names if n]
    if 1 < len(named) <= max(2, len(names) // 5) and len(unnamed) >= 3 * len(named):  # 一、共性指标 | 二、…
        shown = ", ".join(f"'{n}'" for n in named[:4]) + (", ..." if len(named) > 4 else "")
        raise KaoheError([Problem(Loc(file, row=1), f"row 1 holds only {len(named)} names ({shown}) over "
                                  f"{len(unnamed)} columns that have values but no name: is row 1 a row of group "
                                  "headings above the column names?",
                                  hint="delete the rows above the column names, so that they are in row 1",
                                  zh=(f"第 1 行只有 {len(named)} 个名称 ({shown}), 而有 {len(unnamed)} 列有值"
                                      "却没有列名: 第 1 行是列名上方的分组标题吗?",
                                      "请删除列名上方的行, 使列名位于第 1 行"))])
    for i, n in enumerate(names):
        if not n and i not in (blank_ok or set()):
            problems.append(Problem(Loc(file, row=1), f"{column(i)} has values but no name in the header row",
                                    hint="add a name in row 1, or delete the column"
                                    + ("; if row 1 is a title, delete it so the column names are in row 1"
                                       if title else ""),
                                    zh=(f"{_column_zh(column(i))}有值, 但表头行中没有列名",
                                        "请在第 1 行加上列名, 或删除这一列"
                                        + ("; 如果第 1 行是标题, 请删除它, 使列名位于第 1 行" if title else ""))))
    seen: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        if n:
            seen.setdefault(n, []).append(i)
    for n, idx in seen.items():
        if len(idx) > 1:
            problems.append(Problem(Loc(file, row=1, column=n), f"column name '{n}' appears {len(idx)} times ("
                                    + ", ".join(column(i) for i in idx) + ")", hint="rename or delete all but one",
                                    zh=(f"列名 '{n}' 出现了 {len(idx)} 次 ("
                                        + ", ".join(_column_zh(column(i)) for i in idx) + ")",
                                        "只保留一列, 其余的改名或删除")))
    if problems:
        raise KaoheError(_cap(problems, file))


def _tidy(raw: pl.DataFrame, file: str, what: str, *, column: Callable[[int], str], where: str = "",
          allow_empty: bool = False) -> pl.DataFrame:
    """Row 0 of `raw` is the header: strip names and cells, drop unnamed empty columns, check names."""
    names = [(v or "").strip() for v in raw.row(0)]
    body = raw.slice(1).with_columns(_clean(c) for c in raw.columns)
    empty = {i for i, c in enumerate(raw.columns) if body.get_column(c).null_count() == body.height}
    _check_names(names, file, column=column, blank_ok=empty)
    keep = [i for i, n in enumerate(names) if n]
    if not keep:
        _fail(file, "row 1 holds no column names", "put the column names in row 1", row=1,
              zh=("第 1 行没有列名", "请在第 1 行写列名"))
    body = _without_note(body.select(pl.col(raw.columns[i]).alias(names[i]) for i in keep), file)
    filled = body.select(pl.any_horizontal(pl.all().is_not_null())).to_series() if body.width else None
    last = filled.arg_true().max() if filled is not None else None
    if last is None and allow_empty:  # a header alone: e.g. an event log of a year without incidents
        return body.head(0)
    if last is None:
        _fail(file, f"no {what} rows{where}: the header (row 1) is not followed by any values",
              f"put the {what} in the rows below the header",
              zh=(f"没有{_zh(what)}行{where.replace(' (sheet ', ' (工作表 ')}: 表头 (第 1 行) 下面没有任何值",
                  f"请在表头下面的行中填写{_zh(what)}"))
    assert isinstance(last, int)
    return body.head(last + 1)


NOTE_ROWS = 1_000  # a note's rows (`_without_note`) at most that look like a unit's (a merged note)
MERGED = r"\[merged ([A-Z]+[0-9]+:[A-Z]+[0-9]+)\]"  # how `_merged_cells` marks a cell a merged range covers
_COVERED = re.compile(MERGED)


def _note_start(filled: list[int]) -> int | None:
    """Where a note under a table starts (备注：…, 制表人：…), given how many cells each row below the header
    holds: the rows after the last row of two or more cells and a wholly blank row below it, when each of them
    holds one cell. A unit's row holds at least its id and type; a table whose rows hold one cell each has no
    note. Rows of one cell directly under the table (no blank row between) are the table's."""
    last = next((i for i in range(len(filled) - 1, -1, -1) if filled[i] >= 2), None)
    if last is None:
        return None
    blank = next((i for i in range(last + 1, len(filled)) if filled[i] == 0), None)
    if blank is None:
        return None
    return next((i for i in range(blank, len(filled)) if filled[i]), None)


# how a township table's footer lines begin (制表人：张三  审核人：李四): a word and a colon
NOTE_LINE = re.compile(r"(备注|注|说明|制表人?|填表人?|填报人?|审核人?|审批人?|负责人|单位负责人|分管领导"
                       r"|联系人|联系电话|日期|填报日期|制表日期)\s*[:：]|.*[(（]盖章[)）]")  # or a stamp line


def _signed_note(body: pl.DataFrame) -> int | None:
    """Where a footer under the table starts whose lines begin with a note word and a colon (`NOTE_LINE`), with or
    without a blank row above, and however many cells they fill (制表人 in A, 审核人 in F): the table's last
    rows, each blank, of one cell, or beginning with such a word, at least one of them so. None otherwise."""
    start, signed = None, False
    for i in range(body.height - 1, max(-1, body.height - 1 - NOTE_ROWS), -1):
        row = [v for v in body.row(i) if v is not None and not _COVERED.fullmatch(str(v))]
        if row and NOTE_LINE.match(str(row[0]).strip()):
            start, signed = i, True
        elif len(row) == 1:
            start = i
        elif row:
            break
    if not signed or start is None:
        return None
    while start < body.height and all(v is None for v in body.row(start)):
        start += 1
    return start


def _without_note(body: pl.DataFrame, file: str) -> pl.DataFrame:
    """`body` (row i: sheet row i + 2) without a note written under the table (`_classic_note`, `_signed_note`:
    the earlier start of the two), which is said (a `Notice`): left in, each of its rows would be refused as a
    unit without id, type or data."""
    if body.height == 0 or body.width == 0:
        return body
    classic, signed = _classic_note(body), _signed_note(body)
    signed = signed if signed is not None and signed > 0 else None
    if classic is None and signed is None:
        return body
    start = min(x for x in (classic, signed) if x is not None)
    end = max(i for i in range(start, body.height) if any(v is not None for v in body.row(i)))
    text = " ".join(str(v) for v in body.row(start) if v is not None and not _COVERED.fullmatch(str(v)))
    shown = text if len(text) <= 30 else text[:30] + "…"
    rows = f"row {start + 2}" if end == start else f"rows {start + 2}-{end + 2}"
    rows_zh = f"第 {start + 2} 行" if end == start else f"第 {start + 2}-{end + 2} 行"
    if start == classic:
        said = (f"{rows}, below the table after a blank row, read as a note and left out ('{shown}')",
                "if they are units, delete the blank row above them",
                f"{rows_zh}位于表格下方的空行之后, 视为备注, 未读取 ('{shown}')",
                "如果它们是单位, 请删除它们上方的空行")
    else:
        said = (f"{rows}, below the table, read as a note and left out ('{shown}')",
                "if they are units, give them a unit id and type",
                f"{rows_zh}位于表格下方, 视为备注, 未读取 ('{shown}')", "如果它们是单位, 请填写单位编号和类型")
    warnings.warn(Notice(Problem(Loc(file), said[0], hint=said[1], zh=(said[2], said[3]))), stacklevel=2)
    return body.head(start)


def _classic_note(body: pl.DataFrame) -> int | None:
    """Where one-cell rows after a blank row under the table start (`_note_start`), or None."""

    def cells(row: tuple[Any, ...]) -> int:  # a cell a merged range covers is no cell of its own
        return sum(1 for v in row if v is not None and not _COVERED.fullmatch(str(v)))

    # the table's last row of two or more cells, from the end (a regex over every cell of a large table is
    # slow: the plain count finds the candidates, the last few are counted again without covered cells)
    multi = body.select(pl.sum_horizontal(pl.all().is_not_null()) >= 2).to_series().arg_true()
    last = next((i for i in reversed(multi.tail(NOTE_ROWS).to_list()) if cells(body.row(i)) >= 2), None)
    if last is None:
        return None
    filled = [2] + [cells(r) for r in body.slice(last + 1).iter_rows()]
    found = _note_start(filled)
    return None if found is None else last + found


def _cap(problems: list[Problem], file: str) -> list[Problem]:
    if len(problems) <= MAX_LISTED:
        return problems
    rest = len(problems) - MAX_LISTED
    return [*problems[:MAX_LISTED], Problem(Loc(file), f"... and {rest} more like these", more=rest,
                                            zh=(f"... 另有 {rest} 个同样的问题", ""))]
