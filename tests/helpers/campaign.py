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


def acct(a: str, t: float, score: float, severity: str = "error", status: str = "firing",
         start: float | None = None, rate: float = 5.0, fps: tuple[str, ...] = (),
         keys: tuple[str, ...] = ()) -> Alert:
    details: dict = {"reasons": ["template"], "rate_per_min": rate}
    if fps:
        details["prompt_fingerprints"] = list(fps)
    if keys:
        details["linkage_keys"] = list(keys)
    return Alert("account", status, severity if status == "firing" else "info", score, t,
                 t if start is None else start, "a", details, account_id=a)


def records(out: list[Alert], a: str) -> list[tuple[str, str]]:
    return [(x.detector, x.status) for x in out if x.account_id == a]


def quiet(out: list[Alert]) -> list[Alert]:
    """What came out besides the pass-through ticks."""
    return [x for x in out if x.detector != "other"]
