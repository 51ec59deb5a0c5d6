"""check: the scheme is consistent before any data is touched (STYLE 2).

Ids unique, references resolve, expressions type-check against declared fields with a
did-you-mean, parameters make sense (bands ordered, floors under caps). Returns problems;
the loader fails once with all of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from decimal import Decimal

from .errors import Loc, Problem, did_you_mean
from .expr import Expr, Type, literal_problems, typecheck
from .methods import METHODS
from .model import Item, Scheme

FIELD_TYPES: dict[str, Type] = {"int": "num", "decimal": "num", "bool": "bool", "str": "str"}


def field_env(scheme: Scheme) -> dict[str, Type]:
    return {f.id: FIELD_TYPES[f.type] for f in scheme.fields.values()}


def check_scheme(scheme: Scheme) -> list[Problem]:
    out: list[Problem] = []
    out += _unique(scheme)
    out += _fields(scheme)
    env = field_env(scheme)
    for s in scheme.all_sections():
        out += _applies(scheme, s.applies_to, s.loc, f"[{s.id}]")
        out += _range(s.floor, s.max, s.loc, f"[{s.id}]", "floor", "max")
        if s.weight <= 0:
            out.append(Problem(s.loc, "'weight' must be above 0", f"[{s.id}]"))
    for pool in scheme.pools:
        out += _applies(scheme, pool.applies_to, pool.loc, f"[pool {pool.id}]")
        out += _range(pool.floor, pool.max, pool.loc, f"[pool {pool.id}]", "floor", "max")
    for item in scheme.all_items():
        out += _item(scheme, item, env)
    p = scheme.meta.precision
    for what, nodes in (("section", scheme.all_sections()), ("pool", scheme.pools)):
        for n in nodes:
            for key in ("max", "floor"):
                b = getattr(n, key)
                if b is not None and -b.as_tuple().exponent > p:
                    out.append(Problem(n.loc, f"{what} '{key}: {b}' has more decimals than the scheme's precision {p}",
                                       f"[{n.id}]", "round the bound, or raise scheme.precision"))
    for key in ("max", "floor"):
        b = getattr(scheme.total, key)
        if b is not None and -b.as_tuple().exponent > p:
            out.append(Problem(Loc(scheme.path), f"total '{key}: {b}' has more decimals than the precision {p}",
                               "[total]"))
    if scheme.total.coefficient is not None:
        out += typecheck(scheme.total.coefficient, env, want="num", context="[total]")
    out += _range(scheme.total.floor, scheme.total.max, Loc(scheme.path), "[total]", "floor", "max")
    return out


def _unique(scheme: Scheme) -> list[Problem]:
    out: list[Problem] = []
    for kind, nodes in (("section", scheme.all_sections()), ("item", scheme.all_items()), ("pool", scheme.pools)):
        seen: dict[str, Loc] = {}
        for n in nodes:
            if n.id and n.id in seen:
                out.append(Problem(n.loc, f"duplicate {kind} id '{n.id}'", "",
                                   f"first used at line {seen[n.id].line}; ids must be unique"))
            seen.setdefault(n.id, n.loc)
    return out


# the columns kaohe adds for each unit; expressions read some of them (total, grade)
RESULT_NAMES = ("unit_id", "name", "unit_type", "total", "grade", "rank", "order", "rank_all", "order_all", "vetoed")


def _fields(scheme: Scheme) -> list[Problem]:
    out: list[Problem] = []
    cols = scheme.columns
    taken = {*RESULT_NAMES, cols.id, cols.name, cols.type}
    for f in scheme.fields.values():
        if f.id in taken or f.id.startswith("_"):
            what = "begins with _, which kaohe keeps for its own columns" if f.id.startswith("_") else (
                "is the unit's id, name or type column" if f.id in (cols.id, cols.name, cols.type) else
                "is the name of a result kaohe computes")
            out.append(Problem(f.loc, f"field id '{f.id}' {what}", f"[fields.{f.id}]",
                               f"rename the field (e.g. '{f.id.strip('_')}_value'); a data column is read by the "
                               "field's id or its label, so giving the label the column's header keeps the data "
                               "as it is"))
        for which in ("min", "max"):
            b = getattr(f, which)
            if isinstance(b, str):
                other = scheme.fields.get(b)
                if other is None:
                    out.append(Problem(f.loc, f"'{which}: {b}' names no field{did_you_mean(b, scheme.fields)}",
                                       f"[fields.{f.id}]"))
                elif other.type not in ("int", "decimal"):
                    out.append(Problem(f.loc, f"'{which}: {b}' must name a number field", f"[fields.{f.id}]"))
            elif b is not None and f.type not in ("int", "decimal"):
                out.append(Problem(f.loc, f"'{which}' only applies to int and decimal fields", f"[fields.{f.id}]"))
        if isinstance(f.min, Decimal) and isinstance(f.max, Decimal):
            out += _range(f.min, f.max, f.loc, f"[fields.{f.id}]", "min", "max")
        out += _applies(scheme, f.required_for, f.loc, f"[fields.{f.id}]")
    return out


def _applies(scheme: Scheme, names: Iterable[str] | None, loc: Loc, ctx: str) -> list[Problem]:
    return [Problem(loc, f"unknown unit type '{n}'{did_you_mean(n, scheme.unit_types)}", ctx,
                    "allowed: " + ", ".join(scheme.unit_types))
            for n in names or () if n not in scheme.unit_types]


def _range(lo: Decimal | None, hi: Decimal | None, loc: Loc, ctx: str, a: str, b: str) -> list[Problem]:
    if lo is not None and hi is not None and lo > hi:
        return [Problem(loc, f"impossible range: {a} {lo} is above {b} {hi}", ctx)]
    return []


def text_domains(scheme: Scheme) -> dict[str, dict[str, str]]:
    """The names whose text values are known, each value with its label: the unit types and the text fields
    that declare their `values` (`expr.literal_problems`)."""
    out = {"unit_type": dict(scheme.unit_types)}
    out.update({f.id: {v: v for v in f.values} for f in scheme.fields.values() if f.type == "str" and f.values})
    return out


def _read_too_early(scheme: Scheme, p: Problem) -> Problem:
    """'unknown section 'safety'' for a section that exists: an item cannot read it (sections are made of
    items); say so, and where it can be read."""
    kinds = (("section", {s.id for s in scheme.all_sections()}), ("item", {i.id for i in scheme.all_items()}),
             ("pool", {q.id for q in scheme.pools}),
             ("event", {r.get("id") for r in scheme.raw.get("events") or [] if isinstance(r, dict)}))
    for kind, known in kinds:
        head = f"unknown {kind} '"
        if p.message.startswith(head) and p.message[len(head):].split("'", 1)[0] in known:
            return replace(p, message=f"an item's expression reads fields only, not {kind}.X: items make the "
                           "sections and pools", hint=f"{kind}.X can be read by vetoes, the ranking and awards")
    return p


def _item(scheme: Scheme, item: Item, env: dict[str, Type]) -> list[Problem]:
    ctx = f"[{item.parent}.{item.id}]"
    out = _applies(scheme, item.applies_to, item.loc, ctx)
    spec = METHODS.get(item.method.kind)
    if spec is None:
        return out
    domains = text_domains(scheme)

    def checked(e: Expr, want: Type | None) -> list[Problem]:
        return [_read_too_early(scheme, p) for p in typecheck(e, env, want=want, context=ctx)] + \
            literal_problems(e, domains, ctx)

    if item.value is not None and spec.value_type is not None:
        out += checked(item.value, spec.value_type)
    if item.not_applicable and item.not_applicable.when is not None:
        out += checked(item.not_applicable.when, "bool")
    if item.not_applicable and item.not_applicable.points == "full" and item.points is None:
        out.append(Problem(item.loc, "'not_applicable: {points: full}' needs the item's 'points'", ctx))
    p = item.method.params
    loc = item.method.loc
    for key, value in p.items():
        if isinstance(value, Expr):
            out += checked(value, "num" if key == "points" else "bool")
        elif isinstance(value, tuple) and any(isinstance(e, Expr) for e in value):  # None: did not parse (reported)
            out += [pr for e in value if isinstance(e, Expr) for pr in checked(e, "bool")]
    out += _range(item.min, item.max, item.loc, ctx, "min", "max")
    out += _method_params(scheme, item, ctx, loc)
    return out


def _method_params(scheme: Scheme, item: Item, ctx: str, loc: Loc) -> list[Problem]:  # noqa: C901
    p, kind, out = item.method.params, item.method.kind, []
    if kind == "bands":
        for key, descending in (("at_least", True), ("above", True), ("at_most", False), ("below", False)):
            rows = [r for r in (p.get(key) or ()) if None not in r]
            th = [r[0] for r in rows]
            if th != sorted(th, reverse=descending) or len(set(th)) != len(th):
                order = "from highest to lowest" if descending else "from lowest to highest"
                shown = ", ".join(f"{t:f}" for t in th)
                out.append(Problem(loc, f"'{key}' thresholds must run {order} without repeats: [{shown}]", ctx,
                                   "the first band that holds gives the points"))
    if kind == "steps":
        for key in ("step", "above_step", "below_step"):
            if p.get(key) is not None and p[key] <= 0:
                out.append(Problem(loc, f"'{key}' must be above 0", ctx))
        if p.get("step") is None and (p.get("above_step") is None or p.get("below_step") is None):
            out.append(Problem(loc, "'steps' needs 'step', or both 'above_step' and 'below_step'", ctx))
    if kind in ("direct", "assessed"):
        out += _range(p.get("min"), p.get("max"), loc, ctx, "min", "max")
    if kind == "lookup" and item.value is not None and p.get("table"):
        names = item.value.names()
        fld = scheme.fields.get(next(iter(names))) if len(names) == 1 else None
        if fld and fld.values:
            unknown = [k for k in p["table"] if k not in fld.values]
            if unknown:
                out.append(Problem(loc, f"table keys {unknown} are not values of field '{fld.id}'", ctx,
                                   "allowed: " + ", ".join(fld.values)))
            missing = [v for v in fld.values if v not in p["table"]]
            if missing and p.get("else") is None:
                out.append(Problem(loc, f"no points for {missing}; add them to the table or give 'else'", ctx))
    if kind in ("rank", "share_of_leader", "efficacy"):
        for g in p.get("within") or ():
            if g not in scheme.fields and g not in (scheme.columns.type, "unit_type"):
                out.append(Problem(loc, f"'within: {g}' names no field{did_you_mean(g, [*scheme.fields, 'unit_type'])}",
                                   ctx, "within takes field ids, or unit_type (each unit compared with its own type)"))
        if kind == "rank" and p.get("linear") is not None and len(p["linear"]) != 2:
            out.append(Problem(loc, "'linear' needs [points of first place, points of last place]", ctx))
    return out
