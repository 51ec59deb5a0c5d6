"""decide: vetoes, grades (with quotas), competition ranks and award allocation, all in Polars.

Adds to the scored frame, per unit:
  x.<veto> (bool) and xs.<veto> (what triggered it), vetoed, grade, order (strict position in its
  group), rank (competition rank in its group: 8, 8, 10), rank_all (overall),
  and per award: a.<award> status (recommended | tie_flag | outside_quota | not_eligible | vetoed |
  not_applicable), a.<award>.pos (position among the eligible), a.<award>.level, a.<award>.quota,
  a.<award>.c<k> (each eligibility condition held?) and a.<award>.g<k> (how far from it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

from . import expr as E
from . import fixed as F
from .evaluate import ITEM_SCALE
from .fixed import Fx
from .model import Scheme
from .rules_model import Award, Decisions, Quota, SortKey
from .sortkey import sort_by

GROUP = "_group"

Compile = Callable[[E.Expr], Fx]
Over = Callable[[pl.Expr], pl.Expr]


@dataclass(frozen=True)
class Condition:
    text: str  # the condition's source, e.g. "section.safety >= 27"
    gap_scale: int | None  # scale of a.<id>.g<k>, when the condition is a numeric comparison


@dataclass
class AwardInfo:
    conditions: list[Condition] = field(default_factory=list)


def resolver(scheme: Scheme) -> F.Resolver:
    p = scheme.meta.precision

    def resolve(node: E.Name | E.Ref) -> Fx:
        if isinstance(node, E.Ref):
            col, scale = {"section": (f"s.{node.id}", p), "pool": (f"p.{node.id}", p),
                          "item": (f"i.{node.id}", ITEM_SCALE)}[node.kind]
            return Fx(pl.col(col), "num", scale)
        if node.id == "total":
            return Fx(pl.col("total"), "num", p)
        if node.id in ("grade", "unit_id", "name", "unit_type"):
            return Fx(pl.col(node.id), "str")
        f = scheme.fields[node.id]
        return Fx(pl.col(node.id), f.kind, f.scale)

    return resolve


def quota_expr(q: Quota, n: pl.Expr) -> pl.Expr:
    """Places for a group of n units, exact integer arithmetic."""
    if q.count is not None:
        return pl.lit(q.count, dtype=pl.Int64)
    assert q.share is not None
    k = max(0, -int(q.share.as_tuple().exponent))
    a, d = int(q.share.scaleb(k)), int(10**k)
    if q.rounding == "floor":
        return (n * a) // d
    if q.rounding == "ceil":
        return -((-(n * a)) // d)
    return (2 * n * a + d) // (2 * d)


def needed_columns(scheme: Scheme, dec: Decisions) -> list[str]:
    """The scored columns that decisions read (so the sorts below move a narrow frame)."""
    exprs = [v.when for v in dec.vetoes] + [k.expr for k in dec.ranking.by]
    for a in dec.awards:
        exprs += [a.eligible, *[k.expr for k in a.rank_by]]
    cols = {"unit_id", "unit_type", "_id_key", "_type", "total", "name"}
    prefix = {"section": "s.", "item": "i.", "pool": "p."}
    for e in exprs:
        if e is None:
            continue
        cols |= {n for n in e.names() if n in scheme.fields}
        cols |= {prefix[r.split(".", 1)[0]] + r.split(".", 1)[1] for r in e.refs()}
    return sorted(cols)


def decide(scheme: Scheme, dec: Decisions, scored: pl.DataFrame, event_vetoes: pl.DataFrame | None = None
           ) -> tuple[pl.DataFrame, dict[str, AwardInfo]]:
    res = resolver(scheme)

    def c(e: E.Expr) -> Fx:
        return F.compile_expr(e.tree, res)

    needed = [col for col in needed_columns(scheme, dec) if col in scored.columns]
    types = pl.Enum(list(scheme.unit_types))  # sort groups by a small integer code, not by text
    df = scored.select(needed).with_row_index("_i")
    if "_type" not in df.columns:  # the unit type's position in the scheme (engine.data computes it once)
        df = df.with_columns(_type=pl.col("unit_type").cast(types).to_physical())
    df = df.with_columns((pl.col("_type") if dec.ranking.per else pl.lit(0, dtype=pl.UInt32)).alias(GROUP))
    df = _vetoes(df, dec, c, event_vetoes)
    df = _grades(df, dec, scheme, c)
    infos = {}
    results = []
    in_order = True  # _grades leaves the frame in ranking order
    for award in dec.awards:
        df, infos[award.id], in_order = _award(df, award, dec, scheme, c, in_order)
        done = [col for col in df.columns if col == f"a.{award.id}" or col.startswith(f"a.{award.id}.")]
        results.append(df.select("_i", *done))  # set aside: the working frame stays narrow
        df = df.drop(done)
    new = [col for col in df.columns if col not in scored.columns and not col.startswith("_")]
    parts = [df.select("_i", *new).sort("_i")] + [r.sort("_i").drop("_i") for r in results]
    return scored.hstack(pl.concat(parts, how="horizontal").drop("_i")), infos


def _vetoes(df: pl.DataFrame, dec: Decisions, c: Compile, event_vetoes: pl.DataFrame | None) -> pl.DataFrame:
    cols = []
    for v in dec.vetoes:
        hit = c(v.when).expr.fill_null(False) if v.when is not None else pl.lit(False)
        src: pl.Expr = pl.when(hit).then(pl.lit(f"数据: {v.when.source}" if v.when is not None else ""))
        if event_vetoes is not None and event_vetoes.height:
            ev = (event_vetoes.filter(pl.col("veto") == v.id).group_by("unit_id")
                  .agg(pl.col("event_id").sort().str.join(",").alias("_ev")))
            df = df.join(ev.rename({"_ev": f"_ev.{v.id}"}), on="unit_id", how="left", maintain_order="left")
            evc = pl.col(f"_ev.{v.id}")
            hit = hit | evc.is_not_null()
            src = pl.concat_str([src, pl.when(evc.is_not_null()).then(pl.lit("事件: ") + evc)],
                                separator="; ", ignore_nulls=True)
        cols += [hit.alias(f"x.{v.id}"), pl.when(hit).then(src).alias(f"xs.{v.id}")]
    df = df.with_columns(cols) if cols else df
    xs = [pl.col(f"x.{v.id}") for v in dec.vetoes]
    last = [pl.col(f"x.{v.id}") for v in dec.vetoes if v.rank == "last"]
    return df.with_columns(vetoed=pl.any_horizontal(xs) if xs else pl.lit(False),
                           _last=pl.any_horizontal(last) if last else pl.lit(False))


def _sort_cols(df: pl.DataFrame, keys: tuple[SortKey, ...], c: Compile, prefix: str) -> tuple[pl.DataFrame, list[str]]:
    names = [f"{prefix}{i}" for i in range(len(keys))]
    exprs = [(pl.col("_id_key") if k.expr.tree == E.Name("unit_id", k.expr.tree.col) and "_id_key" in df.columns
              else c(k.expr).expr).alias(n) for k, n in zip(keys, names, strict=True)]
    return df.with_columns(exprs), names


def _ordered(df: pl.DataFrame, keys: tuple[SortKey, ...], names: list[str], first: list[str], *,
             grouped: bool = True) -> pl.DataFrame:
    lead = [GROUP] if grouped else []
    return sort_by(df, [*lead, *first, *names], [False] * (len(lead) + len(first)) + [k.descending for k in keys])


def _grades(df: pl.DataFrame, dec: Decisions, scheme: Scheme, c: Compile) -> pl.DataFrame:
    p = scheme.meta.precision
    df, keys = _sort_cols(df, dec.ranking.by, c, "_k")
    df = _ordered(df, dec.ranking.by, keys, ["_last"])
    df = df.with_columns(order=pl.int_range(1, pl.len() + 1, dtype=pl.Int64).over(GROUP))
    df = df.with_columns(rank=pl.col("order").min().over([GROUP, "_last", keys[0]]))
    df = _ordered(df, dec.ranking.by, keys, ["_last"], grouped=False)
    df = df.with_columns(order_all=pl.int_range(1, pl.len() + 1, dtype=pl.Int64))
    df = df.with_columns(rank_all=pl.col("order_all").min().over(["_last", keys[0]]))
    if not dec.grades:
        return sort_by(df, [GROUP, "order"], [False, False]).with_columns(grade=pl.lit(None, dtype=pl.String))
    g = pl.lit(dec.grades[-1].id)
    for gr in reversed(dec.grades[:-1]):
        lim = pl.lit(int(gr.min.scaleb(p)) if gr.min is not None else 0, dtype=pl.Int64)
        g = pl.when((pl.col("total") >= lim) if gr.inclusive else (pl.col("total") > lim)).then(pl.lit(gr.id)) \
            .otherwise(g)
    for v in dec.vetoes:
        if v.grade is not None:
            g = pl.when(pl.col(f"x.{v.id}")).then(pl.lit(v.grade)).otherwise(g)
    df = df.with_columns(grade=g)
    ids = [gr.id for gr in dec.grades]
    for i, gr in enumerate(dec.grades[:-1]):
        if gr.quota is None:
            continue
        has = pl.col("grade") == gr.id
        if gr.quota.per == "unit_type":  # within each unit type, in the type's ranking order
            df = sort_by(df, ["_type", "order_all"], [False, False])
            n, pos = pl.len().over("_type"), has.cast(pl.Int64).cum_sum().over("_type")
        else:  # over all units, in the overall order
            df = sort_by(df, ["order_all"], [False])
            n, pos = pl.len(), has.cast(pl.Int64).cum_sum()
        df = df.with_columns(grade=pl.when(has & (pos > quota_expr(gr.quota, n))).then(pl.lit(ids[i + 1]))
                             .otherwise(pl.col("grade")))
    return sort_by(df, [GROUP, "order"], [False, False])


def conjuncts(e: E.Node) -> list[E.Node]:
    if isinstance(e, E.BoolOp) and e.op == "and":
        return [x for v in e.values for x in conjuncts(v)]
    return [e]


def _award(df: pl.DataFrame, a: Award, dec: Decisions, scheme: Scheme, c: Compile,
           in_order: bool) -> tuple[pl.DataFrame, AwardInfo, bool]:
    """Allocate one award; `in_order` says whether `df` is in ranking order (then an award ranked the
    same way needs no sort). Returns the frame, the award's conditions and whether it is still in order."""
    pre, info = f"a.{a.id}", AwardInfo()
    conds: list[tuple[E.Node, str]] = []
    if a.eligible is not None:
        conds += [(n, E.to_source(n)) for n in conjuncts(a.eligible.tree)]
    if a.min_score is not None:
        node: E.Node = E.Cmp(">=", E.Name("total"), E.Num(a.min_score))
        conds.append((node, E.to_source(node)))
    ok_cols, cols = [], []
    for k, (node, text) in enumerate(conds):
        ok = F.compile_expr(node, resolver(scheme)).expr.fill_null(False)
        cols.append(ok.alias(f"{pre}.c{k}"))
        scale = None
        if isinstance(node, E.Cmp) and node.op in (">=", ">", "<=", "<"):
            lhs, rhs = (F.compile_expr(x, resolver(scheme)) for x in (node.left, node.right))
            if lhs.type == "num":
                dist = F.add(rhs, lhs, -1) if node.op in (">=", ">") else F.add(lhs, rhs, -1)
                cols.append(dist.expr.alias(f"{pre}.g{k}"))
                scale = dist.scale
        ok_cols.append(pl.col(f"{pre}.c{k}"))
        info.conditions.append(Condition(text, scale))
    scope = pl.col("unit_type").is_in(list(a.applies_to)) if a.applies_to else pl.lit(True)
    blocking = [pl.col(f"x.{v.id}") for v in dec.vetoes if v.blocks == "all" or a.id in v.blocks]
    blocked = pl.any_horizontal(blocking) if blocking else pl.lit(False)
    cond_ok = pl.all_horizontal(ok_cols) if ok_cols else pl.lit(True)
    q = a.quota or Quota(count=sum(lv.count for lv in a.levels))
    grp = "_type" if (q.per == "unit_type") else "_one"  # _one: a single group (windows broadcast cleanly)
    df, keys = _sort_cols(df.with_columns(cols).with_columns(_one=pl.lit(0)), a.rank_by, c, "_r")
    same_order = a.rank_by == dec.ranking.by and (grp == "_type") == (dec.ranking.per == "unit_type")
    if not (same_order and in_order):
        df = sort_by(df, [grp, *keys], [False] + [k.descending for k in a.rank_by])
    lf = df.lazy().with_columns(_scope=scope, _blocked=blocked & scope, _elig=scope & ~blocked & cond_ok)

    def over(e: pl.Expr) -> pl.Expr:
        return e.over(grp)

    n = over(pl.col("_scope" if q.of == "all" else "_elig").cast(pl.Int64).sum())
    lf = lf.with_columns(_pos=over(pl.col("_elig").cast(pl.Int64).cum_sum()), _q=quota_expr(q, n))
    lf = lf.with_columns(_sel=pl.col("_elig") & (pl.col("_pos") <= pl.col("_q")))
    lf = (_levels(lf, a, over, scheme.meta.precision) if a.levels
          else lf.with_columns(_lvl=pl.lit(None, dtype=pl.String)))
    lf = _ties(lf, a, keys, over)
    status = (pl.when(~pl.col("_scope")).then(pl.lit("not_applicable"))
              .when(pl.col("_blocked")).then(pl.lit("vetoed"))
              .when(~pl.col("_elig")).then(pl.lit("not_eligible"))
              .when(pl.col("_tie") & pl.lit(a.tie_at_boundary == "flag")).then(pl.lit("tie_flag"))
              .when(pl.col("_sel")).then(pl.lit("recommended"))
              .otherwise(pl.lit("outside_quota")))
    first = keys[0]
    last_in = over(pl.col(first).filter(pl.col("_sel")).last())
    gap = (last_in - pl.col(first)) if a.rank_by[0].descending else (pl.col(first) - last_in)
    lf = lf.with_columns(status.alias(pre), pl.when(pl.col("_elig")).then(pl.col("_pos")).alias(f"{pre}.pos"),
                         pl.col("_lvl").alias(f"{pre}.level"), pl.col("_q").alias(f"{pre}.quota"),
                         pl.when(pl.col("_elig") & ~pl.col("_sel")).then(gap).alias(f"{pre}.gap"))
    drop = ["_scope", "_blocked", "_elig", "_pos", "_q", "_sel", "_lvl", "_tie", "_one", *keys]
    return lf.drop(drop).collect(), info, same_order and in_order


