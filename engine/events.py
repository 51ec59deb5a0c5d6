"""Event rules on durable-rules: a year's event log -> per-unit point adjustments and veto triggers.

This is the only module of kaohe that imports `durable`. `run_event_rules(events, rules)` compiles
each rule's `when` (an `engine.expr` tree) to a durable-rules condition, asserts the events as
facts, unit by unit, and returns one row per (event, matching rule):

    unit_id, event_id, rule, points (Int64 at EVENT_SCALE, null for a veto-only rule), target,
    veto, date, kind, detail        -- sorted by unit_id, date, event_id, rule

Division of work. durable-rules decides which rule matches which event; the actions compute the
points exactly (Python ints at EVENT_SCALE) and the `detail` text. The correlations `nth` (only
from the n-th matching event of the rule for the unit) and `within_days` (only when the previous
matching event of the rule for the unit is at most N days before) are computed by Polars over the
matches afterwards: a sort and a window per (rule, unit) is exact, deterministic and independent
of the order in which durable fires actions. So durable keeps no state across facts, and a
session (sid) is only a batch: whole units are packed into sessions of about SESSION_FACTS facts
(a bigger unit is cut), each asserted with one `assert_facts` call and deleted right after.
Packing many small units per session halves the run time against one session per unit (fewer
action calls); sessions much larger than that get slower again inside the engine.

The durable-rules traps, and what this module does about each (tests/test_events.py covers each):

1. Ruleset names are global per host, and registering a name twice raises: every run builds its
   own host (`_BatchHost`) with a run-unique ruleset name, and frees the engine handle after.
2. Background timer threads: `durable.engine.Host()` starts two self-rearming timer threads that
   dispatch actions and timers concurrently with the caller; racing them against `delete_state`
   once failed with "error code 307" (ERR_NODE_DELETED). `_BatchHost` never starts them: the
   batch path is fully synchronous (assert_facts runs every action before it returns), we use no
   timers, and the actions are synchronous one-argument functions.
3. Events are consumed by the first rule they fire: a *posted* event matching two rules scores
   once. We assert *facts*, which fire every matching rule.
4. A message that matches no rule raises MessageNotHandledException, and in a batch that leaves
   the other messages' actions pending. A catch-all rule (guard only) matches every fact; its
   `count` is larger than a session, so it never fires and costs no action call.
5. Message identity is a 32-bit FNV-1 hash of the `id` per session: distinct ids with equal
   hashes raise MessageObservedException (random or content-derived ids start colliding around
   40k facts in a session). Each fact gets `id` = its position in the session ("0", "1",
   ...), a range checked once to be free of hash collisions (also against the session's own
   state fact "sid-<sid>"); a session holds at most SESSION_FACTS facts; `delete_state` runs after
   each session, so one session is alive at a time (session ids are hashed too). As every fact
   reaches the catch-all, a collision could not hide behind "not handled": it would raise.
6. Exceptions inside actions are swallowed into `c.s.exception`: after each post the returned
   state is checked and a KaoheError names the rule, its scheme file:line and the event row.
   Actions abandoned by durable (it gives up on an action after 10 s) are detected too.
7. Numbers: durable compares JSON numbers as C longs or doubles. Numeric attributes are posted as
   integers scaled to the largest number of decimals among the data and the constants they are
   compared with, so every comparison is an exact 64-bit integer comparison.
8. Missing values: a comparison with a JSON null is false for every operator, as in
   `engine.fixed` (null never matches), but `$ex` counts a null as present: conditions never use
   `$ex` on an attribute (`x not in []` is computed first). `not` is pushed down to the
   comparisons (== becomes !=, < becomes >=, and/or swap), which keeps the Kleene meaning.
9. A condition that matches the session's own state fact loops forever (`+m.id` hangs): every
   condition is guarded by `_r`, a property only our facts have.
10. A message has at most 31 properties: only attributes that rules use are posted, under short
   keys ("a0", "a1", ...), which also keeps user column names such as `id` or `sid` harmless.
11. `delete_state` on a session in which no action ever ran frees an uninitialised pointer in
   the C engine (the session's action context is never set): "free(): invalid pointer" or a
   segfault, depending on what the heap held before (found by the property test). Each session
   ends with a sentinel fact that fires a no-op action, so every session has run one.
12. A condition with `$or` fires once per true branch: an event satisfying both sides of
   `a or b` would score twice. Matches are made unique per (event, rule), problems likewise.
   durable expands and/or into alternatives and refuses big ones ("error code 113"): a condition
   with more than MAX_PATHS alternatives is computed by Polars first; should durable still refuse
   one, the error names the rule.

Expressions durable cannot test directly (arithmetic, functions, if/else, comparing two columns)
are computed by `engine.fixed` in Polars as extra boolean attributes before posting; `section.X`,
`item.X`, `pool.X` are rejected with the rule's location (an event sees only its own columns).

`bench()` measures events/s through this adapter and through a bare durable host; run
`python -m engine.events [n_events n_units]`.
"""

from __future__ import annotations

import itertools
import json
import math
import operator
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

import durable.engine as durable_engine  # type: ignore[import-untyped]
import durable_rules_engine  # type: ignore[import-not-found]
import polars as pl

from . import expr as E
from . import fixed as F
from .errors import NOWHERE, KaoheError, Loc, Problem, did_you_mean

EVENT_SCALE = 6  # points are Int64 at 10**-6
SESSION_FACTS = 1_000  # facts per durable session: whole units packed up to this; bigger units are cut
ACTION_CAP = 1_000  # matches handed to one action call (durable `cap`)
MAX_PROBLEMS = 50  # data problems reported at once before giving up
MAX_ATTRIBUTES = 28  # durable allows 31 properties per message; sid, id and _r take three
MAX_PATHS = 64  # a condition whose and/or expands to more alternatives is computed by Polars first

