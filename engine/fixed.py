"""Exact fixed-point arithmetic on Polars: the expression language compiled to Int64 columns.

Every number is an Int64 column holding value x 10^scale, with the scale known at
compile time (`Fx.scale`). Addition aligns scales exactly; multiplication adds them;
division floors at DIV_SCALE decimals, which keeps every comparison with a constant of
at most DIV_SCALE decimals exact (floor(x) >= c  <=>  x >= c when c is on the grid).
Products and quotients are formed in Int128 and cast back with a strict cast, so an
overflow is an error, never a silently wrapped score. Rounding to a declared precision
is explicit (`round_to`). Nulls propagate: a missing input gives a missing result.

Why not Float64: 0.95 - 0.90 is 0.04999..., and naive round() moves thousands of totals.
Why not pl.Decimal: its division keeps the operands' scale (21.125/3 -> 7.042) and it
measured ~3x slower than Int64 here; scaled integers make every rounding step visible.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

import polars as pl

from . import expr as E

DIV_SCALE = 10  # decimals kept by a division; comparisons against constants up to this are exact
MAX_SCALE = 10  # products deeper than this are floored back to it
Rounding = Literal["half_up", "half_even", "down", "up", "floor", "ceiling"]
ROUNDINGS: tuple[Rounding, ...] = ("half_up", "half_even", "down", "up", "floor", "ceiling")


Range = tuple[int, int] | None  # the scaled values a number can take, when known
Err = tuple[int, int] | None
SAFE = 2**62  # below this an Int64 product or shift cannot overflow


@dataclass(frozen=True)
class Fx:
    """A compiled value: a Polars expression, its type, for numbers its decimal scale and, when known,
    the range of its scaled values (from constants and the data's min/max). A known range lets a product
    or quotient stay in Int64; an unknown one takes the 128-bit path."""

    expr: pl.Expr
    type: E.Type = "num"
    scale: int = 0
    rng: Range = None
    # how far the exact value may lie from the computed one, in units of the last decimal:
    # exact - computed in [-err[0], err[1]]; a floored quotient is (0, 1); None: not tracked
    err: Err = (0, 0)


def num(value: Decimal | int | str, scale: int | None = None) -> Fx:
    """A numeric constant, exactly."""
    d = Decimal(str(value))
    s = max(0, -int(d.as_tuple().exponent)) if scale is None else scale
    v = int(d.scaleb(s))
    return Fx(_int_lit(v), "num", s, (v, v))


@functools.lru_cache(maxsize=4096)
def _int_lit(v: int) -> pl.Expr:
    """An Int64 literal; expressions are immutable, so one serves every use (building one costs ~20 us)."""
    return pl.lit(v, dtype=pl.Int64)


def _at(x: Fx, scale: int) -> Range:
    k = 10 ** (scale - x.scale)
    return None if x.rng is None else (x.rng[0] * k, x.rng[1] * k)


def _hull(*rs: Range) -> Range:
    known = [r for r in rs if r is not None]
    if len(known) < len(rs):
        return None
    return (min(r[0] for r in known), max(r[1] for r in known))


def _err_at(x: Fx, scale: int) -> Err:
    k = 10 ** (scale - x.scale)
    return None if x.err is None else (x.err[0] * k, x.err[1] * k)


def err_sum(*es: Err) -> Err:
    if any(e is None for e in es):
        return None
    return (sum(e[0] for e in es), sum(e[1] for e in es))  # type: ignore[index,misc]


def _err_hull(*es: Err) -> Err:
    if any(e is None for e in es):
        return None
    return (max(e[0] for e in es), max(e[1] for e in es))  # type: ignore[index]


def _err_scaled(e: Err, r: Range) -> Err:
    """The error of x * c where c is exact and lies in range r."""
    if e is None or r is None:
        return None if e != (0, 0) else (0, 0)
    m = max(abs(r[0]), abs(r[1]))
    if r[0] >= 0:
        return (e[0] * m, e[1] * m)
    w = max(e) * m
    return (w, w)


def _err_floor_div(e: Err, k: int) -> Err:
    """The error after floor(x / k): the floor adds up to one unit below."""
    if e is None:
        return None
    return (-(-e[0] // k), 1 + -(-e[1] // k))


def _is_one(x: Fx) -> bool:
    """The constant 1 at scale 0 (a product by it is the other factor, at its own scale). A column whose
    values are all 1 is not: its nulls must stay null."""
    return x.scale == 0 and x.rng == (1, 1) and x.err == (0, 0) and x.expr.meta.is_literal()


def _fits(r: Range) -> bool:
    return r is not None and max(abs(r[0]), abs(r[1])) < SAFE


def rescale(x: Fx, scale: int) -> pl.Expr:
    """x as Int64 at a scale >= its own (exact)."""
    if scale == x.scale:
        return x.expr
    if scale < x.scale:
        raise ValueError("rescale only widens; use round_to to narrow")
    k: int = 10 ** (scale - x.scale)
    return x.expr * k


def align(*xs: Fx) -> tuple[int, list[pl.Expr]]:
    s = max(x.scale for x in xs)
    return s, [rescale(x, s) for x in xs]


def _wide(e: pl.Expr) -> pl.Expr:
    return e.cast(pl.Int128)


def _narrow(e: pl.Expr) -> pl.Expr:
    return e.cast(pl.Int64, strict=True)


def add(a: Fx, b: Fx, sign: int = 1) -> Fx:
    s, (x, y) = align(a, b)
    ra, rb = _at(a, s), _at(b, s)
    rng: Range = None
    if ra is not None and rb is not None:
        rng = (ra[0] + rb[0], ra[1] + rb[1]) if sign > 0 else (ra[0] - rb[1], ra[1] - rb[0])
    ea, eb = _err_at(a, s), _err_at(b, s)
    err = err_sum(ea, eb) if sign > 0 else err_sum(ea, None if eb is None else (eb[1], eb[0]))
    return Fx(x + y if sign > 0 else x - y, "num", s, rng, err)


def mul(a: Fx, b: Fx) -> Fx:
    s = a.scale + b.scale
    rng: Range = None
    if a.rng is not None and b.rng is not None:
        ends = [x * y for x in a.rng for y in b.rng]
        rng = (min(ends), max(ends))
    narrow = _fits(rng)
    if _is_one(a) or _is_one(b):  # x * 1 (a weight, a per-unit factor): no work
        prod = b.expr if _is_one(a) else a.expr
        narrow = True
    else:
        prod = a.expr * b.expr if narrow else _wide(a.expr) * _wide(b.expr)
    if a.err == (0, 0):
        err = _err_scaled(b.err, a.rng)
    elif b.err == (0, 0):
        err = _err_scaled(a.err, b.rng)
    else:
        err = None
    if s > MAX_SCALE:
        k = 10 ** (s - MAX_SCALE)
        prod = prod // k
        rng = None if rng is None else (rng[0] // k, rng[1] // k)
        err = _err_floor_div(err, k)
        s = MAX_SCALE
    return Fx(prod if narrow else _narrow(prod), "num", s, rng, err)


def div(a: Fx, b: Fx, scale: int = DIV_SCALE) -> Fx:
    """floor(a / b) at `scale` decimals; null where b is 0 or missing."""
    shift = scale - a.scale + b.scale
    ka, kb = (10**shift, 1) if shift >= 0 else (1, 10 ** (-shift))
    ra = None if a.rng is None else (a.rng[0] * ka, a.rng[1] * ka)
    rb = None if b.rng is None else (b.rng[0] * kb, b.rng[1] * kb)
    narrow = _fits(ra) and _fits(rb)
    num_ = (a.expr if narrow else _wide(a.expr)) * ka if ka != 1 else (a.expr if narrow else _wide(a.expr))
    den = (b.expr if narrow else _wide(b.expr)) * kb if kb != 1 else (b.expr if narrow else _wide(b.expr))
    if rb is None or rb[0] <= 0 <= rb[1]:  # a divisor that may be 0 gives null, never an error
        den = pl.when(den != 0).then(den)
    rng: Range = None
    if ra is not None:
        big = max(abs(ra[0]), abs(ra[1]))  # |den| >= 1
        rng = (-big, big)
        if rb is not None and (rb[0] > 0 or rb[1] < 0):  # a divisor of one sign: floor(x / y) is monotone
            ends = [x // y for x in ra for y in rb]  # in x and in y, so its extremes are at the corners
            rng = (min(ends), max(ends))
    q = num_ // den
    return Fx(q if narrow else _narrow(q), "num", scale, rng, _div_err(a.err, b, ka, kb))


def _div_err(ea: Err, b: Fx, ka: int, kb: int) -> Err:
    """The floor makes a quotient exact within one unit below; an inexact dividend over an exact divisor
    bounded away from zero carries its error through, divided by the smallest divisor."""
    if ea is None or b.err != (0, 0):
        return None
    if ea == (0, 0):
        return (0, 1)
    if b.rng is None or b.rng[0] <= 0 <= b.rng[1]:
        return None
    small = min(abs(b.rng[0]), abs(b.rng[1])) * kb
    lo, hi = -(-ea[0] * ka // small), -(-ea[1] * ka // small)
    return (lo, 1 + hi) if b.rng[0] > 0 else (hi, 1 + lo)


def _snap(x: Fx, q: int, mode: Rounding) -> pl.Expr:
    """Where x is inexact (a sum of floored quotients) and a rounding boundary lies within its error, the
    exact value is that boundary: repeating decimals such as 8 x 0.8/0.85 and 5 x 90/120 can add up to
    exactly 16.805, and their 10-decimal floors fall one unit short of it. (The exact rationals here are
    never within 10^-10 of a boundary without being on it, unless their denominators pass 10^10.)"""
    if x.err is None or x.err == (0, 0):
        return x.expr
    lo, hi = x.err
    e = x.expr
    # fast paths, same decisions: a boundary within `hi` above e is crossed by e + hi, and nothing else is
    # (half_up rounds an exact half away from zero: toward +hi above zero, toward -lo below)
    if mode == "half_up":
        if x.rng is not None and x.rng[0] >= 0:  # never negative (a sum of points): one add
            return e + hi
        return pl.when(e >= 0).then(e + hi).otherwise(e - lo)
    if mode == "floor":
        return e + hi
    if mode == "ceiling":
        return e - lo
    offset = q // 2 if mode.startswith("half") else 0  # boundaries: half-way points, or the grid itself
    d = ((e - offset) % q + q) % q  # distance down to the boundary at or below e
    return (pl.when((d != 0) & (d <= lo)).then(e - d)
            .when((d != 0) & (q - d <= hi)).then(e + (q - d))
            .otherwise(e))


def round_to(x: Fx, scale: int, mode: Rounding = "half_up") -> Fx:
    """x rounded to `scale` decimals. half_up is 四舍五入 (ties away from zero, as Excel's ROUND).
    An inexact x is first snapped onto a boundary its error bound reaches (see _snap)."""
    if scale >= x.scale:
        return Fx(rescale(x, scale), "num", scale, _at(x, scale), _err_at(x, scale))
    q = 10 ** (x.scale - scale)
    e = _snap(x, q, mode)
    if x.rng is not None and x.rng[0] >= 0 and mode in ("down", "up", "half_up"):  # never negative: no sign
        mode = "floor" if mode == "down" else "ceiling" if mode == "up" else mode
        if mode == "half_up":
            r = (e + q // 2) // q
            return Fx(r, "num", scale, (x.rng[0] // q - 1, x.rng[1] // q + 1), (0, 0) if x.err is not None else None)
    match mode:
        case "floor":
            r = e // q
        case "ceiling":
            r = -((-e) // q)
        case "down":
            r = (e.abs() // q) * e.sign()
        case "up":
            r = ((e.abs() + (q - 1)) // q) * e.sign()
        case "half_up":
            r = ((e.abs() + q // 2) // q) * e.sign()
        case "half_even":
            fl, rem = e // q, e % q
            up = (rem * 2 > q) | ((rem * 2 == q) & (fl % 2 != 0))
            r = fl + up.cast(pl.Int64)
    rng = None if x.rng is None else (x.rng[0] // q - 1, x.rng[1] // q + 1)
    return Fx(r, "num", scale, rng, (0, 0) if x.err is not None else None)


def floor_to(x: Fx, scale: int) -> Fx:
    """x at fewer decimals, floored, keeping track of the error (an internal step, not a published rounding)."""
    if scale >= x.scale:
        return Fx(rescale(x, scale), "num", scale, _at(x, scale), _err_at(x, scale))
    q = 10 ** (x.scale - scale)
    rng = None if x.rng is None else (x.rng[0] // q - 1, x.rng[1] // q + 1)
    return Fx(x.expr // q, "num", scale, rng, _err_floor_div(x.err, q))


def clamp(x: Fx, lo: Fx | None = None, hi: Fx | None = None) -> Fx:
    parts = [x] + [b for b in (lo, hi) if b is not None]
    s, exprs = align(*parts)
    e = exprs[0]
    i = 1
    if lo is not None:
        e = pl.max_horizontal(e, exprs[i])
        i += 1
    if hi is not None:
        e = pl.min_horizontal(e, exprs[i])
    rx, rl, rh = _at(x, s), (_at(lo, s) if lo is not None else None), (_at(hi, s) if hi is not None else None)
    low = max(rx[0], rl[0]) if rx and rl else (rl[0] if rl else (rx[0] if rx else None))
    high = min(rx[1], rh[1]) if rx and rh else (rh[1] if rh else (rx[1] if rx else None))
    rng = (low, high) if low is not None and high is not None else None
    err = _err_at(x, s)  # a clamped value is exact; unclamped keeps x's error (a safe bound either way)
    if all(b.expr.meta.is_literal() for b in (lo, hi) if b is not None):
        # constant bounds: a bound x's range keeps is left out; the others by when/then, which keeps nulls as
        # `clip` does, at a third of its cost
        c = exprs[0]
        if lo is not None and not (rx and rl and rx[0] >= rl[1]):
            c = pl.when(c < exprs[1]).then(exprs[1]).otherwise(c)
        if hi is not None and not (rx and rh and rx[1] <= rh[0]):
            c = pl.when(c > exprs[-1]).then(exprs[-1]).otherwise(c)
        return Fx(c, "num", s, rng, err)
    return Fx(pl.when(exprs[0].is_not_null()).then(e), "num", s, rng, err)  # *_horizontal skip nulls


def compare(op: str, a: Fx, b: Fx) -> Fx:
    if a.type == "num":
        _, (x, y) = align(a, b)
    else:
        x, y = a.expr, b.expr
    ops: dict[str, Callable[[pl.Expr, pl.Expr], pl.Expr]] = {
        "==": lambda p, q: p == q, "!=": lambda p, q: p != q, "<": lambda p, q: p < q,
        "<=": lambda p, q: p <= q, ">": lambda p, q: p > q, ">=": lambda p, q: p >= q,
    }
    return Fx(ops[op](x, y), "bool")


def when(cond: Fx, then: Fx, other: Fx) -> Fx:
    if then.type != "num":
        return Fx(pl.when(cond.expr).then(then.expr).otherwise(other.expr), then.type)
    s, (x, y) = align(then, other)
    return Fx(pl.when(cond.expr).then(x).otherwise(y), "num", s, _hull(_at(then, s), _at(other, s)),
              _err_hull(_err_at(then, s), _err_at(other, s)))


Resolver = Callable[[E.Name | E.Ref], Fx]


def compile_expr(node: E.Node, resolve: Resolver) -> Fx:  # noqa: C901 - one case per node kind
    """The expression tree as a Polars fixed-point expression; names come from `resolve`."""

    def c(n: E.Node) -> Fx:
        return compile_expr(n, resolve)

    match node:
        case E.Num(value=v):
            return num(v)
        case E.Str(value=v):
            return Fx(pl.lit(v, dtype=pl.String), "str")
        case E.Bool(value=v):
            return Fx(pl.lit(v, dtype=pl.Boolean), "bool")
        case E.Name() | E.Ref():
            return resolve(node)
        case E.Unary(op="-", operand=a):
            x = c(a)
            return Fx(-x.expr, "num", x.scale, None if x.rng is None else (-x.rng[1], -x.rng[0]),
                      None if x.err is None else (x.err[1], x.err[0]))
        case E.Unary(operand=a):
            return Fx(~c(a).expr, "bool")
        case E.Bin(op="+", left=a, right=b):
            return add(c(a), c(b))
        case E.Bin(op="-", left=a, right=b):
            return add(c(a), c(b), -1)
        case E.Bin(op="*", left=a, right=b):
            return mul(c(a), c(b))
        case E.Bin(left=a, right=b):
            return div(c(a), c(b))
        case E.Cmp(op=op, left=a, right=b):
            return compare(op, c(a), c(b))
        case E.BoolOp(op=op, values=vs):
            exprs = [c(v).expr for v in vs]
            return Fx(pl.all_horizontal(exprs) if op == "and" else pl.any_horizontal(exprs), "bool")
        case E.In(value=v, options=opts, negate=neg):
            x = c(v)
            if x.type == "num":
                vals = [int(o.value.scaleb(x.scale)) for o in opts if isinstance(o, E.Num)]
                e = x.expr.is_in(pl.Series(vals, dtype=pl.Int64).implode())
            else:
                e = x.expr.is_in([o.value for o in opts])
            return Fx(~e if neg else e, "bool")
        case E.IfElse(cond=cond, then=t, other=o):
            return when(c(cond), c(t), c(o))
        case E.Call(fn=fn, args=args):
            return _call(fn, [c(a) for a in args])
    raise TypeError(f"cannot compile {node!r}")


def _call(fn: str, xs: list[Fx]) -> Fx:
    match fn:
        case "min" | "max":
            s, es = align(*xs)
            return Fx(pl.min_horizontal(es) if fn == "min" else pl.max_horizontal(es), "num", s,
                      _hull(*[_at(x, s) for x in xs]), _err_hull(*[_err_at(x, s) for x in xs]))
        case "abs":
            return Fx(xs[0].expr.abs(), "num", xs[0].scale, err=None if xs[0].err is None else
                      (max(xs[0].err), max(xs[0].err)))
        case "is_null":
            return Fx(xs[0].expr.is_null(), "bool")
        case "if_null":
            if xs[0].type != "num":
                return Fx(xs[0].expr.fill_null(xs[1].expr), xs[0].type)
            s, (x, d) = align(*xs)
            return Fx(x.fill_null(d), "num", s, _hull(_at(xs[0], s), _at(xs[1], s)),
                      _err_hull(_err_at(xs[0], s), _err_at(xs[1], s)))
        case "count_true":
            return Fx(pl.sum_horizontal([x.expr.cast(pl.Int64) for x in xs], ignore_nulls=False), "num", 0,
                      (0, len(xs)))
        case "mean":
            s, es = align(*xs)
            h = _hull(*[_at(x, s) for x in xs])
            total = Fx(pl.sum_horizontal(es), "num", s, None if h is None else (h[0] * len(xs), h[1] * len(xs)),
                       err_sum(*[_err_at(x, s) for x in xs]))
            n = Fx(pl.sum_horizontal([e.is_not_null().cast(pl.Int64) for e in es]), "num", 0, (1, len(xs)))
            return div(total, n)
    raise TypeError(f"unknown function {fn}")
