"""The hand-written Polars reference made exact, with kaohe's input checks: what an expert writes by hand for
this one scheme when every score must be exact (as kaohe's are), beside the float reference.

Same query shape as ../shared/bench-reference/impl_polars.py; its ranking, quotas and awards (`build`) are
reused unchanged. What differs is the scoring, in scaled integers, never floats:
- every decimal cell is read as an integer at its declared decimals (0.9125 -> 9125), and checked to be one
  (reference_checked.problems: present, within bounds, at most its declared decimals, a known unit type);
- steps, bands, counts and flags are exact integer arithmetic (no tolerances: (0.95 - 0.90) / 0.01 is 5);
- a ratio item (points x actual / target) is floored at 10^-8 points (`ULP`), noting whether it was exact;
- a category's round2 (half-up) is decided from the sum of its floors: the true sum lies in [S, S + k) ulps,
  k the number of inexact items, and when both ends round to the same cent that is the cent. Otherwise (a
  sum within k ulps of a half-cent, ~20 units in 1M) the unit is scored with Python fractions
  (exact_check.exact), after the collect.
- the total, round2(0.3 A + 0.7 B + bonus), is integer cents: (3 A_c + 7 B_c + 10 bonus_c + 5) // 10.

The checks add two of their own: every decimal cell becomes an integer (not NaN or 1e30), and the ratio
products fit Int64 (every ratio operand below 10^9 at its scale); kaohe proves both from the table's ranges.

    python tests/benchmark/bench.py --sizes 100000 1000000 --reps 3   # the "ref exact" column
"""

from __future__ import annotations

from unittest import mock

import polars as pl
from exact_check import exact  # type: ignore[import-not-found]  # beside this file, on sys.path by the caller
from reference_checked import NUMBERS, problems  # type: ignore[import-not-found]

c = pl.col
I64 = pl.Int64
ULP = 10**8  # ratio items are floored to 10^-8 points
CENT = ULP // 100
SCALE = {name: scale or 0 for name, scale, *_ in NUMBERS}
FIT = 10**9  # a ratio operand, at its scale, below this: points x operand x ULP stays inside Int64
RATIO_OPERANDS = ["revenue_actual", "revenue_target", "new_entities", "new_entities_target", "fire_inspections",
                  "fire_inspections_target", "afforest_area", "afforest_target", "party_meetings",
                  "party_meetings_target"]
STAGE1 = ["unit_id", "unit_type", "_a", "safety", "ecology", "_stab", "_serv", "total_c", "veto", "deaths",
          "env_incidents", "hazard_rectification_rate"]  # what impl_polars.build reads
CATEGORIES = {"_a": ("development", 100), "safety": ("safety", 30), "ecology": ("ecology", 25),
              "_stab": ("stability", 25), "_serv": ("services", 20)}


def n(col: str) -> pl.Expr:
    """The cell as an integer at its declared decimals (a whole number: itself)."""
    s = SCALE[col]
    return (c(col) * 10**s).round().cast(I64, strict=False) if s else c(col).cast(I64)  # NaN, 1e30: null, refused


def pts(x: float) -> int:
    return round(x * ULP)


