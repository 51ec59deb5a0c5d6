"""The decision part of a scheme: vetoes, grades, ranking, awards (typed, frozen)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from .errors import Loc
from .expr import Expr

QuotaRounding = Literal["floor", "half_up", "ceil"]


@dataclass(frozen=True)
class Quota:
    count: int | None = None
    share: Decimal | None = None
    rounding: QuotaRounding = "floor"
    per: str | None = None  # "unit_type": one quota per unit type
    of: Literal["all", "eligible"] = "all"  # share of all units in the group, or of the eligible ones

    def size(self, n: int) -> int:
        """Places for a group of n units, in exact integer arithmetic (30% of 7 -> 2 with floor)."""
        if self.count is not None:
            return self.count
        assert self.share is not None
        exact = self.share * n  # Decimal // truncates toward zero: use floor and ceil, which are exact
        if self.rounding == "floor":
            return math.floor(exact)
        if self.rounding == "ceil":
            return math.ceil(exact)
        return math.floor(exact + Decimal("0.5"))


@dataclass(frozen=True)
class SortKey:
    expr: Expr
    descending: bool


@dataclass(frozen=True)
class Veto:
    id: str
    label: str
    loc: Loc
    when: Expr | None = None
    grade: str | None = None  # forced grade; None keeps the computed grade
    blocks: tuple[str, ...] | Literal["all"] = "all"
    rank: Literal["last", "keep"] = "last"


@dataclass(frozen=True)
class Grade:
    id: str
    label: str
    loc: Loc
    min: Decimal | None = None
    inclusive: bool = True
    quota: Quota | None = None
    when: Expr | None = None  # a condition beyond the total (90分以上且全年未受通报批评的为优秀)


@dataclass(frozen=True)
class Ranking:
    by: tuple[SortKey, ...]
    per: str | None = "unit_type"


@dataclass(frozen=True)
class Level:
    id: str
    label: str
    count: int
    min_score: Decimal | None = None


@dataclass(frozen=True)
class Award:
    id: str
    label: str
    loc: Loc
    applies_to: tuple[str, ...] | None
    eligible: Expr | None
    min_score: Decimal | None
    rank_by: tuple[SortKey, ...]
    quota: Quota | None
    tie_at_boundary: Literal["strict", "all_in", "flag"] = "strict"
    levels: tuple[Level, ...] = ()
    pass_down: bool = True
    label_en: str = ""


@dataclass(frozen=True)
class Decisions:
    vetoes: tuple[Veto, ...]
    grades: tuple[Grade, ...]
    ranking: Ranking
    awards: tuple[Award, ...]
