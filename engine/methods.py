"""Item methods: how an item's value becomes points. One registry, used by the loader
(to validate parameters), the compiler (to build Polars expressions) and explain
(to describe the rule in words).

Every builder receives the item's value as a fixed-point `Fx` and returns points as `Fx`.
Cross-unit methods (rank, share_of_leader, efficacy) are Polars window expressions over
the units the item applies to (optionally per group, e.g. per unit type).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import polars as pl

from . import fixed as F
from .expr import Bin, Expr, Type
from .fixed import Fx

# parameter kinds: num, num?, int, table, map, exprs, bool, choice:<a|b>, str, list
ParamSpec = tuple[str, bool, Any]  # (kind, required, default)


@dataclass(frozen=True)
class Ctx:
    value: Fx | None
    points: Fx  # the item's nominal points (0 when not given)
    params: Mapping[str, Any]
    value_expr: Expr | None
    compile: Callable[[Expr], Fx]
    group: tuple[pl.Expr, ...]  # partition for cross-unit methods
    applies: pl.Expr  # true for the units the item applies to


@dataclass(frozen=True)
class MethodSpec:
    name: str
    label: str  # Chinese, for explain
    params: Mapping[str, ParamSpec]
    value_type: Type | None  # None: no value needed
    build: Callable[[Ctx], Fx]
    needs_points: bool = False
    window: bool = False
    # the points are missing wherever the value is (arithmetic and clips on it, or a guard of its own), so
    # the item needs no guard of its own: tests/test_methods.py NULL_CASES holds each such method to it
    keeps_nulls: bool = False


def _p(ctx: Ctx, name: str) -> Fx:
    v = ctx.params.get(name)
    return ctx.points if v is None else F.num(v)


def _value(ctx: Ctx) -> Fx:
    assert ctx.value is not None
    return ctx.value


def _cmp_side(params: Mapping[str, Any]) -> tuple[str, Any]:
    for key, op in (("at_least", ">="), ("above", ">"), ("at_most", "<="), ("below", "<")):
        if params.get(key) is not None:
            return op, params[key]
    raise KeyError("no comparison given")


def _fixed(ctx: Ctx) -> Fx:
    return ctx.points


def _direct(ctx: Ctx) -> Fx:
    lo = ctx.params.get("min")
    hi = ctx.params.get("max")
    return F.clamp(_value(ctx), F.num(lo if lo is not None else 0), F.num(hi) if hi is not None else ctx.points)


def _assessed(ctx: Ctx) -> Fx:
    return _value(ctx)  # the range is enforced as a data check (see evaluate.range_checks)


def _pass_fail(ctx: Ctx) -> Fx:
    return F.when(_value(ctx), _p(ctx, "pass"), F.num(ctx.params.get("fail", 0)))


def _threshold(ctx: Ctx) -> Fx:
    op, t = _cmp_side(ctx.params)
    ok = F.compare(op, _value(ctx), F.num(t))
    return F.when(ok, _p(ctx, "pass"), F.num(ctx.params.get("fail", 0)))


def _proportional(ctx: Ctx) -> Fx:
    cap = ctx.params.get("cap", Decimal(1))
    v = _value(ctx)
    vx = ctx.value_expr
    tree = vx.tree if vx else None
    if vx is not None and isinstance(tree, Bin) and tree.op == "/":
        # P x a / b with a single floor, so exact results stay exact (20 x 1150/1000 = 23)
        a, b = ctx.compile(Expr("", tree.left, vx.loc)), ctx.compile(Expr("", tree.right, vx.loc))
        pts = F.div(F.mul(ctx.points, a), b)
    else:
        pts = F.mul(ctx.points, v)
    if cap is not None:
        pts = F.clamp(pts, None, F.mul(ctx.points, F.num(cap)))
    floor = ctx.params.get("floor")
    return F.clamp(pts, F.num(floor), None) if floor is not None else pts


def _steps_count(diff: Fx, step: Fx, whole: bool) -> Fx:
    q = F.div(diff, step)
    return F.round_to(q, 0, "floor") if whole else q


def _steps(ctx: Ctx) -> Fx:
    p = ctx.params
    v, target = _value(ctx), F.num(p.get("target", 1))
    step_up, step_down = (F.num(p.get(k) or p["step"]) for k in ("above_step", "below_step"))
    base = _p(ctx, "base")
    whole = p.get("whole", True)
    up = F.mul(F.num(p.get("above", 0)), _steps_count(F.add(v, target, -1), step_up, whole))
    if p.get("above_cap") is not None:
        up = F.clamp(up, None, F.num(p["above_cap"]))
    down = F.mul(F.num(p.get("below", 0)), _steps_count(F.add(target, v, -1), step_down, whole))
    if p.get("below_cap") is not None:
        down = F.clamp(down, None, F.num(p["below_cap"]))
    pts = F.when(F.compare(">=", v, target), F.add(base, up), F.add(base, down, -1))
    if p.get("floor") is not None:
        pts = F.clamp(pts, F.num(p["floor"]), None)
    if p.get("cutoff") is not None:
        pts = F.when(F.compare("<", v, F.num(p["cutoff"])), F.num(p.get("cutoff_points", 0)), pts)
    return pts


def _bands(ctx: Ctx) -> Fx:
    op, table = _cmp_side(ctx.params)
    v = _value(ctx)
    out = F.num(ctx.params.get("else", 0))
    for threshold, pts in reversed(table):
        out = F.when(F.compare(op, v, F.num(threshold)), F.num(pts), out)
    return Fx(pl.when(v.expr.is_not_null()).then(out.expr), "num", out.scale, out.rng, out.err)


def _count(ctx: Ctx) -> Fx:
    pts = F.mul(F.num(ctx.params["each"]), _value(ctx))
    cap = ctx.params.get("max")
    return F.clamp(pts, None, F.num(cap) if cap is not None else ctx.points)


def _deduct(ctx: Ctx) -> Fx:
    p = ctx.params
    base = _p(ctx, "base")
    ded = F.mul(F.num(p["each"]), _value(ctx))
    ded = F.clamp(ded, None, F.num(p["max"]) if p.get("max") is not None else base)
    return F.clamp(F.add(base, ded, -1), F.num(p.get("floor", 0)), None)


def _lookup(ctx: Ctx) -> Fx:
    table: Mapping[str, Decimal] = ctx.params["table"]
    v = _value(ctx)
    default = ctx.params.get("else")
    scale = max([F.num(x).scale for x in table.values()] + ([F.num(default).scale] if default is not None else []))
    keys = pl.Series(list(table), dtype=pl.String)
    vals = pl.Series([int(x.scaleb(scale)) for x in table.values()], dtype=pl.Int64)
    e = v.expr.replace_strict(keys, vals, default=None if default is None else int(Decimal(default).scaleb(scale)),
                              return_dtype=pl.Int64)
    return Fx(e, "num", scale)


def _checklist(ctx: Ctx) -> Fx:
    checks = [ctx.compile(c) for c in ctx.params["checks"]]
    missing = Fx(pl.sum_horizontal([(~c.expr).cast(pl.Int64) for c in checks], ignore_nulls=False), "num", 0)
    pts = F.add(_p(ctx, "base"), F.mul(F.num(ctx.params["each"]), missing), -1)
    return F.clamp(pts, F.num(ctx.params.get("floor", 0)), None)


def _formula(ctx: Ctx) -> Fx:
    return ctx.compile(ctx.params["points"])


# --- cross-unit (window) methods ------------------------------------------------------------

def _over(e: pl.Expr, ctx: Ctx) -> pl.Expr:
    """A window over the applicable units (per group when declared)."""
    keys = [ctx.applies, *ctx.group]
    return e.over(keys)


def _rank(ctx: Ctx) -> Fx:
    p = ctx.params
    v = _value(ctx)
    desc = p.get("order", "desc") == "desc"
    r = _over(v.expr.rank("min", descending=desc), ctx).cast(pl.Int64)  # competition ranking: 8, 8, 10
    rank = Fx(r, "num", 0)
    if p.get("table") is not None:
        table = [F.num(x) for x in p["table"]]
        out = F.num(p.get("else", 0))
        for i, pts in reversed(list(enumerate(table, start=1))):
            out = F.when(F.compare("==", rank, F.num(i)), pts, out)
        return out
    if p.get("step_pct") is not None:  # -x% of the points per place below first
        cut = F.mul(F.mul(ctx.points, F.num(p["step_pct"])), F.add(rank, F.num(1), -1))
        return F.clamp(F.add(ctx.points, F.div(cut, F.num(100)), -1), F.num(0), None)
    first, last = F.num(p["linear"][0]), F.num(p["linear"][1])  # linear from first to last place
    n = Fx(_over(v.expr.count(), ctx).cast(pl.Int64), "num", 0)
    span = F.add(n, F.num(1), -1)
    frac = F.div(F.add(rank, F.num(1), -1), Fx(pl.max_horizontal(span.expr, pl.lit(1)), "num", 0))
    return F.add(first, F.mul(F.add(first, last, -1), frac), -1)


def _share_of_leader(ctx: Ctx) -> Fx:
    v = _value(ctx)
    best = Fx(_over(v.expr.max(), ctx), "num", v.scale)
    return F.div(F.mul(ctx.points, v), best)


def _efficacy(ctx: Ctx) -> Fx:
    """功效系数法: points x (base + span x (x - worst) / (best - worst)) / 100."""
    p = ctx.params
    v = _value(ctx)
    desc = p.get("order", "desc") == "desc"
    hi = Fx(_over(v.expr.max(), ctx), "num", v.scale)
    lo = Fx(_over(v.expr.min(), ctx), "num", v.scale)
    best, worst = (hi, lo) if desc else (lo, hi)
    base, span = F.num(p.get("base", 60)), F.num(p.get("span", 40))
    frac = F.div(F.add(v, worst, -1), F.add(best, worst, -1))
    all_equal = (best.expr == worst.expr) & v.expr.is_not_null()
    frac = F.when(Fx(all_equal, "bool"), F.num(1), frac)  # keeps the quotient's error bound (and range)
    score = F.add(base, F.mul(span, frac))
    return F.div(F.mul(ctx.points, score), F.num(100))


N, NQ, REQ = "num", "num?", True
_CMP = {"at_least": (N, False, None), "above": (N, False, None), "at_most": (N, False, None),
        "below": (N, False, None)}
_CMPT = {k: ("table", False, None) for k in _CMP}

METHODS: dict[str, MethodSpec] = {m.name: m for m in [
    MethodSpec("fixed", "固定分值", {}, None, _fixed, needs_points=True),
    MethodSpec("direct", "按评定分值计分", {"min": (N, False, None), "max": (N, False, None)}, "num", _direct,
               keeps_nulls=True),
    MethodSpec("assessed", "评定分值(限定范围)", {"min": (N, REQ, None), "max": (N, REQ, None)}, "num", _assessed),
    MethodSpec("pass_fail", "达标得分, 否则不得分", {"pass": (N, False, None), "fail": (N, False, None)}, "bool",
               _pass_fail),
    MethodSpec("threshold", "达到标准得分, 否则扣分", {**_CMP, "pass": (N, False, None), "fail": (N, False, None)},
               "num", _threshold),
    MethodSpec("proportional", "按完成比例计分", {"cap": (NQ, False, Decimal(1)), "floor": (N, False, None)}, "num",
               _proportional, needs_points=True, keeps_nulls=True),
    MethodSpec("steps", "按步长加减分", {
        "target": (N, False, Decimal(1)), "step": (N, False, None), "above_step": (N, False, None),
        "below_step": (N, False, None), "base": (N, False, None),
        "above": (N, False, None), "above_cap": (N, False, None), "below": (N, False, None),
        "below_cap": (N, False, None), "whole": ("bool", False, True), "floor": (N, False, None),
        "cutoff": (N, False, None), "cutoff_points": (N, False, None)}, "num", _steps,
               keeps_nulls=True),
    MethodSpec("bands", "分档计分", {**_CMPT, "else": (N, False, None)}, "num", _bands, keeps_nulls=True),
    MethodSpec("count", "按次数加分", {"each": (N, REQ, None), "max": (N, False, None)}, "num", _count,
               keeps_nulls=True),
    MethodSpec("deduct", "按次数(数量)扣分", {"each": (N, REQ, None), "max": (N, False, None), "base": (N, False, None),
               "floor": (N, False, Decimal(0))}, "num", _deduct, keeps_nulls=True),
    MethodSpec("lookup", "按类别取分", {"table": ("map", REQ, None), "else": (N, False, None)}, "str", _lookup),
    MethodSpec("checklist", "缺项扣分", {"checks": ("exprs", REQ, None), "each": (N, REQ, None),
                                     "base": (N, False, None), "floor": (N, False, Decimal(0))}, None, _checklist),
    MethodSpec("formula", "按公式计分", {"points": ("expr", REQ, None)}, None, _formula),
    MethodSpec("rank", "按名次计分", {"order": ("choice:desc|asc", False, "desc"), "table": ("nums", False, None),
               "else": (N, False, None), "step_pct": (N, False, None), "linear": ("nums", False, None),
               "within": ("list", False, None)}, "num", _rank, window=True),
    MethodSpec("share_of_leader", "按与第一名的比值计分", {"within": ("list", False, None)}, "num", _share_of_leader,
               needs_points=True, window=True),
    MethodSpec("efficacy", "功效系数法", {"base": (N, False, Decimal(60)), "span": (N, False, Decimal(40)),
               "order": ("choice:desc|asc", False, "desc"), "within": ("list", False, None)}, "num", _efficacy,
               needs_points=True, window=True),
]}

EXACTLY_ONE = {"threshold": tuple(_CMP), "bands": tuple(_CMPT), "rank": ("table", "step_pct", "linear")}
