"""``distillwatch broker``: run the embedded Kafka-compatible broker in the foreground.

Wire it into the main CLI with :func:`register`; it also runs on its own as
``python -m streams.broker.cli [--port N] [--data-dir D] [--kind K]``.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import time
from types import FrameType
from typing import Any

from streams.broker.embedded import ENV_KIND, KINDS, EmbeddedBroker, kind_from_env
from streams.errors import BrokerUnavailable, ConfigError

DEFAULT_PORT = 9092
DEFAULT_DATA_DIR = os.path.join("var", "broker")
ENV_DATA_DIR = "DISTILLWATCH_BROKER_DATA_DIR"
#: The broker gets this long after SIGTERM before SIGKILL; the whole shutdown stays under 10 s.
STOP_TIMEOUT_S = 8.0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``broker`` subcommand to an ``argparse`` subparsers object (``func`` is set)."""
    parser = subparsers.add_parser(
        "broker",
        help="run the embedded Kafka-compatible broker in the foreground",
        description="Run the embedded Kafka-compatible broker on 127.0.0.1 until Ctrl-C or "
        "SIGTERM, and print its bootstrap address. Point clients at it with "
        "--broker kafka://127.0.0.1:PORT (or kcat -b 127.0.0.1:PORT).",
    )
    add_arguments(parser)
    parser.set_defaults(func=run)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"TCP port on 127.0.0.1 (default {DEFAULT_PORT}; 0 picks a free one)",
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help=f"where the broker keeps its data (default ${ENV_DATA_DIR} or "
        f"./{DEFAULT_DATA_DIR}); ignored by memory-only kinds",
    )
    parser.add_argument(
        "--kind",
        choices=KINDS,
        default=None,
        help=f"broker implementation (default ${ENV_KIND} or noida)",
    )


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def run(args: argparse.Namespace) -> int:
    """Run the broker until SIGINT/SIGTERM; return the process exit code."""
    host = "127.0.0.1"
    try:
        kind = args.kind or kind_from_env()
    except ConfigError as exc:
        print(f"distillwatch broker: {exc}", file=sys.stderr)
        return 2
    port = args.port or None
    if port is not None and not _port_free(host, port):
        print(
            f"distillwatch broker: {host}:{port} is already in use; pick another with --port "
            "(--port 0 chooses a free one)",
            file=sys.stderr,
        )
        return 1
    data_dir = args.data_dir or os.environ.get(ENV_DATA_DIR) or DEFAULT_DATA_DIR

    stop_requested: list[int] = []

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        stop_requested.append(signum)

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    # a foreground broker goes with this command, however it dies (streams.broker.lifeline)
    broker = EmbeddedBroker(kind=kind, port=port, data_dir=data_dir, host=host,
                            die_with_parent=True)
    try:
        try:
            broker.start()
        except BrokerUnavailable as exc:
            print(f"distillwatch broker: {exc}", file=sys.stderr)
            return 1
        if stop_requested:
            return 0
        print(f"embedded broker ({kind}) on {broker.bootstrap}", flush=True)
        print(f"  bootstrap: {broker.bootstrap}", flush=True)
        print(f"  url:       {broker.url}", flush=True)
        print(
            f"  data dir:  {broker.data_dir if broker.persistent else '(memory only)'}", flush=True
        )
        print(f"  log:       {broker.log_path}", flush=True)
        print("Ctrl-C stops it.", flush=True)
        while not stop_requested:
            if not broker.alive():
                print(
                    f"distillwatch broker: the broker exited unexpectedly; see {broker.log_path}",
                    file=sys.stderr,
                )
                return 1
            time.sleep(0.2)
        return 0
    finally:
        t0 = time.monotonic()
        broker.stop(timeout=STOP_TIMEOUT_S)
        if stop_requested:
            print(f"broker stopped in {time.monotonic() - t0:.1f} s", flush=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="distillwatch broker", description="Run the embedded Kafka-compatible broker."
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
