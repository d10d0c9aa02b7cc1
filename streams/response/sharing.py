"""Indicators for sharing: alert records to a STIX 2.1 bundle and back.

What leaves: for every firing cluster alert (``details.cluster_key`` =
``<kind>:<value>``; ``cluster``, ``campaign`` or any detector that names a
linkage key) and the keys its members share, one indicator per key:

- payment fingerprints (``pay``), client fingerprints (``ua``) and
  prompt-template fingerprints (``tmpl``) as ``HMAC-SHA256(community key,
  "<kind>:<value>")`` with the key's id, in the pattern
  ``[x-llm-actor-fingerprint:hmac_sha256 = '<hex>']``;
- IP networks as CIDR: ``[ipv4-addr:value ISSUBSET '203.0.113.0/24']``.

Firing account alerts whose reasons include ``template`` add their
prompt-template fingerprints (HMAC'd). Never: prompt text, account ids, raw
payment or client fingerprints, topic names or any other alert detail.
Indicators of one cluster are grouped under a ``campaign`` (``indicates``
relationships), confidence = 100 x score, ``valid_until`` = ``valid_from`` +
the validity, every object marked with a TLP 2.0 marking, and the
distillwatch facts in the ``x_distillwatch`` property extension, defined by
an ``extension-definition`` in the same bundle. Ids are deterministic (the
same alerts give the same bundle), shaped as UUIDv4.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import stix2

from detectors.response import format_time, parse_ts
from detectors.watchlist import hmac_hex

TLP_EXTENSION = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
TLP_IDS = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "amber+strict": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "red": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
TLP_BY_ID = {v: k for k, v in TLP_IDS.items()}
SHARED_KINDS = ("pay", "ua", "tmpl", "ip")
FINGERPRINT_TYPE = "x-llm-actor-fingerprint"
EXTENSION_SCHEMA = "https://distillwatch.dev/schemas/stix-extension-x-distillwatch.json"
_REASON = re.compile(r"^[a-z_]{1,40}$")
_HEX8 = re.compile(r"^[0-9a-f]{8}$")
_EPOCH = "2026-01-01T00:00:00.000Z"


def stix_id(kind: str, *parts: str) -> str:
    """A deterministic id shaped as a UUIDv4 (what STIX asks of SDOs).

    >>> a = stix_id("indicator", "x"); a == stix_id("indicator", "x"), a[:10]
    (True, 'indicator-')
    >>> uuid.UUID(a.split("--")[1]).version
    4
    """
    raw = bytearray(hashlib.blake2b("|".join((kind, *parts)).encode(), digest_size=16).digest())
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    return f"{kind}--{uuid.UUID(bytes=bytes(raw))}"


def tlp_marking(level: str) -> stix2.MarkingDefinition:
    """The TLP 2.0 marking-definition (fixed ids, the OASIS extension)."""
    return stix2.MarkingDefinition(
        id=TLP_IDS[level], created="2022-10-01T00:00:00.000Z", name=f"TLP:{level.upper()}",
        extensions={TLP_EXTENSION: {"extension_type": "property-extension",
                                    "tlp_2_0": level}},
        allow_custom=True,
    )


def _shared_value(kind: str, value: str, key: bytes) -> tuple[str, str] | None:
    """(pattern, value as shared) of one linkage key, or None if not shareable."""
    if kind in ("pay", "ua", "tmpl"):
        if kind == "tmpl" and not _HEX8.match(value):
            return None
        digest = hmac_hex(key, kind, value)
        return f"[{FINGERPRINT_TYPE}:hmac_sha256 = '{digest}']", digest
    if kind == "ip":
        try:
            net = ipaddress.ip_network(value, strict=False)
        except ValueError:
            return None
        addr = "ipv4-addr" if net.version == 4 else "ipv6-addr"
        return f"[{addr}:value ISSUBSET '{net}']", str(net)
    return None


class _Found:
    """One shareable key, merged over the alerts that named it."""

    def __init__(self, kind: str, pattern: str, value: str) -> None:
        self.kind, self.pattern, self.value = kind, pattern, value
        self.score = 0.0
        self.first = float("inf")
        self.last = 0.0
        self.detectors: set[str] = set()
        self.reasons: set[str] = set()
        self.alert_ids: set[str] = set()
        self.accounts = 0
        self.campaigns: set[str] = set()

    def add(self, alert: Mapping[str, Any], t: float, campaign: str | None) -> None:
        self.score = max(self.score, float(alert.get("score", 0.0)))
        self.first = min(self.first, t)
        self.last = max(self.last, t)
        self.detectors.add(str(alert.get("detector")))
        details = alert.get("details") if isinstance(alert.get("details"), Mapping) else {}
        assert isinstance(details, Mapping)
        reasons = details.get("reasons")
        for r in reasons if isinstance(reasons, list) else []:
            if isinstance(r, str) and _REASON.match(r):
                self.reasons.add(r)
        self.alert_ids.add(str(alert.get("alert_id")))
        self.accounts = max(self.accounts, int(alert.get("account_count") or 1))
        if campaign:
            self.campaigns.add(campaign)


def _time_of(alert: Mapping[str, Any], field: str = "ts") -> float | None:
    """An alert's time, or None for a record that is not a distillwatch alert."""
    try:
        return parse_ts(str(alert.get(field)))
    except (ValueError, TypeError, OverflowError):
        return None


