"""Decisions: vetoes by scope, grades with quotas, competition ranks, awards within quotas, levels,
ties at a quota boundary, and the properties a committee relies on (hypothesis)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from helpers import write_scheme
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.data import prepare_units
from engine.decide import decide
from engine.evaluate import evaluate
from engine.rules_load import load_decisions
from engine.rules_model import Quota
from engine.scheme import load_scheme

FIELDS = {"score": "{label: 得分, type: decimal, scale: 2, min: 0, max: 100}",
          "safe": "{label: 安全得分, type: decimal, scale: 2, min: 0, max: 100}",
          "deaths": "{label: 死亡人数, type: int, min: 0}",
          "polluted": "{label: 污染事件, type: bool}"}
SECTIONS = """
sections:
  - id: main
    label: 主体
    items:
      - {id: s, label: 得分, points: 100, value: score, method: direct}
  - id: safety
    label: 安全
    weight: 0
    items:
      - {id: f, label: 安全, points: 100, value: safe, method: direct}
"""


def decided(tmp_path: Path, rows: list[dict[str, object]], decisions: str) -> pl.DataFrame:
    body = SECTIONS.replace("weight: 0", "weight: 0.000001") + decisions
    path = write_scheme(tmp_path, body, FIELDS)
    scheme = load_scheme(path)
    cols = ["unit_id", "unit_type", *FIELDS]
    df = pl.DataFrame([{c: str(r.get(c, {"deaths": 0, "polluted": "false", "safe": 50,
                                          "unit_type": "village"}.get(c))).lower() for c in cols} for r in rows],
                      schema={c: pl.String for c in cols})
    units = prepare_units(df, scheme, path="units.csv")
    _, scored = evaluate(scheme, units.frame, path="units.csv")
    out, _ = decide(scheme, load_decisions(scheme), scored)
    return out.sort("unit_id")


GRADES = """
grades:
  - {id: excellent, label: 优秀, min: 90}
  - {id: good, label: 良好, min: 80}
  - {id: fail, label: 不合格}
"""


def col(df: pl.DataFrame, name: str) -> list[object]:
    return df.get_column(name).to_list()


@pytest.mark.parametrize(("n", "share", "rounding", "places"), [
    (7, "0.3", "floor", 2), (7, "0.3", "half_up", 2), (7, "0.3", "ceil", 3), (5, "0.3", "half_up", 2),
    (10, "0.3", "floor", 3), (3, "0.1", "floor", 0), (3, "0.1", "ceil", 1)])
def test_share_quotas_round_as_declared(n: int, share: str, rounding: str, places: int) -> None:
    # 30% of 7 = 2.1: floor 2, half-up 2, ceil 3; 30% of 5 = 1.5 -> half-up 2
    assert Quota(share=Decimal(share), rounding=rounding).size(n) == places  # type: ignore[arg-type]


def test_competition_ranks_share_the_better_place(tmp_path: Path) -> None:
    rows = [{"unit_id": f"u{i}", "score": s} for i, s in enumerate([95, 90, 90, 85])]
    df = decided(tmp_path, rows, GRADES)
    assert col(df, "rank") == [1, 2, 2, 4]  # 95, 90, 90, 85: competition ranking (1, 2, 2, 4)
    assert col(df, "order") == [1, 2, 3, 4]  # the strict order breaks the tie by unit_id


def test_ranks_within_unit_type_and_overall(tmp_path: Path) -> None:
    rows = [{"unit_id": "a", "score": 95}, {"unit_id": "b", "score": 90, "unit_type": "office"},
            {"unit_id": "c", "score": 92}]
    df = decided(tmp_path, rows, GRADES)
    assert col(df, "rank") == [1, 1, 2] and col(df, "rank_all") == [1, 3, 2]


def test_grade_boundaries_are_inclusive_by_default_and_exclusive_when_declared(tmp_path: Path) -> None:
    rows = [{"unit_id": "a", "score": 90}, {"unit_id": "b", "score": "89.99"}, {"unit_id": "c", "score": 80}]
    assert col(decided(tmp_path, rows, GRADES), "grade") == ["excellent", "good", "good"]
    strict = GRADES.replace("min: 90}", "min: 90, inclusive: false}")
    assert col(decided(tmp_path, rows, strict), "grade") == ["good", "good", "good"]


def test_a_grade_quota_passes_units_over_it_to_the_next_grade(tmp_path: Path) -> None:
    rows = [{"unit_id": f"u{i}", "score": 99 - i} for i in range(7)]  # all >= 90
    quota = GRADES.replace("min: 90}", "min: 90, quota: {share: 0.3, rounding: floor}}")
    df = decided(tmp_path, rows, quota)
    assert col(df, "grade") == ["excellent"] * 2 + ["good"] * 5  # 30% of 7, floor: 2


VETOES = GRADES + """
vetoes:
  - {id: fatal, label: 亡人事故, when: deaths > 0, grade: fail, blocks: all, rank: last}
  - {id: pollution, label: 环境污染, when: polluted, blocks: [eco]}
  - {id: kept, label: 保留名次, when: deaths > 5, grade: fail, blocks: all, rank: keep}
awards:
  - {id: top, label: 优秀单位, quota: {count: 2}}
  - {id: eco, label: 生态先进, quota: {count: 2}}
