"""Report text as Polars expressions: every unit's cells at once, with the same text that `engine.fmt` and the
per-unit wording would give. At a province (100k units) or a nation (1M) the reports are built from these
columns; text made unit by unit in Python took minutes there.

`fixed_text`, `plain_text` and `points_text` write scaled integers exactly as `fmt.fixed_str`, `fmt.plain` and
`fmt.points_str` do; `reasons` say why a unit is or is not recommended for an award; `award_units` lists an
award's units in the order the committee reads them (recommended first, then the others by how near they
came), with those reasons; `item_reason_text` says why an item scored what it did, as `explain.reason` does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import polars as pl

from . import expr as E
from .decide import AwardInfo
from .fmt import Lang
from .model import Item
from .pipeline import Run
from .rules_model import Award

STATUS = {
    "recommended": ("推荐", "recommended"),
    "tie_flag": ("名额边界并列, 提请考核委员会决定", "tie at the quota boundary: committee decides"),
    "outside_quota": ("符合条件, 超出名额", "eligible, outside the quota"),
    "not_eligible": ("不符合条件", "not eligible"),
    "vetoed": ("一票否决", "vetoed"), "not_applicable": ("不参评", "not assessed for this award"),
}
# the order of the units neither recommended nor tied at the boundary: eligible ones first
REST_ORDER = ("outside_quota", "not_eligible", "vetoed", "not_applicable")


_OPS = {">=": "≥", "<=": "≤", "!=": "≠", "==": "="}
_NAME = re.compile(r'"\w+"|\b(?:section\.|item\.|pool\.|event\.)?\w+\b')


def pretty(text: str, run: Run, lang: Lang) -> str:
    """'section.safety >= 27' -> '安全生产 ≥ 27' (labels from the scheme); English keeps the source."""
    if lang != "zh":
        return text
    labels = {f"section.{s.id}": s.label for s in run.scheme.all_sections()}
    labels.update({f"item.{i.id}": i.label for i in run.scheme.all_items()})
    labels.update({f"pool.{p.id}": p.label for p in run.scheme.pools})
    labels.update({f.id: f.label for f in run.scheme.fields.values()})
    labels.update({"total": "总分", "grade": "等级", "rank": "排名"})
    labels.update({f"event.{r['id']}": f"{r.get('label') or r['id']}次数" for r in run.scheme.raw.get("events") or []
                   if isinstance(r, dict) and isinstance(r.get("id"), str)})
    labels.update({f'"{g.id}"': g.label for g in run.decisions.grades})
    out = _NAME.sub(lambda m: labels.get(m.group(0), m.group(0)), text)
    for op, sym in _OPS.items():
        out = out.replace(f" {op} ", f" {sym} ")
    out = out.replace(" not in ", " 不属于 ").replace(" in ", " 属于 ")
    out = re.sub(r"(^|[\s(])not\s+", r"\1非 ", out)  # the language's words (labels are the scheme's)
    return out.replace(" and ", " 且 ").replace(" or ", " 或 ")


def _digits(value: pl.Expr, scale: int) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """(sign, whole part, decimals zero-padded to `scale`) of a scaled integer, as text."""
    mag = value.abs()
    k = 10**scale
    sign = pl.when(value < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    whole = (mag // k).cast(pl.String) if scale else mag.cast(pl.String)
    frac = (mag % k).cast(pl.String).str.zfill(scale) if scale else pl.lit("")
    return sign, whole, frac


def fixed_text(value: pl.Expr, scale: int, places: int | None = None) -> pl.Expr:
    """`fmt.fixed_str` of a column: (8954, 2) -> '89.54'; `places` pads or rounds (half-up, away from zero)
    for display, keeping the sign of a negative value rounded to zero ('-0.00', as Decimal does); null ->
    '—'."""
    if places is None:
        return plain_text(value, scale)
    v = value.cast(pl.Int128)
    if places >= scale:
        q = v.abs() * 10 ** (places - scale)
    else:
        k = 10 ** (scale - places)
        q = (v.abs() + k // 2) // k
    _, whole, frac = _digits(q, places)
    sign = pl.when(v < 0).then(pl.lit("-")).otherwise(pl.lit(""))  # the value's: '-0.00' keeps it
    parts = [sign, whole, pl.lit("."), frac] if places else [sign, whole]
    return pl.when(value.is_null()).then(pl.lit("—")).otherwise(pl.concat_str(parts))


def plain_text(value: pl.Expr, scale: int) -> pl.Expr:
    """`fmt.plain` of a scaled integer column: the shortest exact text (1.0500 -> '1.05', 20 -> '20');
    null -> '—'."""
    v = value.cast(pl.Int128)
    sign, whole, frac = _digits(v, scale)
    frac = frac.str.strip_chars_end("0")
    text = pl.concat_str([sign, whole, pl.when(frac != "").then(pl.lit(".") + frac).otherwise(pl.lit(""))])
    return pl.when(value.is_null()).then(pl.lit("—")).otherwise(text)


def _shown(value: pl.Expr) -> pl.Expr:
    """A cell as Python's f-string writes it ('None' when there is none)."""
    return value.cast(pl.String).fill_null("None")