BASE_COLUMNS = ("event_id", "date", "unit_id", "kind")
OUTPUT_SCHEMA = {"unit_id": pl.String, "event_id": pl.String, "rule": pl.String, "points": pl.Int64,
                 "target": pl.String, "veto": pl.String, "date": pl.Date, "kind": pl.String, "detail": pl.String}

_GUARD = {"$ex": {"_r": 1}}  # only our facts have _r (trap 9)
_NEVER = 65_535  # durable's largest `count`, above SESSION_FACTS: the catch-all rule never fires
_END = {"$ex": {"_end": 1}}  # the end-of-session fact (no _r: no other rule sees it)
_DURABLE_OPS = {"<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte", "!=": "$neq"}
_NEGATED = {"==": "!=", "!=": "==", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}
_FLIPPED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_INT64 = (1 << 63) - 1
_RUN_IDS = itertools.count()
_LOCK = threading.Lock()  # the durable C engine keeps global handle tables; one run at a time


@dataclass(frozen=True)
class EventRule:
    """One rule of the scheme's `events:` (built by engine.event_rules from the YAML)."""

    id: str
    label: str
    when: E.Expr  # boolean over the event's columns
    points: Decimal | None = None  # fixed points per matching event (negative = deduction)
    points_by: str | None = None  # column whose value picks the points from points_table
    points_table: Mapping[str, Decimal] | None = None  # {"县级": -1, "市级": -3}
    points_per: str | None = None  # column giving a quantity: points = each * quantity
    each: Decimal | None = None
    target: str = ""  # "section:safety" or "pool:deductions", copied through
    veto: str | None = None  # veto id triggered
    nth: int | None = None  # fires only from the nth matching event of this rule for the unit
    within_days: int | None = None  # fires only when the previous match for the unit is <= N days before
    loc: Loc = NOWHERE  # the rule in the scheme file


# --------------------------------------------------------------------------------------------
# durable-rules host without background threads (trap 2)


class _BatchHost(durable_engine.Host):  # type: ignore[misc]
    """A durable host for synchronous batch use: no dispatch/timer threads are ever started."""

    def _run(self) -> None:  # durable's Host.__init__ starts the timer threads here
        return None


def _fnv1_32(text: str) -> int:
    """durable's message/session hash (FNV-1, 32 bit; bytes are C `char`, signed on x86)."""
    h = 0x811C9DC5
    for b in text.encode():
        h = ((h ^ (b | 0xFFFFFF00 if b >= 0x80 else b)) * 0x01000193) & 0xFFFFFFFF
    return h


@lru_cache(maxsize=4)
def _fact_ids(n: int) -> tuple[tuple[str, ...], frozenset[int]]:
    """Fact ids "0".."n-1" for one session and their hashes, verified distinct (trap 5)."""
    ids = tuple(str(i) for i in range(n))
    hashes = frozenset(_fnv1_32(i) for i in ids)
    if len(hashes) != n:  # pragma: no cover - decimal ids below 300k never collide
        raise RuntimeError(f"fact ids collide under durable's 32-bit hash; use sessions below {n} facts")
    return ids, hashes


def _sid(n: int, id_hashes: frozenset[int]) -> str:
    """A session id whose state fact ("sid-<sid>") cannot collide with the fact ids."""
    sid = f"u{n}"
    while _fnv1_32(f"sid-{sid}") in id_hashes:  # pragma: no cover - astronomically rare
        sid += "_"
    return sid


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


def _fmt(v: int, sign: bool = True) -> str:
    """Scaled points as plain text: -3000000 -> '-3', 500000 -> '+0.5'."""
    q, r = divmod(abs(v), 10**EVENT_SCALE)
    s = str(q) if not r else f"{q}.{str(r).rjust(EVENT_SCALE, '0').rstrip('0')}"
    if v < 0:
        return "-" + s
    return ("+" + s) if sign and v > 0 else s


def _fmt_scaled(v: int, scale: int) -> str:
    q, r = divmod(abs(v), 10**scale)
    s = str(q) if not r else f"{q}.{str(r).rjust(scale, '0').rstrip('0')}"
    return ("-" if v < 0 else "") + s


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
    for node in E.walk(expr.tree):  # dates compare as 'YYYY-MM-DD' texts: the constants must be such texts
        pairs: list[tuple[E.Node, E.Node]] = []
        if isinstance(node, E.Cmp):
            pairs = [(node.left, node.right), (node.right, node.left)]
        elif isinstance(node, E.In):
            pairs = [(node.value, o) for o in node.options]
        for a, b in pairs:
            if isinstance(a, E.Name) and kinds.get(a.id) == "date" and isinstance(b, E.Str) and not _is_iso(b.value):
                problems.append(Problem(expr.loc.shifted(b.col), f"'{b.value}' is not a date", ctx,
                                        "write dates as 'YYYY-MM-DD', e.g. date >= '2022-07-01'"))
    return problems


def _is_iso(text: str) -> bool:
    try:
        return len(text) == 10 and date.fromisoformat(text).isoformat() == text
    except ValueError:
        return False


# --------------------------------------------------------------------------------------------
# compiling `when` to durable conditions


@dataclass
class _Attr:
    key: str  # the property name in the posted fact
    column: str
    kind: str  # str | num | bool | text (a column posted as its text, for points_by)
    scale: int = 0  # num: posted as value * 10**scale


