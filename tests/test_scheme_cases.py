"""Every test case written in the bundled schemes' `tests:` lists passes (STYLE 7)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import write_scheme

from engine.errors import KaoheError
from engine.scheme import load_scheme
from engine.schemetests import cases, run_all, run_case

RULES = Path(__file__).resolve().parents[1] / "rules"
CASES = [(path, name) for path in sorted(RULES.glob("*.yaml")) for name, _, _ in cases(load_scheme(path))
         if name != "defaults"]


@pytest.mark.parametrize(("path", "name"), CASES, ids=[f"{p.stem}:{n}" for p, n in CASES])
def test_scheme_case(path: Path, name: str) -> None:
    scheme = load_scheme(path)
    found = {n: (m, loc) for n, m, loc in cases(scheme)}
    defaults = dict(found["defaults"][0]["unit"]) if "defaults" in found else {}
    result = run_case(scheme, name, *found[name], defaults)
    assert result.ok, f"{result.loc}: {result.name}: " + "; ".join(result.failures)


def test_a_wrong_expectation_fails_with_the_got_value(tmp_path: Path) -> None:
    text = (RULES / "township-2022.yaml").read_text(encoding="utf-8")
    bad = text.replace("expect: {item.hazard_rectify: 15}", "expect: {item.hazard_rectify: 14}")
    assert bad != text
    path = tmp_path / "t.yaml"
    path.write_text(bad, encoding="utf-8")
    scheme = load_scheme(path)
    name, m, loc = cases(scheme)[0]
    result = run_case(scheme, name, m, loc, {})
    assert result.failures == ("item.hazard_rectify: expected 14, got 15",)


def test_a_whole_unit_case_that_gives_no_field_is_scored_with_every_field_empty() -> None:
    """A case expecting a total (or a grade) whose unit gives no field at all scored untyped empty columns
    and raised a Polars error; every field is now empty of its own type, as in a table."""
    scheme = load_scheme(RULES / "township-2022.yaml")
    name, m, loc = cases(scheme)[0]
    unit = {"unit_type": "community"}
    m = {**m, "unit": unit, "expect": {"total": 0, "grade": "excellent"}}
    result = run_case(scheme, name, m, loc, {})  # type: ignore[arg-type]
    assert [f.split(":")[0] for f in result.failures] == ["total", "grade"]
    assert "got" in result.failures[0] and "got" in result.failures[1]


@pytest.mark.parametrize("value", ["abc", "5", "{a: 1}", "true"])
def test_tests_that_are_not_a_list_are_a_problem_not_a_crash_or_no_cases(tmp_path: Path, value: str) -> None:
    # was: TypeError (5, true), AttributeError while reporting ({a: 1}), or silently no cases ("abc")
    path = write_scheme(tmp_path, f"""
        sections:
          - {{id: s, items: [{{id: x, points: 10, value: n, method: proportional}}]}}
        tests: {value}
        """, {"n": "{type: decimal}"})
    scheme = load_scheme(path)
    with pytest.raises(KaoheError) as info:
        run_all(scheme)
    assert [p.message for p in info.value.problems] == ["'tests' must be a list (lines starting with '- ')"]
    assert info.value.problems[0].loc.line == 7  # the `tests:` line


def test_an_empty_tests_list_has_no_cases(tmp_path: Path) -> None:
    body = "sections:\n  - {id: s, items: [{id: x, points: 10, value: n, method: proportional}]}\n"
    for tail in ("", "tests:\n", "tests: []\n"):
        path = write_scheme(tmp_path, body + tail, {"n": "{type: decimal}"})
        assert cases(load_scheme(path)) == []
