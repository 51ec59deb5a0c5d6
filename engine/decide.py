"""decide: vetoes, grades (with quotas), competition ranks and award allocation, all in Polars.

Adds to the scored frame, per unit:
  x.<veto> (bool) and xs.<veto> (what triggered it), vetoed, grade (Enum of the grade ids), order (strict
  position in its group), rank (competition rank in its group: 8, 8, 10), rank_all (overall), order_all,
  and per award: a.<award> status (Enum: recommended | tie_flag | outside_quota | not_eligible | vetoed |
  not_applicable), a.<award>.pos (position among the eligible), a.<award>.level, a.<award>.quota,
  a.<award>.gap, a.<award>.c<k> (each eligibility condition held?) and a.<award>.g<k> (how far from it).

The frame is never sorted: each order is a permutation column (one stable sort of a packed Int64 key), and
only the few columns a step reads are gathered into that order and the results gathered back.

An award may read `rank` (places gained: last_rank - rank): the ranks are then decided first, without the
awards (they do not depend on them), and kept as `_rank` for the awards' conditions and keys.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import polars as pl

from . import expr as E
from . import fixed as F
from .evaluate import ITEM_SCALE
from .fixed import Fx
from .model import Scheme
from .rules_model import Award, Decisions, Grade, Quota, SortKey
from .sortkey import Packing

IN_MEMORY_BELOW = 500_000  # units: decisions on smaller frames run on Polars' in-memory engine
POS = pl.Int32  # positions, places and ranks (a county has thousands of units, a nation millions)
RANK = "_rank"  # the rank, for awards that read it (places gained: last_rank - rank)
STATUS = pl.Enum(["recommended", "tie_flag", "outside_quota", "not_eligible", "vetoed", "not_applicable"])

Compile = Callable[[E.Expr], Fx]
Over = Callable[[pl.Expr], pl.Expr]


@dataclass(frozen=True)
class Condition:
    text: str  # the condition's source, e.g. "section.safety >= 27"
    gap_scale: int | None  # scale of a.<id>.g<k>, when the condition is a numeric comparison
    fields: tuple[str, ...] = ()  # the fields it reads: an empty one leaves it unknown (a.<id>.c<k> null)


@dataclass
class AwardInfo:
    conditions: list[Condition] = field(default_factory=list)
    gap_scale: int | None = None  # scale of a.<id>.gap (the first rank_by key's); None: no gap (not a number)


def resolver(scheme: Scheme) -> F.Resolver:
    p = scheme.meta.precision

    def resolve(node: E.Name | E.Ref) -> Fx:
        if isinstance(node, E.Ref):
            col, scale = {"section": (f"s.{node.id}", p), "pool": (f"p.{node.id}", p),
                          "item": (f"i.{node.id}", ITEM_SCALE), "event": (f"ec.{node.id}", 0)}[node.kind]
            return Fx(pl.col(col), "num", scale)
        if node.id == "total":
            return Fx(pl.col("total"), "num", p)
        if node.id == "rank":  # in award expressions: the rank decided before them (`decide`)
            return Fx(pl.col(RANK), "num", 0, (1, 2**31 - 1))
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
    exprs = _decision_exprs(dec)
    cols = {"unit_id", "unit_type", "_id_key", "_type", "total", "name", *([RANK] if reads_rank(dec) else [])}
    prefix = {"section": "s.", "item": "i.", "pool": "p.", "event": "ec."}
    for e in exprs:
        if e is None:
            continue
        cols |= {n for n in e.names() if n in scheme.fields}
        cols |= {prefix[r.split(".", 1)[0]] + r.split(".", 1)[1] for r in e.refs()}
    return sorted(cols)


def event_counts(dec: Decisions, frame: pl.DataFrame, adjustments: pl.DataFrame | None) -> pl.DataFrame:
    """`frame` with a column ec.<rule> for each event rule the decisions read (`event.X`): how many of the
    unit's events the rule applied to (after its nth / within_days), 0 without any (or without a log)."""
    read = sorted({r.split(".", 1)[1] for e in _decision_exprs(dec) if e is not None for r in e.refs()
                   if r.startswith("event.")})
    if not read:
        return frame
    counts = {r: pl.lit(0, dtype=pl.Int64) for r in read}
    if adjustments is not None and adjustments.height:
        per = adjustments.filter(pl.col("rule").is_in(read)).group_by("unit_id", "rule").len()
        wide = {r: per.filter(pl.col("rule") == r).select("unit_id", pl.col("len").cast(pl.Int64).alias(f"ec.{r}"))
                for r in read}
        for r, part in wide.items():
            frame = frame.join(part, on="unit_id", how="left", maintain_order="left")
            counts[r] = pl.col(f"ec.{r}").fill_null(0)
    return frame.with_columns(e.alias(f"ec.{r}") for r, e in counts.items())


