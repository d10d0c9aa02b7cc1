"""A small progress line on stderr for long runs (events/s), throttled."""

from __future__ import annotations

import sys
import time
from typing import IO


class Progress:
    def __init__(self, label: str, total: int | None = None, stream: IO[str] | None = None,
                 enabled: bool | None = None, every_s: float = 0.5) -> None:
        self.label = label
        self.total = total
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.every_s = every_s
        self.count = 0
        self.started = time.monotonic()
        self._last = 0.0

    def update(self, n: int = 1, extra: str = "") -> None:
        self.count += n
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < self.every_s:
            return
        self._last = now
        self._draw(now, extra)

    def _draw(self, now: float, extra: str) -> None:
        elapsed = max(now - self.started, 1e-9)
        rate = self.count / elapsed
        if self.total:
            frac = min(1.0, self.count / self.total)
            bar = "#" * int(frac * 30)
            text = f"\r{self.label} [{bar:<30}] {frac:6.1%} {self.count:,} ev {rate:,.0f} ev/s"
        else:
            text = f"\r{self.label} {self.count:,} events  {rate:,.0f} ev/s"
        self.stream.write(f"{text} {extra}".ljust(79))
        self.stream.flush()

    def close(self, extra: str = "") -> None:
        if self.enabled:
            self._draw(time.monotonic(), extra)
            self.stream.write("\n")
            self.stream.flush()

    @property
    def rate(self) -> float:
        return self.count / max(time.monotonic() - self.started, 1e-9)
