"""Exact display of scaled integers, and the user-interface words in Chinese and English."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

Lang = Literal["zh", "en"]


def dec(value: int | None, scale: int) -> Decimal | None:
    return None if value is None else Decimal(value).scaleb(-scale)


def fixed_str(value: int | None, scale: int, places: int | None = None) -> str:
    """(8954, 2) -> '89.54'; places pads or rounds (half-up) for display; None -> '—'."""
    d = dec(value, scale)
    if d is None:
        return "—"
    if places is not None:
        return f"{d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP):f}"
    return plain(d)


def in_lang(label: str, label_en: str, fallback: str, lang: Lang) -> str:
    """A name in the chosen language: its (Chinese) label, or in English the scheme's `label_en`, else
    `fallback` (the id; the label itself for a scheme's title)."""
    return label if lang == "zh" else (label_en or fallback)


def plain(d: Decimal) -> str:
    """Shortest exact text: 1.0500000000 -> '1.05', 20 -> '20'."""
    s = f"{d:f}"
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def points_str(value: int | None, scale: int, max_places: int = 4) -> str:
    """Item points: exact when short, else rounded to max_places with a leading ≈."""
    d = dec(value, scale)
    if d is None:
        return "—"
    short = d.quantize(Decimal(1).scaleb(-max_places), rounding=ROUND_HALF_UP)
    return plain(d) if short == d else "≈" + plain(short)


WORDS: dict[str, tuple[str, str]] = {
    "rank": ("排名", "Rank"), "unit": ("单位", "Unit"), "unit_id": ("编号", "ID"), "type": ("类型", "Type"),
    "total": ("总分", "Total"), "grade": ("等级", "Grade"), "item": ("考核项目", "Item"),
    "value": ("实际值", "Value"), "method": ("计分方法", "Method"), "points": ("得分", "Points"),
    "max": ("分值", "Max"), "why": ("说明", "Why"), "section": ("板块", "Section"), "events": ("事件", "Events"),
    "na": ("不适用", "not applicable"), "vetoes": ("一票否决", "Vetoes"), "awards": ("奖项", "Awards"),
    "recommended": ("推荐", "Recommended"), "not_selected": ("未入选", "Not selected"),
    "reason": ("原因", "Reason"), "quota": ("名额", "Quota"), "none": ("无", "none"),
    "source": ("依据", "Source"), "subtotal": ("小计", "Subtotal"), "capped": ("封顶", "capped at"),
    "floored": ("保底", "floored at"), "pool": ("加减分", "Adjustments"), "date": ("日期", "Date"),
    "event": ("事件", "Event"), "rule": ("规则", "Rule"), "status": ("状态", "Status"), "award": ("奖项", "Award"),
}


def word(key: str, lang: Lang) -> str:
    zh, en = WORDS[key]
    return zh if lang == "zh" else en
