"""Bad schemes: each file in tests/bad_schemes/ has one problem, announced in its first line as
`# expect: <line>:<col>: <fragment of the message>`; optional `# also: <fragment>` lines name more
text that must be on the same message line, and `# xfail: <reason>` marks a known engine bug.
Loading must fail with a KaoheError whose message has `<file>:<line>:<col>:` and the fragment on
one line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import write_scheme

from engine.errors import KaoheError
from engine.event_rules import load_event_rules
from engine.rules_load import load_decisions
from engine.scheme import load_scheme

BAD = Path(__file__).parent / "bad_schemes"
EXPECT = re.compile(r"^# expect: (\d+):(\d+): (.+)$")


def _header(path: Path) -> tuple[int, int, list[str], str | None]:
    lines = path.read_text(encoding="utf-8").splitlines()
    m = EXPECT.match(lines[0])
    assert m, f"{path.name}: first line must be '# expect: <line>:<col>: <fragment>'"
    fragments, xfail = [m.group(3)], None
    for line in lines[1:]:
        if line.startswith("# also: "):
            fragments.append(line[len("# also: "):])
        elif line.startswith("# xfail: "):
            xfail = line[len("# xfail: "):]
        else:
            break
    return int(m.group(1)), int(m.group(2)), fragments, xfail


def _cases() -> list:  # type: ignore[type-arg]
    out = []
    for path in sorted(BAD.glob("*.yaml")):
        xfail = _header(path)[3]
        marks = [pytest.mark.xfail(strict=True, reason=xfail)] if xfail else []
        out.append(pytest.param(path, id=path.stem, marks=marks))
    return out


def _load(path: Path) -> None:
    scheme = load_scheme(path)
    load_decisions(scheme)  # vetoes, grades, ranking, awards
    load_event_rules(scheme)  # read when a run has an event log


def test_there_is_a_bad_scheme_for_every_error_kind() -> None:
    assert len(list(BAD.glob("*.yaml"))) >= 18


@pytest.mark.parametrize("path", _cases())
def test_bad_scheme_is_reported_at_its_place(path: Path) -> None:
    line, col, fragments, _ = _header(path)
    with pytest.raises(KaoheError) as info:
        _load(path)
    msg = str(info.value)
    where = f"{path}:{line}:{col}:"
    hits = [m for m in msg.splitlines() if m.startswith(where)]
    assert hits, f"no problem at {where}\n{msg}"
    assert any(all(f in m for f in fragments) for m in hits), f"{fragments} not at {where}\n{msg}"
    assert path.name in msg
    assert re.search(r"\d+ problems? in 1 file$", msg)


def test_three_problems_are_reported_at_once(tmp_path: Path) -> None:
    body = """
    sections:
      - id: s
        items:
          - {id: x, pionts: 5, value: n, method: {count: {each: 1, max: 5}}}
          - {id: y, value: n, method: band}
          - {id: z, value: n, method: {count: {each: two, max: 5}}}
    """
    path = write_scheme(tmp_path, body, {"n": "{type: int}"})
    with pytest.raises(KaoheError) as info:
        load_scheme(path)
    msg = str(info.value)
    assert len(info.value.problems) == 3
    assert f"{path}:8:17: [s.x] unknown key 'pionts' (did you mean 'points'?)" in msg
    assert f"{path}:9:35: [s.y] unknown method 'band' (did you mean 'bands'?)" in msg
    assert f"{path}:10:50: [s.z] count 'each' must be a number, got 'two'" in msg
    assert msg.splitlines()[-1] == "3 problems in 1 file"


def test_check_problems_are_reported_together(tmp_path: Path) -> None:
    # three problems found by the checks (after the scheme is read): all at once
    body = """
    sections:
      - id: s
        applies_to: [vilage]
        items:
          - {id: x, points: 5, value: hazard_fixed, method: proportional}
          - {id: x, points: 5, value: n, method: proportional}
    """
    path = write_scheme(tmp_path, body, {"n": "{type: int}", "hazards_fixed": "{type: int}"})
    with pytest.raises(KaoheError) as info:
        load_scheme(path)
    msg = str(info.value)
    assert "unknown unit type 'vilage'" in msg
    assert "unknown field 'hazard_fixed' (did you mean 'hazards_fixed'?)" in msg
    assert "duplicate item id 'x'" in msg
    assert msg.splitlines()[-1] == "3 problems in 1 file"


def test_reading_and_checking_problems_are_reported_together(tmp_path: Path) -> None:
    body = """
    sections:
      - id: s
        items:
          - {id: x, pionts: 5, points: 5, value: hazard_fixed, method: proportional}
    """
    path = write_scheme(tmp_path, body, {"hazards_fixed": "{type: int}"})
    with pytest.raises(KaoheError) as info:
        load_scheme(path)
    msg = str(info.value)
    assert "unknown key 'pionts'" in msg
    assert "unknown field 'hazard_fixed'" in msg
    assert msg.splitlines()[-1] == "2 problems in 1 file"


def test_a_bad_expression_is_one_problem() -> None:
    with pytest.raises(KaoheError) as info:
        load_scheme(BAD / "expression_syntax.yaml")
    assert len(info.value.problems) == 1
    assert "needs a 'value' expression" not in str(info.value)


def test_bands_order_message_shows_plain_numbers() -> None:
    with pytest.raises(KaoheError) as info:
        load_scheme(BAD / "bands_out_of_order.yaml")
    assert "[0.80, 0.90, 0.95]" in str(info.value) or "[0.8, 0.9, 0.95]" in str(info.value)
    assert "Decimal(" not in str(info.value)
