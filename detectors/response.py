"""From alert to response action: the policy, the action records, the ledger.

Pure logic shared by the live worker and replay (no Kafka, no clock: every
time is an input). The contract on ``distillwatch-actions`` (one JSON object
per message, key = ``subject``; ``schemas/action.schema.json``) is a
CloudEvents-like envelope ``{specversion, id, source, type, subject, time,
data}`` of three types:

- ``distillwatch.action.proposed``: an action the policy proposes for a firing
  alert (``data.action`` one of :data:`ACTION_TYPES`), or a proposal to lift
  the actions an alert caused once it resolved (``data.action == "lift"``);
- ``distillwatch.action.decided``: an approval or rejection, by a human
  (``distillwatch actions approve|reject``, the web view) or by the policy
  (``auto``), with who, when and why: the audit trail.

Ids are deterministic: a proposal's id hashes the rule, the action, the
subject and the alert id, so a re-processed alert after a crash proposes the
same id again and consumers drop the duplicate. An action's duration counts
from its approval (``effective_until`` on the decision).

>>> policy = ResponsePolicy.from_mapping({})
>>> alert = {"alert_id": "a" * 32, "dedup_key": "account:acct-1", "status": "firing",
...          "detector": "account", "severity": "critical", "score": 0.97,
...          "ts": "2026-02-23T10:00:00Z", "episode_start": "2026-02-23T09:59:00Z",
...          "summary": "...", "details": {"reasons": ["template"]}, "account_id": "acct-1"}
>>> [(r["type"], r["data"]["action"], r["subject"]) for r in policy.propose(alert)]
[('distillwatch.action.proposed', 'throttle', 'account:acct-1')]
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import orjson

ACTION_TYPES: Final = (
    "require_verification",
    "throttle",
    "degrade_reasoning",
    "suspend_key",
    "block_payment_fingerprint",
)
#: reversible and expiring: the only types ``auto`` may apply unless the
#: policy says ``allow_irreversible_auto = true``
REVERSIBLE: Final = frozenset({"require_verification", "throttle", "degrade_reasoning"})
SCOPES: Final = ("account", "cluster_members", "linkage_key")
SEVERITY_RANK: Final = {"info": 0, "warning": 1, "error": 2, "critical": 3}
PROPOSED: Final = "distillwatch.action.proposed"
DECIDED: Final = "distillwatch.action.decided"
LIFT: Final = "lift"
MAX_DURATION_S: Final = 90 * 86400.0
_RULE_KEYS: Final = frozenset({"name", "detector", "min_severity", "min_score", "reasons_any",
                               "key_kinds", "action", "scope", "params", "duration_s"})
_POLICY_KEYS: Final = frozenset({"source", "auto", "allow_irreversible_auto", "rules",
                                 "replace_default_rules"})


class InvalidPolicy(ValueError):
    """The ``[actions]`` table of the detector TOML is invalid; the message
    names the rule and key. Fix the TOML (docs/response.md has the format)."""


def _id(*parts: str) -> str:
    return hashlib.blake2b("|".join(parts).encode("utf-8", "surrogatepass"),
                           digest_size=16).hexdigest()


def parse_ts(text: str) -> float:
    """RFC 3339 (``Z`` or offset) to epoch seconds.

    >>> parse_ts("2026-02-23T10:00:00Z"), parse_ts("2026-02-23T10:00:00.500+00:00")
    (1771840800.0, 1771840800.5)
    """
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def format_time(t: float) -> str:
    """Epoch seconds to RFC 3339 UTC with milliseconds.

    >>> format_time(1771840800.25)
    '2026-02-23T10:00:00.250Z'
    """
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Rule:
    """One mapping from alerts to an action. Invalid parameters fail here.

    ``detector``: detector names the rule applies to (``"*"``: any; a new
    detector such as ``campaign`` needs no code, only its name here).
    ``reasons_any``: the alert's ``details.reasons`` must hold one of these
    (empty: any). ``key_kinds``: for alerts about a linkage key
    (``details.cluster_key`` = ``<kind>:<value>``), the kinds it applies to.
    """

    def __init__(
        self,
        name: str,
        action: str,
        scope: str = "account",
        detector: Sequence[str] = ("*",),
        min_severity: str = "warning",
        min_score: float = 0.0,
        reasons_any: Sequence[str] = (),
        key_kinds: Sequence[str] = (),
        params: Mapping[str, Any] | None = None,
        duration_s: float = 86400.0,
    ) -> None:
        where = f"actions rule {name!r}"
        if not name or not isinstance(name, str):
            raise InvalidPolicy("every actions rule needs a name")
        if action not in ACTION_TYPES:
            raise InvalidPolicy(f"{where}: action must be one of {ACTION_TYPES}, got {action!r}")
        if scope not in SCOPES:
            raise InvalidPolicy(f"{where}: scope must be one of {SCOPES}, got {scope!r}")
        if min_severity not in SEVERITY_RANK:
            raise InvalidPolicy(f"{where}: min_severity must be one of {tuple(SEVERITY_RANK)}")
        if not 0.0 <= float(min_score) <= 1.0:
            raise InvalidPolicy(f"{where}: min_score must be in [0, 1]")
        if not 0.0 < float(duration_s) <= MAX_DURATION_S:
            raise InvalidPolicy(f"{where}: duration_s must be in (0, {MAX_DURATION_S:.0f}]: "
                                "every action expires")
        if action == "block_payment_fingerprint" and (
                scope != "linkage_key" or list(key_kinds) != ["pay"]):
            raise InvalidPolicy(f"{where}: block_payment_fingerprint needs scope = "
                                "\"linkage_key\" and key_kinds = [\"pay\"]")
        if scope == "linkage_key" and not key_kinds:
            raise InvalidPolicy(f"{where}: scope linkage_key needs key_kinds (e.g. [\"pay\"])")
        p = dict(params or {})
        if action == "throttle":
            rate = p.get("rate_per_min")
            if not isinstance(rate, int | float) or rate <= 0:
                raise InvalidPolicy(f"{where}: throttle needs params.rate_per_min > 0")
            burst = p.setdefault("burst", max(1, int(rate)))
            if not isinstance(burst, int | float) or burst < 1:
                raise InvalidPolicy(f"{where}: params.burst must be >= 1")
        for k, v in p.items():
            if not isinstance(v, str | int | float | bool):
                raise InvalidPolicy(f"{where}: params.{k} must be a string, number or bool")
        self.name = name
        self.action = action
        self.scope = scope
        self.detector = tuple(str(d) for d in ([detector] if isinstance(detector, str)
                                               else detector))
        self.min_severity = min_severity
        self.min_score = float(min_score)
        self.reasons_any = tuple(str(r) for r in reasons_any)
        self.key_kinds = tuple(str(k) for k in key_kinds)
        self.params = p
        self.duration_s = float(duration_s)

    def to_mapping(self) -> dict[str, Any]:
        return {"name": self.name, "action": self.action, "scope": self.scope,
                "detector": list(self.detector), "min_severity": self.min_severity,
                "min_score": self.min_score, "reasons_any": list(self.reasons_any),
                "key_kinds": list(self.key_kinds), "params": dict(self.params),
                "duration_s": self.duration_s}

    def matches(self, alert: Mapping[str, Any]) -> bool:
        detector = str(alert.get("detector", ""))
        if "*" not in self.detector and detector not in self.detector:
            return False
        if SEVERITY_RANK.get(str(alert.get("severity")), -1) < SEVERITY_RANK[self.min_severity]:
            return False
        if float(alert.get("score", 0.0)) < self.min_score:
            return False
        details = alert.get("details")
        details = details if isinstance(details, Mapping) else {}
        if self.reasons_any:
            reasons = details.get("reasons")
            if not isinstance(reasons, list) or not set(map(str, reasons)) & set(
                    self.reasons_any):
                return False
        if self.key_kinds and not _key_kinds(details) & set(self.key_kinds):
            return False
        return True


def _linkage_keys(details: Mapping[str, Any]) -> list[str]:
    """The linkage keys an alert names: a cluster record's ``cluster_key``, or
    a campaign record's ``cluster_keys`` (the clusters folded into it)."""
    key = details.get("cluster_key")
    if isinstance(key, str) and ":" in key:
        return [key]
    keys = details.get("cluster_keys")
    if isinstance(keys, list):
        return sorted({k for k in keys if isinstance(k, str) and ":" in k})
    return []


