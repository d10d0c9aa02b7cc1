"""The event schema: one JSON object per API request.

Parsing is strict about the two required fields and about the types of the
optional ones, so that every message is either processed or dead-lettered with
a reason a producer team can act on.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar, Final

import orjson

from detectors.errors import InvalidEvent

# Accepted event-time range: 2000-01-01 .. 2100-01-01 (epoch seconds). Anything
# outside is a producer bug (seconds sent as microseconds, zeroed clocks).
MIN_TS: Final = 946_684_800.0
MAX_TS: Final = 4_102_444_800.0
# Epoch numbers above this are taken as milliseconds (1e11 s is year 5138).
_MS_THRESHOLD: Final = 1e11

MAX_ID_CHARS: Final = 256
MAX_FIELD_CHARS: Final = 1024
MAX_TOKENS: Final = 10_000_000

_STR_FIELDS: Final = (
    "request_id",
    "model",
    "topic",
    "org_id",
    "api_key_id",
    "ip",
    "user_agent",
    "payment_fingerprint",
    "stop_reason",
    "system_prompt_fingerprint",
)


class ValueObject:
    """Base of the compiled value classes (:class:`Event`,
    :class:`detectors.cluster.AccountSummary`): ``==`` and ``hash`` over
    ``_values()``, ``repr`` over ``FIELDS`` (fields that are None left out).

    They are plain classes rather than frozen dataclasses because a
    dataclass's generated ``__init__`` stays Python even when the module is
    compiled, and a frozen one sets each field through ``object.__setattr__``
    (1.5-1.6 us per object, made once per event or summary).
    """

    __slots__ = ()

    #: the field names, in ``_values()`` order
    FIELDS: ClassVar[tuple[str, ...]] = ()

    def _values(self) -> tuple[Any, ...]:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, ValueObject)
        return self._values() == other._values()

    def __ne__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, ValueObject)
        return self._values() != other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = [f"{n}={v!r}" for n, v in zip(self.FIELDS, self._values(), strict=True)
                 if v is not None]
        return f"{type(self).__name__}({', '.join(shown)})"


#: the field names of :class:`Event`, in order
EVENT_FIELDS: Final = (
    "ts", "account_id", "request_id", "model", "topic", "prompt", "input_tokens",
    "output_tokens", "org_id", "api_key_id", "ip", "user_agent", "payment_fingerprint",
    "max_tokens", "stop_reason", "thinking", "system_prompt_fingerprint",
)


class Event(ValueObject):
    """One API request, normalized. ``ts`` is event time in epoch seconds.

    A value object (:class:`ValueObject`): nothing in distillwatch changes an
    event after :func:`parse_event` made it.

    >>> Event(1e9, "a", topic="math") == Event(1e9, "a", topic="math")
    True
    >>> Event(1e9, "a", topic="math")
    Event(ts=1000000000.0, account_id='a', topic='math')
    """

    __slots__ = EVENT_FIELDS
    FIELDS = EVENT_FIELDS

    ts: float
    account_id: str
    request_id: str | None
    model: str | None
    topic: str | None
    prompt: str | None
    input_tokens: int | None
    output_tokens: int | None
    org_id: str | None
    api_key_id: str | None
    ip: str | None
    user_agent: str | None
    payment_fingerprint: str | None
    max_tokens: int | None
    stop_reason: str | None
    thinking: bool | None
    system_prompt_fingerprint: str | None

    def __init__(
        self,
        ts: float,
        account_id: str,
        request_id: str | None = None,
        model: str | None = None,
        topic: str | None = None,
        prompt: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        org_id: str | None = None,
        api_key_id: str | None = None,
        ip: str | None = None,
        user_agent: str | None = None,
        payment_fingerprint: str | None = None,
        max_tokens: int | None = None,
        stop_reason: str | None = None,
        thinking: bool | None = None,
        system_prompt_fingerprint: str | None = None,
    ) -> None:
        self.ts = ts
        self.account_id = account_id
        self.request_id = request_id
        self.model = model
        self.topic = topic
        self.prompt = prompt
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.org_id = org_id
        self.api_key_id = api_key_id
        self.ip = ip
        self.user_agent = user_agent
        self.payment_fingerprint = payment_fingerprint
        self.max_tokens = max_tokens
        self.stop_reason = stop_reason
        self.thinking = thinking
        self.system_prompt_fingerprint = system_prompt_fingerprint

    def _values(self) -> tuple[Any, ...]:
        return (self.ts, self.account_id, self.request_id, self.model, self.topic,
                self.prompt, self.input_tokens, self.output_tokens, self.org_id,
                self.api_key_id, self.ip, self.user_agent, self.payment_fingerprint,
                self.max_tokens, self.stop_reason, self.thinking, self.system_prompt_fingerprint)


def _rfc3339_kernel() -> Callable[[str], float | None] | None:
    """The C parser of the usual RFC 3339 layout (``detectors/_eventscan.c``),
    when ``python -m tools.native build`` compiled it."""
    try:
        from detectors import _eventscan
    except ImportError:
        return None
    return _eventscan.rfc3339


# Final: the compiled module reads it as a C static, not from the module dict
_C_RFC3339: Final = _rfc3339_kernel()


def parse_ts(value: Any) -> float:
    """Parse an event time: RFC 3339 text, or epoch seconds / milliseconds.

    >>> parse_ts("2026-02-23T10:00:00Z")
    1771840800.0
    >>> parse_ts(1771840800000)
    1771840800.0
    """
    if _C_RFC3339 is not None and type(value) is str:
        # YYYY-MM-DDTHH:MM:SS[.ffffff](Z|+00:00) in range, the same float as
        # below (tests/unit/test_eventscan.py); anything else falls through
        fast = _C_RFC3339(value)
        if fast is not None:
            return fast
    if isinstance(value, bool):
        raise InvalidEvent("ts: boolean is not a timestamp")
    if isinstance(value, (int, float)):
        ts = float(value)
        if not math.isfinite(ts):
            raise InvalidEvent("ts: not a finite number")
        if abs(ts) >= _MS_THRESHOLD:
            ts /= 1000.0
    elif isinstance(value, str):
        if len(value) > 64:
            raise InvalidEvent("ts: string too long for a timestamp")
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise InvalidEvent(f"ts: not RFC 3339: {value[:40]!r}") from None
        if parsed.tzinfo is None:
            raise InvalidEvent("ts: RFC 3339 timestamp lacks a UTC offset")
        ts = parsed.timestamp()
    elif value is None:
        raise InvalidEvent("ts: missing")
    else:
        raise InvalidEvent(f"ts: expected string or number, got {type(value).__name__}")
    if not MIN_TS <= ts < MAX_TS:
        raise InvalidEvent(f"ts: {ts:.0f} outside 2000-01-01..2100-01-01")
    return ts


def format_ts(ts: float) -> str:
    """Format epoch seconds as RFC 3339 UTC with millisecond precision.

    >>> format_ts(1771840800.25)
    '2026-02-23T10:00:00.250Z'
    """
    whole = math.floor(ts)
    millis = int(round((ts - whole) * 1000))
    if millis == 1000:
        whole, millis = whole + 1, 0
    stamp = datetime.utcfromtimestamp(whole).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{millis:03d}Z"


def _opt_str(obj: dict[str, Any], name: str, limit: int) -> str | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidEvent(f"{name}: expected string, got {type(value).__name__}")
    if len(value) > limit:
        raise InvalidEvent(f"{name}: longer than {limit} characters")
    return value


def _opt_tokens(obj: dict[str, Any], name: str) -> int | None:
    value = obj.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise InvalidEvent(f"{name}: expected non-negative integer")
    if not 0 <= value <= MAX_TOKENS:
        raise InvalidEvent(f"{name}: {value} outside 0..{MAX_TOKENS}")
    return value


def parse_event(obj: Any, *, max_prompt_chars: int = 200_000) -> Event:
    """Validate one decoded JSON value and return an :class:`Event`.

    Unknown fields are ignored; ``null`` counts as absent for optional fields.

    >>> parse_event({"ts": 1771840800, "account_id": "acct-1", "topic": "coding/python"}).topic
    'coding/python'
    >>> parse_event({"ts": 1771840800})
    Traceback (most recent call last):
    ...
    detectors.errors.InvalidEvent: account_id: missing
    """
    if type(obj) is not dict:
        raise InvalidEvent(f"event: expected JSON object, got {_json_type(obj)}")
    # typed, so the compiled module looks keys up with PyDict_GetItem rather
    # than calling ``obj.get`` through the interpreter
    d: dict[str, Any] = obj
    account_id = d.get("account_id")
    if type(account_id) is not str or not 0 < len(account_id) <= MAX_ID_CHARS \
            or not account_id.isprintable() or account_id.isspace():
        _check_account_id(account_id)
    value = d.get("ts")
    # hot path: epoch seconds as a number in range
    if (type(value) is float or type(value) is int) and MIN_TS <= value < MAX_TS:
        ts = float(value)
    else:
        ts = parse_ts(value)
    # Optional strings: one pass, the slow checker only when something is off.
    fields: list[Any] = []
    for name in _STR_FIELDS:
        v = d.get(name)
        if v is not None and (type(v) is not str or len(v) > MAX_FIELD_CHARS):
            v = _opt_str(obj, name, MAX_FIELD_CHARS)
        fields.append(v)
    prompt = d.get("prompt")
    if prompt is not None and (type(prompt) is not str or len(prompt) > max_prompt_chars):
        prompt = _opt_str(obj, "prompt", max_prompt_chars)
    tin = d.get("input_tokens")
    if tin is not None and (type(tin) is not int or not 0 <= tin <= MAX_TOKENS):
        tin = _opt_tokens(obj, "input_tokens")
    tout = d.get("output_tokens")
    if tout is not None and (type(tout) is not int or not 0 <= tout <= MAX_TOKENS):
        tout = _opt_tokens(obj, "output_tokens")
    request_id, model, topic, org_id, api_key_id, ip, user_agent, payment, stop, sysfp = fields
    limit = d.get("max_tokens")
    if limit is not None and (type(limit) is not int or not 0 <= limit <= MAX_TOKENS):
        limit = _opt_tokens(obj, "max_tokens")
    thinking = d.get("thinking")
    if thinking is not None and type(thinking) is not bool:
        raise InvalidEvent(f"thinking: expected boolean, got {_json_type(thinking)}")
    return Event(ts, str(account_id), request_id, model, topic, prompt, tin, tout, org_id,
                 api_key_id, ip, user_agent, payment, limit, stop, thinking, sysfp)


def _check_account_id(account_id: Any) -> None:
    if account_id is None:
        raise InvalidEvent("account_id: missing")
    if not isinstance(account_id, str):
        raise InvalidEvent(f"account_id: expected string, got {_json_type(account_id)}")
    if not account_id.strip():
        raise InvalidEvent("account_id: empty")
    if len(account_id) > MAX_ID_CHARS:
        raise InvalidEvent(f"account_id: longer than {MAX_ID_CHARS} characters")
    raise InvalidEvent("account_id: contains control or non-printable characters")


def decode_message(
    raw: bytes | None, *, max_bytes: int = 1_048_576, max_batch: int = 10_000
) -> list[Any]:
    """Decode one Kafka message value into a list of JSON values.

    A message carries either one event object or a JSON array of them (producers
    that batch). Items are returned undecoded-as-events; :func:`parse_event`
    validates each, so one bad item does not sink its batch.

    >>> decode_message(b'{"ts": 1, "account_id": "a"}')
    [{'ts': 1, 'account_id': 'a'}]
    >>> decode_message(b'not json')
    Traceback (most recent call last):
    ...
    detectors.errors.InvalidEvent: not JSON: ...
    """
    if raw is None:
        raise InvalidEvent("empty message (null value)")
    if len(raw) > max_bytes:
        raise InvalidEvent(f"message of {len(raw)} bytes exceeds limit of {max_bytes}")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"not JSON: {exc}") from None
    if isinstance(value, list):
        if not value:
            raise InvalidEvent("empty batch")
        if len(value) > max_batch:
            raise InvalidEvent(f"batch of {len(value)} events exceeds limit of {max_batch}")
        return value
    return [value]


def event_to_dict(event: Event) -> dict[str, Any]:
    """The event as a JSON-ready dict (``ts`` as RFC 3339), absent fields omitted."""
    out: dict[str, Any] = {"ts": format_ts(event.ts), "account_id": event.account_id}
    for name in EVENT_FIELDS:
        if name in ("ts", "account_id"):
            continue
        value = getattr(event, name)
        if value is not None:
            out[name] = value
    return out


def _json_type(value: Any) -> str:
    return {
        dict: "object",
        list: "array",
        str: "string",
        int: "number",
        float: "number",
        bool: "boolean",
        type(None): "null",
    }.get(type(value), type(value).__name__)
