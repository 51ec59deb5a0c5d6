"""Event rules: load them from the scheme, read and validate the event log, run them (engine.events).

The event log has one row per incident: event_id, date, unit_id, kind, plus attribute columns
declared under `event_fields:` in the scheme (defaults: level, deaths, households, value, note).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl

from .check import FIELD_TYPES
from .data import MAX_LISTED, Said, _field_problems, _parse, _rows, merged_cell, merged_mask
from .errors import Collector, KaoheError, Loc, Problem, did_you_mean
from .expr import Type, typecheck
from .model import Field, Scheme
from .yamlread import Reader
from .yamlsrc import YMap

BASE_COLUMNS = ("event_id", "date", "unit_id", "kind")
DEFAULT_EVENT_FIELDS = {
    "level": Field("level", "级别", "str", Loc("<default>"), required=False),
    "deaths": Field("deaths", "死亡人数", "int", Loc("<default>"), min=Decimal(0), required=False),
    "households": Field("households", "涉及户数", "int", Loc("<default>"), min=Decimal(0), required=False),
    "value": Field("value", "数值", "decimal", Loc("<default>"), scale=4, required=False),
    "note": Field("note", "备注", "str", Loc("<default>"), required=False),
}
RULE_KEYS = ("id", "label", "when", "points", "section", "pool", "veto", "nth", "within_days", "max", "source",
             "note")
DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日", "%Y%m%d", "%Y-%m-%d %H:%M:%S",
                "%Y-%m-%d %H:%M:%S%.f")
BASE_LABELS = {"event_id": "事件编号", "date": "日期", "unit_id": "单位编号", "kind": "事件类型"}
EVENT_SHEETS = ("事件记录", "events")  # the sheet of an .xlsx event log (the template's), else the first


def event_fields(scheme: Scheme) -> dict[str, Field]:
    from .scheme import _fields  # noqa: PLC0415

    declared = scheme.raw.get("event_fields")
    fields = dict(DEFAULT_EVENT_FIELDS)
    if isinstance(declared, YMap):
        problems = Collector()
        fields.update(_fields(Reader(problems), declared))
        for fid in declared:
            if fid in BASE_COLUMNS or str(fid).startswith("_"):
                problems.add(declared.key_locs[fid], f"event field '{fid}' is " + (
                    "one of the columns every event log has (" + ", ".join(BASE_COLUMNS) + ")"
                    if fid in BASE_COLUMNS else "a name beginning with _, which kaohe keeps for its own columns"),
                    context=f"[event_fields.{fid}]",
                    hint="rename the field" + (" (the log's own columns need no declaration)"
                                               if fid in BASE_COLUMNS else ""))
        problems.raise_if_any()
    return fields


def _env(scheme: Scheme) -> dict[str, Type]:
    env: dict[str, Type] = {"kind": "str", "event_id": "str", "unit_id": "str"}
    env.update({f.id: FIELD_TYPES[f.type] for f in event_fields(scheme).values()})
    return env


def load_event_rules(scheme: Scheme) -> list[Any]:
    """The scheme's `events:` as EventRule objects; every problem reported at once."""
    from .events import EventRule  # noqa: PLC0415 - the durable-rules adapter

    problems = Collector()
    r = Reader(problems)
    env = _env(scheme)
    sections = {s.id for s in scheme.all_sections()}
    pools = {p.id for p in scheme.pools}
    vetoes = {v["id"] for v in scheme.raw.get("vetoes") or [] if isinstance(v, YMap) and isinstance(v.get("id"), str)}
    rules = []
    lst = r.list(scheme.raw, "events", "[events]")
    for m, loc in zip(lst, lst.locs, strict=True):
        if not isinstance(m, YMap):
            problems.add(loc, "each event rule must be a mapping with id, when and points or veto")
            continue
        rid = r.ident(m, "id", "[events]")
        ctx = f"[event {rid}]"
        r.keys(m, ctx, allowed_keys=RULE_KEYS, required=("id", "when"))
        when = r.expr(m, "when", ctx)
        if when is not None:
            problems.problems += typecheck(when, env, want="bool", context=ctx)
        kw: dict[str, Any] = _points(r, m, ctx, env)
        target = _target(problems, m, ctx, {"section": sections, "pool": pools})
        has_points = any(kw.get(k) is not None for k in ("points", "points_table", "each"))
        if has_points and m.get("section") is None and m.get("pool") is None:  # (one that names nothing: said above)
            problems.add(m.loc, "points need a target: 'section: X' or 'pool: Y'", context=ctx)
        veto = _id_of(problems, m, "veto", ctx, vetoes, hint="declare it under 'vetoes:'")
        if not has_points and m.get("veto") is None:
            problems.add(m.loc, "an event rule needs 'points' or 'veto'", context=ctx)
        nth = m.get("nth")
        within = m.get("within_days")
        for key, v, most in (("nth", nth, 1_000_000), ("within_days", within, 366)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= most):
                problems.add(m.locs[key], f"'{key}' must be a whole number from 1 to {most:,}", context=ctx)
        most_points = r.number(m, "max", ctx)  # 通报批评每次扣1分, 最多扣3分: the rule's points per unit at most
        if most_points is not None and (most_points <= 0 or not has_points):
            problems.add(m.locs["max"], "'max' is the most points (in size) the rule gives one unit in the year: a "
                         "number above 0, on a rule with points", context=ctx)
            most_points = None
        if when is not None:
            rules.append(EventRule(id=rid, label=r.text(m, "label", ctx, rid), when=when, target=target, veto=veto,
                                   nth=nth, within_days=within, max=most_points, loc=m.key_locs.get("id", m.loc),
                                   **kw))
    problems.raise_if_any()
    return rules


