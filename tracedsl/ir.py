"""The intermediate representation: one pydantic model per part of a workload, frozen and validated.

Every field of the reference generator's config (AIPerf 0.13.0 ``SessionDistributionConfig``)
is defined here once, with the same name, meaning and default. ``GenerationParams`` dumps to
exactly the reference's ``generation_params`` (same keys, same order), so a spec.json can be
fed back to the reference. Cross-field rules raise :class:`ParamsError`, which carries every
problem found with the field paths involved, so callers can point at each one. The
distribution models are the families' (tracedsl.families); their union is built here from
the registry.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Union

from pydantic import Discriminator, Field, Tag, create_model, model_validator

from tracedsl import families
from tracedsl.families.base import IRModel as _Model
from tracedsl.families.base import Issue, ParamsError, fmt
from tracedsl.families.lognormal import Lognormal, lognormal_mu_sigma
from tracedsl.feasibility import FitChance, TokenLaw, expected_turns
from tracedsl.limits import (
    MAX_FANOUT,
    MAX_GROUPS,
    MAX_SESSION_ATTEMPTS,
    MAX_SESSION_BLOCKS,
    MAX_SESSION_TURNS,
    MAX_SUBAGENT_DEPTH,
    MAX_TOKENS,
    MAX_TURNS,
    MAX_VALUE,
)

__all__ = [
    "Arrivals",
    "ArrivalStage",
    "Delay",
    "Latency",
    "DelayMixture",
    "Distribution",
    "GenerationParams",
    "Issue",
    "Lognormal",
    "NewTokens",
    "SessionClass",
    "Request",
    "Compaction",
    "Subagent",
    "NewTokensDistribution",
    "ParamsError",
    "TurnLaw",
    "Turns",
    "Workload",
    "lognormal_mu_sigma",
]


# --------------------------------------------------------------------------------------------
# Distributions: the union of every registered family's model


def _distribution_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        return value.get("kind", families.REFERENCE_KIND)
    return getattr(value, "kind", None)


def _with_bias(model: type[_Model]) -> type[_Model]:
    """The family's model with the new-tokens ``bias``; a module attribute, so it pickles by name."""
    reference = families.get(families.REFERENCE_KIND)
    name = "NewTokens" if reference is not None and model is reference.model else f"{model.__name__}NewTokens"
    biased = create_model(
        name,
        __base__=model,
        __module__=__name__,
        __doc__="New tokens per turn: the law scaled by ``bias`` before its bounds apply "
        "(for a lognormal, its sampling median is raised by ``bias``).\n\n``bias`` compensates "
        "for the right-truncation that forced retires cause (the draw that ends a session is "
        "discarded); the bounds are not scaled.",
        bias=(float, Field(default=1.0, gt=0.0, description="multiplier on the sampling median")),
    )
    globals()[name] = biased
    return biased


def _union(models: list[type[_Model]]) -> Any:
    """A union discriminated on ``kind``; a missing kind means the reference's family."""
    tagged = tuple(Annotated[model, Tag(model.model_fields["kind"].default)] for model in models)
    # Union[...] of a tuple, since the member list is built at run time (ruff's UP007 cannot apply).
    return Annotated[Union[tagged], Discriminator(_distribution_kind)]  # noqa: UP007


FAMILIES = families.freeze()
Distribution = _union([family.model for family in FAMILIES])
for _family in FAMILIES:
    _family.bind(Distribution)  # a mix's components hold any family's law
_NEW_TOKENS_MODELS = {family.name: _with_bias(family.model) for family in FAMILIES}
NewTokensDistribution = _union(list(_NEW_TOKENS_MODELS.values()))
NewTokens = _NEW_TOKENS_MODELS[families.REFERENCE_KIND]  # the reference's: a lognormal with a bias


# --------------------------------------------------------------------------------------------
# Workload parts


def _default_new_tokens() -> NewTokens:
    return NewTokens(mean=3500.0, median=1800.0)


def _default_generation_length() -> Lognormal:
    return Lognormal(mean=500.0, median=300.0)


def _default_agentic_delay() -> Lognormal:
    return Lognormal(mean=2500.0, median=1800.0)


def _default_human_delay() -> Lognormal:
    return Lognormal(mean=40000.0, median=25000.0)


def _default_layer2() -> Lognormal:
    return Lognormal(mean=10000.0, median=5000.0)


class DelayMixture(_Model):
    """Inter-turn delay (ms): a Bernoulli pick between a fast agentic and a slow human lognormal.

    The picked value is clipped to ``max`` and scaled by max(0.2, 1 - 0.8 * context / limit).
    """

    agentic_fraction: float = Field(default=0.7, ge=0.0, le=1.0, description="P(agentic component)")
    agentic_delay: Distribution = Field(default_factory=_default_agentic_delay)
    human_delay: Distribution = Field(default_factory=_default_human_delay)
    max: float | None = Field(
        default=None, ge=0.0, le=MAX_VALUE, description="clip on the sampled delay, ms"
    )


