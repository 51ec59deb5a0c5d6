"""Which is exact where kaohe and the float reference disagree? scheme.md computed with Python Fractions
(exact rationals, no tolerance) for the units where the two differ.

    python tests/benchmark/exact_check.py bench-data/units_1000000.parquet

Prints, per differing unit, the exact category values, the exact total, kaohe's and the reference's.
"""

from __future__ import annotations

import math
import sys
from fractions import Fraction as Q
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT.parent / "shared" / "bench-reference"


def q(x: object) -> Q:
    return Q(str(x))  # the decimal the data holds (4 or 2 places), not the binary float


def steps(x: Q, s: Q) -> int:
    return math.floor(x / s)


def bands(x: Q, table: list[tuple[str, int]], default: int) -> Q:
    for th, pts in table:
        if x >= q(th):
            return Q(pts)
    return Q(default)


def round2(x: Q) -> Q:
    """half-up to cents, exactly (all values here are >= 0)."""
    return Q(math.floor(x * 100 + Q(1, 2)), 100)


def exact(u: dict[str, object]) -> dict[str, Q]:
    r = q(u["invest_actual"]) / q(u["invest_target"])
    a2 = 10 + min(5, steps(r - 1, Q(5, 100))) if r >= 1 else 10 - min(10, Q(1, 2) * steps(1 - r, Q(1, 100)))
    ci = u["collective_income"]
    a3 = Q(12) if ci is None else bands(q(ci), [("50", 15), ("20", 12), ("10", 9), ("5", 6)], 3)
    employment = bands(q(u["employment_rate"]), [("0.97", 10), ("0.95", 8), ("0.90", 6)], 3)
    a = [min(Q(20), 20 * q(u["revenue_actual"]) / q(u["revenue_target"])), a2, a3,
         min(Q(10), 2 * q(u["projects_signed"])), employment,
         min(Q(10), 10 * q(u["new_entities"]) / q(u["new_entities_target"])),
         Q(10 if u["key_project_on_schedule"] else 0), Q(10 if u["digital_service_online"] else 0)]
    s = [bands(q(u["hazard_rectification_rate"]), [("0.95", 12), ("0.90", 9), ("0.80", 6)], 0),
         min(Q(6), q(u["safety_trainings"])), 8 - min(Q(8), 3 * q(u["accidents"])),
         Q(4 if u["safety_letters_signed"] else 0),
         min(Q(6), 6 * q(u["fire_inspections"]) / q(u["fire_inspections_target"]))]
    at = u["afforest_target"]
    e = [min(Q(8), 8 * q(u["good_air_days_rate"]) / Q(85, 100)), 8 - min(Q(8), 4 * q(u["env_incidents"])),
         bands(q(u["garbage_sorting_rate"]), [("0.90", 5), ("0.70", 3)], 1),
         Q(4) if at is None else min(Q(5), 5 * q(u["afforest_area"]) / q(at)),
         4 - min(Q(4), 2 * q(u["straw_fire_points"]))]
    p = [10 - min(Q(10), q(u["petitions"])), 10 - min(Q(10), 3 * q(u["escalated_petitions"])),
         min(Q(10), 10 * q(u["mediation_rate"])), 5 - min(Q(5), 2 * q(u["criminal_cases"]))]
    v = [bands(q(u["satisfaction_rate"]), [("0.95", 8), ("0.90", 6), ("0.80", 4)], 2),
         min(Q(6), 6 * q(u["party_meetings"]) / q(u["party_meetings_target"])), min(Q(6), 2 * q(u["commendations"])),
         6 - min(Q(6), 2 * q(u["criticisms"])), Q(4 if u["archives_complete"] else 0)]
    raw = {"development": sum(a, Q(0)), "safety": sum(s, Q(0)), "ecology": sum(e, Q(0)), "stability": sum(p, Q(0)),
           "services": sum(v, Q(0))}
    caps = {"development": 100, "safety": 30, "ecology": 25, "stability": 25, "services": 20}
    sec = {k: min(Q(caps[k]), round2(x)) for k, x in raw.items()}
    gov = round2(sec["safety"] + sec["ecology"] + sec["stability"] + sec["services"])
    bonus = min(Q(2), Q(1, 2) * q(u["innovations"]))
    total = round2(Q(3, 10) * sec["development"] + Q(7, 10) * gov + bonus)
    return {**{f"raw.{k}": x for k, x in raw.items()}, **sec, "governance": gov, "total": total}


def main(path: str) -> None:
    sys.path.insert(0, str(REFERENCE))
    sys.path.insert(0, str(ROOT))
    import impl_polars  # type: ignore[import-not-found]  # noqa: PLC0415 - importable only after sys.path

    from engine.pipeline import Inputs, run  # noqa: PLC0415 - likewise (run as a script)

    mine = run(Inputs(ROOT / "tests" / "benchmark" / "reference.yaml", Path(path)), detail=False).frame
    mine = mine.select(pl.col("unit_id").cast(pl.Int64), pl.col("total").alias("kaohe"))
    ref = impl_polars.compute(pl.read_parquet(path)).select("unit_id", (pl.col("total") * 100).round().cast(pl.Int64)
                                                            .alias("reference"))
    diff = mine.join(ref, on="unit_id").filter(pl.col("kaohe") != pl.col("reference"))
    data = pl.read_parquet(path).filter(pl.col("unit_id").is_in(diff["unit_id"].implode()))
    print(f"{diff.height} of {mine.height} units differ")
    for u in data.iter_rows(named=True):
        x = exact(u)
        d = diff.filter(pl.col("unit_id") == u["unit_id"]).row(0, named=True)
        near = {k: f"{float(v):.9f}" for k, v in x.items() if k.startswith("raw.")
                and abs(v * 100 - math.floor(v * 100) - Q(1, 2)) < Q(1, 10**5)}
        print(f"unit {u['unit_id']}: exact total {float(x['total']):.2f}, kaohe {d['kaohe'] / 100:.2f}, "
              f"reference {d['reference'] / 100:.2f}; category just below a half-cent: {near}")


if __name__ == "__main__":
    main(sys.argv[1])
