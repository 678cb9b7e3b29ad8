"""The numbers a run derives from the IR once (samplers, limits, block layout), small enough to ship to workers."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, replace

import numpy as np

from tracedsl import families
from tracedsl.engine.compaction import CompactionModel
from tracedsl.engine.requests import RequestModel
from tracedsl.engine.samplers import run_keys
from tracedsl.families import Law
from tracedsl.feasibility import expected_turns
from tracedsl.ir import GenerationParams, Latency
from tracedsl.limits import MAX_FANOUT

# About how many hash ids (a row counting as a few) one chunk of sessions is planned to hold:
# each is 8 bytes in several columns at once, so this keeps a chunk within a few GB.
CHUNK_IDS = 2**25
_ROW_COST = 4  # a row's columns, counted in hash ids

# Sessions start being split by restarts only in the first 75% of primaries (the reference's
# rule); a continuation lands at least a quarter of the run after its parent.
RESTART_PROGRESS_END = 0.75
CONTINUATION_MIN_GAP = 0.25


@dataclass(frozen=True)
class TurnTarget:
    """Explicit turn-count mode: the target's distribution and what to do at the limit."""

    distribution: Law
    min: int
    max: int
    allow_truncation: bool
    max_attempts: int


@dataclass(frozen=True)
class PrefixRegions:
    """Where a population's shared prefix ids lie: its L1 run, the start of its groups' L1.5
    regions, and the global id of its first group (docs/architecture.md)."""

    layer1_start: int
    groups_start: int
    group_base: int


