"""kaohe command line: a thin shell over the engine (the only module that imports click).

Exit codes: 0 ok, 1 problems in a scheme or data file, 2 bad usage.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from engine import __version__
from engine.errors import KaoheError, Notice, UsageProblem

if TYPE_CHECKING:
    from datetime import datetime

    from engine.fmt import Lang
    from engine.pipeline import Inputs, Run
    from engine.simulate import Projection

FORMATS = ("table", "csv", "json", "markdown")
AS_OF_FORMATS = ["%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日"]  # as the event log takes dates


class KaoheGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("always", Notice)
            shown = warnings.showwarning
            said: set[str] = set()  # a notice once (simulate reads the inputs for the baseline and the scenario)

            def show(message: Warning | str, category: type[Warning], *a: Any, **k: Any) -> None:
                if isinstance(message, Notice):  # as its place, message and hint: no Python source line
                    zh = _lang(ctx) == "zh"
                    text = f"{'提示' if zh else 'note'}: {message.problem.text(_lang(ctx))}"
                    if text not in said:
                        said.add(text)
                        click.echo(text, err=True)
                else:
                    shown(message, category, *a, **k)

            warnings.showwarning = show
            try:
                return super().invoke(ctx)
            except KaoheError as e:
                click.echo(e.render(_lang(ctx)), err=True)
                sys.exit(2 if isinstance(e, UsageProblem) else 1)


def _lang(ctx: click.Context) -> Lang:
    """The command's --lang (known once parsed: the option is eager), else Chinese."""
    return ctx.meta.get("kaohe.lang", "zh")  # type: ignore[no-any-return]


def _say(zh: str, en: str) -> str:
    """The command's words in its --lang."""
    return zh if _lang(click.get_current_context()) == "zh" else en


def _keep_lang(ctx: click.Context, param: click.Parameter, value: Lang) -> Lang:
    ctx.meta["kaohe.lang"] = value  # shared by the group's context: its messages are in this language too
    return value


def lang_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True, is_eager=True,
                        callback=_keep_lang,
                        help="Language of the tool's words and messages (labels come from the scheme).")(f)


def input_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--scheme/--data/--events/--encoding/--sheet/--events-sheet: the demo township when not given."""
    opts: list[Callable[[Callable[..., Any]], Callable[..., Any]]] = [
        click.option("--scheme", "scheme", type=click.Path(path_type=Path),
                     help="Scheme file (YAML). Default: the bundled demo township 2022."),
        click.option("--data", "data", type=click.Path(path_type=Path),
                     help="Units table (.csv, .xlsx, .parquet). Default: the scheme's demo data."),
        click.option("--events", "events", type=click.Path(path_type=Path),
                     help="Event log (.csv, .xlsx, .parquet). Default: the demo's, when the demo is used."),
        click.option("--encoding", help="Text encoding of CSV inputs (default: detect UTF-8 / UTF-8-BOM / GBK)."),
        click.option("--sheet", help="Sheet of an .xlsx units table, by name or number (default: the first shown)."),
        click.option("--no-events", "no_events", is_flag=True,
                     help="Score without an event log although the scheme has event rules (no event points, "
                          "no event vetoes); the manifest records it."),
        click.option("--events-sheet", "events_sheet",
                     help="Sheet of an .xlsx event log, by name or number (default: 事件记录 or events, else the "
                          "first shown)."),
        lang_option,
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _stdout_dash(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    return None if value is not None and str(value) == "-" else value  # `-o -`: stdout, as other tools read it


def _output_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("-o", "--output", type=click.Path(path_type=Path), callback=_stdout_dash,
                        help="Write to this file instead of stdout ('-': stdout).")(f)


def output_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = _output_option(f)
    return click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
                        help="Output format.")(f)


def build_inputs(scheme: Path | None, data: Path | None, events: Path | None, encoding: str | None,
                 sheet: str | None, events_sheet: str | None, no_events: bool = False, **options: Any) -> Inputs:
    """The run's inputs. Without --scheme and --data: the demo township (its data and event log). A bundled
    demo scheme named by --scheme is the same demo; any other scheme needs --data (the demo's units are not
    its units). Whether the scheme's event rules got a log is checked by the pipeline (`errors.UsageProblem`)."""
    from engine.pipeline import Inputs, demo_inputs, demo_scheme_name  # noqa: PLC0415

    if no_events and events is not None:
        raise click.UsageError(_say("--no-events 和 --events 不能同时使用",
                                    "--no-events and --events exclude each other"))
    if scheme is None or data is None:
        name = demo_scheme_name(scheme) if scheme is not None else "township-2022.yaml"
        if name is None:
            raise click.UsageError(_say(f"用 --scheme {scheme} 时须给出 --data: 要计分的单位数据表 "
                                        "(自带的演示数据只配自带的演示方案)",
                                        f"--data is required with --scheme {scheme}: give the units table to score "
                                        "(the bundled demo data goes with the bundled demo schemes only)"))
        demo = demo_inputs(name)
        if data is None and not no_events:  # the demo's event log goes with the demo's data
            events = events or demo.events
        scheme = scheme or demo.scheme
        data = data or demo.data
    if events_sheet is not None and events is None:
        raise click.UsageError(_say("--events-sheet 须与 --events 一起使用", "--events-sheet needs --events"))
    for option, value, path in (("--sheet", sheet, data), ("--events-sheet", events_sheet, events)):
        if value is not None and path is not None and path.suffix.lower() != ".xlsx":
            raise click.UsageError(_say(f"{option} 用于选择 .xlsx 工作簿中的工作表; {path} 不是 .xlsx 文件, "
                                        f"请去掉 {option}",
                                        f"{option} chooses a sheet of an .xlsx file; {path} is not one"))
    if no_events:
        options["no_events"] = True
    return Inputs(scheme, data, events, encoding, sheet, options, events_sheet, no_events=no_events,
                  lang=_lang(click.get_current_context()))


