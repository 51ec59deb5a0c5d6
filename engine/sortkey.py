"""Fast multi-key sorts: integer keys packed into one Int64 when their ranges fit, as a hand-written
query would do; otherwise Polars' multi-column sort. Nulls sort last in either direction."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

_BITS = 62


def sort_by(df: pl.DataFrame, cols: Sequence[str], descending: Sequence[bool]) -> pl.DataFrame:
    """df sorted by cols (stable), nulls last."""
    packed = _packed(df, cols, descending)
    if packed is None:
        return df.sort(list(cols), descending=list(descending), nulls_last=True, maintain_order=True)
    return df.with_columns(packed.alias("_sortkey")).sort("_sortkey", maintain_order=True).drop("_sortkey")


def _packed(df: pl.DataFrame, cols: Sequence[str], descending: Sequence[bool]) -> pl.Expr | None:
    if not cols or not all(df.schema[c].is_integer() or df.schema[c] == pl.Boolean for c in cols):
        return None
    as_int = [pl.col(c).cast(pl.Int64) for c in cols]
    stats = df.select([e.min().alias(f"lo{i}") for i, e in enumerate(as_int)]
                      + [e.max().alias(f"hi{i}") for i, e in enumerate(as_int)]).row(0)
    n = len(cols)
    key: pl.Expr = pl.lit(0, dtype=pl.Int64)
    used = 0
    for i in reversed(range(n)):  # the last key takes the lowest bits
        lo, hi = stats[i], stats[n + i]
        if lo is None:  # all null: no order from this key
            continue
        span = hi - lo + 1  # values 0..span-1, and span for null (last)
        bits = span.bit_length()
        if used + bits > _BITS:
            return None
        v = (hi - as_int[i]) if descending[i] else (as_int[i] - lo)
        key = key + v.fill_null(span) * (1 << used)
        used += bits
    return key
