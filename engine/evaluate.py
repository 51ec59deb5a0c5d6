"""evaluate: one lazy Polars plan over all units: items -> sections -> pools -> total.

The result is a wide frame, one row per unit, all scores exact scaled Int64:
  v.<item>   the item's input value (at the value's own scale, see Plan.value_scale)
  i.<item>   the item's points at ITEM_SCALE decimals (unrounded, exact)
  r.<sec>    a section's raw sum (ITEM_SCALE), s.<sec> its rounded, clamped subtotal (precision)
  p.<pool>   a pool's rounded, clamped points (precision)
  total      the total at the scheme's precision
`findings` turns it into the long frame (one row per unit x item) that explain filters.

Order of operations (documented in docs/scheme-format.md): item points are exact and not
rounded; a section is round(sum of its items + its child sections + its event points),
then clamped to [floor, max]; a pool likewise; total = round(sum of weight x section x
coefficient + pools), then clamped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import polars as pl

from . import fixed as F
from .errors import KaoheError, Loc, Problem
from .expr import Expr, Name, Ref
from .fixed import Fx
from .fmt import fixed_str
from .methods import METHODS, Ctx
from .model import Item, Pool, Scheme, Section

ITEM_SCALE = 10
EVENT_SCALE = 6  # scale of event-rule points (engine.events)
MAX_LISTED = 30


@dataclass(frozen=True)
class Plan:
    scheme: Scheme
    value_scale: Mapping[str, int] = field(default_factory=dict)  # item id -> scale of v.<item>

    @property
    def precision(self) -> int:
        return self.scheme.meta.precision


Ranges = Mapping[str, tuple[int, int]]


def field_ranges(scheme: Scheme, units: pl.DataFrame) -> dict[str, tuple[int, int]]:
    """The scaled min and max of every number field in the data (lets arithmetic stay in Int64)."""
    nums = [f.id for f in scheme.fields.values() if f.type in ("int", "decimal") and f.id in units.columns]
    if not nums or units.height == 0:
        return {}
    row = units.select([pl.col(c).min().alias(f"{c}.lo") for c in nums]
                       + [pl.col(c).max().alias(f"{c}.hi") for c in nums]).row(0, named=True)
    return {c: (row[f"{c}.lo"], row[f"{c}.hi"]) for c in nums if row[f"{c}.lo"] is not None}


def _field_resolver(scheme: Scheme, ranges: Ranges | None = None) -> F.Resolver:
    def resolve(node: Name | Ref) -> Fx:
        if isinstance(node, Ref):
            raise KeyError(node.key)
        f = scheme.fields[node.id]
        return Fx(pl.col(node.id), f.kind, f.scale, (ranges or {}).get(node.id))

    return resolve


def _applies(types: tuple[str, ...] | None) -> pl.Expr:
    return pl.lit(True) if types is None else pl.col("unit_type").is_in(list(types))


def _only(types: tuple[str, ...] | None, e: pl.Expr) -> pl.Expr:
    """e for the unit types in scope, null for the others (e itself when every type is in scope)."""
    return e if types is None else pl.when(_applies(types)).then(e)


def _scope(*chain: tuple[str, ...] | None) -> tuple[str, ...] | None:
    out: set[str] | None = None
    for t in chain:
        if t is not None:
            out = set(t) if out is None else out & set(t)
    return None if out is None else tuple(sorted(out))


def item_exprs(scheme: Scheme, item: Item, scope: tuple[str, ...] | None, ranges: Ranges | None = None,
               errs: dict[str, F.Err] | None = None, rngs: dict[str, F.Range] | None = None
               ) -> tuple[list[pl.Expr], int]:
    """([v.<item>, i.<item>, and n.<item> (not applicable) when declared], value scale) for one item.
    `errs` receives the item's error bound at ITEM_SCALE (see engine.fixed.Fx.err)."""
    resolve = _field_resolver(scheme, ranges)

    def compile_(e: Expr) -> Fx:
        return F.compile_expr(e.tree, resolve)

    spec = METHODS[item.method.kind]
    value = compile_(item.value) if item.value is not None else None
    applies = _applies(_scope(scope, item.applies_to))
    within = item.method.params.get("within") or ()
    group = tuple(pl.col("unit_type" if g in (scheme.columns.type, "unit_type") else g) for g in within)
    pts_fx = F.num(item.points) if item.points is not None else F.num(0)
    ctx = Ctx(value, pts_fx, item.method.params, item.value, compile_, group, applies)
    pts = spec.build(ctx)
    if item.min is not None or item.max is not None:
        pts = F.clamp(pts, F.num(item.min) if item.min is not None else None,
                      F.num(item.max) if item.max is not None else None)
    at_item = F.floor_to(pts, ITEM_SCALE)  # unrounded points, kept to ITEM_SCALE decimals with their error
    if errs is not None:
        errs[item.id] = at_item.err
    rng = at_item.rng
    pts_e = at_item.expr
    if value is not None and not spec.keeps_nulls:  # a missing value never scores: it is an error unless
        pts_e = pl.when(value.expr.is_not_null()).then(pts_e)  # declared not applicable
    na = item.not_applicable
    if na is not None:
        cond = compile_(na.when).expr.fill_null(False) if na.when else (
            value.expr.is_null() if value is not None else pl.lit(False))
        na_pts = (na.points if isinstance(na.points, Decimal)
                  else (item.points or Decimal(0)) if na.points == "full" else Decimal(0))
        pts_e = pl.when(cond).then(F.rescale(F.num(na_pts), ITEM_SCALE)).otherwise(pts_e)
        v = int(na_pts.scaleb(ITEM_SCALE))
        rng = None if rng is None else (min(rng[0], v), max(rng[1], v))
        extra = [(cond & applies).alias(f"n.{item.id}")]
    else:
        extra = []
    in_scope = _scope(scope, item.applies_to)
    if rngs is not None:
        rngs[item.id] = rng
    value_e = (value.expr if value is not None else pl.lit(None, dtype=pl.Int64))
    return [_only(in_scope, value_e).alias(f"v.{item.id}"), _only(in_scope, pts_e).alias(f"i.{item.id}"), *extra], \
        (value.scale if value is not None else 0)