def type_text(run: Run, lang: Lang, col: str = "unit_type") -> pl.Expr:
    """`report.type_label` of a column: the scheme's label in Chinese, the type id in English."""
    t = pl.col(col).cast(pl.String)
    if lang != "zh":
        return t
    return t.replace_strict(dict(run.scheme.unit_types), default=t, return_dtype=pl.String)


def grade_text(run: Run, lang: Lang, col: str = "grade") -> pl.Expr:
    """`report.grade_label` of a column: the grade's label (its id in English), '—' for none."""
    g = pl.col(col).cast(pl.String)
    labels = {gr.id: (gr.label if lang == "zh" else gr.id) for gr in run.decisions.grades}
    return g.replace_strict(labels, default=g, return_dtype=pl.String).fill_null("—")


def status_text(status: pl.Expr, lang: Lang) -> pl.Expr:
    """An award status column (a.<award>) in words."""
    return status.cast(pl.String).replace_strict({s: w[0 if lang == "zh" else 1] for s, w in STATUS.items()},
                                                 return_dtype=pl.String)


def type_rank(run: Run) -> pl.Expr:
    """Each unit's type's place among the scheme's unit types (as declared)."""
    return pl.col("unit_type").cast(pl.String).replace_strict(
        {t: i for i, t in enumerate(run.scheme.unit_types)}, default=99, return_dtype=pl.Int64)


def report_order(run: Run) -> list[pl.Expr]:
    """The order of the tables of units: by unit type as declared, then by position (ties by id)."""
    return [type_rank(run), pl.col("order"), pl.col("unit_id").cast(pl.String)]