def _decision_exprs(dec: Decisions) -> list[E.Expr | None]:
    exprs = [v.when for v in dec.vetoes] + [g.when for g in dec.grades] + [k.expr for k in dec.ranking.by]
    for a in dec.awards:
        exprs += [a.eligible, *[k.expr for k in a.rank_by]]
    return exprs


def reads_rank(dec: Decisions) -> bool:
    """Does an award's eligibility or order read the units' ranks?"""
    return any(award_reads_rank(a.eligible, a.rank_by) for a in dec.awards)


def award_reads_rank(eligible: E.Expr | None, rank_by: tuple[SortKey, ...]) -> bool:
    return any("rank" in e.names() for e in (eligible, *(k.expr for k in rank_by)) if e is not None)


def decide(scheme: Scheme, dec: Decisions, scored: pl.DataFrame, event_vetoes: pl.DataFrame | None = None, *,
           only: tuple[str, ...] | None = None) -> tuple[pl.DataFrame, dict[str, AwardInfo]]:
    """Row-local decisions (vetoes, grade before quotas, award conditions, sort keys) in one pass; then the
    overall order as a permutation (one sort of a packed key; its inverse scattered), and one lazy plan over
    the narrow frame: ranks, grade quotas and awards, each computed in the order it needs and gathered back.
    Awards ranked otherwise than the ranking get one more order for each distinct way they are ranked."""
    if reads_rank(dec) and RANK not in scored.columns:  # ranks do not depend on awards: decided first without them
        ranked, _ = decide(scheme, replace(dec, awards=()), scored, event_vetoes, only=("rank",))
        scored = scored.with_columns(ranked.get_column("rank").alias(RANK))
    res = resolver(scheme)

    def c(e: E.Expr) -> Fx:
        return F.compile_expr(e.tree, res)

    needed = [col for col in needed_columns(scheme, dec) if col in scored.columns]
    lf = scored.lazy().select(needed)
    if "_type" not in scored.columns:  # the unit type's position in the scheme (engine.data computes it once)
        lf = lf.with_columns(_type=pl.col("unit_type").cast(pl.Enum(list(scheme.unit_types))).to_physical())
    lf = _vetoes(lf, dec, c, event_vetoes)
    by_id = "_id_key" in needed
    rank_keys = _key_exprs(dec.ranking.by, c, "_k", by_id)
    infos: dict[str, AwardInfo] = {}
    award_cols: dict[str, list[pl.Expr]] = {}
    award_keys: dict[str, list[tuple[str, pl.Expr]]] = {}
    for a in dec.awards:
        award_cols[a.id], infos[a.id] = _conditions(a, dec, scheme)
        first = a.rank_by[0].expr
        fx = c(first) if first.tree != E.Name("unit_id", first.tree.col) else None
        infos[a.id].gap_scale = fx.scale if fx is not None and fx.type == "num" else None
        same = _keys_id(a.rank_by) == _keys_id(dec.ranking.by)
        award_keys[a.id] = rank_keys if same else _key_exprs(a.rank_by, c, f"_r.{a.id}.", by_id)
    keys = {n: e for ks in (rank_keys, *award_keys.values()) for n, e in ks}
    quotas = any(g.quota for g in dec.grades)
    # an award that reads the grade waits for the grade quotas
    late = {a.id for a in dec.awards if quotas and a.eligible is not None and "grade" in a.eligible.names()}
    lf = lf.with_columns(c(g.when).expr.alias(f"gw.{g.id}") for g in dec.grades if g.when is not None)
    lf = lf.with_columns(grade=base_grade(dec, scheme))
    early = [e for a, cols in award_cols.items() if a not in late for e in cols]
    df = lf.with_columns(*keys.values(), *early).collect()
    ids = [n for n, e in keys.items() if e.meta.undo_aliases().meta.eq(pl.col("_id_key"))]
    packing = Packing(df, ["_last", "_type", *keys], rising=ids)
    rk, desc = [n for n, _ in rank_keys], [k.descending for k in dec.ranking.by]
    grouped = dec.ranking.per == "unit_type"

    # The overall order (vetoed-last units after the others) as a permutation: the frame stays in input
    # order, and only the columns each step reads are listed in that order ("~" columns) and back.
    df = _permuted(df, "~", packing.permutation(["_last", *rk], [False, *desc]))
    # awards ranked otherwise: one order for each distinct way (after their keys, the overall order)
    last_blocks = {v.blocks == "all" or v.blocks for v in dec.vetoes if v.rank == "last"}
    orders: dict[tuple[object, ...], list[tuple[Award, list[str]]]] = {}
    for a in dec.awards:
        names = [n for n, _ in award_keys[a.id]]
        # the overall order serves an award ranked like it, when units ranked last by a veto cannot hold it
        main_serves = (_keys_id(a.rank_by) == _keys_id(dec.ranking.by)
                       and all(b is True or a.id in b for b in last_blocks))
        way = () if main_serves else (_grouped(a), *_keys_id(a.rank_by))
        orders.setdefault(way, []).append((a, names))
    for k, (way, members) in enumerate(orders.items()):
        if way:
            a, names = members[0]
            lead = ["_type"] if _grouped(a) else []
            cols, desc_a = [*lead, *names], [False] * len(lead) + [s.descending for s in a.rank_by]
            # a stable sort of the units in the overall order breaks ties by it
            main_perm = pl.col("~perm")
            key = packing.key(cols, desc_a, spare=packing.row_bits)
            if key is not None:
                perm_a = main_perm.gather(packing.stable(key.gather(main_perm)))
            elif (key := packing.key(cols, desc_a)) is not None:
                perm_a = main_perm.gather(pl.int_range(pl.len(), dtype=pl.UInt32)
                                          .sort_by(key.gather(main_perm), maintain_order=True))
            else:
                perm_a = packing.permutation([*cols, "~inv"], [*desc_a, False], spans={"~inv": (0, df.height - 1)})
            df = _permuted(df, f"~{k}~", perm_a)
    conds = [f"gw.{g.id}" for g in dec.grades if g.when is not None] if quotas else []
    lf = _Order("~").add(df.lazy(), ["_last", "_type", rk[0], *(["grade", *conds] if quotas else [])])
    at = pl.int_range(1, pl.len() + 1, dtype=POS)
    lf = lf.with_columns(order_all=(pl.col("~inv") + 1).cast(POS),
                         **{"~rank_all": _competition(["~_last", f"~{rk[0]}"], at)})
    lf = _grade_quotas(lf, dec)  # in the overall order; per unit type: that order within the type
    if grouped:  # a unit type's units in the overall order are in the type's ranking order
        lf = _ranks_within_types(lf, ["~_last", f"~{rk[0]}"], _PerType(len(scheme.unit_types), df.height))
    main = _Order("~")
    lf = lf.with_columns(rank_all=main.back("~rank_all"),
                         grade=main.back("~grade") if quotas else pl.col("grade"),
                         order=main.back("~order") if grouped else pl.col("order_all"),
                         rank=main.back("~rank") if grouped else main.back("~rank_all"))
    lf = lf.with_columns(e for a, cols in award_cols.items() if a in late for e in cols)
    for k, (way, members) in enumerate(orders.items()):  # awards sharing an order: side by side
        order = _Order(f"~{k}~") if way else main
        lf = _awards(order.add(lf, ["_type"]) if way else lf, members, order, scheme, infos, df.height)
    new = [*[x for v in dec.vetoes for x in (f"x.{v.id}", f"xs.{v.id}")], "vetoed", "order", "rank", "order_all",
           "rank_all", "grade", *[f"gw.{g.id}" for g in dec.grades if g.when is not None]]
    for a in dec.awards:
        pre = f"a.{a.id}"
        new += [n for n in (e.meta.output_name() for e in award_cols[a.id]) if n.startswith(pre + ".")]
        new += [pre, f"{pre}.pos", f"{pre}.level", f"{pre}.quota", f"{pre}.gap"]
    # the streaming engine pays off on large frames only: below about 500k units the in-memory one is
    # faster for this plan of whole-column steps (2x at 1k-200k units; 0.8x at 1M)
    small = df.height < IN_MEMORY_BELOW
    new = [n for n in new if only is None or n in only]  # (the plan then computes only what they need)
    return scored.hstack(lf.select(new).collect(engine="in-memory" if small else "streaming")), infos


