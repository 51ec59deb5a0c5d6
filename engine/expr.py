"""The one expression language of kaohe schemes: `value`, `when`, `eligible`, event rules.

Syntax is a safe subset of Python expressions, parsed with `ast` and rebuilt into our
own small tree (never `eval`): numbers (kept as exact decimals from the source text),
strings, true/false, field names (Chinese identifiers allowed), `section.X`, `item.X`,
`pool.X`, + - * /, comparisons (chains allowed), and/or/not, `x in [..]`,
`a if cond else b`, and the functions in FUNCTIONS.

`parse` checks syntax; `typecheck` checks every name against an environment of declared
names and types and suggests the nearest name. Back ends: `engine.fixed` (Polars) and
`engine.events` (durable-rules).
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Literal

from .errors import Loc, Problem, did_you_mean

Type = Literal["num", "bool", "str"]
REF_KINDS = ("section", "item", "pool", "event")  # event.X: how many of the unit's events rule X applied to
# a number written in a scheme (a bound, points, a threshold): below 10^12 in size, at most 10 decimals
# (division keeps 10) and 15 digits in all, so that it is exact in 64-bit integers at any scale the engine
# gives it; a number in an expression (which may compare an event's large amount): at most 18 digits
MAX_NUMBER = Decimal(10) ** 12
MAX_DECIMALS = 10
MAX_DIGITS = 15
MAX_LITERAL_DIGITS = 18


def number_problem(d: Decimal, *, literal: bool = False) -> str | None:
    """Why a number cannot stand in a scheme, or as a `literal` in an expression (None: it can), as the rest
    of a sentence about it."""
    if not d.is_finite():
        return "is not a finite number"
    t = d.as_tuple()
    exp = int(t.exponent)
    digits = len(t.digits) + max(0, exp)
    if literal:
        if -exp > MAX_DECIMALS or digits > MAX_LITERAL_DIGITS:
            return (f"is out of range: a number in an expression has at most {MAX_LITERAL_DIGITS} digits, "
                    f"{MAX_DECIMALS} of them decimals")
    elif abs(d) >= MAX_NUMBER or -exp > MAX_DECIMALS or digits > MAX_DIGITS:
        return (f"is out of range: a number in a scheme is less than 10^12 in size, with at most {MAX_DECIMALS} "
                f"decimals and {MAX_DIGITS} digits in all")
    return None


@dataclass(frozen=True, slots=True)
class Num:
    value: Decimal
    col: int = 0


@dataclass(frozen=True, slots=True)
class Str:
    value: str
    col: int = 0


@dataclass(frozen=True, slots=True)
class Bool:
    value: bool
    col: int = 0


@dataclass(frozen=True, slots=True)
class Name:
    id: str
    col: int = 0


@dataclass(frozen=True, slots=True)
class Ref:
    kind: str  # section | item | pool
    id: str
    col: int = 0

    @property
    def key(self) -> str:
        return f"{self.kind}.{self.id}"


@dataclass(frozen=True, slots=True)
class Unary:
    op: Literal["-", "not"]
    operand: Node
    col: int = 0


@dataclass(frozen=True, slots=True)
class Bin:
    op: Literal["+", "-", "*", "/"]
    left: Node
    right: Node
    col: int = 0


@dataclass(frozen=True, slots=True)
class Cmp:
    op: Literal["==", "!=", "<", "<=", ">", ">="]
    left: Node
    right: Node
    col: int = 0


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: Literal["and", "or"]
    values: tuple[Node, ...]
    col: int = 0


@dataclass(frozen=True, slots=True)
class In:
    value: Node
    options: tuple[Num | Str | Bool, ...]
    negate: bool = False
    col: int = 0


@dataclass(frozen=True, slots=True)
class IfElse:
    cond: Node
    then: Node
    other: Node
    col: int = 0


@dataclass(frozen=True, slots=True)
class Call:
    fn: str
    args: tuple[Node, ...]
    col: int = 0


Node = Num | Str | Bool | Name | Ref | Unary | Bin | Cmp | BoolOp | In | IfElse | Call

# name -> (argument count: exact int or "n" for 1+, result rule)
FUNCTIONS: dict[str, str] = {
    "min": "smallest of numbers: min(a, b, ...)",
    "max": "largest of numbers: max(a, b, ...)",
    "abs": "absolute value: abs(x)",
    "if_null": "x, or the default where x is missing: if_null(x, default)",
    "is_null": "true where x is missing: is_null(x)",
    "mean": "average of numbers, missing ones left out: mean(q1, q2, q3, q4)",
    "count_true": "how many conditions hold: count_true(a, b, ...)",
}

_BINOPS: dict[type[ast.operator], Literal["+", "-", "*", "/"]] = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_CMPOPS: dict[type[ast.cmpop], Literal["==", "!=", "<", "<=", ">", ">="]] = {
    ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}


class ExprError(Exception):
    def __init__(self, message: str, col: int, hint: str = "") -> None:
        super().__init__(message)
        self.message, self.col, self.hint = message, col, hint


@dataclass(frozen=True, slots=True)
class Expr:
    """A parsed expression with its source text and location (for messages)."""

    source: str
    tree: Node
    loc: Loc

    def names(self) -> set[str]:
        return {n.id for n in walk(self.tree) if isinstance(n, Name)}

    def refs(self) -> set[str]:
        return {n.key for n in walk(self.tree) if isinstance(n, Ref)}


def walk(node: Node) -> list[Node]:
    out: list[Node] = [node]
    match node:
        case Unary(operand=a):
            out += walk(a)
        case Bin(left=a, right=b) | Cmp(left=a, right=b):
            out += walk(a) + walk(b)
        case BoolOp(values=vs) | Call(args=vs):
            for v in vs:
                out += walk(v)
        case In(value=v):
            out += walk(v)
        case IfElse(cond=c, then=t, other=o):
            out += walk(c) + walk(t) + walk(o)
    return out


def compared_pairs(tree: Node) -> list[tuple[Node, Node]]:
    """Every (side, other side) of a comparison or `in` in the tree: `a >= 1` gives (a, 1) and (1, a)."""
    out: list[tuple[Node, Node]] = []
    for node in walk(tree):
        if isinstance(node, Cmp):
            out += [(node.left, node.right), (node.right, node.left)]
        elif isinstance(node, In):
            out += [(node.value, o) for o in node.options]
    return out


def literal_problems(expr: Expr, domains: Mapping[str, Mapping[str, str]], context: str = "") -> list[Problem]:
    """Texts compared with a name whose values are known (`domains`: name -> {value: its label}; the grades,
    the unit types, a text field's declared values) that are none of them. `grade == "优秀"` (the label, not
    the id) or a misspelt id is false for every unit: an award given to no one, or `grade != "不合格"` letting
    a failed unit in, without a word."""
    out: list[Problem] = []
    for side, other in compared_pairs(expr.tree):
        if not (isinstance(side, Name) and side.id in domains and isinstance(other, Str)):
            continue
        allowed = domains[side.id]
        if other.value in allowed:
            continue
        labelled = [v for v, label in allowed.items() if label == other.value]
        if labelled:
            msg = f"'{other.value}' is the label of {side.id} '{labelled[0]}': {side.id} is compared by its id"
            hint = f"write '{labelled[0]}'"
        else:
            msg = (f"'{other.value}' is no {side.id}{did_you_mean(other.value, allowed)}: the comparison comes out "
                   "the same for every unit")
            hint = "allowed: " + ", ".join(allowed)
        out.append(Problem(expr.loc.shifted(other.col), msg, context, hint))
    return out


def parse(source: object, loc: Loc) -> Expr:
    """Parse `source` (a YAML scalar) into an Expr; raises ExprError with a column."""
    if isinstance(source, bool):
        return Expr(str(source).lower(), Bool(source), loc)
    if isinstance(source, (int, float)):
        d = Decimal(str(source))
        if (problem := number_problem(d, literal=True)) is not None:
            raise ExprError(f"{source} {problem}", 0)
        return Expr(str(source), Num(d), loc)
    if not isinstance(source, str) or not source.strip():
        raise ExprError("an expression must be a non-empty text", 0)
    text = source.strip()
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as e:
        raise ExprError(f"syntax error in expression '{text}'", (e.offset or 1) - 1, _syntax_hint(text)) from None
    return Expr(text, _Build(text).node(tree.body), loc)


_TYPED = {"≥": ">=", "≤": "<=", "≠": "!=", "＞": ">", "＜": "<", "＝": "==", "（": "(", "）": ")", "“": '"', "”": '"',
          "，": ",", "＋": "+", "－": "-", "×": "*", "÷": "/"}


def _syntax_hint(text: str) -> str:
    """The likeliest fix of an expression that does not parse: the signs a Chinese input method or Excel
    habit gives (≥, ＝, “”, a single = for a comparison), else what the language has."""
    typed = [c for c in _TYPED if c in text]
    if typed:
        return "write " + ", ".join(f"'{_TYPED[c]}' for '{c}'" for c in typed)
    bare = text.replace("==", "").replace(">=", "").replace("<=", "").replace("!=", "")
    if "=" in bare:
        return "compare with '==' (a single '=' is no comparison)"
    return "use + - * /, comparisons (== != < <= > >=), and/or/not, names, numbers and \"texts\""


class _Build:
    def __init__(self, text: str) -> None:
        self.text = text

    def col(self, n: ast.AST) -> int:
        """ast gives UTF-8 byte offsets; messages want character columns."""
        return len(self.text.encode()[: getattr(n, "col_offset", 0)].decode(errors="ignore"))

    def node(self, n: ast.expr) -> Node:  # noqa: C901 - one case per syntax form
        col = self.col(n)
        match n:
            case ast.Constant(value=bool() as v):
                return Bool(v, col)
            case ast.Constant(value=int() | float()):
                seg = ast.get_source_segment(self.text, n) or repr(n.value)
                try:
                    d = Decimal(seg.replace("_", ""))
                except InvalidOperation:
                    raise ExprError(f"not a number: {seg}", col) from None
                if (problem := number_problem(d, literal=True)) is not None:
                    raise ExprError(f"{seg} {problem}", col)
                return Num(d, col)
            case ast.Constant(value=str() as v):
                return Str(v, col)
            case ast.Name(id="true" | "True"):
                return Bool(True, col)
            case ast.Name(id="false" | "False"):
                return Bool(False, col)
            case ast.Name(id=name):
                return Name(name, col)
            case ast.Attribute(value=ast.Name(id=kind), attr=attr) if kind in REF_KINDS:
                return Ref(kind, attr, col)
            case ast.Attribute():
                raise ExprError("only section.X, item.X and pool.X may use a dot", col)
            case ast.UnaryOp(op=ast.USub(), operand=a):
                inner = self.node(a)
                if isinstance(inner, Num):
                    return Num(-inner.value, col)
                return Unary("-", inner, col)
            case ast.UnaryOp(op=ast.UAdd(), operand=a):
                return self.node(a)
            case ast.UnaryOp(op=ast.Not(), operand=a):
                return Unary("not", self.node(a), col)
            case ast.BinOp(op=op, left=a, right=b) if type(op) in _BINOPS:
                return Bin(_BINOPS[type(op)], self.node(a), self.node(b), col)
            case ast.BoolOp(op=op, values=vs):
                return BoolOp("and" if isinstance(op, ast.And) else "or", tuple(self.node(v) for v in vs), col)
            case ast.Compare(left=left, ops=ops, comparators=rights):
                return self._compare(left, ops, rights, col)
            case ast.IfExp(test=c, body=t, orelse=o):
                return IfElse(self.node(c), self.node(t), self.node(o), col)
            case ast.Call(func=ast.Name(id=fn), args=args, keywords=[]):
                if fn not in FUNCTIONS:
                    raise ExprError(f"unknown function '{fn}'{did_you_mean(fn, FUNCTIONS)}", col,
                                    "allowed: " + ", ".join(FUNCTIONS))
                return Call(fn, tuple(self.node(a) for a in args), col)
        what = type(n).__name__
        raise ExprError(f"'{ast.get_source_segment(self.text, n)}' ({what}) is not allowed in an expression", col,
                        "use + - * /, comparisons, and/or/not, in [...], if/else, "
                        + ", ".join(FUNCTIONS))

    def _compare(self, left: ast.expr, ops: list[ast.cmpop], rights: list[ast.expr], col: int) -> Node:
        parts: list[Node] = []
        a = self.node(left)
        for op, r in zip(ops, rights, strict=True):
            if isinstance(op, (ast.In, ast.NotIn)):
                parts.append(self._in(a, r, isinstance(op, ast.NotIn), col))
                continue
            if type(op) not in _CMPOPS:
                raise ExprError("use ==, !=, <, <=, >, >= or in", col)
            b = self.node(r)
            parts.append(Cmp(_CMPOPS[type(op)], a, b, col))
            a = b
        return parts[0] if len(parts) == 1 else BoolOp("and", tuple(parts), col)

    def _in(self, value: Node, r: ast.expr, negate: bool, col: int) -> In:
        if not isinstance(r, (ast.List, ast.Tuple, ast.Set)):
            raise ExprError("'in' needs a list of constants: x in ['a', 'b']", col)
        nodes = tuple(self.node(e) for e in r.elts)
        opts = tuple(o for o in nodes if isinstance(o, (Num, Str, Bool)))
        if len(opts) < len(nodes):
            raise ExprError("'in' needs a list of constants: x in ['a', 'b']", col)
        return In(value, opts, negate, col)


def typecheck(expr: Expr, env: dict[str, Type], *, want: Type | None,  # noqa: C901 - t(): one case per node kind
              context: str = "") -> list[Problem]:
    """Problems with names and types in `expr`, checked against `env` (name or ref key -> type)."""
    problems: list[Problem] = []

    def fail(node: Node, msg: str, hint: str = "", zh: tuple[str, str] | None = None) -> None:
        problems.append(Problem(expr.loc.shifted(node.col), msg, context, hint, zh=zh))

    def t(node: Node) -> Type | None:  # noqa: C901 - one case per node kind
        match node:
            case Num():
                return "num"
            case Str():
                return "str"
            case Bool():
                return "bool"
            case Name(id=name):
                if name not in env:
                    names = [k for k in env if "." not in k]
                    fail(node, f"unknown field '{name}'{did_you_mean(name, names)}",
                         "declare it under 'fields:' or fix the spelling",
                         zh=(f"未知的字段 '{name}'{did_you_mean(name, names, 'zh')}",
                             "请在 'fields:' 中声明它, 或改正拼写"))
                    return None
                return env[name]
            case Ref(key=key):
                if key not in env:
                    ids = [k.split(".", 1)[1] for k in env if k.startswith(node.kind + ".")]  # (the shared
                    near = did_you_mean(node.id, ids)  # 'section.' made section.安全生产 look like section.style)
                    fail(node, f"unknown {node.kind} '{node.id}'" + (near.replace("'", f"'{node.kind}.", 1)
                                                                      if near else ""),
                         "" if near or node.id.isascii() else f"write the {node.kind}'s id, not its label")
                    return None
                return env[key]
            case Unary(op="-", operand=a):
                return need(a, "num", "'-'")
            case Unary(operand=a):
                return need(a, "bool", "'not'")
            case Bin(op=op, left=a, right=b):
                need(a, "num", f"'{op}'")
                return need(b, "num", f"'{op}'")
            case Cmp(op=op, left=a, right=b):
                ta, tb = t(a), t(b)
                if ta and tb and ta != tb:
                    fail(node, f"cannot compare {ta} with {tb} using '{op}'")
                elif op not in ("==", "!=") and "bool" in (ta, tb):
                    fail(node, f"'{op}' compares numbers or texts, not true/false")
                return "bool"
            case BoolOp(op=op, values=vs):
                for v in vs:
                    need(v, "bool", f"'{op}'")
                return "bool"
            case In(value=v, options=opts):
                tv = t(v)
                for o in opts:
                    if tv and t(o) != tv:
                        fail(o, f"list entry {o.value!r} is not a {tv}")
                return "bool"
            case IfElse(cond=c, then=a, other=b):
                need(c, "bool", "'if'")
                ta, tb = t(a), t(b)
                if ta and tb and ta != tb:
                    fail(node, f"both branches of if/else must have one type, not {ta} and {tb}")
                return ta or tb
            case Call():
                return call(node)
        return None

    def need(node: Node, want_t: Type, what: str) -> Type | None:
        got = t(node)
        if got is not None and got != want_t:
            fail(node, f"{what} needs a {want_t}, got a {got}")
        return want_t

    def call(node: Call) -> Type | None:
        fn, args = node.fn, node.args
        arity = {"abs": 1, "is_null": 1, "if_null": 2}.get(fn)
        if (arity and len(args) != arity) or not args:
            fail(node, f"{fn}() takes {arity or 'one or more'} argument{'s' if arity != 1 else ''}",
                 FUNCTIONS[fn])
            return None
        if fn == "is_null":
            t(args[0])
            return "bool"
        if fn == "if_null":
            ta, tb = t(args[0]), t(args[1])
            if ta and tb and ta != tb:
                fail(node, f"if_null() default must be a {ta}, got a {tb}")
            return ta
        if fn == "count_true":
            for a in args:
                need(a, "bool", f"{fn}()")
            return "num"
        for a in args:
            need(a, "num", f"{fn}()")
        return "num"

    got = t(expr.tree)
    if want and got and got != want and not problems:
        problems.append(Problem(expr.loc, f"expression '{expr.source}' gives a {got}, but a {want} is needed",
                                context))
    return problems


_PREC = {"or": 1, "and": 2, "not": 3, "cmp": 4, "+": 5, "-": 5, "*": 6, "/": 6, "neg": 7}


def to_source(node: Node, parent: int = 0) -> str:
    """The expression as text (for reasons: 'section.safety >= 27')."""
    def wrap(text: str, prec: int) -> str:
        return f"({text})" if prec < parent else text

    match node:
        case Num(value=v):
            return f"{v:f}"
        case Str(value=v):
            return f'"{v}"'
        case Bool(value=v):
            return "true" if v else "false"
        case Name(id=i):
            return i
        case Ref():
            return node.key
        case Unary(op="-", operand=a):
            return wrap("-" + to_source(a, _PREC["neg"]), _PREC["neg"])
        case Unary(operand=a):
            return wrap("not " + to_source(a, _PREC["not"]), _PREC["not"])
        case Bin(op=op, left=a, right=b):
            p = _PREC[op]
            return wrap(f"{to_source(a, p)} {op} {to_source(b, p + 1)}", p)
        case Cmp(op=op, left=a, right=b):
            p = _PREC["cmp"]
            return wrap(f"{to_source(a, p + 1)} {op} {to_source(b, p + 1)}", p)
        case BoolOp(op=op, values=vs):
            p = _PREC[op]
            return wrap(f" {op} ".join(to_source(v, p + 1) for v in vs), p)
        case In(value=v, options=opts, negate=neg):
            inner = ", ".join(to_source(o) for o in opts)
            return wrap(f"{to_source(v, 5)} {'not in' if neg else 'in'} [{inner}]", _PREC["cmp"])
        case IfElse(cond=c, then=t, other=o):
            return wrap(f"{to_source(t, 1)} if {to_source(c, 1)} else {to_source(o, 1)}", 0 if parent else 1)
        case Call(fn=fn, args=args):
            return f"{fn}({', '.join(to_source(a) for a in args)})"
    return "?"
