"""YAML with locations: every mapping and list remembers where it and its entries stand.

`load_yaml(path)` returns plain-looking Python values in which mappings are `YMap` and
sequences `YList`; both carry `loc` (their own place) and `locs` (the place of each
entry's value), and `YMap.key_locs` (the place of each key). Duplicate keys, which
YAML would silently collapse, are reported as problems.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import Collector, KaoheError, Loc, Problem

# libyaml's composer when PyYAML was built with it (the wheels are): ~10x faster, same nodes and marks
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YMap(dict[str, Any]):
    loc: Loc
    locs: dict[str, Loc]
    key_locs: dict[str, Loc]


class YList(list[Any]):
    loc: Loc
    locs: list[Loc]


def _loc(file: str, node: yaml.Node) -> Loc:
    quoted = isinstance(node, yaml.ScalarNode) and node.style in ("'", '"')  # point inside the quotes
    return Loc(file, node.start_mark.line + 1, node.start_mark.column + 1 + quoted)


class _Builder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.problems = Collector()
        self.scalars = yaml.SafeLoader("")  # only its scalar constructors are used

    def build(self, node: yaml.Node) -> Any:
        if isinstance(node, yaml.MappingNode):
            return self._map(node)
        if isinstance(node, yaml.SequenceNode):
            out = YList(self.build(n) for n in node.value)
            out.loc, out.locs = _loc(self.file, node), [_loc(self.file, n) for n in node.value]
            return out
        return self.scalars.construct_object(node, deep=True)

    def _map(self, node: yaml.MappingNode) -> YMap:
        out = YMap()
        out.loc, out.locs, out.key_locs = _loc(self.file, node), {}, {}
        for knode, vnode in node.value:
            key = self.build(knode)
            kloc = _loc(self.file, knode)
            if not isinstance(key, (str, int, float, bool)) or isinstance(key, bool):
                self.problems.add(kloc, f"a key must be a name, not {type(key).__name__}")
                continue
            key = str(key)
            if key in out:
                self.problems.add(kloc, f"duplicate key '{key}'",
                                  hint=f"it was first given at line {out.key_locs[key].line}; keep one",
                                  zh=(f"键 '{key}' 重复", f"第 {out.key_locs[key].line} 行已有; 只保留一个"))
                continue
            out[key] = self.build(vnode)
            out.locs[key], out.key_locs[key] = _loc(self.file, vnode), kloc
        return out


def load_yaml(path: str | Path) -> Any:
    """Parse one YAML file into located values; raise KaoheError on syntax or duplicate keys."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KaoheError([Problem(Loc(file), "file not found", hint="check the path",
                                  zh=("找不到文件", "请检查路径"))]) from None
    except UnicodeDecodeError as e:
        raise KaoheError([Problem(Loc(file), f"not UTF-8 text ({e.reason} at byte {e.start})",
                                  hint="save the scheme file as UTF-8",
                                  zh=(f"不是 UTF-8 文本 (第 {e.start} 字节: {e.reason})", "请把方案文件存为 UTF-8")
                                  )]) from None
    except OSError as e:
        raise KaoheError([Problem(Loc(file), f"cannot read: {e.strerror}")]) from None
    try:
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        loc = Loc(file, mark.line + 1, mark.column + 1) if mark else Loc(file)
        raise KaoheError([Problem(loc, f"YAML syntax error: {e.problem or e.context}",
                                  hint="check indentation and quoting near this place",
                                  zh=(f"YAML 语法错误: {e.problem or e.context}", "请检查这里附近的缩进和引号")
                                  )]) from None
    except yaml.YAMLError as e:
        raise KaoheError([Problem(Loc(file), f"YAML error: {e}")]) from None
    if node is None:
        raise KaoheError([Problem(Loc(file), "the file is empty",
                                  hint="a scheme needs at least 'scheme:' and 'sections:'",
                                  zh=("文件是空的", "方案至少要有 'scheme:' 和 'sections:'"))])
    builder = _Builder(file)
    try:
        value = builder.build(node)
    except yaml.constructor.ConstructorError as e:
        mark = e.problem_mark
        loc = Loc(file, mark.line + 1, mark.column + 1) if mark else Loc(file)
        raise KaoheError([Problem(loc, f"YAML error: {e.problem}")]) from None
    builder.problems.raise_if_any()
    return value
