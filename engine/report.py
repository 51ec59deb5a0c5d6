"""report: the decided frame as tables for people (tabulate, CJK aligned) and documents for programs.

Builders return (headers, rows) of plain strings; `render` turns them into table, csv, json or
markdown. Labels come from the scheme (Chinese); `lang="en"` switches the tool's own words and
uses ids where the scheme has no English label.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import polars as pl
from tabulate import tabulate

from .evaluate import ITEM_SCALE
from .explain import method_label, reason, value_str
from .fmt import Lang, fixed_str, in_lang, points_str, word
from .model import Item, Pool, Section
from .pipeline import Run
from .report_cols import fixed_text, grade_text, pretty, report_order, type_text

Rows = list[list[str]]


def type_label(run: Run, t: str, lang: Lang) -> str:
    return run.scheme.unit_types.get(t, t) if lang == "zh" else t


def grade_label(run: Run, g: str | None, lang: Lang) -> str:
    for gr in run.decisions.grades:
        if gr.id == g:
            return gr.label if lang == "zh" else gr.id
    return g or "—"


def score_table(run: Run, lang: Lang) -> tuple[list[str], pl.DataFrame]:
    """The score table: headers, and one row of text cells per unit, by unit type as declared, then rank order."""
    p = run.scheme.meta.precision
    secs = list(run.scheme.sections)
    pools = list(run.scheme.pools)
    lab: Callable[[Section | Pool], str] = (lambda x: x.label) if lang == "zh" else (lambda x: x.id)
    headers = [word("rank", lang), word("unit_id", lang), word("unit", lang), word("type", lang),
               *[lab(s) for s in secs], *[lab(q) for q in pools], word("total", lang), word("grade", lang),
               word("vetoes", lang)]
    vetoes = [pl.when(pl.col(f"x.{v.id}")).then(pl.lit(v.label if lang == "zh" else v.id))
              for v in run.decisions.vetoes]
    cells = [pl.col("rank").cast(pl.String).fill_null("None"), pl.col("unit_id").cast(pl.String), pl.col("name"),
             type_text(run, lang), *[fixed_text(pl.col(f"s.{s.id}"), p, p) for s in secs],
             *[fixed_text(pl.col(f"p.{q.id}"), p, p) for q in pools], fixed_text(pl.col("total"), p, p),
             grade_text(run, lang),
             pl.concat_str(vetoes, separator="、", ignore_nulls=True).fill_null("") if vetoes else pl.lit("")]
    rows = (run.frame.lazy().sort(report_order(run), maintain_order=True)
            .select(c.alias(f"c{i}") for i, c in enumerate(cells)).collect())
    return headers, rows


def render(headers: Sequence[str], rows: Rows | pl.DataFrame, fmt: str, *, title: str = "") -> str:
    """A table (rows of text cells: lists, or a frame of text columns) as text, csv, json or markdown."""
    if fmt == "csv":
        import csv  # noqa: PLC0415

        from .io import neutralise  # noqa: PLC0415 - names come from many hands: no formulas

        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\r\n")
        w.writerow([neutralise(h) for h in headers])
        if isinstance(rows, pl.DataFrame):
            return buf.getvalue() + csv_body(rows).decode("utf-8")
        w.writerows([[neutralise(c) if c is not None else None for c in r] for r in rows])  # None: empty
        return buf.getvalue()
    if fmt == "json":
        lines = rows.rows() if isinstance(rows, pl.DataFrame) else rows
        return json.dumps([dict(zip(headers, r, strict=True)) for r in lines], ensure_ascii=False, indent=2) + "\n"
    table = text_table(headers, rows, fmt) if isinstance(rows, pl.DataFrame) else _tabulated(headers, rows, fmt)
    if title:
        table = (f"## {title}\n\n" if fmt == "markdown" else f"{title}\n") + table
    return table + "\n"


def _layout(fmt: str) -> dict[str, Any]:
    return {"tablefmt": "github" if fmt == "markdown" else "simple", "disable_numparse": True, "stralign": "left"}


def _tabulated(headers: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str) -> str:
    return str(tabulate(rows, headers=list(headers), **_layout(fmt)))


FAST_ROWS = 2_000  # a frame with more rows is laid out by `_laid_out`
_CHECKED_ROWS = 50  # rows of it that tabulate lays out too, to compare
TEXT_ROWS = 1_000_000  # rows of a large table's body made at a time


def text_table(headers: Sequence[str], rows: pl.DataFrame, fmt: str) -> str:
    """A frame of text cells as tabulate's text ("table") or markdown table."""
    return "".join(text_table_pieces(headers, rows, fmt))


