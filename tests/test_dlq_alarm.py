"""The dead-letter alarm's window (streams.service.dlq_alarm): its run-length-encoded
count equals counting the last ``window`` outcomes one by one, it fires once
per episode and resolves at half the bound, and its records follow the alert
schema with deterministic ids."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.service.dlq_alarm import DeadLetterAlarm

SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "schemas"
                     / "alert.schema.json").read_text())


@settings(max_examples=300, deadline=None)
@given(st.integers(10, 300),
       st.lists(st.tuples(st.integers(0, 400), st.integers(0, 400)), max_size=60))
def test_window_counts_equal_the_last_window_outcomes(window, messages):
    alarm = DeadLetterAlarm("w", share=0.05, window=window)
    flat: list[bool] = []
    for good, bad in messages:
        alarm.observe(good, bad, 1.0)
        flat += [False] * good + [True] * bad
        last = flat[-window:]
        assert alarm._total == len(last)
        assert alarm._bad == sum(last)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), max_size=80))
def test_fires_and_resolves_alternately(messages):
    alarm = DeadLetterAlarm("w", share=0.05, window=100)
    statuses = [r["status"] for i, (g, b) in enumerate(messages)
                if (r := alarm.observe(g, b, float(i)))]
    assert all(a != b for a, b in zip(statuses, statuses[1:], strict=False))
    assert not statuses or statuses[0] == "firing"


def test_records_follow_the_alert_schema_and_ids_are_deterministic():
    def run():
        alarm = DeadLetterAlarm("dw@host:6066", share=0.05, window=1000)
        out = [alarm.observe(500, 0, 100.0)]
        out.append(alarm.observe(0, 300, 101.5, ["not JSON: line 1"] * 300))
        out.append(alarm.observe(2000, 0, 200.25))
        return [r for r in out if r]

    first, second = run(), run()
    assert [r["status"] for r in first] == ["firing", "resolved"]
    assert first == second
    for record in first:
        jsonschema.validate(record, SCHEMA)
        assert record["dedup_key"] == "pipeline:dw@host:6066"
    assert first[0]["details"]["reasons"] == [["not JSON", 300]]


def test_invalid_parameters_fail_in_the_constructor():
    with pytest.raises(ValueError):
        DeadLetterAlarm("w", share=0.0)
    with pytest.raises(ValueError):
        DeadLetterAlarm("w", window=5)


def test_pipeline_alerts_are_named_as_such_on_call():
    from streams.oncall.mappings import alertmanager_alert, pagerduty_event

    record = DeadLetterAlarm("dw@h:1", window=100).record("firing", 5.0)
    assert alertmanager_alert(record)["labels"]["alertname"] == "DistillwatchPipeline"
    assert alertmanager_alert(record)["labels"]["subject"] == "pipeline:dw@h:1"
    assert pagerduty_event(record, "R" * 32)["payload"]["class"] == "pipeline"