"""


def test_a_veto_forces_the_grade_blocks_all_awards_and_ranks_last(tmp_path: Path) -> None:
    rows = [{"unit_id": "a", "score": 99, "deaths": 1}, {"unit_id": "b", "score": 90}, {"unit_id": "c", "score": 80}]
    df = decided(tmp_path, rows, VETOES)
    a = df.row(0, named=True)
    assert (a["grade"], a["rank"], a["a.top"], a["a.eco"], a["xs.fatal"]) == ("fail", 3, "vetoed", "vetoed",
                                                                             "数据: deaths > 0")
    assert col(df, "a.top") == ["vetoed", "recommended", "recommended"]  # the place passes to the next unit


def test_a_veto_grade_is_the_best_a_vetoed_unit_gets_never_a_raise(tmp_path: Path) -> None:
    """不得评为优秀: `grade: good` caps a vetoed unit at good. It used to force the grade, so a vetoed unit of
    77.60 (合格 by its total) was raised to 良好 (a helper's scheme); and two vetoes give the worse grade."""
    grades = GRADES.replace("  - {id: fail", "  - {id: pass, label: 合格, min: 60}\n  - {id: fail")
    capped = grades + """
vetoes:
  - {id: no_top, label: 不得评优, when: polluted, grade: good, rank: keep}
  - {id: fatal, label: 亡人事故, when: deaths > 0, grade: fail, rank: keep}
"""
    rows = [{"unit_id": "a", "score": 95, "polluted": True}, {"unit_id": "b", "score": "77.60", "polluted": True},
            {"unit_id": "c", "score": 95, "polluted": True, "deaths": 1}, {"unit_id": "d", "score": 95}]
    df = decided(tmp_path, rows, capped)
    assert col(df, "grade") == ["good", "pass", "fail", "excellent"]
    assert col(df, "vetoed") == [True, True, True, False]


def test_a_named_veto_blocks_only_its_awards_and_keeps_the_grade(tmp_path: Path) -> None:
    rows = [{"unit_id": "a", "score": 99, "polluted": True}, {"unit_id": "b", "score": 90},
            {"unit_id": "c", "score": 80}]
    a = decided(tmp_path, rows, VETOES).row(0, named=True)
    assert (a["grade"], a["rank"], a["a.top"], a["a.eco"]) == ("excellent", 1, "recommended", "vetoed")


def test_a_veto_that_keeps_rank_keeps_its_position(tmp_path: Path) -> None:
    rows = [{"unit_id": "a", "score": 99, "deaths": 6}, {"unit_id": "b", "score": 90}]
    a = decided(tmp_path, rows, VETOES).row(0, named=True)
    # deaths 6 triggers both 'fatal' (rank last) and 'kept': one veto ranking last is enough
    assert a["rank"] == 2
    rows = [{"unit_id": "a", "score": 99, "deaths": 6}, {"unit_id": "b", "score": 90}]
    keep_only = VETOES.replace("when: deaths > 0", "when: deaths > 100")
    a = decided(tmp_path, rows, keep_only).row(0, named=True)
    assert (a["rank"], a["grade"], a["a.top"]) == (1, "fail", "vetoed")


TIES = GRADES + """
awards:
  - {id: t, label: 先进, rank_by: [total desc, unit_id asc], quota: {count: 2}, tie_at_boundary: POLICY}
"""


@pytest.mark.parametrize(("policy", "statuses"), [
    ("strict", ["recommended", "recommended", "outside_quota", "outside_quota"]),
    ("all_in", ["recommended", "recommended", "recommended", "outside_quota"]),
    ("flag", ["recommended", "tie_flag", "tie_flag", "outside_quota"]),
])
def test_a_tie_on_the_quota_boundary_follows_the_declared_policy(tmp_path: Path, policy: str,
                                                                  statuses: list[str]) -> None:
    rows = [{"unit_id": "a", "score": 95}, {"unit_id": "b", "score": 90}, {"unit_id": "c", "score": 90},
            {"unit_id": "d", "score": 80}]
    assert col(decided(tmp_path, rows, TIES.replace("POLICY", policy)), "a.t") == statuses


LEVELS = GRADES + """
awards:
  - id: prize
    label: 示范
    levels:
      - {id: first, label: 一等奖, count: 1, min_score: 95}
      - {id: second, label: 二等奖, count: 1, min_score: 85}
    pass_down: PASS
"""


@pytest.mark.parametrize(("pass_down", "levels"), [("true", [None, "二等奖", "二等奖"]),
                                                    ("false", [None, "二等奖", None])])
def test_levels_pass_an_unused_place_down_when_declared(tmp_path: Path, pass_down: str,
                                                        levels: list[str | None]) -> None:
    # nobody reaches 95: the first prize's place passes down (or not) to the second prize
    rows = [{"unit_id": "a", "score": 80}, {"unit_id": "b", "score": 94}, {"unit_id": "c", "score": 90}]
    df = decided(tmp_path, rows, LEVELS.replace("PASS", pass_down))
    assert col(df, "a.prize.level") == levels


def test_eligibility_reasons_record_how_far_each_condition_is(tmp_path: Path) -> None:
    body = GRADES + """
awards:
  - {id: s, label: 安全先进, eligible: section.safety >= 90 and deaths == 0, quota: {count: 5}}
"""
    df = decided(tmp_path, [{"unit_id": "a", "score": 80, "safe": "87.5"}], body)
    r = df.row(0, named=True)
    assert (r["a.s"], r["a.s.c0"], r["a.s.g0"], r["a.s.c1"]) == ("not_eligible", False, 250, True)  # 2.50 short


PROPS = GRADES + """
vetoes:
  - {id: fatal, label: 亡人事故, when: deaths > 0, grade: fail, blocks: all}
  - {id: pollution, label: 环境污染, when: polluted, blocks: [eco]}
awards:
  - {id: top, label: 优秀单位, quota: {share: 0.3, rounding: floor, per: unit_type}}
  - {id: eco, label: 生态先进, eligible: section.safety >= 60, quota: {count: 2}, tie_at_boundary: flag}
  - {id: best, label: 示范, min_score: 85, quota: {share: 0.5, rounding: half_up}}
"""
unit = st.fixed_dictionaries({
    "score": st.sampled_from(["95", "90", "90", "85", "84.99", "70"]) | st.integers(0, 100).map(str),
    "safe": st.sampled_from(["60", "59.99", "80"]), "deaths": st.sampled_from([0, 0, 0, 1]),
    "polluted": st.sampled_from([False, False, True]), "unit_type": st.sampled_from(["village", "office"])})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(units=st.lists(unit, min_size=1, max_size=12))
def test_quotas_are_never_exceeded_and_vetoed_units_never_get_blocked_awards(tmp_path: Path,
                                                                              units: list[dict[str, object]]) -> None:
    rows = [{**u, "unit_id": f"u{i:02d}"} for i, u in enumerate(units)]
    df = decided(tmp_path, rows, PROPS)
    # the quotas themselves: 30% of each type's units (floor), 2, half of all units (half up)
    body = SECTIONS.replace("weight: 0", "weight: 0.000001") + PROPS  # as `decided` writes it
    decisions = {a.id: a for a in load_decisions(load_scheme(write_scheme(tmp_path, body, FIELDS,
                                                                          name="props.yaml"))).awards}
    for t, n in df.group_by("unit_type").len().iter_rows():
        assert set(df.filter(pl.col("unit_type") == t)["a.top.quota"]) == {decisions["top"].quota.size(n)}
    assert set(df["a.eco.quota"]) == {2} and set(df["a.best.quota"]) == {decisions["best"].quota.size(df.height)}
    for a in ("top", "eco", "best"):
        got = df.filter(pl.col(f"a.{a}") == "recommended")
        per = ["unit_type"] if a == "top" else []
        sizes = got.group_by(per).len() if per else pl.DataFrame({"len": [got.height]})
        quota = df.group_by(per).agg(pl.col(f"a.{a}.quota").first()) if per else None
        if quota is not None:
            joined = sizes.join(quota, on="unit_type")
            assert (joined["len"] <= joined[f"a.{a}.quota"]).all()
        else:
            assert got.height <= df[f"a.{a}.quota"][0]
    fatal = df.filter(pl.col("x.fatal"))
    recommended = pl.any_horizontal(pl.col(f"a.{a}") == "recommended" for a in ("top", "eco", "best"))
    assert fatal.filter(recommended).height == 0
    assert (fatal["grade"] == "fail").all()
    assert df.filter(pl.col("x.pollution") & (pl.col("a.eco") == "recommended")).height == 0
    assert df.filter((pl.col("a.best") == "recommended") & (pl.col("total") < 8500)).height == 0


@pytest.mark.parametrize("types", [1, 3, 8, 12])
def test_a_per_type_aggregate_is_the_window_over_the_type(types: int) -> None:
    """engine.decide._per_type (a choice among whole-frame aggregates for few types, a window for many) gives
    each row its own type's aggregate, as `.over("_type")` does."""
    from engine.decide import _last_in, _per_type  # noqa: PLC0415 - the helper under test

    df = pl.DataFrame({"_type": [i % types for i in range(60)], "k": [(i * 37) % 101 for i in range(60)],
                       "sel": [i % 4 != 1 for i in range(60)]}, schema={"_type": pl.UInt32, "k": pl.Int64,
                                                                     "sel": pl.Boolean})
    for desc in (True, False):
        agg = _last_in(pl.col("k"), pl.col("sel"), desc)
        got = df.with_columns(_per_type(agg, types).alias("x")).get_column("x")
        want = df.select(agg(pl.lit(True)).over("_type").alias("x")).get_column("x")
        assert got.to_list() == want.to_list()


def test_ranks_within_types_are_alike_each_way_they_are_counted() -> None:
    """engine.decide._ranks_within_types: counts per type packed in one Int64, one count per type chosen by
    type code, and windows over the type give the same order and competition rank, ties and vetoed-last
    units included; so do award places (`_PerType.running`)."""
    from engine.decide import _PerType, _ranks_within_types  # noqa: PLC0415 - the helpers under test

    n = 300
    df = pl.DataFrame({"~_type": [(i * 7) % 6 for i in range(n)], "~_last": [i % 17 == 0 for i in range(n)],
                       "~k": [(i * 13) % 40 for i in range(n)], "~ok": [i % 3 != 0 for i in range(n)]},
                      schema={"~_type": pl.UInt32, "~_last": pl.Boolean, "~k": pl.Int64, "~ok": pl.Boolean})
    df = df.sort(["~_last", "~k"], descending=[False, True], maintain_order=True)  # an overall order
    ways = {"packed": _PerType(6, n), "chain": _PerType(6, 2**40), "window": _PerType(9, 2**40)}
    got = {}
    for way, per in ways.items():
        assert per.way == way
        got[way] = _ranks_within_types(df.lazy(), ["~_last", "~k"], per).with_columns(
            place=per.running(pl.col("~ok"), "~_type")).collect().select("~order", "~rank", "place")
    assert got["packed"].equals(got["window"]) and got["chain"].equals(got["window"])
    ranks = got["packed"].get_column("~rank")
    assert ranks.min() == 1 and ranks.n_unique() < n  # ties share a rank
    want = df.select(pl.col("~ok").cast(pl.Int32).cum_sum().over("~_type")).to_series()
    assert got["packed"].get_column("place").to_list() == want.to_list()


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(0, 4), st.booleans(), st.integers(0, 6), st.booleans()), min_size=1,
                     max_size=80))
