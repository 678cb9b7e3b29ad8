"""Validates reference-shaped data against the IR and names every problem by its field path."""

from __future__ import annotations

import difflib
import math
import types
import typing
from dataclasses import dataclass, replace
from statistics import NormalDist
from typing import Any

from pydantic import BaseModel, Discriminator, Tag, ValidationError

from tracedsl import families
from tracedsl.codes import W_BOUNDS, W_CONSTANT, W_DELAY_MAX, W_TURN_ZERO, W_UNFIT_TARGETS
from tracedsl.feasibility import turn_zero_share
from tracedsl.ir import (
    DELAY_TAGS,
    HOPELESS,
    TURNS_TAGS,
    Delay,
    GenerationParams,
    Issue,
    Lognormal,
    ParamsError,
    _token_laws,
    aiperf_inexpressible,
    distribution_slots,
    fit_chances,
    params_warnings,
)

# Union tags pydantic puts into error locations (the families' names); they are not field names.
_UNION_TAGS = frozenset(families.names()) | frozenset(DELAY_TAGS) | frozenset(TURNS_TAGS)
_UNKNOWN: Any = object()  # no data known at a path: a union's first member stands for it


@dataclass(frozen=True)
class FieldProblem:
    """One validation problem: the field paths it involves (first is the main one), what, a hint."""

    paths: tuple[str, ...]
    message: str
    hint: str | None = None
    kind: str = "invalid"  # "unknown" for a key the IR does not have, else "invalid"
    code: str | None = None  # a warning's code (tracedsl.codes); errors take the caller's

    @property
    def path(self) -> str:
        return self.paths[0] if self.paths else ""


def validate_params(data: Any) -> tuple[GenerationParams | None, list[FieldProblem]]:
    """Validate a reference-shaped dict; return the params, or None and every problem found."""
    try:
        return GenerationParams.model_validate(data), []
    except ValidationError as exc:
        return None, _blame_default_layers(data, problems_from(exc, data))
    except ParamsError as exc:  # pragma: no cover - pydantic wraps it, but be safe
        return None, [_from_issue((), issue) for issue in exc.issues]
    except (RecursionError, OverflowError) as exc:
        return None, [FieldProblem(("",), f"cannot validate: {type(exc).__name__}")]


def warnings_for(params: GenerationParams) -> list[FieldProblem]:
    """What a valid spec probably did not mean, each with its effect and its code.

    With classes, the bodies that run are the classes': each is checked, its paths under
    ``classes.N.params`` (the top-level defaults themselves are not run).
    """
    if params.classes is not None:
        return [in_class(problem, index) for index, session_class in enumerate(params.classes)
                for problem in warnings_for(session_class.params)]
    constant = [replace(_from_issue((), issue), code=W_CONSTANT) for issue in params_warnings(params)]
    return (constant + bounds_warnings(params) + delay_max_warnings(params) + unfit_target_warnings(params)
            + turn_zero_warnings(params))


def in_class(problem: FieldProblem, index: int) -> FieldProblem:
    """A problem of a class's body, its paths under ``classes.N.params``."""
    return replace(problem, paths=tuple(f"classes.{index}.params.{path}" for path in problem.paths))


# What a class cannot hold differently from the top level, so AIPerf's verdict on it is the top level's.
_TRACE_WIDE = frozenset({"arrivals", "latency", "classes"})


def aiperf_issues(params: GenerationParams) -> list[Issue]:
    """Each construct AIPerf 0.13.0 cannot express, at its field path: with classes, the
    trace-wide ones and each class body's (not the top-level defaults, which do not run)."""
    found = aiperf_inexpressible(params)
    if params.classes is None:
        return found
    return [issue for issue in found if issue.paths[0] in _TRACE_WIDE] + [
        Issue(issue.message, tuple(f"classes.{index}.params.{path}" for path in issue.paths), issue.hint)
        for index, session_class in enumerate(params.classes)
        for issue in aiperf_inexpressible(session_class.params)
        if issue.paths[0] not in _TRACE_WIDE
    ]


