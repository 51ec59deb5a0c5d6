"""Exactness: sums that should be 90 are exactly 90, row order changes nothing, and a monotone
scheme never punishes a better input."""

from __future__ import annotations

import sys
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import polars as pl
import pytest
from helpers import D, by_unit, dec, frame, pts, score, write_scheme
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engine.data import prepare_units
from engine.decide import decide
from engine.errors import KaoheError
from engine.evaluate import ITEM_SCALE, build_plan, evaluate, field_ranges
from engine.rules_load import load_decisions
from engine.scheme import load_scheme

# --- exactly 90 ------------------------------------------------------------------------------------

NINETY = """
sections:
  - id: s
    items:
      # 40 x 0.7 / 0.8 = 35        (floats: 0.7 / 0.8 = 0.8749999999999999)
      - {id: a, points: 40, value: rate / 0.8, method: proportional}
      # 30 x 2 / 3 = 20            (dividing first: 30 x 0.6666666666 = 19.999999998)
      - {id: b, points: 30, value: done / target, method: proportional}
      # 0.1 + 0.2 <= 0.3 holds: 15 (floats: 0.30000000000000004 > 0.3)
      - {id: c, value: x + y, method: {bands: {at_most: [[0.3, 15]]}}}
      # 6.7 + 6.6 + 6.7 = 20       (floats: 19.999999999999996)
      - {id: d, points: 20, value: q1 + q2 + q3, method: direct}
grades:
  - {id: excellent, label: 优秀, min: 90}
  - {id: good, label: 良好, min: 80}
  - {id: other, label: 其他}
"""
NINETY_FIELDS = {"rate": "{type: decimal, scale: 4}", "done": "{type: int}", "target": "{type: int}",
                 "x": "{type: decimal, scale: 2}", "y": "{type: decimal, scale: 2}",
                 **{q: "{type: decimal, scale: 1}" for q in ("q1", "q2", "q3")}}
NINETY_DATA = {"rate": ["0.7"], "done": ["2"], "target": ["3"], "x": ["0.1"], "y": ["0.2"],
               "q1": ["6.7"], "q2": ["6.6"], "q3": ["6.7"]}


@pytest.mark.parametrize("rounding", ["half_up", "down", "floor", "half_even"])
def test_items_adding_to_90_give_exactly_90(tmp_path: Path, rounding: str) -> None:
    path = write_scheme(tmp_path, NINETY, NINETY_FIELDS, rounding=rounding)
    scheme = load_scheme(path)
    units = prepare_units(frame(NINETY_DATA), scheme, path="units.csv")
    _, scored = evaluate(scheme, units.frame, path="units.csv")
    assert [pts(scored, f"i.{i}") for i in "abcd"] == [D(35), D(20), D(15), D(20)]
    raw = sum(scored.get_column(f"i.{i}")[0] for i in "abcd")
    assert raw == 90 * 10**ITEM_SCALE  # the exact item sum
    assert scored.get_column("total").to_list() == [9000]  # 90.00 at precision 2, under any rounding
    decided, _ = decide(scheme, load_decisions(scheme), scored)
    assert decided.get_column("grade").to_list() == ["excellent"]  # total >= 90 holds


def test_just_under_90_is_not_excellent(tmp_path: Path) -> None:
    # q1 6.6 instead of 6.7: 89.9 -> good
    path = write_scheme(tmp_path, NINETY, NINETY_FIELDS)
    scheme = load_scheme(path)
    units = prepare_units(frame({**NINETY_DATA, "q1": ["6.6"]}), scheme, path="units.csv")
    _, scored = evaluate(scheme, units.frame, path="units.csv")
    assert pts(scored, "total") == D("89.9")
    decided, _ = decide(scheme, load_decisions(scheme), scored)
    assert decided.get_column("grade").to_list() == ["good"]


# --- row order changes no score --------------------------------------------------------------------

