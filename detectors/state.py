"""Compact per-account state and its pickle-free binary encoding.

Decayed sums are kept *scaled*: a weight added at event time ``t`` is
``2**((t - ref) / half_life)``, so no stored value needs decaying when time
passes; the true decayed value at ``t`` is ``stored / 2**((t - ref) / half_life)``.
``ref`` is rebased (all scaled values multiplied down) before the weights get
large. Shares (topic shares, template share, ...) are ratios of sums with the
same scale and need no correction at all.

Layout: about 50 float slots, six small ``array`` buffers (topic ids and their
short, long and time-weighted weights, hour-of-day weights, the template ring of
16-byte sketches) and two
:class:`~detectors.models.PageHinkley` detectors: about 2.5 KB resident.
"""

from __future__ import annotations

import math
import struct
from array import array
from collections.abc import Callable
from typing import Any, Final

from detectors.errors import CorruptState
from detectors.models import PageHinkley
from detectors.text import agreement

# 4: version 3 (MinHash anchors, content-free sums) + the seasonal hour fields;
# older states decode as corrupt and those accounts start over
# 5: version 4 + ``fire_sev`` (the open episode's firing severity, which its
# resolved record repeats); version 4 still decodes, with it unknown (0)
# 6: version 5 + ``w_time`` (the topic sketch's time-weighted long mix, the
# own baseline of pivot evidence); versions 4 and 5 still decode, with it empty
# (pivot evidence then waits for pivot_history_s of observed time again)
# 7: version 6 + ``sur_long`` (the long-decayed sum of own-history surprise:
# the account's typical novelty, the reference of the novelty evidence);
# versions 4..6 still decode, with it 0 (the reference is then the long
# mix's entropy alone, as before, until the sum has grown again)
# 8: version 7 + ``bst_peak``, ``bst_ts``, ``cur_peak`` (the peak rate of the
# account's largest busy period that ended without a page, when, and the
# running one's; see Detector._seen_burst); versions 4..7 still decode, with
# them 0 (no busy period seen yet)
VERSION: Final = 8
_OLDEST: Final = 4

# Float slots, in encoding order.
FLOATS: tuple[str, ...] = (
    "first_ts",
    "last_ts",
    "ref",
    # topic sketch sums: S = sum of weights, T = sum of w*log(w), short and long
    "s_short",
    "t_short",
    "s_long",
    "t_long",
    # decayed request and token counts
    "r_short",
    "r_long",
    "tok_short",
    "tok_long",
    # hour-of-day sum of w*log(w) (the hour weights sum to r_long)
    "t_hours",
    # cross-entropy vs the population mix, own-history surprise (short)
    "ce_short",
    "sur_short",
    # prompt-text counts
    "txt_short",
    "tmpl_short",
    "elic_short",
    "txt_long",
    "tmpl_long",
    "elic_long",
    # inter-arrival exponentially weighted mean and variance
    "ia_mean",
    "ia_var",
    # lifecycle
    "episode_start",
    "last_hot",
    "peak_score",
    "score",
    "last_pop",
    "drift_ts",
    # content-free counts (short window): output and input tokens, requests
    # carrying a limit and those that hit it, carrying thinking and with it on,
    # carrying a model (when flagship models are configured) and on a flagship
    "out_short",
    "inp_short",
    "lim_short",
    "sat_short",
    "thn_short",
    "think_short",
    "mdl_short",
    "flag_short",
    # long weight of the current hour (also in ``hours``): the seasonal
    # profile is read without it
    "hour_w",
)
#: the content-free short-window sums (rebased with the other short sums)
META_SHORT: Final = ("out_short", "inp_short", "lim_short", "sat_short", "thn_short",
                     "think_short", "mdl_short", "flag_short")
INTS: tuple[str, ...] = ("n", "ring_pos", "drift_dir", "model", "hour_idx", "fire_sev")

_HEAD: Final = struct.Struct("<BH")
_NUMS: Final = struct.Struct("<" + "d" * len(FLOATS) + "q" * len(INTS) + "BB")
#: version 4: the same without ``fire_sev`` (the last of INTS)
_NUMS_V4: Final = struct.Struct("<" + "d" * len(FLOATS) + "q" * (len(INTS) - 1) + "BB")
_PH: Final = struct.Struct("<7d")
_F64: Final = struct.Struct("<d")
_F64x3: Final = struct.Struct("<3d")


