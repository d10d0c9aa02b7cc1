"""The detector interface the stream service and replay both call.

PLACEHOLDER for the walking skeleton (issue 2): a single decayed-rate rule.
The detection core (issue 3) replaces the internals, keeping this interface:

- ``Detector.process(state, event) -> (state, alerts)``: pure per account,
  given the detector's population context;
- ``Detector.expire(state, watermark) -> (state | None, alerts)``: resolves
  quiet episodes and drops idle accounts;
- ``AccountState.encode() / AccountState.decode()``: compact, no pickle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import orjson

from detectors.alerts import Alert, severity_for
from detectors.errors import CorruptState, InvalidConfig
from detectors.schema import Event


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    rate_half_life_s: float = 60.0
    rate_threshold_per_min: float = 120.0
    quiet_period_s: float = 600.0
    idle_ttl_s: float = 86_400.0

    def __post_init__(self) -> None:
        for name in ("rate_half_life_s", "rate_threshold_per_min", "quiet_period_s", "idle_ttl_s"):
            if not getattr(self, name) > 0:
                raise InvalidConfig(f"{name} must be > 0, got {getattr(self, name)!r}")


@dataclass(slots=True)
class AccountState:
    account_id: str
    last_ts: float = 0.0
    rate: float = 0.0  # decayed events per minute
    episode_start: float = 0.0  # 0 when no episode is open
    last_hot: float = 0.0

    def encode(self) -> bytes:
        return orjson.dumps(
            [1, self.account_id, self.last_ts, self.rate, self.episode_start, self.last_hot]
        )

    @classmethod
    def decode(cls, data: bytes) -> AccountState:
        try:
            version, account_id, last_ts, rate, episode_start, last_hot = orjson.loads(data)
        except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
            raise CorruptState(f"cannot decode account state: {exc}") from None
        if version != 1:
            raise CorruptState(f"unknown account state version {version!r}")
        return cls(account_id, last_ts, rate, episode_start, last_hot)


class Detector:
    """Per-partition detector: owns config and population context."""

    name = "account"

    def __init__(self, config: DetectorConfig | None = None) -> None:
        self.config = config or DetectorConfig()

    def process(
        self, state: AccountState | None, event: Event
    ) -> tuple[AccountState, list[Alert]]:
        cfg = self.config
        if state is None:
            state = AccountState(event.account_id, last_ts=event.ts)
        dt = max(0.0, event.ts - state.last_ts)
        decay = math.exp(-dt * math.log(2) / cfg.rate_half_life_s)
        # decayed count over a half-life window, expressed per minute
        state.rate = state.rate * decay + 60.0 * math.log(2) / cfg.rate_half_life_s
        state.last_ts = max(state.last_ts, event.ts)
        alerts: list[Alert] = []
        score = 1.0 - math.exp(-state.rate / cfg.rate_threshold_per_min)
        hot = state.rate >= cfg.rate_threshold_per_min
        if hot:
            state.last_hot = event.ts
            if not state.episode_start:
                state.episode_start = event.ts
                alerts.append(self._alert(state, event.ts, "firing", score))
        return state, alerts

    def expire(
        self, state: AccountState, watermark: float
    ) -> tuple[AccountState | None, list[Alert]]:
        alerts: list[Alert] = []
        if state.episode_start and watermark - state.last_hot >= self.config.quiet_period_s:
            alerts.append(self._alert(state, watermark, "resolved", 0.0))
            state.episode_start = 0.0
        if watermark - state.last_ts >= self.config.idle_ttl_s and not state.episode_start:
            return None, alerts
        return state, alerts

    def describe(self, state: AccountState) -> dict[str, object]:
        return {"rate_per_min": round(state.rate, 3), "episode_open": bool(state.episode_start)}

    def snapshot(self) -> bytes:
        return b"{}"

    def restore(self, data: bytes) -> None:
        return None

    def _alert(self, state: AccountState, ts: float, status: str, score: float) -> Alert:
        severity = "info" if status == "resolved" else severity_for(
            score, {"warning": 0.5, "error": 0.75, "critical": 0.9}
        )
        return Alert(
            detector=self.name,
            status=status,
            severity=severity,
            score=score,
            ts=ts,
            episode_start=state.episode_start,
            account_id=state.account_id,
            summary=f"{state.account_id}: request rate {state.rate:.0f}/min",
            details={"rate_per_min": round(state.rate, 2)},
        )