def reasons(run: Run, award: Award, info: AwardInfo, lang: Lang) -> dict[str, pl.Expr]:
    """Why a unit is or is not recommended for `award`, in `lang`: one expression for each status, to be
    evaluated on the units of that status only (`award_units` does)."""
    zh = lang == "zh"
    pre = f"a.{award.id}"
    pos, quota = _shown(pl.col(f"{pre}.pos")), _shown(pl.col(f"{pre}.quota"))
    level = pl.col(f"{pre}.level")
    lvl = pl.when(level.is_not_null() & (level != "")).then(pl.lit(" ") + level).otherwise(pl.lit(""))
    lit = pl.lit
    recommended = (pl.concat_str([lit("推荐"), lvl, lit(": 第 "), pos, lit(" 位, 名额 "), quota]) if zh else
                   pl.concat_str([lit("recommended"), lvl, lit(": place "), pos, lit(" of "), quota]))
    tie = (pl.concat_str([lit("第 "), pos, lit(" 位, 与名额边界单位并列 (名额 "), quota,
                          lit("), 提请考核委员会决定")]) if zh else
           pl.concat_str([lit("place "), pos, lit(", tied at the quota boundary ("), quota,
                          lit(" places): committee decides")]))
    head = (pl.concat_str([lit("符合条件, 排第 "), pos, lit(" 位, 名额 "), quota]) if zh else
            pl.concat_str([lit("eligible, place "), pos, lit(", quota "), quota]))
    gap = pl.col(f"{pre}.gap")
    scale = info.gap_scale if info.gap_scale is not None else run.scheme.meta.precision
    key = pretty(E.to_source(award.rank_by[0].expr.tree), run, lang)
    behind = (pl.concat_str([lit(f"; {key}比末位入选单位低 "), fixed_text(gap, scale, scale)]) if zh else
              pl.concat_str([lit(f"; {key} "), fixed_text(gap, scale, scale), lit(" behind the last one in")]))
    level_with = (lit(f"; {key}与末位入选单位相同, 按排序规则排在其后") if zh else
                  lit(f"; {key} ties with the last one in; placed after it by the tie-break"))
    vetoes = [pl.when(pl.col(f"x.{v.id}")).then(pl.concat_str([lit(f"{v.label} ("), _shown(pl.col(f"xs.{v.id}")),
                                                                lit(")")]))
              for v in run.decisions.vetoes if v.blocks == "all" or award.id in v.blocks]
    vetoed = lit("一票否决: " if zh else "vetoed: ") + (
        pl.concat_str(vetoes, separator="; ", ignore_nulls=True).fill_null("") if vetoes else lit(""))
    na = (type_text(run, lang) + lit("不参评此奖项") if zh else
          pl.concat_str([lit("unit type "), pl.col("unit_type").cast(pl.String),
                         lit(" is not assessed for this award")]))
    return {"recommended": recommended, "tie_flag": tie,
            "outside_quota": pl.when(gap.is_null()).then(head).when(gap == 0).then(head + level_with)
            .otherwise(head + behind), "vetoed": vetoed,
            "not_applicable": na, "not_eligible": _failed(run, pre, info, lang)}


def _failed(run: Run, pre: str, info: AwardInfo, lang: Lang) -> pl.Expr:
    """'not met: ' and the conditions a unit fails, most points short first (a condition that is no number
    comparison, or whose distance is unknown, before all), ties in the conditions' order."""
    zh = lang == "zh"
    conds = info.conditions
    if not conds:
        return pl.lit("未达条件: " if zh else "not met: ")
    top = max((c.gap_scale or 0) for c in conds)
    failed, numeric, key, text = [], [], [], []
    for k, cond in enumerate(conds):
        failed.append(~pl.col(f"{pre}.c{k}").fill_null(False))
        label = pretty(cond.text, run, lang)
        if cond.gap_scale is None:
            numeric.append(pl.lit(False))
            key.append(pl.lit(0, dtype=pl.Int128))
            text.append(pl.lit(f"{label} 不满足" if zh else label))
            continue
        g = pl.col(f"{pre}.g{k}")
        numeric.append(g.is_not_null())
        key.append(g.cast(pl.Int128) * 10 ** (top - cond.gap_scale))
        short = pl.concat_str([pl.lit(f"{label} ({'差' if zh else 'short by'} "), plain_text(g, cond.gap_scale),
                               pl.lit(")")])
        text.append(pl.when(g.is_not_null()).then(short).otherwise(pl.lit(f"{label} 不满足" if zh else label)))
    for k, cond in enumerate(conds):  # unknown, because a value it reads is empty: said so, not "not met"
        if cond.fields:
            empty = pl.concat_str([pl.when(pl.col(f).is_null()).then(pl.lit(run.scheme.fields[f].label if zh else f))
                                   for f in cond.fields], separator="、" if zh else ", ", ignore_nulls=True)
            unknown = pl.concat_str([pl.lit(f"{pretty(cond.text, run, lang)} {'无法判断' if zh else 'unknown'} ("),
                                     empty, pl.lit(" 为空)" if zh else " empty)")])
            text[k] = pl.when(pl.col(f"{pre}.c{k}").is_null() & (empty != "")).then(unknown).otherwise(text[k])

    def before(j: int, k: int) -> pl.Expr:  # does failed condition j come before failed condition k?
        unknown_j, unknown_k = ~numeric[j], ~numeric[k]
        first = (unknown_j & ~unknown_k) | (numeric[j] & numeric[k] & (key[j] > key[k]))
        if j > k:
            return first
        return first | (unknown_j & unknown_k) | (numeric[j] & numeric[k] & (key[j] == key[k]))

    n = len(conds)
    place = [pl.sum_horizontal([(failed[j] & before(j, k)).cast(pl.Int32) for j in range(n) if j != k])
             if n > 1 else pl.lit(0, dtype=pl.Int32) for k in range(n)]
    ordered = []
    for p in range(n):  # the condition in place p, if any
        pick: Any = pl.when(failed[0] & (place[0] == p)).then(text[0])
        for k in range(1, n):
            pick = pick.when(failed[k] & (place[k] == p)).then(text[k])
        ordered.append(pick)
    return pl.lit("未达条件: " if zh else "not met: ") + pl.concat_str(ordered, separator="; ",
                                                                   ignore_nulls=True).fill_null("")


