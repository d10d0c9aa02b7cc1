"""Errors raised by the pure detection layer."""

from __future__ import annotations


class DetectorError(Exception):
    """Root of every error raised by :mod:`detectors`."""


class InvalidEvent(DetectorError):
    """An input event does not match the event schema.

    The stream service routes the original bytes to the dead-letter topic with
    ``reason``; fix the producer (see the event schema in the README) and, if the
    events matter, re-publish them from the dead-letter topic.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidConfig(DetectorError):
    """A detector parameter is out of range; the message names the allowed values."""


class CorruptState(DetectorError):
    """A stored account state cannot be decoded.

    The account starts from a fresh state; nothing else is affected. Persistent
    occurrences mean the changelog holds data from an incompatible version.
    """
