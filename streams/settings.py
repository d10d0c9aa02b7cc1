"""One frozen settings object, built once (from CLI flags, ``DISTILLWATCH_*``
environment variables and defaults, in that order) and passed down."""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from streams.errors import ConfigError, WebTokenMissing

ENV_PREFIX = "DISTILLWATCH_"
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
LOG_FORMATS = ("auto", "json", "console")
DLQ_PAYLOADS = ("original", "redacted")


class SecretStr:
    """A credential that never shows itself in repr, str, logs or tracebacks.

    >>> s = SecretStr("hunter2")
    >>> s, str(s), s.get_secret_value()
    (SecretStr('**********'), '**********', 'hunter2')
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "SecretStr('**********')"

    def __str__(self) -> str:
        return "**********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretStr) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True)
class Settings:
    """Everything the service can be told. Field names map to environment
    variables as ``DISTILLWATCH_<NAME>`` (upper case)."""

    #: ``kafka://host:port[,host:port]``; empty means "start the embedded broker".
    broker: str = ""
    embedded_broker: str = "noida"
    app_id: str = "distillwatch"
    events_topic: str = "api-requests"
    alerts_topic: str = "distillwatch-alerts"
    dlq_topic: str = "distillwatch-dlq"
    #: what a dead-letter record keeps of the rejected message: ``original``
    #: (its bytes, prompts included, so it can be fixed and re-published) or
    #: ``redacted`` (JSON with every free-text field replaced by its length and
    #: sha256; non-JSON bytes dropped). See docs/privacy.md
    dlq_payload: str = "original"
    #: ``retention.ms`` of the dead-letter topic when this service creates it
    #: (7 days; 0: the broker's default; an existing topic is left alone)
    dlq_retention_s: float = 604_800.0
    #: proposed response actions and every decision on them (append-only
    #: audit trail, key = subject; detectors/response.py, docs/response.md)
    actions_topic: str = "distillwatch-actions"
    #: propose actions from alerts (the ``[actions]`` policy of the detector TOML)
    actions_enabled: bool = True
    #: indicators shared by other providers (compacted, key = indicator id);
    #: the detectors count a match as evidence (detectors/watchlist.py)
    watchlist_topic: str = "distillwatch-watchlist"
    #: the worker re-reads the watchlist topic this often (wall-clock seconds)
    watchlist_refresh_s: float = 30.0
    #: the sharing community's HMAC key: payment and client fingerprints are
    #: exported, and matched, only as HMAC-SHA256(key, value). The same value
    #: at every member; never logged
    sharing_key: SecretStr = field(default_factory=lambda: SecretStr(""))
    #: names the key in exported indicators, so a rotation can be told apart
    sharing_key_id: str = "community-1"
    #: account summaries for coordinated (multi-account) detection, key = linkage
    #: key; empty means ``<app_id>-summaries``: an internal topic of this app, so
    #: two apps on one cluster never read each other's summaries (or disagree on
    #: its partition count, which the cluster table's changelog must match)
    summaries_topic: str = ""
    #: run the second, cluster stage (summaries topic, cluster agent and table)
    clusters_enabled: bool = True
    #: run the third, campaign stage (needs the cluster stage): account and
    #: cluster alerts go through the campaign topic (one partition; empty means
    #: ``<app_id>-campaigns``) to the campaign agent, which publishes one
    #: ``campaign`` incident per episode and one member record per account
    campaigns_enabled: bool = True
    campaign_topic: str = ""
    #: at most one update of a campaign per this much event time
    campaign_update_interval_s: float = 900.0
    #: a campaign (or account episode) firing again within this of going
    #: quiet re-opens the same episode; resolutions wait this long
    campaign_holddown_s: float = 1800.0
    #: wall-clock seconds without any input (alert or tick) after which the
    #: campaign agent lets out the account alerts it holds for a campaign
    #: that may name them. Ticks come only with events, so when traffic stops
    #: nothing else would; a cluster alert of the same event follows within
    #: ``summary_flush_interval_s`` plus two agent hops, far less than this.
    #: Replay does the same at the end of its input.
    campaign_release_quiet_s: float = 5.0
    #: event-time spacing of an account's summaries (plus one on first sight)
    summary_interval_s: float = 300.0
    #: the worker buffers summaries and sends them as one message per summaries
    #: partition (streams.service.summary_batch): at the latest this many wall-clock
    #: seconds after they were produced, sooner when ``summary_batch_max_pairs``
    #: (key, summary) pairs are buffered, and always before offsets are
    #: committed. Adds at most this much to a cluster alert's latency; in
    #: (0, 10]
    summary_flush_interval_s: float = 0.2
    summary_batch_max_pairs: int = 512
    partitions: int = 8
    replication_factor: int = 1
    #: where Faust keeps its local data (and the embedded broker its log)
    data_dir: str = "var"
    detector_config: str = ""
    max_message_bytes: int = 1_048_576
    max_batch_events: int = 10_000
    max_prompt_chars: int = 200_000
    #: per-stage timings on /metrics (``distillwatch_stage_seconds_total``):
    #: one message or event in this many is timed (streams.service.stages); 0 turns
    #: them off. 16 costs about 1.5% of replay's instructions (callgrind:
    #: +1.1k instructions per event, of about 80k)
    stage_timing_every: int = 16
    #: hot state is written to the changelog-backed table, and offsets are
    #: committed, every this many seconds (never per event: see README)
    checkpoint_interval_s: float = 5.0
    #: event-time spacing of idle sweeps (resolve quiet episodes, expire accounts)
    sweep_interval_s: float = 60.0
    session_timeout_s: float = 6.0
    heartbeat_interval_s: float = 1.0
    web_enabled: bool = True
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    #: bearer token of the web views (``Authorization: Bearer <token>``).
    #: Required when ``web_host`` is not loopback (the worker refuses to start
    #: without one); when set, every view but ``/health`` and ``/ready`` needs
    #: it, on loopback too. Action approvals on the web always need it.
    #: At least 16 characters; never logged
    web_token: SecretStr = field(default_factory=lambda: SecretStr(""))
    #: comma-separated host names (no port) a request's ``Host`` header may
    #: name; empty: loopback names plus ``web_host`` (when it is an address
    #: other than 0.0.0.0/::). Defeats DNS rebinding against the web views
    web_allowed_hosts: str = ""
    log_format: str = "auto"
    log_level: str = "INFO"
    shutdown_timeout_s: float = 8.0
    #: a commit waits at most this long for the worker's unsent messages
    #: (checkpointed state, alerts, summaries) to leave; then it is skipped
    flush_timeout_s: float = 30.0
    #: a partition whose committed offset stays put this long while the worker
    #: reads past it is reported (``commit_stalled``, a gauge on /metrics)
    commit_stall_s: float = 60.0
    #: ``retention.ms`` of the events and summaries topics when this service
    #: creates them (0: the broker's default; existing topics are left alone).
    #: ``distillwatch run`` uses 300 s: the embedded broker rewrites all it
    #: holds up to once a second, so its CPU grows with what it keeps
    topic_retention_s: float = 0.0
    #: ``segment.ms`` of every topic this service creates (0: the broker's
    #: default, 7 days on Kafka). Retention and compaction only drop closed
    #: segments: on the embedded broker, under steady writes, nothing was ever
    #: dropped without it. ``distillwatch run`` uses 30 s
    topic_segment_s: float = 0.0
    #: a fetch that brings no records waits out the rest of this interval
    #: before the next (streams.kafka.fetch_pacing): a broker that answers empty
    #: fetches at once, as the embedded one does, must not make the consumer
    #: spin; never waits on a broker that long-polls; 0 turns it off; in [0, 1]
    empty_fetch_interval_s: float = 0.01
    #: group liveness (streams.service.liveness): a member of the worker's consumer
    #: group whose heartbeats (written every ``liveness_interval_s`` to the
    #: compacted topic ``<app_id>-liveness``) have not arrived for this long is
    #: removed from the group, so its partitions go to the living. The embedded
    #: broker never expires a dead member; on Kafka the session timeout (6 s)
    #: acts first. 0 turns it off
    liveness_timeout_s: float = 12.0
    liveness_interval_s: float = 2.0
    #: dead-letter alarm (streams.service.dlq_alarm): when more than this share of the
    #: last ``dlq_alarm_window`` events was dead-lettered, the worker emits a
    #: ``pipeline`` alert and /ready says not ready; it resolves at half the
    #: share. 0 turns it off
    dlq_alarm_share: float = 0.05
    dlq_alarm_window: int = 1000
    # real clusters
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "PLAIN"
    sasl_username: str = ""
    sasl_password: SecretStr = field(default_factory=lambda: SecretStr(""))
    ssl_cafile: str = ""
    ssl_certfile: str = ""
    ssl_keyfile: str = ""

    def __post_init__(self) -> None:
        if not self.summaries_topic:
            object.__setattr__(self, "summaries_topic", f"{self.app_id}-summaries")
        if not self.campaign_topic:
            object.__setattr__(self, "campaign_topic", f"{self.app_id}-campaigns")
        for name in ("campaign_update_interval_s", "campaign_holddown_s"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not self.campaign_release_quiet_s > self.summary_flush_interval_s:
            raise ConfigError(
                "campaign_release_quiet_s must be > summary_flush_interval_s "
                f"({self.summary_flush_interval_s!r}), got {self.campaign_release_quiet_s!r}: "
                "held account alerts would come out before the cluster alert that may fold them")
        if self.broker and not self.broker.startswith("kafka://"):
            raise ConfigError(f"broker must look like kafka://host:port, got {self.broker!r}")
        if self.partitions < 1:
            raise ConfigError(f"partitions must be >= 1, got {self.partitions}")
        if self.security_protocol not in SECURITY_PROTOCOLS:
            raise ConfigError(
                f"security_protocol must be one of {SECURITY_PROTOCOLS}, "
                f"got {self.security_protocol!r}"
            )
        if self.sasl_mechanism not in SASL_MECHANISMS:
            raise ConfigError(
                f"sasl_mechanism must be one of {SASL_MECHANISMS}, got {self.sasl_mechanism!r}"
            )
        if self.security_protocol.startswith("SASL") and not self.sasl_username:
            raise ConfigError(f"security_protocol={self.security_protocol} needs sasl_username")
        if self.dlq_payload not in DLQ_PAYLOADS:
            raise ConfigError(
                f"dlq_payload must be one of {DLQ_PAYLOADS}, got {self.dlq_payload!r}"
            )
        if self.log_format not in LOG_FORMATS:
            raise ConfigError(f"log_format must be one of {LOG_FORMATS}, got {self.log_format!r}")
        for name in ("checkpoint_interval_s", "sweep_interval_s", "summary_interval_s",
                     "commit_stall_s",
                     "session_timeout_s",
                     "heartbeat_interval_s", "shutdown_timeout_s", "flush_timeout_s",
                     "watchlist_refresh_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("topic_retention_s", "topic_segment_s", "dlq_retention_s"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not 0 <= self.empty_fetch_interval_s <= 1:
            raise ConfigError(
                f"empty_fetch_interval_s must be in [0, 1], got {self.empty_fetch_interval_s!r}"
            )
        if self.liveness_timeout_s < 0 or not self.liveness_interval_s > 0:
            raise ConfigError("liveness_timeout_s must be >= 0 and liveness_interval_s > 0")
        if 0 < self.liveness_timeout_s < 3 * self.liveness_interval_s:
            raise ConfigError(
                f"liveness_timeout_s ({self.liveness_timeout_s}) must be at least 3 x "
                f"liveness_interval_s ({self.liveness_interval_s}), or 0 (off)")
        if not 0 <= self.dlq_alarm_share < 1:
            raise ConfigError(f"dlq_alarm_share must be in [0, 1), got {self.dlq_alarm_share!r}")
        if self.dlq_alarm_window < 10:
            raise ConfigError(f"dlq_alarm_window must be >= 10, got {self.dlq_alarm_window!r}")
        flush_s = self.summary_flush_interval_s
        if not 0 < flush_s <= 10:
            raise ConfigError(f"summary_flush_interval_s must be in (0, 10], got {flush_s!r}")
        for name in ("max_message_bytes", "max_batch_events", "max_prompt_chars",
                     "summary_batch_max_pairs"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.stage_timing_every < 0:
            raise ConfigError(
                f"stage_timing_every must be >= 0, got {self.stage_timing_every!r}"
            )
        if not 0 < self.web_port < 65536:
            raise ConfigError(f"web_port must be in 1..65535, got {self.web_port}")
        token = self.web_token.get_secret_value()
        if self.web_enabled and not is_loopback(self.web_host) and not token:
            raise WebTokenMissing(
                f"web_host={self.web_host!r} is beyond loopback and no web token is set: "
                "set DISTILLWATCH_WEB_TOKEN (e.g. `openssl rand -hex 32`), or bind "
                "DISTILLWATCH_WEB_HOST=127.0.0.1, or turn the views off "
                "(DISTILLWATCH_WEB_ENABLED=false)"
            )
        if token and (len(token) < 16 or token != token.strip()):
            raise ConfigError("web_token must be at least 16 characters, without surrounding "
                              "whitespace (generate one with `openssl rand -hex 32`)")

    @classmethod
    def load(
        cls, overrides: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
    ) -> Settings:
        """Defaults, then ``DISTILLWATCH_*`` variables, then explicit overrides."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        types = {f.name: f for f in fields(cls)}
        for name, f in types.items():
            raw = env.get(ENV_PREFIX + name.upper())
            if raw is not None:
                values[name] = _coerce(name, f.default if f.default is not f.default_factory
                                       else None, raw, f.type)
        for name, value in (overrides or {}).items():
            if name not in types:
                raise ConfigError(f"unknown setting {name!r}")
            if value is not None:
                secret = name in ("sasl_password", "web_token", "sharing_key")
                values[name] = SecretStr(value) if secret and isinstance(value, str) else value
        return cls(**values)

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @property
    def allowed_hosts(self) -> frozenset[str]:
        """Host names (lower case, no port) the web views answer to: the
        loopback names always (a rebinding page cannot send them), plus
        ``web_allowed_hosts``, or ``web_host`` when that is unset."""
        hosts = {"localhost", "127.0.0.1", "::1"}
        if self.web_allowed_hosts.strip():
            hosts.update(h.strip().lower().strip("[]")
                         for h in self.web_allowed_hosts.split(",") if h.strip())
        elif self.web_host not in ("0.0.0.0", "::", ""):
            hosts.add(self.web_host.lower().strip("[]"))
        return frozenset(hosts)

    @property
    def bootstrap_servers(self) -> list[str]:
        return self.broker.removeprefix("kafka://").split(",") if self.broker else []

    def detector_mapping(self) -> dict[str, Any]:
        """The detector TOML as a mapping (the packaged defaults when unset)."""
        if not self.detector_config:
            return {}
        path = Path(self.detector_config)
        try:
            with path.open("rb") as fh:
                return tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"detector_config: no such file {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"detector_config: {path} is not valid TOML: {exc}") from None

    def redacted(self) -> dict[str, Any]:
        """Settings as a dict safe to log (secrets masked)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = str(value) if isinstance(value, SecretStr) else value
        return out


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the web views on this machine.

    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("::1")
    (True, True, True)
    >>> is_loopback("0.0.0.0"), is_loopback("10.0.0.5"), is_loopback("worker")
    (False, False, False)
    """
    text = host.strip().strip("[]").lower()
    if text == "localhost":
        return True
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def _coerce(name: str, default: Any, raw: str, annotation: Any) -> Any:
    kind = str(annotation)
    try:
        if kind == "bool":
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true/false")
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "SecretStr":
            return SecretStr(raw)
    except ValueError as exc:
        raise ConfigError(f"{ENV_PREFIX}{name.upper()}={raw!r}: {exc}") from None
    return raw
