"""Moved to `crema_tools.representations.ogm_ge`; this import path keeps working (it is the same module)."""

import sys

from .representations import ogm_ge as _module

sys.modules[__name__] = _module
