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
        cap, floor = p.get("cap", Decimal(1)), p.get("floor")
        capped = cap is not None and v is not None and v >= cap
        note = (f"(封顶 {_n(cap)})" if zh else f"(capped at {_n(cap)})") if capped else ""
        if floor is not None and v is not None and not capped and Decimal(item.points or 0) * v < Decimal(floor):
            note = f"(保底 {_n(floor)})" if zh else f"(floor {_n(floor)})"
        return f"{_n(item.points)} × {vs}{note} = {got}"
    if kind == "deduct":  # the arithmetic as it went: a deduction over its most, a result under its floor
        base, each = Decimal(p.get("base", item.points)), Decimal(p["each"])
        most = Decimal(p["max"]) if p.get("max") is not None else base
        head = f"{_n(base)} − {_n(each)} × {vs}"
        if v is not None and each * v > most:
            return f"{head}: {'扣' if zh else 'deduction'} {plain(each * v)}, {'最多扣' if zh else 'at most'} " \
                   f"{_n(most)} → {got}"
        if v is not None and base - each * v < Decimal(p.get("floor", 0)):
            return f"{head} = {plain(base - each * v)}, {'保底' if zh else 'floor'} {_n(p.get('floor', 0))} → {got}"
        return f"{head} = {got}"
    if kind == "count":
        each, most = Decimal(p["each"]), Decimal(p.get("max", item.points))
        if v is not None and each * v > most:
            return f"{_n(each)} × {vs} = {plain(each * v)}, {'上限' if zh else 'max'} {_n(most)} → {got}"
        return f"{_n(each)} × {vs} = {got}" + (f" ({'上限' if zh else 'max'} {_n(most)})")
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
        return f"{compared(item, lang)}, {'实际值' if zh else 'value'} {vs} → {got}"
    return f"{vs} → {got}" if value is not None else got


def compared(item: Item, lang: Lang) -> str:
    """Which units an item that compares units (rank, share_of_leader, efficacy) compares a unit with."""
    within = list(item.method.params.get("within") or ())
    if not within:
        return "按全体单位比较" if lang == "zh" else "compared across all units"
    if lang == "zh":
        return "按同类型单位比较" if within == ["unit_type"] else f"按 {'、'.join(within)} 相同的单位比较"
    return f"compared within {', '.join(within)}"


def _holds(v: Decimal, sym: str, th: Any) -> bool:
    t = Decimal(th)
    return {"≥": v >= t, ">": v > t, "≤": v <= t, "<": v < t}[sym]


def _neg(sym: str) -> str:
    return {"≥": "<", ">": "≤", "≤": ">", "<": "≥"}[sym]
