"""read + validate: a units table -> typed fixed-point columns, or every problem at once.

Input columns may be text (CSV/XLSX, parsed here exactly from the digits: no float ever
touches a value) or typed (Parquet). Numbers become Int64 at the field's declared scale;
'95.5%' is read as 0.955. Problems name the file, the row as a spreadsheet user counts
it (header = row 1) and the column.
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from difflib import get_close_matches
from typing import Any

import polars as pl

from .errors import KaoheError, Loc, Notice, Problem
from .io_columns import EVENT_ALIASES
from .io_read import MERGED
from .model import Field, Scheme

MAX_LISTED = 30  # problems listed per kind before "... and N more"
MAX_MISSING = 8  # missing columns listed one by one; more suggests the wrong file
TRUE_WORDS = ("true", "1", "yes", "y", "是", "√", "有", "完成", "已完成", "１")  # (１: full-width, as typed in Chinese)
FALSE_WORDS = ("false", "0", "no", "n", "否", "×", "无", "未完成", "０")
_NUM = r"^\s*([+-]?)(\d*)(?:\.(\d*))?\s*(%?)\s*$"
_FULL_WIDTH = {**{chr(0xFF10 + i): str(i) for i in range(10)}, "．": ".", "－": "-", "＋": "+", "％": "%"}


@dataclass(frozen=True)
class Units:
    """Validated units: `frame` has _row (the spreadsheet row), unit_id, name, unit_type and one
    fixed-point column per field."""

    frame: pl.DataFrame
    path: str


def absent_fields(scheme: Scheme, columns: Iterable[str], unknown: Iterable[str], path: str) -> None:
    """The optional fields the table has no column for. One whose id or label an unknown header is close to
    is a misspelt header: refused (without it every unit's value would be empty, and each item reading it
    score as not applicable: 7 points to every village for a mistyped 村集体经济收入). The others are said
    (a `Notice`): a table may leave out a field it has no data for."""
    have = set(columns)
    cols = scheme.columns
    if cols.id not in have or cols.type not in have or any(f.required and f.id not in have
                                                           for f in scheme.fields.values()):
        return  # the table lacks columns it must have: that is said (prepare_units), not the optional ones
    absent = [f for f in scheme.fields.values() if not f.required and not f.required_for and f.id not in have]
    if not absent:
        return
    heads = {_norm_head(h): h for h in unknown}
    problems, quiet = [], []
    for f in absent:
        close = get_close_matches(_norm_head(f.id), list(heads), n=1, cutoff=0.8) or \
            get_close_matches(_norm_head(f.label), list(heads), n=1, cutoff=0.6)
        if close:
            h = heads[close[0]]
            problems.append(Problem(Loc(path, row=1, column=h), f"column '{h}' is no column of the scheme; it "
                                    f"looks like field {f.id} ({f.label}), which has no column: every unit's value "
                                    "would be empty", hint=f"head the column '{f.id}' or '{f.label}'",
                                    zh=(f"列 '{h}' 不是方案中的列; 它像是字段 {f.id} ({f.label}), 而该字段没有列: "
                                        "每个单位的值都将为空", f"请把列名改为 '{f.id}' 或 '{f.label}'")))
        else:
            quiet.append(f)
    if problems:
        raise KaoheError(problems)
    names = ", ".join(f"{f.id} ({f.label})" for f in quiet)
    warnings.warn(Notice(Problem(Loc(path, row=1), f"no column for the optional field{'s' if len(quiet) > 1 else ''} "
                                 f"{names}: every unit's value is empty, and the items reading "
                                 f"{'them' if len(quiet) > 1 else 'it'} score as the scheme says for an empty value",
                                 hint="add the column if the data has it",
                                 zh=(f"选填字段 {names} 没有列: 每个单位的值都为空, "
                                     "读取它的考核项目按方案对空值的规定计分", "数据中有这一项的, 请加上这一列"))),
                  stacklevel=2)


def _without_blank_rows(df: pl.DataFrame, path: str) -> tuple[pl.DataFrame, pl.Expr]:
    """`df` without its wholly blank rows, and the expression of the remaining rows' spreadsheet row numbers.
    A blank row between groups of units (村, 社区, 镇属单位) holds nothing to lose; each of its cells used to
    be refused ('empty cell for unit None'). They are skipped and said (a `Notice`)."""
    every = pl.int_range(2, pl.len() + 2, dtype=pl.UInt32)
    if df.height == 0 or df.width == 0:
        return df, every
    blank = df.select(pl.all_horizontal(pl.all().is_null()).alias("b")).to_series()
    if not blank.any():
        return df, every
    at = (blank.arg_true() + 2).to_list()
    shown = ", ".join(str(r) for r in at[:10])
    more = f" and {len(at) - 10} more" if len(at) > 10 else ""
    more_zh = f" 等 {len(at)} 行" if len(at) > 10 else ""
    warnings.warn(Notice(Problem(Loc(path), f"blank row{'s' if len(at) > 1 else ''} {shown}{more} inside the table "
                                 "skipped", zh=(f"表内的空行 (第 {shown} 行{more_zh}) 已跳过", ""))), stacklevel=3)
    kept = pl.Series(range(2, df.height + 2), dtype=pl.UInt32).filter(~blank)
    return df.filter(~blank), pl.lit(kept)


TOTAL_WORDS = ("合计", "总计", "小计", "累计", "平均", "平均值", "total", "sum", "subtotal", "average")


def totals_rows(cols: list[str]) -> pl.Expr:
    """The text of the first of the String columns `cols` that reads 合计/平均/Total (`TOTAL_WORDS`, spaces and
    case aside), or null: a cheap literal look first, the exact test only on the rows it leaves."""
    hint = pl.any_horizontal(pl.col(c).str.contains_any(["计", "平均", "total", "sum", "average"],
                                                         ascii_case_insensitive=True) for c in cols)
    said = pl.coalesce([pl.when(pl.col(c).str.replace_all(r"\s", "").str.to_lowercase().is_in(list(TOTAL_WORDS)))
                        .then(pl.col(c)) for c in cols])
    return pl.when(hint.fill_null(False)).then(said)


def _no_totals_rows(df: pl.DataFrame, row: pl.Expr, scheme: Scheme, path: str) -> None:
    """A 合计/平均 row under (or inside) the table is no unit: refused once, by its row, instead of one problem
    per column ('fill in 签订安全生产责任书 for unit 合计')."""
    cols = [c for c in dict.fromkeys((scheme.columns.id, scheme.columns.name, scheme.columns.type))
            if c in df.columns and df.schema[c] == pl.String]
    if not cols:
        return
    found = df.select(row.alias("r"), totals_rows(cols).alias("w")).filter(pl.col("w").is_not_null())
    if found.height:
        raise KaoheError([Problem(Loc(path, row=r), f"this row looks like a totals row ('{w}'), not a unit",
                                  hint="delete the row: a run reads units only, and adds up what it needs itself",
                                  zh=(f"这一行像是合计行 ('{w}'), 不是单位",
                                      "请删除这一行: 程序只读取单位, 需要的合计由它自己计算"))
                          for r, w in found.head(MAX_LISTED).iter_rows()])


def _norm_head(h: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", h)).lower()


def prepare_units(df: pl.DataFrame, scheme: Scheme, *, path: str, release: bool = False) -> Units:
    """Parse and validate. With `release` the caller gives `df` up: each raw column is dropped from it as
    soon as its field is parsed and checked, so that about one copy of the data is held, not two."""
    problems: list[Problem] = []
    cols = scheme.columns
    needed = [cols.id, cols.type] + [f.id for f in scheme.fields.values() if f.required or f.required_for]
    missing = [c for c in needed if c not in df.columns]
    if missing and {"event_id", "date", "kind"} <= {EVENT_ALIASES.get(h.strip(), _norm_head(h)) for h in df.columns}:
        raise KaoheError([Problem(Loc(path, row=1), "this looks like an event log (it has event_id, date and kind "
                                  "columns), not a units table", hint="are --data and --events swapped?",
                                  zh=("这像是事件记录 (有事件编号、日期、事件类型列), 不是单位数据表",
                                      "--data 和 --events 是否填反了?"))])
    known = {*scheme.fields, cols.id, cols.name, cols.type}
    heads = {_norm_head(h): h for h in df.columns if h not in known}  # headers the scheme does not know
    for c in missing[:MAX_MISSING]:
        label = scheme.fields[c].label if c in scheme.fields else {cols.id: "单位编号", cols.type: "单位类型"}[c]
        head = f"'{c}'" + (f" ({label})" if label else "")
        close = get_close_matches(_norm_head(c), list(heads), n=1, cutoff=0.8) or \
            get_close_matches(_norm_head(label), list(heads), n=1, cutoff=0.6)
        if close:  # a misspelt header (排查安全隐患 for 排查安全隐患数): named, never a column the table has
            h = heads[close[0]]
            problems.append(Problem(Loc(path, row=1, column=h), f"missing column {head}: the column '{h}' looks "
                                    "like it", hint=f"head it '{label}' (or '{c}')",
                                    zh=(f"缺少列 {head}: 列 '{h}' 像是它", f"请把列名改为 '{label}' (或 '{c}')")))
            continue
        problems.append(Problem(Loc(path, row=1), f"missing column {head}",
                                hint="add the column, headed by the field id or label",
                                zh=(f"缺少列 {head}", f"请加上这一列, 列名写 '{label}' (或 '{c}')")))
    if len(missing) > MAX_MISSING:
        more = len(missing) - MAX_MISSING
        problems.append(Problem(Loc(path, row=1), f"... and {more} more missing columns: "
                                f"{len(missing)} of the {len(needed)} columns '{scheme.meta.label}' needs",
                                hint="is this the units table of this scheme? `kaohe template` writes one to fill in",
                                more=more, zh=(f"... 另缺 {more} 列: 方案 '{scheme.meta.label}' 需要的 "
                                               f"{len(needed)} 列中缺 {len(missing)} 列",
                                               "这是本方案的单位数据表吗? `kaohe template` 可生成待填写的模板")))
    if problems:
        raise KaoheError(problems)
    df, row = _without_blank_rows(df, path)
    _no_totals_rows(df, row, scheme, path)
    present = [f for f in scheme.fields.values() if f.id in df.columns]
    stats = _raw_stats(df, present)
    id_dt = df.schema[cols.id]
    uid = pl.col(cols.id).cast(pl.String)
    named = cols.name in df.columns and cols.name != cols.id
    same = id_dt.is_integer() and not named  # an integer id as text has nothing to strip: it is its own name
    types = list(scheme.unit_types)
    uid_text = uid if id_dt.is_integer() else uid.str.strip_chars()
    name = pl.coalesce(pl.col(cols.name).cast(pl.String), uid_text) if named else pl.col(cols.id).cast(pl.String)
    parsed = df.select(row.alias("_row"), uid_text.alias("unit_id"),
                       *([] if same else [name.alias("name")]),  # a unit without a name is called by its id
                       _type_id(pl.col(cols.type).cast(pl.String).str.strip_chars(), scheme).alias("unit_type"))
    if same:
        parsed.insert_column(2, parsed.get_column("unit_id").alias("name"))
    parsed = parsed.with_columns(_id_key=_id_key(df.get_column(cols.id)),
                                 _type=type_code(pl.col("unit_type"), types))
    checks = _id_checks(scheme, unique_ids=_unique_ids(parsed))
    kept: set[str] = set()  # raw columns still needed: by a failing check, or by one that reads other fields
    ids = {cols.id, cols.name, cols.type}
    for chunk in (present[i:i + CHUNK] for i in range(0, len(present), CHUNK)):
        fresh = df.select(_parse(df.schema, f, stats.get(f.id), quick_text=True) for f in chunk)
        parsed = parsed.hstack(_complete_text(df, fresh, chunk))
        _parsed_stats(parsed, chunk, stats)
        own: list[tuple[Field, Check]] = []
        later: list[tuple[Field, Check]] = []
        for f in chunk:
            for check in field_checks(f, df.schema[f.id], scheme, stats.get(f.id)):
                mine = set(check.mask.meta.root_names()) <= {f.id, f"raw.{f.id}", "_row", "unit_id"}
                (own if mine else later).append((f, check))
        both = parsed.hstack([df.get_column(f.id).alias(f"raw.{f.id}") for f in chunk])
        counts = _counts(both, [c for _, c in own])
        failing = [(f, c) for (f, c), n in zip(own, counts, strict=True) if n]
        checks += [c for _, c in failing + later]
        kept |= {f.id for f, _ in failing + later}
        if release:
            for f in chunk:
                if f.id not in kept and f.id not in ids:
                    df.drop_in_place(f.id)
    parsed = _absent(parsed, scheme)
    both = parsed.hstack([df.get_column(f).alias(f"raw.{f}") for f in sorted(kept)])
    problems += run_checks(both, checks, path)
    if problems:
        raise KaoheError(problems)
    _shared_names(parsed, path)
    return Units(parsed.select("_row", "unit_id", "name", "unit_type", *scheme.fields, "_id_key", "_type"), path)


def _shared_names(parsed: pl.DataFrame, path: str) -> None:
    """Units of different ids under one name (石桥村 twice: often a row copied and not renamed) are said (a
    `Notice`): each is scored, and `explain 石桥村` must then be given the id."""
    named = parsed.filter(pl.col("name") != pl.col("unit_id"))
    shared = named.filter(pl.col("name").is_duplicated())
    if shared.height == 0:
        return
    groups = shared.group_by("name", maintain_order=True).agg(pl.col("unit_id"), pl.col("_row"))
    listed = "; ".join(f"{n}: {', '.join(f'{u} (row {r})' for u, r in zip(us, rs, strict=True))}"
                       for n, us, rs in groups.head(MAX_LISTED).iter_rows())
    listed_zh = "; ".join(f"{n}: {', '.join(f'{u} (第 {r} 行)' for u, r in zip(us, rs, strict=True))}"
                          for n, us, rs in groups.head(MAX_LISTED).iter_rows())
    warnings.warn(Notice(Problem(Loc(path), f"units of different ids share a name: {listed}",
                                 hint="if a row was copied, give it its own name",
                                 zh=(f"不同编号的单位同名: {listed_zh}", "如果是复制的行, 请改为它自己的名称"))),
                  stacklevel=3)


CHUNK = 8  # fields parsed (and their raw columns released) at a time
COUNT_IN_MEMORY_BELOW = 100_000  # rows: check counts on smaller tables run on Polars' in-memory engine


def _absent(parsed: pl.DataFrame, scheme: Scheme) -> pl.DataFrame:
    """Optional fields the table does not have: empty columns of their type."""
    return parsed.with_columns(pl.lit(None, dtype=_dtype(f)).alias(f.id) for f in scheme.fields.values()
                               if f.id not in parsed.columns)


def _counts(both: pl.DataFrame, checks: list[Check]) -> tuple[int, ...]:
    """How many rows each check finds, in one pass (in morsels on large tables: the masks are never whole
    columns; a small table is quicker on the in-memory engine)."""
    if not checks:
        return ()
    small = both.height < COUNT_IN_MEMORY_BELOW
    return tuple(both.lazy().select([c.mask.fill_null(False).sum().alias(str(i)) for i, c in enumerate(checks)])
                 .collect(engine="in-memory" if small else "streaming").row(0))


def _unique_ids(parsed: pl.DataFrame) -> bool:
    """Are the unit ids distinct? On the integer `_id_key`, a function of unit_id: distinct keys mean
    distinct ids (only then is the row-level duplicate check left out)."""
    key = pl.col("_id_key")
    row = parsed.select(key.drop_nulls().n_unique().alias("ids"), key.count().alias("n")).row(0)
    return bool(row[0] == row[1])


def _parse(schema: pl.Schema, f: Field, stats: Stats | None = None, *, quick_text: bool = False) -> pl.Expr:
    """The parsed column of field `f`. With raw column `stats` that prove every value fits (see
    `_raw_stats`), numbers take the plain cast; the result is the same as the guarded one's. With
    `quick_text`, numbers written as text take `_decimal_text`, whole numbers `str.to_integer` (null where
    they cannot tell: see `_complete_text`)."""
    if f.id not in schema:
        return pl.lit(None, dtype=_dtype(f)).alias(f.id)
    col, dt = pl.col(f.id), schema[f.id]
    if f.type == "str":
        return col.cast(pl.String).str.strip_chars().alias(f.id)
    if f.type == "bool":
        if dt == pl.Boolean:
            return col.alias(f.id)
        t = col.cast(pl.String).str.strip_chars().str.to_lowercase()
        return (pl.when(t.is_in(TRUE_WORDS)).then(True).when(t.is_in(FALSE_WORDS)).then(False)
                .otherwise(None).alias(f.id))
    fits = stats is not None and stats.get("fits", False)
    if dt.is_integer():
        if fits:
            wide = col if dt == pl.Int64 else col.cast(pl.Int64)
            return (wide * 10**f.scale if f.scale else wide).alias(f.id)
        wide = col.cast(pl.Int128) if dt != pl.Int128 else col
        return pl.when(wide.abs() <= _limit(f)).then(wide.cast(pl.Int64) * 10**f.scale).alias(f.id)
    if dt.is_float():  # exact when the value has at most `scale` decimals (checked in field_checks); NaN is empty
        if fits:  # no value out of range: the unchecked cast gives the same integers, in a third of the time
            value = (col * 10**f.scale).round().cast(pl.Int64, wrap_numerical=True)
            return (pl.when(col.is_not_nan()).then(value) if stats and stats["nan"] else value).alias(f.id)
        ok = col.is_not_nan() & (col.abs() < float(_limit(f)))
        return pl.when(ok).then((col * 10**f.scale).round().cast(pl.Int64)).alias(f.id)
    text = col.cast(pl.String)  # text, or Decimal: exact digits
    if quick_text and f.type == "int" and f.scale == 0:  # '12', '-3', '+5', '007' (6 ms per million cells)
        return text.str.to_integer(strict=False).alias(f.id)  # `_complete_text` reads the rest ('12.0', ...)
    quick = quick_text and f.scale <= _WIDE
    return (_decimal_text(text, f.scale) if quick else _text_number(text, f.scale)).alias(f.id)


def _is_text_number(schema: pl.Schema, f: Field) -> bool:
    """Is field `f` a number that `_parse` reads from text (a String or Decimal column)?"""
    dt = schema.get(f.id)
    return dt is not None and f.type in ("int", "decimal") and not dt.is_integer() and not dt.is_float()


_WIDE = 18  # decimals `_decimal_text` reads; a value written with more takes `_text_number`


def _decimal_text(t: pl.Expr, scale: int) -> pl.Expr:
    """Plain decimal text ('-12.5', '.50', '7') as an integer at `scale`, by Polars' native Decimal cast
    (69 ms per million cells, against 1.7 s for `_text_number`); the same value as `_text_number`
    wherever it is not null. Null for everything else: spaces around the number, percentages, exponents
    (which the cast would read), more than `scale` decimals (the cast at `scale` drops them: it must equal
    the cast at 18 decimals), anything longer than 19 characters (the cast would drop decimals past the
    18th), values beyond Int64. `_complete_text` sends a column with such a cell to `_text_number`."""
    at_scale = t.cast(pl.Decimal(38, scale), strict=False).to_physical()  # Int128 counts of 10^-scale
    exact = t.cast(pl.Decimal(38, _WIDE), strict=False).to_physical()  # ... and of 10^-18
    plain = (t.str.len_bytes() <= _WIDE + 1) & ~t.str.contains("[eE]")
    return pl.when(plain & (at_scale * 10 ** (_WIDE - scale) == exact)).then(at_scale.cast(pl.Int64, strict=False))


def _percent_text(t: pl.Expr, scale: int) -> pl.Expr:
    """As `_decimal_text`, and a plain decimal followed by '%' ('95.5%' at scale 4 -> 9550, as Excel writes
    percentages into CSV) read at two decimals fewer. For scales of 2 and up."""
    pct = t.str.ends_with("%")
    return pl.when(pct).then(_decimal_text(t.str.strip_suffix("%"), scale - 2)).otherwise(_decimal_text(t, scale))


def _complete_text(raw: pl.DataFrame, parsed: pl.DataFrame, fields: list[Field]) -> pl.DataFrame:
    """`parsed` (by `_parse(..., quick_text=True)`), with every text-number column in which the quick parse
    left a non-blank cell empty parsed again: first with percentages read too (`_percent_text`; a whole
    number field by `_decimal_text`), then, where cells are still left, by `_text_number`, which reads or
    rejects every form."""
    texts = [f for f in fields if _is_text_number(raw.schema, f)]
    for tier in ("percent", "full"):
        if not texts:
            break
        both = parsed.select([pl.col(f.id).alias(f"~{f.id}") for f in texts]).hstack(
            [raw.get_column(f.id) for f in texts])
        missed = both.select([(pl.col(f"~{f.id}").is_null()
                               & (pl.col(f.id).cast(pl.String).str.strip_chars().fill_null("") != "")).any()
                              .alias(f.id) for f in texts]).row(0, named=True)
        texts = [f for f in texts if missed[f.id]]
        if tier == "percent":  # and whole numbers written as decimals ('12.0', as pandas writes them)
            redo = [_percent_text(pl.col(f.id).cast(pl.String), f.scale).alias(f.id) for f in texts
                    if 2 <= f.scale <= _WIDE]
            redo += [_decimal_text(pl.col(f.id).cast(pl.String), 0).alias(f.id) for f in texts
                     if f.type == "int" and f.scale == 0]
        else:
            redo = [_parse(raw.schema, f) for f in texts]
        if redo:
            parsed = parsed.with_columns(raw.select(redo).get_columns())
    return parsed


def _limit(f: Field) -> int:
    """The largest magnitude a number field holds: larger values cannot be held exactly at its scale,
    so they are reported, never wrapped."""
    return int((2**63 - 1) // 10**f.scale)


def _text_number(t: pl.Expr, scale: int) -> pl.Expr:
    """Exact: '-12.345' at scale 4 -> -123450; '95.5%' at scale 4 -> 9550; full-width digits and signs as
    a Chinese input method types them ('９５．５％') as their ASCII forms; null when not a number or when it
    has more decimals than the scale keeps."""
    g = t.str.replace_many(list(_FULL_WIDTH), list(_FULL_WIDTH.values())).str.extract_groups(_NUM)
    sign, whole, written, pct = (g.struct.field(k) for k in ("1", "2", "3", "4"))
    frac = written.fill_null("").str.strip_chars_end("0")
    keep = pl.when(pct == "%").then(scale - 2).otherwise(scale)  # 95.5% = 0.955: two decimals fewer
    digits = "0" + whole.fill_null("") + frac  # '.0' has no digit left once its zeros are dropped: it is 0
    has_digits = whole.fill_null("").str.len_chars() + written.fill_null("").str.len_chars() > 0
    ok = has_digits & (frac.str.len_chars().cast(pl.Int64) <= keep)
    pad = pl.lit("0").repeat_by((keep - frac.str.len_chars().cast(pl.Int64)).clip(0)).list.join("")
    mag = (digits + pad).str.to_integer(strict=False, dtype=pl.Int64)
    return pl.when(ok).then(pl.when(sign == "-").then(-mag).otherwise(mag))


def _id_key(ids: pl.Series) -> pl.Series:
    """How unit ids sort: as numbers when every id is a whole number (2 before 10), else as text. Text ids
    become their position in text order, so that every sort key stays an integer (packed sorts)."""
    if ids.dtype.is_integer():
        return ids.cast(pl.Int64)
    as_int = ids.cast(pl.String).str.strip_chars().str.to_integer(strict=False)
    if as_int.null_count() == ids.null_count():
        return as_int
    return ids.cast(pl.String).str.strip_chars().rank("dense").cast(pl.Int64)


def _dtype(f: Field) -> pl.DataType:
    return {"str": pl.String(), "bool": pl.Boolean()}.get(f.type, pl.Int64())


@dataclass(frozen=True)
class Check:
    """One kind of data problem: a mask over the parsed + raw columns, and how to say it."""

    mask: pl.Expr
    column: str
    message: str  # may use {value} and {unit}
    hint: str = ""
    value_col: str | None = None
    zh: tuple[str, str] | None = None  # the message (with {value} and {unit}) and hint in Chinese
    why: Callable[[str], Said | None] | None = None  # for some values a better message (`not_a_number`)


Said = tuple[str, str, str, str]  # message, hint, and both in Chinese


def merged_cell(v: str) -> Said | None:
    """A cell a merged range covers, as engine.io_read marks it ('[merged C2:C17]'): said as such, not as its
    placeholder text."""
    if m := re.fullmatch(MERGED, v.strip()):
        return (f"the cell is inside the merged cells {m[1]}, and only the first of them holds the value",
                "unmerge the cells and fill in each row", f"这一格在合并单元格 {m[1]} 中, 只有合并区域的第一格有值",
                "请取消合并, 在每一行分别填写")
    return None


def merged_mask(col: str) -> pl.Expr:
    """The cells of `col` a merged range covers (`merged_cell`)."""
    return pl.col(col).str.contains(f"^{MERGED}$").fill_null(False)


def not_a_number(scale: int) -> Callable[[str], Said | None]:
    """Why a cell meant as a number (at most `scale` decimals) did not read as one, where the cell says: an
    Excel error or a formula saved without its result, a merged cell, a date cell, thousands separators,
    a unit after the number, too many decimals (a formula's result), too many digits. None: the general
    message."""
    def why(v: str) -> Said | None:
        s = v.strip()
        if said := merged_cell(s):
            return said
        if s.startswith("#"):
            return (f"'{s}' is an Excel error, not a value", "correct the cell's formula in Excel (or type the value)",
                    f"'{s}' 是 Excel 的错误值, 不是数", "请在 Excel 中改正这一格的公式 (或直接填写数值)")
        if s.startswith("="):
            return (f"'{s}' is a formula saved without its result", "open the file in Excel or WPS and save it "
                    "(the formulas' results are saved then), or type the value", f"'{s}' 是没有保存计算结果的公式",
                    "请在 Excel 或 WPS 中打开文件并保存 (会保存公式的结果), 或直接填写数值")
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}( 00:00:00)?", s):
            return (f"'{s}' is a date (the cell is formatted as a date)", "set the cell's format to General and "
                    "type the number again", f"'{s[:10]}' 是日期 (单元格被设成了日期格式)",
                    "请把单元格格式设为“常规”后重新填写")
        if re.fullmatch(r"[+-]?\d{1,3}(,\d{3})+(\.\d+)?", s):
            plain = s.replace(",", "")
            return (f"'{s}' has thousands separators", f"write it without commas: {plain}",
                    f"'{s}' 含千位分隔符", f"请去掉逗号, 写作 {plain}")
        if m := re.fullmatch(r"([+-]?\d+(?:\.\d+)?)\s*([^\d\s.%％]+)", s):
            return (f"'{s}' carries a unit ('{m[2]}')", f"write the number only: {m[1]}",
                    f"'{s}' 带了单位 '{m[2]}'", f"请只填数字: {m[1]}")
        if (m := re.fullmatch(r"[+-]?\d+\.(\d+)", s)) and len(m[1]) > scale:
            if scale == 0:
                return (f"'{s}' is not a whole number", "write a whole number", f"'{s}' 不是整数", "请填写整数")
            places = f"{scale} decimal{'s' if scale != 1 else ''}"
            computed = len(m[1]) > scale + 2  # many more: a formula's result, shown in full
            return (f"'{s}' has more than {places}" + (" (a formula's result?)" if computed else ""),
                    f"round it to {places}" + (f" (ROUND(..., {scale}) in Excel, then paste the values)"
                                                if computed else ""),
                    f"'{s}' 的小数超过 {scale} 位" + (" (多为公式的计算结果)" if computed else ""),
                    f"请保留 {scale} 位小数" + (f": 可用 =ROUND(…,{scale}), 再“选择性粘贴为数值”" if computed else ""))
        if re.fullmatch(r"[+-]?\d+(\.\d+)?([eE][+-]?\d+)?", s) and abs(float(s)) >= 1e15:
            return (f"'{s}' is too large to hold exactly", "check the value", f"'{s}' 太大, 无法精确保存",
                    "请检查这个值")
        return None

    return why


def run_checks(both: pl.DataFrame, checks: list[Check], path: str) -> list[Problem]:
    """Count every kind of problem in one pass; list rows only for the kinds that occur."""
    if not checks:
        return []
    counts = _counts(both, checks)
    out: list[Problem] = []
    for check, n in zip(checks, counts, strict=True):
        if not n:
            continue
        cols = ["_row", "unit_id"] + ([check.value_col] if check.value_col and check.value_col != "unit_id" else [])
        bad = both.filter(check.mask.fill_null(False)).select(cols)
        if check.value_col and bad.schema[check.value_col] != pl.String:
            bad = bad.with_columns(pl.col(check.value_col).cast(pl.String))
        for rec in bad.head(MAX_LISTED).iter_rows(named=True):
            v = rec.get(check.value_col) if check.value_col else None
            unit = rec.get("unit_id", "")
            zh = (check.zh[0].format(value=v, unit=unit), check.zh[1]) if check.zh else None
            msg, hint = check.message.format(value=v, unit=unit), check.hint
            if check.why is not None and v is not None and (said := check.why(str(v))) is not None:
                msg, hint, zh = said[0], said[1], (said[2], said[3])
            out.append(Problem(Loc(path, row=rec["_row"], column=check.column), msg, hint=hint, zh=zh))
        if bad.height > MAX_LISTED:
            more = bad.height - MAX_LISTED
            out.append(Problem(Loc(path, column=check.column), f"... and {more} more rows like these", more=more,
                               zh=(f"... 另有 {more} 行同样的问题", "")))
    return out


def _rows(df: pl.DataFrame, mask: pl.Expr, path: str, column: str, message: str, hint: str = "",
          value_col: str | None = None, *, zh: tuple[str, str] | None = None,
          why: Callable[[str], Said | None] | None = None) -> list[Problem]:
    return run_checks(df, [Check(mask, column, message, hint, value_col, zh, why)], path)


def type_code(unit_type: pl.Expr, types: list[str]) -> pl.Expr:
    """Each unit type's position in the scheme's list; null for any other text (a hashed Enum cast, cheaper
    than `replace_strict`)."""
    return unit_type.cast(pl.Enum(types), strict=False).to_physical().cast(pl.UInt32)


def _type_id(unit_type: pl.Expr, scheme: Scheme) -> pl.Expr:
    """A unit type as written: its id, or its label (村 -> village, as a committee's own table writes it)."""
    labels = {label: tid for tid, label in scheme.unit_types.items() if label not in scheme.unit_types}
    return unit_type.replace(labels) if labels else unit_type


def _id_checks(scheme: Scheme, *, unique_ids: bool = False) -> list[Check]:
    """`unique_ids`: the ids are known to be distinct, so the (costly) duplicate check is left out."""
    c = scheme.columns
    types = ", ".join(f"{t} ({label})" for t, label in scheme.unit_types.items())
    allowed = f"allowed: {types}"
    allowed_zh = "可填: " + "、".join(f"{label} ({t})" for t, label in scheme.unit_types.items())
    dup = [] if unique_ids else [
        Check(pl.col("unit_id").is_duplicated() & pl.col("unit_id").is_not_null(), c.id, "duplicate unit id '{value}'",
              "each unit appears once", "unit_id", zh=("单位编号 '{value}' 重复", "每个单位只能出现一次"))]
    return [
        Check(pl.col("unit_id").is_null() | (pl.col("unit_id") == ""), c.id, "empty unit id",
              "every row needs a unit id", zh=("单位编号为空", "每一行都要有单位编号")),
        Check(merged_mask("unit_id"), c.id,
              "'{value}' is a merged cell", "unmerge the cells and fill in each row", "unit_id",
              zh=("'{value}' 是合并单元格", "请取消合并, 在每一行分别填写"), why=merged_cell),
        *dup,
        Check(pl.col("unit_type").is_null(), c.type, "empty unit type", allowed, zh=("单位类型为空", allowed_zh)),
        Check(pl.col("_type").is_null() & pl.col("unit_type").is_not_null(), c.type, "unknown unit type '{value}'",
              allowed, "unit_type", zh=("未知的单位类型 '{value}'", allowed_zh), why=merged_cell),
    ]


Stats = dict[str, Any]  # per typed field: blank (raw nulls and NaN), unparsed (parsed nulls), lo, hi (parsed)


def _raw_stats(raw: pl.DataFrame, fields: list[Field]) -> dict[str, Stats]:
    """Statistics of the typed (non-text) columns, from one aggregate pass over the raw table.

    Integer and float number columns: blank, the raw range and whether it `fits` (every value can be held
    at the field's scale); when it fits, the parsed column's unparsed count and range follow from these
    (the parse is monotonic), and `_parse` takes the plain cast. Boolean columns of bool fields: blank.
    Other typed number columns (Decimal, ...) get `fits` False; `_parsed_stats` completes them."""
    exprs = raw_stat_exprs(raw.schema, fields)
    return raw_stats_of(raw.select(exprs).row(0, named=True), raw.schema, fields) if exprs else {}


def raw_stat_exprs(schema: pl.Schema, fields: list[Field]) -> list[pl.Expr]:
    """The aggregates `_raw_stats` reads (so that a lazy scan computes them with others in one pass)."""
    exprs: list[pl.Expr] = []
    for f in fields:
        dt, c = schema[f.id], pl.col(f.id)
        kind = _stat_kind(f, dt)
        if kind in ("int", "float"):
            exprs += [c.null_count().alias(f"{f.id}.nulls"), c.min().alias(f"{f.id}.lo"), c.max().alias(f"{f.id}.hi"),
                      (c.is_nan().sum() if dt.is_float() else pl.lit(0)).alias(f"{f.id}.nan")]
        elif kind == "other":
            exprs.append((c.is_null() | c.is_nan() if dt.is_float() else c.is_null()).sum().alias(f"{f.id}.nulls"))
        elif kind == "bool":
            exprs.append(c.null_count().alias(f"{f.id}.nulls"))
    return exprs


def _stat_kind(f: Field, dt: pl.DataType) -> str | None:
    if f.type in ("int", "decimal") and (dt.is_integer() or dt == pl.Float64):  # Float32 compares as float32
        return "float" if dt.is_float() else "int"
    if f.type in ("int", "decimal") and dt != pl.String:
        return "other"
    if f.type == "bool" and dt == pl.Boolean:
        return "bool"
    return None


def raw_stats_of(row: dict[str, Any], schema: pl.Schema, fields: list[Field]) -> dict[str, Stats]:
    """`_raw_stats` from the aggregates of `raw_stat_exprs`."""
    out: dict[str, Stats] = {}
    floats: list[Field] = []
    for f in fields:
        kind = _stat_kind(f, schema[f.id])
        if kind is None:
            continue
        if kind in ("bool", "other"):
            out[f.id] = {"blank": row[f"{f.id}.nulls"], "fits": False}
            continue
        lo, hi, nan = row[f"{f.id}.lo"], row[f"{f.id}.hi"], row[f"{f.id}.nan"]
        st: Stats = {"blank": row[f"{f.id}.nulls"] + nan, "nan": nan}
        if lo is None:  # no values (all null): nothing to parse
            st.update(fits=True, unparsed=st["blank"], lo=None, hi=None)
        elif kind == "int":
            st["fits"] = -_limit(f) <= lo and hi <= _limit(f)
            if st["fits"]:
                st.update(unparsed=st["blank"], lo=lo * 10**f.scale, hi=hi * 10**f.scale)
        else:  # min and max skip NaN; they are NaN only when every value is: then left to the guarded parse
            st["fits"] = abs(lo) < float(_limit(f)) and abs(hi) < float(_limit(f))
            if st["fits"]:  # the parse is monotonic: the parsed range is the parsed raw range (below)
                st.update(unparsed=st["blank"], lo=lo, hi=hi)
                floats.append(f)
        out[f.id] = st
    if floats:  # the float ends parsed as the column is, all in one frame
        ends = pl.DataFrame({f.id: [out[f.id]["lo"], out[f.id]["hi"]] for f in floats},
                            schema={f.id: schema[f.id] for f in floats})
        ends = ends.select(_parse(ends.schema, f, out[f.id]) for f in floats)
        for f in floats:
            out[f.id].update(lo=ends.item(0, f.id), hi=ends.item(1, f.id))
    return out


def _parsed_stats(parsed: pl.DataFrame, fields: list[Field], stats: dict[str, Stats]) -> None:
    """Complete `stats` from the parsed columns where the raw ones could not (unparsed, lo, hi), in one pass."""
    todo = [f for f in fields if f.id in stats and f.type in ("int", "decimal") and "unparsed" not in stats[f.id]]
    if not todo:
        return
    exprs = []
    for f in todo:
        exprs += [pl.col(f.id).null_count().alias(f"{f.id}.unparsed"), pl.col(f.id).min().alias(f"{f.id}.lo"),
                  pl.col(f.id).max().alias(f"{f.id}.hi")]
    row = parsed.select(exprs).row(0, named=True)
    for f in todo:
        stats[f.id].update({k: row[f"{f.id}.{k}"] for k in ("unparsed", "lo", "hi")})


def field_checks(f: Field, raw_dtype: pl.DataType, scheme: Scheme, stats: Stats | None = None) -> list[Check]:
    """The checks of one field; its raw column is `raw.<id>` beside the parsed `<id>`. With column
    `stats` (typed number columns), checks that the statistics show cannot fail are left out."""
    checks = _field_checks(f, raw_dtype, scheme)
    if stats is None:
        return [c for _, c in checks]
    keep = []
    for kind, check in checks:
        if kind == "unparsed" and stats.get("unparsed") == stats["blank"]:
            continue
        if kind == "empty" and stats["blank"] == 0:
            continue
        if kind in ("min", "max") and isinstance(getattr(f, kind), Decimal) and stats.get("lo") is not None:
            bound = int(getattr(f, kind).scaleb(f.scale))
            if (kind == "min" and stats["lo"] >= bound) or (kind == "max" and stats["hi"] <= bound):
                continue
        keep.append(check)
    return keep


def _none_hint(f: Field, lang: str = "en") -> str:
    """How to fill a cell of field f that has nothing to report ('write 0' is wrong for a yes/no or a text)."""
    zh = lang == "zh"
    if f.type == "bool":
        return "不是的填 否" if zh else "write 否 if it is not so"
    if f.type == "str":
        if f.values:
            return ("填写 " if zh else "write one of ") + "、".join(f.values)
        return "填写其值" if zh else "write the value"
    low = f.min if isinstance(f.min, Decimal) else None
    if low is None or low <= 0:
        return "没有的填 0" if zh else "write 0 if there is none"
    return f"最小值为 {low}" if zh else f"the least value is {low}"


def _field_checks(f: Field, raw_dtype: pl.DataType, scheme: Scheme) -> list[tuple[str, Check]]:
    raw = pl.col(f"raw.{f.id}")
    rv = f"raw.{f.id}"
    what = {"int": "a whole number", "decimal": f"a number with at most {f.scale} decimal{'s' if f.scale != 1 else ''}",
            "bool": "是/否",
            "str": "a text"}[f.type]
    what_zh = {"int": "整数", "decimal": f"最多 {f.scale} 位小数的数", "bool": "是/否", "str": "文字"}[f.type]
    text = raw_dtype == pl.String
    if text:
        blank = raw.is_null() | (raw.str.strip_chars() == "")
    elif raw_dtype.is_float():
        blank = raw.is_null() | raw.is_nan()  # NaN is how pandas and polars write a missing number
    else:
        blank = raw.is_null()
    out: list[tuple[str, Check]] = []
    if f.type != "str" and raw_dtype != pl.Boolean:  # a cell that is there but does not read as its type
        number = f.type in ("int", "decimal")
        zh = ("'{value}' 不能识别为是/否", "请填 是 或 否") if f.type == "bool" else \
            ("'{value}' 不是" + what_zh, f"请在列 '{f.id}' ({f.label}) 填写{what_zh}")
        out.append(("unparsed", Check(~blank & pl.col(f.id).is_null(), f.id, "'{value}' is not " + what,
                                      f"write {what} in column '{f.id}' ({f.label})", rv, zh=zh,
                                      why=not_a_number(f.scale) if number else None)))
    if raw_dtype.is_float() and f.type in ("int", "decimal"):
        if raw_dtype == pl.Float64:  # a parsed value is the rounded raw one, exactly: no second rounding
            off = (raw * 10**f.scale - pl.col(f.id).cast(pl.Float64)).abs()
        else:
            off = pl.when(pl.col(f.id).is_not_null()).then((raw * 10**f.scale - (raw * 10**f.scale).round()).abs())
        out.append(("decimals", Check(off > 1e-6, f.id, "'{value}' has more than " + f"{f.scale} decimals",
                                      f"round it, or declare 'scale:' for field {f.id}", rv,
                                      zh=("'{value}' 的小数位多于 " + f"{f.scale} 位",
                                          f"请四舍五入, 或在方案中为字段 {f.id} 声明 'scale:'"))))
    fill_zh = f"请填写{f.label}; {_none_hint(f, 'zh')}"
    if f.required:
        out.append(("empty", Check(blank, f.id, "empty cell for unit {unit}", f"fill in {f.label}; " + _none_hint(f),
                                   zh=("单位 {unit} 的单元格为空", fill_zh))))
    elif f.required_for:  # a unit of these types needs it: its empty cell would score as not applicable
        types = ", ".join(f"{t} ({scheme.unit_types[t]})" for t in f.required_for if t in scheme.unit_types)
        out.append(("empty", Check(blank & pl.col("unit_type").is_in(list(f.required_for)), f.id,
                                   f"empty cell for unit {{unit}}, which {f.label} is required for ({types})",
                                   f"fill in {f.label}; " + _none_hint(f),
                                   zh=(f"单位 {{unit}} 的单元格为空, 而这类单位 ({types}) 必须填写{f.label}",
                                       fill_zh))))
    if f.values:
        out.append(("values", Check(pl.col(f.id).is_not_null() & ~pl.col(f.id).is_in(list(f.values)), f.id,
                                    "'{value}' is not allowed", "allowed: " + ", ".join(f.values), f.id,
                                    zh=("不允许填 '{value}'", "可填: " + ", ".join(f.values)), why=merged_cell)))
    for which, op in (("min", "<"), ("max", ">")):
        bound = getattr(f, which)
        if bound is None:
            continue
        if isinstance(bound, Decimal):
            lim = pl.lit(int(bound.scaleb(f.scale)), dtype=pl.Int64)
            shown = str(bound)
        else:
            other = scheme.fields[bound]
            lim = pl.col(bound) * 10**f.scale // 10**other.scale
            shown = f"{bound} ({other.label})"
        bad = pl.col(f.id) < lim if op == "<" else pl.col(f.id) > lim
        what = "'{value}' is " + ("below the minimum " if op == "<" else "above the maximum ") + shown
        what_zh = "'{value}' " + ("低于下限 " if op == "<" else "超过上限 ") + shown
        out.append((which, Check(bad, f.id, what, f"{f.label} must be {'at least' if op == '<' else 'at most'} {shown}",
                                 rv, zh=(what_zh, f"{f.label}{'不得小于' if op == '<' else '不得大于'} {shown}"))))
    return out


def _field_problems(raw: pl.DataFrame, parsed: pl.DataFrame, f: Field, path: str, scheme: Scheme) -> list[Problem]:
    """The problems of one field (raw table beside its parsed frame, same rows)."""
    if f.id not in raw.columns:
        return []
    both = parsed.with_columns(raw.get_column(f.id).alias(f"raw.{f.id}"))
    if "unit_id" not in both.columns:
        both = both.with_columns(unit_id=pl.lit(""))
    return run_checks(both, field_checks(f, raw.schema[f.id], scheme), path)
