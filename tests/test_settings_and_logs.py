"""Settings from environment, validation messages, secrets, logging setup."""

from __future__ import annotations

import io
import logging

import orjson
import pytest

from streams.errors import ConfigError
from streams.logs import configure_logging, get_logger
from streams.service.app import faust_config, faust_credentials
from streams.service.topics import kafka_python_security
from streams.settings import SecretStr, Settings


def test_env_overrides_and_types():
    s = Settings.load(env={
        "DISTILLWATCH_BROKER": "kafka://k1:9092,k2:9092",
        "DISTILLWATCH_PARTITIONS": "12",
        "DISTILLWATCH_WEB_ENABLED": "no",
        "DISTILLWATCH_CHECKPOINT_INTERVAL_S": "2.5",
    })
    assert s.bootstrap_servers == ["k1:9092", "k2:9092"]
    assert s.partitions == 12 and s.web_enabled is False and s.checkpoint_interval_s == 2.5
    # explicit overrides win over the environment
    assert Settings.load({"partitions": 3}, env={"DISTILLWATCH_PARTITIONS": "12"}).partitions == 3


@pytest.mark.parametrize(
    "env, fragment",
    [
        ({"DISTILLWATCH_BROKER": "localhost:9092"}, "kafka://"),
        ({"DISTILLWATCH_PARTITIONS": "zero"}, "DISTILLWATCH_PARTITIONS"),
        ({"DISTILLWATCH_PARTITIONS": "0"}, "partitions must be"),
        ({"DISTILLWATCH_SECURITY_PROTOCOL": "TLS"}, "SASL_SSL"),
        ({"DISTILLWATCH_SECURITY_PROTOCOL": "SASL_SSL"}, "sasl_username"),
        ({"DISTILLWATCH_SASL_MECHANISM": "GSSAPI"}, "SCRAM-SHA-512"),
        ({"DISTILLWATCH_WEB_ENABLED": "maybe"}, "true/false"),
        ({"DISTILLWATCH_LOG_FORMAT": "xml"}, "console"),
    ],
)
def test_invalid_settings_name_the_allowed_values(env, fragment):
    with pytest.raises(ConfigError, match=fragment):
        Settings.load(env=env)


def test_unknown_override_rejected():
    with pytest.raises(ConfigError, match="unknown setting"):
        Settings.load({"brokr": "x"}, env={})


def test_sasl_ssl_settings_reach_both_clients_and_never_print():
    s = Settings.load(env={
        "DISTILLWATCH_BROKER": "kafka://k:9093",
        "DISTILLWATCH_SECURITY_PROTOCOL": "SASL_SSL",
        "DISTILLWATCH_SASL_MECHANISM": "SCRAM-SHA-512",
        "DISTILLWATCH_SASL_USERNAME": "svc-distillwatch",
        "DISTILLWATCH_SASL_PASSWORD": "s3cret-pw",
    })
    assert isinstance(s.sasl_password, SecretStr)
    assert "s3cret-pw" not in repr(s) and "s3cret-pw" not in str(s.redacted())
    kp = kafka_python_security(s)
    assert kp["security_protocol"] == "SASL_SSL" and kp["sasl_plain_password"] == "s3cret-pw"
    creds = faust_credentials(s)
    assert creds.username == "svc-distillwatch" and creds.mechanism.value == "SCRAM-SHA-512"
    assert creds.ssl_context is not None
    conf = faust_config(s)
    assert conf["broker"] == "kafka://k:9093" and conf["web_bind"] == "127.0.0.1"


def test_web_binds_to_loopback_by_default():
    assert Settings.load(env={}).web_host == "127.0.0.1"


def test_json_logs_redact_forbidden_keys():
    buf = io.StringIO()
    configure_logging("json", "INFO", stream=buf)
    try:
        get_logger("t").info("event_rejected", reason="x", prompt="SECRET PROMPT",
                             sasl_password="pw")
        logging.getLogger("faust.something").warning("stdlib %s", "works")
        lines = [orjson.loads(line) for line in buf.getvalue().splitlines()]
        assert lines[0]["event"] == "event_rejected" and lines[0]["prompt"] == "[redacted]"
        assert lines[0]["sasl_password"] == "[redacted]"
        assert "SECRET PROMPT" not in buf.getvalue()
        assert lines[1]["event"] == "stdlib works" and lines[1]["level"] == "warning"
    finally:
        configure_logging("console", "WARNING")
