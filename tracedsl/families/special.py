"""The standard normal's CDF and quantile, vectorized (scipy.special.ndtri without importing scipy: start-up matters)."""

from __future__ import annotations

import math

import numpy as np

_A = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02,
      1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00)
_B = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02,
      6.680131188771972e01, -1.328068155288572e01)
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00,
      -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)
_P_LOW = 0.02425


def _poly(coefficients: tuple[float, ...], x: np.ndarray) -> np.ndarray:
    result = np.full_like(x, coefficients[0])
    for c in coefficients[1:]:
        result = result * x + c
    return result


def normal_quantile(p: np.ndarray) -> np.ndarray:
    """Φ⁻¹(p) by Acklam's rational approximation (relative error < 1.2e-9 over (0, 1))."""
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = p - 0.5
        r = q * q
        central = _poly(_A, r) * q / (_poly(_B, r) * r + 1.0)
        # The tails are symmetric: use the smaller of p and 1 - p so tiny p keeps precision.
        tail_p = np.minimum(p, 1.0 - p)
        t = np.sqrt(-2.0 * np.log(tail_p))
        tail = _poly(_C, t) / (_poly(_D, t) * t + 1.0)
        tail = np.where(p > 0.5, -tail, tail)
    return np.where(np.abs(q) <= 0.5 - _P_LOW, central, tail)


def normal_cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))
