"""gap: for every unit and every grade or award it does not reach, the smallest change of each single
field (in the field's own unit: 万元, 个, %) that reaches it, all other data unchanged.

Scores are piecewise (bands, steps, caps), so the solver does not root-find: it searches the field's
exact decimal grid (binary search over whole multiples of 10^-scale), which lands exactly on band
edges. It is vectorised: every (unit, target, field, direction) is one row of a batch that the
ordinary scoring plan evaluates once per search step. It respects caps (a capped item cannot buy more),
declared field bounds (hazards_fixed <= hazards_found), vetoes (a veto cannot be bought back: said so)
and quotas (reaching a full award means passing its last recommended unit on the rank_by chain).
Levers are the number, yes/no and class fields the unit's items use, except annual targets
(`target: true`), fields that bound another field (hazards_found) and fields marked `lever: false`.
Cross-unit items (rank, share_of_leader, efficacy) keep their baseline points.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import polars as pl

from . import fixed as F
from .decide import award_reads_rank, base_grade, passed_down, resolver
from .evaluate import _item_scope, build_plan, field_ranges
from .expr import Expr
from .fmt import Lang, fixed_str, in_lang
from .methods import METHODS
from .model import Field, Scheme
from .pipeline import Loaded, Run
from .report_cols import fixed_text
from .rules_model import Decisions, SortKey

MAX_STEPS = 64
MAX_PROBES = 15  # steps tried at once per search and round (see _bisect)


@dataclass(frozen=True)
class Target:
    key: str  # grade:excellent | award:safety_advanced
    label: str
    cond: Expr | None  # eligibility beyond the quota (None: total >= min only)
    min_total: Decimal | None
    inclusive: bool
    keys: tuple[SortKey, ...]  # the chain to beat at a full quota
    boundary: dict[str, tuple[Any, ...]]  # group -> key tuple of the last unit in (only when full)
    per_type: bool


def levers(scheme: Scheme, dec: Decisions | None = None) -> dict[str, set[str]]:
    """unit type -> the fields its items use that a unit can change; and, with `dec`, the fields the grades'
    and awards' conditions read (a grade held back by `when: safe_checks >= 2` needs that field moved)."""
    bounds = {b for f in scheme.fields.values() for b in (f.min, f.max) if isinstance(b, str)}
    out: dict[str, set[str]] = {t: set() for t in scheme.unit_types}
    conds = [(g.when, ()) for g in dec.grades] + [(a.eligible, a.applies_to) for a in dec.awards] if dec else []
    for cond, scope in conds:
        read = {n for n in cond.names() if _lever(scheme, n, bounds)} if cond is not None else set()
        for t in scope or scheme.unit_types:
            out[t] |= read
    for it in scheme.all_items():
        if METHODS[it.method.kind].window:
            continue
        names: set[str] = set()
        for e in (it.value, it.not_applicable.when if it.not_applicable else None, *it.method.params.values()):
            for x in (e if isinstance(e, tuple) else (e,)):
                if isinstance(x, Expr):
                    names |= x.names()
        scope = _item_scope(scheme, it) or tuple(scheme.unit_types)
        for t in scope:
            out[t] |= {n for n in names if _lever(scheme, n, bounds)}
    return out


def _lever(scheme: Scheme, name: str, bounds: set[str]) -> bool:
    """A field a unit can change: not a target, not another field's bound, not declared `lever: false`."""
    return name in scheme.fields and not scheme.fields[name].target and name not in bounds and \
        scheme.raw.get("fields", {}).get(name, {}).get("lever", True) is not False


def _key_exprs(scheme: Scheme, keys: tuple[SortKey, ...]) -> list[pl.Expr]:
    res = resolver(scheme)
    return [pl.col("_id_key") if k.expr.source == "unit_id" else F.compile_expr(k.expr.tree, res).expr for k in keys]


def _beats(scheme: Scheme, t: Target, group: str) -> pl.Expr:
    b = t.boundary.get(group)
    if b is None:
        return pl.lit(True)
    out = pl.lit(False)
    equal = pl.lit(True)
    for k, e, v in zip(t.keys, _key_exprs(scheme, t.keys), b, strict=True):
        better = (e > pl.lit(v)) if k.descending else (e < pl.lit(v))
        out = out | (equal & better.fill_null(False))
        equal = equal & (e == pl.lit(v)).fill_null(False)
    return out