def test_counts_per_type_are_alike_each_way_on_any_frame(rows: list[tuple[int, bool, int, bool]]) -> None:
    """engine.decide._PerType, property: on any frame in an overall order (ties, vetoed-last units, any mix
    of up to 5 types), packed counts, one count per type and windows give the same order, rank and places."""
    from engine.decide import _PerType, _ranks_within_types  # noqa: PLC0415 - the helpers under test

    df = pl.DataFrame(rows, schema={"~_type": pl.UInt32, "~_last": pl.Boolean, "~k": pl.Int64, "~ok": pl.Boolean},
                      orient="row").sort(["~_last", "~k"], descending=[False, True], maintain_order=True)
    got = []
    for per in (_PerType(5, df.height), _PerType(5, 2**40), _PerType(9, 2**40)):
        got.append(_ranks_within_types(df.lazy(), ["~_last", "~k"], per).with_columns(
            place=per.running(pl.col("~ok"), "~_type")).collect().select("~order", "~rank", "place"))
    assert [p.way for p in (_PerType(5, df.height), _PerType(5, 2**40), _PerType(9, 2**40))] == \
        ["packed", "chain", "window"]
    assert got[0].equals(got[2]) and got[1].equals(got[2])


@pytest.mark.parametrize("types", [3, 10])
def test_per_type_ranks_and_quotas_with_few_and_many_unit_types(tmp_path: Path, types: int) -> None:
    """Ranks and award places per unit type are computed without windows for up to 8 types and with windows
    beyond: both give each type its own ranking and its own quota (here 1 place per type)."""
    names = [f"t{k}" for k in range(types)]
    text = (f"scheme: {{id: t, label: 测试方案, year: 2022}}\nunit_types: {{{', '.join(f'{n}: {n}' for n in names)}}}\n"
            "fields:\n  score: {label: 得分, type: decimal, scale: 2, min: 0, max: 100}\n"
            "sections:\n  - {id: main, label: 主体, items: [{id: s, label: 得分, points: 100, value: score, "
            "method: direct}]}\n"
            "ranking: {by: [total desc, unit_id asc], per: unit_type}\n"
            "awards:\n  - {id: top, label: 先进, quota: {count: 1, per: unit_type}}\n")
    path = tmp_path / "scheme.yaml"
    path.write_text(text, encoding="utf-8")
    scheme = load_scheme(path)
    rows = [(f"u{k}{j}", names[k], str(50 + 10 * j + k)) for k in range(types) for j in range(3)]
    df = pl.DataFrame({"unit_id": [r[0] for r in rows], "unit_type": [r[1] for r in rows],
                       "score": [r[2] for r in rows]})
    units = prepare_units(df, scheme, path="units.csv")
    _, scored = evaluate(scheme, units.frame, path="units.csv")
    out, _ = decide(scheme, load_decisions(scheme), scored)
    out = out.sort("unit_id")
    assert col(out, "rank") == [3, 2, 1] * types  # within each type: 50+k, 60+k, 70+k
    assert col(out, "a.top") == ["outside_quota", "outside_quota", "recommended"] * types
    assert col(out, "a.top.pos") == [3, 2, 1] * types
    assert col(out, "rank_all")[2::3] == list(range(types, 0, -1))  # the best of each type, overall