def text_table_pieces(headers: Sequence[str], rows: pl.DataFrame, fmt: str) -> Iterator[str]:
    """`text_table` in pieces: a large table's head, then its body TEXT_ROWS rows at a time, each piece
    from its line break on (ten million units' table is over a gigabyte of text: never one string)."""
    laid = _laid_out(headers, rows, fmt) if rows.height > FAST_ROWS else None
    if laid is None:
        yield _tabulated(headers, rows.rows(), fmt)
        return
    head, cells, line = laid
    yield head
    for start in range(0, cells.height, TEXT_ROWS):
        yield "\n" + cells.slice(start, TEXT_ROWS).select(line).to_series().str.join("\n").item()


def _laid_out(headers: Sequence[str], rows: pl.DataFrame, fmt: str) -> tuple[str, pl.DataFrame, pl.Expr] | None:
    """tabulate's layout of a large frame of text cells, for Polars to make: tabulate's Python work per
    cell takes a minute for a million units. tabulate lays out the headers with each column's widest cell
    (by display width, as tabulate measures it: wcwidth) and the first rows; its rule line gives the column
    widths, and Polars pads every cell to them. Returns the header lines, the cells with their widths
    (`w.<column>`) and the expression of a row's line; the rows tabulate laid out must come out the same.
    None, for tabulate to lay out the whole table, if they do not, or a cell is missing, has a control
    character (a line break, an escape code) or cannot be measured by wcwidth."""
    cols = rows.columns
    text = rows.select(pl.col(c).cast(pl.String).str.strip_chars() for c in cols)  # tabulate strips each cell
    if text.select(pl.any_horizontal(pl.col(c).is_null() | pl.col(c).str.contains(r"[\x00-\x1f\x7f-\x9f]")
                                     for c in cols).any()).item():
        return None
    shown = _display_widths(text)
    if shown is None:
        return None
    at = [shown.get_column(c).arg_max() or 0 for c in cols]  # each column's widest cell
    widest = [text.item(i, c) for i, c in zip(at, cols, strict=True)]
    lines = _tabulated(headers, [widest, *text.head(_CHECKED_ROWS).rows()], fmt).split("\n")
    runs = [len(r) for r in lines[1].strip("|").split("|" if fmt == "markdown" else "  ")]
    if fmt == "markdown":
        runs = [n - 2 for n in runs]  # "| cell |": a rule run is under the cell and its two spaces
    if len(runs) != len(cols):
        return None
    cells = pl.concat([text, shown.rename({c: f"w.{c}" for c in cols})], how="horizontal")
    padded = [pl.col(c).str.pad_end(n - (pl.col(f"w.{c}") - pl.col(c).str.len_chars()))
              for c, n in zip(cols, runs, strict=True)]
    line = (pl.concat_str([pl.lit("| "), pl.concat_str(padded, separator=" | "), pl.lit(" |")])
            if fmt == "markdown" else pl.concat_str(padded, separator="  ")).str.strip_chars_end()
    top = pl.DataFrame([[*widest, *(shown.item(i, c) for i, c in zip(at, cols, strict=True))]], schema=cells.schema,
                       orient="row")  # the widest cells' row, laid out first
    checked = pl.concat([top, cells.head(_CHECKED_ROWS)]).select(line).to_series().to_list()
    return ("\n".join(lines[:2]), cells, line) if checked == lines[2:] else None


def _display_widths(text: pl.DataFrame) -> pl.DataFrame | None:
    """Each cell's display width as tabulate measures it (wcwidth): an ASCII cell's length; other cells
    measured by wcwidth, each distinct text once. None if wcwidth cannot measure one."""
    import wcwidth  # noqa: PLC0415 - tabulate[widechars] brings it

    out = []
    for c in text.columns:
        col = pl.col(c)
        ascii_ = col.str.len_bytes() == col.str.len_chars()
        wide = text.filter(~ascii_).get_column(c).unique()
        measured = [wcwidth.wcswidth(t) for t in wide.to_list()]
        if any(w < 0 for w in measured):
            return None
        out.append(pl.when(ascii_).then(col.str.len_chars().cast(pl.Int32))
                   .otherwise(col.replace_strict(wide, pl.Series(measured, dtype=pl.Int32), default=None)).alias(c))
    return text.select(out)


CSV_ROWS = 1_000_000  # rows of a CSV body written at a time


