"""The committee's output: each award's ranked recommendations, nearest misses and, for every
unit, why it is or is not recommended (reason codes ordered by points lost)."""

from __future__ import annotations

import re
import weakref
from decimal import Decimal
from typing import Any

from tabulate import tabulate

from . import expr as E
from .decide import AwardInfo
from .fmt import Lang, dec, fixed_str, plain, word
from .pipeline import Run
from .report import grade_label, type_label, unit_rows
from .rules_model import Award

STATUS = {
    "recommended": ("推荐", "recommended"),
    "tie_flag": ("名额边界并列, 提请考核委员会决定", "tie at the quota boundary: committee decides"),
    "outside_quota": ("符合条件, 超出名额", "eligible, outside the quota"),
    "not_eligible": ("不符合条件", "not eligible"),
    "vetoed": ("一票否决", "vetoed"), "not_applicable": ("不参评", "not assessed for this award"),
}
_OPS = {">=": "≥", "<=": "≤", "!=": "≠", "==": "="}


_NAME = re.compile(r'"\w+"|\b(?:section\.|item\.|pool\.)?\w+\b')
_PRETTY: dict[int, tuple[weakref.ref[Run], dict[str, str], dict[str, str]]] = {}  # id(run) -> run, labels, done


def pretty(text: str, run: Run, lang: Lang) -> str:
    """'section.safety >= 27' -> '安全生产 ≥ 27' (labels from the scheme). Reasons are written for every
    unit from a few condition texts: the labels are gathered, and each text made pretty, once per run."""
    if lang != "zh":
        return text
    entry = _PRETTY.get(id(run))
    if entry is None or entry[0]() is not run:
        if len(_PRETTY) > 8:
            _PRETTY.clear()
        labels = {f"section.{s.id}": s.label for s in run.scheme.all_sections()}
        labels.update({f"item.{i.id}": i.label for i in run.scheme.all_items()})
        labels.update({f"pool.{p.id}": p.label for p in run.scheme.pools})
        labels.update({f.id: f.label for f in run.scheme.fields.values()})
        labels.update({"total": "总分", "grade": "等级"})
        labels.update({f'"{g.id}"': g.label for g in run.decisions.grades})
        entry = _PRETTY[id(run)] = (weakref.ref(run), labels, {})
    _, labels, done = entry
    if text not in done:
        out = _NAME.sub(lambda m: labels.get(m.group(0), m.group(0)), text)
        for op, sym in _OPS.items():
            out = out.replace(f" {op} ", f" {sym} ")
        done[text] = out.replace(" and ", " 且 ").replace(" or ", " 或 ")
    return done[text]


def reason(run: Run, award: Award, info: AwardInfo, r: dict[str, Any], lang: Lang) -> str:
    zh = lang == "zh"
    pre = f"a.{award.id}"
    status, p = r[pre], run.scheme.meta.precision
    if status == "recommended":
        lvl = f" {r[pre + '.level']}" if r.get(pre + ".level") else ""
        return (f"推荐{lvl}: 第 {r[pre + '.pos']} 位, 名额 {r[pre + '.quota']}" if zh else
                f"recommended{lvl}: place {r[pre + '.pos']} of {r[pre + '.quota']}")
    if status == "tie_flag":
        return (f"第 {r[pre + '.pos']} 位, 与名额边界单位并列 (名额 {r[pre + '.quota']}), 提请考核委员会决定" if zh else
                f"place {r[pre + '.pos']}, tied at the quota boundary ({r[pre + '.quota']} places): committee decides")
    if status == "outside_quota":
        head = (f"符合条件, 排第 {r[pre + '.pos']} 位, 名额 {r[pre + '.quota']}" if zh else
                f"eligible, place {r[pre + '.pos']}, quota {r[pre + '.quota']}")
        if r.get(pre + ".gap") is None:
            return head
        scale = info.gap_scale if info.gap_scale is not None else p
        gap = fixed_str(r[pre + ".gap"], scale, scale)
        key = pretty(E.to_source(award.rank_by[0].expr.tree), run, lang)
        return head + (f"; {key}比末位入选单位低 {gap}" if zh else f"; {key} {gap} behind the last one in")
    if status == "vetoed":
        parts = [f"{v.label} ({r.get(f'xs.{v.id}')})" for v in run.decisions.vetoes
                 if r.get(f"x.{v.id}") and (v.blocks == "all" or award.id in v.blocks)]
        return ("一票否决: " if zh else "vetoed: ") + "; ".join(parts)
    if status == "not_applicable":
        return (f"{type_label(run, r['unit_type'], lang)}不参评此奖项" if zh else
                f"unit type {r['unit_type']} is not assessed for this award")
    return _failed(run, info, r, pre, lang)


def _failed(run: Run, info: AwardInfo, r: dict[str, Any], pre: str, lang: Lang) -> str:
    failed: list[tuple[Decimal, str]] = []
    for k, cond in enumerate(info.conditions):
        if r.get(f"{pre}.c{k}"):
            continue
        gap = r.get(f"{pre}.g{k}")
        text = pretty(cond.text, run, lang)
        if gap is not None and cond.gap_scale is not None:
            g = dec(gap, cond.gap_scale)
            assert g is not None
            failed.append((g, f"{text} ({'差' if lang == 'zh' else 'short by'} {plain(g)})"))
        else:
            failed.append((Decimal("Infinity"), text if lang != "zh" else f"{text} 不满足"))
    failed.sort(key=lambda x: -x[0])  # most points lost first
    head = "未达条件: " if lang == "zh" else "not met: "
    return head + "; ".join(t for _, t in failed)


