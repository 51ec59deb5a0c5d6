"""Synthetic units for any scheme, generated from its declared fields (types, ranges, values).

    python tests/benchmark/synth.py rules/township-2022.yaml 100000 bench-data/township_100000.parquet

Values respect each field's declared type, scale, min and max (including a max that names another
field, e.g. hazards_fixed <= hazards_found) so that the data validates; optional fields are left
empty for the unit types whose items do not use them. Deterministic for a given seed.
"""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from engine.model import Field, Scheme
from engine.scheme import load_scheme


def _order(fields: dict[str, Field]) -> list[Field]:
    """Fields whose bounds name other fields come after them."""
    done: list[Field] = []
    pending = list(fields.values())
    while pending:
        for f in list(pending):
            deps = [b for b in (f.min, f.max) if isinstance(b, str)]
            if all(d in {x.id for x in done} for d in deps):
                done.append(f)
                pending.remove(f)
    return done


def _numbers(f: Field, n: int, rng: np.random.Generator, cols: dict[str, np.ndarray]) -> np.ndarray:
    lo = float(f.min) if isinstance(f.min, Decimal) else (cols[f.min] if isinstance(f.min, str) else 0.0)
    if isinstance(f.max, Decimal):
        hi = float(f.max)
    elif isinstance(f.max, str):
        hi = cols[f.max]
    else:
        hi = 100.0 if f.type == "decimal" else 20.0
    if f.type == "int":
        return np.floor(lo + rng.random(n) * (np.asarray(hi) - lo + 1)).astype(np.int64).clip(lo, hi)
    span = np.asarray(hi) - lo
    x = lo + span * rng.beta(5, 1.5, n)  # most values near the top, as in real data
    return np.round(np.clip(x, lo, hi), f.scale)


def generate(scheme: Scheme, n: int, seed: int = 20221231) -> pl.DataFrame:
    rng = np.random.default_rng([seed, n])
    types = list(scheme.unit_types)
    cols: dict[str, np.ndarray] = {}
    out: dict[str, object] = {
        scheme.columns.id: [f"U{i:07d}" for i in range(1, n + 1)],
        scheme.columns.type: rng.choice(np.array(types), size=n),
    }
    if scheme.columns.name != scheme.columns.id:
        out[scheme.columns.name] = [f"单位{i}" for i in range(1, n + 1)]
    veto_fields = {name for v in scheme.raw.get("vetoes") or [] if isinstance(v.get("when"), str)
                   for name in v["when"].replace("(", " ").replace(")", " ").split()}
    for f in _order(dict(scheme.fields)):
        if f.type in ("int", "decimal"):
            cols[f.id] = _numbers(f, n, rng, cols)
            if f.id in veto_fields:  # a count that triggers a veto (deaths > 0) is rare
                cols[f.id] = np.where(rng.random(n) < 0.01, cols[f.id], 0).astype(cols[f.id].dtype)
            out[f.id] = cols[f.id]
        elif f.type == "bool":
            out[f.id] = rng.random(n) < (0.01 if f.id in veto_fields else 0.9)  # veto triggers are rare
        else:
            values = list(f.values) or ["甲", "乙", "丙"]
            out[f.id] = rng.choice(np.array(values), size=n)
    return pl.DataFrame(out)


def main(argv: list[str]) -> None:
    scheme = load_scheme(argv[0])
    df = generate(scheme, int(argv[1]))
    Path(argv[2]).parent.mkdir(parents=True, exist_ok=True)
    df.write_parquet(argv[2])
    print(f"wrote {argv[2]}: {df.height} units x {df.width} columns")


if __name__ == "__main__":
    main(sys.argv[1:])
