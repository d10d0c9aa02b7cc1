"""``distillwatch indicators export|publish|pull|import``: share indicators of
distillation campaigns with other providers (STIX 2.1 over TAXII 2.1), and
load what they share into the watchlist the detectors consult.

- ``export``: firing alerts (the alerts topic, ``--broker``, or a replay's
  alert file, ``--alerts``) to a STIX 2.1 bundle (streams/response/sharing.py), which
  must pass ``stix2-validator`` before it is written;
- ``publish``: a bundle to a TAXII 2.1 collection (``taxii2-client``);
- ``pull``: new objects of a collection (``added_after`` cursor kept in
  ``--state``) into the watchlist topic, or a JSONL file (``--out``);
- ``import``: a bundle file into the watchlist topic (or ``--out``).

The community key (``DISTILLWATCH_SHARING_KEY``) hashes payment, client and
template fingerprints; it is the same at every member and never logged.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from detectors.response import parse_ts
from detectors.watchlist import Watchlist
from streams.errors import ConfigError, DistillwatchError
from streams.settings import Settings


class InvalidBundle(DistillwatchError):
    """stix2-validator rejected the bundle, so nothing was written or sent.
    The message lists the validator's errors; this is a bug in distillwatch's
    export (or a hand-edited file): report it with the alert that caused it."""


class SharingKeyMissing(ConfigError):
    """Exporting or matching hashed fingerprints needs the sharing
    community's key: set ``DISTILLWATCH_SHARING_KEY`` (the same secret at every
    member, e.g. from ``openssl rand -hex 32``) and ``DISTILLWATCH_SHARING_KEY_ID``
    (a name for it, so a rotation can be told apart)."""


def community_key(settings: Settings) -> bytes:
    key = settings.sharing_key.get_secret_value()
    if len(key) < 16:
        raise SharingKeyMissing("set DISTILLWATCH_SHARING_KEY (at least 16 characters) "
                                "to hash fingerprints for the sharing community")
    return key.encode()


def watchlist_for(settings: Settings) -> Watchlist:
    """An empty watchlist holding the community key, weighted by the
    ``[sharing]`` table of the detector TOML (``weight``, ``cap``)."""
    key = settings.sharing_key.get_secret_value()
    table = settings.detector_mapping().get("sharing") or {}
    unknown = set(table) - {"weight", "cap"}
    if unknown:
        raise ConfigError(f"unknown key(s) in [sharing]: {sorted(unknown)}; allowed: cap, weight")
    try:
        return Watchlist({settings.sharing_key_id: key.encode()} if key else {},
                         weight=float(table.get("weight", 1.0)), cap=float(table.get("cap", 2.0)))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[sharing]: {exc}") from None


def parse_since(text: str | None, now: float) -> float | None:
    """``2026-02-23T10:00:00Z`` or a duration back from now: ``90m``, ``24h``, ``7d``.

    >>> parse_since("2h", 10_000.0), parse_since(None, 0.0)
    (2800.0, None)
    """
    if not text:
        return None
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd])", text.strip())
    if m:
        return now - float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    try:
        return parse_ts(text)
    except ValueError:
        raise ConfigError(f"--since: expected RFC 3339 time or 90m/24h/7d, got {text!r}") \
            from None


def read_alert_file(path: str) -> list[dict[str, Any]]:
    out = []
    with open(path, "rb") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                raise ConfigError(f"{path}:{n}: not a JSON alert record") from None
            if isinstance(record, dict):
                out.append(record)
    return out


def validate_bundle(text: str) -> None:
    from stix2validator import ValidationOptions, validate_string  # type: ignore[import-untyped]

    result = validate_string(text, ValidationOptions(version="2.1"))
    if not result.is_valid:
        parts = getattr(result, "object_results", None) or [result]
        errors = [f"{getattr(r, 'object_id', '')}: {e}" for r in parts for e in r.errors]
        raise InvalidBundle("stix2-validator: " + "; ".join(errors[:20]))


def export_bundle(alerts: Iterable[Mapping[str, Any]], settings: Settings, *,
                  tlp: str = "amber", since: float | None = None,
                  valid_days: float = 30.0) -> str:
    """The validated bundle as JSON text."""
    from streams.response.sharing import build_bundle

    bundle = build_bundle(alerts, key=community_key(settings), key_id=settings.sharing_key_id,
                          tlp=tlp, since=since, valid_days=valid_days,
                          producer=settings.app_id)
    text: str = bundle.serialize(pretty=True)
    validate_bundle(text)
    return text


PULLED_TYPES = "indicator,marking-definition,campaign,relationship,identity"


def _collection(url: str, collection: str, user: str | None) -> Any:
    from taxii2client.v21 import Collection  # type: ignore[import-untyped]

    password = os.environ.get("DISTILLWATCH_TAXII_PASSWORD")
    base = url if url.endswith("/") else url + "/"
    return Collection(f"{base}collections/{collection}/", user=user, password=password)


def publish(bundle: Mapping[str, Any], url: str, collection: str,
            user: str | None = None) -> dict[str, Any]:
    """Add the bundle's objects to a TAXII 2.1 collection; the final status."""
    col = _collection(url, collection, user)
    status = col.add_objects(orjson.dumps(dict(bundle)).decode(), wait_for_completion=True,
                             poll_interval=0.5, timeout=60)
    return {"status": status.status, "success_count": status.success_count,
            "failure_count": status.failure_count, "pending_count": status.pending_count}


