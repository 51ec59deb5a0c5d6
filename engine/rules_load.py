"""load + check the decision part of a scheme (vetoes, grades, ranking, awards).

Names usable in `eligible`, `when` and sort keys: every field, `section.X`, `item.X`, `pool.X`,
`total`, `grade` (the grade id), `unit_id`, `name`, `unit_type`; an award's `eligible` and `rank_by` also
`rank` (the unit's rank as the score table shows it: places gained are `last_rank - rank` over a field that
holds last year's).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

from .check import field_env, text_domains
from .errors import Collector, Loc, Problem, did_you_mean
from .expr import Expr, Type, literal_problems, to_source, typecheck
from .model import Scheme
from .rules_model import Award, Decisions, Grade, Level, Quota, Ranking, SortKey, Veto
from .yamlread import Reader
from .yamlsrc import YList, YMap

DEFAULT_ORDER = "total desc, unit_id asc"
MAX_PLACES = 10**9  # an award's or a grade's places (a nation has millions of units, not billions)


def decision_env(scheme: Scheme) -> dict[str, Type]:
    env: dict[str, Type] = dict(field_env(scheme))
    env.update({"total": "num", "grade": "str", "unit_id": "str", "name": "str", "unit_type": "str"})
    env.update({f"section.{s.id}": "num" for s in scheme.all_sections()})
    env.update({f"item.{i.id}": "num" for i in scheme.all_items()})
    env.update({f"pool.{p.id}": "num" for p in scheme.pools})
    env.update({f"event.{r['id']}": "num" for r in scheme.raw.get("events") or []
                if isinstance(r, dict) and isinstance(r.get("id"), str)})
    return env


def load_decisions(scheme: Scheme) -> Decisions:
    problems = Collector()
    r = Reader(problems)
    raw = scheme.raw
    env = decision_env(scheme)
    grades = tuple(_grade(r, g, env) for g in _maps(r, raw, "grades"))
    vetoes = tuple(_veto(r, v, env) for v in _maps(r, raw, "vetoes"))
    ranking = _ranking(r, raw, env)
    award_env: dict[str, Type] = {**env, "rank": "num"}  # ranks are known before awards, not before vetoes/grades
    awards = tuple(_award(r, a, award_env, ranking) for a in _maps(r, raw, "awards"))
    problems.problems += _cross(scheme, grades, vetoes, ranking, awards)
    problems.raise_if_any()
    return Decisions(vetoes, grades, ranking, awards)


def _maps(r: Reader, raw: YMap, key: str) -> list[YMap]:
    lst = r.list(raw, key, f"[{key}]")
    out = []
    for v, loc in zip(lst, lst.locs, strict=True):
        if isinstance(v, YMap):
            out.append(v)
        else:
            r.p.add(loc, f"each entry of '{key}' must be a mapping with 'id:'", context=f"[{key}]")
    return out


def _expr(r: Reader, m: YMap, key: str, ctx: str, env: dict[str, Type], want: Type) -> Expr | None:
    e = r.expr(m, key, ctx)
    if e is not None:
        r.p.problems.extend(_typecheck(e, env, want, ctx))
    return e


def _typecheck(e: Expr, env: dict[str, Type], want: Type | None, ctx: str) -> list[Problem]:
    """typecheck, saying where `rank` may be read when it is read elsewhere."""
    out = typecheck(e, env, want=want, context=ctx)
    if "rank" in env or "rank" not in e.names():
        return out
    return [replace(p, message="'rank' is decided from the vetoes, grades and ranking, after them: only an award's "
                    "'eligible' and 'rank_by' can read it", hint="") if p.message.startswith("unknown field 'rank'")
            else p for p in out]


def _quota(r: Reader, m: YMap, key: str, ctx: str) -> Quota | None:
    if m.get(key) is None:
        return None
    q = r.map(m, key, ctx)
    r.keys(q, ctx, allowed_keys=("count", "share", "rounding", "per", "of"))
    count = q.get("count")
    share = r.number(q, "share", ctx)
    if (count is None) == (share is None):
        r.p.add(q.loc, "a quota needs exactly one of 'count' or 'share'", context=ctx)
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_PLACES):
        r.p.add(q.locs["count"], f"'count' must be a whole number of places, from 0 to {MAX_PLACES:,}", context=ctx)
        count = 0
    if share is not None and not 0 <= share <= 1:
        r.p.add(q.locs["share"], f"'share' must be between 0 and 1 (30% is 0.3), got {share}", context=ctx)
    per = q.get("per")
    if per not in (None, "unit_type"):
        r.p.add(q.locs["per"], f"'per' must be unit_type, got {per!r}", context=ctx)
    return Quota(count=count, share=share, rounding=r.choice(q, "rounding", ctx, ("floor", "half_up", "ceil"),
                                                             "floor"),
                 per=per, of=r.choice(q, "of", ctx, ("all", "eligible"), "all"))


def _sort_keys(r: Reader, m: YMap, key: str, ctx: str, env: dict[str, Type]) -> tuple[SortKey, ...] | None:
    v = m.get(key)
    if v is None:
        return None
    entries = (list(zip(v, v.locs, strict=True)) if isinstance(v, YList)
               else [(x, m.locs[key]) for x in str(v).split(",")])
    out = []
    seen: set[str] = set()
    for text, loc in entries:
        parts = str(text).strip().rsplit(" ", 1)
        desc = len(parts) == 2 and parts[1] == "desc"
        src = parts[0] if len(parts) == 2 and parts[1] in ("asc", "desc") else str(text).strip()
        e = r.as_expr(src, loc, ctx)
        if e is not None:
            r.p.problems.extend(_typecheck(e, env, None, ctx))
            if (same := to_source(e.tree)) in seen:
                r.p.add(loc, f"'{key}' lists '{same}' twice (a later key only breaks ties of the earlier ones)",
                        context=ctx)
            seen.add(same)
            out.append(SortKey(e, desc))
    return tuple(out)


def _ranking(r: Reader, raw: YMap, env: dict[str, Type]) -> Ranking:
    m = r.map(raw, "ranking", "[ranking]")
    r.keys(m, "[ranking]", allowed_keys=("by", "per"))
    by = _sort_keys(r, m, "by", "[ranking]", env)
    if by is None:
        by = _default_keys(r, m.loc, env)
    per = m.get("per", "unit_type")
    if per not in (None, "unit_type", "all"):
        r.p.add(m.locs.get("per", m.loc), f"'per' must be unit_type or all, got {per!r}", context="[ranking]")
    return Ranking(by, None if per in (None, "all") else "unit_type")


def _default_keys(r: Reader, loc: Loc, env: dict[str, Type]) -> tuple[SortKey, ...]:
    holder = YMap({"by": DEFAULT_ORDER})
    holder.loc, holder.locs, holder.key_locs = loc, {"by": loc}, {"by": loc}
    return _sort_keys(r, holder, "by", "[ranking]", env) or ()


def _grade(r: Reader, m: YMap, env: dict[str, Type]) -> Grade:
    gid = r.ident(m, "id", "[grades]")
    ctx = f"[grade {gid}]"
    r.keys(m, ctx, allowed_keys=("id", "label", "label_en", "min", "inclusive", "quota", "over_quota", "when",
                                 "note"), required=("id", "label"))
    if m.get("over_quota", "next") != "next":
        r.p.add(m.locs["over_quota"], "'over_quota' must be next (units over the quota get the next grade)",
                context=ctx)
    return Grade(gid, r.text(m, "label", ctx, gid), m.key_locs.get("id", m.loc), r.number(m, "min", ctx),
                 r.boolean(m, "inclusive", ctx, True), _quota(r, m, "quota", ctx),
                 _expr(r, m, "when", ctx, env, "bool"))


def _veto(r: Reader, m: YMap, env: dict[str, Type]) -> Veto:
    vid = r.ident(m, "id", "[vetoes]")
    ctx = f"[veto {vid}]"
    r.keys(m, ctx, allowed_keys=("id", "label", "when", "grade", "blocks", "rank", "source", "note"),
           required=("id", "label"))
    blocks: Any = m.get("blocks", "all")
    if blocks == "none":
        blocks = ()
    elif blocks != "all":
        blocks = r.names(m, "blocks", ctx) or ()
    grade = m.get("grade")
    if grade is not None and not isinstance(grade, str):
        r.p.add(m.locs["grade"], f"'grade' must be the id of a grade, got {grade!r}", context=ctx)
        grade = None
    # a scoped veto keeps the rank
    default_rank: Literal["last", "keep"] = "last" if grade is not None or blocks == "all" else "keep"
    return Veto(vid, r.text(m, "label", ctx, vid), m.key_locs.get("id", m.loc), _expr(r, m, "when", ctx, env, "bool"),
                grade, blocks, r.choice(m, "rank", ctx, ("last", "keep"), default_rank))


def _award(r: Reader, m: YMap, env: dict[str, Type], ranking: Ranking) -> Award:
    aid = r.ident(m, "id", "[awards]")
    ctx = f"[award {aid}]"
    r.keys(m, ctx, allowed_keys=("id", "label", "label_en", "applies_to", "eligible", "min_score", "rank_by",
                                 "quota", "tie_at_boundary", "levels", "pass_down", "source", "note"),
           required=("id", "label"))
    levels = []
    for lv in _maps(r, m, "levels"):
        lctx = f"{ctx} level"
        r.keys(lv, lctx, allowed_keys=("id", "label", "count", "min_score"), required=("id", "count"))
        count = r.integer(lv, "count", lctx, 0)
        if not 0 <= count <= MAX_PLACES:
            r.p.add(lv.locs["count"], f"'count' must be a whole number of places, from 0 to {MAX_PLACES:,}",
                    context=lctx)
            count = 0
        levels.append(Level(r.ident(lv, "id", lctx), r.text(lv, "label", lctx, str(lv.get("id"))),
                            count, r.number(lv, "min_score", lctx)))
    quota = _quota(r, m, "quota", ctx)
    if quota is None and not levels:
        r.p.add(m.loc, "an award needs a 'quota' (count or share) or 'levels'", context=ctx)
    return Award(aid, r.text(m, "label", ctx, aid), m.key_locs.get("id", m.loc), r.names(m, "applies_to", ctx),
                 _expr(r, m, "eligible", ctx, env, "bool"), r.number(m, "min_score", ctx),
                 _sort_keys(r, m, "rank_by", ctx, env) or ranking.by, quota,
                 r.choice(m, "tie_at_boundary", ctx, ("strict", "all_in", "flag"), "strict"),
                 tuple(levels), r.boolean(m, "pass_down", ctx, True), r.text(m, "label_en", ctx))


def _grade_order(grades: tuple[Grade, ...]) -> list[Problem]:
    """Grades from the highest 'min' to the lowest, the last one catching every other unit; a grade's
    condition does not read the grade."""
    out: list[Problem] = []
    if grades and grades[-1].min is not None:
        out.append(Problem(grades[-1].loc, "the last grade must have no 'min' (it catches every other unit)"))
    if grades and grades[-1].when is not None:
        out.append(Problem(grades[-1].when.loc, "the last grade takes no 'when' (it catches every other unit)"))
    for g in grades:
        if g.when is not None and "grade" in g.when.names():
            out.append(Problem(g.when.loc, f"grade {g.id}'s 'when' reads the grade it decides",
                               hint="write the condition on the total, sections, fields or event counts"))
    mins = [g.min for g in grades if g.min is not None]
    if mins != sorted(mins, reverse=True):
        out.append(Problem(grades[0].loc, "grades must run from the highest 'min' to the lowest: "
                           + ", ".join(f"{g.id} {g.min}" for g in grades if g.min is not None)))
    return out


def _cross(scheme: Scheme, grades: tuple[Grade, ...], vetoes: tuple[Veto, ...], ranking: Ranking,
           awards: tuple[Award, ...]) -> list[Problem]:
    out: list[Problem] = []
    gids = [g.id for g in grades]
    aids = [a.id for a in awards]
    for kind, ids, locs in (("grade", gids, [g.loc for g in grades]), ("award", aids, [a.loc for a in awards]),
                            ("veto", [v.id for v in vetoes], [v.loc for v in vetoes])):
        seen: set[str] = set()
        for i, loc in zip(ids, locs, strict=True):
            if i in seen:
                out.append(Problem(loc, f"duplicate {kind} id '{i}'"))
            seen.add(i)
    out += _grade_order(grades)
    for v in vetoes:
        if v.grade is not None and v.grade not in gids:
            out.append(Problem(v.loc, f"veto grade '{v.grade}' is not a grade{did_you_mean(v.grade, gids)}",
                               hint="allowed: " + ", ".join(gids)))
        for b in v.blocks if v.blocks != "all" else ():
            if b not in aids:
                out.append(Problem(v.loc, f"veto blocks unknown award '{b}'{did_you_mean(b, aids)}"))
    for a in awards:
        for t in a.applies_to or ():
            if t not in scheme.unit_types:
                out.append(Problem(a.loc, f"unknown unit type '{t}'{did_you_mean(t, scheme.unit_types)}"))
    domains = {**text_domains(scheme), "grade": {g.id: g.label for g in grades}}
    exprs = [(v.when, f"[vetoes.{v.id}]") for v in vetoes] + [(g.when, f"[grades.{g.id}]") for g in grades] + \
        [(k.expr, "[ranking]") for k in ranking.by]
    for a in awards:
        exprs += [(a.eligible, f"[awards.{a.id}]")] + [(k.expr, f"[awards.{a.id}]") for k in a.rank_by]
    for e, ctx in exprs:
        out += literal_problems(e, domains, ctx) if e is not None else []
    return out