def _key_kinds(details: Mapping[str, Any]) -> set[str]:
    kind = details.get("key_kind")
    if isinstance(kind, str):
        return {kind}
    return {k.split(":", 1)[0] for k in _linkage_keys(details)}


#: the built-in policy (used unless ``replace_default_rules = true``); every
#: type proposes, nothing is automatic unless ``[actions] auto`` says so
DEFAULT_RULES: Final = (
    {"name": "throttle-account", "detector": ["account"], "min_severity": "error",
     "action": "throttle", "scope": "account",
     "params": {"rate_per_min": 6, "burst": 3}, "duration_s": 86400.0},
    {"name": "degrade-elicitation", "detector": ["account"], "min_severity": "error",
     "reasons_any": ["elicitation"], "action": "degrade_reasoning", "scope": "account",
     "duration_s": 86400.0},
    {"name": "verify-cluster", "detector": ["cluster", "campaign"], "min_severity": "error",
     "action": "require_verification", "scope": "cluster_members", "duration_s": 259200.0},
    {"name": "throttle-cluster", "detector": ["cluster", "campaign"], "min_severity": "error",
     "action": "throttle", "scope": "cluster_members",
     "params": {"rate_per_min": 6, "burst": 3}, "duration_s": 86400.0},
    {"name": "block-shared-card", "detector": ["cluster", "campaign"],
     "min_severity": "critical", "key_kinds": ["pay"], "action": "block_payment_fingerprint",
     "scope": "linkage_key", "duration_s": 604800.0},
)


