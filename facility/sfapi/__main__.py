"""``python -m facility.sfapi serve ...``: see :mod:`facility.sfapi.server`."""

import sys

from .server import main

sys.exit(main())
