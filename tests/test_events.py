"""engine.events: event rules on durable-rules, and each known durable-rules trap.

Points are Int64 at EVENT_SCALE = 6 (-3 points = -3_000_000). The scheme file is rules/t.yaml,
every rule sits on its own line there, and its `when` starts at column 11, so messages can be
checked for exact locations.
"""

from __future__ import annotations

import sys
import threading
from datetime import date, timedelta
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import events as ev
from engine import fixed as F
from engine.errors import KaoheError, Loc, Notice
from engine.events import EVENT_SCALE, OUTPUT_SCHEMA, EventRule, run_event_rules
from engine.expr import parse

SCHEME = "rules/t.yaml"
P = 10**EVENT_SCALE  # one point
# many logs here hold events no rule matches, on purpose; the Notice that says so is tested by its own test
pytestmark = pytest.mark.filterwarnings("ignore::engine.errors.Notice")

SCHEMA = {"event_id": pl.String, "date": pl.Date, "unit_id": pl.String, "kind": pl.String, "level": pl.String,
          "deaths": pl.Int64, "households": pl.Int64, "value": pl.Decimal(10, 2)}


def rule(rid: str, when: str, line: int = 10, **kw: Any) -> EventRule:
    return EventRule(id=rid, label=kw.pop("label", rid), when=parse(when, Loc(SCHEME, line, 11)),
                     loc=Loc(SCHEME, line, 5), **kw)


def log(*rows: tuple[Any, ...]) -> pl.DataFrame:
    """Rows of (event_id, 'YYYY-MM-DD', unit_id, kind, level, deaths, households, value)."""
    full = [tuple(r) + (None,) * (8 - len(r)) for r in rows]
    full = [(r[0], date.fromisoformat(r[1]), *r[2:7], D(str(r[7])) if r[7] is not None else None) for r in full]
    return pl.DataFrame(full, schema=SCHEMA, orient="row")


def table(out: pl.DataFrame, *cols: str) -> list[tuple[Any, ...]]:
    return out.select(cols or ["unit_id", "event_id", "rule", "points"]).rows()


def problems(excinfo: pytest.ExceptionInfo[KaoheError]) -> list[str]:
    return [str(p) for p in excinfo.value.problems]


# --------------------------------------------------------------------------------------------
# scoring


def test_fixed_points_only_where_the_condition_holds() -> None:
    events = log(("E1", "2022-03-01", "A", "生产安全事故", None, 0),
                 ("E2", "2022-03-02", "A", "生产安全事故", None, 1),
                 ("E4", "2022-01-05", "B", "生产安全事故", None, 0))
    out = run_event_rules(events, [rule("general", 'kind == "生产安全事故" and deaths == 0', label="一般事故",
                                        points=D(-3), target="section:safety")])
    assert out.schema == pl.Schema(OUTPUT_SCHEMA)
    assert table(out, "unit_id", "event_id", "rule", "points", "target", "veto", "date", "kind", "detail") == [
        ("A", "E1", "general", -3 * P, "section:safety", None, date(2022, 3, 1), "生产安全事故", "一般事故 -3"),
        ("B", "E4", "general", -3 * P, "section:safety", None, date(2022, 1, 5), "生产安全事故", "一般事故 -3")]


def test_points_by_level_table() -> None:
    events = log(("E1", "2022-01-01", "A", "通报批评", "县级"), ("E2", "2022-02-01", "A", "通报批评", "市级"),
                 ("E3", "2022-03-01", "B", "通报批评", "省级"), ("E4", "2022-03-02", "B", "表彰", "省级"))
    r = rule("criticism", 'kind == "通报批评"', label="通报批评", points_by="level",
             points_table={"县级": D(-1), "市级": D(-3), "省级": D(-5)}, target="pool:deductions")
    out = run_event_rules(events, [r])
    assert table(out, "event_id", "points", "detail") == [
        ("E1", -1 * P, "通报批评(县级) -1"), ("E2", -3 * P, "通报批评(市级) -3"), ("E3", -5 * P, "通报批评(省级) -5")]


def test_points_per_quantity_are_exact() -> None:
    events = log(("E1", "2022-01-01", "A", "搬迁延误", None, None, 3),
                 ("E2", "2022-01-02", "A", "搬迁延误", None, None, 7),
                 ("E3", "2022-01-03", "B", "水质", None, None, None, "2.25"),
                 ("E4", "2022-01-04", "B", "水质", None, None, None, "0.10"))
    rules = [rule("relocation", 'kind == "搬迁延误"', label="搬迁延误", points_per="households", each=D("-0.5"),
                  target="pool:deductions"),
             rule("water", 'kind == "水质"', line=11, label="水质", points_per="value", each=D("-0.4"),
                  target="section:ecology")]
    out = run_event_rules(events, rules)
    assert table(out, "event_id", "points", "detail") == [
        ("E1", -1_500_000, "搬迁延误(3×-0.5) -1.5"), ("E2", -3_500_000, "搬迁延误(7×-0.5) -3.5"),
        ("E3", -900_000, "水质(2.25×-0.4) -0.9"), ("E4", -40_000, "水质(0.1×-0.4) -0.04")]


def test_points_per_quantity_finer_than_the_scale_is_reported() -> None:
    events = log(("E1", "2022-01-01", "A", "水质", None, None, None, "0.05"))
    r = rule("water", 'kind == "水质"', line=12, points_per="value", each=D("-0.000001"), target="pool:x")
    with pytest.raises(KaoheError) as e:
        run_event_rules(events, [r])
    assert problems(e) == [("events.csv: row 2, column 'value': [event water] event E1 value 0.05 x -0.000001 is not "
                           "exact at 6 decimals (rule 'water' (rules/t.yaml:12:5)); give value fewer decimals")]


