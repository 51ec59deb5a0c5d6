"""Event rules, the Polars side of engine.events: what is posted to durable-rules and what comes back.

Before posting: each column's kind, numeric columns as exact scaled Int64 (floats as the decimals
they print as; every numeric column at the largest number of decimals among its data and the
constants it is compared with), the short attribute keys ("a0", "a1", ...) and the conditions
durable cannot test, precomputed as boolean columns by engine.fixed ("d0", "d1", ...); then the
posted frame (_r, unit_id, attributes), with overflow and type errors located.

After posting: the actions' matches (_Run) become the output frame; nth and within_days are applied
per (rule, unit) in date order, and their notes appended to the detail texts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

import polars as pl

from . import expr as E
from . import fixed as F
from .errors import KaoheError, Loc, Problem
from .event_check import _INT64, EVENT_SCALE, Origin, _decimals, _kind_of

if TYPE_CHECKING:
    from .events import EventRule

OUTPUT_SCHEMA = {"unit_id": pl.String, "event_id": pl.String, "rule": pl.String, "points": pl.Int64,
                 "target": pl.String, "veto": pl.String, "date": pl.Date, "kind": pl.String, "detail": pl.String}


# --------------------------------------------------------------------------------------------
# detail texts


def _fmt(v: int, sign: bool = True) -> str:
    """Scaled points as plain text: -3000000 -> '-3', 500000 -> '+0.5'."""
    q, r = divmod(abs(v), 10**EVENT_SCALE)
    s = str(q) if not r else f"{q}.{str(r).rjust(EVENT_SCALE, '0').rstrip('0')}"
    if v < 0:
        return "-" + s
    return ("+" + s) if sign and v > 0 else s


def _fmt_col(v: pl.Expr) -> pl.Expr:
    """`_fmt` of a column of scaled points."""
    q, r = v.abs() // 10**EVENT_SCALE, v.abs() % 10**EVENT_SCALE
    frac = r.cast(pl.String).str.zfill(EVENT_SCALE).str.strip_chars_end("0")
    body = q.cast(pl.String) + pl.when(r != 0).then(pl.lit(".") + frac).otherwise(pl.lit(""))
    return pl.when(v < 0).then(pl.lit("-") + body).when(v > 0).then(pl.lit("+") + body).otherwise(body)


def _fmt_scaled(v: int, scale: int) -> str:
    q, r = divmod(abs(v), 10**scale)
    s = str(q) if not r else f"{q}.{str(r).rjust(scale, '0').rstrip('0')}"
    return ("-" if v < 0 else "") + s


# --------------------------------------------------------------------------------------------
# columns and attributes


@dataclass
class _Attr:
    key: str  # the property name in the posted fact
    column: str
    kind: str  # str | num | bool | text (a column posted as its text, for points_by)
    scale: int = 0  # num: posted as value * 10**scale


class _Columns:
    """The event log's columns as durable sees them: kinds, exact scaled numbers, the attributes to
    post and the derived (precomputed) condition columns. engine.events' compiler builds on it."""

    def __init__(self, events: pl.DataFrame, rules: Sequence[EventRule], path: str, rows: list[int],
                 origin: Origin | None = None) -> None:
        self.events, self.rules, self.path = events, rules, path
        self.rows = rows  # position in `events` -> row of the caller's frame (for messages)
        self.origin = origin or Origin(path)  # where a row of the caller's frame is in its file
        self.kinds = {c: _kind_of(t) for c, t in events.schema.items()}
        self.attrs: dict[tuple[str, str], _Attr] = {}
        self.derived: dict[str, tuple[pl.Expr, EventRule]] = {}
        self.native: dict[str, tuple[pl.Expr, int]] = {}  # numeric column -> (Int64 expr, scale)
        self.scale: dict[str, int] = {}  # numeric column -> scale it is posted at
        self.problems: list[Problem] = []

    # numbers ------------------------------------------------------------------------------

    def native_num(self, column: str) -> tuple[pl.Expr, int]:
        """The column as an exact scaled Int64 (expression, scale)."""
        if column in self.native:
            return self.native[column]
        dtype = self.events.schema[column]
        col = pl.col(column)
        if isinstance(dtype, pl.Decimal):
            out = (col.to_physical().cast(pl.Int64, strict=True), dtype.scale or 0)
        elif dtype.is_float():
            out = self._floats(column)
        elif dtype == pl.Null:
            out = (pl.lit(None, dtype=pl.Int64), 0)
        else:
            out = (col.cast(pl.Int64, strict=True), 0)
        self.native[column] = out
        return out

    def _floats(self, column: str) -> tuple[pl.Expr, int]:
        """Floats as the decimals they print as (0.1 -> 1 at scale 1): exact for values read from text."""
        values = [v for v in self.events.get_column(column).unique().to_list() if v is not None]
        decs = {}
        for v in values:
            d = Decimal(repr(v))
            if not d.is_finite():
                self.problems.append(Problem(Loc(self.path, row=1, column=column),
                                             f"column '{column}' holds {v}, which is not a number"))
                continue
            decs[v] = d
        scale = max((_decimals(d) for d in decs.values()), default=0)
        old = list(decs)
        new = [int(d.scaleb(scale)) for d in decs.values()]
        if any(abs(n) > _INT64 for n in new):
            self.problems.append(Problem(Loc(self.path, row=1, column=column),
                                         f"column '{column}' has numbers too large to compare exactly"))
            new = [0 for _ in new]
        expr = pl.col(column).replace_strict(old, new, default=None, return_dtype=pl.Int64) if old else \
            pl.lit(None, dtype=pl.Int64)
        return expr, scale

    def collect_scales(self) -> None:
        """Pass 1: every numeric column is posted at max(its own decimals, its constants' decimals)."""
        for rule in self.rules:
            for a, b in E.compared_pairs(rule.when.tree):
                if isinstance(a, E.Name) and self.kinds.get(a.id) == "num" and isinstance(b, E.Num):
                    s = max(self.native_num(a.id)[1], _decimals(b.value))
                    self.scale[a.id] = max(self.scale.get(a.id, 0), s)
        for rule in self.rules:
            if rule.points_per is not None and self.kinds.get(rule.points_per) == "num":
                self.scale[rule.points_per] = max(self.scale.get(rule.points_per, 0),
                                                  self.native_num(rule.points_per)[1])

    # attributes ---------------------------------------------------------------------------

    def attr(self, column: str, kind: str) -> _Attr:
        k = (column, kind)
        if k not in self.attrs:
            self.attrs[k] = _Attr(f"a{len(self.attrs)}", column, kind, self.scale.get(column, 0))
        return self.attrs[k]

    def attr_exprs(self) -> list[pl.Expr]:
        out = []
        for a in self.attrs.values():
            col = pl.col(a.column)
            if a.kind == "num":
                e, s = self.native_num(a.column)
                e = (e.cast(pl.Int128) * 10 ** (a.scale - s)).cast(pl.Int64, strict=True)
            elif a.kind == "date":
                e = col.dt.strftime("%Y-%m-%d")
            elif a.kind in ("str", "text"):
                e = col.cast(pl.String)
            else:
                e = col
            out.append(e.alias(a.key))
        return out

    def resolve(self, node: E.Name | E.Ref) -> F.Fx:
        """engine.fixed's view of a column, for derived attributes."""
        assert isinstance(node, E.Name)
        kind = self.kinds[node.id]
        col = pl.col(node.id)
        if kind == "num" or kind == "null":
            e, s = self.native_num(node.id)
            return F.Fx(e, "num", s)
        if kind == "date":
            return F.Fx(col.dt.strftime("%Y-%m-%d"), "str")
        if kind == "bool":
            return F.Fx(col, "bool")
        return F.Fx(col.cast(pl.String), "str")

    def derived_column(self, node: E.Node, neg: bool, rule: EventRule) -> str:
        """A boolean that durable cannot test itself, computed by engine.fixed before posting: its key."""
        fx = F.compile_expr(node, self.resolve)
        key = f"d{len(self.derived)}"
        self.derived[key] = ((~fx.expr if neg else fx.expr).alias(key), rule)
        return key