def ratio(points: int, actual: pl.Expr, target: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """min(points, points x actual / target) in ulps, floored, and whether the floor dropped a remainder."""
    num = points * ULP * actual
    capped = actual >= target
    return (pl.when(capped).then(points * ULP).otherwise(num // target),
            ~capped & (num % target != 0))


def bands(x: pl.Expr, scale: int, table: list[tuple[float, int]], default: int) -> pl.Expr:
    e = pl.when(x >= round(table[0][0] * 10**scale)).then(table[0][1] * ULP)
    for th, p in table[1:]:
        e = e.when(x >= round(th * 10**scale)).then(p * ULP)
    return e.otherwise(default * ULP)


def bonus(x: pl.Expr, each: float, most: int) -> pl.Expr:
    return pl.min_horizontal(pl.lit(most * ULP, I64), pts(each) * x)


def deduction(x: pl.Expr, base: int, each: int) -> pl.Expr:
    return base * ULP - pl.min_horizontal(pl.lit(base * ULP, I64), each * ULP * x)


def flag(col: str, p: int) -> pl.Expr:
    return pl.when(c(col)).then(p * ULP).otherwise(0)


def categories() -> dict[str, tuple[list[pl.Expr], list[pl.Expr]]]:
    """Per category: its items in ulps, and the inexact flags of its floored items."""
    ia, it = n("invest_actual"), n("invest_target")
    a2 = (pl.when(ia >= it).then(10 * ULP + pl.min_horizontal(pl.lit(5, I64), 20 * (ia - it) // it) * ULP)
          .otherwise(10 * ULP - pl.min_horizontal(pl.lit(10 * ULP, I64), 100 * (it - ia) // it * (ULP // 2))))
    a1 = ratio(20, n("revenue_actual"), n("revenue_target"))
    a6 = ratio(10, n("new_entities"), n("new_entities_target"))
    s5 = ratio(6, n("fire_inspections"), n("fire_inspections_target"))
    e1 = ratio(8, n("good_air_days_rate"), pl.lit(8500, I64))  # 8 x rate / 0.85, the rate at 4 decimals
    e4 = ratio(5, n("afforest_area"), n("afforest_target"))
    v2 = ratio(6, n("party_meetings"), n("party_meetings_target"))
    a3 = pl.when(c("collective_income").is_null()).then(12 * ULP).otherwise(
        bands(n("collective_income"), 2, [(50, 15), (20, 12), (10, 9), (5, 6)], 3))
    e4v = pl.when(c("afforest_target").is_null()).then(4 * ULP).otherwise(e4[0])
    e4x = c("afforest_target").is_not_null() & e4[1]
    return {
        "_a": ([a1[0], a2, a3, bonus(n("projects_signed"), 2, 10),
                bands(n("employment_rate"), 4, [(0.97, 10), (0.95, 8), (0.90, 6)], 3), a6[0],
                flag("key_project_on_schedule", 10), flag("digital_service_online", 10)], [a1[1], a6[1]]),
        "safety": ([bands(n("hazard_rectification_rate"), 4, [(0.95, 12), (0.90, 9), (0.80, 6)], 0),
                    bonus(n("safety_trainings"), 1, 6), deduction(n("accidents"), 8, 3),
                    flag("safety_letters_signed", 4), s5[0]], [s5[1]]),
        "ecology": ([e1[0], deduction(n("env_incidents"), 8, 4),
                     bands(n("garbage_sorting_rate"), 4, [(0.90, 5), (0.70, 3)], 1), e4v,
                     deduction(n("straw_fire_points"), 4, 2)], [e1[1], e4x]),
        "_stab": ([deduction(n("petitions"), 10, 1), deduction(n("escalated_petitions"), 10, 3),
                   n("mediation_rate") * (10 * ULP // 10**4), deduction(n("criminal_cases"), 5, 2)], []),
        "_serv": ([bands(n("satisfaction_rate"), 4, [(0.95, 8), (0.90, 6), (0.80, 4)], 2), v2[0],
                   bonus(n("commendations"), 2, 6), deduction(n("criticisms"), 6, 2),
                   flag("archives_complete", 4)], [v2[1]]),
    }


def scored(lf: pl.LazyFrame) -> pl.LazyFrame:
    """The table with the columns impl_polars.build reads added (subtotals in exact cents, `total_c`, `veto`),
    `_unsure` (a unit whose rounding the floors cannot decide) and `_bad` (a row failing a check). Each
    category's sum of ulps and count of inexact items are columns first, so that the cents and the doubt read
    them, not recompute them."""
    sums, cents, unsure = [], [], []
    for name, (items, inexact) in categories().items():
        sums.append(pl.sum_horizontal(items).alias(f"sum.{name}"))
        s = c(f"sum.{name}")
        cent = (s + CENT // 2) // CENT
        cents.append(pl.min_horizontal(pl.lit(CATEGORIES[name][1] * 100, I64), cent).cast(pl.Int32).alias(name))
        if inexact:
            sums.append(pl.sum_horizontal([x.cast(I64) for x in inexact]).alias(f"inexact.{name}"))
            k = c(f"inexact.{name}")
            unsure.append((k > 0) & ((s + k + CENT // 2 - 1) // CENT != cent))
    bonus_c = pl.min_horizontal(pl.lit(200, I64), 50 * c("innovations").cast(I64))
    b_c = c("safety") + c("ecology") + c("_stab") + c("_serv")
    total_c = ((3 * c("_a") + 7 * b_c + 10 * bonus_c + 5) // 10).cast(pl.Int32)
    veto = (c("deaths") > 0) | c("major_discipline_case") | c("data_falsified")
    return (lf.with_columns(*sums, _checks(lf.collect_schema()), veto.alias("veto"))
              .with_columns(*cents, pl.any_horizontal(unsure).alias("_unsure"))
              .with_columns(total_c.alias("total_c")))


def _checks(schema: pl.Schema) -> pl.Expr:
    fit = [n(col) >= FIT for col in RATIO_OPERANDS]
    unread = [c(col).is_not_null() & n(col).is_null() for col, scale in SCALE.items() if scale]  # NaN, 1e30
    return pl.any_horizontal(problems(schema) + fit + unread).alias("_bad")


def run_e2e(path: str) -> pl.DataFrame:
    """Read, check, score exactly, rank and award: impl_polars.run_e2e's output, every score exact."""
    import impl_polars  # type: ignore[import-not-found]  # noqa: PLC0415 - on sys.path by the caller

    scan = pl.scan_parquet(path)
    impl_polars.check_ids(scan)
    wide = scored(scan)  # the narrow result and the few unsure units' cells: one decode, shared
    frame, unsure = pl.collect_all([wide.select(*STAGE1, "_bad", "_unsure"), wide.filter(c("_unsure"))],
                                   engine="streaming")
    failing = int(frame.get_column("_bad").sum())
    if failing or frame.get_column("unit_id").n_unique() != frame.height:
        raise ValueError(f"{failing} rows fail a check, or a unit id is repeated")
    if unsure.height:
        frame = _exactly(frame, unsure)
    names = [x for x in frame.columns if x not in ("_bad", "_unsure")]
    with mock.patch.object(impl_polars, "scores_exprs", lambda: ([c(x) for x in names], c("total_c"))):
        return impl_polars.build(frame.lazy()).collect()


def _exactly(frame: pl.DataFrame, units: pl.DataFrame) -> pl.DataFrame:
    """`frame` with the `units` whose rounding the floors left open scored with fractions (a few in a million)."""
    rows = frame.get_column("_unsure").arg_true()
    by_id = {u["unit_id"]: exact(u) for u in units.iter_rows(named=True)}
    scores = [by_id[i] for i in frame.get_column("unit_id").gather(rows)]
    fixed = {col: [int(x[cat] * 100) for x in scores] for col, (cat, _) in CATEGORIES.items()}
    fixed["total_c"] = [int(x["total"] * 100) for x in scores]
    return frame.with_columns(frame.get_column(col).scatter(rows, values) for col, values in fixed.items())
