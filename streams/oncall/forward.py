"""``distillwatch forward``: deliver alerts to PagerDuty, Alertmanager or a
webhook.

Delivery is at-least-once with duplicates suppressed: the consumer commits an
alert's offset only after the target accepted it (or after a per-alert
rejection has been written to the forwarder's dead-letter topic), and alert
ids already delivered by this process are not sent again. A crash between
delivery and commit re-sends that alert once after restart; the targets
deduplicate it (PagerDuty by ``dedup_key``, Alertmanager by labels, webhooks
get an ``Idempotency-Key: <alert_id>`` header).

What each answer means (issue 21: a base Alertmanager URL answered 405 to
every alert, and all 913 alerts were skipped as "rejected" and committed):

* 2xx: delivered.
* 400, 413, 422: *this alert* was refused. It goes to the dead-letter topic
  ``<alerts topic>-forward-dlq`` with the answer, and delivery goes on.
* 408, 425, 429, 5xx, network errors: retried with backoff, forever.
* any other 4xx (401, 403, 404, 405, ...) or a redirect: the URL or the
  credentials are wrong, and would be for every alert. Delivery stops at once,
  the alert is not committed, and the process exits with status 3
  (:class:`TargetMisconfigured`), so a rerun with the right URL delivers it.

At start the target is checked (Alertmanager: ``/-/ready`` and an empty
``POST`` to the alerts URL; PagerDuty: a ``resolve`` for a key that names no
incident; a webhook: ``--probe-url`` when given, else a TCP connection), and a
wrong URL or key refuses to start with the same status 3.
"""

from __future__ import annotations

import argparse
import base64
import http.server
import os
import random
import signal
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import orjson
import structlog

from streams.errors import ConfigError, DistillwatchError
from streams.oncall.mappings import alertmanager_alert, is_member_record, pagerduty_event
from streams.settings import SecretStr, Settings

log = structlog.get_logger("distillwatch.forward")
TARGETS = ("pagerduty", "alertmanager", "webhook")
#: the target refused this one alert: dead-letter it and go on
PER_ALERT = frozenset({400, 413, 422})
#: worth retrying (besides 5xx)
TRANSIENT = frozenset({408, 425, 429})
ALERTMANAGER_PATH = "/api/v2/alerts"
#: exit status when the target's URL or credentials are wrong
EXIT_MISCONFIGURED = 3
PROBE_DEDUP_KEY = "distillwatch-forward-probe"


