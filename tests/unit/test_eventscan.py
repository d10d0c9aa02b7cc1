"""The line scanner of the multi-process replay (detectors/_eventscan.c)
against the full decode (decode_message + parse_event): whenever it answers,
the line is one valid event with exactly that account id and time; and on
simulated traffic it answers for every line (else it would not save work).

The scanner under test is the one ``python -m tools.native build`` installed;
without a build this test compiles ``detectors/_eventscan.c`` itself.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sysconfig
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from detectors.errors import InvalidEvent
from detectors.schema import decode_message, parse_event
from streams.replay import logfiles
from streams.replay.logfiles import Foreign, ReadStats, read_file, read_file_part

ROOT = Path(__file__).resolve().parents[2]
_Scan = Callable[[bytes, int], Any]


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The built ``detectors._eventscan``, or one compiled here."""
    if logfiles.SCAN is not None:
        from detectors import _eventscan

        return _eventscan
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler (cc/gcc) to build detectors/_eventscan.c")
    out = tmp_path_factory.mktemp("eventscan")
    so = out / f"_eventscan{sysconfig.get_config_var('EXT_SUFFIX')}"
    subprocess.run([cc, "-O2", "-shared", "-fPIC", f"-I{sysconfig.get_paths()['include']}",
                    str(ROOT / "detectors" / "_eventscan.c"), "-o", str(so)], check=True)
    spec = importlib.util.spec_from_file_location("_eventscan", so)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def scan(kernel: Any) -> _Scan:
    return kernel.scan  # type: ignore[no-any-return]


def _full(line: bytes, max_prompt: int) -> tuple[str, float] | None:
    """What the full decode makes of a line: (account, ts) of its one event."""
    try:
        items = decode_message(line)
        if len(items) != 1 or type(items[0]) is not dict:
            return None
        ev = parse_event(items[0], max_prompt_chars=max_prompt)
    except InvalidEvent:
        return None
    return ev.account_id, ev.ts


def _agrees(scan: _Scan, line: bytes, max_prompt: int = 200_000) -> Any:
    got = scan(line, max_prompt)
    if got is not None:
        full = _full(line, max_prompt)
        assert full is not None, line
        assert got == full and type(got[1]) is float, line
    return got


def test_simulated_traffic_is_scanned_and_agrees(scan: _Scan) -> None:
    from benchmarks.workloads import workload_dicts

    lines = [orjson.dumps(d) + b"\n" for _, d in
             zip(range(3000), workload_dicts("realistic", 1, 300, 0.1), strict=False)]
    from simulator.simulate import simulate

    lines += [orjson.dumps(d) for _, d in
              zip(range(2000), simulate(seed=2, hours=0.2, accounts=60).events, strict=False)]
    assert len(lines) > 4000
    for line in lines:
        assert _agrees(scan, line) is not None, line


@pytest.mark.parametrize("line", [
    b'{"ts": 1771840800, "account_id": "a"}',
    b' {"ts":1771840800.25,"account_id":"a b","extra":{"x":[1,2,{"y":null}]}} \r\n',
    b'{"ts": 1771840800000, "account_id": "a"}',  # milliseconds
    b'{"ts": 1771840800123.5, "account_id": "a"}',
    b'{"ts": "2026-02-23T10:00:00Z", "account_id": "a"}',
    b'{"ts": "2024-02-29T23:59:59.999999+00:00", "account_id": "a"}',
    b'{"ts": "2026-02-23T10:00:00.1z", "account_id": "a", "prompt": "\\u00e9\\n\\"x\\""}',
    b'{"account_id": "a", "ts": "2026-02-23T10:00:00.139Z", "input_tokens": 10000000,'
    b' "thinking": true, "max_tokens": null, "topic": null, "prompt": "\xc3\xa9\xf0\x9f\x98\x80"}',
])
def test_valid_lines_are_scanned(scan: _Scan, line: bytes) -> None:
    assert _agrees(scan, line) is not None


