"""The service's message handling, without Faust: decode, validate, dead-letter,
detect, and produce checkpoint records. The Faust agent is a thin loop around
:class:`StreamProcessor`; unit tests drive it directly."""

from __future__ import annotations

import base64
import hashlib
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from detectors.alerts import Alert
from detectors.errors import CorruptState, InvalidEvent
from detectors.runner import PartitionRunner
from detectors.schema import decode_message, format_ts, parse_event
from streams.service.coverage import ContentCoverage
from streams.service.stages import StageTimes, TimedSummarizer

# Table key under which each partition keeps its runner position and its
# population models. Account ids are printable, so this can never collide.
_META_PREFIX = b"\x00\x00dw-partition-meta:"
_META_HEADER = struct.Struct("<dd")

Lookup = Callable[[bytes], bytes | None]


def meta_key(partition: int) -> bytes:
    return _META_PREFIX + str(partition).encode()


@dataclass(slots=True)
class DeadLetter:
    """A message (or one item of a batch message) that could not be processed."""

    reason: str
    value: bytes | None
    key: bytes | None
    topic: str
    partition: int
    offset: int
    item: int | None = None

    def to_record(self, received_at: float, payload: str = "original") -> dict[str, Any]:
        """The dead-letter record. ``payload="original"`` keeps the message's
        bytes (base64) so it can be fixed and re-published; ``"redacted"``
        keeps no free text (see :func:`redact_payload` and docs/privacy.md)."""
        record: dict[str, Any] = {
            "reason": self.reason,
            "source": {
                "topic": self.topic,
                "partition": self.partition,
                "offset": self.offset,
                "item": self.item,
            },
            "key_b64": None if self.key is None else base64.b64encode(self.key).decode(),
            "received_at": format_ts(received_at),
        }
        if payload == "redacted":
            record["payload"] = "redacted"
            record["value_redacted"] = redact_payload(self.value)
        else:
            # the original bytes, untouched, so the message can be fixed and re-published
            record["value_b64"] = (None if self.value is None
                                   else base64.b64encode(self.value).decode())
        return record


# Event fields that are identifiers or numbers, never text a user wrote: kept
# as they are by the redacted dead-letter policy when short. Everything else
# (prompt, topic, user_agent, unknown fields) is replaced by its length and hash.
_KEEP_FIELDS = frozenset({
    "ts", "account_id", "request_id", "model", "input_tokens", "output_tokens", "org_id",
    "api_key_id", "ip", "payment_fingerprint", "max_tokens", "stop_reason", "thinking",
    "system_prompt_fingerprint",
})
_KEEP_MAX_CHARS = 256


