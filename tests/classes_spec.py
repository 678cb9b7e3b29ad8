"""A workload with three session classes, built as the IR directly (what `class NAME P% {…}` lowers to).

- ``coding`` 50%: shares the top-level global prefix and groups; resets and restarts.
- ``chat`` 30%: shares them too; explicit turns, uniform 2..8, truncated at the limit.
- ``private`` 20%: its own global prefix and its own groups (other sizes); restarts often.

Each body is small (a 32k context), so 20k sessions draw in about a second.
"""

from __future__ import annotations

from tracedsl.ir import GenerationParams

BLOCK = 512
TOP = {
    "max_prompt_tokens": 32_000,
    "block_size": BLOCK,
    "cache": {
        "layer1_tokens": 2048,
        "layer1_5_tokens": 1024,
        "layer1_5_groups": {"num_groups": 4, "zipf_alpha": 1.0},
        "layer2": {"mean": 3000, "median": 2000, "max": 12_000},
    },
    "new_tokens_per_turn": {"mean": 600, "median": 400, "min": 1, "max": 8000},
}
CODING = {**TOP, "reset": {"base_probability": 0.03, "context_scaling": 2.0},
          "restart_initial_probability": 0.3, "restart_turn_range": [2, 6]}
CHAT = {**TOP, "turns": {"law": {"kind": "uniform", "min": 2.0, "max": 8.0}, "allow_truncation": True},
        "generation_length": {"mean": 300, "median": 200, "max": 4000}}
PRIVATE = {
    **TOP,
    "cache": {
        "layer1_tokens": 4096,
        "layer1_5_tokens": 1536,
        "layer1_5_groups": {"num_groups": 3, "zipf_alpha": 0.5},
        "layer2": {"kind": "gamma", "shape": 2.0, "mean": 2500, "max": 12_000},
    },
    "reset": {"base_probability": 0.05, "context_scaling": 1.0},
    "restart_initial_probability": 0.6,
    "restart_turn_range": [2, 5],
}
FRACTIONS = {"coding": 0.5, "chat": 0.3, "private": 0.2}


def class_params(arrivals: dict | None = None) -> GenerationParams:
    """The three-class workload; ``arrivals`` (an IR arrivals object) for the whole trace."""
    bodies = {"coding": CODING, "chat": CHAT, "private": PRIVATE}
    classes = []
    for name, fraction in FRACTIONS.items():
        own = name == "private"
        body = GenerationParams.model_validate(bodies[name]).generation_params()
        classes.append({"name": name, "fraction": fraction, "shares_global": not own,
                        "shares_groups": not own, "params": body})
    top = {**TOP, "classes": classes}
    if arrivals is not None:
        top["arrivals"] = arrivals
    return GenerationParams.model_validate(top)