MANY = """
sections:
  - id: dev
    weight: 0.3
    max: 60
    items:
      - id: p
        points: 20
        value: done / target
        method: proportional
        not_applicable: {when: target == 0, points: full}
      - id: st
        points: 10
        value: rate
        method: {steps: {target: 0.95, step: 0.01, above: 0.5, above_cap: 3, below: 1, below_cap: 10}}
      - {id: b, value: rate, method: {bands: {at_least: [[0.95, 10], [0.9, 8]], else: 4}}}
      - {id: l, value: cls, method: {lookup: {table: {一类: 10, 二类: 8, 三类: 6}}}}
      - {id: pf, points: 5, value: ok, method: pass_fail}
  - id: gov
    weight: 0.7
    sections:
      - id: rankings
        max: 25
        items:
          - {id: r, value: rate, method: {rank: {table: [10, 8, 6], else: 3, within: [unit_type]}}}
          - {id: rl, value: n, method: {rank: {order: asc, linear: [5, 1]}}}
          - {id: sh, points: 10, value: done + 1, method: share_of_leader}
          - {id: e, points: 10, value: rate, method: {efficacy: {within: [unit_type]}}}
      - id: incidents
        floor: 0
        items:
          - {id: c, value: n, method: {count: {each: 2, max: 10}}}
          - {id: d, points: 10, value: n, method: {deduct: {each: 1.5}}}
pools:
  - {id: bonus, max: 3, items: [{id: bo, value: n, method: {count: {each: 0.7, max: 10}}}]}
"""
MANY_FIELDS = {"rate": "{type: decimal, scale: 4, min: 0}", "done": "{type: decimal, scale: 2, min: 0}",
               "target": "{type: decimal, scale: 2, min: 0}", "n": "{type: int, min: 0}",
               "cls": "{type: str, values: [一类, 二类, 三类]}", "ok": "{type: bool}"}

RATES = st.one_of(st.sampled_from(["0", "0.5", "0.8999", "0.9", "0.90", "0.9001", "0.9499", "0.95", "0.9501",
                                   "0.96", "1", "1.2"]),
                  st.decimals(min_value=0, max_value=2, places=4).map(str))
AMOUNTS = st.one_of(st.sampled_from(["0", "1", "9.99", "10", "100"]),
                    st.decimals(min_value=0, max_value=1000, places=2).map(str))
UNIT = st.fixed_dictionaries({
    "unit_type": st.sampled_from(["village", "office"]),
    "rate": RATES, "done": AMOUNTS, "target": AMOUNTS,
    "n": st.integers(min_value=0, max_value=12).map(str),
    "cls": st.sampled_from(["一类", "二类", "三类"]),
    "ok": st.sampled_from(["是", "否"]),
})