def pull(url: str, collection: str, cursor: str | None = None,
         user: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """Objects added after ``cursor`` (every page, following ``next``) and the
    new cursor: the last page's ``X-TAXII-Date-Added-Last`` header, as TAXII
    2.1 recommends (taxii2-client's session, whose answers drop headers)."""
    col = _collection(url, collection, user)
    session = col._conn.session
    # an explicit limit: medallion 3.0 answers 500 to a "next" without one
    params: dict[str, str] = {"match[type]": PULLED_TYPES, "limit": "100"}
    if cursor:
        params["added_after"] = cursor
    newest = cursor
    objects: list[dict[str, Any]] = []
    for _ in range(10_000):  # pages; a server that never ends its "more" is cut off
        resp = session.get(col.objects_url, params=params,
                           headers={"Accept": "application/taxii+json;version=2.1"},
                           timeout=60)
        resp.raise_for_status()
        page = resp.json() if resp.content else {}
        objects.extend(page.get("objects", []))
        newest = resp.headers.get("X-TAXII-Date-Added-Last") or newest
        if not page.get("more") or not page.get("next"):
            break
        params["next"] = str(page["next"])
    return objects, newest


def write_watchlist(settings: Settings, records: list[dict[str, Any]]) -> None:
    """Upsert (or, for revoked indicators, delete) watchlist topic entries."""
    from kafka import KafkaProducer  # type: ignore[import-untyped]

    from streams.service.topics import ensure_topics, kafka_python_security

    ensure_topics(settings)
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all",
                             **kafka_python_security(settings))
    try:
        for r in records:
            producer.send(settings.watchlist_topic, key=str(r["id"]).encode(),
                          value=None if r.get("revoked") else orjson.dumps(r))
        producer.flush(30)
    finally:
        producer.close()


def read_watchlist(settings: Settings) -> list[dict[str, Any]]:
    """The watchlist topic's current entries (latest per key, tombstones applied)."""
    from kafka import KafkaConsumer, TopicPartition

    from streams.service.topics import kafka_python_security

    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=None,
                             enable_auto_commit=False, **kafka_python_security(settings))
    latest: dict[bytes, dict[str, Any] | None] = {}
    try:
        parts = consumer.partitions_for_topic(settings.watchlist_topic) or set()
        tps = [TopicPartition(settings.watchlist_topic, p) for p in sorted(parts)]
        if not tps:
            return []
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        deadline = time.monotonic() + 15.0
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise DistillwatchError("reading the watchlist topic timed out")
            for batch in consumer.poll(timeout_ms=500).values():
                for m in batch:
                    if m.key is None:
                        continue
                    try:
                        value = orjson.loads(m.value) if m.value is not None else None
                    except orjson.JSONDecodeError:
                        continue  # not an entry: the worker logs entries vs usable
                    latest[m.key] = value if isinstance(value, dict) else None
    finally:
        consumer.close()
    return [v for v in latest.values() if v is not None]


def load_watchlist_file(path: str) -> list[dict[str, Any]]:
    """Watchlist records from a JSONL file (``pull --out``) or a STIX bundle."""
    from streams.response.sharing import watchlist_records

    text = Path(path).read_text()
    stripped = text.lstrip()
    if stripped.startswith("{") and '"type"' in stripped[:200] and '"bundle"' in stripped[:400]:
        return watchlist_records(json.loads(text).get("objects", []))
    return [orjson.loads(line) for line in text.splitlines() if line.strip()]


def fill(watchlist: Watchlist, records: Iterable[Mapping[str, Any]]) -> int:
    return sum(1 for r in records if watchlist.upsert(r))


