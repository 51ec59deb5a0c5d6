"""engine.io: exact reading of CSV/XLSX/Parquet, located errors, safe atomic writing."""

from __future__ import annotations

import os
import re
import warnings
import zipfile
from datetime import timedelta
from pathlib import Path
from unittest import mock

import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engine.errors import KaoheError, Notice
from engine.io import (
    map_columns,
    neutralise,
    read_table,
    read_table_info,
    sha256_file,
    to_csv_bytes,
    write_atomic,
    write_xlsx,
)
from engine.io_write import _neutralise_expr, _text_width

FRAME = pl.DataFrame({
    "乡镇": ["甲镇", "乙镇", "丙镇"],
    "完成投资(万元)": ["1234.50", "-3", "0.1"],
    "编号": ["007", "010", None],
    "备注": ["达标，优秀", None, "“引号” 中文"],
})


def _error(fn, *args, **kwargs) -> KaoheError:
    with pytest.raises(KaoheError) as info:
        fn(*args, **kwargs)
    return info.value


def _write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


# --- reading: formats and encodings -----------------------------------------------------------------

@pytest.mark.parametrize("kind", ["gbk.csv", "bom.csv", "utf8.csv", "xlsx", "parquet"])
def test_round_trip_to_same_strings(tmp_path: Path, kind: str) -> None:
    path = tmp_path / ("t." + kind.split(".")[-1])
    if kind == "gbk.csv":
        _write(path, FRAME.write_csv().encode("gbk"))
    elif kind == "bom.csv":
        _write(path, to_csv_bytes(FRAME))
    elif kind == "utf8.csv":
        _write(path, FRAME.write_csv())
    elif kind == "xlsx":
        write_xlsx(path, {"数据": FRAME})
    else:
        FRAME.write_parquet(path)
    df, info = read_table_info(path)
    assert df.columns == FRAME.columns
    assert df.rows() == FRAME.rows()
    assert all(t == pl.String for t in df.dtypes)
    assert info.sha256 == sha256_file(path)
    assert info.format == path.suffix[1:]
    assert info.encoding == {"gbk.csv": "gb18030", "bom.csv": "utf-8-sig", "utf8.csv": "utf-8"}.get(kind)
    assert info.sheet == ("数据" if kind == "xlsx" else None)


