"""Typed reads from located YAML: each getter records a problem (with file:line:col) and
returns a safe default instead of raising, so a scheme's problems are reported together."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from .errors import Collector, Loc, allowed, did_you_mean
from .expr import Expr, ExprError, number_problem, parse
from .yamlsrc import YList, YMap

S = TypeVar("S", bound=str)


class Reader:
    def __init__(self, problems: Collector) -> None:
        self.p = problems

    def keys(self, m: YMap, ctx: str, *, allowed_keys: Iterable[str], required: Iterable[str] = ()) -> None:
        allow = set(allowed_keys)
        for k in m:
            if k not in allow:
                self.p.add(m.key_locs[k], f"unknown key '{k}'{did_you_mean(k, allow)}", context=ctx,
                           hint=allowed(allow), zh=(f"未知的键 '{k}'{did_you_mean(k, allow, 'zh')}",
                                                    "可用: " + ", ".join(sorted(allow))))
        for k in required:
            if k not in m:
                self.p.add(m.loc, f"missing key '{k}'", context=ctx, zh=(f"缺少键 '{k}'", ""))
            elif m[k] is None:  # `key:` with nothing after it
                self.p.add(m.locs[k], f"'{k}' needs a value", context=ctx, zh=(f"'{k}' 需要一个值", ""))

    def map(self, m: YMap, key: str, ctx: str) -> YMap:
        v = m.get(key)
        if v is None:
            return _empty_map(m.loc)
        if not isinstance(v, YMap):
            self.p.add(m.locs[key], f"'{key}' must be a mapping (key: value lines)", context=ctx,
                       zh=(f"'{key}' 须是映射 (一行一个 键: 值)", ""))
            return _empty_map(m.locs[key])
        return v

    def list(self, m: YMap, key: str, ctx: str) -> YList:
        v = m.get(key)
        if v is None:
            out = YList()
            out.loc, out.locs = m.loc, []
            return out
        if not isinstance(v, YList):
            self.p.add(m.locs[key], f"'{key}' must be a list (lines starting with '- ')", context=ctx,
                       zh=(f"'{key}' 须是列表 (每行以 '- ' 开头)", ""))
            out = YList()
            out.loc, out.locs = m.locs[key], []
            return out
        return v

    def text(self, m: YMap, key: str, ctx: str, default: str = "") -> str:
        v = m.get(key, default)
        if v is None:
            return default
        if isinstance(v, (YMap, YList)):
            self.p.add(m.locs[key], f"'{key}' must be a text", context=ctx, zh=(f"'{key}' 须是文字", ""))
            return default
        return str(v)

    def ident(self, m: YMap, key: str, ctx: str) -> str:
        v = m.get(key)
        if not isinstance(v, str) or not v.isidentifier():
            if key in m:
                self.p.add(m.locs[key], f"'{key}' must be a name of letters, digits and _ (got {v!r})", context=ctx,
                           zh=(f"'{key}' 须是由字母、数字和 _ 组成的名称 (填的是 {v!r})", ""))
            return ""
        return v

    def number(self, m: YMap, key: str, ctx: str, default: Decimal | None = None) -> Decimal | None:
        if key not in m or m[key] is None:
            return default
        return self.as_number(m[key], m.locs[key], f"'{key}'", ctx)

    def as_number(self, v: Any, loc: Loc, what: str, ctx: str) -> Decimal | None:
        not_number = (f"{what} 须是数, 填的是 {v!r}", "")
        if isinstance(v, bool) or not isinstance(v, (int, float, str)):
            self.p.add(loc, f"{what} must be a number, got {v!r}", context=ctx, zh=not_number)
            return None
        try:
            d = Decimal(str(v).strip().rstrip("%")) / (100 if str(v).strip().endswith("%") else 1)
        except InvalidOperation:
            self.p.add(loc, f"{what} must be a number, got {v!r}", context=ctx, zh=not_number)
            return None
        if (problem := number_problem(d)) is not None:
            self.p.add(loc, f"{what} {problem} (got {v!r})", context=ctx,
                       zh=(f"{what} 超出范围: 方案中的数须小于 10^12, 最多 10 位小数、共 15 位数字 (填的是 {v!r})", ""))
            return None
        return d

    def integer(self, m: YMap, key: str, ctx: str, default: int) -> int:
        v = m.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int):
            self.p.add(m.locs.get(key, m.loc), f"'{key}' must be a whole number, got {v!r}", context=ctx,
                       zh=(f"'{key}' 须是整数, 填的是 {v!r}", ""))
            return default
        return v

    def boolean(self, m: YMap, key: str, ctx: str, default: bool) -> bool:
        v = m.get(key, default)
        if not isinstance(v, bool):
            self.p.add(m.locs.get(key, m.loc), f"'{key}' must be true or false, got {v!r}", context=ctx,
                       zh=(f"'{key}' 须是 true 或 false, 填的是 {v!r}", ""))
            return default
        return v

    def choice(self, m: YMap, key: str, ctx: str, choices: Iterable[S], default: S) -> S:
        v = m.get(key, default)
        opts = list(choices)
        if v not in opts:
            self.p.add(m.locs.get(key, m.loc), f"'{key}' is {v!r}{did_you_mean(str(v), opts)}", context=ctx,
                       hint=allowed(opts), zh=(f"'{key}' 不能是 {v!r}{did_you_mean(str(v), opts, 'zh')}",
                                               "可用: " + ", ".join(sorted(map(str, opts)))))
            return default
        return opts[opts.index(v)]  # the option equal to v (typed as the options are)

    def expr(self, m: YMap, key: str, ctx: str) -> Expr | None:
        if key not in m or m[key] is None:
            return None
        return self.as_expr(m[key], m.locs[key], ctx)

    def as_expr(self, v: Any, loc: Loc, ctx: str) -> Expr | None:
        try:
            return parse(v, loc)
        except ExprError as e:
            self.p.add(loc.shifted(e.col), e.message, context=ctx, hint=e.hint)
            return None

    def names(self, m: YMap, key: str, ctx: str) -> tuple[str, ...] | None:
        v = m.get(key)
        if v is None:
            return None
        if isinstance(v, str):
            return (v,)
        if not isinstance(v, YList) or not all(isinstance(x, str) for x in v):
            self.p.add(m.locs[key], f"'{key}' must be a list of names", context=ctx, zh=(f"'{key}' 须是名称的列表", ""))
            return None
        return tuple(v)


def _empty_map(loc: Loc) -> YMap:
    out = YMap()
    out.loc, out.locs, out.key_locs = loc, {}, {}
    return out
