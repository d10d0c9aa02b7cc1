"""``distillwatch`` command line."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from streams.errors import DistillwatchError
from streams.settings import Settings

# Sub-command modules; each exposes ``register(subparsers)``.
_PLUGINS = (
    "streams.broker.cli",
    "simulator.cli",
    "streams.replay.cli",
    "streams.replay.publish",
    "streams.replay.score_series",
    "streams.oncall.tail",
    "streams.oncall.forward",
    "benchmarks.cli",
    "benchmarks.soak",
    "streams.response.actions",
    "streams.response.enforce",
    "streams.response.indicators",
)


def _settings_from(args: argparse.Namespace, **extra: Any) -> Settings:
    overrides = {
        "broker": getattr(args, "broker", None),
        "detector_config": getattr(args, "config", None),
        "partitions": getattr(args, "partitions", None),
        "log_format": getattr(args, "log_format", None),
        "data_dir": getattr(args, "data_dir", None),
        "web_port": getattr(args, "web_port", None),
        **extra,
    }
    return Settings.load(overrides)


def cmd_worker(args: argparse.Namespace) -> int:
    from streams.service.worker import run_worker

    return run_worker(_settings_from(args))


def cmd_run(args: argparse.Namespace) -> int:
    """Embedded broker + worker + built-in traffic, alerts printed as they fire."""
    from kafka import KafkaConsumer, KafkaProducer

    from streams.broker.embedded import EmbeddedBroker, free_port
    from streams.broker.lifeline import die_with_parent, port_owner
    from streams.broker.traffic import TrafficSource
    from streams.oncall.render import alert_line
    from streams.service.topics import ensure_topics

    base = _settings_from(args)
    workdir = Path(tempfile.mkdtemp(prefix="distillwatch-run-"))
    colour = sys.stdout.isatty()
    say = lambda text: print(text, flush=True)  # noqa: E731
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # the broker and the worker die with this process however it dies
    # (streams.broker.lifeline): a hard-killed `run` left both running (issue 21)
    broker = EmbeddedBroker(kind=base.embedded_broker, data_dir=workdir / "broker",
                            die_with_parent=True)
    worker: subprocess.Popen[bytes] | None = None
    traffic: TrafficSource | None = None
    alerts_seen = 0
    try:
        say(f"distillwatch run: starting the embedded broker ({broker.kind}) ...")
        broker.start()
        # the embedded broker's persistence cost grows with what it holds
        # (README, broker matrix): the demo keeps 5 minutes of traffic, and
        # closes segments every 30 s so that retention and the changelogs'
        # compaction can drop anything at all
        settings = base.with_(broker=broker.url, data_dir=str(workdir),
                              topic_retention_s=base.topic_retention_s or 300.0,
                              topic_segment_s=base.topic_segment_s or 30.0)
        ensure_topics(settings)
        web_port = base.web_port
        taken_by = port_owner(web_port)
        if taken_by:
            web_port = free_port(base.web_host)
            say(f"  port {base.web_port} is taken by {taken_by}; "
                f"the worker's web views use port {web_port} instead")
        env = {**os.environ, "DISTILLWATCH_BROKER": broker.url,
               "DISTILLWATCH_DATA_DIR": str(workdir), "DISTILLWATCH_LOG_FORMAT": "json",
               "DISTILLWATCH_WEB_PORT": str(web_port)}
        if args.config:
            env["DISTILLWATCH_DETECTOR_CONFIG"] = str(Path(args.config).resolve())
        log_path = workdir / "worker.log"
        say(f"  broker  {broker.bootstrap}   worker log  {log_path}")
        say(f"  alerts page  http://{base.web_host}:{web_port}/alerts/")
        with open(log_path, "ab") as log_file:
            worker = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "worker"], env=env,
                stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, preexec_fn=die_with_parent(),
            )
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=20)
        traffic = TrafficSource(lambda k, v: producer.send(settings.events_topic, key=k, value=v))
        threading.Thread(target=traffic.run, name="traffic", daemon=True).start()
        consumer = KafkaConsumer(
            settings.alerts_topic, settings.actions_topic, bootstrap_servers=broker.bootstrap,
            auto_offset_reset="earliest", consumer_timeout_ms=500,
        )
        say("  traffic: 150 benign accounts; attackers join after 20 s and 40 s; "
            "a malformed message every 30 s goes to the dead-letter topic")
        say("  alerts (Ctrl-C to stop):")
        deadline = time.monotonic() + args.duration if args.duration else None
        import orjson

        while not stop.is_set():
            if deadline and time.monotonic() >= deadline:
                break
            if worker.poll() is not None:
                say(f"worker exited with {worker.returncode}; see {log_path}")
                taken_by = port_owner(web_port)
                if taken_by:
                    say(f"  (port {web_port} is now held by {taken_by})")
                return 1
            for message in consumer:
                if message.topic == settings.actions_topic:
                    say("  " + action_line(orjson.loads(message.value), broker.url))
                    continue
                alerts_seen += 1
                say("  " + alert_line(orjson.loads(message.value), colour=colour))
                if stop.is_set():
                    break
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        with contextlib.suppress(KeyboardInterrupt):
            say("stopping ...")
            if traffic is not None:
                traffic.stop()
            if worker is not None and worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
                try:
                    worker.wait(base.shutdown_timeout_s + 1)
                except subprocess.TimeoutExpired:
                    os.killpg(worker.pid, signal.SIGKILL)
            broker.stop()
            if traffic is not None:
                say(f"sent {traffic.sent} events ({traffic.bad_sent} malformed), "
                    f"{alerts_seen} alerts")


def action_line(record: dict[str, Any], broker_url: str) -> str:
    """One proposed action (or decision) of ``distillwatch run``, with the
    command that approves it."""
    data = record.get("data", {})
    if record.get("type") != "distillwatch.action.proposed":
        return (f"-> action {data.get('action_id')} {data.get('decision')} by "
                f"{data.get('decided_by', {}).get('principal')}")
    params = data.get("params") or {}
    extra = f" {params['rate_per_min']}/min" if "rate_per_min" in params else ""
    line = (f"-> proposed action {data.get('action')}{extra} on {record.get('subject')} "
            f"(rule {data.get('rule')}, {data.get('mode')})")
    if data.get("mode") == "propose":
        line += (f"\n     approve: distillwatch actions approve {data.get('action_id')} "
                 f"--reason '...' --broker {broker_url}")
    return line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="distillwatch",
        description="Catch distillation attacks on an LLM API while they happen.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="embedded broker + worker + demo traffic; prints alerts")
    run.add_argument("--duration", type=float, default=0.0, help="stop after S seconds")
    run.add_argument("--config", help="detector TOML config")
    run.set_defaults(func=cmd_run)

    worker = sub.add_parser("worker", help="the stream service against a Kafka cluster")
    worker.add_argument("--broker", help="kafka://HOST:PORT[,HOST:PORT] (env DISTILLWATCH_BROKER)")
    worker.add_argument("--config", help="detector TOML config (env DISTILLWATCH_DETECTOR_CONFIG)")
    worker.add_argument("--partitions", type=int, help="partitions of the topics it creates")
    worker.add_argument("--data-dir", help="local data directory")
    worker.add_argument("--web-port", type=int, help="port of the web views (loopback)")
    worker.add_argument("--log-format", choices=("auto", "json", "console"))
    worker.set_defaults(func=cmd_worker)

    for name in _PLUGINS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except DistillwatchError as exc:
        print(f"distillwatch: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