def problems_from(error: ValidationError, data: Any = _UNKNOWN) -> list[FieldProblem]:
    """Every problem in ``error``; with ``data`` (what was validated), unknown-key hints name the
    keys of the union member the value is."""
    problems: list[FieldProblem] = []
    for err in error.errors():
        loc = tuple(str(part) for part in err["loc"] if part not in _UNION_TAGS)
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, ParamsError):
            problems.extend(_from_issue(loc, issue) for issue in cause.issues)
        elif err["type"] == "extra_forbidden":
            problems.append(_unknown_key(loc, data))
        elif err["type"] == "union_tag_invalid":
            ctx = err.get("ctx") or {}
            tag, expected = ctx.get("tag"), str(ctx.get("expected_tags", "")).replace("'", "")
            problems.append(
                FieldProblem(
                    (".".join(loc),),
                    f"unknown distribution kind '{tag}' (known: {expected})",
                    did_you_mean(str(tag), expected.split(", ")),
                )
            )
        else:
            path = ".".join(loc)
            message = err["msg"]
            if message.startswith("Value error, "):
                message = message[len("Value error, ") :]
            if err["type"] == "missing":
                message = f"{path} is required"
            elif path:
                message = f"{path}: {_lower_first(message)}"
            problems.append(FieldProblem((path,), message))
    return problems


def _from_issue(loc: tuple[str, ...], issue: Issue) -> FieldProblem:
    prefix = ".".join(loc)
    paths = tuple(f"{prefix}.{p}" if prefix else p for p in issue.paths) or (prefix,)
    message = issue.message
    if prefix and not message.startswith(prefix):
        message = f"{prefix}: {message}"
    return FieldProblem(paths, message, issue.hint)


def _unknown_key(loc: tuple[str, ...], data: Any = _UNKNOWN) -> FieldProblem:
    *parent, key = loc
    known = field_names(tuple(parent), data) or []
    where = f" in {'.'.join(parent)}" if parent else ""
    hint = did_you_mean(key, known)
    if hint is None and "law" in known and key in (field_names((*parent, "law"), data) or []):
        hint = f"the law's own bound: {'.'.join((*parent, 'law', key))}"  # turns.max on a law
    return FieldProblem((".".join(loc),), f"unknown key '{key}'{where}", hint, kind="unknown")


def did_you_mean(word: str, choices: typing.Iterable[str]) -> str | None:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if not close and word.lower() in {c.lower() for c in choices}:
        close = [c for c in choices if c.lower() == word.lower()]
    return f"did you mean '{close[0]}'?" if close else None


def field_names(path: tuple[str, ...], data: Any = _UNKNOWN) -> list[str] | None:
    """The keys the IR accepts at ``path`` (e.g. ``("cache", "layer2")``), or None if not an object.

    With ``data`` (the whole spec's dict), a union follows the member the value there is (a
    normal's ``sd``, a delay law's ``law``), not the union's first member.
    """
    model = model_at(path, data)
    return None if model is None else [name for name in model.model_fields if name != "kind"]


def model_at(path: tuple[str, ...], data: Any = _UNKNOWN) -> type[BaseModel] | None:
    """The model at ``path``; in a tagged union, the member ``data``'s value there is, if known."""
    model: type[BaseModel] | None = GenerationParams
    node = data
    for part in path:
        if isinstance(node, list) or (node is _UNKNOWN and part.isdigit()):  # an item of a list (classes.<i>)
            node = node[int(part)] if isinstance(node, list) and part.isdigit() and int(part) < len(node) else _UNKNOWN
            continue
        if model is None or part not in model.model_fields:
            return None
        info = model.model_fields[part]
        node = node.get(part, _UNKNOWN) if isinstance(node, dict) else _UNKNOWN
        model = _model_in(info.annotation, node, tuple(info.metadata))
    return model


def _model_in(annotation: Any, value: Any = _UNKNOWN, metadata: tuple = ()) -> type[BaseModel] | None:
    """The pydantic model inside an annotation such as ``Reset | None`` or a tagged union.

    A tagged union gives the member its discriminator picks for ``value`` (a dict), else its
    first member.
    """
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, *extra = typing.get_args(annotation)
        return _model_in(base, value, (*extra, *metadata))
    if origin is None and not isinstance(annotation, types.UnionType):
        return None
    args = typing.get_args(annotation)
    tag = _tag_of(value, metadata) if origin is typing.Union or isinstance(annotation, types.UnionType) else None
    if tag is not None:
        for arg in args:
            if any(isinstance(m, Tag) and m.tag == tag for m in typing.get_args(arg)[1:]):
                return _model_in(arg, value)
    for arg in args:
        found = _model_in(arg, value)
        if found is not None:
            return found
    return None