def test_veto_triggers_with_and_without_points() -> None:
    events = log(("E1", "2022-05-01", "A", "生产安全事故", None, 2), ("E2", "2022-05-02", "B", "环境污染事件"))
    rules = [rule("fatal", 'kind == "生产安全事故" and deaths >= 1', label="亡人事故", veto="fatal_accident"),
             rule("pollution", 'kind == "环境污染事件"', line=11, label="环境污染", points=D(-10), veto="pollution",
                  target="section:ecology")]
    out = run_event_rules(events, rules)
    assert table(out, "unit_id", "rule", "points", "target", "veto", "detail") == [
        ("A", "fatal", None, "", "fatal_accident", "亡人事故 一票否决"),
        ("B", "pollution", -10 * P, "section:ecology", "pollution", "环境污染 -10, 一票否决")]


def test_nth_occurrence_counts_in_date_order_per_unit() -> None:
    events = log(("E3", "2022-09-01", "A", "信访"), ("E1", "2022-02-01", "A", "信访"),
                 ("E2", "2022-05-01", "A", "信访"), ("E9", "2022-03-01", "A", "其他"),
                 ("E4", "2022-04-01", "B", "信访"))
    out = run_event_rules(events, [rule("petition", 'kind == "信访"', label="信访", nth=2, points=D(-1),
                                        target="section:stability")])
    assert table(out, "unit_id", "event_id", "points", "detail") == [
        ("A", "E2", -1 * P, "信访 -1 (第2次)"), ("A", "E3", -1 * P, "信访 -1 (第3次)")]


def test_within_days_needs_a_previous_match_close_enough() -> None:
    events = log(("E1", "2022-01-01", "A", "越级访"), ("E2", "2022-01-20", "A", "越级访"),
                 ("E3", "2022-03-01", "A", "越级访"), ("E4", "2022-03-02", "A", "越级访"),
                 ("E5", "2022-03-03", "A", "信访"),  # another kind does not count
                 ("E6", "2022-01-10", "B", "越级访"))
    out = run_event_rules(events, [rule("repeat", 'kind == "越级访"', label="重复越级访", within_days=30,
                                        points=D(-5), target="section:stability")])
    assert table(out, "unit_id", "event_id", "detail") == [("A", "E2", "重复越级访 -5 (距上次19天)"),
                                                           ("A", "E4", "重复越级访 -5 (距上次1天)")]


def test_one_event_fires_every_matching_rule() -> None:
    """Trap 3: a posted durable *event* is consumed by the first rule; facts fire all of them."""
    events = log(("E1", "2022-01-01", "A", "越级访"))
    rules = [rule("escalated", 'kind == "越级访"', points=D(-5), target="section:s"),
             rule("any_petition", 'kind in ["信访", "越级访"]', line=11, points=D(-1), target="pool:p"),
             rule("all", "true", line=12, points=D(0), target="pool:q")]
    assert table(run_event_rules(events, rules)) == [("A", "E1", "all", 0), ("A", "E1", "any_petition", -1 * P),
                                                     ("A", "E1", "escalated", -5 * P)]


def test_an_event_true_on_both_sides_of_or_scores_once() -> None:
    """Trap 12: durable fires an `a or b` rule once per true branch."""
    events = log(("E1", "2022-01-01", "A", "越级访", "市级", 2), ("E2", "2022-01-02", "A", "越级访", "县级", 0))
    r = rule("r", 'kind == "越级访" or level == "市级" or deaths >= 1', points=D(-1), target="p:x")
    assert table(run_event_rules(events, [r])) == [("A", "E1", "r", -1 * P), ("A", "E2", "r", -1 * P)]
    bad = rule("t", 'level == "市级" or deaths >= 1', points_by="level", points_table={"县级": D(1)}, target="p:x")
    with pytest.raises(KaoheError) as e:
        run_event_rules(events, [bad])
    assert len(e.value.problems) == 1  # reported once, not once per branch


def test_unmatched_events_produce_no_rows() -> None:
    """Trap 4: facts no rule matches (whole sessions of them, too) are not an error."""
    r = rule("criticism", 'kind == "通报批评"', points=D(-1), target="pool:p")
    none = log(*[(f"E{i}", "2022-01-01", f"U{i % 7}", "其他") for i in range(50)])
    out = run_event_rules(none, [r])
    assert out.height == 0 and out.schema == pl.Schema(OUTPUT_SCHEMA)
    some = pl.concat([none, log(("X1", "2022-06-01", "U3", "通报批评"))])
    assert table(run_event_rules(some, [r])) == [("U3", "X1", "criticism", -1 * P)]
    assert run_event_rules(none.head(0), [r]).height == 0
    assert run_event_rules(some, [rule("never", "false", points=D(1), target="pool:p")]).height == 0


