"""The tolerances ``tracedsl compare`` judges figures at, with their documented defaults
(docs/compare.md says why each is what it is). Light: the CLI reads it at start-up."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Tolerances:
    """The largest distance each kind of figure may have and still pass."""

    ks: float = 0.08  # KS statistic of a distribution
    wasserstein: float = 0.25  # W1 / mean of the two means
    mean: float = 0.20  # relative gap of the means
    percentile: float = 0.15  # relative gap of p50 and p90
    tail: float = 0.25  # relative gap of p99
    hit_rate: float = 0.03  # absolute gap of a hit rate (unbounded, by call kind)
    lru: float = 0.05  # absolute gap of the LRU hit rate at one capacity (the curve's steep part is noisier)

    def problems(self) -> list[tuple[str, str]]:
        """(flag, what is wrong) for each value that is not a finite number of 0 or more."""
        out = []
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                out.append((flag(item.name), f"the {item.name} tolerance must be a finite number of 0 or more, "
                                             f"not {value!r}"))
        return out


def flag(name: str) -> str:
    """The CLI flag of a tolerance: ``hit_rate`` -> ``--hit-rate``."""
    return "--" + name.replace("_", "-")


# What each tolerance bounds, for the CLI's flags (--ks, --wasserstein, ...)
TOLERANCE_HELP = {
    "ks": "largest KS statistic of a distribution",
    "wasserstein": "largest Wasserstein distance of a distribution over the mean of the two means",
    "mean": "largest relative gap of two means, |a-b|/max(|a|,|b|)",
    "percentile": "largest relative gap of two p50s or two p90s",
    "tail": "largest relative gap of two p99s",
    "hit_rate": "largest absolute gap of two prefix hit rates (unbounded, by call kind)",
    "lru": "largest absolute gap of two LRU hit rates at the same capacity in tokens",
}
