"""Fast multi-key sorts: integer keys packed into one Int64 when their ranges fit, as a hand-written
query would do; otherwise Polars' multi-column sort. Nulls sort last in either direction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

_BITS = 62


class Packing:
    """The ranges of a frame's integer and boolean columns, measured once (one pass), to pack sort keys
    on that frame and on lazy frames derived from it."""

    def __init__(self, df: pl.DataFrame, cols: Sequence[str]) -> None:
        ints = [c for c in dict.fromkeys(cols) if c in df.columns
                and (df.schema[c].is_integer() or df.schema[c] == pl.Boolean)]
        row = df.select([pl.col(c).cast(pl.Int64).min().alias(f"lo.{c}") for c in ints]
                        + [pl.col(c).cast(pl.Int64).max().alias(f"hi.{c}") for c in ints]).row(0) if ints else ()
        self.spans: dict[str, tuple[int | None, int | None]] = {
            c: (row[i], row[len(ints) + i]) for i, c in enumerate(ints)}

    def key(self, cols: Sequence[str], descending: Sequence[bool]) -> pl.Expr | None:
        """cols packed into one Int64 that sorts as they do (nulls last), when their ranges fit."""
        return _packed(cols, descending, self.spans)

    def permutation(self, cols: Sequence[str], descending: Sequence[bool],
                    spans: Mapping[str, tuple[int, int]] | None = None) -> pl.Expr:
        """The row numbers in the order of cols (stable, nulls last), as one column."""
        known = {**self.spans, **(spans or {})}
        by, desc = [pl.col(c) for c in cols], list(descending)
        for cut in range(len(cols), 1, -1):  # the longest leading run of keys that packs into one Int64
            key = _packed(cols[:cut], descending[:cut], known)
            if key is not None:
                by, desc = [key, *by[cut:]], [False, *desc[cut:]]
                break
        return pl.int_range(pl.len(), dtype=pl.UInt32).sort_by(by, descending=desc, nulls_last=True,
                                                               maintain_order=True)


def _packed(cols: Sequence[str], descending: Sequence[bool],
            spans: Mapping[str, tuple[int | None, int | None]]) -> pl.Expr | None:
    if not cols or any(c not in spans for c in cols):
        return None
    key: pl.Expr = pl.lit(0, dtype=pl.Int64)
    used = 0
    for c, desc in zip(reversed(cols), reversed(descending), strict=True):  # the last key takes the lowest bits
        lo, hi = spans[c]
        if lo is None or hi is None:  # all null: no order from this key
            continue
        span = hi - lo + 1  # values 0..span-1, and span for null (last)
        bits = span.bit_length()
        if used + bits > _BITS:
            return None
        e = pl.col(c).cast(pl.Int64)
        v = (hi - e) if desc else (e - lo)
        key = key + v.fill_null(span) * (1 << used)
        used += bits
    return key