class AccountState:
    """Everything the detector remembers about one account."""

    __slots__ = (
        "account_id",
        *FLOATS,
        *INTS,
        "ids",
        "w_short",
        "w_long",
        "w_time",
        "sur_long",
        "bst_peak",
        "bst_ts",
        "cur_peak",
        "hours",
        "ring",
        "anchors",
        "ph_entropy",
        "ph_volume",
    )

    account_id: str
    first_ts: float
    last_ts: float
    ref: float
    s_short: float
    t_short: float
    s_long: float
    t_long: float
    r_short: float
    r_long: float
    tok_short: float
    tok_long: float
    t_hours: float
    ce_short: float
    sur_short: float
    sur_long: float
    bst_peak: float
    bst_ts: float
    cur_peak: float
    txt_short: float
    tmpl_short: float
    elic_short: float
    txt_long: float
    tmpl_long: float
    elic_long: float
    ia_mean: float
    ia_var: float
    episode_start: float
    last_hot: float
    peak_score: float
    score: float
    last_pop: float
    drift_ts: float
    out_short: float
    inp_short: float
    lim_short: float
    sat_short: float
    thn_short: float
    think_short: float
    mdl_short: float
    flag_short: float
    hour_w: float
    n: int
    ring_pos: int
    drift_dir: int
    model: int
    hour_idx: int
    fire_sev: int
    ids: array[int]
    w_short: array[float]
    w_long: array[float]
    w_time: array[float]
    hours: array[float]
    ring: array[int]
    anchors: array[int]
    ph_entropy: PageHinkley
    ph_volume: PageHinkley

    def __init__(
        self,
        account_id: str,
        ts: float,
        topics: int = 16,
        ring: int = 8,
        ph_entropy: PageHinkley | None = None,
        ph_volume: PageHinkley | None = None,
    ) -> None:
        # every slot of FLOATS and INTS, written out (a setattr loop is slow)
        self.account_id = account_id
        self.first_ts = self.last_ts = self.ref = ts
        self.s_short = self.t_short = self.s_long = self.t_long = self.r_short = self.r_long = 0.0
        self.tok_short = self.tok_long = self.t_hours = self.ce_short = self.sur_short = 0.0
        self.txt_short = self.tmpl_short = self.elic_short = self.txt_long = self.tmpl_long = 0.0
        self.elic_long = self.ia_mean = self.ia_var = self.episode_start = self.last_hot = 0.0
        self.peak_score = self.score = self.last_pop = self.drift_ts = self.hour_w = 0.0
        self.out_short = self.inp_short = self.lim_short = self.sat_short = 0.0
        self.thn_short = self.think_short = self.mdl_short = self.flag_short = 0.0
        self.n = self.ring_pos = self.drift_dir = self.model = self.hour_idx = 0
        # index in alerts.SEVERITIES of the open episode's firing record (0: none/unknown)
        self.fire_sev = 0
        self.ids = array("I", bytes(4 * topics))
        self.w_short = array("d", bytes(8 * topics))
        self.w_long = array("d", bytes(8 * topics))
        # per topic slot: seconds of the account's time spent on it (the gap
        # before each of its requests, capped; long decay): its mix per unit of
        # time, which a burst of requests cannot rewrite in minutes
        self.w_time = array("d", bytes(8 * topics))
        # own-history surprise of every topic event, long decay: how novel the
        # account's topics usually are (high for a broad account whose mix
        # outgrows the sketch), the reference of the novelty evidence
        self.sur_long = 0.0
        # busy periods (Detector._seen_burst): the peak short rate (per minute)
        # of the largest one that ended with no page open, when it ended, and
        # the running one's peak (negative once a page was open during it)
        self.bst_peak = self.bst_ts = self.cur_peak = 0.0
        self.hours = array("d", bytes(8 * 24))
        # template ring: four 32-bit sketch words per prompt
        self.ring = array("I", bytes(16 * ring))
        # the anchor of each of those prompts that repeated a template (else 0);
        # those that recur are the account's template fingerprints (cluster stage)
        self.anchors = array("I", bytes(4 * ring))
        self.ph_entropy = ph_entropy or PageHinkley(mode="both")
        self.ph_volume = ph_volume or PageHinkley(mode="both")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AccountState):
            return NotImplemented
        return self.encode() == other.encode()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"AccountState({self.account_id!r}, n={self.n}, last_ts={self.last_ts})"

    def encode(self) -> bytes:
        """Little-endian binary: version, id, floats, ints, arrays, detector states.

        >>> s = AccountState("acct-1", 1e9)
        >>> s.n = 3
        >>> AccountState.decode(s.encode()) == s
        True
        """
        aid = self.account_id.encode("utf-8", "surrogatepass")
        parts = [
            _HEAD.pack(VERSION, len(aid)),
            aid,
            _NUMS.pack(
                *[getattr(self, f) for f in FLOATS],
                *[getattr(self, i) for i in INTS],
                len(self.ids),
                len(self.ring) // 4,
            ),
            _le(self.ids),
            _le(self.w_short),
            _le(self.w_long),
            _le(self.hours),
            _le(self.ring),
            _le(self.anchors),
            _le(self.w_time),
            _F64.pack(self.sur_long),
            _F64x3.pack(self.bst_peak, self.bst_ts, self.cur_peak),
            _PH.pack(*self.ph_entropy.state()),
            _PH.pack(*self.ph_volume.state()),
        ]
        return b"".join(parts)

    @classmethod
    def decode(
        cls,
        data: bytes,
        ph_entropy: PageHinkley | None = None,
        ph_volume: PageHinkley | None = None,
    ) -> AccountState:
        """Inverse of :meth:`encode`; raises :class:`CorruptState` on any damage.

        >>> AccountState.decode(b"\\x02")
        Traceback (most recent call last):
        ...
        detectors.errors.CorruptState: cannot decode account state: truncated
        """
        try:
            return cls._decode(bytes(data), ph_entropy, ph_volume)
        except CorruptState:
            raise
        except (struct.error, ValueError, TypeError, UnicodeDecodeError, OverflowError) as exc:
            raise CorruptState(f"cannot decode account state: {exc}") from None

    @classmethod
    def _decode(
        cls, data: bytes, ph_e: PageHinkley | None, ph_v: PageHinkley | None
    ) -> AccountState:
        if len(data) < _HEAD.size:
            raise CorruptState("cannot decode account state: truncated")
        version, n_aid = _HEAD.unpack_from(data, 0)
        if not _OLDEST <= version <= VERSION:
            raise CorruptState(f"unknown account state version {version!r}")
        layout = _NUMS if version >= 5 else _NUMS_V4
        pos = _HEAD.size
        aid = data[pos : pos + n_aid].decode("utf-8", "surrogatepass")
        pos += n_aid
        if len(data) < pos + layout.size:
            raise CorruptState("cannot decode account state: truncated")
        nums = layout.unpack_from(data, pos)
        pos += layout.size
        k, ring = nums[-2], nums[-1]
        if not 1 <= k <= 64 or not 1 <= ring <= 64:
            raise CorruptState("cannot decode account state: bad sizes")
        timed = version >= 6
        novel = version >= 7
        busy = version >= 8
        expected = (pos + 4 * k + (24 if timed else 16) * k + 8 * 24 + 20 * ring + 2 * _PH.size
                    + (_F64.size if novel else 0) + (_F64x3.size if busy else 0))
        if len(data) != expected:
            raise CorruptState(
                f"cannot decode account state: {len(data)} bytes, expected {expected}"
            )
        state = cls(aid, 0.0, k, ring, ph_e, ph_v)
        for name, value in zip(FLOATS, nums, strict=False):
            if math.isnan(value):
                raise CorruptState(f"cannot decode account state: {name} is NaN")
            setattr(state, name, value)
        # (a version-4 state has no fire_sev: it stays 0, unknown)
        for name, value in zip(INTS, nums[len(FLOATS) : -2], strict=False):
            setattr(state, name, value)
        pos = _load(state.ids, data, pos)
        pos = _load(state.w_short, data, pos)
        pos = _load(state.w_long, data, pos)
        pos = _load(state.hours, data, pos)
        pos = _load(state.ring, data, pos)
        pos = _load(state.anchors, data, pos)
        if timed:  # (older versions: no time-weighted mix yet, all zero)
            pos = _load(state.w_time, data, pos)
        if novel:  # (older versions: no typical surprise yet, 0)
            (sur_long,) = _F64.unpack_from(data, pos)
            if math.isnan(sur_long):
                raise CorruptState("cannot decode account state: sur_long is NaN")
            state.sur_long = sur_long
            pos += _F64.size
        if busy:  # (older versions: no busy period seen yet, 0)
            values = _F64x3.unpack_from(data, pos)
            if any(math.isnan(v) for v in values):
                raise CorruptState("cannot decode account state: a busy-period peak is NaN")
            state.bst_peak, state.bst_ts, state.cur_peak = values
            pos += _F64x3.size
        state.ph_entropy.set_state(_PH.unpack_from(data, pos))
        state.ph_volume.set_state(_PH.unpack_from(data, pos + _PH.size))
        return state


