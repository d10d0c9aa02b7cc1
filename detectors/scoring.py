"""The one evidence ramp every score is built from."""

from __future__ import annotations


def ramp(x: float, lo: float, hi: float) -> float:
    """0 at or below ``lo``, 1 at or above ``hi``, linear between.

    >>> ramp(1.0, 2.0, 6.0), ramp(3.0, 2.0, 6.0), ramp(9.0, 2.0, 6.0)
    (0.0, 0.25, 1.0)
    """
    if x <= lo:
        return 0.0
    if x >= hi:
        return 1.0
    return (x - lo) / (hi - lo)