def targets(run: Run) -> list[Target]:
    s, d = run.scheme, run.decisions
    frame = run.frame
    out = []
    for g in d.grades[:-1]:
        bound: dict[str, tuple[Any, ...]] = {}
        if g.quota is not None:
            per = g.quota.per == "unit_type"
            for grp, sub in (frame.group_by("unit_type") if per else [(("all",), frame)]):
                holders = sub.filter(pl.col("grade") == g.id).sort("order_all")
                size = g.quota.size(sub.height)
                if size == 0:  # no place at all (30% of 3 units, floored): nothing reaches it
                    bound[grp[0] if per else "all"] = tuple(None for _ in d.ranking.by)
                elif holders.height >= size:
                    last = holders.tail(1).select(_key_exprs(s, d.ranking.by)).row(0)
                    bound[grp[0] if per else "all"] = last
        out.append(Target(f"grade:{g.id}", g.label, g.when, g.min, g.inclusive, d.ranking.by, bound,
                          g.quota is not None and g.quota.per == "unit_type"))
    for a in d.awards:
        pre = f"a.{a.id}"
        per = a.quota is not None and a.quota.per == "unit_type"
        bound = {}
        for grp, sub in (frame.group_by("unit_type") if per else [(("all",), frame)]):
            sel = sub.filter(pl.col(pre).is_in(["recommended", "tie_flag"])).sort(pre + ".pos")
            q = sub.get_column(pre + ".quota")[0]
            if sel.height and q is not None and sel.height >= q:
                bound[grp[0] if per else "all"] = sel.tail(1).select(_key_exprs(s, a.rank_by)).row(0)
            elif q == 0:
                bound[grp[0] if per else "all"] = tuple(None for _ in a.rank_by)
        out.append(Target(f"award:{a.id}", a.label, a.eligible, a.min_score, True, a.rank_by, bound, per))
    return out


def _reached(scheme: Scheme, run: Run, t: Target) -> pl.Expr:
    """Does a scored and graded unit reach target t?"""
    p = scheme.meta.precision
    ok = pl.lit(True)
    if t.min_total is not None:
        lim = pl.lit(int(t.min_total.scaleb(p)))
        ok = ok & ((pl.col("total") >= lim) if t.inclusive else (pl.col("total") > lim))
    if t.cond is not None:
        ok = ok & F.compile_expr(t.cond.tree, resolver(scheme)).expr.fill_null(False)
    if t.key.startswith("award:"):
        award = next(a for a in run.decisions.awards if a.id == t.key[6:])
        if award.applies_to:
            ok = ok & pl.col("unit_type").is_in(list(award.applies_to))
    return ok & _beats_group(scheme, t)


def _beats_group(scheme: Scheme, t: Target) -> pl.Expr:
    """At a full quota the unit must pass the last unit in, in its group; elsewhere nothing to pass."""
    group = pl.col("unit_type") if t.per_type else pl.lit("all")
    out: pl.Expr = pl.lit(True)
    for g in t.boundary:
        out = pl.when(group == g).then(_beats(scheme, t, g)).otherwise(out)
    return out


def _with_grade(run: Run, ts: list[Target], scored: pl.LazyFrame) -> pl.LazyFrame:
    """The grade a candidate would get, as decide gives it: by its total, the grades' conditions and the
    unit's veto caps (its x.<veto>, joined in `solve`), then passed down where a full quota is not beaten."""
    gs = run.decisions.grades
    res = resolver(run.scheme)  # the grades' conditions, as decide reads them (unknown is not met)
    scored = scored.with_columns(F.compile_expr(gr.when.tree, res).expr.alias(f"gw.{gr.id}")
                                 for gr in gs if gr.when is not None)
    scored = scored.with_columns(base_grade(run.decisions, run.scheme).cast(pl.String).alias("grade"))
    by_key = {t.key: t for t in ts}
    for i, gr in enumerate(gs[:-1]):
        t = by_key[f"grade:{gr.id}"]
        if t.boundary:
            scored = scored.with_columns(pl.when((pl.col("grade") == gr.id) & ~_beats_group(run.scheme, t))
                                         .then(passed_down(gs, i).cast(pl.String)).otherwise(pl.col("grade"))
                                         .alias("grade"))
    return scored