class Delay(_Model):
    """Inter-turn delay (ms) as one law of any family (``delay pareto(...)``, or a mix of named
    components ``delay mix { tool 80%: ... }``), clipped to ``max`` and context-scaled as the
    mixture is. The engines and reports see it as a mixture whose one component always wins."""

    law: Distribution
    max: float | None = Field(
        default=None, ge=0.0, le=MAX_VALUE, description="clip on the sampled delay, ms"
    )

    @model_validator(mode="after")
    def _check(self) -> Delay:
        names = {c.name for c in getattr(self.law, "components", None) or ()}
        if names and names <= REFERENCE_COMPONENTS:
            # Written in .trace, this is the reference's mixture; keep one spelling of it.
            raise ParamsError([Issue(
                "a delay mix of agentic and human components is the reference's mixture: "
                "give agentic_fraction, agentic_delay and human_delay instead", ("law",))])
        return self

    @property
    def agentic_fraction(self) -> float:
        return 1.0

    @property
    def agentic_delay(self) -> Any:
        return self.law

    @property
    def human_delay(self) -> Any:
        return self.law


# The components of the reference's delay mixture, by the names .trace gives them.
REFERENCE_COMPONENTS = frozenset({"agentic", "human"})


def reference_or_law(reference: type, law: type, tags: tuple[str, str]) -> Any:
    """A slot holding either the reference's own model or a ``law`` of any family.

    Told apart by the data: a dict with a ``law`` key (or an instance of ``law``) is the law.
    ``tags`` are the two members' names in pydantic's error locations (not field names).
    """

    def kind(value: Any) -> str:
        is_law = "law" in value if isinstance(value, dict) else isinstance(value, law)
        return tags[1] if is_law else tags[0]

    return Annotated[
        Union[Annotated[reference, Tag(tags[0])], Annotated[law, Tag(tags[1])]],  # noqa: UP007
        Discriminator(kind),
    ]


# The delay union's tags, which error locations carry (not field names, so never mistaken for one).
DELAY_TAGS = ("delay-mixture", "delay-law")
InterTurnDelay = reference_or_law(DelayMixture, Delay, DELAY_TAGS)


class Reset(_Model):
    """Per-turn reset probability p = base * (1 + (scaling - 1) * input / max_prompt_tokens)."""

    base_probability: float = Field(default=0.02, ge=0.0, le=1.0)
    context_scaling: float = Field(default=2.0, ge=1.0)


def _ending_issues(turns: Any) -> list[Issue]:
    """What both spellings of ``turns`` check: truncation and retries exclude each other."""
    if turns.allow_truncation and turns.max_session_attempts is not None:
        return [
            Issue(
                "max_session_attempts cannot be set when allow_truncation is true",
                ("max_session_attempts", "allow_truncation"),
            )
        ]
    return []


def _default_attempts(turns: Any) -> None:
    if not turns.allow_truncation and turns.max_session_attempts is None:
        object.__setattr__(turns, "max_session_attempts", 100)


class Turns(_Model):
    """Explicit turn-count mode: each session aims at a sampled number of turns."""

    mean: int = Field(gt=0, le=MAX_TURNS)
    median: int = Field(gt=0, le=MAX_TURNS)
    min: int = Field(gt=0, le=MAX_TURNS)
    max: int = Field(gt=0, le=MAX_TURNS)
    allow_truncation: bool = Field(
        default=False, description="end a session early at the context limit instead of retrying"
    )
    max_session_attempts: int | None = Field(
        default=None, ge=1, le=MAX_SESSION_ATTEMPTS,
        description="whole-session retries before giving up (default 100)"
    )

    @model_validator(mode="after")
    def _check(self) -> Turns:
        issues: list[Issue] = []
        if self.mean < self.median:
            issues.append(
                Issue(f"mean ({self.mean}) must be >= median ({self.median})", ("mean", "median"))
            )
        if self.min > self.median:
            issues.append(
                Issue(f"min ({self.min}) must be <= median ({self.median})", ("min", "median"))
            )
        if self.mean > self.max:
            issues.append(Issue(f"mean ({self.mean}) must be <= max ({self.max})", ("mean", "max")))
        if self.min > self.max:
            issues.append(Issue(f"min ({self.min}) must be <= max ({self.max})", ("min", "max")))
        issues.extend(_ending_issues(self))
        if issues:
            raise ParamsError(issues)
        _default_attempts(self)
        return self

    def as_lognormal(self) -> Lognormal:
        """The bounded lognormal the target turn count is drawn from."""
        return Lognormal(
            mean=float(self.mean), median=float(self.median), min=float(self.min), max=float(self.max)
        )

    @property
    def target(self) -> Any:
        """The distribution the target is drawn from (before rounding)."""
        return self.as_lognormal()

    def path(self, name: str) -> str:
        """The field path of the target's parameter ``name`` (``min``, ``max``...)."""
        return f"turns.{name}"


class TurnLaw(_Model):
    """Explicit turn-count mode with the target drawn from a law of any other family
    (``turns uniform(min=2, max=8)``): exactly within the law's bounds, then round-half-even and
    clipped to [min, max], the law's bounds or 1 and MAX_TURNS where it has none. A lognormal
    is the reference's :class:`Turns`, so each workload has one spelling."""

    law: Distribution
    allow_truncation: bool = Field(
        default=False, description="end a session early at the context limit instead of retrying"
    )
    max_session_attempts: int | None = Field(
        default=None, ge=1, le=MAX_SESSION_ATTEMPTS,
        description="whole-session retries before giving up (default 100)"
    )

    @model_validator(mode="after")
    def _check(self) -> TurnLaw:
        issues: list[Issue] = []
        if families.family_of(self.law).name == families.REFERENCE_KIND:
            issues.append(Issue("a lognormal turn count is the reference's turns: give mean, median, "
                                "min and max as whole numbers instead of a law", ("law",)))
        for name in ("min", "max"):
            bound = getattr(self.law, name, None)
            if bound is not None and not (float(bound).is_integer() and 1 <= bound <= MAX_TURNS):
                issues.append(Issue(f"{name} ({fmt(bound)}) must be a whole number of turns in "
                                    f"[1, {MAX_TURNS}]", (f"law.{name}",)))
        issues.extend(_ending_issues(self))
        if issues:
            raise ParamsError(issues)
        _default_attempts(self)
        return self

    @property
    def min(self) -> int:
        bound = getattr(self.law, "min", None)
        return int(bound) if bound is not None else 1

    @property
    def max(self) -> int:
        bound = getattr(self.law, "max", None)
        return int(bound) if bound is not None else MAX_TURNS

    @property
    def mean(self) -> float:
        return families.law(self.law, "fast").mean

    @property
    def median(self) -> float:
        return families.law(self.law, "fast").median

    @property
    def target(self) -> Any:
        return self.law

    def path(self, name: str) -> str:
        return f"turns.law.{name}"