def _id_of(problems: Collector, m: YMap, key: str, ctx: str, known: set[str], hint: str = "") -> str | None:
    """The id `key` names (a section, pool or veto; an unknown one is said), None when not given or no id."""
    v = m.get(key)
    if v is None:
        return None
    if not isinstance(v, str):  # a number, list or mapping names nothing
        problems.add(m.locs[key], f"'{key}' must be the id of a {key}, got {v!r}", context=ctx)
        return None
    if v not in known:
        problems.add(m.locs[key], f"unknown {key} '{v}'{did_you_mean(v, known)}", context=ctx, hint=hint)
    return v


def _target(problems: Collector, m: YMap, ctx: str, known: dict[str, set[str]]) -> str:
    """section:<id> or pool:<id>, where the rule's points go ("" when neither is given)."""
    target = ""
    for key in ("section", "pool"):
        if (v := _id_of(problems, m, key, ctx, known[key])) is not None:
            target = f"{key}:{v}"
    if "section" in m and "pool" in m:
        problems.add(m.loc, "give 'section' or 'pool', not both", context=ctx)
    return target


def _points(r: Reader, m: YMap, ctx: str, env: dict[str, Type]) -> dict[str, Any]:
    v = m.get("points")
    if v is None:
        return {}
    if not isinstance(v, YMap):
        return {"points": r.number(m, "points", ctx)}
    r.keys(v, ctx, allowed_keys=("by", "table", "per", "each", "else"))
    if "by" in v:
        by = str(v["by"])
        if by not in env:
            r.p.add(v.locs["by"], f"unknown event field '{by}'{did_you_mean(by, env)}", context=ctx)
        table = r.map(v, "table", ctx)
        return {"points_by": by, "points_table": {str(k): r.as_number(x, table.locs[k], "points", ctx)
                                                   for k, x in table.items()}}
    if "per" in v:
        per = str(v["per"])
        if env.get(per) != "num":
            r.p.add(v.locs["per"], f"'per' must name a number field of the event log, got '{per}'"
                    f"{did_you_mean(per, [k for k, t in env.items() if t == 'num'])}", context=ctx)
        return {"points_per": per, "each": r.number(v, "each", ctx)}
    r.p.add(v.loc, "points must be a number, {by: FIELD, table: {...}} or {per: FIELD, each: N}", context=ctx)
    return {}