@dataclass(frozen=True)
class Change:
    unit_id: str
    target: str
    status: str  # reached | vetoed | solved | no_single_change | by_rank
    field: str = ""
    before: str = ""
    after: str = ""
    delta: str = ""
    note: str = ""


Wanted = Callable[[int], bool]  # keep a target so many grades above the unit's own? (0: an award)


def _open_targets(run: Run, ts: list[Target], unit_ids: set[str] | None, wanted: Wanted | None = None
                  ) -> pl.DataFrame:
    """Every grade above the unit's own and every award it does not hold (those `wanted` keeps), in the
    frame's unit order and then `ts` order: _u (unit), _t (target key), _st (open, or vetoed:<the vetoes'
    labels>) and _above (how many grades above the unit's own; 0 for an award)."""
    d = run.decisions
    grade_rank = {g.id: i for i, g in enumerate(d.grades)}
    rank = pl.col("grade").cast(pl.String).replace_strict(grade_rank, default=None, return_dtype=pl.Int64)
    frame = run.frame.select(
        pl.col("unit_id").cast(pl.String).alias("_u"), rank.fill_null(99).alias("_g"),  # no grade: below every one
        *[pl.col(f"x.{v.id}") for v in d.vetoes],
        *[pl.col(f"a.{t.key[6:]}") for t in ts if t.key.startswith("award:")]).with_row_index("_r")
    if unit_ids is not None:
        frame = frame.filter(pl.col("_u").is_in(list(unit_ids)))
    parts = []
    for i, t in enumerate(ts):
        kind, tid = t.key.split(":", 1)
        if kind == "grade":
            above: pl.Expr = pl.col("_g") - grade_rank[tid]
            held = above <= 0
            blocked = [v for v in d.vetoes if v.grade is not None and grade_rank[v.grade] > grade_rank[tid]]  # below
        else:
            above = pl.lit(0, dtype=pl.Int64)
            held = pl.col(f"a.{tid}").cast(pl.String).is_in(["recommended", "not_applicable"]).fill_null(False)
            blocked = [v for v in d.vetoes if v.blocks == "all" or tid in v.blocks]
        labels = pl.concat_str([pl.when(pl.col(f"x.{v.id}")).then(pl.lit(v.label)) for v in blocked],
                               separator="、", ignore_nulls=True) if blocked else pl.lit(None, dtype=pl.String)
        # an award read from ranks (places gained) is not searched: one unit's change moves the others' ranks too
        by_rank = kind == "award" and award_reads_rank(t.cond, t.keys)
        status = pl.when(labels.fill_null("") == "").then(pl.lit("by_rank" if by_rank else "open")) \
            .otherwise("vetoed:" + labels)
        parts.append(frame.filter(~held).select("_r", "_u", _i=pl.lit(i), _t=pl.lit(t.key), _st=status, _above=above))
    out = pl.concat(parts).sort("_r", "_i").drop("_r", "_i")
    if wanted is not None:
        out = out.filter(pl.col("_above").is_in([a for a in out.get_column("_above").unique() if wanted(a)]))
    return out


def _unsearched(unit: str, target: str, status: str) -> Change:
    """An open target not searched: vetoed (status 'vetoed:<the vetoes' labels>') or read from ranks."""
    return Change(unit, target, "vetoed", note=status[7:]) if status.startswith("vetoed:") else \
        Change(unit, target, "by_rank")


Progress = Callable[[int, int], None]  # (steps done, steps in all)
CHUNK_ROWS = 200_000  # rows per batch, each a row of the units table: (unit, field, direction) far ends, then searches


