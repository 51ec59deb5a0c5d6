"""Simulation output: the as-of run beside the baseline (score, rank, grade and award changes)."""

from __future__ import annotations

from typing import Any

from .fmt import Lang, fixed_str, word
from .pipeline import Run
from .report import grade_label, ordered, type_label, unit_rows
from .report_cols import STATUS
from .simulate import AsOf, _fmt


def header(run: Run, info: AsOf | None, lang: Lang) -> str:
    if info is None:
        return ""
    zh = lang == "zh"
    lines = [f"{'截至' if zh else 'as of'} {info.as_of} "
             f"({'时间进度' if zh else 'elapsed'} {_fmt(info.linear * 100)}%), "
             f"{'预测方式' if zh else 'projection'}: {info.project}"]
    for fid, note in info.adjusted.items():
        f = run.scheme.fields[fid]
        lines.append(f"  {f.label if zh else fid}: {note}")
    for iid in info.pending:
        it = next(i for i in run.scheme.all_items() if i.id == iid)
        lines.append(f"  {it.label if zh else iid}: {'待年终评定, 按' if zh else 'pending (year-end only), assumed'} "
                     f"{it.points}{'分预估' if zh else ' points'}")
    return "\n".join(lines) + "\n\n"


def _awards(run: Run, r: dict[str, Any], lang: Lang) -> str:
    got = [a.label if lang == "zh" else a.id for a in run.decisions.awards
           if r.get(f"a.{a.id}") in ("recommended", "tie_flag")]
    return "、".join(got)


def compare_table(base: Run, scen: Run | None, lang: Lang, gaps: dict[str, str] | None = None
                  ) -> tuple[list[str], list[list[str]]]:
    p = base.scheme.meta.precision
    zh = lang == "zh"
    heads = [word("rank", lang), word("unit_id", lang), word("unit", lang), word("type", lang), word("total", lang),
             word("grade", lang), word("awards", lang)]
    statuses = [f"a.{a.id}" for a in base.decisions.awards]
    after = {str(r["unit_id"]): r for r in unit_rows(scen, ["rank", *statuses])} if scen is not None else {}
    if scen is not None:
        heads += ["情景总分" if zh else "scenario total", "变化" if zh else "change",
                  "情景排名" if zh else "scenario rank", "情景等级" if zh else "scenario grade",
                  "奖项变化" if zh else "award changes"]
    if gaps is not None:
        heads.append("差距" if zh else "gaps")
    rows = []
    for r in ordered(base, ["rank", *statuses]):
        row = [str(r["rank"]), str(r["unit_id"]), r["name"], type_label(base, r["unit_type"], lang),
               fixed_str(r["total"], p, p), grade_label(base, r["grade"], lang), _awards(base, r, lang)]
        if scen is not None:
            s = after[str(r["unit_id"])]
            delta = s["total"] - r["total"]
            changes = [f"{a.label if zh else a.id}: {STATUS[r[f'a.{a.id}']][0 if zh else 1]} → "
                       f"{STATUS[s[f'a.{a.id}']][0 if zh else 1]}" for a in base.decisions.awards
                       if r[f"a.{a.id}"] != s[f"a.{a.id}"]]
            row += [fixed_str(s["total"], p, p), ("+" if delta > 0 else "") + fixed_str(delta, p, p) if delta else "",
                    f"{r['rank']}→{s['rank']}" if s["rank"] != r["rank"] else "",
                    grade_label(scen, s["grade"], lang) if s["grade"] != r["grade"] else "", "; ".join(changes)]
        if gaps is not None:
            row.append(gaps.get(str(r["unit_id"]), ""))
        rows.append(row)
    return heads, rows
