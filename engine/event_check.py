"""Event rules, durable-free checks: the event log's columns and rows, and the rules' settings and
conditions, as located Problems (engine.events runs these before compiling anything for durable).

Also the column kinds shared with engine.event_prep (how each column is posted: str, num, bool,
date, null) and the number helpers (EVENT_SCALE, decimals, the Int64 range).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import polars as pl

from . import expr as E
from .errors import Loc, Problem, did_you_mean

if TYPE_CHECKING:
    from .events import EventRule

EVENT_SCALE = 6  # points are Int64 at 10**-6
MAX_PROBLEMS = 50  # data problems reported at once before giving up
BASE_COLUMNS = ("event_id", "date", "unit_id", "kind")
_INT64 = (1 << 63) - 1


# --------------------------------------------------------------------------------------------
# columns of the event log


def _kind_of(dtype: pl.DataType) -> str | None:
    """How a column is posted: str | num | bool | date | null; None when not supported."""
    if dtype == pl.String or isinstance(dtype, (pl.Categorical, pl.Enum)):
        return "str"
    if dtype.is_integer() or dtype.is_float() or isinstance(dtype, pl.Decimal):
        return "num"
    if dtype == pl.Boolean:
        return "bool"
    if dtype == pl.Date:
        return "date"
    if dtype == pl.Null:
        return "null"
    return None


_EXPR_TYPE: dict[str, E.Type | None] = {"str": "str", "num": "num", "bool": "bool", "date": "str", "null": None}


def _decimals(d: Decimal) -> int:
    exp = d.normalize().as_tuple().exponent
    return max(0, -exp) if isinstance(exp, int) else 0


def _row_loc(path: str, r: int, column: str | None = None) -> Loc:
    """Row r of the frame is line r + 2 of the file (line 1 is the header), as engine.event_rules."""
    return Loc(path, row=r + 2, column=column)


class Origin:
    """Where row r of the caller's event frame comes from: line r + 2 of `path`, or, when the frame carries
    the columns _src and _line (a log with a scenario's events added: `simulate --scenario`), that file and
    line."""

    def __init__(self, path: str, lines: list[tuple[str, int]] | None = None) -> None:
        self.path, self.lines = path, lines

    def loc(self, r: int, column: str | None = None) -> Loc:
        if self.lines is None:
            return _row_loc(self.path, r, column)
        file, line = self.lines[r]
        return Loc(file, row=line, column=column)

    def said(self, r: int, zh: bool = False) -> str:
        """'row 5' (or 'scenario.csv row 2' for a row of another file), for a list in a message."""
        at = self.loc(r)
        other = "" if at.file == self.path else f"{at.file} "
        return f"{other}第 {at.row} 行" if zh else f"{other}row {at.row}"


# --------------------------------------------------------------------------------------------
# checking the inputs


def _check_events(events: pl.DataFrame, path: str) -> list[Problem]:
    problems: list[Problem] = []
    missing = [c for c in BASE_COLUMNS if c not in events.columns]
    for c in missing:
        problems.append(Problem(Loc(path, row=1), f"missing column '{c}'{did_you_mean(c, events.columns)}",
                                hint="the event log needs event_id, date, unit_id, kind"))
    for c in ("event_id", "unit_id", "kind"):
        if c in events.columns and _kind_of(events.schema[c]) not in ("str", "null"):
            problems.append(Problem(Loc(path, row=1, column=c), f"column '{c}' must be text, not {events.schema[c]}"))
    if "date" in events.columns and events.schema["date"] not in (pl.Date, pl.Null):
        problems.append(Problem(Loc(path, row=1, column="date"), f"column 'date' must be dates, not "
                                f"{events.schema['date']}", hint="read the log with engine.event_rules.read_events"))
    if problems:
        return problems
    for c in ("event_id", "unit_id", "date"):
        problems += _bad_rows(events, pl.col(c).is_null(), path, c, f"empty {c.replace('_', ' ')}")
    problems += _bad_rows(events, pl.col("event_id").is_duplicated() & pl.col("event_id").is_not_null(), path,
                          "event_id", "duplicate event id '{value}'", "each event needs its own id")
    return problems


def _bad_rows(df: pl.DataFrame, bad: pl.Expr, path: str, column: str, message: str, hint: str = "") -> list[Problem]:
    rows = (df.with_row_index("_i").filter(bad).head(MAX_PROBLEMS)
            .select("_i", pl.col(column).cast(pl.String).alias("_v")).rows())
    return [Problem(_row_loc(path, i, column), message.format(value=v), hint=hint) for i, v in rows]


def _check_rules(rules: Sequence[EventRule], kinds: dict[str, str | None]) -> list[Problem]:
    problems: list[Problem] = []
    first: dict[str, Loc] = {}
    env = {c: _EXPR_TYPE[k] for c, k in kinds.items() if k is not None}
    for rule in rules:
        ctx = f"[event {rule.id}]"
        messages = []
        if rule.id in first:
            messages.append(f"duplicate event rule id '{rule.id}' (first at {first[rule.id]})")
        first.setdefault(rule.id, rule.loc)
        messages += _points_messages(rule, kinds)
        if rule.nth is not None and (isinstance(rule.nth, bool) or not isinstance(rule.nth, int) or rule.nth < 1):
            messages.append(f"'nth' must be a whole number from 1, got {rule.nth!r}")
        w = rule.within_days
        if w is not None and (isinstance(w, bool) or not isinstance(w, int) or w < 0):
            messages.append(f"'within_days' must be a whole number of days, got {w!r}")
        problems += [Problem(rule.loc, m, ctx) for m in messages]
        problems += _check_when(rule, kinds, env, ctx)
    return problems


def _points_messages(rule: EventRule, kinds: dict[str, str | None]) -> list[str]:
    out = []
    forms = [n for n, on in (("points", rule.points is not None),
                             ("points by a table", rule.points_by is not None or rule.points_table is not None),
                             ("points per quantity", rule.points_per is not None or rule.each is not None)) if on]
    if len(forms) > 1:
        out.append(f"give one way of scoring, not {' and '.join(forms)}")
    if not forms and rule.veto is None:
        out.append("an event rule needs points or a veto")
    if (rule.points_by is None) != (rule.points_table is None):
        out.append("points by a table need both 'by' (the column) and 'table' (value -> points)")
    if (rule.points_per is None) != (rule.each is None):
        out.append("points per quantity need both 'per' (the column) and 'each' (points per unit)")
    numbers: list[tuple[str, Any]] = [("points", rule.points), ("each", rule.each)]
    numbers += [(f"points for '{k}'", v) for k, v in (rule.points_table or {}).items()]
    for what, v in numbers:
        if v is None:
            continue
        if not isinstance(v, (Decimal, int)) or isinstance(v, bool) or not Decimal(v).is_finite():
            out.append(f"{what} must be a number, got {v!r}")
        elif _decimals(Decimal(v)) > EVENT_SCALE:
            out.append(f"{what} {v} has more than {EVENT_SCALE} decimals")
        elif abs(Decimal(v).scaleb(EVENT_SCALE)) > _INT64:
            out.append(f"{what} {v} is too large")
    for attr, allowed, what in ((rule.points_by, ("str", "num", "null"), "a text or number column"),
                                (rule.points_per, ("num", "null"), "a number column")):
        if attr is None:
            continue
        if attr not in kinds:
            out.append(f"unknown event column '{attr}'{did_you_mean(attr, kinds)}")
        elif kinds[attr] not in allowed:
            out.append(f"'{attr}' must be {what}, it is {kinds[attr] or 'of an unsupported type'}")
    return out


def _check_when(rule: EventRule, kinds: dict[str, str | None], env: dict[str, Any], ctx: str) -> list[Problem]:
    expr = rule.when
    problems: list[Problem] = []
    for node in E.walk(expr.tree):
        if isinstance(node, E.Ref):
            problems.append(Problem(expr.loc.shifted(node.col), f"'{node.key}' is not available in an event rule",
                                    ctx, "an event rule sees only the columns of its event: "
                                    + ", ".join(sorted(c for c, k in kinds.items() if k))))
        elif isinstance(node, E.Name) and node.id in kinds and kinds[node.id] is None:
            problems.append(Problem(expr.loc.shifted(node.col), f"column '{node.id}' cannot be used in a condition",
                                    ctx, "conditions compare texts, numbers, true/false and dates"))
    if problems:
        return problems
    problems += E.typecheck(expr, env, want="bool", context=ctx)
    if problems:
        return problems
    for a, b in E.compared_pairs(expr.tree):  # dates compare as 'YYYY-MM-DD' texts: constants must be such texts
        if isinstance(a, E.Name) and kinds.get(a.id) == "date" and isinstance(b, E.Str) and not _is_iso(b.value):
            problems.append(Problem(expr.loc.shifted(b.col), f"'{b.value}' is not a date", ctx,
                                    "write dates as 'YYYY-MM-DD', e.g. date >= '2022-07-01'"))
    return problems


def _is_iso(text: str) -> bool:
    try:
        return len(text) == 10 and date.fromisoformat(text).isoformat() == text
    except ValueError:
        return False


def _distinct(problems: list[Problem]) -> list[Problem]:
    """Each problem once (`a or b` fires once per true branch: engine.events, trap 12), in file order."""
    return sorted(dict.fromkeys(problems), key=lambda p: (p.loc.file, p.loc.row or 0, p.loc.line, p.loc.col,
                                                          p.message))


# --------------------------------------------------------------------------------------------
# events the rules cannot decide, and kinds written otherwise than the rules write them


def _event_fx(events: pl.DataFrame) -> Any:
    """A resolver of the event log's columns for `fixed.compile_expr` (numbers as scaled integers)."""
    from . import fixed as F  # noqa: PLC0415

    def resolve(node: E.Name | E.Ref) -> F.Fx:
        if isinstance(node, E.Ref):
            raise KeyError(node.key)
        dt = events.schema[node.id]
        col = pl.col(node.id)
        if isinstance(dt, pl.Decimal):
            scale = dt.scale or 0
            return F.Fx((col * 10**scale).cast(pl.Int64), "num", scale)
        kind = _kind_of(dt)
        if dt.is_float():
            raise TypeError(node.id)  # read_events gives none; a float is no exact number to compare
        if kind == "num":
            return F.Fx(col.cast(pl.Int64), "num", 0)
        return F.Fx(col, "bool" if kind == "bool" else "str")

    return resolve


def undecided(events: pl.DataFrame, rules: Sequence[EventRule], rows: list[int], labels: dict[str, str],
              origin: Origin) -> list[Problem]:
    """Events for which a rule's condition is neither true nor false because a value it reads is empty
    (`kind == "生产安全事故" and deaths >= 1` with no deaths): the rule may score or veto the event, or not,
    and the run cannot tell. Left to the rules, such an event matched nothing and a fatal accident's veto was
    lost with a notice only (the audit's 王家庄村 came first and was recommended)."""
    from . import fixed as F  # noqa: PLC0415

    resolve = _event_fx(events)
    masks: list[pl.Expr] = []
    readers: list[EventRule] = []
    for rule in rules:
        try:
            masks.append(F.compile_expr(rule.when.tree, resolve).expr.is_null().alias(f"_u{len(masks)}"))
        except (KeyError, TypeError, ValueError):  # a condition the check cannot compile: durable decides it
            continue
        readers.append(rule)
    if not masks or events.height == 0:
        return []
    open_ = events.select(masks)
    out: list[Problem] = []
    for k, rule in enumerate(readers):
        for r in open_.get_column(f"_u{k}").arg_true().to_list():
            row = events.row(r, named=True)
            empty = [c for c in sorted(rule.when.names()) if c in row and row[c] is None]
            shown = ", ".join(f"{labels.get(c, c)} ({c})" for c in empty) or "a value"
            shown_zh = "、".join(f"「{labels.get(c, c)}」" for c in empty) or "某个值"
            number = bool(empty) and all(_kind_of(events.schema[c]) == "num" for c in empty)
            out.append(Problem(origin.loc(rows[r], empty[0] if empty else None),
                               f"event {row['event_id']} ({row['kind']}): {shown} is empty, and rule "
                               f"'{rule.label}' decides by it: the event may score or veto, or not",
                               hint="fill it in" + (" (0 if there is none)" if number else ""),
                               zh=(f"事件 {row['event_id']} ({row['kind']}) 的{shown_zh}为空, "
                                   f"而规则「{rule.label}」要根据它判断 (可能计分或一票否决)",
                                   "请填写" + ("; 没有的填 0" if number else ""))))
    return sorted(out, key=lambda p: p.loc.row or 0)[:MAX_PROBLEMS]


def rule_kinds(rules: Sequence[EventRule]) -> list[str]:
    """The event kinds the rules' conditions name (`kind == "..."`), in the rules' order."""
    out: dict[str, None] = {}
    for rule in rules:
        for n in E.walk(rule.when.tree):
            if isinstance(n, E.Cmp) and n.op == "==":
                for a, b in ((n.left, n.right), (n.right, n.left)):
                    if isinstance(a, E.Name) and a.id == "kind" and isinstance(b, E.Str):
                        out[b.value] = None
            elif isinstance(n, E.In) and not n.negate and isinstance(n.value, E.Name) and n.value.id == "kind":
                out.update((o.value, None) for o in n.options if isinstance(o, E.Str))
    return list(out)


def _bare(kind: str) -> str:
    """A kind without a detail in brackets: 生产安全事故（民房改建高处坠落） -> 生产安全事故."""
    return re.sub(r"\s*[(（][^()（）]*[)）]\s*$", "", kind).strip()


def near_kinds(events: pl.DataFrame, missed: list[int], rules: Sequence[EventRule], rows: list[int],
               origin: Origin) -> list[Problem]:
    """Events no rule matched whose kind is close to one the rules name (环境污染 for 环境污染事件, 信访件 for
    信访): a typing slip that would drop the event's points or veto; said as a problem at its row."""
    from difflib import get_close_matches  # noqa: PLC0415

    kinds = rule_kinds(rules)
    out: list[Problem] = []
    for r in missed:
        kind = events.get_column("kind")[r]
        if kind is None or kind in kinds:
            continue
        close = [_bare(kind)] if _bare(kind) in kinds else get_close_matches(kind, kinds, n=1, cutoff=0.6)
        if not close:
            continue
        eid, listed = events.get_column("event_id")[r], "、".join(kinds)
        out.append(Problem(origin.loc(rows[r], "kind"),
                           f"event {eid}: kind '{kind}' is no kind the rules score (did you mean '{close[0]}'?); "
                           "as written, it scores nothing and vetoes nothing",
                           hint=f"the rules' kinds: {listed}; write the detail in another column (note); "
                           "a different kind the scheme does not score can be given a rule with points: 0",
                           zh=(f"事件 {eid} 的类别 '{kind}' 不是方案计分的事件类别 (是否应为 '{close[0]}'?); "
                               "照现在的写法, 它不计分, 也不会一票否决", f"方案的事件类别: {listed}; 具体情况请写在"
                               "备注列; 如确是方案不计分的另一类事件, 可在方案中为它加一条 points: 0 的规则")))
    return out[:MAX_PROBLEMS]
