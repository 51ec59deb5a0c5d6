"""Mid-year simulation: as-of runs with pro-rated targets or projected actuals, and what-if scenarios.

  share(as_of)  linear: days elapsed / days in the year (2023-06-30 -> 181/365); schedule: the declared
                cumulative share at quarter (or month) ends, linear between them (2023-06-30 -> 0.5)
  --project none      targets (fields with `target: true`) x share; actuals as they are
  --project linear    year-to-date actuals (cumulative fields) / linear share; targets as they are
  --project schedule  year-to-date actuals / schedule share
Adjusted fields keep 6 more decimals (exact to 10^-6 of a unit). Items with
`mid_year: {year_end_only: true, assume: full|zero|N}` are pending: scored as assumed and marked.
Event counts stay year-to-date. A scenario overrides field values (`--set U.F=V`, or a table) and may add
events; it is scored by the same pipeline and shown beside the baseline.
"""

from __future__ import annotations

import calendar
import dataclasses
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import Any, Literal

import polars as pl

from .errors import KaoheError, Loc, Notice, Problem, did_you_mean
from .evaluate import MAX_LISTED
from .fmt import Lang, fixed_str
from .model import Field, Item, Method, Pool, Scheme, Section
from .pipeline import Loaded

Projection = Literal["none", "linear", "schedule"]
EXTRA = 6  # decimals added to an adjusted field


def linear_share(as_of: date) -> Fraction:
    start = date(as_of.year, 1, 1)
    days = 366 if calendar.isleap(as_of.year) else 365
    return Fraction((as_of - start).days + 1, days)


def schedule_share(as_of: date, schedule: tuple[Decimal, ...]) -> Fraction:
    """The declared cumulative share at period ends; linear by days within a period."""
    periods = len(schedule)
    months = 12 // periods
    k = (as_of.month - 1) // months  # the period the date falls in
    start = date(as_of.year, k * months + 1, 1)
    end_month = (k + 1) * months
    end = date(as_of.year, end_month, calendar.monthrange(as_of.year, end_month)[1])
    before = Fraction(schedule[k - 1]) if k else Fraction(0)
    within = Fraction((as_of - start).days + 1, (end - start).days + 1)
    return before + (Fraction(schedule[k]) - before) * within


@dataclass(frozen=True)
class AsOf:
    as_of: date
    project: Projection
    linear: Fraction
    pending: tuple[str, ...]  # item ids scored as assumed
    adjusted: dict[str, tuple[str, str]]  # field id -> ("pro_rated" | "projected", the share: "0.4959")
    projected: dict[str, Fraction] = dataclasses.field(default_factory=dict)  # field id -> 1 / share, exactly


def placed(events: pl.DataFrame, path: str) -> pl.DataFrame:
    """The event log with each event's file and line (_src, _line), once: a year-to-date run leaves events
    out and a scenario adds some, so a position in the frame is no longer a line of the log
    (engine.events.run_event_rules says problems at these)."""
    if "_src" in events.columns:
        return events
    return events.with_columns(_src=pl.lit(path), _line=pl.int_range(2, pl.len() + 2, dtype=pl.Int64))


