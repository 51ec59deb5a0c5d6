"""engine.template: the Excel data template of a scheme, and the key property: filled in, it reads back.

openpyxl is not used (not a dependency): the template is read back with engine.io.read_table
(calamine) and its validations, comments and layout are checked in the workbook's XML; a
"filled-in" template is the same headers and sheet written with engine.io.write_xlsx.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from xml.etree import ElementTree as ET

import fastexcel
import polars as pl
import pytest
from helpers import DECISIONS, DEMO_EVENTS, DEMO_SCHEME, DEMO_UNITS, ROOT, write_scheme

from engine.data import prepare_units
from engine.errors import KaoheError
from engine.io import map_columns, read_table, write_xlsx
from engine.io_read import _letter
from engine.pipeline import Inputs, run
from engine.scheme import load_scheme
from engine.template import EVENTS_SHEET, NOTES_SHEET, UNITS_SHEET, event_kinds, write_template

SCHEME, UNITS, EVENTS = DEMO_SCHEME, DEMO_UNITS, DEMO_EVENTS
NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}


pytestmark = pytest.mark.usefixtures("scheme_parsed_once")


@pytest.fixture(scope="module")
def units() -> pl.DataFrame:
    return read_table(UNITS)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, scheme, units: pl.DataFrame) -> Path:  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("template") / "data.xlsx"
    write_template(scheme, path, units=units, inputs=[SCHEME, UNITS])
    return path


def _header_row(path: Path, sheet: str) -> list[str]:
    """Row 1 of a sheet, also of one with no rows below it (read_table refuses those)."""
    raw = pl.read_excel(path, sheet_name=sheet, engine="calamine", has_header=False, raise_if_empty=False)
    return [str(v) for v in raw.row(0)]


def _xml(path: Path, name: str) -> ET.Element:
    with zipfile.ZipFile(path) as z:
        return ET.fromstring(z.read(name))


def _sheet_xml(path: Path, n: int) -> ET.Element:
    return _xml(path, f"xl/worksheets/sheet{n}.xml")




def _validations(path: Path, n: int) -> dict[str, dict[str, str]]:
    """Column letter -> the data-validation rule on it (type, operator, formula1, formula2)."""
    out = {}
    for dv in _sheet_xml(path, n).iterfind(".//m:dataValidation", NS):
        col = re.match(r"[A-Z]+", dv.get("sqref", "")).group(0)  # type: ignore[union-attr]
        out[col] = {"type": dv.get("type", ""), "operator": dv.get("operator", "between"),
                    "error_style": dv.get("errorStyle", "stop"),
                    **{k: (dv.findtext(f"m:{k}", "", NS)) for k in ("formula1", "formula2")}}
    return out


# --- layout ---------------------------------------------------------------------------------------

def test_sheets_and_headers(template: Path, scheme) -> None:  # type: ignore[no-untyped-def]
    assert fastexcel.read_excel(template).sheet_names == [UNITS_SHEET, EVENTS_SHEET, NOTES_SHEET]
    heads = _header_row(template, UNITS_SHEET)
    assert heads == ["unit_id", "name", "unit_type"] + [f.label for f in scheme.fields.values()]
    mapped = map_columns(pl.DataFrame(schema=dict.fromkeys(heads, pl.String)),
                         {f.id: f.label for f in scheme.fields.values()}, path=template)
    assert mapped.columns == ["unit_id", "name", "unit_type", *scheme.fields]
    assert _header_row(template, EVENTS_SHEET) == ["event_id", "date", "unit_id", "kind", "level", "deaths",
                                                   "households", "value", "note"]


def test_units_are_prefilled(template: Path, units: pl.DataFrame, scheme) -> None:  # type: ignore[no-untyped-def]
    df = read_table(template, sheet=UNITS_SHEET)
    assert df.select("unit_id", "name", "unit_type").rows() == units.select("unit_id", "name", "unit_type").rows()
    labels = [f.label for f in scheme.fields.values()]
    assert df.select(pl.col(labels).null_count()).row(0) == (units.height,) * len(labels)
    # an unfilled template is refused cell by cell, each empty required cell named by row and column
    with pytest.raises(KaoheError) as info:
        prepare_units(map_columns(df, {f.id: f.label for f in scheme.fields.values()}, path=template), scheme,
                      path=str(template))
    assert "data.xlsx: row 2, column 'letters_signed': empty cell for unit V01" in str(info.value)


def test_layout_bold_frozen_header_and_cjk_widths(template: Path, scheme) -> None:  # type: ignore[no-untyped-def]
    sheet = _sheet_xml(template, 1)
    pane = sheet.find(".//m:pane", NS)
    assert pane is not None and (pane.get("xSplit"), pane.get("ySplit")) == ("3", "1")
    widths = {j - 1: float(c.get("width", 0)) for c in sheet.iterfind(".//m:col", NS)
              for j in range(int(c.get("min", 0)), int(c.get("max", 0)) + 1)}
    heads = _header_row(template, UNITS_SHEET)
    for j, h in enumerate(heads):
        assert widths[j] >= (2 * len(h) if re.search(r"[\u4e00-\u9fff]", h) else len(h)), (h, widths[j])
    styles = _xml(template, "xl/styles.xml")
    assert styles.find(".//m:font/m:b", NS) is not None
    assert _sheet_xml(template, 2).find(".//m:pane", NS) is not None  # the event sheet's header is frozen too


def test_validations_follow_the_declared_ranges(template: Path, scheme) -> None:  # type: ignore[no-untyped-def]
    heads = _header_row(template, UNITS_SHEET)
    col = {h: _letter(j) for j, h in enumerate(heads)}
    label = {f.id: f.label for f in scheme.fields.values()}
    v = _validations(template, 1)

    def rule(fid: str) -> dict[str, str]:
        return v[col[label.get(fid, fid)]]

    assert rule("hazards_found") == {"type": "whole", "operator": "greaterThanOrEqual", "error_style": "stop",
                                     "formula1": "0", "formula2": ""}
    assert rule("safety_eval") | {} == {"type": "decimal", "operator": "between", "error_style": "stop",
                                        "formula1": "0", "formula2": "25"}
    assert rule("garbage_rate")["formula2"] == "1"
    fixed = rule("hazards_fixed")  # max: hazards_found -> a formula over that column
    assert fixed["type"] == "custom" and f"{col[label['hazards_fixed']]}2<={col[label['hazards_found']]}2" in \
        fixed["formula1"]
    assert rule("letters_signed")["type"] == "list" and rule("letters_signed")["formula1"] == '"是,否"'
    assert rule("village_class")["formula1"] == '"一类,二类,三类"'
    assert rule("unit_type")["formula1"] == '"village,community,office"'
    assert rule("unit_id")["type"] == "custom" and "COUNTIF" in rule("unit_id")["formula1"]
    assert rule("key_task_eval")["type"] == "decimal"  # no bounds declared: still "a number"
    # every field column has a rule except free text
    free = {f.id for f in scheme.fields.values() if f.type == "str" and not f.values}
    assert {fid for fid in scheme.fields if col[label[fid]] not in v} == free

    e = _validations(template, 2)
    assert e["B"]["type"] == "custom" and "=2022" in e["B"]["formula1"]  # date within the scheme's year
    assert e["C"]["formula1"] == f"'{UNITS_SHEET}'!$A$2:$A$31"  # unit ids of the 30 prefilled units
    kinds, by = event_kinds(scheme)
    assert set(kinds) == {"生产安全事故", "信访", "越级访", "环境污染事件", "搬迁延误", "通报批评", "表彰"}
    assert e["D"]["formula1"] == '"' + ",".join(kinds) + '"' and e["D"]["error_style"] == "warning"
    assert by == {"level": ["县级", "市级", "省级"]} and e["E"]["formula1"] == '"县级,市级,省级"'


def test_header_comments_say_label_unit_type_and_range(template: Path) -> None:
    with zipfile.ZipFile(template) as z:
        names = [n for n in z.namelist() if re.match(r"xl/comments\d+\.xml", n)]
        text = "".join(z.read(n).decode("utf-8") for n in names)
    for fragment in ("整改安全隐患数", "字段: hazards_fixed", "类型: 整数", "单位: 处",
                     "范围: 0 ~ 排查安全隐患数(hazards_found)", "类型: 小数(最多2位)", "单位: 万元", "选填",
                     "可选值: 一类、二类、三类", "字段: deaths"):
        assert fragment in text, fragment


@pytest.mark.filterwarnings("ignore::engine.errors.Notice")  # the sheet's closing lines are read as a note
def test_notes_sheet_lists_every_field(template: Path, scheme) -> None:  # type: ignore[no-untyped-def]
    notes = read_table(template, sheet=NOTES_SHEET).filter(pl.col("字段").is_not_null())
    units_part = notes.filter(pl.col("工作表") == UNITS_SHEET)
    assert units_part.get_column("字段").to_list() == ["unit_id", "name", "unit_type", *scheme.fields]
    row = {r["字段"]: r for r in units_part.iter_rows(named=True)}
    assert (row["hazards_fixed"]["类型"], row["hazards_fixed"]["单位"], row["hazards_fixed"]["范围"],
            row["hazards_fixed"]["必填"]) == ("整数", "处", "0 ~ 排查安全隐患数(hazards_found)", "是")
    assert (row["collective_income"]["名称"], row["collective_income"]["类型"], row["collective_income"]["范围"],
            row["collective_income"]["必填"]) == ("村集体经济收入(万元)", "小数(最多2位)", "≥ 0", "否")
    assert row["safety_eval"]["范围"] == "0 ~ 25" and row["letters_signed"]["类型"] == "是/否"
    events_part = notes.filter(pl.col("工作表") == EVENTS_SHEET).get_column("字段").to_list()
    assert events_part[:4] == ["event_id", "date", "unit_id", "kind"]


# --- the key property: filled in, it reads back -------------------------------------------------------

def _fill(template: Path, sheet: str, data: pl.DataFrame, ids: dict[str, str]) -> pl.DataFrame:
    """`data` (field-id headers) under the template's own headers, in the template's column order."""
    heads = _header_row(template, sheet)
    return data.select((pl.col(ids.get(h, h)) if ids.get(h, h) in data.columns else pl.lit(None, pl.String)).alias(h)
                       for h in heads)  # a column the data does not have stays empty


def test_a_filled_template_scores_like_the_csv(template: Path, tmp_path: Path, scheme,  # type: ignore[no-untyped-def]
                                               units: pl.DataFrame) -> None:
    ids = {f.label: f.id for f in scheme.fields.values()}
    typed = units.with_columns([pl.col(f.id).cast(pl.Int64) for f in scheme.fields.values() if f.type == "int"]
                               + [pl.col(f.id).cast(pl.Float64) for f in scheme.fields.values()
                                  if f.type == "decimal"])
    filled, events = tmp_path / "filled.xlsx", tmp_path / "events.xlsx"
    # values as typed into Excel: numbers as number cells, texts (ids, 是/否, classes) as text cells
    write_xlsx(filled, {UNITS_SHEET: _fill(template, UNITS_SHEET, typed, ids)})
    write_xlsx(events, {EVENTS_SHEET: _fill(template, EVENTS_SHEET, read_table(EVENTS), {})})

    read_back = map_columns(read_table(filled, sheet=UNITS_SHEET), {f.id: f.label for f in scheme.fields.values()},
                            path=filled)
    got = prepare_units(read_back, scheme, path=str(filled)).frame
    want = prepare_units(units, scheme, path=str(UNITS)).frame
    assert got.equals(want)

    from_csv = run(Inputs(SCHEME, UNITS, EVENTS)).frame.sort("unit_id")
    from_xlsx = run(Inputs(SCHEME, filled, events)).frame.sort("unit_id")
    awards = [c for c in from_csv.columns if c.startswith("a.") and (c.count(".") == 1 or c.endswith(".level"))]
    assert from_xlsx.select(DECISIONS + awards).rows() == from_csv.select(DECISIONS + awards).rows()
    assert from_xlsx.drop("_row").equals(from_csv.drop("_row"))


def test_another_scheme_reads_back_too(tmp_path: Path) -> None:
    cadres = load_scheme(ROOT / "rules" / "cadres-2022.yaml")
    data = read_table(ROOT / "fixtures" / "2022" / "cadres.csv")
    path = tmp_path / "cadres.xlsx"
    write_template(cadres, path, units=data)
    labels = {f.id: f.label for f in cadres.fields.values()}
    filled = tmp_path / "filled.xlsx"
    write_xlsx(filled, {UNITS_SHEET: _fill(path, UNITS_SHEET, data, {v: k for k, v in labels.items()})})
    got = prepare_units(map_columns(read_table(filled), labels, path=filled), cadres, path="x").frame
    assert got.equals(prepare_units(data, cadres, path="x").frame)


def test_one_filled_workbook_gives_units_and_events(template: Path, tmp_path: Path, scheme,  # type: ignore[no-untyped-def]
                                                    units: pl.DataFrame) -> None:
    ids = {f.label: f.id for f in scheme.fields.values()}
    book = tmp_path / "filled.xlsx"
    write_xlsx(book, {UNITS_SHEET: _fill(template, UNITS_SHEET, units, ids),
                      EVENTS_SHEET: _fill(template, EVENTS_SHEET, read_table(EVENTS), {})})
    from_csv = run(Inputs(SCHEME, UNITS, EVENTS)).frame.sort("unit_id")
    assert run(Inputs(SCHEME, book, book)).frame.sort("unit_id").drop("_row").equals(from_csv.drop("_row"))


# --- inputs, safety, determinism ------------------------------------------------------------------------

def test_never_over_an_input_and_atomic(tmp_path: Path, scheme, units: pl.DataFrame) -> None:  # type: ignore[no-untyped-def]
    copy = tmp_path / "units.xlsx"
    write_xlsx(copy, {"units": units})
    before = copy.read_bytes()
    with pytest.raises(KaoheError, match="would overwrite the input"):
        write_template(scheme, copy, units=read_table(copy), inputs=[copy, SCHEME])
    assert copy.read_bytes() == before
    with pytest.raises(KaoheError, match="does not exist"):
        write_template(scheme, tmp_path / "no-such-dir" / "t.xlsx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["units.xlsx"]  # no temp file left behind


def test_deterministic_bytes(tmp_path: Path, scheme, units: pl.DataFrame) -> None:  # type: ignore[no-untyped-def]
    a, b = tmp_path / "a.xlsx", tmp_path / "b.xlsx"
    write_template(scheme, a, units=units)
    write_template(scheme, b, units=units)
    assert a.read_bytes() == b.read_bytes()


def test_units_table_needs_ids_and_may_give_type_labels(tmp_path: Path, scheme) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(KaoheError) as info:
        write_template(scheme, tmp_path / "t.xlsx", units=pl.DataFrame({"unit": ["V01"]}), units_path="list.csv")
    assert "list.csv: row 1: missing column 'unit_id' (did you mean 'unit'?)" in str(info.value)
    path = tmp_path / "t.xlsx"
    units = pl.DataFrame({"unit_id": [" 007", "008", None], "unit_type": ["村", "office", None]})
    write_template(scheme, path, units=units)
    df = read_table(path)
    assert df.select("unit_id", "name", "unit_type").rows() == [("007", None, "village"), ("008", None, "office")]


def test_a_roster_the_run_would_refuse_is_refused_before_it_is_handed_out(tmp_path: Path,
                                                                          scheme) -> None:  # type: ignore[no-untyped-def]
    """A duplicate id, a unit without an id, or an unknown unit type used to be copied into the template (or
    the row dropped) without a word; every filled copy would then fail the run."""
    units = pl.DataFrame({"unit_id": ["V01", "V02", "V01", None, None, "C01"],
                          "name": ["甲村", "乙村", "丙村", "丁村", None, "戊社区"],
                          "unit_type": ["village", "villag", "村", None, None, "社区"]})
    path = tmp_path / "t.xlsx"
    with pytest.raises(KaoheError) as info:
        write_template(scheme, path, units=units, units_path="list.csv")
    assert [str(p) for p in info.value.problems] == [
        "list.csv: row 3, column 'unit_type': unknown unit type 'villag' (did you mean 'village'?); allowed: "
        "village (村), community (社区), office (镇属单位)",
        "list.csv: row 4, column 'unit_id': duplicate unit id 'V01' (first in row 2); each unit appears once",
        "list.csv: row 5, column 'unit_id': empty unit id (name '丁村'); fill in its id, or delete the row"]
    assert not path.exists()
    write_template(scheme, path, units=units[[0, 4, 5]])
    assert read_table(path).get_column("unit_id").to_list() == ["V01", "C01"]  # a wholly empty row is skipped


def test_headers_fall_back_to_ids_where_a_label_would_not_map_back(tmp_path: Path) -> None:
    path = write_scheme(tmp_path, "sections:\n  - {id: s, items: [{id: x, points: 100, value: a + b + c + d,"
                                  " method: {count: {each: 2}}}]}",
                        {"a": "{label: b, type: int}", "b": "{label: 数量, type: int}", "c": "{label: 数量, type: int}",
                         "d": "{label: 完成投资(万元), type: decimal, scale: 2, unit: 万元}"})
    scheme = load_scheme(path)
    out = tmp_path / "t.xlsx"
    write_template(scheme, out)
    heads = _header_row(out, UNITS_SHEET)
    assert heads == ["unit_id", "name", "unit_type", "a", "b", "c", "完成投资(万元)"]
    filled = tmp_path / "filled.xlsx"
    write_xlsx(filled, {UNITS_SHEET: pl.DataFrame([["u1", "甲", "village", "1", "2", "3", "4.5"]], schema=heads,
                                                  orient="row")})
    df = map_columns(read_table(filled), {f.id: f.label for f in scheme.fields.values()}, path=filled)
    got = prepare_units(df, scheme, path=str(filled)).frame
    assert got.select("a", "b", "c", "d").row(0) == (1, 2, 3, 450)
