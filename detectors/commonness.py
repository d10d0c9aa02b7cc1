"""How common a prompt fingerprint is across the population (an IDF for
linkage): a fingerprint that a large share of all accounts send links nobody.

A template fingerprint (``detectors/text.py``'s anchor) is what the cluster
stage links accounts on: accounts that send prompts made from one template
share it. Some text is shared by everyone, though: a sentence public question
sets append to every reasoning question ("Your explanation should take the
reader through your reasoning step-by-step."), a greeting, a common
instruction. On the simulator's real-text day such a sentence made the anchor
of prompts from 17% of all accounts (benign and attacking alike), and it
linked ordinary accounts into a campaign whose members asked such questions
too. In information-retrieval terms a term's weight falls with its document
frequency; here a fingerprint that at least ``share`` of the partition's
text-sending accounts sent in the current or the previous window is *common*
and is not a linkage key. An operator's own template is sent by its accounts
only: a campaign of 3% of all accounts stays below a share of 10%.

Counted per partition of the account stage (one instance per
:class:`detectors.engine.Detector`), over tumbling windows of ``window_s`` of
event time: deterministic, the same in live and replay, restored from the
detector's snapshot. Distinct accounts are kept as 32-bit hashes, at most
``max_carriers`` per fingerprint (enough to decide) and at most
``max_entries`` fingerprints (when full, those sent by one account so far are
forgotten first: nearly every prompt's anchor is its own).

>>> c = CommonFingerprints(share=0.2, min_carriers=3)
>>> for i in range(40):   # 40 accounts; 12 of them send 0xabc, 2 send 0xdef
...     c.observe(0xabc if i < 12 else 0xdef if i < 14 else 0x100 + i, f"a{i}", 1e9 + i)
>>> c.is_common(0xabc), c.is_common(0xdef), c.is_common(0x1)
(True, False, False)
>>> for i in range(40):   # the same accounts again: distinct accounts, not requests
...     c.observe(0xdef, "a12", 1e9 + 50 + i)
>>> c.is_common(0xdef)
False
>>> CommonFingerprints(share=1.5)
Traceback (most recent call last):
...
ValueError: share must be in (0, 1] (or 0 to disable), got 1.5
"""

from __future__ import annotations

import base64
import binascii
import sys
import zlib
from array import array
from collections.abc import Mapping
from typing import Any, Final

from detectors.errors import CorruptState

#: layout of :meth:`CommonFingerprints.to_json` (absent: the plain JSON lists
#: of the snapshots before it, which still restore)
PACKED: Final = 2
_U32: Final = 0xFFFFFFFF
_BIG: Final = sys.byteorder == "big"