def _out_or_topic(args: argparse.Namespace, settings: Settings,
                  records: list[dict[str, Any]]) -> str:
    if args.out:
        with open(args.out, "wb") as fh:
            for r in records:
                fh.write(orjson.dumps(r) + b"\n")
        return str(args.out)
    if not settings.broker:
        raise ConfigError("give --broker kafka://HOST:PORT (the watchlist topic) or --out FILE")
    write_watchlist(settings, records)
    return settings.watchlist_topic


def cmd_indicators(args: argparse.Namespace) -> int:
    from streams.response.sharing import now_utc, watchlist_records

    settings = Settings.load({"broker": getattr(args, "broker", None)})
    if args.verb == "export":
        if bool(args.alerts) == bool(settings.broker):
            raise ConfigError("export reads either --alerts FILE or the alerts topic (--broker)")
        if args.alerts:
            alerts = read_alert_file(args.alerts)
        else:
            from streams.response.actions import read_records

            alerts = list(read_records(settings, settings.alerts_topic))
        text = export_bundle(alerts, settings, tlp=args.tlp,
                             since=parse_since(args.since, now_utc()),
                             valid_days=args.valid_days)
        Path(args.out).write_text(text)
        n = sum(1 for o in json.loads(text)["objects"] if o["type"] == "indicator")
        print(f"{n} indicators from {len(alerts)} alerts -> {args.out} (TLP:{args.tlp.upper()}, "
              "validated by stix2-validator)")
        return 0
    if args.verb == "publish":
        bundle = json.loads(Path(args.file).read_text())
        validate_bundle(json.dumps(bundle))
        status = publish(bundle, args.taxii, args.collection, args.user)
        print(f"published {len(bundle.get('objects', []))} objects to {args.collection}: "
              f"{status}")
        return 0 if status["failure_count"] == 0 else 1
    if args.verb == "pull":
        state_path = Path(args.state) if args.state else None
        state = json.loads(state_path.read_text()) if state_path and state_path.exists() else {}
        where = f"{args.taxii}|{args.collection}"
        objects, cursor = pull(args.taxii, args.collection, state.get(where), args.user)
        records = watchlist_records(objects, now_utc())
        dest = _out_or_topic(args, settings, records)
        if state_path is not None and cursor:
            state[where] = cursor
            state_path.write_text(json.dumps(state, indent=1))
        print(f"pulled {len(objects)} objects, {len(records)} watchlist entries -> {dest} "
              f"(cursor {cursor})")
        return 0
    records = load_watchlist_file(args.file)
    dest = _out_or_topic(args, settings, records)
    print(f"imported {len(records)} watchlist entries -> {dest}")
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("indicators", help="share indicators (STIX 2.1 / TAXII 2.1) and "
                                                 "load others' into the watchlist")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    e = verbs.add_parser("export", help="firing alerts -> a validated STIX 2.1 bundle")
    e.add_argument("--out", required=True, metavar="FILE")
    e.add_argument("--alerts", metavar="FILE", help="a replay's alert file (JSONL)")
    e.add_argument("--broker", help="read the alerts topic instead")
    e.add_argument("--since", help="only alerts from then: RFC 3339, or 90m / 24h / 7d back")
    e.add_argument("--tlp", default="amber", choices=("clear", "green", "amber",
                                                      "amber+strict", "red"))
    e.add_argument("--valid-days", type=float, default=30.0,
                   help="valid_until = last seen + this many days")
    for name, text in (("publish", "a bundle file -> a TAXII 2.1 collection"),
                       ("pull", "a TAXII 2.1 collection's new objects -> the watchlist")):
        v = verbs.add_parser(name, help=text)
        v.add_argument("--taxii", required=True, metavar="URL",
                       help="the API root, e.g. http://127.0.0.1:5000/api1/")
        v.add_argument("--collection", required=True, metavar="ID")
        v.add_argument("--user", help="basic-auth user (password: DISTILLWATCH_TAXII_PASSWORD)")
        if name == "publish":
            v.add_argument("file", metavar="FILE")
        else:
            v.add_argument("--state", metavar="FILE", help="keeps the added_after cursor")
            v.add_argument("--broker", help="kafka://HOST:PORT: write the watchlist topic")
            v.add_argument("--out", metavar="FILE", help="or write watchlist JSONL here")
    i = verbs.add_parser("import", help="a bundle file -> the watchlist")
    i.add_argument("file", metavar="FILE")
    i.add_argument("--broker", help="kafka://HOST:PORT: write the watchlist topic")
    i.add_argument("--out", metavar="FILE", help="or write watchlist JSONL here")
    for v in (e, *[verbs.choices[n] for n in ("publish", "pull", "import")]):
        v.set_defaults(func=cmd_indicators)
