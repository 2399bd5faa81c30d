"""Structured logs: one JSON object a line (or plain text for a terminal), with the ``extra``
fields a log call passes (batch ids, transaction hashes).

Secrets are never passed to logs on purpose, and a :class:`Redactor` catches the ones that
arrive by accident: a driver's error message that quotes the RPC URL (whose path often holds
a provider's API key), or a connection string's password."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable

__all__ = ["Redactor", "configure_logging"]

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class Redactor:
    """Replaces each of the given secrets in a text with ``[redacted]``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Each as written and as JSON escapes it (a JSON log line carries the escaped form);
        # longest first, so that a secret containing another is hidden whole.
        forms = {form for s in secrets if s for form in (s, json.dumps(s)[1:-1])}
        self._secrets = sorted(forms, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text


class _Redacting(logging.Formatter):
    def __init__(self, inner: logging.Formatter, redact: Redactor) -> None:
        super().__init__()
        self._inner, self._redact = inner, redact

    def format(self, record: logging.LogRecord) -> str:
        return self._redact(self._inner.format(record))


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(*, json_lines: bool = True, level: int = logging.INFO,
                      redact: Redactor | None = None) -> None:
    """Send the service's logs (and uvicorn's) to stderr, with ``redact`` applied to every
    line."""
    handler = logging.StreamHandler(sys.stderr)
    formatter = (_JsonFormatter() if json_lines
                 else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setFormatter(_Redacting(formatter, redact or Redactor()))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
