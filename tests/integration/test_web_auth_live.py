"""The operator surface: beyond loopback only with a token; a Host allowlist;
changes only by POST with the token; the token never logged.

Here the parts on real servers or subprocesses; the pure ones: tests/unit/test_web_auth.py."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

TOKEN = "t0ken-for-tests-" + "9f" * 12


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
