"""The rules that decide which group members are dead (streams.service.liveness.MemberWatch):
a member whose heartbeats keep arriving is never judged dead, whatever the
jitter, and a broker outage (this worker's own heartbeats stop arriving) suspends
every judgement until the path has worked for a whole timeout again."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.service.liveness import MARKER, MemberWatch, incarnation_id

OWN, OTHER = f"{MARKER}own", f"{MARKER}other"
MEMBERS = [("m-own", OWN), ("m-other", OTHER), ("m-foreign", "faust-0.15.3")]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.1, 1.5), min_size=5, max_size=120),
       st.lists(st.floats(0.1, 1.0), min_size=5, max_size=120))
def test_a_member_that_keeps_heartbeating_is_never_dead(own_gaps, other_gaps):
    # heartbeats every 2 s nominal; each arrives up to 1.5x late; timeout 12 s
    watch = MemberWatch(OWN, timeout_s=12.0, interval_s=2.0)
    events = []
    t = 0.0
    for gap in own_gaps:
        t += 2.0 * gap
        events.append((t, OWN))
    t = 0.0
    for gap in other_gaps:
        t += 2.0 * gap + 2.0 * gap  # up to 4 s apart: still well inside the timeout
        events.append((t, OTHER))
    end = min(max(t for t, who in events if who == OWN), t)
    for when, who in sorted(events):
        watch.heard(who, when)
        if when <= end:
            assert "m-other" not in watch.dead(MEMBERS, when)


def test_a_silent_member_is_dead_after_the_timeout_and_foreign_members_never():
    watch = MemberWatch(OWN, timeout_s=12.0, interval_s=2.0)
    watch.dead(MEMBERS, 0.0)
    dead_at = None
    for step in range(40):
        now = step * 1.0
        if step % 2 == 0:
            watch.heard(OWN, now)
        if step < 3:
            watch.heard(OTHER, now)
        if dead_at is None and watch.dead(MEMBERS, now):
            dead_at = now
            assert watch.dead(MEMBERS, now) == ["m-other"]
    assert dead_at is not None and 14.0 <= dead_at <= 16.0, dead_at


def test_an_outage_suspends_judgement_until_the_path_works_again():
    watch = MemberWatch(OWN, timeout_s=12.0, interval_s=2.0)
    for t in range(0, 20, 2):
        watch.heard(OWN, float(t))
        watch.heard(OTHER, float(t))
    # a 30 s broker outage: nobody's heartbeats arrive
    assert watch.dead(MEMBERS, 49.0) == []          # own heartbeats overdue: no judgement
    watch.heard(OWN, 50.0)                           # ours arrive first after the outage
    assert watch.dead(MEMBERS, 50.0) == []           # the other's are judged from now on
    watch.heard(OWN, 52.0)
    watch.heard(OTHER, 52.5)
    for t in range(54, 80, 2):
        watch.heard(OWN, float(t))
        watch.heard(OTHER, float(t))
        assert watch.dead(MEMBERS, float(t)) == []


def test_a_new_member_gets_a_whole_timeout_before_its_first_heartbeat_counts():
    watch = MemberWatch(OWN, timeout_s=12.0, interval_s=2.0)
    for t in range(0, 40, 2):
        watch.heard(OWN, float(t))
        members = MEMBERS[:1] + ([("m-new", f"{MARKER}new")] if t >= 20 else [])
        assert ("m-new" in watch.dead(members, float(t))) == (t > 32)


def test_incarnation_ids_differ_and_carry_the_marker():
    a, b = incarnation_id(), incarnation_id()
    assert a != b and a.startswith(MARKER) and len(a) < 80
