"""Writing outputs safely: atomically, never over an input, and never as a spreadsheet formula.

CSV is UTF-8 with a BOM (so Excel shows Chinese) and CRLF line ends; text cells that a
spreadsheet would run as a formula (=, +, -, @, tab, CR first) get a leading apostrophe,
while numbers such as '-3' stay numbers. XLSX text cells are always written as text, those
formula-like ones with Excel's hidden quote prefix (as if typed with a leading apostrophe),
so the value itself is kept exactly. Output bytes are deterministic for equal input.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
from wcwidth import wcswidth, wcwidth

from .errors import KaoheError, Loc, Problem

BOM = b"\xef\xbb\xbf"
_TRIGGER = r"^ *[=+\-@\t\r]"
_NUMBER = r"^ *[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?%?$"
# Python's `$` also matches before a final newline, Polars' (Rust's) does not: `\Z` makes `neutralise` and
# the vectorised `_risky` agree ('-3\n' is no plain number: it is neutralised by both)
_TRIGGER_RE, _NUMBER_RE = re.compile(_TRIGGER), re.compile(_NUMBER.removesuffix("$") + r"\Z")
_FIXED_TIME = dt.datetime(2000, 1, 1)  # workbook 'created' property, for reproducible bytes
MAX_WIDTH, WIDTH_SAMPLE = 60, 2000


_FIRST = frozenset(" =+-@\t\r")  # the characters a formula-like cell (_TRIGGER) can start with


def neutralise(value: str) -> str:
    """'=SUM(A1)' -> "'=SUM(A1)"; '-3', '+1.5', '-5%' unchanged (numbers, not formulas)."""
    if value[:1] in _FIRST and _TRIGGER_RE.match(value) and not _NUMBER_RE.match(value):  # most cells: one test
        return "'" + value
    return value


def _risky(col: pl.Expr) -> pl.Expr:
    """Which text cells `neutralise` changes (formula-like, not a number)."""
    return col.str.contains(_TRIGGER) & ~col.str.contains(_NUMBER)


def _neutralise_expr(c: str) -> pl.Expr:
    col = pl.col(c)
    return pl.when(_risky(col)).then(pl.lit("'") + col).otherwise(col).alias(c)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return os.path.normcase(a.resolve()) == os.path.normcase(b.resolve())


def write_atomic(path: str | Path, data: bytes | str | Iterable[bytes], *, inputs: Iterable[str | Path] = ()) -> None:
    """Write `data` (str as UTF-8; or bytes in pieces, written as they come) to a temp file beside `path`,
    then rename it over `path`.

    Refuses, before writing anything, when `path` is one of `inputs` (same file, also via links).
    """
    pieces = [data.encode("utf-8")] if isinstance(data, str) else [data] if isinstance(data, bytes) else data

    def write(tmp: Path) -> None:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with os.fdopen(fd, "wb") as f:
            for piece in pieces:
                f.write(piece)

    write_atomic_with(path, write, inputs=inputs)


def write_atomic_with(path: str | Path, write: Callable[[Path], None], *, inputs: Iterable[str | Path] = ()) -> None:
    """`write(tmp)` writes the output to a temp file beside `path`, which is then renamed over `path` (after
    the checks of `write_atomic`)."""
    out = Path(path)
    file = str(path)
    for inp in inputs:
        if _same_file(out, Path(inp)):
            raise KaoheError([Problem(Loc(file), f"this output would overwrite the input file '{inp}'",
                                      hint="choose another output path; inputs are never modified")])
    if out.is_dir():
        raise KaoheError([Problem(Loc(file), "the output path is a directory", hint="give a file name")])
    parent = out.parent
    if not parent.is_dir():
        raise KaoheError([Problem(Loc(file), f"the output directory '{parent}' does not exist",
                                  hint="create it first, or choose another output path")])
    tmp = parent / f".{out.name}.{secrets.token_hex(6)}.tmp"
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise KaoheError([Problem(Loc(file), f"cannot write the output: {e.strerror}",
                                  hint="close the file if it is open in Excel/WPS, and check the folder is writable")]
                         ) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def to_csv_bytes(df: pl.DataFrame) -> bytes:
    """UTF-8 with BOM, CRLF line ends, header included, null as empty, formula-like text neutralised."""
    text_cols = [c for c, t in df.schema.items() if t in (pl.String, pl.Categorical) or isinstance(t, pl.Enum)]
    safe = df.with_columns(pl.col(c).cast(pl.String) for c in text_cols)
    safe = safe.with_columns(_neutralise_expr(c) for c in text_cols)
    safe = safe.rename({c: neutralise(c) for c in df.columns if neutralise(c) != c})
    return BOM + safe.write_csv(line_terminator="\r\n", null_value="").encode("utf-8")


# --- xlsx ---------------------------------------------------------------------------------------------

def _sheet_names(keys: Iterable[str]) -> list[str]:
    """Excel rules: <= 31 chars, none of []:*?/\\, no leading/trailing apostrophe, unique ignoring case."""
    out: list[str] = []
    for key in keys:
        base = re.sub(r"[\[\]:*?/\\]", "_", str(key)).strip("'")[:31] or "Sheet"
        if base.lower() == "history":  # reserved by Excel
            base += "_"
        name, n = base, 1
        while name.lower() in (o.lower() for o in out):
            n += 1
            name = f"{base[:31 - len(str(n)) - 1]}~{n}"
        out.append(name)
    return out


def _text_width(s: str) -> int:
    """Display width: CJK and other wide characters count 2; the widest line of a multi-line cell."""
    best = 0
    for line in s.splitlines() or [""]:
        w = wcswidth(line)
        best = max(best, w if w >= 0 else sum(max(wcwidth(ch), 0) for ch in line))
    return best


def _decimal_format(t: pl.DataType) -> str | None:
    scale = getattr(t, "scale", None)
    return "0." + "0" * scale if isinstance(t, pl.Decimal) and scale else None


XLSX_ROWS = 1_048_576  # an Excel sheet's rows, the header included
XLSX_BLOCK = 50_000  # rows turned into Python values at a time
# A workbook of more cells is written row by row (xlsxwriter's constant memory mode); a smaller one is built in
# memory, ~15% faster (a county's 3,000 units, ~1.6M cells: 7.3 -> 6.2 s, +90 MB; BENCHMARKS.md).
XLSX_STREAM_CELLS = 2_000_000


def _split(sheets: Mapping[str, pl.DataFrame]) -> list[tuple[str, pl.DataFrame]]:
    """Sheets as Excel can hold them: a frame of more rows than a sheet has continues on sheets named
    '<name> (2)', '<name> (3)', ... each with the header (100,000 units' findings fill three)."""
    out = []
    for name, df in sheets.items():
        per = XLSX_ROWS - 1
        parts = [df.slice(at, per) for at in range(0, df.height, per)] or [df]
        out += [(name if k == 0 else f"{name} ({k + 1})", part) for k, part in enumerate(parts)]
    return out


def write_xlsx(path: str | Path, sheets: Mapping[str, pl.DataFrame], *, inputs: Iterable[str | Path] = (),
               formats: Mapping[str, str] | None = None) -> None:
    """One sheet per entry (continued on more sheets past Excel's 1,048,576 rows); bold frozen header;
    widths fitted (CJK = 2); written atomically; a large workbook row by row (xlsxwriter's constant memory
    mode: a million rows do not all sit in memory as cell objects), a small one in memory.

    `formats` maps a column name to an Excel number format (e.g. {"score": "0.00"}) for its
    numeric cells in every sheet. Numbers are written as numbers (integers beyond 2^53 and
    NaN/inf as text, to stay exact), text always as text, nulls as empty cells.
    """
    import xlsxwriter  # noqa: PLC0415 - 17 ms of import that only .xlsx output needs (kaohe run starts cold)

    parts = _split(sheets)
    streamed = sum(df.height * df.width for _, df in parts) > XLSX_STREAM_CELLS

    def write(tmp: Path) -> None:
        wb = xlsxwriter.Workbook(str(tmp), {"constant_memory": streamed, "strings_to_formulas": False,
                                            "strings_to_urls": False, "strings_to_numbers": False,
                                            "remove_timezone": True})
        wb.set_properties({"created": _FIXED_TIME})
        fmt_cache: dict[tuple[tuple[str, Any], ...], Any] = {}

        def fmt(**props: Any) -> Any:
            key = tuple(sorted(props.items()))
            if key not in fmt_cache:
                fmt_cache[key] = wb.add_format(props) if props else None
            return fmt_cache[key]

        for name, (_, df) in zip(_sheet_names(n for n, _ in parts), parts, strict=True):
            ws = wb.add_worksheet(name)
            nums = [(formats or {}).get(col) or _decimal_format(t) for col, t in df.schema.items()]
            for j, col in enumerate(df.columns):  # widths from the header and the first rows, set before any row
                shown = [_shown(v) for v in df.get_column(col).head(WIDTH_SAMPLE).to_list()]
                ws.set_column(j, j, min(max([_text_width(col) + 1, *map(_text_width, shown)]) + 2, MAX_WIDTH))
            ws.freeze_panes(1, 0)
            for j, col in enumerate(df.columns):
                ws.write_string(0, j, col, fmt(bold=True, quote_prefix=neutralise(col) != col))
            quoted = fmt(quote_prefix=True)
            for at in range(0, df.height, XLSX_BLOCK):  # in row order (constant memory mode streams rows), a block
                block = df.slice(at, XLSX_BLOCK)        # of rows at a time as Python values
                cols = []
                for j, (col, t) in enumerate(block.schema.items()):
                    c = block.get_column(col)
                    risky = block.select(_risky(pl.col(col))).to_series().to_list() if t == pl.String else None
                    cols.append((j, c.to_list(), risky, nums[j]))
                for i in range(block.height):
                    for j, values, risky, num in cols:
                        v = values[i]
                        if v is None:
                            continue
                        if risky is not None:  # text: as text, a formula-like one with Excel's quote prefix
                            ws.write_string(at + i + 1, j, v, quoted if risky[i] else None)
                        else:
                            _write_cell(ws, at + i + 1, j, v, fmt, num)
        try:
            wb.close()
        except xlsxwriter.exceptions.FileCreateError as e:  # the file system's own error: said as for any output
            raise e.args[0] if e.args and isinstance(e.args[0], OSError) else OSError(0, str(e)) from None
        except xlsxwriter.exceptions.FileSizeError:
            raise KaoheError([Problem(Loc(str(path)), "the workbook would be larger than 2 GB, more than Excel and WPS "
                                      "open", hint="write --format csv (or read the units as Parquet and write "
                                      "Parquet), or fewer units")]) from None

    write_atomic_with(path, write, inputs=inputs)


def _shown(v: Any) -> str:
    """The text a value shows in its cell (for the column width), as `_write_cell` writes it."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, dt.datetime):
        return "yyyy-mm-dd hh:mm:ss"
    if isinstance(v, dt.date):
        return "yyyy-mm-dd"
    return str(v)


def _write_cell(ws: Any, i: int, j: int, v: Any, fmt: Any, num_format: str | None) -> None:
    """Write one value by its Python type."""
    if v is None:
        return
    if isinstance(v, bool):
        ws.write_boolean(i, j, v)
        return
    if isinstance(v, (int, float, Decimal)) and not (isinstance(v, int) and abs(v) > 2**53):
        f = float(v)
        if math.isfinite(f):
            ws.write_number(i, j, f, fmt(num_format=num_format) if num_format else None)
            return
    if isinstance(v, dt.datetime):
        ws.write_datetime(i, j, v, fmt(num_format="yyyy-mm-dd hh:mm:ss"))
        return
    if isinstance(v, dt.date):
        ws.write_datetime(i, j, v, fmt(num_format="yyyy-mm-dd"))
        return
    s = str(v)
    ws.write_string(i, j, s, fmt(quote_prefix=True) if neutralise(s) != s else None)
