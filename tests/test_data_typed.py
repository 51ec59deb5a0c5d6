"""Typed (Parquet) inputs are validated from column statistics where that proves a check cannot fail;
every real problem must still be reported, located by row and column."""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl
import pytest

from engine.errors import KaoheError
from engine.pipeline import Inputs, run
from engine.scheme import load_scheme

ROOT = Path(__file__).resolve().parents[1]
SCHEME = ROOT / "tests" / "benchmark" / "reference.yaml"


def _units(tmp_path: Path, **changes: object) -> Path:
    sys.path.insert(0, str(ROOT / "tests" / "benchmark"))
    from synth import generate  # type: ignore[import-not-found]  # noqa: PLC0415 - importable only after the sys.path insert above

    df = generate(load_scheme(SCHEME), 50)
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