def test_events_no_rule_matches_are_said_with_their_rows() -> None:
    """An event of a kind no rule names scores nothing and vetoes nothing: a Notice lists such events by id,
    file row (the log's own order, not the output's) and kind, with the kinds the rules name; an event that
    matches a rule but scores nothing (the first 信访 before `nth: 2`) is a match. (A kind close to a rule's,
    or an empty value a rule decides by, is refused: the two tests above.)"""
    rules = [rule("fatal", 'kind == "生产安全事故" and deaths >= 1', veto="fatal_accident"),
             rule("minor", 'kind == "生产安全事故" and deaths == 0', points=D(-3), target="section:safety"),
             rule("petition", 'kind == "信访"', nth=2, points=D(-1), target="section:stability")]
    events = log(("E2", "2022-05-01", "B", "信访"), ("E1", "2022-03-01", "A", "其他事项", None, 1),
                 ("E3", "2022-04-01", "A", "安全检查"), ("E4", "2022-02-01", "A", "生产安全事故", None, 0))
    with pytest.warns(ev.Notice) as said:
        out = run_event_rules(events, rules, path="log.csv")
    assert table(out) == [("A", "E4", "minor", -3 * P)]
    [notice] = [str(w.message) for w in said]
    assert notice == ("log.csv: 2 events match no event rule and score nothing: E1 (row 3, 其他事项), "
                      "E3 (row 4, 安全检查); if they should count, write their kind as the scheme does "
                      "(生产安全事故、信访)")
    many = log(*[(f"X{i}", "2022-01-01", "A", "其他") for i in range(12)])
    with pytest.warns(ev.Notice, match=r"12 events match no event rule .*X9 \(row 11, 其他\) and 2 more;"):
        run_event_rules(many, rules)


def test_output_is_sorted_and_independent_of_row_order() -> None:
    events = log(*[(f"E{i:03d}", f"2022-{1 + i % 12:02d}-{1 + i % 28:02d}", f"U{i % 5}", ["信访", "越级访"][i % 2])
                   for i in range(60)])
    rules = [rule("p", 'kind == "信访"', points=D(-1), nth=3, target="s:a"),
             rule("e", 'kind == "越级访"', line=11, points=D(-2), within_days=40, target="s:a"),
             rule("a", "true", line=12, veto="v")]
    out = run_event_rules(events, rules)
    assert out.height > 60
    assert out.equals(out.sort("unit_id", "date", "event_id", "rule"))
    assert run_event_rules(events.sample(fraction=1.0, shuffle=True, seed=1), rules).equals(out)


# --------------------------------------------------------------------------------------------
# conditions: exact numbers, missing values, what durable cannot test itself


def test_numbers_compare_exactly() -> None:
    """Trap 7: durable compares JSON numbers as longs/doubles; we post scaled integers."""
    big = 2**53 + 1  # not a double
    events = pl.DataFrame({
        "event_id": ["E1", "E2", "E3", "E4"], "date": [date(2022, 1, 1)] * 4, "unit_id": ["A"] * 4, "kind": ["k"] * 4,
        "n": [big, big - 1, 3, None], "d": [D("0.30"), D("0.29"), D("0.31"), D(1)],
        "f": [0.1 + 0.2, 0.3, 0.29, None]}, schema_overrides={"d": pl.Decimal(12, 2)})
    def ids(when: str) -> list[str]:
        return run_event_rules(events, [rule("r", when, veto="v")]).get_column("event_id").to_list()
    assert ids(f"n > {big - 1}") == ["E1"]
    assert ids(f"n == {big - 1}") == ["E2"]
    assert ids("d >= 0.3") == ["E1", "E3", "E4"]
    assert ids("d == 0.300") == ["E1"]
    assert ids("d < 0.305") == ["E1", "E2"]
    assert ids("f == 0.3") == ["E2"]  # 0.1 + 0.2 is 0.30000000000000004, as Python prints it
    assert ids("f > 0.3") == ["E1"]
    assert ids("d in [0.29, 1]") == ["E2", "E4"]


def test_missing_values_never_match_even_negated() -> None:
    events = log(("E1", "2022-01-01", "A", "k", "县级", 0), ("E2", "2022-01-01", "A", "k", None, None),
                 ("E3", "2022-01-01", "A", "k", "市级", 2))
    def ids(when: str) -> list[str]:
        return run_event_rules(events, [rule("r", when, veto="v")]).get_column("event_id").to_list()
    assert ids("deaths == 0") == ["E1"]
    assert ids("not (deaths == 0)") == ["E3"]
    assert ids('level != "县级"') == ["E3"]
    assert ids('level not in ["县级"]') == ["E3"]
    assert ids('not (level == "县级" or deaths >= 1)') == []
    assert ids('level == "县级" or not (deaths >= 1)') == ["E1"]
    assert ids("is_null(deaths)") == ["E2"]
    assert ids("if_null(deaths, 0) == 0") == ["E1", "E2"]


def test_conditions_durable_cannot_test_are_computed_first() -> None:
    events = log(("E1", "2022-01-01", "A", "k", None, 1, 2), ("E2", "2022-02-01", "A", "k", None, 3, 1),
                 ("E3", "2022-03-01", "A", "k", None, None, 5))
    def ids(when: str) -> list[str]:
        return run_event_rules(events, [rule("r", when, veto="v")]).get_column("event_id").to_list()
    assert ids("deaths + households >= 4") == ["E2"]
    assert ids("deaths > households") == ["E2"]
    assert ids("not (deaths > households)") == ["E1"]
    assert ids("max(deaths, households) >= 5") == ["E3"]  # max skips a missing value, as engine.fixed does
    assert ids("deaths + households >= 5") == []  # arithmetic with a missing value is missing
    assert ids("(households if deaths >= 2 else 0) == 1") == ["E2"]
    assert ids('date >= "2022-02-01" and kind == "k"') == ["E2", "E3"]