def as_of_run(ld: Loaded, as_of: date, project: Projection) -> tuple[Loaded, AsOf]:
    """The loaded inputs transformed to a year-to-date run at `as_of`."""
    scheme = ld.scheme
    if project == "schedule" and not scheme.schedule and not any(f.schedule for f in scheme.fields.values()):
        raise KaoheError([Problem(Loc(scheme.path), "--project schedule needs a schedule in the scheme",
                                  hint="declare mid_year: {schedule: [0.2, 0.5, 0.75, 1]} or a field's schedule:")])
    fields = dict(scheme.fields)
    frame = ld.units
    notes: dict[str, tuple[str, str]] = {}
    factors: dict[str, Fraction] = {}
    for f in scheme.fields.values():
        if f.type not in ("int", "decimal"):
            continue
        share = _share(f, scheme, as_of, project)
        if project == "none" and f.target:
            factor, kind = share, "pro_rated"
        elif project != "none" and f.cumulative and not f.target:
            factor, kind = 1 / share, "projected"
        else:
            continue
        fields[f.id] = dataclasses.replace(f, type="decimal", scale=f.scale + EXTRA)
        moved = pl.col(f.id).cast(pl.Int128) * (10**EXTRA * factor.numerator) // factor.denominator
        _fits_int64(frame, moved, f, ld.path, adjusted_text(kind, _fmt(share), "en"))
        frame = frame.with_columns(moved.cast(pl.Int64).alias(f.id))
        notes[f.id] = (kind, _fmt(share))
        if kind == "projected":
            factors[f.id] = factor
    scheme, pending = _pending(dataclasses.replace(scheme, fields=fields))
    scheme = dataclasses.replace(scheme, meta=dataclasses.replace(scheme.meta, year=as_of.year))
    events, said = ld.events, ld.notes
    if ld.events is not None:
        events = placed(ld.events, str(ld.inputs.events)).filter(pl.col("date") <= as_of)
        later = ld.events.height - events.height
        if later:  # left out without a word, an accident in July would seem to have no effect
            notice = Notice(Problem(Loc(str(ld.inputs.events)), f"{later} event{'s' if later != 1 else ''} after "
                                    f"{as_of} not counted in the run as of {as_of}",
                                    zh=(f"{as_of} 之后的 {later} 个事件不计入截至 {as_of} 的计算", "")))
            warnings.warn(notice, stacklevel=2)
            said += (notice.problem.text(ld.inputs.lang),)
    info = AsOf(as_of, project, linear_share(as_of), pending, notes, factors)
    return dataclasses.replace(ld, scheme=scheme, units=frame, events=events, notes=said), info


