"""A cluster's state: a capped sample of :class:`Member` behaviour, the
sketches of all its members, the alert lifecycle; and its table encoding
(:func:`encode_entry`, :func:`decode_entry`, byte for byte what the changelog
and checkpoints hold)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from detectors.cluster.sketches import BloomFilter, HyperLogLog
from detectors.errors import CorruptState

_VERSION: Final = 1


# init=False and the __init__ below: compiled (tools.native), the __init__
# that dataclass generates is interpreted Python, 4k instructions a member,
# one member for every summary applied to a sampled cluster
@dataclass(slots=True, init=False)
class Member:
    """The latest behaviour of one sampled member of a cluster."""

    h: int
    first_ts: float
    last_ts: float
    top: str
    top_share: float
    fps: tuple[int, ...]
    template: float
    elicitation: float
    flatness: float
    rate: float
    score: float
    keys: tuple[str, ...]

    def __init__(
        self,
        h: int,
        first_ts: float,
        last_ts: float,
        top: str,
        top_share: float,
        fps: tuple[int, ...],
        template: float,
        elicitation: float,
        flatness: float,
        rate: float,
        score: float,
        keys: tuple[str, ...],
    ) -> None:
        self.h = h
        self.first_ts = first_ts
        self.last_ts = last_ts
        self.top = top
        self.top_share = top_share
        self.fps = fps
        self.template = template
        self.elicitation = elicitation
        self.flatness = flatness
        self.rate = rate
        self.score = score
        self.keys = keys

    def to_json(self) -> list[Any]:
        return [
            self.h,
            self.first_ts,
            self.last_ts,
            self.top,
            self.top_share,
            list(self.fps),
            self.template,
            self.elicitation,
            self.flatness,
            self.rate,
            self.score,
            list(self.keys),
        ]

    @classmethod
    def from_json(cls, v: Sequence[Any]) -> Member:
        return cls(
            int(v[0]),
            float(v[1]),
            float(v[2]),
            str(v[3]),
            float(v[4]),
            tuple(int(x) for x in v[5]),
            float(v[6]),
            float(v[7]),
            float(v[8]),
            float(v[9]),
            float(v[10]),
            tuple(str(k) for k in v[11]),
        )


class Cluster:
    """State of one linkage key with at least two distinct members.

    ``members`` is a capped sample (at most ``max_sample``): all members while
    the cluster is small, then a bottom-k sample by account hash whose stale
    members make room for active ones. ``hll`` counts every distinct member
    once the sample is full. ``alerted`` remembers (with a Bloom filter) which
    members already got a ``cluster_member`` alert in the open episode.
    """

    __slots__ = (
        "key",
        "members",
        "hll",
        "first_ts",
        "last_ts",
        "last_scored",
        "score",
        "episode_start",
        "last_hot",
        "peak",
        "alerted",
        "fire_sev",
        "evidence",
        "_evict",
        "_fpc",
        "_hot",
        "_top",
        "_oldest",
    )

    def __init__(self, key: str, ts: float) -> None:
        self.key = key
        self.members: dict[str, Member] = {}
        self.hll: HyperLogLog | None = None
        self.first_ts = ts
        self.last_ts = ts
        self.last_scored = 0.0
        self.score = 0.0
        self.episode_start = 0.0
        self.last_hot = 0.0
        self.peak = 0.0
        self.alerted: BloomFilter | None = None
        #: the open episode's firing severity ("": none, or restored from a
        #: state written before it was kept), repeated by its resolved record
        self.fire_sev = ""
        self.evidence: dict[str, Any] = {}
        # derived, not checkpointed: ``(hash, account_id)`` of the sampled member
        # with the largest hash, the first to go from a full sample (None: to find)
        self._evict: tuple[int, str] | None = None
        # derived, not checkpointed (rebuilt from the members when None): how
        # many times each prompt fingerprint occurs over the sampled members,
        # kept up to date by every change of the sample, so that whether a
        # coordinated core can exist is known without looking at the members
        # (ClusterDetector._cannot_score)
        self._fpc: dict[int, int] | None = None
        # how many fingerprints occur at least ``min_members`` times (exact)
        self._hot = 0
        # an upper bound of the largest count in ``_fpc`` (lowered when read)
        self._top = 0
        # a lower bound of the sampled members' last_ts (-inf: unknown), so
        # that a prune finds nothing stale without a scan
        self._oldest = -math.inf

    @property
    def kind(self) -> str:
        return self.key.partition(":")[0]

    def count(self) -> int:
        if self.hll is None:
            return len(self.members)
        return max(self.hll.count(), len(self.members))

    def to_json(self) -> dict[str, Any]:
        return {
            "v": _VERSION,
            "key": self.key,
            "m": {a: m.to_json() for a, m in sorted(self.members.items())},
            "hll": None if self.hll is None else self.hll.to_json(),
            "f": self.first_ts,
            "l": self.last_ts,
            "ls": self.last_scored,
            "s": self.score,
            "es": self.episode_start,
            "lh": self.last_hot,
            "pk": self.peak,
            "al": None if self.alerted is None else self.alerted.to_json(),
            # optional both ways (no version change): older readers ignore it,
            # older states lack it (their open episodes resolve without it)
            **({"fs": self.fire_sev} if self.fire_sev else {}),
            "ev": self.evidence,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Cluster:
        c = cls(str(obj["key"]), float(obj["f"]))
        c.members = {str(a): Member.from_json(v) for a, v in obj["m"].items()}
        c.hll = None if obj["hll"] is None else HyperLogLog.from_json(obj["hll"])
        c.last_ts = float(obj["l"])
        c.last_scored = float(obj["ls"])
        c.score = float(obj["s"])
        c.episode_start = float(obj["es"])
        c.last_hot = float(obj["lh"])
        c.peak = float(obj["pk"])
        c.alerted = None if obj["al"] is None else BloomFilter.from_json(obj["al"])
        c.fire_sev = str(obj.get("fs") or "")
        c.evidence = dict(obj.get("ev") or {})
        return c


def encode_entry(entry: Cluster | tuple[int, float]) -> bytes:
    """Table value of one key: a cluster, or a single member ``(hash, last_ts)``."""
    if isinstance(entry, Cluster):
        return orjson.dumps(entry.to_json())
    return orjson.dumps({"v": _VERSION, "single": [entry[0], entry[1]]})


def decode_entry(data: bytes) -> Cluster | tuple[int, float]:
    """Inverse of :func:`encode_entry`; raises :class:`CorruptState`."""
    try:
        obj = orjson.loads(data)
        if not isinstance(obj, dict) or obj.get("v") != _VERSION:
            raise CorruptState("unknown cluster state version")
        if "single" in obj:
            h, ts = obj["single"]
            return int(h), float(ts)
        return Cluster.from_json(obj)
    except CorruptState:
        raise
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, IndexError) as exc:
        raise CorruptState(f"cannot decode cluster state: {exc}") from None


Loader = Callable[[str], "Cluster | tuple[int, float] | None"]
