"""The hand-written Polars reference (../shared/bench-reference/impl_polars.py) with the input checks kaohe
makes, written by hand the way an expert would add them to that query: a yardstick for what validating
costs, beside the reference that validates nothing.

The scoring is impl_polars's own (floats with its tolerances; no exact arithmetic). Added, over the same
scan: every required cell present (a float NaN counts as empty), every number within the bounds
tests/benchmark/reference.yaml declares, every decimal value with at most its declared decimals, a known
unit type, and distinct unit ids. A table with a failing check raises ValueError (kaohe would hand it to
its eager path to say which rows; counting them is enough for the yardstick).

    python tests/benchmark/bench.py --sizes 100000 1000000 --reps 3   # the "reference+checks" column
"""

from __future__ import annotations

from typing import Any

import polars as pl

# (column, scale (decimals; None: a whole number), min, max, required): tests/benchmark/reference.yaml's fields
NUMBERS: list[tuple[str, int | None, float | None, float | None, bool]] = [
    ("revenue_actual", 2, 0, None, True), ("revenue_target", 2, 0.01, None, True),
    ("invest_actual", 2, 0, None, True), ("invest_target", 2, 0.01, None, True),
    ("collective_income", 2, None, None, False), ("projects_signed", None, 0, None, True),
    ("employment_rate", 4, 0, 1, True), ("new_entities", None, 0, None, True),
    ("new_entities_target", None, 1, None, True), ("hazard_rectification_rate", 4, 0, 1, True),
    ("safety_trainings", None, 0, None, True), ("accidents", None, 0, None, True), ("deaths", None, 0, None, True),
    ("fire_inspections", None, 0, None, True), ("fire_inspections_target", None, 1, None, True),
    ("good_air_days_rate", 4, 0, 1, True), ("env_incidents", None, 0, None, True),
    ("garbage_sorting_rate", 4, 0, 1, True), ("afforest_area", 2, None, None, False),
    ("afforest_target", 2, 0.01, None, False), ("straw_fire_points", None, 0, None, True),
    ("petitions", None, 0, None, True), ("escalated_petitions", None, 0, None, True),
    ("mediation_rate", 4, 0, 1, True), ("criminal_cases", None, 0, None, True),
    ("satisfaction_rate", 4, 0, 1, True), ("party_meetings", None, 0, None, True),
    ("party_meetings_target", None, 1, None, True), ("commendations", None, 0, None, True),
    ("criticisms", None, 0, None, True), ("innovations", None, 0, None, True),
]
FLAGS = ["key_project_on_schedule", "digital_service_online", "safety_letters_signed", "archives_complete",
         "major_discipline_case", "data_falsified"]
UNIT_TYPES = ["village", "community", "office"]


def problems(schema: pl.Schema) -> list[pl.Expr]:
    """One mask per check: True on a row that fails it."""
    c = pl.col
    out = [c("unit_id").is_null(), ~c("unit_type").is_in(UNIT_TYPES) | c("unit_type").is_null()]
    for col, scale, lo, hi, required in NUMBERS:
        x = c(col)
        is_float = schema[col].is_float()
        if required:
            out.append(x.is_null() | x.is_nan() if is_float else x.is_null())
        if lo is not None:
            out.append(x < lo)
        if hi is not None:
            out.append(x > hi)
        if is_float:  # a whole number, or at most `scale` decimals
            scaled = x * 10 ** (scale or 0)
            out.append((scaled - scaled.round()).abs() > 1e-6)
    out += [c(f).is_null() for f in FLAGS]
    return out


def run_e2e(path: str) -> pl.DataFrame:
    """impl_polars.run_e2e with the checks: the scores and the checks in one collect over one decode."""
    import impl_polars  # type: ignore[import-not-found]  # noqa: PLC0415 - on sys.path by the caller

    scan = pl.scan_parquet(path)
    impl_polars.check_ids(scan)
    lf = scan.cache()  # one decode, shared by the scores and the checks (without it the file is decoded twice)
    failing: Any = pl.any_horizontal(problems(lf.collect_schema())).sum().alias("failing")
    out, counts = pl.collect_all([impl_polars.build(lf), lf.select(failing, pl.col("unit_id").n_unique().alias("ids"),
                                                                    pl.len().alias("rows"))])
    failing_rows, ids, rows = counts.row(0)
    if failing_rows or ids != rows:
        raise ValueError(f"{failing_rows} rows fail a check; {rows - ids} duplicate unit ids")
    return out
