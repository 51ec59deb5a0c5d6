"""Why an item scored what it did, in words (for one unit: explain is a filter of the findings)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .fmt import Lang, dec, plain, points_str
from .methods import METHODS
from .model import Item


def value_str(value: Any, scale: int) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, str):
        return value
    return points_str(value, scale)


def method_label(item: Item, lang: Lang) -> str:
    return METHODS[item.method.kind].label if lang == "zh" else item.method.kind


def _n(d: Any) -> str:
    return plain(Decimal(d)) if d is not None else "—"


def reason(item: Item, value: Any, scale: int, points: int | None, pts_scale: int, lang: Lang,  # noqa: C901 - one case per method kind
           not_applicable: bool = False) -> str:
    """A short explanation such as '0.95 ≥ 0.95 → 12' or '8 − 3 × 1 = 5'."""
    zh = lang == "zh"
    p = item.method.params
    got = points_str(points, pts_scale)
    v = dec(value, scale) if isinstance(value, int) and not isinstance(value, bool) else None
    vs = value_str(value, scale)
    if points is None:
        return "不适用本单位" if zh else "does not apply to this unit"
    if not_applicable:
        return (f"不适用, 按规定计 {got}" if zh else f"not applicable → {got}")
    kind = item.method.kind
    if kind in ("bands", "threshold"):
        for key, sym in (("at_least", "≥"), ("above", ">"), ("at_most", "≤"), ("below", "<")):
            if p.get(key) is None:
                continue
            if kind == "threshold":
                ok = v is not None and _holds(v, sym, p[key])
                return f"{vs} {sym if ok else _neg(sym)} {_n(p[key])} → {got}"
            for th, pts in p[key]:
                if v is not None and _holds(v, sym, th):
                    return f"{vs} {sym} {_n(th)} → {_n(pts)}"
            return (f"{vs} 未达任何档次 → {got}" if zh else f"{vs} meets no band → {got}")
    if kind == "proportional":
        cap = p.get("cap", Decimal(1))
        capped = cap is not None and v is not None and v >= cap
        note = (f"(封顶 {_n(cap)})" if zh else f"(capped at {_n(cap)})") if capped else ""
        return f"{_n(item.points)} × {vs}{note} = {got}"
    if kind == "deduct":
        base = p.get("base", item.points)
        return f"{_n(base)} − {_n(p['each'])} × {vs} = {got}"
    if kind == "count":
        return f"{_n(p['each'])} × {vs} = {got}" + (f" ({'上限' if zh else 'max'} {_n(p.get('max', item.points))})")
    if kind == "steps":
        tgt = p.get("target", Decimal(1))
        side = ("达到目标" if zh else "at or above target") if v is not None and v >= tgt else \
            ("低于目标" if zh else "below target")
        return f"{vs} {side} {_n(tgt)} → {got}"
    if kind == "pass_fail":
        return f"{vs} → {got}"
    if kind == "lookup":
        return f"{vs} → {got}"
    if kind in ("rank", "share_of_leader", "efficacy"):
        return (f"按全体单位比较, 实际值 {vs} → {got}" if zh else f"compared across units, value {vs} → {got}")
    return f"{vs} → {got}" if value is not None else got


def _holds(v: Decimal, sym: str, th: Any) -> bool:
    t = Decimal(th)
    return {"≥": v >= t, ">": v > t, "≤": v <= t, "<": v < t}[sym]


def _neg(sym: str) -> str:
    return {"≥": "<", ">": "≤", "≤": ">", "<": "≥"}[sym]
