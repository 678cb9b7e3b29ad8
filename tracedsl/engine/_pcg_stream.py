"""numpy ``Generator`` draws replayed from raw PCG64 words, fast enough to call once per draw.

The reference makes one scalar numpy call per value (``random``, ``lognormal``, ``bytes``,
``integers``, ``choice``), all on one ``default_rng(seed)``. Calling numpy per draw costs
microseconds; here we pull the same 64-bit words in bulk with ``random_raw`` and decode them
the way numpy does: doubles as ``(w >> 11) * 2**-53``, normals with numpy's ziggurat (the
fast path precomputed for a whole block, the rare tail and wedge paths done exactly), and
32-bit values with PCG64's half-word buffer. Tests check every primitive draw for draw
against numpy on many seeds.
"""

from __future__ import annotations

import math

import numpy as np

from tracedsl.engine._pcg_ziggurat import F, K, R, W

_BLOCK_WORDS = 1 << 15
_MASK52 = (1 << 52) - 1
_INV_R = 0.27366123732975828  # numpy's 1/R for the tail
_K = np.array(K, dtype=np.uint64)
_W = np.array(W, dtype=np.float64)


class NumpyStream:
    """The draws of ``numpy.random.default_rng(seed)``, one primitive call at a time."""

    def __init__(self, seed: int, block_words: int = _BLOCK_WORDS):
        self._bitgen = np.random.default_rng(seed).bit_generator
        self._block_words = block_words
        self._half: int | None = None  # PCG64's buffered upper 32 bits, as numpy keeps them
        self._refill()

    def _refill(self) -> None:
        words = self._bitgen.random_raw(self._block_words)
        self.words = words
        self.doubles = ((words >> np.uint64(11)).astype(np.float64) * 2.0**-53).tolist()
        # Ziggurat fast path for every word; None marks words that need the slow path.
        strip = (words & np.uint64(0xFF)).astype(np.intp)
        rabs = (words >> np.uint64(9)) & np.uint64(_MASK52)
        normal = rabs.astype(np.float64) * _W[strip]
        normal = np.where((words >> np.uint64(8)) & np.uint64(1), -normal, normal)
        fast_normals = normal.tolist()
        for slow in np.flatnonzero(rabs >= _K[strip]).tolist():
            fast_normals[slow] = None
        self.fast_normals = fast_normals
        self.pos = 0
        self.end = len(fast_normals)

    def next_word(self) -> int:
        if self.pos == self.end:
            self._refill()
        word = int(self.words[self.pos])
        self.pos += 1
        return word

    def random(self) -> float:
        """``Generator.random()``: one word."""
        if self.pos == self.end:
            self._refill()
        value = self.doubles[self.pos]
        self.pos += 1
        return value

    def standard_normal(self) -> float:
        """``Generator.standard_normal()``: numpy's ziggurat."""
        if self.pos == self.end:
            self._refill()
        value = self.fast_normals[self.pos]
        self.pos += 1
        if value is not None:
            return value
        return self._slow_normal(int(self.words[self.pos - 1]))

    def _slow_normal(self, word: int) -> float:
        while True:
            strip = word & 0xFF
            rabs = (word >> 9) & _MASK52
            x = rabs * W[strip]
            if (word >> 8) & 1:
                x = -x
            if rabs < K[strip]:
                return x
            if strip == 0:
                while True:  # the tail beyond R
                    xx = -_INV_R * math.log1p(-self.random())
                    yy = -math.log1p(-self.random())
                    if yy + yy > xx * xx:
                        return -(R + xx) if (rabs >> 8) & 1 else R + xx
            if (F[strip - 1] - F[strip]) * self.random() + F[strip] < math.exp(-0.5 * x * x):
                return x
            word = self.next_word()

    def lognormal(self, mu: float, sigma: float) -> float:
        """``Generator.lognormal(mu, sigma)``: exp(mu + sigma * z), consumed even when sigma is 0."""
        return math.exp(mu + sigma * self.standard_normal())

    def uint32(self) -> int:
        """PCG64's 32-bit output: the low half of a word, the high half kept for the next call."""
        if self._half is not None:
            value, self._half = self._half, None
            return value
        word = self.next_word()
        self._half = word >> 32
        return word & 0xFFFFFFFF

    def bytes(self, length: int) -> bytes:
        """``Generator.bytes(length)``: little-endian 32-bit values."""
        count = (length - 1) // 4 + 1
        return b"".join(self.uint32().to_bytes(4, "little") for _ in range(count))[:length]

    def integers(self, low: int, high: int) -> int:
        """``Generator.integers(low, high)`` (int64) for spans below 2**32: Lemire's method."""
        span = high - low
        if span == 1:
            return low  # numpy draws nothing for a single value
        if span > 0xFFFFFFFF:
            raise ValueError("spans of 2**32 or more are not needed by the reference")
        product = self.uint32() * span
        leftover = product & 0xFFFFFFFF
        if leftover < span:
            threshold = (0x100000000 - span) % span
            while leftover < threshold:
                product = self.uint32() * span
                leftover = product & 0xFFFFFFFF
        return low + (product >> 32)
