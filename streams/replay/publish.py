"""``distillwatch publish``: republish historic logs into the events topic,
keyed by account, in the same merged event-time order replay uses, paced by
event time × a speed factor or as fast as possible."""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from detectors.schema import EVENT_FIELDS, Event
from streams.replay.logfiles import ReadStats, merged_events
from streams.replay.progress import Progress
from streams.settings import Settings


def event_payload(event: Event) -> dict[str, Any]:
    """The event as published: ``ts`` as full-precision epoch seconds, so the
    live service sees bit-for-bit the value replay sees."""
    out: dict[str, Any] = {}
    for name in EVENT_FIELDS:
        value = getattr(event, name)
        if value is not None:
            out[name] = value
    return out


def batches(events: Iterable[Event], size: int) -> Iterator[tuple[bytes, bytes, float]]:
    """``(key, value, ts)`` messages; with ``size`` > 1, runs of one account's
    consecutive events become one JSON-array message (the batched form)."""
    if size <= 1:
        for event in events:
            yield event.account_id.encode(), orjson.dumps(event_payload(event)), event.ts
        return
    pending: dict[str, list[dict[str, Any]]] = {}
    first_ts: dict[str, float] = {}
    for event in events:
        items = pending.setdefault(event.account_id, [])
        if not items:
            first_ts[event.account_id] = event.ts
        items.append(event_payload(event))
        if len(items) >= size:
            yield event.account_id.encode(), orjson.dumps(items), first_ts[event.account_id]
            pending[event.account_id] = []
    for account, items in pending.items():
        if items:
            yield account.encode(), orjson.dumps(items), first_ts[account]


async def publish(
    messages: Iterable[tuple[bytes, bytes, float]],
    settings: Settings,
    topic: str,
    *,
    speed: float | None,
    progress: Progress | None = None,
) -> int:
    """Send messages; ``speed`` None means as fast as possible."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, linger_ms=20,
        max_batch_size=512 * 1024, acks="all", **_aiokafka_security(settings),
    )
    await producer.start()
    sent = 0
    try:
        wall0 = time.monotonic()
        ts0: float | None = None
        pending: list[asyncio.Future[Any]] = []
        for key, value, ts in messages:
            if speed is not None:
                ts0 = ts if ts0 is None else ts0
                delay = wall0 + (ts - ts0) / speed - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            pending.append(await producer.send(topic, value=value, key=key))
            sent += 1
            if progress is not None:
                progress.update()
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        if pending:
            await asyncio.gather(*pending)
        await producer.flush()
    finally:
        await producer.stop()
    return sent


def _aiokafka_security(settings: Settings) -> dict[str, Any]:
    out: dict[str, Any] = {"security_protocol": settings.security_protocol}
    if settings.security_protocol.startswith("SASL"):
        out.update(
            sasl_mechanism=settings.sasl_mechanism,
            sasl_plain_username=settings.sasl_username,
            sasl_plain_password=settings.sasl_password.get_secret_value(),
        )
    if settings.security_protocol.endswith("SSL"):
        from aiokafka.helpers import create_ssl_context

        out["ssl_context"] = create_ssl_context(
            cafile=settings.ssl_cafile or None, certfile=settings.ssl_certfile or None,
            keyfile=settings.ssl_keyfile or None,
        )
    return out


def cmd_publish(args: argparse.Namespace) -> int:
    from streams.service.topics import ensure_topics

    settings = Settings.load({"broker": args.broker, "events_topic": args.topic})
    ensure_topics(settings)
    stats = ReadStats()
    events = merged_events(args.files, stats, lateness_s=args.lateness)
    progress = Progress("publish", enabled=args.progress)
    started = time.perf_counter()
    sent = asyncio.run(publish(
        batches(events, args.batch), settings, settings.events_topic,
        speed=None if args.max else args.speed, progress=progress,
    ))
    progress.close()
    elapsed = time.perf_counter() - started
    print(f"published {stats.events:,} events in {sent:,} messages to "
          f"{settings.events_topic} in {elapsed:.1f}s ({stats.events / max(elapsed, 1e-9):,.0f} "
          f"events/s); {stats.bad} bad line(s) skipped")
    for sample in stats.bad_samples:
        print(f"  {sample}")
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("publish", help="republish historic logs into the events topic")
    p.add_argument("files", nargs="+", metavar="FILE", type=Path)
    p.add_argument("--broker", required=True, help="kafka://HOST:PORT")
    p.add_argument("--topic", default=None, help="events topic (default from settings)")
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=float, default=1.0,
                      help="event-time speed-up factor (default 1: real time)")
    pace.add_argument("--max", action="store_true", help="as fast as possible")
    p.add_argument("--batch", type=int, default=1,
                   help="send up to N consecutive events of an account as one JSON array")
    p.add_argument("--lateness", type=float, default=300.0)
    p.add_argument("--progress", dest="progress", action="store_true", default=None)
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.set_defaults(func=cmd_publish)
