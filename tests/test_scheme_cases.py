"""Every test case written in the bundled schemes' `tests:` lists passes (STYLE 7)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.scheme import load_scheme
from engine.schemetests import cases, run_case

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