def build_bundle(
    alerts: Iterable[Mapping[str, Any]], *, key: bytes, key_id: str, tlp: str = "amber",
    since: float | None = None, valid_days: float = 30.0, producer: str = "distillwatch",
) -> stix2.Bundle:
    """The STIX 2.1 bundle of the firing alerts' shareable indicators."""
    if tlp not in TLP_IDS:
        raise ValueError(f"tlp must be one of {tuple(TLP_IDS)}, got {tlp!r}")
    if not key:
        raise ValueError("a community key is needed to hash fingerprints")
    identity, extension, marking = _producer_objects(producer, tlp)
    firing = [a for a in alerts if a.get("status") == "firing"]
    found: dict[tuple[str, str], _Found] = {}
    campaigns, members = _cluster_keys(firing, since, key, found)
    _template_keys(firing, since, key, found, members)
    objects: list[Any] = [identity, extension, marking]
    common = {"created_by_ref": identity.id, "object_marking_refs": [marking.id]}
    for cid, c in sorted(campaigns.items()):
        objects.append(_campaign(cid, c, common))
    for (kind, value), f in sorted(found.items()):
        objects.extend(_indicator(kind, value, f, key_id, extension.id, valid_days, common))
    return stix2.Bundle(objects=objects, id=stix_id("bundle", *sorted(
        str(getattr(o, "id", "")) + str(getattr(o, "modified", "")) for o in objects)),
        allow_custom=True)


def _producer_objects(producer: str, tlp: str) -> tuple[
        stix2.Identity, stix2.ExtensionDefinition, stix2.MarkingDefinition]:
    """Who shares (identity), the x_distillwatch extension definition, the TLP marking."""
    identity = stix2.Identity(
        id=stix_id("identity", producer), name=producer, identity_class="organization",
        description="The provider that shares these indicators (distillwatch).",
        created=_EPOCH, modified=_EPOCH)
    marking = tlp_marking(tlp)
    ext_id = stix_id("extension-definition", "x_distillwatch", "1.0")
    extension = stix2.ExtensionDefinition(
        id=ext_id, created_by_ref=identity.id, created=_EPOCH, modified=_EPOCH,
        name="x_distillwatch", version="1.0", schema=EXTENSION_SCHEMA,
        description="distillwatch facts on an indicator of a distillation campaign: the "
                    "linkage-key kind, the community key id of a hashed value, detectors, "
                    "reasons, accounts observed (never account ids or prompt text).",
        extension_types=["property-extension"])
    return identity, extension, marking


