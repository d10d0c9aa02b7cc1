"""Alert records and a recording HTTP target for the on-call tests: the
forwarder posts to a real local server that answers with scripted status
codes and keeps every request."""

from __future__ import annotations

import http.server
import json

from detectors.alerts import Alert

T0 = 1771840800.0


def record(account="acct-1", status="firing", severity="error", score=0.93, start=T0,
           ts=None, detector="account"):
    alert = Alert(detector=detector, status=status, severity=severity, score=score,
                  ts=ts or start + 60, episode_start=start,
                  summary=f"{account}: distillation score {score}",
                  details={"reasons": ["template", "elicitation"], "rate_per_min": 300.0,
                           "top_topics": [["math/proofs", 1.0]]},
                  account_id=account)
    return alert.to_record(emitted_at=T0 + 61)


class Recorder(http.server.ThreadingHTTPServer):
    """Answers each POST with the next scripted status (then 202) and keeps it."""

    def __init__(self, answers=()):
        self.requests: list[dict] = []
        self.answers = list(answers)  # status codes to answer first, then 202
        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}/v2/enqueue"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the forwarder's start-up check (Alertmanager /-/ready)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"OK")

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        server: Recorder = self.server  # type: ignore[assignment]
        status = server.answers.pop(0) if server.answers else 202
        server.requests.append({"status": status, "body": json.loads(body),
                                "headers": dict(self.headers)})
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b'{"status":"success"}')

    def log_message(self, *args):
        pass