@dataclass(frozen=True)
class SessionModel:
    """Everything a chunk body needs, as plain numbers (no pydantic on the workers' hot path).

    With session classes, ``classes`` holds one model per class (its body's laws, limits and
    prefix regions; the run's keys), drawn by the cumulative fractions ``class_cdf``; the
    top-level fields then only give the run's keys, size and id layout.
    """

    num_sessions: int
    run_key: int
    id_key: int
    context_limit: int
    block_size: int
    layer1_blocks: int
    layer1_5_blocks: int
    num_groups: int
    zipf_alpha: float
    layer2: Law
    new_tokens: Law
    output: Law
    output_floor: int
    agentic_fraction: float
    agentic_delay: Law
    human_delay: Law
    delay_max: float  # inf when unclipped
    reset_base: float | None  # None: no reset draws (explicit turns, or reset switched off)
    reset_scaling: float
    restart_probability: float
    restart_first: int
    restart_stop: int  # exclusive
    turns: TurnTarget | None
    request: RequestModel | None = None  # rows are LLM calls of user requests (requests.py)
    compaction: CompactionModel | None = None  # compact instead of retiring (compaction.py)
    latency: Latency | None = None  # with arrivals: how continuations' start times are estimated
    regions: PrefixRegions | None = None  # None: today's layout (L1 at 0, the groups after it)
    first_unique_id: int | None = None  # None: right after this model's own groups
    classes: tuple[SessionModel, ...] = ()
    class_cdf: tuple[float, ...] = ()
    class_names: tuple[str, ...] = ()
    subagent: SubagentModel | None = None  # calls spawn child sessions (subagents.py)

    @classmethod
    def build(cls, params: GenerationParams, num_sessions: int, seed: int) -> SessionModel:
        run_key, id_key = run_keys(seed, workload_digest(params))
        # Start times are estimated only when sessions arrive over time (else all start at 0).
        latency = params.latency if params.arrivals is not None else None
        model = replace(cls._of(params, num_sessions, run_key, id_key), latency=latency)
        if params.subagent is not None:
            return _with_subagents(model, params, num_sessions, run_key, id_key)
        if params.classes is None:
            return model
        layout, first_unique = class_regions(params)
        classes = tuple(
            replace(cls._of(c.params, num_sessions, run_key, id_key), regions=regions,
                    first_unique_id=first_unique, latency=latency)
            for c, regions in zip(params.classes, layout, strict=True)
        )
        cdf = np.cumsum([c.fraction for c in params.classes]).tolist()
        return replace(model, first_unique_id=first_unique, classes=classes, class_cdf=tuple(cdf),
                       class_names=tuple(c.name for c in params.classes))

    @classmethod
    def _of(cls, params: GenerationParams, num_sessions: int, run_key: int, id_key: int) -> SessionModel:
        delay = params.inter_turn_delay
        turns = None
        if params.turns is not None:
            spec = params.turns
            turns = TurnTarget(
                _law(spec.target),
                spec.min,
                spec.max,
                spec.allow_truncation,
                1 if spec.allow_truncation else int(spec.max_session_attempts or 100),
            )
        return cls(
            num_sessions=num_sessions,
            run_key=run_key,
            id_key=id_key,
            context_limit=params.max_prompt_tokens,
            block_size=params.block_size,
            layer1_blocks=params.layer1_blocks,
            layer1_5_blocks=params.layer1_5_blocks,
            num_groups=params.cache.layer1_5_groups.num_groups,
            zipf_alpha=params.cache.layer1_5_groups.zipf_alpha,
            layer2=_law(params.cache.layer2),
            new_tokens=_law(params.new_tokens_per_turn, params.new_tokens_per_turn.bias),
            output=_law(params.generation_length),
            output_floor=params.output_floor,
            agentic_fraction=delay.agentic_fraction,
            agentic_delay=_law(delay.agentic_delay),
            human_delay=_law(delay.human_delay),
            delay_max=float(delay.max) if delay.max is not None else math.inf,
            reset_base=params.reset.base_probability if params.reset is not None else None,
            reset_scaling=params.reset.context_scaling if params.reset is not None else 1.0,
            restart_probability=params.restart_initial_probability,
            restart_first=params.restart_turn_range[0],
            restart_stop=params.restart_turn_range[1],
            turns=turns,
            request=RequestModel.build(params.request, _law) if params.request is not None else None,
            compaction=(CompactionModel.build(params.compaction, params.max_prompt_tokens, _law)
                        if params.compaction is not None else None),
        )

    @property
    def fixed_prefix_tokens(self) -> int:
        return (self.layer1_blocks + self.layer1_5_blocks) * self.block_size

    @property
    def group_base(self) -> int:
        return self.regions.group_base if self.regions is not None else 0

    def chunk_sessions(self, most: int) -> int:
        """Sessions a chunk may hold, at most ``most``: fewer when a session is expected to hold
        so many hash ids that ``most`` of them would not fit in CHUNK_IDS (output does not
        depend on the chunk size)."""
        try:
            expected = self.expected_ids()
        except (ArithmeticError, NotImplementedError, ValueError):  # no figures: the usual size
            return most
        return max(1, min(most, CHUNK_IDS // max(1, expected)))

    def expected_ids(self) -> int:
        """About how many hash ids a session holds, its rows counted at _ROW_COST each."""
        if self.classes:
            return int(sum(f * c.expected_ids() for f, c in zip(self.class_fractions, self.classes, strict=True)))
        growth = max(self.new_tokens.mean - 1, 1.0) + max(self.output.mean - 1, float(self.output_floor))
        room = self.context_limit - self.fixed_prefix_tokens
        turns = expected_turns(room, growth, self.reset_base or 0.0)
        if self.turns is not None:
            turns = min(turns, float(self.turns.max))
        context = min(float(self.context_limit), self.fixed_prefix_tokens + self.layer2.mean + turns * growth)
        own = context / self.block_size + (1 + _ROW_COST) * turns
        if self.subagent is not None:  # the subagents it spawns come with it in its chunk
            sub = self.subagent
            fanout = min(max(sub.fanout.mean, sub.fanout_min), sub.fanout_max)
            own += sub.probability * turns * fanout * sub.body.expected_ids()
        return int(min(own, 2.0**62))

    @property
    def prefix_blocks(self) -> int:
        return self.layer1_blocks + self.layer1_5_blocks

    @property
    def class_fractions(self) -> list[float]:
        return np.diff([0.0, *self.class_cdf]).tolist()

    @property
    def first_session_id(self) -> int:
        """Session-unique hash ids start after L1 and every group's L1.5 region (with classes,
        after every class's own regions)."""
        if self.first_unique_id is not None:
            return self.first_unique_id
        return self.layer1_blocks + self.num_groups * self.layer1_5_blocks


@dataclass(frozen=True)
class SubagentModel:
    """The subagent a body's calls spawn, as the fast engine draws it (plain numbers): the
    spawn chance, the fan-out law and bounds, each child's returns, what it inherits, its body
    (with its own prefix regions, and its own subagent when it nests) and the latency model
    its estimated duration comes from (needed always: it is the parent's delay)."""

    probability: float
    fanout: Law
    fanout_min: int
    fanout_max: int
    returns: Law
    shares_global: bool
    shares_groups: bool
    body: SessionModel
    latency: Latency


def _with_subagents(model: SessionModel, params: GenerationParams, num_sessions: int, run_key: int,
                    id_key: int) -> SessionModel:
    """The model with its chain of subagent bodies: each shares its parent's L1 or groups or
    gets its own region, allocated after the top-level groups in nesting order (group ids
    global, like classes'); session-unique ids start after the last."""
    layers: list[tuple[GenerationParams, PrefixRegions]] = []
    cursor, group_cursor = model.first_session_id, model.num_groups
    parent = PrefixRegions(0, model.layer1_blocks, 0)
    spec = params.subagent
    while spec is not None:
        body = spec.params
        layer1, groups, base = parent.layer1_start, parent.groups_start, parent.group_base
        if not spec.shares_global:
            layer1, cursor = cursor, cursor + body.layer1_blocks
        if not spec.shares_groups:
            groups, base = cursor, group_cursor
            cursor += body.cache.layer1_5_groups.num_groups * body.layer1_5_blocks
            group_cursor += body.cache.layer1_5_groups.num_groups
        parent = PrefixRegions(layer1, groups, base)
        layers.append((body, parent))
        spec = body.subagent
    built: SessionModel | None = None
    for (body, regions), spec in zip(reversed(layers), reversed(_subagent_specs(params)), strict=True):
        child = replace(SessionModel._of(body, num_sessions, run_key, id_key), regions=regions,
                        first_unique_id=cursor, subagent=built)
        built = SubagentModel(
            spec.probability, _law(spec.fanout), *_fanout_bounds(spec.fanout), _law(spec.returns),
            spec.shares_global, spec.shares_groups, child, params.latency,
        )
    return replace(model, first_unique_id=cursor, subagent=built)


def _subagent_specs(params: GenerationParams) -> list:
    found, spec = [], params.subagent
    while spec is not None:
        found.append(spec)
        spec = spec.params.subagent
    return found


def _fanout_bounds(fanout) -> tuple[int, int]:
    low, high = getattr(fanout, "min", None), getattr(fanout, "max", None)
    return (int(low) if low is not None else 1, int(high) if high is not None else MAX_FANOUT)


def body_models(model: SessionModel) -> list[SessionModel]:
    """The run's bodies by body index: the top level (0), then each nested subagent's body."""
    found = [model]
    while found[-1].subagent is not None:
        found.append(found[-1].subagent.body)
    return found


def class_regions(params: GenerationParams) -> tuple[list[PrefixRegions], int]:
    """Each class's prefix regions, and the first session-unique id.

    In id order: the top-level L1 (when a class shares it), the top-level groups' L1.5
    regions (when a class shares them), then each class's own L1 and own groups in class
    order. Group ids follow the same order, so no two L1.5 regions share a group id.
    """
    classes = params.classes or []
    cursor = group_cursor = 0
    top_layer1 = top_groups = 0
    if any(c.shares_global for c in classes):
        top_layer1, cursor = 0, params.layer1_blocks
    if any(c.shares_groups for c in classes):
        top_groups = cursor
        cursor += params.cache.layer1_5_groups.num_groups * params.layer1_5_blocks
        group_cursor = params.cache.layer1_5_groups.num_groups
    found = []
    for session_class in classes:
        body = session_class.params
        layer1 = top_layer1
        if not session_class.shares_global:
            layer1, cursor = cursor, cursor + body.layer1_blocks
        groups, base = top_groups, 0
        if not session_class.shares_groups:
            groups, base = cursor, group_cursor
            cursor += body.cache.layer1_5_groups.num_groups * body.layer1_5_blocks
            group_cursor += body.cache.layer1_5_groups.num_groups
        found.append(PrefixRegions(layer1, groups, base))
    return found, cursor


def workload_digest(params: GenerationParams) -> int:
    """64 bits of the SHA-256 of the workload's canonical JSON, which session ids mix in.

    Fields at their default are left out, so a field added later (defaulting to absent)
    changes the ids of no spec that does not set it.
    """
    canonical = json.dumps(
        params.model_dump(mode="json", exclude_defaults=True), sort_keys=True, separators=(",", ":")
    )
    return int.from_bytes(hashlib.sha256(canonical.encode()).digest()[:8], "little")


def _law(dist, scale: float = 1.0) -> Law:
    """The fast engine draws each distribution from its family's exact bounded law."""
    return families.law(dist, "fast", scale)
