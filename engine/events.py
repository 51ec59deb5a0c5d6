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

What does not need durable lives beside this module: engine.event_check checks the event log and
the rules (located problems), engine.event_prep prepares the posted columns with Polars and turns
the matches into the output frame. tests/benchmark/bench_events.py measures events/s through this
adapter and through a bare durable host: `python tests/benchmark/bench_events.py [n_events n_units]`.
"""

from __future__ import annotations

import itertools
import math
import operator
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any, Literal, TypeGuard

import durable.engine as durable_engine
import durable_rules_engine
import polars as pl

from . import expr as E
from .errors import NOWHERE, KaoheError, Loc, Notice, Problem, did_you_mean
from .event_check import (
    _INT64,
    BASE_COLUMNS,
    EVENT_SCALE,
    MAX_PROBLEMS,
    Origin,
    _check_events,
    _check_rules,
    _distinct,
    _kind_of,
    near_kinds,
    rule_kinds,
    undecided,
)
from .event_prep import (
    OUTPUT_SCHEMA,
    _assemble,
    _Attr,
    _by_kind,
    _Columns,
    _fmt,
    _fmt_scaled,
    _posted_frame,
    _Run,
)

__all__ = ["BASE_COLUMNS", "EVENT_SCALE", "OUTPUT_SCHEMA", "EventRule", "run_event_rules"]

SESSION_FACTS = 1_000  # facts per durable session: whole units packed up to this; bigger units are cut
ACTION_CAP = 1_000  # matches handed to one action call (durable `cap`)
MAX_ATTRIBUTES = 28  # durable allows 31 properties per message; sid, id and _r take three
MAX_PATHS = 64  # a condition whose and/or expands to more alternatives is computed by Polars first

_GUARD = {"$ex": {"_r": 1}}  # only our facts have _r (trap 9)
_NEVER = 65_535  # durable's largest `count`, above SESSION_FACTS: the catch-all rule never fires
_END = {"$ex": {"_end": 1}}  # the end-of-session fact (no _r: no other rule sees it)
_DURABLE_OPS = {"<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte", "!=": "$neq"}
_NEGATED = {"==": "!=", "!=": "==", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}
_FLIPPED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
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
    max: Decimal | None = None  # the points (in size) the rule gives one unit in the year at most
    loc: Loc = NOWHERE  # the rule in the scheme file


# --------------------------------------------------------------------------------------------
# durable-rules host without background threads (trap 2)


class _BatchHost(durable_engine.Host):  # type: ignore[misc]  # durable has no type information: Host is Any
    """A durable host for synchronous batch use: no dispatch/timer threads are ever started."""

    def _run(self) -> None:  # durable's Host.__init__ starts the timer threads here
        return None

    def free(self, name: str) -> None:
        """Free the engine handle of the ruleset `name` (trap 1)."""
        durable_rules_engine.delete_ruleset(self.get_ruleset(name)._handle)


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
# compiling `when` to durable conditions (the columns and attributes: engine.event_prep._Columns)


class _Compiler(_Columns):
    """Expr trees -> durable condition JSON; the attributes (and derived columns) to post are _Columns'."""

    def condition(self, rule: EventRule) -> dict[str, Any] | Literal[False]:
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
                    return self.leaf(a, op, b, neg)
                if isinstance(b, E.Name) and _const(a):
                    return self.leaf(b, _FLIPPED[op], a, neg)
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
        return {self.derived_column(node, neg, self.rule): True}


def _paths(c: dict[str, Any]) -> int:
    """How many alternative matches durable builds for a condition (its disjunctive normal form)."""
    if "$and" in c:
        return math.prod(_paths(x) for x in c["$and"])
    if "$or" in c:
        return sum(_paths(x) for x in c["$or"])
    return 1


def _const(n: E.Node) -> TypeGuard[E.Num | E.Str | E.Bool]:
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


def _make_action(k: int, rule: EventRule, c: _Compiler, run: _Run,  # noqa: C901 - one body per kind of points
                 event_ids: list[str]) -> Callable[[Any], None]:
    """The action of rule k: append (row, k, points, detail) for each matched fact; points exact."""
    label = rule.label or rule.id
    ctx = f"[event {rule.id}]"
    where = f"rule '{rule.id}' ({rule.loc})"
    veto = "一票否决" if rule.veto is not None else ""
    rows, rules_, points, details = run.rows, run.rule, run.points, run.detail

    def text(head: str, pts: int | None) -> str:
        tail = ", ".join(x for x in (_fmt(pts) if pts is not None else "", veto) if x)
        return f"{head} {tail}"

    def problem(r: int, column: str, message: str, hint: str, zh: tuple[str, str] | None = None) -> Problem:
        return Problem(c.origin.loc(c.rows[r], column), f"event {event_ids[r]} {message} ({where})", ctx, hint,
                       zh=(f"事件 {event_ids[r]} {zh[0]} (规则「{label}」)", zh[1]) if zh else None)

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
                                       + "; fix the event or add the value to the table",
                                       zh=(f"没有填 {by}" if v is None else f"的 {by} '{v}' 不是可计分的取值"
                                           + did_you_mean(str(v), table, "zh"), "可填: " + "、".join(table))))
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
                                       f"fill in {per.column}, or add '{per.column} > 0' to the rule's condition",
                                       zh=(f"没有填 {per.column}, 而计分要用它", f"请填写 {per.column}")))
                    continue
                pts, rem = divmod(each * q, unit)
                if rem or abs(pts) > _INT64:
                    bad.append(problem(r, per.column, f"{per.column} {_fmt_scaled(q, per.scale)} x {each_txt} is not "
                                       f"exact at {EVENT_SCALE} decimals", f"give {per.column} fewer decimals",
                                       zh=(f"的 {per.column} {_fmt_scaled(q, per.scale)} × {each_txt} 在 {EVENT_SCALE} "
                                           "位小数内不能精确表示", f"请减少 {per.column} 的小数位")))
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


