"""Coordinated multi-account ("hydra") detection: account summaries, linkage
keys and per-key cluster scoring.

Two stages, both pure logic (no Faust, Kafka, logging or clock):

1. :class:`SummaryEmitter` runs next to the per-account
   :class:`~detectors.engine.Detector` (one per events partition, through
   :class:`~detectors.runner.PartitionRunner`). At most once per account per
   ``interval_s`` of event time (and on first sight) it turns the account's
   features into an :class:`AccountSummary`: the account's *linkage keys*
   (payment fingerprint, IPv4 /24 or IPv6 /48, org, client fingerprint,
   repeated prompt-template fingerprints, a MinHash bucket of its dominant
   topics) and its *behaviour* (top topics, template fingerprints, first-seen
   time, hour-of-day flatness, elicitation share, rate, own score).
2. Summaries are repartitioned by linkage key (``<kind>:<value>``). One
   :class:`ClusterDetector` per partition of that stream keeps, per key, a
   bounded cluster: a capped sample of members with their latest behaviour, a
   HyperLogLog count of all distinct members, and the alert lifecycle. It
   scores how many accounts share the key and how similar and synchronized
   they are, and emits ``detector="cluster"`` alerts (``account_id`` None,
   ``accounts`` + ``account_count``, ``details["cluster_key"]``) plus one
   ``detector="cluster_member"`` alert per member account, referencing the
   cluster's ``dedup_key``.

Sharing alone never fires: the evidence is behaviour that the members have in
common *beyond the key they share* (a template fingerprint carried by many
members, one narrow topic, reasoning elicitation, synchronized starts,
round-the-clock flatness, members' own scores). An organisation whose accounts
share a card and an office range but write varied prompts on diverse topics
by day scores near zero.

Sources: Anthropic, "Detecting and preventing distillation attacks" (Feb
2026) -- hydra clusters of >20,000 proxy accounts, shared payment methods,
coordinated timing, one narrow capability; SynchroTrap (CCS 2014) and
CopyCatch (WWW 2013) for synchronized, lockstep groups.

The package, one concept a module: :mod:`~detectors.cluster.keys` (linkage
keys, shared fingerprints), :mod:`~detectors.cluster.summaries`
(:class:`AccountSummary`, :class:`SummaryEmitter`),
:mod:`~detectors.cluster.sketches` (:class:`HyperLogLog`,
:class:`BloomFilter`), :mod:`~detectors.cluster.members` (``Member``,
``Cluster`` and their table encoding), :mod:`~detectors.cluster.detector`
(:class:`ClusterDetector`), :mod:`~detectors.cluster.stage`
(:class:`ClusterStage`). The names below are the package's API.

>>> from detectors.schema import Event
>>> ip_prefix("203.0.113.77"), ip_prefix("2001:db8:abcd:12::1"), ip_prefix("nope")
('203.0.113.0/24', '2001:db8:abcd::/48', None)
"""

from __future__ import annotations

from detectors.cluster.detector import ClusterDetector
from detectors.cluster.keys import (
    KINDS,
    account_hash,
    ip_prefix,
    linkage_keys,
    shared_fingerprints,
    topic_signature,
)
from detectors.cluster.members import Cluster, Member, decode_entry, encode_entry
from detectors.cluster.sketches import BloomFilter, HyperLogLog
from detectors.cluster.stage import ClusterStage
from detectors.cluster.summaries import SUMMARY_FIELDS, AccountSummary, SummaryEmitter

__all__ = [
    "KINDS",
    "SUMMARY_FIELDS",
    "AccountSummary",
    "BloomFilter",
    "Cluster",
    "ClusterDetector",
    "ClusterStage",
    "HyperLogLog",
    "Member",
    "SummaryEmitter",
    "account_hash",
    "decode_entry",
    "encode_entry",
    "ip_prefix",
    "linkage_keys",
    "shared_fingerprints",
    "topic_signature",
]
