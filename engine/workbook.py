"""The committee workbook (xlsx) and per-award tables: score table, one sheet per award,
findings (unit x item), event adjustments and the run manifest."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import polars as pl

from .evaluate import ITEM_SCALE
from .explain import value_str
from .fmt import Lang, fixed_str, points_str, word
from .pipeline import Run
from .report import score_table
from .report_cols import award_units, fixed_text, grade_text, status_text, type_text
from .rules_model import Award


def award_table(run: Run, award: Award, lang: Lang) -> tuple[list[str], pl.DataFrame]:
    """An award's table: headers, and a row of text cells per unit (recommended first; see `award_units`)."""
    p = run.scheme.meta.precision
    pre = f"a.{award.id}"
    headers = ["#", word("unit_id", lang), word("unit", lang), word("type", lang), word("total", lang),
               word("grade", lang), "status", word("reason", lang)]
    cells = [pl.col(pre + ".pos").cast(pl.String).fill_null(""), pl.col("unit_id").cast(pl.String), pl.col("name"),
             type_text(run, lang), fixed_text(pl.col("total"), p, p), grade_text(run, lang),
             status_text(pl.col(pre), lang), pl.col(f"reason_{lang}")]
    return headers, award_units(run, award, [lang]).select(c.alias(f"c{i}") for i, c in enumerate(cells))


def findings(run: Run) -> pl.DataFrame:
    """The long findings frame: one row per unit x item (unit, section, item, value, points, max, reason, rule)."""
    from .explain import reason as item_reason  # noqa: PLC0415

    rows = []
    items = run.scheme.all_items()
    cols = [c for it in items for c in (f"i.{it.id}", f"v.{it.id}", f"n.{it.id}") if c in run.frame.columns]
    for r in run.frame.select("unit_id", "name", *cols).iter_rows(named=True):  # not the whole wide frame
        for it in items:
            pts = r.get(f"i.{it.id}")
            if pts is None:
                continue
            vs = run.plan.value_scale.get(it.id, 0)
            rows.append({"unit_id": str(r["unit_id"]), "name": r["name"], "section": it.parent, "item": it.id,
                         "label": it.label, "value": value_str(r.get(f"v.{it.id}"), vs),
                         "points": points_str(pts, ITEM_SCALE, 10),
                         "max": str(it.points) if it.points is not None else "",
                         "reason": item_reason(it, r.get(f"v.{it.id}"), vs, pts, ITEM_SCALE, "zh",
                                               bool(r.get(f"n.{it.id}"))),
                         "rule": f"{it.loc.file}:{it.loc.line}"})
    return pl.DataFrame(rows, schema={k: pl.String for k in ("unit_id", "name", "section", "item", "label", "value",
                                                             "points", "max", "reason", "rule")})


def _frame(headers: list[str], rows: pl.DataFrame) -> pl.DataFrame:
    return rows.rename(dict(zip(rows.columns, [h or f"col{i}" for i, h in enumerate(headers)], strict=True)))


def write_workbook(run: Run, path: Path, *, inputs: Iterable[Path], lang: Lang) -> None:
    from .io import write_xlsx  # noqa: PLC0415

    sheets: dict[str, pl.DataFrame] = {("总分排名" if lang == "zh" else "scores"): _frame(*score_table(run, lang))}
    for a in run.decisions.awards:
        sheets[a.label if lang == "zh" else a.id] = _frame(*award_table(run, a, lang))
    sheets["findings"] = findings(run)
    if run.adjustments is not None:
        sheets["events"] = run.adjustments.with_columns(pl.col("points").map_elements(
            lambda v: fixed_str(v, 6), return_dtype=pl.String)).select(
            [c for c in run.adjustments.columns if c in ("unit_id", "event_id", "rule", "points", "target", "veto",
                                                         "date", "kind", "detail")])
    sheets["manifest"] = pl.DataFrame({"key": ["manifest"], "value": [json.dumps(run.manifest, ensure_ascii=False)]})
    write_xlsx(path, sheets, inputs=list(inputs))


