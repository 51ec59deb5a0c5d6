"""Typed (Parquet) inputs are validated from column statistics where that proves a check cannot fail;
every real problem must still be reported, located by row and column."""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import polars as pl
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from engine import data
from engine.data import prepare_units
from engine.errors import KaoheError, Loc, Notice
from engine.model import Field
from engine.pipeline import Inputs, run
from engine.scheme import load_scheme

ROOT = Path(__file__).resolve().parents[1]
SCHEME = ROOT / "tests" / "benchmark" / "reference.yaml"


def _generate(n: int) -> pl.DataFrame:
    sys.path.insert(0, str(ROOT / "tests" / "benchmark"))
    from synth import generate  # type: ignore[import-not-found]  # noqa: PLC0415 - importable only after the sys.path insert above

    return generate(load_scheme(SCHEME), n)  # type: ignore[no-any-return]


def _units(tmp_path: Path, **changes: object) -> Path:
    df = _generate(50)
    for col, (row, value) in changes.items():  # type: ignore[misc]
        df = df.with_columns(pl.when(pl.int_range(pl.len()) == row).then(pl.lit(value)).otherwise(pl.col(col))
                             .cast(df.schema[col]).alias(col))
    path = tmp_path / "units.parquet"
    df.write_parquet(path)
    return path


def test_clean_typed_data_scores(tmp_path: Path) -> None:
    assert run(Inputs(SCHEME, _units(tmp_path)), detail=False).frame.height == 50


@pytest.mark.parametrize(("column", "row", "value", "fragment"), [
    ("employment_rate", 3, 1.5, "above the maximum 1"),
    ("accidents", 7, -2, "below the minimum 0"),
    ("employment_rate", 9, float("nan"), "empty cell"),
    ("revenue_actual", 4, 12.345, "more than 2 decimals"),
    ("revenue_target", 5, 1e30, "too large to hold exactly"),
])
def test_a_problem_in_typed_data_is_still_found(tmp_path: Path, column: str, row: int, value: object,
                                               fragment: str) -> None:
    with pytest.raises(KaoheError) as info:
        run(Inputs(SCHEME, _units(tmp_path, **{column: (row, value)})), detail=False)
    text = str(info.value)
    assert f"row {row + 2}, column '{column}'" in text and fragment in text


def _field(scale: int) -> Field:
    return Field(id="x", label="x", type="int" if scale == 0 else "decimal", loc=Loc("t"), scale=scale)


def _limit(scale: int) -> int:
    return (2**63 - 1) // 10**scale