def test_user_columns_named_like_durable_internals_are_harmless() -> None:
    """Trap 10: posted keys are our own (a0, a1, ...), so `id`, `sid`, `$s` columns cannot clash."""
    events = log(("E1", "2022-01-01", "A", "k"), ("E2", "2022-01-01", "B", "k")).with_columns(
        pl.Series("id", ["x", "y"]), pl.Series("sid", ["0", "0"]))
    out = run_event_rules(events, [rule("r", 'id == "y" and sid == "0"', points=D(1), target="p:x")])
    assert table(out) == [("B", "E2", "r", P)]


_NUM_COLS = {"n": 0, "d": 2}  # column -> decimals
_STR_VALUES = ["a", "b", "县级"]


def _atoms() -> st.SearchStrategy[str]:
    num = st.sampled_from(list(_NUM_COLS))
    op = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])
    const = st.decimals(min_value=-3, max_value=3, places=2).map(lambda d: str(d.normalize()))
    return st.one_of(
        st.builds(lambda c, o, k: f"{c} {o} {k}", num, op, const),
        st.builds(lambda c, o, k: f"{k} {o} {c}", num, op, const),
        st.builds(lambda o, k: f"s {o} '{k}'", st.sampled_from(["==", "!=", "<", ">="]), st.sampled_from(_STR_VALUES)),
        st.builds(lambda neg, ks: f"s {'not in' if neg else 'in'} [{', '.join(repr(k) for k in ks)}]",
                  st.booleans(), st.lists(st.sampled_from(_STR_VALUES), max_size=2)),
        st.builds(lambda neg, ks: f"n {'not in' if neg else 'in'} [{', '.join(ks)}]", st.booleans(),
                  st.lists(st.sampled_from(["-1", "0", "2"]), max_size=2)),
        st.sampled_from(["b", "not b", "b == false", "is_null(d)", "n + d > 1", "n < d", "true", "false"]))


_WHEN = st.recursive(_atoms(), lambda inner: st.one_of(
    inner.map(lambda a: f"not ({a})"),
    st.builds(lambda a, b, o: f"({a}) {o} ({b})", inner, inner, st.sampled_from(["and", "or"]))), max_leaves=6)

_ROWS = st.lists(st.tuples(st.one_of(st.none(), st.integers(-3, 3)),
                           st.one_of(st.none(), st.decimals(min_value=-3, max_value=3, places=2)),
                           st.one_of(st.none(), st.sampled_from(_STR_VALUES)),
                           st.one_of(st.none(), st.booleans())), min_size=1, max_size=25)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(when=_WHEN, rows=_ROWS)
def test_durable_conditions_agree_with_the_polars_compiler(when: str, rows: list[tuple[Any, ...]]) -> None:
    """Whatever durable is asked, it must answer as engine.fixed does (null never matches)."""
    events = pl.DataFrame({
        "event_id": [f"E{i:02d}" for i in range(len(rows))], "date": [date(2022, 1, 1)] * len(rows),
        "unit_id": [f"U{i % 3}" for i in range(len(rows))], "kind": ["k"] * len(rows),
        "n": [r[0] for r in rows], "d": [r[1] for r in rows], "s": [r[2] for r in rows], "b": [r[3] for r in rows]},
        schema_overrides={"n": pl.Int64, "d": pl.Decimal(10, 2), "s": pl.String, "b": pl.Boolean})
    expr = parse(when, Loc(SCHEME, 1, 1))

    def resolve(node: Any) -> F.Fx:
        if node.id in _NUM_COLS:
            return F.Fx(pl.col(node.id).to_physical().cast(pl.Int64), "num", _NUM_COLS[node.id])
        return F.Fx(pl.col(node.id), "bool" if node.id == "b" else "str")

    fx = F.compile_expr(expr.tree, resolve)
    expected = events.filter(fx.expr.fill_null(False)).get_column("event_id").sort().to_list()
    got = run_event_rules(events, [rule("r", when, veto="v")]).get_column("event_id").sort().to_list()
    assert got == expected, when


# --------------------------------------------------------------------------------------------
# errors: located, what / where / how to fix


def test_an_expression_that_cannot_be_compiled_names_the_rule_location() -> None:
    events = log(("E1", "2022-01-01", "A", "k"))
    with pytest.raises(KaoheError) as e:
        run_event_rules(events, [rule("bad", 'kind == "k" and section.safety > 80', line=14, points=D(-1),
                                      target="pool:p")])
    msg = problems(e)
    assert len(msg) == 1
    assert msg[0].startswith("rules/t.yaml:14:27: [event bad] 'section.safety' is not available in an event rule; "
                             "an event rule sees only the columns of its event: date, deaths, event_id")
    with pytest.raises(KaoheError) as e:
        run_event_rules(events, [rule("typo", "deahts >= 1", line=15, veto="v"),
                                 rule("types", 'deaths == "1"', line=16, veto="v"),
                                 rule("day", 'date >= "2022-7-1"', line=17, veto="v")])
    assert problems(e) == [
        ("rules/t.yaml:15:11: [event typo] unknown field 'deahts' (did you mean 'deaths'?); "
        "declare it under 'fields:' or fix the spelling"),
        "rules/t.yaml:16:11: [event types] cannot compare num with str using '=='",
        ("rules/t.yaml:17:19: [event day] '2022-7-1' is not a date; write dates as 'YYYY-MM-DD', e.g. "
        "date >= '2022-07-01'")]