def _cluster_keys(firing: list[Mapping[str, Any]], since: float | None, key: bytes,
                  found: dict[tuple[str, str], _Found],
                  ) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Cluster and campaign alerts: their shareable linkage keys into ``found``;
    the campaigns (STIX id -> first, last, score, accounts) and each member
    account's campaign."""
    campaigns: dict[str, dict[str, Any]] = {}
    members: dict[str, str] = {}  # account id -> campaign id (cluster alerts' members)
    for alert in firing:
        t = _time_of(alert)
        if t is None or (since is not None and t < since):
            continue
        details = alert.get("details")
        if not isinstance(details, Mapping):
            continue
        cluster_key = details.get("cluster_key")
        shared_keys = details.get("shared_keys")
        linkage = details.get("linkage_keys")
        if cluster_key is None and isinstance(linkage, list) and linkage:
            # a campaign record (detectors/campaign.py): every linkage key it carries
            cluster_key, shared_keys = linkage[0], linkage[1:]
        if not isinstance(cluster_key, str) or ":" not in cluster_key \
                or alert.get("account_id") is not None:
            continue
        keys = [cluster_key] + [k for k in (shared_keys if isinstance(shared_keys, list) else [])
                                if isinstance(k, str) and ":" in k]
        campaign_id = stix_id("campaign", str(alert.get("dedup_key")),
                              str(alert.get("episode_start")))
        start = _time_of(alert, "episode_start") or t
        # a record may carry an event time before its episode's start (a
        # member named at the time of its own event): first seen is the
        # earlier of the two, so that last_seen >= first_seen (STIX 2.1)
        if t < start:
            start = t
        c = campaigns.setdefault(campaign_id, {"first": start, "last": t, "score": 0.0,
                                               "accounts": 0})
        c["first"] = min(c["first"], start)
        c["last"] = max(c["last"], t)
        c["score"] = max(c["score"], float(alert.get("score", 0.0)))
        c["accounts"] = max(c["accounts"], int(alert.get("account_count") or 0))
        for account in alert.get("accounts") or []:
            members.setdefault(str(account), campaign_id)
        for linkage_key in keys:
            kind, _, value = linkage_key.partition(":")
            shared = _shared_value(kind, value, key) if kind in SHARED_KINDS else None
            if shared is None:
                continue
            f = found.setdefault((kind, shared[1]), _Found(kind, shared[0], shared[1]))
            f.add(alert, t, campaign_id)
    return campaigns, members


def _template_keys(firing: list[Mapping[str, Any]], since: float | None, key: bytes,
                   found: dict[tuple[str, str], _Found], members: Mapping[str, str]) -> None:
    """Account alerts: their repeated prompt templates into ``found``."""
    for alert in firing:
        account = alert.get("account_id")
        details = alert.get("details")
        if not isinstance(account, str) or not isinstance(details, Mapping):
            continue
        t = _time_of(alert)
        if t is None or (since is not None and t < since):
            continue
        reasons = details.get("reasons")
        fps = details.get("prompt_fingerprints")
        if not isinstance(reasons, list) or "template" not in reasons or not isinstance(fps, list):
            continue
        for fp in fps:
            shared = _shared_value("tmpl", str(fp), key)
            if shared is None:
                continue
            f = found.setdefault(("tmpl", shared[1]), _Found("tmpl", shared[0], shared[1]))
            f.add(alert, t, members.get(account))


def _campaign(cid: str, c: Mapping[str, Any], common: Mapping[str, Any]) -> stix2.Campaign:
    return stix2.Campaign(
        id=cid, name=f"distillation campaign {cid.split('--')[1][:8]}",
        description=f"Coordinated accounts harvesting model outputs ({c['accounts']} "
                    "accounts observed).",
        objective="distillation of model outputs",
        first_seen=format_time(c["first"]), last_seen=format_time(c["last"]),
        confidence=int(round(100 * c["score"])),
        created=format_time(c["first"]), modified=format_time(c["last"]), **common)


