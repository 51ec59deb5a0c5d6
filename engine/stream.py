"""The streamed run: a units Parquet file read, parsed, checked and scored in one streaming query.

`kaohe run|score|awards` on Parquet (no event log, no per-item findings) take this path. The pass needs
the ranges of the number columns: they prove which values fit Int64 and which checks cannot fail (as in
`engine.data`), and let the scoring arithmetic stay in Int64. A small file (`READ_ONCE_CELLS`) is read
once and its statistics taken in memory. A large one is never held whole: a sample of its rows (start,
middle, end) gives ranges to assume (widened), and one pass in morsels parses, checks and scores it while
checking every value against those ranges; only if some value falls outside is the file scanned for its
statistics and passed again. The pass keeps only the columns the reports and decisions read. Only the
decisions (ranks, quotas, awards: they need every unit of a type) work on a whole, narrow frame.

Everything unusual goes to the eager path (`pipeline.load`), which reads the table whole and reports
problems row by row: columns that need more than a plain cast (text, Decimal, Float32 numbers), headers
that need tidying or mapping errors, empty files. A check that fails here also hands over, so every
problem is described by exactly the code that describes it on the eager path.
"""

from __future__ import annotations

import concurrent.futures
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl

from .data import (
    Stats,
    _id_checks,
    _id_key,
    _parse,
    _stat_kind,
    absent_fields,
    field_checks,
    raw_stat_exprs,
    raw_stats_of,
    totals_rows,
    type_code,
)
from .decide import needed_columns
from .errors import KaoheError
from .evaluate import Plan, _checks, build_plan
from .io_columns import map_columns, unit_aliases, wanted_columns
from .io_read import _clean, sha256_file
from .model import Field, Scheme
from .rules_model import Decisions

SIMPLE = (pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32, pl.Float64)


def scored_stream(scheme: Scheme, dec: Decisions, path: Path) -> tuple[Plan, pl.DataFrame, str] | None:
    """(the Plan, the scored frame with the columns reports and decisions read, the file's SHA-256), or
    None when the eager path must run."""
    file = str(path)
    try:
        schema = pl.read_parquet_schema(path)
    except Exception:  # noqa: BLE001 - any unreadable file: the eager path says what is wrong with it
        return None
    names = list(schema)
    if any(n != n.strip() or not n for n in names):
        return None
    labels = {f.id: f.label for f in scheme.fields.values()}
    cols = scheme.columns
    aliases = unit_aliases(cols.id, cols.name, cols.type, scheme.fields)
    wanted = wanted_columns(labels, (cols.id, cols.name, cols.type, *aliases))
    keep = [n for n in names if wanted(n)]
    try:
        mapped = map_columns(pl.DataFrame(schema={n: schema[n] for n in keep}), labels, path=file, aliases=aliases)
    except KaoheError:
        return None
    rename = dict(zip(keep, mapped.columns, strict=True))
    types = mapped.schema
    try:  # a misspelt optional header: the eager path says so; a missing one is said (pipeline.run keeps it)
        absent_fields(scheme, types, [n for n in names if not wanted(n)], file)
    except KaoheError:
        return None
    fields = [f for f in scheme.fields.values() if f.id in types]
    if cols.id not in types or cols.type not in types or types[cols.type] != pl.String:
        return None
    if not (types[cols.id].is_integer() or types[cols.id] == pl.String) or any(
            f.required or f.required_for for f in scheme.fields.values() if f.id not in types):
        return None
    for f in fields:
        dt = types[f.id]
        ok = (dt in SIMPLE if f.type in ("int", "decimal") else dt == pl.Boolean if f.type == "bool"
              else dt == pl.String)
        if not ok:
            return None
    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # hashing releases the GIL: it overlaps the scan
        digest = pool.submit(sha256_file, path)
        try:
            out = _scored(scheme, dec, pl.scan_parquet(path).select(keep).rename(rename), fields)
        except pl.exceptions.PolarsError:  # e.g. a damaged page: the eager path says what is wrong with the file
            out = None
        sha = digest.result()
    if out is None:
        return None
    frame, plan = out
    return plan, frame, sha


READ_ONCE_CELLS = 8_000_000  # a table up to this many cells (~64 MB) is read whole: one read, statistics in memory
WIDEN = 4  # how far beyond the sample's range the assumed range reaches
REACH = 1024  # and at least this far from 0 (a rare count, all 0 in the sample, is no 0 in the table)
SAMPLE_ROWS = 21_000  # rows of a larger table (its first, middle and last), whose ranges the pass assumes, widened


class _Unfit(Exception):
    """A value outside the ranges the streamed pass assumed (`_assumed`): the pass is run again with the
    table's statistics."""