def year_to_date(info: AsOf, original: Loaded) -> Callable[[list[Any]], list[Any]]:
    """The gap solver's changes to projected fields (`--project linear|schedule`) restated in the field's own
    year-to-date values, on its own decimal grid: the least year-to-date value whose projection reaches what
    the solver found (the greatest, for a decrease). Solved on the projected values they read '+52.17154707万元
    (847.82845303 → 900.0000001)' or '+2.105项' for a whole-number field; now '+25.88万元 (420.43 → 446.31)'."""
    if not info.projected:
        return lambda changes: changes
    ids = original.units.get_column("unit_id").to_list()
    values = {f: dict(zip(ids, original.units.get_column(f).to_list(), strict=True)) for f in info.projected}

    def convert(changes: list[Any]) -> list[Any]:
        out = []
        for c in changes:
            factor = info.projected.get(c.field)
            y0 = values.get(c.field, {}).get(c.unit_id)
            if c.status != "solved" or factor is None or not c.delta or y0 is None:
                out.append(c)
                continue
            scale = original.scheme.fields[c.field].scale
            a = int(Decimal(c.after).scaleb(scale + EXTRA))  # projected: floor(y · 10^EXTRA · n / d) >= a
            k, d = 10**EXTRA * factor.numerator, factor.denominator
            y = -(-a * d // k) if Decimal(c.delta) > 0 else -(-(a + 1) * d // k) - 1
            out.append(dataclasses.replace(c, before=fixed_str(y0, scale), after=fixed_str(y, scale),
                                  delta=("+" if y > y0 else "") + fixed_str(y - y0, scale)))
        return out

    return convert


def adjusted_text(kind: str, share: str, lang: Lang) -> str:
    """How a field's year-to-date value was adjusted: pro-rated (a target) or projected (an actual)."""
    if kind == "pro_rated":
        return f"按进度折算 × {share}" if lang == "zh" else f"pro-rated × {share}"
    return f"预测全年 ÷ {share}" if lang == "zh" else f"projected to year end ÷ {share}"


def _fits_int64(frame: pl.DataFrame, moved: pl.Expr, f: Field, path: str, note: str) -> None:
    """A pro-rated or projected value must stay exact in 64 bits: say which units' values are too large."""
    big = frame.filter(~moved.is_between(-(2**63), 2**63 - 1)).select("_row", "unit_id", f.id).head(MAX_LISTED)
    if big.height:
        raise KaoheError([Problem(Loc(path, row=r, column=f.id), f"unit {u}: {f.label} {fixed_str(v, f.scale)} is too "
                                  f"large to pro-rate or project ({note}) exactly",
                                  hint="check the value (or the --set/--scenario that gave it)")
                          for r, u, v in big.iter_rows()])


def _share(f: Field, scheme: Scheme, as_of: date, project: Projection) -> Fraction:
    sched = f.schedule or scheme.schedule
    if project == "linear" or not sched:
        return linear_share(as_of)
    return schedule_share(as_of, sched)


def _fmt(x: Fraction) -> str:
    d = Decimal(x.numerator) / Decimal(x.denominator)
    return f"{d:.4f}".rstrip("0").rstrip(".")


def _pending(scheme: Scheme) -> tuple[Scheme, tuple[str, ...]]:
    """Items marked year-end-only become fixed points at their assumed value."""
    pending: list[str] = []

    def item(it: Item) -> Item:
        m = it.mid_year or {}
        if not m.get("year_end_only"):
            return it
        pending.append(it.id)
        assume = m.get("assume", "full")
        pts = it.points if assume == "full" else Decimal(0) if assume == "zero" else assume
        return dataclasses.replace(it, method=Method("fixed", {}, it.method.loc), points=pts or Decimal(0),
                                   value=None, not_applicable=None)

    def section(s: Section) -> Section:
        return dataclasses.replace(s, items=tuple(item(i) for i in s.items),
                                   children=tuple(section(c) for c in s.children))

    def pool(p: Pool) -> Pool:
        return dataclasses.replace(p, items=tuple(item(i) for i in p.items))

    out = dataclasses.replace(scheme, sections=tuple(section(s) for s in scheme.sections),
                              pools=tuple(pool(p) for p in scheme.pools))
    return out, tuple(pending)


# --- scenarios ------------------------------------------------------------------------------

def parse_sets(sets: tuple[str, ...], ld: Loaded) -> pl.DataFrame:
    """'V03.hazards_fixed=20' (unit id or name, field id or label) -> a one-row-per-unit override table."""
    by_label = {f.label: f.id for f in ld.scheme.fields.values()}
    ids = ld.units.get_column("unit_id").to_list()
    names = dict(zip(ld.units.get_column("name").to_list(), ids, strict=True))
    shared = set(ld.units.filter(pl.col("name").is_duplicated()).get_column("name").to_list())
    rows: dict[str, dict[str, Any]] = {}
    problems = []
    for i, s in enumerate(sets, 1):
        where = Loc(f"--set #{i}")
        lhs, eq, value = s.partition("=")
        unit, dot, field = lhs.strip().rpartition(".")
        if not eq or not dot:
            problems.append(Problem(where, f"'{s}' is not UNIT.FIELD=VALUE", hint="e.g. --set V03.hazards_fixed=20",
                                    zh=(f"'{s}' 不是 单位.字段=值 的写法", "例如 --set V03.hazards_fixed=20")))
            continue
        if unit not in ids and unit in shared:  # (the last unit of that name was changed, without a word)
            problems.append(Problem(where, f"'{unit}' is the name of several units; give the unit's id",
                                    zh=(f"有几个单位叫 '{unit}'; 请给出单位编号", "")))
            continue
        uid = unit if unit in ids else names.get(unit)
        fid = field if field in ld.scheme.fields else by_label.get(field)
        if uid is None:
            problems.append(Problem(where, f"unknown unit '{unit}'{did_you_mean(unit, ids + list(names))}",
                                    zh=(f"没有单位 '{unit}'{did_you_mean(unit, ids + list(names), 'zh')}",
                                        "单位可写编号或名称")))
        if fid is None:
            known = [*ld.scheme.fields, *by_label]
            problems.append(Problem(where, f"unknown field '{field}'{did_you_mean(field, known)}",
                                    zh=(f"没有字段 '{field}'{did_you_mean(field, known, 'zh')}", "字段可写编号或名称")))
        if not value.strip():  # an empty cell of an override table keeps the data: here it would do nothing
            problems.append(Problem(where, f"'{s}' gives no value", hint=f"e.g. --set {lhs.strip()}=20",
                                    zh=(f"'{s}' 没有给出值", f"例如 --set {lhs.strip()}=20")))
        elif uid is not None and fid is not None:
            rows.setdefault(uid, {"unit_id": uid})[fid] = value.strip()
    if problems:
        raise KaoheError(problems)
    cols = sorted({k for r in rows.values() for k in r} - {"unit_id"})
    return pl.DataFrame([{c: r.get(c) for c in ["unit_id", *cols]} for r in rows.values()],
                        schema={c: pl.String for c in ["unit_id", *cols]})


def apply_sets(ld: Loaded, sets: tuple[str, ...]) -> Loaded:
    """`--set UNIT.FIELD=VALUE`s applied; a value the field refuses is named by the --set that gave it (not
    by a row of the table they make)."""
    table = parse_sets(sets, ld)
    try:
        return apply_overrides(ld, table, "--set")
    except KaoheError as e:
        units = table.get_column("unit_id").to_list()
        named = dict(zip(ld.units.get_column("name").to_list(), ld.units.get_column("unit_id").to_list(),
                         strict=True))

        def given(p: Problem) -> Problem:  # the --set of that unit and field (the last one: it is the one used)
            col, row = p.loc.column, p.loc.row
            if p.loc.file != "--set" or row is None or col is None or not 2 <= row < len(units) + 2:
                return p
            uid = units[row - 2]
            label = ld.scheme.fields[col].label if col in ld.scheme.fields else col

            def names_it(s: str) -> bool:
                u, _, f = s.partition("=")[0].strip().rpartition(".")
                return uid in (u, named.get(u)) and f in (col, label)

            said = [s for s in sets if names_it(s)]
            return dataclasses.replace(p, loc=Loc(f"--set {said[-1] if said else f'{uid}.{col}'}"))

        raise KaoheError([given(p) for p in e.problems]) from None


def apply_overrides(ld: Loaded, table: pl.DataFrame, path: str) -> Loaded:
    """Override field values per unit (text cells parsed exactly by field type; empty cells keep the data)."""
    from .data import _field_problems, _parse  # noqa: PLC0415

    fields = [ld.scheme.fields[c] for c in table.columns if c in ld.scheme.fields]
    unknown = [c for c in table.columns if c != "unit_id" and c not in ld.scheme.fields]
    problems = [Problem(Loc(path, row=1, column=c), f"unknown field '{c}'{did_you_mean(c, ld.scheme.fields)}",
                        zh=(f"没有字段 '{c}'{did_you_mean(c, ld.scheme.fields, 'zh')}", "列名用字段编号或名称"))
                for c in unknown]
    ids = set(ld.units.get_column("unit_id").to_list())
    first: dict[str, int] = {}  # a unit's row (a second one would duplicate the unit in every result)
    for i, u in enumerate(table.get_column("unit_id").cast(pl.String).to_list(), 2):
        if u not in ids:
            problems.append(Problem(Loc(path, row=i, column="unit_id"),
                                    f"unknown unit '{u}'{did_you_mean(str(u), ids)}",
                                    zh=(f"没有单位 '{u}'{did_you_mean(str(u), ids, 'zh')}", "")))
        elif u in first:
            problems.append(Problem(Loc(path, row=i, column="unit_id"), f"unit '{u}' has a row already (row "
                                    f"{first[u]})", hint="give each unit one row, with every change to it",
                                    zh=(f"单位 '{u}' 已有一行 (第 {first[u]} 行)", "每个单位一行, 写上对它的全部改动")))
        else:
            first[u] = i
    raw = table.with_row_index("_row", offset=2)
    parsed = raw.select("_row", pl.col("unit_id").cast(pl.String), *[_parse(raw.schema, f) for f in fields])
    for f in fields:  # types and fixed bounds here; bounds naming another field once merged, below
        plain = dataclasses.replace(f, min=None if isinstance(f.min, str) else f.min,
                                    max=None if isinstance(f.max, str) else f.max, required=False)
        problems += _field_problems(raw, parsed, plain, path, ld.scheme)
    if problems:
        raise KaoheError(problems)
    frame = ld.units
    for f in fields:
        upd = parsed.select("unit_id", pl.col(f.id).alias("_new")).filter(pl.col("_new").is_not_null())
        frame = frame.join(upd, on="unit_id", how="left", maintain_order="left").with_columns(
            pl.coalesce("_new", f.id).alias(f.id)).drop("_new")
    problems += _ref_bounds(ld.scheme, frame, parsed, fields, path)
    if problems:
        raise KaoheError(problems)
    return dataclasses.replace(ld, units=frame)


def _ref_bounds(scheme: Scheme, frame: pl.DataFrame, parsed: pl.DataFrame, fields: list[Field], path: str
                ) -> list[Problem]:
    """An override must keep bounds that name another field (fixed <= found), checked on the merged data."""
    from .fmt import fixed_str  # noqa: PLC0415

    out = []
    rows = dict(zip(parsed.get_column("unit_id").to_list(), parsed.get_column("_row").to_list(), strict=True))
    for f in fields:
        for which in ("min", "max"):
            ref = getattr(f, which)
            if not isinstance(ref, str):
                continue
            other = scheme.fields[ref]
            lim = pl.col(ref) * 10**f.scale // 10**other.scale
            bad = frame.filter(pl.col("unit_id").is_in(list(rows)) & ((pl.col(f.id) < lim) if which == "min"
                                                                       else (pl.col(f.id) > lim)).fill_null(False))
            for r in bad.iter_rows(named=True):
                out.append(Problem(Loc(path, row=rows[r["unit_id"]], column=f.id),
                                   f"{f.label} {fixed_str(r[f.id], f.scale)} would be "
                                   f"{'below' if which == 'min' else 'above'} {other.label} "
                                   f"{fixed_str(r[ref], other.scale)} of unit {r['unit_id']}",
                                   hint=f"{f.id} must be {'at least' if which == 'min' else 'at most'} {ref}"))
    return out


def scenario_events(ld: Loaded, path: Any, encoding: str | None) -> Loaded:
    """A scenario file: a table of overrides (unit_id + fields), or extra events (event_id, date, unit_id, kind)."""
    from .io import map_columns, read_table  # noqa: PLC0415
    from .io_columns import EVENT_ALIASES  # noqa: PLC0415

    table = read_table(path, encoding=encoding, what="scenario")
    if {"event_id", "date", "kind"} <= {EVENT_ALIASES.get(h, h) for h in table.columns}:  # (事件编号, 日期, …)
        from .event_rules import read_events  # noqa: PLC0415

        extra = read_events(ld.scheme, path, ld.units.get_column("unit_id"), encoding=encoding, year=ld.year)
        extra = placed(extra, str(path))
        events = extra if ld.events is None else pl.concat([placed(ld.events, str(ld.inputs.events)), extra],
                                                           how="diagonal_relaxed")
        dup = events.filter(pl.col("event_id").is_duplicated()).get_column("event_id").unique().to_list()
        if dup:
            raise KaoheError([Problem(Loc(str(path), column="event_id"),
                                      f"scenario event ids already in the event log: {', '.join(map(str, dup[:5]))}",
                                      hint="give scenario events their own ids")])
        return dataclasses.replace(ld, events=events)
    if "unit_id" not in table.columns:
        raise KaoheError([Problem(Loc(str(path), row=1), "a scenario table needs a unit_id column",
                                  hint="columns: unit_id and the fields to override, or event_id/date/unit_id/kind")])
    table = map_columns(table, {f.id: f.label for f in ld.scheme.fields.values()}, path=path)
    return apply_overrides(ld, table, str(path))
