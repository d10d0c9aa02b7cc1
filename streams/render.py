"""Readable one-line rendering of alert records for terminals."""

from __future__ import annotations

from typing import Any

_COLOURS = {"critical": "\x1b[1;31m", "error": "\x1b[31m", "warning": "\x1b[33m",
            "info": "\x1b[36m"}
_RESET = "\x1b[0m"


def alert_line(record: dict[str, Any], colour: bool = False) -> str:
    """One line per alert: time, status, severity, subject, score, summary.

    >>> alert_line({"ts": "2026-02-23T10:00:00.000Z", "status": "firing", "severity": "critical",
    ...             "dedup_key": "account:a", "score": 0.97, "summary": "a: request rate 900/min"})
    '2026-02-23 10:00:00  FIRING    critical  account:a  score=0.97  a: request rate 900/min'
    """
    ts = str(record.get("ts", ""))[:19].replace("T", " ")
    status = str(record.get("status", "?")).upper()
    severity = str(record.get("severity", "?"))
    sev = f"{severity:<8}"
    if colour:
        sev = f"{_COLOURS.get(severity, '')}{sev}{_RESET}"
    score = record.get("score")
    score_text = f"score={score:.2f}" if isinstance(score, (int, float)) else "score=?"
    return (f"{ts}  {status:<8}  {sev}  {record.get('dedup_key', '?')}  {score_text}  "
            f"{record.get('summary', '')}")
