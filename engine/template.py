"""An Excel data template for a scheme: the sheet a committee hands out to be filled in.

    write_template(scheme, "data.xlsx", units=frame)   # kaohe template [SCHEME] -o data.xlsx

Sheets:
  单位数据  one column per field, headed exactly as the scheme labels it (so `engine.io.map_columns`
           maps it back), after the id / name / type columns of `scheme.columns`; one row per unit
           when `units` is given; each field's declared range as an Excel data-validation rule and,
           with label, unit, type and range, as a comment on its header. Read by `--data FILE`.
  事件记录  the event log: event_id, date, unit_id, kind and the scheme's event fields (by id, as
           `engine.event_rules.read_events` wants them).
  说明      every column: sheet, header, field id, label, type, unit, range, required, notes.

Cells are formatted so that what is typed reads back exactly: ids, names and texts as text (an id
007 keeps its zeros), numbers in the General format (a cell never shows fewer decimals than it
holds), dates of the event log as text (YYYY-MM-DD). Written atomically, never over an input.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import xlsxwriter

from .errors import KaoheError, Loc, Problem, did_you_mean
from .event_rules import BASE_LABELS
from .io_columns import map_columns
from .io_read import _cap, _letter
from .io_write import _FIXED_TIME, MAX_WIDTH, _text_width, neutralise, write_atomic
from .model import Field, Scheme

UNITS_SHEET = "单位数据"
EVENTS_SHEET = "事件记录"
NOTES_SHEET = "说明"
LAST_ROW = 1_048_575  # Excel's last row (0-based): validations cover the whole column
NO_BOUND = 999_999_999_999_999  # 15 digits: what Excel keeps exactly
BOOL_WORDS = ("是", "否")
EVENT_BASE = BASE_LABELS  # the event log's own columns, as the 说明 sheet names them (read by those names too)
REQUIRED_FILL, OPTIONAL_FILL, ID_FILL = "#FCE4D6", "#EDEDED", "#DDEBF7"


@dataclass(frozen=True)
class Column:
    """One column of a template sheet and everything said about it."""

    header: str
    key: str  # field id, or a column name of scheme.columns / the event log
    label: str
    kind: str  # shown type: 文本, 整数, 小数(最多2位), 是/否, 日期
    unit: str = ""
    range: str = ""
    required: bool = True
    note: str = ""
    text: bool = False  # cells formatted as text (@)
    validation: Mapping[str, Any] | None = None
    fill: str = OPTIONAL_FILL


def write_template(scheme: Scheme, path: str | Path, *, units: pl.DataFrame | None = None,
                   inputs: Iterable[str | Path] = (), units_path: str = "units") -> None:
    """Write the data template of `scheme` to `path` (.xlsx), atomically; never over one of `inputs`.

    `units` (read from `units_path`) prefills one row per unit: its columns named as in
    `scheme.columns` (id required; name and type optional; a type may be its label, 村 -> village).
    """
    rows = _unit_rows(scheme, units, units_path) if units is not None else []
    unit_cols = _unit_columns(scheme)
    event_cols = _event_columns(scheme, id_col=unit_cols[0], n_units=len(rows))

    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
                                   "strings_to_numbers": False})
    wb.set_properties({"created": _FIXED_TIME, "title": f"{scheme.meta.label} 数据模板",
                       "comments": f"kaohe template for scheme {scheme.meta.id}"})
    formats: dict[tuple[tuple[str, Any], ...], Any] = {}

    def fmt(**props: Any) -> Any:
        key = tuple(sorted(props.items()))
        if key not in formats:
            formats[key] = wb.add_format(props)
        return formats[key]

    _table_sheet(wb.add_worksheet(UNITS_SHEET), fmt, unit_cols, rows, freeze_cols=3)
    _table_sheet(wb.add_worksheet(EVENTS_SHEET), fmt, event_cols, [], freeze_cols=0)
    _notes_sheet(wb.add_worksheet(NOTES_SHEET), fmt, scheme, unit_cols, event_cols)
    wb.close()
    write_atomic(path, buf.getvalue(), inputs=inputs)


# --- columns --------------------------------------------------------------------------------------

def _num(v: Decimal | int) -> float | int:
    d = Decimal(v)
    return int(d) if d == d.to_integral_value() else float(d)


def _bound_text(b: Decimal | str | None, scheme: Scheme) -> str:
    if b is None:
        return ""
    if isinstance(b, Decimal):
        return format(b.normalize(), "f") if b == b.to_integral_value() else str(b)
    return f"{scheme.fields[b].label}({b})"


def _range_text(f: Field, scheme: Scheme) -> str:
    lo, hi = _bound_text(f.min, scheme), _bound_text(f.max, scheme)
    if lo and hi:
        return f"{lo} ~ {hi}"
    return f"≥ {lo}" if lo else f"≤ {hi}" if hi else ""


def _kind_text(f: Field) -> str:
    return {"int": "整数", "bool": "是/否", "str": "文本"}.get(f.type) or f"小数(最多{f.scale}位)"


def _headers(scheme: Scheme) -> dict[str, str]:
    """Field id -> its header: the label, unless map_columns would not map that label back to the
    field (two fields with one label, a label that is another field's id): then the id."""
    labels = {f.id: f.label for f in scheme.fields.values()}
    reserved = {scheme.columns.id, scheme.columns.name, scheme.columns.type}
    headers = {fid: fid if label in reserved else label for fid, label in labels.items()}
    while True:
        counts = Counter(headers.values())
        bad = {fid for fid, h in headers.items() if counts[h] > 1}
        unique = list(counts)
        try:
            mapped = map_columns(pl.DataFrame(schema=dict.fromkeys(unique, pl.String)), labels, path="template")
            back = dict(zip(unique, mapped.columns, strict=True))
            bad |= {fid for fid, h in headers.items() if back[h] != fid}
        except KaoheError as e:
            clash = {p.loc.column for p in e.problems}
            bad |= {fid for fid, h in headers.items() if h in clash}
        bad = {fid for fid in bad if headers[fid] != fid}  # an id always maps to its field
        if not bad:
            return headers
        headers.update((fid, fid) for fid in bad)


def _validation(f: Field, scheme: Scheme, col: int, where: Mapping[str, int]) -> dict[str, Any] | None:
    """Excel's data-validation rule for a field (in column `col`; `where` = field id -> column)."""
    rng = _range_text(f, scheme)
    if f.type == "bool":
        return {"validate": "list", "source": list(BOOL_WORDS), "error_message": "请选择 是 或 否"}
    if f.type == "str":
        if f.values and len(",".join(f.values)) <= 250 and not any("," in v for v in f.values):
            return {"validate": "list", "source": list(f.values),
                    "error_message": _short("只能填写: " + "、".join(f.values))}
        return None
    what = "整数" if f.type == "int" else f"数字(最多{f.scale}位小数)"
    message = _short(f"请填写{what}" + (f", 范围 {rng}" if rng else "") + (f", 单位: {f.unit}" if f.unit else ""))
    if isinstance(f.min, str) or isinstance(f.max, str):  # a bound naming another field: a formula
        me = f"{_letter(col)}2"
        terms = [f"ISNUMBER({me})"] + ([f"{me}=INT({me})"] if f.type == "int" else [])
        for b, op in ((f.min, ">="), (f.max, "<=")):
            if isinstance(b, Decimal):
                terms.append(f"{me}{op}{_num(b)}")
            elif isinstance(b, str) and b in where:
                terms.append(f"{me}{op}{_letter(where[b])}2")
        return {"validate": "custom", "value": f"=AND({','.join(terms)})", "error_message": message}
    lo = _num(f.min) if isinstance(f.min, Decimal) else None
    hi = _num(f.max) if isinstance(f.max, Decimal) else None
    rule: dict[str, Any] = {"validate": "integer" if f.type == "int" else "decimal", "error_message": message}
    if lo is not None and hi is not None:
        rule.update(criteria="between", minimum=lo, maximum=hi)
    elif lo is not None:
        rule.update(criteria=">=", value=lo)
    elif hi is not None:
        rule.update(criteria="<=", value=hi)
    else:
        rule.update(criteria="between", minimum=-NO_BOUND, maximum=NO_BOUND)
    return rule


def _short(s: str, n: int = 250) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def _unit_columns(scheme: Scheme) -> list[Column]:
    c = scheme.columns
    types = "; ".join(f"{k} = {v}" for k, v in scheme.unit_types.items())
    out = [
        Column(c.id, c.id, "单位编号", "文本", note="每个单位一行, 编号不得重复", text=True, fill=ID_FILL,
               validation={"validate": "custom", "value": f"=COUNTIF($A$2:$A${LAST_ROW + 1},A2)=1",
                           "error_message": "单位编号重复: 每个单位只能出现一次"}),
        Column(c.name, c.name, "单位名称", "文本", required=False, text=True, fill=ID_FILL),
        Column(c.type, c.type, "单位类型", "文本", range=", ".join(scheme.unit_types), note=f"填写类型代码: {types}",
               text=True, fill=ID_FILL,
               validation={"validate": "list", "source": list(scheme.unit_types),
                           "error_message": _short(f"单位类型只能是: {types}")}),
    ]
    headers = _headers(scheme)
    fields = [f for f in scheme.fields.values() if f.id not in (c.id, c.name, c.type)]
    where = {f.id: i for i, f in enumerate(fields, start=len(out))}
    for i, f in enumerate(fields, start=len(out)):
        note = "可写作百分数, 如 95.5%" if f.type == "decimal" and f.max == Decimal(1) else ""
        if f.values:
            note = "可选值: " + "、".join(f.values)
        if f.required_for:
            note = "; ".join(x for x in (note, "、".join(scheme.unit_types.get(t, t) for t in f.required_for)
                                         + "必填, 其他单位不适用的留空") if x)
        elif not f.required:
            note = "; ".join(x for x in (note, "不适用的单位留空") if x)
        out.append(Column(headers[f.id], f.id, f.label, _kind_text(f), f.unit, _range_text(f, scheme), f.required,
                          note, text=f.type in ("str", "bool"), validation=_validation(f, scheme, i, where),
                          fill=REQUIRED_FILL if f.required or f.required_for else OPTIONAL_FILL))
    return out


def event_kinds(scheme: Scheme) -> tuple[list[str], dict[str, list[str]]]:
    """The event kinds the scheme's event rules test (`kind == "..."`, `kind in [...]`), and for each
    event field used as `points: {by: FIELD}` the texts of its table, in order of appearance."""
    from .expr import Cmp, ExprError, In, Name, Str, parse, walk  # noqa: PLC0415
    from .yamlsrc import YMap  # noqa: PLC0415

    kinds: dict[str, None] = {}
    by: dict[str, dict[str, None]] = {}
    for rule in scheme.raw.get("events") or []:
        if not isinstance(rule, YMap):
            continue
        try:
            tree = parse(rule.get("when"), Loc(scheme.path)).tree
        except ExprError:
            continue
        for n in walk(tree):
            if isinstance(n, Cmp) and n.op == "==":
                for a, b in ((n.left, n.right), (n.right, n.left)):
                    if isinstance(a, Name) and a.id == "kind" and isinstance(b, Str):
                        kinds[b.value] = None
            elif isinstance(n, In) and not n.negate and isinstance(n.value, Name) and n.value.id == "kind":
                kinds.update((o.value, None) for o in n.options if isinstance(o, Str))
        points = rule.get("points")
        if isinstance(points, YMap) and isinstance(points.get("by"), str) and isinstance(points.get("table"), YMap):
            by.setdefault(points["by"], {}).update((str(k), None) for k in points["table"])
    return list(kinds), {k: list(v) for k, v in by.items()}


def _event_columns(scheme: Scheme, *, id_col: Column, n_units: int) -> list[Column]:
    from .event_rules import event_fields  # noqa: PLC0415

    year = scheme.meta.year
    kinds, by = event_kinds(scheme)
    last = n_units + 1 if n_units else 1001
    units_ref = f"='{UNITS_SHEET}'!$A$2:$A${last}"
    out = [
        Column("event_id", "event_id", EVENT_BASE["event_id"], "文本", note="每个事件一行, 编号不得重复", text=True,
               fill=ID_FILL, validation={"validate": "custom", "value": f"=COUNTIF($A$2:$A${LAST_ROW + 1},A2)=1",
                                         "error_message": "事件编号重复: 每个事件需要自己的编号"}),
        Column("date", "date", EVENT_BASE["date"], "日期", range=f"{year}-01-01 ~ {year}-12-31",
               note="写作 YYYY-MM-DD, 如 " + f"{year}-03-15", text=True, fill=REQUIRED_FILL,
               validation={"validate": "custom",
                           "value": f'=AND(ISNUMBER(DATEVALUE(B2)),YEAR(DATEVALUE(B2))={year})',
                           "error_message": f"请写 {year} 年内的日期, 格式 YYYY-MM-DD (如 {year}-03-15)"}),
        Column("unit_id", "unit_id", EVENT_BASE["unit_id"], "文本", note=f"'{UNITS_SHEET}'表中的单位编号({id_col.key})",
               text=True, fill=REQUIRED_FILL,
               validation={"validate": "list", "source": units_ref, "error_type": "warning",
                           "error_message": f"不是'{UNITS_SHEET}'表中的单位编号"}),
        Column("kind", "kind", EVENT_BASE["kind"], "文本",
               note=("计分的事件类型: " + "、".join(kinds)) if kinds else "", text=True, fill=REQUIRED_FILL,
               validation={"validate": "list", "source": kinds, "error_type": "warning",
                           "error_message": _short("考核办法不对此类事件计分; 计分的类型: " + "、".join(kinds))}
               if kinds and len(",".join(kinds)) <= 250 else None),
    ]
    for i, f in enumerate(event_fields(scheme).values(), start=len(out)):
        if f.id in EVENT_BASE:
            continue
        validation = _validation(f, scheme, i, {})
        note = ""
        if f.type == "str" and by.get(f.id) and not f.values:
            note = "计分的取值: " + "、".join(by[f.id])
            validation = {"validate": "list", "source": by[f.id], "error_type": "warning",
                          "error_message": _short(note)}
        out.append(Column(f.id, f.id, f.label, _kind_text(f), f.unit, _range_text(f, scheme), f.required, note,
                          text=f.type in ("str", "bool"), validation=validation,
                          fill=REQUIRED_FILL if f.required else OPTIONAL_FILL))
    return out


def _unit_rows(scheme: Scheme, units: pl.DataFrame, file: str) -> list[list[str | None]]:
    c = scheme.columns
    if c.id not in units.columns:
        raise KaoheError([Problem(Loc(file, row=1), f"missing column '{c.id}'{did_you_mean(c.id, units.columns)}",
                                  hint=f"the units table needs the unit ids in a column headed '{c.id}'")])
    by_label = {v: k for k, v in scheme.unit_types.items()}
    cols = []
    for name in (c.id, c.name, c.type):
        if name in units.columns:
            s = units.get_column(name).cast(pl.String).str.strip_chars()
            cols.append(s.replace(by_label) if name == c.type else s)
        else:
            cols.append(pl.Series([None] * units.height, dtype=pl.String))
    rows = [list(r) for r in zip(*(s.to_list() for s in cols), strict=True)]
    _check_roster(scheme, rows, file)
    return [r for r in rows if r[0]]


def _check_roster(scheme: Scheme, rows: list[list[str | None]], file: str) -> None:
    """The units a template is prefilled with, checked as the run will check them: a roster with a unit twice,
    a unit without an id, or an unknown unit type would reach every sheet handed out (row i = file row i + 2)."""
    c = scheme.columns
    types = list(scheme.unit_types)
    problems = []
    first: dict[str, int] = {}
    for i, (uid, name, utype) in enumerate(rows, 2):
        if not uid:
            if name or utype:
                problems.append(Problem(Loc(file, row=i, column=c.id), f"empty unit id (name '{name or ''}')",
                                        hint="fill in its id, or delete the row"))
            continue
        if uid in first:
            problems.append(Problem(Loc(file, row=i, column=c.id), f"duplicate unit id '{uid}' (first in row "
                                    f"{first[uid]})", hint="each unit appears once"))
        first.setdefault(uid, i)
        if utype and utype not in scheme.unit_types:
            problems.append(Problem(Loc(file, row=i, column=c.type),
                                    f"unknown unit type '{utype}'{did_you_mean(utype, types)}",
                                    hint="allowed: " + ", ".join(f"{t} ({scheme.unit_types[t]})" for t in types)))
    if problems:
        raise KaoheError(_cap(problems, file))


# --- sheets ---------------------------------------------------------------------------------------

def _comment(col: Column) -> str:
    lines = [col.label if col.label == col.header else f"{col.label} ({col.header})",
             f"字段: {col.key}", f"类型: {col.kind}"]
    lines += [f"单位: {col.unit}"] if col.unit else []
    lines += [f"范围: {col.range}"] if col.range else []
    lines.append("必填" if col.required else "选填")
    lines += [col.note] if col.note else []
    return "\n".join(lines)


def _table_sheet(ws: Any, fmt: Any, cols: list[Column], rows: list[list[str | None]], *, freeze_cols: int) -> None:
    for j, col in enumerate(cols):
        ws.write_string(0, j, col.header, fmt(bold=True, bg_color=col.fill, border=1, text_wrap=False,
                                              quote_prefix=neutralise(col.header) != col.header))
        comment = _comment(col)
        ws.write_comment(0, j, comment, {"author": "kaohe", "x_scale": 1.6,
                                         "y_scale": 1 + 0.25 * max(0, comment.count("\n") - 3)})
        width = _text_width(col.header) + 2
        for i, row in enumerate(rows, start=1):
            v = row[j] if j < len(row) else None
            if v is not None:
                ws.write_string(i, j, v, fmt(num_format="@", quote_prefix=True) if neutralise(v) != v else None)
                width = max(width, _text_width(v) + 2)
        ws.set_column(j, j, min(max(width, 8), MAX_WIDTH), fmt(num_format="@") if col.text else None)
        if col.validation is not None:
            rule = {"ignore_blank": True, "error_title": col.label[:32], "input_title": col.label[:32],
                    "input_message": _short(_comment(col).split("\n", 1)[1]), **col.validation}
            ws.data_validation(1, j, LAST_ROW, j, rule)
    ws.freeze_panes(1, min(freeze_cols, len(cols)))
    ws.set_row(0, 20)


def _notes_sheet(ws: Any, fmt: Any, scheme: Scheme, unit_cols: list[Column], event_cols: list[Column]) -> None:
    heads = ["工作表", "列标题", "字段", "名称", "类型", "单位", "范围", "必填", "说明"]
    body = [[sheet, c.header, c.key, c.label, c.kind, c.unit, c.range, "是" if c.required else "否", c.note]
            for sheet, cols in ((UNITS_SHEET, unit_cols), (EVENTS_SHEET, event_cols)) for c in cols]
    tail = [
        [f"{scheme.meta.label} ({scheme.meta.id}, {scheme.meta.year}年)" + (f" {scheme.meta.source}" if
                                                                           scheme.meta.source else "")],
        [f"'{UNITS_SHEET}'表每个单位一行; 列标题不要修改 (也可改为字段代码); 必填列(橙色)不能留空, 没有的写 0。"],
        ["是/否 列填 是 或 否; 百分数可写作 95.5% ; 小数不能超过规定位数 (不会自动四舍五入)。"],
        [f"'{EVENTS_SHEET}'表每个事件一行, 日期写作 YYYY-MM-DD; 没有事件时可以留空。"],
        ["计分: kaohe run --scheme 方案.yaml --data 本文件.xlsx --events 本文件.xlsx (没有事件时省略 --events)"],
    ]
    widths = [_text_width(h) + 2 for h in heads]
    for j, h in enumerate(heads):
        ws.write_string(0, j, h, fmt(bold=True, bg_color=ID_FILL, border=1))
    for i, row in enumerate(body, start=1):
        for j, v in enumerate(row):
            if v:
                ws.write_string(i, j, v, fmt(quote_prefix=True) if neutralise(v) != v else None)
                widths[j] = max(widths[j], _text_width(v) + 2)
    for i, (line,) in enumerate(tail, start=len(body) + 3):
        ws.write_string(i, 0, line)
    for j, w in enumerate(widths):
        ws.set_column(j, j, min(w, MAX_WIDTH))
    ws.freeze_panes(1, 0)
