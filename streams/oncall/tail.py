"""``distillwatch tail``: follow the alerts topic with readable lines."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from typing import Any

import orjson

from detectors.alerts import SEVERITIES
from streams.errors import ConfigError
from streams.oncall.render import MEMBER_DETECTORS, alert_line, campaign_of, incident_of
from streams.settings import Settings

SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}


def matches(record: dict[str, Any], severity: str | None, account: str | None,
            campaign: str | None = None, members: bool = True) -> bool:
    if campaign and campaign_of(record) != campaign:
        return False
    if not members and record.get("detector") in MEMBER_DETECTORS and not account \
            and not campaign:
        return False
    if severity and SEVERITY_RANK.get(record.get("severity", ""), -1) < SEVERITY_RANK[severity]:
        return False
    if account:
        listed = record.get("accounts") or []
        if record.get("account_id") != account and account not in listed:
            return False
    return True


def cmd_tail(args: argparse.Namespace) -> int:
    from kafka import KafkaConsumer

    from streams.service.topics import kafka_python_security

    settings = Settings.load({"broker": args.broker})
    if not settings.broker:
        raise ConfigError("tail needs --broker kafka://HOST:PORT (or DISTILLWATCH_BROKER)")
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    consumer = KafkaConsumer(
        settings.alerts_topic, bootstrap_servers=settings.bootstrap_servers, group_id=None,
        auto_offset_reset="earliest" if args.from_beginning else "latest",
        consumer_timeout_ms=300, **kafka_python_security(settings),
    )
    colour = sys.stdout.isatty() and not args.no_colour
    shown = 0
    deadline = time.monotonic() + args.duration if args.duration else None
    try:
        while not stop["now"] and (deadline is None or time.monotonic() < deadline):
            for message in consumer:
                try:
                    record = orjson.loads(message.value)
                except orjson.JSONDecodeError:
                    print(f"(unreadable message at offset {message.offset})", file=sys.stderr)
                    continue
                if not isinstance(record, dict) or not matches(
                        record, args.severity, args.account, args.campaign,
                        args.members or args.json):
                    continue
                if args.json:
                    line = orjson.dumps(record).decode()
                else:
                    # records of another incident (a campaign's members and the
                    # account alerts naming it, an account that joined a page)
                    # indent under it, tagged with it; campaign members are
                    # folded into the campaign line's count unless --members
                    line = alert_line(record, colour)
                    if incident_of(record) != record.get("dedup_key") or (
                            campaign_of(record) and record.get("detector") != "campaign"):
                        line = "    " + line
                print(line, flush=True)
                shown += 1
                if args.max and shown >= args.max:
                    return 0
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``distillwatch tail`` (the command table: streams/cli.py)."""
    p.add_argument("--broker", help="kafka://HOST:PORT (env DISTILLWATCH_BROKER)")
    p.add_argument("--severity", choices=tuple(SEVERITY_RANK),
                   help="show this severity and above")
    p.add_argument("--account", help="only alerts about this account (or listing it)")
    p.add_argument("--campaign", help="only one campaign's records (its id, c-...)")
    p.add_argument("--members", action="store_true",
                   help="also one line per member record (default: a campaign line counts "
                        "its members; --account, --campaign and --json show them)")
    p.add_argument("--json", action="store_true", help="raw JSON lines")
    p.add_argument("--from-beginning", action="store_true", help="start at the oldest alert")
    p.add_argument("--no-colour", action="store_true")
    p.add_argument("--max", type=int, default=0, help="stop after N alerts")
    p.add_argument("--duration", type=float, default=0.0, help="stop after S seconds")
    p.set_defaults(func=cmd_tail)
