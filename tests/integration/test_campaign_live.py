"""One campaign, one incident, live: a simulated hydra campaign through the
worker on the embedded broker (account and cluster stages, the campaign
topic and agent), then ``distillwatch forward`` to a real local Prometheus
Alertmanager (Debian ``prometheus-alertmanager``; ``.ci/run`` installs it),
which must end up holding one alert for the campaign.

The Alertmanager is the shared ``alertmanager`` fixture
(tests/helpers/alertmanager_server.py).
"""

from __future__ import annotations

import contextlib
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.helpers.attack import benign_events, hydra_events
from tests.helpers.broker import consume_until, produce

pytestmark = pytest.mark.integration

def test_one_simulated_campaign_is_one_alertmanager_alert(broker, worker_factory,
                                                          alertmanager):
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
    # its own incident, or (its first detection an account paged on the same
    # card minutes before) that page's, which the campaign continues
    adopted = fire["details"].get("adopted")
    incident = adopted["dedup_key"] if adopted else f"campaign:{cid}"
    assert fire["dedup_key"] == incident and fire["status"] == "firing"
    if adopted:
        pages = [r for r in records if r.get("dedup_key") == incident
                 and r.get("detector") == "account" and r["status"] == "firing"]
        assert pages and pages[0]["episode_start"] == fire["episode_start"]
    assert len(fire["details"]["linkage_keys"]) >= 2  # several keys, one campaign
    assert set(fire["accounts"]) <= members
    # one member record per account, each naming the campaign
    named = [r["account_id"] for r in records if r.get("detector") == "campaign_member"]
    assert len(named) == len(set(named)) and set(named) <= members
    assert all(r["details"]["campaign_id"] == cid for r in records
               if r.get("detector") == "campaign_member")
    # the stage's state is checkpointed to its own changelog
    from streams.service.topics import campaign_changelog_topic
    from tests.helpers.broker import read_raw as _read_raw

    state = _read_raw(broker, campaign_changelog_topic(worker.settings))
    assert any(k == cid.encode() for k, _ in state), [k for k, _ in state][:10]

    # forward everything on the alerts topic to the real Alertmanager
    rc = main(["forward", "--to", "alertmanager", "--url",
               f"{alertmanager.base_url}/api/v2/alerts", "--broker", broker.url,
               "--topic", worker.alerts_topic, "--duration", "6"])
    assert rc == 0
    held = alertmanager.alerts()
    mine = [a for a in held if a["labels"].get("campaign") == cid
            or a["labels"].get("dedup_key") == fire["dedup_key"]]
    # one alert for the incident: the campaign's, or the page it continues
    # (its labels; the campaign id is an annotation)
    campaign_alerts = [a for a in held if a["labels"]["dedup_key"] == incident]
    assert len(campaign_alerts) == 1, held
    assert campaign_alerts[0]["labels"]["subject"] == (adopted["subject"] if adopted else cid)
    assert campaign_alerts[0]["annotations"]["campaign"] == cid
    assert campaign_alerts[0]["status"]["state"] == "active"
    # member records stay off Alertmanager; an account's own stronger alert
    # (if any) carries the campaign label to group by
    assert not [a for a in held if a["labels"]["detector"].endswith("_member")]
    assert all(a["labels"]["detector"] in ("campaign", "account") for a in mine)
    with contextlib.suppress(urllib.error.URLError):
        assert worker.proc.poll() is None
