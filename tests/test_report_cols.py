"""Report text made for all units at once (engine.report_cols) says what the per-value definitions say."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from helpers import write_scheme
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import Notice
from engine.fmt import dec, fixed_str, plain
from engine.io import neutralise
from engine.report import csv_body
from engine.report_cols import fixed_text, plain_text

# one section of one item scoring the field `score`, two grades: the awards below are what the tests vary
MAIN = """
sections:
  - {id: main, label: 主体, items: [{id: s, label: 得分, points: 100, value: score, method: direct}]}
grades:
  - {id: excellent, label: 优秀, min: 90}
  - {id: fail, label: 不合格}
"""
SCORE = "{label: 得分, type: decimal, scale: 2, min: 0, max: 100}"

VALUES = st.lists(st.one_of(st.none(), st.integers(-(10**15), 10**15), st.integers(-20_000, 20_000)),
                  min_size=1, max_size=40)


@settings(max_examples=300, deadline=None)
@given(VALUES, st.integers(0, 10), st.one_of(st.none(), st.integers(0, 12)))
def test_fixed_text_is_fixed_str(values: list[int | None], scale: int, places: int | None) -> None:
    """Padding, half-up rounding away from zero, a negative value rounded to zero ('-0.00'), null as '—'."""
    got = pl.DataFrame({"v": values}, schema={"v": pl.Int64}).select(fixed_text(pl.col("v"), scale, places))
    assert got.to_series().to_list() == [fixed_str(v, scale, places) for v in values]


@settings(max_examples=200, deadline=None)
@given(VALUES, st.integers(0, 10))
def test_plain_text_is_plain(values: list[int | None], scale: int) -> None:
    got = pl.DataFrame({"v": values}, schema={"v": pl.Int64}).select(plain_text(pl.col("v"), scale))
    assert got.to_series().to_list() == [plain(d) if (d := dec(v, scale)) is not None else "—" for v in values]


CELLS = st.one_of(st.none(), st.text(alphabet=st.sampled_from(list(' ,"\r\n\t=+-@.%0123456789aZ名额;\'')), max_size=8))


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 4).flatmap(lambda n: st.lists(st.lists(CELLS, min_size=n, max_size=n), min_size=1, max_size=12)))
def test_csv_body_is_what_the_csv_module_writes(rows: list[list[str | None]]) -> None:
    """Quoting (separators, quotes, CR, LF), empty and missing cells, formula-like text neutralised: the same
    bytes as Python's csv writer over neutralised cells."""
    n = len(rows[0])
    frame = pl.DataFrame(rows, schema={f"c{i}": pl.String for i in range(n)}, orient="row")
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows([[neutralise(c) if c is not None else None for c in r]
                                                      for r in rows])
    assert csv_body(frame).decode("utf-8") == buf.getvalue()


def test_failed_conditions_most_points_short_first(tmp_path: Path) -> None:
    """A unit failing several conditions: one that is no number comparison first, then by how far short,
    whatever each one's scale (0.03 at two decimals ties 0.0300 at four); ties keep the conditions' order."""
    from engine.pipeline import Inputs, run  # noqa: PLC0415
    from engine.report_cols import award_units  # noqa: PLC0415

    fields = {"score": SCORE, "rate": "{label: 整改率, type: decimal, scale: 4, min: 0, max: 1}",
              "done": "{label: 完成, type: bool}"}
    body = MAIN + """awards:
  - id: model
    label: 示范单位
    eligible: rate >= 0.97 and done and score >= 90 and score >= 87.53 and rate >= 0.9505
    quota: {count: 1}
"""
    data = tmp_path / "units.csv"
    data.write_text("unit_id,unit_type,score,rate,done\nu1,village,87.5,0.94,否\nu2,village,95,0.99,是\n",
                    encoding="utf-8")
    r = run(Inputs(write_scheme(tmp_path, body, fields), data))
    units = award_units(r, r.decisions.awards[0], ["zh", "en"])
    u1 = units.filter(pl.col("unit_id") == "u1").row(0, named=True)
    assert u1["a.model"] == "not_eligible"
    assert u1["reason_zh"] == ("未达条件: 完成 不满足; 得分 ≥ 90 (差 2.5); 整改率 ≥ 0.97 (差 0.03); "
                               "得分 ≥ 87.53 (差 0.03); 整改率 ≥ 0.9505 (差 0.0105)")
    assert u1["reason_en"] == ("not met: done; score >= 90 (short by 2.5); rate >= 0.97 (short by 0.03); "
                               "score >= 87.53 (short by 0.03); rate >= 0.9505 (short by 0.0105)")


