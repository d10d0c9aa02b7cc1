"""``distillwatch actions list|approve|reject``: operators decide proposed
response actions; every decision is an audit record on the actions topic.

The ledger is folded from the whole actions topic (a small, keyed, append-only
topic) by :class:`detectors.response.ActionLedger`, the same fold the
reference consumer (``distillwatch enforce``) and the web view use.
"""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from collections.abc import Iterator
from typing import Any

import orjson

from detectors.response import LIFT, ActionLedger, decide
from streams.errors import ConfigError, DistillwatchError
from streams.settings import Settings


class ActionNotFound(DistillwatchError):
    """No proposed action has this id on the actions topic. List the pending
    ones with ``distillwatch actions list`` (ids are 32 hex characters) and
    check ``--broker`` / ``DISTILLWATCH_ACTIONS_TOPIC``."""


class ActionAlreadyDecided(DistillwatchError):
    """The action was approved or rejected already; the first decision stands.
    ``distillwatch actions list --all`` shows who decided it, when and why."""


def read_records(settings: Settings, topic: str | None = None,
                 timeout_s: float = 15.0) -> Iterator[dict[str, Any]]:
    """Every JSON object on ``topic`` (default: the actions topic), from the
    start to the end offsets at call time, partition by partition in order."""
    from kafka import KafkaConsumer, TopicPartition  # type: ignore[import-untyped]

    from streams.service.topics import kafka_python_security

    if not settings.broker:
        raise ConfigError("needs --broker kafka://HOST:PORT (or DISTILLWATCH_BROKER)")
    name = topic or settings.actions_topic
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=None,
                             enable_auto_commit=False, consumer_timeout_ms=500,
                             **kafka_python_security(settings))
    try:
        parts = consumer.partitions_for_topic(name) or set()
        tps = [TopicPartition(name, p) for p in sorted(parts)]
        if not tps:
            return
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise DistillwatchError(f"reading {name} timed out after {timeout_s:.0f}s; "
                                        "is the broker reachable?")
            for batch in consumer.poll(timeout_ms=500).values():
                for message in batch:
                    if message.value is None:
                        continue
                    try:
                        record = orjson.loads(message.value)
                    except orjson.JSONDecodeError:
                        print(f"distillwatch: skipped an unreadable record on {name} "
                              f"(partition {message.partition}, offset {message.offset})",
                              file=sys.stderr)
                        continue
                    if isinstance(record, dict):
                        yield record
    finally:
        consumer.close()


def load_ledger(settings: Settings) -> ActionLedger:
    ledger = ActionLedger()
    for record in read_records(settings):
        ledger.apply(record)
    return ledger


def send_records(settings: Settings, records: list[dict[str, Any]],
                 topic: str | None = None) -> None:
    from kafka import KafkaProducer

    from streams.service.topics import kafka_python_security

    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all",
                             **kafka_python_security(settings))
    try:
        for record in records:
            producer.send(topic or settings.actions_topic,
                          key=str(record.get("subject", "")).encode(),
                          value=orjson.dumps(record))
        producer.flush(30)
    finally:
        producer.close()


def decide_on(settings: Settings, action_id: str, decision: str, principal: str,
              reason: str, now: float | None = None) -> dict[str, Any]:
    """Record a human decision on a pending action; returns the audit record."""
    if not reason.strip():
        raise ConfigError("a decision needs --reason (the audit record says why)")
    if not principal.strip():
        raise ConfigError("a decision needs a principal (--by NAME)")
    ledger = load_ledger(settings)
    proposal = ledger.proposals.get(action_id)
    if proposal is None:
        raise ActionNotFound(f"no proposed action {action_id!r} on {settings.actions_topic}")
    if action_id in ledger.decisions:
        prev = ledger.decisions[action_id]["data"]
        raise ActionAlreadyDecided(
            f"action {action_id} was {prev['decision']} by {prev['decided_by']['principal']} "
            f"at {prev['decided_at']}: {prev['reason']}")
    record = decide(proposal, decision, "human", principal[:200], reason,
                    time.time() if now is None else now)
    send_records(settings, [record])
    return record


def describe(proposal: dict[str, Any], ledger: ActionLedger) -> str:
    data = proposal["data"]
    scope = data.get("scope", {})
    count = scope.get("account_count") or len(scope.get("accounts") or [])
    what = data["action"]
    if what == "throttle":
        what += f" {data['params'].get('rate_per_min')}/min"
    elif what == LIFT:
        what += f" (alert {data.get('revokes_alert_id', '')[:12]}…)"
    target = f"{scope.get('kind')} {scope.get('id')}" + (
        f" ({count} accounts)" if scope.get("kind") == "cluster_members" else "")
    ev = (data.get("evidence") or [{}])[0]
    line = (f"{data['action_id']}  {ledger.status(data['action_id']):<8} {what:<28} "
            f"{target}  [{ev.get('detector')} {ev.get('severity')} {ev.get('score')}] "
            f"rule={data.get('rule')} mode={data.get('mode')}")
    decision = ledger.decisions.get(data["action_id"])
    if decision is not None:
        d = decision["data"]
        line += (f"\n    {d['decision']} by {d['decided_by']['kind']}:"
                 f"{d['decided_by']['principal']} at {d['decided_at']}: {d['reason']}")
    return line


def cmd_actions(args: argparse.Namespace) -> int:
    settings = Settings.load({"broker": args.broker})
    if args.verb == "list":
        ledger = load_ledger(settings)
        shown = list(ledger.proposals.values()) if args.all else ledger.pending()
        if args.json:
            for p in shown:
                out = dict(p)
                out["status"] = ledger.status(p["data"]["action_id"])
                print(orjson.dumps(out).decode())
            return 0
        if not shown:
            print("no pending actions" if not args.all else "no actions")
        for p in shown:
            print(describe(p, ledger))
        return 0
    decision = "approved" if args.verb == "approve" else "rejected"
    record = decide_on(settings, args.action_id, decision, args.by, args.reason)
    print(f"{args.action_id} {decision} by {args.by} ({record['data']['reason']})"
          + (f"; in force until {record['data']['effective_until']}"
             if "effective_until" in record["data"] else ""))
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("actions", help="list, approve or reject proposed response actions")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    for name, text in (("list", "pending actions (--all: every action and its decision)"),
                       ("approve", "approve a proposed action"),
                       ("reject", "reject a proposed action")):
        v = verbs.add_parser(name, help=text)
        v.add_argument("--broker", help="kafka://HOST:PORT (env DISTILLWATCH_BROKER)")
        if name == "list":
            v.add_argument("--all", action="store_true", help="decided actions too")
            v.add_argument("--json", action="store_true", help="one JSON record per line")
        else:
            v.add_argument("action_id", metavar="ID")
            v.add_argument("--reason", required=True, help="why (kept in the audit record)")
            v.add_argument("--by", default=_whoami(), help="who decides (default: $USER)")
        v.set_defaults(func=cmd_actions)


def _whoami() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "operator"