def test_parquet_keeps_types_and_cleans_text(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pl.DataFrame({" 得分 ": [1.5, None], "名称": ["  甲 ", "  "]}).write_parquet(path)
    df = read_table(path)
    assert df.schema == pl.Schema({"得分": pl.Float64, "名称": pl.String})
    assert df.rows() == [(1.5, "甲"), (None, None)]


def test_parquet_text_columns_are_cleaned_only_where_needed(tmp_path: Path) -> None:
    """Each text column is checked first; any cell with blank edges (any Unicode space) or empty text
    makes the column cleaned, and a clean column reads back as it is."""
    path = tmp_path / "t.parquet"
    columns = {"clean": ["甲", "b c", None, "x"], "tab": ["a", "b\t", "c", "d"],
               "ideographic": ["\u3000甲", "乙", "丙", "丁"], "empty": ["a", "", "c", "d"],
               "blank": ["a", " \n ", None, "d"], "nulls": [None, None, None, None]}
    pl.DataFrame(columns, schema={c: pl.String for c in columns}).write_parquet(path)
    assert read_table(path).to_dict(as_series=False) == {
        c: [(v or "").strip() or None for v in values] for c, values in columns.items()}


def test_strips_keeps_interior_blank_rows_and_drops_trailing(tmp_path: Path) -> None:
    path = _write(tmp_path / "s.csv", " 乡镇 ,\u3000得分\n 甲镇 , 1 \n\n,\n乙镇, 2\n\n , \n")
    df = read_table(path)
    assert df.columns == ["乡镇", "得分"]
    # row i is spreadsheet row i + 2: blank rows 3 and 4 stay (as nulls), trailing ones go
    assert df.rows() == [("甲镇", "1"), (None, None), (None, None), ("乙镇", "2")]


NOTE = ["备注：以上数据由各单位自报，经镇考核办审核后填报，如有异议请于三日内向镇考核办提出", "制表人：张三"]


def _with_note(tmp_path: Path, kind: str, note_rows: list[list[str]], gap: int = 1) -> Path:
    """A three-column table of two units, `gap` blank rows, then `note_rows` (lists of cells from column A)."""
    rows = [["unit_id", "unit_type", "x"], ["V1", "村", "1"], ["V2", "村", "2"], *[[""] * 3] * gap, *note_rows]
    if kind == "xlsx":
        import xlsxwriter  # noqa: PLC0415

        path = tmp_path / "t.xlsx"
        with xlsxwriter.Workbook(path) as wb:
            ws = wb.add_worksheet("单位")
            for i, r in enumerate(rows):
                for j, v in enumerate(r):
                    if v:
                        ws.write(i, j, v)
            note = len(rows) - len(note_rows)
            ws.merge_range(note, 0, note, 2, note_rows[0][0])  # a note is often merged across the table
        return path
    if kind == "short.csv":  # each row as long as its cells: a note row is one cell
        return _write(tmp_path / "t.csv", "".join(",".join(r).rstrip(",") + "\n" for r in rows))
    return _write(tmp_path / "t.csv", "".join(",".join((r + [""] * 3)[:3]) + "\n" for r in rows))


@pytest.mark.parametrize("kind", ["xlsx", "short.csv", "csv"])
def test_a_note_under_the_table_is_left_out_and_said(tmp_path: Path, kind: str) -> None:
    """备注/制表人 lines below the table, after a blank row, each one cell: every row of them used to be refused
    (no unit id, no type, no data: 82 problems for two lines under the demo table), and a short CSV row as
    ragged. They are left out, and a Notice names their rows and text (the CLI prints it, the manifest keeps it)."""
    path = _with_note(tmp_path, kind, [[NOTE[0]], [NOTE[1]]], gap=2)
    with pytest.warns(Notice) as said:
        df = read_table(path)
    assert df.rows() == [("V1", "村", "1"), ("V2", "村", "2")]
    [notice] = [w.message for w in said]
    assert isinstance(notice, Notice)
    assert f"{path}: rows 6-7, below the table after a blank row, read as a note and left out" in str(notice)
    assert NOTE[0][:30] + "…" in str(notice)


def test_a_note_after_many_blank_rows_is_found(tmp_path: Path) -> None:
    """A first version looked for a note in the last 1,000 rows only: a note below 999 blank rows was refused
    row by row again (the fuzzing helper). The table's last row is found from the end by a plain count."""
    path = _with_note(tmp_path, "csv", [[NOTE[1]]], gap=1_500)
    with pytest.warns(Notice, match="row 1504, below the table after a blank row, read as a note"):
        assert read_table(path).height == 2


@pytest.mark.parametrize(("rows", "gap", "problem"), [
    ([["以上数据由各单位自报"]], 0, (4, "unit_type")),  # directly under the table, no note word: the table's row
    ([["V3", "村", "3"]], 1, None),  # two or more cells: a unit's row (the blank row above it is skipped)
    ([[NOTE[0]], ["V3", "村", "3"]], 1, (5, "unit_type")),  # a unit's row below the one-cell row: no note
])
def test_rows_under_the_table_that_are_no_note_stay_in_it(tmp_path: Path, rows: list[list[str]], gap: int,
                                                         problem: tuple[int, str] | None) -> None:
    from engine.pipeline import Inputs, load  # noqa: PLC0415
    from tests.helpers import write_scheme  # noqa: PLC0415

    path = _with_note(tmp_path, "csv", rows, gap=gap)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always", Notice)
        assert read_table(path).height == 2 + gap + len(rows)
        scheme = write_scheme(tmp_path, "sections: [{id: s, items: [{id: i, points: 10, value: x, "
                              "method: {direct: {}}}]}]", {"x": "{label: X, type: int}"})
        if problem is None:
            assert load(Inputs(scheme, path)).units.get_column("unit_id").to_list() == ["V1", "V2", "V3"]
        else:
            err = _error(load, Inputs(scheme, path))
            assert (problem[0], problem[1]) in {(p.loc.row, p.loc.column) for p in err.problems}
    assert not [w for w in said if "read as a note" in str(w.message)]  # no note is said
    assert bool(gap) == any("blank row 4 inside the table skipped" in str(w.message) for w in said)


def test_explicit_encoding_and_quoted_cells(tmp_path: Path) -> None:
    path = _write(tmp_path / "q.csv", '名称,说明\r\n甲,"a, ""b""\r\nc"\r\n'.encode("gbk"))
    assert read_table(path, encoding="gbk").rows() == [("甲", 'a, "b"\r\nc')]
    err = _error(read_table, path, encoding="utf-8")
    assert "q.csv" in str(err) and "offset" in str(err) and "--encoding" in str(err)
    for name in ("klingon", "rot13", "base64", "undefined"):  # not text encodings (they were tracebacks)
        assert f"unknown text encoding '{name}'" in str(_error(read_table, path, encoding=name))
    odd = tmp_path / "p.csv"  # a codec that fails with a bare UnicodeError, not a UnicodeDecodeError
    odd.write_bytes(b"unit_id,name\n_x,y\n")
    assert "not valid punycode text" in str(_error(read_table, odd, encoding="punycode"))


@pytest.mark.parametrize("odd", [pl.Series([[1, 2]]), pl.Series([{"a": 1}]), pl.Series([b"x"]),
                                 pl.Series([timedelta(days=1)]), pl.Series([[1, 2]], dtype=pl.Array(pl.Int64, 2))])
def test_a_parquet_column_that_no_cell_can_hold_is_said(tmp_path: Path, odd: pl.Series) -> None:
    """Lists, records, bytes and durations are no table cells: said by column (they were cast tracebacks)."""
    path = tmp_path / "t.parquet"
    pl.DataFrame({"unit_id": ["A"], "odd": odd}).write_parquet(path)
    msg = str(_error(read_table, path))
    assert "t.parquet" in msg and f"column 'odd' holds {odd.dtype} values" in msg and "plain columns" in msg


def test_xlsx_sheet_by_name_and_number(tmp_path: Path) -> None:
    path = tmp_path / "w.xlsx"
    write_xlsx(path, {"一": FRAME, "二": FRAME.head(1)})
    assert read_table(path, sheet="二").height == 1
    assert read_table(path, sheet=2).height == 1
    assert read_table(path, sheet=1).height == 3
    assert read_table(path, sheet="2").height == 1  # as --sheet gives it: text
    write_xlsx(path, {"一": FRAME, "2": FRAME.head(2), "二": FRAME.head(1)})
    assert read_table(path, sheet="2").height == 2  # a sheet named '2' before the second sheet


def test_xlsx_default_sheet_is_the_first_one_excel_shows(tmp_path: Path) -> None:
    """A hidden first sheet (lookups, say) is not the table: it was read, and the run said 'no units rows'."""
    import xlsxwriter  # noqa: PLC0415

    path = tmp_path / "h.xlsx"
    with xlsxwriter.Workbook(path) as wb:
        hidden, table = wb.add_worksheet("lists"), wb.add_worksheet("units")
        hidden.write_column(0, 0, ["type", "村"])
        table.write_row(0, 0, ["unit_id", "x"])
        table.write_row(1, 0, ["u1", "1"])
        table.activate()
        hidden.hide()
    assert read_table(path).columns == ["unit_id", "x"]
    assert read_table(path, sheet=1).columns == ["type"]  # asked for by number: given


def test_xlsx_chart_sheets_are_passed_over_and_named_when_chosen(tmp_path: Path,
                                                                  capfd: pytest.CaptureFixture[str]) -> None:
    """A chart sheet first (xlsxwriter and Excel let it be the first tab) was taken for the table: 'sheet
    is empty', and calamine printed "'chartsheet' not a valid worksheet" three times."""
    import xlsxwriter  # noqa: PLC0415

    path = tmp_path / "c.xlsx"
    with xlsxwriter.Workbook(path) as wb:
        chart_sheet = wb.add_chartsheet("图表")
        ws = wb.add_worksheet("数据")
        for i, row in enumerate(FRAME.rows()):
            ws.write_row(i + 1, 0, row)
        ws.write_row(0, 0, FRAME.columns)
        chart = wb.add_chart({"type": "column"})
        chart.add_series({"values": "='数据'!$B$2:$B$3"})
        chart_sheet.set_chart(chart)
    df, info = read_table_info(path)
    assert info.sheet == "数据" and df.height == 3
    msg = str(_error(read_table, path, sheet="1"))
    assert "sheet '图表' is a chart, not a table; the tables are: '数据'" in msg
    assert "chartsheet" not in capfd.readouterr().out


def test_xlsx_number_cells_keep_their_digits(tmp_path: Path) -> None:
    """A number cell reads as its number to Excel's 15 significant digits, not as Excel displays it with 9
    decimals: 0.94999999999 stayed '0.95' and passed a 0.95 threshold (a CSV of it is refused)."""
    import xlsxwriter  # noqa: PLC0415

    path = tmp_path / "n.xlsx"
    cells: list[tuple[object, str]] = [(0.94999999999, "0.94999999999"), (0.1 + 0.2, "0.3"), (3, "3"),
                                       (1e20, "1" + "0" * 20), (1 / 3, "0.333333333333333"), (-2.5, "-2.5"),
                                       (1e-10, "0.0000000001"), ("007", "007"), ("0.94999999999", "0.94999999999"),
                                       (True, "true")]
    with xlsxwriter.Workbook(path) as wb:
        ws = wb.add_worksheet()
        ws.write_row(0, 0, ["unit_id", "x"])
        for i, (v, _) in enumerate(cells, 1):
            ws.write(i, 0, f"u{i}")
            ws.write_string(i, 1, v) if isinstance(v, str) else ws.write(i, 1, v)
    assert read_table(path).get_column("x").to_list() == [text for _, text in cells]


def test_xlsx_with_an_empty_first_row_is_refused_as_csv_is(tmp_path: Path) -> None:
    """Row numbers count from the sheet's row 1 (calamine skipped empty leading rows: every row said was
    one too small)."""
    import xlsxwriter  # noqa: PLC0415

    path = tmp_path / "e.xlsx"
    with xlsxwriter.Workbook(path) as wb:
        ws = wb.add_worksheet("u")
        ws.write_row(1, 0, ["unit_id", "x"])
        ws.write_row(2, 0, ["u1", "1"])
    msg = str(_error(read_table, path))
    assert "e.xlsx: row 1: row 1 of sheet 'u' is empty: the header must be the first row" in msg


def _without_results(path: Path) -> Path:
    """The workbook with every formula's saved result (other than an error) removed, as a program that writes
    formulas leaves it (xlsxwriter saves 0, or the value given)."""
    with zipfile.ZipFile(path) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    out = path.with_name("bare_" + path.name)
    with zipfile.ZipFile(out, "w") as z:
        for n, d in parts.items():
            z.writestr(n, re.sub(rb"(</f>)<v>[^<#][^<]*</v>", rb"\1", d) if n.startswith("xl/worksheets/") else d)
    return out


def test_xlsx_error_cells_and_unsaved_formulas_are_not_read_as_empty(tmp_path: Path) -> None:
    """calamine reads a cell holding an Excel error, and a formula saved without its result, as an empty
    cell: they read as the error's text and as the formula, so that parsing the field names the cell."""
    import xlsxwriter  # noqa: PLC0415

    path = tmp_path / "f.xlsx"
    with xlsxwriter.Workbook(path) as wb:
        ws = wb.add_worksheet("单位")
        ws.write_row(0, 0, ["unit_id", "rate", "target"])
        ws.write_row(1, 0, ["u1", 0.5, 10])
        ws.write(2, 0, "u2")
        ws.write_formula(2, 1, "=B2/0", None, "#DIV/0!")
        ws.write_formula(3, 1, "=VLOOKUP(A4,C:C,1,FALSE)", None, "#N/A")
        ws.write(3, 0, "u3")
        ws.write(4, 0, "u4")
        ws.write_formula(4, 2, '=IF(B2>0,"是","否")', None, "是")
        ws.write_row(5, 0, ["u5", None, 3])
    df = read_table(path)
    assert df.get_column("rate").to_list() == ["0.5", "#DIV/0!", "#N/A", None, None]
    assert df.get_column("target").to_list() == ["10", None, None, "是", "3"]  # a saved result is its value
    bare = read_table(_without_results(path))
    assert bare.get_column("rate").to_list() == ["0.5", "#DIV/0!", "#N/A", None, None]  # errors keep theirs
    assert bare.get_column("target").to_list() == ["10", None, None, '=IF(B2>0,"是","否")', "3"]


def test_xlsx_formula_without_result_outside_the_table_is_refused_by_its_cell(tmp_path: Path) -> None:
    import xlsxwriter  # noqa: PLC0415

    path = tmp_path / "g.xlsx"
    with xlsxwriter.Workbook(path) as wb:
        ws = wb.add_worksheet("单位")
        ws.write_row(0, 0, ["unit_id", "x"])
        ws.write_row(1, 0, ["u1", 1])
        ws.write_formula(6, 1, "=SUM(B2:B2)", None, 1)  # a total row under the table
    with pytest.warns(Notice, match="row 7, below the table after a blank row, read as a note and left out"):
        assert read_table(path).get_column("x").to_list() == ["1"]  # a lone cell below a blank row: a note
    msg = str(_error(read_table, _without_results(path)))  # calamine's table ends at row 2
    assert "bare_g.xlsx: row 7: cell B7 of sheet '单位' holds a formula (=SUM(B2:B2)) saved without its result" in msg
    assert "open the file in Excel and save it" in msg


def test_an_excel_error_in_an_optional_field_is_refused_not_scored_as_not_applicable(tmp_path: Path) -> None:
    """A #N/A (a failed VLOOKUP) in the demo's afforest_target used to read as empty, and the item scored
    full points as not applicable for the unit."""
    import xlsxwriter  # noqa: PLC0415

    from engine.pipeline import Inputs, run  # noqa: PLC0415

    root = Path(__file__).resolve().parent.parent
    units = pl.read_csv(root / "fixtures" / "2022" / "units.csv", infer_schema=False)
    path = tmp_path / "units.xlsx"
    with xlsxwriter.Workbook(path) as wb:
        ws = wb.add_worksheet("单位")
        ws.write_row(0, 0, units.columns)
        for i, row in enumerate(units.iter_rows(), 1):
            for j, v in enumerate(row):
                if v is not None:
                    ws.write_string(i, j, v)
        ws.write_formula(3, units.columns.index("afforest_target"), "=VLOOKUP(A4,任务!A:B,2,FALSE)", None, "#N/A")
    msg = str(_error(run, Inputs(root / "rules" / "township-2022.yaml", path, no_events=True)))
    assert "units.xlsx: row 4, column 'afforest_target': '#N/A' is an Excel error, not a value; " \
        "correct the cell's formula" in msg


def test_xlsx_header_problems_name_the_sheet_column_after_leading_empty_columns(tmp_path: Path) -> None:
    """calamine starts a sheet at its first used column; a message names the column as Excel does."""
    import xlsxwriter  # noqa: PLC0415

    path = tmp_path / "c.xlsx"
    with xlsxwriter.Workbook(path) as wb:
        ws = wb.add_worksheet("单位")
        ws.write_row(0, 2, ["unit_id", "x", "unit_id"])
        ws.write_row(1, 2, ["u1", 1, "u1", 5])
    msg = str(_error(read_table, path))
    assert "column name 'unit_id' appears 2 times (column C, column E)" in msg
    assert "column F has values but no name in the header row" in msg


def _sheet(tmp_path: Path, cells: str, *, name: str = "S", damage: bool = False, after: str = "") -> Path:
    """A workbook whose one sheet's <sheetData> is `cells` (inline strings: no shared-strings part needed),
    followed by `after` (e.g. <mergeCells>), optionally with one byte after </sheetData> changed (its zip
    checksum then fails; calamine never reads there)."""
    import xlsxwriter  # noqa: PLC0415

    path = tmp_path / "s.xlsx"
    with xlsxwriter.Workbook(path) as wb:
        wb.add_worksheet(name).write(0, 0, 1)
    with zipfile.ZipFile(path) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    xml = re.sub(rb"<sheetData>.*</sheetData>",
                 lambda _: b"<sheetData>" + cells.encode() + b"</sheetData>" + after.encode(),
                 parts["xl/worksheets/sheet1.xml"], flags=re.S)
    parts["xl/worksheets/sheet1.xml"] = xml
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for n, d in parts.items():
            z.writestr(n, d)
    if damage:
        data = bytearray(path.read_bytes())
        at = data.find(b"</sheetData>") + len(b"</sheetData>") + 2
        data[at] ^= 1
        path.write_bytes(bytes(data))
    return path


def _is(ref: str, text: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'


HEAD = f'<row r="1">{_is("A1", "id")}{_is("B1", "x")}</row>'


@pytest.mark.parametrize(("cells", "x"), [
    # what openpyxl writes for a formula: an empty <v>
    (f'<row r="2">{_is("A2", "a")}<c r="B2"><f>C2*2</f><v/></c></row>', "=C2*2"),
    (f'<row r="2">{_is("A2", "a")}<c r="B2"><f>C2*2</f><v></v></c></row>', "=C2*2"),
    # a formula whose result is the text '' (Excel writes t="str") is that text: an empty cell
    (f'<row r="2">{_is("A2", "a")}<c r="B2" t="str"><f>""</f><v></v></c></row>', None),
    # a shared formula's other cells carry no text of their own
    (f'<row r="2">{_is("A2", "a")}<c r="B2"><f t="shared" si="0"/></c></row>', "(a formula)"),
    # legal spellings: spaces around '=', a lower-case reference, an end tag with a space, a namespace prefix
    (f'<row r="2">{_is("A2", "a")}<c r="B2" t = "e"><v>#N/A</v></c></row>', "#N/A"),
    (f'<row r="2">{_is("A2", "a")}<c r="b2" t="e"><v>#REF!</v></c></row>', "#REF!"),
    (f'<row r="2">{_is("A2", "a")}<c r="B2" t="e"><v>&#35;N/A</v></c></row>', "#N/A"),
    (f'<row r="2">{_is("A2", "a")}<c r="B2"><f>1+1</f></c ></row>', "=1+1"),
    # a comment (calamine skips it) is no cell
    (f'<row r="2">{_is("A2", "a")}<c r="B2"><v>1</v></c><!-- <c r="B2" t="e"><v>#N/A</v></c> --></row>', "1"),
    # text that looks like an error or a formula is text: a rich-text run's <family> is no <f>
    (f'<row r="2">{_is("A2", "a")}<c r="B2" t="inlineStr"><is><r><rPr><family val="2"/></rPr><t>t="e" #1</t></r>'
     '</is></c></row>', 't="e" #1'),
])
def test_xlsx_cells_calamine_reads_as_empty_are_read_as_what_they_hold(tmp_path: Path, cells: str,
                                                                       x: str | None) -> None:
    assert read_table(_sheet(tmp_path, HEAD + cells)).get_column("x").to_list() == [x]


@pytest.mark.parametrize("kind", ["", ' t="e"', ' t="s"', ' t="inlineStr"', ' t="n"'])
def test_xlsx_odd_cells_map_to_calamines_columns_and_are_refused_where_they_cannot(tmp_path: Path,
                                                                                  kind: str) -> None:
    # a cell with an empty <v> in column A is no value (but for text and dates): calamine's first column is B
    lead = f'<row r="3"><c r="A3"{kind}><v></v></c></row>'
    body = (f'<row r="1">{_is("B1", "id")}{_is("C1", "x")}{_is("D1", "x")}</row>'
            f'<row r="2">{_is("B2", "a")}<c r="C2" t="e"><f>1/0</f><v>#DIV/0!</v></c><c r="D2"><v>1</v></c></row>')
    msg = str(_error(read_table, _sheet(tmp_path, body + lead)))
    assert "column name 'x' appears 2 times (column C, column D)" in msg
    # a cell that does not record its place, with a value: the letters are not known, the table's numbers are
    unplaced = body.replace('<c r="D2">', "<c>")
    msg = str(_error(read_table, _sheet(tmp_path, unplaced.replace('t="e"><f>1/0</f><v>#DIV/0!', "><v>2"))))
    assert "column name 'x' appears 2 times (column 2, column 3)" in msg
    # nor then the column of an error: it is refused, named by its cell
    msg = str(_error(read_table, _sheet(tmp_path, unplaced)))
    assert "row 2: cell C2 of sheet 'S' holds the Excel error #DIV/0!" in msg
    # an error whose place is not recorded cannot be put in its column: refused
    msg = str(_error(read_table, _sheet(tmp_path, HEAD + f'<row r="2">{_is("A2", "a")}<c t="e"><v>#N/A</v></c></row>')))
    assert "a cell (the file does not record which) of sheet 'S' holds the Excel error #N/A" in msg
    # a header that holds only an error is not an empty row 1: the cell is named
    msg = str(_error(read_table, _sheet(tmp_path, '<row r="1"><c r="B1" t="e"><v>#N/A</v></c></row>'
                                                  f'<row r="2">{_is("A2", "a")}<c r="B2"><v>1</v></c></row>')))
    assert "row 1: column A has values but no name in the header row" in msg


@pytest.mark.parametrize("lead", ['<c r="A4" t="str"><v></v></c>', '<c r="A4" t="d"><v></v></c>',
                                  '<c r="A4" t="e"><v></v></c>', '<c r="A4" s="1"/>', '<c r="A4"><f>1</f><v/></c>'])
def test_xlsx_an_error_lands_in_its_column_whatever_column_a_holds(tmp_path: Path, lead: str) -> None:
    """calamine's table starts at column A only if A holds a value (an empty text or date result does; an
    empty error, a style, a formula without its result does not): the error is read in its own column either
    way (or, for the unsaved formula in A4, refused)."""
    body = (f'<row r="1">{_is("B1", "id")}{_is("C1", "x")}</row>'
            f'<row r="2">{_is("B2", "a")}<c r="C2" t="e"><f>1/0</f><v>#DIV/0!</v></c></row>'
            f'<row r="3">{_is("B3", "b")}<c r="C3"><v>2</v></c></row><row r="4">{lead}</row>')
    if "<f>" in lead:
        assert "cell A4 of sheet 'S' holds a formula (=1) saved without its result" in str(
            _error(read_table, _sheet(tmp_path, body)))
    else:
        assert read_table(_sheet(tmp_path, body)).get_column("x").to_list()[:2] == ["#DIV/0!", "2"]


def test_xlsx_cells_a_merged_range_covers_read_as_merged_not_empty(tmp_path: Path) -> None:
    """Only a merged range's first cell holds its value, which Excel shows across the range; calamine read the
    others as empty, and an optional field there scored as not applicable (a 目标 merged over three villages:
    two scored full points). They read '[merged C3:C5]', so a field's parse names them; the header row and
    cells holding values are left alone."""
    cells = (f'<row r="1">{_is("A1", "id")}{_is("B1", "x")}{_is("C1", "y")}</row>'
             + "".join(f'<row r="{r}">{_is(f"A{r}", f"u{r}")}<c r="B{r}"><v>{r}</v></c>'
                       + (f'<c r="C{r}"><v>7</v></c>' if r == 3 else f'<c r="C{r}" s="1"/>') + "</row>"
                       for r in range(2, 7)))
    merges = '<mergeCells count="2"><mergeCell ref="C3:C5"/><mergeCell ref="B1:B2"/></mergeCells>'
    df = read_table(_sheet(tmp_path, cells, after=merges))
    assert df.get_column("y").to_list() == [None, "7", "[merged C3:C5]", "[merged C3:C5]", None]
    assert df.get_column("x").to_list() == ["2", "3", "4", "5", "6"]  # B2 holds a value: it is kept


def test_xlsx_sheet_found_by_its_place_and_a_damaged_one_refused(tmp_path: Path) -> None:
    cells = HEAD + f'<row r="2">{_is("A2", "a")}<c r="B2" t="e"><v>#DIV/0!</v></c></row>'
    # the workbook's XML normalises a tab in a sheet name; the sheet is found by its place, not its name
    assert read_table(_sheet(tmp_path, cells, name="一\t二")).get_column("x").to_list() == ["#DIV/0!"]
    msg = str(_error(read_table, _sheet(tmp_path, cells, damage=True)))
    assert "cannot read the cells of sheet 'S': Bad CRC-32" in msg and "open it in Excel and save it again" in msg


def test_xlsx_a_column_of_huge_whole_numbers_is_read(tmp_path: Path) -> None:
    """polars' read_excel cast a column of whole numbers to Int64 and refused 1e20 as a damaged file."""
    cells = HEAD + f'<row r="2">{_is("A2", "a")}<c r="B2"><v>1E+20</v></c></row>'
    assert read_table(_sheet(tmp_path, cells)).get_column("x").to_list() == ["1" + "0" * 20]


# --- reading: every error names the file, and the row/column where it applies ----------------------------

def test_file_not_found_and_unknown_extension(tmp_path: Path) -> None:
    err = _error(read_table, tmp_path / "missing.csv")
    assert "missing.csv" in str(err) and "not found" in str(err)
    err = _error(read_table, _write(tmp_path / "data.xls", b"x"))
    assert "data.xls" in str(err) and ".csv" in str(err) and ".xlsx" in str(err) and ".parquet" in str(err)


@pytest.mark.parametrize("content, words", [
    (b"", ["empty"]),
    (b"\xef\xbb\xbf \r\n\r\n", ["empty"]),
    ("乡镇,得分\n".encode(), ["no data rows"]),
    ("乡镇,得分\n,\n\n".encode(), ["no data rows"]),
    (b"\n\xe4\xb9\xa1,x\n1,2\n", ["row 1", "empty"]),
    (b"\xff\xfea\x00,\x00b\x00", ["UTF-16"]),
])
def test_empty_and_headless(tmp_path: Path, content: bytes, words: list[str]) -> None:
    msg = str(_error(read_table, _write(tmp_path / "e.csv", content)))
    assert "e.csv" in msg
    for w in words:
        assert w in msg


def test_undecodable_bytes_say_where_and_suggest_encoding(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.csv", b"a,b\n1,2\n3,\xff\xff\n")
    msg = str(_error(read_table, path))
    assert "bad.csv" in msg and "offset 10" in msg and "line 3" in msg and "--encoding" in msg


def test_ragged_rows_give_spreadsheet_row_numbers(tmp_path: Path) -> None:
    path = _write(tmp_path / "r.csv", 'a,b,c\n1,2,3\n"x\ny",2\n1,2,3,4\n1,2,3\n')
    err = _error(read_table, path)
    rows = [(p.loc.row, p.message) for p in err.problems]
    assert [r for r, _ in rows] == [3, 4]  # the quoted line break does not count as a row
    assert "2 cells" in rows[0][1] and "has 3" in rows[0][1] and "4 cells" in rows[1][1]
    assert "r.csv: row 3" in str(err)


def test_duplicate_and_unnamed_headers(tmp_path: Path) -> None:
    err = _error(read_table, _write(tmp_path / "d.csv", "乡镇,得分, 乡镇\n甲,1,2\n"))
    (p,) = err.problems
    assert (p.loc.file, p.loc.row, p.loc.column) == (str(tmp_path / "d.csv"), 1, "乡镇")
    assert "(A)" in p.message and "(C)" in p.message
    err = _error(read_table, _write(tmp_path / "u.csv", "乡镇,,得分\n甲,5,1\n"))
    assert "u.csv: row 1" in str(err) and "column 2 (B)" in str(err)
    # an unnamed column with nothing in it is simply dropped (Excel often exports those)
    assert read_table(_write(tmp_path / "ok.csv", "乡镇,,得分\n甲,,1\n")).columns == ["乡镇", "得分"]


def test_title_row_gets_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "title.xlsx"
    write_xlsx(path, {"S": pl.DataFrame({"2022年度考核表": ["乡镇", "甲"], "": ["得分", "1"]})})
    msg = str(_error(read_table, path))
    assert "title.xlsx" in msg and "title" in msg.split("title.xlsx", 1)[1]


def test_a_title_over_a_wide_table_is_one_problem_and_counts_are_true(tmp_path: Path) -> None:
    """A title row over the demo's 60 columns gave 59 'has values but no name' lines (20 listed, '... and 39
    more') and a count of '21 problems'. It is one problem now, naming the title; and a capped list counts
    every problem it stands for."""
    rows = ["XX镇2022年度考核数据表" + "," * 9, ",".join(f"c{i}" for i in range(10)), ",".join("1" * 10)]
    err = _error(read_table, _write(tmp_path / "t.csv", "\n".join(rows) + "\n"))
    assert [str(p) for p in err.problems] == [
        f"{tmp_path / 't.csv'}: row 1: row 1 holds one name ('XX镇2022年度考核数据表') over 9 columns that have "
        "values but no name (column 2 (B), ...): is row 1 a title?; delete the rows above the column names, so "
        "that they are in row 1"]
    many = _error(read_table, _write(tmp_path / "r.csv", "a,b\n" + "1,2,3\n" * 25))
    assert len(many.problems) == 21 and many.problems[-1].more == 5
    assert many.render().endswith("25 problems in 1 file")


def test_unknown_sheet_lists_sheets(tmp_path: Path) -> None:
    path = tmp_path / "w.xlsx"
    write_xlsx(path, {"数据": FRAME, "说明": FRAME})
    msg = str(_error(read_table, path, sheet="数具"))
    assert "w.xlsx" in msg and "'数据'" in msg and "'说明'" in msg
    assert "sheet number 3" in str(_error(read_table, path, sheet=3))


@pytest.mark.parametrize("name, content", [
    ("c.xlsx", b"PK\x03\x04 not really a zip"),
    ("c.xlsx", b"hello"),
    ("c.parquet", b"PAR1 garbage PAR1"),
    ("c.parquet", b""),
])
def test_corrupt_binary_files(tmp_path: Path, name: str, content: bytes) -> None:
    msg = str(_error(read_table, _write(tmp_path / name, content)))
    assert name in msg and "cannot" in msg


def test_empty_sheet_and_header_only_sheet(tmp_path: Path) -> None:
    path = tmp_path / "e.xlsx"
    write_xlsx(path, {"空": pl.DataFrame(), "头": FRAME.head(0)})
    assert "sheet '空' is empty" in str(_error(read_table, path))
    assert "no data rows" in str(_error(read_table, path, sheet="头"))


# --- headers -> field ids --------------------------------------------------------------------------------

FIELDS = {"town": "乡镇", "invest": "完成投资", "area": "面积(亩)", "rate": "完成率(%)"}


def test_map_columns_accepts_ids_labels_and_units() -> None:
    df = pl.DataFrame({"town": ["甲"], "完成投资（万元）": ["1"], "面积 (亩)": ["2"], "完成率": ["3"], "备注": ["x"]})
    out = map_columns(df, FIELDS, path="d.csv")
    assert out.columns == ["town", "invest", "area", "rate", "备注"]
    assert out.row(0) == ("甲", "1", "2", "3", "x")
    assert map_columns(pl.DataFrame({"完成投资(万元)": ["1"]}), {"i": "完成投资(万元)"}, path="d").columns == ["i"]


def test_map_columns_two_headers_for_one_field() -> None:
    df = pl.DataFrame({"town": ["甲"], "乡镇": ["乙"]})
    (p,) = _error(map_columns, df, FIELDS, path="d.csv").problems
    assert p.loc.file == "d.csv" and p.loc.row == 1 and p.loc.column == "乡镇"
    assert "'town'" in p.message and "'乡镇'" in p.message and "town" in p.message


def test_map_columns_refuses_a_different_unit() -> None:
    (p,) = _error(map_columns, pl.DataFrame({"面积(公顷)": ["1"]}), FIELDS, path="d.csv").problems
    assert p.loc.column == "面积(公顷)" and "公顷" in p.message and "亩" in p.message


# --- writing -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    ("=SUM(A1)", "'=SUM(A1)"), ("+1 text", "'+1 text"), ("@x", "'@x"), ("-x", "'-x"), ("\tx", "'\tx"),
    ("\r=1", "'\r=1"), (" =1", "' =1"), ("-3", "-3"), ("-0.5", "-0.5"), ("+1.5", "+1.5"), ("-5%", "-5%"),
    ("-1e5", "-1e5"), ("a=b", "a=b"), ("中文", "中文"), ("", ""), ("-", "'-"), ("-inf", "'-inf"),
    ("-3\n", "'-3\n"),  # a line break after it: no plain number (as the vectorised test sees it too)
])
def test_neutralise(value: str, expected: str) -> None:
    assert neutralise(value) == expected


@given(st.lists(st.text(alphabet="=+-@\t\r\n 0123456789.eE%ax中", max_size=6) | st.none(), min_size=1, max_size=20))
@settings(max_examples=80, deadline=None)
def test_vectorised_neutralise_matches_neutralise(values: list[str | None]) -> None:
    got = pl.DataFrame({"v": values}, schema={"v": pl.String}).select(_neutralise_expr("v")).get_column("v")
    assert got.to_list() == [None if v is None else neutralise(v) for v in values]


def test_to_csv_bytes_bom_crlf_and_numbers_untouched() -> None:
    df = pl.DataFrame({"=名称": ["=1+1", "-3", "甲"], "分": [-3, 2, None]})
    data = to_csv_bytes(df)
    assert data.startswith(b"\xef\xbb\xbf") and data == to_csv_bytes(df)
    assert data[3:].decode() == "'=名称,分\r\n'=1+1,-3\r\n-3,2\r\n甲,\r\n"


def test_refuses_to_overwrite_an_input(tmp_path: Path) -> None:
    src = _write(tmp_path / "in.csv", "乡镇\n甲\n")
    before = src.read_bytes()
    for out in (src, tmp_path / "sub" / ".." / "in.csv", str(src)):
        (tmp_path / "sub").mkdir(exist_ok=True)
        msg = str(_error(write_atomic, out, "x", inputs=[tmp_path / "other.csv", src]))
        assert "in.csv" in msg and "overwrite" in msg
    os.link(src, tmp_path / "hard.csv")
    assert "overwrite" in str(_error(write_xlsx, tmp_path / "hard.csv", {"s": FRAME}, inputs=[src]))
    assert src.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hard.csv", "in.csv", "sub"]


def test_write_atomic_replaces_and_reports_bad_directory(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    write_atomic(out, "旧")
    write_atomic(out, b"new", inputs=[tmp_path / "in.csv"])
    assert out.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]  # no temp file left behind
    msg = str(_error(write_atomic, tmp_path / "nope" / "o.csv", "x"))
    assert "o.csv" in msg and "does not exist" in msg


def test_write_xlsx_cells_sheets_and_layout(tmp_path: Path) -> None:
    path = tmp_path / "o.xlsx"
    df = pl.DataFrame({"名称": ["=SUM(A1)", "@x", "-3"], "得分": [1.5, -3.0, None], "数": [1, 2, 3]})
    long = "一个非常非常长的工作表名字超过了三十一个字符的限制啊啊啊啊"
    write_xlsx(path, {"a/b": df, "A/B": df, long: df, "History": df}, formats={"得分": "0.00"})
    first = path.read_bytes()
    write_xlsx(path, {"a/b": df, "A/B": df, long: df, "History": df}, formats={"得分": "0.00"})
    assert path.read_bytes() == first  # deterministic
    with zipfile.ZipFile(path) as z:
        sheet = z.read("xl/worksheets/sheet1.xml").decode()
        styles = z.read("xl/styles.xml").decode()
        names = re.findall(r'<sheet name="([^"]+)"', z.read("xl/workbook.xml").decode())
    assert names == ["a_b", "A_B~2", long[:31], "History_"]
    assert "<f>" not in sheet  # no formulas anywhere
    assert 'state="frozen"' in sheet and 'ySplit="1"' in sheet
    assert 'quotePrefix="1"' in styles and "<b/>" in styles and 'formatCode="0.00"' in styles
    assert read_table(path).rows() == [("=SUM(A1)", "1.5", "1"), ("@x", "-3", "2"), ("-3", None, "3")]
    typed = pl.read_excel(path, engine="calamine")
    assert typed.schema["得分"] == pl.Float64 and typed.schema["名称"] == pl.String
    widths = [float(w) for w in re.findall(r'<col [^>]*width="([\d.]+)"', sheet)]
    assert widths[0] >= 10  # '=SUM(A1)' is 8 wide


def test_text_width_counts_cjk_as_two() -> None:
    assert _text_width("abc") == 3 and _text_width("乡镇") == 4 and _text_width("a\n中文字") == 6


# --- robustness: only ever a DataFrame or a KaoheError -------------------------------------------------

@given(st.binary(max_size=120) | st.text(alphabet='a中,"\n\r \t\x00', max_size=40).map(str.encode))
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(data=b"x\x01\x02\x01")  # a zlib header to Polars' reader ("corrupt deflate stream")
def test_random_bytes_as_csv(tmp_path: Path, data: bytes) -> None:
    path = _write(tmp_path / "f.csv", data)
    try:
        assert isinstance(read_table(path), pl.DataFrame)
    except KaoheError as e:
        assert "f.csv" in str(e)


_CELL = st.text(alphabet=' ab,;"\n中文镇-=0.5', max_size=5)


@given(st.integers(1, 4).flatmap(lambda w: st.tuples(
    st.lists(st.text(alphabet="ab中文 ", min_size=1, max_size=4), min_size=w, max_size=w),
    st.lists(st.lists(_CELL | st.none(), min_size=w, max_size=w), max_size=5))),
    st.sampled_from(["utf-8", "gbk", "utf-8-sig", "parquet", "xlsx"]))
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_random_frames_read_back_or_fail_cleanly(tmp_path: Path, frame: tuple, fmt: str) -> None:
    header, rows = frame
    df = pl.DataFrame(rows, schema={f"c{i}": pl.String for i in range(len(header))}, orient="row")
    df.columns = header if len(set(header)) == len(header) else df.columns
    path = tmp_path / ("f." + fmt if fmt in ("parquet", "xlsx") else "f.csv")
    if fmt == "parquet":
        df.write_parquet(path)
    elif fmt == "xlsx":
        write_xlsx(path, {"S": df})
    else:
        _write(path, df.write_csv().encode(fmt))
    try:
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always", Notice)
            got = read_table(path)
    except KaoheError as e:
        assert path.name in str(e)
        return
    keep = [i for i, h in enumerate(df.columns) if h.strip() or fmt == "parquet"]  # empty unnamed: dropped
    clean = [tuple((r[i] or "").strip() or None for i in keep) for r in df.rows()]
    if fmt != "parquet":
        while clean and all(v is None for v in clean[-1]):
            clean.pop()
    notes = [re.search(r": rows? (\d+)", str(w.message)) for w in said if isinstance(w.message, Notice)]
    if notes:  # a note under the table: one-cell rows after a blank row, below the last row of two or more cells
        [note] = notes
        assert note is not None and fmt != "parquet"
        start = int(note.group(1)) - 2
        filled = [sum(v is not None for v in r) for r in clean]
        assert filled[start] == 1 and all(n <= 1 for n in filled[start:])
        last = max(i for i in range(start) if filled[i] >= 2)  # the table's last row of two or more cells
        blank = filled.index(0, last)  # then a blank row, and nothing from it to the note
        assert blank < start and not any(filled[blank:start])
        clean = clean[:start]
        while clean and all(v is None for v in clean[-1]):
            clean.pop()
    assert got.columns == [df.columns[i].strip() for i in keep]
    assert got.rows() == clean


@given(st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=8))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_damaged_xlsx_fails_cleanly(tmp_path: Path, flips: list[tuple[int, int]]) -> None:
    good = tmp_path / "good.xlsx"
    if not good.exists():
        write_xlsx(good, {"S": FRAME})
    data = bytearray(good.read_bytes())
    for at, byte in flips:
        data[at % len(data)] = byte
    path = _write(tmp_path / "bad.xlsx", bytes(data))
    try:
        assert isinstance(read_table(path), pl.DataFrame)
    except KaoheError as e:
        assert "bad.xlsx" in str(e)


