"""report: the decided frame as tables for people (tabulate, CJK aligned) and documents for programs.

Builders return (headers, rows) of plain strings; `render` turns them into table, csv, json or
markdown. Labels come from the scheme (Chinese); `lang="en"` switches the tool's own words and
uses ids where the scheme has no English label.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from tabulate import tabulate

from .evaluate import ITEM_SCALE
from .explain import method_label, reason, value_str
from .fmt import Lang, fixed_str, points_str, word
from .model import Item, Pool, Section
from .pipeline import Run

Rows = list[list[str]]


def type_label(run: Run, t: str, lang: Lang) -> str:
    return run.scheme.unit_types.get(t, t) if lang == "zh" else t


def grade_label(run: Run, g: str | None, lang: Lang) -> str:
    for gr in run.decisions.grades:
        if gr.id == g:
            return gr.label if lang == "zh" else gr.id
    return g or "—"


def unit_rows(run: Run, cols: list[str]) -> list[dict[str, Any]]:
    """One dict a unit with `cols`, the unit's id, name, type, total and grade, and its vetoes (x.<id>: hit?,
    xs.<id>: by what) - not the whole frame, whose findings and decision columns run to hundreds (a dict of
    them per unit cost gigabytes at a million units)."""
    base = ["unit_id", "name", "unit_type", "total", "grade"]
    vetoes = [c for v in run.decisions.vetoes for c in (f"x.{v.id}", f"xs.{v.id}")]
    return run.frame.select(c for c in dict.fromkeys([*base, *cols, *vetoes]) if c in run.frame.columns).to_dicts()


def ordered(run: Run, cols: list[str]) -> list[dict[str, Any]]:
    """Units in report order (by unit type as declared, then by position), with `cols` (see `unit_rows`)."""
    types = {t: i for i, t in enumerate(run.scheme.unit_types)}
    rows = unit_rows(run, ["order", *cols])
    return sorted(rows, key=lambda r: (types.get(r["unit_type"], 99), r["order"], str(r["unit_id"])))


def score_table(run: Run, lang: Lang) -> tuple[list[str], Rows]:
    p = run.scheme.meta.precision
    secs = list(run.scheme.sections)
    pools = list(run.scheme.pools)
    lab: Callable[[Section | Pool], str] = (lambda x: x.label) if lang == "zh" else (lambda x: x.id)
    headers = [word("rank", lang), word("unit_id", lang), word("unit", lang), word("type", lang),
               *[lab(s) for s in secs], *[lab(q) for q in pools], word("total", lang), word("grade", lang),
               word("vetoes", lang)]
    rows = []
    for r in ordered(run, ["rank", *[f"s.{s.id}" for s in secs], *[f"p.{q.id}" for q in pools]]):
        vetoes = [v.label if lang == "zh" else v.id for v in run.decisions.vetoes if r.get(f"x.{v.id}")]
        rows.append([str(r["rank"]), str(r["unit_id"]), r["name"], type_label(run, r["unit_type"], lang),
                     *[fixed_str(r[f"s.{s.id}"], p, p) for s in secs],
                     *[fixed_str(r[f"p.{q.id}"], p, p) for q in pools],
                     fixed_str(r["total"], p, p), grade_label(run, r["grade"], lang), "、".join(vetoes)])
    return headers, rows


def render(headers: Sequence[str], rows: Rows, fmt: str, *, title: str = "") -> str:
    if fmt == "csv":
        import csv  # noqa: PLC0415
        import io  # noqa: PLC0415

        from .io import neutralise  # noqa: PLC0415 - names come from many hands: no formulas

        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\r\n")
        w.writerow([neutralise(h) for h in headers])
        w.writerows([[neutralise(c) for c in r] for r in rows])
        return buf.getvalue()
    if fmt == "json":
        return json.dumps([dict(zip(headers, r, strict=True)) for r in rows], ensure_ascii=False, indent=2) + "\n"
    table: str = tabulate(rows, headers=list(headers), tablefmt="github" if fmt == "markdown" else "simple",
                          disable_numparse=True, stralign="left")
    if title:
        table = (f"## {title}\n\n" if fmt == "markdown" else f"{title}\n") + table
    return table + "\n"


def find_unit(run: Run, unit: str) -> dict[str, Any] | None:
    for r in run.frame.iter_rows(named=True):
        if str(r["unit_id"]) == unit or r["name"] == unit:
            return r
    return None


def explain(run: Run, r: dict[str, Any], lang: Lang) -> str:
    """One unit's breakdown: every section and item with input, method, points and why."""
    p = run.scheme.meta.precision
    n_group = run.frame.filter(run.frame["unit_type"] == r["unit_type"]).height
    out = [f"{r['name']} ({r['unit_id']}, {type_label(run, r['unit_type'], lang)}) — {run.scheme.meta.label}",
           f"{word('total', lang)} {fixed_str(r['total'], p, p)}   {word('grade', lang)} "
           f"{grade_label(run, r['grade'], lang)}   {word('rank', lang)} {r['rank']}/{n_group}", ""]
    for v in run.decisions.vetoes:
        if r.get(f"x.{v.id}"):
            out.append(f"{word('vetoes', lang)}: {v.label} ({r.get(f'xs.{v.id}')})")
    headers = [word("item", lang), word("value", lang), word("method", lang), word("points", lang),
               word("max", lang), word("why", lang)]
    for sec in run.scheme.sections:
        out += _section_lines(run, sec, r, lang, headers, 0)
    for pool in run.scheme.pools:
        out.append(f"[{pool.label}] {fixed_str(r[f'p.{pool.id}'], p, p)}" + _bounds(pool.floor, pool.max, lang))
        rows = [_item_row(run, it, r, lang) for it in pool.items]
        if rows:
            out.append(tabulate(rows, headers=headers, disable_numparse=True))
        out += _event_lines(run, f"pool:{pool.id}", r, lang)
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _bounds(lo: Any, hi: Any, lang: Lang) -> str:
    parts = []
    if hi is not None:
        parts.append(f"{word('capped', lang)} {hi}")
    if lo is not None:
        parts.append(f"{word('floored', lang)} {lo}")
    return f"  ({', '.join(parts)})" if parts else ""


