"""Reading historic event logs: JSONL and gzip-compressed JSONL, many files
merged in event-time order, tolerating bounded lateness; bad lines reported as
``file:line: reason`` and never fatal."""

from __future__ import annotations

import gzip
import heapq
import io
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol, TypeVar, cast

from detectors.errors import InvalidEvent
from detectors.schema import Event, decode_message, parse_event
from streams.service.stages import StageTimes


@dataclass
class ReadStats:
    lines: int = 0
    events: int = 0
    bad: int = 0
    late: int = 0
    #: events carrying prompt text / a topic (detection is blind without them)
    with_prompt: int = 0
    with_topic: int = 0
    bytes_read: int = 0
    bad_samples: list[str] = field(default_factory=list)
    max_samples: int = 20

    def reject(self, where: str, reason: str) -> None:
        self.bad += 1
        if len(self.bad_samples) < self.max_samples:
            self.bad_samples.append(f"{where}: {reason}")


def open_log(path: str | Path) -> IO[bytes]:
    """Open a log file, transparently gunzipping ``.gz`` (by magic number)."""
    raw = open(path, "rb")  # noqa: SIM115 - returned to the caller
    if raw.peek(2)[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    return raw


def read_file(path: str | Path, stats: ReadStats, *, max_line_bytes: int = 1_048_576,
              max_prompt_chars: int = 200_000,
              times: StageTimes | None = None) -> Iterator[tuple[Event, int]]:
    """Events of one file with their line numbers (a line may be a JSON array).

    With ``times``, every ``times.every``-th line's decoding and validation
    are timed (stages ``decode`` and ``validate``). One process's whole file:
    :func:`read_file_part` with every account its own and no scanner."""
    return cast(Iterator[tuple[Event, int]], read_file_part(
        path, stats, _every_account, max_line_bytes=max_line_bytes,
        max_prompt_chars=max_prompt_chars, times=times, scan=None))


def _every_account(account_id: str) -> bool:
    return True


class _Timed(Protocol):
    @property
    def ts(self) -> float: ...


_T = TypeVar("_T", bound=_Timed)


def reorder(items: Iterable[tuple[_T, int]], lateness_s: float, stats: ReadStats,
            file_index: int) -> Iterator[tuple[float, int, int, _T]]:
    """Sort a nearly-ordered stream, holding events back by ``lateness_s``.

    Events later than that are released at once (as a live worker would
    process them on arrival) and counted in ``stats.late``. The third item
    of each tuple is the event's position in the file, not its line number:
    one line may hold a batch (a JSON array) of events with equal times, and
    the position, unique per file, keeps the heap from ever comparing two
    Event objects.
    """
    buffer: list[tuple[float, int, int, _T]] = []
    high = float("-inf")
    released = float("-inf")
    it = iter(items)
    # Fast path while the file is in order: a FIFO is already sorted (equal
    # times keep line order), so no heap work until the first event that
    # goes back in time; from there on, the heap below takes over.
    fifo: deque[tuple[float, int, int, _T]] = deque()
    for pos, (event, _) in enumerate(it):
        ts = event.ts
        if ts < high:
            buffer = list(fifo)  # sorted, hence a valid heap
            fifo.clear()
            if ts < released:
                stats.late += 1
                yield (released, file_index, pos, event)
            else:
                heapq.heappush(buffer, (ts, file_index, pos, event))
                limit = high - lateness_s
                while buffer and buffer[0][0] <= limit:
                    item = heapq.heappop(buffer)
                    released = item[0]
                    yield item
            break
        fifo.append((ts, file_index, pos, event))
        high = ts
        limit = ts - lateness_s
        while fifo and fifo[0][0] <= limit:
            item = fifo.popleft()
            released = item[0]
            yield item
    else:
        yield from fifo
        return
    start = pos + 1
    for pos, (event, _) in enumerate(it, start):
        if event.ts < released:
            stats.late += 1
            yield (released, file_index, pos, event)
            continue
        heapq.heappush(buffer, (event.ts, file_index, pos, event))
        if event.ts > high:
            high = event.ts
        limit = high - lateness_s
        while buffer and buffer[0][0] <= limit:
            item = heapq.heappop(buffer)
            released = item[0]
            yield item
    while buffer:
        yield heapq.heappop(buffer)


def merged_events(paths: Iterable[str | Path], stats: ReadStats, *, lateness_s: float = 300.0,
                  max_line_bytes: int = 1_048_576, max_prompt_chars: int = 200_000,
                  times: StageTimes | None = None) -> Iterator[Event]:
    """All events of all files, merged in event-time order (ties: file, line)."""
    streams = [
        reorder(read_file(p, stats, max_line_bytes=max_line_bytes,
                          max_prompt_chars=max_prompt_chars, times=times), lateness_s, stats, i)
        for i, p in enumerate(paths)
    ]
    merged = streams[0] if len(streams) == 1 else heapq.merge(*streams)
    for _, _, _, event in merged:  # (ts, file, position, event)
        yield event


# --- one process's part of a multi-process replay ---------------------------


class Foreign:
    """Another replay process's event in :func:`read_file_part`: its time
    only, which the merge in event-time order needs."""

    __slots__ = ("ts",)

    def __init__(self, ts: float) -> None:
        self.ts = ts


def _scanner() -> Callable[[bytes, int], tuple[str, float] | None] | None:
    """The C line scanner (``detectors/_eventscan.c``), when built."""
    try:
        from detectors import _eventscan
    except ImportError:
        return None
    return _eventscan.scan


SCAN = _scanner()


class ScanMismatch(RuntimeError):
    """The line scanner and the full decode disagree on an event (a bug in
    ``detectors/_eventscan.c``); replay with ``--jobs 1``."""


def read_file_part(path: str | Path, stats: ReadStats, mine: Callable[[str], bool], *,
                   max_line_bytes: int = 1_048_576, max_prompt_chars: int = 200_000,
                   times: StageTimes | None = None,
                   scan: Callable[[bytes, int], tuple[str, float] | None] | None = SCAN,
                   ) -> Iterator[tuple[Event | Foreign, int]]:
    """:func:`read_file` for one of several replay processes: the events of
    the accounts ``mine`` accepts, and a :class:`Foreign` in place of every
    other valid event, in the same order, so that every process numbers the
    events alike.

    ``scan`` (the C scanner) reads a line's account id and time without
    decoding it, and only when it is sure that the line is one valid event
    (else None); such a line is decoded only by the process it belongs to.
    Every other line is decoded in full by every process, as by
    :func:`read_file`, so all agree on which events are valid. ``stats``
    counts every line and event, but ``with_prompt`` and ``with_topic`` only
    over this process's events (the processes' counts add up)."""
    name = str(path)
    every = 0
    if times is not None:
        every, clock, add = times.every, times.clock, times.add
    with open_log(path) as fh:
        reader = io.BufferedReader(cast(io.RawIOBase, fh)) \
            if not isinstance(fh, io.BufferedReader) else fh
        for lineno, line in enumerate(reader, start=1):
            stats.lines += 1
            stats.bytes_read += len(line)
            if not line.strip():
                continue
            key = scan(line, max_prompt_chars) \
                if scan is not None and len(line) <= max_line_bytes else None
            if key is not None and not mine(key[0]):
                stats.events += 1
                yield Foreign(key[1]), lineno
                continue
            sampled = every and lineno % every == 0
            if sampled:
                t0 = clock()
            try:
                items = decode_message(line, max_bytes=max_line_bytes)
            except InvalidEvent as exc:
                if key is not None:
                    raise ScanMismatch(f"{name}:{lineno}: scanned as valid") from exc
                stats.reject(f"{name}:{lineno}", exc.reason)
                continue
            if sampled:
                add("decode", clock() - t0)
            for item in items:
                if sampled:
                    t0 = clock()
                try:
                    event = parse_event(item, max_prompt_chars=max_prompt_chars)
                except InvalidEvent as exc:
                    if key is not None:
                        raise ScanMismatch(f"{name}:{lineno}: scanned as valid") from exc
                    stats.reject(f"{name}:{lineno}", exc.reason)
                    continue
                if sampled:
                    add("validate", clock() - t0)
                stats.events += 1
                if key is not None and (key[0] != event.account_id or key[1] != event.ts):
                    raise ScanMismatch(f"{name}:{lineno}: scanned {key!r}, decoded "
                                       f"{(event.account_id, event.ts)!r}")
                if mine(event.account_id):
                    stats.with_prompt += event.prompt is not None
                    stats.with_topic += event.topic is not None
                    yield event, lineno
                else:
                    yield Foreign(event.ts), lineno


def merged_events_part(paths: Iterable[str | Path], stats: ReadStats,
                       mine: Callable[[str], bool], *, lateness_s: float = 300.0,
                       max_line_bytes: int = 1_048_576, max_prompt_chars: int = 200_000,
                       times: StageTimes | None = None) -> Iterator[Event | Foreign]:
    """:func:`merged_events` with :func:`read_file_part`: the same sequence,
    with a :class:`Foreign` for each event that ``mine`` does not accept."""
    streams = [
        reorder(read_file_part(p, stats, mine, max_line_bytes=max_line_bytes,
                               max_prompt_chars=max_prompt_chars, times=times),
                lateness_s, stats, i)
        for i, p in enumerate(paths)
    ]
    merged = streams[0] if len(streams) == 1 else heapq.merge(*streams)
    for _, _, _, event in merged:
        yield event