def test_sort_keys_written_in_two_places_are_the_same_order() -> None:
    """An award whose rank_by repeats the ranking (another line of the file) is allocated in the overall
    order instead of an order of its own: keys compare by what they sort by, not where they are written."""
    from helpers import DEMO_SCHEME  # noqa: PLC0415

    from engine.decide import _keys_id  # noqa: PLC0415 - the helper under test

    dec = load_decisions(load_scheme(DEMO_SCHEME))
    awards = {a.id: a for a in dec.awards}
    assert awards["target_excellent"].rank_by != dec.ranking.by  # the dataclasses differ (file positions)
    assert _keys_id(awards["target_excellent"].rank_by) == _keys_id(dec.ranking.by)
    assert _keys_id(awards["safety_advanced"].rank_by) != _keys_id(dec.ranking.by)


def test_an_award_ranked_otherwise_breaks_its_ties_by_the_overall_order(tmp_path: Path) -> None:
    """An award ranked by its own keys (here the safety score alone) places units equal on them in the
    overall ranking's order (total desc, then unit id), whatever order the rows come in."""
    rows = [{"unit_id": "a", "score": 80, "safe": 70}, {"unit_id": "b", "score": 95, "safe": 70},
            {"unit_id": "c", "score": 90, "safe": 70}, {"unit_id": "d", "score": 85, "safe": 90}]
    awards = GRADES + """
ranking: {by: [total desc, unit_id asc]}
awards:
  - {id: safe, label: 安全先进, rank_by: [section.safety desc], quota: {count: 2}}
"""
    df = decided(tmp_path, rows, awards)
    assert col(df, "a.safe.pos") == [4, 2, 3, 1]  # d (90) first; then b (95), c (90), a (80) by total
    assert col(df, "a.safe") == ["outside_quota", "recommended", "outside_quota", "recommended"]
    reordered = decided(tmp_path, [rows[2], rows[0], rows[3], rows[1]], awards)
    assert col(reordered, "a.safe.pos") == [4, 2, 3, 1]


