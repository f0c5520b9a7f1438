"""``python -m local.portal``: see ``local.portal.cli``."""

import sys

from local.portal.cli import main

sys.exit(main())