def test_conditions_too_big_for_durable(monkeypatch: pytest.MonkeyPatch) -> None:
    """durable expands and/or into alternatives and refuses big ones (error code 113): we compute
    such a condition with Polars first; were durable still to refuse one, the rule is named."""
    events = pl.DataFrame({"event_id": ["E1", "E2"], "date": [date(2022, 1, 1)] * 2, "unit_id": ["A"] * 2,
                           "kind": ["k"] * 2, "x": [1, 500], "y": [2, 50]})
    when = " and ".join(f"(x == {i} or y < {i} or x > {i + 100})" for i in range(20))  # 3**20 alternatives
    rules = [rule("small", 'kind == "k"', line=40, veto="v"), rule("big", when, line=41, veto="v")]
    assert table(run_event_rules(events, rules), "event_id", "rule") == [("E1", "small"), ("E2", "big"),
                                                                         ("E2", "small")]
    monkeypatch.setattr(ev, "MAX_PATHS", 10**12)
    with pytest.raises(KaoheError) as e:
        run_event_rules(events, rules)
    [msg] = problems(e)
    assert msg.startswith("rules/t.yaml:41:11: [event big] durable-rules cannot take the condition '(x == 0 or ")
    assert msg.endswith("Could not create ruleset, error code: 113; split the condition over several rules, "
                        "or simplify it")


def test_bad_rule_settings_are_reported_together() -> None:
    events = log(("E1", "2022-01-01", "A", "k"))
    rules = [rule("a", "true", line=20),
             rule("a", "true", line=21, points=D(1), points_per="households", each=D(1)),
             rule("c", "true", line=22, points=D("0.0000001"), nth=0),
             rule("d", "true", line=23, points_by="levle", points_table={"县级": D(1)})]
    with pytest.raises(KaoheError) as e:
        run_event_rules(events, rules)
    assert problems(e) == [
        "rules/t.yaml:20:5: [event a] an event rule needs points or a veto",
        "rules/t.yaml:21:5: [event a] duplicate event rule id 'a' (first at rules/t.yaml:20:5)",
        "rules/t.yaml:21:5: [event a] give one way of scoring, not points and points per quantity",
        "rules/t.yaml:22:5: [event c] points 1E-7 has more than 6 decimals",
        "rules/t.yaml:22:5: [event c] 'nth' must be a whole number from 1, got 0",
        "rules/t.yaml:23:5: [event d] unknown event column 'levle' (did you mean 'level'?)"]


def test_bad_event_log_rows_are_located() -> None:
    events = log(("E1", "2022-01-01", "A", "k"), ("E1", "2022-01-02", "B", "k")).with_columns(
        pl.when(pl.col("unit_id") == "B").then(None).otherwise(pl.col("unit_id")).alias("unit_id"))
    with pytest.raises(KaoheError) as e:
        run_event_rules(events, [rule("r", "true", veto="v")], path="data/events.csv")
    dup = "duplicate event id 'E1'; each event needs its own id"
    assert problems(e) == ["data/events.csv: row 3, column 'unit_id': empty unit id",
                           f"data/events.csv: row 2, column 'event_id': {dup}",
                           f"data/events.csv: row 3, column 'event_id': {dup}"]


def test_action_exception_becomes_a_located_error() -> None:
    """Trap 6: durable swallows action exceptions into c.s.exception; we report rule, file:line, event row."""
    events = log(("E1", "2022-01-01", "A", "通报批评", "县级"), ("E2", "2022-01-02", "B", "通报批评", "乡级"),
                 ("E3", "2022-01-03", "C", "通报批评", None))
    r = rule("criticism", 'kind == "通报批评"', line=12, points_by="level",
             points_table={"县级": D(-1), "市级": D(-3)}, target="pool:p")
    with pytest.raises(KaoheError) as e:
        run_event_rules(events, [r], path="events.csv")
    assert problems(e) == [
        ("events.csv: row 3, column 'level': [event criticism] event E2 has level '乡级', which is not in the points "
        "table (rule 'criticism' (rules/t.yaml:12:5)); points are given for 县级, 市级; fix the event or add the "
        "value to the table"),
        ("events.csv: row 4, column 'level': [event criticism] event E3 has no level (rule 'criticism' "
        "(rules/t.yaml:12:5)); points are given for 县级, 市级; fix the event or add the value to the table")]


def test_unexpected_action_failure_names_the_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    seen_states: list[dict[str, Any]] = []
    real = ev._action_problems

    def spy(rules: Any, failed: Any, state: dict[str, Any], path: str, event_ids: Any) -> Any:
        seen_states.append(state)
        return real(rules, failed, state, path, event_ids)

    def boom(v: int, scale: int) -> str:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(ev, "_action_problems", spy)
    monkeypatch.setattr(ev, "_fmt_scaled", boom)  # used by the per-quantity action for its detail text
    events = log(("E1", "2022-01-01", "A", "搬迁延误", None, None, 2))
    with pytest.raises(KaoheError) as e:
        run_event_rules(events, [rule("relocation", 'kind == "搬迁延误"', line=30, points_per="households",
                                      each=D(-1), target="pool:p")])
    assert problems(e) == [("rules/t.yaml:30:5: [event relocation] event rule 'relocation' failed on event E1: "
                           "ZeroDivisionError: boom; this is a bug in kaohe's event adapter; please report it with "
                           "the scheme and the event log")]
    assert "boom" in seen_states[0]["exception"]  # it went through durable's c.s.exception


# --------------------------------------------------------------------------------------------
# durable-rules traps: hosts, threads, identity, load


