"""Benchmark: kaohe against the hand-written Polars reference, and the demo scheme at scale.

    pip install -e '.[bench]'
    python tests/benchmark/bench.py                       # 1k, 100k, 1M units, 3 repetitions
    python tests/benchmark/bench.py --sizes 1000 100000 --reps 3
    python tests/benchmark/bench.py --stages bench-data/units_1000000.parquet   # time per stage
    python tests/benchmark/bench.py --sizes 100000 --csv     # also the same units as CSV (the eager path)
    python tests/benchmark/bench.py --gaps 1000 3000 30000 --reps 1   # simulate --gaps on the demo scheme
    python tests/benchmark/bench.py --outputs 100000 1000000 --formats csv json   # `kaohe run --format F -o FILE`

Each measurement runs in a fresh child process so that peak memory (ru_maxrss) belongs to it alone.
Reference: ../shared/bench-reference (scheme.md, gen.py, impl_polars.py), or $KAOHE_REFERENCE.
kaohe end to end = read Parquet -> validate -> scores -> grades, ranks, awards in memory; "+write" also
writes the per-unit result table to Parquet. "ref+checks" = the reference with kaohe's input checks added
by hand (tests/benchmark/reference_checked.py): what validating costs an expert's query. "ref exact" = the
reference scoring in exact scaled integers, with those checks (tests/benchmark/reference_exact.py): what an
expert writes by hand for this one scheme when scores must be exact, as kaohe's are. Data goes to
./bench-data (or $KAOHE_BENCH_DATA).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = Path(os.environ.get("KAOHE_REFERENCE", ROOT.parent / "shared" / "bench-reference"))
DATA = Path(os.environ.get("KAOHE_BENCH_DATA", "bench-data"))
SCHEME = ROOT / "tests" / "benchmark" / "reference.yaml"
DEMO = ROOT / "rules" / "township-2022.yaml"


def kaohe_e2e(scheme_path: Path, data: Path, out: Path | None = None) -> int:
    """The library path of `kaohe run` without rendering: read (only the scheme's columns), validate,
    score, decide; the per-item findings columns are not materialised (detail=False)."""
    from engine.pipeline import Inputs, run  # noqa: PLC0415 - ROOT is put on sys.path by the caller

    result = run(Inputs(scheme_path, data, no_events=True), detail=False)  # the demo scheme: synthetic data, no log
    decided = result.frame
    if out is not None:
        cols = ["unit_id", "unit_type", "total", "grade", "rank", "order"]
        cols += [c for c in decided.columns if c.startswith(("s.", "p.")) or (c.startswith("a.") and c.count(".") == 1)]
        decided.select(cols).write_parquet(out)
    return decided.height


def gaps_e2e(data: Path) -> int:
    """The library path of `kaohe simulate --gaps` on the demo scheme without rendering: read, score, and for
    every unit the smallest single change to its next grade (or the nearest award)."""
    from engine.gap import gap_summary  # noqa: PLC0415
    from engine.pipeline import Inputs, load, score  # noqa: PLC0415

    ld = load(Inputs(DEMO, data, no_events=True))
    return len(gap_summary(ld, score(ld), "zh"))


def reference_e2e(data: Path) -> int:
    sys.path.insert(0, str(REFERENCE))
    import impl_polars  # type: ignore[import-not-found]  # noqa: PLC0415 - importable only after the sys.path insert above

    return int(impl_polars.run_e2e(str(data)).height)


def reference_checked_e2e(data: Path, *, exact: bool = False) -> int:
    """The reference with the input checks kaohe makes, added by hand (tests/benchmark/reference_checked.py);
    `exact`: and scoring in exact scaled integers (tests/benchmark/reference_exact.py)."""
    sys.path.insert(0, str(REFERENCE))
    sys.path.insert(0, str(ROOT / "tests" / "benchmark"))
    import reference_checked  # type: ignore[import-not-found]  # noqa: PLC0415 - importable only after the inserts
    import reference_exact  # type: ignore[import-not-found]  # noqa: PLC0415

    return int((reference_exact if exact else reference_checked).run_e2e(str(data)).height)


def child(kind: str, data: str, reps: int) -> None:
    """Run one kind `reps` times in this process; print the median seconds and peak memory."""
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        if kind == "reference":
            reference_e2e(Path(data))
        elif kind == "reference+checks":
            reference_checked_e2e(Path(data))
        elif kind == "reference exact":
            reference_checked_e2e(Path(data), exact=True)
        elif kind == "kaohe":
            kaohe_e2e(SCHEME, Path(data))
        elif kind == "kaohe+write":
            kaohe_e2e(SCHEME, Path(data), Path(data).with_suffix(".out.parquet"))
        elif kind == "demo":
            kaohe_e2e(DEMO, Path(data))
        elif kind == "gaps":
            gaps_e2e(Path(data))
        times.append(time.perf_counter() - t0)
    print(json.dumps({"kind": kind, "median_s": statistics.median(times), "peak_mib": peak_mib()}))


def stages(scheme_path: Path, data: Path, reps: int) -> None:
    """Where the time goes in the library path: scheme, reading and statistics, streamed pass, decisions."""
    import polars as pl  # noqa: PLC0415 - timed children import only what they measure

    from engine import stream  # noqa: PLC0415
    from engine.decide import decide  # noqa: PLC0415
    from engine.rules_load import load_decisions  # noqa: PLC0415
    from engine.scheme import load_scheme  # noqa: PLC0415

    passes: list[float] = []  # the streamed pass: the collect that computes the bad-row flag
    collect = pl.LazyFrame.collect

    def timed(self: pl.LazyFrame, *a: object, **k: object) -> pl.DataFrame:
        t = time.perf_counter()
        out = collect(self, *a, **k)  # type: ignore[arg-type]
        if "_bad" in out.columns:
            passes.append(time.perf_counter() - t)
        return out

    pl.LazyFrame.collect = timed  # type: ignore[method-assign]
    rows = []
    for _ in range(reps):
        passes.clear()
        t0 = time.perf_counter()
        scheme = load_scheme(scheme_path)
        dec = load_decisions(scheme)
        t1 = time.perf_counter()
        out = stream.scored_stream(scheme, dec, data)
        t2 = time.perf_counter()
        assert out is not None and len(passes) == 1, "the data did not stream"
        decide(scheme, dec, out[1])
        t3 = time.perf_counter()
        rows.append((t1 - t0, t2 - t1 - passes[0], passes[0], t3 - t2, t3 - t0))
    med = [statistics.median(r[i] for r in rows) for i in range(5)]
    print(json.dumps(dict(zip(["scheme", "read, statistics, setup", "streamed pass", "decide", "total"],
                              [round(x, 3) for x in med], strict=True))))


def peak_mib() -> float:
    """This process's peak resident memory. VmHWM belongs to the process image (ru_maxrss would carry
    over the parent's peak across fork + exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(kind: str, data: Path, reps: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--child", kind, str(data), str(reps)], check=True,
                         capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def ensure_data(sizes: list[int]) -> None:
    DATA.mkdir(parents=True, exist_ok=True)
    missing = [n for n in sizes if not (DATA / f"units_{n}.parquet").exists()]
    if missing:
        subprocess.run([sys.executable, str(REFERENCE / "gen.py"), *map(str, missing)], check=True,
                       env={**os.environ, "KAOHE_BENCH_DATA": str(DATA)})
    ensure_demo(sizes)


def ensure_demo(sizes: list[int]) -> None:
    """Demo-scheme units (`tests/benchmark/synth.py`) of each size."""
    DATA.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))
    from engine.scheme import load_scheme  # noqa: PLC0415 - importable only after the sys.path insert above
    from tests.benchmark.synth import generate  # noqa: PLC0415

    demo = load_scheme(DEMO)
    for n in sizes:
        path = DATA / f"demo_{n}.parquet"
        if not path.exists():
            generate(demo, n).write_parquet(path)


