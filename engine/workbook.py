"""The committee workbook (xlsx) and per-award tables: score table, one sheet per award,
findings (unit x item), event adjustments and the run manifest."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import polars as pl

from .evaluate import ITEM_SCALE
from .fmt import Lang, fixed_str, in_lang, word
from .pipeline import Run
from .report import score_table
from .report_cols import (
    award_units,
    fixed_text,
    grade_text,
    item_reason_text,
    points_text,
    status_text,
    type_text,
    value_text,
)
from .rules_model import Award


def award_table(run: Run, award: Award, lang: Lang) -> tuple[list[str], pl.DataFrame]:
    """An award's table: headers, and a row of text cells per unit (recommended first; see `award_units`)."""
    p = run.scheme.meta.precision
    pre = f"a.{award.id}"
    headers = ["#", word("unit_id", lang), word("unit", lang), word("type", lang), word("total", lang),
               word("grade", lang), word("status", lang), word("reason", lang)]
    cells = [pl.col(pre + ".pos").cast(pl.String).fill_null(""), pl.col("unit_id").cast(pl.String), pl.col("name"),
             type_text(run, lang), fixed_text(pl.col("total"), p, p), grade_text(run, lang),
             status_text(pl.col(pre), lang), pl.col(f"reason_{lang}")]
    return headers, award_units(run, award, [lang]).select(c.alias(f"c{i}") for i, c in enumerate(cells))


def findings(run: Run) -> pl.DataFrame:
    """The long findings frame: one row per unit x item whose points are not missing (unit, section, item,
    value, points, max, reason, rule), unit by unit in the frame's order, items in the scheme's; the texts
    made as columns (`report_cols.item_reason_text`, held to `explain.reason`)."""
    schema = run.frame.schema
    parts = []
    for k, it in enumerate(run.scheme.all_items()):
        points = f"i.{it.id}"
        if points not in schema:
            continue
        v, n = f"v.{it.id}", f"n.{it.id}"
        dtype = schema.get(v)
        value = pl.col(v) if dtype is not None else pl.lit(None)
        na = pl.col(n).fill_null(False) if n in schema else pl.lit(False)
        vs = run.plan.value_scale.get(it.id, 0)
        parts.append(run.frame.lazy().with_row_index("_r").filter(pl.col(points).is_not_null()).select(
            "_r", pl.lit(k).alias("_k"), pl.col("unit_id").cast(pl.String), pl.col("name").cast(pl.String),
            pl.lit(it.parent, dtype=pl.String).alias("section"), pl.lit(it.id).alias("item"),
            pl.lit(it.label).alias("label"), value_text(value, dtype, vs).alias("value"),
            points_text(pl.col(points), ITEM_SCALE, 10).alias("points"),
            pl.lit(str(it.points) if it.points is not None else "").alias("max"),
            item_reason_text(it, value, dtype, vs, pl.col(points), ITEM_SCALE, na).alias("reason"),
            pl.lit(f"{it.loc.file}:{it.loc.line}").alias("rule")))
    cols = ("unit_id", "name", "section", "item", "label", "value", "points", "max", "reason", "rule")
    if not parts:
        return pl.DataFrame(schema={c: pl.String for c in cols})
    return pl.concat(parts).sort("_r", "_k").select(cols).collect()


def _frame(headers: list[str], rows: pl.DataFrame) -> pl.DataFrame:
    return rows.rename(dict(zip(rows.columns, [h or f"col{i}" for i, h in enumerate(headers)], strict=True)))


def _numbers(rows: pl.DataFrame, places: int, decimals: Iterable[int], whole: Iterable[int] = ()) -> pl.DataFrame:
    """Text cells of a table as numbers, for Excel (a score stored as text is 'a number stored as text' to it:
    SUM, sorting and filters misbehave): the columns at `decimals` as Decimal at `places` (exact; '—', not
    assessed, an empty cell), those at `whole` as whole numbers (an empty text, an empty cell)."""
    names = rows.columns
    return rows.with_columns(
        *[pl.when(pl.col(names[i]) == "—").then(None).otherwise(pl.col(names[i])).cast(pl.Decimal(38, places))
          .alias(names[i]) for i in decimals],
        *[pl.col(names[i]).cast(pl.Int64, strict=False) for i in whole])


def write_workbook(run: Run, path: Path, *, inputs: Iterable[Path], lang: Lang) -> None:
    from .io import write_xlsx  # noqa: PLC0415

    p = run.scheme.meta.precision
    heads, rows = score_table(run, lang)
    scores = range(4, 5 + len(run.scheme.sections) + len(run.scheme.pools))  # sections, pools, total
    sheets: dict[str, pl.DataFrame] = {"总分排名" if lang == "zh" else "scores": _frame(heads,
                                                                                    _numbers(rows, p, scores, [0]))}
    for a in run.decisions.awards:
        heads, rows = award_table(run, a, lang)
        sheets[in_lang(a.label, a.label_en, a.id, lang)] = _frame(heads, _numbers(rows, p, [4], [0]))
    sheets["findings"] = findings(run)
    if run.adjustments is not None:
        sheets["events"] = run.adjustments.with_columns(pl.col("points").map_elements(
            lambda v: fixed_str(v, 6), return_dtype=pl.String)).select(
            [c for c in run.adjustments.columns if c in ("unit_id", "event_id", "rule", "points", "target", "veto",
                                                         "date", "kind", "detail")])
    sheets["manifest"] = pl.DataFrame({"key": ["manifest"], "value": [json.dumps(run.manifest, ensure_ascii=False)]})
    write_xlsx(path, sheets, inputs=list(inputs))


