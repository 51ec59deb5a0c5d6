"""The benchmark scheme (shared/bench-reference/scheme.md) expressed as a kaohe scheme agrees with the
hand-written reference: the worked example exactly, and every unit of generated data."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from engine.data import prepare_units
from engine.decide import decide
from engine.evaluate import evaluate
from engine.rules_load import load_decisions
from engine.scheme import load_scheme

SCHEME = Path(__file__).parent / "benchmark" / "reference.yaml"
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "bench-reference"

WORKED_EXAMPLE = {  # scheme.md section 6
    "unit_id": "1", "unit_type": "village", "revenue_actual": "1150", "revenue_target": "1000",
    "invest_actual": "1105", "invest_target": "1000", "collective_income": None, "projects_signed": "3",
    "employment_rate": "0.95", "new_entities": "45", "new_entities_target": "60", "key_project_on_schedule": "true",
    "digital_service_online": "false", "hazard_rectification_rate": "0.95", "safety_trainings": "9", "accidents": "1",
    "deaths": "0", "safety_letters_signed": "true", "fire_inspections": "10", "fire_inspections_target": "12",
    "good_air_days_rate": "0.80", "env_incidents": "0", "garbage_sorting_rate": "0.70", "afforest_area": "90",
    "afforest_target": "120", "straw_fire_points": "1", "petitions": "12", "escalated_petitions": "1",
    "mediation_rate": "0.9125", "criminal_cases": "0", "satisfaction_rate": "0.85", "party_meetings": "12",
    "party_meetings_target": "10", "commendations": "1", "criticisms": "2", "archives_complete": "true",
    "major_discipline_case": "false", "data_falsified": "false", "innovations": "3",
}


def score(df: pl.DataFrame) -> pl.DataFrame:
    scheme = load_scheme(SCHEME)
    units = prepare_units(df, scheme, path="units")
    _, scored = evaluate(scheme, units.frame, path="units")
    decided, _ = decide(scheme, load_decisions(scheme), scored)
    return decided


def test_worked_example_matches_scheme_md() -> None:
    r = score(pl.DataFrame([WORKED_EXAMPLE], schema={k: pl.String for k in WORKED_EXAMPLE})).row(0, named=True)
    # A: 20 + (10 + 2) + 12 + 6 + 8 + 7.5 + 10 + 0 = 75.5; safety 32 -> cap 30; ecology 24.2794... -> 24.28;
    # stability 21.125 -> 21.13 (half-up); services 18; B = 93.41; bonus 1.5; total = round2(22.65 + 65.387 + 1.5)
    assert (r["s.development"], r["s.safety"], r["s.ecology"], r["s.stability"], r["s.services"]) == \
        (7550, 3000, 2428, 2113, 1800)
    assert (r["s.governance"], r["p.bonus"], r["total"], r["grade"]) == (9341, 150, 8954, "good")


@pytest.mark.skipif(not (REFERENCE / "impl_polars.py").exists(), reason="shared/bench-reference not beside the project")
def test_agrees_with_hand_written_reference_on_generated_units() -> None:
    sys.path.insert(0, str(REFERENCE))
    try:
        import gen  # type: ignore[import-not-found]  # noqa: PLC0415 - importable only after the sys.path insert above
        import impl_polars  # type: ignore[import-not-found]  # noqa: PLC0415
    finally:
        sys.path.remove(str(REFERENCE))
    df = gen.generate(3000)
    mine = score(df)
    awards = pl.concat_str([pl.when(pl.col(f"a.{a}") == "recommended").then(pl.lit(a))
                            for a in ("target_excellent", "safety_advanced", "ecology_advanced")],
                           separator=";", ignore_nulls=True).fill_null("")
    mine = mine.select(pl.col("unit_id").cast(pl.Int64), "total", "grade", awards.alias("awards"),
                       pl.col("order").alias("rank"))
    ref = impl_polars.compute(df).with_columns((pl.col("total") * 100).round().cast(pl.Int64))
    joined = mine.join(ref, on="unit_id", suffix="_ref")
    assert joined.height == 3000
    for col in ("total", "grade", "awards", "rank"):
        diff = joined.filter(pl.col(col) != pl.col(f"{col}_ref"))
        assert diff.height == 0, f"{col} differs for {diff.height} units:\n{diff.head()}"


def test_the_checked_reference_checks_what_the_scheme_declares() -> None:
    """The bench's "reference+checks" yardstick (tests/benchmark/reference_checked.py) checks every field of
    reference.yaml with its declared decimals, bounds and requiredness: no more, no less than kaohe."""
    sys.path.insert(0, str(SCHEME.parent))
    try:
        import reference_checked  # type: ignore[import-not-found]  # noqa: PLC0415 - importable only after the insert
    finally:
        sys.path.remove(str(SCHEME.parent))
    fields = load_scheme(SCHEME).fields.values()
    declared = [(f.id, f.scale if f.type == "decimal" else None,
                 None if f.min is None else float(f.min), None if f.max is None else float(f.max), f.required)
                for f in fields if f.type in ("int", "decimal")]
    assert reference_checked.NUMBERS == declared
    assert reference_checked.FLAGS == [f.id for f in fields if f.type == "bool"]


def _yardsticks() -> tuple[Any, Any, Any, Any]:
    """gen, impl_polars, reference_checked and reference_exact (the bench's yardsticks)."""
    sys.path[:0] = [str(REFERENCE), str(SCHEME.parent)]
    try:
        import gen  # noqa: PLC0415 - importable only after the sys.path insert above
        import impl_polars  # noqa: PLC0415
        import reference_checked  # noqa: PLC0415
        import reference_exact  # type: ignore[import-not-found]  # noqa: PLC0415
    finally:
        del sys.path[:2]
    return gen, impl_polars, reference_checked, reference_exact


@pytest.mark.skipif(not (REFERENCE / "impl_polars.py").exists(), reason="shared/bench-reference not beside the project")
@pytest.mark.parametrize("yardstick", ["checked", "exact"])
@pytest.mark.parametrize(("column", "value"), [
    (None, None), ("employment_rate", float("nan")), ("employment_rate", 1.5), ("revenue_actual", 12.345),
    ("projects_signed", -1), ("deaths", None), ("unit_type", "town"), ("unit_id", 1),
])
def test_the_checked_references_score_as_the_reference_and_refuse_bad_data(tmp_path: Path, yardstick: str,
                                                                           column: str | None, value: object) -> None:
    gen, impl_polars, reference_checked, reference_exact = _yardsticks()
    checked = reference_exact if yardstick == "exact" else reference_checked
    df = gen.generate(500)
    path = tmp_path / "units.parquet"
    if column is None:
        df.write_parquet(path)
        assert checked.run_e2e(str(path)).equals(impl_polars.run_e2e(str(path)))
        return
    df.with_columns(pl.when(pl.int_range(pl.len()) == 7).then(pl.lit(value)).otherwise(pl.col(column))
                    .cast(df.schema[column]).alias(column)).write_parquet(path)
    # an unknown unit type: the reference's own Enum cast refuses it, in the same collect as the checks
    refused = pl.exceptions.InvalidOperationError if column == "unit_type" and yardstick == "checked" else ValueError
    with pytest.raises(refused, match=r"enum|fail a check|duplicate unit ids|repeated"):
        checked.run_e2e(str(path))


@pytest.mark.skipif(not (REFERENCE / "impl_polars.py").exists(), reason="shared/bench-reference not beside the project")
def test_the_exact_reference_agrees_with_fractions_where_the_floors_cannot_round(tmp_path: Path) -> None:
    """The bench's "ref exact" yardstick (tests/benchmark/reference_exact.py) floors its ratio items at 10^-8
    points. A category whose exact sum is a half-cent made of two inexact items (8 x 0.80 / 0.85 + 5 x 0.19 /
    170 = 7.535) floors below it; the unit is scored again with fractions and rounds up, as exact_check's
    Fractions and kaohe do. Every other unit agrees with the float reference."""
    gen, impl_polars, _, reference_exact = _yardsticks()
    sys.path.insert(0, str(SCHEME.parent))
    try:
        import exact_check  # type: ignore[import-not-found]  # noqa: PLC0415
    finally:
        sys.path.remove(str(SCHEME.parent))
    df = gen.generate(3000)
    row = pl.int_range(pl.len()) == 7
    half_cent = {"good_air_days_rate": 0.8, "afforest_area": 0.19, "afforest_target": 170.0, "env_incidents": 0,
                 "garbage_sorting_rate": 0.5, "straw_fire_points": 0}
    df = df.with_columns(pl.when(row).then(pl.lit(v)).otherwise(pl.col(k)).cast(df.schema[k]).alias(k)
                         for k, v in half_cent.items())
    path = tmp_path / "units.parquet"
    df.write_parquet(path)
    unit = df.row(7, named=True)
    exact = exact_check.exact(unit)
    assert exact["ecology"] * 100 == 2054  # 7.535 + 8 + 1 + 4 = 20.535, half-up
    wide = reference_exact.scored(pl.scan_parquet(path)).collect()
    floors = wide.row(7, named=True)
    assert floors["_unsure"] and (floors["sum.ecology"] + reference_exact.CENT // 2) // reference_exact.CENT == 2053
    assert wide.get_column("_unsure").sum() == 1
    mine = reference_exact.run_e2e(str(path))
    assert mine.filter(pl.col("unit_id") == unit["unit_id"]).get_column("total").item() * 100 == \
        pytest.approx(float(exact["total"] * 100))
    assert score(df.cast({"unit_id": pl.String})).row(7, named=True)["s.ecology"] == 2054  # kaohe: the same
    ref = impl_polars.run_e2e(str(path))
    assert mine.filter(pl.col("unit_id") != unit["unit_id"]).equals(ref.filter(pl.col("unit_id") != unit["unit_id"]))


@pytest.mark.skipif(not (REFERENCE / "impl_polars.py").exists(), reason="shared/bench-reference not beside the project")
@pytest.mark.parametrize(("column", "value"), [("revenue_target", 2e7), ("collective_income", 1e30)])
def test_the_exact_reference_refuses_values_its_integers_cannot_hold(tmp_path: Path, column: str, value: float) -> None:
    """A ratio operand whose product would leave Int64, a decimal no Int64 holds (without the check, a null:
    'not applicable', 12 points): the float reference scores them, the exact one refuses them."""
    gen, impl_polars, reference_checked, reference_exact = _yardsticks()
    df = gen.generate(100)
    path = tmp_path / "units.parquet"
    df.with_columns(pl.when(pl.int_range(pl.len()) == 3).then(pl.lit(value)).otherwise(pl.col(column))
                    .alias(column)).write_parquet(path)
    assert reference_checked.run_e2e(str(path)).equals(impl_polars.run_e2e(str(path)))
    with pytest.raises(ValueError, match="1 rows fail a check"):
        reference_exact.run_e2e(str(path))