def _by_kind(kind: str | None) -> str:
    """points_by looks its column up as text: a text column as it is, others as their text."""
    return "str" if kind == "str" else "text"


def _posted_frame(events: pl.DataFrame, comp: _Columns) -> pl.DataFrame:
    """_r (row), unit_id and the posted attributes; overflow and type errors located."""
    exprs = [pl.int_range(pl.len(), dtype=pl.Int64).alias("_r"), pl.col("unit_id").cast(pl.String)]
    named = list(zip(comp.attrs.values(), comp.attr_exprs(), strict=True))
    try:
        df = events.select(*exprs, *(e for _, e in named), *(e for e, _ in comp.derived.values()))
    except (pl.exceptions.ComputeError, pl.exceptions.InvalidOperationError):
        problems = []
        for a, e in named:  # find the column that does not fit
            try:
                events.select(e)
            except (pl.exceptions.ComputeError, pl.exceptions.InvalidOperationError):
                problems.append(Problem(Loc(comp.path, row=1, column=a.column),
                                        f"column '{a.column}' has numbers too large to compare exactly at "
                                        f"{a.scale} decimals"))
        for e, rule in comp.derived.values():
            try:
                events.select(e)
            except (pl.exceptions.ComputeError, pl.exceptions.InvalidOperationError) as err:
                problems.append(Problem(rule.when.loc, f"condition '{rule.when.source}' cannot be computed "
                                        f"exactly: {str(err).splitlines()[0]}", f"[event {rule.id}]"))
        if not problems:
            raise
        raise KaoheError(problems) from None
    return df