class _Compiler:
    """Expr trees -> durable condition JSON, plus the attributes (and derived columns) to post."""

    def __init__(self, events: pl.DataFrame, rules: Sequence[EventRule], path: str, rows: list[int]) -> None:
        self.events, self.rules, self.path = events, rules, path
        self.rows = rows  # position in `events` -> row of the caller's frame (for messages)
        self.kinds = {c: _kind_of(t) for c, t in events.schema.items()}
        self.attrs: dict[tuple[str, str], _Attr] = {}
        self.derived: dict[str, tuple[pl.Expr, EventRule]] = {}
        self.native: dict[str, tuple[pl.Expr, int]] = {}  # numeric column -> (Int64 expr, scale)
        self.scale: dict[str, int] = {}  # numeric column -> scale it is posted at
        self.problems: list[Problem] = []

    # numbers ------------------------------------------------------------------------------

    def native_num(self, column: str) -> tuple[pl.Expr, int]:
        """The column as an exact scaled Int64 (expression, scale)."""
        if column in self.native:
            return self.native[column]
        dtype = self.events.schema[column]
        col = pl.col(column)
        if isinstance(dtype, pl.Decimal):
            out = (col.to_physical().cast(pl.Int64, strict=True), dtype.scale or 0)
        elif dtype.is_float():
            out = self._floats(column)
        elif dtype == pl.Null:
            out = (pl.lit(None, dtype=pl.Int64), 0)
        else:
            out = (col.cast(pl.Int64, strict=True), 0)
        self.native[column] = out
        return out

    def _floats(self, column: str) -> tuple[pl.Expr, int]:
        """Floats as the decimals they print as (0.1 -> 1 at scale 1): exact for values read from text."""
        values = [v for v in self.events.get_column(column).unique().to_list() if v is not None]
        decs = {}
        for v in values:
            d = Decimal(repr(v))
            if not d.is_finite():
                self.problems.append(Problem(Loc(self.path, row=1, column=column),
                                             f"column '{column}' holds {v}, which is not a number"))
                continue
            decs[v] = d
        scale = max((_decimals(d) for d in decs.values()), default=0)
        old = list(decs)
        new = [int(d.scaleb(scale)) for d in decs.values()]
        if any(abs(n) > _INT64 for n in new):
            self.problems.append(Problem(Loc(self.path, row=1, column=column),
                                         f"column '{column}' has numbers too large to compare exactly"))
            new = [0 for _ in new]
        expr = pl.col(column).replace_strict(old, new, default=None, return_dtype=pl.Int64) if old else \
            pl.lit(None, dtype=pl.Int64)
        return expr, scale

    def collect_scales(self) -> None:
        """Pass 1: every numeric column is posted at max(its own decimals, its constants' decimals)."""
        for rule in self.rules:
            for node in E.walk(rule.when.tree):
                pairs: list[tuple[E.Node, E.Node]] = []
                if isinstance(node, E.Cmp):
                    pairs = [(node.left, node.right), (node.right, node.left)]
                elif isinstance(node, E.In):
                    pairs = [(node.value, o) for o in node.options]
                for a, b in pairs:
                    if isinstance(a, E.Name) and self.kinds.get(a.id) == "num" and isinstance(b, E.Num):
                        s = max(self.native_num(a.id)[1], _decimals(b.value))
                        self.scale[a.id] = max(self.scale.get(a.id, 0), s)
        for rule in self.rules:
            if rule.points_per is not None and self.kinds.get(rule.points_per) == "num":
                self.scale[rule.points_per] = max(self.scale.get(rule.points_per, 0),
                                                  self.native_num(rule.points_per)[1])

    # attributes ---------------------------------------------------------------------------

    def attr(self, column: str, kind: str) -> _Attr:
        k = (column, kind)
        if k not in self.attrs:
            self.attrs[k] = _Attr(f"a{len(self.attrs)}", column, kind, self.scale.get(column, 0))
        return self.attrs[k]

    def attr_exprs(self) -> list[pl.Expr]:
        out = []
        for a in self.attrs.values():
            col = pl.col(a.column)
            if a.kind == "num":
                e, s = self.native_num(a.column)
                e = (e.cast(pl.Int128) * 10 ** (a.scale - s)).cast(pl.Int64, strict=True)
            elif a.kind == "date":
                e = col.dt.strftime("%Y-%m-%d")
            elif a.kind in ("str", "text"):
                e = col.cast(pl.String)
            else:
                e = col
            out.append(e.alias(a.key))
        return out

    def resolve(self, node: E.Name | E.Ref) -> F.Fx:
        """engine.fixed's view of a column, for derived attributes."""
        assert isinstance(node, E.Name)
        kind = self.kinds[node.id]
        col = pl.col(node.id)
        if kind == "num" or kind == "null":
            e, s = self.native_num(node.id)
            return F.Fx(e, "num", s)
        if kind == "date":
            return F.Fx(col.dt.strftime("%Y-%m-%d"), "str")
        if kind == "bool":
            return F.Fx(col, "bool")
        return F.Fx(col.cast(pl.String), "str")

    # conditions ---------------------------------------------------------------------------

    def condition(self, rule: EventRule) -> dict[str, Any] | bool:
        self.rule = rule
        c = self.cond(rule.when.tree, False)
        if c is True:
            return _GUARD
        if c is False:
            return False
        return {"$and": [_GUARD, c]}

    def cond(self, node: E.Node, neg: bool) -> dict[str, Any] | bool:
        match node:
            case E.Bool(value=v):
                return v != neg
            case E.Unary(op="not", operand=a):
                return self.cond(a, not neg)
            case E.BoolOp(op=op, values=vs):
                saved = dict(self.attrs), dict(self.derived)
                c = self.boolop((op == "and") != neg, [self.cond(v, neg) for v in vs])
                if isinstance(c, dict) and _paths(c) > MAX_PATHS:  # too many ways to match: compute it first
                    self.attrs, self.derived = saved
                    return self.derive(node, neg)
                return c
            case E.Cmp(op=op, left=a, right=b):
                if _const(a) and _const(b):
                    return _fold(op, a, b) != neg
                if isinstance(a, E.Name) and _const(b):
                    return self.leaf(a, op, b, neg)  # type: ignore[arg-type]
                if isinstance(b, E.Name) and _const(a):
                    return self.leaf(b, _FLIPPED[op], a, neg)  # type: ignore[arg-type]
            case E.In(value=v, options=opts, negate=negate):
                if isinstance(v, E.Name):
                    return self.in_leaf(v, opts, negate != neg)
                if _const(v):
                    return (any(_fold("==", v, o) for o in opts) != negate) != neg
            case E.Name(id=name):
                if self.kinds[name] == "null":
                    return False
                return {self.attr(name, "bool").key: not neg}
        return self.derive(node, neg)

    @staticmethod
    def boolop(is_and: bool, parts: Sequence[dict[str, Any] | bool]) -> dict[str, Any] | bool:
        absorbing = not is_and  # False absorbs an `and`, True an `or`; the other constant drops out
        if any(p is absorbing for p in parts):
            return absorbing
        conds = [p for p in parts if not isinstance(p, bool)]
        if not conds:
            return is_and
        return conds[0] if len(conds) == 1 else {"$and" if is_and else "$or": conds}

    def value(self, a: _Attr, c: E.Num | E.Str | E.Bool) -> Any:
        if isinstance(c, E.Num):
            v = int(c.value.scaleb(a.scale))
            if abs(v) > _INT64:
                self.problems.append(Problem(self.rule.when.loc.shifted(c.col), f"number {c.value} is too large",
                                             f"[event {self.rule.id}]"))
                return 0
            return v
        return c.value

    def leaf(self, name: E.Name, op: str, c: E.Num | E.Str | E.Bool, neg: bool) -> dict[str, Any] | bool:
        kind = self.kinds[name.id]
        if kind is None or kind == "null":
            return False  # null compared with anything never matches, negated or not
        a = self.attr(name.id, kind)
        op = _NEGATED[op] if neg else op
        v = self.value(a, c)
        return {a.key: v} if op == "==" else {_DURABLE_OPS[op]: {a.key: v}}

    def in_leaf(self, name: E.Name, opts: tuple[E.Num | E.Str | E.Bool, ...], negate: bool) -> dict[str, Any] | bool:
        kind = self.kinds[name.id]
        if kind is None or kind == "null":
            return False
        a = self.attr(name.id, kind)
        values = list(dict.fromkeys(self.value(a, o) for o in opts))
        if not negate:
            return self.boolop(False, [{a.key: v} for v in values])
        if not values:  # `x not in []`: true where x has a value; `$ex` would count a JSON null as a value
            return self.derive(E.Call("is_null", (name,)), True)
        return self.boolop(True, [{"$neq": {a.key: v}} for v in values])

    def derive(self, node: E.Node, neg: bool) -> dict[str, Any]:
        """A boolean that durable cannot test itself, computed by engine.fixed before posting."""
        fx = F.compile_expr(node, self.resolve)
        key = f"d{len(self.derived)}"
        self.derived[key] = ((~fx.expr if neg else fx.expr).alias(key), self.rule)
        return {key: True}


