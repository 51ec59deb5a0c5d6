"""Benchmark of engine.events: events/s through the durable-rules adapter against a bare durable host.

    python tests/benchmark/bench_events.py [n_events n_units]      # defaults: 100000 10000

Prints one JSON object: the adapter's throughput (run_event_rules, frame in, frame out, 9 rules like
township-2022's) and that of posting the same events to a bare host with one trivial rule, per unit
or packed into sessions as the adapter does, and their ratios (best of 3 each).
"""

from __future__ import annotations

import itertools
import json
import random
import sys
import time
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import polars as pl

from engine import expr as E
from engine.errors import Loc
from engine.events import _RUN_IDS, ACTION_CAP, EventRule, _BatchHost, _sessions, run_event_rules


def _bench_events(n_events: int, n_units: int, seed: int = 7) -> pl.DataFrame:
    rnd = random.Random(seed)
    kinds = ["通报批评", "表彰", "生产安全事故", "信访", "越级访", "搬迁延误", "环境污染事件", "其他"]
    levels = ["县级", "市级", "省级"]
    day0 = date(2022, 1, 1)
    rows = []
    for i in range(n_events):
        k = rnd.choice(kinds)
        rows.append((f"E{i:07d}", day0 + timedelta(days=rnd.randrange(365)), f"U{rnd.randrange(n_units):05d}", k,
                     rnd.choice(levels) if k in ("通报批评", "表彰") else None,
                     rnd.randrange(3) if k == "生产安全事故" else None,
                     rnd.randrange(1, 20) if k == "搬迁延误" else None))
    return pl.DataFrame(rows, orient="row", schema={
        "event_id": pl.String, "date": pl.Date, "unit_id": pl.String, "kind": pl.String, "level": pl.String,
        "deaths": pl.Int64, "households": pl.Int64})


def _bench_rules() -> list[EventRule]:
    loc = Loc("bench.yaml", 1, 1)

    def w(text: str) -> E.Expr:
        return E.parse(text, loc)

    D = Decimal
    return [
        EventRule("general_accident", "一般生产安全事故", w('kind == "生产安全事故" and deaths == 0'), points=D(-3),
                  target="section:safety"),
        EventRule("fatal_accident", "亡人生产安全事故", w('kind == "生产安全事故" and deaths >= 1'), veto="fatal"),
        EventRule("petition", "信访事项", w('kind == "信访"'), points=D(-1), nth=2, target="section:stability"),
        EventRule("escalated", "越级访", w('kind == "越级访"'), points=D(-5), target="section:stability"),
        EventRule("repeat_escalated", "30天内重复越级访", w('kind == "越级访"'), points=D(-5), within_days=30,
                  target="section:stability"),
        EventRule("pollution", "环境污染事件", w('kind == "环境污染事件"'), veto="pollution"),
        EventRule("relocation", "搬迁安置延误", w('kind == "搬迁延误"'), points_per="households", each=D("-0.1"),
                  target="pool:deductions"),
        EventRule("criticism", "通报批评", w('kind == "通报批评"'), points_by="level",
                  points_table={"县级": D(-1), "市级": D(-2), "省级": D(-3)}, target="pool:deductions"),
        EventRule("commendation", "表彰奖励", w('kind == "表彰"'), points_by="level",
                  points_table={"县级": D("0.5"), "市级": D(1), "省级": D(2)}, target="pool:bonus"),
    ]


def _raw(events: pl.DataFrame, *, cap: int | None = None, as_events: bool = False, packed: bool = False) -> float:
    """events/s posting the log to a bare host (no timer threads) with one trivial rule; one batch per
    unit (or, packed, per SESSION_FACTS facts as the adapter does). Only durable's work is timed: the
    batches of dicts are built before the clock starts."""
    seen = [0]

    def act(c: Any) -> None:
        seen[0] += len(c.m) if isinstance(c.m, list) else 1

    rule: dict[str, Any] = {"all": [{"m": {"$ex": {"kind": 1}}}], "run": act}
    if cap:
        rule["cap"] = cap
    host = _BatchHost()
    name = f"kaohe_raw_{next(_RUN_IDS)}"
    host.register_rulesets({name: {"trivial": rule}})
    df = events.sort("unit_id", maintain_order=True).with_columns(pl.col("date").dt.strftime("%Y-%m-%d"))
    dicts = [{k: v for k, v in d.items() if v is not None} for d in df.to_dicts()]
    sizes = df.group_by("unit_id", maintain_order=True).len().get_column("len").to_list()
    bounds = _sessions(sizes) if packed else list(itertools.pairwise(itertools.accumulate(sizes, initial=0)))
    batches = []
    for n, (lo, hi) in enumerate(bounds):
        batch = [dict(d, sid=f"u{n}", id=str(j)) for j, d in enumerate(dicts[lo:hi])]
        batches.append((f"u{n}", batch))
    post = host.post_batch if as_events else host.assert_facts
    t0 = time.perf_counter()
    for sid, batch in batches:
        post(name, batch)
        host.delete_state(name, sid)
    dt = time.perf_counter() - t0
    host.free(name)
    assert seen[0] == events.height, (seen[0], events.height)
    return events.height / dt


def bench(n_events: int = 100_000, n_units: int = 10_000, repeat: int = 3) -> dict[str, Any]:
    """events/s through run_event_rules (frame in, frame out, 9 rules like township-2022's) against posting
    the same events to a bare durable host with one trivial rule (best of `repeat` each)."""
    import warnings  # noqa: PLC0415

    from engine.errors import Notice  # noqa: PLC0415

    warnings.simplefilter("ignore", Notice)  # the log holds events no rule matches ('其他'), on purpose
    events = _bench_events(n_events, n_units)
    rules = _bench_rules()
    run_event_rules(events.head(1000), rules)  # warm-up
    best = float("inf")
    rows = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = run_event_rules(events, rules)
        best = min(best, time.perf_counter() - t0)
        rows = out.height
    adapter = n_events / best
    raws = {
        "raw_facts_per_unit": max(_raw(events) for _ in range(repeat)),
        "raw_post_batch_per_unit": max(_raw(events, as_events=True) for _ in range(repeat)),
        "raw_facts_cap_per_unit": max(_raw(events, cap=ACTION_CAP) for _ in range(repeat)),
        "raw_facts_cap_packed": max(_raw(events, cap=ACTION_CAP, packed=True) for _ in range(repeat)),
    }
    return {"n_events": n_events, "n_units": n_units, "rules": len(rules), "output_rows": rows,
            "adapter_events_per_s": round(adapter), **{f"{k}_events_per_s": round(v) for k, v in raws.items()},
            **{f"ratio_vs_{k}": round(adapter / v, 2) for k, v in raws.items()}}


if __name__ == "__main__":  # python tests/benchmark/bench_events.py [n_events n_units]
    args = [int(a) for a in sys.argv[1:3]]
    print(json.dumps(bench(*args), indent=2, ensure_ascii=False))
