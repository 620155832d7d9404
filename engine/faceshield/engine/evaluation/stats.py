"""Means with 95% confidence intervals, and proportions with Wilson score intervals.

No SciPy: the Student t quantile comes from a table for small samples and the Cornish-Fisher
expansion beyond it (error below 1e-4 from 31 degrees of freedom on).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

Z_975 = 1.959963984540054
# Two-sided 95% Student t quantiles, t_{0.975}(df) for df = 1..30.
_T_975 = (
    12.7062,
    4.3027,
    3.1824,
    2.7764,
    2.5706,
    2.4469,
    2.3646,
    2.3060,
    2.2622,
    2.2281,
    2.2010,
    2.1788,
    2.1604,
    2.1448,
    2.1314,
    2.1199,
    2.1098,
    2.1009,
    2.0930,
    2.0860,
    2.0796,
    2.0739,
    2.0687,
    2.0639,
    2.0595,
    2.0555,
    2.0518,
    2.0484,
    2.0452,
    2.0423,
)


@dataclass(frozen=True)
class Estimate:
    """A mean (or a proportion) with its 95% interval [low, high] from n observations."""

    mean: float | None
    low: float | None
    high: float | None
    n: int

    def as_dict(self) -> dict:
        return asdict(self)


def t_quantile_975(df: int) -> float:
    """t_{0.975} with `df` degrees of freedom."""
    if df < 1:
        raise ValueError("df must be at least 1")
    if df <= len(_T_975):
        return _T_975[df - 1]
    z, v = Z_975, float(df)
    return (
        z
        + (z**3 + z) / (4 * v)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3)
    )


def mean_ci(values: Sequence[float]) -> Estimate:
    """Sample mean with a two-sided 95% t interval. Non-finite values are left out."""
    xs = [float(v) for v in values if v is not None and math.isfinite(v)]
    n = len(xs)
    if n == 0:
        return Estimate(None, None, None, 0)
    m = math.fsum(xs) / n
    if n == 1:
        return Estimate(m, None, None, 1)
    var = math.fsum((x - m) ** 2 for x in xs) / (n - 1)
    half = t_quantile_975(n - 1) * math.sqrt(var / n)
    return Estimate(m, m - half, m + half, n)


def wilson(successes: int, trials: int) -> Estimate:
    """A proportion with its 95% Wilson score interval (sound at 0% and 100%)."""
    if trials <= 0:
        return Estimate(None, None, None, 0)
    p = successes / trials
    z2 = Z_975**2
    denom = 1 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denom
    half = Z_975 * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials**2)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return Estimate(p, low, high, trials)


def paired_difference(a: dict[str, float], b: dict[str, float]) -> Estimate:
    """Mean of a[k] - b[k] over the keys both have (the same images), with its 95% interval."""
    keys = [k for k in a if k in b]
    return mean_ci([a[k] - b[k] for k in keys])