# --------------------------------------------------------------------------------------------
# the matches -> the output frame


@dataclass
class _Run:
    """What the actions of one run write to: the matches (row, rule index, points, detail) and failures."""

    rows: list[int]
    rule: list[int]
    points: list[int | None]
    detail: list[str]
    failures: list[tuple[int, int | None, BaseException]]  # (rule index, row, exception)
    open_session: bool = False  # a session was posted and not cleanly deleted


def _assemble(events: pl.DataFrame, rules: Sequence[EventRule], run: _Run) -> pl.DataFrame:
    """Matches -> the tidy frame; nth and within_days applied per (rule, unit) in date order.

    `events` is in output order (unit, date, event id), so sorting by (row, rule) sorts the output."""
    m = pl.DataFrame({"_r": run.rows, "_k": run.rule, "points": run.points, "detail": run.detail},
                     schema={"_r": pl.Int64, "_k": pl.Int64, "points": pl.Int64, "detail": pl.String})
    m = m.unique(["_r", "_k"], keep="first")  # `a or b` fires once per true branch (engine.events, trap 12)
    ids = [r.id for r in rules]
    rank = {rid: i for i, rid in enumerate(sorted(set(ids)))}
    info = pl.DataFrame({"_k": list(range(len(rules))), "_rank": [rank[i] for i in ids], "rule": ids,
                         "target": [r.target for r in rules], "veto": [r.veto for r in rules],
                         "_nth": [r.nth for r in rules], "_within": [r.within_days for r in rules],
                         "_max": [int(r.max.scaleb(EVENT_SCALE)) if r.max is not None else None for r in rules],
                         "_maxtxt": [_fmt(int(r.max.scaleb(EVENT_SCALE)), sign=False) if r.max is not None else None
                                     for r in rules]},
                        schema={"_k": pl.Int64, "_rank": pl.Int64, "rule": pl.String, "target": pl.String,
                                "veto": pl.String, "_nth": pl.Int64, "_within": pl.Int64, "_max": pl.Int64,
                                "_maxtxt": pl.String})
    base = events.select(pl.col("unit_id").cast(pl.String), pl.col("event_id").cast(pl.String),
                         pl.col("date").cast(pl.Date), pl.col("kind").cast(pl.String),
                         pl.col("unit_id").rle_id().alias("_u"))
    m = m.join(info, on="_k", how="left").sort("_k", "_r")  # each (rule, unit) run in date order
    m = pl.concat([m, base[m.get_column("_r")]], how="horizontal")
    first = (pl.col("_k") != pl.col("_k").shift(1)) | (pl.col("_u") != pl.col("_u").shift(1))
    first = first.fill_null(True)
    i = pl.int_range(pl.len(), dtype=pl.Int64)
    occ = i - pl.when(first).then(i).forward_fill() + 1  # 1, 2, ... within the run
    gap = pl.when(~first).then((pl.col("date") - pl.col("date").shift(1)).dt.total_days())
    keep = ((pl.col("_nth").is_null() | (pl.col("_occ") >= pl.col("_nth")))
            & (pl.col("_within").is_null() | (pl.col("_gap") <= pl.col("_within")).fill_null(False)))
    note = (pl.when(pl.col("_nth").is_not_null()).then(pl.format(" (第{}次)", pl.col("_occ"))).otherwise(pl.lit(""))
            + pl.when(pl.col("_within").is_not_null()).then(pl.format(" (距上次{}天)", pl.col("_gap")))
            .otherwise(pl.lit("")))
    # a rule's `max`: the points (in size) one unit gets from it in the year, in date order; the event that
    # reaches it scores the rest, later ones nothing (kept, and said, for the audit trail)
    size = pl.col("points").abs()
    room = pl.max_horizontal(pl.col("_max") - (size.cum_sum().over("_k", "_u") - size), pl.lit(0, dtype=pl.Int64))
    capped = pl.col("_max").is_not_null() & pl.col("points").is_not_null() & (room < size)
    kept = pl.when(capped).then(pl.col("points").sign() * room).otherwise(pl.col("points"))
    over = pl.when(capped).then(pl.format(" (全年上限 {}, 计 {})", pl.col("_maxtxt"), _fmt_col(kept))) \
        .otherwise(pl.lit(""))
    return (m.lazy().with_columns(occ.alias("_occ"), gap.alias("_gap"))
            .filter(keep).with_columns((pl.col("detail") + note).alias("detail"))
            .with_columns((pl.col("detail") + over).alias("detail"), kept.alias("points"))
            .sort("_r", "_rank")
            .select([pl.col(c).cast(t) for c, t in OUTPUT_SCHEMA.items()]).collect())