@pytest.mark.parametrize("nulls", [True, False])
@pytest.mark.parametrize("spans", [(10, 10, 10), (2**40, 2, 2**30), (2**61, 2**61, 5)])
def test_packed_permutation_is_the_multi_column_sort(spans: tuple[int, int, int], nulls: bool) -> None:
    """engine.sortkey.Packing: keys packed into one Int64 (all of them with the row number, sorted by value;
    a leading run; or none, as their ranges allow) order rows as Polars' stable multi-column sort does,
    nulls last, in both directions; a last key that rises with the rows (a sorted unique id) may be
    replaced by the row number."""
    from engine.sortkey import Packing  # noqa: PLC0415 - the helper under test

    n = 400
    steps = {"a": (7, 11), "b": (5, 3), "c": (13, 89)}  # distinct residues: equal a's differ on b and c
    cols = {name: [None if nulls and (i * (k + 3)) % 37 == 0 else
                   ((i // steps[name][1]) * steps[name][0]) % min(span, steps[name][1] + 5) * max(1, span // 97)
                   for i in range(n)]
            for k, (name, span) in enumerate(zip("abc", spans, strict=True))}
    df = pl.DataFrame({**cols, "id": [5 + 3 * i for i in range(n)]}, schema={c: pl.Int64 for c in "abc"} | {
        "id": pl.Int64})
    packing = Packing(df, [*"abc", "id"], rising=["id"])
    assert packing.rising == {"id"} and Packing(df.reverse(), ["id"], rising=["id"]).rising == set()
    for desc in ([False, False, False], [True, False, True], [False, True, False]):
        for keys in (list("abc"), ["a", "b", "id"]):
            got = df.select(packing.permutation(keys, desc)).to_series().to_list()
            want = (df.with_row_index("i").sort(keys, descending=desc, nulls_last=True, maintain_order=True)
                    .get_column("i").to_list())
            assert got == want, (keys, desc)


_COLUMN = st.tuples(st.integers(0, 62), st.booleans(), st.booleans())  # (value bits, nulls, descending)


@settings(max_examples=80, deadline=None)
@given(columns=st.lists(_COLUMN, min_size=1, max_size=3), n=st.integers(1, 70), seed=st.integers(0, 10**6),
       id_last=st.booleans())
def test_any_permutation_is_the_stable_multi_column_sort(columns: list[tuple[int, bool, bool]], n: int, seed: int,
                                                         id_last: bool) -> None:
    """engine.sortkey.Packing, property: whatever the keys' widths (a value sort with the row number, a packed
    leading run, or no packing), nulls and directions, and with a rising unique id as the last key, the
    permutation is the one Polars' stable multi-column sort gives."""
    import random  # noqa: PLC0415

    from engine.sortkey import Packing  # noqa: PLC0415 - the helper under test

    rnd = random.Random(seed)
    data: dict[str, list[int | None]] = {}
    for k, (bits, nulls, _) in enumerate(columns):
        top = (1 << bits) - 1
        pool = [rnd.randint(-top, top) for _ in range(4)]  # few distinct values: ties to break
        data[f"k{k}"] = [None if nulls and rnd.random() < 0.2 else rnd.choice(pool) for _ in range(n)]
    data["id"] = [3 * i + 1 for i in range(n)]
    df = pl.DataFrame(data, schema={c: pl.Int64 for c in data})
    keys = [*(f"k{k}" for k in range(len(columns))), *(["id"] if id_last else [])]
    desc = [d for _, _, d in columns] + ([False] if id_last else [])
    got = df.select(Packing(df, keys, rising=["id"]).permutation(keys, desc)).to_series().to_list()
    want = (df.with_row_index("i").sort(keys, descending=desc, nulls_last=True, maintain_order=True)
            .get_column("i").to_list())
    assert got == want


def test_an_award_ranked_by_text_breaks_its_ties_by_the_overall_order(tmp_path: Path) -> None:
    """Keys that cannot be packed into one integer (text) take the multi-column sort, with each unit's place
    in the overall order as the last key."""
    rows = [{"unit_id": "a", "score": 80}, {"unit_id": "b", "score": 95}, {"unit_id": "c", "score": 90}]
    awards = GRADES + """
ranking: {by: [total desc, unit_id asc]}
awards:
  - {id: t, label: 类型奖, rank_by: [unit_type asc], quota: {count: 1}}
"""
    df = decided(tmp_path, rows, awards)
    assert col(df, "a.t.pos") == [3, 1, 2]  # one unit type for all: the overall order decides
    assert col(df, "a.t") == ["outside_quota", "recommended", "outside_quota"]


def test_the_gap_to_the_last_unit_in_is_shown_at_its_key_scale(tmp_path: Path) -> None:
    """An award ranked by a rate (4 decimals) reports how far a unit is behind the last one in at 4 decimals;
    ranked by text, it reports no gap (and no error)."""
    from engine.pipeline import Inputs, run  # noqa: PLC0415
    from engine.report_cols import award_units  # noqa: PLC0415

    body = """
    sections:
      - {id: main, label: 主体, items: [{id: s, label: 得分, points: 100, value: score, method: direct}]}
    awards:
      - {id: rate, label: 整改先进, rank_by: [rate desc], quota: {count: 1}}
      - {id: kind, label: 类型奖, rank_by: [unit_type asc], quota: {count: 1}}
    """
    fields = {"score": "{label: 得分, type: decimal, scale: 2}", "rate": "{label: 整改率, type: decimal, scale: 4}"}
    scheme = write_scheme(tmp_path, body, fields)
    data = tmp_path / "units.csv"
    data.write_text("unit_id,unit_type,score,rate\nu1,village,90,0.9512\nu2,village,95,0.94\nu3,village,80,0.9512\n",
                    encoding="utf-8")
    r = run(Inputs(scheme, data), detail=False)
    assert r.awards["rate"].gap_scale == 4 and r.awards["kind"].gap_scale is None
    awards = {a.id: a for a in r.decisions.awards}

    def unit(award: str, uid: str) -> dict[str, Any]:
        return award_units(r, awards[award], ["zh"]).filter(pl.col("unit_id") == uid).row(0, named=True)

    assert unit("rate", "u2")["reason_zh"] == "符合条件, 排第 3 位, 名额 1; 整改率比末位入选单位低 0.0112"
    # a tie on the first key: "behind by 0" said nothing; the tie-break (here the overall order) placed it after
    tied = "符合条件, 排第 2 位, 名额 1; 整改率与末位入选单位相同, 按排序规则排在其后"
    assert unit("rate", "u3")["reason_zh"] == tied
    missed = unit("kind", "u1")  # the same type as the unit in: it is behind on the total, which has no gap here
    assert missed["a.kind"] == "outside_quota" and missed["a.kind.gap"] is None
    assert missed["reason_zh"] == "符合条件, 排第 2 位, 名额 1"


def test_each_run_gives_reasons_in_its_own_labels(tmp_path: Path) -> None:
    """Two runs in one process, the same section id under two labels: each run's reasons say its own."""
    from engine.pipeline import Inputs, run  # noqa: PLC0415
    from engine.report_cols import award_units  # noqa: PLC0415

    data = tmp_path / "units.csv"
    data.write_text("unit_id,unit_type,score,safe,deaths,polluted\na,village,80,87.5,0,否\n", encoding="utf-8")
    awards = "\nawards:\n  - {id: s, label: 安全先进, eligible: section.safety >= 90, quota: {count: 5}}\n"
    texts = []
    for label in ("安全", "平安"):
        body = SECTIONS.replace("weight: 0", "weight: 0.000001").replace("label: 安全\n", f"label: {label}\n")
        done = run(Inputs(write_scheme(tmp_path, body + GRADES + awards, FIELDS, name=f"{label}.yaml"), data))
        award = done.decisions.awards[0]
        texts.append(award_units(done, award, ["zh"]).filter(~pl.col("rec")).item(0, "reason_zh"))
    assert texts == ["未达条件: 安全 ≥ 90 (差 2.5)", "未达条件: 平安 ≥ 90 (差 2.5)"]


PROGRESS = GRADES + """
vetoes:
  - {id: fatal, label: 亡人事故, when: deaths > 0, grade: fail, blocks: [top], rank: last}
awards:
  - {id: top, label: 优秀单位, quota: {count: 1}}
  - id: progress
    label: 进位奖
    eligible: last_rank - rank >= 2
    rank_by: [last_rank - rank desc, total desc, unit_id]
    quota: {count: 1}
"""


def progress_decided(tmp_path: Path, scores: list[int], last: list[int | None], deaths: list[int]) -> pl.DataFrame:
    fields = {**FIELDS, "last_rank": "{label: 上年排名, type: int, min: 1, required: false}"}
    path = write_scheme(tmp_path, SECTIONS.replace("weight: 0", "weight: 0.000001") + PROGRESS, fields)
    scheme = load_scheme(path)
    n = len(scores)
    df = pl.DataFrame({"unit_id": [f"u{i}" for i in range(n)], "unit_type": ["village"] * n,
                       "score": [str(s) for s in scores], "safe": ["50"] * n, "deaths": [str(d) for d in deaths],
                       "polluted": ["否"] * n, "last_rank": [None if x is None else str(x) for x in last]})
    _, scored = evaluate(scheme, prepare_units(df, scheme, path="units.csv").frame, path="units.csv")
    return decide(scheme, load_decisions(scheme), scored)[0]


def test_an_award_for_places_gained_reads_this_years_rank(tmp_path: Path) -> None:
    """进位奖: places gained since last year (a field) against the rank decided this year, which is known
    before any award and after the vetoes (a vetoed unit ranked last has lost places)."""
    df = progress_decided(tmp_path, [95, 92, 90, 88, 85, 80, 99], [1, 5, 3, 7, 4, None, 9], [0, 0, 0, 0, 0, 0, 1])
    assert col(df, "rank") == [1, 2, 3, 4, 5, 6, 7]  # u6 scored best but is vetoed and ranked last
    gained = [None if x is None else x - r for x, r in zip([1, 5, 3, 7, 4, None, 9], col(df, "rank"), strict=True)]
    assert gained == [0, 3, 0, 3, -1, None, 2]
    # u1 and u3 gained 3 places (u1 first on total); u6 gained 2 but the veto blocks only 'top'
    assert col(df, "a.progress") == ["not_eligible", "recommended", "not_eligible", "outside_quota", "not_eligible",
                                     "not_eligible", "outside_quota"]
    assert col(df, "a.progress.pos") == [None, 1, None, 2, None, None, 3]
    assert col(df, "a.top") == ["recommended", *["outside_quota"] * 5, "vetoed"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(60, 100), st.one_of(st.none(), st.integers(1, 12)), st.integers(0, 1)),
                min_size=1, max_size=12))
