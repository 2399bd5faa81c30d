"""Files that hold secrets or personal data (keystores, API tokens, the SQLite database) are
owner-only from their first byte: created with mode 0600 rather than written and restricted
afterwards, which would leave a moment where another user can read them. Their folders are
0700. Private: used by the store, the keystore writer and the stack."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

__all__ = ["make_private", "private_dir", "tighten_if_exists", "write_private"]

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) owner-only, and take group and other access away
    from it if it exists already."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    _tighten(path, PRIVATE_DIR)
    return path


def write_private(path: Path, text: str, *, fsync: bool = True) -> Path:
    """Write ``text`` to ``path`` as a new owner-only file that replaces any old one at once.

    The new file is created 0600 (``O_EXCL``, so no file left there by someone else is
    reused) next to ``path`` and renamed over it: a reader that opened the old file, whatever
    its mode, never sees the new contents, and nobody sees a half-written file. ``fsync``
    False skips forcing it to disk, for files that can be made again (bundles)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            if fsync:
                os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    return path


def make_private(path: Path) -> None:
    """Create ``path`` empty and owner-only if it is missing; take group and other access away
    from it if it exists. For files that another library then opens (SQLite's database)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                         PRIVATE_FILE))
    except FileExistsError:
        _tighten(path, PRIVATE_FILE)


def _tighten(path: Path, mode: int) -> None:
    # Only when needed: a folder or file that is already private may belong to a setup where
    # chmod is not allowed (another owner, a read-only mount).
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        path.chmod(mode)


def tighten_if_exists(path: Path) -> None:
    """Take group and other access away from ``path`` if it exists."""
    with contextlib.suppress(FileNotFoundError):
        _tighten(path, PRIVATE_FILE)