def rendered(headers: Sequence[str], rows: Rows | pl.DataFrame, fmt: str, *, title: str = "") -> Iterator[str | bytes]:
    """`render` in pieces; a frame's CSV body as the UTF-8 bytes Polars writes (a million units' table is
    hundreds of megabytes: no round trip through a Python string)."""
    if fmt == "csv" and isinstance(rows, pl.DataFrame):
        yield render(headers, [], "csv")
        for start in range(0, rows.height, CSV_ROWS):  # bounded memory: ~100 MB of text a piece
            yield csv_body(rows.slice(start, CSV_ROWS))
    elif fmt in ("table", "markdown") and isinstance(rows, pl.DataFrame):
        yield (f"## {title}\n\n" if fmt == "markdown" else f"{title}\n") if title else ""
        yield from text_table_pieces(headers, rows, fmt)
        yield "\n"
    else:
        yield render(headers, rows, fmt, title=title)


def csv_body(rows: pl.DataFrame) -> bytes:
    """Text cells as CSV lines, as Python's csv writer writes them (minimal quoting, CRLF; an empty or missing
    cell is nothing, but '""' when it is the row's only cell), with formula-like text neutralised (see
    `io.neutralise`)."""
    from .io_write import _neutralise_expr  # noqa: PLC0415

    cols = rows.columns
    safe = rows.select(pl.col(c).cast(pl.String) for c in cols).with_columns(_neutralise_expr(c) for c in cols)
    # Polars writes an empty text as '""' and a missing one as nothing
    safe = safe.with_columns((pl.col(c).fill_null("") if len(cols) == 1 else pl.when(pl.col(c) != "").then(pl.col(c)))
                             .alias(c) for c in cols)
    out = io.BytesIO()
    safe.write_csv(out, include_header=False, line_terminator="\r\n", null_value="", quote_style="necessary")
    return out.getvalue()


class SharedName(Exception):
    """A name several units share: `ids` are theirs."""

    def __init__(self, ids: list[str]) -> None:
        super().__init__(", ".join(ids))
        self.ids = ids


def find_unit(run: Run, unit: str) -> dict[str, Any] | None:
    """The unit whose id is `unit` (ids are distinct), else the one unit of that name, with all its columns;
    None when there is none. A name several units share raises SharedName (it used to give the first of
    them, and a unit named like another's id hid that unit). Found by Polars: a unit late in a province's
    table is as quick to find as the first."""
    key = unit.strip()
    hit = run.frame.filter(pl.col("unit_id").cast(pl.String) == key)
    if not hit.height:
        hit = run.frame.filter((pl.col("name") == key).fill_null(False))
        if hit.height > 1:
            raise SharedName([str(u) for u in hit.get_column("unit_id").to_list()])
    return hit.row(0, named=True) if hit.height else None


def explain(run: Run, r: dict[str, Any], lang: Lang) -> str:
    """One unit's breakdown: every section and item with input, method, points and why."""
    p = run.scheme.meta.precision
    n_group = run.frame.filter(run.frame["unit_type"] == r["unit_type"]).height
    meta = run.scheme.meta
    out = [f"{r['name']} ({r['unit_id']}, {type_label(run, r['unit_type'], lang)}) — "
           f"{in_lang(meta.label, meta.label_en, meta.label, lang)}",
           f"{word('total', lang)} {fixed_str(r['total'], p, p)}   {word('grade', lang)} "
           f"{grade_label(run, r['grade'], lang)}   {word('rank', lang)} {r['rank']}/{n_group}", ""]
    for v in run.decisions.vetoes:
        if r.get(f"x.{v.id}"):
            out.append(f"{word('vetoes', lang)}: {v.label} ({r.get(f'xs.{v.id}')})")
    headers = [word("item", lang), word("value", lang), word("method", lang), word("points", lang),
               word("max", lang), word("why", lang)]
    for sec in run.scheme.sections:
        out += _section_lines(run, sec, r, lang, headers, 0)
    for pool in run.scheme.pools:
        out.append(f"[{pool.label}] {fixed_str(r[f'p.{pool.id}'], p, p)}" + _bounds(pool.floor, pool.max, lang))
        rows = [_item_row(run, it, r, lang) for it in pool.items]
        if rows:
            out.append(tabulate(rows, headers=headers, disable_numparse=True))
        out += _event_lines(run, f"pool:{pool.id}", r, lang)
        out.append("")
    out += [_total_line(run, r, lang), _grade_line(run, r, lang)]
    return "\n".join(out).rstrip() + "\n"