def solve(ld: Loaded, run: Run, unit_ids: set[str] | None = None, progress: Progress | None = None,
          wanted: Wanted | None = None, then: Wanted | None = None, *, solved_only: bool = False) -> list[Change]:
    """Every open (unit, target) that `wanted` keeps: the smallest single-field change that reaches it, per
    lever field. With `then`: after those, the targets `then` keeps, for the units that no single change
    brings to a target `wanted` keeps (the same as a second solve over those units, but each search's far
    end is scored once for both). The searches run in batches of whole units, about CHUNK_ROWS at a time,
    so that memory stays bounded however many units there are (each search is a full row of the units
    table). `solved_only`: the solved changes alone, in the same order (no vetoed or unreachable targets)."""
    scheme = ld.scheme
    ts = targets(run)
    if then is None:
        opened = _open_targets(run, ts, unit_ids, wanted).with_columns(_1=pl.lit(True))
    else:
        assert wanted is not None, "then: the targets after those wanted"
        first, second = wanted, then
        opened = _open_targets(run, ts, unit_ids, lambda above: first(above) or second(above))
        opened = opened.with_columns(_1=pl.col("_above").is_in(
            [a for a in opened.get_column("_above").unique() if first(a)]))
    vetoed = opened.filter(pl.col("_st") != "open").select("_u", "_t", "_st", "_1").rows()
    rows = opened.filter(pl.col("_st") == "open")
    if not rows.height:
        return [] if solved_only else [_unsearched(u, t, st) for u, t, st, _ in vetoed]
    lev = levers(scheme, run.decisions)
    types = dict(zip(run.frame.get_column("unit_id").cast(pl.String), run.frame.get_column("unit_type"), strict=True))
    keep = frozenset(i.id for i in scheme.all_items() if METHODS[i.method.kind].window)
    capped = [f"x.{v.id}" for v in run.decisions.vetoes if v.grade is not None]  # a veto's grade cap holds too
    base = ld.units.join(run.frame.select("unit_id", *[c for c in run.frame.columns
                                                       if (c.split(".", 1)[-1] in keep and c[:2] in ("i.", "v."))
                                                       or c.startswith("ec.") or c in capped]),  # no levers
                         on="unit_id", how="left")
    adjustments = None
    if run.adjustments is not None:
        adjustments = run.adjustments.filter(pl.col("points").is_not_null()).lazy()
    # every search: (unit, target) x the (field, direction) levers of the unit's type, in that order. The
    # (unit, target) pairs are numbered (_p) and each unit's ways to move a field (_w, in its type's order);
    # field and target as Enums (the many comparisons with them below are integer ones)
    fields = pl.Enum(sorted(set().union(*lev.values())))
    ways = pl.DataFrame([(t, f, d) for t in scheme.unit_types for f in sorted(lev[t])
                         for d in _directions(scheme.fields[f])],
                        schema={"_type": pl.String, "_f": fields, "_d": pl.Int64}, orient="row").with_row_index("_w")
    pairs = rows.select("_u", pl.col("_t").cast(pl.Enum([t.key for t in ts])), "_1").with_row_index("_p")
    unit_ways = pairs.select("_u").unique(maintain_order=True) \
        .join(base.select("unit_id").with_row_index("_ui"), left_on="_u", right_on="unit_id", maintain_order="left") \
        .with_columns(_type=pl.col("_u").replace_strict(types, return_dtype=pl.String)) \
        .join(ways, on="_type", how="inner", maintain_order="left_right").drop("_type")
    room = _room(scheme, fields.categories.to_list(), base)
    # batches of whole units, each about CHUNK_ROWS ways (the rows scored)
    batches = unit_ways.with_row_index("_b").with_columns(_b=(pl.col("_b") // CHUNK_ROWS).first().over("_u")) \
        .partition_by("_b", maintain_order=True, include_key=False)
    # first which searches can reach their target at all (most cannot), batch by batch; then the binary
    # search over those that can, in batches too; one progress bar of 100 ticks a batch
    reachable: list[pl.DataFrame] = []
    for k, combos in enumerate(batches):
        if progress is not None:
            progress(100 * k, 100 * (len(batches) + 1))
        reachable.append(_reachable(scheme, run, ts, base, adjustments, keep, combos, pairs, room))
    can = pl.concat(reachable) if reachable else pl.DataFrame(schema={"_u": pl.String, "_1": pl.Boolean})
    brought = set(can.filter("_1").get_column("_u"))  # units a change brings to a target `wanted` keeps
    if then is not None:  # the targets `then` keeps, only for the units no change brings to those
        can = pl.concat([can.filter("_1"), can.filter(~pl.col("_1") & ~pl.col("_u").is_in(brought))])
    can = can.drop("_1")
    starts = range(0, can.height, CHUNK_ROWS)
    found: list[Change] = []
    for j, at in enumerate(starts):
        def step(done: int, steps: int, j: int = j) -> None:
            if progress is not None:
                progress(100 * (len(batches) + j) + 100 * done // max(steps, 1), 100 * (len(batches) + len(starts)))
        found += _bisect(scheme, run, ts, adjustments, keep, can.slice(at, CHUNK_ROWS), step)
    by_target: dict[tuple[str, str], list[Change]] = {}
    for c in found:
        by_target.setdefault((c.unit_id, c.target), []).append(c)
    changes: list[Change] = []
    found_keys = pl.DataFrame(list(by_target), schema={"_u": pl.String, "_t": pl.String}, orient="row")
    for phase in (True, False):  # as two solves would list them
        mine = rows.filter(pl.col("_1") if phase else ~pl.col("_1") & ~pl.col("_u").is_in(list(brought)))
        if solved_only:
            mine = mine.join(found_keys, on=["_u", "_t"], how="semi", maintain_order="left")
        else:
            changes += [_unsearched(u, t, st) for u, t, st, one in vetoed
                        if one is phase and (phase or u not in brought)]
        changes += [c for u, t in mine.select("_u", "_t").iter_rows()
                    for c in by_target.get((u, t)) or [Change(u, t, "no_single_change")]]
    return changes


def _directions(f: Field) -> list[int]:
    return [1] if f.type in ("bool", "str") else [1, -1]


def _bound_expr(scheme: Scheme, f: Field, which: str) -> pl.Expr | None:
    b = getattr(f, which)
    if isinstance(b, Decimal):
        return pl.lit(int(b.scaleb(f.scale)), dtype=pl.Int64)
    if isinstance(b, str):
        other = scheme.fields[b]
        up: int = 10**f.scale
        down: int = 10**other.scale
        return pl.col(b) * up // down
    return None


def _assessed_range(scheme: Scheme, f: Field) -> tuple[pl.Expr | None, pl.Expr | None]:
    """An `assessed` item whose value is the field itself bounds it by the item's declared range."""
    lo = hi = None
    for it in scheme.all_items():
        if it.method.kind == "assessed" and it.value is not None and it.value.source == f.id:
            lo = pl.lit(int(it.method.params["min"].scaleb(f.scale)), dtype=pl.Int64)
            hi = pl.lit(int(it.method.params["max"].scaleb(f.scale)), dtype=pl.Int64)
    return lo, hi


def _tighter(a: pl.Expr | None, b: pl.Expr | None, lower: bool) -> pl.Expr | None:
    if a is None or b is None:
        return a if b is None else b
    return pl.max_horizontal(a, b) if lower else pl.min_horizontal(a, b)


def _room(scheme: Scheme, levers: list[str], base: pl.DataFrame) -> tuple[pl.Expr, pl.Expr]:
    """(current value, how far the value may move in direction _d) of a search's field (`_f`, an Enum of
    `levers`) for its unit (`_ui`, a row of `base`), in the field's scaled units. Worked out once per unit and
    number field, on `base`, and stacked field by field; each search reads its own by position."""
    nums = [f for f in (scheme.fields[n] for n in levers) if f.type in ("int", "decimal")]
    if not nums:
        return pl.lit(None, dtype=pl.Int64), pl.lit(None, dtype=pl.Int64)
    parts = []
    for f in nums:
        c = pl.col(f.id)
        alo, ahi = _assessed_range(scheme, f)
        hi = _tighter(_bound_expr(scheme, f, "max"), ahi, lower=False)
        lo = _tighter(_bound_expr(scheme, f, "min"), alo, lower=True)
        wide = pl.max_horizontal(c.abs() * 10, pl.lit(10**f.scale * 1000))
        up = (hi - c) if hi is not None else wide
        down = (c - lo) if lo is not None else pl.when(c >= 0).then(c).otherwise(wide)
        parts.append(base.select(c.alias("cur"), up.alias("up"), down.alias("down")))
    stack = pl.concat(parts, how="vertical_relaxed")
    pos = {f.id: i for i, f in enumerate(nums)}
    at = pl.lit(pl.Series([pos.get(n) for n in levers], dtype=pl.Int64)).gather(pl.col("_f").to_physical()) \
        * base.height + pl.col("_ui")

    def read(col: str) -> pl.Expr:
        return pl.lit(stack.get_column(col)).gather(at)

    return read("cur"), pl.when(pl.col("_d") > 0).then(read("up")).otherwise(read("down"))


def _reachable(scheme: Scheme, run: Run, ts: list[Target], base: pl.DataFrame, adjustments: pl.LazyFrame | None,
               keep: frozenset[str], ways: pl.DataFrame, pairs: pl.DataFrame, room: tuple[pl.Expr, pl.Expr]
               ) -> pl.DataFrame:
    """The searches (each of the units' targets in `pairs` (_p, _u, _t) x each way to move a field in `ways`
    (_u, _f, _d, _w; _ui: the unit's row of `base`)) whose target the far end of the room reaches (or flipping
    a yes/no field), in the order (_p, _w), as rows of the unit's data with its value _cur and how far it may
    move _room (`room`, from `_room`). A way's far end is the same for each of the unit's targets: it is
    scored once, and every target read off that score."""
    fields = [scheme.fields[f] for f in ways.get_column("_f").unique().sort().cast(pl.String)]
    rows = pl.concat([ways, base.drop("unit_id")[ways.get_column("_ui")]], how="horizontal") \
        .with_columns(unit_id=pl.col("_u")).with_row_index("_k")
    rows = rows.with_columns(_cur=room[0], _room=room[1])
    rows = rows.filter(pl.col("_f").is_in([f.id for f in fields if f.type == "bool"]) | (pl.col("_room") > 0))
    mine = pairs.join(ways.select("_u").unique(), on="_u", how="semi")
    wanted = set(mine.get_column("_t").unique().cast(pl.String))
    reach = [t for t in ts if t.key in wanted]
    flags = _scored(scheme, run, ts, adjustments, keep, rows, pl.col("_room")) \
        .select("_k", "_u", *[_reached(scheme, run, t).alias(t.key) for t in reach]).collect()
    kinds = pairs.schema["_t"]
    hits = pl.concat([flags.filter(pl.col(t.key)).select("_k", "_u", _t=pl.lit(t.key, dtype=kinds)) for t in reach])
    return hits.join(mine, on=["_u", "_t"], how="inner").drop("_u") \
        .join(rows, on="_k", how="left").sort("_p", "_w").drop("_p", "_w", "_ui")


def _scored(scheme: Scheme, run: Run, ts: list[Target], adjustments: pl.LazyFrame | None, keep: frozenset[str],
            frame: pl.DataFrame, step: pl.Expr) -> pl.LazyFrame:
    """Each search (row of `frame`) scored and graded with its field moved by `step`, in `_k` order; lazy, so
    that only what is read of it is computed and kept."""
    fields = [scheme.fields[f] for f in frame.get_column("_f").unique().sort().cast(pl.String)]
    value = pl.col("_cur") + pl.col("_d") * step
    cand = frame.with_columns([pl.when(pl.col("_f") == f.id).then(value).otherwise(pl.col(f.id)).alias(f.id)
                               for f in fields if f.type in ("int", "decimal")] +
                              [pl.when(pl.col("_f") == f.id).then(~pl.col(f.id)).otherwise(pl.col(f.id)).alias(f.id)
                               for f in fields if f.type == "bool"])
    _, lf = build_plan(scheme, cand.lazy(), adjustments, keep=keep, ranges=field_ranges(scheme, cand))
    return _with_grade(run, ts, lf.sort("_k"))


def _reach(scheme: Scheme, run: Run, ts: list[Target], adjustments: pl.LazyFrame | None, keep: frozenset[str],
           frame: pl.DataFrame, step: pl.Expr) -> pl.Series:
    """Does each search (row of `frame`, in `_k` order) reach its target when its field moves by `step`?"""
    present = set(frame.get_column("_t").unique().cast(pl.String))
    r: pl.Expr = pl.lit(False)
    for t in ts:
        if t.key in present:
            r = pl.when(pl.col("_t") == t.key).then(_reached(scheme, run, t)).otherwise(r)
    return _scored(scheme, run, ts, adjustments, keep, frame, step).select(r.alias("r")).collect().get_column("r")


def _bisect(scheme: Scheme, run: Run, ts: list[Target], adjustments: pl.LazyFrame | None, keep: frozenset[str],
            rows: pl.DataFrame, progress: Progress | None = None) -> list[Change]:
    """The smallest step of each reachable search, on the field's decimal grid: each round tries up to
    MAX_PROBES steps evenly inside each search's open interval (lo: known not to reach, hi: known to reach),
    as many as keep a round within CHUNK_ROWS candidates, and narrows to the first that reaches. With one
    probe it is a binary search; a few searches take many probes and so few rounds (each round re-plans
    and re-scores: ~40 ms of fixed cost)."""
    rows = rows.drop("_k").with_row_index("_k").with_columns(_lo=pl.lit(0, dtype=pl.Int64),
                                                             _hi=pl.col("_room").fill_null(1))
    steps = int(rows.select(pl.col("_hi").max()).item() or 1).bit_length()  # rounds of a binary search
    lo, hi, i, st, r = pl.col("_lo"), pl.col("_hi"), pl.col("_i"), pl.col("_step"), pl.col("_r")
    for done in range(MAX_STEPS):
        if progress is not None:
            progress(min(done, steps), steps)
        active = rows.filter(hi - lo > 1)
        if active.height == 0:
            break
        n = pl.min_horizontal(pl.lit(max(1, min(MAX_PROBES, CHUNK_ROWS // active.height))), hi - lo - 1)
        probes = active.with_columns(_i=pl.int_ranges(1, n + 1)).explode("_i") \
            .with_columns(_step=lo + (hi - lo) * i // (n + 1)).rename({"_k": "_ok"}).with_row_index("_k")
        probes = probes.select("_ok", "_step", _reach(scheme, run, ts, adjustments, keep, probes, st).alias("_r"))
        first = st.filter(r).min()  # the least step that reaches; the greatest below it that does not
        upd = probes.group_by("_ok").agg(_nh=first, _nl=pl.when(first.is_null()).then(st.max())
                                         .otherwise(st.filter(~r & (st < first)).max()))
        rows = rows.join(upd, left_on="_k", right_on="_ok", how="left").with_columns(
            _hi=pl.coalesce("_nh", "_hi"), _lo=pl.coalesce("_nl", "_lo")).drop("_nh", "_nl")
    texts = rows.select("_u", "_t", "_f", *_change_texts(scheme, rows))
    return [Change(u, t, "solved", f, before, after, delta) for u, t, f, before, after, delta in texts.iter_rows()]


def _change_texts(scheme: Scheme, rows: pl.DataFrame) -> list[pl.Expr]:
    """Each solved search's value before and after, and the change (`fmt.fixed_str` at the field's scale; a
    yes/no field: 是/否 and no change), as columns: one text per distinct scale, one choice per yes/no field."""
    fields = [scheme.fields[f] for f in rows.get_column("_f").unique().cast(pl.String)]
    nums = {f.id: f.scale for f in fields if f.type != "bool"}
    flags = [f.id for f in fields if f.type == "bool"]
    scale = pl.col("_f").cast(pl.String).replace_strict(nums, default=None, return_dtype=pl.Int64)
    step = pl.col("_d") * pl.col("_hi")
    none = pl.lit(None, dtype=pl.String)
    before, after, delta = none, none, none
    for k in sorted(set(nums.values())):
        at = scale == k
        before = pl.when(at).then(fixed_text(pl.col("_cur"), k)).otherwise(before)
        after = pl.when(at).then(fixed_text(pl.col("_cur") + step, k)).otherwise(after)
        delta = pl.when(at).then(pl.when(step > 0).then(pl.lit("+")).otherwise(pl.lit("")) + fixed_text(step, k)
                                 ).otherwise(delta)
    if flags:
        value: pl.Expr = pl.lit(None, dtype=pl.Boolean)
        for f in flags:
            value = pl.when(pl.col("_f") == f).then(pl.col(f)).otherwise(value)
        flag = scale.is_null()
        yes, no = pl.lit(_yes(True)), pl.lit(_yes(False))
        before = pl.when(flag).then(pl.when(value).then(yes).otherwise(no)).otherwise(before)
        after = pl.when(flag).then(pl.when(value).then(no).otherwise(yes)).otherwise(after)
        delta = pl.when(flag).then(pl.lit("")).otherwise(delta)
    return [before.alias("_before"), after.alias("_after"), delta.alias("_delta")]


def _yes(v: Any) -> str:
    return "是" if v else "否"


def relative(c: Change) -> Decimal:
    """How big a change is, relative to where the value stands (for ordering suggestions)."""
    try:  # a yes/no or text field's change (a condition's lever) has no size: 1, as an unsized change
        before = abs(Decimal(c.before)) or Decimal(1)
        return abs(Decimal(c.delta)) / before if c.delta else Decimal(1)
    except ArithmeticError:
        return Decimal(1)


def describe(scheme: Scheme, c: Change, lang: Lang) -> str:
    if c.status == "vetoed":
        return (f"一票否决({c.note}), 任何指标的改变都无法达到" if lang == "zh" else
                f"vetoed ({c.note}): no change of data can reach it")
    if c.status == "no_single_change":
        return "单项指标的改变都无法达到" if lang == "zh" else "no single-field change reaches it"
    if c.status == "by_rank":
        return ("取决于各单位的排名(一个单位的改变也会改变其他单位的名次), 不做单项测算" if lang == "zh" else
                "depends on the units' ranks (a change to one unit moves the others' ranks too): not searched")
    f = scheme.fields[c.field]
    name = f.label if lang == "zh" else f.id
    if not c.delta:
        return f"{name} {c.before} → {c.after}"
    return f"{name} {c.delta}{f.unit} ({c.before} → {c.after})"


def target_label(run: Run, key: str, lang: Lang) -> str:
    kind, tid = key.split(":", 1)
    if kind == "grade":
        g = next(g for g in run.decisions.grades if g.id == tid)
        return (f"等级{g.label}" if lang == "zh" else f"grade {tid}")
    a = next(a for a in run.decisions.awards if a.id == tid)
    return in_lang(a.label, a.label_en, tid, lang)


Restate = Callable[[list[Change]], list[Change]]  # changes restated for the reader (simulate.year_to_date)


def gap_text(ld: Loaded, run: Run, unit: str, lang: Lang, top: int = 5, progress: Progress | None = None,
             restate: Restate | None = None) -> str:
    changes = solve(ld, run, {unit}, progress)
    changes = restate(changes) if restate is not None else changes
    by_target: dict[str, list[Change]] = {}
    for c in changes:
        by_target.setdefault(c.target, []).append(c)
    r = run.frame.filter(pl.col("unit_id") == unit).row(0, named=True)
    p = run.scheme.meta.precision
    out = [f"{r['name']} ({unit}) — {'总分' if lang == 'zh' else 'total'} {fixed_str(r['total'], p, p)}"]
    if not by_target:
        out.append("  已达到所有等级和奖项" if lang == "zh" else "  reaches every grade and award")
    vetoed = [k for k, cs in by_target.items() if cs[0].status == "vetoed"]
    if vetoed:
        names = ("、" if lang == "zh" else ", ").join(target_label(run, k, lang) for k in vetoed)
        out.append(f"{names}:\n  - {describe(run.scheme, by_target[vetoed[0]][0], lang)}")
    for key, cs in by_target.items():
        if key in vetoed:
            continue
        out.append(f"{target_label(run, key, lang)}:")
        solved = sorted([c for c in cs if c.status == "solved"], key=relative)
        for c in (solved[:top] or cs[:1]):
            out.append(f"  - {describe(run.scheme, c, lang)}")
        if len(solved) > top:
            out.append(f"  ({len(solved) - top} {'项其他可选改变' if lang == 'zh' else 'more options'})")
    return "\n".join(out) + "\n"


def gap_summary(ld: Loaded, run: Run, lang: Lang, progress: Progress | None = None,
                restate: Restate | None = None) -> dict[str, str]:
    """Per unit: the smallest single change to the next grade (or else to the nearest higher grade or award),
    for simulate --gaps.

    The next grade is searched first, for every unit (a change that reaches a higher grade reaches the next
    one too, and is no smaller); only the units with no single change to it are searched further, for the
    higher grades and the awards."""
    changes = solve(ld, run, None, progress, wanted=lambda above: above == 1, then=lambda above: above != 1,
                    solved_only=True)
    changes = restate(changes) if restate is not None else changes
    out: dict[str, str] = {}
    for u, cs in _group(changes).items():
        c = best_change(cs)
        if c is not None:
            out[u] = f"{target_label(run, c.target, lang)}: {describe(run.scheme, c, lang)}"
    return out


def best_change(changes: list[Change]) -> Change | None:
    """The change to suggest first: a grade before an award, then the smallest relative change (the first
    of equals)."""
    solved = sorted([c for c in changes if c.status == "solved"],
                    key=lambda c: (not c.target.startswith("grade:"), relative(c)))
    return solved[0] if solved else None


def _group(changes: list[Change]) -> dict[str, list[Change]]:
    out: dict[str, list[Change]] = {}
    for c in changes:
        out.setdefault(c.unit_id, []).append(c)
    return out