def test_the_json_document_reads_back_as_the_run(tmp_path: Path) -> None:
    """Every unit once, with its exact total (the double nearest the decimal) and sections; an empty object
    for a scheme without pools; text with quotes, backslashes and line breaks intact; each award's lists in
    the committee's order with the reasons of `award_units`."""
    from engine.awards_report import awards_document  # noqa: PLC0415
    from engine.pipeline import Inputs, run  # noqa: PLC0415
    from engine.report_cols import award_units  # noqa: PLC0415

    body = MAIN + "awards:\n  - {id: top, label: 先进, eligible: score >= 80, quota: {count: 1}}\n"
    data = tmp_path / "units.csv"
    data.write_text('unit_id,name,unit_type,score\nu1,"甲""村\\ ""","village",89.54\nu2,"乙\n村",village,95.39\n'
                    "u3,丙,village,70.1\n", encoding="utf-8")
    r = run(Inputs(write_scheme(tmp_path, body, {"score": SCORE}), data), detail=False)
    doc = awards_document(r)
    units = {u["unit_id"]: u for u in doc["units"]}
    assert [u["unit_id"] for u in doc["units"]] == ["u2", "u1", "u3"]  # by type, then order
    assert units["u1"]["name"] == '甲"村\\ "' and units["u2"]["name"] == "乙\n村"
    assert units["u1"]["total"] == 89.54 and units["u2"]["sections"] == {"main": 95.39} and units["u3"]["pools"] == {}
    (award,) = doc["awards"]
    assert [x["unit_id"] for x in award["recommended"]] == ["u2"] and award["quota"] == 1
    expected = award_units(r, r.decisions.awards[0], ["zh", "en"]).filter(~pl.col("rec"))
    assert [(x["unit_id"], x["reason"], x["reason_en"]) for x in award["not_selected"]] == \
        expected.select("unit_id", "reason_zh", "reason_en").rows()


def test_find_unit_by_id_then_by_a_name_only_one_unit_has(tmp_path: Path) -> None:
    """A unit is found by its id, else by its name. A name several units share is said with their ids (the
    first of them was shown), and a name equal to another unit's id does not hide that unit. A unit with
    no name is called by its id."""
    from engine.pipeline import Inputs, run  # noqa: PLC0415
    from engine.report import SharedName, find_unit  # noqa: PLC0415

    data = tmp_path / "units.csv"
    data.write_text("unit_id,name,unit_type,score\nu1,甲,village,80\nu2,乙,village,90\nu3,甲,village,70\n"
                    "u4,u2,village,60\nu5,,village,50\n", encoding="utf-8")
    with pytest.warns(Notice, match=r"units of different ids share a name: 甲: u1 \(row 2\), u3 \(row 4\)"):
        r = run(Inputs(write_scheme(tmp_path, MAIN, {"score": SCORE}), data))
    found = {u: find_unit(r, u) for u in ("u3", "乙", " 乙 ", "u2", "u5", "无")}
    assert found["u3"] is not None and found["u3"]["name"] == "甲" and "i.s" in found["u3"]
    assert found["乙"] is not None and found["乙"]["unit_id"] == "u2" and found["乙"]["total"] == 9000
    assert found[" 乙 "] == found["乙"] and found["无"] is None
    assert found["u2"] is not None and found["u2"]["name"] == "乙"  # the id, not unit u4 named 'u2'
    assert found["u5"] is not None and found["u5"]["name"] == "u5"
    with pytest.raises(SharedName) as info:
        find_unit(r, "甲")
    assert info.value.ids == ["u1", "u3"]


