"""Stage alerts for the campaign stage's tests: clusters, members, accounts,
and a stage run over a list of them."""

from __future__ import annotations

from detectors.alerts import Alert
from detectors.campaign import CampaignStage

T0 = 1_772_409_600.0


def cluster(key: str, t: float, accounts: tuple[str, ...], score: float = 0.9,
            shared: tuple[str, ...] = (), status: str = "firing") -> Alert:
    return Alert("cluster", status, "error" if status == "firing" else "info", score, t, t,
                 f"cluster {key}", {"cluster_key": key, "shared_keys": [key, *shared],
                                    "reasons": ["shared_template"]},
                 accounts=accounts, account_count=len(accounts))


def member(key: str, t: float, acct: str, start: float) -> Alert:
    return Alert("cluster_member", "firing", "warning", 0.9, t, start, "m",
                 {"cluster_key": key}, account_id=acct)


def account(acct: str, t: float, score: float, status: str = "firing",
            start: float | None = None) -> Alert:
    return Alert("account", status, "critical" if status == "firing" else "info", score, t,
                 t if start is None else start, "a", {"reasons": ["template"]}, account_id=acct)


def run(stage: CampaignStage, alerts: list[Alert]) -> list[Alert]:
    return [out for a in alerts for out in stage.process(a)]


def tick(t: float) -> Alert:
    """An unrelated alert that only advances event time."""
    return Alert("other", "firing", "info", 0.1, t, t, "tick", {}, account_id="zz")