def _section_lines(run: Run, sec: Section, r: dict[str, Any], lang: Lang, headers: list[str], depth: int
                   ) -> list[str]:
    p = run.scheme.meta.precision
    got = r.get(f"s.{sec.id}")
    indent = "  " * depth
    head = f"{indent}[{sec.label if lang == 'zh' else sec.id}] {fixed_str(got, p, p)}"
    if got is None:
        return [head + f"  ({word('na', lang)})", ""]
    if depth == 0 and sec.weight != 1:
        head += f"  × {sec.weight}"
    out = [head + _bounds(sec.floor, sec.max, lang)]
    rows = [_item_row(run, it, r, lang) for it in sec.items if r.get(f"i.{it.id}") is not None]
    if rows:
        out.append(tabulate(rows, headers=headers, disable_numparse=True))
    out += _event_lines(run, f"section:{sec.id}", r, lang)
    out.append("")
    for ch in sec.children:
        out += _section_lines(run, ch, r, lang, headers, depth + 1)
    return out


def _item_row(run: Run, it: Item, r: dict[str, Any], lang: Lang) -> list[str]:
    vs = run.plan.value_scale.get(it.id, 0)
    v, pts = r.get(f"v.{it.id}"), r.get(f"i.{it.id}")
    why = reason(it, v, vs, pts, ITEM_SCALE, lang, bool(r.get(f"n.{it.id}")))
    return [it.label if lang == "zh" else it.id, value_str(v, vs), method_label(it, lang),
            points_str(pts, ITEM_SCALE), fixed_str(int(it.points.scaleb(2)), 2) if it.points is not None else "",
            why]


def _event_lines(run: Run, target: str, r: dict[str, Any], lang: Lang) -> list[str]:
    if run.adjustments is None:
        return []
    ev = run.adjustments.filter((run.adjustments["unit_id"] == str(r["unit_id"]))
                                & (run.adjustments["target"] == target))
    return [f"  {word('event', lang)} {e['event_id']} {e['date']} {e.get('detail') or e['rule']}"
            for e in ev.iter_rows(named=True)]
