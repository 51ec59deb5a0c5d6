"""The committee's output: each award's ranked recommendations, nearest misses and, for every
unit, why it is or is not recommended (reason codes ordered by points lost). The texts are made for all
units at once (`engine.report_cols`)."""

from __future__ import annotations

from typing import Any

import polars as pl
from tabulate import tabulate

from .fmt import Lang, fixed_str, word
from .pipeline import Run
from .report_cols import STATUS, award_units, fixed_text, grade_text, status_text, type_text
from .rules_model import Award

__all__ = ["STATUS", "awards_document", "awards_text"]


def awards_text(run: Run, lang: Lang, misses: int = 3) -> str:
    p = run.scheme.meta.precision
    out = [f"{run.scheme.meta.label} — {word('awards', lang)}", ""]
    for award in run.decisions.awards:
        pre = f"a.{award.id}"
        units = award_units(run, award, [lang])
        quota = _quota_text(run, award, lang)
        out.append(f"【{award.label if lang == 'zh' else award.id}】 {word('quota', lang)} {quota}")
        shown = [pl.col(f"{pre}.pos").cast(pl.String), pl.col("unit_id").cast(pl.String), pl.col("name"),
                 type_text(run, lang), fixed_text(pl.col("total"), p, p), grade_text(run, lang),
                 *([pl.col(f"{pre}.level").fill_null("")] if award.levels else []), status_text(award, lang)]
        rows = units.filter("rec").select(shown).rows()
        heads = ["#", word("unit_id", lang), word("unit", lang), word("type", lang), word("total", lang),
                 word("grade", lang), *(["奖次" if lang == "zh" else "level"] if award.levels else []),
                 word("recommended", lang)]
        out.append(tabulate(rows, headers=heads, disable_numparse=True) if rows else
                   ("  (无推荐单位)" if lang == "zh" else "  (no unit recommended)"))
        near = units.filter(~pl.col("rec") & (pl.col(pre).cast(pl.String) != "not_applicable")).head(misses)
        if near.height:
            out.append("  最接近的未入选单位:" if lang == "zh" else "  nearest misses:")
            for r in near.iter_rows(named=True):
                out.append(f"  - {r['name']} ({r['unit_id']}, {fixed_str(r['total'], p, p)}): {r[f'reason_{lang}']}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _quotas(run: Run, award: Award) -> dict[str, int]:
    """The award's places per unit type (types it applies to, in the frame's order of first appearance)."""
    pre = f"a.{award.id}"
    per = (run.frame.lazy().filter(pl.col(pre).cast(pl.String) != "not_applicable")
           .group_by("unit_type", maintain_order=True).agg(pl.col(pre + ".quota").last()).collect())
    return dict(zip(per.get_column("unit_type").cast(pl.String).to_list(), per.get_column(pre + ".quota").to_list(),
                    strict=True))


def _quota_text(run: Run, award: Award, lang: Lang) -> str:
    per = _quotas(run, award)
    if award.quota is not None and award.quota.per == "unit_type":
        return ", ".join(f"{run.scheme.unit_types.get(t, t) if lang == 'zh' else t} {n}" for t, n in per.items())
    return str(next(iter(per.values()), 0))


def awards_document(run: Run) -> dict[str, Any]:
    """The stable JSON document of a run (issue contract): scheme, manifest, units, awards."""
    p = run.scheme.meta.precision

    def num(col: str) -> pl.Expr:  # exact short repr: the double nearest the decimal, as float(text) gives
        c = pl.col(col).cast(pl.Float64)
        out: pl.Expr = c / (c * 0 + 10**p)
        return out.alias(col)  # a column divisor: IEEE division (a constant one multiplies)

    secs, pools = run.scheme.all_sections(), run.scheme.pools
    vetoes = run.decisions.vetoes
    nums = ["total", *[f"s.{s.id}" for s in secs], *[f"p.{q.id}" for q in pools]]
    cols = ["unit_id", "name", "unit_type", "grade", "rank", "rank_all", "order", *nums,
            *[c for v in vetoes for c in (f"x.{v.id}", f"xs.{v.id}")]]
    frame = (run.frame.lazy().select(c for c in cols if c in run.frame.columns)
             .with_columns(pl.col("unit_id").cast(pl.String), pl.col("unit_type").cast(pl.String),
                           pl.col("grade").cast(pl.String), *[num(c) for c in nums])
             .sort(pl.col("unit_type"), pl.col("order"), maintain_order=True).collect())
    units = []
    for r in frame.iter_rows(named=True):
        units.append({
            "unit_id": r["unit_id"], "name": r["name"], "type": r["unit_type"], "total": r["total"],
            "grade": r["grade"], "rank": r["rank"], "rank_overall": r["rank_all"],
            "sections": {s.id: r[f"s.{s.id}"] for s in secs},
            "pools": {q.id: r[f"p.{q.id}"] for q in pools},
            "vetoes": [{"id": v.id, "label": v.label, "source": r.get(f"xs.{v.id}")}
                       for v in vetoes if r.get(f"x.{v.id}")],
        })
    awards = []
    for award in run.decisions.awards:
        pre = f"a.{award.id}"
        units_a = award_units(run, award, ["zh", "en"]).with_columns(num("total"), pl.col(pre).cast(pl.String),
                                                                     pl.col("unit_id").cast(pl.String))
        rec = units_a.filter("rec").select(
            "unit_id", "name", pl.col(pre + ".pos").alias("rank"), "total",
            (pl.col(pre + ".level") if pre + ".level" in units_a.columns else pl.lit(None)).alias("level"),
            pl.col(pre).alias("status"))
        rest = units_a.filter(~pl.col("rec")).select("unit_id", pl.col(pre).alias("status"),
                                                     pl.col("reason_zh").alias("reason"),
                                                     pl.col("reason_en").alias("reason_en"))
        awards.append({"id": award.id, "label": award.label, "quota": _quota_json(run, award),
                       "recommended": rec.to_dicts(), "not_selected": rest.to_dicts()})
    return {"scheme": {"id": run.scheme.meta.id, "label": run.scheme.meta.label, "year": run.scheme.meta.year},
            "manifest": run.manifest, "units": units, "awards": awards}


def _quota_json(run: Run, award: Award) -> Any:
    per = _quotas(run, award)
    if award.quota is not None and award.quota.per == "unit_type":
        return dict(sorted(per.items()))
    return next(iter(per.values()), 0)
