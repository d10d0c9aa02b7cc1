"""Stage 1 of the cluster stage: :class:`AccountSummary`, what stage 2 learns
about one account, and :class:`SummaryEmitter`, which turns per-account state
into summaries at a bounded rate."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

import orjson

from detectors.cluster.keys import linkage_keys, topic_signature
from detectors.errors import CorruptState
from detectors.schema import Event, ValueObject

_MAX_SUMMARY_KEYS: Final = 64
_MAX_SUMMARY_ITEMS: Final = 64
_MAX_SUMMARY_STR: Final = 1024


def _unit(x: float) -> bool:
    """In [0, 1] (shares, scores), allowing rounding just above 1."""
    return 0.0 <= x <= 1.0 + 1e-9


def _summary_problem(s: AccountSummary) -> str:
    """Why a decoded summary is unusable ('' when it is fine)."""
    if not 0 < len(s.account_id) <= _MAX_SUMMARY_STR:
        return "account_id must be 1..1024 characters"
    if not (math.isfinite(s.ts) and math.isfinite(s.first_ts)):
        return "times must be finite"
    if not 0 < len(s.keys) <= _MAX_SUMMARY_KEYS:
        return "keys: 1..64 keys of 1..1024 characters"
    for k in s.keys:
        if not 0 < len(k) <= _MAX_SUMMARY_STR:
            return "keys: 1..64 keys of 1..1024 characters"
    if len(s.top_topics) > _MAX_SUMMARY_ITEMS or len(s.fps) > _MAX_SUMMARY_ITEMS:
        return "too many topics or fingerprints"
    for n, share in s.top_topics:
        if not (_unit(share) and len(n) <= _MAX_SUMMARY_STR):
            return "topic shares must be in [0, 1]"
    for fp in s.fps:
        if not 0 <= fp < 1 << 64:
            return "fingerprints must be unsigned 64-bit integers"
    if not (_unit(s.template) and _unit(s.elicitation) and _unit(s.flatness)
            and _unit(s.score)):
        return "template, elicitation, flatness and score must be in [0, 1]"
    if not (math.isfinite(s.rate) and s.rate >= 0.0):
        return "rate must be finite and >= 0"
    if s.events < 0:
        return "events must be >= 0"
    return ""


#: the field names of :class:`AccountSummary`, in order
SUMMARY_FIELDS: Final = (
    "account_id", "ts", "first_ts", "keys", "top_topics", "fps", "template", "elicitation",
    "flatness", "rate", "score", "events",
)


class AccountSummary(ValueObject):
    """What stage 2 learns about one account, at one point in event time.

    ``fps`` are the distinct prompt fingerprints of the account's recent
    prompts (those repeated within the account first), never prompt text.

    A value object (:class:`detectors.schema.ValueObject`): the worker builds
    one per summary and decodes one per summaries partition it is sent to.

    >>> s = AccountSummary("a", 1e9 + 60, 1e9, ("pay:pm_1",), (("coding/go", 0.9),),
    ...                    (7, 9), 0.5, 0.25, 0.1, 2.5, 0.4, 12)
    >>> AccountSummary.decode(s.encode()) == s
    True
    """

    __slots__ = SUMMARY_FIELDS
    FIELDS = SUMMARY_FIELDS

    account_id: str
    ts: float
    first_ts: float
    keys: tuple[str, ...]
    top_topics: tuple[tuple[str, float], ...]
    fps: tuple[int, ...]
    template: float
    elicitation: float
    flatness: float
    rate: float
    score: float
    events: int

    def __init__(
        self,
        account_id: str,
        ts: float,
        first_ts: float,
        keys: tuple[str, ...],
        top_topics: tuple[tuple[str, float], ...] = (),
        fps: tuple[int, ...] = (),
        template: float = 0.0,
        elicitation: float = 0.0,
        flatness: float = 0.0,
        rate: float = 0.0,
        score: float = 0.0,
        events: int = 0,
    ) -> None:
        self.account_id = account_id
        self.ts = ts
        self.first_ts = first_ts
        self.keys = keys
        self.top_topics = top_topics
        self.fps = fps
        self.template = template
        self.elicitation = elicitation
        self.flatness = flatness
        self.rate = rate
        self.score = score
        self.events = events

    def _values(self) -> tuple[Any, ...]:
        return (self.account_id, self.ts, self.first_ts, self.keys, self.top_topics, self.fps,
                self.template, self.elicitation, self.flatness, self.rate, self.score,
                self.events)

    def to_json(self) -> dict[str, Any]:
        return {
            "a": self.account_id,
            "t": self.ts,
            "f": self.first_ts,
            "k": list(self.keys),
            "tt": [[n, s] for n, s in self.top_topics],
            "fp": list(self.fps),
            "tp": self.template,
            "el": self.elicitation,
            "fl": self.flatness,
            "r": self.rate,
            "s": self.score,
            "n": self.events,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> AccountSummary:
        """Inverse of :meth:`to_json`, validated: a summary read from Kafka is
        input like any other, and a value the cluster detector cannot handle
        (a negative rate, a NaN share, a 10 MB key) is rejected here with
        :class:`CorruptState` instead of failing deep inside it.

        >>> AccountSummary.from_json({"a": "x", "t": 1e9, "f": 1e9, "k": ["ua:y"], "r": -1})
        Traceback (most recent call last):
        ...
        detectors.errors.CorruptState: bad account summary: rate must be finite and >= 0
        """
        # list comprehensions, not generator expressions: compiled, a
        # generator object per field made this 5.5 us a summary (the worker
        # decodes each summary once per summaries partition it is sent to)
        try:
            summary = cls(
                str(obj["a"]),
                float(obj["t"]),
                float(obj["f"]),
                tuple([str(k) for k in obj["k"]]),
                tuple([(str(n), float(s)) for n, s in obj.get("tt", ())]),
                tuple([int(x) for x in obj.get("fp", ())]),
                float(obj.get("tp", 0.0)),
                float(obj.get("el", 0.0)),
                float(obj.get("fl", 0.0)),
                float(obj.get("r", 0.0)),
                float(obj.get("s", 0.0)),
                int(obj.get("n", 0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptState(f"bad account summary: {exc}") from None
        problem = _summary_problem(summary)
        if problem:
            raise CorruptState(f"bad account summary: {problem}")
        return summary

    def encode(self) -> bytes:
        return orjson.dumps(self.to_json())

    @classmethod
    def decode(cls, data: bytes) -> AccountSummary:
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise CorruptState(f"bad account summary: {exc}") from None
        if not isinstance(obj, dict):
            raise CorruptState("bad account summary: not an object")
        return cls.from_json(obj)


class SummaryEmitter:
    """Stage 1: turns per-account state into :class:`AccountSummary` records
    at a bounded rate.

    An account emits on its first event and then on its first event in each
    new ``interval_s`` bucket of event time (``floor(ts / interval_s)``), so
    the rate is at most one summary per account per interval and the decision
    needs no state of its own: it compares the event time with the account's
    previous ``last_ts``, which the runner reads before the event is applied.
    The same input therefore yields the same summaries after a restart.

    Parameters
    ----------
    interval_s
        Event-time spacing of an account's summaries.
    max_template_keys
        How many of the account's repeated prompt fingerprints become ``tmpl:``
        linkage keys.
    max_fps
        How many prompt fingerprints a summary carries as behaviour.
    lsh_bands
        MinHash bands of the dominant-topic signature (``lsh:`` keys).
    topic_min_share
        Share a topic needs to count as dominant for the signature.

    Examples
    --------
    >>> from detectors.engine import Detector
    >>> det, em = Detector(), SummaryEmitter(interval_s=300)
    >>> state, _ = det.process(None, Event(1e9, "a", topic="coding/go", ip="10.0.0.1"))
    >>> s = em.maybe_emit(det, None, state, Event(1e9, "a", topic="coding/go", ip="10.0.0.1"))
    >>> s.keys[0], s.first_ts
    ('ip:10.0.0.0/24', 1000000000.0)
    >>> ev = Event(1e9 + 60, "a", topic="coding/go")
    >>> prev = state.last_ts; state, _ = det.process(state, ev)
    >>> em.maybe_emit(det, prev, state, ev) is None   # same 5-minute bucket
    True
    """

    def __init__(
        self,
        interval_s: float = 300.0,
        max_template_keys: int = 2,
        max_fps: int = 8,
        lsh_bands: int = 2,
        topic_min_share: float = 0.15,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s!r}")
        self.interval_s = interval_s
        self.max_template_keys = max_template_keys
        self.max_fps = max_fps
        self.lsh_bands = lsh_bands
        self.topic_min_share = topic_min_share

    def due(self, prev_last_ts: float | None, ts: float) -> bool:
        """Whether an event at ``ts`` after one at ``prev_last_ts`` emits."""
        if prev_last_ts is None:
            return True
        step = self.interval_s
        return ts // step > prev_last_ts // step

    def maybe_emit(
        self, detector: Any, prev_last_ts: float | None, state: Any, event: Event
    ) -> AccountSummary | None:
        if prev_last_ts is not None:  # as due()
            step = self.interval_s
            if not event.ts // step > prev_last_ts // step:
                return None
        return self.summarize(detector, state, event)

    def summarize(self, detector: Any, state: Any, event: Event) -> AccountSummary:
        ts = event.ts
        lean = getattr(detector, "summary_features", None)
        if lean is not None:
            # the six values a summary needs, not the whole features() dict
            # (about 3 us a summary less; same numbers, see its docstring)
            n_events, rate, top_list, tmpl, elic, flat = lean(state, ts)
        else:
            feats = detector.features(state, ts)
            get = feats.get
            top_list = feats.get("top_topics", ())[:3]
            n_events = get("events", 0)
            rate = get("rate_per_min", 0.0)
            tmpl = get("template_repetition", 0.0)
            elic = get("elicitation_share", 0.0)
            flat = get("hour_flatness", 0.0)
        # (-count, fingerprint) of the recent prompt fingerprints, most repeated
        # first, ties to the lower fingerprint; 0 is an empty ring slot
        ranked = []
        prev = n = 0
        for fp in sorted(getattr(state, "anchors", ())):
            if fp == prev:
                n += 1
                continue
            if prev:
                ranked.append((-n, prev))
            prev, n = fp, 1
        if prev:
            ranked.append((-n, prev))
        ranked.sort()
        common = getattr(detector, "common_fps", None)
        if common is not None and ranked:
            # common text (a sentence a fifth of all accounts send) links
            # nobody (detectors/commonness.py)
            ranked = [(n, fp) for n, fp in ranked if not common.is_common(fp)]
        repeated = [fp for n, fp in ranked[: self.max_template_keys] if n <= -2]
        top = tuple([(str(name), round(float(share), 4)) for name, share in top_list])
        lsh = topic_signature(top, self.lsh_bands, self.topic_min_share)
        return AccountSummary(
            event.account_id,
            ts,
            float(getattr(state, "first_ts", ts)),
            tuple(linkage_keys(event, repeated, lsh)),
            top,
            tuple([fp for _, fp in ranked[: self.max_fps]]),
            float(tmpl),
            float(elic),
            float(flat),
            float(rate),
            round(float(getattr(state, "score", 0.0)), 4),
            int(n_events),
        )