class CommonFingerprints:
    """Distinct accounts sending each prompt fingerprint, per window.

    Parameters
    ----------
    share
        A fingerprint sent by at least this share of the partition's
        text-sending accounts (in the current or the previous window) is
        common. 0 disables (nothing is ever common, nothing is counted).
    min_carriers
        ... and by at least this many accounts: on a fresh or small partition a
        handful of accounts is not a population.
    window_s
        Event-time length of the counting windows.
    max_entries
        Fingerprints tracked in a window.
    max_carriers
        Distinct accounts kept per fingerprint. A share is decided only while
        the window's text-sending accounts are at most ``max_carriers /
        share`` (beyond, nothing is common: the stage links as without this
        model), so at most that many accounts are kept.

    The hashes kept in a window are bounded by ``8 * max_entries`` (32,768 by
    default), so the detector's snapshot, written with every checkpoint,
    stays well under a Kafka message (about 0.5 MB at the worst). It changes
    with nearly every checkpoint (new prompts bring new fingerprints), so it
    is written packed (:data:`PACKED`): 32-bit fingerprints and account hashes
    as base64 of little-endian words rather than JSON numbers.
    """

    __slots__ = ("share", "min_carriers", "window_s", "max_entries", "max_carriers",
                 "_window", "_cur", "_accounts", "_prev", "_prev_accounts", "_size")

    def __init__(
        self,
        share: float = 0.15,
        min_carriers: int = 8,
        window_s: float = 21_600.0,
        max_entries: int = 4096,
        max_carriers: int = 512,
    ) -> None:
        if not (share == 0.0 or 0.0 < share <= 1.0):
            raise ValueError(f"share must be in (0, 1] (or 0 to disable), got {share!r}")
        if min_carriers < 2:
            raise ValueError(f"min_carriers must be >= 2, got {min_carriers!r}")
        if not window_s > 0.0:
            raise ValueError(f"window_s must be > 0, got {window_s!r}")
        if max_entries < 16:
            raise ValueError(f"max_entries must be >= 16, got {max_entries!r}")
        if max_carriers < min_carriers:
            raise ValueError(f"max_carriers must be >= min_carriers, got {max_carriers!r}")
        self.share = share
        self.min_carriers = min_carriers
        self.window_s = window_s
        self.max_entries = max_entries
        self.max_carriers = max_carriers
        self._window = -1
        self._cur: dict[int, set[int]] = {}
        self._accounts: set[int] = set()  # text-sending accounts this window
        self._prev: dict[int, int] = {}  # carriers per fingerprint, last window (common ones)
        self._prev_accounts = 0
        self._size = 0  # hashes kept in _cur

    def _account_cap(self) -> int:
        return int(self.max_carriers / self.share) + 1 if self.share > 0.0 else 0

    def _roll(self, t: float) -> None:
        w = int(t // self.window_s)
        if w == self._window:
            return
        if w == self._window + 1:
            # keep only what can matter next window: fingerprints that were common
            total = len(self._accounts)
            self._prev = {fp: len(s) for fp, s in self._cur.items()
                          if len(s) >= self.min_carriers and len(s) >= self.share * total}
            self._prev_accounts = total
        elif w > self._window:
            self._prev, self._prev_accounts = {}, 0
        else:
            return  # an event older than the window (a lagging partition): counted in it
        self._window = w
        self._cur = {}
        self._accounts = set()
        self._size = 0

    def observe(self, fp: int, account_id: str, t: float) -> None:
        """Account ``account_id`` sent a prompt with fingerprint ``fp`` at ``t``."""
        if self.share == 0.0:
            return
        if t >= (self._window + 1) * self.window_s:
            self._roll(t)
        who = zlib.crc32(account_id.encode("utf-8", "surrogatepass"))
        accounts = self._accounts
        if len(accounts) <= self._account_cap():  # one past the cap: undecidable
            accounts.add(who)
        cur = self._cur
        s = cur.get(fp)
        if s is None:
            if len(cur) >= self.max_entries or self._size >= 8 * self.max_entries:
                self._evict()
            cur[fp] = {who}
            self._size += 1
        elif len(s) < self.max_carriers and who not in s:
            if self._size >= 8 * self.max_entries:
                return  # the budget is spent: the window's common ones are known
            s.add(who)
            self._size += 1

    def _evict(self) -> None:
        cur = self._cur
        gone = [fp for fp, s in cur.items() if len(s) < 2]
        if not gone:
            # the least sent quarter (ties: the lower fingerprint), deterministic
            ranked = sorted([(len(s), fp) for fp, s in cur.items()])
            gone = [fp for _, fp in ranked[: max(1, len(ranked) // 4)]]
        for fp in gone:
            self._size -= len(cur.pop(fp))

    def is_common(self, fp: int) -> bool:
        """Whether ``fp`` is common in the current or the previous window."""
        if self.share == 0.0:
            return False
        s = self._cur.get(fp)
        if s is not None and len(self._accounts) <= self._account_cap():
            n = len(s)
            if n >= self.min_carriers and n >= self.share * len(self._accounts):
                return True
        return fp in self._prev

    def carriers(self, fp: int) -> tuple[int, int]:
        """``(accounts sending fp, text-sending accounts)`` in the current window."""
        s = self._cur.get(fp)
        return (0 if s is None else len(s)), len(self._accounts)

    def __len__(self) -> int:
        return len(self._cur)

    def to_json(self) -> dict[str, Any]:
        # sorted: the same state snapshots to the same bytes
        fps = sorted(self._cur)
        if fps and (fps[0] < 0 or fps[-1] > _U32):
            # fingerprints that are not 32-bit (never the detector's anchors, which
            # are CRC-32s): the plain layout, which restores as well
            return {
                "window": self._window,
                "cur": sorted([[fp, sorted(s)] for fp, s in self._cur.items()]),
                "accounts": sorted(self._accounts),
                "prev": sorted([[fp, n] for fp, n in self._prev.items()]),
                "prev_accounts": self._prev_accounts,
            }
        cur = self._cur
        counts: list[int] = []
        carriers: list[int] = []
        for fp in fps:
            s = cur[fp]
            counts.append(len(s))
            carriers.extend(sorted(s))
        return {
            "format": PACKED,
            "window": self._window,
            "fps": _pack(fps),
            "counts": counts,
            "carriers": _pack(carriers),
            "accounts": _pack(sorted(self._accounts)),
            "prev": sorted([[fp, n] for fp, n in self._prev.items()]),
            "prev_accounts": self._prev_accounts,
        }

    def load_json(self, obj: Mapping[str, Any]) -> None:
        try:
            window = int(obj["window"])
            fmt = obj.get("format")
            if fmt is None:  # the plain layout (snapshots before PACKED)
                cur = {int(fp): {int(x) for x in s} for fp, s in obj["cur"]}
                accounts = {int(x) for x in obj["accounts"]}
            elif fmt == PACKED:
                fps = _unpack(obj["fps"])
                counts = [int(n) for n in obj["counts"]]
                carriers = _unpack(obj["carriers"])
                if len(counts) != len(fps) or any(n < 1 for n in counts) or (
                    sum(counts) != len(carriers)
                ):
                    raise ValueError("packed table does not add up")
                cur = {}
                pos = 0
                for fp, n in zip(fps, counts, strict=True):
                    cur[fp] = set(carriers[pos : pos + n])
                    pos += n
                accounts = set(_unpack(obj["accounts"]))
            else:
                raise ValueError(f"unknown format {fmt!r}")
            prev = {int(fp): int(n) for fp, n in obj["prev"]}
            prev_accounts = int(obj["prev_accounts"])
        except (KeyError, TypeError, ValueError, AttributeError, binascii.Error) as exc:
            raise CorruptState(f"bad common-fingerprint table: {exc}") from None
        if len(cur) > self.max_entries or any(len(s) > self.max_carriers for s in cur.values()):
            raise CorruptState("bad common-fingerprint table: larger than its bounds")
        self._window, self._cur, self._accounts = window, cur, accounts
        self._prev, self._prev_accounts = prev, prev_accounts
        self._size = sum([len(s) for s in cur.values()])


def _pack(words: list[int]) -> str:
    """32-bit words as base64 of little-endian bytes (5.3 bytes a word; a JSON
    number of a 32-bit hash takes 11)."""
    arr = array("I", words)
    if _BIG:  # pragma: no cover - big-endian hosts
        arr.byteswap()
    return base64.b64encode(arr.tobytes()).decode("ascii")


def _unpack(text: str) -> list[int]:
    raw = base64.b64decode(text.encode("ascii"), validate=True)
    if len(raw) % 4:
        raise ValueError("packed words: length is not a multiple of 4")
    arr = array("I")
    arr.frombytes(raw)
    if _BIG:  # pragma: no cover - big-endian hosts
        arr.byteswap()
    return arr.tolist()