def test_two_runs_in_one_process_and_no_background_threads() -> None:
    """Traps 1 and 2: a fresh host and ruleset name per run; durable's timer threads never start."""
    events = log(("E1", "2022-01-01", "A", "k"), ("E2", "2022-01-02", "B", "x"))
    rules = [rule("r", 'kind == "k"', points=D(2), target="pool:p")]
    threads = threading.active_count()
    first = run_event_rules(events, rules)
    for _ in range(30):
        assert run_event_rules(events, rules).equals(first)
    assert table(first) == [("A", "E1", "r", 2 * P)]
    assert threading.active_count() == threads


def _colliding_ids() -> tuple[str, str]:
    seen: dict[int, str] = {}
    i = 0
    while True:
        s = f"evt-{i}"
        h = ev._fnv1_32(s)
        if h in seen:
            return seen[h], s
        seen[h] = s
        i += 1


def test_message_identity_is_a_32_bit_hash_and_our_ids_never_collide() -> None:
    """Trap 5: two distinct ids with one FNV-1 hash are 'already observed' in a session; the ids we
    give (positions in the session) are collision-free far beyond 40k facts."""
    a, b = _colliding_ids()
    assert a != b
    host = ev._BatchHost()
    seen = [0]

    def count(c: Any) -> None:
        seen[0] += len(c.m)

    host.register_rulesets({"trap5": {"r": {"all": [{"m": ev._GUARD}], "cap": 1000, "run": count}}})
    host.assert_facts("trap5", [{"sid": "s", "id": a, "_r": 1}])
    with pytest.raises(ev.durable_engine.MessageObservedException):
        host.assert_facts("trap5", [{"sid": "s", "id": b, "_r": 2}])
    host.delete_state("trap5", "s")
    ids, hashes = ev._fact_ids(50_000)
    assert len(hashes) == 50_000
    seen[0] = 0
    host.assert_facts("trap5", [{"sid": "t", "id": i, "_r": n} for n, i in enumerate(ids)])
    assert seen[0] == 50_000
    host.delete_state("trap5", "t")