def read_events(scheme: Scheme, path: Path, unit_ids: pl.Series, *, encoding: str | None = None,
                year: int | None = None, hashes: dict[str, str] | None = None, sheet: str | None = None,
                unit_names: Mapping[str, str] | None = None) -> pl.DataFrame:
    """The event log, validated: every problem with file, row and column; numbers exact. Dates must lie
    in the assessment `year` (default: the scheme's; a mid-year run passes the as-of year). `sheet`: of an
    .xlsx log, by name or number (default: `EVENT_SHEETS`, else the first shown)."""
    from .io import map_columns, read_table_info  # noqa: PLC0415
    from .io_columns import EVENT_ALIASES  # noqa: PLC0415

    file = str(path)
    raw, info = read_table_info(path, encoding=encoding, what="events", allow_empty=True,
                                 sheet=sheet if sheet is not None else _event_sheet(path))
    if hashes is not None:  # the manifest hashes the bytes read here rather than reading the file again
        hashes[file] = info.sha256
    declared = event_fields(scheme)  # headed by id or label; the log's own columns also as the template names them
    raw = map_columns(raw, {f.id: f.label for f in declared.values()}, path=file,
                      aliases={h: c for h, c in EVENT_ALIASES.items() if h not in declared})
    missing = [c for c in BASE_COLUMNS if c not in raw.columns]
    units_like = scheme.columns.type in raw.columns or len(set(raw.columns) & set(scheme.fields)) >= 3
    if missing and units_like and ("kind" in missing or "event_id" in missing):
        raise KaoheError([Problem(Loc(file, row=1), "this looks like a units table (it has the scheme's unit type "
                                  "or field columns), not an event log", hint="are --data and --events swapped?",
                                  zh=("这像是单位数据表 (有方案的单位类型或字段列), 不是事件记录",
                                      "--data 和 --events 是否填反了?"))])
    if missing:
        raise KaoheError([Problem(Loc(file, row=1), f"missing column '{c}'{did_you_mean(c, raw.columns)}",
                                  hint="the event log needs event_id, date, unit_id, kind (or 事件编号, 日期, "
                                  "单位编号, 事件类型)",
                                  zh=(f"缺少列 '{c}' ({BASE_LABELS[c]}){did_you_mean(c, raw.columns, 'zh')}",
                                      "事件记录需要 事件编号、日期、单位编号、事件类型 四列 (列名也可写 event_id、"
                                      "date、unit_id、kind)")) for c in missing])
    fields = {k: f for k, f in declared.items() if k in raw.columns}
    raw = raw.with_row_index("_row", offset=2).with_columns(pl.col(c).cast(pl.String) for c in BASE_COLUMNS)
    blank = raw.filter(pl.all_horizontal(pl.exclude("_row").is_null())).get_column("_row").to_list()
    if blank:  # one problem a blank row, not one a column ("'None' is not a date")
        raise KaoheError([Problem(Loc(file, row=r), "this row of the event log is blank",
                                  hint="delete the blank row (each event is one row)",
                                  zh=("事件记录的这一行是空的", "请删除空行 (每个事件占一行)"))
                          for r in blank[:MAX_LISTED]])
    day = pl.coalesce([pl.col("date").cast(pl.String).str.strip_chars().str.to_date(fmt, strict=False)
                       for fmt in DATE_FORMATS]) if raw.schema["date"] != pl.Date else pl.col("date")
    parsed = raw.select("_row", pl.col("event_id").cast(pl.String).str.strip_chars(),
                        day.alias("date"), pl.col("unit_id").cast(pl.String).str.strip_chars(),
                        pl.col("kind").cast(pl.String).str.strip_chars(),
                        *[_parse(raw.schema, f) for f in fields.values()])
    year = year or scheme.meta.year
    problems = _rows(parsed, pl.col("event_id").is_null(), file, "event_id", "empty event id",
                     zh=("事件编号为空", "每个事件都要有编号"))
    problems += _rows(parsed, pl.col("event_id").is_duplicated() & pl.col("event_id").is_not_null(), file,
                      "event_id", "duplicate event id '{value}'", "each event needs its own id", "event_id",
                      zh=("事件编号 '{value}' 重复", "每个事件要有自己的编号"))
    both = parsed.with_columns(raw.get_column("date").cast(pl.String).alias("_raw"))
    problems += _rows(both, pl.col("date").is_null(), file, "date", "'{value}' is not a date",
                      "write dates as YYYY-MM-DD", "_raw", zh=("'{value}' 不是日期", "日期请写成 YYYY-MM-DD"),
                      why=_serial_date)
    years = both.select(pl.col("date").dt.year().drop_nulls().unique()).to_series().to_list()
    dated = both.get_column("date").is_not_null().sum()
    if len(years) == 1 and years[0] != year and dated > 1:  # the whole log of another year: one problem
        problems.append(Problem(Loc(file, column="date"), f"all {dated} events are of {years[0]}, and the scheme "
                                f"assesses {year}", hint="is this the log of another year, or the scheme of another?",
                                zh=(f"全部 {dated} 个事件都在 {years[0]} 年, 而方案是 {year} 年度的",
                                    "是否用错了事件记录或方案?")))
    else:
        problems += _rows(both, pl.col("date").is_not_null() & (pl.col("date").dt.year() != year), file, "date",
                          f"date '{{value}}' is outside the assessment year {year}", "check the year, or the scheme",
                          "_raw", zh=(f"日期 '{{value}}' 不在考核年度 {year} 内", "请检查年份, 或所用的方案"))
    known = unit_ids.cast(pl.String).to_list()
    problems += _rows(parsed, ~pl.col("unit_id").is_in(known), file, "unit_id",
                      "event for unknown unit '{value}'", "use a unit id of the units table", "unit_id",
                      zh=("事件所属的单位 '{value}' 不在单位数据中", "请用单位数据表中的单位编号"),
                      why=_unit_named(known, unit_names or {}))
    problems += _rows(parsed, pl.col("kind").is_null(), file, "kind", "empty event kind",
                      zh=("事件类别为空", "请填写事件类别"))
    for c in ("event_id", "unit_id", "kind"):  # a cell a merged range covers: its event would match no rule
        problems += _rows(parsed, merged_mask(c), file, c, "'{value}' is a merged cell",
                          "unmerge the cells and fill in each row", c,
                          zh=("'{value}' 是合并单元格", "请取消合并, 在每一行分别填写"), why=merged_cell)
    for f in fields.values():
        problems += _field_problems(raw, parsed, f, file, scheme)
    if problems:
        raise KaoheError(problems)
    return _plain_numbers(parsed.drop("_row"), fields)