# The turns union's tags, which error locations carry (as the delay's do).
TURNS_TAGS = ("turns-lognormal", "turns-law")
TurnCount = reference_or_law(Turns, TurnLaw, TURNS_TAGS)


class Groups(_Model):
    """How sessions pick an L1.5 group: Zipf weights 1/k^alpha over ``num_groups`` groups."""

    num_groups: int = Field(default=50, ge=1, le=MAX_GROUPS)
    zipf_alpha: float = Field(default=1.2, ge=0.0)


class Cache(_Model):
    """The shared prompt layers: L1 (global), L1.5 (per group) and L2 (per session, sampled)."""

    layer1_tokens: int = Field(default=32000, ge=0, le=MAX_TOKENS, description="L1: tools + system prompt")
    layer1_5_tokens: int = Field(
        default=20000, ge=0, le=MAX_TOKENS, description="L1.5: per-group repo context"
    )
    layer2: Distribution = Field(default_factory=_default_layer2, description="L2: per-session files")
    layer1_5_groups: Groups = Field(default_factory=Groups)


# --------------------------------------------------------------------------------------------
# When sessions start, and how long a request is estimated to take (not in the reference)

ARRIVAL_KINDS = ("poisson", "gamma", "constant", "stages", "file")


class ArrivalStage(_Model):
    """A span of the arrival process: ``rate`` sessions/s at its start, ``end_rate`` at its end
    (the same for ``5min at 1/s``, linear in between for ``10min ramp to 8/s``)."""

    duration_ms: float = Field(gt=0.0, le=MAX_VALUE)
    rate: float = Field(ge=0.0, le=1e9, description="sessions per second at the stage's start")
    end_rate: float = Field(ge=0.0, le=1e9, description="sessions per second at the stage's end")


class Arrivals(_Model):
    """When each primary session's turn 0 is sent (its ``timestamp``), from time 0.

    ``poisson``: exponential gaps at ``rate``/s; ``gamma``: gamma gaps of mean 1/rate and
    coefficient of variation ``cv``; ``constant``: gaps of exactly 1/rate; ``stages``: a Poisson
    process whose rate is piecewise linear; ``file``: the times given (ms, one a line, sorted).
    """

    kind: str = Field(description="poisson, gamma, constant, stages or file")
    rate: float | None = Field(default=None, gt=0.0, le=1e9, description="sessions per second")
    cv: float | None = Field(default=None, gt=0.0, le=1e3, description="gamma: the gaps' sd / mean")
    stages: list[ArrivalStage] | None = None
    source: str | None = Field(default=None, description="file: the path as written")
    times_ms: list[float] | None = Field(default=None, description="file: the start times, ms")

    @model_validator(mode="after")
    def _check(self) -> Arrivals:
        wanted = {"poisson": ("rate",), "gamma": ("rate", "cv"), "constant": ("rate",),
                  "stages": ("stages",), "file": ("times_ms",)}
        if self.kind not in wanted:
            raise ParamsError([Issue(f"unknown arrival process '{self.kind}' (one of {', '.join(ARRIVAL_KINDS)})",
                                     ("kind",))])
        issues = []
        for name in ("rate", "cv", "stages", "times_ms"):
            given = getattr(self, name) is not None
            if given != (name in wanted[self.kind]):
                issues.append(Issue(f"{self.kind} arrivals {'take' if not given else 'do not take'} {name}",
                                    (name,)))
        if self.stages is not None and not any(s.rate or s.end_rate for s in self.stages):
            issues.append(Issue("the stages' rates are all 0: no session would arrive", ("stages",)))
        if self.times_ms is not None:
            if not self.times_ms:
                issues.append(Issue("the arrivals file holds no times", ("times_ms",)))
            elif any(b < a for a, b in zip(self.times_ms, self.times_ms[1:], strict=False)):
                issues.append(Issue("the arrival times are not sorted", ("times_ms",)))
        if issues:
            raise ParamsError(issues)
        return self


class Latency(_Model):
    """The one latency model: a request takes input/prefill + output/decode seconds. The
    reports' estimated latencies and the continuations' start times both use it."""

    prefill_tokens_per_s: float = Field(default=20_000.0, gt=0.0, le=1e12)
    decode_tokens_per_s: float = Field(default=60.0, gt=0.0, le=1e12)

    def request_ms(self, input_tokens, output_tokens):
        """Estimated latency of requests, ms (numbers or numpy arrays)."""
        return (input_tokens / self.prefill_tokens_per_s + output_tokens / self.decode_tokens_per_s) * 1000.0