SUFFIX_FORMATS = {".csv": "csv", ".json": "json", ".md": "markdown", ".markdown": "markdown", ".xlsx": "xlsx"}


def _format_of(fmt: str, output: Path | None) -> str:
    """The output format: `--format` when given; else the one -o FILE's suffix names (`-o 推荐.xlsx` used to
    write a text table into a file Excel cannot open). A --format that contradicts the suffix is refused."""
    implied = SUFFIX_FORMATS.get(output.suffix.lower()) if output is not None and str(output) != "-" else None
    if implied is None or implied == fmt:
        return fmt
    ctx = click.get_current_context()
    choices = next(p.type.choices for p in ctx.command.params if p.name == "fmt")  # type: ignore[attr-defined]
    if ctx.get_parameter_source("fmt") is not click.core.ParameterSource.DEFAULT:
        suffix = output.suffix  # type: ignore[union-attr]
        raise click.UsageError(_say(f"--format {fmt} 与 -o {output} 不符 ({suffix} 文件是 {implied}); 请去掉 --format, "
                                    "或改文件后缀", f"--format {fmt} does not match -o {output} (a {suffix} file is "
                                    f"{implied}); drop --format, or change the file's suffix"))
    if implied not in choices:
        raise click.UsageError(_say(f"-o {output}: kaohe {ctx.command.name} 只能写 {', '.join(choices)}, 不能写 "
                                    f"{implied}; 请换一个文件后缀", f"-o {output}: kaohe {ctx.command.name} writes "
                                    f"{', '.join(choices)}, not {implied}; give the file another suffix"))
    return implied


def _midyear_demo(events: Path | None, no_events: bool) -> tuple[Path, Path | None]:
    """A year-to-date run of the demo (--as-of without --scheme/--data) reads the demo's mid-year table and
    event log (fixtures/2023-h1), not its full year's (whose dates are of 2022)."""
    from engine.pipeline import midyear_demo  # noqa: PLC0415

    data, log = midyear_demo()
    return data, events if events is not None or no_events else log


def _title(scheme: Any, lang: Lang) -> str:
    """The scheme's title in the chosen language (its label_en in English, when it has one)."""
    from engine.fmt import in_lang  # noqa: PLC0415

    return in_lang(scheme.meta.label, scheme.meta.label_en, scheme.meta.label, lang)


