"""The typed, frozen scheme model (what a scheme file means once loaded and checked)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from .errors import Loc
from .expr import Expr, Type

if TYPE_CHECKING:
    from .fixed import Rounding
    from .yamlsrc import YMap

FieldType = Literal["int", "decimal", "bool", "str"]


@dataclass(frozen=True)
class Field:
    id: str
    label: str
    type: FieldType
    loc: Loc
    scale: int = 0  # decimals kept exactly (decimal fields)
    min: Decimal | str | None = None  # a number, or another field's id
    max: Decimal | str | None = None
    values: tuple[str, ...] = ()  # allowed texts (str fields)
    unit: str = ""
    required: bool = True
    required_for: tuple[str, ...] = ()  # `required: [village]`: a cell is needed for units of these types only
    cumulative: bool = True  # a year-to-date quantity (mid-year projection may extrapolate it)
    target: bool = False  # an annual target (pro-rated to the as-of date in a mid-year run)
    schedule: tuple[Decimal, ...] = ()  # cumulative share due by each quarter (4) or month (12) end

    @property
    def kind(self) -> Type:
        """The expression type of the field's values: int and decimal are 'num'."""
        return "num" if self.type == "int" or self.type == "decimal" else self.type


@dataclass(frozen=True)
class Method:
    kind: str
    params: Mapping[str, Any]
    loc: Loc


@dataclass(frozen=True)
class NotApplicable:
    when: Expr | None  # None: when the item's value is missing
    points: Decimal | Literal["full", "zero"]


@dataclass(frozen=True)
class Item:
    id: str
    label: str
    loc: Loc
    method: Method
    points: Decimal | None = None  # 分值: the item's nominal points
    value: Expr | None = None
    not_applicable: NotApplicable | None = None
    applies_to: tuple[str, ...] | None = None
    min: Decimal | None = None  # clamp after the method
    max: Decimal | None = None
    unit: str = ""
    source: str = ""  # article of the published scheme
    mid_year: Mapping[str, Any] = field(default_factory=dict)
    parent: str = ""  # section or pool id


@dataclass(frozen=True)
class Section:
    id: str
    label: str
    loc: Loc
    items: tuple[Item, ...] = ()
    children: tuple[Section, ...] = ()
    max: Decimal | None = None
    floor: Decimal | None = None
    weight: Decimal = Decimal(1)
    applies_to: tuple[str, ...] | None = None
    parent: str = ""


@dataclass(frozen=True)
class Pool:
    id: str
    label: str
    loc: Loc
    items: tuple[Item, ...] = ()
    max: Decimal | None = None
    floor: Decimal | None = None
    applies_to: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Total:
    max: Decimal | None = None
    floor: Decimal | None = None
    coefficient: Expr | None = None  # 难度系数: multiplies the weighted section sum


@dataclass(frozen=True)
class Columns:
    id: str = "unit_id"
    name: str = "name"
    type: str = "unit_type"


@dataclass(frozen=True)
class Meta:
    id: str
    label: str
    year: int
    precision: int = 2
    rounding: Rounding = "half_up"
    source: str = ""
    label_en: str = ""


@dataclass(frozen=True)
class Scheme:
    meta: Meta
    path: str
    sha256: str
    unit_types: Mapping[str, str]
    columns: Columns
    fields: Mapping[str, Field]
    sections: tuple[Section, ...]
    pools: tuple[Pool, ...]
    total: Total
    raw: YMap  # the located YAML, for the decision/event/test stages
    schedule: tuple[Decimal, ...] = ()  # mid_year: the township's cumulative progress plan

    def all_sections(self) -> list[Section]:
        out: list[Section] = []

        def visit(s: Section) -> None:
            out.append(s)
            for c in s.children:
                visit(c)

        for s in self.sections:
            visit(s)
        return out

    def all_items(self) -> list[Item]:
        items = [i for s in self.all_sections() for i in s.items]
        return items + [i for p in self.pools for i in p.items]
