"""Stage 2: :class:`ClusterDetector`, per-linkage-key clusters of one partition
of the summaries stream, their score and their alerts."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import orjson
from mypy_extensions import mypyc_attr

from detectors.alerts import MAX_ACCOUNTS_LISTED, Alert, dedup_key, make_alert_id, severity_for
from detectors.cluster.keys import account_hash, shared_fingerprints
from detectors.cluster.members import _VERSION, Cluster, Loader, Member, encode_entry
from detectors.cluster.sketches import BloomFilter, HyperLogLog
from detectors.cluster.summaries import AccountSummary
from detectors.errors import CorruptState
from detectors.scoring import ramp as _ramp

# ``(summary, account hash, log2 rate)`` of the last summary a ClusterDetector
# saw: a summary is processed once per linkage key, by one detector per partition
_last_summary: list[tuple[Any, int, float]] = [(None, 0, 0.0)]


# (compiled by tools.native: tests and tools may still subclass it)
@mypyc_attr(allow_interpreted_subclasses=True)
class ClusterDetector:
    """Stage 2: per-linkage-key clusters of one partition of the summaries stream.

    Memory is bounded per key: a key seen from one account costs one small
    ``(account hash, last_ts)`` entry; from the second distinct account on it
    becomes a :class:`Cluster` with at most ``max_sample`` sampled members, a
    1 KiB HyperLogLog once the sample is full and, while it fires, a
    ``alert_bloom_bits`` Bloom filter. Keys idle for ``idle_ttl_s`` are
    dropped.

    Parameters
    ----------
    min_members
        Core members a cluster needs before it can score at all.
    full_members
        Core members at which the size factor reaches 1.
    max_sample
        Members kept per cluster (their latest behaviour).
    member_ttl_s
        A sampled member whose last summary is older counts as stale.
    shared_fp_share
        Share of active sampled members that must carry one prompt
        fingerprint for it to count as a shared template.
    sync_window_s
        Members whose first-seen times lie within this of the median started
        together.
    start_unknown_s
        Members first seen within this of the partition's first summary have an
        unknown start (everything is "new" when the service starts).
    fire_threshold, hot_threshold, quiet_period_s
        Alert lifecycle, as for accounts: fire once per episode at
        ``fire_threshold``; the episode stays open while updates score at least
        ``hot_threshold``; resolved after ``quiet_period_s`` without one.
    rescore_interval_s
        A large cluster is rescored at most this often (event time).
    idle_ttl_s
        Keys without a summary for this long are forgotten.
    sweep_interval_s
        Event-time spacing of resolution/expiry sweeps.

    Examples
    --------
    >>> det = ClusterDetector()
    >>> tpl = (0xabc,)
    >>> alerts = []
    >>> for i in range(8):
    ...     s = AccountSummary(f"h{i}", 1e9 + 7200 + 600 + i, 1e9 + 7200 + i * 20,
    ...                        ("ua:aiohttp/3.9.5",), (("coding/rust", 0.9),), tpl,
    ...                        0.8, 0.5, 0.3, 0.5, 0.6, 20)
    ...     alerts += det.process("ua:aiohttp/3.9.5", s)
    >>> det.process("ua:aiohttp/3.9.5", AccountSummary("b", 1e9, 1e9, ("ua:aiohttp/3.9.5",)))
    []
    >>> [(a.detector, a.status, a.account_count) for a in alerts][:2]
    [('cluster', 'firing', 4), ('cluster_member', 'firing', 0)]
    >>> sorted(a.account_id for a in alerts if a.detector == "cluster_member")[-2:]
    ['h6', 'h7']
    >>> alerts[1].details["cluster_dedup_key"]
    'cluster:ua:aiohttp/3.9.5'
    """

    name = "cluster"
    member_name = "cluster_member"

    def __init__(
        self,
        min_members: int = 3,
        full_members: int = 6,
        max_sample: int = 256,
        member_ttl_s: float = 7200.0,
        shared_fp_share: float = 0.3,
        sync_window_s: float = 900.0,
        start_unknown_s: float = 3600.0,
        fire_threshold: float = 0.85,
        hot_threshold: float = 0.6,
        quiet_period_s: float = 1800.0,
        rescore_interval_s: float = 60.0,
        idle_ttl_s: float = 6 * 3600.0,
        sweep_interval_s: float = 60.0,
        hll_p: int = 10,
        alert_bloom_bits: int = 1 << 18,
        severity: Mapping[str, float] | None = None,
    ) -> None:
        self.min_members = min_members
        self.full_members = full_members
        self.max_sample = max_sample
        self.member_ttl_s = member_ttl_s
        self.shared_fp_share = shared_fp_share
        self.sync_window_s = sync_window_s
        self.start_unknown_s = start_unknown_s
        self.fire_threshold = fire_threshold
        self.hot_threshold = hot_threshold
        self.quiet_period_s = quiet_period_s
        self.rescore_interval_s = rescore_interval_s
        self.idle_ttl_s = idle_ttl_s
        self.sweep_interval_s = sweep_interval_s
        self.hll_p = hll_p
        self.alert_bloom_bits = alert_bloom_bits
        self.severity = dict(severity or {"warning": 0.7, "error": 0.85, "critical": 0.95})
        # learned state: insertion order = least recently updated first
        self._clusters: dict[str, Cluster] = {}
        self._singles: dict[str, tuple[int, float]] = {}
        self._firing: set[str] = set()
        self._dirty: set[str] = set()
        self._removed: set[str] = set()
        self._stream_start = 0.0
        self._watermark = 0.0
        self._next_sweep = 0.0
        self._pop_log_rate = 0.0
        self._pop_n = 0
        self.loader: Loader | None = None
        # ``(cluster, episode_start, dedup key, alert id)`` of the last member alert
        self._episode_ids: tuple[Cluster | None, float, str, str] = (None, 0.0, "", "")
        # work counters (not checkpointed; see work()): summaries applied to a
        # key, full evaluations of a cluster, fingerprint-sharing checks
        self._n_applied = 0
        self._n_scored = 0
        self._n_core_checks = 0

    # -------------------------------------------------------------- process
    def process(self, key: str, summary: AccountSummary) -> list[Alert]:
        """Apply one summary routed by ``key``; return the alerts it causes."""
        t = summary.ts
        if not self._stream_start or t < self._stream_start:
            self._stream_start = t
        if self._pop_n < 1_000_000:
            self._pop_n += 1
        # a summary comes once per linkage key: its hash and log rate are kept
        last = _last_summary[0]  # one tuple, read and replaced whole (thread-safe)
        if last[0] is summary:
            h, lr = last[1], last[2]
        else:
            h = account_hash(summary.account_id)
            lr = math.log2(summary.rate + 1e-3)
            _last_summary[0] = (summary, h, lr)
        self._pop_log_rate += (lr - self._pop_log_rate) / min(self._pop_n, 5000)
        alerts = self._apply(key, summary, h)
        if t > self._watermark:
            self._watermark = t
            if t >= self._next_sweep:
                if self._next_sweep:
                    alerts.extend(self.sweep())
                step = self.sweep_interval_s
                self._next_sweep = (t // step + 1) * step
        return alerts

    def _apply(self, key: str, summary: AccountSummary, h: int) -> list[Alert]:
        self._n_applied += 1
        t = summary.ts
        clusters = self._clusters
        entry: Cluster | tuple[int, float] | None = clusters.pop(key, None)
        self._dirty.add(key)
        self._removed.discard(key)
        if entry is None:  # a single-account key, a checkpointed one, or a new one
            singles = self._singles
            entry = singles.pop(key, None)
            if entry is None and self.loader is not None:
                entry = self.loader(key)
            if entry is None or (isinstance(entry, tuple) and entry[0] == h):
                singles[key] = (h, max(t, entry[1]) if entry else t)
                return []
        if isinstance(entry, tuple):  # a second distinct account: promote
            cluster = Cluster(key, min(entry[1], t))
        else:
            cluster = entry
        clusters[key] = cluster  # most recently updated last
        if t > cluster.last_ts:
            cluster.last_ts = t
        self._observe(cluster, summary, h)
        return self._score_and_alert(cluster, summary, h)

    def _observe(self, c: Cluster, s: AccountSummary, h: int) -> None:
        top, share = s.top_topics[0] if s.top_topics else ("", 0.0)
        member = Member(
            h,
            s.first_ts,
            s.ts,
            top,
            share,
            s.fps,
            s.template,
            s.elicitation,
            s.flatness,
            s.rate,
            s.score,
            s.keys,
        )
        members = c.members
        if s.ts < c._oldest:
            c._oldest = s.ts
        old = members.get(s.account_id)
        if old is not None:
            member.first_ts = min(old.first_ts, s.first_ts)
            members[s.account_id] = member
            if c._fpc is not None and old.fps != s.fps:
                self._uncount(c, old.fps)
                self._count(c, s.fps)
            return
        if c.hll is not None:
            c.hll.add(h)
        if len(members) < self.max_sample:
            members[s.account_id] = member
            c._evict = None
            if c._fpc is not None:
                self._count(c, s.fps)
            return
        if c.hll is None:  # the sample just filled: count every member from now on
            c.hll = HyperLogLog(self.hll_p)
            for m in members.values():
                c.hll.add(m.h)
            c.hll.add(h)
        # full: bottom-k by account hash (stale members are pruned when scoring)
        evict = c._evict
        if evict is None:
            # the largest hash, and the first member (in sample order) carrying
            # it: one pass (was a list of the hashes, max, index and a walk to
            # that index); the sample is full, so there is a first member
            top_h = 0
            top_a = ""
            first = True
            for a, m in members.items():
                if first or m.h > top_h:
                    top_h = m.h
                    top_a = a
                    first = False
            evict = c._evict = (top_h, top_a)
        if h >= evict[0]:
            return
        gone = members.pop(evict[1])
        members[s.account_id] = member
        c._evict = None
        if c._fpc is not None:
            self._uncount(c, gone.fps)
            self._count(c, s.fps)

    # Fingerprint counts over the sample (Cluster._fpc), kept exact by every
    # change of the sample: a summary costs a few dict updates, and whether any
    # fingerprint is shared widely enough for a core is known at once.
    def _count(self, c: Cluster, fps: tuple[int, ...]) -> None:
        fpc = c._fpc
        assert fpc is not None
        need = self.min_members
        for fp in fps:
            n = fpc.get(fp, 0) + 1
            fpc[fp] = n
            if n == need:
                c._hot += 1
            if n > c._top:
                c._top = n

    def _uncount(self, c: Cluster, fps: tuple[int, ...]) -> None:
        fpc = c._fpc
        assert fpc is not None
        need = self.min_members
        for fp in fps:
            n = fpc[fp]
            if n == need:
                c._hot -= 1
            if n == 1:
                del fpc[fp]
            else:
                fpc[fp] = n - 1

    def _counts(self, c: Cluster) -> dict[int, int]:
        """The cluster's fingerprint counts, built from the sample when unknown
        (a new or restored cluster)."""
        fpc = c._fpc
        if fpc is None:
            fpc = c._fpc = {}
            c._hot = c._top = 0
            for m in c.members.values():
                self._count(c, m.fps)
        return fpc

    def _prune(self, c: Cluster, t: float) -> None:
        """A full sample drops members without a summary for ``member_ttl_s``, so
        that active members (of a cluster whose accounts rotate) get the room."""
        if c.hll is None or len(c.members) < self.max_sample:
            return
        stale = t - self.member_ttl_s
        if c._oldest >= stale:  # a lower bound: nothing to drop, without a scan
            return
        for acct in [a for a, m in c.members.items() if m.last_ts < stale]:
            gone = c.members.pop(acct)
            c._evict = None
            if c._fpc is not None:
                self._uncount(c, gone.fps)
        c._oldest = min([m.last_ts for m in c.members.values()], default=math.inf)

    # -------------------------------------------------------------- scoring
    def _cannot_score(self, c: Cluster, t: float) -> bool:
        """Whether :meth:`evaluate` at ``t`` would find no core (score 0),
        known from the incremental counts without looking at the members.

        It relies on what :meth:`_core` requires of a core: outside ``tmpl:``
        keys, a fingerprint carried at least ``max(min_members,
        ceil(shared_fp_share * active))`` times by the active members, who are
        a subset of the sample; for ``tmpl:`` keys, ``min_members`` active
        members. Prunes first, as :meth:`_core` does, so the sample evolves as
        if every call had been a full evaluation (tests/unit/test_cluster.py runs
        both ways and compares the alerts).
        """
        self._prune(c, t)
        members = c.members
        if len(members) < self.min_members:
            return True
        if c.kind == "tmpl":
            return False
        self._counts(c)
        if not c._hot:
            return True
        # some fingerprint reaches min_members: compare the largest count with
        # what the active members need (all active: no scan for the count)
        since = t - self.member_ttl_s
        if c._oldest >= since:
            n_active = len(members)
        else:
            seen = [m.last_ts for m in members.values()]
            c._oldest = min(seen)
            n_active = len([x for x in seen if x >= since])
        need = max(self.min_members, math.ceil(self.shared_fp_share * n_active))
        if c._top >= need:
            fpc = self._counts(c)
            c._top = max(fpc.values()) if fpc else 0  # lower the bound to the exact max
        return c._top < need

    def _core(self, c: Cluster, t: float) -> tuple[list[tuple[str, Member]], dict[str, Any]]:
        """Members sharing the cluster's common behaviour, and how they were chosen."""
        self._prune(c, t)
        since = t - self.member_ttl_s
        members = c.members
        kind = c.kind
        active = [(a, m) for a, m in members.items() if m.last_ts >= since]
        info: dict[str, Any] = {"active_sampled": len(active)}
        if not active:
            return [], info
        if kind == "tmpl":
            return active, info
        need = max(self.min_members, math.ceil(self.shared_fp_share * len(active)))
        fps = [m.fps for _, m in active]
        self._n_core_checks += 1
        shared = shared_fingerprints(fps, need)
        if not shared:
            # Sharing the key and a topic mix is what organisations do too: without
            # a template fingerprint in common there is no coordinated core.
            return [], info
        core = [am for am, f in zip(active, fps, strict=True) if not shared.isdisjoint(f)]
        info["shared_templates"] = sorted([f"{fp:08x}" for fp in shared])[:8]
        return core, info

    def evaluate(self, c: Cluster, t: float) -> tuple[float, dict[str, Any], list[str]]:
        """Score, evidence and core member ids of a cluster as of ``t``."""
        core, info = self._core(c, t)
        n_active = max(1, info["active_sampled"])
        total = c.count()
        n_core = len(core)
        est_core = n_core if c.hll is None else round(total * n_core / max(1, len(c.members)))
        ev: dict[str, Any] = {"members": total, "core_members": est_core, **info}
        if n_core < self.min_members:
            return 0.0, ev, []
        # comprehensions over the typed list, not map(attrgetter): compiled,
        # they read the members' fields natively (no generic getattr per item)
        ms: list[Member] = [m for _, m in core]
        k = float(n_core)
        kind = c.kind
        fp_share = n_core / n_active if "shared_templates" in info else 0.0
        tops: dict[str, int] = {}  # members with a top topic, in member order
        for m in ms:
            if m.top:
                tops[m.top] = tops.get(m.top, 0) + 1
        topic_agree = max(tops.values()) / k if tops else 0.0
        # medians: a few strong attackers must not make a mixed group look alike
        mean_top = _median_of([m.top_share for m in ms])
        elic = _median_of([m.elicitation for m in ms])
        tmpl = _median_of([m.template for m in ms])
        flat = _median_of([m.flatness for m in ms])
        own = _median_of([m.score for m in ms])
        agg_rate = sum([m.rate for m in ms]) / k * est_core
        start, unknown = self._stream_start, self.start_unknown_s
        known = sorted([m.first_ts for m in ms if m.first_ts - start >= unknown])
        sync = 0.0
        if len(known) >= self.min_members:
            med = known[len(known) // 2]
            window = self.sync_window_s
            within = len([x for x in known if abs(x - med) <= window])
            sync = within / len(known)
            ev["start_spread_s"] = round(known[-1] - known[0], 1)
        terms = {
            "shared_template": _ramp(fp_share, 0.3, 0.7),
            "one_topic": (0.0 if kind == "lsh" else _ramp(topic_agree, 0.6, 0.9))
            * _ramp(mean_top, 0.25, 0.6),
            "elicitation": _ramp(elic, 0.1, 0.4),
            "template": _ramp(tmpl, 0.2, 0.6),
            "synchronized": _ramp(sync, 0.6, 0.9),
            "round_the_clock": _ramp(flat, 0.75, 0.92),
            "member_scores": _ramp(own, 0.3, 0.8),
            "volume": _ramp(math.log2(agg_rate + 1e-3) - self._pop_log_rate, 4.0, 8.0),
        }
        # What one product run by many accounts shows too (an organisation's
        # accounts share its templates and topic): counts fully only with
        # behaviour beyond it (reasoning harvest, synchronized starts,
        # round-the-clock) or members' own evidence.
        z_product = (
            1.2 * terms["shared_template"] + 0.8 * terms["one_topic"] + 0.6 * terms["template"]
        )
        z_behaviour = (
            1.0 * terms["elicitation"]
            + 0.8 * terms["synchronized"]
            + 0.6 * terms["round_the_clock"]
        )
        # Declared organisations running their product: the product and its
        # reasoning requests are their business. What counts is the share of
        # core members that declare an org id with another core member (team
        # accounts of a customer), not the largest single org: a public
        # framing (an ed-tech vendor's, a framework's) is shared by the
        # accounts of several organisations, and on a 2,400-account tuning day
        # six tutors of four orgs (two per org at most) fired a template
        # cluster at 0.85 when one org had to hold 80% of them. A hydra's
        # accounts each declare their own org (or none): share 0, no discount.
        orgs: dict[str, int] = {}
        for m in ms:
            for key in m.keys:
                if key.startswith("org:"):
                    orgs[key] = orgs.get(key, 0) + 1
                    break
        grouped = sum([n for n in orgs.values() if n >= 2]) / k
        org_w = _ramp(grouped, 0.3, 0.8)
        if org_w > 0.0:
            z_product *= 1.0 - 0.75 * org_w
            z_behaviour -= 0.5 * org_w * terms["elicitation"]
            ev["declared_org_share"] = round(grouped, 3)
        x = (z_behaviour + terms["member_scores"]) / 1.0
        z_spec = z_behaviour + z_product * (0.35 + 0.65 * (x if x < 1.0 else 1.0))
        z_gen = 0.8 * terms["member_scores"] + 0.4 * terms["volume"]
        gate = min(1.0, z_spec / 1.5)
        size = _ramp(est_core, self.min_members - 1, self.full_members)
        z = size * (z_spec + z_gen * gate)
        score = 1.0 - math.exp(-z)
        ev.update(
            {
                "evidence": {n: round(v, 3) for n, v in terms.items()},
                "reasons": [n for n, v in terms.items() if v >= 0.5],
                "size_factor": round(size, 3),
                "median_elicitation": round(elic, 4),
                "median_template_repetition": round(tmpl, 4),
                "median_hour_flatness": round(flat, 4),
                "median_member_score": round(own, 4),
                "median_top_share": round(mean_top, 4),
                "top_topics": sorted(tops.items(), key=_by_count_then_name)[:3],
                "aggregate_rate_per_min": round(agg_rate, 2),
                "population_rate_per_min": round(math.pow(2.0, self._pop_log_rate), 3),
                "shared_keys": _shared_keys(ms, c.key),
            }
        )
        return score, ev, sorted([a for a, _ in core])

    def _score_and_alert(self, c: Cluster, s: AccountSummary, h: int) -> list[Alert]:
        t = s.ts
        alerts: list[Alert] = []
        firing = bool(c.episode_start)
        if len(c.members) > 32 and t - c.last_scored < self.rescore_interval_s:
            # big cluster, scored recently: only the member check while firing
            if firing and c.alerted is not None and h not in c.alerted:
                if self._matches(c, s):
                    alerts.append(self._member_alert(c, s.account_id, t))
                    c.alerted.add(h)
            return alerts
        if not firing and self._cannot_score(c, t):
            # no core can exist (the incremental counts say so): what a full
            # evaluation would record, without one
            c.last_scored = t
            c.score = 0.0
            return alerts
        self._n_scored += 1
        score, ev, core = self.evaluate(c, t)
        c.last_scored = t
        c.score = score
        if firing:
            if score >= self.hot_threshold:
                c.last_hot = t
            c.peak = max(c.peak, score)
            c.evidence = ev
            assert c.alerted is not None
            if s.account_id in core and h not in c.alerted:
                alerts.append(self._member_alert(c, s.account_id, t))
                c.alerted.add(h)
            return alerts
        if score >= self.fire_threshold:
            c.episode_start = c.last_hot = t
            c.peak = score
            c.evidence = ev
            self._firing.add(c.key)
            c.alerted = BloomFilter(self.alert_bloom_bits)
            alerts.append(self._fire(c, t, score, ev, core))
            for acct in core:
                alerts.append(self._member_alert(c, acct, t))
                c.alerted.add(account_hash(acct))
        return alerts

    def _matches(self, c: Cluster, s: AccountSummary) -> bool:
        """Whether a member seen between rescorings carries the cluster's shared template."""
        if c.kind == "tmpl":
            return True
        shared = c.evidence.get("shared_templates")
        if not shared:
            return False
        for fp in s.fps:
            if f"{fp:08x}" in shared:
                return True
        return False

    # --------------------------------------------------------------- alerts
    def _fire(
        self, c: Cluster, t: float, score: float, ev: dict[str, Any], core: list[str]
    ) -> Alert:
        count = int(ev["core_members"])
        details = {
            "cluster_key": c.key,
            "key_kind": c.kind,
            **ev,
            "member_alerts": f"{self.member_name}:<account_id>",
        }
        summary = (
            f"{count} accounts sharing {c.key[:50]}: coordinated score {score:.2f} "
            f"({', '.join(ev.get('reasons', [])) or 'combined'})"
        )
        c.fire_sev = severity_for(score, self.severity)
        return Alert(
            detector=self.name,
            status="firing",
            severity=c.fire_sev,
            score=score,
            ts=t,
            episode_start=c.episode_start,
            summary=summary,
            details=details,
            account_id=None,
            accounts=tuple(core[:MAX_ACCOUNTS_LISTED]),
            account_count=max(count, len(core)),
        )

    def _member_alert(self, c: Cluster, account_id: str, t: float) -> Alert:
        ids = self._episode_ids
        if ids[0] is not c or ids[1] != c.episode_start:
            # the cluster's dedup key and firing alert id, for all its members
            cluster_dedup = dedup_key(self.name, c.key)
            alert_id = make_alert_id(cluster_dedup, c.episode_start, "firing")
            ids = self._episode_ids = (c, c.episode_start, cluster_dedup, alert_id)
        return Alert(
            detector=self.member_name,
            status="firing",
            severity="warning",
            score=c.peak,
            ts=t,
            episode_start=c.episode_start,
            summary=f"{account_id[:40]}: member of coordinated cluster {c.key[:50]}",
            details={
                "cluster_key": c.key,
                "cluster_dedup_key": ids[2],
                "cluster_alert_id": ids[3],
                "cluster_score": round(c.peak, 4),
                "cluster_members": c.evidence.get("members", len(c.members)),
                "shared_keys": c.evidence.get("shared_keys", []),
            },
            account_id=account_id,
        )

    def _resolve(self, c: Cluster, t: float) -> Alert:
        alert = Alert(
            detector=self.name,
            status="resolved",
            severity="info",
            score=c.score,
            ts=t,
            episode_start=c.episode_start,
            summary=f"cluster {c.key[:60]}: quiet since the last coordinated activity",
            details={
                "cluster_key": c.key,
                "peak_score": round(c.peak, 4),
                "last_hot_ts": c.last_hot,
                "members": c.count(),
                "episode_duration_s": round(c.last_hot - c.episode_start, 1),
                **({"firing_severity": c.fire_sev} if c.fire_sev else {}),
            },
            account_id=None,
            accounts=tuple(sorted(c.members)[:MAX_ACCOUNTS_LISTED]),
            account_count=c.count(),
        )
        c.episode_start = c.last_hot = c.peak = 0.0
        c.alerted = None
        c.fire_sev = ""
        self._firing.discard(c.key)
        return alert

    # ------------------------------------------------------------ lifecycle
    def sweep(self) -> list[Alert]:
        """Resolve quiet episodes and forget idle keys, at the watermark."""
        wm = self._watermark
        alerts = []
        for key in sorted(self._firing):
            c = self._clusters.get(key)
            if c is None:
                self._firing.discard(key)
                continue
            if wm - c.last_hot >= self.quiet_period_s:
                alerts.append(self._resolve(c, c.last_hot + self.quiet_period_s))
                self._dirty.add(key)
        limit = wm - self.idle_ttl_s
        for table in (self._clusters, self._singles):
            while table:
                key = next(iter(table))
                entry = table[key]
                last = entry.last_ts if isinstance(entry, Cluster) else entry[1]
                if last >= limit or key in self._firing:
                    break
                del table[key]
                self._dirty.discard(key)
                self._removed.add(key)
        return alerts

    def take_dirty(self) -> tuple[list[tuple[str, bytes]], list[str]]:
        """Keys changed since the last call (encoded, to checkpoint), and keys forgotten."""
        changed = []
        for key in sorted(self._dirty):
            c = self._clusters.get(key)
            if c is not None:
                changed.append((key, encode_entry(c)))
                continue
            s = self._singles.get(key)
            if s is not None:
                changed.append((key, encode_entry(s)))
        removed = sorted(self._removed)
        self._dirty.clear()
        self._removed.clear()
        return changed, removed

    def restore_entry(self, key: str, entry: Cluster | tuple[int, float]) -> None:
        """Put a checkpointed key back into memory (after a restart)."""
        if isinstance(entry, Cluster):
            self._clusters[key] = entry
            if entry.episode_start:
                self._firing.add(key)
        else:
            self._singles[key] = entry

    def snapshot(self) -> bytes:
        """Partition-level state (watermark, sweep point, population rate) as JSON bytes."""
        return orjson.dumps(
            {
                "v": _VERSION,
                "start": self._stream_start,
                "wm": self._watermark,
                "next": self._next_sweep,
                "pop": self._pop_log_rate,
                "n": self._pop_n,
                "firing": sorted(self._firing),
            }
        )

    def restore(self, data: bytes) -> None:
        try:
            obj = orjson.loads(data)
            if obj.get("v") != _VERSION:
                raise CorruptState("unknown cluster snapshot version")
            self._stream_start = float(obj["start"])
            self._watermark = float(obj["wm"])
            self._next_sweep = float(obj["next"])
            self._pop_log_rate = float(obj["pop"])
            self._pop_n = int(obj["n"])
            firing = [str(k) for k in obj.get("firing", ())]
        except CorruptState:
            raise
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CorruptState(f"cannot restore cluster snapshot: {exc}") from None
        if self.loader is not None:
            for key in firing:  # open episodes must be resolvable without new summaries
                entry = self.loader(key)
                if isinstance(entry, Cluster):
                    self.restore_entry(key, entry)

    # ------------------------------------------------------------ inspection
    def cluster(self, key: str) -> Cluster | None:
        return self._clusters.get(key)

    def sizes(self) -> tuple[int, int]:
        """``(clusters, single-account keys)`` held in memory."""
        return len(self._clusters), len(self._singles)

    def work(self) -> dict[str, int]:
        """Deterministic work counters since this detector was made:
        ``applied`` (a summary applied to one of its keys), ``scored`` (a full
        evaluation of a cluster) and ``core_checks`` (a count of the prompt
        fingerprints shared by a cluster's active members). Repeatable where
        timings are not: the measure of how much work the stage does."""
        return {
            "applied": self._n_applied,
            "scored": self._n_scored,
            "core_checks": self._n_core_checks,
        }


def _median_of(xs: list[float]) -> float:
    """The median of ``xs``, which it sorts in place (0.0 if empty)."""
    xs.sort()
    n = len(xs)
    if not n:
        return 0.0
    mid = n // 2
    return xs[mid] if n % 2 else 0.5 * (xs[mid - 1] + xs[mid])


def _by_count_then_name(item: tuple[str, int]) -> tuple[int, str]:
    return -item[1], item[0]


def _shared_keys(members: list[Member], own: str, limit: int = 8) -> list[str]:
    counts: dict[str, int] = {}
    for m in members:
        for key in m.keys:
            counts[key] = counts.get(key, 0) + 1
    need = max(2, math.ceil(len(members) / 2))
    keys = [k for k, n in counts.items() if n >= need or k == own]
    if own not in keys:
        keys.append(own)
    return sorted(keys, key=lambda k: (-counts.get(k, 0), k))[:limit]
