"""The whole run, as a library call: scheme + units (+ events) -> scored and decided frame.

`run(Inputs(...))` is what every CLI command builds on; it reads each input once and returns
everything the reports need, with a manifest (hashes, version, options) for reproducibility.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import polars as pl

from . import __version__
from .data import absent_fields, prepare_units
from .decide import AwardInfo, decide, event_counts, needed_columns
from .errors import KaoheError, Loc, Notice, Problem, UsageProblem
from .evaluate import Plan, evaluate
from .model import Scheme
from .rules_load import load_decisions
from .rules_model import Decisions
from .scheme import load_scheme


@dataclass(frozen=True)
class Inputs:
    scheme: Path
    data: Path
    events: Path | None = None
    encoding: str | None = None
    sheet: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    events_sheet: str | None = None  # of an .xlsx event log (default: engine.event_rules.EVENT_SHEETS, else the first)
    no_events: bool = False  # score without an event log although the scheme has event rules (said, not assumed)
    lang: str = "en"  # the language of the notes the manifest records (the CLI's --lang)


@dataclass(frozen=True)
class Run:
    scheme: Scheme
    decisions: Decisions
    plan: Plan
    frame: pl.DataFrame  # one row per unit: inputs, findings columns, decisions
    awards: dict[str, AwardInfo]
    adjustments: pl.DataFrame | None  # event-rule rows (engine.events), when an event log was given
    manifest: dict[str, Any]


DEMO_SCHEMES = ("township-2022.yaml", "cadres-2022.yaml")


def demo_scheme_name(path: Path) -> str | None:
    """The bundled demo scheme `path` is (its file name), or None for any other scheme file."""
    rules = Path(str(resources.files("rules")))
    for name in DEMO_SCHEMES:
        with contextlib.suppress(OSError):
            if Path(path).resolve() == (rules / name).resolve():
                return name
    return None


def _events_given(scheme: Scheme, inputs: Inputs) -> None:
    """A scheme with event rules scores an event log: without one (and without `no_events`), its event
    vetoes and points would be left out without a word (a fatal accident's unit recommended as 优秀)."""
    rules = scheme.raw.get("events") or []
    if not rules or inputs.events is not None or inputs.no_events:
        return
    labels = {str(v.get("id")): str(v.get("label") or v.get("id")) for v in scheme.raw.get("vetoes") or []
              if isinstance(v, dict)}
    vetoes = dict.fromkeys(labels.get(str(r["veto"]), str(r["veto"])) for r in rules
                           if isinstance(r, dict) and r.get("veto"))
    what = f"{len(rules)} event rule{'s' if len(rules) != 1 else ''}" + (
        f"; the vetoes {', '.join(vetoes)} come from it" if vetoes else "")
    what_zh = f"{len(rules)} 条事件规则" + (f"; 一票否决 {', '.join(vetoes)} 来自事件记录" if vetoes else "")
    raise UsageProblem([Problem(Loc(_shown(inputs.scheme)), f"the scheme scores an event log ({what}) but no "
                                "event log was given", hint="pass --events FILE (the year's log; a file with "
                                "only its header row if nothing happened), or --no-events to score without events",
                                zh=(f"方案要用事件记录计分 ({what_zh}), 但没有给出事件记录",
                                    "请加上 --events 文件 (全年的事件记录; 没有发生事件的, 给一个只有表头行的文件), "
                                    "或用 --no-events 不计事件"))])


def midyear_demo() -> tuple[Path, Path]:
    """The demo township's year-to-date units table and event log at 2023-06-30 (`simulate --as-of`)."""
    fixtures = Path(str(resources.files("fixtures"))) / "2023-h1"
    return fixtures / "units.csv", fixtures / "events.csv"


def demo_inputs(scheme: str = "township-2022.yaml") -> Inputs:
    """The bundled demo township (works from a checkout and from an installed package)."""
    rules = Path(str(resources.files("rules")))
    fixtures = Path(str(resources.files("fixtures"))) / "2022"
    data = {"township-2022.yaml": "units.csv", "cadres-2022.yaml": "cadres.csv"}.get(scheme, "units.csv")
    events = fixtures / "events.csv" if scheme == "township-2022.yaml" else None
    return Inputs(rules / scheme, fixtures / data, events if events and events.exists() else None)


def read_units(inputs: Inputs, scheme: Scheme) -> tuple[pl.DataFrame, str, str, dict[str, str]]:
    """The units table (only the columns the scheme uses, for Parquet), its path, its SHA-256, and the
    headers as the file writes them of the columns renamed to their field ids (field id -> header)."""
    from .io import map_columns, read_table_info  # noqa: PLC0415
    from .io_columns import unit_aliases, wanted_columns  # noqa: PLC0415

    labels = {f.id: f.label for f in scheme.fields.values()}
    cols = scheme.columns
    aliases = unit_aliases(cols.id, cols.name, cols.type, scheme.fields)
    wanted = wanted_columns(labels, (cols.id, cols.name, cols.type, *aliases))
    df, info = read_table_info(inputs.data, encoding=inputs.encoding, sheet=inputs.sheet, what="units",
                               wanted=wanted)
    mapped = map_columns(df, labels, path=inputs.data, aliases=aliases)
    heads = list(pl.read_parquet_schema(inputs.data)) if info.format == "parquet" else df.columns
    absent_fields(scheme, mapped.columns, [h for h in heads if not wanted(h)], str(inputs.data))
    written = {new: old for old, new in zip(df.columns, mapped.columns, strict=True) if old != new}
    return mapped, str(inputs.data), info.sha256, written


@dataclass(frozen=True)
class Loaded:
    """Inputs read and validated, before scoring (simulation transforms these)."""

    scheme: Scheme
    decisions: Decisions
    units: pl.DataFrame  # engine.data.prepare_units frame
    path: str
    events: pl.DataFrame | None  # the validated event log
    inputs: Inputs
    year: int  # the assessment year (the scheme's, or the as-of year of a mid-year run)
    hashes: dict[str, str] = field(default_factory=dict)  # input path -> SHA-256 of the bytes read
    notes: tuple[str, ...] = ()  # what reading the inputs said (`errors.Notice`: rows left out as a note)


def load(inputs: Inputs, *, year: int | None = None) -> Loaded:
    """Read and validate everything; `year` overrides the scheme's assessment year (mid-year runs)."""
    scheme = load_scheme(inputs.scheme)
    decisions = load_decisions(scheme)
    _events_given(scheme, inputs)
    with _noted(inputs.lang) as notes:
        df, path, sha, written = read_units(inputs, scheme)
        try:
            units = prepare_units(df, scheme, path=path, release=True)
        except KaoheError as e:  # a column is named as the file heads it (安全培训演练次数), not by its field id
            raise KaoheError([_as_written(p, written) for p in e.problems]) from None
        events = None
        hashes = {path: sha}
        if inputs.events is not None and scheme.raw.get("events"):
            from .event_rules import read_events  # noqa: PLC0415

            events = read_events(scheme, inputs.events, units.frame.get_column("unit_id"), encoding=inputs.encoding,
                                 year=year, hashes=hashes, sheet=inputs.events_sheet,
                                 unit_names=dict(zip(units.frame.get_column("name"), units.frame.get_column("unit_id"),
                                                     strict=True)))
    return Loaded(scheme, decisions, units.frame, path, events, inputs, year or scheme.meta.year, hashes,
                  tuple(notes))


def _as_written(p: Problem, written: dict[str, str]) -> Problem:
    """`p` with its column named by the file's header, where the file heads it otherwise than its id."""
    if p.loc.column not in written:
        return p
    return dataclasses.replace(p, loc=dataclasses.replace(p.loc, column=written[p.loc.column]))


@contextlib.contextmanager
def _noted(lang: str) -> Iterator[list[str]]:
    """The `Notice`s issued inside, as texts (for the manifest); each is passed on to the caller's warning
    handlers too (the CLI prints them), also when the block fails."""
    texts: list[str] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", Notice)
            yield texts
    finally:  # said also when the block fails: a skipped row explains a message about the rows after it
        texts += _passed_on(caught, lang)


def _passed_on(caught: list[warnings.WarningMessage], lang: str) -> tuple[str, ...]:
    """The texts of the `Notice`s among `caught`, in `lang`; every warning caught is issued again to the
    caller's handlers (the CLI prints notices)."""
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return tuple(w.message.problem.text(lang) for w in caught if isinstance(w.message, Notice))


def score(ld: Loaded, *, detail: bool = True) -> Run:
    """Score and decide. detail=False skips the per-item findings columns (explain, gap and the workbook
    need them; tables, awards and JSON do not), which saves memory and time at county scale and up."""
    adjustments, vetoes = None, None
    notes = ld.notes
    if ld.events is not None:
        from .event_rules import load_event_rules  # noqa: PLC0415 - loads durable-rules only when needed
        from .events import run_event_rules  # noqa: PLC0415

        with _noted(ld.inputs.lang) as said:  # events no rule matches
            from .event_rules import event_fields  # noqa: PLC0415

            labels = {f.id: f.label for f in event_fields(ld.scheme).values()}
            adjustments = run_event_rules(ld.events, load_event_rules(ld.scheme), path=str(ld.inputs.events),
                                          labels=labels, strict=True)
        notes += tuple(said)
        vetoes = adjustments.filter(pl.col("veto").is_not_null())
    plan, scored = evaluate(ld.scheme, ld.units, path=ld.path,
                            adjustments=adjustments.filter(pl.col("points").is_not_null())
                            if adjustments is not None else None,
                            detail=detail, keep=frozenset(needed_columns(ld.scheme, ld.decisions)))
    frame, infos = decide(ld.scheme, ld.decisions, event_counts(ld.decisions, scored, adjustments), vetoes)
    return Run(ld.scheme, ld.decisions, plan, frame, infos, adjustments,
               manifest(ld.scheme, ld.inputs, ld.hashes, notes))


def run(inputs: Inputs, *, detail: bool = True) -> Run:
    """Read, validate, score and decide. A Parquet units table without an event log, when the per-item
    findings are not wanted, is streamed (engine.stream); anything that needs more takes the eager path."""
    if not detail and inputs.events is None and Path(inputs.data).suffix.lower() == ".parquet":
        from .stream import scored_stream  # noqa: PLC0415

        scheme = load_scheme(inputs.scheme)
        decisions = load_decisions(scheme)
        _events_given(scheme, inputs)
        with warnings.catch_warnings(record=True) as caught:  # passed on only if it streams (else the eager
            warnings.simplefilter("always", Notice)  # path says the same again)
            streamed = scored_stream(scheme, decisions, Path(inputs.data))
        if streamed is None:  # the eager path says its notices again: pass on only the other warnings
            for w in caught:
                if not isinstance(w.message, Notice):
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        else:
            notes = _passed_on(caught, inputs.lang)
            plan, scored, sha = streamed
            frame, infos = decide(scheme, decisions, event_counts(decisions, scored, None))  # no log: all 0
            return Run(scheme, decisions, plan, frame, infos, None,
                       manifest(scheme, inputs, {str(inputs.data): sha}, notes))
    return score(load(inputs), detail=detail)


def manifest(scheme: Scheme, inputs: Inputs, hashes: dict[str, str] | None = None, notes: tuple[str, ...] = ()
             ) -> dict[str, Any]:
    """Scheme and input hashes (of the bytes actually read, where known), version and options; what reading
    the inputs noted, if anything (rows left out as a note)."""
    from .io import sha256_file  # noqa: PLC0415

    def digest(p: Path) -> str:
        return (hashes or {}).get(str(p)) or sha256_file(p)

    paths = [p for p in (inputs.data, inputs.events) if p is not None]
    return {"scheme": _shown(inputs.scheme), "scheme_sha256": scheme.sha256,
            "inputs": {_shown(p): digest(p) for p in paths}, "kaohe_version": __version__,
            "options": dict(sorted(inputs.options.items())), **({"notes": list(notes)} if notes else {})}


def _shown(path: Path) -> str:
    """A path as the user would write it: relative to the working directory when inside it."""
    rel = os.path.relpath(Path(path).resolve(), Path.cwd())
    return str(path) if rel.startswith("..") else rel
