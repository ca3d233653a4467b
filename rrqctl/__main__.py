"""python -m rrqctl: the rrqctl command (how detached engines are started)."""

import sys

from rrqctl.cli import main

sys.exit(main())