@pytest.mark.parametrize("line", [
    b'[{"ts": 1771840800, "account_id": "a"}]',  # a batch: decoded in full
    b'{"ts": 1771840800, "account_id": "a", "ts": 1771840801}',  # repeated key
    b'{"ts": 1771840800, "account_\\u0069d": "a"}',  # escaped key
    b'{"ts": 1771840800, "account_id": "\\u0061"}',  # escaped account id
    b'{"ts": 1771840800, "account_id": "\xc3\xa9"}',  # non-ASCII account id
    b'{"ts": 1.7718408e9, "account_id": "a"}',  # exponent
    b'{"ts": "2026-02-23 10:00:00Z", "account_id": "a"}',  # other layouts
    b'{"ts": "2026-02-23T10:00:00+01:00", "account_id": "a"}',
    b'{"ts": "2026-02-23T10:00:00.1234567Z", "account_id": "a"}',
    b'{"ts": 1771840800, "account_id": "a", "prompt": "\\ud83d\\ude00"}',  # escaped pair
    # invalid ones
    b'{"ts": 1771840800}', b'{"account_id": "a"}', b'{}', b'null', b'',
    b'{"ts": null, "account_id": "a"}', b'{"ts": 1771840800, "account_id": null}',
    b'{"ts": 12, "account_id": "a"}', b'{"ts": "1999-01-01T00:00:00Z", "account_id": "a"}',
    b'{"ts": "2100-01-01T00:00:00Z", "account_id": "a"}',
    b'{"ts": "2026-02-30T10:00:00Z", "account_id": "a"}',
    b'{"ts": "2026-02-23T24:00:00Z", "account_id": "a"}',
    b'{"ts": 1771840800, "account_id": "   "}', b'{"ts": 1771840800, "account_id": "a\\tb"}',
    b'{"ts": 1771840800, "account_id": ""}', b'{"ts": 1771840800, "account_id": "a\x7f"}',
    b'{"ts": 1771840800, "account_id": "a", "input_tokens": -1}',
    b'{"ts": 1771840800, "account_id": "a", "input_tokens": 10000001}',
    b'{"ts": 1771840800, "account_id": "a", "input_tokens": 5.0}',
    b'{"ts": 1771840800, "account_id": "a", "thinking": 1}',
    b'{"ts": 1771840800, "account_id": "a", "model": 3}',
    b'{"ts": 1771840800, "account_id": "a", "x": [1,]}',
    b'{"ts": 1771840800, "account_id": "a"} x', b'{"ts": 1771840800, "account_id": "a"',
    b'{"ts": 1771840800, "account_id": "a", "x": "\xff"}',
    b'{"ts": 1771840800, "account_id": "a", "x": "\xed\xa0\x80"}',  # encoded surrogate
    b'{"ts": 1771840800, "account_id": "a", "x": "\x01"}',
    b'{"ts": 1771840800, "account_id": "a", "x": 01}',
    b'{"ts": 1771840800, "account_id": "a", "x": tru}',
    b'{"ts": 1771840800, "account_id": "a", "x": "\\ud800"}',
])
def test_unsure_and_invalid_lines_are_left_to_the_full_decode(scan: _Scan, line: bytes) -> None:
    assert scan(line, 200_000) is None


def test_length_limits_count_characters(scan: _Scan) -> None:
    base = {"ts": 1771840800, "account_id": "a"}
    for n, ok in ((1024, True), (1025, False)):
        for char in ("x", "\u00e9", "\U0001f600", "\n"):
            line = orjson.dumps({**base, "model": char * n})
            assert (_agrees(scan, line) is not None) is ok
    line = orjson.dumps({**base, "prompt": "\u00e9" * 50})
    assert _agrees(scan, line, 50) is not None and scan(line, 49) is None
    assert scan(orjson.dumps({**base, "account_id": "a" * 257}), 10) is None


_KEYS = st.sampled_from(["ts", "account_id", "model", "topic", "prompt", "input_tokens",
                         "thinking", "ip", "max_tokens", "other", "account_id ", "TS"])
_TS = st.one_of(
    st.integers(-10**13, 10**13), st.floats(allow_nan=False, allow_infinity=False),
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
    st.datetimes().map(lambda d: d.isoformat(timespec="milliseconds") + "+00:00"),
    st.integers(946684800, 4102444800), st.integers(946684800000, 4102444800000),
    st.floats(946684800.0, 4102444800.0),
)
_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 2 * 10**7), st.text(max_size=8),
    st.text(alphabet=st.characters(max_codepoint=0x7F), min_size=1, max_size=8), _TS,
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=2), st.none(),
                                                         max_size=2),
)


@settings(max_examples=1500, deadline=None)
@given(st.dictionaries(_KEYS, _VALUES, max_size=7), st.booleans(), st.data())
@example({"ts": "2026-02-23T10:00:00Z", "account_id": "a"}, False, None)
def test_whatever_it_accepts_decodes_alike(scan: _Scan, obj: dict[str, Any], ascii: bool,
                                           data: Any) -> None:
    line = json.dumps(obj, ensure_ascii=ascii).encode("utf-8", "surrogatepass")
    _agrees(scan, line)
    if data is not None and line:  # and the same line damaged
        cut = data.draw(st.integers(0, len(line) - 1))
        byte = data.draw(st.integers(0, 255))
        _agrees(scan, line[:cut])
        _agrees(scan, line[:cut] + bytes([byte]) + line[cut + 1:])


