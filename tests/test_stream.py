"""The streamed run (engine.stream) gives what the eager path gives, and hands anything unusual over to it."""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from helpers import DEMO_SCHEME
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import KaoheError
from engine.pipeline import Inputs, load, run, score
from engine.report import render, score_table
from engine.rules_load import load_decisions
from engine.scheme import load_scheme
from engine.stream import scored_stream

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "benchmark" / "reference.yaml"


def _generate(scheme_path: Path, n: int) -> pl.DataFrame:
    sys.path.insert(0, str(ROOT / "tests" / "benchmark"))
    from synth import generate  # type: ignore[import-not-found]  # noqa: PLC0415 - importable only after the sys.path insert above

    return generate(load_scheme(scheme_path), n)  # type: ignore[no-any-return]


def _parquet(tmp_path: Path, df: pl.DataFrame) -> Path:
    path = tmp_path / "units.parquet"
    df.write_parquet(path)
    return path


def _count_passes(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Each streamed pass that runs: True when it assumed ranges (`stream._assumed`)."""
    from engine import stream  # noqa: PLC0415

    passes: list[bool] = []
    real = stream._pass

    def counted(*a: object, **k: object) -> object:
        passes.append(len(a) > 5)
        return real(*a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(stream, "_pass", counted)
    return passes


def _streams(scheme_path: Path, data: Path) -> bool:
    scheme = load_scheme(scheme_path)
    return scored_stream(scheme, load_decisions(scheme), data) is not None


@pytest.mark.parametrize("scheme_path", [REFERENCE, DEMO_SCHEME], ids=["reference", "demo"])
@pytest.mark.parametrize("ids", ["text", "integer"])
@pytest.mark.parametrize("read_once", [True, False], ids=["read-once", "scanned-twice"])
def test_streamed_run_is_the_eager_run(tmp_path: Path, scheme_path: Path, ids: str, read_once: bool,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Small tables are read once (statistics in memory); large ones are read in one pass assuming the
    ranges of a sample of their rows: both are the eager run."""
    from engine import stream  # noqa: PLC0415

    monkeypatch.setattr(stream, "READ_ONCE_CELLS", 10**9 if read_once else 0)
    passes = _count_passes(monkeypatch)
    reads: list[bool] = []
    collect = pl.LazyFrame.collect
    monkeypatch.setattr(pl.LazyFrame, "collect", lambda self, *a, **k: (
        reads.append("Parquet SCAN" in self.explain()), collect(self, *a, **k))[1])
    df = _generate(scheme_path, 400)
    if ids == "integer":
        df = df.with_columns(pl.int_range(1000, 1000 + df.height, step=1).reverse().alias(df.columns[0]))
    inputs = Inputs(scheme_path, _parquet(tmp_path, df), no_events=True)
    assert _streams(scheme_path, inputs.data)
    assert sum(reads) == (2 if read_once else 3)  # the row count (metadata), then the table, or a sample and it
    assert passes == [False if read_once else True]  # one pass; assuming the sample's ranges, when scanned
    streamed, eager = run(inputs, detail=False), score(load(inputs), detail=False)
    assert streamed.frame.equals(eager.frame.select(streamed.frame.columns))
    assert streamed.manifest == eager.manifest
    for lang in ("zh", "en"):
        assert render(*score_table(streamed, lang), "csv") == render(*score_table(eager, lang), "csv")


@pytest.mark.parametrize(("change", "why"), [
    (lambda df: df.with_columns(pl.col("revenue_actual").cast(pl.String)), "numbers written as text"),
    (lambda df: df.with_columns(pl.col("employment_rate").cast(pl.Float32)), "Float32 compares as float32"),
    (lambda df: df.with_columns(pl.col("revenue_actual").cast(pl.Decimal(20, 4))), "Decimal column"),
    (lambda df: df.head(0), "no rows"),
    (lambda df: df.rename({"unit_type": " unit_type"}), "a header to tidy"),
])
def test_anything_unusual_takes_the_eager_path(tmp_path: Path, change: object, why: str) -> None:
    df = change(_generate(REFERENCE, 50))  # type: ignore[operator]
    assert not _streams(REFERENCE, _parquet(tmp_path, df)), why


def test_a_unit_type_to_trim_takes_the_eager_path_and_scores_alike(tmp_path: Path) -> None:
    """The streamed pass reads the unit type as it is; ' village ' is trimmed by the eager path only."""
    df = _generate(REFERENCE, 60)
    padded = df.with_columns(pl.when(pl.int_range(pl.len()) % 7 == 3).then(pl.format(" {} ", pl.col("unit_type")))
                             .otherwise(pl.col("unit_type")).alias("unit_type"))
    clean, dirty = Inputs(REFERENCE, _parquet(tmp_path, df)), Inputs(REFERENCE, tmp_path / "padded.parquet")
    padded.write_parquet(dirty.data)
    assert _streams(REFERENCE, clean.data) and not _streams(REFERENCE, dirty.data)
    streamed = run(clean, detail=False).frame
    assert run(dirty, detail=False).frame.select(streamed.columns).equals(streamed)


@pytest.mark.parametrize(("column", "value", "message"), [
    ("unit_id", "U0000003", "duplicate unit id 'U0000003'"),
    ("revenue_actual", 12.345, "'12.345' has more than 2 decimals"),
    ("employment_rate", float("nan"), "empty cell"),
    ("employment_rate", 1.5, "above the maximum"),
    ("projects_signed", -1, "below the minimum"),
    ("deaths", None, "empty cell"),
    ("unit_type", "town", "unknown unit type 'town'"),
])
@pytest.mark.parametrize("read_once", [True, False], ids=["read-once", "assumed-ranges"])
def test_a_problem_found_while_streaming_is_reported_by_the_eager_path(tmp_path: Path, column: str, value: object,
                                                                         message: str, read_once: bool,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Read once, or passed assuming the ranges of 3 sampled rows (the problem is in row 8, not sampled)."""
    from engine import stream  # noqa: PLC0415

    monkeypatch.setattr(stream, "READ_ONCE_CELLS", 10**9 if read_once else 0)
    monkeypatch.setattr(stream, "SAMPLE_ROWS", 5)
    df = _generate(REFERENCE, 50)
    df = df.with_columns(pl.when(pl.int_range(pl.len()) == 6).then(pl.lit(value)).otherwise(pl.col(column))
                         .cast(df.schema[column]).alias(column))
    path = _parquet(tmp_path, df)
    assert not _streams(REFERENCE, path)
    with pytest.raises(KaoheError) as info:
        run(Inputs(REFERENCE, path), detail=False)
    assert "row 8" in str(info.value) and message in str(info.value)


@pytest.mark.parametrize("read_once", [True, False], ids=["read-once", "assumed-ranges"])
def test_a_value_too_large_to_score_exactly_is_reported_not_a_traceback(tmp_path: Path, read_once: bool,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A product outside Int64 stops the streaming query (strict cast); the eager path says which value.
    Assuming the first row's range, the large value is outside it: the statistics pass finds it."""
    from engine import stream  # noqa: PLC0415

    monkeypatch.setattr(stream, "READ_ONCE_CELLS", 10**9 if read_once else 0)
    monkeypatch.setattr(stream, "SAMPLE_ROWS", 1)
    text = ("scheme: {id: t, label: 测试方案, year: 2022}\nunit_types: {village: 村}\n"
            "fields:\n  big: {label: 大数, type: decimal, scale: 4}\n"
            "sections:\n  - {id: s, label: 项, items: [{id: x, label: x, points: 10, value: big * big * big, "
            "method: direct}]}\n")
    scheme_path = tmp_path / "scheme.yaml"
    scheme_path.write_text(text, encoding="utf-8")
    data = _parquet(tmp_path, pl.DataFrame({"unit_id": ["u1", "u2"], "unit_type": ["village"] * 2,
                                            "big": [1.0, 900000000.0]}))
    assert not _streams(scheme_path, data)
    with pytest.raises(KaoheError, match="too large to score exactly"):
        run(Inputs(scheme_path, data), detail=False)


def test_columns_headed_by_their_chinese_labels_stream_too(tmp_path: Path) -> None:
    """A table headed by field labels (as `kaohe template` writes it), with a name column, streams and
    gives the eager path's result."""
    scheme = load_scheme(DEMO_SCHEME)
    labels = {f.id: f.label for f in scheme.fields.values()}
    df = _generate(DEMO_SCHEME, 200)
    df = df.rename({c: labels[c] for c in df.columns if c in labels})
    if scheme.columns.name not in df.columns:
        df = df.with_columns(pl.format("单位{}", pl.col(scheme.columns.id)).alias(scheme.columns.name))
    inputs = Inputs(DEMO_SCHEME, _parquet(tmp_path, df), no_events=True)
    assert _streams(DEMO_SCHEME, inputs.data)
    streamed, eager = run(inputs, detail=False), score(load(inputs), detail=False)
    assert streamed.frame.equals(eager.frame.select(streamed.frame.columns))
    assert streamed.frame.get_column("name").str.starts_with("单位").all()


@pytest.mark.parametrize("scheme_path", [REFERENCE, DEMO_SCHEME], ids=["reference", "demo"])
def test_decisions_are_alike_on_either_polars_engine(tmp_path: Path, scheme_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """engine.decide runs its plan on Polars' in-memory engine below IN_MEMORY_BELOW units and on the
    streaming engine above: both give the same decisions (tests run small frames, so force each)."""
    from engine import decide as decide_module  # noqa: PLC0415 - the switch under test

    inputs = Inputs(scheme_path, _parquet(tmp_path, _generate(scheme_path, 300)), no_events=True)
    frames = []
    for below in (0, 10**9):
        monkeypatch.setattr(decide_module, "IN_MEMORY_BELOW", below)
        frames.append(run(inputs, detail=False).frame)
    assert frames[0].equals(frames[1])
    assert frames[0].get_column("rank").n_unique() > 1


def test_distinct_ids_equal_as_numbers_are_not_duplicates(tmp_path: Path) -> None:
    """'7' and '007' sort as the number 7 (equal sort keys), so the streamed pass cannot tell them apart
    by key and hands over; the eager path finds them distinct and scores both."""
    df = _generate(REFERENCE, 40).with_columns(pl.format("{}", pl.int_range(pl.len())).alias("unit_id"))
    df = df.with_columns(pl.when(pl.int_range(pl.len()) == 39).then(pl.lit("007")).otherwise(pl.col("unit_id"))
                         .alias("unit_id"))
    path = _parquet(tmp_path, df)
    assert not _streams(REFERENCE, path)
    out = run(Inputs(REFERENCE, path), detail=False).frame
    assert sorted(out.get_column("unit_id").to_list()) == sorted(df.get_column("unit_id").to_list())


def test_a_damaged_file_is_reported_by_the_eager_path_not_a_traceback(tmp_path: Path) -> None:
    """The schema reads, a data page does not: the streamed reads hand over, and the eager read says so."""
    path = _parquet(tmp_path, _generate(REFERENCE, 400))
    data = bytearray(path.read_bytes())
    data[len(data) // 4: len(data) // 4 + 2000] = bytes(2000)  # inside the column chunks, the footer intact
    path.write_bytes(bytes(data))
    assert not _streams(REFERENCE, path)
    with pytest.raises(KaoheError, match=r"cannot read as Parquet.*write it again"):
        run(Inputs(REFERENCE, path), detail=False)


@pytest.mark.parametrize(("column", "value"), [
    ("revenue_actual", 98765432.1),  # far beyond the sample's range (no declared maximum)
    ("projects_signed", 5000),  # an integer column
    ("afforest_target", float("nan")),  # NaN is an empty cell: the item is not applicable
    ("collective_income", -5.5),  # below 0, no declared minimum
])
def test_values_beyond_the_sampled_ranges_score_as_the_eager_run(tmp_path: Path, column: str, value: object,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A large table is passed assuming the ranges of a sample of its rows (widened); a value outside them
    elsewhere sends it to its statistics and a second pass, with the eager run's result."""
    from engine import stream  # noqa: PLC0415

    monkeypatch.setattr(stream, "READ_ONCE_CELLS", 0)
    monkeypatch.setattr(stream, "SAMPLE_ROWS", 20)
    passes = _count_passes(monkeypatch)
    df = _generate(REFERENCE, 200)
    df = df.with_columns(pl.when((pl.int_range(pl.len()) == 150) & pl.col(column).is_not_null()).then(pl.lit(value))
                         .otherwise(pl.col(column)).cast(df.schema[column]).alias(column))
    inputs = Inputs(REFERENCE, _parquet(tmp_path, df))
    streamed, eager = run(inputs, detail=False), score(load(inputs), detail=False)
    assert passes == [True, False]
    assert streamed.frame.equals(eager.frame.select(streamed.frame.columns))


@pytest.mark.parametrize(("sample", "declared", "integer", "expected"), [
    ((-300, 1234.5), (None, None), False, (-2048.0, 8192.0)),  # powers of two at least 4x the sample's ends
    ((2.5, 7.0), (None, None), False, (0.0, 1024.0)),  # a positive low end goes to 0; at least 1024 from 0
    ((0.8113, 1.0), (Decimal("0"), Decimal("1")), False, (0.0, 1.0)),  # declared bounds hold
    ((50.0, 4000.0), (Decimal("0.01"), None), False, (0.01, 16384.0)),
    ((None, None), (None, None), False, (0.0, 1024.0)),  # no value in the sample
    ((0, 12), (Decimal("0.5"), Decimal("99.5")), True, (1, 99)),  # integer columns: whole bounds inside
    ((-1, 0), ("other_field", None), True, (-1024, 1024)),  # a bound that is another field is no bound here
])
def test_assumed_ranges_widen_the_sample(sample: tuple[float | None, float | None],
                                             declared: tuple[object, object], integer: bool,
                                             expected: tuple[float, float]) -> None:
    from engine.stream import _widened  # noqa: PLC0415

    assert _widened(*sample, *declared, integer=integer) == expected


def test_a_table_sorted_by_a_number_keeps_to_its_sampled_ranges(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The sample is the table's start, middle and end: sorted by revenue, its greatest value is sampled and
    the table is passed once (its first rows alone would miss the largest revenues by far)."""
    from engine import stream  # noqa: PLC0415

    monkeypatch.setattr(stream, "READ_ONCE_CELLS", 0)
    monkeypatch.setattr(stream, "SAMPLE_ROWS", 30)
    passes = _count_passes(monkeypatch)
    df = _generate(REFERENCE, 300).with_columns((pl.col("revenue_actual") * (pl.int_range(pl.len()) + 1)).round(2))
    inputs = Inputs(REFERENCE, _parquet(tmp_path, df.sort("revenue_actual")))
    first = df.sort("revenue_actual").head(10).get_column("revenue_actual").max()
    assert df.get_column("revenue_actual").max() > 4 * first  # type: ignore[operator]
    streamed, eager = run(inputs, detail=False), score(load(inputs), detail=False)
    assert passes == [True]
    assert streamed.frame.equals(eager.frame.select(streamed.frame.columns))


@pytest.mark.parametrize("beyond", [False, True], ids=["within", "beyond"])
def test_narrow_integer_columns_and_an_empty_column_on_the_assumed_path(tmp_path: Path, beyond: bool,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """UInt8, Int16 and UInt32 columns are checked against the assumed ranges in their own types (an end the
    type cannot pass is not checked); an optional column empty throughout has no range to sample. A value
    beyond the sampled range of the Int16 column takes the second pass; either way, the eager run's result."""
    from engine import stream  # noqa: PLC0415

    monkeypatch.setattr(stream, "READ_ONCE_CELLS", 0)
    monkeypatch.setattr(stream, "SAMPLE_ROWS", 30)
    passes = _count_passes(monkeypatch)
    df = _generate(REFERENCE, 200).with_columns(
        pl.col("projects_signed").cast(pl.UInt8), pl.col("criminal_cases").cast(pl.UInt32),
        pl.when(pl.int_range(pl.len()) == 150).then(30_000 if beyond else 7).otherwise(pl.col("new_entities"))
        .cast(pl.Int16).alias("new_entities"),
        pl.lit(None, dtype=pl.Float64).alias("collective_income"))
    inputs = Inputs(REFERENCE, _parquet(tmp_path, df))
    streamed, eager = run(inputs, detail=False), score(load(inputs), detail=False)
    assert passes == ([True, False] if beyond else [True])
    assert streamed.frame.equals(eager.frame.select(streamed.frame.columns))


_ODD = {"revenue_actual": [0.0, 98765432.1, 1e15, float("nan"), 12.345], "collective_income": [None, -5.5, 3e9],
        "afforest_target": [None, float("nan"), 0.0, 7e6], "employment_rate": [0.0, 1.0, 1.5, -0.2],
        "projects_signed": [0, 3000, -1], "new_entities_target": [1, 0, 70000], "deaths": [0, 9, 40000]}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 199), st.sampled_from(sorted(_ODD)), st.integers(0, 4)), max_size=4))
def test_any_values_on_the_assumed_path_score_or_fail_as_the_eager_run(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch,
                                                                       changes: list[tuple[int, str, int]]) -> None:
    """Random cells set to values beyond the sampled ranges, below 0, NaN, empty, with too many decimals,
    out of their declared bounds or too large to score: the streamed run (assuming the ranges of a 9-row
    sample) gives the eager run's frame, or the eager run's error."""
    from engine import stream  # noqa: PLC0415

    monkeypatch.setattr(stream, "READ_ONCE_CELLS", 0)
    monkeypatch.setattr(stream, "SAMPLE_ROWS", 9)
    df = _generate(REFERENCE, 200)
    for row, column, pick in changes:
        value = _ODD[column][pick % len(_ODD[column])]
        df = df.with_columns(pl.when(pl.int_range(pl.len()) == row).then(pl.lit(value)).otherwise(pl.col(column))
                             .cast(df.schema[column]).alias(column))
    inputs = Inputs(REFERENCE, _parquet(tmp_path, df))
    try:
        eager = score(load(inputs), detail=False).frame
    except KaoheError as e:
        with pytest.raises(KaoheError) as info:
            run(inputs, detail=False)
        assert str(info.value) == str(e)
        return
    streamed = run(inputs, detail=False).frame
    assert streamed.equals(eager.select(streamed.columns))