def _digest(data: bytes) -> dict[str, Any]:
    return {"redacted": True, "len": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _redact(obj: Any, key: str | None) -> Any:
    if isinstance(obj, dict):
        return {k: _redact(v, k) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_redact(v, key) for v in obj]
    if isinstance(obj, str):
        if key in _KEEP_FIELDS and len(obj) <= _KEEP_MAX_CHARS:
            return obj
        return _digest(obj.encode("utf-8", "surrogatepass"))
    return obj  # numbers, booleans, null: no text in them


def redact_payload(value: bytes | None) -> dict[str, Any] | None:
    """A dead-letter payload without free text.

    JSON keeps its structure: identifier fields (``account_id``, ``ts``,
    ``model``, ...) up to 256 characters, numbers, booleans and nulls stay;
    every other string (``prompt``, ``topic``, anything unknown, any key's
    value in an unknown place) becomes ``{"redacted": true, "len", "sha256"}``
    of its UTF-8 bytes, so an operator can still see what was wrong with the
    shape and match a payload to a known one by hash. Bytes that are not JSON
    are dropped, only their length and hash kept.

    >>> r = redact_payload(b'{"account_id": "a1", "prompt": "secret plan", "n": 3}')
    >>> r["json"]["account_id"], r["json"]["n"], r["json"]["prompt"]["len"]
    ('a1', 3, 11)
    >>> redact_payload(b"<not json>")["json"] is None
    True
    """
    if value is None:
        return None
    out = _digest(value)
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError:
        out["json"] = None
        return out
    out["json"] = _redact(obj, None)
    return out


class Outcome:
    """What one message produced. A plain class: one is made per message,
    and a dataclass's default factories cost more than the assignments."""

    __slots__ = ("alerts", "dead", "events", "summaries")

    def __init__(self) -> None:
        self.alerts: list[Alert] = []
        self.dead: list[DeadLetter] = []
        self.events = 0
        #: account summaries for the cluster stage (detectors.cluster.AccountSummary)
        self.summaries: list[Any] = []


class StreamProcessor:
    """Owns one :class:`PartitionRunner` per assigned partition.

    ``lookup`` reads a key from the changelog-backed table (``None`` for
    replay/unit tests): it restores account state and partition metadata after
    a restart or a rebalance.
    """

    def __init__(
        self,
        detector_factory: Callable[[], Any],
        state_type: Any,
        *,
        lookup: Lookup | None = None,
        sweep_interval_s: float = 60.0,
        max_message_bytes: int = 1_048_576,
        max_batch_events: int = 10_000,
        max_prompt_chars: int = 200_000,
        on_corrupt_state: Callable[[str, str], None] | None = None,
        on_detector_error: Callable[[str, BaseException], None] | None = None,
        summarizer: Any = None,
        scan: Callable[[int], Iterable[tuple[bytes, bytes | None]]] | None = None,
        times: StageTimes | None = None,
    ) -> None:
        self.detector_factory = detector_factory
        #: ``scan(partition)``: the table's (key, value) pairs of one partition,
        #: so a new runner (restart, rebalance) takes over every stored account,
        #: not only those that send another event (see :meth:`runner`)
        self.scan = scan
        self.state_type = state_type
        self.lookup = lookup
        self.sweep_interval_s = sweep_interval_s
        self.max_message_bytes = max_message_bytes
        self.max_batch_events = max_batch_events
        self.max_prompt_chars = max_prompt_chars
        self.on_corrupt_state = on_corrupt_state
        self.on_detector_error = on_detector_error
        #: sampled per-stage timings (streams.service.stages), None: not timed
        self.times = times
        self._every = times.every if times is not None else 0
        self._n_messages = self._n_events = 0
        self.summarizer = summarizer
        # swapped into a runner for its sampled events only (a wrapper call
        # on every event would cost more than the timing)
        self._timed_summarizer = (TimedSummarizer(summarizer, times)
                                  if times is not None and summarizer is not None else None)
        self.failed = 0
        self.runners: dict[int, PartitionRunner] = {}
        self.processed = 0
        self.rejected = 0
        #: share of events with prompt/topic, blind partitions (streams.service.coverage)
        self.coverage = ContentCoverage()

    # -- partitions -----------------------------------------------------------
    def runner(self, partition: int) -> PartitionRunner:
        runner = self.runners.get(partition)
        if runner is None:
            detector = self.detector_factory()
            loader = self._loader() if self.lookup is not None else None
            runner = PartitionRunner(
                detector, loader, sweep_interval_s=self.sweep_interval_s,
                summarizer=self.summarizer,
            )
            raw = self.lookup(meta_key(partition)) if self.lookup is not None else None
            if raw:
                watermark, next_sweep = _META_HEADER.unpack_from(raw)
                runner.watermark, runner._next_sweep = watermark, next_sweep
                detector.restore(raw[_META_HEADER.size:])
            if self.scan is not None and loader is not None:
                # Every stored account of the partition goes back into the
                # sweep schedule: one quiet since before a crash must still
                # resolve its episode and expire when idle, as it would have
                # without the crash (issue 8, test_reliability_crash).
                for key, value in self.scan(partition):
                    if value is None or key.startswith(_META_PREFIX):
                        continue
                    account_id = key.decode("utf-8", "replace")
                    state = loader(account_id)
                    if state is not None:
                        runner.states[account_id] = state
                        if runner._next_due is not None:
                            runner._schedule(account_id, state)
            self.runners[partition] = runner
        return runner

    def _loader(self) -> Callable[[str], Any]:
        assert self.lookup is not None
        lookup = self.lookup

        def load(account_id: str) -> Any:
            raw = lookup(account_id.encode())
            if raw is None:
                return None
            try:
                return self.state_type.decode(raw)
            except CorruptState as exc:
                if self.on_corrupt_state is not None:
                    self.on_corrupt_state(account_id, str(exc))
                return None

        return load

    def describe(self, account_id: str) -> dict[str, Any] | None:
        """Current features and scores of an account this worker owns, or None."""
        for runner in self.runners.values():
            state = runner.states.get(account_id)
            if state is not None:
                return dict(runner.detector.describe(state))
        if self.lookup is None:
            return None
        raw = self.lookup(account_id.encode())
        if raw is None:
            return None
        try:
            state = self.state_type.decode(raw)
        except CorruptState:
            return None
        first = next(iter(self.runners.values()), None)
        detector = first.detector if first is not None else self.detector_factory()
        return dict(detector.describe(state))

    def tracked_accounts(self) -> int:
        return sum(len(r.states) for r in self.runners.values())

    def revoke(self, partitions: Iterable[int]) -> None:
        """Forget hot state of partitions this worker no longer owns.

        Nothing is flushed: the new owner resumes from the last checkpoint,
        which is never older than the committed offset.
        """
        for p in partitions:
            self.runners.pop(p, None)
            self.coverage.forget(p)

    # -- messages -------------------------------------------------------------
    def handle(
        self, value: bytes | None, key: bytes | None, topic: str, partition: int, offset: int
    ) -> Outcome:
        out = Outcome()
        times = self.times
        every = self._every
        sampled = False
        if every:
            self._n_messages += 1
            sampled = self._n_messages % every == 0
        if sampled:
            assert times is not None
            t0 = times.clock()
        try:
            items = decode_message(
                value, max_bytes=self.max_message_bytes, max_batch=self.max_batch_events
            )
        except InvalidEvent as exc:
            out.dead.append(DeadLetter(exc.reason, value, key, topic, partition, offset))
            self.rejected += 1
            return out
        if sampled:
            assert times is not None
            times.add("decode", times.clock() - t0)
        runner = self.runners.get(partition) or self.runner(partition)
        for index, item in enumerate(items):
            timed = False
            if every:
                self._n_events += 1
                timed = self._n_events % every == 0
            try:
                if timed:
                    assert times is not None
                    t0 = times.clock()
                    event = parse_event(item, max_prompt_chars=self.max_prompt_chars)
                    times.add("validate", times.clock() - t0)
                else:
                    event = parse_event(item, max_prompt_chars=self.max_prompt_chars)
                if key is None or key != event.account_id.encode():
                    raise InvalidEvent(
                        "message key does not match account_id (the events topic must be "
                        "keyed by account_id so that each account reaches one partition)"
                    )
            except InvalidEvent as exc:
                raw, at = _dead_item(value, items, index, item)
                out.dead.append(DeadLetter(exc.reason, raw, key, topic, partition, offset, at))
                self.rejected += 1
                continue
            self.coverage.observe(partition, event.ts, prompt=event.prompt is not None,
                                  topic=event.topic is not None)
            try:
                if timed:
                    assert times is not None
                    if self._timed_summarizer is not None:
                        runner.summarizer = self._timed_summarizer
                    try:
                        out.alerts.extend(times.timed_event(runner.process, event))
                    finally:
                        runner.summarizer = self.summarizer
                else:
                    out.alerts.extend(runner.process(event))
            except Exception as exc:  # a detector bug must not stop the stream
                # The account's hot state may be half-updated: drop it, so the
                # account resumes from its last checkpoint on its next event.
                runner.evict([event.account_id])
                raw, at = _dead_item(value, items, index, item)
                reason = f"detector error: {type(exc).__name__}: {str(exc)[:200]}"
                out.dead.append(DeadLetter(reason, raw, key, topic, partition, offset, at))
                self.rejected += 1
                self.failed += 1
                if self.on_detector_error is not None:
                    self.on_detector_error(event.account_id, exc)
                continue
            out.events += 1
        if runner.summaries:
            out.summaries = runner.take_summaries()
        self.processed += out.events
        return out

    # -- checkpoints ----------------------------------------------------------
    def checkpoint(self) -> list[tuple[int, bytes, bytes | None]]:
        """Records to write to the table changelog: ``(partition, key, value)``;
        ``value`` None deletes (an expired account)."""
        records: list[tuple[int, bytes, bytes | None]] = []
        for partition, runner in self.runners.items():
            changed, removed = runner.take_dirty()
            if not changed and not removed:
                continue
            for account_id, state in changed:
                records.append((partition, account_id.encode(), state.encode()))
            for account_id in removed:
                records.append((partition, account_id.encode(), None))
            meta = _META_HEADER.pack(runner.watermark, runner._next_sweep)
            records.append((partition, meta_key(partition), meta + runner.detector.snapshot()))
        return records


def _dead_item(value: bytes | None, items: list[Any], index: int,
               item: Any) -> tuple[bytes | None, int | None]:
    """What to dead-letter for one bad item, and its index: the item alone
    when the message is a batch (a JSON array, even of one), else the
    message's original bytes."""
    if len(items) > 1 or (value is not None and value.lstrip()[:1] == b"["):
        return orjson.dumps(item), index
    return value, None


def alert_bytes(alert: Alert, clock: Callable[[], float] = time.time) -> bytes:
    return orjson.dumps(alert.to_record(emitted_at=clock()))