def _indicator(kind: str, value: str, f: _Found, key_id: str, ext_id: str, valid_days: float,
               common: Mapping[str, Any]) -> list[Any]:
    """One shared key's indicator, and its relationship to each campaign it was seen in."""
    iid = stix_id("indicator", kind, key_id if kind != "ip" else "", value)
    facts: dict[str, Any] = {
        "extension_type": "property-extension", "kind": kind,
        "detectors": sorted(f.detectors),
        "accounts_observed": f.accounts, "alerts": len(f.alert_ids),
    }
    if f.reasons:  # STIX forbids empty lists
        facts["reasons"] = sorted(f.reasons)
    if kind != "ip":
        facts.update(key_id=key_id, hmac_sha256=value)
    else:
        facts["cidr"] = value
    name = {"pay": "payment fingerprint", "ua": "client fingerprint",
            "tmpl": "prompt-template fingerprint", "ip": "network"}[kind]
    objects: list[Any] = [stix2.Indicator(
        id=iid, name=f"distillation {name}",
        description=f"A {name} seen in a distillation campaign"
                    + (f" (HMAC-SHA256 under community key {key_id})." if kind != "ip"
                       else "."),
        pattern=f.pattern, pattern_type="stix", pattern_version="2.1",
        indicator_types=["malicious-activity"],
        valid_from=format_time(f.first),
        valid_until=format_time(f.last + valid_days * 86400.0),
        confidence=int(round(100 * f.score)),
        created=format_time(f.first), modified=format_time(f.last),
        extensions={ext_id: facts}, allow_custom=True, **common)]
    for cid in sorted(f.campaigns):
        objects.append(stix2.Relationship(
            id=stix_id("relationship", iid, cid), relationship_type="indicates",
            source_ref=iid, target_ref=cid,
            description="This indicator was seen in the campaign's accounts.",
            created=format_time(f.first), modified=format_time(f.last), **common))
    return objects


_IP_PATTERN = re.compile(
    r"^\[(ipv4-addr|ipv6-addr):value\s*(?:=|ISSUBSET)\s*'([^']+)'\]$")


def watchlist_records(objects: Iterable[Mapping[str, Any]],
                      now: float | None = None) -> list[dict[str, Any]]:
    """Watchlist entries (detectors/watchlist.py) from STIX objects: indicators
    with the ``x_distillwatch`` extension, and anyone's simple IP-network
    indicators. Revoked ones come back as ``{"id": ..., "revoked": True}``;
    expired ones are dropped."""
    objs = list(objects)
    tlp_by_id = dict(TLP_BY_ID)
    for o in objs:  # a sharer's own copies of the TLP 2.0 definitions
        if o.get("type") == "marking-definition":
            ext = (o.get("extensions") or {}).get(TLP_EXTENSION) or {}
            if ext.get("tlp_2_0") in TLP_IDS:
                tlp_by_id[str(o["id"])] = str(ext["tlp_2_0"])
    out: list[dict[str, Any]] = []
    for o in objs:
        if o.get("type") != "indicator":
            continue
        rid = str(o.get("id"))
        if o.get("revoked"):
            out.append({"id": rid, "revoked": True})
            continue
        until = o.get("valid_until")
        if until and now is not None and parse_ts(str(until)) < now:
            continue
        tlps = [tlp_by_id[m] for m in o.get("object_marking_refs") or [] if m in tlp_by_id]
        record: dict[str, Any] = {
            "id": rid, "confidence": int(o.get("confidence", 50)),
            "tlp": tlps[0] if tlps else "clear",
            "valid_from": o.get("valid_from"), "valid_until": until,
            "sharer": o.get("created_by_ref"),
        }
        facts = next((v for v in (o.get("extensions") or {}).values()
                      if isinstance(v, Mapping) and v.get("kind") in SHARED_KINDS), None)
        if facts is not None and facts.get("kind") != "ip":
            record.update(kind=facts["kind"], value=str(facts.get("hmac_sha256", "")),
                          key_id=str(facts.get("key_id", "")))
        else:
            m = _IP_PATTERN.match(str(o.get("pattern", "")).strip())
            if m is None:
                continue
            record.update(kind="ip", value=m.group(2))
        if record["value"]:
            out.append(record)
    return out


def now_utc() -> float:
    return datetime.now(UTC).timestamp()
