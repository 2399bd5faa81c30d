"""``python -m localchain`` runs anvil in the foreground or lists the development accounts."""

import sys

from localchain.cli import main

sys.exit(main())
