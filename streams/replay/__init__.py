"""Historic logs through the live detection path: ``replay``, ``publish``,
parameter sweeps, the HTML report and ``score-series``."""
