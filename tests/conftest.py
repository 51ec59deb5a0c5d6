"""Shared fixtures."""

from __future__ import annotations

import functools
from collections.abc import Iterator

import pytest
from helpers import DEMO_SCHEME

from engine.model import Scheme
from engine.scheme import load_scheme


@pytest.fixture(scope="module")
def scheme() -> Scheme:
    """The bundled demo township's scheme (a test module may define its own `scheme` instead)."""
    return load_scheme(DEMO_SCHEME)


@pytest.fixture(scope="module")
def scheme_parsed_once() -> Iterator[None]:
    """load_scheme is pure (path -> frozen Scheme): parse each scheme once per module instead of once
    per run, to keep the suite fast; every other stage of the pipeline runs for real. Modules opt in with
    `pytestmark = pytest.mark.usefixtures("scheme_parsed_once")`."""
    import engine.pipeline  # noqa: PLC0415

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(engine.pipeline, "load_scheme", functools.lru_cache(maxsize=None)(engine.pipeline.load_scheme))
        yield