def award_units(run: Run, award: Award, langs: Sequence[Lang], others: int | None = None) -> pl.DataFrame:
    """An award's units in the committee's order: the recommended and boundary ties by type and place, then
    the others (eligible ones first; then by status, distance to the last unit in, total and id), with the
    columns the reports show: `rec` (in the first part?), unit_id, name, unit_type, total, grade, the
    award's status, place, level and quota, and `reason_<lang>` for each of `langs` (each status's wording
    made for the units of that status only). `others`: only the first so many units of each other status
    (of each unit type, when the award's places are per type): a text report shows the nearest misses, not a
    million reasons."""
    pre = f"a.{award.id}"
    info = run.awards[award.id]
    cols = [c for c in dict.fromkeys(["unit_id", "name", "unit_type", "total", "grade",
                                      *[c for c in run.frame.columns if c == pre or c.startswith(pre + ".")],
                                      *[c for v in run.decisions.vetoes for c in (f"x.{v.id}", f"xs.{v.id}")]])
            if c in run.frame.columns]
    read = [f for c in info.conditions for f in c.fields if f in run.frame.columns and f not in cols]  # by reasons
    frame = run.frame.select(*cols, *dict.fromkeys(read))
    status = pl.col(pre).cast(pl.String)
    per_type = award.quota is not None and award.quota.per == "unit_type"
    words = {lang: reasons(run, award, info, lang) for lang in langs}

    def worded(part: pl.DataFrame, statuses: Sequence[str]) -> pl.DataFrame:
        return part.with_columns(
            (pl.when(status == statuses[0]).then(words[lang][statuses[0]]).otherwise(words[lang][statuses[1]])
             if len(statuses) > 1 else words[lang][statuses[0]]).alias(f"reason_{lang}") for lang in langs)

    rec = frame.filter(status.is_in(["recommended", "tie_flag"])) \
        .sort([*([type_rank(run)] if per_type else []), pl.col(f"{pre}.pos")], maintain_order=True)
    parts = [worded(rec, ["recommended", "tie_flag"]).with_columns(rec=pl.lit(True))]
    rest = [frame.lazy().filter(status == st).sort(  # the others, eligible ones first; one query for them all
        [pl.col(f"{pre}.gap").fill_null(1 << 62), -pl.col("total").fill_null(0), pl.col("unit_id").cast(pl.String)],
        maintain_order=True) for st in REST_ORDER]
    if others is not None:  # the first few (of each unit type, when the places are per type): a partial sort
        rest = [lf.filter(pl.int_range(pl.len()).over("unit_type") < others) if per_type else lf.head(others)
                for lf in rest]
    parts += [worded(part, [st]).with_columns(rec=pl.lit(False)) for st, part in zip(REST_ORDER, pl.collect_all(rest),
                                                                                      strict=True)]
    return pl.concat(parts).drop(dict.fromkeys(read))