def test_places_gained_are_counted_from_the_rank_column(tmp_path: Path, units: list[tuple[int, int | None, int]]
                                                        ) -> None:
    df = progress_decided(tmp_path, *map(list, zip(*units, strict=True)))  # type: ignore[arg-type]
    rows = df.select("unit_id", "rank", "total", "last_rank", "a.progress").rows()
    eligible = [(r[3] - r[1], r[2], r[0]) for r in rows if r[3] is not None and r[3] - r[1] >= 2]
    assert {r[0] for r in rows if r[4] != "not_eligible"} == {e[2] for e in eligible}
    if eligible:  # the one place goes to the most places gained, then the best total, then the id
        best = min(eligible, key=lambda e: (-e[0], -e[1], e[2]))
        assert [r[0] for r in rows if r[4] == "recommended"] == [best[2]]


def test_an_award_reads_how_many_of_a_unit_s_events_a_rule_applied_to(tmp_path: Path) -> None:
    """应急安全生产先进单位须全年未发生生产安全事故: `event.general_accident == 0` in an award's eligibility.
    It could not be written ('only section.X, item.X and pool.X may use a dot'): a count had to be copied
    into the units table by hand, beside the event log it came from."""
    from engine.pipeline import Inputs, run  # noqa: PLC0415
    from engine.report_cols import award_units  # noqa: PLC0415

    root = Path(__file__).resolve().parents[1]
    text = (root / "rules" / "township-2022.yaml").read_text(encoding="utf-8")
    scheme = tmp_path / "scheme.yaml"
    scheme.write_text(text.replace("eligible: section.safety >= 90 and hazards_fixed == hazards_found",
                                   "eligible: event.general_accident == 0 and section.safety >= 90 and "
                                   "hazards_fixed == hazards_found"), encoding="utf-8")
    units, log = root / "fixtures" / "2022" / "units.csv", root / "fixtures" / "2022" / "events.csv"
    events = pl.read_csv(log, infer_schema=False)
    accident = set(events.filter((pl.col("kind") == "生产安全事故") & (pl.col("deaths") == "0"))["unit_id"])
    r = run(Inputs(scheme, units, log))
    counts = dict(zip(r.frame["unit_id"], r.frame["ec.general_accident"], strict=True))
    assert {u for u, n in counts.items() if n} == accident and all(n in (0, 1) for n in counts.values())
    status = dict(zip(r.frame["unit_id"], r.frame["a.safety_advanced"].cast(pl.String), strict=True))
    assert all(status[u] in ("not_eligible", "vetoed", "not_applicable") for u in accident)
    award = next(a for a in r.decisions.awards if a.id == "safety_advanced")
    why = dict(award_units(r, award, ["zh"]).select("unit_id", "reason_zh").iter_rows())
    assert "一般生产安全事故次数 = 0 不满足" in why[sorted(accident & {u for u, s in status.items()
                                                               if s == "not_eligible"})[0]]
    without = run(Inputs(scheme, units, no_events=True))  # no log: nothing happened as far as the run knows
    assert without.frame["ec.general_accident"].to_list() == [0] * without.frame.height