def _tag_of(value: Any, metadata: tuple) -> str | None:
    """The tag a union's discriminator gives ``value``, or None if it cannot tell."""
    if not isinstance(value, dict):
        return None
    for meta in metadata:
        if isinstance(meta, Discriminator):
            pick = meta.discriminator
            tag = value.get(pick) if isinstance(pick, str) else pick(value)
            return tag if isinstance(tag, str) else None
    return None


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text else text


# ---------------------------------------------------------------------------------------------
# A prefix error caused by a layer the spec did not write

# The shared-prefix layers a spec gets by default, and how to switch each off.
_DEFAULT_LAYERS = (
    ("layer1_5_tokens", "L1.5 (groups)", "`groups 1 of 0` in the prefix block"),
    ("layer1_tokens", "L1 (global)", "`global 0` in the prefix block"),
)


def _blame_default_layers(data: Any, problems: list[FieldProblem]) -> list[FieldProblem]:
    """Say so when a prefix does not fit only because of a default layer the spec left out."""
    prefix_problems = [
        p for p in problems
        if "max_prompt_tokens" in p.paths and ("cache.layer1_5_tokens" in p.paths or {"turns.min", "turns.law.min"} & set(p.paths))
    ]
    cache = data.get("cache", {}) if isinstance(data, dict) else None
    if not prefix_problems or not isinstance(cache, dict):
        return problems
    defaults = {name: _layer_default(name) for name, _, _ in _DEFAULT_LAYERS}
    unwritten = [layer for layer in _DEFAULT_LAYERS if layer[0] not in cache and defaults[layer[0]]]
    candidates = [[layer] for layer in unwritten] + ([unwritten] if len(unwritten) > 1 else [])
    blamed: dict[tuple[str, ...], list] = {}
    for layers in candidates:
        trial = {**data, "cache": {**cache, **{name: 0 for name, _, _ in layers}}}
        try:
            GenerationParams.model_validate(trial)
            remaining: set[tuple[str, ...]] = set()
        except ValidationError as exc:
            remaining = {p.paths for p in problems_from(exc, trial)}
        for problem in prefix_problems:
            if problem.paths not in remaining and problem.paths not in blamed:
                blamed[problem.paths] = layers
    out = []
    for problem in problems:
        layers = blamed.get(problem.paths) if problem in prefix_problems else None
        if layers is None:
            out.append(problem)
            continue
        said = " and ".join(f"{words} is the default ({defaults[name]} tokens), not set in this spec"
                            for name, words, _ in layers)
        switch = " and ".join(how for _, _, how in layers)
        keys = ", ".join(f"cache.{name} = 0" for name, _, _ in layers)
        hint = f"switch the default off with {switch} ({keys} in a spec file)"
        if problem.hint:
            hint += f", or {_lower_first(problem.hint)}"
        out.append(replace(problem, message=f"{problem.message}; {said}", hint=hint))
    return out


def _layer_default(name: str) -> int:
    from tracedsl.ir import Cache

    return Cache.model_fields[name].default


# ---------------------------------------------------------------------------------------------
# Bounds that cut away most of a distribution

# A bounded law warns (W102) when its bounds keep less than this share of its mass,
# and the delay's max (W103) when it clips more than this share of delays.
MOST = 0.5
# The reference, and so the aiperf engine, redraws an out-of-bounds value this many times and
# then clips it; the fast engine draws the cut law exactly.
_REDRAWS = 100
_NORMAL = NormalDist()


def _cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def _sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _between(a: float, b: float) -> float:
    """P(a < Z < b) for a standard normal, accurate in either tail."""
    return _sf(a) - _sf(b) if a > 0 else _cdf(b) - _cdf(a)


