"""Fast engine vs the reference's real outputs: same distributions, checked with two-sample statistics.

The fast engine draws in a different order from the reference, so only distributions can
agree. Each fixture (a reference run of 200-318 sessions) is compared with 4000 of our
sessions on the same config. Thresholds:

- KS two-sample tests must not reject at alpha = 1e-3. About twenty comparisons are made,
  so a correct engine fails one by chance with probability under 2% for an arbitrary seed
  (the seeds here are fixed, so the outcome is deterministic). Rows of one session are
  not independent (delays depend on the session's context), which makes row-level
  p-values smaller than nominal; the low alpha leaves room for that. Discrete samples make
  KS conservative. Observed p-values with seeds 1-3 were all above 0.1.
- End-reason fractions: a two-proportion z-test at |z| <= 3.5 (two-sided alpha ~ 5e-4).
- A negative control shows the same tests do reject a modestly wrong engine.
"""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import orjson
import pytest
from conftest import FIXTURE_RUNS, fixture_dir
from scipy.stats import ks_2samp

from tracedsl.engine import RunRequest
from tracedsl.engine.fast import FastEngine
from tracedsl.ir import GenerationParams
from tracedsl.trace import EndReason

KS_ALPHA = 1e-3
Z_LIMIT = 3.5
OUR_SESSIONS = 4000
END_REASON_KEYS = {
    EndReason.FORCED_RETIRE: "forced_retires",
    EndReason.PROBABILISTIC_RESET: "probabilistic_resets",
    EndReason.RESTART_SPLIT: "restart_splits",
    EndReason.TARGET_TURN_COUNT: "target_turn_completions",
}


def fixture_params(name: str, **changes) -> GenerationParams:
    config = json.loads((fixture_dir(name) / "config.json").read_text())
    config = config.get("generation_params", config)
    return GenerationParams.model_validate({**config, **changes}, strict=False)


def reference_samples(name: str) -> dict[str, np.ndarray]:
    """The samples as the reference wrote them; later rows carry new tokens and rounded delays."""
    rows = [orjson.loads(line) for line in (fixture_dir(name) / "dataset.jsonl").read_bytes().splitlines()]
    later = [r for r in rows if "delay" in r]
    return {
        "new_tokens": np.array([r["input_length"] for r in later]),
        "delay_ms": np.array([r["delay"] for r in later]),
        "output": np.array([r["output_length"] for r in rows]),
        "initial_context": np.array(
            [r["input_length"] for r in rows if "timestamp" in r and not r.get("is_restart")]
        ),
        "turns": np.array(list(Counter(r["session_id"] for r in rows).values())),
    }


