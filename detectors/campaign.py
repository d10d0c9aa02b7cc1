"""Stage 3: fold cluster, member and account alerts into campaigns.

The cluster stage (:mod:`detectors.cluster`) fires one incident per linkage
key; a hydra campaign shares many keys (its card, its ranges, its client, each
of its templates), so on-call used to receive dozens of incidents and a member
alert per account per key. :class:`CampaignStage` sits after the cluster and
account stages and turns their alerts into what on-call pages on:

* **one ``campaign`` alert per episode**: firing clusters that share a
  linkage key or a member belong to one campaign (a union-find over cluster
  keys and members; forgotten ``forget_after_s`` after the campaign resolved,
  so unrelated episodes do not merge forever). Its ``dedup_key`` is
  ``campaign:<campaign id>``; the id is a hash of the founding cluster
  episode (cluster key and episode start, both event-time facts), the same in
  live and replay. Growth or a material change of evidence re-sends the same
  ``dedup_key`` as an update (``revision`` > 0, its own ``alert_id``) at most
  once per ``update_interval_s``; it resolves ``holddown_s`` after the last
  of its clusters resolved, and a cluster firing again before then re-opens
  the same episode instead of a new incident;
* **one ``campaign_member`` record per account per campaign episode** naming
  the campaign (instead of one ``cluster_member`` per key and rescoring);
* **account alerts folded**: an account in a firing campaign opens no
  account incident of its own unless its score is above the campaign's by
  ``account_margin``; when it does, or when it fired first, the alert names
  the campaign. An account in no campaign whose own template is a firing
  cluster of a campaign is named by it at once (``template_fold``). An
  account's resolution is held ``holddown_s``: firing again
  before then continues the same episode (same ``episode_start``, same ids).

Everything else (other detectors) passes through unchanged. The stage is pure
and deterministic: time is the alerts' event time, state is bounded (capped
member sets, capped key lists, forgetting), and it is checkpointed per
campaign (:meth:`take_dirty`, :meth:`snapshot`), like the cluster stage.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any, Final

import orjson
from mypy_extensions import mypyc_attr

from detectors.alerts import MAX_ACCOUNTS_LISTED, SEVERITIES, Alert, make_alert_id
from detectors.cluster import BloomFilter, account_hash
from detectors.errors import CorruptState

NAME: Final = "campaign"
MEMBER_NAME: Final = "campaign_member"
#: an account whose alert joined another account's page (shared identity key)
ACCOUNT_MEMBER_NAME: Final = "account_member"
CLUSTER_NAMES: Final = ("cluster",)
CLUSTER_MEMBER_NAMES: Final = ("cluster_member",)
ACCOUNT_NAMES: Final = ("account",)
#: 2: an open account episode also keeps the account's request rate (the
#: adaptive hold-down); a version-1 snapshot restores with it unknown.
#: 3: a cluster on probation keeps its re-fires in its held list (a stage
#: reading version 2 would take them for member alerts and drop them), and
#: the stage keeps the recent account pages others may join (``paged``)
#: 4: the open incidents of accounts paged on their own (``own``), which a
#: campaign naming them adopts; campaigns keep the incident they adopted
_VERSION: Final = 5
_VERSIONS: Final = (1, 2, 3, 4, 5)
#: event-time spacing of the watermark ticks each events partition sends
TICK_S: Final = 60.0
#: identity linkage keys: one payer, network or organisation. Behaviour keys
#: (templates, topic mix, client) are shared by unrelated actors as well.
STRONG_KINDS: Final = ("pay", "ip", "org")
_ALERT_FIELDS: Final = (
    "detector", "status", "severity", "score", "ts", "episode_start", "summary", "details",
    "account_id", "accounts", "account_count", "revision",
)


def campaign_id(cluster_key: str, episode_start: float) -> str:
    """The id of a campaign founded by one cluster episode.

    >>> campaign_id("pay:pm_1", 1771840800.0)
    'c-77fc6020a963f405'
    >>> campaign_id("pay:pm_1", 1771840800.0004) == campaign_id("pay:pm_1", 1771840800.0)
    True
    """
    material = f"{cluster_key}|{int(round(episode_start * 1000))}".encode()
    return "c-" + hashlib.blake2b(material, digest_size=8).hexdigest()


def encode_alert(alert: Alert) -> bytes:
    """An alert as it travels between the stages (exact floats; not the
    public record, which rounds the score and formats times)."""
    obj: dict[str, Any] = {}
    for name in _ALERT_FIELDS:
        obj[name] = getattr(alert, name)
    return orjson.dumps(obj)


def decode_alert(data: bytes) -> Alert:
    """Inverse of :func:`encode_alert`; bad input raises :class:`CorruptState`."""
    try:
        obj = orjson.loads(data)
        if not isinstance(obj, dict):
            raise TypeError("not an object")
        details = obj.get("details") or {}
        if not isinstance(details, dict):
            raise TypeError("details is not an object")
        acct = obj.get("account_id")
        return Alert(
            detector=str(obj["detector"]),
            status=str(obj["status"]),
            severity=str(obj["severity"]),
            score=float(obj["score"]),
            ts=float(obj["ts"]),
            episode_start=float(obj["episode_start"]),
            summary=str(obj.get("summary", "")),
            details=details,
            account_id=None if acct is None else str(acct),
            accounts=tuple(str(a) for a in obj.get("accounts") or ()),
            account_count=int(obj.get("account_count") or 0),
            revision=int(obj.get("revision") or 0),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise CorruptState(f"cannot decode stage alert: {exc}") from None


class Campaign:
    """One campaign: its keys, members and lifecycle (learned state only)."""

    __slots__ = (
        "cid", "founded", "episode_start", "first_ts", "last_ts", "state", "quiet_since",
        "keys", "firing_keys", "linked", "members", "overflow", "member_count", "listed",
        "score", "peak", "severity", "evidence", "revision", "sent_ts", "sent_members",
        "sent_keys", "sent_score", "pending", "merged_into", "adopted",
    )

    def __init__(self, cid: str, ts: float) -> None:
        self.cid = cid
        #: event time of the founding cluster episode (orders campaigns on merge)
        self.founded = ts
        self.episode_start = ts
        self.first_ts = ts
        self.last_ts = ts
        #: "firing", "quiet" (every cluster resolved, within the hold-down) or
        #: "resolved" (remembered for re-identification until forgotten)
        self.state = "firing"
        self.quiet_since = 0.0
        #: cluster keys that fired in this campaign -> their latest score
        self.keys: dict[str, float] = {}
        self.firing_keys: set[str] = set()
        #: further linkage keys its clusters' members share (capped)
        self.linked: list[str] = []
        #: members named this episode (account hash -> named through an
        #: identity key): exact up to a cap, then a Bloom filter
        self.members: dict[int, bool] = {}
        self.overflow: BloomFilter | None = None
        self.member_count = 0
        #: a capped, sorted sample of member ids for the alert
        self.listed: list[str] = []
        self.score = 0.0
        self.peak = 0.0
        self.severity = "warning"
        #: per cluster key: score, reasons and core size (capped)
        self.evidence: dict[str, dict[str, Any]] = {}
        self.revision = 0
        self.sent_ts = 0.0
        self.sent_members = 0
        self.sent_keys = 0
        self.sent_score = 0.0
        self.pending = False
        self.merged_into = ""
        #: the open account incident this episode continues (its dedup key,
        #: episode start, subject, severity), or empty: see ``_adopt``
        self.adopted: dict[str, Any] = {}

    def has_member(self, h: int) -> bool:
        if h in self.members:
            return True
        return self.overflow is not None and h in self.overflow

    def has_core(self, h: int) -> bool:
        """Named through an identity key (card, range, org): what merges campaigns."""
        if self.members.get(h, False):
            return True
        return self.overflow is not None and h in self.overflow

    def to_json(self) -> dict[str, Any]:
        return {
            "cid": self.cid, "founded": self.founded, "episode_start": self.episode_start,
            "first_ts": self.first_ts, "last_ts": self.last_ts, "state": self.state,
            "quiet_since": self.quiet_since, "keys": self.keys,
            "firing_keys": sorted(self.firing_keys), "linked": self.linked,
            "members": [f"{h:016x}{'+' if core else ''}" for h, core in self.members.items()],
            "overflow": None if self.overflow is None else self.overflow.to_json(),
            "member_count": self.member_count, "listed": self.listed, "score": self.score,
            "peak": self.peak, "severity": self.severity, "evidence": self.evidence,
            "revision": self.revision, "sent_ts": self.sent_ts,
            "sent_members": self.sent_members, "sent_keys": self.sent_keys,
            "sent_score": self.sent_score, "pending": self.pending,
            "merged_into": self.merged_into, "adopted": self.adopted,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Campaign:
        try:
            c = cls(str(obj["cid"]), float(obj["founded"]))
            c.episode_start = float(obj["episode_start"])
            c.first_ts = float(obj["first_ts"])
            c.last_ts = float(obj["last_ts"])
            c.state = str(obj["state"])
            if c.state not in ("firing", "quiet", "resolved"):
                raise ValueError(f"unknown campaign state {c.state!r}")
            c.quiet_since = float(obj["quiet_since"])
            c.keys = {str(k): float(v) for k, v in dict(obj["keys"]).items()}
            c.firing_keys = {str(k) for k in obj["firing_keys"]}
            c.linked = [str(k) for k in obj["linked"]]
            c.members = {int(str(h)[:16], 16): str(h).endswith("+") for h in obj["members"]}
            ov = obj.get("overflow")
            c.overflow = None if ov is None else BloomFilter.from_json(ov)
            c.member_count = int(obj["member_count"])
            c.listed = [str(a) for a in obj["listed"]]
            c.score = float(obj["score"])
            c.peak = float(obj["peak"])
            c.severity = str(obj["severity"])
            c.evidence = {str(k): dict(v) for k, v in dict(obj["evidence"]).items()}
            c.revision = int(obj["revision"])
            c.sent_ts = float(obj["sent_ts"])
            c.sent_members = int(obj["sent_members"])
            c.sent_keys = int(obj["sent_keys"])
            c.sent_score = float(obj["sent_score"])
            c.pending = bool(obj["pending"])
            c.merged_into = str(obj.get("merged_into", ""))
            c.adopted = dict(obj.get("adopted") or {})  # (absent before version 4)
        except CorruptState:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CorruptState(f"cannot restore campaign: {exc}") from None
        return c


def encode_campaign(c: Campaign) -> bytes:
    return orjson.dumps(c.to_json())


def decode_campaign(data: bytes) -> Campaign:
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise CorruptState(f"cannot restore campaign: {exc}") from None
    if not isinstance(obj, dict):
        raise CorruptState("cannot restore campaign: not an object")
    return Campaign.from_json(obj)


# (compiled by tools.native: tests and tools may still subclass it)
@mypyc_attr(allow_interpreted_subclasses=True)
class CampaignStage:
    """Folds one stream of stage alerts (cluster, cluster member, account)
    into campaign incidents. One instance sees every alert (live: the single
    partition of the campaign topic; replay: in the order the stages emit).

    Parameters
    ----------
    update_interval_s
        At most one update of a campaign per this much event time.
    growth
        Relative growth of the member count that counts as material (new
        cluster keys and a score rising by ``score_step`` do too).
    score_step
        Rise of the campaign score that counts as material.
    holddown_s
        A campaign (or an account episode) that went quiet and fires again
        within this re-opens the same episode; it is resolved only after it.
    forget_after_s
        A resolved campaign's keys still identify it for this long (a new
        episode on them keeps the campaign id), then it is forgotten.
    account_margin
        An account in a firing campaign opens its own incident only when its
        score exceeds the campaign's by more than this.
    max_members
        Members kept exactly per campaign; beyond, a Bloom filter of
        ``bloom_bits`` remembers who was named.
    max_keys
        Linkage keys and per-key evidence kept per campaign.
    join_overlap
        Share of a firing cluster's listed members a campaign must already
        hold for the cluster to join it (behaviour keys) or merge it
        (identity keys).
    join_members
        ... or, for an identity key, this many of them, whatever the share.
    sweep_interval_s
        Event-time spacing of the resolution / update / forgetting sweeps.
    template_fold
        An account alert whose own template fingerprint is a firing cluster
        of a campaign makes the account a member at once (one member
        record at the alert's event time) instead of paging on its own.
    identity_fold
        An account alert in no campaign whose own identity keys (payer,
        network range, org: ``details.linkage_keys``) a firing campaign's
        clusters fired on or share makes the account its member at once.
    join_window_s
        An account alert in no campaign sharing an identity key with an
        account paged on its own less than this long ago joins that page's
        incident (one ``account_member`` record) instead of paging (0: off).
    probation_s
        A new campaign founded by an identity cluster some of whose accounts
        an active campaign names already, but that nothing links to it yet,
        waits up to this much event time for a linking cluster (then it
        joins, no page) before it pages on its own (0: pages at once).
    adopt_pages
        A new campaign whose founding cluster names an account paged on its
        own (or joined to such a page) whose incident is still open, and no
        less severe than the campaign, goes out under that incident's
        ``dedup_key`` (an update of it, ``details.adopted``) instead of
        opening a second incident; the account's own resolution is then the
        campaign's.
    adopt_less_severe
        ... also a page less severe than the campaign (off: the campaign's
        own page is the escalation, where on-call routes by severity; the
        adopted incident keeps the page's severity label in Alertmanager).
    subgroup_join
        An identity cluster that links to no campaign (no shared identity
        key, too few members named through identity keys) but whose listed
        accounts an active campaign names already, ``join_members`` of them
        or ``join_overlap`` of the list, however it named them (a template
        shared by several actors, say), joins that campaign after its
        probation instead of paging as a second campaign of the same actor.
    behaviour_probation
        Probation (``probation_s``) for a behaviour cluster (template, topic
        mix, client) too: one that would found a campaign while an active
        campaign names some of its accounts waits for the actor's identity
        clusters to link them; if a campaign then holds ``join_overlap`` of
        its listed accounts it joins that one, else it founds as before.
    suspect_hold_s
        An account alert in no campaign that shares a template fingerprint
        with an account paged on its own (or held) less than
        ``suspect_window_s`` ago, with a linkage key of a firing campaign,
        or whose account a cluster on probation lists, waits up to this much
        event time for a campaign to name it (its member record then carries
        the alert's own event time) before it pages on its own as before
        (0: off). The members of a campaign whose first cluster has not
        fired yet page one by one in its first minutes, each on another card
        or range: each was an incident of its own beside the campaign's.
    suspect_window_s
        How long an account paged on its own (or held) keeps its template
        fingerprints under suspicion for ``suspect_hold_s``.

    Examples
    --------
    >>> stage = CampaignStage()
    >>> fire = Alert("cluster", "firing", "error", 0.9, 1e9, 1e9, "s",
    ...              {"cluster_key": "pay:p1", "shared_keys": ["pay:p1", "ua:x"]},
    ...              accounts=("a", "b", "c"), account_count=3)
    >>> out = stage.process(fire)
    >>> [(a.detector, a.account_id or a.dedup_key) for a in out]  # doctest: +NORMALIZE_WHITESPACE
    [('campaign', 'campaign:c-ad3ab11d78b1a742'), ('campaign_member', 'a'),
     ('campaign_member', 'b'), ('campaign_member', 'c')]
    >>> second = replace(fire, ts=1e9 + 60, episode_start=1e9 + 60,
    ...                  details={"cluster_key": "ua:x"}, accounts=("c", "d"))
    >>> [(a.detector, a.account_id) for a in stage.process(second)]
    [('campaign_member', 'd')]
    >>> acct = Alert("account", "firing", "error", 0.8, 1e9 + 90, 1e9 + 90, "s", {}, "d")
    >>> stage.process(acct)
    []
    """

    def __init__(
        self,
        update_interval_s: float = 900.0,
        growth: float = 0.25,
        score_step: float = 0.05,
        holddown_s: float = 1800.0,
        forget_after_s: float = 6 * 3600.0,
        account_margin: float = 0.1,
        max_members: int = 4096,
        max_keys: int = 64,
        bloom_bits: int = 1 << 18,
        sweep_interval_s: float = 60.0,
        max_campaigns: int = 10_000,
        join_overlap: float = 0.5,
        join_members: int = 2,
        fold_by_severity: bool = True,
        account_quiet_requests: float = 30.0,
        max_holddown_s: float = 4 * 3600.0,
        account_hold_s: float = 0.0,
        account_link_hold_s: float = 0.0,
        probation_s: float = 300.0,
        template_fold: bool = True,
        identity_fold: bool = True,
        join_window_s: float = 600.0,
        adopt_pages: bool = True,
        adopt_less_severe: bool = False,
        subgroup_join: bool = True,
        behaviour_probation: bool = False,
        suspect_hold_s: float = 0.0,
        suspect_window_s: float = 600.0,
    ) -> None:
        if update_interval_s < 0 or holddown_s < 0 or forget_after_s < 0:
            raise ValueError("campaign intervals must be >= 0")
        if growth <= 0 or score_step <= 0:
            raise ValueError("growth and score_step must be > 0")
        if max_members < 1 or max_keys < 1 or max_campaigns < 1 or bloom_bits < 64:
            raise ValueError("campaign caps must be positive (bloom_bits >= 64)")
        if join_members < 1:
            raise ValueError(f"join_members must be >= 1, got {join_members!r}")
        if not 0.0 < join_overlap <= 1.0:
            raise ValueError(f"join_overlap must be in (0, 1], got {join_overlap!r}")
        if join_window_s < 0:
            raise ValueError(f"join_window_s must be >= 0, got {join_window_s!r}")
        if suspect_hold_s < 0 or suspect_window_s < 0:
            raise ValueError("suspect_hold_s and suspect_window_s must be >= 0")
        if sweep_interval_s <= 0:
            raise ValueError(f"sweep_interval_s must be > 0, got {sweep_interval_s!r}")
        self.update_interval_s = update_interval_s
        self.growth = growth
        self.score_step = score_step
        self.holddown_s = holddown_s
        self.forget_after_s = forget_after_s
        self.account_margin = account_margin
        self.max_members = max_members
        self.max_keys = max_keys
        self.bloom_bits = bloom_bits
        self.sweep_interval_s = sweep_interval_s
        self.max_campaigns = max_campaigns
        self.join_overlap = join_overlap
        self.join_members = join_members
        self.account_quiet_requests = account_quiet_requests
        self.account_hold_s = account_hold_s
        self.account_link_hold_s = account_link_hold_s
        self.probation_s = probation_s
        self.template_fold = template_fold
        self.identity_fold = identity_fold
        self.join_window_s = join_window_s
        self.adopt_pages = adopt_pages
        self.adopt_less_severe = adopt_less_severe
        self.subgroup_join = subgroup_join
        self.behaviour_probation = behaviour_probation
        self.suspect_hold_s = suspect_hold_s
        self.suspect_window_s = suspect_window_s
        self.max_holddown_s = max_holddown_s
        self.fold_by_severity = fold_by_severity
        # learned state
        self._campaigns: dict[str, Campaign] = {}
        self._by_key: dict[str, str] = {}  # fired cluster key -> campaign id
        #: account id -> (engine episode start, campaign id or "" , folded?,
        #: its request rate per minute when it fired, 0: unknown)
        self._accounts: dict[str, tuple[float, str, bool, float]] = {}
        #: account id -> (kept episode start, held resolved alert, due ts)
        self._held: dict[str, tuple[float, Alert, float]] = {}
        #: account id -> the episode start its engine episodes are reported under
        self._alias: dict[str, tuple[float, float]] = {}
        #: account id -> (its firing alert, held until the stage's event time
        #: passes this): a campaign naming it meanwhile folds it
        self._pending: dict[str, tuple[Alert, float]] = {}
        #: identity cluster key -> (its firing alert, due, its member alerts
        #: since): a new campaign on probation, see _cluster_fired
        self._parked: dict[str, tuple[Alert, float, list[Alert]]] = {}
        #: account id -> (event time, episode start, severity, score, identity
        #: keys) of its alert paged on its own, for ``join_window_s``
        self._paged: dict[str, tuple[float, float, str, float, list[str]]] = {}
        #: account id -> (dedup key, episode start, severity) of the open
        #: incident it is in on its own (its own page, or the page it
        #: joined), and the account's identity keys
        self._own: dict[str, tuple[str, float, str, list[str]]] = {}
        #: account id -> (event time, template keys) of its alert that went
        #: out on its own or was held, for ``suspect_window_s``
        self._suspects: dict[str, tuple[float, list[str]]] = {}
        self._watermark = 0.0
        self._next_sweep = 0.0
        self._dirty: set[str] = set()
        self._removed: set[str] = set()
        self._meta_dirty = False

    # ------------------------------------------------------------ process
    def advance(self, t: float) -> list[Alert]:
        """Event time moved on to ``t`` (a partition's watermark, sent at
        most once per ``TICK_S`` of it): quiet campaigns and held account
        resolutions must come out without waiting for the next alert."""
        out: list[Alert] = []
        if t > self._watermark:
            self._watermark = t
            if self._pending:
                self._release_pending(t, out)
            if self._parked:
                self._release_parked(t, out)
            if t >= self._next_sweep:
                if self._next_sweep:
                    out.extend(self.sweep())
                step = self.sweep_interval_s
                self._next_sweep = (t // step + 1) * step
                self._meta_dirty = True
        return out

    @property
    def watermark(self) -> float:
        """The latest event time this stage has seen (alerts and ticks)."""
        return self._watermark

    @property
    def holding(self) -> int:
        """How many alerts wait for event time to move on: account alerts
        held for a campaign that may name them, and clusters on probation."""
        return len(self._pending) + len(self._parked)

    def release_held(self, t: float = math.inf) -> list[Alert]:
        """Nothing more will arrive up to event time ``t``: the held account
        alerts and parked clusters due by then come out, as :meth:`advance`
        would have let them out on the next tick. Replay calls it at the end
        of its input (``t`` infinite); the live worker when its input has
        been quiet for a while (``streams.service.campaigns``), as ticks only
        come with events and a partition that goes quiet sends none. The
        watermark does not move: sweeps stay tied to event time.

        >>> stage = CampaignStage()
        >>> acct = Alert("account", "firing", "error", 0.8, 1e9, 1e9, "s", {}, "a")
        >>> stage.process(acct), stage.holding
        ([], 1)
        >>> [a.account_id for a in stage.release_held()], stage.holding
        (['a'], 0)
        """
        out: list[Alert] = []
        for acct in sorted(self._pending):
            alert, due = self._pending[acct]
            if due <= t:
                del self._pending[acct]
                self._meta_dirty = True
                out.extend(self._page_alone(alert))
        for key in sorted(self._parked):
            parked = self._parked[key]
            if parked[1] <= t:
                del self._parked[key]
                self._meta_dirty = True
                out.extend(self._unpark(parked, min(t, max(parked[1], self._watermark))))
        return out

    def process(self, alert: Alert) -> list[Alert]:
        """One stage alert in; the alerts to publish out (event-time ordered)."""
        out = self.advance(alert.ts)
        det = alert.detector
        if det in CLUSTER_NAMES:
            if alert.status == "firing":
                out.extend(self._cluster_fired(alert))
                if self._parked:
                    self._retry_parked(out)
            else:
                parked = self._parked.pop(self._cluster_key(alert), None)
                if parked is not None:  # over before its probation ended: page it, then close
                    self._meta_dirty = True
                    out.extend(self._unpark(parked, alert.ts))
                out.extend(self._cluster_resolved(alert))
        elif det in CLUSTER_MEMBER_NAMES:
            parked = self._parked.get(str(alert.details.get("cluster_key", "")))
            if parked is not None:
                parked[2].append(alert)
                self._meta_dirty = True
            else:
                out.extend(self._cluster_member(alert))
        elif det in ACCOUNT_NAMES and alert.account_id is not None:
            out.extend(self._account(alert))
        else:
            out.append(alert)
        return out

    # ----------------------------------------------------------- clusters
    def _cluster_key(self, alert: Alert) -> str:
        return str(alert.details.get("cluster_key", ""))

    def _live(self, cid: str) -> Campaign | None:
        """The campaign a (possibly merged) id now stands for."""
        seen = 0
        c = self._campaigns.get(cid)
        while c is not None and c.merged_into and seen < 16:
            c = self._campaigns.get(c.merged_into)
            seen += 1
        return c

    def _overlap(self, c: Campaign, hashes: list[int], core: bool) -> float:
        """How much of a cluster's listed core a campaign holds. With ``core``
        (an identity cluster deciding merges) only members named through
        identity keys count, unless the campaign has none (one founded on
        behaviour keys alone), and ``join_members`` of them count as all."""
        if not hashes:
            return 0.0
        if core and any(_kind(k) in STRONG_KINDS for k in c.keys):
            n = sum(1 for h in hashes if c.has_core(h))
        else:
            n = sum(1 for h in hashes if c.has_member(h))
        if core and n >= self.join_members:
            return 1.0
        return n / len(hashes)

    def _probation(self, alert: Alert, key: str) -> bool:
        """Whether a new campaign founded by this identity cluster waits: some
        of its accounts are named by an active campaign already (so the
        actor is paged), but not enough to link it. On the simulator's days
        such a sub-group (another card or range of the same actor) is linked
        by a cluster firing 4-8 minutes later; paged at once, it was a second
        incident resolved minutes later as merged."""
        if self.probation_s <= 0:
            return False
        if _kind(key) not in STRONG_KINDS and not self.behaviour_probation:
            return False
        hashes = [account_hash(a) for a in alert.accounts]
        return any(c.has_member(h) for c in self._active() for h in hashes)

    def _links(self, alert: Alert) -> bool:
        """Whether a parked cluster now joins an active campaign."""
        key = self._cluster_key(alert)
        if _kind(key) not in STRONG_KINDS:
            # a behaviour cluster joins (never merges) the campaign holding
            # most of its accounts, as when it fires (_cluster_fired)
            hashes = [account_hash(a) for a in alert.accounts]
            return any(self._overlap(c, hashes, False) >= self.join_overlap
                       for c in self._active())
        owner = self._by_key.get(key)
        if owner is not None and self._live(owner) is not None:
            return True
        shared = alert.details.get("shared_keys")
        mine = [str(k) for k in shared] if isinstance(shared, list) else []
        hashes = [account_hash(a) for a in alert.accounts]
        for c in self._active():
            if _linked(c, mine, key) or self._overlap(c, hashes, True) >= self.join_overlap:
                return True
        return False

    def _unpark(self, parked: tuple[Alert, float, list[Alert]], t: float) -> list[Alert]:
        alert, _, members = parked
        # paged now: its record carries the event time of the decision; its
        # member records the event time of the alert that listed each account
        out = self._cluster_fired(replace(alert, ts=max(alert.ts, t)), probation=False,
                                  named_at=alert.ts)
        for m in members:
            if m.detector in CLUSTER_NAMES:  # a re-fire while it waited
                out.extend(self._cluster_fired(replace(m, ts=max(m.ts, t)), probation=False,
                                               named_at=m.ts))
            else:
                out.extend(self._cluster_member(m))
        return out

    def _parked_since(self, acct: str) -> float:
        """The earliest event time a cluster on probation listed the account
        (inf if none). Whoever names it meanwhile names it as of then: the
        evidence is that old, only its page waited (the member record's
        ``ts`` is the evidence's event time, as for held account alerts)."""
        since = math.inf
        for alert, _, later in self._parked.values():
            for a in (alert, *later):
                if a.ts < since and (acct in a.accounts or a.account_id == acct):
                    since = a.ts
        return since

    def _retry_parked(self, out: list[Alert]) -> None:
        for key in sorted(self._parked):
            parked = self._parked.get(key)
            if parked is not None and any(self._links(a) for a in (parked[0], *parked[2])
                   if a.detector in CLUSTER_NAMES):
                del self._parked[key]
                self._meta_dirty = True
                # linked: it joins (no page of its own), at its own event time
                out.extend(self._unpark(parked, parked[0].ts))

    def _release_parked(self, t: float, out: list[Alert]) -> None:
        for key in sorted(self._parked):
            parked = self._parked[key]
            if t > parked[1]:
                del self._parked[key]
                self._meta_dirty = True
                out.extend(self._unpark(parked, t))

    def _cluster_fired(self, alert: Alert, probation: bool = True,
                       named_at: float = math.inf) -> list[Alert]:
        key = self._cluster_key(alert)
        if probation and key in self._parked:
            # the cluster stage re-fired (rescored) a cluster on probation: the
            # re-fire waits with it. Parking it afresh dropped the member alerts
            # held since and restarted the probation, so its accounts were named
            # up to minutes after their own event time once it joined
            self._parked[key][2].append(alert)
            self._meta_dirty = True
            return []
        t = alert.ts
        found: dict[str, Campaign] = {}
        owner = self._by_key.get(key)
        if owner is not None:
            c = self._live(owner)
            if c is not None:
                found[c.cid] = c
        shared = alert.details.get("shared_keys")
        hashes = [account_hash(a) for a in alert.accounts]
        if _kind(key) in STRONG_KINDS:
            # an identity key (card, network range, org) merges every campaign
            # it links: one holding most of its members, one whose identity
            # key its members share, or one whose keys agree with theirs on
            # two kinds of behaviour key (client and topic mix, say: either
            # alone is shared by unrelated actors)
            mine = [str(k) for k in shared] if isinstance(shared, list) else []
            for c in self._active():
                if c.cid in found:
                    continue
                if _linked(c, mine, key) or self._overlap(c, hashes, True) >= self.join_overlap:
                    found[c.cid] = c
        elif not found:
            # a behaviour key (template, topic mix, client) is shared by
            # unrelated actors too: it joins the one campaign holding most of
            # its members, and never merges two
            best: Campaign | None = None
            best_share = 0.0
            for c in sorted(self._active(), key=_seniority):
                share = self._overlap(c, hashes, False)
                if share > best_share:
                    best, best_share = c, share
            if best is not None and best_share >= self.join_overlap:
                found[best.cid] = best
            elif best is not None:
                # mostly accounts other campaigns already named: it founds a
                # campaign of its own only if enough of it is new
                active = self._active()
                new = sum(1 for h in hashes if not any(c.has_member(h) for c in active))
                if new < max(self.join_members, self.join_overlap * len(hashes)):
                    found[best.cid] = best
        out: list[Alert] = []
        founding = not found
        if founding and probation and self._probation(alert, key):
            self._parked[key] = (alert, alert.ts + self.probation_s, [])
            self._meta_dirty = True
            return out
        if founding and self.subgroup_join and _kind(key) in STRONG_KINDS:
            # unlinked after its probation, but the actor is paged already: a
            # campaign (a public template's, say) names its accounts. A second
            # campaign for the same card was a second incident (tuning seed 1)
            holder = self._holder(hashes)
            if holder is not None:
                found[holder.cid] = holder
        if not found:
            c = Campaign(campaign_id(key, alert.episode_start), t)
            if c.cid in self._campaigns:  # the same founding episode again (re-processing)
                c = self._campaigns[c.cid]
            self._campaigns[c.cid] = c
            self._open_episode(c, t)
        else:
            c = self._merge(sorted(found.values(), key=_seniority), t, out)
            if c.state == "resolved":
                self._open_episode(c, t)
            elif c.state == "quiet":  # fired again within the hold-down: same episode
                c.state = "firing"
                c.quiet_since = 0.0
        self._dirty.add(c.cid)
        new_key = key not in c.keys
        c.keys[key] = round(alert.score, 4)
        c.firing_keys.add(key)
        self._by_key[key] = c.cid
        if isinstance(shared, list):
            for k in shared:
                sk = str(k)
                if sk != key and sk not in c.linked and len(c.linked) < self.max_keys:
                    c.linked.append(sk)
        if len(c.evidence) < self.max_keys or key in c.evidence:
            c.evidence[key] = {
                "score": round(alert.score, 4),
                "reasons": list(alert.details.get("reasons") or []),
                "core_members": alert.account_count,
                "episode_start": alert.episode_start,
            }
        c.score = max(round(alert.score, 4), self._key_score(c))
        c.peak = max(c.peak, c.score)
        c.last_ts = max(c.last_ts, t)
        earlier = c.sent_ts > 0.0 and t < c.first_ts
        if earlier:
            c.first_ts = t
        strong = _kind(key) in STRONG_KINDS
        if probation and self._parked and c.sent_ts:
            # a cluster on probation this one links joins first, at its own
            # event time: its accounts are named then, not now by this one
            self._retry_parked(out)
        named = alert.accounts
        if self.adopt_pages and c.revision == 0 and c.sent_ts == 0.0 and self._own:
            named = (*named, *self._adopt(c, alert))
        members = self._add_members(c, named, min(t, named_at), alert, strong)
        if c.revision == 0 and c.sent_ts == 0.0:
            c.severity = alert.severity
            out.append(self._firing(c, t))
        elif earlier:
            # live only: a cluster that fired earlier in event time arrived after
            # the campaign's page (a lagging partition); its evidence predates
            # the page, so the update goes out now, at its own event time
            c.revision += 1
            out.append(self._firing(c, t))
        elif new_key and _kind(key) in STRONG_KINDS:
            c.pending = True
        out.extend(members)
        self._maybe_update(c, t, out)
        return out

    def _holder(self, hashes: list[int]) -> Campaign | None:
        """The active campaign that names the most of an identity cluster's
        listed accounts (however it named them), if it names ``join_members``
        of them or ``join_overlap`` of the list: the actor is paged there
        already. The earliest founded of equals."""
        best: Campaign | None = None
        best_n = 0
        for c in sorted(self._active(), key=_seniority):
            n = sum(1 for h in hashes if c.has_member(h))
            if n > best_n:
                best, best_n = c, n
        if best is None or best_n < min(self.join_members, math.ceil(
                self.join_overlap * len(hashes))):
            return None
        return best

    def _adopt(self, c: Campaign, alert: Alert) -> list[str]:
        """A campaign about to page whose founding cluster names accounts in
        open incidents of their own (paged before any cluster of the actor
        fired, or joined to such a page) continues the earliest of them: its
        records go out under that incident's ``dedup_key`` and episode start
        (``details.adopted``), so PagerDuty updates the incident on-call
        already has and Alertmanager keeps one alert, instead of opening a
        second one minutes later. The accounts of that incident are the
        campaign's from now on: their own resolution is dropped, the
        campaign's closes it.

        Only the same operator's page: an account the founding cluster names
        when that cluster is an identity key (card, range, org), or any
        account whose own identity keys include the cluster's identity key or
        one its members share (``shared_keys``; such an account is named now,
        as the identity fold names one after the campaign paged: on tuning
        seed 3 a hydra's card cluster shared the range of an account paged
        15 min before and named it a minute later). A template cluster alone
        names unrelated accounts too (on tuning seed 0 a public template's
        campaign would have adopted a model pivot's page of 2.5 h before).
        Returns the accounts to name besides the cluster's.
        A page less severe than the campaign is not adopted unless
        ``adopt_less_severe`` (the campaign's own page is the escalation: the
        adopted incident keeps the page's severity)."""
        shared = alert.details.get("shared_keys")
        key = self._cluster_key(alert)
        ids = {str(k) for k in shared if _kind(str(k)) in STRONG_KINDS} \
            if isinstance(shared, list) else set()
        same_operator = _kind(key) in STRONG_KINDS
        if same_operator:
            ids.add(key)
        listed = set(alert.accounts)
        best: tuple[float, str, str] | None = None
        for acct in sorted(self._own):
            own = self._own[acct]
            if not self.adopt_less_severe and severity_rank(own[2]) < severity_rank(
                    alert.severity):
                continue
            if not (same_operator and acct in listed) and not ids.intersection(own[3]):
                continue
            if best is None or (own[1], own[0]) < best[:2]:
                best = (own[1], own[0], own[2])
        if best is None:
            return []
        start, key, sev = best
        extra: list[str] = []
        detector, _, subject = key.partition(":")
        c.adopted = {"dedup_key": key, "detector": detector, "subject": subject,
                     "severity": sev, "episode_start": start}
        for acct in sorted(self._own):
            if self._own[acct][0] != key:
                continue
            if acct not in listed and ids.intersection(self._own[acct][3]):
                extra.append(acct)
            del self._own[acct]
            known = self._accounts.get(acct)
            if known is not None:  # its resolution closes nothing now
                self._accounts[acct] = (known[0], c.cid, True, known[3])
            self._held.pop(acct, None)  # (resolved already, held: the campaign closes it)
        self._meta_dirty = True
        self._dirty.add(c.cid)
        return extra

    def _incident(self, c: Campaign) -> tuple[str, float, int]:
        """The incident a campaign's records go out under: its dedup key,
        episode start, and the revision of its first record (an adopted
        incident's first record was the account's page: the campaign's
        records are updates of it)."""
        if c.adopted:
            return str(c.adopted["dedup_key"]), float(c.adopted["episode_start"]), 1
        return f"{NAME}:{c.cid}", c.episode_start, 0

    def _incident_closed(self, key: str) -> None:
        """An account incident resolved: nothing can adopt it any more."""
        for acct in [a for a, v in self._own.items() if v[0] == key]:
            del self._own[acct]
            self._meta_dirty = True

    def _key_score(self, c: Campaign) -> float:
        best = 0.0
        for k in c.firing_keys:
            best = max(best, c.keys.get(k, 0.0))
        return best

    def _open_episode(self, c: Campaign, t: float) -> None:
        c.state = "firing"
        c.episode_start = t
        c.first_ts = t
        c.quiet_since = 0.0
        c.members = {}
        c.overflow = None
        c.member_count = 0
        c.listed = []
        c.peak = 0.0
        c.revision = 0
        c.sent_ts = 0.0
        c.sent_members = c.sent_keys = 0
        c.sent_score = 0.0
        c.pending = False
        c.evidence = {}
        c.adopted = {}

    def _active(self) -> list[Campaign]:
        return [c for c in self._campaigns.values()
                if c.state != "resolved" and not c.merged_into]

    def _merge(self, cs: list[Campaign], t: float, out: list[Alert]) -> Campaign:
        """Union of campaigns found to be one: the senior (earliest founded)
        absorbs the others; an absorbed one that was paged resolves, naming it."""
        head = cs[0]
        for other in cs[1:]:
            if other.state != "resolved" and other.sent_ts:
                out.append(self._resolved(other, t, merged_into=head.cid))
            for k, s in other.keys.items():
                head.keys[k] = max(s, head.keys.get(k, 0.0))
                self._by_key[k] = head.cid
            head.firing_keys |= other.firing_keys
            for k in other.linked:
                if k not in head.linked and len(head.linked) < self.max_keys:
                    head.linked.append(k)
            for k, ev in other.evidence.items():
                if len(head.evidence) < self.max_keys:
                    head.evidence.setdefault(k, ev)
            if other.state != "resolved":
                for h, core in other.members.items():
                    self._remember_member(head, h, core)
                if other.overflow is not None:  # counted, not listable: keep the count
                    head.member_count += max(0, other.member_count - len(other.members))
                for a in other.listed:
                    if a not in head.listed:
                        head.listed.append(a)
                head.listed.sort()
                del head.listed[MAX_ACCOUNTS_LISTED:]
                if head.state == "resolved":
                    self._open_episode(head, min(t, other.episode_start))
                    for h, core in other.members.items():
                        self._remember_member(head, h, core)
                    head.listed = sorted(other.listed)[:MAX_ACCOUNTS_LISTED]
                    if other.sent_ts:
                        head.pending = True
                head.episode_start = min(head.episode_start, other.episode_start)
                head.first_ts = min(head.first_ts, other.first_ts)
                head.peak = max(head.peak, other.peak)
                if head.state == "quiet" and other.state == "firing":
                    head.state = "firing"
                    head.quiet_since = 0.0
            head.last_ts = max(head.last_ts, other.last_ts)
            other.merged_into = head.cid
            other.state = "resolved"
            other.firing_keys = set()
            other.members = {}
            other.overflow = None
            other.keys = {}
            self._dirty.add(other.cid)
            head.pending = True
        self._dirty.add(head.cid)
        return head

    def _remember_member(self, c: Campaign, h: int, core: bool) -> bool:
        """Add a member hash; False if it was already named this episode."""
        if c.has_member(h):
            if core and h in c.members:
                c.members[h] = True
            return False
        if len(c.members) < self.max_members:
            c.members[h] = core
        else:
            if c.overflow is None:
                c.overflow = BloomFilter(self.bloom_bits)
            c.overflow.add(h)
        c.member_count += 1
        return True

    def _add_members(
        self, c: Campaign, accounts: Iterable[str], t: float, source: Alert, core: bool,
        via: str = "",
    ) -> list[Alert]:
        out: list[Alert] = []
        others = [o for o in self._active() if o is not c]
        for acct in sorted(accounts):
            h = account_hash(acct)
            if any(o.has_member(h) for o in others):
                continue  # named by the campaign it joined first
            if self._remember_member(c, h, core):
                if len(c.listed) < MAX_ACCOUNTS_LISTED:
                    c.listed.append(acct)
                    c.listed.sort()
                named = min(t, self._parked_since(acct)) if self._parked else t
                if self.suspect_hold_s > 0 and acct in self._pending:
                    # held for a campaign to name it: its evidence is the
                    # alert's, only its page waited
                    named = min(named, self._pending[acct][0].ts)
                out.append(self._member(c, acct, named, source, via))
                if self._pending:
                    self._settle_pending(acct, c, out)
        if out:
            self._dirty.add(c.cid)
        return out

    def _cluster_member(self, alert: Alert) -> list[Alert]:
        acct = alert.account_id
        if acct is None:
            return []
        key = str(alert.details.get("cluster_key", ""))
        owner = self._by_key.get(key)
        c = self._live(owner) if owner is not None else None
        if c is None or c.state == "resolved":
            return []  # its cluster's campaign is gone; the member adds nothing pageable
        t = alert.ts
        out: list[Alert] = []
        c.last_ts = max(c.last_ts, t)
        out.extend(self._add_members(c, (acct,), t, alert, _kind(key) in STRONG_KINDS))
        if out:
            self._maybe_update(c, t, out)
        return out

    def _cluster_resolved(self, alert: Alert) -> list[Alert]:
        key = self._cluster_key(alert)
        owner = self._by_key.get(key)
        c = self._live(owner) if owner is not None else None
        if c is None:
            return []
        c.firing_keys.discard(key)
        c.last_ts = max(c.last_ts, alert.ts)
        self._dirty.add(c.cid)
        if not c.firing_keys and c.state == "firing":
            c.state = "quiet"
            c.quiet_since = alert.ts
            if alert.ts + self.holddown_s <= self._watermark:
                # quiet for the hold-down already (a lagging partition, live)
                out = [self._resolved(c, alert.ts + self.holddown_s)]
                self._close(c)
                return out
        return []

    # ------------------------------------------------------------ accounts
    def _campaign_of(self, account_id: str) -> Campaign | None:
        h = account_hash(account_id)
        best: Campaign | None = None
        for c in self._active():
            if c.has_member(h) and (best is None or _fold_rank(c) > _fold_rank(best)):
                best = c
        return best

    def _stronger(self, alert: Alert, c: Campaign) -> bool:
        """Whether an account's own alert is stronger evidence than its campaign's."""
        return self._outranks(alert, c.score, c.severity)

    def _outranks(self, alert: Alert, score: float, severity: str) -> bool:
        """Whether an alert is stronger evidence than an incident of this score
        and severity (by ``account_margin``, and by severity when
        ``fold_by_severity``)."""
        if alert.score <= score + self.account_margin:
            return False
        if not self.fold_by_severity:
            return True
        return severity_rank(alert.severity) > severity_rank(severity)

    def _account(self, alert: Alert) -> list[Alert]:
        acct = alert.account_id
        assert acct is not None
        out: list[Alert] = []
        if alert.status == "firing":
            rate = _rate(alert)
            held = self._held.pop(acct, None)
            if held is not None:
                # re-fired within the hold-down: the same episode goes on
                self._alias[acct] = (alert.episode_start, held[0])
                self._accounts[acct] = (alert.episode_start, "", False, rate)
                self._meta_dirty = True
                return out
            c = self._campaign_of(acct)
            # only a campaign already firing at the alert's event time folds
            # it: live, an account alert from a lagging partition can arrive
            # after a campaign that started later in event time (replay would
            # have passed it, in event-time order)
            if c is not None and c.state == "firing" and c.episode_start <= alert.ts and (
                not self._stronger(alert, c)
            ):
                self._accounts[acct] = (alert.episode_start, c.cid, True, rate)
                self._meta_dirty = True
                return out  # folded: the campaign's incident covers it
            if c is None and self.template_fold:
                out.extend(self._template_fold(alert, rate))
                if acct in self._accounts:
                    return out
            if c is None and self.identity_fold:
                found = self._identity_campaign(alert)
                if found is not None:
                    out.extend(self._fold_into(alert, rate, found[0], found[1], True))
                    if acct in self._accounts:
                        return out
            self._accounts[acct] = (
                alert.episode_start, c.cid if c is not None else "", False, rate)
            self._meta_dirty = True
            if c is None and self.account_hold_s >= 0:
                # in no campaign yet: a cluster alert of the same event (or
                # of the next moments) may name it; wait for event time to
                # move on past the hold before paging on the account alone
                hold = self.account_hold_s
                if self.account_link_hold_s > hold and self._template_linked(alert):
                    hold = self.account_link_hold_s
                if self.suspect_hold_s > hold and self._suspected(alert):
                    hold = self.suspect_hold_s
                self._suspect(alert)
                if alert.ts + hold >= self._watermark:
                    self._pending[acct] = (alert, alert.ts + hold)
                    return out
                # (live: a partition lagging the others by more than the hold)
            if c is None:
                out.extend(self._page_alone(alert))
            else:
                out.append(self._name_campaign(alert, c))
            return out
        # resolved
        pending = self._pending.pop(acct, None)
        if pending is not None:  # (its hold outlasted the episode: page it, then close it)
            out.extend(self._page_alone(pending[0]))
        alias = self._alias.pop(acct, None)
        if alias is not None and alias[0] == alert.episode_start:
            alert = replace(alert, episode_start=alias[1])
        known = self._accounts.pop(acct, None)
        self._meta_dirty = True
        if known is not None and known[2]:
            return out  # its firing was folded into a campaign: nothing to close
        hold = self._account_holddown(known[3] if known is not None else 0.0)
        due = alert.ts + hold
        if hold > 0 and due > self._watermark:
            self._held[acct] = (alert.episode_start, alert, due)
            return out
        # the hold-down has passed already (a partition that lags the others
        # by more than it, live): nothing later will sweep it out
        out.append(alert)
        self._incident_closed(alert.dedup_key)
        return out

    def _account_holddown(self, rate: float) -> float:
        """How long an account's resolution is held: ``holddown_s``, or the
        time the account takes for ``account_quiet_requests`` requests at the
        rate it fired with, if longer (at most ``max_holddown_s``). A slow
        account's quiet spell is a few requests long: judged on the fixed
        hold-down it flaps (fires, resolves, fires again 40 min later)."""
        hold = self.holddown_s
        if self.account_quiet_requests > 0 and rate > 0:
            own = self.account_quiet_requests * 60.0 / rate
            hold = max(hold, min(self.max_holddown_s, own))
        return hold

    def _template_linked(self, alert: Alert) -> bool:
        """Whether one of the account's own template fingerprints is a
        linkage key of a firing campaign (the cluster stage names members
        on its next rescoring, minutes later)."""
        fps = alert.details.get("prompt_fingerprints")
        if not isinstance(fps, list) or not fps:
            return False
        keys = {f"tmpl:{fp}" for fp in fps}
        for c in self._active():
            if c.state == "firing" and (any(k in c.keys for k in keys)
                                        or any(k in keys for k in c.linked)):
                return True
        return False

    def _suspected(self, alert: Alert) -> bool:
        """Whether an account alert in no campaign is likely a campaign's
        member that no cluster named yet: a cluster on probation lists the
        account, one of its template fingerprints is a linkage key of a
        firing campaign, or an account paged on its own (or held) less than
        ``suspect_window_s`` ago used it too. A template alone is shared by
        unrelated accounts, so it only delays the page (``suspect_hold_s``),
        it never joins anything."""
        acct = alert.account_id
        if self._joins_a_page(alert):
            return False  # no incident of its own to spare: it joins a page now
        if self._parked and acct is not None and self._parked_since(acct) < math.inf:
            return True
        mine = _template_keys_of(alert)
        if not mine:
            return False
        if self._template_linked(alert):
            return True
        for other in sorted(self._suspects):
            ts, keys = self._suspects[other]
            if other != acct and 0 <= alert.ts - ts <= self.suspect_window_s and (
                    any(k in keys for k in mine)):
                return True
        return False

    def _suspect(self, alert: Alert) -> None:
        """Remember the templates of an account alert in no campaign (held
        or paged on its own) for ``suspect_window_s``."""
        keys = _template_keys_of(alert)
        if self.suspect_hold_s > 0 and keys and alert.account_id is not None:
            self._suspects[alert.account_id] = (alert.ts, keys)
            self._meta_dirty = True

    def _template_campaign(self, alert: Alert) -> tuple[Campaign, str] | None:
        """The firing campaign one of whose fired template clusters is one of
        the account's own template fingerprints, and that key. Of several,
        the most specific template: the cluster with the fewest core members
        (a public template is shared by many unrelated accounts)."""
        fps = alert.details.get("prompt_fingerprints")
        if not isinstance(fps, list) or not fps:
            return None
        best: tuple[int, str, Campaign] | None = None
        for fp in fps:
            key = f"tmpl:{fp}"
            owner = self._by_key.get(key)
            c = self._live(owner) if owner is not None else None
            if c is None or c.state != "firing" or c.episode_start > alert.ts:
                continue
            if key not in c.firing_keys:
                continue
            core = int(c.evidence.get(key, {}).get("core_members") or 0)
            if best is None or (core, key) < best[:2]:
                best = (core, key, c)
        return None if best is None else (best[2], best[1])

    def _template_fold(self, alert: Alert, rate: float) -> list[Alert]:
        """An account in no campaign whose own template is a firing
        cluster of a campaign: the cluster stage names it on its next
        rescoring, 1.5-5 min later on the simulator's days, after the
        account's own page (a second incident for the campaign). Named now,
        at the alert's event time: one member record, no account incident
        unless its evidence is stronger than the campaign's."""
        acct = alert.account_id
        assert acct is not None
        found = self._template_campaign(alert)
        if found is None:
            return []
        return self._fold_into(alert, rate, found[0], found[1], False)

    def _fold_into(self, alert: Alert, rate: float, c: Campaign, key: str,
                   core: bool) -> list[Alert]:
        """Name the alert's account a member of ``c`` at the alert's event
        time (through ``key``); no account incident unless its evidence is
        stronger than the campaign's (it then goes out naming it)."""
        acct = alert.account_id
        assert acct is not None
        out = self._add_members(c, (acct,), alert.ts, alert, core, via=key)
        if not out:
            return []
        c.last_ts = max(c.last_ts, alert.ts)
        stronger = self._stronger(alert, c)
        self._accounts[acct] = (alert.episode_start, c.cid, not stronger, rate)
        self._meta_dirty = True
        if stronger:
            out.append(self._name_campaign(alert, c))
        self._maybe_update(c, alert.ts, out)
        return out

    def _identity_campaign(self, alert: Alert) -> tuple[Campaign, str] | None:
        """The campaign firing at the alert's event time whose clusters fired
        on, or whose members share, the most of the account's own identity
        keys (the earliest founded of equals), and the first such key. An
        identity key is one operator's: the account is that campaign's before
        any cluster names it (the cluster stage does on a later rescoring)."""
        keys = _identity_keys_of(alert)
        if not keys:
            return None
        best: tuple[int, Campaign, str] | None = None
        for c in sorted(self._active(), key=_seniority):
            if c.state != "firing" or c.episode_start > alert.ts:
                continue
            hits = [k for k in keys if k in c.keys or k in c.linked]
            if hits and (best is None or len(hits) > best[0]):
                best = (len(hits), c, hits[0])
        return None if best is None else (best[1], best[2])

    def _page_alone(self, alert: Alert) -> list[Alert]:
        """An account alert in no campaign, due to go out on its own. If it
        shares an identity key with an account paged on its own less than
        ``join_window_s`` ago, it joins that page's incident instead: one
        ``account_member`` record naming it (the cluster stage links such
        accounts minutes later; paged, each was an incident of its own),
        unless its evidence is stronger than that page's."""
        acct = alert.account_id
        assert acct is not None
        keys = _identity_keys_of(alert)
        if self.join_window_s > 0 and keys:
            best = self._join_target(alert, keys)
            if best is not None:
                _, other, key = best
                ts, start, severity, score, _ = self._paged[other]
                if not self._outranks(alert, score, severity):
                    known = self._accounts.get(acct)
                    self._accounts[acct] = (alert.episode_start, "", True,
                                            known[3] if known is not None else _rate(alert))
                    self._meta_dirty = True
                    if other in self._own:  # in that page's incident, while it is open
                        self._own[acct] = (*self._own[other][:3], keys)
                    return [self._account_member(alert, other, start, key)]
        if keys and self.join_window_s > 0:
            self._paged[acct] = (alert.ts, alert.episode_start, alert.severity, alert.score, keys)
            self._meta_dirty = True
        if self.adopt_pages:
            self._own[acct] = (alert.dedup_key, alert.episode_start, alert.severity, keys)
            self._meta_dirty = True
        return [alert]

    def _join_target(self, alert: Alert, keys: list[str]) -> tuple[float, str, str] | None:
        """The earliest account paged on its own less than ``join_window_s``
        before the alert that shares one of its identity ``keys``: (its page's
        event time, the account, the key)."""
        best: tuple[float, str, str] | None = None
        for other in sorted(self._paged):
            ts, _, _, _, theirs = self._paged[other]
            if other == alert.account_id or not 0 <= alert.ts - ts <= self.join_window_s:
                continue
            shared = [k for k in keys if k in theirs]
            if shared and (best is None or ts < best[0]):
                best = (ts, other, shared[0])
        return best

    def _joins_a_page(self, alert: Alert) -> bool:
        """Whether the alert, paged now, would join a recent page's incident
        (``join_window_s``) rather than open one of its own."""
        keys = _identity_keys_of(alert)
        if self.join_window_s <= 0 or not keys:
            return False
        best = self._join_target(alert, keys)
        if best is None:
            return False
        _, _, severity, score, _ = self._paged[best[1]]
        return not self._outranks(alert, score, severity)

    def _account_member(self, alert: Alert, other: str, start: float, key: str) -> Alert:
        acct = alert.account_id
        assert acct is not None
        dedup = f"{ACCOUNT_NAMES[0]}:{other}"
        return Alert(
            detector=ACCOUNT_MEMBER_NAME, status="firing", severity="warning", score=alert.score,
            ts=alert.ts, episode_start=start,
            summary=f"{acct[:40]}: shares {key[:40]} with paged account {other[:40]}",
            details={
                "account_dedup_key": dedup,
                "account_alert_id": make_alert_id(dedup, start, "firing"),
                "related_account": other,
                "via": key,
                "reasons": list(alert.details.get("reasons") or []),
                "own_severity": alert.severity,
            },
            account_id=acct,
        )

    def _release_pending(self, t: float, out: list[Alert]) -> None:
        for acct in sorted(self._pending):
            alert, due = self._pending[acct]
            if t > due:
                del self._pending[acct]
                self._meta_dirty = True
                out.extend(self._page_alone(alert))

    def _settle_pending(self, acct: str, c: Campaign, out: list[Alert]) -> None:
        """A campaign named an account whose own alert is still held: fold it
        (or, if its evidence is stronger, send it now naming the campaign)."""
        pending = self._pending.pop(acct, None)
        if pending is None:
            return
        alert = pending[0]
        self._meta_dirty = True
        if self._stronger(alert, c):
            self._accounts[acct] = (alert.episode_start, c.cid, False, _rate(alert))
            out.append(self._name_campaign(alert, c))
        else:
            self._accounts[acct] = (alert.episode_start, c.cid, True, _rate(alert))

    def _name_campaign(self, alert: Alert, c: Campaign | None) -> Alert:
        if c is None:
            return alert
        details = dict(alert.details)
        details["campaign_id"] = c.cid
        details["campaign_dedup_key"] = self._incident(c)[0]
        details["campaign_score"] = round(c.score, 4)
        return replace(alert, details=details)

    # -------------------------------------------------------------- alerts
    def _record_details(self, c: Campaign) -> dict[str, Any]:
        keys = sorted(c.keys)
        linked = [k for k in c.linked if k not in c.keys]
        return {
            "campaign_id": c.cid,
            "cluster_keys": keys[: self.max_keys],
            "linkage_keys": (keys + sorted(linked))[: self.max_keys],
            "firing_keys": sorted(c.firing_keys)[: self.max_keys],
            "members": c.member_count,
            "first_seen": c.first_ts,
            "last_seen": c.last_ts,
            "peak_score": round(c.peak, 4),
            "evidence": {k: c.evidence[k] for k in sorted(c.evidence)},
            "member_alerts": f"{MEMBER_NAME}:<account_id>",
        }

    def _summary(self, c: Campaign) -> str:
        return (f"campaign {c.cid}: {c.member_count} accounts over {len(c.keys)} linkage keys, "
                f"coordinated score {c.score:.2f}")

    def _firing(self, c: Campaign, t: float) -> Alert:
        c.sent_ts = t
        c.sent_members = c.member_count
        c.sent_keys = _strong_keys(c)
        c.sent_score = c.peak
        c.pending = False
        _, start, first = self._incident(c)
        details = self._record_details(c)
        if c.adopted:
            details["adopted"] = dict(c.adopted)
        return Alert(
            detector=NAME, status="firing", severity=c.severity, score=c.score, ts=t,
            episode_start=start, summary=self._summary(c),
            details=details, account_id=None,
            accounts=tuple(c.listed[:MAX_ACCOUNTS_LISTED]), account_count=c.member_count,
            revision=c.revision + first,
        )

    def _material(self, c: Campaign) -> bool:
        return (
            c.pending
            or _strong_keys(c) > c.sent_keys
            or c.member_count >= max(c.sent_members + 1, c.sent_members * (1 + self.growth))
            or c.peak >= c.sent_score + self.score_step
        )

    def _maybe_update(self, c: Campaign, t: float, out: list[Alert]) -> None:
        if c.state == "resolved" or not c.sent_ts or not self._material(c):
            return
        if t - c.sent_ts < self.update_interval_s:
            c.pending = True
            return
        c.revision += 1
        self._dirty.add(c.cid)
        out.append(self._firing(c, t))

    def _member(self, c: Campaign, account_id: str, t: float, source: Alert,
                via: str = "") -> Alert:
        dedup, start, first = self._incident(c)
        return Alert(
            detector=MEMBER_NAME, status="firing", severity="warning", score=c.score, ts=t,
            episode_start=start,
            summary=f"{account_id[:40]}: member of campaign {c.cid}",
            details={
                "campaign_id": c.cid,
                "campaign_dedup_key": dedup,
                "campaign_alert_id": make_alert_id(dedup, start, "firing", first),
                "via": via or str(source.details.get("cluster_key", "")),
                "campaign_score": round(c.score, 4),
            },
            account_id=account_id,
        )

    def _resolved(self, c: Campaign, t: float, merged_into: str = "") -> Alert:
        details = {
            "campaign_id": c.cid,
            "cluster_keys": sorted(c.keys)[: self.max_keys],
            "members": c.member_count,
            "first_seen": c.first_ts,
            "last_seen": c.last_ts,
            "peak_score": round(c.peak, 4),
            "episode_duration_s": round(max(0.0, c.last_ts - c.episode_start), 1),
            "firing_severity": c.severity,
        }
        if c.adopted:  # it closes the adopted incident, as that incident's labels
            details["adopted"] = dict(c.adopted)
            details["firing_severity"] = str(c.adopted["severity"])
        if merged_into:
            details["merged_into"] = merged_into
        summary = (f"campaign {c.cid}: merged into {merged_into}" if merged_into
                   else f"campaign {c.cid}: quiet since its last coordinated activity")
        return Alert(
            detector=NAME, status="resolved", severity="info", score=c.score, ts=t,
            episode_start=self._incident(c)[1], summary=summary, details=details, account_id=None,
            accounts=tuple(c.listed[:MAX_ACCOUNTS_LISTED]), account_count=c.member_count,
        )

    # ----------------------------------------------------------- lifecycle
    def sweep(self) -> list[Alert]:
        """Pending updates, resolutions after the hold-down, held account
        resolutions, forgetting -- at the watermark, in a fixed order."""
        wm = self._watermark
        out: list[Alert] = []
        for cid in sorted(self._campaigns):
            c = self._campaigns[cid]
            if c.merged_into:
                if wm - c.last_ts >= self.forget_after_s:
                    self._forget(c)
                continue
            if c.state == "firing" and c.pending:
                self._maybe_update(c, wm, out)
            elif c.state == "quiet" and wm - c.quiet_since >= self.holddown_s:
                out.append(self._resolved(c, c.quiet_since + self.holddown_s))
                self._close(c)
            elif c.state == "resolved" and wm - c.last_ts >= self.forget_after_s:
                self._forget(c)
        for acct in [a for a, v in self._paged.items() if wm - v[0] > self.join_window_s]:
            del self._paged[acct]
            self._meta_dirty = True
        for acct in [a for a, v in self._suspects.items() if wm - v[0] > self.suspect_window_s]:
            del self._suspects[acct]
            self._meta_dirty = True
        for acct in sorted(self._held):
            start, alert, due = self._held[acct]
            if wm >= due:
                del self._held[acct]
                out.append(alert)
                self._incident_closed(alert.dedup_key)
                self._meta_dirty = True
        while len(self._campaigns) > self.max_campaigns:  # oldest forgotten first
            oldest = min(self._campaigns.values(), key=_age)
            self._forget(oldest)
        return out

    def _close(self, c: Campaign) -> None:
        """The episode is over: keep the keys (re-identification), drop members."""
        c.state = "resolved"
        c.members = {}
        c.overflow = None
        c.listed = []
        self._dirty.add(c.cid)

    def _forget(self, c: Campaign) -> None:
        del self._campaigns[c.cid]
        for k in [k for k, v in self._by_key.items() if v == c.cid]:
            del self._by_key[k]
        self._dirty.discard(c.cid)
        self._removed.add(c.cid)

    # ----------------------------------------------------------- checkpoint
    def take_dirty(self) -> tuple[list[tuple[str, bytes]], list[str]]:
        """Campaigns changed since the last call (encoded) and campaigns forgotten."""
        changed = [(cid, encode_campaign(self._campaigns[cid]))
                   for cid in sorted(self._dirty) if cid in self._campaigns]
        removed = sorted(self._removed)
        self._dirty.clear()
        self._removed.clear()
        return changed, removed

    def snapshot(self) -> bytes:
        """Stage-level state: watermark, sweep point, account folding, held
        resolutions. Campaigns are checkpointed one record each."""
        self._meta_dirty = False
        return orjson.dumps({
            "v": _VERSION,
            "wm": self._watermark,
            "next": self._next_sweep,
            "accounts": {a: list(v) for a, v in self._accounts.items()},
            "held": {a: [s, encode_alert(al).decode(), d] for a, (s, al, d) in self._held.items()},
            "alias": {a: list(v) for a, v in self._alias.items()},
            "pending": {a: [encode_alert(al).decode(), d] for a, (al, d) in self._pending.items()},
            "parked": {k: [encode_alert(al).decode(), d, [encode_alert(m).decode() for m in ms]]
                       for k, (al, d, ms) in self._parked.items()},
            "paged": {a: list(v) for a, v in self._paged.items()},
            "own": {a: list(v) for a, v in self._own.items()},
            "suspects": {a: [ts, keys] for a, (ts, keys) in self._suspects.items()},
        })

    @property
    def meta_dirty(self) -> bool:
        return self._meta_dirty

    def restore(self, data: bytes, campaigns: Iterable[Campaign] = ()) -> None:
        """Restore from :meth:`snapshot` bytes and the checkpointed campaigns."""
        try:
            obj = orjson.loads(data)
            if not isinstance(obj, dict) or obj.get("v") not in _VERSIONS:
                raise CorruptState("unknown campaign snapshot version")
            wm = float(obj["wm"])
            nxt = float(obj["next"])
            accounts = {str(a): (float(v[0]), str(v[1]), bool(v[2]),
                                 float(v[3]) if len(v) > 3 else 0.0)
                        for a, v in dict(obj["accounts"]).items()}
            held = {str(a): (float(v[0]), decode_alert(str(v[1]).encode()), float(v[2]))
                    for a, v in dict(obj["held"]).items()}
            alias = {str(a): (float(v[0]), float(v[1])) for a, v in dict(obj["alias"]).items()}
            pending = {str(a): (decode_alert(str(v[0]).encode()), float(v[1]))
                       for a, v in dict(obj.get("pending") or {}).items()}
            parked = {str(k): (decode_alert(str(v[0]).encode()), float(v[1]),
                               [decode_alert(str(m).encode()) for m in v[2]])
                      for k, v in dict(obj.get("parked") or {}).items()}
            paged = {str(a): (float(v[0]), float(v[1]), str(v[2]), float(v[3]),
                              [str(k) for k in v[4]])
                     for a, v in dict(obj.get("paged") or {}).items()}
            # (before version 4 none: pages restored from it are not adopted)
            own = {str(a): (str(v[0]), float(v[1]), str(v[2]), [str(k) for k in v[3]])
                   for a, v in dict(obj.get("own") or {}).items()}
            # (before version 5 none: nothing is under suspicion after the restore)
            suspects = {str(a): (float(v[0]), [str(k) for k in v[1]])
                        for a, v in dict(obj.get("suspects") or {}).items()}
        except CorruptState:
            raise
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, IndexError) as exc:
            raise CorruptState(f"cannot restore campaign snapshot: {exc}") from None
        self._watermark, self._next_sweep = wm, nxt
        self._accounts, self._held, self._alias = accounts, held, alias
        self._pending, self._parked, self._paged = pending, parked, paged
        self._own, self._suspects = own, suspects
        for c in campaigns:
            self.restore_campaign(c)

    def restore_campaign(self, c: Campaign) -> None:
        self._campaigns[c.cid] = c
        for k in c.keys:
            self._by_key[k] = c.cid

    # ----------------------------------------------------------- inspection
    def campaign(self, cid: str) -> Campaign | None:
        return self._campaigns.get(cid)

    def campaigns(self) -> list[Campaign]:
        return [self._campaigns[cid] for cid in sorted(self._campaigns)]


def tick_due(last: float, watermark: float) -> bool:
    """Whether a partition whose last tick was at ``last`` sends one at
    ``watermark`` (once per ``TICK_S`` of event time; live and replay alike).

    >>> t = 1_800_000_000.0  # a whole minute
    >>> tick_due(0.0, t), tick_due(t, t + 30), tick_due(t + 30, t + 60), tick_due(t, t + 59)
    (True, False, True, False)
    """
    return watermark // TICK_S > last // TICK_S


def _linked(c: Campaign, shared: list[str], own: str) -> bool:
    """Whether a cluster's shared keys tie it to campaign ``c``: one identity
    key in common, or behaviour keys of two kinds."""
    kinds: set[str] = set()
    for k in shared:
        if k == own or (k not in c.keys and k not in c.linked):
            continue
        kind = _kind(k)
        if kind in STRONG_KINDS:
            return True
        kinds.add(kind)
    return len(kinds) >= 2


def _template_keys_of(alert: Alert) -> list[str]:
    """The template linkage keys of an account alert's own fingerprints."""
    fps = alert.details.get("prompt_fingerprints")
    if not isinstance(fps, list):
        return []
    return [f"tmpl:{fp}" for fp in fps]


def _identity_keys_of(alert: Alert) -> list[str]:
    """The identity keys an account alert carries (``details.linkage_keys``)."""
    keys = alert.details.get("linkage_keys")
    if not isinstance(keys, list):
        return []
    return [str(k) for k in keys if _kind(str(k)) in STRONG_KINDS]


def _strong_keys(c: Campaign) -> int:
    return sum(1 for k in c.keys if _kind(k) in STRONG_KINDS)


def _kind(key: str) -> str:
    return key.split(":", 1)[0]


def _seniority(c: Campaign) -> tuple[bool, float, str]:
    # an active campaign absorbs a remembered (resolved) one; then the earliest founded
    return c.state == "resolved", c.founded, c.cid


def _rate(alert: Alert) -> float:
    """An account alert's request rate per minute (0: not given)."""
    r = alert.details.get("rate_per_min")
    return float(r) if isinstance(r, (int, float)) and r > 0 else 0.0


def _fold_rank(c: Campaign) -> tuple[bool, int, float, str]:
    # the campaign an account alert is compared with: a firing one, the most severe, highest score
    return c.state == "firing", severity_rank(c.severity), c.score, c.cid


def _age(c: Campaign) -> tuple[float, str]:
    return c.last_ts, c.cid


def severity_rank(severity: str) -> int:
    """>>> severity_rank("error") > severity_rank("warning")
    True
    """
    return SEVERITIES.index(severity) if severity in SEVERITIES else 0
