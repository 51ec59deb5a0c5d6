"""The findings frame (one row per unit x item) is what the scores are made of: every leaf section's score
is its items' points plus its event points, rounded half-up at the scheme's precision and clamped."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import polars as pl

from engine.pipeline import demo_inputs, run
from engine.workbook import findings

ROOT = Path(__file__).resolve().parents[1]


def test_leaf_sections_are_aggregations_of_the_findings() -> None:
    result = run(demo_inputs(), detail=True)
    found = findings(result)
    assert found.height > 0
    points = found.with_columns(pl.col("points").map_elements(Decimal, return_dtype=pl.Object))
    events = result.adjustments
    assert events is not None
    checked = 0
    for sec in result.scheme.all_sections():
        if sec.children:
            continue
        for r in result.frame.iter_rows(named=True):
            got = r[f"s.{sec.id}"]
            if got is None:
                continue
            items = points.filter((pl.col("unit_id") == str(r["unit_id"])) & (pl.col("section") == sec.id))
            raw = sum(items.get_column("points").to_list(), Decimal(0))
            ev = events.filter((pl.col("unit_id") == str(r["unit_id"])) & (pl.col("target") == f"section:{sec.id}"))
            raw += sum((Decimal(p).scaleb(-6) for p in ev.get_column("points").drop_nulls().to_list()), Decimal(0))
            want = raw.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
            if sec.max is not None:
                want = min(want, sec.max)
            if sec.floor is not None:
                want = max(want, sec.floor)
            assert Decimal(got).scaleb(-2) == want, (r["unit_id"], sec.id, raw)
            checked += 1
    assert checked > 100


def test_every_finding_names_its_rule_in_the_scheme_file() -> None:
    found = findings(run(demo_inputs(), detail=True))
    assert set(found.columns) >= {"unit_id", "section", "item", "value", "points", "max", "reason", "rule"}
    assert found.filter(~pl.col("rule").str.contains(r"township-2022\.yaml:\d+$")).height == 0
    assert found.filter(pl.col("reason") == "").height == 0
