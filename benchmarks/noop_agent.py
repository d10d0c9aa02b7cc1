"""A no-op Faust agent: Faust's own ceiling for ``distillwatch bench``.

Same Faust settings as the service (:func:`streams.service.app.faust_config`), same
topic declaration and the same iteration as the ``detect`` agent (``async for _
in stream``), but the body only counts. ``GET /health`` reports ``events`` and the
``first_message_at`` / ``last_message_at`` stamps like the real worker, so the
benchmark measures both the same way.

    DISTILLWATCH_BROKER=kafka://127.0.0.1:9092 python -m benchmarks.noop_agent
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import faust

from streams.kafka.fetch_pacing import install as pace_empty_fetches
from streams.logs import configure_logging
from streams.service.app import faust_config
from streams.settings import Settings


def build_noop_app(settings: Settings) -> tuple[faust.App, dict[str, float]]:
    app = faust.App(settings.app_id, **faust_config(settings))
    # the service's consumer settings, empty-fetch pacing included
    pace_empty_fetches(settings.empty_fetch_interval_s)
    topic = app.topic(
        settings.events_topic,
        key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
        partitions=settings.partitions,
    )
    # the worker's message timestamps too: the benchmark times both by them
    stats = {"events": 0, "first_message_at": 0.0, "last_message_at": 0.0}
    clock = time.time

    @app.agent(topic, name="detect")
    async def detect(stream: Any) -> None:
        async for _ in stream:
            if not stats["first_message_at"]:
                stats["first_message_at"] = clock()
            stats["events"] += 1
            stats["last_message_at"] = clock()

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        return web.json({"status": "ok", **stats})

    @app.page("/ready")
    async def ready(web: Any, request: Any) -> Any:
        assigned = bool(app.consumer.assignment()) if app.consumer else False
        is_ready = assigned and not app.rebalancing
        return web.json({"ready": is_ready}, status=200 if is_ready else 503)

    return app, stats


def main() -> int:
    from streams.service.worker import BoundedWorker, wait_for_broker

    settings = Settings.load()
    configure_logging(settings.log_format, settings.log_level)
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    wait_for_broker(settings)
    app, _ = build_noop_app(settings)
    worker = BoundedWorker(
        app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False,
        override_logging=False, shutdown_timeout_s=settings.shutdown_timeout_s,
    )
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