def _levels(df: pl.LazyFrame, a: Award, over: Over, precision: int) -> pl.LazyFrame:
    """一等/二等/三等 down the ranking; unused places pass down when declared."""
    df = df.with_columns(_lvl=pl.lit(None, dtype=pl.String), _carry=pl.lit(0, dtype=pl.Int64))
    for lv in a.levels:
        ok = pl.col("_elig") & pl.col("_lvl").is_null()
        if lv.min_score is not None:
            ok = ok & (pl.col("total") >= int(lv.min_score.scaleb(precision)))
        places = pl.col("_carry") + lv.count
        pos = over(ok.cast(pl.Int64).cum_sum())
        df = df.with_columns(_lvl=pl.when(ok & (pos <= places)).then(pl.lit(lv.label)).otherwise(pl.col("_lvl")))
        used = over((pl.col("_lvl") == lv.label).cast(pl.Int64).sum())
        df = df.with_columns(_carry=(places - used) if a.pass_down else pl.lit(0, dtype=pl.Int64))
    return df.with_columns(_sel=pl.col("_lvl").is_not_null()).drop("_carry")


def _ties(df: pl.LazyFrame, a: Award, keys: list[str], over: Over) -> pl.LazyFrame:
    """A tie on the quota boundary: the last unit in and the first eligible unit out are equal on every
    rank_by key but the last (the stable key)."""
    tie_keys = keys[:-1] or keys
    last_in = pl.col("_elig") & (pl.col("_pos") == pl.col("_q"))
    first_out = pl.col("_elig") & (pl.col("_pos") == pl.col("_q") + 1)
    tie = pl.col("_elig")
    for k in tie_keys:  # key by key: window filters over structs are not reliable
        at_q = over(pl.col(k).filter(last_in).first())
        after = over(pl.col(k).filter(first_out).first())
        tie = tie & (at_q == after).fill_null(False) & (pl.col(k) == at_q).fill_null(False)
    df = df.with_columns(_tie=tie)
    if a.tie_at_boundary == "all_in":
        df = df.with_columns(_sel=pl.col("_sel") | pl.col("_tie"))
    return df