class DeliveryRejected(Exception):
    """The target refused this alert for good (400, 413, 422)."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}: {body[:200]!r}")
        self.status = status
        self.body = body[:1000]


class TargetMisconfigured(DistillwatchError):
    """The target answered in a way that fails every alert alike (401, 403,
    404, 405, another 4xx, or a redirect): the URL, its path or the
    credentials are wrong. Nothing was committed past the alert in hand; fix
    ``--url`` (for Alertmanager the base URL, e.g. ``http://alertmanager:9093``,
    is enough) or the key (``DISTILLWATCH_PAGERDUTY_ROUTING_KEY``,
    ``DISTILLWATCH_FORWARD_AUTHORIZATION``) and start again: delivery resumes
    at that alert."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # urllib turns a redirected POST into a GET without the body, which an
    # Alertmanager answers 200: the alert would be "delivered" to nowhere
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def redact_url(url: str) -> str:
    """The URL without userinfo or query (they may hold credentials).

    >>> redact_url("https://user:pw@hooks.example.com/x?token=abc")
    'https://hooks.example.com/x'
    """
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def complete_url(target: str, url: str) -> str:
    """The URL to POST alerts to: an Alertmanager base URL (no path, as
    Prometheus and amtool name it) gets ``/api/v2/alerts``.

    >>> complete_url("alertmanager", "http://am:9093")
    'http://am:9093/api/v2/alerts'
    >>> complete_url("alertmanager", "http://am:9093/api/v2/alerts")
    'http://am:9093/api/v2/alerts'
    >>> complete_url("webhook", "http://hooks:80")
    'http://hooks:80'
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"--url must be an http(s) URL, got {redact_url(url)!r}")
    if target == "alertmanager" and parts.path in ("", "/"):
        return urllib.parse.urlunsplit(parts._replace(path=ALERTMANAGER_PATH))
    return url


class Forwarder:
    """Turns alert records into HTTP deliveries with retry and dedup."""

    def __init__(self, target: str, url: str, routing_key: SecretStr | None = None,
                 timeout_s: float = 10.0, max_backoff_s: float = 30.0,
                 sleep: Callable[[float], None] = time.sleep,
                 stop: threading.Event | None = None, remember: int = 100_000,
                 alert_url: str = "", authorization: SecretStr | None = None,
                 members: bool | None = None) -> None:
        if target not in TARGETS:
            raise ConfigError(f"--to must be one of {TARGETS}, got {target!r}")
        if target == "pagerduty" and not routing_key:
            raise ConfigError("--to pagerduty needs --routing-key (or "
                              "DISTILLWATCH_PAGERDUTY_ROUTING_KEY)")
        self.target = target
        self.url = complete_url(target, url)
        if self.url != url:
            log.info("alertmanager_url_completed", given=redact_url(url),
                     url=redact_url(self.url),
                     note=f"no path given: alerts go to {ALERTMANAGER_PATH}")
        self.routing_key = routing_key
        self.authorization = authorization
        self.timeout_s = timeout_s
        self.max_backoff_s = max_backoff_s
        self.sleep = sleep
        self.stop = stop or threading.Event()
        self.remember = remember
        self.alert_url = alert_url
        # member records are one per account: an incident each in PagerDuty
        # and Alertmanager, which group by dedup_key / labels; the campaign
        # record is the incident. Webhooks (enforcement tooling) get them.
        self.members = (target == "webhook") if members is None else members
        self.delivered: OrderedDict[str, None] = OrderedDict()
        self.counts = {"delivered": 0, "duplicates": 0, "rejected": 0, "retries": 0,
                       "dead_lettered": 0, "misconfigured": 0}

    def payload(self, record: dict[str, Any]) -> Any:
        link = (f"{self.alert_url.rstrip('/')}/accounts/{record['account_id']}/"
                if self.alert_url and record.get("account_id") else None)
        if self.target == "pagerduty":
            assert self.routing_key is not None
            return pagerduty_event(record, self.routing_key.get_secret_value(), link)
        if self.target == "alertmanager":
            return [alertmanager_alert(record, link or "")]
        return record

    # -- start-up check ---------------------------------------------------------
    def probe(self, probe_url: str = "", wait_s: float = 30.0) -> str:
        """Check the target before consuming anything. Raises
        :class:`TargetMisconfigured` on a wrong URL or key; retries network
        errors and 5xx for ``wait_s``. Returns what was checked."""
        deadline = time.monotonic() + wait_s
        delay = 0.5
        while True:
            try:
                return self._probe_once(probe_url)
            except (urllib.error.URLError, OSError, TimeoutError, _Transient) as exc:
                if time.monotonic() >= deadline or self.stop.is_set():
                    raise TargetMisconfigured(
                        f"{self.target} at {redact_url(self.url)} did not answer the start-up "
                        f"check within {wait_s:.0f}s: {exc}") from None
                log.warning("forward_probe_retry", target=self.target,
                            url=redact_url(self.url), error=str(exc)[:200])
                self.sleep(delay)
                delay = min(5.0, delay * 2)

    def _probe_once(self, probe_url: str) -> str:
        if self.target == "alertmanager":
            parts = urllib.parse.urlsplit(self.url)
            base = parts.path[: -len(ALERTMANAGER_PATH)] if parts.path.endswith(
                ALERTMANAGER_PATH) else ""
            ready = urllib.parse.urlunsplit(parts._replace(path=base + "/-/ready", query=""))
            checked = "GET /-/ready and an empty POST of the alerts URL"
            try:
                self._request(ready, None, method="GET")
            except TargetMisconfigured as exc:
                if exc.status != 404:
                    raise
                # a proxy may expose the API only: the POST below decides
                log.warning("alertmanager_ready_not_found", url=redact_url(ready))
                checked = "an empty POST of the alerts URL (/-/ready not found)"
            # an empty list is a valid request that creates nothing: it proves
            # the alerts path and the credentials
            self._request(self.url, b"[]")
            return checked
        if self.target == "pagerduty":
            assert self.routing_key is not None
            body = orjson.dumps({"routing_key": self.routing_key.get_secret_value(),
                                 "event_action": "resolve", "dedup_key": PROBE_DEDUP_KEY})
            try:
                self._request(self.url, body)
            except DeliveryRejected as exc:
                # our probe is well formed: a 400 means the key was refused
                raise TargetMisconfigured(
                    f"pagerduty refused the routing key at {redact_url(self.url)}: "
                    f"{exc}", exc.status) from None
            return f"a resolve event for dedup_key {PROBE_DEDUP_KEY}"
        if probe_url:
            self._request(probe_url, None, method="GET")
            return f"GET {redact_url(probe_url)}"
        parts = urllib.parse.urlsplit(self.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        with socket.create_connection((parts.hostname or "", port), timeout=self.timeout_s):
            pass
        return "a TCP connection (no --probe-url)"

    # -- delivery -------------------------------------------------------------
    def handle(self, record: dict[str, Any]) -> bool:
        """Deliver one alert. Returns False only when stopped before delivery;
        raises :class:`DeliveryRejected` (this alert refused) or
        :class:`TargetMisconfigured` (every alert would be)."""
        alert_id = str(record.get("alert_id", ""))
        if not self.members and is_member_record(record):
            self.counts["skipped_members"] = self.counts.get("skipped_members", 0) + 1
            return True
        if alert_id and alert_id in self.delivered:
            self.counts["duplicates"] += 1
            return True
        body = orjson.dumps(self.payload(record))
        delay = 0.5
        while not self.stop.is_set():
            try:
                self._request(self.url, body, alert_id=alert_id)
            except DeliveryRejected as exc:
                self.counts["rejected"] += 1
                log.error("delivery_rejected", target=self.target, alert_id=alert_id,
                          status=exc.status, reason=str(exc))
                raise
            except TargetMisconfigured:
                self.counts["misconfigured"] += 1
                raise
            except (urllib.error.URLError, OSError, TimeoutError, _Transient) as exc:
                self.counts["retries"] += 1
                log.warning("delivery_retry", target=self.target, alert_id=alert_id,
                            error=str(exc)[:200], retry_in_s=round(delay, 2))
                self.sleep(delay * (0.8 + 0.4 * random.random()))
                delay = min(self.max_backoff_s, delay * 2)
                continue
            self._remember(alert_id)
            self.counts["delivered"] += 1
            log.info("alert_delivered", target=self.target, alert_id=alert_id,
                     dedup_key=record.get("dedup_key"), status=record.get("status"))
            return True
        return False

    def _remember(self, alert_id: str) -> None:
        if not alert_id:
            return
        self.delivered[alert_id] = None
        while len(self.delivered) > self.remember:
            self.delivered.popitem(last=False)

    def _request(self, url: str, body: bytes | None, method: str = "POST",
                 alert_id: str = "") -> None:
        headers = {"User-Agent": "distillwatch-forward"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if alert_id:
            headers["Idempotency-Key"] = alert_id
        if self.authorization:
            headers["Authorization"] = self.authorization.get_secret_value()
        request = urllib.request.Request(url, data=body, headers=headers, method=method)
        try:
            with _opener.open(request, timeout=self.timeout_s) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            status = exc.code
            answer = exc.read()[:1000] if exc.fp is not None else b""
            if status in PER_ALERT and method == "POST":
                raise DeliveryRejected(status, answer) from None
            if status in TRANSIENT or status >= 500:
                raise _Transient(f"HTTP {status}: {answer[:200]!r}") from None
            where = redact_url(url)
            if 300 <= status < 400:
                moved = redact_url(exc.headers.get("Location", "") or "")
                raise TargetMisconfigured(
                    f"{method} {where} redirects ({status}) to {moved or '?'}: put the final "
                    "URL in --url", status) from None
            raise TargetMisconfigured(
                f"{method} {where} answered HTTP {status} ({_meaning(status)}): "
                f"{answer[:200]!r}", status) from None


class _Transient(Exception):
    """A 5xx, 408, 425 or 429: retried."""


def _meaning(status: int) -> str:
    return {401: "the credentials are missing or wrong",
            403: "the credentials may not post here",
            404: "no such path: check --url",
            405: "this URL does not accept POST: check --url "
                 "(for Alertmanager the base URL or .../api/v2/alerts)"}.get(
        status, "the request is wrong for every alert alike")


class ForwardDeadLetters:
    """Alerts a target refused (or records that are not alerts) on the
    forwarder's dead-letter topic, acknowledged before their offset is
    committed."""

    def __init__(self, producer: Any, topic: str, target: str, url: str) -> None:
        self.producer = producer
        self.topic = topic
        self.target = target
        self.url = redact_url(url)

    def send(self, message: Any, reason: str, status: int | None = None,
             answer: bytes = b"") -> None:
        record = {
            "reason": reason,
            "target": self.target,
            "url": self.url,
            "status": status,
            "answer": answer[:1000].decode("utf-8", "replace"),
            "source": {"topic": message.topic, "partition": message.partition,
                       "offset": message.offset},
            "key_b64": None if message.key is None else base64.b64encode(message.key).decode(),
            "value_b64": None if message.value is None
            else base64.b64encode(message.value).decode(),
            "received_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        self.producer.send(self.topic, key=message.key, value=orjson.dumps(record)).get(
            timeout=30)


def serve_metrics(port: int, forwarder: Forwarder) -> http.server.ThreadingHTTPServer:
    """``GET /metrics`` on loopback: the forwarder's counters (Prometheus text)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path != "/metrics":
                self.send_response(404)
                self.end_headers()
                return
            lines = []
            for name, value in forwarder.counts.items():
                metric = f"distillwatch_forward_{name}_total"
                lines += [f"# TYPE {metric} counter", f"{metric} {value}"]
            body = ("\n".join(lines) + "\n").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, name="forward-metrics", daemon=True).start()
    return server


