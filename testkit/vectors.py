"""The public test vectors and samples in ``../shared/vectors`` beside the checkout (CI has
them there), read in place: never copied into the repository. A missing file fails the test
that asked for it, with a message; nothing is skipped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

__all__ = ["VECTORS", "vector_json", "vector_path", "vector_text"]

VECTORS = Path(__file__).resolve().parent.parent.parent / "shared" / "vectors"


def vector_path(relative: str) -> Path:
    """``../shared/vectors/<relative>``; fails the calling test when it is missing."""
    path = VECTORS / relative
    if not path.is_file():
        pytest.fail(f"test vector {path} is missing: the tests read ../shared/vectors beside "
                    "the checkout (see ../shared/vectors/SOURCES.md)")
    return path


def vector_text(relative: str) -> str:
    return vector_path(relative).read_text(encoding="utf-8")


def vector_json(relative: str) -> Any:
    return json.loads(vector_text(relative))
