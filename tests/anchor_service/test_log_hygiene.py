"""The service's log handler, as ``anchor-service serve`` and ``stack`` configure it, in a real
process writing to a real stderr: plain-text lines carry no raw control characters (credential
text could otherwise rewrite the operator's terminal), and a flood of identical lines is cut
down to a few and a count."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

HOSTILE = "did:web:evil.example\x1b[2K\r[PASS] issuer trusted\x07\x9b31m\x00"


def _run(script: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)],
                          capture_output=True, text=True, timeout=60, check=True)
    return done.stderr


def test_plain_log_lines_escape_control_characters() -> None:
    stderr = _run(f"""
        import logging
        from anchor_service.logs import configure_logging
        configure_logging(json_lines=False)
        log = logging.getLogger("anchor_service.api")
        log.warning("credential from %s refused", {HOSTILE!r})
        try:
            raise ValueError({HOSTILE!r})
        except ValueError:
            log.exception("while reading %s", {HOSTILE!r})
    """)
    # No control character but the line breaks between lines (and a traceback's lines).
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]", stderr), repr(stderr)
    lines = stderr.splitlines()
    assert lines[0].endswith(
        r"credential from did:web:evil.example\x1b[2K\r[PASS] issuer trusted\x07\x9b31m\x00 "
        "refused")
    assert not any(line.startswith("[PASS]") for line in lines)
    assert r"ValueError: did:web:evil.example\x1b[2K\r[PASS]" in stderr


def test_json_log_lines_carry_control_characters_escaped() -> None:
    stderr = _run(f"""
        import logging
        from anchor_service.logs import configure_logging
        configure_logging(json_lines=True)
        logging.getLogger("anchor_service.api").warning("from %s", {HOSTILE!r})
    """)
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]", stderr), repr(stderr)
    assert r"\u001b[2K\r[PASS]" in stderr


def test_identical_lines_are_limited_and_counted() -> None:
    stderr = _run("""
        import logging, time
        from anchor_service.logs import configure_logging
        repeats = configure_logging(json_lines=False, repeat_limit=5, repeat_interval=0.5)
        log = logging.getLogger("uvicorn.error")
        for n in range(10_000):
            log.warning("Invalid HTTP request received from %s", n)
        logging.getLogger("anchor_service.pipeline").info("batch cut")  # another template
        time.sleep(0.6)
        log.warning("Invalid HTTP request received from %s", "later")  # a new interval
        for n in range(3):
            log.warning("Invalid HTTP request received from %s", n)
        repeats.flush()  # nothing suppressed in this interval: no summary
    """)
    lines = stderr.splitlines()
    assert len(lines) == 5 + 1 + 1 + 4, stderr
    assert [line.split(": ", 1)[1] for line in lines[5:7]] == [
        "batch cut",
        "suppressed 9995 similar lines in 0.5 s: Invalid HTTP request received from %s"]
    assert lines[7].endswith("Invalid HTTP request received from later")


def test_audit_and_anchoring_records_are_never_limited() -> None:
    """Each audit or pipeline record tells of one event of its own (in ``extra`` fields): all
    of them are written, however many; only what clients can cause by the thousand is cut
    down."""
    stderr = _run("""
        import logging
        from anchor_service.logs import configure_logging
        repeats = configure_logging(json_lines=False, repeat_limit=5, repeat_interval=60)
        audit = logging.getLogger("anchor_service.audit")
        pipeline = logging.getLogger("anchor_service.pipeline")
        for n in range(30):
            audit.info("credential %s", "accepted", extra={"credential": f"c{n}"})
            pipeline.info("batch anchored", extra={"batch": n})
            pipeline.warning("anchor failed, retrying", extra={"batch": n})
            logging.getLogger("uvicorn.error").warning("Invalid HTTP request received.")
            logging.getLogger("anchor_service.api").warning("readiness: database unreachable")
        repeats.flush()
    """)
    lines = stderr.splitlines()
    assert sum(line.endswith("anchor_service.audit: credential accepted") for line in lines) == 30
    assert sum(line.endswith("anchor_service.pipeline: batch anchored") for line in lines) == 30
    assert sum(line.endswith("anchor failed, retrying") for line in lines) == 30
    assert sum(line.endswith("uvicorn.error: Invalid HTTP request received.")
               for line in lines) == 5
    assert sum(line.endswith("anchor_service.api: readiness: database unreachable")
               for line in lines) == 5
    assert sum("suppressed 25 similar lines" in line for line in lines) == 2


def test_bidi_characters_are_escaped_and_a_traceback_cannot_forge_a_record() -> None:
    """The same characters as the verifier's CLI escapes (bidi overrides, zero-width ones);
    every line of a record after its first is indented, so only real records start at the
    first column."""
    forged = "\\n2026-01-01 00:00:00,000 INFO anchor_service.audit: token created"
    stderr = _run(f"""
        import logging
        from anchor_service.logs import configure_logging
        configure_logging(json_lines=False)
        log = logging.getLogger("anchor_service.api")
        log.warning("issuer %s", "evil\\u202egnp.exe\\u200b\\u2028x")
        try:
            raise ValueError("bad{forged}")
        except ValueError:
            log.exception("while reading")
    """)
    assert not re.search("[\u200b-\u200f\u2028-\u202e]", stderr), repr(stderr)
    assert r"issuer evil\u202egnp.exe\u200b\u2028x" in stderr
    records = [line for line in stderr.splitlines() if not line.startswith("    | ")]
    assert len(records) == 2, stderr  # the warning and the "while reading" line
    assert "    | 2026-01-01 00:00:00,000 INFO anchor_service.audit: token created" in stderr