@dataclass(frozen=True)
class _Cut:
    """A lognormal cut to [low, high]: the z of each bound and the share of mass between them."""

    mu: float
    sigma: float
    low: float  # 0 when unbounded below
    high: float  # inf when unbounded above

    @property
    def alpha(self) -> float:
        return (math.log(self.low) - self.mu) / self.sigma if self.low > 0 else -math.inf

    @property
    def beta(self) -> float:
        return (math.log(self.high) - self.mu) / self.sigma if math.isfinite(self.high) else math.inf

    @property
    def kept(self) -> float:
        return _between(self.alpha, self.beta)

    def above(self, value: float) -> float:
        """P(X > value) under the cut law (kept > 0)."""
        if value >= self.high:
            return 0.0
        z = (math.log(value) - self.mu) / self.sigma if value > 0 else -math.inf
        return _between(max(z, self.alpha), self.beta) / self.kept

    def mean(self) -> float:
        unbounded = math.exp(self.mu + self.sigma * self.sigma / 2.0)
        return unbounded * _between(self.alpha - self.sigma, self.beta - self.sigma) / self.kept

    def median(self) -> float:
        if self.alpha > 0:  # upper tail: through the survival function, where Φ rounds to 1
            z = -_NORMAL.inv_cdf(_sf(self.beta) + self.kept / 2.0)
        else:
            z = _NORMAL.inv_cdf(_cdf(self.alpha) + self.kept / 2.0)
        return math.exp(self.mu + self.sigma * z)


def _cut_of(dist: Lognormal, mu_shift: float = 0.0) -> _Cut:
    low = float(dist.min) if dist.min is not None else 0.0
    high = float(dist.max) if dist.max is not None else math.inf
    return _Cut(float(dist.mu) + mu_shift, float(dist.sigma), low, high)


def _bounded(params: GenerationParams):
    """(path, lognormal, mu shift, unit, token-count floor or None) of each bounded lognormal."""
    bias = getattr(params.new_tokens_per_turn, "bias", 1.0)
    delay = params.inter_turn_delay
    delays = (
        [("inter_turn_delay.law", delay.law, 0.0, "ms", None)]
        if isinstance(delay, Delay)
        else [
            ("inter_turn_delay.agentic_delay", delay.agentic_delay, 0.0, "ms", None),
            ("inter_turn_delay.human_delay", delay.human_delay, 0.0, "ms", None),
        ]
    )
    found = [
        ("new_tokens_per_turn", params.new_tokens_per_turn, math.log(bias), "", 1),
        ("generation_length", params.generation_length, 0.0, "", params.output_floor),
        *delays,
        ("cache.layer2", params.cache.layer2, 0.0, "", 1),
    ]
    if params.turns is not None:
        found.append(("turns", params.turns.target, 0.0, "", None))
    return [entry for entry in found
            if isinstance(entry[1], Lognormal) and (entry[1].min is not None or entry[1].max is not None)]


def bounds_warnings(params: GenerationParams) -> list[FieldProblem]:
    """W102: bounds that keep less than half of a law's mass, with what the draws become."""
    found = []
    for path, dist, shift, unit, floor in _bounded(params):
        try:
            problem = _bounds_problem(path, dist, shift, unit, floor)
        except (OverflowError, ValueError, ZeroDivisionError):  # an absurd bias: nothing to say
            continue
        if problem is not None:
            found.append(problem)
    for path, dist, scale in distribution_slots(params):
        if isinstance(dist, Lognormal) or (dist.min is None and dist.max is None):
            continue
        try:
            problem = _family_bounds_problem(path, dist, scale, "ms" if path.startswith("inter_turn") else "")
        except (ArithmeticError, NotImplementedError, ValueError):  # a law without the figures
            continue
        if problem is not None:
            found.append(problem)
    return found


def _unbounded(dist: Any) -> Any:
    """The law without its bounds; without max only where min is a parameter (a pareto's)."""
    for update in ({"min": None, "max": None}, {"max": None}):
        try:
            return type(dist).model_validate({**dist.model_dump(), **update})
        except ValueError:
            continue
    raise ValueError("no unbounded form")