def _csv_outcome(text: str) -> object:
    from engine.io_read import _parse_csv  # noqa: PLC0415 - the parser under test

    try:
        return _parse_csv(text, "t.csv", "units").rows()
    except KaoheError as e:
        return str(e)


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(st.lists(st.sampled_from(["", "a", " 1", "2.5", "  ", "\x1c", "\u3000", "x y", "\r", "b\rc",
                                                "\x01", "单位"]), max_size=4), max_size=6),
       end=st.sampled_from(["\n", "\r\n"]), last=st.booleans())
def test_plain_csv_text_is_read_as_the_csv_module_reads_it(lines: list[list[str]], end: str, last: bool) -> None:
    """engine.io_read: a CSV text without quotes is counted line by line (`_plain_shape`, vectorised); the
    table, or the problem reported, is the one the csv module's reading gives (blank lines, ragged rows,
    an empty header, CRLF, a missing last line end, a lone CR, whitespace Python and Polars trim differently)."""
    from engine import io_read  # noqa: PLC0415 - the switch under test

    text = end.join(",".join(cells) for cells in lines) + (end if last and lines else "")
    quick = _csv_outcome(text)
    with mock.patch.object(io_read, "_plain_shape", lambda _text: None):  # the csv module's reading
        assert quick == _csv_outcome(text), repr(text)