def _serial_date(v: str) -> Said | None:
    """A date Excel wrote as its serial number (44629 for 2022-03-09, the cell formatted as a number)."""
    import datetime as dt  # noqa: PLC0415

    d = v.strip()
    if not (d.isascii() and d.isdigit() and len(d) <= 6) or not 20000 <= int(d) <= 80000:  # not ４４６２９, ², 9…9
        return None
    day = dt.date(1899, 12, 30) + dt.timedelta(days=int(d))
    return (f"'{v}' is not a date: it looks like Excel's serial number of {day}", "format the cells as dates in "
            "Excel, or write the date as YYYY-MM-DD", f"'{v}' 不是日期: 它像是 Excel 的日期序号, 即 {day}",
            "请在 Excel 中把单元格格式设为日期, 或写成 YYYY-MM-DD")


def _unit_named(ids: list[str], names: Mapping[str, str]) -> Callable[[str], Said | None]:
    """An event's unit written as the unit's name (石桥村 for V01), or an id in other case (v12): said with the
    id to write."""
    lower = {i.lower(): i for i in ids}

    def why(v: str) -> Said | None:
        uid = names.get(v.strip()) or lower.get(v.strip().lower())
        if uid is None:
            return None
        return (f"'{v}' is not a unit id: the unit is {uid}", f"write {uid}",
                f"'{v}' 不是单位编号: 它对应的单位编号是 {uid}", f"请填 {uid}")

    return why


def _event_sheet(path: Path) -> str | None:
    """In a workbook holding units and events (a filled template), the events sheet; else the first."""
    if Path(path).suffix.lower() != ".xlsx":
        return None
    try:
        import fastexcel  # noqa: PLC0415

        names = fastexcel.read_excel(str(path)).sheet_names
    except Exception:  # noqa: BLE001 - an unreadable workbook is reported by read_table with its location
        return None
    return next((n for n in EVENT_SHEETS if n in names), None)


def _plain_numbers(df: pl.DataFrame, fields: dict[str, Field]) -> pl.DataFrame:
    """Scaled integers back to exact Decimal columns for the event adapter."""
    cols = []
    for f in fields.values():
        if f.type == "decimal":
            cols.append(pl.col(f.id).cast(pl.String).str.to_decimal(scale=0).cast(pl.Decimal(38, f.scale))
                        .__truediv__(10**f.scale).alias(f.id))
    return df.with_columns(cols) if cols else df
