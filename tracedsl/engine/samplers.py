"""Counter-based random draws and the distributions the fast engine samples, vectorized with numpy.

Every random number the fast engine uses is a pure function of (run key, session, stream,
turn): a SplitMix64 counter stream keyed by the session and by the stable name of the
quantity drawn ("turn.new_tokens", "session.group", ...). So a session's draws do not
depend on which other sessions share its chunk, on the chunk size, on the window of
candidate turns drawn at once, or on the process that ran it; output is identical for any
chunking or worker count by construction. The run key comes from one
``numpy.random.SeedSequence(seed)``.

Each distribution is drawn from one uniform by its family's exact bounded law
(tracedsl.families): the inverse CDF on the truncated interval. The reference rejects and
redraws up to 100 times and then clips, which is the same distribution except for the mass
it piles on a bound after 100 failures: P(out of range)^101, which is nil for every bundled
config (layer2's [0, 30k] holds 89% of its lognormal) and matters only for intervals holding
a few percent of the mass or less; there we follow the truncated law the config describes,
with no atom at the bound.
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np

from tracedsl.families.lognormal import TruncatedLognormal
from tracedsl.families.special import normal_quantile

__all__ = ["STREAMS", "BoundedLognormal", "normal_quantile", "stream"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # SplitMix64's increment (odd, 2^64 / phi)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_MASK48 = np.uint64((1 << 48) - 1)
_UNIT = 2.0**-53

# Every stream's name and key, as :func:`stream` made them.
STREAMS: dict[str, int] = {}


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finalizer: a bijection of uint64 that scrambles every bit into every other."""
    x = x ^ (x >> np.uint64(30))
    x = x * _MIX1
    x = x ^ (x >> np.uint64(27))
    x = x * _MIX2
    return x ^ (x >> np.uint64(31))


def stream(name: str) -> np.uint64:
    """The key of the random stream named ``name`` (e.g. ``"turn.new_tokens"``): 64 bits of its
    SHA-256, computed once, where the quantity is defined. A quantity drawn from its own named
    stream never moves another's draws, so adding one leaves every other value unchanged.
    Each name belongs to one quantity (tests/test_samplers.py checks the engine's are distinct)."""
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")
    STREAMS[name] = key
    return np.uint64(key)


def run_keys(seed: int, workload: int = 0) -> tuple[int, int]:
    """Two 64-bit keys from one SeedSequence: one for session streams, one for session ids.

    The id key also mixes in ``workload`` (a digest of the spec), so two workloads run at the
    same seed share no session ids and their traces can be merged; the stream key does not, so
    changing one parameter leaves the draws of every other quantity where they were.
    """
    state = np.random.SeedSequence(seed).generate_state(2, dtype=np.uint64)
    id_key = state[1]
    if workload:
        id_key = mix64(np.array([state[1] ^ np.uint64(workload)], dtype=np.uint64))[0]
    return int(state[0]), int(id_key)


def session_keys(run_key: int, index: np.ndarray, attempt: int = 0) -> np.ndarray:
    """The key of each session's streams; ``index`` is the session's global index (uint64-able)."""
    with np.errstate(over="ignore"):
        counter = (index.astype(np.uint64) + np.uint64(1)) * _GOLDEN
        key = mix64(np.uint64(run_key) + counter)
    return attempt_keys(key, attempt)


def attempt_keys(keys: np.ndarray, attempt: int) -> np.ndarray:
    """The keys of another draw of the same sessions (attempt 0: ``keys`` themselves)."""
    if not attempt:
        return keys
    with np.errstate(over="ignore"):
        return mix64(keys + np.uint64(attempt) * _GOLDEN)


def uniforms(keys: np.ndarray, turns: np.ndarray | int, stream_key: np.uint64) -> np.ndarray:
    """Uniforms in (0, 1) from a stream (its key from :func:`stream`) at ``turns``, broadcast against ``keys``.

    Draw ``t`` of a session's stream is mix64(session key + stream key + t * golden): the
    stream key is a constant, so the hot path costs what one counter did.
    """
    turns = np.asarray(turns, dtype=np.uint64)
    with np.errstate(over="ignore"):
        offset = stream_key + turns * _GOLDEN
        bits = mix64(keys + offset)
    return ((bits >> np.uint64(11)).astype(np.float64) + 0.5) * _UNIT


# Distributions live in tracedsl.families; these names stay for the modules that import them here.
BoundedLognormal = TruncatedLognormal


# Token counts above this are cut here before conversion to int64, so sums of a window of
# them cannot overflow; anything this large ends a session at any context limit anyway.
_TOKEN_CEILING = float(2**53)


def token_counts(values: np.ndarray, floor: int) -> np.ndarray:
    """int() truncation toward zero as the reference does, then a floor (values are > 0)."""
    return np.maximum(np.minimum(values, _TOKEN_CEILING).astype(np.int64), floor)


@functools.lru_cache(maxsize=8)
def zipf_cdf(num_groups: int, alpha: float) -> np.ndarray:
    """Normalized cumulative weights 1/k^alpha, k = 1..G; group k-1 gets weight k (0 likeliest)."""
    weights = 1.0 / np.arange(1, num_groups + 1, dtype=np.float64) ** alpha
    cdf = np.cumsum(weights)
    return cdf / cdf[-1]


def zipf_groups(u: np.ndarray, num_groups: int, alpha: float) -> np.ndarray:
    cdf = zipf_cdf(num_groups, alpha)
    return np.minimum(np.searchsorted(cdf, u, side="right"), num_groups - 1).astype(np.int64)


# --------------------------------------------------------------------------------------------
# Session ids: unique by construction


def session_numbers(indices: np.ndarray, id_key: int) -> np.ndarray:
    """A keyed bijection of the 48-bit integers, applied to global session indices.

    Distinct indices give distinct numbers (each step is invertible modulo 2^48: adding a
    key, multiplying by an odd constant, xor with a right shift), so ids never collide,
    while still looking random like the reference's 48 random bits.
    """
    x = indices.astype(np.uint64) & _MASK48
    key = int(id_key)
    with np.errstate(over="ignore"):
        for round_key, multiplier, shift in (
            (key & 0xFFFFFFFFFFFF, 0x5DEECE66D, 23),
            ((key >> 16) & 0xFFFFFFFFFFFF, 0xD1B54A32D193, 19),
            ((key * 0x9E3779B97F4A7C15 >> 20) & 0xFFFFFFFFFFFF, 0x2545F4914F6D, 25),
        ):
            x = (x + np.uint64(round_key)) & _MASK48
            x = (x * np.uint64(multiplier)) & _MASK48
            x = x ^ (x >> np.uint64(shift))
    return x


def format_session_ids(numbers: np.ndarray) -> list[str]:
    """``sess-`` and 12 lowercase hex digits, as the reference prints them."""
    return [f"sess-{n:012x}" for n in numbers.tolist()]