def test_read_file_part_splits_read_file(tmp_path: Path, scan: _Scan) -> None:
    from simulator.simulate import simulate

    lines = [orjson.dumps(d) for _, d in
             zip(range(1500), simulate(seed=4, hours=0.2, accounts=40).events, strict=False)]
    lines.insert(7, b"{not json")
    lines.insert(9, b"[" + b",".join(lines[20:23]) + b"]")
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    ref = ReadStats()
    events = [e for e, _ in read_file(path, ref)]
    parts = []
    for half in (0, 1):
        stats = ReadStats()
        got = [e for e, _ in read_file_part(path, stats, lambda a, h=half: hash(a) % 2 == h,
                                            scan=scan)]
        assert [e.ts for e in got] == [e.ts for e in events]
        parts.append((got, stats))
    (a, sa), (b, sb) = parts
    for x, y, ev in zip(a, b, events, strict=True):
        assert (x if type(y) is Foreign else y) == ev
        assert (type(x) is Foreign) != (type(y) is Foreign)
    assert (sa.lines, sa.events, sa.bad) == (ref.lines, ref.events, ref.bad) == (
        sb.lines, sb.events, sb.bad)
    assert sa.with_prompt + sb.with_prompt == ref.with_prompt


def _python_ts(text: str) -> float | None:
    """parse_ts's Python branch for text (None where it raises)."""
    from datetime import datetime

    from detectors.schema import MAX_TS, MIN_TS

    t = text.strip()
    if t.endswith(("Z", "z")):
        t = t[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(t)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    ts = parsed.timestamp()
    return ts if MIN_TS <= ts < MAX_TS and len(text) <= 64 else None


@pytest.fixture(scope="module")
def rfc3339(kernel: Any) -> Callable[[str], float | None]:
    from detectors import schema

    assert (schema._C_RFC3339 is None) == (logfiles.SCAN is None)  # built together
    return kernel.rfc3339  # type: ignore[no-any-return]


@settings(max_examples=1500, deadline=None)
@given(st.datetimes(), st.sampled_from(["Z", "z", "+00:00", "+01:00", "", " "]),
       st.sampled_from(["auto", "seconds", "milliseconds", "microseconds"]),
       st.sampled_from(["T", " "]))
def test_rfc3339_is_parse_ts_or_leaves_it_to_it(
        rfc3339: Callable[[str], float | None], when: Any, zone: str, spec: str,
        sep: str) -> None:
    text = when.isoformat(sep=sep, timespec=spec) + zone
    got = rfc3339(text)
    if got is not None:
        assert got == _python_ts(text) and type(got) is float, text


def test_parse_ts_takes_the_fast_path_and_keeps_its_errors() -> None:
    from detectors.schema import parse_ts

    assert parse_ts("2026-02-23T10:00:00.139Z") == _python_ts("2026-02-23T10:00:00.139Z")
    for bad in ("1999-12-31T23:59:59Z", "2026-02-30T10:00:00Z", "2026-02-23T10:00:00"):
        with pytest.raises(InvalidEvent):
            parse_ts(bad)


# ------------------------------------------------ murmur2 (partition placement)
# Kafka's own vectors (clients' UtilsTest.testMurmur2), then hypothesis: the C
# hash against detectors.partitioning's Python, which replay used alone before
_KAFKA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=80))
@example(b"")
@example(b"\xff" * 7)
def test_murmur2_in_c_is_the_python_hash(kernel: Any, data: bytes) -> None:
    from detectors import partitioning

    assert kernel.murmur2(data) == partitioning._murmur2(data)
    assert partitioning.murmur2(data) == partitioning._murmur2(data)  # the dispatch
    assert kernel.murmur2(bytearray(data)) == partitioning._murmur2(data)


def test_murmur2_matches_kafka_and_is_c_when_built(kernel: Any) -> None:
    import detectors
    from detectors import partitioning

    for data, want in _KAFKA_MURMUR2.items():
        assert partitioning._murmur2(data) == want
        assert kernel.murmur2(data) == want
    assert (partitioning._C_MURMUR2 is not None) == (detectors.NATIVE == "on")
    with pytest.raises(TypeError):
        kernel.murmur2("text")