class ResponsePolicy:
    """The ``[actions]`` table: rules, which types apply without approval.

    >>> ResponsePolicy.from_mapping({"auto": ["suspend_key"]})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    detectors.response.InvalidPolicy: ...not reversible...
    """

    def __init__(self, rules: Sequence[Rule], auto: Iterable[str] = (),
                 allow_irreversible_auto: bool = False, source: str = "distillwatch") -> None:
        names = [r.name for r in rules]
        if len(set(names)) != len(names):
            raise InvalidPolicy(f"actions rule names must be unique, got {names}")
        auto_set = frozenset(auto)
        for a in auto_set:
            if a not in ACTION_TYPES and a != LIFT:
                raise InvalidPolicy(f"actions.auto: unknown action type {a!r}; "
                                    f"allowed: {(*ACTION_TYPES, LIFT)}")
            if a not in REVERSIBLE and a != LIFT and not allow_irreversible_auto:
                raise InvalidPolicy(
                    f"actions.auto: {a!r} is not reversible; only {sorted(REVERSIBLE)} may "
                    "apply without a human unless allow_irreversible_auto = true")
        self.rules = tuple(rules)
        self.auto = auto_set
        self.allow_irreversible_auto = allow_irreversible_auto
        self.source = source
        canon = orjson.dumps({"rules": [r.to_mapping() for r in self.rules],
                              "auto": sorted(self.auto)}, option=orjson.OPT_SORT_KEYS)
        self.version = hashlib.blake2b(canon, digest_size=6).hexdigest()

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any] | None) -> ResponsePolicy:
        table = dict(table or {})
        unknown = set(table) - _POLICY_KEYS
        if unknown:
            raise InvalidPolicy(f"unknown key(s) in [actions]: {sorted(unknown)}; "
                                f"allowed: {sorted(_POLICY_KEYS)}")
        raw_rules = list(table.get("rules", []))
        if not table.get("replace_default_rules", False):
            own = {r.get("name") for r in raw_rules if isinstance(r, Mapping)}
            raw_rules = [dict(r) for r in DEFAULT_RULES if r["name"] not in own] + raw_rules
        rules = []
        for raw in raw_rules:
            if not isinstance(raw, Mapping):
                raise InvalidPolicy("every [[actions.rules]] entry must be a table")
            bad = set(raw) - _RULE_KEYS
            if bad:
                raise InvalidPolicy(f"actions rule {raw.get('name')!r}: unknown key(s) "
                                    f"{sorted(bad)}; allowed: {sorted(_RULE_KEYS)}")
            rules.append(Rule(**dict(raw)))
        auto = table.get("auto", [])
        if isinstance(auto, Mapping):  # [actions.auto] throttle = true
            auto = [k for k, v in auto.items() if v]
        return cls(rules, auto, bool(table.get("allow_irreversible_auto", False)),
                   str(table.get("source", "distillwatch")))

    # ----------------------------------------------------------- proposing
    def propose(self, alert: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The action records an alert record calls for (proposals, then the
        automatic decisions), in a deterministic order."""
        status = alert.get("status")
        alert_id = str(alert.get("alert_id", ""))
        if not alert_id:
            return []
        t = parse_ts(str(alert.get("ts")))
        if status == "resolved":
            return self._lift(alert, alert_id, t)
        if status != "firing":
            return []
        out: list[dict[str, Any]] = []
        for rule in self.rules:
            if not rule.matches(alert):
                continue
            for subject, scope in _targets(rule, alert):
                self._propose(rule, alert, alert_id, t, subject, scope, out)
        return out

    def _propose(self, rule: Rule, alert: Mapping[str, Any], alert_id: str, t: float,
                 subject: str, scope: dict[str, Any], out: list[dict[str, Any]]) -> None:
        """One proposal (and its automatic decision when the policy says so)."""
        action_id = _id(rule.name, rule.action, subject, alert_id)
        proposal = self._envelope(action_id, PROPOSED, subject, t, {
            "action_id": action_id,
            "action": rule.action,
            "mode": "auto" if rule.action in self.auto else "propose",
            "scope": scope,
            "params": dict(rule.params),
            "duration_s": rule.duration_s,
            "expires_at": format_time(t + rule.duration_s),
            "rule": rule.name,
            "reversible": rule.action in REVERSIBLE,
            "confidence": round(float(alert.get("score", 0.0)), 4),
            "evidence": [_evidence(alert)],
            "policy_version": self.version,
        })
        out.append(proposal)
        if rule.action in self.auto:
            out.append(decide(proposal, "approved", "auto", "policy",
                              f"auto by policy {self.version} rule {rule.name}", t))

    def _lift(self, alert: Mapping[str, Any], alert_id: str, t: float) -> list[dict[str, Any]]:
        detector = str(alert.get("detector", ""))
        if not any("*" in r.detector or detector in r.detector for r in self.rules):
            return []
        dedup = str(alert.get("dedup_key", ""))
        start = str(int(round(parse_ts(str(alert.get("episode_start"))) * 1000)))
        # the firing alert of the same episode: the actions it caused are
        # lifted. A campaign that continued an account's page (details.adopted)
        # resolves that incident: its own first record (revision 1, the page
        # was revision 0) caused actions too, lifted as well
        revoked = [_id(dedup, start, "firing")]
        details = alert.get("details")
        if isinstance(details, Mapping) and isinstance(details.get("adopted"), Mapping):
            revoked.append(_id(dedup, start, "firing", "r1"))
        subject = f"alert:{dedup}"
        out: list[dict[str, Any]] = []
        for n, revokes in enumerate(revoked):
            action_id = _id("lift", subject, alert_id, *([revokes] if n else []))
            proposal = self._envelope(action_id, PROPOSED, subject, t, {
                "action_id": action_id,
                "action": LIFT,
                "mode": "auto" if LIFT in self.auto else "propose",
                "scope": {"kind": "alert", "id": dedup},
                "params": {},
                "revokes_alert_id": revokes,
                "rule": "lift-on-resolve",
                "reversible": True,
                "confidence": 1.0,
                "evidence": [_evidence(alert)],
                "policy_version": self.version,
            })
            out.append(proposal)
            if LIFT in self.auto:
                out.append(decide(proposal, "approved", "auto", "policy",
                                  f"auto by policy {self.version}: the alert resolved", t))
        return out

    def _envelope(self, rid: str, kind: str, subject: str, t: float,
                  data: dict[str, Any]) -> dict[str, Any]:
        return {"specversion": "1.0", "id": rid, "source": self.source, "type": kind,
                "subject": subject, "time": format_time(t), "data": data}


def _targets(rule: Rule, alert: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Whom a matching rule acts on: the account, the members, or each linkage
    key of the rule's kinds (a campaign record names several: one proposal each)."""
    details = alert.get("details")
    details = details if isinstance(details, Mapping) else {}
    if rule.scope == "account":
        account = alert.get("account_id")
        if not isinstance(account, str) or not account:
            return []
        return [(f"account:{account}", {"kind": "account", "id": account,
                                        "accounts": [account]})]
    if rule.scope == "cluster_members":
        members = alert.get("accounts")
        if not isinstance(members, list) or not members:
            return []
        key = str(details.get("cluster_key") or alert.get("dedup_key"))
        return [(f"members:{key}", {"kind": "cluster_members", "id": key,
                                    "accounts": [str(m) for m in members],
                                    "account_count": int(alert.get("account_count") or
                                                         len(members))})]
    return [(f"key:{k}", {"kind": "linkage_key", "id": k, "accounts": []})
            for k in _linkage_keys(details)
            if not rule.key_kinds or k.split(":", 1)[0] in rule.key_kinds]


def _evidence(alert: Mapping[str, Any]) -> dict[str, Any]:
    details = alert.get("details")
    details = details if isinstance(details, Mapping) else {}
    reasons = details.get("reasons")
    return {"alert_id": alert.get("alert_id"), "dedup_key": alert.get("dedup_key"),
            "detector": alert.get("detector"), "severity": alert.get("severity"),
            "score": alert.get("score"), "ts": alert.get("ts"),
            "reasons": [str(r) for r in reasons] if isinstance(reasons, list) else []}


def decide(proposal: Mapping[str, Any], decision: str, kind: str, principal: str,
           reason: str, now: float) -> dict[str, Any]:
    """The audit record of a decision on ``proposal`` (who, when, why).

    ``kind`` is ``human`` or ``auto``; an approved action is in force from
    ``now`` for its ``duration_s``. An automatic decision's id is
    deterministic (one per proposal); a human's includes the time.
    """
    if decision not in ("approved", "rejected"):
        raise ValueError(f"decision must be approved or rejected, got {decision!r}")
    if kind not in ("human", "auto"):
        raise ValueError(f"kind must be human or auto, got {kind!r}")
    if not reason.strip():
        raise ValueError("a decision needs a reason")
    data = proposal["data"]
    action_id = str(data["action_id"])
    rid = (_id(action_id, "auto", decision) if kind == "auto"
           else _id(action_id, decision, principal, format_time(now)))
    record: dict[str, Any] = {
        "specversion": "1.0", "id": rid, "source": proposal.get("source", "distillwatch"),
        "type": DECIDED, "subject": proposal["subject"], "time": format_time(now),
        "data": {"action_id": action_id, "action": data["action"], "decision": decision,
                 "decided_by": {"kind": kind, "principal": principal},
                 "reason": reason[:500], "decided_at": format_time(now)},
    }
    if decision == "approved" and "duration_s" in data:
        record["data"]["effective_until"] = format_time(now + float(data["duration_s"]))
    return record


class ActionLedger:
    """The state of every action, folded from the actions topic in order.

    Idempotent: a repeated record (same ``id``) changes nothing. The first
    decision on an action stands; later ones are kept in its history only.
    """

    def __init__(self) -> None:
        self.proposals: dict[str, dict[str, Any]] = {}
        self.decisions: dict[str, dict[str, Any]] = {}
        self.history: dict[str, list[dict[str, Any]]] = {}
        self.lifted: dict[str, str] = {}  # action id -> id of the lift that ended it
        self._seen: set[str] = set()
        self._by_alert: dict[str, list[str]] = {}

    def apply(self, record: Mapping[str, Any]) -> None:
        rid = str(record.get("id", ""))
        if not rid or rid in self._seen:
            return
        self._seen.add(rid)
        data = record.get("data")
        if not isinstance(data, Mapping):
            return
        action_id = str(data.get("action_id", ""))
        if record.get("type") == PROPOSED:
            if action_id in self.proposals:
                return
            self.proposals[action_id] = dict(record)
            for ev in data.get("evidence", []):
                if isinstance(ev, Mapping) and data.get("action") != LIFT:
                    self._by_alert.setdefault(str(ev.get("alert_id")), []).append(action_id)
        elif record.get("type") == DECIDED:
            self.history.setdefault(action_id, []).append(dict(record))
            if action_id in self.decisions:
                return
            self.decisions[action_id] = dict(record)
            proposal = self.proposals.get(action_id)
            if (data.get("decision") == "approved" and proposal is not None
                    and proposal["data"].get("action") == LIFT):
                target = str(proposal["data"].get("revokes_alert_id"))
                for revoked in self._by_alert.get(target, []):
                    self.lifted.setdefault(revoked, action_id)

    def status(self, action_id: str) -> str:
        if action_id not in self.proposals:
            return "unknown"
        if action_id in self.lifted:
            return "lifted"
        decision = self.decisions.get(action_id)
        if decision is None:
            return "pending"
        return str(decision["data"]["decision"])

    def pending(self) -> list[dict[str, Any]]:
        return [p for a, p in self.proposals.items() if self.status(a) == "pending"]

    def active(self, now: float) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """(proposal, approval) of every approved action in force at ``now``
        (not lifted, not past ``effective_until``), lifts excluded."""
        out = []
        for action_id, proposal in self.proposals.items():
            if proposal["data"].get("action") == LIFT or self.status(action_id) != "approved":
                continue
            approval = self.decisions[action_id]
            until = approval["data"].get("effective_until")
            if until is not None and parse_ts(str(until)) <= now:
                continue
            out.append((proposal, approval))
        return out
