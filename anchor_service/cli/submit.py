"""``anchor-service submit``: anchor a folder of credentials (or a JSONL file) through a
running service, or with ``--direct ISSUER`` through a pipeline run here, and write a bundle
next to each input (:mod:`anchor_service.submit` does the work). The API token comes from
``--token`` or ``MICROCRED_TOKEN``. Needs the ``service`` extra. Exit code 2 when any input
was left out (the others are anchored all the same)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anchor_service.cli._common import needs_extra, note
from anchor_service.errors import AnchorServiceError

if TYPE_CHECKING:
    from anchor_service.service import Components

__all__ = ["register", "run"]


def register(commands: Any) -> None:
    """Add ``submit`` to an argparse subparsers object."""
    sub = commands.add_parser("submit", help="anchor a folder or JSONL file; write bundles")
    sub.add_argument("path", type=Path, help="a folder of .json credentials, or a .jsonl file")
    sub.add_argument("--url", default="http://127.0.0.1:8080", help="the running service")
    sub.add_argument("--token", default=None, help="issuer API token (or MICROCRED_TOKEN)")
    sub.add_argument("--direct", metavar="ISSUER", default=None,
                     help="no service: run the pipeline here for this issuer (MICROCRED_*)")
    sub.add_argument("--config", type=Path, help="with --direct: a .env-style settings file")
    sub.add_argument("--timeout", type=float, default=300.0,
                     help="seconds to wait for anchoring (default 300)")
    sub.add_argument("--quiet", action="store_true", help="no progress bar")
    sub.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Submit, wait for the anchors, write the bundles; 2 if any input was left out."""
    with needs_extra("submit", "service"):
        from anchor_service import submit  # noqa: PLC0415
        from anchor_service.logs import Redactor, configure_logging  # noqa: PLC0415
        from anchor_service.service import build_components  # noqa: PLC0415
        from anchor_service.settings import (  # noqa: PLC0415
            CommandSettings,
            ServiceSettings,
            revealed,
        )

    backend: submit.Backend
    components: Components | None = None
    if args.direct is not None:
        settings = ServiceSettings(_env_file=args.config)
        # The pipeline runs here and logs its retries: through the same redaction as serve.
        configure_logging(json_lines=False, level=logging.WARNING,
                          redact=Redactor(settings.secrets()))
        components = build_components(settings)
        backend = submit.DirectBackend(components, args.direct)
    else:
        token = args.token or revealed(CommandSettings().token)
        if not token:
            raise AnchorServiceError("pass --token or set MICROCRED_TOKEN")
        backend = submit.HttpBackend(args.url, token)
    try:
        outcome = submit.submit(args.path, backend, timeout=args.timeout,
                                show_progress=not args.quiet, notify=note)
    except KeyboardInterrupt:
        return 0
    finally:
        if components is not None:
            components.close()
    written = outcome.written
    print(f"{len(written)} bundle file(s) written" + (f", e.g. {written[0]}" if written else ""))
    if outcome.rejected:
        # The good inputs were anchored all the same; the exit code says not all were.
        note(f"error: {len(outcome.rejected)} input(s) left out, named above")
        return 2
    return 0
