"""Bad data through the real pipeline: every problem names the file, the row, the column and what is wrong.

Each file in tests/bad_data/ is the demo data (fixtures/2022/units.csv or events.csv) with exactly
one thing broken; the table below says where (spreadsheet row, header = row 1) and what the
message must say. A CSV has no room for comments, so the expectations live here.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from engine.errors import KaoheError
from engine.pipeline import Inputs, run

ROOT = Path(__file__).resolve().parent.parent
SCHEME = ROOT / "rules" / "township-2022.yaml"
UNITS = ROOT / "fixtures" / "2022" / "units.csv"
EVENTS = ROOT / "fixtures" / "2022" / "events.csv"
BAD = Path(__file__).resolve().parent / "bad_data"


# the bad files are older copies of the demo data, without its newer optional last_rank column (said by a Notice)
pytestmark = [pytest.mark.usefixtures("scheme_parsed_once"), pytest.mark.filterwarnings("ignore::engine.errors.Notice")]

# (file, row, column, message fragment)
UNIT_CASES = [
    ("missing_column.csv", 1, "hazards_found", "missing column 'hazards_found' (排查安全隐患数): the column "
     "'hazard_found' looks like it; head it '排查安全隐患数' (or 'hazards_found')"),
    ("not_a_number.csv", 4, "safety_trainings", "'四次' is not a whole number"),
    ("too_many_decimals.csv", 3, "safety_eval", "'20.05' has more than 1 decimal; round it to 1 decimal"),
    ("below_min.csv", 6, "safety_trainings", "'-2' is below the minimum 0"),
    ("above_max.csv", 8, "party_q1", "'31.0' is above the maximum 30"),
    ("max_other_field.csv", 2, "hazards_fixed", "'13' is above the maximum hazards_found (排查安全隐患数)"),
    ("unknown_unit_type.csv", 8, "unit_type", "unknown unit type 'villag'"),
    ("empty_unit_type.csv", 8, "unit_type", "empty unit type; allowed: village (村), community (社区), office"),
    ("duplicate_unit_id.csv", 11, "unit_id", "duplicate unit id 'V09'"),
    ("empty_required.csv", 5, "letters_signed", "empty cell for unit V04"),
    ("value_not_allowed.csv", 7, "village_class", "'四类' is not allowed"),
    ("bad_bool.csv", 9, "dues_on_time", "'已交' is not 是/否"),
]
EVENT_CASES = [
    ("event_date_outside_year.csv", 6, "date", "date '2021-12-30' is outside the assessment year 2022"),
    ("event_not_a_date.csv", 11, "date", "'2022-02-30' is not a date"),
    ("event_unknown_unit.csv", 13, "unit_id", "event for unknown unit 'V99'"),
    ("event_duplicate_id.csv", 21, "event_id", "duplicate event id 'E019'"),
    ("event_missing_column.csv", 1, "kind", "missing column 'kind'"),
]


ZH = {  # the same problems as the Chinese-first CLI says them (`Problem.text("zh")`)
    "missing_column.csv": "缺少列 'hazards_found' (排查安全隐患数): 列 'hazard_found' 像是它；"
                          "请把列名改为 '排查安全隐患数'",
    "not_a_number.csv": "'四次' 不是整数；请在列 'safety_trainings' (安全培训演练次数) 填写整数",
    "too_many_decimals.csv": "'20.05' 的小数超过 1 位；请保留 1 位小数",
    "below_min.csv": "'-2' 低于下限 0；安全培训演练次数不得小于 0",
    "above_max.csv": "'31.0' 超过上限 30",
    "max_other_field.csv": "'13' 超过上限 hazards_found (排查安全隐患数)",
    "unknown_unit_type.csv": "未知的单位类型 'villag'；可填: 村 (village)、社区 (community)、镇属单位 (office)",
    "empty_unit_type.csv": "单位类型为空；可填: 村 (village)",
    "duplicate_unit_id.csv": "单位编号 'V09' 重复",
    "empty_required.csv": "单位 V04 的单元格为空；请填写",
    "value_not_allowed.csv": "不允许填 '四类'；可填: 一类, 二类, 三类",
    "bad_bool.csv": "'已交' 不能识别为是/否；请填 是 或 否",
    "event_date_outside_year.csv": "日期 '2021-12-30' 不在考核年度 2022 内",
    "event_not_a_date.csv": "'2022-02-30' 不是日期；日期请写成 YYYY-MM-DD",
    "event_unknown_unit.csv": "事件所属的单位 'V99' 不在单位数据中",
    "event_duplicate_id.csv": "事件编号 'E019' 重复",
    "event_missing_column.csv": "缺少列 'kind'",
}


def _inputs(name: str) -> Inputs:
    bad = BAD / name
    return Inputs(SCHEME, UNITS, bad) if name.startswith("event_") else Inputs(SCHEME, bad, EVENTS)


def _error(inputs: Inputs) -> KaoheError:
    with pytest.raises(KaoheError) as info:
        run(inputs)
    return info.value


def test_every_bad_file_is_listed() -> None:
    listed = {c[0] for c in UNIT_CASES + EVENT_CASES} | {"three_problems.csv"}
    assert listed == {p.name for p in BAD.glob("*.csv")}


@pytest.mark.parametrize(("name", "row", "column", "fragment"), UNIT_CASES + EVENT_CASES,
                         ids=[c[0].removesuffix(".csv") for c in UNIT_CASES + EVENT_CASES])
def test_bad_data_is_located(name: str, row: int, column: str, fragment: str) -> None:
    err = _error(_inputs(name))
    text = str(err)
    assert all(p.loc.file.endswith(name) for p in err.problems), text
    hits = [str(p) for p in err.problems if p.loc.row == row]
    assert hits, f"no problem at row {row}:\n{text}"
    hit = next((h for h in hits if fragment in h), None)
    assert hit is not None, f"'{fragment}' not said at row {row}:\n{text}"
    assert name in hit and f"row {row}" in hit and column in hit, hit
    # exactly the broken thing is reported: one cell, or both rows of a duplicate
    assert len(err.problems) == (2 if "duplicate" in name else 1), text


@pytest.mark.parametrize(("name", "row", "column", "fragment"), UNIT_CASES + EVENT_CASES,
                         ids=[c[0].removesuffix(".csv") for c in UNIT_CASES + EVENT_CASES])
def test_bad_data_is_said_in_chinese(name: str, row: int, column: str, fragment: str) -> None:
    """What township staff read first (the CLI's default --lang zh): the place as 第 N 行, 列 'x', the
    problem and how to fix it in Chinese; the English text stays available (`str`, --lang en)."""
    err = _error(_inputs(name))
    assert all(p.zh is not None for p in err.problems), str(err)
    said = [p.text("zh") for p in err.problems if p.loc.row == row]
    hit = next((s for s in said if ZH[name] in s), None)
    assert hit is not None, f"'{ZH[name]}' not said at row {row}:\n{err.render('zh')}"
    assert hit.startswith(f"{err.problems[0].loc.file}: 第 {row} 行") and column in hit, hit
    n = len(err.problems)
    assert err.render("zh").endswith(f"共 {n} 个问题")
    assert err.render().endswith(f"{n} problem{'s' if n > 1 else ''} in 1 file")


def test_every_check_of_a_field_says_itself_in_chinese() -> None:
    """A check added without Chinese words would show township staff an English line: every check the
    demo schemes' fields make has them."""
    import polars as pl  # noqa: PLC0415

    from engine.data import _id_checks, field_checks  # noqa: PLC0415
    from engine.scheme import load_scheme  # noqa: PLC0415

    for path in (SCHEME, ROOT / "rules" / "cadres-2022.yaml", ROOT / "tests" / "benchmark" / "reference.yaml"):
        scheme = load_scheme(path)
        checks = _id_checks(scheme)
        for f in scheme.fields.values():
            checks += field_checks(f, pl.String, scheme, None) + field_checks(f, pl.Float64, scheme, None)
        assert checks and all(c.zh is not None and c.zh[0] for c in checks), \
            [c.message for c in checks if c.zh is None]


def test_the_fixtures_themselves_are_clean() -> None:
    r = run(Inputs(SCHEME, UNITS, EVENTS))
    assert r.frame.height == 30


def test_all_problems_of_a_file_at_once() -> None:
    err = _error(_inputs("three_problems.csv"))
    found = {(p.loc.row, p.loc.column) for p in err.problems}
    assert found == {(4, "safety_trainings"), (8, "party_q1"), (12, "unit_type")}, str(err)
    text = str(err)
    for fragment in ("'四次' is not a whole number", "'31.0' is above the maximum 30", "unknown unit type '村庄'"):
        assert fragment in text
    assert text.endswith("3 problems in 1 file")


@pytest.mark.parametrize("count_in_memory_below", [0, 10**9], ids=["streaming", "in-memory"])
def test_problems_are_counted_alike_on_either_polars_engine(count_in_memory_below: int,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """engine.data counts each check's rows on the in-memory engine for small tables and in morsels on the
    streaming engine for large ones: the same problems are found either way."""
    from engine import data  # noqa: PLC0415 - the switch under test

    monkeypatch.setattr(data, "COUNT_IN_MEMORY_BELOW", count_in_memory_below)
    test_all_problems_of_a_file_at_once()


@pytest.mark.parametrize("name", ["three_problems.csv", "event_duplicate_id.csv", "missing_column.csv"])
def test_a_failed_run_leaves_its_inputs_alone(name: str, tmp_path: Path) -> None:
    inputs = _inputs(name)
    files = [inputs.scheme, inputs.data, inputs.events]
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in files if p is not None}
    listing = {p.parent: sorted(x.name for x in p.parent.iterdir()) for p in before}
    _error(inputs)
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in before} == before
    assert {d: sorted(x.name for x in d.iterdir()) for d in listing} == listing  # no temp or output files