# --------------------------------------------------------------------------------------------
# Agent structure (not in the reference): requests of LLM calls, compaction, subagents


def _whole_count_issues(law: Any, what: str, path: str, highest: float) -> list[Issue]:
    """A law of counts (calls, fan-out) takes whole bounds of at least 1."""
    issues = []
    for name in ("min", "max"):
        bound = getattr(law, name, None)
        if bound is not None and not (float(bound).is_integer() and 1 <= bound <= highest):
            issues.append(Issue(f"{name} ({fmt(bound)}) must be a whole number of {what} in "
                                f"[1, {fmt(highest)}]", (f"{path}.{name}",)))
    return issues


class Request(_Model):
    """A user request: a run of LLM calls (rows). The first call of each request after turn 0
    draws its new tokens from ``message`` and its delay from ``think`` (the human's wait); the
    other calls draw theirs from the turn's ``new_tokens`` (tool results) and ``delay`` (tool
    latency). ``calls`` is rounded half-even and held to [1, MAX_TURNS] (or the law's bounds)."""

    calls: Distribution = Field(description="LLM calls per request, >= 1")
    message: Distribution = Field(description="new tokens of a request's first call")
    think: Distribution = Field(description="the wait before a request's first call, ms")

    @model_validator(mode="after")
    def _check(self) -> Request:
        issues = _whole_count_issues(self.calls, "calls", "calls", MAX_TURNS)
        if issues:
            raise ParamsError(issues)
        return self


class Compaction(_Model):
    """When a call's prompt would reach ``threshold`` of the context, the session compacts
    instead of retiring: one summarization call (the prompt plus ``instruction_tokens`` in,
    the summary out), then a compaction continuation whose turn 0 is L1 + L1.5 + the summary."""

    threshold: float = Field(gt=0.0, le=1.0, description="share of max_prompt_tokens")
    summary: Distribution = Field(description="summary size, tokens")
    instruction_tokens: int = Field(
        default=200, ge=1, le=MAX_TOKENS, description="the summarization call's instruction, tokens"
    )
    max_compactions: int | None = Field(
        default=None, ge=0, le=MAX_TURNS,
        description="compactions of one logical session at most (then it retires); none: no bound",
    )


class Subagent(_Model):
    """Each call after turn 0 spawns, with ``probability``, ``fanout`` child sessions that run
    ``params`` (a whole body, with what it inherits written out). The parent's next call appends
    the sum of the children's ``returns`` after the longest child's estimated duration. A child
    shares the parent's global prefix or groups only when it inherits them (``shares_*``)."""

    probability: float = Field(ge=0.0, le=1.0, description="P(a call spawns subagents)")
    fanout: Distribution = Field(description="subagents a spawning call starts, >= 1")
    returns: Distribution = Field(description="tokens each subagent returns to its parent")
    shares_global: bool = Field(default=True, description="the parent's L1 blocks, not its own")
    shares_groups: bool = Field(default=True, description="the parent's L1.5 group, not its own")
    params: GenerationParams

    @model_validator(mode="after")
    def _check(self) -> Subagent:
        issues = _whole_count_issues(self.fanout, "subagents", "fanout", MAX_FANOUT)
        depth, body = 1, self.params
        while body.subagent is not None:
            depth, body = depth + 1, body.subagent.params
        if depth > MAX_SUBAGENT_DEPTH:
            issues.append(Issue(f"subagents nest {depth} deep; at most {MAX_SUBAGENT_DEPTH} levels",
                                ("params.subagent",)))
        for name, what in (("arrivals", "arrivals"), ("classes", "classes")):
            if getattr(self.params, name) is not None:
                issues.append(Issue(f"a subagent's body cannot have {what}", (f"params.{name}",)))
        if issues:
            raise ParamsError(issues)
        return self


