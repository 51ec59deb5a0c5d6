"""Tiny helpers for scoring hand-written schemes in tests.

`write_scheme` puts a scheme file in tmp_path: a `scheme:` header, unit types village/office,
the given fields and the given body (sections, pools, total, ...). `score` runs the real
pipeline stages (load_scheme -> prepare_units -> evaluate) over a small frame of text values
and returns the scored frame. `dec` / `pts` turn its scaled Int64 columns into Decimals.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl

from engine.data import prepare_units
from engine.evaluate import ITEM_SCALE, evaluate
from engine.scheme import load_scheme

UNIT_TYPES = "{village: 村, office: 镇属单位}"
ROOT = Path(__file__).resolve().parent.parent
DEMO_SCHEME = ROOT / "rules" / "township-2022.yaml"
DEMO_UNITS = ROOT / "fixtures" / "2022" / "units.csv"
DEMO_EVENTS = ROOT / "fixtures" / "2022" / "events.csv"
DECISIONS = ["unit_id", "total", "grade", "rank", "rank_all", "vetoed"]  # the decided columns compared


def scheme_text(body: str, fields: Mapping[str, str] | None = None, *, precision: int = 2,
                rounding: str = "half_up") -> str:
    """A complete scheme file: header + unit_types + fields (id -> inline YAML spec) + body."""
    lines = [f"scheme: {{id: t, label: 测试方案, year: 2022, precision: {precision:d}, rounding: {rounding}}}",
             f"unit_types: {UNIT_TYPES}"]
    if fields:
        lines.append("fields:")
        lines += [f"  {fid}: {spec}" for fid, spec in fields.items()]
    return "\n".join(lines) + "\n" + textwrap.dedent(body).strip("\n") + "\n"


def write_scheme(tmp_path: Path, body: str, fields: Mapping[str, str] | None = None, *, name: str = "scheme.yaml",
                 **meta: Any) -> Path:
    path = tmp_path / name
    path.write_text(scheme_text(body, fields, **meta), encoding="utf-8")
    return path


def frame(data: Mapping[str, list[Any]]) -> pl.DataFrame:
    """Text columns as read from a CSV; unit_id (u1, u2, ...) and unit_type (village) are added
    when absent. None stays an empty cell."""
    n = len(next(iter(data.values()))) if data else 1
    cols: dict[str, list[Any]] = {"unit_id": [f"u{i + 1}" for i in range(n)], "unit_type": ["village"] * n}
    cols.update(data)
    return pl.DataFrame({k: [None if v is None else str(v) for v in vs] for k, vs in cols.items()},
                        schema={k: pl.String for k in cols})


def score_path(path: Path, data: Mapping[str, list[Any]] | pl.DataFrame) -> pl.DataFrame:
    scheme = load_scheme(path)
    df = data if isinstance(data, pl.DataFrame) else frame(data)
    units = prepare_units(df, scheme, path="units.csv")
    _, scored = evaluate(scheme, units.frame, path="units.csv")
    return scored


def score(tmp_path: Path, body: str, fields: Mapping[str, str] | None, data: Mapping[str, list[Any]] | pl.DataFrame,
          **meta: Any) -> pl.DataFrame:
    """Write the scheme, score `data`, return the scored frame (one row per unit, input order)."""
    return score_path(write_scheme(tmp_path, body, fields, **meta), data)


def _scale(col: str, precision: int) -> int:
    if col.startswith("i.") or col.startswith("r."):
        return ITEM_SCALE
    if col.startswith(("s.", "p.")) or col == "total":
        return precision
    raise ValueError(f"unknown scale for column {col!r}")


def dec(df: pl.DataFrame, col: str, precision: int = 2) -> list[Decimal | None]:
    """The column as exact Decimals: i.<item> at ITEM_SCALE, s.<id>/p.<id>/total at `precision`.
    Values are normalised to the column's scale so Decimal('12') == Decimal('12.00')."""
    s = _scale(col, precision)
    return [None if v is None else Decimal(v).scaleb(-s) for v in df.get_column(col).to_list()]


def pts(df: pl.DataFrame, col: str, precision: int = 2) -> Decimal | None:
    """The single unit's value of `col` (for one-row frames)."""
    (v,) = dec(df, col, precision)
    return v


def by_unit(df: pl.DataFrame, col: str, precision: int = 2) -> dict[str, Decimal | None]:
    return dict(zip(df.get_column("unit_id").to_list(), dec(df, col, precision), strict=True))


def D(x: str | int) -> Decimal:
    return Decimal(str(x))
