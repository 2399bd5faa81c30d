"""Structured logs: one JSON object a line (or plain text for a terminal), with the ``extra``
fields a log call passes (batch ids, transaction hashes), keys in camelCase.

Secrets are never passed to logs on purpose, and a :class:`Redactor` catches the ones that
arrive by accident: a driver's error message that quotes the RPC URL (whose path often holds
a provider's API key), or a connection string's password.

Plain-text lines escape control, bidi and invisible characters (a credential's text could
otherwise move the cursor, erase the line, reorder it or forge a line of its own on the
operator's terminal), and indent every line after a record's first (a traceback's, say), so
that only a record starts a line at its first column. A :class:`RepeatLimit` keeps a flood of
identical lines that clients can cause (garbage requests, thousands of dropped connections)
from filling the disk: past a few, they are counted and summed up in one line. Audit and
anchoring records are never limited."""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from verifier.text import UNSAFE

__all__ = ["Redactor", "RepeatLimit", "configure_logging", "escape_controls"]

# What a terminal may act on rather than print: the character class the verifier's CLI
# escapes too (controls, DEL, bidi overrides and isolates, invisible formatting characters).
_CONTROLS = UNSAFE
_CONTROLS_BUT_NEWLINE = re.compile("(?!\n)" + UNSAFE.pattern)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Continuation lines of a record (a traceback's) start with this: only a record starts a line
# at its first column, so an exception message cannot forge a record of its own.
_CONTINUATION = "    | "


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def escape_controls(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with each control, bidi or invisible character written as an escape
    (``\\x1b``, ``\\r``, ``\\u202e``): printable, and unable to act on a terminal."""
    return (_CONTROLS_BUT_NEWLINE if keep_newlines else _CONTROLS).sub(_escaped, text)

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


class _PlainFormatter(logging.Formatter):
    """One line a record (a traceback's lines follow it, indented); control characters
    escaped (in a traceback, all but its line breaks)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        first, *rest = super().format(record).split("\n")
        return "\n".join([first, *(_CONTINUATION + line for line in rest)])

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        # A trailing line break (some libraries end messages with one) is dropped, not shown.
        return escape_controls(super().formatMessage(record).rstrip("\n"))

    def formatException(self, ei: object) -> str:  # noqa: N802 - logging's name
        return escape_controls(super().formatException(ei), keep_newlines=True)  # type: ignore[arg-type]

    def formatStack(self, stack_info: str) -> str:  # noqa: N802 - logging's name
        return escape_controls(super().formatStack(stack_info), keep_newlines=True)


@dataclass
class _Window:
    start: float
    seen: int = 0
    suppressed: int = 0
    level: int = logging.WARNING


class RepeatLimit(logging.Filter):
    """A handler filter that lets ``limit`` lines with the same logger and message template
    through per ``interval`` seconds, counts the rest, and once that interval is over writes
    one line saying how many were suppressed. The summary goes out with the next record the
    handler sees after the interval (or at :meth:`flush`), so a quiet service does not need
    a timer thread for it.

    Only the records that clients can cause by the thousand are limited: every record of the
    HTTP server's loggers (:data:`NOISY`), and warnings and errors without ``extra`` fields.
    Audit records, and records that carry data in ``extra`` fields (a batch cut, an anchor
    sent, a credential accepted: one record per event, each saying something of its own), are
    never limited."""

    MAX_KEYS = 10_000  # templates tracked; the least recently restarted are forgotten first
    # Loggers whose records any client can cause, at any level (connections, garbage
    # requests, accept errors).
    NOISY = ("uvicorn", "asyncio", "anchor_service.server")
    NEVER = ("anchor_service.audit",)  # the audit trail is complete or it is worthless

    def __init__(self, handler: logging.Handler, *, limit: int = 10, interval: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._handler, self._limit, self._interval, self._clock = (
            handler, limit, interval, clock)
        self._windows: dict[tuple[str, str], _Window] = {}
        self._pending: set[tuple[str, str]] = set()  # windows with suppressed lines
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "repeat_summary", False):
            return True
        key = (record.name, str(record.msg))
        now = self._clock()
        limited = self._limited(record)
        allowed = True
        with self._lock:
            summaries = self._due(now)
            window = self._windows.get(key) if limited else None
            if not limited:
                pass  # let through; only the summaries that are due go out with it
            elif window is None or now - window.start >= self._interval:
                if window is not None and window.suppressed:
                    summaries.append(self._summary(key, window))
                    self._pending.discard(key)
                self._windows.pop(key, None)
                window = self._windows[key] = _Window(now)
                while len(self._windows) > self.MAX_KEYS:
                    dropped = next(iter(self._windows))
                    del self._windows[dropped]
                    self._pending.discard(dropped)
            if window is not None:
                window.seen += 1
                allowed = window.seen <= self._limit
                if not allowed:
                    window.suppressed += 1
                    window.level = max(window.level, record.levelno)
                    self._pending.add(key)
        for summary in summaries:
            self._handler.handle(summary)
        return allowed

    @classmethod
    def _limited(cls, record: logging.LogRecord) -> bool:
        def under(names: tuple[str, ...]) -> bool:
            return any(record.name == n or record.name.startswith(n + ".") for n in names)

        if under(cls.NEVER):
            return False
        if under(cls.NOISY):
            return True
        return record.levelno >= logging.WARNING and not (set(vars(record)) - _STANDARD)

    def flush(self) -> None:
        """Write the summaries of every window with suppressed lines now."""
        with self._lock:
            summaries = [self._summary(key, self._windows[key]) for key in self._pending]
            for key in self._pending:
                self._windows[key].suppressed = 0
            self._pending.clear()
        for summary in summaries:
            self._handler.handle(summary)

    def _due(self, now: float) -> list[logging.LogRecord]:
        due = [key for key in self._pending if now - self._windows[key].start >= self._interval]
        summaries = []
        for key in due:
            window = self._windows[key]
            summaries.append(self._summary(key, window))
            window.suppressed = 0
            self._pending.discard(key)
        return summaries

    def _summary(self, key: tuple[str, str], window: _Window) -> logging.LogRecord:
        name, template = key
        record = logging.LogRecord(
            name, window.level, __file__, 0,
            "suppressed %d similar lines in %g s: %s",
            (window.suppressed, self._interval, template[:200]), None)
        record.repeat_summary = True
        return record


# uvicorn's copy of some messages with terminal colour codes: the message is there already.
_NOT_LOGGED = frozenset({"color_message"})


def _camel_case(name: str) -> str:
    """``repeat_summary`` -> ``repeatSummary``: JSON keys are camelCase, as in every JSON
    document of the project, whatever spelling a log call's ``extra`` field has."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({_camel_case(k): v for k, v in vars(record).items()
                      if k not in _STANDARD and k not in _NOT_LOGGED})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(*, json_lines: bool = True, level: int = logging.INFO,
                      redact: Redactor | None = None, repeat_limit: int = 10,
                      repeat_interval: float = 60.0) -> RepeatLimit:
    """Send the service's logs (and uvicorn's) to stderr, with ``redact`` applied to every
    line and at most ``repeat_limit`` identical lines per ``repeat_interval`` seconds (see
    :class:`RepeatLimit`, returned)."""
    handler = logging.StreamHandler(sys.stderr)
    formatter = _JsonFormatter() if json_lines else _PlainFormatter()
    handler.setFormatter(_Redacting(formatter, redact or Redactor()))
    repeats = RepeatLimit(handler, limit=repeat_limit, interval=repeat_interval)
    handler.addFilter(repeats)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    return repeats