# Look-ups in AccountState's small arrays, per event (Detector.process). The
# array module answers ``x in arr`` or ``min(arr)`` by creating an object per
# item it compares; the C kernels (detectors/_arrays.c) compare in place and
# give the same results (tests/unit/test_detectors_core.py, for arrays without NaN).
_FindFn = Callable[["array[int]", int], int]
_ArgminFn = Callable[["array[float]"], int]
_MaximumFn = Callable[["array[float]"], float]
_BestFn = Callable[["array[int]", tuple[int, int, int, int]], int]


def _kernels() -> tuple[_FindFn | None, _ArgminFn | None, _MaximumFn | None, _BestFn | None]:
    try:
        from detectors import _arrays
    except ImportError:
        return None, None, None, None
    return _arrays.find, _arrays.argmin, _arrays.maximum, _arrays.best_agreement


_KERNELS: Final = _kernels()
_C_FIND: Final = _KERNELS[0]
_C_ARGMIN: Final = _KERNELS[1]
_C_MAXIMUM: Final = _KERNELS[2]
_C_BEST: Final = _KERNELS[3]


def find(arr: array[int], value: int) -> int:
    """Index of the first item of ``arr`` equal to ``value``, else -1.

    >>> find(array("I", [5, 7, 7]), 7), find(array("I", [5]), 6), find(array("I", [5]), -1)
    (1, -1, -1)
    """
    if _C_FIND is not None:
        return _C_FIND(arr, value)
    try:
        return arr.index(value)
    except ValueError:
        return -1


