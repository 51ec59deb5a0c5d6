"""Headers -> field ids: a table may head a column by the field id or by its Chinese label.

A header matches a field by its id, its label, or its label with a unit in parentheses added
('完成投资(万元)' for label '完成投资'); full-width （） and spaces are ignored. Differing units
('亿元' vs '万元') are an error, as are two headers giving the same field. Unknown columns stay.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import polars as pl

from .errors import KaoheError, Loc, Problem

_UNIT = re.compile(r"^(.+?)\(([^()]*)\)$")


def _norm(s: str) -> str:
    """NFKC (full-width （）％ -> ASCII) without any whitespace, and without a leading * (a table's mark of a
    required column: *排查安全隐患数)."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", s)).lstrip("*")


def _split_unit(s: str) -> tuple[str, str | None]:
    m = _UNIT.match(_norm(s))
    return (m[1], m[2]) if m else (_norm(s), None)


def wanted_columns(fields: Mapping[str, str], others: Iterable[str]) -> Callable[[str], bool]:
    """Which headers a table is read for: a field's id or label (a label may carry a unit, so headers that
    start with one count), and `others` (the id, name and type columns)."""
    names = {_norm(n) for n in (*fields, *fields.values(), *others)}
    heads = tuple(_norm(v) for v in fields.values())
    return lambda h: h in names or _norm(h) in names or _norm(h).startswith(heads)  # (＊类型 is 类型)


def unit_aliases(id_col: str, name_col: str, type_col: str, fields: Iterable[str]) -> dict[str, str]:
    """Chinese headers of a units table's id, name and type columns (as the template's 说明 sheet names
    them: 单位编号, 单位名称, 单位类型) -> the scheme's column names; none that is a field's id."""
    words = {"单位编号": id_col, "编号": id_col, "单位代码": id_col, "单位类型": type_col, "单位类别": type_col,
             "类型": type_col, "类别": type_col}
    if name_col != id_col:  # (a scheme whose units are named by their id has no name column)
        words |= {"单位名称": name_col, "名称": name_col}
    taken = set(fields)
    return {h: c for h, c in words.items() if h not in taken}


EVENT_ALIASES = {"事件编号": "event_id", "编号": "event_id", "日期": "date", "发生日期": "date", "单位编号": "unit_id",
                 "事件类型": "kind", "事件类别": "kind", "类型": "kind", "类别": "kind"}  # the template's words


def map_columns(df: pl.DataFrame, fields: Mapping[str, str], *, path: str | Path,
                aliases: Mapping[str, str] | None = None) -> pl.DataFrame:
    """Rename headers written as a field's label (`fields`: id -> label) to the field id, and headers in
    `aliases` (header -> column name: 单位编号 -> unit_id) to their column."""
    file = str(path)
    exact: dict[str, str] = {}
    for field_id, label in fields.items():
        exact.setdefault(_norm(label), field_id)
    exact.update({_norm(fid): fid for fid in fields})
    for h, col in (aliases or {}).items():
        if col not in df.columns:  # a table with unit_id and an unused 编号 column keeps that column as it is
            exact.setdefault(_norm(h), col)
    bases: dict[str, list[str]] = {}
    for field_id, label in fields.items():
        bases.setdefault(_split_unit(label)[0], []).append(field_id)
    problems: list[Problem] = []
    owner: dict[str, str] = {}
    renames: dict[str, str] = {}
    for h in df.columns:
        fid = h if h in fields else exact.get(_norm(h))
        if fid is None:
            base, unit = _split_unit(h)
            cands = bases.get(base, [])
            same = [f for f in cands if _split_unit(fields[f])[1] in (None, unit) or unit is None]
            if len(same) == 1:
                fid = same[0]
            elif len(same) > 1:
                which = ", ".join(f"{f} ({fields[f]})" for f in same)
                problems.append(Problem(Loc(file, row=1, column=h), f"column '{h}' could be any of the fields {which}",
                                        hint="head it with the field id instead",
                                        zh=(f"列 '{h}' 可以是以下任一字段: {which}", "请改用字段编号作列名")))
                continue
            elif cands:
                f = cands[0]
                want = _split_unit(fields[f])[1]
                problems.append(Problem(Loc(file, row=1, column=h), f"column '{h}' looks like field {f} "
                                        f"({fields[f]}) but its unit is '{unit}', not '{want}'",
                                        hint=f"convert the values to {want} and fix the header",
                                        zh=(f"列 '{h}' 像是字段 {f} ({fields[f]}), 但单位是 '{unit}', 不是 '{want}'",
                                            f"请把数值换算为{want}, 并改正列名")))
                continue
        if fid is None:
            continue
        if fid in owner:
            what = f"{fid} ({fields[fid]})" if fid in fields else fid
            problems.append(Problem(Loc(file, row=1, column=h), f"columns '{owner[fid]}' and '{h}' both give field "
                                    f"{what}", hint="delete or rename one of them",
                                    zh=(f"列 '{owner[fid]}' 和 '{h}' 都是字段 {what}", "请删除其中一列, 或改名")))
            continue
        owner[fid] = h
        if h != fid:
            renames[h] = fid
    if problems:
        raise KaoheError(problems)
    return df.rename(renames)