def test_a_csv_table_written_in_slices_is_the_same_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A large table's CSV body is written a slice of rows at a time (bounded memory): the same bytes as in
    one piece, the header once."""
    import engine.report as report  # noqa: PLC0415 - the slice size under test

    frame = pl.DataFrame({"c0": ["x", "", None, "=1", "b,c", 'q"t', "7"], "c1": [str(i) for i in range(7)]})

    def whole() -> bytes:
        return b"".join(p if isinstance(p, bytes) else p.encode() for p in report.rendered(["名", "值"], frame, "csv"))

    one = whole()
    monkeypatch.setattr(report, "CSV_ROWS", 3)
    assert whole() == one and one.count("名".encode()) == 1
    assert one.decode() == report.render(["名", "值"], [list(r) for r in frame.rows()], "csv")


TEXT = st.lists(st.sampled_from(["a", "Z", "7", ".", "-", " ", "|", "单", "位", "村", "\u3000", "\u00a0", "\u0301",
                                 "Ａ", "한", "😀", "\u200b"]), max_size=8).map("".join)


def _tabulated(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make every frame take the Polars layout (`FAST_ROWS` 0) with one row checked against tabulate; the
    returned list records how many rows each tabulate call laid out."""
    from engine import report  # noqa: PLC0415

    monkeypatch.setattr(report, "FAST_ROWS", 0)
    monkeypatch.setattr(report, "_CHECKED_ROWS", 1)
    calls: list[int] = []
    real = report.tabulate
    monkeypatch.setattr(report, "tabulate", lambda rows, **k: (calls.append(len(rows)), real(rows, **k))[1])
    return calls


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 4).flatmap(lambda n: st.tuples(st.lists(TEXT, min_size=n, max_size=n),
                                                     st.lists(st.lists(TEXT, min_size=n, max_size=n),
                                                              min_size=1, max_size=15))),
       st.sampled_from(["table", "markdown"]))
def test_a_large_table_laid_out_by_polars_is_tabulates(table: tuple[list[str], list[list[str]]], fmt: str) -> None:
    """CJK (two columns wide), combining and zero-width characters, emoji, wide and non-breaking spaces
    (trailing ones are stripped, as tabulate strips a line): tabulate lays out only the headers, the widest
    cells and one row; Polars pads the rest, and the table is tabulate's own."""
    from tabulate import tabulate  # noqa: PLC0415

    from engine.report import _layout, text_table  # noqa: PLC0415

    with pytest.MonkeyPatch.context() as mp:
        calls = _tabulated(mp)
        headers, rows = table
        frame = pl.DataFrame(rows, schema=[f"c{i}" for i in range(len(headers))], orient="row")
        got = text_table(headers, frame, fmt)
    assert calls == [2]  # the widest cells and the one row checked: no fallback to tabulate for the whole table
    assert got == tabulate(rows, headers=headers, **_layout(fmt))