def points_text(value: pl.Expr, scale: int, max_places: int = 4) -> pl.Expr:
    """`fmt.points_str` of a column: exact when it has at most `max_places` decimals, else rounded half-up
    (away from zero) to them with a leading '≈'; null -> '—'."""
    if scale <= max_places:
        return plain_text(value, scale)
    k = 10 ** (scale - max_places)
    v = value.cast(pl.Int128)
    q = (v.abs() + k // 2) // k
    rounded = pl.when(v < 0).then(pl.lit(0, dtype=pl.Int128) - q).otherwise(q)
    return (pl.when(value.is_null()).then(pl.lit("—")).when(v % k == 0).then(plain_text(value, scale))
            .otherwise(pl.lit("≈") + plain_text(rounded, max_places)))


def value_text(value: pl.Expr, dtype: pl.DataType | None, scale: int) -> pl.Expr:
    """`explain.value_str` of a column of type `dtype` (None: no such column, every value missing)."""
    if dtype is None:
        return pl.lit("—")
    if dtype == pl.Boolean:
        return pl.when(value).then(pl.lit("是")).when(~value).then(pl.lit("否")).otherwise(pl.lit("—"))
    if dtype == pl.String:
        return value.fill_null("—")
    return points_text(value, scale)


@dataclass(frozen=True)
class _Exact:
    """A scaled Int128 column and its scale, compared with and subtracted from Decimals exactly (the
    arithmetic an explanation shows: `10 − 0.2 × 60 = -2`)."""

    v: pl.Expr
    scale: int

    def _at(self, d: Decimal) -> tuple[pl.Expr, pl.Expr]:
        s = max(self.scale, -int(d.as_tuple().exponent))
        return self.v * 10 ** (s - self.scale), pl.lit(int(d.scaleb(s)), dtype=pl.Int128)

    def gt(self, d: Decimal) -> pl.Expr:
        a, b = self._at(d)
        return (a > b).fill_null(False)

    def lt(self, d: Decimal) -> pl.Expr:
        a, b = self._at(d)
        return (a < b).fill_null(False)

    def rsub(self, d: Decimal) -> _Exact:
        s = max(self.scale, -int(d.as_tuple().exponent))
        a, b = self._at(d)
        return _Exact(b - a, s)

    @property
    def text(self) -> pl.Expr:
        return plain_text(self.v, self.scale)


def item_reason_text(item: Item, value: pl.Expr, dtype: pl.DataType | None, scale: int, points: pl.Expr,  # noqa: C901 - one case per method kind
                     pts_scale: int, not_applicable: pl.Expr) -> pl.Expr:
    """`explain.reason` (in Chinese) of an item for every unit whose points are not missing: the value, the
    method's rule and the points ('0.95 ≥ 0.95 → 12', '8 − 3 × 1 = 5')."""
    from .explain import _n, _neg, compared  # noqa: PLC0415 - the per-value wording this holds to

    p = item.method.params
    got = points_text(points, pts_scale)
    vs = value_text(value, dtype, scale)
    number = dtype is not None and dtype.is_integer()

    def at_least(th: Any, sym: str) -> pl.Expr:  # does the value hold `value sym th`? (never, when it is no number)
        if not number:
            return pl.lit(False)
        t = Decimal(th)
        s = max(scale, -int(t.as_tuple().exponent))  # a scale both are whole at
        lhs, rhs = value.cast(pl.Int128) * 10 ** (s - scale), pl.lit(int(t.scaleb(s)), dtype=pl.Int128)
        holds: dict[str, pl.Expr] = {"≥": lhs >= rhs, ">": lhs > rhs, "≤": lhs <= rhs, "<": lhs < rhs}
        return holds[sym].fill_null(False)

    def text(*parts: str | pl.Expr) -> pl.Expr:
        return pl.concat_str([pl.lit(x) if isinstance(x, str) else x for x in parts])

    def times(k: Decimal) -> _Exact:  # the value times a constant, exactly (the value is a number column)
        s = max(0, -int(k.as_tuple().exponent))
        return _Exact(value.cast(pl.Int128) * int(k.scaleb(s)), scale + s)

    kind = item.method.kind
    out: pl.Expr | None = None
    if kind in ("bands", "threshold"):
        for key, sym in (("at_least", "≥"), ("above", ">"), ("at_most", "≤"), ("below", "<")):
            if p.get(key) is None:
                continue
            if kind == "threshold":
                ok = at_least(p[key], sym)
                out = text(vs, " ", pl.when(ok).then(pl.lit(sym)).otherwise(pl.lit(_neg(sym))), f" {_n(p[key])} → ",
                           got)
            else:
                out = text(vs, " 未达任何档次 → ", got)
                for th, pts in reversed(p[key]):
                    out = pl.when(at_least(th, sym)).then(text(vs, f" {sym} {_n(th)} → {_n(pts)}")).otherwise(out)
            break
    elif kind == "proportional":
        cap, floor = p.get("cap", Decimal(1)), p.get("floor")
        capped = at_least(cap, "≥") if cap is not None else pl.lit(False)
        note = pl.when(capped).then(pl.lit(f"(封顶 {_n(cap)})")).otherwise(pl.lit(""))
        if floor is not None and number:
            below = times(Decimal(item.points or 0)).lt(Decimal(floor))
            note = pl.when(~capped & below).then(pl.lit(f"(保底 {_n(floor)})")).otherwise(note)
        out = text(f"{_n(item.points)} × ", vs, note, " = ", got)
    elif kind == "deduct":
        base, each = Decimal(p.get("base", item.points)), Decimal(p["each"])
        most, floor = (Decimal(p["max"]) if p.get("max") is not None else base), Decimal(p.get("floor", 0))
        head = f"{_n(base)} − {_n(each)} × "
        out = text(head, vs, " = ", got)
        if number:
            ded = times(each)
            out = (pl.when(ded.gt(most)).then(text(head, vs, ": 扣 ", ded.text, f", 最多扣 {_n(most)} → ", got))
                   .when(ded.rsub(base).lt(floor)).then(text(head, vs, " = ", ded.rsub(base).text,
                                                             f", 保底 {_n(floor)} → ", got))
                   .otherwise(out))
    elif kind == "count":
        each, most = Decimal(p["each"]), Decimal(p.get("max", item.points))
        out = text(f"{_n(each)} × ", vs, " = ", got, f" (上限 {_n(most)})")
        if number:
            made = times(each)
            out = pl.when(made.gt(most)).then(text(f"{_n(each)} × ", vs, " = ", made.text, f", 上限 {_n(most)} → ",
                                                   got)).otherwise(out)
    elif kind == "steps":
        tgt = p.get("target", Decimal(1))
        side = pl.when(at_least(tgt, "≥")).then(pl.lit("达到目标")).otherwise(pl.lit("低于目标"))
        out = text(vs, " ", side, f" {_n(tgt)} → ", got)
    elif kind in ("pass_fail", "lookup"):
        out = text(vs, " → ", got)
    elif kind in ("rank", "share_of_leader", "efficacy"):
        out = text(f"{compared(item, 'zh')}, 实际值 ", vs, " → ", got)
    if out is None:  # any other method
        out = got if dtype is None else pl.when(value.is_null()).then(got).otherwise(text(vs, " → ", got))
    return pl.when(not_applicable).then(text("不适用, 按规定计 ", got)).otherwise(out)