@pytest.mark.parametrize("scale", [0, 2, 4, 18])
@pytest.mark.parametrize("dtype", [pl.Int8, pl.Int32, pl.Int64, pl.UInt32, pl.UInt64, pl.Int128])
def test_fast_integer_parse_is_the_guarded_one(scale: int, dtype: pl.DataType) -> None:
    """Column statistics that prove no value overflows select the plain cast; it gives the same column
    as the guarded parse, up to the limit itself; one value past it keeps the guarded parse (and its null)."""
    lim, f = _limit(scale), _field(scale)
    top, bottom = (pl.select(getattr(pl.lit(0, dtype), k)()).item() for k in ("upper_bound", "lower_bound"))
    df = pl.DataFrame({"x": [max(bottom, -lim), min(top, lim), 0, None, 1, min(top, lim) // 3]}, schema={"x": dtype})
    stats = data._raw_stats(df, [f])["x"]
    assert stats["fits"]
    fast, guarded = df.select(data._parse(df.schema, f, stats)), df.select(data._parse(df.schema, f))
    assert fast.equals(guarded) and fast.schema == guarded.schema == {"x": pl.Int64}
    g = guarded.get_column("x")
    assert (stats["unparsed"], stats["lo"], stats["hi"]) == (g.null_count(), g.min(), g.max())
    for over in ([lim + 1] if top > lim else []) + ([-lim - 1] if bottom < -lim else []):
        df = pl.DataFrame({"x": [1, over]}, schema={"x": dtype})
        stats = data._raw_stats(df, [f])["x"]
        assert not stats["fits"]
        assert df.select(data._parse(df.schema, f, stats)).get_column("x").to_list() == [10**scale, None]


@pytest.mark.parametrize("scale", [0, 2, 4])
def test_fast_float_parse_is_the_guarded_one(scale: int) -> None:
    """Floats: the unchecked cast when the range fits (NaN stays empty); inf, or anything at the limit,
    keeps the guarded parse, which reports it."""
    lim = float(_limit(scale))
    near = [math.nextafter(lim, 0), -math.nextafter(lim, 0), lim * 0.999999, 0.125, 2.5, -2.5, 1.005, -0.0,
            12.345, 5e-7, None]
    f = _field(scale)
    for values, fits in ((near, True), ([*near, math.nan], True), ([None, None], True), ([math.nan, None], False)):
        df = pl.DataFrame({"x": values}, schema={"x": pl.Float64})
        stats = data._raw_stats(df, [f])["x"]
        assert stats["fits"] == fits
        fast, guarded = df.select(data._parse(df.schema, f, stats)), df.select(data._parse(df.schema, f))
        assert fast.equals(guarded), (values, fast, guarded)
        if stats["fits"]:
            g = guarded.get_column("x")
            assert (stats["unparsed"], stats["lo"], stats["hi"]) == (g.null_count(), g.min(), g.max())
    for bad in (lim, -lim, math.inf, -math.inf, 1e300):
        df = pl.DataFrame({"x": [1.0, bad]})
        stats = data._raw_stats(df, [f])["x"]
        assert not stats["fits"]
        assert df.select(data._parse(df.schema, f, stats)).get_column("x").to_list() == [10**scale, None]


def _typed(tmp_path: Path, ids: list[object]) -> Path:
    df = _generate(len(ids)).with_columns(pl.Series("unit_id", ids))
    path = tmp_path / "units.parquet"
    df.write_parquet(path)
    return path


@pytest.mark.parametrize(("ids", "rows"), [
    ([10, 11, 12, 11, 14, 15], [3, 5]),
    (["A10", "A11", "A12", " A11", "A14", "A15"], [3, 5]),
    (["10", "11", "12", "11", "14", "15"], [3, 5]),
    (["7", "07", "8", "9", "7", "10"], [2, 6]),
], ids=["integers", "text", "digits as text", "leading zero"])
def test_duplicate_ids_are_reported_with_their_rows(tmp_path: Path, ids: list[object], rows: list[int]) -> None:
    with pytest.raises(KaoheError) as info:
        run(Inputs(SCHEME, _typed(tmp_path, ids)), detail=False)
    assert [(p.loc.row, p.loc.column) for p in info.value.problems] == [(r, "unit_id") for r in rows], info.value
    assert all("duplicate unit id" in p.message for p in info.value.problems)


def test_empty_ids_are_not_duplicates(tmp_path: Path) -> None:
    with pytest.raises(KaoheError) as info:
        run(Inputs(SCHEME, _typed(tmp_path, [10, None, 12, None])), detail=False)
    assert [(p.loc.row, p.message) for p in info.value.problems] == [(3, "empty unit id"), (5, "empty unit id")]


def test_ids_that_only_look_alike_are_distinct(tmp_path: Path) -> None:
    """'07' and '7' sort alike as numbers but are different ids: not duplicates."""
    assert run(Inputs(SCHEME, _typed(tmp_path, ["7", "07", "8", "9", "11", "10"])), detail=False).frame.height == 6


def test_integer_ids_name_the_units(tmp_path: Path) -> None:
    units = prepare_units(_generate(3).with_columns(pl.Series("unit_id", [5, 3, 40])),
                          load_scheme(SCHEME), path="u.parquet").frame
    assert units.select("unit_id", "name", "_id_key").rows() == [("5", "5", 5), ("3", "3", 3), ("40", "40", 40)]
    assert units.columns[:4] == ["_row", "unit_id", "name", "unit_type"]


def test_releasing_the_raw_table_parses_the_same_and_frees_its_columns() -> None:
    """`release`: each raw column is dropped from the caller's table once its field is parsed and checked
    (about one copy of the data is held, not two); the parsed frame is the same."""
    scheme = load_scheme(SCHEME)
    raw = _generate(200)
    kept = prepare_units(raw.clone(), scheme, path="units").frame
    given = raw.clone()
    released = prepare_units(given, scheme, path="units", release=True).frame
    assert released.equals(kept)
    assert set(given.columns) == {"unit_id", "unit_type"}  # every field column was released


def test_a_released_table_still_shows_the_cell_of_a_problem(tmp_path: Path) -> None:
    """A column whose check fails is kept for the listing: the message quotes the cell as written."""
    scheme = load_scheme(SCHEME)
    given = _generate(20).with_columns(pl.when(pl.int_range(pl.len()) == 4).then(12.345)
                                       .otherwise(pl.col("revenue_actual")).alias("revenue_actual"))
    with pytest.raises(KaoheError) as info:
        prepare_units(given, scheme, path="units", release=True)
    assert "row 6, column 'revenue_actual': '12.345' has more than 2 decimals" in str(info.value)
    assert "revenue_actual" in given.columns


_PIECES = ["", "+", "-", "0", "7", "12", "00", "123456789", "9223372036854775807", ".", "5", "50", "%", " ", "e",
           "E3", "_", "１", ",", "\u3000", "0000000000", "２０", "．", "％", "－", "٣"]


def test_yes_no_cells_read_every_common_way_of_writing_them() -> None:
    f = Field(id="x", label="x", type="bool", loc=Loc("t"))
    words = ["是", "否", "√", "×", "1", "0", "１", "０", " Yes ", "N", "TRUE", "有", "无", "已完成", "未完成", "已交"]
    df = pl.DataFrame({"x": words})
    assert df.select(data._parse(df.schema, f)).to_series().to_list() == [
        True, False, True, False, True, False, True, False, True, False, True, True, False, True, False, None]


def test_full_width_numbers_read_as_typed_in_ascii() -> None:
    """A Chinese input method types ９５．５％ and －３: they were refused as 'not a number' (their digits look
    like any other); other scripts' digits (٣) are still refused."""
    df = pl.DataFrame({"x": ["９５．５％", "－３", "１２", "\u3000７\u3000", "٣", "1２.5"]})
    assert df.select(data._text_number(pl.col("x"), 4)).to_series().to_list() == [9550, -30000, 120000, 70000,
                                                                                 None, 125000]


@settings(max_examples=400, deadline=None)
@given(parts=st.lists(st.sampled_from(_PIECES), max_size=7), scale=st.integers(0, 6))
@example(parts=["12", ".", "5"], scale=0)  # more decimals than the scale
@example(parts=["1", "E3"], scale=2)  # an exponent, which the Decimal cast reads
@example(parts=["0", ".", "123456789", "123456789", "5"], scale=6)  # past the 18th decimal
@example(parts=["0", ".", "12", "0000000000", "000000", "1"], scale=2)  # only the 19th decimal is not 0
@example(parts=["9223372036854775807", "0"], scale=0)  # beyond Int64
@example(parts=[" ", "7", " "], scale=2)  # spaces around: the full parse reads it
@example(parts=["5", "%"], scale=2)
@example(parts=[".", "0"], scale=0)  # '.0' is 0 (the full parse said "not a number" before)
@example(parts=["12", ".", "5", "%"], scale=4)  # a percentage, as Excel writes it into CSV
@example(parts=["-", "5", "%"], scale=2)
@example(parts=["5", "%"], scale=1)  # 0.05 has more decimals than the scale keeps
@example(parts=["5", " ", "%"], scale=4)  # a space before '%': the full parse reads it
def test_quick_text_numbers_are_the_full_parse_where_they_read_at_all(parts: list[str], scale: int) -> None:
    """engine.data._decimal_text (Polars' Decimal cast) and `_percent_text` give `_text_number`'s integer
    wherever they give one, and read every plain decimal (and percentage) that fits, so that whole columns
    need not take the slow parse; with `_complete_text`, a column is always parsed as `_text_number` does."""
    text = "".join(parts)
    df = pl.DataFrame({"x": [text, "1.5" if scale else "15", None]}, schema={"x": pl.String})
    quick, full = (df.select(f(pl.col("x"), scale)).to_series().to_list()
                   for f in (data._decimal_text, data._text_number))
    assert quick[0] is None or quick[0] == full[0], (text, scale)
    plain = re.fullmatch(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)(%?)", text)
    if plain and len(text) <= 19 and full[0] is not None and not plain.group(2):
        assert quick[0] == full[0], (text, scale)  # a plain decimal never needs the slow parse
    if scale >= 2:
        pct = df.select(data._percent_text(pl.col("x"), scale)).to_series().to_list()
        assert pct[0] is None or pct[0] == full[0], (text, scale)
        if plain and len(text) - len(plain.group(2)) <= 19 and full[0] is not None:
            assert pct[0] == full[0], (text, scale)  # ... nor a plain percentage
    f = Field(id="x", label="x", type="decimal", loc=Loc("t"), scale=scale)
    completed = data._complete_text(df, df.select(data._parse(df.schema, f, quick_text=True)), [f])
    assert completed.to_series().to_list() == full, (text, scale)
    if scale == 0:  # a whole-number field: `str.to_integer` first, then as a decimal field
        whole = Field(id="x", label="x", type="int", loc=Loc("t"))
        quick_int = df.select(data._parse(df.schema, whole, quick_text=True)).to_series().to_list()
        assert quick_int[0] is None or quick_int[0] == full[0], text
        completed = data._complete_text(df, df.select(quick_int=pl.Series(quick_int)).rename({"quick_int": "x"}),
                                        [whole])
        assert completed.to_series().to_list() == full, text


def test_a_unit_type_may_be_written_as_its_label(tmp_path: Path) -> None:
    """A committee's own table writes 村/社区/镇属单位, not the scheme's ids: they were refused as unknown types
    (the Parquet path hands such a table to the eager one, which reads them)."""
    units = pl.read_csv(ROOT / "fixtures" / "2022" / "units.csv", infer_schema=False)
    labels = {"village": "村", "community": "社区", "office": "镇属单位"}
    labelled = units.with_columns(pl.col("unit_type").replace(labels))
    for path in (tmp_path / "u.csv", tmp_path / "u.parquet"):
        labelled.write_csv(path) if path.suffix == ".csv" else labelled.write_parquet(path)
        frame = run(Inputs(ROOT / "rules" / "township-2022.yaml", path, no_events=True), detail=False).frame
        assert frame.get_column("unit_type").to_list() == units.get_column("unit_type").to_list()


@pytest.mark.parametrize("kind", ["csv", "parquet"])
@pytest.mark.parametrize(("header", "field"), [("superior_grad", "superior_grade"),
                                               ("上年度村排命", "last_rank"),
                                               ("last_rnak", "last_rank")])
def test_a_misspelt_optional_header_is_refused_not_read_as_empty(tmp_path: Path, kind: str, header: str,
                                                                 field: str) -> None:
    """A misspelt header of an optional field was passed over as an unknown column: every unit's value was
    empty (a misspelt 村集体经济收入 gave every village its 'not applicable' 7 points and changed first place,
    a helper's audit; that field is now required for villages). It is refused at the header, on the eager
    and the streamed path alike."""
    demo = pl.read_csv(ROOT / "fixtures" / "2022" / "units.csv").rename({field: header})
    path = tmp_path / f"units.{kind}"
    demo.write_csv(path) if kind == "csv" else demo.write_parquet(path)
    with pytest.raises(KaoheError) as info:
        run(Inputs(ROOT / "rules" / "township-2022.yaml", path, no_events=True), detail=False)
    [problem] = info.value.problems
    assert (problem.loc.row, problem.loc.column) == (1, header)
    assert f"looks like field {field} (" in problem.message and f"head the column '{field}'" in problem.hint


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_an_optional_field_without_a_column_is_said_and_kept_in_the_manifest(tmp_path: Path, kind: str) -> None:
    demo = pl.read_csv(ROOT / "fixtures" / "2022" / "units.csv").drop("last_rank")
    path = tmp_path / f"units.{kind}"
    demo.write_csv(path) if kind == "csv" else demo.write_parquet(path)
    with pytest.warns(Notice, match=r"no column for the optional field last_rank \(上年度村排名\): every unit's "
                      "value is empty") as said:
        r = run(Inputs(ROOT / "rules" / "township-2022.yaml", path, no_events=True), detail=False)
    assert r.manifest["notes"] == [str(w.message) for w in said if isinstance(w.message, Notice)]
    assert len(r.manifest["notes"]) == 1 and r.frame.get_column("last_rank").null_count() == r.frame.height


def test_a_field_required_for_some_unit_types_needs_their_cells_only(tmp_path: Path) -> None:
    """`required: [village]`: a village's empty 村集体经济收入 scored as a community without a collective
    economy (7 points, 'not applicable'), the same as a forgotten cell; now it is refused at its row and
    column, while a community's empty cell stays 'not applicable'."""
    demo = pl.read_csv(ROOT / "fixtures" / "2022" / "units.csv", infer_schema=False)
    ok = run(Inputs(ROOT / "rules" / "township-2022.yaml", ROOT / "fixtures" / "2022" / "units.csv", no_events=True))
    communities = ok.frame.filter(pl.col("unit_type") == "community")
    assert communities.get_column("collective_income").null_count() > 0  # some have none: not applicable
    for kind in ("csv", "parquet"):
        blank = demo.with_columns(pl.when(pl.col("unit_id") == "V04").then(None).otherwise(pl.col("collective_income"))
                                  .alias("collective_income"))
        path = tmp_path / f"units.{kind}"
        blank.write_csv(path) if kind == "csv" else blank.with_columns(
            pl.col("collective_income").cast(pl.Float64)).write_parquet(path)
        with pytest.raises(KaoheError) as info:
            run(Inputs(ROOT / "rules" / "township-2022.yaml", path, no_events=True), detail=False)
        [problem] = info.value.problems
        assert (problem.loc.row, problem.loc.column) == (5, "collective_income")
        assert problem.message == "empty cell for unit V04, which 村集体经济收入(万元) is required for (village (村))"


def test_blank_rows_between_groups_of_units_are_skipped_and_rows_keep_their_numbers(tmp_path: Path) -> None:
    """A table grouped by type (村, 社区, 镇属单位) with a blank row between the groups: each blank row gave a
    problem per column ('empty cell for unit None'). They are skipped and said; the other rows keep their
    spreadsheet numbers in every message."""
    demo = pl.read_csv(ROOT / "fixtures" / "2022" / "units.csv", infer_schema=False)
    blank = pl.DataFrame({c: [None] for c in demo.columns}, schema=demo.schema)
    grouped = pl.concat([demo.head(16), blank, demo.slice(16, 4), blank, demo.slice(20)])
    path = tmp_path / "units.csv"
    grouped.write_csv(path)
    scheme = ROOT / "rules" / "township-2022.yaml"
    with pytest.warns(Notice, match="blank rows 18, 23 inside the table skipped"):
        got = run(Inputs(scheme, path, no_events=True), detail=False)
    want = run(Inputs(scheme, ROOT / "fixtures" / "2022" / "units.csv", no_events=True), detail=False)
    assert got.frame.select("unit_id", "total", "grade").equals(want.frame.select("unit_id", "total", "grade"))
    assert got.frame.filter(pl.col("unit_id") == "C01").get_column("_row").item() == 19
    bad = grouped.with_columns(pl.when(pl.col("unit_id") == "C03").then(pl.lit("abc")).otherwise(
        pl.col("hazards_found")).alias("hazards_found"))
    bad.write_csv(path)
    with pytest.raises(KaoheError) as info, pytest.warns(Notice):
        run(Inputs(scheme, path, no_events=True), detail=False)
    assert [(p.loc.row, p.loc.column) for p in info.value.problems] == [(21, "hazards_found")]


@pytest.mark.parametrize(("column", "word"), [("name", "合 计"), ("unit_id", "平均值"), ("unit_type", "Total")])
def test_a_totals_row_is_one_problem_at_its_row(tmp_path: Path, column: str, word: str) -> None:
    """A 合计 row under the demo table gave a problem per column ('fill in 签订安全生产责任书 … for unit 合计')."""
    demo = pl.read_csv(ROOT / "fixtures" / "2022" / "units.csv", infer_schema=False)
    total = pl.DataFrame({c: [None] for c in demo.columns}, schema=demo.schema).with_columns(
        pl.lit(word).alias(column), pl.lit("30").alias("letters_signed"))
    path = tmp_path / "units.csv"
    pl.concat([demo, total]).write_csv(path)
    with pytest.raises(KaoheError) as info:
        run(Inputs(ROOT / "rules" / "township-2022.yaml", path, no_events=True))
    assert [(p.loc.row, p.message) for p in info.value.problems] == [
        (demo.height + 2, f"this row looks like a totals row ('{word}'), not a unit")]


def test_a_totals_row_with_a_valid_unit_type_in_parquet_is_refused_too(tmp_path: Path) -> None:
    """The streamed Parquet path skipped the totals-row check: a 合计 row whose type was valid was scored as a
    unit (the fuzzing helper). It hands such a table to the eager path, which refuses the row."""
    demo = pl.read_csv(ROOT / "fixtures" / "2022" / "units.csv")
    total = demo.head(1).with_columns(pl.lit("合计").alias("unit_id"), pl.lit("合 计").alias("name"))
    path = tmp_path / "units.parquet"
    pl.concat([demo, total]).write_parquet(path)
    with pytest.raises(KaoheError) as info:
        run(Inputs(ROOT / "rules" / "township-2022.yaml", path, no_events=True), detail=False)
    assert [p.loc.row for p in info.value.problems] == [demo.height + 2]
