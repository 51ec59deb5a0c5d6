"""The committee's output: each award's ranked recommendations, nearest misses and, for every
unit, why it is or is not recommended (reason codes ordered by points lost). The texts are made for all
units at once (`engine.report_cols`)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import polars as pl

from .fmt import Lang, fixed_str, in_lang, word
from .pipeline import Run
from .report import text_table_pieces, type_label
from .report_cols import STATUS, award_units, fixed_text, grade_text, status_text, type_text
from .rules_model import Award

__all__ = ["STATUS", "awards_document", "awards_json", "awards_text", "awards_text_pieces"]


def awards_text(run: Run, lang: Lang, misses: int = 3) -> str:
    return "".join(awards_text_pieces(run, lang, misses))


def awards_text_pieces(run: Run, lang: Lang, misses: int = 3) -> Iterator[str]:
    """Each award's recommendations (a table), then its nearest misses with their reasons; award by award,
    and a long table in pieces (`text_table_pieces`)."""
    p = run.scheme.meta.precision
    meta = run.scheme.meta
    yield f"{in_lang(meta.label, meta.label_en, meta.label, lang)} — {word('awards', lang)}\n"
    awards = run.decisions.awards
    for k, award in enumerate(awards):
        pre = f"a.{award.id}"
        units = award_units(run, award, [lang], others=misses)  # the nearest misses are the first of a status
        quota = _quota_text(run, award, lang)
        yield f"\n【{in_lang(award.label, award.label_en, award.id, lang)}】 {word('quota', lang)} {quota}\n"
        shown = [pl.col(f"{pre}.pos").cast(pl.String), pl.col("unit_id").cast(pl.String), pl.col("name"),
                 type_text(run, lang), fixed_text(pl.col("total"), p, p), grade_text(run, lang),
                 *([pl.col(f"{pre}.level").fill_null("")] if award.levels else []), status_text(pl.col(pre), lang)]
        rows = units.filter("rec").select(shown)
        heads = ["#", word("unit_id", lang), word("unit", lang), word("type", lang), word("total", lang),
                 word("grade", lang), *(["奖次" if lang == "zh" else "level"] if award.levels else []),
                 word("recommended", lang)]
        if rows.height:
            yield from text_table_pieces(heads, rows, "table")
        else:
            yield "  (无推荐单位)" if lang == "zh" else "  (no unit recommended)"
        near = units.filter(~pl.col("rec") & (pl.col(pre).cast(pl.String) != "not_applicable"))
        per_type = award.quota is not None and award.quota.per == "unit_type"
        groups = [(t, near.filter(pl.col("unit_type") == t).head(misses)) for t in run.scheme.unit_types] \
            if per_type else [(None, near.head(misses))]
        tail = []
        for t, part in groups:  # places per type: each type's nearest misses (a type's place may go unused)
            if part.height:
                kind = f"({type_label(run, t, lang)})" if t is not None else ""
                heading = f"  最接近的未入选单位{kind}" if lang == "zh" else f"  nearest misses {kind}".rstrip()
                tail.append(heading + ":")
                tail += [f"  - {r['name']} ({r['unit_id']}, {fixed_str(r['total'], p, p)}): {r[f'reason_{lang}']}"
                         for r in part.iter_rows(named=True)]
        text = "".join("\n" + t for t in tail)
        yield (text.rstrip() if k == len(awards) - 1 else text) + "\n"  # the text ends in one line break


def _quotas(run: Run, award: Award) -> dict[str, int]:
    """The award's places per unit type (types it applies to, in the frame's order of first appearance)."""
    pre = f"a.{award.id}"
    per = (run.frame.lazy().filter(pl.col(pre).cast(pl.String) != "not_applicable")
           .group_by("unit_type", maintain_order=True).agg(pl.col(pre + ".quota").last()).collect())
    return dict(zip(per.get_column("unit_type").cast(pl.String).to_list(), per.get_column(pre + ".quota").to_list(),
                    strict=True))


def _quota_text(run: Run, award: Award, lang: Lang) -> str:
    per = _quotas(run, award)
    if award.quota is not None and award.quota.per == "unit_type":
        return ", ".join(f"{type_label(run, t, lang)} {n}" for t, n in per.items())
    return str(next(iter(per.values()), 0))


def awards_json(run: Run, chunk: int = 100_000) -> Iterator[bytes]:
    """The JSON document of a run (the issue contract: scheme, manifest, units, awards), as UTF-8 in pieces.
    The frame around the lists is indented; each unit, recommendation and unit not selected is one compact
    object a line, written by Polars (a million units in seconds, not minutes of Python objects; and a line
    per unit diffs well). Numbers are the doubles nearest the exact decimals, as `float('89.54')` gives."""
    meta = run.scheme.meta
    head = json.dumps({"scheme": {"id": meta.id, "label": meta.label, **({"label_en": meta.label_en} if meta.label_en
                                                                        else {}), "year": meta.year},
                       "manifest": run.manifest}, ensure_ascii=False, indent=2)
    yield (head.removesuffix("\n}") + ',\n  "units": ').encode()
    yield from _array(_units(run), "  ", chunk)
    yield b',\n  "awards": ['
    for k, award in enumerate(run.decisions.awards):
        pre = f"a.{award.id}"
        units = award_units(run, award, ["zh", "en"]).with_columns(
            _num("total", meta.precision), pl.col(pre).cast(pl.String), pl.col("unit_id").cast(pl.String))
        rec = units.filter("rec").select("unit_id", "name", pl.col(pre + ".pos").alias("rank"), "total",
                                         pl.col(pre + ".level").alias("level"), pl.col(pre).alias("status"))
        rest = units.filter(~pl.col("rec")).select("unit_id", pl.col(pre).alias("status"),
                                                   pl.col("reason_zh").alias("reason"), "reason_en")
        obj = json.dumps({"id": award.id, "label": award.label, **({"label_en": award.label_en} if award.label_en
                                                                    else {}), "quota": _quota_json(run, award)},
                         ensure_ascii=False, indent=2).replace("\n", "\n    ")
        yield (("," if k else "") + "\n    " + obj.removesuffix("\n    }") + ',\n      "recommended": ').encode()
        yield from _array(rec, "      ", chunk)
        yield b',\n      "not_selected": '
        yield from _array(rest, "      ", chunk)
        yield b"\n    }"
    yield b"\n  ]\n}" if run.decisions.awards else b"]\n}"


def awards_document(run: Run) -> dict[str, Any]:
    """The JSON document of a run as Python objects (`awards_json`, read back)."""
    doc: dict[str, Any] = json.loads(b"".join(awards_json(run)))
    return doc


def _num(col: str, scale: int) -> pl.Expr:
    """A scaled integer column as the double nearest its exact decimal value (IEEE division by a column: Polars
    multiplies by the reciprocal of a constant divisor, which can be one unit off in the last place)."""
    c = pl.col(col).cast(pl.Float64)
    out: pl.Expr = c / (c * 0 + 10**scale)
    return out.alias(col)


def _units(run: Run) -> pl.DataFrame:
    """One row a unit (by unit type, then order) with the document's fields; nested objects as structs."""
    p = run.scheme.meta.precision
    secs, pools, vetoes = run.scheme.all_sections(), run.scheme.pools, run.decisions.vetoes
    nums = ["total", *[f"s.{s.id}" for s in secs], *[f"p.{q.id}" for q in pools]]
    veto = pl.Struct({"id": pl.String, "label": pl.String, "source": pl.String})
    hits = pl.concat_list([pl.when(pl.col(f"x.{v.id}")).then(pl.struct(
        id=pl.lit(v.id), label=pl.lit(v.label), source=pl.col(f"xs.{v.id}").cast(pl.String))) for v in vetoes]
    ).list.drop_nulls() if vetoes else pl.lit([], dtype=pl.List(veto))

    def obj(keys: list[str], cols: list[str]) -> pl.Expr:  # an empty object: null here, {} in the text
        return pl.struct([pl.col(c).alias(k) for k, c in zip(keys, cols, strict=True)]) if keys else pl.lit(None)

    return (run.frame.lazy().with_columns(_num(c, p) for c in nums)
            .sort(pl.col("unit_type").cast(pl.String), pl.col("order"), maintain_order=True)
            .select(pl.col("unit_id").cast(pl.String), "name", pl.col("unit_type").cast(pl.String).alias("type"),
                    "total", pl.col("grade").cast(pl.String), "rank", pl.col("rank_all").alias("rank_overall"),
                    obj([s.id for s in secs], [f"s.{s.id}" for s in secs]).alias("sections"),
                    obj([q.id for q in pools], [f"p.{q.id}" for q in pools]).alias("pools"),
                    hits.alias("vetoes"))
            .collect())


def _array(frame: pl.DataFrame, indent: str, chunk: int) -> Iterator[bytes]:
    """A JSON array of the frame's rows, one compact object a line, `chunk` rows at a time."""
    if frame.height == 0:
        yield b"[]"
        return
    yield b"["
    sep = (",\n" + indent + "  ").encode()
    for start in range(0, frame.height, chunk):
        buf = io.BytesIO()
        frame.slice(start, chunk).write_ndjson(buf)
        lines = buf.getvalue().rstrip(b"\n")
        # no raw line break or quote sequence below occurs inside a JSON string (they are escaped there)
        lines = lines.replace(b',"sections":null', b',"sections":{}').replace(b',"pools":null', b',"pools":{}')
        yield (b"," if start else b"") + b"\n" + indent.encode() + b"  " + lines.replace(b"\n", sep)
    yield ("\n" + indent + "]").encode()


def _quota_json(run: Run, award: Award) -> Any:
    per = _quotas(run, award)
    if award.quota is not None and award.quota.per == "unit_type":
        return dict(sorted(per.items()))
    return next(iter(per.values()), 0)
