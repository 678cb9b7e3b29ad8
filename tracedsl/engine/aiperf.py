"""``--engine aiperf``: AIPerf 0.13.0's ``synthesize agentic-code`` datasets, byte for byte.

The same IR, seed and session count give the reference's ``dataset.jsonl`` exactly,
including its flaws: hash-id size conflicts from restart continuations and from the
writer's cursor (§9 B2, B3), which :func:`count_hash_conflicts` counts. Where the reference
would crash on one of its hard caps (§9 B10) or give up on an explicit-turn session, this
engine raises :class:`EngineError` naming the limit and the spec field, before any chunk is
yielded: every session is drawn first, because continuations are scattered into the queue
only at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from tracedsl.engine import EngineError, RunRequest
from tracedsl.engine.aiperf_layout import count_hash_conflicts, layout_chunks
from tracedsl.engine.aiperf_sampler import MAX_GROUP_BLOCKS, MAX_GROUPS, AiperfSampler
from tracedsl.ir import GenerationParams, aiperf_inexpressible
from tracedsl.trace import TraceChunk

__all__ = ["AiperfEngine", "count_hash_conflicts", "check_reference_limits"]


def check_reference_limits(params: GenerationParams) -> None:
    """Raise EngineError for configs the reference refuses before drawing anything."""
    for issue in aiperf_inexpressible(params):  # a family or a delay AIPerf does not have
        raise EngineError(issue.message, path=issue.paths[0],
                          hint="the fast engine draws it; AIPerf 0.13.0 cannot")
    groups = params.cache.layer1_5_groups.num_groups
    if groups > MAX_GROUPS:
        raise EngineError(
            f"AIPerf 0.13.0 allows at most MAX_GROUPS={MAX_GROUPS} L1.5 groups; "
            f"cache.layer1_5_groups.num_groups is {groups}",
            path="cache.layer1_5_groups.num_groups",
        )
    if params.layer1_5_blocks > MAX_GROUP_BLOCKS:
        raise EngineError(
            f"AIPerf 0.13.0 allows at most MAX_GROUP_BLOCKS={MAX_GROUP_BLOCKS} blocks of L1.5 "
            f"per group; cache.layer1_5_tokens={params.cache.layer1_5_tokens} needs "
            f"{params.layer1_5_blocks} blocks of block_size {params.block_size}",
            path="cache.layer1_5_tokens",
            hint=f"lower layer1_5_tokens to at most {MAX_GROUP_BLOCKS * params.block_size} "
            "or raise block_size",
        )


class AiperfEngine:
    """Draws in the reference's order from one numpy stream; lays ids out as its writer does."""

    name = "aiperf"

    def __init__(self, spill_dir: str | Path | None = None):
        """``spill_dir``: where a large run's sampled rows wait (see ``AiperfSampler``)."""
        self.spill_dir = spill_dir

    def generate(self, request: RunRequest) -> Iterator[TraceChunk]:
        params = request.params
        check_reference_limits(params)
        try:
            sampled = AiperfSampler(params, request.seed, self.spill_dir).sample(request.num_sessions)
        except OverflowError as error:
            # A lognormal draw beyond the largest double: numpy gives inf and the reference
            # then fails turning it into a token count, as we do.
            raise EngineError(
                "AIPerf 0.13.0 would crash here: a lognormal draw overflowed to infinity and "
                f"cannot become a token count ({error}); the distribution's mean or median is "
                "too close to the largest double",
                path=None,
                hint="give the token distributions a max, or smaller mean and median",
            ) from None
        return layout_chunks(sampled, params)