Part = tuple[pl.Expr, F.Err, F.Range]  # a term of a section's or pool's sum: its error bound and its range


def _raw_sum(parts: list[Part]) -> tuple[pl.Expr, F.Err, F.Range]:
    """The unrounded sum of parts (ITEM_SCALE), its error bound and its range (a missing part adds 0)."""
    exprs = [e for e, _, _ in parts]
    rngs = [_with_zero(r) for _, _, r in parts]
    rng = None if any(r is None for r in rngs) else (sum(r[0] for r in rngs if r), sum(r[1] for r in rngs if r))
    return (pl.sum_horizontal(exprs) if exprs else pl.lit(0, dtype=pl.Int64),
            F.err_sum(*[err for _, err, _ in parts]) if parts else (0, 0), rng)


def _with_zero(r: F.Range) -> F.Range:
    return None if r is None else (min(r[0], 0), max(r[1], 0))


def _rounded(raw_col: str, err: F.Err, rng: F.Range, scheme: Scheme, lo: Decimal | None, hi: Decimal | None) -> Fx:
    """round(the raw sum in `raw_col`) at the scheme's precision, clamped; its error bound lets a sum of
    repeating quotients that is exactly on a half-cent round as the exact value does (fixed._snap). A known
    range (a sum that is never negative) lets the rounding take its shorter form."""
    raw = Fx(pl.col(raw_col), "num", ITEM_SCALE, rng, err)
    out = F.round_to(raw, scheme.meta.precision, scheme.meta.rounding)
    return F.clamp(out, F.num(lo) if lo is not None else None, F.num(hi) if hi is not None else None) \
        if (lo is not None or hi is not None) else out


def _up(col: str, scale: int) -> pl.Expr:
    k: int = 10 ** (ITEM_SCALE - scale)
    return pl.col(col) * k


def _with_events(scheme: Scheme, units: pl.LazyFrame, adjustments: pl.LazyFrame | None
                 ) -> tuple[pl.LazyFrame, dict[str, str]]:
    """Each unit's event points per section and pool (e.<target>, 0 when none); target -> column."""
    if adjustments is None:
        return units, {}
    targets = [f"section:{s.id}" for s in scheme.all_sections()] + [f"pool:{q.id}" for q in scheme.pools]
    agg = adjustments.group_by("unit_id").agg(
        [pl.col("points").filter(pl.col("target") == t).sum().alias(f"e.{t}") for t in targets])
    units = units.join(agg, on="unit_id", how="left", maintain_order="left").with_columns(
        [pl.col(f"e.{t}").fill_null(0) for t in targets])
    return units, {t: f"e.{t}" for t in targets}