@pytest.mark.parametrize(("column", "cell", "en", "zh"), [
    ("safety_trainings", "3次", "'3次' carries a unit ('次'); write the number only: 3",
     "'3次' 带了单位 '次'；请只填数字: 3"),
    ("safety_trainings", "12.5", "'12.5' is not a whole number", "'12.5' 不是整数；请填写整数"),
    ("fire_checks", "=10+2", "'=10+2' is a formula saved without its result", "'=10+2' 是没有保存计算结果的公式"),
    ("fire_checks", "#DIV/0!", "'#DIV/0!' is an Excel error, not a value", "'#DIV/0!' 是 Excel 的错误值, 不是数"),
    ("fire_checks", "2022-03-04 00:00:00", "'2022-03-04 00:00:00' is a date (the cell is formatted as a date)",
     "'2022-03-04' 是日期 (单元格被设成了日期格式)"),
    ("project_target", "2,880.00", "'2,880.00' has thousands separators; write it without commas: 2880.00",
     "'2,880.00' 含千位分隔符；请去掉逗号, 写作 2880.00"),
    ("garbage_rate", "0.97601323407775", "'0.97601323407775' has more than 4 decimals (a formula's result?)",
     "'0.97601323407775' 的小数超过 4 位 (多为公式的计算结果)；请保留 4 位小数: 可用 =ROUND(…,4)"),
    ("unit_type", "[merged C2:C17]", "the cell is inside the merged cells C2:C17",
     "这一格在合并单元格 C2:C17 中, 只有合并区域的第一格有值；请取消合并, 在每一行分别填写"),
])
def test_a_cell_that_is_no_number_is_said_as_what_it_is(tmp_path: Path, column: str, cell: str, en: str,
                                                         zh: str) -> None:
    """The clerk audit: a unit after the number, thousands separators, an Excel error, a formula saved without
    its result, a date cell, a formula's long decimals and a merged cell were all said as 'is not a number
    (or is too large to hold exactly)'. Each is now said as what it is, with how to fix it."""
    import polars as pl  # noqa: PLC0415

    table = pl.read_csv(UNITS, infer_schema=False)
    assert column in table.columns
    bad = tmp_path / "units.csv"
    table.with_columns(pl.when(pl.int_range(pl.len()) == 2).then(pl.lit(cell)).otherwise(pl.col(column))
                       .alias(column)).write_csv(bad)
    err = _error(Inputs(SCHEME, bad, EVENTS))
    [p] = err.problems
    assert (p.loc.row, p.loc.column) == (4, column)
    assert en in p.text("en") and zh in p.text("zh"), (p.text("en"), p.text("zh"))


