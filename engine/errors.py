"""Problems with a location, collected and reported together (STYLE 3, 4).

Every user-facing failure (bad scheme, bad data, bad option) becomes a `Problem`
that says what is wrong, where (file:line:col, or file row/column) and how to fix it.
The engine raises `KaoheError` carrying all problems at once; only `cli.py` turns it
into an exit code.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from difflib import get_close_matches


@dataclass(frozen=True, slots=True)
class Loc:
    """A place in an input file: 1-based line and column (YAML), or row and column (tables)."""

    file: str
    line: int = 0
    col: int = 0
    row: int | None = None
    column: str | None = None

    def __str__(self) -> str:
        return self.text("en")

    def text(self, lang: str) -> str:
        """The place in English or Chinese (file:line:col reads the same in both)."""
        if self.row is not None:
            if lang == "zh":
                where = f"{self.file}: 第 {self.row} 行"
                return f"{where}, 列 '{self.column}'" if self.column else where
            where = f"{self.file}: row {self.row}"
            return f"{where}, column '{self.column}'" if self.column else where
        if self.line:
            return f"{self.file}:{self.line}:{self.col}"
        return self.file

    def shifted(self, cols: int) -> Loc:
        return Loc(self.file, self.line, self.col + cols, self.row, self.column)


NOWHERE = Loc("<scheme>")


@dataclass(frozen=True, slots=True)
class Problem:
    loc: Loc
    message: str
    context: str = ""  # e.g. "[safety.rectification]"
    hint: str = ""
    warning: bool = False
    more: int = 0  # this entry stands for so many problems not listed ("... and 39 more like these")
    zh: tuple[str, str] | None = None  # (message, hint) in Chinese; None: the English ones are shown

    def __str__(self) -> str:
        return self.text("en")

    def text(self, lang: str) -> str:
        """'place: [context] message; hint' in the chosen language (English where no Chinese was given)."""
        zh = lang == "zh" and self.zh is not None
        message, hint = self.zh if zh and self.zh is not None else (self.message, self.hint)
        ctx = f" {self.context}" if self.context and not (zh and self.loc.row is not None) else ""  # (a data row's
        # Chinese message names what the context would: a scheme's [section.item] is for its author)
        hint = ("；" if lang == "zh" and self.zh is not None else "; ") + hint if hint else ""
        return f"{self.loc.text(lang)}:{ctx} {message}{hint}"


class KaoheError(Exception):
    """One or more problems with the user's input; the message lists them all."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        super().__init__(self.render())

    def render(self, lang: str = "en") -> str:
        """Every problem, a line each, and their count (in Chinese or English)."""
        lines = [p.text(lang) for p in self.problems]
        files = {p.loc.file for p in self.problems}
        n = sum(p.more or 1 for p in self.problems)
        if lang == "zh":  # (a --set is no file: one place is said as none)
            lines.append(f"共 {n} 个问题" + (f", 在 {len(files)} 个文件中" if len(files) > 1 else ""))
        else:
            lines.append(f"{n} problem{'s' if n != 1 else ''} in {len(files)} file{'s' if len(files) != 1 else ''}")
        return "\n".join(lines)


class UsageProblem(KaoheError):
    """The inputs given do not make a complete run (e.g. a scheme with event rules and no event log): the
    command was called wrongly (the CLI exits 2), not a file's fault."""


class Notice(UserWarning):
    """Something the user should know that is not an error (e.g. rows read as a note and left out): issued
    with `warnings.warn`; the CLI prints it on stderr and the run's manifest records it."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        super().__init__(str(problem))


class Collector:
    """Gathers problems during a stage; `raise_if_any` fails once with all of them."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, loc: Loc, message: str, *, context: str = "", hint: str = "", zh: tuple[str, str] | None = None
            ) -> None:
        self.problems.append(Problem(loc, message, context, hint, zh=zh))

    def raise_if_any(self) -> None:
        if self.problems:
            raise KaoheError(self.problems)


def did_you_mean(name: str, choices: Iterable[str], lang: str = "en") -> str:
    """`(did you mean 'x'?)` for the nearest choice, or '' when nothing is close."""
    close = get_close_matches(name, list(choices), n=1, cutoff=0.6)
    if not close:
        return ""
    return f" (是否应为 '{close[0]}'?)" if lang == "zh" else f" (did you mean '{close[0]}'?)"


def allowed(choices: Iterable[str]) -> str:
    return "allowed: " + ", ".join(sorted(choices))