def build_plan(scheme: Scheme, units: pl.LazyFrame, adjustments: pl.LazyFrame | None = None, *,
               keep: frozenset[str] = frozenset(), ranges: Ranges | None = None) -> tuple[Plan, pl.LazyFrame]:
    """The whole scoring as one lazy query over `units` (validated, fixed-point).

    Items in `keep` are not recomputed: their v./i. columns are taken from `units` as they are
    (the gap solver keeps cross-unit items at their baseline points)."""
    p = scheme.meta.precision
    value_scale: dict[str, int] = {}
    errs: dict[str, F.Err] = {}
    rngs: dict[str, F.Range] = {}  # items' and (at precision) sections' and pools' ranges
    stages: list[list[pl.Expr]] = [[]]
    raws: list[list[pl.Expr]] = [[]]  # raw sums r.<section>, a stage before their rounding (computed once)
    units, event_cols = _with_events(scheme, units, adjustments)

    def visit(sec: Section, scope: tuple[str, ...] | None, depth: int) -> None:
        scope = _scope(scope, sec.applies_to)
        while len(stages) <= depth + 1:
            stages.append([])
            raws.append([])
        parts: list[Part] = []
        for it in sec.items:
            parts.append(_item_part(it, scope))
        for ch in sec.children:
            visit(ch, scope, depth + 1)
            parts.append((_up(f"s.{ch.id}", p), (0, 0), _scaled(rngs[f"s.{ch.id}"], ITEM_SCALE - p)))
        if f"section:{sec.id}" in event_cols:
            parts.append((_up(event_cols[f"section:{sec.id}"], EVENT_SCALE), (0, 0), None))
        raw, err, rng = _raw_sum(parts)
        raws[depth + 1].append(raw.alias(f"r.{sec.id}"))
        sub = _rounded(f"r.{sec.id}", err, rng, scheme, sec.floor, sec.max)
        rngs[f"s.{sec.id}"] = sub.rng
        stages[depth + 1].append(_only(scope, sub.expr).alias(f"s.{sec.id}"))

    def _item_part(it: Item, scope: tuple[str, ...] | None) -> Part:
        exprs, value_scale[it.id] = item_exprs(scheme, it, scope, ranges, errs, rngs)
        if it.id not in keep:
            stages[0].extend(exprs)
        return pl.col(f"i.{it.id}"), errs[it.id], rngs[it.id] if it.id not in keep else None

    for sec in scheme.sections:
        visit(sec, None, 0)
    section_stages = [stages[0]]
    for raw_stage, stage in zip(reversed(raws[1:]), reversed(stages[1:]), strict=True):  # children first
        section_stages += [raw_stage, stage]
    pool_exprs, pool_raws = [], []
    for pool in scheme.pools:
        parts = [_item_part(it, pool.applies_to) for it in pool.items]
        if f"pool:{pool.id}" in event_cols:
            parts.append((_up(event_cols[f"pool:{pool.id}"], EVENT_SCALE), (0, 0), None))
        raw, err, rng = _raw_sum(parts)
        pool_raws.append(raw.alias(f"r.{pool.id}"))
        sub = _rounded(f"r.{pool.id}", err, rng, scheme, pool.floor, pool.max)
        rngs[f"p.{pool.id}"] = sub.rng
        pool_exprs.append(_only(pool.applies_to, sub.expr).alias(f"p.{pool.id}"))
    lf = units
    for exprs in [*section_stages, pool_raws, pool_exprs]:
        if exprs:
            lf = lf.with_columns(exprs)
    lf = lf.with_columns(_total(scheme, rngs).alias("total"))
    return Plan(scheme, value_scale), lf


def _scaled(r: F.Range, k: int) -> F.Range:
    return None if r is None else (r[0] * 10**k, r[1] * 10**k)


def _total(scheme: Scheme, rngs: Mapping[str, F.Range]) -> pl.Expr:
    p = scheme.meta.precision
    weighted: Fx | None = None
    for sec in scheme.sections:
        s = Fx(pl.col(f"s.{sec.id}").fill_null(0), "num", p, _with_zero(rngs.get(f"s.{sec.id}")))
        term = F.mul(s, F.num(sec.weight))
        weighted = term if weighted is None else F.add(weighted, term)
    acc = weighted or F.num(0)
    if scheme.total.coefficient is not None:
        acc = F.mul(acc, F.compile_expr(scheme.total.coefficient.tree, _field_resolver(scheme)))
    for pool in scheme.pools:
        acc = F.add(acc, Fx(pl.col(f"p.{pool.id}").fill_null(0), "num", p, _with_zero(rngs.get(f"p.{pool.id}"))))
    out = F.round_to(acc, p, scheme.meta.rounding)
    t = scheme.total
    if t.max is not None or t.floor is not None:
        out = F.clamp(out, F.num(t.floor) if t.floor is not None else None, F.num(t.max) if t.max is not None else None)
    return F.rescale(out, p) if out.scale < p else out.expr


