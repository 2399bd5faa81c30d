"""Text from a credential (or any other untrusted source) made safe to show on a terminal or
in a log: every character that could move the cursor, erase, reorder or hide what is shown is
written as an escape instead."""

from __future__ import annotations

import re

__all__ = ["UNSAFE", "visible"]

# Characters that move the cursor, erase, or reorder what a terminal shows: C0 and C1
# controls, DEL, bidirectional overrides and isolates, zero-width and invisible formatting
# characters, line and paragraph separators. Credential text is attacker-controlled.
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u115f\u1160\u180e\u200b-\u200f"
                    "\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0"
                    "\ufff9-\ufffb]")


def visible(text: str) -> str:
    """``text`` with every control, bidi or invisible formatting character written as an
    escape (``\\x1b``, ``\\u202e``), so that it cannot rewrite a terminal."""
    return UNSAFE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