def test_an_award_ordered_by_a_key_that_is_empty_for_every_unit_follows_the_ranking(tmp_path: Path) -> None:
    """`rank_by: [total / (total - total) desc]` (a division by zero: empty for every unit) raised Polars'
    'gather indices are out of bounds' (a fuzzing helper): the packed key of no ordering key was a literal,
    gathered into the overall order. Such a key orders nothing: the award follows the ranking."""
    rows = [{"unit_id": f"u{i}", "score": s} for i, s in enumerate([70, 95, 85, 90])]
    body = GRADES + """
awards:
  - {id: top, label: 优秀单位, quota: {count: 2}, rank_by: [total / (total - total) desc]}
"""
    df = decided(tmp_path, rows, body)
    assert col(df, "a.top") == ["outside_quota", "recommended", "outside_quota", "recommended"]
    assert col(df, "a.top.pos") == [4, 1, 3, 2]


COND_GRADES = """
grades:
  - {id: excellent, label: 优秀, min: 90, when: "not polluted and section.safety >= 60",
     quota: {count: 1}}
  - {id: good, label: 良好, min: 80, when: deaths == 0}
  - {id: fail, label: 不合格}
"""


def test_a_grade_condition_must_hold_beside_the_line(tmp_path: Path) -> None:
    """90分以上且全年未发生环境污染、安全得分60分以上的为优秀: a unit over the line whose condition fails gets
    the next grade whose line and condition it meets; an empty value the condition reads is not met. The
    quota counts only units that reach the grade by line and condition."""
    rows = [{"unit_id": "a", "score": 95, "safe": 70, "polluted": True},  # condition fails: good
            {"unit_id": "b", "score": 95, "safe": 70, "deaths": 2},       # excellent's holds; good's would not
            {"unit_id": "c", "score": 93, "safe": 70},                    # excellent, but b is first in the quota
            {"unit_id": "d", "score": 85, "deaths": 1},                   # good's condition fails: fail
            {"unit_id": "e", "score": 95, "safe": 59},                    # section.safety 59 < 60: good
            {"unit_id": "f", "score": 91, "safe": 70, "deaths": 1}]       # over the quota, good's fails: fail
    df = decided(tmp_path, rows, COND_GRADES)
    assert col(df, "grade") == ["good", "excellent", "good", "fail", "good", "fail"]
    assert col(df, "gw.excellent") == [False, True, True, False, False, True]
    assert col(df, "gw.good") == [True, False, True, False, True, False]


def test_a_grade_condition_is_checked(tmp_path: Path) -> None:
    from engine.errors import KaoheError  # noqa: PLC0415

    def problems(grades: str) -> str:
        path = write_scheme(tmp_path, SECTIONS.replace("weight: 0", "weight: 0.000001") + grades, FIELDS)
        with pytest.raises(KaoheError) as e:
            load_decisions(load_scheme(path))
        return str(e.value)

    reads_itself = COND_GRADES.replace("when: deaths == 0", 'when: grade != "fail"')
    assert "grade good's 'when' reads the grade it decides" in problems(reads_itself)
    last = COND_GRADES.replace("{id: fail, label: 不合格}", "{id: fail, label: 不合格, when: deaths > 0}")
    assert "the last grade takes no 'when'" in problems(last)
    assert "[grade good] unknown field 'deathz' (did you mean 'deaths'?)" in \
        problems(COND_GRADES.replace("deaths == 0", "deathz == 0"))


