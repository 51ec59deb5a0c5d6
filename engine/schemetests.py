"""A scheme's own test cases (`tests:` in the scheme file), run by `kaohe test` and by pytest.

    tests:
      - name: 隐患整改率恰好95%得满分
        unit: {unit_type: village, hazards_found: 20, hazards_fixed: 19}
        expect: {item.hazard_rectify: 15}

`expect` keys are `item.X` (evaluated from the given fields alone), or `section.X`, `pool.X`,
`total`, `grade` (the whole unit is scored; fields not given come from the list's `defaults:`
entry, a test case named `defaults` whose `unit` holds the base values).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import polars as pl

from .data import _parse
from .errors import Collector, KaoheError, Loc, Problem
from .evaluate import ITEM_SCALE, _item_scope, item_exprs
from .fmt import dec, plain
from .model import Scheme
from .yamlread import Reader
from .yamlsrc import YMap


@dataclass(frozen=True)
class CaseResult:
    name: str
    loc: Loc
    failures: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.failures


def cases(scheme: Scheme) -> list[tuple[str, YMap, Loc]]:
    r = Reader(Collector())
    lst = r.list(scheme.raw, "tests", "[tests]")  # not a list (tests: 5): a problem, not a crash or no cases
    r.p.raise_if_any()
    out: list[tuple[str, YMap, Loc]] = []
    for m, loc in zip(lst, lst.locs, strict=True):
        if not isinstance(m, YMap) or not isinstance(m.get("unit"), YMap) or not isinstance(m.get("expect"), YMap):
            raise KaoheError([Problem(loc, "a test case needs name, unit: {...} and expect: {...}", "[tests]")])
        unknown = [k for k in m if k not in ("name", "unit", "expect", "note")]
        if unknown:
            raise KaoheError([Problem(m.key_locs[unknown[0]], f"unknown key '{unknown[0]}'", "[tests]",
                                      "allowed: expect, name, note, unit")])
        out.append((str(m.get("name", f"case {len(out) + 1}")), m, loc))
    return out


def _frame(scheme: Scheme, unit: dict[str, Any], loc: Loc) -> pl.DataFrame:
    cols = scheme.columns
    row = {"unit_id": "test", "name": "test", "unit_type": str(unit.get(cols.type, unit.get("unit_type", "")))}
    bad = [k for k in unit if k not in scheme.fields and k not in (cols.type, "unit_type")]
    if bad:
        raise KaoheError([Problem(loc, f"test case names unknown field '{bad[0]}'", "[tests]")])
    if row["unit_type"] not in scheme.unit_types:
        raise KaoheError([Problem(loc, f"test case needs unit_type, one of {', '.join(scheme.unit_types)}", "[tests]")])
    given = {k: None if v is None else str(v).lower() if isinstance(v, bool) else str(v)
             for k, v in unit.items() if k in scheme.fields}
    raw = pl.DataFrame({"_one": [None], **{k: [v] for k, v in given.items()}},  # one row, even with no field given
                       schema={"_one": pl.String, **{k: pl.String for k in given}})
    typed = raw.select([_parse(raw.schema, f) for f in scheme.fields.values()])  # a field not given: a typed null
    return typed.with_columns([pl.lit(v).alias(k) for k, v in row.items()])


def run_case(scheme: Scheme, name: str, m: YMap, loc: Loc, defaults: dict[str, Any]) -> CaseResult:
    unit = dict(m["unit"])
    expect = m["expect"]
    whole = any(not str(k).startswith("item.") for k in expect)
    got = _score_whole(scheme, {**defaults, **unit}, loc) if whole else _score_items(scheme, unit, expect, loc)
    failures = []
    for key, want in expect.items():
        if key not in got:
            failures.append(f"{key}: not a known item, section, pool, total or grade")
            continue
        have = got[key]
        if key == "grade":
            ok = have == want
        else:
            ok = have is not None and have == Decimal(str(want))
        if not ok:
            shown = plain(have) if isinstance(have, Decimal) else str(have)
            failures.append(f"{key}: expected {want}, got {shown}")
    return CaseResult(name, loc, tuple(failures))


def _score_items(scheme: Scheme, unit: dict[str, Any], expect: YMap, loc: Loc) -> dict[str, Any]:
    df = _frame(scheme, unit, loc)
    items = {i.id: i for i in scheme.all_items()}
    exprs = []
    for key in expect:
        iid = str(key).removeprefix("item.")
        if iid in items:
            e, _ = item_exprs(scheme, items[iid], _item_scope(scheme, items[iid]))
            exprs.append(e[1])
    row = df.select(exprs).row(0, named=True) if exprs else {}
    return {f"item.{k[2:]}": dec(v, ITEM_SCALE) for k, v in row.items()}


def _score_whole(scheme: Scheme, unit: dict[str, Any], loc: Loc) -> dict[str, Any]:
    from .decide import decide  # noqa: PLC0415
    from .evaluate import build_plan  # noqa: PLC0415
    from .rules_load import load_decisions  # noqa: PLC0415

    df = _frame(scheme, unit, loc).with_columns(_row=pl.lit(0), _id_key=pl.lit("test"))
    _, lf = build_plan(scheme, df.lazy())
    scored = lf.collect()
    decided, _ = decide(scheme, load_decisions(scheme), scored)
    r = decided.row(0, named=True)
    p = scheme.meta.precision
    out: dict[str, Any] = {f"item.{i.id}": dec(r.get(f"i.{i.id}"), ITEM_SCALE) for i in scheme.all_items()}
    out.update({f"section.{s.id}": dec(r.get(f"s.{s.id}"), p) for s in scheme.all_sections()})
    out.update({f"pool.{q.id}": dec(r.get(f"p.{q.id}"), p) for q in scheme.pools})
    out.update({"total": dec(r["total"], p), "grade": r["grade"]})
    return out


def run_all(scheme: Scheme) -> list[CaseResult]:
    found = cases(scheme)
    defaults = next((dict(m["unit"]) for n, m, _ in found if n == "defaults"), {})
    return [run_case(scheme, n, m, loc, defaults) for n, m, loc in found if n != "defaults"]
