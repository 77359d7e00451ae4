"""``python -m captum_slingshot.cli``."""

import sys

from .parser import main

sys.exit(main())
