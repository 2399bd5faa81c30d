"""The one reading of date-times (credentials' and status lists' validity, ``--as-of`` and
``?asOf=``), and the one way Unix seconds are written back."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["iso_seconds", "parse_datetime", "timestamp"]


def parse_datetime(value: object) -> datetime:
    """An ISO 8601 date-time with a time zone (``Z`` or an offset); ValueError naming what is
    wrong otherwise."""
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not an ISO 8601 date-time string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone (add Z or +01:00)")
    return parsed


def timestamp(value: object) -> int:
    """Unix seconds of :func:`parse_datetime`'s date-time."""
    return int(parse_datetime(value).timestamp())


def iso_seconds(seconds: int) -> str:
    """Unix seconds as an RFC 3339 UTC date-time: ``2026-11-30T12:00:00Z``."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