def our_samples(params: GenerationParams, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    chunks = list(FastEngine().generate(RunRequest(params, OUR_SESSIONS, seed)))
    delays = np.concatenate([c.delay_ms for c in chunks])
    later = ~np.isnan(delays)
    samples = {
        "new_tokens": np.concatenate([c.input_length for c in chunks])[later],
        "delay_ms": np.round(delays[later], 1),  # as written
        "output": np.concatenate([c.output_length for c in chunks]),
        "initial_context": np.concatenate(
            [c.input_length[c.row_offsets[:-1]][~c.is_restart] for c in chunks]
        ),
        "turns": np.concatenate([c.turns_per_session for c in chunks]),
    }
    return samples, np.concatenate([c.end_reasons for c in chunks])


def distribution_mismatches(name: str, params: GenerationParams, seed: int) -> list[str]:
    reference = reference_samples(name)
    ours, _ = our_samples(params, seed)
    found = []
    for metric, sample in reference.items():
        p_value = ks_2samp(sample, ours[metric]).pvalue
        if p_value < KS_ALPHA:
            found.append(f"{metric}: KS p = {p_value:.2g}")
    return found


@pytest.mark.parametrize("name", FIXTURE_RUNS)
def test_distributions_match_the_reference(name):
    assert distribution_mismatches(name, fixture_params(name), seed=17) == []


@pytest.mark.parametrize("name", FIXTURE_RUNS)
def test_end_reason_fractions_match_the_reference(name):
    stats = json.loads((fixture_dir(name) / "quality.json").read_text())["session_end_stats"]
    _, end_reasons = our_samples(fixture_params(name), seed=23)
    ref_total, our_total = stats["total_sessions"], end_reasons.shape[0]
    for reason, key in END_REASON_KEYS.items():
        ref_p = stats[key] / ref_total
        our_p = float((end_reasons == reason).mean())
        pooled = (stats[key] + (end_reasons == reason).sum()) / (ref_total + our_total)
        spread = np.sqrt(pooled * (1 - pooled) * (1 / ref_total + 1 / our_total))
        if spread == 0:
            assert ref_p == our_p, key
        else:
            assert abs(ref_p - our_p) / spread <= Z_LIMIT, f"{key}: reference {ref_p:.3f}, ours {our_p:.3f}"


def test_restart_splits_and_placement_match_the_reference():
    # Parents in the reference: B's turn 0 starts with A's first L2 id (its in-memory ids).
    name = "manifest1k_s3_n300"
    params = fixture_params(name)
    rows = [orjson.loads(line) for line in (fixture_dir(name) / "dataset.jsonl").read_bytes().splitlines()]
    order = list(dict.fromkeys(r["session_id"] for r in rows))
    turns = Counter(r["session_id"] for r in rows)
    first = {r["session_id"]: r for r in rows if "timestamp" in r}
    prefix = params.layer1_blocks + params.layer1_5_blocks
    owner = {first[s]["hash_ids"][prefix]: s for s in order if not first[s].get("is_restart")}
    ref_split_turns, ref_gaps = [], []
    primaries = len(order) - sum(1 for s in order if first[s].get("is_restart"))
    for child in order:
        if first[child].get("is_restart"):
            parent = owner[first[child]["hash_ids"][prefix]]
            ref_split_turns.append(turns[parent])
            ref_gaps.append((order.index(child) - order.index(parent)) / primaries)
    assert len(ref_split_turns) == 18

    chunks = list(FastEngine().generate(RunRequest(params, 300, 29)))
    ours_turns, ours_gaps = [], []
    for chunk in chunks:
        index = chunk.extras["primary_index"]
        where = {int(p): s for s, p in enumerate(index) if not chunk.is_restart[s]}
        for child in np.nonzero(chunk.is_restart)[0]:
            parent = where[int(index[child])]
            ours_turns.append(int(chunk.turns_per_session[parent]))
            ours_gaps.append((child - parent) / 300)
    assert len(ours_turns) > 5
    assert ks_2samp(ref_split_turns, ours_turns).pvalue >= KS_ALPHA
    assert ks_2samp(ref_gaps, ours_gaps).pvalue >= KS_ALPHA
    assert min(ours_gaps) >= 0.25 - 1 / 300  # at least a quarter of the run apart, as in the reference


def test_the_comparison_rejects_a_wrong_engine():
    # Negative control: the same tests catch modest errors in the delay and new-token models.
    name = "manifest1k_s3_n300"
    config = json.loads((fixture_dir(name) / "config.json").read_text())["generation_params"]
    slower = json.loads(json.dumps(config))
    slower["inter_turn_delay"]["agentic_fraction"] = 0.55
    found = distribution_mismatches(name, GenerationParams.model_validate(slower, strict=False), 17)
    assert any(f.startswith("delay_ms") for f in found)
    bigger = json.loads(json.dumps(config))
    bigger["new_tokens_per_turn"] = {"mean": 7200.0, "median": 4800.0, "max": 50000.0}
    found = distribution_mismatches(name, GenerationParams.model_validate(bigger, strict=False), 17)
    assert any(f.startswith("new_tokens") for f in found)