def _total_line(run: Run, r: dict[str, Any], lang: Lang) -> str:
    """How the total is made of the sections, their weights, the coefficient and the pools, exactly as
    evaluate does it: round(coefficient × Σ weight × section + Σ pools), then clamped."""
    from decimal import Decimal  # noqa: PLC0415

    from . import fixed as F  # noqa: PLC0415
    from .decide import resolver  # noqa: PLC0415
    from .fmt import plain  # noqa: PLC0415

    s = run.scheme
    p, zh = s.meta.precision, lang == "zh"
    terms, acc = [], Decimal(0)
    for sec in s.sections:
        v = r.get(f"s.{sec.id}")
        if v is not None:
            acc += Decimal(v).scaleb(-p) * sec.weight
            name = sec.label if zh else sec.id
            terms.append(f"{name} {fixed_str(v, p, p)}" + (f" × {plain(sec.weight)}" if sec.weight != 1 else ""))
    text = " + ".join(terms) or "0"
    if s.total.coefficient is not None:
        fx = F.compile_expr(s.total.coefficient.tree, resolver(s))
        k = run.frame.filter(pl.col("unit_id") == r["unit_id"]).select(fx.expr).item()
        factor = Decimal(k).scaleb(-fx.scale) if k is not None else None
        text = f"({text}) × {'系数' if zh else 'coefficient'} {plain(factor) if factor is not None else '—'}"
        acc = acc * factor if factor is not None else acc
    for pool in s.pools:
        v = r.get(f"p.{pool.id}")
        if v is not None:
            acc += Decimal(v).scaleb(-p)
            text += f" + {pool.label if zh else pool.id} {fixed_str(v, p, p)}"
    total = fixed_str(r["total"], p, p)
    exact = plain(acc)
    shown = f"{text} = {exact}" + (f" → {total}" if exact != total else "")
    t = s.total
    if (t.max is not None and acc > t.max) or (t.floor is not None and acc < t.floor):
        shown += f" ({'封顶' if zh else 'capped at'} {t.max})" if t.max is not None and acc > t.max else \
            f" ({'保底' if zh else 'floored at'} {t.floor})"
    return f"{word('total', lang)} = {shown}"


def _grade_line(run: Run, r: dict[str, Any], lang: Lang) -> str:
    """Why the unit has its grade: its total against the grades' thresholds, a veto's cap, or a full quota
    that passed it to the next grade (the places go in ranking order)."""
    from decimal import Decimal  # noqa: PLC0415

    from .fmt import plain  # noqa: PLC0415

    grades, zh = run.decisions.grades, lang == "zh"
    if not grades or r.get("grade") is None:
        return ""
    p = run.scheme.meta.precision
    total = Decimal(r["total"]).scaleb(-p)

    def passes(g: Any) -> bool:  # the grade's line (no min: 0), as decide.grade_reached
        line = g.min if g.min is not None else Decimal(0)
        return total >= line if g.inclusive else total > line

    def met(g: Any) -> bool | None:  # its condition: None when unknown (an empty value), which is not met
        return True if g.when is None else r.get(f"gw.{g.id}")

    by_total = next((g for g in grades[:-1] if passes(g) and met(g)), grades[-1])
    at = {g.id: i for i, g in enumerate(grades)}
    got = next(g for g in grades if g.id == r["grade"])
    lab: Callable[[Any], str] = (lambda g: g.label) if zh else (lambda g: g.id)
    head = f"{word('grade', lang)} {lab(got)}: "
    def failed(g: Any) -> str:  # "优秀的条件 … 不满足" (or cannot be decided, naming the empty field)
        cond, unknown = pretty(g.when.source, run, lang), met(g) is None
        fields = run.scheme.fields
        empty = "、".join(fields[n].label if zh else n for n in sorted(g.when.names())
                         if n in fields and r.get(n) is None) or ("有值" if zh else "a value")
        return (f"{lab(g)}的条件 {cond} {f'无法判断 ({empty}为空)' if unknown else '不满足'}" if zh else
                f"{g.id}'s condition {cond} {f'cannot be decided ({empty} is empty)' if unknown else 'is not met'}")

    def also(lo: int, hi: int) -> str:  # the grades between, passed over for their conditions
        return "".join(f"; {failed(g)}" for g in grades[lo:hi] if g.when is not None and not met(g))

    missed = [g for g in grades[:at[by_total.id]] if passes(g) and not met(g)]
    if missed:  # a better grade's line reached, its condition not (90分以上且全年未受通报批评)
        line = plain(missed[0].min or Decimal(0))
        head += (f"总分达到{lab(missed[0])}分数线 {line}, 但" if zh else
                 f"the total reaches {missed[0].id} ({line}), but ") + "; ".join(failed(g) for g in missed) + "; "
    caps = [v for v in run.decisions.vetoes if r.get(f"x.{v.id}") and v.grade is not None]
    worst = max(caps, key=lambda v: at[v.grade or ""], default=None)
    if worst is not None and at[worst.grade or ""] > at[by_total.id] and at[worst.grade or ""] <= at[got.id]:
        return head + (f"一票否决 ({worst.label}), 最高评为{lab(grades[at[worst.grade or '']])}" if zh else
                       f"vetoed ({worst.id}): at best {worst.grade}") + also(at[worst.grade or ""], at[got.id])
    if at[got.id] > at[by_total.id]:  # passed down by a full quota
        q = by_total.quota
        group = run.frame.filter(pl.col("unit_type") == r["unit_type"]).height if q and q.per == "unit_type" else \
            run.frame.height
        places = q.size(group) if q else 0
        keys = ", ".join(pretty(k.expr.source, run, lang) + (" desc" if k.descending else "")
                         for k in run.decisions.ranking.by)
        line = plain(by_total.min) if by_total.min is not None else ""
        return head + (f"总分达到{lab(by_total)}分数线 {line}, 但{lab(by_total)}名额 {places} 个已按排名 ({keys}) 分完"
                       if zh else f"the total reaches {by_total.id} ({line}), but its {places} places went to units "
                       f"ranked before it ({keys})") + also(at[by_total.id] + 1, at[got.id])
    if got.min is not None:
        return head + f"{'总分' if zh else 'total'} {fixed_str(r['total'], p, p)} {'≥' if got.inclusive else '>'} " \
            f"{plain(got.min)}"
    above = grades[-2] if len(grades) > 1 else None
    if above is None or above.min is None or missed:  # (over a line: its condition said why)
        return head.removesuffix("; ")
    return head + f"{'总分' if zh else 'total'} {fixed_str(r['total'], p, p)} {'<' if above.inclusive else '≤'} " \
        f"{plain(above.min)}"