def _last_in(key: pl.Expr, sel: pl.Expr, descending: bool) -> Callable[[pl.Expr], pl.Expr]:
    """The key of the last unit in among the rows a mask keeps (the least key when ranked descending)."""
    def agg(mask: pl.Expr) -> pl.Expr:
        kept = key.filter(sel & mask)
        return kept.min() if descending else kept.max()

    return agg


def _count_of(flag: pl.Expr) -> Callable[[pl.Expr], pl.Expr]:
    """How many rows a mask keeps have `flag` (an Int64 0/1 column) set."""
    def agg(mask: pl.Expr) -> pl.Expr:
        return flag.filter(mask).sum()

    return agg


def _per_type(agg: Callable[[pl.Expr], pl.Expr], types: int) -> pl.Expr:
    """An aggregate of each unit's own type (agg(mask) aggregates the rows the mask keeps), broadcast to its
    rows: a few whole-frame aggregates and a choice by type code, far cheaper than a window over the type;
    a window when there are many types; one aggregate when `types` is 0 (a single group)."""
    if types == 0:
        return agg(pl.lit(True))
    if types > 8:
        return agg(pl.lit(True)).over("_type")
    out = agg(pl.col("_type") == 0)
    for t in range(1, types):
        out = pl.when(pl.col("_type") == t).then(agg(pl.col("_type") == t)).otherwise(out)
    return out


