"""Group liveness the embedded broker does not provide: dead members are removed.

noida-db (0.2.x) never expires a consumer-group member whose process died:
the group keeps it, its partitions stay assigned to nobody alive, and a new
member's join waits for it forever (issue 21: a replacement under another web
port processed 0 of 34,405 events in 2.5 minutes; two workers, one killed, half
the accounts unwatched for good). Kafka does this with the session timeout:
a member that sends no Heartbeat request for ``session.timeout.ms`` is removed
by the group coordinator and the group rebalances.

Here every worker does it for its group, through the broker only:

* each worker process has an *incarnation* id (host, pid, random), used as its
  Kafka ``client.id``, so DescribeGroups names the process behind each member;
* a thread writes a heartbeat record, keyed by the incarnation, to a small
  compacted topic ``<app_id>-liveness`` every ``liveness_interval_s``, and reads
  everybody's heartbeats back;
* a member whose incarnation carries this module's marker and whose heartbeats
  this worker has not *seen arrive* for ``liveness_timeout_s`` is removed from
  the group (LeaveGroup on its behalf, as Kafka's AdminClient
  ``removeMembersFromConsumerGroup`` does); the group then rebalances its
  partitions onto the living.

Why it cannot remove a live member (:class:`MemberWatch` holds the rules):
staleness is measured on this worker's own monotonic clock from when it saw
records arrive, never from timestamps written by other hosts (no clock skew);
a member is judged only over time during which this worker's *own* heartbeats
made the round trip (so a broker outage, a network cut, or a topic this worker
may not write or read suspends every judgement until the path has worked for a
whole timeout again); a member gets a whole timeout of grace from when this
worker first saw it; members without the marker (other software, older
distillwatch versions) are never touched. On a real Kafka cluster the session
timeout (6 s) removes a dead member long before ``liveness_timeout_s`` (12 s),
so the check finds nothing to do; ``DISTILLWATCH_LIVENESS_TIMEOUT_S=0`` turns it
off altogether.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog

from streams.service.topics import liveness_topic
from streams.settings import Settings

log = structlog.get_logger("distillwatch.liveness")

#: client.id prefix of a worker that heartbeats (and may therefore be judged)
MARKER = "dwlive-"


def incarnation_id() -> str:
    """This process's identity in the group: ``dwlive-<host>-<pid>-<random>``.

    >>> incarnation_id().startswith(MARKER)
    True
    """
    host = "".join(c if c.isalnum() or c in "-." else "-" for c in socket.gethostname())[:40]
    return f"{MARKER}{host}-{os.getpid()}-{secrets.token_hex(3)}"


@dataclass
class MemberWatch:
    """Decides which group members are dead, from heartbeats seen arriving.

    Time is an input (monotonic seconds of this process).

    >>> w = MemberWatch(own="dwlive-a", timeout_s=10.0, interval_s=2.0)
    >>> members = [("m-a", "dwlive-a"), ("m-b", "dwlive-b"), ("m-x", "other-client")]
    >>> for t in range(0, 30, 2):
    ...     w.heard("dwlive-a", float(t))
    ...     w.heard("dwlive-b", float(t)) if t < 6 else None
    ...     if w.dead(members, float(t)):
    ...         break
    >>> t, w.dead(members, float(t))  # b last heard at t=4; dead after 10 s more
    (16, ['m-b'])
    >>> MemberWatch("dwlive-a", 10.0, 2.0).dead(members, 28.0)  # own heartbeats never seen
    []
    """

    own: str
    timeout_s: float
    interval_s: float
    #: incarnation -> when its latest heartbeat was seen arriving
    last_heard: dict[str, float] = field(default_factory=dict)
    #: member id -> when this watch first saw it in the group
    first_seen: dict[str, float] = field(default_factory=dict)
    #: since when this worker's own heartbeats have made the round trip without a gap
    path_ok_since: float | None = None
    _own_last: float | None = None

    def heard(self, incarnation: str, now: float) -> None:
        """A new heartbeat record of ``incarnation`` arrived."""
        self.last_heard[incarnation] = now
        if incarnation == self.own:
            gap_ok = self._own_last is not None and now - self._own_last <= self._max_gap
            if not gap_ok or self.path_ok_since is None:
                self.path_ok_since = now
            self._own_last = now

    @property
    def _max_gap(self) -> float:
        # a round trip later than this is an interruption (outage, stall)
        return max(3.0 * self.interval_s, self.timeout_s / 2.0)

    def path_ok(self, now: float) -> bool:
        """This worker's own heartbeats make the round trip (none overdue)."""
        if self._own_last is None or now - self._own_last > self._max_gap:
            self.path_ok_since = None
            return False
        return self.path_ok_since is not None

    def dead(self, members: Iterable[tuple[str, str]], now: float) -> list[str]:
        """Member ids (of ``(member_id, client_id)`` pairs) to remove now."""
        members = list(members)
        current = {member_id for member_id, _ in members}
        for member_id in list(self.first_seen):
            if member_id not in current:
                del self.first_seen[member_id]
        for member_id in current:
            self.first_seen.setdefault(member_id, now)
        if not self.path_ok(now):
            return []
        assert self.path_ok_since is not None
        out = []
        for member_id, client_id in members:
            if not client_id.startswith(MARKER) or client_id == self.own:
                continue
            since = max(self.last_heard.get(client_id, float("-inf")),
                        self.first_seen[member_id], self.path_ok_since)
            if now - since > self.timeout_s:
                out.append(member_id)
        return out

    def forget(self, incarnation: str) -> None:
        self.last_heard.pop(incarnation, None)