def cmd_forward(args: argparse.Namespace) -> int:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    from streams.logs import configure_logging
    from streams.service.topics import kafka_python_security

    settings = Settings.load({"broker": args.broker, "alerts_topic": args.topic})
    configure_logging(settings.log_format, settings.log_level)
    if not settings.broker:
        raise ConfigError("forward needs --broker kafka://HOST:PORT (or DISTILLWATCH_BROKER)")
    key = args.routing_key or os.environ.get("DISTILLWATCH_PAGERDUTY_ROUTING_KEY", "")
    auth = os.environ.get("DISTILLWATCH_FORWARD_AUTHORIZATION", "")
    stop = threading.Event()
    forwarder = Forwarder(args.to, args.url, SecretStr(key) if key else None, stop=stop,
                          alert_url=args.link_base or "", members=args.members,
                          authorization=SecretStr(auth) if auth else None)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    metrics = serve_metrics(args.metrics_port, forwarder) if args.metrics_port else None
    try:
        checked = forwarder.probe(args.probe_url or "", wait_s=args.probe_timeout)
    except TargetMisconfigured as exc:
        log.error("forward_misconfigured", target=args.to, url=redact_url(forwarder.url),
                  status=exc.status, error=str(exc), phase="start-up check")
        print(f"distillwatch forward: refusing to start: {exc}", flush=True)
        return EXIT_MISCONFIGURED
    log.info("forward_target_ok", target=args.to, url=redact_url(forwarder.url), checked=checked)
    dlq_topic = args.dlq_topic or f"{settings.alerts_topic}-forward-dlq"
    security = kafka_python_security(settings)
    consumer = KafkaConsumer(
        settings.alerts_topic, bootstrap_servers=settings.bootstrap_servers,
        group_id=args.group or f"distillwatch-forward-{args.to}", enable_auto_commit=False,
        auto_offset_reset="earliest", consumer_timeout_ms=500, **security,
    )
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, **security)
    dead = ForwardDeadLetters(producer, dlq_topic, args.to, forwarder.url)
    log.info("forward_started", target=args.to, topic=settings.alerts_topic, dlq_topic=dlq_topic)
    deadline = time.monotonic() + args.duration if args.duration else None
    status = 0
    try:
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            for message in consumer:
                try:
                    record = orjson.loads(message.value)
                    if not isinstance(record, dict) or "dedup_key" not in record:
                        raise ValueError("not an alert record")
                except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
                    log.error("alert_unreadable", offset=message.offset, reason=str(exc)[:200])
                    dead.send(message, f"unreadable: {str(exc)[:200]}")
                    forwarder.counts["dead_lettered"] += 1
                    record = None
                if record is not None:
                    try:
                        if not forwarder.handle(record):
                            break  # stopping: leave this alert uncommitted
                    except DeliveryRejected as exc:
                        dead.send(message, f"rejected by {args.to}: HTTP {exc.status}",
                                  exc.status, exc.body)
                        forwarder.counts["dead_lettered"] += 1
                tp = TopicPartition(message.topic, message.partition)
                consumer.commit({tp: OffsetAndMetadata(message.offset + 1, None, -1)})
                if stop.is_set():
                    break
    except TargetMisconfigured as exc:
        log.error("forward_misconfigured", target=args.to, url=redact_url(forwarder.url),
                  status=exc.status, error=str(exc), phase="delivery",
                  note="delivery stopped; the alert in hand and all after it are uncommitted")
        print(f"distillwatch forward: stopped, nothing committed past the failing alert: {exc}",
              flush=True)
        status = EXIT_MISCONFIGURED
    finally:
        consumer.close(autocommit=False)
        producer.close(5)
        if metrics is not None:
            metrics.shutdown()
        log.info("forward_stopped", exit_status=status, **forwarder.counts)
    return status


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("forward", help="deliver alerts to PagerDuty/Alertmanager/webhook")
    p.add_argument("--to", required=True, choices=TARGETS)
    p.add_argument("--url", required=True,
                   help="e.g. https://events.pagerduty.com/v2/enqueue, "
                        "http://alertmanager:9093 (the alerts path is added), "
                        "or any webhook URL")
    p.add_argument("--broker", help="kafka://HOST:PORT (env DISTILLWATCH_BROKER)")
    p.add_argument("--topic", help="alerts topic (default from settings)")
    p.add_argument("--routing-key", help="PagerDuty integration key "
                   "(better: env DISTILLWATCH_PAGERDUTY_ROUTING_KEY)")
    p.add_argument("--group", help="consumer group (default distillwatch-forward-<target>)")
    p.add_argument("--link-base", help="base URL of the worker's web views, for links")
    p.add_argument("--dlq-topic", help="where refused alerts go "
                   "(default <alerts topic>-forward-dlq)")
    p.add_argument("--probe-url", help="webhook only: a URL that must answer GET with 2xx "
                   "before delivery starts (default: a TCP connection to --url's host)")
    p.add_argument("--probe-timeout", type=float, default=30.0,
                   help="seconds the start-up check retries an unreachable target")
    p.add_argument("--metrics-port", type=int, default=0,
                   help="serve the forwarder's counters on 127.0.0.1:PORT/metrics")
    p.add_argument("--duration", type=float, default=0.0, help="stop after S seconds")
    p.add_argument("--members", action=argparse.BooleanOptionalAction, default=None,
                   help="also deliver member records (campaign_member, cluster_member; one "
                        "per account): default only to webhooks")
    p.set_defaults(func=cmd_forward)