def _keys_id(keys: tuple[SortKey, ...]) -> tuple[tuple[str, bool], ...]:
    """What a list of sort keys sorts by, whatever file and line wrote it."""
    return tuple((E.to_source(k.expr.tree), k.descending) for k in keys)


def _permuted(df: pl.DataFrame, prefix: str, perm: pl.Expr) -> pl.DataFrame:
    """df with an order's permutation (`<prefix>perm`) and each row's place in it (`<prefix>inv`, scattered
    from the permutation rather than sorted back)."""
    p = df.select(perm).to_series()
    inv = pl.zeros(df.height, dtype=pl.UInt32, eager=True)
    inv.scatter(p, pl.int_range(df.height, dtype=pl.UInt32, eager=True))
    return df.with_columns(p.alias(f"{prefix}perm"), inv.alias(f"{prefix}inv"))


def _status(s: str) -> pl.Expr:
    return pl.lit(s, dtype=STATUS)  # an Enum literal: a when/then chain of them stays integer work


class _Order:
    """A permutation of the frame's rows (`<prefix>perm`: row numbers in this order; `<prefix>inv`: each
    row's position in it, see `_permuted`). Columns listed in this order are named `<prefix><column>`."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def add(self, lf: pl.LazyFrame, cols: list[str]) -> pl.LazyFrame:
        p = pl.col(f"{self.prefix}perm")
        have = set(lf.collect_schema().names())
        return lf.with_columns(pl.col(c).gather(p).alias(self.name(c)) for c in dict.fromkeys(cols)
                               if self.name(c) not in have)

    def name(self, col: str) -> str:
        return f"{self.prefix}{col}"

    def back(self, col: str) -> pl.Expr:
        """A column in this order, back in the frame's row order."""
        return pl.col(col).gather(pl.col(f"{self.prefix}inv"))


def _vetoes(lf: pl.LazyFrame, dec: Decisions, c: Compile, event_vetoes: pl.DataFrame | None) -> pl.LazyFrame:
    cols = []
    for v in dec.vetoes:
        hit = c(v.when).expr.fill_null(False) if v.when is not None else pl.lit(False)
        src: pl.Expr = pl.when(hit).then(pl.lit(f"数据: {v.when.source}" if v.when is not None else ""))
        if event_vetoes is not None and event_vetoes.height:
            ev = (event_vetoes.filter(pl.col("veto") == v.id).group_by("unit_id")
                  .agg(pl.col("event_id").sort().str.join(",").alias("_ev")))
            lf = lf.join(ev.lazy().rename({"_ev": f"_ev.{v.id}"}), on="unit_id", how="left", maintain_order="left")
            evc = pl.col(f"_ev.{v.id}")
            hit = hit | evc.is_not_null()
            src = pl.concat_str([src, pl.when(evc.is_not_null()).then(pl.lit("事件: ") + evc)],
                                separator="; ", ignore_nulls=True)
        cols += [hit.alias(f"x.{v.id}"), pl.when(hit).then(src).alias(f"xs.{v.id}")]
    lf = lf.with_columns(cols) if cols else lf
    xs = [pl.col(f"x.{v.id}") for v in dec.vetoes]
    last = [pl.col(f"x.{v.id}") for v in dec.vetoes if v.rank == "last"]
    return lf.with_columns(vetoed=pl.any_horizontal(xs) if xs else pl.lit(False),
                           _last=pl.any_horizontal(last) if last else pl.lit(False))


def _key_exprs(keys: tuple[SortKey, ...], c: Compile, prefix: str, by_id: bool) -> list[tuple[str, pl.Expr]]:
    """Sort key columns; unit_id sorts by its key (numbers as numbers, text by its text order)."""
    out = []
    for i, k in enumerate(keys):
        is_id = k.expr.tree == E.Name("unit_id", k.expr.tree.col)
        e = pl.col("_id_key") if is_id and by_id else c(k.expr).expr
        out.append((f"{prefix}{i}", e.alias(f"{prefix}{i}")))
    return out


