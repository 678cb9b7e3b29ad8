"""The `mixed` benchmark workload: session classes, arrivals and non-lognormal families at once.

Built on the bundled `default` (its context, block and global prefix), with:

- arrivals gamma(rate=2/s, cv=3) for the whole trace;
- class ``coding`` 70%: shares the global prefix; L2 gamma(shape=1.2, mean=12k, max=30k),
  new tokens weibull(shape=0.9, scale=3.5k, max=10k) bias 1.1, output normal(mean=900, sd=300,
  min=30, max=1.5k), a three-component delay mix (exponential tool calls, lognormal
  thinking, pareto humans), reset 1% scaling 1.5, restarts from 5%;
- class ``chat`` 30%: its own 4k global prefix and 8 groups of 2k; explicit turns
  uniform(2, 8) truncated, new tokens weibull(shape=1.5, scale=800), output lognormal
  (mean=300, median=200), delay pareto(alpha=1.4, min=2s, max=5min), no resets.

Written as a spec.json (``write_spec``), which `tracedsl run` takes like a .trace file.
``new_tokens="gamma"`` gives coding's new tokens gamma(shape=0.8, mean=4k, max=10k) instead:
a gamma law in a per-turn slot, whose inverse CDF (scipy) costs several times a closed form's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

NAME = "mixed"
ARRIVALS = {"kind": "gamma", "rate": 2.0, "cv": 3.0}
DELAY_MIX = {"law": {"kind": "mix", "components": [
    {"name": "tool", "weight": 0.7, "law": {"kind": "exponential", "mean": 800.0, "max": 30_000.0}},
    {"name": "think", "weight": 0.2, "law": {"mean": 6000.0, "median": 4000.0, "max": 60_000.0}},
    {"name": "human", "weight": 0.1, "law": {"kind": "pareto", "alpha": 1.4, "min": 20_000.0, "max": 1_200_000.0}},
]}, "max": 900_000.0}


NEW_TOKENS = {
    "weibull": {"kind": "weibull", "shape": 0.9, "scale": 3500.0, "max": 10_000.0, "bias": 1.1},
    "gamma": {"kind": "gamma", "shape": 0.8, "mean": 4000.0, "max": 10_000.0, "bias": 1.1},
}


def mixed_params(new_tokens: str = "weibull"):
    """The workload as the IR (what `class NAME P% {…}` and `arrivals …` lower to)."""
    from tracedsl.ir import GenerationParams
    from tracedsl.loading import load_spec

    top = load_spec("default").params.generation_params()
    coding = {
        **top,
        "cache": {**top["cache"], "layer2": {"kind": "gamma", "shape": 1.2, "mean": 12_000.0, "max": 30_000.0}},
        "new_tokens_per_turn": NEW_TOKENS[new_tokens],
        "generation_length": {"kind": "normal", "mean": 900.0, "sd": 300.0, "min": 30.0, "max": 1500.0},
        "inter_turn_delay": DELAY_MIX,
        "restart_initial_probability": 0.05,
    }
    chat = {
        **top,
        "cache": {"layer1_tokens": 4096, "layer1_5_tokens": 2048,
                  "layer1_5_groups": {"num_groups": 8, "zipf_alpha": 1.0},
                  "layer2": {"kind": "uniform", "min": 200.0, "max": 4000.0}},
        "reset": None,
        "turns": {"law": {"kind": "uniform", "min": 2.0, "max": 8.0}, "allow_truncation": True},
        "new_tokens_per_turn": {"kind": "weibull", "shape": 1.5, "scale": 800.0},
        "generation_length": {"mean": 300.0, "median": 200.0},
        "inter_turn_delay": {"law": {"kind": "pareto", "alpha": 1.4, "min": 2000.0, "max": 300_000.0}},
    }
    classes = [
        {"name": "coding", "fraction": 0.7,
         "params": GenerationParams.model_validate(coding).generation_params()},
        {"name": "chat", "fraction": 0.3, "shares_global": False, "shares_groups": False,
         "params": GenerationParams.model_validate(chat).generation_params()},
    ]
    return GenerationParams.model_validate({**top, "arrivals": ARRIVALS, "classes": classes})


def write_spec(path: Path, new_tokens: str = "weibull") -> Path:
    """The workload as a spec.json at ``path``."""
    params = mixed_params(new_tokens).generation_params()
    path.write_text(json.dumps({"name": NAME, "generation_params": params}))
    return path


if __name__ == "__main__":
    print(write_spec(Path(sys.argv[1] if len(sys.argv) > 1 else f"{NAME}.spec.json")))
