"""The same data in every format a township sends gives the same decisions.

The demo units (fixtures/2022/units.csv, UTF-8) are converted to GBK CSV, UTF-8-with-BOM CSV,
XLSX (text cells, and number cells as Excel holds typed numbers), Parquet (all String, and typed:
Int64 / Float64 / Boolean / Decimal columns), each headed by field ids or by the scheme's Chinese
labels; every one must score and decide exactly as the CSV does (totals, grades, ranks, vetoes,
awards: the whole decided frame).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from helpers import DECISIONS, DEMO_EVENTS, DEMO_SCHEME, DEMO_UNITS

from engine.errors import KaoheError
from engine.io import read_table, to_csv_bytes, write_xlsx
from engine.pipeline import Inputs, run

SCHEME, UNITS, EVENTS = DEMO_SCHEME, DEMO_UNITS, DEMO_EVENTS


pytestmark = pytest.mark.usefixtures("scheme_parsed_once")


@pytest.fixture(scope="module")
def baseline() -> pl.DataFrame:
    return _decided(run(Inputs(SCHEME, UNITS, EVENTS)).frame)


@pytest.fixture(scope="module")
def text() -> pl.DataFrame:
    return read_table(UNITS)


def _decided(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.drop("_row").sort("unit_id")


def _award_cols(frame: pl.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith("a.") and (c.count(".") == 1 or c.endswith(".level"))]


def _same(got: pl.DataFrame, want: pl.DataFrame) -> None:
    key = DECISIONS + _award_cols(want) + [c for c in want.columns if c.startswith(("s.", "p."))]
    assert got.select(key).rows() == want.select(key).rows()  # the decisions first, for a readable diff
    assert got.columns == want.columns
    assert got.equals(want)


def _typed(df: pl.DataFrame, scheme, *, decimals: str = "float") -> pl.DataFrame:  # type: ignore[no-untyped-def]
    """Numbers as numbers (as pandas / Excel would give them): int -> Int64, decimal -> Float64
    (or Decimal(38, scale)), bool -> Boolean."""
    cols = []
    for f in scheme.fields.values():
        c = pl.col(f.id)
        if f.type == "int":
            cols.append(c.cast(pl.Int64))
        elif f.type == "decimal":
            cols.append(c.str.to_decimal(scale=f.scale) if decimals == "decimal" else c.cast(pl.Float64))
        elif f.type == "bool":
            cols.append(pl.when(c == "是").then(True).when(c == "否").then(False).otherwise(None).alias(f.id))
    return df.with_columns(cols)


def _labelled(df: pl.DataFrame, scheme) -> pl.DataFrame:  # type: ignore[no-untyped-def]
    return df.rename({f.id: f.label for f in scheme.fields.values() if f.id in df.columns})


# (file kind, headers): every format with field ids or with the scheme's labels
UNIT_FORMATS = [("gbk.csv", "ids"), ("utf8-bom.csv", "labels"), ("utf8.csv", "labels"),
                ("text.xlsx", "labels"), ("numbers.xlsx", "ids"),
                ("text.parquet", "ids"), ("float.parquet", "labels"), ("decimal.parquet", "ids")]


def _write_units(df: pl.DataFrame, kind: str, path: Path, scheme, *, labels: bool) -> None:  # type: ignore[no-untyped-def]
    name, ext = kind.split(".")
    if name in ("float", "decimal", "numbers"):
        df = _typed(df, scheme, decimals="decimal" if name == "decimal" else "float")
    if labels:
        df = _labelled(df, scheme)
    if ext == "csv":
        data = df.write_csv()
        path.write_bytes(data.encode("gbk") if name == "gbk" else to_csv_bytes(df) if name == "utf8-bom"
                         else data.encode("utf-8"))
    elif ext == "xlsx":
        write_xlsx(path, {"单位数据": df})  # 'numbers': number and TRUE/FALSE cells, as typed into Excel
    else:
        df.write_parquet(path)


@pytest.mark.parametrize(("kind", "headers"), UNIT_FORMATS, ids=[f"{k}-{h}" for k, h in UNIT_FORMATS])
def test_every_format_decides_the_same(tmp_path: Path, scheme, baseline: pl.DataFrame, text: pl.DataFrame,  # type: ignore[no-untyped-def]
                                       kind: str, headers: str) -> None:
    path = tmp_path / f"units.{kind.split('.')[1]}"
    _write_units(text, kind, path, scheme, labels=headers == "labels")
    heads = read_table(path).columns
    assert ("排查安全隐患数" in heads) == (headers == "labels") and ("hazards_found" in heads) == (headers == "ids")
    _same(_decided(run(Inputs(SCHEME, path, EVENTS)).frame), baseline)


def test_events_in_other_formats_decide_the_same(tmp_path: Path, baseline: pl.DataFrame) -> None:
    events = read_table(EVENTS)
    for path, write in ((tmp_path / "ev.xlsx", lambda p: write_xlsx(p, {"事件记录": events})),
                        (tmp_path / "ev-gbk.csv", lambda p: p.write_bytes(events.write_csv().encode("gbk"))),
                        (tmp_path / "ev-date.parquet",
                         lambda p: events.with_columns(pl.col("date").str.to_date()).write_parquet(p))):
        write(path)
        _same(_decided(run(Inputs(SCHEME, UNITS, path)).frame), baseline)


# --- engine bugs found on the way (fixed): Excel date cells, NaN, Parquet Decimal, overflow ----------

def test_excel_date_cells_in_an_event_log(tmp_path: Path, baseline: pl.DataFrame) -> None:
    path = tmp_path / "events.xlsx"
    write_xlsx(path, {"事件记录": read_table(EVENTS).with_columns(pl.col("date").str.to_date())})
    _same(_decided(run(Inputs(SCHEME, UNITS, path)).frame), baseline)


def test_parquet_nan_is_an_empty_cell(tmp_path: Path, scheme, baseline: pl.DataFrame, text: pl.DataFrame) -> None:  # type: ignore[no-untyped-def]
    df = _typed(text, scheme)
    df = df.with_columns(pl.col(f.id).fill_null(float("nan")) for f in scheme.fields.values() if f.type == "decimal")
    path = tmp_path / "nan.parquet"
    df.write_parquet(path)
    _same(_decided(run(Inputs(SCHEME, path, EVENTS)).frame), baseline)


def test_parquet_decimal_with_too_many_decimals_is_an_error(tmp_path: Path, text: pl.DataFrame) -> None:
    df = text.with_columns(pl.when(pl.col("unit_id") == "V01").then(pl.lit("85.275"))
                           .otherwise(pl.col("collective_income")).str.to_decimal(scale=3).alias("collective_income"))
    path = tmp_path / "dec.parquet"
    df.write_parquet(path)
    with pytest.raises(KaoheError) as info:
        run(Inputs(SCHEME, path, EVENTS))
    assert "row 2, column 'collective_income'" in str(info.value)


def test_parquet_number_too_large_is_an_error(tmp_path: Path, text: pl.DataFrame) -> None:
    kt = pl.col("key_task_eval").cast(pl.Float64).round(0).cast(pl.Int64)
    df = text.with_columns(pl.when(pl.col("unit_id") == "O01").then(10**18).otherwise(kt).alias("key_task_eval"))
    path = tmp_path / "big.parquet"
    df.write_parquet(path)
    with pytest.raises(KaoheError) as info:
        run(Inputs(SCHEME, path, EVENTS))
    assert "row 22, column 'key_task_eval'" in str(info.value)


def test_parquet_float_too_large_is_an_error(tmp_path: Path, text: pl.DataFrame) -> None:
    ci = pl.col("collective_income").cast(pl.Float64)
    df = text.with_columns(pl.when(pl.col("unit_id") == "V01").then(1e18).otherwise(ci).alias("collective_income"))
    path = tmp_path / "big.parquet"
    df.write_parquet(path)
    with pytest.raises(KaoheError) as info:
        run(Inputs(SCHEME, path, EVENTS))
    assert "row 2, column 'collective_income'" in str(info.value)


def test_date_in_an_event_log_as_written_by_excel_users(tmp_path: Path, baseline: pl.DataFrame) -> None:
    """Dates typed as text in the other accepted forms (2022/3/9, 2022年3月9日) are the same dates."""
    events = read_table(EVENTS)
    forms = [lambda d: f"{d.year}/{d.month}/{d.day}", lambda d: f"{d.year}年{d.month}月{d.day}日",
             lambda d: d.strftime("%Y%m%d"), lambda d: f"{d.year}-{d.month}-{d.day}"]
    days = [dt.date.fromisoformat(s) for s in events.get_column("date")]
    dates = [forms[i % len(forms)](d) for i, d in enumerate(days)]
    path = tmp_path / "events.csv"
    path.write_bytes(to_csv_bytes(events.with_columns(pl.Series("date", dates))))
    _same(_decided(run(Inputs(SCHEME, UNITS, path)).frame), baseline)
