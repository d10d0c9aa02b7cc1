"""Batched summaries (streams/service/summary_batch.py): the wire format round-trips,
pairs are grouped by the partition Kafka's default partitioner gives their
key and keep their order, hostile bytes never raise, the cluster agent still
reads the old one-summary-per-message format, and the worker hands buffered
summaries to the producer before it commits offsets."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.cluster import AccountSummary, ClusterDetector
from detectors.errors import CorruptState
from detectors.partitioning import partition_for
from streams.service.clusters import ClusterProcessor
from streams.service.summary_batch import BATCH_V1, SummaryBatcher, decode_batch, encode_batch

T0 = 1_771_840_800.0

# JSON text: orjson refuses lone surrogates, and so do events (parsed by orjson)
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
unit = st.floats(0.0, 1.0)
nonempty = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20)
# any summary the emitter can produce (AccountSummary.from_json rejects the rest)
summaries = st.builds(
    AccountSummary,
    account_id=nonempty,
    ts=finite,
    first_ts=finite,
    keys=st.lists(nonempty, min_size=1, max_size=8).map(tuple),
    top_topics=st.lists(st.tuples(text, unit), max_size=3).map(tuple),
    fps=st.lists(st.integers(0, 2**63 - 1), max_size=8).map(tuple),
    template=unit,
    elicitation=unit,
    flatness=unit,
    rate=st.floats(0.0, 1e12),
    score=unit,
    events=st.integers(0, 2**62),
)


def _summary(account: str, keys: tuple[str, ...], ts: float = T0) -> AccountSummary:
    return AccountSummary(account, ts, ts - 60, keys, (("coding/rust", 0.9),), (7, 9),
                          0.5, 0.25, 0.1, 2.5, 0.4, 12)


def _expected(items: list[AccountSummary], partitions: int) -> dict[int, list[tuple[str, Any]]]:
    """What one message per key (the old format) delivered to each partition, in order."""
    out: dict[int, list[tuple[str, Any]]] = {}
    for s in items:
        for key in s.keys:
            out.setdefault(partition_for(key.encode(), partitions), []).append((key, s))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=st.lists(summaries, max_size=12), partitions=st.integers(1, 12),
       max_pairs=st.integers(1, 40))
def test_batches_round_trip_grouped_by_partition_in_order(items, partitions, max_pairs):
    batcher = SummaryBatcher(partitions, max_pairs=max_pairs)
    got: dict[int, list[tuple[str, Any]]] = {}
    messages = []
    for s in items:
        if batcher.add(s):
            assert batcher.pairs >= max_pairs
            messages += batcher.drain()
    messages += batcher.drain()
    assert batcher.pairs == 0 and batcher.drain() == []
    for partition, value in messages:
        assert value[:1] == BATCH_V1
        for key, summary, reason in decode_batch(value):
            assert reason is None and key is not None
            assert partition_for(key.encode(), partitions) == partition
            got.setdefault(partition, []).append((key, summary))
    assert got == _expected(items, partitions)
    assert batcher.sent_summaries == sum(1 for s in items if s.keys)


def test_one_message_per_destination_partition_and_a_summary_once_per_message():
    keys = tuple(f"ip:10.0.{i}.0/24" for i in range(12))
    batcher = SummaryBatcher(4)
    batcher.add(_summary("a", keys))
    batcher.add(_summary("b", keys[:3]))
    messages = batcher.drain()
    partitions = [p for p, _ in messages]
    assert sorted(partitions) == sorted({partition_for(k.encode(), 4) for k in keys})
    for _, value in messages:
        entries = orjson.loads(value[1:])
        # each summary is carried once per message, with all its keys of that partition
        assert len(entries) == len({e[0]["a"] for e in entries})


def test_size_bound_by_bytes():
    batcher = SummaryBatcher(1, max_pairs=10_000, max_bytes=2_000)
    fills = [batcher.add(_summary(f"acct-{i}", ("ua:x",))) for i in range(20)]
    assert not fills[0] and any(fills)
    one = len(_summary("acct-00", ("ua:x",)).encode())
    batcher = SummaryBatcher(1, max_pairs=10_000, max_bytes=2_000)
    while not batcher.add(_summary("acct-00", ("ua:x",))):
        pass
    # the estimate tracks the real size: full at the first summary past the bound
    assert 2_000 <= len(batcher.drain()[0][1]) < 2_000 + one + 20


@settings(max_examples=400, deadline=None)
@given(body=st.binary(max_size=300))
def test_hostile_bytes_never_raise(body):
    proc = ClusterProcessor(ClusterDetector)
    for value in (body, BATCH_V1 + body):
        try:
            pairs = list(decode_batch(value))
        except CorruptState:
            pairs = []
        for key, summary, reason in pairs:
            assert (key is None) == (summary is None) == (reason is not None)
        proc.handle(value, b"ua:x", 0)
        proc.handle(value, None, 3)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | finite | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries=st.lists(json_values | st.tuples(
    st.fixed_dictionaries({"a": json_values, "t": json_values, "f": json_values,
                           "k": json_values}),
    st.lists(json_values, max_size=3)).map(list), max_size=5))
def test_hostile_batch_entries_are_counted_per_pair_and_reported_once(entries):
    reports: list[tuple[str, str]] = []
    proc = ClusterProcessor(ClusterDetector, on_corrupt=lambda k, r: reports.append((k, r)))
    good = _summary("ok", ("ua:x",))
    value = BATCH_V1 + orjson.dumps([*entries, [good.to_json(), ["ua:x"]]])
    proc.handle(value, None, 0)
    assert proc.summaries >= 1  # the good pair after the bad ones is still processed
    assert len(reports) <= 1
    assert bool(reports) == (proc.rejected > 0)


def test_mixed_batch_processes_good_pairs_counts_bad_ones_and_logs_once():
    reports: list[tuple[str, str]] = []
    proc = ClusterProcessor(ClusterDetector, on_corrupt=lambda k, r: reports.append((k, r)))
    good = _summary("a", ("ua:x", "pay:pm_1"))
    value = BATCH_V1 + orjson.dumps([
        [good.to_json(), ["ua:x", "pay:pm_1"]],
        [{"a": "b"}, ["ua:x", "pay:pm_1"]],         # no ts: both pairs rejected
        [good.to_json(), ["ua:x", 5]],              # one bad key
        "nonsense",
    ])
    assert proc.handle(value, None, 0) == []
    assert proc.summaries == 3
    assert proc.rejected == 4
    assert len(reports) == 1 and reports[0][0] == "summary batch"
    assert "4 of 7" in reports[0][1]

    for bad in (BATCH_V1, BATCH_V1 + b"{", BATCH_V1 + b'{"a": 1}', BATCH_V1 + b"\xff"):
        before = proc.rejected
        assert proc.handle(bad, None, 1) == []
        assert proc.rejected == before + 1
    assert len(reports) == 5


def test_old_single_summary_messages_are_still_accepted():
    """Messages sent before the upgrade (one summary, key = linkage key) feed
    the same detector state as the batch carrying the same pairs."""
    items = [_summary(f"h{i}", ("ua:aiohttp/3.9.5", f"ip:10.0.{i}.0/24"), T0 + 60 * i)
             for i in range(8)]
    old, new = ClusterProcessor(ClusterDetector), ClusterProcessor(ClusterDetector)
    old_alerts, new_alerts = [], []
    for s in items:
        old_alerts += old.handle(s.encode(), b"ua:aiohttp/3.9.5", 0)
        new_alerts += new.handle(encode_batch([(s.encode(), ["ua:aiohttp/3.9.5"])]), None, 0)
    assert [a.alert_id for a in old_alerts] == [a.alert_id for a in new_alerts]
    assert old.detectors[0].snapshot() == new.detectors[0].snapshot()
    assert old.summaries == new.summaries == 8 and old.rejected == new.rejected == 0
    assert old.handle(b"not json", b"ua:x", 0) == [] and old.rejected == 1


# ---------------------------------------------------------------- flush ---


class _Buffer:
    size = 0

    async def flush(self) -> None:
        return None


class _Producer:
    def __init__(self, log: list[tuple[str, Any]]) -> None:
        self.log = log
        self.buffer = _Buffer()

    def send_soon(self, fut: Any) -> None:
        m = fut.message
        self.log.append(("send", (m.channel.get_topic_name(), m.partition, m.value)))

    async def send(self, topic: str, key: Any, value: Any, partition: Any, timestamp: Any,
                   headers: Any) -> Any:
        # state records go straight to the client (streams.service.checkpoint)
        self.log.append(("state", (topic, partition, key)))
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


class _Consumer:
    def __init__(self, log: list[tuple[str, Any]]) -> None:
        self.log = log

    async def commit(self, *args: Any, **kwargs: Any) -> bool:
        self.log.append(("commit", None))
        return True

    def assignment(self) -> set[Any]:
        return set()


def _service_with_pending_summaries() -> tuple[Any, list[tuple[str, Any]]]:
    from streams.service.app import build_service
    from streams.settings import Settings

    service = build_service(Settings.load(
        overrides={"partitions": 4}, env={"DISTILLWATCH_BROKER": "kafka://127.0.0.1:9"}))
    log: list[tuple[str, Any]] = []
    service.app.producer = _Producer(log)
    service.app.consumer = _Consumer(log)
    assert service.summary_batcher is not None
    service.summary_batcher.add(_summary("a", ("ua:x", "pay:pm_1", "ip:10.0.0.0/24")))
    return service, log


def _summary_sends(service: Any, log: list[tuple[str, Any]]) -> list[int]:
    topic = service.settings.summaries_topic
    return [i for i, (kind, what) in enumerate(log) if kind == "send" and what[0] == topic]


def test_checkpoint_sends_buffered_summaries_before_it_commits():
    async def run() -> None:
        service, log = _service_with_pending_summaries()
        await service.checkpoint()
        sends = _summary_sends(service, log)
        commit = log.index(("commit", None))
        assert sends and max(sends) < commit
        pairs = [(k, p) for i in sends for k, _, _ in decode_batch(log[i][1][2])
                 for p in [log[i][1][1]]]
        assert sorted(pairs) == sorted((k, partition_for(k.encode(), 4))
                                       for k in ("ua:x", "pay:pm_1", "ip:10.0.0.0/24"))
        assert service.summary_batcher.pairs == 0

    asyncio.run(run())


def test_fausts_own_commits_send_buffered_summaries_first():
    """Faust commits on its own when the consumer stops and after an agent
    error; the wrapper installed on partition assignment flushes first."""
    async def run() -> None:
        service, log = _service_with_pending_summaries()
        app = service.app
        await app.on_partitions_assigned.send(set())
        await app.consumer.commit()
        sends = _summary_sends(service, log)
        assert sends and max(sends) < log.index(("commit", None))

    asyncio.run(run())


@pytest.mark.parametrize("value", [0, -1, 10.5, float("nan")])
def test_flush_interval_is_validated(value):
    from streams.errors import ConfigError
    from streams.settings import Settings

    with pytest.raises(ConfigError):
        Settings(summary_flush_interval_s=value)
    with pytest.raises(ConfigError):
        Settings(summary_batch_max_pairs=0)


@pytest.mark.parametrize("field, value", [
    ("r", -1.0), ("r", float("inf")), ("tp", 2.0), ("el", -0.5), ("s", 7.0),
    ("a", ""), ("k", []), ("k", ["x" * 5000]), ("fp", [-1]), ("n", -3),
    ("tt", [["coding", 3.0]]),
])
def test_summaries_the_detector_cannot_use_are_rejected_and_dead_lettered(field, value):
    """A well-formed summary with values no emitter produces (negative rate,
    shares outside [0, 1], empty or huge keys) is rejected at decode time with
    a reason for its dead-letter record, and the pairs around it still count."""
    proc = ClusterProcessor(ClusterDetector)
    good = _summary("a", ("ua:x",))
    bad = dict(good.to_json(), **{field: value})
    message = BATCH_V1 + orjson.dumps([[good.to_json(), ["ua:x"]], [bad, ["ua:x"]],
                                       [good.to_json(), ["ua:x"]]])
    proc.handle(message, None, 0)
    assert proc.summaries == 2 and proc.rejected == 1
    (reason, index), = proc.take_rejects()
    assert index == 1 and reason.startswith("bad account summary")
    assert proc.take_rejects() == []


def test_a_detector_exception_rejects_the_pair_instead_of_crashing_the_agent():
    class Exploding(ClusterDetector):
        def process(self, key, summary):  # type: ignore[no-untyped-def]
            if summary.account_id == "boom":
                raise ZeroDivisionError("float division by zero")
            return super().process(key, summary)

    reports: list[tuple[str, str]] = []
    proc = ClusterProcessor(Exploding, on_corrupt=lambda k, r: reports.append((k, r)))
    pairs = [[_summary(a, ("ua:x",)).to_json(), ["ua:x"]] for a in ("a", "boom", "b")]
    proc.handle(BATCH_V1 + orjson.dumps(pairs), None, 0)
    assert proc.summaries == 3 and proc.rejected == 1
    (reason, index), = proc.take_rejects()
    assert index == 1 and "ZeroDivisionError" in reason
    assert len(reports) == 1
    # the old one-summary format takes the same path
    assert proc.handle(_summary("boom", ("ua:x",)).encode(), b"ua:x", 0) == []
    assert proc.take_rejects()[0][1] is None
