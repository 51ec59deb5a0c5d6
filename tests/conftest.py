"""Shared fixtures."""

from __future__ import annotations

import functools
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module")
def scheme_parsed_once() -> Iterator[None]:
    """load_scheme is pure (path -> frozen Scheme): parse each scheme once per module instead of once
    per run, to keep the suite fast; every other stage of the pipeline runs for real. Modules opt in with
    `pytestmark = pytest.mark.usefixtures("scheme_parsed_once")`."""
    import engine.pipeline  # noqa: PLC0415

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(engine.pipeline, "load_scheme", functools.lru_cache(maxsize=None)(engine.pipeline.load_scheme))
        yield
