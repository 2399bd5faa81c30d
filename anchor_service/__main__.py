"""``python -m anchor_service`` is the ``anchor-service`` command."""

import sys

from anchor_service.cli import main

sys.exit(main())