def award_rows(run: Run, award: Award) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(recommended in order, everyone else ordered: eligible first, then by points lost)."""
    pre = f"a.{award.id}"
    rows = unit_rows(run, [c for c in run.frame.columns if c == pre or c.startswith(pre + ".")])
    types = {t: i for i, t in enumerate(run.scheme.unit_types)}
    per_type = award.quota is not None and award.quota.per == "unit_type"
    rec = sorted([r for r in rows if r[pre] in ("recommended", "tie_flag")],
                 key=lambda r: (types.get(r["unit_type"], 99) if per_type else 0, r[pre + ".pos"]))
    order = {"tie_flag": 0, "outside_quota": 1, "not_eligible": 2, "vetoed": 3, "not_applicable": 4}
    big = 1 << 62
    rest = sorted([r for r in rows if r[pre] not in ("recommended",)],
                  key=lambda r: (order[r[pre]], r[pre + ".gap"] if r.get(pre + ".gap") is not None else big,
                                 -(r["total"] or 0), str(r["unit_id"])))
    return rec, rest


def awards_text(run: Run, lang: Lang, misses: int = 3) -> str:
    p = run.scheme.meta.precision
    out = [f"{run.scheme.meta.label} — {word('awards', lang)}", ""]
    for award in run.decisions.awards:
        info = run.awards[award.id]
        rec, rest = award_rows(run, award)
        quota = _quota_text(run, award, lang)
        out.append(f"【{award.label if lang == 'zh' else award.id}】 {word('quota', lang)} {quota}")
        lv = [r.get(f"a.{award.id}.level") or "" for r in rec] if award.levels else None
        rows = [[str(r[f"a.{award.id}.pos"]), str(r["unit_id"]), r["name"], type_label(run, r["unit_type"], lang),
                 fixed_str(r["total"], p, p), grade_label(run, r["grade"], lang),
                 *([lv[i]] if lv is not None else []), STATUS[r[f"a.{award.id}"]][0 if lang == "zh" else 1]]
                for i, r in enumerate(rec)]
        heads = ["#", word("unit_id", lang), word("unit", lang), word("type", lang), word("total", lang),
                 word("grade", lang), *(["奖次" if lang == "zh" else "level"] if lv is not None else []),
                 word("recommended", lang)]
        out.append(tabulate(rows, headers=heads, disable_numparse=True) if rows else
                   ("  (无推荐单位)" if lang == "zh" else "  (no unit recommended)"))
        near = [r for r in rest if r[f"a.{award.id}"] != "not_applicable" and r[f"a.{award.id}"] != "tie_flag"]
        if near:
            out.append("  最接近的未入选单位:" if lang == "zh" else "  nearest misses:")
            for r in near[:misses]:
                out.append(f"  - {r['name']} ({r['unit_id']}, {fixed_str(r['total'], p, p)}): "
                           f"{reason(run, award, info, r, lang)}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _quota_text(run: Run, award: Award, lang: Lang) -> str:
    pre = f"a.{award.id}"
    per = {}
    for r in run.frame.select("unit_type", pre + ".quota", pre).to_dicts():
        if r[pre] != "not_applicable":
            per[r["unit_type"]] = r[pre + ".quota"]
    if award.quota is not None and award.quota.per == "unit_type":
        return ", ".join(f"{type_label(run, t, lang)} {n}" for t, n in per.items())
    return str(next(iter(per.values()), 0))


def awards_document(run: Run) -> dict[str, Any]:
    """The stable JSON document of a run (issue contract): scheme, manifest, units, awards."""
    p = run.scheme.meta.precision

    def num(v: int | None) -> float | None:  # exact short repr
        return float(fixed_str(v, p, p)) if v is not None else None

    units = []
    cols = ["rank", "rank_all", "order", *[c for c in run.frame.columns if c.startswith(("s.", "p."))]]
    for r in sorted(unit_rows(run, cols), key=lambda r: (r["unit_type"], r["order"])):
        units.append({
            "unit_id": str(r["unit_id"]), "name": r["name"], "type": r["unit_type"], "total": num(r["total"]),
            "grade": r["grade"], "rank": r["rank"], "rank_overall": r["rank_all"],
            "sections": {s.id: num(r[f"s.{s.id}"]) for s in run.scheme.all_sections()},
            "pools": {q.id: num(r[f"p.{q.id}"]) for q in run.scheme.pools},
            "vetoes": [{"id": v.id, "label": v.label, "source": r.get(f"xs.{v.id}")}
                       for v in run.decisions.vetoes if r.get(f"x.{v.id}")],
        })
    awards = []
    for award in run.decisions.awards:
        rec, rest = award_rows(run, award)
        info = run.awards[award.id]
        pre = f"a.{award.id}"
        awards.append({
            "id": award.id, "label": award.label, "quota": _quota_json(run, award),
            "recommended": [{"unit_id": str(r["unit_id"]), "name": r["name"], "rank": r[pre + ".pos"],
                             "total": num(r["total"]), "level": r.get(pre + ".level"), "status": r[pre]} for r in rec],
            "not_selected": [{"unit_id": str(r["unit_id"]), "status": r[pre],
                              "reason": reason(run, award, info, r, "zh"),
                              "reason_en": reason(run, award, info, r, "en")} for r in rest if r[pre] != "tie_flag"],
        })
    return {"scheme": {"id": run.scheme.meta.id, "label": run.scheme.meta.label, "year": run.scheme.meta.year},
            "manifest": run.manifest, "units": units, "awards": awards}


def _quota_json(run: Run, award: Award) -> Any:
    pre = f"a.{award.id}"
    per = {r["unit_type"]: r[pre + ".quota"] for r in run.frame.select("unit_type", pre + ".quota", pre).to_dicts()
           if r[pre] != "not_applicable"}
    if award.quota is not None and award.quota.per == "unit_type":
        return dict(sorted(per.items()))
    return next(iter(per.values()), 0)