def _bounds(lo: Any, hi: Any, lang: Lang) -> str:
    parts = []
    if hi is not None:
        parts.append(f"{word('capped', lang)} {hi}")
    if lo is not None:
        parts.append(f"{word('floored', lang)} {lo}")
    return f"  ({', '.join(parts)})" if parts else ""


def _section_lines(run: Run, sec: Section, r: dict[str, Any], lang: Lang, headers: list[str], depth: int
                   ) -> list[str]:
    p = run.scheme.meta.precision
    got = r.get(f"s.{sec.id}")
    indent = "  " * depth
    head = f"{indent}[{sec.label if lang == 'zh' else sec.id}] {fixed_str(got, p, p)}"
    if got is None:
        return [head + f"  ({word('na', lang)})", ""]
    if depth == 0 and sec.weight != 1:
        head += f"  × {sec.weight}"
    out = [head + _bounds(sec.floor, sec.max, lang)]
    rows = [_item_row(run, it, r, lang) for it in sec.items if r.get(f"i.{it.id}") is not None]
    if rows:
        out.append(tabulate(rows, headers=headers, disable_numparse=True))
    out += _event_lines(run, f"section:{sec.id}", r, lang)
    out.append("")
    for ch in sec.children:
        out += _section_lines(run, ch, r, lang, headers, depth + 1)
    return out


def _item_row(run: Run, it: Item, r: dict[str, Any], lang: Lang) -> list[str]:
    vs = run.plan.value_scale.get(it.id, 0)
    v, pts = r.get(f"v.{it.id}"), r.get(f"i.{it.id}")
    why = reason(it, v, vs, pts, ITEM_SCALE, lang, bool(r.get(f"n.{it.id}")))
    return [it.label if lang == "zh" else it.id, value_str(v, vs), method_label(it, lang),
            points_str(pts, ITEM_SCALE), fixed_str(int(it.points.scaleb(2)), 2) if it.points is not None else "",
            why]


def _event_lines(run: Run, target: str, r: dict[str, Any], lang: Lang) -> list[str]:
    if run.adjustments is None:
        return []
    ev = run.adjustments.filter((run.adjustments["unit_id"] == str(r["unit_id"]))
                                & (run.adjustments["target"] == target))
    return [f"  {word('event', lang)} {e['event_id']} {e['date']} {e.get('detail') or e['rule']}"
            for e in ev.iter_rows(named=True)]