class GenerationParams(_Model):
    """A whole workload, field for field the reference's config (its ``generation_params``)."""

    new_tokens_per_turn: NewTokensDistribution = Field(default_factory=_default_new_tokens)
    generation_length: Distribution = Field(default_factory=_default_generation_length)
    inter_turn_delay: InterTurnDelay = Field(default_factory=DelayMixture)
    reset: Reset | None = Field(default_factory=Reset)
    turns: TurnCount | None = None
    max_prompt_tokens: int = Field(
        default=200000, ge=1, le=MAX_TOKENS, description="context limit, tokens"
    )
    block_size: int = Field(default=512, ge=1, le=MAX_TOKENS, description="KV-cache block size, tokens")
    cache: Cache = Field(default_factory=Cache)
    restart_initial_probability: float = Field(default=0.0, ge=0.0, le=1.0)
    restart_turn_range: tuple[int, int] = Field(
        default=(5, 15), description="[first, last) turn index at which a restart may split"
    )
    # Not the reference's: left out of generation_params while unset, so those stay its bytes.
    arrivals: Arrivals | None = None
    latency: Latency = Field(default_factory=Latency)
    request: Request | None = Field(default=None, description="rows are LLM calls of user requests")
    compaction: Compaction | None = Field(default=None, description="compact instead of retiring")
    subagent: Subagent | None = Field(default=None, description="calls that spawn subagent sessions")
    classes: list[SessionClass] | None = Field(
        default=None,
        description="session classes: each session draws one by its fraction and runs its body "
        "(the top-level fields are the defaults the language's classes inherit)",
    )

    @model_validator(mode="before")
    @classmethod
    def _turns_imply_no_reset(cls, data: Any) -> Any:
        # As in the reference: giving ``turns`` without ``reset`` switches resets off.
        if isinstance(data, dict) and data.get("turns") is not None and "reset" not in data:
            data = {**data, "reset": None}
        if isinstance(data, dict) and isinstance(data.get("restart_turn_range"), list):
            data = {**data, "restart_turn_range": tuple(data["restart_turn_range"])}
        return data

    @model_validator(mode="after")
    def _check(self) -> GenerationParams:
        issues = cross_field_issues(self)
        if issues:
            raise ParamsError(issues)
        return self

    # Derived quantities shared by the engines and the reports ---------------------------

    @property
    def explicit_turns(self) -> bool:
        return self.turns is not None

    @property
    def layer1_blocks(self) -> int:
        return -(-self.cache.layer1_tokens // self.block_size)

    @property
    def layer1_5_blocks(self) -> int:
        return -(-self.cache.layer1_5_tokens // self.block_size)

    @property
    def fixed_prefix_tokens(self) -> int:
        """L1 and L1.5 as whole blocks, so L2 always starts on a fresh block."""
        return (self.layer1_blocks + self.layer1_5_blocks) * self.block_size

    @property
    def output_floor(self) -> int:
        """The reference's floor on outputs: 30 tokens, or int(max) when that is lower."""
        gen_max = self.generation_length.max
        return min(30, int(gen_max)) if gen_max is not None else 30

    def generation_params(self) -> dict[str, Any]:
        """The reference-shaped config: every field, reference key order, JSON types."""
        data = self.model_dump(mode="json")
        data["restart_turn_range"] = list(self.restart_turn_range)
        if self.arrivals is None:
            del data["arrivals"]
        if self.latency == Latency():
            del data["latency"]
        for name in ("request", "compaction", "subagent"):
            if getattr(self, name) is None:
                del data[name]
        if self.subagent is not None:
            data["subagent"]["params"] = self.subagent.params.generation_params()
        if self.classes is None:
            del data["classes"]
        else:
            for item, session_class in zip(data["classes"], self.classes, strict=True):
                item["params"] = session_class.params.generation_params()
        return data

    def bodies(self) -> list[tuple[str | None, float, GenerationParams]]:
        """(class name, fraction, body) of each population: the classes, or (None, 1, self)."""
        if self.classes is None:
            return [(None, 1.0, self)]
        return [(c.name, c.fraction, c.params) for c in self.classes]


class SessionClass(_Model):
    """One population of sessions: a share of the primaries, each running ``params``.

    ``params`` is the class's whole body, with what it inherits written out. A body that shares
    the top-level global prefix or groups (``shares_global``, ``shares_groups``) has the very
    same blocks as every other class that shares them, so it must give them the same sizes; a
    class that declares its own gets blocks of its own. ``block_size`` is one for the trace.
    """

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=64)
    fraction: float = Field(gt=0.0, le=1.0, description="share of the primary sessions")
    shares_global: bool = Field(default=True, description="the top-level L1 blocks, not its own")
    shares_groups: bool = Field(default=True, description="the top-level L1.5 groups, not its own")
    params: GenerationParams


GenerationParams.model_rebuild()
Subagent.model_rebuild()

# How far the class fractions may be from adding up to 1 (they are written as percentages).
FRACTION_TOLERANCE = 1e-9


def class_issues(params: GenerationParams) -> list[Issue]:
    """What a workload's classes must hold together: names, fractions, the one block size, and
    the shared layers' sizes (a shared block is one block)."""
    classes = params.classes
    if classes is None:
        return []
    if not classes:
        return [Issue("classes is empty: give at least one class, or leave it out", ("classes",))]
    issues: list[Issue] = []
    seen: set[str] = set()
    for i, session_class in enumerate(classes):
        at = f"classes.{i}"
        body = session_class.params
        if session_class.name in seen:
            issues.append(Issue(f"class '{session_class.name}' is defined twice", (f"{at}.name",)))
        seen.add(session_class.name)
        if body.classes is not None:
            issues.append(Issue("a class cannot hold classes", (f"{at}.params.classes",)))
        if body.arrivals is not None:
            issues.append(Issue("arrivals are one process for the whole trace, not a class's",
                                (f"{at}.params.arrivals",)))
        if body.latency != params.latency:
            issues.append(Issue("the latency model is one for the whole trace, not a class's",
                                (f"{at}.params.latency",)))
        if body.block_size != params.block_size:
            issues.append(Issue(f"block_size is one for the whole trace ({params.block_size}); "
                                f"class '{session_class.name}' gives {body.block_size}",
                                (f"{at}.params.block_size",)))
        if session_class.shares_global and body.cache.layer1_tokens != params.cache.layer1_tokens:
            issues.append(Issue(f"class '{session_class.name}' shares the top-level global prefix "
                                f"({params.cache.layer1_tokens} tokens) but gives "
                                f"{body.cache.layer1_tokens}", (f"{at}.params.cache.layer1_tokens",),
                                hint="set shares_global to false to give the class its own blocks"))
        if session_class.shares_groups and (
            body.cache.layer1_5_tokens != params.cache.layer1_5_tokens
            or body.cache.layer1_5_groups != params.cache.layer1_5_groups
        ):
            issues.append(Issue(f"class '{session_class.name}' shares the top-level groups but gives "
                                "them another size, count or skew", (f"{at}.params.cache",),
                                hint="set shares_groups to false to give the class its own blocks"))
    total = math.fsum(c.fraction for c in classes)
    if abs(total - 1.0) > FRACTION_TOLERANCE:
        issues.append(Issue(f"the class fractions add up to {fmt(round(total * 100, 9))}%, not 100%",
                            tuple(f"classes.{i}.fraction" for i in range(len(classes)))))
    return issues


def cross_field_issues(params: GenerationParams) -> list[Issue]:
    """Rules that involve several fields; each issue names every path it involves."""
    issues: list[Issue] = class_issues(params)
    lo, hi = params.restart_turn_range
    if max(lo, hi - 1) > MAX_TURNS:
        issues.append(
            Issue(
                f"restart_turn_range [{lo}, {hi}) goes past turn {MAX_TURNS}, the largest turn "
                "index a session can have",
                ("restart_turn_range",),
                hint=f"a restart turn range lies within [1, {MAX_TURNS + 1})",
            )
        )
    if lo < 1:
        issues.append(Issue(f"restart_turn_range starts at {lo}; it must start at 1 or later", ("restart_turn_range",)))
    if hi <= lo:
        issues.append(
            Issue(
                f"restart_turn_range [{lo}, {hi}) is empty: the end is exclusive and must exceed the start",
                ("restart_turn_range",),
            )
        )
    if params.turns is not None:
        if params.reset is not None:
            issues.append(
                Issue(
                    "explicit turns cannot be combined with reset",
                    ("turns", "reset"),
                    hint="remove one: turns ends sessions at a sampled count, reset ends them at random",
                )
            )
        if params.restart_initial_probability != 0.0:
            issues.append(
                Issue(
                    "explicit turns cannot be combined with restarts",
                    ("turns", "restart_initial_probability"),
                )
            )
    issues.extend(_agent_issues(params))
    token_bounds = _token_bound_issues(params)
    issues.extend(token_bounds)
    if not token_bounds:
        issues.extend(_feasibility_issues(params))
    if not issues:
        issues.extend(_size_issues(params))
    return issues


def _agent_issues(params: GenerationParams) -> list[Issue]:
    """Compaction must leave room to go on: a continuation starts below the threshold."""
    issues = _subagent_issues(params)
    compaction = params.compaction
    if compaction is None:
        return issues
    if compaction.max_compactions is None and params.turns is None and (
            params.reset is None or params.reset.base_probability == 0):
        issues.append(Issue(
            "a session that compacts without a bound never ends: nothing resets it and no turn "
            "count stops it, so it compacts and grows again forever",
            ("compaction.max_compactions", "reset"),
            hint="give the compaction a max, or end sessions with reset or turns"))
    threshold = compaction.threshold * params.max_prompt_tokens
    smallest = getattr(compaction.summary, "min", None)
    start = params.fixed_prefix_tokens + (int(smallest) if smallest is not None else 1)
    if start >= threshold:
        return [Issue(
            f"a compaction continuation starts at L1 + L1.5 + the summary, at least {start} tokens, "
            f"which is not below the compaction threshold ({fmt(round(threshold))} tokens: "
            f"{fmt(compaction.threshold * 100)}% of {params.max_prompt_tokens})",
            ("compaction.threshold", "compaction.summary", "max_prompt_tokens"),
            hint="raise the threshold or the context, or bound the summary lower")]
    return issues


def _subagent_issues(params: GenerationParams) -> list[Issue]:
    """A subagent's body keeps the trace's block size and latency model, and the layers it
    shares with its parent are the parent's blocks, so of the parent's sizes."""
    subagent = params.subagent
    if subagent is None:
        return []
    body, at = subagent.params, "subagent.params"
    issues = []
    if body.block_size != params.block_size:
        issues.append(Issue(f"block_size is one for the whole trace ({params.block_size}); the "
                            f"subagent's body gives {body.block_size}", (f"{at}.block_size",)))
    if body.latency != params.latency:
        issues.append(Issue("the latency model is one for the whole trace, not a subagent's",
                            (f"{at}.latency",)))
    if subagent.shares_global and body.cache.layer1_tokens != params.cache.layer1_tokens:
        issues.append(Issue("the subagent shares its parent's global prefix but gives it another size",
                            (f"{at}.cache.layer1_tokens",),
                            hint="set shares_global to false to give the subagent its own blocks"))
    if subagent.shares_groups and (body.cache.layer1_5_tokens != params.cache.layer1_5_tokens
                                   or body.cache.layer1_5_groups != params.cache.layer1_5_groups):
        issues.append(Issue("the subagent shares its parent's groups but gives them another size, "
                            "count or skew", (f"{at}.cache",),
                            hint="set shares_groups to false to give the subagent its own blocks"))
    return issues


# The distributions whose draws are token counts: their bounds must allow at least one token.
TOKEN_SLOTS = ("new_tokens_per_turn", "generation_length", "cache.layer2", "request.message",
               "compaction.summary", "subagent.returns")


def _token_bound_issues(params: GenerationParams) -> list[Issue]:
    issues = []
    for path, dist, _scale in distribution_slots(params):
        if path not in TOKEN_SLOTS:
            continue
        # A min below one token is harmless (draws are floored at 1); a max there leaves none.
        bound = getattr(dist, "max", None)
        if bound is not None and bound < 1:
            issues.append(
                Issue(
                    f"{path}.max is {fmt(bound)}: a token count is at least 1, so a max below "
                    "one token leaves no draw",
                    (f"{path}.max",),
                    hint="give max 1 or more, or leave it out",
                )
            )
    return issues


def _feasibility_issues(params: GenerationParams) -> list[Issue]:
    # The shared prefix is written as whole blocks, so count it that way (the reference
    # counts raw tokens and checks only in turns mode, accepting one-turn degenerate runs).
    layer2_min = params.cache.layer2.min
    smallest_l2 = int(layer2_min) if layer2_min is not None else 1
    smallest_first_turn = params.fixed_prefix_tokens + smallest_l2
    limit = params.max_prompt_tokens
    if smallest_first_turn >= limit:
        return [
            Issue(
                f"the shared prefix does not fit the context: L1 ({params.layer1_blocks} blocks) + "
                f"L1.5 ({params.layer1_5_blocks} blocks) of {params.block_size} tokens plus the "
                f"smallest L2 ({smallest_l2}) is {smallest_first_turn} tokens, not below "
                f"max_prompt_tokens ({limit})",
                ("max_prompt_tokens", "block_size", "cache.layer1_tokens", "cache.layer1_5_tokens", "cache.layer2"),
            )
        ]
    turns = params.turns
    if turns is None or turns.allow_truncation:
        return []
    new_min = params.new_tokens_per_turn.min
    per_turn = params.output_floor + (int(new_min) if new_min is not None else 1)
    shortest = smallest_first_turn + (turns.min - 1) * per_turn
    if shortest >= limit:
        return [
            Issue(
                f"turns.min ({turns.min}) cannot fit: even the smallest turns reach {shortest} "
                f"tokens, not below max_prompt_tokens ({limit})",
                (turns.path("min"), "max_prompt_tokens"),
                hint="lower turns.min, raise the context, or allow truncation",
            )
        ]
    return []


def _size_issues(params: GenerationParams) -> list[Issue]:
    """What one session needs, held to the limits that keep a run in memory and in time."""
    blocks = -(-params.max_prompt_tokens // params.block_size)
    if blocks > MAX_SESSION_BLOCKS:
        return [
            Issue(
                f"a session can reach {blocks} blocks (max_prompt_tokens {params.max_prompt_tokens} "
                f"/ block_size {params.block_size}); tracedsl holds at most {MAX_SESSION_BLOCKS} "
                "blocks a session",
                ("max_prompt_tokens", "block_size"),
                hint=f"raise block_size to at least {-(-params.max_prompt_tokens // MAX_SESSION_BLOCKS)}, "
                "or lower max_prompt_tokens",
            )
        ]
    try:
        issues = _length_issues(params)
        if not issues:
            issues = _hopeless_issues(params)
    except (ArithmeticError, NotImplementedError, ValueError):  # a law without the figures: no estimate
        return []
    return issues


def _token_laws(params: GenerationParams) -> tuple[TokenLaw, TokenLaw, TokenLaw]:
    """(L2, new tokens, output) as the fast engine draws them, with their floors."""
    new = params.new_tokens_per_turn
    return (
        TokenLaw(families.law(params.cache.layer2, "fast"), 1),
        TokenLaw(families.law(new, "fast", new.bias), 1),
        TokenLaw(families.law(params.generation_length, "fast"), params.output_floor),
    )


def _length_issues(params: GenerationParams) -> list[Issue]:
    """A session expected to last more than MAX_SESSION_TURNS turns (its rows are held together)."""
    room = params.max_prompt_tokens - params.fixed_prefix_tokens
    turns = params.turns
    reset = params.reset.base_probability if params.reset is not None else 0.0
    longest = turns.mean if turns is not None else math.inf
    new_min = params.new_tokens_per_turn.min
    smallest_growth = (int(new_min) if new_min is not None else 1) + params.output_floor
    if min(expected_turns(room, smallest_growth, reset), longest) <= MAX_SESSION_TURNS:
        return []  # cheap: even the smallest turns end a session soon enough
    _, new_tokens, output = _token_laws(params)
    # E[max(int(X), floor)] >= max(E[X] - 1, floor)
    growth = max(new_tokens.law.mean - 1, new_tokens.floor) + max(output.law.mean - 1, output.floor)
    expected = min(expected_turns(room, growth, reset), longest)
    if expected <= MAX_SESSION_TURNS:
        return []
    ends = "no reset ends it sooner" if reset == 0 else f"a reset ends it after ~{fmt(round(1 / reset))}"
    return [
        Issue(
            f"a session would last about {round(expected):,} turns (room for {room:,} tokens at "
            f"about {round(growth):,} a turn, and {ends}); tracedsl holds at most "
            f"{MAX_SESSION_TURNS} turns a session",
            ("max_prompt_tokens", "reset", "new_tokens_per_turn"),
            hint="lower max_prompt_tokens, raise the new tokens a turn, or end sessions with reset",
        )
    ]


# A turn-count spec is refused when even its smallest target fits in fewer than this share of
# the sessions, given every attempt they may make.
HOPELESS = 1e-3


def fit_chances(params: GenerationParams) -> FitChance:
    """Upper bounds on the chance that one attempt at a number of turns fits the context."""
    return FitChance(params.max_prompt_tokens - params.fixed_prefix_tokens, *_token_laws(params))


def _hopeless_issues(params: GenerationParams) -> list[Issue]:
    turns = params.turns
    if turns is None or turns.allow_truncation:
        return []
    attempts = int(turns.max_session_attempts or 100)
    chance = fit_chances(params)(turns.min)
    if attempts * chance >= HOPELESS:
        return []
    return [
        Issue(
            f"turns.min ({turns.min}) almost never fits: an attempt at {turns.min} turns stays below "
            f"max_prompt_tokens ({params.max_prompt_tokens}) with a chance under {chance:.2g}, so "
            f"{attempts} attempts a session all fail",
            (turns.path("min"), "max_prompt_tokens", "new_tokens_per_turn"),
            hint="lower the turn targets or the new tokens a turn, raise the context, or allow truncation",
        )
    ]


def params_warnings(params: GenerationParams) -> list[Issue]:
    """Things that are valid but probably not meant (each family says what it warns about).

    With classes, the bodies that run are the classes', so those are checked (paths under
    ``classes.N.params``), not the top-level defaults.
    """
    if params.classes is not None:
        return [
            Issue(issue.message, tuple(f"classes.{i}.params.{p}" for p in issue.paths), issue.hint)
            for i, session_class in enumerate(params.classes)
            for issue in params_warnings(session_class.params)
        ]
    warnings: list[Issue] = []
    if params.subagent is not None:
        warnings += [Issue(issue.message, tuple(f"subagent.params.{p}" for p in issue.paths), issue.hint)
                     for issue in params_warnings(params.subagent.params)]
    for path, dist, scale in distribution_slots(params):
        for issue in families.family_of(dist).warnings(dist, scale):
            warnings.append(
                Issue(f"{path}: {issue.message}", tuple(f"{path}.{p}" for p in issue.paths) or (path,), issue.hint)
            )
    return warnings


def distribution_slots(params: GenerationParams) -> list[tuple[str, Any, float]]:
    """Every distribution of a workload: (field path, distribution, the scale applied to it)."""
    delay = params.inter_turn_delay
    delays = (
        [("inter_turn_delay.law", delay.law, 1.0)]
        if isinstance(delay, Delay)
        else [
            ("inter_turn_delay.agentic_delay", delay.agentic_delay, 1.0),
            ("inter_turn_delay.human_delay", delay.human_delay, 1.0),
        ]
    )
    return [
        ("new_tokens_per_turn", params.new_tokens_per_turn, params.new_tokens_per_turn.bias),
        ("generation_length", params.generation_length, 1.0),
        *delays,
        ("cache.layer2", params.cache.layer2, 1.0),
        *([("turns.law", params.turns.law, 1.0)] if isinstance(params.turns, TurnLaw) else []),
        *_agent_slots(params),
    ]


# The agent-structure fields, and what AIPerf 0.13.0 lacks when a spec has them.
AGENT_FIELDS = {"request": "requests made of LLM calls", "compaction": "compaction",
                "subagent": "subagents"}


def _agent_slots(params: GenerationParams) -> list[tuple[str, Any, float]]:
    slots: list[tuple[str, Any, float]] = []
    if params.request is not None:
        request = params.request
        slots += [("request.calls", request.calls, 1.0), ("request.message", request.message, 1.0),
                  ("request.think", request.think, 1.0)]
    if params.compaction is not None:
        slots.append(("compaction.summary", params.compaction.summary, 1.0))
    if params.subagent is not None:
        slots += [("subagent.fanout", params.subagent.fanout, 1.0),
                  ("subagent.returns", params.subagent.returns, 1.0)]
    return slots


def aiperf_inexpressible(params: GenerationParams) -> list[Issue]:
    """Each construct AIPerf 0.13.0's config cannot hold, at its field path; none means the
    spec's generation_params load in AIPerf and the aiperf engine can run it."""
    found: list[Issue] = []
    delay = params.inter_turn_delay
    if isinstance(delay, Delay):
        kind = families.family_of(delay.law).name
        named = [c.name for c in getattr(delay.law, "components", None) or () if c.name]
        what = f"a delay mix of {', '.join(named)}" if named else f"a delay of one {kind} law"
        found.append(Issue(f"inter_turn_delay: AIPerf 0.13.0 has only the agentic/human delay mixture, not {what}",
                           ("inter_turn_delay.law",)))
    if isinstance(params.turns, TurnLaw):
        kind = families.family_of(params.turns.law).name
        found.append(Issue(f"turns: AIPerf 0.13.0 draws turn counts from a lognormal only, not a {kind} law",
                           ("turns.law",)))
    for path, dist, scale in distribution_slots(params):
        if path in ("inter_turn_delay.law", "turns.law") or path.split(".")[0] in AGENT_FIELDS:
            continue  # named once above, or part of a construct named once below
        family = families.family_of(dist)
        try:
            family.reference(dist, scale)
        except ValueError:
            found.append(Issue(f"{path}: AIPerf 0.13.0 has no {family.name} distribution", (path,)))
    if params.arrivals is not None:
        found.append(Issue(f"arrivals: AIPerf 0.13.0 starts every session at time 0, it has no "
                           f"{params.arrivals.kind} arrival process", ("arrivals",)))
    if params.latency != Latency():
        found.append(Issue("latency: AIPerf 0.13.0's config has no latency model", ("latency",)))
    if params.classes is not None:
        found.append(Issue("classes: AIPerf 0.13.0 has one population of sessions, not session classes",
                           ("classes",)))
    for name, what in AGENT_FIELDS.items():
        if getattr(params, name) is not None:
            found.append(Issue(f"{name}: AIPerf 0.13.0 has no {what}", (name,)))
    return found


# --------------------------------------------------------------------------------------------
# The workload: the reference config plus tracedsl's own metadata


class Workload(_Model):
    """A named workload: what spec.json holds besides the reference-shaped parameters."""

    name: str = Field(default="default", min_length=1)
    params: GenerationParams = Field(default_factory=GenerationParams)


SPEC_FORMAT_VERSION = 1
