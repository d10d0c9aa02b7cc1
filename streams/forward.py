"""``distillwatch forward``: deliver alerts to PagerDuty, Alertmanager or a
webhook.

Delivery is at-least-once with duplicates suppressed: the consumer commits an
alert's offset only after the target accepted it, and alert ids already
delivered by this process are not sent again. A crash between delivery and
commit re-sends that alert once after restart; the targets deduplicate it
(PagerDuty by ``dedup_key``, Alertmanager by labels, webhooks get an
``Idempotency-Key: <alert_id>`` header).
"""

from __future__ import annotations

import argparse
import random
import signal
import threading
import time
import urllib.error
import urllib.request
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import orjson
import structlog

from streams.errors import ConfigError
from streams.oncall import alertmanager_alert, is_member_record, pagerduty_event
from streams.settings import SecretStr, Settings

log = structlog.get_logger("distillwatch.forward")
TARGETS = ("pagerduty", "alertmanager", "webhook")
# Answers that will not get better by retrying: log, count, move on.
PERMANENT = {400, 401, 403, 404, 405, 413, 422}


class DeliveryRejected(Exception):
    """The target refused the alert for good (4xx other than 408/429)."""


class Forwarder:
    """Turns alert records into HTTP deliveries with retry and dedup."""

    def __init__(self, target: str, url: str, routing_key: SecretStr | None = None,
                 timeout_s: float = 10.0, max_backoff_s: float = 30.0,
                 sleep: Callable[[float], None] = time.sleep,
                 stop: threading.Event | None = None, remember: int = 100_000,
                 alert_url: str = "", members: bool | None = None) -> None:
        if target not in TARGETS:
            raise ConfigError(f"--to must be one of {TARGETS}, got {target!r}")
        if target == "pagerduty" and not routing_key:
            raise ConfigError("--to pagerduty needs --routing-key (or "
                              "DISTILLWATCH_PAGERDUTY_ROUTING_KEY)")
        self.target = target
        self.url = url
        self.routing_key = routing_key
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
        self.counts = {"delivered": 0, "duplicates": 0, "rejected": 0, "retries": 0}

    def payload(self, record: dict[str, Any]) -> Any:
        link = (f"{self.alert_url.rstrip('/')}/accounts/{record['account_id']}/"
                if self.alert_url and record.get("account_id") else None)
        if self.target == "pagerduty":
            assert self.routing_key is not None
            return pagerduty_event(record, self.routing_key.get_secret_value(), link)
        if self.target == "alertmanager":
            return [alertmanager_alert(record, link or "")]
        return record

    def handle(self, record: dict[str, Any]) -> bool:
        """Deliver one alert. Returns False only when stopped before delivery."""
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
                self._post(body, alert_id)
            except DeliveryRejected as exc:
                self.counts["rejected"] += 1
                log.error("delivery_rejected", target=self.target, alert_id=alert_id,
                          reason=str(exc))
                return True
            except (urllib.error.URLError, OSError, TimeoutError) as exc:
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

    def _post(self, body: bytes, alert_id: str) -> None:
        headers = {"Content-Type": "application/json", "User-Agent": "distillwatch-forward"}
        if alert_id:
            headers["Idempotency-Key"] = alert_id
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            if exc.code in PERMANENT:
                raise DeliveryRejected(f"HTTP {exc.code}: {exc.read()[:200]!r}") from None
            raise


def cmd_forward(args: argparse.Namespace) -> int:
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    from streams.logs import configure_logging
    from streams.topics import kafka_python_security

    settings = Settings.load({"broker": args.broker, "alerts_topic": args.topic})
    configure_logging(settings.log_format, settings.log_level)
    if not settings.broker:
        raise ConfigError("forward needs --broker kafka://HOST:PORT (or DISTILLWATCH_BROKER)")
    import os

    key = args.routing_key or os.environ.get("DISTILLWATCH_PAGERDUTY_ROUTING_KEY", "")
    stop = threading.Event()
    forwarder = Forwarder(args.to, args.url, SecretStr(key) if key else None, stop=stop,
                          alert_url=args.link_base or "", members=args.members)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    consumer = KafkaConsumer(
        settings.alerts_topic, bootstrap_servers=settings.bootstrap_servers,
        group_id=args.group or f"distillwatch-forward-{args.to}", enable_auto_commit=False,
        auto_offset_reset="earliest", consumer_timeout_ms=500,
        **kafka_python_security(settings),
    )
    log.info("forward_started", target=args.to, topic=settings.alerts_topic)
    deadline = time.monotonic() + args.duration if args.duration else None
    try:
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            for message in consumer:
                try:
                    record = orjson.loads(message.value)
                    if not isinstance(record, dict) or "dedup_key" not in record:
                        raise ValueError("not an alert record")
                except (orjson.JSONDecodeError, ValueError) as exc:
                    log.error("alert_unreadable", offset=message.offset, reason=str(exc)[:200])
                    record = None
                if record is not None and not forwarder.handle(record):
                    break  # stopping: leave this alert uncommitted
                tp = TopicPartition(message.topic, message.partition)
                consumer.commit({tp: OffsetAndMetadata(message.offset + 1, None, -1)})
                if stop.is_set():
                    break
    finally:
        consumer.close()
        log.info("forward_stopped", **forwarder.counts)
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("forward", help="deliver alerts to PagerDuty/Alertmanager/webhook")
    p.add_argument("--to", required=True, choices=TARGETS)
    p.add_argument("--url", required=True,
                   help="e.g. https://events.pagerduty.com/v2/enqueue, "
                        "http://alertmanager:9093/api/v2/alerts, or any webhook URL")
    p.add_argument("--broker", help="kafka://HOST:PORT (env DISTILLWATCH_BROKER)")
    p.add_argument("--topic", help="alerts topic (default from settings)")
    p.add_argument("--routing-key", help="PagerDuty integration key "
                   "(better: env DISTILLWATCH_PAGERDUTY_ROUTING_KEY)")
    p.add_argument("--group", help="consumer group (default distillwatch-forward-<target>)")
    p.add_argument("--link-base", help="base URL of the worker's web views, for links")
    p.add_argument("--duration", type=float, default=0.0, help="stop after S seconds")
    p.add_argument("--members", action=argparse.BooleanOptionalAction, default=None,
                   help="also deliver member records (campaign_member, cluster_member; one "
                        "per account): default only to webhooks")
    p.set_defaults(func=cmd_forward)