def _checks(plan: Plan) -> list[tuple[Item, str, pl.Expr]]:
    """Problems only the evaluation can see: items with no value, assessed values outside their range."""
    checks: list[tuple[Item, str, pl.Expr]] = []
    for item in plan.scheme.all_items():
        missing = pl.col(f"i.{item.id}").is_null() & _applies(_item_scope(plan.scheme, item))
        checks.append((item, "missing", missing))
        if item.method.kind == "assessed":
            lo, hi = item.method.params["min"], item.method.params["max"]
            v = Fx(pl.col(f"v.{item.id}"), "num", plan.value_scale[item.id])
            checks.append((item, "range", (F.compare("<", v, F.num(lo)).expr | F.compare(">", v, F.num(hi)).expr)
                           .fill_null(False)))
    return checks


def _describe(plan: Plan, scored: pl.LazyFrame, failing: list[tuple[Item, str, pl.Expr]], path: str) -> list[Problem]:
    out: list[Problem] = []
    for item, kind, mask in failing:
        field_name = next(iter(sorted(item.value.names())), item.id) if item.value else item.id
        bad = scored.filter(mask).select("_row", "unit_id", "name", f"v.{item.id}").head(MAX_LISTED + 1).collect()
        n = scored.select(mask.sum()).collect().item()
        if kind == "range":
            lo, hi = item.method.params["min"], item.method.params["max"]
            s = plan.value_scale[item.id]

            def outside(r: dict[str, Any], it: Item = item, s: int = s, lo: Any = lo, hi: Any = hi) -> str:
                return (f"unit {r['unit_id']} ({r['name']}): {it.label} is {fixed_str(r[f'v.{it.id}'], s)}, "
                        f"outside the declared range {lo}..{hi}")

            out += _listed(bad, n, path, field_name, outside, "correct the assessed value")
        else:
            def unscored(r: dict[str, Any], it: Item = item) -> str:
                return (f"unit {r['unit_id']} ({r['name']}): item '{it.id}' ({it.label}) cannot be scored: "
                        f"a value it uses is empty or a division by zero")

            out += _listed(bad, n, path, field_name, unscored,
                           "fill in the data, or declare 'not_applicable' for this item in the scheme")
    return out


def _item_scope(scheme: Scheme, item: Item) -> tuple[str, ...] | None:
    by_id = {s.id: s for s in scheme.all_sections()}
    pools = {q.id: q for q in scheme.pools}
    chain: list[tuple[str, ...] | None] = [item.applies_to]
    node: Section | Pool | None = by_id.get(item.parent) or pools.get(item.parent)
    while node is not None:
        chain.append(node.applies_to)
        node = by_id.get(node.parent) if isinstance(node, Section) and node.parent else None
    return _scope(*chain)


def _listed(bad: pl.DataFrame, n: int, path: str, column: str, msg: Callable[[dict[str, Any]], str],
            hint: str) -> list[Problem]:
    out = [Problem(Loc(path, row=r["_row"], column=column), msg(r), hint=hint)
           for r in bad.head(MAX_LISTED).iter_rows(named=True)]
    if n > MAX_LISTED:
        out.append(Problem(Loc(path, column=column), f"... and {n - MAX_LISTED} more units like these",
                           more=n - MAX_LISTED))
    return out


def evaluate(scheme: Scheme, units: pl.DataFrame, *, path: str, adjustments: pl.DataFrame | None = None,
             detail: bool = True, keep: frozenset[str] = frozenset()) -> tuple[Plan, pl.DataFrame]:
    """Score every unit; raise KaoheError if any unit cannot be scored exactly.

    With detail=False the result holds the input columns, section, pool and total scores and only the
    item columns named in `keep` (what decisions read): the findings columns are not materialised. The
    data checks are computed in the same pass either way (collect_all shares the common plan)."""
    plan, lf = build_plan(scheme, units.lazy(), adjustments.lazy() if adjustments is not None else None,
                          ranges=field_ranges(scheme, units))
    checks = _checks(plan)
    main = lf
    if not detail:
        main = lf.select(pl.col(c) for c in lf.collect_schema().names()
                         if not c.startswith(("v.", "i.", "n.", "r.", "e.")) or c in keep)
    counts = lf.select([m.sum().alias(str(n)) for n, (_, _, m) in enumerate(checks)] or [pl.lit(0).alias("0")])
    try:
        scored, found = pl.collect_all([main, counts])
    except pl.exceptions.InvalidOperationError as e:  # strict cast: a product outside Int64
        raise KaoheError([Problem(Loc(path), f"a value is too large to score exactly ({e})".splitlines()[0],
                                  hint="check the data for values with misplaced decimal points")]) from None
    # strict=False: with no checks `counts` still holds one placeholder column
    failing = [c for c, n in zip(checks, found.row(0), strict=False) if n]
    if failing:
        raise KaoheError(_describe(plan, lf, failing, path))
    return plan, scored