def _by_kind(kind: str | None) -> str:
    """points_by looks its column up as text: a text column as it is, others as their text."""
    return "str" if kind == "str" else "text"


def _paths(c: dict[str, Any]) -> int:
    """How many alternative matches durable builds for a condition (its disjunctive normal form)."""
    if "$and" in c:
        return math.prod(_paths(x) for x in c["$and"])
    if "$or" in c:
        return sum(_paths(x) for x in c["$or"])
    return 1


def _const(n: E.Node) -> bool:
    return isinstance(n, (E.Num, E.Str, E.Bool))


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _fold(op: str, a: E.Node, b: E.Node) -> bool:
    """A comparison of two constants (same type, checked by typecheck)."""
    x: Any = getattr(a, "value")  # noqa: B009 - Num, Str and Bool all have .value
    y: Any = getattr(b, "value")  # noqa: B009
    return _COMPARE[op](x, y)


# --------------------------------------------------------------------------------------------
# the actions


class _DataError(Exception):
    """Expected problems found by an action (reported as located Problems, all at once)."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems


@dataclass
class _Run:
    """What the actions of one run write to."""

    rows: list[int]
    rule: list[int]
    points: list[int | None]
    detail: list[str]
    failures: list[tuple[int, int | None, BaseException]]  # (rule index, row, exception)
    open_session: bool = False  # a session was posted and not cleanly deleted


def _make_action(k: int, rule: EventRule, c: _Compiler, run: _Run, event_ids: list[str]) -> Callable[[Any], None]:
    """The action of rule k: append (row, k, points, detail) for each matched fact; points exact."""
    label = rule.label or rule.id
    ctx = f"[event {rule.id}]"
    where = f"rule '{rule.id}' ({rule.loc})"
    veto = "一票否决" if rule.veto is not None else ""
    rows, rules_, points, details = run.rows, run.rule, run.points, run.detail

    def text(head: str, pts: int | None) -> str:
        tail = ", ".join(x for x in (_fmt(pts) if pts is not None else "", veto) if x)
        return f"{head} {tail}"

    def problem(r: int, column: str, message: str, hint: str) -> Problem:
        return Problem(_row_loc(c.path, c.rows[r], column), f"event {event_ids[r]} {message} ({where})", ctx, hint)

    if rule.points_by is not None:  # points from a table
        key = c.attrs[(rule.points_by, _by_kind(c.kinds[rule.points_by]))].key
        by = rule.points_by
        table = {str(t): int(Decimal(v).scaleb(EVENT_SCALE)) for t, v in (rule.points_table or {}).items()}
        texts = {t: text(f"{label}({t})", v) for t, v in table.items()}

        def body(items: list[Any], current: list[int | None]) -> None:
            bad = []
            for item in items:
                d = item._d  # durable.engine.Content: the fact as posted
                current[0] = r = d["_r"]
                v = d.get(key)
                pts = table.get(v) if v is not None else None
                if pts is None:
                    bad.append(problem(r, by, f"has no {by}" if v is None else f"has {by} '{v}', which is not in "
                                       "the points table", "points are given for " + ", ".join(table)
                                       + "; fix the event or add the value to the table"))
                    continue
                rows.append(r)
                points.append(pts)
                details.append(texts[v])
                rules_.append(k)
            if bad:
                raise _DataError(bad)

    elif rule.points_per is not None:  # points per quantity
        per = c.attrs[(rule.points_per, "num")]
        each = int(Decimal(rule.each or 0).scaleb(EVENT_SCALE))
        each_txt, unit = _fmt(each, sign=False), 10**per.scale

        def body(items: list[Any], current: list[int | None]) -> None:
            bad = []
            for item in items:
                d = item._d
                current[0] = r = d["_r"]
                q = d.get(per.key)
                if q is None:
                    bad.append(problem(r, per.column, f"has no {per.column}, which the points need",
                                       f"fill in {per.column}, or add '{per.column} > 0' to the rule's condition"))
                    continue
                pts, rem = divmod(each * q, unit)
                if rem or abs(pts) > _INT64:
                    bad.append(problem(r, per.column, f"{per.column} {_fmt_scaled(q, per.scale)} x {each_txt} is not "
                                       f"exact at {EVENT_SCALE} decimals", f"give {per.column} fewer decimals"))
                    continue
                rows.append(r)
                points.append(pts)
                details.append(text(f"{label}({_fmt_scaled(q, per.scale)}×{each_txt})", pts))
                rules_.append(k)
            if bad:
                raise _DataError(bad)

    else:  # fixed points, or a veto only
        pts_fixed = int(Decimal(rule.points).scaleb(EVENT_SCALE)) if rule.points is not None else None
        fixed_text = text(label, pts_fixed)

        def body(items: list[Any], current: list[int | None]) -> None:
            n = len(items)
            rows.extend(item._d["_r"] for item in items)
            points.extend([pts_fixed] * n)
            details.extend([fixed_text] * n)
            rules_.extend([k] * n)

    def action(cl: Any) -> None:
        current: list[int | None] = [None]
        try:
            body(cl.m if isinstance(cl.m, list) else [cl.m], current)
        except BaseException as e:  # durable swallows it into c.s.exception; we keep the details
            run.failures.append((k, current[0], e))
            raise

    return action


def _never(cl: Any) -> None:  # pragma: no cover - the catch-all's count is never reached
    raise RuntimeError("the catch-all event rule fired")


def _session_end(cl: Any) -> None:
    return None


# --------------------------------------------------------------------------------------------
# the run


def run_event_rules(events: pl.DataFrame, rules: Sequence[EventRule], *, path: str = "events.csv") -> pl.DataFrame:
    """Run the event rules over the event log: one row per (event, matching rule), see module doc."""
    problems = _check_events(events, path)
    if problems:
        raise KaoheError(problems)
    kinds = {c: _kind_of(t) for c, t in events.schema.items()}
    problems = _check_rules(rules, kinds)
    if problems:
        raise KaoheError(problems)
    # rows in output order: by unit, date, event id; `_r` below is a position in this order
    order = events.select(pl.arg_sort_by(["unit_id", "date", "event_id"])).to_series()
    events = events[order]
    comp = _Compiler(events, rules, path, order.to_list())
    comp.collect_scales()
    conditions: dict[int, dict[str, Any]] = {}
    for k, rule in enumerate(rules):
        cond = comp.condition(rule)
        if cond is not False:
            conditions[k] = cond  # type: ignore[assignment]
        if rule.points_by is not None:
            comp.attr(rule.points_by, _by_kind(kinds[rule.points_by]))
        if rule.points_per is not None:
            comp.attr(rule.points_per, "num")
    if len(comp.attrs) + len(comp.derived) > MAX_ATTRIBUTES:
        comp.problems.append(Problem(rules[0].loc, f"the event rules use {len(comp.attrs) + len(comp.derived)} "
                                     f"columns and computed conditions; durable-rules takes at most {MAX_ATTRIBUTES}",
                                     "[events]", "merge rules or simplify their conditions"))
    if comp.problems:
        raise KaoheError(comp.problems)
    posted = _posted_frame(events, comp)
    if not conditions or events.height == 0:
        return _assemble(events, rules, _Run([], [], [], [], []))
    with _LOCK:
        run = _post_all(events, rules, comp, conditions, posted, path)
    return _assemble(events, rules, run)


def _posted_frame(events: pl.DataFrame, comp: _Compiler) -> pl.DataFrame:
    """_r (row), unit_id and the posted attributes; overflow and type errors located."""
    exprs = [pl.int_range(pl.len(), dtype=pl.Int64).alias("_r"), pl.col("unit_id").cast(pl.String)]
    named = list(zip(comp.attrs.values(), comp.attr_exprs()))
    try:
        df = events.select(*exprs, *(e for _, e in named), *(e for e, _ in comp.derived.values()))
    except (pl.exceptions.ComputeError, pl.exceptions.InvalidOperationError):
        problems = []
        for a, e in named:  # find the column that does not fit
            try:
                events.select(e)
            except (pl.exceptions.ComputeError, pl.exceptions.InvalidOperationError):
                problems.append(Problem(Loc(comp.path, row=1, column=a.column),
                                        f"column '{a.column}' has numbers too large to compare exactly at "
                                        f"{a.scale} decimals"))
        for e, rule in comp.derived.values():
            try:
                events.select(e)
            except (pl.exceptions.ComputeError, pl.exceptions.InvalidOperationError) as err:
                problems.append(Problem(rule.when.loc, f"condition '{rule.when.source}' cannot be computed "
                                        f"exactly: {str(err).splitlines()[0]}", f"[event {rule.id}]"))
        if not problems:
            raise
        raise KaoheError(problems) from None
    return df


def _post_all(events: pl.DataFrame, rules: Sequence[EventRule], comp: _Compiler,
              conditions: dict[int, dict[str, Any]], posted: pl.DataFrame, path: str) -> _Run:
    run = _Run([], [], [], [], [])
    event_ids = events.get_column("event_id").to_list()
    definition: dict[str, Any] = {
        f"r{k}": {"all": [{"m": cond}], "cap": ACTION_CAP, "run": _make_action(k, rules[k], comp, run, event_ids)}
        for k, cond in conditions.items()}
    # the catch-all matches every fact, so no fact is "not handled" (trap 4); its count is never reached
    # within a session, so it never fires and costs no action call
    definition["any"] = {"all": [{"m": _GUARD}], "count": _NEVER, "run": _never}
    # the session's last fact fires `end`, so every session runs at least one action (trap 11)
    definition["end"] = {"all": [{"m": _END}], "run": _session_end}
    host = _BatchHost()
    name = f"kaohe_events_{next(_RUN_IDS)}"
    try:
        host.register_rulesets({name: definition})
    except Exception as e:  # noqa: BLE001 - durable raises plain Exception: find which rule was refused
        raise KaoheError(_refused(rules, conditions, e)) from None
    try:
        _post_sessions(host, name, rules, posted, run, path, event_ids)
    finally:
        if not run.open_session:  # after a failed post the engine's session may be half-made: leave it
            durable_rules_engine.delete_ruleset(host.get_ruleset(name)._handle)
    return run


def _refused(rules: Sequence[EventRule], conditions: dict[int, dict[str, Any]], error: Exception) -> list[Problem]:
    problems = []
    for k, cond in conditions.items():
        probe = _BatchHost()
        name = f"kaohe_probe_{next(_RUN_IDS)}"
        try:
            probe.register_rulesets({name: {"r": {"all": [{"m": cond}], "run": lambda c: None}}})
            durable_rules_engine.delete_ruleset(probe.get_ruleset(name)._handle)
        except Exception as e:  # noqa: BLE001 - durable raises plain Exception
            problems.append(Problem(rules[k].when.loc, f"durable-rules cannot take the condition "
                                    f"'{rules[k].when.source}': {e}", f"[event {rules[k].id}]",
                                    "split the condition over several rules, or simplify it"))
    return problems or [Problem(NOWHERE, f"durable-rules refused the event rules: {error}", "[events]")]


def _post_sessions(host: _BatchHost, name: str, rules: Sequence[EventRule], posted: pl.DataFrame, run: _Run,
                   path: str, event_ids: list[str]) -> None:
    ids, id_hashes = _fact_ids(SESSION_FACTS + 1)  # + the end-of-session fact
    sizes = posted.select(pl.col("unit_id").rle().struct.field("len")).to_series().to_list()
    bounds = _sessions(sizes)
    sids = [_sid(n, id_hashes) for n in range(len(bounds))]
    session = pl.select(pl.Series(range(len(bounds)), dtype=pl.Int64)
                        .repeat_by(pl.Series([hi - lo for lo, hi in bounds])).explode()).to_series()
    # the facts, built by Polars: sid, id = position in the session; a null is posted as JSON null,
    # which no comparison matches (we never test an attribute with `$ex`)
    facts = posted.drop("unit_id").with_columns(
        pl.Series(sids, dtype=pl.String).gather(session).alias("sid"),
        (pl.col("_r") - pl.Series([lo for lo, _ in bounds]).gather(session)).cast(pl.String).alias("id"),
    ).to_dicts()
    problems: list[Problem] = []
    for (lo, hi), sid in zip(bounds, sids):
        batch = facts[lo:hi]
        batch.append({"sid": sid, "id": ids[hi - lo], "_end": 1})
        run.open_session = True
        try:
            state = host.assert_facts(name, batch)
        except (durable_engine.MessageNotHandledException, durable_engine.MessageObservedException) as e:
            raise KaoheError([Problem(Loc(path), f"durable-rules lost events of unit '{posted['unit_id'][lo]}'"
                                      f": {type(e).__name__}", "[events]",
                                      "this is a bug in kaohe's event adapter; please report it")]) from None
        failed = run.failures[:]
        run.failures.clear()
        if not isinstance(state, dict):  # 0: durable abandoned an action (it gives up after 10 s)
            raise KaoheError([Problem(Loc(path), f"durable-rules abandoned an action for unit "
                                      f"'{posted['unit_id'][lo]}'", "[events]", "run again on a less busy "
                                      "machine; if it persists, report it")])
        if failed or state.get("exception"):
            problems += _action_problems(rules, failed, state, path, event_ids)
            if len(problems) >= MAX_PROBLEMS:
                raise KaoheError(_distinct(problems))
        host.delete_state(name, sid)
        run.open_session = False
    if problems:
        raise KaoheError(_distinct(problems))


def _distinct(problems: list[Problem]) -> list[Problem]:
    """Each problem once (`a or b` fires once per true branch, trap 12), in file order."""
    return sorted(dict.fromkeys(problems), key=lambda p: (p.loc.file, p.loc.row or 0, p.loc.line, p.loc.col,
                                                          p.message))


def _sessions(sizes: list[int]) -> list[tuple[int, int]]:
    """Row ranges [lo, hi) of the durable sessions over the unit-sorted rows: whole units packed up to
    SESSION_FACTS facts; a bigger unit is cut into SESSION_FACTS pieces (its correlations are computed
    afterwards, over all its matches, so the cut changes nothing)."""
    out: list[tuple[int, int]] = []
    start = lo = 0
    for size in sizes:
        if start + size - lo > SESSION_FACTS:
            if lo < start:
                out.append((lo, start))
            lo = start
            while start + size - lo > SESSION_FACTS:
                out.append((lo, lo + SESSION_FACTS))
                lo += SESSION_FACTS
        start += size
    if lo < start:
        out.append((lo, start))
    return out


def _action_problems(rules: Sequence[EventRule], failed: list[tuple[int, int | None, BaseException]],
                     state: dict[str, Any], path: str, event_ids: list[str]) -> list[Problem]:
    """The swallowed action exceptions of one post as Problems (trap 6)."""
    problems: list[Problem] = []
    for k, r, e in failed:
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise e
        if isinstance(e, _DataError):
            problems += e.problems
            continue
        rule = rules[k]
        at = f" on event {event_ids[r]}" if r is not None else ""
        problems.append(Problem(rule.loc, f"event rule '{rule.id}' failed{at}: {type(e).__name__}: {e}",
                                f"[event {rule.id}]", "this is a bug in kaohe's event adapter; please report it "
                                "with the scheme and the event log"))
    if not problems:  # durable recorded an exception we did not see (e.g. its own action timeout)
        problems.append(Problem(Loc(path), f"durable-rules reported: {str(state.get('exception'))[:200]}",
                                "[events]", "please report it with the scheme and the event log"))
    return problems


def _assemble(events: pl.DataFrame, rules: Sequence[EventRule], run: _Run) -> pl.DataFrame:
    """Matches -> the tidy frame; nth and within_days applied per (rule, unit) in date order.

    `events` is in output order (unit, date, event id), so sorting by (row, rule) sorts the output."""
    m = pl.DataFrame({"_r": run.rows, "_k": run.rule, "points": run.points, "detail": run.detail},
                     schema={"_r": pl.Int64, "_k": pl.Int64, "points": pl.Int64, "detail": pl.String})
    m = m.unique(["_r", "_k"], keep="first")  # `a or b` fires once per true branch (trap 12)
    ids = [r.id for r in rules]
    rank = {rid: i for i, rid in enumerate(sorted(set(ids)))}
    info = pl.DataFrame({"_k": list(range(len(rules))), "_rank": [rank[i] for i in ids], "rule": ids,
                         "target": [r.target for r in rules], "veto": [r.veto for r in rules],
                         "_nth": [r.nth for r in rules], "_within": [r.within_days for r in rules]},
                        schema={"_k": pl.Int64, "_rank": pl.Int64, "rule": pl.String, "target": pl.String,
                                "veto": pl.String, "_nth": pl.Int64, "_within": pl.Int64})
    base = events.select(pl.col("unit_id").cast(pl.String), pl.col("event_id").cast(pl.String),
                         pl.col("date").cast(pl.Date), pl.col("kind").cast(pl.String),
                         pl.col("unit_id").rle_id().alias("_u"))
    m = m.join(info, on="_k", how="left").sort("_k", "_r")  # each (rule, unit) run in date order
    m = pl.concat([m, base[m.get_column("_r")]], how="horizontal")
    first = (pl.col("_k") != pl.col("_k").shift(1)) | (pl.col("_u") != pl.col("_u").shift(1))
    first = first.fill_null(True)
    i = pl.int_range(pl.len(), dtype=pl.Int64)
    occ = i - pl.when(first).then(i).forward_fill() + 1  # 1, 2, ... within the run
    gap = pl.when(~first).then((pl.col("date") - pl.col("date").shift(1)).dt.total_days())
    keep = ((pl.col("_nth").is_null() | (pl.col("_occ") >= pl.col("_nth")))
            & (pl.col("_within").is_null() | (pl.col("_gap") <= pl.col("_within")).fill_null(False)))
    note = (pl.when(pl.col("_nth").is_not_null()).then(pl.format(" (第{}次)", pl.col("_occ"))).otherwise(pl.lit(""))
            + pl.when(pl.col("_within").is_not_null()).then(pl.format(" (距上次{}天)", pl.col("_gap")))
            .otherwise(pl.lit("")))
    return (m.lazy().with_columns(occ.alias("_occ"), gap.alias("_gap"))
            .filter(keep).with_columns((pl.col("detail") + note).alias("detail"))
            .sort("_r", "_rank")
            .select([pl.col(c).cast(t) for c, t in OUTPUT_SCHEMA.items()]).collect())


# --------------------------------------------------------------------------------------------
# benchmark


def _bench_events(n_events: int, n_units: int, seed: int = 7) -> pl.DataFrame:
    import random

    rnd = random.Random(seed)
    kinds = ["通报批评", "表彰", "生产安全事故", "信访", "越级访", "搬迁延误", "环境污染事件", "其他"]
    levels = ["县级", "市级", "省级"]
    day0 = date(2022, 1, 1)
    rows = []
    for i in range(n_events):
        k = rnd.choice(kinds)
        rows.append((f"E{i:07d}", day0 + timedelta(days=rnd.randrange(365)), f"U{rnd.randrange(n_units):05d}", k,
                     rnd.choice(levels) if k in ("通报批评", "表彰") else None,
                     rnd.randrange(3) if k == "生产安全事故" else None,
                     rnd.randrange(1, 20) if k == "搬迁延误" else None))
    return pl.DataFrame(rows, orient="row", schema={
        "event_id": pl.String, "date": pl.Date, "unit_id": pl.String, "kind": pl.String, "level": pl.String,
        "deaths": pl.Int64, "households": pl.Int64})


def _bench_rules() -> list[EventRule]:
    loc = Loc("bench.yaml", 1, 1)

    def w(text: str) -> E.Expr:
        return E.parse(text, loc)

    D = Decimal
    return [
        EventRule("general_accident", "一般生产安全事故", w('kind == "生产安全事故" and deaths == 0'), points=D(-3),
                  target="section:safety"),
        EventRule("fatal_accident", "亡人生产安全事故", w('kind == "生产安全事故" and deaths >= 1'), veto="fatal"),
        EventRule("petition", "信访事项", w('kind == "信访"'), points=D(-1), nth=2, target="section:stability"),
        EventRule("escalated", "越级访", w('kind == "越级访"'), points=D(-5), target="section:stability"),
        EventRule("repeat_escalated", "30天内重复越级访", w('kind == "越级访"'), points=D(-5), within_days=30,
                  target="section:stability"),
        EventRule("pollution", "环境污染事件", w('kind == "环境污染事件"'), veto="pollution"),
        EventRule("relocation", "搬迁安置延误", w('kind == "搬迁延误"'), points_per="households", each=D("-0.1"),
                  target="pool:deductions"),
        EventRule("criticism", "通报批评", w('kind == "通报批评"'), points_by="level",
                  points_table={"县级": D(-1), "市级": D(-2), "省级": D(-3)}, target="pool:deductions"),
        EventRule("commendation", "表彰奖励", w('kind == "表彰"'), points_by="level",
                  points_table={"县级": D("0.5"), "市级": D(1), "省级": D(2)}, target="pool:bonus"),
    ]


def _raw(events: pl.DataFrame, *, cap: int | None = None, as_events: bool = False, packed: bool = False) -> float:
    """events/s posting the log to a bare host (no timer threads) with one trivial rule; one batch per
    unit (or, packed, per SESSION_FACTS facts as the adapter does). Only durable's work is timed: the
    batches of dicts are built before the clock starts."""
    seen = [0]

    def act(c: Any) -> None:
        seen[0] += len(c.m) if isinstance(c.m, list) else 1

    rule: dict[str, Any] = {"all": [{"m": {"$ex": {"kind": 1}}}], "run": act}
    if cap:
        rule["cap"] = cap
    host = _BatchHost()
    name = f"kaohe_raw_{next(_RUN_IDS)}"
    host.register_rulesets({name: {"trivial": rule}})
    df = events.sort("unit_id", maintain_order=True).with_columns(pl.col("date").dt.strftime("%Y-%m-%d"))
    dicts = [{k: v for k, v in d.items() if v is not None} for d in df.to_dicts()]
    sizes = df.group_by("unit_id", maintain_order=True).len().get_column("len").to_list()
    bounds = _sessions(sizes) if packed else list(itertools.pairwise(itertools.accumulate(sizes, initial=0)))
    batches = []
    for n, (lo, hi) in enumerate(bounds):
        batch = [dict(d, sid=f"u{n}", id=str(j)) for j, d in enumerate(dicts[lo:hi])]
        batches.append((f"u{n}", batch))
    post = host.post_batch if as_events else host.assert_facts
    t0 = time.perf_counter()
    for sid, batch in batches:
        post(name, batch)
        host.delete_state(name, sid)
    dt = time.perf_counter() - t0
    durable_rules_engine.delete_ruleset(host.get_ruleset(name)._handle)
    assert seen[0] == events.height, (seen[0], events.height)
    return events.height / dt


def bench(n_events: int = 100_000, n_units: int = 10_000, repeat: int = 3) -> dict[str, Any]:
    """events/s through run_event_rules (frame in, frame out, 9 rules like township-2022's) against posting
    the same events to a bare durable host with one trivial rule (best of `repeat` each)."""
    events = _bench_events(n_events, n_units)
    rules = _bench_rules()
    run_event_rules(events.head(1000), rules)  # warm-up
    best = float("inf")
    rows = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = run_event_rules(events, rules)
        best = min(best, time.perf_counter() - t0)
        rows = out.height
    adapter = n_events / best
    raws = {
        "raw_facts_per_unit": max(_raw(events) for _ in range(repeat)),
        "raw_post_batch_per_unit": max(_raw(events, as_events=True) for _ in range(repeat)),
        "raw_facts_cap_per_unit": max(_raw(events, cap=ACTION_CAP) for _ in range(repeat)),
        "raw_facts_cap_packed": max(_raw(events, cap=ACTION_CAP, packed=True) for _ in range(repeat)),
    }
    return {"n_events": n_events, "n_units": n_units, "rules": len(rules), "output_rows": rows,
            "adapter_events_per_s": round(adapter), **{f"{k}_events_per_s": round(v) for k, v in raws.items()},
            **{f"ratio_vs_{k}": round(adapter / v, 2) for k, v in raws.items()}}


if __name__ == "__main__":  # python -m engine.events [n_events n_units]
    args = [int(a) for a in sys.argv[1:3]]
    print(json.dumps(bench(*args), indent=2, ensure_ascii=False))