def test_explain_says_which_condition_kept_a_unit_from_a_grade_and_gap_solves_through_it(tmp_path: Path) -> None:
    """explain's grade line names the condition a unit over a grade's line does not meet (or cannot be
    decided for an empty value); the gap solver reads the grades' conditions as decide does: a unit over the
    line whose condition fails needs the condition's field, not more points."""
    from engine.gap import solve  # noqa: PLC0415
    from engine.pipeline import Inputs, load, run, score  # noqa: PLC0415
    from engine.report import explain  # noqa: PLC0415

    body = SECTIONS.replace("weight: 0", "weight: 0.000001") + """
grades:
  - {id: excellent, label: 优秀, min: 90, when: safe_checks >= 2, quota: {count: 1}}
  - {id: good, label: 良好, min: 80, when: deaths == 0}
  - {id: fail, label: 不合格}
"""
    fields = {**FIELDS, "safe_checks": "{label: 安全检查次数, type: int, min: 0, required: false}"}
    scheme = write_scheme(tmp_path, body, fields)
    data = tmp_path / "units.csv"
    data.write_text("unit_id,unit_type,score,safe,deaths,polluted,safe_checks\n"
                    "a,village,95,70,0,否,1\nb,village,85,70,1,否,3\nc,village,96,70,0,否,\n", encoding="utf-8")
    r = run(Inputs(scheme, data))
    rows = {u["unit_id"]: u for u in r.frame.iter_rows(named=True)}
    assert [rows[u]["grade"] for u in "abc"] == ["good", "fail", "good"]
    more = tmp_path / "more.csv"  # over 优秀's quota, and 良好's condition fails too: both are said
    more.write_text(data.read_text(encoding="utf-8") + "d,village,97,70,0,否,3\ne,village,93,70,1,否,3\n",
                    encoding="utf-8")
    r2 = run(Inputs(scheme, more))
    e = next(u for u in r2.frame.iter_rows(named=True) if u["unit_id"] == "e")
    assert e["grade"] == "fail"
    line = explain(r2, e, "zh").splitlines()[-1]
    assert line.startswith("等级 不合格: 总分达到优秀分数线 90, 但优秀名额 1 个已按排名 (") and \
        line.endswith("分完; 良好的条件 死亡人数 = 0 不满足"), line
    said = {u: explain(r, rows[u], "zh").splitlines()[-1] for u in "abc"}
    assert said["a"] == "等级 良好: 总分达到优秀分数线 90, 但优秀的条件 安全检查次数 ≥ 2 不满足; 总分 95.00 ≥ 80", said
    assert said["b"] == "等级 不合格: 总分达到良好分数线 80, 但良好的条件 死亡人数 = 0 不满足", said
    assert "优秀的条件 安全检查次数 ≥ 2 无法判断 (安全检查次数为空)" in said["c"]
    assert "but excellent's condition safe_checks >= 2 is not met" in explain(r, rows["a"], "en").splitlines()[-1]
    ld = load(Inputs(scheme, data))
    changes = {(c.unit_id, c.target): c for c in solve(ld, score(ld)) if c.status == "solved"}
    up = changes[("a", "grade:excellent")]
    assert (up.field, up.after) == ("safe_checks", "2")


def test_a_veto_cap_meets_the_capped_grades_condition_too(tmp_path: Path) -> None:
    """The second audit: a veto 'at best 良好' gave 良好 to a unit that failed 良好's own condition (红星村:
    polluted and 安全生产 below it). A capped unit gets the cap's grade only if it meets its condition, else
    the next grade whose condition it meets."""
    grades = """
grades:
  - {id: excellent, label: 优秀, min: 90}
  - {id: good, label: 良好, min: 80, when: section.safety >= 60}
  - {id: pass, label: 合格, min: 60}
  - {id: fail, label: 不合格}
vetoes:
  - {id: no_top, label: 不得评优, when: polluted, grade: good, rank: keep}
"""
    rows = [{"unit_id": "a", "score": 95, "polluted": True, "safe": 50},   # capped at good, fails good's: pass
            {"unit_id": "b", "score": 95, "polluted": True, "safe": 70},   # capped at good, meets it: good
            {"unit_id": "c", "score": 95, "safe": 50}]                      # no veto: excellent
    assert col(decided(tmp_path, rows, grades), "grade") == ["pass", "good", "excellent"]


def test_gap_holds_a_vetoed_unit_to_its_cap_for_an_award_that_reads_the_grade(tmp_path: Path) -> None:
    """The second audit: for a unit capped at 良好 by a veto, gap suggested a change to reach an award that
    needs 优秀 (+285.23万元 for 目标责任考核优秀单位); applied, the unit stayed 良好 and was not recommended.
    Candidates are now held to the unit's veto caps: no single change reaches it; an uncapped unit's does."""
    from engine.gap import solve  # noqa: PLC0415
    from engine.pipeline import Inputs, load, score  # noqa: PLC0415

    body = SECTIONS.replace("weight: 0", "weight: 0.000001") + GRADES + """
vetoes:
  - {id: no_top, label: 不得评优, when: polluted, grade: good, blocks: none, rank: keep}
awards:
  - {id: top, label: 优秀单位, eligible: grade == "excellent", quota: {count: 5}}
"""
    scheme = write_scheme(tmp_path, body, FIELDS)
    data = tmp_path / "units.csv"
    data.write_text("unit_id,unit_type,score,safe,deaths,polluted\na,village,85,70,0,是\nb,village,85,70,0,否\n",
                    encoding="utf-8")
    ld = load(Inputs(scheme, data))
    changes = {(c.unit_id, c.target): c for c in solve(ld, score(ld))}
    assert changes[("a", "award:top")].status == "no_single_change"
    assert changes[("a", "grade:excellent")].status == "vetoed"
    b = changes[("b", "award:top")]
    assert (b.status, b.field, b.after) == ("solved", "score", "90")


def test_an_unknown_section_is_suggested_by_its_id_and_a_label_is_said_to_be_one(tmp_path: Path) -> None:
    """The second audit: `section.安全生产` got '(did you mean section.style?)': the shared 'section.' made any
    id look close. Ids are compared without it; a label written for an id is said to be one."""
    from engine.errors import KaoheError  # noqa: PLC0415

    body = SECTIONS.replace("weight: 0", "weight: 0.000001") + GRADES + """
awards:
  - {id: a, label: 甲, eligible: section.安全 >= 60, quota: {count: 1}}
  - {id: b, label: 乙, eligible: section.safty >= 60, quota: {count: 1}}
"""
    with pytest.raises(KaoheError) as e:
        load_decisions(load_scheme(write_scheme(tmp_path, body, FIELDS)))
    said = [p.message + "; " + p.hint for p in e.value.problems]
    assert said == ["unknown section '安全'; write the section's id, not its label",
                    "unknown section 'safty' (did you mean 'section.safety'?); "]


def test_gap_orders_changes_of_a_yes_no_lever_without_a_traceback(tmp_path: Path) -> None:
    """The fuzzing helper: a grade condition on a yes/no field made it a lever, and ordering the suggestions
    took Decimal('否'): a traceback. A change without a size orders as 1."""
    from engine.gap import Change, relative  # noqa: PLC0415

    assert relative(Change("a", "grade:excellent", "solved", "polluted", "是", "否", "")) == 1
    assert relative(Change("a", "grade:excellent", "solved", "score", "80", "90", "+10")) == Decimal("0.125")
