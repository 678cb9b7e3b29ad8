"""How much a session of a spec needs: its expected turns, and the chance a turn-count attempt fits its context.

Both are estimates from the laws the fast engine draws (tracedsl.families), cheap enough to
run whenever a spec is validated. The chance is a Chernoff upper bound, never below the
true chance: a spec it calls hopeless is hopeless.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tracedsl.families import Law

_GRID = 400  # points of each law's CDF the bound integrates over
_SEARCH = 80  # ternary-search steps over log t


@dataclass(frozen=True)
class TokenLaw:
    """A token count as the engine makes it: max(int(draw), floor) of a draw from ``law``."""

    law: Law
    floor: int


def fit_chance(turns: int, room: int, layer2: TokenLaw, new_tokens: TokenLaw, output: TokenLaw) -> float:
    """An upper bound on P(an attempt with a target of ``turns`` turns stays below the context)."""
    return FitChance(room, layer2, new_tokens, output)(turns)


class FitChance:
    """Upper bounds on the chance that an attempt at a number of turns fits ``room`` tokens.

    The last turn's input is the prefix plus L2 plus ``turns - 1`` new-token and output draws;
    it fits when that sum, less the prefix, is below ``room``. Chernoff: for any t > 0,
    P(S <= a) <= e^(t a) * prod E[e^(-t X_i)], each factor bounded from above through the CDF.
    """

    def __init__(self, room: int, layer2: TokenLaw, new_tokens: TokenLaw, output: TokenLaw):
        self.limit = room - 1  # the sum must be at most this
        self.parts = (layer2, new_tokens, output)
        self.tables = [_cdf_table(part, self.limit) for part in self.parts]

    def __call__(self, turns: int) -> float:
        if turns <= 1:
            return 1.0
        limit = self.limit
        counts = (1, turns - 1, turns - 1)
        if sum(part.floor * count for part, count in zip(self.parts, counts, strict=True)) > limit:
            return 0.0

        def log_bound(log_t: float) -> float:
            t = math.exp(log_t)
            total = t * limit
            for (edges, above), count in zip(self.tables, counts, strict=True):
                # E[e^(-tX)] = ∫ t e^(-tx) F(x) dx <= sum over cells of F(right edge) * the
                # cell's mass, plus e^(-t x_last) for F <= 1 beyond the grid.
                decay = np.exp(-t * edges)
                moment = float(np.sum(above * (decay[:-1] - decay[1:])) + decay[-1])
                total += count * math.log(max(moment, 1e-300))
            return total

        low, high = math.log(1e-6 / max(limit, 1)), math.log(50.0)
        for _ in range(_SEARCH):
            a, b = low + (high - low) / 3, high - (high - low) / 3
            if log_bound(a) < log_bound(b):
                high = b
            else:
                low = a
        return min(1.0, math.exp(min(0.0, log_bound((low + high) / 2))))

    def first_hopeless(self, low: int, high: int, attempts: int, share: float) -> int | None:
        """The smallest target in [low, high] whose ``attempts`` attempts fit with a chance under
        ``share`` (the bound falls as the target grows), or None."""
        if attempts * self(high) >= share:
            return None
        while low < high:
            middle = (low + high) // 2
            if attempts * self(middle) < share:
                high = middle
            else:
                low = middle + 1
        return low


def _cdf_table(part: TokenLaw, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell edges from the floor to ``limit`` and, per cell, an upper bound of P(X <= right edge).

    X = max(int(draw), floor) > draw - 1, so P(X <= x) <= P(draw < x + 1).
    """
    start = max(part.floor, 1)
    edges = np.unique(np.geomspace(start, max(limit, start + 1), _GRID))
    above = np.array([min(1.0, part.law.cdf(float(x) + 1.0)) for x in edges[1:]])
    return edges, above


def expected_turns(room: int, growth: float, reset: float) -> float:
    """About how many turns a session lasts: until ``room`` fills at ``growth`` tokens a turn, or a
    reset ends it (at least ``reset`` a turn)."""
    filling = room / growth if growth > 0 else math.inf
    return min(filling, 1.0 / reset) if reset > 0 else filling


_SHARE_NODES = 256  # quantile nodes of each law the turn-0 share sums over


def turn_zero_share(room: int, layer2: TokenLaw, new_tokens: TokenLaw, output: TokenLaw) -> float:
    """About the share of sessions whose turn 1 cannot fit ``room`` tokens (the context less the
    fixed prefix): P(L2 + turn 0's output + turn 1's new tokens >= room).

    A deterministic estimate: each law at its midpoint quantiles, every combination counted
    (the output and new-token sums sorted once, L2's nodes looked up in them).
    """
    u = (np.arange(_SHARE_NODES, dtype=np.float64) + 0.5) / _SHARE_NODES

    def tokens(part: TokenLaw) -> np.ndarray:
        drawn = np.nan_to_num(part.law.quantiles(u), nan=0.0, posinf=float(room), neginf=0.0)
        return np.maximum(np.floor(np.minimum(drawn, float(room))), part.floor)

    grown = np.sort((tokens(output)[:, None] + tokens(new_tokens)[None, :]).ravel())
    needed = room - tokens(layer2)  # turn 1 does not fit when output + new tokens reach this
    fitting = np.searchsorted(grown, needed, side="left")  # sums below what is needed
    return float(1.0 - fitting.sum() / (grown.size * needed.size))