def argmin(arr: array[float]) -> int:
    """Index of the first smallest item of a non-empty ``arr``.

    >>> argmin(array("d", [2.0, 0.5, 0.5]))
    1
    """
    if _C_ARGMIN is not None:
        return _C_ARGMIN(arr)
    return arr.index(min(arr))


def maximum(arr: array[float]) -> float:
    """The largest item of a non-empty ``arr``.

    >>> maximum(array("d", [2.0, 0.5, 3.5]))
    3.5
    """
    if _C_MAXIMUM is not None:
        return _C_MAXIMUM(arr)
    return max(arr)


def best_agreement(ring: array[int], sk: tuple[int, int, int, int]) -> int:
    """The most bins (of 16) that sketch ``sk`` shares with a prompt of the
    template ``ring`` (four words a prompt; an empty slot starts with 0), by
    :func:`detectors.text.agreement`; 0 for an empty ring.

    >>> best_agreement(array("I", [0x01020304, 5, 6, 8, 0, 0, 0, 0]), (0x01020304, 5, 6, 7))
    15
    """
    if _C_BEST is not None:
        return _C_BEST(ring, sk)
    s0, s1, s2, s3 = sk
    best = 0
    for i in range(0, len(ring), 4):
        if ring[i]:
            a = agreement(s0, s1, s2, s3, ring[i], ring[i + 1], ring[i + 2], ring[i + 3])
            if a > best:
                best = a
    return best


def _le(arr: array[int] | array[float]) -> bytes:
    if _BIG:
        copy = array(arr.typecode, arr)
        copy.byteswap()
        return copy.tobytes()
    return arr.tobytes()


def _load(arr: array[Any], data: bytes, pos: int) -> int:
    size = len(arr) * arr.itemsize
    fresh: array[Any] = array(arr.typecode)
    fresh.frombytes(data[pos : pos + size])
    if _BIG:
        fresh.byteswap()
    arr[:] = fresh
    return pos + size


_BIG: Final = struct.pack("=H", 1) != struct.pack("<H", 1)
if array("I").itemsize != 4:  # pragma: no cover - exotic platforms
    raise ImportError("detectors.state needs a 4-byte array('I')")
