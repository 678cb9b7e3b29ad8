"""Recover numpy's double-precision ziggurat tables by probing ``Generator.standard_normal``.

Writes ``tracedsl/engine/_pcg_ziggurat.py``. Run from the repository root:
``python tests/golden/aiperf/recover_ziggurat.py`` (needs numpy).

How: PCG64 outputs are an invertible function of its 128-bit state, so we can set the state
that makes the next output any 64-bit word we like. numpy's standard normal reads one word as
8 bits of strip index, 1 sign bit and 52 bits of magnitude ``rabs``; it returns
``rabs * w[idx]`` without further draws when ``rabs < k[idx]``. So:

* ``w[idx]`` is the value returned for ``rabs = 1`` (for the strip whose fast path is empty,
  the wedge test accepts such a tiny x, and the value is the same);
* ``k[idx]`` is found by bisection on ``rabs``: one word consumed means the fast path.
* ``f[idx]`` (the wedge heights, only used on the rare slow path) is exp(-x*x/2) in doubles at
  the strip edge x = w[idx] * 2^52 (and 1 for the top strip); the engine's tests check the
  slow path draw for draw against numpy.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

MULT = 0x2360ED051FC65DA44385DF649FCCF645
MASK64 = (1 << 64) - 1
MASK128 = (1 << 128) - 1
INC = 0xDA3E39CB94B95BDB  # any odd increment
MULT_INV = pow(MULT, -1, 1 << 128)


def _state_before(word: int) -> int:
    """A PCG64 state whose next output is ``word``."""
    hi = 0x0123456789ABCDEF
    rot = hi >> 58
    xored = ((word << rot) | (word >> (64 - rot))) & MASK64 if rot else word
    after = (hi << 64) | (xored ^ hi)
    return ((after - INC) * MULT_INV) & MASK128


def _normal_from(word: int) -> tuple[float, bool]:
    """numpy's standard normal for a first word; True when it consumed only that word."""
    bitgen = np.random.PCG64(0)
    start = _state_before(word)
    bitgen.state = {
        "bit_generator": "PCG64",
        "state": {"state": start, "inc": INC},
        "has_uint32": 0,
        "uinteger": 0,
    }
    value = float(np.random.Generator(bitgen).standard_normal())
    one_step = bitgen.state["state"]["state"] == (start * MULT + INC) & MASK128
    return value, one_step


def _word(idx: int, rabs: int) -> int:
    return idx | (rabs << 9)


def recover() -> tuple[list[int], list[float], list[float]]:
    probe = _state_before(0xFEEDFACE12345678)
    check = np.random.PCG64(0)
    check.state = {"bit_generator": "PCG64", "state": {"state": probe, "inc": INC},
                   "has_uint32": 0, "uinteger": 0}
    assert int(check.random_raw()) == 0xFEEDFACE12345678, "state crafting does not match PCG64"
    k, w = [], []
    for idx in range(256):
        w.append(_normal_from(_word(idx, 1))[0])
        lo, hi = 0, 1 << 52  # the smallest rabs that leaves the fast path
        while lo < hi:
            mid = (lo + hi) // 2
            if _normal_from(_word(idx, mid))[1]:
                lo = mid + 1
            else:
                hi = mid
        k.append(lo)
    f = [1.0] + [math.exp(-0.5 * (w[i] * 2.0**52) ** 2) for i in range(1, 256)]
    return k, w, f


def write(path: Path) -> None:
    k, w, f = recover()
    lines = [
        '"""numpy\'s double ziggurat tables (strip thresholds, widths, heights) for the normal.',
        "",
        "Recovered by probing numpy (tests/golden/aiperf/recover_ziggurat.py); do not edit.",
        '"""',
        "",
        "R = 3.6541528853610088  # start of the tail",
        "",
        "K = (",
        *(f"    {', '.join(hex(v) for v in k[i:i + 4])}," for i in range(0, 256, 4)),
        ")",
        "W = (",
        *(f"    {', '.join(repr(v) for v in w[i:i + 3])}," for i in range(0, 256, 3)),
        ")",
        "F = (",
        *(f"    {', '.join(repr(v) for v in f[i:i + 3])}," for i in range(0, 256, 3)),
        ")",
        "",
    ]
    path.write_text("\n".join(lines))


if __name__ == "__main__":
    write(Path("tracedsl/engine/_pcg_ziggurat.py"))