def emit(text: str | bytes | Iterable[str | bytes], output: Path | None, inputs: Inputs | None = None,
         manifest: dict[str, Any] | None = None) -> None:
    """Print, or write atomically to -o FILE (CSV with a BOM for Excel). A file output that cannot hold
    the run manifest itself gets it beside it as FILE.manifest.json (JSON outputs embed it). `text` may
    come in pieces (a large JSON document or CSV table is never one string), as text or as UTF-8 bytes."""
    pieces = [text] if isinstance(text, (str, bytes)) else text
    if output is None:
        for piece in pieces:
            click.echo(piece if isinstance(piece, str) else piece.decode("utf-8"), nl=False)
        return
    import json  # noqa: PLC0415

    from engine.io import write_atomic  # noqa: PLC0415

    paths = [p for p in (inputs.scheme, inputs.data, inputs.events) if p is not None] if inputs else []
    bom = b"\xef\xbb\xbf" if output.suffix.lower() == ".csv" else b""

    def encoded() -> Iterator[bytes]:
        for k, p in enumerate(pieces):
            data = p.encode("utf-8") if isinstance(p, str) else p
            yield bom + data if k == 0 and not data.startswith(bom) else data

    write_atomic(output, encoded(), inputs=paths)
    click.echo(_say(f"已写入 {output}", f"wrote {output}"), err=True)
    if manifest is not None and output.suffix.lower() != ".json":
        side = output.with_name(output.name + ".manifest.json")
        write_atomic(side, json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", inputs=paths)
        click.echo(_say(f"已写入 {side}", f"wrote {side}"), err=True)


def with_run(f: Callable[..., Any]) -> Callable[..., Any]:
    """Run the pipeline for a command; per-item findings only where the output shows them."""
    @functools.wraps(f)
    def wrapper(scheme: Path | None, data: Path | None, events: Path | None, encoding: str | None,
                sheet: str | None, events_sheet: str | None, no_events: bool, **kw: Any) -> Any:
        from engine.pipeline import run  # noqa: PLC0415

        inputs = build_inputs(scheme, data, events, encoding, sheet, events_sheet, no_events)
        if "fmt" in kw:
            kw["fmt"] = _format_of(kw["fmt"], kw.get("output"))
        detail = f.__name__ == "explain" or kw.get("fmt") == "xlsx"
        return f(run(inputs, detail=detail), inputs, **kw)

    return wrapper


@click.group(cls=KaoheGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kaohe")
def main() -> None:
    """kaohe 考核: score units against a published assessment scheme, exactly and explainably.

    Without --scheme/--data every command uses the bundled demo township (2022).
    """


@main.command()
@click.argument("scheme", type=click.Path(path_type=Path), nargs=-1)
@lang_option
def check(scheme: tuple[Path, ...], lang: Lang) -> None:
    """Check scheme files: report every problem with file:line:col, exit 1 if any."""
    from engine.errors import KaoheError as KE  # noqa: PLC0415
    from engine.pipeline import demo_inputs  # noqa: PLC0415
    from engine.scheme import read_scheme  # noqa: PLC0415

    paths = list(scheme) or [demo_inputs().scheme]
    problems = []
    for path in paths:
        try:
            s, found = read_scheme(path)
        except KE as e:  # not YAML
            problems += e.problems
            continue
        if s is not None:
            found += _later_problems(s, bool(found))
        if found:
            problems += found
        else:
            assert s is not None
            n_items = len(s.all_items())
            fields, sections, pools = len(s.fields), len(s.all_sections()), len(s.pools)
            click.echo(_say(f"{path}: 无误 — {s.meta.label}: {fields} 个字段, {sections} 个板块, {n_items} 个考核项目, "
                            f"{pools} 个加减分项",
                            f"{path}: ok — {s.meta.label}: {fields} fields, {sections} sections, {n_items} items, "
                            f"{pools} pools"))
    if problems:
        raise KE(problems)


def _later_problems(s: Any, partial: bool) -> list[Any]:
    """The problems of a scheme's decisions, event rules and test cases, each stage looked at although an
    earlier one has problems (a scheme with 12 mistakes took three rounds of `check`). A stage that fails
    otherwise on a scheme read only in part (`partial`) is passed over: its problems follow from the ones
    already said; on a scheme read whole, it is a bug and raises."""
    from engine.errors import KaoheError as KE  # noqa: PLC0415
    from engine.event_rules import load_event_rules  # noqa: PLC0415
    from engine.rules_load import load_decisions  # noqa: PLC0415
    from engine.schemetests import cases  # noqa: PLC0415

    found: list[Any] = []
    stages = [load_decisions, cases] + ([load_event_rules] if s.raw.get("events") else [])
    for stage in stages:
        try:
            stage(s)  # cases: the scheme's own test cases are well-formed (`kaohe test` runs them)
        except KE as e:
            found += e.problems
        except Exception:  # a partly read scheme can trip a later stage: said above
            if not partial:
                raise
    return found


@main.command(name="test")
@click.argument("scheme", type=click.Path(path_type=Path), nargs=-1)
@lang_option
def test_cmd(scheme: tuple[Path, ...], lang: Lang) -> None:
    """Run the test cases written in scheme files (their `tests:` list); exit 1 if any fails."""
    from engine.pipeline import demo_inputs  # noqa: PLC0415
    from engine.scheme import load_scheme  # noqa: PLC0415
    from engine.schemetests import run_all  # noqa: PLC0415

    paths = list(scheme) or [demo_inputs().scheme]
    failed = total = 0
    for path in paths:
        for case in run_all(load_scheme(path)):
            total += 1
            mark = "ok  " if case.ok else "FAIL"
            click.echo(f"{mark} {case.loc}: {case.name}" + "".join(f"\n       {f}" for f in case.failures))
            failed += not case.ok
    click.echo(_say(f"{total - failed} 个通过, {failed} 个失败", f"{total - failed} passed, {failed} failed"))
    if failed:
        sys.exit(1)


@main.command()
@input_options
@output_options
@with_run
def score(r: Run, inputs: Inputs, fmt: str, output: Path | None, lang: Lang) -> None:
    """Print the ranked score table (sections, pools, total, grade)."""
    from engine.report import rendered, score_table  # noqa: PLC0415

    headers, rows = score_table(r, lang)
    emit(rendered(headers, rows, fmt, title=_title(r.scheme, lang) if fmt == "table" else ""), output, inputs,
         r.manifest)


@main.command()
@click.argument("unit")
@input_options
@with_run
def explain(r: Run, inputs: Inputs, unit: str, lang: Lang) -> None:
    """Explain one unit's score: every item's input, method, points and why. UNIT is an id or a name."""
    from engine.report import explain as explain_unit  # noqa: PLC0415
    from engine.report import find_unit  # noqa: PLC0415

    row = find_unit(r, _unit_id(r, unit))
    assert row is not None  # _unit_id has found it
    click.echo(explain_unit(r, row, lang), nl=False)


def _awards_output(r: Run, inputs: Inputs, fmt: str, output: Path | None, lang: Lang, with_scores: bool) -> None:

    from engine.awards_report import awards_json, awards_text_pieces  # noqa: PLC0415
    from engine.report import rendered, score_table  # noqa: PLC0415

    if fmt == "json":  # written as it is made: at a million units the text is most of a gigabyte
        emit(itertools.chain(awards_json(r), [b"\n"]), output, inputs)
    elif fmt == "xlsx":
        if output is None:
            raise click.UsageError(_say("--format xlsx 须用 -o 文件.xlsx 指定输出文件",
                                        "--format xlsx needs -o FILE.xlsx"))
        from engine.workbook import write_workbook  # noqa: PLC0415

        write_workbook(r, output, inputs=[p for p in (inputs.scheme, inputs.data, inputs.events) if p], lang=lang)
        click.echo(_say(f"已写入 {output}", f"wrote {output}"), err=True)
    elif fmt in ("csv", "markdown"):
        from engine.fmt import in_lang, word  # noqa: PLC0415
        from engine.workbook import award_table  # noqa: PLC0415

        def parts() -> Iterator[str | bytes]:  # award by award, as they are made
            for k, a in enumerate(r.decisions.awards):
                name = in_lang(a.label, a.label_en, a.id, lang)
                heads, rows = award_table(r, a, lang)
                if fmt == "markdown":
                    yield from [*(["\n"] if k else []), *rendered(heads, rows, fmt, title=name)]
                    continue
                # one CSV table: the award in the first column, the header once (a spreadsheet filters on it)
                import polars as pl  # noqa: PLC0415

                table = rendered([word("award", lang), *heads], rows.select(pl.lit(name).alias("award"), pl.all()),
                                 fmt)
                yield from itertools.islice(table, 1 if k else 0, None)  # the first piece is the header line

        emit(parts(), output, inputs, r.manifest)
    else:
        def text() -> Iterator[str | bytes]:  # the score table in pieces, as it is made; then the awards
            if with_scores:
                yield from rendered(*score_table(r, lang), "table", title=_title(r.scheme, lang))
                yield "\n"
            yield from awards_text_pieces(r, lang)

        emit(text(), output, inputs, r.manifest)


def award_output_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--format (table, json, xlsx, csv, markdown) and -o for the commands that print awards."""
    f = _output_option(f)
    formats = click.Choice(["table", "json", "xlsx", "csv", "markdown"])
    return click.option("--format", "fmt", type=formats, default="table", show_default=True, help="Output format.")(f)


@main.command()
@input_options
@award_output_options
@with_run
def awards(r: Run, inputs: Inputs, fmt: str, output: Path | None, lang: Lang) -> None:
    """Ranked award recommendations within quotas, nearest misses and reasons."""
    _awards_output(r, inputs, fmt, output, lang, with_scores=False)


@main.command(name="run")
@input_options
@award_output_options
@with_run
def run_cmd(r: Run, inputs: Inputs, fmt: str, output: Path | None, lang: Lang) -> None:
    """The main job: score every unit, decide grades and awards, print the ranked recommendations."""
    _awards_output(r, inputs, fmt, output, lang, with_scores=True)


@main.command()
@input_options
@click.option("--as-of", "as_of", type=click.DateTime(formats=AS_OF_FORMATS),
              help="Year-to-date run at this date (YYYY-MM-DD): targets pro-rated or actuals projected. Without "
                   "--scheme/--data: the demo township's mid-year table and event log (fixtures/2023-h1).")
@click.option("--project", type=click.Choice(["none", "linear", "schedule"]), default="none", show_default=True,
              help="none: pro-rate targets; linear/schedule: extrapolate year-to-date actuals to year end.")
@click.option("--set", "sets", multiple=True, metavar="UNIT.FIELD=VALUE", help="Override one value (repeatable).")
@click.option("--scenario", type=click.Path(path_type=Path),
              help="A table of overrides (unit_id + field columns), "
                   "or of extra events (event_id, date, unit_id, kind).")
@click.option("--gaps", is_flag=True, help="Add the smallest single change that reaches the next grade or award.")
@output_options
def simulate(scheme: Path | None, data: Path | None, events: Path | None, encoding: str | None, sheet: str | None,
             events_sheet: str | None, no_events: bool, lang: Lang, as_of: datetime | None, project: Projection,
             sets: tuple[str, ...], scenario: Path | None, gaps: bool, fmt: str, output: Path | None) -> None:
    """Mid-year simulation and what-if scenarios, shown beside the baseline."""
    from engine.pipeline import load  # noqa: PLC0415
    from engine.pipeline import score as score_run  # noqa: PLC0415
    from engine.report import rendered  # noqa: PLC0415
    from engine.sim_report import compare_table, header  # noqa: PLC0415
    from engine.simulate import apply_sets, as_of_run, scenario_events  # noqa: PLC0415

    if as_of is None and project != "none":
        raise click.UsageError("--project needs --as-of")
    fmt = _format_of(fmt, output)
    if as_of is not None and scheme is None and data is None:
        data, events = _midyear_demo(events, no_events)
    inputs = build_inputs(scheme, data, events, encoding, sheet, events_sheet, no_events,
                          as_of=as_of.date().isoformat() if as_of else None, project=project, sets=list(sets),
                          scenario=str(scenario) if scenario else None)
    base_ld = load(inputs, year=as_of.year if as_of else None)
    scen_ld = None
    if sets or scenario:
        scen_ld = base_ld
        if scenario is not None:
            scen_ld = scenario_events(scen_ld, scenario, encoding)
        if sets:
            scen_ld = apply_sets(scen_ld, sets)
    info = None
    restate = None
    if as_of is not None:
        from engine.simulate import year_to_date  # noqa: PLC0415

        given = scen_ld or base_ld
        base_ld, info = as_of_run(base_ld, as_of.date(), project)
        if scen_ld is not None:
            scen_ld, _ = as_of_run(scen_ld, as_of.date(), project)
        restate = year_to_date(info, given)  # the changes in the year-to-date values staff typed
    base = score_run(base_ld, detail=gaps)  # the per-item findings only for the gap solver
    scen = score_run(scen_ld, detail=gaps) if scen_ld is not None else None
    gap_text = None
    if gaps:
        from engine.gap import gap_summary  # noqa: PLC0415

        with _progress("求解差距" if lang == "zh" else "solving gaps") as step:
            gap_text = gap_summary(scen_ld or base_ld, scen or base, lang, step, restate)
    heads, rows = compare_table(base, scen, lang, gap_text)
    title = header(base, info, lang) + _title(base.scheme, lang) if fmt == "table" else ""
    emit(rendered(heads, rows, fmt, title=title), output, inputs, base.manifest)


@main.command()
@click.argument("unit")
@input_options
@click.option("--as-of", "as_of", type=click.DateTime(formats=AS_OF_FORMATS), help="Solve on a year-to-date run.")
@click.option("--project", type=click.Choice(["none", "linear", "schedule"]), default="none", show_default=True)
@click.option("--top", type=click.IntRange(1, 50), default=5, show_default=True, help="Options shown per target.")
def gap(unit: str, scheme: Path | None, data: Path | None, events: Path | None, encoding: str | None,
        sheet: str | None, events_sheet: str | None, no_events: bool, lang: Lang, as_of: datetime | None,
        project: Projection,
        top: int) -> None:
    """What would UNIT need to reach each grade and award: the smallest change of each single field."""
    from engine.gap import gap_text  # noqa: PLC0415
    from engine.pipeline import load  # noqa: PLC0415
    from engine.pipeline import score as score_run  # noqa: PLC0415

    if as_of is not None and scheme is None and data is None:
        data, events = _midyear_demo(events, no_events)
    inputs = build_inputs(scheme, data, events, encoding, sheet, events_sheet, no_events)
    ld = load(inputs, year=as_of.year if as_of else None)
    restate = None
    if as_of is not None:
        from engine.simulate import as_of_run, year_to_date  # noqa: PLC0415

        given = ld
        ld, info = as_of_run(ld, as_of.date(), project)
        restate = year_to_date(info, given)
    r = score_run(ld)
    uid = _unit_id(r, unit)
    with _progress("求解差距" if lang == "zh" else "solving gaps") as step:
        text = gap_text(ld, r, uid, lang, top, step, restate)
    click.echo(text, nl=False)


@contextlib.contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on a terminal (stderr); nothing when output is piped or redirected."""
    if not sys.stderr.isatty():
        yield lambda done, total: None
        return
    with click.progressbar(length=1, label=label, file=sys.stderr) as bar:
        def step(done: int, total: int) -> None:
            bar.length = max(total, 1)
            bar.update(done - bar.pos)

        yield step


@main.command()
@click.argument("scheme", type=click.Path(path_type=Path), required=False)
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="The template to write (.xlsx).")
@click.option("--units", type=click.Path(path_type=Path),
              help="Prefill one row per unit (id, name, type) from this table (.csv, .xlsx, .parquet).")
@click.option("--encoding", help="Text encoding of a CSV --units table (default: detect).")
@click.option("--sheet", help="Sheet of an .xlsx --units table, by name or number (default: the first shown).")
@lang_option
def template(scheme: Path | None, output: Path, units: Path | None, encoding: str | None,
             sheet: str | None, lang: Lang) -> None:
    """Write an Excel data template for SCHEME (default: the demo): one column per field, headed by
    its label, the declared ranges as validation rules; an event-log sheet; a sheet explaining each column."""
    from engine.io import read_table  # noqa: PLC0415
    from engine.pipeline import demo_inputs  # noqa: PLC0415
    from engine.scheme import load_scheme  # noqa: PLC0415
    from engine.template import write_template  # noqa: PLC0415

    if output.suffix.lower() != ".xlsx":
        raise click.BadParameter("the template is an Excel workbook: give a file name ending in .xlsx",
                                 param_hint="-o/--output")
    path = scheme or demo_inputs().scheme
    frame = read_table(units, encoding=encoding, sheet=sheet, what="units") if units is not None else None
    write_template(load_scheme(path), output, units=frame, inputs=[p for p in (path, units) if p is not None],
                   units_path=str(units or ""))
    click.echo(_say(f"已写入 {output}", f"wrote {output}"), err=True)


def _unit_id(r: Run, unit: str) -> str:
    from engine.report import SharedName, find_unit  # noqa: PLC0415

    try:
        row = find_unit(r, unit)
    except SharedName as e:
        ids = ", ".join(e.ids[:10]) + (", ..." if len(e.ids) > 10 else "")
        raise click.BadParameter(_say(f"有 {len(e.ids)} 个单位叫 '{unit.strip()}' ({ids}); 请给出单位编号",
                                      f"'{unit.strip()}' is the name of {len(e.ids)} units ({ids}); "
                                      "give the unit's id"),
                                 param_hint="UNIT") from None
    if row is None:
        from engine.errors import did_you_mean  # noqa: PLC0415

        names = [str(x) for x in r.frame["unit_id"].to_list() + r.frame["name"].to_list()]
        raise click.BadParameter(_say(f"没有编号或名称为 '{unit}' 的单位{did_you_mean(unit, names, 'zh')}",
                                      f"no unit '{unit}'{did_you_mean(unit, names)}"), param_hint="UNIT")
    return str(row["unit_id"])


if __name__ == "__main__":
    main()
