"""The operator surface: beyond loopback only with a token; a Host allowlist;
changes only by POST with the token; the token never logged."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.errors import ConfigError, WebTokenMissing
from streams.service.web_auth import WebGuard
from streams.settings import Settings

TOKEN = "t0ken-for-tests-" + "9f" * 12


def test_beyond_loopback_without_a_token_is_refused_with_what_to_do():
    with pytest.raises(WebTokenMissing) as info:
        Settings.load(env={"DISTILLWATCH_WEB_HOST": "0.0.0.0"})
    assert "DISTILLWATCH_WEB_TOKEN" in str(info.value)
    assert "DISTILLWATCH_WEB_TOKEN" in (WebTokenMissing.__doc__ or "")
    # loopback, or views off, or a token: fine
    Settings.load(env={"DISTILLWATCH_WEB_HOST": "127.0.0.1"})
    Settings.load(env={"DISTILLWATCH_WEB_HOST": "0.0.0.0", "DISTILLWATCH_WEB_ENABLED": "false"})
    s = Settings.load(env={"DISTILLWATCH_WEB_HOST": "0.0.0.0", "DISTILLWATCH_WEB_TOKEN": TOKEN})
    assert TOKEN not in repr(s) and TOKEN not in json.dumps(s.redacted())


def test_a_short_token_is_refused():
    with pytest.raises(ConfigError, match="16 characters"):
        Settings.load(env={"DISTILLWATCH_WEB_TOKEN": "short"})


def test_worker_refuses_to_start_beyond_loopback_without_a_token(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "DISTILLWATCH_WEB_HOST": "0.0.0.0",
           "DISTILLWATCH_BROKER": "kafka://127.0.0.1:1", "DISTILLWATCH_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "streams.cli", "worker"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "DISTILLWATCH_WEB_TOKEN" in done.stderr


def test_guard_decisions():
    g = WebGuard(TOKEN, Settings(web_allowed_hosts="dw.internal").allowed_hosts)
    ok = f"Bearer {TOKEN}"
    assert g.check("GET", "/alerts.json", "dw.internal:6066", ok) is None
    assert g.check("GET", "/alerts.json", "DW.INTERNAL", ok) is None
    assert g.check("GET", "/alerts.json", "[::1]:6066", ok) is None
    assert g.check("GET", "/alerts.json", "dw.internal", None)[0] == 401
    assert g.check("GET", "/alerts.json", "dw.internal", "Bearer nope")[0] == 401
    assert g.check("GET", "/alerts.json", "dw.internal", f"Basic {TOKEN}")[0] == 401
    assert g.check("GET", "/accounts/a/", "rebind.attacker.example", ok)[0] == 421
    assert g.check("GET", "/alerts.json", None, ok)[0] == 421
    assert g.check("GET", "/health", "dw.internal", None) is None  # probes stay open
    assert g.check("GET", "/actions/abc/approve", "dw.internal", ok)[0] == 405
    assert g.check("POST", "/actions/abc/approve", "dw.internal", None)[0] == 401
    assert g.check("POST", "/actions/abc/approve", "dw.internal", ok) is None
    # on loopback without a token: views open, decisions impossible
    loop = WebGuard("", Settings().allowed_hosts)
    assert loop.check("GET", "/alerts.json", "127.0.0.1:6066", None) is None
    assert loop.check("POST", "/actions/abc/approve", "127.0.0.1", None)[0] == 403


@given(st.text(max_size=80))
def test_guard_never_admits_a_wrong_token(presented):
    g = WebGuard(TOKEN, ["localhost"])
    verdict = g.check("GET", "/alerts.json", "localhost", f"Bearer {presented}")
    assert (verdict is None) == (presented.strip() == TOKEN)


@given(st.text(max_size=80))
def test_guard_never_admits_a_host_outside_the_list(host):
    g = WebGuard(TOKEN, ["localhost"])
    name = host.strip().lower()
    if name not in ("localhost",) and not name.startswith("localhost:"):
        assert g.check("GET", "/health", host, None) == (421, "host not allowed")


def _req(port: int, path: str, method: str = "GET", host: str | None = None,
         token: str | None = None, body: bytes | None = None) -> tuple[int, str]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, data=body)
    if host:
        req.add_header("Host", host)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.mark.integration
def test_views_beyond_loopback_need_the_token(broker, worker_factory):
    worker = worker_factory(DISTILLWATCH_WEB_HOST="0.0.0.0", DISTILLWATCH_WEB_TOKEN=TOKEN,
                            DISTILLWATCH_WEB_ALLOWED_HOSTS="dw.internal").start()
    port = int(worker.env["DISTILLWATCH_WEB_PORT"])
    worker.wait_log("partitions_assigned", timeout=45)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _req(port, "/ready")[0] != 200:
        time.sleep(0.3)
    assert _req(port, "/health")[0] == 200  # probes need no token
    for path in ("/alerts.json", "/alerts/", "/metrics", "/accounts/a1/", "/actions.json"):
        assert _req(port, path)[0] == 401, path
        assert _req(port, path, token="wrong-token-wrong-token")[0] == 401, path
    assert _req(port, "/alerts.json", token=TOKEN)[0] == 200
    assert _req(port, "/alerts.json", host="dw.internal:6066", token=TOKEN)[0] == 200
    assert _req(port, "/alerts.json", host="attacker.example", token=TOKEN)[0] == 421
    # approvals: never by GET, not without the token
    assert _req(port, "/actions/" + "0" * 32 + "/approve", token=TOKEN)[0] == 405
    assert _req(port, "/actions/" + "0" * 32 + "/approve", method="POST", body=b"{}")[0] == 401
    worker.stop()
    log = worker.log_path.read_text()
    assert TOKEN not in log
    assert "web_request_refused" in log


def test_compose_wires_the_token_from_an_env_file():
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parent.parent
    worker = yaml.safe_load((root / "docker" / "compose.yaml").read_text())["services"]["worker"]
    assert worker["environment"]["DISTILLWATCH_WEB_HOST"] == "0.0.0.0"
    assert "DISTILLWATCH_WEB_TOKEN" not in worker["environment"]  # never in the file itself
    assert worker["env_file"] == ["distillwatch.env"]
    example = (root / "docker" / "distillwatch.env.example").read_text()
    assert "DISTILLWATCH_WEB_TOKEN=" in example and "openssl rand" in example
    assert "docker/distillwatch.env" in (root / ".gitignore").read_text()
