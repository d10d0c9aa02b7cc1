"""One campaign, one incident, live: a simulated hydra campaign through the
worker on the embedded broker (account and cluster stages, the campaign
topic and agent), then ``distillwatch forward`` to a real local Prometheus
Alertmanager (Debian ``prometheus-alertmanager``; ``.ci/run`` installs it),
which must end up holding one alert for the campaign.

The Alertmanager fixture here is deliberately small; dw/reliab adds a shared
one (tests/alertmanager_server.py) that this module should switch to once it
is on main.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.attack import benign_events
from tests.conftest import consume_until, produce
from tests.test_cluster_integration import hydra_events

pytestmark = pytest.mark.integration

AM_CONFIG = """\
route:
  receiver: "null"
  group_by: ["campaign", "dedup_key"]
  group_wait: 1h
receivers:
  - name: "null"
"""


class LocalAlertmanager:
    def __init__(self, binary: str, workdir: Path) -> None:
        from streams.broker import free_port

        self.binary, self.workdir, self.port = binary, workdir, free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> LocalAlertmanager:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "alertmanager.yml"
        config.write_text(AM_CONFIG)
        log = open(self.workdir / "alertmanager.log", "ab")  # noqa: SIM115 - closed with proc
        self.proc = subprocess.Popen(
            [self.binary, f"--config.file={config}", f"--storage.path={self.workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=",
             "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("alertmanager exited: "
                                   + (self.workdir / "alertmanager.log").read_text()[-2000:])
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1):
                    return self
            time.sleep(0.1)
        raise RuntimeError(f"alertmanager not ready after {timeout:.0f}s")

    def alerts(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts", timeout=5) as resp:
            return list(json.loads(resp.read()))

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


@pytest.fixture
def local_alertmanager(tmp_path: Path) -> Iterator[LocalAlertmanager]:
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        pytest.skip("prometheus-alertmanager is not installed (.ci/run installs it as root: "
                    "apt-get install prometheus-alertmanager)")
    server = LocalAlertmanager(binary, tmp_path / "alertmanager").start()
    try:
        yield server
    finally:
        server.stop()


def test_one_simulated_campaign_is_one_alertmanager_alert(broker, worker_factory,
                                                          local_alertmanager):
    from streams.cli import main

    # updates allowed every minute of event time, so the campaign re-sends
    # its dedup_key while it grows: still one alert in Alertmanager
    worker = worker_factory(DISTILLWATCH_CAMPAIGN_UPDATE_INTERVAL_S="60").start()
    worker.wait_log("partitions_assigned", timeout=45)
    produce(broker, worker.events_topic, benign_events())
    campaign = hydra_events(members=8, minutes=40)
    produce(broker, worker.events_topic, campaign)
    members = {k.decode() for k, _ in campaign}

    def settled(records: list[dict[str, Any]]) -> bool:
        named = {r["account_id"] for r in records if r.get("detector") == "campaign_member"}
        return any(r.get("detector") == "campaign" for r in records) and len(named) >= 4

    records = consume_until(broker, worker.alerts_topic, settled, timeout=90)
    assert settled(records), f"no campaign\n{worker.log_tail()}"
    records = consume_until(broker, worker.alerts_topic, lambda rs: False, timeout=3)
    # on-call sees the campaign, not its linkage keys
    assert not [r for r in records if r.get("detector", "").startswith("cluster")]
    camps = [r for r in records if r.get("detector") == "campaign"]
    assert len({r["dedup_key"] for r in camps}) == 1, [r["dedup_key"] for r in camps]
    fire = camps[0]
    cid = fire["details"]["campaign_id"]
    assert fire["dedup_key"] == f"campaign:{cid}" and fire["status"] == "firing"
    assert len(fire["details"]["linkage_keys"]) >= 2  # several keys, one campaign
    assert set(fire["accounts"]) <= members
    # one member record per account, each naming the campaign
    named = [r["account_id"] for r in records if r.get("detector") == "campaign_member"]
    assert len(named) == len(set(named)) and set(named) <= members
    assert all(r["details"]["campaign_id"] == cid for r in records
               if r.get("detector") == "campaign_member")
    # the stage's state is checkpointed to its own changelog
    from streams.topics import campaign_changelog_topic
    from tests.test_cluster_integration import _read_raw

    state = _read_raw(broker, campaign_changelog_topic(worker.settings))
    assert any(k == cid.encode() for k, _ in state), [k for k, _ in state][:10]

    # forward everything on the alerts topic to the real Alertmanager
    rc = main(["forward", "--to", "alertmanager", "--url",
               f"{local_alertmanager.url}/api/v2/alerts", "--broker", broker.url,
               "--topic", worker.alerts_topic, "--duration", "6"])
    assert rc == 0
    held = local_alertmanager.alerts()
    mine = [a for a in held if a["labels"].get("campaign") == cid
            or a["labels"].get("dedup_key") == fire["dedup_key"]]
    campaign_alerts = [a for a in mine if a["labels"]["detector"] == "campaign"]
    assert len(campaign_alerts) == 1, held
    assert campaign_alerts[0]["labels"]["subject"] == cid
    assert campaign_alerts[0]["status"]["state"] == "active"
    # member records stay off Alertmanager; an account's own stronger alert
    # (if any) carries the campaign label to group by
    assert not [a for a in held if a["labels"]["detector"].endswith("_member")]
    assert all(a["labels"]["detector"] in ("campaign", "account") for a in mine)
    with contextlib.suppress(urllib.error.URLError):
        assert worker.proc.poll() is None