def csv_copy(parquet: Path) -> Path:
    """The units of a Parquet file written as CSV beside it (once)."""
    import polars as pl  # noqa: PLC0415 - the parent only

    out = parquet.with_suffix(".csv")
    if not out.exists():
        pl.read_parquet(parquet).write_csv(out)
    return out


def cli_run(n: int, fmt: str) -> tuple[float, float]:
    """(wall seconds, peak MiB) of `kaohe run --format fmt -o FILE` on n units of the reference scheme, as a
    user runs it: a new interpreter, the output written."""
    out = DATA / f"out_{n}.{fmt}"
    args = [sys.executable, str(ROOT / "cli.py"), "run", "--scheme", str(SCHEME), "--data",
            str(DATA / f"units_{n}.parquet"), "--format", fmt, "-o", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(args)}")
    return wall, usage.ru_maxrss / 1024


def cold_run() -> float:
    """A new interpreter running `kaohe run`, with the project's bytecode cached as after `pip install`
    (PYTHONDONTWRITEBYTECODE, set in some sandboxes, would make every run compile the sources: ~70 ms)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "cli.py"), "run"], check=True, capture_output=True, cwd="/", env=env)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000, 100_000, 1_000_000])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--child", nargs=3, metavar=("KIND", "DATA", "REPS"), help=argparse.SUPPRESS)
    ap.add_argument("--stages", metavar="DATA", help="time each stage of kaohe on one data file (reference scheme)")
    ap.add_argument("--csv", action="store_true",
                    help="also time kaohe on the same units written as CSV (the eager path township staff use)")
    ap.add_argument("--outputs", type=int, nargs="+", metavar="UNITS",
                    help="time `kaohe run --format F -o FILE` (reference scheme) on these sizes")
    ap.add_argument("--formats", nargs="+", default=["csv", "json"], choices=["csv", "json", "table", "markdown"])
    ap.add_argument("--gaps", type=int, nargs="+", metavar="UNITS",
                    help="time `simulate --gaps` (every unit's smallest change to its next grade) on the demo scheme")
    args = ap.parse_args()
    if args.outputs:
        ensure_data(args.outputs)
        from tabulate import tabulate  # noqa: PLC0415

        rows = []
        for n in args.outputs:
            for fmt in args.formats:
                runs = [cli_run(n, fmt) for _ in range(args.reps)]
                rows.append([f"{n:,}", fmt, f"{statistics.median(w for w, _ in runs):.2f}",
                             f"{max(m for _, m in runs):.0f}"])
        print(tabulate(rows, headers=["units", "--format", "wall s", "peak MiB"]))
        return
    if args.gaps:
        ensure_demo(args.gaps)
        from tabulate import tabulate  # noqa: PLC0415

        res = [(n, measure("gaps", DATA / f"demo_{n}.parquet", args.reps)) for n in args.gaps]
        print(tabulate([[f"{n:,}", f"{m['median_s']:.2f}", f"{m['peak_mib']:.0f}"] for n, m in res],
                       headers=["units", "simulate --gaps s", "peak MiB"]))
        return
    if args.stages:
        sys.path.insert(0, str(ROOT))
        stages(SCHEME, Path(args.stages), args.reps)
        return
    if args.child:
        sys.path.insert(0, str(ROOT))
        child(args.child[0], args.child[1], int(args.child[2]))
        return
    ensure_data(args.sizes)
    from tabulate import tabulate  # noqa: PLC0415 - only the parent prints; timed children do not load it

    rows = []
    for n in args.sizes:
        ref = measure("reference", DATA / f"units_{n}.parquet", args.reps)
        chk = measure("reference+checks", DATA / f"units_{n}.parquet", args.reps)
        ex = measure("reference exact", DATA / f"units_{n}.parquet", args.reps)
        k = measure("kaohe", DATA / f"units_{n}.parquet", args.reps)
        kw = measure("kaohe+write", DATA / f"units_{n}.parquet", args.reps)
        demo = measure("demo", DATA / f"demo_{n}.parquet", args.reps)
        rows.append([f"{n:,}", f"{k['median_s']:.3f}", f"{kw['median_s']:.3f}", f"{ref['median_s']:.3f}",
                     f"{k['median_s'] / ref['median_s']:.2f}x", f"{k['peak_mib']:.0f}", f"{ref['peak_mib']:.0f}",
                     f"{k['peak_mib'] / ref['peak_mib']:.2f}x", f"{chk['median_s']:.3f}",
                     f"{k['median_s'] / chk['median_s']:.2f}x", f"{ex['median_s']:.3f}",
                     f"{k['median_s'] / ex['median_s']:.2f}x", f"{demo['median_s']:.3f}", f"{demo['peak_mib']:.0f}"])
        if args.csv:
            rows[-1].append(f"{measure('kaohe', csv_copy(DATA / f'units_{n}.parquet'), args.reps)['median_s']:.3f}")
    print(tabulate(rows, headers=["units", "kaohe s", "kaohe+write s", "reference s", "time ratio", "kaohe MiB",
                                  "reference MiB", "memory ratio", "ref+checks s", "ratio to ref+checks",
                                  "ref exact s", "ratio to ref exact",
                                  "demo scheme s", "demo MiB",
                                  *(["kaohe CSV s"] if args.csv else [])]))
    cold_run()  # writes the bytecode cache
    print(f"\ncold `kaohe run` on the demo township (wall, incl. interpreter start): "
          f"{statistics.median(cold_run() for _ in range(5)):.3f} s")


if __name__ == "__main__":
    main()
