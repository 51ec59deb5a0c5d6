"""Simulation output: the as-of run beside the baseline (score, rank, grade and award changes)."""

from __future__ import annotations

import polars as pl

from .fmt import Lang, in_lang, word
from .pipeline import Run
from .report_cols import fixed_text, grade_text, report_order, status_text, type_text
from .simulate import AsOf, _fmt, adjusted_text


def header(run: Run, info: AsOf | None, lang: Lang) -> str:
    if info is None:
        return ""
    zh = lang == "zh"
    lines = [f"{'截至' if zh else 'as of'} {info.as_of} "
             f"({'时间进度' if zh else 'elapsed'} {_fmt(info.linear * 100)}%), "
             f"{'预测方式' if zh else 'projection'}: {info.project}"]
    for fid, (kind, share) in info.adjusted.items():
        f = run.scheme.fields[fid]
        lines.append(f"  {f.label if zh else fid}: {adjusted_text(kind, share, lang)}")
    for iid in info.pending:
        it = next(i for i in run.scheme.all_items() if i.id == iid)
        lines.append(f"  {it.label if zh else iid}: {'待年终评定, 按' if zh else 'pending (year-end only), assumed'} "
                     f"{it.points}{'分预估' if zh else ' points'}")
    return "\n".join(lines) + "\n\n"


def compare_table(base: Run, scen: Run | None, lang: Lang, gaps: dict[str, str] | None = None
                  ) -> tuple[list[str], pl.DataFrame]:
    """The baseline beside the scenario, a row of text cells per unit (by unit type as declared, then rank
    order): rank, unit, total, grade, awards held; the scenario's total, change, rank, grade and award
    changes where they differ; and each unit's gap text."""
    p = base.scheme.meta.precision
    zh = lang == "zh"
    heads = [word("rank", lang), word("unit_id", lang), word("unit", lang), word("type", lang), word("total", lang),
             word("grade", lang), word("awards", lang)]
    awards = base.decisions.awards
    label = {a.id: in_lang(a.label, a.label_en, a.id, lang) for a in awards}

    def status(col: str) -> pl.Expr:
        return pl.col(col).cast(pl.String)

    held = [pl.when(status(f"a.{a.id}").is_in(["recommended", "tie_flag"])).then(pl.lit(label[a.id])) for a in awards]
    cells = [pl.col("rank").cast(pl.String), pl.col("unit_id"), pl.col("name"), type_text(base, lang),
             fixed_text(pl.col("total"), p, p), grade_text(base, lang),
             pl.concat_str(held, separator="、", ignore_nulls=True).fill_null("") if held else pl.lit("")]
    frame = base.frame.select(pl.col("unit_id").cast(pl.String), "name", "unit_type", "total", "grade", "rank",
                              "order", *[f"a.{a.id}" for a in awards])
    if scen is not None:
        heads += ["情景总分" if zh else "scenario total", "变化" if zh else "change",
                  "情景排名" if zh else "scenario rank", "情景等级" if zh else "scenario grade",
                  "奖项变化" if zh else "award changes"]
        after = scen.frame.select(pl.col("unit_id").cast(pl.String), pl.col("total").alias("~total"),
                                  pl.col("rank").alias("~rank"), pl.col("grade").alias("~grade"),
                                  *[pl.col(f"a.{a.id}").alias(f"~a.{a.id}") for a in awards])
        frame = frame.join(after, on="unit_id", how="left", maintain_order="left")
        delta = pl.col("~total") - pl.col("total")
        changes = [pl.when(status(f"a.{a.id}").ne_missing(status(f"~a.{a.id}"))).then(pl.concat_str([
            pl.lit(f"{label[a.id]}: "), status_text(pl.col(f"a.{a.id}"), lang), pl.lit(" → "),
            status_text(pl.col(f"~a.{a.id}"), lang)])) for a in awards]
        cells += [fixed_text(pl.col("~total"), p, p),
                  pl.when(delta != 0).then(pl.when(delta > 0).then(pl.lit("+")).otherwise(pl.lit(""))
                                           + fixed_text(delta, p, p)).otherwise(pl.lit("")),
                  pl.when(pl.col("~rank").ne_missing(pl.col("rank"))).then(pl.concat_str(
                      [pl.col("rank").cast(pl.String), pl.lit("→"), pl.col("~rank").cast(pl.String)]))
                  .otherwise(pl.lit("")),
                  pl.when(pl.col("~grade").cast(pl.String).ne_missing(pl.col("grade").cast(pl.String)))
                  .then(grade_text(scen, lang, "~grade")).otherwise(pl.lit("")),
                  pl.concat_str(changes, separator="; ", ignore_nulls=True).fill_null("") if changes else pl.lit("")]
    if gaps is not None:
        heads.append("差距" if zh else "gaps")
        cells.append(pl.col("unit_id").replace_strict(gaps, default="", return_dtype=pl.String))
    rows = (frame.lazy().sort(report_order(base), maintain_order=True)
            .select(c.alias(f"c{i}") for i, c in enumerate(cells)).collect())
    return heads, rows