def _family_bounds_problem(path: str, dist: Any, scale: float, unit: str) -> FieldProblem | None:
    """W102 for any family but the lognormal: its law's ``mass`` inside the bounds, and how the
    cut moves its mean and median."""
    family = families.family_of(dist)
    bounded = families.law(dist, "fast", scale)
    kept = bounded.mass
    if kept >= MOST:
        return None
    whole = families.law(_unbounded(dist), "fast", scale)
    below = whole.cdf_before(float(dist.min)) if dist.min is not None else 0.0
    above = 1.0 - whole.cdf(float(dist.max)) if dist.max is not None else 0.0
    side = "min" if dist.min is not None and (dist.max is None or below >= above) else "max"
    bounds = ", ".join(f"{name} {_about(value)}{unit}"
                       for name, value in (("min", dist.min), ("max", dist.max)) if value is not None)
    shown = f"{_about(whole.mean)}{unit}" if math.isfinite(whole.mean) else "infinite"
    effect = (f"tracedsl draws from the {family.name} cut to them, so the mean moves from {shown} "
              f"to ~{_about(bounded.mean)}{unit} and the median from {_about(whole.median)}{unit} to "
              f"~{_about(bounded.median)}{unit}")
    return FieldProblem(
        (f"{path}.{side}",),
        f"{path}: the bounds ({bounds}) keep {_percent(kept)} of the {family.name}'s mass; {effect}",
        "widen the bounds, or move the law inside them",
        code=W_BOUNDS,
    )


def _bounds_problem(path: str, dist: Lognormal, shift: float, unit: str,
                    floor: int | None) -> FieldProblem | None:
    cut = _cut_of(dist, shift)
    bounds = ", ".join(f"{name} {_about(value)}{unit.strip() if unit == 'ms' else ''}"
                       for name, value in (("min", dist.min), ("max", dist.max)) if value is not None)

    def becomes(value: float) -> str:
        if floor is not None:  # token counts: int() of the draw, then the floor
            value = max(int(value), floor)
        return f"every draw becomes {_about(value)}{unit}"

    if cut.sigma == 0.0:  # a constant: clipped to the bound it lies beyond
        value = math.exp(cut.mu)
        if cut.low <= value <= cut.high:
            return None
        bound, side = (cut.low, "min") if value < cut.low else (cut.high, "max")
        return FieldProblem(
            (f"{path}.{side}",),
            f"{path}: the constant {_about(value)}{unit} (mean == median) lies beyond {side} "
            f"{_about(bound)}: {becomes(bound)}",
            code=W_BOUNDS,
        )
    kept = cut.kept
    if kept >= MOST:
        return None
    below = _between(-math.inf, cut.alpha) if cut.low > 0 else 0.0
    above = _between(cut.beta, math.inf) if math.isfinite(cut.high) else 0.0
    side = "min" if dist.min is not None and (dist.max is None or below >= above) else "max"
    if kept <= 0.0:  # no mass a double can hold: every engine puts each draw on the bound
        bound = cut.low if cut.alpha > 0 else cut.high
        effect = f"it holds almost none of the mass, so {becomes(bound)}"
    else:
        same = floor is not None and math.isfinite(cut.high) and (
            max(int(cut.low), floor) == max(int(cut.high), floor))
        if same:
            effect = f"tracedsl draws from the lognormal cut to them, so {becomes(cut.high)}"
        else:
            unbounded = math.exp(cut.mu + cut.sigma * cut.sigma / 2.0)
            effect = (f"tracedsl draws from the lognormal cut to them, so the mean moves from "
                      f"{_about(unbounded)}{unit} to ~{_about(cut.mean())}{unit} and the median from "
                      f"{_about(math.exp(cut.mu))}{unit} to ~{_about(cut.median())}{unit}")
        clipped = (1.0 - kept) ** _REDRAWS
        if clipped >= 0.01:
            effect += (f" (the aiperf engine redraws {_REDRAWS} times and then clips, so "
                       f"{_percent(clipped)} of its draws land on the bounds)")
    return FieldProblem(
        (f"{path}.{side}",),
        f"{path}: the bounds ({bounds}) keep {_percent(kept)} of the lognormal's mass; {effect}",
        "widen the bounds, or move the mean and median inside them",
        code=W_BOUNDS,
    )


def delay_max_warnings(params: GenerationParams) -> list[FieldProblem]:
    """W103: a delay max of 0 (every delay is 0), or one that clips most delays."""
    delay = params.inter_turn_delay
    if delay.max is None:
        return []
    path = ("inter_turn_delay.max",)
    if delay.max == 0:
        return [FieldProblem(
            path, "inter_turn_delay.max is 0ms: every delay becomes 0ms, so each turn follows "
            "the one before it at once", "leave max out for no clip", code=W_DELAY_MAX)]
    clipped = 0.0
    for share, dist in ((delay.agentic_fraction, delay.agentic_delay),
                        (1.0 - delay.agentic_fraction, delay.human_delay)):
        if share and isinstance(dist, Lognormal):
            clipped += share * _share_above(dist, float(delay.max))
    if clipped <= MOST:
        return []
    return [FieldProblem(
        path, f"inter_turn_delay.max ({_about(delay.max)}ms) clips {_percent(clipped)} of delays "
        f"to exactly {_about(delay.max)}ms (before the context scaling)",
        "raise max, or lower the components' means", code=W_DELAY_MAX)]