def test_a_frame_longer_than_a_sheet_continues_on_numbered_sheets(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Excel holds 1,048,576 rows a sheet (100,000 units' findings are 2.8M rows): the rest goes on
    'name (2)', 'name (3)', ..., each with the header, no row lost (xlsxwriter drops them silently)."""
    import engine.io_write as io_write  # noqa: PLC0415 - the limit under test

    monkeypatch.setattr(io_write, "XLSX_ROWS", 4)  # a header and three rows a sheet
    monkeypatch.setattr(io_write, "XLSX_BLOCK", 2)  # rows turned into values two at a time
    df = pl.DataFrame({"单位": [f"u{i}" for i in range(8)], "得分": [float(i) / 2 for i in range(8)],
                       "公式": ["=1+1" if i % 3 == 0 else "-3" for i in range(8)]})
    path = tmp_path / "o.xlsx"
    write_xlsx(path, {"findings": df, "短": df.head(2)})
    with zipfile.ZipFile(path) as z:
        names = re.findall(r'<sheet name="([^"]+)"', z.read("xl/workbook.xml").decode())
    assert names == ["findings", "findings (2)", "findings (3)", "短"]
    back = pl.concat([pl.read_excel(path, sheet_name=n, engine="calamine") for n in names[:3]])
    assert back.select("单位", "得分").equals(df.select("单位", "得分"))
    assert read_table(path, sheet="findings (3)").get_column("公式").to_list() == ["=1+1", "-3"]
    assert read_table(path).get_column("公式").to_list() == ["=1+1", "-3", "-3"]  # kept as text, not run


@pytest.mark.parametrize(("error", "message"), [
    ("create", "cannot write the output: No space left on device"),
    ("size", "larger than 2 GB"),
])
def test_a_workbook_that_cannot_be_stored_is_said_and_leaves_no_file(tmp_path: Path, error: str, message: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """xlsxwriter writes the (temp) file itself and wraps its errors: they come out as our message."""
    import xlsxwriter  # noqa: PLC0415

    def fail(self: object) -> None:
        if error == "create":
            raise xlsxwriter.exceptions.FileCreateError(OSError(28, "No space left on device"))
        raise xlsxwriter.exceptions.FileSizeError("Filesize would require ZIP64 extensions.")

    monkeypatch.setattr(xlsxwriter.Workbook, "close", fail)
    err = _error(write_xlsx, tmp_path / "o.xlsx", {"s": FRAME})
    assert message in str(err) and "o.xlsx" in str(err)
    assert list(tmp_path.iterdir()) == []  # no workbook, no temp file


def test_a_workbook_reads_back_the_same_built_in_memory_or_row_by_row(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A small workbook is built in memory (shared strings), a large one streamed row by row (inline strings,
    xlsxwriter's constant memory mode): the same sheets, cells and formula-like text kept as text."""
    import engine.io_write as io_write  # noqa: PLC0415 - the switch under test

    df = pl.DataFrame({"单位": ["甲村", "乙村", None, "=1+1"], "得分": [89.54, None, 70.0, 1.5],
                       "说明": ["-3", "达到目标", "达到目标", ""]})
    books = []
    for cells in (0, 10**9):  # row by row, then in memory
        monkeypatch.setattr(io_write, "XLSX_STREAM_CELLS", cells)
        path = tmp_path / f"o{cells}.xlsx"
        write_xlsx(path, {"分数": df, "短": df.head(1)})
        with zipfile.ZipFile(path) as z:
            books.append(("xl/sharedStrings.xml" in z.namelist(),
                          [read_table(path, sheet=k).rows() for k in (1, 2)]))
    (streamed_shared, streamed), (in_memory_shared, in_memory) = books
    assert not streamed_shared and in_memory_shared  # the two ways were taken
    assert streamed == in_memory and streamed[0][3][0] == "=1+1"


@pytest.mark.parametrize("header", ["x^2,得分", "x\x01,得分", "xœ,得分"])
def test_a_csv_starting_like_a_compressed_stream_is_read_as_text(tmp_path: Path, header: str) -> None:
    """'x^' and 'x\\x01' open a zlib stream to Polars' CSV reader, which then tried to inflate the file."""
    df = read_table(_write(tmp_path / "z.csv", f"{header}\n甲,1\n".encode()))
    assert df.columns[0] == header.split(",")[0].strip() and df.rows() == [("甲", "1")]


def test_the_id_name_and_type_columns_and_the_event_log_may_be_headed_as_the_template_names_them(
        tmp_path: Path) -> None:
    """The template's 说明 sheet names the id, name and type columns 单位编号, 单位名称, 单位类型 and the event
    log's columns 事件编号, 日期, 单位编号, 事件类型: a clerk heading them so was refused ('缺少列 unit_id').
    Headed so (and the event fields by their labels), the demo scores as it does; beside unit_id itself, a
    单位编号 column is left unused (an extra 编号 or 类别 column stopped runs that had worked)."""
    from engine.pipeline import Inputs, run  # noqa: PLC0415

    root = Path(__file__).resolve().parent.parent
    scheme, units, events = (root / "rules" / "township-2022.yaml", root / "fixtures" / "2022" / "units.csv",
                             root / "fixtures" / "2022" / "events.csv")
    text = units.read_text(encoding="utf-8").split("\n", 1)
    header = text[0].replace("unit_id,name,unit_type,", "单位编号,单位名称,单位类型,", 1)
    zh_units = tmp_path / "units.csv"
    zh_units.write_text(header + "\n" + text[1], encoding="utf-8")
    log = events.read_text(encoding="utf-8").split("\n", 1)
    assert log[0] == "event_id,date,unit_id,kind,level,deaths,households,note"
    zh_log = tmp_path / "events.csv"
    zh_log.write_text("事件编号,日期,单位编号,事件类型,级别,死亡人数,涉及户数,备注\n" + log[1], encoding="utf-8")
    want = run(Inputs(scheme, units, events)).frame
    got = run(Inputs(scheme, zh_units, zh_log)).frame
    assert got.select("unit_id", "name", "unit_type", "total", "grade", "rank").equals(
        want.select("unit_id", "name", "unit_type", "total", "grade", "rank"))
    both = tmp_path / "both.csv"
    table = pl.read_csv(units, infer_schema=False)
    table.insert_column(1, table.get_column("unit_id").alias("单位编号"))
    table.write_csv(both)
    # an extra 单位编号 (or 编号, 类别) beside the column itself is an unused column, as before these names
    assert run(Inputs(scheme, both, events)).frame.select("unit_id", "total").equals(want.select("unit_id", "total"))


def test_whole_file_mistakes_are_one_problem_that_says_what_the_file_is(tmp_path: Path) -> None:
    """The clerk audit (#12, #13): --data and --events swapped gave a notice of 36 optional fields and 22
    missing columns; a tab-separated file saved as .csv, the same; an empty first sheet did not say which
    sheets hold something. Each is now one problem saying what the file is, and no notice of the optional
    fields comes before a table that lacks the columns it must have."""
    from engine.pipeline import Inputs, run  # noqa: PLC0415

    root = Path(__file__).resolve().parent.parent
    scheme, units, events = (root / "rules" / "township-2022.yaml", root / "fixtures" / "2022" / "units.csv",
                             root / "fixtures" / "2022" / "events.csv")

    def said(inputs: Inputs) -> list[str]:
        with warnings.catch_warnings(record=True) as notes:
            warnings.simplefilter("always")
            err = _error(run, inputs)
        assert not [w for w in notes if isinstance(w.message, Notice)]
        return [p.text("zh") for p in err.problems]

    assert said(Inputs(scheme, events, units)) == [
        f"{events}: 第 1 行: 这像是事件记录 (有事件编号、日期、事件类型列), 不是单位数据表；"
        "--data 和 --events 是否填反了?"]
    assert said(Inputs(scheme, units, units)) == [
        f"{units}: 第 1 行: 这像是单位数据表 (有方案的单位类型或字段列), 不是事件记录；"
        "--data 和 --events 是否填反了?"]
    tabbed = tmp_path / "units.csv"
    tabbed.write_text(units.read_text(encoding="utf-8").replace(",", "\t"), encoding="utf-8")
    assert said(Inputs(scheme, tabbed, events)) == [
        f"{tabbed}: 第 1 行: 文件是用制表符分隔的, 不是逗号；请在 Excel 或 WPS 中另存为“CSV UTF-8 (逗号分隔)”"]
    book = tmp_path / "units.xlsx"
    write_xlsx(book, {"Sheet1": pl.DataFrame(), "数据": pl.read_csv(units, infer_schema=False)})
    assert said(Inputs(scheme, book, events)) == [
        f"{book}: 工作表 'Sheet1' 是空的; 工作簿中还有: '数据'；请用 --sheet 工作表名 指定要读取的工作表"]


def test_a_directory_given_as_a_table_is_said_to_be_one(tmp_path: Path) -> None:
    """`--data .` was 'unknown file type (none)'."""
    err = _error(read_table, tmp_path, what="units")
    said = [p.text("zh") for p in err.problems]
    assert said == [f"{tmp_path}: 这是一个文件夹, 不是单位数据文件；请给出文件本身的路径"]
    assert str(err).startswith(f"{tmp_path}: is a directory, not a units file")


@pytest.mark.parametrize(("rows", "gap", "said"), [
    ([[NOTE[0]]], 0, "row 4, below the table, read as a note and left out ('备注：以上数据由各单位自报"),
    ([["制表人：张三", "", "审核人：李四"]], 1, "row 5, below the table, read as a note and left out "
                                           "('制表人：张三 审核人：李四')"),
    ([["以上数据由各单位自报"], ["制表人：张三", "审核人：李四"]], 1, "rows 5-6, below the table, read as a note"),
])
def test_a_footer_beginning_with_a_note_word_is_a_note_however_it_is_laid_out(tmp_path: Path, rows: list[list[str]],
                                                                             gap: int, said: str) -> None:
    """The clerk audit (#9): a 备注 line directly under the table, or a 制表人 … 审核人 footer over two cells
    (the commonest footer of a township table), was read as units: 20-40 problems. Lines under the table
    that begin with a note word (备注, 制表, 审核, 负责人, …) are a note, with or without a blank row above."""
    path = _with_note(tmp_path, "csv", rows, gap=gap)
    with pytest.warns(Notice, match=re.escape(said)):
        assert read_table(path).height == 2
    named = _with_note(tmp_path, "csv", [["审批服务局", "村", "3"]], gap=0)  # a unit whose name begins so: no note
    assert read_table(named).height == 3


def test_a_row_of_group_headings_above_the_header_is_one_problem(tmp_path: Path) -> None:
    """The clerk audit (#13): group headings (一、共性指标 | 二、村(社区)指标) merged above the real header gave
    one problem per column (58 lines); a single title row was already one."""
    units = (Path(__file__).resolve().parent.parent / "fixtures" / "2022" / "units.csv").read_text(encoding="utf-8")
    width = units.split("\n", 1)[0].count(",") + 1
    grouped = tmp_path / "units.csv"
    grouped.write_text("一、共性指标" + "," * 20 + "二、村(社区)指标" + "," * (width - 21) + "\n" + units,
                       encoding="utf-8")
    err = _error(read_table, grouped, what="units")
    assert [p.text("zh") for p in err.problems] == [
        f"{grouped}: 第 1 行: 第 1 行只有 2 个名称 ('一、共性指标', '二、村(社区)指标'), 而有 {width - 2} 列有值"
        "却没有列名: 第 1 行是列名上方的分组标题吗?；请删除列名上方的行, 使列名位于第 1 行"]


def test_fuzzed_layouts_of_notes_aliases_and_scenario_logs_read_as_meant(tmp_path: Path) -> None:
    """The fuzzing helper's finds: a 注： line, a blank row and an 审批人： line under the table left 注： in the
    table (the blank-row rule found only the last line: the earlier start of the two rules is taken now);
    '＊类型' (a full-width required mark) heading the type column of a Parquet table was not even read (the
    columns read were matched unnormalised); a scenario log headed 事件编号/日期/… was taken for overrides."""
    from engine.pipeline import Inputs, run  # noqa: PLC0415

    root = Path(__file__).resolve().parent.parent
    scheme, units, events = (root / "rules" / "township-2022.yaml", root / "fixtures" / "2022" / "units.csv",
                             root / "fixtures" / "2022" / "events.csv")
    want = run(Inputs(scheme, units, events)).frame.select("unit_id", "total", "grade")
    width = units.read_text(encoding="utf-8").split("\n", 1)[0].count(",")
    noted = tmp_path / "noted.csv"
    noted.write_text(units.read_text(encoding="utf-8") + "注：" + "," * width + "\n,,,\n审批人：" + "," * width + "\n",
                     encoding="utf-8")
    with pytest.warns(Notice, match="第 32-34 行位于表格下方|rows 32-34, below the table"):
        assert run(Inputs(scheme, noted, events)).frame.select("unit_id", "total", "grade").equals(want)
    starred = tmp_path / "units.parquet"
    pl.read_csv(units, infer_schema=False).rename({"unit_type": "＊类型", "unit_id": "编号"}).write_parquet(starred)
    assert run(Inputs(scheme, starred, events), detail=False).frame.select("unit_id", "total", "grade").equals(want)


def test_a_date_line_and_a_stamp_line_under_the_table_are_a_note(tmp_path: Path) -> None:
    """The fuzzing helper: 日期：… and 'XX镇考核办（盖章）' lines closing a footer were read as units."""
    footer = [["备注：以上数据经审核"], ["XX镇考核办（盖章）", "", "日期：2023年1月5日"]]
    path = _with_note(tmp_path, "csv", footer, gap=0)
    with pytest.warns(Notice, match="rows 4-5, below the table"):
        assert read_table(path).height == 2


def test_fuzzing_round_two_merged_ids_and_kinds_are_refused_and_odd_digits_are_no_numbers(tmp_path: Path) -> None:
    """The fuzzing helper, second round: a merged 事件类型 in an .xlsx log read '[merged D2:D3]' for the second
    event, which then matched no rule (a fatal accident's veto lost, exit 0); a merged unit id was scored as a
    unit of that id; `--sheet ²` and a date of thousands of digits raised tracebacks."""
    import xlsxwriter  # noqa: PLC0415

    from engine.event_rules import _serial_date  # noqa: PLC0415
    from engine.pipeline import Inputs, load  # noqa: PLC0415

    root = Path(__file__).resolve().parent.parent
    scheme, units, events = (root / "rules" / "township-2022.yaml", root / "fixtures" / "2022" / "units.csv",
                             root / "fixtures" / "2022" / "events.csv")
    log = pl.read_csv(events, infer_schema=False)
    book = tmp_path / "events.xlsx"
    with xlsxwriter.Workbook(book) as wb:
        ws = wb.add_worksheet("事件记录")
        for j, c in enumerate(log.columns):
            ws.write(0, j, c)
        for i, row in enumerate(log.head(4).iter_rows(), start=1):
            for j, v in enumerate(row):
                if v is not None and (i, j) not in ((2, 3), (3, 3)):
                    ws.write_string(i, j, v)
        ws.merge_range(2, 3, 3, 3, log.item(1, "kind"))  # D3:D4 merged: D4 reads as covered
    err = _error(load, Inputs(scheme, units, book))
    assert any(p.loc.row == 4 and p.loc.column == "kind" and "合并单元格 D3:D4" in p.text("zh") for p in err.problems)
    table = pl.read_csv(units, infer_schema=False)
    merged = tmp_path / "units.csv"
    table.with_columns(pl.when(pl.int_range(pl.len()) == 2).then(pl.lit("[merged A3:A4]")).otherwise(pl.col("unit_id"))
                       .alias("unit_id")).write_csv(merged)
    err = _error(load, Inputs(scheme, merged, events))
    assert [(p.loc.row, p.loc.column) for p in err.problems][:1] == [(4, "unit_id")]
    assert "这一格在合并单元格 A3:A4 中" in err.problems[0].text("zh")
    assert _serial_date("9" * 5000) is None
    sheets = tmp_path / "two.xlsx"
    write_xlsx(sheets, {"a": table.head(2), "b": table.head(2)})
    assert "no sheet named '²'" in str(_error(read_table, sheets, sheet="²"))