def _scored(scheme: Scheme, dec: Decisions, lf: pl.LazyFrame, fields: list[Field]) -> tuple[pl.DataFrame, Plan] | None:
    """A small table is read once and its statistics taken in memory. A large one is read in morsels
    (reading it whole would double the peak memory), assuming ranges taken from a sample of its rows, and
    the pass checks every value against them: a table that holds to them is read once; one that does not is
    scanned for its statistics and passed again (the result is the same either way)."""
    raw_schema = lf.collect_schema()
    rows = lf.select(pl.len()).collect().item()  # from the file's metadata
    if rows == 0:
        return None  # the eager path says the table is empty
    if rows * len(raw_schema) <= READ_ONCE_CELLS:
        lf = lf.collect().lazy()
    else:
        assumed = _assumed(_sample(lf, rows), raw_schema, fields)
        if assumed is not None:
            try:
                return _pass(scheme, dec, lf, fields, *assumed)
            except _Unfit:
                pass
    row = lf.select(raw_stat_exprs(raw_schema, fields) or [pl.len()]).collect().row(0, named=True)
    return _pass(scheme, dec, lf, fields, raw_stats_of(row, raw_schema, fields))


def _sample(lf: pl.LazyFrame, rows: int) -> pl.LazyFrame:
    """A third of SAMPLE_ROWS from the start, middle and end of the table each: a table sorted by some
    number has its least and greatest values in the sample (Parquet reads only those rows' pages)."""
    if rows <= SAMPLE_ROWS:
        return lf
    part = max(1, SAMPLE_ROWS // 3)
    return pl.concat([lf.slice(start, part) for start in (0, (rows - part) // 2, rows - part)])


def _assumed(sample: pl.LazyFrame, schema: pl.Schema, fields: list[Field]) -> tuple[dict[str, Stats], pl.Expr] | None:
    """Statistics to assume for the whole table, and the mask of the values that break them.

    Each number column is assumed within [a, b] (`_widened`: the sample's range widened, inside the declared
    bounds). Within it every value fits, so the parse is the plain cast, no cell fails to parse, and a value
    can fail no declared bound the range lies inside. NaN is outside every range (Polars orders NaN above
    every number). Emptiness is not assumed: those checks stay. None when nothing can be assumed."""
    exprs = raw_stat_exprs(schema, fields)
    # each part of the sample read by itself (shared, the file would be read whole once, then sliced)
    no_sharing = pl.QueryOptFlags(comm_subplan_elim=False)
    sample_row = sample.select(exprs).collect(optimizations=no_sharing).row(0, named=True) if exprs else {}
    row: dict[str, Any] = {}
    outside: list[pl.Expr] = []
    for f in fields:
        kind = _stat_kind(f, schema[f.id])
        if kind not in ("int", "float"):
            if f.type in ("int", "decimal"):
                return None  # a number column the statistics path hands to the eager path
            continue
        lo, hi = sample_row[f"{f.id}.lo"], sample_row[f"{f.id}.hi"]
        a, b = _widened(lo, hi, f.min, f.max, integer=kind == "int")
        if a > b:
            return None  # the sample breaks a declared bound: the statistics path reports it
        row |= {f"{f.id}.lo": a, f"{f.id}.hi": b, f"{f.id}.nulls": 0, f"{f.id}.nan": 0}
        masks = _outside(pl.col(f.id), schema[f.id], a, b)
        if masks is None:
            return None
        outside += masks
    stats = raw_stats_of(row, schema, [f for f in fields if f"{f.id}.lo" in row])
    if not all(s["fits"] for s in stats.values()):
        return None
    for s in stats.values():
        s.update(blank=None, unparsed=None)  # unknown, and equal: no cell fails to parse (it fits and is no NaN)
    return stats, pl.any_horizontal(outside) if outside else pl.lit(False)


def _outside(col: pl.Expr, dt: pl.DataType, a: float, b: float) -> list[pl.Expr] | None:
    """Masks of the values of `col` (of type dt) below a or above b, compared in the column's own type (a
    cast here costs the streaming pass memory); none for an end the type cannot pass. None when no value
    of the type lies within [a, b]."""
    if not isinstance(dt, pl.datatypes.IntegerType):
        return [col < a, col > b]
    least, most = pl.select(dt.min().alias("lo"), dt.max().alias("hi")).row(0)
    if a > most or b < least:
        return None
    return ([col < pl.lit(a, dtype=dt)] if a > least else []) + ([col > pl.lit(b, dtype=dt)] if b < most else [])


def _widened(lo: float | None, hi: float | None, low: object, high: object, *, integer: bool) -> tuple[float, float]:
    """[a, b] for a column whose sample runs from lo to hi (None: no value): from 0 (or, below 0, a power
    of two at least WIDEN times the sample's least value, and at least REACH) to a power of two at least
    WIDEN times its greatest (and at least REACH), within the declared bounds low/high (a Decimal, or
    another field's id: no bound). A positive low end is not raised above 0: a table's few smallest values
    are rarely in the sample."""
    def reach(x: float) -> float:  # a power of two at least WIDEN * |x|, and at least REACH
        return float(2 ** math.ceil(math.log2(max(WIDEN * abs(x), REACH))))

    a = -reach(lo) if lo is not None and lo < 0 else 0.0
    b = reach(hi if hi is not None else 1.0)
    if isinstance(low, Decimal):
        a = max(a, math.ceil(low) if integer else float(low))
    if isinstance(high, Decimal):
        b = min(b, math.floor(high) if integer else float(high))
    return (math.ceil(a), math.floor(b)) if integer else (a, b)


def _pass(scheme: Scheme, dec: Decisions, lf: pl.LazyFrame, fields: list[Field],
          stats: dict[str, Stats], outside: pl.Expr | None = None) -> tuple[pl.DataFrame, Plan] | None:
    """Parse, check and score `lf` in one streaming query, given the statistics of its columns; or, when
    `outside` is given, assumed statistics (`_assumed`) and the mask of the values that break them: raises
    `_Unfit` if any does."""
    cols = scheme.columns
    raw_schema = lf.collect_schema()
    text = [c for c, t in raw_schema.items() if t == pl.String]
    # text is cleaned as the eager read does; but the unit type is used as it is: a value that needs trimming
    # is no type (`_type` null, a failing check), so that rare file goes to the eager path, which trims it
    lf = lf.with_columns(_clean(c) for c in text if c != cols.type)
    key = pl.col(cols.id)
    numbers_fit = all(stats[f.id].get("fits") and "unparsed" in stats[f.id] for f in fields
                      if f.type in ("int", "decimal"))
    if not numbers_fit:
        return None
    named = cols.name in raw_schema and cols.name != cols.id
    uid = key.cast(pl.String)
    types = list(scheme.unit_types)
    checks = _id_checks(scheme, unique_ids=True)  # distinct ids: checked on the result, below
    for f in fields:
        checks += field_checks(f, raw_schema[f.id], scheme, stats.get(f.id))
    raws = sorted({c for ch in checks for c in ch.mask.meta.root_names() if c.startswith("raw.")})
    parsed = lf.select(
        pl.int_range(2, pl.len() + 2, dtype=pl.UInt32).alias("_row"), uid.alias("unit_id"),
        *([pl.coalesce(pl.col(cols.name).cast(pl.String), uid).alias("name")] if named else []),  # none: the id
        pl.col(cols.type).alias("unit_type"),
        (key.cast(pl.Int64) if raw_schema[cols.id].is_integer() else pl.lit(None, dtype=pl.Int64)).alias("_id_key"),
        type_code(pl.col(cols.type), types).alias("_type"),
        *[_parse(raw_schema, f, stats.get(f.id)) for f in scheme.fields.values()],
        *[pl.col(r.removeprefix("raw.")).alias(r) for r in raws],
        *([outside.alias("_outside")] if outside is not None else []))
    ranges = {f: (s["lo"], s["hi"]) for f, s in stats.items() if s.get("lo") is not None}
    plan, scored = build_plan(scheme, parsed, ranges=ranges)
    bad = [c.mask for c in checks] + [m for _, _, m in _checks(plan)]
    need = set(needed_columns(scheme, dec))
    out = [c for c in scored.collect_schema().names()
           if c in ("_row", "unit_id", "name", "unit_type", "_id_key", "_type", "total") or c.startswith(("s.", "p."))
           or c in need]
    out += ["_outside"] if outside is not None else []
    try:  # a null mask is no problem: `any` below skips it, as `fill_null(False)` would
        frame = scored.select(*out, (pl.any_horizontal(bad) if bad else pl.lit(False)).alias("_bad")) \
            .collect(engine="streaming")
    except pl.exceptions.PolarsError:  # e.g. a product outside Int64 (strict cast): the eager path reports it
        if outside is not None:
            raise _Unfit from None  # perhaps a value outside the assumed ranges: the statistics decide
        return None
    if outside is not None:
        if frame.get_column("_outside").any():
            raise _Unfit
        frame = frame.drop("_outside")
    if frame.get_column("_bad").any():
        return None
    frame = frame.drop("_bad")
    if not named:  # the name is the id: the same column, not a second cast
        frame.insert_column(frame.get_column_index("unit_id") + 1, frame.get_column("unit_id").alias("name"))
    if not raw_schema[cols.id].is_integer():
        frame = frame.with_columns(_id_key=_id_key(frame.get_column("unit_id")))
    if frame.get_column("_id_key").n_unique() != frame.height:
        return None  # maybe a duplicate id: distinct keys are distinct ids (equal keys: the eager path looks)
    texts = ([] if raw_schema[cols.id].is_integer() else ["unit_id"]) + (["name"] if named else [])
    texts = [c for c in texts if frame.schema[c] == pl.String]
    if texts and frame.select(totals_rows(texts).is_not_null().any()).item():
        return None  # a 合计 row with a valid type: the eager path refuses it by its row
    return frame, plan
