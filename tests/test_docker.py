"""docker/: there is no Docker engine on dev/CI machines, so the compose file
is validated against the Compose Specification's JSON schema (taken from the
docker-compose 1.29.2 package on PyPI), and its service commands are checked
against the CLI; the Dockerfile is checked for its contract."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import pytest
import yaml

from streams.cli import build_parser
from streams.service.topics import changelog_topic, cluster_changelog_topic, liveness_topic
from streams.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker" / "compose.yaml"
DOCKERFILE = ROOT / "docker" / "Dockerfile"
CACHE = ROOT / ".venv" / "cache"


def compose_spec_schema() -> dict:
    """The Compose Specification schema shipped inside docker-compose 1.29.2's wheel."""
    CACHE.mkdir(parents=True, exist_ok=True)
    wheels = list(CACHE.glob("docker_compose-1.29.2-*.whl"))
    if not wheels:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "docker-compose==1.29.2", "-d", str(CACHE)],
            check=True, timeout=120,
        )
        wheels = list(CACHE.glob("docker_compose-1.29.2-*.whl"))
    with zipfile.ZipFile(wheels[0]) as zf:
        return json.loads(zf.read("compose/config/compose_spec.json"))


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_file_matches_the_compose_specification(compose):
    schema = compose_spec_schema()
    # the spec's schema predates the top-level "name" element (added in 2021/2022)
    doc = {k: v for k, v in compose.items() if k != "name"}
    jsonschema.Draft201909Validator(schema).validate(doc)


def test_kafka_runs_in_kraft_mode_single_node(compose):
    env = compose["services"]["kafka"]["environment"]
    assert "controller" in env["KAFKA_PROCESS_ROLES"] and "broker" in env["KAFKA_PROCESS_ROLES"]
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith("1@kafka:")
    assert "zookeeper" not in COMPOSE.read_text().lower()


def _distillwatch_invocations(service: dict) -> list[list[str]]:
    command = service.get("command")
    entry = service.get("entrypoint")
    if entry and entry[0] in ("/bin/sh", "/bin/bash"):
        script = command[0] if isinstance(command, list) else command
        out = []
        for part in re.split(r"&&|;|\n", script):
            words = shlex.split(part)
            if words and words[0] == "distillwatch":
                out.append(words[1:])
        return out
    # the image's ENTRYPOINT is `distillwatch`
    return [command if isinstance(command, list) else shlex.split(command)]


def test_service_commands_match_the_cli(compose):
    parser = build_parser()
    checked = 0
    for name, service in compose["services"].items():
        if service.get("image", "").startswith("apache/kafka"):
            continue
        for argv in _distillwatch_invocations(service):
            argv = [re.sub(r"\$\{[^}]*:-([^}]*)\}", r"\1", a) for a in argv]
            try:
                parser.parse_args(argv)
            except SystemExit as exc:  # argparse exits on a bad command line
                pytest.fail(f"service {name}: `distillwatch {' '.join(argv)}` is not valid: {exc}")
            checked += 1
    assert checked >= 4  # worker, simulate, publish, forward


def test_topic_init_matches_the_worker_settings(compose):
    script = compose["services"]["topics"]["command"][0]
    created = dict(re.findall(r"--topic (\S+) --partitions (\d+)", script))
    s = Settings()
    for topic in (s.events_topic, s.alerts_topic, s.dlq_topic, changelog_topic(s)):
        assert created.get(topic) == "8", topic
    assert "cleanup.policy=compact" in script.split(changelog_topic(s))[1].splitlines()[0]
    # the cluster stage: summaries keyed by linkage key, and its state changelog
    assert created.get(s.summaries_topic) == "8"
    assert created.get(cluster_changelog_topic(s)) == "8"
    assert "cleanup.policy=compact" in script.split(cluster_changelog_topic(s))[1].splitlines()[0]
    # group liveness (streams.service.liveness): one partition, compacted
    assert created.get(liveness_topic(s)) == "1"
    assert "cleanup.policy=compact" in script.split(liveness_topic(s))[1].splitlines()[0]
    env = compose["x-distillwatch"]["environment"]
    assert env["DISTILLWATCH_PARTITIONS"] == "8"


def test_dockerfile_contract():
    text = DOCKERFILE.read_text()
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and user[-1] not in ("root", "0")
    assert "HEALTHCHECK" in text and "/health" in text
    assert re.search(r'^ENTRYPOINT \["distillwatch"\]', text, re.M)
    assert f"EXPOSE {Settings().web_port}" in text
    assert "FROM python:3.11-slim" in text
    # everything the package needs is copied into the build stage
    for pkg in ("streams", "detectors", "simulator", "benchmarks", "schemas", "tools"):
        assert f"COPY {pkg} " in text, pkg
    # the healthcheck's URL is a view the worker serves
    assert os.path.exists(ROOT / "streams" / "service" / "web.py")
    assert '"/health"' in (ROOT / "streams" / "service" / "web.py").read_text()
