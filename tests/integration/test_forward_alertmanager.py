"""``distillwatch forward`` against a real Prometheus Alertmanager (issue 21):
the base URL (as Prometheus and amtool name it) delivers every alert; a wrong
path or wrong credentials refuse to start (exit 3) having committed nothing;
a rerun with the right URL delivers every alert."""

from __future__ import annotations

import uuid

import orjson
import pytest

from streams.cli import main
from tests.helpers.alertmanager_server import AlertmanagerServer, alertmanager_binary
from tests.helpers.broker import produce
from tests.helpers.oncall import T0, record
from tests.helpers.reliability import group_offsets, wait_until

pytestmark = pytest.mark.integration
# the `alertmanager` fixture comes from tests/conftest.py (tests/helpers/alertmanager_server.py)


def _alerts(n: int) -> list[dict]:
    firing = [record(f"am-{i}", severity="critical", score=0.97) for i in range(n)]
    resolved = [record(f"am-{i}", status="resolved", severity="info", ts=T0 + 900)
                for i in range(n // 2)]
    return firing + resolved


def _publish(broker, alerts: list[dict]) -> str:
    topic = f"alerts-{uuid.uuid4().hex[:8]}"
    produce(broker, topic, [(a["dedup_key"].encode(), orjson.dumps(a)) for a in alerts])
    return topic


def _forward(broker, topic: str, url: str, *extra: str) -> int:
    return main(["forward", "--to", "alertmanager", "--url", url, "--broker", broker.url,
                 "--topic", topic, "--group", f"g-{topic}", "--duration", "3",
                 "--probe-timeout", "3", *extra])


def test_wrong_path_refuses_then_the_base_url_delivers_every_alert(broker, alertmanager,
                                                                   capsys, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="distillwatch.forward")
    alerts = _alerts(6)
    topic = _publish(broker, alerts)
    import time

    refused = []
    for wrong in (f"{alertmanager.base_url}/api/v1/alert", f"{alertmanager.base_url}/alerts",
                  f"http://127.0.0.1:{alertmanager.port}/api/v2/alert"):
        started = time.monotonic()
        assert _forward(broker, topic, wrong) == 3, wrong
        refused.append(time.monotonic() - started)
        assert group_offsets(broker.bootstrap, f"g-{topic}", topic)[0] == 0
    assert "refusing to start" in capsys.readouterr().out
    assert not any(alertmanager.received().values())

    started = time.monotonic()
    assert _forward(broker, topic, alertmanager.base_url) == 0
    took = time.monotonic() - started
    assert "alertmanager_url_completed" in caplog.text and "/api/v2/alerts" in caplog.text
    assert group_offsets(broker.bootstrap, f"g-{topic}", topic) == (len(alerts), len(alerts))
    firing = {a["alert_id"] for a in alerts if a["status"] == "firing"}
    held = wait_until(lambda: {a["annotations"]["alert_id"] for a in alertmanager.alerts()}
                      >= firing, timeout=10)
    assert held, alertmanager.alerts()
    received = alertmanager.received()
    assert received.get("firing") == len(firing), received
    assert received.get("resolved") == len(alerts) - len(firing), received
    print(f"\nforward to a real Alertmanager: wrong paths refused (exit 3, nothing committed) "
          f"in {max(refused):.2f}s at most; the base URL delivered all {len(alerts)} alerts "
          f"(run of --duration 3: {took:.1f}s)")


def test_wrong_credentials_refuse_to_start(broker, tmp_path, monkeypatch):
    if alertmanager_binary() is None:
        pytest.skip("prometheus-alertmanager is not installed (.ci/run installs it)")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        crypt = pytest.importorskip("crypt", reason="no crypt module to make a bcrypt hash")
    hashed = crypt.crypt("right", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
    web = f"basic_auth_users:\n  oncall: {hashed}\n"
    alerts = _alerts(2)
    topic = _publish(broker, alerts)
    import base64

    def basic(password: str) -> str:
        return "Basic " + base64.b64encode(f"oncall:{password}".encode()).decode()

    with AlertmanagerServer(tmp_path / "am", web_config=web) as am:
        monkeypatch.setenv("DISTILLWATCH_FORWARD_AUTHORIZATION", basic("wrong"))
        assert _forward(broker, topic, am.base_url) == 3
        assert group_offsets(broker.bootstrap, f"g-{topic}", topic)[0] == 0
        monkeypatch.setenv("DISTILLWATCH_FORWARD_AUTHORIZATION", basic("right"))
        assert _forward(broker, topic, am.base_url) == 0
        assert group_offsets(broker.bootstrap, f"g-{topic}", topic) == (len(alerts), len(alerts))
        firing = {a["alert_id"] for a in alerts if a["status"] == "firing"}
        assert {a["annotations"]["alert_id"] for a in am.alerts(basic("right"))} >= firing
