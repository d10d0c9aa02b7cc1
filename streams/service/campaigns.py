"""The third stage of the stream service, without Faust: one
:class:`~detectors.campaign.CampaignStage` fed by the single partition of the
campaign topic, its state restored from and checkpointed to the
changelog-backed ``campaign-state`` table.

The ``detect`` agent (account alerts) and the ``clusters`` agent (cluster and
cluster-member alerts) send their alerts to the campaign topic instead of the
alerts topic (:func:`detectors.campaign.encode_alert`: exact floats, so the
stage sees what replay's stage sees); the ``campaigns`` agent feeds each
message to :meth:`CampaignProcessor.handle` and publishes what comes out. One
partition, so one stage sees every alert: campaigns span linkage keys and
accounts of every partition. Alerts are rare (a few per account episode), so
one partition is far from a bottleneck.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterable

from detectors.alerts import Alert
from detectors.campaign import CampaignStage, decode_alert, decode_campaign
from detectors.errors import CorruptState

#: the table key of the stage-level snapshot; campaign ids start with "c-"
META_KEY = b"\x00\x00dw-campaign-meta"
#: a watermark tick: this prefix + the partition's watermark (little-endian double)
TICK = b"\x00tick"
_TICK = struct.Struct("<d")


def encode_tick(watermark: float) -> bytes:
    return TICK + _TICK.pack(watermark)


class CampaignProcessor:
    """Owns the :class:`CampaignStage` while this worker holds partition 0."""

    def __init__(
        self,
        factory: Callable[[], CampaignStage] = CampaignStage,
        *,
        scan: Callable[[], Iterable[tuple[bytes, bytes]]] | None = None,
        on_corrupt: Callable[[str, str], None] | None = None,
        quiet_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.factory = factory
        self.scan = scan
        self.on_corrupt = on_corrupt
        self.quiet_s = quiet_s
        self.clock = clock
        self.stage: CampaignStage | None = None
        self.alerts_in = 0
        self.rejected = 0
        self.released = 0
        #: the clock when the last message came in
        self.last_input = clock()

    def current(self) -> CampaignStage:
        """The stage, restored from the table on first use after assignment."""
        stage = self.stage
        if stage is None:
            stage = self.factory()
            if self.scan is not None:
                meta: bytes | None = None
                campaigns = []
                for key, value in self.scan():
                    if key == META_KEY:
                        meta = value
                        continue
                    try:
                        campaigns.append(decode_campaign(value))
                    except CorruptState as exc:
                        self._corrupt(key.decode("utf-8", "replace"), str(exc))
                try:
                    if meta is not None:
                        stage.restore(meta, campaigns)
                    else:
                        for c in campaigns:
                            stage.restore_campaign(c)
                except CorruptState as exc:
                    self._corrupt("campaign snapshot", str(exc))
            self.stage = stage
        return stage

    def _corrupt(self, key: str, reason: str) -> None:
        if self.on_corrupt is not None:
            self.on_corrupt(key, reason)

    def handle(self, value: bytes | None) -> list[Alert] | None:
        """One campaign-topic message (a stage alert, or an events partition's
        watermark tick): the alerts to publish, or None when the message is
        neither (the agent dead-letters it)."""
        self.last_input = self.clock()
        if value is None:
            self.rejected += 1
            return None
        if value[:5] == TICK and len(value) == 5 + _TICK.size:
            return self.current().advance(_TICK.unpack_from(value, 5)[0])
        try:
            alert = decode_alert(value)
        except CorruptState as exc:
            self.rejected += 1
            self._corrupt("campaign input", str(exc))
            return None
        self.alerts_in += 1
        return self.current().process(alert)

    def release_quiet(self) -> list[Alert]:
        """The alerts the stage holds for event time to move on, once no
        message has come in for ``quiet_s``: ticks come only with events, so
        after traffic stops nothing else would let them out. Event time is
        taken to have moved on with the wall clock since the last message
        (:meth:`CampaignStage.release_held`); replay does the same at the end
        of its input."""
        stage = self.stage
        if stage is None or not stage.holding:
            return []
        quiet = self.clock() - self.last_input
        if quiet < self.quiet_s:
            return []
        out = stage.release_held(stage.watermark + quiet)
        self.released += len(out)
        return out

    def revoke(self) -> None:
        """This worker lost partition 0: forget the hot stage."""
        self.stage = None

    def checkpoint(self) -> list[tuple[int, bytes, bytes | None]]:
        """Records for the ``campaign-state`` changelog: ``(0, key, value)``."""
        stage = self.stage
        if stage is None:
            return []
        changed, removed = stage.take_dirty()
        records: list[tuple[int, bytes, bytes | None]] = []
        for cid, value in changed:
            records.append((0, cid.encode(), value))
        for cid in removed:
            records.append((0, cid.encode(), None))
        if records or stage.meta_dirty:
            records.append((0, META_KEY, stage.snapshot()))
        return records

    def tracked(self) -> int:
        return 0 if self.stage is None else len(self.stage.campaigns())


__all__ = ["CampaignProcessor", "META_KEY", "encode_tick"]