def test_large_single_unit_log() -> None:
    n = 50_000
    day = date(2022, 1, 1)
    events = pl.DataFrame({"event_id": [f"E{i:06d}" for i in range(n)],
                           "date": [day + timedelta(days=i * 365 // n) for i in range(n)],
                           "unit_id": ["A"] * n, "kind": ["信访" if i % 2 else "其他" for i in range(n)],
                           "households": [i % 4 for i in range(n)]})
    rules = [rule("petition", 'kind == "信访"', points=D(-1), nth=3, target="s:x"),
             rule("households", "households >= 3", line=11, points_per="households", each=D("-0.5"),
                  target="p:y")]
    out = run_event_rules(events, rules)
    petitions = out.filter(pl.col("rule") == "petition")
    assert petitions.height == n // 2 - 2
    assert petitions.get_column("event_id")[0] == "E000005"  # the 3rd petition: E1, E3, E5
    hh = out.filter(pl.col("rule") == "households")
    assert hh.height == n // 4 and hh.get_column("points").sum() == -1_500_000 * (n // 4)


def test_repeated_runs_under_load() -> None:
    """Trap 2 ("error code 307"): back-to-back runs while another thread keeps the interpreter busy."""
    n = 20_000
    events = pl.DataFrame({"event_id": [f"E{i:06d}" for i in range(n)],
                           "date": [date(2022, 1, 1) + timedelta(days=i % 365) for i in range(n)],
                           "unit_id": [f"U{i % 2_000:04d}" for i in range(n)],
                           "kind": [["信访", "越级访", "通报批评", "其他"][i % 4] for i in range(n)],
                           "level": [["县级", "市级"][i % 2] for i in range(n)]})
    rules = [rule("petition", 'kind == "信访"', points=D(-1), nth=2, target="s:x"),
             rule("escalated", 'kind == "越级访"', line=11, points=D(-5), within_days=100, target="s:x"),
             rule("criticism", 'kind == "通报批评"', line=12, points_by="level",
                  points_table={"县级": D(-1), "市级": D(-2)}, target="p:y")]
    stop = threading.Event()

    def busy() -> None:
        x = 0
        while not stop.is_set():
            x = (x * 31 + 7) % 1_000_003

    worker = threading.Thread(target=busy, daemon=True)
    threads = threading.active_count()
    worker.start()
    try:
        outs = [run_event_rules(events, rules) for _ in range(5)]
    finally:
        stop.set()
        worker.join()
    assert all(o.equals(outs[0]) for o in outs)
    expected = {"petition": 0, "escalated": 0, "criticism": 0}
    last: dict[str, date] = {}
    seen: dict[str, int] = {}
    for row in events.sort("unit_id", "date", "event_id").iter_rows(named=True):
        u, d, kind = row["unit_id"], row["date"], row["kind"]
        if kind == "信访":
            seen[u] = seen.get(u, 0) + 1
            expected["petition"] += seen[u] >= 2
        elif kind == "越级访":
            expected["escalated"] += u in last and (d - last[u]).days <= 100
            last[u] = d
        elif kind == "通报批评":
            expected["criticism"] += 1
    assert dict(outs[0].group_by("rule").len().iter_rows()) == expected
    assert expected["escalated"] > 1000
    assert threading.active_count() == threads


def test_bench_reports_both_throughputs() -> None:
    sys.path.insert(0, str(Path(__file__).parent / "benchmark"))
    from bench_events import bench  # type: ignore[import-not-found]  # noqa: PLC0415 - importable only after the sys.path insert above

    result = bench(n_events=2_000, n_units=200, repeat=1)
    assert result["adapter_events_per_s"] > 0 and result["raw_facts_per_unit_events_per_s"] > 0
    assert result["output_rows"] > 0


def test_a_rule_s_max_caps_what_one_unit_gets_from_it_in_the_year() -> None:
    """通报批评每次扣2分, 全年最多扣3分: the events in date order score until the cap, the one that reaches it
    the rest, later ones nothing; each says so, and every unit has its own cap."""
    events = log(("E3", "2022-05-01", "A", "通报批评"), ("E1", "2022-01-01", "A", "通报批评"),
                 ("E2", "2022-03-01", "A", "通报批评"), ("F1", "2022-03-01", "B", "通报批评"))
    r = rule("crit", 'kind == "通报批评"', label="通报批评", points=D(-2), max=D(3), target="pool:p")
    assert table(run_event_rules(events, [r]), "unit_id", "event_id", "points", "detail") == [
        ("A", "E1", -2 * P, "通报批评 -2"), ("A", "E2", -1 * P, "通报批评 -2 (全年上限 3, 计 -1)"),
        ("A", "E3", 0, "通报批评 -2 (全年上限 3, 计 0)"), ("B", "F1", -2 * P, "通报批评 -2")]
    uncapped = rule("crit", 'kind == "通报批评"', label="通报批评", points=D(-2), target="pool:p")
    assert sum(p for *_, p in table(run_event_rules(events, [uncapped]))) == -8 * P


def test_a_blank_row_in_the_event_log_is_one_problem_at_its_row(tmp_path: Path) -> None:
    """A blank row inside the log gave a problem a column, one of them "'None' is not a date"."""
    from engine.pipeline import Inputs, load  # noqa: PLC0415

    root = Path(__file__).resolve().parents[1]
    lines = (root / "fixtures" / "2022" / "events.csv").read_text(encoding="utf-8").splitlines()
    log = tmp_path / "events.csv"
    log.write_text("\n".join([*lines[:5], ",,,,,,,", *lines[5:]]) + "\n", encoding="utf-8")
    with pytest.raises(KaoheError) as info:
        load(Inputs(root / "rules" / "township-2022.yaml", root / "fixtures" / "2022" / "units.csv", log))
    assert [(p.loc.row, p.message) for p in info.value.problems] == [(6, "this row of the event log is blank")]


def test_an_event_a_rule_cannot_decide_for_an_empty_value_is_refused_at_its_row() -> None:
    """A 生产安全事故 with its 死亡人数 left empty matched neither accident rule, so its veto was lost with a
    notice only (the clerk audit: 王家庄村 came first and was recommended). Where a rule's condition is
    neither true nor false because a value it reads is empty, the event is refused at its row and column;
    an empty value that decides nothing (another kind's rule, or `or` with a true side) is no problem."""
    rules = [rule("general", 'kind == "生产安全事故" and deaths == 0', label="一般事故", points=D(-3),
                  target="section:safety"),
             rule("fatal", 'kind == "生产安全事故" and deaths >= 1', label="亡人事故", veto="fatal"),
             rule("many", 'kind == "搬迁延误" and (households >= 10 or deaths >= 1)', label="大规模", points=D(-1),
                  target="pool:p")]
    events = log(("E1", "2022-03-01", "A", "生产安全事故", None, 0),
                 ("E2", "2022-03-02", "A", "生产安全事故", None, None),      # undecided by both accident rules
                 ("E3", "2022-03-03", "B", "信访", None, None),              # no rule reads its deaths
                 ("E4", "2022-03-04", "B", "搬迁延误", None, None, 12))      # households >= 10 decides it
    with pytest.raises(KaoheError) as e:
        run_event_rules(events, rules, path="log.csv", labels={"deaths": "死亡人数"}, strict=True)
    said = problems(e)
    assert len(said) == 2 and all(s.startswith("log.csv: row 3, column 'deaths': event E2 (生产安全事故): 死亡人数 "
                                               "(deaths) is empty") for s in said)
    named = sorted(r for r in ("一般事故", "亡人事故") for s in said if f"rule '{r}'" in s)
    assert named == ["一般事故", "亡人事故"]
    zh = e.value.problems[0].text("zh")
    assert zh.startswith("log.csv: 第 3 行, 列 'deaths': 事件 E2 (生产安全事故) 的「死亡人数」为空")
    fine = run_event_rules(events.filter(pl.col("event_id") != "E2"), rules, strict=True)
    assert table(fine, "event_id", "rule") == [("E1", "general"), ("E4", "many")]


def test_an_unmatched_event_whose_kind_is_close_to_a_rules_kind_is_refused() -> None:
    """环境污染 for the rules' 环境污染事件 scored nothing and lost the veto, with a notice only; the polluting
    village came first on the ecology award. A kind close to one the rules name is a problem (with the
    suggestion and the rules' kinds); a kind far from all of them stays a notice that lists them."""
    rules = [rule("pollution", 'kind == "环境污染事件"', label="环境污染", veto="pollution"),
             rule("petition", 'kind == "信访"', label="信访", points=D(-1), target="pool:p")]
    events = log(("E1", "2022-03-01", "A", "环境污染", None), ("E2", "2022-03-02", "A", "信访件", None),
                 ("E3", "2022-03-03", "A", "信访", None))
    with pytest.raises(KaoheError) as e:
        run_event_rules(events, rules, path="log.csv", strict=True)
    said = problems(e)
    assert said[0].startswith("log.csv: row 2, column 'kind': event E1: kind '环境污染' is no kind the rules score "
                              "(did you mean '环境污染事件'?); as written, it scores nothing and vetoes nothing; the "
                              "rules' kinds: 环境污染事件、信访; ")
    assert said[1].startswith("log.csv: row 3, column 'kind': event E2: kind '信访件' is no kind the rules score "
                              "(did you mean '信访'?)")
    far = log(("E1", "2022-03-01", "A", "表彰", None), ("E3", "2022-03-03", "A", "信访", None))
    with pytest.warns(Notice, match="1 event matches no event rule.*write their kind as the scheme does "
                                    r"\(环境污染事件、信访\)"):
        out = run_event_rules(far, rules, strict=True)
    assert table(out, "event_id", "rule") == [("E3", "petition")]


def test_an_event_unit_written_as_its_name_or_in_other_case_is_said_with_its_id(tmp_path: Path) -> None:
    """The clerk audit (#15): an event's unit written as the unit's name (王家庄村) or in lower case (v16) was
    'not in the units table' only; the id to write is now said."""
    from engine.pipeline import Inputs, load  # noqa: PLC0415

    root = Path(__file__).resolve().parents[1]
    text = (root / "fixtures" / "2022" / "events.csv").read_text(encoding="utf-8")
    log = tmp_path / "events.csv"
    log.write_text(text.replace("E003,2022-03-09,V03,", "E003,2022-03-09,王家庄村,")
                   .replace("E004,2022-03-15,V16,", "E004,2022-03-15,v16,"), encoding="utf-8")
    with pytest.raises(KaoheError) as info:
        load(Inputs(root / "rules" / "township-2022.yaml", root / "fixtures" / "2022" / "units.csv", log))
    assert [p.text("zh").removeprefix(f"{log}: ") for p in info.value.problems] == [
        "第 4 行, 列 'unit_id': '王家庄村' 不是单位编号: 它对应的单位编号是 V03；请填 V03",
        "第 5 行, 列 'unit_id': 'v16' 不是单位编号: 它对应的单位编号是 V16；请填 V16"]


def test_a_date_excel_wrote_as_its_serial_number_is_said_as_such(tmp_path: Path) -> None:
    """The clerk audit (#15): '44629' in a CSV log's date column (an Excel date cell formatted as a number)
    was 'not a date' only; the date it stands for is said."""
    from engine.pipeline import Inputs, load  # noqa: PLC0415

    root = Path(__file__).resolve().parents[1]
    log = tmp_path / "events.csv"
    log.write_text((root / "fixtures" / "2022" / "events.csv").read_text(encoding="utf-8")
                   .replace("E003,2022-03-09,", "E003,44629,"), encoding="utf-8")
    with pytest.raises(KaoheError) as info:
        load(Inputs(root / "rules" / "township-2022.yaml", root / "fixtures" / "2022" / "units.csv", log))
    [p] = info.value.problems
    assert (p.loc.row, p.loc.column) == (4, "date")
    assert p.text("zh").endswith("'44629' 不是日期: 它像是 Excel 的日期序号, 即 2022-03-09；"
                                 "请在 Excel 中把单元格格式设为日期, 或写成 YYYY-MM-DD")



def test_kinds_named_in_a_list_and_kinds_with_a_detail_in_brackets_are_known_kinds() -> None:
    """The second audit: a rule written `kind in [...]` (as FORMAT.md's own example does) gave no near-miss
    check, and 生产安全事故（民房改建高处坠落） (the detail in brackets) fell below the similarity cutoff: the veto
    was lost with a notice only. Both are refused now; a longer kind of its own (生产安全事故隐患) is not a
    bracketed detail."""
    rules = [rule("pollution", 'kind in ["环境污染事件", "水污染事件"]', label="环境污染", veto="pollution"),
             rule("fatal", 'kind == "生产安全事故" and deaths >= 1', label="亡人事故", veto="fatal")]
    detailed = "生产安全事故（民房改建高处坠落）"
    events = log(("E1", "2022-03-01", "A", "环境污染", None), ("E2", "2022-03-02", "A", detailed, None, 1))
    with pytest.raises(KaoheError) as e:
        run_event_rules(events, rules, path="log.csv", strict=True)
    said = problems(e)
    assert "kind '环境污染' is no kind the rules score (did you mean '环境污染事件'?)" in said[0]
    assert f"kind '{detailed}' is no kind the rules score (did you mean '生产安全事故'?)" in said[1]
    assert "the rules' kinds: 环境污染事件、水污染事件、生产安全事故" in said[0]


def test_a_log_of_another_year_is_one_problem() -> None:
    """The clerk audit (#13): the 2023 log against the 2022 scheme gave 16 identical lines."""
    from engine.pipeline import Inputs, load  # noqa: PLC0415

    root = Path(__file__).resolve().parents[1]
    with pytest.raises(KaoheError) as info:
        load(Inputs(root / "rules" / "township-2022.yaml", root / "fixtures" / "2023-h1" / "units.csv",
                    root / "fixtures" / "2023-h1" / "events.csv"))
    assert [p.text("zh").split(": ", 1)[1] for p in info.value.problems] == [
        "全部 16 个事件都在 2023 年, 而方案是 2022 年度的；是否用错了事件记录或方案?"]


def test_a_date_of_other_digits_is_no_serial_number() -> None:
    """The fuzzing helper: '４４６２９' (full-width) or '²' passed str.isdigit and int() raised a traceback."""
    from engine.event_rules import _serial_date  # noqa: PLC0415

    assert _serial_date("４４６２９") is None and _serial_date("²") is None
    said = _serial_date("44629")
    assert said is not None and "2022-03-09" in said[2]