def _run_start(cols: list[str], over: str | None = None, first: pl.Expr | None = None) -> pl.Expr:
    """True where any of cols differs from the row before (in the same `over` group) and on a group's first
    row (`first`, when over a group): runs of equal keys in an ordered frame, found without hashing keys."""
    def prev(k: str) -> pl.Expr:
        return pl.col(k).shift(1).over(over) if over else pl.col(k).shift(1)

    start = first if first is not None else pl.int_range(pl.len()) == 0
    return pl.any_horizontal(start, *[pl.col(k).ne_missing(prev(k)) for k in cols])


def _competition(cols: list[str], position: pl.Expr, over: str | None = None) -> pl.Expr:
    """Competition rank (8, 8, 10): the position of the first unit of each run of equal keys. Over a group,
    `position` counts from 1 in each group."""
    ff = pl.when(_run_start(cols, over, position == 1 if over else None)).then(position).forward_fill()
    return ff.over(over) if over else ff


@dataclass(frozen=True)
class _PerType:
    """How running counts per unit type are taken over a frame of `rows` rows in some order.

    packed: all types' counts in one Int64 column (a unit of type t adds 2^(bits*t)), one cumulative sum,
    and each row reads its own type's field; when types * bits fit 63 bits (3 types up to 2M units).
    chain: one cumulative sum per type and a choice by type code (up to 8 types).
    window: a window over the type (more types)."""

    types: int
    rows: int

    @property
    def bits(self) -> int:
        return max(1, self.rows.bit_length())  # a count up to `rows`

    @property
    def way(self) -> str:
        if self.types * self.bits <= 63:
            return "packed"
        return "chain" if self.types <= 8 else "window"

    def unit(self, kind: str) -> pl.Expr:
        """2^(bits*t) for a unit of type t (column `kind`)."""
        steps = pl.Series([1 << (self.bits * t) for t in range(self.types)], dtype=pl.Int64)
        return pl.lit(steps).gather(pl.col(kind))

    def own(self, packed: pl.Expr, kind: str) -> pl.Expr:
        """A row's own type's field of packed counts."""
        return ((packed // self.unit(kind)) & ((1 << self.bits) - 1)).cast(POS)

    def running(self, flag: pl.Expr, kind: str) -> pl.Expr:
        """How many rows of a row's type, up to and including it, have `flag` set."""
        if self.way == "packed":
            return self.own(pl.when(flag).then(self.unit(kind)).otherwise(0).cum_sum(), kind)
        if self.way == "window":
            return flag.cast(POS).cum_sum().over(kind)
        return _by_type([(flag & (pl.col(kind) == t)).cast(POS).cum_sum() for t in range(self.types)], kind)


def _ranks_within_types(lf: pl.LazyFrame, keys: list[str], per: _PerType) -> pl.LazyFrame:
    """~order and ~rank (competition) within each unit type, over a frame in the overall order. A unit's
    rank in its type is 1 + the units of its type before the first unit equal to it on `keys` in the overall
    order: running counts per type (see `_PerType`) read at each run of equal keys."""
    kind = "~_type"
    if per.way == "window":
        lf = lf.with_columns(**{"~order": pl.col(kind).cum_count().cast(POS).over(kind)})
        return lf.with_columns(**{"~rank": _competition(keys, pl.col("~order"), over=kind)})
    start = _run_start(keys)
    if per.way == "packed":
        unit = per.unit(kind)
        upto = unit.cum_sum()  # units of each type up to and including this one
        before = pl.when(start).then(upto - unit).forward_fill()  # ... before the first unit equal to this one
        return lf.with_columns(**{"~order": per.own(upto, kind), "~rank": per.own(before, kind) + 1})
    mine = [pl.col(kind) == t for t in range(per.types)]
    upto_t = [m.cast(POS).cum_sum() for m in mine]
    before_t = [pl.when(start).then(u - m.cast(POS)).forward_fill() for u, m in zip(upto_t, mine, strict=True)]
    return lf.with_columns(**{"~order": _by_type(upto_t), "~rank": _by_type(before_t) + 1})


def _by_type(values: list[pl.Expr], kind: str = "~_type") -> pl.Expr:
    """values[t] for a unit of type code t (in column `kind`)."""
    out = values[0]
    for t in range(1, len(values)):
        out = pl.when(pl.col(kind) == t).then(values[t]).otherwise(out)
    return out


def grade_reached(gr: Grade, precision: int) -> pl.Expr:
    """Does a unit reach grade `gr` by its total and its condition (`when`, column gw.<id>: unknown is not
    met), before vetoes and quotas?"""
    lim = pl.lit(int(gr.min.scaleb(precision)) if gr.min is not None else 0, dtype=pl.Int64)
    ok = (pl.col("total") >= lim) if gr.inclusive else (pl.col("total") > lim)
    return ok & pl.col(f"gw.{gr.id}").fill_null(False) if gr.when is not None else ok


def base_grade(dec: Decisions, scheme: Scheme) -> pl.Expr:
    """The grade by total, the grades' conditions and vetoes, before quotas."""
    if not dec.grades:
        return pl.lit(None, dtype=pl.Enum([]))
    p = scheme.meta.precision
    kind = pl.Enum([gr.id for gr in dec.grades])
    g = pl.lit(dec.grades[-1].id, dtype=kind)
    for gr in reversed(dec.grades[:-1]):
        g = pl.when(grade_reached(gr, p)).then(pl.lit(gr.id, dtype=kind)).otherwise(g)
    at = {gr.id: i for i, gr in enumerate(dec.grades)}  # best first
    for v in dec.vetoes:  # a veto's grade is the best a vetoed unit gets (不得评为优秀: good); it never raises one
        if v.grade is not None:  # capped: the cap's grade, or below it the next whose condition the unit meets
            g = pl.when(pl.col(f"x.{v.id}") & (g.to_physical() < at[v.grade])) \
                .then(passed_down(dec.grades, at[v.grade] - 1)).otherwise(g)
    return g


def _grade_quotas(lf: pl.LazyFrame, dec: Decisions) -> pl.LazyFrame:
    """Grade quotas, best grade first, in the overall order (per unit type: that order within the type);
    units over a quota pass to the next grade whose condition they meet."""
    for i, gr in enumerate(dec.grades[:-1]):
        if gr.quota is None:
            continue
        has = pl.col("~grade") == gr.id
        per = gr.quota.per == "unit_type"
        n = pl.len().over("~_type") if per else pl.len()
        pos = has.cast(pl.Int64).cum_sum()
        pos = pos.over("~_type") if per else pos
        lf = lf.with_columns(pl.when(has & (pos > quota_expr(gr.quota, n.cast(pl.Int64))))
                             .then(passed_down(dec.grades, i, "~gw.")).otherwise(pl.col("~grade")).alias("~grade"))
    return lf


def passed_down(grades: tuple[Grade, ...], i: int, conds: str = "gw.") -> pl.Expr:
    """The grade a unit over grade i's quota gets: the next one whose condition it meets (columns
    <conds><id>; its line is lower, so met), else the last."""
    kind = pl.Enum([g.id for g in grades])
    out = pl.lit(grades[-1].id, dtype=kind)
    for g in reversed(grades[i + 1:-1]):
        grade = pl.lit(g.id, dtype=kind)
        out = grade if g.when is None else pl.when(pl.col(f"{conds}{g.id}").fill_null(False)).then(grade).otherwise(out)
    return out


def conjuncts(e: E.Node) -> list[E.Node]:
    if isinstance(e, E.BoolOp) and e.op == "and":
        return [x for v in e.values for x in conjuncts(v)]
    return [e]


def _conditions(a: Award, dec: Decisions, scheme: Scheme) -> tuple[list[pl.Expr], AwardInfo]:
    """An award's row-local columns: each condition held? (.c<k>) and how far from it (.g<k>), in scope,
    blocked by a veto, eligible."""
    pre, info = f"a.{a.id}", AwardInfo()
    conds: list[tuple[E.Node, str]] = []
    if a.eligible is not None:
        conds += [(n, E.to_source(n)) for n in conjuncts(a.eligible.tree)]
    if a.min_score is not None:
        node: E.Node = E.Cmp(">=", E.Name("total"), E.Num(a.min_score))
        conds.append((node, E.to_source(node)))
    cols: list[pl.Expr] = []
    oks = []
    for k, (node, text) in enumerate(conds):
        held = F.compile_expr(node, resolver(scheme)).expr  # null: unknown (an empty value), not met
        ok = held.fill_null(False)
        cols.append(held.alias(f"{pre}.c{k}"))
        oks.append(ok)
        scale = None
        if isinstance(node, E.Cmp) and node.op in (">=", ">", "<=", "<"):
            lhs, rhs = (F.compile_expr(x, resolver(scheme)) for x in (node.left, node.right))
            if lhs.type == "num":
                dist = F.add(rhs, lhs, -1) if node.op in (">=", ">") else F.add(lhs, rhs, -1)
                cols.append(dist.expr.alias(f"{pre}.g{k}"))
                scale = dist.scale
        fields = tuple(dict.fromkeys(n.id for n in E.walk(node) if isinstance(n, E.Name) and n.id in scheme.fields))
        info.conditions.append(Condition(text, scale, fields))
    scope = pl.col("unit_type").is_in(list(a.applies_to)) if a.applies_to else pl.lit(True)
    blocking = [pl.col(f"x.{v.id}") for v in dec.vetoes if v.blocks == "all" or a.id in v.blocks]
    blocked = pl.any_horizontal(blocking) if blocking else pl.lit(False)
    cond_ok = pl.all_horizontal(oks) if oks else pl.lit(True)
    cols += [scope.alias(f"_scope.{a.id}"), (blocked & scope).alias(f"_blocked.{a.id}"),
             (scope & ~blocked & cond_ok).alias(f"_elig.{a.id}")]
    return cols, info


def _grouped(a: Award) -> bool:
    return (a.quota or Quota()).per == "unit_type"


def _quota(a: Award, counted: Callable[[pl.Expr], pl.Expr], name: Callable[[str], str]) -> pl.Expr:
    """An award's places: of the units in scope, or of the eligible ones, as `counted` counts them."""
    q = a.quota or Quota(count=sum(lv.count for lv in a.levels))
    return quota_expr(q, counted(pl.col(name(f"_scope.{a.id}" if q.of == "all" else f"_elig.{a.id}"))
                                 .cast(pl.Int64))).cast(POS)


def _position(a: Award, order: _Order, per: _PerType) -> pl.Expr:
    """Each unit's place among the eligible units (of its type) in `order`, as a column in that order."""
    elig = pl.col(order.name(f"_elig.{a.id}"))
    if not _grouped(a):
        return elig.cast(POS).cum_sum()
    return per.running(elig, order.name("_type"))


def _awards(lf: pl.LazyFrame, awards: list[tuple[Award, list[str]]], order: _Order, scheme: Scheme,
            infos: dict[str, AwardInfo], rows: int) -> pl.LazyFrame:
    """Allocate awards ranked in `order` (with their sort key columns), side by side so that Polars computes
    them in parallel. Only what needs the order is computed in it (each eligible unit's position; levels and
    boundary ties) and gathered back; quotas, statuses and gaps follow in the frame's own row order.
    An award's working columns are named _<what>:<award id>."""
    precision = scheme.meta.precision
    types = len(scheme.unit_types)

    def t(a: Award, what: str) -> str:
        return f"_{what}:{a.id}"

    def over_in_order(a: Award) -> Callable[[pl.Expr], pl.Expr]:  # a group total, in `order`
        return lambda e: e.sum().over(order.name("_type")) if _grouped(a) else e.sum()

    def window_in_order(a: Award) -> Callable[[pl.Expr], pl.Expr]:
        return lambda e: e.over(order.name("_type")) if _grouped(a) else e

    def counted(a: Award) -> Callable[[pl.Expr], pl.Expr]:  # a group total, in the frame's order
        return lambda e: _per_type(_count_of(e), types if _grouped(a) else 0)

    plain = [(a, ks) for a, ks in awards if not a.levels and a.tie_at_boundary == "strict"]
    other = [(a, ks) for a, ks in awards if (a, ks) not in plain]  # levels or a look at the boundary
    lf = order.add(lf, [f"_elig.{a.id}" for a, _ in awards]
                   + [c for a, ks in other for c in (f"_scope.{a.id}", *ks, *(["total"] if a.levels else []))])
    per = _PerType(types, rows)
    lf = lf.with_columns(_position(a, order, per).alias(t(a, "pos")) for a, _ in awards)
    if other:
        lf = lf.with_columns(_quota(a, over_in_order(a), order.name).alias(t(a, "q")) for a, _ in other)
        lf = lf.with_columns((pl.col(order.name(f"_elig.{a.id}")) & (pl.col(t(a, "pos")) <= pl.col(t(a, "q"))))
                             .alias(t(a, "sel")) for a, _ in other)
        for a, ks in other:
            if a.levels:
                lf = _levels(lf, a, window_in_order(a), precision, order.name("total"), order.name(f"_elig.{a.id}"))
            if a.tie_at_boundary != "strict":
                lf = _ties(lf, a, [order.name(k) for k in ks], window_in_order(a), order.name(f"_elig.{a.id}"))
    back = [order.back(t(a, "pos")).alias(t(a, "pos")) for a, _ in awards]
    for a, _ in other:
        back.append(order.back(t(a, "sel")).alias(t(a, "sel")))
        back += [order.back(t(a, "lvl")).alias(t(a, "lvl"))] if a.levels else []
        back += [order.back(t(a, "tie")).alias(t(a, "tie"))] if a.tie_at_boundary == "flag" else []
    lf = lf.with_columns(back)
    lf = lf.with_columns(_quota(a, counted(a), lambda c: c).alias(f"a.{a.id}.quota") for a, _ in awards)
    lf = lf.with_columns((pl.col(f"_elig.{a.id}") & (pl.col(t(a, "pos")) <= pl.col(f"a.{a.id}.quota")))
                         .alias(t(a, "sel")) for a, _ in plain)
    step = []
    for a, ks in awards:
        pre = f"a.{a.id}"
        elig, sel = pl.col(f"_elig.{a.id}"), pl.col(t(a, "sel"))
        # the first that holds (a step that cannot hold is left out: no award scope, no boundary flag)
        steps = [*([(~pl.col(f"_scope.{a.id}"), "not_applicable")] if a.applies_to else []),
                 (pl.col(f"_blocked.{a.id}"), "vetoed"), (~elig, "not_eligible"),
                 *([(pl.col(t(a, "tie")), "tie_flag")] if a.tie_at_boundary == "flag" else []),
                 (sel, "recommended")]
        status = _status("outside_quota")
        for cond, what in reversed(steps):
            status = pl.when(cond).then(_status(what)).otherwise(status)
        first, desc = pl.col(ks[0]), a.rank_by[0].descending
        gap: pl.Expr = pl.lit(None, dtype=pl.Int64)  # how far behind the last unit in, on the first key
        if infos[a.id].gap_scale is not None:
            last_in = _per_type(_last_in(first, sel, desc), types if _grouped(a) else 0)
            gap = pl.when(elig & ~sel).then((last_in - first) if desc else (first - last_in))
        step += [status.alias(pre), pl.when(elig).then(pl.col(t(a, "pos"))).alias(f"{pre}.pos"),
                 (pl.col(t(a, "lvl")) if a.levels else pl.lit(None, dtype=pl.String)).alias(f"{pre}.level"),
                 gap.alias(f"{pre}.gap")]
    return lf.with_columns(step)


def _levels(df: pl.LazyFrame, a: Award, over: Over, precision: int, total: str, elig: str) -> pl.LazyFrame:
    """一等/二等/三等 down the ranking; unused places pass down when declared."""
    lvl, sel = f"_lvl:{a.id}", f"_sel:{a.id}"
    df = df.with_columns(pl.lit(None, dtype=pl.String).alias(lvl), _carry=pl.lit(0, dtype=pl.Int64))
    for lv in a.levels:
        ok = pl.col(elig) & pl.col(lvl).is_null()
        if lv.min_score is not None:
            ok = ok & (pl.col(total) >= int(lv.min_score.scaleb(precision)))
        places = pl.col("_carry") + lv.count
        pos = over(ok.cast(pl.Int64).cum_sum())
        df = df.with_columns(pl.when(ok & (pos <= places)).then(pl.lit(lv.label)).otherwise(pl.col(lvl)).alias(lvl))
        used = over((pl.col(lvl) == lv.label).cast(pl.Int64).sum())
        df = df.with_columns(_carry=(places - used) if a.pass_down else pl.lit(0, dtype=pl.Int64))
    return df.with_columns(pl.col(lvl).is_not_null().alias(sel)).drop("_carry")


def _ties(df: pl.LazyFrame, a: Award, keys: list[str], over: Over, elig: str) -> pl.LazyFrame:
    """A tie on the quota boundary: the last unit in and the first eligible unit out are equal on every
    rank_by key but the last (the stable key)."""
    pos, q, sel = pl.col(f"_pos:{a.id}"), pl.col(f"_q:{a.id}"), pl.col(f"_sel:{a.id}")
    tie_keys = keys[:-1] or keys
    last_in = pl.col(elig) & (pos == q)
    first_out = pl.col(elig) & (pos == q + 1)
    tie = pl.col(elig)
    for k in tie_keys:  # key by key: window filters over structs are not reliable
        at_q = over(pl.col(k).filter(last_in).first())
        after = over(pl.col(k).filter(first_out).first())
        tie = tie & (at_q == after).fill_null(False) & (pl.col(k) == at_q).fill_null(False)
    df = df.with_columns(tie.alias(f"_tie:{a.id}"))
    if a.tie_at_boundary == "all_in":
        df = df.with_columns((sel | pl.col(f"_tie:{a.id}")).alias(f"_sel:{a.id}"))
    return df