def run_event_rules(events: pl.DataFrame, rules: Sequence[EventRule], *, path: str = "events.csv",
                    labels: Mapping[str, str] | None = None, strict: bool = False) -> pl.DataFrame:
    """Run the event rules over the event log: one row per (event, matching rule), see module doc."""
    origin = Origin(path)
    if "_src" in events.columns:  # a scenario's events added to the log: each said at its own file and line
        origin = Origin(path, list(zip(events.get_column("_src").to_list(), events.get_column("_line").to_list(),
                                       strict=True)))
        events = events.drop("_src", "_line")
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
    comp = _Compiler(events, rules, path, order.to_list(), origin)
    comp.collect_scales()
    conditions: dict[int, dict[str, Any]] = {}
    for k, rule in enumerate(rules):
        cond = comp.condition(rule)
        if cond is not False:
            conditions[k] = cond
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
        run = _Run([], [], [], [], [])
    else:
        with _LOCK:
            run = _post_all(events, rules, comp, conditions, posted, path)
    if strict:  # a run's log (the pipeline): what the rules cannot decide, or a near-miss kind, is refused
        _check_outcome(events, rules, set(run.rows), comp.rows, dict(labels or {}), origin)
    else:
        _say_unmatched(events, set(run.rows), comp.rows, origin, rule_kinds(rules))
    return _assemble(events, rules, run)


def _check_outcome(events: pl.DataFrame, rules: Sequence[EventRule], matched: set[int], rows: list[int],
                   labels: dict[str, str], origin: Origin) -> None:
    """Events a rule cannot decide for an empty value, and unmatched events whose kind is close to one the
    rules name, are problems (either may have dropped a veto); the other unmatched events are said."""
    missed = [r for r in range(events.height) if r not in matched]
    problems = undecided(events, rules, rows, labels, origin) + near_kinds(events, missed, rules, rows, origin)
    if problems:
        raise KaoheError(problems)
    _say_unmatched(events, matched, rows, origin, rule_kinds(rules))


LISTED_UNMATCHED = 10


def _say_unmatched(events: pl.DataFrame, matched: set[int], rows: list[int], origin: Origin,
                   known: list[str]) -> None:
    """A `Notice` of the events no rule's condition matches (they score nothing, and veto nothing), with the
    kinds the rules name (`known`): an event the scheme does not score, or a kind written otherwise than the
    rules write it and not close to theirs. (A match that scores nothing, e.g. before `nth`, is a match.)"""
    missed = [r for r in range(events.height) if r not in matched]
    if not missed:
        return
    ids, kinds = events.get_column("event_id"), events.get_column("kind")
    shown = sorted(missed, key=lambda r: rows[r])[:LISTED_UNMATCHED]
    listed = ", ".join(f"{ids[r]} ({origin.said(rows[r])}, {kinds[r]})" for r in shown)
    listed_zh = ", ".join(f"{ids[r]} ({origin.said(rows[r], zh=True)}, {kinds[r]})" for r in shown)
    path = origin.path
    more = f" and {len(missed) - len(shown)} more" if len(missed) > len(shown) else ""
    n = len(missed)
    kinds_said = "、".join(known)
    say = f" ({kinds_said})" if kinds_said else ""
    warnings.warn(Notice(Problem(Loc(path), f"{n} event{'s' if n != 1 else ''} match{'es' if n == 1 else ''} no "
                                 f"event rule and score{'s' if n == 1 else ''} nothing: {listed}{more}",
                                 hint="if they should count, write their kind as the scheme does" + say,
                                 zh=(f"{n} 个事件不符合任何事件规则, 不计分: {listed_zh}{' 等' if more else ''}",
                                     "如果它们应当计分, 请按方案的写法填写事件类别" + say))),
                  stacklevel=4)


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
            host.free(name)
    return run


def _refused(rules: Sequence[EventRule], conditions: dict[int, dict[str, Any]], error: Exception) -> list[Problem]:
    problems = []
    for k, cond in conditions.items():
        probe = _BatchHost()
        name = f"kaohe_probe_{next(_RUN_IDS)}"
        try:
            probe.register_rulesets({name: {"r": {"all": [{"m": cond}], "run": lambda c: None}}})
            probe.free(name)
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
    for (lo, hi), sid in zip(bounds, sids, strict=True):
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
