"""load: a scheme file (YAML) -> the typed, frozen `Scheme`, every problem reported at once.

The top-level keys, and which stage reads them:
  scheme, unit_types, columns, fields, sections, pools, total   -> here (scoring)
  events, vetoes, grades, ranking, awards                        -> engine.decisions / engine.events
  tests                                                          -> engine.schemetests
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from pathlib import Path
from typing import Any

from .errors import Collector, KaoheError, Loc, Problem
from .fixed import ROUNDINGS
from .methods import EXACTLY_ONE, METHODS
from .model import Columns, Field, FieldType, Item, Meta, Method, NotApplicable, Pool, Scheme, Section, Total
from .yamlread import Reader
from .yamlsrc import YList, YMap, load_yaml

TOP_KEYS = ("scheme", "unit_types", "columns", "fields", "sections", "pools", "total", "events", "vetoes",
            "grades", "ranking", "awards", "tests", "mid_year", "event_fields")
FIELD_KEYS = ("label", "type", "scale", "min", "max", "values", "unit", "required", "cumulative", "target",
              "schedule", "note")
ITEM_KEYS = ("id", "label", "points", "value", "method", "not_applicable", "applies_to", "min", "max", "unit",
             "source", "mid_year", "note")
MAX_PRECISION = 6  # decimals of subtotals and the total (items keep ITEM_SCALE = 10)
SECTION_KEYS = ("id", "label", "items", "sections", "max", "floor", "weight", "applies_to", "note")


def load_scheme(path: str | Path) -> Scheme:
    """Read and check a scheme file; raise KaoheError listing every problem found."""
    scheme, problems = read_scheme(path)
    if problems or scheme is None:
        raise KaoheError(problems)
    return scheme


def read_scheme(path: str | Path) -> tuple[Scheme | None, list[Problem]]:
    """The scheme as far as it could be read, and every problem found in it (`kaohe check` goes on to the
    decisions, events and tests of a scheme with problems, so that one round lists them all). None when the
    file is no mapping; a YAML syntax error raises KaoheError."""
    raw = load_yaml(path)
    problems = Collector()
    r = Reader(problems)
    if not isinstance(raw, YMap):
        problems.add(getattr(raw, "loc", None) or Loc(str(path)),
                     "a scheme file must be a mapping with 'scheme:', 'fields:' and 'sections:'")
        return None, problems.problems
    r.keys(raw, "", allowed_keys=TOP_KEYS, required=("scheme", "sections"))
    scheme = Scheme(
        meta=_meta(r, r.map(raw, "scheme", "[scheme]")),
        path=str(path),
        sha256=hashlib.sha256(Path(path).read_bytes()).hexdigest(),
        unit_types=_unit_types(r, raw),
        columns=_columns(r, r.map(raw, "columns", "[columns]")),
        fields=_fields(r, r.map(raw, "fields", "[fields]")),
        sections=tuple(_section(r, s, loc, "") for s, loc in _entries(r, raw, "sections")),
        pools=tuple(_pool(r, p, loc) for p, loc in _entries(r, raw, "pools")),
        total=_total(r, r.map(raw, "total", "[total]")),
        raw=raw,
        schedule=_mid_year(r, raw),
    )
    from .check import check_scheme  # noqa: PLC0415 - check needs the built model

    problems.problems.extend(check_scheme(scheme))  # reading and checking problems, reported together
    return scheme, problems.problems


def _entries(r: Reader, m: YMap, key: str) -> list[tuple[YMap, Any]]:
    out = []
    lst = r.list(m, key, f"[{key}]")
    for v, loc in zip(lst, lst.locs, strict=True):
        if isinstance(v, YMap):
            out.append((v, loc))
        else:
            r.p.add(loc, f"each entry of '{key}' must be a mapping with at least 'id:'", context=f"[{key}]")
    return out


def _meta(r: Reader, m: YMap) -> Meta:
    r.keys(m, "[scheme]", allowed_keys=("id", "label", "label_en", "year", "precision", "rounding", "source",
                                        "note"), required=("id", "label", "year"))
    precision = r.integer(m, "precision", "[scheme]", 2)
    if not 0 <= precision <= MAX_PRECISION:
        r.p.add(m.locs["precision"], f"'precision' (decimals of subtotals and the total) must be between 0 and "
                f"{MAX_PRECISION}, got {precision}", context="[scheme]")
        precision = 2
    return Meta(id=r.text(m, "id", "[scheme]"), label=r.text(m, "label", "[scheme]"),
                year=r.integer(m, "year", "[scheme]", 0), precision=precision,
                rounding=r.choice(m, "rounding", "[scheme]", ROUNDINGS, "half_up"),
                source=r.text(m, "source", "[scheme]"), label_en=r.text(m, "label_en", "[scheme]"))


def _unit_types(r: Reader, raw: YMap) -> dict[str, str]:
    m = r.map(raw, "unit_types", "[unit_types]")
    for k, v in m.items():
        if not isinstance(k, str) or not k.isidentifier():
            r.p.add(m.key_locs[k], f"unit type id '{k}' must be a name of letters, digits and _",
                    context="[unit_types]")
        if not isinstance(v, (str, int)) or isinstance(v, bool) or not str(v).strip():
            r.p.add(m.locs[k], f"unit type '{k}' needs a label, such as {k}: 村 (got {v!r})", context="[unit_types]")
    return {str(k): str(v) for k, v in m.items()}


def _columns(r: Reader, m: YMap) -> Columns:
    r.keys(m, "[columns]", allowed_keys=("id", "name", "type"))
    d = Columns()
    return Columns(id=r.text(m, "id", "[columns]", d.id), name=r.text(m, "name", "[columns]", d.name),
                   type=r.text(m, "type", "[columns]", d.type))


def _fields(r: Reader, m: YMap) -> dict[str, Field]:
    out: dict[str, Field] = {}
    for fid, spec in m.items():
        ctx = f"[fields.{fid}]"
        if not fid.isidentifier():
            r.p.add(m.key_locs[fid], f"field id '{fid}' must be a name of letters, digits and _", context=ctx)
        if not isinstance(spec, YMap):
            r.p.add(m.locs[fid], "a field needs a mapping such as {label: 完成投资, type: decimal}", context=ctx)
            continue
        r.keys(spec, ctx, allowed_keys=FIELD_KEYS, required=("type",))
        ftype: FieldType = r.choice(spec, "type", ctx, ("int", "decimal", "bool", "str"), "decimal")
        scale = r.integer(spec, "scale", ctx, 4 if ftype == "decimal" else 0)
        if ftype == "decimal" and not 0 <= scale <= 8:
            r.p.add(spec.locs["scale"], "'scale' (decimals kept) must be between 0 and 8", context=ctx)
        vals = spec.get("values")
        out[fid] = Field(
            id=fid, label=r.text(spec, "label", ctx, fid), type=ftype, loc=m.key_locs[fid],
            scale=scale if ftype == "decimal" else 0,
            min=_bound(r, spec, "min", ctx), max=_bound(r, spec, "max", ctx),
            values=tuple(str(v) for v in vals) if isinstance(vals, YList) else (),
            unit=r.text(spec, "unit", ctx),
            required=r.boolean(spec, "required", ctx, True) if not isinstance(spec.get("required"), YList) else False,
            required_for=(r.names(spec, "required", ctx) or ()) if isinstance(spec.get("required"), YList) else (),
            cumulative=r.boolean(spec, "cumulative", ctx, ftype in ("int", "decimal") and not spec.get("target")),
            target=r.boolean(spec, "target", ctx, False), schedule=_schedule(r, spec, ctx))
    return out


def _mid_year(r: Reader, raw: YMap) -> tuple[Decimal, ...]:
    m = r.map(raw, "mid_year", "[mid_year]")
    r.keys(m, "[mid_year]", allowed_keys=("schedule", "note"))
    return _schedule(r, m, "[mid_year]")


def _item_mid_year(r: Reader, m: YMap, ctx: str, points: Decimal | None) -> dict[str, Any]:
    """Item-level mid_year: {year_end_only: true, assume: full | zero | N} (scored as assumed at mid-year)."""
    if m.get("mid_year") is None:
        return {}
    v = r.map(m, "mid_year", ctx)
    r.keys(v, ctx, allowed_keys=("year_end_only", "assume", "note"))
    out: dict[str, Any] = {"year_end_only": r.boolean(v, "year_end_only", ctx, False)}
    assume = v.get("assume", "full")
    if assume not in ("full", "zero"):
        assume = r.number(v, "assume", ctx, Decimal(0))
    if assume == "full" and points is None and out["year_end_only"]:
        r.p.add(v.loc, "'assume: full' needs the item's 'points'", context=ctx, hint="or assume: zero, or a number")
    out["assume"] = assume
    return out


def _schedule(r: Reader, m: YMap, ctx: str) -> tuple[Decimal, ...]:
    """Cumulative shares due by each quarter end (4 numbers) or month end (12), rising to 1."""
    v = m.get("schedule")
    if v is None:
        return ()
    if not isinstance(v, YList) or len(v) not in (4, 12):
        r.p.add(m.locs["schedule"], "'schedule' must list 4 quarterly or 12 monthly cumulative shares, "
                "e.g. [0.2, 0.5, 0.75, 1]", context=ctx)
        return ()
    shares = tuple(r.as_number(x, loc, "'schedule'", ctx) or Decimal(0) for x, loc in zip(v, v.locs, strict=True))
    if list(shares) != sorted(shares) or shares[-1] != 1 or shares[0] < 0:
        r.p.add(m.locs["schedule"], f"'schedule' shares must rise to 1 at year end, got "
                f"[{', '.join(f'{x:f}' for x in shares)}]", context=ctx)
    return shares


def _bound(r: Reader, m: YMap, key: str, ctx: str) -> Decimal | str | None:
    v = m.get(key)
    if isinstance(v, str) and v.isidentifier():
        return v  # another field's id; resolved by check
    return r.number(m, key, ctx)


def _section(r: Reader, m: YMap, loc: Any, parent: str) -> Section:
    sid = r.ident(m, "id", "[sections]")
    ctx = f"[{sid or 'section'}]"
    r.keys(m, ctx, allowed_keys=SECTION_KEYS, required=("id",))
    items = tuple(_item(r, i, iloc, sid) for i, iloc in _entries(r, m, "items"))
    children = tuple(_section(r, c, cloc, sid) for c, cloc in _entries(r, m, "sections"))
    if not items and not children:
        r.p.add(m.loc, "a section needs 'items:' or 'sections:'", context=ctx,
                zh=("板块需要 'items:' (考核项目) 或 'sections:' (下级板块)", ""))
    return Section(id=sid, label=r.text(m, "label", ctx, sid), loc=m.key_locs.get("id", m.loc), items=items,
                   children=children, max=r.number(m, "max", ctx), floor=r.number(m, "floor", ctx),
                   weight=_weight(r.number(m, "weight", ctx, Decimal(1))),
                   applies_to=r.names(m, "applies_to", ctx), parent=parent)


def _weight(w: Decimal | None) -> Decimal:
    return Decimal(1) if w is None else w


def _pool(r: Reader, m: YMap, loc: Any) -> Pool:
    pid = r.ident(m, "id", "[pools]")
    ctx = f"[pool {pid}]"
    r.keys(m, ctx, allowed_keys=("id", "label", "items", "max", "floor", "applies_to", "note"), required=("id",))
    return Pool(id=pid, label=r.text(m, "label", ctx, pid), loc=m.key_locs.get("id", m.loc),
                items=tuple(_item(r, i, iloc, pid) for i, iloc in _entries(r, m, "items")),
                max=r.number(m, "max", ctx), floor=r.number(m, "floor", ctx),
                applies_to=r.names(m, "applies_to", ctx))


def _total(r: Reader, m: YMap) -> Total:
    r.keys(m, "[total]", allowed_keys=("max", "floor", "coefficient", "note"))
    return Total(max=r.number(m, "max", "[total]"), floor=r.number(m, "floor", "[total]"),
                 coefficient=r.expr(m, "coefficient", "[total]"))


def _item(r: Reader, m: YMap, loc: Any, parent: str) -> Item:
    iid = r.ident(m, "id", f"[{parent}.items]")
    ctx = f"[{parent}.{iid or '?'}]"
    r.keys(m, ctx, allowed_keys=ITEM_KEYS, required=("id", "method"))
    method = _method(r, m, ctx)
    spec = METHODS.get(method.kind)
    points = r.number(m, "points", ctx)
    if spec and spec.needs_points and points is None:
        r.p.add(m.loc, f"method '{method.kind}' needs the item's 'points'", context=ctx,
                zh=(f"计分方法 '{method.kind}' 需要考核项目的 'points' (分值)", ""))
    fallback = {"count": "max", "direct": "max", "deduct": "base", "threshold": "pass", "pass_fail": "pass",
                "checklist": "base"}.get(method.kind)
    if fallback and points is None and method.params.get(fallback) is None:
        r.p.add(m.loc, f"method '{method.kind}' needs the item's 'points' or its '{fallback}' parameter",
                context=ctx, hint="without them the item could never score",
                zh=(f"计分方法 '{method.kind}' 需要考核项目的 'points' (分值) 或参数 '{fallback}'",
                    "没有它们, 这一项永远不会得分"))
    value = r.expr(m, "value", ctx)
    if spec and spec.value_type and m.get("value") is None:
        r.p.add(m.loc, f"method '{method.kind}' needs a 'value' expression", context=ctx,
                zh=(f"计分方法 '{method.kind}' 需要 'value' 表达式 (计分依据的值)", ""))
    return Item(id=iid, label=r.text(m, "label", ctx, iid), loc=m.key_locs.get("id", m.loc), method=method,
                points=points, value=value, not_applicable=_na(r, m, ctx),
                applies_to=r.names(m, "applies_to", ctx), min=r.number(m, "min", ctx), max=r.number(m, "max", ctx),
                unit=r.text(m, "unit", ctx), source=r.text(m, "source", ctx),
                mid_year=_item_mid_year(r, m, ctx, points), parent=parent)


def _na(r: Reader, m: YMap, ctx: str) -> NotApplicable | None:
    v = m.get("not_applicable")
    if v is None:
        return None
    if not isinstance(v, YMap):
        r.p.add(m.locs["not_applicable"], "'not_applicable' needs {points: full|zero|N} and optionally when:",
                context=ctx)
        return None
    r.keys(v, ctx, allowed_keys=("when", "points"), required=("points",))
    pts = v.get("points")
    points: Any = pts if pts in ("full", "zero") else r.number(v, "points", ctx, Decimal(0))
    return NotApplicable(when=r.expr(v, "when", ctx), points=points)


def _method(r: Reader, m: YMap, ctx: str) -> Method:
    v = m.get("method")
    loc = m.locs.get("method", m.loc)
    if isinstance(v, str):
        kind, params = v, YMap()
        params.loc, params.locs, params.key_locs = loc, {}, {}
    elif isinstance(v, YMap) and len(v) == 1:
        kind = next(iter(v))
        if not isinstance(v[kind], YMap):
            r.p.add(v.locs[kind], f"the parameters of '{kind}' must be a mapping", context=ctx)
            return Method(kind, {}, loc)
        params = v[kind]
    else:
        if v is not None:
            r.p.add(loc, "'method' must be one method name, or {name: {parameters}}", context=ctx,
                    hint="allowed: " + ", ".join(METHODS))
        return Method("", {}, loc)
    spec = METHODS.get(kind)
    if spec is None:
        from .errors import allowed, did_you_mean  # noqa: PLC0415

        r.p.add(loc, f"unknown method '{kind}'{did_you_mean(kind, METHODS)}", context=ctx, hint=allowed(METHODS),
                zh=(f"未知的计分方法 '{kind}'{did_you_mean(kind, METHODS, 'zh')}",
                    "可用: " + ", ".join(sorted(METHODS))))
        return Method(kind, {}, loc)
    return Method(kind, _params(r, spec.params, params, f"{ctx} {kind}", kind), loc)


def _params(r: Reader, specs: Any, m: YMap, ctx: str, kind: str) -> dict[str, Any]:
    r.keys(m, ctx, allowed_keys=specs, required=[k for k, s in specs.items() if s[1]])
    out: dict[str, Any] = {k: s[2] for k, s in specs.items() if s[2] is not None}
    for key, v in m.items():
        if key not in specs:
            continue
        pk, loc = specs[key][0], m.locs[key]
        if v is None and not pk.endswith("?"):  # left empty: as if not given (required: said by r.keys); only a
            continue                            # `num?` takes it as "none" (proportional's `cap: null`: no cap)
        out[key] = _param(r, pk, v, loc, f"'{key}'", ctx)
    one_of = EXACTLY_ONE.get(kind)
    if one_of and sum(1 for k in one_of if m.get(k) is not None) != 1:
        r.p.add(m.loc, f"'{kind}' needs exactly one of: {', '.join(one_of)}", context=ctx)
    return out


def _param(r: Reader, kind: str, v: Any, loc: Any, what: str, ctx: str) -> Any:  # noqa: C901
    if v is None:
        return None
    if kind in ("num", "num?"):
        return r.as_number(v, loc, what, ctx)
    if kind == "bool":
        if not isinstance(v, bool):
            r.p.add(loc, f"{what} must be true or false", context=ctx)
        return bool(v)
    if kind.startswith("choice:"):
        opts = kind.split(":", 1)[1].split("|")
        if v not in opts:
            r.p.add(loc, f"{what} is {v!r}", context=ctx, hint="allowed: " + ", ".join(opts))
        return v
    if kind == "expr":
        return r.as_expr(v, loc, ctx)
    if kind == "list":
        return tuple(v) if isinstance(v, YList) else (v,)
    if kind in ("nums", "exprs", "table") and not isinstance(v, YList):
        r.p.add(loc, f"{what} must be a list", context=ctx)
        return None
    if kind == "nums":
        return tuple(r.as_number(x, xl, what, ctx) for x, xl in zip(v, v.locs, strict=True))
    if kind == "exprs":
        return tuple(r.as_expr(x, xl, ctx) for x, xl in zip(v, v.locs, strict=True))
    if kind == "table":
        rows = []
        for x, xl in zip(v, v.locs, strict=True):
            if not isinstance(x, YList) or len(x) != 2:
                r.p.add(xl, f"each row of {what} must be [threshold, points]", context=ctx)
                continue
            rows.append((r.as_number(x[0], xl, what, ctx), r.as_number(x[1], xl, what, ctx)))
        return tuple(rows)
    if kind == "map":
        if not isinstance(v, YMap):
            r.p.add(loc, f"{what} must be a mapping such as {{一类: 10, 二类: 8}}", context=ctx)
            return None
        return {str(k): r.as_number(x, v.locs[k], what, ctx) for k, x in v.items()}
    return v