@pytest.mark.parametrize("odd", ["a\nb", "\x1b[31mred\x1b[0m", "tab\there", None])
def test_a_large_table_with_a_line_break_escape_or_missing_cell_is_tabulates(odd: str | None,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Cells tabulate treats specially (several lines, colour codes) or a missing cell: tabulate lays out
    the whole table."""
    from tabulate import tabulate  # noqa: PLC0415

    from engine.report import _layout, text_table  # noqa: PLC0415

    calls = _tabulated(monkeypatch)
    rows = [["1", "单位一", "x"], ["2", odd, "y"], ["3", "村", ""]]
    got = text_table(["排名", "单位", "备注"], pl.DataFrame(rows, schema=["a", "b", "c"], orient="row"), "table")
    assert calls == [3]
    assert got == tabulate(rows, headers=["排名", "单位", "备注"], **_layout("table"))


def test_the_score_table_and_awards_text_in_slices_are_tabulates_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo township's score table and awards text laid out by Polars (every frame, however small) and
    made 4 rows at a time are the text tabulate lays out whole; so is `rendered`'s, piece by piece."""
    from engine import report  # noqa: PLC0415
    from engine.awards_report import awards_text, awards_text_pieces  # noqa: PLC0415
    from engine.pipeline import demo_inputs, run  # noqa: PLC0415

    r = run(demo_inputs())
    headers, rows = report.score_table(r, "zh")
    whole = report.render(headers, rows, "table", title="T"), awards_text(r, "zh")
    calls = _tabulated(monkeypatch)
    monkeypatch.setattr(report, "TEXT_ROWS", 4)
    pieces = list(report.rendered(headers, rows, "table", title="T"))
    assert len(pieces) > 5 and "".join(str(p) for p in pieces) == whole[0]
    assert len(list(awards_text_pieces(r, "zh"))) > 10 and awards_text(r, "zh") == whole[1]
    assert max(calls) == 2  # tabulate laid out only the widest cells and one row of each table: no fallback


@settings(max_examples=300, deadline=None)
@given(VALUES, st.integers(0, 12), st.integers(0, 10))
def test_points_text_is_points_str(values: list[int | None], scale: int, places: int) -> None:
    """Exact when short, else '≈' and rounded half-up away from zero ('≈-0.0001', '≈0' for a tiny negative);
    null as '—'."""
    from engine.fmt import points_str  # noqa: PLC0415
    from engine.report_cols import points_text  # noqa: PLC0415

    got = pl.DataFrame({"v": values}, schema={"v": pl.Int64}).select(points_text(pl.col("v"), scale, places))
    assert got.to_series().to_list() == [points_str(v, scale, places) for v in values]


def _findings_by_python(run: Any) -> pl.DataFrame:
    """The findings frame as explain words one unit's items (the per-value definition)."""
    from engine.evaluate import ITEM_SCALE  # noqa: PLC0415
    from engine.explain import reason, value_str  # noqa: PLC0415
    from engine.fmt import points_str  # noqa: PLC0415

    items, rows = run.scheme.all_items(), []
    for r in run.frame.iter_rows(named=True):
        for it in items:
            pts = r.get(f"i.{it.id}")
            if pts is None:
                continue
            vs = run.plan.value_scale.get(it.id, 0)
            rows.append([str(r["unit_id"]), r["name"], it.parent, it.id, it.label, value_str(r.get(f"v.{it.id}"), vs),
                         points_str(pts, ITEM_SCALE, 10), str(it.points) if it.points is not None else "",
                         reason(it, r.get(f"v.{it.id}"), vs, pts, ITEM_SCALE, "zh", bool(r.get(f"n.{it.id}"))),
                         f"{it.loc.file}:{it.loc.line}"])
    return pl.DataFrame(rows, schema={k: pl.String for k in ("unit_id", "name", "section", "item", "label", "value",
                                                             "points", "max", "reason", "rule")}, orient="row")


@pytest.mark.parametrize("case", ["township", "cadres", "demo-synthetic", "reference-synthetic"])
def test_the_workbook_findings_are_explains_words(case: str, tmp_path: Path) -> None:
    """Every unit x item row of the committee workbook's findings sheet, made as columns, is what explain
    says for that unit and item: bands, thresholds, proportional with and without the cap, deductions,
    counts, steps, lookups, window methods, not-applicable items, missing values, points rounded with '≈'."""
    import sys  # noqa: PLC0415

    from engine.pipeline import Inputs, demo_inputs, run  # noqa: PLC0415
    from engine.scheme import load_scheme  # noqa: PLC0415
    from engine.workbook import findings  # noqa: PLC0415

    root = Path(__file__).resolve().parents[1]
    if case in ("township", "cadres"):
        inputs = demo_inputs("township-2022.yaml" if case == "township" else "cadres-2022.yaml")
    else:
        scheme = root / ("rules/township-2022.yaml" if case == "demo-synthetic" else "tests/benchmark/reference.yaml")
        sys.path.insert(0, str(root / "tests" / "benchmark"))
        from synth import generate  # type: ignore[import-not-found]  # noqa: PLC0415

        inputs = Inputs(scheme, tmp_path / "units.parquet", no_events=True)
        generate(load_scheme(scheme), 300).write_parquet(inputs.data)
    r = run(inputs)
    made = findings(r)
    assert made.height > 300 and made.get_column("reason").str.contains("→|=").any()
    assert made.equals(_findings_by_python(r))


def test_a_condition_an_empty_value_leaves_unknown_is_said_so_in_the_reason(tmp_path: Path) -> None:
    """An empty optional value leaves a condition unknown, which is not met; the reason used to read as if the
    value failed it ("…≥ 3 不满足"). It now names the empty fields; a unit whose value is there keeps the
    distance to the threshold."""
    from engine.pipeline import Inputs, run  # noqa: PLC0415
    from engine.report_cols import award_units  # noqa: PLC0415

    root = Path(__file__).resolve().parents[1]
    units = pl.read_csv(root / "fixtures" / "2022" / "units.csv", infer_schema=False).with_columns(
        pl.when(pl.col("unit_id") == "V07").then(None).otherwise(pl.col("last_rank")).alias("last_rank"))
    units.write_csv(tmp_path / "units.csv")
    r = run(Inputs(root / "rules" / "township-2022.yaml", tmp_path / "units.csv", root / "fixtures" / "2022" /
                   "events.csv"))
    award = next(a for a in r.decisions.awards if a.id == "progress")
    reasons = {u: (zh, en) for u, zh, en in award_units(r, award, ["zh", "en"])
               .select("unit_id", "reason_zh", "reason_en").iter_rows()}
    assert reasons["V07"] == ("未达条件: 上年度村排名 - 排名 ≥ 3 无法判断 (上年度村排名 为空)",
                              "not met: last_rank - rank >= 3 unknown (last_rank empty)")
    assert reasons["V01"][0].startswith("未达条件: 上年度村排名 - 排名 ≥ 3 (差 ")
    assert "last_rank" not in award_units(r, award, ["zh"]).columns  # read for the reasons, not shown


def test_explanations_show_the_arithmetic_as_it_went_at_caps_floors_and_within_types(tmp_path: Path) -> None:
    """'2 × 3 = 4 (上限 4)' and '10 − 0.2 × 60 = 0' were false sums (helpers' audits); a rank within the unit
    type said '按全体单位比较'. Each now says what was capped or floored, and the committee workbook's column-made
    words are explain's."""
    from engine.pipeline import Inputs, run  # noqa: PLC0415
    from engine.report import explain  # noqa: PLC0415
    from engine.workbook import findings  # noqa: PLC0415

    fields = {"n": "{label: 次数, type: int, min: 0}", "r": "{label: 完成率, type: decimal, scale: 2, min: 0}"}
    body = """
sections:
  - id: s
    items:
      - {id: cnt, label: 加分, value: n, method: {count: {each: 2}}, points: 4}
      - {id: ded, label: 扣分, value: n, method: {deduct: {each: 0.2}}, points: 10}
      - {id: ded2, label: 限扣, value: n, method: {deduct: {each: 3, max: 20, base: 10}}, points: 10}
      - {id: pro, label: 比例, value: r, method: {proportional: {floor: 0.9}}, points: 1}
      - {id: rk, label: 排名, value: r, method: {rank: {linear: [10, 5], within: [unit_type]}}, points: 10}
"""
    data = tmp_path / "units.csv"
    data.write_text("unit_id,unit_type,n,r\nu1,village,60,0.5\nu2,village,1,0.95\nu3,office,0,1\n", encoding="utf-8")
    r = run(Inputs(write_scheme(tmp_path, body, fields), data))
    assert findings(r).equals(_findings_by_python(r))  # the columns' words are explain's
    words = {(u, i): w for u, i, w in findings(r).select("unit_id", "item", "reason").iter_rows()}
    assert words[("u1", "cnt")] == "2 × 60 = 120, 上限 4 → 4" and words[("u2", "cnt")] == "2 × 1 = 2 (上限 4)"
    assert words[("u1", "ded")] == "10 − 0.2 × 60: 扣 12, 最多扣 10 → 0"
    assert words[("u2", "ded")] == "10 − 0.2 × 1 = 9.8"
    assert words[("u1", "ded2")] == "10 − 3 × 60: 扣 180, 最多扣 20 → 0"
    assert words[("u2", "ded2")] == "10 − 3 × 1 = 7"
    assert words[("u1", "pro")] == "1 × 0.5(保底 0.9) = 0.9" and words[("u3", "pro")] == "1 × 1(封顶 1) = 1"
    assert words[("u1", "rk")].startswith("按同类型单位比较, 实际值 0.5 → ")
    text = explain(r, r.frame.filter(pl.col("unit_id") == "u1").row(0, named=True), "en")
    assert "2 × 60 = 120, max 4 → 4" in text and "compared within unit_type, value 0.5" in text


def test_explain_shows_a_true_sum_for_the_total_and_why_the_grade() -> None:
    """explain listed sections and pools but not how they make the total (a coefficient was invisible), nor
    why a unit of 90.41 is 良好. Its total line is now a true sum: the terms it shows give the exact value
    it shows, which rounds to the total; and a grade passed down by a full quota says so."""
    import re  # noqa: PLC0415
    from decimal import ROUND_HALF_UP, Decimal  # noqa: PLC0415

    from engine.pipeline import demo_inputs, run  # noqa: PLC0415
    from engine.report import explain  # noqa: PLC0415

    r = run(demo_inputs())
    for row in r.frame.iter_rows(named=True):
        lines = explain(r, row, "zh").splitlines()
        total_line = next(x for x in lines if x.startswith("总分 = "))
        terms, _, result = total_line.removeprefix("总分 = ").rpartition(" = ")
        exact, _, shown = result.partition(" → ")
        got = sum((Decimal(a) * Decimal(b or 1)
                   for a, b in re.findall(r"(-?\d+\.\d+)(?: × (\d+(?:\.\d+)?))?", terms)), Decimal(0))
        assert got == Decimal(exact), total_line
        assert Decimal(exact).quantize(Decimal("0.01"), ROUND_HALF_UP) == Decimal(shown or exact)
        assert Decimal(shown or exact) == Decimal(row["total"]).scaleb(-2)
    v06 = r.frame.filter(pl.col("unit_id") == "V06").row(0, named=True)
    assert "等级 良好: 总分达到优秀分数线 90, 但优秀名额 4 个已按排名" in explain(r, v06, "zh")


def test_the_nearest_misses_of_an_award_with_places_per_type_are_each_type_s() -> None:
    """With places per unit type (村 4, 社区 1), the nearest misses were the first three overall: all villages,
    so no community was shown though the community place is as contested. Each type's are shown now."""
    from engine.awards_report import awards_text  # noqa: PLC0415
    from engine.pipeline import demo_inputs, run  # noqa: PLC0415
    from engine.report_cols import award_units  # noqa: PLC0415

    r = run(demo_inputs(), detail=False)
    award = next(a for a in r.decisions.awards if a.id == "target_excellent")
    rest = award_units(r, award, ["zh"], others=1).filter(~pl.col("rec"))
    counts = rest.group_by("unit_type", pl.col("a.target_excellent").cast(pl.String)).len()
    assert counts.get_column("len").max() == 1  # one of each status per type (offices: not applicable)
    assert {"village", "community"} <= set(counts.filter(pl.col("a.target_excellent") == "not_eligible")
                                           .get_column("unit_type"))
    text = awards_text(r, "zh").split("【")[1]
    assert "最接近的未入选单位(村):" in text and "最接近的未入选单位(社区):" in text


def test_a_condition_is_shown_in_chinese_words() -> None:
    """explain's Chinese text showed `not` and `in` in English (the second audit)."""
    from engine.pipeline import demo_inputs, run  # noqa: PLC0415
    from engine.report_cols import pretty  # noqa: PLC0415

    r = run(demo_inputs())
    assert pretty('not dues_on_time and section.safety >= 60 or unit_type in ["village"]', r, "zh") == \
        '非 党费按时足额缴纳 且 安全生产 ≥ 60 或 unit_type 属于 ["village"]'
    assert pretty("discipline_cases not in [1, 2]", r, "zh") == "违纪违法案件数 不属于 [1, 2]"
    assert pretty("not dues_on_time", r, "en") == "not dues_on_time"