class LivenessThread:
    """Heartbeats for this worker and removes dead members of its group.

    A daemon thread with its own kafka-python clients: it keeps working while
    the worker's event loop is busy or its consumer is stuck in a join that
    waits for a dead member. Every failure is logged and retried; it never
    stops the worker.
    """

    def __init__(self, settings: Settings, incarnation: str, *,
                 clock: Callable[[], float] = time.monotonic,
                 describe: Callable[[], dict[str, Any]] | None = None) -> None:
        self.settings = settings
        self.incarnation = incarnation
        self.topic = liveness_topic(settings)
        self.group = settings.app_id
        self.clock = clock
        self.watch = MemberWatch(incarnation, settings.liveness_timeout_s,
                                 settings.liveness_interval_s)
        self.evicted: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seq = 0
        self._clients: dict[str, Any] = {}
        self._describe = describe
        self._failing = False

    # -- lifecycle ------------------------------------------------------------
    def start(self) -> LivenessThread:
        self._thread = threading.Thread(target=self._run, name="liveness", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop heartbeating; leave a tombstone so compaction drops our key.
        Bounded (a few seconds at most, also with the broker gone): it runs
        inside the worker's shutdown."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():  # stuck on the broker: leave it to the exit
                return
        producer = self._clients.get("producer")
        if producer is not None:
            try:
                producer.send(self.topic, key=self.incarnation.encode(), value=None)
                producer.flush(1)
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass
        for name, client in self._clients.items():
            try:
                client.close(1) if name == "producer" else client.close()
            except Exception:  # noqa: BLE001
                pass
        self._clients.clear()

    # -- the loop -------------------------------------------------------------
    def _run(self) -> None:
        # kafka-python warns on every DescribeGroups that it cannot decode
        # Faust's member metadata; we only read member and client ids
        logging.getLogger("kafka.admin._groups").setLevel(logging.ERROR)
        interval = self.settings.liveness_interval_s
        while not self._stop.is_set():
            started = self.clock()
            try:
                self.tick()
                if self._failing:
                    log.info("liveness_recovered")
                    self._failing = False
            except Exception as exc:  # noqa: BLE001 - broker trouble: retry next tick
                if not self._failing:
                    log.warning("liveness_check_failed", error=f"{type(exc).__name__}: {exc}")
                    self._failing = True
                for client in self._clients.values():
                    try:
                        client.close()
                    except Exception:  # noqa: BLE001
                        pass
                self._clients.clear()
            self._stop.wait(max(0.05, interval - (self.clock() - started)))

    def _client(self, name: str) -> Any:
        client = self._clients.get(name)
        if client is not None:
            return client
        from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition  # type: ignore[import-untyped]

        from streams.service.topics import kafka_python_security

        common = {"bootstrap_servers": self.settings.bootstrap_servers,
                  "request_timeout_ms": 5000, **kafka_python_security(self.settings)}
        if name == "producer":
            client = KafkaProducer(linger_ms=0, client_id=f"{self.incarnation}-hb",
                                   max_block_ms=5000, **common)
        elif name == "consumer":
            client = KafkaConsumer(group_id=None, enable_auto_commit=False,
                                   client_id=f"{self.incarnation}-hb",
                                   fetch_max_wait_ms=100, **common)
            tp = TopicPartition(self.topic, 0)
            client.assign([tp])
            client.seek_to_end(tp)  # heartbeats written before we started tell nothing
        else:
            client = KafkaAdminClient(client_id=f"{self.incarnation}-hb", **common)
        self._clients[name] = client
        return client

    def tick(self) -> list[str]:
        """One heartbeat, one read of everybody's, one judgement. Returns the
        member ids removed."""
        producer = self._client("producer")
        consumer = self._client("consumer")
        self._seq += 1
        value = orjson.dumps({"incarnation": self.incarnation, "seq": self._seq,
                              "pid": os.getpid(), "host": socket.gethostname(),
                              "url": f"http://{self.settings.web_host}:{self.settings.web_port}",
                              "at": time.time()})
        producer.send(self.topic, key=self.incarnation.encode(), value=value).get(timeout=5)
        self._read(consumer)
        members = self._members()
        dead = self.watch.dead(members, self.clock())
        if dead:
            self._remove(dead, dict(members))
        return dead

    def _read(self, consumer: Any) -> None:
        from kafka import TopicPartition

        tp = TopicPartition(self.topic, 0)
        end = consumer.end_offsets([tp])[tp]
        deadline = self.clock() + 3.0
        while consumer.position(tp) < end and self.clock() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                now = self.clock()
                for record in records:
                    if record.key and record.value is not None:
                        self.watch.heard(record.key.decode("utf-8", "replace"), now)

    def _members(self) -> list[tuple[str, str]]:
        group = self._describe() if self._describe else self._describe_group()
        return [(str(m["member_id"]), str(m.get("client_id", "")))
                for m in group.get("members", [])]

    def _describe_group(self) -> dict[str, Any]:
        admin = self._client("admin")
        found = admin.describe_groups([self.group]).get(self.group) or {}
        return dict(found)

    def _remove(self, member_ids: list[str], clients: dict[str, str]) -> None:
        from kafka.admin import MemberToRemove  # type: ignore[import-untyped]

        admin = self._client("admin")
        admin.remove_group_members(self.group,
                                   [MemberToRemove(member_id=m) for m in member_ids])
        now = self.clock()
        for member_id in member_ids:
            incarnation = clients.get(member_id, "")
            heard = self.watch.last_heard.get(incarnation)
            entry = {"member_id": member_id, "incarnation": incarnation,
                     "last_heard_s_ago": None if heard is None else round(now - heard, 1)}
            self.evicted.append(entry)
            log.warning("dead_member_evicted", group=self.group, **entry,
                        timeout_s=self.settings.liveness_timeout_s)
            if incarnation:
                # its key is of no more use: let compaction drop it
                self._client("producer").send(self.topic, key=incarnation.encode(), value=None)
                self.watch.forget(incarnation)