def _share_above(dist: Lognormal, value: float) -> float:
    cut = _cut_of(dist)
    if cut.sigma == 0.0 or cut.kept <= 0.0:
        drawn = min(max(math.exp(cut.mu), cut.low), cut.high)
        if cut.sigma != 0.0:
            drawn = cut.low if cut.alpha > 0 else cut.high
        return 1.0 if drawn > value else 0.0
    return cut.above(value)


def _about(value: float, significant: int = 3) -> str:
    """A figure in a message: a few significant digits, without an exponent."""
    value = float(value)
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else str(value)
    digits = significant - 1 - math.floor(math.log10(abs(value)))
    rounded = round(value, digits)
    if digits <= 0 or rounded == int(rounded):
        return str(int(rounded))
    return f"{rounded:.{digits}f}".rstrip("0")


def _percent(share: float) -> str:
    if share < 0.001:
        return "less than 0.1%"
    return f"{_about(share * 100, 2)}%"


# W104 speaks when at least this share of sessions draw a target that almost never fits.
_UNFIT_SHARE = 1e-6


def unfit_target_warnings(params: GenerationParams) -> list[FieldProblem]:
    """W104: turn targets from some count up that almost never fit in the attempts a session has.

    The IR refuses a spec whose smallest target is such; here the share of sessions drawing a
    larger one says how long a run can be before one of them stops it.
    """
    turns = params.turns
    if turns is None or turns.allow_truncation or turns.max <= turns.min:
        return []
    attempts = int(turns.max_session_attempts or 100)
    try:
        first = fit_chances(params).first_hopeless(turns.min + 1, turns.max, attempts, HOPELESS)
        if first is None:
            return []
        share = 1.0 - families.law(turns.target, "fast").cdf_before(first - 0.5)
    except (ArithmeticError, NotImplementedError, ValueError):
        return []
    if share < _UNFIT_SHARE:
        return []
    return [FieldProblem(
        (turns.path("max"),),
        f"turns: {_percent(share)} of sessions draw a target of {first} turns or more, which almost "
        f"never fits max_prompt_tokens ({params.max_prompt_tokens}): all {attempts} attempts fail "
        f"for all but {_percent(HOPELESS)} of those sessions, and the run fails on the first",
        f"lower turns.max below {first}, lower the new tokens a turn, raise the context, or allow truncation",
        code=W_UNFIT_TARGETS,
    )]


def turn_zero_warnings(params: GenerationParams) -> list[FieldProblem]:
    """W107: most sessions end at turn 0, because their turn 1 cannot fit the context.

    Turn 1 sends the fixed prefix, the session's L2, turn 0's output and turn 1's new tokens;
    where that reaches max_prompt_tokens the session retires after one request (or, with
    explicit turns, is truncated there; retrying draws it again, which W104 speaks of).
    """
    turns = params.turns
    if turns is not None and (not turns.allow_truncation or turns.max <= 1):
        return []
    room = params.max_prompt_tokens - params.fixed_prefix_tokens
    try:
        share = turn_zero_share(room, *_token_laws(params))
    except (ArithmeticError, NotImplementedError, ValueError):  # a law without the figures
        return []
    if share <= MOST:
        return []
    prefix = params.fixed_prefix_tokens
    ends = "is truncated there" if turns is not None else "retires after it"
    return [FieldProblem(
        ("max_prompt_tokens", "cache.layer2", "generation_length", "new_tokens_per_turn"),
        f"about {_percent(share)} of sessions end at turn 0: their turn 1 (the {prefix}-token "
        f"prefix, the session's L2, turn 0's output and turn 1's new tokens) reaches "
        f"max_prompt_tokens ({params.max_prompt_tokens}), so such a session sends one request and "
        f"{ends}, and no later turn of it reuses its prefix",
        "raise the context, or lower the session prefix (L2), the outputs or the new tokens a turn",
        code=W_TURN_ZERO,
    )]