@pytest.mark.parametrize(("old", "new", "said"), [
    ("hazards_found", "排查安全隐患", "缺少列 'hazards_found' (排查安全隐患数): 列 '排查安全隐患' 像是它"),
    ("fire_checks", None, "缺少列 'fire_checks' (消防安全检查次数)；请加上这一列"),
    ("hazards_found", "*排查安全隐患数", None),
])
def test_a_missing_column_names_the_header_it_was_mistyped_as(tmp_path: Path, old: str, new: str | None,
                                                              said: str | None) -> None:
    """The clerk audit (#10): a required column headed with a slip (排查安全隐患 for 排查安全隐患数) got '是否应为
    hazards_fixed?', a column the table has, and the slip itself was never named. The missing column is now
    matched against the headers the scheme does not know; a deleted column gets no suggestion; a header
    marked required with a leading * is the field's."""
    import polars as pl  # noqa: PLC0415

    table = pl.read_csv(UNITS, infer_schema=False)
    table = table.rename({old: new}) if new is not None else table.drop(old)
    bad = tmp_path / "units.csv"
    table.write_csv(bad)
    if said is None:
        assert run(Inputs(SCHEME, bad, EVENTS)).frame.height == 30
        return
    err = _error(Inputs(SCHEME, bad, EVENTS))
    fix = "；请把列名改为 '排查安全隐患数' (或 'hazards_found')" if new else \
        ", 列名写 '消防安全检查次数' (或 'fire_checks')"
    assert [p.text("zh") for p in err.problems] == [f"{bad}: 第 1 行" + (f", 列 '{new}'" if new else "") + ": " + said
                                                      + fix]
