"""The one reading of date-times: credentials' and status lists' validity, ``--as-of`` and
``?asOf=``."""

from __future__ import annotations

from datetime import datetime

__all__ = ["parse_datetime", "timestamp"]


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