@pytest.fixture(scope="module")
def many_scheme(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return load_scheme(write_scheme(tmp_path_factory.mktemp("many"), MANY, MANY_FIELDS))


def _scores(scheme, df: pl.DataFrame) -> pl.DataFrame:  # type: ignore[no-untyped-def]
    units = prepare_units(df, scheme, path="units.csv")
    _, scored = evaluate(scheme, units.frame, path="units.csv")
    cols = [c for c in scored.columns if c.startswith(("i.", "s.", "p.", "v.")) or c == "total"]
    return scored.select("unit_id", *cols).sort("unit_id")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(units=st.lists(UNIT, min_size=1, max_size=9), seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_shuffling_rows_changes_no_score(many_scheme, units: list[dict[str, str]],  # type: ignore[no-untyped-def]
                                         seed: int) -> None:
    df = pl.DataFrame([{"unit_id": f"u{i:02d}", **u} for i, u in enumerate(units)])
    shuffled = df.sample(fraction=1, shuffle=True, seed=seed)
    a, b = _scores(many_scheme, df), _scores(many_scheme, shuffled)
    assert a.equals(b)  # same columns, same values (nulls included), unit by unit


def test_shuffling_example_by_hand(many_scheme) -> None:  # type: ignore[no-untyped-def]
    # a fixed case, with the window items worked out by hand
    df = pl.DataFrame({"unit_id": ["a", "b", "c"], "unit_type": ["village"] * 3, "rate": ["0.95", "0.9", "0.9"],
                       "done": ["4", "1", "0"], "target": ["4", "2", "0"], "n": ["1", "2", "3"],
                       "cls": ["一类", "二类", "三类"], "ok": ["是", "否", "是"]})
    for frame_ in (df, df.reverse()):
        s = _scores(many_scheme, frame_)
        got = dict(zip(s.get_column("unit_id"), dec(s, "i.r"), strict=True))
        assert got == {"a": D(10), "b": D(8), "c": D(8)}  # ranks 1, 2, 2
        got = dict(zip(s.get_column("unit_id"), dec(s, "i.rl"), strict=True))
        # n ascending, 3 units: 5 - 4 x (rank - 1)/2 = 5, 3, 1
        assert got == {"a": D(5), "b": D(3), "c": D(1)}
        got = dict(zip(s.get_column("unit_id"), dec(s, "i.sh"), strict=True))
        # done + 1 = 5, 2, 1; leader 5: 10, 4, 2
        assert got == {"a": D(10), "b": D(4), "c": D(2)}
        got = dict(zip(s.get_column("unit_id"), dec(s, "i.p"), strict=True))
        assert got == {"a": D(20), "b": D(10), "c": D(20)}  # c: target 0 -> not applicable, full


# --- monotone: a better input never lowers the total -----------------------------------------------

MONOTONE = """
sections:
  - id: s
    max: 80
    items:
      - {id: p, points: 30, value: done / target, method: proportional}
      - {id: b, value: rate, method: {bands: {at_least: [[0.95, 20], [0.9, 15], [0.8, 10]], else: 0}}}
      - {id: c, value: n, method: {count: {each: 2, max: 10}}}
      - id: st
        points: 10
        value: rate
        method: {steps: {target: 0.95, step: 0.01, above: 1, above_cap: 3, below: 0.5, below_cap: 10}}
      - {id: d, points: 10, value: incidents, method: {deduct: {each: 3}}}
"""
MONOTONE_FIELDS = {"done": "{type: decimal, scale: 2, min: 0}", "target": "{type: decimal, scale: 2, min: 0}",
                   "rate": "{type: decimal, scale: 4, min: 0}", "n": "{type: int, min: 0}",
                   "incidents": "{type: int, min: 0}"}


@pytest.fixture(scope="module")
def monotone_scheme(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return load_scheme(write_scheme(tmp_path_factory.mktemp("mono"), MONOTONE, MONOTONE_FIELDS))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(done=st.decimals(min_value=0, max_value=2000, places=2),
       target=st.decimals(min_value="0.01", max_value=2000, places=2),
       rate=st.one_of(st.sampled_from([Decimal("0.8"), Decimal("0.8999"), Decimal("0.9"), Decimal("0.9499"),
                                       Decimal("0.95"), Decimal("0.98")]),
                      st.decimals(min_value=0, max_value=2, places=4)),
       n=st.integers(min_value=0, max_value=10), incidents=st.integers(min_value=0, max_value=5),
       which=st.sampled_from(["done", "rate", "n", "incidents"]),
       step=st.one_of(st.sampled_from([Decimal("0.0001"), Decimal("0.01"), Decimal("0.05")]),
                      st.decimals(min_value="0.0001", max_value=1, places=4)))
def test_improving_one_input_never_lowers_the_total(monotone_scheme,  # type: ignore[no-untyped-def]
                                                     done: Decimal, target: Decimal, rate: Decimal, n: int,
                                                     incidents: int, which: str, step: Decimal) -> None:
    base = {"done": done, "target": target, "rate": rate, "n": Decimal(n), "incidents": Decimal(incidents)}
    better = dict(base)
    if which == "done":
        better["done"] = done + (step * 100).quantize(Decimal("0.01"))
    elif which == "rate":
        better["rate"] = rate + step
    elif which == "n":
        better["n"] = Decimal(n + 1)
    else:
        better["incidents"] = Decimal(max(incidents - 1, 0))
    rows = [{k: str(v) for k, v in r.items()} for r in (base, better)]
    df = pl.DataFrame([{"unit_id": uid, "unit_type": "village", **r}
                       for uid, r in zip(("base", "better"), rows, strict=True)])
    units = prepare_units(df, monotone_scheme, path="units.csv")
    _, scored = evaluate(monotone_scheme, units.frame, path="units.csv")
    totals = by_unit(scored, "total")
    assert totals["better"] >= totals["base"]  # type: ignore[operator]
    for item in ("p", "b", "c", "st", "d"):  # and item by item
        got = by_unit(scored, f"i.{item}")
        assert got["better"] >= got["base"], item  # type: ignore[operator]


def test_monotone_example_by_hand(tmp_path: Path) -> None:
    df = score(tmp_path, MONOTONE, MONOTONE_FIELDS,
               {"done": ["90", "100"], "target": ["100", "100"], "rate": ["0.9499", "0.95"], "n": ["2", "3"],
                "incidents": ["1", "0"]})
    # base:   27 + 15 + 4 + (0.0001 short -> 0 whole steps) 10 + 7 = 63
    # better: 30 + 20 + 6 + 10 + 10 = 76
    assert dec(df, "total") == [D(63), D(76)]


def test_int64_fast_path_gives_the_same_scores_as_the_128_bit_path() -> None:
    """Known data ranges let products and quotients stay in Int64; the result must not change."""
    sys.path.insert(0, str(Path(__file__).parent / "benchmark"))
    from synth import generate  # type: ignore[import-not-found]  # noqa: PLC0415 - importable only after the sys.path insert above

    scheme = load_scheme(Path(__file__).parent / "benchmark" / "reference.yaml")
    units = prepare_units(generate(scheme, 2000), scheme, path="synthetic").frame
    cols = ["total"] + [c for c in units.columns if c.startswith("i.")]
    _, fast = build_plan(scheme, units.lazy(), ranges=field_ranges(scheme, units))
    _, wide = build_plan(scheme, units.lazy())
    assert "Int128" in wide.explain() and fast.explain().count("Int128") < wide.explain().count("Int128")
    assert fast.collect().select(cols).equals(wide.collect().select(cols))


def test_a_value_too_large_for_exact_arithmetic_is_an_error_not_a_wrapped_score(tmp_path: Path) -> None:
    body = """
    sections:
      - id: s
        items:
          - {id: x, points: 10, value: big * big * big, method: direct}
    """
    with pytest.raises(KaoheError, match="too large to score exactly"):
        score(tmp_path, body, {"big": "{type: decimal, scale: 4}"}, {"big": ["900000000"]})


def test_repeating_quotients_that_add_up_to_exactly_a_half_cent_round_up(tmp_path: Path) -> None:
    """Regression (1M-unit benchmark, 8 units): 8 x 0.80/0.85 + 5 x 90/120-style items whose exact sum is
    x.xx5 rounded down, because each quotient's 10-decimal floor is one unit short. Here 0.01 x 1/3 +
    0.01 x 1/6 = 0.005 exactly: half-up gives 0.01."""
    body = """
    sections:
      - id: s
        items:
          - {id: a, points: 0.01, value: one / three, method: {proportional: {cap: null}}}
          - {id: b, points: 0.01, value: one / six, method: {proportional: {cap: null}}}
    """
    fields = {"one": "{type: int}", "three": "{type: int}", "six": "{type: int}"}
    out = score(tmp_path, body, fields, {"one": ["1"], "three": ["3"], "six": ["6"]})
    assert dec(out, "s.s") == [D("0.01")]  # the floors alone: 0.0033333333 + 0.0016666666 = 0.0049999999 -> 0.00


def test_steps_over_a_repeating_ratio_count_a_whole_step_that_is_exactly_reached(tmp_path: Path) -> None:
    """(invest/target - 1) / 0.05 is exactly 1 for 1050/1000 but also for 315/300: 1.05 exactly -> one step."""
    body = """
    sections:
      - id: s
        items:
          - {id: a, points: 10, value: done / target, method: {steps: {step: 0.05, above: 1}}}
    """
    fields = {"done": "{type: int}", "target": "{type: int}"}
    out = score(tmp_path, body, fields, {"done": ["315", "314"], "target": ["300", "300"]})
    assert dec(out, "i.a") == [D(11), D(10)]  # 315/300 = 1.05: 10 + 1; 314/300 = 1.0466...: 10


@pytest.mark.parametrize(("rounding", "half", "whole"), [
    ("half_up", "0.01", "0.01"), ("half_even", "0.00", "0.01"), ("floor", "0.00", "0.01"),
    ("ceiling", "0.01", "0.01"), ("down", "0.00", "0.01"), ("up", "0.01", "0.01")])
def test_every_rounding_mode_sees_the_exact_sum_of_repeating_quotients(tmp_path: Path, rounding: str, half: str,
                                                                      whole: str) -> None:
    # half: 0.01 x 1/3 + 0.01 x 1/6 = 0.005 exactly (a tie: half_even goes to the even 0.00)
    # whole: 0.01 x 1/3 + 0.01 x 2/3 = 0.01 exactly (floors alone: 0.0099999999 -> floor would give 0.00)
    body = """
    sections:
      - id: s
        items:
          - {id: a, points: 0.01, value: one / three, method: {proportional: {cap: null}}}
          - {id: b, points: 0.01, value: other / six, method: {proportional: {cap: null}}}
    """
    fields = {"one": "{type: int}", "three": "{type: int}", "other": "{type: int}", "six": "{type: int}"}
    out = score(tmp_path, body, fields, {"one": ["1", "1"], "three": ["3", "3"], "other": ["1", "4"],
                                         "six": ["6", "6"]}, rounding=rounding)
    assert dec(out, "s.s") == [D(half), D(whole)]


def test_a_divisor_the_data_shows_nonzero_needs_no_guard_and_a_zero_one_still_gives_no_score(tmp_path: Path) -> None:
    """The zero guard of a quotient is left out when the data's range excludes 0: same points; where a 0
    is present the guard stays and the unit has no value (an error naming it), never a crash."""
    body = """
    sections:
      - id: s
        items:
          - {id: a, points: 10, value: done / target, method: proportional}
    """
    fields = {"done": "{type: int}", "target": "{type: int}"}
    out = score(tmp_path, body, fields, {"done": ["5", "3"], "target": ["10", "4"]})
    assert dec(out, "i.a") == [D(5), D("7.5")]
    with pytest.raises(KaoheError, match="u2"):
        score(tmp_path, body, fields, {"done": ["5", "3"], "target": ["10", "0"]})


def test_a_factor_whose_values_are_all_1_is_not_a_constant_1(tmp_path: Path) -> None:
    """x * 1 is shortened to x only for the literal 1: a field that is 1 in every row keeps its nulls."""
    body = """
    sections:
      - id: s
        items:
          - {id: a, points: 10, value: done * factor, method: direct, not_applicable: {points: zero}}
    """
    fields = {"done": "{type: int}", "factor": "{type: int, required: false}"}
    out = score(tmp_path, body, fields, {"done": ["5", "3"], "factor": ["1", None]})
    assert dec(out, "i.a") == [D(5), D(0)]  # u2: no factor -> not applicable (0), not 3


# --- cross-unit quotients, against exact rationals --------------------------------------------------

def _half_up(x: Fraction, places: int = 2) -> Decimal:
    """x rounded half-up (away from zero) at `places` decimals, exactly."""
    q = Fraction(10) ** places
    n = abs(x) * q
    whole = int(n) + (1 if n - int(n) >= Fraction(1, 2) else 0)
    return Decimal(whole if x >= 0 else -whole).scaleb(-places)


# values a third or a seventh of the way, bases ending in a half-cent and spans that make such fractions
# terminate: the cases where a repeating quotient adds up to exactly a half-cent (random draws rarely do)
HARD_XS = st.sampled_from([["0", "1", "3"], ["3", "2", "0"], ["0", "1", "2", "3", "6"], ["0", "1", "7"], ["5", "5"]])


@settings(max_examples=150, deadline=None)
@given(xs=st.one_of(HARD_XS.map(lambda xs: [Decimal(x) for x in xs]),
                    st.lists(st.decimals(min_value=0, max_value=100, places=2), min_size=1, max_size=6)),
       points=st.sampled_from([3, 7, 10, 30, 100]),
       base=st.one_of(st.sampled_from([Decimal("60.005"), Decimal("59.995"), Decimal("0.005")]),
                      st.decimals(min_value=0, max_value=80, places=3)),
       span=st.one_of(st.sampled_from([Decimal(30), Decimal(21), Decimal(60)]),
                      st.decimals(min_value=0, max_value=40, places=2)),
       order=st.sampled_from(["asc", "desc"]))
def test_cross_unit_quotients_round_as_the_exact_values_do(tmp_path_factory: pytest.TempPathFactory, xs: list[Decimal],
                                                           points: int, base: Decimal, span: Decimal,
                                                           order: str) -> None:
    """efficacy, share_of_leader and a linear rank divide by other units' values: their repeating quotients
    are floored at 10 decimals, and a section exactly on a half-cent must still round as the exact rational
    does (computed here with Fractions)."""
    efficacy = f"{{efficacy: {{base: {base}, span: {span}, order: {order}}}}}"
    body = f"""
    sections:
      - id: e
        items: [{{id: e, points: {points}, value: x, method: {efficacy}}}]
      - id: s
        items: [{{id: s, points: {points}, value: x + 1, method: share_of_leader}}]
      - id: r
        items: [{{id: r, value: x, method: {{rank: {{order: {order}, linear: [{base}, {span}]}}}}}}]
    """
    df = score(tmp_path_factory.mktemp("q"), body, {"x": "{type: decimal, scale: 2, min: 0}"},
               {"x": [str(x) for x in xs]})
    v = [Fraction(x) for x in xs]
    best, worst = (max(v), min(v)) if order == "desc" else (min(v), max(v))
    lead = max(v) + 1
    ranks = [1 + sum((y > x) if order == "desc" else (y < x) for y in v) for x in v]  # competition ranking
    first, last, n = Fraction(base), Fraction(span), len(v)
    for i, x in enumerate(v):
        frac = Fraction(1) if best == worst else (x - worst) / (best - worst)
        assert dec(df, "s.e")[i] == _half_up(points * (Fraction(base) + Fraction(span) * frac) / 100)
        assert dec(df, "s.s")[i] == _half_up(points * (x + 1) / lead)
        assert dec(df, "s.r")[i] == _half_up(first - (first - last) * (ranks[i] - 1) / max(n - 1, 1))


RATIO = st.one_of(st.sampled_from([Decimal(x) for x in ("0.8", "0.85", "0.9", "1.2", "0.3", "0.7", "3", "90", "120")]),
                  st.decimals(min_value="0.01", max_value=200, places=2))


@settings(max_examples=150, deadline=None)
# 8 x 0.8/0.85 + 5 x 3.1537/1.7 = 128/17 + 157.685/17 = 16.805 exactly, both quotients repeating
@example(rows=[(Decimal("0.8"), Decimal("0.85"), Decimal("3.1537"), Decimal("1.7"))], pa=8, pb=5)
@given(rows=st.lists(st.tuples(RATIO, RATIO, RATIO, RATIO), min_size=1, max_size=4),
       pa=st.sampled_from([8, 5, 3, 6, 20]), pb=st.sampled_from([5, 8, 7, 12]))
def test_proportional_sums_round_as_the_exact_values_do(tmp_path_factory: pytest.TempPathFactory,
                                                        rows: list[tuple[Decimal, ...]], pa: int, pb: int) -> None:
    """Two ratio items whose repeating quotients can add up to exactly a half-cent: the section rounds as
    the exact rational sum does."""
    body = f"""
    sections:
      - id: s
        items:
          - {{id: a, points: {pa}, value: a / b, method: proportional}}
          - {{id: c, points: {pb}, value: c / d, method: {{proportional: {{cap: null}}}}}}
    """
    fields = {k: "{type: decimal, scale: 4, min: 0.01}" for k in "abcd"}
    df = score(tmp_path_factory.mktemp("p"), body, fields,
               {k: [str(r[i]) for r in rows] for i, k in enumerate("abcd")})
    for i, (a, b, c, d) in enumerate(rows):
        exact = min(pa * Fraction(a) / Fraction(b), Fraction(pa)) + pb * Fraction(c) / Fraction(d)
        assert dec(df, "s.s")[i] == _half_up(exact)
